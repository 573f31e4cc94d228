/* SPDX-License-Identifier: MIT */
/*
 * What the credit files share (lib/money/credit.c: accounts, transfers,
 * grants, bookings; credit_resv.c: reservations; credit_refund.c: refunds
 * and debts; credit_check.c: the ledger check). Not for use outside
 * lib/money/credit*.c.
 */
#ifndef BW_CREDIT_INT_H
#define BW_CREDIT_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "core/db.h"
#include "core/err.h"

/* A locked account row. */
struct credit_acct {
	char	id[24]; /* bigint as text, for parameters */
	int64_t balance;
	int64_t reserved;
	int	user; /* kind 'user': available stays >= 0 */
};

/*
 * What a transaction callback returns when the ledger said no (the
 * outcome is in its argument): db_tx() then rolls back whatever the
 * callback wrote (accounts created on demand), and the public function
 * answers BW_OK with the outcome.
 */
#define CREDIT_UNDO BW_ESTATE

/* 1 if s is 1..max characters of UTF-8 without control characters. */
int credit_text_valid(const char *s, int64_t max);

/* 1 if amount is a valid credit amount (1..BW_MAX_CREDITS). */
int credit_amount_valid(int64_t amount);

/*
 * Locks the accounts (kind[i], name[i]) of org, i < n (1 or 2), creating
 * missing ones, with SELECT ... FOR UPDATE in id order so that two
 * transactions over the same pair never wait on each other in a cycle.
 * out[i] matches (kind[i], name[i]). Inside a transaction only.
 */
enum bw_err
credit_lock(struct db *db, const char *org_id, const char *const *kind,
    const char *const *name, int n, struct credit_acct *out);

/*
 * Records a transfer of amount from debit to credit (both locked by the
 * caller) and moves the balances. key NULL gets a fresh "<kind>:<uuid>".
 * A key or anchor already used sets *applied = false and changes nothing.
 * transfer_id (37 bytes, may be NULL) receives the new transfer's id.
 */
enum bw_err credit_move(struct db *db, const char *org_id,
    struct credit_acct *debit, struct credit_acct *credit, int64_t amount,
    const char *kind, const char *key, const char *anchor, const char *reverses,
    char *transfer_id, bool *applied);

/* Adds delta to an account's reserved total (locked by the caller). */
enum bw_err credit_reserved_add(struct db *db, const char *org_id,
    const char *acct_id, int64_t delta);

#endif
