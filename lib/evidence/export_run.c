/* SPDX-License-Identifier: MIT */
/*
 * One attempt of an export job, run by bulwark-export (export_run): claim
 * the export (queued|processing -> processing under the job's lease
 * token), build the artifact (export_build.c), check it once and keep
 * the result (export_seal.c: what public verification answers from), then
 * mark it ready, or count the failure: back to queued, or failed for good
 * at the EXPORT_MAX_ATTEMPTS-th failure or a permanent one. Every
 * transition is guarded by the state it leaves and by attempt_token, so a
 * killed worker's late writes never land.
 *
 * The fence: the claim increments exports.attempt under the row lock and
 * the attempt writes only files named with its number; marking ready is
 * one UPDATE ... WHERE attempt = <ours> AND attempt_token = <our lease>.
 * An attempt that outlived its lease (paused, partitioned) and finishes
 * after a newer one finds the row no longer its own, logs "export attempt
 * lost the fence" and removes its own file; the file the ready row names
 * was never touched.
 */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/jv.h"
#include "core/log.h"
#include "evidence/export.h"
#include "evidence/export_int.h"
#include "platform/org.h"

/* Claims the export for this attempt: queued|processing -> processing. */
static enum bw_err
export_claim_tx(struct db *db, void *arg)
{
	struct export_attempt *a = arg;
	const char	      *p[3] = { a->org_id, a->id, a->token };
	PGresult	      *res = NULL;
	enum bw_err	       er;

	a->state = -1;
	er = db_execp(db, "export_claim",
	    "SELECT state, evidence_ids::text, range_from::text, range_to::text"
	    " FROM exports WHERE org_id = $1::uuid AND id = $2::uuid"
	    " FOR UPDATE",
	    2, p, &res);
	if (er != BW_OK)
		return er;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return BW_OK;
	}
	a->state = export_state_parse(PQgetvalue(res, 0, 0));
	free(a->ids);
	free(a->from);
	free(a->to);
	a->ids = db_col_dup(res, 0, 1);
	a->from = db_col_dup(res, 0, 2);
	a->to = db_col_dup(res, 0, 3);
	PQclear(res);
	if ((a->ids == NULL && (a->from == NULL || a->to == NULL)))
		return BW_ENOMEM;
	if (a->state != ES_QUEUED && a->state != ES_PROCESSING)
		return BW_OK;
	er = db_execp(db, "export_processing",
	    "UPDATE exports SET state = 'processing', started_at = now(),"
	    " attempt_token = $3, attempt = attempt + 1"
	    " WHERE org_id = $1::uuid AND id = $2::uuid RETURNING attempt",
	    3, p, &res);
	if (er != BW_OK)
		return er;
	a->attempt = PQntuples(res) == 1 ? (int)db_col_i64_or(res, 0, 0, 0) : 0;
	PQclear(res);
	if (a->attempt < 1)
		return BW_EDB;
	return export_event_tx(db, a->org_id, a->id, "processing", NULL,
	    a->worker);
}

/* Marks the export ready if this attempt still owns it. */
static enum bw_err
export_ready_tx(struct db *db, void *arg)
{
	struct export_attempt *a = arg;
	char	    size[24], first[24], last[24], n[24], days[16], att[16];
	const char *p[13];
	PGresult   *res = NULL;
	enum bw_err er;

	snprintf(size, sizeof(size), "%" PRId64, a->size);
	snprintf(first, sizeof(first), "%" PRId64, a->first);
	snprintf(last, sizeof(last), "%" PRId64, a->last);
	snprintf(n, sizeof(n), "%" PRId64, a->nfiles);
	snprintf(days, sizeof(days), "%d", a->retention_days);
	p[0] = a->org_id;
	p[1] = a->id;
	p[2] = a->token;
	p[3] = a->manifest_hash;
	p[4] = size;
	p[5] = a->rel;
	p[6] = first;
	p[7] = last;
	p[8] = n;
	p[9] = days;
	p[10] = a->seal.sha256;
	p[11] = a->seal.stat;
	p[12] = att;
	snprintf(att, sizeof(att), "%d", a->attempt);
	a->done = 0;
	/* expires_at: the expiry under the tier of now; retention and reads
	 * recompute it from the org's tier then (EXPORT_DUE_AT). The export
	 * adds its claim-to-ready seconds to the buckets of the histogram
	 * (export_durations, sql/0043) in the same statement. */
	er = db_execp(db, "export_ready",
	    "WITH r AS (UPDATE exports SET state = 'ready', manifest_hash = $4,"
	    " size = $5::bigint, artifact_path = $6, first_seq = $7::bigint,"
	    " last_seq = $8::bigint, evidence_count = $9::int,"
	    " finished_at = now(), error = NULL, error_category = NULL,"
	    " expires_at = now() + make_interval(days => $10::int),"
	    " attempt_token = NULL, artifact_sha256 = $11,"
	    " artifact_valid = true, artifact_stat = $12, checked_at = now(),"
	    " check_claimed_at = NULL"
	    " WHERE org_id = $1::uuid AND id = $2::uuid"
	    "  AND state = 'processing' AND attempt_token = $3"
	    "  AND attempt = $13::int RETURNING id,"
	    "  CASE WHEN started_at IS NOT NULL THEN greatest(extract(epoch"
	    "  FROM finished_at - started_at), 0)::double precision END AS s),"
	    " h AS (UPDATE export_durations d SET n = d.n + 1,"
	    "  sum = d.sum + CASE WHEN d.le = 'Infinity' THEN r.s ELSE 0 END"
	    "  FROM r WHERE r.s IS NOT NULL AND r.s <= d.le)"
	    " SELECT id FROM r",
	    13, p, &res);
	if (er != BW_OK)
		return er;
	a->done = PQntuples(res) == 1;
	PQclear(res);
	if (!a->done)
		return BW_OK;
	return export_event_tx(db, a->org_id, a->id, "ready", NULL, a->worker);
}

