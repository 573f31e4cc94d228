/* SPDX-License-Identifier: MIT */
/*
 * The error contract (CONTRACT.md): one table maps each error_code to its
 * HTTP status, retryable flag, retry_strategy and hint, and one function
 * renders the {"error":{...}} body.
 */
#ifndef BW_APIERR_H
#define BW_APIERR_H

#include <json-c/json.h>

#include "core/err.h"

enum apierr_code {
	AE_VALIDATION_FAILED,
	AE_INVALID_JSON,
	AE_INVALID_SIGNATURE,
	AE_STALE_EVENT,
	AE_UNAUTHENTICATED,
	AE_BUDGET_EXCEEDED,
	AE_FORBIDDEN,
	AE_NOT_FOUND,
	AE_METHOD_NOT_ALLOWED,
	AE_INSUFFICIENT_CREDITS,
	AE_IDEMPOTENCY_KEY_IN_USE,
	AE_RESERVATION_EXPIRED,
	AE_INVALID_STATE,
	AE_GONE,
	AE_PAYLOAD_TOO_LARGE,
	AE_UNSUPPORTED_MEDIA_TYPE,
	AE_IDEMPOTENCY_KEY_REUSED,
	AE_RATE_LIMITED,
	AE_INTERNAL,
	AE_UPSTREAM_UNAVAILABLE,
	AE_UPSTREAM_TIMEOUT,
	AE_CAPACITY_EXHAUSTED,
	AE_DEPENDENCY_UNAVAILABLE,
	AE__MAX
};

enum apierr_strategy {
	AS_NONE,
	AS_IMMEDIATE,
	AS_EXPONENTIAL_BACKOFF,
	AS_AFTER_RETRY_AFTER,
	AS__MAX
};

struct apierr_def {
	const char	    *code;   /* "RATE_LIMITED" */
	int		     status; /* 429 */
	int		     retryable;
	enum apierr_strategy strategy;
	const char	    *message; /* default message */
	const char	    *hint;    /* what the client should do */
};

/* The row for a code; never NULL for a valid code. */
const struct apierr_def *apierr_def(enum apierr_code);
/* Code by its name ("NOT_FOUND"), or -1. */
int	    apierr_by_name(const char *);
const char *apierr_strategy_name(enum apierr_strategy);
/*
 * Builds {"error":{error_code,message,error_hint,retryable,retry_strategy,
 * error_id,request_id[,fields]}}. message NULL takes the table's default;
 * fields (a json array, may be NULL) is consumed. error_id is a fresh UUID
 * written to error_id_out (37 bytes) when that is not NULL. Returns a new
 * object owned by the caller, or NULL when out of memory.
 */
struct json_object *apierr_body(enum apierr_code, const char *message,
    const char *request_id, struct json_object *fields, char *error_id_out);
/*
 * Adds every member of extra (an object, not consumed; NULL adds nothing)
 * beside "error" at the top level of body, e.g. the chat's fallback
 * "reply". A member named "error" is refused. Returns BW_OK, BW_EINVAL
 * (not objects, or "error"), BW_ENOMEM.
 */
enum bw_err apierr_extend(struct json_object *body, struct json_object *extra);
/*
 * The default contract error for a library error, when a handler has no
 * more specific answer: BW_EINVAL 400 VALIDATION_FAILED, BW_ENOTFOUND 404,
 * BW_ESTATE 409 INVALID_STATE, BW_ETOOBIG 413, BW_EAUTH 401, BW_EBUSY 503
 * CAPACITY_EXHAUSTED, BW_EUPSTREAM 502, the database, Redis, storage and
 * their deadlines (BW_EDB, BW_ERETRY, BW_EEXISTS, BW_EREDIS, BW_EIO,
 * BW_ETIMEOUT) 503 DEPENDENCY_UNAVAILABLE, everything else (BW_ENOMEM,
 * BW_ECRYPTO, BW_ECONFIG, BW_OK, out of range) 500 INTERNAL.
 */
enum apierr_code apierr_from_err(enum bw_err);

#endif
