#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Redis under Sentinel, for real: a master, 2 replicas and 3 sentinels of
# our own on free loopback ports, and a bulwark-fcgi master that knows only
# the sentinels (redis_sentinels, redis_master_name; llm_global_cap 4).
# Under 8 concurrent chat turns (6 s each at the simulator) the replicas
# are cut off the replication stream (an ACL on the master refuses their
# PSYNC), so the 4 leases the burst takes exist on the master alone - what
# asynchronous replication loses on a slow link, made certain - and the
# master is killed with SIGKILL. Sentinel promotes a replica that has none
# of those leases while their 4 calls still run. Shown:
#   - chat recovers without restarting bulwark-fcgi (the first 200 after
#     the kill, and the time it took);
#   - the in-flight count at the simulator never exceeds 4, before, during
#     and after the failover (the new master's fence, lib/chat/sem.c);
#   - nothing was ever written to a replica: no READONLY error counted by
#     any server (INFO errorstats), none in bulwark's log;
#   - every answer was 200 or 503.
# About 40 s.
. "${BW_TOP:?}/tests/lib/common.sh"

SIM=$BW_LLM_SIM_URL
SFX="$$-$(date +%s)"
D=$TMP/sentinel
mkdir -p "$D"
CAP=4
LEASE_MS=15000
DELAY_MS=6000
PIDS=()

cleanup() {
	local p
	[ -f "$D/fcgi.pid" ] && kill -TERM "$(cat "$D/fcgi.pid")" 2>/dev/null
	touch "$D/stop"
	for p in "${PIDS[@]}"; do
		kill -CONT "$p" 2>/dev/null
		kill -9 "$p" 2>/dev/null
	done
	[ -f "$D/fcgi.pid" ] && kill -9 "$(cat "$D/fcgi.pid")" 2>/dev/null
	wait 2>/dev/null
	curl -s -X POST "$SIM/_sim/reset" >/dev/null
}
t_on_exit cleanup

command -v redis-server >/dev/null || {
	t_fail "redis-server" "not installed"
	t_done
}

# Six free loopback ports: master, 2 replicas, 3 sentinels.
read -r PM PR1 PR2 PS1 PS2 PS3 < <(python3 -c '
import socket
ss = [socket.socket() for _ in range(6)]
for s in ss:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))')

rcli() { local p=$1; shift; redis-cli -h 127.0.0.1 -p "$p" "$@"; }

# redis NAME PORT [ARGS...]: a data server of ours, no persistence.
redis() {
	local n=$1 p=$2
	shift 2
	mkdir -p "$D/$n"
	redis-server --port "$p" --bind 127.0.0.1 --save '' --appendonly no \
	    --dir "$D/$n" --logfile "$D/$n.log" --daemonize no "$@" &
	PIDS+=($!)
	eval "PID_$n=$!"
}
redis m "$PM"
redis r1 "$PR1" --replicaof 127.0.0.1 "$PM"
redis r2 "$PR2" --replicaof 127.0.0.1 "$PM"
for n in 1 2 3; do
	eval "p=\$PS$n"
	mkdir -p "$D/s$n"
	cat >"$D/s$n.conf" <<EOF
port $p
bind 127.0.0.1
dir $D/s$n
logfile $D/s$n.log
sentinel monitor bulwark 127.0.0.1 $PM 2
sentinel down-after-milliseconds bulwark 2000
sentinel failover-timeout bulwark 2500
sentinel parallel-syncs bulwark 2
EOF
	redis-server "$D/s$n.conf" --sentinel &
	PIDS+=($!)
done

# Ready: both replicas in sync, every sentinel knows both and the others.
ready=0
for _ in $(seq 150); do
	n=0
	for p in $PR1 $PR2; do
		rcli "$p" info replication 2>/dev/null |
		    grep -q 'master_link_status:up' && n=$((n + 1))
	done
	for p in $PS1 $PS2 $PS3; do
		m=$(rcli "$p" sentinel master bulwark 2>/dev/null | paste - - |
		    awk '$1 ~ /^num-(slaves|other-sentinels)$/ { printf "%s ", $2 }')
		[ "$m" = "2 2 " ] && n=$((n + 1))
	done
	[ "$n" -eq 5 ] && { ready=1; break; }
	sleep 0.2
done
t_eq "cluster: master, 2 replicas, 3 sentinels that know each other" 1 \
    "$ready"

