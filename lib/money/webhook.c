/* SPDX-License-Identifier: MIT */
/*
 * The webhook-event store: per-org provider secrets with rotation, the
 * once-only record of each delivered event, SMS delivery status (newest
 * wins) and the batched purge of expired event rows; the verification of a
 * delivery and the transaction that records its events and applies their
 * effects. See webhook.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/jv.h"
#include "core/log.h"
#include "core/sec.h"
#include "core/limits.h"
#include "money/credit.h"
#include "money/credit_int.h"
#include "money/webhook.h"

/* clang-format off */
static const char webhook_sql_secrets[] =
    "SELECT secret, coalesce(url, '') FROM webhook_secrets"
    " WHERE org_id = $1::uuid AND provider = $2 AND retired_at IS NULL"
    " ORDER BY id DESC LIMIT 2";

/* Serializes concurrent sets for one org and provider (row lock on the
 * org, which also proves it exists). */
static const char webhook_sql_lock_org[] =
    "SELECT 1 FROM orgs WHERE id = $1::uuid FOR UPDATE";

static const char webhook_sql_newest[] =
    "SELECT id, secret FROM webhook_secrets WHERE org_id = $1::uuid"
    " AND provider = $2 AND retired_at IS NULL ORDER BY id DESC LIMIT 1";

static const char webhook_sql_set_url[] =
    "UPDATE webhook_secrets SET url = $3 WHERE org_id = $1::uuid"
    " AND provider = $2 AND id = $4::bigint";

static const char webhook_sql_insert_secret[] =
    "INSERT INTO webhook_secrets (org_id, provider, secret, url)"
    " VALUES ($1::uuid, $2, $3, $4)";

static const char webhook_sql_retire[] =
    "UPDATE webhook_secrets SET retired_at = now()"
    " WHERE org_id = $1::uuid AND provider = $2 AND retired_at IS NULL"
    " AND id NOT IN (SELECT id FROM webhook_secrets WHERE org_id = $1::uuid"
    "  AND provider = $2 AND retired_at IS NULL ORDER BY id DESC LIMIT 2)";

static const char webhook_sql_count[] =
    "SELECT count(*) FROM webhook_secrets WHERE org_id = $1::uuid"
    " AND provider = $2 AND retired_at IS NULL";

static const char webhook_sql_record[] =
    "INSERT INTO webhook_events (org_id, provider, event_id, event_type)"
    " VALUES ($1::uuid, $2, $3, $4)"
    " ON CONFLICT (org_id, provider, event_id) DO NOTHING";

static const char webhook_sql_outcome[] =
    "UPDATE webhook_events SET outcome = $4 WHERE org_id = $1::uuid"
    " AND provider = $2 AND event_id = $3";

/*
 * Newest wins: the row changes only when the report's (provider_ts, rank)
 * is greater than the stored one.
 */
static const char webhook_sql_sms[] =
    "INSERT INTO sms_deliveries (org_id, message_id, status, status_rank,"
    " provider_ts, event_id)"
    " VALUES ($1::uuid, $2, $3, $4::int,"
    "  to_timestamp($5::bigint / 1000.0), $6)"
    " ON CONFLICT (org_id, message_id) DO UPDATE SET"
    "  status = EXCLUDED.status, status_rank = EXCLUDED.status_rank,"
    "  provider_ts = EXCLUDED.provider_ts, event_id = EXCLUDED.event_id,"
    "  updated_at = now()"
    " WHERE (sms_deliveries.provider_ts, sms_deliveries.status_rank)"
    "  < (EXCLUDED.provider_ts, EXCLUDED.status_rank)";

static const char webhook_sql_purge[] =
    "DELETE FROM webhook_events WHERE (org_id, provider, event_id) IN"
    " (SELECT org_id, provider, event_id FROM webhook_events"
    "  WHERE expires_at < now() ORDER BY expires_at LIMIT $1::int"
    "  FOR UPDATE SKIP LOCKED)";

static const char webhook_sql_refunded_early[] =
    "SELECT 1 FROM webhook_early_refunds WHERE org_id = $1::uuid"
    " AND grant_anchor = $2";

