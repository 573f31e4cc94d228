/* SPDX-License-Identifier: MIT */
/*
 * The credit ledger over the tables of sql/0002_credits.sql: accounts
 * created on demand and locked in id order, idempotent transfers, grants
 * and atomic bookings. Reservations are in credit_resv.c, refunds (with
 * debts) in credit_refund.c, the check that recomputes every balance in
 * credit_check.c. See lib/money/credit.h.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/jv.h"
#include "core/limits.h"
#include "core/log.h"
#include "money/credit.h"
#include "money/credit_int.h"

/* 1 if s is 1..max characters of UTF-8 without control characters. */
int
credit_text_valid(const char *s, int64_t max)
{
	size_t	i, len;
	int64_t n;

	if (s == NULL)
		return 0;
	len = strlen(s);
	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return 0;
	n = jv_utf8_len(s, len);
	return n >= 1 && n <= max;
}

/* 1 if amount is a valid credit amount (1..BW_MAX_CREDITS). */
int
credit_amount_valid(int64_t amount)
{
	return amount >= 1 && amount <= BW_MAX_CREDITS;
}

/*
 * Locks the accounts (kind[i], name[i]) of org, i < n (1 or 2), creating
 * missing ones, with SELECT ... FOR UPDATE in id order so that two
 * transactions over the same pair never wait on each other in a cycle.
 * out[i] matches (kind[i], name[i]). Inside a transaction only.
 */
enum bw_err
credit_lock(struct db *db, const char *org_id, const char *const *kind,
    const char *const *name, int n, struct credit_acct *out)
{
	static const char sel[] =
	    "SELECT id, kind, name, balance, reserved FROM credit_accounts "
	    "WHERE org_id = $1 AND ((kind = $2 AND name = $3) OR "
	    "(kind = $4 AND name = $5)) ORDER BY id FOR UPDATE";
	static const char ins[] =
	    "INSERT INTO credit_accounts (org_id, kind, name) "
	    "VALUES ($1, $2, $3), ($1, $4, $5) ON CONFLICT DO NOTHING";
	const char *p[5];
	PGresult   *res = NULL;
	enum bw_err er;
	int	    attempt, found, i, row;

	if (n < 1 || n > 2)
		return BW_EINVAL;
	p[0] = org_id;
	p[1] = kind[0];
	p[2] = name[0];
	p[3] = kind[n - 1];
	p[4] = name[n - 1];
	for (attempt = 0; attempt < 2; attempt++) {
		PQclear(res);
		res = NULL;
		er = db_execp(db, "credit_lock", sel, 5, p, &res);
		if (er != BW_OK)
			goto out;
		found = 0;
		for (i = 0; i < n; i++) {
			for (row = 0; row < PQntuples(res); row++) {
				if (strcmp(PQgetvalue(res, row, 1), kind[i]) ||
				    strcmp(PQgetvalue(res, row, 2), name[i]))
					continue;
				snprintf(out[i].id, sizeof(out[i].id), "%s",
				    PQgetvalue(res, row, 0));
				if (db_col_i64(res, row, 3, &out[i].balance) !=
					BW_OK ||
				    db_col_i64(res, row, 4, &out[i].reserved) !=
					BW_OK) {
					er = BW_EDB;
					goto out;
				}
				out[i].user = strcmp(kind[i], "user") == 0;
				found++;
				break;
			}
		}
		if (found == n)
			goto out;
		if (attempt == 0) {
			er = db_execp(db, "credit_acct_new", ins, 5, p, NULL);
			if (er != BW_OK)
				goto out;
		}
	}
	log_kv(LL_ERROR, "credit account missing after insert", NULL);
	er = BW_EDB;
out:
	PQclear(res);
	return er;
}

/*
 * Records a transfer of amount from debit to credit (both locked by the
 * caller) and moves the balances. key NULL gets a fresh "<kind>:<uuid>".
 * A key or anchor already used sets *applied = false and changes nothing.
 * transfer_id (37 bytes, may be NULL) receives the new transfer's id.
 */
