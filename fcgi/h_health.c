/* SPDX-License-Identifier: MIT */
/*
 * GET /health (liveness, touches nothing) and GET /health/full (readiness:
 * PostgreSQL and Redis round trips with their latency, job queue depth and
 * the last run of every periodic job).
 */
#include <stdint.h>
#include <stdio.h>

#include "ctx.h"
#include "handlers.h"
#include "platform/jobq.h"
#include "platform/periodic.h"
#include "resp.h"

static const char health_ok[] = "{\"status\":\"ok\"}";

void
h_health(struct req *r)
{
	resp_raw(r, 200, "application/json", health_ok, sizeof(health_ok) - 1);
}

/* {"ok":bool,"latency_ms":n} for one ping. */
static struct json_object *
check_obj(enum bw_err er, int64_t us)
{
	struct json_object *o = json_object_new_object();
	char		    ms[32];

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

void
h_health_full(struct req *r)
{
	struct json_object *body, *checks, *q, *periodic = NULL;
	int64_t		    pg_us = 0, rd_us = 0, counts[4];
	enum bw_err	    pg, rd, er;
	int		    ok;

	pg = db_ping(r->ch->db, &pg_us);
	rd = rds_ping(r->ch->rds, &rd_us);
	ok = pg == BW_OK && rd == BW_OK;

	checks = json_object_new_object();
	json_object_object_add(checks, "postgres", check_obj(pg, pg_us));
	json_object_object_add(checks, "redis", check_obj(rd, rd_us));

	q = json_object_new_object();
	er = pg == BW_OK ? jobq_counts(r->ch->db, NULL, counts) : pg;
	json_object_object_add(q, "ok", json_object_new_boolean(er == BW_OK));
	if (er == BW_OK) {
		json_object_object_add(q, "queued",
		    json_object_new_int64(counts[0]));
		json_object_object_add(q, "running",
		    json_object_new_int64(counts[1]));
		json_object_object_add(q, "dead",
		    json_object_new_int64(counts[3]));
	}
	json_object_object_add(checks, "queues", q);
	if (pg == BW_OK && periodic_status(r->ch->db, &periodic) == BW_OK)
		json_object_object_add(checks, "periodic", periodic);

	body = json_object_new_object();
	json_object_object_add(body, "status",
	    json_object_new_string(ok ? "ok" : "degraded"));
	json_object_object_add(body, "checks", checks);
	resp_json(r, ok ? 200 : 503, body);
}