/* A whole grant delivery in one statement (sql/0022_webhook_grant.sql). */
static const char webhook_sql_grant_fast[] =
    "SELECT bw_webhook_grant($1::uuid, $2, $3, $4, $5, $6, $7::bigint,"
    " $8::bigint, $9, $10::int, $11::int)";
/* clang-format on */

/* Advisory lock namespace of payment anchors (see lib/core/db.h for the
 * others). */
#define WEBHOOK_LOCK_ANCHOR 0x42570010

static const char *const webhook_outcomes[WO__MAX] = {
	[WO_PROCESSED] = "processed",
	[WO_IGNORED] = "ignored",
	[WO_DUPLICATE] = "duplicate",
};

/* Route name of a provider; "?" for one without a route (Twilio). */
const char *
webhook_provider_name(enum whsig_provider p)
{
	if (p == WS_TWILIO)
		return "?";
	return whsig_provider_name(p);
}

/* Static outcome name; "?" when out of range. */
const char *
webhook_outcome_name(enum webhook_outcome o)
{
	if ((int)o < 0 || o >= WO__MAX)
		return "?";
	return webhook_outcomes[o];
}

/* 1 when org_id is a canonical UUID and p has a route name. */
static int
webhook_args_ok(const char *org_id, enum whsig_provider p)
{
	if (org_id == NULL || !jv_is_uuid(org_id, strlen(org_id)))
		return 0;
	return (int)p >= 0 && p < WS__MAX && p != WS_TWILIO;
}

/*
 * Loads the active secrets, newest first. BW_ENOTFOUND when none,
 * BW_EINVAL for a malformed org id (not queried), else a db error. *out is
 * overwritten on BW_OK only.
 */
enum bw_err
webhook_secrets_get(struct db *db, const char *org_id, enum whsig_provider p,
    struct webhook_secrets *out)
{
	const char *params[2];
	PGresult   *res = NULL;
	enum bw_err er;
	int	    i, n;

	if (!webhook_args_ok(org_id, p))
		return BW_EINVAL;
	params[0] = org_id;
	params[1] = webhook_provider_name(p);
	er = db_execp(db, "webhook_secrets", webhook_sql_secrets, 2, params,
	    &res);
	if (er != BW_OK)
		return er;
	n = PQntuples(res);
	if (n == 0) {
		er = BW_ENOTFOUND;
		goto out;
	}
	if (n > WEBHOOK_ACTIVE_SECRETS)
		n = WEBHOOK_ACTIVE_SECRETS;
	memset(out, 0, sizeof(*out));
	for (i = 0; i < n; i++) {
		snprintf(out->secret[i], sizeof(out->secret[i]), "%s",
		    PQgetvalue(res, i, 0));
		snprintf(out->url[i], sizeof(out->url[i]), "%s",
		    PQgetvalue(res, i, 1));
		out->s[i].secret = out->secret[i];
		out->s[i].url = out->url[i][0] != '\0' ? out->url[i] : NULL;
	}
	out->n = (size_t)n;
out:
	/* The result held the secrets too. */
	if (res != NULL) {
		for (i = 0; i < PQntuples(res); i++)
			sec_wipe(PQgetvalue(res, i, 0),
			    (size_t)PQgetlength(res, i, 0));
		PQclear(res);
	}
	return er;
}

void
webhook_secrets_clear(struct webhook_secrets *s)
{
	if (s == NULL)
		return;
	sec_wipe(s->secret, sizeof(s->secret));
	s->n = 0;
}

struct webhook_set_arg {
	const char	   *org_id;
	enum whsig_provider p;
	const char	   *secret;
	const char	   *url;
	int		    active;
};

