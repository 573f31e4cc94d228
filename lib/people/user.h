/* SPDX-License-Identifier: MIT */
/*
 * Users of an org (the `users` and `user_invites` tables): an e-mail
 * (lower-case, unique across every org, so a login needs only the e-mail
 * and the password), a role (owner, admin, member: enum auth_role), a
 * password hash (NULL until set, lib/people/password.h), disabled_at.
 * An invite is a one-time random token (only its SHA-256 is stored) that
 * sets the password once before it expires.
 */
#ifndef BW_PEOPLE_USER_H
#define BW_PEOPLE_USER_H

#include <json-c/json.h>

#include "core/buf.h"
#include "core/db.h"
#include "core/err.h"
#include "people/session.h"
#include "platform/auth.h"

/* A user as login reads it. */
struct user_rec {
	struct session_info who; /* user_id, org_id, email, role */
	char		    password_hash[256]; /* "" when none is set */
	int		    disabled;
};

/*
 * Normalises an e-mail into out (SESSION_EMAIL_MAX + 1 bytes): ASCII
 * letters to lower case; 3..254 bytes, one '@' with something on each
 * side, no blank, control character or quote. Returns 0, or -1 when it
 * is not acceptable.
 */
int user_email_norm(const char *in, char out[SESSION_EMAIL_MAX + 1]);
/*
 * Creates a user of org. pw_hash NULL: no password yet, and an invite
 * valid invite_ttl_s is made; its token is appended to invite (NULL: no
 * invite). *out {id,org_id,email,role,created_at[,invite_expires_at]}.
 * BW_EINVAL bad e-mail, BW_ENOTFOUND no such org, BW_EEXISTS the e-mail
 * is taken.
 */
enum bw_err user_create(struct db *, const char *org_id, const char *email,
    enum auth_role, const char *pw_hash, int invite_ttl_s, struct buf *invite,
    struct json_object **out);
/* A new invite of an existing user (a lost link): token appended. */
enum bw_err user_invite_new(struct db *, const char *user_id, int invite_ttl_s,
    struct buf *invite, struct json_object **out);
/* The org's users {users:[{id,email,role,has_password,disabled_at,...}]}. */
enum bw_err
user_list(struct db *, const char *org_id, struct json_object **out);
/* By e-mail (normalised by the caller): BW_ENOTFOUND when none. */
enum bw_err user_by_email(struct db *, const char *email, struct user_rec *);
/* disabled_at = now(); BW_ENOTFOUND when no such (enabled) user. */
enum bw_err user_disable(struct db *, const char *user_id);
enum bw_err user_set_role(struct db *, const char *user_id, enum auth_role);
/* Sets the password hash; BW_ENOTFOUND when no such user. */
enum bw_err
user_set_password(struct db *, const char *user_id, const char *pw_hash);
/*
 * Uses an invite: sets the password of its user and marks it used, in
 * one statement. BW_ENOTFOUND for a token unknown, used, expired or of a
 * disabled user (all one answer); user_id (37 bytes) gets the user.
 */
enum bw_err user_invite_accept(struct db *, const char *token, size_t len,
    const char *pw_hash, char user_id[37]);

#endif
