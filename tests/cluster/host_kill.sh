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
# BW_CLUSTER_PLANT=1 plants what the checks must catch (a third attempt on
# the job, a 503 in host 2's client results): the script must then fail.
. "${BW_TOP:?}/tests/lib/common.sh"
t_need BW_CONFIG DATABASE_URL BW_CLUSTER_RUN
# shellcheck source-path=SCRIPTDIR source=../../dev/lib/cluster.sh
. "$BW_TOP/dev/lib/cluster.sh"
cluster_load "$BW_CLUSTER_RUN"
HOLDER=
cleanup() {
	[ -n "$HOLDER" ] && kill "$HOLDER" 2>/dev/null
	local p
	p=$(cat "$CRUN/h2/pid/export.pid" 2>/dev/null) && kill -CONT "$p" 2>/dev/null
	t_kill_jobs
	cluster_start_host 1 >/dev/null 2>&1
}
t_on_exit cleanup

SFX="$$$RANDOM"
U1=$(. "$CRUN/h1/env" && echo "$BULWARK_URL")
U2=$(. "$CRUN/h2/env" && echo "$BULWARK_URL")
ORG=$(t_ctl org create --name "cluster-host-$SFX" | jq -r .id)
KEY=$(t_ctl key create --org "$ORG" --role owner | jq -r .key)
SEC="whsec_hk$SFX"
t_ctl webhook-secret set --org "$ORG" --provider stripe --secret "$SEC" \
    >/dev/null
t_ctl credits grant --org "$ORG" --user "u$SFX" --amount 100000 \
    --anchor "cluster-hk-$SFX" >/dev/null

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
# A lock the export waits on once host 1's worker has claimed the job.
psql "$DATABASE_URL" -qAtX -c "BEGIN; LOCK TABLE exports IN ACCESS
    EXCLUSIVE MODE; SELECT pg_sleep(120); COMMIT" >/dev/null 2>&1 &
HOLDER=$!
t_wait_sql 10 1 "SELECT count(*) FROM pg_locks l JOIN pg_class c ON
    c.oid = l.relation WHERE c.relname = 'exports' AND l.granted
    AND l.mode = 'AccessExclusiveLock'" ||
    t_fail "psql holds the lock on exports" "not granted within 10 s"
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
kill_ms=$(($(date +%s%N) / 1000000))
cluster_kill_host 1
echo "# host 1 killed at $kill_ms"
sleep 1
kill "$HOLDER" 2>/dev/null
t_sql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
    WHERE query LIKE '%LOCK TABLE exports%' AND pid <> pg_backend_pid()" \
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

if [ "${BW_CLUSTER_PLANT:-0}" = 1 ]; then
	t_sql "INSERT INTO exports SELECT * FROM exports WHERE org_id = '$ORG'
	    LIMIT 0" >/dev/null
	t_sql "UPDATE jobs SET attempts = attempts + 1 WHERE queue = 'export'
	    AND org_id = '$ORG'" >/dev/null
	jq '.statuses["booking 503"] = 1' "$TMP/load2.json" >"$TMP/x" &&
	    mv "$TMP/x" "$TMP/load2.json"
	echo "# planted: the job counted a third attempt, host 2 saw one 503"
fi

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
