/* SPDX-License-Identifier: MIT */
/*
 * bulwark-ledger: the daily roots oneshot, started by a systemd timer at
 * 02:00 UTC on every host. Once per UTC day cluster-wide (periodic_run()'s
 * advisory lock and slot) it signs the Merkle root of every (org, day)
 * before today that has events and no root yet, so a late or repeated run
 * catches up and never signs a day twice. The only service that reads
 * the signing seed (ledger_key_file; systemd gives it the bulwark-ledger
 * group that owns the file), and it signs only when ledger_public_key_file
 * publishes that seed's key.
 */
#include <stdio.h>

#include "evidence/ledger.h"
#include "core/log.h"
#include "errtrack/errtrack.h"
#include "platform/periodic.h"
#include "core/sec.h"
#include "platform/worker.h" /* brings lib/core/config.h, not the build's config.h */

#define W_LEDGER_PERIOD_S 86400 /* the slot is the UTC day */

/* One pass on db; arg is the config. Returns a ledger error. */
static enum bw_err
w_ledger_run(struct db *db, void *arg)
{
	const struct config *cfg = arg;
	uint8_t		     seed[SEC_ED25519_SEED_LEN];
	char		     made[16];
	enum bw_err	     er;
	int		     n = 0;

	/* Signs only with the key that is published (logged otherwise). */
	er = ledger_signing_key_load(cfg->ledger_key_file,
	    cfg->ledger_public_key_file, cfg->ledger_origin, seed);
	if (er != BW_OK)
		return er;
	er = ledger_roots_compute(db, seed, cfg->ledger_origin, NULL, &n);
	sec_wipe(seed, sizeof(seed));
	if (er != BW_OK)
		return er;
	snprintf(made, sizeof(made), "%d", n);
	log_kv(LL_INFO, "ledger roots pass", "roots_signed", made, NULL);
	return BW_OK;
}

int
main(int argc, char **argv)
{
	worker_on_run_failed(errtrack_run_failed); /* error groups */
	return worker_oneshot("bulwark-ledger", "ledger-roots",
	    W_LEDGER_PERIOD_S, w_ledger_run, argc, argv);
}
