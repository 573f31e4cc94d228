/* SPDX-License-Identifier: MIT */
/*
 * bulwark-reconcile: the credit reconcile oneshot, started by a systemd
 * timer on every host. Once per 60 s slot cluster-wide (periodic_run's
 * advisory lock) it expires pending credit reservations past their
 * expires_at, so that their credits return (lib/money/credit.c), and
 * recomputes stuck SMS campaigns (lib/campaign/reconcile.c).
 */
#include <stdio.h>

#include "campaign/campaign.h"
#include "money/credit.h"
#include "core/log.h"
#include "errtrack/errtrack.h"
#include "platform/periodic.h"
#include "platform/worker.h" /* brings lib/core/config.h, not the build's config.h */

#define W_RECONCILE_PERIOD_S 60

/* One reconcile pass on db (arg: the config). The first error. */
static enum bw_err
w_reconcile_run(struct db *db, void *arg)
{
	const struct config		*cfg = arg;
	struct campaign_reconcile_result cr;
	char				 a[16], f[16], c[16], q[16];
	enum bw_err			 er;
	int				 expired = 0;

	er = credit_expire(db, &expired);
	if (er != BW_OK)
		return er;
	er = campaign_reconcile(db, cfg->campaign_stuck_after_s, &cr);
	snprintf(a, sizeof(a), "%d", expired);
	snprintf(f, sizeof(f), "%d", cr.found);
	snprintf(c, sizeof(c), "%d", cr.completed);
	snprintf(q, sizeof(q), "%d", cr.requeued);
	log_kv(LL_INFO, "reconcile pass", "expired", a, "campaigns_stuck", f,
	    "campaigns_completed", c, "batches_requeued", q, NULL);
	return er;
}

int
main(int argc, char **argv)
{
	worker_on_run_failed(errtrack_run_failed); /* error groups */
	return worker_oneshot("bulwark-reconcile", "reconcile",
	    W_RECONCILE_PERIOD_S, w_reconcile_run, argc, argv);
}
