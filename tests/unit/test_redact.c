/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for lib/core/redact.c: each kind of PII or secret is replaced by its
 * marker, innocuous text (Thai, UUIDs, timestamps, small numbers, digests)
 * passes unchanged, controls are escaped, and cost stays linear.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/limits.h"
#include "core/redact.h"

struct rcase {
	const char *in;
	const char *want;
};

/* Each kind of PII or secret, in context, with its marker. */
static const struct rcase redacted[] = {
	/* e-mail */
	{ "mail john.doe+tag@example.co.th now", "mail [REDACTED:email] now" },
	{ "<a@b.io>", "<[REDACTED:email]>" },
	{ "ติดต่อ somchai@mail.example.com ครับ", "ติดต่อ [REDACTED:email] ครับ" },
	{ "end user@example.com.", "end [REDACTED:email]." },
	/* phones */
	{ "call 081-234-5678 today", "call [REDACTED:phone] today" },
	{ "call 0812345678", "call [REDACTED:phone]" },
	{ "office 02-123-4567", "office [REDACTED:phone]" },
	{ "call 081 234 5678.", "call [REDACTED:phone]." },
	{ "โทร0812345678", "โทร[REDACTED:phone]" },
	{ "intl +66 81 234 5678", "intl [REDACTED:phone]" },
	{ "intl +66812345678", "intl [REDACTED:phone]" },
	{ "us +1 (555) 123-4567", "us [REDACTED:phone]" },
	{ "us (555) 123-4567", "us [REDACTED:phone]" },
	{ "us 555-123-4567", "us [REDACTED:phone]" },
	{ "us 555.123.4567", "us [REDACTED:phone]" },
	{ "tollfree 1-800-555-1234", "tollfree [REDACTED:phone]" },
	{ "phone=0891234567&x=1", "phone=[REDACTED:phone]&x=1" },
	{ "uk +44 20 7946 0958", "uk [REDACTED:phone]" },
	/* bearer tokens and API keys */
	{ "Authorization: Bearer abc.DEF-123_xyz~+/=",
	    "Authorization: Bearer [REDACTED:token]" },
	{ "bearer  sometoken", "bearer  [REDACTED:token]" },
	{ "key bwk_live_0123456789abcdef used", "key [REDACTED:token] used" },
	/* Found by fuzzing: an address glued to what follows it. */
	{ "alice@example.com4567", "[REDACTED:email]" },
	{ "x alice@example.com_x y", "x [REDACTED:email]_x y" },
	{ "alice@example.com-1", "[REDACTED:email]" },
	/* A last label that is no TLD: the address ends before it. */
	{ "x alice@example.com.5 y", "x [REDACTED:email].5 y" },
	/* The human-readable key prefix (bwk_ + 8) is no secret. */
	{ "prefix bwk_HiYZjH44 used", "prefix bwk_HiYZjH44 used" },
	{ "key bwk_HiYZjH44J2l_VPH6Arsiv5gBlWl7NjlXcMHgBy4m-bs",
	    "key [REDACTED:token]" },
	{ "secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
	    "secret [REDACTED:secret]" },
	{ "stripe sk_live_51H8abcDEF", "stripe [REDACTED:secret]" },
	{ "stripe sk_test_4eC39HqLyjWDarjtT1zdp7dc",
	    "stripe [REDACTED:secret]" },
	{ "restricted rk_live_abcd1234", "restricted [REDACTED:secret]" },
	{ "openai sk-proj-abcdefghijklmnop1234", "openai [REDACTED:secret]" },
	{ "openai sk-0123456789abcdefABCDEF", "openai [REDACTED:secret]" },
	/* JWT */
	{ "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.abc-DEF_123 end",
	    "jwt [REDACTED:jwt] end" },
	{ "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.", "[REDACTED:jwt]" },
	/* key=value */
	{ "https://x.test/cb?api_key=abc123&page=2",
	    "https://x.test/cb?api_key=[REDACTED:secret]&page=2" },
	{ "password: hunter2 ok", "password: [REDACTED:secret] ok" },
	{ "{\"password\":\"hunter2\"}",
	    "{\"password\":\"[REDACTED:secret]\"}" },
	/* A quoted passphrase goes whole (issue 13), escapes and all. */
	{ "{\"email\":\"x\",\"password\":\"correct horse battery\"}",
	    "{\"email\":\"x\",\"password\":\"[REDACTED:secret]\"}" },
	{ "{\"password\":\"say \\\"hi\\\" twice\"} tail",
	    "{\"password\":\"[REDACTED:secret]\"} tail" },
	{ "password=\"a b\" c", "password=\"[REDACTED:secret]\" c" },
	/* The session cookie, the CSRF token, invite tokens (lower case,
	 * so not caught as opaque mixed-case secrets). */
	{ "Cookie: "
	  "__Host-bw_session=abcdefghijklmnopqrstuvwxyz0123456789-_abcde; a=b",
	    "Cookie: __Host-bw_session=[REDACTED:secret]; a=b" },
	{ "{\"csrf_token\":\"abcdefghijklmnopqrstuvwxyz0123456789-_abcde\"}",
	    "{\"csrf_token\":\"[REDACTED:secret]\"}" },
	{ "X-CSRF-Token: abcdefghijklmnopqrstuvwxyz",
	    "X-CSRF-Token: [REDACTED:secret]" },
	{ "invite_token=abcdefghijklmnopqrstuvwxyz ok",
	    "invite_token=[REDACTED:secret] ok" },
	{ "session_id: abcdefghijklmnopqrstuvwxyz",
	    "session_id: [REDACTED:secret]" },
	/* opaque secrets */
	{ "blob Ab3dEf9hIj2lMn8pQr5tUv7xYz1AbCdEfGhIjKlMnOp== end",
	    "blob [REDACTED:secret] end" },
};

