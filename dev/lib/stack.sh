# SPDX-License-Identifier: MIT
# shellcheck shell=bash
#
# The development and test stack: install, build, start, stop. Sourced by
# dev/up, dev/down, dev/test and tests/lib/run-tier; chaos tests may source it
# too to restart one service:
#
#	. "$BW_TOP/dev/lib/stack.sh"
#	stack_load "$BW_RUN"
#	stack_stop_one redis; stack_start_one redis
#
# A stack lives in one run dir ($RUN): $RUN/pid/<name>.pid, $RUN/log/<name>.log,
# $RUN/bulwark.conf, $RUN/fcgi.conf (bulwark-fcgi's: no ledger_key_file),
# $RUN/ledger.key and $RUN/ledger.pub (the ledger's signing seed and public
# key), $RUN/env, $RUN/stack.vars (what stack_load reads back),
# $RUN/pg (PostgreSQL data, or a symlink to /var/lib/bulwark-dev/<hash>/pg
# when the unprivileged postgres user cannot reach $RUN), $RUN/redis,
# $RUN/nginx, $RUN/storage, $RUN/fcgi.sock, $RUN/sms.env (the SMS simulator's
# sms_base_url and sms_api_key_file, in config syntax; bulwark.conf carries
# them too, for bulwark-sms). Everything listens on loopback.
#
# Services: postgres, redis, llm-sim (if tools/sim/llm_sim.py exists),
# line-sim (SIM_PORT + 1), sms-sim (SIM_PORT + 2), tracker-sim (SIM_PORT + 3,
# the error tracker's issues API; its token in $RUN/tracker_token),
# bulwark-fcgi, the workers of STACK_WORKERS, nginx. Starting is idempotent:
# a service whose pid file names a live process of the right program is left
# running, except bulwark-fcgi and daemon workers, which are restarted when
# their binary changed since they started (a rebuilt tree is served at once);
# nginx is reloaded (SIGHUP) when its rendered config changed.

# Long-running and periodic workers, one line each:
#	"<name> every:<seconds> <program>"  oneshot run in a loop (timer-like)
#	"<name> daemon <program>"           long-running process
# <program> is looked up in the build dir and gets "-c <config>". A program
# that is not built yet is skipped with a warning.
STACK_WORKERS=(
	"maint-loop every:60 bulwark-maint"
	"cleanup-loop every:300 bulwark-cleanup"
	"reconcile-loop every:60 bulwark-reconcile"
	"ledger-loop every:300 bulwark-ledger"
	"chat daemon bulwark-chat"
	"export daemon bulwark-export"
	"sms daemon bulwark-sms"
	"errtrack daemon bulwark-errtrack"
	"retention-loop every:300 bulwark-retention"
)

# Debian packages: "a|b" means either satisfies (the first is installed).
STACK_PACKAGES=(
	build-essential autoconf automake libtool pkg-config ccache
	libfcgi-dev libfcgi-bin libpq-dev libhiredis-dev libjson-c-dev
	libcurl4-openssl-dev libssl-dev libcmocka-dev
	"nginx|nginx-light|nginx-full|nginx-extras|nginx-core"
	postgresql postgresql-client redis-server
	openssl ca-certificates curl jq python3 python3-cryptography procps psmisc
	iproute2
	wrk prometheus python3-yaml redis-tools
	clang-format cppcheck mandoc systemd
	chromium chromium-driver python3-selenium
)

STACK_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)

stack_say() { printf '%s\n' "$*" >&2; }
stack_die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# --- install ----------------------------------------------------------------

