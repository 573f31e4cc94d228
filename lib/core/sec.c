/* SPDX-License-Identifier: MIT */
/*
 * Cryptographic helpers over OpenSSL 3: SHA-256, HMAC-SHA256, random bytes,
 * tokens and UUIDs, constant-time compare and Ed25519. Hex and base64 are
 * hand-written so that each decoder is strict about its own alphabet.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "core/sec.h"

struct sec_sha256_ctx {
	EVP_MD_CTX *md;
};

/* SHA-256 of d[0..n) into out. Returns BW_OK or BW_ECRYPTO. */
enum bw_err
sec_sha256(const void *d, size_t n, uint8_t out[32])
{
	if (d == NULL)
		d = "";
	if (EVP_Digest(d, n, out, NULL, EVP_sha256(), NULL) != 1) {
		ERR_clear_error();
		return BW_ECRYPTO;
	}
	return BW_OK;
}

/* A streaming SHA-256 (caller frees: sec_sha256_free), or NULL on error. */
struct sec_sha256_ctx *
sec_sha256_new(void)
{
	struct sec_sha256_ctx *c;

	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->md = EVP_MD_CTX_new();
	if (c->md == NULL ||
	    EVP_DigestInit_ex(c->md, EVP_sha256(), NULL) != 1) {
		ERR_clear_error();
		sec_sha256_free(c);
		return NULL;
	}
	return c;
}

/* Feeds n bytes. Returns BW_OK or BW_ECRYPTO. */
enum bw_err
sec_sha256_update(struct sec_sha256_ctx *c, const void *d, size_t n)
{
	if (n == 0)
		return BW_OK;
	if (EVP_DigestUpdate(c->md, d, n) != 1) {
		ERR_clear_error();
		return BW_ECRYPTO;
	}
	return BW_OK;
}

/* Writes the digest to out; the context is spent after. BW_OK/BW_ECRYPTO. */
enum bw_err
sec_sha256_final(struct sec_sha256_ctx *c, uint8_t out[32])
{
	unsigned int len = 0;

	if (EVP_DigestFinal_ex(c->md, out, &len) != 1 || len != 32) {
		ERR_clear_error();
		return BW_ECRYPTO;
	}
	return BW_OK;
}

void
sec_sha256_free(struct sec_sha256_ctx *c)
{
	if (c == NULL)
		return;
	EVP_MD_CTX_free(c->md);
	free(c);
}

/* HMAC-SHA256 (RFC 2104) of d under key into out. BW_OK or BW_ECRYPTO. */
enum bw_err
sec_hmac_sha256(const void *key, size_t klen, const void *d, size_t n,
    uint8_t out[32])
{
	static const unsigned char empty[1];
	unsigned int		   len = 0;

	/* OpenSSL 3 refuses a NULL key even when its length is 0. */
	if (key == NULL || klen == 0)
		key = empty;
	if (d == NULL)
		d = empty;
	if (klen > INT32_MAX ||
	    HMAC(EVP_sha256(), key, (int)klen, d, n, out, &len) == NULL ||
	    len != 32) {
		ERR_clear_error();
		return BW_ECRYPTO;
	}
	return BW_OK;
}

/* One AES-256-GCM pass; enc selects sealing. See sec.h. */
static enum bw_err
sec_gcm(int enc, const uint8_t key[32], const uint8_t iv[12], const void *aad,
    size_t alen, const void *in, size_t n, uint8_t *out, uint8_t tag[16])
{
	EVP_CIPHER_CTX *c;
	int		len = 0, ok;

	if (n > INT32_MAX || alen > INT32_MAX)
		return BW_ETOOBIG;
	c = EVP_CIPHER_CTX_new();
	if (c == NULL)
		return BW_ENOMEM;
	ok = EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, key, iv, enc) == 1 &&
	    (alen == 0 ||
		EVP_CipherUpdate(c, NULL, &len, aad, (int)alen) == 1) &&
	    (n == 0 || EVP_CipherUpdate(c, out, &len, in, (int)n) == 1);
	if (ok && !enc)
		ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, tag) == 1;
	if (ok)
		ok = EVP_CipherFinal_ex(c, out + (n > 0 ? len : 0), &len) == 1;
	if (ok && enc)
		ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, tag) == 1;
	EVP_CIPHER_CTX_free(c);
	if (!ok) {
		ERR_clear_error();
		return BW_ECRYPTO;
	}
	return BW_OK;
}

