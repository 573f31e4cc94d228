/* SPDX-License-Identifier: MIT */
/*
 * The job queue on the `jobs` table: enqueue with unique keys, claims with
 * FOR UPDATE SKIP LOCKED, leases, backoff, rescue, LISTEN/NOTIFY, and a
 * per-key concurrency cap made of session advisory locks ("slots").
 *
 * The cap: a job with cap_key K and cap_limit L may only run while its
 * worker's session holds one of L advisory locks (DB_LOCK_JOBCAP, h(K) + s),
 * s in 0..L-1. Claims for one key are serialized by a transaction-level
 * advisory lock on K, so two claimers never race over the same slots, and a
 * killed worker's session ends, which frees its slot at once (its job row
 * stays `running` until the lease expires and jobq_rescue() requeues it).
 *
 * Attempts: jobq_claim() counts the attempt (attempts + 1) and sets
 * started_at, since the worker starts the handler right after the claim; so
 * a job whose lease expired had its handler started, and its attempt stays
 * counted when it is rescued (a job that kills its workers ends `dead`
 * after max_attempts instead of looping forever). jobq_fail() is only called
 * after the handler ran and never counts a second time.
 */
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/jv.h"
#include "platform/jobq.h"
#include "core/limits.h"
#include "core/pgarray.h"
#include "core/log.h"

#define JOBQ_CLAIM_TRIES    16	 /* capped keys skipped in one claim */
#define JOBQ_BACKOFF_BASE_S 2	 /* first retry delay */
#define JOBQ_BACKOFF_MAX_S  3600 /* retry delay cap */
#define JOBQ_RESCUE_BATCH   1000 /* rows one rescue pass touches */
#define JOBQ_CHANNEL_MAX    64	 /* NAMEDATALEN */

/* State of one jobq_claim() transaction (db_tx() may run it again). */
struct jobq_claim_arg {
	const char	*queue;
	const char	*worker;
	int		 lease_s;
	struct jobq_job *job;
	bool		 got;
	int32_t		 slot_key; /* session lock held, if slot_held */
	bool		 slot_held;
};

/* 32-bit FNV-1a over a then "/" then b: the cap key's lock base. */
static uint32_t
jobq_hash(const char *a, const char *b)
{
	uint32_t	     h = 2166136261u;
	const unsigned char *p;

	for (p = (const unsigned char *)a; *p != '\0'; p++)
		h = (h ^ *p) * 16777619u;
	h = (h ^ '/') * 16777619u;
	for (p = (const unsigned char *)b; *p != '\0'; p++)
		h = (h ^ *p) * 16777619u;
	return h;
}

/* The advisory lock key of slot s of (queue, cap_key). */
static int32_t
jobq_slot_key(const char *queue, const char *cap_key, int s)
{
	return (int32_t)(jobq_hash(queue, cap_key) + (uint32_t)s);
}

/* 1 when q matches ^[a-z0-9_.-]{1,64}$ (the table's CHECK). */
static int
jobq_queue_ok(const char *q)
{
	size_t i;

	if (q == NULL || q[0] == '\0')
		return 0;
	for (i = 0; q[i] != '\0'; i++) {
		if (i >= BW_MAX_QUEUE_NAME)
			return 0;
		if (!((q[i] >= 'a' && q[i] <= 'z') ||
			(q[i] >= '0' && q[i] <= '9') || q[i] == '_' ||
			q[i] == '.' || q[i] == '-'))
			return 0;
	}
	return 1;
}

/*
 * The NOTIFY channel of a queue: "jobq_" and the first 58 bytes of its name,
 * so that it fits NAMEDATALEN. Two long names sharing a prefix only share
 * wake-ups. The SQL in jobq_rescue() spells the same rule.
 */
static void
jobq_channel(const char *queue, char out[JOBQ_CHANNEL_MAX])
{
	snprintf(out, JOBQ_CHANNEL_MAX, "jobq_%.58s", queue);
}

/* Copies a column (NULL stays NULL). Returns BW_ENOMEM on failure. */
static enum bw_err
jobq_dupcol(const PGresult *res, int row, int col, char **out)
{
	*out = db_col_dup(res, row, col);
	return *out == NULL && db_col_str(res, row, col) != NULL ? BW_ENOMEM
								 : BW_OK;
}

/*
 * Copies error text for last_error: at most BW_MAX_JOB_ERROR bytes, controls
 * and bytes outside ASCII replaced so that truncation never splits a UTF-8
 * sequence and the column always takes it.
 */
