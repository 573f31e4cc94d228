/* SPDX-License-Identifier: MIT */
/*
 * The run step of a "chat_line" job (bulwark-chat): the payload the LINE
 * webhook queued once per event -> the org's own LINE channel token (none:
 * terminal, nothing sent) -> the chat path (channel "line", user = the
 * LINE userId) once, its answer or the org's fallback text stored in the
 * event's line_turns row -> that answer posted to the LINE reply API
 * (lib/chat/line.h); a retry after a failed reply only replies again.
 */
#ifndef BW_LINE_WORKER_H
#define BW_LINE_WORKER_H

#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"
#include "platform/jobq.h"
#include "platform/worker.h"

/* This process's Redis, LLM and HTTP clients, opened on first use. */
struct line_worker;

/* NULL on ENOMEM; line_worker_free(NULL) does nothing. */
struct line_worker *line_worker_new(void);
void		    line_worker_free(struct line_worker *);
/*
 * Runs one chat_line job (a worker_fn with the process's clients): BW_OK
 * when the reply was delivered (or the turn was final already); otherwise
 * an error with errmsg set and *permanent when a retry cannot help (bad
 * payload, and every terminal outcome of lib/chat/line_turn.h: no channel
 * token, a reply or channel token LINE refused, no answer, the reply's
 * retries spent).
 */
enum bw_err line_worker_run(struct line_worker *, struct worker_ctx *,
    struct jobq_job *, bool *permanent, char *errmsg, size_t errlen);

#endif
