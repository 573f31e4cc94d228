/* SPDX-License-Identifier: MIT */
/*
 * Cluster-wide oneshot runs: an advisory lock on a dedicated session picks
 * the one host that runs a job now, and `periodic_runs`, unique on (job,
 * slot), records each scheduled period once: a second run for a slot that
 * went `ok` does nothing, slots nobody ran are recorded as `missed`.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/limits.h"
#include "core/log.h"
#include "platform/periodic.h"

#define PERIODIC_MAX_MISSED 1000 /* missed slots recorded per run */
#define PERIODIC_KEEP_DAYS  30	 /* history kept per job */
#define PERIODIC_JOB_MAX    64	 /* job name length */

/* 32-bit FNV-1a of the job name: its advisory lock key. */
static int32_t
periodic_key(const char *job)
{
	uint32_t	     h = 2166136261u;
	const unsigned char *p;

	for (p = (const unsigned char *)job; *p != '\0'; p++)
		h = (h ^ *p) * 16777619u;
	return (int32_t)h;
}

/* The database's now() rounded down to a multiple of period_s, as text. */
static const char periodic_sql_slot[] =
    "SELECT to_timestamp(floor(extract(epoch FROM now()) / $1::int)"
    " * $1::int)";

/*
 * Claims the slot row: inserts it as `running`, or takes over a row left
 * `running` by a run that died (we hold the lock, so it is not running) or
 * one that `failed` or was marked `missed`. *mine is false when the slot
 * already went `ok`.
 */
static const char periodic_sql_claim[] =
    "INSERT INTO periodic_runs (job, slot, state, host, pid, period_s)"
    " VALUES ($1, $2::timestamptz, 'running', $3, $4::int, $5::int)"
    " ON CONFLICT (job, slot) DO UPDATE SET state = 'running',"
    "  host = EXCLUDED.host, pid = EXCLUDED.pid, started_at = now(),"
    "  finished_at = NULL, error = NULL, period_s = EXCLUDED.period_s"
    "  WHERE periodic_runs.state <> 'ok'"
    " RETURNING 1";

/* Slots between the last recorded one and ours that nobody ran. */
static const char periodic_sql_missed[] =
    "WITH last AS (SELECT max(slot) AS s FROM periodic_runs"
    "  WHERE job = $1 AND slot < $2::timestamptz)"
    " INSERT INTO periodic_runs (job, slot, state, finished_at, error)"
    " SELECT $1, g, 'missed', now(), 'no run in this slot'"
    " FROM last, generate_series("
    "  greatest(last.s, $2::timestamptz"
    "   - make_interval(secs => $3::int * $4::int))"
    "   + make_interval(secs => $3::int),"
    "  $2::timestamptz - make_interval(secs => $3::int),"
    "  make_interval(secs => $3::int)) g"
    " WHERE last.s IS NOT NULL"
    " ON CONFLICT (job, slot) DO NOTHING";

/*
 * The fence: true on the lock session only while it is the session that
 * took the job's lock ($3, its pg_backend_pid()) and still holds it. A
 * session PostgreSQL ended (a host cut off for longer than the server's
 * keepalives, docs/operations.md "Dead clients") has lost the lock, and
 * another host may run the slot by now. pg_locks shows the two-int form's
 * keys as oids (their 32 bits) with objsubid 2.
 */
#define PERIODIC_FENCE(ns, key, pid)                                          \
	"pg_backend_pid() = " pid "::int AND EXISTS (SELECT 1 FROM pg_locks"  \
	" WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted" \
	" AND classid = " ns "::int::oid AND objid = " key "::int::oid"       \
	" AND objsubid = 2)"

/* The lock, and the session that took it. */
static const char periodic_sql_lock[] =
    "SELECT pg_try_advisory_lock($1::int, $2::int), pg_backend_pid()";

static const char periodic_sql_fence[] =
    "SELECT " PERIODIC_FENCE("$1", "$2", "$3");

/* The outcome, recorded only behind the fence (0 rows: the lock is lost). */
/* clang-format off */
static const char periodic_sql_finish[] =
    "UPDATE periodic_runs SET state = $3, finished_at = now(), error = $4"
    " WHERE job = $1 AND slot = $2::timestamptz"
    " AND " PERIODIC_FENCE("$5", "$6", "$7");
/* clang-format on */

static const char periodic_sql_trim[] =
    "DELETE FROM periodic_runs WHERE job = $1"
    " AND slot < $2::timestamptz - make_interval(days => $3::int)";

