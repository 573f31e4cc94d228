#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Payment and LINE webhooks the way the providers deliver them: through
# nginx over HTTPS, with the providers' own headers and event shapes
# (issue 10; tests/integration/webhooks.sh speaks FastCGI to the masters).
# Stripe (Stripe-Signature t=,v1= over "t.body"; checkout.session.completed,
# payment_intent.succeeded, charge.refunded with a cumulative
# amount_refunded), Square (x-square-hmacsha256-signature over the
# registered notification URL + body; payment.updated, refund.updated) and
# LINE (x-line-signature; destination, events[] with webhookEventId and
# deliveryContext.isRedelivery): 20 concurrent duplicate deliveries give
# one processed and one grant; a bad signature 400 INVALID_SIGNATURE; a
# stale Stripe timestamp 400 STALE_EVENT; a replay is a duplicate; the
# official libraries' signed deliveries of tests/vectors/ are verified
# byte for byte after nginx. Bounded: about 120 requests.
. "${BW_TOP:?}/tests/lib/common.sh"
t_need BW_CONFIG BULWARK_URL DATABASE_URL

URL=$BULWARK_URL
SFX="$$$RANDOM"
VEC=$BW_TOP/tests/vectors/webhook-signatures.json
t_on_exit t_kill_jobs

ctl() { t_ctl "$@" 2>>"$TMP/ctl.log"; }
mkorg() {
	ORG=$(ctl org create --name "e2e-wh-$1-$SFX" | jq -r .id)
	KEY=$(ctl key create --org "$ORG" --role member | jq -r .key)
}

# --- signing, exactly as the providers sign (hex or base64 HMAC-SHA256) ----
# stripe_sig SECRET FILE [TS]: the Stripe-Signature value for FILE at TS.
stripe_sig() {
	local t=${3:-$(date +%s)} mac
	mac=$({ printf '%s.' "$t"; cat "$2"; } |
	    openssl dgst -sha256 -hmac "$1" -r | cut -d' ' -f1)
	printf 't=%s,v1=%s' "$t" "$mac"
}
# square_sig KEY NOTIFICATION_URL FILE
square_sig() {
	{ printf '%s' "$2"; cat "$3"; } |
	    openssl dgst -sha256 -hmac "$1" -binary | base64
}
# line_sig SECRET FILE
line_sig() { openssl dgst -sha256 -hmac "$1" -binary <"$2" | base64; }

# deliver PROVIDER ORG FILE OUT HEADER...: one POST through nginx with the
# provider's content type and user agent; prints the status, the body in
# OUT.
deliver() {
	local prov=$1 org=$2 f=$3 out=$4 ct ua
	shift 4
	case $prov in
	stripe) ct='application/json; charset=utf-8'
		ua='Stripe/1.0 (+https://stripe.com/docs/webhooks)' ;;
	square) ct='application/json' ua='Square Connect v2' ;;
	line) ct='application/json; charset=utf-8' ua='LineBotWebhook/2.0' ;;
	esac
	curl -sk --max-time 30 -o "$out" -w '%{http_code}' -X POST \
	    -H "Content-Type: $ct" -A "$ua" "$@" --data-binary "@$f" \
	    "$URL/api/v1/webhooks/$prov/$org"
}
# burst N DIR ARGS...: N concurrent `deliver ARGS...` (OUT = DIR/i.body,
# status in DIR/i.code); prints the milliseconds it took.
burst() {
	local n=$1 d=$2 i t0
	shift 2
	mkdir -p "$d"
	t0=$(date +%s%N)
	for i in $(seq 1 "$n"); do
		(deliver "${@:1:3}" "$d/$i.body" "${@:4}" >"$d/$i.code") &
	done
	wait
	echo $((($(date +%s%N) - t0) / 1000000))
}
# outcomes DIR: "<200s> <processed> <duplicate>".
outcomes() {
	echo "$(grep -lx 200 "$1"/*.code | wc -l) $(grep -l '"processed"' \
	    "$1"/*.body | wc -l) $(grep -l '"duplicate"' "$1"/*.body | wc -l)"
}
st() { jq -r '.status // .error.error_code // empty' "$1" 2>/dev/null; }
# balance ORG KEY USER: the user's balance read through nginx.
balance() {
	curl -sk --max-time 20 -H "Authorization: Bearer $2" \
	    "$URL/api/v1/accounts/$3" | jq -r .balance
}
anchors() {
	t_sql "SELECT count(*) FROM credit_transfers WHERE org_id = '$1'
	    AND anchor = '$2'"
}

