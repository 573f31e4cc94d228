#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# No leaks in the request loop: one bulwark-fcgi child serves thousands of
# requests over the authenticated, database, error and metrics paths; its
# resident memory after a warm-up and after 4x more requests may grow by
# at most 256 kB (a leak of 50 bytes a request would show as ~600 kB).
. "${BW_TOP:?}/tests/lib/common.sh"

T=$TMP
SOCK=$T/rss.sock
BULWARK_FCGI_SOCKET=$SOCK BULWARK_PID_FILE=$T/rss.pid \
    BULWARK_FCGI_CHILDREN=1 BULWARK_FCGI_MAX_REQUESTS=0 \
    BULWARK_FCGI_CHAT_CHILDREN=1 \
    bulwark-fcgi -c "$BW_CONFIG" >>"$T/rss.log" 2>&1 &
MASTER=$!
# shellcheck disable=SC2016 # expanded at exit
t_on_exit 'kill -TERM "$MASTER" 2>/dev/null'
for _ in $(seq 50); do [ -S "$SOCK" ] && break; sleep 0.1; done
CHILD=$(pgrep -x -P "$MASTER" bulwark-fcgi | head -n 1)

K="Authorization: Bearer $BW_DEMO_KEY"
req() {
	python3 "$BW_TOP/tests/lib/fcgi_req.py" --socket "$SOCK" \
	    --concurrency 2 "$@" | awk '{ print $2 }'
}
# round N: N each of whoami, a booking (409: no credits), a badly signed
# webhook (400), a 404, and N/20 metrics scrapes. Prints the statuses.
round() {
	req --path /api/v1/whoami --header "$K" --count "$1"
	req --method POST --path /api/v1/bookings --header "$K" \
	    --body '{"user_id":"rss-user","class_id":"c1","credits":1}' \
	    --count "$1"
	req --method POST --path "/api/v1/webhooks/stripe/$BW_DEMO_ORG" \
	    --header 'Stripe-Signature: t=1,v1=00' --body '{"id":"evt_rss"}' \
	    --count "$1"
	req --path /nope --count "$1"
	req --path /metrics --count $(($1 / 20))
}
rss() { awk '/^VmRSS/ { print $2 }' "/proc/$CHILD/status"; }

round 1000 >"$T/warm.txt"
r1=$(rss)
round 4000 >"$T/run.txt"
r2=$(rss)
t_eq "the same child served every request" "$CHILD" \
    "$(pgrep -x -P "$MASTER" bulwark-fcgi | head -n 1)"
t_eq "every request was answered" 0 "$(grep -c '^000$' "$T/run.txt")"
t_eq "the paths answered as expected (200, 409, 400, 404)" 0 \
    "$(grep -cvE '^(200|409|400|404)$' "$T/run.txt")"
t_le "RSS grew at most 256 kB over 16,200 requests ($r1 -> $r2 kB)" \
    256 "$((r2 - r1))"
t_done
