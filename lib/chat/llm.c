/* SPDX-License-Identifier: MIT */
/*
 * The LLM provider client (OpenAI chat completions). One curl easy handle
 * driven through a multi handle, so that the transfer can be watched in
 * steps of at most LLM_TICK_MS and the caller's tick (lease renewal) runs
 * while the provider thinks; the multi handle keeps connections alive
 * across calls. Every attempt has a timeout and a size-capped body.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <json-c/json.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/limits.h"
#include "chat/llm.h"
#include "core/log.h"
#include "core/sec.h"

struct llm {
	CURL  *easy;
	CURLM *multi;
};

/* One attempt's reply. */
struct xfer {
	struct buf body;
	int	   retry_after_s; /* -1: none */
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
	switch (status) {
	case 408:
	case 429:
	case 500:
	case 502:
	case 503:
	case 504:
		return 1;
	default:
		return 0;
	}
}

int64_t
llm_backoff_ms(int n, int jitter_ms)
{
	int64_t base = LLM_BACKOFF_BASE_MS;

	if (n < 1)
		n = 1;
	if (n > 10)
		n = 10;
	return (base << (n - 1)) + jitter_ms;
}

static int
jitter(void)
{
	uint8_t b[2];

	if (sec_random(b, sizeof(b)) != BW_OK)
		return LLM_JITTER_MS / 2;
	return (int)(((unsigned)b[0] << 8 | b[1]) % (LLM_JITTER_MS + 1));
}

