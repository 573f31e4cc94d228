/* SPDX-License-Identifier: MIT */
/*
 * Credits (CONTRACT.md, "Credits"): account balances, bookings paid with
 * credits, and two-phase reservations. Bodies arrive validated against the
 * route's schema (fcgi/routes.c, fcgi/mw_input.c); the ledger itself is
 * lib/money/credit.c, whose outcomes become 404/409 here. Everything is
 * scoped to the caller's org.
 */
#include "money/credit.h"
#include "ctx.h"
#include "handlers.h"
#include "core/jv.h"
#include "resp.h"

/*
 * The contract's answer to each ledger outcome. CREDIT_OK never reaches
 * it.
 */
static const enum apierr_code h_credits_outcomes[CREDIT__MAX] = {
	[CREDIT_OK] = AE_INTERNAL,
	[CREDIT_INSUFFICIENT] = AE_INSUFFICIENT_CREDITS,
	[CREDIT_EXPIRED] = AE_RESERVATION_EXPIRED,
	[CREDIT_WRONG_STATE] = AE_INVALID_STATE,
	[CREDIT_NOT_FOUND] = AE_NOT_FOUND,
	/* The key's own row is gone (expired); its booking is not. */
	[CREDIT_DUPLICATE] = AE_IDEMPOTENCY_KEY_REUSED,
};

/*
 * Answers a credit operation that did not end in CREDIT_OK: a library
 * error through resp_fail() (a database failure is 503
 * DEPENDENCY_UNAVAILABLE, retryable), a ledger outcome as its 404/409.
 */
static void
h_credits_fail(struct req *r, enum bw_err er, enum credit_outcome oc)
{
	if (er != BW_OK)
		resp_fail(r, er);
	else if ((unsigned)oc < CREDIT__MAX)
		resp_error(r, h_credits_outcomes[oc], NULL, NULL);
	else
		resp_error(r, AE_INTERNAL, NULL, NULL);
}

/* GET /api/v1/accounts/{user_id}: a user without an account has 0. */
void
h_credits_account(struct req *r)
{
	struct json_object *o = NULL;
	const char	   *user = r->args[0];
	enum bw_err	    er;

	er = credit_account_get(r->ch->db, r->who.org_id, user, &o);
	if (er == BW_ENOTFOUND) {
		o = json_object_new_object();
		json_object_object_add(o, "user_id",
		    json_object_new_string(user));
		json_object_object_add(o, "balance", json_object_new_int64(0));
		json_object_object_add(o, "reserved", json_object_new_int64(0));
		json_object_object_add(o, "available",
		    json_object_new_int64(0));
		er = BW_OK;
	}
	if (er == BW_EINVAL) {
		/* Control characters in the path segment. */
		resp_invalid(r, NULL, "user_id", "invalid_format");
		return;
	}
	if (er != BW_OK) {
		resp_fail(r, er);
		return;
	}
	resp_json(r, 200, o);
}

/*
 * POST /api/v1/bookings (r->in validated by the route's schema): 201
 * {"booking_id","balance",...}; 409 INSUFFICIENT_CREDITS.
 */
void
h_credits_book(struct req *r)
{
	struct json_object *o = NULL;
	enum credit_outcome oc = CREDIT__MAX;
	enum bw_err	    er;

	er = credit_book(r->ch->db, r->who.org_id, jv_str(r->in, "user_id", ""),
	    jv_str(r->in, "class_id", ""), jv_int(r->in, "credits", 0),
	    r->idem_locked ? r->idem_ksha : NULL, &o, &oc);
	if (er != BW_OK || oc != CREDIT_OK) {
		h_credits_fail(r, er, oc);
		return;
	}
	resp_json(r, 201, o);
}

/*
 * POST /api/v1/credit-reservations (r->in validated by the route's
 * schema): 201 for a new reservation, 200 with the same one for its
 * reservation_key again; 409 INSUFFICIENT_CREDITS, or INVALID_STATE for a
 * key already used with another user or amount.
 */
void
h_credits_reserve(struct req *r)
{
	struct json_object *o = NULL;
	bool		    created = false;
	enum credit_outcome oc = CREDIT__MAX;
	enum bw_err	    er;

	er = credit_reserve(r->ch->db, r->who.org_id,
	    jv_str(r->in, "user_id", ""), jv_int(r->in, "amount", 0),
	    jv_str(r->in, "reservation_key", ""), r->ch->cfg->reservation_ttl_s,
	    &o, &created, &oc);
	if (er != BW_OK || oc != CREDIT_OK) {
		h_credits_fail(r, er, oc);
		return;
	}
	resp_json(r, created ? 201 : 200, o);
}

/* Commit or release of the reservation named by the path. */
static void
h_credits_finish(struct req *r,
    enum bw_err (*fn)(struct db *, const char *, const char *,
	struct json_object **, enum credit_outcome *))
{
	struct json_object *o = NULL;
	enum credit_outcome oc = CREDIT__MAX;
	enum bw_err	    er;

	if (r->body_problem != NULL) {
		/* Existence first: another org's id is 404 whatever the body. */
		bool found = false;

		er = credit_resv_exists(r->ch->db, r->who.org_id, r->args[0],
		    &found);
		if (er != BW_OK)
			resp_fail(r, er);
		else if (!found)
			resp_error(r, AE_NOT_FOUND, NULL, NULL);
		else
			(void)resp_action_body(r);
		return;
	}
	er = fn(r->ch->db, r->who.org_id, r->args[0], &o, &oc);
	if (er == BW_EINVAL) {
		/* A path segment the database refused names nothing. */
		er = BW_OK;
		oc = CREDIT_NOT_FOUND;
	}
	if (er != BW_OK || oc != CREDIT_OK) {
		h_credits_fail(r, er, oc);
		return;
	}
	resp_json(r, 200, o);
}

/*
 * POST /api/v1/credit-reservations/{id}/commit: 200; 404 for an unknown
 * or malformed id; 409 RESERVATION_EXPIRED or INVALID_STATE.
 */
void
h_credits_commit(struct req *r)
{
	h_credits_finish(r, credit_commit);
}

/* POST /api/v1/credit-reservations/{id}/release: as commit. */
void
h_credits_release(struct req *r)
{
	h_credits_finish(r, credit_release);
}
