/* SPDX-License-Identifier: MIT */
/*
 * Daily LLM budgets: org chat settings, prices, holds and their settlement.
 * The decision and the hold happen on one locked org_budget_days row in one
 * statement (the price and the prompt rule looked up in it); a hold covers
 * one attempt and grows by one attempt's input bound before each retry,
 * again one statement that checks the room; settlement and expiry are
 * single statements keyed by the hold's state, so each hold moves out of
 * 'held' exactly once.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/budget.h"
#include "core/jv.h"
#include "core/log.h"

#define MICROS_PER_MTOK 1000000

static int64_t
sat_mul(int64_t a, int64_t b)
{
	int64_t r;

	if (a < 0 || b < 0)
		return 0;
	if (__builtin_mul_overflow(a, b, &r))
		return INT64_MAX;
	return r;
}

static int64_t
sat_add(int64_t a, int64_t b)
{
	int64_t r;

	if (__builtin_add_overflow(a, b, &r))
		return INT64_MAX;
	return r;
}

int64_t
budget_cost(int64_t in_tok, int64_t out_tok, int64_t in_price,
    int64_t out_price)
{
	int64_t n;

	n = sat_add(sat_mul(in_tok, in_price), sat_mul(out_tok, out_price));
	if (n == INT64_MAX)
		return INT64_MAX;
	return n / MICROS_PER_MTOK + (n % MICROS_PER_MTOK != 0);
}

int64_t
budget_input_bound(int64_t bytes, int nmessages, int bytes_per_token,
    int tokens_per_message)
{
	int64_t k = bytes_per_token < 1 ? 1 : bytes_per_token;

	if (bytes < 0)
		bytes = 0;
	if (nmessages < 0)
		nmessages = 0;
	if (tokens_per_message < 0)
		tokens_per_message = 0;
	return sat_add(bytes / k + (bytes % k != 0),
	    sat_mul(nmessages, tokens_per_message));
}

int64_t
budget_extend_micros(const struct budget_hold *h)
{
	return budget_cost(h->input_bound, 0, h->in_price, 0);
}

int64_t
budget_charge(const struct budget_hold *h, const struct budget_usage *u)
{
	return sat_add(budget_cost(u->input_tokens, u->output_tokens,
			   h->in_price, h->out_price),
	    budget_cost(sat_mul(h->input_bound, u->failed_attempts), 0,
		h->in_price, 0));
}

int64_t
budget_fit_tokens(int64_t remaining, int64_t in_bound, int attempts,
    int64_t in_price, int64_t out_price, int64_t want)
{
	int64_t in_cost, lo, hi, mid;

	if (attempts < 1)
		attempts = 1;
	in_cost = budget_cost(sat_mul(in_bound, attempts), 0, in_price, 0);
	if (in_cost > remaining)
		return -1;
	if (budget_cost(sat_mul(in_bound, attempts), want, in_price,
		out_price) <= remaining)
		return want;
	/* Binary search: the cost is monotonic in the output allowance. */
	lo = 0;
	hi = want;
	while (lo < hi) {
		mid = lo + (hi - lo + 1) / 2;
		if (budget_cost(sat_mul(in_bound, attempts), mid, in_price,
			out_price) <= remaining)
			lo = mid;
		else
			hi = mid - 1;
	}
	return lo;
}

void
budget_copy(char *dst, size_t n, const char *src)
{
	snprintf(dst, n, "%s", src != NULL ? src : "");
}

void
budget_decision_params(const struct budget_settings *s,
    const struct budget_ask *a, struct budget_pbuf *buf, const char **p)
{
	memset(buf, 0, sizeof(*buf));
	snprintf(buf->daily, sizeof(buf->daily), "%" PRId64, s->daily_micros);
	snprintf(buf->soft, sizeof(buf->soft), "%d", s->soft_pct);
	snprintf(buf->bytes, sizeof(buf->bytes), "%" PRId64,
	    a->input_bytes < 0 ? 0 : a->input_bytes);
	snprintf(buf->nmsg, sizeof(buf->nmsg), "%d",
	    a->nmessages < 0 ? 0 : a->nmessages);
	snprintf(buf->max_tokens, sizeof(buf->max_tokens), "%d", a->max_tokens);
	p[0] = s->org_id;
	p[1] = s->day;
	p[2] = s->primary;
	p[3] = s->fallback;
	p[4] = s->has_budget ? buf->daily : NULL;
	p[5] = buf->soft;
	p[6] = s->downgrade ? "true" : "false";
	p[7] = s->hard_stop ? "true" : "false";
	p[8] = buf->bytes;
	p[9] = buf->nmsg;
	p[10] = buf->max_tokens;
}

