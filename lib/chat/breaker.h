/* SPDX-License-Identifier: MIT */
/*
 * A circuit breaker shared through Redis (key "brk:{llm}:<name>", Redis
 * server time), so every instance sees the same provider state. Closed
 * until fail_threshold consecutive failures; open (fail fast) for open_ms;
 * then half-open: one probe is let through (another one only if the probe
 * did not report within probe_ms); its success closes the breaker, its
 * failure opens it again for open_ms.
 */
#ifndef BW_BREAKER_H
#define BW_BREAKER_H

#include "core/err.h"
#include "core/rds.h"

/* The thresholds come from config (llm_breaker_failures, _open_ms). */
#define BRK_MAX_NAME 64
#define BRK_MAX_KEY  (16 + BRK_MAX_NAME)

enum brk_state {
	BRK_CLOSED = 0,
	BRK_OPEN = 1,
	BRK_HALF_OPEN = 2, /* the metric's values are these numbers */
	BRK__MAX
};

struct brk_cfg {
	int fail_threshold; /* >= 1 */
	int open_ms;	    /* >= 1 */
	int probe_ms;	    /* >= 1 */
};

/*
 * The key of breaker name ("brk:{llm}:<name>", name of [a-z0-9_-]) into
 * out (BRK_MAX_KEY bytes): for scripts that check the breaker in the same
 * call as something else (lib/chat/sem.h). BW_EINVAL on a bad name.
 */
enum bw_err breaker_key(char *out, size_t len, const char *name);
/* "closed", "open", "half_open". */
const char *breaker_state_name(enum brk_state);
/*
 * May a call go to the provider now? *allowed is 1 when closed, or when
 * this caller becomes the half-open probe (an open breaker whose cool-down
 * passed turns half-open here); else 0 (fail fast). *st (may be NULL) gets
 * the state after the decision. Returns BW_OK, BW_EINVAL, BW_EREDIS.
 */
enum bw_err breaker_allow(struct rds *, const char *name,
    const struct brk_cfg *, int *allowed, enum brk_state *st);
/*
 * Reports one provider attempt: ok 1 (any answer that is not a retryable
 * failure) resets the failure count and closes the breaker; ok 0 (5xx, 429,
 * timeout, connection error) counts a failure, opening the breaker at the
 * threshold or at once when half-open. Returns BW_OK, BW_EINVAL, BW_EREDIS.
 */
enum bw_err breaker_record(struct rds *, const char *name,
    const struct brk_cfg *, int ok, enum brk_state *st);
/* The current state without changing it (for the circuit-state metric). */
enum bw_err breaker_state(struct rds *, const char *name, enum brk_state *st);

#endif
