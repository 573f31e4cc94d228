/* SPDX-License-Identifier: MIT */
/*
 * Budget blocks (block.h). The money moves in SQL (sql/0040): the take and
 * the renewal (bw_block_renew()) and the return (bw_block_return()) are
 * single synchronous statements under the day row's lock, fenced to the
 * session that took the block; a call's record is one statement committed
 * without its flush. Here: which block a call goes to, the room left in
 * it, and when a block is renewed, returned or given up.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/block.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/pgarray.h"

/* What happened to blocks in this host (metric ids, -1: not counted). */
enum block_event {
	BE_TAKEN,
	BE_RENEWED,
	BE_RETURNED,
	BE_LOST,
	BE_CALLS,
	BE_FALLBACKS,
	BE_BATCHES,
	BE__MAX
};
static int		 m_ev[BE__MAX] = { -1, -1, -1, -1, -1, -1, -1 };
static const char *const ev_names[BE__MAX] = { "taken", "renewed", "returned",
	"lost", "call", "fallback", "batch" };

int
block_metrics_register(void)
{
	char l[48];
	int  i;

	for (i = 0; i < BE__MAX; i++) {
		snprintf(l, sizeof(l), "event=\"%s\"", ev_names[i]);
		m_ev[i] = metrics_counter("bulwark_llm_budget_blocks_total",
		    "Budget blocks of chat children by event (call: a call "
		    "held in a block; fallback: a call that held on its own; "
		    "batch: a statement writing a block's kept records).",
		    l);
		if (m_ev[i] < 0)
			return -1;
	}
	return 0;
}

#define COUNT(e) metrics_inc(m_ev[e])

/* The take or renewal; see bw_block_renew() in sql/0040. */
static const char sql_renew[] =
    "SELECT verdict, block_id, granted, model, downgraded, in_price,"
    " out_price, bytes_per_token, tokens_per_message"
    " FROM bw_block_renew($1::uuid, $2::date, $12::uuid, $3, $4, $5::bigint,"
    " $6::int, $7::boolean, $8::boolean, $9::bigint, $10::int, $11::int,"
    " $13::int, $14::int, $15::bigint, $16::bigint, $17::int, $18)";
static const struct db_stmt st_renew = { "block_renew", sql_renew, 18, NULL };
static const char sql_return[] = "SELECT bw_block_return($1::uuid, $2::uuid)";
static const struct db_stmt st_return = { "block_return", sql_return, 2, NULL };
/*
 * A call's record: its charge joins the block's used_micros and a settled
 * llm_holds row keeps what it was (held_micros: its hold in the block).
 * Committed without waiting for its flush: a crash that loses it loses
 * the session with it, and the block then expires whole (sql/0040).
 */
/* clang-format off */
static const char sql_record[] =
    "WITH b AS (UPDATE llm_budget_blocks SET used_micros = used_micros + $3::bigint"
    "  WHERE org_id = $1::uuid AND id = $2::uuid RETURNING day)"
    " INSERT INTO llm_holds (org_id, day, model, downgraded, max_tokens,"
    "  input_bound, held_micros, state, charged_micros, input_tokens,"
    "  output_tokens, attempts, request_id, correlation_id, expires_at,"
    "  settled_at, block_id)"
    " SELECT $1::uuid, b.day, $4, $5::boolean, $6::int, $7::int, $8::bigint,"
    "  'settled', $3::bigint, $9::int, $10::int, $11::int, $12, $13, now(),"
    "  now(), $2::uuid FROM b"
    " RETURNING set_config('synchronous_commit', 'off', true)";
/* clang-format on */
#define WARM_ID "00000000-0000-0000-0000-000000000000"
static const char *const    warm_record[] = { WARM_ID, WARM_ID, "0", "warm",
	   "false", "1", "1", "0", "0", "0", "0", NULL, NULL };
static const struct db_stmt st_record = { "block_record", sql_record, 13,
	warm_record };
/*
 * Every kept record (struct block_rec), whatever its org: one array per
 * column to bw_block_records() (sql/0041, past row-level security: each
 * record is written only with its own org's block row), committed
 * without its flush as a single record is. Returns the blocks written.
 */
