#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The chat route's rate limit rides in the turn's first Redis round trip
# (with the conversation read and the first try for a provider slot,
# docs/chat-cost.md), through nginx the way a client calls it:
# - turns over the org's limit answer 429 RATE_LIMITED with Retry-After
#   and the X-RateLimit headers, reach no provider, and keep no slot and
#   no place in the slot queue (they took one in the round trip and gave
#   it back);
# - 20 concurrent turns against a limit of 5: exactly 5 answered 200 and
#   called the provider, 15 refused, the window holds 5, no slot kept;
# - a body the schema refuses still counts in the window (400 under the
#   limit) and answers 429 over it: the limiter's answer first, as when
#   it ran before the body was read.
# Bounded: about 40 turns, the simulator answering at once.
. "${BW_TOP:?}/tests/lib/common.sh"
. "$BW_TOP/tests/lib/chat.sh"
t_need BW_CONFIG BULWARK_URL BW_LLM_SIM_URL DATABASE_URL REDIS_URL

URL=$BULWARK_URL
SIM=$BW_LLM_SIM_URL
R=(redis-cli -u "$REDIS_URL")

cleanup() { curl -s -X POST "$SIM/_sim/reset" >/dev/null; }
t_on_exit cleanup

sim_requests() { curl -s "$SIM/_sim/stats" | jq ".by_org[\"$1\"].requests // 0"; }
# turn KEY USER OUT: one chat turn; the status on stdout, the headers and
# body in OUT.h and OUT.
turn() {
	curl -sk --max-time 60 -D "$3.h" -o "$3" -w '%{http_code}' \
	    -X POST -H "Authorization: Bearer $1" \
	    -H 'Content-Type: application/json' \
	    --data-binary "{\"channel\":\"web\",\"user_id\":\"$2\",\"message\":\"hello\"}" \
	    "$URL/api/v1/chat"
}
hdr() { tr -d '\r' <"$2" | sed -n "s/^$1: //Ip" | head -1; }
# slots ORG: the org's provider slots held and its places in the slot
# queue, "held queued".
slots() {
	echo "$("${R[@]}" ZCARD "sem:{llm}:o:$1" | tr -d '\r') $("${R[@]}" ZCARD "sem:{llm}:q:$1" | tr -d '\r')"
}
window() { "${R[@]}" ZCARD "rl:{rl}:chat:org:$1" | tr -d '\r'; }
# limited NAME LIMIT: a new org (a budget it never nears) whose chat limit is LIMIT turns
# per 60 s (its IP limit lifted: the turns come from one address).
limited() {
	t_chat_org "rl-$1" 1000000000 1000000
	t_ctl ratelimit set --org "$ORG" --route chat --scope org \
	    --limit "$2" --window-s 60 >/dev/null
}

curl -s -X POST "$SIM/_sim/reset" >/dev/null

# --- one at a time --------------------------------------------------------------
limited seq 3
codes=""
for i in 1 2 3 4 5 6; do
	codes="$codes$(turn "$KEY" u1 "$TMP/s$i") "
done
t_eq "sequential: 3 turns answered, then 429 (limit 3 per 60 s)" \
    "200 200 200 429 429 429 " "$codes"
t_match "429: the error contract's RATE_LIMITED" '"error_code":"RATE_LIMITED"' \
    "$(cat "$TMP/s4")"
t_match "429: Retry-After in whole seconds (1..60)" '^([1-9]|[1-5][0-9]|60)$' \
    "$(hdr Retry-After "$TMP/s4.h")"
t_eq "429: X-RateLimit-Limit and -Remaining" "3 0" \
    "$(hdr X-RateLimit-Limit "$TMP/s4.h") $(hdr X-RateLimit-Remaining "$TMP/s4.h")"
t_eq "200: X-RateLimit-Remaining counts down" "2 0" \
    "$(hdr X-RateLimit-Remaining "$TMP/s1.h") $(hdr X-RateLimit-Remaining "$TMP/s3.h")"
t_eq "sequential: the provider was called for the 3 admitted turns only" 3 \
    "$(sim_requests "$ORG")"
t_eq "sequential: the refused turns kept no provider slot and no queue place" \
    "0 0" "$(slots "$ORG")"
t_eq "sequential: the window holds the 3 admitted turns" 3 "$(window "$ORG")"
# Over the limit, a body the schema refuses is still refused by the limiter
# first (and not counted: the window is full).
st=$(curl -sk -o "$TMP/b" -w '%{http_code}' -X POST \
    -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
    --data-binary '{}' "$URL/api/v1/chat")
t_eq "over the limit, a refused body answers 429 (the limiter first)" \
    "429 RATE_LIMITED" "$st $(jq -r .error.error_code "$TMP/b")"

# --- twenty at once ---------------------------------------------------------------
limited burst 5
for i in $(seq 20); do
	{ turn "$KEY" "b$i" "$TMP/c$i"; echo; } >"$TMP/c$i.code" &
done
wait
codes=$(cat "$TMP"/c*.code | sort | uniq -c | awk '{ printf "%s%s:%s", s, $2, $1; s = " " }')
t_eq "20 concurrent turns, limit 5: 5 answered, 15 refused" "200:5 429:15" \
    "$codes"
t_eq "concurrent: the provider was called 5 times" 5 "$(sim_requests "$ORG")"
t_eq "concurrent: no provider slot kept and no queue place left" "0 0" \
    "$(slots "$ORG")"
t_eq "concurrent: the window holds the 5 admitted" 5 "$(window "$ORG")"

# --- a body the schema refuses, under the limit --------------------------------
limited body 2
st=$(curl -sk -D "$TMP/b.h" -o "$TMP/b" -w '%{http_code}' -X POST \
    -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
    --data-binary '{}' "$URL/api/v1/chat")
t_eq "under the limit, a refused body answers 400 with the limit's headers" \
    "400 2 1" \
    "$st $(hdr X-RateLimit-Limit "$TMP/b.h") $(hdr X-RateLimit-Remaining "$TMP/b.h")"
curl -sk -o /dev/null -X POST -H "Authorization: Bearer $KEY" \
    -H 'Content-Type: application/json' --data-binary '{"channel":"web"}' \
    "$URL/api/v1/chat"
t_eq "refused bodies count in the window" 2 "$(window "$ORG")"
t_eq "a turn after two refused bodies is over the limit" 429 \
    "$(turn "$KEY" u1 "$TMP/x")"
t_eq "refused bodies reached no provider" 0 "$(sim_requests "$ORG")"
t_done
