/* SPDX-License-Identifier: MIT */
/*
 * The error contract of CONTRACT.md as one const table (code, HTTP status,
 * retryable, retry_strategy, default message, hint), the renderer of the
 * {"error":{...}} body that resp_error() sends, and the default mapping of
 * a bw_err to a code.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include <openssl/rand.h>

#include "core/apierr.h"

#define APIERR_UUID_BUF 37 /* 36 characters and the NUL */

STATIC enum bw_err apierr_uuid(char *);

/*
 * Retry policy: malformed, unauthorised or conflicting-by-design requests
 * are not retryable (the same request fails the same way); transient
 * server-side and upstream failures retry with exponential backoff; limits
 * that name a time (RATE_LIMITED, CAPACITY_EXHAUSTED) retry after the
 * Retry-After header. 5xx messages are fixed text: no internal detail.
 */
static const struct apierr_def apierr_defs[AE__MAX] = {
	[AE_VALIDATION_FAILED] = { "VALIDATION_FAILED", 400, 0, AS_NONE,
	    "The request failed validation.",
	    "Fix the fields listed in \"fields\" and send the request again." },
	[AE_INVALID_JSON] = { "INVALID_JSON", 400, 0, AS_NONE,
	    "The request body is not valid JSON.",
	    "Send a UTF-8 JSON object with Content-Type: application/json." },
	[AE_INVALID_SIGNATURE] = { "INVALID_SIGNATURE", 400, 0, AS_NONE,
	    "The webhook signature is missing or invalid.",
	    "Sign the exact raw body with the org's webhook secret using the "
	    "provider's scheme." },
	[AE_STALE_EVENT] = { "STALE_EVENT", 400, 0, AS_NONE,
	    "The event timestamp is too far from the current time.",
	    "Deliver events within 300 seconds of signing and keep the "
	    "sender's clock in sync." },
	[AE_UNAUTHENTICATED] = { "UNAUTHENTICATED", 401, 0, AS_NONE,
	    "Authentication is required.",
	    "Send a valid API key as \"Authorization: Bearer <key>\"." },
	[AE_BUDGET_EXCEEDED] = { "BUDGET_EXCEEDED", 402, 0, AS_NONE,
	    "The organization's budget does not cover this request.",
	    "Raise the budget or wait for the next budget period." },
	[AE_FORBIDDEN] = { "FORBIDDEN", 403, 0, AS_NONE,
	    "This API key may not perform this action.",
	    "Use a key with the required role (owner or admin)." },
	[AE_NOT_FOUND] = { "NOT_FOUND", 404, 0, AS_NONE,
	    "The resource does not exist.",
	    "Check the path and the identifier; resources are visible only to "
	    "their own organization." },
	[AE_METHOD_NOT_ALLOWED] = { "METHOD_NOT_ALLOWED", 405, 0, AS_NONE,
	    "The method is not allowed on this resource.",
	    "Use one of the methods listed in the Allow header." },
	[AE_INSUFFICIENT_CREDITS] = { "INSUFFICIENT_CREDITS", 409, 0, AS_NONE,
	    "The account does not have enough available credits.",
	    "Add credits to the account or request fewer credits." },
	[AE_IDEMPOTENCY_KEY_IN_USE] = { "IDEMPOTENCY_KEY_IN_USE", 409, 1,
	    AS_EXPONENTIAL_BACKOFF,
	    "A request with this Idempotency-Key is still being processed.",
	    "Retry the same request later with backoff to receive the stored "
	    "result." },
	[AE_RESERVATION_EXPIRED] = { "RESERVATION_EXPIRED", 409, 0, AS_NONE,
	    "The credit reservation has expired.",
	    "Create a new reservation; expired credits were returned." },
	[AE_INVALID_STATE] = { "INVALID_STATE", 409, 0, AS_NONE,
	    "The resource is not in a state that allows this operation.",
	    "Fetch the resource to see its current state." },
	[AE_GONE] = { "GONE", 410, 0, AS_NONE,
	    "The resource has expired and is no longer available.",
	    "Create it again if it is still needed." },
	[AE_PAYLOAD_TOO_LARGE] = { "PAYLOAD_TOO_LARGE", 413, 0, AS_NONE,
	    "The request body is too large.",
	    "Send a smaller body; see the API documentation for limits." },
	[AE_UNSUPPORTED_MEDIA_TYPE] = { "UNSUPPORTED_MEDIA_TYPE", 415, 0,
	    AS_NONE, "The Content-Type is not supported by this endpoint.",
	    "Send Content-Type: application/json." },
	[AE_IDEMPOTENCY_KEY_REUSED] = { "IDEMPOTENCY_KEY_REUSED", 422, 0,
	    AS_NONE,
	    "This Idempotency-Key was already used with a different request.",
	    "Use a new Idempotency-Key for a different request." },
	[AE_RATE_LIMITED] = { "RATE_LIMITED", 429, 1, AS_AFTER_RETRY_AFTER,
	    "Too many requests.",
	    "Wait for the number of seconds in the Retry-After header, then "
	    "retry." },
	[AE_INTERNAL] = { "INTERNAL", 500, 1, AS_EXPONENTIAL_BACKOFF,
	    "An internal error occurred.",
	    "Retry with backoff; quote error_id if the problem persists." },
	[AE_UPSTREAM_UNAVAILABLE] = { "UPSTREAM_UNAVAILABLE", 502, 1,
	    AS_EXPONENTIAL_BACKOFF, "An upstream provider is unavailable.",
	    "Retry with exponential backoff." },
	[AE_UPSTREAM_TIMEOUT] = { "UPSTREAM_TIMEOUT", 504, 1,
	    AS_EXPONENTIAL_BACKOFF,
	    "An upstream provider did not answer in time.",
	    "Retry with exponential backoff." },
	[AE_CAPACITY_EXHAUSTED] = { "CAPACITY_EXHAUSTED", 503, 1,
	    AS_AFTER_RETRY_AFTER,
	    "No capacity is available to serve the request now.",
	    "Wait for the number of seconds in the Retry-After header, then "
	    "retry." },
	[AE_DEPENDENCY_UNAVAILABLE] = { "DEPENDENCY_UNAVAILABLE", 503, 1,
	    AS_EXPONENTIAL_BACKOFF, "A service dependency is unavailable.",
	    "Retry with exponential backoff." },
};

