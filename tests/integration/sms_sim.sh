#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The SMS provider simulator (tools/sim/sms_sim.py) as the stack runs it
# (sms-sim, $BW_SMS_SIM_URL, the key file named in $BW_RUN/sms.env),
# through its HTTP API: API-key refusal; accept; dedupe by client_reference
# (same message_id, every POST counted, one accepted message); permanent
# refusals; each fault as the client sees it (429 with Retry-After, 5xx, a
# timeout, a connection dropped after accepting that still counts as
# accepted, latency, seeded probabilities); max in flight; delivery reports
# signed with Standard Webhooks accepted by Bulwark's
# POST /api/v1/webhooks/sms/{org_id} (200 and the sms_deliveries row), in
# order, out of order, replayed, undelivered, a wrong secret refused; an
# inbound message; no full number or text in the simulator's log.

# shellcheck disable=SC2317,SC2016 # helpers called indirectly; jq programs
# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
. "${BW_TOP:?}/tests/lib/common.sh"
t_need BW_SMS_SIM_URL BW_RUN BULWARK_URL DATABASE_URL

SIM=$BW_SMS_SIM_URL
SFX="$$$RANDOM"
t_on_exit t_kill_jobs

# --- the stack's wiring ------------------------------------------------------

ENVF=$BW_RUN/sms.env
t_eq "sms.env names the simulator's URL" "sms_base_url = $SIM" \
    "$(grep '^sms_base_url' "$ENVF" 2>/dev/null)"
KEYF=$(sed -n 's/^sms_api_key_file = //p' "$ENVF" 2>/dev/null)
KEY=$(cat "$KEYF" 2>/dev/null)
t_check "sms.env names a readable, non-empty key file" test -n "$KEY"
t_eq "sim health" '{"ok":true}' "$(curl -s "$SIM/_sim/health" | jq -c .)"

