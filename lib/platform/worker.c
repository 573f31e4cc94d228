/* SPDX-License-Identifier: MIT */
/*
 * The loop every long-running worker shares: set-up, signals, reconnect
 * with backoff, periodic rescue of expired leases, claim -> handler (with a
 * heartbeat thread renewing the lease) -> complete or fail, and
 * LISTEN/NOTIFY waits when the queue is empty.
 */
#include <errno.h>
#include <pthread.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/limits.h"
#include "core/log.h"
#include "platform/periodic.h"
#include "platform/worker.h"

#ifndef BW_VERSION
#define BW_VERSION "unknown" /* Makefile.am passes PACKAGE_VERSION */
#endif

#define WORKER_EX_USAGE	      2	   /* a usage error, like getopt tools */
#define WORKER_EX_CONFIG      78   /* sysexits.h EX_CONFIG */
#define WORKER_IDLE_WAIT_MS   5000 /* longest LISTEN wait */
#define WORKER_BACKOFF_MIN_MS 200  /* after a database error */
#define WORKER_BACKOFF_MAX_MS 30000

static volatile sig_atomic_t worker_stop;
static worker_dead_fn	     worker_dead_hook;
static worker_run_failed_fn  worker_run_failed_hook;

void
worker_on_dead(worker_dead_fn fn)
{
	worker_dead_hook = fn;
}

void
worker_on_run_failed(worker_run_failed_fn fn)
{
	worker_run_failed_hook = fn;
}

/* The heartbeat thread's shared state; mu guards done and lost. */
struct worker_hb {
	pthread_mutex_t	       mu;
	pthread_cond_t	       cv;
	int		       done;
	int		       lost; /* the lease went to someone else */
	struct db	      *db;   /* the thread's own connection */
	const struct jobq_job *job;
	int		       lease_s;
};

static void
worker_on_signal(int sig)
{
	(void)sig;
	worker_stop = 1;
}

int
worker_stopping(void)
{
	return worker_stop != 0;
}

/* Sleeps ms unless a signal arrives first. */
static void
worker_nap(int ms)
{
	(void)poll(NULL, 0, ms);
}

/*
 * SIGTERM/SIGINT ask for a stop after the current job. No SA_RESTART, so a
 * wait in poll() returns at once. SIGHUP is ignored (no reload here) and
 * SIGPIPE too (libpq reports the broken socket).
 */
static void
worker_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = worker_on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGPIPE, &sa, NULL);
}

/*
 * The command line every worker shares (docs/operations.md, "Command-line
 * conventions"): -h/--help prints the usage on stdout and exits 0,
 * --version prints "NAME VERSION" and exits 0, anything else not known is
 * a usage error: the usage on stderr, exit 2. worker_main() and
 * worker_oneshot() set what the usage offers; a worker with options of its
 * own sets it with worker_usage() (bulwark-retention's --pass).
 */
static const char *worker_synopsis = "[-c CONFIG]";
static const char *worker_opthelp = "";

void
worker_usage(const char *synopsis, const char *opthelp)
{
	worker_synopsis = synopsis;
	worker_opthelp = opthelp;
}

static void
worker_print_usage(FILE *f, const char *service)
{
	fprintf(f,
	    "usage: %s %s\n"
	    "  -c, --config FILE  the configuration file (without it: the "
	    "defaults and\n"
	    "                     BULWARK_* variables)\n"
	    "%s"
	    "  -h, --help         print this help and exit\n"
	    "      --version      print the version and exit\n"
	    "See bulwark-workers(8) and bulwark.conf(5).\n",
	    service, worker_synopsis, worker_opthelp);
}

/*
 * Parses -c/--config FILE (or --config=FILE) and --once; -h/--help and
 * --version answer and exit 0; anything else is refused. *path and *once
 * are set. Returns 0 or WORKER_EX_USAGE (after the usage on stderr).
 */
