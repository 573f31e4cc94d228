#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Exactly once per slot when a host is cut off mid-run and comes back
# (docs/operations.md, "Dead clients"): PostgreSQL ends the sessions of a
# host it no longer hears from, which frees the job's periodic lock, and
# another host takes the slot over. The first host's run must then write
# nothing more: its work connection may reconnect only while its lock
# session still holds the lock, and its outcome is recorded only behind the
# same check (lib/platform/periodic.c, the fence).
#   - a real partition as in vanished_host.sh: a network namespace joined
#     to this one by a veth pair on private addresses (10.232.N.0/30), and
#     a PostgreSQL server of this script's own on the root side with short
#     server-side keepalives (idle 3 s, interval 1 s, count 3, user timeout
#     6 s);
#   - tests/integration/periodic_fence_driver runs one periodic_run() of a
#     job of this script's own whose fn inserts a row (tag, clock) every
#     200 ms; h1 runs in the namespace, its link goes down mid-run, and once
#     the server ended h1's sessions h2 (in this namespace) takes the slot
#     over and writes; then the link comes back while h1's fn still runs.
#   - no row of h1 after h2's first row, h1 tried to write after the link
#     came back (the check could fail), h1 logged that it lost its lock,
#     and the slot's final state is h2's.
# Needs root (ip netns). About 28 s.
# shellcheck disable=SC2317 # trap handlers are called indirectly
# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
. "${BW_TOP:?}/tests/lib/common.sh"
# shellcheck source-path=SCRIPTDIR source=../lib/netns.sh
. "$BW_TOP/tests/lib/netns.sh"

DRV="$BW_BUILD/tests/integration/periodic_fence_driver"
T_IDLE=3 T_INTVL=1 T_CNT=3 T_UTO=6000
# A week's slots: both runs share one (see the boundary wait below), and
# period * 1000 (the missed-slot bound) stays within an int.
PERIOD=604800
JOB=fence-$$
H1_SECS=25 H2_SECS=10

if [ "$(id -u)" != 0 ]; then
	t_fail "periodic fence: a network namespace" "needs root (ip netns)"
	t_done
fi
t_check "periodic fence: the driver is built" test -x "$DRV"
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
	wait 2>/dev/null
	return 0
}
t_netns_up pf 232
rc=$?
t_on_exit cleanup
t_eq "periodic fence: a namespace on a veth pair ($CLI -> $SRV)" 0 "$rc"
[ "$rc" = 0 ] || t_done
t_netns_pg pf "$T_IDLE" "$T_INTVL" "$T_CNT" "$T_UTO"
rc=$?
t_eq "periodic fence: a server of its own on $SRV:$PORT" 0 "$rc"
[ "$rc" = 0 ] || t_done
URL_HERE="postgresql://postgres@127.0.0.1:$PORT/postgres"
URL_NS="postgresql://postgres@$SRV:$PORT/postgres"
here() {
	psql -qAtX "$URL_HERE" -c "$1"
}
# periodic_runs as the migrations leave it (sql/0001, sql/0014), and the
# fn's rows: id in insertion order.
here "CREATE TABLE periodic_runs (job text NOT NULL,
    slot timestamptz NOT NULL, state text NOT NULL
    CHECK (state IN ('running', 'ok', 'failed', 'missed')), host text,
    pid int, started_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz, error text,
    period_s int CHECK (period_s IS NULL OR period_s >= 1),
    PRIMARY KEY (job, slot));
    CREATE TABLE fence_rows (id bigserial PRIMARY KEY, tag text NOT NULL,
    at timestamptz NOT NULL DEFAULT clock_timestamp())" >/dev/null

# Both runs must fall in one slot: stay clear of a week's boundary.
left=$((PERIOD - $(date +%s) % PERIOD))
[ "$left" -lt 90 ] && sleep "$((left + 2))"

# wait_for SECS FILE REGEX: polls FILE until a line matches.
wait_for() {
	local i
	for i in $(seq 1 $(($1 * 10))); do
		grep -Eq "$3" "$2" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}
