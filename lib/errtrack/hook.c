/* SPDX-License-Identifier: MIT */
/*
 * The worker loop's hook (worker_on_dead() of lib/platform/worker.h): a
 * job that went dead is an occurrence of kind job_failure, site
 * "job:{queue}", code JOB_DEAD, its last error as the message, its org and
 * correlation id. Recording errors are logged, never raised: the worker
 * goes on.
 */
#include <stdio.h>

#include "core/log.h"
#include "errtrack/errtrack.h"

void
errtrack_worker_dead(struct worker_ctx *w, const struct jobq_job *job,
    const char *error)
{
	struct errtrack_event  ev;
	struct errtrack_result res;
	char		       site[96];
	enum bw_err	       er;

	snprintf(site, sizeof(site), "job:%s", job->queue);
	ev.kind = EK_JOB_FAILURE;
	ev.org_id = job->org_id;
	ev.code = "JOB_DEAD";
	ev.site = site;
	ev.message = error;
	ev.request_id = NULL;
	ev.correlation_id = job->correlation_id;
	er = errtrack_record(w->db, &ev,
	    w->cfg->tracker_base_url != NULL &&
		w->cfg->tracker_base_url[0] != '\0',
	    &res);
	if (er != BW_OK)
		log_kv(LL_WARN, "error tracking: cannot record a dead job",
		    "queue", job->queue, "error", bw_strerror(er), NULL);
}
