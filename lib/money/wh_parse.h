/* SPDX-License-Identifier: MIT */
/*
 * The payload parsers of verified webhook deliveries: Stripe event
 * objects, Square webhook events, LINE webhook bodies and the SMS
 * provider's Standard Webhooks delivery reports, each turned into a small
 * struct that names the event and the effect it asks for. Pure code: no
 * database, no logging, no allocation; lib/money/webhook.h applies them.
 */
#ifndef BW_WH_PARSE_H
#define BW_WH_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "core/err.h"
#include "money/whsig.h"

#define WH_ANCHOR_MAX	      256 /* "stripe:refund:ch_..." and its NUL */
#define WH_MAX_EVENTS	      100 /* LINE events in one delivery */
#define WH_SMS_MESSAGE_ID_MAX 255 /* an SMS message id, bytes */
#define WH_SMS_STATUS_MAX     64  /* an SMS delivery status, bytes */

/* The effect an event asks for. */
enum wh_action {
	WA_IGNORE, /* none: the event is only recorded */
	WA_GRANT,  /* grant credits to user_id, anchored by anchor */
	WA_REFUND, /* take back the grant of anchor, once per anchor2 */
	WA_SMS,	   /* set the delivery status of message_id */
	WA_LINE,   /* queue a chat turn for a LINE text message */
	WA_OPTOUT, /* an inbound SMS opt-out ("STOP") from phone */
	WA__MAX
};

/*
 * One event of a delivery. The strings point into the JSON tree the
 * parser was given (or, for the SMS event id, at its hdr_id argument):
 * keep both until the event is no longer used. The anchors and the
 * currency are copies.
 */
struct wh_event {
	const char    *id;   /* provider event id, 1..WEBHOOK_EVENT_ID_MAX */
	const char    *type; /* provider event type, or NULL */
	enum wh_action action;
	const char    *user_id; /* WA_GRANT; WA_LINE: the LINE source.userId */
	int64_t	       credits; /* WA_GRANT: 1..BW_MAX_WEBHOOK_CREDITS */
	char	       anchor[WH_ANCHOR_MAX]; /* grant anchor ("stripe:pi_1") */
	char	       anchor2[WH_ANCHOR_MAX]; /* WA_REFUND: refund anchor */
	const char    *message_id;	       /* WA_SMS */
	const char    *status;		       /* WA_SMS */
	int64_t	       ts_ms;	    /* WA_SMS: provider time, unix ms */
	const char    *phone;	    /* WA_OPTOUT: the sender, as given */
	const char    *reply_token; /* WA_LINE */
	const char    *text;	    /* WA_LINE */
	/*
	 * Money, in minor units (cents) of currency. WA_GRANT: what the
	 * payment paid, 0 when the event does not say. WA_REFUND: what
	 * source has refunded to date, 1..BW_MAX_WEBHOOK_MONEY.
	 */
	int64_t	    amount;
	int64_t	    paid; /* WA_REFUND: the payment's amount when the event
			     states it (Stripe's charge), else 0 */
	char	    currency[4]; /* ISO 4217, upper case; "" with amount 0 */
	const char *source; /* WA_REFUND: what amount counts over: the charge
			       id (Stripe), the refund id (Square) */
};

/*
 * A Stripe event object (https://docs.stripe.com/api/events/object): id,
 * type, data.object. checkout.session.completed and
 * checkout.session.async_payment_succeeded (when payment_status is "paid"
 * or absent) and payment_intent.succeeded grant what data.object.metadata
 * names (user_id, credits), anchored "stripe:<PaymentIntent id>" so that
 * both events of one payment grant once; the amount paid is the session's
 * amount_total or the PaymentIntent's amount_received (else amount), with
 * currency. charge.refunded (the Charge after its refunds) refunds
 * "stripe:<payment_intent>": amount is the charge's amount_refunded,
 * cumulative over its refunds, source the charge id, paid its
 * amount_captured (else amount), and the refund anchor
 * "stripe:refund:<charge id>:<amount_refunded>" names that refunded state,
 * so that each further refund has an anchor of its own and a replay the
 * same one. A refund without a positive integer amount_refunded or a
 * currency is WA_IGNORE. Returns BW_OK with *ev filled (WA_IGNORE for
 * anything else, or for a grant or refund lacking what it needs),
 * BW_EINVAL when the event has no usable id (*ev untouched).
 */
enum bw_err wh_parse_stripe(struct json_object *root, struct wh_event *ev);
/*
 * A Square webhook event (https://developer.squareup.com/docs/webhooks):
 * event_id, type, data.object. payment.created/updated with payment status
 * COMPLETED grants data.object.payment.metadata, anchored
 * "square:<payment id>", paid total_money (else amount_money);
 * refund.created/updated with refund status COMPLETED refunds
 * "square:<payment_id>" by its amount_money (positive, with a currency),
 * anchored "square:refund:<refund id>", the refund its own source.
 * Returns as wh_parse_stripe().
 */
enum bw_err wh_parse_square(struct json_object *root, struct wh_event *ev);
/*
 * A Standard Webhooks SMS delivery report
 * {"type","timestamp","data":{"message_id","status"}}: the event id is the
 * signed webhook-id header hdr_id. The provider's event time is the
 * payload's timestamp (RFC 3339, or an integer of unix seconds), else
 * signed_ts (the signed webhook-timestamp, unix seconds). A report without
 * message_id or status, with either over its bound, or with a malformed or
 * negative time is WA_IGNORE. An inbound message
 * {"type":"message.inbound","data":{"from","text"}} whose text is an
 * opt-out keyword (STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT; case and
 * surrounding blanks ignored) is WA_OPTOUT with phone = from; another
 * inbound text is WA_IGNORE. Returns BW_OK with *ev filled, BW_EINVAL
 * when hdr_id is NULL, empty or longer than WEBHOOK_EVENT_ID_MAX.
 */
enum bw_err wh_parse_sms(struct json_object *root, const char *hdr_id,
    int64_t signed_ts, struct wh_event *ev);
/*
 * A LINE webhook body (Messaging API, "Receive messages (webhook)"):
 * {"destination","events":[...]}. Each event with a webhookEventId
 * (1..WEBHOOK_EVENT_ID_MAX bytes) becomes one entry of ev[]; one without
 * cannot be deduplicated and is skipped. A "message" event of a "text"
 * message with a replyToken and a source.userId is WA_LINE. Returns BW_OK
 * with ev[0..*n) filled (*n may be 0), BW_EINVAL when events is not an
 * array, BW_ETOOBIG when it has more than max entries (ev and *n
 * untouched on failure).
 */
enum bw_err wh_parse_line(struct json_object *root, struct wh_event *ev,
    size_t max, size_t *n);
/*
 * The parser of provider p: one event for Stripe, Square and SMS (hdr_id
 * and signed_ts are read for SMS only), up to max for LINE. Returns what
 * that parser returns, with *n = 1 for a single event; BW_EINVAL for a
 * provider without a parser (Twilio) or max 0.
 */
enum bw_err
wh_parse(enum whsig_provider p, struct json_object *root, const char *hdr_id,
    int64_t signed_ts, struct wh_event *ev, size_t max, size_t *n);
/* 1 if text (1..64 bytes) is an SMS opt-out keyword; see wh_parse_sms(). */
int wh_sms_is_stop(const char *text);
/* "ignore", "grant", "refund", "sms", "line", "optout"; "?" when out of
 * range. */
const char *wh_action_name(enum wh_action);

#endif
