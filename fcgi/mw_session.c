/* SPDX-License-Identifier: MIT */
/* Cookie-session authentication and the CSRF check (see mw_session.h). */
#include <string.h>

#include "core/log.h"
#include "ctx.h"
#include "mw_session.h"
#include "people/session.h"
#include "resp.h"
#include "route.h"

/* 1 for a method that changes nothing (no CSRF token needed). */
static int
mw_session_safe(const char *m)
{
	return strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0;
}

enum mw_session_result
mw_session(struct req *r)
{
	const struct route *rt = r->route;
	const char	   *v = NULL, *authz;
	size_t		    len = 0;
	enum bw_err	    er;

	if (rt->auth != RA_KEY && rt->auth != RA_SESSION)
		return MWS_NONE;
	authz = req_param(r, "HTTP_AUTHORIZATION");
	if (!session_cookie_find(req_param(r, "HTTP_COOKIE"), &v, &len)) {
		if (rt->auth == RA_KEY)
			return MWS_NONE;
		resp_error(r, AE_UNAUTHENTICATED,
		    authz != NULL ? "this route takes a cookie session, not an "
				    "API key"
				  : "no session: log in first",
		    NULL);
		return MWS_REFUSED;
	}
	if (authz != NULL) {
		resp_error(r, AE_VALIDATION_FAILED,
		    "send either the session cookie or an Authorization "
		    "header, not both",
		    NULL);
		return MWS_REFUSED;
	}
	er = session_check(r->ch->db, r->ch->rds, r->ch->cfg, v, len, &r->sess);
	if (er == BW_EAUTH) {
		resp_header(r, "Set-Cookie", MW_SESSION_CLEAR);
		resp_error(r, AE_UNAUTHENTICATED,
		    "the session is expired, revoked or unknown: log in again",
		    NULL);
		return MWS_REFUSED;
	}
	if (er != BW_OK) {
		resp_header(r, "Retry-After", "1");
		resp_error(r, AE_DEPENDENCY_UNAVAILABLE, NULL, NULL);
		return MWS_REFUSED;
	}
	memcpy(r->sess_id, v, SESSION_ID_LEN);
	r->sess_id[SESSION_ID_LEN] = '\0';
	memset(&r->who, 0, sizeof(r->who));
	memcpy(r->who.org_id, r->sess.org_id, sizeof(r->who.org_id));
	memcpy(r->who.user_id, r->sess.user_id, sizeof(r->who.user_id));
	r->who.role = r->sess.role;
	r->who.via = AUTH_VIA_SESSION;
	r->authed = 1;
	r->auth_provisional = 0;
	log_ctx_set(LC_ORG_ID, r->who.org_id);
	if (!mw_session_safe(r->method) &&
	    !session_csrf_ok(v, len, req_param(r, "HTTP_X_CSRF_TOKEN"))) {
		resp_error(r, AE_FORBIDDEN,
		    "a cookie-authenticated request that changes state needs "
		    "the session's X-CSRF-Token header",
		    NULL);
		return MWS_REFUSED;
	}
	if (r->who.role < rt->min_role) {
		resp_error(r, AE_FORBIDDEN, "this route needs a higher role",
		    NULL);
		return MWS_REFUSED;
	}
	return MWS_OK;
}