static const char sql_batch[] =
    "SELECT bw_block_records($1::uuid[], $2::uuid[], $3::bigint[],"
    " $4::text[], $5::boolean[], $6::int[], $7::int[], $8::bigint[],"
    " $9::int[], $10::int[], $11::int[], $12::text[], $13::text[],"
    " $14::bigint[]), set_config('synchronous_commit', 'off', true)";
/* One record of no block: the function runs, writes nothing. */
static const char *const    warm_batch[] = { "{" WARM_ID "}", "{" WARM_ID "}",
	   "{0}", "{warm}", "{f}", "{1}", "{1}", "{0}", "{0}", "{0}", "{0}",
	   "{NULL}", "{NULL}", "{0}" };
static const struct db_stmt st_batch = { "block_batch", sql_batch, 14,
	warm_batch };

enum bw_err
block_warm(struct db *db)
{
	const struct db_stmt s[] = { st_renew, st_return, st_record, st_batch };

	return db_warm(db, s, sizeof(s) / sizeof(s[0]));
}

static struct budget_block *
find(struct block_set *set, const char *org_id)
{
	int i;

	for (i = 0; i < set->n; i++)
		if (strcmp(set->b[i].org_id, org_id) == 0)
			return &set->b[i];
	return NULL;
}

static struct budget_block *
find_id(struct block_set *set, const char *id)
{
	int i;

	for (i = 0; i < set->n; i++)
		if (strcmp(set->b[i].id, id) == 0)
			return &set->b[i];
	return NULL;
}

/* Drops b from the set (not returned). */
static void
forget(struct block_set *set, struct budget_block *b)
{
	struct budget_block *last = &set->b[set->n - 1];

	if (b != last)
		*b = *last;
	memset(last, 0, sizeof(*last));
	set->n--;
}

/*
 * db_execs() of st as org's tenant (NULL: none); the session's tenant is
 * kept.
 */
static enum bw_err
exec_as(struct db *db, const char *org, const struct db_stmt *st,
    const char *const *p, PGresult **res)
{
	char	    keep[37];
	enum bw_err er = BW_OK;

	budget_copy(keep, sizeof(keep), db_org(db));
	if (org != NULL)
		er = db_set_org(db, org);
	else
		db_clear_org(db);
	if (er == BW_OK)
		er = db_execs(db, st, p, res);
	if (keep[0] != '\0')
		(void)db_set_org(db, keep);
	else
		db_clear_org(db);
	return er;
}

/* Column c of the kept record r as text (NULL: SQL NULL). */
static const char *
rec_col(const struct block_rec *r, int c, char *tmp, size_t n)
{
	const int64_t num[] = { r->charge, 0, 0, r->max_tokens, r->input_bound,
		r->held, r->input_tokens, r->output_tokens, r->attempts, 0, 0,
		r->at_ms };

	switch (c) {
	case 0:
		return r->org_id;
	case 1:
		return r->block_id;
	case 3:
		return r->model;
	case 4:
		return r->downgraded ? "t" : "f";
	case 11:
		return r->has_rid ? r->request_id : NULL;
	case 12:
		return r->has_cid ? r->correlation_id : NULL;
	default:
		snprintf(tmp, n, "%" PRId64, num[c - 2]);
		return tmp;
	}
}

#define REC_COLS 14

/*
 * Writes every kept record (one statement, no tenant: sql/0041) and
 * empties the set's records, written or not. A block whose records were
 * not written (an error, its row gone) is dropped from the set (not
 * returned: it expires whole, covering what was lost); blocks may move
 * in the set (forget()): find them again by id.
 */
