#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Chaos: the prefork master of bulwark-fcgi. (1) Under load a child killed
# with SIGKILL is replaced within 2 s and costs at most one request; a
# killed child of the chat pool is replaced by a chat child (the pools keep
# their counts); (2) a SIGHUP rolls every child of both pools without
# failing a request; (3) SIGTERM drains:
# requests already held by children complete with 200, the master exits 0
# within drain_timeout_s, later connections fail; (4) a child still busy
# after drain_timeout_s is killed and the master still exits 0; (5) a
# request past fcgi_request_timeout_ms (a body that never finishes) gets
# its child killed within the timeout plus the master's tick, logged, and
# the pool gets a new child; (6) a child that served and then crashed is
# replaced at once, never backed off, while children that die before
# serving back off (100 ms, 200 ms, ...) and make the master give up (exit
# 1) after 10 such deaths in a row.
#
# Parts 3 and 4 run their own bulwark-fcgi on a temporary socket, driven by
# a small FastCGI client that holds a request half-sent: the child has
# accepted it and waits for the rest, which makes "in flight" real without
# a slow route.
. "${BW_TOP:?}/tests/lib/common.sh"

T=$TMP
OWN_PID=
LOAD_PID=

# shellcheck disable=SC2317  # called by the trap
cleanup() {
	[ -n "$LOAD_PID" ] && kill "$LOAD_PID" 2>/dev/null
	if [ -n "$OWN_PID" ] && kill -0 "$OWN_PID" 2>/dev/null; then
		kill -KILL "$OWN_PID" 2>/dev/null
		pkill -KILL -P "$OWN_PID" 2>/dev/null
	fi
	rm -f "$T"/go-*
}
t_on_exit cleanup

MASTER=$(cat "$BW_RUN/pid/bulwark-fcgi.pid" 2>/dev/null)
if [ -z "$MASTER" ] || ! kill -0 "$MASTER" 2>/dev/null; then
	t_fail "bulwark-fcgi master runs" "no live pid in $BW_RUN/pid"
	t_done
fi
FCGI_LOG=$BW_RUN/log/bulwark-fcgi.log

children() { pgrep -P "$1" | sort; }
nchildren() { pgrep -P "$1" | wc -l; }
# pool_children PID POOL: the children of one pool, by name (the chat
# pool's children are called bw-fcgi-chat, the api pool's keep the
# program's name, bulwark-fcgi).
pool_children() {
	local name=bulwark-fcgi
	[ "$2" = api ] || name=bw-fcgi-$2
	pgrep -x -P "$1" "$name" | sort
}
npool() { pool_children "$1" "$2" | wc -l; }

# wait_count PID N SECONDS: until PID has N children; prints the time taken
# in ms, or fails.
wait_count() {
	local start now
	start=$(date +%s%3N)
	while :; do
		now=$(date +%s%3N)
		[ "$(nchildren "$1")" -eq "$2" ] && { echo $((now - start)); return 0; }
		[ $((now - start)) -gt $(($3 * 1000)) ] && return 1
		sleep 0.05
	done
}

# load SECONDS OUT: a bounded load on /health; OUT gets wrk's report.
load() {
	wrk -t2 -c4 -d"$1"s "$BULWARK_URL/health" >"$2" 2>&1 &
	LOAD_PID=$!
}

# failures OUT: non-2xx responses plus socket errors of a wrk report.
failures() {
	awk '/Socket errors:/ { for (i = 1; i <= NF; i++)
		if ($i ~ /^[0-9]+,?$/) n += $i + 0 }
	/Non-2xx or 3xx responses:/ { n += $NF }
	END { print n + 0 }' "$1"
}

# requests OUT: how many requests a wrk report counts.
requests() {
	awk '/requests in/ { print $1; exit }' "$1"
}

# --- 1. SIGKILL of a child under load ------------------------------------

N=$(nchildren "$MASTER")
NAPI=$(npool "$MASTER" api)
NCHAT=$(npool "$MASTER" chat)
t_ge "the master has children" 1 "$N"
t_ge "  of the api pool" 1 "$NAPI"
t_ge "  and of the chat pool" 1 "$NCHAT"
t_eq "  and no others" "$N" "$((NAPI + NCHAT))"
load 6 "$T/wrk-kill.txt"
sleep 2
# The load is on /health, the api pool: kill one of its children.
VICTIM=$(pool_children "$MASTER" api | head -n 1)
kill -KILL "$VICTIM"
if ms=$(wait_count "$MASTER" "$N" 2) &&
    ! children "$MASTER" | grep -qx "$VICTIM"; then
	t_ok "a killed child is replaced within 2 s (${ms} ms)"
