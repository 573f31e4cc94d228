/* SPDX-License-Identifier: MIT */
/* lib/platform/pcache.c: bounds and eviction, TTL, generation flushes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "chat/settings_cache.h"
#include "platform/pcache.h"

static int64_t fake_now;

static int64_t
fake_clock(void)
{
	return fake_now;
}

static int
setup(void **state)
{
	(void)state;
	fake_now = 1000000;
	pcache_set_clock(fake_clock);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	pcache_set_clock(NULL);
	(void)pcache_setup(0, 0);
	return 0;
}

/* Puts key "k<i>" = i into cache id. */
static void
put_i(enum pcache_id id, int i)
{
	char key[16];
	int  n = snprintf(key, sizeof(key), "k%d", i);

	assert_int_equal(pcache_put(id, key, (size_t)n, &i, sizeof(i), 0),
	    BW_OK);
}

/* The value of "k<i>" in id, or -1. */
static int
get_i(enum pcache_id id, int i)
{
	char	    key[16];
	int	    n = snprintf(key, sizeof(key), "k%d", i), v;
	size_t	    vlen = 0;
	const void *p = pcache_get(id, key, (size_t)n, &vlen);

	if (p == NULL)
		return -1;
	assert_int_equal(vlen, sizeof(v));
	memcpy(&v, p, sizeof(v));
	return v;
}

static void
test_off(void **state)
{
	(void)state;
	assert_int_equal(pcache_setup(0, 8), BW_OK);
	assert_false(pcache_enabled());
	(void)pcache_gen_observe("g1");
	put_i(PC_AUTH, 1);
	assert_int_equal(get_i(PC_AUTH, 1), -1);
	assert_int_equal(pcache_count(PC_AUTH), 0);
}

static void
test_unknown_generation_stores_nothing(void **state)
{
	(void)state;
	assert_int_equal(pcache_setup(60, 8), BW_OK);
	assert_true(pcache_enabled());
	assert_string_equal(pcache_gen(), "");
	put_i(PC_AUTH, 1);
	assert_int_equal(get_i(PC_AUTH, 1), -1);
	/* Unknown -> known: nothing to flush. */
	assert_int_equal(pcache_gen_observe("g1"), 0);
	put_i(PC_AUTH, 1);
	assert_int_equal(get_i(PC_AUTH, 1), 1);
}

static void
test_bounded_oldest_evicted(void **state)
{
	int i;

	(void)state;
	assert_int_equal(pcache_setup(60, 4), BW_OK);
	(void)pcache_gen_observe("g1");
	for (i = 0; i < 4; i++)
		put_i(PC_RATE, i);
	for (i = 0; i < 4; i++)
		assert_int_equal(get_i(PC_RATE, i), i);
	put_i(PC_RATE, 4); /* full: k0, the oldest insert, goes */
	assert_int_equal(pcache_count(PC_RATE), 4);
	assert_int_equal(get_i(PC_RATE, 0), -1);
	for (i = 1; i <= 4; i++)
		assert_int_equal(get_i(PC_RATE, i), i);
	/* Replacing a key does not take a new slot. */
	i = 40;
	assert_int_equal(pcache_put(PC_RATE, "k4", 2, &i, sizeof(i), 0), BW_OK);
	assert_int_equal(get_i(PC_RATE, 4), 40);
	assert_int_equal(get_i(PC_RATE, 1), 1);
	assert_int_equal(pcache_count(PC_RATE), 4);
	/* Many more: still 4, and the caches are separate. */
	for (i = 5; i < 1000; i++)
		put_i(PC_RATE, i);
	assert_int_equal(pcache_count(PC_RATE), 4);
	for (i = 996; i < 1000; i++)
		assert_int_equal(get_i(PC_RATE, i), i);
	assert_int_equal(get_i(PC_AUTH, 999), -1);
}

static void
test_ttl(void **state)
{
	(void)state;
	assert_int_equal(pcache_setup(60, 8), BW_OK);
	(void)pcache_gen_observe("g1");
	put_i(PC_AUTH, 1);
	fake_now += 59999999;
	assert_int_equal(get_i(PC_AUTH, 1), 1);
	fake_now += 1;
	assert_int_equal(get_i(PC_AUTH, 1), -1);
	/* A shorter max age wins over the TTL, a longer one does not. */
	assert_int_equal(pcache_put(PC_AUTH, "a", 1, "x", 1, 2000), BW_OK);
	assert_int_equal(pcache_put(PC_AUTH, "b", 1, "y", 1, 600000), BW_OK);
	fake_now += 2000 * 1000;
	assert_null(pcache_get(PC_AUTH, "a", 1, NULL));
	assert_non_null(pcache_get(PC_AUTH, "b", 1, NULL));
	fake_now += 58000 * 1000;
	assert_null(pcache_get(PC_AUTH, "b", 1, NULL));
}

