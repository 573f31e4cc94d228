#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Idempotency-Key (CONTRACT.md, IETF httpapi Idempotency-Key draft), counted:
#  - lib/platform/idem.c against the real database through tests/integration/
#    idem_driver: key syntax, lock/replay/mismatch, 20 racing requests on a
#    key -> exactly one runs, 20 racing takeovers of a dead lock -> exactly
#    one wins, release un-poisons, org scope, expiry, purge;
#  - the middleware through nginx: malformed key -> 400 naming the header,
#    a live lock -> 409 IDEMPOTENCY_KEY_IN_USE with Retry-After, a stored
#    response -> byte-identical replay with Idempotent-Replayed: true, other
#    body -> 422, other org -> independent, expired and dead-locked keys
#    usable again, a 5xx leaves no key behind;
#  - with a working POST /api/v1/bookings: the same key twice gives the same
#    answer, 20 concurrent requests with one key make exactly one booking,
#    a 503 (statement timeout behind a table lock) does not poison the key.
# Needs curl, jq, psql, bulwarkctl.

# shellcheck disable=SC2317 # trap handlers are called indirectly
# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
. "${BW_TOP:?}/tests/lib/common.sh"
t_need BW_BUILD DATABASE_URL BULWARK_URL BW_DEMO_KEY BW_DEMO_ORG BW_CONFIG

D="$BW_BUILD/tests/integration/idem_driver"
U=$BULWARK_URL
SFX="$$-$(date +%s%N)"
H=$BW_TMP/h
B=$BW_TMP/b
LOCKER=

cleanup() {
	[ -n "$LOCKER" ] && kill "$LOCKER" 2>/dev/null
	wait 2>/dev/null
}
t_on_exit cleanup

drv() { "$D" "$@" 2>>"$BW_TMP/driver.log"; }
ctl() { bulwarkctl -c "$BW_CONFIG" "$@" 2>>"$BW_TMP/ctl.log"; }

# req KEY_OR_- BODY [PATH] [API_KEY]: POST; $ST status, $B body, $H headers.
req() {
	local k=$1 body=$2 path=${3:-/api/v1/bookings} ak=${4:-$BW_DEMO_KEY}
	local ka=()
	[ "$k" != - ] && ka=(-H "Idempotency-Key: $k")
	ST=$(curl -sk --max-time 20 -o "$B" -D "$H" -w '%{http_code}' \
	    -X POST -H "Authorization: Bearer $ak" \
	    -H 'Content-Type: application/json' "${ka[@]}" \
	    --data-binary "$body" "$U$path")
}

hdr() {
	tr -d '\r' <"$H" | awk -v n="$1" '
		{ k = tolower(substr($0, 1, index($0, ":") - 1)) }
		k == tolower(n) { v = substr($0, index($0, ":") + 1); sub(/^[ \t]+/, "", v) }
		END { printf "%s", v }'
}

# "yes" when the last answer is an Idempotency-Key error (409 IN_USE, 422).
idem_err() {
	if grep -q '"IDEMPOTENCY_KEY_' "$B"; then echo yes; else echo no; fi
}

rows() {
	t_sql "SELECT count(*) FROM idempotency_keys WHERE org_id = '$1'
	    AND idem_key = encode(sha256(convert_to('$2', 'UTF8')), 'hex')"
}

if [ ! -x "$D" ]; then
	t_fail "idem_driver built" "$D missing"
	t_done
fi
ORG_A=$BW_DEMO_ORG
ORG_B=$(ctl org create --name "idem-b-$SFX" | jq -r .id)
KEY_B=$(ctl key create --org "$ORG_B" --role owner | jq -r .key)
if [ -z "$ORG_B" ] || [ "$ORG_B" = null ] || [ -z "$KEY_B" ]; then
	t_fail "second org created" "$(tail -n 3 "$BW_TMP/ctl.log")"
	t_done
fi

