#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# SMS delivery reports applied to campaign recipients (lib/campaign/dlr.c)
# through POST /api/v1/webhooks/sms/{org_id} on the FastCGI socket, signed
# with Standard Webhooks: one report replayed 100 times -> one state
# change; 100 distinct reports of the same state -> one state change;
# delivered before sent (out of order) ends delivered; a report that came
# before the sender recorded the message id (the provider accepted, the
# connection dropped, the sender's retry recorded it later) is applied at
# the record; another org's report for our message id changes nothing;
# a STOP from a number opts it out.
# shellcheck disable=SC2016 # jq programs
. "${BW_TOP:?}/tests/lib/common.sh"
t_need BW_CONFIG BW_FCGI_SOCKET DATABASE_URL BW_SMS_SIM_URL

SIM=$BW_SMS_SIM_URL
SFX="$$-$RANDOM"
t_on_exit t_kill_jobs

simctl() {
	if [ $# -ge 2 ]; then
		curl -s -X POST -H 'Content-Type: application/json' --data "$2" \
		    "$SIM/_sim/$1"
	else
		curl -s "$SIM/_sim/$1"
	fi
}
mkorg() {
	local o k s
	o=$(t_ctl org create --name "dlr-$1-$SFX" | jq -r .id)
	k=$(t_ctl key create --org "$o" --role member | jq -r .key)
	s="whsec_$(head -c 32 /dev/urandom | base64 | tr -d '\n')"
	printf '%s\n' "$s" | t_ctl webhook-secret set --org "$o" --provider sms \
	    --secret - >/dev/null
	echo "$o $k $s"
}
read -r AORG AKEY ASEC <<<"$(mkorg a)"
read -r BORG _ BSEC <<<"$(mkorg b)"
t_ctl credits grant --org "$AORG" --user org --amount 100 \
    --anchor "dlr:$SFX" >/dev/null

# api METHOD PATH [BODY]: "<status> <body>" through the FastCGI socket.
api() {
	local a=(--socket "$BW_FCGI_SOCKET" --method "$1" --path "$2"
	    --header "Authorization: Bearer $AKEY")
	[ $# -ge 3 ] && a+=(--header "Content-Type: application/json" --body "$3")
	t_freq "${a[@]}" | sed 's/^[0-9]* //'
}
# report ORG SECRET ID STATUS MESSAGE_ID TS [COUNT]: signed report(s),
# posted COUNT times (same webhook-id); prints the answers' statuses.
report() {
	python3 - "$@" <<'PY'
import base64, hashlib, hmac, json, os, sys, time
sys.path.insert(0, os.path.join(os.environ["BW_TOP"], "tests", "lib"))
import fcgi_req
org, sec, wid, st, mid, ts = sys.argv[1:7]
n = int(sys.argv[7]) if len(sys.argv) > 7 else 1
body = json.dumps({"type": "message.status", "timestamp": ts,
                   "data": {"message_id": mid, "status": st}}).encode()
if st == "STOP":
    body = json.dumps({"type": "message.inbound", "timestamp": ts,
                       "data": {"message_id": wid, "from": mid,
                                "text": "Stop"}}).encode()
k = base64.b64decode(sec[6:])
path = "/api/v1/webhooks/sms/" + org
out = []
for i in range(n):
    t = str(int(time.time()))
    mac = hmac.new(k, wid.encode() + b"." + t.encode() + b"." + body,
                   hashlib.sha256).digest()
    p = {"REQUEST_METHOD": "POST", "DOCUMENT_URI": path, "REQUEST_URI": path,
         "SCRIPT_NAME": path, "QUERY_STRING": "", "SERVER_PROTOCOL": "HTTP/1.1",
         "REMOTE_ADDR": "127.0.0.1", "HTTPS": "on",
         "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(body)),
         "HTTP_WEBHOOK_ID": wid, "HTTP_WEBHOOK_TIMESTAMP": t,
         "HTTP_WEBHOOK_SIGNATURE": "v1," + base64.b64encode(mac).decode()}
    st_, bd = fcgi_req.one(os.environ["BW_FCGI_SOCKET"], p, body, 30.0)
    out.append("%s:%s" % (st_, json.loads(bd or b"{}").get("status", "?")))
print(" ".join(sorted(set(out))) + " " + str(len(out)))
PY
}
rstate() {
	t_sql "SELECT state || ' ' || state_changes FROM campaign_recipients
	    WHERE org_id = '$AORG' AND phone = '$1'"
}
mid_of() {
	t_sql "SELECT provider_message_id FROM campaign_recipients
	    WHERE org_id = '$AORG' AND phone = '$1'"
}

simctl config '{"dlr_enabled":false}' >/dev/null
simctl faults '{}' >/dev/null
r=$(api POST /api/v1/campaigns \
    '{"name":"dlr","message":"hello","recipients":["+66840000001","+66840000002","+66840000003"]}')
ID=$(echo "${r#* }" | jq -r .id)
api POST "/api/v1/campaigns/$ID/send" '{}' >/dev/null
if t_wait_sql 30 completed "SELECT status FROM campaigns WHERE id = '$ID'"; then
	t_ok "dlr: a campaign of 3 sent (the stack's bulwark-sms)"
else
	t_fail "dlr: a campaign of 3 sent" "$(t_sql "SELECT status FROM campaigns WHERE id = '$ID'")"
fi
M1=$(mid_of +66840000001) M2=$(mid_of +66840000002) M3=$(mid_of +66840000003)
t_eq "dlr: three sent recipients with message ids, one state change each" \
    "sent 1|sent 1|sent 1" \
    "$(rstate +66840000001)|$(rstate +66840000002)|$(rstate +66840000003)"

NOW=$(date -u +%Y-%m-%dT%H:%M:%S)
t_eq "dlr: one report replayed 100 times: 1 processed, 99 duplicate" \
    "200:duplicate 200:processed 100" \
    "$(report "$AORG" "$ASEC" "msg_r1_$SFX" delivered "$M1" "$NOW.500Z" 100 |
    sed 's/200:duplicate 200:processed/&/')"
t_eq "dlr: ... one state change: delivered, 2 changes in all" "delivered 2" \
    "$(rstate +66840000001)"
for i in $(seq 1 20); do
	report "$AORG" "$ASEC" "msg_r1_${SFX}_$i" delivered "$M1" "$NOW.6${i}0Z" >/dev/null
done
t_eq "dlr: 20 more distinct reports of that state: no change" "delivered 2" \
    "$(rstate +66840000001)"
report "$AORG" "$ASEC" "msg_r1s_$SFX" sent "$M1" "$NOW.900Z" >/dev/null
t_eq "dlr: a later 'sent' never takes a final state back" "delivered 2" \
    "$(rstate +66840000001)"

report "$AORG" "$ASEC" "msg_r2d_$SFX" delivered "$M2" "$NOW.800Z" >/dev/null
report "$AORG" "$ASEC" "msg_r2s_$SFX" sent "$M2" "$NOW.100Z" >/dev/null
t_eq "dlr: delivered before sent ends delivered" "delivered 2" \
    "$(rstate +66840000002)"

t_eq "dlr: another org's signed report for our message id: processed there" \
    "200:processed 1" \
    "$(report "$BORG" "$BSEC" "msg_r3b_$SFX" failed "$M3" "$NOW.700Z")"
t_eq "dlr: ... our recipient unchanged" "sent 1" "$(rstate +66840000003)"
t_eq "dlr: ... our delivery row untouched (none)" 0 \
    "$(t_sql "SELECT count(*) FROM sms_deliveries WHERE org_id = '$AORG' AND message_id = '$M3'")"
t_eq "dlr: our org's report for it applies" "undelivered 2" \
    "$(report "$AORG" "$ASEC" "msg_r3a_$SFX" undelivered "$M3" "$NOW.700Z" >/dev/null; rstate +66840000003)"

# A report before the send was recorded: the provider accepts and drops
# the connection; its reports (10 ms later) reach us before the sender's
# retry (sms_backoff_base_ms later) records the message id.
CB=$(sed -n 's/^sms_callback_base_url = //p' "$BW_CONFIG")
simctl config "{\"dlr_enabled\":true,\"dlr_delay_ms\":10,
    \"webhook_secrets\":{\"$AORG\":\"$ASEC\"}}" >/dev/null
simctl faults '{"script":["drop"]}' >/dev/null
r=$(api POST /api/v1/campaigns \
    '{"name":"early","message":"early","recipients":["+66840000009"]}')
ID2=$(echo "${r#* }" | jq -r .id)
api POST "/api/v1/campaigns/$ID2/send" '{}' >/dev/null
if t_wait_sql 30 delivered "SELECT state FROM campaign_recipients WHERE campaign_id = '$ID2'"; then
	t_ok "dlr: report before the record: applied when the id was recorded"
else
	t_fail "dlr: report before the record: applied when the id was recorded" \
	    "$(t_sql "SELECT state FROM campaign_recipients WHERE campaign_id = '$ID2'") (callback base: $CB)"
fi
t_eq "dlr: ... the report was stored before the record" t \
    "$(t_sql "SELECT d.updated_at < r.sent_at FROM campaign_recipients r JOIN sms_deliveries d ON d.org_id = r.org_id AND d.message_id = r.provider_message_id WHERE r.campaign_id = '$ID2'")"
t_eq "dlr: ... two POSTs for its reference, one message" "2 1" \
    "$(simctl refs "{\"refs\":[\"$(t_sql "SELECT id FROM campaign_recipients WHERE campaign_id = '$ID2'")\"]}" | jq -r '.refs[] | "\(.posts) \(if .accepted then 1 else 0 end)"')"
simctl faults '{}' >/dev/null
simctl config '{"dlr_enabled":false}' >/dev/null

# A report whose webhook transaction is still open when the sender records
# the message id (the race sql/0031 closes): tests/integration/dlr_hold
# stores and applies a delivered report exactly as the webhook handler
# does, then keeps its transaction open 4 s. The provider accepts the first
# POST after 1.5 s and drops the connection; the sender's retry is answered
# (1.5 s later) with the same message id while that transaction is open.
# Before 0031 the record's snapshot missed the open report and the apply
# had found no row: the recipient stayed `sent`.
HOLD="$BW_BUILD/tests/integration/dlr_hold"
SKEY=$(cat "$(sed -n 's/^sms_api_key_file = //p' "$BW_CONFIG")")
simctl config '{"dlr_enabled":false}' >/dev/null
simctl faults '{"script":["drop","ok"],"latency_ms":1500}' >/dev/null
r=$(api POST /api/v1/campaigns \
    '{"name":"held","message":"held","recipients":["+66840000010"]}')
ID3=$(echo "${r#* }" | jq -r .id)
api POST "/api/v1/campaigns/$ID3/send" '{}' >/dev/null
REF3=$(t_sql "SELECT id FROM campaign_recipients WHERE campaign_id = '$ID3'")
M=""
for _ in $(seq 1 100); do
	M=$(curl -s -H "Authorization: Bearer $SKEY" \
	    "$SIM/v1/messages?client_reference=$REF3" | jq -r '.message_id // empty')
	[ -n "$M" ] && break
	sleep 0.1
done
"$HOLD" -c "$BW_CONFIG" "$AORG" "$M" delivered "$(date +%s%3N)" 4000 \
    >"$BW_TMP/hold.out" 2>&1 &
HPID=$!
wait "$HPID"
t_eq "dlr: held report: applied before the record (no row had the id), committed" \
    "applied 0 committed" "$(tr '\n' ' ' <"$BW_TMP/hold.out" | sed 's/ $//')"
if t_wait_sql 30 completed "SELECT status FROM campaigns WHERE id = '$ID3'"; then
	t_ok "dlr: held report: the campaign completed"
else
	t_fail "dlr: held report: the campaign completed" \
	    "$(t_sql "SELECT status FROM campaigns WHERE id = '$ID3'")"
fi
t_eq "dlr: held report: the record waited for it and the recipient ends delivered" \
    "delivered $M" \
    "$(t_sql "SELECT state || ' ' || provider_message_id FROM campaign_recipients WHERE campaign_id = '$ID3'")"
simctl faults '{}' >/dev/null

t_eq "dlr: inbound Stop: processed" "200:processed 1" \
    "$(report "$AORG" "$ASEC" "msg_in_$SFX" STOP "+66 84 000 0077" "$NOW.100Z")"
t_eq "dlr: ... the number is opted out (normalised)" inbound \
    "$(t_sql "SELECT source FROM sms_opt_outs WHERE org_id = '$AORG' AND phone = '+66840000077'")"
t_done
