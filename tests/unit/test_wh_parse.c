/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of lib/money/wh_parse: Stripe event objects, Square webhook
 * events, LINE webhook bodies and the SMS provider's Standard Webhooks
 * delivery reports in their official shapes, then malformed and
 * out-of-bound inputs; and webhook_delivery_outcome(), the pure summary of
 * lib/money/webhook.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "core/jv.h"
#include "core/limits.h"
#include "money/webhook.h"
#include "money/wh_parse.h"

#define MID "SM3f0d9b2a7c4e4b1d8a6f5e2c1b0a9d8e"

/* The money fields at the end of struct want are left out (zero) by the
 * cases of events without money. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

/* What one parsed event must hold; NULL strings must be NULL. */
struct want {
	const char    *id;
	const char    *type;
	enum wh_action action;
	const char    *user_id;
	int64_t	       credits;
	const char    *anchor;
	const char    *anchor2;
	const char    *message_id;
	const char    *status;
	int64_t	       ts_ms;
	const char    *reply_token;
	const char    *text;
	/* WA_GRANT: amount, currency; WA_REFUND: also paid and source. */
	int64_t	    amount;
	int64_t	    paid;
	const char *currency; /* NULL: "" */
	const char *source;
};

struct pcase {
	const char	   *name;
	enum whsig_provider p;
	const char	   *body;
	const char	   *hdr_id; /* SMS: the webhook-id header */
	enum bw_err	    er;
	struct want	    w; /* ev[0] when er is BW_OK */
};

#define STRIPE_EVT(type, obj)                                           \
	"{\"id\":\"evt_1PcTbJ2eZvKYlo2C1gq1Xyz\",\"object\":\"event\"," \
	"\"api_version\":\"2024-06-20\",\"created\":1721145600,"        \
	"\"data\":{\"object\":" obj "},\"livemode\":false,"             \
	"\"pending_webhooks\":1,\"request\":{\"id\":null,"              \
	"\"idempotency_key\":null},\"type\":\"" type "\"}"
#define CS(extra)                                                       \
	"{\"id\":\"cs_test_a1b2c3\",\"object\":\"checkout.session\","   \
	"\"amount_total\":2000,\"currency\":\"usd\",\"customer\":null," \
	"\"mode\":\"payment\",\"status\":\"complete\"," extra "}"
#define MD(uid, cr) "\"metadata\":{\"user_id\":" uid ",\"credits\":" cr "}"
#define EVT	    "evt_1PcTbJ2eZvKYlo2C1gq1Xyz"
#define PI	    "pi_3PcTbJ2eZvKYlo2C0abc"
#define CHID	    "ch_3PcTbJ2eZvKYlo2C0xyz"
/* A Charge of 20.00 USD after refunds of `refunded` cents in all. */
#define CH(refunded, full, extra)                                     \
	"{\"id\":\"" CHID "\",\"object\":\"charge\",\"amount\":2000," \
	"\"amount_captured\":2000,\"amount_refunded\":" refunded ","  \
	"\"captured\":true,\"currency\":\"usd\",\"paid\":true,"       \
	"\"payment_intent\":\"" PI "\",\"refunded\":" full ","        \
	"\"status\":\"succeeded\"" extra "}"
/* The charge's refunds list (expanded), ids newest first. */
#define CH_REFUNDS(ids)                                               \
	"\"refunds\":{\"object\":\"list\",\"data\":[{\"id\":" ids "," \
	"\"object\":\"refund\",\"status\":\"succeeded\"}],"           \
	"\"has_more\":false,\"url\":\"/v1/charges/" CHID "/refunds\"}"

#define SQ_EVT(type, obj)                                                      \
	"{\"merchant_id\":\"6SSW7HV8K2ST5\",\"type\":\"" type "\","            \
	"\"event_id\":\"6a8f5f28-54a1-4eb0-a98a-3111513fd4fc\","               \
	"\"created_at\":\"2020-11-22T21:16:51.198Z\",\"data\":{\"type\":"      \
	"\"payment\",\"id\":\"hYy9pRFVxpDsO1FB05SunFWUe9JZY\",\"object\":" obj \
	"}}"
#define SQ_ID  "6a8f5f28-54a1-4eb0-a98a-3111513fd4fc"
#define SQ_PAY "hYy9pRFVxpDsO1FB05SunFWUe9JZY"
#define SQ_PAYMENT(status, extra)                                           \
	"{\"payment\":{\"id\":\"" SQ_PAY "\",\"amount_money\":{\"amount\":" \
	"100,\"currency\":\"USD\"},\"status\":\"" status "\","              \
	"\"source_type\":\"CARD\",\"version\":4" extra "}}"
#define SQ_REF "hYy9pRFVxpDsO1FB05SunFWUe9JZY_KkfbaQcNUbtyn4MkUxAD96ndFNaYpo"
/* A refund.created / refund.updated event of refund id with money. */
#define SQ_REFUND_EVT(type, id, status, money)                              \
	"{\"merchant_id\":\"6SSW7HV8K2ST5\",\"type\":\"" type "\","         \
	"\"event_id\":\"" SQ_ID "\",\"created_at\":"                        \
	"\"2020-11-22T21:16:51.198Z\",\"data\":{\"type\":\"refund\","       \
	"\"id\":\"" id "\",\"object\":{\"refund\":{\"id\":\"" id "\","      \
	"\"status\":\"" status "\"" money ",\"payment_id\":\"" SQ_PAY "\"," \
	"\"location_id\":\"NAQ1FHV6ZJ8YV\",\"order_id\":"                   \
	"\"haOyDuHiqtAXMk3eJyjnFLdyQIXZY\",\"created_at\":"                 \
	"\"2020-11-22T21:16:51.086Z\",\"updated_at\":"                      \
	"\"2020-11-22T21:16:51.198Z\",\"version\":10}}}}"
#define SQ_MONEY(amt, cur) \
	",\"amount_money\":{\"amount\":" amt ",\"currency\":\"" cur "\"}"

#define SMS(ts, data) "{\"type\":\"message.status\"" ts ",\"data\":" data "}"
#define SMS_DATA(st)                                                \
	"{\"message_id\":\"" MID "\",\"status\":\"" st "\",\"to\":" \
	"\"+15005550006\"}"
#define SIGNED_TS INT64_C(1714557000)

