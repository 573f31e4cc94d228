/* SPDX-License-Identifier: MIT */
/*
 * Chat (CONTRACT.md "Chat"): POST /api/v1/chat runs one turn through
 * lib/chat/chat.h (rate limits already applied by fcgi/mw_rate.c);
 * GET|DELETE /api/v1/chat/sessions/{channel}/{user_id} read or clear the
 * conversation state.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/chat.h"
#include "core/clock.h"
#include "chat/conv.h"
#include "ctx.h"
#include "handlers.h"
#include "mw_rate.h"
#include "core/jv.h"
#include "core/limits.h"
#include "chat/llm.h"
#include "core/log.h"
#include "resp.h"
#include "route.h"

/* The child's provider client, made on first use (after fork()). */
static struct llm *h_chat_llm;

/*
 * Answers an error with the org's fallback text as "reply" beside "error"
 * (402 and 502 per CONTRACT.md), rendered once; without a reply (or
 * without memory for it) the plain error body.
 */
static void
h_chat_error_reply(struct req *r, enum apierr_code code, const char *reply)
{
	struct json_object *extra = NULL, *v;

	if (reply != NULL && (extra = json_object_new_object()) != NULL) {
		v = json_object_new_string(reply);
		if (v == NULL || json_object_object_add(extra, "reply", v) != 0)
			json_object_put(v);
	}
	resp_error_extra(r, code, NULL, NULL, extra);
	json_object_put(extra);
}

/* {"service":…|null, "area", "stage", "preference"}; NULL on ENOMEM. */
static struct json_object *
h_chat_state_json(const struct conv_state *st)
{
	struct json_object *o;
	int		    i;

	o = json_object_new_object();
	for (i = 0; o != NULL && i < CONV_NFIELDS; i++)
		json_object_object_add(o, conv_field_names[i],
		    st->set[i] ? json_object_new_string(st->val[i]) : NULL);
	return o;
}

static void
h_chat_ok(struct req *r, const struct chat_out *o)
{
	struct json_object *b, *u, *s;

	b = json_object_new_object();
	u = json_object_new_object();
	s = json_object_new_object();
	json_object_object_add(b, "reply", json_object_new_string(o->reply));
	json_object_object_add(b, "model", json_object_new_string(o->model));
	json_object_object_add(b, "downgraded",
	    json_object_new_boolean(o->downgraded));
	json_object_object_add(b, "correlation_id",
	    json_object_new_string(r->correlation_id));
	json_object_object_add(u, "input_tokens",
	    json_object_new_int64(o->input_tokens));
	json_object_object_add(u, "output_tokens",
	    json_object_new_int64(o->output_tokens));
	json_object_object_add(u, "cost_micros",
	    json_object_new_int64(o->cost_micros));
	json_object_object_add(b, "usage", u);
	json_object_object_add(s, "turns", json_object_new_int64(o->turns));
	json_object_object_add(b, "session", s);
	json_object_object_add(b, "state", h_chat_state_json(&o->state));
	resp_json(r, 200, b);
}

/*
 * POST /api/v1/chat: r->in holds {channel, user_id, message, state?},
 * validated against the route's schema (fcgi/routes.c); state's members
 * are the pipeline fields to set with this turn ("" clears one). The turn's outcome becomes
 * 200, 402 or 502 with the fallback reply, 503 with Retry-After, 409, 404.
 */
/* The turn's rider (lib/chat/chat.h): the route's rate limiter. */
static int
h_chat_ride_prep(void *arg, struct rds_call *call)
{
	return mw_rate_ride_prep(arg, call);
}

static int
h_chat_ride_done(void *arg, const struct rds_call *call)
{
	return mw_rate_ride_done(arg, call);
}

