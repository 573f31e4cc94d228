/* SPDX-License-Identifier: MIT */
/*
 * Daily LLM budgets (tables llm_prices, chat_org_settings,
 * org_budget_days, llm_holds): each org's chat settings, the price table,
 * holds placed before a provider call (the check and the hold are one
 * locked row: never read, then write) and settled exactly once after it,
 * and the expiry of holds whose request died. Money is int64 micros; the
 * day is the org's local day by the database clock.
 */
#ifndef BW_BUDGET_H
#define BW_BUDGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/db.h"
#include "core/err.h"

#define BUDGET_MODEL_MAX    200 /* a model id, bytes */
#define BUDGET_MSG_OVERHEAD 16	/* tokens added per message to the bound */

/* One org's chat settings, defaults filled in by budget_settings_get(). */
struct budget_settings {
	char	org_id[37];
	bool	has_budget; /* daily_micros is set */
	int64_t daily_micros;
	int	soft_pct;
	bool	hard_stop;
	bool	downgrade;
	char	primary[BUDGET_MODEL_MAX + 1];
	char	fallback[BUDGET_MODEL_MAX + 1];
	char	day[16];	/* local "YYYY-MM-DD" now */
	int64_t day_left_ms;	/* of that day, at the read */
	int	org_cap;	/* 0: the config default */
	char   *system_prompt;	/* owned, never NULL after get */
	char   *fallback_reply; /* owned, NULL: the config default */
	char   *line_token;	/* owned, NULL when none */
};

/* What one call asks for. */
struct budget_ask {
	int64_t	    input_bytes; /* every message's content */
	int	    nmessages;
	int	    max_tokens;	    /* wanted output */
	int	    min_tokens;	    /* below this a lowered call is refused */
	int	    ttl_s;	    /* the hold expires after */
	const char *request_id;	    /* may be NULL */
	const char *correlation_id; /* may be NULL */
};

enum budget_verdict {
	BV_OK,	     /* held: call with hold.model and hold.max_tokens */
	BV_EXCEEDED, /* hard stop: the budget cannot cover a useful call */
	BV_NOPRICE,  /* the chosen model has no price and the org a budget */
	BV__MAX
};

struct budget_hold {
	char	id[37];	      /* "" for a hold in a budget block */
	bool	block;	      /* placed in a block (lib/chat/block.h) */
	char	block_id[37]; /* that block */
	char	model[BUDGET_MODEL_MAX + 1];
	bool	downgraded;
	int	max_tokens;  /* possibly lowered */
	int64_t input_bound; /* tokens per attempt */
	int64_t held_micros; /* now: one attempt's bound + extensions */
	int	extensions;  /* budget_extend() calls that added room */
	int64_t in_price;    /* micros per million tokens */
	int64_t out_price;
};

/* What a call actually used, for budget_settle(). */
struct budget_usage {
	int64_t input_tokens; /* of the successful attempt */
	int64_t output_tokens;
	int	failed_attempts; /* charged input_bound each */
	int	attempts;
};

/*
 * ceil((in_tok * in_price + out_tok * out_price) / 1e6) micros, saturating
 * at INT64_MAX. Prices are micros per million tokens.
 */
int64_t budget_cost(int64_t in_tok, int64_t out_tok, int64_t in_price,
    int64_t out_price);
/*
 * The input-token upper bound of a prompt under its model's counting rule
 * (llm_prices.prompt_bytes_per_token, .prompt_tokens_per_message):
 * ceil(bytes / bytes_per_token) + tokens_per_message x nmessages,
 * saturating; bytes_per_token < 1 counts as 1. The hold statement computes
 * the same in SQL (sql_hold); docs/api/chat.md says why it is an upper
 * bound.
 */
int64_t budget_input_bound(int64_t bytes, int nmessages, int bytes_per_token,
    int tokens_per_message);
/*
 * The largest output allowance <= want such that the hold for in_bound
 * input tokens per attempt (attempts of them) fits in remaining; -1 when
 * not even the input fits. Pure; exposed for tests (the hold statement
 * computes the same for one attempt in closed form).
 */
