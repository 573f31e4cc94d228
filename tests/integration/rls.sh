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