static const char sql_settings[] =
    "SELECT s.daily_budget_micros, COALESCE(s.soft_pct, 80),"
    " COALESCE(s.hard_stop, true), COALESCE(s.downgrade, true),"
    " s.primary_model, s.fallback_model,"
    " l::date::text,"
    " COALESCE(s.org_cap, 0), COALESCE(s.system_prompt, ''),"
    " s.fallback_reply, s.line_channel_token,"
    /* Milliseconds left in the org's local day (settings_cache.h): the
     * lesser of the wall clock's and the instant's reading, each of which
     * errs late only across a DST change the other reads right. */
    " floor(1000 * extract(epoch FROM LEAST("
    "  date_trunc('day', l) + interval '1 day' - l,"
    "  (date_trunc('day', l) + interval '1 day') AT TIME ZONE z - now())))"
    "  ::bigint"
    " FROM orgs o LEFT JOIN chat_org_settings s ON s.org_id = o.id,"
    " LATERAL (SELECT COALESCE(s.timezone, o.timezone) AS z) tz,"
    " LATERAL (SELECT now() AT TIME ZONE z AS l) lt"
    " WHERE o.id = $1::uuid";
/* Warm-up parameters (db_warm()): ids no row has. */
#define WARM_ID "00000000-0000-0000-0000-000000000000"
static const char *const    warm_settings[] = { WARM_ID };
static const struct db_stmt st_settings = { "budget_settings", sql_settings, 1,
	warm_settings };

enum bw_err
budget_settings_get(struct db *db, const char *org_id, const char *dflt_primary,
    const char *dflt_fallback, struct budget_settings *out)
{
	const char	      *p[1] = { org_id };
	PGresult	      *res = NULL;
	struct budget_settings s;
	enum bw_err	       er;

	if (!jv_is_uuid(org_id, strlen(org_id)))
		return BW_ENOTFOUND;
	er = db_execs(db, &st_settings, p, &res);
	if (er != BW_OK)
		goto out;
	if (PQntuples(res) != 1) {
		er = BW_ENOTFOUND;
		goto out;
	}
	memset(&s, 0, sizeof(s));
	budget_copy(s.org_id, sizeof(s.org_id), org_id);
	s.has_budget = !PQgetisnull(res, 0, 0);
	s.daily_micros = s.has_budget ? db_col_i64_or(res, 0, 0, 0) : 0;
	s.soft_pct = (int)db_col_i64_or(res, 0, 1, 0);
	s.hard_stop = PQgetvalue(res, 0, 2)[0] == 't';
	s.downgrade = PQgetvalue(res, 0, 3)[0] == 't';
	budget_copy(s.primary, sizeof(s.primary),
	    PQgetisnull(res, 0, 4) ? dflt_primary : PQgetvalue(res, 0, 4));
	budget_copy(s.fallback, sizeof(s.fallback),
	    PQgetisnull(res, 0, 5) ? dflt_fallback : PQgetvalue(res, 0, 5));
	budget_copy(s.day, sizeof(s.day), PQgetvalue(res, 0, 6));
	s.org_cap = (int)db_col_i64_or(res, 0, 7, 0);
	s.system_prompt = strdup(PQgetvalue(res, 0, 8));
	s.fallback_reply = db_col_dup(res, 0, 9);
	s.line_token = db_col_dup(res, 0, 10);
	s.day_left_ms = db_col_i64_or(res, 0, 11, 0);
	if (s.system_prompt == NULL) {
		budget_settings_clear(&s);
		er = BW_ENOMEM;
		goto out;
	}
	*out = s;
out:
	PQclear(res);
	return er;
}

void
budget_settings_clear(struct budget_settings *s)
{
	if (s == NULL)
		return;
	free(s->system_prompt);
	free(s->fallback_reply);
	free(s->line_token);
	s->system_prompt = s->fallback_reply = s->line_token = NULL;
}

#define STR_(x) #x
#define STR(x)	STR_(x)