enum bw_err
credit_move(struct db *db, const char *org_id, struct credit_acct *debit,
    struct credit_acct *credit, int64_t amount, const char *kind,
    const char *key, const char *anchor, const char *reverses,
    char *transfer_id, bool *applied)
{
	static const char ins[] =
	    "INSERT INTO credit_transfers (org_id, transfer_key, anchor, "
	    "reverses, debit_account, credit_account, amount, kind) VALUES "
	    "($1, coalesce($2, $8 || ':' || gen_random_uuid()::text), $3, $4, "
	    "$5, $6, $7, $8) ON CONFLICT DO NOTHING RETURNING id";
	static const char upd[] =
	    "UPDATE credit_accounts SET balance = balance + "
	    "CASE WHEN id = $3 THEN $4::bigint ELSE -$4::bigint END, "
	    "updated_at = now() WHERE org_id = $1 AND id IN ($2, $3)";
	char	    amt[24];
	const char *p[8];
	PGresult   *res = NULL;
	enum bw_err er;

	snprintf(amt, sizeof(amt), "%" PRId64, amount);
	p[0] = org_id;
	p[1] = key;
	p[2] = anchor;
	p[3] = reverses;
	p[4] = debit->id;
	p[5] = credit->id;
	p[6] = amt;
	p[7] = kind;
	er = db_execp(db, "credit_xfer_ins", ins, 8, p, &res);
	if (er != BW_OK)
		goto out;
	if (PQntuples(res) != 1) {
		*applied = false;
		goto out;
	}
	if (transfer_id != NULL)
		snprintf(transfer_id, 37, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	res = NULL;
	p[1] = debit->id;
	p[2] = credit->id;
	p[3] = amt;
	er = db_execp(db, "credit_xfer_upd", upd, 4, p, &res);
	if (er != BW_OK)
		goto out;
	if (strcmp(PQcmdTuples(res), "2") != 0) {
		log_kv(LL_ERROR, "credit transfer touched wrong rows", NULL);
		er = BW_EDB;
		goto out;
	}
	debit->balance -= amount;
	credit->balance += amount;
	*applied = true;
out:
	PQclear(res);
	return er;
}

/* Adds delta to an account's reserved total (locked by the caller). */
enum bw_err
credit_reserved_add(struct db *db, const char *org_id, const char *acct_id,
    int64_t delta)
{
	static const char sql[] =
	    "UPDATE credit_accounts SET reserved = reserved + $3::bigint, "
	    "updated_at = now() WHERE org_id = $1 AND id = $2";
	char	    d[24];
	const char *p[3] = { org_id, acct_id, d };

	snprintf(d, sizeof(d), "%" PRId64, delta);
	return db_execp(db, "credit_reserved_add", sql, 3, p, NULL);
}

/* 1 if a transfer or debt already used this key/anchor (see callers). */
static enum bw_err
credit_seen(struct db *db, const char *name, const char *sql, int np,
    const char *const *p, bool *seen)
{
	PGresult   *res = NULL;
	enum bw_err er;

	er = db_execp(db, name, sql, np, p, &res);
	if (er == BW_OK)
		*seen = PQntuples(res) > 0;
	PQclear(res);
	return er;
}

enum bw_err
credit_grant_tx(struct db *db, const char *org_id, const char *user_id,
    int64_t amount, const char *anchor, bool *applied)
{
	static const char seen[] =
	    "SELECT 1 FROM credit_transfers WHERE org_id = $1 AND anchor = $2";
	const char	  *kind[2] = { "system", "user" };
	const char	  *name[2] = { "purchases", user_id };
	const char	  *p[2] = { org_id, anchor };
	struct credit_acct a[2];
	char		   key[BW_MAX_ANCHOR * 4 + 16];
	bool		   was = false;
	enum bw_err	   er;

	if (!db_in_tx(db) || org_id == NULL ||
	    !jv_is_uuid(org_id, strlen(org_id)) ||
	    !credit_text_valid(user_id, CREDIT_USER_ID_MAX) ||
	    !credit_amount_valid(amount) ||
	    !credit_text_valid(anchor, BW_MAX_ANCHOR))
		return BW_EINVAL;
	/* Cheap early answer for a redelivery; the insert decides anyway. */
	er = credit_seen(db, "credit_anchor_seen", seen, 2, p, &was);
	if (er != BW_OK)
		return er;
	if (was) {
		*applied = false;
		return BW_OK;
	}
	er = credit_lock(db, org_id, kind, name, 2, a);
	if (er != BW_OK)
		return er;
	snprintf(key, sizeof(key), "grant:%s", anchor);
	er = credit_move(db, org_id, &a[0], &a[1], amount, "grant", key, anchor,
	    NULL, NULL, applied);
	if (er == BW_OK && *applied) {
		char n[24];

		snprintf(n, sizeof(n), "%" PRId64, amount);
		log_kv(LL_INFO, "credits granted", "org_id", org_id, "anchor",
		    anchor, "amount", n, NULL);
	}
	return er;
}

enum bw_err
credit_account_get(struct db *db, const char *org_id, const char *user_id,
    struct json_object **out)
{
	static const char sql[] =
	    "SELECT balance, reserved FROM credit_accounts WHERE org_id = $1 "
	    "AND kind = 'user' AND name = $2";
	const char	   *p[2] = { org_id, user_id };
	struct json_object *o;
	PGresult	   *res = NULL;
	int64_t		    bal, rsv;
	enum bw_err	    er;

	if (org_id == NULL || !jv_is_uuid(org_id, strlen(org_id)) ||
	    !credit_text_valid(user_id, CREDIT_USER_ID_MAX))
		return BW_EINVAL;
	er = db_execp(db, "credit_acct_get", sql, 2, p, &res);
	if (er != BW_OK)
		goto out;
	if (PQntuples(res) != 1) {
		er = BW_ENOTFOUND;
		goto out;
	}
	if (db_col_i64(res, 0, 0, &bal) != BW_OK ||
	    db_col_i64(res, 0, 1, &rsv) != BW_OK) {
		er = BW_EDB;
		goto out;
	}
	o = json_object_new_object();
	json_object_object_add(o, "user_id", json_object_new_string(user_id));
	json_object_object_add(o, "balance", json_object_new_int64(bal));
	json_object_object_add(o, "reserved", json_object_new_int64(rsv));
	json_object_object_add(o, "available",
	    json_object_new_int64(bal - rsv));
	*out = o;
out:
	PQclear(res);
	return er;
}

/* clang-format off */
static const char credit_sql_today[] =
    "SELECT COALESCE(sum(t.amount) FILTER (WHERE t.kind = 'grant'), 0),"
    " COALESCE(sum(t.amount) FILTER (WHERE t.kind IN ('booking', 'commit', 'capture')), 0),"
    " COALESCE(sum(t.amount) FILTER (WHERE t.kind = 'refund'), 0),"
    " count(*) FILTER (WHERE t.kind = 'booking')"
    " FROM orgs o JOIN credit_transfers t ON t.org_id = o.id"
    " WHERE o.id = $1::uuid AND t.created_at >="
    "  date_trunc('day', now() AT TIME ZONE o.timezone) AT TIME ZONE o.timezone";
/* clang-format on */

enum bw_err
credit_today(struct db *db, const char *org_id, struct json_object **out)
{
	static const char *const names[4] = { "granted", "spent", "refunded",
		"bookings" };
	const char		*p[1] = { org_id };
	struct json_object	*o;
	PGresult		*res = NULL;
	enum bw_err		 er;
	int			 i;

	if (org_id == NULL || !jv_is_uuid(org_id, strlen(org_id)))
		return BW_EINVAL;
	er = db_execp(db, "credit_today", credit_sql_today, 1, p, &res);
	if (er != BW_OK)
		return er;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return BW_EDB;
	}
	o = json_object_new_object();
	for (i = 0; i < 4; i++)
		json_object_object_add(o, names[i],
		    json_object_new_int64(db_col_i64_or(res, 0, i, 0)));
	PQclear(res);
	*out = o;
	return BW_OK;
}

