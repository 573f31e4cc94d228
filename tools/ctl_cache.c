/* SPDX-License-Identifier: MIT */
/*
 * bulwarkctl and the per-child caches of bulwark-fcgi
 * (lib/platform/pcache.h): after a command commits a change to cached data
 * (a key, a rate-limit override, chat settings, prices, a tier) it bumps
 * the configuration generation in Redis so that every child drops its
 * caches on its next request; `cache bump` does only that.
 */
#include <stdio.h>

#include "core/rds.h"
#include "ctl.h"
#include "platform/cfggen.h"

int
ctl_bump(struct ctl *c)
{
	enum bw_err er = BW_ENOMEM;

	if (c->rds == NULL)
		c->rds = rds_new_cfg(&c->cfg);
	if (c->rds != NULL)
		er = cfggen_bump(c->rds);
	if (er == BW_OK)
		return 0;
	fprintf(stderr,
	    "bulwarkctl: warning: the change is committed, but the cache "
	    "generation could not be bumped in Redis (%s): bulwark-fcgi "
	    "children may still answer from their caches for up to "
	    "auth_cache_ttl_s = %d seconds; run `bulwarkctl cache bump` once "
	    "Redis answers\n",
	    bw_strerror(er), c->cfg.auth_cache_ttl_s);
	return CTL_EXIT_NOT_BUMPED;
}

/* cache bump: every bulwark-fcgi child drops its caches on its next
 * request. Prints {"bumped":true}. Exit 0, 1 when Redis failed. */
int
ctl_cache_bump(struct ctl *c, int argc, char **argv)
{
	struct json_object *o;

	(void)argv;
	if (argc != 0) {
		fprintf(stderr, "bulwarkctl: cache bump takes no arguments\n");
		return 2;
	}
	if (ctl_bump(c) != 0)
		return 1;
	o = json_object_new_object();
	json_object_object_add(o, "bumped", json_object_new_boolean(1));
	ctl_emit(o);
	return 0;
}
