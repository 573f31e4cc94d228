/* SPDX-License-Identifier: MIT */
/* One login attempt (see login.h). */
#include <string.h>

#include "core/log.h"
#include "core/sec.h"
#include "people/login.h"
#include "people/password.h"
#include "people/throttle.h"
#include "people/user.h"

/* Stores a fresh hash of pw when the stored one has older parameters. */
static void
login_rehash(struct db *db, const struct password_params *par,
    const struct user_rec *u, const char *pw, size_t pwlen)
{
	struct buf h;

	if (!password_stale(u->password_hash, par))
		return;
	buf_init(&h, PASSWORD_HASH_MAX);
	if (password_hash(pw, pwlen, par, &h) == BW_OK &&
	    user_set_password(db, u->who.user_id, h.p) == BW_OK)
		log_kv(LL_INFO,
		    "password rehashed with the configured "
		    "parameters",
		    "user_id", u->who.user_id, NULL);
	buf_free(&h);
}

enum bw_err
login_attempt(struct db *db, struct rds *rds, const struct config *cfg,
    const char *email, const char *pw, size_t pwlen, const char *ip,
    struct login_result *out)
{
	struct password_params par;
	struct user_rec	       u;
	char		       em[SESSION_EMAIL_MAX + 1];
	const char	      *acct;
	enum bw_err	       er, uer;
	int		       ok;

	memset(out, 0, sizeof(*out));
	password_params_cfg(cfg, &par);
	/* An e-mail that cannot be one still counts against itself. */
	acct = user_email_norm(email, em) == 0 ? em : email;
	er = throttle_check(rds, cfg, acct, ip, &out->retry_after_s);
	if (er != BW_OK)
		return er;
	if (out->retry_after_s > 0) {
		out->outcome = LOGIN_LOCKED;
		return BW_OK;
	}
	uer = acct == em ? user_by_email(db, em, &u) : BW_ENOTFOUND;
	if (uer != BW_OK && uer != BW_ENOTFOUND)
		return uer;
	if (uer == BW_ENOTFOUND) {
		password_dummy(pw, pwlen, &par);
		ok = 0;
	} else {
		er = password_verify(pw, pwlen,
		    u.password_hash[0] != '\0' ? u.password_hash : NULL, &par);
		ok = er == BW_OK && !u.disabled;
		if (er == BW_EINVAL)
			log_kv(LL_ERROR,
			    "login: stored password hash is malformed",
			    "user_id", u.who.user_id, NULL);
	}
	if (!ok) {
		sec_wipe(&u, sizeof(u));
		er = throttle_fail(rds, cfg, acct, ip);
		if (er != BW_OK)
			log_kv(LL_WARN, "login: failure not counted", NULL);
		out->outcome = LOGIN_REFUSED;
		return BW_OK;
	}
	/* The user's org is the tenant of the rehash and the session. */
	er = db_set_org(db, u.who.org_id);
	if (er != BW_OK) {
		sec_wipe(&u, sizeof(u));
		return er;
	}
	if (throttle_clear(rds, acct) != BW_OK)
		log_kv(LL_WARN, "login: account failures not cleared", NULL);
	login_rehash(db, &par, &u, pw, pwlen);
	er = session_create(db, rds, cfg, &u.who, ip, out->id, &out->s);
	sec_wipe(&u, sizeof(u));
	if (er != BW_OK)
		return er;
	out->outcome = LOGIN_OK;
	return BW_OK;
}
