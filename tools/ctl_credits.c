/* SPDX-License-Identifier: MIT */
/*
 * bulwarkctl credit ledger commands: `ledger check` recomputes every
 * balance from the transfers (docs/runbooks/credit-reconciliation.md) and
 * `credits grant` grants credits by hand, anchored like a payment.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "money/credit.h"
#include "ctl.h"
#include "core/limits.h"

/* Arguments and result of one operator grant. */
struct ctl_grant {
	const char *org, *user, *anchor;
	int64_t	    amount;
	bool	    applied;
};

/* The grant's transaction (credit_grant_tx runs in the caller's). */
static enum bw_err
ctl_grant_fn(struct db *db, void *arg)
{
	struct ctl_grant *g = arg;

	return credit_grant_tx(db, g->org, g->user, g->amount, g->anchor,
	    &g->applied);
}

/*
 * credits grant --org ID --user U --amount N --anchor A: prints
 * {"applied":bool,...}; the same anchor again applies nothing. Exit 0, 1
 * on failure, 2 on bad usage.
 */
int
ctl_credits_grant(struct ctl *c, int argc, char **argv)
{
	static const char *const names[] = { "org", "user", "amount",
		"anchor" };
	const char		*v[4] = { NULL, NULL, NULL, NULL };
	struct ctl_grant	 g;
	struct json_object	*o;
	long long		 n;
	enum bw_err		 er;
	int			 rc;

	if ((rc = ctl_flags(argc, argv, names, v, 4)) != 0)
		return rc;
	if (v[0] == NULL || v[1] == NULL || v[2] == NULL || v[3] == NULL) {
		fprintf(stderr,
		    "bulwarkctl: credits grant needs --org, "
		    "--user, --amount and --anchor\n");
		return 2;
	}
	if (ctl_num(v[2], 1, BW_MAX_CREDITS, &n) != 0) {
		fprintf(stderr, "bulwarkctl: --amount must be 1 to %d\n",
		    BW_MAX_CREDITS);
		return 2;
	}
	if ((rc = ctl_connect(c)) != 0)
		return rc;
	g.org = v[0];
	g.user = v[1];
	g.anchor = v[3];
	g.amount = n;
	g.applied = false;
	er = db_tx(c->db, false, ctl_grant_fn, &g);
	if (er == BW_EINVAL) {
		fprintf(stderr,
		    "bulwarkctl: credits grant: unknown org, or a "
		    "user id or anchor that is not 1 to 128/200 printable "
		    "characters\n");
		return 1;
	}
	if (er != BW_OK)
		return ctl_fail("credits grant", er);
	o = json_object_new_object();
	json_object_object_add(o, "applied",
	    json_object_new_boolean(g.applied));
	json_object_object_add(o, "org_id", json_object_new_string(g.org));
	json_object_object_add(o, "user_id", json_object_new_string(g.user));
	json_object_object_add(o, "amount", json_object_new_int64(g.amount));
	json_object_object_add(o, "anchor", json_object_new_string(g.anchor));
	ctl_emit(o);
	return 0;
}

/*
 * ledger check [--org ID]: prints {"clean":bool,"org_id":...,"problems":
 * [...]} and exits 1 when any balance differs from its transfers, an org's
 * balances do not sum to 0, or a booking debit has no booking.
 */
int
ctl_ledger_check(struct ctl *c, int argc, char **argv)
{
	static const char *const names[] = { "org" };
	const char		*v[1] = { NULL };
	struct json_object	*o, *problems = NULL;
	bool			 clean = false;
	enum bw_err		 er;
	int			 rc;

	if ((rc = ctl_flags(argc, argv, names, v, 1)) != 0)
		return rc;
	if ((rc = ctl_connect(c)) != 0)
		return rc;
	er = credit_check(c->db, v[0], &problems, &clean);
	if (er == BW_EINVAL) {
		fprintf(stderr,
		    "bulwarkctl: ledger check: --org must be a "
		    "UUID\n");
		return 2;
	}
	if (er != BW_OK)
		return ctl_fail("ledger check", er);
	o = json_object_new_object();
	json_object_object_add(o, "clean", json_object_new_boolean(clean));
	json_object_object_add(o, "org_id",
	    v[0] != NULL ? json_object_new_string(v[0]) : NULL);
	json_object_object_add(o, "problem_count",
	    json_object_new_int64((int64_t)json_object_array_length(problems)));
	json_object_object_add(o, "problems", problems);
	ctl_emit(o);
	if (!clean)
		fprintf(stderr,
		    "bulwarkctl: ledger check: differences "
		    "found\n");
	return clean ? 0 : 1;
}

/*
 * credits capture --org ID --reservation ID --key K [--capture N]
 * [--return M]: one partial settlement of a pending reservation
 * (credit_capture()); prints {"applied":bool,"outcome":...}. Exit 0 when
 * the ledger applied it or had it already, 1 when it said no or failed, 2
 * on bad usage.
 */
int
ctl_credits_capture(struct ctl *c, int argc, char **argv)
{
	static const char *const names[] = { "org", "reservation", "key",
		"capture", "return" };
	static const char *const oc_names[CREDIT__MAX] = { "ok", "insufficient",
		"expired", "wrong_state", "not_found", "duplicate" };
	const char		*v[5] = { NULL, NULL, NULL, NULL, NULL };
	struct credit_part	 pt;
	struct json_object	*o;
	long long		 cap = 0, ret = 0;
	enum credit_outcome	 oc = CREDIT_OK;
	enum bw_err		 er;
	bool			 applied = false;
	int			 rc;

	if ((rc = ctl_flags(argc, argv, names, v, 5)) != 0)
		return rc;
	if (v[0] == NULL || v[1] == NULL || v[2] == NULL ||
	    (v[3] != NULL && ctl_num(v[3], 0, BW_MAX_CREDITS, &cap) != 0) ||
	    (v[4] != NULL && ctl_num(v[4], 0, BW_MAX_CREDITS, &ret) != 0)) {
		fprintf(stderr,
		    "bulwarkctl: credits capture needs --org, --reservation, "
		    "--key and --capture and/or --return (0 to %d)\n",
		    BW_MAX_CREDITS);
		return 2;
	}
	if ((rc = ctl_connect(c)) != 0)
		return rc;
	memset(&pt, 0, sizeof(pt));
	pt.org_id = v[0];
	pt.reservation_id = v[1];
	pt.key = v[2];
	pt.capture = cap;
	pt.give_back = ret;
	er = credit_capture(c->db, &pt, &applied, &oc);
	if (er != BW_OK)
		return ctl_fail("credits capture", er);
	o = json_object_new_object();
	json_object_object_add(o, "applied", json_object_new_boolean(applied));
	json_object_object_add(o, "outcome",
	    json_object_new_string(
		(unsigned)oc < CREDIT__MAX ? oc_names[oc] : "?"));
	ctl_emit(o);
	return oc == CREDIT_OK ? 0 : 1;
}
