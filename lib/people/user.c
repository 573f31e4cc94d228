/* SPDX-License-Identifier: MIT */
/* Users and invites (see user.h). */
#include <stdio.h>
#include <string.h>

#include "core/jv.h"
#include "core/log.h"
#include "core/sec.h"
#include "people/user.h"

int
user_email_norm(const char *in, char out[SESSION_EMAIL_MAX + 1])
{
	size_t i, n, at = 0, ats = 0;

	if (in == NULL)
		return -1;
	n = strlen(in);
	if (n < 3 || n > SESSION_EMAIL_MAX)
		return -1;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];

		if (c <= 0x20 || c == 0x7f || c == '"' || c == '\'' ||
		    c == '\\' || c == '<' || c == '>' || c == ',' || c == ';')
			return -1;
		if (c == '@') {
			at = i;
			ats++;
		}
		out[i] =
		    (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : (char)c;
	}
	out[n] = '\0';
	if (ats != 1 || at == 0 || at == n - 1)
		return -1;
	return 0;
}

/* A fresh invite token appended to tok and its hash as a bytea param. */
static enum bw_err
user_token(struct buf *tok, char hash[67])
{
	uint8_t	    h[SEC_SHA256_LEN];
	size_t	    start = tok->len;
	enum bw_err er;

	er = sec_token(tok);
	if (er == BW_OK)
		er = sec_sha256(tok->p + start, tok->len - start, h);
	if (er != BW_OK)
		return er;
	hash[0] = '\\';
	hash[1] = 'x';
	sec_hex(h, sizeof(h), hash + 2);
	return BW_OK;
}

enum bw_err
user_create(struct db *db, const char *org_id, const char *email,
    enum auth_role role, const char *pw_hash, int invite_ttl_s,
    struct buf *invite, struct json_object **out)
{
	/* clang-format off */
	static const char sql[] =
	    "WITH u AS (INSERT INTO users (org_id, email, role, password_hash) "
	    "  SELECT id, $2, $3, $4 FROM orgs WHERE id = $1::uuid "
	    "  RETURNING id, org_id, created_at), "
	    "i AS (INSERT INTO user_invites (org_id, token_hash, user_id, expires_at) "
	    "  SELECT org_id, $5::bytea, id, now() + make_interval(secs => $6::int) "
	    "  FROM u WHERE $5::bytea IS NOT NULL RETURNING expires_at) "
	    "SELECT u.id, " DB_TS_UTC("u.created_at") ", "
	    "(SELECT " DB_TS_UTC("expires_at") " FROM i) FROM u";
	/* clang-format on */
	char		    em[SESSION_EMAIL_MAX + 1], hash[67], ttl[16];
	const char	   *params[6];
	size_t		    start = invite != NULL ? invite->len : 0;
	PGresult	   *res = NULL;
	struct json_object *o;
	enum bw_err	    er;

	if (org_id == NULL || !jv_is_uuid(org_id, strlen(org_id)))
		return BW_ENOTFOUND;
	if (user_email_norm(email, em) != 0 || (unsigned)role >= AR__MAX)
		return BW_EINVAL;
	params[4] = NULL;
	if (pw_hash == NULL && invite != NULL) {
		er = user_token(invite, hash);
		if (er != BW_OK)
			return er;
		params[4] = hash;
	}
	snprintf(ttl, sizeof(ttl), "%d", invite_ttl_s);
	params[0] = org_id;
	params[1] = em;
	params[2] = auth_role_name(role);
	params[3] = pw_hash;
	params[5] = ttl;
	er = db_exec(db, sql, 6, params, &res);
	if (er == BW_OK && PQntuples(res) != 1)
		er = BW_ENOTFOUND;
	if (er != BW_OK) {
		if (invite != NULL && invite->p != NULL) {
			sec_wipe(invite->p + start, invite->len - start);
			invite->len = start;
			invite->p[start] = '\0';
		}
		goto out;
	}
	o = json_object_new_object();
	json_object_object_add(o, "id",
	    json_object_new_string(PQgetvalue(res, 0, 0)));
	json_object_object_add(o, "org_id", json_object_new_string(org_id));
	json_object_object_add(o, "email", json_object_new_string(em));
	json_object_object_add(o, "role",
	    json_object_new_string(auth_role_name(role)));
	json_object_object_add(o, "created_at",
	    json_object_new_string(PQgetvalue(res, 0, 1)));
	if (!PQgetisnull(res, 0, 2))
		json_object_object_add(o, "invite_expires_at",
		    json_object_new_string(PQgetvalue(res, 0, 2)));
	*out = o;
	log_kv(LL_INFO, "user created", "org_id", org_id, "user_id",
	    PQgetvalue(res, 0, 0), "role", auth_role_name(role), NULL);
out:
	PQclear(res);
	return er;
}

