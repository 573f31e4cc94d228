/* SPDX-License-Identifier: MIT */
/*
 * Partial settlement of a pending reservation (credit_captures, sql/0026):
 * capture k of the reserved amount (a transfer to `bookings`, like a
 * commit) and return r of it to the user, once per capture key; the rest
 * stays reserved until more parts, a release or the expiry. See
 * credit_capture_tx() in lib/money/credit.h.
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

/* clang-format off */
static const char credit_sql_cap_lock[] =
    "SELECT user_id, amount - captured - returned, state, "
    "expires_at <= now() FROM credit_reservations "
    "WHERE org_id = $1::uuid AND id = $2::uuid FOR UPDATE";
static const char credit_sql_cap_get[] =
    "SELECT reservation_id::text, captured, returned FROM credit_captures "
    "WHERE org_id = $1::uuid AND capture_key = $2";
static const char credit_sql_cap_ins[] =
    "INSERT INTO credit_captures (org_id, capture_key, reservation_id, "
    "captured, returned, transfer_id) VALUES ($1::uuid, $2, $3::uuid, "
    "$4::bigint, $5::bigint, $6::uuid)";
static const char credit_sql_cap_upd[] =
    "UPDATE credit_reservations SET captured = captured + $3::bigint, "
    "returned = returned + $4::bigint WHERE org_id = $1::uuid AND "
    "id = $2::uuid";
/* clang-format on */

/*
 * The part already recorded under key, if any: *found, and *oc
 * CREDIT_WRONG_STATE when it names another reservation or amounts.
 */
static enum bw_err
credit_cap_existing(struct db *db, const struct credit_part *pt, bool *found,
    enum credit_outcome *oc)
{
	const char *p[2] = { pt->org_id, pt->key };
	PGresult   *res = NULL;
	enum bw_err er;

	*found = false;
	er = db_execp(db, "credit_cap_get", credit_sql_cap_get, 2, p, &res);
	if (er != BW_OK)
		return er;
	if (PQntuples(res) == 1) {
		*found = true;
		if (strcmp(PQgetvalue(res, 0, 0), pt->reservation_id) != 0 ||
		    db_col_i64_or(res, 0, 1, -1) != pt->capture ||
		    db_col_i64_or(res, 0, 2, -1) != pt->give_back)
			*oc = CREDIT_WRONG_STATE;
	}
	PQclear(res);
	return BW_OK;
}

enum bw_err
credit_capture_tx(struct db *db, const struct credit_part *pt, bool *applied,
    enum credit_outcome *oc)
{
	const char	  *kind[2] = { "user", "system" };
	const char	  *name[2] = { NULL, "bookings" };
	const char	  *p[6];
	char		   user[CREDIT_USER_ID_MAX * 4 + 1], tkey[256], tid[37];
	char		   a1[24], a2[24];
	struct credit_acct a[2];
	PGresult	  *res = NULL;
	int64_t		   left = 0;
	bool		   found = false, moved = false;
	enum bw_err	   er;

	*applied = false;
	*oc = CREDIT_OK;
	if (pt == NULL || !db_in_tx(db) || pt->org_id == NULL ||
	    !jv_is_uuid(pt->org_id, strlen(pt->org_id)) ||
	    pt->reservation_id == NULL ||
	    !jv_is_uuid(pt->reservation_id, strlen(pt->reservation_id)) ||
	    !credit_text_valid(pt->key, BW_MAX_RESERVATION_KEY) ||
	    pt->capture < 0 || pt->give_back < 0 ||
	    pt->capture > BW_MAX_CREDITS || pt->give_back > BW_MAX_CREDITS ||
	    pt->capture + pt->give_back == 0)
		return BW_EINVAL;
	/* The reservation first: parts of one reservation serialize here. */
	p[0] = pt->org_id;
	p[1] = pt->reservation_id;
	er = db_execp(db, "credit_cap_lock", credit_sql_cap_lock, 2, p, &res);
	if (er != BW_OK)
		goto out;
	if (PQntuples(res) != 1) {
		*oc = CREDIT_NOT_FOUND;
		goto out;
	}
	er = credit_cap_existing(db, pt, &found, oc);
	if (er != BW_OK || found)
		goto out; /* a replay: nothing changes */
	if (strcmp(PQgetvalue(res, 0, 2), "pending") != 0) {
		*oc = strcmp(PQgetvalue(res, 0, 2), "expired") == 0
		    ? CREDIT_EXPIRED
		    : CREDIT_WRONG_STATE;
		goto out;
	}
	if (strcmp(PQgetvalue(res, 0, 3), "t") == 0) {
		*oc = CREDIT_EXPIRED; /* bulwark-reconcile expires it */
		goto out;
	}
	if (db_col_i64(res, 0, 1, &left) != BW_OK) {
		er = BW_EDB;
		goto out;
	}
	if (pt->capture + pt->give_back > left) {
		*oc = CREDIT_INSUFFICIENT;
		goto out;
	}
	snprintf(user, sizeof(user), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	res = NULL;
	name[0] = user;
	er =
	    credit_lock(db, pt->org_id, kind, name, pt->capture > 0 ? 2 : 1, a);
	if (er != BW_OK)
		goto out;
	/* Reserved first, so that available never dips below zero. */
	er = credit_reserved_add(db, pt->org_id, a[0].id,
	    -(pt->capture + pt->give_back));
	if (er != BW_OK)
		goto out;
	tid[0] = '\0';
	if (pt->capture > 0) {
		snprintf(tkey, sizeof(tkey), "capture:%s", pt->key);
		er = credit_move(db, pt->org_id, &a[0], &a[1], pt->capture,
		    "capture", tkey, NULL, NULL, tid, &moved);
		if (er != BW_OK)
			goto out;
		if (!moved) {
			log_kv(LL_ERROR, "credit capture key already used",
			    "capture_key", pt->key, NULL);
			er = BW_EDB;
			goto out;
		}
	}
	snprintf(a1, sizeof(a1), "%" PRId64, pt->capture);
	snprintf(a2, sizeof(a2), "%" PRId64, pt->give_back);
	p[0] = pt->org_id;
	p[1] = pt->key;
	p[2] = pt->reservation_id;
	p[3] = a1;
	p[4] = a2;
	p[5] = tid[0] != '\0' ? tid : NULL;
	er = db_execp(db, "credit_cap_ins", credit_sql_cap_ins, 6, p, NULL);
	if (er != BW_OK)
		goto out;
	p[1] = pt->reservation_id;
	p[2] = a1;
	p[3] = a2;
	er = db_execp(db, "credit_cap_upd", credit_sql_cap_upd, 4, p, NULL);
	if (er == BW_OK)
		*applied = true;
out:
	PQclear(res);
	return er;
}

/* Arguments of credit_capture()'s transaction. */
struct credit_cap_arg {
	const struct credit_part *pt;
	bool			  applied;
	enum credit_outcome	  oc;
};

static enum bw_err
credit_capture_fn(struct db *db, void *arg)
{
	struct credit_cap_arg *b = arg;

	return credit_capture_tx(db, b->pt, &b->applied, &b->oc);
}

enum bw_err
credit_capture(struct db *db, const struct credit_part *pt, bool *applied,
    enum credit_outcome *oc)
{
	struct credit_cap_arg b;
	enum bw_err	      er;

	memset(&b, 0, sizeof(b));
	b.pt = pt;
	er = db_tx(db, false, credit_capture_fn, &b);
	if (er != BW_OK)
		return er;
	*applied = b.applied;
	*oc = b.oc;
	return BW_OK;
}
