/* SPDX-License-Identifier: MIT */
/*
 * Rate-limit middleware (CONTRACT.md "Rate limits"): builds the request's
 * rules from the route row and the org's overrides, runs the one limiter
 * script, and turns its answer into headers, 429 or 503. Fail closed: when
 * Redis cannot count, a limited route answers 503 DEPENDENCY_UNAVAILABLE
 * rather than admitting traffic nobody counts (for chat this also protects
 * the paid provider, which would need Redis for its semaphore anyway).
 */
#include <stdio.h>
#include <string.h>

#include "core/apierr.h"
#include "ctx.h"
#include "core/clock.h"
#include "core/log.h"
#include "mw_auth.h"
#include "mw_rate.h"
#include "platform/cached.h"
#include "platform/pcache.h"
#include "platform/ratelimit.h"
#include "resp.h"
#include "route.h"

/* Sets the three X-RateLimit headers from res. */
static void
mw_rate_headers(struct req *r, const struct rl_result *res)
{
	char v[24];

	snprintf(v, sizeof(v), "%d", res->limit);
	resp_header(r, "X-RateLimit-Limit", v);
	snprintf(v, sizeof(v), "%d", res->remaining);
	resp_header(r, "X-RateLimit-Remaining", v);
	snprintf(v, sizeof(v), "%d", res->reset_s);
	resp_header(r, "X-RateLimit-Reset", v);
}

/*
 * Fills items from the route's rules with the org's overrides applied.
 * Returns the number of items (0: nothing to check), or -1 on a bad key.
 */
static int
mw_rate_items(struct req *r, struct rl_item *items, enum rl_scope *sc)
{
	const struct rl_rule *ru;
	struct rl_rule	      ov[RL__MAX * 2];
	size_t		      nov = 0, k;
	const char	     *ident;
	int		      n = 0;

	int hit = 0;

	if (r->authed && r->who.org_id[0] != '\0' &&
	    cached_rl_overrides(r->ch->db, r->who.org_id, r->route->name, ov,
		sizeof(ov) / sizeof(ov[0]), &nov, &hit) != BW_OK) {
		/* Auth just read PostgreSQL; if it failed since, the
		 * defaults still limit. */
		log_kv(LL_WARN,
		    "ratelimit: overrides unreadable, defaults "
		    "apply",
		    "route", r->route->name, NULL);
		nov = 0;
	}
	if (hit)
		r->pc_used = 1;
	for (ru = r->route->rate; ru->limit > 0 && n < RL_MAX_RULES; ru++) {
		if (ru->scope == RL_ORG) {
			if (!r->authed || r->who.org_id[0] == '\0')
				continue;
			ident = r->who.org_id;
		} else
			ident =
			    r->client_ip[0] != '\0' ? r->client_ip : "unknown";
		if (rl_key(&items[n], r->route->name, ru->scope, ident) !=
		    BW_OK)
			return -1;
		sc[n] = ru->scope;
		items[n].limit = ru->limit;
		items[n].window_s = ru->window_s;
		for (k = 0; k < nov; k++) {
			if (ov[k].scope == ru->scope) {
				items[n].limit = ov[k].limit;
				items[n].window_s = ov[k].window_s;
			}
		}
		n++;
	}
	return n;
}

/*
 * The generation the limiter's script must find to count: the one the
 * per-child cache holds, when something of this request came from it;
 * NULL: no comparison.
 */
static const char *
mw_rate_want(const struct req *r)
{
	if (pcache_enabled() && r->pc_used && pcache_gen()[0] != '\0')
		return pcache_gen();
	return NULL;
}

/*
 * Runs the limiter's script, which also reads the configuration generation
 * (platform/cfggen.h). When something of this request came from the
 * per-child cache, the script counts only if the generation is still the
 * one the cache holds; when it moved, the caches are flushed (*flushed set),
 * the key is verified again and the overrides re-read from the database,
 * and the script runs once more (everything now fresh: no second
 * comparison). first: the first run's answer when it rode in a handler's
 * pipeline (first_er its return), NULL to run it here. Returns
 * rl_check()'s returns, or BW_EINVAL when the answer is set (401, 403, 503
 * from the new verification, or a bad key).
 */