# jqe FILTER FILE: jq -e without output.
jqe() { jq -e "$@" >/dev/null; }
# ctl PATH [BODY]: a control request (POST when BODY is given).
ctl() {
	if [ $# -ge 2 ]; then
		curl -s -X POST -H 'Content-Type: application/json' --data "$2" \
		    "$SIM/_sim/$1"
	else
		curl -s "$SIM/_sim/$1"
	fi
}
# sms [CURL ARGS...] BODY: POST /v1/messages with the key; headers in
# $TMP/h, body in $TMP/b; prints "<http status> <curl exit>".
sms() {
	local body=${*: -1} rc=0 st
	st=$(curl -s -m 20 -o "$TMP/b" -D "$TMP/h" -w '%{http_code}' \
	    -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
	    "${@:1:$#-1}" --data "$body" "$SIM/v1/messages") || rc=$?
	echo "$st $rc"
}
# msg TO REF [TEXT]: a send body.
msg() {
	printf '{"to":"%s","text":"%s","client_reference":"%s"}' "$1" \
	    "${3:-hello from the sms test}" "$2"
}
# ref REF: the simulator's view of one reference.
ref() { ctl refs "{\"refs\":[\"$1\"]}" | jq -c ".refs[\"$1\"]"; }
sstat() { ctl stats | jq -r "$1"; }

ctl reset '{"config":true}' >/dev/null

# --- auth, accept, dedupe -------------------------------------------------------

st=$(curl -s -o "$TMP/b" -w '%{http_code}' -X POST --data "$(msg +66810000001 a0)" \
    "$SIM/v1/messages")
t_eq "no API key: 401 unauthorized" "401 unauthorized" \
    "$st $(jq -r .error.code "$TMP/b")"
st=$(curl -s -o "$TMP/b" -w '%{http_code}' -H 'Authorization: Bearer wrong' \
    -X POST --data "$(msg +66810000001 a0)" "$SIM/v1/messages")
t_eq "wrong API key: 401" 401 "$st"

R1="r1-$SFX"
t_eq "send accepted: 202" "202 0" "$(sms "$(msg +66810000001 "$R1")")"
t_check "202 body: message_id, accepted, the reference" jqe --arg r "$R1" \
    '(.message_id | startswith("SM")) and .status == "accepted"
     and .client_reference == $r and .duplicate == false' "$TMP/b"
MID1=$(jq -r .message_id "$TMP/b")
t_eq "same reference again: 200" "200 0" "$(sms "$(msg +66810000001 "$R1")")"
t_eq "same reference: same message_id, duplicate" "$MID1 true" \
    "$(jq -r '"\(.message_id) \(.duplicate)"' "$TMP/b")"
t_eq "dedupe: 2 POSTs counted for the reference, 1 message accepted" \
    '{"posts":2,"message_id":"'"$MID1"'","accepted":true} 1 1' \
    "$(ref "$R1") $(sstat .accepted) $(sstat .duplicates)"
t_eq "accepted per destination: 1" '{"+66810000001":1}' \
    "$(ctl destinations '{"numbers":["+66810000001"]}' | jq -c .numbers)"
t_eq "the reference reused for another number: 409" "409 reference_conflict" \
    "$(sms "$(msg +66810000002 "$R1")" | cut -d' ' -f1) $(jq -r .error.code "$TMP/b")"
st=$(curl -s -o "$TMP/b" -w '%{http_code}' -H "Authorization: Bearer $KEY" \
    "$SIM/v1/messages?client_reference=$R1")
t_eq "GET /v1/messages?client_reference finds the message" "200 $MID1" \
    "$st $(jq -r .message_id "$TMP/b")"

# --- permanent refusals ---------------------------------------------------------

t_eq "a number that does not exist (+999...): 422 number_not_found" \
    "422 number_not_found" \
    "$(sms "$(msg +9991234567 "r2-$SFX")" | cut -d' ' -f1) $(jq -r .error.code "$TMP/b")"
t_eq "not E.164: 400 invalid_number" "400 invalid_number" \
    "$(sms "$(msg 0812345678 "r3-$SFX")" | cut -d' ' -f1) $(jq -r .error.code "$TMP/b")"
long=$(head -c 1601 /dev/zero | tr '\0' x)
t_eq "text over 1600 characters: 400 text_too_long" "400 text_too_long" \
    "$(sms "$(msg +66810000003 "r4-$SFX" "$long")" | cut -d' ' -f1) $(jq -r .error.code "$TMP/b")"
t_eq "refusals accept nothing, each POST is counted" "1 1" \
    "$(sstat .accepted) $(ref "r2-$SFX" | jq -r .posts)"

# --- faults ---------------------------------------------------------------------

# The retry of the dropped send takes the "ok" step.
ctl faults '{"script":[429,503,"hang","drop","ok","accept_hang"],
    "retry_after":2,"hang_s":10}' >/dev/null
t_eq "scripted 429" "429 0" "$(sms "$(msg +66810000010 "f1-$SFX")")"
t_eq "429 carries Retry-After: 2" 1 "$(grep -ci '^retry-after: 2' "$TMP/h")"
t_eq "scripted 503" "503 0" "$(sms "$(msg +66810000011 "f2-$SFX")")"
t_eq "timeout: held past the client's 1 s (curl exit 28)" "000 28" \
    "$(sms -m 1 "$(msg +66810000012 "f3-$SFX")")"
t_eq "timeout: not accepted" false "$(ref "f3-$SFX" | jq -r .accepted)"
t_eq "drop after accepting: no answer (curl exit 52)" "000 52" \
    "$(sms "$(msg +66810000013 "f4-$SFX")")"
t_eq "drop after accepting: the message IS accepted" '1 true' \
    "$(ref "f4-$SFX" | jq -r '"\(.posts) \(.accepted)"')"
DMID=$(ref "f4-$SFX" | jq -r .message_id)
t_eq "the sender's retry of the dropped send: 200, same message_id" \
    "200 0 $DMID" "$(sms "$(msg +66810000013 "f4-$SFX")") $(jq -r .message_id "$TMP/b")"