static void
jobq_errtext(const char *in, char out[BW_MAX_JOB_ERROR + 1])
{
	size_t i;

	if (in == NULL)
		in = "";
	for (i = 0; i < BW_MAX_JOB_ERROR && in[i] != '\0'; i++) {
		unsigned char c = (unsigned char)in[i];

		out[i] = (c < 0x20 || c >= 0x7f) ? '?' : (char)c;
	}
	out[i] = '\0';
}

void
jobq_job_clear(struct jobq_job *job)
{
	if (job == NULL)
		return;
	free(job->job_key);
	free(job->org_id);
	free(job->cap_key);
	free(job->payload);
	free(job->correlation_id);
	memset(job, 0, sizeof(*job));
	job->cap_slot = -1;
}

static const char jobq_sql_enqueue[] =
    "WITH ins AS ("
    " INSERT INTO jobs (queue, job_key, org_id, cap_key, cap_limit,"
    "  payload, priority, max_attempts, run_at, correlation_id)"
    " VALUES ($1, COALESCE($2::text, gen_random_uuid()::text), $3::uuid,"
    "  $4, $5::int, COALESCE($6::jsonb, '{}'::jsonb), $7::int,"
    "  COALESCE($8::int, 5), now() + make_interval(secs => $9::int), $10)"
    " ON CONFLICT (queue, job_key) DO NOTHING RETURNING id)"
    " SELECT id, true FROM ins"
    " UNION ALL"
    " SELECT id, false FROM jobs WHERE queue = $1 AND job_key = $2::text"
    "  AND NOT EXISTS (SELECT 1 FROM ins)";

/*
 * Inserts or finds the job. A concurrent enqueue of the same key that
 * commits while our statement runs is invisible to its snapshot, so the
 * statement returns no row; the next statement sees it, hence the loop.
 * Returns BW_OK, BW_EINVAL (bad spec or a value the table refuses),
 * BW_ETOOBIG (payload), or a db error.
 */
enum bw_err
jobq_enqueue(struct db *db, const struct jobq_spec *spec, char id_out[37],
    bool *created)
{
	char	    caplim[16], prio[16], maxa[16], delay[16];
	char	    chan[JOBQ_CHANNEL_MAX];
	const char *p[10], *corr;
	PGresult   *res = NULL;
	enum bw_err er = BW_OK;
	bool	    made = false;
	int	    tries;

	if (spec == NULL || !jobq_queue_ok(spec->queue) ||
	    (spec->job_key != NULL &&
		(spec->job_key[0] == '\0' ||
		    strlen(spec->job_key) > BW_MAX_JOB_KEY)) ||
	    (spec->cap_key != NULL &&
		(strlen(spec->cap_key) > BW_MAX_JOB_KEY ||
		    spec->cap_limit < 1)) ||
	    spec->max_attempts < 0 || spec->delay_s < 0)
		return BW_EINVAL;
	if (spec->payload != NULL && strlen(spec->payload) > BW_MAX_JOB_PAYLOAD)
		return BW_ETOOBIG;
	snprintf(caplim, sizeof(caplim), "%d", spec->cap_limit);
	snprintf(prio, sizeof(prio), "%d", spec->priority);
	snprintf(maxa, sizeof(maxa), "%d", spec->max_attempts);
	snprintf(delay, sizeof(delay), "%d", spec->delay_s);
	p[0] = spec->queue;
	p[1] = spec->job_key;
	p[2] = spec->org_id;
	p[3] = spec->cap_key;
	p[4] = spec->cap_key != NULL ? caplim : NULL;
	p[5] = spec->payload;
	p[6] = prio;
	p[7] = spec->max_attempts > 0 ? maxa : NULL;
	p[8] = delay;
	/* The request (or job) that enqueues names the job's log lines. */
	corr = spec->correlation_id != NULL ? spec->correlation_id
					    : log_ctx_get(LC_CORRELATION_ID);
	p[9] =
	    corr != NULL && corr[0] != '\0' && strlen(corr) <= BW_MAX_REQUEST_ID
	    ? corr
	    : NULL;
	for (tries = 0; tries < 3; tries++) {
		er =
		    db_execp(db, "jobq_enqueue", jobq_sql_enqueue, 10, p, &res);
		if (er != BW_OK)
			return er;
		if (PQntuples(res) == 1)
			break;
		PQclear(res);
		res = NULL;
	}
	if (res == NULL) {
		log_kv(LL_ERROR, "jobq enqueue found no row", "queue",
		    spec->queue, NULL);
		return BW_EDB;
	}
	snprintf(id_out, 37, "%s", PQgetvalue(res, 0, 0));
	made = PQgetvalue(res, 0, 1)[0] == 't';
	PQclear(res);
	if (made && spec->delay_s == 0) {
		/* Delivered at commit when the caller is inside a tx. */
		jobq_channel(spec->queue, chan);
		p[0] = chan;
		er = db_execp(db, "jobq_notify", "SELECT pg_notify($1, '')", 1,
		    p, NULL);
		if (er != BW_OK)
			return er;
	}
	if (created != NULL)
		*created = made;
	return BW_OK;
}

