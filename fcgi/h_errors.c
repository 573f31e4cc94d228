/* SPDX-License-Identifier: MIT */
/*
 * Errors (docs/api/errors.md), the HTTP side: POST /api/v1/client-errors
 * (browser reports, key optional), GET /api/v1/admin/errors[/{id}] (the
 * org's owner), and the recording of bulwark-fcgi's own errors: each 5xx
 * answer and each crash the master spooled (fcgi/errspool.h). Recording
 * runs after the answer went out; its failures are logged and counted,
 * never answered. lib/errtrack/ does the rest.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "core/db.h"
#include "core/jv.h"
#include "core/log.h"
#include "core/metrics.h"
#include "ctx.h"
#include "errspool.h"
#include "errtrack/errtrack.h"
#include "handlers.h"
#include "pool.h"
#include "resp.h"
#include "route.h"

/* bulwark_errtrack_record_failures_total{kind="http_5xx"|"crash"}. */
static int m_rec_fail[2] = { -1, -1 };

int
h_errors_metrics_register(void)
{
	m_rec_fail[0] = metrics_counter("bulwark_errtrack_record_failures_"
					"total",
	    "Errors bulwark-fcgi could not record into their group (the "
	    "database failed); logged, never answered.",
	    "kind=\"http_5xx\"");
	m_rec_fail[1] = metrics_counter("bulwark_errtrack_record_failures_"
					"total",
	    "Errors bulwark-fcgi could not record into their group (the "
	    "database failed); logged, never answered.",
	    "kind=\"crash\"");
	return m_rec_fail[0] < 0 || m_rec_fail[1] < 0 ? -1 : 0;
}

static bool
h_errors_filing(const struct child *ch)
{
	return ch->cfg->tracker_base_url != NULL &&
	    ch->cfg->tracker_base_url[0] != '\0';
}

/* Records one event; a failure is logged and counted (m = 0 or 1). */
static void
h_errors_record(struct child *ch, const struct errtrack_event *ev, int m)
{
	struct errtrack_result res;
	enum bw_err	       er;

	er = errtrack_record(ch->db, ev, h_errors_filing(ch), &res);
	if (er == BW_OK)
		return;
	metrics_inc(m_rec_fail[m]);
	log_kv(LL_WARN, "error tracking: cannot record", "kind",
	    errtrack_kind_name(ev->kind), "error", bw_strerror(er), NULL);
}

void
h_errors_record_5xx(struct req *r)
{
	struct errtrack_event ev;
	char		      site[96], msg[256];

	if (r->status < 500 || r->status > 599)
		return;
	snprintf(site, sizeof(site), "route:%s",
	    r->route != NULL ? r->route->name : "unmatched");
	snprintf(msg, sizeof(msg), "HTTP %d %s on %s %s", r->status,
	    r->err_code != NULL ? r->err_code : "(no code)",
	    r->method != NULL ? r->method : "?",
	    r->route != NULL ? r->route->pattern : "(no route)");
	memset(&ev, 0, sizeof(ev));
	ev.kind = EK_HTTP_5XX;
	ev.org_id =
	    r->authed && r->who.org_id[0] != '\0' ? r->who.org_id : NULL;
	ev.code = r->err_code != NULL ? r->err_code : "HTTP_5XX";
	ev.site = site;
	ev.message = msg;
	ev.request_id = r->request_id;
	ev.correlation_id = r->correlation_id;
	h_errors_record(r->ch, &ev, 0);
}

void
h_errors_drain_crashes(struct child *ch)
{
	static const char *const pools[POOL_MAX] = { "api", "chat" };
	struct errspool_rec	 rec;
	struct errtrack_event	 ev;
	char			 code[32], site[64], msg[256];
	const char		*ab;
	int			 n = 0;

	/* A bounded batch: the request loop must go on. */
	while (n++ < 16 && errspool_take(&rec)) {
		ab = sigabbrev_np(rec.sig);
		if (rec.timed_out)
			snprintf(code, sizeof(code), "REQUEST_TIMEOUT");
		else if (ab != NULL)
			snprintf(code, sizeof(code), "SIG%s", ab);
		else
			snprintf(code, sizeof(code), "SIGNAL_%d", rec.sig);
		snprintf(site, sizeof(site), "fcgi:pool %s",
		    rec.pool >= 0 && rec.pool < POOL_MAX ? pools[rec.pool]
							 : "?");
		snprintf(msg, sizeof(msg),
		    "bulwark-fcgi child %s (signal %s, core dumped: %s)%s",
		    rec.timed_out ? "killed past its request timeout"
				  : "died on a signal",
		    code, rec.core ? "yes" : "no",
		    rec.request_id[0] != '\0' ? " while serving a request"
					      : " while idle");
		memset(&ev, 0, sizeof(ev));
		ev.kind = EK_CRASH;
		ev.code = code;
		ev.site = site;
		ev.message = msg;
		ev.request_id =
		    rec.request_id[0] != '\0' ? rec.request_id : NULL;
		ev.correlation_id =
		    rec.correlation_id[0] != '\0' ? rec.correlation_id : NULL;
		log_kv(LL_WARN, "error tracking: child crash recorded", "code",
		    code, "crashed_request_id", ev.request_id, NULL);
		h_errors_record(ch, &ev, 1);
	}
}

