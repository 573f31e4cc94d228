/* SPDX-License-Identifier: MIT */
/*
 * The webhook-event store (tables webhook_secrets, webhook_events,
 * sms_deliveries): the signing secrets of each org and provider (up to two
 * active during a rotation, with the notification URL Square signs), one
 * row per delivered (org, provider, event id) recorded inside the caller's
 * transaction so that a redelivery, concurrent or days later, finds it and
 * changes nothing, the SMS delivery status where the newest provider
 * timestamp wins, and the batched purge of expired events. On top of it,
 * what the webhook handler (fcgi/h_webhooks.c) does with a delivery:
 * webhook_verify() (the org's secrets, or a dummy for an unknown org) and
 * webhook_apply_tx(), which records each parsed event (lib/money/wh_parse.h)
 * and applies its effect in one transaction. Signature checking itself is
 * lib/money/whsig.h.
 *
 * Functions named *_tx run inside the caller's transaction (db_in_tx()
 * must be true).
 */
#ifndef BW_WEBHOOK_H
#define BW_WEBHOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "core/db.h"
#include "core/err.h"
#include "core/limits.h"
#include "core/rds.h"
#include "money/wh_parse.h"
#include "money/whsig.h"

#define WEBHOOK_ACTIVE_SECRETS 2    /* active per org and provider */
#define WEBHOOK_EVENT_ID_MAX   255  /* provider event id, bytes */
#define WEBHOOK_URL_MAX	       2048 /* a registered notification URL */
#define WEBHOOK_TTL_DAYS       7    /* webhook_events.expires_at */

/*
 * The active secrets of one org and provider, newest first, as whsig wants
 * them. The strings live in the struct itself; webhook_secrets_clear()
 * wipes them.
 */
struct webhook_secrets {
	struct whsig_secret s[WEBHOOK_ACTIVE_SECRETS];
	size_t		    n;
	char secret[WEBHOOK_ACTIVE_SECRETS][BW_MAX_WEBHOOK_SECRET + 1];
	char url[WEBHOOK_ACTIVE_SECRETS][WEBHOOK_URL_MAX + 1];
};

/* What the first delivery of an event did (webhook_events.outcome). */
enum webhook_outcome {
	WO_PROCESSED, /* its effect was applied */
	WO_IGNORED,   /* a valid event of no interest */
	WO_DUPLICATE, /* its effect had been applied before (same anchor) */
	WO__MAX
};

/* The route name of a provider ("stripe", "square", "line", "sms"). */
const char *webhook_provider_name(enum whsig_provider);
/* "processed", "ignored", "duplicate"; "?" when out of range. */
const char *webhook_outcome_name(enum webhook_outcome);

/*
 * Loads the active secrets of org_id (a canonical UUID) for provider into
 * *out (overwritten). BW_ENOTFOUND when there are none (unknown org,
 * or no secret set); BW_EINVAL when org_id is not a UUID (nothing is
 * queried); a db error otherwise.
 */
enum bw_err webhook_secrets_get(struct db *, const char *org_id,
    enum whsig_provider, struct webhook_secrets		*out);
/* Wipes the secret bytes of s (OPENSSL_cleanse). NULL is fine. */
void webhook_secrets_clear(struct webhook_secrets *s);
/*
 * Adds secret (and url, may be NULL) as the newest active secret of org_id
 * for provider, then retires every active one but the newest
 * WEBHOOK_ACTIVE_SECRETS; setting the newest secret again only updates its
 * url. One transaction. *active (may be NULL) gets how many are active
 * now. BW_EINVAL when whsig_secret_check() refuses the pair or org_id is
 * not a UUID, BW_ENOTFOUND for an unknown org, else a db error.
 */
enum bw_err webhook_secret_set(struct db *, const char *org_id,
    enum whsig_provider, const char *secret, const char *url, int *active);

/*
 * Records the delivery of event_id (1..WEBHOOK_EVENT_ID_MAX bytes) inside
 * the caller's transaction (db_in_tx() must hold). *fresh = true when this
 * call inserted the row: the caller applies the event's effect in the same
 * transaction. false when the row exists (a redelivery; a concurrent one
 * waits here until the first commits or rolls back). BW_EINVAL on a bad
 * argument.
 */
