/* SPDX-License-Identifier: MIT */
/*
 * Route matching: literal paths, placeholders, 404 vs 405 with Allow; the
 * table dump (bulwark-fcgi --routes).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "route.h"

static void
h_a(struct req *r)
{
	(void)r;
}

#define R(m, p, n)                                                          \
	{                                                                   \
		.method = (m), .pattern = (p), .name = (n), .auth = RA_KEY, \
		.min_role = AR_MEMBER, .fn = h_a                            \
	}

static const struct route tbl[] = {
	R("GET", "/health", "health"),
	R("GET", "/api/v1/exports/{}", "export_get"),
	R("POST", "/api/v1/exports/{}/cancel", "export_cancel"),
	R("GET", "/api/v1/chat/sessions/{}/{}", "sess_get"),
	R("DELETE", "/api/v1/chat/sessions/{}/{}", "sess_del"),
};
#define NT (sizeof(tbl) / sizeof(tbl[0]))

struct rcase {
	const char	 *method;
	const char	 *path;
	enum route_result want;
	const char	 *name; /* on match */
	int		  nargs;
	const char	 *arg0, *arg1;
	const char	 *allow; /* on RR_METHOD */
};

static const struct rcase cases[] = {
	{ "GET", "/health", RR_MATCH, "health", 0, NULL, NULL, NULL },
	{ "HEAD", "/health", RR_MATCH, "health", 0, NULL, NULL, NULL },
	{ "POST", "/health", RR_METHOD, NULL, 0, NULL, NULL, "GET" },
	{ "GET", "/health/", RR_NOT_FOUND, NULL, 0, NULL, NULL, NULL },
	{ "GET", "/healthz", RR_NOT_FOUND, NULL, 0, NULL, NULL, NULL },
	{ "GET", "/", RR_NOT_FOUND, NULL, 0, NULL, NULL, NULL },
	{ "GET", "", RR_NOT_FOUND, NULL, 0, NULL, NULL, NULL },
	{ "GET", "/api/v1/exports/abc", RR_MATCH, "export_get", 1, "abc", NULL,
	    NULL },
	{ "GET", "/api/v1/exports/", RR_NOT_FOUND, NULL, 0, NULL, NULL, NULL },
	{ "GET", "/api/v1/exports/a b", RR_NOT_FOUND, NULL, 0, NULL, NULL,
	    NULL },
	{ "GET", "/api/v1/exports/a\x01", RR_NOT_FOUND, NULL, 0, NULL, NULL,
	    NULL },
	{ "POST", "/api/v1/exports/x1/cancel", RR_MATCH, "export_cancel", 1,
	    "x1", NULL, NULL },
	{ "GET", "/api/v1/exports/x1/cancel", RR_METHOD, NULL, 0, NULL, NULL,
	    "POST" },
	{ "PUT", "/api/v1/chat/sessions/line/U123", RR_METHOD, NULL, 0, NULL,
	    NULL, "GET, DELETE" },
	{ "DELETE", "/api/v1/chat/sessions/line/U123", RR_MATCH, "sess_del", 2,
	    "line", "U123", NULL },
	{ "GET", "/api/v1/chat/sessions/web/\xe0\xb8\x81", RR_MATCH, "sess_get",
	    2, "web", "\xe0\xb8\x81", NULL },
};

static void
test_cases(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct rcase *c = &cases[i];
		const struct route *out = NULL;
		struct req	    r;
		char		    allow[64];
		enum route_result   rr;

		memset(&r, 0, sizeof(r));
		rr = route_match(tbl, NT, c->method, c->path, &r, &out, allow,
		    sizeof(allow));
		assert_int_equal(rr, c->want);
		if (rr == RR_MATCH) {
			assert_string_equal(out->name, c->name);
			assert_int_equal(r.nargs, c->nargs);
			if (c->arg0)
				assert_string_equal(r.args[0], c->arg0);
			if (c->arg1)
				assert_string_equal(r.args[1], c->arg1);
		}
		if (rr == RR_METHOD)
			assert_string_equal(allow, c->allow);
	}
}

static void
test_long_segment(void **state)
{
	const struct route *out = NULL;
	struct req	    r;
	char		    path[512], allow[64];

	(void)state;
	memset(&r, 0, sizeof(r));
	memcpy(path, "/api/v1/exports/", 16);
	memset(path + 16, 'a', REQ_MAX_ARG);
	path[16 + REQ_MAX_ARG] = '\0';
	assert_int_equal(route_match(tbl, NT, "GET", path, &r, &out, allow,
			     sizeof(allow)),
	    RR_MATCH);
	path[16 + REQ_MAX_ARG] = 'a';
	path[17 + REQ_MAX_ARG] = '\0';
	assert_int_equal(route_match(tbl, NT, "GET", path, &r, &out, allow,
			     sizeof(allow)),
	    RR_NOT_FOUND);
}

/* route_dump(): one exact JSON line per row. */
static void
test_dump(void **state)
{
	static const struct rl_rule rate[] = {
		{ .scope = RL_ORG, .limit = 10, .window_s = 3600 },
		{ .scope = RL_IP, .limit = 5, .window_s = 10 },
		{ .limit = 0 },
	};
	static const struct route t[] = {
		{ .method = "GET",
		    .pattern = "/api/v1/metrics/exports",
		    .name = "m",
		    .auth = RA_KEY,
		    .min_role = AR_ADMIN,
		    .fn = h_a },
		{ .method = "POST",
		    .pattern = "/api/v1/x/{}",
		    .name = "x",
		    .auth = RA_NONE,
		    .max_body = 1024,
		    .fn = h_a,
		    .flags = ROUTE_IDEMPOTENT | ROUTE_ACTION,
		    .rate = rate },
	};
	static const char *const pools[] = { "chat", "api" };
	char			 out[1024];
	FILE			*f = fmemopen(out, sizeof(out), "w");
	long			 n;

	(void)state;
	assert_non_null(f);
	assert_int_equal(route_dump(t, 2, NULL, f), 0);
	n = ftell(f);
	assert_true(n > 0 && (size_t)n < sizeof(out));
	fclose(f);
	out[n] = '\0';
	assert_string_equal(out,
	    "{\"method\":\"GET\",\"pattern\":\"/api/v1/metrics/exports\","
	    "\"name\":\"m\",\"auth\":\"key\",\"min_role\":\"admin\","
	    "\"flags\":[],\"max_body\":0,\"rate\":null}\n"
	    "{\"method\":\"POST\",\"pattern\":\"/api/v1/x/{}\","
	    "\"name\":\"x\",\"auth\":\"none\",\"min_role\":null,"
	    "\"flags\":[\"idempotent\",\"action\"],\"max_body\":1024,"
	    "\"rate\":[{\"scope\":\"org\",\"limit\":10,\"window_s\":3600},"
	    "{\"scope\":\"ip\",\"limit\":5,\"window_s\":10}]}\n");

	/* With pools: each line ends with its route's pool. */
	f = fmemopen(out, sizeof(out), "w");
	assert_non_null(f);
	assert_int_equal(route_dump(t, 1, pools, f), 0);
	n = ftell(f);
	assert_true(n > 0 && (size_t)n < sizeof(out));
	fclose(f);
	out[n] = '\0';
	assert_non_null(strstr(out, ",\"rate\":null,\"pool\":\"chat\"}\n"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_long_segment),
		cmocka_unit_test(test_dump),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
