/* SPDX-License-Identifier: MIT */
/*
 * Campaigns: create (with the recipient rows), get, list, cancel, and the
 * settlement that finishes a campaign once no batch is in flight. See
 * lib/campaign/campaign.h.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "campaign/campaign.h"
#include "core/jv.h"
#include "core/limits.h"
#include "core/log.h"
#include "money/credit.h"

/* clang-format off */
static const char camp_sql_ins[] =
    "INSERT INTO campaigns (org_id, name, message, user_id, send_at, "
    "request_key, recipients, duplicates_removed, batch_size, status) "
    "VALUES ($1::uuid, $2, $3, $4, $5::timestamptz, $6, $7::int, $8::int, "
    "$9::int, CASE WHEN $5::timestamptz IS NULL THEN 'draft' "
    "ELSE 'scheduled' END) "
    "ON CONFLICT (org_id, request_key) DO NOTHING RETURNING id::text, "
    "greatest(0, ceil(extract(epoch FROM send_at - now())))::int";
static const char camp_sql_ins_rcpt[] =
    "INSERT INTO campaign_recipients (org_id, campaign_id, seq, phone, "
    "state) SELECT $1::uuid, $2::uuid, (t.ord - 1)::int, t.phone, "
    "CASE WHEN o.phone IS NULL THEN 'pending' ELSE 'opted_out' END "
    "FROM unnest($3::text[]) WITH ORDINALITY AS t(phone, ord) "
    "LEFT JOIN sms_opt_outs o ON o.org_id = $1::uuid AND o.phone = t.phone";
static const char camp_sql_optcount[] =
    "UPDATE campaigns SET opted_out = (SELECT count(*) FROM "
    "campaign_recipients WHERE org_id = $1::uuid AND campaign_id = $2::uuid "
    "AND state = 'opted_out') WHERE org_id = $1::uuid AND id = $2::uuid "
    "RETURNING opted_out";
#define CAMP_COLS \
    "id::text, name, status, recipients, duplicates_removed, opted_out, " \
    "batches, batch_size, credits_reserved, credits_debited, " \
    "credits_released, " DB_TS_UTC("created_at") ", " \
    DB_TS_UTC("started_at") ", " DB_TS_UTC("finished_at") ", " \
    DB_TS_UTC("send_at") ", " DB_TS_UTC("progress_at") ", user_id, " \
    "coalesce(reservation_id::text, ''), start_error"
static const char camp_sql_get[] =
    "SELECT " CAMP_COLS " FROM campaigns WHERE org_id = $1::uuid AND "
    "id = $2::uuid";
static const char camp_sql_counts[] =
    "SELECT state, count(*) FROM campaign_recipients WHERE "
    "org_id = $1::uuid AND campaign_id = $2::uuid GROUP BY state";
static const char camp_sql_bcounts[] =
    "SELECT state, count(*) FROM campaign_batches WHERE "
    "org_id = $1::uuid AND campaign_id = $2::uuid GROUP BY state";
static const char camp_sql_list[] =
    "SELECT " CAMP_COLS " FROM campaigns WHERE org_id = $1::uuid AND "
    "($2::uuid IS NULL OR (created_at, id) < (SELECT created_at, id FROM "
    "campaigns WHERE org_id = $1::uuid AND id = $2::uuid)) "
    "ORDER BY created_at DESC, id DESC LIMIT $3::int";
static const char camp_sql_exists[] =
    "SELECT 1 FROM campaigns WHERE org_id = $1::uuid AND id = $2::uuid";
static const char camp_sql_lock[] =
    "SELECT status, coalesce(reservation_id::text, ''), "
    "finished_at IS NOT NULL FROM campaigns "
    "WHERE org_id = $1::uuid AND id = $2::uuid FOR UPDATE";
static const char camp_sql_cancel[] =
    "UPDATE campaigns SET status = 'canceled', "
    "started_at = coalesce(started_at, now()) "
    "WHERE org_id = $1::uuid AND id = $2::uuid";
static const char camp_sql_cancel_rcpt[] =
    "UPDATE campaign_recipients SET state = 'canceled', "
    "state_changes = state_changes + 1, updated_at = now() "
    "WHERE org_id = $1::uuid AND campaign_id = $2::uuid AND "
    "state = 'pending' AND provider_message_id IS NULL";
