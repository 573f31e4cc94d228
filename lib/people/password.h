/* SPDX-License-Identifier: MIT */
/*
 * Passwords: scrypt (RFC 7914) through OpenSSL's KDF API, stored as one
 * self-describing string
 *
 *	$scrypt$ln=<log2 N>,r=<r>,p=<p>$<salt>$<hash>
 *
 * (salt and hash in standard base64 without padding, as PHC strings write
 * them), so the cost can be raised later: a stored hash is verified with
 * its own parameters. New hashes take a 16-byte random salt and a 32-byte
 * key. Verification compares in constant time.
 */
#ifndef BW_PEOPLE_PASSWORD_H
#define BW_PEOPLE_PASSWORD_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"

#define PASSWORD_MIN_LEN  10   /* bytes (UTF-8), docs/api/auth.md */
#define PASSWORD_MAX_LEN  1024 /* bytes: hashing cost stays bounded */
#define PASSWORD_SALT_LEN 16
#define PASSWORD_KEY_LEN  32
#define PASSWORD_HASH_MAX 256 /* bytes of a stored string */

struct password_params {
	uint64_t n; /* a power of two, >= 2 */
	uint32_t r;
	uint32_t p;
};

/* A parsed stored string. */
struct password_parsed {
	struct password_params par;
	uint8_t		       salt[64];
	size_t		       salt_len; /* 8..64 */
	uint8_t		       hash[64];
	size_t		       hash_len; /* 16..64 */
};

/* The parameters of new hashes: password_scrypt_n, _r, _p. */
void password_params_cfg(const struct config *, struct password_params *);
/*
 * 1 when pw (len bytes) is acceptable as a new password: PASSWORD_MIN_LEN
 * to PASSWORD_MAX_LEN bytes, no NUL.
 */
int password_acceptable(const char *pw, size_t len);
/*
 * scrypt(pw, salt, N, r, p) into out[0..outlen): the raw KDF (RFC 7914
 * §2). BW_EINVAL for parameters OpenSSL refuses or that need more than
 * 1 GiB, BW_ECRYPTO when OpenSSL fails.
 */
enum bw_err
password_scrypt(const void *pw, size_t pwlen, const void *salt, size_t slen,
    const struct password_params *par, uint8_t *out, size_t outlen);
/* Hashes pw with a fresh salt; the stored string is appended to out. */
enum bw_err password_hash(const char *pw, size_t len,
    const struct password_params *par, struct buf *out);
/* Parses a stored string; BW_EINVAL when it is not one this code wrote. */
enum bw_err password_parse(const char *stored, struct password_parsed *out);
/*
 * Checks pw against stored: BW_OK when it matches, BW_EAUTH when not,
 * BW_EINVAL when stored is malformed (NULL: no password set, BW_EAUTH
 * after the same work as a real check).
 */
enum bw_err password_verify(const char *pw, size_t len, const char *stored,
    const struct password_params *dummy);
/*
 * The work of one verification against nothing, so that an unknown e-mail
 * answers in about the time of a known one.
 */
void
password_dummy(const char *pw, size_t len, const struct password_params *par);
/* 1 when stored was made with other parameters than par (rehash). */
int password_stale(const char *stored, const struct password_params *par);

#endif
