#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The credit ledger the way a client calls it: through nginx over HTTPS
# (issue 10; tests/integration/credits.sh speaks FastCGI to the masters).
# Balance reads; a booking with an Idempotency-Key sent 20 times at once
# (one debit, one booking, the others 409 IDEMPOTENCY_KEY_IN_USE or the
# same answer, then a byte-identical replay); 20 concurrent bookings of
# distinct keys for 5 credits (5 x 201, 15 x 409 INSUFFICIENT_CREDITS);
# reservations reserve / same key / 20 concurrent same key / commit and
# release with {} / twice -> 409; another org's ids 404 and its own empty
# account; the same Idempotency-Key value in two orgs kept apart; the
# ledger check clean after it all. Bounded: about 150 requests.
. "${BW_TOP:?}/tests/lib/common.sh"
t_need BW_CONFIG BULWARK_URL DATABASE_URL

URL=$BULWARK_URL
SFX="$$-$RANDOM"
CURL=(curl -sk --max-time 30)
OUT=$TMP/out
t_on_exit t_kill_jobs

mkorg() {
	ORG=$(t_ctl org create --name "e2e-credits-$1-$SFX" | jq -r .id)
	KEY=$(t_ctl key create --org "$ORG" --role member | jq -r .key)
}
mkorg a
AORG=$ORG AKEY=$KEY
mkorg b
BKEY=$KEY
if [ -z "$AKEY" ] || [ "$AKEY" = null ] || [ -z "$BKEY" ] || [ "$BKEY" = null ]; then
	t_fail "credits e2e: set-up" "could not create orgs and keys"
	t_done
fi
grant() {
	t_ctl credits grant --org "$AORG" --user "$1" --amount "$2" \
	    --anchor "e2e:$1:$SFX" >/dev/null
}