else
	t_fail "a killed child is replaced within 2 s" \
	    "$(nchildren "$MASTER") children of $N"
fi
wait "$LOAD_PID"
LOAD_PID=
t_ge "load ran during the kill" 100 "$(requests "$T/wrk-kill.txt")"
t_le "a child's death costs at most 1 request" 1 \
    "$(failures "$T/wrk-kill.txt")"
t_check "the master is the same process" kill -0 "$MASTER"
t_match "the death is logged with the signal name" \
    "\"child exited\".*\"child_pid\":\"$VICTIM\".*\"signal\":\"SIGKILL\"" \
    "$(grep "\"$VICTIM\"" "$FCGI_LOG" | tail -n 1)"

# A chat child: replaced by a chat child, the api pool untouched.
OLDAPI=$(pool_children "$MASTER" api)
VICTIM=$(pool_children "$MASTER" chat | head -n 1)
kill -KILL "$VICTIM"
replaced=0
for _ in $(seq 40); do
	if [ "$(npool "$MASTER" chat)" -eq "$NCHAT" ] &&
	    ! pool_children "$MASTER" chat | grep -qx "$VICTIM"; then
		replaced=1
		break
	fi
	sleep 0.05
done
t_eq "a killed chat child is replaced by a chat child within 2 s ($NCHAT)" \
    1 "$replaced"
t_eq "  the api pool keeps its children" "$OLDAPI" \
    "$(pool_children "$MASTER" api)"
t_match "  the death is logged with its pool" \
    "\"child exited\",.*\"pool\":\"chat\".*\"child_pid\":\"$VICTIM\".*\"signal\":\"SIGKILL\"" \
    "$(grep "\"$VICTIM\"" "$FCGI_LOG" | tail -n 1)"

# --- 2. SIGHUP rolls the children -----------------------------------------

OLD=$(children "$MASTER")
load 4 "$T/wrk-hup.txt"
sleep 1
kill -HUP "$MASTER"
rolled=0
for _ in $(seq 100); do
	NOW=$(children "$MASTER")
	if [ "$(printf '%s\n' "$NOW" | grep -c .)" -eq "$N" ] &&
	    [ -z "$(comm -12 <(printf '%s\n' "$OLD") <(printf '%s\n' "$NOW"))" ]
	then
		rolled=1
		break
	fi
	sleep 0.1
done
t_eq "SIGHUP replaces every child, keeping the count" 1 "$rolled"
t_eq "  both pools rolled, each keeping its count" "$NAPI $NCHAT" \
    "$(npool "$MASTER" api) $(npool "$MASTER" chat)"
wait "$LOAD_PID"
LOAD_PID=
t_eq "no request fails during the roll" 0 "$(failures "$T/wrk-hup.txt")"
t_check "the master survives SIGHUP" kill -0 "$MASTER"

# --- 3 and 4: SIGTERM on our own master -----------------------------------

# fcgi_hold SOCKET GOFILE OUT: sends BEGIN_REQUEST and most of PARAMS for
# GET /health, waits until GOFILE exists (at most 20 s), sends the rest and
# writes the reply's status (or "none") to OUT. OUT.sent appears once the
# request is on the socket.
fcgi_hold() {
	python3 - "$@" <<'EOF'
import os, socket, struct, sys, time
sys.path.insert(0, os.path.join(os.environ["BW_TOP"], "tests", "lib"))
from fcgi_req import nv, record
path, go, out = sys.argv[1:4]

def rec(t, body):
    return record(t, 1, body)

params = b"".join(nv(k, v) for k, v in (
    ("REQUEST_METHOD", "GET"), ("DOCUMENT_URI", "/health"),
    ("REQUEST_URI", "/health"), ("SCRIPT_NAME", "/health"),
    ("QUERY_STRING", ""), ("SERVER_PROTOCOL", "HTTP/1.1"),
    ("REMOTE_ADDR", "127.0.0.1"), ("HTTPS", "on")))
status = "none"
try:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    s.sendall(rec(1, struct.pack(">HB5x", 1, 0)) + rec(4, params))
    open(out + ".sent", "w").close()
    end = time.time() + 20
    while not os.path.exists(go) and time.time() < end:
        time.sleep(0.02)
    s.sendall(rec(4, b"") + rec(5, b""))
    data = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
    stdout, i = b"", 0
    while i + 8 <= len(data):
        _, t, _, n, pad, _ = struct.unpack(">BBHHBB", data[i:i + 8])
        if t == 6:
            stdout += data[i + 8:i + 8 + n]
        i += 8 + n + pad
    if stdout:
        status = "200"
        for line in stdout.split(b"\r\n\r\n")[0].split(b"\r\n"):
            if line.lower().startswith(b"status:"):
                status = line.split()[1].decode()
except OSError as e:
    status = "error " + str(e)
with open(out, "w") as f:
    f.write(status + "\n")
EOF
}

