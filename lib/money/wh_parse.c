/* SPDX-License-Identifier: MIT */
/*
 * Payload parsers of verified webhook deliveries (Stripe, Square, LINE,
 * SMS): JSON tree in, struct wh_event out. See wh_parse.h.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/jv.h"
#include "core/limits.h"
#include "money/credit.h"
#include "money/webhook.h"
#include "money/wh_parse.h"

static const char *const wh_actions[WA__MAX] = {
	[WA_IGNORE] = "ignore",
	[WA_GRANT] = "grant",
	[WA_REFUND] = "refund",
	[WA_SMS] = "sms",
	[WA_OPTOUT] = "optout",
	[WA_LINE] = "line",
};

const char *
wh_action_name(enum wh_action a)
{
	if ((int)a < 0 || a >= WA__MAX)
		return "?";
	return wh_actions[a];
}

/* obj[key] when it is a non-empty string (owned by obj), else NULL. */
static const char *
wh_str(struct json_object *obj, const char *key)
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
wh_obj(struct json_object *obj, const char *key)
{
	struct json_object *v;

	if (obj == NULL || !json_object_object_get_ex(obj, key, &v) ||
	    !json_object_is_type(v, json_type_object))
		return NULL;
	return v;
}

/* 1 when id is a usable event id (1..WEBHOOK_EVENT_ID_MAX bytes). */
static int
wh_id_ok(const char *id)
{
	return id != NULL && *id != '\0' && strlen(id) <= WEBHOOK_EVENT_ID_MAX;
}

/*
 * Reads a credit amount: a JSON integer, or a string of decimal digits (as
 * Stripe metadata values are), in 1..BW_MAX_WEBHOOK_CREDITS. Returns 1
 * with *out set, else 0.
 */
static int
wh_credits(struct json_object *v, int64_t *out)
{
	const char *s;
	int64_t	    n = 0;

	if (json_object_is_type(v, json_type_int)) {
		errno = 0;
		n = json_object_get_int64(v);
		if (errno != 0)
			return 0;
	} else if (json_object_is_type(v, json_type_string)) {
		s = json_object_get_string(v);
		if (*s == '\0')
			return 0;
		for (; *s != '\0'; s++) {
			if (*s < '0' || *s > '9')
				return 0;
			n = n * 10 + (*s - '0');
			if (n > BW_MAX_WEBHOOK_CREDITS)
				return 0;
		}
	} else
		return 0;
	if (n < 1 || n > BW_MAX_WEBHOOK_CREDITS)
		return 0;
	*out = n;
	return 1;
}

/*
 * Reads the grant a metadata object names: user_id (1..
 * CREDIT_USER_ID_MAX-1 bytes) and credits. Returns 1 with ev->user_id and
 * ev->credits set, else 0 (ev untouched).
 */
static int
wh_metadata(struct json_object *md, struct wh_event *ev)
{
	struct json_object *v;
	const char	   *uid;
	int64_t		    n;

	uid = wh_str(md, "user_id");
	if (uid == NULL || !json_object_object_get_ex(md, "credits", &v))
		return 0;
	if (strlen(uid) >= CREDIT_USER_ID_MAX || !wh_credits(v, &n))
		return 0;
	ev->user_id = uid;
	ev->credits = n;
	return 1;
}

/*
 * Writes "<prefix><id>" into dst. Returns 1, or 0 when id is missing or
 * the anchor would be longer than BW_MAX_ANCHOR.
 */
static int
wh_anchor(char dst[WH_ANCHOR_MAX], const char *prefix, const char *id)
{
	int n;

	if (id == NULL)
		return 0;
	n = snprintf(dst, WH_ANCHOR_MAX, "%s%s", prefix, id);
	return n > 0 && n < WH_ANCHOR_MAX && n <= BW_MAX_ANCHOR;
}

/* "<prefix><id>:<amount>" into dst, as wh_anchor(). */
static int
wh_anchor_amount(char dst[WH_ANCHOR_MAX], const char *prefix, const char *id,
    int64_t amount)
{
	int n;

	if (id == NULL)
		return 0;
	n = snprintf(dst, WH_ANCHOR_MAX, "%s%s:%lld", prefix, id,
	    (long long)amount);
	return n > 0 && n < WH_ANCHOR_MAX && n <= BW_MAX_ANCHOR;
}

/*
 * Reads obj[key] as an amount of money in minor units: a JSON integer in
 * 0..BW_MAX_WEBHOOK_MONEY (not a string, not a fraction). Returns 1 with
 * *out set, else 0.
 */
