/* SPDX-License-Identifier: MIT */
/*
 * bulwark-fcgi: loads and validates the config, registers the shared
 * metrics, opens the FastCGI socket of each pool (fcgi/pool.h) and hands
 * over to the prefork master.
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
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "chat/block.h"
#include "chat/budget.h"
#include "chat/chat.h"
#include "core/clock.h"
#include "core/config.h"
#include "ctx.h"
#include "errspool.h"
#include "handlers.h"
#include "core/log.h"
#include "master.h"
#include "core/metrics.h"
#include "mw_auth.h"
#include "mw_idem.h"
#include "mw_input.h"
#include "mw_rate.h"
#include "mw_session.h"
#include "platform/auth.h"
#include "platform/pcache.h"
#include "platform/ratelimit.h"
#include "pool.h"
#include "resp.h"
#include "route.h"
#include "core/sec.h"

#ifndef BW_VERSION
#define BW_VERSION "unknown" /* Makefile.am passes PACKAGE_VERSION */
#endif

static struct child g_child;
/* Metric ids: per route (and one "unmatched" row) per status class. */
static int (*m_requests)[4];
static int *m_duration;
/* Per pool: requests for a route of another pool (served all the same),
 * and requests answered 503 because they outwaited the queue deadline. */
static int		 m_foreign[POOL_MAX];
static int		 m_expired[POOL_MAX];
static const char *const pool_names[POOL_MAX] = { "api", "chat" };

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
	for (i = 0; i < POOL_MAX; i++) {
		snprintf(labels, sizeof(labels), "pool=\"%s\"", pool_names[i]);
		m_foreign[i] = metrics_counter("bulwark_fcgi_foreign_route_"
					       "requests_total",
		    "Requests a pool served for a route of another pool (nginx "
		    "sends them to the wrong socket).",
		    labels);
		m_expired[i] = metrics_counter("bulwark_fcgi_queue_expired_"
					       "total",
		    "Requests answered 503 CAPACITY_EXHAUSTED at once: they "
		    "waited longer than the pool's queue deadline.",
		    labels);
		if (m_foreign[i] < 0 || m_expired[i] < 0)
			return -1;
	}
	/* lib/chat/chat.c's series (requests, attempts, leases, holds, ...). */
	if (chat_metrics_register() != 0 || h_public_metrics_register() != 0 ||
	    pcache_metrics_register() != 0 ||
	    h_webhooks_metrics_register() != 0 ||
	    h_errors_metrics_register() != 0)
		return -1;
	return 0;
}

/*
 * Prepares the statements of the pool's hot path on a new session: a
 * fresh PostgreSQL process pays its catalog look-ups at a statement's
 * first parse (about 15 ms of CPU for the chat hold), which 32 cold chat
 * children would otherwise pay at once in a burst's first second,
 * starving the api pool's queries (docs/chat-cost.md). Runs from
 * db_connect() on every new session: the child's first, and each one
 * after a restart or a failover broke the last. Failure is not fatal:
 * statements are prepared on first use too.
 */
static enum bw_err
child_warm_session(struct db *db, void *arg)
{
	int	    pool = *(const int *)arg;
	enum bw_err er;

	er = auth_warm(db);
	if (er == BW_OK)
		er = rl_warm(db);
	if (er == BW_OK && pool == POOL_CHAT)
		er = budget_warm(db);
	if (er == BW_OK && pool == POOL_CHAT)
		er = block_warm(db);
	if (er != BW_OK)
		log_kv(LL_WARN, "child warm-up: statements not prepared",
		    "error", bw_strerror(er), NULL);
	return BW_OK; /* the session is usable all the same */
}

/* The child connects at its start, warm (child_warm_session()). */
static void
child_warm(void)
{
	db_set_on_connect(g_child.db, child_warm_session, &g_child.pool);
	(void)db_connect(g_child.db);
}

/* Child set-up after fork(): connections are opened lazily on first use
 * too, so a dependency that is down does not stop the child. */
