# SPDX-License-Identifier: MIT
# shellcheck shell=bash
#
# The prologue of every integration, e2e and chaos script (docs/hacking.md).
# A script starts with
#
#	. "$BW_TOP/tests/lib/common.sh"
#
# and gets: `set -u`; the checks of tests/lib/assert.sh; BW_TMP (a fresh
# mktemp -d when run by hand) also as TMP; $BW_BUILD first on PATH; one EXIT
# trap that runs what the script registered with t_on_exit; and the
# helpers the scripts used to copy (bulwarkctl, the FastCGI client, polling
# SQL, killing leftover jobs, loading the stack's variables).

set -u
# shellcheck source-path=SCRIPTDIR source=assert.sh
. "${BW_TOP:?}/tests/lib/assert.sh"

# t_need VAR...: fails the script here (one "not ok" line) unless every
# VAR is set and not empty; tests/lib/run-tier sets them all.
t_need() {
	local v
	for v in "$@"; do
		if [ -z "${!v:-}" ]; then
			t_fail "environment" "$v is not set (tests/lib/run-tier sets it)"
			t_done
		fi
	done
}

: "${BW_TMP:=$(mktemp -d)}"
# shellcheck disable=SC2034 # for the scripts
TMP=$BW_TMP
if [ -n "${BW_BUILD:-}" ]; then PATH=$BW_BUILD:$PATH; fi

# t_on_exit CMD: evaluates CMD when the script exits, the last registered
# first. The script's exit status is kept.
T_ON_EXIT=()
t_on_exit() {
	T_ON_EXIT+=("$1")
}

# shellcheck disable=SC2317 # called by the trap
t_run_exit() {
	local i
	for ((i = ${#T_ON_EXIT[@]} - 1; i >= 0; i--)); do
		eval "${T_ON_EXIT[i]}"
	done
}
trap t_run_exit EXIT

# t_pg_tmp: prints a directory for the script's own PostgreSQL servers (a
# standby's data and log) that the postgres user can reach: $TMP, or, when
# the stack's data had to live outside its run dir because postgres cannot
# reach that (a TMPDIR under /root; dev/lib/stack.sh's _stack_pgdata), a
# fresh directory beside that data, removed with it by stack_purge.
t_pg_tmp() {
	if [ -L "${BW_RUN:-}/pg" ]; then
		mktemp -d "$(dirname "$(readlink "$BW_RUN/pg")")/tmp.XXXXXX"
	else
		printf '%s\n' "$TMP"
	fi
}

# t_kill_jobs: SIGKILL to this shell's background jobs still running, then
# reaps them. Only jobs: a pid of a reaped process may have been reused.
t_kill_jobs() {
	local p
	for p in $(jobs -p); do
		kill -9 "$p" 2>/dev/null
	done
	wait 2>/dev/null
}

# t_ctl ARGS...: bulwarkctl with the stack's config.
t_ctl() {
	bulwarkctl -c "$BW_CONFIG" "$@"
}

# t_freq ARGS...: the FastCGI test client (tests/lib/fcgi_req.py).
t_freq() {
	python3 "$BW_TOP/tests/lib/fcgi_req.py" "$@"
}

# t_metric SAMPLE: the value of one sample at the stack's /metrics, read
# through nginx as Prometheus would (SAMPLE is the name with its labels,
# exactly as exposed: 'bulwark_x_total{path="a"}'); prints nothing when the
# sample is not there.
t_metric() {
	curl -sk --max-time 20 "${BULWARK_URL:?}/metrics" |
	    awk -v s="$1" '$1 == s { print $2 }'
}

# t_fcgi_ready SECS SOCKET...: waits until every SOCKET answers a FastCGI
# GET /health with a status line (a socket file can exist before its
# listen(), and a master's children may still be starting); fails after
# SECS seconds.
t_fcgi_ready() {
	local secs=$1 s i
	shift
	for s in "$@"; do
		for i in $(seq 1 $((secs * 10))); do
			env -i REQUEST_METHOD=GET DOCUMENT_URI=/health \
			    REQUEST_URI=/health SCRIPT_NAME=/health \
			    SERVER_PROTOCOL=HTTP/1.1 REMOTE_ADDR=127.0.0.1 \
			    cgi-fcgi -bind -connect "$s" 2>/dev/null |
			    grep -q '^Status: ' && break
			[ "$i" -eq $((secs * 10)) ] && return 1
			sleep 0.1
		done
	done
	return 0
}

# t_in_netns NS CMD...: runs CMD in the network namespace NS (made by
# `ip netns add`) and in nothing else of it. Not `ip -n` or `ip netns exec`:
# those also remount / and /sys for the namespace, which fails in a chroot
# ("mount --make-rslave /" failed: Invalid argument), as in a minimal
# Debian chroot of dev/test.
t_in_netns() {
	local ns=$1
	shift
	nsenter --net="/run/netns/$ns" -- "$@"
}

# t_wait_sql SECS WANT SQL: polls SQL (t_sql) every 0.1 s until it prints
# WANT; fails after SECS seconds.
t_wait_sql() {
	local i
	for i in $(seq 1 $(($1 * 10))); do
		[ "$(t_sql "$3" 2>/dev/null)" = "$2" ] && return 0
		sleep 0.1
	done
	return 1
}

# t_stack: loads dev/lib/stack.sh and the running stack's variables, for
# the stack_stop_one / stack_start_one of scripts that stop a service.
t_stack() {
	# shellcheck source-path=SCRIPTDIR source=../../dev/lib/stack.sh
	. "$BW_TOP/dev/lib/stack.sh" && stack_load "$BW_RUN"
}

# t_free_port: a TCP port free on 127.0.0.1 now.
t_free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# t_pg_hostport URL: "host:port" of a PostgreSQL URL (5432 when none).
t_pg_hostport() {
	python3 -c 'import sys, urllib.parse as u; p=u.urlparse(sys.argv[1]); print("%s:%d" % (p.hostname, p.port or 5432))' "$1"
}

# t_pg_via URL PORT: URL (user and password kept) to 127.0.0.1:PORT in
# plain text (sslmode=disable): the way through a proxy such as
# tools/sim/pg_fault.py.
t_pg_via() {
	python3 -c 'import sys, urllib.parse as u; p=u.urlparse(sys.argv[1]); n=p._replace(netloc=(p.username + (":" + p.password if p.password else "") + "@" if p.username else "") + "127.0.0.1:" + sys.argv[2]); q=(n.query + "&" if n.query else "") + "sslmode=disable"; print(n._replace(query=q).geturl())' "$1" "$2"
}

# t_clear_of_midnight SECS: returns at once when more than SECS seconds are
# left in the UTC day, else sleeps until 2 s past midnight (printed as a
# comment). For scripts whose checks name one day (ledger roots, daily
# budgets): their events and the day they compare with must not straddle
# the date change. SECS is the script's own running time with a margin.
t_clear_of_midnight() {
	local now left
	now=$(date -u +%s)
	left=$((86400 - now % 86400))
	if [ "$left" -le "$1" ]; then
		echo "# $left s to midnight UTC: waiting for the new day"
		sleep $((left + 2))
	fi
}