static const char jobq_sql_candidate[] =
    "SELECT id, cap_key, cap_limit FROM jobs"
    " WHERE queue = $1 AND state = 'queued' AND run_at <= now()"
    "  AND (cap_key IS NULL OR NOT (cap_key = ANY($2::text[])))"
    " ORDER BY priority, run_at FOR UPDATE SKIP LOCKED LIMIT 1";

static const char jobq_sql_take[] =
    "UPDATE jobs SET state = 'running', attempts = attempts + 1,"
    "  lease_token = gen_random_uuid(),"
    "  lease_expires_at = now() + make_interval(secs => $2::int),"
    "  locked_by = $3, started_at = now(), cap_slot = $4::int,"
    "  finished_at = NULL, updated_at = now()"
    " WHERE id = $1::uuid AND state = 'queued'"
    " RETURNING id, queue, job_key, org_id, cap_key, cap_limit,"
    "  payload::text, attempts, max_attempts, lease_token, cap_slot,"
    "  correlation_id";

/*
 * Looks for a free slot of the capped key under the per-key serializing
 * transaction lock. *slot gets the slot taken or -1. The session lock taken
 * is remembered in a so that a failed transaction gives it back.
 */
static enum bw_err
jobq_take_slot(struct db *db, struct jobq_claim_arg *a, const char *cap_key,
    int cap_limit, int *slot)
{
	char	    big[32];
	const char *p[1] = { big };
	enum bw_err er;
	bool	    got = false;
	int32_t	    key;
	int	    s;

	/*
	 * The bigint form lives in its own lock space (objsubid 1), apart
	 * from the two-int slot locks, so the two never collide.
	 */
	snprintf(big, sizeof(big), "%" PRId64,
	    (int64_t)(((uint64_t)DB_LOCK_JOBCAP << 32) |
		jobq_hash(a->queue, cap_key)));
	er = db_execp(db, "jobq_cap_xlock",
	    "SELECT pg_advisory_xact_lock($1::bigint)", 1, p, NULL);
	if (er != BW_OK)
		return er;
	*slot = -1;
	for (s = 0; s < cap_limit; s++) {
		key = jobq_slot_key(a->queue, cap_key, s);
		er = db_try_lock(db, DB_LOCK_JOBCAP, key, &got);
		if (er != BW_OK)
			return er;
		if (got) {
			a->slot_key = key;
			a->slot_held = true;
			*slot = s;
			break;
		}
	}
	return BW_OK;
}

/* Gives back a slot lock this session holds (no-op when it does not). */
static enum bw_err
jobq_unlock_slot(struct db *db, int32_t key, const char *notify_chan)
{
	char	    ns[16], k[16];
	const char *p[3] = { ns, k, notify_chan };

	snprintf(ns, sizeof(ns), "%" PRId32, (int32_t)DB_LOCK_JOBCAP);
	snprintf(k, sizeof(k), "%" PRId32, key);
	/*
	 * pg_locks guards the unlock: after a reconnect the slot is gone with
	 * the old session, and a bare unlock would only warn. The NOTIFY is
	 * delivered at the end of this statement, after the unlock, so a
	 * woken worker finds the slot free.
	 */
	return db_execp(db, "jobq_slot_free",
	    "SELECT (SELECT count(pg_advisory_unlock($1::int, $2::int))"
	    "  FROM pg_locks WHERE locktype = 'advisory'"
	    "  AND pid = pg_backend_pid() AND classid = $1::int::oid"
	    "  AND objid = $2::int::oid AND objsubid = 2 AND granted),"
	    " CASE WHEN $3::text IS NULL THEN NULL"
	    "  ELSE pg_notify($3::text, '') END",
	    3, p, NULL);
}

