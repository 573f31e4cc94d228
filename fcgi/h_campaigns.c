/* SPDX-License-Identifier: MIT */
/*
 * SMS campaigns and opt-outs (docs/api/campaigns.md), the HTTP side only:
 * create (Idempotency-Key; every number checked, each bad one named in
 * "fields"), send, get, list, cancel, and POST /opt-outs. lib/campaign/
 * does the rest. Every id is scoped to the caller's org: another org's
 * campaign is 404.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "campaign/campaign.h"
#include "core/clock.h"
#include "core/jv.h"
#include "core/limits.h"
#include "core/log.h"
#include "ctx.h"
#include "handlers.h"
#include "resp.h"

/* 1 when send_at (already RFC 3339) is more than 366 days ahead. */
static int
h_campaigns_send_at_too_far(const char *send_at)
{
	int64_t ms;

	if (send_at == NULL ||
	    jv_rfc3339_ms(send_at, strlen(send_at), &ms) != BW_OK)
		return 0;
	return ms > clock_wall_ms() + CAMPAIGN_SEND_AT_MAX_S * 1000;
}

/*
 * POST /api/v1/campaigns: 201 {"id","status","recipients",
 * "duplicates_removed","opted_out"}. r->in is validated by the route's
 * schema; the numbers are checked here, all of them, before anything is
 * written.
 */
void
h_campaigns_create(struct req *r)
{
	struct campaign_numbers nums;
	struct campaign_new	c;
	struct campaign_created made;
	struct json_object     *problems = NULL, *o;
	char			loc[96];
	enum bw_err		er;

	er = campaign_numbers_from_json(json_object_object_get(r->in,
					    "recipients"),
	    &nums, &problems);
	if (er == BW_EINVAL) {
		char cnt[16];

		snprintf(cnt, sizeof(cnt), "%zu",
		    problems != NULL ? json_object_array_length(problems) : 0);
		log_kv(LL_INFO, "campaign refused: invalid numbers", "count",
		    cnt, NULL);
		resp_error(r, AE_VALIDATION_FAILED,
		    "Every recipient must be an E.164 number (+ and 7 to 15 "
		    "digits).",
		    problems);
		return;
	}
	if (er != BW_OK) {
		resp_fail(r, er);
		return;
	}
	if (h_campaigns_send_at_too_far(jv_str(r->in, "send_at", NULL))) {
		struct json_object *f = json_object_new_array(), *e;

		campaign_numbers_free(&nums);
		e = json_object_new_object();
		json_object_object_add(e, "field",
		    json_object_new_string("send_at"));
		json_object_object_add(e, "problem",
		    json_object_new_string("too_far"));
		json_object_array_add(f, e);
		log_kv(LL_INFO, "campaign refused: send_at too far", NULL);
		resp_error(r, AE_VALIDATION_FAILED,
		    "send_at is at most 366 days ahead.", f);
		return;
	}
	memset(&c, 0, sizeof(c));
	c.org_id = r->who.org_id;
	c.name = jv_str(r->in, "name", "");
	c.message = jv_str(r->in, "message", "");
	c.user_id = jv_str(r->in, "user_id", NULL);
	c.send_at = jv_str(r->in, "send_at", NULL);
	c.request_key = r->idem_locked ? r->idem_ksha : NULL;
	c.batch_size = r->ch->cfg->campaign_batch_size;
	c.numbers = &nums;
	er = campaign_create(r->ch->db, &c, &made);
	campaign_numbers_free(&nums);
	if (er == BW_EEXISTS) {
		/* The key's own row is gone (expired); its campaign is not. */
		resp_error(r, AE_IDEMPOTENCY_KEY_REUSED,
		    "this Idempotency-Key already created a campaign", NULL);
		return;
	}
	if (er != BW_OK) {
		resp_fail(r, er);
		return;
	}
	o = json_object_new_object();
	json_object_object_add(o, "id", json_object_new_string(made.id));
	json_object_object_add(o, "status",
	    json_object_new_string(c.send_at != NULL ? "scheduled" : "draft"));
	json_object_object_add(o, "recipients",
	    json_object_new_int64(made.recipients));
	json_object_object_add(o, "duplicates_removed",
	    json_object_new_int64(made.duplicates_removed));
	json_object_object_add(o, "opted_out",
	    json_object_new_int64(made.opted_out));
	snprintf(loc, sizeof(loc), "/api/v1/campaigns/%s", made.id);
	resp_header(r, "Location", loc);
	resp_json(r, 201, o);
}

