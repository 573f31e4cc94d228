/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of lib/people/password.c: scrypt known answers (RFC 7914
 * §12, the three vectors that fit in memory here), the stored string
 * (format, round trip, salt per hash, parameters kept per hash), the
 * parser's refusals, verification of wrong and malformed input, and the
 * minimum length.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "core/sec.h"
#include "people/password.h"

/* scrypt(P, S, N, r, p, 64) as hex compared with want. */
static void
kat(const char *pw, const char *salt, uint64_t n, uint32_t r, uint32_t p,
    const char *want)
{
	struct password_params par = { .n = n, .r = r, .p = p };
	uint8_t		       out[64];
	char		       hex[129];

	assert_int_equal(password_scrypt(pw, strlen(pw), salt, strlen(salt),
			     &par, out, sizeof(out)),
	    BW_OK);
	sec_hex(out, sizeof(out), hex);
	assert_string_equal(hex, want);
}

static void
test_rfc7914_vectors(void **state)
{
	(void)state;
	kat("", "", 16, 1, 1,
	    "77d6576238657b203b19ca42c18a0497f16b4844e3074ae8dfdffa3fede21442"
	    "fcd0069ded0948f8326a753a0fc81f17e8d3e0fb2e0d3628cf35e20c38d18906");
	kat("password", "NaCl", 1024, 8, 16,
	    "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162"
	    "2eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640");
	kat("pleaseletmein", "SodiumChloride", 16384, 8, 1,
	    "7023bdcb3afd7348461c06cd81fd38ebfda8fbba904f8e3ea9b543f6545da1f2"
	    "d5432955613f0fcf62d49705242a9af9e61e85dc0d651e40dfcf017b45575887");
}

static void
test_bad_params(void **state)
{
	struct password_params par = { .n = 1000, .r = 8, .p = 1 };
	uint8_t		       out[32];

	(void)state;
	assert_int_equal(password_scrypt("a", 1, "b", 1, &par, out, 32),
	    BW_EINVAL);
	par.n = 1;
	assert_int_equal(password_scrypt("a", 1, "b", 1, &par, out, 32),
	    BW_EINVAL);
	/* 2^24 * 128 * 8 = 16 GiB: over the cap, refused before OpenSSL. */
	par.n = (uint64_t)1 << 24;
	assert_int_equal(password_scrypt("a", 1, "b", 1, &par, out, 32),
	    BW_EINVAL);
}

static const struct password_params fast = { .n = 1024, .r = 8, .p = 1 };

static void
test_hash_format_and_verify(void **state)
{
	struct password_parsed pp;
	struct buf	       a, b;

	(void)state;
	buf_init(&a, PASSWORD_HASH_MAX);
	buf_init(&b, PASSWORD_HASH_MAX);
	assert_int_equal(password_hash("correct horse", 13, &fast, &a), BW_OK);
	assert_int_equal(password_hash("correct horse", 13, &fast, &b), BW_OK);
	/* $scrypt$ln=10,r=8,p=1$<22 chars: 16 bytes>$<43 chars: 32 bytes> */
	assert_int_equal(strncmp(a.p, "$scrypt$ln=10,r=8,p=1$", 22), 0);
	assert_int_equal(a.len, 22 + 22 + 1 + 43);
	assert_string_not_equal(a.p, b.p); /* a fresh salt each time */
	assert_int_equal(password_parse(a.p, &pp), BW_OK);
	assert_int_equal(pp.par.n, 1024);
	assert_int_equal(pp.par.r, 8);
	assert_int_equal(pp.par.p, 1);
	assert_int_equal(pp.salt_len, 16);
	assert_int_equal(pp.hash_len, 32);
	assert_int_equal(password_verify("correct horse", 13, a.p, &fast),
	    BW_OK);
	assert_int_equal(password_verify("correct horsf", 13, a.p, &fast),
	    BW_EAUTH);
	assert_int_equal(password_verify("correct hors", 12, a.p, &fast),
	    BW_EAUTH);
	assert_int_equal(password_verify("", 0, a.p, &fast), BW_EAUTH);
	/* No password set: refused after the same work. */
	assert_int_equal(password_verify("correct horse", 13, NULL, &fast),
	    BW_EAUTH);
	assert_int_equal(password_stale(a.p, &fast), 0);
	buf_free(&a);
	buf_free(&b);
}