static const struct pcase cases[] = {
	/* Stripe: grants, anchored by the PaymentIntent id. */
	{ "stripe checkout paid", WS_STRIPE,
	    STRIPE_EVT("checkout.session.completed",
		CS(MD("\"u_42\"", "\"500\"") ",\"payment_intent\":\"" PI "\","
					     "\"payment_status\":\"paid\"")),
	    NULL, BW_OK,
	    { EVT, "checkout.session.completed", WA_GRANT, "u_42", 500,
		"stripe:" PI, NULL, NULL, NULL, 0, NULL, NULL, .amount = 2000,
		.currency = "USD" } },
	{ "stripe checkout unpaid (async pending)", WS_STRIPE,
	    STRIPE_EVT("checkout.session.completed",
		CS(MD("\"u_42\"", "\"500\"") ",\"payment_intent\":\"" PI "\","
					     "\"payment_status\":"
					     "\"unpaid\"")),
	    NULL, BW_OK,
	    { EVT, "checkout.session.completed", WA_IGNORE, NULL, 0, NULL, NULL,
		NULL, NULL, 0, NULL, NULL } },
	{ "stripe async succeeded, session id anchor", WS_STRIPE,
	    STRIPE_EVT("checkout.session.async_payment_succeeded",
		CS(MD("\"u_7\"", "7"))),
	    NULL, BW_OK,
	    { EVT, "checkout.session.async_payment_succeeded", WA_GRANT, "u_7",
		7, "stripe:cs_test_a1b2c3", NULL, NULL, NULL, 0, NULL, NULL,
		.amount = 2000, .currency = "USD" } },
	{ "stripe payment_intent.succeeded", WS_STRIPE,
	    STRIPE_EVT("payment_intent.succeeded",
		"{\"id\":\"" PI "\",\"object\":\"payment_intent\",\"amount\":"
		"2000," MD("\"u_42\"", "\"1000000000\"") "}"),
	    NULL, BW_OK,
	    { EVT, "payment_intent.succeeded", WA_GRANT, "u_42", 1000000000,
		"stripe:" PI, NULL, NULL, NULL, 0, NULL, NULL, .amount = 0,
		.currency = NULL } },
	{ "stripe payment_intent.succeeded, partly captured", WS_STRIPE,
	    STRIPE_EVT("payment_intent.succeeded",
		"{\"id\":\"" PI "\",\"object\":\"payment_intent\",\"amount\":"
		"2000,\"amount_received\":1800,\"currency\":\"eur\","
		"\"status\":\"succeeded\"," MD("\"u_42\"", "\"90\"") "}"),
	    NULL, BW_OK,
	    { EVT, "payment_intent.succeeded", WA_GRANT, "u_42", 90,
		"stripe:" PI, NULL, NULL, NULL, 0, NULL, NULL, .amount = 1800,
		.currency = "EUR" } },
	{ "stripe payment_intent.succeeded, amount a string", WS_STRIPE,
	    STRIPE_EVT("payment_intent.succeeded",
		"{\"id\":\"" PI
		"\",\"amount\":\"2000\",\"currency\":\"usd\"," MD("\"u_42\"",
		    "\"90\"") "}"),
	    NULL, BW_OK,
	    { EVT, "payment_intent.succeeded", WA_GRANT, "u_42", 90,
		"stripe:" PI, NULL, NULL, NULL, 0, NULL, NULL, .amount = 0,
		.currency = NULL } },
	{ "stripe charge.refunded in full", WS_STRIPE,
	    STRIPE_EVT("charge.refunded", CH("2000", "true", "")), NULL, BW_OK,
	    { EVT, "charge.refunded", WA_REFUND, NULL, 0, "stripe:" PI,
		"stripe:refund:" CHID ":2000", NULL, NULL, 0, NULL, NULL,
		.amount = 2000, .paid = 2000, .currency = "USD",
		.source = CHID } },
	/* Partial refunds: amount_refunded is cumulative over the charge's
	 * refunds, so each refunded state has an anchor of its own. */
	{ "stripe charge.refunded 1.00 of 20.00", WS_STRIPE,
	    STRIPE_EVT("charge.refunded",
		CH("100", "false", "," CH_REFUNDS("\"re_1\""))),
	    NULL, BW_OK,
	    { EVT, "charge.refunded", WA_REFUND, NULL, 0, "stripe:" PI,
		"stripe:refund:" CHID ":100", NULL, NULL, 0, NULL, NULL,
		.amount = 100, .paid = 2000, .currency = "USD",
		.source = CHID } },
	{ "stripe charge.refunded 3.00 (cumulative) of 20.00", WS_STRIPE,
	    STRIPE_EVT("charge.refunded",
		CH("300", "false",
		    "," CH_REFUNDS("\"re_2\"},{\"id\":\"re_1\""))),
	    NULL, BW_OK,
	    { EVT, "charge.refunded", WA_REFUND, NULL, 0, "stripe:" PI,
		"stripe:refund:" CHID ":300", NULL, NULL, 0, NULL, NULL,
		.amount = 300, .paid = 2000, .currency = "USD",
		.source = CHID } },
	{ "stripe charge.refunded without amount_refunded", WS_STRIPE,
	    STRIPE_EVT("charge.refunded",
		"{\"id\":\"" CHID "\",\"object\":\"charge\",\"amount\":"
		"2000,\"currency\":\"usd\",\"payment_intent\":\"" PI "\","
		"\"refunded\":true}"),
	    NULL, BW_OK,
	    { EVT, "charge.refunded", WA_IGNORE, NULL, 0, NULL, NULL, NULL,
		NULL, 0, NULL, NULL } },
	{ "stripe charge.refunded amount_refunded 0", WS_STRIPE,
	    STRIPE_EVT("charge.refunded", CH("0", "false", "")), NULL, BW_OK,
	    { EVT, "charge.refunded", WA_IGNORE, NULL, 0, NULL, NULL, NULL,
		NULL, 0, NULL, NULL } },
	{ "stripe charge.refunded amount_refunded negative", WS_STRIPE,
	    STRIPE_EVT("charge.refunded", CH("-100", "false", "")), NULL, BW_OK,
	    { EVT, "charge.refunded", WA_IGNORE, NULL, 0, NULL, NULL, NULL,
		NULL, 0, NULL, NULL } },
	{ "stripe charge.refunded amount_refunded a string", WS_STRIPE,
	    STRIPE_EVT("charge.refunded", CH("\"100\"", "false", "")), NULL,
	    BW_OK,
	    { EVT, "charge.refunded", WA_IGNORE, NULL, 0, NULL, NULL, NULL,
		NULL, 0, NULL, NULL } },
	{ "stripe charge.refunded without currency", WS_STRIPE,
	    STRIPE_EVT("charge.refunded",
		"{\"id\":\"" CHID "\",\"object\":\"charge\",\"amount\":"
		"2000,\"amount_refunded\":100,\"payment_intent\":\"" PI "\"}"),
	    NULL, BW_OK,
	    { EVT, "charge.refunded", WA_IGNORE, NULL, 0, NULL, NULL, NULL,
		NULL, 0, NULL, NULL } },
	{ "stripe refund without its charge id", WS_STRIPE,
	    STRIPE_EVT("charge.refunded",
		"{\"object\":\"charge\",\"payment_intent\":\"" PI "\"}"),
	    NULL, BW_OK,
	    { EVT, "charge.refunded", WA_IGNORE, NULL, 0, NULL, NULL, NULL,
		NULL, 0, NULL, NULL } },
	{ "stripe other type", WS_STRIPE,
	    STRIPE_EVT("customer.created", "{\"id\":\"cus_1\"}"), NULL, BW_OK,
	    { EVT, "customer.created", WA_IGNORE, NULL, 0, NULL, NULL, NULL,
		NULL, 0, NULL, NULL } },
	{ "stripe no type", WS_STRIPE, "{\"id\":\"evt_1\"}", NULL, BW_OK,
	    { "evt_1", NULL, WA_IGNORE, NULL, 0, NULL, NULL, NULL, NULL, 0,
		NULL, NULL } },
	{ "stripe data.object not an object", WS_STRIPE,
	    "{\"id\":\"evt_1\",\"type\":\"payment_intent.succeeded\","
	    "\"data\":{\"object\":[]}}",
	    NULL, BW_OK,
	    { "evt_1", "payment_intent.succeeded", WA_IGNORE, NULL, 0, NULL,
		NULL, NULL, NULL, 0, NULL, NULL } },
	{ "stripe credits 0", WS_STRIPE,
	    STRIPE_EVT("payment_intent.succeeded",
		"{\"id\":\"" PI "\"," MD("\"u\"", "\"0\"") "}"),
	    NULL, BW_OK,
	    { EVT, "payment_intent.succeeded", WA_IGNORE, NULL, 0, NULL, NULL,
		NULL, NULL, 0, NULL, NULL } },
	{ "stripe credits over the bound", WS_STRIPE,
	    STRIPE_EVT("payment_intent.succeeded",
		"{\"id\":\"" PI "\"," MD("\"u\"", "\"1000000001\"") "}"),
	    NULL, BW_OK,
	    { EVT, "payment_intent.succeeded", WA_IGNORE, NULL, 0, NULL, NULL,
		NULL, NULL, 0, NULL, NULL } },
	{ "stripe credits 2^64 digits", WS_STRIPE,
	    STRIPE_EVT("payment_intent.succeeded",
		"{\"id\":\"" PI
		"\"," MD("\"u\"", "\"18446744073709551617\"") "}"),
	    NULL, BW_OK,
	    { EVT, "payment_intent.succeeded", WA_IGNORE, NULL, 0, NULL, NULL,
		NULL, NULL, 0, NULL, NULL } },
	{ "stripe credits signed", WS_STRIPE,
	    STRIPE_EVT("payment_intent.succeeded",
		"{\"id\":\"" PI "\"," MD("\"u\"", "\"+5\"") "}"),
	    NULL, BW_OK,
	    { EVT, "payment_intent.succeeded", WA_IGNORE, NULL, 0, NULL, NULL,
		NULL, NULL, 0, NULL, NULL } },
	{ "stripe credits trailing bytes", WS_STRIPE,
	    STRIPE_EVT("payment_intent.succeeded",
		"{\"id\":\"" PI "\"," MD("\"u\"", "\"12a\"") "}"),
	    NULL, BW_OK,
	    { EVT, "payment_intent.succeeded", WA_IGNORE, NULL, 0, NULL, NULL,
		NULL, NULL, 0, NULL, NULL } },
	{ "stripe credits a decimal string", WS_STRIPE,
	    STRIPE_EVT("payment_intent.succeeded",
		"{\"id\":\"" PI "\"," MD("\"u\"", "\"1.5\"") "}"),
	    NULL, BW_OK,
	    { EVT, "payment_intent.succeeded", WA_IGNORE, NULL, 0, NULL, NULL,
		NULL, NULL, 0, NULL, NULL } },
	{ "stripe credits an exponent string", WS_STRIPE,
	    STRIPE_EVT("payment_intent.succeeded",
		"{\"id\":\"" PI "\"," MD("\"u\"", "\"1e3\"") "}"),
	    NULL, BW_OK,
	    { EVT, "payment_intent.succeeded", WA_IGNORE, NULL, 0, NULL, NULL,
		NULL, NULL, 0, NULL, NULL } },
	{ "stripe credits a fraction", WS_STRIPE,
	    STRIPE_EVT("payment_intent.succeeded",
		"{\"id\":\"" PI "\"," MD("\"u\"", "1.5") "}"),
	    NULL, BW_OK,
	    { EVT, "payment_intent.succeeded", WA_IGNORE, NULL, 0, NULL, NULL,
		NULL, NULL, 0, NULL, NULL } },
	{ "stripe credits negative integer", WS_STRIPE,
	    STRIPE_EVT("payment_intent.succeeded",
		"{\"id\":\"" PI "\"," MD("\"u\"", "-3") "}"),
	    NULL, BW_OK,
	    { EVT, "payment_intent.succeeded", WA_IGNORE, NULL, 0, NULL, NULL,
		NULL, NULL, 0, NULL, NULL } },
	{ "stripe user_id empty", WS_STRIPE,
	    STRIPE_EVT("payment_intent.succeeded",
		"{\"id\":\"" PI "\"," MD("\"\"", "5") "}"),
	    NULL, BW_OK,
	    { EVT, "payment_intent.succeeded", WA_IGNORE, NULL, 0, NULL, NULL,
		NULL, NULL, 0, NULL, NULL } },
	{ "stripe no id", WS_STRIPE,
	    "{\"object\":\"event\",\"type\":\"charge.refunded\"}", NULL,
	    BW_EINVAL, { NULL } },
	{ "stripe empty id", WS_STRIPE, "{\"id\":\"\",\"type\":\"x\"}", NULL,
	    BW_EINVAL, { NULL } },
	{ "stripe id not a string", WS_STRIPE, "{\"id\":12,\"type\":\"x\"}",
	    NULL, BW_EINVAL, { NULL } },

	/* Square. */
	{ "square payment.updated COMPLETED", WS_SQUARE,
	    SQ_EVT("payment.updated",
		SQ_PAYMENT("COMPLETED", "," MD("\"u_9\"", "\"25\""))),
	    NULL, BW_OK,
	    { SQ_ID, "payment.updated", WA_GRANT, "u_9", 25, "square:" SQ_PAY,
		NULL, NULL, NULL, 0, NULL, NULL, .amount = 100,
		.currency = "USD" } },
	{ "square payment.updated COMPLETED with a tip", WS_SQUARE,
	    SQ_EVT("payment.updated",
		SQ_PAYMENT("COMPLETED",
		    ",\"total_money\":{\"amount\":120,\"currency\":"
		    "\"USD\"}," MD("\"u_9\"", "\"25\""))),
	    NULL, BW_OK,
	    { SQ_ID, "payment.updated", WA_GRANT, "u_9", 25, "square:" SQ_PAY,
		NULL, NULL, NULL, 0, NULL, NULL, .amount = 120,
		.currency = "USD" } },
	{ "square payment.created APPROVED", WS_SQUARE,
	    SQ_EVT("payment.created",
		SQ_PAYMENT("APPROVED", "," MD("\"u_9\"", "\"25\""))),
	    NULL, BW_OK,
	    { SQ_ID, "payment.created", WA_IGNORE, NULL, 0, NULL, NULL, NULL,
		NULL, 0, NULL, NULL } },
	{ "square payment without metadata", WS_SQUARE,
	    SQ_EVT("payment.updated", SQ_PAYMENT("COMPLETED", "")), NULL, BW_OK,
	    { SQ_ID, "payment.updated", WA_IGNORE, NULL, 0, NULL, NULL, NULL,
		NULL, 0, NULL, NULL } },
	{ "square refund.updated COMPLETED", WS_SQUARE,
	    SQ_REFUND_EVT("refund.updated", SQ_REF, "COMPLETED",
		SQ_MONEY("100", "USD")),
	    NULL, BW_OK,
	    { SQ_ID, "refund.updated", WA_REFUND, NULL, 0, "square:" SQ_PAY,
		"square:refund:" SQ_REF, NULL, NULL, 0, NULL, NULL,
		.amount = 100, .currency = "USD", .source = SQ_REF } },
	{ "square refund.created COMPLETED, another refund", WS_SQUARE,
	    SQ_REFUND_EVT("refund.created", SQ_PAY "_r2", "COMPLETED",
		SQ_MONEY("200", "USD")),
	    NULL, BW_OK,
	    { SQ_ID, "refund.created", WA_REFUND, NULL, 0, "square:" SQ_PAY,
		"square:refund:" SQ_PAY "_r2", NULL, NULL, 0, NULL, NULL,
		.amount = 200, .currency = "USD", .source = SQ_PAY "_r2" } },
	{ "square refund.created PENDING", WS_SQUARE,
	    SQ_REFUND_EVT("refund.created", SQ_REF, "PENDING",
		SQ_MONEY("100", "USD")),
	    NULL, BW_OK,
	    { SQ_ID, "refund.created", WA_IGNORE, NULL, 0, NULL, NULL, NULL,
		NULL, 0, NULL, NULL } },
	{ "square refund.updated FAILED", WS_SQUARE,
	    SQ_REFUND_EVT("refund.updated", SQ_REF, "FAILED",
		SQ_MONEY("100", "USD")),
	    NULL, BW_OK,
	    { SQ_ID, "refund.updated", WA_IGNORE, NULL, 0, NULL, NULL, NULL,
		NULL, 0, NULL, NULL } },
	{ "square refund without amount_money", WS_SQUARE,
	    SQ_REFUND_EVT("refund.updated", SQ_REF, "COMPLETED", ""), NULL,
	    BW_OK,
	    { SQ_ID, "refund.updated", WA_IGNORE, NULL, 0, NULL, NULL, NULL,
		NULL, 0, NULL, NULL } },
	{ "square refund of 0", WS_SQUARE,
	    SQ_REFUND_EVT("refund.updated", SQ_REF, "COMPLETED",
		SQ_MONEY("0", "USD")),
	    NULL, BW_OK,
	    { SQ_ID, "refund.updated", WA_IGNORE, NULL, 0, NULL, NULL, NULL,
		NULL, 0, NULL, NULL } },
	{ "square refund with a malformed currency", WS_SQUARE,
	    SQ_REFUND_EVT("refund.updated", SQ_REF, "COMPLETED",
		SQ_MONEY("100", "US")),
	    NULL, BW_OK,
	    { SQ_ID, "refund.updated", WA_IGNORE, NULL, 0, NULL, NULL, NULL,
		NULL, 0, NULL, NULL } },
	{ "square no event_id (a Stripe-shaped id is not it)", WS_SQUARE,
	    "{\"id\":\"x\",\"type\":\"payment.updated\"}", NULL, BW_EINVAL,
	    { NULL } },

	/* SMS delivery reports (Standard Webhooks). */
	{ "sms RFC 3339 time", WS_STDWEBHOOKS,
	    SMS(",\"timestamp\":\"2024-05-01T10:00:05.250Z\"",
		SMS_DATA("delivered")),
	    "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", BW_OK,
	    { "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", "message.status", WA_SMS, NULL,
		0, NULL, NULL, MID, "delivered", INT64_C(1714557605250), NULL,
		NULL } },
	{ "sms offset time", WS_STDWEBHOOKS,
	    SMS(",\"timestamp\":\"2024-05-01T12:00:00+01:00\"",
		SMS_DATA("failed")),
	    "msg_1", BW_OK,
	    { "msg_1", "message.status", WA_SMS, NULL, 0, NULL, NULL, MID,
		"failed", INT64_C(1714561200000), NULL, NULL } },
	{ "sms unix seconds", WS_STDWEBHOOKS,
	    SMS(",\"timestamp\":1714557601", SMS_DATA("sent")), "msg_1", BW_OK,
	    { "msg_1", "message.status", WA_SMS, NULL, 0, NULL, NULL, MID,
		"sent", INT64_C(1714557601000), NULL, NULL } },
	{ "sms no time: the signed header's", WS_STDWEBHOOKS,
	    SMS("", SMS_DATA("queued")), "msg_1", BW_OK,
	    { "msg_1", "message.status", WA_SMS, NULL, 0, NULL, NULL, MID,
		"queued", SIGNED_TS * 1000, NULL, NULL } },
	{ "sms malformed time", WS_STDWEBHOOKS,
	    SMS(",\"timestamp\":\"2024-05-01 10:00:00\"", SMS_DATA("sent")),
	    "msg_1", BW_OK,
	    { "msg_1", "message.status", WA_IGNORE, NULL, 0, NULL, NULL, MID,
		"sent", 0, NULL, NULL } },
	{ "sms time before 1970", WS_STDWEBHOOKS,
	    SMS(",\"timestamp\":\"1969-12-31T23:59:59Z\"", SMS_DATA("sent")),
	    "msg_1", BW_OK,
	    { "msg_1", "message.status", WA_IGNORE, NULL, 0, NULL, NULL, MID,
		"sent", 0, NULL, NULL } },
	{ "sms negative seconds", WS_STDWEBHOOKS,
	    SMS(",\"timestamp\":-1", SMS_DATA("sent")), "msg_1", BW_OK,
	    { "msg_1", "message.status", WA_IGNORE, NULL, 0, NULL, NULL, MID,
		"sent", 0, NULL, NULL } },
	{ "sms seconds past int64 ms", WS_STDWEBHOOKS,
	    SMS(",\"timestamp\":9223372036854775807", SMS_DATA("sent")),
	    "msg_1", BW_OK,
	    { "msg_1", "message.status", WA_IGNORE, NULL, 0, NULL, NULL, MID,
		"sent", 0, NULL, NULL } },
	{ "sms without data", WS_STDWEBHOOKS, "{\"type\":\"message.status\"}",
	    "msg_1", BW_OK,
	    { "msg_1", "message.status", WA_IGNORE, NULL, 0, NULL, NULL, NULL,
		NULL, 0, NULL, NULL } },
	{ "sms without status", WS_STDWEBHOOKS,
	    SMS("", "{\"message_id\":\"" MID "\"}"), "msg_1", BW_OK,
	    { "msg_1", "message.status", WA_IGNORE, NULL, 0, NULL, NULL, MID,
		NULL, 0, NULL, NULL } },
	{ "sms no webhook-id", WS_STDWEBHOOKS, SMS("", SMS_DATA("sent")), NULL,
	    BW_EINVAL, { NULL } },
	{ "sms empty webhook-id", WS_STDWEBHOOKS, SMS("", SMS_DATA("sent")), "",
	    BW_EINVAL, { NULL } },

	/* LINE: one text message (Messaging API webhook body). */
	{ "line text message", WS_LINE,
	    "{\"destination\":\"U0123456789abcdef0123456789abcdef\","
	    "\"events\":[{\"type\":\"message\",\"message\":{\"type\":\"text\","
	    "\"id\":\"468789577898262530\",\"quoteToken\":\"q3Plxr4AgKd\","
	    "\"text\":\"Hello, world\"},\"webhookEventId\":"
	    "\"01H810YECXQQZ37VAXPF6H9E6T\",\"deliveryContext\":"
	    "{\"isRedelivery\":false},\"timestamp\":1692251666727,\"source\":"
	    "{\"type\":\"user\",\"userId\":\"U4af4980629ed4bd4b5a6e2d8b6b1f1\"}"
	    ","
	    "\"replyToken\":\"38ef843bde154d9b91c21320ffd17a0f\","
	    "\"mode\":\"active\"}]}",
	    NULL, BW_OK,
	    { "01H810YECXQQZ37VAXPF6H9E6T", "message", WA_LINE,
		"U4af4980629ed4bd4b5a6e2d8b6b1f1", 0, NULL, NULL, NULL, NULL, 0,
		"38ef843bde154d9b91c21320ffd17a0f", "Hello, world" } },
	{ "line events not an array", WS_LINE,
	    "{\"destination\":\"U1\",\"events\":{}}", NULL, BW_EINVAL,
	    { NULL } },
	{ "line no events", WS_LINE, "{\"destination\":\"U1\"}", NULL,
	    BW_EINVAL, { NULL } },

	/* No parser. */
	{ "twilio", WS_TWILIO, "{\"id\":\"x\"}", NULL, BW_EINVAL, { NULL } },
};

