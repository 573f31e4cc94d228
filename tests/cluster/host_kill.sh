#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# One whole Bulwark host dies (issue 14): SIGKILL to host 1's nginx,
# bulwark-fcgi master and children, and every worker, while host 1 holds a
# job (an export its bulwark-export has leased and is working on: held in
# place by a psql lock on the exports table, as a slow export would be).
# Host 2's clients (bookings and signed deliveries, tests/cluster/load.py
# to host 2 only) see no error at all, before, during or after; host 2's
# export worker rescues the job when its lease (job_lease_s) expires and
# does it once: the job done with 2 attempts, the export ready, one
# export. Host 1 is started again at the end.
#
# Periodic jobs (every host's timer loops; dev/cluster sets periodic_slot_s
# = 10 and loops every 3 s): over the whole window, from before the kill
# to well after it, every job of the timer loops (maint, cleanup,
# reconcile, ledger, retention) ran exactly once in every slot: each slot's
# periodic_runs row is `ok`, none `missed`, `failed` or left `running`,
# and a trigger this script puts on periodic_runs (table
# test_periodic_audit, removed at the end) counts the claims and the
# finishes of each slot: one finish `ok`, one claim (a second claim only
# where the first was made before the kill and never finished: a run that
# died with host 1, taken over by host 2 in the same slot). A run's claim
# and finish are told apart from another run's by their session's backend
# pid: periodic_run() makes both on its locking session.
#
# BW_CLUSTER_PLANT=1 plants what the checks must catch (a third attempt on
# the job, a 503 in host 2's client results, a slot run twice and one
# missed): the script must then fail.
. "${BW_TOP:?}/tests/lib/common.sh"
# shellcheck source-path=SCRIPTDIR source=../lib/cluster.sh
. "$BW_TOP/tests/lib/cluster.sh"
HOLDER=
cleanup() {
	[ -n "$HOLDER" ] && kill "$HOLDER" 2>/dev/null
	local p
	p=$(cat "$CRUN/h2/pid/export.pid" 2>/dev/null) && kill -CONT "$p" 2>/dev/null
	t_kill_jobs
	cluster_start_host 1 >/dev/null 2>&1
	t_sql "DROP TRIGGER IF EXISTS test_periodic_audit ON periodic_runs;
	    DROP FUNCTION IF EXISTS test_periodic_audit();
	    DROP TABLE IF EXISTS test_periodic_audit" >/dev/null 2>&1
}
t_on_exit cleanup
tc_org cluster-host owner whsec_hk cluster-hk

# --- periodic runs: every claim and finish of a slot, counted ---------------
# The jobs: those run in the last minute with the hosts' slot, one per
# timer loop of dev/lib/stack.sh's STACK_WORKERS ("NAME every:SECS ...").
PSLOT=$(grep -h '^periodic_slot_s' "$CRUN/h1/bulwark.conf" "$CRUN/h2/bulwark.conf" |
    awk '{ print $3 }' | sort -u)
