/* SPDX-License-Identifier: MIT */
/*
 * Budget arithmetic (lib/chat/budget.c): the cost in micros rounds up and
 * saturates, the input bound is never below what the provider counts
 * (every byte-level BPE segmentation; the simulator's ceil(bytes / 4)),
 * the output allowance chosen to fit a remaining budget is the largest
 * that fits — checked against a brute-force search and against the closed
 * form the hold statement computes — and a hold of one attempt grown by
 * budget_extend_micros() before each retry covers every charge.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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
	/* The default rule: every byte may be a token. */
	assert_true(
	    budget_input_bound(4000, 1, 1, BUDGET_MSG_OVERHEAD) >= 4000);
	assert_true(budget_input_bound(4000, 10, 1, BUDGET_MSG_OVERHEAD) >
	    budget_input_bound(4000, 1, 1, BUDGET_MSG_OVERHEAD));
	assert_true(budget_input_bound(-5, -1, 1, -1) >= 0);
	assert_int_equal(budget_input_bound(INT64_MAX, 3, 1, 16), INT64_MAX);
	assert_int_equal(budget_input_bound(INT64_MAX, 3, 4, 16),
	    INT64_MAX / 4 + 1 + 48);
	assert_int_equal(budget_input_bound(100, INT32_MAX, 1, 1000),
	    100 + (int64_t)INT32_MAX * 1000);
	/* A rule below 1 byte per token counts as 1 (never looser). */
	assert_int_equal(budget_input_bound(401, 0, 0, 0), 401);
	/* 4 bytes per token rounds up. */
	assert_int_equal(budget_input_bound(401, 2, 4, 0), 101);
	assert_int_equal(budget_input_bound(400, 2, 4, 3), 106);
}

/*
 * The simulator's count (tools/sim/llm_sim.py completion()):
 * ceil(sum of content bytes / 4).
 */
static int64_t
sim_prompt_tokens(int64_t bytes)
{
	return (bytes + 3) / 4;
}

static void
test_input_bound_covers_count(void **state)
{
	int i, j;

	(void)state;
	srand(7);
	for (i = 0; i < 5000; i++) {
		int	nmsg = 1 + rand() % 20;
		int64_t bytes = 0, tokens = 0, b, left;

		for (j = 0; j < nmsg; j++) {
			b = rand() % 5000;
			bytes += b;
			/*
			 * A byte-level BPE: any segmentation of the message's
			 * bytes into tokens of at least one byte each, plus
			 * the chat framing OpenAI documents (3 per message,
			 * 1 for the role; 3 priming the reply).
			 */
			for (left = b; left > 0; tokens++)
				left -= 1 + rand() % 8;
			tokens += 4;
		}
		tokens += 3;
		assert_true(budget_input_bound(bytes, nmsg, 1,
				BUDGET_MSG_OVERHEAD) >= tokens);
		/* The simulator's rule: exact, and 4 times tighter. */
		assert_int_equal(budget_input_bound(bytes, nmsg, 4, 0),
		    sim_prompt_tokens(bytes));
		assert_true(
		    budget_input_bound(bytes, nmsg, 4, 0) * 4 < bytes + 4);
	}
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

/*
 * The hold statement's closed form (budget.c sql_hold, g): the largest mt
 * <= want with ceil((ib*ip + mt*op) / 1e6) <= rem, or -1.
 */
static int64_t
fit_closed(int64_t rem, int64_t ib, int64_t ip, int64_t op, int64_t want)
{
	__int128 room = (__int128)rem * 1000000 - (__int128)ib * ip;
	__int128 mt;

	if (rem < 0 || room < 0)
		return -1;
	if (op == 0)
		return want;
	mt = room / op;
	return mt < want ? (int64_t)mt : want;
}

static void
test_fit_closed_form(void **state)
{
	int i;

	(void)state;
	srand(11);
	for (i = 0; i < 20000; i++) {
		int64_t rem = rand() % 50000 - 100;
		int64_t ib = rand() % 5000;
		int64_t ip = rand() % 5000000;
		int64_t op = i % 50 == 0 ? 0 : rand() % 20000000;
		int64_t want = rand() % 2048;

		assert_int_equal(fit_closed(rem, ib, ip, op, want),
		    rem < 0 ? -1 : budget_fit_tokens(rem, ib, 1, ip, op, want));
	}
}

/*
 * A hold of one attempt (budget_cost(ib, mt)) grown by
 * budget_extend_micros() before each of r retries covers the charge of
 * any outcome within the bounds: an answer after r failed attempts (its
 * usage <= ib in, <= mt out), or r + 1 failed attempts.
 */
static void
test_extend_covers_charge(void **state)
{
	struct budget_hold  h;
	struct budget_usage u;
	int		    i, r;

	(void)state;
	srand(13);
	for (i = 0; i < 20000; i++) {
		int64_t held, ext;

		memset(&h, 0, sizeof(h));
		h.input_bound = rand() % 20000;
		h.max_tokens = 1 + rand() % 2048;
		h.in_price = rand() % 20000000;
		h.out_price = rand() % 80000000;
		held = budget_cost(h.input_bound, h.max_tokens, h.in_price,
		    h.out_price);
		ext = budget_extend_micros(&h);
		/* Never below the exact input cost of one attempt. */
		assert_true((__int128)ext * 1000000 >=
		    (__int128)h.input_bound * h.in_price);
		assert_true(ext <= held);
		for (r = 0; r <= 3; r++) {
			memset(&u, 0, sizeof(u));
			u.failed_attempts = r;
			u.input_tokens = h.input_bound - rand() % 3;
			if (u.input_tokens < 0)
				u.input_tokens = 0;
			u.output_tokens = h.max_tokens - rand() % 2;
			assert_true(budget_charge(&h, &u) <= held + r * ext);
			memset(&u, 0, sizeof(u));
			u.failed_attempts = r + 1;
			assert_true(budget_charge(&h, &u) <= held + r * ext);
		}
	}
	/* Saturating: never wraps below the true amount. */
	memset(&h, 0, sizeof(h));
	h.input_bound = INT64_MAX / 2;
	h.in_price = 1000000000000LL;
	assert_int_equal(budget_extend_micros(&h), INT64_MAX);
	memset(&u, 0, sizeof(u));
	u.failed_attempts = 3;
	assert_int_equal(budget_charge(&h, &u), INT64_MAX);
	h.input_bound = 0;
	assert_int_equal(budget_extend_micros(&h), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cost),
		cmocka_unit_test(test_input_bound),
		cmocka_unit_test(test_fit_tokens),
		cmocka_unit_test(test_input_bound_covers_count),
		cmocka_unit_test(test_fit_closed_form),
		cmocka_unit_test(test_extend_covers_charge),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