# sessions_of_h1: the server's sessions from the namespace.
sessions_of_h1() {
	here "SELECT count(*) FROM pg_stat_activity WHERE client_addr = '$CLI'"
}
wait_gone() {
	local i
	for i in $(seq 1 200); do
		[ "$(sessions_of_h1)" = 0 ] && return 0
		sleep 0.1
	done
	return 1
}

# h1: the run in the namespace.
# nsenter itself, not t_in_netns: $! must be the driver's pid.
nsenter --net="/run/netns/$NS" -- "$DRV" "$URL_NS" "$JOB" h1 "$H1_SECS" \
    "$PERIOD" >"$TMP/h1.out" 2>"$TMP/h1.log" &
PIDS+=("$!")
t_check "periodic fence: h1 runs the slot and writes" \
    wait_for 10 "$TMP/h1.out" '^row 3 ok$'
pid1=$(sed -n 's/^pid //p' "$TMP/h1.out")

# The partition: h1's end of the link goes down, which sends nothing.
t_in_netns "$NS" ip link set "$VB" down
t_check "periodic fence: the server ended h1's sessions (its lock is free)" \
    wait_gone

# h2: the run here, which takes the slot over.
"$DRV" "$URL_HERE" "$JOB" h2 "$H2_SECS" "$PERIOD" \
    >"$TMP/h2.out" 2>"$TMP/h2.log" &
h2=$!
PIDS+=("$h2")
t_check "periodic fence: h2 took the slot over and writes" \
    wait_for 10 "$TMP/h2.out" '^row 2 ok$'
pid2=$(sed -n 's/^pid //p' "$TMP/h2.out")
t_eq "periodic fence: the slot is h2's, running" "running|$pid2" \
    "$(here "SELECT state || '|' || pid FROM periodic_runs
    WHERE job = '$JOB'")"

# The link comes back while h1's fn still runs.
t_in_netns "$NS" ip link set "$VB" up
n_up=$(wc -l <"$TMP/h1.out")
up_at=$(here "SELECT clock_timestamp()")
wait_exit() {
	timeout "$1" tail --pid="$2" -f /dev/null
}
t_check "periodic fence: h2 ends" wait_exit 30 "$h2"
h2_end=$(here "SELECT clock_timestamp()")
t_check "periodic fence: h1 ends" wait_exit 40 "${PIDS[0]}"
t_match "periodic fence: h2's run finished ok" '^outcome ran ok$' \
    "$(cat "$TMP/h2.out")"

# h1 went on trying to write after the link came back (so the checks
# below could fail): its attempts after that moment.
after=$(tail -n +"$((n_up + 1))" "$TMP/h1.out" | grep -c '^row ')
t_ge "periodic fence: h1 tried to write after the link came back" 2 \
    "$after"
first2=$(here "SELECT min(id) FROM fence_rows WHERE tag = 'h2'")
t_eq "periodic fence: no row of h1 after h2's first row" 0 \
    "$(here "SELECT count(*) FROM fence_rows WHERE tag = 'h1'
    AND id > ${first2:-0}")"
t_eq "periodic fence: no row of h1 after the link came back" 0 \
    "$(here "SELECT count(*) FROM fence_rows WHERE tag = 'h1'
    AND at >= '$up_at'")"
# h2's outcome, not rewritten later (h1's run ends after h2's).
t_eq "periodic fence: the slot's final state is h2's" "ok|$pid2|true" \
    "$(here "SELECT state || '|' || pid || '|' || (finished_at <= '$h2_end')
    FROM periodic_runs WHERE job = '$JOB'")"
t_match "periodic fence: h1 logged that it lost its lock" \
    '"periodic run lost its lock; stopped"' "$(cat "$TMP/h1.log")"
t_eq "periodic fence: h1's run ended with an error" \
    "outcome ran invalid state" "$(grep '^outcome' "$TMP/h1.out")"
printf '# h1 (pid %s): %s rows, %s attempts after the link came back; h2 (pid %s): %s rows\n' \
    "$pid1" "$(here "SELECT count(*) FROM fence_rows WHERE tag = 'h1'")" \
    "$after" "$pid2" \
    "$(here "SELECT count(*) FROM fence_rows WHERE tag = 'h2'")"
grep -h '"periodic run lost its lock; stopped"' "$TMP/h1.log" |
    sed 's/^/# h1: /'
t_done
