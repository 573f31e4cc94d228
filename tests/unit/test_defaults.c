/* SPDX-License-Identifier: MIT */
/*
 * The shipped defaults, asserted as shipped (issue 10): what a config that
 * sets nothing gives (lib/core/config.c's table), and the constants the
 * contract and the seeds name. The limits other tests raise or lower before
 * testing them are checked here at their real values; tests/e2e/defaults.sh
 * checks the same numbers through nginx.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "chat/llm.h"
#include "core/config.h"
#include "evidence/export.h"
#include "money/webhook.h"
#include "people/password.h"
#include "platform/org.h"

extern char **environ;

/* Removes every BULWARK_* variable, so only the key table speaks. */
static void
clear_bulwark_env(void)
{
	char   name[256];
	size_t n;
	int    again = 1;

	while (again) {
		char **e;

		again = 0;
		for (e = environ; *e != NULL; e++) {
			if (strncmp(*e, "BULWARK_", 8) != 0)
				continue;
			n = strcspn(*e, "=");
			if (n >= sizeof(name))
				continue;
			memcpy(name, *e, n);
			name[n] = '\0';
			unsetenv(name);
			again = 1;
			break;
		}
	}
}

/* A config that sets nothing: the chat and LLM governance numbers. */
static void
test_config_defaults(void **state)
{
	struct config c;
	char	      err[512];

	(void)state;
	clear_bulwark_env();
	assert_int_equal(config_load(&c, NULL, err, sizeof(err)), BW_OK);
	assert_int_equal(c.chat_queue_deadline_ms, 10000);
	assert_int_equal(c.chat_deadline_ms, 30000);
	assert_int_equal(c.llm_global_cap, 15);
	assert_int_equal(c.llm_org_cap, 5);
	assert_int_equal(c.llm_attempt_timeout_ms, 8000);
	assert_int_equal(c.llm_retry_timeout_ms, 10000);
	assert_int_equal(c.llm_max_retries, 2);
	assert_int_equal(c.llm_breaker_failures, 10);
	assert_int_equal(c.llm_breaker_open_ms, 15000);
	assert_int_equal(c.job_retention_days, 7);
	assert_int_equal(c.retention_clock_offset_s, 0);
	config_free(&c);
}

/* People (issue 13): scrypt N=16384 r=8 p=1, sessions 30 min idle and
 * 12 h absolute, lockout after 10 failures per account and 30 per IP in
 * 15 min, invites 72 h, passwords from 10 bytes. */
static void
test_people_defaults(void **state)
{
	struct config c;
	char	      err[512];

	(void)state;
	clear_bulwark_env();
	assert_int_equal(config_load(&c, NULL, err, sizeof(err)), BW_OK);
	assert_int_equal(c.password_scrypt_n, 16384);
	assert_int_equal(c.password_scrypt_r, 8);
	assert_int_equal(c.password_scrypt_p, 1);
	assert_int_equal(c.session_idle_s, 1800);
	assert_int_equal(c.session_absolute_s, 43200);
	assert_int_equal(c.login_max_failures, 10);
	assert_int_equal(c.login_ip_max_failures, 30);
	assert_int_equal(c.login_window_s, 900);
	assert_int_equal(c.invite_ttl_s, 72 * 3600);
	assert_int_equal(PASSWORD_MIN_LEN, 10);
	assert_int_equal(PASSWORD_SALT_LEN, 16);
	assert_int_equal(PASSWORD_KEY_LEN, 32);
	config_free(&c);
	/* N must be a power of two. */
	setenv("BULWARK_PASSWORD_SCRYPT_N", "20000", 1);
	assert_int_equal(config_load(&c, NULL, err, sizeof(err)), BW_ECONFIG);
	assert_non_null(strstr(err, "password_scrypt_n"));
	unsetenv("BULWARK_PASSWORD_SCRYPT_N");
}

/* Lifetimes: webhook events 7 days, verification tokens 30 days, failed
 * and canceled exports removed after 7 days, retention per plan tier. */
static void
test_lifetimes(void **state)
{
	(void)state;
	assert_int_equal(WEBHOOK_TTL_DAYS, 7);
	assert_int_equal(EXPORT_TOKEN_TTL_S, 30 * 86400);
	assert_int_equal(EXPORT_REMOVE_AFTER_S, 7 * 86400);
	assert_int_equal(org_tier_retention_days("starter"), 30);
	assert_int_equal(org_tier_retention_days("pro"), 90);
	assert_int_equal(org_tier_retention_days("business"), 365);
	assert_int_equal(org_tier_retention_days("enterprise"), 730);
}

/* 401 and 403 (and 400, 404, 422) are never retried; 408, 429, 5xx are. */
static void
test_llm_retryable(void **state)
{
	static const int never[] = { 400, 401, 403, 404, 422 };
	static const int retry[] = { 408, 429, 500, 502, 503, 504 };
	size_t		 i;

	(void)state;
	for (i = 0; i < sizeof(never) / sizeof(never[0]); i++)
		assert_int_equal(llm_status_retryable(never[i]), 0);
	for (i = 0; i < sizeof(retry) / sizeof(retry[0]); i++)
		assert_int_equal(llm_status_retryable(retry[i]), 1);
}

/* Backoff steps 1 s, 2 s, 4 s before the jitter, which adds 0..500 ms. */
static void
test_llm_backoff_steps(void **state)
{
	(void)state;
	assert_int_equal(LLM_BACKOFF_BASE_MS, 1000);
	assert_int_equal(LLM_JITTER_MS, 500);
	assert_int_equal(llm_backoff_ms(1, 0), 1000);
	assert_int_equal(llm_backoff_ms(2, 0), 2000);
	assert_int_equal(llm_backoff_ms(3, 0), 4000);
	assert_int_equal(llm_backoff_ms(1, 500), 1500);
	assert_int_equal(llm_backoff_ms(3, 500), 4500);
}

/* Over many draws the jitter stays in 0..500 ms and covers that range:
 * both ends are reached within 10 ms (missing either in 20000 uniform
 * draws has a probability below 1e-180). */
static void
test_llm_jitter_bounds(void **state)
{
	int i, j, lo = 1 << 30, hi = -1, n;

	(void)state;
	for (i = 0; i < 20000; i++) {
		j = llm_jitter_ms();
		assert_in_range(j, 0, 500);
		if (j < lo)
			lo = j;
		if (j > hi)
			hi = j;
		for (n = 1; n <= 3; n++)
			assert_in_range(llm_backoff_ms(n, j),
			    (1000LL << (n - 1)), (1000LL << (n - 1)) + 500);
	}
	assert_in_range(lo, 0, 10);
	assert_in_range(hi, 490, 500);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_defaults),
		cmocka_unit_test(test_people_defaults),
		cmocka_unit_test(test_lifetimes),
		cmocka_unit_test(test_llm_retryable),
		cmocka_unit_test(test_llm_backoff_steps),
		cmocka_unit_test(test_llm_jitter_bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
