#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The PostgreSQL primary dies under load (issue 14): a mixed load on both
# Bulwark hosts (tests/cluster/load.py: bookings with an Idempotency-Key
# retried on any 5xx or lost connection, each retry to the other host;
# signed Stripe deliveries redelivered 1-2 times), then SIGKILL to the
# Patroni primary's Patroni and PostgreSQL (dev/cluster failover pg
# --kill). Patroni promotes the sync standby; the hosts' multi-host
# database_url (target_session_attrs=read-write) finds it. Afterwards:
# every acknowledged booking exists exactly once (one row per class, its
# one debit), every acknowledged delivery one event row and one grant,
# nothing twice, `bulwarkctl ledger check` clean, and the clients saw only
# 2xx, 409 and retryable 5xx. Prints the unavailability window.
#
# The primary's walsenders are stopped (SIGSTOP) for BW_CLUSTER_STALL_MS
# (2000) before the kill: what commits meanwhile exists on the primary only,
# which in synchronous mode means unacknowledged. On a cluster with
# synchronous_mode off (BW_PATRONI_SYNC=false dev/cluster up) acknowledged
# bookings are lost and this script fails. BW_CLUSTER_PLANT=1 books one
# class twice under two keys before the checks (fails too);
# BW_CLUSTER_NAIVE_RETRY=1 retries a booking with a new key (a duplicate
# when a commit's answer was lost).
. "${BW_TOP:?}/tests/lib/common.sh"
# shellcheck source-path=SCRIPTDIR source=../lib/cluster.sh
. "$BW_TOP/tests/lib/cluster.sh"
t_on_exit t_kill_jobs
tc_org cluster-pg member whsec_cluster cluster-grant

naive=()
[ "${BW_CLUSTER_NAIVE_RETRY:-0}" = 1 ] && naive=(--naive-retry)
python3 "$BW_TOP/tests/cluster/load.py" --url "$U1" --url "$U2" \
    --api-key "$KEY" --org "$ORG" --user "u$SFX" --stripe-secret "$SEC" \
    --prefix "p$SFX" --log "$TMP/load.log" --stop-file "$TMP/stop" \
    --bookers "${BW_CLUSTER_BOOKERS:-4}" --hooks 2 "${naive[@]}" \
    >"$TMP/load.json" 2>"$TMP/load.err" &
LOAD=$!

sleep 5
old=$(cluster_pg_primary)
# The primary's walsenders stop for STALL ms before the kill: commits made
# meanwhile are on the primary only. In synchronous mode none of them was
# acknowledged (each waits for the sync standby's flush); asynchronous
# replication acknowledges them and the failover loses them.
stalled=()
if [ "${BW_CLUSTER_STALL_MS:-2000}" -gt 0 ]; then
	pm=$(cluster_pg_postmaster "$old")
	for p in $(pgrep -P "$pm" -f walsender); do
		kill -STOP "$p" && stalled+=("$p")
	done
	echo "# walsenders of pg$old stopped: ${#stalled[@]} (pids ${stalled[*]})"
	sleep "$(awk -v m="${BW_CLUSTER_STALL_MS:-2000}" 'BEGIN { print m / 1000 }')"
fi
cluster_kill_pg "$old"
# Taken once the kill is done (on a busy machine the helper takes a while).
t0=$(date +%s%N)
kill_ms=$((t0 / 1000000))
echo "# SIGKILL pg$old (Patroni + PostgreSQL) done at $kill_ms"
new=
for _ in $(seq 1 600); do
	new=$(cluster_pg_primary)
	[ -n "$new" ] && [ "$new" != "$old" ] && break
	sleep 0.1
done
promoted_ms=$((($(date +%s%N) - t0) / 1000000))
t_check "Patroni promoted another node (pg$old -> pg${new:-none})" \
    test -n "$new" -a "$new" != "$old"
echo "# Patroni: new primary pg$new ${promoted_ms} ms after the kill"
# Load on the new primary for a while, then stop.
sleep 10
touch "$TMP/stop"
wait "$LOAD"
t_check "the load client finished" test -s "$TMP/load.json"
R=$TMP/load.json
echo "# statuses: $(jq -c .statuses "$R")"
echo "# webhook outcomes: $(jq -c .hook_outcomes "$R")"
echo "# longest stretch without a 2xx: $(jq -c .longest_gap_ms "$R")"

if [ "${BW_CLUSTER_PLANT:-0}" = 1 ]; then
	cls=$(jq -r '.bookings_acked[0]' "$R")
	curl -sk -o /dev/null -X POST -H "Authorization: Bearer $KEY" \
	    -H "Idempotency-Key: planted-$SFX" -H 'Content-Type: application/json' \
	    --data "{\"user_id\":\"u$SFX\",\"class_id\":\"$cls\",\"credits\":1}" \
	    "$U1/api/v1/bookings"
	echo "# planted: $cls booked a second time under another key"
