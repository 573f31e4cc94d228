/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for lib/core/log.c: output is captured through log_set_fd() on a
 * temporary file; every line must parse as one JSON object with the
 * promised fields, and no PII or credential may appear in the raw bytes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <json-c/json.h>

#include "core/limits.h"
#include "core/log.h"

static int  cap_fd = -1;
static char cap_path[] = "/tmp/bw-test-log-XXXXXX";

static int
cap_setup(void **state)
{
	(void)state;
	cap_fd = mkstemp(cap_path);
	if (cap_fd < 0)
		return -1;
	unlink(cap_path);
	log_init("test-svc", LL_DEBUG);
	log_ctx_clear();
	log_set_fd(cap_fd);
	return 0;
}

static int
cap_teardown(void **state)
{
	(void)state;
	log_set_fd(-1);
	close(cap_fd);
	memcpy(cap_path + sizeof(cap_path) - 7, "XXXXXX", 6);
	return 0;
}

/* Everything written so far; caller frees. */
static char *
cap_read(size_t *lenp)
{
	off_t	end;
	char   *p;
	ssize_t r;

	end = lseek(cap_fd, 0, SEEK_END);
	assert_true(end >= 0);
	p = malloc((size_t)end + 1);
	assert_non_null(p);
	r = pread(cap_fd, p, (size_t)end, 0);
	assert_int_equal(r, end);
	p[end] = '\0';
	if (lenp != NULL)
		*lenp = (size_t)end;
	return p;
}

/* Empties the capture file and rewinds it. */
static void
cap_reset(void)
{
	assert_int_equal(ftruncate(cap_fd, 0), 0);
	assert_int_equal(lseek(cap_fd, 0, SEEK_SET), 0);
}

static size_t
count_nl(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		if (*s == '\n')
			n++;
	return n;
}

/* The only line written so far, parsed; asserts there is exactly one. */
static struct json_object *
cap_one(char **rawp)
{
	struct json_object *o;
	char		   *raw;
	size_t		    len;

	raw = cap_read(&len);
	assert_true(len > 0);
	assert_int_equal(count_nl(raw), 1);
	assert_int_equal(raw[len - 1], '\n');
	o = json_tokener_parse(raw);
	if (o == NULL)
		fail_msg("not JSON: %s", raw);
	assert_true(json_object_is_type(o, json_type_object));
	if (rawp != NULL)
		*rawp = raw;
	else
		free(raw);
	return o;
}

static const char *
field(struct json_object *o, const char *k)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, k, &v))
		return NULL;
	return json_object_get_string(v);
}

static void
test_log_base_fields(void **state)
{
	struct json_object *o, *v;
	const char	   *ts;

	(void)state;
	log_kv(LL_INFO, "hello", "k", "v", NULL);
	o = cap_one(NULL);
	ts = field(o, "ts");
	assert_non_null(ts);
	/* 2024-01-15T10:30:00.123Z */
	assert_int_equal(strlen(ts), 24);
	assert_int_equal(ts[10], 'T');
	assert_int_equal(ts[19], '.');
	assert_int_equal(ts[23], 'Z');
	assert_string_equal(field(o, "level"), "info");
	assert_string_equal(field(o, "msg"), "hello");
	assert_string_equal(field(o, "service"), "test-svc");
	assert_true(json_object_object_get_ex(o, "pid", &v));
	assert_true(json_object_is_type(v, json_type_int));
	assert_int_equal(json_object_get_int(v), getpid());
	assert_string_equal(field(o, "k"), "v");
	assert_null(field(o, "request_id"));
	json_object_put(o);
}

static void
test_log_context(void **state)
{
	struct json_object *o;

	(void)state;
	log_ctx_set(LC_REQUEST_ID, "req-1");
	log_ctx_set(LC_CORRELATION_ID, "corr-1");
	log_ctx_set(LC_ORG_ID, "org-1");
	log_ctx_set(LC_USER_ID, "user-1");
	log_ctx_set(LC_JOB_ID, "42");
	log_kv(LL_WARN, "ctx", NULL);
	o = cap_one(NULL);
	assert_string_equal(field(o, "level"), "warn");
	assert_string_equal(field(o, "request_id"), "req-1");
	assert_string_equal(field(o, "correlation_id"), "corr-1");
	assert_string_equal(field(o, "org_id"), "org-1");
	assert_string_equal(field(o, "user_id"), "user-1");
	assert_string_equal(field(o, "job_id"), "42");
	json_object_put(o);
	cap_reset();
	log_ctx_set(LC_ORG_ID, NULL);
	log_kv(LL_WARN, "ctx", NULL);
	o = cap_one(NULL);
	assert_null(field(o, "org_id"));
	assert_string_equal(field(o, "request_id"), "req-1");
	json_object_put(o);
	cap_reset();
	log_ctx_clear();
	log_kv(LL_WARN, "ctx", NULL);
	o = cap_one(NULL);
	assert_null(field(o, "request_id"));
	json_object_put(o);
}