/* Arguments and results of one booking transaction. */
struct credit_book_arg {
	const char	   *org_id;
	const char	   *user_id;
	const char	   *class_id;
	int64_t		    credits;
	const char	   *request_key; /* or NULL */
	char		    booking_id[37];
	int64_t		    balance;
	enum credit_outcome oc;
};

/*
 * The booking transaction: lock the user's and the `bookings` accounts,
 * check available, debit (transfer), then the booking row. CREDIT_UNDO
 * with b->oc CREDIT_INSUFFICIENT when the credits are not available.
 */
static enum bw_err
credit_book_fn(struct db *db, void *arg)
{
	static const char ins[] =
	    "INSERT INTO bookings (org_id, user_id, class_id, credits, "
	    "transfer_id, request_key) VALUES ($1, $2, $3, $4, $5, $6)"
	    " RETURNING id";
	struct credit_book_arg *b = arg;
	const char	       *kind[2] = { "user", "system" };
	const char	       *name[2] = { b->user_id, "bookings" };
	const char	       *p[6];
	struct credit_acct	a[2];
	char			tid[37], n[24];
	PGresult	       *res = NULL;
	bool			applied = false;
	enum bw_err		er;

	er = credit_lock(db, b->org_id, kind, name, 2, a);
	if (er != BW_OK)
		goto out;
	if (a[0].balance - a[0].reserved < b->credits) {
		b->oc = CREDIT_INSUFFICIENT;
		er = CREDIT_UNDO;
		goto out;
	}
	er = credit_move(db, b->org_id, &a[0], &a[1], b->credits, "booking",
	    NULL, NULL, NULL, tid, &applied);
	if (er != BW_OK)
		goto out;
	if (!applied) {
		/* A fresh uuid key collided: practically impossible. */
		er = BW_ERETRY;
		goto out;
	}
	snprintf(n, sizeof(n), "%" PRId64, b->credits);
	p[0] = b->org_id;
	p[1] = b->user_id;
	p[2] = b->class_id;
	p[3] = n;
	p[4] = tid;
	p[5] = b->request_key;
	er = db_execp(db, "credit_booking_ins", ins, 6, p, &res);
	if (er == BW_EEXISTS && b->request_key != NULL) {
		/* Only bookings_request_key can collide here. */
		b->oc = CREDIT_DUPLICATE;
		er = CREDIT_UNDO;
	}
	if (er != BW_OK)
		goto out;
	snprintf(b->booking_id, sizeof(b->booking_id), "%s",
	    PQgetvalue(res, 0, 0));
	b->balance = a[0].balance;
out:
	PQclear(res);
	return er;
}

