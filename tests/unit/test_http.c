/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for lib/core/http.c: header lines match whole names with
 * optional whitespace trimmed and refuse control characters and
 * over-long values; Retry-After is delta-seconds only; against a tiny
 * loopback server (tests/unit/tiny_httpd.c), a body at the cap arrives
 * whole, one byte over (declared or chunked) is an error and never a cut
 * body, wanted headers come back, keep-alive reuses one connection, and
 * timeouts, refused connections and a stopping tick are classified.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/http.h"
#include "tiny_httpd.h"

#define CAP 1000

static void
test_http_hdr_match(void **state)
{
	static const struct {
		const char *line;
		size_t	    valsz;
		int	    rc;
		const char *val;
	} t[] = {
		{ "Retry-After: 120\r\n", 16, 1, "120" },
		{ "retry-after:5\r\n", 16, 1, "5" },
		{ "RETRY-AFTER: \t 7 \t\r\n", 16, 1, "7" },
		{ "Retry-After: 7\n", 16, 1, "7" },
		{ "Retry-After: 7", 16, 1, "7" },
		{ "Retry-After:\r\n", 16, 1, "" },
		{ "Retry-After: a b\r\n", 16, 1, "a b" },
		{ "Retry-After: 123456789012345\r\n", 16, 1,
		    "123456789012345" },
		{ "Retry-After: 1234567890123456\r\n", 16, -1, NULL },
		{ "Retry-After: 1\r2\r\n", 16, -1, NULL },
		{ "Retry-After: 1\x7f\r\n", 16, -1, NULL },
		{ "Retry-After-X: 1\r\n", 16, 0, NULL },
		{ "X-Retry-After: 1\r\n", 16, 0, NULL },
		{ "Retry-Afte: 1\r\n", 16, 0, NULL },
		{ "Retry-After", 16, 0, NULL },
		{ "Retry-After : 1\r\n", 16, 0, NULL },
		{ "\r\n", 16, 0, NULL },
	};
	char   val[16];
	size_t i;
	int    rc;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		memset(val, '#', sizeof(val));
		rc = http_hdr_match(t[i].line, strlen(t[i].line), "Retry-After",
		    val, t[i].valsz);
		if (rc != t[i].rc)
			fail_msg("%zu: %s: rc %d, want %d", i, t[i].line, rc,
			    t[i].rc);
		if (t[i].val != NULL)
			assert_string_equal(val, t[i].val);
	}
}

