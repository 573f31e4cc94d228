#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# SMS campaigns through nginx, against the stack's SMS simulator and its
# bulwark-sms sender (issue 12): validation (each bad number named,
# nothing written), duplicates removed, numbers opted out before creation;
# the same campaign created twice with one Idempotency-Key -> one
# campaign; send called 5 times at once -> one reservation, batches and
# jobs once; the campaign completes with one accepted message per number
# at the simulator, credits debited = messages accepted, delivery reports
# applied; another org's ids 404 and its list empty; cancel mid-send
# returns the unsent credits; an opt-out mid-campaign (API and inbound
# STOP) stops sends to that number; ledger check clean.
# shellcheck disable=SC2016 # jq programs
. "${BW_TOP:?}/tests/lib/common.sh"
t_need BW_CONFIG BULWARK_URL DATABASE_URL BW_SMS_SIM_URL

URL=$BULWARK_URL
SIM=$BW_SMS_SIM_URL
SFX="$$-$RANDOM"
CURL=(curl -sk --max-time 60)
OUT=$TMP/out
t_on_exit t_kill_jobs

mkorg() {
	ORG=$(t_ctl org create --name "e2e-camp-$1-$SFX" | jq -r .id)
	KEY=$(t_ctl key create --org "$ORG" --role member | jq -r .key)
}
mkorg a
AORG=$ORG AKEY=$KEY
mkorg b
BORG=$ORG BKEY=$KEY
if [ -z "$AKEY" ] || [ "$AKEY" = null ] || [ -z "$BKEY" ] || [ "$BKEY" = null ]; then
	t_fail "campaigns e2e: set-up" "could not create orgs and keys"
	t_done
fi
t_ctl credits grant --org "$AORG" --user org --amount 1000 \
    --anchor "e2e-camp:$SFX" >/dev/null
SEC="whsec_$(head -c 32 /dev/urandom | base64 | tr -d '\n')"
printf '%s\n' "$SEC" | t_ctl webhook-secret set --org "$AORG" --provider sms \
    --secret - >/dev/null
