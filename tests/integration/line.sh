#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# LINE chat turns end to end through the stack's bulwark-chat worker, the
# LLM simulator and the LINE simulator, counted at both simulators and in
# PostgreSQL: a reply that fails twice with 5xx is retried alone (one
# provider call, one turn appended, one reply delivered); an expired reply
# token is terminal without a second model call, logged and counted, also
# after a failed first reply; an org without its own LINE channel token
# gets nothing sent (and the removed deployment-wide key is refused); a
# redelivery after the 7-day purge of the webhook event and its finished
# job is a duplicate: no second job, no second model call. About 60-80 s.
. "${BW_TOP:?}/tests/lib/common.sh"
t_need BW_LLM_SIM_URL BW_FCGI_SOCKET BW_RUN

SFX=$(tr -dc a-z </dev/urandom | head -c 10)
SIM=$BW_LLM_SIM_URL
LINE=${BW_LINE_SIM_URL:-http://127.0.0.1:$((${SIM##*:} + 1))}
S=$BW_FCGI_SOCKET
CHATLOG=$BW_RUN/log/chat.log

# new_org NAME [CHANNEL_TOKEN]: prints "ORG KEY SECRET"; the org has a LINE
# webhook secret and, when given, its own LINE channel token.
new_org() {
	local o k
	o=$(t_ctl org create --name "$1-$SFX" --tier pro | jq -r .id)
	k=$(t_ctl key create --org "$o" --role owner | jq -r .key)
	t_ctl webhook-secret set --org "$o" --provider line \
	    --secret "ls-$1-$SFX" >/dev/null
	[ -n "${2:-}" ] && t_ctl prompt set --org "$o" --line-token "$2" >/dev/null
	echo "$o $k ls-$1-$SFX"
}

# event NAME EVENT_ID REPLY_TOKEN USER TEXT: writes $TMP/NAME.json.
event() {
	printf '{"destination":"U0","events":[{"type":"message","mode":"active","webhookEventId":"%s","deliveryContext":{"isRedelivery":false},"timestamp":%d000,"source":{"type":"user","userId":"%s"},"replyToken":"%s","message":{"type":"text","id":"1","text":"%s"}}]}' \
	    "$2" "$(date +%s)" "$4" "$3" "$5" >"$TMP/$1.json"
}

# deliver ORG SECRET NAME: posts $TMP/NAME.json signed; prints the body.
deliver() {
	local sig
	sig=$(openssl dgst -sha256 -hmac "$2" -binary <"$TMP/$3.json" | base64)
	t_freq --socket "$S" --method POST --path "/api/v1/webhooks/line/$1" \
	    --header "X-Line-Signature: $sig" --body-file "$TMP/$3.json" |
	    cut -d' ' -f2-
}

script_line() {
	curl -s -X POST "$LINE/_sim/script" -d "$1" >/dev/null
}
# Provider calls the LLM simulator saw for one org.
llm_calls() {
	curl -s "$SIM/_sim/stats" | jq --arg o "$1" '.by_org[$o].requests // 0'
}
# Requests to the reply API with one reply token, and replies it accepted.
attempts() {
	curl -s "$LINE/_sim/replies" | jq --arg t "$1" \
	    '[.attempts[] | select(.reply_token == $t)] | length'
}
delivered() {
	curl -s "$LINE/_sim/replies" | jq --arg t "$1" \
	    '[.replies[] | select(.reply_token == $t)] | length'
}
# Turns in the line session of USER (0 when there is none).
turns() {
	local out
	out=$(t_freq --socket "$S" --path "/api/v1/chat/sessions/line/$2" \
	    --header "Authorization: Bearer $1")
	case $out in
	"0 200 "*) echo "${out#0 200 }" | jq .turns ;;
	*) echo 0 ;;
	esac
}
# metric SERIES: its value at GET /metrics (0 when absent). fcgi_req.py
# prints the body on one line: the sample is the last "SERIES VALUE" pair.
metric() {
	t_freq --socket "$S" --path /metrics | awk -v s="$1" '
	    { for (i = 3; i < NF; i++) if ($i == s) v = $(i + 1) }
	    END { print v + 0 }'
}
job_state() {
	t_sql "SELECT state FROM jobs WHERE queue = 'chat_line'
	    AND job_key = 'line:$1:$2'"
}
turn_row() {
	t_sql "SELECT state, coalesce(outcome, ''), reply_attempts,
	    answer IS NULL FROM line_turns WHERE org_id = '$1'
	    AND event_id = '$2'"
}

