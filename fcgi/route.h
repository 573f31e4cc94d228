/* SPDX-License-Identifier: MIT */
/*
 * The route table: one const row per method + path pattern, with its
 * authentication, minimum role, body limit, body schema and handler
 * (kcgi's keys[]). Patterns are literal segments and "{}" placeholders
 * for one segment.
 */
#ifndef BW_ROUTE_H
#define BW_ROUTE_H

#include <stddef.h>
#include <stdio.h>

#include "core/jv.h"
#include "platform/auth.h"
#include "platform/ratelimit.h"
#include "req.h"

enum route_auth {
	RA_NONE, /* public */
	/* Authorization: Bearer <api key>, or the cookie session
	 * (fcgi/mw_session.c) with X-CSRF-Token on state changes. */
	RA_KEY,
	/* A key when one is given (the handler reads r->authed and the
	 * role; min_role is not enforced); none, or one PostgreSQL cannot
	 * check now, goes on as public. A bad key is still 401. */
	RA_OPTIONAL,
	/* The cookie session only (GET /api/v1/auth/session, logout): no
	 * cookie, or a key instead, is 401. */
	RA_SESSION,
	RA__MAX
};

struct route {
	const char     *method;
	const char     *pattern; /* "/api/v1/exports/{}/cancel" */
	const char     *name;	 /* metrics/log label, [a-z_]+ */
	enum route_auth auth;
	enum auth_role	min_role;
	size_t		max_body; /* 0: no body accepted */
	void (*fn)(struct req *);
	unsigned flags; /* ROUTE_* */
	/* Rate limits (fcgi/mw_rate.c), ended by a row with limit 0; NULL:
	 * none. The route name keys the windows and org_rate_limits. */
	const struct rl_rule *rate;
	/* The JSON body's schema: fcgi/mw_input.c parses and validates the
	 * body before the handler, which reads r->in. NULL: the handler
	 * reads r->body itself (webhooks) or the route takes no body. */
	const struct jv_field *fields;
	size_t		       nfields;
};

/* Creating POST: Idempotency-Key replay and locking apply. */
#define ROUTE_IDEMPOTENT      0x01
/* The body is not JSON (raw upload): no JSON checks before the handler. */
#define ROUTE_RAW_BODY	      0x02
/*
 * An action on the resource in the path (commit, release, cancel): takes
 * no body, but accepts none or an empty JSON object, what most clients
 * send. Anything else sets r->body_problem, which the handler answers
 * (400 naming the field) only after it found the resource, so another
 * org's id still gets 404.
 */
#define ROUTE_ACTION	      0x04
/* The body limit of ROUTE_ACTION routes: room for "{}" and blanks. */
#define ROUTE_ACTION_MAX_BODY 1024
/* When Redis cannot count, the rate limit lets the request on with
 * r->rate_unchecked set, for the handler to answer (GET /health/full). */
#define ROUTE_RATE_OPEN	      0x08
/*
 * The rate limiter rides in the handler's first Redis round trip
 * (mw_rate_ride_prep()) instead of running before the body is read:
 * dispatch() leaves r->rate_pending set and runs the limiter itself after
 * an answer the handler did not reach, or gave without riding, so every
 * request still counts once and a refusal still answers 429 (not with
 * ROUTE_RATE_OPEN).
 */
#define ROUTE_RATE_RIDES      0x10

enum route_result {
	RR_MATCH,
	RR_NOT_FOUND,
	RR_METHOD, /* path known, method not: see allow */
	RR__MAX
};

/*
 * Matches method + path against tbl[0..n). On RR_MATCH *out is the row and
 * r->args/r->nargs hold the placeholders; on RR_METHOD allow (allowlen
 * bytes) lists the methods of the path, e.g. "GET, DELETE". A HEAD request
 * matches a GET row. Segments must be 1..REQ_MAX_ARG bytes of printable
 * ASCII or UTF-8; anything else is RR_NOT_FOUND.
 */
enum route_result route_match(const struct route *tbl, size_t n,
    const char *method, const char *path, struct req *r,
    const struct route **out, char *allow, size_t allowlen);

/*
 * Writes tbl[0..n) to out, one JSON object per line (bulwark-fcgi --routes,
 * docs/api.md "Roles"): method, pattern, name, auth ("none", "key",
 * "optional", "session"), min_role (the role a key or session needs; null
 * unless auth is "key" or "session"),
 * flags (["idempotent", "raw_body", "action", "rate_open"]), max_body and
 * rate ([{scope, limit, window_s}], the defaults; null: not limited), and
 * pool (the pool serving it, pools[i]) when pools is not NULL.
 * Returns 0, or -1 when writing failed.
 */
int route_dump(const struct route *tbl, size_t n, const char *const *pools,
    FILE *out);

/* Bulwark's table (fcgi/routes.c). */
extern const struct route routes[];
extern const size_t	  nroutes;
/* The chat channels of the chat schema (NULL-terminated), which
 * fcgi/h_chat.c also accepts in session paths. */
extern const char *const route_chat_channels[];

#endif
