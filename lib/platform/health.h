/* SPDX-License-Identifier: MIT */
/*
 * Readiness, as GET /health/full reports it: a round trip to PostgreSQL and
 * to Redis with its latency, and a judgement of the job queue and of the
 * periodic runs against thresholds from the config. Every statement is
 * bounded whatever the size of the tables (jobq_health(), periodic_status()),
 * so the check costs the same on a table of a billion done jobs.
 */
#ifndef BW_HEALTH_H
#define BW_HEALTH_H

#include <stdbool.h>

#include <json-c/json.h>

#include "core/db.h"
#include "core/err.h"
#include "core/rds.h"

#define HEALTH_COUNT_CAP 1000 /* queue figures are counted up to this */

/* Thresholds (config health_*); 0 turns a judgement off. */
struct health_limits {
	int job_age_max_s;    /* the oldest runnable job waits longer: bad */
	int dead_window_s;    /* a job went dead less than this ago: bad */
	int periodic_grace_s; /* no periodic run for period + this: bad */
};

/*
 * Runs every check. *ok is true when PostgreSQL and Redis answer and no
 * judgement fails. *out (new, the caller puts it) is
 * {"status":"ok"|"degraded","reasons":[...],"checks":{"postgres","redis",
 * "queues","periodic"}}; reasons name what failed: "postgres_unavailable",
 * "redis_unavailable", "queues_unreadable", "dead_jobs", "job_backlog",
 * "periodic_unreadable", "periodic_overdue:<job>". Returns BW_OK (what is
 * down is in the report) or BW_ENOMEM.
 */
enum bw_err health_full(struct db *, struct rds *, const struct health_limits *,
    bool *ok, struct json_object **out);

#endif
