/* SPDX-License-Identifier: MIT */
/*
 * The credit ledger check (`bulwarkctl ledger check`): recomputes every
 * balance and reservation total from the transfers and lists each
 * difference. See lib/money/credit.h and
 * docs/runbooks/credit-reconciliation.md.
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

/* Appends one problem per row of res (columns named by the result). */
static void
credit_problems_add(struct json_object *arr, const char *problem, PGresult *res)
{
	struct json_object *o;
	int		    row, col;

	for (row = 0; row < PQntuples(res); row++) {
		if (json_object_array_length(arr) >= BW_MAX_LEDGER_PROBLEMS)
			return;
		o = json_object_new_object();
		json_object_object_add(o, "problem",
		    json_object_new_string(problem));
		for (col = 0; col < PQnfields(res); col++) {
			const char *v = PQgetvalue(res, row, col);
			int64_t	    i;

			if (PQgetisnull(res, row, col))
				continue;
			if (PQftype(res, col) == 20 && db_i64(v, &i) == 0)
				json_object_object_add(o, PQfname(res, col),
				    json_object_new_int64(i));
			else
				json_object_object_add(o, PQfname(res, col),
				    json_object_new_string(v));
		}
		json_object_array_add(arr, o);
	}
}

/* Arguments and results of credit_check(). */
struct credit_check_arg {
	const char	   *org_id; /* NULL: all */
	struct json_object *problems;
};

