/* SPDX-License-Identifier: MIT */
/*
 * Two-phase credit reservations (credit_reservations): reserve, commit or
 * release once, and expiry of the forgotten ones (bulwark-reconcile). See
 * lib/money/credit.h.
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

/* The columns credit_resv_json() reads, in order. */
/* clang-format off */
#define CREDIT_RESV_COLS \
	"id, state, user_id, amount, reservation_key, " \
	DB_TS_UTC("expires_at") ", " DB_TS_UTC("created_at") ", " \
	"coalesce(transfer_id::text, ''), captured, returned"
/* clang-format on */

/* A reservation as JSON from row `row` of res (CREDIT_RESV_COLS). */
static struct json_object *
credit_resv_json(PGresult *res, int row)
{
	struct json_object *o = json_object_new_object();
	int64_t		    amount = 0;

	(void)db_col_i64(res, row, 3, &amount);
	json_object_object_add(o, "id",
	    json_object_new_string(PQgetvalue(res, row, 0)));
	json_object_object_add(o, "state",
	    json_object_new_string(PQgetvalue(res, row, 1)));
	json_object_object_add(o, "user_id",
	    json_object_new_string(PQgetvalue(res, row, 2)));
	json_object_object_add(o, "amount", json_object_new_int64(amount));
	json_object_object_add(o, "reservation_key",
	    json_object_new_string(PQgetvalue(res, row, 4)));
	json_object_object_add(o, "expires_at",
	    json_object_new_string(PQgetvalue(res, row, 5)));
	json_object_object_add(o, "created_at",
	    json_object_new_string(PQgetvalue(res, row, 6)));
	if (PQgetvalue(res, row, 7)[0] != '\0')
		json_object_object_add(o, "transfer_id",
		    json_object_new_string(PQgetvalue(res, row, 7)));
	/* Partial settlements (lib/money/credit_capture.c). */
	json_object_object_add(o, "captured",
	    json_object_new_int64(db_col_i64_or(res, row, 8, 0)));
	json_object_object_add(o, "returned",
	    json_object_new_int64(db_col_i64_or(res, row, 9, 0)));
	return o;
}

/* Arguments and results of one reservation transaction. */
struct credit_resv_arg {
	const char	   *org_id;
	const char	   *user_id;
	int64_t		    amount;
	const char	   *key;
	int		    ttl_s;
	struct json_object *out;
	bool		    created;
	enum credit_outcome oc;
};

/*
 * Compares the reservation with b's key (if any) to the request: *found
 * tells whether one exists; CREDIT_UNDO with b->oc CREDIT_WRONG_STATE when
 * it names another user or amount. On a match b->out gets it.
 */
static enum bw_err
credit_resv_existing(struct db *db, struct credit_resv_arg *b, bool *found)
{
	static const char sql[] =
	    "SELECT " CREDIT_RESV_COLS " FROM credit_reservations "
	    "WHERE org_id = $1 AND reservation_key = $2";
	const char *p[2] = { b->org_id, b->key };
	PGresult   *res = NULL;
	int64_t	    amount = 0;
	enum bw_err er;

	*found = false;
	er = db_execp(db, "credit_resv_by_key", sql, 2, p, &res);
	if (er != BW_OK)
		goto out;
	if (PQntuples(res) != 1)
		goto out;
	*found = true;
	if (db_col_i64(res, 0, 3, &amount) != BW_OK) {
		er = BW_EDB;
		goto out;
	}
	if (amount != b->amount ||
	    strcmp(PQgetvalue(res, 0, 2), b->user_id) != 0) {
		b->oc = CREDIT_WRONG_STATE;
		er = CREDIT_UNDO;
		goto out;
	}
	json_object_put(b->out);
	b->out = credit_resv_json(res, 0);
	b->created = false;
out:
	PQclear(res);
	return er;
}

