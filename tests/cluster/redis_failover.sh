#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The Redis master dies under chat load (issue 14): both hosts serve chat
# turns for 8 orgs (32 client threads, the LLM simulator answering in
# 400 ms, so more turns want the LLM than the global cap llm_global_cap =
# 15 allows), then SIGKILL to the Redis master; the Sentinels promote a
# replica, the hosts follow (redis_sentinels + redis_master_name). The
# simulator's in-flight count (GET /_sim/stats, polled every 100 ms, and its
# own max_in_flight) never exceeds 15 before, during or after the
# failover, and chat answers 200 again within 30 s without restarting
# Bulwark (the bulwark-fcgi masters' pids are the same). Prints the window
# (kill -> first 200 after it) and the statuses the clients saw.
#
# No turn fails open while Redis has no master: the simulator logs each
# provider call's arrival (arrived_ms) and the turn's X-Request-ID, and
# load.py each answer's X-Request-ID. The new master's fence (its
# sem:{llm}:fence `until`, lib/chat/sem.c) must end a lease lifetime
# (chat_lease_ttl_ms) or more after the kill, and no provider call of a
# turn that had none before the kill may start from the kill until then;
# so every 200 answered in that span is a turn whose provider call started
# before the kill under a lease of the old master (its renewals and its
# release then fail, the call goes on while the lease is still valid:
# lib/chat/chat.c tick()), and the script prints those turns.
#
# Needs the Sentinel client (lib/core/rds_sentinel.c, branch s-sentinel): without
# redis_sentinels in the tree the script says SKIP and checks nothing.
# BW_CLUSTER_PLANT=1 sends 16 requests of its own straight to the
# simulator during the load (as a host that ignored the cap would), so the
# cap checks must fail.
. "${BW_TOP:?}/tests/lib/common.sh"
t_need BW_CONFIG DATABASE_URL BW_CLUSTER_RUN BW_LLM_SIM_URL
# shellcheck source-path=SCRIPTDIR source=../../dev/lib/cluster.sh
. "$BW_TOP/dev/lib/cluster.sh"
cluster_load "$BW_CLUSTER_RUN"
SIM=$BW_LLM_SIM_URL
POLL=
cleanup() {
	[ -n "$POLL" ] && kill "$POLL" 2>/dev/null
	curl -s -X POST "$SIM/_sim/reset" >/dev/null
	t_kill_jobs
}
t_on_exit cleanup

if ! cluster_has_sentinel_client; then
	echo "ok - # SKIP redis failover: this tree's config has no" \
	    "redis_sentinels (the Sentinel client of branch s-sentinel)"
	exit 0
fi

SFX="$$$RANDOM"
U1=$(. "$CRUN/h1/env" && echo "$BULWARK_URL")
U2=$(. "$CRUN/h2/env" && echo "$BULWARK_URL")
keys=()
for i in 1 2 3 4 5 6 7 8; do
	org=$(t_ctl org create --name "cluster-chat-$i-$SFX" | jq -r .id)
	keys+=(--chat-key "$(t_ctl key create --org "$org" --role member |
	    jq -r .key)")
	t_sql "INSERT INTO org_rate_limits (org_id, route, scope, \"limit\",
	    window_s) VALUES ('$org', 'chat', 'org', 1000000, 60),
	    ('$org', 'chat', 'ip', 1000000, 10) ON CONFLICT DO NOTHING" \
	    >/dev/null
done
F1=$(RUN=$CRUN/h1; stack_pid bulwark-fcgi)
F2=$(RUN=$CRUN/h2; stack_pid bulwark-fcgi)

curl -s -X POST "$SIM/_sim/reset" >/dev/null
curl -s -X POST "$SIM/_sim/script" -d '{"delay_ms": 400}' >/dev/null
SIMLOG=$CRUN/sim/log/llm-sim.log
SIMOFF=$(($(stat -c %s "$SIMLOG") + 1))
LEASE=$(awk '$1 == "chat_lease_ttl_ms" { v = $3 } END { print v + 0 }' \
    "$CRUN/h1/fcgi.conf")
