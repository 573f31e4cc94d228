/* SPDX-License-Identifier: MIT */
/*
 * Cryptographic helpers over OpenSSL: SHA-256, HMAC-SHA256, base64 and
 * base64url, hex, random tokens and UUIDs, constant-time compare, Ed25519.
 * Output buffers are the caller's; sizes are stated per function.
 */
#ifndef BW_SEC_H
#define BW_SEC_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

#define SEC_SHA256_LEN	     32
#define SEC_ED25519_PUB_LEN  32
#define SEC_ED25519_SEED_LEN 32
#define SEC_ED25519_SIG_LEN  64
#define SEC_UUID_LEN	     36 /* without NUL */

enum bw_err sec_sha256(const void *d, size_t n, uint8_t out[32]);
/* Incremental SHA-256 (streaming uploads). */
struct sec_sha256_ctx;
struct sec_sha256_ctx *sec_sha256_new(void);
enum bw_err sec_sha256_update(struct sec_sha256_ctx *, const void *, size_t);
enum bw_err sec_sha256_final(struct sec_sha256_ctx *, uint8_t out[32]);
void	    sec_sha256_free(struct sec_sha256_ctx *);
enum bw_err sec_hmac_sha256(const void *key, size_t klen, const void *d,
    size_t n, uint8_t out[32]);
/*
 * AES-256-GCM: sec_seal() appends nonce (12 random bytes) || ciphertext ||
 * tag (16) of pt to out, authenticating aad too; sec_open() reverses it
 * (BW_ECRYPTO when anything was changed or the key is wrong).
 */
#define SEC_SEAL_OVERHEAD 28
enum bw_err sec_seal(const uint8_t key[32], const void *aad, size_t alen,
    const void *pt, size_t n, struct buf *out);
enum bw_err sec_open(const uint8_t key[32], const void *aad, size_t alen,
    const void *ct, size_t n, struct buf *out);
/* Lower-case hex; out holds 2n+1 bytes. */
void sec_hex(const uint8_t *d, size_t n, char *out);
/* Decodes exactly 2*outlen hex chars; BW_EINVAL otherwise. */
enum bw_err sec_unhex(const char *s, size_t slen, uint8_t *out, size_t outlen);
/* Standard base64 with padding / base64url without padding, appended. */
enum bw_err sec_b64(const uint8_t *d, size_t n, struct buf *out);
enum bw_err sec_b64url(const uint8_t *d, size_t n, struct buf *out);
/* Decodes base64 (padded or not) or base64url; strict alphabet per call. */
enum bw_err sec_unb64(const char *s, size_t n, struct buf *out);
enum bw_err sec_unb64url(const char *s, size_t n, struct buf *out);
enum bw_err sec_random(uint8_t *out, size_t n);
/* 32 random bytes as base64url (43 chars) appended to out. */
enum bw_err sec_token(struct buf *out);
/* Random version-4 UUID; out holds 37 bytes. */
enum bw_err sec_uuid(char out[37]);
/* 1 when equal; time depends only on the lengths. */
int sec_eq(const void *a, size_t alen, const void *b, size_t blen);
/* Ed25519 (RFC 8032) from a 32-byte seed. */
enum bw_err sec_ed25519_pub(const uint8_t seed[32], uint8_t pub[32]);
enum bw_err sec_ed25519_sign(const uint8_t seed[32], const void *msg, size_t n,
    uint8_t sig[64]);
/* BW_OK when valid, BW_ECRYPTO when not. */
enum bw_err sec_ed25519_verify(const uint8_t pub[32], const void *msg, size_t n,
    const uint8_t sig[64]);
/* Wipes memory (OPENSSL_cleanse). */
void sec_wipe(void *p, size_t n);

#endif
