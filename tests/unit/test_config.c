/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for lib/core/config.c: defaults, file syntax, environment over file,
 * secrets from files, bounds, and error messages that name the key and the
 * source of the bad value.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/limits.h"

static const char *const envs[] = {
	"BULWARK_FCGI_SOCKET",
	"BULWARK_FCGI_SOCKET_MODE",
	"BULWARK_FCGI_BACKLOG",
	"BULWARK_FCGI_CHILDREN",
	"BULWARK_FCGI_MAX_REQUESTS",
	"BULWARK_FCGI_CHAT_SOCKET",
	"BULWARK_DRAIN_TIMEOUT_S",
	"BULWARK_PID_FILE",
	"BULWARK_DATABASE_URL",
	"BULWARK_REDIS_URL",
	"BULWARK_DB_STATEMENT_TIMEOUT_MS",
	"BULWARK_LOG_LEVEL",
	"BULWARK_LLM_BASE_URL",
	"BULWARK_LLM_API_KEY",
	"BULWARK_LLM_API_KEY_FILE",
	"BULWARK_JOB_LEASE_S",
	"BULWARK_JOB_MAX_ATTEMPTS",
	"BULWARK_JOB_RETENTION_DAYS",
	"BULWARK_SQL_DIR",
	"BULWARK_STORAGE_DIR",
	"BULWARK_LINE_CHANNEL_TOKEN",
	"BULWARK_LINE_CHANNEL_TOKEN_FILE",
};

static char tmpdir[] = "/tmp/bw-test-config-XXXXXX";
static char cfgpath[512];
static char secpath[512];

static int
setup(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(envs) / sizeof(envs[0]); i++)
		unsetenv(envs[i]);
	memcpy(tmpdir + sizeof(tmpdir) - 7, "XXXXXX", 6);
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	snprintf(cfgpath, sizeof(cfgpath), "%s/bulwark.conf", tmpdir);
	snprintf(secpath, sizeof(secpath), "%s/llm.key", tmpdir);
	return 0;
}

static int
teardown(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(envs) / sizeof(envs[0]); i++)
		unsetenv(envs[i]);
	unlink(cfgpath);
	unlink(secpath);
	rmdir(tmpdir);
	return 0;
}

