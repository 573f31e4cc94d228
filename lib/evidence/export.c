/* SPDX-License-Identifier: MIT */
/*
 * Evidence exports: the `exports` and `export_events` tables and their
 * state machine (creation, reading, cancel, download, the queue metrics).
 * The worker's attempt is in export_run.c and export_build.c, the
 * artifact's offline check in export_check.c, public verification in
 * export_verify.c, retention in export_retention.c.
 *
 * State changes run in one transaction each, guarded by the state they
 * leave (and, for the worker, by attempt_token, the lease token of the job
 * attempt that moved the export to processing), so that a killed worker's
 * late writes, a second retention pass or a concurrent cancel never act
 * twice. Each change adds an export_events row and an "export.state" event
 * to the org's ledger.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/jv.h"
#include "core/limits.h"
#include "core/log.h"
#include "core/sec.h"
#include "evidence/export.h"
#include "evidence/export_int.h"
#include "evidence/ledger.h"
#include "platform/org.h"

static const char *const export_states[ES__MAX] = { "queued", "processing",
	"ready", "failed", "canceled", "expired" };
static const char *const export_categories[EC__MAX] = { "storage", "database",
	"validation", "internal" };

const char *
export_state_name(enum export_state s)
{
	return s >= 0 && s < ES__MAX ? export_states[s] : "unknown";
}

const char *
export_category_name(enum export_category c)
{
	return c >= 0 && c < EC__MAX ? export_categories[c] : "internal";
}

int
export_state_parse(const char *s)
{
	int i;

	for (i = 0; s != NULL && i < ES__MAX; i++)
		if (strcmp(s, export_states[i]) == 0)
			return i;
	return -1;
}

/* The database error class of er: database for PostgreSQL trouble. */

/* SHA-256 of "a:b:c" (the payload hash of a ledger event about an export). */
void
export_payload_hash(const char *a, const char *b, const char *c,
    uint8_t out[32])
{
	struct buf t;

	buf_init(&t, 1024);
	if (buf_printf(&t, "%s:%s:%s", a, b, c != NULL ? c : "") != BW_OK ||
	    sec_sha256(t.p, t.len, out) != BW_OK)
		memset(out, 0, 32);
	buf_free(&t);
}

/*
 * Records a state change inside the caller's transaction: the
 * export_events row (with category for a failed attempt) and the ledger
 * event "export.state". Returns a db or ledger error.
 */
enum bw_err
export_event_tx(struct db *db, const char *org_id, const char *id,
    const char *state, const char *category, const char *worker)
{
	const char	   *p[5] = { org_id, id, state, category, worker };
	struct ledger_entry le;
	uint8_t		    ph[32];
	enum bw_err	    er;

	er = db_execp(db, "export_event",
	    "INSERT INTO export_events (org_id, export_id, state, category,"
	    " worker) VALUES ($1::uuid, $2::uuid, $3, $4, $5)",
	    5, p, NULL);
	if (er != BW_OK)
		return er;
	export_payload_hash(id, state, category, ph);
	return ledger_append_tx(db, org_id, "export.state", ph, &le);
}

/* --- creation ------------------------------------------------------------ */

struct export_create_arg {
	const struct export_req *rq;
	const char		*ids;	/* uuid[] literal or NULL */
	const char		*thash; /* hex SHA-256 of the token */
	const char		*spec;	/* canonical request text */
	char			 id[37];
};