static const char camp_sql_cancel_batches[] =
    "UPDATE campaign_batches SET state = 'canceled', finished_at = now() "
    "WHERE org_id = $1::uuid AND campaign_id = $2::uuid AND "
    "state = 'queued'";
static const char camp_sql_inflight[] =
    "SELECT count(*) FROM campaign_batches WHERE org_id = $1::uuid AND "
    "campaign_id = $2::uuid AND state IN ('queued', 'sending')";
static const char camp_sql_finish[] =
    "UPDATE campaigns SET status = CASE WHEN status IN ('sending', "
    "'draft', 'scheduled') THEN 'completed' ELSE status END, "
    "finished_at = now(), progress_at = now(), "
    "credits_released = credits_reserved - credits_debited "
    "WHERE org_id = $1::uuid AND id = $2::uuid RETURNING status";
/* clang-format on */

/* Arguments and result of the create transaction. */
struct camp_create_arg {
	const struct campaign_new *c;
	const char		  *arr; /* "{+66...,...}" */
	struct campaign_created	  *out;
};

static enum bw_err
camp_create_fn(struct db *db, void *arg)
{
	struct camp_create_arg	  *a = arg;
	const struct campaign_new *c = a->c;
	const char		  *p[9];
	char			   n[16], d[16], bs[16];
	PGresult		  *res = NULL;
	int64_t			   delay;
	bool			   made;
	enum bw_err		   er;

	snprintf(n, sizeof(n), "%zu", c->numbers->n);
	snprintf(d, sizeof(d), "%zu", c->numbers->duplicates);
	snprintf(bs, sizeof(bs), "%d", c->batch_size);
	p[0] = c->org_id;
	p[1] = c->name;
	p[2] = c->message;
	p[3] = c->user_id != NULL ? c->user_id : CAMPAIGN_USER_DEFAULT;
	p[4] = c->send_at;
	p[5] = c->request_key;
	p[6] = n;
	p[7] = d;
	p[8] = bs;
	er = db_execp(db, "camp_ins", camp_sql_ins, 9, p, &res);
	if (er != BW_OK)
		goto out;
	if (PQntuples(res) != 1) {
		er = BW_EEXISTS;
		goto out;
	}
	snprintf(a->out->id, sizeof(a->out->id), "%s", PQgetvalue(res, 0, 0));
	delay = PQgetisnull(res, 0, 1) ? -1 : db_col_i64_or(res, 0, 1, 0);
	PQclear(res);
	res = NULL;
	if (delay >= 0) {
		/* Scheduled: the start job, runnable at send_at. */
		er = campaign_start_enqueue(db, c->org_id, a->out->id,
		    delay > INT_MAX ? INT_MAX : (int)delay, &made);
		if (er != BW_OK)
			goto out;
	}
	p[1] = a->out->id;
	p[2] = a->arr;
	er = db_execp(db, "camp_ins_rcpt", camp_sql_ins_rcpt, 3, p, NULL);
	if (er != BW_OK)
		goto out;
	er = db_execp(db, "camp_optcount", camp_sql_optcount, 2, p, &res);
	if (er != BW_OK)
		goto out;
	a->out->opted_out = db_col_i64_or(res, 0, 0, 0);
	a->out->recipients = (int64_t)c->numbers->n;
	a->out->duplicates_removed = (int64_t)c->numbers->duplicates;
out:
	PQclear(res);
	return er;
}

enum bw_err
campaign_create(struct db *db, const struct campaign_new *c,
    struct campaign_created *out)
{
	struct camp_create_arg a;
	struct buf	       arr;
	enum bw_err	       er = BW_OK;
	size_t		       i;

