/* SPDX-License-Identifier: MIT */
/*
 * The outbound HTTP client. One curl easy handle per client, driven
 * through a multi handle so that a long transfer can be watched in steps
 * of at most HTTP_POLL_MS (the caller's tick renews leases meanwhile); the
 * multi handle keeps connections alive across requests, and
 * curl_easy_reset() between requests keeps them too.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/http.h"

struct http_client {
	CURL  *easy;
	CURLM *multi;
};

/* What the callbacks of one request share. */
struct http_xfer {
	const struct http_req *req;
	struct http_resp      *resp;
	bool		       toobig; /* the body passed req->max_body */
	bool		       once;   /* the request may be sent only once */
	int		       sends;  /* times libcurl was about to send it */
};

static const char *const xerr_names[HX__MAX] = { "none", "connect", "timeout",
	"too_big", "aborted", "other" };

const char *
http_xerr_name(enum http_xerr x)
{
	return (unsigned)x < HX__MAX ? xerr_names[x] : "?";
}

enum bw_err
http_global_init(void)
{
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? BW_OK
								 : BW_ENOMEM;
}

void
http_global_cleanup(void)
{
	curl_global_cleanup();
}

struct http_client *
http_client_new(void)
{
	struct http_client *c;

	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->easy = curl_easy_init();
	c->multi = curl_multi_init();
	if (c->easy == NULL || c->multi == NULL) {
		http_client_free(c);
		return NULL;
	}
	return c;
}

void
http_client_free(struct http_client *c)
{
	if (c == NULL)
		return;
	if (c->easy != NULL)
		curl_easy_cleanup(c->easy);
	if (c->multi != NULL)
		curl_multi_cleanup(c->multi);
	free(c);
}

void
http_resp_init(struct http_resp *r)
{
	memset(r, 0, sizeof(*r));
	buf_init(&r->body, 0);
}

void
http_resp_free(struct http_resp *r)
{
	if (r == NULL)
		return;
	buf_free(&r->body);
}

int
http_retry_after_s(const char *v)
{
	int i, n = 0;

	if (v == NULL)
		return -1;
	for (i = 0; v[i] != '\0'; i++) {
		if (v[i] < '0' || v[i] > '9' || i == 5)
			return -1;
		n = n * 10 + (v[i] - '0');
	}
	return i > 0 ? n : -1;
}

/*
 * Matches one header line as libcurl hands it over ("Name: value\r\n",
 * len bytes, not NUL-terminated) against name, case-insensitively.
 * Returns 1 with the value, optional whitespace trimmed (RFC 9110 §5.5),
 * in val; 0 when the line is not this header; -1 when it is but the value
 * is longer than valsz - 1 bytes or holds a control character other than
 * HTAB (it is then not captured).
 */
STATIC int
http_hdr_match(const char *line, size_t len, const char *name, char *val,
    size_t valsz)
{
	size_t nl = strlen(name), i, end = len, k;

	if (nl == 0 || len <= nl || line[nl] != ':' ||
	    strncasecmp(line, name, nl) != 0)
		return 0;
	if (end > nl + 1 && line[end - 1] == '\n')
		end--;
	if (end > nl + 1 && line[end - 1] == '\r')
		end--;
	for (i = nl + 1; i < end && (line[i] == ' ' || line[i] == '\t'); i++)
		;
	while (end > i && (line[end - 1] == ' ' || line[end - 1] == '\t'))
		end--;
	for (k = i; k < end; k++) {
		if (((unsigned char)line[k] < 0x20 && line[k] != '\t') ||
		    (unsigned char)line[k] == 0x7f)
			return -1;
	}
	if (valsz == 0 || end - i > valsz - 1)
		return -1;
	memcpy(val, line + i, end - i);
	val[end - i] = '\0';
	return 1;
}

static size_t
http_write_cb(char *p, size_t sz, size_t nm, void *arg)
{
	struct http_xfer *x = arg;
	size_t		  n = sz * nm;
	enum bw_err	  er;

	/* A short count fails the transfer with CURLE_WRITE_ERROR. */
	er = buf_add(&x->resp->body, p, n);
	if (er != BW_OK) {
		if (er == BW_ETOOBIG)
			x->toobig = true;
		return 0;
	}
	return n;
}

static size_t
http_header_cb(char *p, size_t sz, size_t nm, void *arg)
{
	struct http_xfer *x = arg;
	size_t		  n = sz * nm, i;

	/* A new status line (after 1xx): forget the headers seen so far. */
	if (n >= 5 && strncmp(p, "HTTP/", 5) == 0) {
		memset(x->resp->has, 0, sizeof(x->resp->has));
		return n;
	}
	for (i = 0; i < x->req->nwant; i++) {
		if (http_hdr_match(p, n, x->req->want[i], x->resp->hdr[i],
			sizeof(x->resp->hdr[i])) == 1)
			x->resp->has[i] = true;
	}
	return n;
}

/*
 * Called by libcurl right before it sends the request on a connection.
 * When a reused keep-alive connection dies before any answer, libcurl
 * resends the request on a new connection by itself; the server may have
 * the first one (it may close after reading it), so for a request that is
 * not safe to repeat that would be an attempt nobody counts, charges or
 * backs off for. Such a second send is refused: the transfer fails (sent,
 * maybe seen) and the caller's retry policy decides.
 */
static int
http_prereq_cb(void *arg, char *conn_primary_ip, char *conn_local_ip,
    int conn_primary_port, int conn_local_port)
{
	struct http_xfer *x = arg;

	(void)conn_primary_ip;
	(void)conn_local_ip;
	(void)conn_primary_port;
	(void)conn_local_port;
	x->sends++;
	return x->once && x->sends > 1 ? CURL_PREREQFUNC_ABORT
				       : CURL_PREREQFUNC_OK;
}

