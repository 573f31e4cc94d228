#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Redis coordination primitives against the stack's real Redis, counted with
# many processes: the LLM semaphore's caps (global and per org, in-flight
# counted independently in Redis), round-robin fairness across orgs, the
# queue deadline, a kill -9'd holder's slot coming back after its lease, a
# SIGSTOPped holder's late release not freeing the new lease; conversation
# state (concurrent appends all land, bounds, TTL); the circuit breaker.
. "${BW_TOP:?}/tests/lib/common.sh"

D="$BW_BUILD/tests/integration/sem_driver"
RCLI=(redis-cli -u "$REDIS_URL")
SFX="$$$(date +%s)"

cleanup() {
	local p
	for p in $(jobs -p); do
		kill -CONT "$p" 2>/dev/null
		kill -9 "$p" 2>/dev/null
	done
	wait 2>/dev/null
}
t_on_exit cleanup

# wait_line FILE REGEX SECS: waits until FILE has a line matching REGEX.
wait_line() {
	local i
	for i in $(seq 1 $(($3 * 20))); do
		grep -Eq "$2" "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}
rget() { "${RCLI[@]}" get "$1"; }

# --- 1. Caps under contention ---------------------------------------------
# 24 processes over 20 orgs: the global cap (15) binds.
T="g$SFX"
PIDS=()
for p in $(seq 1 24); do
	"$D" sem-hammer --tag "$T" --orgs 20 --iters 40 --gcap 15 --ocap 5 \
	    --hold-ms 15 --lease-ms 5000 --wait-ms 10000 >"$TMP/ga$p.out" 2>&1 &
	PIDS+=($!)
done
wait "${PIDS[@]}"
ok=$(cat "$TMP"/ga*.out | sed -n 's/.*ok=\([0-9]*\).*/\1/p' |
    awk '{ s += $1 } END { print s + 0 }')
bad=$(cat "$TMP"/ga*.out | grep -c -E 'err=[1-9]|lost=[1-9]')
t_eq "caps: 24 processes x 40 acquires, all granted" 960 "$ok"
t_eq "caps: no Redis error and no lease lost while held" 0 "$bad"
gmax=$(rget "semtest:{llm}:$T:g:max")
t_le "caps: global in-flight never above 15" 15 "$gmax"
t_eq "caps: the global cap was reached (15 in flight)" 15 "$gmax"
omax=0
for k in $("${RCLI[@]}" --scan --pattern "semtest:{llm}:$T:o:*:max"); do
	v=$(rget "$k")
	[ "$v" -gt "$omax" ] && omax=$v
done
t_le "caps: per-org in-flight never above 5 (20 orgs)" 5 "$omax"

# 16 processes over 3 orgs: the org cap (5) binds.
T="o$SFX"
PIDS=()
for p in $(seq 1 16); do
	"$D" sem-hammer --tag "$T" --orgs 3 --iters 40 --gcap 15 --ocap 5 \
	    --hold-ms 15 --lease-ms 5000 --wait-ms 10000 >"$TMP/oa$p.out" 2>&1 &
	PIDS+=($!)
done
wait "${PIDS[@]}"
ok=$(cat "$TMP"/oa*.out | sed -n 's/.*ok=\([0-9]*\).*/\1/p' |
    awk '{ s += $1 } END { print s + 0 }')
t_eq "caps: 16 processes x 40 acquires on 3 orgs, all granted" 640 "$ok"
omax=0
for k in $("${RCLI[@]}" --scan --pattern "semtest:{llm}:$T:o:*:max"); do
	v=$(rget "$k")
	[ "$v" -gt "$omax" ] && omax=$v
done
t_le "caps: per-org in-flight never above 5 (3 orgs)" 5 "$omax"
t_eq "caps: the org cap was reached (5 in flight)" 5 "$omax"
t_eq "caps: no lease left in the global set afterwards" 0 \
    "$("${RCLI[@]}" zcard 'sem:{llm}:g')"
t_eq "caps: no waiter left queued afterwards" 0 \
    "$("${RCLI[@]}" zcard 'sem:{llm}:qe')"

# --- 2. Fairness: org A 150 waiters, orgs B..K 3 each -------------------
# Each holds 500 ms: A alone drains at 10/s (org cap 5), so a FIFO queue
# would leave B..K behind ~150 A waiters for 15 s, past their deadline.
F="f$SFX"
PIDS=()
for p in $(seq 1 150); do
	"$D" sem-one --org "${F}A" --gcap 15 --ocap 5 --hold-ms 500 \
	    --lease-ms 5000 --wait-ms 10000 >"$TMP/fa$p.out" 2>&1 &
	PIDS+=($!)
done
sleep 1
for o in B C D E F G H I J K; do
	for p in 1 2 3; do
		"$D" sem-one --org "$F$o" --gcap 15 --ocap 5 --hold-ms 500 \
		    --lease-ms 5000 --wait-ms 10000 >"$TMP/fb$o$p.out" 2>&1 &
		PIDS+=($!)
	done
done
wait "${PIDS[@]}"
got=$(cat "$TMP"/fb*.out | grep -c '^acquired')
t_eq "fairness: all 30 B..K waiters got a slot within the deadline" 30 "$got"
wmax=$(cat "$TMP"/fb*.out | awk '/^acquired/ { if ($3 > m) m = $3 } END { print m + 0 }')
t_le "fairness: the longest B..K wait is under 3 s (behind 150 of A)" 3000 \
    "$wmax"
t_eq "fairness: every lease released" 0 "$("${RCLI[@]}" zcard 'sem:{llm}:g')"

# The same with org caps as large as the global cap (15/15), holding 1 s:
# nothing but the round-robin turn keeps A's 150 waiters from taking every
# slot (FIFO would put B..K ~10 s behind them).
F="h$SFX"
PIDS=()
for p in $(seq 1 150); do
	"$D" sem-one --org "${F}A" --gcap 15 --ocap 15 --hold-ms 1000 \
	    --lease-ms 5000 --wait-ms 10000 >"$TMP/ha$p.out" 2>&1 &
	PIDS+=($!)
done
sleep 1
for o in B C D E F G H I J K; do
	for p in 1 2 3; do
		"$D" sem-one --org "$F$o" --gcap 15 --ocap 15 --hold-ms 1000 \
		    --lease-ms 5000 --wait-ms 10000 >"$TMP/hb$o$p.out" 2>&1 &
		PIDS+=($!)
	done
done
wait "${PIDS[@]}"
got=$(cat "$TMP"/hb*.out | grep -c '^acquired')
t_eq "fairness 15/15: all 30 B..K waiters got a slot" 30 "$got"
wmax=$(cat "$TMP"/hb*.out | awk '/^acquired/ { if ($3 > m) m = $3 } END { print m + 0 }')
t_le "fairness 15/15: the longest B..K wait is under 4 s" 4000 "$wmax"
t_eq "fairness 15/15: every lease released" 0 \
    "$("${RCLI[@]}" zcard 'sem:{llm}:g')"

# --- 3. Deadline ------------------------------------------------------------
O="d$SFX"
"$D" sem-one --org "$O" --ocap 1 --hold-ms 3000 --lease-ms 5000 \
    >"$TMP/d1.out" 2>&1 &
HP=$!
wait_line "$TMP/d1.out" '^acquired' 5
"$D" sem-one --org "$O" --ocap 1 --wait-ms 1000 >"$TMP/d2.out" 2>&1
t_match "deadline: a full org's waiter times out after ~1 s" \
    '^timeout (9[5-9][0-9]|1[0-4][0-9][0-9])$' "$(cat "$TMP/d2.out")"
t_eq "deadline: the timed-out waiter left the queue" 0 \
    "$("${RCLI[@]}" zcard "sem:{llm}:q:$O")"
wait "$HP"

# --- 3b. An abandoned first try (the chat path's budget refusal) ----------
O="a$SFX"
t_eq "abandoned try: a granted lease is released" "abandoned granted 0 0" \
    "$("$D" sem-abandon --org "$O" --ocap 1)"
"$D" sem-one --org "$O" --ocap 1 --hold-ms 3000 --lease-ms 5000 \
    >"$TMP/a1.out" 2>&1 &
HP=$!
wait_line "$TMP/a1.out" '^acquired' 5
t_eq "abandoned try: a queued waiter leaves the queue (the holder's lease stays)" \
    "abandoned queued 1 0" "$("$D" sem-abandon --org "$O" --ocap 1)"
t_eq "abandoned try: no waiter left behind" 0 \
    "$("${RCLI[@]}" zcard "sem:{llm}:q:$O")"
wait "$HP"

# --- 4. kill -9 a holder: the slot is back within lease expiry + 1 s -------
O="k$SFX"
"$D" sem-one --org "$O" --ocap 1 --hold-ms 60000 --lease-ms 2000 \
    >"$TMP/k1.out" 2>&1 &
HP=$!
wait_line "$TMP/k1.out" '^acquired' 5
kill -9 "$HP"
wait "$HP" 2>/dev/null
"$D" sem-one --org "$O" --ocap 1 --wait-ms 6000 --lease-ms 2000 \
    >"$TMP/k2.out" 2>&1
t_match "kill -9: the dead holder's slot is taken within 3 s" \
    '^acquired [0-9a-f]{32} ([0-9]{1,3}|[12][0-9]{3}|3000) reclaimed=1' \
    "$(head -1 "$TMP/k2.out")"

# --- 5. SIGSTOP past expiry: the late release frees nothing else ----------
O="s$SFX"
"$D" sem-one --org "$O" --ocap 1 --hold-ms 3000 --lease-ms 1000 \
    >"$TMP/s1.out" 2>&1 &
SP=$!
wait_line "$TMP/s1.out" '^acquired' 5
kill -STOP "$SP"
sleep 1.5
"$D" sem-one --org "$O" --ocap 1 --hold-ms 6000 --lease-ms 10000 \
    --wait-ms 5000 >"$TMP/s2.out" 2>&1 &
NP=$!
wait_line "$TMP/s2.out" '^acquired' 5
t_match "sigstop: another holder took the expired slot" '^acquired' \
    "$(head -1 "$TMP/s2.out")"
kill -CONT "$SP"
wait "$SP"
t_eq "sigstop: the old holder's release found nothing to free" \
    "released notfound" "$(tail -1 "$TMP/s1.out")"
t_eq "sigstop: the new lease is still held (1 in the org's set)" 1 \
    "$("${RCLI[@]}" zcard "sem:{llm}:o:$O")"
"$D" sem-one --org "$O" --ocap 1 --wait-ms 300 >"$TMP/s3.out" 2>&1
t_match "sigstop: the org is still full for a third caller" '^timeout' \
    "$(cat "$TMP/s3.out")"
wait "$NP"
t_eq "sigstop: the new holder released its own lease" "released ok" \
    "$(tail -1 "$TMP/s2.out")"

# --- 6. Conversation state ---------------------------------------------------
O="c$SFX"
PIDS=()
for p in $(seq 1 10); do
	"$D" conv-append --org "$O" --channel web --user u1 >"$TMP/c$p.out" 2>&1 &
	PIDS+=($!)
done
wait "${PIDS[@]}"
doc=$(rget "conv:{$O}:web:u1")
t_eq "conv: 10 concurrent appends -> turns_total 10, 10 turns kept" "10 10" \
    "$(printf '%s' "$doc" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["turns_total"], len(d["turns"]))')"
t_eq "conv: each append saw a distinct count (1..10)" "$(seq 1 10 | tr '\n' ' ')" \
    "$(cat "$TMP"/c*.out | sed -n 's/^turns //p' | sort -n | tr '\n' ' ')"
"$D" conv-append --org "$O" --channel web --user u2 --n 25 >/dev/null
doc=$(rget "conv:{$O}:web:u2")
t_eq "conv: bounded to the 20 newest turns, total still counted" \
    "25 20 hello" \
    "$(printf '%s' "$doc" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["turns_total"], len(d["turns"]), d["turns"][-1]["user"].split()[0])')"
ttl=$("${RCLI[@]}" ttl "conv:{$O}:web:u2")
t_match "conv: TTL 1800 s set on the turn" '^1(79[0-9]|800)$' "$ttl"

# --- 7. Circuit breaker ------------------------------------------------------
B=(--name "brk-$SFX" --fails 3 --open-ms 1000 --probe-ms 1000)
"$D" brk fail "${B[@]}" >/dev/null
"$D" brk fail "${B[@]}" >/dev/null
t_eq "breaker: closed below the threshold" "allowed closed" \
    "$("$D" brk allow "${B[@]}")"
t_eq "breaker: opens at 3 consecutive failures" open \
    "$("$D" brk fail "${B[@]}")"
t_eq "breaker: open fails fast" "refused open" "$("$D" brk allow "${B[@]}")"
sleep 1.1
t_eq "breaker: after the cool-down one probe goes (half-open)" \
    "allowed half_open|refused half_open" \
    "$("$D" brk allow "${B[@]}")|$("$D" brk allow "${B[@]}")"
t_eq "breaker: a failed probe opens it again" open \
    "$("$D" brk fail "${B[@]}")"
t_eq "breaker: reopened fails fast" "refused open" \
    "$("$D" brk allow "${B[@]}")"
sleep 1.1
"$D" brk allow "${B[@]}" >/dev/null
t_eq "breaker: a successful probe closes it" closed \
    "$("$D" brk ok "${B[@]}")"
t_eq "breaker: closed lets calls through" "allowed closed" \
    "$("$D" brk allow "${B[@]}")"

# The same breaker asked by the slot's own script (sem_acquire_brk(), the
# chat path's one round trip), and a success recorded by the release.
S=(--name "brkslot-$SFX" --fails 3 --open-ms 1000 --probe-ms 1000
    --org "brkslot-$SFX")
for _ in 1 2 3; do "$D" brk fail "${S[@]}" >/dev/null; done
t_eq "breaker in the slot script: open refuses, no lease, no waiter" \
    "refused open 0 0" "$("$D" brk slot "${S[@]}")"
sleep 1.1
t_eq "breaker in the slot script: after the cool-down one slot takes the probe" \
    "allowed half_open|refused half_open 0 0" \
    "$("$D" brk slot "${S[@]}")|$("$D" brk slot "${S[@]}")"
sleep 1.1
# The chat path sends the slot's first try with the conversation read,
# before the budget holds: a turn the budget then refuses abandons its
# try. The probe that grant took is given back, so the next slot takes it
# (without that, the next slot would be refused until probe-ms passed).
t_eq "abandoned try: a half-open grant's probe is given back" \
    "abandoned granted half_open 0 0|allowed half_open" \
    "$("$D" sem-abandon --name "brkslot-$SFX" --open-ms 1000 --probe-ms 1000 \
        --org "brkslot-$SFX")|$("$D" brk slot "${S[@]}")"
sleep 1.1
t_eq "breaker in the slot script: the release records the probe's success" \
    "allowed half_open -> closed" "$("$D" brk slot-ok "${S[@]}")"
t_eq "breaker in the slot script: closed lets slots through" \
    "allowed closed" "$("$D" brk slot "${S[@]}")"

t_done
