/* SPDX-License-Identifier: MIT */
/*
 * The prefork master (php-fpm style): forks N children that accept on one
 * FastCGI socket, replaces a child that dies (backoff when they die in a
 * tight loop), recycles children after max requests, drains on SIGTERM,
 * rolls children with a re-read config on SIGHUP, and speaks systemd's
 * notify protocol when NOTIFY_SOCKET is set.
 */
#ifndef BW_MASTER_H
#define BW_MASTER_H

#include <fcgiapp.h>

#include "core/config.h"

struct master_hooks {
	/* In each child after fork(), before accepting: open connections.
	 * Non-zero makes the child exit(1) (the master backs off). */
	int (*child_init)(const struct config *cfg, int child_no);
	/* One accepted request; the hook reads, answers and finishes
	 * nothing: the master's loop calls FCGX_Finish_r() after it. */
	void (*child_serve)(FCGX_Request *fr);
	/* In the child before it exits. */
	void (*child_fini)(void);
	/* In the master after a SIGHUP re-read the config into cfg. */
	void (*reloaded)(const struct config *cfg);
};

/*
 * Runs the master until it is told to stop. listen_fd comes from
 * FCGX_OpenSocket(); cfg is owned by the caller and replaced in place on
 * SIGHUP (config_path re-read; a bad new config is logged and ignored).
 * Returns the process exit status.
 */
int master_run(int listen_fd, struct config *cfg, const char *config_path,
    const struct master_hooks *hooks);

#endif
