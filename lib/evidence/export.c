/* SPDX-License-Identifier: MIT */
/*
 * Evidence exports: the `exports` and `export_events` tables, the export
 * attempt run by bulwark-export, the deterministic ustar artifact and its
 * offline check, public verification and retention.
 *
 * The artifact (POSIX.1-1988 ustar, written by the small code below):
 *   manifest.json        first; the hash of this member is manifest_hash
 *   evidence/<id>        one member per evidence file, in ledger_seq order
 *   two zero blocks
 * Every header has mode 0644, uid/gid 0, empty user and group names and
 * mtime 0, and the manifest is rendered with keys in a fixed order, so the
 * same inputs always give the same bytes.
 *
 * State changes run in one transaction each, guarded by the state they
 * leave (and, for the worker, by attempt_token, the lease token of the job
 * attempt that moved the export to processing), so that a killed worker's
 * late writes, a second retention pass or a concurrent cancel never act
 * twice. Each change adds an export_events row and an "export.state" event
 * to the org's ledger.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "evidence/evidence.h"
#include "evidence/export.h"
#include "core/jv.h"
#include "evidence/ledger.h"
#include "core/limits.h"
#include "core/log.h"
#include "evidence/merkle.h"
#include "evidence/note.h"
#include "platform/org.h"
#include "core/sec.h"

#define EXPORT_TAR_BLOCK      512
#define EXPORT_IO_CHUNK	      65536
#define EXPORT_MAX_MANIFEST   (16 * 1024 * 1024) /* manifest.json */
#define EXPORT_MANIFEST_DEPTH 16
#define EXPORT_REMOVE_AFTER_S (7 * 86400) /* failed, canceled */
#define EXPORT_ORPHAN_AGE_S   3600	  /* stray artifact files */
#define EXPORT_BATCH	      500	  /* rows one retention step reads */
#define EXPORT_FORMAT	      "bulwark-export/1"

static const char *const export_states[ES__MAX] = { "queued", "processing",
	"ready", "failed", "canceled", "expired" };
static const char *const export_categories[EC__MAX] = { "storage", "database",
	"validation", "internal" };

/* RFC 3339 UTC rendering of a timestamptz column. */
#define EXPORT_TS(col)                         \
	"to_char(" col " AT TIME ZONE 'UTC', " \
	"'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

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
static enum export_category
export_db_category(enum bw_err er)
{
	return er == BW_EDB || er == BW_ERETRY ? EC_DATABASE : EC_INTERNAL;
}

/* SHA-256 of "a:b:c" (the payload hash of a ledger event about an export). */
static void
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
static enum bw_err
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

	snprintf(ttl, sizeof(ttl), "%d", EXPORT_TOKEN_TTL_S);
	p[0] = rq->org_id;
	p[1] = a->ids;
	p[2] = rq->from;
	p[3] = rq->to;
	p[4] = a->thash;
	p[5] = ttl;
	p[6] = rq->request_id;
	er = db_execp(db, "export_insert",
	    "INSERT INTO exports (org_id, evidence_ids, range_from, range_to,"
	    " verification_token_hash, token_expires_at, request_id)"
	    " VALUES ($1::uuid, $2::uuid[], $3::timestamptz, $4::timestamptz,"
	    "  decode($5, 'hex'), now() + make_interval(secs => $6::int), $7)"
	    " RETURNING id",
	    7, p, &res);
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

static const char export_sql_get[] =
    "SELECT id, state, failure_count, error, "
    "error_category, manifest_hash,"
    " size, " EXPORT_TS("created_at") ", " EXPORT_TS(
	"starte"
	"d_at") ", " EXPORT_TS("finished_at") ", " EXPORT_TS("expires_at") ","
									   " " EXPORT_TS(
									       "canceled_at") " FROM "
											      "exports"
											      " WHERE "
											      "org_id "
											      "= "
											      "$1::"
											      "uuid "
											      "AND id "
											      "= "
											      "$2::"
											      "uuid";

/* A text column as a JSON string, or null. */
static struct json_object *
export_col_str(PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		return NULL;
	return json_object_new_string(PQgetvalue(res, row, col));
}

/* A bigint column as a JSON integer, or null. */
static struct json_object *
export_col_int(PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		return NULL;
	return json_object_new_int64(
	    strtoll(PQgetvalue(res, row, col), NULL, 10));
}