[ -n "$PSLOT" ] && [ "$PSLOT" -gt 0 ] 2>/dev/null || {
	t_fail "periodic: the hosts' periodic_slot_s" "'$PSLOT' (dev/lib/cluster.sh sets it)"
	PSLOT=60
}
mapfile -t PJOBS < <(t_sql "SELECT DISTINCT job FROM periodic_runs
    WHERE period_s = $PSLOT AND slot > now() - interval '1 minute' ORDER BY 1")
t_eq "periodic: one job per timer loop has run with ${PSLOT} s slots" \
    "$(printf '%s\n' "${STACK_WORKERS[@]}" | grep -c ' every:')" "${#PJOBS[@]}"
t_sql "SET client_min_messages = warning;
DROP TRIGGER IF EXISTS test_periodic_audit ON periodic_runs;
CREATE TABLE IF NOT EXISTS test_periodic_audit (
    at timestamptz NOT NULL DEFAULT clock_timestamp(), job text,
    slot timestamptz, state text, backend int);
CREATE OR REPLACE FUNCTION test_periodic_audit() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS \$\$
BEGIN
    INSERT INTO test_periodic_audit (job, slot, state, backend)
        VALUES (NEW.job, NEW.slot, NEW.state, pg_backend_pid());
    RETURN NEW;
END \$\$;
CREATE TRIGGER test_periodic_audit AFTER INSERT OR UPDATE ON periodic_runs
    FOR EACH ROW EXECUTE FUNCTION test_periodic_audit()" >/dev/null ||
    t_fail "periodic audit trigger installed" "psql failed"
P_START=$(t_sql "SELECT extract(epoch FROM now())::numeric(20,3)")
echo "# periodic jobs ${PJOBS[*]}; slot ${PSLOT:-?} s; counted from $P_START"

# --- a job held by host 1 --------------------------------------------------------
E1=$(cat "$CRUN/h1/pid/export.pid")
E2=$(cat "$CRUN/h2/pid/export.pid")
kill -STOP "$E1" "$E2"
head -c 3000 /dev/urandom >"$TMP/ev"
# As a client does: a retryable 503 (e.g. Redis just failed over) is retried.
for _ in 1 2 3 4 5 6 7 8 9 10; do
	EV=$(curl -sk -X POST "$U2/api/v1/evidence" -H "Authorization: Bearer $KEY" \
	    -H 'Content-Type: application/octet-stream' --data-binary @"$TMP/ev" |
	    jq -r '.id // empty')
	[ -n "$EV" ] && break
	sleep 1
done
for _ in 1 2 3 4 5 6 7 8 9 10; do
	R=$(curl -sk -X POST "$U2/api/v1/exports" -H "Authorization: Bearer $KEY" \
	    -H 'Content-Type: application/json' \
	    -d "{\"evidence_ids\":[\"$EV\"]}" -m 10 -w '\n%{http_code}' || true)
	[ "$(tail -n 1 <<<"$R")" = 503 ] || break
	sleep 1
done
t_eq "export created through host 2 (202)" 202 "$(tail -n 1 <<<"$R")"
[ "$(tail -n 1 <<<"$R")" = 202 ] || t_done
# A lock the export waits on once host 1's worker has claimed the job: the
# export's row, as a slow export holds it (a lock on the whole table would
# also stop bulwark-retention's pass over exports for longer than a slot).
psql "$DATABASE_URL" -qAtX -c "BEGIN; SELECT 1 FROM exports
    WHERE org_id = '$ORG' FOR UPDATE; SELECT pg_sleep(120) /* hk-holder */;
    COMMIT" >/dev/null 2>&1 &
HOLDER=$!
t_wait_sql 10 1 "SELECT count(*) FROM pg_stat_activity WHERE query LIKE
    '%hk-holder%' AND wait_event = 'PgSleep'" ||
    t_fail "psql holds the lock on the export's row" "not within 10 s"
kill -CONT "$E1"
JOB="SELECT state || ' ' || attempts FROM jobs WHERE queue = 'export'
    AND org_id = '$ORG'"
t_check "host 1's export worker leased the job (running, attempt 1)" \
    t_wait_sql 20 "running 1" "$JOB"
echo "# held by: $(t_sql "SELECT locked_by FROM jobs WHERE queue = 'export' AND org_id = '$ORG'")"

# --- load on both hosts; kill host 1 -----------------------------------------------
python3 "$BW_TOP/tests/cluster/load.py" --url "$U2" --api-key "$KEY" \
    --org "$ORG" --user "u$SFX" --stripe-secret "$SEC" --prefix "h2$SFX" \
    --log "$TMP/load2.log" --stop-file "$TMP/stop" --bookers 2 --hooks 1 \
    >"$TMP/load2.json" 2>"$TMP/load2.err" &
L2=$!
python3 "$BW_TOP/tests/cluster/load.py" --url "$U1" --api-key "$KEY" \
    --org "$ORG" --user "u$SFX" --stripe-secret "$SEC" --prefix "h1$SFX" \
    --log "$TMP/load1.log" --stop-file "$TMP/stop" --bookers 2 --hooks 1 \
    --deadline 3 >"$TMP/load1.json" 2>"$TMP/load1.err" &
L1=$!
sleep 3
# A whole slot counted before the kill.
while [ "$(t_sql "SELECT extract(epoch FROM now()) >
    (ceil($P_START / $PSLOT) + 1) * $PSLOT + 1")" != t ]; do
	sleep 0.2
done
kill_ms=$(($(date +%s%N) / 1000000))
cluster_kill_host 1
echo "# host 1 killed at $kill_ms"
P_KILL=$(t_sql "SELECT extract(epoch FROM now())::numeric(20,3)")
sleep 1
kill "$HOLDER" 2>/dev/null
t_sql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
    WHERE query LIKE '%hk-holder%' AND pid <> pg_backend_pid()" \
    >/dev/null 2>&1
HOLDER=
kill -CONT "$E2"
t_eq "host 1 is gone (its nginx refuses)" 000 \
    "$(curl -sk -o /dev/null -m 3 -w '%{http_code}' "$U1/health" || true)"
t0=$(date +%s)
t_check "host 2 rescued the job after its lease and did it (done, 2 attempts)" \
    t_wait_sql 90 "done 2" "$JOB"
echo "# job done $(($(date +%s) - t0)) s after host 1 died (job_lease_s: $(grep '^job_lease_s' "$CRUN/h2/bulwark.conf"))"
sleep 2
touch "$TMP/stop"
wait "$L2" "$L1"
# At least two whole slots after the kill, and the last one's runs over.
while [ "$(t_sql "SELECT extract(epoch FROM now()) > $P_KILL + 3 * $PSLOT + 3")" != t ]; do
	sleep 0.5
done

if [ "${BW_CLUSTER_PLANT:-0}" = 1 ]; then
	t_sql "INSERT INTO exports SELECT * FROM exports WHERE org_id = '$ORG'
	    LIMIT 0" >/dev/null
	t_sql "UPDATE jobs SET attempts = attempts + 1 WHERE queue = 'export'
	    AND org_id = '$ORG'" >/dev/null
	jq '.statuses["booking 503"] = 1' "$TMP/load2.json" >"$TMP/x" &&
	    mv "$TMP/x" "$TMP/load2.json"
	t_sql "INSERT INTO test_periodic_audit (job, slot, state, backend)
	    SELECT job, slot, state, backend FROM test_periodic_audit
	    WHERE state = 'ok' AND slot > to_timestamp($P_KILL) LIMIT 1;
	    UPDATE periodic_runs SET state = 'missed' WHERE (job, slot) IN
	    (SELECT job, slot FROM periodic_runs WHERE slot > to_timestamp($P_KILL)
	    AND state = 'ok' ORDER BY slot DESC, job LIMIT 1 OFFSET 3)" >/dev/null
	echo "# planted: the job counted a third attempt, host 2 saw one 503," \
	    "a periodic slot finished twice, one marked missed"
fi

# Every job, every whole slot from the first after P_START to the last one
# that ended 3 s ago: its row's state, its claims (a claim made before the
# kill and never finished by its process is host 1's run that died, not
# counted) and its finishes `ok`.
PV=$(printf "('%s')," "${PJOBS[@]}")
t_sql "WITH w AS (SELECT to_timestamp(ceil($P_START / $PSLOT) * $PSLOT) a,
    to_timestamp(floor((extract(epoch FROM now()) - 3) / $PSLOT) * $PSLOT) b),
  s AS (SELECT j.job, g AS slot FROM (VALUES ${PV%,}) j(job), w,
    generate_series(w.a, w.b - make_interval(secs => $PSLOT),
    make_interval(secs => $PSLOT)) g),
  c AS (SELECT a.job, a.slot, count(*) FILTER (WHERE NOT (a.at < to_timestamp($P_KILL)
      AND NOT EXISTS (SELECT 1 FROM test_periodic_audit f WHERE f.job = a.job
      AND f.slot = a.slot AND f.backend = a.backend AND f.state <> 'running'))) AS runs,
    count(*) FILTER (WHERE a.at < to_timestamp($P_KILL)
      AND NOT EXISTS (SELECT 1 FROM test_periodic_audit f WHERE f.job = a.job
      AND f.slot = a.slot AND f.backend = a.backend AND f.state <> 'running')) AS died
    FROM test_periodic_audit a WHERE a.state = 'running' GROUP BY 1, 2),
  o AS (SELECT job, slot, count(*) AS oks FROM test_periodic_audit
    WHERE state = 'ok' GROUP BY 1, 2)
  SELECT s.job, extract(epoch FROM s.slot)::bigint,
    s.slot + make_interval(secs => $PSLOT) <= to_timestamp($P_KILL),
    coalesce(r.state, 'none'), coalesce(c.runs, 0), coalesce(c.died, 0),
    coalesce(o.oks, 0)
  FROM s LEFT JOIN periodic_runs r USING (job, slot)
  LEFT JOIN c USING (job, slot) LEFT JOIN o USING (job, slot)
  ORDER BY 1, 2" | tr '|' ' ' >"$TMP/slots"
