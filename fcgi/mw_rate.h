/* SPDX-License-Identifier: MIT */
/*
 * Rate-limit middleware: runs after authentication and before the body is
 * read for routes whose row carries .rate, with per-org overrides from
 * org_rate_limits (sql/0007_ratelimits.sql).
 */
#ifndef BW_MW_RATE_H
#define BW_MW_RATE_H

#include "core/rds.h"
#include "platform/ratelimit.h"
#include "req.h"

/*
 * Checks the route's limits. Sets X-RateLimit-Limit, -Remaining and -Reset
 * on the response (also on the later handler's answer). Returns 1 to go on
 * (admitted, or the route has no limits); 0 when the error is already set:
 * 429 RATE_LIMITED with Retry-After, or 503 DEPENDENCY_UNAVAILABLE with
 * Retry-After when Redis cannot count (fail closed, docs/api/ratelimits.md),
 * unless the route is ROUTE_RATE_OPEN: then 1 with r->rate_unchecked set.
 */
int mw_rate_check(struct req *r);

/*
 * For an answer refused before the limiter (401, 403) on a limited route:
 * sets the X-RateLimit headers of the windows the request would count in
 * (the org's when a valid key named one, the client IP's) without counting
 * it. Without a key and with only org rules: the route's first rule, all
 * of it remaining, reset 0. Sets nothing when Redis cannot answer.
 */
void mw_rate_peek(struct req *r);

/*
 * ROUTE_RATE_RIDES: the limiter in the handler's first Redis pipeline.
 * mw_rate_ride_prep() fills call: 1 (send it, then pass its reply to
 * mw_rate_ride_done()); 0 (nothing to send: the limiter had nothing to
 * count, or ran alone now and admitted: go on); -1 (it ran alone and the
 * answer is set). It runs alone for a request that counts in a window
 * this child saw full in the last second (a flood over its limit does no
 * handler work at all). mw_rate_ride_done(): 1 go on; 2 go on, the
 * per-child caches were flushed (read again what came from them); 0 the
 * answer is set (429, 503, or 401/403 when the generation moved and the
 * key no longer verifies). rd->r is the request; rd must outlive the
 * call.
 */
struct mw_rate_ride {
	struct req    *r;
	struct rl_item items[RL_MAX_RULES];
	enum rl_scope  sc[RL_MAX_RULES];
	int	       n;
	struct rl_call rc;
};
int mw_rate_ride_prep(struct mw_rate_ride *, struct rds_call *call);
int mw_rate_ride_done(struct mw_rate_ride *, const struct rds_call *call);
/*
 * Runs the limiter when r->rate_pending (ROUTE_RATE_RIDES and nothing rode
 * yet), as mw_rate_check(): its 429 or 503 replaces the answer set. 1 when
 * nothing was pending.
 */
int mw_rate_pending(struct req *r);

#endif
