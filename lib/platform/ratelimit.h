/* SPDX-License-Identifier: MIT */
/*
 * Sliding-window rate limits kept in Redis (CONTRACT.md "Rate limits"): an
 * exact sliding log per key (a sorted set of admission times, Redis server
 * time), and one Lua script per request that checks every rule of the
 * request and admits into all of them or none.
 */
#ifndef BW_RATELIMIT_H
#define BW_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/rds.h"
#include "platform/cfggen.h"

struct db;

#define RL_MAX_RULES 4	 /* rules one request is checked against */
#define RL_MAX_KEY   320 /* a Redis key of one rule */

enum rl_scope {
	RL_ORG, /* the authenticated org */
	RL_IP,	/* the client IP nginx saw */
	RL__MAX
};

/* One row of a route's limits (fcgi/routes.c); a row with limit 0 ends. */
struct rl_rule {
	enum rl_scope scope;
	int	      limit;	/* N requests ... */
	int	      window_s; /* ... in any W seconds */
};

/* One rule as checked: its key and its effective limit. */
struct rl_item {
	char key[RL_MAX_KEY];
	int  limit;    /* >= 1 */
	int  window_s; /* >= 1 */
};

/* What one check found. */
struct rl_result {
	int	admitted;		/* 1: counted in every rule; 0: none */
	int	rule;			/* the rule the headers describe */
	int	limit;			/* X-RateLimit-Limit */
	int	remaining;		/* X-RateLimit-Remaining (after this) */
	int	reset_s;		/* X-RateLimit-Reset: next slot frees */
	int	retry_after_s;		/* >= 1 when refused, else 0 */
	int64_t now_us;			/* Redis server time of the check */
	int	remain[RL_MAX_RULES];	/* per rule, after this request */
	int64_t reset_ms[RL_MAX_RULES]; /* per rule */
	/* The configuration generation read in the same script
	 * (platform/cfggen.h); stale = 1 when it was not the one the caller
	 * expected: then nothing was counted and only gen is set. */
	char gen[64];
	int  stale;
};

/* "org" or "ip". */
const char *rl_scope_name(enum rl_scope);
/* Parses "org" / "ip"; BW_EINVAL otherwise. */
enum bw_err rl_scope_parse(const char *, enum rl_scope *);

/*
 * Builds the key of a rule: "rl:{rl}:<route>:<scope>:<ident>". Every rate
 * limit key shares the hash tag {rl} so that one script may touch the org
 * and the IP keys of a request in Redis Cluster (the trade-off: all rate
 * limit keys live in one slot, hence on one shard). route is [a-z_]+;
 * ident (org id or IP) is printable ASCII without spaces. BW_EINVAL or
 * BW_ETOOBIG otherwise.
 */
enum bw_err rl_key(struct rl_item *it, const char *route, enum rl_scope scope,
    const char *ident);

/*
 * Checks items[0..n) (1 <= n <= RL_MAX_RULES) in one Lua script with Redis
 * server time: when every rule has room the request is added to each log
 * and res->admitted = 1; when any is full nothing is added anywhere and
 * res->admitted = 0 with retry_after_s (whole seconds, >= 1) the time until
 * every refusing rule has a slot again. res describes, for headers, the
 * refusing rule with the longest wait, or, when admitted, the rule with the
 * fewest remaining requests. Returns BW_OK (*res filled), BW_EINVAL, or
 * BW_EREDIS when Redis is unreachable, slow or errs (callers refuse the
 * request: a limiter that cannot count must not admit).
 */
enum bw_err rl_check(struct rds *, const struct rl_item *items, size_t n,
    struct rl_result *res);

/*
 * rl_check() that first compares the configuration generation with
 * want_gen (NULL or "": no comparison): when it differs, nothing is
 * counted and res->stale = 1 with res->gen the current one, for the caller
 * to drop its caches, re-read and check again. Every reply carries
 * res->gen (a missing generation is set to a fresh value first).
 */
enum bw_err rl_check_gen(struct rds *, const struct rl_item *items, size_t n,
    const char *want_gen, struct rl_result *res);

/*
 * rl_check_gen() in two halves, for a caller that sends it in one pipeline
 * with other commands (rds_pipeline()): rl_check_prep() fills call (c
 * keeps its arguments and items, which must outlive the call);
 * rl_check_done() reads call's reply into res with rl_check_gen()'s
 * returns. The caller frees call->reply.
 */
struct rl_call {
	const struct rl_item *items;
	size_t		      n;
	const char	     *av[4 + 3 * RL_MAX_RULES];
	char		      nums[RL_MAX_RULES][2][24];
	char		      fresh[CFGGEN_LEN + 1];
	char		      tok[33];
};
enum bw_err rl_check_prep(struct rl_call *c, const struct rl_item *items,
    size_t n, const char *want_gen, struct rds_call *call);
enum bw_err rl_check_done(const struct rl_call *c, const struct rds_call *call,
    struct rl_result *res);

/*
 * rl_check() that records nothing: *res says what a request would see now
 * (admitted = 1 when every rule has room; remaining counts this request as
 * not made). For the headers of answers refused before the limiter (401,
 * 403). Same returns.
 */
enum bw_err rl_peek(struct rds *, const struct rl_item *items, size_t n,
    struct rl_result *res);

/*
 * Per-org overrides (table org_rate_limits, sql/0007_ratelimits.sql). Puts
 * the org's rows for route into out[0..max), *n of them. Returns BW_OK,
 * BW_EINVAL, BW_EDB.
 */
/* Prepares rl_overrides()'s statement on db (db_warm()). */
enum bw_err rl_warm(struct db *);
enum bw_err rl_overrides(struct db *, const char *org_id, const char *route,
    struct rl_rule *out, size_t max, size_t *n);
/*
 * Sets (limit >= 1) or removes (limit 0) the org's override of one scope of
 * route. Returns BW_OK, BW_EINVAL, BW_ENOTFOUND (no such org, or nothing to
 * remove), BW_EDB.
 */
enum bw_err rl_override_set(struct db *, const char *org_id, const char *route,
    enum rl_scope scope, int limit, int window_s);

/* Admissions currently in the window of one key. */
enum bw_err rl_count(struct rds *, const struct rl_item *it, int *n);

#endif