	if (c == NULL || c->org_id == NULL ||
	    !jv_is_uuid(c->org_id, strlen(c->org_id)) || c->name == NULL ||
	    c->message == NULL || c->numbers == NULL || c->numbers->n == 0 ||
	    c->batch_size < 1)
		return BW_EINVAL;
	buf_init(&arr, (c->numbers->n + 1) * (CAMPAIGN_E164_MAX + 2) + 8);
	(void)buf_addc(&arr, '{');
	for (i = 0; i < c->numbers->n && er == BW_OK; i++) {
		if (i > 0)
			er = buf_addc(&arr, ',');
		if (er == BW_OK)
			er = buf_addstr(&arr, c->numbers->num[i]);
	}
	if (er == BW_OK)
		er = buf_addc(&arr, '}');
	if (er != BW_OK) {
		buf_free(&arr);
		return er;
	}
	memset(out, 0, sizeof(*out));
	a.c = c;
	a.arr = buf_cstr(&arr);
	a.out = out;
	er = db_tx(db, false, camp_create_fn, &a);
	buf_free(&arr);
	if (er == BW_OK)
		log_kv(LL_INFO, "campaign created", "campaign_id", out->id,
		    NULL);
	return er;
}

/* A timestamp column: its text, or JSON null when SQL NULL. */
static struct json_object *
camp_ts(PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		return NULL;
	return json_object_new_string(PQgetvalue(res, row, col));
}

/* A campaign row (CAMP_COLS) as JSON, without the counts. */
static struct json_object *
camp_row_json(PGresult *res, int row)
{
	struct json_object *o = json_object_new_object(), *cr;

	json_object_object_add(o, "id",
	    json_object_new_string(PQgetvalue(res, row, 0)));
	json_object_object_add(o, "name",
	    json_object_new_string(PQgetvalue(res, row, 1)));
	json_object_object_add(o, "status",
	    json_object_new_string(PQgetvalue(res, row, 2)));
	json_object_object_add(o, "recipients_total",
	    json_object_new_int64(db_col_i64_or(res, row, 3, 0)));
	json_object_object_add(o, "duplicates_removed",
	    json_object_new_int64(db_col_i64_or(res, row, 4, 0)));
	json_object_object_add(o, "opted_out_at_create",
	    json_object_new_int64(db_col_i64_or(res, row, 5, 0)));
	json_object_object_add(o, "batches",
	    json_object_new_int64(db_col_i64_or(res, row, 6, 0)));
	json_object_object_add(o, "batch_size",
	    json_object_new_int64(db_col_i64_or(res, row, 7, 0)));
	cr = json_object_new_object();
	json_object_object_add(cr, "reserved",
	    json_object_new_int64(db_col_i64_or(res, row, 8, 0)));
	json_object_object_add(cr, "debited",
	    json_object_new_int64(db_col_i64_or(res, row, 9, 0)));
	json_object_object_add(cr, "released",
	    json_object_new_int64(db_col_i64_or(res, row, 10, 0)));
	json_object_object_add(cr, "account",
	    json_object_new_string(PQgetvalue(res, row, 16)));
	json_object_object_add(o, "credits", cr);
	json_object_object_add(o, "created_at", camp_ts(res, row, 11));
	json_object_object_add(o, "started_at", camp_ts(res, row, 12));
	json_object_object_add(o, "finished_at", camp_ts(res, row, 13));
	json_object_object_add(o, "send_at", camp_ts(res, row, 14));
	json_object_object_add(o, "progress_at", camp_ts(res, row, 15));
	json_object_object_add(o, "start_error", camp_ts(res, row, 18));
	return o;
}

static const char *const camp_rstates[] = { "pending", "sent", "delivered",
	"undelivered", "failed", "opted_out", "canceled" };
#define CAMP_NRSTATES (sizeof(camp_rstates) / sizeof(camp_rstates[0]))

/* Adds "recipients" (counts by state) and "progress" to o. */
static enum bw_err
camp_counts_json(struct db *db, const char *org_id, const char *id,
    struct json_object *o)
{
	const char	   *p[2] = { org_id, id };
	struct json_object *r, *pg;
	PGresult	   *res = NULL;
	int64_t		    cnt[CAMP_NRSTATES], total = 0, b_all = 0, b_fin = 0;
	enum bw_err	    er;
	size_t		    i;
	int		    row;

