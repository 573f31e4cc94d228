/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for lib/core/apierr.c: every code has its CONTRACT.md status, a
 * strategy consistent with retryable, a hint; the body has exactly the
 * contract's fields and a fresh v4 UUID as error_id.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "core/apierr.h"

/* CONTRACT.md's list, independent of the table under test. */
static const struct {
	enum apierr_code     c;
	const char	    *name;
	int		     status;
	enum apierr_strategy strategy;
} want[] = {
	{ AE_VALIDATION_FAILED, "VALIDATION_FAILED", 400, AS_NONE },
	{ AE_INVALID_JSON, "INVALID_JSON", 400, AS_NONE },
	{ AE_INVALID_SIGNATURE, "INVALID_SIGNATURE", 400, AS_NONE },
	{ AE_STALE_EVENT, "STALE_EVENT", 400, AS_NONE },
	{ AE_UNAUTHENTICATED, "UNAUTHENTICATED", 401, AS_NONE },
	{ AE_BUDGET_EXCEEDED, "BUDGET_EXCEEDED", 402, AS_NONE },
	{ AE_FORBIDDEN, "FORBIDDEN", 403, AS_NONE },
	{ AE_NOT_FOUND, "NOT_FOUND", 404, AS_NONE },
	{ AE_METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED", 405, AS_NONE },
	{ AE_INSUFFICIENT_CREDITS, "INSUFFICIENT_CREDITS", 409, AS_NONE },
	{ AE_IDEMPOTENCY_KEY_IN_USE, "IDEMPOTENCY_KEY_IN_USE", 409,
	    AS_EXPONENTIAL_BACKOFF },
	{ AE_RESERVATION_EXPIRED, "RESERVATION_EXPIRED", 409, AS_NONE },
	{ AE_INVALID_STATE, "INVALID_STATE", 409, AS_NONE },
	{ AE_GONE, "GONE", 410, AS_NONE },
	{ AE_PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE", 413, AS_NONE },
	{ AE_UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE", 415, AS_NONE },
	{ AE_IDEMPOTENCY_KEY_REUSED, "IDEMPOTENCY_KEY_REUSED", 422, AS_NONE },
	{ AE_RATE_LIMITED, "RATE_LIMITED", 429, AS_AFTER_RETRY_AFTER },
	{ AE_INTERNAL, "INTERNAL", 500, AS_EXPONENTIAL_BACKOFF },
	{ AE_UPSTREAM_UNAVAILABLE, "UPSTREAM_UNAVAILABLE", 502,
	    AS_EXPONENTIAL_BACKOFF },
	{ AE_UPSTREAM_TIMEOUT, "UPSTREAM_TIMEOUT", 504,
	    AS_EXPONENTIAL_BACKOFF },
	{ AE_CAPACITY_EXHAUSTED, "CAPACITY_EXHAUSTED", 503,
	    AS_AFTER_RETRY_AFTER },
	{ AE_DEPENDENCY_UNAVAILABLE, "DEPENDENCY_UNAVAILABLE", 503,
	    AS_EXPONENTIAL_BACKOFF },
};

static int
is_uuid_v4(const char *s)
{
	size_t i;

	if (strlen(s) != 36)
		return 0;
	for (i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return 0;
		} else if (!((s[i] >= '0' && s[i] <= '9') ||
			       (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	}
	return s[14] == '4' && strchr("89ab", s[19]) != NULL;
}

static void
test_apierr_table(void **state)
{
	const struct apierr_def *d;
	size_t			 i;

	(void)state;
	assert_int_equal(sizeof(want) / sizeof(want[0]), AE__MAX);
	for (i = 0; i < AE__MAX; i++) {
		d = apierr_def(want[i].c);
		assert_non_null(d);
		assert_string_equal(d->code, want[i].name);
		if (d->status != want[i].status)
			fail_msg("%s: status %d", d->code, d->status);
		if (d->strategy != want[i].strategy)
			fail_msg("%s: strategy %s", d->code,
			    apierr_strategy_name(d->strategy));
		/* Retryable exactly when a strategy says how. */
		assert_int_equal(d->retryable, d->strategy != AS_NONE);
		assert_non_null(d->message);
		assert_true(strlen(d->message) > 10);
		assert_non_null(d->hint);
		assert_true(strlen(d->hint) > 10);
		assert_int_equal(apierr_by_name(want[i].name), (int)want[i].c);
	}
	assert_int_equal(apierr_by_name("NOPE"), -1);
	assert_int_equal(apierr_by_name("not_found"), -1);
	assert_int_equal(apierr_by_name(NULL), -1);
	/* Out of range (a programmer error) still answers a valid row. */
	assert_int_equal(apierr_def((enum apierr_code)AE__MAX)->status, 500);
}

static void
test_apierr_strategy_names(void **state)
{
	(void)state;
	assert_string_equal(apierr_strategy_name(AS_NONE), "none");
	assert_string_equal(apierr_strategy_name(AS_IMMEDIATE), "immediate");
	assert_string_equal(apierr_strategy_name(AS_EXPONENTIAL_BACKOFF),
	    "exponential_backoff");
	assert_string_equal(apierr_strategy_name(AS_AFTER_RETRY_AFTER),
	    "after_retry_after");
}

static const char *
sget(struct json_object *o, const char *k)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, k, &v) ||
	    !json_object_is_type(v, json_type_string))
		fail_msg("field %s missing or not a string", k);
	return json_object_get_string(v);
}

static void
test_apierr_body_shape(void **state)
{
	static const char *const keys[] = {
		"error_code",
		"message",
		"error_hint",
		"retryable",
		"retry_strategy",
		"error_id",
		"request_id",
	};
	struct json_object *b, *e, *v;
	char		    id[37];
	size_t		    i;
	int		    c;

	(void)state;
	for (c = 0; c < AE__MAX; c++) {
		memset(id, 0, sizeof(id));
		b = apierr_body((enum apierr_code)c, NULL, "req-1", NULL, id);
		assert_non_null(b);
		/* Exactly {"error": {7 keys}}. */
		assert_int_equal(json_object_object_length(b), 1);
		assert_true(json_object_object_get_ex(b, "error", &e));
		assert_int_equal(json_object_object_length(e), 7);
		for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
			assert_true(
			    json_object_object_get_ex(e, keys[i], NULL));
		assert_string_equal(sget(e, "error_code"), want[c].name);
		assert_string_equal(sget(e, "message"),
		    apierr_def((enum apierr_code)c)->message);
		assert_string_equal(sget(e, "error_hint"),
		    apierr_def((enum apierr_code)c)->hint);
		assert_string_equal(sget(e, "retry_strategy"),
		    apierr_strategy_name(want[c].strategy));
		assert_string_equal(sget(e, "request_id"), "req-1");
		assert_true(json_object_object_get_ex(e, "retryable", &v));
		assert_true(json_object_is_type(v, json_type_boolean));
		assert_int_equal(json_object_get_boolean(v),
		    want[c].strategy != AS_NONE);
		assert_true(is_uuid_v4(sget(e, "error_id")));
		assert_string_equal(sget(e, "error_id"), id);
		json_object_put(b);
	}
}

static void
test_apierr_body_fields_and_message(void **state)
{
	struct json_object *f, *b, *e, *arr;
	const char	   *s;

	(void)state;
	f = json_tokener_parse(
	    "[{\"field\":\"message\",\"problem\":\"required\"}]");
	assert_non_null(f);
	b = apierr_body(AE_VALIDATION_FAILED, "message is required", NULL, f,
	    NULL);
	assert_non_null(b);
	assert_true(json_object_object_get_ex(b, "error", &e));
	assert_int_equal(json_object_object_length(e), 8);
	assert_string_equal(sget(e, "message"), "message is required");
	assert_string_equal(sget(e, "request_id"), "");
	assert_true(json_object_object_get_ex(e, "fields", &arr));
	assert_true(json_object_is_type(arr, json_type_array));
	s = json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PLAIN);
	assert_string_equal(s,
	    "[{\"field\":\"message\",\"problem\":\"required\"}]");
	json_object_put(b); /* frees f as well (ASan checks) */

	/* INTERNAL never carries the caller's text. */
	b = apierr_body(AE_INTERNAL, "PQexec: relation \"x\" does not exist",
	    "r", NULL, NULL);
	assert_true(json_object_object_get_ex(b, "error", &e));
	assert_string_equal(sget(e, "message"),
	    apierr_def(AE_INTERNAL)->message);
	json_object_put(b);
}

static void
test_apierr_error_id_unique(void **state)
{
	struct json_object *b;
	char		    a[37], c[37];

	(void)state;
	b = apierr_body(AE_NOT_FOUND, NULL, "r", NULL, a);
	json_object_put(b);
	b = apierr_body(AE_NOT_FOUND, NULL, "r", NULL, c);
	json_object_put(b);
	assert_true(is_uuid_v4(a));
	assert_true(is_uuid_v4(c));
	assert_string_not_equal(a, c);
}

/* The default answer to each library error, written out independently. */
static void
test_apierr_from_err(void **state)
{
	static const struct {
		enum bw_err	 er;
		enum apierr_code want;
	} m[] = {
		{ BW_OK, AE_INTERNAL },
		{ BW_ENOMEM, AE_INTERNAL },
		{ BW_EINVAL, AE_VALIDATION_FAILED },
		{ BW_ETOOBIG, AE_PAYLOAD_TOO_LARGE },
		{ BW_ENOTFOUND, AE_NOT_FOUND },
		{ BW_EEXISTS, AE_DEPENDENCY_UNAVAILABLE },
		{ BW_EDB, AE_DEPENDENCY_UNAVAILABLE },
		{ BW_ERETRY, AE_DEPENDENCY_UNAVAILABLE },
		{ BW_EREDIS, AE_DEPENDENCY_UNAVAILABLE },
		{ BW_EIO, AE_DEPENDENCY_UNAVAILABLE },
		{ BW_ETIMEOUT, AE_DEPENDENCY_UNAVAILABLE },
		{ BW_EUPSTREAM, AE_UPSTREAM_UNAVAILABLE },
		{ BW_EBUSY, AE_CAPACITY_EXHAUSTED },
		{ BW_EAUTH, AE_UNAUTHENTICATED },
		{ BW_ECONFIG, AE_INTERNAL },
		{ BW_ECRYPTO, AE_INTERNAL },
		{ BW_ESTATE, AE_INVALID_STATE },
		{ BW_EAMBIG, AE_DEPENDENCY_UNAVAILABLE },
	};
	size_t i;

	(void)state;
	/* One row per error: a new bw_err must be given its answer here. */
	assert_int_equal(sizeof(m) / sizeof(m[0]), BW_ERR__MAX);
	for (i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
		assert_int_equal(m[i].er, (enum bw_err)i);
		if (apierr_from_err(m[i].er) != m[i].want)
			fail_msg("%s maps to %s, want %s", bw_strerror(m[i].er),
			    apierr_def(apierr_from_err(m[i].er))->code,
			    apierr_def(m[i].want)->code);
	}
	assert_int_equal(apierr_from_err(BW_ERR__MAX), AE_INTERNAL);
	assert_int_equal(apierr_from_err((enum bw_err) - 1), AE_INTERNAL);
}

/* Extras land beside "error" in the same body; "error" cannot be replaced. */
static void
test_apierr_extend(void **state)
{
	struct json_object *b, *x, *v;
	const char	   *before;
	char		    keep[2048];

	(void)state;
	b = apierr_body(AE_BUDGET_EXCEEDED, NULL, "r", NULL, NULL);
	assert_non_null(b);
	x = json_tokener_parse("{\"reply\":\"Sorry, later.\",\"n\":1}");
	assert_non_null(x);
	assert_int_equal(apierr_extend(b, x), BW_OK);
	assert_int_equal(json_object_object_length(b), 3);
	assert_true(json_object_object_get_ex(b, "error", NULL));
	assert_string_equal(sget(b, "reply"), "Sorry, later.");
	assert_true(json_object_object_get_ex(b, "n", &v));
	assert_int_equal(json_object_get_int(v), 1);
	json_object_put(x); /* not consumed: b holds its own references */
	assert_string_equal(sget(b, "reply"), "Sorry, later.");

	/* NULL adds nothing; "error" and non-objects are refused as they
	 * are, leaving the body untouched. */
	before = json_object_to_json_string_ext(b, JSON_C_TO_STRING_PLAIN);
	snprintf(keep, sizeof(keep), "%s", before);
	assert_int_equal(apierr_extend(b, NULL), BW_OK);
	x = json_tokener_parse("{\"error\":{},\"other\":true}");
	assert_int_equal(apierr_extend(b, x), BW_EINVAL);
	json_object_put(x);
	x = json_tokener_parse("[1]");
	assert_int_equal(apierr_extend(b, x), BW_EINVAL);
	json_object_put(x);
	assert_string_equal(json_object_to_json_string_ext(b,
				JSON_C_TO_STRING_PLAIN),
	    keep);
	json_object_put(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_apierr_table),
		cmocka_unit_test(test_apierr_strategy_names),
		cmocka_unit_test(test_apierr_body_shape),
		cmocka_unit_test(test_apierr_body_fields_and_message),
		cmocka_unit_test(test_apierr_error_id_unique),
		cmocka_unit_test(test_apierr_from_err),
		cmocka_unit_test(test_apierr_extend),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