static void
test_http_retry_after(void **state)
{
	static const struct {
		const char *v;
		int	    s;
	} t[] = {
		{ "0", 0 },
		{ "1", 1 },
		{ "120", 120 },
		{ "99999", 99999 },
		{ "100000", -1 },
		{ "", -1 },
		{ NULL, -1 },
		{ "1.5", -1 },
		{ "-1", -1 },
		{ "+1", -1 },
		{ " 1", -1 },
		{ "12a", -1 },
		{ "Wed, 21 Oct 2015 07:28:00 GMT", -1 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		if (http_retry_after_s(t[i].v) != t[i].s)
			fail_msg("%zu: %s: %d, want %d", i,
			    t[i].v != NULL ? t[i].v : "NULL",
			    http_retry_after_s(t[i].v), t[i].s);
	}
}

static void
test_http_xerr_name(void **state)
{
	int i, j;

	(void)state;
	for (i = 0; i < HX__MAX; i++) {
		assert_string_not_equal(http_xerr_name((enum http_xerr)i), "?");
		for (j = 0; j < i; j++)
			assert_string_not_equal(http_xerr_name(
						    (enum http_xerr)i),
			    http_xerr_name((enum http_xerr)j));
	}
	assert_string_equal(http_xerr_name(HX__MAX), "?");
	assert_string_equal(http_xerr_name(HX_TOOBIG), "too_big");
}

/* A request to the tiny server with the test's defaults. */
static void
req_init(struct http_req *rq, char *url, size_t urlsz, const char *path)
{
	static const char *const want[] = { "Retry-After", "X-Absent" };

	snprintf(url, urlsz, "%s%s", tiny_httpd_url(), path);
	memset(rq, 0, sizeof(*rq));
	rq->method = "GET";
	rq->url = url;
	rq->connect_timeout_ms = 2000;
	rq->timeout_ms = 5000;
	rq->max_body = CAP;
	rq->want = want;
	rq->nwant = 2;
}

/* Sets the answer: status, extra header lines, n body bytes ('x'). */
static void
answer(int status, const char *hdrs, size_t n, int chunked, int delay)
{
	char  *a;
	size_t len;
	int    h;

	a = malloc(n + 512);
	assert_non_null(a);
	if (chunked)
		h = snprintf(a, 512,
		    "HTTP/1.1 %d X\r\n%sTransfer-Encoding: chunked\r\n\r\n"
		    "%zx\r\n",
		    status, hdrs, n);
	else
		h = snprintf(a, 512,
		    "HTTP/1.1 %d X\r\n%sContent-Length: %zu\r\n\r\n", status,
		    hdrs, n);
	len = (size_t)h;
	memset(a + len, 'x', n);
	len += n;
	if (chunked) {
		memcpy(a + len, "\r\n0\r\n\r\n", 7);
		len += 7;
	}
	tiny_httpd_answer(a, len, delay);
	free(a);
}

static void
test_http_cap(void **state)
{
	static const char   big[] = "HTTP/1.1 200 X\r\n"
				    "Content-Length: 100000\r\n\r\nxx";
	struct http_client *c;
	struct http_req	    rq;
	struct http_resp    rs;
	char		    url[128];

	(void)state;
	c = http_client_new();
	assert_non_null(c);
	http_resp_init(&rs);
	req_init(&rq, url, sizeof(url), "/cap");

	/* Exactly the cap, declared and chunked: whole. */
	answer(200, "", CAP, 0, 0);
	assert_int_equal(http_do(c, &rq, &rs), BW_OK);
	assert_int_equal(rs.status, 200);
	assert_int_equal(rs.xerr, HX_NONE);
	assert_int_equal(rs.body.len, CAP);
	answer(200, "", CAP, 1, 0);
	assert_int_equal(http_do(c, &rq, &rs), BW_OK);
	assert_int_equal(rs.body.len, CAP);

	/* One byte over, declared: refused before the body. */
	answer(200, "", CAP + 1, 0, 0);
	assert_int_equal(http_do(c, &rq, &rs), BW_ETOOBIG);
	assert_int_equal(rs.xerr, HX_TOOBIG);
	assert_int_equal(rs.status, 0);
	assert_int_equal(rs.body.len, 0);

	/* A declared length over the cap fails at the head, without
	 * waiting for a body that never comes. */
	tiny_httpd_answer(big, strlen(big), 0);
	rq.timeout_ms = 3000;
	assert_int_equal(http_do(c, &rq, &rs), BW_ETOOBIG);
	assert_int_equal(rs.xerr, HX_TOOBIG);
	rq.timeout_ms = 5000;

	/* One byte over, chunked (no length known): the write cap. */
	answer(200, "", CAP + 1, 1, 0);
	assert_int_equal(http_do(c, &rq, &rs), BW_ETOOBIG);
	assert_int_equal(rs.xerr, HX_TOOBIG);
	assert_int_equal(rs.body.len, 0);

	/* The client still works after. */
	answer(204, "", 0, 0, 0);
	assert_int_equal(http_do(c, &rq, &rs), BW_OK);
	assert_int_equal(rs.status, 204);
	http_resp_free(&rs);
	http_client_free(c);
}

static void
test_http_headers_and_reuse(void **state)
{
	static const char *const hdrs[] = { "Content-Type: application/json",
		"Authorization: Bearer sekrit" };
	struct http_client	*c;
	struct http_req		 rq;
	struct http_resp	 rs;
	static const char	 interim[] = "HTTP/1.1 103 Early Hints\r\n"
					     "Retry-After: 9\r\n\r\n"
					     "HTTP/1.1 200 OK\r\n"
					     "Content-Length: 0\r\n\r\n";
	char			 url[128], dead[64];
	int			 before;

	(void)state;
	c = http_client_new();
	assert_non_null(c);
	http_resp_init(&rs);
	req_init(&rq, url, sizeof(url), "/v1/x");
	rq.method = "POST";
	rq.headers = hdrs;
	rq.nheaders = 2;
	rq.body = "{\"a\":1}";
	rq.body_len = 7;
	snprintf(dead, sizeof(dead), "http://127.0.0.1:%d/",
	    tiny_httpd_dead_port());
	before = tiny_httpd_accepts();

	answer(503, "retry-after:  3 \r\nX-Other: 1\r\n", 2, 0, 0);
	assert_int_equal(http_do(c, &rq, &rs), BW_OK);
	assert_int_equal(rs.status, 503);
	assert_true(rs.has[0]);
	assert_string_equal(rs.hdr[0], "3");
	assert_false(rs.has[1]);
	assert_int_equal(http_retry_after_s(rs.hdr[0]), 3);
	assert_non_null(strstr(tiny_httpd_last(), "POST /v1/x HTTP/1.1\r\n"));
	assert_non_null(
	    strstr(tiny_httpd_last(), "\r\nAuthorization: Bearer sekrit\r\n"));
	assert_non_null(strstr(tiny_httpd_last(), "\r\n\r\n{\"a\":1}"));

	/* The headers of an interim 1xx answer do not count. */
	tiny_httpd_answer(interim, strlen(interim), 0);
	assert_int_equal(http_do(c, &rq, &rs), BW_OK);
	assert_int_equal(rs.status, 200);
	assert_false(rs.has[0]);

	/* Nor do those of an earlier request when the next one fails. */
	answer(503, "Retry-After: 3\r\n", 0, 0, 0);
	assert_int_equal(http_do(c, &rq, &rs), BW_OK);
	assert_true(rs.has[0]);
	rq.url = dead;
	assert_int_equal(http_do(c, &rq, &rs), BW_EUPSTREAM);
	assert_false(rs.has[0]);
	rq.url = url;

	/* The next answer has no Retry-After: nothing is left over. */
	answer(200, "", 5, 0, 0);
	assert_int_equal(http_do(c, &rq, &rs), BW_OK);
	assert_int_equal(rs.status, 200);
	assert_false(rs.has[0]);
	assert_string_equal(buf_cstr(&rs.body), "xxxxx");

	/* A GET on the same client: still one connection. */
	rq.method = "GET";
	rq.body = NULL;
	rq.body_len = 0;
	assert_int_equal(http_do(c, &rq, &rs), BW_OK);
	assert_non_null(strstr(tiny_httpd_last(), "GET /v1/x HTTP/1.1\r\n"));
	assert_int_equal(tiny_httpd_accepts() - before, 1);

	/* Too many wanted headers is the caller's mistake. */
	rq.nwant = HTTP_MAX_WANT + 1;
	assert_int_equal(http_do(c, &rq, &rs), BW_EINVAL);
	http_resp_free(&rs);
	http_client_free(c);
}

static int
tick_stop(void *arg)
{
	int *n = arg;

	(*n)++;
	return 1;
}

static void
test_http_failures(void **state)
{
	struct http_client *c;
	struct http_req	    rq;
	struct http_resp    rs;
	char		    url[128];
	int		    port, ticks = 0;

	(void)state;
	c = http_client_new();
	assert_non_null(c);
	http_resp_init(&rs);
	req_init(&rq, url, sizeof(url), "/slow");

	/* The server answers after 1.5 s; the request allows 300 ms. */
	answer(200, "", 2, 0, 1500);
	rq.timeout_ms = 300;
	assert_int_equal(http_do(c, &rq, &rs), BW_ETIMEOUT);
	assert_int_equal(rs.xerr, HX_TIMEOUT);
	assert_true(rs.sent);
	assert_int_equal(rs.status, 0);

	/* A tick that asks to stop ends the transfer early. */
	rq.timeout_ms = 5000;
	rq.tick = tick_stop;
	rq.tick_arg = &ticks;
	rq.tick_ms = 100;
	assert_int_equal(http_do(c, &rq, &rs), BW_EUPSTREAM);
	assert_int_equal(rs.xerr, HX_ABORTED);
	assert_int_equal(ticks, 1);
	rq.tick = NULL;

	/* Nothing listens: not sent. */
	port = tiny_httpd_dead_port();
	assert_true(port > 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", port);
	assert_int_equal(http_do(c, &rq, &rs), BW_EUPSTREAM);
	assert_int_equal(rs.xerr, HX_CONNECT);
	assert_false(rs.sent);

	/* Only http and https. */
	snprintf(url, sizeof(url), "file:///etc/passwd");
	assert_int_equal(http_do(c, &rq, &rs), BW_EUPSTREAM);
	assert_int_equal(rs.xerr, HX_OTHER);
	assert_int_equal(rs.body.len, 0);
	http_resp_free(&rs);
	http_client_free(c);
	http_client_free(NULL);
}

/*
 * A keep-alive connection that the server closes after reading a POST,
 * without answering: one send, reported as maybe seen; libcurl's own
 * resend on a new connection is refused (the caller's retries are all
 * there are). A GET may still be resent.
 */
static void
test_http_no_hidden_resend(void **state)
{
	struct http_client *c;
	struct http_req	    rq;
	struct http_resp    rs;
	char		    url[128];
	int		    n;

	(void)state;
	c = http_client_new();
	assert_non_null(c);
	http_resp_init(&rs);
	req_init(&rq, url, sizeof(url), "/v1/chat/completions");
	rq.method = "POST";
	rq.body = "{\"m\":1}";
	rq.body_len = 7;

	/* A first answer leaves the connection open for the next request. */
	answer(200, "", 2, 0, 0);
	assert_int_equal(http_do(c, &rq, &rs), BW_OK);
	tiny_httpd_answer("", 0, 0);
	n = tiny_httpd_requests();
	assert_int_equal(http_do(c, &rq, &rs), BW_EUPSTREAM);
	assert_int_equal(rs.xerr, HX_OTHER);
	assert_true(rs.sent);
	assert_int_equal(rs.status, 0);
	assert_int_equal(tiny_httpd_requests() - n, 1);

	/* The client still works afterwards. */
	answer(200, "", 3, 0, 0);
	assert_int_equal(http_do(c, &rq, &rs), BW_OK);
	assert_string_equal(buf_cstr(&rs.body), "xxx");

	/* A GET on the reused connection: libcurl may send it again. */
	rq.method = "GET";
	rq.body = NULL;
	rq.body_len = 0;
	tiny_httpd_answer("", 0, 0);
	n = tiny_httpd_requests();
	assert_int_equal(http_do(c, &rq, &rs), BW_EUPSTREAM);
	assert_int_equal(tiny_httpd_requests() - n, 2);
	http_resp_free(&rs);
	http_client_free(c);
}

static int
setup(void **state)
{
	(void)state;
	if (http_global_init() != BW_OK)
		return -1;
	return tiny_httpd_start() > 0 ? 0 : -1;
}

static int
teardown(void **state)
{
	(void)state;
	tiny_httpd_stop();
	http_global_cleanup();
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_http_hdr_match),
		cmocka_unit_test(test_http_retry_after),
		cmocka_unit_test(test_http_xerr_name),
		cmocka_unit_test(test_http_cap),
		cmocka_unit_test(test_http_headers_and_reuse),
		cmocka_unit_test(test_http_failures),
		cmocka_unit_test(test_http_no_hidden_resend),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