static void
test_generation_flush(void **state)
{
	(void)state;
	assert_int_equal(pcache_setup(60, 8), BW_OK);
	(void)pcache_gen_observe("g1");
	put_i(PC_AUTH, 1);
	put_i(PC_AUTH_NEG, 2);
	put_i(PC_CHAT_SETTINGS, 3);
	assert_int_equal(pcache_gen_observe("g1"), 0);
	assert_int_equal(get_i(PC_AUTH, 1), 1);
	/* Any other value flushes every cache, also one that sorts lower. */
	assert_int_equal(pcache_gen_observe("g0"), 1);
	assert_string_equal(pcache_gen(), "g0");
	assert_int_equal(get_i(PC_AUTH, 1), -1);
	assert_int_equal(get_i(PC_AUTH_NEG, 2), -1);
	assert_int_equal(get_i(PC_CHAT_SETTINGS, 3), -1);
	assert_int_equal(pcache_count(PC_AUTH), 0);
	/* Redis did not answer: flush, and nothing is stored until it does. */
	put_i(PC_AUTH, 1);
	assert_int_equal(pcache_gen_observe(NULL), 1);
	assert_string_equal(pcache_gen(), "");
	put_i(PC_AUTH, 1);
	assert_int_equal(get_i(PC_AUTH, 1), -1);
	assert_int_equal(pcache_gen_observe(""), 0);
	/* Back: even the value of before the outage starts empty. */
	assert_int_equal(pcache_gen_observe("g0"), 0);
	assert_int_equal(get_i(PC_AUTH, 1), -1);
}

static void
test_bad_args(void **state)
{
	char big[PCACHE_KEY_MAX + 1];

	(void)state;
	memset(big, 'k', sizeof(big));
	assert_int_equal(pcache_setup(60, 8), BW_OK);
	(void)pcache_gen_observe("g1");
	assert_int_equal(pcache_put(PC_AUTH, big, sizeof(big), "v", 1, 0),
	    BW_EINVAL);
	assert_int_equal(pcache_put(PC__MAX, "k", 1, "v", 1, 0), BW_EINVAL);
	assert_null(pcache_get(PC_AUTH, big, sizeof(big), NULL));
	/* A value too large is simply not cached. */
	assert_int_equal(pcache_put(PC_AUTH, "k", 1, big, PCACHE_VAL_MAX + 1,
			     0),
	    BW_OK);
	assert_null(pcache_get(PC_AUTH, "k", 1, NULL));
}

static void
test_settings_max_age(void **state)
{
	const int64_t m = SETTINGS_CACHE_MARGIN_MS,
		      x = SETTINGS_CACHE_MAX_AGE_MS;
	const int64_t t = 5000000; /* a monotonic reading */

	(void)state;
	/* Early in the day: kept the hour, less the read's time and margin. */
	assert_int_equal(settings_cache_max_age_ms(20 * x, t, t + 5),
	    x - 5 - m);
	/* Late in the day: until it ends, less the read's time and margin. */
	assert_int_equal(settings_cache_max_age_ms(60000, t, t + 5),
	    60000 - 5 - m);
	/* Too close to the day's end, or a read slower than what was left. */
	assert_int_equal(settings_cache_max_age_ms(m, t, t), 0);
	assert_int_equal(settings_cache_max_age_ms(m + 100, t, t + 100), 0);
	assert_true(settings_cache_max_age_ms(m + 101, t, t + 100) > 0);
	/* A clock that went back, or no day left: not kept. */
	assert_int_equal(settings_cache_max_age_ms(60000, t, t - 1), 0);
	assert_int_equal(settings_cache_max_age_ms(0, t, t), 0);
	assert_int_equal(settings_cache_max_age_ms(-5, t, t), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_off, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_unknown_generation_stores_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bounded_oldest_evicted,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_ttl, setup, teardown),
		cmocka_unit_test_setup_teardown(test_generation_flush, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_bad_args, setup, teardown),
		cmocka_unit_test_setup_teardown(test_settings_max_age, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