static enum bw_err
mw_rate_run(struct req *r, struct rl_item *items, int *n, enum rl_scope *sc,
    const struct rl_result *first, enum bw_err first_er, struct rl_result *res,
    int *flushed)
{
	enum bw_err er;
	int	    again;

	for (again = 0;; again = 1) {
		if (first != NULL && !again) {
			er = first_er;
			if (er == BW_OK)
				*res = *first;
		} else {
			/* The second pass read everything after the flush:
			 * no check. */
			er = rl_check_gen(r->ch->rds, items, (size_t)*n,
			    again ? NULL : mw_rate_want(r), res);
		}
		if (er != BW_OK) {
			/* No generation: nothing cached can be trusted. */
			(void)pcache_gen_observe(NULL);
			if ((r->route->flags & ROUTE_RATE_OPEN) &&
			    !mw_auth_recheck(r))
				return BW_EINVAL;
			return er;
		}
		if (pcache_gen_observe(res->gen) && flushed != NULL)
			*flushed = 1;
		if (!res->stale || again)
			return BW_OK;
		/* The generation moved: verify and read everything again. */
		if (flushed != NULL)
			*flushed = 1;
		r->pc_used = 0;
		if (!mw_auth_recheck(r)) {
			if (r->status == 401)
				mw_rate_peek(r);
			return BW_EINVAL;
		}
		*n = mw_rate_items(r, items, sc);
		if (*n <= 0) {
			resp_error(r, AE_INTERNAL, NULL, NULL);
			return BW_EINVAL;
		}
	}
}

/*
 * Keys of windows this child saw full in the last second: a request that
 * counts in one runs the limiter alone, before its handler's work, rather
 * than riding with it (mw_rate_ride_prep()): a flood over its limit takes
 * no provider slot even for a round trip.
 */
#define MW_RATE_FULL_N	8
#define MW_RATE_FULL_MS 1000
static struct {
	char	key[RL_MAX_KEY];
	int64_t ms;
} mw_rate_full[MW_RATE_FULL_N];
static unsigned mw_rate_full_next;

static void
mw_rate_full_note(const char *key)
{
	unsigned i = mw_rate_full_next++ % MW_RATE_FULL_N;

	snprintf(mw_rate_full[i].key, sizeof(mw_rate_full[i].key), "%s", key);
	mw_rate_full[i].ms = clock_mono_ms();
}

static int
mw_rate_full_recently(const struct rl_item *items, int n)
{
	int64_t now = clock_mono_ms();
	int	i, k;

	for (i = 0; i < MW_RATE_FULL_N; i++) {
		if (mw_rate_full[i].ms == 0 ||
		    now - mw_rate_full[i].ms >= MW_RATE_FULL_MS)
			continue;
		for (k = 0; k < n; k++)
			if (strcmp(mw_rate_full[i].key, items[k].key) == 0)
				return 1;
	}
	return 0;
}

/*
 * The limiter's answer er, res: headers, and 1 to go on; else 0 with the
 * answer set (429, 503; or 1 with r->rate_unchecked for ROUTE_RATE_OPEN).
 */
