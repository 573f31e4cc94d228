#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The conversation's pipeline fields (service, area, stage, preference)
# through nginx over HTTPS (issue 10, "Conversation state"): turn 1 sets
# them with POST /api/v1/chat "state"; turn 2 without them sends the model
# (what the LLM simulator received, GET /_sim/last-request) the note
# "Known so far: service=…; area=…" and answers the stored state; "" clears
# a field; GET /api/v1/chat/sessions/... shows them. Reading renews the TTL
# (redis PTTL before and after a read, a few seconds apart), by GET of
# the session and by a chat turn that fails at the provider. Bad fields:
# 400 VALIDATION_FAILED naming "state.<field>" with no provider call.
# Another org never sees the conversation: its GET is 404 and its turn for
# the same user starts with no fields and no note.
# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
. "${BW_TOP:?}/tests/lib/common.sh"
t_need BW_CONFIG BULWARK_URL BW_LLM_SIM_URL REDIS_URL DATABASE_URL

URL=$BULWARK_URL
SIM=$BW_LLM_SIM_URL
CURL=(curl -sk --max-time 40)
OUT=$TMP/out
SFX="$$$RANDOM"
U="cs-user-$SFX"

# mkorg NAME: ORG and KEY of a new org whose chat limits cannot shape this
# test (the per-IP default is 5 / 10 s and every call here is 127.0.0.1).
mkorg() {
	ORG=$(t_ctl org create --name "e2e-chatstate-$1-$SFX" | jq -r .id)
	KEY=$(t_ctl key create --org "$ORG" --role member | jq -r .key)
	t_sql "INSERT INTO org_rate_limits (org_id, route, scope, \"limit\",
	    window_s) VALUES ('$ORG', 'chat', 'org', 100000, 60),
	    ('$ORG', 'chat', 'ip', 100000, 10) ON CONFLICT DO NOTHING" >/dev/null
}
mkorg a
AORG=$ORG AKEY=$KEY
mkorg b
BORG=$ORG BKEY=$KEY

# chat KEY BODY: POST /api/v1/chat; prints the status, body in $OUT.
chat() {
	"${CURL[@]}" -o "$OUT" -w '%{http_code}' -X POST \
	    -H "Authorization: Bearer $1" -H 'Content-Type: application/json' \
	    --data-binary "$2" "$URL/api/v1/chat"
}
# session KEY USER: GET the web session; prints the status, body in $OUT.
session() {
	"${CURL[@]}" -o "$OUT" -w '%{http_code}' \
	    -H "Authorization: Bearer $1" "$URL/api/v1/chat/sessions/web/$2"
}
# known ORG: the content of the system messages starting "Known so far:"
# in the last provider request of ORG ("" when none, "none" when no request).
known() {
	curl -s "$SIM/_sim/last-request?org=$1" | jq -r 'if .messages == null
	    then "none" else [.messages[] | select(.role == "system"
	    and (.content | startswith("Known so far:"))) | .content]
	    | join("|") end'
}
sim_requests() {
	curl -s "$SIM/_sim/stats" | jq --arg o "$1" '.by_org[$o].requests // 0'
}
rcli() { redis-cli -u "$REDIS_URL" --no-auth-warning "$@"; }

# --- turn 1 sets fields, turn 2 without them sees them -----------------
t_eq "turn 1 with state: 200" 200 "$(chat "$AKEY" "{\"channel\":\"web\",
    \"user_id\":\"$U\",\"message\":\"I want a haircut\",
    \"state\":{\"service\":\"haircut\",\"area\":\"Shibuya\"}}")"
t_eq "turn 1 answers the state it stored" \
    '{"service":"haircut","area":"Shibuya","stage":null,"preference":null}' \
    "$(jq -c .state "$OUT")"
t_eq "turn 1: the model saw the fields given with it" \
    "Known so far: service=haircut; area=Shibuya" "$(known "$AORG")"

t_eq "turn 2 without state: 200" 200 "$(chat "$AKEY" "{\"channel\":\"web\",
    \"user_id\":\"$U\",\"message\":\"Friday please\"}")"
t_eq "turn 2: the model saw the stored fields" \
    "Known so far: service=haircut; area=Shibuya" "$(known "$AORG")"
t_eq "turn 2 answers the stored state" \
    '{"service":"haircut","area":"Shibuya","stage":null,"preference":null}' \
    "$(jq -c .state "$OUT")"
t_eq "turn 2: session turns 2" 2 "$(jq -r .session.turns "$OUT")"

t_eq "turn 3 sets stage, clears area: 200" 200 "$(chat "$AKEY" \
    "{\"channel\":\"web\",\"user_id\":\"$U\",\"message\":\"anywhere\",
    \"state\":{\"stage\":\"choosing_slot\",\"area\":\"\",
    \"preference\":\"morning, stylist Aiko\"}}")"
t_eq "turn 3: merged (service kept, area cleared, stage and preference set)" \
    '{"service":"haircut","area":null,"stage":"choosing_slot","preference":"morning, stylist Aiko"}' \
    "$(jq -c .state "$OUT")"