/*
 * Mismatches of the event checks: each is printed, and test_cases fails at
 * its end, so that one run lists every case that differs.
 */
static int mismatches;
#define mismatch(...)                     \
	do {                              \
		print_error(__VA_ARGS__); \
		print_error("\n");        \
		mismatches++;             \
	} while (0)

/* s and w both NULL, or equal strings. */
static void
check_str(const char *what, const char *name, const char *got, const char *want)
{
	if (got == NULL && want == NULL)
		return;
	if (got == NULL || want == NULL || strcmp(got, want) != 0)
		mismatch("%s: %s is \"%s\", want \"%s\"", name, what,
		    got != NULL ? got : "(null)",
		    want != NULL ? want : "(null)");
}

static void
check_event(const char *name, const struct wh_event *e, const struct want *w)
{
	check_str("id", name, e->id, w->id);
	check_str("type", name, e->type, w->type);
	if (e->action != w->action)
		mismatch("%s: action %s, want %s", name,
		    wh_action_name(e->action), wh_action_name(w->action));
	if (w->action == WA_GRANT || w->action == WA_LINE)
		check_str("user_id", name, e->user_id, w->user_id);
	if (w->action == WA_GRANT && e->credits != w->credits)
		mismatch("%s: credits %lld, want %lld", name,
		    (long long)e->credits, (long long)w->credits);
	if (w->action == WA_GRANT || w->action == WA_REFUND)
		check_str("anchor", name, e->anchor, w->anchor);
	if (w->action == WA_REFUND)
		check_str("anchor2", name, e->anchor2, w->anchor2);
	if (w->action == WA_GRANT || w->action == WA_REFUND) {
		if (e->amount != w->amount)
			mismatch("%s: amount %lld, want %lld", name,
			    (long long)e->amount, (long long)w->amount);
		check_str("currency", name, e->currency,
		    w->currency != NULL ? w->currency : "");
	}
	if (w->action == WA_REFUND) {
		if (e->paid != w->paid)
			mismatch("%s: paid %lld, want %lld", name,
			    (long long)e->paid, (long long)w->paid);
		check_str("source", name, e->source, w->source);
	}
	if (w->message_id != NULL || w->status != NULL) {
		check_str("message_id", name, e->message_id, w->message_id);
		check_str("status", name, e->status, w->status);
	}
	if (w->action == WA_SMS && e->ts_ms != w->ts_ms)
		mismatch("%s: ts_ms %lld, want %lld", name, (long long)e->ts_ms,
		    (long long)w->ts_ms);
	if (w->action == WA_LINE) {
		check_str("reply_token", name, e->reply_token, w->reply_token);
		check_str("text", name, e->text, w->text);
	}
}