simctl() {
	if [ $# -ge 2 ]; then
		curl -s -X POST -H 'Content-Type: application/json' --data "$2" \
		    "$SIM/_sim/$1"
	else
		curl -s "$SIM/_sim/$1"
	fi
}
simctl reset '{"config":true}' >/dev/null
# Reports only for the small campaign of their own section: every report
# is a POST through nginx from 127.0.0.1, whose per-IP limit this script
# shares.
simctl config "{\"webhook_secrets\":{\"$AORG\":\"$SEC\"},\"dlr_delay_ms\":50,
    \"dlr_enabled\":false,
    \"inbound_url\":\"$URL/api/v1/webhooks/sms/$AORG\"}" >/dev/null

# call METHOD PATH KEY [BODY [EXTRA CURL ARGS...]]: the status; body in $OUT.
call() {
	local m=$1 p=$2 k=$3 a
	shift 3
	a=(-X "$m" -H "Authorization: Bearer $k")
	if [ $# -ge 1 ]; then
		a+=(-H "Content-Type: application/json" --data-binary "$1")
		shift
	fi
	"${CURL[@]}" -o "$OUT" -w '%{http_code}' "${a[@]}" "$@" "$URL$p"
}
code() { jq -r '.error.error_code // empty' "${1:-$OUT}" 2>/dev/null; }
ncamp() { t_sql "SELECT count(*) FROM campaigns WHERE org_id = '$1'"; }
# numbers PREFIX N: a JSON array of N numbers PREFIX0000001...
numbers() {
	seq -f "\"$1%07g\"" 1 "$2" | paste -sd, | sed 's/^/[/; s/$/]/'
}
# wait_status ID STATUS SECS
wait_status() {
	t_wait_sql "$3" "$2" "SELECT status FROM campaigns WHERE id = '$1'"
}
accepted_for() {
	simctl destinations "{\"numbers\":$1}" |
	    jq '[.numbers[]] | add'
}

# --- validation: every bad number named, nothing written -------------------
B='{"name":"bad","message":"hi","recipients":["+66812345678","12345","+6681234567890123","+66 81 abc","+0812345678"]}'
t_eq "invalid numbers: 400 VALIDATION_FAILED" "400 VALIDATION_FAILED" \
    "$(call POST /api/v1/campaigns "$AKEY" "$B") $(code)"
t_eq "  one fields entry per bad number, by index" \
    "recipients[1]:invalid_format recipients[2]:too_long recipients[3]:invalid_format recipients[4]:invalid_format" \
    "$(jq -r '[.error.fields[] | "\(.field):\(.problem)"] | join(" ")' "$OUT")"
t_eq "  nothing written" 0 "$(ncamp "$AORG")"
t_eq "no recipients: 400" 400 \
    "$(call POST /api/v1/campaigns "$AKEY" '{"name":"x","message":"y","recipients":[]}')"
t_eq "unknown field: 400" 400 \
    "$(call POST /api/v1/campaigns "$AKEY" '{"name":"x","message":"y","recipients":["+66812345678"],"colour":1}')"

# --- opt-out before, duplicates, one key twice -----------------------------
t_eq "POST /opt-outs: 201" 201 \
    "$(call POST /api/v1/opt-outs "$AKEY" '{"phone":"+66 80 000 0005"}')"
t_eq "  the same number again: 200" 200 \
    "$(call POST /api/v1/opt-outs "$AKEY" '{"phone":"+66800000005"}')"
t_eq "  a bad number: 400" 400 \
    "$(call POST /api/v1/opt-outs "$AKEY" '{"phone":"0800000005"}')"
NUMS=$(numbers +6680 250)
B1="{\"name\":\"promo\",\"message\":\"Sale ends today\",\"recipients\":$(echo "$NUMS" | sed 's/\]$/,"+66 80 000 0001","0066800000002"]/')}"
IK=$(cat /proc/sys/kernel/random/uuid)
c1=$(call POST /api/v1/campaigns "$AKEY" "$B1" -H "Idempotency-Key: \"$IK\"")
ID=$(jq -r .id "$OUT")
t_eq "create: 201 draft, 250 recipients, 2 duplicates, 1 opted out" \
    "201 draft 250 2 1" \
    "$c1 $(jq -r '"\(.status) \(.recipients) \(.duplicates_removed) \(.opted_out)"' "$OUT")"
c2=$(call POST /api/v1/campaigns "$AKEY" "$B1" -H "Idempotency-Key: \"$IK\"")
t_eq "the same create with the same key: same campaign" "201 $ID" \
    "$c2 $(jq -r .id "$OUT")"
t_eq "  one campaign row, 250 recipient rows" "1 250" \
    "$(ncamp "$AORG") $(t_sql "SELECT count(*) FROM campaign_recipients WHERE campaign_id = '$ID'")"

# --- another org -------------------------------------------------------------
t_eq "another org: GET 404" 404 "$(call GET "/api/v1/campaigns/$ID" "$BKEY")"
t_eq "another org: send 404" 404 "$(call POST "/api/v1/campaigns/$ID/send" "$BKEY" '{}')"
t_eq "another org: cancel 404" 404 "$(call POST "/api/v1/campaigns/$ID/cancel" "$BKEY")"
t_eq "another org: its list is empty" "200 0" \
    "$(call GET /api/v1/campaigns "$BKEY") $(jq '.campaigns | length' "$OUT")"
t_eq "  its send changed nothing" draft \
    "$(t_sql "SELECT status FROM campaigns WHERE id = '$ID'")"

# --- send 5 times at once -----------------------------------------------------
mkdir -p "$TMP/send"
for i in 1 2 3 4 5; do
	(OUT=$TMP/send/$i.body; call POST "/api/v1/campaigns/$ID/send" "$AKEY" '{}' >"$TMP/send/$i.code") &
done
wait
t_eq "5 concurrent sends: one 202, four 200" "200 200 200 200 202" \
    "$(for f in "$TMP"/send/*.code; do cat "$f"; echo; done | sort | xargs)"
t_eq "  one reservation of 249 credits keyed by the campaign" "1 249" \
    "$(t_sql "SELECT count(*) || ' ' || max(amount) FROM credit_reservations WHERE org_id = '$AORG' AND reservation_key = 'campaign:$ID'")"
t_eq "  3 batch rows, 3 jobs with the batch keys" "3 3" \
    "$(t_sql "SELECT (SELECT count(*) FROM campaign_batches WHERE campaign_id = '$ID') || ' ' || (SELECT count(*) FROM jobs WHERE queue = 'sms' AND job_key LIKE 'campaign:$ID:batch:%')")"
if wait_status "$ID" completed 60; then
	t_ok "campaign completed"
else
	t_fail "campaign completed" "status $(t_sql "SELECT status FROM campaigns WHERE id = '$ID'")"
fi
t_eq "GET: 200" 200 "$(call GET "/api/v1/campaigns/$ID" "$AKEY")"
t_eq "GET: 249 sent or beyond, 1 opted out; credits 249/249/0" \
    "249 1 249 249 0" \
    "$(jq -r '"\(.recipients.sent + .recipients.delivered + .recipients.undelivered + .recipients.failed) \(.recipients.opted_out) \(.credits.reserved) \(.credits.debited) \(.credits.released)"' "$OUT")"
t_eq "simulator: exactly one accepted message per sent number" 249 \
    "$(accepted_for "$(numbers +6680 250)")"
t_eq "  the opted-out number got none" 0 \
    "$(accepted_for '["+66800000005"]')"
t_eq "account: 1000 - 249 = 751, nothing reserved" "751 0" \
    "$(t_sql "SELECT balance || ' ' || reserved FROM credit_accounts WHERE org_id = '$AORG' AND name = 'org'")"
t_eq "list: the campaign, newest first" "200 $ID" \
    "$(call GET '/api/v1/campaigns?limit=1' "$AKEY") $(jq -r '.campaigns[0].id' "$OUT")"
t_eq "send again after completion: 200, nothing new" "200 3" \
    "$(call POST "/api/v1/campaigns/$ID/send" "$AKEY") $(t_sql "SELECT count(*) FROM jobs WHERE queue = 'sms' AND job_key LIKE 'campaign:$ID:batch:%'")"

# --- cancel mid-send returns the unsent credits -------------------------------
simctl faults '{"latency_ms":40}' >/dev/null
B2="{\"name\":\"slow\",\"message\":\"Cancel me\",\"recipients\":$(numbers +6681 300)}"
call POST /api/v1/campaigns "$AKEY" "$B2" >/dev/null
ID2=$(jq -r .id "$OUT")
call POST "/api/v1/campaigns/$ID2/send" "$AKEY" >/dev/null
sleep 1.5
t_eq "cancel while sending: 200 canceled" "200 canceled" \
    "$(call POST "/api/v1/campaigns/$ID2/cancel" "$AKEY" '{}') $(jq -r .status "$OUT")"
t_eq "  cancel again: 409 INVALID_STATE" "409 INVALID_STATE" \
    "$(call POST "/api/v1/campaigns/$ID2/cancel" "$AKEY") $(code)"
if t_wait_sql 30 t "SELECT finished_at IS NOT NULL FROM campaigns WHERE id = '$ID2'"; then
	t_ok "  settled once the batch in flight stopped"
else
	t_fail "  settled once the batch in flight stopped" "not finished"
fi
sent2=$(accepted_for "$(numbers +6681 300)")
t_eq "  credits: debited = accepted ($sent2), the rest released" \
    "300 $sent2 $((300 - sent2))" \
    "$(t_sql "SELECT credits_reserved || ' ' || credits_debited || ' ' || credits_released FROM campaigns WHERE id = '$ID2'")"
t_le "  most of it was not sent" 200 "$sent2"
t_eq "  account: nothing left reserved" "$((751 - sent2)) 0" \
    "$(t_sql "SELECT balance || ' ' || reserved FROM credit_accounts WHERE org_id = '$AORG' AND name = 'org'")"

# --- an opt-out mid-campaign stops sends to that number ----------------------
simctl faults '{"latency_ms":20}' >/dev/null
B3="{\"name\":\"optout\",\"message\":\"Last call\",\"recipients\":$(numbers +6682 150)}"
call POST /api/v1/campaigns "$AKEY" "$B3" >/dev/null
ID3=$(jq -r .id "$OUT")
call POST "/api/v1/campaigns/$ID3/send" "$AKEY" >/dev/null
sleep 0.5
call POST /api/v1/opt-outs "$AKEY" '{"phone":"+66820000140"}' >/dev/null
t_eq "inbound STOP through the simulator: Bulwark answers 200" 200 \
    "$(simctl inbound '{"from":"+66820000149","text":" stop "}' | jq -r .http_status)"
wait_status "$ID3" completed 60 || true
t_eq "  campaign completed" completed \
    "$(t_sql "SELECT status FROM campaigns WHERE id = '$ID3'")"
t_eq "  the two opted-out numbers got no message" 0 \
    "$(accepted_for '["+66820000140","+66820000149"]')"
t_eq "  their recipients are opted_out" "opted_out opted_out" \
    "$(t_sql "SELECT string_agg(state, ' ') FROM campaign_recipients WHERE campaign_id = '$ID3' AND phone IN ('+66820000140', '+66820000149')")"
t_eq "  the others got one each; debited = 148" "148 148 2" \
    "$(accepted_for "$(numbers +6682 150)") $(t_sql "SELECT credits_debited || ' ' || credits_released FROM campaigns WHERE id = '$ID3'")"
simctl faults '{}' >/dev/null

# --- delivery reports, final state first -------------------------------------
simctl config '{"dlr_enabled":true,"dlr_out_of_order":true,"undelivered_prefixes":["+66830000009"]}' >/dev/null
B4="{\"name\":\"dlr\",\"message\":\"Reports\",\"recipients\":$(numbers +6683 10)}"
call POST /api/v1/campaigns "$AKEY" "$B4" >/dev/null
ID4=$(jq -r .id "$OUT")
call POST "/api/v1/campaigns/$ID4/send" "$AKEY" >/dev/null
if t_wait_sql 30 "delivered:9 undelivered:1" "SELECT string_agg(state || ':' || n, ' ' ORDER BY state) FROM (SELECT state, count(*) n FROM campaign_recipients WHERE campaign_id = '$ID4' GROUP BY 1) s"; then
	t_ok "reports (final before sent): 9 delivered, 1 undelivered"
else
	t_fail "reports (final before sent): 9 delivered, 1 undelivered" "$(t_sql "SELECT string_agg(state || ':' || n, ' ') FROM (SELECT state, count(*) n FROM campaign_recipients WHERE campaign_id = '$ID4' GROUP BY 1) s")"
fi
t_eq "  GET shows them" "200 9 1" \
    "$(call GET "/api/v1/campaigns/$ID4" "$AKEY") $(jq -r '"\(.recipients.delivered) \(.recipients.undelivered)"' "$OUT")"
simctl config '{"dlr_enabled":false,"dlr_out_of_order":false}' >/dev/null

# --- scheduled: send_at ------------------------------------------------------
sched() { # sched NAME SECONDS_AHEAD PREFIX N: creates; prints the status
	local at
	at=$(date -u -d "+$2 seconds" +%Y-%m-%dT%H:%M:%SZ)
	call POST /api/v1/campaigns "${KEY_SCHED:-$AKEY}" \
	    "{\"name\":\"$1\",\"message\":\"Later\",\"send_at\":\"$at\",\"recipients\":$(numbers "$3" "$4")}"
}
t_eq "scheduled: 201 scheduled" "201 scheduled" "$(sched at 4 +6684 5) $(jq -r .status "$OUT")"
ID5=$(jq -r .id "$OUT")
t_eq "  one start job, runnable at send_at" "1 true" \
    "$(t_sql "SELECT count(*) || ' ' || bool_and(abs(extract(epoch FROM j.run_at - c.send_at)) < 1.5) FROM jobs j JOIN campaigns c ON c.id = '$ID5' WHERE j.job_key = 'campaign:$ID5:start'")"
t_eq "  before send_at: scheduled, nothing reserved or sent" "scheduled 0 0" \
    "$(t_sql "SELECT status || ' ' || credits_reserved FROM campaigns WHERE id = '$ID5'") $(accepted_for "$(numbers +6684 5)")"
if wait_status "$ID5" completed 40; then
	t_ok "scheduled: the sender started it at send_at and it completed"
else
	t_fail "scheduled: started at send_at and completed" \
	    "$(t_sql "SELECT status || ' ' || coalesce(start_error, '-') FROM campaigns WHERE id = '$ID5'")"
fi
t_eq "  started no earlier than send_at; 5 messages, 5 debited" "t 5 5" \
    "$(t_sql "SELECT started_at >= send_at FROM campaigns WHERE id = '$ID5'") $(accepted_for "$(numbers +6684 5)") $(t_sql "SELECT credits_debited FROM campaigns WHERE id = '$ID5'")"

sched cancelme 3 +6685 3 >/dev/null
ID6=$(jq -r .id "$OUT")
t_eq "scheduled then canceled before send_at: 200 canceled" "200 canceled" \
    "$(call POST "/api/v1/campaigns/$ID6/cancel" "$AKEY") $(jq -r .status "$OUT")"
t_wait_sql 30 done "SELECT state FROM jobs WHERE job_key = 'campaign:$ID6:start'" >/dev/null
t_eq "  its start job ran at send_at and did nothing: canceled, 0 reserved, 0 sent" \
    "done canceled 0 0" \
    "$(t_sql "SELECT state FROM jobs WHERE job_key = 'campaign:$ID6:start'") $(t_sql "SELECT status || ' ' || credits_reserved FROM campaigns WHERE id = '$ID6'") $(accepted_for "$(numbers +6685 3)")"

sched early 3600 +6686 4 >/dev/null
ID7=$(jq -r .id "$OUT")
t_eq "scheduled an hour ahead, POST /send now: 202 sending" "202 sending" \
    "$(call POST "/api/v1/campaigns/$ID7/send" "$AKEY") $(jq -r .status "$OUT")"
wait_status "$ID7" completed 40 >/dev/null
t_sql "UPDATE jobs SET run_at = now() WHERE job_key = 'campaign:$ID7:start'" >/dev/null
t_wait_sql 30 done "SELECT state FROM jobs WHERE job_key = 'campaign:$ID7:start'" >/dev/null
t_eq "  its start job, run early, changes nothing: one reservation, 4 messages" \
    "done completed 4 1 4" \
    "$(t_sql "SELECT state FROM jobs WHERE job_key = 'campaign:$ID7:start'") $(t_sql "SELECT status || ' ' || credits_debited FROM campaigns WHERE id = '$ID7'") $(t_sql "SELECT count(*) FROM credit_reservations WHERE org_id = '$AORG' AND reservation_key = 'campaign:$ID7'") $(accepted_for "$(numbers +6686 4)")"

t_eq "send_at more than 366 days ahead: 400 send_at too_far" "400 VALIDATION_FAILED send_at:too_far" \
    "$(sched far 40000000 +6687 1) $(code) $(jq -r '.error.fields[0] | "\(.field):\(.problem)"' "$OUT")"

mkorg c
KEY_SCHED=$KEY sched poor 2 +6688 3 >/dev/null
ID8=$(jq -r .id "$OUT")
if t_wait_sql 30 insufficient_credits "SELECT coalesce(start_error, '') FROM campaigns WHERE id = '$ID8'"; then
	t_ok "scheduled without credits: still scheduled, start_error insufficient_credits"
else
	t_fail "scheduled without credits: start_error" "$(t_sql "SELECT status || ' ' || coalesce(start_error, '-') FROM campaigns WHERE id = '$ID8'")"
fi
t_eq "  GET shows it; nothing sent" "200 scheduled insufficient_credits 0" \
    "$(call GET "/api/v1/campaigns/$ID8" "$KEY") $(jq -r '"\(.status) \(.start_error)"' "$OUT") $(accepted_for "$(numbers +6688 3)")"
t_ctl credits grant --org "$ORG" --user org --amount 10 --anchor "e2e-camp-c:$SFX" >/dev/null
t_eq "  credits granted, POST /send: 202" 202 "$(call POST "/api/v1/campaigns/$ID8/send" "$KEY")"
wait_status "$ID8" completed 40 >/dev/null
t_eq "  completed, start_error cleared, 3 messages" "completed - 3" \
    "$(t_sql "SELECT status || ' ' || coalesce(start_error, '-') FROM campaigns WHERE id = '$ID8'") $(accepted_for "$(numbers +6688 3)")"

# --- the ledger --------------------------------------------------------------
t_check "ledger check clean" t_ctl ledger check --org "$AORG"
t_done
