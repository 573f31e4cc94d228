/* SPDX-License-Identifier: MIT */
/*
 * The Idempotency-Key store: the key syntax, the request fingerprint and
 * the SQL of table idempotency_keys. Every step is one autocommit
 * statement whose WHERE clause carries the state it expects (the lock
 * token, status IS NULL, the lock age), so concurrent requests on several
 * hosts serialize on the row and never both get IO_RUN.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "platform/idem.h"
#include "core/sec.h"

/*
 * The incarnation of the primary a lock was taken on: its timeline (the
 * first 8 hex digits of the current WAL file's name; a promotion starts a
 * new one) and its postmaster's start (a restart). A lock from another
 * one belongs to a session that died with that primary or its restart, so
 * it is stale at once rather than after the lock timeout. Safe as the
 * timeout is: the takeover changes lock_token, and completing or releasing
 * needs the token (idem_sql_complete, idem_sql_release), so a holder that
 * reconnected to the new primary cannot settle over the new holder.
 * Rows from before 0037 (NULL) wait for the timeout.
 */
#define IDEM_EPOCH                                                       \
	"(substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8) || '/' ||" \
	" extract(epoch FROM pg_postmaster_start_time())::text)"
/* The lock is from another incarnation of the primary. */
#define IDEM_MOVED "(lock_epoch IS NOT NULL AND lock_epoch <> " IDEM_EPOCH ")"

/*
 * Locks a new key, or an expired one (treated as absent and overwritten).
 * Returns the lock token when this request got the row, no row otherwise.
 */
static const char idem_sql_lock[] =
    "INSERT INTO idempotency_keys AS k (org_id, idem_key, fingerprint,"
    "  lock_token, expires_at, lock_epoch)"
    " VALUES ($1::uuid, $2, $3, gen_random_uuid(),"
    "  now() + make_interval(secs => $4::int), " IDEM_EPOCH ")"
    " ON CONFLICT (org_id, idem_key) DO UPDATE SET"
    "  fingerprint = EXCLUDED.fingerprint,"
    "  lock_token = EXCLUDED.lock_token, locked_at = now(),"
    "  lock_epoch = EXCLUDED.lock_epoch,"
    "  created_at = now(), expires_at = EXCLUDED.expires_at,"
    "  status = NULL, content_type = NULL, headers = NULL, body = NULL,"
    "  completed_at = NULL"
    "  WHERE k.expires_at <= now()"
    " RETURNING lock_token";

/*
 * The row another request made; stale tells whether its lock timed out or
 * is from another incarnation of the primary.
 */
static const char idem_sql_look[] =
    "SELECT fingerprint, status, content_type, headers, body, lock_token,"
    "  (locked_at < now() - make_interval(secs => $3::int)"
    "   OR " IDEM_MOVED "), sealed"
    " FROM idempotency_keys WHERE org_id = $1::uuid AND idem_key = $2";

/*
 * Takes over the lock of a request that died: only while the row still
 * holds the token we saw, is not completed and the lock is still old, so
 * of two requests racing for it exactly one wins.
 */
static const char idem_sql_takeover[] =
    "UPDATE idempotency_keys SET lock_token = gen_random_uuid(),"
    "  locked_at = now(), lock_epoch = " IDEM_EPOCH
    " WHERE org_id = $1::uuid AND idem_key = $2 AND lock_token = $3::uuid"
    "  AND status IS NULL"
    "  AND (locked_at < now() - make_interval(secs => $4::int)"
    "   OR " IDEM_MOVED ")"
    " RETURNING lock_token";

static const char idem_sql_complete[] =
    "UPDATE idempotency_keys SET status = $4::int, content_type = $5,"
    "  headers = $6, body = $7::bytea, completed_at = now(), sealed = true"
    " WHERE org_id = $1::uuid AND idem_key = $2 AND lock_token = $3::uuid"
    "  AND status IS NULL";

static const char idem_sql_release[] =
    "DELETE FROM idempotency_keys"
    " WHERE org_id = $1::uuid AND idem_key = $2 AND lock_token = $3::uuid"
    "  AND status IS NULL";