static int
worker_args(const char *service, int argc, char **argv, const char **path,
    bool *once)
{
	int i;

	*path = NULL;
	*once = false;
	for (i = 1; i < argc; i++) {
		if ((strcmp(argv[i], "-c") == 0 ||
			strcmp(argv[i], "--config") == 0) &&
		    i + 1 < argc)
			*path = argv[++i];
		else if (strncmp(argv[i], "--config=", 9) == 0)
			*path = argv[i] + 9;
		else if (strcmp(argv[i], "--once") == 0)
			*once = true;
		else if (strcmp(argv[i], "-h") == 0 ||
		    strcmp(argv[i], "--help") == 0) {
			worker_print_usage(stdout, service);
			exit(fflush(stdout) == 0 ? 0 : 1);
		} else if (strcmp(argv[i], "--version") == 0) {
			printf("%s %s\n", service, BW_VERSION);
			exit(fflush(stdout) == 0 ? 0 : 1);
		} else {
			fprintf(stderr, "%s: %s '%s'\n", service,
			    strcmp(argv[i], "-c") == 0 ||
				    strcmp(argv[i], "--config") == 0
				? "a value is missing after"
				: argv[i][0] == '-' ? "unknown option"
						    : "unexpected argument",
			    argv[i]);
			worker_print_usage(stderr, service);
			return WORKER_EX_USAGE;
		}
	}
	return 0;
}

/*
 * Parses arguments, loads the config (the caller config_free()s it on
 * success), starts logging at its level and sets the statement timeout of
 * every database handle made afterwards (worker_statement_timeout_ms).
 * Returns 0, or an exit status after logging why.
 */
int
worker_setup(const char *service, int argc, char **argv, struct config *cfg)
{
	char	    err[256];
	const char *path;
	bool	    once;
	int	    rc, lvl;

	rc = worker_args(service, argc, argv, &path, &once);
	if (rc != 0)
		return rc;
	log_init(service, LL_INFO);
	if (config_load(cfg, path, err, sizeof(err)) != BW_OK) {
		log_kv(LL_ERROR, "config invalid", "detail", err, NULL);
		return WORKER_EX_CONFIG;
	}
	lvl = log_level_parse(cfg->log_level);
	if (lvl >= 0)
		log_init(service, (enum log_level)lvl);
	/*
	 * Every connection this worker opens from now on (its own, the
	 * heartbeat's, periodic_run()'s two) cancels a statement that runs
	 * longer, instead of hanging on a lock forever.
	 */
	db_set_default_statement_timeout(cfg->worker_statement_timeout_ms);
	return 0;
}

/*
 * The heartbeat thread: renews the lease every lease_s/3 until told to stop.
 * It only touches its own connection, hb->db.
 */
static void *
worker_hb_main(void *arg)
{
	struct worker_hb *hb = arg;
	struct timespec	  ts;
	int64_t		  every_ms;
	bool		  owned;
	enum bw_err	  er;

	every_ms = (int64_t)hb->lease_s * 1000 / 3;
	if (every_ms < 100)
		every_ms = 100;
	pthread_mutex_lock(&hb->mu);
	while (!hb->done) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += every_ms / 1000;
		ts.tv_nsec += (every_ms % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		while (!hb->done &&
		    pthread_cond_timedwait(&hb->cv, &hb->mu, &ts) != ETIMEDOUT)
			;
		if (hb->done)
			break;
		pthread_mutex_unlock(&hb->mu);
		owned = true;
		er = jobq_heartbeat(hb->db, hb->job, hb->lease_s, &owned);
		pthread_mutex_lock(&hb->mu);
		if (er == BW_OK && !owned)
			hb->lost = 1;
	}
	pthread_mutex_unlock(&hb->mu);
	return NULL;
}

/*
 * Runs one claimed job: handler under a heartbeat, then complete or fail.
 * Errors are logged by the jobq calls; a job whose outcome could not be
 * recorded is rescued when its lease expires.
 */
