#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The credit ledger against real PostgreSQL and real bulwark-fcgi masters,
# counted, not sampled: 200 concurrent bookings of 1 credit for a user with
# 10 over three masters (10 x 201, 190 x 409, balance 0, never negative);
# 2,000 concurrent opposite transfers (no error, no deadlock, sums kept,
# replay applies nothing); a child killed with -9 inside its booking
# transaction (no booking without debit, no debit without booking);
# reservations (same key, other amount, 20 concurrent same-key requests,
# commit, release, expiry by bulwark-reconcile, commit after expiry, other
# org 404); `bulwarkctl ledger check` clean, and it detects a corrupted
# balance.
. "${BW_TOP:?}/tests/lib/common.sh"

CFG=$BW_CONFIG
SFX="$$-$(date +%s)"
HAMMER="$BW_BUILD/tests/integration/credit_hammer"
MASTERS=()

cleanup() {
	local p
	for p in "${MASTERS[@]}"; do
		kill -TERM "$p" 2>/dev/null
	done
	t_kill_jobs
	t_sql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
	    WHERE application_name = 'credits-lock-$SFX'" >/dev/null 2>&1
}
t_on_exit cleanup

# start_master N [VAR=value...]: a bulwark-fcgi master of our own on
# $TMP/fcgiN.sock, as another host would run it. One chat child: nothing
# here chats, and 4 masters x 32 chat children connecting at once held
# PostgreSQL's accept long enough for bulwarkctl's connects to time out on
# a busy CI machine (the grants below).
start_master() {
	local n=$1 i
	shift
	cp "$CFG" "$TMP/fcgi$n.conf"
	printf 'fcgi_socket = %s\npid_file = %s\n' "$TMP/fcgi$n.sock" \
	    "$TMP/fcgi$n.pid" >>"$TMP/fcgi$n.conf"
	rm -f "$TMP/fcgi$n.sock"
	env BULWARK_FCGI_CHAT_CHILDREN=1 "$@" "$BW_BUILD/bulwark-fcgi" -c "$TMP/fcgi$n.conf" \
	    >>"$TMP/fcgi$n.log" 2>&1 &
	MASTERS+=("$!")
	for i in $(seq 1 100); do
		[ -S "$TMP/fcgi$n.sock" ] && return 0
		sleep 0.1
	done
	return 1
}

# req SOCKET METHOD PATH [BODY] [KEY]: prints "<status> <body>".
req() {
	local args=(--socket "$1" --method "$2" --path "$3"
	    --header "Authorization: Bearer ${5:-$KEY}" --timeout 30)
	[ -n "${4:-}" ] && args+=(--body "$4")
	t_freq "${args[@]}" | cut -d' ' -f2-
}

# jget JSON FIELD: one top-level field of a JSON text ("" if absent).
jget() {
	python3 -c 'import json,sys
try:
    v = json.loads(sys.argv[1]).get(sys.argv[2], "")
except Exception:
    v = ""
print("" if v is None else json.dumps(v) if isinstance(v, bool) else v)' \
	    "$1" "$2"
}

# acct USER: "balance reserved" of USER in our org ("" if no account).
acct() {
	t_sql "SELECT balance || ' ' || reserved FROM credit_accounts
	    WHERE org_id = '$ORG' AND kind = 'user' AND name = '$1'"
}

grant() {
	t_ctl credits grant --org "$ORG" --user "$1" --amount "$2" \
	    --anchor "$3" >/dev/null
}

ORG=$(jget "$(t_ctl org create --name "credits-$SFX")" id)
KEY=$(jget "$(t_ctl key create --org "$ORG" --role member)" key)
ORG2=$(jget "$(t_ctl org create --name "credits2-$SFX")" id)
KEY2=$(jget "$(t_ctl key create --org "$ORG2" --role member)" key)
if [ -z "$ORG" ] || [ -z "$KEY" ] || [ -z "$KEY2" ]; then
	t_fail "credits: set-up" "could not create orgs and keys"
	t_done
fi

t_check "credits: three extra masters start" start_master 1
start_master 2 && start_master 3 || t_fail "credits: masters 2, 3 start"
# One child and a 2 s reservation TTL: the kill and expiry tests.
start_master 4 BULWARK_FCGI_CHILDREN=1 BULWARK_RESERVATION_TTL_S=2 ||
    t_fail "credits: master 4 starts"
