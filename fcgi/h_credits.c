/* SPDX-License-Identifier: MIT */
/*
 * Credits (CONTRACT.md, "Credits"): account balances, bookings paid with
 * credits, and two-phase reservations. Input is validated here; the ledger
 * itself is lib/money/credit.c. Everything is scoped to the caller's org.
 */
#include <string.h>

#include "money/credit.h"
#include "ctx.h"
#include "handlers.h"
#include "core/jv.h"
#include "core/limits.h"
#include "resp.h"

static const struct jv_field h_credits_book_fields[] = {
	{ .name = "user_id",
	    .type = JV_STRING,
	    .required = 1,
	    .min = 1,
	    .max = CREDIT_USER_ID_MAX },
	{ .name = "class_id",
	    .type = JV_STRING,
	    .required = 1,
	    .min = 1,
	    .max = BW_MAX_CLASS_ID },
	{ .name = "credits",
	    .type = JV_INT,
	    .required = 1,
	    .min = 1,
	    .max = BW_MAX_CREDITS },
};

static const struct jv_field h_credits_reserve_fields[] = {
	{ .name = "user_id",
	    .type = JV_STRING,
	    .required = 1,
	    .min = 1,
	    .max = CREDIT_USER_ID_MAX },
	{ .name = "amount",
	    .type = JV_INT,
	    .required = 1,
	    .min = 1,
	    .max = BW_MAX_CREDITS },
	{ .name = "reservation_key",
	    .type = JV_STRING,
	    .required = 1,
	    .min = 1,
	    .max = BW_MAX_RESERVATION_KEY },
};

/*
 * Parses and validates r's body against n fields. Returns the object
 * (caller puts), or NULL after answering 400 INVALID_JSON or
 * VALIDATION_FAILED.
 */
static struct json_object *
h_credits_input(struct req *r, const struct jv_field *f, size_t n)
{
	struct json_object *obj = NULL, *problems = NULL;
	const char	   *body = r->body.p != NULL ? r->body.p : "";

	if (jv_parse(body, r->body.len, BW_MAX_JSON_DEPTH, &obj) != BW_OK) {
		resp_error(r, AE_INVALID_JSON, NULL, NULL);
		return NULL;
	}
	if (jv_validate(obj, f, n, &problems) != BW_OK) {
		json_object_put(obj);
		resp_error(r, AE_VALIDATION_FAILED, NULL, problems);
		return NULL;
	}
	return obj;
}

/* One field's problem as the contract's "fields" list. */
static struct json_object *
h_credits_field(const char *field, const char *problem)
{
	struct json_object *a = json_object_new_array(), *o;

	o = json_object_new_object();
	json_object_object_add(o, "field", json_object_new_string(field));
	json_object_object_add(o, "problem", json_object_new_string(problem));
	json_object_array_add(a, o);
	return a;
}

/*
 * Answers a ledger error: the statuses every credit route shares. A
 * database or retry failure is 503 DEPENDENCY_UNAVAILABLE (retryable).
 * field (may be NULL) names the input a BW_EINVAL refers to.
 */
static void
h_credits_fail(struct req *r, enum bw_err er, const char *field)
{
	switch (er) {
	case BW_ENOTFOUND:
		resp_error(r, AE_NOT_FOUND, NULL, NULL);
		break;
	case BW_EBUSY:
		resp_error(r, AE_INSUFFICIENT_CREDITS, NULL, NULL);
		break;
	case BW_ETIMEOUT:
		resp_error(r, AE_RESERVATION_EXPIRED, NULL, NULL);
		break;
	case BW_ESTATE:
		resp_error(r, AE_INVALID_STATE, NULL, NULL);
		break;
	case BW_EINVAL:
		/* Control characters in a string, which jv lets through. */
		resp_error(r, AE_VALIDATION_FAILED, NULL,
		    field == NULL ? NULL
				  : h_credits_field(field, "invalid_format"));
		break;
	case BW_ENOMEM:
		resp_error(r, AE_INTERNAL, NULL, NULL);
		break;
	default:
		resp_error(r, AE_DEPENDENCY_UNAVAILABLE, NULL, NULL);
		break;
	}
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
	if (er != BW_OK) {
		h_credits_fail(r, er, "user_id");
		return;
	}
	resp_json(r, 200, o);
}

/* POST /api/v1/bookings: 201 {"booking_id","balance",...}. */
void
h_credits_book(struct req *r)
{
	struct json_object *in, *o = NULL;
	enum bw_err	    er;

	in = h_credits_input(r, h_credits_book_fields,
	    sizeof(h_credits_book_fields) / sizeof(h_credits_book_fields[0]));
	if (in == NULL)
		return;
	er = credit_book(r->ch->db, r->who.org_id, jv_str(in, "user_id", ""),
	    jv_str(in, "class_id", ""), jv_int(in, "credits", 0), &o);
	json_object_put(in);
	if (er != BW_OK) {
		h_credits_fail(r, er, NULL);
		return;
	}
	resp_json(r, 201, o);
}

/*
 * POST /api/v1/credit-reservations: 201 for a new reservation, 200 with
 * the same one for its reservation_key again.
 */
void
h_credits_reserve(struct req *r)
{
	struct json_object *in, *o = NULL;
	bool		    created = false;
	enum bw_err	    er;

	in = h_credits_input(r, h_credits_reserve_fields,
	    sizeof(h_credits_reserve_fields) /
		sizeof(h_credits_reserve_fields[0]));
	if (in == NULL)
		return;
	er = credit_reserve(r->ch->db, r->who.org_id, jv_str(in, "user_id", ""),
	    jv_int(in, "amount", 0), jv_str(in, "reservation_key", ""),
	    r->ch->cfg->reservation_ttl_s, &o, &created);
	json_object_put(in);
	if (er != BW_OK) {
		h_credits_fail(r, er, NULL);
		return;
	}
	resp_json(r, created ? 201 : 200, o);
}

/* POST /api/v1/credit-reservations/{id}/commit. */
void
h_credits_commit(struct req *r)
{
	struct json_object *o = NULL;
	enum bw_err	    er;

	er = credit_commit(r->ch->db, r->who.org_id, r->args[0], &o);
	if (er != BW_OK) {
		h_credits_fail(r, er == BW_EINVAL ? BW_ENOTFOUND : er, "id");
		return;
	}
	resp_json(r, 200, o);
}

/* POST /api/v1/credit-reservations/{id}/release. */
void
h_credits_release(struct req *r)
{
	struct json_object *o = NULL;
	enum bw_err	    er;

	er = credit_release(r->ch->db, r->who.org_id, r->args[0], &o);
	if (er != BW_OK) {
		h_credits_fail(r, er == BW_EINVAL ? BW_ENOTFOUND : er, "id");
		return;
	}
	resp_json(r, 200, o);
}