mkorg main
if [ -z "$ORG" ] || [ "$ORG" = null ] || [ -z "$KEY" ] || [ "$KEY" = null ]; then
	t_fail "webhooks e2e: set-up" "$(tail -n 3 "$TMP/ctl.log")"
	t_done
fi
ST_SEC="whsec_e2e$SFX"
SQ_KEY="sqkey-e2e$SFX"
SQ_URL="https://hooks.example.test/api/v1/webhooks/square/$ORG"
LN_SEC="linesecret$SFX"
ok=0
ctl webhook-secret set --org "$ORG" --provider stripe --secret "$ST_SEC" \
    >/dev/null && ok=$((ok + 1))
ctl webhook-secret set --org "$ORG" --provider square --secret "$SQ_KEY" \
    --url "$SQ_URL" >/dev/null && ok=$((ok + 1))
ctl webhook-secret set --org "$ORG" --provider line --secret "$LN_SEC" \
    >/dev/null && ok=$((ok + 1))
t_eq "secrets set with bulwarkctl for stripe, square, line" 3 "$ok"

# --- Stripe ------------------------------------------------------------------
PI=pi_3E2e${SFX}
CS=cs_test_a1E2e${SFX}
CH=ch_3E2e${SFX}
now=$(date +%s)
# checkout.session.completed, as the Stripe API (2024-06-20) sends it.
cat >"$TMP/co.json" <<EOF
{
  "id": "evt_1E2eCo${SFX}",
  "object": "event",
  "api_version": "2024-06-20",
  "created": $now,
  "data": {
    "object": {
      "id": "$CS",
      "object": "checkout.session",
      "amount_subtotal": 2000,
      "amount_total": 2000,
      "cancel_url": "https://shop.example/cancel",
      "client_reference_id": null,
      "currency": "usd",
      "customer": "cus_E2e${SFX}",
      "customer_details": {"email": "buyer@example.com", "name": "A Buyer", "tax_exempt": "none"},
      "expires_at": $((now + 86400)),
      "livemode": false,
      "metadata": {"user_id": "st-user", "credits": "20"},
      "mode": "payment",
      "payment_intent": "$PI",
      "payment_method_types": ["card"],
      "payment_status": "paid",
      "status": "complete",
      "success_url": "https://shop.example/ok",
      "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0}
    }
  },
  "livemode": false,
  "pending_webhooks": 1,
  "request": {"id": null, "idempotency_key": null},
  "type": "checkout.session.completed"
}
EOF
sig=$(stripe_sig "$ST_SEC" "$TMP/co.json")
ms=$(burst 20 "$TMP/st" stripe "$ORG" "$TMP/co.json" \
    -H "Stripe-Signature: $sig")
echo "# stripe: 20 concurrent deliveries of one checkout.session.completed: $(outcomes "$TMP/st") (200s processed duplicate) in $ms ms"
t_eq "stripe: 20 concurrent deliveries through nginx: 20 x 200, 1 processed, 19 duplicate" \
    "20 1 19" "$(outcomes "$TMP/st")"
t_eq "stripe: one grant (anchor stripe:<payment_intent>)" 1 \
    "$(anchors "$ORG" "stripe:$PI")"
t_eq "stripe: the buyer holds the 20 credits (GET /api/v1/accounts)" 20 \
    "$(balance "$ORG" "$KEY" st-user)"