/* Fills job from a jobq_sql_take row. */
static enum bw_err
jobq_fill(const PGresult *res, struct jobq_job *job)
{
	enum bw_err er;

	jobq_job_clear(job);
	snprintf(job->id, sizeof(job->id), "%s", PQgetvalue(res, 0, 0));
	snprintf(job->queue, sizeof(job->queue), "%s", PQgetvalue(res, 0, 1));
	er = jobq_dupcol(res, 0, 2, &job->job_key);
	if (er == BW_OK)
		er = jobq_dupcol(res, 0, 3, &job->org_id);
	if (er == BW_OK)
		er = jobq_dupcol(res, 0, 4, &job->cap_key);
	if (er == BW_OK)
		er = jobq_dupcol(res, 0, 6, &job->payload);
	job->cap_limit = (int)db_col_i64_or(res, 0, 5, 0);
	job->attempts = (int)db_col_i64_or(res, 0, 7, 0);
	job->max_attempts = (int)db_col_i64_or(res, 0, 8, 0);
	snprintf(job->lease_token, sizeof(job->lease_token), "%s",
	    PQgetvalue(res, 0, 9));
	job->cap_slot = (int)db_col_i64_or(res, 0, 10, -1);
	if (er == BW_OK)
		er = jobq_dupcol(res, 0, 11, &job->correlation_id);
	if (er != BW_OK)
		jobq_job_clear(job);
	return er;
}

/*
 * The claim transaction: the first runnable row (skipping rows other
 * claimers hold and keys found full), a slot when the row is capped, then
 * the row becomes ours. Runs again from the top when db_tx() retries.
 */
static enum bw_err
jobq_claim_tx(struct db *db, void *arg)
{
	struct jobq_claim_arg *a = arg;
	char		      *full[JOBQ_CLAIM_TRIES];
	char		       lease[16], slotbuf[16], id[37];
	const char	      *p[4];
	struct buf	       arr;
	PGresult	      *res = NULL;
	enum bw_err	       er = BW_OK;
	int		       nfull = 0, i, slot, limit;

	buf_init(&arr, (size_t)JOBQ_CLAIM_TRIES * (2 * BW_MAX_JOB_KEY + 3) + 2);
	a->got = false;
	if (a->slot_held) {
		/* A retried transaction: the session lock outlived it. */
		er = jobq_unlock_slot(db, a->slot_key, NULL);
		if (er != BW_OK)
			goto out;
		a->slot_held = false;
	}
	for (i = 0; i < JOBQ_CLAIM_TRIES; i++) {
		buf_reset(&arr);
		er = pgarray_text(&arr, (const char *const *)full,
		    (size_t)nfull);
		if (er != BW_OK)
			goto out;
		p[0] = a->queue;
		p[1] = buf_cstr(&arr);
		er = db_execp(db, "jobq_candidate", jobq_sql_candidate, 2, p,
		    &res);
		if (er != BW_OK)
			goto out;
		if (PQntuples(res) == 0)
			goto out; /* nothing runnable */
		snprintf(id, sizeof(id), "%s", PQgetvalue(res, 0, 0));
		slot = -1;
		if (!PQgetisnull(res, 0, 1)) {
			limit = (int)db_col_i64_or(res, 0, 2, 0);
			full[nfull] = strdup(PQgetvalue(res, 0, 1));
			if (full[nfull] == NULL) {
				er = BW_ENOMEM;
				goto out;
			}
			nfull++;
			er = jobq_take_slot(db, a, full[nfull - 1], limit,
			    &slot);
			if (er != BW_OK)
				goto out;
			if (slot < 0) {
				PQclear(res);
				res = NULL;
				continue; /* key full: skip its rows */
			}
			nfull--; /* not full; keep the copy for free */
			free(full[nfull]);
		}
		PQclear(res);
		res = NULL;
		snprintf(lease, sizeof(lease), "%d", a->lease_s);
		snprintf(slotbuf, sizeof(slotbuf), "%d", slot);
		p[0] = id;
		p[1] = lease;
		p[2] = a->worker;
		p[3] = slot >= 0 ? slotbuf : NULL;
		er = db_execp(db, "jobq_take", jobq_sql_take, 4, p, &res);
		if (er != BW_OK)
			goto out;
		if (PQntuples(res) != 1) {
			/* Cannot happen under our row lock; be safe. */
			er = BW_ESTATE;
			goto out;
		}
		er = jobq_fill(res, a->job);
		if (er == BW_OK)
			a->got = true;
		goto out;
	}
out:
	PQclear(res);
	for (i = 0; i < nfull; i++)
		free(full[i]);
	buf_free(&arr);
	return er;
}