/* The transaction of webhook_secret_set(). */
static enum bw_err
webhook_secret_set_fn(struct db *db, void *v)
{
	struct webhook_set_arg *a = v;
	const char	       *params[4];
	PGresult	       *res = NULL;
	enum bw_err		er;
	int64_t			count;
	int			same = 0;

	params[0] = a->org_id;
	params[1] = webhook_provider_name(a->p);
	er = db_exec(db, webhook_sql_lock_org, 1, params, &res);
	if (er != BW_OK)
		goto out;
	if (PQntuples(res) == 0) {
		er = BW_ENOTFOUND;
		goto out;
	}
	PQclear(res);
	res = NULL;
	er = db_exec(db, webhook_sql_newest, 2, params, &res);
	if (er != BW_OK)
		goto out;
	if (PQntuples(res) == 1) {
		const char *cur = PQgetvalue(res, 0, 1);

		same = sec_eq(cur, strlen(cur), a->secret, strlen(a->secret));
	}
	if (same) {
		params[2] = a->url;
		params[3] = PQgetvalue(res, 0, 0);
		er = db_exec(db, webhook_sql_set_url, 4, params, NULL);
	} else {
		params[2] = a->secret;
		params[3] = a->url;
		er = db_exec(db, webhook_sql_insert_secret, 4, params, NULL);
	}
	if (er != BW_OK)
		goto out;
	er = db_exec(db, webhook_sql_retire, 2, params, NULL);
	if (er != BW_OK)
		goto out;
	PQclear(res);
	res = NULL;
	er = db_exec(db, webhook_sql_count, 2, params, &res);
	if (er != BW_OK)
		goto out;
	er = db_col_i64(res, 0, 0, &count);
	if (er != BW_OK)
		goto out;
	a->active = (int)count;
out:
	PQclear(res);
	return er;
}

/*
 * Adds a secret (rotation keeps the newest two active). BW_EINVAL for a
 * refused secret/url or org id, BW_ENOTFOUND for an unknown org.
 */
enum bw_err
webhook_secret_set(struct db *db, const char *org_id, enum whsig_provider p,
    const char *secret, const char *url, int *active)
{
	struct webhook_set_arg a;
	struct whsig_secret    ws;
	enum bw_err	       er;

	if (!webhook_args_ok(org_id, p) || secret == NULL)
		return BW_EINVAL;
	if (url != NULL && strlen(url) > WEBHOOK_URL_MAX)
		return BW_EINVAL;
	ws.secret = secret;
	ws.url = url;
	if (whsig_secret_check(p, &ws) != BW_OK)
		return BW_EINVAL;
	memset(&a, 0, sizeof(a));
	a.org_id = org_id;
	a.p = p;
	a.secret = secret;
	a.url = url;
	er = db_tx(db, false, webhook_secret_set_fn, &a);
	if (er == BW_OK && active != NULL)
		*active = a.active;
	return er;
}

/*
 * Inserts the event row. *fresh tells whether this call made it (the
 * INSERT waits on a concurrent uncommitted insert of the same key).
 */
enum bw_err
webhook_event_record_tx(struct db *db, const char *org_id,
    enum whsig_provider p, const char *event_id, const char *event_type,
    bool *fresh)
{
	const char *params[4];
	PGresult   *res = NULL;
	enum bw_err er;
	size_t	    n;

	if (!webhook_args_ok(org_id, p) || event_id == NULL || !db_in_tx(db))
		return BW_EINVAL;
	n = strlen(event_id);
	if (n == 0 || n > WEBHOOK_EVENT_ID_MAX)
		return BW_EINVAL;
	params[0] = org_id;
	params[1] = webhook_provider_name(p);
	params[2] = event_id;
	params[3] = event_type != NULL ? event_type : "";
	if (strlen(params[3]) > 255)
		params[3] = "";
	er =
	    db_execp(db, "webhook_record", webhook_sql_record, 4, params, &res);
	if (er != BW_OK)
		return er;
	*fresh = strcmp(PQcmdTuples(res), "1") == 0;
	PQclear(res);
	return BW_OK;
}

enum bw_err
webhook_event_outcome_tx(struct db *db, const char *org_id,
    enum whsig_provider p, const char *event_id, enum webhook_outcome o)
{
	const char *params[4];

	if (!webhook_args_ok(org_id, p) || event_id == NULL || (int)o < 0 ||
	    o >= WO__MAX || !db_in_tx(db))
		return BW_EINVAL;
	params[0] = org_id;
	params[1] = webhook_provider_name(p);
	params[2] = event_id;
	params[3] = webhook_outcomes[o];
	return db_execp(db, "webhook_outcome", webhook_sql_outcome, 4, params,
	    NULL);
}

