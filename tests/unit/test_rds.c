/* SPDX-License-Identifier: MIT */
/*
 * The pure parts of lib/core/rds.c: rds_int, which reads the integers of a
 * Lua script's reply (fed here as RESP bytes through hiredis's own reader,
 * so the replies are the ones a server would produce), and rds_word_ok,
 * the check on one segment of a key name.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/rds.h"

/* The reply hiredis parses from the RESP text resp (caller frees). */
static redisReply *
reply_of(const char *resp)
{
	redisReader *rd;
	void	    *rep = NULL;

	rd = redisReaderCreate();
	assert_non_null(rd);
	assert_int_equal(redisReaderFeed(rd, resp, strlen(resp)), REDIS_OK);
	assert_int_equal(redisReaderGetReply(rd, &rep), REDIS_OK);
	redisReaderFree(rd);
	if (rep == NULL)
		fail_msg("no whole reply in %s", resp);
	return rep;
}

struct icase {
	const char *resp;
	int	    i; /* < 0: the reply itself */
	long long   want;
};

static const struct icase icases[] = {
	/* Integer replies. */
	{ ":0\r\n", -1, 0 },
	{ ":1\r\n", -1, 1 },
	{ ":42\r\n", -1, 42 },
	{ ":9223372036854775807\r\n", -1, LLONG_MAX },
	/* Negative integers come back as they are; callers' values are not. */
	{ ":-7\r\n", -1, -7 },
	/* Not integers: strings that look like one, status, error, nil. */
	{ "$2\r\n42\r\n", -1, -1 },
	{ "$0\r\n\r\n", -1, -1 },
	{ "+OK\r\n", -1, -1 },
	{ "+1\r\n", -1, -1 },
	{ "-ERR wrong\r\n", -1, -1 },
	{ "$-1\r\n", -1, -1 },
	{ "*-1\r\n", -1, -1 },
	/* An array asked for as a whole. */
	{ "*1\r\n:5\r\n", -1, -1 },
	/* A non-array asked for an element. */
	{ ":5\r\n", 0, -1 },
	{ "$1\r\n5\r\n", 0, -1 },
	/* Array elements, each position. */
	{ "*3\r\n:1\r\n:0\r\n:1234\r\n", 0, 1 },
	{ "*3\r\n:1\r\n:0\r\n:1234\r\n", 1, 0 },
	{ "*3\r\n:1\r\n:0\r\n:1234\r\n", 2, 1234 },
	/* Past the end, and the empty array. */
	{ "*3\r\n:1\r\n:0\r\n:1234\r\n", 3, -1 },
	{ "*3\r\n:1\r\n:0\r\n:1234\r\n", INT_MAX, -1 },
	{ "*0\r\n", 0, -1 },
	/* Elements that are not integers. */
	{ "*2\r\n$1\r\n7\r\n:8\r\n", 0, -1 },
	{ "*2\r\n$1\r\n7\r\n:8\r\n", 1, 8 },
	{ "*2\r\n$-1\r\n:8\r\n", 0, -1 },
	{ "*2\r\n+OK\r\n-ERR x\r\n", 0, -1 },
	{ "*2\r\n+OK\r\n-ERR x\r\n", 1, -1 },
	/* A nested array is not its first integer. */
	{ "*1\r\n*1\r\n:5\r\n", 0, -1 },
};

static void
test_int_table(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(icases) / sizeof(icases[0]); i++) {
		redisReply *rep = reply_of(icases[i].resp);
		long long   got = rds_int(rep, icases[i].i);

		freeReplyObject(rep);
		if (got != icases[i].want)
			fail_msg("case %zu: rds_int(%d) = %lld, want %lld", i,
			    icases[i].i, got, icases[i].want);
	}
}

static void
test_int_null(void **state)
{
	(void)state;
	assert_int_equal(rds_int(NULL, -1), -1);
	assert_int_equal(rds_int(NULL, 0), -1);
}

