#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Chat under failure: Redis down -> 503 DEPENDENCY_UNAVAILABLE quickly with
# no provider call, and recovery without restarting anything; a child
# killed (-9) while it holds an LLM lease frees its slot within the lease
# expiry + 1 s; turns with injected provider faults and client aborts leave
# no lease in use and no hold unsettled. Bounded: about 60 s.
. "${BW_TOP:?}/tests/lib/common.sh"
t_stack

SFX="$$-$(date +%s)"
SIM=$BW_LLM_SIM_URL
MPID=
M2PID=

cleanup() {
	[ -n "$MPID" ] && kill -TERM "$MPID" 2>/dev/null
	[ -n "$M2PID" ] && kill -TERM "$M2PID" 2>/dev/null
	stack_start_one redis >/dev/null 2>&1
	curl -s -X POST "$SIM/_sim/reset" >/dev/null
}
t_on_exit cleanup

new_org() {
	local o k
	o=$(t_ctl org create --name "$1-$SFX" --tier pro | jq -r .id)
	k=$(t_ctl key create --org "$o" --role owner | jq -r .key)
	t_sql "INSERT INTO org_rate_limits (org_id, route, scope, \"limit\", window_s)
	    VALUES ('$o', 'chat', 'org', 1000000, 60),
	    ('$o', 'chat', 'ip', 1000000, 10) ON CONFLICT DO NOTHING" >/dev/null
	echo "$o $k"
}
chat() {
	t_freq --socket "$1" --method POST --path /api/v1/chat \
	    --header "Authorization: Bearer $2" --timeout "${4:-60}" \
	    --body "{\"channel\":\"web\",\"user_id\":\"$3\",\"message\":\"hi\"}" |
	    cut -d' ' -f2-
}
leases() {
	redis-cli -p "$REDIS_PORT" --raw eval "local t = redis.call('TIME')
	return redis.call('ZCOUNT', KEYS[1],
	  t[1] * 1000 + math.floor(t[2] / 1000), '+inf')" 1 'sem:{llm}:g'
}

# Our own master with short leases (4 s) so that expiry is quick to see.
sed -e "s|^fcgi_socket = .*|fcgi_socket = $TMP/c.sock|" \
    -e "s|^pid_file = .*|pid_file = $TMP/c.pid|" \
    -e "s|^fcgi_children = .*|fcgi_children = 8|" "$BW_CONFIG" >"$TMP/c.conf"
printf 'chat_lease_ttl_ms = 4000\n' >>"$TMP/c.conf"
"$BW_BUILD/bulwark-fcgi" -c "$TMP/c.conf" >>"$TMP/c.log" 2>&1 &
MPID=$!
for _ in $(seq 50); do [ -S "$TMP/c.sock" ] && break; sleep 0.1; done
S=$TMP/c.sock
curl -s -X POST "$SIM/_sim/reset" >/dev/null

# --- Redis down -------------------------------------------------------------
read -r RO RK < <(new_org redisdown)
stack_stop_one redis
t0=$(date +%s%N)
out=$(chat "$S" "$RK" u1)
ms=$((($(date +%s%N) - t0) / 1000000))
t_match "redis down: 503 DEPENDENCY_UNAVAILABLE" \
    '^503 .*DEPENDENCY_UNAVAILABLE' "$out"
t_le "redis down: answered quickly ($ms ms)" 3000 "$ms"
t_eq "redis down: no provider call" null \
    "$(curl -s "$SIM/_sim/stats" | jq ".by_org[\"$RO\"].requests")"
t_eq "redis down: no hold left" 0 \
    "$(t_sql "SELECT count(*) FROM llm_holds WHERE org_id = '$RO' AND state = 'held'")"
stack_start_one redis
ok=
for _ in $(seq 20); do
	out=$(chat "$S" "$RK" u2)
	case $out in 200*) ok=1; break ;; esac
	sleep 0.5
done
t_eq "redis back: chat recovers without a restart" 1 "${ok:-0}"