# The org: chat limits raised so that only the LLM cap shapes the load.
ORG=$(t_ctl org create --name "sentinel-$SFX" --tier pro | jq -r .id)
KEY=$(t_ctl key create --org "$ORG" --role owner | jq -r .key)
psql "$DATABASE_URL" -qAtX -c "INSERT INTO org_rate_limits
    (org_id, route, scope, \"limit\", window_s) VALUES
    ('$ORG', 'chat', 'org', 1000000, 60), ('$ORG', 'chat', 'ip', 1000000, 10)
    ON CONFLICT DO NOTHING" >/dev/null

# bulwark-fcgi: redis_url gives no server (its host is unused), the
# sentinels do.
sed -e "s|^fcgi_socket = .*|fcgi_socket = $D/fcgi.sock|" \
    -e "s|^pid_file = .*|pid_file = $D/fcgi.pid|" \
    -e "s|^fcgi_children = .*|fcgi_children = 2|" \
    "$BW_CONFIG" >"$D/fcgi.conf"
env BULWARK_REDIS_URL=redis://nowhere.invalid:1/0 \
    BULWARK_REDIS_SENTINELS="127.0.0.1:$PS1, 127.0.0.1:$PS2,127.0.0.1:$PS3" \
    BULWARK_REDIS_MASTER_NAME=bulwark BULWARK_LLM_GLOBAL_CAP=$CAP \
    BULWARK_LLM_ORG_CAP=10 BULWARK_CHAT_LEASE_TTL_MS=$LEASE_MS \
    BULWARK_FCGI_CHAT_CHILDREN=12 \
    "$BW_BUILD/bulwark-fcgi" -c "$D/fcgi.conf" >>"$D/fcgi.log" 2>&1 &
PIDS+=($!)
FPID=$!
for _ in $(seq 100); do [ -S "$D/fcgi-chat.sock" ] && break; sleep 0.1; done
CS=$D/fcgi-chat.sock

chat() {
	t_freq --socket "$CS" --method POST --path /api/v1/chat \
	    --header "Authorization: Bearer $KEY" \
	    --body "{\"channel\":\"web\",\"user_id\":\"u$1\",\"message\":\"hi $1\"}" \
	    --timeout 60 | cut -d' ' -f2
}
curl -s -X POST "$SIM/_sim/reset" >/dev/null
t_eq "before: a chat turn through the sentinels' master" 200 "$(chat 0)"
t_check "before: bulwark-fcgi found the master by asking a sentinel" \
    grep -q "redis master from sentinel.*$PM" "$D/fcgi.log"

# The load: 8 threads, each one turn after another until $D/stop, each
# line "<start ms> <end ms> <status>" (ms since the epoch).
cat >"$D/load.py" <<'EOF'
import json, os, sys, threading, time
sys.path.insert(0, os.environ["BW_TOP"] + "/tests/lib")
from fcgi_req import one
sock, key, stop, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
lock = threading.Lock()
def run(i):
    j = 0
    while not os.path.exists(stop):
        j += 1
        b = json.dumps({"channel": "web", "user_id": "l%d" % i,
                        "message": "turn %d" % j}).encode()
        p = {"REQUEST_METHOD": "POST", "DOCUMENT_URI": "/api/v1/chat",
             "REQUEST_URI": "/api/v1/chat", "SCRIPT_NAME": "/api/v1/chat",
             "QUERY_STRING": "", "SERVER_PROTOCOL": "HTTP/1.1",
             "REMOTE_ADDR": "127.0.0.1", "HTTPS": "on",
             "HTTP_AUTHORIZATION": "Bearer " + key,
             "CONTENT_TYPE": "application/json",
             "CONTENT_LENGTH": str(len(b))}
        t0 = time.time()
        st, _ = one(sock, p, b, 60)
        with lock:
            print("%d %d %s" % (t0 * 1000, time.time() * 1000, st),
                  flush=True)
        if st != "200":
            time.sleep(0.5)
ts = [threading.Thread(target=run, args=(i,)) for i in range(n)]
for t in ts: t.start()
for t in ts: t.join()
EOF

# The cap sampled at the simulator every 200 ms: "<ms> <in_flight>".
sampler() {
	while [ ! -f "$D/stop" ]; do
		printf '%s %s\n' "$(date +%s%3N)" \
		    "$(curl -s "$SIM/_sim/stats" | jq .in_flight)"
		sleep 0.2
	done
}

# --- the replicas cut off, the burst, the kill ---------------------------
rcli "$PM" acl setuser default -psync -sync >/dev/null
rcli "$PM" client kill type replica >/dev/null
cut=0
for _ in $(seq 50); do
	n=0
	for p in $PR1 $PR2; do
		rcli "$p" info replication | grep -q 'master_link_status:down' &&
		    n=$((n + 1))
	done
	[ "$n" -eq 2 ] && { cut=1; break; }
	sleep 0.1
done
t_eq "the replicas are cut off the master's stream" 1 "$cut"

curl -s -X POST "$SIM/_sim/script" -d "{\"delay_ms\": $DELAY_MS}" >/dev/null
curl -s -X POST "$SIM/_sim/stats/reset" >/dev/null
python3 "$D/load.py" "$CS" "$KEY" "$D/stop" 8 >"$D/load.out" 2>"$D/load.err" &
PIDS+=($!)
sampler >"$D/inflight.out" &
PIDS+=($!)
full=0
for _ in $(seq 100); do
	[ "$(curl -s "$SIM/_sim/stats" | jq .in_flight)" = "$CAP" ] &&
	    { full=1; break; }
	sleep 0.05
done
t_eq "burst: $CAP calls in flight at the simulator (the cap)" 1 "$full"
t_eq "burst: the master holds their $CAP leases" "$CAP" \
    "$(rcli "$PM" zcard 'sem:{llm}:g')"
t_eq "burst: the replicas have none of them" "0 0" \
    "$(rcli "$PR1" zcard 'sem:{llm}:g') $(rcli "$PR2" zcard 'sem:{llm}:g')"
KILL_MS=$(date +%s%3N)
eval "kill -9 \$PID_m"
echo "# master (port $PM) killed at $KILL_MS"

# Sentinel promotes one replica. (A try whose vote splits is retried
# after twice the failover-timeout, 5 s. A replica cut off longer than
# 10 x down-after before the master went down is never promoted: the cut
# above is kept short.)
NEW=
end=$((SECONDS + 40))
while [ $SECONDS -lt $end ]; do
	NEW=$(rcli "$PS1" sentinel get-master-addr-by-name bulwark | sed -n 2p)
	[ -n "$NEW" ] && [ "$NEW" != "$PM" ] && break
	sleep 0.1
done
PROMO_MS=$(date +%s%3N)
t_check "failover: a replica was promoted ($NEW)" \
    test "$NEW" = "$PR1" -o "$NEW" = "$PR2"
echo "# promoted $NEW after $((PROMO_MS - KILL_MS)) ms"
OTHER=$PR1
[ "$NEW" = "$PR1" ] && OTHER=$PR2

# The load runs until chat has recovered and a while after: the fence
# lasts one lease lifetime from the new master's first acquire.
rec=
end=$((SECONDS + 45))
while [ $SECONDS -lt $end ]; do
	rec=$(awk -v k="$KILL_MS" '$1 > k && $3 == 200 { print $2; exit }' \
	    "$D/load.out")
	[ -n "$rec" ] && break
	sleep 0.1
done
[ -n "$rec" ] && sleep 8
touch "$D/stop"
wait "${PIDS[@]: -2}" 2>/dev/null
t_check "recovery: a chat turn started after the kill got 200 (no restart)" \
    test -n "$rec"
[ -n "$rec" ] && echo "# first 200 of a turn started after the kill: \
$((rec - KILL_MS)) ms after the kill, $((rec - PROMO_MS)) ms after the \
promotion; its slot granted about $((rec - DELAY_MS - KILL_MS)) ms after \
the kill (the call takes $DELAY_MS ms)"
t_check "recovery: the same bulwark-fcgi master ran throughout" \
    kill -0 "$FPID"
after=$(awk -v k="$KILL_MS" '$1 > k && $3 == 200' "$D/load.out" | wc -l)
t_ge "recovery: several turns after the kill got 200 ($after)" 3 "$after"

# The cap, counted at the simulator (its own maximum, and our samples).
max=$(curl -s "$SIM/_sim/stats" | jq .max_in_flight)
smax=$(awk '$2 ~ /^[0-9]+$/ && $2 > m { m = $2 } END { print m + 0 }' \
    "$D/inflight.out")
t_le "cap: the simulator's max in flight never above $CAP ($max)" "$CAP" \
    "$max"
t_le "cap: no sample above $CAP ($smax)" "$CAP" "$smax"

bad=$(awk '$3 != 200 && $3 != 503' "$D/load.out" | wc -l)
t_eq "every answer 200 or 503 ($(wc -l <"$D/load.out") turns)" 0 "$bad"
echo "# statuses: $(awk '{ print $3 }' "$D/load.out" | sort | uniq -c |
    tr -s ' \n' ' ')"

# Never a write to a replica.
ro=0
for p in $NEW $OTHER; do
	c=$(rcli "$p" info errorstats | tr -d '\r' |
	    sed -n 's/^errorstat_READONLY:count=//p')
	ro=$((ro + ${c:-0}))
done
t_eq "no write reached a replica (READONLY errors at the servers)" 0 "$ro"
t_eq "no READONLY reply in bulwark's log" 0 \
    "$(grep -c READONLY "$D/fcgi.log")"
t_eq "the other replica follows the new master" "$NEW" \
    "$(rcli "$OTHER" info replication | tr -d '\r' |
    sed -n 's/^master_port://p')"

t_done