/*
 * Records the slot and the missed ones before it. *mine tells whether this
 * run owns the slot. Returns a db error or BW_OK.
 */
static enum bw_err
periodic_begin(struct db *ldb, const char *job, const char *slot, int period_s,
    bool *mine)
{
	char	    host[64], pid[16], per[16], maxm[16], keep[16];
	const char *p[5];
	PGresult   *res = NULL;
	enum bw_err er;

	if (gethostname(host, sizeof(host)) != 0)
		snprintf(host, sizeof(host), "unknown");
	host[sizeof(host) - 1] = '\0';
	snprintf(pid, sizeof(pid), "%ld", (long)getpid());
	snprintf(per, sizeof(per), "%d", period_s);
	snprintf(maxm, sizeof(maxm), "%d", PERIODIC_MAX_MISSED);
	snprintf(keep, sizeof(keep), "%d", PERIODIC_KEEP_DAYS);
	p[0] = job;
	p[1] = slot;
	p[2] = host;
	p[3] = pid;
	p[4] = per;
	er = db_execp(ldb, "periodic_claim", periodic_sql_claim, 5, p, &res);
	if (er != BW_OK)
		return er;
	*mine = PQntuples(res) == 1;
	PQclear(res);
	res = NULL;
	if (!*mine)
		return BW_OK;
	p[2] = per;
	p[3] = maxm;
	er = db_execp(ldb, "periodic_missed", periodic_sql_missed, 4, p, &res);
	if (er != BW_OK)
		return er;
	if (strcmp(PQcmdTuples(res), "0") != 0)
		log_kv(LL_WARN, "periodic slots missed", "job", job, "slot",
		    slot, "missed", PQcmdTuples(res), NULL);
	PQclear(res);
	p[2] = keep;
	return db_execp(ldb, "periodic_trim", periodic_sql_trim, 3, p, NULL);
}

/* What the fence knows of one run: the lock and the session holding it. */
struct periodic_fence {
	struct db  *ldb;
	const char *job;
	char	    slot[64]; /* "" before the slot is known */
	char	    ns[16], key[16];
	char	    pid[16]; /* the lock session's backend; "" before */
	bool	    lost;
};

/* Marks the run as having lost its lock, logged once. */
static void
periodic_lost(struct periodic_fence *f, const char *why)
{
	if (f->lost)
		return;
	f->lost = true;
	log_kv(LL_ERROR, "periodic run lost its lock; stopped", "job", f->job,
	    "slot", f->slot, "lock_pid", f->pid, "why", why, NULL);
}

/*
 * The lock session's on-connect hook: its first session takes the lock;
 * a later one (db.c reopening a connection that broke) would hold
 * nothing, so it is refused, and every statement on ldb fails from then on.
 */
static enum bw_err
periodic_lock_session(struct db *db, void *arg)
{
	struct periodic_fence *f = arg;

	(void)db;
	if (f->pid[0] == '\0')
		return BW_OK;
	periodic_lost(f, "the lock session was reset");
	return BW_ESTATE;
}

/*
 * The work connection's on-connect hook: fn may use a new session (its
 * first, or one after its last broke) only while the lock session still
 * holds the lock. Refused, the statement that needed it fails unsent.
 */
static enum bw_err
periodic_work_session(struct db *db, void *arg)
{
	struct periodic_fence *f = arg;
	const char	      *p[3] = { f->ns, f->key, f->pid };
	PGresult	      *res = NULL;
	enum bw_err	       er;
	bool		       held;

	(void)db;
	if (f->lost)
		return BW_ESTATE;
	er = db_execp(f->ldb, "periodic_fence", periodic_sql_fence, 3, p, &res);
	held = er == BW_OK && PQntuples(res) == 1 &&
	    strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	if (!held) {
		periodic_lost(f,
		    er == BW_OK ? "the lock is not held"
				: "the lock session is unreachable");
		return BW_ESTATE;
	}
	return BW_OK;
}

/*
 * See periodic.h. The lock lives on its own connection so that fn's
 * connection may break and reconnect without losing it; both close at the
 * end, which also frees the lock. The fence: the lock session never
 * reconnects, fn's connection reconnects only while the lock session holds
 * the lock, and the outcome is recorded only in a statement that checks
 * it. A run that lost its lock (a host cut off while PostgreSQL ended its
 * sessions, and another host took the slot over) writes nothing more and
 * returns BW_ESTATE, logged. Returns fn's error, BW_EINVAL on bad
 * arguments, or a setup error (logged).
 */