enum bw_err
credit_book(struct db *db, const char *org_id, const char *user_id,
    const char *class_id, int64_t credits, const char *request_key,
    struct json_object **out, enum credit_outcome *oc)
{
	struct credit_book_arg b;
	struct json_object    *o;
	enum bw_err	       er;

	if (org_id == NULL || !jv_is_uuid(org_id, strlen(org_id)) ||
	    !credit_text_valid(user_id, CREDIT_USER_ID_MAX) ||
	    !credit_text_valid(class_id, BW_MAX_CLASS_ID) ||
	    !credit_amount_valid(credits) ||
	    (request_key != NULL && strlen(request_key) != 64))
		return BW_EINVAL;
	memset(&b, 0, sizeof(b));
	b.request_key = request_key;
	b.org_id = org_id;
	b.user_id = user_id;
	b.class_id = class_id;
	b.credits = credits;
	b.oc = CREDIT_OK;
	er = db_tx(db, false, credit_book_fn, &b);
	if (er == CREDIT_UNDO && b.oc != CREDIT_OK) {
		*oc = b.oc;
		return BW_OK;
	}
	if (er != BW_OK)
		return er;
	o = json_object_new_object();
	json_object_object_add(o, "booking_id",
	    json_object_new_string(b.booking_id));
	json_object_object_add(o, "balance", json_object_new_int64(b.balance));
	json_object_object_add(o, "user_id", json_object_new_string(user_id));
	json_object_object_add(o, "class_id", json_object_new_string(class_id));
	json_object_object_add(o, "credits", json_object_new_int64(credits));
	*out = o;
	*oc = CREDIT_OK;
	return BW_OK;
}

