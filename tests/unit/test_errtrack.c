/* SPDX-License-Identifier: MIT */
/*
 * Error tracking's pure part (lib/errtrack/normalize.c, issue.c): message
 * normalisation, fingerprint stability (the same bug with other ids, e-mail
 * addresses and phone numbers is one group; another code, site or message
 * is another), the PII mask of samples (Thai numbers too) and the issue
 * body built from a group, which must hold no planted e-mail or phone.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "errtrack/errtrack.h"
#include "errtrack/errtrack_int.h"

static void
test_normalize(void **state)
{
	static const struct {
		const char *in, *out;
	} v[] = {
		{ "user 42 not found", "user <n> not found" },
		{ "job 7c9e6679-7425-40de-944b-e07fc1f90ae7 failed",
		    "job <uuid> failed" },
		{ "bad ptr 0xdeadBEEF at 0x1f", "bad ptr <hex> at <hex>" },
		{ "commit 3f2a9c1b0e7d missing", "commit <hex> missing" },
		{ "no key \"bwk_live_123\" here", "no key <str> here" },
		{ "can't open 'db.conf'", "can't open <str>" },
		{ "mail to alice.smith+x@example.co.th bounced",
		    "mail to <email> bounced" },
		{ "call +66812345678 failed", "call <phone> failed" },
		{ "call 0812345678 failed", "call <phone> failed" },
		{ "call +66 81-234-5678 now", "call <phone> now" },
		{ "call (02) 123 4567", "call (<n>) <n> <n>" },
		{ "  many   blanks\n\there ", "many blanks here" },
		{ "worker7 stuck", "worker<n> stuck" },
		{ "deadbeef is a word", "deadbeef is a word" },
		{ "", "" },
	};
	char   out[256];
	size_t i, n;

	(void)state;
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		n = errtrack_normalize(v[i].in, out, sizeof(out));
		assert_string_equal(out, v[i].out);
		assert_int_equal(n, strlen(v[i].out));
	}
	/* Bounded: never past outlen, never a cut UTF-8 sequence. */
	n = errtrack_normalize("abcdef", out, 4);
	assert_string_equal(out, "abc");
	n = errtrack_normalize("ab\xc3\xa9", out, 4);
	assert_string_equal(out, "ab");
	assert_int_equal(errtrack_normalize("x", out, 1), 0);
	assert_string_equal(out, "");
}

static void
fp(const char *code, const char *msg, const char *site, char hex[65])
{
	char norm[ERRTRACK_MSG_MAX + 1];

	(void)errtrack_normalize(msg, norm, sizeof(norm));
	assert_int_equal(errtrack_fingerprint(code, norm, site, hex), BW_OK);
}

static void
test_fingerprint(void **state)
{
	char a[65], b[65], c[65];

	(void)state;
	fp("INTERNAL", "booking 12 of bob@example.com (+66812345678) failed",
	    "route:booking", a);
	fp("INTERNAL",
	    "booking 9931 of carol.x@example.org (0898765432) failed",
	    "route:booking", b);
	assert_string_equal(a, b);
	assert_int_equal(strlen(a), 64);
	assert_int_equal(strspn(a, "0123456789abcdef"), 64);
	/* Stable across runs and hosts: SHA-256 of "code\nmessage\nsite"
	 * (printf 'X\n\ns' | sha256sum). */
	fp("X", "", "s", c);
	assert_string_equal(c,
	    "3df29598a022b20122516e4190336e92e534ea286b90412461cac236d3c904d1");
	fp("X", "", "s", a);
	assert_string_equal(a, c);
	fp("INTERNAL", "booking 1 failed", "route:booking", a);
	fp("UPSTREAM", "booking 1 failed", "route:booking", b);
	assert_string_not_equal(a, b);
	fp("INTERNAL", "booking 1 failed", "route:reservation", b);
	assert_string_not_equal(a, b);
	fp("INTERNAL", "booking 1 refused", "route:booking", b);
	assert_string_not_equal(a, b);
	/* The separator keeps fields apart: ("ab","c") is not ("a","bc"). */
	fp("ab", "c", "s", a);
	fp("a", "bc", "s", b);
	assert_string_not_equal(a, b);
}