# payment_intent.succeeded of the same payment: another event, one grant.
cat >"$TMP/pi.json" <<EOF
{"id":"evt_3E2ePi${SFX}","object":"event","api_version":"2024-06-20","created":$now,"data":{"object":{"id":"$PI","object":"payment_intent","amount":2000,"amount_capturable":0,"amount_received":2000,"capture_method":"automatic","confirmation_method":"automatic","currency":"usd","customer":"cus_E2e${SFX}","latest_charge":"$CH","livemode":false,"metadata":{"user_id":"st-user","credits":"20"},"payment_method":"pm_1E2e","payment_method_types":["card"],"status":"succeeded"}},"livemode":false,"pending_webhooks":1,"request":{"id":"req_E2e${SFX}","idempotency_key":"2f6a3c2e-e2e"},"type":"payment_intent.succeeded"}
EOF
c=$(deliver stripe "$ORG" "$TMP/pi.json" "$TMP/o" \
    -H "Stripe-Signature: $(stripe_sig "$ST_SEC" "$TMP/pi.json")")
t_eq "stripe: payment_intent.succeeded of the same payment: 200 duplicate" \
    "200 duplicate" "$c $(st "$TMP/o")"
t_eq "stripe: still one grant, 20 credits" "1 20" \
    "$(anchors "$ORG" "stripe:$PI") $(balance "$ORG" "$KEY" st-user)"

# charge.refunded: 5.00 of 20.00 back (amount_refunded is cumulative).
refund() {
	cat <<EOF
{"id":"$1","object":"event","api_version":"2024-06-20","created":$now,"data":{"object":{"id":"$CH","object":"charge","amount":2000,"amount_captured":2000,"amount_refunded":$2,"balance_transaction":"txn_E2e","captured":true,"currency":"usd","customer":"cus_E2e${SFX}","livemode":false,"metadata":{},"paid":true,"payment_intent":"$PI","refunded":false,"status":"succeeded"},"previous_attributes":{"amount_refunded":$3}},"livemode":false,"pending_webhooks":1,"request":{"id":"req_R${SFX}","idempotency_key":null},"type":"charge.refunded"}
EOF
}
refund "evt_3E2eRf1${SFX}" 500 0 >"$TMP/rf1.json"
sig=$(stripe_sig "$ST_SEC" "$TMP/rf1.json")
ms=$(burst 20 "$TMP/rf" stripe "$ORG" "$TMP/rf1.json" \
    -H "Stripe-Signature: $sig")
echo "# stripe: 20 concurrent deliveries of one charge.refunded: $(outcomes "$TMP/rf") in $ms ms"
t_eq "stripe: charge.refunded (5.00 of 20.00) x 20 concurrent: 1 processed, 19 duplicate" \
    "20 1 19" "$(outcomes "$TMP/rf")"
t_eq "stripe: a quarter of the credits taken back once (15 left)" 15 \
    "$(balance "$ORG" "$KEY" st-user)"
refund "evt_3E2eRf2${SFX}" 1000 500 >"$TMP/rf2.json"
c=$(deliver stripe "$ORG" "$TMP/rf2.json" "$TMP/o" \
    -H "Stripe-Signature: $(stripe_sig "$ST_SEC" "$TMP/rf2.json")")
t_eq "stripe: a second refund (amount_refunded 1000): processed, 10 left" \
    "200 processed 10" "$c $(st "$TMP/o") $(balance "$ORG" "$KEY" st-user)"

# Refusals and replays.
c=$(deliver stripe "$ORG" "$TMP/rf2.json" "$TMP/o" \
    -H "Stripe-Signature: $(stripe_sig "$ST_SEC" "$TMP/rf2.json")")
t_eq "stripe: a replay (re-signed, as Stripe retries): 200 duplicate" \
    "200 duplicate" "$c $(st "$TMP/o")"
bad=$(stripe_sig "whsec_wrong$SFX" "$TMP/pi.json")
c=$(deliver stripe "$ORG" "$TMP/pi.json" "$TMP/o" -H "Stripe-Signature: $bad")
t_eq "stripe: signed with another secret: 400 INVALID_SIGNATURE" \
    "400 INVALID_SIGNATURE" "$c $(st "$TMP/o")"
c=$(deliver stripe "$ORG" "$TMP/pi.json" "$TMP/o")
t_eq "stripe: no Stripe-Signature: 400 INVALID_SIGNATURE" \
    "400 INVALID_SIGNATURE" "$c $(st "$TMP/o")"