enum bw_err
periodic_run(const char *conninfo, const char *job, int period_s,
    enum bw_err (*fn)(struct db *, void *), void *arg,
    enum periodic_outcome *outcome)
{
	struct periodic_fence f = { .job = job };
	char		      per[16], slot[64], errtxt[BW_MAX_JOB_ERROR + 1];
	const char	     *p[7];
	struct db	     *ldb = NULL, *wdb = NULL;
	PGresult	     *res = NULL;
	enum bw_err	      er, fer;
	bool		      got = false, mine = false;

	if (job == NULL || job[0] == '\0' || strlen(job) > PERIODIC_JOB_MAX ||
	    period_s < 1 || fn == NULL || outcome == NULL)
		return BW_EINVAL;
	ldb = db_new(conninfo);
	wdb = db_new(conninfo);
	if (ldb == NULL || wdb == NULL) {
		er = BW_ENOMEM;
		goto out;
	}
	f.ldb = ldb;
	snprintf(f.ns, sizeof(f.ns), "%" PRId32, (int32_t)DB_LOCK_PERIODIC);
	snprintf(f.key, sizeof(f.key), "%" PRId32, periodic_key(job));
	db_set_on_connect(ldb, periodic_lock_session, &f);
	db_set_on_connect(wdb, periodic_work_session, &f);
	p[0] = f.ns;
	p[1] = f.key;
	er = db_execp(ldb, "periodic_lock", periodic_sql_lock, 2, p, &res);
	if (er != BW_OK)
		goto out;
	got = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	if (got)
		snprintf(f.pid, sizeof(f.pid), "%s", PQgetvalue(res, 0, 1));
	PQclear(res);
	res = NULL;
	if (!got) {
		log_kv(LL_INFO, "periodic run held elsewhere", "job", job,
		    NULL);
		*outcome = PO_LOCKED;
		goto out;
	}
	snprintf(per, sizeof(per), "%d", period_s);
	p[0] = per;
	er = db_execp(ldb, "periodic_slot", periodic_sql_slot, 1, p, &res);
	if (er != BW_OK)
		goto out;
	snprintf(slot, sizeof(slot), "%s", PQgetvalue(res, 0, 0));
	snprintf(f.slot, sizeof(f.slot), "%s", slot);
	PQclear(res);
	res = NULL;
	er = periodic_begin(ldb, job, slot, period_s, &mine);
	if (er != BW_OK)
		goto out;
	if (!mine) {
		log_kv(LL_INFO, "periodic slot already done", "job", job,
		    "slot", slot, NULL);
		*outcome = PO_DONE;
		goto out;
	}
	log_kv(LL_INFO, "periodic run", "job", job, "slot", slot, NULL);
	fer = fn(wdb, arg);
	*outcome = PO_RAN;
	snprintf(errtxt, sizeof(errtxt), "%s", bw_strerror(fer));
	if (f.lost) {
		er = BW_ESTATE; /* logged: nothing more is written */
		goto out;
	}
	p[0] = job;
	p[1] = slot;
	p[2] = fer == BW_OK ? "ok" : "failed";
	p[3] = fer == BW_OK ? NULL : errtxt;
	p[4] = f.ns;
	p[5] = f.key;
	p[6] = f.pid;
	er = db_execp(ldb, "periodic_finish", periodic_sql_finish, 7, p, &res);
	if (er == BW_OK && db_rows(res) == 0)
		periodic_lost(&f, "the lock is not held at the finish");
	if (f.lost) {
		er = BW_ESTATE;
		goto out;
	}
	if (er != BW_OK)
		log_kv(LL_ERROR, "periodic outcome not recorded", "job", job,
		    "slot", slot, NULL);
	log_kv(fer == BW_OK ? LL_INFO : LL_ERROR, "periodic run finished",
	    "job", job, "slot", slot, "state", p[2], NULL);
	er = fer;
out:
	PQclear(res);
	db_free(wdb);
	db_free(ldb); /* closing the session frees the lock */
	return er;
}

/* Adds a string member (JSON null when v is NULL). Returns BW_ENOMEM. */
static enum bw_err
periodic_addstr(struct json_object *o, const char *k, const char *v)
{
	struct json_object *s = NULL;

	if (v != NULL) {
		s = json_object_new_string(v);
		if (s == NULL)
			return BW_ENOMEM;
	}
	if (json_object_object_add(o, k, s) != 0) {
		json_object_put(s);
		return BW_ENOMEM;
	}
	return BW_OK;
}

