-- SPDX-License-Identifier: MIT
-- The common webhook delivery, a payment grant (Stripe
-- payment_intent.succeeded, Square payment.updated COMPLETED), in one
-- statement (issue 11, "Webhook ingest past the bare C figure"): the
-- general path (lib/money/webhook.c, webhook_apply_tx) sends about twelve
-- statements inside BEGIN ... COMMIT, and every grant of an org holds the
-- row lock of its `purchases` account for five of those round trips, so
-- one org's deliveries queue behind each other's network waits. Here the
-- lock is held only for the function's own work. Called by
-- webhook_grant_fast() outside a transaction (the statement is its own),
-- with the same steps, in the same order and under the same locks as
-- webhook_apply_tx -> webhook_grant_tx -> credit_grant_tx:
--   1. the event row (ON CONFLICT DO NOTHING): none made -> 'redelivered';
--   2. the anchor's advisory lock (namespace and key from the C code);
--   3. a pre-0011 early refund of the anchor -> 'ignored';
--   4. a transfer with the anchor -> 'duplicate';
--   5. refunds remembered for the anchor (pending): the general path
--      applies them after the grant, in C, so this raises 40001 and rolls
--      back step 1; the caller runs the general path instead;
--   6. the accounts, created when missing, locked in id order;
--   7. the transfer (ON CONFLICT DO NOTHING: nothing -> 'duplicate') and
--      the two balances; the payment's amount when known -> 'processed'.
-- In READ COMMITTED, as the general path: each statement of a VOLATILE
-- function (the default; keep it) takes a new snapshot, so what steps 3-5
-- read is what committed before the lock was ours. Steps 3 and 4 set the event's outcome as the general path does.
CREATE FUNCTION bw_webhook_grant(p_org uuid, p_provider text,
    p_event_id text, p_event_type text, p_anchor text, p_user text,
    p_credits bigint, p_amount bigint, p_currency text, p_lock_ns int,
    p_lock_key int)
RETURNS text
LANGUAGE plpgsql
AS $$
DECLARE
    n     bigint;
    v_pid bigint;
    v_uid bigint;
    r     record;
BEGIN
    INSERT INTO webhook_events (org_id, provider, event_id, event_type)
        VALUES (p_org, p_provider, p_event_id, p_event_type)
        ON CONFLICT (org_id, provider, event_id) DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n = 0 THEN
        RETURN 'redelivered';
    END IF;
    PERFORM pg_advisory_xact_lock(p_lock_ns, p_lock_key);
    IF EXISTS (SELECT 1 FROM webhook_early_refunds
               WHERE org_id = p_org AND grant_anchor = p_anchor) THEN
        UPDATE webhook_events SET outcome = 'ignored'
            WHERE org_id = p_org AND provider = p_provider
            AND event_id = p_event_id;
        RETURN 'ignored';
    END IF;
    IF EXISTS (SELECT 1 FROM credit_transfers
               WHERE org_id = p_org AND anchor = p_anchor) THEN
        UPDATE webhook_events SET outcome = 'duplicate'
            WHERE org_id = p_org AND provider = p_provider
            AND event_id = p_event_id;
        RETURN 'duplicate';
    END IF;
    IF EXISTS (SELECT 1 FROM credit_refunds WHERE org_id = p_org
               AND grant_anchor = p_anchor AND state = 'pending') THEN
        RAISE EXCEPTION 'bw_webhook_grant: refunds wait for this grant'
            USING ERRCODE = 'serialization_failure';
    END IF;
    FOR i IN 1..2 LOOP
        FOR r IN SELECT id, kind FROM credit_accounts
                 WHERE org_id = p_org
                 AND ((kind = 'system' AND name = 'purchases')
                      OR (kind = 'user' AND name = p_user))
                 ORDER BY id FOR UPDATE LOOP
            IF r.kind = 'system' THEN
                v_pid := r.id;
            ELSE
                v_uid := r.id;
            END IF;
        END LOOP;
        EXIT WHEN v_pid IS NOT NULL AND v_uid IS NOT NULL;
        IF i = 2 THEN
            RAISE EXCEPTION 'bw_webhook_grant: credit account missing after insert';
        END IF;
        INSERT INTO credit_accounts (org_id, kind, name)
            VALUES (p_org, 'system', 'purchases'), (p_org, 'user', p_user)
            ON CONFLICT DO NOTHING;
    END LOOP;
    INSERT INTO credit_transfers (org_id, transfer_key, anchor, reverses,
        debit_account, credit_account, amount, kind)
        VALUES (p_org, 'grant:' || p_anchor, p_anchor, NULL, v_pid, v_uid,
            p_credits, 'grant')
        ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n = 0 THEN
        UPDATE webhook_events SET outcome = 'duplicate'
            WHERE org_id = p_org AND provider = p_provider
            AND event_id = p_event_id;
        RETURN 'duplicate';
    END IF;
    UPDATE credit_accounts SET balance = balance
            + CASE WHEN id = v_uid THEN p_credits ELSE -p_credits END,
        updated_at = now()
        WHERE org_id = p_org AND id IN (v_pid, v_uid);
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n <> 2 THEN
        RAISE EXCEPTION 'bw_webhook_grant: credit transfer touched % rows', n;
    END IF;
    IF p_amount > 0 THEN
        INSERT INTO credit_payments (org_id, grant_anchor, amount, currency)
            VALUES (p_org, p_anchor, p_amount, p_currency)
            ON CONFLICT DO NOTHING;
    END IF;
    RETURN 'processed';
END
$$;
