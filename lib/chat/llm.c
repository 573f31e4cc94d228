/* SPDX-License-Identifier: MIT */
/*
 * The LLM provider client (OpenAI chat completions) over lib/core/http.c:
 * the client's reused handle keeps connections alive across calls, the
 * caller's tick (lease renewal) runs at least every LLM_TICK_MS while the
 * provider thinks, and every attempt has a timeout and a size-capped body.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <json-c/json.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/http.h"
#include "core/limits.h"
#include "chat/llm.h"
#include "core/backoff.h"
#include "core/log.h"
#include "core/sec.h"

struct llm {
	struct http_client *http;
};

static const char *const fail_names[LF__MAX] = { "none", "http", "timeout",
	"connect", "malformed", "breaker", "aborted" };

const char *
llm_fail_name(enum llm_fail f)
{
	return (unsigned)f < LF__MAX ? fail_names[f] : "?";
}

int
llm_status_retryable(int status)
{
	return backoff_status_retryable(status);
}

int64_t
llm_backoff_ms(int n, int jitter_ms)
{
	return backoff_ms(n, LLM_BACKOFF_BASE_MS, jitter_ms);
}

/* 0..LLM_JITTER_MS ms (lib/core/backoff.c). */
STATIC int
llm_jitter_ms(void)
{
	return backoff_jitter_ms(LLM_JITTER_MS);
}

struct llm *
llm_new(void)
{
	struct llm *l;

	l = calloc(1, sizeof(*l));
	if (l == NULL)
		return NULL;
	l->http = http_client_new();
	if (l->http == NULL) {
		llm_free(l);
		return NULL;
	}
	return l;
}

void
llm_free(struct llm *l)
{
	if (l == NULL)
		return;
	http_client_free(l->http);
	free(l);
}

void
llm_result_clear(struct llm_result *r)
{
	if (r == NULL)
		return;
	free(r->reply);
	memset(r, 0, sizeof(*r));
}

/* The request body; NULL on ENOMEM. Caller frees. */
static char *
request_body(const struct llm_opts *o, const struct llm_msg *msgs, size_t n)
{
	struct json_object *root, *arr, *m;
	char		   *s;
	size_t		    i;

	root = json_object_new_object();
	arr = json_object_new_array();
	if (root == NULL || arr == NULL) {
		json_object_put(root);
		json_object_put(arr);
		return NULL;
	}
	json_object_object_add(root, "model", json_object_new_string(o->model));
	for (i = 0; i < n; i++) {
		m = json_object_new_object();
		json_object_object_add(m, "role",
		    json_object_new_string(msgs[i].role));
		json_object_object_add(m, "content",
		    json_object_new_string(msgs[i].content));
		json_object_array_add(arr, m);
	}
	json_object_object_add(root, "messages", arr);
	json_object_object_add(root, "max_tokens",
	    json_object_new_int(o->max_tokens));
	s = strdup(
	    json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN));
	json_object_put(root);
	return s;
}

/*
 * Reads a chat.completion body into res. Returns 0, or -1 when the body
 * is not one.
 */
static int
parse_reply(const char *s, size_t len, struct llm_result *res)
{
	struct json_tokener *tok;
	struct json_object  *root, *ch, *c0, *msg, *content, *u, *v;
	int		     rc = -1;

	tok = json_tokener_new_ex(16);
	if (tok == NULL)
		return -1;
	root = json_tokener_parse_ex(tok, s, (int)len);
	if (root == NULL || json_tokener_get_error(tok) != json_tokener_success)
		goto out;
	if (!json_object_object_get_ex(root, "choices", &ch) ||
	    !json_object_is_type(ch, json_type_array) ||
	    json_object_array_length(ch) < 1)
		goto out;
	c0 = json_object_array_get_idx(ch, 0);
	if (!json_object_object_get_ex(c0, "message", &msg) ||
	    !json_object_object_get_ex(msg, "content", &content) ||
	    !json_object_is_type(content, json_type_string))
		goto out;
	if (json_object_get_string_len(content) > LLM_MAX_REPLY)
		goto out;
	if (!json_object_object_get_ex(root, "usage", &u) ||
	    !json_object_is_type(u, json_type_object))
		goto out;
	if (json_object_object_get_ex(u, "prompt_tokens", &v))
		res->input_tokens = json_object_get_int64(v);
	if (json_object_object_get_ex(u, "completion_tokens", &v))
		res->output_tokens = json_object_get_int64(v);
	if (res->input_tokens < 0 || res->output_tokens < 0)
		goto out;
	if (json_object_object_get_ex(root, "model", &v) &&
	    json_object_is_type(v, json_type_string))
		snprintf(res->model, sizeof(res->model), "%s",
		    json_object_get_string(v));
	res->reply = strdup(json_object_get_string(content));
	if (res->reply != NULL)
		rc = 0;
out:
	json_object_put(root);
	json_tokener_free(tok);
	return rc;
}

