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
 *   sem:{llm}:fence      hash id (the master's replication id), until (ms)
 *
 * The turn belongs to the org lowest in the ring whose queue is not empty
 * and whose lease count is under its cap; only the head of that org's queue
 * may take a free slot, and the org then moves to the back of the ring. So
 * every other waiting org is served before a busy org gets a second slot.
 * Expired leases and silent waiters are reclaimed by every acquire.
 *
 * A Redis failover (Sentinel) loses what the old master had not yet sent
 * to the replica it promoted: leases granted in its last moments are not
 * on the new master while their holders still call the provider. So the
 * acquire fences: it keeps in sem:{llm}:fence the replication id of the
 * master it runs on (INFO replication's master_replid, which a promotion
 * changes); finding another id there (a promoted replica, or a restart
 * that loaded an old snapshot), or no fence on a server that followed
 * another master before (master_replid2 not zero), it grants nothing
 * until one lease lifetime has passed on this server. By then every lease
 * of the old master has expired, and its holders have stopped: a renewal
 * on the new master finds the lease gone (the call stops), and a holder
 * that cannot renew stops before its lease would expire (lib/chat/chat.c).
 * Waiters queue meanwhile and get the queue deadline's 503. A server that
 * never followed another master (a fresh one, a restart without data)
 * lost nothing and is not fenced.
 */
#include <stdio.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/sec.h"
#include "chat/sem.h"

#define SEM_NKEYS 6

static const char *const sem_keys[SEM_NKEYS] = {
	"sem:{llm}:g",
	"sem:{llm}:ring",
	"sem:{llm}:qe",
	"sem:{llm}:seq",
	"sem:{llm}:cap",
	"sem:{llm}:fence",
};

/*
 * Shared head of every script: names, the turn, wake-ups (SEM_LUA_NAMES);
 * SEM_LUA_HEAD adds the server time, which a release does not need.
 */
#define SEM_LUA_NAMES                                                          \
	"local G, R, QE, SEQ, CAP = KEYS[1], KEYS[2], KEYS[3], KEYS[4], "      \
	"KEYS[5]\n"                                                            \
	"local FENCE = KEYS[6]\n"                                              \
	"local P = 'sem:{llm}:'\n"                                             \
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

#define SEM_LUA_HEAD                                                       \
	SEM_LUA_NAMES                                                      \
	"local t = redis.call('TIME')\n"                                   \
	"local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / " \
	"1000)\n"

/*
 * ARGV: org, waiter, lease, global cap, org cap, lease ms, waiter ttl ms,
 * queued ("1" when an earlier try of this waiter queued it), breaker open
 * ms, breaker probe ms. KEYS[7], when given, is the provider's circuit
 * breaker (breaker.c: st, opened_ms, probe_until): a closed breaker, or an
 * open one whose cool-down passed, or a half-open one whose probe is not
 * out, lets a grant happen (and the grant takes the probe, as
 * breaker_allow() would); any other state answers 2 at once, the waiter
 * out of the queue. Returns {granted (1; 0 queued; 2 breaker), reclaimed,
 * expiry_ms, breaker state, fenced (1: a new master's first lease lifetime,
 * nothing granted)}. When nobody waits (QE empty) and both caps have
 * room, the lease is granted without touching the queue.
 */
static struct rds_script sem_acquire_lua = { .src = SEM_LUA_HEAD
	"local org, waiter, lease = ARGV[1], ARGV[2], ARGV[3]\n"
	"local gcap, ocap = tonumber(ARGV[4]), tonumber(ARGV[5])\n"
	"local lease_ms, wttl = tonumber(ARGV[6]), tonumber(ARGV[7])\n"
	"local B, bst = KEYS[7], 0\n"
	"if B then\n"
	"  local b = redis.call('HMGET', B, 'st', 'opened_ms', 'probe_until')\n"
	"  bst = tonumber(b[1] or '0') or 0\n"
	"  if (bst == 1 and now < tonumber(b[2] or '0') + tonumber(ARGV[9]))\n"
	"      or (bst == 2 and now < tonumber(b[3] or '0')) then\n"
	"    if ARGV[8] == '1' then unqueue(org, waiter) wake() end\n"
	"    return { 2, 0, 0, bst, 0 }\n"
	"  end\n"
	"end\n"
	"local fz = 0\n"
	"do\n"
	"  local info = redis.call('INFO', 'replication')\n"
	"  local id = string.match(info, 'master_replid:(%w+)') or '?'\n"
	"  local id2 = string.match(info, 'master_replid2:(%w+)') or '0'\n"
	"  local f = redis.call('HMGET', FENCE, 'id', 'until')\n"
	"  local u = tonumber(f[2] or '0') or 0\n"
	"  if f[1] ~= id then\n"
	"    u = now\n"
	"    if f[1] or string.find(id2, '[^0]') then u = now + lease_ms end\n"
	"    redis.call('HSET', FENCE, 'id', id, 'until', fmt(u))\n"
	"  end\n"
	"  if now < u then fz = 1 end\n"
	"end\n"
	"local function grant()\n"
	"  local exp = now + lease_ms\n"
	"  redis.call('ZADD', G, fmt(exp), org .. '|' .. lease)\n"
	"  redis.call('ZADD', P .. 'o:' .. org, fmt(exp), lease)\n"
	"  if bst == 1 then\n"
	"    redis.call('HSET', B, 'st', 2, 'probe_until',\n"
	"        fmt(now + tonumber(ARGV[10])))\n"
	"    bst = 2\n"
	"  elseif bst == 2 then\n"
	"    redis.call('HSET', B, 'probe_until', fmt(now + "
	"tonumber(ARGV[10])))\n"
	"  end\n"
	"  return exp\n"
	"end\n"
	"local reclaimed = 0\n"
	"for _, m in ipairs(redis.call('ZRANGEBYSCORE', G, '-inf', fmt(now))) "
	"do\n"
	"  local o, l = split(m)\n"
	"  redis.call('ZREM', G, m)\n"
	"  redis.call('ZREM', P .. 'o:' .. o, l)\n"
	"  reclaimed = reclaimed + 1\n"
	"end\n"
	"if fz == 0 and redis.call('ZCARD', QE) == 0\n"
	"    and redis.call('ZCARD', G) < gcap\n"
	"    and redis.call('ZCARD', P .. 'o:' .. org) < ocap then\n"
	"  return { 1, reclaimed, grant(), bst, 0 }\n"
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
	"if fz == 0 and redis.call('ZCARD', G) < gcap then\n"
	"  local o, w = next_turn()\n"
	"  if o == org and w == waiter then\n"
	"    local exp = grant()\n"
	"    unqueue(org, waiter)\n"
	"    if redis.call('ZCARD', q) > 0 then\n"
	"      redis.call('ZADD', R, redis.call('INCR', SEQ), org)\n"
	"    end\n"
	"    if redis.call('ZCARD', G) < gcap then wake() end\n"
	"    return { 1, reclaimed, exp, bst, 0 }\n"
	"  end\n"
	"  if w then wake() end\n"
	"end\n"
	"return { 0, reclaimed, 0, bst, fz }\n" };

/* ARGV: org, waiter. Leaves the queue; wakes whoever's turn it is now. */
static struct rds_script sem_cancel_lua = { .src = SEM_LUA_HEAD
	"unqueue(ARGV[1], ARGV[2])\n"
	"wake()\n"
	"return 1\n" };

/*
 * ARGV: org, lease, "1" to record a provider success on the breaker
 * KEYS[7] (breaker.c's record with ok 1: closed, no failures; written only
 * when that changes something), or "2" and the probe's end ARGV[4] to give
 * back the half-open probe this lease's grant took, no call made (the
 * next acquire may take it; only while the probe is still that one).
 * Returns 1 when this lease was held, else 0.
 */
static struct rds_script sem_release_lua = { .src = SEM_LUA_NAMES
	"local n = redis.call('ZREM', G, ARGV[1] .. '|' .. ARGV[2])\n"
	"redis.call('ZREM', P .. 'o:' .. ARGV[1], ARGV[2])\n"
	"if n == 1 then wake() end\n"
	"if KEYS[7] and ARGV[3] == '1' then\n"
	"  local b = redis.call('HMGET', KEYS[7], 'st', 'fails')\n"
	"  if (b[1] and b[1] ~= '0') or (b[2] and b[2] ~= '0') then\n"
	"    redis.call('HSET', KEYS[7], 'st', 0, 'fails', 0)\n"
	"  end\n"
	"elseif KEYS[7] and ARGV[3] == '2' and n == 1\n"
	"    and redis.call('HGET', KEYS[7], 'probe_until') == ARGV[4] then\n"
	"  redis.call('HSET', KEYS[7], 'probe_until', 0)\n"
	"end\n"
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
 * Runs one semaphore script with the fixed keys, then brk_key when not
 * NULL (KEYS[7]), and argv. *rep on BW_OK (caller frees). Any Redis
 * failure, a Redis timeout included, is BW_EREDIS: BW_ETIMEOUT means the
 * queue deadline to callers.
 */
static enum bw_err
sem_run_brk(struct rds *rds, struct rds_script *s, const char *brk_key,
    int argc, const char **args, redisReply **rep)
{
	const char *av[SEM_NKEYS + 1 + 12];
	enum bw_err er;
	int	    i, nk = SEM_NKEYS;

	if (argc < 0 || argc > 12)
		return BW_EINVAL;
	for (i = 0; i < SEM_NKEYS; i++)
		av[i] = sem_keys[i];
	if (brk_key != NULL)
		av[nk++] = brk_key;
	for (i = 0; i < argc; i++)
		av[nk + i] = args[i];
	er = rds_eval(rds, s, nk, nk + argc, av, NULL, rep);
	if (er != BW_OK && *rep != NULL) {
		freeReplyObject(*rep);
		*rep = NULL;
	}
	if (er == BW_EINVAL || er == BW_ENOMEM || er == BW_OK)
		return er;
	return BW_EREDIS;
}

static enum bw_err
sem_run(struct rds *rds, struct rds_script *s, int argc, const char **args,
    redisReply **rep)
{
	return sem_run_brk(rds, s, NULL, argc, args, rep);
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
	return sem_acquire_brk(rds, org_id, global_cap, org_cap, lease_ms,
	    wait_ms, NULL, out, st);
}

enum bw_err
sem_acquire_prep(struct sem_acquire_call *ac, const char *org_id,
    int global_cap, int org_cap, int lease_ms, int wait_ms, struct sem_brk *brk,
    struct rds_call *call)
{
	enum bw_err er;
	int	    i, nk = SEM_NKEYS;

	if (ac == NULL || call == NULL)
		return BW_EINVAL;
	memset(ac, 0, sizeof(*ac));
	ac->t0_us = clock_mono_us();
	ac->first = SEM_FIRST_NONE;
	ac->er = BW_EREDIS;
	if (!rds_word_ok(org_id, SEM_MAX_ORG) || global_cap < 1 ||
	    org_cap < 1 || lease_ms < 100 || wait_ms < 0 ||
	    (brk != NULL &&
		(brk->key == NULL || brk->open_ms < 1 || brk->probe_ms < 1)))
		return ac->er = BW_EINVAL;
	er = sem_newid(ac->l.id);
	if (er == BW_OK)
		er = sem_newid(ac->waiter);
	if (er != BW_OK)
		return ac->er = er;
	snprintf(ac->l.org_id, sizeof(ac->l.org_id), "%s", org_id);
	ac->l.lease_ms = lease_ms;
	ac->brk = brk;
	ac->deadline_ms = ac->t0_us / 1000 + wait_ms;
	snprintf(ac->num[0], sizeof(ac->num[0]), "%d", global_cap);
	snprintf(ac->num[1], sizeof(ac->num[1]), "%d", org_cap);
	snprintf(ac->num[2], sizeof(ac->num[2]), "%d", lease_ms);
	snprintf(ac->num[3], sizeof(ac->num[3]), "%d", SEM_WAITER_TTL_MS);
	snprintf(ac->num[4], sizeof(ac->num[4]), "%d",
	    brk != NULL ? brk->open_ms : 1);
	snprintf(ac->num[5], sizeof(ac->num[5]), "%d",
	    brk != NULL ? brk->probe_ms : 1);
	for (i = 0; i < SEM_NKEYS; i++)
		ac->av[i] = sem_keys[i];
	if (brk != NULL)
		ac->av[nk++] = brk->key;
	ac->nkeys = nk;
	ac->av[nk + 0] = ac->l.org_id;
	ac->av[nk + 1] = ac->waiter;
	ac->av[nk + 2] = ac->l.id;
	for (i = 0; i < 4; i++)
		ac->av[nk + 3 + i] = ac->num[i];
	ac->av[nk + 7] = "0"; /* not queued yet */
	ac->av[nk + 8] = ac->num[4];
	ac->av[nk + 9] = ac->num[5];
	memset(call, 0, sizeof(*call));
	call->script = &sem_acquire_lua;
	call->nkeys = nk;
	call->argc = nk + 10;
	call->argv = ac->av;
	ac->tsend_ms = clock_mono_ms();
	ac->er = BW_OK;
	return BW_OK;
}

/* Reads one try's answer into ac (ac->first, ac->er, the lease). */
static void
sem_try_read(struct sem_acquire_call *ac, enum bw_err er, const redisReply *rep,
    int64_t tsend)
{
	long long granted, exp, bst, fz;

	if (er != BW_OK) {
		ac->er = er == BW_EINVAL || er == BW_ENOMEM ? er : BW_EREDIS;
		ac->first = SEM_FIRST_NONE;
		return;
	}
	ac->s.tries++;
	granted = rds_int(rep, 0);
	exp = rds_int(rep, 2);
	bst = rds_int(rep, 3);
	fz = rds_int(rep, 4);
	if (granted < 0 || granted > 2 || rds_int(rep, 1) < 0 || exp < 0 ||
	    bst < 0 || bst > 2 || fz < 0 || fz > 1) {
		log_kv(LL_ERROR, "sem: unexpected script reply", NULL);
		ac->er = BW_EREDIS;
		ac->first = SEM_FIRST_NONE;
		return;
	}
	ac->s.reclaimed += (int)rds_int(rep, 1);
	ac->s.fenced += (int)fz;
	if (ac->brk != NULL)
		ac->brk->state = (int)bst;
	ac->er = BW_OK;
	ac->first = (int)granted; /* SEM_FIRST_QUEUED, _GRANTED, _BREAKER */
	if (granted == 1) {
		ac->l.expires_ms = exp;
		/* Sent no later than the server took its time. */
		ac->l.valid_mono_ms = tsend + ac->l.lease_ms;
		/* A grant with the breaker half-open took its probe. */
		ac->probe = bst == 2;
	} else if (granted == 0)
		ac->av[ac->nkeys + 7] = "1"; /* queued now */
}

void
sem_acquire_first(struct sem_acquire_call *ac, const struct rds_call *call)
{
	if (ac == NULL || ac->er != BW_OK)
		return;
	ac->waited_us = clock_mono_us() - ac->t0_us;
	sem_try_read(ac, call->er, call->reply, ac->tsend_ms);
}

enum bw_err
sem_acquire_wait(struct rds *rds, struct sem_acquire_call *ac,
    struct sem_lease *out, struct sem_stats *st)
{
	redisReply *rep;
	enum bw_err er;
	int64_t	    left, tsend, t1 = clock_mono_us();
	char	    wkey[64];

	if (ac == NULL || out == NULL)
		return BW_EINVAL;
	snprintf(wkey, sizeof(wkey), "sem:{llm}:w:%s", ac->waiter);
	for (;;) {
		if (ac->er != BW_OK) {
			er = ac->er;
			break;
		}
		if (ac->first == SEM_FIRST_BREAKER) {
			/* The breaker: no slot taken, out of the queue. */
			er = BW_EUPSTREAM;
			break;
		}
		if (ac->first == SEM_FIRST_GRANTED) {
			*out = ac->l;
			er = BW_OK;
			break;
		}
		if (ac->first == SEM_FIRST_QUEUED) {
			left = ac->deadline_ms - clock_mono_ms();
			if (left <= 0) {
				sem_cancel(rds, ac->l.org_id, ac->waiter);
				er = BW_ETIMEOUT;
				break;
			}
			er = sem_sleep(rds, wkey, left);
			if (er != BW_OK)
				break;
		}
		rep = NULL;
		tsend = clock_mono_ms();
		er = rds_eval(rds, &sem_acquire_lua, ac->nkeys, ac->nkeys + 10,
		    ac->av, NULL, &rep);
		sem_try_read(ac, er, rep, tsend);
		if (rep != NULL)
			freeReplyObject(rep);
	}
	ac->first = SEM_FIRST_NONE; /* done: nothing left to abandon */
	ac->s.wait_us = ac->waited_us + (clock_mono_us() - t1);
	if (st != NULL)
		*st = ac->s;
	return er;
}

enum bw_err
sem_acquire_brk(struct rds *rds, const char *org_id, int global_cap,
    int org_cap, int lease_ms, int wait_ms, struct sem_brk *brk,
    struct sem_lease *out, struct sem_stats *st)
{
	struct sem_acquire_call ac;
	struct rds_call		call;
	enum bw_err		er;

	if (rds == NULL || out == NULL) {
		if (st != NULL)
			memset(st, 0, sizeof(*st));
		return BW_EINVAL;
	}
	er = sem_acquire_prep(&ac, org_id, global_cap, org_cap, lease_ms,
	    wait_ms, brk, &call);
	if (er == BW_OK) {
		(void)rds_pipeline(rds, &call, 1);
		sem_acquire_first(&ac, &call);
		if (call.reply != NULL)
			freeReplyObject(call.reply);
	}
	return sem_acquire_wait(rds, &ac, out, st);
}

void
sem_acquire_abandon(struct rds *rds, struct sem_acquire_call *ac)
{
	struct sem_release_call rc;
	struct rds_call		call;
	char			pu[24];

	if (ac == NULL || ac->er != BW_OK)
		return;
	if (ac->first == SEM_FIRST_QUEUED)
		sem_cancel(rds, ac->l.org_id, ac->waiter);
	else if (ac->first == SEM_FIRST_GRANTED &&
	    sem_release_prep(&rc, &ac->l, ac->probe ? ac->brk->key : NULL, 0,
		&call) == BW_OK) {
		if (ac->probe) {
			/* The probe's end as the grant set it (server time:
			 * the lease's expiry less its length). */
			snprintf(pu, sizeof(pu), "%lld",
			    (long long)(ac->l.expires_ms - ac->l.lease_ms +
				ac->brk->probe_ms));
			rc.av[rc.argc - 1] = "2";
			rc.av[rc.argc++] = pu;
			call.argc = rc.argc;
		}
		(void)rds_pipeline(rds, &call, 1);
		if (call.er != BW_OK)
			log_kv(LL_WARN,
			    "sem: releasing an unused lease failed; it "
			    "expires",
			    NULL);
		if (call.reply != NULL)
			freeReplyObject(call.reply);
	}
	ac->first = SEM_FIRST_NONE;
}

enum bw_err
sem_renew(struct rds *rds, struct sem_lease *l)
{
	const char *args[3];
	char	    lm[16];
	redisReply *rep = NULL;
	enum bw_err er;
	long long   exp;
	int64_t	    tsend;

	if (rds == NULL || l == NULL || !rds_word_ok(l->org_id, SEM_MAX_ORG) ||
	    l->id[0] == '\0' || l->lease_ms < 100)
		return BW_EINVAL;
	snprintf(lm, sizeof(lm), "%d", l->lease_ms);
	args[0] = l->org_id;
	args[1] = l->id;
	args[2] = lm;
	tsend = clock_mono_ms();
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
	l->valid_mono_ms = tsend + l->lease_ms;
	return BW_OK;
}

/* The argv of a release (sem_release_prep()). */
static int
sem_release_args(struct sem_release_call *rc, const struct sem_lease *l,
    const char *brk_key, int record_ok)
{
	int i, nk = SEM_NKEYS;

	if (l == NULL || !rds_word_ok(l->org_id, SEM_MAX_ORG) ||
	    l->id[0] == '\0')
		return -1;
	for (i = 0; i < SEM_NKEYS; i++)
		rc->av[i] = sem_keys[i];
	if (brk_key != NULL)
		rc->av[nk++] = brk_key;
	rc->av[nk] = l->org_id;
	rc->av[nk + 1] = l->id;
	rc->av[nk + 2] = brk_key != NULL && record_ok ? "1" : "0";
	rc->nkeys = nk;
	rc->argc = nk + 3;
	return 0;
}

enum bw_err
sem_release_prep(struct sem_release_call *rc, const struct sem_lease *l,
    const char *brk_key, int record_ok, struct rds_call *call)
{
	if (rc == NULL || call == NULL ||
	    sem_release_args(rc, l, brk_key, record_ok) != 0)
		return BW_EINVAL;
	memset(call, 0, sizeof(*call));
	call->script = &sem_release_lua;
	call->nkeys = rc->nkeys;
	call->argc = rc->argc;
	call->argv = rc->av;
	return BW_OK;
}

enum bw_err
sem_release_done(const struct rds_call *call)
{
	long long n;

	if (call->er != BW_OK)
		return call->er == BW_EINVAL || call->er == BW_ENOMEM
		    ? call->er
		    : BW_EREDIS;
	n = rds_int(call->reply, -1);
	if (n < 0)
		return BW_EREDIS;
	return n == 1 ? BW_OK : BW_ENOTFOUND;
}

enum bw_err
sem_release_brk(struct rds *rds, const struct sem_lease *l, const char *brk_key,
    int record_ok)
{
	struct sem_release_call rc;
	struct rds_call		call;
	enum bw_err		er;

	if (rds == NULL)
		return BW_EINVAL;
	er = sem_release_prep(&rc, l, brk_key, record_ok, &call);
	if (er != BW_OK)
		return er;
	(void)rds_pipeline(rds, &call, 1);
	er = sem_release_done(&call);
	if (call.reply != NULL)
		freeReplyObject(call.reply);
	return er;
}

enum bw_err
sem_release(struct rds *rds, const struct sem_lease *l)
{
	return sem_release_brk(rds, l, NULL, 0);
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
