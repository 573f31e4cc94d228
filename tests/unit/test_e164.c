/* SPDX-License-Identifier: MIT */
/*
 * Campaign numbers (lib/campaign/e164.c): E.164 normalisation, the
 * recipient list (per-number problems by index, sorted, deduplicated), and
 * the inbound opt-out keywords (lib/money/wh_parse.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "campaign/campaign.h"
#include "money/wh_parse.h"

static void
test_normalize(void **state)
{
	static const struct {
		const char *in, *out, *problem;
	} v[] = {
		{ "+66812345678", "+66812345678", NULL },
		{ "+66 81-234 5678", "+66812345678", NULL },
		{ "0066812345678", "+66812345678", NULL },
		{ "(+66) 81.234.5678", "+66812345678", NULL },
		{ "+1234567", "+1234567", NULL },
		{ "+123456789012345", "+123456789012345", NULL },
		{ "+123456", NULL, "too_short" },
		{ "+1234567890123456", NULL, "too_long" },
		{ "0812345678", NULL, "invalid_format" },
		{ "+0812345678", NULL, "invalid_format" },
		{ "+66 81 abc", NULL, "invalid_format" },
		{ "", NULL, "invalid_format" },
		{ "+", NULL, "too_short" },
	};
	char   out[CAMPAIGN_E164_MAX + 1];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		const char *p = e164_normalize(v[i].in, out);

		if (v[i].problem == NULL) {
			assert_null(p);
			assert_string_equal(out, v[i].out);
		} else {
			assert_non_null(p);
			assert_string_equal(p, v[i].problem);
		}
	}
	assert_non_null(e164_normalize(NULL, out));
}

static void
test_list(void **state)
{
	struct json_object     *arr, *problems = NULL;
	struct campaign_numbers l;

	(void)state;
	arr = json_tokener_parse("[\"+66 81 234 5678\",\"+6620000000\","
				 "\"0066812345678\",\"+66812345678\"]");
	assert_int_equal(campaign_numbers_from_json(arr, &l, &problems), BW_OK);
	assert_null(problems);
	assert_int_equal(l.n, 2);
	assert_int_equal(l.duplicates, 2);
	assert_string_equal(l.num[0], "+6620000000");
	assert_string_equal(l.num[1], "+66812345678");
	campaign_numbers_free(&l);
	json_object_put(arr);

	arr = json_tokener_parse("[\"+66812345678\",\"12\",7,\"+999\"]");
	assert_int_equal(campaign_numbers_from_json(arr, &l, &problems),
	    BW_EINVAL);
	assert_non_null(problems);
	assert_string_equal(json_object_to_json_string_ext(problems,
				JSON_C_TO_STRING_PLAIN),
	    "[{\"field\":\"recipients[1]\",\"problem\":\"invalid_format\"},"
	    "{\"field\":\"recipients[2]\",\"problem\":\"wrong_type\"},"
	    "{\"field\":\"recipients[3]\",\"problem\":\"too_short\"}]");
	json_object_put(problems);
	json_object_put(arr);
}

static void
test_stop(void **state)
{
	(void)state;
	assert_true(wh_sms_is_stop("STOP"));
	assert_true(wh_sms_is_stop(" stop \n"));
	assert_true(wh_sms_is_stop("Unsubscribe"));
	assert_false(wh_sms_is_stop("stop please"));
	assert_false(wh_sms_is_stop(""));
	assert_false(wh_sms_is_stop(NULL));
	assert_false(wh_sms_is_stop("STOPSTOPSTOPSTOPSTOP"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_normalize),
		cmocka_unit_test(test_list),
		cmocka_unit_test(test_stop),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
