-- Budget blocks (issue 11, "a third of the cost per turn"; docs/chat-cost.md
-- "Budget blocks"). A chat child reserves a block of an org's day budget in
-- one synchronous statement and places the holds of its next calls inside
-- it in memory; each call's record (a settled llm_holds row, its charge
-- added to the block's used_micros) is one statement committed without
-- waiting for its WAL flush. The day row's reserved_micros carries the
-- whole block (granted_micros) until the block is renewed (its recorded
-- charges move to spent_micros), returned (the rest freed) or expired.
--
-- Why the budget is never exceeded: the block was reserved inside the
-- budget; the child admits calls into it only while the sum of their holds
-- fits what was granted; a return or a renewal moves only charges that
-- are recorded, and only from the session that took the block (its
-- backend pid and server start time), so a record lost with its session
-- (a crash before its WAL flush, a failover) can never be missed by a
-- return: a block whose session is gone is not returned but expires, and
-- an expiry charges the whole block.
--
-- Fragmentation: with a daily budget, the blocks of one org's day hold at
-- most p_pct percent of it together (the take and the top-up count the
-- others' grants under the day row's lock), so a refusal can leave at
-- most that much unused in other children's blocks; near the end of the
-- budget no block fits and calls hold one by one (lib/chat/budget.c).

CREATE TABLE llm_budget_blocks (
    org_id          uuid NOT NULL REFERENCES orgs (id),
    id              uuid NOT NULL DEFAULT gen_random_uuid(),
    day             date NOT NULL,
    owner           text NOT NULL,           -- "host pid" of the child
    session_pid     int NOT NULL,            -- pg_backend_pid() of its taker
    session_start   timestamptz NOT NULL,    -- pg_postmaster_start_time()
    granted_micros  bigint NOT NULL CHECK (granted_micros >= 0),
    used_micros     bigint NOT NULL DEFAULT 0 CHECK (used_micros >= 0),
    moved_micros    bigint NOT NULL DEFAULT 0 CHECK (moved_micros >= 0),
    renewals        int NOT NULL DEFAULT 0,
    state           text NOT NULL DEFAULT 'held'
                    CHECK (state IN ('held', 'returned', 'expired')),
    charged_micros  bigint,                  -- what reached spent in all
    created_at      timestamptz NOT NULL DEFAULT now(),
    renewed_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    ended_at        timestamptz,
    PRIMARY KEY (org_id, id),
    CHECK ((state = 'held') = (charged_micros IS NULL))
);
CREATE INDEX llm_budget_blocks_expiring ON llm_budget_blocks (expires_at)
    WHERE state = 'held';
CREATE INDEX llm_budget_blocks_day ON llm_budget_blocks (org_id, day)
    WHERE state = 'held';
ALTER TABLE llm_budget_blocks ENABLE ROW LEVEL SECURITY;
CREATE POLICY bw_tenant ON llm_budget_blocks TO bulwark_app
    USING (org_id = bw_org()) WITH CHECK (org_id = bw_org());

-- The block a call's record was placed in (NULL: a hold of its own).
ALTER TABLE llm_holds ADD COLUMN block_id uuid;

-- Takes a block (p_block NULL) or renews one, in one statement, under the
-- day row's lock. A renewal is fenced to the taking session; it moves the
-- block's recorded charges to spent (used - moved) and tops the block up.
-- The call's model follows the soft threshold as the hold does
-- (lib/chat/budget.c sql_hold); h is one call's hold under its price and
-- prompt rule (p_bytes, p_nmsg, p_max_tokens: budget_input_bound()).
-- The top-up aims at p_calls calls' holds, capped with a daily budget by
-- p_pct percent of it less the other held blocks of the day, and with a
-- hard stop by the day's room. p_need is what the caller needs beyond
-- p_inflight (a hold of a call in flight, inside the block already);
-- NULL: h. Verdicts: 'ok' (granted: the block's reservation now; the
-- caller's room is granted - p_inflight); 'none' (no block fits: with no
-- call in flight a renewed block was returned in the same statement and
-- nothing was taken, hold per call; with one, the block stays, granted
-- as it was, the extension refused); 'lost' (the block is gone or not this session's:
-- nothing changed, it expires).
CREATE OR REPLACE FUNCTION bw_block_renew(p_org uuid, p_day date, p_block uuid,
    p_primary text, p_fallback text, p_daily bigint, p_soft int,
    p_downgrade boolean, p_hard boolean, p_bytes bigint, p_nmsg int,
    p_max_tokens int, p_calls int, p_pct int, p_need bigint,
    p_inflight bigint, p_ttl int, p_owner text)
    RETURNS TABLE (verdict text, block_id uuid, granted bigint, model text,
                   downgraded boolean, in_price bigint, out_price bigint,
                   bytes_per_token int, tokens_per_message int)
    LANGUAGE plpgsql
    AS $$
