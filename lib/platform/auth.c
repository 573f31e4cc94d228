/* SPDX-License-Identifier: MIT */
/*
 * API keys: creation (the only moment the key text exists), revocation and
 * verification. Keys carry 256 random bits, so a plain SHA-256 at rest is
 * enough (no password-style stretching) and lookups go by hash through a
 * unique index: the presented key is never compared as text.
 */
#include <string.h>

#include "platform/auth.h"
#include "core/buf.h"
#include "core/jv.h"
#include "core/limits.h"
#include "core/log.h"
#include "core/sec.h"

#define AUTH_TOKEN_CHARS 43 /* base64url of 32 bytes, no padding */

static const char *const auth_roles[AR__MAX] = {
	[AR_MEMBER] = "member",
	[AR_ADMIN] = "admin",
	[AR_OWNER] = "owner",
};

const char *
auth_role_name(enum auth_role r)
{
	if ((unsigned)r >= AR__MAX)
		return "member";
	return auth_roles[r];
}

int
auth_role_parse(const char *s)
{
	int i;

	if (s == NULL)
		return -1;
	for (i = 0; i < AR__MAX; i++)
		if (strcmp(s, auth_roles[i]) == 0)
			return i;
	return -1;
}

int
auth_key_wellformed(const char *s, size_t len)
{
	size_t i, pl = strlen(AUTH_KEY_PREFIX);

	if (len != pl + AUTH_TOKEN_CHARS || memcmp(s, AUTH_KEY_PREFIX, pl) != 0)
		return 0;
	for (i = pl; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			(c >= '0' && c <= '9') || c == '-' || c == '_'))
			return 0;
	}
	return 1;
}

/* "\x<hex of sha256(key)>" for a bytea parameter; out holds 67 bytes. */
static enum bw_err
key_hash_param(const char *key, size_t len, char out[67])
{
	uint8_t	    h[SEC_SHA256_LEN];
	enum bw_err er;

	er = sec_sha256(key, len, h);
	if (er != BW_OK)
		return er;
	out[0] = '\\';
	out[1] = 'x';
	sec_hex(h, sizeof(h), out + 2);
	return BW_OK;
}

enum bw_err
auth_key_create(struct db *db, const char *org_id, enum auth_role role,
    struct json_object **out)
{
	static const char sql[] =
	    "INSERT INTO api_keys (org_id, key_hash, key_prefix, role) "
	    "SELECT id, $2::bytea, $3, $4 FROM orgs WHERE id = $1 "
	    "RETURNING id, " DB_TS_UTC("created_at");
	struct buf	    key;
	char		    hash[67], prefix[AUTH_PREFIX_LEN + 1];
	const char	   *params[4];
	PGresult	   *res = NULL;
	struct json_object *o;
	enum bw_err	    er;

	if (org_id == NULL || !jv_is_uuid(org_id, strlen(org_id)))
		return BW_ENOTFOUND;
	if ((unsigned)role >= AR__MAX)
		return BW_EINVAL;
	buf_init(&key, BW_MAX_API_KEY);
	er = buf_addstr(&key, AUTH_KEY_PREFIX);
	if (er == BW_OK)
		er = sec_token(&key);
	if (er == BW_OK)
		er = key_hash_param(key.p, key.len, hash);
	if (er != BW_OK)
		goto out;
	memcpy(prefix, key.p, AUTH_PREFIX_LEN);
	prefix[AUTH_PREFIX_LEN] = '\0';
	params[0] = org_id;
	params[1] = hash;
	params[2] = prefix;
	params[3] = auth_role_name(role);
	er = db_exec(db, sql, 4, params, &res);
	if (er != BW_OK)
		goto out;
	if (PQntuples(res) != 1) {
		er = BW_ENOTFOUND;
		goto out;
	}
	o = json_object_new_object();
	json_object_object_add(o, "id",
	    json_object_new_string(PQgetvalue(res, 0, 0)));
	json_object_object_add(o, "org_id", json_object_new_string(org_id));
	json_object_object_add(o, "role",
	    json_object_new_string(auth_role_name(role)));
	json_object_object_add(o, "key_prefix", json_object_new_string(prefix));
	json_object_object_add(o, "key", json_object_new_string(key.p));
	json_object_object_add(o, "created_at",
	    json_object_new_string(PQgetvalue(res, 0, 1)));
	*out = o;
	log_kv(LL_INFO, "api key created", "org_id", org_id, "key_id",
	    PQgetvalue(res, 0, 0), "key_prefix", prefix, "role",
	    auth_role_name(role), NULL);
out:
	PQclear(res);
	if (key.p != NULL)
		sec_wipe(key.p, key.len);
	buf_free(&key);
	return er;
}

