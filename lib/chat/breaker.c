/* SPDX-License-Identifier: MIT */
/*
 * A circuit breaker whose state lives in one Redis hash (st, fails,
 * opened_ms, probe_until) changed only by Lua scripts with Redis server
 * time, so all instances share one view of the provider: consecutive
 * failures open it, a cool-down later one probe is let through, the probe's
 * outcome closes or reopens it.
 */
#include <stdio.h>
#include <string.h>

#include "chat/breaker.h"
#include "core/log.h"

static enum bw_err brk_key(char *out, size_t len, const char *name);

#define BRK_LUA_HEAD                                                       \
	"local K = KEYS[1]\n"                                              \
	"local t = redis.call('TIME')\n"                                   \
	"local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / " \
	"1000)\n"                                                          \
	"local function fmt(x) return string.format('%d', x) end\n"        \
	"local st = tonumber(redis.call('HGET', K, 'st') or '0')\n"

/* ARGV: open ms, probe ms. Returns {allowed, state}. */
static struct rds_script brk_allow_lua = { .src = BRK_LUA_HEAD
	"if st == 0 then return { 1, 0 } end\n"
	"if st == 1 then\n"
	"  local opened = tonumber(redis.call('HGET', K, 'opened_ms') or '0')\n"
	"  if now < opened + tonumber(ARGV[1]) then return { 0, 1 } end\n"
	"  redis.call('HSET', K, 'st', 2, 'probe_until',\n"
	"      fmt(now + tonumber(ARGV[2])))\n"
	"  return { 1, 2 }\n"
	"end\n"
	"local pu = tonumber(redis.call('HGET', K, 'probe_until') or '0')\n"
	"if now < pu then return { 0, 2 } end\n"
	"redis.call('HSET', K, 'probe_until', fmt(now + tonumber(ARGV[2])))\n"
	"return { 1, 2 }\n" };

/* ARGV: ok (1/0), threshold. Returns the state after. */
static struct rds_script brk_record_lua = { .src = BRK_LUA_HEAD
	"if ARGV[1] == '1' then\n"
	"  if st ~= 0 or (redis.call('HGET', K, 'fails') or '0') ~= '0' then\n"
	"    redis.call('HSET', K, 'st', 0, 'fails', 0)\n"
	"  end\n"
	"  return 0\n"
	"end\n"
	"if st == 1 then return 1 end\n"
	"if st == 2 then\n"
	"  redis.call('HSET', K, 'st', 1, 'opened_ms', fmt(now))\n"
	"  return 1\n"
	"end\n"
	"local f = redis.call('HINCRBY', K, 'fails', 1)\n"
	"if f >= tonumber(ARGV[2]) then\n"
	"  redis.call('HSET', K, 'st', 1, 'opened_ms', fmt(now))\n"
	"  return 1\n"
	"end\n"
	"return 0\n" };

/* No ARGV. Returns the state. */
static struct rds_script brk_state_lua = { .src = BRK_LUA_HEAD "return st\n" };

const char *
breaker_state_name(enum brk_state s)
{
	switch (s) {
	case BRK_OPEN:
		return "open";
	case BRK_HALF_OPEN:
		return "half_open";
	default:
		return "closed";
	}
}

enum bw_err
breaker_key(char *out, size_t len, const char *name)
{
	return brk_key(out, len, name);
}

/* "brk:{llm}:<name>" for a name of [a-z0-9_-]; BW_EINVAL otherwise. */
static enum bw_err
brk_key(char *out, size_t len, const char *name)
{
	size_t i;
	int    n;

	if (name == NULL || name[0] == '\0')
		return BW_EINVAL;
	for (i = 0; name[i] != '\0'; i++) {
		if (i >= BRK_MAX_NAME)
			return BW_EINVAL;
		if (!((name[i] >= 'a' && name[i] <= 'z') ||
			(name[i] >= '0' && name[i] <= '9') || name[i] == '_' ||
			name[i] == '-'))
			return BW_EINVAL;
	}
	n = snprintf(out, len, "brk:{llm}:%s", name);
	return n < 0 || (size_t)n >= len ? BW_EINVAL : BW_OK;
}