/*
 * Claims a job (see the file comment for the cap). The caller owns job's
 * strings afterwards (jobq_job_clear()). Returns BW_OK with *got telling,
 * BW_EINVAL on a bad queue or lease, or a db error (no slot is kept then).
 */
enum bw_err
jobq_claim(struct db *db, const char *queue, const char *worker, int lease_s,
    struct jobq_job *job, bool *got)
{
	struct jobq_claim_arg a;
	struct jobq_job	      tmp;
	enum bw_err	      er;

	if (!jobq_queue_ok(queue) || lease_s < 1 || worker == NULL)
		return BW_EINVAL;
	memset(&tmp, 0, sizeof(tmp));
	tmp.cap_slot = -1;
	memset(&a, 0, sizeof(a));
	a.queue = queue;
	a.worker = worker;
	a.lease_s = lease_s;
	a.job = &tmp;
	er = db_tx(db, false, jobq_claim_tx, &a);
	if (er != BW_OK) {
		if (a.slot_held && db_conn(db) != NULL)
			(void)jobq_unlock_slot(db, a.slot_key, NULL);
		jobq_job_clear(&tmp);
		return er;
	}
	if (a.got)
		*job = tmp; /* hands over the strings */
	*got = a.got;
	return BW_OK;
}

/* Releases the job's slot, if any, and wakes the queue's idle workers. */
static enum bw_err
jobq_release(struct db *db, const struct jobq_job *job)
{
	char chan[JOBQ_CHANNEL_MAX];

	if (job->cap_key == NULL || job->cap_slot < 0)
		return BW_OK;
	jobq_channel(job->queue, chan);
	return jobq_unlock_slot(db,
	    jobq_slot_key(job->queue, job->cap_key, job->cap_slot), chan);
}

enum bw_err
jobq_heartbeat(struct db *db, const struct jobq_job *job, int lease_s,
    bool *owned)
{
	char	    lease[16];
	const char *p[3] = { job->id, job->lease_token, lease };
	PGresult   *res = NULL;
	enum bw_err er;

	snprintf(lease, sizeof(lease), "%d", lease_s);
	er = db_execp(db, "jobq_heartbeat",
	    "UPDATE jobs SET lease_expires_at = now() +"
	    "  make_interval(secs => $3::int), updated_at = now()"
	    " WHERE id = $1::uuid AND state = 'running'"
	    "  AND lease_token = $2::uuid RETURNING 1",
	    3, p, &res);
	if (er != BW_OK)
		return er;
	*owned = PQntuples(res) == 1;
	PQclear(res);
	return BW_OK;
}

/*
 * Marks the job done if it is still ours, then frees its slot. Returns
 * BW_OK, BW_ESTATE when the lease was lost (someone rescued the job), or a
 * db error.
 */
enum bw_err
jobq_complete(struct db *db, const struct jobq_job *job)
{
	const char *p[2] = { job->id, job->lease_token };
	PGresult   *res = NULL;
	enum bw_err er, er2;
	int	    n = 0;

	er = db_execp(db, "jobq_complete",
	    "UPDATE jobs SET state = 'done', finished_at = now(),"
	    "  updated_at = now(), lease_token = NULL, lease_expires_at = NULL,"
	    "  cap_slot = NULL, last_error = NULL"
	    " WHERE id = $1::uuid AND state = 'running'"
	    "  AND lease_token = $2::uuid RETURNING 1",
	    2, p, &res);
	if (er == BW_OK) {
		n = PQntuples(res);
		PQclear(res);
	}
	er2 = jobq_release(db, job);
	if (er != BW_OK)
		return er;
	if (n != 1) {
		log_kv(LL_WARN, "jobq complete: lease lost", "job_id", job->id,
		    NULL);
		return BW_ESTATE;
	}
	return er2;
}

/*
 * base_s * 2^(attempts-1) capped at JOBQ_BACKOFF_MAX_S, plus 0-25% jitter,
 * in milliseconds.
 */
static int64_t
jobq_backoff_ms(int attempts)
{
	int64_t ms = (int64_t)JOBQ_BACKOFF_BASE_S * 1000;
	int	i;

	for (i = 1; i < attempts && ms < (int64_t)JOBQ_BACKOFF_MAX_S * 1000;
	     i++)
		ms *= 2;
	if (ms > (int64_t)JOBQ_BACKOFF_MAX_S * 1000)
		ms = (int64_t)JOBQ_BACKOFF_MAX_S * 1000;
	return ms + ms * (int64_t)arc4random_uniform(2501) / 10000;
}