t_eq "accept then hold past the client's timeout (curl exit 28)" "000 28" \
    "$(sms -m 1 "$(msg +66810000014 "f5-$SFX")")"
t_eq "accept then hold: accepted" true "$(ref "f5-$SFX" | jq -r .accepted)"
t_eq "script used up: normal again" "202 0" \
    "$(sms "$(msg +66810000015 "f6-$SFX")")"
t_eq "outcomes counted" '1 1 1 1 1' "$(ctl stats | jq -r '.by_outcome |
    "\(.["429"]) \(.["503"]) \(.hang) \(.drop) \(.accept_hang)"')"

ctl faults '{"latency_ms":400,"jitter_ms":100}' >/dev/null
t0=$(date +%s%N)
sms "$(msg +66810000016 "f7-$SFX")" >/dev/null
ms=$((($(date +%s%N) - t0) / 1000000))
t_ge "latency 400 ms (+ jitter) observed (${ms} ms)" 400 "$ms"

# Five at once behind a 1.5 s latency: all five in flight together.
ctl faults '{"latency_ms":1500}' >/dev/null
for i in 1 2 3 4 5; do
	sms "$(msg "+6681000010$i" "c$i-$SFX")" >"$TMP/c$i" &
done
wait
t_eq "5 concurrent sends accepted" 5 "$(cat "$TMP"/c? | grep -c '^202 0$')"
t_ge "max_in_flight >= 5" 5 "$(sstat .max_in_flight)"

# seqs: 20 sends under p(429) = 0.5 with seed 7; their statuses.
seqs() {
	local i out=
	ctl faults '{"p":{"429":0.5},"seed":7}' >/dev/null
	for i in $(seq 1 20); do
		out="$out$(sms "$(msg +66810000200 "p$1-$i-$SFX")" | cut -c1)"
	done
	echo "$out"
}
s1=$(seqs a)
s2=$(seqs b)
t_eq "seeded probabilities repeat exactly ($s1)" "$s1" "$s2"
t_match "seeded probabilities: both 429 and 202 occur" '^(2+4|4+2)[24]*$' "$s1"
ctl faults '{}' >/dev/null

# --- delivery reports to Bulwark ------------------------------------------------

ORG=$(t_ctl org create --name "sms-sim-$SFX" | jq -r .id)
SEC="whsec_$(head -c 32 /dev/urandom | base64 | tr -d '\n')"
printf '%s\n' "$SEC" | t_ctl webhook-secret set --org "$ORG" --provider sms \
    --secret - >/dev/null
t_check "org and its sms webhook secret" test -n "$ORG"
CB=$BULWARK_URL/api/v1/webhooks/sms/$ORG
t_check "sim config: callback, secret, 100 ms report delay" jqe .ok \
    <(ctl config "{\"callback_url\":\"$CB\",\"inbound_url\":\"$CB\",
    \"webhook_secrets\":{\"$ORG\":\"$SEC\"},\"dlr_delay_ms\":100,
    \"undelivered_prefixes\":[\"+6690\"]}")

# attempts MID: the report attempts of MID as "status:http_status" lines,
# in the order they were posted.
attempts() {
	ctl 'dlr?limit=1000' | jq -r --arg m "$1" \
	    '.attempts[] | select(.message_id == $m) | "\(.status):\(.http_status)"'
}
# wait_attempts MID N: until MID has N report attempts (10 s).
wait_attempts() {
	local i
	for i in $(seq 1 100); do
		[ "$(attempts "$1" | wc -l)" -ge "$2" ] && return 0
		sleep 0.1
	done
	return 1
}
dstatus() {
	t_sql "SELECT status FROM sms_deliveries WHERE org_id = '$ORG'
	    AND message_id = '$1'"
}