enum bw_err
sec_seal(const uint8_t key[32], const void *aad, size_t alen, const void *pt,
    size_t n, struct buf *out)
{
	uint8_t	   *ct, iv[12], tag[16];
	enum bw_err er;

	if (n > SIZE_MAX - SEC_SEAL_OVERHEAD)
		return BW_ETOOBIG;
	ct = malloc(n > 0 ? n : 1);
	if (ct == NULL)
		return BW_ENOMEM;
	er = sec_random(iv, sizeof(iv));
	if (er == BW_OK)
		er = sec_gcm(1, key, iv, aad, alen, pt, n, ct, tag);
	if (er == BW_OK)
		er = buf_add(out, iv, sizeof(iv));
	if (er == BW_OK)
		er = buf_add(out, ct, n);
	if (er == BW_OK)
		er = buf_add(out, tag, sizeof(tag));
	sec_wipe(ct, n);
	free(ct);
	return er;
}

enum bw_err
sec_open(const uint8_t key[32], const void *aad, size_t alen, const void *ct,
    size_t n, struct buf *out)
{
	const uint8_t *p = ct;
	uint8_t	      *pt, tag[16];
	size_t	       m;
	enum bw_err    er;

	if (n < SEC_SEAL_OVERHEAD)
		return BW_ECRYPTO;
	m = n - SEC_SEAL_OVERHEAD;
	pt = malloc(m > 0 ? m : 1);
	if (pt == NULL)
		return BW_ENOMEM;
	memcpy(tag, p + n - 16, 16);
	er = sec_gcm(0, key, p, aad, alen, p + 12, m, pt, tag);
	if (er == BW_OK)
		er = buf_add(out, pt, m);
	sec_wipe(pt, m);
	free(pt);
	return er;
}

/* Lower-case hex of d[0..n) into out (2n+1 bytes, NUL-terminated). */
void
sec_hex(const uint8_t *d, size_t n, char *out)
{
	static const char hx[] = "0123456789abcdef";
	size_t		  i;

	for (i = 0; i < n; i++) {
		out[2 * i] = hx[d[i] >> 4];
		out[2 * i + 1] = hx[d[i] & 0x0f];
	}
	out[2 * n] = '\0';
}

/* Value of one hex digit (either case), or -1. */
static int
sec_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Decodes exactly 2*outlen hex digits (either case). Returns BW_OK, or
 * BW_EINVAL for a wrong length or a non-hex character (out untouched).
 */
enum bw_err
sec_unhex(const char *s, size_t slen, uint8_t *out, size_t outlen)
{
	size_t i;

	if (outlen > SIZE_MAX / 2 || slen != 2 * outlen)
		return BW_EINVAL;
	for (i = 0; i < slen; i++)
		if (sec_hexval(s[i]) < 0)
			return BW_EINVAL;
	for (i = 0; i < outlen; i++)
		out[i] = (uint8_t)(sec_hexval(s[2 * i]) << 4 |
		    sec_hexval(s[2 * i + 1]));
	return BW_OK;
}

