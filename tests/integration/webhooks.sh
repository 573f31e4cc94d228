#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Payment, SMS and LINE webhooks against real PostgreSQL, counted, not
# sampled, over three bulwark-fcgi masters (as three hosts): a replay storm
# of one Stripe event (500 deliveries, 50 at a time) is processed once;
# 1,000 distinct events grant 1,000 times and the ledger stays balanced;
# both events of one checkout grant once; purge then resend grants nothing;
# two concurrent cleanup runs never delete twice; PostgreSQL stopped during
# a delivery gives 503 and no partial effect, the retry after it is back is
# processed once; stale timestamps, bad signatures and unknown orgs are
# refused (the last two identically); rotation; Square with the registered
# URL; LINE redelivered 20 times queues one chat turn; refunds: partial ones
# take back their share (Stripe's cumulative amount_refunded, Square's
# refunds one by one), replays change nothing, another currency is
# refused, past the payment stops at the grant, spent credits become debts,
# refunds before their grant reduce it; an older SMS status never
# overwrites a newer one. Events are signed here exactly as the providers
# sign them.
. "${BW_TOP:?}/tests/lib/common.sh"

CFG=$BW_CONFIG
SFX="$$$RANDOM"
PG_STOPPED=0
MPIDS=()

cleanup() {
	local p
	if [ "$PG_STOPPED" = 1 ]; then
		(t_stack && stack_start_one postgres) >/dev/null 2>&1
	fi
	for p in "${MPIDS[@]}"; do
		kill -TERM "$p" 2>/dev/null
	done
	t_kill_jobs
}
t_on_exit cleanup

ctl() { bulwarkctl -c "$CFG" "$@" 2>>"$TMP/ctl.log"; }

# The signing client: wh.py PROVIDER SECRET [URL] with --body/--bodies-file,
# --count, --concurrency, --ts-offset S, --bad; prints "<i> <status> <body>"
# per request. A bodies-file line "ID<TAB>BODY" gives the Standard Webhooks
# message id (webhook-id) of that body.
cat >"$TMP/wh.py" <<'EOF'
import argparse, base64, hashlib, hmac, os, sys, threading, time
sys.path.insert(0, os.path.join(os.environ["BW_TOP"], "tests", "lib"))
import fcgi_req

ap = argparse.ArgumentParser()
ap.add_argument("--socket", action="append", required=True)
ap.add_argument("--path", required=True)
ap.add_argument("--provider", required=True)
ap.add_argument("--secret", required=True)
ap.add_argument("--url", default="")
ap.add_argument("--body")
ap.add_argument("--bodies-file")
ap.add_argument("--count", type=int)
ap.add_argument("--concurrency", type=int, default=1)
ap.add_argument("--ts-offset", type=int, default=0)
ap.add_argument("--bad", action="store_true")
ap.add_argument("--id", default="msg_default")
a = ap.parse_args()

if a.bodies_file:
    with open(a.bodies_file, "rb") as f:
        items = [ln.rstrip(b"\n") for ln in f if ln.strip()]
else:
    items = [a.body.encode()]
count = a.count if a.count is not None else len(items)
count = max(0, min(count, 20000))


def b64(d):
    return base64.b64encode(d).decode()


def sign(item):
    mid = a.id.encode()
    if b"\t" in item:
        mid, item = item.split(b"\t", 1)
    t = int(time.time()) + a.ts_offset
    key = a.secret.encode()
    h = {}
    if a.provider == "stripe":
        mac = hmac.new(key, b"%d." % t + item, hashlib.sha256).hexdigest()
        if a.bad:
            mac = mac[::-1]
        h["HTTP_STRIPE_SIGNATURE"] = "t=%d,v1=%s" % (t, mac)
    elif a.provider == "square":
        mac = hmac.new(key, a.url.encode() + item, hashlib.sha256).digest()
        if a.bad:
            mac = mac[::-1]
        h["HTTP_X_SQUARE_HMACSHA256_SIGNATURE"] = b64(mac)
    elif a.provider == "line":
        mac = hmac.new(key, item, hashlib.sha256).digest()
        if a.bad:
            mac = mac[::-1]
        h["HTTP_X_LINE_SIGNATURE"] = b64(mac)
    elif a.provider == "sms":
        k = base64.b64decode(a.secret[6:] if a.secret.startswith("whsec_")
                             else a.secret)
        mac = hmac.new(k, mid + b"." + str(t).encode() + b"." + item,
                       hashlib.sha256).digest()
        if a.bad:
            mac = mac[::-1]
        h["HTTP_WEBHOOK_ID"] = mid.decode()
        h["HTTP_WEBHOOK_TIMESTAMP"] = str(t)
        h["HTTP_WEBHOOK_SIGNATURE"] = "v1," + b64(mac)
    return h, item


lock = threading.Lock()
nxt = [0]
res = [None] * count


def worker():
    while True:
        with lock:
            i = nxt[0]
            if i >= count:
                return
            nxt[0] += 1
        h, body = sign(items[i % len(items)])
        p = {"REQUEST_METHOD": "POST", "DOCUMENT_URI": a.path,
             "REQUEST_URI": a.path, "SCRIPT_NAME": a.path,
             "QUERY_STRING": "", "SERVER_PROTOCOL": "HTTP/1.1",
             "REMOTE_ADDR": "127.0.0.1", "HTTPS": "on",
             "CONTENT_TYPE": "application/json",
             "CONTENT_LENGTH": str(len(body))}
        p.update(h)
        res[i] = fcgi_req.one(a.socket[i % len(a.socket)], p, body, 60.0)


ts = [threading.Thread(target=worker)
      for _ in range(max(1, min(a.concurrency, 200)))]
for t in ts:
    t.start()
for t in ts:
    t.join()
for i, (st, bd) in enumerate(res):
    sys.stdout.write("%d %s %s\n" % (i, st, bd.decode("utf-8", "replace")
                                     .replace("\n", " ")))