S1=$TMP/fcgi1.sock S2=$TMP/fcgi2.sock S3=$TMP/fcgi3.sock S4=$TMP/fcgi4.sock

# --- Grants: an anchor applies once, also 20 at a time. ---------------
GPIDS=()
for i in $(seq 1 20); do
	t_ctl credits grant --org "$ORG" --user g --amount 7 \
	    --anchor "test:g" >"$TMP/grant-$i.out" 2>&1 &
	GPIDS+=("$!")
done
wait "${GPIDS[@]}"
t_eq "credits: 20 concurrent grants of one anchor apply once" "1" \
    "$(cat "$TMP"/grant-*.out | grep -c '"applied":true')"
t_eq "credits: ... and the 19 others answer applied=false" "19" \
    "$(cat "$TMP"/grant-*.out | grep -c '"applied":false')"
t_eq "credits: ... and the balance is the one grant" "7 0" "$(acct g)"

# --- Double click: 200 concurrent bookings of 1 credit, 10 credits. -----
grant dc 10 "test:dc"
( while [ ! -e "$TMP/storm.done" ]; do
	t_sql "SELECT balance - reserved FROM credit_accounts
	    WHERE org_id = '$ORG' AND kind = 'user' AND name = 'dc'"
	sleep 0.05
done ) >"$TMP/storm-avail.txt" 2>/dev/null &
SAMPLER=$!
t_freq --socket "$S1" --socket "$S2" --socket "$S3" --method POST \
    --path /api/v1/bookings --header "Authorization: Bearer $KEY" \
    --body '{"user_id":"dc","class_id":"spin-6am","credits":1}' \
    --count 200 --concurrency 50 --timeout 60 >"$TMP/storm.txt"
touch "$TMP/storm.done"
wait "$SAMPLER"
t_eq "credits: double click: exactly 10 x 201" "10" \
    "$(awk '$2 == 201' "$TMP/storm.txt" | wc -l)"
t_eq "credits: double click: 190 x 409 INSUFFICIENT_CREDITS" "190" \
    "$(awk '$2 == 409' "$TMP/storm.txt" | grep -c INSUFFICIENT_CREDITS)"
t_eq "credits: double click: the 201s saw balances 9..0 once each" \
    "0 1 2 3 4 5 6 7 8 9" "$(awk '$2 == 201' "$TMP/storm.txt" |
    grep -o '"balance":[0-9-]*' | cut -d: -f2 | sort -n | xargs)"
t_eq "credits: double click: balance 0, nothing reserved" "0 0" "$(acct dc)"
t_eq "credits: double click: 10 bookings rows" "10" \
    "$(t_sql "SELECT count(*) FROM bookings WHERE org_id = '$ORG'
    AND user_id = 'dc'")"
t_eq "credits: double click: available never negative while it ran" "" \
    "$(grep -- '-' "$TMP/storm-avail.txt")"
t_ge "credits: double click: available was sampled during the storm" 2 \
    "$(wc -l <"$TMP/storm-avail.txt")"

