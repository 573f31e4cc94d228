/* SPDX-License-Identifier: MIT */
/*
 * bulwark-fcgi: loads and validates the config, registers the shared
 * metrics, opens the FastCGI socket and hands over to the prefork master.
 * The child hooks open PostgreSQL and Redis after fork() and dispatch each
 * request: route, authenticate, read the body, run the handler, render,
 * log one access line and count it.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "chat/chat.h"
#include "core/clock.h"
#include "core/config.h"
#include "ctx.h"
#include "handlers.h"
#include "core/log.h"
#include "master.h"
#include "core/metrics.h"
#include "mw_idem.h"
#include "mw_input.h"
#include "mw_rate.h"
#include "resp.h"
#include "route.h"
#include "core/sec.h"

static struct child g_child;
/* Metric ids: per route (and one "unmatched" row) per status class. */
static int (*m_requests)[4];
static int *m_duration;

static const char *const status_classes[4] = { "2xx", "3xx", "4xx", "5xx" };

/*
 * Registers the HTTP series before fork() so that every child counts into
 * the same shared cells. Returns 0, or -1 when the table is full.
 */
static int
register_metrics(void)
{
	size_t i, c;
	char   labels[160];

	if (metrics_init() != BW_OK)
		return -1;
	m_requests = calloc(nroutes + 1, sizeof(*m_requests));
	m_duration = calloc(nroutes + 1, sizeof(*m_duration));
	if (m_requests == NULL || m_duration == NULL)
		return -1;
	for (i = 0; i <= nroutes; i++) {
		const char *name = i < nroutes ? routes[i].name : "unmatched";

		for (c = 0; c < 4; c++) {
			snprintf(labels, sizeof(labels),
			    "route=\"%s\",code=\"%s\"", name,
			    status_classes[c]);
			m_requests[i][c] = metrics_counter("bulwark_http_"
							   "requests_total",
			    "HTTP requests answered by bulwark-fcgi, by route "
			    "and status class.",
			    labels);
			if (m_requests[i][c] < 0)
				return -1;
		}
		snprintf(labels, sizeof(labels), "route=\"%s\"", name);
		m_duration[i] =
		    metrics_histogram("bulwark_http_request_duration_seconds",
			"Time from accept to the last byte written, by route.",
			labels, metrics_latency_bounds,
			metrics_latency_nbounds);
		if (m_duration[i] < 0)
			return -1;
	}
	/* lib/chat/chat.c's series (requests, attempts, leases, holds, ...). */
	if (chat_metrics_register() != 0 || h_public_metrics_register() != 0 ||
	    h_webhooks_metrics_register() != 0)
		return -1;
	return 0;
}

/* Child set-up after fork(): connections are opened lazily on first use
 * too, so a dependency that is down does not stop the child. */
static int
child_init(const struct config *cfg, int child_no)
{
	g_child.cfg = cfg;
	g_child.child_no = child_no;
	g_child.db = db_new(cfg->database_url);
	g_child.rds = rds_new(cfg->redis_url);
	if (g_child.db == NULL || g_child.rds == NULL)
		return -1;
	db_set_statement_timeout(g_child.db, cfg->db_statement_timeout_ms);
	(void)db_connect(g_child.db);
	(void)rds_connect(g_child.rds);
	return 0;
}

static void
child_fini(void)
{
	db_free(g_child.db);
	rds_free(g_child.rds);
	g_child.db = NULL;
	g_child.rds = NULL;
}

/*
 * Authenticates r per its route. Returns 1 when the handler may run, else
 * 0 with the error already set.
 */
static int
authenticate(struct req *r)
{
	const char *tok;
	size_t	    len;
	enum bw_err er;

	if (r->route->auth == RA_NONE)
		return 1;
	if (r->route->auth == RA_OPTIONAL &&
	    req_param(r, "HTTP_AUTHORIZATION") == NULL)
		return 1;
	if (!req_bearer(req_param(r, "HTTP_AUTHORIZATION"), &tok, &len)) {
		resp_header(r, "WWW-Authenticate", "Bearer");
		resp_error(r, AE_UNAUTHENTICATED, "missing bearer API key",
		    NULL);
		return 0;
	}
	er = auth_key_verify(r->ch->db, tok, len, &r->who);
	if (er == BW_EAUTH) {
		resp_header(r, "WWW-Authenticate",
		    "Bearer error=\"invalid_token\"");
		resp_error(r, AE_UNAUTHENTICATED,
		    "the API key is invalid or revoked", NULL);
		return 0;
	}
	if (er != BW_OK && r->route->auth == RA_OPTIONAL)
		return 1; /* unchecked: the request goes on as public */
	if (er != BW_OK) {
		resp_header(r, "Retry-After", "1");
		resp_error(r, AE_DEPENDENCY_UNAVAILABLE, NULL, NULL);
		return 0;
	}
	r->authed = 1;
	log_ctx_set(LC_ORG_ID, r->who.org_id);
	if (r->route->auth == RA_OPTIONAL)
		return 1;
	if (r->who.role < r->route->min_role) {
		resp_error(r, AE_FORBIDDEN, "this route needs a higher role",
		    NULL);
		return 0;
	}
	return 1;
}

