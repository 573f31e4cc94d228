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

#include "core/buf.h"
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
 * Refunds (lib/money/credit_refund.c, tables credit_payments and
 * credit_refunds). A refund takes back credits in proportion to the money
 * it returns: of a grant of C credits for a payment of P (minor units),
 * once R has been refunded in all, credit_refund_share(C, R, P) =
 * floor(C * min(R, P) / P) credits are taken back in all. Rounded down,
 * and over all refunds of the payment together rather than per refund, so
 * that what is taken back never exceeds the grant, a full refund takes it
 * all, and refunds of odd amounts lose nothing to rounding. Each refund
 * takes the difference between that total and what was taken back
 * before: as much as is available moves to `refunds`, the rest becomes a
 * debt (credit_debts) the operator sees.
 */

/* What credit_refund_tx() did with one refund. */
enum credit_refund_outcome {
	CREFUND_APPLIED,   /* recorded; *credits (maybe 0) taken back */
	CREFUND_DUPLICATE, /* its anchor, or a later state of its source,
			      was applied before: nothing changes */
	CREFUND_EARLY,	   /* no grant yet: remembered, the grant applies it */
	CREFUND_REFUSED,   /* currency other than the payment's: recorded,
			      nothing taken back */
	CREFUND__MAX
};

/* One refund of a payment, as its provider states it. */
struct credit_refund {
	const char *grant_anchor;  /* the payment's grant ("stripe:pi_1") */
	const char *refund_anchor; /* this refund's permanent anchor */
	const char *source;	   /* what refunded counts over: a Stripe
				      charge, or the Square refund itself */
	int64_t	    refunded; /* refunded to date by source, minor units, >0 */
	const char *currency; /* ISO 4217, upper case, of refunded */
	int64_t	    paid;     /* the payment's amount when the event states
				 it (used when none was recorded), else 0 */
};

/*
 * floor(credits * min(refunded, paid) / paid): the credits taken back in
 * all from a grant of credits once refunded of paid has been refunded.
 * credits when paid <= 0 (the payment's amount is unknown), 0 when
 * credits or refunded is <= 0. Never more than credits; exact for every
 * int64 argument (128-bit product).
 */
int64_t credit_refund_share(int64_t credits, int64_t refunded, int64_t paid);
/*
 * Records what the payment behind grant_anchor paid: amount (minor units,
 * 1..BW_MAX_WEBHOOK_MONEY) of currency (ISO 4217, upper case); the first
 * record stays. BW_EINVAL on a bad argument.
 */
enum bw_err credit_payment_tx(struct db *, const char *org_id,
    const char *grant_anchor, int64_t amount, const char *currency);
/*
 * Applies one refund inside the caller's transaction, which must also
 * serialize it with the grant of the same payment (the webhook path holds
 * webhook_anchor_lock_tx()). Once per refund_anchor, forever: a replay
 * answers the outcome the anchor got first (CREFUND_DUPLICATE when it was
 * applied). A refund whose refunded does not exceed what its source had
 * refunded before is CREFUND_DUPLICATE too (an older Stripe event arriving
 * late). The payment's amount is the one recorded with the grant, else
 * r->paid, else unknown: then the whole grant is taken back (grants from
 * before amounts were recorded). Without a grant the refund is
 * remembered (CREFUND_EARLY) for credit_refund_early_tx(). *credits
 * (may be NULL) gets the credits taken back, moved plus owed. BW_EINVAL on
 * a bad argument.
 */
enum bw_err
credit_refund_tx(struct db *, const char *org_id, const struct credit_refund *r,
    enum credit_refund_outcome *oc, int64_t *credits);
/*
 * Applies the refunds remembered for grant_anchor before its grant (call
 * it right after the grant, in its transaction), oldest first, as
 * credit_refund_tx() would have. *n (may be NULL) gets how many were
 * applied or refused.
 */
enum bw_err credit_refund_early_tx(struct db *, const char *org_id,
    const char *grant_anchor, int *n);
/* "applied", "duplicate", "early", "refused"; "?" when out of range. */
const char *credit_refund_outcome_name(enum credit_refund_outcome);
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
/*
 * Partial settlement of a pending reservation (lib/money/credit_capture.c,
 * table credit_captures): `capture` credits of what is still reserved move
 * to the org's `bookings` account (a transfer of kind "capture", key
 * "capture:<key>") and `give_back` credits return to the user's available
 * credits; the rest stays reserved. Once per key (unique per org): the
 * same key with the same reservation and amounts again changes nothing
 * (*applied = false, CREDIT_OK); with other ones CREDIT_WRONG_STATE.
 * CREDIT_INSUFFICIENT when capture + give_back exceeds what is left,
 * CREDIT_NOT_FOUND (another org's or unknown), CREDIT_EXPIRED (past its
 * expiry or expired), CREDIT_WRONG_STATE (committed or released). A
 * reservation with parts is finished by credit_release() (what is left
 * returns) or its expiry; credit_commit() refuses it (CREDIT_WRONG_STATE).
 * The _tx form runs inside the caller's transaction and writes nothing
 * unless it applies. BW_EINVAL on bad arguments (both amounts 0, one
 * negative, a bad key).
 */
struct credit_part {
	const char *org_id;
	const char *reservation_id;
	const char *key; /* 1..BW_MAX_RESERVATION_KEY */
	int64_t	    capture;
	int64_t	    give_back;
};
enum bw_err credit_capture_tx(struct db *, const struct credit_part *,
    bool *applied, enum credit_outcome *oc);
enum bw_err credit_capture(struct db *, const struct credit_part *,
    bool *applied, enum credit_outcome *oc);
/*
 * Appends bulwark_credit_reservations_expired_total (reservations in
 * state expired, cluster-wide) to out, for /metrics.
 */
enum bw_err credit_prom(struct db *, struct buf *out);
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
 * The org's credit movements since the start of its local day (orgs.timezone)
 * as a new object (caller puts): {"granted", "spent" (bookings, commits and
 * captures), "refunded", "bookings" (how many)}. BW_EINVAL for a bad id.
 */
enum bw_err
credit_today(struct db *, const char *org_id, struct json_object **out);
/*
 * Recomputes every balance (and reserved total) from transfers and pending
 * reservations and reports differences and per-org sums != 0 as a JSON
 * array (new, caller puts); org_id NULL checks all orgs. *clean tells.
 */
enum bw_err credit_check(struct db *, const char *org_id,
    struct json_object **problems, bool *clean);

#endif