/* The reservation transaction; see credit_reserve(). */
static enum bw_err
credit_reserve_fn(struct db *db, void *arg)
{
	static const char ins[] =
	    "INSERT INTO credit_reservations (org_id, reservation_key, "
	    "account_id, user_id, amount, expires_at) VALUES ($1, $2, $3, $4, "
	    "$5, now() + make_interval(secs => $6)) "
	    "ON CONFLICT DO NOTHING RETURNING " CREDIT_RESV_COLS;
	struct credit_resv_arg *b = arg;
	const char	       *kind[1] = { "user" };
	const char	       *name[1] = { b->user_id };
	const char	       *p[6];
	struct credit_acct	a;
	char			amt[24], ttl[16];
	PGresult	       *res = NULL;
	bool			found = false;
	enum bw_err		er;

	er = credit_resv_existing(db, b, &found);
	if (er != BW_OK || found)
		goto out;
	er = credit_lock(db, b->org_id, kind, name, 1, &a);
	if (er != BW_OK)
		goto out;
	if (a.balance - a.reserved < b->amount) {
		b->oc = CREDIT_INSUFFICIENT;
		er = CREDIT_UNDO;
		goto out;
	}
	snprintf(amt, sizeof(amt), "%" PRId64, b->amount);
	snprintf(ttl, sizeof(ttl), "%d", b->ttl_s);
	p[0] = b->org_id;
	p[1] = b->key;
	p[2] = a.id;
	p[3] = b->user_id;
	p[4] = amt;
	p[5] = ttl;
	er = db_execp(db, "credit_resv_ins", ins, 6, p, &res);
	if (er != BW_OK)
		goto out;
	if (PQntuples(res) != 1) {
		/* A concurrent request with this key committed first. */
		er = credit_resv_existing(db, b, &found);
		if (er == BW_OK && !found)
			er = BW_ERETRY;
		goto out;
	}
	er = credit_reserved_add(db, b->org_id, a.id, b->amount);
	if (er != BW_OK)
		goto out;
	json_object_put(b->out);
	b->out = credit_resv_json(res, 0);
	b->created = true;
out:
	PQclear(res);
	return er;
}

enum bw_err
credit_reserve(struct db *db, const char *org_id, const char *user_id,
    int64_t amount, const char *reservation_key, int ttl_s,
    struct json_object **out, bool *created, enum credit_outcome *oc)
{
	struct credit_resv_arg b;
	enum bw_err	       er;

	if (org_id == NULL || !jv_is_uuid(org_id, strlen(org_id)) ||
	    !credit_text_valid(user_id, CREDIT_USER_ID_MAX) ||
	    !credit_amount_valid(amount) ||
	    !credit_text_valid(reservation_key, BW_MAX_RESERVATION_KEY) ||
	    ttl_s < 1)
		return BW_EINVAL;
	memset(&b, 0, sizeof(b));
	b.org_id = org_id;
	b.user_id = user_id;
	b.amount = amount;
	b.key = reservation_key;
	b.ttl_s = ttl_s;
	b.oc = CREDIT_OK;
	er = db_tx(db, false, credit_reserve_fn, &b);
	if (er == CREDIT_UNDO && b.oc != CREDIT_OK) {
		json_object_put(b.out);
		*oc = b.oc;
		return BW_OK;
	}
	if (er != BW_OK) {
		json_object_put(b.out);
		return er;
	}
	*out = b.out;
	*created = b.created;
	*oc = CREDIT_OK;
	return BW_OK;
}

enum credit_action {
	CA_COMMIT,
	CA_RELEASE,
	CA_EXPIRE, /* the reconcile worker: only if past expires_at */
	CA__MAX
};

/* Arguments and results of one commit/release/expire transaction. */
struct credit_fin_arg {
	const char	   *org_id;
	const char	   *id;
	enum credit_action  action;
	struct json_object *out;
	bool		    expired; /* it is (now) expired */
	bool		    changed; /* this call changed it */
	enum credit_outcome oc;	     /* CREDIT_NOT_FOUND, CREDIT_WRONG_STATE */
};

/*
 * Finishes a pending reservation: locks it, then its account(s) (always
 * reservation before account, as everywhere). A pending one past
 * expires_at is expired instead (credits return) and b->expired set; the
 * transaction still commits. CREDIT_UNDO with b->oc CREDIT_NOT_FOUND or
 * CREDIT_WRONG_STATE (not pending).
 */
