/* SPDX-License-Identifier: MIT */
/*
 * Cookie sessions: the `sessions` table and its Redis cache (see
 * session.h).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "core/jv.h"
#include "core/log.h"
#include "core/sec.h"
#include "people/session.h"

/* A cache key: prefix + 64 hex. */
#define SESSION_KEY_MAX (sizeof(SESSION_CACHE_PFX) + 64)

/* KEYS[1] the entry, ARGV[1] value, ARGV[2] TTL (s): stores unless a
 * change marked the entry ("x"). Returns 1 stored, 0 marked. */
static struct rds_script session_fill_lua = {
	.src = "if redis.call('GET', KEYS[1]) == 'x' then return 0 end\n"
	       "redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])\n"
	       "return 1\n"
};

static int
session_b64url_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '_';
}

int
session_id_wellformed(const char *s, size_t len)
{
	size_t i;

	if (s == NULL || len != SESSION_ID_LEN)
		return 0;
	for (i = 0; i < len; i++)
		if (!session_b64url_char(s[i]))
			return 0;
	return 1;
}

int
session_cookie_find(const char *hdr, const char **val, size_t *len)
{
	const size_t nl = strlen(SESSION_COOKIE);
	const char  *p = hdr, *e;

	if (hdr == NULL)
		return 0;
	while (*p != '\0') {
		while (*p == ' ' || *p == '\t' || *p == ';')
			p++;
		e = p;
		while (*e != '\0' && *e != ';')
			e++;
		if ((size_t)(e - p) > nl &&
		    strncmp(p, SESSION_COOKIE, nl) == 0 && p[nl] == '=') {
			*val = p + nl + 1;
			*len = (size_t)(e - *val);
			while (*len > 0 &&
			    ((*val)[*len - 1] == ' ' ||
				(*val)[*len - 1] == '\t'))
				(*len)--;
			return 1;
		}
		p = e;
	}
	return 0;
}

enum bw_err
session_csrf(const char *id, size_t len, char out[SESSION_CSRF_LEN + 1])
{
	uint8_t	    mac[SEC_SHA256_LEN];
	struct buf  b;
	enum bw_err er;

	er = sec_hmac_sha256(id, len, SESSION_CSRF_LABEL,
	    strlen(SESSION_CSRF_LABEL), mac);
	if (er != BW_OK)
		return er;
	buf_init(&b, 64);
	er = sec_b64url(mac, sizeof(mac), &b);
	if (er == BW_OK && b.len != SESSION_CSRF_LEN)
		er = BW_ECRYPTO;
	if (er == BW_OK)
		memcpy(out, b.p, SESSION_CSRF_LEN + 1);
	buf_free(&b);
	sec_wipe(mac, sizeof(mac));
	return er;
}

int
session_csrf_ok(const char *id, size_t len, const char *tok)
{
	char want[SESSION_CSRF_LEN + 1];
	int  ok;

	if (tok == NULL || session_csrf(id, len, want) != BW_OK)
		return 0;
	ok = sec_eq(want, SESSION_CSRF_LEN, tok, strlen(tok));
	sec_wipe(want, sizeof(want));
	return ok;
}

/* The session's hash as a bytea parameter ("\x" + 64 hex, 67 bytes) and
 * its cache key. */
static enum bw_err
session_keys(const char *id, size_t len, char param[67],
    char key[SESSION_KEY_MAX])
{
	uint8_t	    h[SEC_SHA256_LEN];
	enum bw_err er;

	if (!session_id_wellformed(id, len))
		return BW_EAUTH;
	er = sec_sha256(id, len, h);
	if (er != BW_OK)
		return er;
	param[0] = '\\';
	param[1] = 'x';
	sec_hex(h, sizeof(h), param + 2);
	snprintf(key, SESSION_KEY_MAX, "%s%s", SESSION_CACHE_PFX, param + 2);
	return BW_OK;
}

/*
 * The cache value: "v1" TAB user TAB org TAB role TAB expires TAB
 * last_seen TAB email. An e-mail holds no TAB (user.c refuses blanks).
 */
STATIC enum bw_err
session_cache_format(const struct session_info *in, struct buf *out)
{
	return buf_printf(out, "v1\t%s\t%s\t%s\t%lld\t%lld\t%s", in->user_id,
	    in->org_id, auth_role_name(in->role), (long long)in->expires_at,
	    (long long)in->last_seen, in->email);
}

/* Copies field [s, e) into out (size n) when it fits; 0 or -1. */
static int
session_field(const char *s, const char *e, char *out, size_t n)
{
	if (e < s || (size_t)(e - s) >= n)
		return -1;
	memcpy(out, s, (size_t)(e - s));
	out[e - s] = '\0';
	return 0;
}

