/* SPDX-License-Identifier: MIT */
/*
 * POST /api/v1/webhooks/{provider}/{org_id} (CONTRACT.md, "Webhooks"):
 * verifies the provider's signature with the org's secrets (lib/money/whsig.h),
 * then records each event id once and applies its effect in the same
 * transaction (lib/money/webhook.h): Stripe and Square payments grant credits
 * anchored by the provider's payment id (lib/money/credit.h), Stripe refunds
 * take them back, SMS delivery reports update the delivery status (newest
 * wins) and LINE message events queue a chat turn (queue "chat_line").
 * 2xx only after the commit; a database failure is 503 so that the
 * provider retries. An unknown org is verified against a dummy secret and
 * answers exactly like a bad signature.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "money/credit.h"
#include "ctx.h"
#include "handlers.h"
#include "platform/jobq.h"
#include "core/jv.h"
#include "core/log.h"
#include "resp.h"
#include "core/sec.h"
#include "money/webhook.h"
#include "money/whsig.h"

#define HW_ANCHOR_MAX 256 /* "stripe:refund:ch_..." */
#define HW_LINE_QUEUE "chat_line"
#define HW_MAX_EVENTS 100 /* LINE events in one delivery */

/* One event of a delivery, what its transaction does with it. */
enum hw_action {
	HA_IGNORE, /* record only */
	HA_GRANT,  /* credit_grant_tx(user, credits, anchor) */
	HA_REFUND, /* credit_refund_tx(anchor, refund_anchor) */
	HA_SMS,	   /* webhook_sms_status_tx() */
	HA_LINE,   /* jobq_enqueue(chat_line) */
};

struct hw_event {
	const char    *id; /* provider event id; owned by the JSON */
	const char    *type;
	enum hw_action action;
	const char    *user_id; /* HA_GRANT; HA_LINE: source.userId */
	int64_t	       credits;
	char	       anchor[HW_ANCHOR_MAX];  /* grant anchor */
	char	       anchor2[HW_ANCHOR_MAX]; /* refund anchor */
	const char    *message_id;	       /* HA_SMS */
	const char    *status;		       /* HA_SMS */
	int64_t	       ts_ms;		       /* HA_SMS provider time */
	const char    *reply_token;	       /* HA_LINE */
	const char    *text;		       /* HA_LINE */
	/* Set by the transaction. */
	enum webhook_outcome outcome;
	bool		     dup;
};

struct hw_tx {
	const char	   *org_id;
	enum whsig_provider p;
	struct hw_event	   *ev;
	size_t		    nev;
};

/* Dummy secrets of this process, for unknown orgs (never valid). */
static struct webhook_secrets hw_dummy[WS__MAX];
static int		      hw_dummy_ready;

/*
 * Fills one random dummy secret per provider, once per process. Returns 1,
 * or 0 when the random source failed.
 */
static int
hw_dummy_init(void)
{
	uint8_t	   rnd[32];
	struct buf b;
	char	   hex[65];
	int	   i, ok = 1;

	if (hw_dummy_ready)
		return 1;
	for (i = 0; i < WS__MAX; i++) {
		if (sec_random(rnd, sizeof(rnd)) != BW_OK)
			return 0;
		sec_hex(rnd, sizeof(rnd), hex);
		if (i == WS_STDWEBHOOKS) {
			buf_init(&b, 128);
			if (sec_b64(rnd, sizeof(rnd), &b) != BW_OK)
				ok = 0;
			snprintf(hw_dummy[i].secret[0],
			    sizeof(hw_dummy[i].secret[0]), "whsec_%s",
			    buf_cstr(&b));
			buf_free(&b);
		} else if (i == WS_STRIPE) {
			snprintf(hw_dummy[i].secret[0],
			    sizeof(hw_dummy[i].secret[0]), "whsec_%s", hex);
		} else {
			snprintf(hw_dummy[i].secret[0],
			    sizeof(hw_dummy[i].secret[0]), "%s", hex);
		}
		snprintf(hw_dummy[i].url[0], sizeof(hw_dummy[i].url[0]),
		    "https://unknown.invalid/webhooks");
		hw_dummy[i].s[0].secret = hw_dummy[i].secret[0];
		hw_dummy[i].s[0].url = hw_dummy[i].url[0];
		hw_dummy[i].n = 1;
	}
	sec_wipe(rnd, sizeof(rnd));
	hw_dummy_ready = ok;
	return ok;
}