for j in "${PJOBS[@]}"; do
	awk -v j="$j" '$1 == j { n++; b += $3 == "t"; d += $6 }
	    END { printf "# periodic %s: %d slots (%d before the kill), %d runs died with host 1\n", j, n, b, d }' "$TMP/slots"
done
t_ge "periodic: whole slots counted before the kill, every job" \
    "${#PJOBS[@]}" "$(awk '$3 == "t"' "$TMP/slots" | wc -l)"
t_ge "periodic: at least 2 whole slots counted after the kill, every job" \
    $((2 * ${#PJOBS[@]})) "$(awk '$3 == "f"' "$TMP/slots" | wc -l)"
t_eq "periodic: every slot of every job ran once and went ok (job slot state runs died oks)" \
    "" "$(awk '$4 != "ok" || $5 != 1 || $7 != 1' "$TMP/slots" | head -n 5 | tr '\n' ';')"

R2=$TMP/load2.json
echo "# host 2's clients: $(jq -c .statuses "$R2"); host 1's: $(jq -c .statuses "$TMP/load1.json")"
t_eq "host 2's clients saw only 2xx" 0 \
    "$(jq '[.statuses | to_entries[] | select(.key | test(" 2") | not)] | length' "$R2")"
t_ge "host 2 answered bookings after host 1 died" 1 \
    "$(awk -v k="$kill_ms" '$2 == "booking" && $4 == 201 && $1 > k' \
    "$TMP/load2.log" | wc -l)"
t_eq "the export done once: state ready, one export" "ready 1" \
    "$(t_sql "SELECT state || ' ' || count(*) OVER () FROM exports
    WHERE org_id = '$ORG'")"
t_eq "the job done in exactly 2 attempts (the dead host's, the rescue)" \
    "done 2" "$(t_sql "$JOB")"
jq -r '.bookings_acked[]' "$R2" "$TMP/load1.json" | sort >"$TMP/acked"
t_sql "SELECT class_id FROM bookings WHERE org_id = '$ORG'" | sort >"$TMP/db"
t_eq "every acknowledged booking of both hosts exists, none twice" "0 0" \
    "$(comm -23 "$TMP/acked" "$TMP/db" | wc -l) $(uniq -d "$TMP/db" | wc -l)"
t_eq "bulwarkctl ledger check clean" true \
    "$(t_ctl ledger check --org "$ORG" 2>/dev/null | jq -r .clean)"
t_done
