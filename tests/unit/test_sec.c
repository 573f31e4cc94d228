/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of lib/sec: known answers for SHA-256 (FIPS 180-2 examples),
 * HMAC-SHA256 (RFC 4231, LINE webhook vectors), base64 (RFC 4648 §10),
 * Ed25519 (RFC 8032 §7.1), and the strictness of every decoder.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "core/sec.h"

/* Hex of d[0..n) compared with want. */
static void
assert_hex(const uint8_t *d, size_t n, const char *want)
{
	char h[257];

	assert_true(n <= 128);
	sec_hex(d, n, h);
	assert_string_equal(h, want);
}

/* Decodes hex into a malloc'd buffer; *n gets its length. */
static uint8_t *
unhex_alloc(const char *s, size_t *n)
{
	uint8_t *p;

	*n = strlen(s) / 2;
	p = malloc(*n + 1);
	assert_non_null(p);
	assert_int_equal(sec_unhex(s, strlen(s), p, *n), BW_OK);
	return p;
}

struct sha_case {
	const char *in;
	const char *want;
};

static const struct sha_case sha_cases[] = {
	{ "",
	    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85"
	    "5" },
	{ "abc",
	    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015a"
	    "d" },
	{ "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
	    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c"
	    "1" },
};

static void
test_sha256(void **state)
{
	uint8_t		       out[32];
	struct sec_sha256_ctx *c;
	char		       chunk[1000];
	size_t		       i;

	(void)state;
	for (i = 0; i < sizeof(sha_cases) / sizeof(sha_cases[0]); i++) {
		assert_int_equal(sec_sha256(sha_cases[i].in,
				     strlen(sha_cases[i].in), out),
		    BW_OK);
		assert_hex(out, 32, sha_cases[i].want);
	}
	/* One million 'a', streamed in 1000-byte pieces. */
	memset(chunk, 'a', sizeof(chunk));
	c = sec_sha256_new();
	assert_non_null(c);
	for (i = 0; i < 1000; i++)
		assert_int_equal(sec_sha256_update(c, chunk, sizeof(chunk)),
		    BW_OK);
	assert_int_equal(sec_sha256_final(c, out), BW_OK);
	sec_sha256_free(c);
	sec_sha256_free(NULL);
	assert_hex(out, 32,
	    "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

struct hmac_case {
	const char *key;  /* hex */
	const char *data; /* hex */
	const char *want;
};

/* RFC 4231 §4.2-§4.8 (test case 5 truncates, so it is left out). */
static const struct hmac_case hmac_cases[] = {
	{ "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "4869205468657265",
	    "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff"
	    "7" },
	{ "4a656665",
	    "7768617420646f2079612077616e7420666f72206e6f7468696e673f",
	    "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec384"
	    "3" },
	{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	    "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
	    "dd"
	    "dddddddddddddddddddddddddddddddd",
	    "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565f"
	    "e" },
	{ "0102030405060708090a0b0c0d0e0f10111213141516171819",
	    "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd"
	    "cd"
	    "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd",
	    "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665"
	    "b" },
	{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	  "aaaaaa",
	    "54657374205573696e67204c6172676572205468616e20426c6f636b2d53697a"
	    "65204b6579202d2048617368204b6579204669727374",
	    "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f5"
	    "4" },
	{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	  "aaaaaa",
	    "5468697320697320612074657374207573696e672061206c6172676572207468"
	    "616e20626c6f636b2d73697a65206b657920616e642061206c61726765722074"
	    "68616e20626c6f636b2d73697a6520646174612e20546865206b6579206e6565"
	    "647320746f20626520686173686564206265666f7265206265696e6720757365"
	    "642062792074686520484d414320616c676f726974686d2e",
	    "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e"
	    "2" },
};

static void
test_hmac_rfc4231(void **state)
{
	uint8_t out[32], *k, *d;
	size_t	i, kn, dn;

	(void)state;
	for (i = 0; i < sizeof(hmac_cases) / sizeof(hmac_cases[0]); i++) {
		k = unhex_alloc(hmac_cases[i].key, &kn);
		d = unhex_alloc(hmac_cases[i].data, &dn);
		assert_int_equal(sec_hmac_sha256(k, kn, d, dn, out), BW_OK);
		assert_hex(out, 32, hmac_cases[i].want);
		free(k);
		free(d);
	}
	/* Empty key and message: a well-known value. */
	assert_int_equal(sec_hmac_sha256(NULL, 0, NULL, 0, out), BW_OK);
	assert_hex(out, 32,
	    "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

/* Fetches obj.a.b... as a string, failing the test when absent. */
static const char *
jstr(struct json_object *o, const char *k1, const char *k2)
{
	struct json_object *v;

	assert_true(json_object_object_get_ex(o, k1, &v));
	if (k2 != NULL)
		assert_true(json_object_object_get_ex(v, k2, &v));
	assert_true(json_object_is_type(v, json_type_string));
	return json_object_get_string(v);
}

/*
 * LINE webhook vectors: base64(HMAC-SHA256(channel secret, raw body)) must
 * equal debug.expected_signature_for_verifier for every case; the header
 * of a "valid" case must decode to the same MAC and a non-valid one not.
 */
static void
test_hmac_line_vectors(void **state)
{
	struct json_object *root, *line, *cases, *c, *ex;
	struct buf	    body, sig, hdr;
	const char	   *secret, *want, *h;
	uint8_t		    mac[32];
	size_t		    i, n;
	int		    valid;

	(void)state;
	root = json_object_from_file(VECTORS_DIR "/webhook-signatures.json");
	assert_non_null(root);
	assert_true(json_object_object_get_ex(root, "providers", &line));
	assert_true(json_object_object_get_ex(line, "line", &line));
	assert_true(json_object_object_get_ex(line, "cases", &cases));
	n = json_object_array_length(cases);
	assert_true(n >= 5);
	for (i = 0; i < n; i++) {
		c = json_object_array_get_idx(cases, i);
		buf_init(&body, 1024 * 1024);
		buf_init(&sig, 1024);
		buf_init(&hdr, 1024);
		h = jstr(c, "request", "body_base64");
		assert_int_equal(sec_unb64(h, strlen(h), &body), BW_OK);
		secret = jstr(c, "verifier", "channel_secret");
		assert_int_equal(sec_hmac_sha256(secret, strlen(secret), body.p,
				     body.len, mac),
		    BW_OK);
		assert_int_equal(sec_b64(mac, 32, &sig), BW_OK);
		want = jstr(c, "debug", "expected_signature_for_verifier");
		assert_string_equal(buf_cstr(&sig), want);

		assert_true(json_object_object_get_ex(c, "expected", &ex));
		assert_true(json_object_object_get_ex(ex, "valid", &ex));
		valid = json_object_get_boolean(ex);
		assert_true(json_object_object_get_ex(c, "request", &ex));
		assert_true(json_object_object_get_ex(ex, "headers", &ex));
		if (json_object_object_get_ex(ex, "x-line-signature", &ex)) {
			h = json_object_get_string(ex);
			if (sec_unb64(h, strlen(h), &hdr) != BW_OK)
				buf_reset(&hdr);
			assert_int_equal(sec_eq(hdr.p, hdr.len, mac, 32),
			    valid);
		} else
			assert_false(valid);
		buf_free(&body);
		buf_free(&sig);
		buf_free(&hdr);
	}
	json_object_put(root);
}

struct b64_case {
	const char *raw;
	const char *std;
};

/* RFC 4648 §10. */
static const struct b64_case b64_cases[] = {
	{ "", "" },
	{ "f", "Zg==" },
	{ "fo", "Zm8=" },
	{ "foo", "Zm9v" },
	{ "foob", "Zm9vYg==" },
	{ "fooba", "Zm9vYmE=" },
	{ "foobar", "Zm9vYmFy" },
};

static void
test_b64_known(void **state)
{
	struct buf  b, d;
	size_t	    i, ul;
	const char *s;

	(void)state;
	for (i = 0; i < sizeof(b64_cases) / sizeof(b64_cases[0]); i++) {
		buf_init(&b, 64);
		buf_init(&d, 64);
		assert_int_equal(sec_b64((const uint8_t *)b64_cases[i].raw,
				     strlen(b64_cases[i].raw), &b),
		    BW_OK);
		assert_string_equal(buf_cstr(&b), b64_cases[i].std);
		/* Padded and unpadded forms both decode. */
		s = b64_cases[i].std;
		assert_int_equal(sec_unb64(s, strlen(s), &d), BW_OK);
		assert_int_equal(d.len, strlen(b64_cases[i].raw));
		assert_memory_equal(buf_cstr(&d), b64_cases[i].raw, d.len);
		buf_reset(&d);
		ul = strcspn(s, "=");
		assert_int_equal(sec_unb64(s, ul, &d), BW_OK);
		assert_string_equal(buf_cstr(&d), b64_cases[i].raw);
		/* base64url is the same text without padding here. */
		buf_reset(&b);
		assert_int_equal(sec_b64url((const uint8_t *)b64_cases[i].raw,
				     strlen(b64_cases[i].raw), &b),
		    BW_OK);
		assert_int_equal(b.len, ul);
		assert_memory_equal(buf_cstr(&b), s, ul);
		buf_free(&b);
		buf_free(&d);
	}
}

static void
test_b64_alphabets_roundtrip(void **state)
{
	static const uint8_t fb[] = { 0xfb, 0xff, 0xbf };
	uint8_t		     r[300];
	struct buf	     b, d;
	size_t		     n;

	(void)state;
	buf_init(&b, 4096);
	buf_init(&d, 4096);
	assert_int_equal(sec_b64(fb, 3, &b), BW_OK);
	assert_string_equal(buf_cstr(&b), "+/+/");
	buf_reset(&b);
	assert_int_equal(sec_b64url(fb, 3, &b), BW_OK);
	assert_string_equal(buf_cstr(&b), "-_-_");
	buf_reset(&b);
	assert_int_equal(sec_b64url(fb, 2, &b), BW_OK);
	assert_string_equal(buf_cstr(&b), "-_8");
	assert_int_equal(sec_unb64url("-_8", 3, &d), BW_OK);
	assert_int_equal(d.len, 2);
	assert_memory_equal(d.p, fb, 2);
	/* Every length 0..299 of random bytes round-trips in both. */
	assert_int_equal(sec_random(r, sizeof(r)), BW_OK);
	for (n = 0; n < sizeof(r); n++) {
		buf_reset(&b);
		buf_reset(&d);
		assert_int_equal(sec_b64(r, n, &b), BW_OK);
		assert_int_equal(b.len % 4, 0);
		assert_int_equal(sec_unb64(b.p, b.len, &d), BW_OK);
		assert_int_equal(d.len, n);
		assert_memory_equal(d.p, r, n);
		buf_reset(&b);
		buf_reset(&d);
		assert_int_equal(sec_b64url(r, n, &b), BW_OK);
		assert_null(memchr(b.p, '=', b.len));
		assert_int_equal(sec_unb64url(b.p, b.len, &d), BW_OK);
		assert_int_equal(d.len, n);
		assert_memory_equal(d.p, r, n);
	}
	buf_free(&b);
	buf_free(&d);
}

struct rej_case {
	const char *s;
	int	    url; /* 1: sec_unb64url, 0: sec_unb64 */
};

static const struct rej_case rej_cases[] = {
	{ "-_8=", 0 },
	{ "Zm9v-A==", 0 },
	{ "Zm9v_A==", 0 },
	{ "+/8", 1 },
	{ "Zm9v+A", 1 },
	{ "Zm9v/A", 1 },
	{ "Zm9v YmFy", 0 },
	{ "Zm9v\nYmFy", 0 },
	{ " Zm9v", 0 },
	{ "Zm9v\t", 1 },
	{ "Zm9v\r\n", 0 },
	{ "Z", 0 },
	{ "Zm9vY", 0 },
	{ "Z===", 0 },
	{ "Zg=", 0 },
	{ "Zg===", 0 },
	{ "Zm8==", 0 },
	{ "Zm9v=", 0 },
	{ "Zm9v==", 0 },
	{ "=", 0 },
	{ "==", 0 },
	{ "=Zg=", 0 },
	{ "Zg==Zg==", 0 },
	{ "Zh==", 0 },
	{ "Zh", 0 },
	{ "Zm9=", 0 },
	{ "Zm9", 1 },
	{ "Zm9v.", 0 },
	{ "Zm9v\xc3\xa9", 1 },
};

static void
test_b64_rejects(void **state)
{
	struct buf  d;
	enum bw_err er;
	size_t	    i;

	(void)state;
	buf_init(&d, 64);
	assert_int_equal(buf_addstr(&d, "keep"), BW_OK);
	for (i = 0; i < sizeof(rej_cases) / sizeof(rej_cases[0]); i++) {
		if (rej_cases[i].url)
			er = sec_unb64url(rej_cases[i].s,
			    strlen(rej_cases[i].s), &d);
		else
			er = sec_unb64(rej_cases[i].s, strlen(rej_cases[i].s),
			    &d);
		if (er != BW_EINVAL)
			fail_msg("reject case %zu (%s): got %d", i,
			    rej_cases[i].s, er);
		/* Output left as it was. */
		assert_string_equal(buf_cstr(&d), "keep");
	}
	/* A NUL byte inside the length is not an alphabet character. */
	assert_int_equal(sec_unb64("Zm\0v", 4, &d), BW_EINVAL);
	buf_free(&d);
}

static void
test_b64_limit(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 6);
	assert_int_equal(buf_addstr(&b, "ab"), BW_OK);
	assert_int_equal(sec_b64((const uint8_t *)"foobar", 6, &b), BW_ETOOBIG);
	assert_string_equal(buf_cstr(&b), "ab");
	buf_free(&b);
}

static void
test_hex(void **state)
{
	static const uint8_t d[] = { 0x00, 0x01, 0xab, 0xff };
	uint8_t		     o[4] = { 9, 9, 9, 9 };
	char		     h[9];

	(void)state;
	sec_hex(d, 4, h);
	assert_string_equal(h, "0001abff");
	sec_hex(d, 0, h);
	assert_string_equal(h, "");
	assert_int_equal(sec_unhex("0001ABff", 8, o, 4), BW_OK);
	assert_memory_equal(o, d, 4);
	memset(o, 9, sizeof(o));
	assert_int_equal(sec_unhex("0001abf", 7, o, 4), BW_EINVAL);
	assert_int_equal(sec_unhex("0001abff00", 10, o, 4), BW_EINVAL);
	assert_int_equal(sec_unhex("0001abfg", 8, o, 4), BW_EINVAL);
	assert_int_equal(sec_unhex("0x01abff", 8, o, 4), BW_EINVAL);
	assert_int_equal(sec_unhex(" 001abff", 8, o, 4), BW_EINVAL);
	assert_int_equal(o[0], 9); /* untouched on failure */
}

static void
test_uuid_and_token(void **state)
{
	char	   u[37], v[37];
	struct buf t;
	size_t	   i;
	int	   k;

	(void)state;
	for (k = 0; k < 200; k++) {
		assert_int_equal(sec_uuid(u), BW_OK);
		assert_int_equal(strlen(u), SEC_UUID_LEN);
		for (i = 0; i < 36; i++) {
			if (i == 8 || i == 13 || i == 18 || i == 23)
				assert_int_equal(u[i], '-');
			else
				assert_non_null(
				    strchr("0123456789abcdef", u[i]));
		}
		assert_int_equal(u[14], '4');
		assert_non_null(strchr("89ab", u[19]));
	}
	assert_int_equal(sec_uuid(v), BW_OK);
	assert_string_not_equal(u, v);

	buf_init(&t, 128);
	assert_int_equal(sec_token(&t), BW_OK);
	assert_int_equal(t.len, 43);
	assert_int_equal(strspn(t.p,
			     "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
			     "abcdefghijklmnopqrstuvwxyz0123456789-_"),
	    43);
	buf_free(&t);
}

static void
test_eq(void **state)
{
	(void)state;
	assert_int_equal(sec_eq("abc", 3, "abc", 3), 1);
	assert_int_equal(sec_eq("abc", 3, "abd", 3), 0);
	assert_int_equal(sec_eq("xbc", 3, "abc", 3), 0);
	assert_int_equal(sec_eq("abc", 3, "abcd", 4), 0);
	assert_int_equal(sec_eq("abcd", 4, "abc", 3), 0);
	assert_int_equal(sec_eq("", 0, "", 0), 1);
	assert_int_equal(sec_eq(NULL, 0, "a", 1), 0);
	assert_int_equal(sec_eq(NULL, 0, NULL, 0), 1);
}

struct ed_case {
	const char *seed;
	const char *pub;
	const char *msg; /* hex */
	const char *sig;
};

/* RFC 8032 §7.1 TEST 1, TEST 2 and TEST 3. */
static const struct ed_case ed_cases[] = {
	{ "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
	    "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
	    "",
	    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
	    "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100"
	    "b" },
	{ "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
	    "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
	    "72",
	    "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
	    "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c0"
	    "0" },
	{ "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
	    "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
	    "af82",
	    "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac"
	    "18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40"
	    "a" },
};

static void
test_ed25519(void **state)
{
	uint8_t pub[32], sig[64], bad[64], *seed, *wpub, *msg, *wsig;
	size_t	i, n, sn, pn, mn, gn;

	(void)state;
	n = sizeof(ed_cases) / sizeof(ed_cases[0]);
	for (i = 0; i < n; i++) {
		seed = unhex_alloc(ed_cases[i].seed, &sn);
		wpub = unhex_alloc(ed_cases[i].pub, &pn);
		msg = unhex_alloc(ed_cases[i].msg, &mn);
		wsig = unhex_alloc(ed_cases[i].sig, &gn);
		assert_int_equal(sec_ed25519_pub(seed, pub), BW_OK);
		assert_memory_equal(pub, wpub, 32);
		assert_int_equal(sec_ed25519_sign(seed, msg, mn, sig), BW_OK);
		assert_memory_equal(sig, wsig, 64);
		assert_int_equal(sec_ed25519_verify(pub, msg, mn, sig), BW_OK);
		/* A flipped bit of the signature fails. */
		memcpy(bad, sig, 64);
		bad[i * 7] ^= 0x01;
		assert_int_equal(sec_ed25519_verify(pub, msg, mn, bad),
		    BW_ECRYPTO);
		/* A tampered or longer message fails. */
		if (mn > 0) {
			msg[0] ^= 0x80;
			assert_int_equal(sec_ed25519_verify(pub, msg, mn, sig),
			    BW_ECRYPTO);
			msg[0] ^= 0x80;
		}
		assert_int_equal(sec_ed25519_verify(pub, "x", 1, sig),
		    BW_ECRYPTO);
		/* Another key fails. */
		pub[0] ^= 0x02;
		assert_int_equal(sec_ed25519_verify(pub, msg, mn, sig),
		    BW_ECRYPTO);
		free(seed);
		free(wpub);
		free(msg);
		free(wsig);
	}
}

static void
test_wipe(void **state)
{
	uint8_t k[16];
	size_t	i;

	(void)state;
	memset(k, 0xa5, sizeof(k));
	sec_wipe(k, sizeof(k));
	for (i = 0; i < sizeof(k); i++)
		assert_int_equal(k[i], 0);
	sec_wipe(NULL, 0);
}

/* AES-256-GCM seal/open: round trip, fresh nonces, any change refused. */
static void
test_seal(void **state)
{
	uint8_t	   k[32], k2[32];
	struct buf a, b, o;
	const char msg[] = "{\"verification_token\":\"secret\"}";

	(void)state;
	memset(k, 7, sizeof(k));
	memset(k2, 8, sizeof(k2));
	buf_init(&a, 1024);
	buf_init(&b, 1024);
	buf_init(&o, 1024);
	assert_int_equal(sec_seal(k, "org", 3, msg, strlen(msg), &a), BW_OK);
	assert_int_equal(a.len, strlen(msg) + SEC_SEAL_OVERHEAD);
	assert_null(memmem(a.p, a.len, "secret", 6));
	assert_int_equal(sec_seal(k, "org", 3, msg, strlen(msg), &b), BW_OK);
	assert_memory_not_equal(a.p, b.p, 12); /* a fresh nonce each time */
	assert_int_equal(sec_open(k, "org", 3, a.p, a.len, &o), BW_OK);
	assert_int_equal(o.len, strlen(msg));
	assert_memory_equal(o.p, msg, o.len);
	buf_reset(&o);
	assert_int_equal(sec_open(k2, "org", 3, a.p, a.len, &o), BW_ECRYPTO);
	assert_int_equal(sec_open(k, "orh", 3, a.p, a.len, &o), BW_ECRYPTO);
	a.p[20] ^= 1;
	assert_int_equal(sec_open(k, "org", 3, a.p, a.len, &o), BW_ECRYPTO);
	assert_int_equal(sec_open(k, "org", 3, a.p, 27, &o), BW_ECRYPTO);
	assert_int_equal(o.len, 0);
	buf_reset(&a);
	assert_int_equal(sec_seal(k, NULL, 0, "", 0, &a), BW_OK);
	assert_int_equal(sec_open(k, NULL, 0, a.p, a.len, &o), BW_OK);
	assert_int_equal(o.len, 0);
	buf_free(&a);
	buf_free(&b);
	buf_free(&o);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sha256),
		cmocka_unit_test(test_hmac_rfc4231),
		cmocka_unit_test(test_hmac_line_vectors),
		cmocka_unit_test(test_b64_known),
		cmocka_unit_test(test_b64_alphabets_roundtrip),
		cmocka_unit_test(test_b64_rejects),
		cmocka_unit_test(test_b64_limit),
		cmocka_unit_test(test_hex),
		cmocka_unit_test(test_uuid_and_token),
		cmocka_unit_test(test_eq),
		cmocka_unit_test(test_ed25519),
		cmocka_unit_test(test_wipe),
		cmocka_unit_test(test_seal),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
