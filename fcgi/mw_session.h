/* SPDX-License-Identifier: MIT */
/*
 * Cookie-session authentication (lib/people/session.h) of routes whose
 * auth is RA_KEY (a key or a session) or RA_SESSION (a session only):
 * the __Host-bw_session cookie; a request carrying it and an
 * Authorization header is refused (400); a state-changing method (any but
 * GET and HEAD) must carry X-CSRF-Token matching the session (else 403);
 * the session's user role meets min_role like a key's.
 */
#ifndef BW_MW_SESSION_H
#define BW_MW_SESSION_H

#include "req.h"

enum mw_session_result {
	MWS_NONE,    /* no cookie on a key route: the bearer path decides */
	MWS_OK,	     /* r->who, r->sess and r->sess_id filled */
	MWS_REFUSED, /* answered (400, 401, 403, 503) */
};

enum mw_session_result mw_session(struct req *r);

/* The Set-Cookie value that removes the session cookie. */
#define MW_SESSION_CLEAR                                                \
	SESSION_COOKIE "=; Path=/; Secure; HttpOnly; SameSite=Strict; " \
		       "Max-Age=0"

#endif
