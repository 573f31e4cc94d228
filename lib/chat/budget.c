/* SPDX-License-Identifier: MIT */
/*
 * Daily LLM budgets: org chat settings, prices, holds and their settlement.
 * The decision and the hold happen on one locked org_budget_days row in one
 * transaction; settlement and expiry are single statements keyed by the
 * hold's state, so each hold moves out of 'held' exactly once.
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
budget_input_bound(int64_t bytes, int nmessages)
{
	if (bytes < 0)
		bytes = 0;
	if (nmessages < 0)
		nmessages = 0;
	return sat_add(bytes, sat_mul(nmessages, BUDGET_MSG_OVERHEAD));
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

static void
copy_str(char *dst, size_t n, const char *src)
{
	snprintf(dst, n, "%s", src != NULL ? src : "");
}

static const char sql_settings[] =
    "SELECT s.daily_budget_micros, COALESCE(s.soft_pct, 80),"
    " COALESCE(s.hard_stop, true), COALESCE(s.downgrade, true),"
    " s.primary_model, s.fallback_model,"
    " (now() AT TIME ZONE COALESCE(s.timezone, o.timezone))::date::text,"
    " COALESCE(s.org_cap, 0), COALESCE(s.system_prompt, ''),"
    " s.fallback_reply, s.line_channel_token"
    " FROM orgs o LEFT JOIN chat_org_settings s ON s.org_id = o.id"
    " WHERE o.id = $1::uuid";

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
	er = db_execp(db, "budget_settings", sql_settings, 1, p, &res);
	if (er != BW_OK)
		goto out;
	if (PQntuples(res) != 1) {
		er = BW_ENOTFOUND;
		goto out;
	}
	memset(&s, 0, sizeof(s));
	copy_str(s.org_id, sizeof(s.org_id), org_id);
	s.has_budget = !PQgetisnull(res, 0, 0);
	s.daily_micros = s.has_budget ? db_col_i64_or(res, 0, 0, 0) : 0;
	s.soft_pct = (int)db_col_i64_or(res, 0, 1, 0);
	s.hard_stop = PQgetvalue(res, 0, 2)[0] == 't';
	s.downgrade = PQgetvalue(res, 0, 3)[0] == 't';
	copy_str(s.primary, sizeof(s.primary),
	    PQgetisnull(res, 0, 4) ? dflt_primary : PQgetvalue(res, 0, 4));
	copy_str(s.fallback, sizeof(s.fallback),
	    PQgetisnull(res, 0, 5) ? dflt_fallback : PQgetvalue(res, 0, 5));
	copy_str(s.day, sizeof(s.day), PQgetvalue(res, 0, 6));
	s.org_cap = (int)db_col_i64_or(res, 0, 7, 0);
	s.system_prompt = strdup(PQgetvalue(res, 0, 8));
	s.fallback_reply = db_col_dup(res, 0, 9);
	s.line_token = db_col_dup(res, 0, 10);
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

/* The hold transaction's arguments and results. */
struct hold_tx {
	const struct budget_settings *s;
	const struct budget_ask	     *a;
	struct budget_hold	      h;
	enum budget_verdict	      v;
};

/*
 * Locks (creating it if needed) the org's day row: INSERT .. ON CONFLICT
 * DO UPDATE takes the row lock and returns the latest committed values.
 */
static const char sql_day_lock[] =
    "INSERT INTO org_budget_days (org_id, day) VALUES ($1::uuid, $2::date)"
    " ON CONFLICT (org_id, day) DO UPDATE SET updated_at = now()"
    " RETURNING spent_micros, reserved_micros";
static const char sql_price[] =
    "SELECT input_micros_per_mtok, output_micros_per_mtok"
    " FROM llm_prices WHERE model = $1";
static const char sql_day_reserve[] =
    "UPDATE org_budget_days SET reserved_micros = reserved_micros + $3,"
    " holds = holds + 1, downgraded = downgraded + $4"
    " WHERE org_id = $1::uuid AND day = $2::date";
static const char sql_hold_insert[] =
    "INSERT INTO llm_holds (org_id, day, model, downgraded, max_tokens,"
    " input_bound, held_micros, request_id, correlation_id, expires_at)"
    " VALUES ($1::uuid, $2::date, $3, $4::boolean, $5::int, $6::int, $7,"
    " $8, $9, now() + make_interval(secs => $10::int)) RETURNING id";