/*
 * The hold, one statement: lock the org's day row (d), choose the model by
 * the soft threshold (m), look up its price and prompt rule and bound the
 * input (p: the C twin is budget_input_bound()), fit max_tokens into what
 * remains (g: the closed form of budget_fit_tokens() for one attempt:
 * ceil((ib*ip + mt*op) / 1e6) <= rem  <=>  mt <= (rem*1e6 - ib*ip) / op),
 * decide (v), and on 'ok' insert the hold and add it to reserved (ins, u;
 * u updates the row d locked, so no other hold slips in between). No row
 * at all: the day row does not exist yet. Numeric arithmetic: no overflow.
 * $5 is the daily budget (NULL: none), $8 the hard stop.
 */
/* clang-format off */
static const char sql_hold[] =
    "WITH d AS (SELECT spent_micros::numeric AS sp, reserved_micros::numeric AS rs"
    "  FROM org_budget_days WHERE org_id = $1::uuid AND day = $2::date FOR UPDATE),"
    " m AS (SELECT d.sp, d.rs, CASE WHEN $5::bigint IS NOT NULL AND $7::boolean"
    "  AND ($5::bigint = 0 OR (d.sp + d.rs) * 100 >= $5::bigint::numeric * $6::int)"
    "  THEN $4::text ELSE $3::text END AS model FROM d),"
    " p AS (SELECT m.sp, m.rs, m.model, m.model <> $3::text AS dg,"
    "  pr.model IS NOT NULL AS priced,"
    "  COALESCE(pr.input_micros_per_mtok, 0)::numeric AS ip,"
    "  COALESCE(pr.output_micros_per_mtok, 0)::numeric AS op,"
    "  LEAST(ceil($9::bigint::numeric / COALESCE(pr.prompt_bytes_per_token, 1))"
    "   + $10::int * COALESCE(pr.prompt_tokens_per_message, " STR(BUDGET_MSG_OVERHEAD) "),"
    "   2147483647) AS ib"
    "  FROM m LEFT JOIN llm_prices pr ON pr.model = m.model),"
    " g AS (SELECT p.*, CASE WHEN $5::bigint IS NULL OR NOT $8::boolean THEN $11::int::numeric"
    "  WHEN $5::bigint - p.sp - p.rs < 0"
    "   OR p.ib * p.ip > ($5::bigint - p.sp - p.rs) * 1000000 THEN -1"
    "  WHEN p.op = 0 THEN $11::int::numeric"
    "  ELSE LEAST($11::int, floor((($5::bigint - p.sp - p.rs) * 1000000 - p.ib * p.ip) / p.op))"
    "  END AS mt FROM p),"
    " v AS (SELECT g.*, CASE WHEN NOT g.priced AND $5::bigint IS NOT NULL THEN 'noprice'"
    "  WHEN $5::bigint IS NOT NULL AND $8::boolean AND (g.mt < $12::int OR g.mt < 1)"
    "  THEN 'exceeded' ELSE 'ok' END AS verdict,"
    "  LEAST(ceil((g.ib * g.ip + GREATEST(g.mt, 0) * g.op) / 1000000),"
    "   9223372036854775807) AS held FROM g),"
    " ins AS (INSERT INTO llm_holds (org_id, day, model, downgraded, max_tokens,"
    "  input_bound, held_micros, request_id, correlation_id, expires_at)"
    "  SELECT $1::uuid, $2::date, v.model, v.dg, v.mt, v.ib, v.held, $13, $14,"
    "  now() + make_interval(secs => $15::int) FROM v WHERE v.verdict = 'ok'"
    "  RETURNING id, held_micros, downgraded),"
    " u AS (UPDATE org_budget_days d SET"
    "  reserved_micros = d.reserved_micros + ins.held_micros, holds = d.holds + 1,"
    "  downgraded = d.downgraded + ins.downgraded::int, updated_at = now()"
    "  FROM ins WHERE d.org_id = $1::uuid AND d.day = $2::date RETURNING d.org_id)"
    " SELECT v.verdict, v.model, v.dg, v.mt::bigint, v.ib::bigint, v.held::bigint,"
    " v.ip::bigint, v.op::bigint, ins.id, (SELECT count(*) FROM u)"
    " FROM v LEFT JOIN ins ON true";
