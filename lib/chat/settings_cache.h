/* SPDX-License-Identifier: MIT */
/*
 * An org's chat settings (budget_settings_get()) through the per-child
 * cache (platform/pcache.h), for bulwark-fcgi's chat turns, which run after
 * the limiter confirmed the cache's generation. The settings carry the
 * org's local day, which changes at the org's midnight: an entry expires
 * before it. PostgreSQL reads how long the day has left with the org's
 * time zone (DST changes included), so this host's clock needs to agree
 * with the database's only on how fast time passes, not on what time it
 * is. An entry is also kept at most SETTINGS_CACHE_MAX_AGE_MS.
 */
#ifndef BW_SETTINGS_CACHE_H
#define BW_SETTINGS_CACHE_H

#include <stdint.h>

#include "chat/budget.h"

#define SETTINGS_CACHE_MARGIN_MS  1000	  /* before the day's end */
#define SETTINGS_CACHE_MAX_AGE_MS 3600000 /* an hour */

/* budget_settings_get() with the same returns; misses fill the cache. */
enum bw_err budget_settings_get_cached(struct db *, const char *org_id,
    const char *dflt_primary, const char *dflt_fallback,
    struct budget_settings *out);

/*
 * How long settings read between monotonic t0_ms and t1_ms, with
 * day_left_ms left in the org's day at the read, may be kept: until that
 * day ends, less the read's own time and the margin, at most
 * SETTINGS_CACHE_MAX_AGE_MS; 0 when that leaves nothing.
 */
int64_t
settings_cache_max_age_ms(int64_t day_left_ms, int64_t t0_ms, int64_t t1_ms);

#endif