/* One creation transaction (db_tx() may run it again). */
static enum bw_err
export_create_tx(struct db *db, void *arg)
{
	struct export_create_arg *a = arg;
	const struct export_req	 *rq = a->rq;
	struct jobq_spec	  js;
	struct ledger_entry	  le;
	struct buf		  payload;
	char			  ttl[16], job_id[37];
	const char		 *p[8];
	PGresult		 *res = NULL;
	uint8_t			  ph[32];
	enum bw_err		  er;
	bool			  created = false;

	if (a->ids != NULL) {
		/* Every named id must be evidence of this org (contract: another
		 * org's ids are 404, the same as ids that do not exist). */
		p[0] = rq->org_id;
		p[1] = a->ids;
		er = db_execp(db, "export_ids_owned",
		    "SELECT (SELECT count(DISTINCT u) FROM unnest($2::uuid[]) "
		    "u)"
		    " = (SELECT count(*) FROM evidence"
		    "    WHERE org_id = $1::uuid AND id = ANY($2::uuid[]))",
		    2, p, &res);
		if (er != BW_OK)
			return er;
		er = strcmp(PQgetvalue(res, 0, 0), "t") == 0 ? BW_OK
							     : BW_ENOTFOUND;
		PQclear(res);
		res = NULL;
		if (er != BW_OK)
			return er;
	}
	snprintf(ttl, sizeof(ttl), "%d", EXPORT_TOKEN_TTL_S);
	p[0] = rq->org_id;
	p[1] = a->ids;
	p[2] = rq->from;
	p[3] = rq->to;
	p[4] = a->thash;
	p[5] = ttl;
	p[6] = rq->request_id;
	p[7] = rq->request_key;
	er = db_execp(db, "export_insert",
	    "INSERT INTO exports (org_id, evidence_ids, range_from, range_to,"
	    " verification_token_hash, token_expires_at, request_id,"
	    " request_key)"
	    " VALUES ($1::uuid, $2::uuid[], $3::timestamptz, $4::timestamptz,"
	    "  decode($5, 'hex'), now() + make_interval(secs => $6::int), $7,"
	    "  $8)"
	    " RETURNING id",
	    8, p, &res);
	if (er != BW_OK)
		return er;
	snprintf(a->id, sizeof(a->id), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);

	er = export_event_tx(db, rq->org_id, a->id, "queued", NULL, NULL);
	if (er != BW_OK)
		return er;
	buf_init(&payload, 256);
	if (buf_printf(&payload, "{\"org_id\":\"%s\",\"export_id\":\"%s\"}",
		rq->org_id, a->id) != BW_OK)
		return BW_ENOMEM;
	memset(&js, 0, sizeof(js));
	js.queue = EXPORT_QUEUE;
	js.job_key = a->id;
	js.org_id = rq->org_id;
	js.cap_key = rq->org_id;
	js.cap_limit = EXPORT_ORG_CAP;
	js.payload = payload.p;
	/*
	 * The export's own failure_count decides the poison pill (a failed
	 * attempt past EXPORT_MAX_ATTEMPTS fails the job for good); the job
	 * gets spare attempts for workers killed mid-export, which the queue
	 * counts too.
	 */
	js.max_attempts = EXPORT_MAX_ATTEMPTS * 2;
	er = jobq_enqueue(db, &js, job_id, &created);
	buf_free(&payload);
	if (er != BW_OK)
		return er;
	p[0] = rq->org_id;
	p[1] = a->id;
	p[2] = job_id;
	er = db_execp(db, "export_set_job",
	    "UPDATE exports SET job_id = $3::uuid"
	    " WHERE org_id = $1::uuid AND id = $2::uuid",
	    3, p, NULL);
	if (er != BW_OK)
		return er;
	if (sec_sha256(a->spec, strlen(a->spec), ph) != BW_OK)
		return BW_ECRYPTO;
	return ledger_append_tx(db, rq->org_id, "export.created", ph, &le);
}

enum bw_err
export_create(struct db *db, const struct export_req *rq,
    struct export_created *out)
{
	struct export_create_arg a;
	struct buf		 ids, tok, spec;
	uint8_t			 raw[32], h[32];
	char			 thash[65];
	size_t			 i;
	enum bw_err		 er;

