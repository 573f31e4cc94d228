/* SPDX-License-Identifier: MIT */
/*
 * The prefork master (php-fpm style): for each pool (fcgi/pool.h) forks its
 * children, which accept on that pool's FastCGI socket; replaces a child
 * that dies (backoff, per pool, when they die in a tight loop), recycles
 * children after their pool's max requests, kills one whose request runs
 * past its pool's request timeout, drains on SIGTERM, rolls the children
 * of every pool with a re-read config on SIGHUP, and speaks systemd's
 * notify protocol when NOTIFY_SOCKET is set.
 */
#ifndef BW_MASTER_H
#define BW_MASTER_H

#include <sys/types.h>

#include <fcgiapp.h>

#include "core/config.h"

struct master_hooks {
	/* In each child after fork(), before accepting: open connections.
	 * pool is its pool's index (POOL_API, ...). Non-zero makes the
	 * child exit(1) (the master backs off). */
	int (*child_init)(const struct config *cfg, int pool, int child_no);
	/* One accepted request; the hook reads, answers and finishes
	 * nothing: the master's loop calls FCGX_Finish_r() after it. */
	void (*child_serve)(FCGX_Request *fr);
	/* In the child before it exits. */
	void (*child_fini)(void);
	/* In the child before each wait for a request (NULL: none): its
	 * idle work; returns how long the wait may last until it is due
	 * again, in ms, -1 for no limit. */
	int (*child_idle)(void);
	/* In the child before each wait (NULL: none): a descriptor besides
	 * the requests whose readability ends the wait (child_idle() runs
	 * again, no request is taken), -1 for none. The database session:
	 * one the server ended is replaced while the child is idle. */
	int (*child_watch)(void);
	/* In the master after a SIGHUP re-read the config into cfg. */
	void (*reloaded)(const struct config *cfg);
	/* In the master for every reaped child (NULL: none). crashed: it
	 * died on a signal the master did not send to stop it (sig, core),
	 * or was killed past its request timeout (timed_out). No database
	 * here: the hook only hands the death on (fcgi/errspool.h). */
	void (*child_died)(pid_t pid, int pool, int crashed, int sig, int core,
	    int timed_out);
};

/*
 * Runs the master until it is told to stop. fds[i] is the listen socket of
 * pool i of pool_list(cfg), from FCGX_OpenSocket(); cfg is owned by the
 * caller and replaced in place on SIGHUP (config_path re-read; a bad new
 * config is logged and ignored). Returns the process exit status.
 */
int master_run(const int *fds, struct config *cfg, const char *config_path,
    const struct master_hooks *hooks);

#endif