[ "$LEASE" -gt 0 ] || LEASE=10000 # lib/core/config.c's default
# The simulator's in-flight count, every 100 ms.
(
	while :; do
		printf '%s %s\n' "$(($(date +%s%N) / 1000000))" \
		    "$(curl -s -m 1 "$SIM/_sim/stats" | jq -r .in_flight)"
		sleep 0.1
	done
) >"$TMP/inflight" 2>/dev/null &
POLL=$!
python3 "$BW_TOP/tests/cluster/load.py" --url "$U1" --url "$U2" \
    --api-key none --org none --user none --stripe-secret none \
    --bookers 0 --hooks 0 "${keys[@]}" --chatters 32 \
    --prefix "ch$SFX" --log "$TMP/load.log" --stop-file "$TMP/stop" \
    >"$TMP/load.json" 2>"$TMP/load.err" &
LOAD=$!
sleep 4
if [ "${BW_CLUSTER_PLANT:-0}" = 1 ]; then
	# 16 requests of our own, straight to the simulator, on top of
	# Bulwark's: over the cap.
	# Held 4 s each (a script for their org only), so they overlap.
	curl -s -X POST "$SIM/_sim/script" \
	    -d '{"org": "planted", "delay_ms": 4000}' >/dev/null
	for _ in $(seq 1 16); do
		curl -s -m 10 -o /dev/null "$SIM/v1/chat/completions" \
		    -H 'Content-Type: application/json' -H 'X-Bulwark-Org: planted' \
		    -H "Authorization: Bearer $(cat "$CRUN/sim/llm_api_key")" \
		    -d '{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}' &
	done
