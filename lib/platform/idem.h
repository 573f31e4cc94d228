/* SPDX-License-Identifier: MIT */
/*
 * The Idempotency-Key store (IETF httpapi Idempotency-Key draft, table
 * idempotency_keys): per (org, key) a lock while the first request runs,
 * then its stored response for replays; keys live BW_IDEM_TTL_S. The HTTP
 * side is fcgi/mw_idem.c; this module holds the SQL and the key syntax.
 */
#ifndef BW_IDEM_H
#define BW_IDEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/db.h"
#include "core/err.h"
#include "core/limits.h"

#define IDEM_FP_LEN    64 /* hex SHA-256 fingerprint */
#define IDEM_TOKEN_LEN 36 /* lock token, a UUID */

enum idem_outcome {
	IO_RUN,	     /* this request holds the lock: run the handler */
	IO_REPLAY,   /* completed before: replay the stored response */
	IO_IN_USE,   /* another request holds a live lock */
	IO_MISMATCH, /* the key was used with another fingerprint */
	IO__MAX
};

/* A stored response. idem_resp_init() before use, idem_resp_free() after. */
struct idem_resp {
	int	   status;
	char	   ctype[BW_MAX_IDEM_CTYPE + 1];
	struct buf headers; /* "Name: value\r\n" lines */
	struct buf body;
};

void idem_resp_init(struct idem_resp *);
void idem_resp_free(struct idem_resp *);

/*
 * Parses an Idempotency-Key header value: an sf-string (RFC 8941 §3.3.3,
 * quoted, with \" and \\ escapes) as the draft says, or for
 * interoperability a bare value of visible ASCII without '"' or '\'.
 * Blanks around it are ignored. The decoded key, 1..BW_MAX_IDEM_KEY
 * printable ASCII characters, goes to out. BW_EINVAL when malformed.
 */
enum bw_err idem_key_parse(const char *hdr, char out[BW_MAX_IDEM_KEY + 1]);
/*
 * The key as stored and as logged (its first 16 characters): the hex
 * SHA-256 of the Idempotency-Key, 65 bytes with the NUL. The key itself
 * never reaches the database, so a copy of the table cannot open the
 * sealed bodies. Natural keys of what a key creates are this too.
 */
enum bw_err idem_khash(const char *key, char out[65]);
/*
 * The request fingerprint: hex SHA-256 over method, NUL, path, NUL and
 * the body's SHA-256. Writes IDEM_FP_LEN + 1 bytes.
 */
enum bw_err idem_fingerprint(const char *method, const char *path,
    const uint8_t body_sha256[32], char out[IDEM_FP_LEN + 1]);
/*
 * Begins a request with key in org. Inserts a locked row (or overwrites an
 * expired one), else looks at the row there: another fingerprint gives
 * IO_MISMATCH; a stored response gives IO_REPLAY with it copied to *st; a
 * lock older than lock_timeout_s is taken over atomically (IO_RUN), a
 * younger one gives IO_IN_USE. On IO_RUN, token (IDEM_TOKEN_LEN + 1 bytes)
 * names this request's lock for idem_complete()/idem_release(), and
 * *took_over (may be NULL) tells whether a dead request's lock was taken.
 * Returns BW_OK with *oc set, or a db error (nothing locked then).
 */
enum bw_err idem_begin(struct db *, const char *org_id, const char *key,
    const char *fingerprint, int lock_timeout_s, enum idem_outcome *oc,
    char token[IDEM_TOKEN_LEN + 1], int *took_over, struct idem_resp *st);
/*
 * Stores the response of the request holding token. BW_ENOTFOUND when the
 * lock is no longer ours (taken over after the lock timeout); a db error.
 */
enum bw_err idem_complete(struct db *, const char *org_id, const char *key,
    const char *token, int status, const char *ctype, const char *headers,
    size_t hlen, const void *body, size_t blen);
/*
 * Deletes the row locked by token so that the key may be used again (after
 * a retryable failure). BW_ENOTFOUND when the lock is no longer ours.
 */
enum bw_err idem_release(struct db *, const char *org_id, const char *key,
    const char *token);
/*
 * Settles the key of a request whose transaction's COMMIT went out without
 * an answer (db_end() gave BW_EAMBIG). The completion is written in that
 * transaction, so the row tells: still locked by token means nothing
 * committed, and the key is released (*committed false); completed under
 * token means the effect and the stored response committed (*committed
 * true; db_need_sync() is noted, so the answer waits for the synchronous
 * standby: core/db.h). Waits for the lost transaction to end. BW_ENOTFOUND
 * when the row
 * is neither (taken over); a db error leaves the key locked.
 */
enum bw_err idem_settle(struct db *, const char *org_id, const char *key,
    const char *token, bool *committed);
/*
 * Deletes expired keys, at most batch rows per statement, statement after
 * statement until one deletes fewer than batch. *n gets the total deleted
 * (also on failure, what was deleted before it). For the cleanup worker.
 */
enum bw_err idem_purge(struct db *, int batch, int *n);

#endif
