/* SPDX-License-Identifier: MIT */
/*
 * Authentication: API keys ("bwk_" + 43 base64url chars from 32 random
 * bytes) stored as SHA-256 hashes, each belonging to one org with a role.
 * Cookie sessions fill the same principal (lib/people/session.h). Lookups are by hash, so a presented key is
 * never compared as text.
 */
#ifndef BW_AUTH_H
#define BW_AUTH_H

#include <stdint.h>

#include <json-c/json.h>

#include "core/db.h"
#include "core/err.h"

enum auth_role {
	AR_MEMBER,
	AR_ADMIN,
	AR_OWNER,
	AR__MAX
};

#define AUTH_KEY_PREFIX "bwk_"
#define AUTH_PREFIX_LEN 12 /* "bwk_" + 8 chars shown to humans */

/* How a request was authenticated. */
enum auth_via {
	AUTH_VIA_KEY,	  /* Authorization: Bearer <api key> */
	AUTH_VIA_SESSION, /* the __Host-bw_session cookie (lib/people/) */
};

struct auth_principal {
	char	       org_id[37];
	char	       key_id[37]; /* "" for a session */
	char	       key_prefix[AUTH_PREFIX_LEN + 1];
	enum auth_role role;
	enum auth_via  via;
	char	       user_id[37]; /* a session's user; "" for a key */
};

const char *auth_role_name(enum auth_role);
int	    auth_role_parse(const char *); /* -1 when unknown */
/* 1 when s has the shape of a key (prefix, length, alphabet). */
int auth_key_wellformed(const char *s, size_t len);
/*
 * Creates a key for org with role. *out: new object {id,org_id,role,
 * key_prefix,key,created_at}: the only time the key text exists.
 * BW_ENOTFOUND for an unknown org.
 */
enum bw_err auth_key_create(struct db *, const char *org_id, enum auth_role,
    struct json_object **out);
/* Revokes by key id or key prefix; BW_ENOTFOUND when none active. */
enum bw_err auth_key_revoke(struct db *, const char *id_or_prefix);
/*
 * Authenticates a presented key: BW_OK with *p filled, BW_EAUTH when
 * malformed, unknown or revoked, BW_EDB when the database failed.
 */
enum bw_err auth_key_verify(struct db *, const char *key, size_t len,
    struct auth_principal *p);
/* SHA-256 of a presented key; BW_EAUTH when it is not well formed. */
enum bw_err auth_key_hash(const char *key, size_t len, uint8_t out[32]);
/* auth_key_verify() of a key already hashed by auth_key_hash(). */
/* Prepares the key look-up on db (db_warm()): a FastCGI child's start. */
enum bw_err auth_warm(struct db *);
enum bw_err auth_key_verify_hash(struct db *, const uint8_t h[32],
    struct auth_principal *p);

#endif
