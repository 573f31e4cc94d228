/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the plan tier table of lib/platform/org.c: the four tiers
 * orgs.tier allows are valid and nothing else is, and each grants the
 * export retention its plan promises (unknown or missing: starter's).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "platform/org.h"

static void
test_org_tiers(void **state)
{
	static const struct {
		const char *tier;
		int	    valid;
		int	    days;
	} t[] = {
		{ "starter", 1, 30 },
		{ "pro", 1, 90 },
		{ "business", 1, 365 },
		{ "enterprise", 1, 730 },
		{ NULL, 0, 30 },
		{ "", 0, 30 },
		{ "Pro", 0, 30 },
		{ "pro ", 0, 30 },
		{ "free", 0, 30 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		assert_int_equal(org_tier_valid(t[i].tier), t[i].valid);
		assert_int_equal(org_tier_retention_days(t[i].tier), t[i].days);
	}
}

/* The tier table as SQL arrays: same order, the default first. */
static void
test_org_tier_arrays(void **state)
{
	struct buf n, d;

	(void)state;
	buf_init(&n, 1024);
	buf_init(&d, 1024);
	assert_int_equal(org_tier_arrays(&n, &d), BW_OK);
	assert_string_equal(buf_cstr(&n), "{starter,pro,business,enterprise}");
	assert_string_equal(buf_cstr(&d), "{30,90,365,730}");
	buf_free(&n);
	buf_free(&d);
	buf_init(&n, 8);
	buf_init(&d, 1024);
	assert_int_equal(org_tier_arrays(&n, &d), BW_ETOOBIG);
	buf_free(&n);
	buf_free(&d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_org_tiers),
		cmocka_unit_test(test_org_tier_arrays),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