/* The request headers as a curl list; NULL on ENOMEM (or none given). */
static struct curl_slist *
http_headers(const struct http_req *r, bool *nomem)
{
	struct curl_slist *h = NULL, *t;
	size_t		   i;

	*nomem = false;
	for (i = 0; i < r->nheaders; i++) {
		t = curl_slist_append(h, r->headers[i]);
		if (t == NULL) {
			*nomem = true;
			curl_slist_free_all(h);
			return NULL;
		}
		h = t;
	}
	return h;
}

/* Frees a header list, wiping each copy first: it may hold a token. */
static void
http_headers_free(struct curl_slist *h)
{
	struct curl_slist *p;

	for (p = h; p != NULL; p = p->next)
		OPENSSL_cleanse(p->data, strlen(p->data));
	curl_slist_free_all(h);
}

/* Sets up the easy handle for r. */
static void
http_setup(CURL *e, const struct http_req *r, struct curl_slist *h,
    struct http_xfer *x)
{
	curl_easy_reset(e);
	curl_easy_setopt(e, CURLOPT_URL, r->url);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
	if (strcmp(r->method, "GET") == 0)
		curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
	else if (strcmp(r->method, "POST") == 0 || r->body != NULL) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t)r->body_len);
		curl_easy_setopt(e, CURLOPT_POSTFIELDS,
		    r->body != NULL ? r->body : "");
	}
	if (strcmp(r->method, "GET") != 0 && strcmp(r->method, "POST") != 0)
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r->method);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, r->timeout_ms);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, r->connect_timeout_ms);
	/* A declared Content-Length over the cap fails before the body. */
	curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)r->max_body);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, http_write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, http_header_cb);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, http_prereq_cb);
	curl_easy_setopt(e, CURLOPT_PREREQDATA, x);
}

/*
 * Drives the transfer to its end, calling the tick at least every
 * req->tick_ms. Returns the transfer's result; *aborted is set when the
 * tick stopped it.
 */
static CURLcode
http_run(struct http_client *c, const struct http_req *r, bool *aborted)
{
	CURLMsg *m;
	CURLcode cc = CURLE_RECV_ERROR;
	int	 running = 1, left;
	int64_t	 last_tick = clock_mono_ms();

	*aborted = false;
	while (running) {
		if (curl_multi_perform(c->multi, &running) != CURLM_OK)
			break;
		if (!running)
			break;
		(void)curl_multi_poll(c->multi, NULL, 0, HTTP_POLL_MS, NULL);
		if (r->tick != NULL &&
		    clock_mono_ms() - last_tick >= r->tick_ms) {
			last_tick = clock_mono_ms();
			if (r->tick(r->tick_arg) != 0) {
				*aborted = true;
				return CURLE_ABORTED_BY_CALLBACK;
			}
		}
	}
	/* Without a DONE message the transfer ended oddly: a receive error. */
	while ((m = curl_multi_info_read(c->multi, &left)) != NULL) {
		if (m->msg == CURLMSG_DONE && m->easy_handle == c->easy)
			cc = m->data.result;
	}
	return cc;
}

enum bw_err
http_do(struct http_client *c, const struct http_req *r, struct http_resp *resp)
{
	struct curl_slist *h = NULL;
	struct http_xfer   x;
	CURLcode	   cc;
	long		   code = 0;
	bool		   nomem, aborted;
	enum bw_err	   er;

	resp->status = 0;
	resp->xerr = HX_OTHER;
	resp->sent = false;
	memset(resp->has, 0, sizeof(resp->has));
	if (resp->body.max != r->max_body) {
		buf_free(&resp->body);
		buf_init(&resp->body, r->max_body);
	} else
		buf_reset(&resp->body);
	if (r->url == NULL || r->method == NULL || r->nwant > HTTP_MAX_WANT)
		return BW_EINVAL;
	h = http_headers(r, &nomem);
	if (nomem)
		return BW_ENOMEM;
	x.req = r;
	x.resp = resp;
	x.toobig = false;
	x.once =
	    strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0;
	x.sends = 0;
	http_setup(c->easy, r, h, &x);
	if (curl_multi_add_handle(c->multi, c->easy) != CURLM_OK) {
		er = BW_EUPSTREAM;
		goto out;
	}
	cc = http_run(c, r, &aborted);
	curl_multi_remove_handle(c->multi, c->easy);
	er = BW_EUPSTREAM;
	resp->sent = true;
	switch (cc) {
	case CURLE_OK:
		curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &code);
		resp->status = (int)code;
		resp->xerr = HX_NONE;
		er = BW_OK;
		break;
	case CURLE_OPERATION_TIMEDOUT:
		resp->xerr = HX_TIMEOUT;
		er = BW_ETIMEOUT;
		break;
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
		resp->xerr = HX_CONNECT;
		resp->sent = false;
		break;
	case CURLE_FILESIZE_EXCEEDED:
		resp->xerr = HX_TOOBIG;
		er = BW_ETOOBIG;
		break;
	case CURLE_WRITE_ERROR:
		resp->xerr = x.toobig ? HX_TOOBIG : HX_OTHER;
		er = x.toobig ? BW_ETOOBIG : BW_ENOMEM;
		break;
	default:
		/* Closed or reset after sending (also a resend refused by
		 * http_prereq_cb()): the server may have it. */
		resp->xerr = aborted ? HX_ABORTED : HX_OTHER;
		break;
	}
	if (resp->xerr != HX_NONE)
		buf_reset(&resp->body);
out:
	curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, NULL);
	http_headers_free(h);
	return er;
}
