/* SPDX-License-Identifier: MIT */
/*
 * bulwark-maint: the queue maintenance oneshot, started by a systemd timer
 * on every host. Once per 60 s slot cluster-wide it requeues jobs whose
 * lease expired and purges finished jobs past the retention.
 */
#include <stdio.h>

#include "chat/block.h"
#include "chat/budget.h"
#include "platform/jobq.h"
#include "core/log.h"
#include "errtrack/errtrack.h"
#include "platform/periodic.h"
#include "platform/worker.h" /* brings lib/core/config.h, not the build's config.h */

#define W_MAINT_PERIOD_S   60
#define W_MAINT_HOLD_BATCH 500

/* Runs pass (an expiry of batch rows) until a pass finds fewer; *total
 * gets how many in all. */
static enum bw_err
drain(struct db *db, enum bw_err (*pass)(struct db *, int, int *), int *total)
{
	enum bw_err er;
	int	    n = 0;

	*total = 0;
	do {
		er = pass(db, W_MAINT_HOLD_BATCH, &n);
		if (er != BW_OK)
			return er;
		*total += n;
	} while (n == W_MAINT_HOLD_BATCH);
	return BW_OK;
}

/* One maintenance pass on db; arg is the config. Returns a jobq error. */
static enum bw_err
w_maint_run(struct db *db, void *arg)
{
	const struct config *cfg = arg;
	char		     a[16], b[16];
	enum bw_err	     er;
	int		     rescued = 0, purged = 0;
	int		     total = 0;

	er = jobq_rescue(db, &rescued);
	if (er != BW_OK)
		return er;
	er = jobq_purge(db, cfg->job_retention_days, &purged);
	if (er != BW_OK)
		return er;
	snprintf(a, sizeof(a), "%d", rescued);
	snprintf(b, sizeof(b), "%d", purged);
	log_kv(LL_INFO, "maint pass", "rescued", a, "purged", b, NULL);
	/* LLM budget holds whose request died: settled at the held amount
	 * (lib/chat/budget.h), batch by batch. */
	er = drain(db, budget_expire, &total);
	if (er != BW_OK)
		return er;
	snprintf(a, sizeof(a), "%d", total);
	log_kv(LL_INFO, "maint pass: llm holds expired", "expired", a, NULL);
	/* Budget blocks whose child or session died: charged whole
	 * (lib/chat/block.h). */
	er = drain(db, block_expire, &total);
	if (er != BW_OK)
		return er;
	if (total > 0) {
		snprintf(a, sizeof(a), "%d", total);
		log_kv(LL_WARN, "maint pass: budget blocks expired", "expired",
		    a, NULL);
	}
	return BW_OK;
}

int
main(int argc, char **argv)
{
	worker_on_run_failed(errtrack_run_failed); /* error groups */
	return worker_oneshot("bulwark-maint", "maint", W_MAINT_PERIOD_S,
	    w_maint_run, argc, argv);
}