/* Answers a campaign outcome other than CAMP_OK. */
static void
h_campaigns_outcome(struct req *r, enum campaign_outcome oc)
{
	switch (oc) {
	case CAMP_NOT_FOUND:
		resp_error(r, AE_NOT_FOUND, NULL, NULL);
		break;
	case CAMP_WRONG_STATE:
		resp_error(r, AE_INVALID_STATE,
		    "the campaign has finished already", NULL);
		break;
	case CAMP_INSUFFICIENT:
		resp_error(r, AE_INSUFFICIENT_CREDITS,
		    "not enough credits for every recipient", NULL);
		break;
	default:
		resp_error(r, AE_INTERNAL, NULL, NULL);
		break;
	}
}

/* An action's body problem, after the campaign was found (404 first). */
static int
h_campaigns_action_body(struct req *r)
{
	struct json_object *o = NULL;
	enum bw_err	    er;

	if (r->body_problem == NULL)
		return 0;
	er = campaign_get(r->ch->db, r->who.org_id, r->args[0], &o);
	json_object_put(o);
	if (er != BW_OK)
		resp_fail(r, er);
	else
		(void)resp_action_body(r);
	return 1;
}

/*
 * POST /api/v1/campaigns/{id}/send: 202 with the campaign and "batches";
 * a campaign past draft answers 200 with its state, nothing new.
 */
void
h_campaigns_send(struct req *r)
{
	struct json_object   *o = NULL;
	enum campaign_outcome oc = CAMP__MAX;
	bool		      started = false;
	enum bw_err	      er;

	if (h_campaigns_action_body(r))
		return;
	er = campaign_send(r->ch->db, r->who.org_id, r->args[0],
	    r->ch->cfg->reservation_ttl_s, &o, &started, &oc);
	if (er != BW_OK) {
		resp_fail(r, er);
		return;
	}
	if (oc != CAMP_OK) {
		h_campaigns_outcome(r, oc);
		return;
	}
	resp_json(r, started ? 202 : 200, o);
}

/* GET /api/v1/campaigns/{id} */
void
h_campaigns_get(struct req *r)
{
	struct json_object *o = NULL;
	enum bw_err	    er;

	er = campaign_get(r->ch->db, r->who.org_id, r->args[0], &o);
	if (er != BW_OK) {
		resp_fail(r, er);
		return;
	}
	resp_json(r, 200, o);
}

/* POST /api/v1/campaigns/{id}/cancel: 200; 409 when finished. */
void
h_campaigns_cancel(struct req *r)
{
	struct json_object   *o = NULL;
	enum campaign_outcome oc = CAMP__MAX;
	enum bw_err	      er;

	if (h_campaigns_action_body(r))
		return;
	er = campaign_cancel(r->ch->db, r->who.org_id, r->args[0], &o, &oc);
	if (er != BW_OK) {
		resp_fail(r, er);
		return;
	}
	if (oc != CAMP_OK) {
		h_campaigns_outcome(r, oc);
		return;
	}
	resp_json(r, 200, o);
}

/* GET /api/v1/campaigns?limit=N&cursor=ID: newest first. */
void
h_campaigns_list(struct req *r)
{
	struct json_object *o = NULL;
	char		    cur[64];
	int		    limit;
	enum bw_err	    er;

	if (resp_page_args(r, CAMPAIGN_LIST_MAX, &limit, cur, sizeof(cur)) < 0)
		return;
	er = campaign_list(r->ch->db, r->who.org_id, limit,
	    cur[0] != '\0' ? cur : NULL, &o);
	if (er == BW_EINVAL) {
		resp_invalid(r, "cursor names no campaign of yours.", "cursor",
		    "invalid_format");
		return;
	}
	if (er != BW_OK) {
		resp_fail(r, er);
		return;
	}
	resp_json(r, 200, o);
}

/* POST /api/v1/opt-outs {"phone"}: 201 added, 200 already out. */
void
h_optouts_create(struct req *r)
{
	struct json_object *o;
	char		    num[CAMPAIGN_E164_MAX + 1];
	const char	   *p = jv_str(r->in, "phone", ""), *why;
	bool		    created = false;
	enum bw_err	    er;

	why = e164_normalize(p, num);
	if (why != NULL) {
		resp_invalid(r, "phone must be an E.164 number.", "phone", why);
		return;
	}
	er =
	    campaign_optout_add(r->ch->db, r->who.org_id, num, "api", &created);
	if (er != BW_OK) {
		resp_fail(r, er);
		return;
	}
	o = json_object_new_object();
	json_object_object_add(o, "phone", json_object_new_string(num));
	json_object_object_add(o, "opted_out", json_object_new_boolean(1));
	resp_json(r, created ? 201 : 200, o);
}