/* Whether the request holding token completed the row (it committed). */
static const char idem_sql_done[] =
    "SELECT 1 FROM idempotency_keys"
    " WHERE org_id = $1::uuid AND idem_key = $2 AND lock_token = $3::uuid"
    "  AND status IS NOT NULL";

/* Rows being overwritten by a new request are skipped, not waited for. */
static const char idem_sql_purge[] =
    "DELETE FROM idempotency_keys WHERE (org_id, idem_key) IN ("
    "  SELECT org_id, idem_key FROM idempotency_keys"
    "  WHERE expires_at < now() ORDER BY expires_at LIMIT $1::int"
    "  FOR UPDATE SKIP LOCKED)"
    " AND expires_at < now()";

/* See idem.h. */
enum bw_err
idem_khash(const char *key, char out[65])
{
	uint8_t h[32];

	if (sec_sha256(key, strlen(key), h) != BW_OK)
		return BW_ECRYPTO;
	sec_hex(h, sizeof(h), out);
	return BW_OK;
}

/*
 * The AES-256-GCM key that seals a stored body: HMAC-SHA256 keyed by the
 * Idempotency-Key over a label and the org. Only a client presenting the
 * key (authenticated to the org) gets the body back: a verification token
 * in a replayable answer is not readable from the table.
 */
static enum bw_err
idem_seal_key(const char *key, const char *org_id, uint8_t out[32])
{
	char msg[96];

	snprintf(msg, sizeof(msg), "bulwark idempotency body v1:%s", org_id);
	return sec_hmac_sha256(key, strlen(key), msg, strlen(msg), out);
}

void
idem_resp_init(struct idem_resp *st)
{
	st->status = 0;
	st->ctype[0] = '\0';
	buf_init(&st->headers, BW_MAX_IDEM_HEADERS);
	buf_init(&st->body, BW_MAX_RESPONSE);
}

void
idem_resp_free(struct idem_resp *st)
{
	if (st == NULL)
		return;
	buf_free(&st->headers);
	buf_free(&st->body);
}

/* Appends c to the key being decoded; BW_EINVAL past the maximum length. */
static enum bw_err
idem_key_put(char *out, size_t *n, char c)
{
	if (*n >= BW_MAX_IDEM_KEY)
		return BW_EINVAL;
	out[(*n)++] = c;
	return BW_OK;
}

/*
 * See idem.h. An sf-string holds %x20-7E with '"' and '\' escaped by '\'
 * (RFC 8941 §3.3.3); a bare value holds %x21-7E but '"' and '\'. out is
 * written only on success.
 */
enum bw_err
idem_key_parse(const char *hdr, char out[BW_MAX_IDEM_KEY + 1])
{
	char	    key[BW_MAX_IDEM_KEY + 1];
	const char *p, *e;
	size_t	    n = 0;

	if (hdr == NULL)
		return BW_EINVAL;
	for (p = hdr; *p == ' ' || *p == '\t'; p++)
		continue;
	e = p + strlen(p);
	while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	if (e == p)
		return BW_EINVAL;
	if (*p == '"') {
		/* Needs a closing quote of its own, not an escaped one. */
		for (p++; p < e; p++) {
			unsigned char c = (unsigned char)*p;

			if (c == '\\') {
				if (p + 1 >= e || (p[1] != '"' && p[1] != '\\'))
					return BW_EINVAL;
				p++;
				c = (unsigned char)*p;
			} else if (c == '"') {
				break;
			} else if (c < 0x20 || c > 0x7e)
				return BW_EINVAL;
			if (idem_key_put(key, &n, (char)c) != BW_OK)
				return BW_EINVAL;
		}
		if (p >= e || p + 1 != e)
			return BW_EINVAL;
	} else {
		for (; p < e; p++) {
			unsigned char c = (unsigned char)*p;

			if (c < 0x21 || c > 0x7e || c == '"' || c == '\\')
				return BW_EINVAL;
			if (idem_key_put(key, &n, (char)c) != BW_OK)
				return BW_EINVAL;
		}
	}
	if (n == 0)
		return BW_EINVAL;
	key[n] = '\0';
	memcpy(out, key, n + 1);
	return BW_OK;
}