static int
wh_money(struct json_object *obj, const char *key, int64_t *out)
{
	struct json_object *v;
	int64_t		    n;

	if (obj == NULL || !json_object_object_get_ex(obj, key, &v) ||
	    !json_object_is_type(v, json_type_int))
		return 0;
	errno = 0;
	n = json_object_get_int64(v);
	if (errno != 0 || n < 0 || n > BW_MAX_WEBHOOK_MONEY)
		return 0;
	*out = n;
	return 1;
}

/*
 * Reads obj[key] as an ISO 4217 code, three ASCII letters in either case
 * (Stripe's are lower case, Square's upper), into dst in upper case.
 * Returns 1, or 0 (dst untouched).
 */
static int
wh_currency(struct json_object *obj, const char *key, char dst[4])
{
	const char *s = wh_str(obj, key);
	char	    c[4];
	int	    i;

	if (s == NULL || strlen(s) != 3)
		return 0;
	for (i = 0; i < 3; i++) {
		c[i] = s[i];
		if (c[i] >= 'a' && c[i] <= 'z')
			c[i] = (char)(c[i] - 'a' + 'A');
		else if (c[i] < 'A' || c[i] > 'Z')
			return 0;
	}
	c[3] = '\0';
	memcpy(dst, c, sizeof(c));
	return 1;
}

/*
 * A grant's payment: sets e->amount and e->currency when amount is
 * positive and obj[curkey] a currency; else they stay 0 and "".
 */
static void
wh_paid(struct wh_event *e, int64_t amount, struct json_object *obj,
    const char *curkey)
{
	if (amount > 0 && wh_currency(obj, curkey, e->currency))
		e->amount = amount;
}

/* The first of obj[k1], obj[k2] (may be NULL) that is a positive amount,
 * else 0. */
static int64_t
wh_money2(struct json_object *obj, const char *k1, const char *k2)
{
	int64_t n = 0;

	if (wh_money(obj, k1, &n) && n > 0)
		return n;
	if (k2 != NULL && wh_money(obj, k2, &n) && n > 0)
		return n;
	return 0;
}

/* An event without effect keeps only its id and type. */
static void
wh_ignore(struct wh_event *e)
{
	const char *id = e->id, *type = e->type;

	memset(e, 0, sizeof(*e));
	e->id = id;
	e->type = type;
	e->action = WA_IGNORE;
}

/*
 * Stripe's charge.refunded: the Charge after its refunds. amount_refunded
 * is cumulative over the charge's refunds, so the refunded state, not one
 * refund, is what the anchor names; the refunds list is not read (not
 * expanded in events since API version 2022-11-15). Returns 1 with the
 * refund in *e, else 0.
 */
static int
wh_stripe_refund(struct json_object *obj, struct wh_event *e)
{
	const char *ch = wh_str(obj, "id");
	int64_t	    cum = 0;

	if (!wh_money(obj, "amount_refunded", &cum) || cum <= 0 ||
	    !wh_currency(obj, "currency", e->currency) ||
	    !wh_anchor(e->anchor, "stripe:", wh_str(obj, "payment_intent")) ||
	    !wh_anchor_amount(e->anchor2, "stripe:refund:", ch, cum))
		return 0;
	e->amount = cum;
	e->paid = wh_money2(obj, "amount_captured", "amount");
	e->source = ch;
	return 1;
}

enum bw_err
wh_parse_stripe(struct json_object *root, struct wh_event *ev)
{
	struct wh_event	    e;
	struct json_object *obj;
	const char	   *ps, *pi;

	memset(&e, 0, sizeof(e));
	e.id = wh_str(root, "id");
	e.type = wh_str(root, "type");
	if (!wh_id_ok(e.id))
		return BW_EINVAL;
	e.action = WA_IGNORE;
	obj = wh_obj(wh_obj(root, "data"), "object");
	if (e.type == NULL) {
		/* Recorded, nothing else. */
	} else if (strcmp(e.type, "checkout.session.completed") == 0 ||
	    strcmp(e.type, "checkout.session.async_payment_succeeded") == 0) {
		ps = wh_str(obj, "payment_status");
		pi = wh_str(obj, "payment_intent");
		if (pi == NULL)
			pi = wh_str(obj, "id");
		/* An async payment still pending grants nothing yet. */
		if ((ps == NULL || strcmp(ps, "paid") == 0) &&
		    wh_metadata(wh_obj(obj, "metadata"), &e) &&
		    wh_anchor(e.anchor, "stripe:", pi)) {
			e.action = WA_GRANT;
			wh_paid(&e, wh_money2(obj, "amount_total", NULL), obj,
			    "currency");
		}
	} else if (strcmp(e.type, "payment_intent.succeeded") == 0) {
		if (wh_metadata(wh_obj(obj, "metadata"), &e) &&
		    wh_anchor(e.anchor, "stripe:", wh_str(obj, "id"))) {
			e.action = WA_GRANT;
			wh_paid(&e, wh_money2(obj, "amount_received", "amount"),
			    obj, "currency");
		}
	} else if (strcmp(e.type, "charge.refunded") == 0) {
		if (wh_stripe_refund(obj, &e))
			e.action = WA_REFUND;
	}
	if (e.action == WA_IGNORE)
		wh_ignore(&e);
	*ev = e;
	return BW_OK;
}