EOF

# send PROVIDER SECRET URL_OR_- ORG ARGS...: through all masters.
send() {
	local prov=$1 sec=$2 url=$3 org=$4
	shift 4
	[ "$url" = - ] && url=""
	python3 "$TMP/wh.py" "${SOCKS[@]}" --path "/api/v1/webhooks/$prov/$org" \
	    --provider "$prov" --secret "$sec" --url "$url" "$@"
}
# count FILE PATTERN: lines matching.
count() { grep -c -- "$2" "$1"; }
# balance USER: the user's credit balance in $ORG (0 when no account).
balance() {
	t_sql "SELECT coalesce((SELECT balance FROM credit_accounts
	    WHERE org_id = '$ORG' AND kind = 'user' AND name = '$1'), 0)"
}
# stripe_pi ID PI USER CREDITS [AMOUNT]: a payment_intent.succeeded event
# of AMOUNT cents (default 1000, 10.00 USD).
stripe_pi() {
	printf '{"id":"%s","object":"event","type":"payment_intent.succeeded",' "$1"
	printf '"data":{"object":{"id":"%s","object":"payment_intent",' "$2"
	printf '"amount":%s,"amount_received":%s,"currency":"usd",' "${5:-1000}" "${5:-1000}"
	printf '"status":"succeeded",'
	printf '"metadata":{"user_id":"%s","credits":"%s"}}}}' "$3" "$4"
}

# --- set-up: an org, its secrets, three masters ---------------------------

ORG=$(ctl org create --name "webhooks-$SFX" | jq -r .id)
if [ -z "$ORG" ] || [ "$ORG" = null ]; then
	t_fail "org created" "$(tail -n 3 "$TMP/ctl.log")"
	t_done
fi
ST_A="whsec_stripeA$SFX"
ST_B="whsec_stripeB$SFX"
ST_C="whsec_stripeC$SFX"
SQ_KEY="sqkey$SFX"
SQ_URL="https://hooks.example.test/webhooks/square/$ORG"
LN_SEC="linesecret$SFX"
SMS_SEC="whsec_$(head -c 32 /dev/urandom | base64 | tr -d '\n')"
ok=0
ctl webhook-secret set --org "$ORG" --provider stripe --secret "$ST_A" \
    >/dev/null && ok=$((ok + 1))
ctl webhook-secret set --org "$ORG" --provider square --secret "$SQ_KEY" \
    --url "$SQ_URL" >/dev/null && ok=$((ok + 1))
ctl webhook-secret set --org "$ORG" --provider line --secret "$LN_SEC" \
    >/dev/null && ok=$((ok + 1))
printf '%s\n' "$SMS_SEC" | ctl webhook-secret set --org "$ORG" \
    --provider sms --secret - >/dev/null && ok=$((ok + 1))
t_eq "webhook-secret set for stripe, square (with url), line, sms" 4 "$ok"
out=$(ctl webhook-secret set --org "$ORG" --provider square --secret x; echo "rc=$?")
t_match "webhook-secret set refuses square without --url" '^rc=1$' "$out"
out=$(ctl webhook-secret set --org 00000000-0000-0000-0000-000000000000 \
    --provider stripe --secret whsec_x; echo "rc=$?")
t_match "webhook-secret set refuses an unknown org" 'rc=1$' "$out"

SOCKS=(--socket "$BW_FCGI_SOCKET")
for m in 2 3; do
	rm -f "$TMP/m$m.sock"
	BULWARK_FCGI_SOCKET=$TMP/m$m.sock BULWARK_PID_FILE=$TMP/m$m.pid \
	    BULWARK_FCGI_CHAT_CHILDREN=1 \
	    bulwark-fcgi -c "$CFG" >>"$TMP/m$m.log" 2>&1 &
	MPIDS+=("$!")
	SOCKS+=(--socket "$TMP/m$m.sock")
done
for _ in $(seq 100); do
	[ -S "$TMP/m2.sock" ] && [ -S "$TMP/m3.sock" ] && break
	sleep 0.1
done
t_check "three bulwark-fcgi masters listen" \
    test -S "$TMP/m2.sock" -a -S "$TMP/m3.sock"

# --- replay storm: one event, 500 deliveries, 50 at a time, 3 masters -----

stripe_pi "evt_storm_$SFX" "pi_storm_$SFX" storm-user 7 >"$TMP/storm.json"
send stripe "$ST_A" - "$ORG" --body "$(cat "$TMP/storm.json")" --count 500 \
    --concurrency 50 >"$TMP/storm.out"
t_eq "storm: 500 answers, all 200" 500 "$(count "$TMP/storm.out" '^[0-9]* 200 ')"
t_eq "storm: exactly one processed" 1 "$(count "$TMP/storm.out" '"status":"processed"')"
t_eq "storm: 499 duplicate" 499 "$(count "$TMP/storm.out" '"status":"duplicate"')"
t_eq "storm: credits granted once" 7 "$(balance storm-user)"
t_eq "storm: one grant transfer" 1 "$(t_sql "SELECT count(*) FROM
    credit_transfers WHERE org_id = '$ORG' AND anchor = 'stripe:pi_storm_$SFX'")"
t_eq "storm: one webhook_events row, still stored as processed" "1 processed" \
    "$(t_sql "SELECT count(*) || ' ' || min(outcome) FROM webhook_events
    WHERE org_id = '$ORG' AND event_id = 'evt_storm_$SFX'")"

# --- 1,000 distinct events concurrently ------------------------------------

: >"$TMP/bulk.jsonl"
for i in $(seq 1 1000); do
	stripe_pi "evt_bulk_${SFX}_$i" "pi_bulk_${SFX}_$i" "bulk-$((i % 10))" \
	    $((i % 5 + 1)) >>"$TMP/bulk.jsonl"
	echo >>"$TMP/bulk.jsonl"
