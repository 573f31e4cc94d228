/* SPDX-License-Identifier: MIT */
/*
 * The "chat_line" job, defined once: the LINE webhook (fcgi/h_webhooks.c)
 * queues one per text message event, inside the transaction that records
 * the event (exactly once), and the LINE chat worker (workers/w_chat.c)
 * runs it. The job key is "line:<org_id>:<webhookEventId>"; the payload is
 * the JSON object
 *
 *	{"org_id":"<uuid>","user_id":"<LINE userId>","reply_token":"<token>",
 *	 "text":"<message text>","event_id":"<webhookEventId>"}
 *
 * (docs/api/webhooks.md). This module builds and parses that text only;
 * what the job does is the worker's.
 */
#ifndef BW_LINE_JOB_H
#define BW_LINE_JOB_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#include "core/db.h"
#include "core/err.h"

#define LINE_JOB_QUEUE	   "chat_line"
#define LINE_JOB_MAX_DEPTH 4 /* nesting line_job_parse() accepts */

/*
 * One chat turn of a LINE user. For line_job_enqueue() the caller owns the
 * strings; after line_job_parse() they point into root, which
 * line_job_clear() puts.
 */
struct line_job {
	const char	   *org_id;
	const char	   *user_id;	 /* LINE source.userId */
	const char	   *reply_token; /* LINE replyToken */
	const char	   *text;	 /* the user's message */
	const char	   *event_id;	 /* LINE webhookEventId */
	struct json_object *root;	 /* parsed payload, or NULL */
};

/*
 * Writes the job key "line:<org_id>:<event_id>" into key[size]. Returns
 * BW_OK, or BW_EINVAL when an argument is NULL or the key would not fit
 * in size bytes or BW_MAX_JOB_KEY characters.
 */
enum bw_err
line_job_key(const char *org_id, const char *event_id, char *key, size_t size);
/*
 * The payload text of j (every string of j but root required) in a
 * malloc'd string *out the caller frees. Returns BW_OK, BW_EINVAL when a
 * string is NULL, BW_ENOMEM.
 */
enum bw_err line_job_payload(const struct line_job *j, char **out);
/*
 * Inserts the event's permanent anchor (line_turn_anchor(),
 * lib/chat/line_turn.h) and, when it is new, queues j on LINE_JOB_QUEUE
 * under its job key (jobq_enqueue(); a second call for the same event
 * finds the first job): *queued tells. An event anchored before, even one
 * whose job and webhook_events row were purged since, queues nothing.
 * Called inside the transaction that records the LINE event, so that the
 * event, its anchor and its job commit together. Returns BW_OK, BW_EINVAL
 * (bad job, key too long), BW_ENOMEM or a db error.
 */
enum bw_err
line_job_enqueue(struct db *, const struct line_job *j, bool *queued);
/*
 * Parses a job's payload text into *out (overwritten; line_job_clear()
 * releases it): org_id, user_id, reply_token and text must be strings,
 * user_id and text non-empty, user_id at most CHAT_MAX_USER characters;
 * event_id defaults to job_id (may be NULL) when absent. Returns BW_OK, or
 * BW_EINVAL with *why (may be NULL) set to a static reason fit for the
 * job's error column: "payload is not a JSON object" or "payload lacks
 * org_id, user_id, reply_token or text". BW_ENOMEM is reported as the
 * first. *out is untouched on failure.
 */
enum bw_err line_job_parse(const char *payload, const char *job_id,
    struct line_job *out, const char **why);
/* Puts the parsed payload of j and forgets its strings. NULL is fine. */
void line_job_clear(struct line_job *j);

#endif