	if (rq == NULL || rq->org_id == NULL ||
	    (rq->evidence_ids == NULL) == (rq->from == NULL) ||
	    (rq->from == NULL) != (rq->to == NULL) ||
	    rq->nids > EXPORT_MAX_IDS ||
	    (rq->evidence_ids != NULL && rq->nids == 0))
		return BW_EINVAL;
	buf_init(&ids, (size_t)EXPORT_MAX_IDS * 40 + 8);
	buf_init(&tok, 64);
	buf_init(&spec, (size_t)EXPORT_MAX_IDS * 40 + 256);
	memset(&a, 0, sizeof(a));
	er = BW_OK;
	if (rq->evidence_ids != NULL) {
		er = buf_addc(&ids, '{');
		for (i = 0; er == BW_OK && i < rq->nids; i++) {
			if (!jv_is_uuid(rq->evidence_ids[i],
				strlen(rq->evidence_ids[i]))) {
				er = BW_EINVAL;
				break;
			}
			er = buf_printf(&ids, "%s%s", i > 0 ? "," : "",
			    rq->evidence_ids[i]);
		}
		if (er == BW_OK)
			er = buf_addc(&ids, '}');
		if (er == BW_OK)
			er = buf_printf(&spec, "export:%s:ids:%s", rq->org_id,
			    ids.p);
		a.ids = ids.p;
	} else
		er = buf_printf(&spec, "export:%s:range:%s:%s", rq->org_id,
		    rq->from, rq->to);
	if (er != BW_OK)
		goto out;
	er = sec_random(raw, sizeof(raw));
	if (er != BW_OK)
		goto out;
	er = sec_b64url(raw, sizeof(raw), &tok);
	if (er != BW_OK || tok.len != EXPORT_TOKEN_LEN) {
		er = er != BW_OK ? er : BW_ECRYPTO;
		goto out;
	}
	er = sec_sha256(raw, sizeof(raw), h);
	if (er != BW_OK)
		goto out;
	sec_hex(h, sizeof(h), thash);
	a.rq = rq;
	a.thash = thash;
	a.spec = spec.p;
	er = db_tx(db, false, export_create_tx, &a);
	if (er != BW_OK)
		goto out;
	snprintf(out->id, sizeof(out->id), "%s", a.id);
	snprintf(out->token, sizeof(out->token), "%s", tok.p);
out:
	sec_wipe(raw, sizeof(raw));
	if (tok.p != NULL)
		sec_wipe(tok.p, tok.len);
	buf_free(&tok);
	buf_free(&ids);
	buf_free(&spec);
	return er;
}

/* --- reading, cancel, download ------------------------------------------ */

/* clang-format off */
static const char export_sql_get[] =
    "SELECT id, state, failure_count, error, error_category, manifest_hash, size,"
    " " DB_TS_UTC("created_at") ", " DB_TS_UTC("started_at") ","
    " " DB_TS_UTC("finished_at") ","
    /* A ready export's expiry under its org's tier now (retention's rule). */
    " " DB_TS_UTC("CASE WHEN state = 'ready' THEN "
	EXPORT_DUE_AT("finished_at", "(SELECT o.tier FROM orgs o WHERE o.id = exports.org_id)", "3", "4")
	" ELSE expires_at END") ","
    " " DB_TS_UTC("canceled_at") ", verification_count,"
    " " DB_TS_UTC("last_verified_at")
    " FROM exports WHERE org_id = $1::uuid AND id = $2::uuid";
/* clang-format on */

struct json_object *
export_jstr(const PGresult *res, int row, int col)
{
	const char *s = db_col_str(res, row, col);

	return s != NULL ? json_object_new_string(s) : NULL;
}

/* A bigint column as a JSON integer, or null for SQL NULL. */
static struct json_object *
export_jint(const PGresult *res, int row, int col)
{
	int64_t v;

	if (db_col_i64(res, row, col, &v) != BW_OK)
		return NULL;
	return json_object_new_int64(v);
}

