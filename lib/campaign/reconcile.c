/* SPDX-License-Identifier: MIT */
/*
 * Stuck campaigns (bulwark-reconcile's campaign pass): a campaign sending
 * with no finished batch for stuck_after_s is recomputed from its
 * recipients under its row lock (two runs at once serialize there and
 * the second finds the work done): each unfinished batch without pending
 * recipients is finished (its capture, once by key); when none is left
 * the campaign settles (completed, the rest of its reservation
 * released); else each unfinished batch's job is enqueued by its
 * deterministic key, which makes a new job only where it is missing.
 * Every decision is a log line and a counter (campaign_counts). Also one
 * org's stuck campaigns for the owner's overview (campaign_stuck_org).
 */
#include <stdio.h>
#include <string.h>

#include "campaign/campaign.h"
#include "core/jv.h"
#include "core/log.h"
#include "platform/jobq.h"

#define RECONCILE_MAX_CAMPAIGNS 100 /* per pass */

/* clang-format off */
static const char rec_sql_stuck[] =
    "SELECT org_id::text, id::text FROM campaigns WHERE status = 'sending' "
    "AND coalesce(progress_at, started_at, created_at) < "
    "now() - make_interval(secs => $1::int) "
    "ORDER BY progress_at LIMIT $2::int";
static const char rec_sql_lock[] =
    "SELECT status, coalesce(reservation_id::text, ''), batch_size, "
    "coalesce(progress_at, started_at, created_at) < "
    "now() - make_interval(secs => $3::int) FROM campaigns "
    "WHERE org_id = $1::uuid AND id = $2::uuid FOR UPDATE";
static const char rec_sql_batches[] =
    "SELECT b.n, (SELECT count(*) FROM campaign_recipients r WHERE "
    " r.org_id = b.org_id AND r.campaign_id = b.campaign_id AND "
    " r.seq >= b.n * $3::int AND r.seq < (b.n + 1) * $3::int AND "
    " r.state = 'pending'), "
    " coalesce((SELECT j.state FROM jobs j WHERE j.queue = 'sms' AND "
    "  j.job_key = 'campaign:' || b.campaign_id || ':batch:' || b.n), '') "
    "FROM campaign_batches b WHERE b.org_id = $1::uuid AND "
    "b.campaign_id = $2::uuid AND b.state IN ('queued', 'sending') "
    "ORDER BY b.n";
static const char rec_sql_touch[] =
    "UPDATE campaigns SET progress_at = now() WHERE org_id = $1::uuid AND "
    "id = $2::uuid";
/* clang-format on */

/* One campaign's decisions (db_tx() may run it again: counts reset). */
struct rec_arg {
	const char *org_id, *id;
	int	    stuck_after_s;
	bool	    still_stuck;
	int	    finished, requeued, dead, queued;
	bool	    settled;
};

static enum bw_err
rec_one_fn(struct db *db, void *arg)
{
	struct rec_arg *a = arg;
	char		stuck[16], bs_s[16], resv[40];
	const char     *p[3] = { a->org_id, a->id, stuck };
	PGresult       *res = NULL;
	enum bw_err	er;
	int		row, bs, n;
	bool		created;

	a->still_stuck = false;
	a->finished = a->requeued = a->dead = a->queued = 0;
	a->settled = false;
	snprintf(stuck, sizeof(stuck), "%d", a->stuck_after_s);
	er = db_execp(db, "rec_lock", rec_sql_lock, 3, p, &res);
	if (er != BW_OK)
		goto out;
	/* Another run (or the senders) moved it meanwhile: nothing to do. */
	if (PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, 0), "sending") ||
	    strcmp(PQgetvalue(res, 0, 3), "t") != 0)
		goto out;
	a->still_stuck = true;
	snprintf(resv, sizeof(resv), "%s", PQgetvalue(res, 0, 1));
	bs = (int)db_col_i64_or(res, 0, 2, 100);
	PQclear(res);
	res = NULL;
	snprintf(bs_s, sizeof(bs_s), "%d", bs);
	p[2] = bs_s;
	er = db_execp(db, "rec_batches", rec_sql_batches, 3, p, &res);
	if (er != BW_OK)
		goto out;
	for (row = 0; row < PQntuples(res) && er == BW_OK; row++) {
		n = (int)db_col_i64_or(res, row, 0, -1);
		if (db_col_i64_or(res, row, 1, 1) == 0) {
			er = campaign_batch_finish_tx(db, a->org_id, a->id, n,
			    resv, bs);
			a->finished++;
			continue;
		}
		if (strcmp(PQgetvalue(res, row, 2), "dead") == 0) {
			a->dead++;
			continue;
		}
		er = campaign_batch_enqueue(db, a->org_id, a->id, n, &created);
		if (created)
			a->requeued++;
		else
			a->queued++;
	}
	if (er != BW_OK)
		goto out;
	if (a->requeued + a->queued + a->dead == 0)
		er = campaign_settle_tx(db, a->org_id, a->id, &a->settled);
	if (er == BW_OK && !a->settled)
		/* Progress made by this decision: the clock starts again. */
		er = db_execp(db, "rec_touch", rec_sql_touch, 2, p, NULL);
