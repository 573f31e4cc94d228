/* SPDX-License-Identifier: MIT */
/*
 * bulwark-errtrack: the error tracker's filer (systemd unit
 * bulwark-errtrack@N.service). It claims the jobs of the "errtrack" queue
 * and runs each in lib/errtrack/file.c: a new error group's issue, or a
 * comment when a group's count passed 10, 100 or 1,000, through the
 * GitHub-style issues API at tracker_base_url (tracker_token,
 * tracker_repo). A failed attempt is retried with the job queue's backoff.
 */
#include <stdio.h>

#include "core/http.h"
#include "errtrack/errtrack.h"
#include "platform/worker.h" /* brings lib/core/config.h, not the build's config.h */

/* This process's HTTP client (keep-alive to the tracker). */
static struct http_client *w_errtrack_http;

/* One job: one issue or one comment. See worker_fn in worker.h. */
static enum bw_err
w_errtrack_run(struct worker_ctx *w, struct jobq_job *job, bool *permanent,
    char *errmsg, size_t errlen)
{
	struct errtrack_tracker t;

	t.db = w->db;
	t.http = w_errtrack_http;
	t.base_url = w->cfg->tracker_base_url;
	t.token = w->cfg->tracker_token;
	t.repo = w->cfg->tracker_repo;
	t.timeout_ms = w->cfg->tracker_timeout_ms;
	t.attempt = job->attempts;
	return errtrack_job_run(&t, job->payload, permanent, errmsg, errlen);
}

int
main(int argc, char **argv)
{
	static const struct worker_def def = {
		.service = "bulwark-errtrack",
		.queue = ERRTRACK_QUEUE,
		.run = w_errtrack_run,
		.lease_s = 0, /* config job_lease_s */
	};
	int rc;

	if (http_global_init() != BW_OK) {
		fprintf(stderr,
		    "bulwark-errtrack: cannot initialise libcurl\n");
		return 1;
	}
	w_errtrack_http = http_client_new();
	if (w_errtrack_http == NULL) {
		fprintf(stderr, "bulwark-errtrack: out of memory\n");
		http_global_cleanup();
		return 1;
	}
	/* Its own dead jobs are errors too (the tracker refused a token,
	 * say): counted in a group, filed once the tracker works. */
	worker_on_dead(errtrack_worker_dead);
	rc = worker_main(&def, argc, argv);
	http_client_free(w_errtrack_http);
	http_global_cleanup();
	return rc;
}