static enum bw_err
credit_fin_fn(struct db *db, void *arg)
{
	static const char sel[] =
	    "SELECT user_id, amount - captured - returned, state, "
	    "expires_at <= now(), captured + returned "
	    "FROM credit_reservations WHERE org_id = $1 AND id = $2 "
	    "FOR UPDATE";
	static const char upd[] =
	    "UPDATE credit_reservations SET state = $3, "
	    "transfer_id = $4, finished_at = now() "
	    "WHERE org_id = $1 AND id = $2 RETURNING " CREDIT_RESV_COLS;
	struct credit_fin_arg *b = arg;
	const char	      *kind[2] = { "user", "system" };
	const char	      *name[2] = { NULL, "bookings" };
	const char	      *p[4];
	const char	      *state;
	char		       user[CREDIT_USER_ID_MAX * 4 + 1];
	char		       key[64], tid[37];
	struct credit_acct     a[2];
	PGresult	      *res = NULL;
	int64_t		       amount = 0;
	bool		       past, applied = false;
	enum bw_err	       er;

	b->expired = false;
	b->changed = false;
	p[0] = b->org_id;
	p[1] = b->id;
	er = db_execp(db, "credit_resv_lock", sel, 2, p, &res);
	if (er != BW_OK)
		goto out;
	if (PQntuples(res) != 1) {
		b->oc = CREDIT_NOT_FOUND;
		er = CREDIT_UNDO;
		goto out;
	}
	snprintf(user, sizeof(user), "%s", PQgetvalue(res, 0, 0));
	if (db_col_i64(res, 0, 1, &amount) != BW_OK) {
		er = BW_EDB;
		goto out;
	}
	state = PQgetvalue(res, 0, 2);
	past = strcmp(PQgetvalue(res, 0, 3), "t") == 0;
	if (strcmp(state, "expired") == 0) {
		b->expired = true;
		goto out;
	}
	if (strcmp(state, "pending") != 0) {
		if (b->action != CA_EXPIRE) {
			b->oc = CREDIT_WRONG_STATE;
			er = CREDIT_UNDO;
		}
		goto out;
	}
	if (b->action == CA_EXPIRE && !past)
		goto out;
	/* Partly settled (credit_capture_tx()): only release or expiry
	 * finish it, returning what is left. */
	if (b->action == CA_COMMIT && !past &&
	    strcmp(PQgetvalue(res, 0, 4), "0") != 0) {
		b->oc = CREDIT_WRONG_STATE;
		er = CREDIT_UNDO;
		goto out;
	}
	PQclear(res);
	res = NULL;
	name[0] = user;
	er = credit_lock(db, b->org_id, kind, name,
	    !past && b->action == CA_COMMIT ? 2 : 1, a);
	if (er != BW_OK)
		goto out;
	if (amount > 0) {
		er = credit_reserved_add(db, b->org_id, a[0].id, -amount);
		if (er != BW_OK)
			goto out;
	}
	p[3] = NULL;
	if (past) {
		p[2] = "expired";
		b->expired = true;
	} else if (b->action == CA_COMMIT) {
		snprintf(key, sizeof(key), "reservation:%s", b->id);
		er = credit_move(db, b->org_id, &a[0], &a[1], amount, "commit",
		    key, NULL, NULL, tid, &applied);
		if (er != BW_OK)
			goto out;
		if (!applied) {
			/* The key is this reservation's; it was pending. */
			log_kv(LL_ERROR, "credit commit key already used",
			    "reservation_id", b->id, NULL);
			er = BW_EDB;
			goto out;
		}
		p[2] = "committed";
		p[3] = tid;
	} else
		p[2] = "released";
	er = db_execp(db, "credit_resv_fin", upd, 4, p, &res);
	if (er != BW_OK)
		goto out;
	b->changed = true;
	json_object_put(b->out);
	b->out = credit_resv_json(res, 0);
out:
	PQclear(res);
	return er;
}

/*
 * Runs credit_fin_fn for one reservation; see credit_commit(). *oc (may
 * be NULL for CA_EXPIRE) gets the outcome; *out only with CREDIT_OK.
 */
static enum bw_err
credit_finish(struct db *db, const char *org_id, const char *id,
    enum credit_action action, struct json_object **out, bool *changed,
    enum credit_outcome *oc)
{
	struct credit_fin_arg b;
	enum bw_err	      er;

