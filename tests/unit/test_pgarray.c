/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for lib/core/pgarray.c: every element quoted, quotes and
 * backslashes escaped, NULL elements written NULL, the empty array, and a
 * full buffer reported, never overrun.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/pgarray.h"

static void
test_pgarray_quotes(void **state)
{
	const char *v[] = { "a", "b\"c", "d\\e", "", "{x,y}", "NULL" };
	struct buf  b;

	(void)state;
	buf_init(&b, 256);
	assert_int_equal(pgarray_text(&b, v, 6), BW_OK);
	assert_string_equal(buf_cstr(&b),
	    "{\"a\",\"b\\\"c\",\"d\\\\e\",\"\",\"{x,y}\",\"NULL\"}");
	buf_free(&b);
}

static void
test_pgarray_null_and_empty(void **state)
{
	const char *v[] = { NULL, "7", NULL };
	struct buf  b;

	(void)state;
	buf_init(&b, 64);
	assert_int_equal(pgarray_text(&b, v, 3), BW_OK);
	assert_string_equal(buf_cstr(&b), "{NULL,\"7\",NULL}");
	buf_reset(&b);
	assert_int_equal(pgarray_text(&b, v, 0), BW_OK);
	assert_string_equal(buf_cstr(&b), "{}");
	buf_free(&b);
}

static void
test_pgarray_full(void **state)
{
	const char *v[] = { "0123456789", "0123456789" };
	struct buf  b;

	(void)state;
	buf_init(&b, 16);
	assert_int_not_equal(pgarray_text(&b, v, 2), BW_OK);
	assert_true(b.len <= 16);
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pgarray_quotes),
		cmocka_unit_test(test_pgarray_null_and_empty),
		cmocka_unit_test(test_pgarray_full),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
