/* SPDX-License-Identifier: MIT */
/*
 * POST /api/v1/webhooks/{provider}/{org_id} (CONTRACT.md, "Webhooks"), the
 * HTTP side only: the signature headers go to webhook_verify() (the org's
 * secrets, or a dummy for an unknown org, which answers exactly like a bad
 * signature), the verified body to jv_parse() and wh_parse()
 * (lib/money/wh_parse.h), and its events to webhook_apply()
 * (lib/money/webhook.h), which records each event id once and applies its
 * effect in one transaction; a LINE message event's effect is
 * line_job_enqueue() (lib/chat/line_job.h), passed in as a callback so
 * that it runs in that same transaction. 2xx only after the commit; a
 * database failure is 503 so that the provider retries.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "campaign/campaign.h"
#include "chat/line_job.h"
#include "core/metrics.h"
#include "core/clock.h"
#include "core/jv.h"
#include "core/log.h"
#include "ctx.h"
#include "handlers.h"
#include "money/webhook.h"
#include "money/wh_parse.h"
#include "money/whsig.h"
#include "resp.h"

/* Shared metric cells (registered before fork()). */
static const char *const hw_providers[] = { "stripe", "square", "line", "sms" };
#define HW_NPROVIDERS 4
static const char *const hw_dlr_states[] = { "sent", "delivered", "undelivered",
	"failed", "other" };
#define HW_NDLR 5
static int m_failed[HW_NPROVIDERS] = { -1, -1, -1, -1 };
static int m_dlr[HW_NDLR] = { -1, -1, -1, -1, -1 };

int
h_webhooks_metrics_register(void)
{
	char labels[64];
	int  i;

	for (i = 0; i < HW_NPROVIDERS; i++) {
		snprintf(labels, sizeof(labels), "provider=\"%s\"",
		    hw_providers[i]);
		m_failed[i] = metrics_counter("bulwark_webhook_events_failed_"
					      "total",
		    "Webhook deliveries refused (signature, staleness, body) "
		    "or failed (5xx), by provider.",
		    labels);
		if (m_failed[i] < 0)
			return -1;
	}
	for (i = 0; i < HW_NDLR; i++) {
		snprintf(labels, sizeof(labels), "state=\"%s\"",
		    hw_dlr_states[i]);
		m_dlr[i] = metrics_counter("bulwark_sms_delivery_reports_total",
		    "SMS delivery reports stored (not replays), by reported "
		    "state.",
		    labels);
		if (m_dlr[i] < 0)
			return -1;
	}
	return 0;
}

/* Counts a refused or failed delivery of provider p. */
static void
hw_count_failed(enum whsig_provider p)
{
	const char *n = whsig_provider_name(p);
	int	    i;

	for (i = 0; i < HW_NPROVIDERS; i++)
		if (n != NULL && strcmp(n, hw_providers[i]) == 0 &&
		    m_failed[i] >= 0)
			metrics_inc(m_failed[i]);
}

/* A 5xx for a failed verification or transaction: the provider retries. */
static void
hw_fail(struct req *r, enum bw_err er)
{
	if (er == BW_ENOMEM || er == BW_EINVAL || er == BW_ETOOBIG ||
	    er == BW_ECRYPTO) {
		resp_error(r, AE_INTERNAL, NULL, NULL);
		return;
	}
	resp_header(r, "Retry-After", "5");
	resp_error(r, AE_DEPENDENCY_UNAVAILABLE, NULL, NULL);
}

/*
 * Checks the signature headers of p against the body. Returns 1 when the
 * request is authentic and fresh (*signed_ts set where the scheme signs a
 * time), else 0 with the error set.
 */
static int
hw_verify(struct req *r, enum whsig_provider p, const char *org_id,
    int64_t *signed_ts)
{
	const struct whsig_names *nm = whsig_header_names(p);
	struct whsig_headers	  h;
	enum whsig_verdict	  v;
	enum bw_err		  er;
	bool			  known = false;

	/* The org in the path is the tenant (RLS) of its secrets and of the
	 * effects; one that is no UUID stays unset and matches nothing. */
	(void)db_set_org(r->ch->db, org_id);
	memset(&h, 0, sizeof(h));
	if (nm != NULL) {
		if (nm->signature.cgi != NULL)
			h.signature = req_param(r, nm->signature.cgi);
		if (nm->timestamp.cgi != NULL)
			h.timestamp = req_param(r, nm->timestamp.cgi);
		if (nm->id.cgi != NULL)
			h.id = req_param(r, nm->id.cgi);
	}
	er = webhook_verify(r->ch->db, org_id, p, &h, buf_cstr(&r->body),
	    r->body.len, clock_wall_ms() / 1000, &v, &known, signed_ts);
	if (er != BW_OK) {
		hw_fail(r, er);
		return 0;
	}
	if (v == WV_VALID)
		return 1;
	hw_count_failed(p);
	if (known) /* the owner's overview; unknown orgs write nothing */
		(void)webhook_fail_note(r->ch->rds, org_id, p,
		    v == WV_STALE	? WF_STALE
			: v == WV_ERROR ? WF_ERROR
					: WF_SIGNATURE);
	log_kv(LL_WARN, "webhook refused", "provider", whsig_provider_name(p),
	    "verdict", whsig_verdict_str(v), "org_known", known ? "1" : "0",
	    NULL);
	if (v == WV_STALE)
		resp_error(r, AE_STALE_EVENT, NULL, NULL);
	else if (v == WV_ERROR)
		resp_error(r, AE_INTERNAL, NULL, NULL);
	else
		resp_error(r, AE_INVALID_SIGNATURE, NULL, NULL);
	return 0;
}

