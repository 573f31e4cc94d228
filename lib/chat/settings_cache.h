/* SPDX-License-Identifier: MIT */
/*
 * An org's chat settings (budget_settings_get()) through the per-child
 * cache (platform/pcache.h), for bulwark-fcgi's chat turns, which run after
 * the limiter confirmed the cache's generation. The settings carry the
 * org's local day, which changes at the org's midnight: an entry also
 * expires before the next quarter hour of UTC (every time zone's midnight
 * and DST change falls on one), less a margin for the clock skew between
 * this host and PostgreSQL.
 */
#ifndef BW_SETTINGS_CACHE_H
#define BW_SETTINGS_CACHE_H

#include <stdint.h>

#include "chat/budget.h"

#define SETTINGS_CACHE_MARGIN_MS 10000 /* tolerated clock skew to the db */

/* budget_settings_get() with the same returns; misses fill the cache. */
enum bw_err budget_settings_get_cached(struct db *, const char *org_id,
    const char *dflt_primary, const char *dflt_fallback,
    struct budget_settings *out);

/*
 * How long settings read between wall clock t0_ms and t1_ms may be kept:
 * until the quarter hour they were read in ends, less the margin; 0 when
 * the read was too close to its start or end to tell which it saw.
 */
int64_t settings_cache_max_age_ms(int64_t t0_ms, int64_t t1_ms);

#endif