struct llm *
llm_new(void)
{
	struct llm *l;

	l = calloc(1, sizeof(*l));
	if (l == NULL)
		return NULL;
	l->easy = curl_easy_init();
	l->multi = curl_multi_init();
	if (l->easy == NULL || l->multi == NULL) {
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
	if (l->easy != NULL)
		curl_easy_cleanup(l->easy);
	if (l->multi != NULL)
		curl_multi_cleanup(l->multi);
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

static size_t
write_cb(char *p, size_t sz, size_t nm, void *arg)
{
	struct xfer *x = arg;
	size_t	     n = sz * nm;

	/* Past BW_MAX_UPSTREAM_BODY the transfer fails (CURLE_WRITE_ERROR). */
	if (buf_add(&x->body, p, n) != BW_OK)
		return 0;
	return n;
}

/* Picks up Retry-After in delta-seconds (RFC 9110 §10.2.3); dates are
 * ignored. */
static size_t
header_cb(char *p, size_t sz, size_t nm, void *arg)
{
	struct xfer *x = arg;
	size_t	     n = sz * nm, i;
	long	     v = 0;
	int	     digits = 0;

	if (n > 12 && strncasecmp(p, "retry-after:", 12) == 0) {
		for (i = 12; i < n && (p[i] == ' ' || p[i] == '\t'); i++)
			;
		for (; i < n && isdigit((unsigned char)p[i]) && digits < 6;
		     i++, digits++)
			v = v * 10 + (p[i] - '0');
		if (digits > 0 && digits < 6)
			x->retry_after_s = (int)v;
	}
	return n;
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

/*
 * One attempt with timeout_ms. *status gets the HTTP status (0 when the
 * transfer failed), *why the failure class, *sent whether the provider
 * may have seen the request. Returns 0 when a transfer completed, else -1.
 */
static int
attempt(struct llm *l, const struct llm_opts *o, const char *url,
    struct curl_slist *hdrs, const char *body, int64_t timeout_ms,
    struct xfer *x, int *status, enum llm_fail *why, int *sent)
{
	CURL	*e = l->easy;
	CURLMsg *m;
	CURLcode cc = CURLE_OK;
	long	 code = 0;
	int	 running = 1, left, done = 0;
	int64_t	 last_tick = clock_mono_ms();

	*status = 0;
	*why = LF_NONE;
	*sent = 0;
	curl_easy_reset(e);
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
	    (long)(timeout_ms < 3000 ? timeout_ms : 3000));
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	if (curl_multi_add_handle(l->multi, e) != CURLM_OK) {
		*why = LF_CONNECT;
		return -1;
	}
	while (running) {
		if (curl_multi_perform(l->multi, &running) != CURLM_OK)
			break;
		if (!running)
			break;
		(void)curl_multi_poll(l->multi, NULL, 0, 200, NULL);
		if (o->tick != NULL &&
		    clock_mono_ms() - last_tick >= LLM_TICK_MS) {
			last_tick = clock_mono_ms();
			if (o->tick(o->arg) != 0) {
				curl_multi_remove_handle(l->multi, e);
				*why = LF_ABORTED;
				*sent = 1;
				return -1;
			}
		}
	}
	while ((m = curl_multi_info_read(l->multi, &left)) != NULL) {
		if (m->msg == CURLMSG_DONE && m->easy_handle == e) {
			cc = m->data.result;
			done = 1;
		}
	}
	curl_multi_remove_handle(l->multi, e);
	if (!done)
		cc = CURLE_RECV_ERROR;
	switch (cc) {
	case CURLE_OK:
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
		*status = (int)code;
		*sent = 1;
		return 0;
	case CURLE_OPERATION_TIMEDOUT:
		*why = LF_TIMEOUT;
		*sent = 1;
		break;
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
		*why = LF_CONNECT;
		break;
	case CURLE_WRITE_ERROR:
		/* The reply passed BW_MAX_UPSTREAM_BODY. */
		*why = LF_MALFORMED;
		*sent = 1;
		break;
	default:
		/* Closed or reset after sending: the provider saw it. */
		*why = LF_CONNECT;
		*sent = 1;
		break;
	}
	return -1;
}

static struct curl_slist *
headers(const struct llm_opts *o)
{
	struct curl_slist *h = NULL, *t;
	char		   line[512];
	int		   ok = 1;

#define ADD(s)                                 \
	do {                                   \
		t = curl_slist_append(h, (s)); \
		if (t == NULL)                 \
			ok = 0;                \
		else                           \
			h = t;                 \
	} while (0)
	ADD("Content-Type: application/json");
	ADD("Expect:");
	if (o->api_key != NULL && o->api_key[0] != '\0' &&
	    strlen(o->api_key) < sizeof(line) - 32) {
		snprintf(line, sizeof(line), "Authorization: Bearer %s",
		    o->api_key);
		ADD(line);
		OPENSSL_cleanse(line, sizeof(line));
	}
	if (o->org_id != NULL) {
		snprintf(line, sizeof(line), "X-Bulwark-Org: %s", o->org_id);
		ADD(line);
	}
	if (o->request_id != NULL) {
		snprintf(line, sizeof(line), "X-Request-ID: %s", o->request_id);
		ADD(line);
	}
#undef ADD
	if (!ok) {
		curl_slist_free_all(h);
		return NULL;
	}
	return h;
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
	struct curl_slist *hdrs = NULL;
	struct xfer	   x;
	char		  *body = NULL, url[2048];
	enum llm_fail	   why = LF_NONE;
	enum bw_err	   er = BW_EUPSTREAM;
	int64_t		   t0, left, to, wait;
	int		   status = 0, sent, retryable, nr;

	memset(res, 0, sizeof(*res));
	buf_init(&x.body, BW_MAX_UPSTREAM_BODY);
	if (snprintf(url, sizeof(url), "%s/chat/completions", o->base_url) >=
	    (int)sizeof(url)) {
		er = BW_EINVAL;
		goto out;
	}
	body = request_body(o, msgs, n);
	hdrs = headers(o);
	if (body == NULL || hdrs == NULL) {
		er = BW_ENOMEM;
		goto out;
	}
	for (nr = 1;; nr++) {
		if (!breaker_ok(o, res)) {
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
		buf_reset(&x.body);
		x.retry_after_s = -1;
		res->attempts = nr;
		t0 = clock_mono_ms();
		retryable = 0;
		if (attempt(l, o, url, hdrs, body, to, &x, &status, &why,
			&sent) == 0) {
			res->last_status = status;
			if (status == 200) {
				if (parse_reply(buf_cstr(&x.body), x.body.len,
					res) == 0) {
					why = LF_NONE;
					if (o->on_attempt != NULL)
						o->on_attempt(o->arg, nr,
						    status, why,
						    clock_mono_ms() - t0);
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
		wait = x.retry_after_s >= 0 ? (int64_t)x.retry_after_s * 1000
					    : llm_backoff_ms(nr, jitter());
		if (clock_mono_ms() + wait + LLM_MIN_ATTEMPT_MS >
		    o->deadline_ms)
			break;
		if (o->on_retry != NULL)
			o->on_retry(o->arg, nr, wait);
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
	buf_free(&x.body);
	free(body);
	curl_slist_free_all(hdrs);
	return er;
}
