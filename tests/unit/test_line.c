/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for lib/chat/line.c: text is cut at a UTF-8 character
 * boundary, the request body is exact JSON, statuses map to ok / terminal
 * / retry (and a refused reply to its turn outcome, lib/chat/line_turn.h),
 * and line_reply() against a tiny loopback server (tests/unit/tiny_httpd.c)
 * sends the token and reports each outcome.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/line.h"
#include "chat/line_turn.h"
#include "core/http.h"
#include "tiny_httpd.h"

static void
test_line_text_len(void **state)
{
	static const struct {
		const char *s;
		size_t	    max;
		size_t	    len;
	} t[] = {
		{ "", 5, 0 }, { "abc", 5, 3 }, { "abc", 3, 3 }, { "abc", 2, 2 },
		{ "abc", 0, 0 }, { "\xc3\xa9t\xc3\xa9", 2, 3 }, /* "été" */
		{ "\xc3\xa9t\xc3\xa9", 3, 5 },
		{ "\xe3\x81\x82\xe3\x81\x84", 1, 3 }, /* two kana */
		{ "\xf0\x9f\x98\x80!", 1, 4 },	      /* emoji, '!' */
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		if (line_text_len(t[i].s, t[i].max) != t[i].len)
			fail_msg("%zu: %zu, want %zu", i,
			    line_text_len(t[i].s, t[i].max), t[i].len);
	}
}

static void
test_line_body(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 4096);
	assert_int_equal(line_reply_body(&b, "rt\"1", "hi\nthere", 8), BW_OK);
	assert_string_equal(buf_cstr(&b),
	    "{\"replyToken\":\"rt\\\"1\",\"messages\":[{\"type\":\"text\","
	    "\"text\":\"hi\\nthere\"}]}");
	buf_reset(&b);
	assert_int_equal(line_reply_body(&b, "t", "hello", 2), BW_OK);
	assert_string_equal(buf_cstr(&b),
	    "{\"replyToken\":\"t\",\"messages\":[{\"type\":\"text\","
	    "\"text\":\"he\"}]}");
	buf_free(&b);
	buf_init(&b, 16);
	assert_int_equal(line_reply_body(&b, "t", "hello", 5), BW_ETOOBIG);
	buf_free(&b);
}

static void
test_line_status_outcome(void **state)
{
	static const struct {
		int		  status;
		enum line_outcome o;
	} t[] = {
		{ 200, LINE_OK },
		{ 204, LINE_OK },
		{ 400, LINE_TERMINAL },
		{ 401, LINE_TERMINAL },
		{ 403, LINE_TERMINAL },
		{ 404, LINE_TERMINAL },
		{ 499, LINE_TERMINAL },
		{ 429, LINE_RETRY },
		{ 500, LINE_RETRY },
		{ 503, LINE_RETRY },
		{ 302, LINE_RETRY },
		{ 0, LINE_RETRY },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		if (line_status_outcome(t[i].status) != t[i].o)
			fail_msg("%d: %s, want %s", t[i].status,
			    line_outcome_name(line_status_outcome(t[i].status)),
			    line_outcome_name(t[i].o));
	}
	assert_string_equal(line_outcome_name(LINE__MAX), "?");
}

static void
reply_status(int status)
{
	char a[128];
	int  n;

	n = snprintf(a, sizeof(a),
	    "HTTP/1.1 %d X\r\nContent-Length: 2\r\n\r\n{}", status);
	tiny_httpd_answer(a, (size_t)n, 0);
}

