/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for fcgi/resp.c's error answers: resp_fail()'s default
 * mapping with its status and Retry-After, resp_error_extra()'s members
 * beside "error" in one body, and resp_invalid()'s one-entry "fields".
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "resp.h"

static void
req_setup(struct req *r)
{
	memset(r, 0, sizeof(*r));
	r->method = "POST";
	snprintf(r->request_id, sizeof(r->request_id), "rid-1");
	buf_init(&r->body, 1024);
	buf_init(&r->hdrs, 1024);
	buf_init(&r->out, 65536);
	r->status = 200;
}

/* The answer's body, parsed (caller puts). */
static struct json_object *
req_body(const struct req *r)
{
	struct json_object *o;

	o = json_tokener_parse(buf_cstr(&r->out));
	assert_non_null(o);
	return o;
}

/* The error object's string member k. */
static const char *
err_str(struct json_object *body, const char *k)
{
	struct json_object *e, *v;

	assert_true(json_object_object_get_ex(body, "error", &e));
	if (!json_object_object_get_ex(e, k, &v))
		return NULL;
	return json_object_get_string(v);
}

static void
test_resp_fail(void **state)
{
	static const struct {
		enum bw_err er;
		int	    status;
		const char *code;
		int	    retry_after;
	} c[] = {
		{ BW_ENOTFOUND, 404, "NOT_FOUND", 0 },
		{ BW_ESTATE, 409, "INVALID_STATE", 0 },
		{ BW_EINVAL, 400, "VALIDATION_FAILED", 0 },
		{ BW_EDB, 503, "DEPENDENCY_UNAVAILABLE", 0 },
		{ BW_ETIMEOUT, 503, "DEPENDENCY_UNAVAILABLE", 0 },
		{ BW_ENOMEM, 500, "INTERNAL", 0 },
		{ BW_EUPSTREAM, 502, "UPSTREAM_UNAVAILABLE", 0 },
		{ BW_EBUSY, 503, "CAPACITY_EXHAUSTED", 1 },
	};
	struct json_object *b;
	struct req	    r;
	size_t		    i;

	(void)state;
	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		req_setup(&r);
		resp_fail(&r, c[i].er);
		assert_int_equal(r.status, c[i].status);
		assert_string_equal(r.err_code, c[i].code);
		b = req_body(&r);
		assert_string_equal(err_str(b, "error_code"), c[i].code);
		assert_string_equal(err_str(b, "request_id"), "rid-1");
		assert_null(err_str(b, "fields"));
		json_object_put(b);
		if (c[i].retry_after)
			assert_string_equal(buf_cstr(&r.hdrs),
			    "Retry-After: 1\r\n");
		else
			assert_int_equal(r.hdrs.len, 0);
		req_free(&r);
	}
	/* A Retry-After the handler chose is kept, not doubled. */
	req_setup(&r);
	resp_header(&r, "retry-after", "7");
	resp_fail(&r, BW_EBUSY);
	assert_string_equal(buf_cstr(&r.hdrs), "retry-after: 7\r\n");
	req_free(&r);
}

/* The 402 fallback: one body, "reply" beside "error", nothing else. */
static void
test_resp_error_extra(void **state)
{
	struct json_object *b, *x, *v;
	struct req	    r;

	(void)state;
	req_setup(&r);
	x = json_object_new_object();
	json_object_object_add(x, "reply", json_object_new_string("Later."));
	resp_error_extra(&r, AE_BUDGET_EXCEEDED, NULL, NULL, x);
	json_object_put(x);
	assert_int_equal(r.status, 402);
	assert_string_equal(r.err_code, "BUDGET_EXCEEDED");
	b = req_body(&r);
	assert_int_equal(json_object_object_length(b), 2);
	assert_string_equal(err_str(b, "error_code"), "BUDGET_EXCEEDED");
	assert_true(json_object_object_get_ex(b, "reply", &v));
	assert_string_equal(json_object_get_string(v), "Later.");
	json_object_put(b);
	/* "error" first, as the contract's examples show it. */
	assert_memory_equal(buf_cstr(&r.out), "{\"error\":{", 10);
	req_free(&r);

	/* Extras that would replace "error" are dropped, the error stays. */
	req_setup(&r);
	x = json_tokener_parse("{\"error\":\"x\"}");
	resp_error_extra(&r, AE_UPSTREAM_UNAVAILABLE, NULL, NULL, x);
	json_object_put(x);
	assert_int_equal(r.status, 502);
	b = req_body(&r);
	assert_int_equal(json_object_object_length(b), 1);
	assert_string_equal(err_str(b, "error_code"), "UPSTREAM_UNAVAILABLE");
	json_object_put(b);
	req_free(&r);
}

static void
test_resp_invalid(void **state)
{
	struct json_object *b, *e, *f;
	struct req	    r;

	(void)state;
	req_setup(&r);
	resp_invalid(&r, "from must be before to.", "to", "too_small");
	assert_int_equal(r.status, 400);
	b = req_body(&r);
	assert_string_equal(err_str(b, "error_code"), "VALIDATION_FAILED");
	assert_string_equal(err_str(b, "message"), "from must be before to.");
	assert_true(json_object_object_get_ex(b, "error", &e));
	assert_true(json_object_object_get_ex(e, "fields", &f));
	assert_string_equal(json_object_to_json_string_ext(f,
				JSON_C_TO_STRING_PLAIN),
	    "[{\"field\":\"to\",\"problem\":\"too_small\"}]");
	json_object_put(b);
	req_free(&r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_resp_fail),
		cmocka_unit_test(test_resp_error_extra),
		cmocka_unit_test(test_resp_invalid),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