/*
 * Sleeps ms, calling tick at least every LLM_TICK_MS. Returns 0, or -1
 * when tick asked to stop.
 */
static int
nap(const struct llm_opts *o, int64_t ms)
{
	int64_t		end = clock_mono_ms() + ms, left, step;
	struct timespec ts;

	for (;;) {
		left = end - clock_mono_ms();
		if (left <= 0)
			return 0;
		step = left < LLM_TICK_MS ? left : LLM_TICK_MS;
		ts.tv_sec = step / 1000;
		ts.tv_nsec = (long)(step % 1000) * 1000000L;
		while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
			;
		if (o->tick != NULL && o->tick(o->arg) != 0)
			return -1;
	}
}

/* The request headers of one call; auth holds the API key (wiped after). */
struct llm_hdrs {
	char	    auth[512];
	char	    org[512];
	char	    rid[512];
	const char *v[5];
	size_t	    n;
};

static void
headers(const struct llm_opts *o, struct llm_hdrs *h)
{
	h->n = 0;
	h->v[h->n++] = "Content-Type: application/json";
	h->v[h->n++] = "Expect:";
	if (o->api_key != NULL && o->api_key[0] != '\0' &&
	    strlen(o->api_key) < sizeof(h->auth) - 32) {
		snprintf(h->auth, sizeof(h->auth), "Authorization: Bearer %s",
		    o->api_key);
		h->v[h->n++] = h->auth;
	}
	if (o->org_id != NULL) {
		snprintf(h->org, sizeof(h->org), "X-Bulwark-Org: %s",
		    o->org_id);
		h->v[h->n++] = h->org;
	}
	if (o->request_id != NULL) {
		snprintf(h->rid, sizeof(h->rid), "X-Request-ID: %s",
		    o->request_id);
		h->v[h->n++] = h->rid;
	}
}

/*
 * One attempt of rq with timeout_ms into rs. *status gets the HTTP status
 * (0 when the transfer failed), *why the failure class, *sent whether the
 * provider may have seen the request. Returns 0 when a transfer
 * completed, else -1.
 */
static int
attempt(struct llm *l, struct http_req *rq, int64_t timeout_ms,
    struct http_resp *rs, int *status, enum llm_fail *why, int *sent)
{
	rq->timeout_ms = (long)timeout_ms;
	rq->connect_timeout_ms = (long)(timeout_ms < 3000 ? timeout_ms : 3000);
	(void)http_do(l->http, rq, rs);
	*status = 0;
	*why = LF_NONE;
	*sent = rs->sent;
	switch (rs->xerr) {
	case HX_NONE:
		*status = rs->status;
		return 0;
	case HX_TIMEOUT:
		*why = LF_TIMEOUT;
		break;
	case HX_TOOBIG:
		/* The reply passed BW_MAX_UPSTREAM_BODY. */
		*why = LF_MALFORMED;
		break;
	case HX_ABORTED:
		*why = LF_ABORTED;
		break;
	case HX_CONNECT:
	default:
		/* Not connected, or closed or reset after sending. */
		*why = LF_CONNECT;
		break;
	}
	return -1;
}

/* Asks the breaker; Redis trouble lets the call through (the semaphore
 * already needed Redis, so this is rare and short). */
static int
breaker_ok(const struct llm_opts *o, struct llm_result *res)
{
	int	       allowed = 1;
	enum brk_state st = BRK_CLOSED;

	if (o->rds == NULL || o->breaker_name == NULL)
		return 1;
	if (breaker_allow(o->rds, o->breaker_name, &o->breaker, &allowed,
		&st) != BW_OK)
		return 1;
	res->brk = st;
	return allowed;
}

static void
breaker_note(const struct llm_opts *o, struct llm_result *res, int ok)
{
	enum brk_state st = res->brk;

	if (o->rds == NULL || o->breaker_name == NULL)
		return;
	if (breaker_record(o->rds, o->breaker_name, &o->breaker, ok, &st) ==
	    BW_OK)
		res->brk = st;
}

