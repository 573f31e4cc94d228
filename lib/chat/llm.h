/* SPDX-License-Identifier: MIT */
/*
 * The LLM provider client: OpenAI chat completions over libcurl, with a
 * per-attempt timeout (first attempt, then retries), an overall deadline
 * that includes the waits, retries of 408/429/5xx/connection errors and
 * timeouts only (never 400/401/403/404/422), exponential backoff with
 * jitter, Retry-After when it fits in the deadline, a size-capped reply,
 * the provider circuit breaker shared through Redis (lib/chat/breaker.h), and a
 * tick callback run at least every LLM_TICK_MS so the caller can renew its
 * semaphore lease while the call runs.
 */
#ifndef BW_LLM_H
#define BW_LLM_H

#include <stddef.h>
#include <stdint.h>

#include "chat/breaker.h"
#include "core/err.h"
#include "core/rds.h"

#define LLM_TICK_MS	    1000	/* tick at least this often */
#define LLM_BACKOFF_BASE_MS 1000	/* 1 s, 2 s, 4 s, ... */
#define LLM_JITTER_MS	    500		/* + 0..500 ms */
#define LLM_MIN_ATTEMPT_MS  500		/* no attempt with less time left */
#define LLM_MAX_REPLY	    (64 * 1024) /* assistant text kept, bytes */

struct llm;

struct llm_msg {
	const char *role; /* "system", "user", "assistant" */
	const char *content;
};

/* Why a call ended without an answer. */
enum llm_fail {
	LF_NONE,
	LF_HTTP,      /* a non-retryable status, or retries spent */
	LF_TIMEOUT,   /* an attempt or the deadline timed out */
	LF_CONNECT,   /* connection refused/reset, closed early */
	LF_MALFORMED, /* 200 with a body we cannot read */
	LF_BREAKER,   /* the circuit breaker is open: no call made */
	LF_ABORTED,   /* tick asked to stop (lease lost) */
	LF__MAX
};

struct llm_opts {
	const char *base_url;	/* ".../v1" */
	const char *api_key;	/* may be "" */
	const char *org_id;	/* sent as X-Bulwark-Org */
	const char *request_id; /* sent as X-Request-ID, may be NULL */
	const char *model;
	int	    max_tokens;
	int	    attempt_timeout_ms;
	int	    retry_timeout_ms;
	int	    max_retries;
	int64_t	    deadline_ms; /* clock_mono_ms() value */
	/* The breaker (NULL rds: none). */
	struct rds    *rds;
	const char    *breaker_name;
	struct brk_cfg breaker;
	/*
	 * The caller asked the breaker for the first attempt already
	 * (sem_acquire_brk(): it said yes, in state breaker_seen); and with
	 * breaker_defer_ok, a success is not recorded here but left to the
	 * caller (res->brk_ok_pending; sem_release_brk() records it).
	 */
	int	       breaker_checked;
	enum brk_state breaker_seen;
	int	       breaker_defer_ok;
	/* Called at least every LLM_TICK_MS; nonzero stops the call. */
	int (*tick)(void *arg);
	/* Called after each attempt: HTTP status or 0, and its duration. */
	void (*on_attempt)(void *arg, int attempt, int status,
	    enum llm_fail why, int64_t ms);
	/*
	 * Called before sleeping for a retry; nonzero: no retry (the call
	 * ends with the failed attempt's result, res->retry_refused set).
	 */
	int (*on_retry)(void *arg, int attempt, int64_t wait_ms);
	void *arg;
};

struct llm_result {
	char	      *reply;	   /* owned (free()); NULL without answer */
	char	       model[201]; /* as the provider named it */
	int64_t	       input_tokens;
	int64_t	       output_tokens;
	int	       attempts;      /* made */
	int	       failed_sent;   /* failed attempts the provider saw */
	int	       last_status;   /* HTTP status, 0 for transport */
	int	       retry_refused; /* on_retry said no */
	enum llm_fail  why;
	enum brk_state brk; /* breaker state seen last */
	int brk_ok_pending; /* a success the caller records (breaker_defer_ok) */
};

/* A client with its own reusable curl handle; NULL on ENOMEM. */
struct llm *llm_new(void);
void	    llm_free(struct llm *);
/*
 * Runs one chat completion with retries. Returns BW_OK with res filled
 * (reply set); BW_EUPSTREAM when the provider did not answer usefully
 * (res->why says why; res->reply NULL); BW_ETIMEOUT when the deadline
 * passed; BW_ENOMEM. res is always filled (llm_result_clear() it).
 */
enum bw_err llm_chat(struct llm *, const struct llm_opts *,
    const struct llm_msg *msgs, size_t n, struct llm_result *res);
void	    llm_result_clear(struct llm_result *);
/* 1 for statuses worth retrying: 408, 429, 500, 502, 503, 504. */
int llm_status_retryable(int status);
/* "none", "http", "timeout", ... */
const char *llm_fail_name(enum llm_fail);
/* The wait before retry number n (1-based): base * 2^(n-1) + jitter. */
int64_t llm_backoff_ms(int n, int jitter_ms);

#ifdef BW_TESTING
/* Static functions of llm.c, visible to tests (STATIC in core/err.h). */
int llm_jitter_ms(void);
#endif

#endif
