/* SPDX-License-Identifier: MIT */
/*
 * Budget arithmetic (lib/chat/budget.c): the cost in micros rounds up and
 * saturates, the input bound covers every byte, and the output allowance
 * chosen to fit a remaining budget is the largest that fits — checked
 * against a brute-force search over many random cases.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "chat/budget.h"

struct costcase {
	int64_t in_tok, out_tok, in_price, out_price, want;
};

static void
test_cost(void **state)
{
	static const struct costcase cases[] = {
		{ 0, 0, 2500000, 10000000, 0 },
		/* 1 token at 2.5 µ$/token: 2.5 micros, rounded up to 3. */
		{ 1, 0, 2500000, 10000000, 3 },
		{ 0, 1, 2500000, 10000000, 10 },
		{ 1000, 500, 2500000, 10000000, 7500 },
		/* Exactly one micro: no rounding. */
		{ 1, 0, 1000000, 0, 1 },
		{ 1, 0, 1000001, 0, 2 },
		/* Saturation instead of overflow. */
		{ INT64_MAX, 1, 2, 2, INT64_MAX },
		{ INT64_MAX / 2, INT64_MAX / 2, INT64_MAX, INT64_MAX,
		    INT64_MAX },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(budget_cost(cases[i].in_tok, cases[i].out_tok,
				     cases[i].in_price, cases[i].out_price),
		    cases[i].want);
}

static void
test_input_bound(void **state)
{
	(void)state;
	/* Every byte may be a token: the bound is at least the bytes. */
	assert_true(budget_input_bound(4000, 1) >= 4000);
	assert_true(budget_input_bound(4000, 10) > budget_input_bound(4000, 1));
	assert_true(budget_input_bound(-5, -1) >= 0);
	assert_int_equal(budget_input_bound(INT64_MAX, 3), INT64_MAX);
}

/* The largest out <= want whose hold fits, by brute force; -1 if none. */
static int64_t
fit_oracle(int64_t remaining, int64_t in_bound, int attempts, int64_t ip,
    int64_t op, int64_t want)
{
	int64_t out;

	for (out = want; out >= 0; out--)
		if (budget_cost(in_bound * attempts, out, ip, op) <= remaining)
			return out;
	return -1;
}

static void
test_fit_tokens(void **state)
{
	int i;

	(void)state;
	srand(42);
	for (i = 0; i < 3000; i++) {
		int64_t remaining = rand() % 20000;
		int64_t in_bound = rand() % 3000;
		int	attempts = 1 + rand() % 3;
		int64_t ip = 100000 + rand() % 5000000;
		int64_t op = 100000 + rand() % 20000000;
		int64_t want = rand() % 1024;
		int64_t got, exp;

		got = budget_fit_tokens(remaining, in_bound, attempts, ip, op,
		    want);
		exp = fit_oracle(remaining, in_bound, attempts, ip, op, want);
		assert_int_equal(got, exp);
		/* Never more than asked, and the hold never exceeds what is
		 * left: the property the hard stop rests on. */
		if (got >= 0) {
			assert_true(got <= want);
			assert_true(budget_cost(in_bound * attempts, got, ip,
					op) <= remaining);
		}
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cost),
		cmocka_unit_test(test_input_bound),
		cmocka_unit_test(test_fit_tokens),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
