/* SPDX-License-Identifier: MIT */
/*
 * The ledger event hash (ledger_event_hash in lib/evidence/ledger.c)
 * against the canonical encoding of docs/verification.md, computed here
 * independently: known answers made with printf | sha256sum, a reference
 * built with OpenSSL's SHA256() from the documented seven lines, and the
 * edge cases of the encoding -- field order, lower-case hex, number
 * spelling, and the inputs it must refuse so that no field can carry a
 * line feed or another field's text.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/sha.h>

#include "evidence/ledger.h"

#define ORG  "0b7c1c6e-1d2a-4c3b-9e8f-0123456789ab"
#define ZERO "0000000000000000000000000000000000000000000000000000000000000000"
/*
 * printf 'bulwark-ledger-v1\norg %s\nseq %s\ntype %s\npayload %s\nprev
 * %s\ntime %s\n' ORG 1 evidence.uploaded 000102...1f ZERO 1750000000123456
 * | sha256sum
 */
#define KAT1 "e4aa4a688f9fd0c86df986a46e767e1eda4530a0d2bb8cc635117098be89e979"
/* The same for ORG 2 export.state abab...ab KAT1 0. */
#define KAT2 "8e018e6154e104ce8d726e37e9708fc96fc69380f67e12f48d6dc399c17266a9"

static void
hex(const uint8_t *d, size_t n, char *out, int upper)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	size_t	    i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[d[i] >> 4];
		out[2 * i + 1] = digits[d[i] & 0x0f];
	}
	out[2 * n] = '\0';
}

/*
 * The documented encoding, field by field as text, hashed with OpenSSL:
 * the reference the library must agree with.
 */
static void
ref_hash(const char *org, const char *seq, const char *type,
    const char *payload_hex, const char *prev_hex, const char *time,
    uint8_t out[32])
{
	char enc[1024];
	int  n;

	n = snprintf(enc, sizeof(enc),
	    "bulwark-ledger-v1\n"
	    "org %s\n"
	    "seq %s\n"
	    "type %s\n"
	    "payload %s\n"
	    "prev %s\n"
	    "time %s\n",
	    org, seq, type, payload_hex, prev_hex, time);
	assert_true(n > 0 && (size_t)n < sizeof(enc));
	SHA256((const unsigned char *)enc, (size_t)n, out);
}

static void
assert_hash_eq(const uint8_t got[32], const uint8_t want[32])
{
	char g[65], w[65];

	hex(got, 32, g, 0);
	hex(want, 32, w, 0);
	assert_string_equal(g, w);
}

/* Known answers computed outside C. */
static void
test_kat(void **state)
{
	uint8_t pl[32], prev[32], h[32];
	char	hx[65];
	size_t	i;

	(void)state;
	for (i = 0; i < 32; i++)
		pl[i] = (uint8_t)i;
	memset(prev, 0, sizeof(prev));
	assert_int_equal(ledger_event_hash(ORG, 1, "evidence.uploaded", pl,
			     prev, 1750000000123456LL, h),
	    BW_OK);
	hex(h, 32, hx, 0);
	assert_string_equal(hx, KAT1);

	/* The next link: prev is the first hash, payload high nibbles. */
	memset(pl, 0xab, sizeof(pl));
	memcpy(prev, h, 32);
	assert_int_equal(ledger_event_hash(ORG, 2, "export.state", pl, prev, 0,
			     h),
	    BW_OK);
	hex(h, 32, hx, 0);
	assert_string_equal(hx, KAT2);
}

struct rcase {
	int64_t	    seq;
	const char *seq_s;
	const char *type;
	int64_t	    time;
	const char *time_s;
};

static const struct rcase rcases[] = {
	{ 1, "1", "a", 0, "0" },		   /* the shortest */
	{ 10, "10", "evidence.uploaded", 1, "1" }, /* two digits */
	{ 1000000, "1000000", "export.verified", 1764892800000000LL,
	    "1764892800000000" },
	{ INT64_MAX, "9223372036854775807", "z_9.", INT64_MAX,
	    "9223372036854775807" },
	{ 7, "7",
	    "a123456789012345678901234567890123456789012345678901234567890123",
	    42, "42" }, /* 64 characters, the longest type */
};

