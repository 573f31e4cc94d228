/* SPDX-License-Identifier: MIT */
/*
 * Error groups (error_groups, error_group_hours; sql/0028): recording an
 * occurrence in one upsert, the jobs it enqueues (a new group: one filing
 * job; a count reaching 10, 100, 1,000: one comment job each, unique keys),
 * and the reads: the owner's list and one group, the console's recent
 * groups with errors per hour, the /metrics series.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/jv.h"
#include "errtrack/errtrack.h"
#include "errtrack/errtrack_int.h"
#include "platform/jobq.h"

/* clang-format off */
static const char eg_sql_upsert[] =
    "WITH g AS ("
    " INSERT INTO error_groups AS e (org_id, fingerprint, kind, code, site,"
    "  sample_message, sample_request_id, sample_correlation_id)"
    " VALUES ($1::uuid, $2, $3, $4, $5, $6, $7, $8)"
    " ON CONFLICT ON CONSTRAINT error_groups_scope_fp DO UPDATE SET"
    "  occurrence_count = e.occurrence_count + 1, last_seen = now(),"
    "  sample_message = EXCLUDED.sample_message,"
    "  sample_request_id = EXCLUDED.sample_request_id,"
    "  sample_correlation_id = EXCLUDED.sample_correlation_id"
    " RETURNING id, org_id, (xmax = 0) AS created, occurrence_count),"
    " h AS ("
    " INSERT INTO error_group_hours (group_id, hour, org_id)"
    "  SELECT id, date_trunc('hour', now(), 'UTC'), org_id FROM g"
    " ON CONFLICT (group_id, hour) DO UPDATE SET n = error_group_hours.n + 1)"
    " SELECT id, created, occurrence_count FROM g";

#define EG_COLS \
    "id, kind, code, site, occurrence_count, " DB_TS_UTC("first_seen") ", " \
    DB_TS_UTC("last_seen") ", issue_number, issue_url, " \
    "last_comment_threshold, sample_message, sample_request_id, " \
    "sample_correlation_id, fingerprint, org_id"

static const char eg_sql_get[] =
    "SELECT " EG_COLS " FROM error_groups WHERE id = $2::uuid"
    " AND org_id IS NOT DISTINCT FROM $1::uuid";
static const char eg_sql_get_any[] =
    "SELECT " EG_COLS " FROM error_groups WHERE id = $1::uuid";
static const char eg_sql_exists[] =
    "SELECT 1 FROM error_groups WHERE id = $2::uuid AND org_id = $1::uuid";
static const char eg_sql_list[] =
    "SELECT " EG_COLS " FROM error_groups WHERE org_id = $1::uuid"
    " AND ($2::uuid IS NULL OR (last_seen, id) < (SELECT last_seen, id"
    "  FROM error_groups WHERE id = $2::uuid AND org_id = $1::uuid))"
    " ORDER BY last_seen DESC, id DESC LIMIT $3::int";
static const char eg_sql_hours[] =
    "SELECT " DB_TS_UTC_S("s.h") ", coalesce(sum(x.n), 0)"
    " FROM generate_series(date_trunc('hour', now(), 'UTC')"
    "  - interval '23 hours', date_trunc('hour', now(), 'UTC'),"
    "  interval '1 hour') AS s(h)"
    " LEFT JOIN error_group_hours x ON x.org_id = $1::uuid AND x.hour = s.h"
    " GROUP BY s.h ORDER BY s.h";
static const char eg_sql_prom[] =
    "SELECT k, count(e.id), coalesce(sum(e.occurrence_count), 0),"
    " count(e.issue_number), coalesce(sum(e.filing_failures), 0)"
    " FROM unnest(ARRAY['http_5xx','crash','job_failure','client']) k"
    " LEFT JOIN error_groups e ON e.kind = k GROUP BY k ORDER BY k";
/* clang-format on */

enum {
	C_ID,
	C_KIND,
	C_CODE,
	C_SITE,
	C_COUNT,
	C_FIRST,
	C_LAST,
	C_ISSUE_NO,
	C_ISSUE_URL,
	C_THRESHOLD,
	C_MSG,
	C_RID,
	C_CID,
	C_FP,
	C_ORG
};