/*
 * Counts a failed attempt if this attempt still owns the export: back to
 * queued, or failed for good at EXPORT_MAX_ATTEMPTS or when permanent.
 */
static enum bw_err
export_failed_tx(struct db *db, void *arg)
{
	struct export_attempt *a = arg;
	char		       maxa[8];
	const char	      *p[7];
	PGresult	      *res = NULL;
	enum bw_err	       er;

	snprintf(maxa, sizeof(maxa), "%d", EXPORT_MAX_ATTEMPTS);
	p[0] = a->org_id;
	p[1] = a->id;
	p[2] = a->token;
	p[3] = a->fail->msg;
	p[4] = export_category_name(a->fail->cat);
	p[5] = a->fail->permanent ? "t" : "f";
	p[6] = maxa;
	a->done = 0;
	a->final = 0;
	er = db_execp(db, "export_failed",
	    "UPDATE exports SET failure_count = failure_count + 1,"
	    " error = $4, error_category = $5, attempt_token = NULL,"
	    " state = CASE WHEN $6::bool OR failure_count + 1 >= $7::int"
	    "  THEN 'failed' ELSE 'queued' END,"
	    " finished_at = CASE WHEN $6::bool OR failure_count + 1 >= $7::int"
	    "  THEN now() END,"
	    " queued_at = CASE WHEN $6::bool OR failure_count + 1 >= $7::int"
	    "  THEN queued_at ELSE now() END"
	    " WHERE org_id = $1::uuid AND id = $2::uuid"
	    "  AND state = 'processing' AND attempt_token = $3"
	    " RETURNING state",
	    7, p, &res);
	if (er != BW_OK)
		return er;
	a->done = PQntuples(res) == 1;
	if (a->done)
		a->final = strcmp(PQgetvalue(res, 0, 0), "failed") == 0;
	PQclear(res);
	if (!a->done)
		return BW_OK;
	return export_event_tx(db, a->org_id, a->id,
	    a->final ? "failed" : "queued", export_category_name(a->fail->cat),
	    a->worker);
}

/*
 * Checks the artifact just renamed into place, once, as public
 * verification would: every member against the manifest, the manifest
 * against its hash; keeps the verdict, the whole file's SHA-256 and its
 * stat in a->seal for export_ready_tx(). An artifact that fails its own
 * check is a failed attempt (storage), never a ready export.
 */
static enum bw_err
export_seal_built(const char *storage_dir, struct export_attempt *a,
    struct export_fail *fl)
{
	struct buf  path;
	enum bw_err er;

	buf_init(&path, PATH_MAX);
	er = buf_printf(&path, "%s/%s", storage_dir, a->rel);
	if (er == BW_OK)
		er = export_seal_file(path.p, a->manifest_hash, NULL, &a->seal);
	buf_free(&path);
	if (er != BW_OK)
		return export_failf(fl,
		    er == BW_ENOMEM ? EC_INTERNAL : EC_STORAGE, false, er,
		    "checking the artifact: %s", bw_strerror(er));
	if (!a->seal.valid)
		return export_failf(fl, EC_STORAGE, false, BW_EIO,
		    "the artifact does not pass its check");
	return BW_OK;
}

/* Parses the job payload {"org_id","export_id"} into org and id. */
static enum bw_err
export_payload(const char *payload, char org[37], char id[37])
{
	struct json_object *o = NULL;
	const char	   *a, *b;
	enum bw_err	    er;

	er = jv_parse(payload, strlen(payload), 4, &o);
	if (er != BW_OK)
		return BW_EINVAL;
	a = jv_str(o, "org_id", "");
	b = jv_str(o, "export_id", "");
	if (!jv_is_uuid(a, strlen(a)) || !jv_is_uuid(b, strlen(b)))
		er = BW_EINVAL;
	else {
		snprintf(org, 37, "%s", a);
		snprintf(id, 37, "%s", b);
	}
	json_object_put(o);
	return er;
}