/* Parses body with jv_parse() as the handler does; fails the test if not. */
static struct json_object *
parse(const char *body)
{
	struct json_object *root = NULL;

	if (jv_parse(body, strlen(body), BW_MAX_WEBHOOK_JSON_DEPTH, &root) !=
	    BW_OK)
		fail_msg("not valid JSON: %s", body);
	return root;
}

static void
test_cases(void **state)
{
	static unsigned char pat[4 * sizeof(struct wh_event)];
	const struct pcase  *c;
	struct json_object  *root;
	struct wh_event	     ev[4];
	enum bw_err	     er;
	size_t		     i, n;

	(void)state;
	mismatches = 0;
	memset(pat, 0xa5, sizeof(pat));
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		c = &cases[i];
		root = parse(c->body);
		memset(ev, 0xa5, sizeof(ev));
		n = 99;
		er = wh_parse(c->p, root, c->hdr_id, SIGNED_TS, ev, 4, &n);
		if (er != c->er)
			fail_msg("%s: %s, want %s", c->name, bw_strerror(er),
			    bw_strerror(c->er));
		if (er != BW_OK) {
			/* Out-parameters untouched. */
			if (n != 99 || memcmp(ev, pat, sizeof(ev)) != 0)
				fail_msg("%s: out-parameters touched", c->name);
		} else {
			if (n != 1)
				fail_msg("%s: %zu events, want 1", c->name, n);
			check_event(c->name, &ev[0], &c->w);
		}
		json_object_put(root);
	}
	if (mismatches > 0)
		fail_msg("%d mismatches", mismatches);
}