done
send stripe "$ST_A" - "$ORG" --bodies-file "$TMP/bulk.jsonl" \
    --concurrency 50 >"$TMP/bulk.out"
t_eq "bulk: 1000 processed" 1000 "$(count "$TMP/bulk.out" '"status":"processed"')"
t_eq "bulk: 1000 grants" 1000 "$(t_sql "SELECT count(*) FROM credit_transfers
    WHERE org_id = '$ORG' AND anchor LIKE 'stripe:pi_bulk_${SFX}_%'")"
want=$(awk 'BEGIN { s = 0; for (i = 1; i <= 1000; i++) s += i % 5 + 1;
    print s }')
t_eq "bulk: the users hold exactly the granted credits" "$want" \
    "$(t_sql "SELECT sum(balance) FROM credit_accounts WHERE org_id = '$ORG'
    AND kind = 'user' AND name LIKE 'bulk-%'")"
t_eq "bulk: the org's balances sum to 0" 0 "$(t_sql "SELECT sum(balance)
    FROM credit_accounts WHERE org_id = '$ORG'")"
if bulwarkctl 2>&1 | grep -q 'ledger check'; then
	out=$(ctl ledger check --org "$ORG"; echo "rc=$?")
	t_match "bulk: bulwarkctl ledger check is clean" 'rc=0$' "$out"
fi

# --- both events of one checkout grant once --------------------------------

co=$(printf '{"id":"evt_co_%s","type":"checkout.session.completed","data":{"object":{"id":"cs_%s","object":"checkout.session","amount_total":1000,"currency":"usd","payment_status":"paid","payment_intent":"pi_co_%s","metadata":{"user_id":"co-user","credits":"3"}}}}' "$SFX" "$SFX" "$SFX")
r1=$(send stripe "$ST_A" - "$ORG" --body "$co")
r2=$(send stripe "$ST_A" - "$ORG" --body "$(stripe_pi "evt_copi_$SFX" \
    "pi_co_$SFX" co-user 3)")
t_match "checkout.session.completed is processed" '"processed"' "$r1"
t_match "its payment_intent.succeeded is a duplicate" '"duplicate"' "$r2"
t_eq "checkout + payment intent of one payment grant once" 3 \
    "$(balance co-user)"
t_eq "the second event of one payment is stored as a duplicate" \
    "processed duplicate" "$(t_sql "SELECT string_agg(outcome, ' ' ORDER BY
    event_id) FROM webhook_events WHERE org_id = '$ORG'
    AND event_id IN ('evt_co_$SFX', 'evt_copi_$SFX')")"
unpaid=$(printf '{"id":"evt_unpaid_%s","type":"checkout.session.completed","data":{"object":{"id":"cs_u%s","payment_status":"unpaid","payment_intent":"pi_u%s","metadata":{"user_id":"unpaid-user","credits":"3"}}}}' "$SFX" "$SFX" "$SFX")
r=$(send stripe "$ST_A" - "$ORG" --body "$unpaid")
t_match "an unpaid checkout is ignored" '"ignored"' "$r"
t_eq "an unpaid checkout grants nothing" 0 "$(balance unpaid-user)"
r=$(send stripe "$ST_A" - "$ORG" --body '{"id":"evt_other_'"$SFX"'","type":"customer.created","data":{"object":{}}}')
t_match "another event type is ignored" '"ignored"' "$r"
t_eq "an ignored event is still recorded once" ignored "$(t_sql "SELECT
    outcome FROM webhook_events WHERE org_id = '$ORG'
    AND event_id = 'evt_other_$SFX'")"

# --- purge then resend ------------------------------------------------------

# Stay clear of an hour boundary: the cleanup runs below share one slot.
for _ in $(seq 1 40); do
	s=$(t_sql "SELECT extract(epoch FROM now())::bigint % 3600")
	[ "$s" -ge 5 ] && [ "$s" -le 3560 ] && break
	sleep 1
done
# clear_slot: forget this hour's cleanup run so that the next one runs.
clear_slot() {
	t_sql "DELETE FROM periodic_runs WHERE job = 'cleanup' AND slot =
	    to_timestamp(floor(extract(epoch FROM now()) / 3600) * 3600)" \
	    >/dev/null
}
t_sql "UPDATE webhook_events SET expires_at = now() - interval '1 minute'
    WHERE org_id = '$ORG' AND event_id = 'evt_storm_$SFX'" >/dev/null
clear_slot
bulwark-cleanup -c "$CFG" >"$TMP/cleanup0.log" 2>&1
t_eq "purge: bulwark-cleanup removed the expired event" 0 "$(t_sql "SELECT
    count(*) FROM webhook_events WHERE org_id = '$ORG'
    AND event_id = 'evt_storm_$SFX'")"
r=$(send stripe "$ST_A" - "$ORG" --body "$(cat "$TMP/storm.json")")
t_match "purge then resend: answered 200" '^0 200 ' "$r"
t_eq "purge then resend: no second grant (the anchor)" 7 "$(balance storm-user)"
t_eq "purge then resend: still one grant transfer" 1 "$(t_sql "SELECT
    count(*) FROM credit_transfers WHERE org_id = '$ORG'
    AND anchor = 'stripe:pi_storm_$SFX'")"

# --- two cleanup runs at the same time never delete twice ------------------

t_sql "INSERT INTO webhook_events (org_id, provider, event_id, expires_at)
    SELECT '$ORG', 'stripe', 'evt_old_${SFX}_' || g, now() - interval '1 day'
    FROM generate_series(1, 2500) g" >/dev/null
