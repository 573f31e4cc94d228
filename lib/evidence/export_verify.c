/* SPDX-License-Identifier: MIT */
/*
 * Public verification of an export by its token (GET
 * /api/v1/public/verify/{token}): find the export through the hash of the
 * token, take manifest_valid from the artifact's stored check
 * (export_seal.c: one stat() of the file, not a read of it), recompute the
 * chain over the export's range, add the covering signed daily roots with
 * inclusion proofs, and count the verification on the export row.
 *
 * Nothing here reads the artifact on the common path, and nothing appends
 * to the org's ledger: an unauthenticated caller can neither hold a child
 * for the time of a re-hash nor take the org's ledger head lock. The count
 * is one single-row UPDATE committed without waiting for the WAL flush (a
 * crash may lose the last few increments; it is a counter, not evidence).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "core/jv.h"
#include "core/log.h"
#include "core/sec.h"
#include "evidence/export.h"
#include "evidence/export_int.h"
#include "evidence/ledger.h"

/*
 * Counts a verification on the export row: one statement, committed
 * without waiting for the WAL flush (set_config(..., true) is SET LOCAL for
 * the statement's own transaction, in force at its commit).
 */
static enum bw_err
export_count(struct db *db, const char *org_id, const char *id)
{
	const char *p[2] = { org_id, id };

	/* clang-format off */
	return db_execp(db, "export_verified_count",
	    "WITH a AS (SELECT set_config('synchronous_commit', 'off', true))"
	    " UPDATE exports SET verification_count = verification_count + 1,"
	    " last_verified_at = now() FROM a"
	    " WHERE org_id = $1::uuid AND id = $2::uuid",
	    2, p, NULL);
	/* clang-format on */
}

/* A string member, or JSON null for "" (never known). */
static struct json_object *
export_jstr_or_null(const char *s)
{
	return s[0] != '\0' ? json_object_new_string(s) : NULL;
}

/* clang-format off */
static const char export_sql_by_token[] =
    "SELECT org_id, id, state, manifest_hash, artifact_path, first_seq,"
    " last_seq, token_expires_at > now(), artifact_valid, artifact_sha256,"
    " artifact_stat, " DB_TS_UTC("checked_at")
    " FROM exports WHERE verification_token_hash = decode($1, 'hex')";
/* clang-format on */

enum bw_err
export_verify_public(struct db *db, const char *storage_dir, const char *token,
    struct json_object **out)
{
	struct export_seal_row sr;
	struct export_seal_now sn;
	struct json_object    *o = NULL, *chain = NULL, *roots = NULL;
	struct buf	       raw;
	uint8_t		       h[32], zero[32];
	char		       thash[65];
	const char	      *p[1] = { thash };
	PGresult	      *res = NULL;
	enum bw_err	       er;
	bool		       usable;
	int64_t		       first = 0, last = 0;
	time_t		       now;
	struct tm	       tm;
	char		       ts[32];

	buf_init(&raw, 64);
	memset(&sn, 0, sizeof(sn));
	/*
	 * Malformed tokens take the same path as unknown ones: a hash is
	 * looked up either way, through the unique index, never by
	 * comparing token text.
	 */
	usable = token != NULL && strlen(token) == EXPORT_TOKEN_LEN &&
	    sec_unb64url(token, EXPORT_TOKEN_LEN, &raw) == BW_OK &&
	    raw.len == 32;
	memset(zero, 0, sizeof(zero));
	if (sec_sha256(usable ? (const void *)raw.p : zero, 32, h) != BW_OK) {
		er = BW_ECRYPTO;
		goto out;
	}
	sec_hex(h, sizeof(h), thash);
	/* The export's org, past RLS (sql/0034_rls.sql), is the tenant of
	 * what follows. */
	er = db_execp(db, "export_org_by_token",
	    "SELECT bw_export_org_by_token($1)", 1, p, &res);
	if (er != BW_OK)
		goto out;
	if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0) ||
	    db_set_org(db, PQgetvalue(res, 0, 0)) != BW_OK) {
		er = BW_ENOTFOUND;
		goto out;
	}
	PQclear(res);
	res = NULL;
	er = db_execp(db, "export_by_token", export_sql_by_token, 1, p, &res);
	if (er != BW_OK)
		goto out;
	if (!usable || PQntuples(res) != 1 ||
	    strcmp(PQgetvalue(res, 0, 7), "t") != 0) {
		er = BW_ENOTFOUND;
		goto out;
	}
	sr.org_id = PQgetvalue(res, 0, 0);
	sr.id = PQgetvalue(res, 0, 1);
	sr.rel = db_col_str(res, 0, 4);
	sr.manifest_hash = db_col_str(res, 0, 3);
	sr.valid = db_col_str(res, 0, 8);
	sr.sha256 = db_col_str(res, 0, 9);
	sr.stat = db_col_str(res, 0, 10);
	sr.checked_at = db_col_str(res, 0, 11);
	if (strcmp(PQgetvalue(res, 0, 2), "ready") == 0) {
		er = export_seal_current(db, storage_dir, &sr, &sn);
		if (er != BW_OK)
			goto out;
	} else {
		/* Not (or no longer) ready: there is no artifact to vouch for. */
		snprintf(sn.sha256, sizeof(sn.sha256), "%s",
		    sr.sha256 != NULL ? sr.sha256 : "");
		snprintf(sn.checked_at, sizeof(sn.checked_at), "%s",
		    sr.checked_at != NULL ? sr.checked_at : "");
	}
	o = json_object_new_object();
	json_object_object_add(o, "export_id", export_jstr(res, 0, 1));
	json_object_object_add(o, "state", export_jstr(res, 0, 2));
	json_object_object_add(o, "manifest_hash", export_jstr(res, 0, 3));
	json_object_object_add(o, "manifest_valid",
	    json_object_new_boolean(sn.valid));
	json_object_object_add(o, "artifact_sha256",
	    export_jstr_or_null(sn.sha256));
	json_object_object_add(o, "checked_at",
	    export_jstr_or_null(sn.checked_at));
	if (db_col_i64(res, 0, 5, &first) == BW_OK &&
	    db_col_i64(res, 0, 6, &last) == BW_OK) {
		er = ledger_verify(db, sr.org_id, first, last, &chain);
		if (er == BW_OK)
			er = ledger_roots_for(db, sr.org_id, first, last, true,
			    &roots);
		if (er != BW_OK)
			goto out;
	}
	json_object_object_add(o, "chain", chain);
	json_object_object_add(o, "ledger_roots",
	    roots != NULL ? roots : json_object_new_array());
	chain = roots = NULL;
	er = export_count(db, sr.org_id, sr.id);
	if (er != BW_OK)
		goto out;
	now = time(NULL);
	gmtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_object_object_add(o, "verified_at", json_object_new_string(ts));
	log_kv(LL_INFO, "export verified", "export_id", sr.id, "manifest_valid",
	    sn.valid ? "true" : "false", "chain",
	    jv_str(json_object_object_get(o, "chain"), "status", "none"), NULL);
	*out = o;
	o = NULL;
out:
	if (raw.p != NULL)
		sec_wipe(raw.p, raw.len);
	buf_free(&raw);
	PQclear(res);
	json_object_put(o);
	json_object_put(chain);
	json_object_put(roots);
	return er;
}
