/* SPDX-License-Identifier: MIT */
/*
 * /api/v1/auth/: login, the current session, logout, invite acceptance
 * (docs/api/auth.md). The session id travels only in the cookie
 * __Host-bw_session; bodies carry the CSRF token and the user.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "ctx.h"
#include "handlers.h"
#include "mw_session.h"
#include "people/login.h"
#include "people/password.h"
#include "people/user.h"
#include "resp.h"

#define H_AUTH_COOKIE_ATTRS "; Path=/; Secure; HttpOnly; SameSite=Strict"

/* Unix seconds as RFC 3339 UTC ("2026-05-01T12:00:00Z"). */
static void
h_auth_time(int64_t t, char out[32])
{
	struct tm tm;
	time_t	  tt = (time_t)t;

	if (gmtime_r(&tt, &tm) == NULL ||
	    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, 32, "1970-01-01T00:00:00Z");
}

/* The session body: {user:{id,email,role,org_id},csrf_token,expires_at,
 * idle_expires_at}. */
static void
h_auth_render(struct req *r, const char *id, const struct session_info *s)
{
	struct json_object *o, *u;
	char		    csrf[SESSION_CSRF_LEN + 1], t[32];

	if (session_csrf(id, SESSION_ID_LEN, csrf) != BW_OK) {
		resp_error(r, AE_INTERNAL, NULL, NULL);
		return;
	}
	u = json_object_new_object();
	json_object_object_add(u, "id", json_object_new_string(s->user_id));
	json_object_object_add(u, "email", json_object_new_string(s->email));
	json_object_object_add(u, "role",
	    json_object_new_string(auth_role_name(s->role)));
	json_object_object_add(u, "org_id", json_object_new_string(s->org_id));
	o = json_object_new_object();
	json_object_object_add(o, "user", u);
	json_object_object_add(o, "csrf_token", json_object_new_string(csrf));
	h_auth_time(s->expires_at, t);
	json_object_object_add(o, "expires_at", json_object_new_string(t));
	h_auth_time(s->idle_expires_at, t);
	json_object_object_add(o, "idle_expires_at", json_object_new_string(t));
	resp_header(r, "Cache-Control", "no-store");
	resp_json(r, 200, o);
}

/* A string member of r->in (validated by the route's schema). */
static const char *
h_auth_str(struct req *r, const char *name, size_t *len)
{
	struct json_object *v;

	if (!json_object_object_get_ex(r->in, name, &v))
		return NULL;
	if (len != NULL)
		*len = (size_t)json_object_get_string_len(v);
	return json_object_get_string(v);
}

void
h_auth_login(struct req *r)
{
	struct login_result lr;
	const char	   *email, *pw, *old = NULL;
	char		    cookie[sizeof(SESSION_COOKIE) + SESSION_ID_LEN +
		   sizeof(H_AUTH_COOKIE_ATTRS) + 2];
	char		    ra[16];
	size_t		    pwlen = 0, oldlen = 0;
	enum bw_err	    er;

	email = h_auth_str(r, "email", NULL);
	pw = h_auth_str(r, "password", &pwlen);
	if (email == NULL || pw == NULL) {
		resp_error(r, AE_VALIDATION_FAILED, NULL, NULL);
		return;
	}
	er = login_attempt(r->ch->db, r->ch->rds, r->ch->cfg, email, pw, pwlen,
	    r->client_ip, &lr);
	if (er != BW_OK) {
		resp_header(r, "Retry-After", "1");
		resp_error(r, AE_DEPENDENCY_UNAVAILABLE, NULL, NULL);
		return;
	}
	if (lr.outcome == LOGIN_LOCKED) {
		snprintf(ra, sizeof(ra), "%d", lr.retry_after_s);
		resp_header(r, "Retry-After", ra);
		resp_error(r, AE_RATE_LIMITED,
		    "too many failed logins for this account or address; "
		    "wait Retry-After seconds",
		    NULL);
		return;
	}
	if (lr.outcome != LOGIN_OK) {
		resp_error(r, AE_UNAUTHENTICATED,
		    "the e-mail or the password is wrong", NULL);
		return;
	}
	/* Rotation: the session this browser had is over. */
	if (session_cookie_find(req_param(r, "HTTP_COOKIE"), &old, &oldlen) &&
	    session_revoke(r->ch->db, r->ch->rds, r->ch->cfg, old, oldlen) !=
		BW_OK)
		log_kv(LL_WARN, "login: the previous session was not revoked",
		    NULL);
	snprintf(cookie, sizeof(cookie), "%s=%s%s", SESSION_COOKIE, lr.id,
	    H_AUTH_COOKIE_ATTRS);
	resp_header(r, "Set-Cookie", cookie);
	h_auth_render(r, lr.id, &lr.s);
	memset(cookie, 0, sizeof(cookie));
	memset(&lr, 0, sizeof(lr));
}

void
h_auth_session(struct req *r)
{
	h_auth_render(r, r->sess_id, &r->sess);
}

void
h_auth_logout(struct req *r)
{
	enum bw_err er;

	if (resp_action_body(r))
		return;
	er = session_revoke(r->ch->db, r->ch->rds, r->ch->cfg, r->sess_id,
	    SESSION_ID_LEN);
	if (er == BW_EDB) {
		resp_fail(r, er);
		return;
	}
	resp_header(r, "Set-Cookie", MW_SESSION_CLEAR);
	resp_header(r, "Cache-Control", "no-store");
	resp_raw(r, 204, "application/json", "", 0);
}

void
h_auth_invite_accept(struct req *r)
{
	struct password_params par;
	struct buf	       h;
	const char	      *tok, *pw;
	char		       user_id[37];
	size_t		       toklen = 0, pwlen = 0;
	struct json_object    *o;
	enum bw_err	       er;

	tok = h_auth_str(r, "token", &toklen);
	pw = h_auth_str(r, "password", &pwlen);
	if (tok == NULL || pw == NULL) {
		resp_error(r, AE_VALIDATION_FAILED, NULL, NULL);
		return;
	}
	if (!password_acceptable(pw, pwlen)) {
		resp_invalid(r, "the password must be 10 to 1024 bytes",
		    "password", "length");
		return;
	}
	password_params_cfg(r->ch->cfg, &par);
	buf_init(&h, PASSWORD_HASH_MAX);
	er = password_hash(pw, pwlen, &par, &h);
	if (er == BW_OK)
		er = user_invite_accept(r->ch->db, tok, toklen, h.p, user_id);
	buf_free(&h);
	if (er == BW_ENOTFOUND) {
		resp_error(r, AE_GONE,
		    "the invite is unknown, already used or expired; ask for "
		    "a new one",
		    NULL);
		return;
	}
	if (er != BW_OK) {
		resp_fail(r, er);
		return;
	}
	o = json_object_new_object();
	json_object_object_add(o, "user_id", json_object_new_string(user_id));
	json_object_object_add(o, "password_set", json_object_new_boolean(1));
	resp_json(r, 200, o);
}
