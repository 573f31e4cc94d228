/* SPDX-License-Identifier: MIT */
/*
 * Public verification of an export by its token (GET
 * /api/v1/public/verify/{token}): find the export through the hash of the
 * token, re-check the stored artifact offline (export_check.c), recompute
 * the chain over the export's range, add the covering signed daily roots
 * with inclusion proofs, and record "export.verified" in the org's ledger.
 */
#include <limits.h>
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

/* The row a token finds, with everything verification needs. */
struct export_verify_arg {
	const char *org_id;
	const char *id;
	const char *what; /* payload text of the ledger event */
};

static enum bw_err
export_verified_tx(struct db *db, void *arg)
{
	struct export_verify_arg *a = arg;
	struct ledger_entry	  le;
	uint8_t			  ph[32];

	export_payload_hash(a->id, "verified", a->what, ph);
	return ledger_append_tx(db, a->org_id, "export.verified", ph, &le);
}

enum bw_err
export_verify_public(struct db *db, const char *storage_dir, const char *token,
    struct json_object **out)
{
	struct export_verify_arg va;
	struct json_object	*o = NULL, *chain = NULL, *roots = NULL;
	struct json_object	*rep = NULL;
	struct buf		 raw, path;
	uint8_t			 h[32], zero[32];
	char			 thash[65], mh[65], what[160];
	const char		*p[1] = { thash };
	const char		*art, *stored;
	PGresult		*res = NULL;
	enum bw_err		 er;
	bool			 valid = false, usable;
	int64_t			 first = 0, last = 0;
	time_t			 now;
	struct tm		 tm;
	char			 ts[32];

	buf_init(&raw, 64);
	buf_init(&path, PATH_MAX);
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
	er = db_execp(db, "export_by_token",
	    "SELECT org_id, id, state, manifest_hash, artifact_path,"
	    " first_seq, last_seq, token_expires_at > now()"
	    " FROM exports WHERE verification_token_hash = decode($1, 'hex')",
	    1, p, &res);
	if (er != BW_OK)
		goto out;
	if (!usable || PQntuples(res) != 1 ||
	    strcmp(PQgetvalue(res, 0, 7), "t") != 0) {
		er = BW_ENOTFOUND;
		goto out;
	}
	o = json_object_new_object();
	json_object_object_add(o, "export_id", export_jstr(res, 0, 1));
	json_object_object_add(o, "state", export_jstr(res, 0, 2));
	json_object_object_add(o, "manifest_hash", export_jstr(res, 0, 3));
	art = db_col_str(res, 0, 4);
	stored = db_col_str(res, 0, 3);
	if (strcmp(PQgetvalue(res, 0, 2), "ready") == 0 && art != NULL &&
	    buf_printf(&path, "%s/%s", storage_dir, art) == BW_OK &&
	    export_artifact_check(path.p, NULL, &rep, &valid, mh) == BW_OK)
		valid = valid && stored != NULL && strcmp(mh, stored) == 0;
	else
		valid = false;
	json_object_object_add(o, "manifest_valid",
	    json_object_new_boolean(valid));
	if (db_col_i64(res, 0, 5, &first) == BW_OK &&
	    db_col_i64(res, 0, 6, &last) == BW_OK) {
		er = ledger_verify(db, PQgetvalue(res, 0, 0), first, last,
		    &chain);
		if (er == BW_OK)
			er = ledger_roots_for(db, PQgetvalue(res, 0, 0), first,
			    last, true, &roots);
		if (er != BW_OK)
			goto out;
	}
	json_object_object_add(o, "chain", chain);
	json_object_object_add(o, "ledger_roots",
	    roots != NULL ? roots : json_object_new_array());
	chain = roots = NULL;
	snprintf(what, sizeof(what), "%s:%s",
	    valid ? "manifest_valid" : "manifest_invalid",
	    jv_str(json_object_object_get(o, "chain"), "status", "none"));
	va.org_id = PQgetvalue(res, 0, 0);
	va.id = PQgetvalue(res, 0, 1);
	va.what = what;
	er = db_tx(db, false, export_verified_tx, &va);
	if (er != BW_OK)
		goto out;
	now = time(NULL);
	gmtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_object_object_add(o, "verified_at", json_object_new_string(ts));
	log_kv(LL_INFO, "export verified", "export_id", va.id, "manifest_valid",
	    valid ? "true" : "false", "chain",
	    jv_str(json_object_object_get(o, "chain"), "status", "none"), NULL);
	*out = o;
	o = NULL;
out:
	if (raw.p != NULL)
		sec_wipe(raw.p, raw.len);
	buf_free(&raw);
	buf_free(&path);
	PQclear(res);
	json_object_put(o);
	json_object_put(chain);
	json_object_put(roots);
	json_object_put(rep);
	return er;
}
