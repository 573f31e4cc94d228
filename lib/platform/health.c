/* SPDX-License-Identifier: MIT */
/*
 * Readiness for GET /health/full: pings, then the queue and periodic
 * judgements. What each reason means and what to do about it is in
 * docs/operations.md ("Health") and docs/api.md.
 */
#include <stdio.h>

#include "platform/health.h"
#include "platform/jobq.h"
#include "platform/periodic.h"

/* {"ok":bool,"latency_ms":n} or {"ok":false,"error":"..."} for one ping. */
static struct json_object *
health_ping_obj(enum bw_err er, int64_t us)
{
	struct json_object *o = json_object_new_object();
	char		    ms[32];

	if (o == NULL)
		return NULL;
	json_object_object_add(o, "ok", json_object_new_boolean(er == BW_OK));
	if (er == BW_OK) {
		/* Rendered with three decimals, not the double's 17 digits. */
		snprintf(ms, sizeof(ms), "%.3f", (double)us / 1000.0);
		json_object_object_add(o, "latency_ms",
		    json_object_new_double_s((double)us / 1000.0, ms));
	} else
		json_object_object_add(o, "error",
		    json_object_new_string(bw_strerror(er)));
	return o;
}

/* Appends reason to the reasons array. */
static void
health_reason(struct json_object *reasons, const char *reason)
{
	json_object_array_add(reasons, json_object_new_string(reason));
}

/*
 * The queue: bounded figures, and the judgements on dead jobs of the last
 * window and on the age of the oldest runnable job. Adds reasons.
 */
static struct json_object *
health_queues(struct db *db, const struct health_limits *lim,
    struct json_object *reasons)
{
	struct json_object *q = json_object_new_object();
	struct jobq_health  h;
	enum bw_err	    er;
	char		    s[32];
	bool		    ok = true;

	if (q == NULL)
		return NULL;
	er = jobq_health(db, HEALTH_COUNT_CAP, lim->dead_window_s, &h);
	if (er != BW_OK) {
		health_reason(reasons, "queues_unreadable");
		json_object_object_add(q, "ok", json_object_new_boolean(false));
		json_object_object_add(q, "error",
		    json_object_new_string(bw_strerror(er)));
		return q;
	}
	if (lim->dead_window_s > 0 && h.dead > 0) {
		health_reason(reasons, "dead_jobs");
		ok = false;
	}
	if (lim->job_age_max_s > 0 && h.oldest_s > (double)lim->job_age_max_s) {
		health_reason(reasons, "job_backlog");
		ok = false;
	}
	json_object_object_add(q, "ok", json_object_new_boolean(ok));
	json_object_object_add(q, "queued", json_object_new_int64(h.queued));
	json_object_object_add(q, "running", json_object_new_int64(h.running));
	json_object_object_add(q, "dead_recent", json_object_new_int64(h.dead));
	json_object_object_add(q, "count_cap",
	    json_object_new_int(HEALTH_COUNT_CAP));
	json_object_object_add(q, "dead_window_s",
	    json_object_new_int(lim->dead_window_s));
	if (h.oldest_s >= 0) {
		snprintf(s, sizeof(s), "%.3f", h.oldest_s);
		json_object_object_add(q, "oldest_runnable_s",
		    json_object_new_double_s(h.oldest_s, s));
		json_object_object_add(q, "oldest_runnable_queue",
		    json_object_new_string(h.oldest_queue));
	} else {
		json_object_object_add(q, "oldest_runnable_s", NULL);
		json_object_object_add(q, "oldest_runnable_queue", NULL);
	}
	json_object_object_add(q, "job_age_max_s",
	    json_object_new_int(lim->job_age_max_s));
	return q;
}

/* The periodic runs; a reason per overdue job. NULL when unreadable. */
static struct json_object *
health_periodic(struct db *db, const struct health_limits *lim,
    struct json_object *reasons)
{
	struct json_object *all = NULL, *o;
	char		    r[128];
	int		    n = 0;

	if (periodic_status(db, lim->periodic_grace_s, &all, &n) != BW_OK) {
		health_reason(reasons, "periodic_unreadable");
		return NULL;
	}
	if (n > 0) {
		json_object_object_foreach(all, job, v)
		{
			o = json_object_object_get(v, "overdue");
			if (o == NULL || !json_object_get_boolean(o))
				continue;
			snprintf(r, sizeof(r), "periodic_overdue:%s", job);
			health_reason(reasons, r);
		}
	}
	return all;
}

enum bw_err
health_full(struct db *db, struct rds *rds, const struct health_limits *lim,
    bool *ok, struct json_object **out)
{
	struct json_object *body, *checks, *reasons;
	int64_t		    pg_us = 0, rd_us = 0;
	enum bw_err	    pg, rd;

	body = json_object_new_object();
	checks = json_object_new_object();
	reasons = json_object_new_array();
	if (body == NULL || checks == NULL || reasons == NULL) {
		json_object_put(body);
		json_object_put(checks);
		json_object_put(reasons);
		return BW_ENOMEM;
	}
	pg = db_ping(db, &pg_us);
	rd = rds_ping(rds, &rd_us);
	if (pg != BW_OK)
		health_reason(reasons, "postgres_unavailable");
	if (rd != BW_OK)
		health_reason(reasons, "redis_unavailable");
	json_object_object_add(checks, "postgres", health_ping_obj(pg, pg_us));
	json_object_object_add(checks, "redis", health_ping_obj(rd, rd_us));
	if (pg == BW_OK) {
		json_object_object_add(checks, "queues",
		    health_queues(db, lim, reasons));
		json_object_object_add(checks, "periodic",
		    health_periodic(db, lim, reasons));
	}
	*ok = json_object_array_length(reasons) == 0;
	json_object_object_add(body, "status",
	    json_object_new_string(*ok ? "ok" : "degraded"));
	json_object_object_add(body, "reasons", reasons);
	json_object_object_add(body, "checks", checks);
	*out = body;
	return BW_OK;
}