/* The terminal outcome a refused reply's status becomes (line_turn.h). */
static void
test_line_turn_refusal(void **state)
{
	static const struct {
		int		       status;
		enum line_turn_outcome o;
		const char	      *name;
	} t[] = {
		{ 400, LTO_REPLY_TOKEN_INVALID, "reply_token_invalid" },
		{ 401, LTO_CHANNEL_TOKEN_REFUSED, "channel_token_refused" },
		{ 403, LTO_CHANNEL_TOKEN_REFUSED, "channel_token_refused" },
		{ 404, LTO_REJECTED, "rejected" },
		{ 413, LTO_REJECTED, "rejected" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		assert_int_equal(line_turn_refusal(t[i].status), t[i].o);
		assert_string_equal(line_turn_outcome_name(t[i].o), t[i].name);
	}
	assert_string_equal(line_turn_outcome_name(LTO_DELIVERED), "delivered");
	assert_string_equal(line_turn_outcome_name(LTO_NO_CHANNEL_TOKEN),
	    "no_channel_token");
	assert_string_equal(line_turn_outcome_name(LTO__MAX), "?");
	assert_string_equal(line_turn_state_name(LTS_ANSWERED), "answered");
	assert_string_equal(line_turn_state_name(LTS__MAX), "?");
}

static void
test_line_reply(void **state)
{
	struct http_client *c;
	enum line_outcome   o;
	char		   *text;
	char		    url[64];
	int		    st, port;

	(void)state;
	c = http_client_new();
	assert_non_null(c);

	reply_status(200);
	assert_int_equal(line_reply(c, tiny_httpd_url(), "chtok", "rt1",
			     "hello", &o, &st),
	    BW_OK);
	assert_int_equal(o, LINE_OK);
	assert_int_equal(st, 200);
	assert_non_null(strstr(tiny_httpd_last(),
	    "POST /v2/bot/message/reply HTTP/1.1\r\n"));
	assert_non_null(
	    strstr(tiny_httpd_last(), "\r\nAuthorization: Bearer chtok\r\n"));
	assert_non_null(strstr(tiny_httpd_last(),
	    "\r\n\r\n{\"replyToken\":\"rt1\",\"messages\":[{\"type\":"
	    "\"text\",\"text\":\"hello\"}]}"));

	/* A used reply token: final. */
	reply_status(400);
	assert_int_equal(line_reply(c, tiny_httpd_url(), "chtok", "rt1",
			     "hello", &o, &st),
	    BW_EUPSTREAM);
	assert_int_equal(o, LINE_TERMINAL);
	assert_int_equal(st, 400);

	/* Rate limited or down: worth another try. */
	reply_status(429);
	assert_int_equal(line_reply(c, tiny_httpd_url(), "chtok", "rt1",
			     "hello", &o, &st),
	    BW_EUPSTREAM);
	assert_int_equal(o, LINE_RETRY);
	reply_status(502);
	assert_int_equal(line_reply(c, tiny_httpd_url(), "chtok", "rt1",
			     "hello", &o, &st),
	    BW_EUPSTREAM);
	assert_int_equal(o, LINE_RETRY);
	assert_int_equal(st, 502);

	/* Over LINE_MAX_TEXT characters: cut, the caller's text intact. */
	text = malloc(LINE_MAX_TEXT + 16);
	assert_non_null(text);
	memset(text, 'a', LINE_MAX_TEXT + 10);
	text[LINE_MAX_TEXT + 10] = '\0';
	reply_status(200);
	assert_int_equal(line_reply(c, tiny_httpd_url(), "chtok", "rt2", text,
			     &o, &st),
	    BW_OK);
	assert_int_equal(strlen(text), LINE_MAX_TEXT + 10);
	/* Exactly "text":"<LINE_MAX_TEXT a>"}]} went out. */
	memcpy(text, "\"text\":\"", 8);
	memset(text + 8, 'a', LINE_MAX_TEXT);
	memcpy(text + 8 + LINE_MAX_TEXT, "\"}]}", 5);
	assert_non_null(strstr(tiny_httpd_last(), text));
	free(text);

	/* Nothing listens: retry, no status. */
	port = tiny_httpd_dead_port();
	assert_true(port > 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
	assert_int_equal(line_reply(c, url, "chtok", "rt3", "x", &o, &st),
	    BW_EUPSTREAM);
	assert_int_equal(o, LINE_RETRY);
	assert_int_equal(st, 0);
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
		cmocka_unit_test(test_line_text_len),
		cmocka_unit_test(test_line_body),
		cmocka_unit_test(test_line_status_outcome),
		cmocka_unit_test(test_line_turn_refusal),
		cmocka_unit_test(test_line_reply),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
