/* SPDX-License-Identifier: MIT */
/*
 * Idempotency-Key middleware for creating POSTs (routes flagged
 * ROUTE_IDEMPOTENT), per the IETF httpapi Idempotency-Key draft, scoped to
 * the org. main.c calls mw_idem_begin() before the handler with the
 * SHA-256 of the body it read; raw-body routes (ROUTE_RAW_BODY) call it
 * themselves once they have hashed what they streamed. mw_idem_end() runs
 * after the handler in every case.
 */
#ifndef BW_MW_IDEM_H
#define BW_MW_IDEM_H

#include <stdint.h>

#include "req.h"

/*
 * Returns 1 when the handler should run (no key, or the key is now locked
 * by this request), 0 when the response is already set: a replay (stored
 * status and body, Idempotent-Replayed: true), 409 IDEMPOTENCY_KEY_IN_USE,
 * 422 IDEMPOTENCY_KEY_REUSED, 400 on a malformed key, 503 when the store
 * is down.
 */
int mw_idem_begin(struct req *r, const uint8_t body_sha256[32]);
/*
 * When begin locked the key, the handler ran inside a transaction begun
 * there (db_begin()); this stores the response in it and commits, so the
 * effect and its stored answer commit together or not at all. After a
 * retryable answer it rolls back and unlocks so that the key is not
 * poisoned. A COMMIT without an answer is settled by reading the row
 * (idem_settle()), never by releasing the key blindly. No-op when begin
 * did not lock.
 */
void mw_idem_end(struct req *r);

#endif
