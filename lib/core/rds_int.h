/* SPDX-License-Identifier: MIT */
/*
 * What rds.c (the connection, commands, scripts, pipelines) and
 * rds_sentinel.c (Sentinel mode: finding the master, following a
 * failover) share and nobody else sees.
 */
#ifndef BW_RDS_INT_H
#define BW_RDS_INT_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "core/err.h"
#include "core/limits.h"

/* Sentinel: each sentinel's connect and command; asking again after a
 * failed discovery waits RDS_ASK_MIN_MS, doubling up to RDS_ASK_MAX_MS. */
#define RDS_SENTINEL_TIMEOUT_MS 300
#define RDS_ASK_MIN_MS		250
#define RDS_ASK_MAX_MS		1000

struct rds {
	char	     *url;  /* owned; may hold a password */
	char	     *host; /* TCP host, or NULL */
	int	      port;
	char	     *path;	/* unix socket path, or NULL */
	char	     *user;	/* ACL user, or NULL */
	char	     *password; /* or NULL */
	int	      db;
	int	      bad_url; /* rds_connect() refuses */
	redisContext *c;       /* NULL when not connected */
	int64_t	      last_ms; /* clock_mono_ms() of the last reply read */
	/* Sentinel mode (rds_set_sentinels()): nsent > 0. */
	int	nsent;
	char   *shost[BW_REDIS_MAX_SENTINELS];
	int	sport[BW_REDIS_MAX_SENTINELS];
	int	slast; /* the sentinel that answered last */
	char   *master_name;
	char   *mhost; /* the master the sentinels named, or NULL */
	int	mport;
	int	stale;	     /* ask the sentinels before the next connect */
	int64_t next_ask_ms; /* no discovery before this (clock_mono_ms) */
	int	ask_wait_ms; /* the current back-off */
};

/* The number in s[0..n) when it is all digits and in [lo, hi], else -1. */
int rds_num(const char *s, size_t n, int lo, int hi);
/* 1 when the last I/O error on c was a timeout (errno saved by caller). */
int rds_timedout(const redisContext *c, int saved);

/*
 * Sentinel mode (rds_sentinel.c). rds_lost_master(): forget the master,
 * ask the sentinels before the next connect (not before the back-off).
 * rds_not_master_reply(): 1 when an error reply says the server takes no
 * writes now. rds_discover(): the master's address into r->mhost (BW_OK,
 * BW_ENOMEM, BW_EREDIS). rds_check_master(): ROLE on the fresh r->c must
 * say master (BW_OK, BW_ETIMEOUT, BW_EREDIS).
 */
void	    rds_lost_master(struct rds *r);
int	    rds_not_master_reply(const redisReply *rep);
enum bw_err rds_discover(struct rds *r);
enum bw_err rds_check_master(struct rds *r);

#endif
