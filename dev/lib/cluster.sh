# SPDX-License-Identifier: MIT
# shellcheck shell=bash
#
# The several-machines stack on loopback (docs/operations.md, "Several
# machines"): a 3-member etcd, 3 PostgreSQL 15 nodes under Patroni
# (synchronous_mode), 1 Redis master + 2 replicas watched by 3 Sentinels,
# two Bulwark hosts (each its own bulwark-fcgi, workers and nginx) and one
# set of simulators. Sourced by dev/cluster and tests/cluster/*.sh:
#
#	. "$BW_TOP/dev/lib/cluster.sh"
#	cluster_load "$BW_CLUSTER_RUN"
#	cluster_pg_primary; cluster_kill_host 1; ...
#
# Layout of the cluster run dir ($CRUN):
#	cluster.vars              what cluster_load reads back (ports)
#	pid/ log/                 etcdN, patroniN, redisN, sentinelN
#	etcd/eN  pg/nN  pg/patroniN.yml  redis/rN  redis/sN/sentinel.conf
#	sim/                      a stack.sh run dir holding only the simulators
#	h1/ h2/                   stack.sh run dirs, one per Bulwark host (its
#	                          own bulwark.conf, fcgi socket, nginx, workers)
# The hosts' configs are rendered by stack_write_config with the cluster's
# URLs put in: the libpq multi-host database_url (target_session_attrs=
# read-write) and, when the tree's config knows them, redis_sentinels +
# redis_master_name (else redis_url names the Redis master directly).
#
# Everything of stack.sh that works on "the" run dir ($RUN) is called in a
# subshell after cluster_ctx NAME has pointed RUN and the ports at h1, h2 or
# sim.

# shellcheck source-path=SCRIPTDIR source=stack.sh
. "$(dirname "${BASH_SOURCE[0]}")/stack.sh"

CLUSTER_PACKAGES=(patroni etcd-server etcd-client redis-sentinel
	python3-etcd python3-psycopg2)
CLUSTER_SCOPE=bulwark
CLUSTER_MASTER_NAME=bulwark
# Every periodic job's slot on the hosts (periodic_slot_s), and how often
# each host's timer loops start its oneshot: at least twice per slot.
CLUSTER_SLOT_S=${BW_CLUSTER_SLOT_S:-10}
CLUSTER_TICK_S=${BW_CLUSTER_TICK_S:-3}

# --- ports and variables -----------------------------------------------------

# cluster_free_ports BASE: the ports of every member from BASE, moving BASE
# up by 1000 until all are free (stack_free_ports' way).
cluster_free_ports() {
	local base=$1 try p busy
	for try in 0 1 2 3 4 5 6 7 8 9; do
		_cluster_ports_from "$base"
		busy=0
		for p in $(_cluster_all_ports); do
			if stack_port_busy "$p"; then busy=1; break; fi
		done
		[ "$busy" = 0 ] && return 0
		base=$((base + 1000))
	done
	stack_die "no free cluster ports from $1 on"
}

# Per member i (1..3): etcd client B+20+i, peer B+30+i; PostgreSQL B+431+i;
# Patroni REST B+800+i; Redis B+378+i; Sentinel B+390+i. Hosts: https
# B+443, B+444. Simulators: B+81..B+84 (stack.sh's SIM_PORT + 0..3).
_cluster_ports_from() {
	CLUSTER_BASE=$1
}
_cluster_port() { # KIND I
	case $1 in
	etcd) echo $((CLUSTER_BASE + 20 + $2)) ;;
	peer) echo $((CLUSTER_BASE + 30 + $2)) ;;
	pg) echo $((CLUSTER_BASE + 431 + $2)) ;;
	rest) echo $((CLUSTER_BASE + 800 + $2)) ;;
	redis) echo $((CLUSTER_BASE + 378 + $2)) ;;
	sentinel) echo $((CLUSTER_BASE + 390 + $2)) ;;
	https) echo $((CLUSTER_BASE + 442 + $2)) ;;
	sim) echo $((CLUSTER_BASE + 81)) ;;
	esac
}
_cluster_all_ports() {
	local k i
	for k in etcd peer pg rest redis sentinel; do
		for i in 1 2 3; do _cluster_port "$k" "$i"; done
	done
	_cluster_port https 1
	_cluster_port https 2
	for i in 0 1 2 3; do echo $(($(_cluster_port sim 0) + i)); done
}

