-- SPDX-License-Identifier: MIT
-- bw_key_lookup and bw_session_lookup (sql/0034_rls.sql) in PL/pgSQL.
--
-- A LANGUAGE sql function with SECURITY DEFINER or a SET clause is never
-- inlined, and its body is parsed and planned again on every call; a
-- PL/pgSQL function keeps the plan of its query for the session (one
-- database session per bulwark-fcgi child). Both run on a cache miss of
-- every authenticated request (lib/platform/auth.c, lib/people/session.c).
-- Measured with pgbench as bulwark_app, one client, PostgreSQL CPU per
-- call: docs/operations.md, "Database roles and row-level security".
--
-- Same signature, result columns, rows and security as 0034: SECURITY
-- DEFINER (the owner, past RLS), search_path pinned, STABLE. CREATE OR
-- REPLACE keeps the function's owner and its ACL, so 0034's REVOKE from
-- PUBLIC and GRANT to bulwark_app and bulwark_worker still hold
-- (tests/integration/rls.sh checks both, and the rows each returns).
-- Every column reference is qualified: the RETURNS TABLE columns are
-- PL/pgSQL variables of the same names.

-- An API key by the SHA-256 of the presented key: no row when unknown or
-- revoked.
CREATE OR REPLACE FUNCTION bw_key_lookup(p_hash bytea)
    RETURNS TABLE (org_id uuid, id uuid, key_prefix text, role text)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public
    AS $$
BEGIN
    RETURN QUERY
        SELECT k.org_id, k.id, k.key_prefix, k.role FROM api_keys k
        WHERE k.key_hash = p_hash AND k.revoked_at IS NULL;
END
$$;

-- A live session and its user by the SHA-256 of the cookie: no row when
-- unknown, revoked, expired, idle longer than p_idle_s, or its user is
-- disabled; due when last_seen_at is older than p_touch_s.
CREATE OR REPLACE FUNCTION bw_session_lookup(p_hash bytea, p_idle_s int,
                                             p_touch_s int)
    RETURNS TABLE (user_id uuid, org_id uuid, role text, email text,
                   expires_at bigint, last_seen_at bigint, due boolean)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public
    AS $$
BEGIN
    RETURN QUERY
        SELECT s.user_id, s.org_id, u.role, u.email,
               floor(extract(epoch FROM s.expires_at))::bigint,
               floor(extract(epoch FROM s.last_seen_at))::bigint,
               s.last_seen_at < now() - make_interval(secs => p_touch_s)
        FROM sessions s
        JOIN users u ON u.id = s.user_id AND u.org_id = s.org_id
        WHERE s.token_hash = p_hash AND s.revoked_at IS NULL
          AND u.disabled_at IS NULL AND s.expires_at > now()
          AND s.last_seen_at > now() - make_interval(secs => p_idle_s);
END
$$;