void
h_chat(struct req *r)
{
	struct json_object *obj = r->in, *st;
	struct chat_ctx	    c;
	struct chat_in	    in;
	struct chat_out	    o;
	struct chat_rider   rider;
	struct mw_rate_ride ride;
	char		    ra[16];

	memset(&o, 0, sizeof(o));
	if (h_chat_llm == NULL)
		h_chat_llm = llm_new();
	if (h_chat_llm == NULL) {
		resp_error(r, AE_INTERNAL, NULL, NULL);
		goto out;
	}
	c.cfg = r->ch->cfg;
	c.db = r->ch->db;
	c.rds = r->ch->rds;
	c.llm = h_chat_llm;
	c.blocks = r->ch->blocks;
	memset(&in, 0, sizeof(in));
	in.org_id = r->who.org_id;
	in.channel = jv_str(obj, "channel", "web");
	in.user_id = jv_str(obj, "user_id", "");
	in.message = jv_str(obj, "message", "");
	in.request_id = r->request_id;
	in.correlation_id = r->correlation_id;
	/* Counted from nginx's start: time in the listen queue is spent. */
	in.start_ms = r->start_us / 1000 - r->queued_ms;
	/* The rate limiter rides in the turn's first Redis round trip. */
	rider.prep = h_chat_ride_prep;
	rider.done = h_chat_ride_done;
	memset(&ride, 0, sizeof(ride));
	ride.r = r;
	rider.arg = &ride;
	in.rider = &rider;
	if (json_object_object_get_ex(obj, "state", &st)) {
		in.fields.service = jv_str(st, "service", NULL);
		in.fields.area = jv_str(st, "area", NULL);
		in.fields.stage = jv_str(st, "stage", NULL);
		in.fields.preference = jv_str(st, "preference", NULL);
	}
	if (chat_run(&c, &in, &o) != BW_OK) {
		resp_error(r, AE_INTERNAL, NULL, NULL);
		goto out;
	}
	snprintf(ra, sizeof(ra), "%d",
	    o.retry_after_s > 0 ? o.retry_after_s : 1);
	switch (o.outcome) {
	case CO_OK:
		h_chat_ok(r, &o);
		/* The turn's figures ride on the access line (one line). */
		if ((r->log_extra = json_object_new_object()) != NULL)
			chat_out_log_fields(&o, r->log_extra);
		break;
	case CO_BUDGET:
		h_chat_error_reply(r, AE_BUDGET_EXCEEDED, o.reply);
		break;
	case CO_UPSTREAM:
		h_chat_error_reply(r, AE_UPSTREAM_UNAVAILABLE, o.reply);
		break;
	case CO_CAPACITY:
		resp_header(r, "Retry-After", ra);
		resp_error(r, AE_CAPACITY_EXHAUSTED, NULL, NULL);
		break;
	case CO_NOPRICE:
		resp_error(r, AE_INVALID_STATE,
		    "the chat model has no price "
		    "while the org has a budget; ask the operator to set one",
		    NULL);
		break;
	case CO_NOTFOUND:
		resp_error(r, AE_NOT_FOUND, NULL, NULL);
		break;
	case CO_ANSWERED:
		break; /* the limiter's answer (429, 503, 401) */
	default:
		resp_header(r, "Retry-After", ra);
		resp_error(r, AE_DEPENDENCY_UNAVAILABLE, NULL, NULL);
		break;
	}
out:
	chat_out_clear(&o);
}

/* Checks the {channel}/{user_id} path arguments; 1 when fine, else 0 with
 * the error set. */
static int
h_chat_session_args(struct req *r)
{
	const char *ch = r->args[0], *u = r->args[1];
	int64_t	    n;
	int	    i, ok = 0;

	for (i = 0; route_chat_channels[i] != NULL; i++)
		if (strcmp(ch, route_chat_channels[i]) == 0)
			ok = 1;
	n = jv_utf8_len(u, strlen(u));
	if (!ok || n < 1 || n > CHAT_MAX_USER) {
		resp_error(r, AE_NOT_FOUND, "no such session", NULL);
		return 0;
	}
	return 1;
}

/*
 * Answers a conversation-store error: 404 for no such session (or a key
 * Redis refused), 503 with Retry-After otherwise. 0 when er is BW_OK.
 */
static int
h_chat_session_failed(struct req *r, enum bw_err er)
{
	if (er == BW_OK)
		return 0;
	if (er == BW_ENOTFOUND || er == BW_EINVAL) {
		resp_error(r, AE_NOT_FOUND, "no such session", NULL);
		return 1;
	}
	resp_header(r, "Retry-After", "1");
	resp_error(r, AE_DEPENDENCY_UNAVAILABLE, NULL, NULL);
	return 1;
}

void
h_chat_session_get(struct req *r)
{
	struct json_object	*state = NULL, *b, *v;
	enum bw_err		 er;
	static const char *const copy[] = { "turns", "service", "area", "stage",
		"preference", NULL };
	int			 i;

	if (!h_chat_session_args(r))
		return;
	er =
	    conv_get(r->ch->rds, r->who.org_id, r->args[0], r->args[1], &state);
	if (h_chat_session_failed(r, er))
		return;
	b = json_object_new_object();
	json_object_object_add(b, "channel",
	    json_object_new_string(r->args[0]));
	json_object_object_add(b, "user_id",
	    json_object_new_string(r->args[1]));
	v = NULL;
	json_object_object_get_ex(state, "turns_total", &v);
	json_object_object_add(b, "turns",
	    json_object_new_int64(v != NULL ? json_object_get_int64(v) : 0));
	for (i = 0; copy[i] != NULL; i++) {
		if (!json_object_object_get_ex(state, copy[i], &v))
			continue;
		json_object_object_add(b, i == 0 ? "recent_turns" : copy[i],
		    json_object_get(v));
	}
	json_object_put(state);
	resp_json(r, 200, b);
}

void
h_chat_session_delete(struct req *r)
{
	enum bw_err er;

	if (!h_chat_session_args(r))
		return;
	er = conv_delete(r->ch->rds, r->who.org_id, r->args[0], r->args[1]);
	if (h_chat_session_failed(r, er))
		return;
	resp_raw(r, 204, "application/json", "", 0);
}