# ---------------------------------------------------------------- syntax
check_parse() {
	local name=$1 hdrv=$2 want=$3
	t_eq "parse $name" "$want" "$(drv parse "$hdrv")"
}
check_parse "sf-string" '"abc-123"' "key abc-123"
check_parse "bare token" 'abc-123' "key abc-123"
check_parse "blanks around" '  "a b"	' "key a b"
check_parse "escaped quote and backslash" '"a\"b\\c"' 'key a"b\c'
check_parse "empty sf-string" '""' invalid
check_parse "empty value" '' invalid
check_parse "unterminated" '"abc' invalid
check_parse "text after the closing quote" '"abc"x' invalid
check_parse "bad escape" '"a\x"' invalid
check_parse "quote inside a bare token" 'a"b' invalid
check_parse "space inside a bare token" 'a b' invalid
check_parse "non-ASCII" "$(printf '"caf\xc3\xa9"')" invalid
check_parse "control character" "$(printf '"a\tb"')" invalid
k255=$(head -c 255 /dev/zero | tr '\0' k)
check_parse "255 characters" "\"$k255\"" "key $k255"
check_parse "256 characters" "\"${k255}k\"" invalid

# ---------------------------------------------------------------- store
K="lib-$SFX"
out=$(drv begin "$ORG_A" "$K" fp1)
t_match "store: first request runs" '^run [0-9a-f-]{36} fresh$' "$out"
tok=$(awk '{print $2}' <<<"$out")
t_eq "store: same key while running is in use" in_use "$(drv begin "$ORG_A" "$K" fp1)"
t_eq "store: same key other fingerprint is a mismatch" mismatch "$(drv begin "$ORG_A" "$K" fp2)"
t_match "store: the same key in another org is independent" '^run .* fresh$' "$(drv begin "$ORG_B" "$K" fp1)"
t_eq "store: completing with the lock token" ok "$(drv complete "$ORG_A" "$K" "$tok" 201 '{"id":1}')"
t_eq "store: replay after completion" 'replay 201 {"id":1}' "$(drv begin "$ORG_A" "$K" fp1)"
t_eq "store: completed key with other fingerprint is a mismatch" mismatch "$(drv begin "$ORG_A" "$K" fp2)"
t_eq "store: completing twice is refused" lost "$(drv complete "$ORG_A" "$K" "$tok" 500 x)"

# Released (retryable failure): the key is usable again at once.
K="rel-$SFX"
tok=$(drv begin "$ORG_A" "$K" fp1 | awk '{print $2}')
t_eq "store: release with the lock token" ok "$(drv release "$ORG_A" "$K" "$tok")"
t_eq "store: released key leaves no row" 0 "$(rows "$ORG_A" "$K")"
t_match "store: released key runs again" '^run .* fresh$' "$(drv begin "$ORG_A" "$K" fp2)"

# A dead request's lock: taken over after the timeout, not before.
K="dead-$SFX"
tok=$(drv begin "$ORG_A" "$K" fp1 | awk '{print $2}')
t_eq "store: a young lock is not taken over" in_use "$(drv begin "$ORG_A" "$K" fp1 60)"
t_sql "UPDATE idempotency_keys SET locked_at = now() - interval '61 seconds'
    WHERE org_id = '$ORG_A' AND idem_key = encode(sha256(convert_to('$K', 'UTF8')), 'hex')" >/dev/null
out=$(drv begin "$ORG_A" "$K" fp1 60)
t_match "store: a lock older than the timeout is taken over" '^run .* takeover$' "$out"
t_eq "store: the dead request can no longer store" lost "$(drv complete "$ORG_A" "$K" "$tok" 201 late)"
t_eq "store: the dead request can no longer release" lost "$(drv release "$ORG_A" "$K" "$tok")"
t_eq "store: the new holder stores" ok "$(drv complete "$ORG_A" "$K" "$(awk '{print $2}' <<<"$out")" 201 new)"

# 20 racing requests on one fresh key: exactly one runs.
K="race-$SFX"
seq 1 20 | xargs -P 20 -I{} "$D" begin "$ORG_A" "$K" fp1 >"$BW_TMP/race" 2>>"$BW_TMP/driver.log"
t_eq "store: 20 racing requests, exactly one runs" 1 "$(grep -c '^run ' "$BW_TMP/race")"
t_eq "store: 20 racing requests, 19 in use" 19 "$(grep -c '^in_use$' "$BW_TMP/race")"

