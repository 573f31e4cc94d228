/* SPDX-License-Identifier: MIT */
/*
 * bulwark-chat: the long-running LINE chat worker. It consumes the
 * "chat_line" jobs the LINE webhook queues once per event; each runs in
 * lib/chat/line_worker.c (the chat path, then the LINE reply API).
 */
#include <stdio.h>

#include "chat/line_job.h"
#include "chat/line_worker.h"
#include "core/http.h"
#include "errtrack/errtrack.h"
#include "platform/worker.h" /* brings lib/core/config.h, not the build's config.h */

/* This process's clients; their connections open on first use. */
static struct line_worker *w_chat_lw;

static enum bw_err
w_chat_run(struct worker_ctx *w, struct jobq_job *job, bool *permanent,
    char *errmsg, size_t errlen)
{
	return line_worker_run(w_chat_lw, w, job, permanent, errmsg, errlen);
}

int
main(int argc, char **argv)
{
	static const struct worker_def def = {
		.service = "bulwark-chat",
		.queue = LINE_JOB_QUEUE,
		.run = w_chat_run,
		.lease_s = 0,
	};
	int rc;

	if (http_global_init() != BW_OK) {
		fprintf(stderr, "bulwark-chat: cannot initialise libcurl\n");
		return 1;
	}
	w_chat_lw = line_worker_new();
	if (w_chat_lw == NULL) {
		fprintf(stderr, "bulwark-chat: out of memory\n");
		http_global_cleanup();
		return 1;
	}
	worker_on_dead(errtrack_worker_dead); /* dead jobs: error groups */
	rc = worker_main(&def, argc, argv);
	line_worker_free(w_chat_lw);
	http_global_cleanup();
	return rc;
}