/* Event ids and anchors exactly at their bounds, and one past. */
static void
test_bounds(void **state)
{
	char		    id[WEBHOOK_EVENT_ID_MAX + 2], pi[300], uid[160];
	char		    body[2048];
	struct json_object *root;
	struct wh_event	    ev;
	size_t		    plen;

	(void)state;
	/* Event id: 255 bytes pass, 256 do not (Stripe, Square, SMS). */
	memset(id, 'e', sizeof(id) - 1);
	id[sizeof(id) - 1] = '\0';
	snprintf(body, sizeof(body), "{\"id\":\"%s\",\"event_id\":\"%s\"}", id,
	    id);
	root = parse(body);
	assert_int_equal(wh_parse_stripe(root, &ev), BW_EINVAL);
	assert_int_equal(wh_parse_square(root, &ev), BW_EINVAL);
	assert_int_equal(wh_parse_sms(root, id, SIGNED_TS, &ev), BW_EINVAL);
	json_object_put(root);
	id[WEBHOOK_EVENT_ID_MAX] = '\0';
	snprintf(body, sizeof(body), "{\"id\":\"%s\",\"event_id\":\"%s\"}", id,
	    id);
	root = parse(body);
	assert_int_equal(wh_parse_stripe(root, &ev), BW_OK);
	assert_int_equal(strlen(ev.id), WEBHOOK_EVENT_ID_MAX);
	assert_int_equal(wh_parse_square(root, &ev), BW_OK);
	assert_int_equal(wh_parse_sms(root, id, SIGNED_TS, &ev), BW_OK);
	json_object_put(root);

	/* Grant anchor "stripe:" + id: BW_MAX_ANCHOR bytes pass. */
	plen = BW_MAX_ANCHOR - strlen("stripe:");
	memset(pi, 'p', plen + 1);
	pi[plen] = '\0';
	snprintf(body, sizeof(body),
	    "{\"id\":\"e\",\"type\":\"payment_intent.succeeded\",\"data\":"
	    "{\"object\":{\"id\":\"%s\",\"metadata\":{\"user_id\":\"u\","
	    "\"credits\":1}}}}",
	    pi);
	root = parse(body);
	assert_int_equal(wh_parse_stripe(root, &ev), BW_OK);
	assert_int_equal(ev.action, WA_GRANT);
	assert_int_equal(strlen(ev.anchor), BW_MAX_ANCHOR);
	json_object_put(root);
	pi[plen] = 'p';
	pi[plen + 1] = '\0';
	snprintf(body, sizeof(body),
	    "{\"id\":\"e\",\"type\":\"payment_intent.succeeded\",\"data\":"
	    "{\"object\":{\"id\":\"%s\",\"metadata\":{\"user_id\":\"u\","
	    "\"credits\":1}}}}",
	    pi);
	root = parse(body);
	assert_int_equal(wh_parse_stripe(root, &ev), BW_OK);
	assert_int_equal(ev.action, WA_IGNORE);
	json_object_put(root);

	/* Refund anchor "stripe:refund:" + charge + ":100": BW_MAX_ANCHOR
	 * bytes pass, one more does not. */
	plen = BW_MAX_ANCHOR - strlen("stripe:refund::100");
	memset(pi, 'c', plen + 1);
	pi[plen] = '\0';
	snprintf(body, sizeof(body),
	    "{\"id\":\"e\",\"type\":\"charge.refunded\",\"data\":"
	    "{\"object\":{\"id\":\"%s\",\"amount\":1000,"
	    "\"amount_refunded\":100,\"currency\":\"usd\","
	    "\"payment_intent\":\"pi_1\"}}}",
	    pi);
	root = parse(body);
	assert_int_equal(wh_parse_stripe(root, &ev), BW_OK);
	assert_int_equal(ev.action, WA_REFUND);
	assert_int_equal(strlen(ev.anchor2), BW_MAX_ANCHOR);
	assert_int_equal(ev.paid, 1000);
	json_object_put(root);
	pi[plen] = 'c';
	pi[plen + 1] = '\0';
	snprintf(body, sizeof(body),
	    "{\"id\":\"e\",\"type\":\"charge.refunded\",\"data\":"
	    "{\"object\":{\"id\":\"%s\",\"amount\":1000,"
	    "\"amount_refunded\":100,\"currency\":\"usd\","
	    "\"payment_intent\":\"pi_1\"}}}",
	    pi);
	root = parse(body);
	assert_int_equal(wh_parse_stripe(root, &ev), BW_OK);
	assert_int_equal(ev.action, WA_IGNORE);
	assert_int_equal(ev.amount, 0);
	json_object_put(root);

	/* Money: BW_MAX_WEBHOOK_MONEY passes, one more does not. */
	snprintf(body, sizeof(body),
	    "{\"id\":\"e\",\"type\":\"charge.refunded\",\"data\":"
	    "{\"object\":{\"id\":\"ch_1\",\"amount_refunded\":%lld,"
	    "\"currency\":\"usd\",\"payment_intent\":\"pi_1\"}}}",
	    (long long)BW_MAX_WEBHOOK_MONEY);
	root = parse(body);
	assert_int_equal(wh_parse_stripe(root, &ev), BW_OK);
	assert_int_equal(ev.action, WA_REFUND);
	assert_int_equal(ev.amount, BW_MAX_WEBHOOK_MONEY);
	assert_int_equal(ev.paid, 0);
	json_object_put(root);
	snprintf(body, sizeof(body),
	    "{\"id\":\"e\",\"type\":\"charge.refunded\",\"data\":"
	    "{\"object\":{\"id\":\"ch_1\",\"amount_refunded\":%lld,"
	    "\"currency\":\"usd\",\"payment_intent\":\"pi_1\"}}}",
	    (long long)BW_MAX_WEBHOOK_MONEY + 1);
	root = parse(body);
	assert_int_equal(wh_parse_stripe(root, &ev), BW_OK);
	assert_int_equal(ev.action, WA_IGNORE);
	json_object_put(root);

	/* user_id: CREDIT_USER_ID_MAX - 1 bytes pass, one more does not. */
	memset(uid, 'u', sizeof(uid));
	uid[127] = '\0';
	snprintf(body, sizeof(body),
	    "{\"id\":\"e\",\"type\":\"payment_intent.succeeded\",\"data\":"
	    "{\"object\":{\"id\":\"pi\",\"metadata\":{\"user_id\":\"%s\","
	    "\"credits\":1}}}}",
	    uid);
	root = parse(body);
	assert_int_equal(wh_parse_stripe(root, &ev), BW_OK);
	assert_int_equal(ev.action, WA_GRANT);
	json_object_put(root);
	uid[127] = 'u';
	uid[128] = '\0';
	snprintf(body, sizeof(body),
	    "{\"id\":\"e\",\"type\":\"payment_intent.succeeded\",\"data\":"
	    "{\"object\":{\"id\":\"pi\",\"metadata\":{\"user_id\":\"%s\","
	    "\"credits\":1}}}}",
	    uid);
	root = parse(body);
	assert_int_equal(wh_parse_stripe(root, &ev), BW_OK);
	assert_int_equal(ev.action, WA_IGNORE);
	json_object_put(root);

	/* SMS message id and status bounds. */
	memset(pi, 'm', WH_SMS_MESSAGE_ID_MAX + 1);
	pi[WH_SMS_MESSAGE_ID_MAX + 1] = '\0';
	snprintf(body, sizeof(body),
	    "{\"data\":{\"message_id\":\"%s\",\"status\":\"sent\"}}", pi);
	root = parse(body);
	assert_int_equal(wh_parse_sms(root, "m", SIGNED_TS, &ev), BW_OK);
	assert_int_equal(ev.action, WA_IGNORE);
	json_object_put(root);
	pi[WH_SMS_MESSAGE_ID_MAX] = '\0';
	snprintf(body, sizeof(body),
	    "{\"data\":{\"message_id\":\"%s\",\"status\":\"sent\"}}", pi);
	root = parse(body);
	assert_int_equal(wh_parse_sms(root, "m", SIGNED_TS, &ev), BW_OK);
	assert_int_equal(ev.action, WA_SMS);
	json_object_put(root);
	memset(pi, 's', WH_SMS_STATUS_MAX + 1);
	pi[WH_SMS_STATUS_MAX + 1] = '\0';
	snprintf(body, sizeof(body),
	    "{\"data\":{\"message_id\":\"m\",\"status\":\"%s\"}}", pi);
	root = parse(body);
	assert_int_equal(wh_parse_sms(root, "m", SIGNED_TS, &ev), BW_OK);
	assert_int_equal(ev.action, WA_IGNORE);
	json_object_put(root);
}