/* obj[key] when it is a non-empty string, else NULL. */
static const char *
hw_str(struct json_object *obj, const char *key)
{
	struct json_object *v;

	if (obj == NULL || !json_object_object_get_ex(obj, key, &v) ||
	    !json_object_is_type(v, json_type_string) ||
	    json_object_get_string_len(v) == 0)
		return NULL;
	return json_object_get_string(v);
}

/* obj[key] when it is an object, else NULL. */
static struct json_object *
hw_obj(struct json_object *obj, const char *key)
{
	struct json_object *v;

	if (obj == NULL || !json_object_object_get_ex(obj, key, &v) ||
	    !json_object_is_type(v, json_type_object))
		return NULL;
	return v;
}

/*
 * Reads the grant named by a metadata object: user_id (1..
 * CREDIT_USER_ID_MAX-1 bytes) and credits (a decimal string, as Stripe
 * metadata values are, or an integer) in 1..BW_MAX_WEBHOOK_CREDITS.
 * Returns 1 with ev filled, else 0.
 */
static int
hw_metadata(struct json_object *md, struct hw_event *ev)
{
	struct json_object *v;
	const char	   *uid, *s;
	char		   *end;
	long long	    n;
	size_t		    ulen;

	uid = hw_str(md, "user_id");
	if (uid == NULL || md == NULL ||
	    !json_object_object_get_ex(md, "credits", &v))
		return 0;
	ulen = strlen(uid);
	if (ulen >= CREDIT_USER_ID_MAX)
		return 0;
	if (json_object_is_type(v, json_type_int)) {
		errno = 0;
		n = json_object_get_int64(v);
		if (errno != 0)
			return 0;
	} else if (json_object_is_type(v, json_type_string)) {
		s = json_object_get_string(v);
		if (*s < '0' || *s > '9')
			return 0;
		errno = 0;
		n = strtoll(s, &end, 10);
		if (errno != 0 || *end != '\0')
			return 0;
	} else
		return 0;
	if (n < 1 || n > BW_MAX_WEBHOOK_CREDITS)
		return 0;
	ev->user_id = uid;
	ev->credits = n;
	return 1;
}

/* Writes "<prefix><id>" into dst; 0 when id is missing or too long. */
static int
hw_anchor(char dst[HW_ANCHOR_MAX], const char *prefix, const char *id)
{
	int n;

	if (id == NULL)
		return 0;
	n = snprintf(dst, HW_ANCHOR_MAX, "%s%s", prefix, id);
	return n > 0 && n < HW_ANCHOR_MAX && n <= BW_MAX_ANCHOR;
}

/*
 * A Stripe event (https://docs.stripe.com/api/events/object): id, type,
 * data.object. checkout.session.completed/async_payment_succeeded (paid)
 * and payment_intent.succeeded grant, anchored by the PaymentIntent id so
 * that both events of one payment grant once; charge.refunded refunds.
 * Returns 1 with ev filled, 0 when the event has no id.
 */
static int
hw_parse_stripe(struct json_object *root, struct hw_event *ev)
{
	struct json_object *obj;
	const char	   *ps, *pi;

	ev->id = hw_str(root, "id");
	ev->type = hw_str(root, "type");
	if (ev->id == NULL)
		return 0;
	ev->action = HA_IGNORE;
	if (ev->type == NULL)
		return 1;
	obj = hw_obj(hw_obj(root, "data"), "object");
	if (strcmp(ev->type, "checkout.session.completed") == 0 ||
	    strcmp(ev->type, "checkout.session.async_payment_succeeded") == 0) {
		ps = hw_str(obj, "payment_status");
		if (ps != NULL && strcmp(ps, "paid") != 0)
			return 1; /* async payment still pending */
		pi = hw_str(obj, "payment_intent");
		if (pi == NULL)
			pi = hw_str(obj, "id");
		if (hw_metadata(hw_obj(obj, "metadata"), ev) &&
		    hw_anchor(ev->anchor, "stripe:", pi))
			ev->action = HA_GRANT;
	} else if (strcmp(ev->type, "payment_intent.succeeded") == 0) {
		if (hw_metadata(hw_obj(obj, "metadata"), ev) &&
		    hw_anchor(ev->anchor, "stripe:", hw_str(obj, "id")))
			ev->action = HA_GRANT;
	} else if (strcmp(ev->type, "charge.refunded") == 0) {
		if (hw_anchor(ev->anchor,
			"stripe:", hw_str(obj, "payment_intent")) &&
		    hw_anchor(ev->anchor2, "stripe:refund:", hw_str(obj, "id")))
			ev->action = HA_REFUND;
	}
	return 1;
}

