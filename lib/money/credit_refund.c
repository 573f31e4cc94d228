/* SPDX-License-Identifier: MIT */
/*
 * Refunds over the credit ledger (tables credit_payments and
 * credit_refunds of sql/0011_partial_refunds.sql): what the payment behind
 * a grant paid, one row per refund anchor, the share of the grant a refund
 * takes back (in proportion to the money, rounded down over all refunds of
 * the payment together), debts for what is no longer available, and the
 * refunds that came before their grant. See lib/money/credit.h.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/jv.h"
#include "core/limits.h"
#include "core/log.h"
#include "money/credit.h"
#include "money/credit_int.h"

/* clang-format off */
static const char credit_sql_payment[] =
    "INSERT INTO credit_payments (org_id, grant_anchor, amount, currency)"
    " VALUES ($1::uuid, $2, $3::bigint, $4) ON CONFLICT DO NOTHING";

static const char credit_sql_refund_state[] =
    "SELECT state FROM credit_refunds WHERE org_id = $1::uuid"
    " AND refund_anchor = $2";

static const char credit_sql_grant[] =
    "SELECT a.name, t.amount FROM credit_transfers t"
    " JOIN credit_accounts a ON a.org_id = t.org_id AND a.id = t.credit_account"
    " WHERE t.org_id = $1::uuid AND t.anchor = $2 AND t.kind = 'grant'";

static const char credit_sql_paid[] =
    "SELECT amount, currency FROM credit_payments WHERE org_id = $1::uuid"
    " AND grant_anchor = $2";

/*
 * The applied refunds of grant $2 as seen by source $3: credits taken back
 * so far, whether one predates the amounts (it took the whole grant), the
 * largest refunded of source $3, and the money refunded by the other
 * sources (the largest refunded of each: Stripe's is cumulative).
 */
static const char credit_sql_totals[] =
    "SELECT coalesce(sum(credits), 0)::bigint,"
    "  coalesce(bool_or(refunded IS NULL), false)::int,"
    "  coalesce(max(refunded) FILTER (WHERE source = $3), 0)::bigint,"
    "  (SELECT coalesce(sum(m), 0) FROM (SELECT max(refunded) AS m"
    "    FROM credit_refunds WHERE org_id = $1::uuid AND grant_anchor = $2"
    "    AND state = 'applied' AND source <> $3 GROUP BY source) s)::bigint"
    " FROM credit_refunds WHERE org_id = $1::uuid AND grant_anchor = $2"
    " AND state = 'applied'";

/* A new refund row, or a pending one's outcome; never changes another. */
static const char credit_sql_record[] =
    "INSERT INTO credit_refunds (org_id, refund_anchor, grant_anchor, source,"
    " refunded, currency, credits, state, applied_at)"
    " VALUES ($1::uuid, $2, $3, $4, $5::bigint, $6, $7::bigint, $8::text,"
    "  CASE WHEN $8::text = 'applied' THEN now() END)"
    " ON CONFLICT (org_id, refund_anchor) DO UPDATE SET"
    "  credits = EXCLUDED.credits, state = EXCLUDED.state,"
    "  applied_at = EXCLUDED.applied_at"
    " WHERE credit_refunds.state = 'pending'";

static const char credit_sql_pending[] =
    "SELECT refund_anchor, source, refunded, currency FROM credit_refunds"
    " WHERE org_id = $1::uuid AND grant_anchor = $2 AND state = 'pending'"
    " ORDER BY created_at, refund_anchor";

static const char credit_sql_debt[] =
    "INSERT INTO credit_debts (org_id, account_id, user_id, amount,"
    " grant_anchor, refund_anchor) VALUES ($1, $2, $3, $4, $5, $6)";
/* clang-format on */

static const char *const credit_refund_outcomes[CREFUND__MAX] = {
	[CREFUND_APPLIED] = "applied",
	[CREFUND_DUPLICATE] = "duplicate",
	[CREFUND_EARLY] = "early",
	[CREFUND_REFUSED] = "refused",
};

const char *
credit_refund_outcome_name(enum credit_refund_outcome o)
{
	if ((int)o < 0 || o >= CREFUND__MAX)
		return "?";
	return credit_refund_outcomes[o];
}

int64_t
credit_refund_share(int64_t credits, int64_t refunded, int64_t paid)
{
	if (credits <= 0)
		return 0;
	if (paid <= 0 || refunded >= paid)
		return credits;
	if (refunded <= 0)
		return 0;
	/* < credits, as refunded < paid: the quotient fits. */
	return (int64_t)((__int128)credits * refunded / paid);
}

/* 1 when s is an ISO 4217 code in upper case. */
static int
credit_currency_ok(const char *s)
{
	int i;

	if (s == NULL || strlen(s) != 3)
		return 0;
	for (i = 0; i < 3; i++)
		if (s[i] < 'A' || s[i] > 'Z')
			return 0;
	return 1;
}