#define LINE_EV(id, rest)                                             \
	"{\"webhookEventId\":\"" id "\",\"timestamp\":1692251666727," \
	"\"mode\":\"active\",\"deliveryContext\":{\"isRedelivery\":"  \
	"false}" rest "}"
#define LINE_SRC ",\"source\":{\"type\":\"user\",\"userId\":\"Uabc\"}"

/* A LINE delivery of several events, some skipped, some ignored. */
static void
test_line_many(void **state)
{
	static const char body[] = "{\"destination\":\"Udest\",\"events\":["
	    /* 0: a text message: queued */
	    LINE_EV("E0",
		LINE_SRC
		",\"type\":\"message\",\"replyToken\":"
		"\"rt0\",\"message\":{\"type\":\"text\","
		"\"id\":\"1\",\"text\":\"hi\"}") ","
						 /* skipped: no webhookEventId */
						 "{\"type\":\"message\","
						 "\"replyToken\":"
						 "\"rtx\"" LINE_SRC
						 ",\"message\":{\"type\":"
						 "\"text\",\"text\":\"lost\"}},"
	    /* 1: a follow event: recorded only */
	    LINE_EV("E1",
		LINE_SRC ",\"type\":\"follow\",\"replyToken\":"
			 "\"rt1\"") ","
	    /* 2: a sticker: recorded only */
	    LINE_EV("E2",
		LINE_SRC ",\"type\":\"message\",\"replyToken\":"
			 "\"rt2\",\"message\":{\"type\":"
			 "\"sticker\",\"id\":\"2\",\"packageId\":"
			 "\"446\",\"stickerId\":\"1988\"}") ","
	    /* 3: a text without replyToken (standby mode): recorded only */
	    LINE_EV("E3",
		LINE_SRC
		",\"type\":\"message\",\"message\":"
		"{\"type\":\"text\",\"text\":\"x\"}") ","
						      /* skipped: not an object */
						      "null,"
	    /* 4: a text from a source without userId */
	    LINE_EV("E4",
		",\"source\":{\"type\":\"group\",\"groupId\":"
		"\"Cg\"},\"type\":\"message\",\"replyToken\":"
		"\"rt4\",\"message\":{\"type\":\"text\","
		"\"text\":\"y\"}") "]}";
	static const enum wh_action want[] = { WA_LINE, WA_IGNORE, WA_IGNORE,
		WA_IGNORE, WA_IGNORE };
	struct json_object	   *root;
	struct wh_event		    ev[WH_MAX_EVENTS];
	char			    name[24];
	size_t			    i, n = 0;

	(void)state;
	mismatches = 0;
	root = parse(body);
	assert_int_equal(wh_parse(WS_LINE, root, NULL, 0, ev, WH_MAX_EVENTS,
			     &n),
	    BW_OK);
	assert_int_equal(n, 5);
	for (i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "E%zu", i);
		check_str("id", name, ev[i].id, name);
		if (ev[i].action != want[i])
			fail_msg("%s: action %s", name,
			    wh_action_name(ev[i].action));
	}
	assert_int_equal(mismatches, 0);
	assert_string_equal(ev[0].user_id, "Uabc");
	assert_string_equal(ev[0].reply_token, "rt0");
	assert_string_equal(ev[0].text, "hi");
	/* Fewer slots than events: refused whole, nothing written. */
	n = 42;
	assert_int_equal(wh_parse_line(root, ev, 6, &n), BW_ETOOBIG);
	assert_int_equal(n, 42);
	assert_int_equal(wh_parse_line(root, ev, 7, &n), BW_OK);
	assert_int_equal(n, 5);
	json_object_put(root);

	/* LINE's verification request: no events. */
	root = parse("{\"destination\":\"Udest\",\"events\":[]}");
	assert_int_equal(wh_parse(WS_LINE, root, NULL, 0, ev, WH_MAX_EVENTS,
			     &n),
	    BW_OK);
	assert_int_equal(n, 0);
	json_object_put(root);
}