/* Renders row 0 of export_sql_get (new object, caller puts). */
static struct json_object *
export_render(PGresult *res)
{
	struct json_object *o = json_object_new_object();
	struct buf	    u;
	const char	   *id = PQgetvalue(res, 0, 0);

	json_object_object_add(o, "id", json_object_new_string(id));
	json_object_object_add(o, "state", export_jstr(res, 0, 1));
	json_object_object_add(o, "failure_count", export_jint(res, 0, 2));
	json_object_object_add(o, "error", export_jstr(res, 0, 3));
	json_object_object_add(o, "error_category", export_jstr(res, 0, 4));
	json_object_object_add(o, "manifest_hash", export_jstr(res, 0, 5));
	json_object_object_add(o, "size", export_jint(res, 0, 6));
	json_object_object_add(o, "created_at", export_jstr(res, 0, 7));
	json_object_object_add(o, "started_at", export_jstr(res, 0, 8));
	json_object_object_add(o, "finished_at", export_jstr(res, 0, 9));
	json_object_object_add(o, "expires_at", export_jstr(res, 0, 10));
	json_object_object_add(o, "canceled_at", export_jstr(res, 0, 11));
	json_object_object_add(o, "verification_count",
	    export_jint(res, 0, 12));
	json_object_object_add(o, "last_verified_at", export_jstr(res, 0, 13));
	buf_init(&u, 256);
	if (strcmp(PQgetvalue(res, 0, 1), "ready") == 0 &&
	    buf_printf(&u, "/api/v1/exports/%s/download", id) == BW_OK)
		json_object_object_add(o, "download_url",
		    json_object_new_string(u.p));
	else
		json_object_object_add(o, "download_url", NULL);
	buf_free(&u);
	/*
	 * Only the token's hash is stored: the URL was given once, at
	 * creation; here it is the template the token fills.
	 */
	json_object_object_add(o, "verification_url",
	    json_object_new_string(
		"/api/v1/public/verify/{verification_token}"));
	return o;
}

enum bw_err
export_get(struct db *db, const char *org_id, const char *id,
    struct json_object **out)
{
	const char *p[4] = { org_id, id, NULL, NULL };
	struct buf  tiers, days;
	PGresult   *res = NULL;
	enum bw_err er;

	if (id == NULL || !jv_is_uuid(id, strlen(id)))
		return BW_ENOTFOUND;
	buf_init(&tiers, 1024);
	buf_init(&days, 1024);
	er = org_tier_arrays(&tiers, &days);
	if (er != BW_OK)
		goto out;
	p[2] = buf_cstr(&tiers);
	p[3] = buf_cstr(&days);
	er = db_execp(db, "export_get", export_sql_get, 4, p, &res);
	if (er != BW_OK)
		goto out;
	if (PQntuples(res) != 1)
		er = BW_ENOTFOUND;
	else
		*out = export_render(res);
	PQclear(res);
out:
	buf_free(&tiers);
	buf_free(&days);
	return er;
}

struct export_cancel_arg {
	const char *org_id;
	const char *id;
};

/* The cancel transaction: BW_ESTATE when not cancelable. */
static enum bw_err
export_cancel_tx(struct db *db, void *arg)
{
	struct export_cancel_arg *a = arg;
	const char		 *p[2] = { a->org_id, a->id };
	PGresult		 *res = NULL;
	enum bw_err		  er;
	int			  n;

	er = db_execp(db, "export_cancel",
	    "UPDATE exports SET state = 'canceled', canceled_at = now(),"
	    " finished_at = now(), attempt_token = NULL"
	    " WHERE org_id = $1::uuid AND id = $2::uuid"
	    "  AND state IN ('queued', 'processing') RETURNING id",
	    2, p, &res);
	if (er != BW_OK)
		return er;
	n = PQntuples(res);
	PQclear(res);
	if (n != 1) {
		res = NULL;
		er = db_execp(db, "export_exists",
		    "SELECT 1 FROM exports WHERE org_id = $1::uuid"
		    " AND id = $2::uuid",
		    2, p, &res);
		if (er != BW_OK)
			return er;
		n = PQntuples(res);
		PQclear(res);
		return n == 1 ? BW_ESTATE : BW_ENOTFOUND;
	}
	return export_event_tx(db, a->org_id, a->id, "canceled", NULL, NULL);
}

enum bw_err
export_cancel(struct db *db, const char *org_id, const char *id,
    struct json_object **out)
{
	struct export_cancel_arg a = { org_id, id };
	enum bw_err		 er;

	if (id == NULL || !jv_is_uuid(id, strlen(id)))
		return BW_ENOTFOUND;
	er = db_tx(db, false, export_cancel_tx, &a);
	if (er != BW_OK)
		return er;
	log_kv(LL_INFO, "export canceled", "export_id", id, NULL);
	return export_get(db, org_id, id, out);
}

enum bw_err
export_download(struct db *db, const char *org_id, const char *id,
    enum export_state *state, char *rel, size_t relsz)
{
	const char *p[2] = { org_id, id };
	const char *ap;
	PGresult   *res = NULL;
	enum bw_err er;
	int	    st;

