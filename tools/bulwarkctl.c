/* SPDX-License-Identifier: MIT */
/*
 * bulwarkctl: the operator's tool. Subcommands print JSON on stdout (with
 * --human, lines and tables for people: tools/ctl_human.c), a clear
 * message on stderr and exit non-zero on failure: 1 when it failed, 2 on
 * a usage error (with the usage on stderr). -h/--help, `help [COMMAND]`
 * and `COMMAND --help` print the usage on stdout and exit 0; --version
 * prints "bulwarkctl VERSION". Each subcommand is one row of the table at
 * the bottom. docs/operations.md, "Command-line conventions".
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "platform/auth.h"
#include "core/backoff.h"
#include "core/rds.h"
#include "ctl.h"
#include "core/log.h"
#include "platform/migrate.h"
#include "platform/org.h"

#ifndef BW_VERSION
#define BW_VERSION "unknown" /* Makefile.am passes PACKAGE_VERSION */
#endif

static int ctl_human;	       /* --human */
static int ctl_progress_shown; /* a progress line is on the terminal */

void
ctl_progress(const char *fmt, ...)
{
	va_list ap;

	if (!isatty(STDERR_FILENO))
		return;
	fputs("\r\033[K", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fflush(stderr);
	ctl_progress_shown = 1;
}

void
ctl_progress_end(void)
{
	if (!ctl_progress_shown)
		return;
	fputs("\r\033[K", stderr);
	fflush(stderr);
	ctl_progress_shown = 0;
}

/* Prints obj (consumed) as one JSON line, or for people with --human. */
void
ctl_emit(struct json_object *obj)
{
	ctl_progress_end();
	if (ctl_human)
		ctl_human_print(stdout, obj);
	else
		puts(json_object_to_json_string_ext(obj,
		    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(obj);
}

/* Reports a failed call and returns the exit status 1. */
int
ctl_fail(const char *what, enum bw_err er)
{
	ctl_progress_end();
	fprintf(stderr, "bulwarkctl: %s: %s\n", what, bw_strerror(er));
	return 1;
}

/*
 * Connects the database: up to CTL_CONNECT_TRIES attempts, 250 ms, 500 ms
 * (+ jitter) apart, so that a server that is busy accepting a burst of
 * connections or still starting up is not reported as down (each attempt
 * waits BW_DB_CONNECT_TIMEOUT_S at most). Returns 0 or an exit status.
 */
int
ctl_connect(struct ctl *c)
{
	enum bw_err er;
	int	    n;

	c->db = db_new(c->cfg.database_url);
	if (c->db == NULL)
		return ctl_fail("database", BW_ENOMEM);
	for (n = 1; (er = db_connect(c->db)) == BW_EDB && n < CTL_CONNECT_TRIES;
	     n++)
		usleep((useconds_t)backoff_ms(n, 250, 100) * 1000);
	if (er != BW_OK)
		return ctl_fail("cannot connect to the database", er);
	return 0;
}

/*
 * Parses --name value pairs of argv against the allowed names; values land
 * in vals[i] for names[i]. Returns 0, or 2 on an unknown or valueless flag.
 */
int
ctl_flags(int argc, char **argv, const char *const *names, const char **vals,
    size_t n)
{
	int    i;
	size_t j;

	for (i = 0; i < argc; i++) {
		for (j = 0; j < n; j++)
			if (strncmp(argv[i], "--", 2) == 0 &&
			    strcmp(argv[i] + 2, names[j]) == 0)
				break;
		if (j == n || i + 1 >= argc) {
			fprintf(stderr,
			    "bulwarkctl: unexpected argument "
			    "'%s'\n",
			    argv[i]);
			return 2;
		}
		vals[j] = argv[++i];
	}
	return 0;
}

static int
cmd_migrate(struct ctl *c, int argc, char **argv)
{
	struct json_object *applied = NULL, *o;
	enum bw_err	    er;
	int		    rc;

	if (argc > 0) {
		fprintf(stderr, "bulwarkctl: migrate takes no arguments\n");
		return 2;
	}
	if ((rc = ctl_connect(c)) != 0)
		return rc;
	ctl_progress("migrate: applying the pending files of %s (after the "
		     "migration lock)...",
	    c->cfg.sql_dir);
	er = migrate_run(c->db, c->cfg.sql_dir, &applied);
	if (er != BW_OK)
		return ctl_fail("migrate", er);
	o = json_object_new_object();
	json_object_object_add(o, "applied", applied);
	ctl_emit(o);
	return 0;
}

static int
cmd_org_create(struct ctl *c, int argc, char **argv)
{
	static const char *const names[] = { "name", "tier", "timezone" };
	const char		*v[3] = { NULL, NULL, NULL };
	struct json_object	*o = NULL;
	enum bw_err		 er;
	int			 rc;

	if ((rc = ctl_flags(argc, argv, names, v, 3)) != 0)
		return rc;
	if (v[0] == NULL) {
		fprintf(stderr, "bulwarkctl: org create needs --name\n");
		return 2;
	}
	if (v[1] != NULL && !org_tier_valid(v[1])) {
		fprintf(stderr,
		    "bulwarkctl: --tier must be starter, pro, "
		    "business or enterprise\n");
		return 2;
	}
	if ((rc = ctl_connect(c)) != 0)
		return rc;
	er = org_create(c->db, v[0], v[1], v[2], &o);
	if (er == BW_EINVAL) {
		fprintf(stderr,
		    "bulwarkctl: org create: the name must be 1 to "
		    "200 characters and the time zone one PostgreSQL knows\n");
		return 1;
	}
	if (er != BW_OK)
		return ctl_fail("org create", er);
	ctl_emit(o);
	return 0;
}

static int
cmd_key_create(struct ctl *c, int argc, char **argv)
{
	static const char *const names[] = { "org", "role" };
	const char		*v[2] = { NULL, "owner" };
	struct json_object	*o = NULL;
	enum bw_err		 er;
	int			 rc, role;

	if ((rc = ctl_flags(argc, argv, names, v, 2)) != 0)
		return rc;
	role = auth_role_parse(v[1]);
	if (v[0] == NULL || role < 0) {
		fprintf(stderr,
		    "bulwarkctl: key create needs --org ID and "
		    "--role owner|admin|member\n");
		return 2;
	}
	if ((rc = ctl_connect(c)) != 0)
		return rc;
	er = auth_key_create(c->db, v[0], (enum auth_role)role, &o);
	if (er == BW_ENOTFOUND) {
		fprintf(stderr, "bulwarkctl: key create: no such org\n");
		return 1;
	}
	if (er != BW_OK)
		return ctl_fail("key create", er);
	ctl_emit(o);
	return ctl_bump(c);
}

static int
cmd_key_revoke(struct ctl *c, int argc, char **argv)
{
	struct json_object *o;
	enum bw_err	    er;
	int		    rc;

	if (argc != 1) {
		fprintf(stderr,
		    "bulwarkctl: key revoke needs one key id or "
		    "key prefix\n");
		return 2;
	}
	if ((rc = ctl_connect(c)) != 0)
		return rc;
	er = auth_key_revoke(c->db, argv[0]);
	if (er == BW_ENOTFOUND) {
		fprintf(stderr,
		    "bulwarkctl: key revoke: no single active key "
		    "matches '%s'\n",
		    argv[0]);
		return 1;
	}
	if (er != BW_OK)
		return ctl_fail("key revoke", er);
	o = json_object_new_object();
	json_object_object_add(o, "revoked", json_object_new_string(argv[0]));
	ctl_emit(o);
	return ctl_bump(c);
}

static const struct cmd cmds[] = { { "migrate", "migrate", cmd_migrate },
	{ "org create",
	    "org create --name N [--tier starter|pro|business|"
	    "enterprise] [--timezone TZ]",
	    cmd_org_create },
	{ "key create", "key create --org ID [--role owner|admin|member]",
	    cmd_key_create },
	{ "key revoke", "key revoke KEY_ID|KEY_PREFIX", cmd_key_revoke },
	CTL_NGINX_CMDS CTL_MONEY_CMDS CTL_CAMPAIGN_CMDS CTL_LEDGER_CMDS
	    CTL_CHAT_CMDS CTL_RATE_CMDS CTL_ORG_CMDS CTL_CACHE_CMDS
		CTL_USER_CMDS };

/* The whole usage: on stdout for --help and `help`, else on stderr. */
static void
usage(FILE *f)
{
	size_t i;

	fprintf(f,
	    "usage: bulwarkctl [-c CONFIG] [--human] COMMAND [ARGS...]\n"
	    "       bulwarkctl help [COMMAND]\n"
	    "       bulwarkctl COMMAND --help\n"
	    "  -c, --config FILE  the configuration file (default: "
	    "$BULWARK_CONFIG; none: the\n"
	    "                     defaults and BULWARK_* variables)\n"
	    "      --human        lines and tables for people instead of "
	    "JSON\n"
	    "  -h, --help         print this help and exit\n"
	    "      --version      print the version and exit\n"
	    "commands:\n");
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		fprintf(f, "  bulwarkctl %s\n", cmds[i].usage);
	fprintf(f,
	    "Exit status: 0 done, 1 failed, 2 usage error. See "
	    "bulwarkctl(8).\n");
}

/*
 * Finds the command whose words start argv. Returns it with *used words
 * consumed, or NULL.
 */
static const struct cmd *
find_cmd(int argc, char **argv, int *used)
{
	size_t i;
	char   two[128];

	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (argc >= 1 && strcmp(cmds[i].name, argv[0]) == 0) {
			*used = 1;
			return &cmds[i];
		}
		if (argc >= 2) {
			snprintf(two, sizeof(two), "%s %s", argv[0], argv[1]);
			if (strcmp(cmds[i].name, two) == 0) {
				*used = 2;
				return &cmds[i];
			}
		}
	}
	return NULL;
}

int
ctl_num(const char *s, long long min, long long max, long long *out)
{
	int64_t v;

	if (s == NULL || (*s != '-' && (*s < '0' || *s > '9')))
		return -1;
	if (db_i64(s, &v) != BW_OK || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* Whether args hold -h or --help (a command's own help). */
static int
wants_help(int argc, char **argv)
{
	int i;

	for (i = 0; i < argc; i++)
		if (strcmp(argv[i], "-h") == 0 ||
		    strcmp(argv[i], "--help") == 0)
			return 1;
	return 0;
}

/* Takes every --human out of argv (it may follow the command too). */
static int
take_human(int argc, char **argv)
{
	int i, n = 0;

	for (i = 0; i < argc; i++)
		if (strcmp(argv[i], "--human") == 0)
			ctl_human = 1;
		else
			argv[n++] = argv[i];
	argv[n] = NULL;
	return n;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "human", no_argument, NULL, 'H' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct ctl	  c;
	const struct cmd *cmd;
	const char	 *path = getenv("BULWARK_CONFIG");
	char		  err[512];
	int		  ch, used = 0, rc;

	memset(&c, 0, sizeof(c));
	/* "+": options stop at the command, whose flags are its own. */
	while ((ch = getopt_long(argc, argv, "+c:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 'H':
			ctl_human = 1;
			break;
		case 'h':
			usage(stdout);
			return fflush(stdout) == 0 ? 0 : 1;
		case 'V':
			printf("bulwarkctl %s\n", BW_VERSION);
			return fflush(stdout) == 0 ? 0 : 1;
		default: /* getopt_long() said what is wrong */
			usage(stderr);
			return 2;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc >= 1 && strcmp(argv[0], "help") == 0) {
		if (argc == 1) {
			usage(stdout);
			return fflush(stdout) == 0 ? 0 : 1;
		}
		cmd = find_cmd(argc - 1, argv + 1, &used);
		if (cmd == NULL || argc - 1 != used) {
			fprintf(stderr, "bulwarkctl: help: no such command\n");
			usage(stderr);
			return 2;
		}
		printf("usage: bulwarkctl %s\n", cmd->usage);
		return fflush(stdout) == 0 ? 0 : 1;
	}
	cmd = find_cmd(argc, argv, &used);
	if (cmd == NULL) {
		if (argc == 0)
			fprintf(stderr, "bulwarkctl: a command is needed\n");
		else
			fprintf(stderr, "bulwarkctl: unknown command '%s'\n",
			    argv[0]);
		usage(stderr);
		return 2;
	}
	argc = used + take_human(argc - used, argv + used);
	if (wants_help(argc - used, argv + used)) {
		printf("usage: bulwarkctl %s\n", cmd->usage);
		return fflush(stdout) == 0 ? 0 : 1;
	}
	log_init("bulwarkctl", LL_WARN);
	if (config_load(&c.cfg, path, err, sizeof(err)) != BW_OK) {
		fprintf(stderr, "bulwarkctl: %s\n", err);
		return 1;
	}
	rc = cmd->fn(&c, argc - used, argv + used);
	ctl_progress_end();
	db_free(c.db);
	rds_free(c.rds);
	config_free(&c.cfg);
	return rc;
}
