#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Job queue against real PostgreSQL, counted, not sampled: 4 worker
# processes x 1000 jobs each done once; NOTIFY wakes idle workers; a worker
# killed mid-job has its job rescued and done once; the per-key cap is never
# exceeded (max overlap of recorded executions) and a killed worker's slot
# frees at once; unique job keys; backoff, then dead with the last error.
. "${BW_TOP:?}/tests/lib/common.sh"

W="$BW_BUILD/tests/integration/jobq_worker"
CFG=${BW_CONFIG:-}
SFX="$$-$(date +%s)"

t_on_exit t_kill_jobs

# start_worker QUEUE LEASE_S ARGS...: starts a worker, pid in $WPID.
start_worker() {
	local q=$1 lease=$2
	shift 2
	BULWARK_JOB_LEASE_S=$lease "$W" -c "$CFG" --queue "$q" "$@" \
	    >>"$TMP/worker-$q.log" 2>&1 &
	WPID=$!
}

# stop_workers PID...: SIGTERM, then wait up to 15 s; STOPPED_OK gets how
# many exited with status 0 (not in a subshell: only we can wait for them).
stop_workers() {
	local p i
	STOPPED_OK=0
	for p in "$@"; do
		kill -TERM "$p" 2>/dev/null
	done
	for p in "$@"; do
		for i in $(seq 1 150); do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.1
		done
		if wait "$p" 2>/dev/null; then
			STOPPED_OK=$((STOPPED_OK + 1))
		fi
	done
}

enqueue() {
	"$W" -c "$CFG" "$@" 2>>"$TMP/enqueue.log"
}

# Max number of executions of QUEUE running at one instant (the maximum is
# reached at some start); unfinished executions count as still running.
# FILTER is extra SQL on the jobs row "j@" and the execution "e@".
overlap_sql() {
	local f2=${2//@/2} f1=${2//@/1}
	printf '%s' "SELECT coalesce(max(c), 0) FROM (SELECT (SELECT count(*)
	    FROM jobq_test_exec e2 JOIN jobs j2 ON j2.id = e2.job_id
	    WHERE j2.queue = '$1' $f2 AND e2.started_at <= e1.started_at
	    AND coalesce(e2.finished_at, 'infinity') > e1.started_at) AS c
	    FROM jobq_test_exec e1 JOIN jobs j1 ON j1.id = e1.job_id
	    WHERE j1.queue = '$1' $f1) x"
}

t_sql "SET client_min_messages = warning;
CREATE TABLE IF NOT EXISTS jobq_test_exec (
	id bigserial PRIMARY KEY, job_id uuid NOT NULL, worker_pid int,
	attempt int, started_at timestamptz NOT NULL, finished_at timestamptz,
	outcome text)" >/dev/null

# --- unique job key ------------------------------------------------------
Q="t-uniq-$SFX"
a=$(enqueue --queue "$Q" --enqueue 1 --job-key same-key)
b=$(enqueue --queue "$Q" --enqueue 1 --job-key same-key)
t_match "enqueue: first call creates" ' created$' "$a"
t_match "enqueue: same key again returns the existing job" ' existing$' "$b"
t_eq "enqueue: same key gives the same id" "${a%% *}" "${b%% *}"
t_eq "enqueue: same key twice makes one row" 1 \
    "$(t_sql "SELECT count(*) FROM jobs WHERE queue = '$Q'")"

# --- NOTIFY wakes idle workers, 4 workers x 1000 jobs --------------------
Q="t-many-$SFX"
WS=()
for i in 1 2 3 4; do
	start_worker "$Q" 60 --mode record
	WS+=("$WPID")