enum bw_err
export_run(struct db *db, const char *storage_dir, const struct jobq_job *job,
    const char *worker, int (*stopping)(void), int pause_ms,
    enum export_category *category, bool *permanent, char *errmsg,
    size_t errlen)
{
	struct export_attempt a;
	struct export_fail    fl;
	struct json_object   *org = NULL;
	char		      org_id[37], id[37];
	enum bw_err	      er, er2;
	bool		      canceled = false;

	memset(&a, 0, sizeof(a));
	memset(&fl, 0, sizeof(fl));
	*permanent = false;
	*category = EC_INTERNAL;
	if (export_payload(job->payload, org_id, id) != BW_OK) {
		snprintf(errmsg, errlen, "bad job payload");
		*category = EC_VALIDATION;
		*permanent = true;
		return BW_EINVAL;
	}
	log_kv(LL_INFO, "export attempt", "export_id", id, NULL);
	a.org_id = org_id;
	a.id = id;
	a.token = job->lease_token;
	a.worker = worker;
	er = db_tx(db, false, export_claim_tx, &a);
	if (er != BW_OK) {
		/* Not claimed: nothing to count on the export. */
		*category = export_db_category(er);
		snprintf(errmsg, errlen, "claiming the export: %s",
		    bw_strerror(er));
		goto out;
	}
	if (a.state != ES_QUEUED && a.state != ES_PROCESSING) {
		log_kv(LL_INFO, "export needs no work", "export_id", id,
		    "state", a.state >= 0 ? export_state_name(a.state) : "gone",
		    NULL);
		er = BW_OK;
		goto out;
	}
	er = org_get(db, org_id, &org);
	if (er != BW_OK) {
		export_failf(&fl, export_db_category(er), false, er,
		    "reading the org: %s", bw_strerror(er));
		goto failed;
	}
	a.retention_days = org_tier_retention_days(jv_str(org, "tier", NULL));
	er = export_build(db, storage_dir, &a, stopping, pause_ms, &canceled,
	    &fl);
	if (er != BW_OK)
		goto failed;
	if (canceled) {
		log_kv(LL_INFO, "export canceled during the build", "export_id",
		    id, NULL);
		goto out;
	}
	er = export_seal_built(storage_dir, &a, &fl);
	if (er != BW_OK) {
		export_unlink_rel(storage_dir, a.rel);
		goto failed;
	}
	er = db_tx(db, false, export_ready_tx, &a);
	if (er != BW_OK) {
		/* The file stays: the commit may have landed with only its
		 * answer lost, and then the ready row names it. If not, no
		 * ready row owns it and retention sweeps it as an orphan. */
		export_failf(&fl, export_db_category(er), false, er,
		    "marking ready: %s", bw_strerror(er));
		goto failed;
	}
	if (!a.done) {
		/* Canceled meanwhile, or a newer attempt owns it now: the
		 * file is this attempt's own, which no row names. */
		char n[16];

		snprintf(n, sizeof(n), "%d", a.attempt);
		export_unlink_rel(storage_dir, a.rel);
		log_kv(LL_WARN, "export attempt lost the fence", "export_id",
		    id, "attempt", n, "removed", a.rel, NULL);
		goto out;
	}
	{
		char sz[24];

		snprintf(sz, sizeof(sz), "%" PRId64, a.size);
		log_kv(LL_INFO, "export ready", "export_id", id,
		    "manifest_hash", a.manifest_hash, "size", sz, NULL);
	}
	goto out;
failed:
	*category = fl.cat;
	snprintf(errmsg, errlen, "%s: %s", export_category_name(fl.cat),
	    fl.msg[0] != '\0' ? fl.msg : bw_strerror(er));
	if (er == BW_ETIMEOUT) {
		/* A stop, not a failure of the export: retried, uncounted. */
		a.fail = &fl;
		goto out;
	}
	a.fail = &fl;
	er2 = db_tx(db, false, export_failed_tx, &a);
	if (er2 != BW_OK)
		log_kv(LL_ERROR, "export failure not recorded", "export_id", id,
		    "error", bw_strerror(er2), NULL);
	else if (a.final) {
		*permanent = true;
		log_kv(LL_WARN, "export failed for good", "export_id", id,
		    "category", export_category_name(fl.cat), "error", fl.msg,
		    NULL);
	}
	if (er == BW_OK)
		er = BW_EIO;
out:
	json_object_put(org);
	free(a.ids);
	free(a.from);
	free(a.to);
	return er;
}
