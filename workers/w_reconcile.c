/* SPDX-License-Identifier: MIT */
/*
 * bulwark-reconcile: the credit reconcile oneshot, started by a systemd
 * timer on every host. Once per 60 s slot cluster-wide (periodic_run's
 * advisory lock) it expires pending credit reservations past their
 * expires_at, so that their credits return (lib/money/credit.c).
 */
#include <stdio.h>

#include "money/credit.h"
#include "core/log.h"
#include "platform/periodic.h"
#include "platform/worker.h" /* brings lib/core/config.h, not the build's config.h */

#define W_RECONCILE_PERIOD_S 60

/* One reconcile pass on db. Returns credit_expire()'s error. */
static enum bw_err
w_reconcile_run(struct db *db, void *arg)
{
	char	    a[16];
	enum bw_err er;
	int	    expired = 0;

	(void)arg;
	er = credit_expire(db, &expired);
	if (er != BW_OK)
		return er;
	snprintf(a, sizeof(a), "%d", expired);
	log_kv(LL_INFO, "reconcile pass", "expired", a, NULL);
	return BW_OK;
}

int
main(int argc, char **argv)
{
	return worker_oneshot("bulwark-reconcile", "reconcile",
	    W_RECONCILE_PERIOD_S, w_reconcile_run, argc, argv);
}
