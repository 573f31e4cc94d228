/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for fcgi/mw_input.c: a route's body schema is checked before
 * its handler, with the contract's 400 bodies (INVALID_JSON; VALIDATION_
 * FAILED listing every problem in "fields"), and the handler gets the
 * validated object in r->in; routes without a schema are left alone.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "mw_input.h"
#include "resp.h"
#include "route.h"

static void
h_none(struct req *r)
{
	(void)r;
}

/* The booking schema's shape (fcgi/routes.c). */
static const struct jv_field fields[] = {
	{ .name = "user_id",
	    .type = JV_STRING,
	    .required = 1,
	    .min = 1,
	    .max = 128 },
	{ .name = "class_id",
	    .type = JV_STRING,
	    .required = 1,
	    .min = 1,
	    .max = 64 },
	{ .name = "credits",
	    .type = JV_INT,
	    .required = 1,
	    .min = 1,
	    .max = 1000 },
};

static const struct route with_schema = { .method = "POST",
	.pattern = "/b",
	.name = "b",
	.max_body = 4096,
	.fn = h_none,
	.fields = fields,
	.nfields = sizeof(fields) / sizeof(fields[0]) };
static const struct route without_schema = { .method = "POST",
	.pattern = "/w",
	.name = "w",
	.max_body = 4096,
	.fn = h_none };

static void
req_setup(struct req *r, const struct route *rt, const char *body)
{
	memset(r, 0, sizeof(*r));
	r->method = "POST";
	snprintf(r->request_id, sizeof(r->request_id), "rid-2");
	buf_init(&r->body, 4096);
	buf_init(&r->hdrs, 1024);
	buf_init(&r->out, 65536);
	r->status = 200;
	r->route = rt;
	if (body != NULL)
		assert_int_equal(buf_addstr(&r->body, body), BW_OK);
}

/* The answer's error member k as a compact string ("" when absent). */
static const char *
err_member(const struct req *r, const char *k, char *out, size_t n)
{
	struct json_object *b, *e, *v;

	b = json_tokener_parse(buf_cstr(&r->out));
	assert_non_null(b);
	assert_true(json_object_object_get_ex(b, "error", &e));
	if (!json_object_object_get_ex(e, k, &v))
		snprintf(out, n, "%s", "");
	else if (json_object_is_type(v, json_type_string))
		snprintf(out, n, "%s", json_object_get_string(v));
	else
		snprintf(out, n, "%s",
		    json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
	json_object_put(b);
	return out;
}

#define P(f, p) "{\"field\":\"" f "\",\"problem\":\"" p "\"}"

static void
test_mw_input_refused(void **state)
{
	static const struct {
		const char *body;
		const char *code;
		const char *fields; /* "" when none */
	} c[] = {
		{ NULL, "INVALID_JSON", "" },
		{ "", "INVALID_JSON", "" },
		{ "{", "INVALID_JSON", "" },
		{ "[1]", "INVALID_JSON", "" },
		{ "{\"a\":1} x", "INVALID_JSON", "" },
		{ "{}", "VALIDATION_FAILED",
		    "[" P("user_id", "required") "," P("class_id",
			"required") "," P("credits", "required") "]" },
		{ "{\"user_id\":\"u\",\"credits\":0,\"x\":1}",
		    "VALIDATION_FAILED",
		    "[" P("class_id", "required") "," P("credits",
			"too_small") "," P("x", "unknown_field") "]" },
		{ "{\"user_id\":\"\",\"class_id\":7,\"credits\":1.5}",
		    "VALIDATION_FAILED",
		    "[" P("user_id", "too_short") "," P("class_id",
			"wrong_type") "," P("credits", "wrong_type") "]" },
	};
	struct req r;
	char	   got[1024];
	size_t	   i;

	(void)state;
	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		req_setup(&r, &with_schema, c[i].body);
		if (mw_input(&r) != 0)
			fail_msg("case %zu: admitted", i);
		assert_null(r.in);
		assert_int_equal(r.status, 400);
		assert_string_equal(r.err_code, c[i].code);
		assert_string_equal(err_member(&r, "error_code", got,
					sizeof(got)),
		    c[i].code);
		assert_string_equal(err_member(&r, "request_id", got,
					sizeof(got)),
		    "rid-2");
		assert_string_equal(err_member(&r, "fields", got, sizeof(got)),
		    c[i].fields);
		req_free(&r);
	}
}

static void
test_mw_input_admitted(void **state)
{
	struct req r;

	(void)state;
	req_setup(&r, &with_schema,
	    "{\"user_id\":\"u-1\",\"class_id\":\"yoga\",\"credits\":3}");
	assert_int_equal(mw_input(&r), 1);
	assert_non_null(r.in);
	assert_string_equal(jv_str(r.in, "user_id", ""), "u-1");
	assert_string_equal(jv_str(r.in, "class_id", ""), "yoga");
	assert_int_equal(jv_int(r.in, "credits", 0), 3);
	/* Nothing answered yet: the handler does. */
	assert_int_equal(r.status, 200);
	assert_int_equal(r.out.len, 0);
	assert_null(r.err_code);
	req_free(&r); /* puts r.in (ASan checks) */
	assert_null(r.in);

	/* No schema: the body is the handler's, even when it is not JSON. */
	req_setup(&r, &without_schema, "not json");
	assert_int_equal(mw_input(&r), 1);
	assert_null(r.in);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.out.len, 0);
	req_free(&r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mw_input_refused),
		cmocka_unit_test(test_mw_input_admitted),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
