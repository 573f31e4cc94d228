/* SPDX-License-Identifier: MIT */
/*
 * The LLM semaphore in Redis. Keys (one hash tag, {llm}, so Redis Cluster
 * keeps them in one slot and one script may touch them all):
 *
 *   sem:{llm}:g          zset "<org>|<lease>" -> expiry ms (global leases)
 *   sem:{llm}:o:<org>    zset "<lease>" -> expiry ms (the org's leases)
 *   sem:{llm}:q:<org>    zset "<waiter>" -> ticket (the org's FIFO queue)
 *   sem:{llm}:qe         zset "<org>|<waiter>" -> expiry ms (live waiters)
 *   sem:{llm}:ring       zset "<org>" -> turn (orgs with waiters)
 *   sem:{llm}:seq        counter for tickets and turns
 *   sem:{llm}:cap        hash "<org>" -> the org's cap its waiters asked
 *   sem:{llm}:w:<waiter> list: wake tokens for one waiter
 *
 * The turn belongs to the org lowest in the ring whose queue is not empty
 * and whose lease count is under its cap; only the head of that org's queue
 * may take a free slot, and the org then moves to the back of the ring. So
 * every other waiting org is served before a busy org gets a second slot.
 * Expired leases and silent waiters are reclaimed by every acquire.
 */
#include <stdio.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/sec.h"
#include "chat/sem.h"

#define SEM_NKEYS 5

static const char *const sem_keys[SEM_NKEYS] = {
	"sem:{llm}:g",
	"sem:{llm}:ring",
	"sem:{llm}:qe",
	"sem:{llm}:seq",
	"sem:{llm}:cap",
};

/* Shared head of every script: names, server time, the turn, wake-ups. */
#define SEM_LUA_HEAD                                                           \
	"local G, R, QE, SEQ, CAP = KEYS[1], KEYS[2], KEYS[3], KEYS[4], "      \
	"KEYS[5]\n"                                                            \
	"local P = 'sem:{llm}:'\n"                                             \
	"local t = redis.call('TIME')\n"                                       \
	"local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / "     \
	"1000)\n"                                                              \
	"local function fmt(x) return string.format('%d', x) end\n"            \
	"local function split(m)\n"                                            \
	"  local s = string.find(m, '|', 1, true)\n"                           \
	"  return string.sub(m, 1, s - 1), string.sub(m, s + 1)\n"             \
	"end\n"                                                                \
	"local function next_turn()\n"                                         \
	"  local orgs = redis.call('ZRANGE', R, 0, -1)\n"                      \
	"  for _, o in ipairs(orgs) do\n"                                      \
	"    local h = redis.call('ZRANGE', P .. 'q:' .. o, 0, 0)\n"           \
	"    if #h == 0 then\n"                                                \
	"      redis.call('ZREM', R, o)\n"                                     \
	"    else\n"                                                           \
	"      local c = tonumber(redis.call('HGET', CAP, o) or '0')\n"        \
	"      if redis.call('ZCARD', P .. 'o:' .. o) < c then\n"              \
	"        return o, h[1]\n"                                             \
	"      end\n"                                                          \
	"    end\n"                                                            \
	"  end\n"                                                              \
	"  return nil, nil\n"                                                  \
	"end\n"                                                                \
	"local function wake()\n"                                              \
	"  local o, w = next_turn()\n"                                         \
	"  if w then\n"                                                        \
	"    local k = P .. 'w:' .. w\n"                                       \
	"    if redis.call('LLEN', k) == 0 then redis.call('RPUSH', k, '1') "  \
	"end\n"                                                                \
	"    redis.call('PEXPIRE', k, 5000)\n"                                 \
	"  end\n"                                                              \
	"end\n"                                                                \
	"local function unqueue(o, w)\n"                                       \
	"  local q = P .. 'q:' .. o\n"                                         \
	"  redis.call('ZREM', q, w)\n"                                         \
	"  redis.call('ZREM', QE, o .. '|' .. w)\n"                            \
	"  redis.call('DEL', P .. 'w:' .. w)\n"                                \
	"  if redis.call('ZCARD', q) == 0 then redis.call('ZREM', R, o) end\n" \
	"end\n"

/*
 * ARGV: org, waiter, lease, global cap, org cap, lease ms, waiter ttl ms.
 * Returns {granted, reclaimed, expiry_ms}.
 */
