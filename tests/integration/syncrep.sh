#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Money promises through a PostgreSQL failover and a synchronous standby
# that does not answer, on real servers: a streaming standby of the stack's
# database (pg_basebackup -R) in this script's temp dir, and private
# bulwark-fcgi masters (one child each) booking through the FastCGI socket
# with Idempotency-Key, as the contract's clients do.
#   - failover with a stranded key lock: a booking locks its key and hangs
#     behind a table lock on the primary; its host dies (kill -9), the
#     standby is promoted, the old primary's sessions end. The client's
#     retry on the new primary is served at once (not 409 for
#     idem_lock_timeout_s: the lock is from the old primary's timeline),
#     one booking, one debit; the dead holder's token can neither complete
#     nor release the row any more (the fencing the takeover relies on);
#   - synchronous_standby_names = 'ghost' on the new primary (a standby
#     that never comes): every commit waits; something cancels the waits
#     (pg_cancel_backend, as an operator would; PostgreSQL commits locally
#     and says so in a WARNING only). The booking is not answered 2xx, nor
#     its retry while still unreplicated, nor a write without a key; once
#     the standby "arrives" (the setting cleared) the retry with the same
#     key replays: one booking, one debit; a payment webhook likewise: its
#     redelivery (a duplicate, which writes nothing) is not answered 200
#     until the first delivery's commit is on the standby (db_need_sync);
#   - the same, but the primary dies with the unreplicated booking and a
#     standby without it is promoted: the booking was answered 503, and the
#     retry with the same key runs once on the new primary.
# About 30 s.
# shellcheck disable=SC2317 # trap handlers are called indirectly
# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
. "${BW_TOP:?}/tests/lib/common.sh"
t_need BW_BUILD DATABASE_URL BW_CONFIG

PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
PGP=${DATABASE_URL##*:}
PGP=${PGP%%/*}
SFX="$$-$(date +%s)"
PT=$(t_pg_tmp)
S=$PT/standby
S2=$PT/standby2
F1='' F2='' F3='' LOCKER='' CANCELER=''

as_pg() {
	if [ "$(id -u)" = 0 ]; then
		(cd / && runuser -u postgres -- "$@")
	else
		(cd / && "$@")
	fi
}
# stop PID: the bulwark-fcgi master PID and its children, by their ids.
stop() {
	local p kids
	[ -n "$1" ] || return 0
	kids=$(pgrep -P "$1" 2>/dev/null)
	kill -9 "$1" 2>/dev/null
	for p in $kids; do kill -9 "$p" 2>/dev/null; done
	return 0
}
cleanup() {
	[ -n "$CANCELER" ] && kill "$CANCELER" 2>/dev/null
	[ -n "$LOCKER" ] && kill "$LOCKER" 2>/dev/null
	stop "$F1"
	stop "$F2"
	stop "$F3"
	as_pg "$PGBIN/pg_ctl" -D "$S" -m immediate stop >/dev/null 2>&1
	as_pg "$PGBIN/pg_ctl" -D "$S2" -m immediate stop >/dev/null 2>&1
	wait 2>/dev/null
}
t_on_exit cleanup

SBY=$(python3 -c '
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])')
old() { psql "$DATABASE_URL" -qAtX -c "$1"; }
new() { psql -h 127.0.0.1 -p "$SBY" -U postgres -d bulwark -qAtX -c "$1"; }
# tag SQL: the command tag of SQL on the new primary ("UPDATE 0").
tag() { psql -h 127.0.0.1 -p "$SBY" -U postgres -d bulwark -AtX -c "$1"; }

ORG=$(t_ctl org create --name "sr-$SFX" --tier pro | jq -r .id)
KEY=$(t_ctl key create --org "$ORG" --role owner | jq -r .key)
USER="sr-u-$SFX"
t_ctl credits grant --org "$ORG" --user "$USER" --amount 100 \
    --anchor "sr-$SFX" >/dev/null
WHSEC="whsec_sr$SFX"
t_ctl webhook-secret set --org "$ORG" --provider stripe --secret "$WHSEC" \
    >/dev/null

# --- a streaming standby of the stack's database ----------------------
mkdir -p "$S"
chmod 700 "$S"
[ "$(id -u)" = 0 ] && chown postgres "$S" "$PT"
as_pg "$PGBIN/pg_basebackup" -h 127.0.0.1 -p "$PGP" -U postgres -D "$S" \
    -R -X stream -c fast >"$TMP/basebackup.log" 2>&1
# One line: pg_ctl hands -o to a shell.
O="-p $SBY -k $S -c listen_addresses=127.0.0.1 -c hot_standby=on"
O="$O -c shared_buffers=16MB -c synchronous_commit=on"
as_pg "$PGBIN/pg_ctl" -D "$S" -l "$PT/standby.log" -w -t 30 -o "$O" \
    start >/dev/null 2>&1
t_eq "a streaming standby runs on port $SBY" t \
    "$(new 'SELECT pg_is_in_recovery()' 2>/dev/null)"

# fcgi NAME PGPORT: a private bulwark-fcgi (1 child) on the app role of the
# server on PGPORT; echoes its pid. Idempotency locks live 300 s.
fcgi() {
	local u="postgresql://bulwark_app@127.0.0.1:$2/bulwark"
	u="$u?application_name=sr-$1"
	sed -e "s|^fcgi_socket = .*|fcgi_socket = $TMP/$1.sock|" \
	    -e "s|^pid_file = .*|pid_file = $TMP/$1.pid|" \
	    -e "s|^fcgi_children = .*|fcgi_children = 1|" \
	    -e "s|^db_statement_timeout_ms = .*|db_statement_timeout_ms = 30000|" \
	    -e "/^idem_lock_timeout_s/d" "$BW_CONFIG" >"$TMP/$1.conf"
	echo "idem_lock_timeout_s = 300" >>"$TMP/$1.conf"
	BULWARK_DATABASE_URL=$u BULWARK_MONITOR_DATABASE_URL=$u \
	    BULWARK_FCGI_CHAT_CHILDREN=1 \
	    "$BW_BUILD/bulwark-fcgi" -c "$TMP/$1.conf" >>"$TMP/$1.log" 2>&1 &
	echo $!
}
waitsock() {
	for _ in $(seq 100); do [ -S "$TMP/$1.sock" ] && return; sleep 0.1; done
}
# book NAME KEY CLASS: POST /api/v1/bookings through NAME; prints the status.
book() {
	t_freq --socket "$TMP/$1.sock" --method POST --path /api/v1/bookings \
	    --header "Authorization: Bearer $KEY" \
	    --header "Idempotency-Key: $2" \
	    --header 'Content-Type: application/json' \
	    --body "{\"user_id\":\"$USER\",\"class_id\":\"$3\",\"credits\":1}" \
	    --timeout 40 | tee -a "$TMP/answers" | cut -d' ' -f2
}
bookings_on() { # PORT CLASS
	psql -h 127.0.0.1 -p "$1" -U postgres -d bulwark -qAtX -c "SELECT count(*)
	    FROM bookings WHERE org_id = '$ORG' AND class_id = '$2'"
}
balance_on() { # PORT
	psql -h 127.0.0.1 -p "$1" -U postgres -d bulwark -qAtX -c "SELECT balance
	    FROM credit_accounts WHERE org_id = '$ORG' AND kind = 'user'
	    AND name = '$USER'"
}
khash() { printf "encode(sha256(convert_to('%s', 'UTF8')), 'hex')" "$1"; }
# stripe NAME BODY: the body as a signed Stripe delivery through NAME;
# prints the status and the body.
stripe() {
	python3 - "$TMP/$1.sock" "/api/v1/webhooks/stripe/$ORG" "$WHSEC" \
	    "$2" <<'EOF'
import hashlib, hmac, os, sys, time
sys.path.insert(0, os.path.join(os.environ["BW_TOP"], "tests", "lib"))
import fcgi_req
sock, path, sec, body = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
body = body.encode()
t = int(time.time())
mac = hmac.new(sec.encode(), b"%d." % t + body, hashlib.sha256).hexdigest()
p = {"REQUEST_METHOD": "POST", "DOCUMENT_URI": path, "REQUEST_URI": path,
     "SCRIPT_NAME": path, "QUERY_STRING": "", "SERVER_PROTOCOL": "HTTP/1.1",
     "REMOTE_ADDR": "127.0.0.1", "HTTPS": "on",
     "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(body)),
     "HTTP_STRIPE_SIGNATURE": "t=%d,v1=%s" % (t, mac)}
st, b = fcgi_req.one(sock, p, body, 40.0)
print(st, b.decode(errors="replace") if isinstance(b, bytes) else b)
EOF
}

# --- B: a key lock stranded by a failover ----------------------------------
K1="sr-fo-$SFX"
C1="sr-fo-$SFX"
F1=$(fcgi old "$PGP")
waitsock old
# The booking hangs behind this lock after it took its key (autocommit).
psql "$DATABASE_URL" -qAtX -c "BEGIN; LOCK TABLE bookings IN ACCESS
    EXCLUSIVE MODE; SELECT pg_sleep(60)" >/dev/null 2>&1 &
LOCKER=$!
for _ in $(seq 50); do
	[ "$(old "SELECT count(*) FROM pg_locks l JOIN pg_class c
	    ON c.oid = l.relation WHERE c.relname = 'bookings'
	    AND l.mode = 'AccessExclusiveLock' AND l.granted")" = 1 ] && break
	sleep 0.1
done
book old "$K1" "$C1" >"$TMP/b1.status" &
HOLDER=$!
for _ in $(seq 100); do
	[ "$(old "SELECT count(*) FROM pg_stat_activity
	    WHERE application_name = 'sr-old' AND wait_event_type = 'Lock'")" \
	    = 1 ] && break
	sleep 0.1
done
TOK=$(old "SELECT lock_token FROM idempotency_keys WHERE org_id = '$ORG'
    AND idem_key = $(khash "$K1") AND status IS NULL")
t_match "the booking holds its key and waits behind the table lock" \
    '^[0-9a-f-]{36}$' "$TOK"
for _ in $(seq 100); do
	[ "$(new "SELECT count(*) FROM idempotency_keys
	    WHERE lock_token = '$TOK'")" = 1 ] && break
	sleep 0.1
done
# Its host dies; the standby is promoted; the old primary's sessions end
# (as its death ends them). Nothing released the key.
stop "$F1"
F1=
as_pg "$PGBIN/pg_ctl" -D "$S" -w promote >/dev/null 2>&1
t_eq "failover: the standby is a primary now" f \
    "$(new 'SELECT pg_is_in_recovery()')"
old "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
    WHERE application_name = 'sr-old' OR pid = (SELECT pid FROM pg_locks l
    JOIN pg_class c ON c.oid = l.relation WHERE c.relname = 'bookings'
    AND l.mode = 'AccessExclusiveLock' AND l.granted LIMIT 1)" >/dev/null
wait "$HOLDER" 2>/dev/null
LOCKER=
t_eq "failover: the key is still locked on the new primary by the dead holder" \
    1 "$(new "SELECT count(*) FROM idempotency_keys WHERE lock_token = '$TOK'
    AND status IS NULL")"

F2=$(fcgi new "$SBY")
waitsock new
t0=$(date +%s%3N)
st=$(book new "$K1" "$C1")
t1=$(date +%s%3N)
t_eq "after the failover: the retry is served at once, not 409 ($((t1 - t0)) ms)" \
    201 "$st"
t_eq "after the failover: one booking on the new primary" 1 \
    "$(bookings_on "$SBY" "$C1")"
t_eq "after the failover: one debit (100 - 1)" 99 "$(balance_on "$SBY")"
# The dead holder, had it reconnected to the new primary: its token
# completes and releases nothing (idem.c's statements, by token).
t_eq "fencing: the old token completes no row" "UPDATE 0" \
    "$(tag "UPDATE idempotency_keys SET status = 201,
    completed_at = now() WHERE org_id = '$ORG' AND idem_key = $(khash "$K1")
    AND lock_token = '$TOK' AND status IS NULL" 2>&1 | tail -n 1)"
t_eq "fencing: the old token releases no row" "DELETE 0" \
    "$(tag "DELETE FROM idempotency_keys WHERE org_id = '$ORG'
    AND idem_key = $(khash "$K1") AND lock_token = '$TOK'
    AND status IS NULL" 2>&1 | tail -n 1)"
st=$(book new "$K1" "$C1")
t_eq "after the failover: another retry replays, still one booking" \
    "201 1" "$st $(bookings_on "$SBY" "$C1")"

# --- A: commits the synchronous standby never confirmed ---------------------
# Later (C) a standby of this primary that stops before the unreplicated
# commit, promoted when this primary dies: it must not have lost an
# acknowledged booking.
SB2=$(python3 -c '
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])')
mkdir -p "$S2"
chmod 700 "$S2"
[ "$(id -u)" = 0 ] && chown postgres "$S2"
as_pg "$PGBIN/pg_basebackup" -h 127.0.0.1 -p "$SBY" -U postgres -D "$S2" \
    -R -X stream -c fast >"$TMP/basebackup2.log" 2>&1
O2="-p $SB2 -k $S2 -c listen_addresses=127.0.0.1 -c hot_standby=on"
O2="$O2 -c shared_buffers=16MB -c synchronous_commit=on"
# ghost FILE: synchronous_standby_names = 'ghost' on the new primary, and
# a loop in the background (CANCELER) that cancels this bulwark-fcgi's
# waits for the standby (an operator's pg_cancel_backend), counting them
# in FILE.
ghost() {
	new "ALTER SYSTEM SET synchronous_standby_names = 'ghost'" >/dev/null
	new "SELECT pg_reload_conf()" >/dev/null
	sleep 0.5
	(
		while :; do
			new "SELECT count(pg_cancel_backend(pid))
			    FROM pg_stat_activity WHERE application_name = 'sr-new'
			    AND wait_event = 'SyncRep'" 2>/dev/null >>"$1"
			sleep 0.2
		done
	) &
	CANCELER=$!
}
ghost "$TMP/cancels"
K2="sr-sync-$SFX"
C2="sr-sync-$SFX"
st=$(book new "$K2" "$C2")
t_eq "unreplicated: the booking is not answered 2xx (503)" 503 "$st"
t_eq "unreplicated: it committed on the primary alone (1 booking there)" 1 \
    "$(bookings_on "$SBY" "$C2")"
st=$(book new "$K2" "$C2")
t_eq "unreplicated: the retry, still unreplicated, is not answered 2xx either" \
    503 "$st"
st=$(t_freq --socket "$TMP/new.sock" --method POST --path /api/v1/opt-outs \
    --header "Authorization: Bearer $KEY" \
    --body '{"phone":"+66800000099"}' --timeout 40 | cut -d' ' -f2)
t_eq "unreplicated: a write without a key is not answered 2xx either" 503 "$st"
# A payment webhook: the first delivery commits on the primary alone (503,
# so the provider redelivers); the redelivery finds the event recorded and
# writes nothing, so nothing of its own waits for the standby: it must
# still not be answered 2xx while the first one's commit is unreplicated.
WHU="sr-wh-$SFX"
WHEV=$(printf '{"id":"evt_sr_%s","type":"checkout.session.completed","data":{"object":{"id":"cs_sr_%s","object":"checkout.session","amount_total":1000,"currency":"usd","payment_status":"paid","payment_intent":"pi_sr_%s","metadata":{"user_id":"%s","credits":"3"}}}}' "$SFX" "$SFX" "$SFX" "$WHU")
wh_grants() { # the webhook user's balance and event rows on the new primary
	new "SELECT coalesce((SELECT balance FROM credit_accounts
	    WHERE org_id = '$ORG' AND kind = 'user' AND name = '$WHU'), 0),
	    (SELECT count(*) FROM webhook_events WHERE org_id = '$ORG'
	    AND event_id = 'evt_sr_$SFX')" | tr '|' ' '
}
st=$(stripe new "$WHEV" | cut -d' ' -f1)
t_eq "unreplicated: the first webhook delivery is not answered 2xx" 503 "$st"
t_eq "unreplicated: it committed on the primary alone (3 credits, 1 event)" \
    "3 1" "$(wh_grants)"
st=$(stripe new "$WHEV")
t_eq "unreplicated: its redelivery (a duplicate, no write) is not answered 2xx either" \
    503 "${st%% *}"
kill "$CANCELER" 2>/dev/null
wait "$CANCELER" 2>/dev/null
CANCELER=
nc=$(awk '{ s += $1 } END { print s + 0 }' "$TMP/cancels")
t_ge "unreplicated: waits for the standby were canceled ($nc)" 3 "$nc"
# The standby arrives (here: the setting cleared, as Patroni does when it
# gives up on a synchronous standby in non-strict mode).
new "ALTER SYSTEM RESET synchronous_standby_names" >/dev/null
new "SELECT pg_reload_conf()" >/dev/null
sleep 0.5
st=$(book new "$K2" "$C2")
t_eq "replicated: the retry with the same key is answered 201" 201 "$st"
st=$(book new "$K2" "$C2")
t_eq "replicated: and once more (a replay)" 201 "$st"
t_eq "replicated: exactly one booking for the key" 1 \
    "$(bookings_on "$SBY" "$C2")"
t_eq "replicated: exactly two debits in all (100 - 2), none doubled, none lost" \
    98 "$(balance_on "$SBY")"
t_eq "replicated: the key's row holds the 201" 201 \
    "$(new "SELECT status FROM idempotency_keys WHERE org_id = '$ORG'
    AND idem_key = $(khash "$K2")")"
st=$(stripe new "$WHEV")
t_match "replicated: the webhook's redelivery is answered 200 duplicate" \
    '^200 .*"duplicate"' "$st"
t_eq "replicated: the webhook granted once (3 credits, 1 event)" "3 1" \
    "$(wh_grants)"

# --- C: the primary dies with an unreplicated commit ------------------------
# The second standby has everything up to here, then stops (as a standby
# cut off by the network would stop receiving).
as_pg "$PGBIN/pg_ctl" -D "$S2" -l "$PT/standby2.log" -w -t 30 -o "$O2" \
    start >/dev/null 2>&1
for _ in $(seq 100); do
	[ "$(psql -h 127.0.0.1 -p "$SB2" -U postgres -d bulwark -qAtX -c "SELECT
	    count(*) FROM bookings WHERE org_id = '$ORG'" 2>/dev/null)" = 2 ] &&
	    break
	sleep 0.1
done
as_pg "$PGBIN/pg_ctl" -D "$S2" -m fast -w stop >/dev/null 2>&1
ghost "$TMP/cancels2"
K3="sr-lost-$SFX"
C3="sr-lost-$SFX"
st=$(book new "$K3" "$C3")
t_eq "primary lost: the unreplicated booking is not answered 2xx (503)" 503 \
    "$st"
t_eq "primary lost: it committed on the old primary alone" 1 \
    "$(bookings_on "$SBY" "$C3")"
kill "$CANCELER" 2>/dev/null
wait "$CANCELER" 2>/dev/null
CANCELER=
stop "$F2"
F2=
as_pg "$PGBIN/pg_ctl" -D "$S" -m immediate stop >/dev/null 2>&1
as_pg "$PGBIN/pg_ctl" -D "$S2" -l "$PT/standby2.log" -w -t 30 -o "$O2" \
    start >/dev/null 2>&1
as_pg "$PGBIN/pg_ctl" -D "$S2" -w promote >/dev/null 2>&1
t_eq "primary lost: the second standby is the primary now" "f 0" \
    "$(psql -h 127.0.0.1 -p "$SB2" -U postgres -d bulwark -qAtX -c "SELECT
    pg_is_in_recovery()") $(bookings_on "$SB2" "$C3")"
F3=$(fcgi third "$SB2")
waitsock third
st=$(book third "$K3" "$C3")
t_eq "primary lost: the retry with the same key runs on the new primary" 201 \
    "$st"
st=$(book third "$K3" "$C3")
t_eq "primary lost: and replays after that" 201 "$st"
t_eq "primary lost: exactly one booking for the key" 1 \
    "$(bookings_on "$SB2" "$C3")"
t_eq "primary lost: three debits in all (100 - 3), none doubled, none lost" \
    97 "$(balance_on "$SB2")"
echo "# answers: $(cut -d' ' -f2 "$TMP/answers" | tr '\n' ' ')"

t_done