/*
 * The effect of a LINE text message event (webhook_apply()'s callback,
 * inside its transaction): queue the chat turn of the event, unless its
 * permanent anchor says it was handled before (*seen).
 */
static enum bw_err
hw_line_effect(struct db *db, const char *org_id, const struct wh_event *ev,
    void *arg, bool *seen)
{
	struct line_job j;
	enum bw_err	er;
	bool		queued = false;

	(void)arg;
	memset(&j, 0, sizeof(j));
	j.org_id = org_id;
	j.user_id = ev->user_id;
	j.reply_token = ev->reply_token;
	j.text = ev->text;
	j.event_id = ev->id;
	er = line_job_enqueue(db, &j, &queued);
	if (er == BW_OK && !queued)
		*seen = true;
	return er;
}

/*
 * A stored SMS delivery report (webhook_apply()'s callback, in its
 * transaction): the recipient with its message id moves forward.
 */
static enum bw_err
hw_sms_effect(struct db *db, const char *org_id, const struct wh_event *ev,
    void *arg)
{
	bool changed = false;

	(void)arg;
	return campaign_dlr_apply_tx(db, org_id, ev->message_id, &changed);
}

/* An inbound STOP: the number joins the org's opt-outs. */
static enum bw_err
hw_optout_effect(struct db *db, const char *org_id, const struct wh_event *ev,
    void *arg)
{
	bool	    created = false;
	enum bw_err er;

	(void)arg;
	er = campaign_optout_add_tx(db, org_id, ev->phone, "inbound", &created);
	if (er == BW_EINVAL) {
		log_kv(LL_WARN, "sms opt-out from a number that is not E.164",
		    "event_id", ev->id, NULL);
		return BW_OK;
	}
	return er;
}

/* Counts the SMS reports a delivery stored (not redeliveries). */
static void
hw_count_dlr(const struct wh_event *ev, const struct webhook_result *res,
    size_t n)
{
	size_t i;
	int    k;

	for (i = 0; i < n; i++) {
		if (ev[i].action != WA_SMS || res[i].redelivered)
			continue;
		for (k = 0; k < HW_NDLR - 1; k++)
			if (strcmp(ev[i].status, hw_dlr_states[k]) == 0)
				break;
		if (m_dlr[k] >= 0)
			metrics_inc(m_dlr[k]);
	}
}

/*
 * A duplicate wrote nothing: its answer rests on the first delivery's
 * commit, which must be on the synchronous standby before we say so
 * (fcgi/main.c durable_or_503(), core/db.h db_need_sync()).
 */
static void
hw_need_sync(struct req *r, const struct webhook_result *res, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (res[i].redelivered || res[i].outcome == WO_DUPLICATE) {
			db_need_sync(r->ch->db);
			return;
		}
}

/* Logs what the delivery did with each event. */
static void
hw_log(enum whsig_provider p, const struct wh_event *ev,
    const struct webhook_result *res, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		log_kv(LL_INFO, "webhook event", "provider",
		    whsig_provider_name(p), "event_id", ev[i].id, "type",
		    ev[i].type, "outcome",
		    res[i].redelivered ? "duplicate"
				       : webhook_outcome_name(res[i].outcome),
		    NULL);
}

void
h_webhook(struct req *r)
{
	static const struct webhook_effects fx = { .line = hw_line_effect,
		.sms = hw_sms_effect,
		.optout = hw_optout_effect };
	struct wh_event			    evs[WH_MAX_EVENTS];
	struct webhook_result		    res[WH_MAX_EVENTS];
	struct json_object		   *root = NULL, *o;
	enum whsig_provider		    p;
	enum bw_err			    er;
	int64_t				    signed_ts = 0;
	size_t				    n = 0;
	const char			   *org_id = r->args[1];

	if (whsig_provider_parse(r->args[0], &p) != BW_OK || p == WS_TWILIO) {
		resp_error(r, AE_NOT_FOUND, "no such webhook provider", NULL);
		return;
	}
	if (!hw_verify(r, p, org_id, &signed_ts))
		return;
	log_ctx_set(LC_ORG_ID, org_id);
	er = jv_parse(buf_cstr(&r->body), r->body.len,
	    BW_MAX_WEBHOOK_JSON_DEPTH, &root);
	if (er != BW_OK) {
		hw_count_failed(p);
		(void)webhook_fail_note(r->ch->rds, org_id, p, WF_BODY);
		resp_error(r, AE_INVALID_JSON, NULL, NULL);
		return;
	}
	er = wh_parse(p, root, req_param(r, "HTTP_WEBHOOK_ID"), signed_ts, evs,
	    WH_MAX_EVENTS, &n);
	if (er != BW_OK) {
		(void)webhook_fail_note(r->ch->rds, org_id, p, WF_BODY);
		resp_error(r, AE_VALIDATION_FAILED,
		    "the event has no usable id or events list", NULL);
		goto out;
	}
	er = webhook_apply(r->ch->db, org_id, p, evs, n, &fx, res);
	if (er != BW_OK) {
		hw_count_failed(p);
		(void)webhook_fail_note(r->ch->rds, org_id, p, WF_ERROR);
		hw_fail(r, er);
		goto out;
	}
	hw_log(p, evs, res, n);
	hw_count_dlr(evs, res, n);
	hw_need_sync(r, res, n);
	o = json_object_new_object();
	json_object_object_add(o, "status",
	    json_object_new_string(
		webhook_outcome_name(webhook_delivery_outcome(res, n))));
	resp_json(r, 200, o);
out:
	json_object_put(root);
}