enum bw_err
wh_parse_square(struct json_object *root, struct wh_event *ev)
{
	struct wh_event	    e;
	struct json_object *obj, *pay, *ref, *m;
	const char	   *st;
	int64_t		    amt = 0;

	memset(&e, 0, sizeof(e));
	e.id = wh_str(root, "event_id");
	e.type = wh_str(root, "type");
	if (!wh_id_ok(e.id))
		return BW_EINVAL;
	e.action = WA_IGNORE;
	obj = wh_obj(wh_obj(root, "data"), "object");
	if (e.type == NULL) {
		/* Recorded, nothing else. */
	} else if (strcmp(e.type, "payment.updated") == 0 ||
	    strcmp(e.type, "payment.created") == 0) {
		pay = wh_obj(obj, "payment");
		st = wh_str(pay, "status");
		if (st != NULL && strcmp(st, "COMPLETED") == 0 &&
		    wh_metadata(wh_obj(pay, "metadata"), &e) &&
		    wh_anchor(e.anchor, "square:", wh_str(pay, "id"))) {
			e.action = WA_GRANT;
			/* total_money: amount_money plus the tip. */
			m = wh_obj(pay, "total_money");
			if (!wh_money(m, "amount", &amt) || amt == 0)
				m = wh_obj(pay, "amount_money");
			if (wh_money(m, "amount", &amt))
				wh_paid(&e, amt, m, "currency");
		}
	} else if (strcmp(e.type, "refund.updated") == 0 ||
	    strcmp(e.type, "refund.created") == 0) {
		ref = wh_obj(obj, "refund");
		st = wh_str(ref, "status");
		m = wh_obj(ref, "amount_money");
		if (st != NULL && strcmp(st, "COMPLETED") == 0 &&
		    wh_money(m, "amount", &amt) && amt > 0 &&
		    wh_currency(m, "currency", e.currency) &&
		    wh_anchor(e.anchor, "square:", wh_str(ref, "payment_id")) &&
		    wh_anchor(e.anchor2, "square:refund:", wh_str(ref, "id"))) {
			e.amount = amt;
			e.source = wh_str(ref, "id");
			e.action = WA_REFUND;
		}
	}
	if (e.action == WA_IGNORE)
		wh_ignore(&e);
	*ev = e;
	return BW_OK;
}

/*
 * The provider's time of an SMS report in unix ms: the payload's
 * timestamp (RFC 3339 string or integer unix seconds), else signed_ts.
 * Returns 1 with *ms set, or 0 when malformed or out of range.
 */
static int
wh_sms_time(struct json_object *root, int64_t signed_ts, int64_t *ms)
{
	struct json_object *v = NULL;
	int64_t		    s = signed_ts, t;

	if (!json_object_object_get_ex(root, "timestamp", &v))
		v = NULL;
	if (v != NULL && json_object_is_type(v, json_type_string) &&
	    json_object_get_string_len(v) > 0) {
		if (jv_rfc3339_ms(json_object_get_string(v),
			(size_t)json_object_get_string_len(v), &t) != BW_OK ||
		    t < 0)
			return 0;
		*ms = t;
		return 1;
	}
	if (v != NULL && json_object_is_type(v, json_type_int))
		s = json_object_get_int64(v);
	if (s < 0 || s > INT64_MAX / 1000)
		return 0;
	*ms = s * 1000;
	return 1;
}

