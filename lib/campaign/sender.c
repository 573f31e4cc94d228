/* SPDX-License-Identifier: MIT */
/*
 * One batch job of bulwark-sms: send each pending recipient of batch n
 * through the provider's API (lib/core/http.c) with its row id as the
 * client_reference, record the message id, then capture the batch's
 * accepted messages from the campaign's reservation, once per batch key.
 *
 * Why it never double-sends or double-debits: a recipient is sent only
 * while it has no message id; the provider drops a second POST of one
 * client_reference (a crash between its acceptance and our record costs
 * one more POST, not one more message); the record and the capture are
 * idempotent (WHERE provider_message_id IS NULL; the capture key
 * campaign:{id}:batch:{n}). Retries of 408/429/5xx/timeouts follow
 * lib/core/backoff.h, as the LLM client's do.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "campaign/campaign.h"
#include "core/backoff.h"
#include "core/clock.h"
#include "core/jv.h"
#include "core/limits.h"
#include "core/log.h"
#include "core/pgarray.h"
#include "core/rds.h"
#include "money/credit.h"

#define SENDER_RETRY_AFTER_MAX_S 30  /* longest Retry-After honoured */
#define SENDER_WINDOW_MAX	 100 /* sms_window's maximum */

/* clang-format off */
static const char snd_sql_start[] =
    "SELECT c.status, c.message, c.batch_size, "
    "coalesce(c.reservation_id::text, ''), b.state FROM campaigns c "
    "JOIN campaign_batches b ON b.org_id = c.org_id AND "
    "b.campaign_id = c.id AND b.n = $3::int "
    "WHERE c.org_id = $1::uuid AND c.id = $2::uuid FOR UPDATE";
static const char snd_sql_mark[] =
    "UPDATE campaign_batches SET state = 'sending', "
    "started_at = coalesce(started_at, now()) WHERE org_id = $1::uuid AND "
    "campaign_id = $2::uuid AND n = $3::int AND state = 'queued'";
static const char snd_sql_list[] =
    "SELECT seq, id::text, phone FROM campaign_recipients "
    "WHERE org_id = $1::uuid AND campaign_id = $2::uuid AND "
    "seq >= $3::int AND seq < $4::int AND state = 'pending' AND "
    "provider_message_id IS NULL ORDER BY seq";
/* The outcomes of the window just POSTed (each recorded under its message
 * id's lock, or refused) and the check of the next window right before its
 * POSTs, in one round trip (sql/0036_sms_window.sql): the campaign still
 * sending, the numbers not opted out (marked when they are), the
 * recipients still pending. */
static const char snd_sql_window[] =
    "SELECT campaign_status, go_seqs FROM bw_sms_window($1::uuid, "
    "$2::uuid, $3::int[], $4::text[], $5::text[], $6::int, $7::int[], "
    "$8::int[], $9::text[])";
static const char snd_sql_block[] =
    "SELECT state FROM campaign_batches WHERE org_id = $1::uuid AND "
    "campaign_id = $2::uuid AND n = $3::int FOR UPDATE";
static const char snd_sql_bcount[] =
    "SELECT count(*) FILTER (WHERE provider_message_id IS NOT NULL), "
    "count(*) FILTER (WHERE state = 'failed' AND "
    " provider_message_id IS NULL), "
    "count(*) FILTER (WHERE state = 'pending') "
    "FROM campaign_recipients WHERE org_id = $1::uuid AND "
    "campaign_id = $2::uuid AND seq >= $3::int AND seq < $4::int";
static const char snd_sql_bdone[] =
    "UPDATE campaign_batches SET state = 'done', accepted = $4::int, "
    "refused = $5::int, finished_at = now() WHERE org_id = $1::uuid AND "
    "campaign_id = $2::uuid AND n = $3::int";