/*
 * Requeues with backoff, or buries the job (`dead`) when attempts are spent
 * or the error is permanent; last_error keeps the (truncated) reason. Only
 * a row still ours is touched. Returns BW_OK, BW_ESTATE when the lease was
 * lost, or a db error.
 */
enum bw_err
jobq_fail(struct db *db, const struct jobq_job *job, const char *error,
    bool retryable)
{
	char	    msg[BW_MAX_JOB_ERROR + 1], delay[32];
	const char *p[5];
	PGresult   *res = NULL;
	enum bw_err er, er2;
	int64_t	    ms;
	int	    n = 0;

	jobq_errtext(error, msg);
	ms = jobq_backoff_ms(job->attempts);
	snprintf(delay, sizeof(delay), "%" PRId64 ".%03d", ms / 1000,
	    (int)(ms % 1000));
	p[0] = job->id;
	p[1] = job->lease_token;
	p[2] = retryable ? "t" : "f";
	p[3] = delay;
	p[4] = msg;
	er = db_execp(db, "jobq_fail",
	    "UPDATE jobs SET"
	    " state = CASE WHEN $3::bool AND attempts < max_attempts"
	    "  THEN 'queued' ELSE 'dead' END,"
	    " run_at = CASE WHEN $3::bool AND attempts < max_attempts"
	    "  THEN now() + make_interval(secs => $4::float8) ELSE run_at END,"
	    " finished_at = CASE WHEN $3::bool AND attempts < max_attempts"
	    "  THEN NULL ELSE now() END,"
	    " last_error = $5, updated_at = now(), lease_token = NULL,"
	    " lease_expires_at = NULL, cap_slot = NULL"
	    " WHERE id = $1::uuid AND state = 'running'"
	    "  AND lease_token = $2::uuid RETURNING state",
	    5, p, &res);
	if (er == BW_OK) {
		n = PQntuples(res);
		if (n == 1 && strcmp(PQgetvalue(res, 0, 0), "dead") == 0)
			log_kv(LL_WARN, "jobq job dead", "job_id", job->id,
			    "queue", job->queue, "error", msg, NULL);
		PQclear(res);
	}
	er2 = jobq_release(db, job);
	if (er != BW_OK)
		return er;
	if (n != 1) {
		log_kv(LL_WARN, "jobq fail: lease lost", "job_id", job->id,
		    NULL);
		return BW_ESTATE;
	}
	return er2;
}

static const char jobq_sql_rescue[] =
    "WITH c AS ("
    " SELECT id, lease_token FROM jobs"
    "  WHERE state = 'running' AND lease_expires_at < now()"
    "  ORDER BY lease_expires_at LIMIT $1::int FOR UPDATE SKIP LOCKED),"
    " u AS ("
    " UPDATE jobs j SET"
    "  state = CASE WHEN j.attempts >= j.max_attempts"
    "   THEN 'dead' ELSE 'queued' END,"
    "  finished_at = CASE WHEN j.attempts >= j.max_attempts"
    "   THEN now() END,"
    "  run_at = now(),"
    "  last_error = 'lease expired: worker ' || coalesce(j.locked_by, '?')"
    "   || ' lost',"
    "  lease_token = NULL, lease_expires_at = NULL, cap_slot = NULL,"
    "  updated_at = now()"
    " FROM c WHERE j.id = c.id AND j.state = 'running'"
    "  AND j.lease_token = c.lease_token"
    " RETURNING j.queue, j.state)"
    " SELECT queue, count(*) FILTER (WHERE state = 'queued'),"
    "  count(*) FILTER (WHERE state = 'dead')"
    " FROM u GROUP BY queue";

/*
 * Requeues (or buries, when attempts are spent) running jobs whose lease
 * expired. The UPDATE re-checks state and lease token of every row it read,
 * so a job completed or heartbeaten meanwhile is left alone. Wakes the
 * queues that got jobs back. *n gets the number of rows touched.
 */
enum bw_err
jobq_rescue(struct db *db, int *n)
{
	char	    batch[16], chan[JOBQ_CHANNEL_MAX];
	const char *p[1] = { batch };
	PGresult   *res = NULL;
	enum bw_err er;
	int	    i, total = 0, q;

	snprintf(batch, sizeof(batch), "%d", JOBQ_RESCUE_BATCH);
	er = db_execp(db, "jobq_rescue", jobq_sql_rescue, 1, p, &res);
	if (er != BW_OK)
		return er;
	for (i = 0; i < PQntuples(res); i++) {
		q = (int)db_col_i64_or(res, i, 1, 0);
		total += q + (int)db_col_i64_or(res, i, 2, 0);
		log_kv(LL_WARN, "jobq rescued expired leases", "queue",
		    PQgetvalue(res, i, 0), "requeued", PQgetvalue(res, i, 1),
		    "dead", PQgetvalue(res, i, 2), NULL);
		if (q > 0) {
			jobq_channel(PQgetvalue(res, i, 0), chan);
			p[0] = chan;
			er = db_execp(db, "jobq_notify",
			    "SELECT pg_notify($1, '')", 1, p, NULL);
			if (er != BW_OK)
				break;
		}
	}
	PQclear(res);
	if (er == BW_OK && n != NULL)
		*n = total;
	return er;
}