static void
worker_run_job(struct worker_ctx *ctx, const struct worker_def *def,
    struct db *hbdb, struct jobq_job *job, int lease_s)
{
	struct worker_hb   hb;
	pthread_condattr_t ca;
	pthread_t	   th;
	char		   errmsg[BW_MAX_JOB_ERROR + 1];
	bool		   permanent = false, hb_on = false;
	enum bw_err	   er;
	int64_t		   t0;

	/* Before the thread starts: it may log, reading the context. */
	log_ctx_set(LC_JOB_ID, job->id);
	log_ctx_set(LC_ORG_ID, job->org_id);
	log_ctx_set(LC_CORRELATION_ID, job->correlation_id);
	memset(&hb, 0, sizeof(hb));
	hb.db = hbdb;
	hb.job = job;
	hb.lease_s = lease_s;
	pthread_mutex_init(&hb.mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&hb.cv, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&th, NULL, worker_hb_main, &hb) == 0)
		hb_on = true;
	else
		log_kv(LL_WARN, "worker heartbeat thread not started", NULL);

	errmsg[0] = '\0';
	t0 = clock_mono_ms();
	er = def->run(ctx, job, &permanent, errmsg, sizeof(errmsg));

	if (hb_on) {
		pthread_mutex_lock(&hb.mu);
		hb.done = 1;
		pthread_cond_signal(&hb.cv);
		pthread_mutex_unlock(&hb.mu);
		pthread_join(th, NULL);
	}
	if (hb.lost)
		log_kv(LL_WARN, "worker lease lost during the job", NULL);
	if (er == BW_OK) {
		if (jobq_complete(ctx->db, job) == BW_OK) {
			char ms[24];

			snprintf(ms, sizeof(ms), "%lld",
			    (long long)(clock_mono_ms() - t0));
			log_kv(LL_DEBUG, "job done", "queue", job->queue, "ms",
			    ms, NULL);
		}
	} else {
		errmsg[sizeof(errmsg) - 1] = '\0';
		log_kv(LL_WARN, "job failed", "queue", job->queue, "error",
		    errmsg[0] != '\0' ? errmsg : bw_strerror(er), "permanent",
		    permanent ? "true" : "false", NULL);
		if (jobq_fail(ctx->db, job,
			errmsg[0] != '\0' ? errmsg : bw_strerror(er),
			!permanent) == BW_OK &&
		    worker_dead_hook != NULL &&
		    (permanent || job->attempts >= job->max_attempts))
			worker_dead_hook(ctx, job,
			    errmsg[0] != '\0' ? errmsg : bw_strerror(er));
	}
	log_ctx_set(LC_JOB_ID, NULL);
	log_ctx_set(LC_ORG_ID, NULL);
	log_ctx_set(LC_CORRELATION_ID, NULL);
	pthread_cond_destroy(&hb.cv);
	pthread_mutex_destroy(&hb.mu);
}

/*
 * The worker loop; see worker.h. Returns 0 after a requested stop (or, with
 * --once, when nothing is runnable), else an exit status.
 */
