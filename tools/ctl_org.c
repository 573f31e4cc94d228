/* SPDX-License-Identifier: MIT */
/* bulwarkctl org commands beyond create: show, set-tier (lib/platform/org.h). */
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "ctl.h"
#include "platform/org.h"

#define CTL_TIERS "starter|pro|business|enterprise"

/* Adds the retention the org's tier gives to o (an org object). */
static void
ctl_org_retention(struct json_object *o)
{
	struct json_object *t = NULL;

	json_object_object_get_ex(o, "tier", &t);
	json_object_object_add(o, "retention_days",
	    json_object_new_int(
		org_tier_retention_days(json_object_get_string(t))));
}

/* The message and exit status for an org lookup that failed. */
static int
ctl_org_err(const char *what, const char *org, enum bw_err er)
{
	if (er == BW_ENOTFOUND) {
		fprintf(stderr, "bulwarkctl: %s: no such org '%s'\n", what,
		    org);
		return 1;
	}
	return ctl_fail(what, er);
}

/*
 * org show --org ID: prints {"id","name","tier","timezone","created_at",
 * "retention_days"}. Exit 0, 1 on failure (no such org), 2 on usage.
 */
int
ctl_org_show(struct ctl *c, int argc, char **argv)
{
	static const char *const names[] = { "org" };
	const char		*v[1] = { NULL };
	struct json_object	*o = NULL;
	enum bw_err		 er;
	int			 rc;

	if ((rc = ctl_flags(argc, argv, names, v, 1)) != 0)
		return rc;
	if (v[0] == NULL) {
		fprintf(stderr, "bulwarkctl: org show needs --org ID\n");
		return 2;
	}
	if ((rc = ctl_connect(c)) != 0)
		return rc;
	er = org_get(c->db, v[0], &o);
	if (er != BW_OK)
		return ctl_org_err("org show", v[0], er);
	ctl_org_retention(o);
	ctl_emit(o);
	return 0;
}

/*
 * org set-tier --org ID --tier T: changes the org's plan tier, records the
 * change (org_tier_changes, actor "bulwarkctl:<unix user>") and logs it.
 * Retention applies the new tier from the next pass on, to every ready
 * export of the org. Prints the org as for org show plus "previous_tier".
 * Exit 0, 1 on failure (no such org), 2 on usage (unknown tier).
 */
int
ctl_org_set_tier(struct ctl *c, int argc, char **argv)
{
	static const char *const names[] = { "org", "tier" };
	const char		*v[2] = { NULL, NULL };
	struct json_object	*o = NULL;
	struct passwd		*pw;
	char			 actor[128], from[32];
	enum bw_err		 er;
	int			 rc;

	if ((rc = ctl_flags(argc, argv, names, v, 2)) != 0)
		return rc;
	if (v[0] == NULL || v[1] == NULL) {
		fprintf(stderr,
		    "bulwarkctl: org set-tier needs --org ID --tier " CTL_TIERS
		    "\n");
		return 2;
	}
	if (!org_tier_valid(v[1])) {
		fprintf(stderr,
		    "bulwarkctl: org set-tier: unknown tier '%s' (one of "
		    "" CTL_TIERS ")\n",
		    v[1]);
		return 2;
	}
	pw = getpwuid(getuid());
	snprintf(actor, sizeof(actor), "bulwarkctl:%s",
	    pw != NULL && pw->pw_name != NULL ? pw->pw_name : "?");
	if ((rc = ctl_connect(c)) != 0)
		return rc;
	/* An operator's change is logged (info), whatever else is quiet. */
	log_init("bulwarkctl", LL_INFO);
	er = org_set_tier(c->db, v[0], v[1], actor, &o, from, sizeof(from));
	if (er != BW_OK)
		return ctl_org_err("org set-tier", v[0], er);
	ctl_org_retention(o);
	json_object_object_add(o, "previous_tier",
	    json_object_new_string(from));
	ctl_emit(o);
	return ctl_bump(c);
}