expired=$(t_sql "SELECT count(*) FROM webhook_events WHERE expires_at < now()")
clear_slot
bulwark-cleanup -c "$CFG" >"$TMP/cleanup1.log" 2>&1 &
c1=$!
bulwark-cleanup -c "$CFG" >"$TMP/cleanup2.log" 2>&1 &
c2=$!
rc1=0 rc2=0
wait "$c1" || rc1=$?
wait "$c2" || rc2=$?
t_eq "cleanup: both concurrent runs exit 0" "0 0" "$rc1 $rc2"
passes=$(cat "$TMP/cleanup1.log" "$TMP/cleanup2.log" | grep -c '"cleanup pass"')
t_eq "cleanup: exactly one of two concurrent runs purged" 1 "$passes"
purged=$(cat "$TMP/cleanup1.log" "$TMP/cleanup2.log" |
    jq -r 'select(.msg == "cleanup pass") | .webhook_events_purged' |
    awk '{ s += $1 } END { print s + 0 }')
t_eq "cleanup: deletions counted once (= the expired rows before)" \
    "$expired" "$purged"
t_ge "cleanup: several batches were needed" 2500 "$purged"
t_eq "cleanup: no expired row is left" 0 "$(t_sql "SELECT count(*) FROM
    webhook_events WHERE org_id = '$ORG' AND expires_at < now()")"
t_eq "cleanup: the slot is recorded ok once" "ok" "$(t_sql "SELECT
    string_agg(state, ',') FROM periodic_runs WHERE job = 'cleanup' AND slot =
    to_timestamp(floor(extract(epoch FROM now()) / 3600) * 3600)")"

# --- stale timestamps, bad signatures, unknown orgs ------------------------

ev=$(stripe_pi "evt_stale_$SFX" "pi_stale_$SFX" stale-user 1)
r=$(send stripe "$ST_A" - "$ORG" --body "$ev" --ts-offset -400)
t_match "stale Stripe timestamp: 400 STALE_EVENT" '^0 400 .*"STALE_EVENT"' "$r"
r=$(send stripe "$ST_A" - "$ORG" --body "$ev" --ts-offset 400)
t_match "future Stripe timestamp: 400 STALE_EVENT" '^0 400 .*"STALE_EVENT"' "$r"
t_eq "stale events grant nothing and are not recorded" "0 0" \
    "$(balance stale-user) $(t_sql "SELECT count(*) FROM webhook_events
    WHERE org_id = '$ORG' AND event_id = 'evt_stale_$SFX'")"
# norm: the error body without its per-response ids.
norm() {
	sed 's/^[0-9]* //' | sed 's/"error_id":"[^"]*"/"error_id":""/;
	    s/"request_id":"[^"]*"/"request_id":""/'
}
bad=$(send stripe "$ST_A" - "$ORG" --body "$ev" --bad | norm)
unk=$(send stripe "$ST_A" - 0b6f2f0e-6a55-4c4f-8f55-6a1f3d9e0c11 \
    --body "$ev" | norm)
mal=$(send stripe "$ST_A" - not-a-uuid --body "$ev" | norm)
wrong=$(send stripe "whsec_wrong" - "$ORG" --body "$ev" | norm)
t_match "bad signature: 400 INVALID_SIGNATURE" '^400 .*"INVALID_SIGNATURE"' "$bad"
t_eq "unknown org answers exactly like a bad signature" "$bad" "$unk"
t_eq "malformed org id answers exactly like a bad signature" "$bad" "$mal"
t_eq "wrong secret answers exactly like a bad signature" "$bad" "$wrong"
path=/api/v1/webhooks/stripe/$ORG
miss=$(python3 "$BW_TOP/tests/lib/fcgi_req.py" --socket "$BW_FCGI_SOCKET" \
    --method POST --path "$path" --body "$ev" | norm)
t_eq "missing signature answers exactly like a bad signature" "$bad" "$miss"
r=$(python3 "$BW_TOP/tests/lib/fcgi_req.py" --socket "$BW_FCGI_SOCKET" \
    --method POST --path "/api/v1/webhooks/paypal/$ORG" --body "$ev")
t_match "unknown provider: 404" '^0 404 ' "$r"
t_eq "refused events grant nothing" 0 "$(balance stale-user)"

# --- secret rotation --------------------------------------------------------

ctl webhook-secret set --org "$ORG" --provider stripe --secret "$ST_B" \
    >"$TMP/rot.out"
t_eq "rotation: two secrets active" 2 "$(jq -r .active "$TMP/rot.out")"
ra=$(send stripe "$ST_A" - "$ORG" --body "$(stripe_pi "evt_rotA_$SFX" \
    "pi_rotA_$SFX" rot-user 1)")
rb=$(send stripe "$ST_B" - "$ORG" --body "$(stripe_pi "evt_rotB_$SFX" \
    "pi_rotB_$SFX" rot-user 1)")
t_match "rotation: the old secret still works" '"processed"' "$ra"
t_match "rotation: the new secret works" '"processed"' "$rb"
ctl webhook-secret set --org "$ORG" --provider stripe --secret "$ST_C" \
    >"$TMP/rot2.out"
t_eq "rotation: a third secret retires the oldest" 2 \
    "$(jq -r .active "$TMP/rot2.out")"
ra=$(send stripe "$ST_A" - "$ORG" --body "$(stripe_pi "evt_rotA2_$SFX" \
    "pi_rotA2_$SFX" rot-user 1)")
rc=$(send stripe "$ST_C" - "$ORG" --body "$(stripe_pi "evt_rotC_$SFX" \
    "pi_rotC_$SFX" rot-user 1)")
t_match "rotation: the retired secret is refused" '"INVALID_SIGNATURE"' "$ra"
t_match "rotation: the newest secret works" '"processed"' "$rc"
t_eq "rotation: three grants" 3 "$(balance rot-user)"
ST=$ST_C

# --- Square with the registered notification URL ---------------------------

sq() {
	printf '{"merchant_id":"M1","type":"payment.updated","event_id":"%s",' "$1"
	printf '"created_at":"2024-01-01T00:00:00Z","data":{"type":"payment",'
	printf '"id":"%s","object":{"payment":{"id":"%s","status":"%s",' "$2" "$2" "$3"
	printf '"metadata":{"user_id":"sq-user","credits":"4"}}}}}'
}
r=$(send square "$SQ_KEY" "$SQ_URL" "$ORG" --body "$(sq "sqe_a_$SFX" \
    "sqp_$SFX" APPROVED)")