static struct json_object *
str_or_null(const PGresult *res, int row, int col)
{
	const char *s = db_col_str(res, row, col);

	return s != NULL ? json_object_new_string(s) : NULL;
}

/* One row as the API's group; full adds the sample and the issue. */
static struct json_object *
eg_row_json(const PGresult *res, int row, int full)
{
	struct json_object *o = json_object_new_object(), *s;
	int64_t		    n;

	json_object_object_add(o, "id", str_or_null(res, row, C_ID));
	json_object_object_add(o, "kind", str_or_null(res, row, C_KIND));
	json_object_object_add(o, "code", str_or_null(res, row, C_CODE));
	json_object_object_add(o, "site", str_or_null(res, row, C_SITE));
	json_object_object_add(o, "count",
	    json_object_new_int64(db_col_i64_or(res, row, C_COUNT, 0)));
	json_object_object_add(o, "first_seen", str_or_null(res, row, C_FIRST));
	json_object_object_add(o, "last_seen", str_or_null(res, row, C_LAST));
	json_object_object_add(o, "issue_url",
	    str_or_null(res, row, C_ISSUE_URL));
	if (!full)
		return o;
	n = db_col_i64_or(res, row, C_ISSUE_NO, -1);
	json_object_object_add(o, "issue_number",
	    n >= 0 ? json_object_new_int64(n) : NULL);
	json_object_object_add(o, "last_comment_threshold",
	    json_object_new_int64(db_col_i64_or(res, row, C_THRESHOLD, 0)));
	json_object_object_add(o, "fingerprint", str_or_null(res, row, C_FP));
	json_object_object_add(o, "org_id", str_or_null(res, row, C_ORG));
	s = json_object_new_object();
	json_object_object_add(s, "message", str_or_null(res, row, C_MSG));
	json_object_object_add(s, "request_id", str_or_null(res, row, C_RID));
	json_object_object_add(s, "correlation_id",
	    str_or_null(res, row, C_CID));
	json_object_object_add(o, "sample", s);
	return o;
}

/* Enqueues one job of the group with key and payload; counted in res. */
static enum bw_err
eg_enqueue(struct db *db, const char *org_id, const char *group_id,
    int64_t threshold, struct errtrack_result *res)
{
	struct jobq_spec spec;
	char		 key[96], payload[128], id[37];
	bool		 created = false;
	enum bw_err	 er;

	if (threshold > 0) {
		snprintf(key, sizeof(key), "errtrack:comment:%s:%lld", group_id,
		    (long long)threshold);
		snprintf(payload, sizeof(payload),
		    "{\"group_id\":\"%s\",\"threshold\":%lld}", group_id,
		    (long long)threshold);
	} else {
		snprintf(key, sizeof(key), "errtrack:file:%s", group_id);
		snprintf(payload, sizeof(payload), "{\"group_id\":\"%s\"}",
		    group_id);
	}
	memset(&spec, 0, sizeof(spec));
	spec.queue = ERRTRACK_QUEUE;
	spec.job_key = key;
	spec.org_id = org_id;
	spec.payload = payload;
	spec.max_attempts = ERRTRACK_MAX_ATTEMPTS;
	er = jobq_enqueue(db, &spec, id, &created);
	if (er == BW_OK && created)
		res->jobs++;
	return er;
}

/* Copies at most max bytes of s, or a default when s is NULL or empty. */
static char *
eg_field(const char *s, const char *dflt, size_t max)
{
	return errtrack_redact(s != NULL && s[0] != '\0' ? s : dflt, max);
}

/* A request or correlation id as stored: NULL unless [A-Za-z0-9._-]. */
static const char *
eg_id(const char *s)
{
	size_t i, n;

	if (s == NULL || (n = strlen(s)) == 0 || n > 128)
		return NULL;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
			(s[i] >= 'A' && s[i] <= 'Z') ||
			(s[i] >= '0' && s[i] <= '9') || s[i] == '.' ||
			s[i] == '_' || s[i] == '-'))
			return NULL;
	return s;
}

enum bw_err
errtrack_record(struct db *db, const struct errtrack_event *ev, bool filing,
    struct errtrack_result *out)
{
	static const int64_t thresholds[] = ERRTRACK_THRESHOLDS;
	char		     norm[ERRTRACK_MSG_MAX + 1], fp[65];
	char		    *code = NULL, *site = NULL, *msg = NULL;
	const char	    *p[8];
	PGresult	    *res = NULL;
	enum bw_err	     er, er2;
	size_t		     i;