enum bw_err
jobq_purge(struct db *db, int days, int *n)
{
	char	    d[16];
	const char *p[1] = { d };
	PGresult   *res = NULL;
	enum bw_err er;

	if (days < 0)
		return BW_EINVAL;
	snprintf(d, sizeof(d), "%d", days);
	er = db_execp(db, "jobq_purge",
	    "DELETE FROM jobs WHERE state IN ('done', 'dead')"
	    " AND finished_at < now() - make_interval(days => $1::int)",
	    1, p, &res);
	if (er != BW_OK)
		return er;
	if (n != NULL)
		*n = (int)db_rows(res);
	PQclear(res);
	return BW_OK;
}

/*
 * LISTEN on the queue's channel. The name passed jobq_queue_ok(), so it
 * holds no quote and may be spliced into the identifier.
 */
enum bw_err
jobq_listen(struct db *db, const char *queue)
{
	char sql[JOBQ_CHANNEL_MAX + 16], chan[JOBQ_CHANNEL_MAX];

	if (!jobq_queue_ok(queue))
		return BW_EINVAL;
	jobq_channel(queue, chan);
	snprintf(sql, sizeof(sql), "LISTEN \"%s\"", chan);
	return db_exec(db, sql, 0, NULL, NULL);
}

/* Frees every pending notification; returns how many there were. */
static int
jobq_drain(PGconn *c)
{
	PGnotify *nf;
	int	  n = 0;

	while ((nf = PQnotifies(c)) != NULL) {
		PQfreemem(nf);
		n++;
	}
	return n;
}

/*
 * Waits on the connection's socket for a notification, or sleeps when there
 * is no connection. A signal or a broken connection ends the wait early;
 * the next statement finds (and reopens) a broken connection.
 */
enum bw_err
jobq_wait(struct db *db, int timeout_ms)
{
	struct pollfd pfd;
	PGconn	     *c;

	c = db_conn(db);
	if (c == NULL || PQstatus(c) != CONNECTION_OK || PQsocket(c) < 0) {
		(void)poll(NULL, 0, timeout_ms);
		return BW_OK;
	}
	if (PQconsumeInput(c) == 0 || jobq_drain(c) > 0)
		return BW_OK;
	pfd.fd = PQsocket(c);
	pfd.events = POLLIN;
	pfd.revents = 0;
	if (poll(&pfd, 1, timeout_ms) > 0) {
		(void)PQconsumeInput(c);
		(void)jobq_drain(c);
	}
	return BW_OK;
}

/*
 * /health/full's one statement on jobs. Every read is bounded whatever the
 * table holds: the counts stop at $1 rows of a partial index (jobs_runnable,
 * jobs_running, jobs_dead), and the oldest runnable job is the first entry
 * of jobs_queued_run_at. Done rows, the bulk of the table, are never read.
 */
/* clang-format off */
static const char jobq_sql_health[] =
    "SELECT"
    " (SELECT count(*) FROM (SELECT 1 FROM jobs WHERE state = 'queued' LIMIT $1::int) q),"
    " (SELECT count(*) FROM (SELECT 1 FROM jobs WHERE state = 'running' LIMIT $1::int) r),"
    " (SELECT count(*) FROM (SELECT 1 FROM jobs WHERE state = 'dead'"
    "   AND finished_at > now() - make_interval(secs => $2::int) LIMIT $1::int) d),"
    " o.queue, extract(epoch FROM now() - o.run_at)"
    " FROM (SELECT 1) one LEFT JOIN LATERAL (SELECT queue, run_at FROM jobs"
    "  WHERE state = 'queued' AND run_at <= now() ORDER BY run_at LIMIT 1) o ON true";
/* clang-format on */