/* Splits "system:<name>" / "<user id>" into kind and name. */
static int
credit_party(const char *s, const char **kind, const char **name)
{
	if (s == NULL)
		return -1;
	if (strncmp(s, "system:", 7) == 0) {
		*kind = "system";
		*name = s + 7;
	} else {
		*kind = "user";
		*name = s;
	}
	return credit_text_valid(*name, CREDIT_USER_ID_MAX) ? 0 : -1;
}

/* Arguments and results of credit_transfer(). */
struct credit_xfer_arg {
	const char	   *org_id;
	const char	   *kind[2];
	const char	   *name[2];
	int64_t		    amount;
	char		    key[BW_MAX_ANCHOR * 4 + 16];
	bool		    applied;
	enum credit_outcome oc;
};

/* The transfer transaction; see credit_transfer(). */
static enum bw_err
credit_transfer_fn(struct db *db, void *arg)
{
	static const char seen[] =
	    "SELECT 1 FROM credit_transfers WHERE org_id = $1 AND "
	    "transfer_key = $2";
	struct credit_xfer_arg *b = arg;
	const char	       *p[2] = { b->org_id, b->key };
	struct credit_acct	a[2];
	bool			was = false;
	enum bw_err		er;

	er = credit_lock(db, b->org_id, b->kind, b->name, 2, a);
	if (er != BW_OK)
		return er;
	er = credit_seen(db, "credit_key_seen", seen, 2, p, &was);
	if (er != BW_OK)
		return er;
	if (was) {
		b->applied = false;
		return BW_OK;
	}
	if (a[0].user && a[0].balance - a[0].reserved < b->amount) {
		b->oc = CREDIT_INSUFFICIENT;
		return CREDIT_UNDO;
	}
	return credit_move(db, b->org_id, &a[0], &a[1], b->amount, "transfer",
	    b->key, NULL, NULL, NULL, &b->applied);
}

enum bw_err
credit_transfer(struct db *db, const char *org_id, const char *from,
    const char *to, int64_t amount, const char *transfer_id, bool *applied,
    enum credit_outcome *oc)
{
	struct credit_xfer_arg b;
	enum bw_err	       er;

	memset(&b, 0, sizeof(b));
	if (org_id == NULL || !jv_is_uuid(org_id, strlen(org_id)) ||
	    credit_party(from, &b.kind[0], &b.name[0]) != 0 ||
	    credit_party(to, &b.kind[1], &b.name[1]) != 0 ||
	    (strcmp(b.kind[0], b.kind[1]) == 0 &&
		strcmp(b.name[0], b.name[1]) == 0) ||
	    !credit_amount_valid(amount) ||
	    !credit_text_valid(transfer_id, BW_MAX_ANCHOR))
		return BW_EINVAL;
	b.org_id = org_id;
	b.amount = amount;
	snprintf(b.key, sizeof(b.key), "transfer:%s", transfer_id);
	b.oc = CREDIT_OK;
	er = db_tx(db, false, credit_transfer_fn, &b);
	if (er == CREDIT_UNDO && b.oc != CREDIT_OK) {
		*applied = false;
		*oc = b.oc;
		return BW_OK;
	}
	if (er == BW_OK) {
		*applied = b.applied;
		*oc = CREDIT_OK;
	}
	return er;
}