/*
 * A Square event (https://developer.squareup.com/docs/webhooks): event_id,
 * type, data.object.payment. payment.updated with status COMPLETED grants
 * what data.object.payment.metadata names, anchored "square:<payment id>";
 * refund.updated/created with status COMPLETED refunds its payment_id.
 */
static int
hw_parse_square(struct json_object *root, struct hw_event *ev)
{
	struct json_object *obj, *pay, *ref;
	const char	   *st;

	ev->id = hw_str(root, "event_id");
	ev->type = hw_str(root, "type");
	if (ev->id == NULL)
		return 0;
	ev->action = HA_IGNORE;
	if (ev->type == NULL)
		return 1;
	obj = hw_obj(hw_obj(root, "data"), "object");
	if (strcmp(ev->type, "payment.updated") == 0 ||
	    strcmp(ev->type, "payment.created") == 0) {
		pay = hw_obj(obj, "payment");
		st = hw_str(pay, "status");
		if (st != NULL && strcmp(st, "COMPLETED") == 0 &&
		    hw_metadata(hw_obj(pay, "metadata"), ev) &&
		    hw_anchor(ev->anchor, "square:", hw_str(pay, "id")))
			ev->action = HA_GRANT;
	} else if (strcmp(ev->type, "refund.updated") == 0 ||
	    strcmp(ev->type, "refund.created") == 0) {
		ref = hw_obj(obj, "refund");
		st = hw_str(ref, "status");
		if (st != NULL && strcmp(st, "COMPLETED") == 0 &&
		    hw_anchor(ev->anchor,
			"square:", hw_str(ref, "payment_id")) &&
		    hw_anchor(ev->anchor2, "square:refund:", hw_str(ref, "id")))
			ev->action = HA_REFUND;
	}
	return 1;
}

/*
 * Parses an RFC 3339 UTC or offset timestamp ("2024-05-01T10:00:00.123Z",
 * "...+02:00") into unix milliseconds. Returns 1, or 0 when malformed.
 */
