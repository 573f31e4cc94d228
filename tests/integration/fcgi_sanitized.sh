#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bulwark-fcgi itself under AddressSanitizer and UBSan (build-san/, which
# dev/test builds for the unit and integration tiers): a master of the
# sanitized build on its own sockets, on the stack's PostgreSQL, Redis and
# simulator, serves both pools the way clients use them, then stops; no
# sanitizer report may come from any of its processes. The unit tier runs
# the libraries under the sanitizers but never a whole request: a stack
# buffer of the chat turn's first Redis round trip, one call too small when
# the rate limiter rides in it, wrote past its end on every limited turn
# and no test saw it.
#
# The load: chat turns of an org with ordinary rate limits (the limiter
# rides in the turn's first round trip), sequential and concurrent ones of
# one user (the conversation written by compare-and-set and, when another
# turn wrote first, by the append script), a turn the limiter refuses, a
# bad body, a revoked key; on the api pool whoami, health, metrics and a
# bad route. Bounded: about 15 s (11 s in a CI run).
. "${BW_TOP:?}/tests/lib/common.sh"
t_need BW_CONFIG BW_BUILD DATABASE_URL BW_LLM_SIM_URL

SAN=${BW_BUILD_SAN:-$(dirname "$BW_BUILD")/build-san}
BIN=$SAN/bulwark-fcgi
SFX="$$-$(date +%s)"
SIM=$BW_LLM_SIM_URL
SOCK=$TMP/san.sock
CHAT=$TMP/san-chat.sock
REPORTS=$TMP/reports
mkdir -p "$REPORTS"

if [ ! -x "$BIN" ] || ! nm -an "$BIN" 2>/dev/null | grep -q __asan_init; then
	t_fail "a sanitized bulwark-fcgi" "none at $BIN (dev/test builds it)"
	t_done
fi
t_ok "a sanitized bulwark-fcgi at $BIN"

MPID=
stop_master() {
	[ -n "$MPID" ] || return 0
	kill -TERM "$MPID" 2>/dev/null
	for _ in $(seq 150); do
		kill -0 "$MPID" 2>/dev/null || break
		sleep 0.1
	done
	kill -9 "$MPID" 2>/dev/null
	MPID=
}
t_on_exit stop_master
t_on_exit "curl -s -X POST '$SIM/_sim/reset' >/dev/null"

sed -e "s|^fcgi_socket = .*|fcgi_socket = $SOCK|" \
    -e "s|^pid_file = .*|pid_file = $TMP/san.pid|" \
    -e "s|^fcgi_children = .*|fcgi_children = 2|" \
    -e "s|^fcgi_chat_children = .*|fcgi_chat_children = 4|" \
    "$BW_CONFIG" >"$TMP/san.conf"
# Every report to a file of its own per process; a report does not stop
# the process (the test counts them at the end); leaks are looked for when
# each child exits.
ASAN_OPTIONS="log_path=$REPORTS/asan:halt_on_error=0:detect_leaks=1:abort_on_error=0" \
    UBSAN_OPTIONS="log_path=$REPORTS/ubsan:print_stacktrace=1:halt_on_error=0" \
    "$BIN" -c "$TMP/san.conf" >>"$TMP/san.log" 2>&1 &
MPID=$!
t_fcgi_ready 60 "$SOCK" "$CHAT" ||
	t_fail "the sanitized master serves both pools" "$(tail -5 "$TMP/san.log")"

# An org with a chat rate limit (the limiter rides in every turn) and a
# budget; a second key to revoke.
ORG=$(t_ctl org create --name "san-$SFX" | jq -r .id)
KEY=$(t_ctl key create --org "$ORG" --role member | jq -r .key)
KEY2=$(t_ctl key create --org "$ORG" --role member | jq -r .key)
t_ctl ratelimit set --org "$ORG" --route chat --scope org --limit 1000 \
    --window-s 60 >/dev/null
t_ctl ratelimit set --org "$ORG" --route chat --scope ip --limit 1000 \
    --window-s 10 >/dev/null
MODEL="san-$SFX"
t_ctl price set --model "$MODEL" --input-micros-per-mtok 2500 \
    --output-micros-per-mtok 10000 >/dev/null
t_ctl budget set --org "$ORG" --daily-micros 50000000 \
    --primary-model "$MODEL" --fallback-model "$MODEL" >/dev/null
curl -s -X POST "$SIM/_sim/reset" >/dev/null

# chat KEY USER MESSAGE: one turn on the sanitized chat pool; prints the
# status.
chat() {
	t_freq --socket "$CHAT" --method POST --path /api/v1/chat \
	    --header "Authorization: Bearer $1" \
	    --body "{\"channel\":\"web\",\"user_id\":\"$2\",\"message\":\"$3\"}" \
	    --timeout 60 | cut -d' ' -f2
}

n200=0
for i in $(seq 6); do
	[ "$(chat "$KEY" alice "turn $i")" = 200 ] && n200=$((n200 + 1))
done
t_eq "6 sequential turns of one user answered 200" 6 "$n200"

# 8 concurrent turns of one user: the conversation's compare-and-set
# loses to another turn and the append script lands it.
for j in $(seq 8); do
	printf '{"channel":"web","user_id":"bob","message":"c%d"}\n' "$j"
done >"$TMP/bodies"
t_freq --socket "$CHAT" --method POST --path /api/v1/chat \
    --header "Authorization: Bearer $KEY" --bodies-file "$TMP/bodies" \
    --concurrency 8 --timeout 60 >"$TMP/conc.out"
t_eq "8 concurrent turns of one user answered 200" 8 \
    "$(grep -c '^[0-9]* 200 ' "$TMP/conc.out")"
out=$(t_freq --socket "$SOCK" --path /api/v1/chat/sessions/web/bob \
    --header "Authorization: Bearer $KEY")
t_match "all 8 are in the conversation" '"turns":8' "$out"

t_eq "a bad body is 400" 400 \
    "$(t_freq --socket "$CHAT" --method POST --path /api/v1/chat \
        --header "Authorization: Bearer $KEY" --body '{}' | cut -d' ' -f2)"
t_eq "the second key's turn is 200" 200 "$(chat "$KEY2" carol "cached")"
t_ctl key revoke "${KEY2:0:12}" >/dev/null
t_eq "a revoked key is 401" 401 "$(chat "$KEY2" carol "after revoke")"

# The limiter refuses: the org's chat limit lowered below what it used
# (the children's caches follow at the next request).
t_ctl ratelimit set --org "$ORG" --route chat --scope org --limit 2 \
    --window-s 60 >/dev/null
st=$(chat "$KEY" dave "over the limit")
t_eq "a turn over the org's limit is 429" 429 "$st"

for p in /api/v1/whoami /health /metrics /api/v1/nope; do
	t_freq --socket "$SOCK" --path "$p" \
	    --header "Authorization: Bearer $KEY" >/dev/null
done

stop_master
# The reports: ASan and UBSan name every finding "ERROR: ...Sanitizer" or
# "runtime error:".
found=$(cat "$REPORTS"/* 2>/dev/null |
    grep -E 'ERROR: [A-Za-z]+Sanitizer|runtime error:' | sort | uniq -c)
t_eq "no sanitizer report from the master or any child" "" "$found"
if [ -n "$found" ]; then
	cat "$REPORTS"/* | grep -E -A12 'ERROR: [A-Za-z]+Sanitizer|runtime error:' |
	    head -60 | sed 's/^/# /'
fi
t_done
