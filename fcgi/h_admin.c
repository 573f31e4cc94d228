/* SPDX-License-Identifier: MIT */
/*
 * GET /api/v1/admin/overview (docs/api/admin.md): the owner's view of the
 * caller's org, assembled from one small function per owning module -
 * budget_today() (chat usage, budget and spend), credit_today() (credits),
 * sem_count()/sem_waiting() (LLM leases, Redis), jobq_org_depths() and
 * jobq_health() (the queue), webhook_fail_today() (Redis),
 * campaign_stuck_org(), errtrack_recent_json() (error groups and their
 * hourly counts). The route is owner-only (routes.c); everything
 * is scoped to r->who.org_id. A PostgreSQL failure answers 503; a Redis
 * failure leaves its members null and names them in "unavailable".
 */
#include <stdio.h>

#include "campaign/campaign.h"
#include "chat/budget.h"
#include "chat/sem.h"
#include "ctx.h"
#include "errtrack/errtrack.h"
#include "handlers.h"
#include "money/credit.h"
#include "money/webhook.h"
#include "platform/jobq.h"
#include "resp.h"

#define ADMIN_STUCK_LIST 10 /* stuck campaigns listed (all counted) */
#define ADMIN_ERROR_LIST 10 /* error groups listed, newest first */

/* The chat usage and budget members from t, and the credits c (taken). */
static void
admin_usage(struct json_object *o, const struct budget_today *t,
    struct json_object *c)
{
	struct json_object *u = json_object_new_object();
	struct json_object *b = json_object_new_object();

	json_object_object_add(u, "day", json_object_new_string(t->day));
	json_object_object_add(u, "chat_turns",
	    json_object_new_int64(t->calls));
	json_object_object_add(u, "chat_turns_settled",
	    json_object_new_int64(t->settled));
	json_object_object_add(u, "input_tokens",
	    json_object_new_int64(t->input_tokens));
	json_object_object_add(u, "output_tokens",
	    json_object_new_int64(t->output_tokens));
	json_object_object_add(u, "tokens",
	    json_object_new_int64(t->input_tokens + t->output_tokens));
	json_object_object_add(u, "credits", c);
	json_object_object_add(o, "usage_today", u);

	json_object_object_add(b, "day", json_object_new_string(t->day));
	json_object_object_add(b, "daily_micros",
	    t->has_budget ? json_object_new_int64(t->daily_micros) : NULL);
	json_object_object_add(b, "spent_micros",
	    json_object_new_int64(t->spent_micros));
	json_object_object_add(b, "reserved_micros",
	    json_object_new_int64(t->reserved_micros));
	json_object_object_add(b, "remaining_micros",
	    t->has_budget ? json_object_new_int64(t->daily_micros -
				t->spent_micros - t->reserved_micros)
			  : NULL);
	json_object_object_add(o, "budget", b);
}

/* {"in_use","cap","waiting"} of org (NULL: global); NULL on a Redis error. */
static struct json_object *
admin_leases_of(struct req *r, const char *org, int cap)
{
	struct json_object *o;
	int		    used = 0, waiting = 0;

	if (sem_count(r->ch->rds, org, &used) != BW_OK ||
	    sem_waiting(r->ch->rds, org, &waiting) != BW_OK)
		return NULL;
	o = json_object_new_object();
	json_object_object_add(o, "in_use", json_object_new_int(used));
	json_object_object_add(o, "cap", json_object_new_int(cap));
	json_object_object_add(o, "waiting", json_object_new_int(waiting));
	return o;
}

/* "llm_leases": the org's and the global leases against their caps. */
static void
admin_leases(struct req *r, struct json_object *o, const struct budget_today *t,
    struct json_object *unavailable)
{
	struct json_object *l, *org, *all;
	int org_cap = t->org_cap > 0 ? t->org_cap : r->ch->cfg->llm_org_cap;

	org = admin_leases_of(r, r->who.org_id, org_cap);
	all = admin_leases_of(r, NULL, r->ch->cfg->llm_global_cap);
	if (org == NULL || all == NULL) {
		json_object_put(org);
		json_object_put(all);
		json_object_object_add(o, "llm_leases", NULL);
		json_object_array_add(unavailable,
		    json_object_new_string("llm_leases"));
		return;
	}
	l = json_object_new_object();
	json_object_object_add(l, "org", org);
	json_object_object_add(l, "global", all);
	json_object_object_add(o, "llm_leases", l);
}

/* "jobs": the org's queues, plus the oldest runnable job of any org. */
static enum bw_err
admin_jobs(struct req *r, struct json_object *o)
{
	struct json_object *j = NULL;
	struct jobq_health  h;
	enum bw_err	    er;
	char		    s[32];

	er = jobq_org_depths(r->ch->db, r->who.org_id, &j);
	if (er != BW_OK)
		return er;
	/* The query of bulwark_jobs_oldest_runnable_seconds (h_metrics.c). */
	er = jobq_health(r->ch->db, 1, 0, &h);
	if (er != BW_OK) {
		json_object_put(j);
		return er;
	}
	if (h.oldest_s >= 0) {
		snprintf(s, sizeof(s), "%.3f", h.oldest_s);
		json_object_object_add(j, "global_oldest_runnable_s",
		    json_object_new_double_s(h.oldest_s, s));
	} else
		json_object_object_add(j, "global_oldest_runnable_s", NULL);
	json_object_object_add(o, "jobs", j);
	return BW_OK;
}

void
h_admin_overview(struct req *r)
{
	struct json_object *o = NULL, *credits = NULL, *x = NULL, *unavailable;
	struct budget_today t;
	enum bw_err	    er;

	er = budget_today(r->ch->db, r->who.org_id, &t);
	if (er == BW_OK)
		er = credit_today(r->ch->db, r->who.org_id, &credits);
	if (er != BW_OK) {
		resp_fail(r, er);
		return;
	}
	o = json_object_new_object();
	unavailable = json_object_new_array();
	json_object_object_add(o, "org_id",
	    json_object_new_string(r->who.org_id));
	admin_usage(o, &t, credits);
	admin_leases(r, o, &t, unavailable);
	er = admin_jobs(r, o);
	if (er == BW_OK)
		er = campaign_stuck_org(r->ch->db, r->who.org_id,
		    r->ch->cfg->campaign_stuck_after_s, ADMIN_STUCK_LIST, &x);
	if (er != BW_OK) {
		json_object_put(o);
		json_object_put(unavailable);
		resp_fail(r, er);
		return;
	}
	json_object_object_add(o, "stuck_campaigns", x);
	x = NULL;
	er = errtrack_recent_json(r->ch->db, r->who.org_id, ADMIN_ERROR_LIST,
	    &x);
	if (er != BW_OK) {
		json_object_put(o);
		json_object_put(unavailable);
		resp_fail(r, er);
		return;
	}
	json_object_object_add(o, "errors", x);
	x = NULL;
	if (webhook_fail_today(r->ch->rds, r->who.org_id, &x) != BW_OK) {
		x = NULL;
		json_object_array_add(unavailable,
		    json_object_new_string("webhook_failures"));
	}
	json_object_object_add(o, "webhook_failures", x);
	json_object_object_add(o, "unavailable", unavailable);
	resp_json(r, 200, o);
}