# cluster_init CRUN BUILD: a new (or existing) cluster run dir; ports are
# chosen once and kept in cluster.vars.
cluster_init() {
	CRUN=$1 CBUILD=$2
	mkdir -p "$CRUN"
	chmod 755 "$CRUN"
	CRUN=$(cd "$CRUN" && pwd -P)
	mkdir -p "$CRUN/pid" "$CRUN/log" "$CRUN/etcd" "$CRUN/pg" "$CRUN/redis"
	if [ ! -f "$CRUN/cluster.vars" ]; then
		cluster_free_ports "${BW_CLUSTER_BASE:-$((12000 + (RANDOM % 8) * 1000))}"
		{
			printf 'CRUN=%q\nCBUILD=%q\n' "$CRUN" "$CBUILD"
			printf 'CLUSTER_BASE=%q\n' "$CLUSTER_BASE"
		} >"$CRUN/cluster.vars"
	fi
	cluster_load "$CRUN"
	_stack_as_pg test -x "$CRUN/pg" ||
	    stack_die "the postgres user cannot reach $CRUN/pg (use a run" \
	    "dir under /tmp: BW_CLUSTER_RUN)"
}

# cluster_load CRUN: the variables of a cluster made by cluster_init.
cluster_load() {
	[ -f "$1/cluster.vars" ] || stack_die "no cluster in $1"
	# shellcheck disable=SC1090
	. "$1/cluster.vars"
	local i hs=() ps=() ss=()
	for i in 1 2 3; do
		hs+=("127.0.0.1:$(_cluster_port pg "$i")")
		ss+=("127.0.0.1:$(_cluster_port sentinel "$i")")
		ps+=("127.0.0.1:$(_cluster_port etcd "$i")")
	done
	PG_HOSTS=$(IFS=,; echo "${hs[*]}")
	SENTINELS=$(IFS=,; echo "${ss[*]}")
	ETCD_HOSTS=$(IFS=,; echo "${ps[*]}")
	ETCD_ENDPOINTS=$(printf 'http://%s,' "${ps[@]}")
	ETCD_ENDPOINTS=${ETCD_ENDPOINTS%,}
	PGBIN=$(_stack_pgbin)
}

# cluster_url ROLE [DB]: the libpq multi-host URL that finds the primary.
cluster_url() {
	printf 'postgresql://%s@%s/%s?target_session_attrs=read-write\n' \
	    "$1" "$PG_HOSTS" "${2:-bulwark}"
}

# The tree's config knows the Sentinel keys and rds asks the sentinels
# (branch s-sentinel, issue 14).
cluster_has_sentinel_client() {
	grep -q '"redis_sentinels"' "$STACK_TOP/lib/core/config.c" &&
	    cat "$STACK_TOP"/lib/core/rds*.c | grep -q 'get-master-addr-by-name'
}

# cluster_ctx h1|h2|sim: points stack.sh's RUN and ports at that run dir
# (made at the first call) and the URLs at the cluster. Call in a subshell.
cluster_ctx() {
	local name=$1 https
	case $name in
	h1) https=$(_cluster_port https 1) ;;
	h2) https=$(_cluster_port https 2) ;;
	*) https=$(_cluster_port https 1) ;;
	esac
	if [ -f "$CRUN/$name/stack.vars" ]; then
		stack_load "$CRUN/$name"
	else
		stack_init "$CRUN/$name" "$CBUILD" "$https" \
		    "$(_cluster_port pg 1)" "$(_cluster_port redis 1)" \
		    "$(_cluster_port sim 0)" test >/dev/null
	fi
	DATABASE_URL=$(cluster_url postgres)
	APP_DATABASE_URL=$(cluster_url bulwark_app)
	WORKER_DATABASE_URL=$(cluster_url bulwark_worker)
	MONITOR_DATABASE_URL=$(cluster_url bulwark_monitor)
	REDIS_URL=redis://$(cluster_redis_master)/0
	# The chat pool: the cap is global (15), two hosts share it.
	: "${BW_FCGI_CHAT_CHILDREN:=16}"
	# The tier's load generators all come from 127.0.0.1: nginx's per-IP
	# limit (50r/s) would answer them 429.
	: "${BW_NGINX_RATE:=1000r/s}" "${BW_NGINX_BURST:=1000}"
	export BW_FCGI_CHAT_CHILDREN BW_NGINX_RATE BW_NGINX_BURST
	# Periodic jobs: slots of periodic_slot_s (_cluster_write_config),
	# every host's timers a few times per slot, so that a test sees
	# several slots go by, and a host's death, within a minute.
	local w i
	for i in "${!STACK_WORKERS[@]}"; do
		w=${STACK_WORKERS[$i]}
		case $w in *" every:"*)
			STACK_WORKERS[i]="${w%% *} every:$CLUSTER_TICK_S ${w##* }" ;;
		esac
	done
}

