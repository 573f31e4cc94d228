/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the share of a grant that refunds take back
 * (credit_refund_share(), lib/money/credit_refund.c): proportional,
 * rounded down over the refunds of a payment together, never more than
 * the grant, exact past 64-bit products.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "core/limits.h"
#include "money/credit.h"

/* The figures of the issue and the edges. */
static void
test_share_cases(void **state)
{
	static const struct {
		int64_t credits, refunded, paid, want;
	} c[] = {
		/* 100 credits for 10.00: 1.00, then 3.00 refunded in all. */
		{ 100, 100, 1000, 10 },
		{ 100, 300, 1000, 30 },
		{ 100, 1000, 1000, 100 },
		/* Past the payment: the grant, no more. */
		{ 100, 1200, 1000, 100 },
		/* Rounded down: 7 * 1/3 = 2.33. */
		{ 7, 1, 3, 2 },
		{ 7, 2, 3, 4 },
		{ 7, 3, 3, 7 },
		{ 100, 333, 1000, 33 },
		{ 100, 999, 1000, 99 },
		/* One cent of a large payment takes nothing yet. */
		{ 100, 1, 1000, 0 },
		/* Nothing refunded, nothing granted. */
		{ 100, 0, 1000, 0 },
		{ 0, 500, 1000, 0 },
		{ -5, 500, 1000, 0 },
		/* The payment's amount unknown: the whole grant. */
		{ 100, 100, 0, 100 },
		/* credits * refunded past INT64_MAX (10^9 * 10^15). */
		{ BW_MAX_WEBHOOK_CREDITS, BW_MAX_WEBHOOK_MONEY - 1,
		    BW_MAX_WEBHOOK_MONEY, BW_MAX_WEBHOOK_CREDITS - 1 },
		{ INT64_MAX, INT64_MAX - 1, INT64_MAX, INT64_MAX - 1 },
	};
	size_t	i;
	int64_t got;

	(void)state;
	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		got =
		    credit_refund_share(c[i].credits, c[i].refunded, c[i].paid);
		if (got != c[i].want)
			fail_msg("share(%lld, %lld, %lld) = %lld, want %lld",
			    (long long)c[i].credits, (long long)c[i].refunded,
			    (long long)c[i].paid, (long long)got,
			    (long long)c[i].want);
	}
}

/*
 * Every grant of 1..40 credits for a payment of 1..60, every refunded
 * amount: the share is the exact floor, grows with the refunded amount,
 * stays within the grant and reaches it at a full refund. So refunds
 * applied one after the other (each taking share(total now) minus what
 * was taken before) never take back more than the grant in all.
 */
static void
test_share_floor(void **state)
{
	int64_t c, p, r, s, prev;

	(void)state;
	for (c = 1; c <= 40; c++)
		for (p = 1; p <= 60; p++) {
			prev = 0;
			for (r = 0; r <= p + 2; r++) {
				s = credit_refund_share(c, r, p);
				if (r <= p &&
				    (s * p > c * r || (s + 1) * p <= c * r))
					fail_msg("share(%lld, %lld, %lld) = "
						 "%lld is not the floor",
					    (long long)c, (long long)r,
					    (long long)p, (long long)s);
				if (s < prev || s > c)
					fail_msg("share(%lld, %lld, %lld) = "
						 "%lld: not monotone within "
						 "the grant",
					    (long long)c, (long long)r,
					    (long long)p, (long long)s);
				prev = s;
			}
			assert_int_equal(credit_refund_share(c, p, p), c);
		}
}

/* Three refunds of a third each take back the whole grant, no more. */
static void
test_share_sequence(void **state)
{
	static const int64_t refunds[] = { 333, 333, 334 };
	int64_t		     total = 0, taken = 0, share;
	size_t		     i;

	(void)state;
	for (i = 0; i < 3; i++) {
		total += refunds[i];
		share = credit_refund_share(100, total, 1000);
		assert_true(share >= taken);
		taken = share;
	}
	assert_int_equal(taken, 100);
	assert_string_equal(credit_refund_outcome_name(CREFUND_EARLY), "early");
	assert_string_equal(credit_refund_outcome_name(CREFUND__MAX), "?");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_share_cases),
		cmocka_unit_test(test_share_floor),
		cmocka_unit_test(test_share_sequence),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