t_match "square: APPROVED is ignored" '"ignored"' "$r"
r=$(send square "$SQ_KEY" "https://elsewhere.example/hook" "$ORG" \
    --body "$(sq "sqe_b_$SFX" "sqp_$SFX" COMPLETED)")
t_match "square: signed over another URL is refused" '^0 400 .*INVALID_SIGNATURE' "$r"
send square "$SQ_KEY" "$SQ_URL" "$ORG" --body "$(sq "sqe_b_$SFX" "sqp_$SFX" \
    COMPLETED)" --count 10 --concurrency 10 >"$TMP/sq.out"
t_eq "square: COMPLETED with the registered URL, 10 deliveries, processed once" \
    "1 9" "$(count "$TMP/sq.out" processed) $(count "$TMP/sq.out" duplicate)"
t_eq "square: credits granted once" 4 "$(balance sq-user)"

# --- LINE: one chat turn however often it is redelivered --------------------

LID="01LINE${SFX}X"
line=$(printf '{"destination":"Uxxx","events":[{"type":"message","mode":"active","timestamp":1700000000000,"source":{"type":"user","userId":"Uline%s"},"webhookEventId":"%s","deliveryContext":{"isRedelivery":false},"replyToken":"rt%s","message":{"id":"1","type":"text","text":"hello there"}}]}' "$SFX" "$LID" "$SFX")
send line "$LN_SEC" - "$ORG" --body "$line" --count 20 --concurrency 20 \
    >"$TMP/line.out"
t_eq "line: 20 concurrent redeliveries, one processed" "1 19" \
    "$(count "$TMP/line.out" processed) $(count "$TMP/line.out" duplicate)"
t_eq "line: exactly one chat_line job" 1 "$(t_sql "SELECT count(*) FROM jobs
    WHERE queue = 'chat_line' AND job_key = 'line:$ORG:$LID'")"
t_eq "line: the job carries the turn" "Uline$SFX|rt$SFX|hello there|$LID|$ORG" \
    "$(t_sql "SELECT payload->>'user_id', payload->>'reply_token',
    payload->>'text', payload->>'event_id', payload->>'org_id' FROM jobs
    WHERE queue = 'chat_line' AND job_key = 'line:$ORG:$LID'")"
r=$(send line "$LN_SEC" - "$ORG" --body '{"destination":"U","events":[]}')
t_match "line: the verification request (no events) is ignored" '"ignored"' "$r"
r=$(send line "$LN_SEC" - "$ORG" --body "$line" --bad)
t_match "line: a bad x-line-signature is refused" 'INVALID_SIGNATURE' "$r"

# --- refunds ----------------------------------------------------------------

# charge_refunded ID CHARGE PI AMOUNT REFUNDED [CURRENCY [REFUND_ID...]]: a
# charge.refunded event as Stripe sends it: the Charge after its refunds,
# amount_refunded cumulative over them; with refund ids, the refunds list
# (expanded) newest first, as the charge's refunds.data.
charge_refunded() {
	local id=$1 ch=$2 pi=$3 amt=$4 cum=$5 cur=${6:-usd} full=false sep="" r
	shift 5
	[ $# -gt 0 ] && shift
	[ "$cum" -ge "$amt" ] && full=true
	printf '{"id":"%s","object":"event","api_version":"2024-06-20",' "$id"
	printf '"created":1721145600,"data":{"object":{"id":"%s",' "$ch"
	printf '"object":"charge","amount":%s,"amount_captured":%s,' "$amt" "$amt"
	printf '"amount_refunded":%s,"captured":true,"currency":"%s",' "$cum" "$cur"
	printf '"paid":true,"payment_intent":"%s","refunded":%s,' "$pi" "$full"
	if [ $# -gt 0 ]; then
		printf '"refunds":{"object":"list","data":['
		for r in "$@"; do
			printf '%s{"id":"%s","object":"refund","charge":"%s",' "$sep" "$r" "$ch"
			printf '"currency":"%s","payment_intent":"%s",' "$cur" "$pi"
			printf '"status":"succeeded"}'
			sep=,
		done
		printf '],"has_more":false,"total_count":%s,' "$#"
		printf '"url":"/v1/charges/%s/refunds"},' "$ch"
	fi
	printf '"status":"succeeded"}},"livemode":false,"pending_webhooks":1,'
	printf '"request":{"id":null,"idempotency_key":null},'
	printf '"type":"charge.refunded"}'
}
# sq_pay EVENT PAYMENT USER CREDITS AMOUNT: a Square payment.updated
# COMPLETED of AMOUNT cents (USD).
sq_pay() {
	printf '{"merchant_id":"M1","type":"payment.updated","event_id":"%s",' "$1"
	printf '"created_at":"2024-01-01T00:00:00Z","data":{"type":"payment",'
	printf '"id":"%s","object":{"payment":{"id":"%s",' "$2" "$2"
	printf '"amount_money":{"amount":%s,"currency":"USD"},' "$5"
	printf '"total_money":{"amount":%s,"currency":"USD"},' "$5"
	printf '"status":"COMPLETED","source_type":"CARD","version":3,'
	printf '"metadata":{"user_id":"%s","credits":"%s"}}}}}' "$3" "$4"
}
# sq_refund EVENT TYPE REFUND PAYMENT AMOUNT CURRENCY STATUS: a Square
# refund.created / refund.updated event.
sq_refund() {
	printf '{"merchant_id":"M1","type":"%s","event_id":"%s",' "$2" "$1"
	printf '"created_at":"2024-01-02T00:00:00Z","data":{"type":"refund",'
	printf '"id":"%s","object":{"refund":{"id":"%s",' "$3" "$3"
	printf '"status":"%s","amount_money":{"amount":%s,' "$7" "$5"
	printf '"currency":"%s"},"payment_id":"%s","location_id":"L1",' "$6" "$4"
	printf '"reason":"partial","created_at":"2024-01-02T00:00:00Z",'
	printf '"updated_at":"2024-01-02T00:00:01Z","version":2}}}}'
}
# taken GRANT_ANCHOR: credits taken back from that grant so far (refund
# transfers plus debts).
taken() {
	t_sql "SELECT (coalesce((SELECT sum(amount) FROM credit_transfers
	    WHERE org_id = '$ORG' AND kind = 'refund' AND reverses = '$1'), 0)
	    + coalesce((SELECT sum(amount) FROM credit_debts
	    WHERE org_id = '$ORG' AND grant_anchor = '$1'), 0))::bigint"
}
# ledger: "rc=N" of bulwarkctl ledger check for the org.
ledger() {
	ctl ledger check --org "$ORG" >"$TMP/ledger.out"
	echo "rc=$?"
}