static void
writefile(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

/* Loads text as the config file; expects failure; returns the message. */
static const char *
load_fail(const char *text)
{
	static char   err[1024];
	struct config c;

	if (text != NULL)
		writefile(cfgpath, text);
	memset(err, 0, sizeof(err));
	assert_int_equal(config_load(&c, text != NULL ? cfgpath : NULL, err,
			     sizeof(err)),
	    BW_ECONFIG);
	assert_true(strncmp(err, "config: ", 8) == 0);
	/* A failed load leaves nothing allocated. */
	assert_null(c.fcgi_socket);
	assert_null(c.llm_api_key);
	return err;
}

static void
load_ok(struct config *c, const char *text)
{
	char err[1024] = "";

	if (text != NULL)
		writefile(cfgpath, text);
	if (config_load(c, text != NULL ? cfgpath : NULL, err, sizeof(err)) !=
	    BW_OK)
		fail_msg("load failed: %s", err);
}

static void
test_config_defaults(void **state)
{
	struct config c;

	(void)state;
	load_ok(&c, NULL);
	assert_string_equal(c.fcgi_socket, "/run/bulwark/fcgi.sock");
	assert_int_equal(c.fcgi_socket_mode, 0660);
	assert_int_equal(c.fcgi_backlog, 1024);
	assert_int_equal(c.fcgi_children, 8);
	assert_int_equal(c.fcgi_max_requests, 100000);
	assert_int_equal(c.drain_timeout_s, 30);
	assert_string_equal(c.pid_file, "");
	assert_string_equal(c.database_url, "postgresql:///bulwark");
	assert_string_equal(c.redis_url, "redis://127.0.0.1:6379/0");
	assert_int_equal(c.db_statement_timeout_ms, 5000);
	assert_string_equal(c.log_level, "info");
	assert_string_equal(c.llm_base_url, "http://127.0.0.1:18081/v1");
	assert_string_equal(c.llm_api_key, "");
	assert_int_equal(c.job_lease_s, 60);
	assert_int_equal(c.job_max_attempts, 5);
	assert_int_equal(c.job_retention_days, 7);
	assert_int_equal(c.health_job_age_max_s, 900);
	assert_int_equal(c.health_dead_window_s, 86400);
	assert_int_equal(c.health_periodic_grace_s, 300);
	assert_string_equal(c.sql_dir, "/usr/share/bulwark/sql");
	assert_string_equal(c.storage_dir, "/var/lib/bulwark");
	config_free(&c);
	assert_null(c.fcgi_socket);
	config_free(&c); /* twice is harmless */
}

static void
test_config_file_syntax(void **state)
{
	struct config c;

	(void)state;
	load_ok(&c,
	    "# Bulwark\n"
	    "\n"
	    "   # indented comment\n"
	    "fcgi_children = 4\n"
	    "\tfcgi_socket_mode=0600   \n"
	    "database_url = \"postgresql://u:p#x@db/bulwark\"\n"
	    "redis_url   =   redis://r:6379/1\r\n"
	    "log_level = debug\n"
	    "fcgi_children = 16\n"
	    "pid_file =\n"
	    "storage_dir = /srv/x # not a comment");
	assert_int_equal(c.fcgi_children, 16); /* later wins */
	assert_int_equal(c.fcgi_socket_mode, 0600);
	assert_string_equal(c.database_url, "postgresql://u:p#x@db/bulwark");
	assert_string_equal(c.redis_url, "redis://r:6379/1");
	assert_string_equal(c.log_level, "debug");
	assert_string_equal(c.pid_file, "");
	assert_string_equal(c.storage_dir, "/srv/x # not a comment");
	assert_int_equal(c.fcgi_backlog, 1024); /* untouched default */
	config_free(&c);
}

static void
test_config_env_beats_file(void **state)
{
	struct config c;

	(void)state;
	setenv("BULWARK_FCGI_CHILDREN", "12", 1);
	setenv("BULWARK_REDIS_URL", "redis://env:6379/2", 1);
	load_ok(&c,
	    "fcgi_children = 4\nredis_url = redis://file/0\n"
	    "job_lease_s = 90\n");
	assert_int_equal(c.fcgi_children, 12);
	assert_string_equal(c.redis_url, "redis://env:6379/2");
	assert_int_equal(c.job_lease_s, 90);
	config_free(&c);
}

static void
test_config_bad_int_names_key(void **state)
{
	const char *e;
	char	    want[600];

	(void)state;
	e = load_fail("\nfcgi_children = 8x\n");
	snprintf(want, sizeof(want),
	    "config: fcgi_children: must be an "
	    "integer (1..1024) (%s:2)",
	    cfgpath);
	assert_string_equal(e, want);
	e = load_fail("fcgi_backlog = \n");
	assert_non_null(strstr(e, "fcgi_backlog:"));
	e = load_fail("job_max_attempts = 99999999999999999999999\n");
	assert_non_null(strstr(e, "job_max_attempts: out of range"));
	e = load_fail("drain_timeout_s = 1e3\n");
	assert_non_null(strstr(e, "drain_timeout_s:"));
	e = load_fail("fcgi_children = \" 4\"\n");
	assert_non_null(strstr(e, "fcgi_children:"));
	setenv("BULWARK_JOB_LEASE_S", "soon", 1);
	e = load_fail(NULL);
	assert_string_equal(e,
	    "config: job_lease_s: must be an integer "
	    "(5..3600) (env BULWARK_JOB_LEASE_S)");
}

static void
test_config_unknown_key_names_key_and_line(void **state)
{
	const char *e;
	char	    want[600];

	(void)state;
	e = load_fail("# c\nfcgi_children = 2\nfcgi_chidlren = 3\n");
	snprintf(want, sizeof(want),
	    "config: fcgi_chidlren: unknown key "
	    "(%s:3)",
	    cfgpath);
	assert_string_equal(e, want);
	/* _file is only for secrets. */
	e = load_fail("fcgi_socket_file = /etc/passwd\n");
	assert_non_null(strstr(e, "fcgi_socket_file: unknown key"));
	e = load_fail("just words\n");
	assert_non_null(strstr(e, "expected \"key = value\""));
	assert_non_null(strstr(e, ":1)"));
	e = load_fail(" = 3\n");
	assert_non_null(strstr(e, "missing key"));
}

/*
 * A removed key (the deployment-wide LINE channel token) is refused, not
 * ignored, wherever it is set, naming the key and what replaces it.
 */
static void
test_config_removed_key_refused(void **state)
{
	const char *e;
	char	    want[1024];

	(void)state;
	e = load_fail("fcgi_children = 2\nline_channel_token = t0k\n");
	snprintf(want, sizeof(want),
	    "config: line_channel_token: removed; only each org's own token "
	    "answers its LINE users: bulwarkctl prompt set --org ID "
	    "--line-token T (%s:2)",
	    cfgpath);
	assert_string_equal(e, want);
	assert_null(strstr(e, "t0k"));
	e = load_fail("line_channel_token_file = /etc/passwd\n");
	assert_non_null(strstr(e, "line_channel_token: removed;"));
	/* Not a prefix match: a longer name is merely unknown. */
	e = load_fail("line_channel_tokens = x\n");
	assert_non_null(strstr(e, "line_channel_tokens: unknown key"));
	setenv("BULWARK_LINE_CHANNEL_TOKEN", "t0k", 1);
	e = load_fail("fcgi_children = 2\n");
	assert_non_null(strstr(e,
	    "line_channel_token: removed; only each org's own token"));
	assert_non_null(strstr(e, "(env BULWARK_LINE_CHANNEL_TOKEN)"));
	unsetenv("BULWARK_LINE_CHANNEL_TOKEN");
	setenv("BULWARK_LINE_CHANNEL_TOKEN_FILE", "/etc/passwd", 1);
	e = load_fail("fcgi_children = 2\n");
	assert_non_null(strstr(e, "(env BULWARK_LINE_CHANNEL_TOKEN_FILE)"));
}

static void
test_config_secret_from_file(void **state)
{
	struct config c;
	char	      text[700], dump[8192];
	FILE	     *f;
	size_t	      n;

	(void)state;
	writefile(secpath, "sk-file-secret-123\n");
	snprintf(text, sizeof(text), "llm_api_key_file = %s\n", secpath);
	load_ok(&c, text);
	assert_string_equal(c.llm_api_key, "sk-file-secret-123");
	/* --print-config masks the secret. */
	f = tmpfile();
	assert_non_null(f);
	config_dump(&c, fileno(f));
	rewind(f);
	n = fread(dump, 1, sizeof(dump) - 1, f);
	dump[n] = '\0';
	fclose(f);
	assert_null(strstr(dump, "sk-file-secret-123"));
	assert_non_null(strstr(dump, "llm_api_key = ***\n"));
	assert_non_null(strstr(dump, "fcgi_socket_mode = 0660\n"));
	assert_non_null(strstr(dump, "fcgi_children = 8\n"));
	assert_non_null(strstr(dump, "database_url = postgresql:///bulwark\n"));
	config_free(&c);

	/* From the environment's _FILE, CRLF stripped. */
	writefile(secpath, "env-secret\r\n");
	setenv("BULWARK_LLM_API_KEY_FILE", secpath, 1);
	load_ok(&c, NULL);
	assert_string_equal(c.llm_api_key, "env-secret");
	config_free(&c);

	/* Both forms in the environment: ambiguous, refused. */
	setenv("BULWARK_LLM_API_KEY", "direct", 1);
	assert_non_null(strstr(load_fail(NULL),
	    "llm_api_key: both BULWARK_LLM_API_KEY and "
	    "BULWARK_LLM_API_KEY_FILE are set"));
	unsetenv("BULWARK_LLM_API_KEY_FILE");
	load_ok(&c, NULL);
	assert_string_equal(c.llm_api_key, "direct");
	config_free(&c);

	/* A missing secret file names the key. */
	unsetenv("BULWARK_LLM_API_KEY");
	assert_non_null(
	    strstr(load_fail("llm_api_key_file = /nonexistent/key\n"),
		"llm_api_key: cannot read /nonexistent/key"));
}

static void
test_config_missing_required(void **state)
{
	const char *e;
	char	    want[600];

	(void)state;
	e = load_fail("database_url =\n");
	snprintf(want, sizeof(want),
	    "config: database_url: required, must "
	    "not be empty (%s:1)",
	    cfgpath);
	assert_string_equal(e, want);
	e = load_fail("redis_url = \"\"\n");
	assert_non_null(strstr(e, "redis_url: required"));
	setenv("BULWARK_FCGI_SOCKET", "", 1);
	e = load_fail(NULL);
	assert_string_equal(e,
	    "config: fcgi_socket: required, must not be "
	    "empty (env BULWARK_FCGI_SOCKET)");
}

static void
test_config_bounds(void **state)
{
	static const struct {
		const char *line;
		int	    ok;
	} c[] = {
		{ "fcgi_children = 0", 0 },
		{ "fcgi_children = 1", 1 },
		{ "fcgi_children = 1024", 1 },
		{ "fcgi_children = 1025", 0 },
		{ "fcgi_children = -1", 0 },
		{ "fcgi_max_requests = 0", 1 },
		{ "fcgi_max_requests = 1000000000", 1 },
		{ "fcgi_max_requests = 1000000001", 0 },
		{ "fcgi_backlog = 0", 0 },
		{ "fcgi_backlog = 65535", 1 },
		{ "fcgi_backlog = 65536", 0 },
		{ "drain_timeout_s = 0", 0 },
		{ "drain_timeout_s = 3600", 1 },
		{ "drain_timeout_s = 3601", 0 },
		{ "job_lease_s = 4", 0 },
		{ "job_lease_s = 5", 1 },
		{ "job_max_attempts = 100", 1 },
		{ "job_max_attempts = 101", 0 },
		{ "job_retention_days = 3650", 1 },
		{ "job_retention_days = 3651", 0 },
		{ "health_job_age_max_s = 0", 1 },
		{ "health_job_age_max_s = -1", 0 },
		{ "health_dead_window_s = 2592000", 1 },
		{ "health_dead_window_s = 2592001", 0 },
		{ "health_periodic_grace_s = 86401", 0 },
		{ "fcgi_socket_mode = 0777", 1 },
		{ "fcgi_socket_mode = 01000", 0 },
		{ "fcgi_socket_mode = 0678", 0 },
		{ "db_statement_timeout_ms = 0", 1 },
		{ "db_statement_timeout_ms = 600001", 0 },
		{ "log_level = warn", 1 },
		{ "log_level = verbose", 0 },
		{ "llm_base_url = https://api.example.com/v1", 1 },
		{ "llm_base_url = ftp://x", 0 },
	};
	struct config cfg;
	char	      text[256], err[1024], key[64];
	size_t	      i, kl;
	enum bw_err   er;

	(void)state;
	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		snprintf(text, sizeof(text), "%s\n", c[i].line);
		writefile(cfgpath, text);
		er = config_load(&cfg, cfgpath, err, sizeof(err));
		if ((er == BW_OK) != c[i].ok)
			fail_msg("\"%s\": got %d (%s)", c[i].line, er, err);
		if (er == BW_OK) {
			config_free(&cfg);
			continue;
		}
		/* The message starts with the key. */
		kl = strcspn(c[i].line, " ");
		snprintf(key, sizeof(key), "config: %.*s: ", (int)kl,
		    c[i].line);
		if (strncmp(err, key, strlen(key)) != 0)
			fail_msg("\"%s\": message \"%s\"", c[i].line, err);
	}
}