int
webhook_sms_status_rank(const char *status)
{
	if (status == NULL)
		return 0;
	if (strcmp(status, "queued") == 0 || strcmp(status, "accepted") == 0)
		return 1;
	if (strcmp(status, "sent") == 0 || strcmp(status, "sending") == 0)
		return 2;
	if (strcmp(status, "delivered") == 0 ||
	    strcmp(status, "undelivered") == 0 || strcmp(status, "failed") == 0)
		return 3;
	return 0;
}

/* Upserts the delivery status; newest (ts, rank) wins. */
enum bw_err
webhook_sms_status_tx(struct db *db, const char *org_id, const char *message_id,
    const char *status, int64_t provider_ts_ms, const char *event_id,
    bool *applied)
{
	const char *params[6];
	char	    rank[16], ts[32];
	PGresult   *res = NULL;
	enum bw_err er;
	size_t	    n;

	if (org_id == NULL || !jv_is_uuid(org_id, strlen(org_id)) ||
	    message_id == NULL || status == NULL || event_id == NULL ||
	    !db_in_tx(db))
		return BW_EINVAL;
	n = strlen(message_id);
	if (n == 0 || n > WH_SMS_MESSAGE_ID_MAX || strlen(status) == 0 ||
	    strlen(status) > WH_SMS_STATUS_MAX || provider_ts_ms < 0)
		return BW_EINVAL;
	snprintf(rank, sizeof(rank), "%d", webhook_sms_status_rank(status));
	snprintf(ts, sizeof(ts), "%lld", (long long)provider_ts_ms);
	params[0] = org_id;
	params[1] = message_id;
	params[2] = status;
	params[3] = rank;
	params[4] = ts;
	params[5] = event_id;
	er = db_execp(db, "webhook_sms", webhook_sql_sms, 6, params, &res);
	if (er != BW_OK)
		return er;
	*applied = strcmp(PQcmdTuples(res), "1") == 0;
	PQclear(res);
	return BW_OK;
}

/* Serializes the grant and the refund of one payment (until commit). */
enum bw_err
webhook_anchor_lock_tx(struct db *db, const char *org_id,
    const char *grant_anchor)
{
	if (org_id == NULL || grant_anchor == NULL || !db_in_tx(db))
		return BW_EINVAL;
	return db_xact_lock(db, WEBHOOK_LOCK_ANCHOR,
	    db_lock_key(org_id, grant_anchor));
}

/* *refunded = whether a refund of grant_anchor came first (before 0011). */
enum bw_err
webhook_refunded_early_tx(struct db *db, const char *org_id,
    const char *grant_anchor, bool *refunded)
{
	const char *params[2];
	PGresult   *res = NULL;
	enum bw_err er;

	if (org_id == NULL || !jv_is_uuid(org_id, strlen(org_id)) ||
	    grant_anchor == NULL || !db_in_tx(db))
		return BW_EINVAL;
	params[0] = org_id;
	params[1] = grant_anchor;
	er = db_execp(db, "webhook_refunded_early", webhook_sql_refunded_early,
	    2, params, &res);
	if (er != BW_OK)
		return er;
	*refunded = PQntuples(res) > 0;
	PQclear(res);
	return BW_OK;
}

/* This process's dummy secrets, for unknown orgs (never valid). */
static struct webhook_secrets webhook_dummy[WS__MAX];
static int		      webhook_dummy_ready;

/*
 * Fills one random dummy secret per provider, in the form each scheme
 * wants, once per process. Returns BW_OK, or BW_ECRYPTO when the random
 * source failed.
 */