/* A string written with other parameters verifies with its own. */
static void
test_params_kept_per_hash(void **state)
{
	struct password_params other = { .n = 2048, .r = 4, .p = 2 };
	struct buf	       a;

	(void)state;
	buf_init(&a, PASSWORD_HASH_MAX);
	assert_int_equal(password_hash("0123456789", 10, &other, &a), BW_OK);
	assert_int_equal(strncmp(a.p, "$scrypt$ln=11,r=4,p=2$", 22), 0);
	assert_int_equal(password_verify("0123456789", 10, a.p, &fast), BW_OK);
	assert_int_equal(password_stale(a.p, &fast), 1);
	buf_free(&a);
}

/* A stored string built by hand from the RFC's third vector. */
static void
test_verify_known_string(void **state)
{
	/* salt "SodiumChloride", key = the first 32 bytes of vector 3. */
	static const char stored[] =
	    "$scrypt$ln=14,r=8,p=1$U29kaXVtQ2hsb3JpZGU$"
	    "cCO9yzr9c0hGHAbNgf046/2o+7qQT44+qbVD9lRdofI";

	(void)state;
	assert_int_equal(password_verify("pleaseletmein", 13, stored, &fast),
	    BW_OK);
	assert_int_equal(password_verify("pleaseletmeIn", 13, stored, &fast),
	    BW_EAUTH);
}

static void
test_parse_refuses(void **state)
{
	static const char *const bad[] = {
		"",
		"$scrypt$",
		"$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$"
		"aGFzaGhhc2hoYXNoaGFzaA",
		"$scrypt$ln=14,r=8$U29kaXVtQ2hsb3JpZGU$"
		"cCO9yzr9c0hGHAbNgf046/2o+7qQT44+qbVD9lRdofI",
		"$scrypt$ln=0,r=8,p=1$U29kaXVtQ2hsb3JpZGU$"
		"cCO9yzr9c0hGHAbNgf046/2o+7qQT44+qbVD9lRdofI",
		"$scrypt$ln=014,r=8,p=1$U29kaXVtQ2hsb3JpZGU$"
		"cCO9yzr9c0hGHAbNgf046/2o+7qQT44+qbVD9lRdofI",
		"$scrypt$ln=31,r=8,p=1$U29kaXVtQ2hsb3JpZGU$"
		"cCO9yzr9c0hGHAbNgf046/2o+7qQT44+qbVD9lRdofI",
		"$scrypt$ln=14,r=8,p=1$U29kaXVtQ2hsb3JpZGU"
		"cCO9yzr9c0hGHAbNgf046/2o+7qQT44+qbVD9lRdofI",
		"$scrypt$ln=14,r=8,p=1$U29kaXVtQ2hsb3JpZGU$"
		"cCO9yzr9c0hGHAbNgf046/2o+7qQT44+qbVD9lRdofI$x",
		"$scrypt$ln=14,r=8,p=1$U29k$"
		"cCO9yzr9c0hGHAbNgf046/2o+7qQT44+qbVD9lRdofI", /* salt < 8 */
		"$scrypt$ln=14,r=8,p=1$U29kaXVtQ2hsb3JpZGU$cCO9yzr9c0hG",
		"$scrypt$ln=14,r=8,p=1$U29kaXVtQ2hsb3JpZGU$"
		"cCO9yzr9c0hGHAbNgf046_2o-7qQT44-qbVD9lRdofI", /* base64url */
		"$scrypt$ln=14,r=8,p=1$U29kaXVt Q2hsb3JpZGU$"
		"cCO9yzr9c0hGHAbNgf046/2o+7qQT44+qbVD9lRdofI",
		"$scrypt$ln=14,r=99,p=1$U29kaXVtQ2hsb3JpZGU$"
		"cCO9yzr9c0hGHAbNgf046/2o+7qQT44+qbVD9lRdofI",
	};
	struct password_parsed pp;
	size_t		       i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (password_parse(bad[i], &pp) != BW_EINVAL)
			fail_msg("accepted: %s", bad[i]);
		assert_int_equal(password_verify("pleaseletmein", 13, bad[i],
				     &fast),
		    BW_EINVAL);
	}
	assert_int_equal(password_parse(NULL, &pp), BW_EINVAL);
}

static void
test_acceptable(void **state)
{
	(void)state;
	assert_false(password_acceptable("123456789", 9));
	assert_true(password_acceptable("1234567890", 10));
	assert_false(password_acceptable("12345\0"
					 "7890",
	    10));
	assert_false(password_acceptable(NULL, 0));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc7914_vectors),
		cmocka_unit_test(test_bad_params),
		cmocka_unit_test(test_hash_format_and_verify),
		cmocka_unit_test(test_params_kept_per_hash),
		cmocka_unit_test(test_verify_known_string),
		cmocka_unit_test(test_parse_refuses),
		cmocka_unit_test(test_acceptable),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