static enum bw_err
hold_fn(struct db *db, void *arg)
{
	struct hold_tx		     *t = arg;
	const struct budget_settings *s = t->s;
	const struct budget_ask	     *a = t->a;
	struct budget_hold	     *h = &t->h;
	PGresult		     *res = NULL;
	const char		     *p[10];
	char			      held[24], dg[4], mt[16], ib[24];
	char			      ttl[16];
	int64_t			      spent, reserved, remaining, fit;
	int			      priced, attempts;
	enum bw_err		      er;

	memset(h, 0, sizeof(*h));
	t->v = BV_OK;
	p[0] = s->org_id;
	p[1] = s->day;
	er = db_execp(db, "budget_day_lock", sql_day_lock, 2, p, &res);
	if (er != BW_OK)
		goto out;
	spent = db_col_i64_or(res, 0, 0, 0);
	reserved = db_col_i64_or(res, 0, 1, 0);
	PQclear(res);
	res = NULL;

	/* The model first: the soft threshold counts what is reserved. */
	copy_str(h->model, sizeof(h->model), s->primary);
	if (s->has_budget && s->downgrade && s->daily_micros > 0 &&
	    sat_mul(sat_add(spent, reserved), 100) >=
		sat_mul(s->daily_micros, s->soft_pct)) {
		copy_str(h->model, sizeof(h->model), s->fallback);
		h->downgraded = strcmp(s->fallback, s->primary) != 0;
	} else if (s->has_budget && s->downgrade && s->daily_micros == 0) {
		copy_str(h->model, sizeof(h->model), s->fallback);
		h->downgraded = strcmp(s->fallback, s->primary) != 0;
	}
	p[0] = h->model;
	er = db_execp(db, "budget_price", sql_price, 1, p, &res);
	if (er != BW_OK)
		goto out;
	priced = PQntuples(res) == 1;
	if (priced) {
		h->in_price = db_col_i64_or(res, 0, 0, 0);
		h->out_price = db_col_i64_or(res, 0, 1, 0);
	}
	PQclear(res);
	res = NULL;
	if (!priced && s->has_budget) {
		t->v = BV_NOPRICE;
		goto out;
	}

	attempts = a->attempts < 1 ? 1 : a->attempts;
	h->input_bound = budget_input_bound(a->input_bytes, a->nmessages);
	h->max_tokens = a->max_tokens;
	if (s->has_budget && s->hard_stop) {
		remaining = s->daily_micros - spent - reserved;
		fit = remaining < 0
		    ? -1
		    : budget_fit_tokens(remaining, h->input_bound, attempts,
			  h->in_price, h->out_price, a->max_tokens);
		if (fit < a->min_tokens || fit < 1) {
			t->v = BV_EXCEEDED;
			goto out;
		}
		h->max_tokens = (int)fit;
	}
	h->held_micros = budget_cost(sat_mul(h->input_bound, attempts),
	    h->max_tokens, h->in_price, h->out_price);

	snprintf(held, sizeof(held), "%" PRId64, h->held_micros);
	snprintf(dg, sizeof(dg), "%d", h->downgraded ? 1 : 0);
	p[0] = s->org_id;
	p[1] = s->day;
	p[2] = held;
	p[3] = dg;
	er = db_execp(db, "budget_day_reserve", sql_day_reserve, 4, p, NULL);
	if (er != BW_OK)
		goto out;
	snprintf(mt, sizeof(mt), "%d", h->max_tokens);
	snprintf(ib, sizeof(ib), "%" PRId64,
	    h->input_bound > INT32_MAX ? (int64_t)INT32_MAX : h->input_bound);
	snprintf(ttl, sizeof(ttl), "%d", a->ttl_s);
	p[2] = h->model;
	p[3] = h->downgraded ? "true" : "false";
	p[4] = mt;
	p[5] = ib;
	p[6] = held;
	p[7] = a->request_id;
	p[8] = a->correlation_id;
	p[9] = ttl;
	er = db_execp(db, "budget_hold_insert", sql_hold_insert, 10, p, &res);
	if (er != BW_OK)
		goto out;
	copy_str(h->id, sizeof(h->id), PQgetvalue(res, 0, 0));
out:
	PQclear(res);
	return er;
}

