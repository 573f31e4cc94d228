#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A /metrics scrape reads what is in flight, never the history: with
# 200,000 settled chat holds, 100,000 ledger events and 50,000 finished
# credit reservations of one org in the database, five scrapes through
# nginx read fewer rows of those three tables than one pass over that
# history would (PostgreSQL's own row counters, pg_stat_user_tables).
# Before, each scrape counted every hold by state: 3.6 s on a dev stack
# after a few bench runs (13.7 M holds), with an api child held all along.
# The gauges still say what they name: the holds in flight and the ledger
# appends, counted against rows the script adds.
. "${BW_TOP:?}/tests/lib/common.sh"

NHOLDS=200000 NEVENTS=100000 NRESV=50000
SFX="$$-$RANDOM"
TABLES="'llm_holds', 'ledger_events', 'credit_reservations'"

# rows_read: rows PostgreSQL's executor read from the three history
# tables so far (sequential reads and index entries), all sessions.
rows_read() {
	t_sql "SELECT (SELECT sum(coalesce(seq_tup_read, 0))
	    FROM pg_stat_user_tables WHERE relname IN ($TABLES)) +
	    (SELECT sum(idx_tup_read) FROM pg_stat_user_indexes
	    WHERE relname IN ($TABLES))"
}

ORG=$(t_ctl org create --name "metrics-cost-$SFX" | jq -r .id)
if [ -z "$ORG" ] || [ "$ORG" = null ]; then
	t_fail "set-up" "could not create an org"
	t_done
fi
t_on_exit "t_sql \"DELETE FROM llm_holds WHERE org_id = '$ORG';
    DELETE FROM ledger_events WHERE org_id = '$ORG';
    DELETE FROM credit_reservations WHERE org_id = '$ORG';
    DELETE FROM credit_accounts WHERE org_id = '$ORG'\" >/dev/null"

# --- the history ------------------------------------------------------------
# Settled holds of past days, events 30 days old (no head row: no worker
# signs them), released reservations: rows nothing in flight needs.
t_sql "INSERT INTO llm_holds (org_id, day, model, max_tokens, input_bound,
    held_micros, state, charged_micros, expires_at, settled_at)
    SELECT '$ORG', current_date - 1 - i % 30, 'sim-small', 256, 1000, 900,
    'settled', 700, now() - interval '1 day', now() - interval '1 day'
    FROM generate_series(1, $NHOLDS) i;
    INSERT INTO ledger_events (org_id, seq, type, payload_hash, prev_hash,
    hash, created_at) SELECT '$ORG', i, 'evidence.uploaded',
    sha256(i::text::bytea), sha256((i - 1)::text::bytea),
    sha256(i::text::bytea), now() - interval '30 days'
    FROM generate_series(1, $NEVENTS) i;
    WITH a AS (INSERT INTO credit_accounts (org_id, kind, name)
    VALUES ('$ORG', 'user', 'history') RETURNING id)
    INSERT INTO credit_reservations (org_id, reservation_key, account_id,
    user_id, amount, state, expires_at, finished_at, returned)
    SELECT '$ORG', 'history-' || i, a.id, 'history', 1, 'released',
    now() - interval '1 day', now() - interval '1 day', 1
    FROM a, generate_series(1, $NRESV) i;
    ANALYZE llm_holds; ANALYZE ledger_events; ANALYZE credit_reservations" \
    >/dev/null
t_eq "history in place: $NHOLDS holds, $NEVENTS events, $NRESV reservations" \
    "$NHOLDS|$NEVENTS|$NRESV" \
    "$(t_sql "SELECT (SELECT count(*) FROM llm_holds WHERE org_id = '$ORG'),
	(SELECT count(*) FROM ledger_events WHERE org_id = '$ORG'),
	(SELECT count(*) FROM credit_reservations WHERE org_id = '$ORG')")"

# --- five scrapes, counted --------------------------------------------------
# A backend reports its row counts when it goes idle, at most 10 s later
# (PostgreSQL 15's PGSTAT_IDLE_INTERVAL): 12 s after the scrapes every
# count they made is in. The seeding session reports its own as it exits:
# read until two reads a second apart agree.
before=$(rows_read)
for _ in $(seq 10); do
	sleep 1
	b2=$(rows_read)
	[ "$b2" = "$before" ] && break
	before=$b2
