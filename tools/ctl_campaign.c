/* SPDX-License-Identifier: MIT */
/*
 * bulwarkctl campaign commands (docs/runbooks/stuck-campaigns.md):
 * `campaign show` and `campaign list` print what GET /api/v1/campaigns
 * shows an org, `campaign reconcile` runs bulwark-reconcile's campaign
 * pass now (safe beside the timer's: each campaign is decided under its
 * row lock).
 */
#include <stdio.h>

#include "campaign/campaign.h"
#include "ctl.h"

/* campaign show --org ID --id ID */
int
ctl_campaign_show(struct ctl *c, int argc, char **argv)
{
	static const char *const names[] = { "org", "id" };
	const char		*v[2] = { NULL, NULL };
	struct json_object	*o = NULL;
	enum bw_err		 er;
	int			 rc;

	if ((rc = ctl_flags(argc, argv, names, v, 2)) != 0)
		return rc;
	if (v[0] == NULL || v[1] == NULL) {
		fprintf(stderr,
		    "bulwarkctl: campaign show needs --org, --id\n");
		return 2;
	}
	if ((rc = ctl_connect(c)) != 0)
		return rc;
	er = campaign_get(c->db, v[0], v[1], &o);
	if (er != BW_OK)
		return ctl_fail("campaign show", er);
	ctl_emit(o);
	return 0;
}

/* campaign list --org ID [--limit N] [--cursor ID] */
int
ctl_campaign_list(struct ctl *c, int argc, char **argv)
{
	static const char *const names[] = { "org", "limit", "cursor" };
	const char		*v[3] = { NULL, NULL, NULL };
	struct json_object	*o = NULL;
	long long		 lim = 20;
	enum bw_err		 er;
	int			 rc;

	if ((rc = ctl_flags(argc, argv, names, v, 3)) != 0)
		return rc;
	if (v[0] == NULL ||
	    (v[1] != NULL && ctl_num(v[1], 1, CAMPAIGN_LIST_MAX, &lim) != 0)) {
		fprintf(stderr,
		    "bulwarkctl: campaign list needs --org (and --limit "
		    "1..%d)\n",
		    CAMPAIGN_LIST_MAX);
		return 2;
	}
	if ((rc = ctl_connect(c)) != 0)
		return rc;
	er = campaign_list(c->db, v[0], (int)lim, v[2], &o);
	if (er != BW_OK)
		return ctl_fail("campaign list", er);
	ctl_emit(o);
	return 0;
}

/* campaign reconcile [--stuck-after S]: default campaign_stuck_after_s. */
int
ctl_campaign_reconcile(struct ctl *c, int argc, char **argv)
{
	static const char *const	 names[] = { "stuck-after" };
	const char			*v[1] = { NULL };
	struct campaign_reconcile_result r;
	struct json_object		*o;
	long long			 s;
	enum bw_err			 er;
	int				 rc;

	if ((rc = ctl_flags(argc, argv, names, v, 1)) != 0)
		return rc;
	s = c->cfg.campaign_stuck_after_s;
	if (v[0] != NULL && ctl_num(v[0], 1, 604800, &s) != 0) {
		fprintf(stderr,
		    "bulwarkctl: --stuck-after must be 1 to 604800\n");
		return 2;
	}
	if ((rc = ctl_connect(c)) != 0)
		return rc;
	er = campaign_reconcile(c->db, (int)s, &r);
	if (er != BW_OK)
		return ctl_fail("campaign reconcile", er);
	o = json_object_new_object();
	json_object_object_add(o, "found", json_object_new_int(r.found));
	json_object_object_add(o, "completed",
	    json_object_new_int(r.completed));
	json_object_object_add(o, "requeued", json_object_new_int(r.requeued));
	json_object_object_add(o, "dead", json_object_new_int(r.dead));
	ctl_emit(o);
	return 0;
}