/* Things that look a little like PII but are not: unchanged. */
static const char *const kept[] = {
	"order 42 shipped",
	"retry 3 of 5 after 250 ms",
	"id 550e8400-e29b-41d4-a716-446655440000",
	"id 12345678-1234-4123-8123-123456789012",
	"id 550E8400-E29B-41D4-A716-446655440000",
	"at 2024-01-15T10:30:00.123Z",
	"at 2024-01-15T10:30:00.123456789+07:00",
	"at 2024-01-15 10:30:00",
	"at 20240115T103000Z",
	"sha256 9f86d081884c7d659a2feaa0c55ad015"
	"a3bf4f1b2b0b822cd15d6c15b0f00a08",
	"hash 3a7bd3e2360a3d29eea436fcfb7e44c735d117c42d1c1835420b6b9942dd4f1b",
	"ip 192.168.100.200 port 8443",
	"version 1.2.3 build 20240115",
	"pi 3.14159265358979",
	"path /usr/share/bulwark/sql/0001_foundation.sql",
	"สวัสดีครับ ยินดีต้อนรับ",
	"skip the task-runner, rk_ too short",
	"basic plan selected",
	"tokens used: 1234",
	"user@localhost",
	"queue exports:ready",
	"tz +07:00",
	"nanos 1705312200123456789",
	"big +1234567890123456789",
	"ref 081-234-5678-9012-3456",
};

static char *
rd(const char *in)
{
	char *o = redact_str(in);

	assert_non_null(o);
	return o;
}

static void
test_redact_each_kind(void **state)
{
	size_t i;
	char  *o;

	(void)state;
	for (i = 0; i < sizeof(redacted) / sizeof(redacted[0]); i++) {
		o = rd(redacted[i].in);
		if (strcmp(o, redacted[i].want) != 0)
			fail_msg("case %zu: in \"%s\"\n got \"%s\"\n"
				 "want \"%s\"",
			    i, redacted[i].in, o, redacted[i].want);
		free(o);
	}
}

static void
test_redact_keeps_innocuous(void **state)
{
	size_t i;
	char  *o;

	(void)state;
	for (i = 0; i < sizeof(kept) / sizeof(kept[0]); i++) {
		o = rd(kept[i]);
		if (strcmp(o, kept[i]) != 0)
			fail_msg("case %zu changed: \"%s\" -> \"%s\"", i,
			    kept[i], o);
		free(o);
	}
}

