/* SPDX-License-Identifier: MIT */
/* Request and correlation id rules (CONTRACT.md) and bearer parsing. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "req.h"

static void
test_id_valid(void **state)
{
	char long_ok[129], too_long[130];

	(void)state;
	memset(long_ok, 'a', 128);
	long_ok[128] = '\0';
	memset(too_long, 'a', 129);
	too_long[129] = '\0';
	assert_true(req_id_valid("abc-123"));
	assert_true(req_id_valid("A.b_c-9"));
	assert_true(req_id_valid(long_ok));
	assert_false(req_id_valid(too_long));
	assert_false(req_id_valid(""));
	assert_false(req_id_valid(NULL));
	assert_false(req_id_valid("a b"));
	assert_false(req_id_valid("a\r\nX-Evil: 1"));
	assert_false(req_id_valid("a/b"));
	assert_false(req_id_valid("\xe0\xb8\x81"));
}

static void
test_traceparent(void **state)
{
	char out[33];

	(void)state;
	assert_true(req_traceparent(
	    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", out));
	assert_string_equal(out, "4bf92f3577b34da6a3ce929d0e0e4736");
	/* Upper-case hex, version ff, zero ids, bad length: refused. */
	assert_false(req_traceparent(
	    "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", out));
	assert_false(req_traceparent(
	    "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", out));
	assert_false(req_traceparent(
	    "00-00000000000000000000000000000000-00f067aa0ba902b7-01", out));
	assert_false(req_traceparent(
	    "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", out));
	assert_false(req_traceparent(
	    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-xx", out));
	assert_false(req_traceparent("00-4bf9", out));
	assert_false(req_traceparent(NULL, out));
	/* A future version may carry more fields after a dash. */
	assert_true(req_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-"
				    "00f067aa0ba902b7-01-extra",
	    out));
}

struct idcase {
	const char *nrid, *crid, *ncid, *ccid, *tp;
	const char *want_rid, *want_cid;
};

static void
test_pick_ids(void **state)
{
	static const struct idcase cases[] = {
		{ "ngx1", NULL, NULL, NULL, NULL, "ngx1", "ngx1" },
		{ NULL, "abc-123", NULL, NULL, NULL, "abc-123", "abc-123" },
		{ NULL, "bad id", NULL, NULL, NULL, "fallback", "fallback" },
		{ "ngx1", "abc", NULL, "corr-1", NULL, "ngx1", "corr-1" },
		{ "ngx1", NULL, NULL, "bad corr",
		    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		    "ngx1", "4bf92f3577b34da6a3ce929d0e0e4736" },
		{ "ngx1", NULL, "ncid", NULL, "garbage", "ngx1", "ncid" },
	};
	char   rid[BW_MAX_REQUEST_ID + 1], cid[BW_MAX_REQUEST_ID + 1];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		req_pick_ids(cases[i].nrid, cases[i].crid, cases[i].ncid,
		    cases[i].ccid, cases[i].tp, "fallback", rid, cid);
		assert_string_equal(rid, cases[i].want_rid);
		assert_string_equal(cid, cases[i].want_cid);
	}
}

static void
test_bearer(void **state)
{
	const char *tok;
	size_t	    len;

	(void)state;
	assert_true(req_bearer("Bearer bwk_abc", &tok, &len));
	assert_int_equal(len, 7);
	assert_memory_equal(tok, "bwk_abc", 7);
	assert_true(req_bearer("bearer   xyz  ", &tok, &len));
	assert_int_equal(len, 3);
	assert_false(req_bearer("Basic dXNlcjpwYXNz", &tok, &len));
	assert_false(req_bearer("Bearer", &tok, &len));
	assert_false(req_bearer("Bearer ", &tok, &len));
	assert_false(req_bearer("Bearerxyz", &tok, &len));
	assert_false(req_bearer(NULL, &tok, &len));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_id_valid),
		cmocka_unit_test(test_traceparent),
		cmocka_unit_test(test_pick_ids),
		cmocka_unit_test(test_bearer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
