/* SPDX-License-Identifier: MIT */
/*
 * API key verification through the per-child cache (platform/pcache.h).
 * A cached principal on a route whose limiter runs is provisional: the
 * limiter's script returns the configuration generation in the same round
 * trip and fcgi/mw_rate.c calls mw_auth_recheck() when it moved. A cached
 * answer anywhere else (a negative one, a route without a limiter, a role
 * the route refuses) is confirmed by reading the generation first.
 */
#ifndef BW_MW_AUTH_H
#define BW_MW_AUTH_H

#include <stddef.h>

#include "core/err.h"
#include "req.h"

/*
 * Fills r->who for the bearer key tok: auth_key_verify()'s returns. With
 * the cache off it is auth_key_verify().
 */
enum bw_err mw_auth_verify(struct req *r, const char *tok, size_t len);

/*
 * After the caches were flushed: when r->who came from the cache, verifies
 * the key again from the database and applies authentication's answers (401
 * with WWW-Authenticate, 503, 403, or public for an optional route).
 * Returns 1 to go on, 0 with the error set.
 */
int mw_auth_recheck(struct req *r);

#endif