static const char snd_sql_credits[] =
    "UPDATE campaigns SET credits_debited = credits_debited + $3::bigint, "
    "credits_released = credits_released + $4::bigint, "
    "progress_at = now() WHERE org_id = $1::uuid AND id = $2::uuid";
static const char snd_sql_progress[] =
    "UPDATE campaigns SET progress_at = now() WHERE org_id = $1::uuid "
    "AND id = $2::uuid";
static const char snd_sql_clock[] =
    "SELECT status, coalesce(reservation_id::text, ''), batch_size "
    "FROM campaigns WHERE org_id = $1::uuid AND id = $2::uuid FOR UPDATE";
/* clang-format on */

enum snd_outcome {
	SO_ACCEPTED,
	SO_DUPLICATE, /* the provider had it: same message id */
	SO_REFUSED,   /* permanent: the recipient failed */
	SO_RETRY,     /* an attempt retried */
	SO_FAILED,    /* retries spent: the job is retried later */
	SO__MAX
};
static const char *const snd_outcome_names[SO__MAX] = { "accepted", "duplicate",
	"refused", "retry", "failed" };

/* One batch's identity and what it counted. */
struct snd_batch {
	char	org_id[37], id[37];
	int	n;
	char   *message;
	char	resv[40];
	int	batch_size;
	bool	sending; /* campaign sending, batch not finished */
	bool	finished;
	int64_t count[SO__MAX];
};

/* Reads the payload {"org_id","campaign_id","batch"}. 0 or -1. */
static int
snd_payload(const char *payload, struct snd_batch *b)
{
	struct json_object *o = NULL, *v;
	int		    ok = 0;

	if (payload == NULL ||
	    jv_parse(payload, strlen(payload), 4, &o) != BW_OK)
		return -1;
	if (json_object_object_get_ex(o, "org_id", &v) &&
	    jv_is_uuid(json_object_get_string(v),
		(size_t)json_object_get_string_len(v))) {
		snprintf(b->org_id, sizeof(b->org_id), "%s",
		    json_object_get_string(v));
		ok++;
	}
	if (json_object_object_get_ex(o, "campaign_id", &v) &&
	    jv_is_uuid(json_object_get_string(v),
		(size_t)json_object_get_string_len(v))) {
		snprintf(b->id, sizeof(b->id), "%s", json_object_get_string(v));
		ok++;
	}
	if (json_object_object_get_ex(o, "batch", &v) &&
	    json_object_is_type(v, json_type_int) &&
	    json_object_get_int64(v) >= 0 &&
	    json_object_get_int64(v) < CAMPAIGN_MAX_RECIPIENTS) {
		b->n = (int)json_object_get_int64(v);
		ok++;
	}
	json_object_put(o);
	return ok == 3 ? 0 : -1;
}

/* The start transaction: reads the campaign, marks the batch sending. */
static enum bw_err
snd_start_fn(struct db *db, void *arg)
{
	struct snd_batch *b = arg;
	char		  n[16];
	const char	 *p[3] = { b->org_id, b->id, n };
	PGresult	 *res = NULL;
	enum bw_err	  er;

	snprintf(n, sizeof(n), "%d", b->n);
	er = db_execp(db, "snd_start", snd_sql_start, 3, p, &res);
	if (er != BW_OK)
		goto out;
	if (PQntuples(res) != 1) {
		er = BW_ENOTFOUND;
		goto out;
	}
	free(b->message);
	b->message = strdup(PQgetvalue(res, 0, 1));
	if (b->message == NULL) {
		er = BW_ENOMEM;
		goto out;
	}
	b->batch_size = (int)db_col_i64_or(res, 0, 2, 100);
	snprintf(b->resv, sizeof(b->resv), "%s", PQgetvalue(res, 0, 3));
	b->finished = strcmp(PQgetvalue(res, 0, 4), "done") == 0 ||
	    strcmp(PQgetvalue(res, 0, 4), "canceled") == 0;
	b->sending =
	    strcmp(PQgetvalue(res, 0, 0), "sending") == 0 && !b->finished;
	if (b->sending)
		er = db_execp(db, "snd_mark", snd_sql_mark, 3, p, NULL);
out:
	PQclear(res);
	return er;
}