static void
test_redact(void **state)
{
	static const char *const pii[] = { "alice@example.com", "+66812345678",
		"0812345678", "081-234-5678", "+1 415 555 0100",
		"bwk_test_0123456789abcdefABCDEF0123456789" };
	char			*s;
	size_t			 i;

	(void)state;
	s = errtrack_redact("user alice@example.com phone +66812345678, "
			    "home 0812345678 or 081-234-5678, US +1 415 555 "
			    "0100, key bwk_test_0123456789abcdefABCDEF"
			    "0123456789 order 1234",
	    ERRTRACK_MSG_MAX);
	assert_non_null(s);
	for (i = 0; i < sizeof(pii) / sizeof(pii[0]); i++)
		assert_null(strstr(s, pii[i]));
	/* What is no PII stays readable. */
	assert_non_null(strstr(s, "order 1234"));
	free(s);
	s = errtrack_redact("abcdef", 3);
	assert_string_equal(s, "abc");
	free(s);
}

static void
test_issue(void **state)
{
	struct json_object *g, *sample;
	struct buf	    title, body;

	(void)state;
	g = json_object_new_object();
	json_object_object_add(g, "id",
	    json_object_new_string("0d4e3c8a-1b2c-4d5e-8f90-a1b2c3d4e5f6"));
	json_object_object_add(g, "kind", json_object_new_string("client"));
	json_object_object_add(g, "code", json_object_new_string("TypeError"));
	json_object_object_add(g, "site",
	    json_object_new_string("client:/console/app.js:12"));
	json_object_object_add(g, "org_id",
	    json_object_new_string("`\n# evil"));
	json_object_object_add(g, "count", json_object_new_int64(3));
	json_object_object_add(g, "fingerprint",
	    json_object_new_string("00112233445566778899aabbccddeeff00112233"
				   "445566778899aabbccddeeff"));
	json_object_object_add(g, "first_seen",
	    json_object_new_string("2026-01-02T03:04:05.678Z"));
	json_object_object_add(g, "last_seen",
	    json_object_new_string("2026-01-02T04:04:05.678Z"));
	sample = json_object_new_object();
	/* A sample that escaped redaction upstream: the body masks it. */
	json_object_object_add(sample, "message",
	    json_object_new_string("TypeError: bob@example.com 0812345678 "
				   "+66812345678 ```\n## injected"));
	json_object_object_add(sample, "request_id",
	    json_object_new_string("a1b2c3d4e5f60718293a4b5c6d7e8f90"));
	json_object_object_add(g, "sample", sample);
	buf_init(&title, 1024);
	buf_init(&body, 65536);
	assert_int_equal(errtrack_issue_text(g, &title, &body), BW_OK);
	assert_string_equal(buf_cstr(&title),
	    "[bulwark] client TypeError at client:/console/app.js:12");
	assert_null(strstr(buf_cstr(&body), "bob@example.com"));
	assert_null(strstr(buf_cstr(&body), "0812345678"));
	assert_null(strstr(buf_cstr(&body), "66812345678"));
	assert_null(strstr(buf_cstr(&body), "```\n## injected"));
	assert_null(strstr(buf_cstr(&body), "`\n# evil"));
	assert_non_null(strstr(buf_cstr(&body), "- org: `' # evil`"));
	assert_non_null(strstr(buf_cstr(&body),
	    "<!-- bulwark-error-group: 0d4e3c8a-1b2c-4d5e-8f90-a1b2c3d4e5f6 "
	    "-->"));
	assert_non_null(
	    strstr(buf_cstr(&body), "a1b2c3d4e5f60718293a4b5c6d7e8f90"));
	assert_non_null(strstr(buf_cstr(&body), "00112233445566778899aabb"));
	assert_non_null(strstr(buf_cstr(&body), "occurrences: 3"));
	assert_non_null(strstr(buf_cstr(&body), "error-tracking.md"));
	buf_free(&title);
	buf_free(&body);
	json_object_put(g);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_normalize),
		cmocka_unit_test(test_fingerprint),
		cmocka_unit_test(test_redact),
		cmocka_unit_test(test_issue),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