/* WH_MAX_EVENTS events pass, one more is refused. */
static void
test_line_max(void **state)
{
	static struct wh_event ev[WH_MAX_EVENTS];
	char		       body[WH_MAX_EVENTS * 48 + 64];
	struct json_object    *root;
	size_t		       i, n = 0, off;
	int		       k;

	(void)state;
	for (k = WH_MAX_EVENTS; k <= WH_MAX_EVENTS + 1; k++) {
		off = (size_t)snprintf(body, sizeof(body), "{\"events\":[");
		for (i = 0; i < (size_t)k; i++)
			off += (size_t)snprintf(body + off, sizeof(body) - off,
			    "%s{\"webhookEventId\":\"E%zu\"}", i ? "," : "", i);
		snprintf(body + off, sizeof(body) - off, "]}");
		root = parse(body);
		n = 0;
		assert_int_equal(wh_parse(WS_LINE, root, NULL, 0, ev,
				     WH_MAX_EVENTS, &n),
		    k == WH_MAX_EVENTS ? BW_OK : BW_ETOOBIG);
		if (k == WH_MAX_EVENTS) {
			assert_int_equal(n, WH_MAX_EVENTS);
			assert_string_equal(ev[WH_MAX_EVENTS - 1].id, "E99");
		}
		json_object_put(root);
	}
}

