/* SPDX-License-Identifier: MIT */
/*
 * Rate-limit middleware: runs after authentication and before the body is
 * read for routes whose row carries .rate, with per-org overrides from
 * org_rate_limits (sql/0007_ratelimits.sql).
 */
#ifndef BW_MW_RATE_H
#define BW_MW_RATE_H

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

#endif