static int
child_init(const struct config *cfg, int pool, int child_no)
{
	struct pool p[POOL_MAX];

	(void)pool_list(cfg, p);
	g_child.cfg = cfg;
	g_child.child_no = child_no;
	g_child.pool = pool;
	g_child.queue_deadline_ms = p[pool].queue_deadline_ms;
	g_child.db = db_new(cfg->database_url);
	g_child.rds = rds_new_cfg(cfg);
	if (g_child.db == NULL || g_child.rds == NULL)
		return -1;
	db_set_statement_timeout(g_child.db, cfg->db_statement_timeout_ms);
	/* The chat pool's statements are key look-ups: planned once. */
	if (pool == POOL_CHAT)
		db_set_generic_plans(g_child.db);
	/* Opened on the first scrape only (lazily, by db_exec). */
	g_child.mondb = g_child.db;
	if (cfg->monitor_database_url != NULL &&
	    cfg->monitor_database_url[0] != '\0') {
		g_child.mondb = db_new(cfg->monitor_database_url);
		if (g_child.mondb == NULL)
			return -1;
		db_set_statement_timeout(g_child.mondb,
		    cfg->db_statement_timeout_ms);
	}
	/* The chat pool's budget blocks (lib/chat/block.h). */
	if (pool == POOL_CHAT && cfg->chat_block_calls > 0) {
		static struct block_set blocks;
		char			host[64];

		if (gethostname(host, sizeof(host)) != 0)
			snprintf(host, sizeof(host), "?");
		host[sizeof(host) - 1] = '\0';
		memset(&blocks, 0, sizeof(blocks));
		snprintf(g_child.block_owner, sizeof(g_child.block_owner),
		    "%s %ld", host, (long)getpid());
		blocks.cfg.calls = cfg->chat_block_calls;
		blocks.cfg.pct = cfg->chat_block_pct;
		blocks.cfg.idle_ms = cfg->chat_block_idle_ms;
		blocks.cfg.rec_batch = cfg->chat_block_record_batch;
		blocks.cfg.rec_ms = cfg->chat_block_record_ms;
		blocks.cfg.ttl_s = cfg->chat_hold_ttl_s;
		blocks.cfg.owner = g_child.block_owner;
		g_child.blocks = &blocks;
	}
	child_warm();
	(void)rds_connect(g_child.rds);
	/* Error tracking: this child's note, and the crash the master just
	 * spooled when this child replaces a crashed one (fcgi/errspool.h). */
	errspool_child_start();
	h_errors_drain_crashes(&g_child);
	return 0;
}

/*
 * Before each wait: a database session the server ended while the child
 * was idle (a restart, a failover, pg_terminate_backend()) is replaced
 * now, warm (child_warm_session()), so that a burst after it does not
 * meet every child connecting and preparing at once; a failed attempt is
 * tried again after 250 ms doubling to 8 s. Then the budget blocks idle
 * long enough go back. Returns how long the wait may last.
 */
static int
child_idle(void)
{
	int64_t now = clock_mono_ms();
	bool	revived = false;
	int	t = -1, b;

	if (now >= g_child.db_retry_ms) {
		if (db_idle_revive(g_child.db, &revived) == BW_OK) {
			g_child.db_fails = 0;
			g_child.db_retry_ms = 0;
		} else {
			g_child.db_retry_ms = now +
			    (250 << (g_child.db_fails < 5 ? g_child.db_fails
							  : 5));
			g_child.db_fails++;
		}
		if (revived)
			log_kv(LL_WARN,
			    "database session ended while idle: "
			    "connected again",
			    NULL);
	}
	if (g_child.db_retry_ms > 0)
		t = (int)(g_child.db_retry_ms - now > 0
			? g_child.db_retry_ms - now
			: 1);
	if (g_child.blocks != NULL) {
		b = block_return_idle(g_child.db, g_child.blocks, false);
		if (b >= 0 && (t < 0 || b < t))
			t = b;
	}
	return t;
}

/* The idle database session's socket: its end wakes the child. */
static int
child_watch(void)
{
	return db_idle_fd(g_child.db);
}