static void
test_redact_escapes_controls(void **state)
{
	static const struct rcase c[] = {
		{ "a\nb", "a\\nb" },
		{ "a\r\nb", "a\\r\\nb" },
		{ "tab\there", "tab\\there" },
		{ "bell\x07"
		  "del\x7f",
		    "bell\\x07del\\x7f" },
		{ "nel\xc2\x85"
		  "ls\xe2\x80\xa8"
		  "rlo\xe2\x80\xae",
		    "nel\\u0085ls\\u2028rlo\\u202e" },
		{ "fake\n{\"level\":\"error\"}",
		    "fake\\n{\"level\":\"error\"}" },
	};
	size_t i;
	char  *o;

	(void)state;
	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		o = rd(c[i].in);
		assert_string_equal(o, c[i].want);
		assert_null(strchr(o, '\n'));
		assert_null(strchr(o, '\r'));
		free(o);
	}
}

static void
test_redact_utf8(void **state)
{
	/* Thai preserved byte for byte; invalid bytes become U+FFFD. */
	static const char thai[] = "ภาษาไทย 🙂 ok";
	char		 *o;

	(void)state;
	o = rd(thai);
	assert_string_equal(o, thai);
	free(o);
	o = rd("bad\xff\xc0\x80 \xe0\xb8");
	assert_string_equal(o,
	    "bad\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd "
	    "\xef\xbf\xbd\xef\xbf\xbd");
	free(o);
	/* A surrogate encoded in UTF-8 is not valid UTF-8. */
	o = rd("\xed\xa0\x80");
	assert_string_equal(o, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
	free(o);
}

static void
test_redact_bounded_output(void **state)
{
	struct buf  b;
	const char *in = "0123456789 abcdefghij ภาษาไทย";
	enum bw_err er;

	(void)state;
	buf_init(&b, 16);
	er = redact_append(&b, in, strlen(in));
	assert_int_equal(er, BW_ETOOBIG);
	assert_true(b.len <= 16);
	buf_free(&b);
	/* A full buffer never ends inside a UTF-8 sequence. */
	buf_init(&b, 24);
	er = redact_append(&b, "abcdefgh ภาษาไทยภาษาไทย",
	    strlen("abcdefgh ภาษาไทยภาษาไทย"));
	assert_int_equal(er, BW_ETOOBIG);
	assert_int_equal((b.len - 9) % 3, 0);
	buf_free(&b);
}

/*
 * Adversarial inputs of 256 KiB each (long runs that almost match) finish
 * well within a second: the scan is linear, not quadratic (a quadratic scan
 * needs minutes here).
 */
static void
test_redact_linear(void **state)
{
	static const char *const units[] = {
		"a.",
		"eyJ-",
		"eyJ.",
		"a-",
		"1-",
		"0",
		"+1 ",
		"x@",
		"a.a@b.",
		"Aa1-",
		"bearer ",
		"bwk_",
		"ก",
		"กa",
		"ก@ก.",
		"jö.",
		"(02) 1",
		"66 8",
		"authorization: basic ",
		"3f2a9c0b7e614d58a1b2c3d4e5f6071 ",
	};
	size_t	n = 256 * 1024, i, k, ul;
	char   *in, *o;
	clock_t t0;
	double	secs;

	(void)state;
	in = malloc(n + 1);
	assert_non_null(in);
	for (k = 0; k < sizeof(units) / sizeof(units[0]); k++) {
		ul = strlen(units[k]);
		for (i = 0; i < n; i++)
			in[i] = units[k][i % ul];
		in[n] = '\0';
		t0 = clock();
		o = rd(in);
		secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
		free(o);
		if (secs > 1.0)
			fail_msg("unit \"%s\": %.2f s", units[k], secs);
	}
	free(in);
}

static void
test_redact_append_appends(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 1024);
	assert_int_equal(buf_addstr(&b, "x="), BW_OK);
	assert_int_equal(redact_append(&b, "a@b.io tail", 6), BW_OK);
	assert_string_equal(buf_cstr(&b), "x=[REDACTED:email]");
	buf_free(&b);
	assert_null(redact_str(NULL));
}

/* Runs each case of c[0..n) and fails on the first that differs. */
static void
check_cases(const struct rcase *c, size_t n)
{
	size_t i;
	char  *o;

	for (i = 0; i < n; i++) {
		o = rd(c[i].in);
		if (strcmp(o, c[i].want) != 0)
			fail_msg("case %zu: in \"%s\"\n got \"%s\"\n"
				 "want \"%s\"",
			    i, c[i].in, o, c[i].want);
		free(o);
	}
}

