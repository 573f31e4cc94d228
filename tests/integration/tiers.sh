#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Plan tiers (issue 10): `bulwarkctl org set-tier` changes an org's tier
# (prints the org, records the change in org_tier_changes, logs it; an
# unknown tier is a usage error, exit 2; an unknown org exit 1), `org show`
# prints it; `org create --timezone` takes exactly the names of
# pg_timezone_names (bw_valid_timezone(), sql/0039) and refuses any other
# string with exit 1; and export retention applies the org's tier at the
# time of the retention pass: after a downgrade (pro 90 days -> starter
# 30) an export 60 days old is expired and its artifact deleted by the next
# pass, after an upgrade (starter 30 -> business 365) an export 60 days old
# is kept. The age is simulated by moving the export's timestamps back 60
# days in SQL.
. "${BW_TOP:?}/tests/lib/common.sh"

URL=$BULWARK_URL
STORAGE=$(sed -n 's/^storage_dir = //p' "$BW_CONFIG")
CURL=(curl -sk --max-time 20)

# mkorg TIER: a fresh org of that tier (id on stdout).
mkorg() { t_ctl org create --name "tiers-$$" --tier "$1" | jq -r .id; }

# mkready ORG: one evidence file and a ready export of it (its id on
# stdout), made by the stack's export worker.
mkready() {
	local key ev exp
	key=$(t_ctl key create --org "$1" --role owner | jq -r .key)
	head -c 2000 /dev/urandom >"$TMP/ev"
	ev=$("${CURL[@]}" -X POST "$URL/api/v1/evidence" \
	    -H "Authorization: Bearer $key" \
	    -H 'Content-Type: application/octet-stream' \
	    -H 'X-Evidence-Name: tier.bin' --data-binary @"$TMP/ev" | jq -r .id)
	exp=$("${CURL[@]}" -X POST "$URL/api/v1/exports" \
	    -H "Authorization: Bearer $key" \
	    -H 'Content-Type: application/json' \
	    -d "{\"evidence_ids\": [\"$ev\"]}" | jq -r .id)
	t_wait_sql 30 ready "SELECT state FROM exports WHERE id = '$exp'" \
	    >/dev/null
	printf '%s %s\n' "$exp" "$key"
}

artifact() {
	printf '%s/%s' "$STORAGE" \
	    "$(t_sql "SELECT artifact_path FROM exports WHERE id = '$1'")"
}

# --- 1. org set-tier / org show ---------------------------------------------
ORG=$(mkorg starter)
out=$(t_ctl org set-tier --org "$ORG" --tier pro 2>"$TMP/set.err")
rc=$?
t_eq "set-tier: exit 0" 0 "$rc"
t_eq "set-tier: prints the org with its new tier" "$ORG pro starter 90" \
    "$(jq -r '"\(.id) \(.tier) \(.previous_tier) \(.retention_days)"' \
    <<<"$out" 2>&1)"
t_eq "set-tier: the org's row has the new tier" pro \
    "$(t_sql "SELECT tier FROM orgs WHERE id = '$ORG'")"
t_match "set-tier: the change is recorded (from, to, actor)" \
    '^starter pro bulwarkctl:' \
    "$(t_sql "SELECT from_tier || ' ' || to_tier || ' ' || actor
      FROM org_tier_changes WHERE org_id = '$ORG'" 2>&1)"
t_eq "set-tier: the change is logged once" 1 \
    "$(grep '"org tier changed"' "$TMP/set.err" | grep "$ORG" |
      grep '"from_tier":"starter"' | grep -c '"to_tier":"pro"')"
out=$(t_ctl org show --org "$ORG" 2>&1)
t_eq "org show: exit 0, the tier and its retention" "pro 90" \
    "$(jq -r '"\(.tier) \(.retention_days)"' <<<"$out" 2>&1)"
t_ctl org set-tier --org "$ORG" --tier pro >/dev/null 2>&1
t_eq "set-tier to the same tier records nothing" 1 \
    "$(t_sql "SELECT count(*) FROM org_tier_changes WHERE org_id = '$ORG'")"