enum bw_err
webhook_event_record_tx(struct db *, const char *org_id, enum whsig_provider,
    const char *event_id, const char *event_type, bool *fresh);
/* Sets the outcome of a row recorded in this transaction (not needed for
 * WO_PROCESSED, the default). */
enum bw_err webhook_event_outcome_tx(struct db *, const char *org_id,
    enum whsig_provider, const char *event_id, enum webhook_outcome);

/*
 * Applies one SMS delivery report inside the caller's transaction: the
 * row of (org_id, message_id) takes status when provider_ts_ms (the
 * provider's event time, unix ms) is newer than the stored one, or equal
 * with a later state. *applied tells whether the row changed.
 */
enum bw_err webhook_sms_status_tx(struct db *, const char *org_id,
    const char *message_id, const char *status, int64_t provider_ts_ms,
    const char *event_id, bool *applied);
/* Rank of an SMS status (queued 1, sent 2, delivered/undelivered/failed 3,
 * anything else 0). */
int webhook_sms_status_rank(const char *status);

/*
 * Inside the caller's transaction: webhook_anchor_lock_tx() takes a
 * transaction advisory lock on (org, grant anchor) so that the grant and
 * the refunds of one payment serialize; webhook_refunded_early_tx() tells
 * the grant path (*refunded) whether a refund remembered before partial
 * refunds (webhook_early_refunds, sql/0003; no longer written: a refund
 * before its grant is now a pending credit_refunds row) came first.
 */
enum bw_err webhook_anchor_lock_tx(struct db *, const char *org_id,
    const char *grant_anchor);
enum bw_err webhook_refunded_early_tx(struct db *, const char *org_id,
    const char *grant_anchor, bool *refunded);

/*
 * Verifies one delivery to org_id: h and body[0..len) against the active
 * secrets of org_id for p at now_s (unix seconds), as whsig_verify() with
 * the default tolerance. An unknown org, or an org_id that is not a UUID,
 * is verified against this process's random dummy secret (made once) and
 * its verdict becomes WV_INVALID_SIGNATURE unless it is WV_ERROR, so that
 * it answers exactly like a bad signature; *known tells which. Returns
 * BW_OK with *v, *known and, on WV_VALID and WV_STALE, *signed_ts; a db
 * error (the provider should retry); BW_ECRYPTO when no dummy secret could
 * be made; BW_EINVAL for a provider without a route.
 */
enum bw_err
webhook_verify(struct db *, const char *org_id, enum whsig_provider p,
    const struct whsig_headers *h, const void *body, size_t len, int64_t now_s,
    enum whsig_verdict *v, bool *known, int64_t *signed_ts);

/* What webhook_apply_tx() did with one event. */
struct webhook_result {
	enum webhook_outcome outcome; /* of its effect, as recorded */
	bool redelivered; /* recorded by an earlier delivery: nothing done */
};

/*
 * The effect of a WA_LINE event: queueing a chat turn is lib/chat's
 * (lib/chat/line_job.h), which lib/money may not include, so the caller
 * passes it in. webhook_apply_tx() calls it inside its transaction, right
 * after the event's row was inserted, so that the event and its job commit
 * together or not at all (exactly once). It sets *seen (false on entry)
 * when the event's permanent anchor (lib/chat/line_turn.h) shows that it
 * was handled before, i.e. a redelivery after the purge of its row: the
 * event is then a duplicate. A non-BW_OK return rolls the whole delivery
 * back.
 */
struct webhook_effects {
	enum bw_err (*line)(struct db *, const char *org_id,
	    const struct wh_event *ev, void *arg, bool *seen);
	/*
	 * SMS (lib/campaign/, which lib/money may not include): sms is
	 * called after a WA_SMS report was stored (applied or not), to move
	 * the recipient that has its message id; optout applies a WA_OPTOUT
	 * event (without it the event is ignored). NULL: none.
	 */
	enum bw_err (*sms)(struct db *, const char *org_id,
	    const struct wh_event *ev, void *arg);
	enum bw_err (*optout)(struct db *, const char *org_id,
	    const struct wh_event *ev, void *arg);
	void *arg;
};