# A full refund after a checkout grant; the same refunded state again.
before=$(balance co-user)
r=$(send stripe "$ST" - "$ORG" --body "$(charge_refunded "evt_ref_$SFX" \
    "ch_co_$SFX" "pi_co_$SFX" 1000 1000)")
t_match "refund after a grant: processed" '"processed"' "$r"
t_eq "refund after a grant: the credits are taken back" "3 0" \
    "$before $(balance co-user)"
r=$(send stripe "$ST" - "$ORG" --body "$(charge_refunded "evt_ref2_$SFX" \
    "ch_co_$SFX" "pi_co_$SFX" 1000 1000)")
t_match "the same charge refunded again changes nothing" '"duplicate"' "$r"
t_eq "refund: the org's balances still sum to 0" 0 "$(t_sql "SELECT
    sum(balance) FROM credit_accounts WHERE org_id = '$ORG'")"

# Stripe partial refunds: 100 credits for 10.00, then 1.00 and 2.00 back
# (amount_refunded 100, then 300: cumulative over the charge's refunds).
PI=pi_pr_$SFX
CH=ch_pr_$SFX
r=$(send stripe "$ST" - "$ORG" --body "$(stripe_pi "evt_prg_$SFX" "$PI" \
    pr-user 100 1000)")
t_eq "stripe partial: 100 credits granted for 10.00" 100 "$(balance pr-user)"
R1=$(charge_refunded "evt_pr1_$SFX" "$CH" "$PI" 1000 100 usd "re_a_$SFX")
R2=$(charge_refunded "evt_pr2_$SFX" "$CH" "$PI" 1000 300)
r=$(send stripe "$ST" - "$ORG" --body "$R1")
t_match "stripe partial: refund of 1.00 is processed" '"processed"' "$r"
t_eq "stripe partial: 1.00 of 10.00 takes back 10 credits (90 left)" 90 \
    "$(balance pr-user)"
r=$(send stripe "$ST" - "$ORG" --body "$R2")
t_match "stripe partial: a second refund (2.00, cumulative 3.00) is processed, not a duplicate" \
    '"processed"' "$r"
t_eq "stripe partial: 1.00 then 2.00 of 10.00 leave 70 credits" 70 \
    "$(balance pr-user)"
r1=$(send stripe "$ST" - "$ORG" --body "$R1")
r2=$(send stripe "$ST" - "$ORG" --body "$R2")
t_match "stripe partial: replaying both events answers duplicate twice" \
    '"duplicate".*"duplicate"' "$(echo $r1 $r2)"
# The same refunded states under new event ids (a resend after the purge,
# or an older event arriving late): nothing moves either.
r1=$(send stripe "$ST" - "$ORG" --body "$(charge_refunded "evt_pr1b_$SFX" \
    "$CH" "$PI" 1000 100)")
r2=$(send stripe "$ST" - "$ORG" --body "$(charge_refunded "evt_pr2b_$SFX" \
    "$CH" "$PI" 1000 300 usd "re_b_$SFX" "re_a_$SFX")")
t_match "stripe partial: the same cumulative amounts under new event ids are duplicates" \
    '"duplicate".*"duplicate"' "$(echo $r1 $r2)"
t_eq "stripe partial: replays change nothing: 70 credits, 30 taken back, ledger check clean" \
    "70 30 rc=0" "$(balance pr-user) $(taken "stripe:$PI") $(ledger)"

# Square partial refunds: two refunds of 1.00 and 2.00 (distinct refund ids).
SP=sqp_pr_$SFX
r=$(send square "$SQ_KEY" "$SQ_URL" "$ORG" --body "$(sq_pay "sqe_prg_$SFX" \
    "$SP" sqpr-user 100 1000)")
t_eq "square partial: 100 credits granted for 10.00" 100 "$(balance sqpr-user)"
r=$(send square "$SQ_KEY" "$SQ_URL" "$ORG" --body "$(sq_refund \
    "sqe_pr1c_$SFX" refund.created "${SP}_r1" "$SP" 100 USD PENDING)")
t_match "square partial: refund.created PENDING is ignored" '"ignored"' "$r"
S1=$(sq_refund "sqe_pr1_$SFX" refund.updated "${SP}_r1" "$SP" 100 USD COMPLETED)
S2=$(sq_refund "sqe_pr2_$SFX" refund.updated "${SP}_r2" "$SP" 200 USD COMPLETED)
r=$(send square "$SQ_KEY" "$SQ_URL" "$ORG" --body "$S1")
t_match "square partial: refund of 1.00 COMPLETED is processed" '"processed"' "$r"
t_eq "square partial: 1.00 of 10.00 takes back 10 credits (90 left)" 90 \
    "$(balance sqpr-user)"
r=$(send square "$SQ_KEY" "$SQ_URL" "$ORG" --body "$S2")
t_match "square partial: a second refund (2.00, another refund id) is processed, not a duplicate" \
    '"processed"' "$r"