/* 1 when c holds usable numbers. */
static int
brk_cfg_ok(const struct brk_cfg *c)
{
	return c != NULL && c->fail_threshold >= 1 && c->open_ms >= 1 &&
	    c->probe_ms >= 1;
}

/* Runs a breaker script; any Redis failure is BW_EREDIS. */
static enum bw_err
brk_run(struct rds *rds, struct rds_script *s, const char *key, int nargs,
    const char *a1, const char *a2, redisReply **rep)
{
	const char *av[3] = { key, a1, a2 };
	enum bw_err er;

	er = rds_eval(rds, s, 1, 1 + nargs, av, NULL, rep);
	if (er != BW_OK && *rep != NULL) {
		freeReplyObject(*rep);
		*rep = NULL;
	}
	return er == BW_OK || er == BW_EINVAL ? er : BW_EREDIS;
}

enum bw_err
breaker_allow(struct rds *rds, const char *name, const struct brk_cfg *c,
    int *allowed, enum brk_state *st)
{
	char	    key[BRK_MAX_KEY], om[16], pm[16];
	redisReply *rep = NULL;
	enum bw_err er;
	long long   a, s;

	if (rds == NULL || !brk_cfg_ok(c) || allowed == NULL)
		return BW_EINVAL;
	er = brk_key(key, sizeof(key), name);
	if (er != BW_OK)
		return er;
	snprintf(om, sizeof(om), "%d", c->open_ms);
	snprintf(pm, sizeof(pm), "%d", c->probe_ms);
	er = brk_run(rds, &brk_allow_lua, key, 2, om, pm, &rep);
	if (er != BW_OK)
		return er;
	a = rds_int(rep, 0);
	s = rds_int(rep, 1);
	freeReplyObject(rep);
	if (a < 0 || s < 0 || s >= BRK__MAX)
		return BW_EREDIS;
	*allowed = (int)a;
	if (st != NULL)
		*st = (enum brk_state)s;
	if (s == BRK_HALF_OPEN && a == 1)
		log_kv(LL_INFO, "breaker: half-open probe", "breaker", name,
		    NULL);
	return BW_OK;
}

enum bw_err
breaker_record(struct rds *rds, const char *name, const struct brk_cfg *c,
    int ok, enum brk_state *st)
{
	char	    key[BRK_MAX_KEY], th[16];
	redisReply *rep = NULL;
	enum bw_err er;
	long long   s;

	if (rds == NULL || !brk_cfg_ok(c))
		return BW_EINVAL;
	er = brk_key(key, sizeof(key), name);
	if (er != BW_OK)
		return er;
	snprintf(th, sizeof(th), "%d", c->fail_threshold);
	er = brk_run(rds, &brk_record_lua, key, 2, ok ? "1" : "0", th, &rep);
	if (er != BW_OK)
		return er;
	s = rds_int(rep, -1);
	freeReplyObject(rep);
	if (s < 0 || s >= BRK__MAX)
		return BW_EREDIS;
	if (st != NULL)
		*st = (enum brk_state)s;
	return BW_OK;
}

enum bw_err
breaker_state(struct rds *rds, const char *name, enum brk_state *st)
{
	char	    key[BRK_MAX_KEY];
	redisReply *rep = NULL;
	enum bw_err er;
	long long   s;

	if (rds == NULL || st == NULL)
		return BW_EINVAL;
	er = brk_key(key, sizeof(key), name);
	if (er != BW_OK)
		return er;
	er = brk_run(rds, &brk_state_lua, key, 0, NULL, NULL, &rep);
	if (er != BW_OK)
		return er;
	s = rds_int(rep, -1);
	freeReplyObject(rep);
	if (s < 0 || s >= BRK__MAX)
		return BW_EREDIS;
	*st = (enum brk_state)s;
	return BW_OK;
}