read -r ORG KEY SEC < <(new_org line tok-a-$SFX)

# --- the reply fails twice with 5xx: retried alone --------------------------
RT1="rt1-$SFX" EV1="01RETRY$SFX"
script_line "{\"reply_token\":\"$RT1\",\"statuses\":[503,500]}"
retries0=$(metric bulwark_line_reply_retries_total)
deliv0=$(metric 'bulwark_line_turns_total{outcome="delivered"}')
event ev1 "$EV1" "$RT1" "Uretry$SFX" "hello retry"
t_match "retry: the event is processed" '"processed"' "$(deliver "$ORG" "$SEC" ev1)"
t_wait_sql 60 done "$(printf "SELECT state FROM jobs WHERE queue = 'chat_line' AND job_key = 'line:%s:%s'" "$ORG" "$EV1")" ||
    t_fail "retry: the job did not finish (state $(job_state "$ORG" "$EV1"))"
t_eq "retry: the LINE API was called 3 times (503, 500, 200)" 3 "$(attempts "$RT1")"
t_eq "retry: one reply delivered" 1 "$(delivered "$RT1")"
t_eq "retry: the LLM simulator saw exactly one provider call" 1 \
    "$(llm_calls "$ORG")"
t_eq "retry: one turn appended to the line session" 1 \
    "$(turns "$KEY" "Uretry$SFX")"
t_match "retry: the delivered reply is the one answer" 'echo: hello retry' \
    "$(curl -s "$LINE/_sim/replies" | jq -c --arg t "$RT1" \
    '.replies[] | select(.reply_token == $t) | .messages')"
t_eq "retry: sent with the org's own channel token" "tok-a-$SFX" \
    "$(curl -s "$LINE/_sim/replies" | jq -r --arg t "$RT1" \
    '[.attempts[] | select(.reply_token == $t)][-1].bearer')"
t_eq "retry: the turn is replied, 3 reply attempts, answer text dropped" \
    "replied|delivered|3|t" "$(turn_row "$ORG" "$EV1")"
t_eq "retry: one budget hold, settled" "1 settled" "$(t_sql "SELECT count(*)
    || ' ' || string_agg(state, ',') FROM llm_holds
    WHERE org_id = '$ORG' AND correlation_id = '$EV1'")"
t_eq "retry: bulwark_line_reply_retries_total +2" $((retries0 + 2)) \
    "$(metric bulwark_line_reply_retries_total)"
t_eq "retry: bulwark_line_turns_total{outcome=\"delivered\"} +1" \
    $((deliv0 + 1)) "$(metric 'bulwark_line_turns_total{outcome="delivered"}')"

# --- an expired reply token: terminal, no second model call ----------------
RT2="rt2-$SFX" EV2="01EXPIRED$SFX"
script_line "{\"reply_token\":\"$RT2\",\"statuses\":[400]}"
inv0=$(metric 'bulwark_line_turns_total{outcome="reply_token_invalid"}')
calls0=$(llm_calls "$ORG")
event ev2 "$EV2" "$RT2" "Uexpired$SFX" "hello expired"
deliver "$ORG" "$SEC" ev2 >/dev/null
t_wait_sql 30 dead "$(printf "SELECT state FROM jobs WHERE queue = 'chat_line' AND job_key = 'line:%s:%s'" "$ORG" "$EV2")" ||
    t_fail "expired: the job did not end (state $(job_state "$ORG" "$EV2"))"