t_ctl org set-tier --org "$ORG" --tier gold >/dev/null 2>"$TMP/bad.err"
rc=$?
t_eq "set-tier: unknown tier is a usage error (exit 2)" 2 "$rc"
t_match "set-tier: unknown tier names the valid ones" \
    "unknown tier 'gold'.*starter\|pro\|business\|enterprise" \
    "$(cat "$TMP/bad.err")"
t_eq "set-tier: unknown tier leaves the org alone" pro \
    "$(t_sql "SELECT tier FROM orgs WHERE id = '$ORG'")"

NOORG=$(t_sql "SELECT gen_random_uuid()")
t_ctl org set-tier --org "$NOORG" --tier pro >/dev/null 2>"$TMP/no.err"
rc=$?
t_eq "set-tier: unknown org exits 1" 1 "$rc"
t_match "set-tier: unknown org says so" "no such org" "$(cat "$TMP/no.err")"
t_ctl org show --org "$NOORG" >/dev/null 2>"$TMP/no2.err"
rc=$?
t_eq "org show: unknown org exits 1 with a message" "1 1" \
    "$rc $(grep -c 'no such org' "$TMP/no2.err")"
t_ctl org set-tier --org "$ORG" >/dev/null 2>&1
t_eq "set-tier: without --tier is a usage error (exit 2)" 2 "$?"

# --- 1b. org create: the time zone ------------------------------------------
# A time zone is a name of pg_timezone_names, spelled as there; the check is
# bw_valid_timezone() (sql/0039), which does not read the view. Abbreviations
# that are no zone file, numbers and POSIX TZ strings (AT TIME ZONE takes
# them all) and other spellings are refused, exit 1, and make no org.
for tz in UTC Asia/Bangkok America/Argentina/Buenos_Aires Etc/GMT+3 EST5EDT \
    GMT0 EST; do
	out=$(t_ctl org create --name "tiers-tz-$$" --timezone "$tz" 2>&1)
	t_eq "org create --timezone $tz: accepted as spelled" "$tz" \
	    "$(jq -r .timezone <<<"$out" 2>&1)"
done
for tz in asia/bangkok ASIA/BANGKOK PST pst UTC+3 FOO5 +3 -3 0 '<+03>-03' \
    EST5EDT,M3.2.0,M11.1.0 ' UTC' Mars/Olympus America ''; do
	out=$(t_ctl org create --name "tiers-tz-$$" --timezone "$tz" 2>&1)
	rc=$?
	t_eq "org create --timezone '$tz': refused (exit 1)" 1 "$rc"
	t_match "org create --timezone '$tz': says why" \
	    'time zone one PostgreSQL knows' "$out"
done
t_eq "refused time zones made no org" 7 \
    "$(t_sql "SELECT count(*) FROM orgs WHERE name = 'tiers-tz-$$'")"
# Every name of the view, lower- and upper-cased too, every file under the
# zone directory and strings of every kind above: bw_valid_timezone() is
# true exactly for the view's names.
{
	[ -d /usr/share/zoneinfo ] &&
	    (cd /usr/share/zoneinfo && find . -mindepth 1 | sed 's|^\./||')
	printf '%s\n' PST pst UTC+3 UTC-3 +3 -3 3 0 '<+03>-03' FOO5 FOO/BAR+3 \
	    EST5EDT4 CET-1CEST GMT+3 Etc/GMT+99 :UTC :Asia/Bangkok \
	    posix/../UTC ../zoneinfo/UTC ./UTC Asia//Bangkok /Asia/Bangkok \
	    Asia/Bangkok/ 'UTC ' nan inf infinity 0x10 1e1 Z DEFAULT local \
	    right/UTC Etc/Unknown "$(printf 'A%.0s' {1..300})"
} >"$TMP/tz.txt"
got=$(psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -qAtX 2>&1 <<SQL
CREATE TEMP TABLE z AS SELECT name FROM pg_timezone_names;
CREATE TEMP TABLE c (n text);
\copy c FROM '$TMP/tz.txt'
INSERT INTO c SELECT name FROM z;
INSERT INTO c SELECT lower(n) FROM c UNION SELECT upper(n) FROM c;
INSERT INTO c VALUES ('');
CREATE TEMP TABLE v AS SELECT n, bw_valid_timezone(n) AS fn,
    EXISTS (SELECT 1 FROM z WHERE z.name = c.n) AS view
    FROM (SELECT DISTINCT n FROM c) c;
SELECT count(*), count(*) FILTER (WHERE view), count(*) FILTER (WHERE fn),
    coalesce(string_agg(quote_literal(n), ',') FILTER
	(WHERE fn IS DISTINCT FROM view), '')
    FROM v;
SQL
)
IFS='|' read -r ncand nview nfn diff <<<"$got"
t_ge "time zones: the view has hundreds of names" 400 "${nview:-0}"
t_ge "time zones: over three times as many strings compared" \
    $((3 * ${nview:-0})) "${ncand:-0}"
