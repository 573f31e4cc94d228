/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of lib/metrics: registration rules, counts that add up across
 * forked children, and the shape of the Prometheus text (HELP and TYPE once
 * per family, cumulative buckets, +Inf equal to _count).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <sys/types.h>
#include <sys/wait.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/limits.h"
#include "core/metrics.h"

static int
setup(void **state)
{
	(void)state;
	return metrics_init() == BW_OK ? 0 : -1;
}

struct name_case {
	const char *s;
	int	    want;
};

static const struct name_case name_cases[] = {
	{ "bw_http_requests_total", 1 },
	{ "a", 1 },
	{ "_x", 1 },
	{ ":x:y", 1 },
	{ "A9_:", 1 },
	{ "", 0 },
	{ "9a", 0 },
	{ "a-b", 0 },
	{ "a b", 0 },
	{ "a.b", 0 },
	{ "a{b}", 0 },
	{ "\xc3\xa9", 0 },
};

struct label_case {
	const char *s;
	int	    hist;
	int	    want;
};

static const struct label_case label_cases[] = {
	{ "", 0, 1 },
	{ "route=\"health\"", 0, 1 },
	{ "route=\"health\",code=\"2xx\"", 0, 1 },
	{ "a=\"\"", 0, 1 },
	{ "a=\"x\\\"y\\\\z\\n\"", 0, 1 },
	{ "_a1=\"v\"", 0, 1 },
	{ "le=\"1\"", 0, 1 },
	{ "le=\"1\"", 1, 0 },
	{ "route=health", 0, 0 },
	{ "route=\"health\",", 0, 0 },
	{ ",route=\"health\"", 0, 0 },
	{ "route=\"health", 0, 0 },
	{ "route=\"a\"b\"", 0, 0 },
	{ "route=\"a\nb\"", 0, 0 },
	{ "route=\"a\\qb\"", 0, 0 },
	{ "route=\"a\\", 0, 0 },
	{ "__name__=\"x\"", 0, 0 },
	{ "1a=\"x\"", 0, 0 },
	{ "a-b=\"x\"", 0, 0 },
	{ "a =\"x\"", 0, 0 },
	{ "=\"x\"", 0, 0 },
};

static void
test_names_and_labels(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(name_cases) / sizeof(name_cases[0]); i++)
		if (metrics_name_ok(name_cases[i].s) != name_cases[i].want)
			fail_msg("name case %zu: %s", i, name_cases[i].s);
	for (i = 0; i < sizeof(label_cases) / sizeof(label_cases[0]); i++)
		if (metrics_labels_ok(label_cases[i].s, label_cases[i].hist) !=
		    label_cases[i].want)
			fail_msg("label case %zu: %s", i, label_cases[i].s);
}

static void
test_register_rules(void **state)
{
	static const double b[] = { 0.1, 1 };
	static const double unsorted[] = { 1, 0.1 };
	static const double dup[] = { 0.1, 0.1 };
	int		    a, c, h;

	(void)state;
	a = metrics_counter("x_total", "X.", "k=\"1\"");
	assert_true(a >= 0);
	c = metrics_counter("x_total", "X.", "k=\"2\"");
	assert_true(c >= 0 && c != a);
	/* same series again, other help, other type */
	assert_int_equal(metrics_counter("x_total", "X.", "k=\"1\""), -1);
	assert_int_equal(metrics_counter("x_total", "Other.", "k=\"3\""), -1);
	assert_int_equal(metrics_gauge("x_total", "X.", "k=\"3\""), -1);
	assert_int_equal(metrics_counter("bad-name", "X.", NULL), -1);
	assert_int_equal(metrics_counter("y_total", "Y.", "k=1"), -1);
	/* histograms: bounds ascending, finite, 1..max */
	assert_int_equal(metrics_histogram("h_seconds", "H.", NULL, unsorted,
			     2),
	    -1);
	assert_int_equal(metrics_histogram("h_seconds", "H.", NULL, dup, 2),
	    -1);
	assert_int_equal(metrics_histogram("h_seconds", "H.", NULL, b, 0), -1);
	assert_int_equal(metrics_histogram("h_seconds", "H.", NULL, NULL, 2),
	    -1);
	assert_int_equal(metrics_histogram("h_seconds", "H.", "le=\"1\"", b, 2),
	    -1);
	h = metrics_histogram("h_seconds", "H.", NULL, b, 2);
	assert_true(h >= 0);
	/* find: NULL and "" are the same empty label set */
	assert_int_equal(metrics_find("x_total", "k=\"2\""), c);
	assert_int_equal(metrics_find("h_seconds", ""), h);
	assert_int_equal(metrics_find("h_seconds", NULL), h);
	assert_int_equal(metrics_find("nope", NULL), -1);
	/* updates of the wrong type are ignored */
	metrics_observe(a, 1.0);
	metrics_gauge_set(a, 5);
	metrics_inc(h);
	metrics_inc(-1);
	metrics_inc(9999);
	assert_int_equal(metrics_value(a), 0);
	assert_int_equal(metrics_value(h), 0);
	/* init resets */
	assert_int_equal(metrics_init(), BW_OK);
	assert_int_equal(metrics_find("x_total", "k=\"2\""), -1);
}

