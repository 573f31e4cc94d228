/* SPDX-License-Identifier: MIT */
/*
 * SMS campaigns (docs/api/campaigns.md; tables campaigns,
 * campaign_recipients, campaign_batches, sms_opt_outs, campaign_counts in
 * sql/0025): a shop sends one text to up to 100,000 numbers, pays one
 * credit per message the provider accepted, never sends one recipient two
 * messages and never debits one message twice.
 *
 *   e164.c      numbers: normalisation and validation, the recipient list
 *   campaign.c  create, get, list, cancel, and the settlement of a campaign
 *   optout.c    the org's opted-out numbers (API and inbound STOP)
 *   send.c      POST /send: one credit reservation keyed campaign:{id},
 *               one job per batch keyed campaign:{id}:batch:{n}
 *   sender.c    one batch job (bulwark-sms): send, record, capture
 *   dlr.c       delivery reports applied to recipients
 *   reconcile.c stuck campaigns (bulwark-reconcile)
 *   metrics.c   cluster-wide counters and the /metrics series
 *
 * Recipient states: pending -> sent (accepted; has the provider's message
 * id) -> delivered | undelivered | failed; pending -> failed (permanent
 * refusal, no message id; its credit returns) | opted_out | canceled. The
 * recipient row's id is the provider's client_reference, so a message
 * resent after a crash is the same message to the provider.
 * Campaign states: draft | scheduled -> sending -> completed; draft |
 * scheduled | sending -> canceled. A scheduled campaign (send_at) starts
 * by its start job at send_at, or at once by POST /send.
 */
#ifndef BW_CAMPAIGN_H
#define BW_CAMPAIGN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "core/buf.h"
#include "core/db.h"
#include "core/err.h"
#include "core/http.h"

struct rds;

#define CAMPAIGN_QUEUE		"sms"		  /* the batch jobs' queue */
#define CAMPAIGN_MAX_RECIPIENTS 100000		  /* per campaign */
#define CAMPAIGN_MAX_NAME	200		  /* characters */
#define CAMPAIGN_MAX_MESSAGE	1600		  /* characters */
#define CAMPAIGN_MAX_BODY	(4 * 1024 * 1024) /* POST /campaigns */
#define CAMPAIGN_E164_MAX	16		  /* "+" 15 digits */
#define CAMPAIGN_PHONE_IN_MAX	32  /* a number as given, characters */
#define CAMPAIGN_LIST_MAX	100 /* GET /campaigns limit */
#define CAMPAIGN_SEND_AT_MAX_S	(366LL * 86400) /* send_at ahead */
#define CAMPAIGN_USER_DEFAULT	"org"		/* the credit account paying */

/* ---- e164.c -------------------------------------------------------- */

/*
 * Normalises a number as written ("+66 81-234 5678", "0066812345678",
 * "(+66) 812345678") to E.164 ("+66812345678"): a leading "+" or "00",
 * then digits, spaces, '-', '.', '(' and ')' ignored; 7 to 15 digits, the
 * first not 0. Returns NULL with out filled, or the problem:
 * "invalid_format", "too_short", "too_long".
 */
const char *e164_normalize(const char *in, char out[CAMPAIGN_E164_MAX + 1]);

/* A validated, normalised, sorted, deduplicated recipient list. */
struct campaign_numbers {
	char (*num)[CAMPAIGN_E164_MAX + 1];
	size_t n;
	size_t duplicates; /* entries removed as duplicates */
};
/*
 * From a JSON array of strings: each entry normalised; every bad one
 * becomes a {"field":"recipients[i]","problem":...} entry of *problems
 * (a new array, at most BW_MAX_FIELD_PROBLEMS) and BW_EINVAL is returned.
 * BW_OK with out filled (campaign_numbers_free()).
 */
enum bw_err campaign_numbers_from_json(struct json_object *arr,
    struct campaign_numbers *out, struct json_object **problems);
void	    campaign_numbers_free(struct campaign_numbers *);

/* ---- campaign.c ---------------------------------------------------- */