# --- Opposite transfers: 2,000 concurrent between two accounts. ---------
grant ta 1000 "test:ta"
grant tb 1000 "test:tb"
dl0=$(t_sql "SELECT deadlocks FROM pg_stat_database
    WHERE datname = current_database()")
out=$("$HAMMER" -c "$CFG" "$ORG" ta tb 2000 50 "x$SFX" 2>"$TMP/hammer.err")
t_eq "credits: 2,000 opposite transfers all applied, no error" \
    '{"ok":2000,"duplicate":0,"insufficient":0,"errors":0,"procs_reported":50}' \
    "$out"
t_eq "credits: opposite transfers: balances conserved (1000 each)" \
    "1000 0|1000 0" "$(acct ta)|$(acct tb)"
sleep 1.5 # statistics reach pg_stat_database within a second
dl1=$(t_sql "SELECT deadlocks FROM pg_stat_database
    WHERE datname = current_database()")
t_eq "credits: opposite transfers: no deadlock even inside PostgreSQL" \
    "0" "$((dl1 - dl0))"
out=$("$HAMMER" -c "$CFG" "$ORG" ta tb 2000 20 "x$SFX" 2>>"$TMP/hammer.err")
t_eq "credits: the same 2,000 transfer ids again apply nothing" \
    '{"ok":0,"duplicate":2000,"insufficient":0,"errors":0,"procs_reported":20}' \
    "$out"
t_eq "credits: org balances sum to 0" "0" \
    "$(t_sql "SELECT sum(balance) FROM credit_accounts
    WHERE org_id = '$ORG'")"

# --- kill -9 inside a booking transaction. -------------------------------
# A session holds a SHARE lock on bookings: the booking transaction locks
# the accounts, debits (credit_transfers row, balances) and then waits to
# insert its booking row. Its child is killed there.
grant kk 5 "test:kk"
PGAPPNAME="credits-lock-$SFX" psql "$DATABASE_URL" -qAtX -c "BEGIN;
    LOCK TABLE bookings IN SHARE MODE; SELECT pg_sleep(60); COMMIT;" \
    >/dev/null 2>&1 &
LOCKPID=$!
t_wait_sql 10 1 "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a
    USING (pid) WHERE a.application_name = 'credits-lock-$SFX' AND
    l.granted AND l.mode = 'ShareLock'" ||
    t_fail "credits: kill: the lock session holds its lock"
t_freq --socket "$S4" --method POST --path /api/v1/bookings \
    --header "Authorization: Bearer $KEY" --timeout 30 \
    --body '{"user_id":"kk","class_id":"k1","credits":2}' \
    >"$TMP/kill.txt" 2>&1 &
REQPID=$!
BPID=""
for i in $(seq 1 100); do
	BPID=$(t_sql "SELECT pid FROM pg_stat_activity WHERE
	    wait_event_type = 'Lock' AND query LIKE 'INSERT INTO bookings%'
	    AND datname = current_database()" | head -n 1)
	[ -n "$BPID" ] && break
	sleep 0.1
done
t_match "credits: kill: the booking transaction waits to insert its booking" \
    '^[0-9]+$' "$BPID"
t_eq "credits: kill: ... after it wrote its debit (credit_transfers lock)" \
    "1" "$(t_sql "SELECT count(*) FROM pg_locks l JOIN pg_class c
    ON c.oid = l.relation WHERE l.pid = '${BPID:-0}' AND
    c.relname = 'credit_transfers' AND l.mode = 'RowExclusiveLock'")"
CHILD=$(pgrep -x -P "$(cat "$TMP/fcgi4.pid")" bulwark-fcgi | head -n 1)
t_match "credits: kill: found the one api child of master 4" '^[0-9]+$' "$CHILD"
[ -n "$CHILD" ] && kill -9 "$CHILD"
sleep 0.3
kill "$LOCKPID" 2>/dev/null
t_sql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
    WHERE application_name = 'credits-lock-$SFX'" >/dev/null
wait "$REQPID" 2>/dev/null
t_wait_sql 15 0 "SELECT count(*) FROM pg_stat_activity
    WHERE pid = '${BPID:-0}'" ||
    t_fail "credits: kill: the orphaned backend ended"
t_match "credits: kill: the client got no 201" '^0 (000|5)' \
    "$(cat "$TMP/kill.txt")"
t_eq "credits: kill: no booking row" "0" \
    "$(t_sql "SELECT count(*) FROM bookings WHERE org_id = '$ORG'
    AND user_id = 'kk'")"
t_eq "credits: kill: no debit (balance intact, no booking transfer)" \
    "5 0|0" "$(acct kk)|$(t_sql "SELECT count(*) FROM credit_transfers t
    JOIN credit_accounts a ON a.org_id = t.org_id AND a.id = t.debit_account
    WHERE t.org_id = '$ORG' AND a.name = 'kk' AND t.kind = 'booking'")"
r=""
for i in $(seq 1 50); do
	r=$(req "$S4" POST /api/v1/bookings \
	    '{"user_id":"kk","class_id":"k1","credits":2}')
	case $r in 201*) break ;; esac
	sleep 0.1
done
t_match "credits: kill: the replaced child books again" \
    '^201 .*"balance":3' "$r"

# --- Reservations. --------------------------------------------------------
grant rr 10 "test:rr"
RB='{"user_id":"rr","amount":4,"reservation_key":"rk-1"}'
r=$(req "$S1" POST /api/v1/credit-reservations "$RB")
t_match "credits: reserve: 201 pending" '^201 .*"state":"pending"' "$r"
RID=$(jget "${r#* }" id)
t_match "credits: reserve: expires_at is RFC 3339" \
    '"expires_at":"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z"' "$r"
t_eq "credits: reserve: default TTL is 48 h" "172800" \
    "$(t_sql "SELECT extract(epoch FROM expires_at - created_at)::int
    FROM credit_reservations WHERE org_id = '$ORG' AND id = '$RID'")"
r=$(req "$S2" POST /api/v1/credit-reservations "$RB")
t_eq "credits: reserve: the same key again is 200, same reservation" \
    "200 $RID" "${r%% *} $(jget "${r#* }" id)"
r=$(req "$S3" POST /api/v1/credit-reservations \
    '{"user_id":"rr","amount":5,"reservation_key":"rk-1"}')
t_match "credits: reserve: same key, other amount: 409 INVALID_STATE" \
    '^409 .*INVALID_STATE' "$r"
t_eq "credits: reserve: 4 reserved, balance untouched" "10 4" "$(acct rr)"
r=$(req "$S1" POST /api/v1/credit-reservations \
    '{"user_id":"rr","amount":7,"reservation_key":"rk-big"}')
t_match "credits: reserve: more than available: 409 INSUFFICIENT_CREDITS" \
    '^409 .*INSUFFICIENT_CREDITS' "$r"
t_freq --socket "$S1" --socket "$S2" --socket "$S3" --method POST \
    --path /api/v1/credit-reservations --header "Authorization: Bearer $KEY" \
    --body '{"user_id":"rr","amount":1,"reservation_key":"rk-20"}' \
    --count 20 --concurrency 20 >"$TMP/same-key.txt"
t_eq "credits: 20 concurrent same-key reservations: one 201, 19 x 200" \
    "1 19" "$(awk '$2 == 201' "$TMP/same-key.txt" | wc -l) $(awk \
    '$2 == 200' "$TMP/same-key.txt" | wc -l)"
t_eq "credits: ... all the same id, 1 credit reserved once" "1|10 5" \
    "$(grep -o '"id":"[^"]*"' "$TMP/same-key.txt" | sort -u | wc -l)|$(acct rr)"
r=$(req "$S2" POST "/api/v1/credit-reservations/$RID/commit" "" "$KEY2")
t_match "credits: commit of another org's reservation: 404" '^404 ' "$r"
r=$(req "$S2" POST "/api/v1/credit-reservations/$(cat /proc/sys/kernel/random/uuid)/commit")
t_match "credits: commit of an unknown id: 404" '^404 ' "$r"
r=$(req "$S2" POST "/api/v1/credit-reservations/not-a-uuid/release")
t_match "credits: release of a malformed id: 404" '^404 ' "$r"
r=$(req "$S2" POST "/api/v1/credit-reservations/$RID/commit")
t_match "credits: commit: 200 committed" '^200 .*"state":"committed"' "$r"
t_eq "credits: commit: 4 debited, reservation gone from reserved" "6 1" \
    "$(acct rr)"
r=$(req "$S3" POST "/api/v1/credit-reservations/$RID/commit")
t_match "credits: commit twice: 409 INVALID_STATE" '^409 .*INVALID_STATE' "$r"
r=$(req "$S3" POST "/api/v1/credit-reservations/$RID/release")
t_match "credits: release after commit: 409 INVALID_STATE" \
    '^409 .*INVALID_STATE' "$r"
RID20=$(grep -o '"id":"[^"]*"' "$TMP/same-key.txt" | head -n 1 | cut -d'"' -f4)
r=$(req "$S1" POST "/api/v1/credit-reservations/$RID20/release")
t_match "credits: release: 200 released" '^200 .*"state":"released"' "$r"
t_eq "credits: release: the credit is available again" "6 0" "$(acct rr)"

# Expiry (master 4: TTL 2 s). Commit after expiry answers 409 and returns
# the credits in the same call.
r=$(req "$S4" POST /api/v1/credit-reservations \
    '{"user_id":"rr","amount":2,"reservation_key":"rk-exp-commit"}')
XID=$(jget "${r#* }" id)
t_eq "credits: expiry: a 2 s reservation holds 2" "6 2" "$(acct rr)"
sleep 2.5
r=$(req "$S1" POST "/api/v1/credit-reservations/$XID/commit")
t_match "credits: expiry: commit after expiry: 409 RESERVATION_EXPIRED" \
    '^409 .*RESERVATION_EXPIRED' "$r"
t_eq "credits: expiry: ... nothing debited, credits back" "6 0" "$(acct rr)"
r=$(req "$S1" POST "/api/v1/credit-reservations/$XID/release")
t_match "credits: expiry: release after expiry: 409 RESERVATION_EXPIRED" \
    '^409 .*RESERVATION_EXPIRED' "$r"
# The reconcile worker returns them without any call. The stack's own
# reconcile loop may get there first: then try again with a new one.
ok=""
for attempt in 1 2 3; do
	r=$(req "$S4" POST /api/v1/credit-reservations \
	    "{\"user_id\":\"rr\",\"amount\":3,\"reservation_key\":\"rk-exp-$attempt\"}")
	YID=$(jget "${r#* }" id)
	sleep 2.5
	[ "$(t_sql "SELECT state FROM credit_reservations
	    WHERE org_id = '$ORG' AND id = '${YID:-00000000-0000-0000-0000-000000000000}'")" = \
	    pending ] || continue
	[ "$(acct rr)" = "6 3" ] || continue
	# This slot may have run already: this test owns the current one.
	t_sql "DELETE FROM periodic_runs WHERE job = 'reconcile'
	    AND slot > now() - interval '2 min'" >/dev/null
	"$BW_BUILD/bulwark-reconcile" -c "$CFG" >"$TMP/reconcile.log" 2>&1 ||
	    continue
	ok=yes
	break
done
t_eq "credits: expiry: an expired reservation was pending until the run" \
    "yes" "$ok"
t_eq "credits: expiry: after bulwark-reconcile it is expired" "expired" \
    "$(t_sql "SELECT state FROM credit_reservations WHERE org_id = '$ORG'
    AND id = '${YID:-00000000-0000-0000-0000-000000000000}'")"
t_eq "credits: expiry: ... and its credits returned" "6 0" "$(acct rr)"
r=$(req "$S1" POST "/api/v1/credit-reservations/$YID/commit")
t_match "credits: expiry: commit after the worker expired it: 409" \
    '^409 .*RESERVATION_EXPIRED' "$r"

# --- Partial capture (credit_capture.c, sql/0026). ----------------------
grant pc 10 "test:pc"
r=$(req "$S1" POST /api/v1/credit-reservations \
    '{"user_id":"pc","amount":8,"reservation_key":"rk-part"}')
PID=$(jget "${r#* }" id)
cap() {
	t_ctl credits capture --org "$ORG" --reservation "$PID" "$@" 2>/dev/null
}
t_eq "credits: capture 3 of 8 under key b0: applied" \
    '{"applied":true,"outcome":"ok"}' "$(cap --key b0 --capture 3)"
t_eq "credits: ... 3 debited, 5 still reserved" "7 5" "$(acct pc)"
t_eq "credits: the same key again: nothing changes" \
    '{"applied":false,"outcome":"ok"} 7 5' "$(cap --key b0 --capture 3) $(acct pc)"
t_eq "credits: the same key with another amount: wrong_state" \
    '{"applied":false,"outcome":"wrong_state"} 7 5' \
    "$(cap --key b0 --capture 2) $(acct pc)"
# 10 concurrent parts of 1 under 10 keys, and each key 3 times: 5 fit.
# (wait for these only: the masters run in the background too.)
pids=()
for k in 1 2 3 4 5 6 7 8 9 10; do
	for j in 1 2 3; do
		cap --key "c$k" --capture 1 >"$TMP/cap.$k.$j" &
		pids+=($!)
	done
done
wait "${pids[@]}"
t_eq "credits: 30 concurrent parts (10 keys x 3) of 1: 5 applied" 5 \
    "$(cat "$TMP"/cap.* | grep -c '"applied":true')"
t_eq "credits: ... the 5 others insufficient" 15 \
    "$(cat "$TMP"/cap.* | grep -c insufficient)"
t_eq "credits: ... 8 debited in all, nothing left reserved" "2 0" "$(acct pc)"
r=$(req "$S1" POST "/api/v1/credit-reservations/$PID/release")
t_match "credits: release of a fully captured reservation: 200 released" \
    '^200 .*"state":"released".*"captured":8' "$r"
r=$(req "$S1" POST /api/v1/credit-reservations \
    '{"user_id":"pc","amount":2,"reservation_key":"rk-part2"}')
PID=$(jget "${r#* }" id)
t_eq "credits: capture 1, return 0 of 2; then commit is refused" \
    '{"applied":true,"outcome":"ok"}' "$(cap --key d0 --capture 1)"
r=$(req "$S1" POST "/api/v1/credit-reservations/$PID/commit")
t_match "credits: ... commit of a partly captured reservation: 409" \
    '^409 .*INVALID_STATE' "$r"
t_eq "credits: give back 1 with no capture: applied, 1 debited, 0 reserved" \
    '{"applied":true,"outcome":"ok"} 1 0' \
    "$(cap --key d1 --return 1) $(acct pc)"
t_eq "credits: ledger check knows captures: clean" "0" \
    "$(t_ctl ledger check --org "$ORG" >/dev/null 2>&1; echo $?)"
t_sql "UPDATE credit_captures SET captured = captured + 1
    WHERE org_id = '$ORG' AND capture_key = 'd0'" >/dev/null
out=$(t_ctl ledger check --org "$ORG" 2>/dev/null)
t_match "credits: ledger check: a capture off by one is named" \
    '"problem":"capture_parts_mismatch".*"problem":"capture_transfer_mismatch"' \
    "$out"
t_sql "UPDATE credit_captures SET captured = captured - 1
    WHERE org_id = '$ORG' AND capture_key = 'd0'" >/dev/null

# --- Validation and account reads. ---------------------------------------
r=$(req "$S1" POST /api/v1/bookings '{"user_id":"","class_id":"c","credits":1}')
t_match "credits: empty user_id: 400 VALIDATION_FAILED" \
    '^400 .*VALIDATION_FAILED.*user_id' "$r"
r=$(req "$S1" POST /api/v1/bookings \
    "{\"user_id\":\"$(head -c 129 /dev/zero | tr '\0' u)\",\"class_id\":\"c\",\"credits\":1}")
t_match "credits: 129-character user_id: 400" '^400 .*user_id' "$r"
r=$(req "$S1" POST /api/v1/bookings '{"user_id":"dc","class_id":"c","credits":0}')
t_match "credits: 0 credits: 400" '^400 .*credits' "$r"
r=$(req "$S1" POST /api/v1/bookings '{"user_id":"dc",')
t_match "credits: broken JSON: 400 INVALID_JSON" '^400 .*INVALID_JSON' "$r"
r=$(req "$S1" GET /api/v1/accounts/rr)
t_match "credits: account: balance, reserved, available" \
    '^200 \{"user_id":"rr","balance":6,"reserved":0,"available":6\}' "$r"
r=$(req "$S1" GET /api/v1/accounts/rr "" "$KEY2")
t_match "credits: another org's key sees its own (empty) account" \
    '^200 .*"balance":0' "$r"

# --- Ledger check. ----------------------------------------------------------
out=$(t_ctl ledger check --org "$ORG" 2>/dev/null)
rc=$?
t_eq "credits: ledger check clean after everything" "0 true" \
    "$rc $(jget "$out" clean)"
t_sql "UPDATE credit_accounts SET balance = balance + 1
    WHERE org_id = '$ORG' AND kind = 'user' AND name = 'rr'" >/dev/null
out=$(t_ctl ledger check --org "$ORG" 2>/dev/null)
rc=$?
t_eq "credits: ledger check: a corrupted balance exits 1" "1" "$rc"
t_match "credits: ledger check: ... and names the account" \
    '"problem":"balance_mismatch".*"name":"rr","balance":7,"expected_balance":6' \
    "$out"
t_match "credits: ledger check: ... and the org sum" \
    '"problem":"org_sum_nonzero"' "$out"
t_sql "UPDATE credit_accounts SET balance = balance - 1
    WHERE org_id = '$ORG' AND kind = 'user' AND name = 'rr'" >/dev/null
t_ctl ledger check --org "$ORG" >/dev/null 2>&1
t_eq "credits: ledger check: clean again once restored" "0" "$?"

t_done