int64_t budget_fit_tokens(int64_t remaining, int64_t in_bound, int attempts,
    int64_t in_price, int64_t out_price, int64_t want);

/*
 * What one more attempt adds to a hold before a retry: the input bound of
 * the attempt that failed, which settlement charges (the attempt that may
 * still answer is covered by the hold already). Saturating. A hold of
 * budget_cost(input_bound, max_tokens) plus this once per retry covers
 * budget_charge() of any usage within the bounds.
 */
int64_t budget_extend_micros(const struct budget_hold *);
/*
 * The charge of a call: its successful attempt's usage plus the input
 * bound of every failed attempt the provider saw. Saturating.
 */
int64_t budget_charge(const struct budget_hold *, const struct budget_usage *);

/*
 * Loads org_id's settings (defaults when it has no row; primary/fallback
 * from dflt_primary/dflt_fallback when unset) and the org's local day.
 * BW_ENOTFOUND for an unknown org. Clear with budget_settings_clear().
 */
enum bw_err
budget_settings_get(struct db *, const char *org_id, const char *dflt_primary,
    const char *dflt_fallback, struct budget_settings *out);
void budget_settings_clear(struct budget_settings *);
/*
 * The parameters a budget decision on s for a shares as text, in this
 * order: org, day, primary, fallback, daily budget (NULL: none), soft %,
 * downgrade, hard stop, input bytes, messages, max_tokens: p[0..10] of
 * the hold's statement and of a budget block's (lib/chat/block.c); the
 * numbers are written to buf.
 */
#define BUDGET_DECISION_PARAMS 11
struct budget_pbuf {
	char daily[24], soft[16], bytes[24], nmsg[16], max_tokens[16];
};
void budget_decision_params(const struct budget_settings *s,
    const struct budget_ask *a, struct budget_pbuf *buf, const char **p);
/* snprintf(dst, n, "%s", src), "" for NULL. */
void budget_copy(char *dst, size_t n, const char *src);

/*
 * Decides the model (fallback at or above the soft threshold of spent +
 * reserved, when downgrade is on) and places a hold for one attempt of the
 * call (its input bound under the model's counting rule plus max_tokens of
 * output) on the org's budget day row, locked for the decision; lowers
 * max_tokens to what the remaining budget covers. One statement (the price
 * and the rule looked up in it); a second only on the org's first call of
 * the day, to create the day row. *verdict says whether a hold was placed
 * (BV_OK, *hold filled); BV_EXCEEDED and BV_NOPRICE place nothing
 * (hold->model still names the model). A db error otherwise.
 */
enum bw_err budget_hold(struct db *, const struct budget_settings *,
    const struct budget_ask *, struct budget_hold *hold,
    enum budget_verdict *verdict);
/*
 * Settles hold_id exactly once: the hold leaves reserved and the charge
 * (the successful attempt's usage plus the input bound of every failed
 * attempt) joins spent. One statement. *settled = false when it was
 * settled or expired before (nothing changes); *charged and *spent (may be
 * NULL) get the charge and the day's spend after it.
 */
enum bw_err budget_settle(struct db *, const char *org_id, const char *hold_id,
    const struct budget_hold *, const struct budget_usage *, bool     *settled,
    int64_t *charged, int64_t *spent);
/*
 * As budget_settle(), with meanwhile(arg) run while PostgreSQL settles
 * (the statement is sent first, its answer read after; meanwhile runs
 * exactly once, also when the statement could not be sent). The charge is
 * budget_charge(), known before the answer.
 */
enum bw_err budget_settle_with(struct db *, const char *org_id,
    const char *hold_id, const struct budget_hold *,
    const struct budget_usage *, void (*meanwhile)(void *), void *arg,
    bool *settled, int64_t *charged, int64_t *spent);
/*
 * Before a retry: adds budget_extend_micros() to the hold and to the day's
 * reserved, in one statement that checks the room (spent + reserved +
 * the extension <= the daily budget, when s has a hard-stop budget).
 * *extended = false when there is no room or the hold is no longer held
 * (nothing changes: do not retry). On success hold->held_micros and
 * hold->extensions follow.
 */