static void
test_config_long_line_and_missing_file(void **state)
{
	char	   *text;
	const char *e;
	size_t	    n = BW_MAX_CONFIG_LINE + 10;

	(void)state;
	text = malloc(n + 32);
	assert_non_null(text);
	memcpy(text, "# ok\npid_file = ", 16);
	memset(text + 16, 'a', n);
	memcpy(text + 16 + n, "\n", 2);
	e = load_fail(text);
	assert_non_null(strstr(e, "line longer than"));
	assert_non_null(strstr(e, ":2)"));
	free(text);
	unlink(cfgpath);
	{
		char	      err[1024];
		struct config c;

		assert_int_equal(config_load(&c, cfgpath, err, sizeof(err)),
		    BW_ECONFIG);
		assert_non_null(strstr(err, "cannot read"));
		assert_non_null(strstr(err, cfgpath));
	}
}

/* dump_of(text): config_dump of the config text, into out. */
static void
dump_of(const char *text, char *out, size_t outlen)
{
	struct config c;
	FILE	     *f;
	size_t	      n;

	load_ok(&c, text);
	f = tmpfile();
	assert_non_null(f);
	config_dump(&c, fileno(f));
	rewind(f);
	n = fread(out, 1, outlen - 1, f);
	out[n] = '\0';
	fclose(f);
	config_free(&c);
}