static void
child_fini(void)
{
	/* What this child reserved goes back before it exits. */
	if (g_child.blocks != NULL)
		(void)block_return_idle(g_child.db, g_child.blocks, true);
	g_child.blocks = NULL;
	if (g_child.mondb != g_child.db)
		db_free(g_child.mondb);
	db_free(g_child.db);
	rds_free(g_child.rds);
	g_child.mondb = NULL;
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
	switch (mw_session(r)) { /* the cookie session, fcgi/mw_session.c */
	case MWS_OK:
		return 1;
	case MWS_REFUSED:
		return 0;
	case MWS_NONE:
		break;
	}
	if (r->route->auth == RA_OPTIONAL &&
	    req_param(r, "HTTP_AUTHORIZATION") == NULL)
		return 1;
	if (!req_bearer(req_param(r, "HTTP_AUTHORIZATION"), &tok, &len)) {
		resp_header(r, "WWW-Authenticate", "Bearer");
		resp_error(r, AE_UNAUTHENTICATED, "missing bearer API key",
		    NULL);
		return 0;
	}
	er = mw_auth_verify(r, tok, len); /* per-child cache, fcgi/mw_auth.c */
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
	/* Served all the same: a route on the wrong socket is nginx's
	 * config out of step with ours, which must not fail requests. */
	if (pool_of_route(r->ch->cfg, r->route->name) != r->ch->pool)
		metrics_inc(m_foreign[r->ch->pool]);
	if (!authenticate(r)) {
		/* 401/403 are not counted, but every answer of a limited
		 * route carries the X-RateLimit headers (CONTRACT.md). */
		mw_rate_peek(r);
		return;
	}
	/* The principal's org is the tenant of every statement from here
	 * (row-level security; lib/core/db.h, db_set_org()). */
	if (r->authed && db_set_org(r->ch->db, r->who.org_id) != BW_OK) {
		resp_error(r, AE_INTERNAL, NULL, NULL);
		return;
	}
	if (r->route->flags & ROUTE_RATE_RIDES)
		r->rate_pending = 1; /* the handler's round trip carries it */
	else if (!mw_rate_check(r))
		return;
	if (r->route->flags & ROUTE_RAW_BODY) {
		/* The handler streams the body itself (and, when the route is
		 * idempotent, calls mw_idem_begin() with what it hashed). */
		if (!body_fits(r))
			return;
		r->route->fn(r);
		(void)mw_rate_pending(r);
		mw_idem_end(r);
		return;
	}
	if (!read_body(r)) {
		(void)mw_rate_pending(r);
		return;
	}
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
	/* Not reached, or answered without riding: the limiter now; its
	 * refusal replaces the answer. */
	(void)mw_rate_pending(r);
	mw_idem_end(r);
}

/*
 * A success is not answered while a commit of this request, or one it
 * found and answers from (db_need_sync(): a redelivery), is durable on the
 * primary only (PostgreSQL canceled its wait for the synchronous standby,
 * core/db.h db_unreplicated(); or the sync point could not run): a
 * failover could lose what the client was told. A retryable 503 instead;
 * the retry settles it through the Idempotency-Key (mw_idem.c) or the
 * natural key of the write.
 */