sleep 3 # a retry, if there were one, would come within 2.5 s
t_eq "expired: the job ended on its first attempt" "dead 1" "$(t_sql "SELECT
    state || ' ' || attempts FROM jobs WHERE queue = 'chat_line'
    AND job_key = 'line:$ORG:$EV2'")"
t_eq "expired: one provider call, no second one" $((calls0 + 1)) \
    "$(llm_calls "$ORG")"
t_eq "expired: one reply attempt, nothing delivered" "1 0" \
    "$(attempts "$RT2") $(delivered "$RT2")"
t_eq "expired: the turn is failed with reply_token_invalid" \
    "failed|reply_token_invalid|1|t" "$(turn_row "$ORG" "$EV2")"
t_eq "expired: bulwark_line_turns_total{outcome=\"reply_token_invalid\"} +1" \
    $((inv0 + 1)) \
    "$(metric 'bulwark_line_turns_total{outcome="reply_token_invalid"}')"
t_eq "expired: a \"line turn terminal\" log line names the event" 1 \
    "$(grep -F '"line turn terminal"' "$CHATLOG" | grep -F "$EV2" |
    grep -c '"outcome":"reply_token_invalid"')"

# --- a 5xx, then the token has expired: still one model call ---------------
RT3="rt3-$SFX" EV3="01LATE$SFX"
script_line "{\"reply_token\":\"$RT3\",\"statuses\":[503,400]}"
calls0=$(llm_calls "$ORG")
event ev3 "$EV3" "$RT3" "Ulate$SFX" "hello late"
deliver "$ORG" "$SEC" ev3 >/dev/null
t_wait_sql 30 dead "$(printf "SELECT state FROM jobs WHERE queue = 'chat_line' AND job_key = 'line:%s:%s'" "$ORG" "$EV3")" ||
    t_fail "late: the job did not end (state $(job_state "$ORG" "$EV3"))"
t_eq "late: two reply attempts (503, 400)" 2 "$(attempts "$RT3")"
t_eq "late: one provider call for both attempts" $((calls0 + 1)) \
    "$(llm_calls "$ORG")"
t_eq "late: one turn appended" 1 "$(turns "$KEY" "Ulate$SFX")"
t_eq "late: the turn is failed with reply_token_invalid" \
    "failed|reply_token_invalid|2|t" "$(turn_row "$ORG" "$EV3")"

# --- an org without its own channel token: nothing is sent ----------------
read -r NORG NKEY NSEC < <(new_org notoken)
RT4="rt4-$SFX" EV4="01NOTOKEN$SFX"
nt0=$(metric 'bulwark_line_turns_total{outcome="no_channel_token"}')
event ev4 "$EV4" "$RT4" "Unotoken$SFX" "hello nobody"
deliver "$NORG" "$NSEC" ev4 >/dev/null
t_wait_sql 30 dead "$(printf "SELECT state FROM jobs WHERE queue = 'chat_line' AND job_key = 'line:%s:%s'" "$NORG" "$EV4")" ||
    t_fail "no token: the job did not end (state $(job_state "$NORG" "$EV4"))"
sleep 1
t_eq "no token: no reply sent with any token" 0 "$(attempts "$RT4")"
t_eq "no token: no provider call for an answer that cannot go out" 0 \
    "$(llm_calls "$NORG")"
t_eq "no token: the turn is failed with no_channel_token" \
    "failed|no_channel_token|0|t" "$(turn_row "$NORG" "$EV4")"
t_eq "no token: bulwark_line_turns_total{outcome=\"no_channel_token\"} +1" \
    $((nt0 + 1)) \
    "$(metric 'bulwark_line_turns_total{outcome="no_channel_token"}')"
