/* SPDX-License-Identifier: MIT */
/*
 * jobq_worker: the job queue's test worker and enqueuer for
 * tests/integration/jobq.sh. As a worker (lib/platform/worker.c's loop) it records
 * every execution in jobq_test_exec (a table the test script creates), so
 * the script can count executions and measure overlap:
 *
 *   jobq_worker -c CONFIG --queue Q --mode MODE [--sleep-ms N] [--once]
 *     MODE: record | slow | fail-once | fail | fail-permanent
 *   jobq_worker -c CONFIG --queue Q --enqueue N [--job-key K]
 *     [--key-prefix P] [--cap-key K --cap-limit N] [--max-attempts N]
 *     [--priority N] [--delay-s N]
 *     prints "<id> created|existing" per job
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "platform/jobq.h"
#include "core/log.h"
#include "platform/worker.h" /* brings lib/core/config.h, not the build's config.h */

enum tw_mode {
	TW_RECORD,
	TW_SLOW,
	TW_FAIL_ONCE,
	TW_FAIL,
	TW_FAIL_PERMANENT,
	TW__MAX
};

static const char *tw_modes[TW__MAX] = { "record", "slow", "fail-once", "fail",
	"fail-permanent" };

static enum tw_mode tw_mode = TW_RECORD;
static int	    tw_sleep_ms = 500;

/* Whole-string integer in [lo, hi]; -1 on error (lo is never negative). */
static long
tw_num(const char *s, long lo, long hi)
{
	char *end;
	long  v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
		return -1;
	return v;
}