STATIC int
session_cache_parse(const char *v, size_t len, struct session_info *out)
{
	struct session_info si;
	const char	   *f[7], *end = v + len, *p = v;
	char		    num[24], role[16];
	int		    i, r;

	memset(&si, 0, sizeof(si));
	for (i = 0; i < 7; i++) {
		f[i] = p;
		while (p < end && *p != '\t')
			p++;
		if (i < 6) {
			if (p >= end)
				return -1;
			p++;
		}
	}
	if (f[1] - f[0] != 3 || strncmp(f[0], "v1\t", 3) != 0 ||
	    session_field(f[1], f[2] - 1, si.user_id, sizeof(si.user_id)) ||
	    session_field(f[2], f[3] - 1, si.org_id, sizeof(si.org_id)) ||
	    session_field(f[3], f[4] - 1, role, sizeof(role)) ||
	    session_field(f[6], end, si.email, sizeof(si.email)) ||
	    !jv_is_uuid(si.user_id, strlen(si.user_id)) ||
	    !jv_is_uuid(si.org_id, strlen(si.org_id)) || si.email[0] == '\0')
		return -1;
	r = auth_role_parse(role);
	if (r < 0)
		return -1;
	si.role = (enum auth_role)r;
	if (session_field(f[4], f[5] - 1, num, sizeof(num)) ||
	    db_i64(num, &si.expires_at) != BW_OK ||
	    session_field(f[5], f[6] - 1, num, sizeof(num)) ||
	    db_i64(num, &si.last_seen) != BW_OK)
		return -1;
	*out = si;
	return 0;
}

/* Stores si under key unless marked; TTL up to the absolute expiry. */
static void
session_cache_fill(struct rds *rds, const struct config *cfg, const char *key,
    const struct session_info *si)
{
	const char *av[3];
	char	    ttl[24];
	struct buf  v;
	redisReply *rep = NULL;
	int64_t	    t = cfg->session_cache_ttl_s, left;

	left = si->expires_at - (int64_t)time(NULL);
	if (t <= 0 || rds == NULL || left <= 0)
		return;
	if (left < t)
		t = left;
	buf_init(&v, 512);
	if (session_cache_format(si, &v) == BW_OK) {
		snprintf(ttl, sizeof(ttl), "%lld", (long long)t);
		av[0] = key;
		av[1] = v.p;
		av[2] = ttl;
		if (rds_eval(rds, &session_fill_lua, 1, 3, av, NULL, &rep) !=
		    BW_OK)
			log_kv(LL_WARN, "session cache: fill failed", NULL);
		if (rep != NULL)
			freeReplyObject(rep);
	}
	buf_free(&v);
}

/* Writes the marker over key for session_cache_ttl_s. */
static enum bw_err
session_cache_mark(struct rds *rds, const struct config *cfg, const char *key)
{
	const char *av[5];
	char	    ttl[24];
	redisReply *rep = NULL;
	enum bw_err er;

	if (cfg->session_cache_ttl_s <= 0)
		return BW_OK;
	if (rds == NULL)
		return BW_EREDIS;
	snprintf(ttl, sizeof(ttl), "%d", cfg->session_cache_ttl_s);
	av[0] = "SET";
	av[1] = key;
	av[2] = "x";
	av[3] = "EX";
	av[4] = ttl;
	er = rds_cmd(rds, 5, av, NULL, &rep);
	if (rep != NULL)
		freeReplyObject(rep);
	return er == BW_OK ? BW_OK : BW_EREDIS;
}

/*
 * The cached entry of key: 1 with *si (a live copy, not yet due for a
 * touch), 0 when absent or due, -1 when marked or Redis failed (read the
 * database and do not cache).
 */
static int
session_cache_get(struct rds *rds, const struct config *cfg, const char *key,
    struct session_info *si)
{
	const char *av[2] = { "GET", key };
	redisReply *rep = NULL;
	int	    rc = 0;
	int64_t	    now = (int64_t)time(NULL);

	if (cfg->session_cache_ttl_s <= 0)
		return -1;
	if (rds == NULL || rds_cmd(rds, 2, av, NULL, &rep) != BW_OK)
		rc = -1;
	else if (rep->type == REDIS_REPLY_STRING && rep->len == 1 &&
	    rep->str[0] == 'x')
		rc = -1;
	else if (rep->type == REDIS_REPLY_STRING &&
	    session_cache_parse(rep->str, rep->len, si) == 0 &&
	    now < si->expires_at && now < si->last_seen + cfg->session_idle_s &&
	    now - si->last_seen < SESSION_TOUCH_S)
		rc = 1;
	if (rep != NULL)
		freeReplyObject(rep);
	return rc;
}