/* See idem.h. BW_EINVAL on NULL arguments, else sec_sha256()'s error. */
enum bw_err
idem_fingerprint(const char *method, const char *path,
    const uint8_t body_sha256[32], char out[IDEM_FP_LEN + 1])
{
	struct buf  b;
	uint8_t	    h[32];
	enum bw_err er;

	if (method == NULL || path == NULL || body_sha256 == NULL)
		return BW_EINVAL;
	buf_init(&b, BW_MAX_PATH + 64);
	er = buf_addstr(&b, method);
	if (er == BW_OK)
		er = buf_add(&b, "", 1);
	if (er == BW_OK)
		er = buf_addstr(&b, path);
	if (er == BW_OK)
		er = buf_add(&b, "", 1);
	if (er == BW_OK)
		er = buf_add(&b, body_sha256, 32);
	if (er == BW_OK)
		er = sec_sha256(b.p, b.len, h);
	if (er == BW_OK)
		sec_hex(h, sizeof(h), out);
	buf_free(&b);
	return er;
}

/* Copies the token column of a one-row result. */
static void
idem_token_copy(PGresult *res, char token[IDEM_TOKEN_LEN + 1])
{
	snprintf(token, IDEM_TOKEN_LEN + 1, "%s", PQgetvalue(res, 0, 0));
}

/*
 * Fills st from the stored response columns of an idem_sql_look row.
 * BW_ETOOBIG when it does not fit (cannot happen for what we stored),
 * BW_ENOMEM.
 */
static enum bw_err
idem_resp_load(PGresult *res, const uint8_t bkey[32], const char *org_id,
    struct idem_resp *st)
{
	unsigned char *raw;
	size_t	       n = 0;
	enum bw_err    er;

	st->status = (int)db_col_i64_or(res, 0, 1, 0);
	snprintf(st->ctype, sizeof(st->ctype), "%s",
	    PQgetisnull(res, 0, 2) ? "application/json"
				   : PQgetvalue(res, 0, 2));
	buf_reset(&st->headers);
	buf_reset(&st->body);
	if (!PQgetisnull(res, 0, 3)) {
		er = buf_addstr(&st->headers, PQgetvalue(res, 0, 3));
		if (er != BW_OK)
			return er;
	}
	if (PQgetisnull(res, 0, 4))
		return BW_OK;
	raw = PQunescapeBytea((const unsigned char *)PQgetvalue(res, 0, 4), &n);
	if (raw == NULL)
		return BW_ENOMEM;
	if (strcmp(PQgetvalue(res, 0, 7), "t") == 0)
		er = sec_open(bkey, org_id, strlen(org_id), raw, n, &st->body);
	else
		er = buf_add(&st->body, raw, n); /* stored before sealing */
	PQfreemem(raw);
	if (er == BW_ECRYPTO)
		log_kv(LL_ERROR, "idempotency body does not open", NULL);
	return er;
}