/* clang-format on */
static const char sql_day_create[] =
    "INSERT INTO org_budget_days (org_id, day) VALUES ($1::uuid, $2::date)"
    " ON CONFLICT (org_id, day) DO NOTHING";
static const char *const warm_hold[] = { WARM_ID, "2000-01-01", "warm", "warm",
	NULL, "80", "true", "true", "0", "1", "1", "1", NULL, NULL, "1" };
static const struct db_stmt st_hold = { "budget_hold", sql_hold, 15,
	warm_hold };
static const struct db_stmt st_day_create = { "budget_day_create",
	sql_day_create, 2, NULL };
static const char	    sql_price[] =
    "SELECT input_micros_per_mtok, output_micros_per_mtok"
    " FROM llm_prices WHERE model = $1";

enum bw_err
budget_hold(struct db *db, const struct budget_settings *s,
    const struct budget_ask *a, struct budget_hold *hold,
    enum budget_verdict *verdict)
{
	struct budget_hold h;
	PGresult	  *res = NULL;
	struct budget_pbuf pb;
	const char	  *p[15], *v;
	char		   mn[16], ttl[16];
	enum bw_err	   er;
	int		   tries;

	memset(&h, 0, sizeof(h));
	budget_decision_params(s, a, &pb, p);
	snprintf(mn, sizeof(mn), "%d", a->min_tokens);
	snprintf(ttl, sizeof(ttl), "%d", a->ttl_s);
	p[11] = mn;
	p[12] = a->request_id;
	p[13] = a->correlation_id;
	p[14] = ttl;
	for (tries = 0;; tries++) {
		er = db_execs(db, &st_hold, p, &res);
		if (er != BW_OK)
			goto out;
		if (PQntuples(res) == 1)
			break;
		/* The org's first call of the day: make its row, once. */
		PQclear(res);
		res = NULL;
		if (tries > 0) {
			er = BW_EDB;
			goto out;
		}
		er = db_execs(db, &st_day_create, p, NULL);
		if (er != BW_OK)
			goto out;
	}
	v = PQgetvalue(res, 0, 0);
	budget_copy(h.model, sizeof(h.model), PQgetvalue(res, 0, 1));
	h.downgraded = PQgetvalue(res, 0, 2)[0] == 't';
	h.max_tokens = (int)db_col_i64_or(res, 0, 3, 0);
	h.input_bound = db_col_i64_or(res, 0, 4, 0);
	h.held_micros = db_col_i64_or(res, 0, 5, 0);
	h.in_price = db_col_i64_or(res, 0, 6, 0);
	h.out_price = db_col_i64_or(res, 0, 7, 0);
	if (strcmp(v, "noprice") == 0)
		*verdict = BV_NOPRICE;
	else if (strcmp(v, "exceeded") == 0)
		*verdict = BV_EXCEEDED;
	else if (PQgetisnull(res, 0, 8) || db_col_i64_or(res, 0, 9, 0) != 1) {
		er = BW_EDB; /* cannot happen: the row was locked */
		goto out;
	} else {
		*verdict = BV_OK;
		budget_copy(h.id, sizeof(h.id), PQgetvalue(res, 0, 8));
	}
	*hold = h;
out:
	PQclear(res);
	return er;
}

/*
 * The extension before a retry, one statement: lock the hold while it is
 * still held (h: an expiry pass waits, then sees the new amount), add to
 * the day's reserved only when it fits the budget (d; $4 NULL: no hard
 * stop), then to the hold (u) only when d did.
 */
/* clang-format off */
static const char sql_extend[] =
    "WITH h AS (SELECT org_id, day FROM llm_holds"
    "  WHERE org_id = $1::uuid AND id = $2::uuid AND state = 'held' FOR UPDATE),"
    " d AS (UPDATE org_budget_days d SET"
    "  reserved_micros = d.reserved_micros + $3::bigint, updated_at = now()"
    "  FROM h WHERE d.org_id = h.org_id AND d.day = h.day AND ($4::bigint IS NULL"
    "  OR d.spent_micros::numeric + d.reserved_micros + $3::bigint <= $4::bigint)"
    "  RETURNING d.org_id),"
    " u AS (UPDATE llm_holds SET held_micros = held_micros + $3::bigint"
    "  WHERE org_id = $1::uuid AND id = $2::uuid AND EXISTS (SELECT 1 FROM d)"
    "  RETURNING held_micros)"
    " SELECT held_micros FROM u";
