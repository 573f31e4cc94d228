-- Row-level security, the second wall between tenants (docs/operations.md,
-- "Database roles and row-level security"; issue 13).
--
-- Roles. The owner (whoever runs this migration; `postgres` in dev, a
-- dedicated owner role in production) owns every table and is never used
-- by a running process. bulwark_app (bulwark-fcgi) is not an owner and
-- does not bypass RLS: every tenant table admits it only to the rows of
-- the org in bulwark.org_id, which lib/core/db.c sets per transaction
-- (set_config(..., true), i.e. SET LOCAL). bulwark_worker (workers,
-- bulwarkctl) spans orgs by design and has BYPASSRLS; it gets DML, no DDL.
-- bulwark_monitor (bulwark-fcgi's /metrics and /health/full, cross-org
-- aggregates by definition) has BYPASSRLS and SELECT only.
--
-- The roles are cluster objects; the installer (dev/lib/stack.sh in dev)
-- creates them with LOGIN and passwords before migrating. When they are
-- missing they are created here NOLOGIN, so that a database migrated
-- without them still gets its policies and grants.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'bulwark_app') THEN
        CREATE ROLE bulwark_app NOLOGIN NOBYPASSRLS;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'bulwark_worker') THEN
        CREATE ROLE bulwark_worker NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'bulwark_monitor') THEN
        CREATE ROLE bulwark_monitor NOLOGIN;
    END IF;
END
$$;

-- The tenant of the current transaction: NULL when unset or empty (an
-- unset custom setting reads '' after a SET LOCAL of a finished
-- transaction), so that no org_id matches.
CREATE FUNCTION bw_org() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT nullif(current_setting('bulwark.org_id', true), '')::uuid $$;

-- Every table with an org_id column: RLS on, and one policy for the app
-- role. No policy for any other role: the owner is exempt (it owns the
-- table; no FORCE, since the owner runs only migrations), bulwark_worker
-- has BYPASSRLS, and any other role is refused every row.
DO $$
DECLARE
    t record;
BEGIN
    FOR t IN
        SELECT c.relname, a.attnotnull
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'org_id'
                           AND NOT a.attisdropped
        WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t.relname);
        IF t.attnotnull THEN
            EXECUTE format('CREATE POLICY bw_tenant ON %I TO bulwark_app '
                'USING (org_id = bw_org()) WITH CHECK (org_id = bw_org())',
                t.relname);
        ELSE
            -- error_groups, error_group_hours, jobs: a NULL org_id is an
            -- org-less row (an error before authentication, a child's
            -- crash, a system job): the system's own scope, which the app
            -- sees and writes only while no org is set (so that an
            -- org-less error upserts its group), never with one.
            EXECUTE format('CREATE POLICY bw_tenant ON %I TO bulwark_app '
                'USING (org_id IS NOT DISTINCT FROM bw_org()) '
                'WITH CHECK (org_id IS NOT DISTINCT FROM bw_org())',
                t.relname);
        END IF;
    END LOOP;
END
$$;

-- Grants. The app gets DML on the tables (RLS narrows the tenant ones),
-- no TRUNCATE, REFERENCES or TRIGGER, and no DDL (it owns nothing).
-- Tables without org_id (orgs, llm_prices, periodic_runs, ...) hold no
-- tenant rows; orgs is the tenant list itself and is read-only to the app.
GRANT USAGE ON SCHEMA public TO bulwark_app, bulwark_worker, bulwark_monitor;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO bulwark_monitor;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public
    TO bulwark_app, bulwark_worker;
REVOKE INSERT, UPDATE, DELETE ON orgs FROM bulwark_app;
REVOKE ALL ON schema_migrations FROM bulwark_app;
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public
    TO bulwark_app, bulwark_worker;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO bulwark_app, bulwark_worker;
-- Tables and sequences of later migrations (run by the same owner).
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO bulwark_app, bulwark_worker;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO bulwark_app, bulwark_worker;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT SELECT ON TABLES TO bulwark_monitor;

-- Lookups before the org is known. Each is SECURITY DEFINER (runs as the
-- owner, past RLS), pins search_path, takes a secret's hash or a public
-- handle, and returns only what the caller needs to authenticate or to
-- learn the one org it then sets.

-- An API key by the SHA-256 of the presented key (lib/platform/auth.c).
CREATE FUNCTION bw_key_lookup(p_hash bytea)
    RETURNS TABLE (org_id uuid, id uuid, key_prefix text, role text)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public
    AS $$
        SELECT k.org_id, k.id, k.key_prefix, k.role FROM api_keys k
        WHERE k.key_hash = p_hash AND k.revoked_at IS NULL
    $$;

-- A live session and its user by the SHA-256 of the cookie
-- (lib/people/session.c): as session_check's query did.
CREATE FUNCTION bw_session_lookup(p_hash bytea, p_idle_s int, p_touch_s int)
    RETURNS TABLE (user_id uuid, org_id uuid, role text, email text,
                   expires_at bigint, last_seen_at bigint, due boolean)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public
    AS $$
        SELECT s.user_id, s.org_id, u.role, u.email,
               floor(extract(epoch FROM s.expires_at))::bigint,
               floor(extract(epoch FROM s.last_seen_at))::bigint,
               s.last_seen_at < now() - make_interval(secs => p_touch_s)
        FROM sessions s
        JOIN users u ON u.id = s.user_id AND u.org_id = s.org_id
        WHERE s.token_hash = p_hash AND s.revoked_at IS NULL
          AND u.disabled_at IS NULL AND s.expires_at > now()
          AND s.last_seen_at > now() - make_interval(secs => p_idle_s)
    $$;

-- A user by e-mail for the login form (lib/people/user.c). The scrypt
-- hash is what the login checks the password against.
CREATE FUNCTION bw_user_by_email(p_email text)
    RETURNS TABLE (id uuid, org_id uuid, role text, email text,
                   password_hash text, disabled boolean)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public
    AS $$
        SELECT u.id, u.org_id, u.role, u.email, coalesce(u.password_hash, ''),
               u.disabled_at IS NOT NULL
        FROM users u WHERE u.email = p_email
    $$;

-- The org of an unused, unexpired invitation by its token's SHA-256.
CREATE FUNCTION bw_invite_org(p_hash bytea) RETURNS uuid
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public
    AS $$
        SELECT i.org_id FROM user_invites i
        WHERE i.token_hash = p_hash AND i.used_at IS NULL
          AND i.expires_at > now()
    $$;

-- The org of an export by its public verification token's SHA-256 (hex).
CREATE FUNCTION bw_export_org_by_token(p_hash_hex text) RETURNS uuid
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public
    AS $$
        SELECT e.org_id FROM exports e
        WHERE e.verification_token_hash = decode(p_hash_hex, 'hex')
    $$;

REVOKE EXECUTE ON FUNCTION bw_key_lookup(bytea), bw_session_lookup(bytea, int, int),
    bw_user_by_email(text), bw_invite_org(bytea), bw_export_org_by_token(text)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION bw_key_lookup(bytea), bw_session_lookup(bytea, int, int),
    bw_user_by_email(text), bw_invite_org(bytea), bw_export_org_by_token(text)
    TO bulwark_app, bulwark_worker;