static void
test_log_no_pii_no_credentials(void **state)
{
	static const char *const secrets[] = {
		"s3cr3t-abc",
		"somchai@example.com",
		"081-234-5678",
		"bwk_0123456789abcdef",
		"hunter2",
		"sid=abcdef",
		"Ab1x",
		"whsec_abcdefghijkl",
	};
	struct json_object *o, *f;
	char		   *raw;
	size_t		    i;

	(void)state;
	log_kv(LL_ERROR, "login by somchai@example.com 081-234-5678",
	    "authorization", "Bearer s3cr3t-abc", "Authorization", "Basic Ab1x",
	    "COOKIE", "sid=abcdef", "x-api-key", "bwk_0123456789abcdef",
	    "password", "hunter2", "webhook_secret", "whsec_abcdefghijkl",
	    "detail", "key bwk_0123456789abcdef from 081-234-5678", NULL);
	o = cap_one(&raw);
	for (i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++)
		if (strstr(raw, secrets[i]) != NULL)
			fail_msg("\"%s\" leaked: %s", secrets[i], raw);
	assert_string_equal(field(o, "authorization"), "[REDACTED]");
	assert_string_equal(field(o, "password"), "[REDACTED]");
	assert_string_equal(field(o, "msg"),
	    "login by [REDACTED:email] [REDACTED:phone]");
	assert_string_equal(field(o, "detail"),
	    "key [REDACTED:token] from [REDACTED:phone]");
	json_object_put(o);
	free(raw);

	/* The same through log_json, nested. */
	cap_reset();
	f = json_object_new_object();
	json_object_object_add(f, "token", json_object_new_string("hunter2"));
	json_object_object_add(f, "headers",
	    json_tokener_parse("{\"Cookie\":\"sid=abcdef\",\"accept\":\"*/*\","
			       "\"list\":[\"somchai@example.com\",1]}"));
	log_json(LL_INFO, "nested", f);
	o = cap_one(&raw);
	for (i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++)
		if (strstr(raw, secrets[i]) != NULL)
			fail_msg("\"%s\" leaked: %s", secrets[i], raw);
	assert_non_null(strstr(raw, "\"Cookie\":\"[REDACTED]\""));
	assert_non_null(strstr(raw, "[\"[REDACTED:email]\",1]"));
	assert_non_null(strstr(raw, "\"accept\":\"*/*\""));
	json_object_put(o);
	free(raw);
}

static void
test_log_one_line_per_call(void **state)
{
	struct json_object *o;

	(void)state;
	log_kv(LL_INFO, "line1\nline2\r\n{\"level\":\"error\"}", "v",
	    "a\nb\rc\x01", "k\nx", "y", NULL);
	o = cap_one(NULL);
	assert_string_equal(field(o, "msg"),
	    "line1\\nline2\\r\\n{\"level\":\"error\"}");
	assert_string_equal(field(o, "v"), "a\\nb\\rc\\x01");
	assert_string_equal(field(o, "k\\nx"), "y");
	json_object_put(o);
}

static void
test_log_json_types(void **state)
{
	struct json_object *f, *o, *v;

	(void)state;
	f = json_object_new_object();
	json_object_object_add(f, "n", json_object_new_int64(1234567890123LL));
	json_object_object_add(f, "b", json_object_new_boolean(1));
	json_object_object_add(f, "d", json_object_new_double(1.5));
	json_object_object_add(f, "nan", json_object_new_double(NAN));
	json_object_object_add(f, "nul", NULL);
	json_object_object_add(f, "input_tokens", json_object_new_int(7));
	json_object_object_add(f, "level", json_object_new_string("fake"));
	log_json(LL_INFO, "types", f);
	o = cap_one(NULL);
	assert_true(json_object_object_get_ex(o, "n", &v));
	assert_true(json_object_is_type(v, json_type_int));
	assert_int_equal(json_object_get_int64(v), 1234567890123LL);
	assert_true(json_object_object_get_ex(o, "b", &v));
	assert_true(json_object_is_type(v, json_type_boolean));
	assert_true(json_object_object_get_ex(o, "d", &v));
	assert_true(json_object_is_type(v, json_type_double));
	assert_true(json_object_get_double(v) == 1.5);
	assert_true(json_object_object_get_ex(o, "nan", &v));
	assert_null(v);
	assert_true(json_object_object_get_ex(o, "nul", &v));
	assert_null(v);
	/* input_tokens is not a credential; "level" may not be shadowed. */
	assert_true(json_object_object_get_ex(o, "input_tokens", &v));
	assert_int_equal(json_object_get_int(v), 7);
	assert_string_equal(field(o, "level"), "info");
	assert_string_equal(field(o, "_level"), "fake");
	json_object_put(o);
}

static void
test_log_level_filter(void **state)
{
	char *raw;

	(void)state;
	log_init(NULL, LL_WARN);
	log_kv(LL_DEBUG, "dbg", NULL);
	log_kv(LL_INFO, "inf", NULL);
	log_json(LL_INFO, "inf", json_object_new_object());
	raw = cap_read(NULL);
	assert_string_equal(raw, "");
	free(raw);
	log_kv(LL_ERROR, "err", NULL);
	raw = cap_read(NULL);
	assert_int_equal(count_nl(raw), 1);
	free(raw);
	log_init(NULL, LL_DEBUG);
	assert_int_equal(log_level_parse("debug"), LL_DEBUG);
	assert_int_equal(log_level_parse("info"), LL_INFO);
	assert_int_equal(log_level_parse("warn"), LL_WARN);
	assert_int_equal(log_level_parse("error"), LL_ERROR);
	assert_int_equal(log_level_parse("verbose"), -1);
	assert_int_equal(log_level_parse(NULL), -1);
}

