/* SPDX-License-Identifier: MIT */
/*
 * API key verification with the per-child cache: provisional answers from
 * the cache, confirmed by the configuration generation before they count.
 */
#include <string.h>

#include "core/apierr.h"
#include "core/log.h"
#include "ctx.h"
#include "mw_auth.h"
#include "platform/cached.h"
#include "platform/cfggen.h"
#include "platform/pcache.h"
#include "resp.h"
#include "route.h"

/* Set up on the first request of a child (the cache is per process). */
static int mw_auth_ready;

/* 1 when mw_rate_check() will run the limiter's script for r. */
static int
mw_auth_limited(const struct req *r)
{
	return r->route->rate != NULL && r->route->rate[0].limit > 0;
}

enum bw_err
mw_auth_verify(struct req *r, const char *tok, size_t len)
{
	char	    gen[PCACHE_GEN_MAX + 1];
	enum bw_err er;
	int	    hit = 0;

	if (!mw_auth_ready) {
		if (pcache_setup(r->ch->cfg->auth_cache_ttl_s, 0) != BW_OK)
			log_kv(LL_WARN, "auth cache: no memory, off", NULL);
		mw_auth_ready = 1;
	}
	r->auth_provisional = 0;
	if (!pcache_enabled())
		return auth_key_verify(r->ch->db, tok, len, &r->who);
	er = auth_key_hash(tok, len, r->auth_hash);
	if (er != BW_OK)
		return er;
	er = cached_auth(r->ch->db, r->auth_hash, &r->who, &hit);
	if (!hit)
		return er;
	r->pc_used = 1;
	if (er == BW_OK && mw_auth_limited(r) &&
	    (r->route->auth == RA_OPTIONAL ||
		r->who.role >= r->route->min_role)) {
		r->auth_provisional = 1;
		return BW_OK;
	}
	/* No limiter follows, or the answer refuses: confirm it now. */
	if (cfggen_read(r->ch->rds, gen, sizeof(gen)) != BW_OK)
		gen[0] = '\0';
	if (!pcache_gen_observe(gen) && gen[0] != '\0')
		return er;
	return cached_auth(r->ch->db, r->auth_hash, &r->who, &hit);
}

int
mw_auth_recheck(struct req *r)
{
	enum bw_err er;
	int	    hit = 0;

	if (!r->auth_provisional)
		return 1;
	r->auth_provisional = 0;
	er = cached_auth(r->ch->db, r->auth_hash, &r->who, &hit);
	if (er == BW_OK) {
		if (r->route->auth == RA_OPTIONAL ||
		    r->who.role >= r->route->min_role)
			return 1;
		resp_error(r, AE_FORBIDDEN, "this route needs a higher role",
		    NULL);
		return 0;
	}
	r->authed = 0;
	memset(&r->who, 0, sizeof(r->who));
	if (er == BW_EAUTH) {
		resp_header(r, "WWW-Authenticate",
		    "Bearer error=\"invalid_token\"");
		resp_error(r, AE_UNAUTHENTICATED,
		    "the API key is invalid or revoked", NULL);
		return 0;
	}
	if (r->route->auth == RA_OPTIONAL)
		return 1; /* unchecked: the request goes on as public */
	resp_header(r, "Retry-After", "1");
	resp_error(r, AE_DEPENDENCY_UNAVAILABLE, NULL, NULL);
	return 0;
}