static const char *const apierr_strategies[AS__MAX] = {
	[AS_NONE] = "none",
	[AS_IMMEDIATE] = "immediate",
	[AS_EXPONENTIAL_BACKOFF] = "exponential_backoff",
	[AS_AFTER_RETRY_AFTER] = "after_retry_after",
};

/*
 * Returns the table row for c; an out-of-range code (a programmer error)
 * gets the INTERNAL row so that a reply is still well formed.
 */
const struct apierr_def *
apierr_def(enum apierr_code c)
{
	if ((unsigned)c >= AE__MAX)
		return &apierr_defs[AE_INTERNAL];
	return &apierr_defs[c];
}

/* Returns the code whose name is name (exact, upper case), or -1. */
int
apierr_by_name(const char *name)
{
	int i;

	if (name == NULL)
		return -1;
	for (i = 0; i < AE__MAX; i++)
		if (strcmp(apierr_defs[i].code, name) == 0)
			return i;
	return -1;
}

/* Returns the CONTRACT.md spelling of s; "none" for an unknown value. */
const char *
apierr_strategy_name(enum apierr_strategy s)
{
	if ((unsigned)s >= AS__MAX)
		return "none";
	return apierr_strategies[s];
}

/*
 * Writes a random (version 4, RFC 9562 §5.4) UUID to out (37 bytes).
 * OpenSSL's DRBG first, getrandom(2) when that fails. Returns BW_OK or
 * BW_ECRYPTO when neither source answered.
 */
