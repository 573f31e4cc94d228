/* SPDX-License-Identifier: MIT */
/*
 * The SQLSTATE -> enum bw_err map of lib/core/db.c (db_map_state, the one
 * place a PostgreSQL error code becomes our error): retryable
 * serialization failures and deadlocks, the unique violation, the data
 * and integrity classes, the statement timeout, and everything else,
 * including NULL and strings that are not SQLSTATEs.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/db.h"

struct scase {
	const char *st;
	enum bw_err want;
};

static const struct scase cases[] = {
	/* Retry the transaction (db_tx does). */
	{ "40001", BW_ERETRY }, /* serialization_failure */
	{ "40P01", BW_ERETRY }, /* deadlock_detected */
	/* Other class 40 codes are not retried. */
	{ "40000", BW_EDB },  /* transaction_rollback */
	{ "40002", BW_EDB },  /* transaction_integrity_constraint_violation */
	{ "40003", BW_EDB },  /* statement_completion_unknown */
	{ "40p01", BW_EDB },  /* SQLSTATEs are upper case */
	{ "4000", BW_EDB },   /* a prefix of 40001 */
	{ "400011", BW_EDB }, /* 40001 with more after it */
	{ "40001 ", BW_EDB }, /* trailing space */
	/* The unique violation, and the rest of class 23. */
	{ "23505", BW_EEXISTS }, /* unique_violation */
	{ "23503", BW_EINVAL },	 /* foreign_key_violation */
	{ "23502", BW_EINVAL },	 /* not_null_violation */
	{ "23514", BW_EINVAL },	 /* check_violation */
	{ "23P01", BW_EINVAL },	 /* exclusion_violation */
	{ "23000", BW_EINVAL },	 /* integrity_constraint_violation */
	{ "2350", BW_EINVAL },	 /* class 23, not 23505 */
	/* Class 22, data exceptions. */
	{ "22P02", BW_EINVAL }, /* invalid_text_representation */
	{ "22003", BW_EINVAL }, /* numeric_value_out_of_range */
	{ "22001", BW_EINVAL }, /* string_data_right_truncation */
	{ "22007", BW_EINVAL }, /* invalid_datetime_format */
	{ "22000", BW_EINVAL }, /* data_exception */
	/* The statement timeout. */
	{ "57014", BW_ETIMEOUT }, /* query_canceled */
	{ "57P01", BW_EDB },	  /* admin_shutdown */
	/* Everything else is a database error. */
	{ "42P01", BW_EDB }, /* undefined_table */
	{ "42601", BW_EDB }, /* syntax_error */
	{ "08006", BW_EDB }, /* connection_failure */
	{ "53300", BW_EDB }, /* too_many_connections */
	{ "XX000", BW_EDB }, /* internal_error */
	{ "21000", BW_EDB }, /* cardinality_violation: class 21, not 22 */
	{ "24000", BW_EDB }, /* invalid_cursor_state: class 24, not 23 */
	{ "00000", BW_EDB }, /* successful_completion is not a failure code */
	/* Garbage. */
	{ "", BW_EDB },		/* empty */
	{ "2", BW_EDB },	/* one character of class 22 */
	{ "4", BW_EDB },	/* one character of 40001 */
	{ "400", BW_EDB },	/* three */
	{ "x", BW_EDB },	/* not a code */
	{ " 40001", BW_EDB },	/* leading space */
	{ "\xff\xfe", BW_EDB }, /* not ASCII */
};

static void
test_table(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum bw_err got = db_map_state(cases[i].st);

		if (got != cases[i].want)
			fail_msg("db_map_state(\"%s\") = %s, want %s",
			    cases[i].st, bw_strerror(got),
			    bw_strerror(cases[i].want));
	}
}

static void
test_null(void **state)
{
	(void)state;
	assert_int_equal(db_map_state(NULL), BW_EDB);
}

/*
 * Every two-character class prefix: only 22 and 23 are BW_EINVAL, so no
 * other class slips into "the client's fault".
 */
static void
test_classes(void **state)
{
	static const char digits[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
	char		  st[6];
	size_t		  a, b;
	enum bw_err	  got, want;

	(void)state;
	for (a = 0; a < sizeof(digits) - 1; a++) {
		for (b = 0; b < sizeof(digits) - 1; b++) {
			st[0] = digits[a];
			st[1] = digits[b];
			st[2] = 'X';
			st[3] = '9';
			st[4] = '9';
			st[5] = '\0';
			want = (st[0] == '2' && (st[1] == '2' || st[1] == '3'))
			    ? BW_EINVAL
			    : BW_EDB;
			got = db_map_state(st);
			if (got != want)
				fail_msg("db_map_state(\"%s\") = %s, want %s",
				    st, bw_strerror(got), bw_strerror(want));
		}
	}
}

/*
 * db_set_org() (row-level security's tenant, lib/core/db.h): only a UUID's
 * 36 characters are taken, since db_tx() quotes it as a literal in its
 * BEGIN; anything else leaves the tenant as it was. No connection needed.
 */
static void
test_set_org(void **state)
{
	static const char *const bad[] = {
		"",
		"0b6f3b2c-4d1e-4c55-9a7e-2f3c4d5e6f7",	 /* 35 */
		"0b6f3b2c-4d1e-4c55-9a7e-2f3c4d5e6f7a0", /* 37 */
		"0b6f3b2c-4d1e-4c55-9a7e-2f3c4d5e6f7'",	 /* a quote */
		"0b6f3b2c-4d1e-4c55-9a7e-2f3c4d5e6f7\\",
		"0b6f3b2cx4d1e-4c55-9a7e-2f3c4d5e6f7a", /* dash misplaced */
		"0b6f3b2c-4d1e-4c55-9a7e-2f3c4d5e6fga", /* not hex */
		"'; SET ROLE postgres; SELECT '1234567",
	};
	struct db *db = db_new("");
	size_t	   i;

	(void)state;
	assert_non_null(db);
	assert_string_equal(db_org(db), "");
	assert_int_equal(db_set_org(db, NULL), BW_EINVAL);
	assert_int_equal(db_set_org(db, "0b6f3b2c-4d1e-4c55-9a7e-2f3c4d5e6f7a"),
	    BW_OK);
	assert_string_equal(db_org(db), "0b6f3b2c-4d1e-4c55-9a7e-2f3c4d5e6f7a");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(db_set_org(db, bad[i]), BW_EINVAL);
		assert_string_equal(db_org(db),
		    "0b6f3b2c-4d1e-4c55-9a7e-2f3c4d5e6f7a");
	}
	assert_int_equal(db_set_org(db, "0B6F3B2C-4D1E-4C55-9A7E-2F3C4D5E6F7A"),
	    BW_OK);
	db_clear_org(db);
	assert_string_equal(db_org(db), "");
	db_clear_org(NULL);
	db_free(db);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_null),
		cmocka_unit_test(test_classes),
		cmocka_unit_test(test_set_org),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