enum bw_err
user_invite_new(struct db *db, const char *user_id, int invite_ttl_s,
    struct buf *invite, struct json_object **out)
{
	/* clang-format off */
	static const char sql[] =
	    "INSERT INTO user_invites (org_id, token_hash, user_id, expires_at) "
	    "SELECT org_id, $2::bytea, id, now() + make_interval(secs => $3::int) "
	    "FROM users WHERE id = $1::uuid AND disabled_at IS NULL "
	    "RETURNING " DB_TS_UTC("expires_at");
	/* clang-format on */
	char		    hash[67], ttl[16];
	const char	   *params[3] = { user_id, hash, ttl };
	size_t		    start = invite->len;
	PGresult	   *res = NULL;
	struct json_object *o;
	enum bw_err	    er;

	if (user_id == NULL || !jv_is_uuid(user_id, strlen(user_id)))
		return BW_ENOTFOUND;
	er = user_token(invite, hash);
	if (er != BW_OK)
		return er;
	snprintf(ttl, sizeof(ttl), "%d", invite_ttl_s);
	er = db_exec(db, sql, 3, params, &res);
	if (er == BW_OK && PQntuples(res) != 1)
		er = BW_ENOTFOUND;
	if (er == BW_OK) {
		o = json_object_new_object();
		json_object_object_add(o, "id",
		    json_object_new_string(user_id));
		json_object_object_add(o, "invite_expires_at",
		    json_object_new_string(PQgetvalue(res, 0, 0)));
		*out = o;
	} else {
		sec_wipe(invite->p + start, invite->len - start);
		invite->len = start;
		invite->p[start] = '\0';
	}
	PQclear(res);
	return er;
}

enum bw_err
user_list(struct db *db, const char *org_id, struct json_object **out)
{
	/* clang-format off */
	static const char sql[] =
	    "SELECT id, email, role, password_hash IS NOT NULL, "
	    DB_TS_UTC("disabled_at") ", " DB_TS_UTC("created_at") ", "
	    DB_TS_UTC("updated_at") " "
	    "FROM users WHERE org_id = $1::uuid ORDER BY email";
	/* clang-format on */
	PGresult	   *res = NULL;
	struct json_object *o, *a, *u;
	enum bw_err	    er;
	int		    i;

	if (org_id == NULL || !jv_is_uuid(org_id, strlen(org_id)))
		return BW_ENOTFOUND;
	er = db_exec(db, sql, 1, &org_id, &res);
	if (er != BW_OK)
		return er;
	a = json_object_new_array();
	for (i = 0; i < PQntuples(res); i++) {
		u = json_object_new_object();
		json_object_object_add(u, "id",
		    json_object_new_string(PQgetvalue(res, i, 0)));
		json_object_object_add(u, "email",
		    json_object_new_string(PQgetvalue(res, i, 1)));
		json_object_object_add(u, "role",
		    json_object_new_string(PQgetvalue(res, i, 2)));
		json_object_object_add(u, "has_password",
		    json_object_new_boolean(
			strcmp(PQgetvalue(res, i, 3), "t") == 0));
		json_object_object_add(u, "disabled_at",
		    PQgetisnull(res, i, 4)
			? NULL
			: json_object_new_string(PQgetvalue(res, i, 4)));
		json_object_object_add(u, "created_at",
		    json_object_new_string(PQgetvalue(res, i, 5)));
		json_object_object_add(u, "updated_at",
		    json_object_new_string(PQgetvalue(res, i, 6)));
		json_object_array_add(a, u);
	}
	PQclear(res);
	o = json_object_new_object();
	json_object_object_add(o, "org_id", json_object_new_string(org_id));
	json_object_object_add(o, "users", a);
	*out = o;
	return BW_OK;
}

enum bw_err
user_by_email(struct db *db, const char *email, struct user_rec *u)
{
	/* Before any org is known: past RLS through the owner's function
	 * (sql/0034_rls.sql), which returns only the one user. */
	static const char sql[] =
	    "SELECT id, org_id, role, email, password_hash, disabled "
	    "FROM bw_user_by_email($1)";
	PGresult   *res = NULL;
	enum bw_err er;
	int	    r;

	er = db_execp(db, "user_by_email", sql, 1, &email, &res);
	if (er != BW_OK)
		return er;
	if (PQntuples(res) != 1) {
		er = BW_ENOTFOUND;
		goto out;
	}
	memset(u, 0, sizeof(*u));
	r = auth_role_parse(PQgetvalue(res, 0, 2));
	if (r < 0 || PQgetlength(res, 0, 0) != 36 ||
	    PQgetlength(res, 0, 1) != 36 ||
	    (size_t)PQgetlength(res, 0, 3) > SESSION_EMAIL_MAX ||
	    (size_t)PQgetlength(res, 0, 4) >= sizeof(u->password_hash)) {
		er = BW_EDB;
		goto out;
	}
	memcpy(u->who.user_id, PQgetvalue(res, 0, 0), 37);
	memcpy(u->who.org_id, PQgetvalue(res, 0, 1), 37);
	memcpy(u->who.email, PQgetvalue(res, 0, 3),
	    (size_t)PQgetlength(res, 0, 3) + 1);
	memcpy(u->password_hash, PQgetvalue(res, 0, 4),
	    (size_t)PQgetlength(res, 0, 4) + 1);
	u->who.role = (enum auth_role)r;
	u->disabled = strcmp(PQgetvalue(res, 0, 5), "t") == 0;
out:
	PQclear(res);
	return er;
}