/* Renders row 0 of export_sql_get (new object, caller puts). */
static struct json_object *
export_render(PGresult *res)
{
	struct json_object *o = json_object_new_object();
	struct buf	    u;
	const char	   *id = PQgetvalue(res, 0, 0);

	json_object_object_add(o, "id", json_object_new_string(id));
	json_object_object_add(o, "state", export_col_str(res, 0, 1));
	json_object_object_add(o, "failure_count", export_col_int(res, 0, 2));
	json_object_object_add(o, "error", export_col_str(res, 0, 3));
	json_object_object_add(o, "error_category", export_col_str(res, 0, 4));
	json_object_object_add(o, "manifest_hash", export_col_str(res, 0, 5));
	json_object_object_add(o, "size", export_col_int(res, 0, 6));
	json_object_object_add(o, "created_at", export_col_str(res, 0, 7));
	json_object_object_add(o, "started_at", export_col_str(res, 0, 8));
	json_object_object_add(o, "finished_at", export_col_str(res, 0, 9));
	json_object_object_add(o, "expires_at", export_col_str(res, 0, 10));
	json_object_object_add(o, "canceled_at", export_col_str(res, 0, 11));
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
	const char *p[2] = { org_id, id };
	PGresult   *res = NULL;
	enum bw_err er;

	if (id == NULL || !jv_is_uuid(id, strlen(id)))
		return BW_ENOTFOUND;
	er = db_execp(db, "export_get", export_sql_get, 2, p, &res);
	if (er != BW_OK)
		return er;
	if (PQntuples(res) != 1)
		er = BW_ENOTFOUND;
	else
		*out = export_render(res);
	PQclear(res);
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
		if (st == ES_READY && !PQgetisnull(res, 0, 1))
			snprintf(rel, relsz, "%s", PQgetvalue(res, 0, 1));
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
		    json_object_new_int64(
			strtoll(PQgetvalue(res, i, 1), NULL, 10)));
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
		    export_double(strtod(PQgetvalue(res, i, 1), NULL), 3));
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
		outcomes += strtod(PQgetvalue(res, i, 1), NULL);
	for (c = 0; c < EC__MAX; c++) {
		double n = 0;

		for (i = 0; i < PQntuples(res); i++)
			if (strcmp(PQgetvalue(res, i, 0),
				export_categories[c]) == 0)
				n = strtod(PQgetvalue(res, i, 1), NULL);
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

/* --- the tar writer ------------------------------------------------------ */

/* Writes all n bytes; BW_EIO (errno kept) otherwise. */
static enum bw_err
export_write_all(int fd, const void *d, size_t n)
{
	const char *p = d;
	ssize_t	    w;

	while (n > 0) {
		w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return BW_EIO;
		p += w;
		n -= (size_t)w;
	}
	return BW_OK;
}

/*
 * Fills a ustar header for a regular file name of size bytes: mode 0644,
 * uid/gid 0, mtime 0 (POSIX.1-1988 ustar, "ustar\0" "00"). BW_EINVAL for a
 * name over 99 bytes or a size past 11 octal digits.
 */
static enum bw_err
export_tar_header(const char *name, uint64_t size,
    unsigned char h[EXPORT_TAR_BLOCK])
{
	unsigned sum = 0;
	size_t	 i, nlen = strlen(name);

	if (nlen == 0 || nlen > 99 || size > 077777777777ULL)
		return BW_EINVAL;
	memset(h, 0, EXPORT_TAR_BLOCK);
	memcpy(h, name, nlen);
	memcpy(h + 100, "0000644", 7);
	memcpy(h + 108, "0000000", 7);
	memcpy(h + 116, "0000000", 7);
	snprintf((char *)h + 124, 12, "%011" PRIo64, size);
	memcpy(h + 136, "00000000000", 11);
	memset(h + 148, ' ', 8);
	h[156] = '0';
	memcpy(h + 257, "ustar", 6);
	memcpy(h + 263, "00", 2);
	memcpy(h + 329, "0000000", 7);
	memcpy(h + 337, "0000000", 7);
	for (i = 0; i < EXPORT_TAR_BLOCK; i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06o", sum);
	h[155] = ' ';
	return BW_OK;
}

/* Zero bytes up to the next block boundary after size bytes of data. */
static enum bw_err
export_tar_pad(int fd, uint64_t size)
{
	static const unsigned char zero[EXPORT_TAR_BLOCK];
	size_t			   r = (size_t)(size % EXPORT_TAR_BLOCK);

	return r == 0 ? BW_OK
		      : export_write_all(fd, zero, EXPORT_TAR_BLOCK - r);
}

/* --- the tar reader ------------------------------------------------------ */

/* Reads exactly n bytes: BW_OK, BW_ENOTFOUND at a clean EOF, BW_EIO. */
static enum bw_err
export_read_all(int fd, void *d, size_t n)
{
	char   *p = d;
	size_t	got = 0;
	ssize_t r;

	while (got < n) {
		r = read(fd, p + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return BW_EIO;
		if (r == 0)
			return got == 0 ? BW_ENOTFOUND : BW_EIO;
		got += (size_t)r;
	}
	return BW_OK;
}

/*
 * Parses one ustar header: *end set for the zero block that ends the
 * archive; else name (100 bytes) and *size. BW_EINVAL for a bad checksum,
 * magic, type or size field.
 */
static enum bw_err
export_tar_parse(const unsigned char h[EXPORT_TAR_BLOCK], char name[100],
    uint64_t *size, bool *end)
{
	unsigned sum = 0, want = 0;
	uint64_t sz = 0;
	size_t	 i;

	*end = false;
	for (i = 0; i < EXPORT_TAR_BLOCK && h[i] == 0; i++)
		;
	if (i == EXPORT_TAR_BLOCK) {
		*end = true;
		return BW_OK;
	}
	for (i = 0; i < EXPORT_TAR_BLOCK; i++)
		sum += (i >= 148 && i < 156) ? ' ' : h[i];
	for (i = 148; i < 156 && h[i] >= '0' && h[i] <= '7'; i++)
		want = want * 8 + (unsigned)(h[i] - '0');
	if (i == 148 || sum != want)
		return BW_EINVAL;
	if (memcmp(h + 257, "ustar", 5) != 0 ||
	    (h[156] != '0' && h[156] != '\0'))
		return BW_EINVAL;
	for (i = 124; i < 135; i++) {
		if (h[i] < '0' || h[i] > '7')
			return BW_EINVAL;
		sz = sz * 8 + (uint64_t)(h[i] - '0');
	}
	if (h[99] != '\0' || h[0] == '\0')
		return BW_EINVAL;
	memcpy(name, h, 100);
	*size = sz;
	return BW_OK;
}

/* --- building an artifact --------------------------------------------------- */

/* One evidence file of an export, from evidence_get()/evidence_list(). */
struct export_file {
	struct json_object *ev; /* borrowed from the list */
	const char	   *id;
	const char	   *path;
	const char	   *sha256; /* hex */
	int64_t		    size;
	int64_t		    seq;
};

/* A failure of an attempt: category and message. */
struct export_fail {
	enum export_category cat;
	bool		     permanent;
	char		     msg[256];
};

static enum bw_err
export_failf(struct export_fail *f, enum export_category cat, bool perm,
    enum bw_err er, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Records the first failure of an attempt; returns er. */
static enum bw_err
export_failf(struct export_fail *f, enum export_category cat, bool perm,
    enum bw_err er, const char *fmt, ...)
{
	va_list ap;

	if (f->msg[0] != '\0')
		return er;
	f->cat = cat;
	f->permanent = perm;
	va_start(ap, fmt);
	vsnprintf(f->msg, sizeof(f->msg), fmt, ap);
	va_end(ap);
	return er;
}

/*
 * Builds manifest.json text (keys in a fixed order; one trailing newline)
 * into out from the files, the chain check and the covering roots. Only
 * the proofs of the exported events are kept. BW_ENOMEM or BW_OK.
 */
static enum bw_err
export_manifest(const char *org_id, struct export_file *files, size_t n,
    struct json_object *chain, struct json_object *roots,
    struct json_object *events, struct buf *out)
{
	struct json_object *m, *arr, *e, *r, *rarr, *pr, *keep, *p;
	const char	   *s;
	size_t		    i, j, k, np;
	enum bw_err	    er;

	m = json_object_new_object();
	json_object_object_add(m, "format",
	    json_object_new_string(EXPORT_FORMAT));
	json_object_object_add(m, "org_id", json_object_new_string(org_id));
	arr = json_object_new_array();
	for (i = 0; i < n; i++) {
		e = json_object_new_object();
		json_object_object_add(e, "id",
		    json_object_new_string(files[i].id));
		json_object_object_add(e, "name",
		    json_object_get(
			json_object_object_get(files[i].ev, "name")));
		json_object_object_add(e, "content_type",
		    json_object_get(
			json_object_object_get(files[i].ev, "content_type")));
		json_object_object_add(e, "size",
		    json_object_new_int64(files[i].size));
		json_object_object_add(e, "sha256",
		    json_object_new_string(files[i].sha256));
		json_object_object_add(e, "ledger_seq",
		    json_object_new_int64(files[i].seq));
		{
			char fn[64], key[24];

			snprintf(fn, sizeof(fn), "evidence/%s", files[i].id);
			json_object_object_add(e, "file",
			    json_object_new_string(fn));
			snprintf(key, sizeof(key), "%" PRId64, files[i].seq);
			json_object_object_add(e, "ledger_event",
			    json_object_get(
				json_object_object_get(events, key)));
		}
		json_object_array_add(arr, e);
	}
	json_object_object_add(m, "evidence", arr);
	json_object_object_add(m, "chain", json_object_get(chain));
	rarr = json_object_new_array();
	for (i = 0; roots != NULL && i < json_object_array_length(roots); i++) {
		r = json_object_array_get_idx(roots, i);
		e = json_object_new_object();
		json_object_object_foreach(r, key, val)
		{
			if (strcmp(key, "proofs") != 0)
				json_object_object_add(e, key,
				    json_object_get(val));
		}
		keep = json_object_new_array();
		pr = json_object_object_get(r, "proofs");
		np = pr != NULL ? json_object_array_length(pr) : 0;
		for (j = 0; j < np; j++) {
			int64_t seq;

			p = json_object_array_get_idx(pr, j);
			seq = json_object_get_int64(
			    json_object_object_get(p, "seq"));
			for (k = 0; k < n; k++)
				if (files[k].seq == seq)
					break;
			if (k < n)
				json_object_array_add(keep, json_object_get(p));
		}
		json_object_object_add(e, "proofs", keep);
		json_object_array_add(rarr, e);
	}
	json_object_object_add(m, "ledger_roots", rarr);
	s = json_object_to_json_string_ext(m,
	    JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_PRETTY |
		JSON_C_TO_STRING_NOSLASHESCAPE);
	er = s == NULL ? BW_ENOMEM : buf_addstr(out, s);
	if (er == BW_OK)
		er = buf_addc(out, '\n');
	json_object_put(m);
	return er;
}

/* 1 when the export was canceled meanwhile (or is gone). */
static int
export_canceled(struct db *db, const char *org_id, const char *id)
{
	const char *p[2] = { org_id, id };
	PGresult   *res = NULL;
	int	    c = 0;

	if (db_execp(db, "export_state",
		"SELECT state FROM exports WHERE org_id = $1::uuid"
		" AND id = $2::uuid",
		2, p, &res) != BW_OK)
		return 0; /* not known: carry on, the finish checks */
	c = PQntuples(res) != 1 ||
	    strcmp(PQgetvalue(res, 0, 0), "canceled") == 0;
	PQclear(res);
	return c;
}

/* Copies one evidence file into the tar, checking size and hash. */
static enum bw_err
export_copy_file(int out, const struct export_file *f, struct export_fail *fl)
{
	unsigned char	       h[EXPORT_TAR_BLOCK];
	char		       name[64], hex[65];
	struct sec_sha256_ctx *sc = NULL;
	struct stat	       st;
	uint8_t		       d[32];
	char		      *chunk = NULL;
	ssize_t		       r;
	uint64_t	       done = 0;
	enum bw_err	       er;
	int		       fd;

	fd = open(f->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return export_failf(fl, EC_STORAGE, false, BW_EIO,
		    "evidence %s: cannot open its file: %s", f->id,
		    strerror(errno));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    st.st_size != f->size) {
		er = export_failf(fl, EC_STORAGE, false, BW_EIO,
		    "evidence %s: stored file has the wrong size", f->id);
		goto out;
	}
	snprintf(name, sizeof(name), "evidence/%s", f->id);
	er = export_tar_header(name, (uint64_t)f->size, h);
	if (er == BW_OK)
		er = export_write_all(out, h, sizeof(h));
	if (er != BW_OK) {
		er = export_failf(fl, EC_STORAGE, false, BW_EIO,
		    "writing the artifact: %s", strerror(errno));
		goto out;
	}
	sc = sec_sha256_new();
	chunk = malloc(EXPORT_IO_CHUNK);
	if (sc == NULL || chunk == NULL) {
		er = export_failf(fl, EC_INTERNAL, false, BW_ENOMEM,
		    "out of memory");
		goto out;
	}
	for (;;) {
		r = read(fd, chunk, EXPORT_IO_CHUNK);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			er = export_failf(fl, EC_STORAGE, false, BW_EIO,
			    "evidence %s: read: %s", f->id, strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		done += (uint64_t)r;
		if (done > (uint64_t)f->size) {
			er = export_failf(fl, EC_STORAGE, false, BW_EIO,
			    "evidence %s: file grew while read", f->id);
			goto out;
		}
		if (sec_sha256_update(sc, chunk, (size_t)r) != BW_OK) {
			er = export_failf(fl, EC_INTERNAL, false, BW_ECRYPTO,
			    "sha256 failed");
			goto out;
		}
		er = export_write_all(out, chunk, (size_t)r);
		if (er != BW_OK) {
			er = export_failf(fl, EC_STORAGE, false, BW_EIO,
			    "writing the artifact: %s", strerror(errno));
			goto out;
		}
	}
	if (done != (uint64_t)f->size || sec_sha256_final(sc, d) != BW_OK) {
		er = export_failf(fl, EC_STORAGE, false, BW_EIO,
		    "evidence %s: short read", f->id);
		goto out;
	}
	sec_hex(d, sizeof(d), hex);
	if (strcmp(hex, f->sha256) != 0) {
		/* The stored bytes are not what the ledger recorded. */
		er = export_failf(fl, EC_VALIDATION, true, BW_EINVAL,
		    "evidence %s: stored file does not match its sha256",
		    f->id);
		goto out;
	}
	er = export_tar_pad(out, (uint64_t)f->size);
	if (er != BW_OK)
		er = export_failf(fl, EC_STORAGE, false, BW_EIO,
		    "writing the artifact: %s", strerror(errno));
out:
	free(chunk);
	sec_sha256_free(sc);
	close(fd);
	return er;
}

/* mkdir -p of storage_dir/exports/<org>, mode 0750. */
static enum bw_err
export_mkdirs(const char *storage_dir, const char *org_id, struct buf *dir)
{
	if (buf_printf(dir, "%s/exports", storage_dir) != BW_OK)
		return BW_ENOMEM;
	if (mkdir(dir->p, 0750) != 0 && errno != EEXIST)
		return BW_EIO;
	if (buf_printf(dir, "/%s", org_id) != BW_OK)
		return BW_ENOMEM;
	if (mkdir(dir->p, 0750) != 0 && errno != EEXIST)
		return BW_EIO;
	return BW_OK;
}

/* fsync() of a directory (the rename's entry). */
static enum bw_err
export_sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc;

	if (fd < 0)
		return BW_EIO;
	rc = fsync(fd);
	close(fd);
	return rc == 0 ? BW_OK : BW_EIO;
}

/* The plan retention in days of org's tier. */
static int
export_retention_days(const char *tier)
{
	if (tier != NULL && strcmp(tier, "pro") == 0)
		return 90;
	if (tier != NULL && strcmp(tier, "business") == 0)
		return 365;
	if (tier != NULL && strcmp(tier, "enterprise") == 0)
		return 730;
	return 30; /* starter */
}

/* State of one attempt, shared by its transactions. */
struct export_attempt {
	const char *org_id;
	const char *id;
	const char *token; /* the job's lease token */
	const char *worker;
	/* claim */
	int   state; /* found in the row */
	char *ids;   /* evidence_ids text or NULL */
	char *from, *to;
	/* finish */
	char	manifest_hash[65];
	char	rel[256];
	int64_t size, first, last, nfiles;
	int	retention_days;
	int	done; /* the update matched */
	/* failure */
	const struct export_fail *fail;
	int			  final; /* failed for good */
};

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
	a->ids = PQgetisnull(res, 0, 1) ? NULL : strdup(PQgetvalue(res, 0, 1));
	a->from = PQgetisnull(res, 0, 2) ? NULL : strdup(PQgetvalue(res, 0, 2));
	a->to = PQgetisnull(res, 0, 3) ? NULL : strdup(PQgetvalue(res, 0, 3));
	PQclear(res);
	if ((a->ids == NULL && (a->from == NULL || a->to == NULL)))
		return BW_ENOMEM;
	if (a->state != ES_QUEUED && a->state != ES_PROCESSING)
		return BW_OK;
	er = db_execp(db, "export_processing",
	    "UPDATE exports SET state = 'processing', started_at = now(),"
	    " attempt_token = $3 WHERE org_id = $1::uuid AND id = $2::uuid",
	    3, p, NULL);
	if (er != BW_OK)
		return er;
	return export_event_tx(db, a->org_id, a->id, "processing", NULL,
	    a->worker);
}

/* Marks the export ready if this attempt still owns it. */
static enum bw_err
export_ready_tx(struct db *db, void *arg)
{
	struct export_attempt *a = arg;
	char		       size[24], first[24], last[24], n[24], days[16];
	const char	      *p[10];
	PGresult	      *res = NULL;
	enum bw_err	       er;

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
	a->done = 0;
	er = db_execp(db, "export_ready",
	    "UPDATE exports SET state = 'ready', manifest_hash = $4,"
	    " size = $5::bigint, artifact_path = $6, first_seq = $7::bigint,"
	    " last_seq = $8::bigint, evidence_count = $9::int,"
	    " finished_at = now(), error = NULL, error_category = NULL,"
	    " expires_at = now() + make_interval(days => $10::int),"
	    " attempt_token = NULL"
	    " WHERE org_id = $1::uuid AND id = $2::uuid"
	    "  AND state = 'processing' AND attempt_token = $3 RETURNING id",
	    10, p, &res);
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
 * Loads the evidence of the export into *list (new array) and files
 * (n entries, malloc'd). Failures are recorded in fl.
 */
static enum bw_err
export_load_files(struct db *db, const char *storage_dir,
    struct export_attempt *a, struct json_object **list,
    struct export_file **files, size_t *n, struct export_fail *fl)
{
	struct json_object *arr = NULL, *ev;
	struct export_file *f = NULL;
	enum bw_err	    er = BW_OK;
	size_t		    i, cnt;

	if (a->ids != NULL) {
		/* "{uuid,uuid,...}" as PostgreSQL renders a uuid[]. */
		const char *s = a->ids;
		char	    tok[37];
		size_t	    len;

		arr = json_object_new_array();
		if (*s == '{')
			s++;
		for (; *s != '\0' && *s != '}'; s += len + (s[len] == ',')) {
			len = strcspn(s, ",}");
			if (len != 36) {
				er = export_failf(fl, EC_VALIDATION, true,
				    BW_EINVAL, "malformed evidence id list");
				goto out;
			}
			memcpy(tok, s, 36);
			tok[36] = '\0';
			ev = NULL;
			er = evidence_get(db, storage_dir, a->org_id, tok, &ev);
			if (er == BW_ENOTFOUND) {
				er = export_failf(fl, EC_VALIDATION, true,
				    BW_EINVAL, "evidence %s not found", tok);
				goto out;
			}
			if (er != BW_OK) {
				er = export_failf(fl, export_db_category(er),
				    false, er, "loading evidence: %s",
				    bw_strerror(er));
				goto out;
			}
			json_object_array_add(arr, ev);
		}
	} else {
		er = evidence_list(db, storage_dir, a->org_id, a->from, a->to,
		    EXPORT_MAX_IDS, &arr);
		if (er == BW_ETOOBIG) {
			er = export_failf(fl, EC_VALIDATION, true, BW_EINVAL,
			    "more than %d evidence files in the range",
			    EXPORT_MAX_IDS);
			goto out;
		}
		if (er != BW_OK) {
			er = export_failf(fl, export_db_category(er), false, er,
			    "listing evidence: %s", bw_strerror(er));
			goto out;
		}
	}
	cnt = json_object_array_length(arr);
	if (cnt == 0) {
		er = export_failf(fl, EC_VALIDATION, true, BW_EINVAL,
		    "no evidence to export");
		goto out;
	}
	f = calloc(cnt, sizeof(*f));
	if (f == NULL) {
		er = export_failf(fl, EC_INTERNAL, false, BW_ENOMEM,
		    "out of memory");
		goto out;
	}
	for (i = 0; i < cnt; i++) {
		ev = json_object_array_get_idx(arr, i);
		f[i].ev = ev;
		f[i].id = jv_str(ev, "id", "");
		f[i].path = jv_str(ev, "path", "");
		f[i].sha256 = jv_str(ev, "sha256", "");
		f[i].size = jv_int(ev, "size", -1);
		f[i].seq = jv_int(ev, "ledger_seq", -1);
		if (!jv_is_uuid(f[i].id, strlen(f[i].id)) ||
		    strlen(f[i].sha256) != 64 || f[i].size < 0 ||
		    f[i].seq < 1) {
			er = export_failf(fl, EC_VALIDATION, true, BW_EINVAL,
			    "evidence row %zu is malformed", i);
			goto out;
		}
	}
	/* Ids given by the client come in their order; keep ledger order. */
	for (i = 1; i < cnt; i++) {
		struct export_file t = f[i];
		size_t		   j = i;

		while (j > 0 && f[j - 1].seq > t.seq) {
			f[j] = f[j - 1];
			j--;
		}
		f[j] = t;
	}
	for (i = 1; i < cnt; i++)
		if (f[i].seq == f[i - 1].seq) {
			er = export_failf(fl, EC_VALIDATION, true, BW_EINVAL,
			    "evidence %s listed twice", f[i].id);
			goto out;
		}
	*list = arr;
	*files = f;
	*n = cnt;
	return BW_OK;
out:
	free(f);
	json_object_put(arr);
	return er;
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

/*
 * The stored fields of the ledger events of the exported files, so that a
 * verifier can recompute each event hash from the file's SHA-256 (the
 * payload of "evidence.uploaded"): *out = {"<seq>":{"type","payload_hash",
 * "prev_hash","time_us","hash"}} (new, caller puts).
 * TODO(ledger): this reads lib/evidence/ledger.c's table; move it there as a
 * ledger.h function (ledger_events_get) and call that instead.
 */
static enum bw_err
export_ledger_events(struct db *db, const char *org_id,
    const struct export_file *files, size_t n, struct json_object **out)
{
	struct json_object *o, *e;
	struct buf	    seqs;
	const char	   *p[2];
	PGresult	   *res = NULL;
	enum bw_err	    er = BW_OK;
	size_t		    i;
	int		    r;

	buf_init(&seqs, n * 24 + 8);
	er = buf_addc(&seqs, '{');
	for (i = 0; er == BW_OK && i < n; i++)
		er = buf_printf(&seqs, "%s%" PRId64, i > 0 ? "," : "",
		    files[i].seq);
	if (er == BW_OK)
		er = buf_addc(&seqs, '}');
	if (er != BW_OK)
		goto out;
	p[0] = org_id;
	p[1] = seqs.p;
	er = db_execp(db, "export_ledger_events",
	    "SELECT seq, type, encode(payload_hash, 'hex'),"
	    " encode(prev_hash, 'hex'),"
	    " ((extract(epoch FROM created_at) * 1000000)::numeric)::bigint,"
	    " encode(hash, 'hex')"
	    " FROM ledger_events WHERE org_id = $1::uuid"
	    "  AND seq = ANY ($2::bigint[]) ORDER BY seq",
	    2, p, &res);
	if (er != BW_OK)
		goto out;
	o = json_object_new_object();
	for (r = 0; r < PQntuples(res); r++) {
		e = json_object_new_object();
		json_object_object_add(e, "type", export_col_str(res, r, 1));
		json_object_object_add(e, "payload_hash",
		    export_col_str(res, r, 2));
		json_object_object_add(e, "prev_hash",
		    export_col_str(res, r, 3));
		json_object_object_add(e, "time_us", export_col_int(res, r, 4));
		json_object_object_add(e, "hash", export_col_str(res, r, 5));
		json_object_object_add(o, PQgetvalue(res, r, 0), e);
	}
	*out = o;
out:
	PQclear(res);
	buf_free(&seqs);
	return er;
}

/*
 * The body of one attempt after the claim: load, verify the chain, get
 * the roots, write the tar to a temporary name, fsync, rename. On success
 * a->manifest_hash, size, rel, first, last, nfiles are set. *canceled when
 * the export was canceled meanwhile.
 */
static enum bw_err
export_build(struct db *db, const char *storage_dir, struct export_attempt *a,
    int (*stopping)(void), int pause_ms, bool *canceled, struct export_fail *fl)
{
	struct json_object *list = NULL, *chain = NULL, *roots = NULL;
	struct json_object *events = NULL;
	struct export_file *files = NULL;
	struct buf	    dir, tmp, fin, man;
	unsigned char	    h[EXPORT_TAR_BLOCK];
	uint8_t		    mh[32];
	struct stat	    st;
	size_t		    n = 0, i;
	enum bw_err	    er;
	int		    fd = -1;
	const char	   *cs;

	*canceled = false;
	buf_init(&dir, PATH_MAX);
	buf_init(&tmp, PATH_MAX);
	buf_init(&fin, PATH_MAX);
	buf_init(&man, EXPORT_MAX_MANIFEST);
	er = export_load_files(db, storage_dir, a, &list, &files, &n, fl);
	if (er != BW_OK)
		goto out;
	a->first = files[0].seq;
	a->last = files[n - 1].seq;
	a->nfiles = (int64_t)n;

	er = ledger_verify(db, a->org_id, a->first, a->last, &chain);
	if (er != BW_OK) {
		er = export_failf(fl, export_db_category(er), false, er,
		    "ledger verify: %s", bw_strerror(er));
		goto out;
	}
	cs = jv_str(chain, "status", "");
	if (strcmp(cs, "intact") != 0) {
		er = export_failf(fl, EC_VALIDATION, true, BW_EINVAL,
		    "ledger chain broken at seq %" PRId64,
		    jv_int(chain, "broken_at", 0));
		goto out;
	}
	er = ledger_roots_for(db, a->org_id, a->first, a->last, true, &roots);
	if (er != BW_OK) {
		er = export_failf(fl, export_db_category(er), false, er,
		    "ledger roots: %s", bw_strerror(er));
		goto out;
	}
	er = export_ledger_events(db, a->org_id, files, n, &events);
	if (er != BW_OK) {
		er = export_failf(fl, export_db_category(er), false, er,
		    "ledger events: %s", bw_strerror(er));
		goto out;
	}
	er = export_manifest(a->org_id, files, n, chain, roots, events, &man);
	if (er != BW_OK) {
		er = export_failf(fl, EC_INTERNAL, false, er, "manifest: %s",
		    bw_strerror(er));
		goto out;
	}
	er = sec_sha256(man.p, man.len, mh);
	if (er != BW_OK) {
		er = export_failf(fl, EC_INTERNAL, false, er, "sha256 failed");
		goto out;
	}
	sec_hex(mh, sizeof(mh), a->manifest_hash);

	er = export_mkdirs(storage_dir, a->org_id, &dir);
	if (er == BW_OK)
		er = buf_printf(&tmp, "%s/.%s.tar.tmp-%ld", dir.p, a->id,
		    (long)getpid());
	if (er == BW_OK)
		er = buf_printf(&fin, "%s/%s.tar", dir.p, a->id);
	if (er != BW_OK) {
		er = export_failf(fl, EC_STORAGE, false, er,
		    "cannot make %s: %s", dir.p != NULL ? dir.p : "?",
		    strerror(errno));
		goto out;
	}
	fd = open(tmp.p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0) {
		er = export_failf(fl, EC_STORAGE, false, BW_EIO,
		    "cannot create the artifact: %s", strerror(errno));
		goto out;
	}
	er = export_tar_header("manifest.json", man.len, h);
	if (er == BW_OK)
		er = export_write_all(fd, h, sizeof(h));
	if (er == BW_OK)
		er = export_write_all(fd, man.p, man.len);
	if (er == BW_OK)
		er = export_tar_pad(fd, man.len);
	if (er != BW_OK) {
		er = export_failf(fl, EC_STORAGE, false, BW_EIO,
		    "writing the artifact: %s", strerror(errno));
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (pause_ms > 0)
			(void)poll(NULL, 0, pause_ms);
		if (stopping != NULL && stopping()) {
			er = export_failf(fl, EC_INTERNAL, false, BW_ETIMEOUT,
			    "worker stopping");
			goto out;
		}
		if (export_canceled(db, a->org_id, a->id)) {
			*canceled = true;
			er = BW_OK;
			goto out;
		}
		er = export_copy_file(fd, &files[i], fl);
		if (er != BW_OK)
			goto out;
	}
	memset(h, 0, sizeof(h));
	er = export_write_all(fd, h, sizeof(h));
	if (er == BW_OK)
		er = export_write_all(fd, h, sizeof(h));
	if (er == BW_OK && fsync(fd) != 0)
		er = BW_EIO;
	if (er == BW_OK && fstat(fd, &st) != 0)
		er = BW_EIO;
	if (er != BW_OK) {
		er = export_failf(fl, EC_STORAGE, false, BW_EIO,
		    "writing the artifact: %s", strerror(errno));
		goto out;
	}
	close(fd);
	fd = -1;
	if (rename(tmp.p, fin.p) != 0 || export_sync_dir(dir.p) != BW_OK) {
		er = export_failf(fl, EC_STORAGE, false, BW_EIO,
		    "renaming the artifact: %s", strerror(errno));
		goto out;
	}
	a->size = (int64_t)st.st_size;
	snprintf(a->rel, sizeof(a->rel), "exports/%s/%s.tar", a->org_id, a->id);
out:
	if (fd >= 0)
		close(fd);
	if (tmp.p != NULL && (er != BW_OK || *canceled))
		(void)unlink(tmp.p);
	free(files);
	json_object_put(list);
	json_object_put(chain);
	json_object_put(roots);
	json_object_put(events);
	buf_free(&dir);
	buf_free(&tmp);
	buf_free(&fin);
	buf_free(&man);
	return er;
}

/* Removes the artifact at storage_dir/rel (a lost race or a cancel). */
static void
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
		    "state", a.state >= 0 ? export_states[a.state] : "gone",
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
	a.retention_days = export_retention_days(jv_str(org, "tier", NULL));
	er = export_build(db, storage_dir, &a, stopping, pause_ms, &canceled,
	    &fl);
	if (er != BW_OK)
		goto failed;
	if (canceled) {
		log_kv(LL_INFO, "export canceled during the build", "export_id",
		    id, NULL);
		goto out;
	}
	er = db_tx(db, false, export_ready_tx, &a);
	if (er != BW_OK) {
		export_failf(&fl, export_db_category(er), false, er,
		    "marking ready: %s", bw_strerror(er));
		export_unlink_rel(storage_dir, a.rel);
		goto failed;
	}
	if (!a.done) {
		/* Canceled meanwhile, or another attempt owns it now. */
		if (export_canceled(db, org_id, id))
			export_unlink_rel(storage_dir, a.rel);
		log_kv(LL_WARN, "export no longer ours at the end", "export_id",
		    id, NULL);
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

/* --- checking an artifact ------------------------------------------------- */

/* Adds a problem string to the report's "problems" array. */
static void export_problem(struct json_object *report, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
export_problem(struct json_object *report, const char *fmt, ...)
{
	struct json_object *arr = json_object_object_get(report, "problems");
	char		    s[512];
	va_list		    ap;

	va_start(ap, fmt);
	vsnprintf(s, sizeof(s), fmt, ap);
	va_end(ap);
	json_object_array_add(arr, json_object_new_string(s));
}

/* Decodes a 64-char hex field of o into out; 0 on success. */
static int
export_hex32(struct json_object *o, const char *key, uint8_t out[32])
{
	const char *s = jv_str(o, key, "");

	return sec_unhex(s, strlen(s), out, 32) == BW_OK ? 0 : -1;
}

/*
 * Parses the verifier keys of keys (an array of {"vkey"} objects, an
 * object with "keys", or a single object) into vk[0..*n).
 */
static void
export_keys(struct json_object *keys, struct note_vkey *vk, size_t max,
    size_t *n)
{
	struct json_object *arr = keys, *k;
	const char	   *s;
	size_t		    i;

	*n = 0;
	if (keys == NULL)
		return;
	if (json_object_is_type(keys, json_type_object)) {
		arr = json_object_object_get(keys, "keys");
		if (arr == NULL) {
			s = jv_str(keys, "vkey", NULL);
			if (s != NULL &&
			    note_parse_vkey(s, strlen(s), &vk[0]) == BW_OK)
				*n = 1;
			return;
		}
	}
	if (!json_object_is_type(arr, json_type_array))
		return;
	for (i = 0; i < json_object_array_length(arr) && *n < max; i++) {
		k = json_object_array_get_idx(arr, i);
		s = json_object_is_type(k, json_type_string)
		    ? json_object_get_string(k)
		    : jv_str(k, "vkey", NULL);
		if (s != NULL &&
		    note_parse_vkey(s, strlen(s), &vk[*n]) == BW_OK)
			(*n)++;
	}
}

#define EXPORT_MAX_KEYS 16

/*
 * Checks the ledger part of a manifest against the verifier keys: each
 * root's checkpoint is signed by one of the keys and states the root and
 * event count; each proof's leaf is the listed event's leaf, sits at
 * seq - first_seq, and verifies against the checkpoint's tree size and
 * root (never a size from the proof). Counts go into report.
 */
static int
export_check_ledger(struct json_object *m, struct json_object *keys,
    struct json_object *report)
{
	struct note_vkey    vk[EXPORT_MAX_KEYS];
	struct json_object *roots, *r, *pr, *p, *path, *ev, *e;
	struct buf	    text;
	uint8_t		    root[32], croot[32], leaf[32], lh[32], eh[32];
	uint8_t(*proof)[32] = NULL;
	uint64_t    csize;
	size_t	    nk, i, j, k, plen;
	int64_t	    first, last, seq, proved = 0, sigs = 0;
	int	    ok = 1, signed_ok;
	const char *cp;

	export_keys(keys, vk, EXPORT_MAX_KEYS, &nk);
	if (nk == 0) {
		export_problem(report, "no usable verifier key in the keys");
		return 0;
	}
	proof = calloc(MERKLE_MAX_DEPTH, sizeof(*proof));
	if (proof == NULL)
		return 0;
	buf_init(&text, BW_MAX_NOTE);
	roots = json_object_object_get(m, "ledger_roots");
	ev = json_object_object_get(m, "evidence");
	for (i = 0; roots != NULL && i < json_object_array_length(roots); i++) {
		r = json_object_array_get_idx(roots, i);
		cp = jv_str(r, "checkpoint", "");
		first = jv_int(r, "first_seq", 0);
		last = jv_int(r, "last_seq", -1);
		signed_ok = 0;
		for (k = 0; k < nk && !signed_ok; k++) {
			buf_reset(&text);
			if (note_verify(cp, strlen(cp), &vk[k], &text) == BW_OK)
				signed_ok = 1;
		}
		if (!signed_ok ||
		    note_checkpoint_parse(text.p, text.len, NULL, &csize,
			croot) != BW_OK) {
			export_problem(report,
			    "root of %s: checkpoint not "
			    "signed by a given key",
			    jv_str(r, "day", "?"));
			ok = 0;
			continue;
		}
		sigs++;
		if (export_hex32(r, "root", root) != 0 ||
		    memcmp(root, croot, 32) != 0 ||
		    csize != (uint64_t)(last - first + 1)) {
			export_problem(report,
			    "root of %s: does not match "
			    "its checkpoint",
			    jv_str(r, "day", "?"));
			ok = 0;
			continue;
		}
		pr = json_object_object_get(r, "proofs");
		for (j = 0; pr != NULL && j < json_object_array_length(pr);
		     j++) {
			p = json_object_array_get_idx(pr, j);
			seq = jv_int(p, "seq", 0);
			path = json_object_object_get(p, "path");
			plen =
			    path != NULL ? json_object_array_length(path) : 0;
			if (seq < first || seq > last ||
			    jv_int(p, "index", -1) != seq - first ||
			    plen > MERKLE_MAX_DEPTH ||
			    export_hex32(p, "leaf_hash", leaf) != 0) {
				export_problem(report,
				    "proof of seq %" PRId64 ": malformed", seq);
				ok = 0;
				continue;
			}
			for (k = 0; k < plen; k++) {
				const char *h = json_object_get_string(
				    json_object_array_get_idx(path, k));

				if (h == NULL ||
				    sec_unhex(h, strlen(h), proof[k], 32) !=
					BW_OK)
					break;
			}
			if (k < plen ||
			    merkle_inclusion_verify((uint64_t)(seq - first),
				csize, leaf, (const uint8_t(*)[32])proof, plen,
				croot) != BW_OK) {
				export_problem(report,
				    "proof of seq %" PRId64
				    ": does not verify against the signed "
				    "checkpoint",
				    seq);
				ok = 0;
				continue;
			}
			/* The leaf must be the listed event's hash. */
			e = NULL;
			for (k = 0;
			     ev != NULL && k < json_object_array_length(ev);
			     k++) {
				e = json_object_array_get_idx(ev, k);
				if (jv_int(e, "ledger_seq", 0) == seq)
					break;
				e = NULL;
			}
			if (export_hex32(p, "event_hash", eh) != 0 ||
			    merkle_leaf_hash(eh, 32, lh) != BW_OK ||
			    memcmp(lh, leaf, 32) != 0 || e == NULL ||
			    strcmp(jv_str(json_object_object_get(e,
					      "ledger_event"),
				       "hash", ""),
				jv_str(p, "event_hash", "-")) != 0) {
				export_problem(report,
				    "proof of seq %" PRId64
				    ": leaf is not the listed event's hash",
				    seq);
				ok = 0;
				continue;
			}
			proved++;
		}
	}
	json_object_object_add(report, "checkpoints_verified",
	    json_object_new_int64(sigs));
	json_object_object_add(report, "events_proved",
	    json_object_new_int64(proved));
	/* Events no signed root covers yet (roots are made daily). */
	json_object_object_add(report, "events_unanchored",
	    json_object_new_int64(
		(int64_t)(ev != NULL ? json_object_array_length(ev) : 0) -
		proved));
	buf_free(&text);
	free(proof);
	return ok;
}

enum bw_err
export_artifact_check(const char *path, struct json_object *keys,
    struct json_object **report, bool *valid, char *manifest_hash)
{
	struct json_object    *rep, *m = NULL, *ev = NULL, *e = NULL;
	struct sec_sha256_ctx *sc = NULL;
	unsigned char	       h[EXPORT_TAR_BLOCK];
	char		       name[100] = "", hex[65], *chunk = NULL;
	struct buf	       man;
	uint8_t		       d[32];
	uint64_t	       size = 0, left;
	size_t		       i, nev = 0, want;
	unsigned char	      *seen = NULL;
	enum bw_err	       er;
	bool		       end = false;
	int		       fd, ok = 1, files_ok = 1, nfiles = 0;

	buf_init(&man, EXPORT_MAX_MANIFEST);
	rep = json_object_new_object();
	json_object_object_add(rep, "problems", json_object_new_array());
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		json_object_put(rep);
		return BW_EIO;
	}
	er = export_read_all(fd, h, sizeof(h));
	if (er == BW_OK)
		er = export_tar_parse(h, name, &size, &end);
	if (er != BW_OK || end || strcmp(name, "manifest.json") != 0 ||
	    size > EXPORT_MAX_MANIFEST) {
		er = er == BW_EIO ? BW_EIO : BW_EINVAL;
		goto out;
	}
	chunk = malloc(EXPORT_IO_CHUNK);
	if (chunk == NULL || buf_add(&man, "", 0) != BW_OK) {
		er = BW_ENOMEM;
		goto out;
	}
	want = (size_t)((size + EXPORT_TAR_BLOCK - 1) / EXPORT_TAR_BLOCK *
	    EXPORT_TAR_BLOCK);
	for (left = want; left > 0;) {
		size_t k = left > EXPORT_IO_CHUNK ? EXPORT_IO_CHUNK : left;

		er = export_read_all(fd, chunk, k);
		if (er != BW_OK) {
			er = BW_EINVAL;
			goto out;
		}
		er = buf_add(&man, chunk, k);
		if (er != BW_OK)
			goto out;
		left -= k;
	}
	man.len = (size_t)size;
	man.p[man.len] = '\0';
	er = sec_sha256(man.p, man.len, d);
	if (er != BW_OK)
		goto out;
	sec_hex(d, sizeof(d), hex);
	if (manifest_hash != NULL)
		snprintf(manifest_hash, 65, "%s", hex);
	json_object_object_add(rep, "manifest_hash",
	    json_object_new_string(hex));
	if (jv_parse(man.p, man.len, EXPORT_MANIFEST_DEPTH, &m) != BW_OK ||
	    strcmp(jv_str(m, "format", ""), EXPORT_FORMAT) != 0) {
		export_problem(rep, "manifest.json is not a %s manifest",
		    EXPORT_FORMAT);
		ok = 0;
		files_ok = 0;
		goto files_done;
	}
	ev = json_object_object_get(m, "evidence");
	nev = ev != NULL && json_object_is_type(ev, json_type_array)
	    ? json_object_array_length(ev)
	    : 0;
	seen = calloc(nev + 1, 1);
	sc = sec_sha256_new();
	if (seen == NULL || sc == NULL) {
		er = BW_ENOMEM;
		goto out;
	}
	for (;;) {
		er = export_read_all(fd, h, sizeof(h));
		if (er == BW_ENOTFOUND) {
			export_problem(rep,
			    "archive ends without its end "
			    "blocks");
			files_ok = 0;
			break;
		}
		if (er == BW_OK)
			er = export_tar_parse(h, name, &size, &end);
		if (er != BW_OK) {
			export_problem(rep,
			    "corrupt tar header after %d "
			    "files",
			    nfiles);
			files_ok = 0;
			break;
		}
		if (end)
			break;
		nfiles++;
		for (i = 0; i < nev; i++) {
			e = json_object_array_get_idx(ev, i);
			if (strcmp(jv_str(e, "file", ""), name) == 0)
				break;
		}
		if (i == nev || seen[i]) {
			export_problem(rep,
			    "%.99s: not listed in the "
			    "manifest (or twice)",
			    name);
			files_ok = 0;
		}
		sec_sha256_free(sc);
		sc = sec_sha256_new();
		if (sc == NULL) {
			er = BW_ENOMEM;
			goto out;
		}
		want = (size_t)((size + EXPORT_TAR_BLOCK - 1) /
		    EXPORT_TAR_BLOCK * EXPORT_TAR_BLOCK);
		for (left = size; want > 0;) {
			size_t k =
			    want > EXPORT_IO_CHUNK ? EXPORT_IO_CHUNK : want;
			size_t use = left < k ? (size_t)left : k;

			er = export_read_all(fd, chunk, k);
			if (er != BW_OK) {
				export_problem(rep, "%.99s: truncated", name);
				files_ok = 0;
				goto files_done;
			}
			(void)sec_sha256_update(sc, chunk, use);
			left -= use;
			want -= k;
		}
		(void)sec_sha256_final(sc, d);
		sec_hex(d, sizeof(d), hex);
		if (i < nev) {
			seen[i] = 1;
			if (strcmp(hex, jv_str(e, "sha256", "")) != 0 ||
			    (int64_t)size != jv_int(e, "size", -1)) {
				export_problem(rep,
				    "%.99s: sha256 or size "
				    "differs from the manifest",
				    name);
				files_ok = 0;
			}
		}
	}
	for (i = 0; i < nev; i++)
		if (!seen[i]) {
			e = json_object_array_get_idx(ev, i);
			export_problem(rep, "%s: listed but missing",
			    jv_str(e, "file", "?"));
			files_ok = 0;
		}
	/* Each file's ledger event: payload = its SHA-256, hash recomputed. */
	for (i = 0; i < nev; i++) {
		struct json_object *le;
		uint8_t		    pl[32], pv[32], hh[32], want_h[32];
		const char	   *org = jv_str(m, "org_id", "");

		e = json_object_array_get_idx(ev, i);
		le = json_object_object_get(e, "ledger_event");
		if (le == NULL) {
			export_problem(rep, "%s: no ledger event",
			    jv_str(e, "file", "?"));
			files_ok = 0;
			continue;
		}
		if (strcmp(jv_str(le, "payload_hash", ""),
			jv_str(e, "sha256", "-")) != 0 ||
		    export_hex32(le, "payload_hash", pl) != 0 ||
		    export_hex32(le, "prev_hash", pv) != 0 ||
		    export_hex32(le, "hash", want_h) != 0 ||
		    ledger_event_hash(org, jv_int(e, "ledger_seq", 0),
			jv_str(le, "type", ""), pl, pv,
			jv_int(le, "time_us", 0), hh) != BW_OK ||
		    memcmp(hh, want_h, 32) != 0) {
			export_problem(rep,
			    "%s: ledger event does not hash "
			    "to its recorded hash",
			    jv_str(e, "file", "?"));
			files_ok = 0;
		}
	}
files_done:
	er = BW_OK;
	json_object_object_add(rep, "files", json_object_new_int(nfiles));
	json_object_object_add(rep, "files_valid",
	    json_object_new_boolean(files_ok));
	if (!files_ok)
		ok = 0;
	if (keys != NULL && m != NULL) {
		int lok = export_check_ledger(m, keys, rep);

		json_object_object_add(rep, "ledger_valid",
		    json_object_new_boolean(lok));
		if (!lok)
			ok = 0;
	}
	json_object_object_add(rep, "valid", json_object_new_boolean(ok));
	*valid = ok != 0;
	*report = rep;
	rep = NULL;
out:
	free(chunk);
	free(seen);
	sec_sha256_free(sc);
	json_object_put(m);
	json_object_put(rep);
	buf_free(&man);
	close(fd);
	return er;
}

/* --- public verification -------------------------------------------------- */

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
	json_object_object_add(o, "export_id", export_col_str(res, 0, 1));
	json_object_object_add(o, "state", export_col_str(res, 0, 2));
	json_object_object_add(o, "manifest_hash", export_col_str(res, 0, 3));
	if (strcmp(PQgetvalue(res, 0, 2), "ready") == 0 &&
	    !PQgetisnull(res, 0, 4) &&
	    buf_printf(&path, "%s/%s", storage_dir, PQgetvalue(res, 0, 4)) ==
		BW_OK &&
	    export_artifact_check(path.p, NULL, &rep, &valid, mh) == BW_OK)
		valid = valid && !PQgetisnull(res, 0, 3) &&
		    strcmp(mh, PQgetvalue(res, 0, 3)) == 0;
	else
		valid = false;
	json_object_object_add(o, "manifest_valid",
	    json_object_new_boolean(valid));
	if (!PQgetisnull(res, 0, 5) && !PQgetisnull(res, 0, 6)) {
		first = strtoll(PQgetvalue(res, 0, 5), NULL, 10);
		last = strtoll(PQgetvalue(res, 0, 6), NULL, 10);
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

/* --- retention -------------------------------------------------------------- */

struct export_expire_arg {
	const char *org_id;
	const char *id;
	const char *offset;
	char	    rel[256];
	int	    done;
};

/* ready -> expired if still ready and due; a second pass finds nothing. */
static enum bw_err
export_expire_tx(struct db *db, void *arg)
{
	struct export_expire_arg *a = arg;
	const char		 *p[3] = { a->org_id, a->id, a->offset };
	PGresult		 *res = NULL;
	enum bw_err		  er;

	a->done = 0;
	a->rel[0] = '\0';
	er = db_execp(db, "export_expire",
	    "UPDATE exports SET state = 'expired', expired_at = now()"
	    " WHERE org_id = $1::uuid AND id = $2::uuid AND state = 'ready'"
	    "  AND expires_at < now() + make_interval(secs => $3::float8)"
	    " RETURNING coalesce(artifact_path, '')",
	    3, p, &res);
	if (er != BW_OK)
		return er;
	a->done = PQntuples(res) == 1;
	if (a->done)
		snprintf(a->rel, sizeof(a->rel), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	if (!a->done)
		return BW_OK;
	return export_event_tx(db, a->org_id, a->id, "expired", NULL, NULL);
}

/* Deletes stray files of storage_dir/exports older than age_s. */
static enum bw_err
export_sweep_files(struct db *db, const char *storage_dir, int64_t now_s,
    int *n)
{
	struct buf     top, sub, f;
	DIR	      *d = NULL, *od;
	struct dirent *de, *fe;
	struct stat    st;
	const char    *p[2];
	PGresult      *res;
	char	       id[37];
	enum bw_err    er = BW_OK;
	int	       keep;

	buf_init(&top, PATH_MAX);
	buf_init(&sub, PATH_MAX);
	buf_init(&f, PATH_MAX);
	if (buf_printf(&top, "%s/exports", storage_dir) != BW_OK) {
		er = BW_ENOMEM;
		goto out;
	}
	d = opendir(top.p);
	if (d == NULL)
		goto out; /* nothing exported yet */
	while ((de = readdir(d)) != NULL) {
		if (!jv_is_uuid(de->d_name, strlen(de->d_name)))
			continue;
		buf_reset(&sub);
		if (buf_printf(&sub, "%s/%s", top.p, de->d_name) != BW_OK)
			continue;
		od = opendir(sub.p);
		if (od == NULL)
			continue;
		while ((fe = readdir(od)) != NULL) {
			if (fe->d_name[0] == '.' &&
			    (fe->d_name[1] == '\0' ||
				strcmp(fe->d_name, "..") == 0))
				continue;
			buf_reset(&f);
			if (buf_printf(&f, "%s/%s", sub.p, fe->d_name) !=
				BW_OK ||
			    lstat(f.p, &st) != 0 || !S_ISREG(st.st_mode) ||
			    now_s - (int64_t)st.st_mtime < EXPORT_ORPHAN_AGE_S)
				continue;
			keep = 0;
			if (strlen(fe->d_name) == 40 &&
			    strcmp(fe->d_name + 36, ".tar") == 0) {
				memcpy(id, fe->d_name, 36);
				id[36] = '\0';
				p[0] = de->d_name;
				p[1] = id;
				res = NULL;
				if (!jv_is_uuid(id, 36))
					keep = 0;
				else if (db_execp(db, "export_keep_file",
					     "SELECT 1 FROM exports WHERE "
					     "org_id ="
					     " $1::uuid AND id = $2::uuid AND "
					     "state ="
					     " 'ready'",
					     2, p, &res) != BW_OK) {
					er = BW_EDB;
					closedir(od);
					goto out;
				} else
					keep = PQntuples(res) == 1;
				PQclear(res);
			}
			if (keep)
				continue;
			if (unlink(f.p) == 0) {
				(*n)++;
				log_kv(LL_INFO, "export orphan file removed",
				    "path", f.p, NULL);
			}
		}
		closedir(od);
	}
out:
	if (d != NULL)
		closedir(d);
	buf_free(&top);
	buf_free(&sub);
	buf_free(&f);
	return er;
}

enum bw_err
export_retention(struct db *db, const char *storage_dir, int64_t clock_offset_s,
    struct export_retention_stats *st)
{
	struct export_expire_arg a;
	char			 off[24], rm[24], batch[16];
	const char		*p[2] = { off, rm };
	const char		*pd[2] = { off, batch };
	PGresult		*res = NULL;
	enum bw_err		 er;
	int			 i, n;

	memset(st, 0, sizeof(*st));
	snprintf(off, sizeof(off), "%" PRId64, clock_offset_s);
	snprintf(rm, sizeof(rm), "%d", EXPORT_REMOVE_AFTER_S);
	snprintf(batch, sizeof(batch), "%d", EXPORT_BATCH);
	/* Ready exports past their plan retention. */
	do {
		er = db_execp(db, "export_due",
		    "SELECT org_id, id FROM exports WHERE state = 'ready'"
		    " AND expires_at < now() + make_interval(secs => "
		    "$1::float8)"
		    " ORDER BY expires_at LIMIT $2::int",
		    2, pd, &res);
		if (er != BW_OK)
			return er;
		n = PQntuples(res);
		for (i = 0; i < n; i++) {
			memset(&a, 0, sizeof(a));
			a.org_id = PQgetvalue(res, i, 0);
			a.id = PQgetvalue(res, i, 1);
			a.offset = off;
			er = db_tx(db, false, export_expire_tx, &a);
			if (er != BW_OK) {
				PQclear(res);
				return er;
			}
			if (!a.done)
				continue; /* another pass took it */
			export_unlink_rel(storage_dir, a.rel);
			st->expired++;
			log_kv(LL_INFO, "export expired", "org_id", a.org_id,
			    "export_id", a.id, "artifact", a.rel, NULL);
		}
		PQclear(res);
		res = NULL;
	} while (n == EXPORT_BATCH && st->expired > 0);

	/* Failed and canceled exports after 7 days: the rows go. */
	er = db_execp(db, "export_remove",
	    "DELETE FROM exports WHERE state IN ('failed', 'canceled')"
	    " AND finished_at < now() + make_interval(secs => $1::float8)"
	    "  - make_interval(secs => $2::float8)"
	    " RETURNING org_id, id, state",
	    2, p, &res);
	if (er != BW_OK)
		return er;
	st->removed = PQntuples(res);
	for (i = 0; i < st->removed; i++)
		log_kv(LL_INFO, "export removed", "org_id",
		    PQgetvalue(res, i, 0), "export_id", PQgetvalue(res, i, 1),
		    "state", PQgetvalue(res, i, 2), NULL);
	PQclear(res);
	return export_sweep_files(db, storage_dir,
	    (int64_t)time(NULL) + clock_offset_s, &st->orphans);
}

/* --- Prometheus ----------------------------------------------------------- */

static const double export_dur_bounds[] = { 0.1, 0.5, 1, 2.5, 5, 10, 30, 60,
	300, 900 };
#define EXPORT_NDUR (sizeof(export_dur_bounds) / sizeof(export_dur_bounds[0]))

enum bw_err
export_prom(struct db *db, struct buf *out)
{
	static const char by_state[] =
	    "SELECT s, (SELECT count(*) FROM exports WHERE state = s) "
	    "FROM unnest(ARRAY['queued','processing','ready','failed',"
	    "'canceled','expired']) AS s";
	/* Durations of exports that became ready (expired ones were). */
	static const char durations[] =
	    "SELECT extract(epoch FROM finished_at - started_at) FROM exports "
	    "WHERE state IN ('ready', 'expired') AND started_at IS NOT NULL "
	    "AND finished_at IS NOT NULL";
	PGresult   *res = NULL;
	uint64_t    bucket[EXPORT_NDUR], count = 0;
	double	    sum = 0, d;
	enum bw_err er;
	size_t	    k;
	int	    i;

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
	memset(bucket, 0, sizeof(bucket));
	for (i = 0; i < PQntuples(res); i++) {
		d = strtod(PQgetvalue(res, i, 0), NULL);
		if (d < 0)
			d = 0;
		count++;
		sum += d;
		for (k = 0; k < EXPORT_NDUR; k++)
			if (d <= export_dur_bounds[k])
				bucket[k]++;
	}
	(void)buf_addstr(out,
	    "# HELP bulwark_export_duration_seconds Time from claim to ready "
	    "of every export that became ready.\n"
	    "# TYPE bulwark_export_duration_seconds histogram\n");
	for (k = 0; k < EXPORT_NDUR; k++)
		(void)buf_printf(out,
		    "bulwark_export_duration_seconds_bucket{le=\"%g\"} %llu\n",
		    export_dur_bounds[k], (unsigned long long)bucket[k]);
	(void)buf_printf(out,
	    "bulwark_export_duration_seconds_bucket{le=\"+Inf\"} %llu\n"
	    "bulwark_export_duration_seconds_sum %.6f\n"
	    "bulwark_export_duration_seconds_count %llu\n",
	    (unsigned long long)count, sum, (unsigned long long)count);
out:
	PQclear(res);
	return er;
}
