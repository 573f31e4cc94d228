/* SPDX-License-Identifier: MIT */
/*
 * Cookie sessions (the `sessions` table): an opaque random id (32 bytes,
 * 43 base64url characters) that only the browser holds, in the cookie
 * __Host-bw_session; the server keeps its SHA-256. Opaque server-side
 * sessions rather than signed tokens so that logout, disable and a role
 * change take effect on the next request (docs/api/auth.md).
 *
 * A session expires SESSION_IDLE after its last use (last_seen_at, written
 * at most once a minute) or session_absolute_s after login, whichever
 * comes first, and at once when revoked (logout, a new login presenting it,
 * the user disabled or given a new password) or when its user is disabled.
 *
 * Lookups go through a short Redis cache (bw:sess:<hex of the hash>,
 * session_cache_ttl_s) so that a request costs no PostgreSQL round trip.
 * Nothing is cached per child. Every change that must reach the next
 * request (revoke, disable, role change) writes a marker "x" over the
 * entry for session_cache_ttl_s: a marked session is read from PostgreSQL
 * and not cached, and a reader that raced the change cannot put its stale
 * copy back (the fill refuses to replace a marker).
 *
 * The CSRF token of a session is HMAC-SHA256 keyed by its id over a fixed
 * label, in base64url: bound to the session, derivable only by whoever
 * holds the id, stored nowhere.
 */
#ifndef BW_PEOPLE_SESSION_H
#define BW_PEOPLE_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "core/db.h"
#include "core/err.h"
#include "core/rds.h"
#include "platform/auth.h"

#define SESSION_COOKIE	   "__Host-bw_session"
#define SESSION_ID_LEN	   43 /* base64url of 32 random bytes */
#define SESSION_CSRF_LEN   43 /* base64url of an HMAC-SHA256 */
#define SESSION_EMAIL_MAX  254
#define SESSION_TOUCH_S	   60 /* last_seen_at is written at most this often */
#define SESSION_CACHE_PFX  "bw:sess:"
#define SESSION_CSRF_LABEL "bulwark csrf v1"

/* Who a session belongs to and when it ends. */
struct session_info {
	char	       user_id[37];
	char	       org_id[37];
	char	       email[SESSION_EMAIL_MAX + 1];
	enum auth_role role;
	int64_t	       expires_at; /* absolute expiry, Unix seconds */
	int64_t	       last_seen;  /* Unix seconds */
	int64_t	       idle_expires_at;
};

/* 1 when s[0..len) has the shape of a session id. */
int session_id_wellformed(const char *s, size_t len);
/*
 * Finds the session cookie in a Cookie header ("a=b; __Host-bw_session=x");
 * returns 1 with *val and *len pointing into hdr (the first one), else 0.
 */
int session_cookie_find(const char *hdr, const char **val, size_t *len);
/* The CSRF token of session id (SESSION_CSRF_LEN + 1 bytes). */
enum bw_err
session_csrf(const char *id, size_t len, char out[SESSION_CSRF_LEN + 1]);
/* 1 when tok is the CSRF token of id (constant time). */
int session_csrf_ok(const char *id, size_t len, const char *tok);

/*
 * A new session of user (id, org, role, e-mail): a fresh id into
 * id_out, the row, the cache entry, *out. client_ip may be NULL.
 */
enum bw_err session_create(struct db *, struct rds *, const struct config *,
    const struct session_info *user, const char *client_ip,
    char id_out[SESSION_ID_LEN + 1], struct session_info *out);
/*
 * The live session of id: BW_OK with *out, BW_EAUTH when it is malformed,
 * unknown, expired, revoked or its user disabled; BW_EDB when PostgreSQL
 * is needed and fails. Refreshes last_seen_at when older than
 * SESSION_TOUCH_S.
 */
enum bw_err session_check(struct db *, struct rds *, const struct config *,
    const char *id, size_t len, struct session_info *out);
/* Revokes the session of id (none is fine). BW_EDB; BW_EREDIS when the
 * marker could not be written (the revocation stands). */
enum bw_err session_revoke(struct db *, struct rds *, const struct config *,
    const char *id, size_t len);
/*
 * After a change to user_id (disable, new password: revoke = 1 revokes
 * every session; a role change: revoke = 0): marks every live session of
 * the user in the cache so that the next request reads PostgreSQL. *n
 * (may be NULL) gets the count. BW_EREDIS when a marker failed (the
 * cache entry then lives up to session_cache_ttl_s).
 */
enum bw_err session_forget_user(struct db *, struct rds *,
    const struct config *, const char *user_id, int revoke, int *n);

#ifdef BW_TESTING
/* Static functions of session.c, visible to tests. */
int session_cache_parse(const char *v, size_t len, struct session_info *out);
enum bw_err
session_cache_format(const struct session_info *in, struct buf *out);
#endif

#endif