enum bw_err budget_extend(struct db *, const struct budget_settings *,
    struct budget_hold *, bool *extended);
/* Releases a hold no provider call was made for (charge 0). */
enum bw_err budget_release(struct db *, const char *org_id, const char *hold_id,
    bool *settled);
/*
 * Settles up to batch expired holds at their held amount (the request
 * died), skipping rows another pass holds. *n gets how many.
 */
/*
 * The end of an expiry statement: a CTE e returning (org_id, day, amt) for
 * what expired; each amount moves from the day's reserved to its spent
 * (org_budget_days is this file's); the statement answers how many rows e
 * had. Used by budget_expire() and block_expire() (lib/chat/block.c).
 */
#define BUDGET_SQL_EXPIRED_TO_SPENT                                           \
	" s AS (SELECT org_id, day, sum(amt) AS amt, count(*) AS n"           \
	"  FROM e GROUP BY org_id, day),"                                     \
	" u AS (UPDATE org_budget_days d SET"                                 \
	"  reserved_micros = d.reserved_micros - s.amt,"                      \
	"  spent_micros = d.spent_micros + s.amt, updated_at = now()"         \
	"  FROM s WHERE d.org_id = s.org_id AND d.day = s.day RETURNING s.n)" \
	" SELECT COALESCE(sum(n), 0) FROM u"
/* Prepares the chat turn's statements on db (db_warm()): a chat child's
 * start. */
enum bw_err budget_warm(struct db *);
enum bw_err budget_expire(struct db *, int batch, int *n);
/* Counts the holds in flight (state held) into *held: the partial index
 * llm_holds_expiring, so a scrape reads what is in flight, never the
 * settled history (what became of holds is the per-host counter
 * bulwark_llm_holds_total{state}: placed, settled, released, refused). */
enum bw_err budget_holds_in_flight(struct db *, int64_t *held);

/* One org's chat usage on its local day (GET /api/v1/admin/overview). */
struct budget_today {
	char	day[16];    /* the org's local "YYYY-MM-DD" */
	bool	has_budget; /* daily_micros is set */
	int64_t daily_micros;
	int64_t spent_micros;
	int64_t reserved_micros; /* held now */
	int64_t calls;		 /* holds placed today: LLM calls asked for */
	int64_t settled;	 /* of them, settled */
	int64_t input_tokens;	 /* of the settled holds */
	int64_t output_tokens;
	int	org_cap; /* chat_org_settings.org_cap; 0: the config default */
};
/*
 * Fills *out for org_id's local day (the day budget_hold() uses): the day
 * row and the day's holds, one statement. BW_ENOTFOUND for an unknown org.
 */
enum bw_err
budget_today(struct db *, const char *org_id, struct budget_today *out);

/* bulwarkctl: settings and prices. NULL strings leave a value as it is. */
struct budget_config {
	int64_t	    daily_micros; /* < 0: no budget */
	int	    soft_pct;
	bool	    hard_stop;
	bool	    downgrade;
	const char *primary;
	const char *fallback;
	const char *timezone;
};
/* BW_ENOTFOUND unknown org; BW_EINVAL bad time zone or value. */
enum bw_err budget_config_set(struct db *, const char *org_id,
    const struct budget_config *);
enum bw_err budget_price_set(struct db *, const char *model,
    int64_t in_per_mtok, int64_t out_per_mtok);
/* Sets a priced model's prompt-counting rule; BW_ENOTFOUND unpriced. */
enum bw_err budget_prompt_rule_set(struct db *, const char *model,
    int bytes_per_token, int tokens_per_message);
/* 1 when model has a price, 0 when not. */
enum bw_err budget_price_known(struct db *, const char *model, int *known);
/* Sets the listed (non-NULL) texts; org_cap < 0 leaves it. */
enum bw_err
budget_texts_set(struct db *, const char *org_id, const char *system_prompt,
    const char *fallback_reply, const char *line_token, int org_cap);

#endif