enum bw_err
budget_hold(struct db *db, const struct budget_settings *s,
    const struct budget_ask *a, struct budget_hold *hold,
    enum budget_verdict *verdict)
{
	struct hold_tx t;
	enum bw_err    er;

	memset(&t, 0, sizeof(t));
	t.s = s;
	t.a = a;
	er = db_tx(db, false, hold_fn, &t);
	if (er != BW_OK)
		return er;
	*hold = t.h;
	*verdict = t.v;
	return BW_OK;
}

/* One statement: the hold leaves 'held' and its day row is adjusted. */
static const char sql_settle[] =
    "WITH h AS (UPDATE llm_holds SET state = 'settled',"
    " charged_micros = $3, input_tokens = $4::int, output_tokens = $5::int,"
    " attempts = $6::int, settled_at = now()"
    " WHERE org_id = $1::uuid AND id = $2::uuid AND state = 'held'"
    " RETURNING org_id, day, held_micros)"
    " UPDATE org_budget_days d SET"
    " reserved_micros = d.reserved_micros - h.held_micros,"
    " spent_micros = d.spent_micros + $3, updated_at = now()"
    " FROM h WHERE d.org_id = h.org_id AND d.day = h.day"
    " RETURNING d.spent_micros";

static enum bw_err
settle(struct db *db, const char *org_id, const char *hold_id, int64_t charge,
    const struct budget_usage *u, bool *settled, int64_t *spent)
{
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
	er = db_execp(db, "budget_settle", sql_settle, 6, p, &res);
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

	charge = sat_add(budget_cost(u->input_tokens, u->output_tokens,
			     h->in_price, h->out_price),
	    budget_cost(sat_mul(h->input_bound, u->failed_attempts), 0,
		h->in_price, 0));
	er = settle(db, org_id, hold_id, charge, u, settled, spent);
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
	return settle(db, org_id, hold_id, 0, &u, settled, NULL);
}

static const char sql_expire[] =
    "WITH e AS (UPDATE llm_holds h SET state = 'expired',"
    " charged_micros = h.held_micros, settled_at = now()"
    " FROM (SELECT org_id, id FROM llm_holds"
    "  WHERE state = 'held' AND expires_at < now()"
    "  ORDER BY expires_at LIMIT $1::int FOR UPDATE SKIP LOCKED) x"
    " WHERE h.org_id = x.org_id AND h.id = x.id AND h.state = 'held'"
    " RETURNING h.org_id, h.day, h.held_micros),"
    " s AS (SELECT org_id, day, sum(held_micros) AS amt, count(*) AS n"
    "  FROM e GROUP BY org_id, day),"
    " u AS (UPDATE org_budget_days d SET"
    "  reserved_micros = d.reserved_micros - s.amt,"
    "  spent_micros = d.spent_micros + s.amt, updated_at = now()"
    "  FROM s WHERE d.org_id = s.org_id AND d.day = s.day RETURNING s.n)"
    " SELECT COALESCE(sum(n), 0) FROM u";

enum bw_err
budget_expire(struct db *db, int batch, int *n)
{
	const char *p[1];
	char	    b[16];
	PGresult   *res = NULL;
	enum bw_err er;

	snprintf(b, sizeof(b), "%d", batch);
	p[0] = b;
	er = db_execp(db, "budget_expire", sql_expire, 1, p, &res);
	if (er != BW_OK)
		goto out;
	*n = (int)db_col_i64_or(res, 0, 0, 0);
out:
	PQclear(res);
	return er;
}

enum bw_err
budget_hold_counts(struct db *db, int64_t counts[3])
{
	static const char sql[] =
	    "SELECT count(*) FILTER (WHERE state = 'held'),"
	    " count(*) FILTER (WHERE state = 'settled'),"
	    " count(*) FILTER (WHERE state = 'expired') FROM llm_holds";
	PGresult   *res = NULL;
	enum bw_err er;
	int	    i;

	er = db_execp(db, "budget_hold_counts", sql, 0, NULL, &res);
	if (er != BW_OK)
		goto out;
	for (i = 0; i < 3; i++)
		counts[i] = db_col_i64_or(res, 0, i, 0);
out:
	PQclear(res);
	return er;
}

enum bw_err
budget_config_set(struct db *db, const char *org_id,
    const struct budget_config *c)
{
	static const char sql_tz[] =
	    "SELECT 1 FROM pg_timezone_names WHERE name = $1";
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