/* Runs an UPDATE of one user by id ($1) that RETURNs its id. */
static enum bw_err
user_update(struct db *db, const char *sql, int n, const char *const *params,
    const char *what)
{
	PGresult   *res = NULL;
	enum bw_err er;

	if (params[0] == NULL || !jv_is_uuid(params[0], strlen(params[0])))
		return BW_ENOTFOUND;
	er = db_exec(db, sql, n, params, &res);
	if (er == BW_OK && PQntuples(res) != 1)
		er = BW_ENOTFOUND;
	if (er == BW_OK)
		log_kv(LL_INFO, what, "user_id", params[0], NULL);
	PQclear(res);
	return er;
}

enum bw_err
user_disable(struct db *db, const char *user_id)
{
	static const char sql[] =
	    "UPDATE users SET disabled_at = now(), updated_at = now() "
	    "WHERE id = $1::uuid AND disabled_at IS NULL RETURNING id";

	return user_update(db, sql, 1, &user_id, "user disabled");
}

enum bw_err
user_set_role(struct db *db, const char *user_id, enum auth_role role)
{
	static const char sql[] =
	    "UPDATE users SET role = $2, updated_at = now() "
	    "WHERE id = $1::uuid RETURNING id";
	const char *params[2] = { user_id, auth_role_name(role) };

	if ((unsigned)role >= AR__MAX)
		return BW_EINVAL;
	return user_update(db, sql, 2, params, "user role set");
}

enum bw_err
user_set_password(struct db *db, const char *user_id, const char *pw_hash)
{
	static const char sql[] =
	    "UPDATE users SET password_hash = $2, updated_at = now() "
	    "WHERE id = $1::uuid RETURNING id";
	const char *params[2] = { user_id, pw_hash };

	if (pw_hash == NULL)
		return BW_EINVAL;
	return user_update(db, sql, 2, params, "user password set");
}

enum bw_err
user_invite_accept(struct db *db, const char *token, size_t len,
    const char *pw_hash, char user_id[37])
{
	/* clang-format off */
	static const char sql[] =
	    "WITH i AS (UPDATE user_invites SET used_at = now() "
	    "  WHERE token_hash = $1::bytea AND used_at IS NULL AND expires_at > now() "
	    "  RETURNING user_id, org_id) "
	    "UPDATE users u SET password_hash = $2, updated_at = now() FROM i "
	    "WHERE u.id = i.user_id AND u.org_id = i.org_id AND u.disabled_at IS NULL "
	    "RETURNING u.id";
	/* clang-format on */
	uint8_t	    h[SEC_SHA256_LEN];
	char	    hash[67];
	const char *params[2] = { hash, pw_hash };
	PGresult   *res = NULL;
	enum bw_err er;

	if (token == NULL || len != 43 || pw_hash == NULL)
		return BW_ENOTFOUND;
	er = sec_sha256(token, len, h);
	if (er != BW_OK)
		return er;
	hash[0] = '\\';
	hash[1] = 'x';
	sec_hex(h, sizeof(h), hash + 2);
	/* The invitation's org (past RLS, sql/0034_rls.sql) is the tenant
	 * of the update. */
	er = db_exec(db, "SELECT bw_invite_org($1::bytea)", 1, params, &res);
	if (er == BW_OK && (PQntuples(res) != 1 || PQgetisnull(res, 0, 0)))
		er = BW_ENOTFOUND;
	if (er == BW_OK)
		er = db_set_org(db, PQgetvalue(res, 0, 0));
	PQclear(res);
	res = NULL;
	if (er != BW_OK)
		return er;
	er = db_exec(db, sql, 2, params, &res);
	if (er == BW_OK &&
	    (PQntuples(res) != 1 || PQgetlength(res, 0, 0) != 36))
		er = BW_ENOTFOUND;
	if (er == BW_OK) {
		memcpy(user_id, PQgetvalue(res, 0, 0), 37);
		log_kv(LL_INFO, "invite accepted", "user_id", user_id, NULL);
	}
	PQclear(res);
	return er;
}