t_eq "turn 3: the model saw the merged fields" \
    "Known so far: service=haircut; stage=choosing_slot; preference=morning, stylist Aiko" \
    "$(known "$AORG")"
t_eq "GET session: 200" 200 "$(session "$AKEY" "$U")"
t_eq "GET session shows the fields" \
    '["haircut",null,"choosing_slot","morning, stylist Aiko",3]' \
    "$(jq -c '[.service, .area, .stage, .preference, .turns]' "$OUT")"

# --- a read renews the TTL -------------------------------------------------
KEYA="conv:{$AORG}:web:$U"
p0=$(rcli PTTL "$KEYA")
sleep 3
p1=$(rcli PTTL "$KEYA")
t_le "TTL runs down while idle (${p0} -> ${p1} ms)" $((p0 - 2500)) "$p1"
# A TTL only falls unless a write sets it: renewed to the full 1800 s
# means at least 1800 s less the time from the call's start to the read
# (on a busy machine that time is not a constant).
t0=$(date +%s%3N)
session "$AKEY" "$U" >/dev/null
p2=$(rcli PTTL "$KEYA")
el=$(($(date +%s%3N) - t0))
t_ge "GET session renews the TTL (${p1} -> ${p2} ms)" $((p1 + 1)) "$p2"
t_ge "the renewed TTL is the full 1800 s (less the ${el} ms of the call)" \
    $((1800000 - el)) "$p2"
sleep 3
p3=$(rcli PTTL "$KEYA")
# A turn that reads the conversation but fails at the provider (a scripted
# 400, never retried: 502) appends nothing: only the read renews the TTL.
curl -s -X POST "$SIM/_sim/script" -d "{\"org\":\"$AORG\",\"statuses\":[400]}" \
    >/dev/null
t0=$(date +%s%3N)
t_eq "a turn the provider refuses: 502" 502 "$(chat "$AKEY" "{\"channel\":\"web\",
    \"user_id\":\"$U\",\"message\":\"x\"}")"
p4=$(rcli PTTL "$KEYA")
el=$(($(date +%s%3N) - t0))
curl -s -X POST "$SIM/_sim/script" -d "{\"org\":\"$AORG\"}" >/dev/null
t_ge "the chat turn's read renewed the TTL (${p3} -> ${p4} ms)" \
    $((p3 + 1)) "$p4"
t_ge "... to the full 1800 s (less the ${el} ms of the turn)" \
    $((1800000 - el)) "$p4"
t_eq "and appended nothing (turns still 3)" 3 \
    "$(session "$AKEY" "$U" >/dev/null; jq -r .turns "$OUT")"

# --- validation: 400 naming the field, no provider call --------------------
before=$(sim_requests "$AORG")
bad() {
	t_eq "bad state $1: 400" 400 "$(chat "$AKEY" "{\"channel\":\"web\",
	    \"user_id\":\"$U\",\"message\":\"x\",\"state\":$2}")"
	t_eq "bad state $1: VALIDATION_FAILED naming $3 ($4)" \
	    "VALIDATION_FAILED $3 $4" \
	    "$(jq -r '[.error.error_code, .error.fields[0].field,
	        .error.fields[0].problem] | join(" ")' "$OUT")"
}
bad "not an object" '"haircut"' state wrong_type
bad "number" '{"service":5}' state.service wrong_type
bad "null" '{"area":null}' state.area wrong_type
bad "unknown member" '{"price":"10"}' state.price unknown_field
bad "too long" "{\"preference\":\"$(printf 'x%.0s' $(seq 129))\"}" \
    state.preference too_long
bad "newline" '{"stage":"a\nb"}' state.stage invalid_format
t_eq "no provider call for the bad requests" "$before" \
    "$(sim_requests "$AORG")"
t_eq "128 characters are accepted" 200 "$(chat "$AKEY" "{\"channel\":\"web\",
    \"user_id\":\"$U\",\"message\":\"x\",
    \"state\":{\"preference\":\"$(printf 'y%.0s' $(seq 128))\"}}")"

# --- another org never sees it ---------------------------------------------
t_eq "org B: GET of org A's session is 404" 404 "$(session "$BKEY" "$U")"
t_eq "org B: a turn for the same user id: 200" 200 "$(chat "$BKEY" \
    "{\"channel\":\"web\",\"user_id\":\"$U\",\"message\":\"hello\"}")"
t_eq "org B: no fields answered" \
    '{"service":null,"area":null,"stage":null,"preference":null}' \
    "$(jq -c .state "$OUT")"
t_eq "org B: turns 1" 1 "$(jq -r .session.turns "$OUT")"
t_eq "org B: the model saw no note" "" "$(known "$BORG")"
t_eq "org A's fields are untouched" "haircut" \
    "$(session "$AKEY" "$U" >/dev/null; jq -r .service "$OUT")"

rcli DEL "$KEYA" "conv:{$BORG}:web:$U" >/dev/null
t_done
