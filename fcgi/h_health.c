/* SPDX-License-Identifier: MIT */
/*
 * GET /health (liveness, touches nothing) and GET /health/full (readiness:
 * lib/platform/health.c pings PostgreSQL and Redis and judges the job queue
 * and the periodic runs).
 *
 * /health/full is public and limited per client IP (fcgi/routes.c). Its
 * details -- latencies, queue figures, periodic runs, the reasons -- go
 * only to a trusted caller: loopback (REMOTE_ADDR, which nginx sets from
 * the TCP peer, is exactly 127.0.0.1 or ::1, the addresses nginx lets read
 * /metrics) or an owner or admin key. Anyone else gets the status alone,
 * {"status":"ok"} 200 or {"status":"degraded"} 503.
 */
#include <stdbool.h>
#include <string.h>

#include "ctx.h"
#include "handlers.h"
#include "platform/health.h"
#include "resp.h"

static const char health_ok[] = "{\"status\":\"ok\"}";
static const char health_degraded[] = "{\"status\":\"degraded\"}";

void
h_health(struct req *r)
{
	resp_raw(r, 200, "application/json", health_ok, sizeof(health_ok) - 1);
}

/* 1 when the caller may see the details. */
static int
health_trusted(const struct req *r)
{
	if (strcmp(r->client_ip, "127.0.0.1") == 0 ||
	    strcmp(r->client_ip, "::1") == 0)
		return 1;
	return r->authed && r->who.role >= AR_ADMIN;
}

/* The public answer: the status and its code, nothing else. */
static void
health_status_only(struct req *r, bool ok)
{
	if (ok)
		resp_raw(r, 200, "application/json", health_ok,
		    sizeof(health_ok) - 1);
	else
		resp_raw(r, 503, "application/json", health_degraded,
		    sizeof(health_degraded) - 1);
}

void
h_health_full(struct req *r)
{
	const struct config *cfg = r->ch->cfg;
	struct health_limits lim;
	struct json_object  *body = NULL;
	bool		     ok = false;
	int		     trusted = health_trusted(r);

	/* Redis could not count this request: it is down or slow, so the
	 * answer is degraded whatever else holds; a public caller gets it
	 * without any further work. */
	if (r->rate_unchecked && !trusted) {
		health_status_only(r, false);
		return;
	}
	lim.job_age_max_s = cfg->health_job_age_max_s;
	lim.dead_window_s = cfg->health_dead_window_s;
	lim.periodic_grace_s = cfg->health_periodic_grace_s;
	if (health_full(r->ch->mondb, r->ch->rds, &lim, &ok, &body) != BW_OK) {
		resp_error(r, AE_INTERNAL, NULL, NULL);
		return;
	}
	if (!trusted) {
		json_object_put(body);
		health_status_only(r, ok);
		return;
	}
	resp_json(r, ok ? 200 : 503, body);
}