static const char *const warm_extend[] = { WARM_ID, WARM_ID, "0", NULL };
static const struct db_stmt st_extend = { "budget_extend", sql_extend, 4,
	warm_extend };
/* clang-format on */

enum bw_err
budget_extend(struct db *db, const struct budget_settings *s,
    struct budget_hold *h, bool *extended)
{
	const char *p[4];
	char	    amt[24], daily[24];
	PGresult   *res = NULL;
	enum bw_err er;

	*extended = false;
	if (!jv_is_uuid(h->id, strlen(h->id)))
		return BW_EINVAL;
	snprintf(amt, sizeof(amt), "%" PRId64, budget_extend_micros(h));
	snprintf(daily, sizeof(daily), "%" PRId64, s->daily_micros);
	p[0] = s->org_id;
	p[1] = h->id;
	p[2] = amt;
	p[3] = s->has_budget && s->hard_stop ? daily : NULL;
	er = db_execs(db, &st_extend, p, &res);
	if (er == BW_OK && PQntuples(res) == 1) {
		*extended = true;
		h->held_micros = db_col_i64_or(res, 0, 0, h->held_micros);
		h->extensions++;
	}
	PQclear(res);
	return er;
}

/* One statement: the hold leaves 'held' and its day row is adjusted. */
#define SQL_SETTLE                                                       \
	"WITH h AS (UPDATE llm_holds SET state = 'settled',"             \
	" charged_micros = $3, input_tokens = $4::int, output_tokens = " \
	"$5::int,"                                                       \
	" attempts = $6::int, settled_at = now()"                        \
	" WHERE org_id = $1::uuid AND id = $2::uuid AND state = 'held'"  \
	" RETURNING org_id, day, held_micros)"                           \
	" UPDATE org_budget_days d SET"                                  \
	" reserved_micros = d.reserved_micros - h.held_micros,"          \
	" spent_micros = d.spent_micros + $3, updated_at = now()"        \
	" FROM h WHERE d.org_id = h.org_id AND d.day = h.day"            \
	" RETURNING d.spent_micros"
static const char sql_settle[] = SQL_SETTLE;
/*
 * The settlement of a call that was made, committed without waiting for
 * its WAL flush (synchronous_commit off for this one transaction; the next
 * synchronous commit, a hold, flushes it, or the WAL writer within 3 x
 * wal_writer_delay). A crash that loses it leaves the hold 'held' and
 * durable: it expires and bulwark-maint charges it whole (its upper
 * bound, already reserved), so the budget is never exceeded; the org pays
 * at most the hold instead of the call for turns settled in the last
 * moments before the crash (docs/chat-cost.md).
 */
static const char sql_settle_async[] =
    SQL_SETTLE ", set_config('synchronous_commit', 'off', true)";
static const char *const    warm_settle[] = { WARM_ID, WARM_ID, "0", "0", "0",
	   "1" };
static const struct db_stmt st_settle = { "budget_settle", sql_settle, 6,
	warm_settle };
static const struct db_stmt st_settle_async = { "budget_settle_async",
	sql_settle_async, 6, warm_settle };

static enum bw_err
settle(struct db *db, const char *org_id, const char *hold_id, int64_t charge,
    const struct budget_usage *u, void (*meanwhile)(void *), void *arg,
    bool *settled, int64_t *spent)
{
	/* A call was made (attempts > 0): the no-flush commit is safe. */
	const struct db_stmt *st =
	    u->attempts > 0 ? &st_settle_async : &st_settle;
	const char *p[6];
	char	    c[24], in[24], outt[24], at[16];
	PGresult   *res = NULL;
	enum bw_err er;

	if (!jv_is_uuid(hold_id, strlen(hold_id)))
		return BW_EINVAL;
	snprintf(c, sizeof(c), "%" PRId64, charge);
	snprintf(in, sizeof(in), "%" PRId64,
	    u->input_tokens > INT32_MAX ? (int64_t)INT32_MAX : u->input_tokens);
	snprintf(outt, sizeof(outt), "%" PRId64,
	    u->output_tokens > INT32_MAX ? (int64_t)INT32_MAX
					 : u->output_tokens);
	snprintf(at, sizeof(at), "%d", u->attempts);
	p[0] = org_id;
	p[1] = hold_id;
	p[2] = c;
	p[3] = in;
	p[4] = outt;
	p[5] = at;
	if (meanwhile == NULL)
		er = db_execs(db, st, p, &res);
	else if (db_sendp(db, st->name, st->sql, st->nparams, p) == BW_OK) {
		/* PostgreSQL settles while the caller does its own I/O. */
		meanwhile(arg);
		er = db_recvp(db, st->name, &res);
	} else {
		/* Not sent: nothing ran; the other work, then the plain way. */
		meanwhile(arg);
		er = db_execs(db, st, p, &res);
	}
	if (er != BW_OK)
		goto out;
	*settled = PQntuples(res) == 1;
	if (*settled && spent != NULL)
		*spent = db_col_i64_or(res, 0, 0, 0);
out:
	PQclear(res);
	return er;
}

