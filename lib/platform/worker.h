/* SPDX-License-Identifier: MIT */
/*
 * The loop every long-running worker shares: signals (SIGTERM/SIGINT stop
 * after the current job, SIGHUP ignored), config and logging set-up,
 * database reconnect with backoff, claim -> run with heartbeat -> complete
 * or fail, and LISTEN/NOTIFY waits when idle. A worker main() is a handler
 * table and one call.
 */
#ifndef BW_WORKER_H
#define BW_WORKER_H

#include <stdbool.h>

#include "core/config.h"
#include "core/db.h"
#include "platform/jobq.h"

struct worker_ctx {
	const struct config *cfg;
	struct db	    *db;
	const char	    *name; /* worker id in job rows */
};

/*
 * A handler runs one job. Return BW_OK to complete it; another error fails
 * the attempt (retryable unless *permanent is set). errmsg (errlen bytes)
 * carries the reason kept in the job row.
 */
typedef enum bw_err (*worker_fn)(struct worker_ctx *, struct jobq_job *,
    bool *permanent, char *errmsg, size_t errlen);

struct worker_def {
	const char *service; /* log name, e.g. "bulwark-export" */
	const char *queue;
	worker_fn   run;
	int	    lease_s; /* 0 = config job_lease_s */
};

/*
 * Called after a job failed for good (its last attempt, or a permanent
 * failure: the job is now `dead`), with the reason kept in the row. Set by
 * the executable (the error tracker's hook: lib/platform cannot include a
 * domain); NULL, the default, calls nothing. It must not fail the loop.
 */
typedef void (*worker_dead_fn)(struct worker_ctx *, const struct jobq_job *,
    const char *error);
void worker_on_dead(worker_dead_fn);

/*
 * Called when a oneshot's periodic run failed (worker_oneshot() exits 1:
 * its body, or its set-up, returned er), with the loaded config and the
 * job's name. Set by the executable, like worker_on_dead(); NULL, the
 * default, calls nothing. It must not fail the exit.
 */
typedef void (*worker_run_failed_fn)(const struct config *, const char *job,
    enum bw_err er);
void worker_on_run_failed(worker_run_failed_fn);

/* 1 once SIGTERM/SIGINT arrived. Handlers doing long work poll it. */
int worker_stopping(void);
/*
 * Runs the worker until stopped. argc/argv: -c CONFIG, --once (process
 * what is runnable, then exit), -h/--help, --version. Returns the process
 * exit status (2 for a usage error).
 */
int worker_main(const struct worker_def *, int argc, char **argv);
/* Shared by oneshot mains: parses -c, loads config, inits logging, sets
 * worker_statement_timeout_ms as the default of every db_new() after it.
 * -h/--help and --version print and exit(0) here; a usage error prints
 * the usage on stderr and returns 2. Returns 0 on success, else an exit
 * status after logging why. */
int
worker_setup(const char *service, int argc, char **argv, struct config *cfg);

/*
 * What the usage of this executable offers beyond -c, -h and --version:
 * synopsis ("[-c CONFIG] [--pass]") and one help line per extra option,
 * each ending in a newline. Call before worker_setup(); worker_main() sets
 * its own (--once).
 */
void worker_usage(const char *synopsis, const char *opthelp);

/*
 * The whole main() of a timer-started oneshot worker: set-up (-c CONFIG),
 * then periodic_run() of job with period_s, fn getting the loaded config
 * as its argument. Exit status 0 when it ran, or when another host holds
 * the job's lock, or when this slot already ran; 1 otherwise.
 */
int worker_oneshot(const char *service, const char *job, int period_s,
    enum bw_err (*fn)(struct db *, void *), int argc, char **argv);
/*
 * Its part after the set-up, for a oneshot main of its own (extra options):
 * periodic_run() of job, its slot period_s (periodic_slot_s instead when
 * set), fn getting cfg; a failed run goes to worker_on_run_failed()'s hook.
 * Returns the exit status as worker_oneshot() does. cfg stays the
 * caller's.
 */
int worker_periodic(struct config *cfg, const char *job, int period_s,
    enum bw_err (*fn)(struct db *, void *));

#endif