fi
sleep 4
old=$(cluster_redis_master)
# Under this load a fork takes up to seconds: the kill's time is taken in
# the process that kills, just before (kill_ms) and after (kill_done) the
# kill(2); the dev/cluster helpers only find the pid, then note the death.
oldn=$(cluster_redis_node "$old")
rpid=$(cluster_pid "redis$oldn")
read -r kill_ms kill_done < <(python3 -c 'import os, sys, time
a = time.time(); os.kill(int(sys.argv[1]), 9); b = time.time()
print(int(a * 1000), int(b * 1000) + 1)' "$rpid")
cluster_kill_redis "$oldn"
echo "# SIGKILL the Redis master $old at $kill_ms (kill returned $((kill_done - kill_ms)) ms later)"
for _ in $(seq 1 300); do
	[ "$(cluster_redis_master)" != "$old" ] && break
	sleep 0.1
done
new=$(cluster_redis_master)
prom=$(($(date +%s%N) / 1000000 - kill_ms))
prom_ms=$((kill_ms + prom))
t_check "the sentinels promoted a replica ($old -> $new)" \
    test "$new" != "$old"
echo "# sentinels: new master $new ${prom} ms after the kill"
sleep 25
touch "$TMP/stop"
wait "$LOAD"
kill "$POLL" 2>/dev/null
POLL=
STATS=$(curl -s "$SIM/_sim/stats")
R=$TMP/load.json
echo "# chat statuses: $(jq -c .statuses "$R")"
echo "# simulator: $(jq -c '{requests, max_in_flight}' <<<"$STATS")"
peak=$(awk '$2 ~ /^[0-9]+$/ && $2 > m { m = $2 } END { print m + 0 }' \
    "$TMP/inflight")
t_le "the simulator's max_in_flight never above the global cap 15" 15 \
    "$(jq -r .max_in_flight <<<"$STATS")"
t_le "polled in-flight never above 15 (peak seen)" 15 "$peak"
t_ge "the cap was reached (the load pressed on it): peak >= 10" 10 "$peak"
# The window: from the kill to the first 200 of a turn sent after it; and
# the longest stretch without a 200 (the fence: no lease on a new master
# for one lease lifetime).
first=$(awk -v k="$kill_ms" \
    '$2 == "chat" && $4 == 200 && $6 > k { print $1; exit }' \
    "$TMP/load.log")
t_check "chat answered 200 again after the failover" test -n "$first"
win=$((${first:-$kill_ms} - kill_ms))
echo "# window: first 200 of a turn sent after the kill ${win} ms after it; longest stretch without a 200: $(jq -c '.longest_gap_ms.chat[0]' "$R") ms; 503s by error: $(awk '$2 == "chat" && $4 == 503' "$TMP/load.log" | wc -l)"
t_le "chat recovered within 30 s" 30000 "$win"

# Provider calls: "arrived_ms request_id" at the simulator since the start.
tail -c +"$SIMOFF" "$SIMLOG" | jq -r 'select(.path == "/v1/chat/completions")
    | "\(.arrived_ms) \(.request_id // "-")"' 2>/dev/null | sort -n >"$TMP/calls"
# The new master's fence: no lease before `until` (its clock, ms); the
# first acquire on it set until = its now + one lease lifetime.
fence_end=$(redis-cli -h "${new%:*}" -p "${new##*:}" hget 'sem:{llm}:fence' until)
echo "# the new master's fence ends $((fence_end - kill_ms)) ms after the kill, $((fence_end - prom_ms)) ms after the promotion was seen"
t_ge "the new master's fence ends one lease lifetime (${LEASE} ms) or more after the kill" \
    $((kill_done + LEASE)) "${fence_end:-0}"
if [ "${BW_CLUSTER_PLANT:-0}" = 1 ]; then
	# A provider call made while Redis had no master, and a 200 for it.
	echo "$((kill_ms + 500)) planted-rid" >>"$TMP/calls"
	echo "$((kill_ms + 900)) chat 1 200 planted-rid $((kill_ms + 400))" \
	    >>"$TMP/load.log"
	echo "# planted: a provider call 500 ms after the kill, answered 200"
fi
t_ge "the simulator logged the provider calls with their request ids" 100 \
    "$(awk '$2 != "-"' "$TMP/calls" | wc -l)"
# Calls from the kill to the fence's end of turns without a call before.
awk -v k="$kill_ms" -v d="$kill_done" -v f="$fence_end" '$1 < k { seen[$2] = 1; next }
    $1 >= d && $1 < f && !($2 in seen) { print }' "$TMP/calls" >"$TMP/open_calls"
t_eq "no provider call started from the kill until one lease lifetime after the promotion (${LEASE} ms, the fence), but retries of turns called before the kill" \
    0 "$(wc -l <"$TMP/open_calls")"
# The 200s answered from the kill to the fence's end: each one's first
# provider call arrived before the kill.
awk 'NR == FNR { if (!($2 in first)) first[$2] = $1; next }
    $2 == "chat" && $4 == 200 && $1 >= d && $1 < f {
	print $1 - k, $6 - k, ($5 in first) ? first[$5] - k : "none", $5 }' \
    k="$kill_ms" d="$kill_done" f="$fence_end" "$TMP/calls" "$TMP/load.log" >"$TMP/late200"
echo "# 200s answered after the kill, before the fence's end ($(wc -l <"$TMP/late200")): ms after the kill of answer, send, provider call; request id"
sed 's/^/#   /' "$TMP/late200" | head -n 20
t_eq "each of them had its provider call start before the kill" "" \
    "$(awk -v d=$((kill_done - kill_ms)) '$3 == "none" || $3 >= d' "$TMP/late200" |
    head -n 3 | tr '\n' ';')"
t_ge "chat answered 200s in the last 10 s" 1 \
    "$(awk -v t=$(($(date +%s%N) / 1000000 - 12000)) \
    '$2 == "chat" && $4 == 200 && $1 > t' "$TMP/load.log" | wc -l)"
t_eq "no host restarted (same bulwark-fcgi masters)" "$F1 $F2" \
    "$(RUN=$CRUN/h1; stack_pid bulwark-fcgi) $(RUN=$CRUN/h2; stack_pid bulwark-fcgi)"
t_eq "clients saw only 200, 429/503 with Retry-After semantics, or 502" 0 \
    "$(jq '[.statuses | to_entries[] | select(.key |
    test(" (200|429|502|503)$") | not)] | length' "$R")"
# The old master comes back as a replica of the new one.
cluster_start_redis >/dev/null 2>&1 || true
t_done