/* Fills si from row 0 of res: user, org, role, email, expires, seen. */
static enum bw_err
session_row(PGresult *res, struct session_info *si)
{
	int r = auth_role_parse(PQgetvalue(res, 0, 2));

	memset(si, 0, sizeof(*si));
	if (r < 0 || PQgetlength(res, 0, 0) != 36 ||
	    PQgetlength(res, 0, 1) != 36 ||
	    (size_t)PQgetlength(res, 0, 3) > SESSION_EMAIL_MAX ||
	    db_col_i64(res, 0, 4, &si->expires_at) != BW_OK ||
	    db_col_i64(res, 0, 5, &si->last_seen) != BW_OK)
		return BW_EDB;
	memcpy(si->user_id, PQgetvalue(res, 0, 0), 37);
	memcpy(si->org_id, PQgetvalue(res, 0, 1), 37);
	memcpy(si->email, PQgetvalue(res, 0, 3),
	    (size_t)PQgetlength(res, 0, 3) + 1);
	si->role = (enum auth_role)r;
	return BW_OK;
}

enum bw_err
session_create(struct db *db, struct rds *rds, const struct config *cfg,
    const struct session_info *user, const char *client_ip,
    char id_out[SESSION_ID_LEN + 1], struct session_info *out)
{
	/* clang-format off */
	static const char sql[] =
	    "INSERT INTO sessions (org_id, token_hash, user_id, expires_at, client_ip) "
	    "VALUES ($1::uuid, $2::bytea, $3::uuid, now() + make_interval(secs => $4::int), $5) "
	    "RETURNING floor(extract(epoch FROM expires_at))::bigint, "
	    "floor(extract(epoch FROM last_seen_at))::bigint";
	/* clang-format on */
	char		    hash[67], key[SESSION_KEY_MAX], abs_s[24];
	const char	   *params[5];
	struct buf	    id;
	struct session_info si;
	PGresult	   *res = NULL;
	enum bw_err	    er;

	buf_init(&id, 64);
	er = sec_token(&id);
	if (er == BW_OK && id.len != SESSION_ID_LEN)
		er = BW_ECRYPTO;
	if (er == BW_OK)
		er = session_keys(id.p, id.len, hash, key);
	if (er != BW_OK)
		goto out;
	snprintf(abs_s, sizeof(abs_s), "%d", cfg->session_absolute_s);
	params[0] = user->org_id;
	params[1] = hash;
	params[2] = user->user_id;
	params[3] = abs_s;
	params[4] =
	    client_ip != NULL && client_ip[0] != '\0' ? client_ip : NULL;
	er = db_exec(db, sql, 5, params, &res);
	if (er != BW_OK)
		goto out;
	si = *user;
	if (PQntuples(res) != 1 ||
	    db_col_i64(res, 0, 0, &si.expires_at) != BW_OK ||
	    db_col_i64(res, 0, 1, &si.last_seen) != BW_OK) {
		er = BW_EDB;
		goto out;
	}
	si.idle_expires_at = si.last_seen + cfg->session_idle_s;
	if (si.idle_expires_at > si.expires_at)
		si.idle_expires_at = si.expires_at;
	session_cache_fill(rds, cfg, key, &si);
	memcpy(id_out, id.p, SESSION_ID_LEN + 1);
	*out = si;
	log_kv(LL_INFO, "session created", "org_id", si.org_id, "user_id",
	    si.user_id, NULL);
out:
	PQclear(res);
	if (id.p != NULL)
		sec_wipe(id.p, id.len);
	buf_free(&id);
	return er;
}

/* Writes last_seen_at = now() when it is due; updates si->last_seen. */
static enum bw_err
session_touch(struct db *db, const char *hash, struct session_info *si)
{
	/* clang-format off */
	static const char sql[] =
	    "UPDATE sessions SET last_seen_at = now() "
	    "WHERE token_hash = $1::bytea AND revoked_at IS NULL "
	    "AND last_seen_at < now() - make_interval(secs => $2::int) "
	    "RETURNING floor(extract(epoch FROM last_seen_at))::bigint";
	/* clang-format on */
	char	    touch_s[16];
	const char *params[2] = { hash, touch_s };
	PGresult   *res = NULL;
	enum bw_err er;

	snprintf(touch_s, sizeof(touch_s), "%d", SESSION_TOUCH_S);
	er = db_execp(db, "session_touch", sql, 2, params, &res);
	if (er == BW_OK && PQntuples(res) == 1)
		(void)db_col_i64(res, 0, 0, &si->last_seen);
	PQclear(res);
	return er;
}

