#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Periodic runs through bulwark-maint (job "maint", 60 s slots): five
# concurrent starts make exactly one run of the slot and all exit 0; a start
# for a slot already done does nothing; skipped slots are recorded `missed`;
# periodic_runs shows the outcome.
. "${BW_TOP:?}/tests/lib/common.sh"

M="$BW_BUILD/bulwark-maint"
CFG=${BW_CONFIG:-}

t_on_exit t_kill_jobs

# The stack itself runs bulwark-maint every 60 s (its maint-loop). Pause
# that loop for the length of this script, and wait out a run of it in
# flight, so that only the five starts below can run the slot.
loop=$(cat "$BW_RUN/pid/maint-loop.pid" 2>/dev/null || true)
if [ -n "$loop" ] && kill -0 "$loop" 2>/dev/null; then
	kill -STOP "$loop"
	t_on_exit "kill -CONT $loop 2>/dev/null || true"
	for i in $(seq 1 300); do
		pgrep -P "$loop" -x bulwark-maint >/dev/null || break
		sleep 0.1
	done
fi

# Stay clear of a slot boundary: all runs below must share one slot.
for i in $(seq 1 70); do
	s=$(t_sql "SELECT extract(second FROM now())::int")
	[ "$s" -ge 2 ] && [ "$s" -le 40 ] && break
	sleep 1
done
slot=$(t_sql "SELECT to_timestamp(floor(extract(epoch FROM now()) / 60)
    * 60)")

# This script owns the "maint" rows of the last few minutes: a pretend run
# four slots ago, so that the three slots between count as missed.
t_sql "DELETE FROM periodic_runs WHERE job = 'maint'
    AND slot > '$slot'::timestamptz - interval '10 min'" >/dev/null
t_sql "INSERT INTO periodic_runs (job, slot, state, finished_at)
    VALUES ('maint', '$slot'::timestamptz - interval '4 min', 'ok', now())" \
    >/dev/null

# A stuck running job with an expired lease for maint to rescue.
Q="t-maint-$$"
t_sql "INSERT INTO jobs (queue, job_key, state, attempts, lease_token,
    lease_expires_at, locked_by, started_at) VALUES ('$Q', 'stuck',
    'running', 1, gen_random_uuid(), now() - interval '1 min', 'gone:1',
    now() - interval '2 min')" >/dev/null

PS=()
for i in 1 2 3 4 5; do
	"$M" -c "$CFG" >"$TMP/maint-$i.log" 2>&1 &
	PS+=("$!")
done
zero=0
for p in "${PS[@]}"; do
	# Bounded: a run that hangs is killed by the EXIT trap's timeout below.
	if timeout 30 tail --pid="$p" -f /dev/null && wait "$p"; then
		zero=$((zero + 1))
	fi
done
t_eq "periodic: all 5 concurrent starts exit 0" 5 "$zero"
t_eq "periodic: exactly one ok row for the slot" "1 ok" "$(t_sql "SELECT
    count(*) || ' ' || min(state) FROM periodic_runs WHERE job = 'maint'
    AND slot = '$slot'")"
ran=$(cat "$TMP"/maint-[1-5].log | grep -c '"periodic run finished"')
t_eq "periodic: the job body ran exactly once" 1 "$ran"
skipped=$(cat "$TMP"/maint-[1-5].log |
    grep -Ec '"periodic (run held elsewhere|slot already done)"')
t_eq "periodic: the other 4 did not run it" 4 "$skipped"
t_eq "periodic: missed slots recorded" 3 "$(t_sql "SELECT count(*)
    FROM periodic_runs WHERE job = 'maint' AND state = 'missed'
    AND slot > '$slot'::timestamptz - interval '4 min'
    AND slot < '$slot'")"
t_eq "periodic: maint rescued the expired lease" "queued" \
    "$(t_sql "SELECT state FROM jobs WHERE queue = '$Q'")"

before=$(t_sql "SELECT finished_at FROM periodic_runs WHERE job = 'maint'
    AND slot = '$slot'")
"$M" -c "$CFG" >"$TMP/maint-again.log" 2>&1
t_eq "periodic: a start for a done slot exits 0" 0 "$?"
t_match "periodic: a start for a done slot does nothing" \
    'periodic slot already done' "$(cat "$TMP/maint-again.log")"
t_eq "periodic: the done slot is untouched" "$before" \
    "$(t_sql "SELECT finished_at FROM periodic_runs WHERE job = 'maint'
    AND slot = '$slot'")"

t_sql "DELETE FROM jobs WHERE queue = '$Q'" >/dev/null
t_done