t_eq "no token: a \"line turn terminal\" log line names the event" 1 \
    "$(grep -F '"line turn terminal"' "$CHATLOG" | grep -F "$EV4" |
    grep -c '"outcome":"no_channel_token"')"
t_eq "no token: nothing to read in the session either" 0 \
    "$(turns "$NKEY" "Unotoken$SFX")"
# The deployment-wide token is gone; a config that still sets it is
# refused at start, naming the key and what replaces it.
{ cat "$BW_CONFIG"; echo "line_channel_token = deploy-$SFX"; } >"$TMP/old.conf"
out=$(bulwark-fcgi -c "$TMP/old.conf" --check-config 2>&1)
rc=$?
t_eq "no token: a config setting line_channel_token is refused" 1 \
    "$((rc != 0))"
t_match "no token: ... naming the key and the per-org token" \
    'line_channel_token: removed.*--line-token' "$out"
out=$(BULWARK_LINE_CHANNEL_TOKEN=deploy-$SFX bulwark-fcgi -c "$BW_CONFIG" \
    --check-config 2>&1)
t_match "no token: ... also from the environment" \
    'line_channel_token: removed.*env BULWARK_LINE_CHANNEL_TOKEN' "$out"

# --- redelivery after the 7-day purge: the permanent anchor ----------------
RT5="rt5-$SFX" EV5="01ANCHOR$SFX"
event ev5 "$EV5" "$RT5" "Uanchor$SFX" "hello anchor"
deliver "$ORG" "$SEC" ev5 >/dev/null
t_wait_sql 30 done "$(printf "SELECT state FROM jobs WHERE queue = 'chat_line' AND job_key = 'line:%s:%s'" "$ORG" "$EV5")" ||
    t_fail "anchor: the job did not finish (state $(job_state "$ORG" "$EV5"))"
calls0=$(llm_calls "$ORG")
# Eight days pass: the event's row expires, its finished job ages out.
t_sql "UPDATE webhook_events SET received_at = now() - interval '8 days',
    expires_at = now() - interval '1 day'
    WHERE org_id = '$ORG' AND event_id = '$EV5'" >/dev/null
t_sql "UPDATE jobs SET finished_at = now() - interval '8 days'
    WHERE queue = 'chat_line' AND job_key = 'line:$ORG:$EV5'" >/dev/null
t_sql "DELETE FROM periodic_runs WHERE job IN ('cleanup', 'maint')
    AND slot > now() - interval '2 hours'" >/dev/null
bulwark-cleanup -c "$BW_CONFIG" >>"$TMP/cleanup.log" 2>&1
bulwark-maint -c "$BW_CONFIG" >>"$TMP/maint.log" 2>&1
t_eq "anchor: the purge removed the event's row and its job" "0 0" \
    "$(t_sql "SELECT (SELECT count(*) FROM webhook_events WHERE org_id = '$ORG'
    AND event_id = '$EV5') || ' ' || (SELECT count(*) FROM jobs
    WHERE queue = 'chat_line' AND job_key = 'line:$ORG:$EV5')")"
t_match "anchor: the redelivery is acknowledged as a duplicate" \
    '^200 \{"status":"duplicate"\}' "$(deliver "$ORG" "$SEC" ev5)"
sleep 3
t_eq "anchor: no second job" 0 "$(t_sql "SELECT count(*) FROM jobs
    WHERE queue = 'chat_line' AND job_key = 'line:$ORG:$EV5'")"
t_eq "anchor: no second provider call" "$calls0" "$(llm_calls "$ORG")"
t_eq "anchor: one reply attempt in all" 1 "$(attempts "$RT5")"
t_eq "anchor: the event is recorded again, as a duplicate" duplicate \
    "$(t_sql "SELECT outcome FROM webhook_events WHERE org_id = '$ORG'
    AND event_id = '$EV5'")"
t_eq "anchor: the turn is still the one replied" "replied|delivered|1|t" \
    "$(turn_row "$ORG" "$EV5")"

t_done