# 20 racing takeovers of one dead lock: exactly one wins.
t_sql "UPDATE idempotency_keys SET locked_at = now() - interval '10 minutes'
    WHERE org_id = '$ORG_A' AND idem_key = encode(sha256(convert_to('$K', 'UTF8')), 'hex')" >/dev/null
seq 1 20 | xargs -P 20 -I{} "$D" begin "$ORG_A" "$K" fp1 60 >"$BW_TMP/race2" 2>>"$BW_TMP/driver.log"
t_eq "store: 20 racing takeovers, exactly one wins" 1 "$(grep -c '^run .* takeover$' "$BW_TMP/race2")"
t_eq "store: 20 racing takeovers, 19 in use" 19 "$(grep -c '^in_use$' "$BW_TMP/race2")"

# Expiry: an expired key is absent, whatever it held.
K="exp-$SFX"
tok=$(drv begin "$ORG_A" "$K" fp1 | awk '{print $2}')
drv complete "$ORG_A" "$K" "$tok" 201 old >/dev/null
t_sql "UPDATE idempotency_keys SET expires_at = now() - interval '1 second'
    WHERE org_id = '$ORG_A' AND idem_key = encode(sha256(convert_to('$K', 'UTF8')), 'hex')" >/dev/null
t_match "store: an expired key is fresh again (other fingerprint)" '^run .* fresh$' "$(drv begin "$ORG_A" "$K" fp2)"
t_eq "store: a fresh key lives 24 hours" t "$(t_sql "SELECT expires_at
    BETWEEN now() + interval '23 hours 59 minutes' AND now() + interval '1 day'
    FROM idempotency_keys WHERE org_id = '$ORG_A' AND idem_key = encode(sha256(convert_to('$K', 'UTF8')), 'hex')")"

# Purge: expired rows go (in batches), live ones stay.
for i in 1 2 3 4 5; do drv begin "$ORG_B" "purge-$SFX-$i" fp1 >/dev/null; done
drv begin "$ORG_B" "purge-$SFX-live" fp1 >/dev/null
t_sql "UPDATE idempotency_keys SET expires_at = now() - interval '1 hour'
    WHERE org_id = '$ORG_B' AND idem_key IN (SELECT encode(sha256(convert_to('purge-$SFX-' || i || '', 'UTF8')), 'hex')
    FROM generate_series(1, 5) i)" >/dev/null
out=$(drv purge 2)
t_match "purge: reports what it deleted" '^purged ([5-9]|[1-9][0-9]+)$' "$out"
t_eq "purge: every expired key is gone" 0 "$(t_sql "SELECT count(*) FROM
    idempotency_keys WHERE expires_at < now()")"
t_eq "purge: a live key stays" 1 "$(rows "$ORG_B" "purge-$SFX-live")"

# ---------------------------------------------------------------- HTTP
BODY='{"user_id":"idem-u-'$SFX'","class_id":"c-'$SFX'","credits":1}'
FP=$(drv fp POST /api/v1/bookings "$BODY")

req '"bad key"x' "$BODY"
t_eq "http: malformed key is 400 VALIDATION_FAILED naming the header" \
    "400 VALIDATION_FAILED Idempotency-Key" \
    "$ST $(jq -r '.error.error_code + " " + .error.fields[0].field' "$B" 2>/dev/null)"
req "$(head -c 256 /dev/zero | tr '\0' k)" "$BODY"
t_eq "http: a 256-character key is 400" 400 "$ST"

# A live lock (another request running): 409, retryable, Retry-After.
K="live-$SFX"
t_sql "INSERT INTO idempotency_keys (org_id, idem_key, fingerprint,
    lock_token, expires_at) VALUES ('$ORG_A', encode(sha256(convert_to('$K', 'UTF8')), 'hex'), '$FP',
    gen_random_uuid(), now() + interval '1 day')" >/dev/null
req "\"$K\"" "$BODY"
t_eq "http: key in flight is 409 IDEMPOTENCY_KEY_IN_USE, retryable, Retry-After 1" \
    "409 IDEMPOTENCY_KEY_IN_USE true 1" \
    "$ST $(jq -r '"\(.error.error_code) \(.error.retryable)"' "$B" 2>/dev/null) $(hdr Retry-After)"
