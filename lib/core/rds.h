/* SPDX-License-Identifier: MIT */
/*
 * Redis access over hiredis: one connection per process, timeouts on
 * connect and on every command, reconnect when broken, argv commands only,
 * and Lua scripts run with EVALSHA falling back to SCRIPT LOAD on NOSCRIPT.
 */
#ifndef BW_RDS_H
#define BW_RDS_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "core/err.h"

struct rds;

struct rds_script {
	const char *src;     /* Lua text */
	char	    sha[41]; /* filled on first use */
};

/* url: redis://[:password@]host[:port][/db] or unix:///path; copied. */
struct rds *rds_new(const char *url);
/*
 * Sentinel mode: the master is asked of the sentinels in list
 * ("host:port,host:port...", at most BW_REDIS_MAX_SENTINELS) by name,
 * checked with ROLE, and asked again after a connection error or a
 * READONLY/MASTERDOWN/LOADING reply (not sooner than a back-off after a
 * failed discovery); the URL's host is then unused, its credentials and
 * db are the master's. list "" or NULL: nothing changes. Returns BW_OK,
 * BW_ECONFIG (malformed) or BW_ENOMEM.
 */
enum bw_err rds_set_sentinels(struct rds *, const char *list, const char *name);
struct config;
/* rds_new(cfg->redis_url) with cfg's redis_sentinels/redis_master_name. */
struct rds *rds_new_cfg(const struct config *cfg);
void	    rds_free(struct rds *);
enum bw_err rds_connect(struct rds *);
/*
 * Sends argv (lens may be NULL for C strings). *reply (caller
 * freeReplyObject()s) on success; an error reply is BW_EREDIS with the reply
 * still handed over when reply is not NULL. A broken connection is
 * reopened and the command sent once more.
 */
enum bw_err rds_cmd(struct rds *, int argc, const char **argv,
    const size_t *lens, redisReply **reply);
enum bw_err rds_eval(struct rds *, struct rds_script *, int nkeys, int argc,
    const char **argv, const size_t *lens, redisReply **reply);
/*
 * One command of a pipeline (rds_pipeline()): a script (EVALSHA, with
 * nkeys) or, when script is NULL, the plain command argv. reply and er are
 * set by rds_pipeline().
 */
struct rds_call {
	struct rds_script *script;
	int		   nkeys;
	int		   argc;
	const char	 **argv;
	const size_t	  *lens;  /* NULL: C strings */
	redisReply	  *reply; /* out; the caller freeReplyObject()s it */
	enum bw_err	   er;	  /* out: as rds_cmd() / rds_eval() */
};
/*
 * Sends calls[0..n) in one write and reads their n replies: one round trip
 * for commands that need not wait for each other. Each call's er and reply
 * are set as rds_eval() (or rds_cmd()) would set them; a script the server
 * lost (NOSCRIPT) is loaded and that call run again on its own. A broken
 * idle connection is reopened and the pipeline sent once more only when no
 * reply was read yet. Returns BW_OK when every call did, else the first
 * call's error.
 */
enum bw_err rds_pipeline(struct rds *, struct rds_call *calls, size_t n);
/*
 * 1 when s is 1..max bytes of [A-Za-z0-9_-]: safe as one segment of a key
 * name (no ':' or hash-tag braces a caller could inject).
 */
int rds_word_ok(const char *s, size_t max);
/*
 * The integer of a reply (i < 0), or of element i of an array reply, as a
 * Lua script returns them; -1 when rep is NULL or that is not an integer.
 * For replies whose integers are never negative.
 */
long long rds_int(const redisReply *rep, int i);
/* PING with its latency in microseconds. */
enum bw_err rds_ping(struct rds *, int64_t *latency_us);

#endif
