-- SPDX-License-Identifier: MIT
-- The SMS sender works through a batch a window of recipients at a time
-- (lib/campaign/sender.c, sms_window): one statement stores the outcomes
-- of the window just POSTed and checks the next window right before its
-- POSTs. bw_sms_step() (0033) did the same for one message: a database
-- round trip, a commit and a function call per message made PostgreSQL
-- the sender's largest cost (dev/bench-sms: 1.7 ms of its CPU per message
-- against 0.5 ms for the ceiling's bare INSERT).
--
-- Outcomes (p_seqs with p_message_ids for accepted messages, p_errors for
-- permanent refusals; the arrays line up) are recorded through
-- bw_sms_record() of 0031, in the order of their lock keys so that two
-- transactions never take two of these locks in opposite orders. Each
-- statement of this VOLATILE function takes a new snapshot (READ
-- COMMITTED), so each record still reads after the lock is ours, and the
-- locks are held to the commit, as before.
--
-- The check of p_next_seqs (their phones in p_next_phones): numbers opted
-- out are marked opted_out; go_seqs are the recipients still pending
-- without a message id, in seq order; campaign_status is the campaign's.
-- p_seqs NULL: nothing to record; p_next_seqs NULL: nothing to check (the
-- OUT columns are then NULL).
CREATE FUNCTION bw_sms_window(p_org uuid, p_campaign uuid, p_seqs int[],
    p_message_ids text[], p_errors text[], p_lock_ns int, p_lock_keys int[],
    p_next_seqs int[], p_next_phones text[],
    OUT campaign_status text, OUT go_seqs int[])
LANGUAGE plpgsql
AS $$
DECLARE
    r record;
BEGIN
    IF p_seqs IS NOT NULL THEN
        FOR r IN SELECT u.seq, u.mid, u.err, u.lk
            FROM unnest(p_seqs, p_message_ids, p_errors, p_lock_keys)
                AS u(seq, mid, err, lk)
            ORDER BY u.lk, u.seq
        LOOP
            IF r.mid IS NOT NULL THEN
                PERFORM bw_sms_record(p_org, p_campaign, r.seq, r.mid,
                    p_lock_ns, r.lk);
            ELSE
                UPDATE campaign_recipients SET state = 'failed',
                    error = r.err, state_changes = state_changes + 1,
                    updated_at = now()
                WHERE org_id = p_org AND campaign_id = p_campaign
                    AND seq = r.seq AND state = 'pending'
                    AND provider_message_id IS NULL;
            END IF;
        END LOOP;
    END IF;
    IF p_next_seqs IS NULL THEN
        RETURN;
    END IF;
    UPDATE campaign_recipients c SET state = 'opted_out',
        state_changes = c.state_changes + 1, updated_at = now()
    FROM unnest(p_next_seqs, p_next_phones) AS n(seq, phone)
    WHERE c.org_id = p_org AND c.campaign_id = p_campaign
        AND c.seq = n.seq AND c.state = 'pending'
        AND c.provider_message_id IS NULL
        AND EXISTS (SELECT 1 FROM sms_opt_outs o
            WHERE o.org_id = p_org AND o.phone = n.phone);
    SELECT status INTO campaign_status FROM campaigns
        WHERE org_id = p_org AND id = p_campaign;
    SELECT coalesce(array_agg(c.seq ORDER BY c.seq), '{}') INTO go_seqs
        FROM campaign_recipients c
        WHERE c.org_id = p_org AND c.campaign_id = p_campaign
            AND c.seq = ANY (p_next_seqs) AND c.state = 'pending'
            AND c.provider_message_id IS NULL;
END
$$;