refund "evt_3E2eRf3${SFX}" 2000 1000 >"$TMP/rf3.json"
c=$(deliver stripe "$ORG" "$TMP/rf3.json" "$TMP/o" -H "Stripe-Signature: \
$(stripe_sig "$ST_SEC" "$TMP/rf3.json" $(($(date +%s) - 400)))")
t_eq "stripe: signed 400 s ago: 400 STALE_EVENT" "400 STALE_EVENT" \
    "$c $(st "$TMP/o")"
t_eq "stripe: the refused deliveries changed nothing (10 credits)" 10 \
    "$(balance "$ORG" "$KEY" st-user)"
c=$(deliver stripe 0b6f2f0e-6a55-4c4f-8f55-6a1f3d9e0c11 "$TMP/pi.json" \
    "$TMP/o" -H "Stripe-Signature: $(stripe_sig "$ST_SEC" "$TMP/pi.json")")
t_eq "stripe: an unknown org: 400 INVALID_SIGNATURE" "400 INVALID_SIGNATURE" \
    "$c $(st "$TMP/o")"

# --- Square --------------------------------------------------------------------
SQP=KkAkE2e${SFX}Pay
cat >"$TMP/sq.json" <<EOF
{"merchant_id":"MLE2E${SFX}","type":"payment.updated","event_id":"6a8f5f28-e2e0-4eb0-a98a-${SFX}","created_at":"2025-06-15T15:06:40.000Z","data":{"type":"payment","id":"$SQP","object":{"payment":{"amount_money":{"amount":1000,"currency":"USD"},"approved_money":{"amount":1000,"currency":"USD"},"card_details":{"status":"CAPTURED","card":{"card_brand":"VISA","last_4":"1111"},"entry_method":"KEYED"},"created_at":"2025-06-15T15:06:30.000Z","id":"$SQP","location_id":"L8E2E","metadata":{"user_id":"sq-user","credits":"10"},"order_id":"ord_E2e${SFX}","receipt_number":"KkAk","source_type":"CARD","status":"COMPLETED","total_money":{"amount":1000,"currency":"USD"},"updated_at":"2025-06-15T15:06:40.000Z","version":3}}}}
EOF
sig=$(square_sig "$SQ_KEY" "$SQ_URL" "$TMP/sq.json")
ms=$(burst 20 "$TMP/sqb" square "$ORG" "$TMP/sq.json" \
    -H "x-square-hmacsha256-signature: $sig" -H "square-version: 2025-06-18" \
    -H "square-retry-number: 0")
echo "# square: 20 concurrent deliveries of one payment.updated: $(outcomes "$TMP/sqb") in $ms ms"
t_eq "square: payment.updated COMPLETED x 20 concurrent: 1 processed, 19 duplicate" \
    "20 1 19" "$(outcomes "$TMP/sqb")"
t_eq "square: one grant, 10 credits" "1 10" \
    "$(anchors "$ORG" "square:$SQP") $(balance "$ORG" "$KEY" sq-user)"
cat >"$TMP/sqr.json" <<EOF
{"merchant_id":"MLE2E${SFX}","type":"refund.updated","event_id":"b2c1e7e0-e2e1-4f1a-9d3b-${SFX}","created_at":"2025-06-16T10:00:05.000Z","data":{"type":"refund","id":"${SQP}_r1","object":{"refund":{"amount_money":{"amount":300,"currency":"USD"},"created_at":"2025-06-16T10:00:00.000Z","id":"${SQP}_r1","location_id":"L8E2E","order_id":"ord_E2e${SFX}","payment_id":"$SQP","reason":"Customer request","status":"COMPLETED","updated_at":"2025-06-16T10:00:05.000Z","version":2}}}}
EOF
c=$(deliver square "$ORG" "$TMP/sqr.json" "$TMP/o" \
    -H "x-square-hmacsha256-signature: $(square_sig "$SQ_KEY" "$SQ_URL" "$TMP/sqr.json")")
t_eq "square: refund.updated COMPLETED (3.00 of 10.00): processed, 7 left" \
    "200 processed 7" "$c $(st "$TMP/o") $(balance "$ORG" "$KEY" sq-user)"