done
codes=
for _ in 1 2 3 4 5; do
	codes+=$(curl -sk -o /dev/null -w '%{http_code} ' "$BULWARK_URL/metrics")
done
sleep 12
after=$(rows_read)
t_eq "five scrapes through nginx answer 200" "200 200 200 200 200 " "$codes"
t_match "the row counters were read before and after" '^[0-9]+ [0-9]+$' \
    "$before $after"
t_le "five scrapes read fewer history rows than a pass over any of them" \
    "$((NRESV - 1))" "$((after - before))"
echo "# rows read from llm_holds, ledger_events, credit_reservations" \
    "while scraping: $((after - before))"

# --- the gauges say what they name ------------------------------------------
t_sql "INSERT INTO llm_holds (org_id, day, model, max_tokens, input_bound,
    held_micros, expires_at) SELECT '$ORG', current_date, 'sim-small', 256,
    1000, 900, now() + interval '1 hour' FROM generate_series(1, 3)" \
    >/dev/null
# Other holds of the stack may end meanwhile: the gauge is compared with
# the count of held rows read right after it, a few times if they differ.
for _ in $(seq 10); do
	g=$(t_metric 'bulwark_llm_holds{state="held"}')
	h=$(t_sql "SELECT count(*) FROM llm_holds WHERE state = 'held'")
	[ "$g" = "$h" ] && break
	sleep 0.5
done
t_eq "bulwark_llm_holds{state=\"held\"}: the held rows, our 3 among them" \
    "$h" "$g"
t_ge "... which are at least our 3" 3 "$g"
t_sql "DELETE FROM llm_holds WHERE org_id = '$ORG' AND state = 'held'" \
    >/dev/null
# Another org uploads: the seeded events took this one's seqs 1..NEVENTS.
ORG2=$(t_ctl org create --name "metrics-cost2-$SFX" | jq -r .id)
KEY2=$(t_ctl key create --org "$ORG2" --role owner | jq -r .key)
ev0=$(t_metric bulwark_ledger_events)
for i in 1 2 3; do
	curl -sk -o /dev/null -X POST "$BULWARK_URL/api/v1/evidence" \
	    -H "Authorization: Bearer $KEY2" --data-binary "metrics $i"
done
t_eq "bulwark_ledger_events: 3 more after 3 uploads" "$((ev0 + 3))" \
    "$(t_metric bulwark_ledger_events)"

# The export histogram is kept by the exports that become ready (sql/0043),
# not recomputed from every export at each scrape.
n0=$(t_metric bulwark_export_duration_seconds_count)
s0=$(t_metric bulwark_export_duration_seconds_sum)
EV=$(curl -sk -X POST "$BULWARK_URL/api/v1/evidence" \
    -H "Authorization: Bearer $KEY2" --data-binary "export me" | jq -r .id)
EXP=$(curl -sk -X POST "$BULWARK_URL/api/v1/exports" \
    -H "Authorization: Bearer $KEY2" -H 'Content-Type: application/json' \
    -d "{\"evidence_ids\":[\"$EV\"]}" | jq -r .id)
t_check "an export becomes ready" \
    t_wait_sql 60 ready "SELECT state FROM exports WHERE id = '$EXP'"
curl -sk "$BULWARK_URL/metrics" >"$TMP/m"
t_eq "bulwark_export_duration_seconds_count: one more" "$((n0 + 1))" \
    "$(awk '$1 == "bulwark_export_duration_seconds_count" { print $2 }' "$TMP/m")"
t_eq "... its seconds in the sum (claim to ready)" 1 \
    "$(t_sql "SELECT abs($(awk '$1 == "bulwark_export_duration_seconds_sum" { print $2 }' "$TMP/m") - $s0 -
	extract(epoch FROM finished_at - started_at)) < 0.001
	FROM exports WHERE id = '$EXP'" | sed 's/t/1/; s/f/0/')"
t_eq "... buckets cumulative, the +Inf one equal to the count" "ok" \
    "$(awk -F'[{}" ]+' '/^bulwark_export_duration_seconds_bucket/ {
	if ($NF < last) bad = 1; last = $NF; inf = $NF; seen++ }
	$1 == "bulwark_export_duration_seconds_count" { c = $2 }
	END { print (bad || seen != 11 || c == "" || inf != c) ? "bad" : "ok" }' \
	"$TMP/m")"
t_done