/* Reads the body within the route's limit. 1 to go on, else 0. */
static int
read_body(struct req *r)
{
	enum bw_err er;

	er = req_read_body(r, r->route->max_body);
	if (er == BW_OK)
		return 1;
	if (er == BW_ETOOBIG)
		resp_error(r, AE_PAYLOAD_TOO_LARGE,
		    "the request body is "
		    "larger than this route accepts",
		    NULL);
	else
		resp_error(r, AE_VALIDATION_FAILED,
		    "the request body could "
		    "not be read",
		    NULL);
	return 0;
}

/*
 * For raw-body routes: refuses a declared length over the route's limit
 * before anything is read. 1 to go on, else 0 with the error set.
 */
static int
body_fits(struct req *r)
{
	uint64_t n;

	if (req_content_length(r, &n) != BW_OK) {
		resp_error(r, AE_VALIDATION_FAILED, "bad Content-Length", NULL);
		return 0;
	}
	if (n > r->route->max_body) {
		resp_error(r, AE_PAYLOAD_TOO_LARGE,
		    "the request body is "
		    "larger than this route accepts",
		    NULL);
		return 0;
	}
	return 1;
}

/*
 * Routes, authenticates, limits, reads the body, takes the Idempotency-Key,
 * validates the body against the route's schema and runs the handler;
 * answers in every case. The schema is checked after the key is taken so
 * that a refused body is stored and replayed like any other 4xx.
 */
static void
dispatch(struct req *r)
{
	enum route_result rr;
	char		  allow[64];

	rr = route_match(routes, nroutes, r->method, r->path, r, &r->route,
	    allow, sizeof(allow));
	if (rr == RR_NOT_FOUND) {
		resp_error(r, AE_NOT_FOUND, "no such route", NULL);
		return;
	}
	if (rr == RR_METHOD) {
		resp_header(r, "Allow", allow);
		resp_error(r, AE_METHOD_NOT_ALLOWED, NULL, NULL);
		return;
	}
	if (!authenticate(r)) {
		/* 401/403 are not counted, but every answer of a limited
		 * route carries the X-RateLimit headers (CONTRACT.md). */
		mw_rate_peek(r);
		return;
	}
	if (!mw_rate_check(r))
		return;
	if (r->route->flags & ROUTE_RAW_BODY) {
		/* The handler streams the body itself (and, when the route is
		 * idempotent, calls mw_idem_begin() with what it hashed). */
		if (!body_fits(r))
			return;
		r->route->fn(r);
		mw_idem_end(r);
		return;
	}
	if (!read_body(r))
		return;
	if (r->route->flags & ROUTE_IDEMPOTENT) {
		uint8_t sha[SEC_SHA256_LEN];

		if (sec_sha256(buf_cstr(&r->body), r->body.len, sha) != BW_OK) {
			resp_error(r, AE_INTERNAL, NULL, NULL);
			return;
		}
		if (!mw_idem_begin(r, sha))
			return;
	}
	if (mw_input(r))
		r->route->fn(r);
	mw_idem_end(r);
}

#define BW_VERIFY_PREFIX "/api/v1/public/verify/"

/* One access line and the request metrics. */
static void
account(struct req *r)
{
	struct json_object *f;
	int64_t		    us = clock_mono_us() - r->start_us;
	size_t		    ri;
	int		    cls = r->status / 100 - 2;
	char		    ms[32];

	ri = r->route != NULL ? (size_t)(r->route - routes) : nroutes;
	if (cls < 0 || cls > 3)
		cls = 3;
	metrics_inc(m_requests[ri][cls]);
	metrics_observe(m_duration[ri], (double)us / 1e6);

	snprintf(ms, sizeof(ms), "%.3f", (double)us / 1000.0);
	f = json_object_new_object();
	json_object_object_add(f, "method", json_object_new_string(r->method));
	/* A public verification path holds a bearer token: never logged. */
	json_object_object_add(f, "path",
	    json_object_new_string(strncmp(r->path, BW_VERIFY_PREFIX,
				       strlen(BW_VERIFY_PREFIX)) == 0
		    ? BW_VERIFY_PREFIX "[redacted]"
		    : r->path));
	json_object_object_add(f, "route",
	    json_object_new_string(
		r->route != NULL ? r->route->name : "unmatched"));
	json_object_object_add(f, "status", json_object_new_int(r->status));
	json_object_object_add(f, "duration_ms",
	    json_object_new_double_s((double)us / 1000.0, ms));
	json_object_object_add(f, "bytes",
	    json_object_new_int64((int64_t)r->out.len));
	json_object_object_add(f, "client_ip",
	    json_object_new_string(r->client_ip));
	if (r->err_code != NULL)
		json_object_object_add(f, "error_code",
		    json_object_new_string(r->err_code));
	if (r->authed)
		json_object_object_add(f, "key_prefix",
		    json_object_new_string(r->who.key_prefix));
	log_json(r->status >= 500 ? LL_WARN : LL_INFO, "request", f);
}