static void
test_log_caps(void **state)
{
	struct json_object *o;
	char		   *big, *raw, key[16];
	const char	   *v;
	size_t		    len;
	int		    i;

	(void)state;
	big = malloc(100000);
	assert_non_null(big);
	memset(big, 'x', 99999);
	big[99999] = '\0';
	log_kv(LL_INFO, big, "v", big, NULL);
	o = cap_one(NULL);
	v = field(o, "msg");
	assert_true(strlen(v) <= BW_MAX_LOG_VALUE);
	assert_non_null(strstr(v, "[truncated]"));
	assert_true(strlen(field(o, "v")) <= BW_MAX_LOG_VALUE);
	json_object_put(o);
	cap_reset();

	/* Many fields: the line stops at the cap and says so. */
	o = json_object_new_object();
	for (i = 0; i < 40; i++) {
		snprintf(key, sizeof(key), "f%d", i);
		json_object_object_add(o, key, json_object_new_string(big));
	}
	log_json(LL_INFO, "many", o);
	o = cap_one(&raw);
	len = strlen(raw);
	assert_true(len <= BW_MAX_LOG_LINE);
	assert_non_null(field(o, "f0"));
	assert_null(field(o, "f39"));
	assert_string_equal(field(o, "truncated"), "true");
	json_object_put(o);
	free(raw);
	free(big);
}

static void
test_log_invalid_utf8_and_errno(void **state)
{
	struct json_object *o;

	(void)state;
	errno = ENOENT;
	log_kv(LL_INFO, "bad \xff\xfe ไทย", "v", "\xc3", NULL);
	assert_int_equal(errno, ENOENT);
	o = cap_one(NULL);
	assert_string_equal(field(o, "msg"),
	    "bad \xef\xbf\xbd\xef\xbf\xbd ไทย");
	json_object_put(o);
}

/*
 * Eight processes log 200 lines of up to 12 KiB each to one O_APPEND file:
 * every line must parse whole, so no line was split by another's write.
 */
static void
test_log_no_interleave(void **state)
{
	char   path[] = "/tmp/bw-test-log-par-XXXXXX", *val, *line;
	char  *all, *save;
	int    fd, p, i, st;
	size_t n, lines = 0;
	pid_t  pids[8];
	off_t  end;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	fd = open(path, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	for (p = 0; p < 8; p++) {
		pids[p] = fork();
		assert_true(pids[p] >= 0);
		if (pids[p] != 0)
			continue;
		log_set_fd(fd);
		val = malloc(2000);
		for (i = 0; i < 200; i++) {
			n = 100 + (size_t)((i * 37 + p * 11) % 1800);
			memset(val, 'a' + p, n);
			val[n] = '\0';
			log_kv(LL_INFO, "par", "a", val, "b", val, "c", val,
			    "d", val, "e", val, "f", val, NULL);
		}
		_exit(0);
	}
	for (p = 0; p < 8; p++) {
		assert_int_equal(waitpid(pids[p], &st, 0), pids[p]);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	close(fd);
	fd = open(path, O_RDONLY);
	unlink(path);
	end = lseek(fd, 0, SEEK_END);
	all = malloc((size_t)end + 1);
	assert_int_equal(pread(fd, all, (size_t)end, 0), end);
	all[end] = '\0';
	close(fd);
	for (line = all; *line != '\0'; line = save + 1) {
		struct json_object *o;

		save = strchr(line, '\n');
		assert_non_null(save); /* every line is complete */
		*save = '\0';
		o = json_tokener_parse(line);

		if (o == NULL)
			fail_msg("line %zu not JSON", lines);
		json_object_put(o);
		lines++;
	}
	assert_int_equal(lines, 8 * 200);
	free(all);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_log_base_fields, cap_setup,
		    cap_teardown),
		cmocka_unit_test_setup_teardown(test_log_context, cap_setup,
		    cap_teardown),
		cmocka_unit_test_setup_teardown(test_log_no_pii_no_credentials,
		    cap_setup, cap_teardown),
		cmocka_unit_test_setup_teardown(test_log_one_line_per_call,
		    cap_setup, cap_teardown),
		cmocka_unit_test_setup_teardown(test_log_json_types, cap_setup,
		    cap_teardown),
		cmocka_unit_test_setup_teardown(test_log_level_filter,
		    cap_setup, cap_teardown),
		cmocka_unit_test_setup_teardown(test_log_caps, cap_setup,
		    cap_teardown),
		cmocka_unit_test_setup_teardown(test_log_invalid_utf8_and_errno,
		    cap_setup, cap_teardown),
		cmocka_unit_test(test_log_no_interleave),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
