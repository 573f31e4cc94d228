/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness for lib/money/wh_parse.c (and the RFC 3339 parser of
 * lib/core/jv.c it uses): a body parsed the way the webhook handler does,
 * then every provider's parser, with the invariants a parsed event must
 * hold whatever the input.
 *
 * Input: byte 0 provider (mod WS__MAX, Twilio included), byte 1 how many
 * event slots (0..WH_MAX_EVENTS), bytes 2..9 the signed timestamp (int64
 * LE), then "<webhook-id>\n" and the raw body (the rest).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/jv.h"
#include "core/limits.h"
#include "money/credit.h"
#include "money/webhook.h"
#include "money/wh_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define PREFIX 10
#define TS_MIN INT64_C(-62135596800000) /* 0001-01-01T00:00:00Z */
#define TS_MAX INT64_C(253402300800000) /* 10000-01-01T00:00:00Z */

/* 1 when s is NULL-free, non-empty and at most max bytes. */
static int
bounded(const char *s, size_t max)
{
	return s != NULL && *s != '\0' && strlen(s) <= max;
}

/* Aborts unless ev is a well-formed result of its parser. */
static void
check_event(const struct wh_event *ev)
{
	if (!bounded(ev->id, WEBHOOK_EVENT_ID_MAX))
		abort();
	switch (ev->action) {
	case WA_IGNORE:
		break;
	case WA_GRANT:
		if (!bounded(ev->user_id, CREDIT_USER_ID_MAX - 1) ||
		    ev->credits < 1 || ev->credits > BW_MAX_WEBHOOK_CREDITS ||
		    !bounded(ev->anchor, BW_MAX_ANCHOR) ||
		    (strncmp(ev->anchor, "stripe:", 7) != 0 &&
			strncmp(ev->anchor, "square:", 7) != 0) ||
		    ev->amount < 0 || ev->amount > BW_MAX_WEBHOOK_MONEY ||
		    (ev->amount > 0) != (strlen(ev->currency) == 3))
			abort();
		break;
	case WA_REFUND:
		if (!bounded(ev->anchor, BW_MAX_ANCHOR) ||
		    !bounded(ev->anchor2, BW_MAX_ANCHOR) ||
		    strstr(ev->anchor2, ":refund:") == NULL ||
		    !bounded(ev->source, BW_MAX_ANCHOR) || ev->amount < 1 ||
		    ev->amount > BW_MAX_WEBHOOK_MONEY || ev->paid < 0 ||
		    ev->paid > BW_MAX_WEBHOOK_MONEY ||
		    strlen(ev->currency) != 3)
			abort();
		break;
	case WA_SMS:
		if (!bounded(ev->message_id, WH_SMS_MESSAGE_ID_MAX) ||
		    !bounded(ev->status, WH_SMS_STATUS_MAX) || ev->ts_ms < 0)
			abort();
		break;
	case WA_LINE:
		if (ev->user_id == NULL || ev->reply_token == NULL ||
		    ev->text == NULL)
			abort();
		break;
	default:
		abort();
	}
	if (strcmp(wh_action_name(ev->action), "?") == 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct wh_event ev[WH_MAX_EVENTS];
	struct json_object    *root = NULL;
	enum whsig_provider    p;
	enum bw_err	       er;
	const uint8_t	      *nl;
	const char	      *body;
	char		      *hdr;
	size_t		       max, n = 7777, blen, hlen, i;
	int64_t		       ts, ms;

	if (size < PREFIX)
		return 0;
	p = (enum whsig_provider)(data[0] % WS__MAX);
	max = data[1] % (WH_MAX_EVENTS + 1);
	memcpy(&ts, data + 2, sizeof(ts));
	nl = memchr(data + PREFIX, '\n', size - PREFIX);
	hlen = nl != NULL ? (size_t)(nl - (data + PREFIX)) : 0;
	if ((hdr = malloc(hlen + 1)) == NULL)
		abort();
	memcpy(hdr, data + PREFIX, hlen);
	hdr[hlen] = '\0';
	body = (const char *)data + PREFIX + (nl != NULL ? hlen + 1 : 0);
	blen = size - (size_t)((const uint8_t *)body - data);

	/* The timestamp parser on the raw body: in range when accepted. */
	if (jv_rfc3339_ms(body, blen, &ms) == BW_OK &&
	    (ms < TS_MIN || ms >= TS_MAX))
		abort();

	if (jv_parse(body, blen, BW_MAX_WEBHOOK_JSON_DEPTH, &root) != BW_OK) {
		free(hdr);
		return 0;
	}
	er = wh_parse(p, root, hdr, ts, ev, max, &n);
	if (er == BW_OK) {
		if (n > max || (p != WS_LINE && n != 1))
			abort();
		for (i = 0; i < n; i++)
			check_event(&ev[i]);
	} else if (er != BW_EINVAL && er != BW_ETOOBIG) {
		abort();
	} else if (n != 7777) {
		abort(); /* out-parameter touched on failure */
	}
	if (p == WS_TWILIO && er != BW_EINVAL)
		abort();
	json_object_put(root);
	free(hdr);
	return 0;
}
