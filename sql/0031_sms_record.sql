-- SPDX-License-Identifier: MIT
-- The sender's record of one accepted message (lib/campaign/sender.c) and
-- a delivery report for that message id (lib/campaign/dlr.c, inside the
-- webhook's transaction) serialize on one advisory lock per (org, message
-- id), namespace and key from the C code (CAMPAIGN_LOCK_MSG, db_lock_key()).
--
-- Why: both read what the other writes. The record reads sms_deliveries
-- (a report that came first gives the final state at once); the report's
-- apply reads campaign_recipients by provider_message_id. Without the lock
-- a report whose transaction applied (no row had the id yet) but had not
-- committed when the record's statement took its snapshot was lost: the
-- recipient stayed `sent` while sms_deliveries said delivered.
-- With it, whichever takes the lock second runs its read in a statement
-- that starts after the first committed: in READ COMMITTED each statement
-- of a VOLATILE function (the default; keep it) takes a new snapshot, so
-- the UPDATE below sees every report that committed before the lock was
-- ours, and the lock is held until this statement's commit.
--
-- Returns 1 when the row took the message id, 0 when it had one already.
CREATE FUNCTION bw_sms_record(p_org uuid, p_campaign uuid, p_seq int,
    p_message_id text, p_lock_ns int, p_lock_key int)
RETURNS int
LANGUAGE plpgsql
AS $$
DECLARE
    n int;
BEGIN
    PERFORM pg_advisory_xact_lock(p_lock_ns, p_lock_key);
    WITH d AS (
        SELECT CASE status WHEN 'delivered' THEN 'delivered'
            WHEN 'undelivered' THEN 'undelivered' WHEN 'failed' THEN 'failed'
            WHEN 'rejected' THEN 'failed' WHEN 'expired' THEN 'undelivered'
            END AS st
        FROM sms_deliveries WHERE org_id = p_org AND message_id = p_message_id)
    UPDATE campaign_recipients SET
        state = coalesce((SELECT st FROM d), 'sent'),
        provider_message_id = p_message_id, sent_at = now(),
        state_changes = state_changes +
            CASE WHEN (SELECT st FROM d) IS NULL THEN 1 ELSE 2 END,
        updated_at = now()
    WHERE org_id = p_org AND campaign_id = p_campaign AND seq = p_seq
        AND provider_message_id IS NULL;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
