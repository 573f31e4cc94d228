/* SPDX-License-Identifier: MIT */
/*
 * The credit ledger (TigerBeetle's model in PostgreSQL): double-entry
 * accounts per org (one per user, plus system accounts `purchases`,
 * `bookings`, `refunds`, `debts`), transfers that move an amount from one
 * account to another with a unique idempotency id per org, two-phase
 * reservations (pending -> committed | released | expired) and bookings
 * whose debit commits with the booking row or not at all.
 *
 * Invariants, enforced by the database and not only by this code:
 *   - a user account's available = balance - reserved is never negative
 *     (CHECK constraint);
 *   - the balances of one org sum to 0 (every transfer debits one account
 *     and credits another by the same amount);
 *   - a transfer id / anchor (a provider payment id) is applied once, ever.
 * Rows are locked with SELECT ... FOR UPDATE in account-id order so that
 * opposite transfers never deadlock; db_tx() retries anyway.
 *
 * Functions taking `struct db *` and named *_tx run inside the caller's
 * transaction (db_in_tx() must be true); the others open their own.
 */
#ifndef BW_CREDIT_H
#define BW_CREDIT_H

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "core/db.h"
#include "core/err.h"

#define CREDIT_USER_ID_MAX 128

/*
 * What a credit operation decided. These are business results, not
 * errors: the operation ran (BW_OK) and the ledger said no. A bw_err is
 * returned only when the operation could not run (bad argument, database).
 */
enum credit_outcome {
	CREDIT_OK,
	CREDIT_INSUFFICIENT, /* available < the amount asked for */
	CREDIT_EXPIRED,	     /* the reservation expired; credits returned */
	CREDIT_WRONG_STATE,  /* not pending; a key with another user/amount */
	CREDIT_NOT_FOUND,    /* no such reservation in the org */
	CREDIT_DUPLICATE,    /* request_key already made a booking */
	CREDIT__MAX
};

/*
 * Grants amount credits to user_id's account from the org's `purchases`
 * account, inside the caller's transaction. anchor (e.g. "stripe:pi_123")
 * is the permanent unique key of the money effect: a second grant with the
 * same anchor changes nothing and sets *applied = false. BW_EINVAL on a bad
 * user id or amount <= 0.
 */
enum bw_err credit_grant_tx(struct db *, const char *org_id,
    const char *user_id, int64_t amount, const char *anchor, bool *applied);
/*
 * Takes back the credits of the grant with anchor grant_anchor (refund),
 * anchored by refund_anchor: as much as is available moves to `refunds`,
 * the rest is recorded as a debt the operator sees. *applied as above.
 */
enum bw_err credit_refund_tx(struct db *, const char *org_id,
    const char *grant_anchor, const char *refund_anchor, bool *applied);
/* {"user_id","balance","reserved","available"}; BW_ENOTFOUND if none. */
enum bw_err credit_account_get(struct db *, const char *org_id,
    const char *user_id, struct json_object **out);
/*
 * Books class_id for user_id at `credits`: debit + booking in one
 * transaction. BW_OK with *oc: CREDIT_OK and *out = {"booking_id",
 * "balance",...} (new, caller puts), or CREDIT_INSUFFICIENT when
 * available < credits (nothing is written), or CREDIT_DUPLICATE when
 * request_key (hex SHA-256 of the Idempotency-Key, or NULL) already made a
 * booking in org (nothing is written). BW_EINVAL on bad arguments.
 */
enum bw_err credit_book(struct db *, const char *org_id, const char *user_id,
    const char *class_id, int64_t credits, const char *request_key,
    struct json_object **out, enum credit_outcome *oc);
/*
 * Reserves amount under reservation_key (unique per org), expiring after
 * ttl_s. BW_OK with *oc: CREDIT_OK and *out = {"id","state","amount",
 * "expires_at",...} (new, caller puts), *created = false when the same key
 * with the same user and amount already named one; CREDIT_WRONG_STATE when
 * the key names another user or amount; CREDIT_INSUFFICIENT when
 * available < amount.
 */
enum bw_err credit_reserve(struct db *, const char *org_id, const char *user_id,
    int64_t amount, const char *reservation_key, int ttl_s,
    struct json_object **out, bool *created, enum credit_outcome *oc);
/*
 * Commits (the reserved amount becomes a transfer to `bookings`) or
 * releases a pending reservation. BW_OK with *oc: CREDIT_OK and *out (new,
 * caller puts); CREDIT_NOT_FOUND (another org's, unknown or not a UUID);
 * CREDIT_EXPIRED when it expired (its credits are released in the same
 * call); CREDIT_WRONG_STATE when no longer pending.
 */
/*
 * *found: whether org has a reservation with this id (any state). A
 * malformed id is simply not found.
 */
enum bw_err credit_resv_exists(struct db *, const char *org_id,
    const char *reservation_id, bool *found);
enum bw_err
credit_commit(struct db *, const char *org_id, const char *reservation_id,
    struct json_object **out, enum credit_outcome *oc);
enum bw_err
credit_release(struct db *, const char *org_id, const char *reservation_id,
    struct json_object **out, enum credit_outcome *oc);
/* Releases every expired pending reservation (all orgs); *n the count. */
enum bw_err credit_expire(struct db *, int *n);
/*
 * Moves amount between two accounts of one org (tests, operator tools):
 * from/to are user ids or "system:<name>". transfer_id makes it idempotent:
 * a second call sets *applied = false. BW_OK with *oc CREDIT_OK, or
 * CREDIT_INSUFFICIENT when a user account has less available.
 */
enum bw_err credit_transfer(struct db *, const char *org_id, const char *from,
    const char *to, int64_t amount, const char *transfer_id, bool *applied,
    enum credit_outcome *oc);
/*
 * Recomputes every balance (and reserved total) from transfers and pending
 * reservations and reports differences and per-org sums != 0 as a JSON
 * array (new, caller puts); org_id NULL checks all orgs. *clean tells.
 */
enum bw_err credit_check(struct db *, const char *org_id,
    struct json_object **problems, bool *clean);

#endif
