/* SPDX-License-Identifier: MIT */
/*
 * bulwark-export: the long-running export worker (systemd unit
 * bulwark-worker@export.service). It claims jobs of the "export" queue,
 * whose per-org cap (3, the job's cap_key = org id) holds across every
 * worker process and host, and runs one export attempt per job
 * (lib/evidence/export_run.c, export_build.c): build the deterministic tar,
 * rename it into place, mark the export ready; failures are classified and
 * retried with the queue's backoff until the third one fails the export
 * for good.
 */
#include <stdio.h>

#include "evidence/export.h"
#include "core/log.h"
#include "errtrack/errtrack.h"
#include "platform/worker.h"

/* One job: one export attempt. See worker_fn in worker.h. */
static enum bw_err
w_export_run(struct worker_ctx *ctx, struct jobq_job *job, bool *permanent,
    char *errmsg, size_t errlen)
{
	enum export_category cat = EC_INTERNAL;

	return export_run(ctx->db, ctx->cfg->storage_dir, job, ctx->name,
	    worker_stopping, ctx->cfg->export_file_pause_ms, &cat, permanent,
	    errmsg, errlen);
}

static const struct worker_def w_export_def = {
	.service = "bulwark-export",
	.queue = EXPORT_QUEUE,
	.run = w_export_run,
	.lease_s = 0, /* config job_lease_s */
};

int
main(int argc, char **argv)
{
	worker_on_dead(errtrack_worker_dead); /* dead jobs: error groups */
	return worker_main(&w_export_def, argc, argv);
}