static struct rds_script sem_acquire_lua = { .src = SEM_LUA_HEAD
	"local org, waiter, lease = ARGV[1], ARGV[2], ARGV[3]\n"
	"local gcap, ocap = tonumber(ARGV[4]), tonumber(ARGV[5])\n"
	"local lease_ms, wttl = tonumber(ARGV[6]), tonumber(ARGV[7])\n"
	"local reclaimed = 0\n"
	"for _, m in ipairs(redis.call('ZRANGEBYSCORE', G, '-inf', fmt(now))) "
	"do\n"
	"  local o, l = split(m)\n"
	"  redis.call('ZREM', G, m)\n"
	"  redis.call('ZREM', P .. 'o:' .. o, l)\n"
	"  reclaimed = reclaimed + 1\n"
	"end\n"
	"for _, m in ipairs(redis.call('ZRANGEBYSCORE', QE, '-inf', fmt(now))) "
	"do\n"
	"  local o, w = split(m)\n"
	"  unqueue(o, w)\n"
	"end\n"
	"local q = P .. 'q:' .. org\n"
	"if not redis.call('ZSCORE', q, waiter) then\n"
	"  local s = redis.call('INCR', SEQ)\n"
	"  redis.call('ZADD', q, s, waiter)\n"
	"  redis.call('ZADD', R, 'NX', s, org)\n"
	"end\n"
	"redis.call('ZADD', QE, fmt(now + wttl), org .. '|' .. waiter)\n"
	"redis.call('HSET', CAP, org, ocap)\n"
	"if redis.call('ZCARD', G) < gcap then\n"
	"  local o, w = next_turn()\n"
	"  if o == org and w == waiter then\n"
	"    local exp = now + lease_ms\n"
	"    redis.call('ZADD', G, fmt(exp), org .. '|' .. lease)\n"
	"    redis.call('ZADD', P .. 'o:' .. org, fmt(exp), lease)\n"
	"    unqueue(org, waiter)\n"
	"    if redis.call('ZCARD', q) > 0 then\n"
	"      redis.call('ZADD', R, redis.call('INCR', SEQ), org)\n"
	"    end\n"
	"    if redis.call('ZCARD', G) < gcap then wake() end\n"
	"    return { 1, reclaimed, exp }\n"
	"  end\n"
	"  if w then wake() end\n"
	"end\n"
	"return { 0, reclaimed, 0 }\n" };

/* ARGV: org, waiter. Leaves the queue; wakes whoever's turn it is now. */
static struct rds_script sem_cancel_lua = { .src = SEM_LUA_HEAD
	"unqueue(ARGV[1], ARGV[2])\n"
	"wake()\n"
	"return 1\n" };

/* ARGV: org, lease. Returns 1 when this lease was held, else 0. */
static struct rds_script sem_release_lua = { .src = SEM_LUA_HEAD
	"local n = redis.call('ZREM', G, ARGV[1] .. '|' .. ARGV[2])\n"
	"redis.call('ZREM', P .. 'o:' .. ARGV[1], ARGV[2])\n"
	"if n == 1 then wake() end\n"
	"return n\n" };

/* ARGV: org, lease, lease ms. Returns the new expiry, or 0 when gone. */
static struct rds_script sem_renew_lua = { .src = SEM_LUA_HEAD
	"local m = ARGV[1] .. '|' .. ARGV[2]\n"
	"if not redis.call('ZSCORE', G, m) then return 0 end\n"
	"local exp = now + tonumber(ARGV[3])\n"
	"redis.call('ZADD', G, 'XX', fmt(exp), m)\n"
	"redis.call('ZADD', P .. 'o:' .. ARGV[1], 'XX', fmt(exp), ARGV[2])\n"
	"return exp\n" };

/* ARGV: org or "". Live leases (not yet expired). */
static struct rds_script sem_count_lua = { .src = SEM_LUA_HEAD
	"local k = G\n"
	"if ARGV[1] ~= '' then k = P .. 'o:' .. ARGV[1] end\n"
	"return redis.call('ZCOUNT', k, '(' .. fmt(now), '+inf')\n" };

/* ARGV: org or "". Queued waiters. */
static struct rds_script sem_waiting_lua = { .src = SEM_LUA_HEAD
	"if ARGV[1] == '' then return redis.call('ZCARD', QE) end\n"
	"return redis.call('ZCARD', P .. 'q:' .. ARGV[1])\n" };

