/* SPDX-License-Identifier: MIT */
/*
 * bulwark-sms: the long-running SMS campaign sender (systemd unit
 * bulwark-sms@N.service; run several, on one host or many). It claims the
 * batch jobs of the "sms" queue and runs each in lib/campaign/sender.c:
 * send every pending recipient through the provider's API
 * (sms_base_url, sms_api_key), record the message ids, capture the
 * batch's credits once.
 */
#include <stdio.h>

#include "campaign/campaign.h"
#include "core/http.h"
#include "errtrack/errtrack.h"
#include "platform/worker.h" /* brings lib/core/config.h, not the build's config.h */

/* This process's HTTP client (keep-alive to the provider). */
static struct http_client *w_sms_http;

/* One job: one batch. See worker_fn in worker.h. */
static enum bw_err
w_sms_run(struct worker_ctx *w, struct jobq_job *job, bool *permanent,
    char *errmsg, size_t errlen)
{
	static struct campaign_sender s; /* keeps the pacing clock */

	s.db = w->db;
	s.http = w_sms_http;
	s.base_url = w->cfg->sms_base_url;
	s.api_key = w->cfg->sms_api_key;
	s.callback_base = w->cfg->sms_callback_base_url;
	s.rate = w->cfg->sms_send_rate;
	s.attempt_timeout_ms = w->cfg->sms_attempt_timeout_ms;
	s.max_retries = w->cfg->sms_max_retries;
	s.backoff_base_ms = w->cfg->sms_backoff_base_ms;
	s.stopping = worker_stopping;
	return campaign_batch_run(&s, job->payload, permanent, errmsg, errlen);
}

int
main(int argc, char **argv)
{
	static const struct worker_def def = {
		.service = "bulwark-sms",
		.queue = CAMPAIGN_QUEUE,
		.run = w_sms_run,
		.lease_s = 0, /* config job_lease_s */
	};
	int rc;

	if (http_global_init() != BW_OK) {
		fprintf(stderr, "bulwark-sms: cannot initialise libcurl\n");
		return 1;
	}
	w_sms_http = http_client_new();
	if (w_sms_http == NULL) {
		fprintf(stderr, "bulwark-sms: out of memory\n");
		http_global_cleanup();
		return 1;
	}
	worker_on_dead(errtrack_worker_dead); /* dead jobs: error groups */
	rc = worker_main(&def, argc, argv);
	http_client_free(w_sms_http);
	http_global_cleanup();
	return rc;
}