sms "$(msg +66820000001 "d1-$SFX")" >/dev/null
M1=$(jq -r .message_id "$TMP/b")
wait_attempts "$M1" 2
t_eq "reports sent then delivered, both 200 from Bulwark" \
    "sent:200 delivered:200" "$(attempts "$M1" | tr '\n' ' ' | sed 's/ $//')"
t_eq "sms_deliveries row: delivered" delivered "$(dstatus "$M1")"
t_eq "two webhook events recorded" 2 "$(t_sql "SELECT count(*) FROM
    webhook_events WHERE org_id = '$ORG' AND provider = 'sms'")"

ctl config '{"dlr_out_of_order":true}' >/dev/null
sms "$(msg +66820000002 "d2-$SFX")" >/dev/null
M2=$(jq -r .message_id "$TMP/b")
wait_attempts "$M2" 2
t_eq "out of order: delivered posted before sent, both 200" \
    "delivered:200 sent:200" "$(attempts "$M2" | tr '\n' ' ' | sed 's/ $//')"
t_eq "out of order: the row ends delivered" delivered "$(dstatus "$M2")"

ctl config '{"dlr_out_of_order":false,"dlr_duplicates":3}' >/dev/null
sms "$(msg +66900000003 "d3-$SFX")" >/dev/null
M3=$(jq -r .message_id "$TMP/b")
wait_attempts "$M3" 6
t_eq "each report replayed 3 times: 6 posts, all 200" 6 \
    "$(attempts "$M3" | grep -c ':200$')"
ids=$(ctl 'dlr?limit=1000' | jq -r --arg m "$M3" \
    '[.attempts[] | select(.message_id == $m) | .webhook_id] | unique | map("'"'"'" + . + "'"'"'") | join(",")')
t_eq "replays keep their webhook-id: 2 events in Bulwark" 2 \
    "$(t_sql "SELECT count(*) FROM webhook_events WHERE org_id = '$ORG'
    AND provider = 'sms' AND event_id IN ($ids)")"
t_eq "a number configured undelivered ends undelivered" undelivered \
    "$(dstatus "$M3")"

SEC2="whsec_$(head -c 32 /dev/urandom | base64 | tr -d '\n')"
ctl config "{\"dlr_duplicates\":1,\"dlr_max_attempts\":1,
    \"webhook_secrets\":{\"$ORG\":\"$SEC2\"}}" >/dev/null
sms "$(msg +66820000004 "d4-$SFX")" >/dev/null
M4=$(jq -r .message_id "$TMP/b")
wait_attempts "$M4" 2
t_match "signed with another secret: Bulwark refuses (4xx)" \
    '^sent:4[0-9][0-9] delivered:4[0-9][0-9]$' \
    "$(attempts "$M4" | tr '\n' ' ' | sed 's/ $//')"
t_eq "refused reports leave no row" "" "$(dstatus "$M4")"
ctl config "{\"webhook_secrets\":{\"$ORG\":\"$SEC\"}}" >/dev/null

out=$(ctl inbound '{"from":"+66820000009","text":"STOP"}')
t_eq "inbound STOP posted signed: Bulwark answers 200" "true 200" \
    "$(echo "$out" | jq -r '"\(.ok) \(.http_status)"')"

t_eq "stats: reports attempted and delivered counted" "true" \
    "$(ctl stats | jq '.dlr.attempts >= 12 and .dlr.delivered >= 10 and .inbound.sent == 1')"

# --- logs, reset ----------------------------------------------------------------

LOG=$BW_RUN/log/sms-sim.log
t_check "the sim logs its sends" grep -q '"path":"/v1/messages"' "$LOG"
t_eq "no full number or message text in the sim's log" 0 \
    "$(grep -c -e '+66810000001' -e '+66820000009' -e 'hello from the sms' \
    -e STOP "$LOG")"
ctl reset '{}' >/dev/null
t_eq "reset: counters and references cleared" '0 0 0' \
    "$(sstat .posts) $(sstat .accepted) $(ref "$R1" | jq -r .posts)"

t_done