static int
hw_rfc3339_ms(const char *s, int64_t *ms)
{
	struct tm   tm;
	const char *p;
	int64_t	    frac = 0, scale = 1000, off = 0;
	time_t	    t;
	int	    oh, om;

	memset(&tm, 0, sizeof(tm));
	p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (p == NULL)
		return 0;
	if (*p == '.') {
		for (p++; *p >= '0' && *p <= '9'; p++) {
			if (scale > 1) {
				scale /= 10;
				frac += (*p - '0') * scale;
			}
		}
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if ((*p == '+' || *p == '-') &&
	    sscanf(p + 1, "%2d:%2d", &oh, &om) == 2 && strlen(p) == 6) {
		off = (int64_t)(oh * 3600 + om * 60) * (*p == '+' ? 1 : -1);
		p += 6;
	} else
		return 0;
	if (*p != '\0')
		return 0;
	t = timegm(&tm);
	if (t == (time_t)-1)
		return 0;
	*ms = ((int64_t)t - off) * 1000 + frac;
	return 1;
}

/*
 * A Standard Webhooks SMS delivery report: the event id is the signed
 * webhook-id header; body {"type","timestamp","data":{"message_id",
 * "status"}}. The provider's event time is the payload's timestamp (RFC
 * 3339 or unix seconds), else the signed header timestamp.
 */
static int
hw_parse_sms(struct json_object *root, const char *hdr_id, int64_t signed_ts,
    struct hw_event *ev)
{
	struct json_object *data, *v;
	const char	   *ts;

	ev->id = hdr_id;
	ev->type = hw_str(root, "type");
	if (ev->id == NULL || *ev->id == '\0')
		return 0;
	ev->action = HA_IGNORE;
	data = hw_obj(root, "data");
	ev->message_id = hw_str(data, "message_id");
	ev->status = hw_str(data, "status");
	if (ev->message_id == NULL || ev->status == NULL ||
	    strlen(ev->message_id) > 255 || strlen(ev->status) > 64)
		return 1;
	ev->ts_ms = signed_ts * 1000;
	ts = hw_str(root, "timestamp");
	if (ts != NULL) {
		if (!hw_rfc3339_ms(ts, &ev->ts_ms))
			return 1;
	} else if (json_object_object_get_ex(root, "timestamp", &v) &&
	    json_object_is_type(v, json_type_int)) {
		ev->ts_ms = json_object_get_int64(v) * 1000;
	}
	if (ev->ts_ms < 0)
		return 1;
	ev->action = HA_SMS;
	return 1;
}

/*
 * One LINE webhook event (Messaging API, "Webhook event objects"): a
 * text message with a reply token and a user source queues a chat turn.
 * Returns 0 when it carries no webhookEventId (it cannot be deduplicated;
 * skipped).
 */
static int
hw_parse_line_event(struct json_object *e, struct hw_event *ev)
{
	struct json_object *msg;

	memset(ev, 0, sizeof(*ev));
	ev->id = hw_str(e, "webhookEventId");
	ev->type = hw_str(e, "type");
	if (ev->id == NULL || strlen(ev->id) > WEBHOOK_EVENT_ID_MAX)
		return 0;
	ev->action = HA_IGNORE;
	if (ev->type == NULL || strcmp(ev->type, "message") != 0)
		return 1;
	msg = hw_obj(e, "message");
	if (hw_str(msg, "type") == NULL ||
	    strcmp(hw_str(msg, "type"), "text") != 0)
		return 1;
	ev->user_id = hw_str(hw_obj(e, "source"), "userId");
	ev->reply_token = hw_str(e, "replyToken");
	ev->text = hw_str(msg, "text");
	if (ev->user_id != NULL && ev->reply_token != NULL && ev->text != NULL)
		ev->action = HA_LINE;
	return 1;
}

/* Queues the chat turn of one LINE message event (job key per event). */
static enum bw_err
hw_line_enqueue(struct db *db, const char *org_id, const struct hw_event *ev)
{
	struct jobq_spec    spec;
	struct json_object *pl;
	char		    key[BW_MAX_JOB_KEY + 1], id[37];
	char		   *txt = NULL;
	enum bw_err	    er;
	bool		    created = false;
	int		    n;

	n = snprintf(key, sizeof(key), "line:%s:%s", org_id, ev->id);
	if (n < 0 || (size_t)n >= sizeof(key))
		return BW_EINVAL;
	pl = json_object_new_object();
	if (pl == NULL)
		return BW_ENOMEM;
	json_object_object_add(pl, "org_id", json_object_new_string(org_id));
	json_object_object_add(pl, "user_id",
	    json_object_new_string(ev->user_id));
	json_object_object_add(pl, "reply_token",
	    json_object_new_string(ev->reply_token));
	json_object_object_add(pl, "text", json_object_new_string(ev->text));
	json_object_object_add(pl, "event_id", json_object_new_string(ev->id));
	txt = jv_dump(pl);
	json_object_put(pl);
	if (txt == NULL)
		return BW_ENOMEM;
	memset(&spec, 0, sizeof(spec));
	spec.queue = HW_LINE_QUEUE;
	spec.job_key = key;
	spec.org_id = org_id;
	spec.payload = txt;
	er = jobq_enqueue(db, &spec, id, &created);
	free(txt);
	return er;
}

/* The grant of one payment, unless its refund came first. */
static enum bw_err
hw_grant(struct db *db, const char *org_id, struct hw_event *ev)
{
	enum bw_err er;
	bool	    refunded = false, applied = false;

	er = webhook_anchor_lock_tx(db, org_id, ev->anchor);
	if (er != BW_OK)
		return er;
	er = webhook_refunded_early_tx(db, org_id, ev->anchor, &refunded);
	if (er != BW_OK)
		return er;
	if (refunded) {
		log_kv(LL_WARN, "webhook grant after its refund: not granted",
		    "event_id", ev->id, "anchor", ev->anchor, NULL);
		ev->outcome = WO_IGNORED;
		return BW_OK;
	}
	er = credit_grant_tx(db, org_id, ev->user_id, ev->credits, ev->anchor,
	    &applied);
	if (er == BW_EINVAL) {
		/* A user id the ledger refuses: the event stays recorded. */
		log_kv(LL_WARN, "webhook grant refused by the ledger",
		    "event_id", ev->id, "anchor", ev->anchor, NULL);
		ev->outcome = WO_IGNORED;
		return BW_OK;
	}
	if (er != BW_OK)
		return er;
	ev->outcome = applied ? WO_PROCESSED : WO_DUPLICATE;
	return BW_OK;
}

/* The refund of one payment; remembered when its grant has not come. */
static enum bw_err
hw_refund(struct db *db, const char *org_id, struct hw_event *ev)
{
	enum bw_err er;
	bool	    applied = false;

	er = webhook_anchor_lock_tx(db, org_id, ev->anchor);
	if (er != BW_OK)
		return er;
	er = credit_refund_tx(db, org_id, ev->anchor, ev->anchor2, &applied);
	if (er == BW_ENOTFOUND) {
		log_kv(LL_WARN, "webhook refund before (or without) its grant",
		    "event_id", ev->id, "anchor", ev->anchor, NULL);
		er = webhook_early_refund_tx(db, org_id, ev->anchor,
		    ev->anchor2);
		ev->outcome = WO_IGNORED;
		return er;
	}
	if (er != BW_OK)
		return er;
	ev->outcome = applied ? WO_PROCESSED : WO_DUPLICATE;
	return BW_OK;
}

/*
 * The delivery's transaction: per event, the webhook_events row, then its
 * effect. db_tx() may run it more than once: it starts from scratch.
 */
static enum bw_err
hw_tx_fn(struct db *db, void *v)
{
	struct hw_tx	*t = v;
	struct hw_event *ev;
	enum bw_err	 er;
	size_t		 i;
	bool		 fresh, applied;

	for (i = 0; i < t->nev; i++) {
		ev = &t->ev[i];
		ev->dup = false;
		ev->outcome = WO_PROCESSED;
		er = webhook_event_record_tx(db, t->org_id, t->p, ev->id,
		    ev->type, &fresh);
		if (er != BW_OK)
			return er;
		if (!fresh) {
			ev->dup = true;
			continue;
		}
		switch (ev->action) {
		case HA_GRANT:
			er = hw_grant(db, t->org_id, ev);
			break;
		case HA_REFUND:
			er = hw_refund(db, t->org_id, ev);
			break;
		case HA_SMS:
			er =
			    webhook_sms_status_tx(db, t->org_id, ev->message_id,
				ev->status, ev->ts_ms, ev->id, &applied);
			break;
		case HA_LINE:
			er = hw_line_enqueue(db, t->org_id, ev);
			break;
		case HA_IGNORE:
		default:
			ev->outcome = WO_IGNORED;
			er = BW_OK;
			break;
		}
		if (er != BW_OK)
			return er;
		if (ev->outcome != WO_PROCESSED) {
			er = webhook_event_outcome_tx(db, t->org_id, t->p,
			    ev->id, ev->outcome);
			if (er != BW_OK)
				return er;
		}
	}
	return BW_OK;
}

/* A 5xx for a failed transaction: the provider retries. */
static void
hw_fail(struct req *r, enum bw_err er)
{
	if (er == BW_ENOMEM || er == BW_EINVAL || er == BW_ETOOBIG) {
		resp_error(r, AE_INTERNAL, NULL, NULL);
		return;
	}
	resp_header(r, "Retry-After", "5");
	resp_error(r, AE_DEPENDENCY_UNAVAILABLE, NULL, NULL);
}

/*
 * Checks the signature. Returns 1 when the request is authentic and
 * fresh, else 0 with the error set. An unknown or malformed org is checked
 * against this process's dummy secret and always refused the same way.
 */
static int
hw_verify(struct req *r, enum whsig_provider p, const char *org_id,
    int64_t *signed_ts)
{
	const struct whsig_names     *nm = whsig_header_names(p);
	struct whsig_headers	      h;
	struct webhook_secrets	      sec;
	const struct webhook_secrets *use = &sec;
	enum whsig_verdict	      v;
	enum bw_err		      er;
	int			      known = 1;

	memset(&sec, 0, sizeof(sec));
	er = webhook_secrets_get(r->ch->db, org_id, p, &sec);
	if (er == BW_EINVAL || er == BW_ENOTFOUND) {
		if (!hw_dummy_init()) {
			resp_error(r, AE_INTERNAL, NULL, NULL);
			return 0;
		}
		use = &hw_dummy[p];
		known = 0;
	} else if (er != BW_OK) {
		hw_fail(r, er);
		return 0;
	}
	memset(&h, 0, sizeof(h));
	if (nm != NULL) {
		if (nm->signature.cgi != NULL)
			h.signature = req_param(r, nm->signature.cgi);
		if (nm->timestamp.cgi != NULL)
			h.timestamp = req_param(r, nm->timestamp.cgi);
		if (nm->id.cgi != NULL)
			h.id = req_param(r, nm->id.cgi);
	}
	v = whsig_verify(p, &h, buf_cstr(&r->body), r->body.len, use->s, use->n,
	    clock_wall_ms() / 1000, -1, signed_ts);
	webhook_secrets_clear(&sec);
	if (!known && v != WV_ERROR)
		v = WV_INVALID_SIGNATURE;
	if (v == WV_VALID)
		return 1;
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

/* Fills t->ev from a verified body. Returns 1, or 0 with the error set. */
static int
hw_events(struct req *r, struct json_object *root, int64_t signed_ts,
    struct hw_tx *t)
{
	struct json_object *arr;
	size_t		    i, n;
	int		    ok = 0;

	switch (t->p) {
	case WS_STRIPE:
		ok = hw_parse_stripe(root, &t->ev[0]);
		break;
	case WS_SQUARE:
		ok = hw_parse_square(root, &t->ev[0]);
		break;
	case WS_STDWEBHOOKS:
		ok = hw_parse_sms(root, req_param(r, "HTTP_WEBHOOK_ID"),
		    signed_ts, &t->ev[0]);
		break;
	case WS_LINE:
		if (!json_object_object_get_ex(root, "events", &arr) ||
		    !json_object_is_type(arr, json_type_array))
			break;
		n = json_object_array_length(arr);
		if (n > HW_MAX_EVENTS)
			break;
		for (i = 0; i < n; i++)
			if (hw_parse_line_event(json_object_array_get_idx(arr,
						    i),
				&t->ev[t->nev]))
				t->nev++;
		return 1;
	default:
		break;
	}
	if (ok &&
	    (t->ev[0].id == NULL || strlen(t->ev[0].id) > WEBHOOK_EVENT_ID_MAX))
		ok = 0;
	if (!ok) {
		resp_error(r, AE_VALIDATION_FAILED,
		    "the event has no usable "
		    "id or events list",
		    NULL);
		return 0;
	}
	t->nev = 1;
	return 1;
}

void
h_webhook(struct req *r)
{
	struct hw_event	    evs[HW_MAX_EVENTS];
	struct hw_tx	    t;
	struct json_object *root = NULL, *o;
	enum whsig_provider p;
	enum bw_err	    er;
	int64_t		    signed_ts = 0;
	size_t		    i, nproc = 0, ndup = 0;
	const char	   *st;

	if (whsig_provider_parse(r->args[0], &p) != BW_OK || p == WS_TWILIO) {
		resp_error(r, AE_NOT_FOUND, "no such webhook provider", NULL);
		return;
	}
	if (!hw_verify(r, p, r->args[1], &signed_ts))
		return;
	log_ctx_set(LC_ORG_ID, r->args[1]);
	er = jv_parse(buf_cstr(&r->body), r->body.len,
	    BW_MAX_WEBHOOK_JSON_DEPTH, &root);
	if (er != BW_OK) {
		resp_error(r, AE_INVALID_JSON, NULL, NULL);
		return;
	}
	memset(evs, 0, sizeof(evs));
	memset(&t, 0, sizeof(t));
	t.org_id = r->args[1];
	t.p = p;
	t.ev = evs;
	if (!hw_events(r, root, signed_ts, &t))
		goto out;
	if (t.nev > 0) {
		er = db_tx(r->ch->db, false, hw_tx_fn, &t);
		if (er != BW_OK) {
			hw_fail(r, er);
			goto out;
		}
	}
	for (i = 0; i < t.nev; i++) {
		if (evs[i].dup || evs[i].outcome == WO_DUPLICATE)
			ndup++;
		else if (evs[i].outcome == WO_PROCESSED)
			nproc++;
		log_kv(LL_INFO, "webhook event", "provider",
		    whsig_provider_name(p), "event_id", evs[i].id, "type",
		    evs[i].type, "outcome",
		    evs[i].dup ? "duplicate"
			       : webhook_outcome_name(evs[i].outcome),
		    NULL);
	}
	if (nproc > 0)
		st = "processed";
	else if (t.nev > 0 && ndup == t.nev)
		st = "duplicate";
	else
		st = "ignored";
	o = json_object_new_object();
	json_object_object_add(o, "status", json_object_new_string(st));
	resp_json(r, 200, o);
out:
	json_object_put(root);
}
