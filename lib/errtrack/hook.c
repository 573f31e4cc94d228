/* SPDX-License-Identifier: MIT */
/*
 * The workers' hooks (lib/platform/worker.h): a job that went dead
 * (worker_on_dead()) is an occurrence of kind job_failure, site
 * "job:{queue}", code JOB_DEAD, its last error as the message, its org and
 * correlation id; a oneshot's failed periodic run (worker_on_run_failed())
 * is one of kind job_failure, site "periodic:{job}", code RUN_FAILED.
 * Recording errors are logged, never raised: the worker goes on.
 */
#include <stdio.h>
#include <string.h>

#include "core/db.h"
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

void
errtrack_run_failed(const struct config *cfg, const char *job, enum bw_err er)
{
	struct errtrack_event  ev;
	struct errtrack_result res;
	struct db	      *db;
	char		       site[96], msg[160];
	enum bw_err	       rer;

	snprintf(site, sizeof(site), "periodic:%s", job);
	snprintf(msg, sizeof(msg), "periodic run of %s failed: %s", job,
	    bw_strerror(er));
	memset(&ev, 0, sizeof(ev));
	ev.kind = EK_JOB_FAILURE;
	ev.code = "RUN_FAILED";
	ev.site = site;
	ev.message = msg;
	/* Its own session: the run's are closed by now. */
	db = db_new(cfg->database_url);
	rer = db == NULL ? BW_ENOMEM : db_connect(db);
	if (rer == BW_OK)
		rer = errtrack_record(db, &ev,
		    cfg->tracker_base_url != NULL &&
			cfg->tracker_base_url[0] != '\0',
		    &res);
	db_free(db);
	if (rer != BW_OK)
		log_kv(LL_WARN, "error tracking: cannot record a failed run",
		    "job", job, "error", bw_strerror(rer), NULL);
}
