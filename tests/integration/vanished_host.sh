#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A host that vanishes without closing its connections (power loss, a
# partition: no FIN, no RST) must not keep its periodic job's advisory lock
# for hours: PostgreSQL's server-side TCP keepalives and tcp_user_timeout
# end its sessions (docs/operations.md, "Dead clients").
#   - the stack's PostgreSQL runs with the values documented there, and
#     deploy/patroni.yml.in and dev/lib/cluster.sh's Patroni config set the
#     same;
#   - a real blackhole: a network namespace (the "host") joined to this one
#     by a veth pair on private addresses (10.231.N.0/30), and a PostgreSQL
#     server of this script's own listening on the root side with the same
#     settings a tenth as long (idle 3 s, interval 1 s, count 3, user
#     timeout 6 s). Four sessions from the namespace: A, idle, holds the
#     maint job's periodic lock; B the same with the kernel's defaults (as
#     every session had without the settings); C holds a row lock in a
#     transaction and waits for a 4 MB answer; D the same without the user
#     timeout. Then the namespace's end of the link goes down, which sends
#     nothing, and the answers come when nobody takes them. From this
#     namespace A's lock must be free within the user timeout plus slack,
#     C's within the answer's delay plus the same, and B's and D's still
#     held after both bounds: the controls, which show that the cut sent no
#     FIN or RST and what the server did without the settings.
# Needs root (ip netns). About 17 s.
# shellcheck disable=SC2317 # trap handlers are called indirectly
# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
. "${BW_TOP:?}/tests/lib/common.sh"
# shellcheck source-path=SCRIPTDIR source=../lib/netns.sh
. "$BW_TOP/tests/lib/netns.sh"
t_need DATABASE_URL

# The documented values (docs/operations.md) and the test server's, a
# tenth of them. user timeout = idle + interval * count in both, so that a
# dead peer is dropped at the same moment whichever of the two fires.
IDLE=30 INTVL=10 CNT=3 UTO=60000
T_IDLE=3 T_INTVL=1 T_CNT=3 T_UTO=6000

# --- the configured values --------------------------------------------
# Through TCP (the stack's URL), where the values are the socket's own.
t_eq "vanished host: the stack's PostgreSQL has the documented keepalives" \
    "$IDLE|$INTVL|$CNT|$UTO" "$(t_sql "SELECT
    current_setting('tcp_keepalives_idle') || '|' ||
    current_setting('tcp_keepalives_interval') || '|' ||
    current_setting('tcp_keepalives_count') || '|' ||
    current_setting('tcp_user_timeout')")"
# yaml_values FILE: the four settings as set in a Patroni config.
yaml_values() {
	local k v out=''
	for k in tcp_keepalives_idle tcp_keepalives_interval \
	    tcp_keepalives_count tcp_user_timeout; do
		v=$(sed -n "s/^ *$k: *\"\{0,1\}\([0-9]*\)\"\{0,1\} *\$/\1/p" "$1")
		out="$out${out:+|}$v"
	done
	printf '%s\n' "$out"
}
t_eq "vanished host: deploy/patroni.yml.in sets the same" \
    "$IDLE|$INTVL|$CNT|$UTO" "$(yaml_values "$BW_TOP/deploy/patroni.yml.in")"
(
	# shellcheck source-path=SCRIPTDIR source=../../dev/lib/cluster.sh
	. "$BW_TOP/dev/lib/cluster.sh" &&
	    CLUSTER_BASE=0 ETCD_HOSTS=- CRUN=- PGBIN=- _cluster_patroni_yml 1
) >"$TMP/patroni1.yml" 2>/dev/null
t_eq "vanished host: dev/cluster's Patroni config sets the same" \
    "$IDLE|$INTVL|$CNT|$UTO" "$(yaml_values "$TMP/patroni1.yml")"

# --- the blackhole --------------------------------------------------------
if [ "$(id -u)" != 0 ]; then
	t_fail "vanished host: a network namespace" "needs root (ip netns)"
	t_done
