/* SPDX-License-Identifier: MIT */
/* bulwarkctl rate-limit commands: per-org overrides (lib/platform/ratelimit.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "platform/ratelimit.h"

/* Routes with org-authenticated limits (fcgi/routes.c names). */
static const char *const ctl_rate_routes[] = {
	"chat",
	"export_create",
	"evidence",
};

/*
 * ratelimit set --org ID --route R --scope org|ip --limit N --window-s W:
 * the org's limit for one scope of a route (--limit 0 removes the override
 * and the default applies again). Takes effect on the next request.
 * Prints {"org_id","route","scope","limit","window_s"}. Exit 0, 1 on
 * failure, 2 on usage.
 */
int
ctl_ratelimit_set(struct ctl *c, int argc, char **argv)
{
	static const char *const names[] = { "org", "route", "scope", "limit",
		"window-s" };
	const char		*v[5] = { NULL, NULL, NULL, NULL, NULL };
	struct json_object	*o;
	enum rl_scope		 sc;
	enum bw_err		 er;
	size_t			 i;
	long long		 limit = -1, win = 0;
	int			 rc, known = 0;

	if ((rc = ctl_flags(argc, argv, names, v, 5)) != 0)
		return rc;
	for (i = 0; v[1] != NULL &&
	     i < sizeof(ctl_rate_routes) / sizeof(ctl_rate_routes[0]);
	     i++)
		if (strcmp(v[1], ctl_rate_routes[i]) == 0)
			known = 1;
	if (v[0] == NULL || !known || rl_scope_parse(v[2], &sc) != BW_OK ||
	    ctl_num(v[3], 0, 1000000, &limit) != 0 ||
	    (limit > 0 && ctl_num(v[4], 1, 604800, &win) != 0)) {
		fprintf(stderr,
		    "bulwarkctl: ratelimit set needs --org ID "
		    "--route chat|export_create|evidence --scope org|ip "
		    "--limit 0..1000000 --window-s 1..604800\n");
		return 2;
	}
	if ((rc = ctl_connect(c)) != 0)
		return rc;
	er = rl_override_set(c->db, v[0], v[1], sc, (int)limit, (int)win);
	if (er == BW_ENOTFOUND && limit == 0)
		er = BW_OK; /* removing what is not there: done */
	if (er == BW_ENOTFOUND) {
		fprintf(stderr, "bulwarkctl: ratelimit set: no such org\n");
		return 1;
	}
	if (er == BW_EINVAL) {
		fprintf(stderr,
		    "bulwarkctl: ratelimit set: the org id must "
		    "be a UUID\n");
		return 1;
	}
	if (er != BW_OK)
		return ctl_fail("ratelimit set", er);
	o = json_object_new_object();
	json_object_object_add(o, "org_id", json_object_new_string(v[0]));
	json_object_object_add(o, "route", json_object_new_string(v[1]));
	json_object_object_add(o, "scope",
	    json_object_new_string(rl_scope_name(sc)));
	json_object_object_add(o, "limit", json_object_new_int((int)limit));
	json_object_object_add(o, "window_s", json_object_new_int((int)win));
	ctl_emit(o);
	return ctl_bump(c);
}