c=$(deliver square "$ORG" "$TMP/sqr.json" "$TMP/o" \
    -H "x-square-hmacsha256-signature: $(square_sig "$SQ_KEY" "$SQ_URL" "$TMP/sqr.json")")
t_eq "square: the refund replayed: 200 duplicate, still 7" "200 duplicate 7" \
    "$c $(st "$TMP/o") $(balance "$ORG" "$KEY" sq-user)"
c=$(deliver square "$ORG" "$TMP/sq.json" "$TMP/o" \
    -H "x-square-hmacsha256-signature: $(square_sig "$SQ_KEY" \
    "https://elsewhere.example/hook" "$TMP/sq.json")")
t_eq "square: signed over another notification URL: 400 INVALID_SIGNATURE" \
    "400 INVALID_SIGNATURE" "$c $(st "$TMP/o")"
c=$(deliver square "$ORG" "$TMP/sq.json" "$TMP/o" \
    -H "x-square-hmacsha256-signature: $(square_sig "wrong$SQ_KEY" "$SQ_URL" "$TMP/sq.json")")
t_eq "square: signed with another key: 400 INVALID_SIGNATURE" \
    "400 INVALID_SIGNATURE" "$c $(st "$TMP/o")"

# --- LINE ----------------------------------------------------------------------
LID=01JE2E${SFX}LINE
line_body() {
	printf '{"destination":"U0123456789abcdef0123456789abcdef","events":[{"type":"message","message":{"type":"text","id":"4685%s","quoteToken":"q3E2e%s","text":"hello from LINE"},"webhookEventId":"%s","deliveryContext":{"isRedelivery":%s},"timestamp":%s000,"source":{"type":"user","userId":"Ue2e%s"},"replyToken":"b60d4328e2e%s","mode":"active"}]}' \
	    "$SFX" "$SFX" "$LID" "$1" "$(date +%s)" "$SFX" "$SFX"
}
line_body false >"$TMP/line.json"
sig=$(line_sig "$LN_SEC" "$TMP/line.json")
ms=$(burst 20 "$TMP/ln" line "$ORG" "$TMP/line.json" -H "x-line-signature: $sig")
echo "# line: 20 concurrent deliveries of one message event: $(outcomes "$TMP/ln") in $ms ms"
t_eq "line: 20 concurrent deliveries through nginx: 1 processed, 19 duplicate" \
    "20 1 19" "$(outcomes "$TMP/ln")"
t_eq "line: one chat turn queued, one anchor" "1 1" "$(t_sql "SELECT count(*)
    FROM jobs WHERE queue = 'chat_line' AND job_key = 'line:$ORG:$LID'") $(t_sql \
    "SELECT count(*) FROM line_turns WHERE org_id = '$ORG' AND event_id = '$LID'")"
# LINE's own redelivery: the same webhookEventId, isRedelivery true, so
# other bytes and another signature.
line_body true >"$TMP/line2.json"
c=$(deliver line "$ORG" "$TMP/line2.json" "$TMP/o" \
    -H "x-line-signature: $(line_sig "$LN_SEC" "$TMP/line2.json")")
t_eq "line: the redelivery (isRedelivery true): 200 duplicate" \
    "200 duplicate" "$c $(st "$TMP/o")"
t_eq "line: still one chat turn" 1 "$(t_sql "SELECT count(*) FROM jobs
    WHERE queue = 'chat_line' AND job_key = 'line:$ORG:$LID'")"
c=$(deliver line "$ORG" "$TMP/line.json" "$TMP/o" \
    -H "x-line-signature: $(line_sig "wrong$LN_SEC" "$TMP/line.json")")
t_eq "line: a bad x-line-signature: 400 INVALID_SIGNATURE" \
    "400 INVALID_SIGNATURE" "$c $(st "$TMP/o")"
printf '{"destination":"U0123456789abcdef0123456789abcdef","events":[]}' \
    >"$TMP/lv.json"
c=$(deliver line "$ORG" "$TMP/lv.json" "$TMP/o" \
    -H "x-line-signature: $(line_sig "$LN_SEC" "$TMP/lv.json")")
t_eq "line: the console's verification request (no events): 200 ignored" \
    "200 ignored" "$c $(st "$TMP/o")"

# --- the official libraries' deliveries (tests/vectors/), byte for byte -------
# vec PROVIDER ID FIELD: a field of one case; vbody: its body bytes to FILE.
vec() { jq -r --arg p "$1" --arg i "$2" '.providers[$p].cases[]
    | select(.id == $i) | '"$3" "$VEC"; }
vbody() { vec "$1" "$2" .request.body_base64 | base64 -d >"$3"; }
# vsend PROVIDER ID ORG: the case's request as the library made it.
vsend() {
	local h
	vbody "$1" "$2" "$TMP/v.body"
	h=$(vec "$1" "$2" '.request.headers | to_entries[0] | "\(.key): \(.value)"')
	curl -sk --max-time 30 -o "$TMP/o" -w '%{http_code}' -X POST \
	    -H "Content-Type: $(vec "$1" "$2" .request.content_type)" -H "$h" \
	    --data-binary "@$TMP/v.body" "$URL/api/v1/webhooks/$1/$3"
}
mkorg vec
VORG=$ORG
ctl webhook-secret set --org "$VORG" --provider square \
    --secret "$(vec square square-02-valid .verifier.signature_key)" \
    --url "$(vec square square-02-valid .verifier.notification_url)" >/dev/null
ctl webhook-secret set --org "$VORG" --provider line \
    --secret "$(vec line line-02-valid-two-events-utf8 .verifier.channel_secret)" \
    >/dev/null
ctl webhook-secret set --org "$VORG" --provider stripe \
    --secret "$(vec stripe stripe-01-valid .verifier.secret)" >/dev/null
t_eq "vectors: square-02-valid (square SDK) verified after nginx: 200" \
    "200 ignored" "$(vsend square square-02-valid "$VORG") $(st "$TMP/o")"
t_eq "vectors: square-11-utf8-body verified after nginx: 200" 200 \
    "$(vsend square square-11-utf8-body "$VORG")"
t_eq "vectors: square-03-tampered-body: 400 INVALID_SIGNATURE" \
    "400 INVALID_SIGNATURE" "$(vsend square square-03-tampered-body "$VORG") $(st "$TMP/o")"
t_eq "vectors: line-02 (@line/bot-sdk, two events, UTF-8) verified after nginx: 200 processed" \
    "200 processed" "$(vsend line line-02-valid-two-events-utf8 "$VORG") $(st "$TMP/o")"
t_eq "vectors: line-03-tampered-body: 400 INVALID_SIGNATURE" \
    "400 INVALID_SIGNATURE" "$(vsend line line-03-tampered-body "$VORG") $(st "$TMP/o")"
# Stripe's vectors are signed at a fixed past time: authentic, so stale.
t_eq "vectors: stripe-01-valid (stripe-node, signed 2025): authentic but 400 STALE_EVENT" \
    "400 STALE_EVENT" "$(vsend stripe stripe-01-valid "$VORG") $(st "$TMP/o")"
t_eq "vectors: stripe-05-tampered-body: 400 INVALID_SIGNATURE" \
    "400 INVALID_SIGNATURE" "$(vsend stripe stripe-05-tampered-body "$VORG") $(st "$TMP/o")"
# The official Stripe event body, signed now.
vbody stripe stripe-01-valid "$TMP/sv.json"
c=$(curl -sk --max-time 30 -o "$TMP/o" -w '%{http_code}' -X POST \
    -H 'Content-Type: application/json; charset=utf-8' \
    -H "Stripe-Signature: $(stripe_sig "$(vec stripe stripe-01-valid .verifier.secret)" "$TMP/sv.json")" \
    --data-binary "@$TMP/sv.json" "$URL/api/v1/webhooks/stripe/$VORG")
t_eq "vectors: stripe-01's event body signed now: 200 ignored (no credits metadata)" \
    "200 ignored" "$c $(st "$TMP/o")"

out=$(ctl ledger check --org "$ORG")
rc=$?
t_eq "ledger check clean for the org" 0 "$rc"
t_done