int
worker_main(const struct worker_def *def, int argc, char **argv)
{
	struct config	  cfg;
	struct worker_ctx ctx;
	struct jobq_job	  job;
	struct db	 *db = NULL, *hbdb = NULL;
	char		  name[128], host[64], stmo[16];
	const char	 *path;
	bool		  once, got;
	enum bw_err	  er;
	int64_t		  last_rescue = 0, now;
	int		  rc, lease_s, rescue_ms, wait_ms, backoff = 0;
	int		  listened = 0, n;

	worker_usage("[-c CONFIG] [--once]",
	    "      --once         process the runnable jobs, then exit\n");
	worker_signals();
	memset(&cfg, 0, sizeof(cfg));
	rc = worker_setup(def->service, argc, argv, &cfg);
	if (rc != 0)
		return rc;
	(void)worker_args(def->service, argc, argv, &path, &once);
	lease_s = def->lease_s > 0 ? def->lease_s : cfg.job_lease_s;
	if (lease_s < 1)
		lease_s = 30;
	rescue_ms = lease_s * 1000 / 2;
	if (rescue_ms < 1000)
		rescue_ms = 1000;
	wait_ms =
	    rescue_ms < WORKER_IDLE_WAIT_MS ? rescue_ms : WORKER_IDLE_WAIT_MS;
	if (gethostname(host, sizeof(host)) != 0)
		snprintf(host, sizeof(host), "unknown");
	host[sizeof(host) - 1] = '\0';
	snprintf(name, sizeof(name), "%s:%ld", host, (long)getpid());
	db = db_new(cfg.database_url);
	hbdb = db_new(cfg.database_url);
	if (db == NULL || hbdb == NULL) {
		log_kv(LL_ERROR, "worker out of memory", NULL);
		rc = 1;
		goto out;
	}
	ctx.cfg = &cfg;
	ctx.db = db;
	ctx.name = name;
	memset(&job, 0, sizeof(job));
	job.cap_slot = -1;
	snprintf(stmo, sizeof(stmo), "%d", cfg.worker_statement_timeout_ms);
	log_kv(LL_INFO, "worker started", "queue", def->queue, "worker", name,
	    "statement_timeout_ms", stmo, NULL);

	while (!worker_stop) {
		if (backoff > 0) {
			worker_nap(backoff / 2 +
			    (int)arc4random_uniform((uint32_t)backoff / 2 + 1));
			if (worker_stop)
				break;
		}
		er = db_connect(db);
		if (er != BW_OK)
			goto dberr;
		/* A new session (first, or reopened) has no LISTEN yet. */
		if (PQbackendPID(db_conn(db)) != listened) {
			er = jobq_listen(db, def->queue);
			if (er != BW_OK)
				goto dberr;
			listened = PQbackendPID(db_conn(db));
		}
		now = clock_mono_ms();
		if (last_rescue == 0 || now - last_rescue >= rescue_ms) {
			n = 0;
			er = jobq_rescue(db, &n);
			if (er != BW_OK)
				goto dberr;
			last_rescue = now;
		}
		got = false;
		er = jobq_claim(db, def->queue, name, lease_s, &job, &got);
		if (er != BW_OK)
			goto dberr;
		backoff = 0;
		if (got) {
			worker_run_job(&ctx, def, hbdb, &job, lease_s);
			jobq_job_clear(&job);
			continue;
		}
		if (once)
			break;
		(void)jobq_wait(db, wait_ms);
		continue;
dberr:
		if (once) {
			rc = 1;
			goto out;
		}
		backoff = backoff == 0 ? WORKER_BACKOFF_MIN_MS : backoff * 2;
		if (backoff > WORKER_BACKOFF_MAX_MS)
			backoff = WORKER_BACKOFF_MAX_MS;
		db_disconnect(db);
		listened = 0;
	}
	rc = 0;
	log_kv(LL_INFO, "worker stopped", "queue", def->queue, NULL);
out:
	db_free(hbdb);
	db_free(db);
	config_free(&cfg);
	return rc;
}

int
worker_periodic(struct config *cfg, const char *job, int period_s,
    enum bw_err (*fn)(struct db *, void *))
{
	enum periodic_outcome oc = PO__MAX;
	enum bw_err	      er;

	if (cfg->periodic_slot_s > 0)
		period_s = cfg->periodic_slot_s;
	er = periodic_run(cfg->database_url, job, period_s, fn, cfg, &oc);
	/* Locked elsewhere or already done this slot: nothing to do. */
	if (er == BW_OK && (oc == PO_RAN || oc == PO_LOCKED || oc == PO_DONE))
		return 0;
	if (worker_run_failed_hook != NULL)
		worker_run_failed_hook(cfg, job, er);
	return 1;
}

int
worker_oneshot(const char *service, const char *job, int period_s,
    enum bw_err (*fn)(struct db *, void *), int argc, char **argv)
{
	struct config cfg;
	int	      rc;

	rc = worker_setup(service, argc, argv, &cfg);
	if (rc != 0)
		return rc;
	rc = worker_periodic(&cfg, job, period_s, fn);
	config_free(&cfg);
	return rc;
}
