/* SPDX-License-Identifier: MIT */
/*
 * Reads of lib/platform data through the per-child cache
 * (platform/pcache.h): the principal of an API key (and the answer "no
 * such active key") and an org's rate-limit overrides of one route. A hit
 * is only as fresh as the cache's generation: the caller confirms it with
 * the generation read from Redis (the limiter's script, or cfggen_read())
 * before it acts on it, and asks again after a flush.
 */
#ifndef BW_CACHED_H
#define BW_CACHED_H

#include <stddef.h>
#include <stdint.h>

#include "core/db.h"
#include "core/err.h"
#include "platform/auth.h"
#include "platform/ratelimit.h"

/*
 * auth_key_verify_hash() through the cache: BW_OK (*p filled) or BW_EAUTH
 * from the cache (*hit = 1) or the database (*hit = 0, the answer stored);
 * BW_EDB is never cached.
 */
enum bw_err cached_auth(struct db *, const uint8_t h[32],
    struct auth_principal *p, int *hit);
/* rl_overrides() through the cache; *hit as above. */
enum bw_err cached_rl_overrides(struct db *, const char *org_id,
    const char *route, struct rl_rule *out, size_t max, size_t *n, int *hit);

#endif
