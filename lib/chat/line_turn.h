/* SPDX-License-Identifier: MIT */
/*
 * LINE chat turns (tables line_turns, line_turn_counts): one row per LINE
 * message event, the event's permanent anchor and the stored steps of its
 * chat turn.
 *
 *	queued --answer stored--> answered --reply accepted--> replied
 *	   |                         |
 *	   +------- terminal --------+--> failed (outcome says why)
 *
 * The webhook inserts the row in the transaction that queues the event's
 * chat_line job (lib/chat/line_job.h); the row is never purged, so a
 * redelivery of the same webhookEventId after the 7-day purge of
 * webhook_events finds it and queues nothing. The worker
 * (lib/chat/line_worker.c) stores the generated answer once and then
 * retries only the reply with it, so a failed reply never calls the model
 * again. Final outcomes and reply retries are counted in line_turn_counts in
 * the same statement that records them (exactly once, cluster-wide), and
 * GET /metrics renders them (line_turn_prom()).
 */
#ifndef BW_LINE_TURN_H
#define BW_LINE_TURN_H

#include <stdbool.h>

#include "core/buf.h"
#include "core/db.h"
#include "core/err.h"

enum line_turn_state {
	LTS_QUEUED,   /* no answer yet */
	LTS_ANSWERED, /* answer stored, reply pending */
	LTS_REPLIED,  /* final: LINE accepted the reply */
	LTS_FAILED,   /* final: see the outcome */
	LTS__MAX
};

/* How a turn ended (line_turns.outcome, the metric label). */
enum line_turn_outcome {
	LTO_DELIVERED,		   /* 2xx from the reply API */
	LTO_REPLY_TOKEN_INVALID,   /* 400: reply token expired or used */
	LTO_CHANNEL_TOKEN_REFUSED, /* 401/403: the org's channel token */
	LTO_NO_CHANNEL_TOKEN,	   /* the org has none: nothing sent */
	LTO_REJECTED,		   /* another 4xx (not 429), a bad call */
	LTO_RETRIES_EXHAUSTED,	   /* 429/5xx/transport until the last try */
	LTO_NO_ANSWER,		   /* unknown org, a model without a price,
				      no LLM slot until the last try */
	LTO__MAX
};

/* A turn as the worker reads it. */
struct line_turn {
	enum line_turn_state state;
	char		    *answer; /* owned; set in LTS_ANSWERED */
	int		     reply_attempts;
};

/* "queued", "answered", "replied", "failed"; "?" out of range. */
const char *line_turn_state_name(enum line_turn_state);
/* "delivered", "reply_token_invalid", ...; "?" out of range. */
const char *line_turn_outcome_name(enum line_turn_outcome);
/* The terminal outcome of a refused reply with this HTTP status (4xx). */
enum line_turn_outcome line_turn_refusal(int status);

/*
 * Inserts the anchor row (state queued) of org_id's event_id unless it
 * exists: *fresh tells. Inside the caller's transaction when there is one
 * (the webhook's), else on its own. BW_EINVAL on a bad argument.
 */
enum bw_err line_turn_anchor(struct db *, const char *org_id,
    const char *event_id, bool *fresh);
/*
 * Reads the turn of org_id's event_id into *out (line_turn_clear()).
 * BW_ENOTFOUND when there is none (a job queued before the table existed).
 */
enum bw_err line_turn_get(struct db *, const char *org_id, const char *event_id,
    struct line_turn *out);
void	    line_turn_clear(struct line_turn *);
/*
 * queued -> answered with answer (its first LINE_MAX_TEXT characters, what
 * the reply sends) and the chat path's outcome name. *stored = false
 * when the turn was not queued any more (another run got there first).
 */
enum bw_err
line_turn_answer(struct db *, const char *org_id, const char *event_id,
    const char *answer, const char *chat_outcome, bool *stored);
/* Counts one failed reply attempt that will be retried (last_status). */
enum bw_err line_turn_retry(struct db *, const char *org_id,
    const char *event_id, int status);
/*
 * Makes a queued or answered turn final with outcome (replied for
 * LTO_DELIVERED, else failed), drops its answer text and counts the
 * outcome once. *done = false when it was final already (nothing
 * counted). status: the reply API's last HTTP status, 0 for none.
 */
enum bw_err
line_turn_finish(struct db *, const char *org_id, const char *event_id,
    enum line_turn_outcome outcome, int status, bool *done);
/*
 * Appends bulwark_line_turns_total{outcome} and
 * bulwark_line_reply_retries_total (cluster-wide, from line_turn_counts)
 * in the Prometheus text format.
 */
enum bw_err line_turn_prom(struct db *, struct buf *out);

#endif