out:
	PQclear(res);
	return er;
}

enum bw_err
campaign_reconcile(struct db *db, int stuck_after_s,
    struct campaign_reconcile_result *out)
{
	char	       stuck[16], lim[16], f[16], q[16], r[16], d[16];
	const char    *p[2] = { stuck, lim };
	PGresult      *res = NULL;
	struct rec_arg a;
	enum bw_err    er;
	int	       row;

	memset(out, 0, sizeof(*out));
	snprintf(stuck, sizeof(stuck), "%d", stuck_after_s);
	snprintf(lim, sizeof(lim), "%d", RECONCILE_MAX_CAMPAIGNS);
	er = db_execp(db, "rec_stuck", rec_sql_stuck, 2, p, &res);
	if (er != BW_OK)
		return er;
	for (row = 0; row < PQntuples(res); row++) {
		memset(&a, 0, sizeof(a));
		a.org_id = PQgetvalue(res, row, 0);
		a.id = PQgetvalue(res, row, 1);
		a.stuck_after_s = stuck_after_s;
		er = db_tx(db, false, rec_one_fn, &a);
		if (er != BW_OK)
			break;
		if (!a.still_stuck)
			continue;
		out->found++;
		out->requeued += a.requeued;
		out->dead += a.dead;
		if (a.settled)
			out->completed++;
		snprintf(f, sizeof(f), "%d", a.finished);
		snprintf(q, sizeof(q), "%d", a.queued);
		snprintf(r, sizeof(r), "%d", a.requeued);
		snprintf(d, sizeof(d), "%d", a.dead);
		log_kv(a.dead > 0 ? LL_WARN : LL_INFO,
		    "reconcile stuck campaign", "org_id", a.org_id,
		    "campaign_id", a.id, "decision",
		    a.settled	     ? "completed"
			: a.requeued ? "requeued"
			: a.dead     ? "dead_batches"
				     : "waiting",
		    "batches_finished", f, "jobs_requeued", r, "jobs_queued", q,
		    "jobs_dead", d, NULL);
		(void)campaign_count_add(db, "campaigns_stuck_found", "", 1);
		(void)campaign_count_add(db, "campaign_reconcile",
		    a.settled	     ? "completed"
			: a.requeued ? "requeued"
			: a.dead     ? "dead_batches"
				     : "waiting",
		    1);
	}
	PQclear(res);
	return er;
}

/* clang-format off */
static const char rec_sql_org[] =
    "SELECT id::text, name, " DB_TS_UTC("coalesce(progress_at, started_at, created_at)") ", "
    "count(*) OVER () FROM campaigns WHERE org_id = $1::uuid AND status = 'sending' "
    "AND coalesce(progress_at, started_at, created_at) < now() - make_interval(secs => $2::int) "
    "ORDER BY coalesce(progress_at, started_at, created_at) LIMIT $3::int";
/* clang-format on */

enum bw_err
campaign_stuck_org(struct db *db, const char *org_id, int stuck_after_s,
    int limit, struct json_object **out)
{
	char		    s[16], l[16];
	const char	   *p[3] = { org_id, s, l };
	struct json_object *o, *arr, *c;
	PGresult	   *res = NULL;
	enum bw_err	    er;
	int		    row;

	if (org_id == NULL || !jv_is_uuid(org_id, strlen(org_id)) ||
	    limit < 1 || stuck_after_s < 0)
		return BW_EINVAL;
	snprintf(s, sizeof(s), "%d", stuck_after_s);
	snprintf(l, sizeof(l), "%d", limit);
	er = db_execp(db, "rec_stuck_org", rec_sql_org, 3, p, &res);
	if (er != BW_OK)
		return er;
	o = json_object_new_object();
	arr = json_object_new_array();
	for (row = 0; row < PQntuples(res); row++) {
		c = json_object_new_object();
		json_object_object_add(c, "id",
		    json_object_new_string(PQgetvalue(res, row, 0)));
		json_object_object_add(c, "name",
		    json_object_new_string(PQgetvalue(res, row, 1)));
		json_object_object_add(c, "since",
		    json_object_new_string(PQgetvalue(res, row, 2)));
		json_object_array_add(arr, c);
	}
	json_object_object_add(o, "count",
	    json_object_new_int64(
		PQntuples(res) > 0 ? db_col_i64_or(res, 0, 3, 0) : 0));
	json_object_object_add(o, "stuck_after_s",
	    json_object_new_int(stuck_after_s));
	json_object_object_add(o, "campaigns", arr);
	PQclear(res);
	*out = o;
	return BW_OK;
}
