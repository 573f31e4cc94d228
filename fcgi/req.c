/* SPDX-License-Identifier: MIT */
/*
 * Request context: ids, path, client address and the bounded body read.
 * The id rules are CONTRACT.md's "Common to every response".
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "core/clock.h"
#include "ctx.h"
#include "req.h"
#include "core/sec.h"

int
req_id_valid(const char *s)
{
	size_t i;

	if (s == NULL)
		return 0;
	for (i = 0; s[i] != '\0'; i++) {
		unsigned char c = (unsigned char)s[i];

		if (i >= BW_MAX_REQUEST_ID)
			return 0;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			(c >= '0' && c <= '9') || c == '.' || c == '_' ||
			c == '-'))
			return 0;
	}
	return i > 0;
}

/* 1 if s[0..n) is lower-case hex. */
static int
is_lhex(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
			(s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

/* 1 if s[0..n) is all '0'. */
static int
is_zero(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (s[i] != '0')
			return 0;
	return 1;
}

int
req_traceparent(const char *tp, char out[33])
{
	size_t len;

	if (tp == NULL)
		return 0;
	len = strlen(tp);
	/* version "-" trace-id "-" parent-id "-" flags = 2+1+32+1+16+1+2 */
	if (len < 55)
		return 0;
	if (!is_lhex(tp, 2) || tp[2] != '-' || !is_lhex(tp + 3, 32) ||
	    tp[35] != '-' || !is_lhex(tp + 36, 16) || tp[52] != '-' ||
	    !is_lhex(tp + 53, 2))
		return 0;
	if (strncmp(tp, "ff", 2) == 0)
		return 0;
	if (strncmp(tp, "00", 2) == 0 && len != 55)
		return 0;
	/* Later versions may append "-..." fields; nothing else. */
	if (len > 55 && tp[55] != '-')
		return 0;
	if (is_zero(tp + 3, 32) || is_zero(tp + 36, 16))
		return 0;
	memcpy(out, tp + 3, 32);
	out[32] = '\0';
	return 1;
}

/* Copies a valid id (known to fit) into dst. */
static void
id_copy(char dst[BW_MAX_REQUEST_ID + 1], const char *src)
{
	size_t n = strlen(src);

	if (n > BW_MAX_REQUEST_ID)
		n = BW_MAX_REQUEST_ID;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

void
req_pick_ids(const char *nginx_rid, const char *client_rid,
    const char *nginx_cid, const char *client_cid, const char *traceparent,
    const char *fallback, char rid[BW_MAX_REQUEST_ID + 1],
    char cid[BW_MAX_REQUEST_ID + 1])
{
	char trace[33];

	if (req_id_valid(nginx_rid))
		id_copy(rid, nginx_rid);
	else if (req_id_valid(client_rid))
		id_copy(rid, client_rid);
	else
		id_copy(rid, fallback);

	if (req_id_valid(client_cid))
		id_copy(cid, client_cid);
	else if (req_traceparent(traceparent, trace))
		id_copy(cid, trace);
	else if (req_id_valid(nginx_cid))
		id_copy(cid, nginx_cid);
	else
		id_copy(cid, rid);
}

int
req_bearer(const char *authz, const char **tok, size_t *len)
{
	const char *p;
	size_t	    n;

	if (authz == NULL || strncasecmp(authz, "Bearer", 6) != 0)
		return 0;
	p = authz + 6;
	if (*p != ' ')
		return 0;
	while (*p == ' ')
		p++;
	n = strlen(p);
	while (n > 0 && p[n - 1] == ' ')
		n--;
	if (n == 0)
		return 0;
	*tok = p;
	*len = n;
	return 1;
}

const char *
req_param(const struct req *r, const char *name)
{
	return FCGX_GetParam(name, r->fr->envp);
}

/*
 * The path: nginx's normalized, decoded $uri (DOCUMENT_URI), else
 * REQUEST_URI up to '?'. Over-long paths become "" (404 later).
 */
static void
req_set_path(struct req *r)
{
	const char *p;
	size_t	    n;

	p = req_param(r, "DOCUMENT_URI");
	if (p != NULL)
		n = strlen(p);
	else {
		p = req_param(r, "REQUEST_URI");
		if (p == NULL)
			p = "/";
		n = strcspn(p, "?");
	}
	if (n > BW_MAX_PATH)
		n = 0;
	memcpy(r->path, p, n);
	r->path[n] = '\0';
}

/* Longest wait req_queued_ms() believes; beyond it the clocks disagree. */
#define REQ_MAX_QUEUED_MS 3600000

/*
 * Milliseconds since v, nginx's $msec when it passed the request on
 * ("1700000000.123", seconds of the wall clock): the time the request
 * spent in the listen queue. 0 when v is absent, malformed or ahead of our
 * clock (nginx on another host with a clock ahead of ours).
 */
static int64_t
req_queued_ms(const char *v)
{
	int64_t ms = 0, d = 100, t;

	if (v == NULL || *v < '0' || *v > '9')
		return 0;
	for (; *v >= '0' && *v <= '9'; v++) {
		if (ms > INT64_MAX / 10000)
			return 0;
		ms = ms * 10 + (*v - '0');
	}
	ms *= 1000;
	if (*v == '.')
		for (v++; *v >= '0' && *v <= '9'; v++, d /= 10)
			ms += d * (*v - '0');
	if (*v != '\0')
		return 0;
	t = clock_wall_ms() - ms;
	return t > 0 && t <= REQ_MAX_QUEUED_MS ? t : 0;
}

void
req_init(struct req *r, FCGX_Request *fr, struct child *ch)
{
	const char *ip;
	char	    fallback[33];
	uint8_t	    rnd[16];

	memset(r, 0, sizeof(*r));
	r->fr = fr;
	r->ch = ch;
	r->start_us = clock_mono_us();
	buf_init(&r->body, BW_MAX_BODY);
	buf_init(&r->hdrs, BW_MAX_HEADER * 4);
	buf_init(&r->out, BW_MAX_RESPONSE);
	r->status = 200;
	r->ctype = "application/json";

	r->queued_ms = req_queued_ms(req_param(r, "BW_REQUEST_START"));
	r->method = req_param(r, "REQUEST_METHOD");
	if (r->method == NULL)
		r->method = "GET";
	r->query = req_param(r, "QUERY_STRING");
	if (r->query == NULL)
		r->query = "";
	req_set_path(r);

	if (sec_random(rnd, sizeof(rnd)) != BW_OK)
		memset(rnd, 0, sizeof(rnd));
	sec_hex(rnd, sizeof(rnd), fallback);
	req_pick_ids(req_param(r, "BW_REQUEST_ID"),
	    req_param(r, "HTTP_X_REQUEST_ID"),
	    req_param(r, "BW_CORRELATION_ID"),
	    req_param(r, "HTTP_X_CORRELATION_ID"),
	    req_param(r, "HTTP_TRACEPARENT"), fallback, r->request_id,
	    r->correlation_id);

	ip = req_param(r, "REMOTE_ADDR");
	if (ip == NULL || strlen(ip) >= sizeof(r->client_ip))
		ip = "";
	memcpy(r->client_ip, ip, strlen(ip) + 1);
}

enum bw_err
req_content_length(const struct req *r, uint64_t *len)
{
	const char	  *cl = req_param(r, "CONTENT_LENGTH");
	char		  *end;
	unsigned long long n;

	*len = 0;
	if (cl == NULL || *cl == '\0')
		return BW_OK;
	if (*cl < '0' || *cl > '9')
		return BW_EINVAL;
	errno = 0;
	n = strtoull(cl, &end, 10);
	if (errno != 0 || *end != '\0' || n > INT64_MAX)
		return BW_EINVAL;
	*len = n;
	return BW_OK;
}

enum bw_err
req_read_body(struct req *r, size_t max)
{
	uint64_t    n;
	char	    chunk[16384];
	size_t	    left;
	int	    got;
	enum bw_err er;

	if ((er = req_content_length(r, &n)) != BW_OK)
		return er;
	if (n == 0)
		return BW_OK;
	if (n > max)
		return BW_ETOOBIG;
	r->body.max = max;
	for (left = (size_t)n; left > 0; left -= (size_t)got) {
		got = FCGX_GetStr(chunk,
		    left < sizeof(chunk) ? (int)left : (int)sizeof(chunk),
		    r->fr->in);
		if (got <= 0)
			return BW_EIO;
		er = buf_add(&r->body, chunk, (size_t)got);
		if (er != BW_OK)
			return er;
	}
	r->body_whole = 1;
	return BW_OK;
}

/*
 * libfcgi's close of a connection (OS_Close) shuts down its sending side
 * and then reads until nginx closes: one more wait and wake-up of the child
 * per request, and no accepting meanwhile (2.6 against 1.7 context
 * switches per GET /health, docs/chat-cost.md). It is there so that a peer
 * still sending never meets a reset; once stdin has ended, nginx has
 * nothing left to send.
 */
int
req_stdin_end(struct req *r)
{
	FCGX_Request *fr = r->fr;
	uint64_t      n;

	/* A connection nginx keeps (fastcgi_keep_conn on) is not closed. */
	if (fr == NULL || fr->in == NULL || fr->keepConnection)
		return 0;
	if (!r->body_whole && (req_content_length(r, &n) != BW_OK || n != 0))
		return 0;
	if (FCGX_HasSeenEOF(fr->in) != EOF && FCGX_GetChar(fr->in) != EOF)
		return 0; /* more than CONTENT_LENGTH said: drained by libfcgi */
	return FCGX_Detach(fr) == 0;
}

void
req_free(struct req *r)
{
	json_object_put(r->in);
	r->in = NULL;
	json_object_put(r->log_extra);
	r->log_extra = NULL;
	buf_free(&r->body);
	buf_free(&r->hdrs);
	buf_free(&r->out);
}