static enum bw_err
webhook_dummy_init(void)
{
	struct webhook_secrets *d;
	uint8_t			rnd[32];
	struct buf		b;
	char			hex[65];
	enum bw_err		er = BW_OK;
	int			i;

	if (webhook_dummy_ready)
		return BW_OK;
	for (i = 0; i < WS__MAX && er == BW_OK; i++) {
		d = &webhook_dummy[i];
		if (sec_random(rnd, sizeof(rnd)) != BW_OK) {
			er = BW_ECRYPTO;
			break;
		}
		sec_hex(rnd, sizeof(rnd), hex);
		if (i == WS_STDWEBHOOKS) {
			buf_init(&b, 128);
			if (sec_b64(rnd, sizeof(rnd), &b) != BW_OK)
				er = BW_ECRYPTO;
			snprintf(d->secret[0], sizeof(d->secret[0]), "whsec_%s",
			    buf_cstr(&b));
			buf_free(&b);
		} else if (i == WS_STRIPE) {
			snprintf(d->secret[0], sizeof(d->secret[0]), "whsec_%s",
			    hex);
		} else {
			snprintf(d->secret[0], sizeof(d->secret[0]), "%s", hex);
		}
		snprintf(d->url[0], sizeof(d->url[0]),
		    "https://unknown.invalid/webhooks");
		d->s[0].secret = d->secret[0];
		d->s[0].url = d->url[0];
		d->n = 1;
	}
	sec_wipe(rnd, sizeof(rnd));
	sec_wipe(hex, sizeof(hex));
	webhook_dummy_ready = er == BW_OK;
	return er;
}

/* The org's secrets, else the dummy; whsig_verify() on them. */
enum bw_err
webhook_verify(struct db *db, const char *org_id, enum whsig_provider p,
    const struct whsig_headers *h, const void *body, size_t len, int64_t now_s,
    enum whsig_verdict *v, bool *known, int64_t *signed_ts)
{
	struct webhook_secrets	      sec;
	const struct webhook_secrets *use = &sec;
	enum whsig_verdict	      verdict;
	enum bw_err		      er;
	bool			      k = true;

	if ((int)p < 0 || p >= WS__MAX || p == WS_TWILIO || h == NULL)
		return BW_EINVAL;
	memset(&sec, 0, sizeof(sec));
	er = webhook_secrets_get(db, org_id, p, &sec);
	if (er == BW_EINVAL || er == BW_ENOTFOUND) {
		er = webhook_dummy_init();
		if (er != BW_OK)
			return er;
		use = &webhook_dummy[p];
		k = false;
	} else if (er != BW_OK)
		return er;
	verdict =
	    whsig_verify(p, h, body, len, use->s, use->n, now_s, -1, signed_ts);
	webhook_secrets_clear(&sec);
	if (!k && verdict != WV_ERROR)
		verdict = WV_INVALID_SIGNATURE;
	*v = verdict;
	*known = k;
	return BW_OK;
}

/*
 * A grant, none twice per anchor; none when a refund remembered before
 * partial refunds (webhook_early_refunds) came first. With it, the amount
 * paid, and the refunds that came before it are applied.
 */
static enum bw_err
webhook_grant_tx(struct db *db, const char *org_id, const struct wh_event *ev,
    enum webhook_outcome *o)
{
	enum bw_err er;
	bool	    refunded = false, applied = false;
	int	    early = 0;

	er = webhook_anchor_lock_tx(db, org_id, ev->anchor);
	if (er != BW_OK)
		return er;
	er = webhook_refunded_early_tx(db, org_id, ev->anchor, &refunded);
	if (er != BW_OK)
		return er;
	if (refunded) {
		log_kv(LL_WARN, "webhook grant after its refund: not granted",
		    "event_id", ev->id, "anchor", ev->anchor, NULL);
		*o = WO_IGNORED;
		return BW_OK;
	}
	er = credit_grant_tx(db, org_id, ev->user_id, ev->credits, ev->anchor,
	    &applied);
	if (er == BW_EINVAL) {
		/* A user id the ledger refuses: the event stays recorded. */
		log_kv(LL_WARN, "webhook grant refused by the ledger",
		    "event_id", ev->id, "anchor", ev->anchor, NULL);
		*o = WO_IGNORED;
		return BW_OK;
	}
	if (er != BW_OK)
		return er;
	*o = applied ? WO_PROCESSED : WO_DUPLICATE;
	if (!applied)
		return BW_OK;
	if (ev->amount > 0) {
		er = credit_payment_tx(db, org_id, ev->anchor, ev->amount,
		    ev->currency);
		if (er != BW_OK)
			return er;
	}
	er = credit_refund_early_tx(db, org_id, ev->anchor, &early);
	if (er == BW_OK && early > 0)
		log_kv(LL_INFO, "webhook grant applied its earlier refunds",
		    "event_id", ev->id, "anchor", ev->anchor, NULL);
	return er;
}