req "\"$K\"" '{"other":1}'
t_eq "http: key in flight with another body is 422 IDEMPOTENCY_KEY_REUSED" \
    "422 IDEMPOTENCY_KEY_REUSED" "$ST $(jq -r .error.error_code "$B" 2>/dev/null)"

# A stored response: replayed byte for byte, with its type and Location.
K="stored-$SFX"
printf '{"booking_id":"b-%s","balance":7, "odd spacing":"\\u00e9"}' "$SFX" >"$BW_TMP/stored"
t_sql "INSERT INTO idempotency_keys (org_id, idem_key, fingerprint,
    lock_token, expires_at, status, content_type, headers, body, completed_at)
    VALUES ('$ORG_A', encode(sha256(convert_to('$K', 'UTF8')), 'hex'), '$FP', gen_random_uuid(),
    now() + interval '1 day', 201, 'application/json',
    E'Location: /api/v1/bookings/b-$SFX\r\n',
    convert_to('$(cat "$BW_TMP/stored")', 'UTF8'), now())" >/dev/null
req "$K" "$BODY"
t_eq "http: replay has the stored status and Idempotent-Replayed: true" \
    "201 true" "$ST $(hdr Idempotent-Replayed)"
t_check "http: replayed body is byte-identical" cmp -s "$B" "$BW_TMP/stored"
t_eq "http: replay keeps the stored Location and type" \
    "/api/v1/bookings/b-$SFX application/json" "$(hdr Location) $(hdr Content-Type)"
req "\"$K\"" "$BODY"
t_eq "http: the quoted and the bare form are the same key" "201 true" "$ST $(hdr Idempotent-Replayed)"
req "$K" "${BODY% }"' '
t_eq "http: same key, other body is 422 IDEMPOTENCY_KEY_REUSED" \
    "422 IDEMPOTENCY_KEY_REUSED" "$ST $(jq -r .error.error_code "$B" 2>/dev/null)"
req "$K" "$BODY" /api/v1/credit-reservations
t_eq "http: same key and body on another path is 422" 422 "$ST"
req "$K" "$BODY" /api/v1/bookings "$KEY_B"
t_eq "http: the same key in another org is not a replay" "" "$(hdr Idempotent-Replayed)"
t_eq "http: the same key in another org is not an idempotency error" no "$(idem_err)"

# Expired: the stored response is gone, the key runs anew (even other body).
t_sql "UPDATE idempotency_keys SET expires_at = now() - interval '1 second'
    WHERE org_id = '$ORG_A' AND idem_key = encode(sha256(convert_to('$K', 'UTF8')), 'hex')" >/dev/null
req "$K" '{"user_id":"x","class_id":"y","credits":1,"z":1}'
t_eq "http: an expired key is fresh again" "" "$(hdr Idempotent-Replayed)"
t_eq "http: an expired key is not an idempotency error" no "$(idem_err)"

# A dead lock (its request died) is taken over after the timeout.
K="deadhttp-$SFX"
t_sql "INSERT INTO idempotency_keys (org_id, idem_key, fingerprint,
    lock_token, locked_at, expires_at) VALUES ('$ORG_A', encode(sha256(convert_to('$K', 'UTF8')), 'hex'), '$FP',
    gen_random_uuid(), now() - interval '1 hour', now() + interval '1 day')" >/dev/null
req "$K" "$BODY"
t_eq "http: a dead lock is taken over (not IN_USE)" no "$(idem_err)"
t_eq "http: the taken-over lock is no longer held" 0 "$(t_sql "SELECT count(*)
    FROM idempotency_keys WHERE org_id = '$ORG_A' AND idem_key = encode(sha256(convert_to('$K', 'UTF8')), 'hex')
    AND status IS NULL")"

# ------------------------------------------- with a working bookings handler
USER="idem-u-$SFX"
ctl credits grant --org "$ORG_A" --user "$USER" --amount 100 \
    --anchor "idem-$SFX" >/dev/null
req - '{"user_id":"'"$USER"'","class_id":"probe-'"$SFX"'","credits":1}'
if [ "$ST" != 201 ]; then
	printf '# SKIP bookings e2e: POST /api/v1/bookings answered %s\n' "$ST"
	# Still: a 5xx must not leave the key behind.
	K="fail-$SFX"
	req "$K" "$BODY"
	if [ "$ST" -ge 500 ]; then
		t_eq "http: a 5xx answer leaves no key behind" 0 "$(rows "$ORG_A" "$K")"
	fi
	t_done
