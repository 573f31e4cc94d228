/* SPDX-License-Identifier: MIT */
/*
 * Sliding-window rate limits: an exact log of admission times per key in a
 * Redis sorted set (score = Redis server time in microseconds), checked and
 * updated for all of a request's rules in one Lua script, so a request
 * refused by one rule consumes none of the others and no two instances can
 * both take the last slot.
 */
#include <stdio.h>
#include <string.h>

#include "core/db.h"
#include "core/log.h"
#include "platform/cfggen.h"
#include "platform/ratelimit.h"
#include "core/sec.h"

/*
 * KEYS[i] (i <= n): the log of rule i; KEYS[n+1]: the configuration
 * generation (platform/cfggen.h). ARGV[1]: a unique token for this request;
 * ARGV[2i], ARGV[2i+1]: limit and window (ms) of rule i; ARGV[2n+2]: the
 * generation to set when it is missing; ARGV[2n+3]: the generation the
 * caller's caches hold, '' when it asks for no check. The generation is
 * read first: when a check was asked and it differs, nothing is counted and
 * the reply is {-1, 0, generation} (the caller re-reads what it cached and
 * asks again). Else entries older than the window go; when every rule has
 * room the request is added to all logs, else to none. Returns {admitted,
 * now_us, generation, count_1, oldest_ms_1, need_ms_1, ...}: server time,
 * count after this request, ms until the oldest entry leaves, and ms until
 * enough entries left for one more admission (0 when there is room).
 * An empty token (ARGV[1]) only looks: nothing is added (rl_peek()).
 * Scores pass through string.format("%d"): Lua 5.1's tostring keeps only 14
 * digits.
 */
static struct rds_script rl_lua = {
	.src =
	    "local n = #KEYS - 1\n"
	    "local g = redis.call('GET', KEYS[n + 1])\n"
	    "if not g then\n"
	    "  g = ARGV[2 * n + 2]\n"
	    "  redis.call('SET', KEYS[n + 1], g)\n"
	    "end\n"
	    "local want = ARGV[2 * n + 3]\n"
	    "if want ~= '' and want ~= g then return { -1, 0, g } end\n"
	    "local t = redis.call('TIME')\n"
	    "local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
	    "local cnt = {}\n"
	    "local ok = 1\n"
	    "for i = 1, n do\n"
	    "  local lim = tonumber(ARGV[2 * i])\n"
	    "  local win = tonumber(ARGV[2 * i + 1]) * 1000\n"
	    "  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf',\n"
	    "      string.format('%d', now - win))\n"
	    "  cnt[i] = redis.call('ZCARD', KEYS[i])\n"
	    "  if cnt[i] >= lim then ok = 0 end\n"
	    "end\n"
	    "if ok == 1 and ARGV[1] ~= '' then\n"
	    "  local m = string.format('%d', now) .. ':' .. ARGV[1]\n"
	    "  for i = 1, n do\n"
	    "    redis.call('ZADD', KEYS[i], string.format('%d', now), m)\n"
	    "    redis.call('PEXPIRE', KEYS[i], tonumber(ARGV[2 * i + 1]) + "
	    "1000)\n"
	    "    cnt[i] = cnt[i] + 1\n"
	    "  end\n"
	    "end\n"
	    "local out = { ok, now, g }\n"
	    "for i = 1, n do\n"
	    "  local lim = tonumber(ARGV[2 * i])\n"
	    "  local win = tonumber(ARGV[2 * i + 1]) * 1000\n"
	    "  local oldest, need = 0, 0\n"
	    "  if cnt[i] > 0 then\n"
	    "    local e = redis.call('ZRANGE', KEYS[i], 0, 0, 'WITHSCORES')\n"
	    "    oldest = math.ceil((tonumber(e[2]) + win - now) / 1000)\n"
	    "  end\n"
	    "  if cnt[i] >= lim then\n"
	    "    local j = cnt[i] - lim\n"
	    "    local e = redis.call('ZRANGE', KEYS[i], j, j, 'WITHSCORES')\n"
	    "    need = math.ceil((tonumber(e[2]) + win - now) / 1000)\n"
	    "  end\n"
	    "  out[#out + 1] = cnt[i]\n"
	    "  out[#out + 1] = oldest\n"
	    "  out[#out + 1] = need\n"
	    "end\n"
	    "return out\n"
};

/* KEYS[1], ARGV[1] window ms: entries inside the window now. */
static struct rds_script rl_count_lua = {
	.src = "local t = redis.call('TIME')\n"
	       "local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
	       "return redis.call('ZCOUNT', KEYS[1],\n"
	       "    '(' .. string.format('%d', now - tonumber(ARGV[1]) * "
	       "1000), '+inf')\n"
};