/* --check-config shows which servers, never their passwords. */
static void
test_config_url_password_masked(void **state)
{
	char dump[8192], text[700];

	(void)state;
	dump_of("database_url = postgresql://app:s3cr%40t@db.internal:5432/bw"
		"?sslmode=require&password=x2\n"
		"redis_url = redis://:r3dispw@127.0.0.1:6379/0\n",
	    dump, sizeof(dump));
	assert_null(strstr(dump, "s3cr"));
	assert_null(strstr(dump, "x2"));
	assert_null(strstr(dump, "r3dispw"));
	assert_non_null(strstr(dump,
	    "database_url = postgresql://app:***@"
	    "db.internal:5432/bw?sslmode=require&"
	    "password=***\n"));
	assert_non_null(
	    strstr(dump, "redis_url = redis://:***@127.0.0.1:6379/0\n"));

	/* libpq's keyword form. */
	dump_of("database_url = host=db user=app password=pw9 dbname=bw\n",
	    dump, sizeof(dump));
	assert_null(strstr(dump, "pw9"));
	assert_non_null(strstr(dump,
	    "database_url = host=db user=app password=*** dbname=bw\n"));

	/* The URLs may come from a secret file (database_url_file). */
	writefile(secpath, "postgresql://app:filepw@db/bw\n");
	snprintf(text, sizeof(text), "database_url_file = %s\n", secpath);
	dump_of(text, dump, sizeof(dump));
	assert_null(strstr(dump, "filepw"));
	assert_non_null(
	    strstr(dump, "database_url = postgresql://app:***@db/bw\n"));
}