enum bw_err
budget_settle(struct db *db, const char *org_id, const char *hold_id,
    const struct budget_hold *h, const struct budget_usage *u, bool *settled,
    int64_t *charged, int64_t *spent)
{
	int64_t	    charge;
	enum bw_err er;

	charge = budget_charge(h, u);
	er = settle(db, org_id, hold_id, charge, u, NULL, NULL, settled, spent);
	if (er == BW_OK && charged != NULL)
		*charged = *settled ? charge : 0;
	return er;
}

enum bw_err
budget_settle_with(struct db *db, const char *org_id, const char *hold_id,
    const struct budget_hold *h, const struct budget_usage *u,
    void (*meanwhile)(void *), void *arg, bool *settled, int64_t *charged,
    int64_t *spent)
{
	int64_t	    charge;
	enum bw_err er;

	charge = budget_charge(h, u);
	er = settle(db, org_id, hold_id, charge, u, meanwhile, arg, settled,
	    spent);
	if (er == BW_OK && charged != NULL)
		*charged = *settled ? charge : 0;
	return er;
}

enum bw_err
budget_release(struct db *db, const char *org_id, const char *hold_id,
    bool *settled)
{
	struct budget_usage u;

	memset(&u, 0, sizeof(u));
	return settle(db, org_id, hold_id, 0, &u, NULL, NULL, settled, NULL);
}

/* clang-format off */
static const char sql_expire[] =
    "WITH e AS (UPDATE llm_holds h SET state = 'expired',"
    " charged_micros = h.held_micros, settled_at = now()"
    " FROM (SELECT org_id, id FROM llm_holds"
    "  WHERE state = 'held' AND expires_at < now()"
    "  ORDER BY expires_at LIMIT $1::int FOR UPDATE SKIP LOCKED) x"
    " WHERE h.org_id = x.org_id AND h.id = x.id AND h.state = 'held'"
    " RETURNING h.org_id, h.day, h.held_micros AS amt),"
    BUDGET_SQL_EXPIRED_TO_SPENT;
/* clang-format on */

enum bw_err
budget_expire(struct db *db, int batch, int *n)
{
	return db_exec_batch(db, "budget_expire", sql_expire, batch, n);
}

enum bw_err
budget_holds_in_flight(struct db *db, int64_t *held)
{
	static const char sql[] =
	    "SELECT count(*) FROM llm_holds WHERE state = 'held'";
	PGresult   *res = NULL;
	enum bw_err er;

	er = db_execp(db, "budget_holds_in_flight", sql, 0, NULL, &res);
	if (er == BW_OK)
		*held = db_col_i64_or(res, 0, 0, 0);
	PQclear(res);
	return er;
}

/* clang-format off */
static const char sql_today[] =
    "WITH d AS (SELECT o.id, (now() AT TIME ZONE COALESCE(s.timezone, o.timezone))::date AS day,"
    "  s.daily_budget_micros AS budget, COALESCE(s.org_cap, 0) AS org_cap"
    "  FROM orgs o LEFT JOIN chat_org_settings s ON s.org_id = o.id WHERE o.id = $1::uuid)"
    " SELECT d.day::text, d.budget, d.org_cap, COALESCE(b.spent_micros, 0) + k.u,"
    "  COALESCE(b.reserved_micros, 0) - k.u, h.calls, h.settled, h.tin, h.tout"
    " FROM d LEFT JOIN org_budget_days b ON b.org_id = d.id AND b.day = d.day"
    /* Charges recorded in held budget blocks are spent, not reserved. */
    " CROSS JOIN LATERAL (SELECT COALESCE(sum(used_micros - moved_micros), 0) AS u"
    "  FROM llm_budget_blocks WHERE org_id = d.id AND day = d.day"
    "  AND state = 'held') k"
    " CROSS JOIN LATERAL (SELECT count(*) AS calls,"
    "  count(*) FILTER (WHERE state = 'settled') AS settled,"
    "  COALESCE(sum(input_tokens), 0) AS tin, COALESCE(sum(output_tokens), 0) AS tout"
    "  FROM llm_holds WHERE org_id = d.id AND day = d.day) h";
