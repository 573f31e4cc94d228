#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Rate limits against the stack's real Redis, counted: the 6th chat request
# from one IP in 10 s is refused with Retry-After and leaves the org's
# window untouched; headers on every answer of a limited route; one org's
# 30/60 s holds across three bulwark-fcgi masters; the sliding window is
# exact (every W-second window of admissions from 8 processes holds <= N);
# per-org overrides set with bulwarkctl apply at once; Redis hung or down
# -> 503 DEPENDENCY_UNAVAILABLE within bounded time, and recovery without a
# restart.
. "${BW_TOP:?}/tests/lib/common.sh"

D="$BW_BUILD/tests/integration/sem_driver"
SOCK=$BW_FCGI_SOCKET
RCLI=(redis-cli -u "$REDIS_URL")
SFX="$$$(date +%s)"
# Distinct client IPs for this run, so reruns within 60 s do not collide.
NET="10.$((RANDOM % 250)).$((RANDOM % 250))"
MPIDS=()

cleanup() {
	local p
	for p in "${MPIDS[@]}"; do
		kill -TERM "$p" 2>/dev/null
	done
	t_kill_jobs
	# Redis must be running again for the tests after this one.
	if ! "${RCLI[@]}" ping >/dev/null 2>&1; then
		(t_stack && stack_start_one redis) >/dev/null 2>&1
	fi
}
t_on_exit cleanup