/* A random id of SEM_ID_LEN hex characters. */
static enum bw_err
sem_newid(char out[SEM_ID_LEN + 1])
{
	uint8_t	    rnd[SEM_ID_LEN / 2];
	enum bw_err er;

	er = sec_random(rnd, sizeof(rnd));
	if (er == BW_OK)
		sec_hex(rnd, sizeof(rnd), out);
	return er;
}

/*
 * Runs one semaphore script with the fixed keys and argv. *rep on BW_OK
 * (caller frees). Any Redis failure, a Redis timeout included, is
 * BW_EREDIS: BW_ETIMEOUT means the queue deadline to callers.
 */
static enum bw_err
sem_run(struct rds *rds, struct rds_script *s, int argc, const char **args,
    redisReply **rep)
{
	const char *av[SEM_NKEYS + 8];
	enum bw_err er;
	int	    i;

	if (argc < 0 || argc > 8)
		return BW_EINVAL;
	for (i = 0; i < SEM_NKEYS; i++)
		av[i] = sem_keys[i];
	for (i = 0; i < argc; i++)
		av[SEM_NKEYS + i] = args[i];
	er = rds_eval(rds, s, SEM_NKEYS, SEM_NKEYS + argc, av, NULL, rep);
	if (er != BW_OK && *rep != NULL) {
		freeReplyObject(*rep);
		*rep = NULL;
	}
	if (er == BW_EINVAL || er == BW_ENOMEM || er == BW_OK)
		return er;
	return BW_EREDIS;
}

/* Leaves the queue after the deadline; errors are only logged. */
static void
sem_cancel(struct rds *rds, const char *org, const char *waiter)
{
	const char *args[2] = { org, waiter };
	redisReply *rep = NULL;

	if (sem_run(rds, &sem_cancel_lua, 2, args, &rep) != BW_OK)
		log_kv(LL_WARN,
		    "sem: leaving the queue failed; the entry "
		    "expires by itself",
		    NULL);
	if (rep != NULL)
		freeReplyObject(rep);
}

/*
 * Sleeps on the waiter's wake list for at most ms milliseconds (BLPOP with
 * a fractional timeout, Redis >= 6). A token or the timeout both mean: try
 * again.
 */
static enum bw_err
sem_sleep(struct rds *rds, const char *wkey, int64_t ms)
{
	const char *av[3];
	char	    tmo[24];
	redisReply *rep = NULL;
	enum bw_err er;

	if (ms < 1)
		ms = 1;
	if (ms > SEM_POLL_MS)
		ms = SEM_POLL_MS;
	snprintf(tmo, sizeof(tmo), "%lld.%03lld", (long long)(ms / 1000),
	    (long long)(ms % 1000));
	av[0] = "BLPOP";
	av[1] = wkey;
	av[2] = tmo;
	er = rds_cmd(rds, 3, av, NULL, &rep);
	if (rep != NULL)
		freeReplyObject(rep);
	return er == BW_OK ? BW_OK : BW_EREDIS;
}