	memset(cnt, 0, sizeof(cnt));
	er = db_execp(db, "camp_counts", camp_sql_counts, 2, p, &res);
	if (er != BW_OK)
		return er;
	for (row = 0; row < PQntuples(res); row++)
		for (i = 0; i < CAMP_NRSTATES; i++)
			if (strcmp(PQgetvalue(res, row, 0), camp_rstates[i]) ==
			    0) {
				cnt[i] = db_col_i64_or(res, row, 1, 0);
				total += cnt[i];
			}
	PQclear(res);
	r = json_object_new_object();
	json_object_object_add(r, "total", json_object_new_int64(total));
	/* The contract's name for recipients not sent yet. */
	json_object_object_add(r, "queued", json_object_new_int64(cnt[0]));
	for (i = 0; i < CAMP_NRSTATES; i++)
		json_object_object_add(r, camp_rstates[i],
		    json_object_new_int64(cnt[i]));
	json_object_object_add(o, "recipients", r);
	er = db_execp(db, "camp_bcounts", camp_sql_bcounts, 2, p, &res);
	if (er != BW_OK)
		return er;
	for (row = 0; row < PQntuples(res); row++) {
		int64_t v = db_col_i64_or(res, row, 1, 0);

		b_all += v;
		if (strcmp(PQgetvalue(res, row, 0), "done") == 0 ||
		    strcmp(PQgetvalue(res, row, 0), "canceled") == 0)
			b_fin += v;
	}
	PQclear(res);
	pg = json_object_new_object();
	json_object_object_add(pg, "batches", json_object_new_int64(b_all));
	json_object_object_add(pg, "batches_finished",
	    json_object_new_int64(b_fin));
	json_object_object_add(pg, "processed",
	    json_object_new_int64(total - cnt[0]));
	json_object_object_add(pg, "percent",
	    json_object_new_double(total > 0
		    ? (double)((total - cnt[0]) * 1000 / total) / 10.0
		    : 100.0));
	json_object_object_add(o, "progress", pg);
	return BW_OK;
}

enum bw_err
campaign_get(struct db *db, const char *org_id, const char *id,
    struct json_object **out)
{
	const char	   *p[2] = { org_id, id };
	PGresult	   *res = NULL;
	struct json_object *o;
	enum bw_err	    er;

	if (org_id == NULL || id == NULL || !jv_is_uuid(id, strlen(id)) ||
	    !jv_is_uuid(org_id, strlen(org_id)))
		return BW_ENOTFOUND;
	er = db_execp(db, "camp_get", camp_sql_get, 2, p, &res);
	if (er != BW_OK)
		return er;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return BW_ENOTFOUND;
	}
	o = camp_row_json(res, 0);
	PQclear(res);
	er = camp_counts_json(db, org_id, id, o);
	if (er != BW_OK) {
		json_object_put(o);
		return er;
	}
	*out = o;
	return BW_OK;
}

enum bw_err
campaign_list(struct db *db, const char *org_id, int limit, const char *cursor,
    struct json_object **out)
{
	const char	   *p[3];
	char		    lim[16];
	PGresult	   *res = NULL;
	struct json_object *o, *arr;
	enum bw_err	    er;
	int		    row, n;

	if (limit < 1 || limit > CAMPAIGN_LIST_MAX || org_id == NULL)
		return BW_EINVAL;
	p[0] = org_id;
	p[1] = cursor;
	if (cursor != NULL) {
		if (!jv_is_uuid(cursor, strlen(cursor)))
			return BW_EINVAL;
		er = db_execp(db, "camp_exists", camp_sql_exists, 2, p, &res);
		if (er != BW_OK)
			return er;
		n = PQntuples(res);
		PQclear(res);
		if (n != 1)
			return BW_EINVAL;
	}
	snprintf(lim, sizeof(lim), "%d", limit + 1);
	p[2] = lim;
	er = db_execp(db, "camp_list", camp_sql_list, 3, p, &res);
	if (er != BW_OK)
		return er;
	n = PQntuples(res);
	arr = json_object_new_array();
	for (row = 0; row < n && row < limit; row++)
		json_object_array_add(arr, camp_row_json(res, row));
	o = json_object_new_object();
	json_object_object_add(o, "campaigns", arr);
	json_object_object_add(o, "next_cursor",
	    n > limit ? json_object_new_string(PQgetvalue(res, limit - 1, 0))
		      : NULL);
	PQclear(res);
	*out = o;
	return BW_OK;
}