/*
 * A refund: its share of the grant (lib/money/credit.h, "Refunds");
 * remembered (ignored) when its grant has not come, ignored in another
 * currency than the payment's, a duplicate when its anchor or a later
 * state of its source was applied before.
 */
static enum bw_err
webhook_refund_tx(struct db *db, const char *org_id, const struct wh_event *ev,
    enum webhook_outcome *o)
{
	struct credit_refund	   r;
	enum credit_refund_outcome oc = CREFUND_DUPLICATE;
	enum bw_err		   er;

	er = webhook_anchor_lock_tx(db, org_id, ev->anchor);
	if (er != BW_OK)
		return er;
	memset(&r, 0, sizeof(r));
	r.grant_anchor = ev->anchor;
	r.refund_anchor = ev->anchor2;
	r.source = ev->source;
	r.refunded = ev->amount;
	r.currency = ev->currency;
	r.paid = ev->paid;
	er = credit_refund_tx(db, org_id, &r, &oc, NULL);
	if (er == BW_EINVAL) {
		/* The parser's bounds are the ledger's: not expected. */
		log_kv(LL_WARN, "webhook refund refused by the ledger",
		    "event_id", ev->id, "anchor", ev->anchor2, NULL);
		*o = WO_IGNORED;
		return BW_OK;
	}
	if (er != BW_OK)
		return er;
	switch (oc) {
	case CREFUND_APPLIED:
		*o = WO_PROCESSED;
		break;
	case CREFUND_EARLY:
		log_kv(LL_WARN, "webhook refund before (or without) its grant",
		    "event_id", ev->id, "anchor", ev->anchor, NULL);
		*o = WO_IGNORED;
		break;
	case CREFUND_REFUSED:
		*o = WO_IGNORED;
		break;
	case CREFUND_DUPLICATE:
	default:
		*o = WO_DUPLICATE;
		break;
	}
	return BW_OK;
}

/* The effect of one freshly recorded event; *o its outcome. */
static enum bw_err
webhook_effect_tx(struct db *db, const char *org_id, const struct wh_event *ev,
    const struct webhook_effects *fx, enum webhook_outcome *o)
{
	enum bw_err er;
	bool	    applied, seen = false;

	*o = WO_PROCESSED;
	switch (ev->action) {
	case WA_GRANT:
		return webhook_grant_tx(db, org_id, ev, o);
	case WA_REFUND:
		return webhook_refund_tx(db, org_id, ev, o);
	case WA_SMS:
		/* An older report changes nothing and is still processed. */
		er = webhook_sms_status_tx(db, org_id, ev->message_id,
		    ev->status, ev->ts_ms, ev->id, &applied);
		if (er == BW_OK && applied && fx != NULL && fx->sms != NULL)
			er = fx->sms(db, org_id, ev, fx->arg);
		return er;
	case WA_OPTOUT:
		if (fx == NULL || fx->optout == NULL) {
			*o = WO_IGNORED;
			return BW_OK;
		}
		return fx->optout(db, org_id, ev, fx->arg);
	case WA_LINE:
		er = fx->line(db, org_id, ev, fx->arg, &seen);
		if (er == BW_OK && seen)
			*o = WO_DUPLICATE;
		return er;
	case WA_IGNORE:
	default:
		*o = WO_IGNORED;
		return BW_OK;
	}
}

enum bw_err
webhook_apply_tx(struct db *db, const char *org_id, enum whsig_provider p,
    const struct wh_event *ev, size_t nev, const struct webhook_effects *fx,
    struct webhook_result *res)
{
	struct webhook_result r[WH_MAX_EVENTS];
	enum bw_err	      er;
	size_t		      i;
	bool		      fresh;