# Installs whatever of STACK_PACKAGES is missing; runs apt-get update only
# then. Installs nothing (and is fast: one dpkg-query) when all are present.
stack_install() {
	local want=() alt p ok have
	have=" $(dpkg-query -W -f='${Package}=${db:Status-Status} ' \
	    2>/dev/null | tr -s ' ') "
	for alt in "${STACK_PACKAGES[@]}"; do
		ok=0
		for p in ${alt//|/ }; do
			case $have in *" $p=installed "*) ok=1; break ;; esac
		done
		[ "$ok" = 1 ] || want+=("${alt%%|*}")
	done
	[ ${#want[@]} -eq 0 ] && return 0
	if [ "$(id -u)" != 0 ]; then
		stack_die "missing packages: ${want[*]} (run as root, or:" \
		    "apt-get install ${want[*]})"
	fi
	stack_say "installing: ${want[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q </dev/null || stack_die "apt-get update failed"
	apt-get install -y -q --no-install-recommends "${want[@]}" </dev/null ||
	    stack_die "apt-get install failed"
}

# --- build ------------------------------------------------------------------

# stack_build DIR [configure args...]: out-of-tree autotools build into DIR
# (relative to the top), with --enable-werror. autoreconf runs when configure
# or build-aux/ is missing or configure is older than configure.ac or
# Makefile.am; configure runs when DIR has no Makefile, configure is newer,
# or the arguments changed. Shows the errors and dies when make fails.
stack_build() {
	local dir=$1 args sig log
	shift
	case $dir in /*) ;; *) dir=$STACK_TOP/$dir ;; esac
	if [ ! -x "$STACK_TOP/configure" ] ||
	    [ ! -f "$STACK_TOP/build-aux/install-sh" ] ||
	    [ "$STACK_TOP/configure.ac" -nt "$STACK_TOP/configure" ] ||
	    [ "$STACK_TOP/Makefile.am" -nt "$STACK_TOP/configure" ]; then
		stack_say "autoreconf -fi"
		(cd "$STACK_TOP" && autoreconf -fi) ||
		    stack_die "autoreconf failed"
	fi
	mkdir -p "$dir"
	args="--enable-werror $*"
	# ccache, when installed (BW_NO_CCACHE=1: not): one cache for every
	# clone on the machine (paths made relative to the top, the build dir
	# not hashed), so a fresh clone rebuilds only what changed.
	local cc=()
	if [ -z "${BW_NO_CCACHE:-}" ] && command -v ccache >/dev/null; then
		if [ -z "${CCACHE_DIR:-}" ]; then
			CCACHE_DIR=$HOME/.cache/bulwark-ccache
			[ "$(id -u)" = 0 ] && CCACHE_DIR=/var/cache/bulwark-ccache
		fi
		export CCACHE_DIR CCACHE_BASEDIR=$STACK_TOP CCACHE_NOHASHDIR=1
		export CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-2G}
		cc=("CC=ccache ${CC:-gcc}")
		args="$args ${cc[0]}"
	fi
	sig=$(cat "$dir/.bw-configure-args" 2>/dev/null || true)
	if [ ! -f "$dir/Makefile" ] || [ ! -f "$dir/config.status" ] ||
	    [ "$STACK_TOP/configure" -nt "$dir/config.status" ] ||
	    [ "$sig" != "$args" ]; then
		stack_say "configure $args (in ${dir#"$STACK_TOP"/})"
		(cd "$dir" && "$STACK_TOP/configure" -q --enable-werror "$@" \
		    "${cc[@]}") ||
		    stack_die "configure failed (see $dir/config.log)"
		printf '%s\n' "$args" >"$dir/.bw-configure-args"
	fi
	log=$dir/bw-build.log
	stack_say "make -j$(nproc) (in ${dir#"$STACK_TOP"/})"
	if ! make -C "$dir" -j"$(nproc)" >"$log" 2>&1; then
		grep -E 'error|Error' "$log" | head -40 >&2 || true
		tail -n 40 "$log" >&2
		stack_die "build failed in $dir (full log: $log)"
	fi
}

# --- run dir, ports, variables ------------------------------------------------

# stack_init RUN BUILD HTTPS_PORT PG_PORT REDIS_PORT SIM_PORT [MODE]
# MODE is dev (dev/up) or test (dev/test: faster, unsafe PostgreSQL settings).
stack_init() {
	RUN=$1 BUILD=$2 HTTPS_PORT=$3 PG_PORT=$4 REDIS_PORT=$5 SIM_PORT=$6
	STACK_MODE=${7:-dev}
	mkdir -p "$RUN"
	chmod 755 "$RUN"
	RUN=$(cd "$RUN" && pwd -P)
	mkdir -p "$RUN/pid" "$RUN/log" "$RUN/redis" "$RUN/nginx/tmp" \
	    "$RUN/storage/exports" "$RUN/tmp"
	PGBIN=$(_stack_pgbin)
	_stack_pgdata
	{
		printf 'RUN=%q\n' "$RUN"
		printf 'BUILD=%q\n' "$BUILD"
		printf 'HTTPS_PORT=%q\nPG_PORT=%q\n' "$HTTPS_PORT" "$PG_PORT"
		printf 'REDIS_PORT=%q\nSIM_PORT=%q\n' "$REDIS_PORT" "$SIM_PORT"
		printf 'STACK_MODE=%q\nPGDATA=%q\n' "$STACK_MODE" "$PGDATA"
		printf 'PGBIN=%q\n' "$PGBIN"
	} >"$RUN/stack.vars"
	_stack_urls
}

# stack_load RUN: the variables of a stack made by stack_init.
stack_load() {
	[ -f "$1/stack.vars" ] || stack_die "no stack in $1"
	# shellcheck disable=SC1091
	. "$1/stack.vars"
	_stack_urls
}

_stack_urls() {
	CONF=$RUN/bulwark.conf
	FCGI_CONF=$RUN/fcgi.conf
	SOCKET=$RUN/fcgi.sock
	# The chat pool's: bulwark-fcgi derives it from fcgi_socket.
	CHAT_SOCKET=$RUN/fcgi-chat.sock
	BULWARK_URL=https://127.0.0.1:$HTTPS_PORT
	# The owner (migrations, tests' psql), the app role (bulwark-fcgi,
	# under row-level security) and the worker role (workers and
	# bulwarkctl, across orgs): docs/operations.md, "Database roles and
	# row-level security".
	DATABASE_URL=postgresql://postgres@127.0.0.1:$PG_PORT/bulwark
	APP_DATABASE_URL=postgresql://bulwark_app@127.0.0.1:$PG_PORT/bulwark
	WORKER_DATABASE_URL=postgresql://bulwark_worker@127.0.0.1:$PG_PORT/bulwark
	MONITOR_DATABASE_URL=postgresql://bulwark_monitor@127.0.0.1:$PG_PORT/bulwark
	REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0
	LLM_SIM_URL=http://127.0.0.1:$SIM_PORT
	LINE_SIM_URL=http://127.0.0.1:$((SIM_PORT + 1))
	SMS_SIM_URL=http://127.0.0.1:$((SIM_PORT + 2))
	TRACKER_SIM_URL=http://127.0.0.1:$((SIM_PORT + 3))
}

# stack_port_busy PORT: something listens on 127.0.0.1:PORT.
stack_port_busy() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# stack_check_ports: dies when a port of a service we have not started is
# taken by something else.
stack_check_ports() {
	local s
	for s in postgres:$PG_PORT redis:$REDIS_PORT llm-sim:$SIM_PORT \
	    nginx:$HTTPS_PORT; do
		stack_pid "${s%%:*}" >/dev/null && continue
		if stack_port_busy "${s#*:}"; then
			stack_die "port ${s#*:} (for ${s%%:*}) is in use by" \
			    "another program"
		fi
	done
}

# stack_free_ports BASE...: sets HTTPS_PORT PG_PORT REDIS_PORT SIM_PORT to
# BASE+{443,432,379,81}, moving BASE up by 1000 until all four are free.
stack_free_ports() {
	local base=$1 i
	for i in 0 1 2 3 4 5 6 7 8 9; do
		HTTPS_PORT=$((base + 443)) PG_PORT=$((base + 432))
		REDIS_PORT=$((base + 379)) SIM_PORT=$((base + 81))
		if ! stack_port_busy "$HTTPS_PORT" &&
		    ! stack_port_busy "$PG_PORT" &&
		    ! stack_port_busy "$REDIS_PORT" &&
		    ! stack_port_busy "$SIM_PORT"; then
			return 0
		fi
		base=$((base + 1000))
	done
	stack_die "no free ports from $1 on"
}

_stack_pgbin() {
	local d
	d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
	[ -x "$d/initdb" ] || stack_die "PostgreSQL server binaries not found"
	printf '%s\n' "$d"
}

# Runs a command as the postgres user when we are root, else as ourselves;
# from / so that an unreadable working directory does not matter.
_stack_as_pg() {
	if [ "$(id -u)" = 0 ]; then
		(cd / && runuser -u postgres -- "$@")
	else
		(cd / && "$@")
	fi
}

# Chooses PGDATA: $RUN/pg when the postgres user can reach it, else an
# external dir under /var/lib/bulwark-dev that $RUN/pg links to.
_stack_pgdata() {
	local ext
	if [ -L "$RUN/pg" ]; then
		PGDATA=$(readlink "$RUN/pg")
	elif [ -d "$RUN/pg" ] || _stack_as_pg test -x "$RUN"; then
		PGDATA=$RUN/pg
	else
		ext=/var/lib/bulwark-dev/$(printf '%s' "$RUN" |
		    sha256sum | cut -c1-12)
		mkdir -p "$ext"
		chmod 755 /var/lib/bulwark-dev "$ext"
		printf '%s\n' "$RUN" >"$ext/owner"
		ln -s "$ext/pg" "$RUN/pg"
		PGDATA=$ext/pg
		stack_say "postgres cannot reach $RUN; data in $PGDATA"
	fi
}

# --- processes ----------------------------------------------------------------

# stack_pid NAME: prints the pid of the live process of NAME (pid file plus a
# check that the process runs the expected program); fails otherwise.
stack_pid() {
	local f=$RUN/pid/$1.pid pid state cmd
	[ -r "$f" ] || return 1
	read -r pid <"$f" || return 1
	case $pid in '' | *[!0-9]*) return 1 ;; esac
	kill -0 "$pid" 2>/dev/null || return 1
	state=$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | cut -c1)
	[ "$state" != Z ] || return 1
	cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)
	case $1 in
	postgres) [[ $cmd == *postgres* ]] ;;
	redis) [[ $cmd == *redis-server* ]] ;;
	nginx) [[ $cmd == *nginx* ]] ;;
	llm-sim) [[ $cmd == *llm_sim* ]] ;;
	line-sim) [[ $cmd == *line_sim* ]] ;;
	sms-sim) [[ $cmd == *sms_sim* ]] ;;
	tracker-sim) [[ $cmd == *tracker_sim* ]] ;;
	*) [ -n "$cmd" ] ;;
	esac || return 1
	printf '%s\n' "$pid"
}

# _stack_alive NAME: the process of NAME's pid file runs (not a zombie).
_stack_alive() {
	local pid state
	read -r pid <"$RUN/pid/$1.pid" 2>/dev/null || return 1
	case $pid in '' | *[!0-9]*) return 1 ;; esac
	kill -0 "$pid" 2>/dev/null || return 1
	state=$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | cut -c1)
	[ -n "$state" ] && [ "$state" != Z ]
}

# _stack_bg NAME CMD...: starts CMD in its own session (so it outlives the
# caller and a ctrl-c at its terminal), output appended to the log.
_stack_bg() {
	local name=$1
	shift
	printf '=== %s start %s\n' "$(date -u +%FT%TZ)" "$*" \
	    >>"$RUN/log/$name.log"
	# fd 9 is dev/up's lock: not inherited by the services.
	setsid "$@" </dev/null >>"$RUN/log/$name.log" 2>&1 9>&- &
	printf '%s\n' "$!" >"$RUN/pid/$name.pid"
}

# _stack_fail NAME WHY: shows the tail of NAME's log, then dies.
_stack_fail() {
	local log=$RUN/log/$1.log
	[ "$1" = nginx ] && log=$RUN/log/nginx-error.log
	stack_say "--- tail of $log"
	tail -n 30 "$log" >&2 2>/dev/null || true
	stack_die "$1: $2"
}

# stack_wait NAME SECONDS CMD...: polls CMD until it succeeds; fails loudly
# after SECONDS or as soon as NAME's process is gone.
stack_wait() {
	local name=$1 secs=$2 i=0
	shift 2
	while ! "$@" >/dev/null 2>&1; do
		# Only liveness here: while a program is still exec'ing (a
		# pyenv shim execs three times) its cmdline can read empty.
		if [ -f "$RUN/pid/$name.pid" ] && ! _stack_alive "$name"; then
			_stack_fail "$name" "exited during start-up"
		fi
		i=$((i + 1))
		[ "$i" -le $((secs * 5)) ] ||
		    _stack_fail "$name" "not ready after ${secs}s"
		sleep 0.2
	done
}

_stack_pgid() {
	sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f3
}

_stack_gone() {
	local st
	kill -0 "$1" 2>/dev/null || return 0
	st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)
	[ "$st" = Z ]
}

# stack_stop_one NAME: sends NAME's stop signal (postgres INT = fast
# shutdown, bulwark-fcgi TERM to the master = drain, else TERM to the process
# group it leads), waits, then KILLs (the group) after a timeout.
stack_stop_one() {
	local name=$1 pid sig=TERM secs=15 grp="" i=0
	pid=$(stack_pid "$name") || { rm -f "$RUN/pid/$name.pid"; return 0; }
	case $name in
	postgres) sig=INT secs=30 ;;
	bulwark-fcgi) secs=20 ;;
	esac
	[ "$(_stack_pgid "$pid")" = "$pid" ] && grp=-
	if [ "$name" = bulwark-fcgi ] || [ "$name" = postgres ] ||
	    [ "$name" = nginx ]; then
		kill -s "$sig" "$pid" 2>/dev/null || true
	else
		kill -s "$sig" -- "$grp$pid" 2>/dev/null || true
	fi
	while ! _stack_gone "$pid"; do
		i=$((i + 1))
		if [ "$i" -gt $((secs * 10)) ]; then
			stack_say "$name ($pid) ignored SIG$sig; killing"
			kill -s KILL -- "$grp$pid" 2>/dev/null || true
			sleep 0.2
			break
		fi
		sleep 0.1
	done
	# Leftovers of a process group (a worker's sleep, fcgi children).
	[ -n "$grp" ] && { kill -s KILL -- "-$pid" 2>/dev/null || true; }
	rm -f "$RUN/pid/$name.pid" "$RUN/pid/$name.bin"
	stack_say "stopped $name ($pid)"
}

# The binary's identity, to notice a rebuild.
_stack_binsig() { stat -L -c '%Y.%i.%s' "$1" 2>/dev/null; }

# --- services -----------------------------------------------------------------

# The server-side TCP settings that end the sessions of a client that
# vanished without closing them (power loss, a partition): the same as
# deploy/patroni.yml.in, docs/operations.md "Dead clients".
_stack_pg_keepalives() {
	echo "tcp_keepalives_idle = 30"
	echo "tcp_keepalives_interval = 10"
	echo "tcp_keepalives_count = 3"
	echo "tcp_user_timeout = 60000"
}

stack_start_postgres() {
	local pid
	if pid=$(stack_pid postgres); then return 0; fi
	if [ ! -f "$PGDATA/PG_VERSION" ]; then
		mkdir -p "$PGDATA"
		[ "$(id -u)" = 0 ] && chown postgres:postgres "$PGDATA"
		chmod 700 "$PGDATA"
		_stack_as_pg "$PGBIN/initdb" -D "$PGDATA" -U postgres \
		    --auth=trust --no-locale -E UTF8 \
		    >>"$RUN/log/postgres.log" 2>&1 ||
		    _stack_fail postgres "initdb failed"
		{
			echo "# bulwark $STACK_MODE stack"
			echo "listen_addresses = '127.0.0.1'"
			echo "unix_socket_directories = ''"
			echo "max_connections = 300"
			echo "shared_buffers = 128MB"
			echo "log_line_prefix = '%m [%p] %q%u@%d '"
			echo "log_min_messages = warning"
			_stack_pg_keepalives
			if [ "$STACK_MODE" = test ]; then
				echo "fsync = off"
				echo "synchronous_commit = off"
				echo "full_page_writes = off"
			fi
		} >>"$PGDATA/postgresql.conf"
	elif ! grep -q '^tcp_user_timeout' "$PGDATA/postgresql.conf"; then
		# A data dir made before the keepalives were written.
		_stack_pg_keepalives >>"$PGDATA/postgresql.conf"
	fi
	printf '=== %s start\n' "$(date -u +%FT%TZ)" >>"$RUN/log/postgres.log"
	# Without -l the server writes to pg_ctl's stdout: our log, opened
	# here, so the postgres user needs no access to $RUN/log.
	_stack_as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -o "-p $PG_PORT" -w -t 60 \
	    -s start </dev/null >>"$RUN/log/postgres.log" 2>&1 9>&- ||
	    _stack_fail postgres "pg_ctl start failed"
	head -n 1 "$PGDATA/postmaster.pid" >"$RUN/pid/postgres.pid"
	stack_wait postgres 60 pg_isready -q -h 127.0.0.1 -p "$PG_PORT" -t 1
	stack_pg_prepare "postgresql://postgres@127.0.0.1:$PG_PORT/postgres" \
	    "$DATABASE_URL" postgres
}

# stack_pg_prepare ADMIN_URL OWNER_URL LOGNAME: creates the database bulwark
# (ADMIN_URL: the postgres database as a superuser) and the login roles,
# through OWNER_URL (the bulwark database); errors go to LOGNAME's log.
# Also used by dev/lib/cluster.sh against the Patroni primary.
stack_pg_prepare() {
	if [ -z "$(psql "$1" -qAtX -c \
	    "SELECT 1 FROM pg_database WHERE datname = 'bulwark'")" ]; then
		psql "$1" -qAtX -c 'CREATE DATABASE bulwark' \
		    >>"$RUN/log/$3.log" 2>&1 ||
		    _stack_fail "$3" "createdb bulwark failed"
	fi
	# The login roles, before migrating (sql/0034_rls.sql grants to
	# them). Passwordless: the dev cluster trusts loopback; production
	# sets passwords and puts the URLs in database_url_file secrets.
	psql "$2" -qX -v ON_ERROR_STOP=1 >>"$RUN/log/$3.log" \
	    2>&1 <<'SQL' || _stack_fail "$3" "creating the roles failed"
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'bulwark_app') THEN
        CREATE ROLE bulwark_app;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'bulwark_worker') THEN
        CREATE ROLE bulwark_worker;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'bulwark_monitor') THEN
        CREATE ROLE bulwark_monitor;
    END IF;
END
$$;
ALTER ROLE bulwark_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
ALTER ROLE bulwark_worker LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE BYPASSRLS;
ALTER ROLE bulwark_monitor LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE BYPASSRLS;
SQL
}

stack_start_redis() {
	if stack_pid redis >/dev/null; then return 0; fi
	_stack_bg redis redis-server --port "$REDIS_PORT" --bind 127.0.0.1 \
	    --save '' --appendonly no --daemonize no --dir "$RUN/redis" \
	    --logfile ''
	stack_wait redis 20 _stack_redis_ping
}

_stack_redis_ping() {
	[ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]
}

stack_start_llm-sim() {
	local sim=$STACK_TOP/tools/sim/llm_sim.py
	[ -f "$sim" ] || return 0
	if stack_pid llm-sim >/dev/null; then return 0; fi
	_stack_bg llm-sim python3 -u "$sim" --port "$SIM_PORT" --host 127.0.0.1
	stack_wait llm-sim 20 curl -sf "$LLM_SIM_URL/_sim/health"
}

# The LINE reply API simulator (tools/sim/line_sim.py), on SIM_PORT + 1.
stack_start_line-sim() {
	local sim=$STACK_TOP/tools/sim/line_sim.py
	[ -f "$sim" ] || return 0
	if stack_pid line-sim >/dev/null; then return 0; fi
	_stack_bg line-sim python3 -u "$sim" --port "$((SIM_PORT + 1))" \
	    --host 127.0.0.1
	stack_wait line-sim 20 curl -sf "$LINE_SIM_URL/_sim/health"
}

# The SMS provider simulator (tools/sim/sms_sim.py), on SIM_PORT + 2, with
# the key of $RUN/sms_api_key; https callbacks (delivery reports to nginx)
# trust the stack's self-signed certificate.
stack_start_sms-sim() {
	local sim=$STACK_TOP/tools/sim/sms_sim.py
	[ -f "$sim" ] || return 0
	if stack_pid sms-sim >/dev/null; then return 0; fi
	_stack_bg sms-sim python3 -u "$sim" --port "$((SIM_PORT + 2))" \
	    --host 127.0.0.1 --api-key-file "$RUN/sms_api_key" \
	    --ca-file "$RUN/nginx/cert.pem"
	stack_wait sms-sim 20 curl -sf "$SMS_SIM_URL/_sim/health"
}

# The error tracker's issues API simulator (tools/sim/tracker_sim.py), on
# SIM_PORT + 3, with the token of $RUN/tracker_token.
stack_start_tracker-sim() {
	local sim=$STACK_TOP/tools/sim/tracker_sim.py
	[ -f "$sim" ] || return 0
	if stack_pid tracker-sim >/dev/null; then return 0; fi
	_stack_bg tracker-sim python3 -u "$sim" --port "$((SIM_PORT + 3))" \
	    --host 127.0.0.1 --token-file "$RUN/tracker_token"
	stack_wait tracker-sim 20 curl -sf "$TRACKER_SIM_URL/_sim/health"
}

# The config every process of the stack reads (BULWARK_CONFIG), and
# bulwark-fcgi's ($FCGI_CONF): the same without ledger_key_file, as in
# production, where the API cannot read the signing key (docs/operations.md).
stack_write_config() {
	[ -f "$RUN/llm_api_key" ] ||
	    (umask 077 && printf 'sk-sim-dev\n' >"$RUN/llm_api_key")
	[ -f "$RUN/sms_api_key" ] ||
	    (umask 077 && printf 'sms-sim-dev\n' >"$RUN/sms_api_key")
	[ -f "$RUN/tracker_token" ] ||
	    (umask 077 && printf 'tracker-sim-dev\n' >"$RUN/tracker_token")
	# The simulator's URL and key, also in bulwark.conf below.
	printf 'sms_base_url = %s\nsms_api_key_file = %s\n' "$SMS_SIM_URL" \
	    "$RUN/sms_api_key" >"$RUN/sms.env"
	cat >"$CONF.new" <<EOF
# Rendered by dev/lib/stack.sh for the $STACK_MODE stack; edits are lost.
fcgi_socket = $SOCKET
fcgi_socket_mode = 0660
fcgi_backlog = 256
fcgi_children = ${BW_FCGI_CHILDREN:-4}
fcgi_max_requests = 10000
# The chat pool (docs/operations.md, "Pools"): its socket is derived,
# $CHAT_SOCKET. Children: the global LLM cap (llm_global_cap, 15) plus
# as many waiting in the semaphore queue (up to chat_queue_deadline_ms).
fcgi_chat_backlog = 256
fcgi_chat_children = ${BW_FCGI_CHAT_CHILDREN:-32}
fcgi_chat_max_requests = 10000
fcgi_chat_queue_deadline_ms = 10000
drain_timeout_s = 10
pid_file = $RUN/pid/bulwark-fcgi.pid
database_url = $WORKER_DATABASE_URL
redis_url = $REDIS_URL
db_statement_timeout_ms = 5000
log_level = ${BW_LOG_LEVEL:-info}
llm_base_url = $LLM_SIM_URL/v1
llm_api_key_file = $RUN/llm_api_key
line_api_base_url = $LINE_SIM_URL
sms_base_url = $SMS_SIM_URL
sms_api_key_file = $RUN/sms_api_key
sms_callback_base_url = $BULWARK_URL
sms_send_rate = 0
sms_backoff_base_ms = 200
tracker_base_url = $TRACKER_SIM_URL
tracker_token_file = $RUN/tracker_token
tracker_repo = bulwark/errors
tracker_timeout_ms = 3000
job_lease_s = 30
job_max_attempts = 5
job_retention_days = 7
sql_dir = $STACK_TOP/sql
storage_dir = $RUN/storage
ledger_key_file = $RUN/ledger.key
ledger_public_key_file = $RUN/ledger.pub
ledger_origin = bulwark.local
EOF
	mv "$CONF.new" "$CONF"
	# bulwark-fcgi: no signing key, the app role, and the monitor role
	# for /metrics and /health/full.
	{
		grep -v '^ledger_key_file' "$CONF" |
		    sed "s|^database_url = .*|database_url = $APP_DATABASE_URL|"
		echo "monitor_database_url = $MONITOR_DATABASE_URL"
	} >"$FCGI_CONF.new"
	mv "$FCGI_CONF.new" "$FCGI_CONF"
	# The Ed25519 seed that signs daily ledger roots and its public key
	# file, which bulwark-fcgi serves; a seed without one (a run dir of
	# an older tree) gets it.
	if [ ! -s "$RUN/ledger.key" ]; then
		"$BUILD/bulwarkctl" -c "$CONF" ledger keygen \
		    >>"$RUN/log/migrate.log" 2>&1 ||
		    _stack_fail migrate "bulwarkctl ledger keygen failed"
	elif [ ! -s "$RUN/ledger.pub" ]; then
		"$BUILD/bulwarkctl" -c "$CONF" ledger pubkey \
		    >>"$RUN/log/migrate.log" 2>&1 ||
		    _stack_fail migrate "bulwarkctl ledger pubkey failed"
	fi
}

stack_migrate() {
	# Migrations run as the owner of the tables.
	BULWARK_DATABASE_URL=$DATABASE_URL "$BUILD/bulwarkctl" -c "$CONF" \
	    migrate >>"$RUN/log/migrate.log" 2>&1 ||
	    _stack_fail migrate "bulwarkctl migrate failed"
	# Say so only when a migration was applied.
	tail -n 1 "$RUN/log/migrate.log" | grep -v '"applied":\[\]' >&2 ||
	    true
}

stack_start_bulwark-fcgi() {
	local bin=$BUILD/bulwark-fcgi
	[ -x "$bin" ] || stack_die "$bin not built"
	if stack_pid bulwark-fcgi >/dev/null; then
		[ "$(cat "$RUN/pid/bulwark-fcgi.bin" 2>/dev/null)" = \
		    "$(_stack_binsig "$bin")" ] && return 0
		stack_say "bulwark-fcgi binary changed: restarting"
		stack_stop_one bulwark-fcgi
	fi
	rm -f "$SOCKET" "$CHAT_SOCKET"
	_stack_bg bulwark-fcgi "$bin" -c "$FCGI_CONF"
	_stack_binsig "$bin" >"$RUN/pid/bulwark-fcgi.bin"
	stack_wait bulwark-fcgi 30 test -S "$SOCKET"
	stack_wait bulwark-fcgi 30 test -S "$CHAT_SOCKET"
}

# The workers of STACK_WORKERS.
stack_start_workers() {
	local w n
	# Started together, then one look that each still runs (not 0.3 s
	# after each one).
	_STACK_STARTED=()
	for w in "${STACK_WORKERS[@]}"; do
		# shellcheck disable=SC2086
		_STACK_DEFER_CHECK=1 _stack_start_worker $w
	done
	[ ${#_STACK_STARTED[@]} -gt 0 ] || return 0
	sleep 0.3
	for n in "${_STACK_STARTED[@]}"; do
		stack_pid "$n" >/dev/null || _stack_fail "$n" "exited at start"
	done
}

_stack_start_worker() {
	local name=$1 kind=$2 bin=$BUILD/$3
	if [ ! -x "$bin" ]; then
		stack_say "warning: $bin not built; $name not started"
		return 0
	fi
	if stack_pid "$name" >/dev/null; then
		# A loop runs the current binary on its next pass.
		[ "$kind" != daemon ] && return 0
		[ "$(cat "$RUN/pid/$name.bin" 2>/dev/null)" = \
		    "$(_stack_binsig "$bin")" ] && return 0
		stack_say "$name binary changed: restarting"
		stack_stop_one "$name"
	fi
	case $kind in
	every:*)
		# shellcheck disable=SC2016
		_stack_bg "$name" env "BW_EVERY=${kind#every:}" \
		    bash -c 'trap "exit 0" TERM
			while :; do
				"$@" || echo "=== exit status $?"
				sleep "$BW_EVERY" & wait $!
			done' "$name" "$bin" -c "$CONF"
		;;
	daemon) _stack_bg "$name" "$bin" -c "$CONF" ;;
	*) stack_die "STACK_WORKERS: bad kind $kind for $name" ;;
	esac
	_stack_binsig "$bin" >"$RUN/pid/$name.bin"
	if [ "${_STACK_DEFER_CHECK:-0}" = 1 ]; then
		_STACK_STARTED+=("$name")
		return 0
	fi
	sleep 0.3
	stack_pid "$name" >/dev/null || _stack_fail "$name" "exited at start"
}

_stack_cert() {
	local d=$RUN/nginx
	[ -s "$d/cert.pem" ] && [ -s "$d/key.pem" ] && return 0
	(umask 077 && openssl req -x509 -newkey ec \
	    -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 825 \
	    -keyout "$d/key.pem" -out "$d/cert.pem" -subj /CN=localhost \
	    -addext 'subjectAltName=IP:127.0.0.1,DNS:localhost' \
	    >>"$RUN/log/nginx-error.log" 2>&1) ||
	    stack_die "openssl: cannot make the self-signed certificate"
	chmod 644 "$d/cert.pem"
}

# Renders nginx/bulwark.conf.in and the nginx/*.conf snippets into
# $RUN/nginx. Rate limits may be overridden for benches:
# BW_NGINX_RATE (e.g. 50r/s), BW_NGINX_BURST, BW_NGINX_CONN.
stack_render_nginx() {
	local d=$RUN/nginx f user=
	[ "$(id -u)" = 0 ] && user="user root root;"
	for f in "$STACK_TOP"/nginx/*.conf; do
		[ -f "$f" ] || continue
		_stack_subst <"$f" >"$d/${f##*/}"
	done
	_stack_subst <"$STACK_TOP/nginx/bulwark.conf.in" |
	    sed "s|@USER@|$user|" >"$d/nginx.conf.new"
	mkdir -p "$d/tmp/body" "$d/tmp/fastcgi" "$d/tmp/proxy" \
	    "$d/tmp/uwsgi" "$d/tmp/scgi"
	# The console's static files (docs/console.md), as make install puts
	# them in PKGDATADIR/console.
	mkdir -p "$RUN/console"
	cp "$STACK_TOP"/web/console/* "$RUN/console/"
}

_stack_subst() {
	sed -e "s|@RUN@|$RUN|g" -e "s|@NGINX_DIR@|$RUN/nginx|g" \
	    -e "s|@PORT@|$HTTPS_PORT|g" -e "s|@SOCKET@|$SOCKET|g" \
	    -e "s|@CHAT_SOCKET@|$CHAT_SOCKET|g" \
	    -e "s|@CONSOLE_DIR@|$RUN/console|g" \
	    -e "s|@LISTEN@|127.0.0.1:$HTTPS_PORT|g" \
	    -e "s|@SERVER_NAME@|localhost|g" \
	    -e "s|@TLS_CERT@|$RUN/nginx/cert.pem|g" \
	    -e "s|@TLS_KEY@|$RUN/nginx/key.pem|g" \
	    -e "s|@ACCESS_LOG@|$RUN/log/nginx-access.log|g" \
	    -e "s|@STORAGE_DIR@|$RUN/storage|g" \
	    -e "s|@RATE@|${BW_NGINX_RATE:-50r/s}|g" \
	    -e "s|@BURST@|${BW_NGINX_BURST:-100}|g" \
	    -e "s|@CONN@|${BW_NGINX_CONN:-100}|g"
}

_stack_nginx() {
	nginx -p "$RUN/nginx/" -e "$RUN/log/nginx-error.log" "$@"
}

stack_start_nginx() {
	local d=$RUN/nginx
	_stack_cert
	stack_render_nginx
	_stack_nginx -t -q -c "$d/nginx.conf.new" >>"$RUN/log/nginx-error.log" \
	    2>&1 || { _stack_nginx -t -c "$d/nginx.conf.new" ||
	    stack_die "nginx -t failed on $d/nginx.conf.new"; }
	if stack_pid nginx >/dev/null; then
		if ! cmp -s "$d/nginx.conf.new" "$d/nginx.conf"; then
			mv "$d/nginx.conf.new" "$d/nginx.conf"
			stack_say "nginx config changed: reloading"
			kill -HUP "$(stack_pid nginx)"
		fi
		rm -f "$d/nginx.conf.new"
		return 0
	fi
	mv "$d/nginx.conf.new" "$d/nginx.conf"
	# nginx daemonizes and writes $RUN/pid/nginx.pid itself.
	_stack_nginx -c "$d/nginx.conf" </dev/null >>"$RUN/log/nginx-error.log" \
	    2>&1 9>&- || _stack_fail nginx "nginx failed to start"
	stack_wait nginx 20 stack_pid nginx
	stack_wait nginx 20 curl -sk -o /dev/null "$BULWARK_URL/health"
}

# The demo org and owner key, made once per database and kept in
# $RUN/demo.json (made again when the org is no longer in the database).
stack_demo() {
	local org ok out
	if [ -s "$RUN/demo.json" ]; then
		org=$(jq -r .org_id "$RUN/demo.json")
		ok=$(psql "$DATABASE_URL" -qAtX -c \
		    "SELECT 1 FROM orgs WHERE id::text = '$org'" 2>/dev/null ||
		    echo error)
		[ "$ok" = 1 ] || [ "$ok" = error ] || rm -f "$RUN/demo.json"
	fi
	if [ ! -s "$RUN/demo.json" ]; then
		out=$("$BUILD/bulwarkctl" -c "$CONF" org create --name demo \
		    --tier pro) || stack_die "bulwarkctl org create failed"
		org=$(printf '%s' "$out" | jq -er .id) ||
		    stack_die "org create: no id in $out"
		out=$("$BUILD/bulwarkctl" -c "$CONF" key create --org "$org" \
		    --role owner) || stack_die "bulwarkctl key create failed"
		printf '%s' "$out" | jq -e .key >/dev/null ||
		    stack_die "key create: no key in output"
		(umask 077 && printf '%s' "$out" |
		    jq --arg org "$org" '{org_id: $org, key_id: .id, key,
		    key_prefix, role}' >"$RUN/demo.json")
		stack_say "created demo org $org and its owner key"
	fi
	DEMO_ORG=$(jq -r .org_id "$RUN/demo.json")
	DEMO_KEY=$(jq -r .key "$RUN/demo.json")
}

# $RUN/env: sourceable by a developer's shell and by the test runner.
stack_write_env() {
	(
		umask 077
		{
			echo "# The $STACK_MODE stack in $RUN (dev/lib/stack.sh)."
			printf 'export BULWARK_URL=%q\n' "$BULWARK_URL"
			printf 'export BULWARK_DEMO_ORG=%q\n' "${DEMO_ORG:-}"
			printf 'export BULWARK_DEMO_KEY=%q\n' "${DEMO_KEY:-}"
			printf 'export DATABASE_URL=%q\n' "$DATABASE_URL"
			printf 'export REDIS_URL=%q\n' "$REDIS_URL"
			printf 'export BULWARK_CONFIG=%q\n' "$CONF"
			printf 'export BW_LLM_SIM_URL=%q\n' "$LLM_SIM_URL"
			printf 'export BW_LINE_SIM_URL=%q\n' "$LINE_SIM_URL"
			printf 'export BW_SMS_SIM_URL=%q\n' "$SMS_SIM_URL"
			printf 'export BW_TRACKER_SIM_URL=%q\n' \
			    "$TRACKER_SIM_URL"
			printf 'export PATH=%q:"$PATH"\n' "$BUILD"
		} >"$RUN/env"
	)
}

# stack_start_one NAME: starts one service (idempotent).
stack_start_one() {
	local w
	case $1 in
	postgres | redis | llm-sim | line-sim | sms-sim | tracker-sim | \
	    bulwark-fcgi | nginx)
		"stack_start_$1"
		return
		;;
	esac
	for w in "${STACK_WORKERS[@]}"; do
		# shellcheck disable=SC2086
		[ "${w%% *}" = "$1" ] && { _stack_start_worker $w; return; }
	done
	stack_die "unknown service $1"
}

# The listen backlog of a socket is capped by net.core.somaxconn; raises it
# to BW_SOMAXCONN (4096) when it is lower and we may (root, /proc/sys
# writable), else says so and goes on (a container, a chroot).
stack_somaxconn() {
	local f=/proc/sys/net/core/somaxconn want=${BW_SOMAXCONN:-4096} cur
	cur=$(cat "$f" 2>/dev/null) || return 0
	[ "$cur" -ge "$want" ] && return 0
	if [ "$(id -u)" = 0 ] && [ -w "$f" ] &&
	    echo "$want" 2>/dev/null >"$f"; then
		stack_say "net.core.somaxconn: $cur -> $want"
	else
		stack_say "net.core.somaxconn is $cur (cannot raise it here):" \
		    "listen backlogs above it are cut to it"
	fi
}

# stack_start: the whole stack, in dependency order (idempotent).
stack_start() {
	stack_somaxconn
	stack_start_postgres
	stack_start_redis
	stack_write_config
	stack_migrate
	stack_start_llm-sim
	stack_start_line-sim
	stack_start_sms-sim
	stack_start_tracker-sim
	stack_start_bulwark-fcgi
	stack_start_workers
	stack_start_nginx
	stack_wait bulwark-fcgi 30 _stack_health
	stack_demo
	stack_write_env
}

_stack_health() {
	[ "$(curl -sk -o /dev/null -w '%{http_code}' "$BULWARK_URL/health")" = \
	    200 ]
}

# stack_stop: everything with a pid file, front to back: nginx, the rest
# (fcgi, workers, simulators), then redis and postgres.
stack_stop() {
	local f name
	stack_stop_one nginx
	for f in "$RUN"/pid/*.pid; do
		[ -e "$f" ] || continue
		name=${f##*/}
		name=${name%.pid}
		case $name in redis | postgres) continue ;; esac
		stack_stop_one "$name"
	done
	stack_stop_one redis
	stack_stop_one postgres
}