static int
mw_rate_answer(struct req *r, enum bw_err er, const struct rl_item *items,
    const enum rl_scope *sc, const struct rl_result *res)
{
	char ra[24];

	if (er == BW_EINVAL)
		return 0; /* answered */
	if (er != BW_OK && (r->route->flags & ROUTE_RATE_OPEN)) {
		log_kv(LL_WARN, "ratelimit: redis unavailable, handler decides",
		    "route", r->route->name, "error", bw_strerror(er), NULL);
		r->rate_unchecked = 1;
		return 1;
	}
	if (er != BW_OK) {
		log_kv(LL_ERROR, "ratelimit: redis unavailable, refusing",
		    "route", r->route->name, "error", bw_strerror(er), NULL);
		resp_header(r, "Retry-After", "1");
		resp_error(r, AE_DEPENDENCY_UNAVAILABLE, NULL, NULL);
		return 0;
	}
	mw_rate_headers(r, res);
	if (res->admitted)
		return 1;
	mw_rate_full_note(items[res->rule].key);
	snprintf(ra, sizeof(ra), "%d", res->retry_after_s);
	resp_header(r, "Retry-After", ra);
	log_kv(LL_INFO, "rate limited", "route", r->route->name, "scope",
	    rl_scope_name(sc[res->rule]), NULL);
	resp_error(r, AE_RATE_LIMITED,
	    "rate limit exceeded; retry after "
	    "the Retry-After delay",
	    NULL);
	return 0;
}

int
mw_rate_check(struct req *r)
{
	struct rl_item	 items[RL_MAX_RULES];
	struct rl_result res;
	enum rl_scope	 sc[RL_MAX_RULES];
	enum bw_err	 er;
	int		 n;

	r->rate_pending = 0;
	if (r->route == NULL || r->route->rate == NULL)
		return 1;
	n = mw_rate_items(r, items, sc);
	if (n < 0) {
		log_kv(LL_ERROR, "ratelimit: bad key", "route", r->route->name,
		    NULL);
		resp_error(r, AE_INTERNAL, NULL, NULL);
		return 0;
	}
	if (n == 0)
		return 1;
	er = mw_rate_run(r, items, &n, sc, NULL, BW_OK, &res, NULL);
	return mw_rate_answer(r, er, items, sc, &res);
}

int
mw_rate_pending(struct req *r)
{
	if (!r->rate_pending)
		return 1;
	return mw_rate_check(r);
}

int
mw_rate_ride_prep(struct mw_rate_ride *rd, struct rds_call *call)
{
	struct req *r = rd->r;

	memset(call, 0, sizeof(*call));
	rd->n = 0;
	if (!r->rate_pending)
		return 0;
	if (r->route != NULL && r->route->rate != NULL)
		rd->n = mw_rate_items(r, rd->items, rd->sc);
	if (rd->n <= 0 || mw_rate_full_recently(rd->items, rd->n))
		return mw_rate_check(r) ? 0 : -1; /* alone, now */
	if (rl_check_prep(&rd->rc, rd->items, (size_t)rd->n, mw_rate_want(r),
		call) != BW_OK)
		return mw_rate_check(r) ? 0 : -1;
	r->rate_pending = 0;
	return 1;
}

int
mw_rate_ride_done(struct mw_rate_ride *rd, const struct rds_call *call)
{
	struct rl_result first, res;
	enum bw_err	 er;
	int		 flushed = 0;

	memset(&first, 0, sizeof(first));
	er = rl_check_done(&rd->rc, call, &first);
	er = mw_rate_run(rd->r, rd->items, &rd->n, rd->sc, &first, er, &res,
	    &flushed);
	if (!mw_rate_answer(rd->r, er, rd->items, rd->sc, &res))
		return 0;
	return flushed ? 2 : 1;
}

void
mw_rate_peek(struct req *r)
{
	struct rl_item	 items[RL_MAX_RULES];
	struct rl_result res;
	enum rl_scope	 sc[RL_MAX_RULES];
	int		 n;

	if (r->route == NULL || r->route->rate == NULL ||
	    r->route->rate[0].limit <= 0)
		return;
	n = mw_rate_items(r, items, sc);
	if (n < 0)
		return;
	if (n == 0) {
		/* No key: no window of this caller exists, nothing counted. */
		memset(&res, 0, sizeof(res));
		res.limit = r->route->rate[0].limit;
		res.remaining = res.limit;
		mw_rate_headers(r, &res);
		return;
	}
	if (rl_peek(r->ch->rds, items, (size_t)n, &res) != BW_OK) {
		log_kv(LL_WARN, "ratelimit: redis unavailable, no headers",
		    "route", r->route->name, NULL);
		return;
	}
	mw_rate_headers(r, &res);
}
