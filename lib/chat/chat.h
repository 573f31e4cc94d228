/* SPDX-License-Identifier: MIT */
/*
 * The chat path, one function shared by the HTTP handler and the LINE
 * worker: conversation state read (its pipeline fields, merged with the
 * caller's, go to the model as one system line, CHAT_KNOWN_PREFIX
 * "service=…; area=…") -> budget decision and hold -> LLM
 * semaphore lease (queued with a deadline) -> provider call with lease
 * renewal -> lease release -> conversation append -> settlement. The lease
 * is released and the hold settled or released on every way out. Rate
 * limits are the caller's (the HTTP middleware).
 */
#ifndef BW_CHAT_H
#define BW_CHAT_H

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "core/config.h"
#include "core/db.h"
#include "core/err.h"
#include "chat/conv.h"
#include "chat/llm.h"
#include "core/rds.h"

#define CHAT_MAX_MESSAGE	4000 /* characters of one message */
#define CHAT_MAX_USER		128  /* characters of a user id */
#define CHAT_DEADLINE_MARGIN_MS 1000 /* kept for settling and answering */
#define CHAT_MAX_STATE_FIELD	128  /* characters of a pipeline field */
#define CHAT_KNOWN_PREFIX	"Known so far: "

/* Per-process resources, opened by the caller (after fork()). */
struct chat_ctx {
	const struct config *cfg;
	struct db	    *db;
	struct rds	    *rds;
	struct llm	    *llm;
	/* The process's budget blocks (lib/chat/block.h); NULL: a hold of
	 * its own for every call. */
	struct block_set *blocks;
};

struct chat_in {
	const char *org_id;
	const char *channel; /* "web", "line", "api" */
	const char *user_id;
	const char *message;
	const char *request_id;
	const char *correlation_id;
	int64_t	    start_ms; /* clock_mono_ms() at arrival */
	/*
	 * Pipeline fields the caller knows (NULL members: unchanged, ""
	 * clears): shown to the model with this turn and stored with it.
	 */
	struct conv_fields fields;
	/*
	 * 1: an answered turn writes its own line ("chat turn", the fields of
	 * chat_out_log_fields()); 0: the caller puts them on its access line.
	 */
	int log_turn;
	/* Optional: one more Redis call for the turn's first round trip. */
	const struct chat_rider *rider;
};

/*
 * A call of the caller's own that rides in the turn's first Redis round
 * trip (bulwark-fcgi's rate limiter, fcgi/mw_rate.h), sent before any
 * money or slot is kept. prep fills call: 1 (send it), 0 (nothing to
 * send: go on), -1 (stop: the caller has answered). done reads call's
 * reply (the caller does not free it): 1 go on; 2 go on, but what came
 * from the per-child caches must be read again (they were flushed); 0
 * stop, the caller has answered. The turn then ends CO_ANSWERED, its
 * first try for a slot given back.
 */
struct chat_rider {
	int (*prep)(void *arg, struct rds_call *call);
	int (*done)(void *arg, const struct rds_call *call);
	void *arg;
};

enum chat_outcome {
	CO_OK,	       /* 200 */
	CO_BUDGET,     /* 402 BUDGET_EXCEEDED, reply = fallback */
	CO_CAPACITY,   /* 503 CAPACITY_EXHAUSTED, Retry-After */
	CO_UPSTREAM,   /* 502 UPSTREAM_UNAVAILABLE, reply = fallback */
	CO_DEPENDENCY, /* 503 DEPENDENCY_UNAVAILABLE (Redis or PostgreSQL) */
	CO_NOPRICE,    /* 409 INVALID_STATE: the model has no price */
	CO_NOTFOUND,   /* unknown org */
	CO_ANSWERED,   /* the rider stopped the turn and answered */
	CO__MAX
};

struct chat_out {
	enum chat_outcome outcome;
	char		 *reply; /* owned; answer or fallback */
	char		  model[201];
	bool		  downgraded;
	int64_t		  input_tokens;
	int64_t		  output_tokens;
	int64_t		  cost_micros;
	int64_t		  turns;	 /* session turns after this one */
	struct conv_state state;	 /* pipeline fields after this one */
	int		  retry_after_s; /* CO_CAPACITY, CO_DEPENDENCY */
	int		  attempts;
	int64_t		  held_micros; /* the hold settled */
	int64_t		  llm_ms;      /* the answered attempt */
	int64_t		  queue_ms;    /* waited for the slot */
};

/*
 * Runs one chat turn. Always fills *out (clear with chat_out_clear());
 * returns BW_OK when out->outcome says what to answer, BW_ENOMEM otherwise.
 */
enum bw_err
     chat_run(struct chat_ctx *, const struct chat_in *, struct chat_out *out);
void chat_out_clear(struct chat_out *);
/*
 * Adds an answered turn's figures to f (a JSON object, for a log line):
 * model, attempts, llm_ms, queue_ms, charged_micros, held_micros.
 */
void chat_out_log_fields(const struct chat_out *, struct json_object *f);
/* "ok", "budget_exceeded", ... (the metric label). */
const char *chat_outcome_name(enum chat_outcome);
/*
 * Registers the chat metrics (after metrics_init(), before fork()).
 * Returns 0, or -1 when the metric table is full.
 */
int chat_metrics_register(void);

#endif