/* Agreement with the reference over numbers and types of every shape. */
static void
test_reference(void **state)
{
	uint8_t pl[32], prev[32], h[32], want[32];
	char	plx[65], pvx[65];
	size_t	i, j;

	(void)state;
	for (i = 0; i < sizeof(rcases) / sizeof(rcases[0]); i++) {
		for (j = 0; j < 32; j++) {
			pl[j] = (uint8_t)(0xf0 ^ (i * 31 + j));
			prev[j] = (uint8_t)(0x0f ^ (i * 17 + j * 5));
		}
		hex(pl, 32, plx, 0);
		hex(prev, 32, pvx, 0);
		ref_hash(ORG, rcases[i].seq_s, rcases[i].type, plx, pvx,
		    rcases[i].time_s, want);
		assert_int_equal(ledger_event_hash(ORG, rcases[i].seq,
				     rcases[i].type, pl, prev, rcases[i].time,
				     h),
		    BW_OK);
		assert_hash_eq(h, want);
	}
}

/*
 * Field order and hex case: the hash is of payload-then-prev in lower-case
 * hex; swapping the two, or upper-case hex, is a different hash.
 */
static void
test_order_and_case(void **state)
{
	uint8_t pl[32], prev[32], h[32], swapped[32], want[32];
	char	plx[65], pvx[65], plX[65], pvX[65];

	(void)state;
	memset(pl, 0xab, sizeof(pl));
	memset(prev, 0xcd, sizeof(prev));
	hex(pl, 32, plx, 0);
	hex(prev, 32, pvx, 0);
	hex(pl, 32, plX, 1);
	hex(prev, 32, pvX, 1);
	assert_int_equal(ledger_event_hash(ORG, 3, "export.state", pl, prev, 5,
			     h),
	    BW_OK);

	ref_hash(ORG, "3", "export.state", plx, pvx, "5", want);
	assert_hash_eq(h, want);
	ref_hash(ORG, "3", "export.state", pvx, plx, "5", want);
	assert_memory_not_equal(h, want, 32);
	ref_hash(ORG, "3", "export.state", plX, pvX, "5", want);
	assert_memory_not_equal(h, want, 32);
	/* Numbers with a leading zero or sign are another encoding. */
	ref_hash(ORG, "03", "export.state", plx, pvx, "5", want);
	assert_memory_not_equal(h, want, 32);
	ref_hash(ORG, "+3", "export.state", plx, pvx, "5", want);
	assert_memory_not_equal(h, want, 32);

	assert_int_equal(ledger_event_hash(ORG, 3, "export.state", prev, pl, 5,
			     swapped),
	    BW_OK);
	assert_memory_not_equal(h, swapped, 32);
}

/* Every field is hashed: changing any one changes the hash. */
static void
test_each_field(void **state)
{
	const char *org2 = "0b7c1c6e-1d2a-4c3b-9e8f-0123456789ac";
	uint8_t	    pl[32], prev[32], base[32], h[32];

	(void)state;
	memset(pl, 0x11, sizeof(pl));
	memset(prev, 0x22, sizeof(prev));
	assert_int_equal(ledger_event_hash(ORG, 9, "a.b", pl, prev, 99, base),
	    BW_OK);

	assert_int_equal(ledger_event_hash(org2, 9, "a.b", pl, prev, 99, h),
	    BW_OK);
	assert_memory_not_equal(h, base, 32);
	assert_int_equal(ledger_event_hash(ORG, 10, "a.b", pl, prev, 99, h),
	    BW_OK);
	assert_memory_not_equal(h, base, 32);
	assert_int_equal(ledger_event_hash(ORG, 9, "a.c", pl, prev, 99, h),
	    BW_OK);
	assert_memory_not_equal(h, base, 32);
	assert_int_equal(ledger_event_hash(ORG, 9, "a.b", pl, prev, 100, h),
	    BW_OK);
	assert_memory_not_equal(h, base, 32);
	pl[31] ^= 1;
	assert_int_equal(ledger_event_hash(ORG, 9, "a.b", pl, prev, 99, h),
	    BW_OK);
	assert_memory_not_equal(h, base, 32);
	pl[31] ^= 1;
	prev[0] ^= 0x80;
	assert_int_equal(ledger_event_hash(ORG, 9, "a.b", pl, prev, 99, h),
	    BW_OK);
	assert_memory_not_equal(h, base, 32);
	prev[0] ^= 0x80;
	/* And the same inputs give the same hash. */
	assert_int_equal(ledger_event_hash(ORG, 9, "a.b", pl, prev, 99, h),
	    BW_OK);
	assert_memory_equal(h, base, 32);
}

