/* SPDX-License-Identifier: MIT */
/*
 * The crash spool of bulwark-fcgi: the master has no database connection,
 * so a child that dies on a signal is written by the master into a small
 * ring in shared memory (mapped before fork()), and the next child to look
 * (a replacement in child_init, or any child after answering a request)
 * takes the record and upserts it into error_groups. Each child also notes
 * here the request it is serving, so the crash record names it. A full
 * ring drops the record and counts it (bulwark_errtrack_spool_dropped_total).
 */
#ifndef BW_ERRSPOOL_H
#define BW_ERRSPOOL_H

#include <stdint.h>
#include <sys/types.h>

#include "core/limits.h"

struct errspool_rec {
	int  pool;
	int  sig;
	int  core;
	int  timed_out; /* the master killed it past its request timeout */
	char request_id[BW_MAX_REQUEST_ID + 1];	    /* "" when idle */
	char correlation_id[BW_MAX_REQUEST_ID + 1]; /* "" when idle */
};

/* Maps the shared region; once, before fork(). 0 or -1. */
int errspool_init(void);
/* In a child: takes a note slot for this process (once, at start). */
void errspool_child_start(void);
/* In a child: the request in hand (NULLs: none). */
void errspool_note(const char *request_id, const char *correlation_id);
/*
 * In the master, for every reaped child: frees its note; when crashed,
 * queues a record with what the note held. Async-signal-safe enough for
 * the master's loop (no allocation, no locks).
 */
void errspool_died(pid_t pid, int crashed, int pool, int sig, int core,
    int timed_out);
/* In a child: takes one queued record into *out. 1 taken, 0 none. */
int errspool_take(struct errspool_rec *out);
/* Records dropped because the ring was full (the master's count). */
uint64_t errspool_dropped(void);

#endif