t_eq "square partial: 1.00 then 2.00 of 10.00 leave 70 credits" 70 \
    "$(balance sqpr-user)"
r1=$(send square "$SQ_KEY" "$SQ_URL" "$ORG" --body "$S1")
r2=$(send square "$SQ_KEY" "$SQ_URL" "$ORG" --body "$S2")
r3=$(send square "$SQ_KEY" "$SQ_URL" "$ORG" --body "$(sq_refund \
    "sqe_pr1x_$SFX" refund.created "${SP}_r1" "$SP" 100 USD COMPLETED)")
t_match "square partial: replays of both, and the first refund under a new event id, are duplicates" \
    '"duplicate".*"duplicate".*"duplicate"' "$(echo $r1 $r2 $r3)"
t_eq "square partial: replays change nothing: 70 credits, 30 taken back, ledger check clean" \
    "70 30 rc=0" "$(balance sqpr-user) $(taken "square:$SP") $(ledger)"

# A refund in another currency than the payment's: not applied.
r=$(send square "$SQ_KEY" "$SQ_URL" "$ORG" --body "$(sq_refund \
    "sqe_pr3_$SFX" refund.updated "${SP}_r3" "$SP" 100 JPY COMPLETED)")
t_match "square partial: a refund in another currency is ignored" '"ignored"' "$r"
t_eq "square partial: a refund in another currency takes nothing back" 70 \
    "$(balance sqpr-user)"
# Refunds past the payment: what is taken back stops at the grant.
r=$(send square "$SQ_KEY" "$SQ_URL" "$ORG" --body "$(sq_refund \
    "sqe_pr4_$SFX" refund.updated "${SP}_r4" "$SP" 900 USD COMPLETED)")
t_match "square partial: refunds past the payment (12.00 of 10.00) are processed" \
    '"processed"' "$r"
t_eq "square partial: refunds past the payment take back the grant, no more (0 left, 100 taken back)" \
    "0 100" "$(balance sqpr-user) $(taken "square:$SP")"

# Credits spent (here: held by a reservation) before two partial refunds:
# what is not available becomes one debt per refund, nothing goes negative.
SD=sqp_debt_$SFX
send square "$SQ_KEY" "$SQ_URL" "$ORG" --body "$(sq_pay "sqe_dg_$SFX" "$SD" \
    debt-user 100 1000)" >/dev/null
t_sql "WITH a AS (UPDATE credit_accounts SET reserved = reserved + 95
    WHERE org_id = '$ORG' AND kind = 'user' AND name = 'debt-user'
    RETURNING id)
    INSERT INTO credit_reservations (org_id, reservation_key, account_id,
    user_id, amount, expires_at) SELECT '$ORG', 'debt-$SFX', id,
    'debt-user', 95, now() + interval '1 day' FROM a" >/dev/null
r1=$(send square "$SQ_KEY" "$SQ_URL" "$ORG" --body "$(sq_refund \
    "sqe_d1_$SFX" refund.updated "${SD}_r1" "$SD" 500 USD COMPLETED)")
r2=$(send square "$SQ_KEY" "$SQ_URL" "$ORG" --body "$(sq_refund \
    "sqe_d2_$SFX" refund.updated "${SD}_r2" "$SD" 200 USD COMPLETED)")
t_match "square debt: two partial refunds of spent credits are processed" \
    '"processed".*"processed"' "$(echo $r1 $r2)"
t_eq "square debt: 5 taken back, 65 owed in two debts, available never negative" \
    "95 5 65 2 rc=0" "$(balance debt-user) $(t_sql "SELECT coalesce(sum(amount), 0)
    FROM credit_transfers WHERE org_id = '$ORG' AND kind = 'refund'
    AND reverses = 'square:$SD'") $(t_sql "SELECT sum(amount) || ' ' || count(*)
    FROM credit_debts WHERE org_id = '$ORG' AND grant_anchor = 'square:$SD'") $(ledger)"

# Refunds that arrive before their payment's grant: remembered, and the
# grant, when it comes, is applied and then reduced by them.
r=$(send stripe "$ST" - "$ORG" --body "$(charge_refunded "evt_eref_$SFX" \
    "ch_early_$SFX" "pi_early_$SFX" 1000 1000)")
t_match "an early full refund is ignored (remembered)" '"ignored"' "$r"
r2=$(send stripe "$ST" - "$ORG" --body "$(stripe_pi "evt_early_$SFX" \
    "pi_early_$SFX" early-user 5)")
t_eq "a grant after its full refund nets to nothing" 0 "$(balance early-user)"
# Two partial refunds of one charge, late event first, before the grant.
send stripe "$ST" - "$ORG" --body "$(charge_refunded "evt_e2_$SFX" \
    "ch_e2_$SFX" "pi_e2_$SFX" 1000 300)" >/dev/null
send stripe "$ST" - "$ORG" --body "$(charge_refunded "evt_e1_$SFX" \
    "ch_e2_$SFX" "pi_e2_$SFX" 1000 100)" >/dev/null
r=$(send stripe "$ST" - "$ORG" --body "$(stripe_pi "evt_e2g_$SFX" \
    "pi_e2_$SFX" early2-user 100)")
t_eq "stripe: a grant after two early partial refunds (3.00 in all, newest first) keeps 70 credits" \
    "processed 70 30 rc=0" "$(echo "$r" | grep -o '"processed"' | tr -d '"') $(balance early2-user) $(taken "stripe:pi_e2_$SFX") $(ledger)"
t_eq "stripe: that grant's event is stored once, processed, its refunds applied" \
    "1 processed 2" "$(t_sql "SELECT count(*) || ' ' || min(outcome) || ' '
    || (SELECT count(*) FROM credit_refunds WHERE org_id = '$ORG'
    AND grant_anchor = 'stripe:pi_e2_$SFX' AND state = 'applied')
    FROM webhook_events WHERE org_id = '$ORG'
    AND event_id = 'evt_e2g_$SFX'")"
