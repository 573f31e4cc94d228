/* SPDX-License-Identifier: MIT */
/*
 * Test driver for tests/integration/periodic_fence.sh: one periodic_run()
 * of job JOB (slots of PERIOD_S seconds) whose fn, a slow job, inserts a
 * row (TAG, the server's clock) into fence_rows on the work connection
 * every 200 ms for SECS seconds. An insert that fails is reported and the
 * next one tried, as a job that retries its steps would: the run goes on
 * through a reconnected work connection unless the fence refuses it.
 *
 *   periodic_fence_driver CONNINFO JOB TAG SECS PERIOD_S
 *
 * Prints "pid <pid>" at the start, "row <n> ok" or "row <n> err <error>"
 * per insert, and "outcome ran|locked|done <error>" at the end; the log
 * (JSON lines) goes to stderr. Exits 0 when periodic_run() returned BW_OK.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/db.h"
#include "core/log.h"
#include "platform/periodic.h"

struct drv {
	const char *tag;
	int64_t	    secs;
};

static const char drv_sql_row[] = "INSERT INTO fence_rows (tag) VALUES ($1)";

static void
drv_sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) == -1)
		;
}

static enum bw_err
drv_fn(struct db *db, void *arg)
{
	const struct drv *d = arg;
	const char	 *p[1] = { d->tag };
	int64_t		  end = clock_mono_us() + (int64_t)d->secs * 1000000;
	enum bw_err	  er;
	long		  n;

	for (n = 1; clock_mono_us() < end; n++) {
		er = db_execp(db, "fence_row", drv_sql_row, 1, p, NULL);
		if (er == BW_OK)
			printf("row %ld ok\n", n);
		else
			printf("row %ld err %s\n", n, bw_strerror(er));
		fflush(stdout);
		drv_sleep_ms(200);
	}
	return BW_OK;
}

int
main(int argc, char **argv)
{
	static const char    *oc_names[] = { "ran", "locked", "done" };
	struct drv	      d;
	enum periodic_outcome oc = PO__MAX;
	enum bw_err	      er;
	int64_t		      per;

	if (argc != 6 || db_i64(argv[4], &d.secs) != BW_OK || d.secs < 1 ||
	    db_i64(argv[5], &per) != BW_OK || per < 1 || per > 1000000000) {
		fprintf(stderr,
		    "usage: periodic_fence_driver CONNINFO JOB TAG"
		    " SECS PERIOD_S\n");
		return 64;
	}
	log_init("periodic_fence_driver", LL_INFO);
	d.tag = argv[3];
	printf("pid %ld\n", (long)getpid());
	fflush(stdout);
	er = periodic_run(argv[1], argv[2], (int)per, drv_fn, &d, &oc);
	printf("outcome %s %s\n", oc < PO__MAX ? oc_names[oc] : "none",
	    bw_strerror(er));
	return er == BW_OK ? 0 : 1;
}
