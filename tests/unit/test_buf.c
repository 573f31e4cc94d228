/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for lib/core/buf.c: the maximum is never exceeded, growth keeps the
 * contents, printf and JSON string escaping are exact, take and reset leave
 * the buffer in the documented state.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/buf.h"

static void
test_buf_empty(void **state)
{
	struct buf b;
	char	  *p;

	(void)state;
	buf_init(&b, 10);
	assert_null(b.p);
	assert_int_equal(b.len, 0);
	assert_string_equal(buf_cstr(&b), "");
	p = buf_take(&b);
	assert_non_null(p);
	assert_string_equal(p, "");
	free(p);
	buf_free(&b);
	buf_free(&b); /* twice is harmless */
	assert_int_equal(b.max, 10);
}

static void
test_buf_bounds(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 8);
	assert_int_equal(buf_addstr(&b, "12345678"), BW_OK);
	assert_int_equal(b.len, 8);
	/* One more byte is refused and nothing changes. */
	assert_int_equal(buf_addc(&b, 'x'), BW_ETOOBIG);
	assert_int_equal(buf_add(&b, "", 0), BW_OK);
	assert_int_equal(b.len, 8);
	assert_string_equal(buf_cstr(&b), "12345678");
	assert_true(b.cap <= b.max + 1);
	buf_free(&b);

	buf_init(&b, 8);
	assert_int_equal(buf_addstr(&b, "1234"), BW_OK);
	assert_int_equal(buf_addstr(&b, "56789"), BW_ETOOBIG);
	assert_string_equal(buf_cstr(&b), "1234");
	/* A length that would overflow size_t arithmetic is refused. */
	assert_int_equal(buf_add(&b, "x", (size_t)-1), BW_ETOOBIG);
	assert_int_equal(buf_printf(&b, "%s", "123456789"), BW_ETOOBIG);
	assert_string_equal(buf_cstr(&b), "1234");
	buf_free(&b);

	buf_init(&b, 0);
	assert_int_equal(buf_addc(&b, 'a'), BW_ETOOBIG);
	assert_int_equal(buf_add(&b, "", 0), BW_OK);
	assert_string_equal(buf_cstr(&b), "");
	buf_free(&b);
}

static void
test_buf_growth(void **state)
{
	struct buf b;
	size_t	   i;
	char	   c;

	(void)state;
	buf_init(&b, 100000);
	for (i = 0; i < 100000; i++) {
		c = (char)('a' + i % 26);
		assert_int_equal(buf_addc(&b, c), BW_OK);
	}
	assert_int_equal(b.len, 100000);
	assert_int_equal(strlen(b.p), 100000);
	for (i = 0; i < 100000; i++)
		assert_int_equal(b.p[i], 'a' + i % 26);
	assert_true(b.cap <= b.max + 1);
	assert_int_equal(buf_addc(&b, 'z'), BW_ETOOBIG);
	buf_free(&b);
}

static void
test_buf_printf(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 1024);
	assert_int_equal(buf_printf(&b, "%d-%s-%05.1f", 42, "x", 3.14159),
	    BW_OK);
	assert_int_equal(buf_printf(&b, "|%zu", (size_t)7), BW_OK);
	assert_string_equal(buf_cstr(&b), "42-x-003.1|7");
	assert_int_equal(b.len, strlen("42-x-003.1|7"));
	assert_int_equal(buf_printf(&b, "%s", ""), BW_OK);
	assert_int_equal(b.len, strlen("42-x-003.1|7"));
	buf_free(&b);
}

static void
test_buf_jsonstr(void **state)
{
	static const struct {
		const char *in;
		size_t	    n;
		const char *want;
	} c[] = {
		{ "plain", 5, "\"plain\"" },
		{ "", 0, "\"\"" },
		{ "q\"b\\s/", 6, "\"q\\\"b\\\\s/\"" },
		{ "a\nb\rc\td", 7, "\"a\\nb\\rc\\td\"" },
		{ "\x01\x1f\x7f", 3, "\"\\u0001\\u001f\\u007f\"" },
		{ "nul\0x", 5, "\"nul\\u0000x\"" },
		{ "ไทย", 9, "\"ไทย\"" },
	};
	struct buf b;
	size_t	   i;

	(void)state;
	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		buf_init(&b, 256);
		assert_int_equal(buf_addjsonstr(&b, c[i].in, c[i].n), BW_OK);
		assert_string_equal(buf_cstr(&b), c[i].want);
		buf_free(&b);
	}
	/* An escape that does not fit is refused. */
	buf_init(&b, 4);
	assert_int_equal(buf_addjsonstr(&b, "\x01", 1), BW_ETOOBIG);
	assert_true(b.len <= 4);
	buf_free(&b);
}

static void
test_buf_take_reset(void **state)
{
	struct buf b;
	char	  *p;
	size_t	   cap;

	(void)state;
	buf_init(&b, 64);
	assert_int_equal(buf_addstr(&b, "hello"), BW_OK);
	cap = b.cap;
	buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, cap); /* memory kept */
	assert_string_equal(buf_cstr(&b), "");
	assert_int_equal(buf_addstr(&b, "again"), BW_OK);
	p = buf_take(&b);
	assert_string_equal(p, "again");
	assert_null(b.p);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.max, 64);
	/* The buffer is usable after take, and the taken memory is ours. */
	assert_int_equal(buf_addstr(&b, "next"), BW_OK);
	assert_string_equal(buf_cstr(&b), "next");
	free(p);
	buf_free(&b);
	buf_reset(&b); /* on an empty buffer */
	assert_int_equal(b.len, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buf_empty),
		cmocka_unit_test(test_buf_bounds),
		cmocka_unit_test(test_buf_growth),
		cmocka_unit_test(test_buf_printf),
		cmocka_unit_test(test_buf_jsonstr),
		cmocka_unit_test(test_buf_take_reset),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