# call METHOD PATH KEY [BODY [EXTRA CURL ARGS...]]: the status; the body in
# $OUT, the headers in $OUT.h.
call() {
	local m=$1 p=$2 k=$3 a
	shift 3
	a=(-X "$m" -H "Authorization: Bearer $k" -D "$OUT.h")
	if [ $# -ge 1 ]; then
		a+=(-H "Content-Type: application/json" --data-binary "$1")
		shift
	fi
	"${CURL[@]}" -o "$OUT" -w '%{http_code}' "${a[@]}" "$@" "$URL$p"
}
code() { jq -r '.error.error_code // empty' "${1:-$OUT}" 2>/dev/null; }
hdr() { tr -d '\r' <"$OUT.h" | awk -v n="$(echo "$1" | tr 'A-Z' 'a-z')" \
    'tolower($0) ~ "^" n ":" { sub(/^[^:]*: */, ""); print; exit }'; }
# par N DIR ARGS...: N concurrent `call ARGS...`; DIR/i.code and DIR/i.body.
par() {
	local n=$1 d=$2 i
	shift 2
	mkdir -p "$d"
	for i in $(seq 1 "$n"); do
		(OUT=$d/$i.body; call "$@" >"$d/$i.code") &
	done
	wait
}
# tally DIR: "201:x 409:y ..." sorted by status.
tally() {
	local f
	for f in "$1"/*.code; do cat "$f"; echo; done | sort | uniq -c |
	    awk '{ printf "%s%s:%s", s, $2, $1; s=" " }'
}
acct() {
	t_sql "SELECT balance || ' ' || reserved FROM credit_accounts
	    WHERE org_id = '$AORG' AND kind = 'user' AND name = '$1'"
}

# --- balance ---------------------------------------------------------------
grant u1 10
t_eq "GET /api/v1/accounts/u1 through nginx: 200" 200 \
    "$(call GET /api/v1/accounts/u1 "$AKEY")"
t_eq "  balance 10, reserved 0, available 10" "u1 10 0 10" \
    "$(jq -r '"\(.user_id) \(.balance) \(.reserved) \(.available)"' "$OUT")"
t_match "  X-Request-ID on the answer" '^.+$' "$(hdr X-Request-ID)"
t_eq "no API key: 401" 401 "$(call GET /api/v1/accounts/u1 none)"
t_eq "another org sees its own (empty) account, not ours" "200 0 0" \
    "$(call GET /api/v1/accounts/u1 "$BKEY") $(jq -r '"\(.balance) \(.available)"' "$OUT")"

# --- booking with an Idempotency-Key, 20 at once ---------------------------
IK=$(cat /proc/sys/kernel/random/uuid)
BB='{"user_id":"u1","class_id":"spin-6am","credits":2}'
t0=$(date +%s%N)
par 20 "$TMP/ik" POST /api/v1/bookings "$AKEY" "$BB" \
    -H "Idempotency-Key: \"$IK\""
ms=$((($(date +%s%N) - t0) / 1000000))
n201=$(grep -lx 201 "$TMP"/ik/*.code | wc -l)
n409=0
for f in $(grep -lx 409 "$TMP"/ik/*.code); do
	[ "$(code "${f%.code}.body")" = IDEMPOTENCY_KEY_IN_USE ] &&
	    n409=$((n409 + 1))
done
echo "# 20 concurrent same-key bookings: $(tally "$TMP/ik") ($(grep -li '^idempotent-replayed: *true' "$TMP"/ik/*.h | wc -l) replayed) in $ms ms"
t_eq "20 concurrent bookings with one Idempotency-Key: each 201 or 409 IDEMPOTENCY_KEY_IN_USE" \
    20 $((n201 + n409))
t_ge "  at least one 201" 1 "$n201"
t_eq "  exactly one 201 ran, the others were replays (Idempotent-Replayed)" 1 \
    "$(for f in $(grep -lx 201 "$TMP"/ik/*.code); do
	grep -qi '^idempotent-replayed: *true' "${f%.code}.body.h" || echo "$f"
    done | wc -l)"
t_eq "  the 201s name one booking" 1 "$(for f in $(grep -lx 201 "$TMP"/ik/*.code); do
	jq -r .booking_id "${f%.code}.body"; done | sort -u | wc -l)"
t_eq "  one debit: balance 8" "8 0" "$(acct u1)"
t_eq "  one booking row" 1 "$(t_sql "SELECT count(*) FROM bookings
    WHERE org_id = '$AORG' AND user_id = 'u1'")"
BID=$(for f in $(grep -lx 201 "$TMP"/ik/*.code); do
	jq -r .booking_id "${f%.code}.body"; done | head -n 1)
first=$(grep -lx 201 "$TMP"/ik/*.code | head -n 1)
t_eq "the retry with the key: 201, Idempotent-Replayed: true" "201 true" \
    "$(call POST /api/v1/bookings "$AKEY" "$BB" -H "Idempotency-Key: \"$IK\"") $(hdr Idempotent-Replayed)"
t_eq "  the same booking, byte for byte" "$(cat "${first%.code}.body")" \
    "$(cat "$OUT")"
t_eq "  the retry debits nothing" "8 0" "$(acct u1)"
t_eq "the key with another body: 422 IDEMPOTENCY_KEY_REUSED" \
    "422 IDEMPOTENCY_KEY_REUSED" "$(call POST /api/v1/bookings "$AKEY" \
    '{"user_id":"u1","class_id":"spin-7am","credits":2}' \
    -H "Idempotency-Key: \"$IK\"") $(code)"
t_eq "the same key value in another org is another key (runs: 409 INSUFFICIENT_CREDITS there)" \
    "409 INSUFFICIENT_CREDITS" "$(call POST /api/v1/bookings "$BKEY" "$BB" \
    -H "Idempotency-Key: \"$IK\"") $(code)"
t_eq "  and its answer is not org A's booking" "" "$(jq -r '.booking_id // empty' "$OUT")"
t_eq "a bare (unquoted) key names the same key: replayed" "201 $BID" \
    "$(call POST /api/v1/bookings "$AKEY" "$BB" -H "Idempotency-Key: $IK") $(jq -r .booking_id "$OUT")"

# --- double click: 20 distinct bookings of 1 credit for 5 credits ----------
grant dc 5
t0=$(date +%s%N)
mkdir -p "$TMP/dc"
for i in $(seq 1 20); do
	(OUT=$TMP/dc/$i.body; call POST /api/v1/bookings "$AKEY" \
	    '{"user_id":"dc","class_id":"c'"$i"'","credits":1}' \
	    -H "Idempotency-Key: dc-$SFX-$i" >"$TMP/dc/$i.code") &
done
wait
ms=$((($(date +%s%N) - t0) / 1000000))
echo "# 20 concurrent bookings for 5 credits: $(tally "$TMP/dc") in $ms ms"
ins=0
for f in $(grep -lx 409 "$TMP"/dc/*.code); do
	[ "$(code "${f%.code}.body")" = INSUFFICIENT_CREDITS ] && ins=$((ins + 1))
done
t_eq "20 concurrent bookings for 5 credits: 5 x 201" 5 \
    "$(grep -lx 201 "$TMP"/dc/*.code | wc -l)"
t_eq "  15 x 409 INSUFFICIENT_CREDITS" 15 "$ins"
t_eq "  balance 0, never negative" "0 0" "$(acct dc)"
t_eq "insufficient credits: 409 INSUFFICIENT_CREDITS, not retryable" \
    "409 INSUFFICIENT_CREDITS false" "$(call POST /api/v1/bookings "$AKEY" \
    '{"user_id":"dc","class_id":"late","credits":1}') $(code) $(jq -r .error.retryable "$OUT")"
t_eq "a booking body {}: 400 VALIDATION_FAILED" "400 VALIDATION_FAILED" \
    "$(call POST /api/v1/bookings "$AKEY" '{}') $(code)"

# --- reservations ----------------------------------------------------------
grant rr 10
RB='{"user_id":"rr","amount":4,"reservation_key":"rk-1"}'
t_eq "reserve: 201 pending" "201 pending" \
    "$(call POST /api/v1/credit-reservations "$AKEY" "$RB") $(jq -r .state "$OUT")"
RID=$(jq -r .id "$OUT")
t_eq "reserve the same key again: 200, the same reservation" "200 $RID" \
    "$(call POST /api/v1/credit-reservations "$AKEY" "$RB") $(jq -r .id "$OUT")"
t_eq "  4 held, balance untouched" "10 4" "$(acct rr)"
t_eq "reserve more than available: 409 INSUFFICIENT_CREDITS" \
    "409 INSUFFICIENT_CREDITS" "$(call POST /api/v1/credit-reservations \
    "$AKEY" '{"user_id":"rr","amount":7,"reservation_key":"rk-big"}') $(code)"
par 20 "$TMP/rk" POST /api/v1/credit-reservations "$AKEY" \
    '{"user_id":"rr","amount":1,"reservation_key":"rk-20"}'
echo "# 20 concurrent same-key reservations: $(tally "$TMP/rk")"
t_eq "20 concurrent same-key reservations: one 201, 19 x 200" "201:1 200:19" \
    "$(printf '201:%s 200:%s' "$(grep -lx 201 "$TMP"/rk/*.code | wc -l)" \
    "$(grep -lx 200 "$TMP"/rk/*.code | wc -l)")"
t_eq "  one reservation, 1 credit held once" "1|10 5" \
    "$(cat "$TMP"/rk/*.body | jq -r .id | sort -u | wc -l)|$(acct rr)"
R20=$(jq -r .id "$TMP/rk/1.body")
t_eq "another org commits our reservation with {}: 404 NOT_FOUND" \
    "404 NOT_FOUND" "$(call POST "/api/v1/credit-reservations/$RID/commit" \
    "$BKEY" '{}') $(code)"
t_eq "another org releases it with no body: 404 NOT_FOUND" "404 NOT_FOUND" \
    "$(call POST "/api/v1/credit-reservations/$RID/release" "$BKEY") $(code)"
t_eq "  still pending, still held" "pending|10 5" "$(t_sql "SELECT state
    FROM credit_reservations WHERE id = '$RID'")|$(acct rr)"
t_eq "commit with {} (application/json): 200 committed" "200 committed" \
    "$(call POST "/api/v1/credit-reservations/$RID/commit" "$AKEY" '{}') $(jq -r .state "$OUT")"
t_eq "  4 debited" "6 1" "$(acct rr)"
t_eq "commit twice: 409 INVALID_STATE" "409 INVALID_STATE" \
    "$(call POST "/api/v1/credit-reservations/$RID/commit" "$AKEY" '{}') $(code)"
t_eq "release after commit: 409 INVALID_STATE" "409 INVALID_STATE" \
    "$(call POST "/api/v1/credit-reservations/$RID/release" "$AKEY" '{}') $(code)"
t_eq "release with {}: 200 released" "200 released" \
    "$(call POST "/api/v1/credit-reservations/$R20/release" "$AKEY" '{}') $(jq -r .state "$OUT")"
t_eq "  the credit is available again" "6 0" "$(acct rr)"
t_eq "GET the account through nginx: balance 6, reserved 0, available 6" \
    "6 0 6" "$(call GET /api/v1/accounts/rr "$AKEY" >/dev/null
    jq -r '"\(.balance) \(.reserved) \(.available)"' "$OUT")"
MADE=00000000-0000-4000-8000-00000000000f
t_eq "a made-up reservation id: 404 NOT_FOUND" "404 NOT_FOUND" \
    "$(call POST "/api/v1/credit-reservations/$MADE/commit" "$AKEY" '{}') $(code)"

# --- the ledger after all of it ---------------------------------------------
out=$(t_ctl ledger check --org "$AORG" 2>&1)
rc=$?
t_eq "bulwarkctl ledger check clean" "0 true" "$rc $(jq -r .clean <<<"$out" 2>/dev/null)"
t_eq "the org's balances sum to 0" 0 "$(t_sql "SELECT sum(balance)
    FROM credit_accounts WHERE org_id = '$AORG'")"
t_done