const char *
rl_scope_name(enum rl_scope s)
{
	return s == RL_IP ? "ip" : "org";
}

enum bw_err
rl_scope_parse(const char *s, enum rl_scope *out)
{
	if (s == NULL)
		return BW_EINVAL;
	if (strcmp(s, "org") == 0)
		*out = RL_ORG;
	else if (strcmp(s, "ip") == 0)
		*out = RL_IP;
	else
		return BW_EINVAL;
	return BW_OK;
}

/* 1 when s is 1.. bytes of [a-z_]. */
static int
rl_route_ok(const char *s)
{
	if (s == NULL || *s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if (!((*s >= 'a' && *s <= 'z') || *s == '_'))
			return 0;
	return 1;
}

/* 1 when s is 1.. bytes of printable ASCII other than space, '{', '}'. */
static int
rl_ident_ok(const char *s)
{
	if (s == NULL || *s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if (*s <= ' ' || *s > '~' || *s == '{' || *s == '}')
			return 0;
	return 1;
}

enum bw_err
rl_key(struct rl_item *it, const char *route, enum rl_scope scope,
    const char *ident)
{
	int n;

	if (!rl_route_ok(route) || !rl_ident_ok(ident) || scope >= RL__MAX)
		return BW_EINVAL;
	n = snprintf(it->key, sizeof(it->key), "rl:{rl}:%s:%s:%s", route,
	    rl_scope_name(scope), ident);
	if (n < 0 || (size_t)n >= sizeof(it->key))
		return BW_ETOOBIG;
	return BW_OK;
}

/* Whole seconds from ms, rounded up. */
static int
rl_secs(int64_t ms)
{
	if (ms <= 0)
		return 0;
	return (int)((ms + 999) / 1000);
}

/*
 * Fills res from the script's reply: per-rule remaining and reset, then the
 * rule the headers describe. Returns BW_OK or BW_EREDIS on a bad shape.
 */
static enum bw_err
rl_fill(const redisReply *rep, const struct rl_item *items, size_t n,
    struct rl_result *res)
{
	struct rl_result r;
	int64_t		 need[RL_MAX_RULES], best = -1;
	long long	 v;
	size_t		 i;

	const redisReply *g;

	if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 3)
		return BW_EREDIS;
	memset(&r, 0, sizeof(r));
	g = rep->element[2];
	if (g->type != REDIS_REPLY_STRING || g->len == 0 ||
	    g->len >= sizeof(r.gen))
		return BW_EREDIS;
	memcpy(r.gen, g->str, g->len + 1);
	if (rep->element[0]->type == REDIS_REPLY_INTEGER &&
	    rep->element[0]->integer == -1 && rep->elements == 3) {
		/* The generation moved: nothing was counted. */
		r.stale = 1;
		*res = r;
		return BW_OK;
	}
	if (rep->elements != 3 + 3 * n)
		return BW_EREDIS;
	v = rds_int(rep, 0);
	if (v != 0 && v != 1)
		return BW_EREDIS;
	r.admitted = (int)v;
	r.now_us = rds_int(rep, 1);
	r.rule = 0;
	for (i = 0; i < n; i++) {
		long long cnt = rds_int(rep, (int)(3 + 3 * i));
		long long old = rds_int(rep, (int)(4 + 3 * i));
		long long nd = rds_int(rep, (int)(5 + 3 * i));

		if (cnt < 0 || old < 0 || nd < 0)
			return BW_EREDIS;
		r.remain[i] =
		    cnt >= items[i].limit ? 0 : items[i].limit - (int)cnt;
		r.reset_ms[i] = old;
		need[i] = nd;
	}
	for (i = 0; i < n; i++) {
		if (r.admitted) {
			/* The tightest rule: fewest remaining, then longest
			 * reset. */
			if (best < 0 || r.remain[i] < r.remain[r.rule] ||
			    (r.remain[i] == r.remain[r.rule] &&
				r.reset_ms[i] > r.reset_ms[r.rule])) {
				r.rule = (int)i;
				best = 0;
			}
		} else if (need[i] > 0 && need[i] > best) {
			/* A refusing rule: the one that frees last. */
			r.rule = (int)i;
			best = need[i];
		}
	}
	r.limit = items[r.rule].limit;
	r.remaining = r.remain[r.rule];
	r.reset_s = rl_secs(r.reset_ms[r.rule]);
	if (!r.admitted) {
		r.retry_after_s = rl_secs(best);
		if (r.retry_after_s < 1)
			r.retry_after_s = 1;
		if (r.reset_s < r.retry_after_s)
			r.reset_s = r.retry_after_s;
	}
	*res = r;
	return BW_OK;
}

/* Fills call with c's EVALSHA: rl_check_gen() when record, else rl_peek(). */
static enum bw_err
rl_prep(struct rl_call *c, const struct rl_item *items, size_t n,
    const char *want_gen, int record, struct rds_call *call)
{
	const char **av;
	uint8_t	     rnd[16];
	enum bw_err  er;
	size_t	     i;

	memset(c, 0, sizeof(*c));
	memset(call, 0, sizeof(*call));
	av = c->av;
	c->items = items;
	c->n = n;
	if (items == NULL || n < 1 || n > RL_MAX_RULES)
		return BW_EINVAL;
	for (i = 0; i < n; i++)
		if (items[i].limit < 1 || items[i].window_s < 1 ||
		    items[i].key[0] == '\0')
			return BW_EINVAL;
	c->tok[0] = '\0';
	if (record) {
		er = sec_random(rnd, sizeof(rnd));
		if (er != BW_OK)
			return er;
		sec_hex(rnd, sizeof(rnd), c->tok);
	}
	er = cfggen_new(c->fresh);
	if (er != BW_OK)
		return er;
	/* EVALSHA argv: keys first, then the token and the numbers. */
	for (i = 0; i < n; i++)
		av[i] = items[i].key;
	av[n] = c->tok;
	for (i = 0; i < n; i++) {
		snprintf(c->nums[i][0], sizeof(c->nums[i][0]), "%d",
		    items[i].limit);
		snprintf(c->nums[i][1], sizeof(c->nums[i][1]), "%lld",
		    (long long)items[i].window_s * 1000);
		av[n + 1 + 2 * i] = c->nums[i][0];
		av[n + 2 + 2 * i] = c->nums[i][1];
	}
	/* The generation's key after the logs, its values after the rules. */
	memmove(&av[n + 1], &av[n], (2 * n + 1) * sizeof(av[0]));
	av[n] = CFGGEN_KEY;
	av[3 * n + 2] = c->fresh;
	av[3 * n + 3] = want_gen != NULL ? want_gen : "";
	call->script = &rl_lua;
	call->nkeys = (int)n + 1;
	call->argc = (int)(4 + 3 * n);
	call->argv = av;
	return BW_OK;
}

enum bw_err
rl_check_prep(struct rl_call *c, const struct rl_item *items, size_t n,
    const char *want_gen, struct rds_call *call)
{
	return rl_prep(c, items, n, want_gen, 1, call);
}

enum bw_err
rl_check_done(const struct rl_call *c, const struct rds_call *call,
    struct rl_result *res)
{
	enum bw_err er = call->er;

	if (res == NULL)
		return BW_EINVAL;
	if (er != BW_OK)
		return er == BW_EINVAL ? er : BW_EREDIS;
	if (call->reply == NULL)
		return BW_EREDIS;
	er = rl_fill(call->reply, c->items, c->n, res);
	if (er != BW_OK)
		log_kv(LL_ERROR, "ratelimit: unexpected script reply", NULL);
	return er;
}

/* rl_check_gen() when record, else rl_peek(): one call, its round trip. */
static enum bw_err
rl_run(struct rds *rds, const struct rl_item *items, size_t n,
    const char *want_gen, struct rl_result *res, int record)
{
	struct rl_call	c;
	struct rds_call call;
	enum bw_err	er;

	if (rds == NULL || res == NULL)
		return BW_EINVAL;
	er = rl_prep(&c, items, n, want_gen, record, &call);
	if (er != BW_OK)
		return er;
	call.er = rds_eval(rds, call.script, call.nkeys, call.argc, call.argv,
	    NULL, &call.reply);
	er = rl_check_done(&c, &call, res);
	if (call.reply != NULL)
		freeReplyObject(call.reply);
	return er;
}

enum bw_err
rl_check(struct rds *rds, const struct rl_item *items, size_t n,
    struct rl_result *res)
{
	return rl_run(rds, items, n, NULL, res, 1);
}

enum bw_err
rl_check_gen(struct rds *rds, const struct rl_item *items, size_t n,
    const char *want_gen, struct rl_result *res)
{
	return rl_run(rds, items, n, want_gen, res, 1);
}

enum bw_err
rl_peek(struct rds *rds, const struct rl_item *items, size_t n,
    struct rl_result *res)
{
	return rl_run(rds, items, n, NULL, res, 0);
}

enum bw_err
rl_count(struct rds *rds, const struct rl_item *it, int *n)
{
	const char *av[2];
	char	    win[24];
	redisReply *rep = NULL;
	enum bw_err er;

	snprintf(win, sizeof(win), "%lld", (long long)it->window_s * 1000);
	av[0] = it->key;
	av[1] = win;
	er = rds_eval(rds, &rl_count_lua, 1, 2, av, NULL, &rep);
	if (er == BW_OK && rep->type != REDIS_REPLY_INTEGER)
		er = BW_EREDIS;
	if (er == BW_OK)
		*n = (int)rep->integer;
	if (rep != NULL)
		freeReplyObject(rep);
	return er == BW_OK || er == BW_EINVAL ? er : BW_EREDIS;
}

static const char rl_sql_get[] =
    "SELECT scope, \"limit\", window_s FROM org_rate_limits "
    "WHERE org_id = $1::uuid AND route = $2 ORDER BY scope";
static const char *const rl_warm_p[] = { "00000000-0000-0000-0000-000000000000",
	"chat" };
static const struct db_stmt rl_st_get = { "rl_overrides", rl_sql_get, 2,
	rl_warm_p };

enum bw_err
rl_warm(struct db *db)
{
	return db_warm(db, &rl_st_get, 1);
}

static const char rl_sql_set[] =
    "INSERT INTO org_rate_limits (org_id, route, scope, \"limit\", window_s) "
    "SELECT id, $2, $3, $4::int, $5::int FROM orgs WHERE id = $1::uuid "
    "ON CONFLICT (org_id, route, scope) DO UPDATE SET "
    "\"limit\" = EXCLUDED.\"limit\", window_s = EXCLUDED.window_s, "
    "updated_at = now()";

static const char rl_sql_del[] =
    "DELETE FROM org_rate_limits "
    "WHERE org_id = $1::uuid AND route = $2 AND scope = $3";

/* Parses a whole decimal int in [lo, hi]; -1 when it is not one. */
static int
rl_num(const char *s, int lo, int hi)
{
	long long v = 0;
	size_t	  i;

	if (s == NULL || s[0] == '\0' || strlen(s) > 10)
		return -1;
	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v < lo || v > hi ? -1 : (int)v;
}

enum bw_err
rl_overrides(struct db *db, const char *org_id, const char *route,
    struct rl_rule *out, size_t max, size_t *n)
{
	const char *p[2] = { org_id, route };
	PGresult   *res = NULL;
	enum bw_err er;
	size_t	    k = 0;
	int	    i, rows;

	if (db == NULL || org_id == NULL || !rl_route_ok(route) ||
	    out == NULL || n == NULL)
		return BW_EINVAL;
	er = db_execs(db, &rl_st_get, p, &res);
	if (er != BW_OK)
		return er;
	rows = PQntuples(res);
	for (i = 0; i < rows && k < max; i++) {
		struct rl_rule ru;

		if (rl_scope_parse(PQgetvalue(res, i, 0), &ru.scope) != BW_OK)
			continue;
		ru.limit = rl_num(PQgetvalue(res, i, 1), 1, 1000000);
		ru.window_s = rl_num(PQgetvalue(res, i, 2), 1, 604800);
		if (ru.limit < 0 || ru.window_s < 0)
			continue;
		out[k++] = ru;
	}
	PQclear(res);
	*n = k;
	return BW_OK;
}

enum bw_err
rl_override_set(struct db *db, const char *org_id, const char *route,
    enum rl_scope scope, int limit, int window_s)
{
	const char *p[5];
	char	    ls[16], ws[16];
	PGresult   *res = NULL;
	enum bw_err er;

	if (db == NULL || org_id == NULL || !rl_route_ok(route) ||
	    scope >= RL__MAX || limit < 0 || limit > 1000000 ||
	    (limit > 0 && (window_s < 1 || window_s > 604800)))
		return BW_EINVAL;
	snprintf(ls, sizeof(ls), "%d", limit);
	snprintf(ws, sizeof(ws), "%d", window_s);
	p[0] = org_id;
	p[1] = route;
	p[2] = rl_scope_name(scope);
	p[3] = ls;
	p[4] = ws;
	if (limit == 0)
		er = db_execp(db, "rl_override_del", rl_sql_del, 3, p, &res);
	else
		er = db_execp(db, "rl_override_set", rl_sql_set, 5, p, &res);
	if (er != BW_OK)
		return er;
	if (strcmp(PQcmdTuples(res), "0") == 0)
		er = BW_ENOTFOUND;
	PQclear(res);
	return er;
}