# new_org NAME: sets ORG and KEY to a fresh org and its owner key.
new_org() {
	ORG=$(bulwarkctl -c "$BW_CONFIG" org create --name "$1-$SFX" |
	    python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
	KEY=$(bulwarkctl -c "$BW_CONFIG" key create --org "$ORG" |
	    python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
}

# chat1 SOCKET IP KEY: one POST /api/v1/chat with an invalid body (answered
# 400 by validation after the limiter counted it, so no provider call);
# the raw response (headers, CR stripped) on stdout.
chat1() {
	printf '{}' | env -i REQUEST_METHOD=POST DOCUMENT_URI=/api/v1/chat \
	    REQUEST_URI=/api/v1/chat SCRIPT_NAME=/api/v1/chat \
	    SERVER_PROTOCOL=HTTP/1.1 CONTENT_TYPE=application/json \
	    CONTENT_LENGTH=2 HTTP_AUTHORIZATION="Bearer $3" REMOTE_ADDR="$2" \
	    cgi-fcgi -bind -connect "$1" 2>/dev/null | tr -d '\r'
}
hdr() { sed -n "s/^$1: //p" | head -1; }
status() { sed -n 's/^Status: \([0-9]*\).*/\1/p' | head -1; }

# --- 1. The 6th request from one IP within 10 s -------------------------
new_org ip
IP="$NET.1"
OKEY="rl:{rl}:chat:org:$ORG"
codes=""
for i in 1 2 3 4 5; do
	chat1 "$SOCK" "$IP" "$KEY" >"$TMP/r$i"
	codes="$codes$(status <"$TMP/r$i") "
done
t_eq "ip limit: 5 requests in 10 s admitted (answered by the handler)" \
    "400 400 400 400 400 " "$codes"
t_eq "headers: X-RateLimit-Limit is the tighter limit (ip 5)" 5 \
    "$(hdr X-RateLimit-Limit <"$TMP/r1")"
t_eq "headers: X-RateLimit-Remaining counts down" "4 0" \
    "$(hdr X-RateLimit-Remaining <"$TMP/r1") $(hdr X-RateLimit-Remaining <"$TMP/r5")"
t_match "headers: X-RateLimit-Reset in 1..10 s" '^([1-9]|10)$' \
    "$(hdr X-RateLimit-Reset <"$TMP/r5")"
before=$("${RCLI[@]}" zcard "$OKEY")
chat1 "$SOCK" "$IP" "$KEY" >"$TMP/r6"
after=$("${RCLI[@]}" zcard "$OKEY")
t_eq "ip limit: the 6th request within 10 s is 429" 429 "$(status <"$TMP/r6")"
t_match "ip limit: 429 body is RATE_LIMITED" '"error_code":"RATE_LIMITED"' \
    "$(cat "$TMP/r6")"
ra=$(hdr Retry-After <"$TMP/r6")
t_match "ip limit: Retry-After whole seconds in 1..10" '^([1-9]|10)$' "$ra"
t_eq "ip limit: the org's window unchanged by the refused request" \
    "5 5" "$before $after"
# Another IP of the same org is not limited by the first IP's window.
t_eq "ip limit: another IP of the org is admitted" 400 \
    "$(chat1 "$SOCK" "$NET.2" "$KEY" | status)"

# --- 2. Per-org override with bulwarkctl, then removal -------------------
new_org ovr
bulwarkctl -c "$BW_CONFIG" ratelimit set --org "$ORG" --route chat \
    --scope ip --limit 2 --window-s 30 >/dev/null
IP="$NET.3"
codes=""
for i in 1 2 3; do
	chat1 "$SOCK" "$IP" "$KEY" >"$TMP/o$i"
	codes="$codes$(status <"$TMP/o$i") "
done
t_eq "override: ip limit 2/30 s set by bulwarkctl applies" "400 400 429 " \
    "$codes"
t_eq "override: X-RateLimit-Limit shows the org's limit" 2 \
    "$(hdr X-RateLimit-Limit <"$TMP/o1")"
t_match "override: Retry-After follows the 30 s window" '^(2[0-9]|30)$' \
    "$(hdr Retry-After <"$TMP/o3")"
bulwarkctl -c "$BW_CONFIG" ratelimit set --org "$ORG" --route chat \
    --scope ip --limit 0 >/dev/null
t_eq "override: --limit 0 restores the default (5/10 s)" 400 \
    "$(chat1 "$SOCK" "$IP" "$KEY" | status)"
out=$(bulwarkctl -c "$BW_CONFIG" ratelimit set --org "$ORG" --route nope \
    --scope org --limit 1 --window-s 1 2>&1)
t_eq "override: an unknown route is refused (exit 2)" 2 "$?"

# --- 3. Org 30/60 s across three masters ---------------------------------
new_org multi
for n in 2 3; do
	sed -e "s|^fcgi_socket *=.*|fcgi_socket = $TMP/fcgi$n.sock|" \
	    -e "s|^pid_file *=.*|pid_file = $TMP/fcgi$n.pid|" \
	    -e "s|^fcgi_children *=.*|fcgi_children = 4|" \
	    -e "s|^fcgi_chat_children *=.*|fcgi_chat_children = 1|" \
	    "$BW_CONFIG" >"$TMP/fcgi$n.conf"
	grep -q '^pid_file' "$TMP/fcgi$n.conf" ||
	    echo "pid_file = $TMP/fcgi$n.pid" >>"$TMP/fcgi$n.conf"
	bulwark-fcgi -c "$TMP/fcgi$n.conf" >>"$TMP/fcgi$n.log" 2>&1 &
	MPIDS+=($!)
done
t_check "3 masters: the two new masters answer" \
    t_fcgi_ready 30 "$TMP/fcgi2.sock" "$TMP/fcgi3.sock"
# 60 requests, each from its own IP (so only the org limit binds), spread
# round-robin over the three masters, 20 at a time.
: >"$TMP/multi.out"
RPIDS=()
for i in $(seq 0 59); do
	m=$((i % 3 + 1))
	s=$SOCK
	[ "$m" -gt 1 ] && s="$TMP/fcgi$m.sock"
	(chat1 "$s" "$NET.$((100 + i))" "$KEY" >"$TMP/multi.$i"
	 status <"$TMP/multi.$i" >>"$TMP/multi.out") &
	RPIDS+=($!)
	if [ $((i % 20)) -eq 19 ]; then
		wait "${RPIDS[@]}"
		RPIDS=()
	fi
done
adm=$(grep -c '^400$' "$TMP/multi.out")
ref=$(grep -c '^429$' "$TMP/multi.out")
t_eq "3 masters: exactly 30 of 60 admitted for one org in 60 s" 30 "$adm"
t_eq "3 masters: the other 30 refused with 429" 30 "$ref"
for i in $(seq 0 59); do
	case $(status <"$TMP/multi.$i") in
	400 | 429) ;;
	*) printf '# request %d (master %d) answered:\n' "$i" $((i % 3 + 1))
	   sed 's/^/#   /' "$TMP/multi.$i" | head -20 ;;
	esac