# start_own CHILDREN DRAIN_S: our bulwark-fcgi on $T/own.sock (its chat
# pool, one child, on $T/own-chat.sock).
start_own() {
	rm -f "$T/own.sock" "$T/own-chat.sock"
	BULWARK_FCGI_SOCKET=$T/own.sock BULWARK_PID_FILE=$T/own.pid \
	    BULWARK_FCGI_CHILDREN=$1 BULWARK_DRAIN_TIMEOUT_S=$2 \
	    BULWARK_FCGI_REQUEST_TIMEOUT_MS=${OWN_REQUEST_TIMEOUT_MS:-0} \
	    BULWARK_FCGI_MAX_REQUESTS=0 BULWARK_FCGI_CHAT_CHILDREN=1 \
	    bulwark-fcgi -c "$BW_CONFIG" >>"$T/own.log" 2>&1 &
	OWN_PID=$!
	for _ in $(seq 50); do
		[ -S "$T/own.sock" ] && [ "$(npool "$OWN_PID" api)" -eq "$1" ] &&
		    [ "$(npool "$OWN_PID" chat)" -eq 1 ] && return 0
		sleep 0.1
	done
	return 1
}

# own_request: one plain request with cgi-fcgi; prints the status line.
own_request() {
	env -i REQUEST_METHOD=GET DOCUMENT_URI=/health REQUEST_URI=/health \
	    SCRIPT_NAME=/health SERVER_PROTOCOL=HTTP/1.1 \
	    REMOTE_ADDR=127.0.0.1 HTTPS=on \
	    timeout 5 cgi-fcgi -bind -connect "$T/own.sock" 2>&1 |
	    tr -d '\r' | head -n 1
}

# wait_exit PID SECONDS: sets ST to PID's exit status, or "timeout". Not in
# a subshell: only this shell can wait for its child.
wait_exit() {
	ST=timeout
	for _ in $(seq $(($2 * 10))); do
		if ! kill -0 "$1" 2>/dev/null ||
		    [ "$(ps -o stat= -p "$1" | cut -c1)" = Z ]; then
			wait "$1"
			ST=$?
			return
		fi
		sleep 0.1
	done
}

# held_wait OUT...: waits until each held request is on the socket (python's
# start-up alone can take over half a second here), at most 10 s.
held_wait() {
	local f
	for f in "$@"; do
		for _ in $(seq 100); do
			[ -e "$f.sent" ] && break
			sleep 0.1
		done
	done
	sleep 0.2 # for the children to read what was sent
}

if ! start_own 2 5; then
	t_fail "own bulwark-fcgi starts" "$(tail -n 5 "$T/own.log")"
	t_done
fi
t_match "own bulwark-fcgi answers" '^Status: 200' "$(own_request)"

# Two requests held by the two children, then SIGTERM.
rm -f "$T/go-drain" "$T/held-"*
fcgi_hold "$T/own.sock" "$T/go-drain" "$T/held-1" &
H1=$!
fcgi_hold "$T/own.sock" "$T/go-drain" "$T/held-2" &
H2=$!
held_wait "$T/held-1" "$T/held-2"
START=$(date +%s%3N)
kill -TERM "$OWN_PID"
sleep 0.5
t_check "the master waits for busy children" kill -0 "$OWN_PID"
t_eq "busy children finish first (the idle ones, chat's too, are gone)" \
    2 "$(nchildren "$OWN_PID")"
touch "$T/go-drain"
wait "$H1" "$H2"
t_eq "a request in flight at SIGTERM completes with 200" 200 \
    "$(cat "$T/held-1")"