/* Sleeps ms (in slices), returning early once stopping() says so. */
static void
snd_sleep(struct campaign_sender *s, int64_t ms)
{
	struct timespec ts;
	int64_t		end = clock_mono_ms() + ms, left;

	while ((left = end - clock_mono_ms()) > 0) {
		if (s->stopping != NULL && s->stopping())
			return;
		if (left > 200)
			left = 200;
		ts.tv_sec = (time_t)(left / 1000);
		ts.tv_nsec = (long)(left % 1000) * 1000000L;
		nanosleep(&ts, NULL);
	}
}

/* The result of one message's POSTs. */
struct snd_result {
	enum snd_outcome oc;
	char		 message_id[256];
	char		 error[64]; /* the provider's code of a refusal */
	int		 status;
};

/* Reads a 2xx body: message_id (and duplicate). 0, or -1 when unusable. */
static int
snd_parse_ok(const struct buf *body, struct snd_result *r)
{
	struct json_object *o = NULL, *v;
	int		    rc = -1;

	if (body->len == 0 ||
	    jv_parse(buf_cstr(body), body->len, 8, &o) != BW_OK)
		return -1;
	if (json_object_object_get_ex(o, "message_id", &v) &&
	    json_object_is_type(v, json_type_string) &&
	    json_object_get_string_len(v) > 0 &&
	    json_object_get_string_len(v) < (int)sizeof(r->message_id)) {
		snprintf(r->message_id, sizeof(r->message_id), "%s",
		    json_object_get_string(v));
		rc = 0;
		if (json_object_object_get_ex(o, "duplicate", &v) &&
		    json_object_get_boolean(v))
			r->oc = SO_DUPLICATE;
	}
	json_object_put(o);
	return rc;
}

/* The error code of a refusal ({"error":{"code"}}), else "http_<status>". */
static void
snd_parse_err(const struct buf *body, struct snd_result *r)
{
	struct json_object *o = NULL, *e, *v;

	snprintf(r->error, sizeof(r->error), "http_%d", r->status);
	if (body->len == 0 ||
	    jv_parse(buf_cstr(body), body->len, 8, &o) != BW_OK)
		return;
	if (json_object_object_get_ex(o, "error", &e) &&
	    json_object_object_get_ex(e, "code", &v) &&
	    json_object_is_type(v, json_type_string))
		snprintf(r->error, sizeof(r->error), "%.60s",
		    json_object_get_string(v));
	json_object_put(o);
}

/* 1 when the provider refused the message itself, for good. */
static int
snd_permanent(int status)
{
	return status == 400 || status == 409 || status == 413 || status == 422;
}

/*
 * POSTs one message, with retries. r->oc: accepted/duplicate with the
 * message id, refused, or failed (retries spent, or a status that is not
 * the message's fault: 401/403/404).
 */