/*
 * 1 when the FastCGI peer already closed the connection: nginx closes it
 * when its client aborts, and a request that waited in the listen queue
 * behind busy children may be long abandoned by the time a child takes
 * it. Doing its work (a paid LLM call, say) would be waste, and under
 * overload it is what keeps the queue from draining.
 */
static int
peer_gone(const FCGX_Request *fr)
{
	struct pollfd pfd;

	pfd.fd = fr->ipcFd;
	pfd.events = POLLRDHUP;
	pfd.revents = 0;
	if (pfd.fd < 0 || poll(&pfd, 1, 0) != 1)
		return 0;
	return (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

static void
child_serve(FCGX_Request *fr)
{
	struct req r;

	req_init(&r, fr, &g_child);
	log_ctx_set(LC_REQUEST_ID, r.request_id);
	log_ctx_set(LC_CORRELATION_ID, r.correlation_id);
	if (peer_gone(fr)) {
		/* nginx's code for "client closed the request"; nothing is
		 * written, nothing is done. */
		r.status = 499;
		r.err_code = "CLIENT_CLOSED";
		account(&r);
		log_ctx_clear();
		req_free(&r);
		return;
	}
	dispatch(&r);
	resp_send(&r);
	account(&r);
	log_ctx_clear();
	req_free(&r);
}

static void
reloaded(const struct config *cfg)
{
	log_init("bulwark-fcgi", log_level_parse(cfg->log_level));
}

static void
usage(void)
{
	fprintf(stderr,
	    "usage: bulwark-fcgi [-c CONFIG] [--check-config] [--routes]\n");
}

/*
 * Opens the FastCGI socket: removes a stale socket file first, then sets
 * the configured mode. Returns the fd or -1.
 */
static int
open_socket(const struct config *cfg)
{
	int fd;

	if (cfg->fcgi_socket[0] == '/')
		(void)unlink(cfg->fcgi_socket);
	fd = FCGX_OpenSocket(cfg->fcgi_socket, cfg->fcgi_backlog);
	if (fd < 0) {
		log_kv(LL_ERROR, "cannot open the FastCGI socket", "socket",
		    cfg->fcgi_socket, "error", strerror(errno), NULL);
		return -1;
	}
	if (cfg->fcgi_socket[0] == '/' &&
	    chmod(cfg->fcgi_socket, (mode_t)cfg->fcgi_socket_mode) != 0) {
		log_kv(LL_ERROR, "cannot chmod the FastCGI socket", "socket",
		    cfg->fcgi_socket, "error", strerror(errno), NULL);
		return -1;
	}
	return fd;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = { { "config", required_argument,
						      NULL, 'c' },
		{ "check-config", no_argument, NULL, 'C' },
		{ "routes", no_argument, NULL, 'R' },
		{ "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 } };
	static const struct master_hooks hooks = { child_init, child_serve,
		child_fini, reloaded };
	struct config			 cfg;
	const char			*path = getenv("BULWARK_CONFIG");
	char				 err[512];
	int				 ch, check = 0, fd, rc;

	while ((ch = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 'C':
			check = 1;
			break;
		case 'R':
			/* The route table, one JSON line per row (docs/api.md
			 * "Roles"); needs no config. */
			return route_dump(routes, nroutes, stdout) == 0 ? 0 : 1;
		default:
			usage();
			return ch == 'h' ? 0 : 2;
		}
	}
	log_init("bulwark-fcgi", LL_INFO);
	if (config_load(&cfg, path, err, sizeof(err)) != BW_OK) {
		fprintf(stderr, "bulwark-fcgi: %s\n", err);
		log_kv(LL_ERROR, "invalid configuration", "error", err, NULL);
		return 1;
	}
	if (check) {
		config_dump(&cfg, STDOUT_FILENO);
		config_free(&cfg);
		return 0;
	}
	log_init("bulwark-fcgi", log_level_parse(cfg.log_level));
	if (register_metrics() != 0) {
		log_kv(LL_ERROR, "cannot set up shared metrics", NULL);
		config_free(&cfg);
		return 1;
	}
	fd = open_socket(&cfg);
	if (fd < 0) {
		config_free(&cfg);
		return 1;
	}
	rc = master_run(fd, &cfg, path, &hooks);
	config_free(&cfg);
	return rc;
}