enum bw_err
sem_acquire(struct rds *rds, const char *org_id, int global_cap, int org_cap,
    int lease_ms, int wait_ms, struct sem_lease *out, struct sem_stats *st)
{
	struct sem_stats s;
	struct sem_lease l;
	const char	*args[7];
	char		 waiter[SEM_ID_LEN + 1], wkey[64];
	char		 gc[16], oc[16], lm[16], wt[16];
	redisReply	*rep = NULL;
	enum bw_err	 er;
	int64_t		 t0, deadline, left;
	long long	 granted, exp;

	memset(&s, 0, sizeof(s));
	t0 = clock_mono_us();
	if (rds == NULL || !rds_word_ok(org_id, SEM_MAX_ORG) ||
	    global_cap < 1 || org_cap < 1 || lease_ms < 100 || wait_ms < 0 ||
	    out == NULL) {
		er = BW_EINVAL;
		goto out;
	}
	memset(&l, 0, sizeof(l));
	er = sem_newid(l.id);
	if (er == BW_OK)
		er = sem_newid(waiter);
	if (er != BW_OK)
		goto out;
	snprintf(l.org_id, sizeof(l.org_id), "%s", org_id);
	l.lease_ms = lease_ms;
	snprintf(wkey, sizeof(wkey), "sem:{llm}:w:%s", waiter);
	snprintf(gc, sizeof(gc), "%d", global_cap);
	snprintf(oc, sizeof(oc), "%d", org_cap);
	snprintf(lm, sizeof(lm), "%d", lease_ms);
	snprintf(wt, sizeof(wt), "%d", SEM_WAITER_TTL_MS);
	args[0] = org_id;
	args[1] = waiter;
	args[2] = l.id;
	args[3] = gc;
	args[4] = oc;
	args[5] = lm;
	args[6] = wt;
	deadline = t0 / 1000 + wait_ms;
	for (;;) {
		er = sem_run(rds, &sem_acquire_lua, 7, args, &rep);
		if (er != BW_OK)
			goto out;
		s.tries++;
		granted = rds_int(rep, 0);
		exp = rds_int(rep, 2);
		if (granted < 0 || rds_int(rep, 1) < 0 || exp < 0) {
			log_kv(LL_ERROR, "sem: unexpected script reply", NULL);
			er = BW_EREDIS;
			goto out;
		}
		s.reclaimed += (int)rds_int(rep, 1);
		freeReplyObject(rep);
		rep = NULL;
		if (granted == 1) {
			l.expires_ms = exp;
			*out = l;
			er = BW_OK;
			goto out;
		}
		left = deadline - clock_mono_ms();
		if (left <= 0) {
			sem_cancel(rds, org_id, waiter);
			er = BW_ETIMEOUT;
			goto out;
		}
		er = sem_sleep(rds, wkey, left);
		if (er != BW_OK)
			goto out;
	}
out:
	if (rep != NULL)
		freeReplyObject(rep);
	s.wait_us = clock_mono_us() - t0;
	if (st != NULL)
		*st = s;
	return er;
}

enum bw_err
sem_renew(struct rds *rds, struct sem_lease *l)
{
	const char *args[3];
	char	    lm[16];
	redisReply *rep = NULL;
	enum bw_err er;
	long long   exp;

	if (rds == NULL || l == NULL || !rds_word_ok(l->org_id, SEM_MAX_ORG) ||
	    l->id[0] == '\0' || l->lease_ms < 100)
		return BW_EINVAL;
	snprintf(lm, sizeof(lm), "%d", l->lease_ms);
	args[0] = l->org_id;
	args[1] = l->id;
	args[2] = lm;
	er = sem_run(rds, &sem_renew_lua, 3, args, &rep);
	if (er != BW_OK)
		return er;
	exp = rds_int(rep, -1);
	freeReplyObject(rep);
	if (exp < 0)
		return BW_EREDIS;
	if (exp == 0)
		return BW_ENOTFOUND;
	l->expires_ms = exp;
	return BW_OK;
}

enum bw_err
sem_release(struct rds *rds, const struct sem_lease *l)
{
	const char *args[2];
	redisReply *rep = NULL;
	enum bw_err er;
	long long   n;

	if (rds == NULL || l == NULL || !rds_word_ok(l->org_id, SEM_MAX_ORG) ||
	    l->id[0] == '\0')
		return BW_EINVAL;
	args[0] = l->org_id;
	args[1] = l->id;
	er = sem_run(rds, &sem_release_lua, 2, args, &rep);
	if (er != BW_OK)
		return er;
	n = rds_int(rep, -1);
	freeReplyObject(rep);
	if (n < 0)
		return BW_EREDIS;
	return n == 1 ? BW_OK : BW_ENOTFOUND;
}

/* Runs a counting script with org or "". */
static enum bw_err
sem_number(struct rds *rds, struct rds_script *s, const char *org, int *n)
{
	const char *args[1];
	redisReply *rep = NULL;
	enum bw_err er;
	long long   v;

	if (rds == NULL || n == NULL ||
	    (org != NULL && !rds_word_ok(org, SEM_MAX_ORG)))
		return BW_EINVAL;
	args[0] = org != NULL ? org : "";
	er = sem_run(rds, s, 1, args, &rep);
	if (er != BW_OK)
		return er;
	v = rds_int(rep, -1);
	freeReplyObject(rep);
	if (v < 0)
		return BW_EREDIS;
	*n = (int)v;
	return BW_OK;
}

enum bw_err
sem_count(struct rds *rds, const char *org_id, int *n)
{
	return sem_number(rds, &sem_count_lua, org_id, n);
}

enum bw_err
sem_waiting(struct rds *rds, const char *org_id, int *n)
{
	return sem_number(rds, &sem_waiting_lua, org_id, n);
}