static void
snd_post(struct campaign_sender *s, struct snd_batch *b, const char *ref,
    const char *phone, struct snd_result *r)
{
	static const char *const want[] = { "Retry-After" };
	struct json_object	*body = json_object_new_object();
	struct http_req		 rq;
	struct http_resp	 rs;
	char			 url[1024], auth[600], org[80], cb[1200];
	const char		*hdrs[4];
	const char		*js;
	int			 attempt, ra;
	int64_t			 wait;
	enum bw_err		 er;

	memset(r, 0, sizeof(*r));
	json_object_object_add(body, "to", json_object_new_string(phone));
	json_object_object_add(body, "text",
	    json_object_new_string(b->message));
	json_object_object_add(body, "client_reference",
	    json_object_new_string(ref));
	if (s->callback_base != NULL && s->callback_base[0] != '\0') {
		snprintf(cb, sizeof(cb), "%s/api/v1/webhooks/sms/%s",
		    s->callback_base, b->org_id);
		json_object_object_add(body, "callback_url",
		    json_object_new_string(cb));
	}
	js = json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN);
	snprintf(url, sizeof(url), "%s/v1/messages", s->base_url);
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", s->api_key);
	snprintf(org, sizeof(org), "X-Bulwark-Org: %s", b->org_id);
	hdrs[0] = auth;
	hdrs[1] = "Content-Type: application/json";
	hdrs[2] = org;
	memset(&rq, 0, sizeof(rq));
	rq.method = "POST";
	rq.url = url;
	rq.headers = hdrs;
	rq.nheaders = 3;
	rq.body = js;
	rq.body_len = strlen(js);
	rq.connect_timeout_ms = 2000;
	rq.timeout_ms = s->attempt_timeout_ms;
	rq.max_body = 64 * 1024;
	rq.want = want;
	rq.nwant = 1;
	http_resp_init(&rs);
	for (attempt = 0;; attempt++) {
		er = http_do(s->http, &rq, &rs);
		r->status = rs.status;
		if (er == BW_OK && (rs.status == 200 || rs.status == 202)) {
			r->oc = SO_ACCEPTED;
			if (snd_parse_ok(&rs.body, r) == 0)
				break;
			r->oc = SO_FAILED; /* 2xx we cannot read: retry */
		} else if (er == BW_OK && snd_permanent(rs.status)) {
			r->oc = SO_REFUSED;
			snd_parse_err(&rs.body, r);
			break;
		} else if (er == BW_OK &&
		    !backoff_status_retryable(rs.status)) {
			r->oc = SO_FAILED; /* 401, 403, 404: not this message */
			snd_parse_err(&rs.body, r);
			break;
		}
		if (attempt >= s->max_retries ||
		    (s->stopping != NULL && s->stopping())) {
			r->oc = SO_FAILED;
			if (r->error[0] == '\0')
				snprintf(r->error, sizeof(r->error), "%s",
				    er == BW_OK ? "retries_spent"
						: http_xerr_name(rs.xerr));
			break;
		}
		b->count[SO_RETRY]++;
		ra = rs.has[0] ? http_retry_after_s(rs.hdr[0]) : -1;
		wait = ra >= 0 && ra <= SENDER_RETRY_AFTER_MAX_S
		    ? (int64_t)ra * 1000
		    : backoff_ms(attempt + 1, s->backoff_base_ms,
			  backoff_jitter_ms(BACKOFF_JITTER_MS));
		snd_sleep(s, wait);
	}
	http_resp_free(&rs);
	json_object_put(body);
}

