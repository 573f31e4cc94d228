/* SPDX-License-Identifier: MIT */
/*
 * bulwark-cleanup: the hourly purge oneshot, started by a systemd timer on
 * every host. Once per 3600 s slot cluster-wide (periodic_run(): advisory
 * lock + periodic_runs row) it deletes expired webhook_events rows and
 * expired Idempotency-Key rows, in batches of BW_WEBHOOK_PURGE_BATCH per
 * statement so that no statement holds many row locks or runs long.
 * The permanent money anchors live in the credit ledger and are never
 * purged: a Stripe event resent after its row is gone grants nothing.
 */
#include <stdio.h>

#include "platform/idem.h"
#include "core/limits.h"
#include "core/log.h"
#include "errtrack/errtrack.h"
#include "platform/periodic.h"
#include "money/webhook.h"
#include "platform/worker.h" /* brings lib/core/config.h, not the build's config.h */

#define W_CLEANUP_PERIOD_S 3600

/*
 * One cleanup pass on db (arg unused). Logs one "cleanup pass" line with
 * the counts. Returns the first purge's error; the other purge still runs.
 */
static enum bw_err
w_cleanup_run(struct db *db, void *arg)
{
	char	    a[24], b[24];
	enum bw_err er, er2;
	int64_t	    events = 0;
	int	    keys = 0;

	(void)arg;
	er = webhook_purge(db, BW_WEBHOOK_PURGE_BATCH, &events);
	er2 = idem_purge(db, BW_WEBHOOK_PURGE_BATCH, &keys);
	snprintf(a, sizeof(a), "%lld", (long long)events);
	snprintf(b, sizeof(b), "%d", keys);
	log_kv(er == BW_OK && er2 == BW_OK ? LL_INFO : LL_WARN, "cleanup pass",
	    "webhook_events_purged", a, "idempotency_keys_purged", b,
	    "webhook_error", bw_strerror(er), "idem_error", bw_strerror(er2),
	    NULL);
	return er != BW_OK ? er : er2;
}

int
main(int argc, char **argv)
{
	worker_on_run_failed(errtrack_run_failed); /* error groups */
	return worker_oneshot("bulwark-cleanup", "cleanup", W_CLEANUP_PERIOD_S,
	    w_cleanup_run, argc, argv);
}
