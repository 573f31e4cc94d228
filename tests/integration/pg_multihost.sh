#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# database_url as a libpq multi-host URL, against real servers: a streaming
# standby of the stack's PostgreSQL (pg_basebackup -R) on a free port in
# this script's temp dir, and a port nobody listens on.
#   - host list whose first host is down: bulwarkctl connects to the next;
#   - standby listed first: with target_session_attrs=read-write a write
#     lands on the primary; without it the same URL reaches the standby
#     and the write is refused (so the standby really was tried first);
#     the keyword form (host=a,b port=x,y) as well;
#   - a failover under a running bulwark-fcgi: its children hold
#     connections to the primary; the standby is promoted and those
#     connections are terminated (what the old primary's death does to
#     them). The next writes reconnect to the new primary - the first host
#     of the list, read-write now - without restarting bulwark-fcgi, and
#     land there, not on the old primary.
# About 20 s.
. "${BW_TOP:?}/tests/lib/common.sh"

PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
PGP=${DATABASE_URL##*:}
PGP=${PGP%%/*}
SFX="$$-$(date +%s)"
PT=$(t_pg_tmp)
S=$PT/standby
FPID=

as_pg() {
	if [ "$(id -u)" = 0 ]; then
		(cd / && runuser -u postgres -- "$@")
	else
		(cd / && "$@")
	fi
}
cleanup() {
	[ -n "$FPID" ] && kill -TERM "$FPID" 2>/dev/null && sleep 0.5
	[ -n "$FPID" ] && kill -9 "$FPID" 2>/dev/null
	as_pg "$PGBIN/pg_ctl" -D "$S" -m immediate stop >/dev/null 2>&1
}
t_on_exit cleanup

read -r DEAD SBY < <(python3 -c '
import socket
ss = [socket.socket() for _ in range(2)]
for s in ss:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))')

# --- a streaming standby of the stack's database ----------------------
mkdir -p "$S"
chmod 700 "$S"
[ "$(id -u)" = 0 ] && chown postgres "$S" "$PT"
as_pg "$PGBIN/pg_basebackup" -h 127.0.0.1 -p "$PGP" -U postgres -D "$S" \
    -R -X stream -c fast >"$TMP/basebackup.log" 2>&1
as_pg "$PGBIN/pg_ctl" -D "$S" -l "$PT/standby.log" -w -t 30 \
    -o "-p $SBY -k $S -c listen_addresses=127.0.0.1 -c hot_standby=on" \
    start >/dev/null 2>&1
t_eq "a streaming standby runs on port $SBY" t \
    "$(psql -h 127.0.0.1 -p "$SBY" -U postgres -d bulwark -qAtX \
    -c 'SELECT pg_is_in_recovery()' 2>/dev/null)"

# ctl URL ARGS...: bulwarkctl with database_url URL (db_connect's keywords
# and the URL together, as every process uses them).
ctl() {
	local u=$1
	shift
	BULWARK_DATABASE_URL=$u bulwarkctl -c "$BW_CONFIG" "$@"
}
W=bulwark_worker
newest_org() {
	psql -h 127.0.0.1 -p "$1" -U postgres -d bulwark -qAtX \
	    -c "SELECT count(*) FROM orgs WHERE name = '$2'"
}

# --- first host down -------------------------------------------------------
U="postgresql://$W@127.0.0.1:$DEAD,127.0.0.1:$PGP/bulwark"
t0=$(date +%s%3N)
id=$(ctl "$U" org create --name "mh1-$SFX" --tier pro 2>"$TMP/mh1.err" |
    jq -r .id)
t1=$(date +%s%3N)
t_match "first host down: the second one took the write ($((t1 - t0)) ms)" \
    '^[0-9a-f-]{36}$' "$id"

# --- a standby first -------------------------------------------------------
U="postgresql://$W@127.0.0.1:$SBY,127.0.0.1:$PGP/bulwark"
ctl "$U" org create --name "mh2-$SFX" --tier pro >"$TMP/mh2.out" \
    2>"$TMP/mh2.err"
t_check "no target_session_attrs: the standby (first) took the session and refused the write" \
    grep -q 'read-only transaction' "$TMP/mh2.err"
id=$(ctl "$U?target_session_attrs=read-write" org create \
    --name "mh3-$SFX" --tier pro 2>"$TMP/mh3.err" | jq -r .id)
t_match "target_session_attrs=read-write: the standby skipped, the write on the primary" \
    '^[0-9a-f-]{36}$' "$id"
K="host=127.0.0.1,127.0.0.1 port=$SBY,$PGP dbname=bulwark user=$W"
K="$K target_session_attrs=read-write"
id=$(ctl "$K" org create --name "mh4-$SFX" --tier pro 2>"$TMP/mh4.err" |
    jq -r .id)
t_match "keyword form host=a,b port=x,y: the same" '^[0-9a-f-]{36}$' "$id"

# --- a failover under a running bulwark-fcgi -------------------------------
ORG=$(t_ctl org create --name "mhf-$SFX" --tier pro | jq -r .id)
KEY=$(t_ctl key create --org "$ORG" --role owner | jq -r .key)
# Wait until the standby has the org and the key.
for _ in $(seq 100); do
	[ "$(psql -h 127.0.0.1 -p "$SBY" -U postgres -d bulwark -qAtX \
	    -c "SELECT count(*) FROM orgs WHERE id = '$ORG'")" = 1 ] && break
	sleep 0.1
done
sed -e "s|^fcgi_socket = .*|fcgi_socket = $TMP/fcgi.sock|" \
    -e "s|^pid_file = .*|pid_file = $TMP/fcgi.pid|" \
    -e "s|^fcgi_children = .*|fcgi_children = 2|" \
    "$BW_CONFIG" >"$TMP/fcgi.conf"
APPURL="postgresql://bulwark_app@127.0.0.1:$SBY,127.0.0.1:$PGP/bulwark"
APPURL="$APPURL?target_session_attrs=read-write&application_name=mh-fcgi"
BULWARK_DATABASE_URL=$APPURL BULWARK_MONITOR_DATABASE_URL=$APPURL \
    BULWARK_FCGI_CHAT_CHILDREN=1 \
    "$BW_BUILD/bulwark-fcgi" -c "$TMP/fcgi.conf" >>"$TMP/fcgi.log" 2>&1 &
FPID=$!
for _ in $(seq 100); do [ -S "$TMP/fcgi.sock" ] && break; sleep 0.1; done

# optout N: POST /api/v1/opt-outs of +6680000000N through both children.
optout() {
	t_freq --socket "$TMP/fcgi.sock" --method POST --path /api/v1/opt-outs \
	    --header "Authorization: Bearer $KEY" \
	    --body "{\"phone\":\"+6680000000$1\"}" --timeout 30 | cut -d' ' -f2
}
count_on() {
	psql -h 127.0.0.1 -p "$1" -U postgres -d bulwark -qAtX \
	    -c "SELECT count(*) FROM sms_opt_outs WHERE org_id = '$ORG'"
}
b1=$(optout 1)
b2=$(optout 2)
t_eq "before: two writes through bulwark-fcgi" "201 201" "$b1 $b2"
t_eq "before: they are on the primary (port $PGP)" 2 "$(count_on "$PGP")"

# The standby is asynchronous: wait until it has replayed the two writes
# (else the promotion may lose the last one, and the count below with it).
for _ in $(seq 100); do
	[ "$(count_on "$SBY")" = 2 ] && break
	sleep 0.1
done
# The failover: the standby promoted; the old primary's sessions of this
# bulwark-fcgi end (as its death would end them). The old primary stays up
# (it is the stack's database), so a write that went there would show.
as_pg "$PGBIN/pg_ctl" -D "$S" -w promote >/dev/null 2>&1
t_eq "failover: the standby is a primary now" f \
    "$(psql -h 127.0.0.1 -p "$SBY" -U postgres -d bulwark -qAtX \
    -c 'SELECT pg_is_in_recovery()')"
n=$(psql "$DATABASE_URL" -qAtX -c "SELECT count(pg_terminate_backend(pid))
    FROM pg_stat_activity WHERE application_name = 'mh-fcgi'")
t_ge "failover: this bulwark-fcgi's sessions on the old primary ended ($n)" \
    1 "$n"
codes=
for n in 3 4 5 6; do codes="$codes $(optout "$n")"; done
echo "# after the failover:$codes"
ok=$(printf '%s\n' $codes | grep -c '^20[01]$')
t_ge "after: writes succeed again, bulwark-fcgi not restarted ($ok of 4)" 3 \
    "$ok"
t_check "after: the same bulwark-fcgi master" kill -0 "$FPID"
t_eq "after: the writes landed on the new primary (port $SBY)" \
    $((2 + ok)) "$(count_on "$SBY")"
t_eq "after: none on the old primary" 2 "$(count_on "$PGP")"

t_done