# --- processes of the cluster run dir -------------------------------------------

# Runs stack.sh's process helpers on the cluster run dir.
_cluster_on_crun() { (RUN=$CRUN; "$@"); }
cluster_pid() { _cluster_on_crun stack_pid "$1"; }

# _cluster_bg_pg NAME CMD...: as _stack_bg, as the postgres user when root
# (setpriv execs: the pid file names the program itself).
_cluster_bg_pg() {
	local name=$1
	shift
	if [ "$(id -u)" = 0 ]; then
		# From /: postgres may not reach our directory (a checkout
		# under /root), and Patroni's multiprocessing chdirs to it.
		(cd / && _cluster_on_crun _stack_bg "$name" setpriv \
		    --reuid=postgres --regid=postgres --init-groups "$@")
	else
		_cluster_on_crun _stack_bg "$name" "$@"
	fi
}

# --- etcd ------------------------------------------------------------------------

cluster_start_etcd() {
	local i init=() d
	for i in 1 2 3; do
		init+=("e$i=http://127.0.0.1:$(_cluster_port peer "$i")")
	done
	for i in 1 2 3; do
		cluster_pid "etcd$i" >/dev/null && continue
		d=$CRUN/etcd/e$i
		mkdir -p "$d"
		chmod 700 "$d"
		# A 2-core box with other load: slower heartbeats than the
		# defaults (100/1000 ms) so a busy moment is no election.
		_cluster_on_crun _stack_bg "etcd$i" etcd --name "e$i" \
		    --data-dir "$d" \
		    --listen-client-urls "http://127.0.0.1:$(_cluster_port etcd "$i")" \
		    --advertise-client-urls "http://127.0.0.1:$(_cluster_port etcd "$i")" \
		    --listen-peer-urls "http://127.0.0.1:$(_cluster_port peer "$i")" \
		    --initial-advertise-peer-urls "http://127.0.0.1:$(_cluster_port peer "$i")" \
		    --initial-cluster "$(IFS=,; echo "${init[*]}")" \
		    --initial-cluster-state new \
		    --initial-cluster-token "bw-$CLUSTER_BASE" \
		    --heartbeat-interval 200 --election-timeout 2000 \
		    --quota-backend-bytes 268435456 --snapshot-count 5000 \
		    --log-level warn
	done
	(RUN=$CRUN; stack_wait etcd1 60 etcdctl --endpoints "$ETCD_ENDPOINTS" \
	    endpoint health --cluster)
}

# --- PostgreSQL under Patroni --------------------------------------------------------

