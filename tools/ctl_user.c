/* SPDX-License-Identifier: MIT */
/*
 * bulwarkctl user ...: users of an org (lib/people/). A password is only
 * ever read from stdin (--password-stdin), never from the command line;
 * without one, `user add` prints a one-time invite link. Changes that
 * must reach live sessions (disable, a new role, a new password) mark the
 * sessions in Redis so that the next request reads PostgreSQL.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/rds.h"
#include "core/sec.h"
#include "ctl.h"
#include "people/password.h"
#include "people/session.h"
#include "people/user.h"

/* Reads the password from stdin (one trailing newline dropped) into pw
 * (PASSWORD_MAX_LEN + 2 bytes). Returns its length, or -1 (said). */
static long
ctl_user_read_pw(char *pw, size_t size)
{
	size_t	n = 0;
	ssize_t k;

	while (
	    n < size - 1 && (k = read(STDIN_FILENO, pw + n, size - 1 - n)) > 0)
		n += (size_t)k;
	pw[n] = '\0';
	if (n > 0 && pw[n - 1] == '\n')
		pw[--n] = '\0';
	if (n > 0 && pw[n - 1] == '\r')
		pw[--n] = '\0';
	if (!password_acceptable(pw, n)) {
		fprintf(stderr,
		    "bulwarkctl: the password (stdin) must be %d to %d "
		    "bytes\n",
		    PASSWORD_MIN_LEN, PASSWORD_MAX_LEN);
		return -1;
	}
	return (long)n;
}

/* Hashes the password read from stdin into h. 0, or an exit status. */
static int
ctl_user_hash_stdin(struct ctl *c, struct buf *h)
{
	struct password_params par;
	char		       pw[PASSWORD_MAX_LEN + 2];
	long		       n;
	enum bw_err	       er;

	n = ctl_user_read_pw(pw, sizeof(pw));
	if (n < 0)
		return 2;
	password_params_cfg(&c->cfg, &par);
	er = password_hash(pw, (size_t)n, &par, h);
	sec_wipe(pw, sizeof(pw));
	return er == BW_OK ? 0 : ctl_fail("password hash", er);
}

/* Marks (and with revoke, revokes) the user's sessions. */
static int
ctl_user_sessions(struct ctl *c, const char *id, int revoke,
    struct json_object *o)
{
	enum bw_err er;
	int	    n = 0;

	if (c->rds == NULL)
		c->rds = rds_new_cfg(&c->cfg);
	er = session_forget_user(c->db, c->rds, &c->cfg, id, revoke, &n);
	json_object_object_add(o, revoke ? "sessions_revoked" : "sessions",
	    json_object_new_int(n));
	if (er == BW_EREDIS) {
		fprintf(stderr,
		    "bulwarkctl: warning: the change is committed, but the "
		    "session cache in Redis could not be marked: live "
		    "sessions may keep their old state for up to "
		    "session_cache_ttl_s = %d seconds\n",
		    c->cfg.session_cache_ttl_s);
		return CTL_EXIT_NOT_BUMPED;
	}
	return er == BW_OK ? 0 : ctl_fail("sessions", er);
}

/* The invite link: <public_base_url or https://localhost>/console/#invite=. */
static void
ctl_user_invite_out(struct ctl *c, struct json_object *o, const char *tok)
{
	const char *base = c->cfg.public_base_url[0] != '\0'
	    ? c->cfg.public_base_url
	    : "https://localhost";
	size_t	    bl = strlen(base);
	char	    url[1024];

	while (bl > 0 && base[bl - 1] == '/')
		bl--;
	snprintf(url, sizeof(url), "%.*s/console/#invite=%s", (int)bl, base,
	    tok);
	json_object_object_add(o, "invite_token", json_object_new_string(tok));
	json_object_object_add(o, "invite_url", json_object_new_string(url));
}

int
ctl_user_add(struct ctl *c, int argc, char **argv)
{
	const char	   *org = NULL, *email = NULL, *role = NULL;
	struct json_object *o = NULL;
	struct buf	    h, tok;
	int		    i, rc, r, stdin_pw = 0;
	enum bw_err	    er;

	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--password-stdin") == 0)
			stdin_pw = 1;
		else if (strcmp(argv[i], "--org") == 0 && i + 1 < argc)
			org = argv[++i];
		else if (strcmp(argv[i], "--email") == 0 && i + 1 < argc)
			email = argv[++i];
		else if (strcmp(argv[i], "--role") == 0 && i + 1 < argc)
			role = argv[++i];
		else {
			fprintf(stderr,
			    "bulwarkctl: unexpected argument '%s'\n", argv[i]);
			return 2;
		}
	}
	r = auth_role_parse(role);
	if (org == NULL || email == NULL || r < 0) {
		fprintf(stderr,
		    "bulwarkctl: user add needs --org ID --email E --role "
		    "owner|admin|member [--password-stdin]\n");
		return 2;
	}
	buf_init(&h, PASSWORD_HASH_MAX);
	buf_init(&tok, 64);
	rc = stdin_pw ? ctl_user_hash_stdin(c, &h) : 0;
	if (rc == 0)
		rc = ctl_connect(c);
	if (rc != 0)
		goto out;
	er = user_create(c->db, org, email, (enum auth_role)r,
	    stdin_pw ? h.p : NULL, c->cfg.invite_ttl_s, stdin_pw ? NULL : &tok,
	    &o);
	if (er == BW_EINVAL)
		fprintf(stderr,
		    "bulwarkctl: user add: not an e-mail address\n");
	else if (er == BW_ENOTFOUND)
		fprintf(stderr, "bulwarkctl: user add: no such org\n");
	else if (er == BW_EEXISTS)
		fprintf(stderr,
		    "bulwarkctl: user add: a user with this e-mail exists "
		    "(e-mails are unique across orgs)\n");
	else if (er != BW_OK)
		rc = ctl_fail("user add", er);
	if (er != BW_OK) {
		rc = rc != 0 ? rc : 1;
		goto out;
	}
	if (!stdin_pw)
		ctl_user_invite_out(c, o, tok.p);
	ctl_emit(o);
