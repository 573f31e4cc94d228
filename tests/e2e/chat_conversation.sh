#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The conversation as kept, through nginx over HTTPS. A turn builds the
# next document from the one it read and writes it by compare-and-set;
# when another turn of the user wrote in between, the append script lands
# it (lib/chat/conv.c, docs/chat-cost.md "The conversation written by
# compare-and-set"). Shown here:
#   - 23 turns of one user: the session counts 23 and keeps the last 20,
#     in order, each turn once; every write went by compare-and-set;
#   - long messages: the stored document stays within 32 KiB, the oldest
#     turns dropped first, the newest kept;
#   - 12 concurrent turns of a user with a conversation while the provider
#     takes 300 ms: all 12 answered and all in the conversation (none
#     lost, none twice),
#     the losers of the compare-and-set written by the script; a next turn
#     on that document goes by compare-and-set again.
# Bounded: about 60 turns, under a minute.
# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
. "${BW_TOP:?}/tests/lib/common.sh"
t_need BW_CONFIG BULWARK_URL BW_LLM_SIM_URL REDIS_URL

URL=$BULWARK_URL
# conv_writes PATH: bulwark_chat_conversation_writes_total{path="PATH"}.
conv_writes() { t_metric "bulwark_chat_conversation_writes_total{path=\"$1\"}"; }
SIM=$BW_LLM_SIM_URL
OUT=$TMP/out
SFX="$$$RANDOM"

ORG=$(t_ctl org create --name "e2e-conv-$SFX" | jq -r .id)
KEY=$(t_ctl key create --org "$ORG" --role member | jq -r .key)
t_ctl ratelimit set --org "$ORG" --route chat --scope org --limit 100000 \
    --window-s 60 >/dev/null
t_ctl ratelimit set --org "$ORG" --route chat --scope ip --limit 100000 \
    --window-s 10 >/dev/null
t_on_exit "curl -s -X POST '$SIM/_sim/reset' >/dev/null"

rcli() { redis-cli -u "$REDIS_URL" --no-auth-warning "$@"; }
# chat USER MESSAGE: one turn; prints the status.
chat() {
	jq -cn --arg u "$1" --arg m "$2" '{channel: "web", user_id: $u,
	    message: $m}' >"$TMP/body"
	curl -sk --max-time 60 -o "$OUT" -w '%{http_code}' -X POST \
	    -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
	    --data-binary @"$TMP/body" "$URL/api/v1/chat"
}
# session USER: the session's JSON.
session() {
	curl -sk --max-time 30 -H "Authorization: Bearer $KEY" \
	    "$URL/api/v1/chat/sessions/web/$1"
}

# --- 23 turns: 20 kept, in order, each once ---------------------------------
cas0=$(conv_writes cas)
scr0=$(conv_writes script)
U1="kept-$SFX"
n=0
for i in $(seq 23); do
	[ "$(chat "$U1" "message $i of 23")" = 200 ] && n=$((n + 1))
done
t_eq "23 turns answered 200" 23 "$n"
session "$U1" >"$TMP/s1"
t_eq "the session counts 23 turns" 23 "$(jq -r .turns "$TMP/s1")"
t_eq "it keeps the last 20, oldest first" \
    "$(seq 4 23 | sed 's/.*/message & of 23/' | paste -sd'|')" \
    "$(jq -r '[.recent_turns[].user] | join("|")' "$TMP/s1")"
t_eq "each kept turn has the provider's reply" 20 \
    "$(jq '[.recent_turns[] | select(.assistant | startswith("echo: message "))] | length' "$TMP/s1")"
t_eq "their times never go back" true \
    "$(jq '[.recent_turns[].ts_ms] as $t | $t == ($t | sort)' "$TMP/s1")"
t_eq "all 23 writes went by compare-and-set" 23 "$(($(conv_writes cas) - cas0))"
t_eq "none by the script" 0 "$(($(conv_writes script) - scr0))"

# --- long messages: the document within 32 KiB -----------------------------
# 3,990 Thai characters (11,970 bytes of UTF-8) a message: two turns and
# their replies already pass 32 KiB.
U2="long-$SFX"
big=$(printf 'ก%.0s' $(seq 3990))
n=0
for i in 1 2 3 4 5; do
	[ "$(chat "$U2" "long $i $big")" = 200 ] && n=$((n + 1))
done
t_eq "5 turns of 12 KB messages answered 200" 5 "$n"
KEYNAME="conv:{$ORG}:web:$U2"
t_le "the stored document is within 32 KiB" 32768 "$(rcli STRLEN "$KEYNAME")"
session "$U2" >"$TMP/s2"
t_eq "the session counts 5 turns" 5 "$(jq -r .turns "$TMP/s2")"
t_eq "the oldest were dropped first (turn 1 is gone)" 0 \
    "$(jq '[.recent_turns[].user | select(startswith("long 1 "))] | length' "$TMP/s2")"
t_eq "the newest message is kept whole" "long 5 $big" \
    "$(jq -r '.recent_turns[-1].user' "$TMP/s2")"
t_eq "the stored document is JSON with v 5" 5 \
    "$(rcli GET "$KEYNAME" | jq -r .v)"

# --- 12 concurrent turns of one user: none lost, none twice -----------------
# The user has a conversation already: each turn compares the document
# it read.
U3="burst-$SFX"
t_eq "a first turn of the burst's user: 200" 200 "$(chat "$U3" "b0")"
curl -s -X POST "$SIM/_sim/script" \
    -d "{\"org\":\"$ORG\",\"delay_ms\":300}" >/dev/null
cas0=$(conv_writes cas)
scr0=$(conv_writes script)
args=()
for j in $(seq 12); do
	[ "$j" -gt 1 ] && args+=(--next)
	args+=(-sk --max-time 60 -o /dev/null -w '%{http_code}\n' -X POST
	    -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json'
	    --data-binary "{\"channel\":\"web\",\"user_id\":\"$U3\",\"message\":\"b$j\"}"
	    "$URL/api/v1/chat")
done
curl --parallel --parallel-immediate --parallel-max 12 "${args[@]}" \
    >"$TMP/burst" 2>/dev/null
curl -s -X POST "$SIM/_sim/reset" >/dev/null
t_eq "12 concurrent turns answered 200" 12 "$(grep -c '^200$' "$TMP/burst")"
session "$U3" >"$TMP/s3"
t_eq "the session counts 13 turns" 13 "$(jq -r .turns "$TMP/s3")"
t_eq "each of the 13 is kept once" "$(seq 0 12 | sed 's/^/b/' | sort | paste -sd'|')" \
    "$(jq -r '[.recent_turns[].user] | sort | join("|")' "$TMP/s3")"
cas=$(($(conv_writes cas) - cas0))
scr=$(($(conv_writes script) - scr0))
t_eq "12 writes: by compare-and-set and by the script ($cas + $scr)" 12 \
    "$((cas + scr))"
t_ge "the turns that read before another wrote went by the script" 1 "$scr"
cas0=$(conv_writes cas)
t_eq "a next turn on that document: 200" 200 "$(chat "$U3" "after")"
t_eq "it went by compare-and-set" 1 "$(($(conv_writes cas) - cas0))"
t_eq "the session counts 14 turns" 14 "$(session "$U3" | jq -r .turns)"
t_done