/*
 * Records and applies the nev (at most WH_MAX_EVENTS) events of one
 * delivery to org_id from p, inside the caller's transaction, which
 * db_tx() may run again from the start. Per event: the webhook_events row
 * (webhook_event_record_tx()); when it already existed the event is a
 * redelivery and nothing else happens; else its effect: WA_GRANT grants
 * the credits under the anchor's lock, records the amount paid and applies
 * the refunds that came before it (a refund remembered before partial
 * refunds refuses the grant: ignored), WA_REFUND takes back its share of
 * the grant (credit_refund_tx(); duplicate when already applied, ignored
 * when remembered for a grant still to come or in another currency),
 * WA_SMS updates the delivery status, WA_LINE calls fx->line (duplicate
 * when it found the event's anchor), WA_IGNORE does nothing (ignored). An
 * outcome other than processed is stored on the row. A grant the ledger
 * refuses
 * (BW_EINVAL from credit_grant_tx()) is ignored, not an error: the event
 * stays recorded. Returns BW_OK with res[0..nev) filled (untouched on
 * failure), BW_EINVAL for a bad argument (a WA_LINE event without
 * fx->line included), or the db error that must roll the delivery back.
 */
enum bw_err webhook_apply_tx(struct db *, const char *org_id,
    enum whsig_provider p, const struct wh_event *ev, size_t nev,
    const struct webhook_effects *fx, struct webhook_result *res);
/*
 * webhook_apply_tx() in a transaction of its own (db_tx(), retried on
 * serialization failures); no transaction at all when nev is 0. A
 * delivery of one WA_GRANT event whose arguments the ledger accepts goes
 * first through bw_webhook_grant() (sql/0022_webhook_grant.sql): the same
 * steps, locks and outcomes in one statement, its own transaction; when
 * that finds refunds waiting for the grant (or a serialization failure)
 * it changes nothing and the general path runs. Returns as
 * webhook_apply_tx().
 */
enum bw_err webhook_apply(struct db *, const char *org_id,
    enum whsig_provider p, const struct wh_event *ev, size_t nev,
    const struct webhook_effects *fx, struct webhook_result *res);
/*
 * The outcome of a whole delivery for the reply: WO_PROCESSED when an
 * event was processed, WO_DUPLICATE when every event (at least one) was a
 * redelivery or a duplicate effect, else WO_IGNORED.
 */
enum webhook_outcome
webhook_delivery_outcome(const struct webhook_result *, size_t n);

/*
 * Deletes the webhook_events rows past expires_at, at most batch rows per
 * statement (each its own transaction, rows locked by another purge are
 * skipped), until a statement deletes fewer than batch. *n gets the total
 * deleted. Outside a transaction only.
 */
enum bw_err webhook_purge(struct db *, int batch, int64_t *n);

/*
 * Failed deliveries per org and UTC day (webhook_fail.c): counted in Redis
 * (one hash per org and day, kept WEBHOOK_FAIL_TTL_S) by the webhook
 * handler, only for an org that has secrets (a refused delivery to an
 * unknown org writes nothing), and read by the owner's overview.
 */
#define WEBHOOK_FAIL_TTL_S (3 * 86400)
enum webhook_fail {
	WF_SIGNATURE, /* refused: bad or missing signature */
	WF_STALE,     /* refused: signed too long ago */
	WF_BODY,      /* verified, but not JSON or no usable events */
	WF_ERROR,     /* our failure (5xx): the provider retries */
	WF__MAX
};
/* "signature", "stale", "body", "error"; "?" out of range. */
const char *webhook_fail_name(enum webhook_fail);
/* Counts one failure of p for org_id today. BW_EINVAL, BW_EREDIS. */
enum bw_err webhook_fail_note(struct rds *, const char *org_id,
    enum whsig_provider p, enum webhook_fail why);
/*
 * Today's failures of org_id (UTC day) as a new object (caller puts):
 * {"day", "total", "by":[{"provider", "reason", "count"}]} sorted by
 * provider and reason. BW_EINVAL, BW_EREDIS.
 */
enum bw_err
webhook_fail_today(struct rds *, const char *org_id, struct json_object **out);

#endif