enum bw_err
campaign_batch_finish_tx(struct db *db, const char *org_id, const char *id,
    int n, const char *reservation_id, int batch_size)
{
	char		    ns[16], lo[24], hi[24], acc[24], ref[24];
	char		    key[128];
	const char	   *p[5] = { org_id, id, ns, NULL, NULL };
	PGresult	   *res = NULL;
	struct credit_part  pt;
	enum credit_outcome oc = CREDIT_OK;
	int64_t		    accepted, refused, pending;
	bool		    applied = false, settled;
	enum bw_err	    er;

	snprintf(ns, sizeof(ns), "%d", n);
	er = db_execp(db, "snd_block", snd_sql_block, 3, p, &res);
	if (er != BW_OK)
		goto out;
	if (PQntuples(res) != 1) {
		er = BW_ENOTFOUND;
		goto out;
	}
	if (strcmp(PQgetvalue(res, 0, 0), "done") == 0)
		goto settle;
	PQclear(res);
	res = NULL;
	snprintf(lo, sizeof(lo), "%lld", (long long)n * batch_size);
	snprintf(hi, sizeof(hi), "%lld", (long long)(n + 1) * batch_size);
	p[2] = lo;
	p[3] = hi;
	er = db_execp(db, "snd_bcount", snd_sql_bcount, 4, p, &res);
	if (er != BW_OK)
		goto out;
	accepted = db_col_i64_or(res, 0, 0, 0);
	refused = db_col_i64_or(res, 0, 1, 0);
	pending = db_col_i64_or(res, 0, 2, 0);
	PQclear(res);
	res = NULL;
	if (pending > 0) {
		er = BW_ESTATE; /* not finished: the job runs again */
		goto out;
	}
	if (reservation_id != NULL && reservation_id[0] != '\0' &&
	    accepted + refused > 0) {
		snprintf(key, sizeof(key), "campaign:%s:batch:%d", id, n);
		memset(&pt, 0, sizeof(pt));
		pt.org_id = org_id;
		pt.reservation_id = reservation_id;
		pt.key = key;
		pt.capture = accepted;
		pt.give_back = refused;
		er = credit_capture_tx(db, &pt, &applied, &oc);
		if (er != BW_OK)
			goto out;
		if (oc != CREDIT_OK)
			log_kv(LL_ERROR, "campaign batch capture refused",
			    "campaign_id", id, "batch", ns, "outcome",
			    oc == CREDIT_EXPIRED ? "expired" : "other", NULL);
	}
	snprintf(acc, sizeof(acc), "%lld", (long long)accepted);
	snprintf(ref, sizeof(ref), "%lld", (long long)refused);
	p[2] = ns;
	p[3] = acc;
	p[4] = ref;
	er = db_execp(db, "snd_bdone", snd_sql_bdone, 5, p, NULL);
	if (er != BW_OK)
		goto out;
	if (applied) {
		p[2] = acc;
		p[3] = ref;
		er = db_execp(db, "snd_credits", snd_sql_credits, 4, p, NULL);
	} else
		er = db_execp(db, "snd_progress", snd_sql_progress, 2, p, NULL);
	if (er != BW_OK)
		goto out;
settle:
	er = campaign_settle_tx(db, org_id, id, &settled);
out:
	PQclear(res);
	return er;
}

static enum bw_err
snd_finish_fn(struct db *db, void *arg)
{
	struct snd_batch *b = arg;
	const char	 *p[2] = { b->org_id, b->id };
	PGresult	 *res = NULL;
	char		  resv[40];
	int		  bs;
	enum bw_err	  er;

	/* The campaign row first, as cancel and send lock it. */
	er = db_execp(db, "snd_clock", snd_sql_clock, 2, p, &res);
	if (er != BW_OK)
		return er;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return BW_ENOTFOUND;
	}
	snprintf(resv, sizeof(resv), "%s", PQgetvalue(res, 0, 1));
	bs = (int)db_col_i64_or(res, 0, 2, 100);
	PQclear(res);
	return campaign_batch_finish_tx(db, b->org_id, b->id, b->n, resv, bs);
}

/*
 * The org's send slots, shared by every sender process on every host: a
 * GCRA clock in Redis (bw:{sms}:rate:{org} holds the time the next slot
 * is free, in microseconds of Redis's own clock). Each call takes the next
 * slot, one 1/rate apart, and answers how long to wait for it: one round
 * trip per message, and N senders of one org together send at most rate
 * messages per second, as the provider's per-account limit wants. A slot
 * whose sender dies unused is simply lost (the pace is never exceeded).
 */
static struct rds_script snd_slot_lua = {
	.src = "local t = redis.call('TIME')\n"
	       "local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
	       "local gap = tonumber(ARGV[1])\n"
	       "local tat = tonumber(redis.call('GET', KEYS[1]) or '0')\n"
	       "if tat < now then tat = now end\n"
	       "local nxt = tat + gap\n"
	       "redis.call('SET', KEYS[1], string.format('%d', nxt), 'PX', "
	       "math.floor((nxt - now) / 1000) + 1000)\n"
	       "return math.floor((tat - now) / 1000)\n"
};