struct bcase {
	const char *org;
	int64_t	    seq;
	const char *type;
};

/*
 * Refused: anything that could put a line feed, a space or another
 * field's text into the encoding, or that is not the documented form.
 */
static const struct bcase bcases[] = {
	/* org: a lower-case UUID, exactly. */
	{ "0B7C1C6E-1D2A-4C3B-9E8F-0123456789AB", 1, "a" },
	{ "0b7c1c6e-1d2a-4c3b-9e8f-0123456789a", 1, "a" },
	{ "0b7c1c6e-1d2a-4c3b-9e8f-0123456789abc", 1, "a" },
	{ "0b7c1c6e1d2a4c3b9e8f0123456789ab", 1, "a" },
	{ "0b7c1c6e-1d2a-4c3b-9e8f-0123456789a\n", 1, "a" },
	{ "0b7c1c6e-1d2a-4c3b-9e8f-0123456789ab\nseq 2", 1, "a" },
	{ "", 1, "a" },
	{ NULL, 1, "a" },
	/* seq: from 1. */
	{ ORG, 0, "a" },
	{ ORG, -1, "a" },
	{ ORG, INT64_MIN, "a" },
	/* type: [a-z][a-z0-9_.]{0,63}. */
	{ ORG, 1, "" },
	{ ORG, 1, NULL },
	{ ORG, 1, "evidence.uploaded\n" },
	{ ORG, 1, "a\npayload " ZERO },
	{ ORG, 1, "a b" },
	{ ORG, 1, "a\r" },
	{ ORG, 1, "Export" },
	{ ORG, 1, "1a" },
	{ ORG, 1, "_a" },
	{ ORG, 1, ".a" },
	{ ORG, 1, "a-b" },
	{ ORG, 1, "a\xc3\xa9" },
	{ ORG, 1,
	    "a123456789012345678901234567890123456789012345678901234567890123"
	    "4" },
};

static void
test_refused(void **state)
{
	uint8_t pl[32], prev[32], h[32], untouched[32];
	size_t	i;

	(void)state;
	memset(pl, 1, sizeof(pl));
	memset(prev, 2, sizeof(prev));
	memset(untouched, 0x5a, sizeof(untouched));
	for (i = 0; i < sizeof(bcases) / sizeof(bcases[0]); i++) {
		memcpy(h, untouched, 32);
		if (ledger_event_hash(bcases[i].org, bcases[i].seq,
			bcases[i].type, pl, prev, 1, h) != BW_EINVAL)
			fail_msg("case %zu (org %s, seq %lld, type %s) "
				 "accepted",
			    i, bcases[i].org ? bcases[i].org : "NULL",
			    (long long)bcases[i].seq,
			    bcases[i].type ? bcases[i].type : "NULL");
		assert_memory_equal(h, untouched, 32);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kat),
		cmocka_unit_test(test_reference),
		cmocka_unit_test(test_order_and_case),
		cmocka_unit_test(test_each_field),
		cmocka_unit_test(test_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