fi
PIDS=()
cleanup() {
	local p
	exec 6>&- 7>&- 8>&- 9>&-
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	return 0
}
t_netns_up vh 231
rc=$?
t_on_exit cleanup
t_eq "vanished host: a namespace on a veth pair ($CLI -> $SRV)" 0 "$rc"
[ "$rc" = 0 ] || t_done
t_netns_pg vh "$T_IDLE" "$T_INTVL" "$T_CNT" "$T_UTO"
rc=$?
t_eq "vanished host: a server of its own on $SRV:$PORT" 0 "$rc"
[ "$rc" = 0 ] || t_done
here() {
	psql -qAtX "postgresql://postgres@127.0.0.1:$PORT/postgres" -c "$1"
}

# The maint job's lock, as lib/platform/periodic.c takes it:
# (DB_LOCK_PERIODIC, the 32-bit FNV-1a of the job's name, signed).
job=maint h=2166136261
for ((i = 0; i < ${#job}; i++)); do
	h=$((((h ^ $(printf '%d' "'${job:i:1}")) * 16777619) & 0xffffffff))
done
[ "$h" -ge 2147483648 ] && h=$((h - 4294967296))
LOCK_A="$((0x42570002)), $h" LOCK_B="$((0x42570002)), $((h ^ 1))"
here "CREATE TABLE rows (id int PRIMARY KEY); INSERT INTO rows VALUES (1), (2)"

# session NAME FD [PGOPTIONS]: a psql in the namespace reading SQL from
# $TMP/NAME.in, a FIFO this shell holds open on FD; its output goes to
# $TMP/NAME.out.
session() {
	mkfifo "$TMP/$1.in"
	# nsenter itself, not t_in_netns: $! must be psql's pid.
	nsenter --net="/run/netns/$NS" -- env PGOPTIONS="${3:-}" psql -qAtX \
	    "postgresql://postgres@$SRV:$PORT/postgres" <"$TMP/$1.in" \
	    >"$TMP/$1.out" 2>&1 &
	PIDS+=("$!")
	eval "exec $2>\"\$TMP/\$1.in\""
}
# wait_out NAME: waits up to 10 s for an answer (or an error) in
# $TMP/NAME.out.
wait_out() {
	local i
	for i in $(seq 1 100); do
		[ -s "$TMP/$1.out" ] && return 0
		sleep 0.1
	done
	return 1
}
KA="current_setting('tcp_keepalives_idle'),
    current_setting('tcp_keepalives_interval'),
    current_setting('tcp_keepalives_count'), current_setting('tcp_user_timeout')"
OS=$(sysctl -n net.ipv4.tcp_keepalive_time net.ipv4.tcp_keepalive_intvl \
    net.ipv4.tcp_keepalive_probes | paste -sd '|')

# A: idle, holding the maint job's lock, as the periodic lock session does
# while its job runs. B: the same with the kernel's defaults, as every
# session had without the settings. C: in a transaction holding a row
# lock, its answer in flight when the host vanishes. D: the same with the
# keepalives but no user timeout.
session a 6
session b 7 "-c tcp_keepalives_idle=0 -c tcp_keepalives_interval=0
    -c tcp_keepalives_count=0 -c tcp_user_timeout=0"
session c 8
session d 9 "-c tcp_user_timeout=0"
echo "SELECT 'A', pg_try_advisory_lock($LOCK_A), $KA;" >&6
echo "SELECT 'B', pg_try_advisory_lock($LOCK_B), $KA;" >&7
echo "BEGIN; SELECT 'C', id, $KA FROM rows WHERE id = 1 FOR UPDATE;" >&8
echo "BEGIN; SELECT 'D', id, $KA FROM rows WHERE id = 2 FOR UPDATE;" >&9
want_a="A|t|$T_IDLE|$T_INTVL|$T_CNT|$T_UTO" want_b="B|t|$OS|0"
want_c="C|1|$T_IDLE|$T_INTVL|$T_CNT|$T_UTO"
want_d="D|2|$T_IDLE|$T_INTVL|$T_CNT|0"
for s in a b c d; do wait_out $s; done
t_eq "vanished host: A holds the maint job's lock" "$want_a" \
    "$(cat "$TMP/a.out")"
t_eq "vanished host: B (the OS defaults) holds a lock" "$want_b" \
    "$(cat "$TMP/b.out")"
t_eq "vanished host: C holds a row lock" "$want_c" "$(cat "$TMP/c.out")"
t_eq "vanished host: D (no user timeout) holds a row lock" "$want_d" \
    "$(cat "$TMP/d.out")"
# free: "maint lock free|row 1 free|row 2 free|B's lock free", 1 or 0 each.
free() {
	here "SELECT pg_try_advisory_lock($LOCK_A)::int,
	    (SELECT count(*) FROM (SELECT FROM rows WHERE id = 1
	     FOR UPDATE SKIP LOCKED) r),
	    (SELECT count(*) FROM (SELECT FROM rows WHERE id = 2
	     FOR UPDATE SKIP LOCKED) r),
	    pg_try_advisory_lock($LOCK_B)::int"
}
t_eq "vanished host: all four locks are held, seen from here" "0|0|0|0" \
    "$(free)"

# C and D ask for an answer of 4 MB that comes 2 s later, when nobody
# takes it any more: the server's data stays unacknowledged, which no
# keepalive probes.
echo "SELECT pg_sleep(2), repeat('x', 4000000);" >&8
echo "SELECT pg_sleep(2), repeat('x', 4000000);" >&9
t_wait_active() {
	local i
	for i in $(seq 1 50); do
		[ "$(here "SELECT count(*) FROM pg_stat_activity
		    WHERE query LIKE 'SELECT pg_sleep(2)%'")" = 2 ] && return 0
		sleep 0.1
	done
	return 1
}
t_check "vanished host: C's and D's queries run" t_wait_active

# The host vanishes: its end of the link goes down. Nothing is sent (no
# FIN, no RST), nothing more arrives; the server's probes and
# retransmissions go nowhere.
t_in_netns "$NS" ip link set "$VB" down
cut=$(date +%s%N)
ms() { echo $((($(date +%s%N) - cut) / 1000000)); }
BOUND_A=$((T_UTO / 1000 + 4))	  # idle: the user timeout + slack
BOUND_C=$((2 + T_UTO / 1000 + 4)) # the answer's 2 s, the same
free_a='' free_c=''
while [ "$(ms)" -lt $((BOUND_C * 1000)) ]; do
	f=$(free)
	[ -z "$free_a" ] && [ "${f%%|*}" = 1 ] && free_a=$(ms)
	[ -z "$free_c" ] && [ "$(echo "$f" | cut -d'|' -f2)" = 1 ] &&
	    free_c=$(ms)
	[ -n "$free_a" ] && [ -n "$free_c" ] && break
	sleep 0.2
done
printf '# after the cut: the maint lock free at %s ms, row 1 at %s ms\n' \
    "${free_a:-never}" "${free_c:-never}"
t_le "vanished host: the maint lock is free within $BOUND_A s (ms)" \
    $((BOUND_A * 1000)) "${free_a:-never}"
t_le "vanished host: the row lock with an answer in flight is free within $BOUND_C s (ms)" \
    $((BOUND_C * 1000)) "${free_c:-never}"
# The kernel reports a timed-out connection with the last soft error it
# saw, when there is one: "No route to host" once the server's neighbour
# entry for the vanished address has failed (as on a LAN whose host lost
# power), else "Connection timed out".
log=$(cat "$PT/vh.log")
t_match "vanished host: the server logged the idle client's end" \
    'could not receive data from client: (Connection timed out|No route to host)' \
    "$log"
t_match "vanished host: the server logged the answer's client's end" \
    'could not send data to client: (Connection timed out|No route to host)' \
    "$log"
# The controls, still held after both bounds (their sessions would live
# for 2 h and for 15 min of retransmissions).
while [ "$(ms)" -lt $((BOUND_C * 1000)) ]; do sleep 0.2; done
f=$(free)
t_eq "vanished host: with the OS defaults the lock is still held after $BOUND_C s" \
    0 "${f##*|}"
t_eq "vanished host: without a user timeout the row lock is still held after $BOUND_C s" \
    0 "$(echo "$f" | cut -d'|' -f3)"
t_done
