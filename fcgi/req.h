/* SPDX-License-Identifier: MIT */
/*
 * The request context: everything one request allocates hangs off struct
 * req and is released by req_free() at the end of the accept-loop pass
 * (kcgi's khttp_free()). Also the pure helpers for request and correlation
 * ids (CONTRACT.md, "Common to every response").
 */
#ifndef BW_REQ_H
#define BW_REQ_H

#include <stddef.h>
#include <stdint.h>

#include <fcgiapp.h>

#include "people/session.h"
#include "platform/auth.h"
#include "core/buf.h"
#include "core/limits.h"

struct child;
struct json_object;
struct route;

#define REQ_MAX_ARGS 4	 /* {} segments in a route */
#define REQ_MAX_ARG  128 /* bytes in one {} segment */

struct req {
	FCGX_Request	   *fr;	    /* not owned */
	struct child	   *ch;	    /* not owned */
	const char	   *method; /* owned by libfcgi */
	const char	   *query;  /* owned by libfcgi, "" if none */
	char		    path[BW_MAX_PATH + 1];
	char		    request_id[BW_MAX_REQUEST_ID + 1];
	char		    correlation_id[BW_MAX_REQUEST_ID + 1];
	char		    client_ip[64];
	int64_t		    start_us;
	int64_t		    queued_ms; /* waited before us (BW_REQUEST_START) */
	struct buf	    body;
	int		    body_whole; /* req_read_body() read all of it */
	const struct route *route;	/* NULL until matched */
	char		    args[REQ_MAX_ARGS][REQ_MAX_ARG + 1];
	int		    nargs;
	/* The JSON body validated against the route's schema (fcgi/mw_input.c);
	 * NULL for routes without one. Owned, put by req_free(). */
	struct json_object *in;
	/* ROUTE_ACTION: why the body is not empty or {} (NULL: it is); the
	 * field it names. Set by fcgi/mw_input.c, answered by the handler. */
	const char	     *body_problem;
	char		      body_field[64];
	int		      authed;
	struct auth_principal who;
	/* Per-child cache (fcgi/mw_auth.c): who came from the cache and waits
	 * for the limiter's generation; something of this request did. */
	int	auth_provisional;
	int	pc_used;
	uint8_t auth_hash[32];
	/* The route's rate limit could not be counted (ROUTE_RATE_OPEN). */
	int rate_unchecked;
	/* ROUTE_RATE_RIDES: the limiter has not run yet (fcgi/mw_rate.h). */
	int rate_pending;
	/* The cookie session that authenticated the request, when one did
	 * (fcgi/mw_session.c): its id (never logged) and what it says. */
	char		    sess_id[SESSION_ID_LEN + 1];
	struct session_info sess;
	/* The response being built. */
	int	    status;
	const char *ctype;
	struct buf  hdrs;     /* extra "Name: value\r\n" lines */
	struct buf  out;      /* the body */
	const char *err_code; /* for the access log, static */
	/* More fields for the access line (a handler's figures); owned. */
	struct json_object *log_extra;
	int		    sent;
	/* Idempotency-Key state (fcgi/mw_idem.c). */
	int  idem_locked;   /* key held; the handler runs in db_begin()'s tx */
	char idem_ksha[65]; /* hex SHA-256 of the key: natural keys */
	char idem_key[256];
	char idem_token[37];  /* lock_token held */
	char idem_ctype[128]; /* a replay's type */
};

/* 1 if s is a valid client request/correlation id: [A-Za-z0-9._-]{1,128}. */
int req_id_valid(const char *s);
/*
 * Extracts the trace id of a W3C traceparent header (Trace Context §3.2):
 * "vv-<32 hex>-<16 hex>-<2 hex>", lower-case hex, version not ff, ids not
 * all zero; version 00 must have exactly that length. Writes 33 bytes to
 * out and returns 1, else returns 0.
 */
int req_traceparent(const char *tp, char out[33]);
/*
 * Chooses the ids per CONTRACT.md. nginx_rid is nginx's decision (already
 * the client's valid X-Request-ID or $request_id) and wins when valid;
 * else a valid client_rid; else fallback (a generated id). The correlation
 * id is a valid client_cid, else the traceparent's trace id, else nginx_cid
 * when valid, else the request id.
 */
void req_pick_ids(const char *nginx_rid, const char *client_rid,
    const char *nginx_cid, const char *client_cid, const char *traceparent,
    const char *fallback, char rid[BW_MAX_REQUEST_ID + 1],
    char cid[BW_MAX_REQUEST_ID + 1]);
/*
 * Parses "Bearer <token>" (scheme case-insensitive, one or more spaces).
 * Returns 1 with *tok and *len pointing into authz, else 0.
 */
int req_bearer(const char *authz, const char **tok, size_t *len);

/* Fills r from the FastCGI request (ids, path, client ip). */
void req_init(struct req *r, FCGX_Request *fr, struct child *ch);
/* A FastCGI parameter ("HTTP_X_REQUEST_ID") or NULL. */
const char *req_param(const struct req *r, const char *name);
/*
 * The request's CONTENT_LENGTH: 0 when absent or empty; BW_EINVAL unless
 * it is digits only, at most INT64_MAX. The one parser of that header.
 */
enum bw_err req_content_length(const struct req *r, uint64_t *len);
/*
 * Reads the body per CONTENT_LENGTH into r->body, refusing more than max
 * bytes before reading (BW_ETOOBIG); BW_EIO when the stream ends early.
 */
enum bw_err req_read_body(struct req *r, size_t max);
/*
 * After the answer: when the body was read whole by req_read_body(), or the
 * request declared none, reads the end of stdin (the empty FCGI_STDIN
 * record nginx sends with the body, so this does not wait on the client)
 * and detaches the request, so that libfcgi closes the connection at once
 * instead of waiting for nginx to close first. A body left unread keeps
 * libfcgi's lingering close (it drains what nginx still sends, so nginx
 * never meets a reset while sending). Returns 1 when detached.
 */
int  req_stdin_end(struct req *r);
void req_free(struct req *r);

#endif