int
wh_sms_is_stop(const char *text)
{
	static const char *const kw[] = { "STOP", "STOPALL", "UNSUBSCRIBE",
		"CANCEL", "END", "QUIT" };
	char			 w[16];
	size_t			 a, b, i, n;

	if (text == NULL)
		return 0;
	n = strlen(text);
	if (n == 0 || n > 64)
		return 0;
	for (a = 0; a < n &&
	     (text[a] == ' ' || text[a] == '\t' || text[a] == '\n' ||
		 text[a] == '\r');
	     a++)
		;
	for (b = n; b > a &&
	     (text[b - 1] == ' ' || text[b - 1] == '\t' ||
		 text[b - 1] == '\n' || text[b - 1] == '\r');
	     b--)
		;
	if (b - a == 0 || b - a >= sizeof(w))
		return 0;
	for (i = a; i < b; i++)
		w[i - a] = (char)(text[i] >= 'a' && text[i] <= 'z'
			? text[i] - 'a' + 'A'
			: text[i]);
	w[b - a] = '\0';
	for (i = 0; i < sizeof(kw) / sizeof(kw[0]); i++)
		if (strcmp(w, kw[i]) == 0)
			return 1;
	return 0;
}

enum bw_err
wh_parse_sms(struct json_object *root, const char *hdr_id, int64_t signed_ts,
    struct wh_event *ev)
{
	struct wh_event	    e;
	struct json_object *data;
	int64_t		    ms;

	if (!wh_id_ok(hdr_id))
		return BW_EINVAL;
	memset(&e, 0, sizeof(e));
	e.id = hdr_id;
	e.type = wh_str(root, "type");
	e.action = WA_IGNORE;
	data = wh_obj(root, "data");
	if (e.type != NULL && strcmp(e.type, "message.inbound") == 0) {
		e.phone = wh_str(data, "from");
		if (e.phone != NULL && strlen(e.phone) <= 64 &&
		    wh_sms_is_stop(wh_str(data, "text")))
			e.action = WA_OPTOUT;
		*ev = e;
		return BW_OK;
	}
	e.message_id = wh_str(data, "message_id");
	e.status = wh_str(data, "status");
	if (e.message_id != NULL && e.status != NULL &&
	    strlen(e.message_id) <= WH_SMS_MESSAGE_ID_MAX &&
	    strlen(e.status) <= WH_SMS_STATUS_MAX &&
	    wh_sms_time(root, signed_ts, &ms)) {
		e.ts_ms = ms;
		e.action = WA_SMS;
	}
	*ev = e;
	return BW_OK;
}

/*
 * One LINE webhook event object. Returns 1 with *ev filled, or 0 when it
 * has no usable webhookEventId (skipped).
 */
static int
wh_line_event(struct json_object *o, struct wh_event *ev)
{
	struct json_object *msg;
	const char	   *mt;

	memset(ev, 0, sizeof(*ev));
	ev->id = wh_str(o, "webhookEventId");
	ev->type = wh_str(o, "type");
	if (!wh_id_ok(ev->id))
		return 0;
	ev->action = WA_IGNORE;
	if (ev->type == NULL || strcmp(ev->type, "message") != 0)
		return 1;
	msg = wh_obj(o, "message");
	mt = wh_str(msg, "type");
	if (mt == NULL || strcmp(mt, "text") != 0)
		return 1;
	ev->user_id = wh_str(wh_obj(o, "source"), "userId");
	ev->reply_token = wh_str(o, "replyToken");
	ev->text = wh_str(msg, "text");
	if (ev->user_id != NULL && ev->reply_token != NULL && ev->text != NULL)
		ev->action = WA_LINE;
	return 1;
}

enum bw_err
wh_parse_line(struct json_object *root, struct wh_event *ev, size_t max,
    size_t *n)
{
	struct json_object *arr;
	size_t		    i, len, got = 0;

	if (root == NULL || !json_object_object_get_ex(root, "events", &arr) ||
	    !json_object_is_type(arr, json_type_array))
		return BW_EINVAL;
	len = json_object_array_length(arr);
	if (len > max)
		return BW_ETOOBIG;
	for (i = 0; i < len; i++)
		if (wh_line_event(json_object_array_get_idx(arr, i), &ev[got]))
			got++;
	*n = got;
	return BW_OK;
}

enum bw_err
wh_parse(enum whsig_provider p, struct json_object *root, const char *hdr_id,
    int64_t signed_ts, struct wh_event *ev, size_t max, size_t *n)
{
	enum bw_err er;

	if (ev == NULL || max == 0 || n == NULL)
		return BW_EINVAL;
	switch (p) {
	case WS_STRIPE:
		er = wh_parse_stripe(root, ev);
		break;
	case WS_SQUARE:
		er = wh_parse_square(root, ev);
		break;
	case WS_STDWEBHOOKS:
		er = wh_parse_sms(root, hdr_id, signed_ts, ev);
		break;
	case WS_LINE:
		return wh_parse_line(root, ev, max, n);
	default:
		return BW_EINVAL;
	}
	if (er == BW_OK)
		*n = 1;
	return er;
}