enum bw_err
jobq_health(struct db *db, int cap, int dead_window_s, struct jobq_health *h)
{
	char	    c[16], w[16];
	const char *p[2] = { c, w };
	const char *q;
	PGresult   *res = NULL;
	enum bw_err er;

	if (cap < 1 || dead_window_s < 0 || h == NULL)
		return BW_EINVAL;
	snprintf(c, sizeof(c), "%d", cap);
	snprintf(w, sizeof(w), "%d", dead_window_s);
	er = db_execp(db, "jobq_health", jobq_sql_health, 2, p, &res);
	if (er != BW_OK)
		return er;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return BW_EDB;
	}
	memset(h, 0, sizeof(*h));
	h->queued = db_col_i64_or(res, 0, 0, 0);
	h->running = db_col_i64_or(res, 0, 1, 0);
	h->dead = db_col_i64_or(res, 0, 2, 0);
	q = db_col_str(res, 0, 3);
	h->oldest_s = q != NULL ? db_col_f64_or(res, 0, 4, 0) : -1;
	snprintf(h->oldest_queue, sizeof(h->oldest_queue), "%s",
	    q != NULL ? q : "");
	PQclear(res);
	return BW_OK;
}

enum bw_err
jobq_counts(struct db *db, const char *queue, int64_t counts[4])
{
	static const char *states[4] = { "queued", "running", "done", "dead" };
	const char	  *p[1] = { queue };
	PGresult	  *res = NULL;
	enum bw_err	   er;
	int64_t		   c[4] = { 0, 0, 0, 0 };
	int		   i, j;

	er = db_execp(db, "jobq_counts",
	    "SELECT state, count(*) FROM jobs"
	    " WHERE $1::text IS NULL OR queue = $1::text GROUP BY state",
	    1, p, &res);
	if (er != BW_OK)
		return er;
	for (i = 0; i < PQntuples(res); i++)
		for (j = 0; j < 4; j++)
			if (strcmp(PQgetvalue(res, i, 0), states[j]) == 0)
				c[j] = db_col_i64_or(res, i, 1, 0);
	PQclear(res);
	memcpy(counts, c, sizeof(c));
	return BW_OK;
}

/* clang-format off */
static const char jobq_sql_org[] =
    "SELECT queue, count(*) FILTER (WHERE state = 'queued'),"
    " count(*) FILTER (WHERE state = 'running'), count(*) FILTER (WHERE state = 'dead'),"
    " extract(epoch FROM now() - min(run_at) FILTER (WHERE state = 'queued' AND run_at <= now()))"
    " FROM jobs WHERE org_id = $1::uuid AND state IN ('queued', 'running', 'dead')"
    " GROUP BY queue ORDER BY queue";
/* clang-format on */

enum bw_err
jobq_org_depths(struct db *db, const char *org_id, struct json_object **out)
{
	static const char *const cols[3] = { "queued", "running", "dead" };
	const char		*p[1] = { org_id };
	struct json_object	*o, *arr, *q;
	PGresult		*res = NULL;
	enum bw_err		 er;
	const char		*oldest_q = NULL;
	double			 oldest = -1, age;
	char			 s[32];
	int			 i, j;

	if (org_id == NULL || !jv_is_uuid(org_id, strlen(org_id)))
		return BW_EINVAL;
	er = db_execp(db, "jobq_org", jobq_sql_org, 1, p, &res);
	if (er != BW_OK)
		return er;
	o = json_object_new_object();
	arr = json_object_new_array();
	for (i = 0; i < PQntuples(res); i++) {
		q = json_object_new_object();
		json_object_object_add(q, "queue",
		    json_object_new_string(PQgetvalue(res, i, 0)));
		for (j = 0; j < 3; j++)
			json_object_object_add(q, cols[j],
			    json_object_new_int64(
				db_col_i64_or(res, i, j + 1, 0)));
		json_object_array_add(arr, q);
		if (PQgetisnull(res, i, 4))
			continue;
		age = db_col_f64_or(res, i, 4, 0);
		if (age > oldest) {
			oldest = age;
			oldest_q = PQgetvalue(res, i, 0);
		}
	}
	json_object_object_add(o, "queues", arr);
	if (oldest_q != NULL) {
		snprintf(s, sizeof(s), "%.3f", oldest);
		json_object_object_add(o, "oldest_runnable_s",
		    json_object_new_double_s(oldest, s));
		json_object_object_add(o, "oldest_runnable_queue",
		    json_object_new_string(oldest_q));
	} else {
		json_object_object_add(o, "oldest_runnable_s", NULL);
		json_object_object_add(o, "oldest_runnable_queue", NULL);
	}
	PQclear(res);
	*out = o;
	return BW_OK;
}