	memset(&b, 0, sizeof(b));
	b.oc = CREDIT_OK;
	if (org_id == NULL || id == NULL ||
	    !jv_is_uuid(org_id, strlen(org_id)) ||
	    !jv_is_uuid(id, strlen(id))) {
		b.oc = CREDIT_NOT_FOUND;
		er = BW_OK;
		goto out;
	}
	b.org_id = org_id;
	b.id = id;
	b.action = action;
	er = db_tx(db, false, credit_fin_fn, &b);
	if (er == CREDIT_UNDO && b.oc != CREDIT_OK)
		er = BW_OK;
	if (er != BW_OK)
		goto out;
	if (b.oc == CREDIT_OK && b.expired && action != CA_EXPIRE)
		b.oc = CREDIT_EXPIRED;
	if (changed != NULL)
		*changed = b.oc == CREDIT_OK && b.changed;
	if (b.oc == CREDIT_OK && out != NULL) {
		*out = b.out;
		b.out = NULL;
	}
out:
	if (er == BW_OK && oc != NULL)
		*oc = b.oc;
	json_object_put(b.out);
	return er;
}

enum bw_err
credit_commit(struct db *db, const char *org_id, const char *reservation_id,
    struct json_object **out, enum credit_outcome *oc)
{
	return credit_finish(db, org_id, reservation_id, CA_COMMIT, out, NULL,
	    oc);
}

enum bw_err
credit_release(struct db *db, const char *org_id, const char *reservation_id,
    struct json_object **out, enum credit_outcome *oc)
{
	return credit_finish(db, org_id, reservation_id, CA_RELEASE, out, NULL,
	    oc);
}

enum bw_err
credit_expire(struct db *db, int *n)
{
	static const char sql[] =
	    "SELECT org_id, id FROM credit_reservations "
	    "WHERE state = 'pending' AND expires_at <= now() "
	    "ORDER BY expires_at LIMIT $1";
	char	    lim[16], c[16];
	const char *p[1] = { lim };
	PGresult   *res = NULL;
	enum bw_err er = BW_OK;
	int	    batch, row, rows, count = 0;
	bool	    changed;

	snprintf(lim, sizeof(lim), "%d", BW_CREDIT_EXPIRE_BATCH);
	/* Bounded: a backlog larger than this waits for the next run. */
	for (batch = 0; batch < 100; batch++) {
		PQclear(res);
		res = NULL;
		er = db_execp(db, "credit_expire_list", sql, 1, p, &res);
		if (er != BW_OK)
			goto out;
		rows = PQntuples(res);
		for (row = 0; row < rows; row++) {
			er = credit_finish(db, PQgetvalue(res, row, 0),
			    PQgetvalue(res, row, 1), CA_EXPIRE, NULL, &changed,
			    NULL);
			if (er != BW_OK)
				goto out;
			if (changed)
				count++;
		}
		if (rows < BW_CREDIT_EXPIRE_BATCH)
			break;
	}
out:
	PQclear(res);
	if (count > 0) {
		snprintf(c, sizeof(c), "%d", count);
		log_kv(LL_INFO, "credit reservations expired", "count", c,
		    NULL);
	}
	if (er == BW_OK)
		*n = count;
	return er;
}

/* See credit.h. */
enum bw_err
credit_resv_exists(struct db *db, const char *org_id, const char *id,
    bool *found)
{
	const char *p[2];
	PGresult   *res = NULL;
	enum bw_err er;

	*found = false;
	if (org_id == NULL || id == NULL ||
	    !jv_is_uuid(org_id, strlen(org_id)) || !jv_is_uuid(id, strlen(id)))
		return BW_OK;
	p[0] = org_id;
	p[1] = id;
	er = db_execp(db, "credit_resv_exists",
	    "SELECT 1 FROM credit_reservations"
	    " WHERE org_id = $1::uuid AND id = $2::uuid",
	    2, p, &res);
	if (er == BW_OK)
		*found = PQntuples(res) == 1;
	PQclear(res);
	return er;
}

/* See credit.h. */
enum bw_err
credit_prom(struct db *db, struct buf *out)
{
	PGresult   *res = NULL;
	enum bw_err er;

	er = db_execp(db, "credit_prom_expired",
	    "SELECT count(*) FROM credit_reservations WHERE state = 'expired'",
	    0, NULL, &res);
	if (er != BW_OK)
		return er;
	(void)buf_printf(out,
	    "# HELP bulwark_credit_reservations_expired_total Credit "
	    "reservations that expired (credits returned by "
	    "bulwark-reconcile), cluster-wide.\n"
	    "# TYPE bulwark_credit_reservations_expired_total counter\n"
	    "bulwark_credit_reservations_expired_total %s\n",
	    PQgetvalue(res, 0, 0));
	PQclear(res);
	return BW_OK;
}