/* The masking function alone: edge cases. */
static void
test_config_dump_url_edges(void **state)
{
	static const struct {
		const char *in, *out;
	} c[] = {
		{ "postgresql:///bulwark", "postgresql:///bulwark" },
		{ "postgresql://app@db/x", "postgresql://app@db/x" },
		{ "redis://u:p@ss:w@host:1/0", "redis://u:***@host:1/0" },
		{ "host=db mypassword=keep password=",
		    "host=db mypassword=keep password=" },
		{ "password=a&password=b", "password=***&password=***" },
		{ "", "" },
	};
	struct buf b;
	size_t	   i;

	(void)state;
	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		buf_init(&b, 4096);
		assert_int_equal(cfg_dump_url(&b, c[i].in), BW_OK);
		assert_string_equal(b.p != NULL ? b.p : "", c[i].out);
		buf_free(&b);
	}
}

/* fcgi_chat_socket: derived from fcgi_socket unless set; "none" kept. */
static void
test_config_chat_socket(void **state)
{
	struct config c;
	const char   *e;

	(void)state;
	load_ok(&c, NULL);
	assert_string_equal(c.fcgi_chat_socket, "/run/bulwark/fcgi-chat.sock");
	assert_int_equal(c.fcgi_chat_children, 32);
	assert_int_equal(c.fcgi_chat_nice, 10);
	config_free(&c);
	load_ok(&c, "fcgi_socket = /tmp/x/api\n");
	assert_string_equal(c.fcgi_chat_socket, "/tmp/x/api-chat.sock");
	config_free(&c);
	load_ok(&c, "fcgi_socket = /tmp/a.sock\nfcgi_chat_socket = /tmp/c\n");
	assert_string_equal(c.fcgi_chat_socket, "/tmp/c");
	config_free(&c);
	load_ok(&c, "fcgi_chat_socket = none\n");
	assert_string_equal(c.fcgi_chat_socket, "none");
	config_free(&c);
	e = load_fail("fcgi_socket = 127.0.0.1:9000\n");
	assert_non_null(strstr(e, "fcgi_chat_socket: must be set"));
	load_ok(&c,
	    "fcgi_socket = 127.0.0.1:9000\n"
	    "fcgi_chat_socket = 127.0.0.1:9001\n");
	assert_string_equal(c.fcgi_chat_socket, "127.0.0.1:9001");
	config_free(&c);
}

