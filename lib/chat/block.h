/* SPDX-License-Identifier: MIT */
/*
 * Budget blocks (table llm_budget_blocks, sql/0040): a chat child reserves
 * a block of an org's day budget in one synchronous statement and places
 * the holds of its next calls inside it in memory, so that a turn costs
 * PostgreSQL one record (a settled llm_holds row and the block's used
 * charge, committed without waiting for its flush) instead of a hold
 * committed with its flush and a settlement. The block is renewed (its
 * recorded charges moved to spent, topped up) when a call does not fit or
 * it grows old, returned when its child is idle or exits, and expires
 * (charged whole) when its child or its session died. docs/chat-cost.md
 * "Budget blocks" says why the budget is never exceeded.
 *
 * One set per process; a prefork child serves one request at a time, so
 * at most one call is in flight in a set.
 */
#ifndef BW_BLOCK_H
#define BW_BLOCK_H

#include <stdbool.h>
#include <stdint.h>

#include "chat/budget.h"
#include "core/db.h"
#include "core/err.h"
#include "core/limits.h"

#define BLOCK_MAX     64 /* orgs with a block in one child */
#define BLOCK_REC_MAX 64 /* calls recorded in memory, not yet written */

struct block_cfg {
	int calls;     /* a block aims at this many calls' holds; 0 off */
	int pct;       /* with a daily budget: all blocks <= this % */
	int idle_ms;   /* block_return_idle() returns blocks idle this long */
	int ttl_s;     /* a block expires unless renewed within */
	int rec_batch; /* calls kept before a batch is written; <= 1: each
			* call written at its end */
	int rec_ms;    /* the oldest kept call is written within this */
	const char *owner; /* "host pid", on the row for operators */
};

struct budget_block {
	char	org_id[37];
	char	id[37];
	char	day[16];
	char	model[BUDGET_MODEL_MAX + 1];
	bool	downgraded;
	int64_t in_price; /* micros per million tokens */
	int64_t out_price;
	int	bytes_per_token;
	int	tokens_per_message;
	bool	has_budget; /* the org's settings when last renewed */
	bool	hard_stop;
	int64_t daily_micros;
	int64_t room;	     /* granted less the holds placed since */
	int64_t inflight;    /* the hold of the call in flight, 0: none */
	int64_t renew_ms;    /* clock_mono_ms() after which it is renewed */
	int64_t last_use_ms; /* clock_mono_ms() of its last call */
};

/*
 * A child takes an org's block at its second call of that org, not its
 * first: under a burst spread over many children most (child, org) pairs
 * see one call, and a block taken for one call is three statements (take,
 * record, return) where a hold of its own is two. seen[] remembers the
 * last BLOCK_MAX orgs this child served (least recently seen replaced).
 */
struct block_seen {
	char	org_id[37];
	int64_t ms; /* clock_mono_ms() of the org's last call here */
};

/*
 * A block call's record kept in memory until its batch is written (one
 * statement per block: the llm_holds rows and the block's used charge).
 * The block's reservation covers it meanwhile: a child that dies with
 * records unwritten leaves its block to expire, charged whole.
 */
struct block_rec {
	char	org_id[37];
	char	block_id[37];
	char	model[BUDGET_MODEL_MAX + 1];
	bool	downgraded;
	int	max_tokens;
	int	attempts;
	int64_t input_bound;
	int64_t held;
	int64_t charge;
	int64_t input_tokens;
	int64_t output_tokens;
	bool	has_rid, has_cid;
	char	request_id[BW_MAX_REQUEST_ID + 1];
	char	correlation_id[BW_MAX_REQUEST_ID + 1];
	int64_t at_ms; /* clock_wall_ms() of its end: settled_at */
	int64_t ms;    /* clock_mono_ms() of its end */
};

struct block_set {
	struct block_cfg    cfg;
	struct budget_block b[BLOCK_MAX];
	int		    n;
	struct block_seen   seen[BLOCK_MAX];
	struct block_rec    rec[BLOCK_REC_MAX]; /* oldest first */
	int		    nrec;
};

/* Registers bulwark_llm_budget_blocks_total (before fork()); 0 or -1. */
int block_metrics_register(void);

/*
 * Places the hold of one call (a) of org s in the org's block, taking or
 * renewing the block when the call does not fit or the block is due.
 * *held = true: hold is filled (hold->block set, hold->id empty; the model
 * is the block's); record it with block_settle() or block_release().
 * *held = false: no block covers it (blocks off, the child's first call
 * of the org (struct block_seen), no room within the blocks' share, an
 * unpriced model under a budget): place a hold of its own (budget_hold());
 * a block that could not fit it was returned first.
 * A db error leaves *held false and the block, if any, to expire.
 */
enum bw_err
block_hold(struct db *, struct block_set *, const struct budget_settings *s,
    const struct budget_ask *a, struct budget_hold *hold, bool *held);
/*
 * Before a retry of a block call: one attempt's input bound more, from the
 * block's room, or from a top-up (one statement). *extended = false: no
 * room (do not retry).
 */
enum bw_err block_extend(struct db *, struct block_set *,
    const struct budget_settings *s, struct budget_hold *hold, bool *extended);
/*
 * Records a block call with what it used (budget_charge()); *charged gets
 * the charge and meanwhile(arg) (may be NULL) runs. With cfg.rec_batch >
 * 1 the record is kept in the set, written with its block's batch by
 * block_return_idle() (or before the block is renewed or returned); else
 * written now, one statement committed without its flush, meanwhile
 * running while it executes. A write that fails drops the block from
 * the set (not returned: a record may be missing; it expires whole).
 */
enum bw_err block_settle(struct db *, struct block_set *, const char *org_id,
    const struct budget_hold *hold, const struct budget_usage *u,
    const char *request_id, const char *correlation_id,
    void (*meanwhile)(void *), void *arg, int64_t *charged);
/* A block call no provider call was made for: recorded, charge 0. */
enum bw_err block_release(struct db *, struct block_set *, const char *org_id,
    const struct budget_hold *hold, const char *request_id,
    const char *correlation_id);
/*
 * Between requests: writes the kept records when cfg.rec_batch of them
 * wait or the oldest is cfg.rec_ms old, then returns the blocks unused
 * for cfg.idle_ms (all records and blocks when all is true). Returns the
 * milliseconds until the next of these is due, -1 when nothing is held.
 */
int block_return_idle(struct db *, struct block_set *, bool all);
/*
 * bulwark-maint: expires up to batch held blocks past their expiry,
 * charging each whole (its reservation joins spent). *n gets how many.
 */
enum bw_err block_expire(struct db *, int batch, int *n);
/* Prepares the statements (db_warm()). */
enum bw_err block_warm(struct db *);

#endif
