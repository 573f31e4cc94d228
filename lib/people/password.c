/* SPDX-License-Identifier: MIT */
/*
 * Passwords: scrypt through OpenSSL 3's EVP_KDF "SCRYPT", the
 * self-describing stored string, constant-time verification (see
 * password.h).
 */
#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "core/sec.h"
#include "people/password.h"

/* The most memory one derivation may use (OpenSSL's maxmem_bytes). */
#define PASSWORD_MAXMEM ((uint64_t)1 << 30)

/* Fetched once per process. */
static EVP_KDF *password_kdf;

void
password_params_cfg(const struct config *cfg, struct password_params *par)
{
	par->n = (uint64_t)cfg->password_scrypt_n;
	par->r = (uint32_t)cfg->password_scrypt_r;
	par->p = (uint32_t)cfg->password_scrypt_p;
}

int
password_acceptable(const char *pw, size_t len)
{
	return pw != NULL && len >= PASSWORD_MIN_LEN &&
	    len <= PASSWORD_MAX_LEN && memchr(pw, '\0', len) == NULL;
}

/* 1 when par is within what this code derives. */
static int
password_params_ok(const struct password_params *par)
{
	if (par->n < 2 || (par->n & (par->n - 1)) != 0 || par->r < 1 ||
	    par->r > 64 || par->p < 1 || par->p > 64)
		return 0;
	/* 128 r N for V, 128 r p for B (RFC 7914 §5). */
	return par->n <= PASSWORD_MAXMEM / (128u * par->r) &&
	    (uint64_t)128 * par->r * par->p <= PASSWORD_MAXMEM;
}

enum bw_err
password_scrypt(const void *pw, size_t pwlen, const void *salt, size_t slen,
    const struct password_params *par, uint8_t *out, size_t outlen)
{
	OSSL_PARAM   prm[7], *q = prm;
	EVP_KDF_CTX *ctx;
	uint64_t     n = par->n, maxmem = PASSWORD_MAXMEM + 65536;
	uint32_t     r = par->r, p = par->p;
	int	     ok;

	if (!password_params_ok(par) || outlen == 0)
		return BW_EINVAL;
	if (password_kdf == NULL &&
	    (password_kdf = EVP_KDF_fetch(NULL, "SCRYPT", NULL)) == NULL) {
		ERR_clear_error();
		return BW_ECRYPTO;
	}
	ctx = EVP_KDF_CTX_new(password_kdf);
	if (ctx == NULL) {
		ERR_clear_error();
		return BW_ECRYPTO;
	}
	*q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD,
	    (void *)(uintptr_t)(pwlen > 0 ? pw : ""), pwlen);
	*q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
	    (void *)(uintptr_t)(slen > 0 ? salt : ""), slen);
	*q++ = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n);
	*q++ = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r);
	*q++ = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p);
	*q++ =
	    OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem);
	*q = OSSL_PARAM_construct_end();
	ok = EVP_KDF_derive(ctx, out, outlen, prm);
	EVP_KDF_CTX_free(ctx);
	if (ok != 1) {
		ERR_clear_error();
		return BW_ECRYPTO;
	}
	return BW_OK;
}

/* log2 of a power of two. */
static unsigned
password_log2(uint64_t n)
{
	unsigned l = 0;

	while (n > 1) {
		n >>= 1;
		l++;
	}
	return l;
}

/* Standard base64 of d without padding, appended to out. */
static enum bw_err
password_b64(const uint8_t *d, size_t n, struct buf *out)
{
	enum bw_err er;

	er = sec_b64(d, n, out);
	while (er == BW_OK && out->len > 0 && out->p[out->len - 1] == '=')
		out->p[--out->len] = '\0';
	return er;
}

enum bw_err
password_hash(const char *pw, size_t len, const struct password_params *par,
    struct buf *out)
{
	uint8_t	    salt[PASSWORD_SALT_LEN], key[PASSWORD_KEY_LEN];
	enum bw_err er;

	if (pw == NULL || len > PASSWORD_MAX_LEN)
		return BW_EINVAL;
	er = sec_random(salt, sizeof(salt));
	if (er == BW_OK)
		er = password_scrypt(pw, len, salt, sizeof(salt), par, key,
		    sizeof(key));
	if (er == BW_OK)
		er = buf_printf(out, "$scrypt$ln=%u,r=%u,p=%u$",
		    password_log2(par->n), (unsigned)par->r, (unsigned)par->p);
	if (er == BW_OK)
		er = password_b64(salt, sizeof(salt), out);
	if (er == BW_OK)
		er = buf_addc(out, '$');
	if (er == BW_OK)
		er = password_b64(key, sizeof(key), out);
	sec_wipe(key, sizeof(key));
	return er;
}