/* Waits for this org's next send slot (Redis); -1 when Redis failed. */
static int
snd_pace_shared(struct campaign_sender *s, const char *org_id)
{
	char	    key[80], gap[24];
	const char *av[2] = { key, gap };
	redisReply *rep = NULL;
	long long   wait;
	enum bw_err er;

	snprintf(key, sizeof(key), "bw:{sms}:rate:%s", org_id);
	snprintf(gap, sizeof(gap), "%d", 1000000 / s->rate);
	er = rds_eval(s->rds, &snd_slot_lua, 1, 2, av, NULL, &rep);
	wait = er == BW_OK ? rds_int(rep, -1) : -1;
	if (rep != NULL)
		freeReplyObject(rep);
	if (wait < 0) {
		if (!s->rds_warned)
			log_kv(LL_WARN,
			    "sms send rate: Redis unavailable, pacing per "
			    "process",
			    "error", bw_strerror(er), NULL);
		s->rds_warned = true;
		return -1;
	}
	s->rds_warned = false;
	if (wait > 0)
		snd_sleep(s, wait);
	return 0;
}

/*
 * Paces sends at s->rate per second for the org: across every sender
 * through Redis, or per process when there is no Redis (or it failed).
 */
static void
snd_pace(struct campaign_sender *s, const char *org_id)
{
	int64_t gap, now;

	if (s->rate <= 0)
		return;
	if (s->rds != NULL && snd_pace_shared(s, org_id) == 0)
		return;
	gap = 1000 / s->rate;
	now = clock_mono_ms();
	if (s->last_send_ms > 0 && now - s->last_send_ms < gap)
		snd_sleep(s, gap - (now - s->last_send_ms));
	s->last_send_ms = clock_mono_ms();
}

/* The messages of a window POSTed whose outcomes are not stored yet. */
struct snd_done {
	int		  n;
	char		  seq[SENDER_WINDOW_MAX][16];
	struct snd_result r[SENDER_WINDOW_MAX];
};

/* Reads go_seqs ("{1,5,7}", ascending) into go[] of rows lo..hi of res
 * (ascending seq in column 0). */
static void
snd_go(const PGresult *res, int lo, int hi, const char *lit, bool *go)
{
	const char *p = lit;
	char	   *end;
	long	    seq;
	int	    row = lo;

	memset(go, 0, sizeof(*go) * (size_t)(hi - lo));
	if (p == NULL || *p++ != '{')
		return;
	while (*p != '\0' && *p != '}') {
		seq = strtol(p, &end, 10);
		if (end == p)
			return;
		p = *end == ',' ? end + 1 : end;
		while (row < hi && atol(PQgetvalue(res, row, 0)) < seq)
			row++;
		if (row < hi && atol(PQgetvalue(res, row, 0)) == seq)
			go[row - lo] = true;
	}
}

/*
 * One round trip (sql/0036_sms_window.sql): stores d's outcomes (then
 * clears d) and, when res is not NULL, checks rows lo..hi of res (seq, id,
 * phone) right before their POSTs: go[i] says row lo + i is to be sent;
 * *stop: the campaign no longer sends (canceled).
 */
