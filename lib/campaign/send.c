/* SPDX-License-Identifier: MIT */
/*
 * POST /campaigns/{id}/send: the reservation of one credit per pending
 * recipient (one reservation keyed campaign:{id}), the batch rows and one
 * job per batch keyed campaign:{id}:batch:{n}, in one transaction under
 * the campaign's row lock, so that a second send (concurrent or later)
 * finds the campaign past draft and changes nothing.
 */
#include <stdio.h>
#include <string.h>

#include "campaign/campaign.h"
#include "core/jv.h"
#include "core/log.h"
#include "money/credit.h"
#include "platform/jobq.h"

/* clang-format off */
static const char send_sql_lock[] =
    "SELECT status, batch_size, recipients, user_id FROM campaigns "
    "WHERE org_id = $1::uuid AND id = $2::uuid FOR UPDATE";
static const char send_sql_optouts[] =
    "UPDATE campaign_recipients r SET state = 'opted_out', "
    "state_changes = state_changes + 1, updated_at = now() "
    "WHERE r.org_id = $1::uuid AND r.campaign_id = $2::uuid AND "
    "r.state = 'pending' AND EXISTS (SELECT 1 FROM sms_opt_outs o WHERE "
    "o.org_id = r.org_id AND o.phone = r.phone)";
static const char send_sql_pending[] =
    "SELECT count(*) FROM campaign_recipients WHERE org_id = $1::uuid AND "
    "campaign_id = $2::uuid AND state = 'pending'";
static const char send_sql_batches[] =
    "INSERT INTO campaign_batches (org_id, campaign_id, n) "
    "SELECT $1::uuid, $2::uuid, g FROM generate_series(0, $3::int - 1) g "
    "ON CONFLICT DO NOTHING";
static const char send_sql_start[] =
    "UPDATE campaigns SET status = 'sending', started_at = now(), "
    "progress_at = now(), batches = $3::int, reservation_id = $4::uuid, "
    "credits_reserved = $5::bigint, start_error = NULL "
    "WHERE org_id = $1::uuid AND id = $2::uuid";
static const char send_sql_empty[] =
    "UPDATE campaigns SET status = 'completed', started_at = now(), "
    "progress_at = now(), finished_at = now() WHERE org_id = $1::uuid AND "
    "id = $2::uuid";
static const char send_sql_start_error[] =
    "UPDATE campaigns SET start_error = $3 WHERE org_id = $1::uuid AND "
    "id = $2::uuid AND status = 'scheduled'";
/* clang-format on */

enum bw_err
campaign_start_enqueue(struct db *db, const char *org_id, const char *id,
    int delay_s, bool *created)
{
	struct jobq_spec s;
	char		 key[128], payload[160], jid[37];

	snprintf(key, sizeof(key), "campaign:%s:start", id);
	snprintf(payload, sizeof(payload),
	    "{\"org_id\":\"%s\",\"campaign_id\":\"%s\",\"start\":true}", org_id,
	    id);
	memset(&s, 0, sizeof(s));
	s.queue = CAMPAIGN_QUEUE;
	s.job_key = key;
	s.org_id = org_id;
	s.payload = payload;
	s.delay_s = delay_s;
	return jobq_enqueue(db, &s, jid, created);
}

enum bw_err
campaign_batch_enqueue(struct db *db, const char *org_id, const char *id, int n,
    bool *created)
{
	struct jobq_spec s;
	char		 key[128], payload[160], jid[37];

	snprintf(key, sizeof(key), "campaign:%s:batch:%d", id, n);
	snprintf(payload, sizeof(payload),
	    "{\"org_id\":\"%s\",\"campaign_id\":\"%s\",\"batch\":%d}", org_id,
	    id, n);
	memset(&s, 0, sizeof(s));
	s.queue = CAMPAIGN_QUEUE;
	s.job_key = key;
	s.org_id = org_id;
	s.payload = payload;
	return jobq_enqueue(db, &s, jid, created);
}

/* Arguments and results of the send transaction. */
struct send_arg {
	const char	     *org_id, *id;
	int		      ttl_s;
	bool		      scheduled_only; /* the start job: 'scheduled' */
	bool		      started;
	int		      batches;
	enum campaign_outcome oc;
};