t_eq "time zones: bw_valid_timezone() is true exactly for the view's names" \
    "${nview:-x}|" "${nfn:-y}|$diff"

# --- 2. retention follows the tier at the time of the pass ------------------
DOWN=$(mkorg pro)
UP=$(mkorg starter)
read -r EDOWN KDOWN < <(mkready "$DOWN")
read -r EUP KUP < <(mkready "$UP")
t_eq "both exports ready" "ready ready" \
    "$(t_sql "SELECT state FROM exports WHERE id = '$EDOWN'") $(t_sql \
      "SELECT state FROM exports WHERE id = '$EUP'")"
ADOWN=$(artifact "$EDOWN")
AUP=$(artifact "$EUP")
t_ctl org set-tier --org "$DOWN" --tier starter >/dev/null 2>&1
t_ctl org set-tier --org "$UP" --tier business >/dev/null 2>&1
# Both exports became ready 60 days ago: past starter's 30 days, within
# pro's 90 and business's 365.
t_sql "UPDATE exports SET created_at = created_at - interval '60 days',
    queued_at = queued_at - interval '60 days',
    started_at = started_at - interval '60 days',
    finished_at = finished_at - interval '60 days',
    expires_at = expires_at - interval '60 days'
    WHERE id IN ('$EDOWN', '$EUP')" >/dev/null

# The API shows the expiry under the tier of now.
r=$("${CURL[@]}" "$URL/api/v1/exports/$EDOWN" -H "Authorization: Bearer $KDOWN")
t_eq "downgraded: GET shows expires_at = finished_at + 30 days" t \
    "$(t_sql "SELECT '$(jq -r .expires_at <<<"$r")'::timestamptz
      = date_trunc('milliseconds', finished_at + interval '30 days')
      FROM exports WHERE id = '$EDOWN'" 2>&1)"
r=$("${CURL[@]}" "$URL/api/v1/exports/$EUP" -H "Authorization: Bearer $KUP")
t_eq "upgraded: GET shows expires_at = finished_at + 365 days" t \
    "$(t_sql "SELECT '$(jq -r .expires_at <<<"$r")'::timestamptz
      = date_trunc('milliseconds', finished_at + interval '365 days')
      FROM exports WHERE id = '$EUP'" 2>&1)"

bulwark-retention -c "$BW_CONFIG" --pass 2>"$TMP/ret.log"
t_eq "retention pass: exit 0" 0 "$?"
t_eq "downgraded pro -> starter: a 60-day-old export is expired" expired \
    "$(t_sql "SELECT state FROM exports WHERE id = '$EDOWN'")"
t_eq "downgraded: its artifact is deleted" no \
    "$([ -e "$ADOWN" ] && echo yes || echo no)"
t_eq "downgraded: the expiry is logged" 1 \
    "$(grep '"export expired"' "$TMP/ret.log" | grep -c "$EDOWN")"
t_eq "upgraded starter -> business: a 60-day-old export is kept" ready \
    "$(t_sql "SELECT state FROM exports WHERE id = '$EUP'")"
t_eq "upgraded: its artifact is kept" yes \
    "$([ -f "$AUP" ] && echo yes || echo no)"
code=$("${CURL[@]}" -o /dev/null -w '%{http_code}' \
    "$URL/api/v1/exports/$EUP/download" -H "Authorization: Bearer $KUP")
t_eq "upgraded: its download still works (200)" 200 "$code"

t_done
