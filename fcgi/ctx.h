/* SPDX-License-Identifier: MIT */
/*
 * Per-child context of bulwark-fcgi: the configuration and the PostgreSQL
 * and Redis connections a child opens after fork() and keeps across
 * requests (they reconnect by themselves when broken).
 */
#ifndef BW_CTX_H
#define BW_CTX_H

#include "core/config.h"
#include "core/db.h"
#include "core/rds.h"

struct block_set;

struct child {
	const struct config *cfg;
	struct db	    *db;
	/* /metrics and /health/full only: the cross-org monitor role
	 * (monitor_database_url), or db itself when that is not set. */
	struct db  *mondb;
	struct rds *rds;
	int	    child_no;
	int	    pool;	       /* POOL_API, ... (fcgi/pool.h) */
	int	    queue_deadline_ms; /* its pool's; 0: none */
	/* The chat pool's budget blocks (lib/chat/block.h); NULL: none. */
	struct block_set *blocks;
	char		  block_owner[96]; /* "host pid" */
	/* Between requests: failed reconnects in a row, and when the next
	 * is due (clock_mono_ms()); fcgi/main.c child_idle(). */
	int	db_fails;
	int64_t db_retry_ms;
};

#endif