/* clang-format on */

enum bw_err
budget_today(struct db *db, const char *org_id, struct budget_today *out)
{
	const char *p[1] = { org_id };
	PGresult   *res = NULL;
	enum bw_err er;

	if (!jv_is_uuid(org_id, strlen(org_id)))
		return BW_ENOTFOUND;
	er = db_execp(db, "budget_today", sql_today, 1, p, &res);
	if (er != BW_OK)
		goto out;
	if (PQntuples(res) != 1) {
		er = BW_ENOTFOUND;
		goto out;
	}
	memset(out, 0, sizeof(*out));
	budget_copy(out->day, sizeof(out->day), PQgetvalue(res, 0, 0));
	out->has_budget = !PQgetisnull(res, 0, 1);
	out->daily_micros = db_col_i64_or(res, 0, 1, 0);
	out->org_cap = (int)db_col_i64_or(res, 0, 2, 0);
	out->spent_micros = db_col_i64_or(res, 0, 3, 0);
	out->reserved_micros = db_col_i64_or(res, 0, 4, 0);
	out->calls = db_col_i64_or(res, 0, 5, 0);
	out->settled = db_col_i64_or(res, 0, 6, 0);
	out->input_tokens = db_col_i64_or(res, 0, 7, 0);
	out->output_tokens = db_col_i64_or(res, 0, 8, 0);
out:
	PQclear(res);
	return er;
}

enum bw_err
budget_config_set(struct db *db, const char *org_id,
    const struct budget_config *c)
{
	/* A name of pg_timezone_names, without reading it (sql/0039). */
	static const char sql_tz[] = "SELECT 1 WHERE bw_valid_timezone($1)";
	static const char sql[] =
	    "INSERT INTO chat_org_settings (org_id, daily_budget_micros,"
	    " soft_pct, hard_stop, downgrade, primary_model, fallback_model,"
	    " timezone) VALUES ($1::uuid, $2::bigint, $3::int, $4::boolean,"
	    " $5::boolean, $6, $7, $8)"
	    " ON CONFLICT (org_id) DO UPDATE SET"
	    " daily_budget_micros = EXCLUDED.daily_budget_micros,"
	    " soft_pct = EXCLUDED.soft_pct, hard_stop = EXCLUDED.hard_stop,"
	    " downgrade = EXCLUDED.downgrade,"
	    " primary_model = COALESCE(EXCLUDED.primary_model,"
	    "  chat_org_settings.primary_model),"
	    " fallback_model = COALESCE(EXCLUDED.fallback_model,"
	    "  chat_org_settings.fallback_model),"
	    " timezone = COALESCE(EXCLUDED.timezone, "
	    "chat_org_settings.timezone),"
	    " updated_at = now()";
	const char *p[8];
	char	    dm[24], sp[16];
	PGresult   *res = NULL;
	enum bw_err er;

	if (!jv_is_uuid(org_id, strlen(org_id)))
		return BW_ENOTFOUND;
	if (c->timezone != NULL) {
		p[0] = c->timezone;
		er = db_exec(db, sql_tz, 1, p, &res);
		if (er != BW_OK)
			goto out;
		if (PQntuples(res) != 1) {
			er = BW_EINVAL;
			goto out;
		}
		PQclear(res);
		res = NULL;
	}
	snprintf(dm, sizeof(dm), "%" PRId64, c->daily_micros);
	snprintf(sp, sizeof(sp), "%d", c->soft_pct);
	p[0] = org_id;
	p[1] = c->daily_micros < 0 ? NULL : dm;
	p[2] = sp;
	p[3] = c->hard_stop ? "true" : "false";
	p[4] = c->downgrade ? "true" : "false";
	p[5] = c->primary;
	p[6] = c->fallback;
	p[7] = c->timezone;
	er = db_exec(db, sql, 8, p, NULL);
	/* 23503: the org does not exist. */
	if (er == BW_EINVAL && strcmp(db_sqlstate(db), "23503") == 0)
		er = BW_ENOTFOUND;
out:
	PQclear(res);
	return er;
}