/* 1 when org_id is a UUID, inside a transaction. */
static int
credit_tx_org_ok(struct db *db, const char *org_id)
{
	return db_in_tx(db) && org_id != NULL &&
	    jv_is_uuid(org_id, strlen(org_id));
}

enum bw_err
credit_payment_tx(struct db *db, const char *org_id, const char *grant_anchor,
    int64_t amount, const char *currency)
{
	const char *p[4];
	char	    n[24];

	if (!credit_tx_org_ok(db, org_id) ||
	    !credit_text_valid(grant_anchor, BW_MAX_ANCHOR) || amount < 1 ||
	    amount > BW_MAX_WEBHOOK_MONEY || !credit_currency_ok(currency))
		return BW_EINVAL;
	snprintf(n, sizeof(n), "%" PRId64, amount);
	p[0] = org_id;
	p[1] = grant_anchor;
	p[2] = n;
	p[3] = currency;
	return db_execp(db, "credit_payment_ins", credit_sql_payment, 4, p,
	    NULL);
}

/*
 * Writes r's row with state and credits (a new row, or the outcome of a
 * pending one). *written = false when the anchor already had an outcome.
 */
static enum bw_err
credit_refund_record(struct db *db, const char *org_id,
    const struct credit_refund *r, const char *state, int64_t credits,
    bool *written)
{
	const char *p[8];
	char	    amt[24], cr[24];
	PGresult   *res = NULL;
	enum bw_err er;

	snprintf(amt, sizeof(amt), "%" PRId64, r->refunded);
	snprintf(cr, sizeof(cr), "%" PRId64, credits);
	p[0] = org_id;
	p[1] = r->refund_anchor;
	p[2] = r->grant_anchor;
	p[3] = r->source;
	p[4] = amt;
	p[5] = r->currency;
	p[6] = cr;
	p[7] = state;
	er = db_execp(db, "credit_refund_rec", credit_sql_record, 8, p, &res);
	if (er == BW_OK)
		*written = db_rows(res) == 1;
	PQclear(res);
	return er;
}

/* The state of r's anchor: *found, and its outcome for a replay. */
static enum bw_err
credit_refund_seen(struct db *db, const char *org_id, const char *anchor,
    bool *found, enum credit_refund_outcome *oc)
{
	const char *p[2] = { org_id, anchor };
	const char *st;
	PGresult   *res = NULL;
	enum bw_err er;

	er = db_execp(db, "credit_refund_state", credit_sql_refund_state, 2, p,
	    &res);
	if (er != BW_OK)
		return er;
	*found = PQntuples(res) > 0;
	if (*found) {
		st = PQgetvalue(res, 0, 0);
		if (strcmp(st, "pending") == 0)
			*oc = CREFUND_EARLY;
		else if (strcmp(st, "refused") == 0)
			*oc = CREFUND_REFUSED;
		else
			*oc = CREFUND_DUPLICATE;
	}
	PQclear(res);
	return BW_OK;
}

/* The grant of anchor: *found, its user and credits. */
static enum bw_err
credit_refund_grant(struct db *db, const char *org_id, const char *anchor,
    bool *found, char *user, size_t usz, int64_t *granted)
{
	const char *p[2] = { org_id, anchor };
	PGresult   *res = NULL;
	enum bw_err er;

	er = db_execp(db, "credit_grant_get", credit_sql_grant, 2, p, &res);
	if (er != BW_OK)
		return er;
	*found = PQntuples(res) == 1;
	if (*found) {
		snprintf(user, usz, "%s", PQgetvalue(res, 0, 0));
		if (db_col_i64(res, 0, 1, granted) != BW_OK)
			er = BW_EDB;
	}
	PQclear(res);
	return er;
}

/* What the applied refunds of a grant add up to (credit_sql_totals). */
struct credit_refund_totals {
	int64_t taken;	/* credits taken back so far */
	int64_t legacy; /* 1: one predates the amounts */
	int64_t prev;	/* the largest refunded of this source */
	int64_t others; /* refunded by the other sources */
};

/* Reads the totals of r's grant as seen by r's source. */
static enum bw_err
credit_refund_totals(struct db *db, const char *org_id,
    const struct credit_refund *r, struct credit_refund_totals *t)
{
	const char *p[3] = { org_id, r->grant_anchor, r->source };
	PGresult   *res = NULL;
	enum bw_err er;

	er =
	    db_execp(db, "credit_refund_totals", credit_sql_totals, 3, p, &res);
	if (er != BW_OK)
		return er;
	if (PQntuples(res) != 1 || db_col_i64(res, 0, 0, &t->taken) != BW_OK ||
	    db_col_i64(res, 0, 1, &t->legacy) != BW_OK ||
	    db_col_i64(res, 0, 2, &t->prev) != BW_OK ||
	    db_col_i64(res, 0, 3, &t->others) != BW_OK)
		er = BW_EDB;
	PQclear(res);
	return er;
}