static enum bw_err
snd_window(struct campaign_sender *s, struct snd_batch *b, struct snd_done *d,
    const PGresult *res, int lo, int hi, bool *go, bool *stop)
{
	const char *seqs[SENDER_WINDOW_MAX], *mids[SENDER_WINDOW_MAX];
	const char *errs[SENDER_WINDOW_MAX], *lks[SENDER_WINDOW_MAX];
	const char *nseq[SENDER_WINDOW_MAX], *nph[SENDER_WINDOW_MAX];
	char	    lkv[SENDER_WINDOW_MAX][16], ns[16];
	const char *p[9] = { b->org_id, b->id, NULL, NULL, NULL, ns, NULL, NULL,
		NULL };
	struct buf  a[6];
	PGresult   *out = NULL;
	enum bw_err er = BW_OK;
	int	    i;

	*stop = false;
	for (i = 0; i < 6; i++)
		buf_init(&a[i], SENDER_WINDOW_MAX * (2 * 256 + 4) + 4);
	snprintf(ns, sizeof(ns), "%d", (int)CAMPAIGN_LOCK_MSG);
	if (d->n > 0) {
		for (i = 0; i < d->n; i++) {
			seqs[i] = d->seq[i];
			if (d->r[i].oc == SO_REFUSED) {
				mids[i] = NULL;
				errs[i] = d->r[i].error;
				snprintf(lkv[i], sizeof(lkv[i]), "0");
			} else {
				mids[i] = d->r[i].message_id;
				errs[i] = NULL;
				snprintf(lkv[i], sizeof(lkv[i]), "%d",
				    (int)db_lock_key(b->org_id,
					d->r[i].message_id));
			}
			lks[i] = lkv[i];
		}
		er = pgarray_text(&a[0], seqs, (size_t)d->n);
		if (er == BW_OK)
			er = pgarray_text(&a[1], mids, (size_t)d->n);
		if (er == BW_OK)
			er = pgarray_text(&a[2], errs, (size_t)d->n);
		if (er == BW_OK)
			er = pgarray_text(&a[3], lks, (size_t)d->n);
		p[2] = buf_cstr(&a[0]);
		p[3] = buf_cstr(&a[1]);
		p[4] = buf_cstr(&a[2]);
		p[6] = buf_cstr(&a[3]);
	}
	if (er == BW_OK && res != NULL) {
		for (i = lo; i < hi; i++) {
			nseq[i - lo] = PQgetvalue(res, i, 0);
			nph[i - lo] = PQgetvalue(res, i, 2);
		}
		er = pgarray_text(&a[4], nseq, (size_t)(hi - lo));
		if (er == BW_OK)
			er = pgarray_text(&a[5], nph, (size_t)(hi - lo));
		p[7] = buf_cstr(&a[4]);
		p[8] = buf_cstr(&a[5]);
	}
	if (er == BW_OK)
		er = db_execp(s->db, "snd_window", snd_sql_window, 9, p, &out);
	if (er == BW_OK) {
		d->n = 0;
		if (res != NULL && PQntuples(out) == 1) {
			*stop = strcmp(PQgetvalue(out, 0, 0), "sending") != 0;
			snd_go(res, lo, hi,
			    *stop ? "{}" : PQgetvalue(out, 0, 1), go);
		}
	}
	PQclear(out);
	for (i = 0; i < 6; i++)
		buf_free(&a[i]);
	return er;
}

/*
 * Sends every pending recipient of the batch, a window (s->window) at a
 * time: one database round trip stores the outcomes of the window just
 * POSTed and checks the next one right before its POSTs (campaign still
 * sending, number not opted out, recipient still pending); one POST per
 * message sent; a last round trip stores the last window's outcomes. An
 * opt-out or a cancel is seen at the next window: at most window - 1
 * messages after it (docs/api/campaigns.md).
 */
