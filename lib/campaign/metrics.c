/* SPDX-License-Identifier: MIT */
/*
 * The campaign series of /metrics: campaigns by status, batches by state
 * and stuck campaigns (read at scrape time), and the cluster-wide
 * counters the sender and reconcile keep in campaign_counts (they run
 * outside bulwark-fcgi's shared metric cells).
 */
#include <stdio.h>
#include <string.h>

#include "campaign/campaign.h"

/* clang-format off */
static const char met_sql_add[] =
    "INSERT INTO campaign_counts (name, label, n) VALUES ($1, $2, "
    "$3::bigint) ON CONFLICT (name, label) DO UPDATE SET "
    "n = campaign_counts.n + EXCLUDED.n";
static const char met_sql_status[] =
    "SELECT s, (SELECT count(*) FROM campaigns WHERE status = s) FROM "
    "unnest(ARRAY['draft','scheduled','sending','completed','canceled']) s";
static const char met_sql_batches[] =
    "SELECT s, (SELECT count(*) FROM campaign_batches WHERE state = s) "
    "FROM unnest(ARRAY['queued','sending','done','canceled']) s";
static const char met_sql_stuck[] =
    "SELECT count(*) FROM campaigns WHERE status = 'sending' AND "
    "coalesce(progress_at, started_at, created_at) < "
    "now() - make_interval(secs => $1::int)";
static const char met_sql_counts[] =
    "SELECT name, label, n FROM campaign_counts ORDER BY name, label";
/* clang-format on */

enum bw_err
campaign_count_add(struct db *db, const char *name, const char *label,
    int64_t n)
{
	char	    v[24];
	const char *p[3] = { name, label, v };

	snprintf(v, sizeof(v), "%lld", (long long)n);
	return db_execp(db, "met_add", met_sql_add, 3, p, NULL);
}

/* Renders rows (label, value) as family{lab="label"} value. */
static void
met_rows(struct buf *out, PGresult *res, const char *family, const char *lab)
{
	int row;

	for (row = 0; row < PQntuples(res); row++)
		(void)buf_printf(out, "%s{%s=\"%s\"} %s\n", family, lab,
		    PQgetvalue(res, row, 0), PQgetvalue(res, row, 1));
}

enum bw_err
campaign_prom(struct db *db, int stuck_after_s, struct buf *out)
{
	static const char *const outcomes[] = { "accepted", "duplicate",
		"refused", "retry", "failed" };
	char			 s[16];
	const char		*p[1] = { s };
	PGresult		*res = NULL;
	enum bw_err		 er;
	int64_t			 found = 0, sends[5] = { 0, 0, 0, 0, 0 };
	size_t			 i;
	int			 row;

	er = db_execp(db, "met_status", met_sql_status, 0, NULL, &res);
	if (er != BW_OK)
		return er;
	(void)buf_addstr(out,
	    "# HELP bulwark_campaigns SMS campaigns by status.\n"
	    "# TYPE bulwark_campaigns gauge\n");
	met_rows(out, res, "bulwark_campaigns", "status");
	PQclear(res);
	er = db_execp(db, "met_batches", met_sql_batches, 0, NULL, &res);
	if (er != BW_OK)
		return er;
	(void)buf_addstr(out,
	    "# HELP bulwark_campaign_batches Campaign batches by state "
	    "(queued and sending: the batch queue depth).\n"
	    "# TYPE bulwark_campaign_batches gauge\n");
	met_rows(out, res, "bulwark_campaign_batches", "state");
	PQclear(res);
	snprintf(s, sizeof(s), "%d", stuck_after_s);
	er = db_execp(db, "met_stuck", met_sql_stuck, 1, p, &res);
	if (er != BW_OK)
		return er;
	(void)buf_printf(out,
	    "# HELP bulwark_campaigns_stuck Campaigns sending with no "
	    "progress for longer than campaign_stuck_after_s.\n"
	    "# TYPE bulwark_campaigns_stuck gauge\n"
	    "bulwark_campaigns_stuck %s\n",
	    PQgetvalue(res, 0, 0));
	PQclear(res);
	er = db_execp(db, "met_counts", met_sql_counts, 0, NULL, &res);
	if (er != BW_OK)
		return er;
	for (row = 0; row < PQntuples(res); row++) {
		const char *name = PQgetvalue(res, row, 0);

		if (strcmp(name, "campaigns_stuck_found") == 0)
			found += db_col_i64_or(res, row, 2, 0);
		if (strcmp(name, "sms_sends") != 0)
			continue;
		for (i = 0; i < 5; i++)
			if (strcmp(PQgetvalue(res, row, 1), outcomes[i]) == 0)
				sends[i] = db_col_i64_or(res, row, 2, 0);
	}
	(void)buf_printf(out,
	    "# HELP bulwark_campaigns_stuck_found_total Stuck campaigns "
	    "bulwark-reconcile found (cluster-wide).\n"
	    "# TYPE bulwark_campaigns_stuck_found_total counter\n"
	    "bulwark_campaigns_stuck_found_total %lld\n",
	    (long long)found);
	(void)buf_addstr(out,
	    "# HELP bulwark_sms_sends_total SMS send attempts by outcome "
	    "(cluster-wide).\n# TYPE bulwark_sms_sends_total counter\n");
	for (i = 0; i < 5; i++)
		(void)buf_printf(out,
		    "bulwark_sms_sends_total{outcome=\"%s\"} %lld\n",
		    outcomes[i], (long long)sends[i]);
	(void)buf_addstr(out,
	    "# HELP bulwark_campaign_reconcile_total Reconcile decisions on "
	    "stuck campaigns (cluster-wide).\n"
	    "# TYPE bulwark_campaign_reconcile_total counter\n");
	for (row = 0; row < PQntuples(res); row++)
		if (strcmp(PQgetvalue(res, row, 0), "campaign_reconcile") == 0)
			(void)buf_printf(out,
			    "bulwark_campaign_reconcile_total{decision=\"%s\"}"
			    " %s\n",
			    PQgetvalue(res, row, 1), PQgetvalue(res, row, 2));
	PQclear(res);
	return BW_OK;
}