/* See idem.h. */
enum bw_err
idem_begin(struct db *db, const char *org_id, const char *key,
    const char *fingerprint, int lock_timeout_s, enum idem_outcome *oc,
    char token[IDEM_TOKEN_LEN + 1], int *took_over, struct idem_resp *st)
{
	char	    ttl[16], lto[16], old[IDEM_TOKEN_LEN + 1], kh[65];
	const char *p[4];
	PGresult   *res = NULL;
	uint8_t	    bkey[32];
	enum bw_err er = BW_OK;
	int	    try, stale;

	if (org_id == NULL || key == NULL || fingerprint == NULL ||
	    lock_timeout_s < 1 || oc == NULL || token == NULL || st == NULL)
		return BW_EINVAL;
	if (idem_khash(key, kh) != BW_OK ||
	    idem_seal_key(key, org_id, bkey) != BW_OK)
		return BW_ECRYPTO;
	snprintf(ttl, sizeof(ttl), "%d", BW_IDEM_TTL_S);
	snprintf(lto, sizeof(lto), "%d", lock_timeout_s);
	/*
	 * A row can vanish between our statements (released after a 5xx,
	 * purged) or its lock be taken by a racer: look again, a few times.
	 */
	for (try = 0; try < BW_IDEM_BEGIN_TRIES; try++) {
		p[0] = org_id;
		p[1] = kh;
		p[2] = fingerprint;
		p[3] = ttl;
		er = db_execp(db, "idem_lock", idem_sql_lock, 4, p, &res);
		if (er != BW_OK)
			goto out;
		if (PQntuples(res) == 1) {
			idem_token_copy(res, token);
			if (took_over != NULL)
				*took_over = 0;
			*oc = IO_RUN;
			goto out;
		}
		PQclear(res);
		res = NULL;

		p[2] = lto;
		er = db_execp(db, "idem_look", idem_sql_look, 3, p, &res);
		if (er != BW_OK)
			goto out;
		if (PQntuples(res) != 1) {
			PQclear(res);
			res = NULL;
			continue;
		}
		if (strcmp(PQgetvalue(res, 0, 0), fingerprint) != 0) {
			*oc = IO_MISMATCH;
			goto out;
		}
		if (!PQgetisnull(res, 0, 1)) {
			er = idem_resp_load(res, bkey, org_id, st);
			if (er == BW_OK)
				*oc = IO_REPLAY;
			goto out;
		}
		stale = strcmp(PQgetvalue(res, 0, 6), "t") == 0;
		snprintf(old, sizeof(old), "%s", PQgetvalue(res, 0, 5));
		PQclear(res);
		res = NULL;
		if (!stale) {
			*oc = IO_IN_USE;
			goto out;
		}

		p[2] = old;
		p[3] = lto;
		er = db_execp(db, "idem_takeover", idem_sql_takeover, 4, p,
		    &res);
		if (er != BW_OK)
			goto out;
		if (PQntuples(res) == 1) {
			idem_token_copy(res, token);
			if (took_over != NULL)
				*took_over = 1;
			*oc = IO_RUN;
			goto out;
		}
		PQclear(res);
		res = NULL;
	}
	/* Still changing under us: someone else is busy with this key. */
	*oc = IO_IN_USE;
out:
	sec_wipe(bkey, sizeof(bkey));
	PQclear(res);
	return er;
}

/* Runs a statement on the row locked by token; BW_ENOTFOUND if none. */
static enum bw_err
idem_by_token(struct db *db, const char *name, const char *sql, int np,
    const char *const *p)
{
	PGresult   *res = NULL;
	enum bw_err er;

	er = db_execp(db, name, sql, np, p, &res);
	if (er == BW_OK && strcmp(PQcmdTuples(res), "1") != 0)
		er = BW_ENOTFOUND;
	PQclear(res);
	return er;
}