	if (id == NULL || !jv_is_uuid(id, strlen(id)))
		return BW_ENOTFOUND;
	er = db_execp(db, "export_download",
	    "SELECT state, artifact_path FROM exports"
	    " WHERE org_id = $1::uuid AND id = $2::uuid",
	    2, p, &res);
	if (er != BW_OK)
		return er;
	if (PQntuples(res) != 1) {
		er = BW_ENOTFOUND;
		goto out;
	}
	st = export_state_parse(PQgetvalue(res, 0, 0));
	if (st < 0) {
		er = BW_EDB;
		goto out;
	}
	*state = (enum export_state)st;
	if (rel != NULL && relsz > 0) {
		rel[0] = '\0';
		ap = db_col_str(res, 0, 1);
		if (st == ES_READY && ap != NULL)
			snprintf(rel, relsz, "%s", ap);
	}
out:
	PQclear(res);
	return er;
}

/* --- metrics --------------------------------------------------------------- */

/* A double rendered with fixed decimals (no 17-digit noise). */
static struct json_object *
export_double(double v, int decimals)
{
	char s[64];

	snprintf(s, sizeof(s), "%.*f", decimals, v);
	return json_object_new_double_s(v, s);
}

enum bw_err
export_metrics(struct db *db, const char *org_id, int window_h,
    struct json_object **out)
{
	struct json_object *o = NULL, *qd, *avg, *fr;
	char		    wh[16];
	const char	   *p[2] = { org_id, wh };
	PGresult	   *res = NULL;
	enum bw_err	    er;
	double		    outcomes = 0;
	int		    i, c;

	snprintf(wh, sizeof(wh), "%d", window_h);
	o = json_object_new_object();
	qd = json_object_new_object();
	avg = json_object_new_object();
	fr = json_object_new_object();
	json_object_object_add(o, "queue_depth", qd);
	json_object_object_add(o, "avg_seconds_in_state", avg);
	json_object_object_add(o, "failure_rate_by_category", fr);
	json_object_object_add(o, "window_hours",
	    json_object_new_int(window_h));
	for (i = 0; i < ES__MAX; i++)
		json_object_object_add(qd, export_states[i],
		    json_object_new_int64(0));

	er = db_execp(db, "export_m_depth",
	    "SELECT state, count(*) FROM exports WHERE org_id = $1::uuid"
	    " GROUP BY state",
	    1, p, &res);
	if (er != BW_OK)
		goto out;
	for (i = 0; i < PQntuples(res); i++)
		json_object_object_add(qd, PQgetvalue(res, i, 0),
		    export_jint(res, i, 1));
	PQclear(res);
	res = NULL;

	/* Time in a state: from its event to the export's next event. */
	er = db_execp(db, "export_m_avg",
	    "WITH e AS (SELECT state, at, lead(at) OVER"
	    "  (PARTITION BY export_id ORDER BY at, id) AS nxt"
	    " FROM export_events WHERE org_id = $1::uuid"
	    "  AND at > now() - make_interval(hours => $2::int))"
	    " SELECT state, avg(extract(epoch FROM nxt - at))::float8"
	    " FROM e WHERE nxt IS NOT NULL GROUP BY state",
	    2, p, &res);
	if (er != BW_OK)
		goto out;
	for (i = 0; i < PQntuples(res); i++)
		json_object_object_add(avg, PQgetvalue(res, i, 0),
		    export_double(db_col_f64_or(res, i, 1, 0.0), 3));
	PQclear(res);
	res = NULL;