# The Patroni config of node I (deploy/patroni.yml.in is the production
# template of the same settings).
_cluster_patroni_yml() {
	local i=$1
	cat <<EOF
# Rendered by dev/lib/cluster.sh; edits are lost.
scope: $CLUSTER_SCOPE
namespace: /bulwark-dev/
name: pg$i
log:
  level: WARNING
restapi:
  listen: 127.0.0.1:$(_cluster_port rest "$i")
  connect_address: 127.0.0.1:$(_cluster_port rest "$i")
etcd3:
  hosts: $ETCD_HOSTS
bootstrap:
  dcs:
    # Failover after ttl s without the leader's heartbeat; loop_wait +
    # 2 * retry_timeout <= ttl.
    ttl: ${BW_PATRONI_TTL:-10}
    loop_wait: 1
    retry_timeout: 4
    maximum_lag_on_failover: 1048576
    # An acknowledged commit is on two nodes; strict off: with no
    # standby left, the primary goes on alone (docs/operations.md).
    synchronous_mode: ${BW_PATRONI_SYNC:-true}
    synchronous_mode_strict: false
    synchronous_node_count: 1
    postgresql:
      use_pg_rewind: true
      use_slots: true
      parameters:
        max_connections: 200
        shared_buffers: 32MB
        work_mem: 2MB
        maintenance_work_mem: 16MB
        wal_level: replica
        hot_standby: "on"
        wal_log_hints: "on"
        max_wal_senders: 10
        max_replication_slots: 10
        wal_keep_size: 64MB
        max_wal_size: 256MB
        synchronous_commit: "on"
        # A process kill loses nothing the kernel holds; the dev cluster
        # is not about power loss (production: fsync on, the default).
        fsync: "off"
  initdb:
  - encoding: UTF8
  - no-locale
  - auth: trust
  # As fsync off: nothing here is about power loss (a faster bootstrap).
  - no-sync
postgresql:
  listen: 127.0.0.1:$(_cluster_port pg "$i")
  connect_address: 127.0.0.1:$(_cluster_port pg "$i")
  data_dir: $CRUN/pg/n$i
  bin_dir: $PGBIN
  pgpass: $CRUN/pg/pgpass$i
  authentication:
    superuser:
      username: postgres
    replication:
      username: postgres
    rewind:
      username: postgres
  parameters:
    unix_socket_directories: ''
    logging_collector: "on"
    log_min_messages: warning
    log_line_prefix: '%m [%p] %q%u@%d '
    # Dead clients end within 60 s, as in production (docs/operations.md).
    tcp_keepalives_idle: 30
    tcp_keepalives_interval: 10
    tcp_keepalives_count: 3
    tcp_user_timeout: 60000
  # The replicas' copies start at once (not after a spread checkpoint).
  basebackup:
  - checkpoint: fast
  pg_hba:
  - host all all 127.0.0.1/32 trust
  - host replication all 127.0.0.1/32 trust
  remove_data_directory_on_rewind_failure: true
  remove_data_directory_on_diverged_timelines: true
EOF
}