/*
 * The payment of r's grant: the recorded amount and currency, else r's
 * paid and currency, else *paid = 0 (unknown).
 */
static enum bw_err
credit_refund_paid(struct db *db, const char *org_id,
    const struct credit_refund *r, int64_t *paid, char currency[4])
{
	const char *p[2] = { org_id, r->grant_anchor };
	PGresult   *res = NULL;
	enum bw_err er;

	er = db_execp(db, "credit_payment_get", credit_sql_paid, 2, p, &res);
	if (er != BW_OK)
		return er;
	if (PQntuples(res) == 1) {
		if (db_col_i64(res, 0, 0, paid) != BW_OK)
			er = BW_EDB;
		snprintf(currency, 4, "%s", PQgetvalue(res, 0, 1));
	} else {
		*paid = r->paid;
		snprintf(currency, 4, "%s", r->currency);
	}
	PQclear(res);
	return er;
}

/*
 * Takes back delta credits of r's grant from the locked user account a[0]
 * to `refunds` (a[1]): as much as is available, the rest a debt.
 */
static enum bw_err
credit_refund_take(struct db *db, const char *org_id,
    const struct credit_refund *r, const char *user, struct credit_acct *a,
    int64_t delta)
{
	char	    key[BW_MAX_ANCHOR * 4 + 16], n[24];
	const char *p[6];
	int64_t	    take, owed;
	bool	    moved = false;
	enum bw_err er;

	take = a[0].balance - a[0].reserved;
	if (take > delta)
		take = delta;
	if (take < 0)
		take = 0;
	owed = delta - take;
	if (take > 0) {
		snprintf(key, sizeof(key), "refund:%s", r->refund_anchor);
		er = credit_move(db, org_id, &a[0], &a[1], take, "refund", key,
		    r->refund_anchor, r->grant_anchor, NULL, &moved);
		if (er != BW_OK)
			return er;
		if (!moved) {
			/* The anchor is recorded in this transaction. */
			log_kv(LL_ERROR, "credit refund anchor already used",
			    "org_id", org_id, "anchor", r->refund_anchor, NULL);
			return BW_EDB;
		}
	}
	if (owed > 0) {
		snprintf(n, sizeof(n), "%" PRId64, owed);
		p[0] = org_id;
		p[1] = a[0].id;
		p[2] = user;
		p[3] = n;
		p[4] = r->grant_anchor;
		p[5] = r->refund_anchor;
		er = db_execp(db, "credit_debt_ins", credit_sql_debt, 6, p,
		    NULL);
		if (er != BW_OK)
			return er;
		log_kv(LL_WARN, "credit refund left a debt", "org_id", org_id,
		    "anchor", r->refund_anchor, "owed", n, NULL);
	}
	return BW_OK;
}

/*
 * Applies refund r (anchor not yet applied) to the grant of granted
 * credits to user: see credit_refund_tx().
 */
static enum bw_err
credit_refund_apply(struct db *db, const char *org_id,
    const struct credit_refund *r, const char *user, int64_t granted,
    enum credit_refund_outcome *oc, int64_t *credits)
{
	const char		   *kind[2] = { "user", "system" };
	const char		   *name[2] = { user, "refunds" };
	struct credit_acct	    a[2];
	struct credit_refund_totals t;
	char			    cur[4] = "", s1[24], s2[24], s3[24];
	int64_t			    paid = 0, total, target, delta;
	bool			    written = false;
	enum bw_err		    er;