	/*
	 * Failure rate: failed attempts of a category over all finished
	 * attempts (ready, or a failure event) in the window.
	 */
	er = db_execp(db, "export_m_fail",
	    "SELECT coalesce(category, ''), count(*) FROM export_events"
	    " WHERE org_id = $1::uuid"
	    "  AND at > now() - make_interval(hours => $2::int)"
	    "  AND (category IS NOT NULL OR state = 'ready')"
	    " GROUP BY 1",
	    2, p, &res);
	if (er != BW_OK)
		goto out;
	for (i = 0; i < PQntuples(res); i++)
		outcomes += db_col_f64_or(res, i, 1, 0.0);
	for (c = 0; c < EC__MAX; c++) {
		double n = 0;

		for (i = 0; i < PQntuples(res); i++)
			if (strcmp(PQgetvalue(res, i, 0),
				export_categories[c]) == 0)
				n = db_col_f64_or(res, i, 1, 0.0);
		json_object_object_add(fr, export_categories[c],
		    export_double(outcomes > 0 ? n / outcomes : 0.0, 4));
	}
out:
	PQclear(res);
	if (er != BW_OK)
		json_object_put(o);
	else
		*out = o;
	return er;
}

int
export_canceled(struct db *db, const char *org_id, const char *id)
{
	const char *p[2] = { org_id, id };
	PGresult   *res = NULL;
	int	    c = 0;

	/* clang-format off */
	if (db_execp(db, "export_state",
	    "SELECT state FROM exports WHERE org_id = $1::uuid AND id = $2::uuid",
	    2, p, &res) != BW_OK)
		return 0; /* not known: carry on, the finish checks */
	/* clang-format on */
	c = PQntuples(res) != 1 ||
	    strcmp(PQgetvalue(res, 0, 0), "canceled") == 0;
	PQclear(res);
	return c;
}

void
export_unlink_rel(const char *storage_dir, const char *rel)
{
	struct buf p;

	if (rel == NULL || rel[0] == '\0')
		return;
	buf_init(&p, PATH_MAX);
	if (buf_printf(&p, "%s/%s", storage_dir, rel) == BW_OK)
		(void)unlink(p.p);
	buf_free(&p);
}

/* --- Prometheus ----------------------------------------------------------- */

enum bw_err
export_prom(struct db *db, struct buf *out)
{
	static const char by_state[] =
	    "SELECT s, (SELECT count(*) FROM exports WHERE state = s) "
	    "FROM unnest(ARRAY['queued','processing','ready','failed',"
	    "'canceled','expired']) AS s";
	/* Kept by the exports that became ready (sql/0043), le ascending:
	 * the +Inf row last, with the count and the sum. */
	static const char durations[] =
	    "SELECT le = 'Infinity', le, n, sum FROM export_durations "
	    "ORDER BY le";
	PGresult   *res = NULL;
	enum bw_err er;
	int	    i, n;

	er = db_execp(db, "export_prom_state", by_state, 0, NULL, &res);
	if (er != BW_OK)
		goto out;
	(void)buf_addstr(out,
	    "# HELP bulwark_exports Exports by state.\n"
	    "# TYPE bulwark_exports gauge\n");
	for (i = 0; i < PQntuples(res); i++)
		(void)buf_printf(out, "bulwark_exports{state=\"%s\"} %s\n",
		    PQgetvalue(res, i, 0), PQgetvalue(res, i, 1));
	PQclear(res);
	res = NULL;
	er = db_execp(db, "export_prom_dur", durations, 0, NULL, &res);
	if (er != BW_OK)
		goto out;
	n = PQntuples(res);
	if (n == 0 || strcmp(PQgetvalue(res, n - 1, 0), "t") != 0)
		goto out; /* no +Inf row: no histogram rather than a wrong one */
	(void)buf_addstr(out,
	    "# HELP bulwark_export_duration_seconds Time from claim to ready "
	    "of every export that became ready.\n"
	    "# TYPE bulwark_export_duration_seconds histogram\n");
	for (i = 0; i < n - 1; i++)
		(void)buf_printf(out,
		    "bulwark_export_duration_seconds_bucket{le=\"%g\"} %s\n",
		    db_col_f64_or(res, i, 1, 0.0), PQgetvalue(res, i, 2));
	(void)buf_printf(out,
	    "bulwark_export_duration_seconds_bucket{le=\"+Inf\"} %s\n"
	    "bulwark_export_duration_seconds_sum %.6f\n"
	    "bulwark_export_duration_seconds_count %s\n",
	    PQgetvalue(res, n - 1, 2), db_col_f64_or(res, n - 1, 3, 0.0),
	    PQgetvalue(res, n - 1, 2));
out:
	PQclear(res);
	return er;
}