static void
tw_sleep(int ms)
{
	struct timespec ts;

	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/*
 * The handler: one jobq_test_exec row per execution, started when the
 * handler starts, finished (with its outcome) just before it returns. A
 * killed worker leaves its row unfinished.
 */
static enum bw_err
tw_run(struct worker_ctx *ctx, struct jobq_job *job, bool *permanent,
    char *errmsg, size_t errlen)
{
	char	    pid[16], att[16], rowid[32];
	const char *p[3];
	const char *outcome = "ok";
	PGresult   *res = NULL;
	enum bw_err er, ret = BW_OK;

	snprintf(pid, sizeof(pid), "%ld", (long)getpid());
	snprintf(att, sizeof(att), "%d", job->attempts);
	p[0] = job->id;
	p[1] = pid;
	p[2] = att;
	er = db_exec(ctx->db,
	    "INSERT INTO jobq_test_exec (job_id, worker_pid, attempt,"
	    " started_at) VALUES ($1::uuid, $2::int, $3::int,"
	    " clock_timestamp()) RETURNING id",
	    3, p, &res);
	if (er != BW_OK) {
		snprintf(errmsg, errlen, "recording failed");
		return er;
	}
	snprintf(rowid, sizeof(rowid), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	if (tw_mode == TW_SLOW)
		tw_sleep(tw_sleep_ms);
	if ((tw_mode == TW_FAIL_ONCE && job->attempts == 1) ||
	    tw_mode == TW_FAIL || tw_mode == TW_FAIL_PERMANENT) {
		snprintf(errmsg, errlen, "boom: attempt %d", job->attempts);
		*permanent = tw_mode == TW_FAIL_PERMANENT;
		outcome = "failed";
		ret = BW_EUPSTREAM;
	}
	p[0] = rowid;
	p[1] = outcome;
	er = db_exec(ctx->db,
	    "UPDATE jobq_test_exec SET finished_at = clock_timestamp(),"
	    " outcome = $2 WHERE id = $1::bigint",
	    2, p, NULL);
	if (er != BW_OK && ret == BW_OK) {
		snprintf(errmsg, errlen, "recording failed");
		ret = er;
	}
	return ret;
}

/* --enqueue N: jobs through jobq_enqueue(), one line per job on stdout. */
static int
tw_enqueue(const struct config *cfg, struct jobq_spec *spec, long n,
    const char *prefix)
{
	struct db  *db;
	char	    key[256], id[37];
	bool	    created = false;
	enum bw_err er;
	long	    i;
	int	    rc = 0;

	db = db_new(cfg->database_url);
	if (db == NULL)
		return 1;
	for (i = 0; i < n; i++) {
		if (prefix != NULL) {
			snprintf(key, sizeof(key), "%s%ld", prefix, i);
			spec->job_key = key;
		}
		er = jobq_enqueue(db, spec, id, &created);
		if (er != BW_OK) {
			fprintf(stderr, "enqueue: %s\n", bw_strerror(er));
			rc = 1;
			break;
		}
		printf("%s %s\n", id, created ? "created" : "existing");
	}
	db_free(db);
	return rc;
}

static int
tw_usage(void)
{
	fprintf(stderr,
	    "usage: jobq_worker -c CONFIG --queue Q"
	    " (--mode MODE [--sleep-ms N] [--once] |"
	    " --enqueue N [--job-key K | --key-prefix P]"
	    " [--cap-key K --cap-limit N] [--max-attempts N] [--priority N]"
	    " [--delay-s N])\n");
	return 64;
}

int
main(int argc, char **argv)
{
	struct worker_def def;
	struct jobq_spec  spec;
	struct config	  cfg;
	char		 *wargv[5];
	char		 *cfgpath = NULL;
	const char	 *queue = NULL, *prefix = NULL;
	long		  enq = -1, v;
	int		  i, k, wargc = 0, rc;
	bool		  once = false;

	memset(&spec, 0, sizeof(spec));
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		char	   *b = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--once") == 0) {
			once = true;
			continue;
		}
		if (b == NULL)
			return tw_usage();
		i++;
		if (strcmp(a, "-c") == 0)
			cfgpath = b;
		else if (strcmp(a, "--queue") == 0)
			queue = b;
		else if (strcmp(a, "--mode") == 0) {
			for (k = 0; k < TW__MAX; k++)
				if (strcmp(b, tw_modes[k]) == 0)
					break;
			if (k == TW__MAX)
				return tw_usage();
			tw_mode = (enum tw_mode)k;
		} else if (strcmp(a, "--sleep-ms") == 0) {
			v = tw_num(b, 0, 600000);
			if (v < 0)
				return tw_usage();
			tw_sleep_ms = (int)v;
		} else if (strcmp(a, "--enqueue") == 0) {
			enq = tw_num(b, 1, 1000000);
			if (enq < 0)
				return tw_usage();
		} else if (strcmp(a, "--job-key") == 0)
			spec.job_key = b;
		else if (strcmp(a, "--key-prefix") == 0)
			prefix = b;
		else if (strcmp(a, "--cap-key") == 0)
			spec.cap_key = b;
		else if (strcmp(a, "--cap-limit") == 0) {
			v = tw_num(b, 1, 1000);
			if (v < 0)
				return tw_usage();
			spec.cap_limit = (int)v;
		} else if (strcmp(a, "--max-attempts") == 0) {
			v = tw_num(b, 1, 100);
			if (v < 0)
				return tw_usage();
			spec.max_attempts = (int)v;
		} else if (strcmp(a, "--priority") == 0) {
			v = tw_num(b, 0, 1000);
			if (v < 0)
				return tw_usage();
			spec.priority = (int)v;
		} else if (strcmp(a, "--delay-s") == 0) {
			v = tw_num(b, 0, 86400);
			if (v < 0)
				return tw_usage();
			spec.delay_s = (int)v;
		} else
			return tw_usage();
	}
	if (queue == NULL)
		return tw_usage();
	wargv[wargc++] = argv[0];
	if (cfgpath != NULL) {
		wargv[wargc++] = "-c";
		wargv[wargc++] = cfgpath;
	}
	if (once)
		wargv[wargc++] = "--once";
	wargv[wargc] = NULL;

	if (enq > 0) {
		rc = worker_setup("jobq_worker", wargc, wargv, &cfg);
		if (rc != 0)
			return rc;
		spec.queue = queue;
		rc = tw_enqueue(&cfg, &spec, enq, prefix);
		config_free(&cfg);
		return rc;
	}
	memset(&def, 0, sizeof(def));
	def.service = "jobq_worker";
	def.queue = queue;
	def.run = tw_run;
	return worker_main(&def, wargc, wargv);
}
