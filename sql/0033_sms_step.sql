-- SPDX-License-Identifier: MIT
-- One database round trip per message for the SMS sender
-- (lib/campaign/sender.c): the outcome of the message just POSTed (its
-- record under the message id's lock, bw_sms_record() of 0031, or a
-- permanent refusal) and the check of the next recipient right before its
-- POST (the campaign still sending, the number not opted out - marked when
-- it is -, the recipient still pending), in one statement. Before, each
-- was a statement of its own: two round trips per message.
--
-- p_seq NULL: nothing to record; p_next_seq NULL: nothing to check (the
-- OUT columns are then NULL). Each statement below takes a new snapshot
-- (READ COMMITTED, VOLATILE), so the check sees every opt-out committed
-- before it ran, as the separate statement did.
CREATE FUNCTION bw_sms_step(p_org uuid, p_campaign uuid, p_seq int,
    p_message_id text, p_error text, p_lock_ns int, p_lock_key int,
    p_next_seq int, p_next_phone text,
    OUT campaign_status text, OUT opted_out boolean,
    OUT next_pending boolean)
LANGUAGE plpgsql
AS $$
BEGIN
    IF p_seq IS NOT NULL THEN
        IF p_message_id IS NOT NULL THEN
            PERFORM bw_sms_record(p_org, p_campaign, p_seq, p_message_id,
                p_lock_ns, p_lock_key);
        ELSE
            UPDATE campaign_recipients SET state = 'failed',
                error = p_error, state_changes = state_changes + 1,
                updated_at = now()
            WHERE org_id = p_org AND campaign_id = p_campaign
                AND seq = p_seq AND state = 'pending'
                AND provider_message_id IS NULL;
        END IF;
    END IF;
    IF p_next_seq IS NULL THEN
        RETURN;
    END IF;
    opted_out := EXISTS (SELECT 1 FROM sms_opt_outs
        WHERE org_id = p_org AND phone = p_next_phone);
    IF opted_out THEN
        UPDATE campaign_recipients SET state = 'opted_out',
            state_changes = state_changes + 1, updated_at = now()
        WHERE org_id = p_org AND campaign_id = p_campaign
            AND seq = p_next_seq AND state = 'pending'
            AND provider_message_id IS NULL;
    END IF;
    SELECT status INTO campaign_status FROM campaigns
        WHERE org_id = p_org AND id = p_campaign;
    SELECT state = 'pending' AND provider_message_id IS NULL
        INTO next_pending FROM campaign_recipients
        WHERE org_id = p_org AND campaign_id = p_campaign
            AND seq = p_next_seq;
END
$$;