r=$(send square "$SQ_KEY" "$SQ_URL" "$ORG" --body "$(sq_refund \
    "sqe_e1_$SFX" refund.updated "sqp_early_${SFX}_r1" "sqp_early_$SFX" 250 \
    USD COMPLETED)")
t_match "square: an early partial refund is ignored (remembered)" '"ignored"' "$r"
r=$(send square "$SQ_KEY" "$SQ_URL" "$ORG" --body "$(sq_pay "sqe_eg_$SFX" \
    "sqp_early_$SFX" sqearly-user 100 1000)")
t_match "square: the grant after an early partial refund is processed" \
    '"processed"' "$r"
t_eq "square: grant after an early refund of 2.50 of 10.00: 75 credits" 75 \
    "$(balance sqearly-user)"
r=$(send square "$SQ_KEY" "$SQ_URL" "$ORG" --body "$(sq_refund \
    "sqe_e1_$SFX" refund.updated "sqp_early_${SFX}_r1" "sqp_early_$SFX" 250 \
    USD COMPLETED)")
t_eq "square: the early refund replayed after the grant changes nothing" \
    "75 rc=0" "$(balance sqearly-user) $(ledger)"
# A refund remembered before this change (webhook_early_refunds, amount
# unknown) still refuses its grant.
t_sql "INSERT INTO webhook_early_refunds (org_id, grant_anchor, refund_anchor)
    VALUES ('$ORG', 'stripe:pi_legacy_$SFX', 'stripe:refund:ch_legacy_$SFX')" \
    >/dev/null
r=$(send stripe "$ST" - "$ORG" --body "$(stripe_pi "evt_legacy_$SFX" \
    "pi_legacy_$SFX" legacy-user 5)")
t_eq "a grant after a refund remembered before partial refunds is not applied" \
    "ignored 0" "$(echo "$r" | grep -o '"ignored"' | tr -d '"') $(balance legacy-user)"
t_eq "that grant's event is stored as ignored" ignored "$(t_sql "SELECT
    outcome FROM webhook_events WHERE org_id = '$ORG'
    AND event_id = 'evt_legacy_$SFX'")"

# --- SMS delivery reports: newest wins -------------------------------------

smsb() {
	printf '{"type":"message.status","timestamp":"%s","data":{"message_id":"%s","status":"%s"}}' "$1" "$2" "$3"
}
MID="sm_$SFX"
r1=$(send sms "$SMS_SEC" - "$ORG" --id "msg_d_$SFX" \
    --body "$(smsb 2024-05-01T10:00:05.250Z "$MID" delivered)")
r2=$(send sms "$SMS_SEC" - "$ORG" --id "msg_s_$SFX" \
    --body "$(smsb 2024-05-01T10:00:01Z "$MID" sent)")
t_match "sms: delivered report processed" '"processed"' "$r1"
t_match "sms: the late, older sent report is accepted (200)" '^0 200 ' "$r2"
t_eq "sms: an older status never overwrites a newer one" delivered \
    "$(t_sql "SELECT status FROM sms_deliveries WHERE org_id = '$ORG'
    AND message_id = '$MID'")"
r3=$(send sms "$SMS_SEC" - "$ORG" --id "msg_f_$SFX" \
    --body "$(smsb 2024-05-01T12:00:00+01:00 "$MID" failed)")
t_eq "sms: a newer status does replace it" "failed" "$(t_sql "SELECT status
    FROM sms_deliveries WHERE org_id = '$ORG' AND message_id = '$MID'")"
r=$(send sms "$SMS_SEC" - "$ORG" --id "msg_x_$SFX" --ts-offset -400 \
    --body "$(smsb 2024-05-01T13:00:00Z "$MID" delivered)")
t_match "sms: a stale webhook-timestamp is 400 STALE_EVENT" 'STALE_EVENT' "$r"

# --- PostgreSQL stopped during a delivery -----------------------------------

DEV=$(stripe_pi "evt_down_$SFX" "pi_down_$SFX" down-user 9)
(. "$BW_TOP/dev/lib/stack.sh"; stack_load "$BW_RUN";
    stack_stop_one postgres) >"$TMP/pg.log" 2>&1
PG_STOPPED=1
send stripe "$ST" - "$ORG" --body "$DEV" --count 3 --concurrency 1 \
    >"$TMP/down.out"
t_eq "postgres down: every master answers 503" 3 \
    "$(count "$TMP/down.out" '^[0-9]* 503 .*DEPENDENCY_UNAVAILABLE')"
(. "$BW_TOP/dev/lib/stack.sh"; stack_load "$BW_RUN";
    stack_start_one postgres) >>"$TMP/pg.log" 2>&1
PG_STOPPED=0
for _ in $(seq 1 100); do
	t_sql "SELECT 1" >/dev/null 2>&1 && break
	sleep 0.2
done
t_eq "postgres down: no partial effect (no event row, no grant)" "0 0" \
    "$(t_sql "SELECT count(*) FROM webhook_events WHERE org_id = '$ORG'
    AND event_id = 'evt_down_$SFX'") $(t_sql "SELECT count(*) FROM
    credit_transfers WHERE org_id = '$ORG' AND anchor = 'stripe:pi_down_$SFX'")"
# The provider retries (each master, a few times) until it gets a 2xx.
: >"$TMP/retry.out"
for _ in $(seq 1 10); do
	send stripe "$ST" - "$ORG" --body "$DEV" --count 3 --concurrency 3 \
	    >>"$TMP/retry.out"
	grep -q ' 200 ' "$TMP/retry.out" && break
	sleep 0.5
done
send stripe "$ST" - "$ORG" --body "$DEV" --count 3 --concurrency 3 \
    >>"$TMP/retry.out"
t_eq "postgres back: the retry is processed exactly once" 1 \
    "$(count "$TMP/retry.out" '"processed"')"
t_eq "postgres back: credits granted once" 9 "$(balance down-user)"

t_done