	if (!webhook_args_ok(org_id, p) || nev > WH_MAX_EVENTS ||
	    (nev > 0 && (ev == NULL || res == NULL)) || !db_in_tx(db))
		return BW_EINVAL;
	for (i = 0; i < nev; i++)
		if (ev[i].action == WA_LINE && (fx == NULL || fx->line == NULL))
			return BW_EINVAL;
	memset(r, 0, sizeof(r));
	for (i = 0; i < nev; i++) {
		er = webhook_event_record_tx(db, org_id, p, ev[i].id,
		    ev[i].type, &fresh);
		if (er != BW_OK)
			return er;
		if (!fresh) {
			r[i].outcome = WO_DUPLICATE;
			r[i].redelivered = true;
			continue;
		}
		er = webhook_effect_tx(db, org_id, &ev[i], fx, &r[i].outcome);
		if (er != BW_OK)
			return er;
		if (r[i].outcome != WO_PROCESSED) {
			er = webhook_event_outcome_tx(db, org_id, p, ev[i].id,
			    r[i].outcome);
			if (er != BW_OK)
				return er;
		}
	}
	memcpy(res, r, nev * sizeof(r[0]));
	return BW_OK;
}

/*
 * Whether a delivery can take webhook_grant_fast(): one grant event whose
 * arguments the ledger accepts (else the general path decides, as before),
 * outside a caller's transaction.
 */
static int
webhook_grant_fast_ok(struct db *db, const struct wh_event *ev, size_t nev)
{
	size_t n;
	int    i;

	if (nev != 1 || ev->action != WA_GRANT || db_in_tx(db) ||
	    ev->id == NULL)
		return 0;
	n = strlen(ev->id);
	if (n == 0 || n > WEBHOOK_EVENT_ID_MAX ||
	    !credit_text_valid(ev->user_id, CREDIT_USER_ID_MAX) ||
	    !credit_amount_valid(ev->credits) ||
	    !credit_text_valid(ev->anchor, BW_MAX_ANCHOR))
		return 0;
	if (ev->amount == 0)
		return 1;
	if (ev->amount < 0 || ev->amount > BW_MAX_WEBHOOK_MONEY ||
	    strlen(ev->currency) != 3)
		return 0;
	for (i = 0; i < 3; i++)
		if (ev->currency[i] < 'A' || ev->currency[i] > 'Z')
			return 0;
	return 1;
}

/*
 * One grant delivery in one statement, its own transaction
 * (bw_webhook_grant(), sql/0022_webhook_grant.sql): the event row, the
 * anchor's lock, the early-refund and anchor checks, the accounts, the
 * transfer, the balances and the amount paid, with the outcomes and logs
 * of the general path. BW_ERETRY when the function found refunds waiting
 * for this grant (it changed nothing) or hit a serialization failure or
 * deadlock: the caller runs the general path.
 */
static enum bw_err
webhook_grant_fast(struct db *db, const char *org_id, enum whsig_provider p,
    const struct wh_event *ev, struct webhook_result *res)
{
	const char *params[11];
	char	    credits[24], amount[24], ns[16], key[16];
	PGresult   *r = NULL;
	const char *o;
	enum bw_err er;

	snprintf(credits, sizeof(credits), "%lld", (long long)ev->credits);
	snprintf(amount, sizeof(amount), "%lld", (long long)ev->amount);
	snprintf(ns, sizeof(ns), "%d", (int)WEBHOOK_LOCK_ANCHOR);
	snprintf(key, sizeof(key), "%d", (int)db_lock_key(org_id, ev->anchor));
	params[0] = org_id;
	params[1] = webhook_provider_name(p);
	params[2] = ev->id;
	params[3] = ev->type != NULL && strlen(ev->type) <= 255 ? ev->type : "";
	params[4] = ev->anchor;
	params[5] = ev->user_id;
	params[6] = credits;
	params[7] = amount;
	params[8] = ev->amount > 0 ? ev->currency : "";
	params[9] = ns;
	params[10] = key;
	er = db_execp(db, "webhook_grant_fast", webhook_sql_grant_fast, 11,
	    params, &r);
	if (er != BW_OK)
		return er;
	o = PQntuples(r) == 1 ? PQgetvalue(r, 0, 0) : "";
	memset(res, 0, sizeof(*res));
	if (strcmp(o, "processed") == 0) {
		res->outcome = WO_PROCESSED;
		log_kv(LL_INFO, "credits granted", "org_id", org_id, "anchor",
		    ev->anchor, "amount", credits, NULL);
	} else if (strcmp(o, "redelivered") == 0) {
		res->outcome = WO_DUPLICATE;
		res->redelivered = true;
	} else if (strcmp(o, "duplicate") == 0) {
		res->outcome = WO_DUPLICATE;
	} else if (strcmp(o, "ignored") == 0) {
		log_kv(LL_WARN, "webhook grant after its refund: not granted",
		    "event_id", ev->id, "anchor", ev->anchor, NULL);
		res->outcome = WO_IGNORED;
	} else {
		log_kv(LL_ERROR, "webhook grant: unexpected answer", "answer",
		    o, NULL);
		er = BW_EDB;
	}
	PQclear(r);
	return er;
}