static const char b64std[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/*
 * Appends base64 (RFC 4648 §4, or §5 with the url alphabet) of d[0..n) to
 * out, with '=' padding when pad. Returns BW_OK, or BW_ETOOBIG/BW_ENOMEM
 * with out as it was.
 */
/*
 * Ends a base64 coding into out: an empty result is still a string; on
 * failure out is put back to its first olen bytes.
 */
static enum bw_err
sec_b64_end(struct buf *out, size_t olen, enum bw_err er)
{
	if (er == BW_OK && out->p == NULL)
		er = buf_add(out, "", 0);
	if (er != BW_OK && out->p != NULL) {
		out->len = olen;
		out->p[olen] = '\0';
	}
	return er;
}

static enum bw_err
sec_b64enc(const uint8_t *d, size_t n, struct buf *out, const char *abc,
    int pad)
{
	char	    q[4];
	size_t	    i, olen = out->len, k;
	uint32_t    v;
	enum bw_err er = BW_OK;

	for (i = 0; i < n && er == BW_OK; i += 3) {
		v = (uint32_t)d[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)d[i + 1] << 8;
		if (i + 2 < n)
			v |= d[i + 2];
		q[0] = abc[v >> 18 & 0x3f];
		q[1] = abc[v >> 12 & 0x3f];
		q[2] = i + 1 < n ? abc[v >> 6 & 0x3f] : '=';
		q[3] = i + 2 < n ? abc[v & 0x3f] : '=';
		k = 4;
		if (!pad)
			while (k > 0 && q[k - 1] == '=')
				k--;
		er = buf_add(out, q, k);
	}
	return sec_b64_end(out, olen, er);
}

enum bw_err
sec_b64(const uint8_t *d, size_t n, struct buf *out)
{
	return sec_b64enc(d, n, out, b64std, 1);
}

enum bw_err
sec_b64url(const uint8_t *d, size_t n, struct buf *out)
{
	return sec_b64enc(d, n, out, b64url, 0);
}

/* Index of c in the alphabet abc, or -1 ('=' and NUL are never in it). */
static int
sec_b64val(const char *abc, char c)
{
	const char *p;

	if (c == '\0')
		return -1;
	p = memchr(abc, c, 64);
	return p == NULL ? -1 : (int)(p - abc);
}

/*
 * Strict base64 decoder for one alphabet: padding is optional, but when
 * present it must make the length a multiple of 4; no whitespace, no
 * characters of the other alphabet, and the unused bits of the last
 * character must be zero (RFC 4648 §3.5), so that each byte string has
 * exactly one accepted encoding. Appends to out. Returns BW_OK, BW_EINVAL
 * (out as it was), BW_ETOOBIG or BW_ENOMEM.
 */
static enum bw_err
sec_b64dec(const char *s, size_t n, struct buf *out, const char *abc)
{
	uint8_t	    o[3];
	size_t	    i, npad = 0, olen = out->len, rem, k;
	uint32_t    v;
	int	    c;
	enum bw_err er = BW_OK;

	while (npad < 2 && n > 0 && s[n - 1] == '=') {
		n--;
		npad++;
	}
	rem = n % 4;
	if (rem == 1 || (npad > 0 && (rem == 0 || rem + npad != 4)))
		return BW_EINVAL;
	for (i = 0; i < n; i++)
		if (sec_b64val(abc, s[i]) < 0)
			return BW_EINVAL;
	if (rem == 2 && (sec_b64val(abc, s[n - 1]) & 0x0f) != 0)
		return BW_EINVAL;
	if (rem == 3 && (sec_b64val(abc, s[n - 1]) & 0x03) != 0)
		return BW_EINVAL;
	for (i = 0; i < n && er == BW_OK; i += 4) {
		v = 0;
		for (k = 0; k < 4; k++) {
			c = i + k < n ? sec_b64val(abc, s[i + k]) : 0;
			v = v << 6 | (uint32_t)c;
		}
		o[0] = (uint8_t)(v >> 16);
		o[1] = (uint8_t)(v >> 8);
		o[2] = (uint8_t)v;
		k = n - i >= 4 ? 3 : n - i - 1;
		er = buf_add(out, o, k);
	}
	return sec_b64_end(out, olen, er);
}

enum bw_err
sec_unb64(const char *s, size_t n, struct buf *out)
{
	return sec_b64dec(s, n, out, b64std);
}

enum bw_err
sec_unb64url(const char *s, size_t n, struct buf *out)
{
	return sec_b64dec(s, n, out, b64url);
}

/* n bytes from the CSPRNG. Returns BW_OK, BW_EINVAL or BW_ECRYPTO. */
enum bw_err
sec_random(uint8_t *out, size_t n)
{
	if (n > INT32_MAX)
		return BW_EINVAL;
	if (n == 0)
		return BW_OK;
	if (RAND_bytes(out, (int)n) != 1) {
		ERR_clear_error();
		return BW_ECRYPTO;
	}
	return BW_OK;
}

/* 32 random bytes as 43 base64url characters appended to out. */
enum bw_err
sec_token(struct buf *out)
{
	uint8_t	    r[32];
	enum bw_err er;

	er = sec_random(r, sizeof(r));
	if (er == BW_OK)
		er = sec_b64url(r, sizeof(r), out);
	sec_wipe(r, sizeof(r));
	return er;
}

/* Random version-4 UUID (RFC 9562 §5.4), lower-case, into out[37]. */
enum bw_err
sec_uuid(char out[37])
{
	static const char hx[] = "0123456789abcdef";
	uint8_t		  r[16];
	size_t		  i, j = 0;
	enum bw_err	  er;

	er = sec_random(r, sizeof(r));
	if (er != BW_OK)
		return er;
	r[6] = (r[6] & 0x0f) | 0x40;
	r[8] = (r[8] & 0x3f) | 0x80;
	for (i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[j++] = '-';
		out[j++] = hx[r[i] >> 4];
		out[j++] = hx[r[i] & 0x0f];
	}
	out[j] = '\0';
	return BW_OK;
}

/*
 * 1 when a[0..alen) equals b[0..blen), else 0, with CRYPTO_memcmp. When the
 * lengths differ the answer is 0, but the bytes of the shorter length are
 * still compared so that the time depends only on the lengths, never on
 * the contents.
 */
int
sec_eq(const void *a, size_t alen, const void *b, size_t blen)
{
	size_t n = alen < blen ? alen : blen;
	int    diff = 0;

	if (n > 0)
		diff = CRYPTO_memcmp(a, b, n);
	return (diff == 0) & (alen == blen);
}

/* An Ed25519 key from a 32-byte seed (caller frees), or NULL. */
static EVP_PKEY *
sec_ed25519_key(const uint8_t seed[32])
{
	EVP_PKEY *k;

	k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
	if (k == NULL)
		ERR_clear_error();
	return k;
}

/* The public key of seed (RFC 8032 §5.1.5). BW_OK or BW_ECRYPTO. */
enum bw_err
sec_ed25519_pub(const uint8_t seed[32], uint8_t pub[32])
{
	EVP_PKEY   *k;
	size_t	    len = 32;
	enum bw_err er = BW_OK;

	k = sec_ed25519_key(seed);
	if (k == NULL)
		return BW_ECRYPTO;
	if (EVP_PKEY_get_raw_public_key(k, pub, &len) != 1 || len != 32) {
		ERR_clear_error();
		er = BW_ECRYPTO;
	}
	EVP_PKEY_free(k);
	return er;
}

/* Pure Ed25519 signature (RFC 8032 §5.1.6) of msg. BW_OK or BW_ECRYPTO. */
enum bw_err
sec_ed25519_sign(const uint8_t seed[32], const void *msg, size_t n,
    uint8_t sig[64])
{
	EVP_PKEY   *k = NULL;
	EVP_MD_CTX *md = NULL;
	size_t	    len = 64;
	enum bw_err er = BW_ECRYPTO;

	if (msg == NULL)
		msg = "";
	k = sec_ed25519_key(seed);
	if (k == NULL)
		goto out;
	md = EVP_MD_CTX_new();
	if (md == NULL)
		goto out;
	if (EVP_DigestSignInit(md, NULL, NULL, NULL, k) != 1 ||
	    EVP_DigestSign(md, sig, &len, msg, n) != 1 || len != 64)
		goto out;
	er = BW_OK;
out:
	if (er != BW_OK)
		ERR_clear_error();
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(k);
	return er;
}

/*
 * Verifies an Ed25519 signature (RFC 8032 §5.1.7). Returns BW_OK when
 * valid, BW_ECRYPTO when not (or when OpenSSL fails).
 */
enum bw_err
sec_ed25519_verify(const uint8_t pub[32], const void *msg, size_t n,
    const uint8_t sig[64])
{
	EVP_PKEY   *k = NULL;
	EVP_MD_CTX *md = NULL;
	enum bw_err er = BW_ECRYPTO;

	if (msg == NULL)
		msg = "";
	k = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, 32);
	if (k == NULL)
		goto out;
	md = EVP_MD_CTX_new();
	if (md == NULL)
		goto out;
	if (EVP_DigestVerifyInit(md, NULL, NULL, NULL, k) != 1 ||
	    EVP_DigestVerify(md, sig, 64, msg, n) != 1)
		goto out;
	er = BW_OK;
out:
	if (er != BW_OK)
		ERR_clear_error();
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(k);
	return er;
}

void
sec_wipe(void *p, size_t n)
{
	if (p != NULL && n > 0)
		OPENSSL_cleanse(p, n);
}
