/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of lib/people/session.c and user.c's pure parts: finding the
 * session cookie in a Cookie header, the id's shape, the CSRF token (bound
 * to the id, checked whole), the Redis cache value (round trip, refusals)
 * and e-mail normalisation.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "people/session.h"
#include "people/user.h"

#define ID1 "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
#define ID2 "abcdefghijklmnopqrstuvwxyz0123456789-_ABCDE"

/* The cookie value found in hdr, or "(none)". */
static const char *
find(const char *hdr)
{
	static char out[256];
	const char *v;
	size_t	    n;

	if (!session_cookie_find(hdr, &v, &n))
		return "(none)";
	assert_true(n < sizeof(out));
	memcpy(out, v, n);
	out[n] = '\0';
	return out;
}

static void
test_cookie_find(void **state)
{
	(void)state;
	assert_string_equal(find("__Host-bw_session=" ID1), ID1);
	assert_string_equal(find("a=b; __Host-bw_session=" ID1 "; c=d"), ID1);
	assert_string_equal(find("a=b;__Host-bw_session=" ID1), ID1);
	assert_string_equal(find("__Host-bw_session=" ID1 " ; x=y"), ID1);
	/* The first one wins. */
	assert_string_equal(find("__Host-bw_session=" ID1
				 "; __Host-bw_session=" ID2),
	    ID1);
	assert_string_equal(find("__Host-bw_session="), "");
	/* Other names, prefixes and suffixes are not it. */
	assert_string_equal(find("bw_session=" ID1), "(none)");
	assert_string_equal(find("x__Host-bw_session=" ID1), "(none)");
	assert_string_equal(find("__Host-bw_sessionx=" ID1), "(none)");
	assert_string_equal(find("__Host-bw_session"), "(none)");
	assert_string_equal(find(""), "(none)");
	assert_string_equal(find(NULL), "(none)");
}

static void
test_id_shape(void **state)
{
	(void)state;
	assert_true(session_id_wellformed(ID1, 43));
	assert_true(session_id_wellformed(ID2, 43));
	assert_false(session_id_wellformed(ID1, 42));
	assert_false(session_id_wellformed(ID1 "A", 44));
	assert_false(
	    session_id_wellformed("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		43));
	assert_false(
	    session_id_wellformed("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA+",
		43));
	assert_false(session_id_wellformed(NULL, 0));
}

static void
test_csrf(void **state)
{
	char a[SESSION_CSRF_LEN + 1], a2[SESSION_CSRF_LEN + 1],
	    b[SESSION_CSRF_LEN + 1];

	(void)state;
	assert_int_equal(session_csrf(ID1, 43, a), BW_OK);
	assert_int_equal(session_csrf(ID1, 43, a2), BW_OK);
	assert_int_equal(session_csrf(ID2, 43, b), BW_OK);
	assert_int_equal(strlen(a), SESSION_CSRF_LEN);
	assert_string_equal(a, a2);	 /* bound to the id ... */
	assert_string_not_equal(a, b);	 /* ... and to it only */
	assert_string_not_equal(a, ID1); /* not the id itself */
	assert_true(session_csrf_ok(ID1, 43, a));
	assert_false(session_csrf_ok(ID1, 43, b));
	assert_false(session_csrf_ok(ID2, 43, a));
	assert_false(session_csrf_ok(ID1, 43, NULL));
	assert_false(session_csrf_ok(ID1, 43, ""));
	a2[SESSION_CSRF_LEN - 1] = '\0'; /* a prefix is not it */
	assert_false(session_csrf_ok(ID1, 43, a2));
}

static void
test_cache_value(void **state)
{
	struct session_info in = {
		.user_id = "0b7d1a52-3c9e-4f6a-8d2b-1e5f7a9c3b4d",
		.org_id = "7f3e2d1c-0b9a-4876-9543-210fedcba987",
		.email = "owner@example.com",
		.role = AR_ADMIN,
		.expires_at = 1777777777,
		.last_seen = 1777770000,
	};
	struct session_info out;
	struct buf	    b;

	(void)state;
	buf_init(&b, 1024);
	assert_int_equal(session_cache_format(&in, &b), BW_OK);
	assert_int_equal(session_cache_parse(b.p, b.len, &out), 0);
	assert_string_equal(out.user_id, in.user_id);
	assert_string_equal(out.org_id, in.org_id);
	assert_string_equal(out.email, in.email);
	assert_int_equal(out.role, AR_ADMIN);
	assert_int_equal(out.expires_at, in.expires_at);
	assert_int_equal(out.last_seen, in.last_seen);
	/* Truncated, the marker, another version, a bad role or number. */
	assert_int_equal(session_cache_parse(b.p, b.len - 18, &out), -1);
	assert_int_equal(session_cache_parse("x", 1, &out), -1);
	assert_int_equal(session_cache_parse("", 0, &out), -1);
	b.p[1] = '2';
	assert_int_equal(session_cache_parse(b.p, b.len, &out), -1);
	buf_free(&b);
	{
		static const char *const v[] = {
			"v1\t0b7d1a52-3c9e-4f6a-8d2b-1e5f7a9c3b4d\t"
			"7f3e2d1c-0b9a-4876-9543-210fedcba987\towner\t12x\t1\t"
			"a@b.c",
			"v1\t0b7d1a52-3c9e-4f6a-8d2b-1e5f7a9c3b4d\t"
			"7f3e2d1c-0b9a-4876-9543-210fedcba987\troot\t12\t1\t"
			"a@b.c",
			"v1\tnot-a-uuid\t7f3e2d1c-0b9a-4876-9543-210fedcba987\t"
			"owner\t12\t1\ta@b.c",
			"v1\t0b7d1a52-3c9e-4f6a-8d2b-1e5f7a9c3b4d\t"
			"7f3e2d1c-0b9a-4876-9543-210fedcba987\towner\t12\t1\t",
		};
		size_t i;

		for (i = 0; i < sizeof(v) / sizeof(v[0]); i++)
			assert_int_equal(session_cache_parse(v[i], strlen(v[i]),
					     &out),
			    -1);
	}
}

static void
test_email_norm(void **state)
{
	char out[SESSION_EMAIL_MAX + 1];

	(void)state;
	assert_int_equal(user_email_norm("Owner@Example.COM", out), 0);
	assert_string_equal(out, "owner@example.com");
	assert_int_equal(user_email_norm("a@b", out), 0);
	assert_int_equal(user_email_norm("ab", out), -1);
	assert_int_equal(user_email_norm("no-at.example.com", out), -1);
	assert_int_equal(user_email_norm("two@@example.com", out), -1);
	assert_int_equal(user_email_norm("@example.com", out), -1);
	assert_int_equal(user_email_norm("owner@", out), -1);
	assert_int_equal(user_email_norm("own er@example.com", out), -1);
	assert_int_equal(user_email_norm("own\ter@example.com", out), -1);
	assert_int_equal(user_email_norm(NULL, out), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cookie_find),
		cmocka_unit_test(test_id_shape),
		cmocka_unit_test(test_csrf),
		cmocka_unit_test(test_cache_value),
		cmocka_unit_test(test_email_norm),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