/* A long array, as the semaphore and rate-limit scripts return. */
static void
test_int_long_array(void **state)
{
	char	    resp[4096];
	size_t	    off;
	redisReply *rep;
	int	    i, n;

	(void)state;
	off = (size_t)snprintf(resp, sizeof(resp), "*100\r\n");
	for (i = 0; i < 100; i++) {
		n = snprintf(resp + off, sizeof(resp) - off, ":%d\r\n", i * 3);
		assert_true(n > 0 && (size_t)n < sizeof(resp) - off);
		off += (size_t)n;
	}
	rep = reply_of(resp);
	for (i = 0; i < 100; i++)
		assert_int_equal(rds_int(rep, i), i * 3);
	assert_int_equal(rds_int(rep, 100), -1);
	freeReplyObject(rep);
}

struct wcase {
	const char *s;
	size_t	    max;
	int	    want;
};

static const struct wcase wcases[] = {
	{ "a", 1, 1 },
	{ "abc", 3, 1 },
	{ "abc", 2, 0 }, /* over max */
	{ "abcd", 64, 1 },
	{ "AZaz09_-", 8, 1 },
	{ "4f6c1e0a-1b2c-4d5e-8f90-a1b2c3d4e5f6", 36, 1 },
	{ "4f6c1e0a-1b2c-4d5e-8f90-a1b2c3d4e5f6", 35, 0 },
	{ "", 10, 0 },
	/* Characters that would change a key's meaning. */
	{ "a:b", 10, 0 },
	{ "{tag}", 10, 0 },
	{ "a}", 10, 0 },
	{ "a b", 10, 0 },
	{ "a*", 10, 0 },
	{ "a\r\n", 10, 0 },
	{ "a.b", 10, 0 },
	{ "a/b", 10, 0 },
	{ "\xc3\xa9", 10, 0 }, /* é: ASCII only */
	{ "a\x7f", 10, 0 },
};

static void
test_word_ok(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(wcases) / sizeof(wcases[0]); i++) {
		int got = rds_word_ok(wcases[i].s, wcases[i].max);

		if (got != wcases[i].want)
			fail_msg("rds_word_ok(\"%s\", %zu) = %d, want %d",
			    wcases[i].s, wcases[i].max, got, wcases[i].want);
	}
	assert_int_equal(rds_word_ok(NULL, 10), 0);
}

/* rds_set_sentinels(): the list as config.c admits it, or BW_ECONFIG. */
static void
test_set_sentinels(void **state)
{
	static const struct {
		const char *list, *name;
		enum bw_err want;
	} c[] = {
		{ "", "bulwark", BW_OK },
		{ "127.0.0.1:26379", "bulwark", BW_OK },
		{ "a:1, b:2 ,c:3", "m-1.x_y", BW_OK },
		{ "[::1]:26379,h:65535", "bulwark", BW_OK },
		{ "a:1,b:2,c:3,d:4,e:5", "bulwark", BW_OK },
		{ "a:1,b:2,c:3,d:4,e:5,f:6", "bulwark", BW_ECONFIG },
		{ "a", "bulwark", BW_ECONFIG },
		{ ":1", "bulwark", BW_ECONFIG },
		{ "a:0", "bulwark", BW_ECONFIG },
		{ "a:65536", "bulwark", BW_ECONFIG },
		{ "a:1,", "bulwark", BW_ECONFIG },
		{ "[::1]26379", "bulwark", BW_ECONFIG },
		{ "a:1", "", BW_ECONFIG },
		{ "a:1", "a b", BW_ECONFIG },
		{ "a:1", "a:b", BW_ECONFIG },
	};
	struct rds *r;
	size_t	    i;

	(void)state;
	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		r = rds_new("redis://:pw@ignored:1/2");
		assert_non_null(r);
		if (rds_set_sentinels(r, c[i].list, c[i].name) != c[i].want)
			fail_msg("%s / %s: not %d", c[i].list, c[i].name,
			    (int)c[i].want);
		rds_free(r);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_int_table),
		cmocka_unit_test(test_int_null),
		cmocka_unit_test(test_int_long_array),
		cmocka_unit_test(test_word_ok),
		cmocka_unit_test(test_set_sentinels),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