done
t_eq "3 masters: the org's window holds 30" 30 \
    "$("${RCLI[@]}" zcard "rl:{rl}:chat:org:$ORG")"

# --- 4. Exact sliding window: 8 processes, every W-second window ---------
W=3
LIM=30
RK="rl:{rl}:test:org:slide-$SFX"
for p in 1 2 3 4 5 6 7 8; do
	"$D" rate-hammer --key "$RK" --limit $LIM --window-s $W --secs 8 \
	    >"$TMP/slide$p.out" 2>>"$TMP/slide.err" &
	RPIDS+=($!)
done
wait "${RPIDS[@]}"
cat "$TMP"/slide*.out | sed -n 's/^admit //p' | sort -n >"$TMP/admits"
total=$(wc -l <"$TMP/admits")
errs=$(cat "$TMP"/slide*.out | grep -c '^error')
worst=$(awk -v w=$((W * 1000000)) '
	{ t[NR] = $1 }
	END {
		j = 1; m = 0
		for (i = 1; i <= NR; i++) {
			while (t[i] - t[j] >= w) j++
			if (i - j + 1 > m) m = i - j + 1
		}
		print m
	}' "$TMP/admits")
t_eq "sliding window: no Redis errors from 8 hammering processes" 0 "$errs"
t_le "sliding window: every ${W}s window of admissions holds <= $LIM" \
    $LIM "$worst"
# 8 s of demand fill at least two full windows: the limit is reached, not
# just respected by refusing everything.
t_ge "sliding window: admissions reach the limit (>= $((LIM * 2)))" \
    $((LIM * 2)) "$total"

# --- 5. All-or-none across rules (library level) -------------------------
P=(--route test --org "pair-$SFX" --ip "$NET.200" --org-limit 3
    --org-window 60 --ip-limit 100 --ip-window 60)
for i in 1 2 3; do "$D" rate-pair "${P[@]}" >/dev/null; done
"$D" rate-pair "${P[@]}" >"$TMP/pair4"
t_match "all-or-none: the 4th is refused by the org rule" '^refused 3 0' \
    "$(cat "$TMP/pair4")"
t_eq "all-or-none: the refused request left the ip window at 3" 3 \
    "$("${RCLI[@]}" zcard "rl:{rl}:test:ip:$NET.200")"

# --- 6. Redis hung, then down: 503 quickly; recovery without restart -----
new_org down
# CLIENT PAUSE ALL: Redis accepts connections but answers nothing for 3 s.
"${RCLI[@]}" client pause 3000 all >/dev/null 2>&1
t0=$(date +%s%N)
chat1 "$SOCK" "$NET.210" "$KEY" >"$TMP/hung"
ms=$((($(date +%s%N) - t0) / 1000000))
"${RCLI[@]}" client unpause >/dev/null 2>&1
t_eq "redis hung: 503" 503 "$(status <"$TMP/hung")"
t_match "redis hung: DEPENDENCY_UNAVAILABLE" \
    '"error_code":"DEPENDENCY_UNAVAILABLE"' "$(cat "$TMP/hung")"
t_le "redis hung: answered within 2500 ms (hiredis timeout 1 s)" 2500 "$ms"
(. "$BW_TOP/dev/lib/stack.sh"; stack_load "$BW_RUN" &&
    stack_stop_one redis) >/dev/null 2>&1
t0=$(date +%s%N)
chat1 "$SOCK" "$NET.211" "$KEY" >"$TMP/down"
ms=$((($(date +%s%N) - t0) / 1000000))
t_eq "redis down: 503 DEPENDENCY_UNAVAILABLE" "503 1" \
    "$(status <"$TMP/down") $(grep -c DEPENDENCY_UNAVAILABLE "$TMP/down")"
t_eq "redis down: Retry-After 1" 1 "$(hdr Retry-After <"$TMP/down")"
t_le "redis down: answered within 1500 ms" 1500 "$ms"
(. "$BW_TOP/dev/lib/stack.sh"; stack_load "$BW_RUN" &&
    stack_start_one redis) >/dev/null 2>&1
t_eq "redis back: admitted again without restarting bulwark-fcgi" 400 \
    "$(chat1 "$SOCK" "$NET.212" "$KEY" | status)"

t_done