static void
test_cells_run_out(void **state)
{
	char lab[64];
	int  i, id = 0, n = 0;

	(void)state;
	/* 4096 cells / 17 per latency histogram: 240 fit, then -1. */
	for (i = 0; i < BW_MAX_METRIC_SERIES && id >= 0; i++) {
		snprintf(lab, sizeof(lab), "i=\"%d\"", i);
		id = metrics_histogram("fill_seconds", "Fill.", lab,
		    metrics_latency_bounds, metrics_latency_nbounds);
		if (id >= 0)
			n++;
	}
	assert_int_equal(id, -1);
	assert_int_equal(n,
	    BW_MAX_METRIC_SLOTS / (metrics_latency_nbounds + 2));
}

static void
test_counter_gauge_values(void **state)
{
	int c, g;

	(void)state;
	c = metrics_counter("c_total", "C.", NULL);
	g = metrics_gauge("g", "G.", NULL);
	metrics_inc(c);
	metrics_add(c, 41);
	assert_int_equal(metrics_value(c), 42);
	metrics_gauge_set(g, 10);
	metrics_gauge_add(g, -15);
	assert_int_equal(metrics_value(g), -5);
}

/* Four children add 10000 each to one shared counter and histogram. */
static void
test_fork_children_add_up(void **state)
{
	pid_t pids[4];
	int   c, h, i, k, st;

	(void)state;
	c = metrics_counter("forked_total", "Forked.", NULL);
	h = metrics_histogram("forked_seconds", "Forked.", NULL,
	    metrics_latency_bounds, metrics_latency_nbounds);
	assert_true(c >= 0 && h >= 0);
	for (i = 0; i < 4; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			for (k = 0; k < 10000; k++) {
				metrics_inc(c);
				metrics_observe(h, 0.001);
			}
			_exit(0);
		}
	}
	for (i = 0; i < 4; i++) {
		assert_int_equal(waitpid(pids[i], &st, 0), pids[i]);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	assert_int_equal(metrics_value(c), 40000);
	assert_int_equal(metrics_value(h), 40000);
}

static void
test_render_exact(void **state)
{
	static const double b[] = { 0.005, 0.1, 2.5 };
	static const char   want[] =
	    "# HELP req_total Requests by route.\n"
	    "# TYPE req_total counter\n"
	    "req_total{route=\"health\",code=\"2xx\"} 3\n"
	    "req_total{route=\"x\",code=\"5xx\"} 0\n"
	    "# HELP up_children Live children; a \\\\ and a \\n escaped.\n"
	    "# TYPE up_children gauge\n"
	    "up_children -2\n"
	    "# HELP lat_seconds Latency.\n"
	    "# TYPE lat_seconds histogram\n"
	    "lat_seconds_bucket{route=\"health\",le=\"0.005\"} 2\n"
	    "lat_seconds_bucket{route=\"health\",le=\"0.1\"} 3\n"
	    "lat_seconds_bucket{route=\"health\",le=\"2.5\"} 3\n"
	    "lat_seconds_bucket{route=\"health\",le=\"+Inf\"} 4\n"
	    "lat_seconds_sum{route=\"health\"} 40.105000\n"
	    "lat_seconds_count{route=\"health\"} 4\n"
	    "lat_seconds_bucket{le=\"0.005\"} 0\n"
	    "lat_seconds_bucket{le=\"0.1\"} 0\n"
	    "lat_seconds_bucket{le=\"2.5\"} 0\n"
	    "lat_seconds_bucket{le=\"+Inf\"} 0\n"
	    "lat_seconds_sum 0.000000\n"
	    "lat_seconds_count 0\n";
	struct buf out;
	int	   r1, r2, g, h;

	(void)state;
	r1 = metrics_counter("req_total", "Requests by route.",
	    "route=\"health\",code=\"2xx\"");
	g = metrics_gauge("up_children",
	    "Live children; a \\ and a \n escaped.", NULL);
	h = metrics_histogram("lat_seconds", "Latency.", "route=\"health\"", b,
	    3);
	/* A later series of an earlier family renders with its family. */
	r2 = metrics_counter("req_total", "Requests by route.",
	    "route=\"x\",code=\"5xx\"");
	assert_true(
	    metrics_histogram("lat_seconds", "Latency.", "", b, 3) >= 0);
	assert_true(r1 >= 0 && r2 >= 0 && g >= 0 && h >= 0);
	metrics_add(r1, 3);
	metrics_gauge_set(g, -2);
	metrics_observe(h, 0.001);
	metrics_observe(h, 0.005); /* le is inclusive */
	metrics_observe(h, 0.099);
	metrics_observe(h, 40.0);
	buf_init(&out, 64 * 1024);
	assert_int_equal(metrics_render(&out), BW_OK);
	assert_string_equal(buf_cstr(&out), want);
	/* Too small a buffer: error, output as it was. */
	buf_free(&out);
	buf_init(&out, 100);
	assert_int_equal(buf_addstr(&out, "pre"), BW_OK);
	assert_int_equal(metrics_render(&out), BW_ETOOBIG);
	assert_string_equal(buf_cstr(&out), "pre");
	buf_free(&out);
}