done
sleep 1
# Idle workers poll only every 5 s; three pick-ups each under 0.5 s after
# the insert are the NOTIFY at work.
fast=0
for i in 1 2 3; do
	enqueue --queue "$Q" --enqueue 1 --job-key "wake-$i" >/dev/null
	t_wait_sql 5 done "SELECT state FROM jobs WHERE queue = '$Q'
	    AND job_key = 'wake-$i'" || true
	lat=$(t_sql "SELECT (finished_at - created_at) < interval '500 ms'
	    FROM jobs WHERE queue = '$Q' AND job_key = 'wake-$i'")
	[ "$lat" = t ] && fast=$((fast + 1))
	sleep 1.3
done
t_eq "notify: idle workers wake on enqueue (3 of 3 under 500 ms)" 3 "$fast"

enqueue --queue "$Q" --enqueue 1000 --key-prefix "k-" >"$TMP/many.out"
t_eq "many: 1000 jobs enqueued" 1000 "$(grep -c ' created$' "$TMP/many.out")"
if t_wait_sql 120 1003 "SELECT count(*) FROM jobs WHERE queue = '$Q'
    AND state = 'done'"; then
	t_ok "many: all 1003 jobs done"
else
	t_fail "many: all 1003 jobs done" "$(t_sql "SELECT state, count(*)
	    FROM jobs WHERE queue = '$Q' GROUP BY state" | tr '\n' ' ')"
fi
t_eq "many: 1003 executions recorded" 1003 "$(t_sql "SELECT count(*)
    FROM jobq_test_exec e JOIN jobs j ON j.id = e.job_id
    WHERE j.queue = '$Q'")"
t_eq "many: every job executed exactly once" "1003 1 1" "$(t_sql "SELECT
    count(*) || ' ' || min(n) || ' ' || max(n) FROM (SELECT j.id,
    count(e.id) AS n FROM jobs j LEFT JOIN jobq_test_exec e
    ON e.job_id = j.id WHERE j.queue = '$Q' GROUP BY j.id) x")"
t_eq "many: all 4 workers took jobs" 4 "$(t_sql "SELECT
    count(DISTINCT e.worker_pid) FROM jobq_test_exec e JOIN jobs j
    ON j.id = e.job_id WHERE j.queue = '$Q' AND j.job_key LIKE 'k-%'")"
t_eq "many: attempts are 1 everywhere" 1 "$(t_sql "SELECT max(attempts)
    FROM jobs WHERE queue = '$Q'")"
stop_workers "${WS[@]}"
t_eq "many: workers stop cleanly on SIGTERM" 4 "$STOPPED_OK"

# --- a worker killed mid-job: rescued, done once --------------------------
Q="t-kill-$SFX"
enqueue --queue "$Q" --enqueue 1 --job-key victim >/dev/null
start_worker "$Q" 5 --mode slow --sleep-ms 4000
victim=$WPID
if t_wait_sql 10 1 "SELECT count(*) FROM jobq_test_exec e JOIN jobs j
    ON j.id = e.job_id WHERE j.queue = '$Q'"; then
	kill -9 "$victim"
	wait "$victim" 2>/dev/null
	t_eq "kill: job left running by the dead worker" running \
	    "$(t_sql "SELECT state FROM jobs WHERE queue = '$Q'")"
	start_worker "$Q" 5 --mode record
	rescuer=$WPID
	if t_wait_sql 20 done "SELECT state FROM jobs WHERE queue = '$Q'"; then
		t_ok "kill: job rescued and done"
	else
		t_fail "kill: job rescued and done" "$(t_sql "SELECT state,
		    attempts, last_error FROM jobs WHERE queue = '$Q'")"
	fi
	t_eq "kill: done exactly once (finished executions)" 1 \
	    "$(t_sql "SELECT count(*) FROM jobq_test_exec e JOIN jobs j
	    ON j.id = e.job_id WHERE j.queue = '$Q'
	    AND e.finished_at IS NOT NULL")"
	t_eq "kill: first execution never finished, second did" "1 false|2 true" \
	    "$(t_sql "SELECT e.attempt || ' ' || (e.finished_at IS NOT NULL)
	    FROM jobq_test_exec e JOIN jobs j ON j.id = e.job_id
	    WHERE j.queue = '$Q' ORDER BY e.started_at" | paste -sd'|')"
	t_eq "kill: the rescued attempt counted" 2 \
	    "$(t_sql "SELECT attempts FROM jobs WHERE queue = '$Q'")"
	stop_workers "$rescuer"
else
	t_fail "kill: job started" "no execution within 10 s"
fi

# --- per-key cap: counted overlap -----------------------------------------
Q="t-cap-$SFX"
WS=()
for i in 1 2 3 4; do
	start_worker "$Q" 30 --mode slow --sleep-ms 300
	WS+=("$WPID")
done
sleep 0.5
enqueue --queue "$Q" --enqueue 20 --key-prefix a- --cap-key "orgA-$SFX" \
    --cap-limit 3 >/dev/null
enqueue --queue "$Q" --enqueue 6 --key-prefix b- --cap-key "orgB-$SFX" \
    --cap-limit 1 >/dev/null
if t_wait_sql 60 26 "SELECT count(*) FROM jobs WHERE queue = '$Q'
    AND state = 'done'"; then
	t_ok "cap: all 26 capped jobs done"
else
	t_fail "cap: all 26 capped jobs done" "$(t_sql "SELECT state, count(*)
	    FROM jobs WHERE queue = '$Q' GROUP BY state" | tr '\n' ' ')"
fi
t_eq "cap: 26 executions" 26 "$(t_sql "SELECT count(*) FROM jobq_test_exec e
    JOIN jobs j ON j.id = e.job_id WHERE j.queue = '$Q'")"
ova=$(t_sql "$(overlap_sql "$Q" "AND j@.cap_key = 'orgA-$SFX'")")
ovb=$(t_sql "$(overlap_sql "$Q" "AND j@.cap_key = 'orgB-$SFX'")")
t_le "cap: org A (limit 3) never over 3 at once" 3 "$ova"
t_ge "cap: org A ran in parallel (>= 2 at once)" 2 "$ova"
t_le "cap: org B (limit 1) never over 1 at once" 1 "$ovb"
t_ge "cap: other keys ran beside a full one (>= 3 at once)" 3 \
    "$(t_sql "$(overlap_sql "$Q" "")")"
stop_workers "${WS[@]}"

# --- a killed worker's cap slot frees at once -------------------------------
Q="t-capkill-$SFX"
enqueue --queue "$Q" --enqueue 3 --key-prefix c- --cap-key "orgC-$SFX" \
    --cap-limit 1 >/dev/null
start_worker "$Q" 10 --mode slow --sleep-ms 2500
w1=$WPID
start_worker "$Q" 10 --mode slow --sleep-ms 2500
w2=$WPID
if t_wait_sql 10 1 "SELECT count(*) FROM jobq_test_exec e JOIN jobs j
    ON j.id = e.job_id WHERE j.queue = '$Q'"; then
	holder=$(t_sql "SELECT e.worker_pid FROM jobq_test_exec e JOIN jobs j
	    ON j.id = e.job_id WHERE j.queue = '$Q'")
	held=$(t_sql "SELECT e.job_id FROM jobq_test_exec e JOIN jobs j
	    ON j.id = e.job_id WHERE j.queue = '$Q'")
	if [ "$holder" = "$w1" ]; then other=$w2; else other=$w1; fi
	kill -9 "$holder"
	wait "$holder" 2>/dev/null
	# Wake the idle survivor; it must get the slot long before the
	# lease (10 s) of the dead worker's job expires.
	enqueue --queue "$Q" --enqueue 1 --job-key c-wake --cap-key \
	    "orgC-$SFX" --cap-limit 1 >/dev/null
	if t_wait_sql 4 1 "SELECT count(*) FROM jobq_test_exec e JOIN jobs j
	    ON j.id = e.job_id WHERE j.queue = '$Q'
	    AND e.worker_pid = $other"; then
		t_ok "capkill: slot of the killed worker free within 4 s"
	else
		t_fail "capkill: slot of the killed worker free within 4 s"
	fi
	t_eq "capkill: the dead worker's job not yet rescued then" running \
	    "$(t_sql "SELECT state FROM jobs WHERE id = '$held'")"
	if t_wait_sql 40 4 "SELECT count(*) FROM jobs WHERE queue = '$Q'
	    AND state = 'done'"; then
		t_ok "capkill: all 4 jobs done, the killed one rescued"
	else
		t_fail "capkill: all 4 jobs done, the killed one rescued"
	fi
	t_eq "capkill: each job finished exactly once" "4 1 1" \
	    "$(t_sql "SELECT count(*) || ' ' || min(n) || ' ' || max(n)
	    FROM (SELECT j.id, count(e.finished_at) AS n FROM jobs j
	    LEFT JOIN jobq_test_exec e ON e.job_id = j.id
	    WHERE j.queue = '$Q' GROUP BY j.id) x")"
	t_le "capkill: never over 1 at once among live executions" 1 \
	    "$(t_sql "$(overlap_sql "$Q" "AND e@.finished_at IS NOT NULL")")"
	stop_workers "$other"
else
	t_fail "capkill: first job started" "no execution within 10 s"
fi

# --- failure: backoff, then dead with the last error kept -------------------
Q="t-fail-$SFX"
enqueue --queue "$Q" --enqueue 1 --job-key f --max-attempts 3 >/dev/null
delay() {
	t_sql "SELECT extract(epoch FROM run_at - updated_at)
	    BETWEEN $1 AND $1 * 1.25 + 0.01 FROM jobs WHERE queue = '$Q'"
}
BULWARK_JOB_LEASE_S=30 "$W" -c "$CFG" --queue "$Q" --mode fail --once \
    >>"$TMP/fail.log" 2>&1
t_eq "fail: attempt 1 requeued" "queued 1 boom: attempt 1" "$(t_sql "SELECT
    state || ' ' || attempts || ' ' || last_error FROM jobs
    WHERE queue = '$Q'")"
t_eq "fail: first backoff 2 s + <= 25% jitter" t "$(delay 2)"
t_sql "UPDATE jobs SET run_at = now() WHERE queue = '$Q'" >/dev/null
BULWARK_JOB_LEASE_S=30 "$W" -c "$CFG" --queue "$Q" --mode fail --once \
    >>"$TMP/fail.log" 2>&1
t_eq "fail: attempt 2 requeued" "queued 2" "$(t_sql "SELECT state || ' ' ||
    attempts FROM jobs WHERE queue = '$Q'")"
t_eq "fail: second backoff 4 s + <= 25% jitter" t "$(delay 4)"
t_sql "UPDATE jobs SET run_at = now() WHERE queue = '$Q'" >/dev/null
BULWARK_JOB_LEASE_S=30 "$W" -c "$CFG" --queue "$Q" --mode fail --once \
    >>"$TMP/fail.log" 2>&1
t_eq "fail: dead after max_attempts with the last error" \
    "dead 3 boom: attempt 3 true" "$(t_sql "SELECT state || ' ' || attempts ||
    ' ' || last_error || ' ' || (finished_at IS NOT NULL) FROM jobs
    WHERE queue = '$Q'")"
t_eq "fail: 3 executions, none after dead" 3 "$(t_sql "SELECT count(*)
    FROM jobq_test_exec e JOIN jobs j ON j.id = e.job_id
    WHERE j.queue = '$Q'")"

Q="t-perm-$SFX"
enqueue --queue "$Q" --enqueue 1 --job-key p --max-attempts 5 >/dev/null
BULWARK_JOB_LEASE_S=30 "$W" -c "$CFG" --queue "$Q" --mode fail-permanent \
    --once >>"$TMP/fail.log" 2>&1
t_eq "fail: a permanent error is dead at once" "dead 1" "$(t_sql "SELECT
    state || ' ' || attempts FROM jobs WHERE queue = '$Q'")"

Q="t-once-$SFX"
enqueue --queue "$Q" --enqueue 1 --job-key o >/dev/null
BULWARK_JOB_LEASE_S=30 "$W" -c "$CFG" --queue "$Q" --mode fail-once --once \
    >>"$TMP/fail.log" 2>&1
t_sql "UPDATE jobs SET run_at = now() WHERE queue = '$Q'" >/dev/null
BULWARK_JOB_LEASE_S=30 "$W" -c "$CFG" --queue "$Q" --mode fail-once --once \
    >>"$TMP/fail.log" 2>&1
t_eq "fail: a retry that succeeds is done, error cleared" "done 2 true" \
    "$(t_sql "SELECT state || ' ' || attempts || ' ' || (last_error IS NULL)
    FROM jobs WHERE queue = '$Q'")"

t_done