fi

bookings() {
	t_sql "SELECT count(*) FROM bookings WHERE org_id = '$ORG_A'
	    AND user_id = '$USER' AND class_id = '$1'"
}

# Same key and body twice: the same answer, one booking.
K="twice-$SFX"
B1='{"user_id":"'"$USER"'","class_id":"twice-'"$SFX"'","credits":1}'
req "$K" "$B1"
st1=$ST
cp "$B" "$BW_TMP/first"
rp1=$(hdr Idempotent-Replayed)
req "$K" "$B1"
t_eq "e2e: first request is 201 and not a replay" "201 " "$st1 $rp1"
t_eq "e2e: the retry has the same status and Idempotent-Replayed" "201 true" "$ST $(hdr Idempotent-Replayed)"
t_check "e2e: the retry's body is byte-identical" cmp -s "$B" "$BW_TMP/first"
t_eq "e2e: one booking for two requests" 1 "$(bookings "twice-$SFX")"
req "$K" '{"user_id":"'"$USER"'","class_id":"twice-'"$SFX"'","credits":2}'
t_eq "e2e: same key, other body is 422" 422 "$ST"
t_eq "e2e: still one booking" 1 "$(bookings "twice-$SFX")"

# The booking's natural key (sha256 of the Idempotency-Key, unique per org):
# once the key's own row is gone (expired and purged after 24 h), the same
# key still cannot book again; the database refuses, the answer says why.
ubal() {
	t_sql "SELECT balance FROM credit_accounts WHERE org_id = '$ORG_A'
	    AND kind = 'user' AND name = '$USER'"
}
bal0=$(ubal)
t_sql "DELETE FROM idempotency_keys WHERE org_id = '$ORG_A'
    AND idem_key = encode(sha256(convert_to('$K', 'UTF8')), 'hex')" >/dev/null
req "$K" "$B1"
t_eq "e2e: a key whose row is gone cannot book again (422 REUSED)" \
    "422 yes" "$ST $(idem_err)"
t_eq "e2e: still one booking after the key's row is gone" 1 \
    "$(bookings "twice-$SFX")"
t_eq "e2e: the refused retry debited nothing" "$bal0" "$(ubal)"

# 20 concurrent requests with one key: one booking, the rest 409 or replay.
K="conc-$SFX"
B2='{"user_id":"'"$USER"'","class_id":"conc-'"$SFX"'","credits":1}'
seq 1 20 | xargs -P 20 -I{} curl -sk --max-time 20 -o /dev/null -D "$BW_TMP/ch{}" \
    -w '%{http_code}\n' -X POST -H "Authorization: Bearer $BW_DEMO_KEY" \
    -H 'Content-Type: application/json' -H "Idempotency-Key: $K" \
    --data-binary "$B2" "$U/api/v1/bookings" >"$BW_TMP/conc"
n201=$(grep -c '^201$' "$BW_TMP/conc")
n409=$(grep -c '^409$' "$BW_TMP/conc")
nrep=$(cat "$BW_TMP"/ch* | tr -d '\r' | grep -ci '^idempotent-replayed: true$')
t_eq "e2e: 20 concurrent, exactly one booking" 1 "$(bookings "conc-$SFX")"
t_eq "e2e: 20 concurrent, every answer is 201 or 409" 20 "$((n201 + n409))"
t_eq "e2e: 20 concurrent, all but one are 409 or replays" 19 "$((n409 + nrep))"

# A 5xx from the handler does not poison the key: its database connection
# is killed while the booking waits behind a table lock (PostgreSQL failing
# mid-request), the handler answers 503, the key is released, the retry
# runs and books once.
K="t503-$SFX"
B3='{"user_id":"'"$USER"'","class_id":"t503-'"$SFX"'","credits":1}'
psql "$DATABASE_URL" -qAtX -c "BEGIN; LOCK TABLE bookings IN ACCESS EXCLUSIVE MODE;
    SELECT pg_sleep(4); COMMIT;" >/dev/null 2>&1 &
