# SPDX-License-Identifier: MIT
# A "host" that can vanish, for the tests of dead peers
# (integration/vanished_host.sh, integration/periodic_fence.sh): a network
# namespace joined to this one by a veth pair on a private /30, and a
# PostgreSQL server of the script's own listening on this side of it with
# the server-side keepalives the script gives. Taking the namespace's end
# of the link down (t_in_netns "$NS" ip link set "$VB" down) sends nothing:
# no FIN, no RST. Needs root. Sourced after tests/lib/common.sh.

# t_netns_up NAME OCTET: the namespace bw<NAME><pid> and its veth pair
# (VA here, VB there) on the first /30 of 10.OCTET.N.0/24 no interface here
# uses (one OCTET per script, so that two lanes never meet). Sets NS VA VB
# SRV (this side) CLI (the namespace's); removed at exit. Returns ip's
# status.
t_netns_up() {
	local n=$(($$ % 250)) i
	NS=bw$1$$ VA=bw$1$$a VB=bw$1$$b
	t_on_exit _t_netns_down
	for i in $(seq 1 250); do
		ip -4 -o addr show | grep -q " 10\.$2\.$n\." || break
		n=$(((n + 1) % 250))
	done
	SRV=10.$2.$n.1 CLI=10.$2.$n.2
	ip netns add "$NS" &&
	    ip link add "$VA" type veth peer name "$VB" &&
	    ip link set "$VB" netns "$NS" &&
	    ip addr add "$SRV/30" dev "$VA" && ip link set "$VA" up &&
	    t_in_netns "$NS" ip addr add "$CLI/30" dev "$VB" &&
	    t_in_netns "$NS" ip link set "$VB" up &&
	    t_in_netns "$NS" ip link set lo up
}

# t_netns_pg NAME IDLE INTVL CNT UTO_MS: a fresh server in $PT/NAME (PT from
# t_pg_tmp) on a free port, listening on 127.0.0.1 and SRV, trusting CLI,
# with tcp_keepalives_idle/_interval/_count and tcp_user_timeout as given;
# its log is $PT/NAME.log. Sets PGBIN PT PGD PORT; stopped at exit.
# Returns pg_ctl's status.
t_netns_pg() {
	local o
	PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V |
	    tail -n 1)
	PT=$(t_pg_tmp)
	PGD=$PT/$1
	PORT=$(python3 -c '
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])')
	t_on_exit _t_netns_pg_stop
	mkdir -p "$PGD"
	chmod 700 "$PGD"
	chown postgres "$PGD" "$PT"
	_t_as_pg "$PGBIN/initdb" -D "$PGD" -U postgres --auth=trust \
	    --no-locale -E UTF8 --no-sync >"$TMP/initdb.log" 2>&1
	echo "host all all $CLI/32 trust" >>"$PGD/pg_hba.conf"
	# One line: pg_ctl hands -o to a shell.
	o="-p $PORT -c listen_addresses=127.0.0.1,$SRV"
	o="$o -c unix_socket_directories= -c shared_buffers=16MB -c fsync=off"
	o="$o -c tcp_keepalives_idle=$2 -c tcp_keepalives_interval=$3"
	o="$o -c tcp_keepalives_count=$4 -c tcp_user_timeout=$5"
	_t_as_pg "$PGBIN/pg_ctl" -D "$PGD" -l "$PT/$1.log" -w -t 30 -o "$o" \
	    start >/dev/null 2>&1
}

_t_as_pg() {
	(cd / && runuser -u postgres -- "$@")
}
_t_netns_pg_stop() {
	_t_as_pg "$PGBIN/pg_ctl" -D "$PGD" -m immediate stop >/dev/null 2>&1
	return 0
}
_t_netns_down() {
	ip netns del "$NS" 2>/dev/null
	ip link del "$VA" 2>/dev/null
	return 0
}
