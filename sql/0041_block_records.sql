-- SPDX-License-Identifier: MIT
-- Budget block call records written in batches (lib/chat/block.c,
-- docs/chat-cost.md "Block records in batches"). A chat child keeps the
-- records of its blocks' calls and writes all it keeps, whatever their
-- orgs, with one call of bw_block_records(): each record's llm_holds row
-- (settled, its block's day) and the sum of each block's charges into
-- its used_micros, as the single record's statement (block_record) does
-- for one call.
--
-- One statement for several tenants: SECURITY DEFINER (the owner, past
-- row-level security), search_path pinned, PL/pgSQL (its plan kept for
-- the session, as the look-ups of 0038). Row-level security keeps a
-- statement to the tenant the app set; here each record names its org
-- and its block, and is written only with the block row of that org and
-- that id, so a record can reach no other org's rows than a tenant-bound
-- statement could. The caller sets synchronous_commit off in the same
-- statement (a SET LOCAL inside a function with a SET clause would end
-- with the function). Returns the ids of the blocks written: a record
-- whose block row is gone is not written.
CREATE FUNCTION bw_block_records(p_org uuid[], p_block uuid[],
    p_charged bigint[], p_model text[], p_downgraded boolean[],
    p_max_tokens int[], p_input_bound int[], p_held bigint[],
    p_input_tokens int[], p_output_tokens int[], p_attempts int[],
    p_request_id text[], p_correlation_id text[], p_at_ms bigint[])
    RETURNS uuid[]
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public
    AS $$
DECLARE
    done uuid[];
BEGIN
    WITH r AS (
        SELECT * FROM unnest(p_org, p_block, p_charged, p_model,
            p_downgraded, p_max_tokens, p_input_bound, p_held,
            p_input_tokens, p_output_tokens, p_attempts, p_request_id,
            p_correlation_id, p_at_ms)
            AS r(org, blk, charged, model, downgraded, max_tokens,
                 input_bound, held, input_tokens, output_tokens, attempts,
                 request_id, correlation_id, at_ms)),
    s AS (SELECT r.org, r.blk, sum(r.charged) AS c FROM r
          GROUP BY r.org, r.blk),
    b AS (UPDATE llm_budget_blocks x SET used_micros = x.used_micros + s.c
          FROM s WHERE x.org_id = s.org AND x.id = s.blk
          RETURNING x.org_id, x.id, x.day),
    i AS (INSERT INTO llm_holds (org_id, day, model, downgraded, max_tokens,
              input_bound, held_micros, state, charged_micros, input_tokens,
              output_tokens, attempts, request_id, correlation_id,
              created_at, expires_at, settled_at, block_id)
          SELECT r.org, b.day, r.model, r.downgraded, r.max_tokens,
              r.input_bound, r.held, 'settled', r.charged, r.input_tokens,
              r.output_tokens, r.attempts, r.request_id, r.correlation_id,
              to_timestamp(r.at_ms / 1000.0), to_timestamp(r.at_ms / 1000.0),
              to_timestamp(r.at_ms / 1000.0), r.blk
          FROM r JOIN b ON b.org_id = r.org AND b.id = r.blk)
    SELECT array_agg(b.id) INTO done FROM b;
    RETURN COALESCE(done, '{}');
END
$$;

REVOKE ALL ON FUNCTION bw_block_records(uuid[], uuid[], bigint[], text[],
    boolean[], int[], int[], bigint[], int[], int[], int[], text[], text[],
    bigint[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION bw_block_records(uuid[], uuid[], bigint[], text[],
    boolean[], int[], int[], bigint[], int[], int[], int[], text[], text[],
    bigint[]) TO bulwark_app, bulwark_worker;