t_eq "a second one too" 200 "$(cat "$T/held-2")"
wait_exit "$OWN_PID" 6
ELAPSED=$(($(date +%s%3N) - START))
t_eq "the master exits 0 after the drain" 0 "$ST"
t_le "the drain ends within drain_timeout_s (ms)" 5000 "$ELAPSED"
[ "$ST" = timeout ] || OWN_PID=
t_match "requests after the drain fail to connect" \
    'Could not connect|refused|No such file' "$(own_request)"

# A child that never finishes its request is killed at the deadline.
if ! start_own 1 2; then
	t_fail "own bulwark-fcgi starts again" "$(tail -n 5 "$T/own.log")"
	t_done
fi
fcgi_hold "$T/own.sock" "$T/go-never" "$T/held-3" &
H3=$!
held_wait "$T/held-3"
START=$(date +%s%3N)
kill -TERM "$OWN_PID"
wait_exit "$OWN_PID" 8
ELAPSED=$(($(date +%s%3N) - START))
t_eq "the master exits 0 after killing a stuck child" 0 "$ST"
t_ge "it waited drain_timeout_s (ms)" 1900 "$ELAPSED"
t_le "and not much longer (ms)" 3500 "$ELAPSED"
t_match "the kill is logged" '"child still busy, killed"' \
    "$(cat "$T/own.log")"
[ "$ST" = timeout ] || OWN_PID=
touch "$T/go-never"
wait "$H3"

# --- 5. the request timeout ---------------------------------------------
# A request whose body never finishes holds its child in the body's read
# (params complete, 10 of 100 body bytes of a webhook sent): with
# fcgi_request_timeout_ms = 1000 the master kills that child after about a
# second (its tick is MASTER_TICK_MS), the client's connection closes with
# no reply, the pool gets its child back and serves.
# fcgi_slow_body SOCKET OUT: writes "<ms until the connection closed>
# <bytes of reply>" to OUT (capped at 8 s: "8000 -1" when still open).
fcgi_slow_body() {
	python3 - "$@" <<'EOF'
import os, socket, struct, sys, time
sys.path.insert(0, os.path.join(os.environ["BW_TOP"], "tests", "lib"))
from fcgi_req import nv, record
path, out = sys.argv[1:3]
# A route without a key whose handler reads the body (to check the
# signature) before it answers.
P = "/api/v1/webhooks/sms/0b6b1c1e-1c2d-4e5f-8a9b-0c1d2e3f4a5b"

def rec(t, body):
    return record(t, 1, body)

params = b"".join(nv(k, v) for k, v in (
    ("REQUEST_METHOD", "POST"), ("DOCUMENT_URI", P), ("REQUEST_URI", P),
    ("SCRIPT_NAME", P),
    ("QUERY_STRING", ""), ("SERVER_PROTOCOL", "HTTP/1.1"),
    ("CONTENT_TYPE", "application/json"), ("CONTENT_LENGTH", "100"),
    ("REMOTE_ADDR", "127.0.0.1"), ("HTTPS", "on")))
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(path)
t0 = time.time()
s.sendall(rec(1, struct.pack(">HB5x", 1, 0)) + rec(4, params) + rec(4, b"")
          + rec(5, b'{"phone":"'))
s.settimeout(8)
got = 0
try:
    while True:
        b = s.recv(65536)
        if not b:
            break
        got += len(b)
    res = "%d %d" % ((time.time() - t0) * 1000, got)
except socket.timeout:
    res = "8000 -1"
except OSError:
    res = "%d %d" % ((time.time() - t0) * 1000, got)
with open(out, "w") as f:
    f.write(res + "\n")
EOF
}
if ! OWN_REQUEST_TIMEOUT_MS=1000 start_own 1 2; then
	t_fail "own bulwark-fcgi starts with fcgi_request_timeout_ms = 1000" \
	    "$(tail -n 5 "$T/own.log")"
	t_done
fi
VICTIM=$(pool_children "$OWN_PID" api)
fcgi_slow_body "$T/own.sock" "$T/slow"
read -r SLOW_MS SLOW_BYTES <"$T/slow"
t_ge "a request past fcgi_request_timeout_ms: its connection closes (${SLOW_MS} ms)" \
    900 "$SLOW_MS"
t_le "  within the timeout plus the master's tick (ms)" 3000 "$SLOW_MS"
t_eq "  with no reply (the child died in the request)" 0 "$SLOW_BYTES"
t_match "  the kill is logged with the pool and the time busy" \
    '"request timed out, child killed".*"pool":"api"' "$(cat "$T/own.log")"