struct campaign_new {
	const char		      *org_id;
	const char		      *name;
	const char		      *message;
	const char		      *user_id;	    /* NULL: "org" */
	const char		      *send_at;	    /* RFC 3339 or NULL */
	const char		      *request_key; /* Idempotency-Key SHA */
	int			       batch_size;
	const struct campaign_numbers *numbers;
};
struct campaign_created {
	char	id[37];
	int64_t recipients, duplicates_removed, opted_out;
};
/*
 * Creates a draft campaign and its recipients (numbers of the org's
 * opt-out list start as opted_out) in one transaction (joins the
 * caller's). BW_EEXISTS when request_key already created one.
 */
enum bw_err campaign_create(struct db *, const struct campaign_new *,
    struct campaign_created *out);
/* The campaign as GET /campaigns/{id} shows it. BW_ENOTFOUND (another
 * org's, unknown or not a UUID). */
enum bw_err campaign_get(struct db *, const char *org_id, const char *id,
    struct json_object **out);
/*
 * One page, newest first: {"campaigns":[...],"next_cursor":id|null};
 * cursor NULL or the last id of the previous page. BW_EINVAL for a cursor
 * that names no campaign of the org.
 */
enum bw_err campaign_list(struct db *, const char *org_id, int limit,
    const char *cursor, struct json_object **out);

enum campaign_outcome {
	CAMP_OK,
	CAMP_NOT_FOUND,
	CAMP_WRONG_STATE,  /* cancel of a finished campaign */
	CAMP_INSUFFICIENT, /* send: the reservation could not be made */
	CAMP__MAX
};
/*
 * Cancels a draft or sending campaign: pending recipients -> canceled,
 * batches not started -> canceled; a batch being sent stops at its next
 * recipient and captures what it sent; once none is in flight the rest of
 * the reservation is released. *out the campaign (campaign_get()).
 */
enum bw_err campaign_cancel(struct db *, const char *org_id, const char *id,
    struct json_object **out, enum campaign_outcome *oc);
/*
 * Inside the caller's transaction, with the campaign row locked: when no
 * batch is queued or sending, releases what is left of the reservation
 * and finishes the campaign (sending -> completed; canceled keeps its
 * status). *settled: the campaign is finished (now or before).
 */
enum bw_err campaign_settle_tx(struct db *, const char *org_id, const char *id,
    bool *settled);

/* ---- optout.c ------------------------------------------------------ */

/*
 * Adds phone (normalised first) to the org's opt-outs (source "api" or
 * "inbound") and marks its pending recipients opted_out. *created false
 * when it was there. BW_EINVAL for a number that is not E.164. The _tx
 * form runs in the caller's transaction (the inbound webhook's).
 */
enum bw_err campaign_optout_add(struct db *, const char *org_id,
    const char *phone, const char *source, bool *created);
enum bw_err campaign_optout_add_tx(struct db *, const char *org_id,
    const char *phone, const char *source, bool *created);

/* ---- send.c -------------------------------------------------------- */

/*
 * POST /campaigns/{id}/send: for a draft, in one transaction: pending
 * recipients already opted out are marked, one reservation of one credit
 * per pending recipient keyed "campaign:{id}" (CAMP_INSUFFICIENT when the
 * account cannot), one batch row and one job per batch keyed
 * "campaign:{id}:batch:{n}", status sending. For a campaign already past
 * draft, nothing changes (*started false). reservation_ttl_s for the
 * reservation. *out the campaign with "batches".
 */
enum bw_err campaign_send(struct db *, const char *org_id, const char *id,
    int reservation_ttl_s, struct json_object **out, bool *started,
    enum campaign_outcome *oc);
/*
 * The start of a campaign created with send_at: one job keyed
 * "campaign:{id}:start" in the campaign queue, runnable delay_s from now
 * (joins the caller's transaction). *created whether new.
 */
enum bw_err campaign_start_enqueue(struct db *, const char *org_id,
    const char *id, int delay_s, bool *created);
/*
 * The start job's work: starts the campaign as campaign_send() does, only
 * while it is still 'scheduled' (a POST /send or a cancel before send_at
 * leaves nothing to do: *started false, CAMP_OK). CAMP_INSUFFICIENT when
 * the credits cannot be reserved: the reason is kept in start_error and
 * the caller retries later.
 */
enum bw_err campaign_start_due(struct db *, const char *org_id, const char *id,
    int reservation_ttl_s, bool *started, enum campaign_outcome *oc);