static void
durable_or_503(struct req *r)
{
	struct buf  keep;
	const char *p, *nl;
	size_t	    n;
	enum bw_err er;

	if (r->status >= 400)
		return;
	/* A success that rests on others' commits (db_need_sync()) waits
	 * until the standby has them too. */
	er = db_sync_point(r->ch->db);
	if (db_unreplicated(r->ch->db) == 0 && er == BW_OK)
		return;
	/* Only the rate-limit headers describe this answer still. */
	buf_init(&keep, r->hdrs.max);
	for (p = buf_cstr(&r->hdrs); *p != '\0'; p += n) {
		nl = strstr(p, "\r\n");
		n = nl != NULL ? (size_t)(nl - p) + 2 : strlen(p);
		if (strncasecmp(p, "X-RateLimit-", 12) == 0)
			(void)buf_add(&keep, p, n);
	}
	buf_reset(&r->hdrs);
	(void)buf_add(&r->hdrs, buf_cstr(&keep), keep.len);
	buf_free(&keep);
	log_kv(LL_ERROR, "answer withheld: commit not replicated", "route",
	    r->route != NULL ? r->route->name : NULL, NULL);
	resp_header(r, "Retry-After", "1");
	resp_error(r, AE_DEPENDENCY_UNAVAILABLE, NULL, NULL);
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
	if (r->authed && r->who.via == AUTH_VIA_SESSION)
		json_object_object_add(f, "user_id",
		    json_object_new_string(r->who.user_id));
	else if (r->authed)
		json_object_object_add(f, "key_prefix",
		    json_object_new_string(r->who.key_prefix));
	if (r->log_extra != NULL) {
		struct json_object_iterator it, end;

		it = json_object_iter_begin(r->log_extra);
		end = json_object_iter_end(r->log_extra);
		for (; !json_object_iter_equal(&it, &end);
		     json_object_iter_next(&it))
			json_object_object_add(f,
			    json_object_iter_peek_name(&it),
			    json_object_get(json_object_iter_peek_value(&it)));
	}
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
	/* No tenant until authentication names one (RLS, lib/core/db.h). */
	db_clear_org(g_child.db);
	db_unreplicated_clear(g_child.db);
	log_ctx_set(LC_REQUEST_ID, r.request_id);
	log_ctx_set(LC_CORRELATION_ID, r.correlation_id);
	errspool_note(r.request_id, r.correlation_id);
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
	if (g_child.queue_deadline_ms > 0 &&
	    r.queued_ms > g_child.queue_deadline_ms) {
		/* The client waited its share already: no work, no slot. */
		metrics_inc(m_expired[g_child.pool]);
		resp_header(&r, "Retry-After", POOL_RETRY_AFTER);
		resp_error(&r, AE_CAPACITY_EXHAUSTED,
		    "the service is at capacity; the request waited too long "
		    "in the queue",
		    NULL);
	} else {
		dispatch(&r);
		durable_or_503(&r);
	}
	resp_send(&r);
	account(&r);
	/* After the answer: every 5xx and any spooled crash go to their error
	 * group (lib/errtrack/); failures are logged and counted only. */
	h_errors_record_5xx(&r);
	db_clear_org(g_child.db);
	h_errors_drain_crashes(&g_child);
	errspool_note(NULL, NULL);
	log_ctx_clear();
	(void)req_stdin_end(&r);
	req_free(&r);
}

static void
reloaded(const struct config *cfg)
{
	log_init("bulwark-fcgi", log_level_parse(cfg->log_level));
}

/* The master's word on a reaped child: to the crash spool. */
static void
child_died(pid_t pid, int pool, int crashed, int sig, int core, int timed_out)
{
	errspool_died(pid, crashed, pool, sig, core, timed_out);
}

/* The usage: on stdout for --help, on stderr after a usage error. */
static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: bulwark-fcgi [-c CONFIG] [--check-config] [--routes]\n"
	    "  -c, --config FILE  the configuration file (default: "
	    "$BULWARK_CONFIG; none: the\n"
	    "                     defaults and BULWARK_* variables)\n"
	    "      --check-config validate the configuration, print it "
	    "(secrets masked) and\n"
	    "                     the pools, then exit\n"
	    "      --routes       print the route table (one JSON line per "
	    "route), then exit\n"
	    "  -h, --help         print this help and exit\n"
	    "      --version      print the version and exit\n"
	    "See bulwark-fcgi(8) and bulwark.conf(5).\n");
}

/*
 * Opens a pool's FastCGI socket: removes a stale socket file first, then
 * sets fcgi_socket_mode. Returns the fd or -1.
 */
static int
open_socket(const struct config *cfg, const struct pool *p)
{
	int fd;

	if (p->socket[0] == '/')
		(void)unlink(p->socket);
	fd = FCGX_OpenSocket(p->socket, p->backlog);
	if (fd < 0) {
		log_kv(LL_ERROR, "cannot open the FastCGI socket", "pool",
		    p->name, "socket", p->socket, "error", strerror(errno),
		    NULL);
		return -1;
	}
	if (p->socket[0] == '/' &&
	    chmod(p->socket, (mode_t)cfg->fcgi_socket_mode) != 0) {
		log_kv(LL_ERROR, "cannot chmod the FastCGI socket", "pool",
		    p->name, "socket", p->socket, "error", strerror(errno),
		    NULL);
		close(fd);
		return -1;
	}
	return fd;
}

