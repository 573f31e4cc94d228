#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Row-level security, the second wall between tenants (issue 13;
# sql/0034_rls.sql, docs/operations.md "Database roles and row-level
# security"): as the application role (bulwark_app, the database_url of
# bulwark-fcgi's config) a query without bulwark.org_id set sees no tenant
# row although rows exist; with org A set it sees A's rows only; a write
# naming another org is refused by WITH CHECK; the role owns nothing and
# cannot switch RLS off or drop a table; every table with an org_id column
# has RLS and a policy for the role (found in the catalog, so that a
# future table without one fails here); and bulwark-fcgi's backends log in
# as bulwark_app, the workers' as bulwark_worker.
. "${BW_TOP:?}/tests/lib/common.sh"

APP_URL=$(sed -n 's/^database_url = //p' "$BW_RUN/fcgi.conf")
# app SQL: one psql session as the application role reading SQL (psql
# commands allowed) from its argument; its output, or its error on stdout.
app() { psql "$APP_URL" -qAtX -v ON_ERROR_STOP=1 -f - <<<"$1" 2>&1; }

t_match "bulwark-fcgi's database_url names bulwark_app" \
    '^postgresql://bulwark_app[@:]' "$APP_URL"
# What follows tries DDL as that role: never as anyone else.
[[ $APP_URL =~ ^postgresql://bulwark_app[@:] ]] || t_done

ORG_A=$(t_ctl org create --name "rls-a-$$" | jq -r .id)
ORG_B=$(t_ctl org create --name "rls-b-$$" | jq -r .id)
KEY_A=$(t_ctl key create --org "$ORG_A" --role owner | jq -r .key)
t_ctl key create --org "$ORG_A" --role member >/dev/null
t_ctl key create --org "$ORG_B" --role owner >/dev/null
# Rows in more tables of both orgs, through the API as each org.
for o in "$ORG_A" "$ORG_B"; do
	k=$(t_ctl key create --org "$o" --role owner | jq -r .key)
	head -c 500 /dev/urandom >"$TMP/ev"
	code=$(curl -sk -o /dev/null -w '%{http_code}' --max-time 20 -X POST \
	    "$BULWARK_URL/api/v1/evidence" -H "Authorization: Bearer $k" \
	    -H 'Content-Type: application/octet-stream' \
	    -H 'X-Evidence-Name: rls.bin' --data-binary @"$TMP/ev")
	t_eq "evidence stored for org ${o:0:8} (under RLS)" 201 "$code"
done

# Every table of the schema with an org_id column, from the catalog.
TABLES=$(t_sql "SELECT c.relname FROM pg_class c
    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'org_id'
                       AND NOT a.attisdropped
    WHERE c.relnamespace = 'public'::regnamespace
      AND c.relkind IN ('r', 'p') ORDER BY 1")
t_ge "tenant tables found in the catalog" 30 "$(wc -w <<<"$TABLES")"

t_eq "every table with org_id has row-level security on" "" \
    "$(t_sql "SELECT string_agg(c.relname, ',') FROM pg_class c
	JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'org_id'
			   AND NOT a.attisdropped
	WHERE c.relnamespace = 'public'::regnamespace
	  AND c.relkind IN ('r', 'p') AND NOT c.relrowsecurity")"
t_eq "every table with org_id has a policy for bulwark_app" "" \
    "$(t_sql "SELECT string_agg(c.relname, ',') FROM pg_class c
	JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'org_id'
			   AND NOT a.attisdropped
	WHERE c.relnamespace = 'public'::regnamespace
	  AND c.relkind IN ('r', 'p')
	  AND NOT EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid
	    AND 'bulwark_app'::regrole = ANY (p.polroles))")"

# count_sql COND: one row per tenant table, "name|rows matching COND".
count_sql() {
	local t sql=""
	for t in $TABLES; do
		sql+="${sql:+ UNION ALL }SELECT '$t', count(*) FROM $t WHERE $1"
	done
	printf '%s' "$sql"
}
# nonzero: the "name|n" lines whose n is not 0, joined with spaces.
nonzero() { awk -F'|' '$2 != 0 { printf "%s ", $0 }'; }

OWNER_ROWS=$(t_sql "$(count_sql 'org_id IS NOT NULL')" | nonzero)
t_match "tenant rows exist (as the owner)" 'api_keys\|[0-9]+' "$OWNER_ROWS"

# No org set: not one row that belongs to an org, in any tenant table. (A
# NULL org_id is the system's own scope: docs/operations.md.)
NOORG=$(app "$(count_sql 'true')")
t_eq "no org set: the app role sees no tenant rows" "" \
    "$(app "$(count_sql 'org_id IS NOT NULL')" | nonzero)"
t_match "no org set: the app role's query runs (not refused)" \
    '^api_keys\|0$' "$(grep '^api_keys|' <<<"$NOORG")"

# Org A set for the transaction (SET LOCAL): A's rows only.
in_a() {
	app "BEGIN; SELECT set_config('bulwark.org_id', '$ORG_A', true)
	    \\g /dev/null
	$1; COMMIT;"
}
t_eq "org A set: no row of another org in any tenant table" "" \
    "$(in_a "$(count_sql "org_id <> '$ORG_A'")" | nonzero)"
t_eq "org A set: all of A's keys" \
    "$(t_sql "SELECT count(*) FROM api_keys WHERE org_id = '$ORG_A'")" \
    "$(in_a "SELECT count(*) FROM api_keys")"
t_eq "SET LOCAL ends with its transaction" "0" \
    "$(app "BEGIN; SELECT set_config('bulwark.org_id', '$ORG_A', true)
	\\g /dev/null
	COMMIT; SELECT count(*) FROM api_keys;")"

# Writes naming another org.
t_match "org A set: INSERT with org B's id refused (WITH CHECK)" \
    'violates row-level security policy' \
    "$(in_a "INSERT INTO api_keys (org_id, key_hash, key_prefix, role)
	VALUES ('$ORG_B', sha256('rls-$$'::bytea), 'bw_rlsx', 'member')")"
t_match "org A set: moving A's row to org B refused" \
    'violates row-level security policy' \
    "$(in_a "UPDATE api_keys SET org_id = '$ORG_B'")"
t_match "no org set: INSERT for org A refused" \
    'violates row-level security policy' \
    "$(app "INSERT INTO api_keys (org_id, key_hash, key_prefix, role)
	VALUES ('$ORG_A', sha256('rls2-$$'::bytea), 'bw_rlsy', 'member')")"
t_eq "org A set: UPDATE of org B's rows touches none" "0" \
    "$(in_a "WITH u AS (UPDATE api_keys SET revoked_at = now()
	WHERE org_id = '$ORG_B' RETURNING 1) SELECT count(*) FROM u")"

# The role: no owner of anything, no bypass, no way to turn RLS off.
t_eq "bulwark_app owns no relation" 0 \
    "$(t_sql "SELECT count(*) FROM pg_class
	WHERE relowner = 'bulwark_app'::regrole")"
t_eq "bulwark_app: not superuser, no BYPASSRLS" "f|f" \
    "$(t_sql "SELECT rolsuper, rolbypassrls FROM pg_roles
	WHERE rolname = 'bulwark_app'")"
t_match "bulwark_app cannot DISABLE ROW LEVEL SECURITY" 'must be owner' \
    "$(app "BEGIN; ALTER TABLE api_keys DISABLE ROW LEVEL SECURITY; ROLLBACK")"
t_match "bulwark_app cannot drop a policy" 'must be owner' \
    "$(app "BEGIN; DROP POLICY bw_tenant ON api_keys; ROLLBACK")"
t_match "bulwark_app cannot DROP a table" 'must be owner' \
    "$(app "BEGIN; DROP TABLE api_keys; ROLLBACK")"
t_match "bulwark_app cannot TRUNCATE" 'permission denied' \
    "$(app "BEGIN; TRUNCATE api_keys; ROLLBACK")"
t_match "bulwark_app cannot set its own role attributes" \
    'permission denied|must be superuser' \
    "$(app "ALTER ROLE bulwark_app BYPASSRLS")"

# The look-ups before the org is known (sql/0034; PL/pgSQL since 0038): as
# the app role with no org set, through RLS by the owner's rights, exactly
# the one live row, and nothing for an unknown, revoked, expired or idle
# secret or a disabled user.
t_eq "the look-ups are PL/pgSQL (a plan kept per session, not one a call)" \
    "bw_key_lookup|plpgsql bw_session_lookup|plpgsql" \
    "$(t_sql "SELECT string_agg(p.proname || '|' || l.lanname, ' '
	ORDER BY p.proname) FROM pg_proc p
	JOIN pg_language l ON l.oid = p.prolang
	WHERE p.proname IN ('bw_key_lookup', 'bw_session_lookup')")"
DEF='t|{"search_path=pg_catalog, public"}|s'
t_eq "the look-ups: SECURITY DEFINER, search_path pinned, STABLE" \
    "$DEF $DEF" \
    "$(t_sql "SELECT string_agg(concat_ws('|', prosecdef, proconfig,
	provolatile), ' ' ORDER BY proname) FROM pg_proc
	WHERE proname IN ('bw_key_lookup', 'bw_session_lookup')")"
t_eq "the look-ups: PUBLIC may not run them, the app and worker roles may" \
    "false false|true true|true true" \
    "$(t_sql "SELECT string_agg(has_function_privilege('public', f, 'EXECUTE')
	::text, ' ') || '|' || string_agg(has_function_privilege('bulwark_app',
	f, 'EXECUTE')::text, ' ') || '|' || string_agg(has_function_privilege(
	'bulwark_worker', f, 'EXECUTE')::text, ' ')
	FROM unnest(array['bw_key_lookup(bytea)',
	    'bw_session_lookup(bytea, int, int)']) f")"
# kl KEY: bw_key_lookup of a key as the app role, no org set.
kl() {
	app "SELECT org_id, id, key_prefix, role FROM
	    bw_key_lookup(sha256(convert_to('$1', 'UTF8')))"
}
t_eq "bw_key_lookup: a live key's org, id, prefix and role" \
    "$(t_sql "SELECT org_id, id, key_prefix, role FROM api_keys
	WHERE key_hash = sha256(convert_to('$KEY_A', 'UTF8'))")" "$(kl "$KEY_A")"
t_match "bw_key_lookup: the row is org A's owner key" "^$ORG_A\|.*\|owner$" \
    "$(kl "$KEY_A")"
t_eq "bw_key_lookup: an unknown key: no row" "" "$(kl "bwk_no-such-key-$$")"
KEY_R=$(t_ctl key create --org "$ORG_A" --role member)
t_ctl key revoke "$(jq -r .id <<<"$KEY_R")" >/dev/null 2>&1
t_eq "bw_key_lookup: a revoked key: no row" "" \
    "$(kl "$(jq -r .key <<<"$KEY_R")")"
# Sessions of a user of org A (the owner writes them), by the cookie's hash.
t_sql "INSERT INTO users (org_id, email, role, disabled_at) VALUES
    ('$ORG_A', 'rls-a-$$@example.com', 'admin', NULL),
    ('$ORG_A', 'rls-d-$$@example.com', 'member', now())" >/dev/null
t_sql "INSERT INTO sessions (org_id, token_hash, user_id, last_seen_at,
	expires_at, revoked_at)
    SELECT '$ORG_A', sha256(convert_to(v.t || '-$$', 'UTF8')), u.id,
	now() - v.seen, now() + v.ttl, v.rev
    FROM (VALUES ('live', 'rls-a', '10 s'::interval, '1 day'::interval,
		  NULL::timestamptz),
	       ('due', 'rls-a', '2 min', '1 day', NULL),
	       ('revoked', 'rls-a', '10 s', '1 day', now()),
	       ('expired', 'rls-a', '10 s', '-1 s', NULL),
	       ('idle', 'rls-a', '2 hours', '1 day', NULL),
	       ('disabled', 'rls-d', '10 s', '1 day', NULL)) v(t, who, seen, ttl, rev)
    JOIN users u ON u.email = v.who || '-$$@example.com'" >/dev/null
# sl NAME: bw_session_lookup of session NAME (idle 1 hour, touch 60 s).
sl() {
	app "SELECT user_id, org_id, role, email, expires_at, last_seen_at, due
	    FROM bw_session_lookup(sha256(convert_to('$1-$$', 'UTF8')), 3600, 60)"
}
t_eq "bw_session_lookup: a live session, its user and times, not due" \
    "$(t_sql "SELECT s.user_id, s.org_id, 'admin', 'rls-a-$$@example.com',
	floor(extract(epoch FROM s.expires_at))::bigint,
	floor(extract(epoch FROM s.last_seen_at))::bigint, false
	FROM sessions s WHERE s.token_hash = sha256(convert_to('live-$$', 'UTF8'))")" \
    "$(sl live)"
t_match "bw_session_lookup: seen over 60 s ago: due" "\|t$" "$(sl due)"
for s in revoked expired idle disabled; do
	t_eq "bw_session_lookup: session $s: no row" "" "$(sl "$s")"
done
t_eq "bw_session_lookup: an unknown cookie: no row" "" "$(sl nosuch)"

# The processes. A request makes every child's lazy connection certain
# for at least the one that served it.
code=$(curl -sk -o /dev/null -w '%{http_code}' --max-time 20 \
    "$BULWARK_URL/api/v1/whoami" -H "Authorization: Bearer $KEY_A")
t_eq "a request as org A under RLS" 200 "$code"
# The one other role of bulwark-fcgi: its /metrics and /health/full
# connection (monitor_database_url), read-only across orgs.
curl -sk -o /dev/null --max-time 20 "$BULWARK_URL/metrics"
t_eq "bulwark-fcgi's backends log in as bulwark_app (and the monitor)" \
    "bulwark_app,bulwark_monitor" \
    "$(t_sql "SELECT string_agg(DISTINCT usename, ',' ORDER BY usename)
	FROM pg_stat_activity WHERE application_name = 'bulwark-fcgi'")"
MON_URL=$(sed -n 's/^monitor_database_url = //p' "$BW_RUN/fcgi.conf")
t_match "the monitor role cannot write" 'permission denied' \
    "$(psql "$MON_URL" -qAtX -c "DELETE FROM api_keys" 2>&1)"
t_eq "the monitor role owns nothing, may read across orgs" "0|t|f" \
    "$(t_sql "SELECT (SELECT count(*) FROM pg_class
	WHERE relowner = 'bulwark_monitor'::regrole), rolbypassrls, rolsuper
	FROM pg_roles WHERE rolname = 'bulwark_monitor'")"
t_eq "no other process logs in as bulwark_app" "" \
    "$(t_sql "SELECT string_agg(DISTINCT application_name, ',')
	FROM pg_stat_activity WHERE usename = 'bulwark_app'
	AND application_name NOT IN ('bulwark-fcgi', 'psql')")"
t_match "the workers log in as bulwark_worker" '^bulwark_worker$' \
    "$(t_sql "SELECT string_agg(DISTINCT usename, ',') FROM pg_stat_activity
	WHERE application_name LIKE 'bulwark%'
	  AND application_name <> 'bulwark-fcgi'")"

t_done