# cluster_start_patroni [I...]: the Patroni nodes (default all three), all
# at once (a new cluster: one wins the initialize key and bootstraps, the
# others clone it; started again: in synchronous mode only the last sync
# standby or leader may take the lead, so none may be waited for alone),
# then waits for a primary and every node up.
cluster_start_patroni() {
	local i nodes=("$@")
	[ ${#nodes[@]} -gt 0 ] || nodes=(1 2 3)
	[ "$(id -u)" = 0 ] && chown postgres:postgres "$CRUN/pg"
	chmod 755 "$CRUN/pg"
	for i in "${nodes[@]}"; do
		cluster_pid "patroni$i" >/dev/null && continue
		_cluster_patroni_yml "$i" >"$CRUN/pg/patroni$i.yml"
		chmod 644 "$CRUN/pg/patroni$i.yml"
		_cluster_bg_pg "patroni$i" patroni "$CRUN/pg/patroni$i.yml"
	done
	(RUN=$CRUN; stack_wait "patroni${nodes[0]}" 120 _cluster_has_primary)
	(RUN=$CRUN; stack_wait "patroni${nodes[0]}" 120 _cluster_pg_all_up)
}

_cluster_has_primary() { [ -n "$(cluster_pg_primary)" ]; }

# Every running node streams, one of them the sync standby (when sync).
_cluster_pg_all_up() {
	local i n=0
	for i in 1 2 3; do
		cluster_pid "patroni$i" >/dev/null || continue
		n=$((n + 1))
		pg_isready -q -h 127.0.0.1 -p "$(_cluster_port pg "$i")" -t 1 ||
		    return 1
	done
	[ "$n" -le 1 ] && return 0
	[ "${BW_PATRONI_SYNC:-true}" != true ] && return 0
	curl -sf "http://127.0.0.1:$(_cluster_port rest "$(cluster_pg_primary)")/cluster" |
	    jq -e '[.members[] | select(.role == "sync_standby")] | length >= 1' \
	    >/dev/null
}

# cluster_pg_primary: the node number (1..3) whose Patroni says primary.
cluster_pg_primary() {
	local i
	for i in 1 2 3; do
		if [ "$(curl -s -o /dev/null -m 1 -w '%{http_code}' \
		    "http://127.0.0.1:$(_cluster_port rest "$i")/primary")" = 200 ]
		then
			echo "$i"
			return 0
		fi
	done
	return 0
}

# cluster_pg_postmaster I: the pid of node I's postmaster.
cluster_pg_postmaster() {
	head -n 1 "$CRUN/pg/n$1/postmaster.pid" 2>/dev/null || true
}

# cluster_kill_pg I: the machine of node I dies: SIGKILL to its Patroni and
# to its postmaster's process group (the backends with it).
cluster_kill_pg() {
	local pid
	pid=$(cluster_pid "patroni$1") && { kill -KILL "$pid" || true; }
	pid=$(cluster_pg_postmaster "$1")
	[ -z "$pid" ] || _cluster_kill_pg_group "$pid"
	rm -f "$CRUN/pid/patroni$1.pid"
	return 0
}

# _cluster_kill_pg_group PID: SIGKILL to a postmaster and its backends. The
# backends are not in its process group (each calls setsid()): the
# postmaster is stopped, its children killed by parent pid, then itself.
# (A stopped child would never notice the postmaster's death and keep its
# shared memory: the node could not start again.)
_cluster_kill_pg_group() {
	kill -STOP "$1" 2>/dev/null || true
	pkill -KILL -P "$1" 2>/dev/null || true
	kill -KILL "$1" 2>/dev/null || true
}

_cluster_patronictl() {
	patronictl -c "$CRUN/pg/patroni1.yml" "$@"
}

# --- Redis and Sentinel -------------------------------------------------------------

cluster_start_redis() {
	local i d args
	for i in 1 2 3; do
		cluster_pid "redis$i" >/dev/null && continue
		d=$CRUN/redis/r$i
		mkdir -p "$d"
		args=(--port "$(_cluster_port redis "$i")" --bind 127.0.0.1
			--save '' --appendonly no --daemonize no --dir "$d"
			--logfile '' --maxmemory 64mb)
		# A fresh cluster: r1 is the master. A restarted member asks
		# the sentinels who the master is now.
		local m
		m=$(cluster_redis_master)
		if [ "$m" != "127.0.0.1:$(_cluster_port redis "$i")" ]; then
			args+=(--replicaof 127.0.0.1 "${m##*:}")
		fi
		_cluster_on_crun _stack_bg "redis$i" redis-server "${args[@]}"
		(RUN=$CRUN; stack_wait "redis$i" 20 redis-cli -p \
		    "$(_cluster_port redis "$i")" ping)
	done
}

cluster_start_sentinels() {
	local i d
	for i in 1 2 3; do
		cluster_pid "sentinel$i" >/dev/null && continue
		d=$CRUN/redis/s$i
		mkdir -p "$d"
		# Sentinel rewrites its config (the known replicas, the epoch).
		if [ ! -f "$d/sentinel.conf" ]; then
			cat >"$d/sentinel.conf" <<EOF
# Rendered by dev/lib/cluster.sh (deploy/sentinel.conf.in in production).
port $(_cluster_port sentinel "$i")
bind 127.0.0.1
daemonize no
dir $d
sentinel monitor $CLUSTER_MASTER_NAME 127.0.0.1 $(_cluster_port redis 1) 2
sentinel down-after-milliseconds $CLUSTER_MASTER_NAME ${BW_SENTINEL_DOWN_MS:-2000}
sentinel failover-timeout $CLUSTER_MASTER_NAME 10000
sentinel parallel-syncs $CLUSTER_MASTER_NAME 1
EOF
		fi
		_cluster_on_crun _stack_bg "sentinel$i" redis-server \
		    "$d/sentinel.conf" --sentinel
		(RUN=$CRUN; stack_wait "sentinel$i" 20 redis-cli -p \
		    "$(_cluster_port sentinel "$i")" ping)
	done
}

# cluster_redis_master: host:port of the master as the sentinels say (the
# first that answers), else r1 (a cluster not started yet).
cluster_redis_master() {
	local i out
	for i in 1 2 3; do
		out=$(redis-cli -p "$(_cluster_port sentinel "$i")" \
		    sentinel get-master-addr-by-name "$CLUSTER_MASTER_NAME" \
		    2>/dev/null | paste -sd: -)
		case $out in *:[0-9]*) echo "$out"; return 0 ;; esac
	done
	echo "127.0.0.1:$(_cluster_port redis 1)"
}

# cluster_redis_node HOST:PORT: the member number of that Redis.
cluster_redis_node() {
	local i
	for i in 1 2 3; do
		[ "${1##*:}" = "$(_cluster_port redis "$i")" ] && echo "$i"
	done
	return 0
}

cluster_kill_redis() {
	local pid
	pid=$(cluster_pid "redis$1") && { kill -KILL "$pid" || true; }
	rm -f "$CRUN/pid/redis$1.pid"
	return 0
}

# --- Bulwark hosts ------------------------------------------------------------------

# The config of the host in context: stack_write_config's, with the
# Sentinel keys added when the tree knows them.
_cluster_write_config() {
	stack_write_config
	# A request in flight when the primary dies leaves its
	# Idempotency-Key locked (the lock row replicated, the effect lost
	# with the primary): its retries get 409 IDEMPOTENCY_KEY_IN_USE until
	# idem_lock_timeout_s (default 60) lets one take it over.
	printf 'idem_lock_timeout_s = %s\n' "${BW_CLUSTER_IDEM_LOCK_S:-10}" |
	    tee -a "$FCGI_CONF" >>"$CONF"
	printf 'periodic_slot_s = %s\n' "$CLUSTER_SLOT_S" |
	    tee -a "$FCGI_CONF" >>"$CONF"
	if cluster_has_sentinel_client; then
		local f
		for f in "$CONF" "$FCGI_CONF"; do
			{
				echo "# The cluster (dev/lib/cluster.sh): Sentinel."
				echo "redis_sentinels = $SENTINELS"
				echo "redis_master_name = $CLUSTER_MASTER_NAME"
			} >>"$f"
		done
	fi
}

# The simulators, in their own run dir (they outlive a killed host); the
# hosts share their https certificate (sms-sim's callbacks trust it).
cluster_start_sims() {
	(
		local s p=() rc=0
		cluster_ctx sim
		_stack_cert
		stack_write_config
		# Independent: started together, each waited for.
		for s in llm-sim line-sim sms-sim tracker-sim; do
			"stack_start_$s" &
			p+=($!)
		done
		for s in "${p[@]}"; do wait "$s" || rc=1; done
		[ "$rc" = 0 ]
	) || exit 1
}

# cluster_start_host N: host N's bulwark-fcgi, workers and nginx; host 1
# also creates the database, roles, migrations and the demo org.
cluster_start_host() {
	_cluster_host_prepare "$1" && _cluster_host_run "$1" &&
	    _cluster_host_finish "$1"
}

# The three parts of cluster_start_host, so that cluster_start runs host
# 2's _prepare and _run beside host 1's _run and _finish: _prepare (its
# config; host 1: the database, the roles, the migrations, the ledger key,
# which host 2's _prepare copies), _run (its processes, until /health
# answers), _finish (its env file; host 1: the demo org, which host 2's
# _finish copies).
_cluster_host_prepare() {
	local n=$1
	(
		cluster_ctx "h$n"
		mkdir -p "$RUN/nginx"
		cp "$CRUN/sim/nginx/cert.pem" "$CRUN/sim/nginx/key.pem" \
		    "$RUN/nginx/"
		# One deployment: one ledger signing key.
		if [ "$n" != 1 ] && [ ! -s "$RUN/ledger.key" ]; then
			cp "$CRUN/h1/ledger.key" "$CRUN/h1/ledger.pub" "$RUN/"
		fi
		if [ "$n" = 1 ]; then
			_cluster_create_db
			stack_pg_prepare "$(cluster_url postgres postgres)" \
			    "$DATABASE_URL" migrate
		fi
		_cluster_write_config
		if [ "$n" = 1 ]; then stack_migrate; fi
	) || exit 1
}

_cluster_host_run() {
	(
		cluster_ctx "h$1"
		stack_start_bulwark-fcgi
		stack_start_workers
		stack_start_nginx
		stack_wait bulwark-fcgi 30 _stack_health
	) || exit 1
}

_cluster_host_finish() {
	local n=$1
	(
		cluster_ctx "h$n"
		if [ "$n" = 1 ]; then
			stack_demo
		else
			cp "$CRUN/h1/demo.json" "$RUN/demo.json"
			DEMO_ORG=$(jq -r .org_id "$RUN/demo.json")
			DEMO_KEY=$(jq -r .key "$RUN/demo.json")
		fi
		stack_write_env
		{
			printf 'export BW_CLUSTER_RUN=%q\n' "$CRUN"
			printf 'export BW_HOST=%q\n' "$n"
		} >>"$RUN/env"
	) || exit 1
}

# The database, on the primary, then waits until every running node has
# replayed it: libpq does not try the next host of a multi-host URL after
# a FATAL from the first ("database does not exist" on a standby that is
# behind, which synchronous_commit = on allows: flushed, not yet applied).
_cluster_create_db() {
	local u i
	u=$(cluster_url postgres postgres)
	[ -n "$(psql "$u" -qAtX -c \
	    "SELECT 1 FROM pg_database WHERE datname = 'bulwark'")" ] ||
	    psql "$u" -qAtX -c 'CREATE DATABASE bulwark' >/dev/null ||
	    stack_die "createdb bulwark failed"
	for i in 1 2 3; do
		cluster_pid "patroni$i" >/dev/null || continue
		(RUN=$CRUN; stack_wait "patroni$i" 30 psql -qAtX -c 'SELECT 1' \
		    "postgresql://postgres@127.0.0.1:$(_cluster_port pg "$i")/bulwark")
	done
}

# cluster_kill_host N: host N's machine dies: SIGKILL to the process group
# of its nginx, bulwark-fcgi (master and children) and every worker.
cluster_kill_host() {
	local f pid
	for f in "$CRUN/h$1"/pid/*.pid; do
		[ -e "$f" ] || continue
		read -r pid <"$f" || continue
		case $pid in '' | *[!0-9]*) continue ;; esac
		kill -KILL -- "-$pid" 2>/dev/null ||
		    kill -KILL "$pid" 2>/dev/null || true
		rm -f "$f"
	done
	return 0
}

cluster_stop_host() {
	(cluster_ctx "h$1"; stack_stop) || true
}

# --- the whole cluster ---------------------------------------------------------------

# _cluster_step NAME CMD...: runs CMD, then prints how long it took
# ("cluster up: NAME 1.2 s", in dev/test's results/cluster-up.out).
_cluster_step() {
	local name=$1 t0=$EPOCHREALTIME
	shift
	"$@" || return
	awk -v a="$t0" -v b="$EPOCHREALTIME" -v n="$name" \
	    'BEGIN { printf "cluster up: %-10s %5.1f s\n", n, b - a }'
}

# Patroni's bootstrap (initdb, the replicas' copies, a sync standby) is the
# longest step: Redis, the Sentinels and the simulators start meanwhile
# (they need no database); the hosts after both.
cluster_start() {
	local t0=$EPOCHREALTIME pg rc=0
	stack_somaxconn
	_cluster_step etcd cluster_start_etcd
	_cluster_step patroni cluster_start_patroni &
	pg=$!
	_cluster_step redis _cluster_start_redis_all || rc=1
	_cluster_step sims cluster_start_sims || rc=1
	wait "$pg" || rc=1
	[ "$rc" = 0 ] || stack_die "cluster start failed (above)"
	_cluster_step host1-db _cluster_host_prepare 1
	_cluster_step host2 eval '_cluster_host_prepare 2 && _cluster_host_run 2' &
	pg=$!
	_cluster_step host1 _cluster_host_run 1 || rc=1
	_cluster_step host1-demo _cluster_host_finish 1 || rc=1
	wait "$pg" || rc=1
	[ "$rc" = 0 ] || stack_die "a host did not start (above)"
	_cluster_host_finish 2
	awk -v a="$t0" -v b="$EPOCHREALTIME" \
	    'BEGIN { printf "cluster up: %-10s %5.1f s\n", "all", b - a }'
}

_cluster_start_redis_all() {
	# Started again, the Sentinels know the master (their rewritten
	# configs): before the Redis servers, which ask them whom to follow.
	# A new cluster: the servers first (r1 the master), then Sentinels.
	if [ -f "$CRUN/redis/s1/sentinel.conf" ]; then
		cluster_start_sentinels
		cluster_start_redis
	else
		cluster_start_redis
		cluster_start_sentinels
	fi
}

cluster_stop() {
	local i
	cluster_stop_host 2
	cluster_stop_host 1
	(cluster_ctx sim; stack_stop) || true
	for i in 1 2 3; do
		_cluster_on_crun stack_stop_one "sentinel$i"
		_cluster_on_crun stack_stop_one "redis$i"
	done
	# Patroni stops its PostgreSQL on TERM (replicas first, then the
	# primary: no needless failover).
	local p
	p=$(cluster_pg_primary)
	for i in 1 2 3; do
		[ "$i" = "$p" ] && continue
		_cluster_on_crun stack_stop_one "patroni$i"
	done
	[ -n "$p" ] && _cluster_on_crun stack_stop_one "patroni$p"
	for i in 1 2 3; do
		local pm
		pm=$(cluster_pg_postmaster "$i")
		if [ -n "$pm" ]; then _cluster_kill_pg_group "$pm"; fi
	done
	for i in 1 2 3; do _cluster_on_crun stack_stop_one "etcd$i"; done
}

cluster_status() {
	local i role m
	printf '%-10s %-8s %-22s %s\n' MEMBER PID ADDRESS ROLE
	for i in 1 2 3; do
		printf '%-10s %-8s %-22s %s\n' "etcd$i" \
		    "$(cluster_pid "etcd$i" || echo -)" \
		    "127.0.0.1:$(_cluster_port etcd "$i")" -
	done
	for i in 1 2 3; do
		role=$(curl -s -m 1 "http://127.0.0.1:$(_cluster_port rest "$i")/patroni" |
		    jq -r '.role // "-"' 2>/dev/null) || role=down
		printf '%-10s %-8s %-22s %s\n' "pg$i" \
		    "$(cluster_pid "patroni$i" || echo -)" \
		    "127.0.0.1:$(_cluster_port pg "$i")" "${role:-down}"
	done
	m=$(cluster_redis_master)
	for i in 1 2 3; do
		role=$(redis-cli -p "$(_cluster_port redis "$i")" role 2>/dev/null |
		    head -n 1)
		printf '%-10s %-8s %-22s %s\n' "redis$i" \
		    "$(cluster_pid "redis$i" || echo -)" \
		    "127.0.0.1:$(_cluster_port redis "$i")" "${role:-down}"
	done
	for i in 1 2 3; do
		printf '%-10s %-8s %-22s %s\n' "sentinel$i" \
		    "$(cluster_pid "sentinel$i" || echo -)" \
		    "127.0.0.1:$(_cluster_port sentinel "$i")" "master=$m"
	done
	for i in 1 2; do
		local pid
		pid=$(RUN=$CRUN/h$i; stack_pid bulwark-fcgi || echo -)
		printf '%-10s %-8s %-22s %s\n' "host$i" "$pid" \
		    "https://127.0.0.1:$(_cluster_port https "$i")" "$CRUN/h$i"
	done
	echo
	_cluster_patronictl list 2>/dev/null || true
	echo "sentinel get-master-addr-by-name $CLUSTER_MASTER_NAME: $m"
	if cluster_has_sentinel_client; then
		echo "hosts reach Redis through the sentinels ($SENTINELS)"
	else
		echo "hosts reach Redis at redis_url (this tree has no" \
		    "redis_sentinels yet): a Redis failover needs a host restart"
	fi
}