struct webhook_apply_arg {
	const char		     *org_id;
	enum whsig_provider	      p;
	const struct wh_event	     *ev;
	size_t			      nev;
	const struct webhook_effects *fx;
	struct webhook_result	     *res;
};

/* The transaction of webhook_apply(); db_tx() may run it again. */
static enum bw_err
webhook_apply_fn(struct db *db, void *v)
{
	struct webhook_apply_arg *a = v;

	return webhook_apply_tx(db, a->org_id, a->p, a->ev, a->nev, a->fx,
	    a->res);
}

enum bw_err
webhook_apply(struct db *db, const char *org_id, enum whsig_provider p,
    const struct wh_event *ev, size_t nev, const struct webhook_effects *fx,
    struct webhook_result *res)
{
	struct webhook_apply_arg a;
	enum bw_err		 er;

	if (nev == 0)
		return BW_OK;
	if (webhook_args_ok(org_id, p) && res != NULL &&
	    webhook_grant_fast_ok(db, ev, nev)) {
		er = webhook_grant_fast(db, org_id, p, ev, res);
		/*
		 * Waiting refunds, a conflict, a refusal, or a database not
		 * migrated to 0022 yet (42883): the general path decides.
		 */
		if (er != BW_ERETRY && er != BW_EINVAL &&
		    !(er == BW_EDB && strcmp(db_sqlstate(db), "42883") == 0))
			return er;
	}
	a.org_id = org_id;
	a.p = p;
	a.ev = ev;
	a.nev = nev;
	a.fx = fx;
	a.res = res;
	return db_tx(db, false, webhook_apply_fn, &a);
}

enum webhook_outcome
webhook_delivery_outcome(const struct webhook_result *res, size_t n)
{
	size_t i, ndup = 0;

	for (i = 0; i < n; i++) {
		if (res[i].redelivered || res[i].outcome == WO_DUPLICATE)
			ndup++;
		else if (res[i].outcome == WO_PROCESSED)
			return WO_PROCESSED;
	}
	return n > 0 && ndup == n ? WO_DUPLICATE : WO_IGNORED;
}

/* Batched purge of expired event rows; *n the total deleted. */
enum bw_err
webhook_purge(struct db *db, int batch, int64_t *n)
{
	const char *params[1];
	char	    b[16];
	PGresult   *res = NULL;
	enum bw_err er;
	int64_t	    total = 0, got;

	if (batch <= 0 || db_in_tx(db))
		return BW_EINVAL;
	snprintf(b, sizeof(b), "%d", batch);
	params[0] = b;
	for (;;) {
		er = db_execp(db, "webhook_purge", webhook_sql_purge, 1, params,
		    &res);
		if (er != BW_OK)
			return er;
		er = db_i64(PQcmdTuples(res), &got);
		PQclear(res);
		if (er != BW_OK)
			return er;
		total += got;
		if (got < batch)
			break;
	}
	*n = total;
	return BW_OK;
}