	memset(out, 0, sizeof(*out));
	if (ev == NULL || ev->kind < 0 || ev->kind >= EK__MAX ||
	    (ev->org_id != NULL && !jv_is_uuid(ev->org_id, strlen(ev->org_id))))
		return BW_EINVAL;
	code = eg_field(ev->code, "UNKNOWN", ERRTRACK_CODE_MAX);
	site = eg_field(ev->site, "unknown", ERRTRACK_SITE_MAX);
	if (ev->detail != NULL && ev->detail[0] != '\0') {
		struct buf b;

		buf_init(&b, 2 * ERRTRACK_MSG_MAX);
		(void)buf_printf(&b, "%s\n%s",
		    ev->message != NULL ? ev->message : "", ev->detail);
		msg = eg_field(buf_cstr(&b), "(no message)", ERRTRACK_MSG_MAX);
		buf_free(&b);
	} else
		msg = eg_field(ev->message, "(no message)", ERRTRACK_MSG_MAX);
	if (code == NULL || site == NULL || msg == NULL) {
		er = BW_ENOMEM;
		goto out;
	}
	(void)errtrack_normalize(ev->message != NULL ? ev->message : "", norm,
	    sizeof(norm));
	er = errtrack_fingerprint(code, norm, site, fp);
	if (er != BW_OK)
		goto out;
	p[0] = ev->org_id;
	p[1] = fp;
	p[2] = errtrack_kind_name(ev->kind);
	p[3] = code;
	p[4] = site;
	p[5] = msg;
	p[6] = eg_id(ev->request_id);
	p[7] = eg_id(ev->correlation_id);
	er = db_execp(db, "eg_upsert", eg_sql_upsert, 8, p, &res);
	if (er != BW_OK)
		goto out;
	if (PQntuples(res) != 1) {
		er = BW_EDB;
		goto out;
	}
	snprintf(out->group_id, sizeof(out->group_id), "%s",
	    PQgetvalue(res, 0, 0));
	out->created = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
	out->count = db_col_i64_or(res, 0, 2, 0);
	if (!filing)
		goto out;
	/* The row lock serialised the bumps: exactly one occurrence sees
	 * each count, so each threshold is enqueued once (and its job key
	 * is unique besides). */
	if (out->created)
		er = eg_enqueue(db, ev->org_id, out->group_id, 0, out);
	for (i = 0; i < sizeof(thresholds) / sizeof(thresholds[0]); i++)
		if (out->count == thresholds[i]) {
			er2 = eg_enqueue(db, ev->org_id, out->group_id,
			    thresholds[i], out);
			if (er == BW_OK)
				er = er2;
		}
out:
	PQclear(res);
	free(code);
	free(site);
	free(msg);
	return er;
}

enum bw_err
errtrack_get_json(struct db *db, const char *org_id, const char *id,
    struct json_object **out)
{
	const char *p[2] = { org_id, id };
	PGresult   *res = NULL;
	enum bw_err er;

	if (id == NULL || !jv_is_uuid(id, strlen(id)))
		return BW_ENOTFOUND;
	if (org_id != NULL)
		er = db_execp(db, "eg_get", eg_sql_get, 2, p, &res);
	else
		er = db_execp(db, "eg_get_any", eg_sql_get_any, 1, p + 1, &res);
	if (er != BW_OK)
		return er;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return BW_ENOTFOUND;
	}
	*out = eg_row_json(res, 0, 1);
	PQclear(res);
	return BW_OK;
}

/* Rows of eg_sql_list into an array (at most limit of them). */
static enum bw_err
eg_list(struct db *db, const char *org_id, int limit, const char *cursor,
    int full, struct json_object **arr, char next[37])
{
	const char *p[3];
	char	    lim[16];
	PGresult   *res = NULL;
	enum bw_err er;
	int	    row, n;

	snprintf(lim, sizeof(lim), "%d", limit + 1);
	p[0] = org_id;
	p[1] = cursor;
	p[2] = lim;
	er = db_execp(db, "eg_list", eg_sql_list, 3, p, &res);
	if (er != BW_OK)
		return er;
	n = PQntuples(res);
	*arr = json_object_new_array();
	for (row = 0; row < n && row < limit; row++)
		json_object_array_add(*arr, eg_row_json(res, row, full));
	next[0] = '\0';
	if (n > limit)
		snprintf(next, 37, "%s", PQgetvalue(res, limit - 1, 0));
	PQclear(res);
	return BW_OK;
}