static void
write_kept(struct db *db, struct block_set *set)
{
	const char	    *col[BLOCK_REC_MAX], *p[REC_COLS];
	char		     tmp[BLOCK_REC_MAX][24], nb[16];
	struct buf	     a[REC_COLS];
	struct budget_block *b;
	PGresult	    *res = NULL;
	const char	    *done = "";
	enum bw_err	     er = BW_OK;
	int		     i, j, c, n = set->nrec, lost;

	if (n == 0)
		return;
	for (c = 0; c < REC_COLS; c++)
		buf_init(&a[c],
		    (size_t)BLOCK_REC_MAX * (2 * BW_MAX_REQUEST_ID + 8));
	for (c = 0; c < REC_COLS && er == BW_OK; c++) {
		for (i = 0; i < n; i++)
			col[i] =
			    rec_col(&set->rec[i], c, tmp[i], sizeof(tmp[i]));
		er = pgarray_text(&a[c], col, (size_t)n);
		p[c] = buf_cstr(&a[c]);
	}
	if (er == BW_OK)
		er = exec_as(db, NULL, &st_batch, p, &res);
	if (er == BW_OK && PQntuples(res) == 1)
		done = PQgetvalue(res, 0, 0); /* {id,id,...} */
	else if (er == BW_OK)
		er = BW_EDB;
	if (er == BW_OK)
		COUNT(BE_BATCHES);
	/* Each block with a record not written: dropped, logged once. */
	for (i = 0; i < n; i++) {
		for (j = 0; j < i; j++)
			if (strcmp(set->rec[j].block_id,
				set->rec[i].block_id) == 0)
				break;
		if (j < i ||
		    (er == BW_OK && strstr(done, set->rec[i].block_id) != NULL))
			continue;
		for (lost = 0, j = i; j < n; j++)
			lost += strcmp(set->rec[j].block_id,
				    set->rec[i].block_id) == 0;
		snprintf(nb, sizeof(nb), "%d", lost);
		COUNT(BE_LOST);
		log_kv(LL_WARN,
		    "budget block records not written; the block expires",
		    "block_id", set->rec[i].block_id, "records", nb, "error",
		    bw_strerror(er == BW_OK ? BW_ENOTFOUND : er), NULL);
		b = find_id(set, set->rec[i].block_id);
		if (b != NULL)
			forget(set, b);
	}
	PQclear(res);
	for (c = 0; c < REC_COLS; c++)
		buf_free(&a[c]);
	set->nrec = 0;
}

/* 1 when the set keeps a record of block id. */
static int
kept(const struct block_set *set, const char *id)
{
	int i;

	for (i = 0; i < set->nrec; i++)
		if (strcmp(set->rec[i].block_id, id) == 0)
			return 1;
	return 0;
}

/*
 * Before a renewal or a return of block *b (which move its recorded
 * charges): its kept records written. 0 with *b found again, -1 when its
 * write failed (the block dropped: it expires).
 */
static int
write_before(struct db *db, struct block_set *set, struct budget_block **b)
{
	char id[37];

	if (!kept(set, (*b)->id))
		return 0;
	budget_copy(id, sizeof(id), (*b)->id);
	write_kept(db, set);
	*b = find_id(set, id);
	return *b != NULL ? 0 : -1;
}

/*
 * Returns b (one statement, the org set for it) and drops it from the set,
 * its kept records written first. A block not this session's any more (or
 * whose records could not be written) is left to expire (counted lost).
 */