/* Value of a `name{...} v` sample line. */
static unsigned long long
sample_value(const char *line)
{
	const char *sp = strrchr(line, ' ');

	assert_non_null(sp);
	return strtoull(sp + 1, NULL, 10);
}

/*
 * A bigger registry rendered and read back line by line: each family has
 * one HELP and one TYPE, before its samples; buckets never go down; the
 * +Inf bucket equals _count.
 */
static void
test_render_structure(void **state)
{
	static const char *const routes[] = { "a", "b", "c" };
	struct buf		 out;
	char			*text, *line, *nl, lab[64];
	char			 fam[BW_MAX_METRIC_NAME + 1] = "";
	int		   i, k, id, nhelp = 0, ntype = 0, nfam = 0, ninf = 0;
	unsigned long long prev = 0, v, inf = 0;

	(void)state;
	for (i = 0; i < 3; i++) {
		snprintf(lab, sizeof(lab), "route=\"%s\"", routes[i]);
		id = metrics_counter("http_total", "HTTP.", lab);
		metrics_add(id, (uint64_t)i);
		id = metrics_histogram("http_seconds", "HTTP time.", lab,
		    metrics_latency_bounds, metrics_latency_nbounds);
		for (k = 0; k < 100; k++)
			metrics_observe(id, (double)k * 0.007 * (i + 1));
		id = metrics_gauge("depth", "Depth.", lab);
		metrics_gauge_set(id, i);
	}
	buf_init(&out, BW_MAX_RESPONSE);
	assert_int_equal(metrics_render(&out), BW_OK);
	text = buf_take(&out);
	for (line = text; *line != '\0'; line = nl + 1) {
		nl = strchr(line, '\n');
		assert_non_null(nl);
		*nl = '\0';
		if (strncmp(line, "# HELP ", 7) == 0) {
			nhelp++;
			nfam++;
			continue;
		}
		if (strncmp(line, "# TYPE ", 7) == 0) {
			ntype++;
			snprintf(fam, sizeof(fam), "%.*s",
			    (int)strcspn(line + 7, " "), line + 7);
			continue;
		}
		/* every sample belongs to the family announced last */
		assert_int_equal(strncmp(line, fam, strlen(fam)), 0);
		if (strstr(line, "_bucket{") != NULL) {
			v = sample_value(line);
			if (strstr(line, "le=\"0.0005\"") == NULL)
				assert_true(v >= prev);
			prev = v;
			if (strstr(line, "le=\"+Inf\"") != NULL) {
				inf = v;
				ninf++;
			}
		} else if (strstr(line, "_count{") != NULL)
			assert_int_equal(sample_value(line), inf);
	}
	assert_int_equal(nfam, 3);
	assert_int_equal(nhelp, 3);
	assert_int_equal(ntype, 3);
	assert_int_equal(ninf, 3);
	free(text);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names_and_labels),
		cmocka_unit_test_setup(test_register_rules, setup),
		cmocka_unit_test_setup(test_cells_run_out, setup),
		cmocka_unit_test_setup(test_counter_gauge_values, setup),
		cmocka_unit_test_setup(test_fork_children_add_up, setup),
		cmocka_unit_test_setup(test_render_exact, setup),
		cmocka_unit_test_setup(test_render_structure, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