enum bw_err
campaign_settle_tx(struct db *db, const char *org_id, const char *id,
    bool *settled)
{
	const char	   *p[2] = { org_id, id };
	PGresult	   *res = NULL;
	struct json_object *ro = NULL;
	enum credit_outcome oc = CREDIT_OK;
	char		    resv[40];
	enum bw_err	    er;

	*settled = false;
	er = db_execp(db, "camp_inflight", camp_sql_inflight, 2, p, &res);
	if (er != BW_OK)
		goto out;
	if (db_col_i64_or(res, 0, 0, 1) > 0)
		goto out;
	PQclear(res);
	er = db_execp(db, "camp_lock", camp_sql_lock, 2, p, &res);
	if (er != BW_OK)
		goto out;
	if (PQntuples(res) != 1)
		goto out;
	if (strcmp(PQgetvalue(res, 0, 2), "t") == 0) {
		*settled = true; /* settled before */
		goto out;
	}
	snprintf(resv, sizeof(resv), "%s", PQgetvalue(res, 0, 1));
	PQclear(res);
	res = NULL;
	if (resv[0] != '\0') {
		/* What is left returns; expired ones returned it already. */
		er = credit_release(db, org_id, resv, &ro, &oc);
		json_object_put(ro);
		if (er != BW_OK)
			goto out;
	}
	er = db_execp(db, "camp_finish", camp_sql_finish, 2, p, &res);
	if (er != BW_OK)
		goto out;
	*settled = true;
	log_kv(LL_INFO, "campaign finished", "campaign_id", id, "status",
	    PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "?", "release",
	    oc == CREDIT_OK ? "released" : "already_finished", NULL);
out:
	PQclear(res);
	return er;
}

/* Arguments and result of the cancel transaction. */
struct camp_cancel_arg {
	const char	     *org_id, *id;
	enum campaign_outcome oc;
};

static enum bw_err
camp_cancel_fn(struct db *db, void *arg)
{
	struct camp_cancel_arg *a = arg;
	const char	       *p[2] = { a->org_id, a->id };
	PGresult	       *res = NULL;
	const char	       *st;
	bool			settled;
	enum bw_err		er;

	a->oc = CAMP_OK;
	er = db_execp(db, "camp_lock", camp_sql_lock, 2, p, &res);
	if (er != BW_OK)
		goto out;
	if (PQntuples(res) != 1) {
		a->oc = CAMP_NOT_FOUND;
		goto out;
	}
	st = PQgetvalue(res, 0, 0);
	if (strcmp(st, "completed") == 0 || strcmp(st, "canceled") == 0) {
		a->oc = CAMP_WRONG_STATE;
		goto out;
	}
	er = db_execp(db, "camp_cancel", camp_sql_cancel, 2, p, NULL);
	if (er == BW_OK)
		er = db_execp(db, "camp_cancel_rcpt", camp_sql_cancel_rcpt, 2,
		    p, NULL);
	if (er == BW_OK)
		er = db_execp(db, "camp_cancel_batches",
		    camp_sql_cancel_batches, 2, p, NULL);
	if (er == BW_OK)
		er = campaign_settle_tx(db, a->org_id, a->id, &settled);
out:
	PQclear(res);
	return er;
}

enum bw_err
campaign_cancel(struct db *db, const char *org_id, const char *id,
    struct json_object **out, enum campaign_outcome *oc)
{
	struct camp_cancel_arg a;
	enum bw_err	       er;

	*oc = CAMP_NOT_FOUND;
	if (org_id == NULL || id == NULL || !jv_is_uuid(id, strlen(id)) ||
	    !jv_is_uuid(org_id, strlen(org_id)))
		return BW_OK;
	memset(&a, 0, sizeof(a));
	a.org_id = org_id;
	a.id = id;
	er = db_tx(db, false, camp_cancel_fn, &a);
	if (er != BW_OK)
		return er;
	*oc = a.oc;
	if (a.oc != CAMP_OK)
		return BW_OK;
	log_kv(LL_INFO, "campaign canceled", "campaign_id", id, NULL);
	return campaign_get(db, org_id, id, out);
}