static enum bw_err
snd_all(struct campaign_sender *s, struct snd_batch *b, char *errmsg,
    size_t errlen)
{
	char		 n[16], lo[24], hi[24];
	const char	*p[4] = { b->org_id, b->id, lo, hi };
	PGresult	*res = NULL;
	struct snd_done *d;
	bool		 go[SENDER_WINDOW_MAX], stop = false, failed = false;
	enum bw_err	 er, er2;
	int		 w, row, top, rows;

	w = s->window < 1		    ? 1
	    : s->window > SENDER_WINDOW_MAX ? SENDER_WINDOW_MAX
					    : s->window;
	snprintf(n, sizeof(n), "%d", b->n);
	snprintf(lo, sizeof(lo), "%lld", (long long)b->n * b->batch_size);
	snprintf(hi, sizeof(hi), "%lld", (long long)(b->n + 1) * b->batch_size);
	if ((d = calloc(1, sizeof(*d))) == NULL)
		return BW_ENOMEM;
	er = db_execp(s->db, "snd_list", snd_sql_list, 4, p, &res);
	if (er != BW_OK) {
		free(d);
		return er;
	}
	rows = PQntuples(res);
	for (row = 0; row < rows && !stop && !failed; row = top) {
		if (s->stopping != NULL && s->stopping()) {
			snprintf(errmsg, errlen, "stopping");
			er = BW_ETIMEOUT;
			break;
		}
		top = row + w < rows ? row + w : rows;
		er = snd_window(s, b, d, res, row, top, go, &stop);
		if (er != BW_OK)
			break;
		for (int i = row; i < top && !stop; i++) {
			struct snd_result *r = &d->r[d->n];

			if (!go[i - row])
				continue;
			if (s->stopping != NULL && s->stopping()) {
				snprintf(errmsg, errlen, "stopping");
				er = BW_ETIMEOUT;
				failed = true;
				break;
			}
			snd_pace(s, b->org_id);
			snd_post(s, b, PQgetvalue(res, i, 1),
			    PQgetvalue(res, i, 2), r);
			b->count[r->oc]++;
			if (r->oc == SO_FAILED) {
				snprintf(errmsg, errlen,
				    "provider: %s (status %d)", r->error,
				    r->status);
				log_kv(LL_WARN, "sms send failed",
				    "campaign_id", b->id, "batch", n, "error",
				    r->error, NULL);
				er = BW_EUPSTREAM;
				failed = true;
				break;
			}
			snprintf(d->seq[d->n], sizeof(d->seq[d->n]), "%s",
			    PQgetvalue(res, i, 0));
			d->n++;
		}
	}
	PQclear(res);
	if (d->n > 0) {
		/* The last window's outcomes (also after a stop or an error:
		 * the provider has them; the record is idempotent). */
		er2 = snd_window(s, b, d, NULL, 0, 0, go, &stop);
		if (er == BW_OK)
			er = er2;
	}
	free(d);
	return er;
}

enum bw_err
campaign_batch_run(struct campaign_sender *s, const char *payload,
    bool *permanent, char *errmsg, size_t errlen)
{
	struct snd_batch b;
	enum bw_err	 er, er2;
	int		 i;

	*permanent = false;
	memset(&b, 0, sizeof(b));
	if (snd_payload(payload, &b) != 0) {
		*permanent = true;
		snprintf(errmsg, errlen, "bad payload");
		return BW_EINVAL;
	}
	log_ctx_set(LC_ORG_ID, b.org_id);
	er = db_tx(s->db, false, snd_start_fn, &b);
	if (er == BW_ENOTFOUND) {
		*permanent = true;
		snprintf(errmsg, errlen, "no such campaign batch");
		goto out;
	}
	if (er != BW_OK)
		goto out;
	if (b.finished) {
		/* Done before (a rerun); settle in case that was missed. */
		er = db_tx(s->db, false, snd_finish_fn, &b);
		goto out;
	}
	if (b.sending)
		er = snd_all(s, &b, errmsg, errlen);
	if (er == BW_OK) {
		er = db_tx(s->db, false, snd_finish_fn, &b);
		if (er == BW_ESTATE)
			snprintf(errmsg, errlen,
			    "batch has pending recipients");
	}
out:
	for (i = 0; i < SO__MAX; i++)
		if (b.count[i] > 0) {
			er2 = campaign_count_add(s->db, "sms_sends",
			    snd_outcome_names[i], b.count[i]);
			if (er2 != BW_OK)
				log_kv(LL_WARN, "sms send counter not stored",
				    NULL);
		}
	free(b.message);
	return er;
}