# stack_purge: removes the run dir and the external PostgreSQL dirs it links to.
stack_purge() {
	local l e ext=()
	# $RUN/pg, and that of a stack in a subdir (dev/test's lane 2, $RUN/l2)
	for l in "$RUN/pg" "$RUN"/*/pg; do
		[ -L "$l" ] && ext+=("$(dirname "$(readlink "$l")")")
	done
	rm -rf "$RUN"
	for e in "${ext[@]}"; do
		case $e in /var/lib/bulwark-dev/?*) rm -rf "$e" ;; esac
	done
}

# stack_status: what runs where.
stack_status() {
	local name pid addr f
	printf '%-14s %-8s %-42s %s\n' SERVICE PID ADDRESS LOG
	for f in postgres redis llm-sim line-sim sms-sim tracker-sim \
	    bulwark-fcgi nginx \
	    $(for w in "${STACK_WORKERS[@]}"; do echo "${w%% *}"; done); do
		name=$f
		pid=$(stack_pid "$name") || pid=-
		case $name in
		postgres) addr=127.0.0.1:$PG_PORT ;;
		redis) addr=127.0.0.1:$REDIS_PORT ;;
		llm-sim) addr=$LLM_SIM_URL ;;
		line-sim) addr=$LINE_SIM_URL ;;
		sms-sim) addr=$SMS_SIM_URL ;;
		tracker-sim) addr=$TRACKER_SIM_URL ;;
		bulwark-fcgi) addr=unix:$SOCKET ;;
		nginx) addr=$BULWARK_URL ;;
		*) addr=- ;;
		esac
		[ "$pid" = - ] && [ ! -f "$RUN/log/$name.log" ] &&
		    [ "$name" != nginx ] && continue
		local log=$RUN/log/$name.log
		[ "$name" = nginx ] && log=$RUN/log/nginx-error.log
		printf '%-14s %-8s %-42s %s\n' "$name" "$pid" "$addr" "$log"
	done
}