static void
return_one(struct db *db, struct block_set *set, struct budget_block *b)
{
	const char *p[2];
	PGresult   *res = NULL;
	enum bw_err er;

	if (write_before(db, set, &b) != 0)
		return; /* dropped: it expires */
	p[0] = b->org_id;
	p[1] = b->id;
	er = exec_as(db, b->org_id, &st_return, p, &res);
	if (er == BW_OK && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
		COUNT(BE_RETURNED);
	else {
		COUNT(BE_LOST);
		log_kv(LL_WARN, "budget block not returned; it expires",
		    "block_id", b->id, "error",
		    er != BW_OK ? bw_strerror(er) : "not this session's", NULL);
	}
	PQclear(res);
	forget(set, b);
}

enum block_verdict {
	BK_OK,
	BK_NONE,
	BK_LOST
};

/*
 * bw_block_renew() for b (NULL: take a new block for s's org; *b_out gets
 * its slot). need < 0: one call's hold. On BK_OK the block's figures and
 * room (granted less what is in flight) are set.
 */
static enum bw_err
renew(struct db *db, struct block_set *set, const struct budget_settings *s,
    const struct budget_ask *a, struct budget_block *b, int64_t need,
    enum block_verdict *v, struct budget_block **b_out)
{
	struct budget_pbuf  pb;
	const char	   *p[18], *verdict;
	char		    calls[16], pct[16], nd[24], inf[24], ttl[16];
	PGresult	   *res = NULL;
	enum bw_err	    er;
	int64_t		    inflight = b != NULL ? b->inflight : 0;
	struct budget_block nb;

	/* The renewal moves the block's recorded charges: all of them. */
	if (b != NULL && write_before(db, set, &b) != 0) {
		*v = BK_LOST;
		*b_out = NULL; /* dropped: it expires */
		return BW_EDB;
	}
	/* $1..$11 as the hold's statement has them, then the block's. */
	budget_decision_params(s, a, &pb, p);
	snprintf(calls, sizeof(calls), "%d", set->cfg.calls);
	snprintf(pct, sizeof(pct), "%d", set->cfg.pct);
	snprintf(nd, sizeof(nd), "%" PRId64, need);
	snprintf(inf, sizeof(inf), "%" PRId64, inflight);
	snprintf(ttl, sizeof(ttl), "%d", set->cfg.ttl_s);
	p[11] = b != NULL ? b->id : NULL;
	p[12] = calls;
	p[13] = pct;
	p[14] = need < 0 ? NULL : nd;
	p[15] = inf;
	p[16] = ttl;
	p[17] = set->cfg.owner != NULL ? set->cfg.owner : "";
	*v = BK_LOST;
	*b_out = b;
	er = db_execs(db, &st_renew, p, &res);
	if (er != BW_OK)
		goto out;
	if (PQntuples(res) != 1) {
		er = BW_EDB;
		goto out;
	}
	verdict = PQgetvalue(res, 0, 0);
	if (strcmp(verdict, "lost") == 0)
		goto out;
	if (strcmp(verdict, "none") == 0) {
		*v = BK_NONE;
		if (b != NULL && inflight > 0)
			b->room = db_col_i64_or(res, 0, 2, 0) - inflight;
		goto out;
	}
	*v = BK_OK;
	memset(&nb, 0, sizeof(nb));
	if (b == NULL) {
		budget_copy(nb.org_id, sizeof(nb.org_id), s->org_id);
		budget_copy(nb.id, sizeof(nb.id), PQgetvalue(res, 0, 1));
		budget_copy(nb.day, sizeof(nb.day), s->day);
	} else
		nb = *b;
	budget_copy(nb.model, sizeof(nb.model), PQgetvalue(res, 0, 3));
	nb.downgraded = PQgetvalue(res, 0, 4)[0] == 't';
	nb.in_price = db_col_i64_or(res, 0, 5, 0);
	nb.out_price = db_col_i64_or(res, 0, 6, 0);
	nb.bytes_per_token = (int)db_col_i64_or(res, 0, 7, 1);
	nb.tokens_per_message = (int)db_col_i64_or(res, 0, 8, 0);
	nb.room = db_col_i64_or(res, 0, 2, 0) - inflight;
	nb.has_budget = s->has_budget;
	nb.hard_stop = s->hard_stop;
	nb.daily_micros = s->daily_micros;
	nb.renew_ms = clock_mono_ms() + (int64_t)set->cfg.ttl_s * 1000 / 3;
	if (b == NULL) {
		if (set->n == BLOCK_MAX) {
			/* Full: the least recently used goes back first. */
			struct budget_block *lru = &set->b[0];
			int		     i;

			for (i = 1; i < set->n; i++)
				if (set->b[i].inflight == 0 &&
				    set->b[i].last_use_ms < lru->last_use_ms)
					lru = &set->b[i];
			return_one(db, set, lru);
		}
		b = &set->b[set->n++];
		COUNT(BE_TAKEN);
	} else
		COUNT(BE_RENEWED);
	*b = nb;
	*b_out = b;
out:
	PQclear(res);
	return er;
}

/*
 * 1 when this child served org before (a block is worth taking); notes
 * the call either way.
 */
static int
seen_before(struct block_set *set, const char *org, int64_t now)
{
	struct block_seen *old = &set->seen[0];
	int		   i;

	for (i = 0; i < BLOCK_MAX; i++) {
		if (strcmp(set->seen[i].org_id, org) == 0) {
			set->seen[i].ms = now;
			return 1;
		}
		if (set->seen[i].ms < old->ms)
			old = &set->seen[i]; /* a free one, or the oldest */
	}
	budget_copy(old->org_id, sizeof(old->org_id), org);
	old->ms = now;
	return 0;
}

/* One call's hold in block b for ask a. */
static int64_t
call_hold(const struct budget_block *b, const struct budget_ask *a, int64_t *ib)
{
	*ib = budget_input_bound(a->input_bytes, a->nmessages,
	    b->bytes_per_token, b->tokens_per_message);
	return budget_cost(*ib, a->max_tokens, b->in_price, b->out_price);
}

enum bw_err
block_hold(struct db *db, struct block_set *set,
    const struct budget_settings *s, const struct budget_ask *a,
    struct budget_hold *hold, bool *held)
{
	struct budget_block *b;
	enum block_verdict   v;
	enum bw_err	     er;
	int64_t		     h, ib, now = clock_mono_ms();

	*held = false;
	if (set == NULL || set->cfg.calls <= 0)
		return BW_OK;
	b = find(set, s->org_id);
	if (!seen_before(set, s->org_id, now) && b == NULL) {
		COUNT(BE_FALLBACKS); /* the first call: a hold of its own */
		return BW_OK;
	}
	if (b != NULL && b->inflight > 0)
		b->inflight = 0; /* a turn that never recorded: not in flight */
	if (b != NULL && strcmp(b->day, s->day) != 0) {
		return_one(db, set, b); /* the org's day changed */
		b = NULL;
	}
	h = b != NULL ? call_hold(b, a, &ib) : 0;
	/* A changed budget applies at once: the renewal gives back what a
	 * lowered one no longer covers. */
	if (b == NULL || h > b->room || now >= b->renew_ms ||
	    b->has_budget != s->has_budget || b->hard_stop != s->hard_stop ||
	    b->daily_micros != s->daily_micros) {
		er = renew(db, set, s, a, b, -1, &v, &b);
		if (er != BW_OK) {
			if (b != NULL)
				forget(set, b); /* unknown: it expires */
			return er;
		}
		if (v == BK_LOST && b != NULL) {
			COUNT(BE_LOST);
			log_kv(LL_WARN, "budget block lost; it expires",
			    "block_id", b->id, NULL);
			forget(set, b);
			er = renew(db, set, s, a, NULL, -1, &v, &b);
			if (er != BW_OK)
				return er;
		}
		if (v != BK_OK) {
			if (v == BK_NONE && b != NULL) {
				/* The renewal returned it. */
				COUNT(BE_RETURNED);
				forget(set, b);
			}
			COUNT(BE_FALLBACKS);
			return BW_OK;
		}
		h = call_hold(b, a, &ib);
		if (h > b->room) {
			COUNT(BE_FALLBACKS);
			return BW_OK; /* cannot happen: SQL's need is h */
		}
	}
	b->room -= h;
	b->inflight = h;
	b->last_use_ms = now;
	COUNT(BE_CALLS);
	memset(hold, 0, sizeof(*hold));
	hold->block = true;
	budget_copy(hold->block_id, sizeof(hold->block_id), b->id);
	budget_copy(hold->model, sizeof(hold->model), b->model);
	hold->downgraded = b->downgraded;
	hold->max_tokens = a->max_tokens;
	hold->input_bound = ib;
	hold->held_micros = h;
	hold->in_price = b->in_price;
	hold->out_price = b->out_price;
	*held = true;
	return BW_OK;
}

enum bw_err
block_extend(struct db *db, struct block_set *set,
    const struct budget_settings *s, struct budget_hold *hold, bool *extended)
{
	struct budget_block *b;
	struct budget_ask    a;
	enum block_verdict   v;
	enum bw_err	     er;
	int64_t		     ext = budget_extend_micros(hold);

	*extended = false;
	b = find_id(set, hold->block_id);
	if (b == NULL)
		return BW_OK;
	if (ext > b->room) {
		memset(&a, 0, sizeof(a));
		a.max_tokens = hold->max_tokens;
		er = renew(db, set, s, &a, b, ext, &v, &b);
		if (er != BW_OK)
			return er;
		if (v == BK_LOST) {
			/* Not this session's: no more calls in it (the one in
			 * flight is covered by its expiry). */
			COUNT(BE_LOST);
			log_kv(LL_WARN, "budget block lost; it expires",
			    "block_id", b->id, NULL);
			forget(set, b);
			return BW_OK;
		}
		if (ext > b->room)
			return BW_OK;
	}
	b->room -= ext;
	b->inflight += ext;
	hold->held_micros += ext;
	hold->extensions++;
	*extended = true;
	return BW_OK;
}

/*
 * Keeps the record of a call in block b (room and flight updated as a
 * written record's), writing every kept record first when the set is
 * full. BW_ETOOBIG: an id too long to keep (written at once instead).
 */
static enum bw_err
keep_record(struct db *db, struct block_set *set, struct budget_block *b,
    const struct budget_hold *hold, const struct budget_usage *u,
    int64_t charge, const char *request_id, const char *correlation_id)
{
	struct block_rec *r;
	char		  id[37];

	if ((request_id != NULL && strlen(request_id) > BW_MAX_REQUEST_ID) ||
	    (correlation_id != NULL &&
		strlen(correlation_id) > BW_MAX_REQUEST_ID))
		return BW_ETOOBIG;
	if (set->nrec == BLOCK_REC_MAX) {
		budget_copy(id, sizeof(id), b->id);
		write_kept(db, set);
		/* A failed write drops its block, moving another in the set. */
		b = find_id(set, id);
		if (b == NULL)
			return BW_EDB; /* its write failed: dropped */
	}
	r = &set->rec[set->nrec++];
	memset(r, 0, sizeof(*r));
	budget_copy(r->org_id, sizeof(r->org_id), b->org_id);
	budget_copy(r->block_id, sizeof(r->block_id), b->id);
	budget_copy(r->model, sizeof(r->model), hold->model);
	r->downgraded = hold->downgraded;
	r->max_tokens = hold->max_tokens;
	r->attempts = u->attempts;
	r->input_bound = hold->input_bound > INT32_MAX ? (int64_t)INT32_MAX
						       : hold->input_bound;
	r->held = hold->held_micros;
	r->charge = charge;
	r->input_tokens =
	    u->input_tokens > INT32_MAX ? (int64_t)INT32_MAX : u->input_tokens;
	r->output_tokens = u->output_tokens > INT32_MAX ? (int64_t)INT32_MAX
							: u->output_tokens;
	r->has_rid = request_id != NULL;
	r->has_cid = correlation_id != NULL;
	if (request_id != NULL)
		budget_copy(r->request_id, sizeof(r->request_id), request_id);
	if (correlation_id != NULL)
		budget_copy(r->correlation_id, sizeof(r->correlation_id),
		    correlation_id);
	r->at_ms = clock_wall_ms();
	r->ms = clock_mono_ms();
	b->inflight = 0;
	b->room += hold->held_micros - charge; /* the hold's unused part */
	return BW_OK;
}

static enum bw_err
record(struct db *db, struct block_set *set, const char *org_id,
    const struct budget_hold *hold, const struct budget_usage *u,
    int64_t charge, const char *request_id, const char *correlation_id,
    void (*meanwhile)(void *), void *arg)
{
	struct budget_block *b;
	const char	    *p[13];
	char		     c[24], mt[16], ib[24], hd[24], in[24], out[24];
	char		     at[16];
	PGresult	    *res = NULL;
	enum bw_err	     er;

	b = find_id(set, hold->block_id);
	if (b != NULL && set->cfg.rec_batch > 1 &&
	    strcmp(b->org_id, org_id) == 0) {
		er = keep_record(db, set, b, hold, u, charge, request_id,
		    correlation_id);
		if (er != BW_ETOOBIG) {
			if (meanwhile != NULL)
				meanwhile(arg);
			return er;
		}
	}
	snprintf(c, sizeof(c), "%" PRId64, charge);
	snprintf(mt, sizeof(mt), "%d", hold->max_tokens);
	snprintf(ib, sizeof(ib), "%" PRId64,
	    hold->input_bound > INT32_MAX ? (int64_t)INT32_MAX
					  : hold->input_bound);
	snprintf(hd, sizeof(hd), "%" PRId64, hold->held_micros);
	snprintf(in, sizeof(in), "%" PRId64,
	    u->input_tokens > INT32_MAX ? (int64_t)INT32_MAX : u->input_tokens);
	snprintf(out, sizeof(out), "%" PRId64,
	    u->output_tokens > INT32_MAX ? (int64_t)INT32_MAX
					 : u->output_tokens);
	snprintf(at, sizeof(at), "%d", u->attempts);
	p[0] = org_id;
	p[1] = hold->block_id;
	p[2] = c;
	p[3] = hold->model;
	p[4] = hold->downgraded ? "true" : "false";
	p[5] = mt;
	p[6] = ib;
	p[7] = hd;
	p[8] = in;
	p[9] = out;
	p[10] = at;
	p[11] = request_id;
	p[12] = correlation_id;
	if (meanwhile == NULL)
		er = db_execs(db, &st_record, p, &res);
	else if (db_sendp(db, st_record.name, st_record.sql, st_record.nparams,
		     p) == BW_OK) {
		meanwhile(arg); /* PostgreSQL records while the caller works */
		er = db_recvp(db, st_record.name, &res);
	} else {
		meanwhile(arg);
		er = db_execs(db, &st_record, p, &res);
	}
	b = find_id(set, hold->block_id);
	if (er == BW_OK && PQntuples(res) != 1)
		er = BW_ENOTFOUND; /* the block row is gone */
	if (b != NULL) {
		b->inflight = 0;
		if (er != BW_OK) {
			/* Its record may be missing: never returned, it
			 * expires whole. */
			COUNT(BE_LOST);
			log_kv(LL_WARN,
			    "budget block record failed; it expires",
			    "block_id", b->id, "error", bw_strerror(er), NULL);
			forget(set, b);
		} else
			/* What the hold did not use is room again. */
			b->room += hold->held_micros - charge;
	}
	PQclear(res);
	return er;
}

enum bw_err
block_settle(struct db *db, struct block_set *set, const char *org_id,
    const struct budget_hold *hold, const struct budget_usage *u,
    const char *request_id, const char *correlation_id,
    void (*meanwhile)(void *), void *arg, int64_t *charged)
{
	int64_t charge = budget_charge(hold, u);

	*charged = charge;
	return record(db, set, org_id, hold, u, charge, request_id,
	    correlation_id, meanwhile, arg);
}

enum bw_err
block_release(struct db *db, struct block_set *set, const char *org_id,
    const struct budget_hold *hold, const char *request_id,
    const char *correlation_id)
{
	struct budget_usage u;

	memset(&u, 0, sizeof(u));
	return record(db, set, org_id, hold, &u, 0, request_id, correlation_id,
	    NULL, NULL);
}

int
block_return_idle(struct db *db, struct block_set *set, bool all)
{
	int64_t now = clock_mono_ms(), next = -1, due;
	int	i;

	if (set == NULL)
		return -1;
	if (set->nrec > 0 &&
	    (all || set->nrec >= set->cfg.rec_batch ||
		now - set->rec[0].ms >= set->cfg.rec_ms))
		write_kept(db, set);
	if (set->nrec > 0)
		next = set->rec[0].ms + set->cfg.rec_ms - now;
	if (next == 0)
		next = 1;
	for (i = set->n - 1; i >= 0; i--) {
		struct budget_block *b = &set->b[i];

		if (i >= set->n)
			continue; /* a failed write dropped blocks */
		due = b->last_use_ms + set->cfg.idle_ms - now;
		if (all || (b->inflight == 0 && due <= 0)) {
			return_one(db, set, b);
			continue;
		}
		if (due < 1)
			due = 1;
		if (next < 0 || due < next)
			next = due;
	}
	return next > INT32_MAX ? INT32_MAX : (int)next;
}

/*
 * Expiry: a held block past expires_at is charged whole: its reservation
 * (recorded charges not yet moved, and the rest, which may cover records
 * a crash lost) joins spent.
 */
/* clang-format off */
static const char sql_expire[] =
    "WITH e AS (UPDATE llm_budget_blocks b SET state = 'expired',"
    " charged_micros = b.moved_micros + b.granted_micros, ended_at = now()"
    " FROM (SELECT org_id, id FROM llm_budget_blocks"
    "  WHERE state = 'held' AND expires_at < now()"
    "  ORDER BY expires_at LIMIT $1::int FOR UPDATE SKIP LOCKED) x"
    " WHERE b.org_id = x.org_id AND b.id = x.id AND b.state = 'held'"
    " RETURNING b.org_id, b.day, b.granted_micros AS amt),"
    BUDGET_SQL_EXPIRED_TO_SPENT;
/* clang-format on */

enum bw_err
block_expire(struct db *db, int batch, int *n)
{
	return db_exec_batch(db, "block_expire", sql_expire, batch, n);
}
