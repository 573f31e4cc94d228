/* SPDX-License-Identifier: MIT */
/*
 * The job queue (PostgreSQL table `jobs`), shared by every worker: unique
 * job keys, claims with FOR UPDATE SKIP LOCKED in (priority, run_at) order,
 * leases renewed by heartbeat, exponential backoff with jitter up to
 * max_attempts then `dead`, rescue of expired leases, LISTEN/NOTIFY wake-ups
 * and a per-key concurrency cap that holds across every worker process.
 *
 * States: queued -> running -> done | queued (retry) | dead.
 */
#ifndef BW_JOBQ_H
#define BW_JOBQ_H

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "core/db.h"
#include "core/err.h"

#define BW_JOBQ_QUEUE_MAX 65 /* queue name + NUL */

struct jobq_spec {
	const char *queue;   /* required, [a-z0-9_.-]{1,64} */
	const char *job_key; /* unique per queue; NULL = random */
	const char *org_id;  /* UUID or NULL */
	const char
	    *cap_key;	/* concurrency group, e.g. the org id; NULL = none */
	int  cap_limit; /* running jobs per cap_key (>= 1) when cap_key set */
	const char *payload;	  /* JSON text, NULL = {} */
	int	    priority;	  /* lower runs first; default 0 */
	int	    max_attempts; /* 0 = config default */
	int	    delay_s;	  /* run_at = now() + delay */
	/* Carried into the job's log lines; NULL: the log context's
	 * correlation_id (the request or job that enqueues). */
	const char *correlation_id;
};

struct jobq_job {
	char  id[37];
	char  queue[BW_JOBQ_QUEUE_MAX];
	char *job_key; /* owned */
	char *org_id;  /* owned, NULL when none */
	char *cap_key; /* owned, NULL when none */
	int   cap_limit;
	int   cap_slot; /* advisory-lock slot held, -1 none */
	char *payload;	/* owned JSON text */
	int   attempts; /* including this one */
	int   max_attempts;
	char  lease_token[37]; /* proves ownership */
	char *correlation_id;  /* owned, NULL when none */
};

/*
 * Inserts a job, or finds the one with the same (queue, job_key). id_out (37
 * bytes) gets its id, *created whether this call made it. Notifies
 * listeners of the queue. BW_EINVAL on a bad spec.
 */
enum bw_err jobq_enqueue(struct db *, const struct jobq_spec *, char id_out[37],
    bool *created);
/*
 * Claims the next runnable job of queue for lease_s seconds, respecting its
 * cap. *got = false when none is runnable now. On success job is filled
 * (release with jobq_job_clear()); worker names the claimer in the row.
 */
enum bw_err jobq_claim(struct db *, const char *queue, const char *worker,
    int lease_s, struct jobq_job *job, bool *got);
/* Extends the lease; *owned = false when the job is no longer ours. */
enum bw_err
jobq_heartbeat(struct db *, const struct jobq_job *, int lease_s, bool *owned);
/* Marks done (only if still ours). */
enum bw_err jobq_complete(struct db *, const struct jobq_job *);
/*
 * Records a failed attempt: back to queued with run_at = now + backoff
 * (base_s * 2^(attempts-1), capped, plus jitter) or `dead` once attempts
 * reach max_attempts or when retryable is false. error is kept (truncated).
 */
enum bw_err jobq_fail(struct db *, const struct jobq_job *, const char *error,
    bool retryable);
/*
 * Requeues running jobs whose lease expired (their worker died); the attempt
 * is not counted as failed handler work unless the handler had started.
 * Only touches a row still in the state it read. *n gets the count.
 */
enum bw_err jobq_rescue(struct db *, int *n);
/* Deletes done/dead jobs finished more than days ago; *n gets the count. */
enum bw_err jobq_purge(struct db *, int days, int *n);
/* LISTEN on the queue's channel (once per connection). */
enum bw_err jobq_listen(struct db *, const char *queue);
/* Waits up to timeout_ms for a notification; returns BW_OK either way. */
enum bw_err jobq_wait(struct db *, int timeout_ms);
/* Counts by state for one queue (or all when NULL): fills counts[4]
 * in the order queued, running, done, dead. */
enum bw_err jobq_counts(struct db *, const char *queue, int64_t counts[4]);
/*
 * What /health/full judges of the queue (lib/platform/health.c), read
 * without a count over the table: each figure is counted up to cap rows
 * through a partial index of its state, and the oldest runnable job is one
 * probe of jobs_queued_run_at (sql/0014).
 */
struct jobq_health {
	int64_t queued;	  /* queued jobs, at most cap */
	int64_t running;  /* running jobs, at most cap */
	int64_t dead;	  /* jobs that went dead in the last window, <= cap */
	double	oldest_s; /* now - run_at of the oldest runnable job; -1 none */
	char	oldest_queue[BW_JOBQ_QUEUE_MAX]; /* its queue, "" when none */
};
/* Fills h; dead_window_s >= 0 (0 counts no dead job). BW_EINVAL, BW_EDB. */
enum bw_err
jobq_health(struct db *, int cap, int dead_window_s, struct jobq_health *h);
/*
 * One org's jobs (GET /api/v1/admin/overview), as a new object (caller
 * puts): {"queues":[{"queue","queued","running","dead"}] (queues with a
 * job in one of those states, by name), "oldest_runnable_s" (now - run_at
 * of the org's oldest runnable queued job, null when none),
 * "oldest_runnable_queue"}. Done jobs are not read. BW_EINVAL bad id.
 */
enum bw_err
jobq_org_depths(struct db *, const char *org_id, struct json_object **out);

void jobq_job_clear(struct jobq_job *);

#endif
