/* SPDX-License-Identifier: MIT */
/*
 * The configuration generation: one Redis string that every writer of
 * data the per-child caches hold (lib/platform/pcache.h) replaces with a
 * fresh random value after its commit. Readers compare for inequality, and
 * a missing key is first set to a fresh random value, so a Redis that was
 * flushed or restarted empty also reads as a change. The limiter's script
 * reads it in the same round trip (lib/platform/ratelimit.c); requests
 * without a limiter read it with cfggen_read().
 */
#ifndef BW_CFGGEN_H
#define BW_CFGGEN_H

#include "core/err.h"
#include "core/rds.h"

/* Shares the {rl} hash tag so the limiter's script may read it. */
#define CFGGEN_KEY "bw:{rl}:cfg:gen"
#define CFGGEN_LEN 33 /* 'g' + 32 hex: one value, without the NUL */

/* A fresh random value into out (CFGGEN_LEN + 1 bytes). */
enum bw_err cfggen_new(char out[CFGGEN_LEN + 1]);
/*
 * The current value into out (size n, at least CFGGEN_LEN + 1), setting a
 * fresh one when the key is missing. BW_EREDIS when Redis cannot answer.
 */
enum bw_err cfggen_read(struct rds *, char *out, size_t n);
/*
 * Replaces the value: every child flushes its caches on its next request.
 * Call after the commit of a change to cached data. BW_EREDIS on failure.
 */
enum bw_err cfggen_bump(struct rds *);

#endif