/* redis_sentinels: host:port list, at most 5; redis_master_name a word. */
static void
test_config_sentinels(void **state)
{
	static const struct {
		const char *line;
		int	    ok;
	} c[] = {
		{ "redis_sentinels = ", 1 },
		{ "redis_sentinels = 127.0.0.1:26379", 1 },
		{ "redis_sentinels = a:1,b:2, c:3 ,d:4,e:65535", 1 },
		{ "redis_sentinels = [::1]:26379,s2.example:26380", 1 },
		{ "redis_sentinels = a:1,b:2,c:3,d:4,e:5,f:6", 0 },
		{ "redis_sentinels = a", 0 },
		{ "redis_sentinels = a:", 0 },
		{ "redis_sentinels = :26379", 0 },
		{ "redis_sentinels = a:0", 0 },
		{ "redis_sentinels = a:65536", 0 },
		{ "redis_sentinels = a:1x", 0 },
		{ "redis_sentinels = a:1,", 0 },
		{ "redis_sentinels = a:-1", 0 },
		{ "redis_sentinels = [::1]26379", 0 },
		{ "redis_master_name = mymaster", 1 },
		{ "redis_master_name = my.master-2_x", 1 },
		{ "redis_master_name = ", 0 },
		{ "redis_master_name = a b", 0 },
		{ "redis_master_name = a\"b", 0 },
	};
	struct config cf;
	char	      text[256];
	size_t	      i;

	(void)state;
	load_ok(&cf, NULL);
	assert_string_equal(cf.redis_sentinels, "");
	assert_string_equal(cf.redis_master_name, "bulwark");
	config_free(&cf);
	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		snprintf(text, sizeof(text), "%s\n", c[i].line);
		if (c[i].ok) {
			load_ok(&cf, text);
			config_free(&cf);
		} else if (strstr(load_fail(text), "redis_") == NULL)
			fail_msg("%s: error does not name the key", c[i].line);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_config_defaults, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_config_file_syntax, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_config_env_beats_file,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_config_bad_int_names_key,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_config_unknown_key_names_key_and_line, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_config_removed_key_refused,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_config_secret_from_file,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_config_missing_required,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_config_bounds, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_config_long_line_and_missing_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_config_url_password_masked,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_config_dump_url_edges,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_config_chat_socket, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_config_sentinels, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