	/* Refunds of one user serialize on the account lock: read after. */
	er = credit_lock(db, org_id, kind, name, 2, a);
	if (er != BW_OK)
		return er;
	er = credit_refund_totals(db, org_id, r, &t);
	if (er != BW_OK)
		return er;
	if (r->refunded <= t.prev) {
		/* A state of its source already counted (a late event). */
		*oc = CREFUND_DUPLICATE;
		return credit_refund_record(db, org_id, r, "applied", 0,
		    &written);
	}
	er = credit_refund_paid(db, org_id, r, &paid, cur);
	if (er != BW_OK)
		return er;
	if (paid > 0 && strcmp(cur, r->currency) != 0) {
		log_kv(LL_WARN, "credit refund in another currency: refused",
		    "org_id", org_id, "anchor", r->refund_anchor, "currency",
		    r->currency, "payment_currency", cur, NULL);
		*oc = CREFUND_REFUSED;
		return credit_refund_record(db, org_id, r, "refused", 0,
		    &written);
	}
	total = t.others + r->refunded;
	if (paid <= 0)
		log_kv(LL_WARN,
		    "credit refund of a payment of unknown amount: "
		    "the whole grant is taken back",
		    "org_id", org_id, "anchor", r->refund_anchor, NULL);
	else if (total > paid)
		log_kv(LL_WARN, "credit refunds exceed the payment", "org_id",
		    org_id, "anchor", r->refund_anchor, NULL);
	target = t.legacy ? granted : credit_refund_share(granted, total, paid);
	delta = target - t.taken;
	if (delta < 0)
		delta = 0;
	er = credit_refund_record(db, org_id, r, "applied", delta, &written);
	if (er != BW_OK)
		return er;
	if (!written) {
		*oc = CREFUND_DUPLICATE;
		return BW_OK;
	}
	if (delta > 0) {
		er = credit_refund_take(db, org_id, r, user, a, delta);
		if (er != BW_OK)
			return er;
	}
	snprintf(s1, sizeof(s1), "%" PRId64, total);
	snprintf(s2, sizeof(s2), "%" PRId64, paid);
	snprintf(s3, sizeof(s3), "%" PRId64, delta);
	log_kv(LL_INFO, "credits refunded", "org_id", org_id, "anchor",
	    r->refund_anchor, "refunded", s1, "paid", s2, "credits", s3, NULL);
	*oc = CREFUND_APPLIED;
	if (credits != NULL)
		*credits = delta;
	return BW_OK;
}

/* 1 when r is a well-formed refund. */
static int
credit_refund_ok(const struct credit_refund *r)
{
	return r != NULL && credit_text_valid(r->grant_anchor, BW_MAX_ANCHOR) &&
	    credit_text_valid(r->refund_anchor, BW_MAX_ANCHOR) &&
	    credit_text_valid(r->source, BW_MAX_ANCHOR) && r->refunded >= 1 &&
	    r->refunded <= BW_MAX_WEBHOOK_MONEY &&
	    credit_currency_ok(r->currency) && r->paid >= 0 &&
	    r->paid <= BW_MAX_WEBHOOK_MONEY;
}

enum bw_err
credit_refund_tx(struct db *db, const char *org_id,
    const struct credit_refund *r, enum credit_refund_outcome *oc,
    int64_t *credits)
{
	char	    user[CREDIT_USER_ID_MAX * 4 + 1];
	int64_t	    granted = 0;
	bool	    found = false, written = false;
	enum bw_err er;

	if (!credit_tx_org_ok(db, org_id) || !credit_refund_ok(r) || oc == NULL)
		return BW_EINVAL;
	if (credits != NULL)
		*credits = 0;
	er = credit_refund_seen(db, org_id, r->refund_anchor, &found, oc);
	if (er != BW_OK || found)
		return er;
	er = credit_refund_grant(db, org_id, r->grant_anchor, &found, user,
	    sizeof(user), &granted);
	if (er != BW_OK)
		return er;
	if (!found) {
		*oc = CREFUND_EARLY;
		return credit_refund_record(db, org_id, r, "pending", 0,
		    &written);
	}
	return credit_refund_apply(db, org_id, r, user, granted, oc, credits);
}

enum bw_err
credit_refund_early_tx(struct db *db, const char *org_id,
    const char *grant_anchor, int *n)
{
	const char		  *p[2] = { org_id, grant_anchor };
	char			   user[CREDIT_USER_ID_MAX * 4 + 1];
	struct credit_refund	   r;
	enum credit_refund_outcome oc;
	PGresult		  *res = NULL;
	int64_t			   granted = 0;
	bool			   found = false;
	enum bw_err		   er;
	int			   i, done = 0;

	if (!credit_tx_org_ok(db, org_id) ||
	    !credit_text_valid(grant_anchor, BW_MAX_ANCHOR))
		return BW_EINVAL;
	er = credit_refund_grant(db, org_id, grant_anchor, &found, user,
	    sizeof(user), &granted);
	if (er != BW_OK || !found)
		goto out;
	er = db_execp(db, "credit_refund_pending", credit_sql_pending, 2, p,
	    &res);
	if (er != BW_OK)
		goto out;
	for (i = 0; i < PQntuples(res); i++) {
		memset(&r, 0, sizeof(r));
		r.grant_anchor = grant_anchor;
		r.refund_anchor = PQgetvalue(res, i, 0);
		r.source = PQgetvalue(res, i, 1);
		r.currency = PQgetvalue(res, i, 3);
		if (db_col_i64(res, i, 2, &r.refunded) != BW_OK) {
			er = BW_EDB;
			goto out;
		}
		er = credit_refund_apply(db, org_id, &r, user, granted, &oc,
		    NULL);
		if (er != BW_OK)
			goto out;
		done++;
	}
out:
	PQclear(res);
	if (er == BW_OK && n != NULL)
		*n = done;
	return er;
}