enum bw_err
budget_price_set(struct db *db, const char *model, int64_t in_per_mtok,
    int64_t out_per_mtok)
{
	static const char sql[] =
	    "INSERT INTO llm_prices (model, input_micros_per_mtok,"
	    " output_micros_per_mtok) VALUES ($1, $2::bigint, $3::bigint)"
	    " ON CONFLICT (model) DO UPDATE SET"
	    " input_micros_per_mtok = EXCLUDED.input_micros_per_mtok,"
	    " output_micros_per_mtok = EXCLUDED.output_micros_per_mtok,"
	    " updated_at = now()";
	const char *p[3];
	char	    a[24], b[24];

	snprintf(a, sizeof(a), "%" PRId64, in_per_mtok);
	snprintf(b, sizeof(b), "%" PRId64, out_per_mtok);
	p[0] = model;
	p[1] = a;
	p[2] = b;
	return db_exec(db, sql, 3, p, NULL);
}

enum bw_err
budget_prompt_rule_set(struct db *db, const char *model, int bytes_per_token,
    int tokens_per_message)
{
	static const char sql[] =
	    "UPDATE llm_prices SET prompt_bytes_per_token = $2::int,"
	    " prompt_tokens_per_message = $3::int, updated_at = now()"
	    " WHERE model = $1";
	const char *p[3];
	char	    a[16], b[16];
	PGresult   *res = NULL;
	enum bw_err er;

	snprintf(a, sizeof(a), "%d", bytes_per_token);
	snprintf(b, sizeof(b), "%d", tokens_per_message);
	p[0] = model;
	p[1] = a;
	p[2] = b;
	er = db_exec(db, sql, 3, p, &res);
	if (er == BW_OK && db_rows(res) != 1)
		er = BW_ENOTFOUND;
	PQclear(res);
	return er;
}

enum bw_err
budget_price_known(struct db *db, const char *model, int *known)
{
	const char *p[1] = { model };
	PGresult   *res = NULL;
	enum bw_err er;

	er = db_execp(db, "budget_price", sql_price, 1, p, &res);
	if (er == BW_OK)
		*known = PQntuples(res) == 1;
	PQclear(res);
	return er;
}

enum bw_err
budget_texts_set(struct db *db, const char *org_id, const char *system_prompt,
    const char *fallback_reply, const char *line_token, int org_cap)
{
	static const char sql[] =
	    "INSERT INTO chat_org_settings (org_id, system_prompt,"
	    " fallback_reply, line_channel_token, org_cap)"
	    " VALUES ($1::uuid, COALESCE($2, ''), $3, $4, $5::int)"
	    " ON CONFLICT (org_id) DO UPDATE SET"
	    " system_prompt = COALESCE($2, chat_org_settings.system_prompt),"
	    " fallback_reply = COALESCE($3, chat_org_settings.fallback_reply),"
	    " line_channel_token = COALESCE($4,"
	    "  chat_org_settings.line_channel_token),"
	    " org_cap = COALESCE($5::int, chat_org_settings.org_cap),"
	    " updated_at = now()";
	const char *p[5];
	char	    cap[16];
	enum bw_err er;

	if (!jv_is_uuid(org_id, strlen(org_id)))
		return BW_ENOTFOUND;
	snprintf(cap, sizeof(cap), "%d", org_cap);
	p[0] = org_id;
	p[1] = system_prompt;
	p[2] = fallback_reply;
	p[3] = line_token;
	p[4] = org_cap < 0 ? NULL : cap;
	er = db_exec(db, sql, 5, p, NULL);
	if (er == BW_EINVAL && strcmp(db_sqlstate(db), "23503") == 0)
		er = BW_ENOTFOUND;
	return er;
}

enum bw_err
budget_warm(struct db *db)
{
	const struct db_stmt s[] = { st_settings, st_hold, st_day_create,
		st_extend, st_settle, st_settle_async };

	return db_warm(db, s, sizeof(s) / sizeof(s[0]));
}