STATIC enum bw_err
apierr_uuid(char *out)
{
	static const char hex[] = "0123456789abcdef";
	uint8_t		  r[16];
	size_t		  i, o;

	if (RAND_bytes(r, sizeof(r)) != 1 &&
	    getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		return BW_ECRYPTO;
	r[6] = (uint8_t)((r[6] & 0x0f) | 0x40);
	r[8] = (uint8_t)((r[8] & 0x3f) | 0x80);
	for (i = 0, o = 0; i < sizeof(r); i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[r[i] >> 4];
		out[o++] = hex[r[i] & 0x0f];
	}
	out[o] = '\0';
	return BW_OK;
}

/*
 * Adds key = a new string object to o. Returns 0, or -1 when out of memory
 * (o keeps whatever was added before).
 */
static int
apierr_addstr(struct json_object *o, const char *key, const char *val)
{
	struct json_object *v;

	v = json_object_new_string(val);
	if (v == NULL)
		return -1;
	if (json_object_object_add(o, key, v) != 0) {
		json_object_put(v);
		return -1;
	}
	return 0;
}

/*
 * Builds the error body (see apierr.h). The INTERNAL message is always the
 * table's, so no internal detail can leak into a 500. A NULL request_id is
 * rendered as "" so that the field keeps its type. fields is consumed in
 * every case. Returns a new object owned by the caller, or NULL when out of
 * memory or without randomness for error_id.
 */
struct json_object *
apierr_body(enum apierr_code c, const char *message, const char *request_id,
    struct json_object *fields, char *error_id_out)
{
	const struct apierr_def *d;
	struct json_object	*root = NULL, *err = NULL, *v;
	char			 id[APIERR_UUID_BUF];

	d = apierr_def(c);
	if (message == NULL || c == AE_INTERNAL)
		message = d->message;
	if (request_id == NULL)
		request_id = "";
	if (apierr_uuid(id) != BW_OK)
		goto out;
	if ((root = json_object_new_object()) == NULL ||
	    (err = json_object_new_object()) == NULL)
		goto out;
	if (apierr_addstr(err, "error_code", d->code) != 0 ||
	    apierr_addstr(err, "message", message) != 0 ||
	    apierr_addstr(err, "error_hint", d->hint) != 0)
		goto out;
	if ((v = json_object_new_boolean(d->retryable)) == NULL)
		goto out;
	if (json_object_object_add(err, "retryable", v) != 0) {
		json_object_put(v);
		goto out;
	}
	if (apierr_addstr(err, "retry_strategy",
		apierr_strategy_name(d->strategy)) != 0 ||
	    apierr_addstr(err, "error_id", id) != 0 ||
	    apierr_addstr(err, "request_id", request_id) != 0)
		goto out;
	if (fields != NULL) {
		if (json_object_object_add(err, "fields", fields) != 0)
			goto out;
		fields = NULL;
	}
	if (json_object_object_add(root, "error", err) != 0)
		goto out;
	err = NULL;
	if (error_id_out != NULL)
		memcpy(error_id_out, id, sizeof(id));
	return root;
out:
	json_object_put(fields);
	json_object_put(err);
	json_object_put(root);
	return NULL;
}

/*
 * Copies extra's members into body's top level (new references); see
 * apierr.h. On ENOMEM body keeps what was added before.
 */
enum bw_err
apierr_extend(struct json_object *body, struct json_object *extra)
{
	if (extra == NULL)
		return BW_OK;
	if (!json_object_is_type(body, json_type_object) ||
	    !json_object_is_type(extra, json_type_object) ||
	    json_object_object_get_ex(extra, "error", NULL))
		return BW_EINVAL;
	json_object_object_foreach(extra, k, v)
	{
		if (json_object_object_add(body, k, json_object_get(v)) != 0) {
			json_object_put(v);
			return BW_ENOMEM;
		}
	}
	return BW_OK;
}

/*
 * One table so that every handler answers a library error the same way;
 * a handler that means something else for one case says so itself.
 */
static const enum apierr_code apierr_errs[BW_ERR__MAX] = {
	[BW_OK] = AE_INTERNAL, /* a programmer error: nothing failed */
	[BW_ENOMEM] = AE_INTERNAL,
	[BW_EINVAL] = AE_VALIDATION_FAILED,
	[BW_ETOOBIG] = AE_PAYLOAD_TOO_LARGE,
	[BW_ENOTFOUND] = AE_NOT_FOUND,
	/* A unique violation no module turned into an outcome is a race
	 * that a retry resolves. */
	[BW_EEXISTS] = AE_DEPENDENCY_UNAVAILABLE,
	[BW_EDB] = AE_DEPENDENCY_UNAVAILABLE,
	[BW_ERETRY] = AE_DEPENDENCY_UNAVAILABLE,
	[BW_EREDIS] = AE_DEPENDENCY_UNAVAILABLE,
	[BW_EIO] = AE_DEPENDENCY_UNAVAILABLE,
	/* A statement timeout or a dependency's deadline. */
	[BW_ETIMEOUT] = AE_DEPENDENCY_UNAVAILABLE,
	[BW_EUPSTREAM] = AE_UPSTREAM_UNAVAILABLE,
	[BW_EBUSY] = AE_CAPACITY_EXHAUSTED,
	[BW_EAUTH] = AE_UNAUTHENTICATED,
	[BW_ECONFIG] = AE_INTERNAL,
	[BW_ECRYPTO] = AE_INTERNAL,
	[BW_ESTATE] = AE_INVALID_STATE,
	[BW_EAMBIG] = AE_DEPENDENCY_UNAVAILABLE,
};

/* See apierr.h. */
enum apierr_code
apierr_from_err(enum bw_err er)
{
	if ((unsigned)er >= BW_ERR__MAX)
		return AE_INTERNAL;
	return apierr_errs[er];
}