/* Enqueues (or finds) the job of batch n; *created whether new. */
enum bw_err campaign_batch_enqueue(struct db *, const char *org_id,
    const char *id, int n, bool *created);

/* ---- sender.c ------------------------------------------------------ */

struct campaign_sender {
	struct db	   *db;
	struct http_client *http;
	const char	   *base_url;	   /* sms_base_url */
	const char	   *api_key;	   /* sms_api_key */
	const char	   *callback_base; /* "" or Bulwark's public URL */
	struct rds	   *rds;  /* shared pacing; NULL: per process */
	int		    rate; /* messages/s per org (all senders) */
	int		    attempt_timeout_ms;
	int		    max_retries;
	int		    backoff_base_ms;
	int		    window; /* recipients per round trip (sms_window) */
	int (*stopping)(void);
	int64_t last_send_ms; /* pacing without Redis */
	bool	rds_warned;   /* the fallback was logged */
};
/*
 * Runs one batch job (payload {"org_id","campaign_id","batch"}): each
 * pending recipient without a message id, not opted out at that moment,
 * of a campaign still sending, is POSTed with its row id as
 * client_reference; the message id is recorded (and a report that came
 * first applied); a permanent refusal marks it failed. Then, once per
 * batch (key campaign:{id}:batch:{n}), the accepted messages are
 * captured from the reservation and the refused ones' credits returned.
 * BW_OK when done; an error (*permanent for a bad payload) to retry.
 */
enum bw_err campaign_batch_run(struct campaign_sender *, const char *payload,
    bool *permanent, char *errmsg, size_t errlen);
/*
 * Inside the caller's transaction: captures batch n's accepted messages
 * and returns its refused ones' credits (once, by key), marks it done and
 * settles the campaign when it was the last. The campaign row must be
 * locked by the caller.
 */
enum bw_err campaign_batch_finish_tx(struct db *, const char *org_id,
    const char *id, int n, const char *reservation_id, int batch_size);

/* ---- dlr.c --------------------------------------------------------- */

/*
 * Inside the caller's transaction: applies the org's stored delivery
 * status of message_id (sms_deliveries) to the recipient that has it, if
 * any: sent -> delivered | undelivered | failed; never back. *changed
 * tells. Called for each report and when a send records its message id.
 */
enum bw_err campaign_dlr_apply_tx(struct db *, const char *org_id,
    const char *message_id, bool *changed);
/*
 * The record of a message id (sender.c) and the apply of its report
 * serialize on the advisory lock (CAMPAIGN_LOCK_MSG, db_lock_key(org,
 * message id)); see sql/0031_sms_record.sql.
 */
#define CAMPAIGN_LOCK_MSG 0x42570025

/* ---- reconcile.c --------------------------------------------------- */

struct campaign_reconcile_result {
	int found;     /* stuck campaigns looked at */
	int completed; /* all terminal: finished */
	int requeued;  /* batch jobs enqueued anew */
	int dead;      /* batches whose job is dead */
};
/*
 * Campaigns sending with no progress for stuck_after_s: each recomputed
 * in a transaction of its own (campaign row locked, so two runs at once
 * do the work once): batches with no pending recipient are finished;
 * when none is left the campaign settles (completed, the rest released);
 * else each unfinished batch's job is enqueued by its key (a new one only
 * when it is missing). Every decision is logged and counted.
 */
enum bw_err campaign_reconcile(struct db *, int stuck_after_s,
    struct campaign_reconcile_result *out);

/*
 * One org's stuck campaigns (sending, no progress for stuck_after_s), as
 * a new object (caller puts): {"count", "stuck_after_s", "campaigns":
 * [{"id", "name", "since"}] (the limit longest stuck, since = the last
 * progress)}. BW_EINVAL for a bad org id or limit.
 */
enum bw_err campaign_stuck_org(struct db *, const char *org_id,
    int stuck_after_s, int limit, struct json_object **out);

/* ---- metrics.c ----------------------------------------------------- */

/* Adds n to the cluster-wide counter (name, label) (own statement). */
enum bw_err
campaign_count_add(struct db *, const char *name, const char *label, int64_t n);
/* Appends the campaign series to out (/metrics). */
enum bw_err campaign_prom(struct db *, int stuck_after_s, struct buf *out);

#endif
