/* SPDX-License-Identifier: MIT */
/*
 * Periodic (oneshot) runs: every timer-started worker calls periodic_run().
 * It takes pg_try_advisory_lock(DB_LOCK_PERIODIC, hash(job)) on a dedicated
 * connection (not acquired: another host runs it, exit 0), records the run
 * in `periodic_runs`, unique on (job, slot) where slot is the start of the
 * scheduled period, so that a late or overlapping timer neither doubles a
 * run nor silently misses one (missed slots are recorded as `missed` and
 * logged), and stores the outcome for /health/full.
 */
#ifndef BW_PERIODIC_H
#define BW_PERIODIC_H

#include <stdint.h>

#include <json-c/json.h>

#include "core/db.h"
#include "core/err.h"

enum periodic_outcome {
	PO_RAN,	   /* fn ran (see its error) */
	PO_LOCKED, /* another host holds the lock */
	PO_DONE,   /* this slot already ran */
	PO__MAX
};

/*
 * Runs fn(db, arg) for job name in the current slot of period_s seconds.
 * conninfo opens the dedicated locking connection. *outcome says what
 * happened; the return is fn's error when it ran, or a setup error.
 */
enum bw_err periodic_run(const char *conninfo, const char *job, int period_s,
    enum bw_err (*fn)(struct db *, void *), void *arg,
    enum periodic_outcome *outcome);
/*
 * Last run of every job as a JSON object {job:{slot,state,finished_at,...,
 * period_s,since_start_s,overdue}} (new, caller puts). A job is overdue
 * when grace_s > 0 and its last run started more than its period + grace_s
 * seconds ago; *noverdue (may be NULL) counts them.
 */
enum bw_err periodic_status(struct db *, int grace_s, struct json_object **out,
    int *noverdue);

#endif