DECLARE
    b      llm_budget_blocks%ROWTYPE;
    sp     numeric;
    rs     numeric;
    u      numeric := 0;
    g      numeric := 0;
    m      text;
    pr     llm_prices%ROWTYPE;
    priced boolean;
    ib     numeric;
    h      numeric;
    need   numeric;
    want   numeric;
    others numeric;
    id     uuid;
BEGIN
    -- Lock order: the block, then the day row (as bulwark-maint's expiry).
    IF p_block IS NOT NULL THEN
        SELECT * INTO b FROM llm_budget_blocks x
         WHERE x.org_id = p_org AND x.id = p_block AND x.state = 'held'
           FOR UPDATE;
        IF NOT FOUND OR b.day <> p_day OR b.session_pid <> pg_backend_pid()
           OR b.session_start <> pg_postmaster_start_time() THEN
            RETURN QUERY SELECT 'lost'::text, NULL::uuid, 0::bigint,
                NULL::text, false, 0::bigint, 0::bigint, 0, 0;
            RETURN;
        END IF;
    END IF;
    SELECT d.spent_micros, d.reserved_micros INTO sp, rs
      FROM org_budget_days d WHERE d.org_id = p_org AND d.day = p_day
       FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO org_budget_days (org_id, day) VALUES (p_org, p_day)
            ON CONFLICT (org_id, day) DO NOTHING;
        SELECT d.spent_micros, d.reserved_micros INTO sp, rs
          FROM org_budget_days d WHERE d.org_id = p_org AND d.day = p_day
           FOR UPDATE;
    END IF;
    IF p_block IS NOT NULL THEN
        u := b.used_micros - b.moved_micros;
        g := b.granted_micros - u;
        sp := sp + u;
        rs := rs - u;
        -- A hard-stop budget lowered under what the day holds: the block
        -- gives back the excess first (not what a call in flight holds).
        IF p_daily IS NOT NULL AND p_hard AND sp + rs > p_daily
           AND g > p_inflight THEN
            want := LEAST(sp + rs - p_daily, g - p_inflight);
            g := g - want;
            rs := rs - want;
        END IF;
    END IF;
    m := CASE WHEN p_daily IS NOT NULL AND p_downgrade
              AND (p_daily = 0 OR (sp + rs) * 100 >= p_daily::numeric * p_soft)
         THEN p_fallback ELSE p_primary END;
    SELECT * INTO pr FROM llm_prices x WHERE x.model = m;
    priced := FOUND;
    ib := LEAST(ceil(GREATEST(p_bytes, 0)::numeric
                     / GREATEST(COALESCE(pr.prompt_bytes_per_token, 1), 1))
                + GREATEST(p_nmsg, 0)
                  * COALESCE(pr.prompt_tokens_per_message, 16),
                2147483647);
    h := ceil((ib * COALESCE(pr.input_micros_per_mtok, 0)
               + GREATEST(p_max_tokens, 0)::numeric
                 * COALESCE(pr.output_micros_per_mtok, 0)) / 1000000);
    need := COALESCE(p_need, h);
    want := GREATEST(p_calls * h - g, 0);
    IF p_daily IS NOT NULL THEN
        SELECT COALESCE(sum(x.granted_micros), 0) INTO others
          FROM llm_budget_blocks x
         WHERE x.org_id = p_org AND x.day = p_day AND x.state = 'held'
           AND x.id IS DISTINCT FROM p_block;
        want := LEAST(want, floor(p_daily::numeric * p_pct / 100) - others - g);
        IF p_hard THEN
            want := LEAST(want, p_daily - sp - rs);
        END IF;
        want := GREATEST(want, 0);
    END IF;
    -- No block: unpriced under a budget, or too small to be worth one
    -- (a new block must cover two calls), or no room for what is needed.
    -- Then a call in flight that asked for more (an extension) is
    -- refused and the block stays as it was (its recorded charges moved);
    -- otherwise a renewed block is returned here (the rest freed).
    IF (NOT priced AND p_daily IS NOT NULL)
       OR g + want - p_inflight < need
       OR (p_block IS NULL AND want < 2 * h) THEN
        verdict := 'none';
        granted := 0;
        IF p_block IS NOT NULL AND p_inflight > 0 THEN
            id := p_block;
            granted := g;
        ELSIF p_block IS NOT NULL THEN
            rs := rs - g;
        END IF;
        want := 0;
    ELSE
        verdict := 'ok';
        granted := g + want;
    END IF;
    IF p_block IS NOT NULL OR verdict = 'ok' THEN
        UPDATE org_budget_days d SET spent_micros = sp,
            reserved_micros = rs + want, updated_at = now()
         WHERE d.org_id = p_org AND d.day = p_day;
    END IF;
    IF verdict = 'ok' AND p_block IS NULL THEN
        INSERT INTO llm_budget_blocks (org_id, day, owner, session_pid,
            session_start, granted_micros, expires_at)
        VALUES (p_org, p_day, p_owner, pg_backend_pid(),
            pg_postmaster_start_time(), want,
            now() + make_interval(secs => p_ttl))
        RETURNING llm_budget_blocks.id INTO id;
    ELSIF verdict = 'ok' THEN
        UPDATE llm_budget_blocks x SET granted_micros = g + want,
            moved_micros = x.used_micros, renewals = x.renewals + 1,
            renewed_at = now(), expires_at = now() + make_interval(secs => p_ttl)
         WHERE x.org_id = p_org AND x.id = p_block;
        id := p_block;
    ELSIF id IS NOT NULL THEN
        UPDATE llm_budget_blocks x SET granted_micros = g,
            moved_micros = x.used_micros
         WHERE x.org_id = p_org AND x.id = p_block;
    ELSIF p_block IS NOT NULL THEN
        UPDATE llm_budget_blocks x SET state = 'returned',
            moved_micros = x.used_micros,
            charged_micros = x.used_micros, ended_at = now()
         WHERE x.org_id = p_org AND x.id = p_block;
    END IF;
    RETURN QUERY SELECT verdict, id, granted::bigint, m, m <> p_primary,
        COALESCE(pr.input_micros_per_mtok, 0),
        COALESCE(pr.output_micros_per_mtok, 0),
        COALESCE(pr.prompt_bytes_per_token, 1),
        COALESCE(pr.prompt_tokens_per_message, 16);
END
$$;

-- Returns a block: its recorded charges move to spent, the rest of its
-- reservation is freed. Fenced as a renewal; NULL when the block is gone
-- or not this session's (it then expires), else what reached spent in all.
CREATE OR REPLACE FUNCTION bw_block_return(p_org uuid, p_block uuid)
    RETURNS bigint
    LANGUAGE plpgsql
    AS $$
DECLARE
    b llm_budget_blocks%ROWTYPE;
BEGIN
    SELECT * INTO b FROM llm_budget_blocks x
     WHERE x.org_id = p_org AND x.id = p_block AND x.state = 'held'
       FOR UPDATE;
    IF NOT FOUND OR b.session_pid <> pg_backend_pid()
       OR b.session_start <> pg_postmaster_start_time() THEN
        RETURN NULL;
    END IF;
    UPDATE org_budget_days d
       SET spent_micros = d.spent_micros + (b.used_micros - b.moved_micros),
           reserved_micros = d.reserved_micros - b.granted_micros,
           updated_at = now()
     WHERE d.org_id = p_org AND d.day = b.day;
    UPDATE llm_budget_blocks x SET state = 'returned',
        moved_micros = x.used_micros, charged_micros = x.used_micros,
        ended_at = now()
     WHERE x.org_id = p_org AND x.id = p_block;
    RETURN b.used_micros;
END
$$;

GRANT EXECUTE ON FUNCTION bw_block_renew(uuid, date, uuid, text, text,
    bigint, int, boolean, boolean, bigint, int, int, int, int, bigint, bigint,
    int, text), bw_block_return(uuid, uuid) TO bulwark_app, bulwark_worker;