/*
 * Reads "<name>=<digits>" at *s up to the byte end; moves *s past it.
 * Returns 0 with *v, or -1.
 */
static int
password_num(const char **s, const char *name, char end, unsigned long *v)
{
	size_t	      nl = strlen(name);
	unsigned long x = 0;
	const char   *p = *s;

	if (strncmp(p, name, nl) != 0 || p[nl] != '=')
		return -1;
	p += nl + 1;
	if (*p < '0' || *p > '9' || (*p == '0' && p[1] != end))
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		x = x * 10 + (unsigned long)(*p - '0');
		if (x > 1000000)
			return -1;
	}
	if (*p != end)
		return -1;
	*s = p + 1;
	*v = x;
	return 0;
}

/* Decodes the base64 field s[0..n) into out (1..max bytes). */
static int
password_field(const char *s, size_t n, uint8_t *out, size_t min, size_t max,
    size_t *len)
{
	struct buf b;
	int	   rc = -1;

	buf_init(&b, 256);
	if (n > 0 && sec_unb64(s, n, &b) == BW_OK && b.len >= min &&
	    b.len <= max) {
		memcpy(out, b.p, b.len);
		*len = b.len;
		rc = 0;
	}
	buf_free(&b);
	return rc;
}

enum bw_err
password_parse(const char *stored, struct password_parsed *out)
{
	struct password_parsed pp;
	const char	      *s = stored, *salt, *d;
	unsigned long	       ln, r, p;

	if (stored == NULL || strlen(stored) > PASSWORD_HASH_MAX ||
	    strncmp(s, "$scrypt$", 8) != 0)
		return BW_EINVAL;
	s += 8;
	memset(&pp, 0, sizeof(pp));
	if (password_num(&s, "ln", ',', &ln) != 0 ||
	    password_num(&s, "r", ',', &r) != 0 ||
	    password_num(&s, "p", '$', &p) != 0 || ln < 1 || ln > 30)
		return BW_EINVAL;
	pp.par.n = (uint64_t)1 << ln;
	pp.par.r = (uint32_t)r;
	pp.par.p = (uint32_t)p;
	if (!password_params_ok(&pp.par))
		return BW_EINVAL;
	salt = s;
	d = strchr(salt, '$');
	if (d == NULL || strchr(d + 1, '$') != NULL ||
	    password_field(salt, (size_t)(d - salt), pp.salt, 8,
		sizeof(pp.salt), &pp.salt_len) != 0 ||
	    password_field(d + 1, strlen(d + 1), pp.hash, 16, sizeof(pp.hash),
		&pp.hash_len) != 0)
		return BW_EINVAL;
	*out = pp;
	return BW_OK;
}

void
password_dummy(const char *pw, size_t len, const struct password_params *par)
{
	static const uint8_t salt[PASSWORD_SALT_LEN] = "bulwark-dummy-sa";
	uint8_t		     key[PASSWORD_KEY_LEN];

	(void)password_scrypt(pw != NULL ? pw : "", pw != NULL ? len : 0, salt,
	    sizeof(salt), par, key, sizeof(key));
	sec_wipe(key, sizeof(key));
}

enum bw_err
password_verify(const char *pw, size_t len, const char *stored,
    const struct password_params *dummy)
{
	struct password_parsed pp;
	uint8_t		       key[64];
	enum bw_err	       er;

	if (pw == NULL || len > PASSWORD_MAX_LEN) {
		password_dummy("", 0, dummy);
		return BW_EAUTH;
	}
	if (stored == NULL) {
		password_dummy(pw, len, dummy);
		return BW_EAUTH;
	}
	er = password_parse(stored, &pp);
	if (er != BW_OK) {
		password_dummy(pw, len, dummy);
		return BW_EINVAL;
	}
	er = password_scrypt(pw, len, pp.salt, pp.salt_len, &pp.par, key,
	    pp.hash_len);
	if (er == BW_OK)
		er = sec_eq(key, pp.hash_len, pp.hash, pp.hash_len) ? BW_OK
								    : BW_EAUTH;
	sec_wipe(key, sizeof(key));
	sec_wipe(&pp, sizeof(pp));
	return er;
}

int
password_stale(const char *stored, const struct password_params *par)
{
	struct password_parsed pp;

	if (password_parse(stored, &pp) != BW_OK)
		return 1;
	return pp.par.n != par->n || pp.par.r != par->r || pp.par.p != par->p ||
	    pp.salt_len != PASSWORD_SALT_LEN || pp.hash_len != PASSWORD_KEY_LEN;
}