/* Checks fcgi_chat_routes against the route table; 0 or -1 (said). */
static int
check_routes(const struct config *cfg)
{
	const char *names[64];
	size_t	    i, n = 0;
	char	    bad[64];

	for (i = 0; i < nroutes && n < sizeof(names) / sizeof(names[0]); i++)
		names[n++] = routes[i].name;
	if (pool_check_routes(cfg, names, n, bad, sizeof(bad)) == 0)
		return 0;
	fprintf(stderr,
	    "bulwark-fcgi: config: fcgi_chat_routes: no route named "
	    "\"%s\" (bulwark-fcgi --routes)\n",
	    bad);
	log_kv(LL_ERROR, "invalid configuration", "error",
	    "fcgi_chat_routes names an unknown route", "route", bad, NULL);
	return -1;
}

/* --routes: the route table with each route's pool under cfg. */
static int
print_routes(const struct config *cfg)
{
	const char *pools[64];
	size_t	    i;

	if (nroutes > sizeof(pools) / sizeof(pools[0]))
		return 1;
	for (i = 0; i < nroutes; i++)
		pools[i] = pool_names[pool_of_route(cfg, routes[i].name)];
	return route_dump(routes, nroutes, pools, stdout) == 0 ? 0 : 1;
}

/* --check-config's tail: one comment line per pool. */
static void
print_pools(const struct config *cfg)
{
	struct pool p[POOL_MAX];
	int	    i, n;

	n = pool_list(cfg, p);
	for (i = 0; i < n; i++)
		printf("# pool %s: socket=%s backlog=%d children=%d "
		       "max_requests=%d request_timeout_ms=%d "
		       "queue_deadline_ms=%d nice=%d routes=%s\n",
		    p[i].name, p[i].socket, p[i].backlog, p[i].children,
		    p[i].max_requests, p[i].request_timeout_ms,
		    p[i].queue_deadline_ms, p[i].nice,
		    i == POOL_CHAT ? cfg->fcgi_chat_routes
				   : "(every route of no other pool)");
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = { { "config", required_argument,
						      NULL, 'c' },
		{ "check-config", no_argument, NULL, 'C' },
		{ "routes", no_argument, NULL, 'R' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' }, { NULL, 0, NULL, 0 } };
	static const struct master_hooks hooks = { child_init, child_serve,
		child_fini, child_idle, child_watch, reloaded, child_died };
	struct config			 cfg;
	struct pool			 pools[POOL_MAX];
	const char			*path = getenv("BULWARK_CONFIG");
	char				 err[512];
	int fds[POOL_MAX], ch, check = 0, list = 0, npools, i, rc;

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
			 * "Roles") with each route's pool under the config
			 * (the defaults when there is none). */
			list = 1;
			break;
		case 'h':
			usage(stdout);
			return fflush(stdout) == 0 ? 0 : 1;
		case 'V':
			printf("bulwark-fcgi %s\n", BW_VERSION);
			return fflush(stdout) == 0 ? 0 : 1;
		default: /* getopt_long() said what is wrong */
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "bulwark-fcgi: unexpected argument '%s'\n",
		    argv[optind]);
		usage(stderr);
		return 2;
	}
	log_init("bulwark-fcgi", LL_INFO);
	if (config_load(&cfg, path, err, sizeof(err)) != BW_OK) {
		fprintf(stderr, "bulwark-fcgi: %s\n", err);
		log_kv(LL_ERROR, "invalid configuration", "error", err, NULL);
		return 1;
	}
	if (list || check_routes(&cfg) != 0) {
		rc = list ? print_routes(&cfg) : 1;
		config_free(&cfg);
		return rc;
	}
	if (check) {
		config_dump(&cfg, STDOUT_FILENO);
		fflush(stdout);
		print_pools(&cfg);
		config_free(&cfg);
		return 0;
	}
	log_init("bulwark-fcgi", log_level_parse(cfg.log_level));
	if (register_metrics() != 0 || errspool_init() != 0) {
		log_kv(LL_ERROR, "cannot set up shared metrics", NULL);
		config_free(&cfg);
		return 1;
	}
	npools = pool_list(&cfg, pools);
	for (i = 0; i < npools; i++) {
		fds[i] = open_socket(&cfg, &pools[i]);
		if (fds[i] < 0) {
			while (i-- > 0)
				close(fds[i]);
			config_free(&cfg);
			return 1;
		}
	}
	rc = master_run(fds, &cfg, path, &hooks);
	config_free(&cfg);
	return rc;
}