/* The checks, in one REPEATABLE READ snapshot. */
static enum bw_err
credit_check_fn(struct db *db, void *arg)
{
	/* Every query: $1 NULL or the org; bigint columns come out as int8. */
	static const struct {
		const char *problem;
		const char *sql;
	} checks[] = {
		{ "balance_mismatch",
		    "SELECT a.org_id, a.id AS account_id, a.kind, a.name, "
		    "a.balance, (coalesce(c.s, 0) - coalesce(d.s, 0))::bigint "
		    "AS expected_balance, a.reserved, "
		    "coalesce(r.s, 0)::bigint AS expected_reserved "
		    "FROM credit_accounts a "
		    "LEFT JOIN (SELECT org_id, credit_account AS id, "
		    "sum(amount) AS s FROM credit_transfers GROUP BY 1, 2) c "
		    "USING (org_id, id) "
		    "LEFT JOIN (SELECT org_id, debit_account AS id, "
		    "sum(amount) AS s FROM credit_transfers GROUP BY 1, 2) d "
		    "USING (org_id, id) "
		    "LEFT JOIN (SELECT org_id, account_id AS id, "
		    "sum(amount - captured - returned) AS s "
		    "FROM credit_reservations "
		    "WHERE state = 'pending' GROUP BY 1, 2) r "
		    "USING (org_id, id) "
		    "WHERE ($1::uuid IS NULL OR a.org_id = $1::uuid) AND "
		    "(a.balance <> coalesce(c.s, 0) - coalesce(d.s, 0) OR "
		    "a.reserved <> coalesce(r.s, 0)) ORDER BY a.org_id, a.id" },
		{ "org_sum_nonzero",
		    "SELECT org_id, sum(balance)::bigint AS sum "
		    "FROM credit_accounts "
		    "WHERE $1::uuid IS NULL OR org_id = $1::uuid "
		    "GROUP BY org_id HAVING sum(balance) <> 0" },
		{ "negative_available",
		    "SELECT org_id, id AS account_id, name, balance, reserved "
		    "FROM credit_accounts WHERE kind = 'user' AND "
		    "balance - reserved < 0 AND "
		    "($1::uuid IS NULL OR org_id = $1::uuid)" },
		{ "debit_without_booking",
		    "SELECT t.org_id, t.id AS transfer_id, t.amount "
		    "FROM credit_transfers t WHERE t.kind = 'booking' AND "
		    "($1::uuid IS NULL OR t.org_id = $1::uuid) AND NOT EXISTS "
		    "(SELECT 1 FROM bookings b WHERE b.org_id = t.org_id AND "
		    "b.transfer_id = t.id)" },
		{ "booking_amount_mismatch",
		    "SELECT b.org_id, b.id AS booking_id, b.credits, t.amount "
		    "FROM bookings b JOIN credit_transfers t ON "
		    "t.org_id = b.org_id AND t.id = b.transfer_id WHERE "
		    "($1::uuid IS NULL OR b.org_id = $1::uuid) AND "
		    "(t.amount <> b.credits OR t.kind <> 'booking')" },
		{ "refund_exceeds_grant",
		    "SELECT g.org_id, g.anchor AS grant_anchor, "
		    "g.amount AS granted, "
		    "(coalesce(t.s, 0) + coalesce(d.s, 0))::bigint "
		    "AS taken_back FROM credit_transfers g "
		    "LEFT JOIN (SELECT org_id, reverses, sum(amount) AS s "
		    "FROM credit_transfers WHERE kind = 'refund' "
		    "GROUP BY 1, 2) t ON t.org_id = g.org_id AND "
		    "t.reverses = g.anchor "
		    "LEFT JOIN (SELECT org_id, grant_anchor, sum(amount) AS s "
		    "FROM credit_debts GROUP BY 1, 2) d ON "
		    "d.org_id = g.org_id AND d.grant_anchor = g.anchor "
		    "WHERE g.kind = 'grant' AND "
		    "($1::uuid IS NULL OR g.org_id = $1::uuid) AND "
		    "coalesce(t.s, 0) + coalesce(d.s, 0) > g.amount" },
		{ "refund_credits_mismatch",
		    "SELECT r.org_id, r.refund_anchor, r.credits, "
		    "(coalesce(t.amount, 0) + coalesce(d.amount, 0))::bigint "
		    "AS moved_and_owed FROM credit_refunds r "
		    "LEFT JOIN credit_transfers t ON t.org_id = r.org_id AND "
		    "t.anchor = r.refund_anchor AND t.kind = 'refund' "
		    "LEFT JOIN credit_debts d ON d.org_id = r.org_id AND "
		    "d.refund_anchor = r.refund_anchor "
		    "WHERE ($1::uuid IS NULL OR r.org_id = $1::uuid) AND "
		    "r.credits <> coalesce(t.amount, 0) + "
		    "coalesce(d.amount, 0)" },
		/* Partial settlements (sql/0026, credit_capture.c). */
		{ "capture_parts_mismatch",
		    "SELECT r.org_id, r.id AS reservation_id, r.captured, "
		    "coalesce(c.cap, 0)::bigint AS expected_captured, "
		    "r.returned, coalesce(c.ret, 0)::bigint AS "
		    "expected_returned FROM credit_reservations r "
		    "LEFT JOIN (SELECT org_id, reservation_id AS id, "
		    "sum(captured) AS cap, sum(returned) AS ret "
		    "FROM credit_captures GROUP BY 1, 2) c USING (org_id, id) "
		    "WHERE ($1::uuid IS NULL OR r.org_id = $1::uuid) AND "
		    "(r.captured <> coalesce(c.cap, 0) OR "
		    "r.returned <> coalesce(c.ret, 0))" },
		{ "capture_transfer_mismatch",
		    "SELECT c.org_id, c.capture_key, c.captured, "
		    "t.amount, t.kind FROM credit_captures c "
		    "LEFT JOIN credit_transfers t ON t.org_id = c.org_id AND "
		    "t.id = c.transfer_id WHERE c.captured > 0 AND "
		    "($1::uuid IS NULL OR c.org_id = $1::uuid) AND "
		    "(t.id IS NULL OR t.amount <> c.captured OR "
		    "t.kind <> 'capture')" },
		{ "capture_without_part",
		    "SELECT t.org_id, t.id AS transfer_id, t.amount "
		    "FROM credit_transfers t WHERE t.kind = 'capture' AND "
		    "($1::uuid IS NULL OR t.org_id = $1::uuid) AND NOT EXISTS "
		    "(SELECT 1 FROM credit_captures c WHERE "
		    "c.org_id = t.org_id AND c.transfer_id = t.id)" },
	};
	struct credit_check_arg *b = arg;
	const char		*p[1] = { b->org_id };
	PGresult		*res = NULL;
	enum bw_err		 er;
	size_t			 i;

	er = db_exec(db,
	    "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, "
	    "READ ONLY",
	    0, NULL, NULL);
	if (er != BW_OK)
		return er;
	json_object_put(b->problems);
	b->problems = json_object_new_array();
	for (i = 0; i < sizeof(checks) / sizeof(checks[0]); i++) {
		er = db_exec(db, checks[i].sql, 1, p, &res);
		if (er != BW_OK)
			return er;
		credit_problems_add(b->problems, checks[i].problem, res);
		PQclear(res);
		res = NULL;
	}
	return BW_OK;
}

enum bw_err
credit_check(struct db *db, const char *org_id, struct json_object **problems,
    bool *clean)
{
	struct credit_check_arg b;
	enum bw_err		er;

	if (org_id != NULL && !jv_is_uuid(org_id, strlen(org_id)))
		return BW_EINVAL;
	memset(&b, 0, sizeof(b));
	b.org_id = org_id;
	er = db_tx(db, false, credit_check_fn, &b);
	if (er != BW_OK) {
		json_object_put(b.problems);
		return er;
	}
	*clean = json_object_array_length(b.problems) == 0;
	*problems = b.problems;
	return BW_OK;
}