enum bw_err
session_check(struct db *db, struct rds *rds, const struct config *cfg,
    const char *id, size_t len, struct session_info *out)
{
	/* clang-format off */
	/* Before any org is known: past RLS through the owner's function
	 * (sql/0034_rls.sql), which returns only the one live session. */
	static const char sql[] =
	    "SELECT user_id, org_id, role, email, expires_at, last_seen_at, due "
	    "FROM bw_session_lookup($1::bytea, $2::int, $3::int)";
	/* clang-format on */
	char	    hash[67], key[SESSION_KEY_MAX], idle_s[16], touch_s[16];
	const char *params[3] = { hash, idle_s, touch_s };
	struct session_info si;
	PGresult	   *res = NULL;
	enum bw_err	    er;
	int		    c;

	er = session_keys(id, len, hash, key);
	if (er != BW_OK)
		return er;
	c = session_cache_get(rds, cfg, key, &si);
	if (c == 1)
		goto done;
	snprintf(idle_s, sizeof(idle_s), "%d", cfg->session_idle_s);
	snprintf(touch_s, sizeof(touch_s), "%d", SESSION_TOUCH_S);
	er = db_execp(db, "session_check", sql, 3, params, &res);
	if (er != BW_OK)
		goto out;
	if (PQntuples(res) != 1) {
		er = BW_EAUTH;
		goto out;
	}
	er = session_row(res, &si);
	if (er != BW_OK)
		goto out;
	/* The session's org is the tenant of what follows (the touch). */
	if ((er = db_set_org(db, si.org_id)) != BW_OK)
		goto out;
	if (strcmp(PQgetvalue(res, 0, 6), "t") == 0 &&
	    (er = session_touch(db, hash, &si)) != BW_OK)
		goto out;
	if (c == 0)
		session_cache_fill(rds, cfg, key, &si);
done:
	si.idle_expires_at = si.last_seen + cfg->session_idle_s;
	if (si.idle_expires_at > si.expires_at)
		si.idle_expires_at = si.expires_at;
	*out = si;
out:
	PQclear(res);
	return er;
}

enum bw_err
session_revoke(struct db *db, struct rds *rds, const struct config *cfg,
    const char *id, size_t len)
{
	static const char sql[] =
	    "UPDATE sessions SET revoked_at = now() "
	    "WHERE token_hash = $1::bytea AND revoked_at IS NULL "
	    "RETURNING user_id";
	char	    hash[67], key[SESSION_KEY_MAX];
	const char *param = hash;
	PGresult   *res = NULL;
	enum bw_err er;

	er = session_keys(id, len, hash, key);
	if (er == BW_EAUTH)
		return BW_OK; /* nothing such was ever issued */
	if (er != BW_OK)
		return er;
	er = db_exec(db, sql, 1, &param, &res);
	if (er == BW_OK && PQntuples(res) == 1)
		log_kv(LL_INFO, "session revoked", "user_id",
		    PQgetvalue(res, 0, 0), NULL);
	PQclear(res);
	if (er != BW_OK)
		return er;
	return session_cache_mark(rds, cfg, key);
}

enum bw_err
session_forget_user(struct db *db, struct rds *rds, const struct config *cfg,
    const char *user_id, int revoke, int *n)
{
	/* clang-format off */
	static const char revoke_sql[] =
	    "UPDATE sessions SET revoked_at = now() "
	    "WHERE user_id = $1::uuid AND revoked_at IS NULL "
	    "RETURNING encode(token_hash, 'hex')";
	static const char live_sql[] =
	    "SELECT encode(token_hash, 'hex') FROM sessions "
	    "WHERE user_id = $1::uuid AND revoked_at IS NULL AND expires_at > now()";
	/* clang-format on */
	char	    key[SESSION_KEY_MAX];
	PGresult   *res = NULL;
	enum bw_err er, mer = BW_OK;
	int	    i;

	if (n != NULL)
		*n = 0;
	if (user_id == NULL || !jv_is_uuid(user_id, strlen(user_id)))
		return BW_ENOTFOUND;
	er = db_exec(db, revoke ? revoke_sql : live_sql, 1, &user_id, &res);
	if (er != BW_OK)
		return er;
	for (i = 0; i < PQntuples(res); i++) {
		snprintf(key, sizeof(key), "%s%s", SESSION_CACHE_PFX,
		    PQgetvalue(res, i, 0));
		if (session_cache_mark(rds, cfg, key) != BW_OK)
			mer = BW_EREDIS;
	}
	if (n != NULL)
		*n = PQntuples(res);
	if (revoke && PQntuples(res) > 0) {
		char cnt[16];

		snprintf(cnt, sizeof(cnt), "%d", PQntuples(res));
		log_kv(LL_INFO, "sessions revoked", "user_id", user_id, "count",
		    cnt, NULL);
	}
	PQclear(res);
	return mer;
}