/* Bad arguments of the dispatcher. */
static void
test_dispatch_args(void **state)
{
	struct json_object *root;
	struct wh_event	    ev;
	size_t		    n = 7;

	(void)state;
	root = parse("{\"id\":\"evt_1\"}");
	assert_int_equal(wh_parse(WS_STRIPE, root, NULL, 0, &ev, 0, &n),
	    BW_EINVAL);
	assert_int_equal(wh_parse(WS_STRIPE, root, NULL, 0, NULL, 1, &n),
	    BW_EINVAL);
	assert_int_equal(wh_parse(WS__MAX, root, NULL, 0, &ev, 1, &n),
	    BW_EINVAL);
	assert_int_equal(n, 7);
	assert_int_equal(wh_parse(WS_STRIPE, NULL, NULL, 0, &ev, 1, &n),
	    BW_EINVAL);
	assert_int_equal(wh_parse(WS_STRIPE, root, NULL, 0, &ev, 1, &n), BW_OK);
	assert_int_equal(n, 1);
	json_object_put(root);
	assert_string_equal(wh_action_name(WA_LINE), "line");
	assert_string_equal(wh_action_name(WA__MAX), "?");
}

/* The reply's status of a delivery from its per-event results. */
static void
test_delivery_outcome(void **state)
{
	static const struct {
		struct webhook_result r[3];
		size_t		      n;
		enum webhook_outcome  want;
	} oc[] = {
		{ { { WO_PROCESSED, false } }, 1, WO_PROCESSED },
		{ { { WO_IGNORED, false } }, 1, WO_IGNORED },
		{ { { WO_DUPLICATE, false } }, 1, WO_DUPLICATE },
		{ { { WO_DUPLICATE, true } }, 1, WO_DUPLICATE },
		/* A redelivery counts as a duplicate whatever its outcome. */
		{ { { WO_IGNORED, true } }, 1, WO_DUPLICATE },
		{ { { 0 } }, 0, WO_IGNORED },
		/* One processed event is enough. */
		{ { { WO_DUPLICATE, true }, { WO_IGNORED, false },
		      { WO_PROCESSED, false } },
		    3, WO_PROCESSED },
		/* Every one a duplicate. */
		{ { { WO_DUPLICATE, true }, { WO_DUPLICATE, false },
		      { WO_DUPLICATE, true } },
		    3, WO_DUPLICATE },
		/* A duplicate beside an ignored one. */
		{ { { WO_DUPLICATE, true }, { WO_IGNORED, false } }, 2,
		    WO_IGNORED },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(oc) / sizeof(oc[0]); i++)
		if (webhook_delivery_outcome(oc[i].r, oc[i].n) != oc[i].want)
			fail_msg("outcome case %zu: %s, want %s", i,
			    webhook_outcome_name(
				webhook_delivery_outcome(oc[i].r, oc[i].n)),
			    webhook_outcome_name(oc[i].want));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_line_many),
		cmocka_unit_test(test_line_max),
		cmocka_unit_test(test_dispatch_args),
		cmocka_unit_test(test_delivery_outcome),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
