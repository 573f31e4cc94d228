/* SPDX-License-Identifier: MIT */
/*
 * bulwark-sms: the long-running SMS campaign sender (systemd unit
 * bulwark-sms@N.service; run several, on one host or many). It claims the
 * batch jobs of the "sms" queue (and the start jobs of scheduled campaigns) and runs each in lib/campaign/sender.c:
 * send every pending recipient through the provider's API
 * (sms_base_url, sms_api_key), record the message ids, capture the
 * batch's credits once.
 */
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "campaign/campaign.h"
#include "core/http.h"
#include "core/rds.h"
#include "errtrack/errtrack.h"
#include "platform/worker.h" /* brings lib/core/config.h, not the build's config.h */

/* This process's HTTP client (keep-alive to the provider) and its Redis
 * connection (the org's send rate across every sender). */
static struct http_client *w_sms_http;
static struct rds	  *w_sms_rds;

/*
 * The start job of a scheduled campaign (key campaign:{id}:start, payload
 * {"org_id","campaign_id","start":true}), runnable at its send_at.
 */
static enum bw_err
w_sms_start(struct worker_ctx *w, struct jobq_job *job, bool *permanent,
    char *errmsg, size_t errlen)
{
	struct json_object   *o = json_tokener_parse(job->payload), *org, *id;
	enum campaign_outcome oc = CAMP_OK;
	bool		      started = false;
	enum bw_err	      er;

	if (o == NULL || !json_object_object_get_ex(o, "org_id", &org) ||
	    !json_object_object_get_ex(o, "campaign_id", &id)) {
		json_object_put(o);
		*permanent = true;
		snprintf(errmsg, errlen, "bad payload");
		return BW_EINVAL;
	}
	er = campaign_start_due(w->db, json_object_get_string(org),
	    json_object_get_string(id), w->cfg->reservation_ttl_s, &started,
	    &oc);
	json_object_put(o);
	if (er == BW_OK && oc == CAMP_INSUFFICIENT) {
		snprintf(errmsg, errlen, "insufficient credits");
		return BW_ESTATE; /* retried with backoff */
	}
	return er;
}

/* One job: one batch, or a scheduled start. See worker_fn in worker.h. */
static enum bw_err
w_sms_run(struct worker_ctx *w, struct jobq_job *job, bool *permanent,
    char *errmsg, size_t errlen)
{
	static struct campaign_sender s; /* keeps the pacing clock */
	size_t			      kl = strlen(job->job_key);

	if (kl > 6 && strcmp(job->job_key + kl - 6, ":start") == 0)
		return w_sms_start(w, job, permanent, errmsg, errlen);

	s.db = w->db;
	s.http = w_sms_http;
	s.base_url = w->cfg->sms_base_url;
	s.api_key = w->cfg->sms_api_key;
	s.callback_base = w->cfg->sms_callback_base_url;
	if (w_sms_rds == NULL && w->cfg->redis_url[0] != '\0')
		w_sms_rds = rds_new_cfg(w->cfg);
	s.rds = w_sms_rds;
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
	rds_free(w_sms_rds);
	http_client_free(w_sms_http);
	http_global_cleanup();
	return rc;
}