/* Gap 1: internationalised addresses (RFC 6531), UTF-8 or punycode. */
static void
test_redact_idn_email(void **state)
{
	static const struct rcase c[] = {
		{ "สมชาย@ตัวอย่าง.ไทย", "[REDACTED:email]" },
		{ "ติดต่อ สมชาย@ตัวอย่าง.ไทย ครับ", "ติดต่อ [REDACTED:email] ครับ" },
		{ "mail jörg@bücher.de now", "mail [REDACTED:email] now" },
		{ "(jörg@bücher.de)", "([REDACTED:email])" },
		{ "Müller.Jörg@example.com", "[REDACTED:email]" },
		{ "user@xn--bcher-kva.de", "[REDACTED:email]" },
		{ "a@example.xn--o3cw4h end", "[REDACTED:email] end" },
		{ "ติดต่อ user@ตัวอย่าง.ไทย ครับ", "ติดต่อ [REDACTED:email] ครับ" },
		/* Thai glued to an ASCII address stays Thai. */
		{ "ติดต่อsomchai@mail.example.comครับ",
		    "ติดต่อ[REDACTED:email]ครับ" },
		{ "อีเมลสมชาย@ตัวอย่าง.ไทย ครับ", "[REDACTED:email] ครับ" },
		{ "a@bücher.de, b@ตัวอย่าง.ไทย.",
		    "[REDACTED:email], [REDACTED:email]." },
	};

	(void)state;
	check_cases(c, sizeof(c) / sizeof(c[0]));
}

/* Gap 2: Thai landlines with the area code in parentheses. */
static void
test_redact_thai_paren_phone(void **state)
{
	static const struct rcase c[] = {
		{ "office (02) 123 4567", "office [REDACTED:phone]" },
		{ "office (02) 123-4567.", "office [REDACTED:phone]." },
		{ "chiang mai (053) 123 456", "chiang mai [REDACTED:phone]" },
		{ "โทร(02)1234567", "โทร[REDACTED:phone]" },
		{ "mobile (081) 234 5678", "mobile [REDACTED:phone]" },
		/* Too few digits, or no trunk prefix: not a Thai phone. */
		{ "see (02) 12 34", "see (02) 12 34" },
		{ "year (2024) 123 456", "year (2024) 123 456" },
	};

	(void)state;
	check_cases(c, sizeof(c) / sizeof(c[0]));
}

/* Gap 3: the Thai country code written without '+'. */
static void
test_redact_cc_without_plus(void **state)
{
	static const struct rcase c[] = {
		{ "call 66 81 234 5678", "call [REDACTED:phone]" },
		{ "call 66-81-234-5678 now", "call [REDACTED:phone] now" },
		{ "bkk 66 2 123 4567", "bkk [REDACTED:phone]" },
		{ "cnx 66-53-123-456", "cnx [REDACTED:phone]" },
		{ "โทร 66 81 234 5678 ครับ", "โทร [REDACTED:phone] ครับ" },
		/* Dotted quads and short lists stay. */
		{ "ip 66.81.234.56", "ip 66.81.234.56" },
		{ "sizes 66 81 234", "sizes 66 81 234" },
		{ "at 2066-01-15 10:30:00", "at 2066-01-15 10:30:00" },
	};

	(void)state;
	check_cases(c, sizeof(c) / sizeof(c[0]));
}

/* Gap 4: HTTP Basic credentials (RFC 7617) in an Authorization header. */
static void
test_redact_basic_auth(void **state)
{
	static const struct rcase c[] = {
		{ "Authorization: Basic dXNlcjpwYXNz",
		    "Authorization: Basic [REDACTED:token]" },
		{ "authorization: basic dXNlcjpwYXNz==; x",
		    "authorization: basic [REDACTED:token]; x" },
		{ "AUTHORIZATION:BASIC  dXNlcjpwYXNz",
		    "AUTHORIZATION:BASIC  [REDACTED:token]" },
		{ "{\"authorization\":\"Basic dXNlcjpwYXNz\"}",
		    "{\"authorization\":\"Basic [REDACTED:token]\"}" },
		{ "{\"Authorization\": \"Basic dXNlcjpwYXNz\"}",
		    "{\"Authorization\": \"Basic [REDACTED:token]\"}" },
		{ "Proxy-Authorization: Basic dXNlcjpwYXNz",
		    "Proxy-Authorization: Basic [REDACTED:token]" },
		{ "authorization=Basic dXNlcjpwYXNz",
		    "authorization=Basic [REDACTED:token]" },
		/* Unencoded, from a broken client: the password goes too. */
		{ "Authorization: Basic user:pa$$ ok",
		    "Authorization: Basic [REDACTED:token] ok" },
		/* Basic without the header stays: "basic plan selected". */
		{ "Basic dXNlcjpwYXNz plan", "Basic dXNlcjpwYXNz plan" },
		{ "authorization: basic plan",
		    "authorization: basic [REDACTED:token]" },
	};

	(void)state;
	check_cases(c, sizeof(c) / sizeof(c[0]));
}

