/* SPDX-License-Identifier: MIT */
/*
 * Webhook signature verification: Stripe, Square, LINE, Standard Webhooks
 * (the SMS provider's delivery reports) and Twilio, each checked against
 * the raw request body the way the provider's official library does, with
 * constant-time MAC comparison, bounded header parsing and a caller-given
 * clock. Pure code: no I/O, no logging (the caller logs the verdict).
 */
#ifndef BW_WHSIG_H
#define BW_WHSIG_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

enum whsig_provider {
	WS_STRIPE,	/* Stripe-Signature: t=..,v1=<hex>[,v1=..] */
	WS_SQUARE,	/* x-square-hmacsha256-signature, over URL + body */
	WS_LINE,	/* x-line-signature, over the body */
	WS_STDWEBHOOKS, /* webhook-id/-timestamp/-signature ("sms") */
	WS_TWILIO,	/* X-Twilio-Signature, HMAC-SHA1 over URL + params */
	WS__MAX
};

enum whsig_verdict {
	WV_VALID,	      /* a signature matched, timestamp fresh */
	WV_INVALID_SIGNATURE, /* no signature matched any secret */
	WV_STALE,	      /* matched, timestamp outside window */
	WV_MALFORMED,	      /* unparseable, or over a bound */
	WV_MISSING_HEADER,    /* required header absent or empty */
	WV_NO_SECRET,	      /* no usable secret (config error) */
	WV_ERROR,	      /* internal failure or bad argument */
	WV__MAX
};

/*
 * The header values of one request, NUL-terminated, NULL when absent.
 * timestamp and id are read by WS_STDWEBHOOKS only.
 */
struct whsig_headers {
	const char *signature;
	const char *timestamp;
	const char *id;
};

/*
 * One active secret of an org for a provider; during a rotation two are
 * active and either may match. url is the notification URL the org
 * registered with the provider (WS_SQUARE and WS_TWILIO sign it), stored
 * with the secret as a constant: never rebuilt from CGI variables.
 * Stripe: the "whsec_..." string used verbatim as the key. Standard
 * Webhooks: base64 after an optional "whsec_" prefix. Square: the
 * subscription's signature key. LINE: the channel secret. Twilio: the auth
 * token.
 */
struct whsig_secret {
	const char *secret;
	const char *url;
};

/* The name of one header as sent and as a FastCGI parameter. */
struct whsig_hdr {
	const char *http; /* "Stripe-Signature"; NULL: unused */
	const char *cgi;  /* "HTTP_STRIPE_SIGNATURE" */
};

struct whsig_names {
	struct whsig_hdr signature;
	struct whsig_hdr timestamp;
	struct whsig_hdr id;
};

/*
 * Provider from its route name: "stripe", "square", "line", "sms" (the
 * Standard Webhooks scheme). WS_TWILIO has no route name. BW_OK, or
 * BW_EINVAL (*out untouched).
 */
enum bw_err whsig_provider_parse(const char *name, enum whsig_provider *out);
/* Static name for logs ("stripe", ..., "twilio"); "?" when out of range. */
const char *whsig_provider_name(enum whsig_provider);
/* Static header names of a provider; NULL when out of range. */
const struct whsig_names *whsig_header_names(enum whsig_provider);
/* Static verdict text ("valid", "invalid_signature", ...); never NULL. */
const char *whsig_verdict_str(enum whsig_verdict);

/*
 * Checks whether a stored secret is usable for the provider (e.g. when
 * bulwarkctl sets it): non-empty and bounded, base64 after "whsec_" for
 * Standard Webhooks, and an http(s) URL present for Square and Twilio.
 * BW_OK or BW_EINVAL.
 */
enum bw_err
whsig_secret_check(enum whsig_provider, const struct whsig_secret *);

/*
 * Verifies one webhook request against nsecrets active secrets
 * (at most BW_MAX_WEBHOOK_SECRETS). body[0..len) is the raw request body.
 * now is the receiver's clock in unix seconds; tolerance_s the allowed
 * |now - timestamp| (negative: BW_WEBHOOK_TOLERANCE_S); both are used only
 * by the schemes that sign a timestamp (Stripe, Standard Webhooks). The
 * signature is checked first, so WV_STALE means "authentic but outside
 * the window" and an unauthenticated timestamp is never reported as stale.
 * Every candidate signature is compared with every secret in constant
 * time, without an early exit. Unusable secrets are skipped; none usable
 * gives WV_NO_SECRET. On WV_VALID and WV_STALE, *signed_ts (when not NULL)
 * gets the signed timestamp, otherwise it is untouched.
 */
enum whsig_verdict
whsig_verify(enum whsig_provider, const struct whsig_headers *,
    const void *body, size_t len, const struct whsig_secret *secrets,
    size_t nsecrets, int64_t now, int tolerance_s, int64_t *signed_ts);

#ifdef BW_TESTING
/* Static functions of whsig.c, visible to tests (STATIC in core/err.h). */
struct buf;
enum bw_err whsig_parse_ts(const char *s, size_t n, int64_t *out);
enum whsig_verdict
	    whsig_form_params(const uint8_t *body, size_t len, struct buf *out);
enum bw_err whsig_url_alt(const char *url, struct buf *alt);
#endif

#endif