out:
	if (tok.p != NULL)
		sec_wipe(tok.p, tok.len);
	buf_free(&tok);
	buf_free(&h);
	return rc;
}

int
ctl_user_list(struct ctl *c, int argc, char **argv)
{
	static const char *const names[] = { "org" };
	const char		*v[1] = { NULL };
	struct json_object	*o = NULL;
	enum bw_err		 er;
	int			 rc;

	if ((rc = ctl_flags(argc, argv, names, v, 1)) != 0)
		return rc;
	if (v[0] == NULL) {
		fprintf(stderr, "bulwarkctl: user list needs --org ID\n");
		return 2;
	}
	if ((rc = ctl_connect(c)) != 0)
		return rc;
	er = user_list(c->db, v[0], &o);
	if (er == BW_ENOTFOUND) {
		fprintf(stderr, "bulwarkctl: user list: not an org id\n");
		return 1;
	}
	if (er != BW_OK)
		return ctl_fail("user list", er);
	ctl_emit(o);
	return 0;
}

/* Ends a command on one user: "no such user" or the result line. */
static int
ctl_user_done(struct ctl *c, const char *what, const char *id, enum bw_err er,
    int revoke)
{
	struct json_object *o;
	int		    rc;

	if (er == BW_ENOTFOUND) {
		fprintf(stderr, "bulwarkctl: %s: no such user%s\n", what,
		    strcmp(what, "user disable") == 0 ? " (or already disabled)"
						      : "");
		return 1;
	}
	if (er != BW_OK)
		return ctl_fail(what, er);
	o = json_object_new_object();
	json_object_object_add(o, "id", json_object_new_string(id));
	rc = ctl_user_sessions(c, id, revoke, o);
	ctl_emit(o);
	return rc;
}

int
ctl_user_disable(struct ctl *c, int argc, char **argv)
{
	int rc;

	if (argc != 1) {
		fprintf(stderr, "bulwarkctl: user disable needs one user id\n");
		return 2;
	}
	if ((rc = ctl_connect(c)) != 0)
		return rc;
	return ctl_user_done(c, "user disable", argv[0],
	    user_disable(c->db, argv[0]), 1);
}

int
ctl_user_set_role(struct ctl *c, int argc, char **argv)
{
	int rc, r;

	r = argc == 2 ? auth_role_parse(argv[1]) : -1;
	if (r < 0) {
		fprintf(stderr,
		    "bulwarkctl: user set-role needs ID owner|admin|member\n");
		return 2;
	}
	if ((rc = ctl_connect(c)) != 0)
		return rc;
	return ctl_user_done(c, "user set-role", argv[0],
	    user_set_role(c->db, argv[0], (enum auth_role)r), 0);
}

int
ctl_user_set_password(struct ctl *c, int argc, char **argv)
{
	struct buf h;
	int	   rc;

	if (argc != 2 || strcmp(argv[1], "--password-stdin") != 0) {
		fprintf(stderr,
		    "bulwarkctl: user set-password needs ID "
		    "--password-stdin\n");
		return 2;
	}
	buf_init(&h, PASSWORD_HASH_MAX);
	rc = ctl_user_hash_stdin(c, &h);
	if (rc == 0)
		rc = ctl_connect(c);
	if (rc == 0)
		rc = ctl_user_done(c, "user set-password", argv[0],
		    user_set_password(c->db, argv[0], h.p), 1);
	buf_free(&h);
	return rc;
}

int
ctl_user_invite(struct ctl *c, int argc, char **argv)
{
	struct json_object *o = NULL;
	struct buf	    tok;
	enum bw_err	    er;
	int		    rc;

	if (argc != 1) {
		fprintf(stderr, "bulwarkctl: user invite needs one user id\n");
		return 2;
	}
	if ((rc = ctl_connect(c)) != 0)
		return rc;
	buf_init(&tok, 64);
	er = user_invite_new(c->db, argv[0], c->cfg.invite_ttl_s, &tok, &o);
	if (er == BW_OK) {
		ctl_user_invite_out(c, o, tok.p);
		ctl_emit(o);
	} else if (er == BW_ENOTFOUND) {
		fprintf(stderr,
		    "bulwarkctl: user invite: no such enabled user\n");
		rc = 1;
	} else
		rc = ctl_fail("user invite", er);
	if (tok.p != NULL)
		sec_wipe(tok.p, tok.len);
	buf_free(&tok);
	return rc;
}