fi

# --- what the clients saw ----------------------------------------------------
t_eq "clients saw only 2xx, 409 and retryable 5xx / lost connections" \
    0 "$(jq '.bad | length' "$R")"
jq -c '.bad[:5][]' "$R" | sed 's/^/#   bad: /'
t_ge "bookings acknowledged on both sides of the kill" 1 \
    "$(awk -v k="$kill_ms" '$2 == "booking" && $4 == 201 && $1 > k' \
    "$TMP/load.log" | wc -l)"
t_eq "no booking given up by its client" 0 \
    "$(jq '.bookings_failed | length' "$R")"
t_eq "no delivery given up by its sender" 0 \
    "$(jq '.hooks_failed | length' "$R")"

# --- the database, against what was acknowledged -------------------------------
jq -r '.bookings_acked[]' "$R" | sort >"$TMP/acked_b"
t_sql "SELECT class_id FROM bookings WHERE org_id = '$ORG'" | sort >"$TMP/db_b"
nack=$(wc -l <"$TMP/acked_b")
echo "# bookings: $nack acknowledged, $(wc -l <"$TMP/db_b") rows"
t_eq "every acknowledged booking exists (none lost by the failover)" 0 \
    "$(comm -23 "$TMP/acked_b" <(sort -u "$TMP/db_b") | wc -l)"
t_eq "no class booked twice" 0 "$(uniq -d "$TMP/db_b" | wc -l)"
t_le "rows beyond the acknowledged: only bookings whose answer was lost" \
    "$(jq '[.statuses | to_entries[] | select(.key |
    test("^booking (000|5)")) | .value] | add // 0' "$R")" \
    "$(($(wc -l <"$TMP/db_b") - nack))"
t_eq "one debit per booking row" "$(wc -l <"$TMP/db_b")" \
    "$(t_sql "SELECT count(*) FROM credit_transfers WHERE org_id = '$ORG'
    AND kind = 'booking'")"

jq -r '.hooks_acked[]' "$R" | sort >"$TMP/acked_w"
t_sql "SELECT event_id FROM webhook_events WHERE org_id = '$ORG'" |
    sort >"$TMP/db_w"
t_sql "SELECT anchor FROM credit_transfers WHERE org_id = '$ORG'
    AND anchor LIKE 'stripe:%'" | sed 's/^stripe:pi_/evt_/' | sort >"$TMP/db_g"
echo "# deliveries: $(wc -l <"$TMP/acked_w") events acknowledged, $(wc -l <"$TMP/db_w") event rows, $(wc -l <"$TMP/db_g") grants"
t_eq "every acknowledged delivery: its event row" 0 \
    "$(comm -23 "$TMP/acked_w" "$TMP/db_w" | wc -l)"
t_eq "every acknowledged delivery: its grant" 0 \
    "$(comm -23 "$TMP/acked_w" "$TMP/db_g" | wc -l)"
t_eq "no grant twice" 0 "$(uniq -d "$TMP/db_g" | wc -l)"
# A delivery whose answer was lost (503 after its commit) is processed
# without its sender seeing "processed"; its redelivery says duplicate.
nproc=$(jq '.hook_outcomes.processed // 0' "$R")
t_le "\"processed\" answers: at most one per event row" "$(wc -l <"$TMP/db_w")" \
    "$nproc"
t_le "event rows not answered \"processed\": only deliveries whose answer was lost" \
    "$(jq '[.statuses | to_entries[] | select(.key |
    test("^webhook (000|5)")) | .value] | add // 0' "$R")" \
    "$(($(wc -l <"$TMP/db_w") - nproc))"

CHECK=$(t_ctl ledger check --org "$ORG" 2>"$TMP/check.err" | jq -r .clean)
t_eq "bulwarkctl ledger check clean" true "$CHECK"

# --- the window ----------------------------------------------------------------
# From the kill to the first acknowledged booking (delivery) whose request
# was sent after the kill.
win=$(awk -v k="$kill_ms" \
    '$2 == "booking" && $4 == 201 && $6 > k { print $1 - k; exit }' \
    "$TMP/load.log")
wwin=$(awk -v k="$kill_ms" \
    '$2 == "webhook" && $4 == 200 && $6 > k { print $1 - k; exit }' \
    "$TMP/load.log")
echo "# unavailability window: bookings ${win:-none} ms, deliveries ${wwin:-none} ms after the kill (Patroni promoted ${promoted_ms} ms after it); longest stretch without a 2xx (incl. the stall): $(jq -c '.longest_gap_ms | map_values(.[0])' "$R"); retryable answers: $(jq -c '[.statuses | to_entries[] | select(.key | test(" (000|5)"))] | from_entries' "$R")"
t_le "bookings answered again within 60 s" 60000 "${win:-999999}"

# Bring the old primary back as a replica (for the next script).
cluster_start_patroni "$old" >/dev/null 2>&1 || true
t_done