enum bw_err
llm_chat(struct llm *l, const struct llm_opts *o, const struct llm_msg *msgs,
    size_t n, struct llm_result *res)
{
	static const char *const want[] = { "Retry-After" };
	struct llm_hdrs		 h;
	struct http_req		 rq;
	struct http_resp	 rs;
	char			*body = NULL, url[2048];
	enum llm_fail		 why = LF_NONE;
	enum bw_err		 er = BW_EUPSTREAM;
	int64_t			 t0, left, to, wait;
	int			 status = 0, sent, retryable, nr, retry_after_s;

	memset(res, 0, sizeof(*res));
	memset(&h, 0, sizeof(h));
	http_resp_init(&rs);
	if (snprintf(url, sizeof(url), "%s/chat/completions", o->base_url) >=
	    (int)sizeof(url)) {
		er = BW_EINVAL;
		goto out;
	}
	body = request_body(o, msgs, n);
	if (body == NULL) {
		er = BW_ENOMEM;
		goto out;
	}
	headers(o, &h);
	memset(&rq, 0, sizeof(rq));
	rq.method = "POST";
	rq.url = url;
	rq.headers = h.v;
	rq.nheaders = h.n;
	rq.body = body;
	rq.body_len = strlen(body);
	rq.max_body = BW_MAX_UPSTREAM_BODY;
	rq.want = want;
	rq.nwant = 1;
	rq.tick = o->tick;
	rq.tick_arg = o->arg;
	rq.tick_ms = LLM_TICK_MS;
	if (o->breaker_checked)
		res->brk = o->breaker_seen;
	for (nr = 1;; nr++) {
		if (!(nr == 1 && o->breaker_checked) && !breaker_ok(o, res)) {
			why = LF_BREAKER;
			er = BW_EUPSTREAM;
			break;
		}
		left = o->deadline_ms - clock_mono_ms();
		if (left < LLM_MIN_ATTEMPT_MS) {
			why = LF_TIMEOUT;
			er = BW_ETIMEOUT;
			break;
		}
		to = nr == 1 ? o->attempt_timeout_ms : o->retry_timeout_ms;
		if (to > left)
			to = left;
		res->attempts = nr;
		t0 = clock_mono_ms();
		retryable = 0;
		if (attempt(l, &rq, to, &rs, &status, &why, &sent) == 0) {
			res->last_status = status;
			if (status == 200) {
				if (parse_reply(buf_cstr(&rs.body), rs.body.len,
					res) == 0) {
					why = LF_NONE;
					if (o->on_attempt != NULL)
						o->on_attempt(o->arg, nr,
						    status, why,
						    clock_mono_ms() - t0);
					if (o->breaker_defer_ok)
						res->brk_ok_pending = 1;
					else
						breaker_note(o, res, 1);
					er = BW_OK;
					break;
				}
				why = LF_MALFORMED;
				retryable = 1;
			} else {
				why = LF_HTTP;
				retryable = llm_status_retryable(status);
			}
		} else {
			res->last_status = 0;
			retryable = why == LF_TIMEOUT || why == LF_CONNECT;
		}
		if (sent)
			res->failed_sent++;
		if (o->on_attempt != NULL)
			o->on_attempt(o->arg, nr, status, why,
			    clock_mono_ms() - t0);
		if (why == LF_ABORTED) {
			er = BW_EUPSTREAM;
			break;
		}
		breaker_note(o, res, !retryable);
		er = why == LF_TIMEOUT ? BW_ETIMEOUT : BW_EUPSTREAM;
		if (!retryable || nr > o->max_retries)
			break;
		/* Retry-After in delta-seconds (RFC 9110 §10.2.3); dates are
		 * ignored. */
		retry_after_s = rs.has[0] ? http_retry_after_s(rs.hdr[0]) : -1;
		wait = retry_after_s >= 0 ? (int64_t)retry_after_s * 1000
					  : llm_backoff_ms(nr, llm_jitter_ms());
		if (clock_mono_ms() + wait + LLM_MIN_ATTEMPT_MS >
		    o->deadline_ms)
			break;
		if (o->on_retry != NULL && o->on_retry(o->arg, nr, wait) != 0) {
			res->retry_refused = 1;
			break;
		}
		if (nap(o, wait) != 0) {
			why = LF_ABORTED;
			er = BW_EUPSTREAM;
			break;
		}
	}
	res->why = why;
out:
	if (er != BW_OK) {
		free(res->reply);
		res->reply = NULL;
	}
	http_resp_free(&rs);
	free(body);
	OPENSSL_cleanse(h.auth, sizeof(h.auth));
	return er;
}
