/* SPDX-License-Identifier: MIT */
/*
 * The per-child cache of answers that almost never change (the API key's
 * principal, an org's rate-limit overrides, an org's chat settings), so a
 * request does not pay a PostgreSQL round trip for each. Bounded (a fixed
 * number of entries per cache, the oldest insert evicted first), every
 * entry stamped with the configuration generation it was filled under and
 * its insert time, with a TTL (auth_cache_ttl_s) as a safety net.
 *
 * Invalidation is by generation (lib/platform/cfggen.h): a value in Redis
 * that every writer of cached data changes after its commit. A child reads
 * it in the limiter's round trip (or alone) and hands it to
 * pcache_gen_observe(): when it differs from the one the cache was filled
 * under, every entry goes. Entries are stamped with the generation seen
 * BEFORE the database read that filled them, so an entry is never newer
 * in stamp than in content. While the generation is unknown (never read,
 * or Redis did not answer) nothing is served and nothing stored.
 *
 * One cache per process, not shared across fork(): call pcache_setup() in
 * each child. Not thread-safe (a prefork child serves one request at a
 * time).
 */
#ifndef BW_PCACHE_H
#define BW_PCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

enum pcache_id {
	PC_AUTH,	  /* sha256(key) -> principal */
	PC_AUTH_NEG,	  /* sha256(key) -> "no such active key" */
	PC_RATE,	  /* org id + route -> the org's overrides */
	PC_CHAT_SETTINGS, /* org id -> lib/chat settings */
	PC__MAX
};

#define PCACHE_KEY_MAX 96    /* bytes of a key */
#define PCACHE_VAL_MAX 65536 /* a larger value is not cached */
#define PCACHE_GEN_MAX 64    /* bytes of a generation value */

/*
 * (Re)starts the caches empty, generation unknown. ttl_s 0 turns caching
 * off (every lookup misses, nothing is stored). cap: entries per cache, 0
 * for the defaults (1024; 256 for the negative and settings caches).
 */
enum bw_err pcache_setup(int ttl_s, size_t cap);
/* 1 when pcache_setup() turned it on (ttl_s > 0). */
int pcache_enabled(void);
/*
 * The generation the entries were filled under; "" while unknown. What a
 * reader passes to the limiter as the generation it expects.
 */
const char *pcache_gen(void);
/*
 * A generation just read from Redis (NULL or "": could not be read). When
 * it differs from pcache_gen(), every entry is dropped (one flush counted)
 * and it becomes the current one. Returns 1 when it flushed, else 0.
 */
int pcache_gen_observe(const char *gen);
/* Drops every entry and forgets the generation (counted as a flush). */
void pcache_flush(void);
/*
 * The value stored under key in cache id, or NULL (a miss: none, expired,
 * filled under another generation, or caching off). *vlen gets its size.
 * The pointer is valid until the next pcache call. Counts a hit or a miss.
 */
const void *
pcache_get(enum pcache_id id, const void *key, size_t klen, size_t *vlen);
/*
 * Stores a copy of val under key, stamped with the current generation,
 * replacing an older value; when the cache is full the oldest insert goes.
 * max_age_ms > 0 expires it sooner than the TTL. Stores nothing (BW_OK)
 * when caching is off, the generation unknown, or the value larger than
 * PCACHE_VAL_MAX. BW_EINVAL on a bad key, BW_ENOMEM.
 */
enum bw_err pcache_put(enum pcache_id id, const void *key, size_t klen,
    const void *val, size_t vlen, int64_t max_age_ms);
/* Entries currently held in cache id (live or not yet overwritten). */
size_t pcache_count(enum pcache_id id);
/*
 * Registers bulwark_pcache_{hits,misses}_total{cache=...} and
 * bulwark_pcache_flushes_total. Before fork(). 0 or -1.
 */
int pcache_metrics_register(void);

#ifdef BW_TESTING
/* The clock pcache reads (monotonic microseconds); NULL: the real one. */
void pcache_set_clock(int64_t (*now_us)(void));
#endif

#endif