static enum bw_err
send_fn(struct db *db, void *arg)
{
	struct send_arg	   *a = arg;
	const char	   *p[5] = { a->org_id, a->id, NULL, NULL, NULL };
	char		    user[CREDIT_USER_ID_MAX * 4 + 1], rkey[80];
	char		    nb[16], amt[24], resv[40];
	struct json_object *ro = NULL, *v;
	PGresult	   *res = NULL;
	enum credit_outcome coc = CREDIT_OK;
	int64_t		    bs, total, pending;
	bool		    created = false, made;
	enum bw_err	    er;
	int		    n;

	a->started = false;
	a->oc = CAMP_OK;
	er = db_execp(db, "send_lock", send_sql_lock, 2, p, &res);
	if (er != BW_OK)
		goto out;
	if (PQntuples(res) != 1) {
		a->oc = CAMP_NOT_FOUND;
		goto out;
	}
	if (strcmp(PQgetvalue(res, 0, 0), "scheduled") != 0 &&
	    (a->scheduled_only || strcmp(PQgetvalue(res, 0, 0), "draft") != 0))
		goto out; /* sent (or canceled) before: nothing new */
	bs = db_col_i64_or(res, 0, 1, 100);
	total = db_col_i64_or(res, 0, 2, 0);
	snprintf(user, sizeof(user), "%s", PQgetvalue(res, 0, 3));
	PQclear(res);
	res = NULL;
	er = db_execp(db, "send_optouts", send_sql_optouts, 2, p, NULL);
	if (er != BW_OK)
		goto out;
	er = db_execp(db, "send_pending", send_sql_pending, 2, p, &res);
	if (er != BW_OK)
		goto out;
	pending = db_col_i64_or(res, 0, 0, 0);
	PQclear(res);
	res = NULL;
	a->started = true;
	if (pending == 0) {
		er = db_execp(db, "send_empty", send_sql_empty, 2, p, NULL);
		goto out;
	}
	snprintf(rkey, sizeof(rkey), "campaign:%s", a->id);
	er = credit_reserve(db, a->org_id, user, pending, rkey, a->ttl_s, &ro,
	    &created, &coc);
	if (er != BW_OK)
		goto out;
	if (coc != CREDIT_OK) {
		a->oc = CAMP_INSUFFICIENT;
		a->started = false;
		er = BW_ESTATE; /* roll back the opt-out marks too */
		goto out;
	}
	if (!json_object_object_get_ex(ro, "id", &v)) {
		er = BW_EDB;
		goto out;
	}
	snprintf(resv, sizeof(resv), "%s", json_object_get_string(v));
	a->batches = (int)((total + bs - 1) / bs);
	snprintf(nb, sizeof(nb), "%d", a->batches);
	snprintf(amt, sizeof(amt), "%lld", (long long)pending);
	p[2] = nb;
	er = db_execp(db, "send_batches", send_sql_batches, 3, p, NULL);
	for (n = 0; er == BW_OK && n < a->batches; n++)
		er = campaign_batch_enqueue(db, a->org_id, a->id, n, &made);
	if (er != BW_OK)
		goto out;
	p[3] = resv;
	p[4] = amt;
	er = db_execp(db, "send_start", send_sql_start, 5, p, NULL);
out:
	json_object_put(ro);
	PQclear(res);
	return er;
}

/*
 * The send transaction for campaign_send() (scheduled_only false) and
 * campaign_start_due() (true): *oc and *started from it; a refused
 * reservation is BW_OK with CAMP_INSUFFICIENT (nothing changed), and for
 * the start job its reason is kept in start_error.
 */
static enum bw_err
send_run(struct db *db, const char *org_id, const char *id, int ttl_s,
    bool scheduled_only, bool *started, enum campaign_outcome *oc)
{
	struct send_arg a;
	const char     *p[3] = { org_id, id, "insufficient_credits" };
	char		b[16];
	enum bw_err	er;

	*oc = CAMP_NOT_FOUND;
	*started = false;
	if (org_id == NULL || id == NULL || !jv_is_uuid(id, strlen(id)) ||
	    !jv_is_uuid(org_id, strlen(org_id)))
		return BW_OK;
	memset(&a, 0, sizeof(a));
	a.org_id = org_id;
	a.id = id;
	a.ttl_s = ttl_s;
	a.scheduled_only = scheduled_only;
	er = db_tx(db, false, send_fn, &a);
	if (er == BW_ESTATE && a.oc == CAMP_INSUFFICIENT) {
		er = BW_OK;
		if (scheduled_only) {
			log_kv(LL_WARN,
			    "scheduled campaign cannot start: credits",
			    "campaign_id", id, NULL);
			er = db_execp(db, "send_start_error",
			    send_sql_start_error, 3, p, NULL);
		}
	}
	if (er != BW_OK)
		return er;
	*oc = a.oc;
	*started = a.started;
	if (a.oc == CAMP_OK && a.started) {
		snprintf(b, sizeof(b), "%d", a.batches);
		log_kv(LL_INFO,
		    scheduled_only ? "scheduled campaign started"
				   : "campaign send started",
		    "campaign_id", id, "batches", b, NULL);
	}
	return BW_OK;
}

enum bw_err
campaign_send(struct db *db, const char *org_id, const char *id,
    int reservation_ttl_s, struct json_object **out, bool *started,
    enum campaign_outcome *oc)
{
	enum bw_err er;

	er = send_run(db, org_id, id, reservation_ttl_s, false, started, oc);
	if (er != BW_OK || *oc != CAMP_OK)
		return er;
	return campaign_get(db, org_id, id, out);
}

enum bw_err
campaign_start_due(struct db *db, const char *org_id, const char *id,
    int reservation_ttl_s, bool *started, enum campaign_outcome *oc)
{
	return send_run(db, org_id, id, reservation_ttl_s, true, started, oc);
}
