#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Workers run every statement under worker_statement_timeout_ms (issue 9
# item 6): the key is in --check-config (default 30000, bounds checked);
# with 200 ms, a long-running worker (bulwark-export --once) whose queue
# table is locked by another session, and a oneshot worker
# (bulwark-reconcile) whose table is locked, each have the waiting
# statement cancelled (SQLSTATE 57014, logged) and exit 1 within a few
# seconds instead of hanging until the lock goes; the oneshot's run is
# recorded failed. The lock holder is psql, as a migration or an
# operator's long transaction would be.
. "${BW_TOP:?}/tests/lib/common.sh"
t_need BW_BUILD BW_CONFIG BW_RUN DATABASE_URL

CFG=$BW_CONFIG
HOLDER=bw-lock-holder-$$
HOLD_PID=

# --- the setting ----------------------------------------------------------
t_eq "--check-config shows worker_statement_timeout_ms (default 30000)" \
    "worker_statement_timeout_ms = 30000" \
    "$(bulwark-fcgi --check-config -c "$CFG" |
	grep '^worker_statement_timeout_ms')"
t_eq "--check-config shows an override (BULWARK_WORKER_STATEMENT_TIMEOUT_MS)" \
    "worker_statement_timeout_ms = 200" \
    "$(BULWARK_WORKER_STATEMENT_TIMEOUT_MS=200 bulwark-fcgi --check-config \
	-c "$CFG" | grep '^worker_statement_timeout_ms')"
rc=0
BULWARK_WORKER_STATEMENT_TIMEOUT_MS=-1 bulwark-fcgi --check-config -c "$CFG" \
    >/dev/null 2>"$TMP/neg.err" || rc=$?
t_eq "a negative value is refused, naming the key" "1 yes" \
    "$rc $(grep -q 'worker_statement_timeout_ms: out of range' \
	"$TMP/neg.err" && echo yes)"

# hold TABLE SECS: psql takes an ACCESS EXCLUSIVE lock on TABLE and keeps
# it SECS seconds (or until release); returns once the lock is held.
hold() {
	PGAPPNAME=$HOLDER psql "$DATABASE_URL" -qAtX -v ON_ERROR_STOP=1 -c \
	    "BEGIN; LOCK TABLE $1 IN ACCESS EXCLUSIVE MODE;
	    SELECT pg_sleep($2); COMMIT;" >/dev/null 2>&1 &
	HOLD_PID=$!
	t_wait_sql 10 1 "SELECT count(*) FROM pg_locks l JOIN pg_class c ON
	    c.oid = l.relation WHERE c.relname = '$1' AND l.granted
	    AND l.mode = 'AccessExclusiveLock'" ||
	    t_fail "psql holds the lock on $1" "not granted within 10 s"
}
release() {
	t_sql "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
	    WHERE application_name = '$HOLDER'" >/dev/null
	[ -z "$HOLD_PID" ] || wait "$HOLD_PID" 2>/dev/null
	HOLD_PID=
}
t_on_exit release

# run_timed LOG CMD...: runs CMD (at most 30 s), output to LOG; sets RC and
# MS (elapsed milliseconds).
run_timed() {
	local log=$1 t0
	shift
	t0=$(date +%s%N)
	RC=0
	timeout 30 "$@" >"$log" 2>&1 || RC=$?
	MS=$((($(date +%s%N) - t0) / 1000000))
}

# --- a long-running worker ---------------------------------------------------
hold jobs 8
BULWARK_WORKER_STATEMENT_TIMEOUT_MS=200 \
    run_timed "$TMP/export.log" bulwark-export -c "$CFG" --once
release
t_eq "bulwark-export --once, jobs locked: exits 1" 1 "$RC"
t_le "... within 3 s, not when the lock goes after 8 s (${MS} ms)" 3000 "$MS"
t_ge "... logging the cancelled statement (SQLSTATE 57014)" 1 \
    "$(grep -c '"sqlstate":"57014"' "$TMP/export.log")"
t_eq "... having started with statement_timeout_ms 200" 1 \
    "$(grep '"worker started"' "$TMP/export.log" |
	grep -c '"statement_timeout_ms":"200"')"

# --- a oneshot worker ------------------------------------------------------
# Its slot must be ours to run: the stack's loop is stopped and the current
# minute's slot made claimable.
t_stack
t_on_exit 'stack_start_one reconcile-loop >/dev/null 2>&1'
stack_stop_one reconcile-loop >/dev/null 2>&1
t_sql "UPDATE periodic_runs SET state = 'failed' WHERE job = 'reconcile'
    AND slot = to_timestamp(floor(extract(epoch FROM now()) / 60) * 60)" \
    >/dev/null
hold credit_reservations 8
BULWARK_WORKER_STATEMENT_TIMEOUT_MS=200 \
    run_timed "$TMP/reconcile.log" bulwark-reconcile -c "$CFG"
release
t_eq "bulwark-reconcile, credit_reservations locked: exits 1" 1 "$RC"
t_le "... within 3 s (${MS} ms)" 3000 "$MS"
t_ge "... logging the cancelled statement (SQLSTATE 57014)" 1 \
    "$(grep -c '"sqlstate":"57014"' "$TMP/reconcile.log")"
t_eq "... and its run is recorded failed, timed out" "failed|timed out" \
    "$(t_sql "SELECT state, error FROM periodic_runs WHERE job = 'reconcile'
	ORDER BY started_at DESC LIMIT 1")"
t_sql "UPDATE periodic_runs SET state = 'failed' WHERE job = 'reconcile'
    AND slot = to_timestamp(floor(extract(epoch FROM now()) / 60) * 60)" \
    >/dev/null
run_timed "$TMP/reconcile2.log" bulwark-reconcile -c "$CFG"
t_eq "without the lock the same run succeeds" 0 "$RC"

t_done