NEWKID=""
for _ in $(seq 1 50); do
	NEWKID=$(pool_children "$OWN_PID" api)
	[ -n "$NEWKID" ] && [ "$NEWKID" != "$VICTIM" ] && break
	sleep 0.1
done
t_check "  that child is gone" sh -c "! ps -o stat= -p $VICTIM 2>/dev/null | grep -qv Z"
t_check "  the pool has a new child in its place" \
    sh -c "[ -n '$NEWKID' ] && [ '$NEWKID' != '$VICTIM' ]"
t_match "  and serves" 'Status: 200|^Content' "$(own_request)"
kill -TERM "$OWN_PID"
wait_exit "$OWN_PID" 8
[ "$ST" = timeout ] || OWN_PID=

# --- 6. crashes after serving, crashes before serving ---------------------
# (fcgi/master.c, master_count_death) A child that served and then died
# (a poisoned request, the OOM killer) is replaced at once, however many
# die: 6 such deaths in a row of a one-child pool, never a backoff. A child
# that dies before serving (a start-up crash loop) is what backs off and,
# max(10, 2 N) deaths in a row later, makes the master give up: 4 children
# killed before serving, again and again, back off 100 ms then 200 ms, and
# the master exits 1 at the 10th death.
OWN_LOG_AT=$(wc -l <"$T/own.log")
own_log() { tail -n +$((OWN_LOG_AT + 1)) "$T/own.log"; }
if ! start_own 1 2; then
	t_fail "own bulwark-fcgi starts with one child" "$(own_log | tail -n 5)"
	t_done
fi
respawned=0
START=$(date +%s%3N)
for _ in 1 2 3 4 5 6; do
	KID=$(pool_children "$OWN_PID" api)
	own_request | grep -Eq "Status: 200|^Content" || break
	kill -SEGV "$KID"
	for _ in $(seq 1 100); do
		NEWKID=$(pool_children "$OWN_PID" api)
		[ -n "$NEWKID" ] && [ "$NEWKID" != "$KID" ] && break
		sleep 0.02
	done
	[ -n "$NEWKID" ] && [ "$NEWKID" != "$KID" ] || break
	respawned=$((respawned + 1))
done
ELAPSED=$(($(date +%s%3N) - START))
t_eq "6 children of a one-child pool crash after serving: each replaced (${ELAPSED} ms)" \
    6 "$respawned"
t_eq "  at once: no backoff logged" 0 "$(own_log | grep -c 'backing off')"
t_check "  the master runs on" kill -0 "$OWN_PID"
kill -TERM "$OWN_PID"
wait_exit "$OWN_PID" 8
[ "$ST" = timeout ] || OWN_PID=

OWN_LOG_AT=$(wc -l <"$T/own.log")
if ! start_own 4 2; then
	t_fail "own bulwark-fcgi starts with four children" "$(own_log | tail -n 5)"
	t_done
fi
# No request reaches this master: every child it forks dies unserved.
deaths=0
START=$(date +%s%3N)
for _ in $(seq 1 300); do
	kill -0 "$OWN_PID" 2>/dev/null || break
	own_log | grep -q '"giving up"' && break
	for k in $(pool_children "$OWN_PID" api); do
		kill -SEGV "$k" 2>/dev/null && deaths=$((deaths + 1))
	done
	sleep 0.02
done
wait_exit "$OWN_PID" 10
ELAPSED=$(($(date +%s%3N) - START))
t_eq "4 children killed before serving, again and again: the master exits 1 (${ELAPSED} ms, $deaths kills)" \
    1 "$ST"
[ "$ST" = timeout ] || OWN_PID=
t_eq "  it backed off 100 ms, then 200 ms" "100 200" \
    "$(own_log | grep 'backing off' | sed -n 's/.*"backoff_ms":"\([0-9]*\)".*/\1/p' | head -n 2 | tr '\n' ' ' | sed 's/ $//')"
t_match "  and gave up after 10 deaths before serving" \
    '"children die before serving; giving up".*"deaths":"10"' \
    "$(own_log | grep 'giving up')"
# Not before its first backoff passed: the children it forks after a
# backoff wait for it, so the 10 deaths need at least one. Not both: when
# the test's kills are reaped apart (3 children, then the 4th 3 ms later),
# the first 3 are replaced at once, before the 4th death starts the
# backoff, and their deaths count towards the 10 (a CI run: 186 ms).
t_ge "  not before its first backoff passed (ms)" 100 "$ELAPSED"
t_done