/*
 * The code of a browser error: the leading "TypeError" of "TypeError:
 * x is undefined" (an identifier before ':'), else CLIENT_ERROR.
 */
static void
h_errors_client_code(const char *msg, char *code, size_t len)
{
	size_t i = 0;

	while (msg[i] != '\0' && i + 1 < len &&
	    (isalnum((unsigned char)msg[i]) || msg[i] == '_'))
		i++;
	if (i > 0 && msg[i] == ':' && isalpha((unsigned char)msg[0])) {
		memcpy(code, msg, i);
		code[i] = '\0';
		return;
	}
	snprintf(code, len, "CLIENT_ERROR");
}

/* s up to its query or fragment: a URL's parameters may carry PII. */
static int
h_errors_nq(const char *s)
{
	return (int)strcspn(s != NULL ? s : "", "?#");
}

/* POST /api/v1/client-errors: 202 {"accepted":true}. */
void
h_errors_client(struct req *r)
{
	struct errtrack_event  ev;
	struct errtrack_result res;
	struct buf	       msg;
	const char *m = jv_str(r->in, "message", ""), *src, *url, *stack, *ua;
	char	    code[ERRTRACK_CODE_MAX + 1], site[ERRTRACK_SITE_MAX + 1];
	int64_t	    line;
	struct json_object *o;
	enum bw_err	    er;

	src = jv_str(r->in, "source", NULL);
	url = jv_str(r->in, "url", NULL);
	stack = jv_str(r->in, "stack", NULL);
	ua = jv_str(r->in, "user_agent", NULL);
	line = jv_int(r->in, "line", -1);
	h_errors_client_code(m, code, sizeof(code));
	if (src != NULL && line >= 0)
		snprintf(site, sizeof(site), "client:%.*s:%lld",
		    h_errors_nq(src) > 150 ? 150 : h_errors_nq(src), src,
		    (long long)line);
	else if (src != NULL)
		snprintf(site, sizeof(site), "client:%.*s",
		    h_errors_nq(src) > 150 ? 150 : h_errors_nq(src), src);
	else
		snprintf(site, sizeof(site), "client:unknown");
	/* The sample: message, page (no query), agent and the stack's top. */
	buf_init(&msg, ERRTRACK_MSG_MAX);
	if (url != NULL)
		(void)buf_printf(&msg, "page: %.*s\n", h_errors_nq(url), url);
	if (ua != NULL)
		(void)buf_printf(&msg, "user agent: %.200s\n", ua);
	if (stack != NULL)
		(void)buf_printf(&msg, "stack:\n%.1000s", stack);
	memset(&ev, 0, sizeof(ev));
	ev.kind = EK_CLIENT;
	ev.org_id =
	    r->authed && r->who.org_id[0] != '\0' ? r->who.org_id : NULL;
	ev.code = code;
	ev.site = site;
	ev.message = m;
	ev.detail = buf_cstr(&msg);
	ev.request_id = r->request_id;
	ev.correlation_id = r->correlation_id;
	er = errtrack_record(r->ch->db, &ev, h_errors_filing(r->ch), &res);
	buf_free(&msg);
	if (er != BW_OK) {
		resp_fail(r, er);
		return;
	}
	o = json_object_new_object();
	json_object_object_add(o, "accepted", json_object_new_boolean(1));
	resp_json(r, 202, o);
}

/* GET /api/v1/admin/errors?limit=N&cursor=ID: the org's groups, newest
 * last_seen first. */
void
h_errors_list(struct req *r)
{
	struct json_object *o = NULL;
	char		    cur[64];
	int		    limit;
	enum bw_err	    er;

	if (resp_page_args(r, ERRTRACK_LIST_MAX, &limit, cur, sizeof(cur)) < 0)
		return;
	er = errtrack_list_json(r->ch->db, r->who.org_id, limit,
	    cur[0] != '\0' ? cur : NULL, &o);
	if (er == BW_EINVAL) {
		resp_invalid(r, "cursor names no error group of yours.",
		    "cursor", "invalid_format");
		return;
	}
	if (er != BW_OK) {
		resp_fail(r, er);
		return;
	}
	resp_json(r, 200, o);
}

/* GET /api/v1/admin/errors/{id}: 404 for an id of another org. */
void
h_errors_get(struct req *r)
{
	struct json_object *o = NULL;
	enum bw_err	    er;

	er = errtrack_get_json(r->ch->db, r->who.org_id, r->args[0], &o);
	if (er != BW_OK) {
		resp_fail(r, er);
		return;
	}
	resp_json(r, 200, o);
}
