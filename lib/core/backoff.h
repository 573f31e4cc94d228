/* SPDX-License-Identifier: MIT */
/*
 * The retry rules every provider client shares (the LLM client, the SMS
 * sender): which HTTP statuses are worth another attempt, the exponential
 * wait before retry n, and its jitter. Pure functions.
 */
#ifndef BW_BACKOFF_H
#define BW_BACKOFF_H

#include <stdint.h>

#define BACKOFF_BASE_MS	  1000 /* 1 s, 2 s, 4 s, ... */
#define BACKOFF_JITTER_MS 500  /* + 0..500 ms */

/* 1 for statuses worth retrying: 408, 429, 500, 502, 503, 504. */
int backoff_status_retryable(int status);
/* The wait before retry number n (1-based): base_ms * 2^(n-1) + jitter,
 * n clamped to 1..10. */
int64_t backoff_ms(int n, int64_t base_ms, int jitter_ms);
/* 0..max_ms ms, uniform enough (a 16-bit draw); max_ms / 2 when the
 * random source fails. */
int backoff_jitter_ms(int max_ms);

#endif
