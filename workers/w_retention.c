/* SPDX-License-Identifier: MIT */
/*
 * bulwark-retention: the storage lifecycle oneshot, started hourly by a
 * systemd timer on every host. Once per hour cluster-wide (periodic_run:
 * advisory lock + one run per slot) it expires ready exports past their
 * org's plan retention (artifact deleted), removes failed and canceled
 * exports after 7 days, and sweeps orphan export and evidence files
 * (lib/evidence/export_retention.c, evidence_sweep_orphans()).
 *
 * --pass runs one pass at once, outside the hourly slot (operators after
 * an incident, tests); every row changes under a state guard, so a pass
 * running beside another never acts twice.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "evidence/evidence.h"
#include "evidence/export.h"
#include "core/log.h"
#include "errtrack/errtrack.h"
#include "platform/periodic.h"
#include "platform/worker.h"

#define W_RETENTION_PERIOD_S 3600
#define W_RETENTION_ORPHAN_S 3600 /* evidence temp/orphan file age */

/* One pass on db; arg is the config. */
static enum bw_err
w_retention_run(struct db *db, void *arg)
{
	const struct config	     *cfg = arg;
	struct export_retention_stats st;
	char			      a[16], b[16], c[16], d[16], off[24];
	enum bw_err		      er;
	int			      ev_orphans = 0;

	er = export_retention(db, cfg->storage_dir,
	    cfg->retention_clock_offset_s, &st);
	if (er != BW_OK)
		return er;
	er = evidence_sweep_orphans(db, cfg->storage_dir, W_RETENTION_ORPHAN_S,
	    &ev_orphans);
	if (er != BW_OK)
		return er;
	snprintf(a, sizeof(a), "%d", st.expired);
	snprintf(b, sizeof(b), "%d", st.removed);
	snprintf(c, sizeof(c), "%d", st.orphans);
	snprintf(d, sizeof(d), "%d", ev_orphans);
	snprintf(off, sizeof(off), "%d", cfg->retention_clock_offset_s);
	log_kv(LL_INFO, "retention pass", "expired", a, "removed", b,
	    "export_orphans", c, "evidence_orphans", d, "clock_offset_s", off,
	    NULL);
	return BW_OK;
}

int
main(int argc, char **argv)
{
	struct config cfg;
	struct db    *db;
	enum bw_err   er;
	char	     *args[8];
	int	      rc, i, n = 0, pass = 0;

	worker_on_run_failed(errtrack_run_failed); /* error groups */
	/* --pass is ours; the rest goes to worker_setup(). */
	worker_usage("[-c CONFIG] [--pass]",
	    "      --pass         one pass now, outside the hourly slot "
	    "(tests)\n");
	for (i = 0; i < argc && n < (int)(sizeof(args) / sizeof(args[0])) - 1;
	     i++) {
		if (i > 0 && strcmp(argv[i], "--pass") == 0)
			pass = 1;
		else
			args[n++] = argv[i];
	}
	args[n] = NULL;
	rc = worker_setup("bulwark-retention", n, args, &cfg);
	if (rc != 0)
		return rc;
	if (pass) {
		db = db_new(cfg.database_url);
		er = db == NULL ? BW_ENOMEM : db_connect(db);
		if (er == BW_OK)
			er = w_retention_run(db, &cfg);
		db_free(db);
		config_free(&cfg);
		return er == BW_OK ? 0 : 1;
	}
	rc = worker_periodic(&cfg, "retention", W_RETENTION_PERIOD_S,
	    w_retention_run);
	config_free(&cfg);
	return rc;
}