enum bw_err
errtrack_list_json(struct db *db, const char *org_id, int limit,
    const char *cursor, struct json_object **out)
{
	struct json_object *arr = NULL, *o;
	const char	   *p[2] = { org_id, cursor };
	PGresult	   *res = NULL;
	char		    next[37];
	enum bw_err	    er;
	int		    n;

	if (org_id == NULL || limit < 1 || limit > ERRTRACK_LIST_MAX)
		return BW_EINVAL;
	if (cursor != NULL) {
		if (!jv_is_uuid(cursor, strlen(cursor)))
			return BW_EINVAL;
		er = db_execp(db, "eg_exists", eg_sql_exists, 2, p, &res);
		if (er != BW_OK)
			return er;
		n = PQntuples(res);
		PQclear(res);
		if (n != 1)
			return BW_EINVAL;
	}
	er = eg_list(db, org_id, limit, cursor, 1, &arr, next);
	if (er != BW_OK)
		return er;
	o = json_object_new_object();
	json_object_object_add(o, "groups", arr);
	json_object_object_add(o, "next_cursor",
	    next[0] != '\0' ? json_object_new_string(next) : NULL);
	*out = o;
	return BW_OK;
}

enum bw_err
errtrack_recent_json(struct db *db, const char *org_id, int limit,
    struct json_object **out)
{
	struct json_object *arr = NULL, *hours, *h, *o;
	const char	   *p[1] = { org_id };
	PGresult	   *res = NULL;
	char		    next[37];
	enum bw_err	    er;
	int		    row;

	if (org_id == NULL || !jv_is_uuid(org_id, strlen(org_id)) ||
	    limit < 1 || limit > ERRTRACK_LIST_MAX)
		return BW_EINVAL;
	er = eg_list(db, org_id, limit, NULL, 0, &arr, next);
	if (er != BW_OK)
		return er;
	er = db_execp(db, "eg_hours", eg_sql_hours, 1, p, &res);
	if (er != BW_OK) {
		json_object_put(arr);
		return er;
	}
	hours = json_object_new_array();
	for (row = 0; row < PQntuples(res); row++) {
		h = json_object_new_object();
		json_object_object_add(h, "hour", str_or_null(res, row, 0));
		json_object_object_add(h, "count",
		    json_object_new_int64(db_col_i64_or(res, row, 1, 0)));
		json_object_array_add(hours, h);
	}
	PQclear(res);
	o = json_object_new_object();
	json_object_object_add(o, "groups", arr);
	json_object_object_add(o, "per_hour", hours);
	*out = o;
	return BW_OK;
}

enum bw_err
errtrack_prom(struct db *db, struct buf *out)
{
	static const char *const fam[4][2] = {
		{ "bulwark_error_groups_total", "Error groups made, by kind." },
		{ "bulwark_error_occurrences_total",
		    "Errors recorded into their groups, by kind." },
		{ "bulwark_errtrack_issues_filed_total",
		    "Error groups with an issue filed at the tracker, by "
		    "kind." },
		{ "bulwark_errtrack_filing_failures_total",
		    "Failed attempts of filing and comment jobs, by kind." },
	};
	PGresult   *res = NULL;
	enum bw_err er;
	int	    f, row;

	er = db_execp(db, "eg_prom", eg_sql_prom, 0, NULL, &res);
	if (er != BW_OK)
		return er;
	for (f = 0; f < 4; f++) {
		(void)buf_printf(out, "# HELP %s %s\n# TYPE %s counter\n",
		    fam[f][0], fam[f][1], fam[f][0]);
		for (row = 0; row < PQntuples(res); row++)
			(void)buf_printf(out, "%s{kind=\"%s\"} %s\n", fam[f][0],
			    PQgetvalue(res, row, 0),
			    PQgetvalue(res, row, f + 1));
	}
	PQclear(res);
	return BW_OK;
}