enum bw_err
auth_key_revoke(struct db *db, const char *id_or_prefix)
{
	/*
	 * By prefix only when it names exactly one active key: a prefix is
	 * what humans copy from a dashboard, and revoking two keys by
	 * accident would be worse than asking for the id.
	 */
	static const char by_id[] =
	    "UPDATE api_keys SET revoked_at = now() "
	    "WHERE id = $1::uuid AND revoked_at IS NULL RETURNING id";
	static const char by_prefix[] =
	    "UPDATE api_keys SET revoked_at = now() WHERE key_prefix = $1 "
	    "AND revoked_at IS NULL AND (SELECT count(*) FROM api_keys "
	    "WHERE key_prefix = $1 AND revoked_at IS NULL) = 1 RETURNING id";
	PGresult   *res = NULL;
	enum bw_err er;
	int	    isid;

	if (id_or_prefix == NULL || strlen(id_or_prefix) > BW_MAX_API_KEY)
		return BW_EINVAL;
	isid = jv_is_uuid(id_or_prefix, strlen(id_or_prefix));
	er = db_exec(db, isid ? by_id : by_prefix, 1, &id_or_prefix, &res);
	if (er != BW_OK)
		goto out;
	if (PQntuples(res) != 1) {
		er = BW_ENOTFOUND;
		goto out;
	}
	log_kv(LL_INFO, "api key revoked", "key_id", PQgetvalue(res, 0, 0),
	    NULL);
out:
	PQclear(res);
	return er;
}

enum bw_err
auth_key_hash(const char *key, size_t len, uint8_t out[SEC_SHA256_LEN])
{
	if (!auth_key_wellformed(key, len))
		return BW_EAUTH;
	return sec_sha256(key, len, out);
}

/* Before any org is known: past RLS through the owner's function
 * (sql/0034_rls.sql), which returns only the one key's row. */
static const char *const    auth_warm_p[] = { "\\x00" };
static const struct db_stmt auth_st_verify = { "auth_key_verify",
	"SELECT org_id, id, key_prefix, role FROM bw_key_lookup($1::bytea)", 1,
	auth_warm_p };

enum bw_err
auth_warm(struct db *db)
{
	return db_warm(db, &auth_st_verify, 1);
}

enum bw_err
auth_key_verify_hash(struct db *db, const uint8_t h[SEC_SHA256_LEN],
    struct auth_principal *p)
{
	char	    hash[67];
	const char *param = hash;
	PGresult   *res = NULL;
	enum bw_err er;
	int	    role;

	hash[0] = '\\';
	hash[1] = 'x';
	sec_hex(h, SEC_SHA256_LEN, hash + 2);
	er = db_execs(db, &auth_st_verify, &param, &res);
	if (er != BW_OK)
		goto out;
	if (PQntuples(res) != 1) {
		er = BW_EAUTH;
		goto out;
	}
	role = auth_role_parse(PQgetvalue(res, 0, 3));
	if (role < 0 || PQgetlength(res, 0, 0) != 36 ||
	    PQgetlength(res, 0, 1) != 36 ||
	    PQgetlength(res, 0, 2) != AUTH_PREFIX_LEN) {
		er = BW_EAUTH;
		goto out;
	}
	memcpy(p->org_id, PQgetvalue(res, 0, 0), 37);
	memcpy(p->key_id, PQgetvalue(res, 0, 1), 37);
	memcpy(p->key_prefix, PQgetvalue(res, 0, 2), AUTH_PREFIX_LEN + 1);
	p->role = (enum auth_role)role;
	p->via = AUTH_VIA_KEY;
	p->user_id[0] = '\0';
out:
	PQclear(res);
	return er;
}

enum bw_err
auth_key_verify(struct db *db, const char *key, size_t len,
    struct auth_principal *p)
{
	uint8_t	    h[SEC_SHA256_LEN];
	enum bw_err er;

	er = auth_key_hash(key, len, h);
	if (er != BW_OK)
		return er;
	return auth_key_verify_hash(db, h, p);
}