LOCKER=$!
sleep 0.3
req "$K" "$B3" &
RP=$!
killed=
for _ in $(seq 1 30); do
	killed=$(t_sql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
	    WHERE wait_event_type = 'Lock' AND query LIKE '%bookings%'
	    AND pid <> pg_backend_pid()" 2>/dev/null | grep -c t)
	[ "$killed" -ge 1 ] && break
	sleep 0.1
done
wait "$RP"
wait "$LOCKER" 2>/dev/null
LOCKER=
# req ran in a subshell: read its status back from the files.
ST=$(tr -d '\r' <"$H" | awk 'NR == 1 { print $2 }')
t_eq "e2e: the handler answered 503 when its connection died" 503 "$ST"
t_eq "e2e: a 503 leaves no key behind" 0 "$(rows "$ORG_A" "$K")"
t_eq "e2e: no booking from the failed request" 0 "$(bookings "t503-$SFX")"
req "$K" "$B3"
t_eq "e2e: the retry after a 503 runs (201, not a replay)" "201 " "$ST $(hdr Idempotent-Replayed)"
t_eq "e2e: one booking after 503 and retry" 1 "$(bookings "t503-$SFX")"

# A stored answer is sealed and its key hashed (issue 9 item 6): an export's
# answer carries the verification token, shown once; the replay still has
# it, but the table holds neither the token nor the key in readable form.
K="seal-$SFX"
EB='{"from":"2020-01-01T00:00:00Z","to":"2020-01-02T00:00:00Z"}'
req "$K" "$EB" /api/v1/exports
TOK=$(jq -r '.verification_token // empty' "$B")
cp "$B" "$BW_TMP/export1"
t_eq "seal: the export is created with a token" "202 yes" \
    "$ST $([ ${#TOK} -ge 40 ] && echo yes)"
req "$K" "$EB" /api/v1/exports
t_check "seal: the replay is byte-identical (token included)" \
    cmp -s "$B" "$BW_TMP/export1"
t_eq "seal: no stored answer contains the token" 0 "$(t_sql "SELECT count(*)
    FROM idempotency_keys WHERE position(convert_to('$TOK', 'UTF8') IN body) > 0
    OR position('$TOK' IN coalesce(headers, '')) > 0")"
t_eq "seal: the key itself is not stored" 0 "$(t_sql "SELECT count(*)
    FROM idempotency_keys WHERE idem_key = '$K'")"
t_eq "seal: the row is there under the key's SHA-256" 1 "$(rows "$ORG_A" "$K")"

# Natural keys of exports and evidence: with the key's row gone, the same
# key creates nothing more (422), exactly as for bookings.
nexp() { t_sql "SELECT count(*) FROM exports WHERE org_id = '$ORG_A'
    AND request_key = encode(sha256(convert_to('$1', 'UTF8')), 'hex')"; }
t_sql "DELETE FROM idempotency_keys WHERE org_id = '$ORG_A'
    AND idem_key = encode(sha256(convert_to('$K', 'UTF8')), 'hex')" >/dev/null
req "$K" "$EB" /api/v1/exports
t_eq "natural key: an export key whose row is gone cannot create again" \
    "422 yes 1" "$ST $(idem_err) $(nexp "$K")"
K="ev-$SFX"
up() {
	ST=$(curl -sk --max-time 20 -o "$B" -w '%{http_code}' -X POST \
	    -H "Authorization: Bearer $BW_DEMO_KEY" -H "Idempotency-Key: $K" \
	    -H 'Content-Type: application/octet-stream' \
	    --data-binary "evidence $SFX" "$U/api/v1/evidence")
}
nev() { t_sql "SELECT count(*) FROM evidence WHERE org_id = '$ORG_A'
    AND request_key = encode(sha256(convert_to('$K', 'UTF8')), 'hex')"; }
up
t_eq "natural key: evidence stored once under its key" "201 1" "$ST $(nev)"
t_sql "DELETE FROM idempotency_keys WHERE org_id = '$ORG_A'
    AND idem_key = encode(sha256(convert_to('$K', 'UTF8')), 'hex')" >/dev/null
up
t_eq "natural key: an evidence key whose row is gone cannot store again" \
    "422 yes 1" "$ST $(idem_err) $(nev)"

t_done