/*
 * The last run of every job. The jobs are found with a loose index scan of
 * the primary key (one probe per job, not a pass over 30 days of slots);
 * each one's last row, last ok run and missed slots of the last day are
 * short backward reads of the same index. overdue: the last run started
 * more than period_s + $1 seconds ago ($1 = 0: never overdue), i.e. the
 * timer stopped, or a run holds the lock and hangs.
 */
/* clang-format off */
static const char periodic_sql_status[] =
    "WITH RECURSIVE j(job) AS ("
    " (SELECT job FROM periodic_runs ORDER BY job LIMIT 1)"
    " UNION ALL"
    " SELECT (SELECT p.job FROM periodic_runs p WHERE p.job > j.job"
    "  ORDER BY p.job LIMIT 1) FROM j WHERE j.job IS NOT NULL)"
    " SELECT j.job, " DB_TS_UTC_S("r.slot") ", r.state, r.host, "
    DB_TS_UTC_S("r.started_at") ", " DB_TS_UTC_S("r.finished_at") ", r.error,"
    " (SELECT " DB_TS_UTC_S("o.finished_at") " FROM periodic_runs o"
    "  WHERE o.job = j.job AND o.state = 'ok' ORDER BY o.slot DESC LIMIT 1),"
    " (SELECT count(*) FROM periodic_runs m WHERE m.job = j.job"
    "  AND m.state = 'missed' AND m.slot > now() - interval '1 day'),"
    " r.period_s, floor(extract(epoch FROM now() - r.started_at))::bigint,"
    " coalesce($1::int > 0 AND r.period_s IS NOT NULL AND r.started_at"
    "  < now() - make_interval(secs => r.period_s + $1::int), false)"
    " FROM j CROSS JOIN LATERAL (SELECT * FROM periodic_runs r"
    "  WHERE r.job = j.job ORDER BY r.slot DESC LIMIT 1) r"
    " WHERE j.job IS NOT NULL ORDER BY j.job";
/* clang-format on */

/*
 * {job: {slot, state, host, started_at, finished_at, error, last_ok_at,
 * missed_24h, period_s, since_start_s, overdue}} for the last slot of every
 * job. *out is new (the caller json_object_put()s it) and untouched on
 * failure; *noverdue counts the overdue jobs.
 */
enum bw_err
periodic_status(struct db *db, int grace_s, struct json_object **out,
    int *noverdue)
{
	static const char  *keys[] = { "slot", "state", "host", "started_at",
		 "finished_at", "error", "last_ok_at" };
	struct json_object *all = NULL, *one;
	char		    g[16];
	const char	   *p[1] = { g };
	PGresult	   *res = NULL;
	enum bw_err	    er;
	int		    i, k, over, n = 0;

	snprintf(g, sizeof(g), "%d", grace_s > 0 ? grace_s : 0);
	er = db_execp(db, "periodic_status", periodic_sql_status, 1, p, &res);
	if (er != BW_OK)
		return er;
	all = json_object_new_object();
	if (all == NULL) {
		er = BW_ENOMEM;
		goto out;
	}
	for (i = 0; i < PQntuples(res); i++) {
		one = json_object_new_object();
		if (one == NULL ||
		    json_object_object_add(all, PQgetvalue(res, i, 0), one)) {
			json_object_put(one);
			er = BW_ENOMEM;
			goto out;
		}
		for (k = 0; k < 7; k++) {
			er = periodic_addstr(one, keys[k],
			    db_col_str(res, i, k + 1));
			if (er != BW_OK)
				goto out;
		}
		over = strcmp(PQgetvalue(res, i, 11), "t") == 0;
		n += over;
		if (json_object_object_add(one, "missed_24h",
			json_object_new_int64(db_col_i64_or(res, i, 8, 0))) ||
		    json_object_object_add(one, "period_s",
			db_col_str(res, i, 9) != NULL
			    ? json_object_new_int64(db_col_i64_or(res, i, 9, 0))
			    : NULL) ||
		    json_object_object_add(one, "since_start_s",
			json_object_new_int64(db_col_i64_or(res, i, 10, 0))) ||
		    json_object_object_add(one, "overdue",
			json_object_new_boolean(over))) {
			er = BW_ENOMEM;
			goto out;
		}
	}
	*out = all;
	all = NULL;
	if (noverdue != NULL)
		*noverdue = n;
out:
	json_object_put(all);
	PQclear(res);
	return er;
}