/*
 * Gap 5: 32 hex digits standing alone are an API key; 40 (sha1, git) and
 * 64 (sha256, ledger) stay, so do UUIDs, and so does a value that is
 * nothing but 32 hex digits: request and trace ids reach the redactor so.
 */
static void
test_redact_hex32_key(void **state)
{
	static const struct rcase c[] = {
		{ "key 3f2a9c0b7e614d58a1b2c3d4e5f60718 used",
		    "key [REDACTED:secret] used" },
		{ "KEY=3F2A9C0B7E614D58A1B2C3D4E5F60718",
		    "KEY=[REDACTED:secret]" },
		{ "x-api-key: 3f2a9c0b7e614d58a1b2c3d4e5f60718\n",
		    "x-api-key: [REDACTED:secret]\\n" },
		{ "/v1/keys/3f2a9c0b7e614d58a1b2c3d4e5f60718/rotate",
		    "/v1/keys/[REDACTED:secret]/rotate" },
		{ "คีย์3f2a9c0b7e614d58a1b2c3d4e5f60718ครับ",
		    "คีย์[REDACTED:secret]ครับ" },
		/* Stays. */
		{ "3f2a9c0b7e614d58a1b2c3d4e5f60718",
		    "3f2a9c0b7e614d58a1b2c3d4e5f60718" },
		{ "sha1 da39a3ee5e6b4b0d3255bfef95601890afd80709",
		    "sha1 da39a3ee5e6b4b0d3255bfef95601890afd80709" },
		{ "hash 3a7bd3e2360a3d29eea436fcfb7e44c7"
		  "35d117c42d1c1835420b6b9942dd4f1b",
		    "hash 3a7bd3e2360a3d29eea436fcfb7e44c7"
		    "35d117c42d1c1835420b6b9942dd4f1b" },
		{ "id 550e8400-e29b-41d4-a716-446655440000",
		    "id 550e8400-e29b-41d4-a716-446655440000" },
		{ "short 3f2a9c0b7e614d58a1b2c3d4e5f6071 x",
		    "short 3f2a9c0b7e614d58a1b2c3d4e5f6071 x" },
		{ "long 3f2a9c0b7e614d58a1b2c3d4e5f607189 x",
		    "long 3f2a9c0b7e614d58a1b2c3d4e5f607189 x" },
		{ "word x3f2a9c0b7e614d58a1b2c3d4e5f60718 y",
		    "word x3f2a9c0b7e614d58a1b2c3d4e5f60718 y" },
		{ "word 3f2a9c0b7e614d58a1b2c3d4e5f60718_y",
		    "word 3f2a9c0b7e614d58a1b2c3d4e5f60718_y" },
	};

	(void)state;
	check_cases(c, sizeof(c) / sizeof(c[0]));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_redact_each_kind),
		cmocka_unit_test(test_redact_keeps_innocuous),
		cmocka_unit_test(test_redact_escapes_controls),
		cmocka_unit_test(test_redact_utf8),
		cmocka_unit_test(test_redact_bounded_output),
		cmocka_unit_test(test_redact_linear),
		cmocka_unit_test(test_redact_append_appends),
		cmocka_unit_test(test_redact_idn_email),
		cmocka_unit_test(test_redact_thai_paren_phone),
		cmocka_unit_test(test_redact_cc_without_plus),
		cmocka_unit_test(test_redact_basic_auth),
		cmocka_unit_test(test_redact_hex32_key),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