# --- kill -9 a child holding a lease -----------------------------------------
read -r KO KK < <(new_org kill)
t_ctl prompt set --org "$KO" --org-cap 1 >/dev/null
curl -s -X POST "$SIM/_sim/script" -d "{\"org\":\"$KO\",\"hang\":true}" \
    >/dev/null
chat "$S" "$KK" holder 60 >/dev/null 2>&1 &
HPID=$!
for _ in $(seq 50); do
	[ "$(curl -s "$SIM/_sim/stats" | jq ".by_org[\"$KO\"].in_flight")" = 1 ] &&
	    break
	sleep 0.1
done
victim=$(ss -Htnp state established "( dport = :${SIM##*:} )" 2>/dev/null |
    grep -o 'pid=[0-9]*' | cut -d= -f2 | while read -r p; do
	[ "$(ps -o ppid= -p "$p" | tr -d ' ')" = "$MPID" ] && echo "$p"
    done | head -n 1)
curl -s -X POST "$SIM/_sim/script" -d "{\"org\":\"$KO\"}" >/dev/null
if [ -n "$victim" ]; then
	kill -9 "$victim"
	t0=$(date +%s%N)
	out=$(chat "$S" "$KK" next)
	ms=$((($(date +%s%N) - t0) / 1000000))
	t_match "kill -9: the org's only slot is usable again" '^200 ' "$out"
	t_le "kill -9: within the lease expiry + 1 s ($ms ms)" 5000 "$ms"
else
	t_fail "kill -9: found the child holding the lease" "no victim"
fi
wait "$HPID" 2>/dev/null

# --- faults and client aborts ------------------------------------------------
read -r FO FK < <(new_org faults)
curl -s -X POST "$SIM/_sim/script" -d "{\"org\":\"$FO\",\"delay_ms\":200,
    \"statuses\":[503,200,500,\"close\",200,429,\"malformed\",200,502,200,
    400,200,503,\"hang\",200,200,504,200,408,200]}" >/dev/null
for j in $(seq 300); do
	printf '{"channel":"web","user_id":"f%d","message":"fault %d"}\n' \
	    "$((j % 7))" "$j"
done >"$TMP/f.bodies"
# Half of the clients give up after 0.3 s (nginx would abort the request).
t_freq --socket "$S" --socket "$BW_FCGI_SOCKET" --method POST \
    --path /api/v1/chat --header "Authorization: Bearer $FK" \
    --bodies-file <(sed -n '1~2p' "$TMP/f.bodies") --concurrency 30 \
    --timeout 0.3 >"$TMP/f1.out" &
APID=$!
t_freq --socket "$S" --socket "$BW_FCGI_SOCKET" --method POST \
    --path /api/v1/chat --header "Authorization: Bearer $FK" \
    --bodies-file <(sed -n '2~2p' "$TMP/f.bodies") --concurrency 30 \
    --timeout 60 >"$TMP/f2.out"
wait "$APID"
# Every turn ends within its 30 s deadline; give them time to.
for _ in $(seq 80); do
	h=$(t_sql "SELECT count(*) FROM llm_holds WHERE org_id = '$FO' AND
	    state = 'held'")
	[ "$h" = 0 ] && [ "$(leases)" = 0 ] && break
	sleep 0.5
done
t_eq "faults: every hold settled" 0 "$h"
t_eq "faults: leases in use back to 0" 0 "$(leases)"
t_eq "faults: reserved back to 0" 0 \
    "$(t_sql "SELECT COALESCE(sum(reserved_micros),0) FROM org_budget_days
    WHERE org_id = '$FO'")"
t_ge "faults: turns were answered" 100 \
    "$(awk '$2 == 200 || $2 == 502' "$TMP/f2.out" | wc -l)"

# --- 3,000 turns with a repeating fault pattern and client aborts -----------
# A master with many children (retries wait 1 s, holding their child), the
# simulator failing one attempt in six in every way it can (5xx, 429,
# 408, a closed connection, malformed JSON, a 400 that must not be
# retried), and a third of the clients giving up after 0.2 s. Afterwards
# no lease may be left in use, every hold must be settled and nothing
# reserved: the chat path releases on every way out.
sed -e "s|^fcgi_socket = .*|fcgi_socket = $TMP/m.sock|" \
    -e "s|^pid_file = .*|pid_file = $TMP/m.pid|" \
    -e "s|^fcgi_children = .*|fcgi_children = 64|" "$BW_CONFIG" >"$TMP/m.conf"
"$BW_BUILD/bulwark-fcgi" -c "$TMP/m.conf" >>"$TMP/m.log" 2>&1 &
M2PID=$!
for _ in $(seq 50); do [ -S "$TMP/m.sock" ] && break; sleep 0.1; done
read -r TO TK < <(new_org tenk)
t_ctl prompt set --org "$TO" --org-cap 15 >/dev/null
pattern='503,200,200,200,200,"close",200,200,200,200,200,200,"malformed",200,
    200,200,200,200,400,200,200,200,200,200,500,200,200,200,200,200,429,200,
    200,200,200,200,408,200,200,200'
curl -s -X POST "$SIM/_sim/script" -d "{\"org\":\"$TO\",\"cycle\":true,
    \"statuses\":[$pattern]}" >/dev/null
for j in $(seq 3000); do
	printf '{"channel":"api","user_id":"t%d","message":"turn %d"}\n' \
	    "$((j % 50))" "$j"
done >"$TMP/t.bodies"
start=$(date +%s)
t_freq --socket "$TMP/m.sock" --method POST --path /api/v1/chat \
    --header "Authorization: Bearer $TK" \
    --bodies-file <(sed -n '1~3p' "$TMP/t.bodies") --concurrency 20 \
    --timeout 0.2 >"$TMP/t1.out" &
APID=$!
t_freq --socket "$TMP/m.sock" --method POST --path /api/v1/chat \
    --header "Authorization: Bearer $TK" \
    --bodies-file <(sed -e '1~3d' "$TMP/t.bodies") --concurrency 40 \
    --timeout 60 >"$TMP/t2.out"
wait "$APID"
for _ in $(seq 80); do
	h=$(t_sql "SELECT count(*) FROM llm_holds WHERE org_id = '$TO' AND
	    state = 'held'")
	[ "$h" = 0 ] && [ "$(leases)" = 0 ] && break
	sleep 0.5
done
kill -TERM "$M2PID" 2>/dev/null
n=$(($(wc -l <"$TMP/t1.out") + $(wc -l <"$TMP/t2.out")))
t_eq "3k: every turn was sent ($(($(date +%s) - start)) s)" 3000 "$n"
t_eq "3k: every hold settled" 0 "$h"
t_eq "3k: leases in use back to 0" 0 "$(leases)"
t_eq "3k: reserved back to 0" 0 \
    "$(t_sql "SELECT COALESCE(sum(reserved_micros),0) FROM org_budget_days
    WHERE org_id = '$TO'")"
t_eq "3k: one hold per turn that reached the budget step, none left" 0 \
    "$(t_sql "SELECT count(*) FROM llm_holds WHERE org_id = '$TO' AND
    state NOT IN ('settled', 'expired')")"
# Clients that waited got an answer of the contract: 200, or 502 with the
# fallback reply after retries, or 503 when no slot freed in time.
t_eq "3k: waiting clients got 200, 502 or 503 only" 0 \
    "$(awk '$2 != 200 && $2 != 502 && $2 != 503' "$TMP/t2.out" | wc -l)"
t_ge "3k: most waiting clients got a reply" 1500 \
    "$(awk '$2 == 200' "$TMP/t2.out" | wc -l)"
t_ge "3k: the simulator saw the faults" 300 \
    "$(curl -s "$SIM/_sim/stats" | jq "[.by_status | to_entries[] |
    select(.key != \"200\") | .value] | add // 0")"

t_done