/* See idem.h. The body travels as bytea hex text ("\x..."). */
enum bw_err
idem_complete(struct db *db, const char *org_id, const char *key,
    const char *token, int status, const char *ctype, const char *headers,
    size_t hlen, const void *body, size_t blen)
{
	struct buf  hx, hd, sealed;
	char	    st[16], *hex = NULL, kh[65];
	const char *p[7];
	uint8_t	    bkey[32];
	enum bw_err er;

	if (org_id == NULL || key == NULL || token == NULL || status < 100 ||
	    status > 599 || (body == NULL && blen > 0) ||
	    (headers == NULL && hlen > 0))
		return BW_EINVAL;
	if (blen > BW_MAX_RESPONSE || hlen > BW_MAX_IDEM_HEADERS)
		return BW_ETOOBIG;
	buf_init(&hx, 2 * (BW_MAX_RESPONSE + SEC_SEAL_OVERHEAD) + 3);
	buf_init(&hd, BW_MAX_IDEM_HEADERS);
	buf_init(&sealed, BW_MAX_RESPONSE + SEC_SEAL_OVERHEAD);
	er = idem_khash(key, kh);
	if (er == BW_OK)
		er = idem_seal_key(key, org_id, bkey);
	if (er == BW_OK)
		er =
		    sec_seal(bkey, org_id, strlen(org_id), body, blen, &sealed);
	sec_wipe(bkey, sizeof(bkey));
	if (er != BW_OK)
		goto out;
	hex = malloc(2 * sealed.len + 1);
	if (hex == NULL) {
		er = BW_ENOMEM;
		goto out;
	}
	sec_hex((const uint8_t *)sealed.p, sealed.len, hex);
	er = buf_add(&hx, "\\x", 2);
	if (er == BW_OK)
		er = buf_add(&hx, hex, 2 * sealed.len);
	if (er == BW_OK)
		er = buf_add(&hd, headers != NULL ? headers : "", hlen);
	if (er != BW_OK)
		goto out;
	snprintf(st, sizeof(st), "%d", status);
	p[0] = org_id;
	p[1] = kh;
	p[2] = token;
	p[3] = st;
	p[4] = ctype != NULL ? ctype : "application/json";
	p[5] = buf_cstr(&hd);
	p[6] = buf_cstr(&hx);
	er = idem_by_token(db, "idem_complete", idem_sql_complete, 7, p);
out:
	free(hex);
	buf_free(&sealed);
	buf_free(&hx);
	buf_free(&hd);
	return er;
}

/* See idem.h. */
enum bw_err
idem_release(struct db *db, const char *org_id, const char *key,
    const char *token)
{
	const char *p[3];
	char	    kh[65];

	if (org_id == NULL || key == NULL || token == NULL)
		return BW_EINVAL;
	if (idem_khash(key, kh) != BW_OK)
		return BW_ECRYPTO;
	p[0] = org_id;
	p[1] = kh;
	p[2] = token;
	return idem_by_token(db, "idem_release", idem_sql_release, 3, p);
}

/* See idem.h. */
enum bw_err
idem_settle(struct db *db, const char *org_id, const char *key,
    const char *token, bool *committed)
{
	const char *p[3];
	char	    kh[65];
	PGresult   *res = NULL;
	enum bw_err er;

	if (org_id == NULL || key == NULL || token == NULL || committed == NULL)
		return BW_EINVAL;
	/*
	 * The release waits for the row lock that the lost transaction's
	 * completion holds until it ends, then sees its outcome.
	 */
	er = idem_release(db, org_id, key, token);
	if (er == BW_OK) {
		*committed = false;
		return BW_OK;
	}
	if (er != BW_ENOTFOUND)
		return er;
	if (idem_khash(key, kh) != BW_OK)
		return BW_ECRYPTO;
	p[0] = org_id;
	p[1] = kh;
	p[2] = token;
	er = db_execp(db, "idem_done", idem_sql_done, 3, p, &res);
	if (er == BW_OK && db_rows(res) != 1)
		er = BW_ENOTFOUND;
	PQclear(res);
	if (er == BW_OK) {
		/* Seen committed on this server: the answer that says so
		 * waits until the synchronous standby has it too. */
		db_need_sync(db);
		*committed = true;
	}
	return er;
}

/* See idem.h. */
enum bw_err
idem_purge(struct db *db, int batch, int *n)
{
	char	    b[16];
	const char *p[1];
	PGresult   *res = NULL;
	enum bw_err er = BW_OK;
	long	    got;
	int	    total = 0;

	if (batch < 1 || n == NULL)
		return BW_EINVAL;
	snprintf(b, sizeof(b), "%d", batch);
	p[0] = b;
	do {
		er = db_execp(db, "idem_purge", idem_sql_purge, 1, p, &res);
		if (er != BW_OK)
			break;
		got = db_rows(res);
		PQclear(res);
		res = NULL;
		if (got > 0 && total <= 0x7fffffff - got)
			total += (int)got;
	} while (got >= batch);
	*n = total;
	return er;
}
