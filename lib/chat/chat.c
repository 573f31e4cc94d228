/* SPDX-License-Identifier: MIT */
/*
 * The chat path (see chat.h). Order and why: the conversation is read
 * first (the hold's input bound counts the history, and a Redis outage is
 * found before any money moves); the budget hold comes before the
 * semaphore so that a refused call never takes a slot; the lease covers
 * exactly the provider call and is renewed from the client's tick while
 * the call runs; settlement comes last and is idempotent, and a hold left
 * behind by a crash expires and is settled by bulwark-maint.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "chat/block.h"
#include "chat/breaker.h"
#include "chat/budget.h"
#include "chat/chat.h"
#include "chat/settings_cache.h"
#include "core/clock.h"
#include "chat/conv.h"
#include "core/log.h"
#include "core/metrics.h"
#include "chat/sem.h"

/* A field of CHAT_MAX_STATE_FIELD characters is stored whole, never cut. */
_Static_assert(CHAT_MAX_STATE_FIELD * 4 <= CONV_MAX_FIELD,
    "CONV_MAX_FIELD holds CHAT_MAX_STATE_FIELD UTF-8 characters");

#define CHAT_BREAKER_NAME  "llm"
#define CHAT_RETRY_AFTER_S 2 /* CAPACITY_EXHAUSTED, DEPENDENCY_... */

/* Metric ids (-1 until registered: updates are then no-ops). */
static int m_req[CO__MAX] = { -1, -1, -1, -1, -1, -1, -1, -1 };
enum att_class {
	AC_2XX,
	AC_408,
	AC_429,
	AC_4XX,
	AC_5XX,
	AC_TIMEOUT,
	AC_CONNECT,
	AC_MALFORMED,
	AC_ABORTED,
	AC__MAX
};
static int m_att[AC__MAX] = { -1, -1, -1, -1, -1, -1, -1, -1, -1 };
static int m_retries = -1, m_wait = -1, m_inuse = -1, m_reclaimed = -1;
static int m_overshoot = -1, m_circuit = -1, m_lost = -1;
static int m_downgraded = -1, m_breaker_fast = -1;
enum hold_metric {
	HM_PLACED,
	HM_SETTLED,
	HM_RELEASED,
	HM_REFUSED,
	HM__MAX
};
static int m_holds[HM__MAX] = { -1, -1, -1, -1 };
static int m_ext_ok = -1, m_ext_refused = -1;
/* The conversation's write: by compare-and-set, or the append script
 * after another turn wrote first. */
static int m_conv_write[2] = { -1, -1 };
#define CONV_WRITES "bulwark_chat_conversation_writes_total"

static const char *const outcome_names[CO__MAX] = { "ok", "budget_exceeded",
	"capacity_exhausted", "upstream_unavailable", "dependency_unavailable",
	"no_price", "not_found", "limiter" };
static const char *const att_names[AC__MAX] = { "2xx", "408", "429", "4xx",
	"5xx", "timeout", "connect", "malformed", "aborted" };
static const char *const hold_names[HM__MAX] = { "placed", "settled",
	"released", "refused" };

static const double wait_bounds[] = { 0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2,
	5, 10, 30 };

const char *
chat_outcome_name(enum chat_outcome o)
{
	return (unsigned)o < CO__MAX ? outcome_names[o] : "?";
}

int
chat_metrics_register(void)
{
	char l[96];
	int  i;

	if (block_metrics_register() != 0)
		return -1;
	for (i = 0; i < CO__MAX; i++) {
		snprintf(l, sizeof(l), "outcome=\"%s\"", outcome_names[i]);
		m_req[i] = metrics_counter("bulwark_chat_requests_total",
		    "Chat turns by outcome.", l);
		if (m_req[i] < 0)
			return -1;
	}
	for (i = 0; i < AC__MAX; i++) {
		snprintf(l, sizeof(l), "status=\"%s\"", att_names[i]);
		m_att[i] = metrics_counter("bulwark_llm_attempts_total",
		    "LLM provider attempts by status class.", l);
		if (m_att[i] < 0)
			return -1;
	}
	for (i = 0; i < HM__MAX; i++) {
		snprintf(l, sizeof(l), "state=\"%s\"", hold_names[i]);
		m_holds[i] = metrics_counter("bulwark_llm_holds_total",
		    "Budget holds by what happened to them in this host.", l);
		if (m_holds[i] < 0)
			return -1;
	}
	for (i = 0; i < 2; i++) {
		m_conv_write[i] = metrics_counter(CONV_WRITES,
		    "Conversation writes of answered turns: by compare-and-set "
		    "on the document the turn read, or by the append script "
		    "after another turn of the user wrote first.",
		    i == 0 ? "path=\"cas\"" : "path=\"script\"");
		if (m_conv_write[i] < 0)
			return -1;
	}
	m_retries = metrics_counter("bulwark_llm_retries_total",
	    "LLM provider retries.", NULL);
	m_ext_ok = metrics_counter("bulwark_llm_hold_extensions_total",
	    "Budget hold extensions before a retry, by result.",
	    "result=\"extended\"");
	m_ext_refused = metrics_counter("bulwark_llm_hold_extensions_total",
	    "Budget hold extensions before a retry, by result.",
	    "result=\"refused\"");
	m_wait = metrics_histogram("bulwark_llm_queue_wait_seconds",
	    "Time chat turns waited for an LLM slot.", NULL, wait_bounds,
	    (int)(sizeof(wait_bounds) / sizeof(wait_bounds[0])));
	m_inuse = metrics_gauge("bulwark_llm_leases_in_use",
	    "LLM semaphore leases held by this host now.", NULL);
	m_reclaimed = metrics_counter("bulwark_llm_leases_reclaimed_total",
	    "Expired LLM leases reclaimed by this host's acquires.", NULL);
	m_lost = metrics_counter("bulwark_llm_leases_lost_total",
	    "Calls stopped because their lease expired under them.", NULL);
	m_overshoot = metrics_counter("bulwark_llm_budget_overshoot_total",
	    "Settlements that left a hard-stop budget overspent (must stay "
	    "0).",
	    NULL);
	m_circuit = metrics_gauge("bulwark_llm_circuit_state",
	    "Provider circuit breaker as last seen: 0 closed, 1 open, 2 "
	    "half-open.",
	    NULL);
	m_downgraded = metrics_counter("bulwark_chat_downgraded_total",
	    "Chat turns that used the org's fallback model.", NULL);
	m_breaker_fast = metrics_counter("bulwark_llm_breaker_rejects_total",
	    "Chat turns failed fast by the open circuit breaker.", NULL);
	if (m_retries < 0 || m_ext_ok < 0 || m_ext_refused < 0 || m_wait < 0 ||
	    m_inuse < 0 || m_reclaimed < 0 || m_lost < 0 || m_overshoot < 0 ||
	    m_circuit < 0 || m_downgraded < 0 || m_breaker_fast < 0)
		return -1;
	return 0;
}

void
chat_out_clear(struct chat_out *o)
{
	if (o == NULL)
		return;
	free(o->reply);
	memset(o, 0, sizeof(*o));
}

/* The state of one turn, for logs and the llm callbacks. */
struct turn {
	struct chat_ctx	      *c;
	const struct chat_in  *in;
	struct budget_settings s;
	struct budget_hold     hold;
	int		       held; /* a hold awaits settlement */
	struct sem_lease       lease;
	int		       leased;
	int		       lost; /* renewal found it gone */
	int64_t		       next_renew;
	int		       attempt;
	char		       brk_key[BRK_MAX_KEY];
	int		       record_ok; /* release records a success */
	int64_t		       llm_ms;	  /* the answered attempt's */
};

/* One log line with the turn's ids; extra key/value pairs, NULL-ended. */
static void tlog(struct turn *t, enum log_level lvl, const char *msg, ...)
    __attribute__((sentinel));

static void
tlog(struct turn *t, enum log_level lvl, const char *msg, ...)
{
	struct json_object *f;
	const char	   *k, *v;
	va_list		    ap;

	f = json_object_new_object();
	if (f == NULL)
		return;
	json_object_object_add(f, "hold_id",
	    json_object_new_string(
		t->held || t->hold.id[0] != '\0' ? t->hold.id : ""));
	if (t->hold.block)
		json_object_object_add(f, "block_id",
		    json_object_new_string(t->hold.block_id));
	json_object_object_add(f, "lease_id",
	    json_object_new_string(t->leased ? t->lease.id : ""));
	json_object_object_add(f, "attempt", json_object_new_int(t->attempt));
	json_object_object_add(f, "model",
	    json_object_new_string(t->hold.model));
	json_object_object_add(f, "channel",
	    json_object_new_string(t->in->channel));
	va_start(ap, msg);
	while ((k = va_arg(ap, const char *)) != NULL) {
		v = va_arg(ap, const char *);
		json_object_object_add(f, k,
		    v != NULL ? json_object_new_string(v) : NULL);
	}
	va_end(ap);
	log_json(lvl, msg, f);
}

/*
 * Renews the lease when due; nonzero stops the provider call: the lease is
 * gone, or it could not be renewed and may expire before the next tick
 * (Redis unreachable, e.g. in a failover: a new master does not know it,
 * and grants its slot once a lease lifetime has passed, lib/chat/sem.c).
 */
static int
tick(void *arg)
{
	struct turn *t = arg;
	enum bw_err  er;
	int64_t	     now = clock_mono_ms(), margin;

	if (!t->leased)
		return 0;
	if (now >= t->next_renew) {
		er = sem_renew(t->c->rds, &t->lease);
		if (er == BW_ENOTFOUND) {
			t->lost = 1;
			metrics_inc(m_lost);
			tlog(t, LL_WARN, "llm lease lost during the call",
			    NULL);
			return 1;
		}
		/* A Redis blip: try again soon; the lease still has time. */
		t->next_renew =
		    now + (er == BW_OK ? t->lease.lease_ms / 3 : 500);
	}
	/* The next tick comes within LLM_TICK_MS. */
	margin = LLM_TICK_MS + 250;
	if (margin > t->lease.lease_ms / 4)
		margin = t->lease.lease_ms / 4;
	if (now + margin >= t->lease.valid_mono_ms) {
		t->lost = 1;
		metrics_inc(m_lost);
		tlog(t, LL_WARN, "llm lease not renewed in time: call stopped",
		    NULL);
		return 1;
	}
	return 0;
}

static enum att_class
att_class(int status, enum llm_fail why)
{
	switch (why) {
	case LF_TIMEOUT:
		return AC_TIMEOUT;
	case LF_CONNECT:
		return AC_CONNECT;
	case LF_MALFORMED:
		return AC_MALFORMED;
	case LF_ABORTED:
		return AC_ABORTED;
	default:
		break;
	}
	if (status >= 200 && status < 300)
		return AC_2XX;
	if (status == 408)
		return AC_408;
	if (status == 429)
		return AC_429;
	if (status >= 500)
		return AC_5XX;
	return AC_4XX;
}

static void
on_attempt(void *arg, int attempt, int status, enum llm_fail why, int64_t ms)
{
	struct turn *t = arg;
	char	     st[16], d[24];

	t->attempt = attempt;
	metrics_inc(m_att[att_class(status, why)]);
	if (why == LF_NONE) {
		/* Answered: its figures go on the turn's one line. */
		t->llm_ms = ms;
		return;
	}
	snprintf(st, sizeof(st), "%d", status);
	snprintf(d, sizeof(d), "%" PRId64, ms);
	tlog(t, LL_WARN, "llm attempt", "status", st, "fail",
	    llm_fail_name(why), "ms", d, NULL);
}

/*
 * Before a retry: the hold grows by one attempt's input bound, or there is
 * no retry (no room in the budget, or the database did not say yes).
 */
static int
on_retry(void *arg, int attempt, int64_t wait_ms)
{
	struct turn *t = arg;
	bool	     extended = false;
	enum bw_err  er;
	char	     w[24], h[24];

	(void)attempt;
	er = t->hold.block
	    ? block_extend(t->c->db, t->c->blocks, &t->s, &t->hold, &extended)
	    : budget_extend(t->c->db, &t->s, &t->hold, &extended);
	snprintf(h, sizeof(h), "%" PRId64, t->hold.held_micros);
	if (er != BW_OK || !extended) {
		metrics_inc(m_ext_refused);
		tlog(t, LL_WARN, "llm retry refused: no budget room for it",
		    "error", er != BW_OK ? bw_strerror(er) : NULL,
		    "held_micros", h, NULL);
		return 1;
	}
	metrics_inc(m_ext_ok);
	metrics_inc(m_retries);
	snprintf(w, sizeof(w), "%" PRId64, wait_ms);
	tlog(t, LL_INFO, "llm retry after backoff", "wait_ms", w, "held_micros",
	    h, NULL);
	return 0;
}

static void lease_released(struct turn *t, enum bw_err er);

/*
 * Releases the lease if held (every way out passes here), recording a
 * provider success on the breaker in the same script when one is pending.
 */
static void
drop_lease(struct turn *t)
{
	enum bw_err er;

	if (!t->leased)
		return;
	er = sem_release_brk(t->c->rds, &t->lease,
	    t->brk_key[0] != '\0' ? t->brk_key : NULL, t->record_ok);
	lease_released(t, er);
}

/* After a release (alone or pipelined): logs, counts, forgets the lease. */
static void
lease_released(struct turn *t, enum bw_err er)
{
	if (t->record_ok && (er == BW_OK || er == BW_ENOTFOUND))
		metrics_gauge_set(m_circuit, BRK_CLOSED);
	t->record_ok = 0;
	if (er == BW_EREDIS)
		tlog(t, LL_WARN, "llm lease release failed; it expires", NULL);
	else if (er == BW_ENOTFOUND)
		tlog(t, LL_WARN, "llm lease had expired before release", NULL);
	metrics_gauge_add(m_inuse, -1);
	t->leased = 0;
}

/* Releases an unsettled hold without charge (no call was made). */
static void
drop_hold(struct turn *t)
{
	bool settled = false;

	if (!t->held)
		return;
	if (t->hold.block) {
		if (block_release(t->c->db, t->c->blocks, t->in->org_id,
			&t->hold, t->in->request_id,
			t->in->correlation_id) != BW_OK)
			tlog(t, LL_WARN, "block call record failed", NULL);
		else
			metrics_inc(m_holds[HM_RELEASED]);
		t->held = 0;
		return;
	}
	if (budget_release(t->c->db, t->in->org_id, t->hold.id, &settled) !=
	    BW_OK)
		tlog(t, LL_WARN, "hold release failed; it expires", NULL);
	else
		metrics_inc(m_holds[HM_RELEASED]);
	t->held = 0;
}

/*
 * Settles the hold with what the call used; logs and counts. meanwhile
 * (may be NULL) runs while PostgreSQL settles.
 */
static void
settle_hold(struct turn *t, const struct llm_result *lr, int ok,
    struct chat_out *out, void (*meanwhile)(void *), void *arg)
{
	struct budget_usage u;
	bool		    settled = false;
	int64_t		    charged = 0, spent = 0;
	char		    a[24], b[24];

	if (!t->held)
		return;
	memset(&u, 0, sizeof(u));
	u.attempts = lr->attempts;
	u.failed_attempts = lr->failed_sent;
	if (ok) {
		u.input_tokens = lr->input_tokens;
		u.output_tokens = lr->output_tokens;
	}
	if (t->hold.block) {
		/* A call in a budget block: its record, no overshoot to
		 * check (the block was reserved inside the budget). */
		t->held = 0;
		if (block_settle(t->c->db, t->c->blocks, t->in->org_id,
			&t->hold, &u, t->in->request_id, t->in->correlation_id,
			meanwhile, arg, &charged) != BW_OK) {
			tlog(t, LL_WARN,
			    "block call record failed; the block "
			    "expires",
			    NULL);
			return;
		}
		metrics_inc(m_holds[HM_SETTLED]);
		out->cost_micros = charged;
		out->held_micros = t->hold.held_micros;
		/* Only a provider counting past its bound charges more than
		 * the hold; the block's other room absorbs it, the day may
		 * not. */
		if (charged > t->hold.held_micros && t->s.has_budget &&
		    t->s.hard_stop) {
			snprintf(a, sizeof(a), "%" PRId64, charged);
			snprintf(b, sizeof(b), "%" PRId64, t->hold.held_micros);
			metrics_inc(m_overshoot);
			tlog(t, LL_ERROR,
			    "budget overshoot: a call charged "
			    "above its hold",
			    "charged_micros", a, "held_micros", b, NULL);
		}
		return;
	}
	if (budget_settle_with(t->c->db, t->in->org_id, t->hold.id, &t->hold,
		&u, meanwhile, arg, &settled, &charged, &spent) != BW_OK) {
		tlog(t, LL_WARN, "hold settlement failed; it expires", NULL);
		t->held = 0;
		return;
	}
	t->held = 0;
	if (!settled) {
		tlog(t, LL_WARN, "hold was already settled or expired", NULL);
		return;
	}
	metrics_inc(m_holds[HM_SETTLED]);
	out->cost_micros = charged;
	out->held_micros = t->hold.held_micros;
	snprintf(a, sizeof(a), "%" PRId64, charged);
	snprintf(b, sizeof(b), "%" PRId64, t->hold.held_micros);
	if (t->s.has_budget && t->s.hard_stop && spent > t->s.daily_micros) {
		metrics_inc(m_overshoot);
		tlog(t, LL_ERROR, "budget overshoot after settlement",
		    "charged_micros", a, "held_micros", b, NULL);
	}
	/* A plain settlement's figures go on the turn's one line. */
}

/* The conversation append of an answered turn, run during settlement. */
struct append {
	struct turn		*t;
	const struct llm_result *lr;
	struct chat_out		*out;
	struct json_object	*state; /* as read in this turn (NULL: none) */
	const char		*raw;	/* its bytes (NULL: none stored) */
	size_t			 rawlen;
	struct conv_usage	 cu;
	int64_t			 turns;
	enum bw_err		 er;
	int			 done;
};

/*
 * The end of an answered turn, run while PostgreSQL settles: the lease
 * release (with the breaker's success) and the conversation write go to
 * Redis in one round trip (two keys' slots: two calls, one pipeline). The
 * conversation's next document is built here from the one this turn read
 * and written by compare-and-set (conv_put_prep()); when another turn of
 * the user wrote in between, the append script lands it in a round trip
 * of its own.
 */
static void
append_turn(void *arg)
{
	struct append	       *a = arg;
	struct turn	       *t = a->t;
	const struct chat_in   *in = t->in;
	struct budget_usage	u;
	struct sem_release_call rc;
	struct conv_put_call	pc;
	struct rds_call		calls[2];
	size_t			n = 0, ai;
	enum bw_err		er;

	/* The charge settlement makes: known before its answer. */
	memset(&u, 0, sizeof(u));
	u.input_tokens = a->lr->input_tokens;
	u.output_tokens = a->lr->output_tokens;
	u.failed_attempts = a->lr->failed_sent;
	a->cu.cost_micros = t->held || t->hold.id[0] != '\0' || t->hold.block
	    ? budget_charge(&t->hold, &u)
	    : 0;
	a->done = 1;
	if (t->leased &&
	    sem_release_prep(&rc, &t->lease,
		t->brk_key[0] != '\0' ? t->brk_key : NULL, t->record_ok,
		&calls[n]) == BW_OK)
		n++;
	ai = n;
	a->er = conv_put_prep(&pc, in->org_id, in->channel, in->user_id, a->raw,
	    a->rawlen, a->state, in->message, a->lr->reply, &a->cu, &in->fields,
	    &calls[n]);
	if (a->er == BW_OK)
		n++;
	if (n == 0) {
		conv_put_clear(&pc);
		drop_lease(t);
		return;
	}
	(void)rds_pipeline(t->c->rds, calls, n);
	if (ai == 1) {
		er = sem_release_done(&calls[0]);
		lease_released(t, er);
	} else
		drop_lease(t);
	if (a->er == BW_OK)
		a->er =
		    conv_put_done(&pc, &calls[ai], &a->turns, &a->out->state);
	while (n > 0)
		if (calls[--n].reply != NULL)
			freeReplyObject(calls[n].reply);
	conv_put_clear(&pc);
	if (a->er == BW_OK)
		metrics_inc(m_conv_write[0]);
	if (a->er != BW_ERETRY)
		return;
	a->er = conv_append_turn(t->c->rds, in->org_id, in->channel,
	    in->user_id, in->message, a->lr->reply, &a->cu, &in->fields,
	    &a->turns, &a->out->state);
	if (a->er == BW_OK)
		metrics_inc(m_conv_write[1]);
}

/*
 * The note on the pipeline fields known for this turn: CHAT_KNOWN_PREFIX
 * then "name=value" of each set field in conv_field_names order, joined by
 * "; " ("Known so far: service=haircut; area=Shibuya"); "" when none is
 * set. Values have no control characters (the route schema).
 */
static void
known_line(const struct conv_state *st, char *out, size_t len)
{
	size_t n = 0;
	int    i, w;

	out[0] = '\0';
	for (i = 0; i < CONV_NFIELDS && n < len; i++) {
		if (!st->set[i])
			continue;
		w = snprintf(out + n, len - n, "%s%s=%s",
		    n == 0 ? CHAT_KNOWN_PREFIX : "; ", conv_field_names[i],
		    st->val[i]);
		if (w < 0)
			break;
		n += (size_t)w;
	}
}

/*
 * Builds the messages: system prompt, the known-fields note (known, ""
 * for none) as a second system message, the recent turns of state (may
 * be NULL), the new message. *msgs is malloc'd (strings borrowed from s,
 * known, state and in); *bytes gets the content bytes.
 */
static enum bw_err
build_messages(const struct budget_settings *s, const char *known,
    struct json_object *state, const char *message, struct llm_msg **msgs,
    size_t *n, int64_t *bytes)
{
	struct json_object *turns = NULL, *tu, *v;
	struct llm_msg	   *m;
	size_t		    nt = 0, i, k = 0;
	int64_t		    b = 0;

	if (state != NULL &&
	    json_object_object_get_ex(state, "turns", &turns) &&
	    json_object_is_type(turns, json_type_array))
		nt = json_object_array_length(turns);
	m = calloc(2 * nt + 3, sizeof(*m));
	if (m == NULL)
		return BW_ENOMEM;
	if (s->system_prompt[0] != '\0') {
		m[k].role = "system";
		m[k++].content = s->system_prompt;
	}
	if (known[0] != '\0') {
		m[k].role = "system";
		m[k++].content = known;
	}
	for (i = 0; i < nt; i++) {
		tu = json_object_array_get_idx(turns, i);
		if (json_object_object_get_ex(tu, "user", &v) &&
		    json_object_is_type(v, json_type_string)) {
			m[k].role = "user";
			m[k++].content = json_object_get_string(v);
		}
		if (json_object_object_get_ex(tu, "assistant", &v) &&
		    json_object_is_type(v, json_type_string)) {
			m[k].role = "assistant";
			m[k++].content = json_object_get_string(v);
		}
	}
	m[k].role = "user";
	m[k++].content = message;
	for (i = 0; i < k; i++)
		b += (int64_t)strlen(m[i].content);
	*msgs = m;
	*n = k;
	*bytes = b;
	return BW_OK;
}

static enum bw_err
set_reply(struct chat_out *out, const char *s)
{
	free(out->reply);
	out->reply = strdup(s != NULL ? s : "");
	return out->reply == NULL ? BW_ENOMEM : BW_OK;
}

/*
 * No answer from the provider (er from llm_chat(), or BW_EUPSTREAM from an
 * open breaker): logged, the hold settled for what was sent, the outcome.
 * Returns chat_run()'s return.
 */
static enum bw_err
call_failed(struct turn *t, const struct llm_result *lr, enum bw_err er,
    struct chat_out *out)
{
	if (lr->why == LF_BREAKER) {
		metrics_inc(m_breaker_fast);
		metrics_gauge_set(m_circuit, (int64_t)lr->brk);
	}
	tlog(t, LL_WARN, "llm call failed", "fail", llm_fail_name(lr->why),
	    NULL);
	settle_hold(t, lr, 0, out, NULL, NULL);
	out->outcome = er == BW_ENOMEM ? CO_DEPENDENCY : CO_UPSTREAM;
	return er == BW_ENOMEM ? er : BW_OK;
}

/* The one line of an answered turn, for callers without an access line. */
static void
chat_log_turn(struct turn *t, const struct chat_out *out)
{
	struct json_object *f = json_object_new_object();

	if (f == NULL)
		return;
	chat_out_log_fields(out, f);
	json_object_object_add(f, "channel",
	    json_object_new_string(t->in->channel));
	log_json(LL_INFO, "chat turn", f);
}

void
chat_out_log_fields(const struct chat_out *o, struct json_object *f)
{
	json_object_object_add(f, "model", json_object_new_string(o->model));
	json_object_object_add(f, "attempts", json_object_new_int(o->attempts));
	json_object_object_add(f, "llm_ms", json_object_new_int64(o->llm_ms));
	json_object_object_add(f, "queue_ms",
	    json_object_new_int64(o->queue_ms));
	json_object_object_add(f, "charged_micros",
	    json_object_new_int64(o->cost_micros));
	json_object_object_add(f, "held_micros",
	    json_object_new_int64(o->held_micros));
}

/*
 * Orgs whose turn the budget refused in this child in the last
 * CHAT_REFUSED_MS: their next turns ask for a slot only after the hold
 * (no slot taken and given back per refused turn, whatever its rate).
 */
#define CHAT_REFUSED_N	16
#define CHAT_REFUSED_MS 1000
static struct {
	char	org[SEM_MAX_ORG + 1];
	int64_t until_ms;
} chat_refused[CHAT_REFUSED_N];

static int
refused_recently(const char *org)
{
	int64_t now = clock_mono_ms();
	int	i;

	for (i = 0; i < CHAT_REFUSED_N; i++)
		if (chat_refused[i].until_ms > now &&
		    strcmp(chat_refused[i].org, org) == 0)
			return 1;
	return 0;
}

static void
refused_note(const char *org)
{
	int64_t now = clock_mono_ms();
	int	i, slot = 0;

	for (i = 0; i < CHAT_REFUSED_N; i++) {
		if (strcmp(chat_refused[i].org, org) == 0) {
			slot = i;
			break;
		}
		if (chat_refused[i].until_ms < chat_refused[slot].until_ms)
			slot = i; /* the oldest, or a free one */
	}
	snprintf(chat_refused[slot].org, sizeof(chat_refused[slot].org), "%s",
	    org);
	chat_refused[slot].until_ms = now + CHAT_REFUSED_MS;
}

/*
 * The org's chat settings into t->s (through the per-child cache), their
 * fallback reply into out and the org's slot cap into *org_cap. BW_OK;
 * BW_ENOTFOUND (no such org: out->outcome CO_NOTFOUND); BW_ENOMEM; BW_EDB
 * (logged) when they cannot be read.
 */
static enum bw_err
turn_settings(struct turn *t, struct chat_out *out, int *org_cap)
{
	const struct config *cfg = t->c->cfg;
	enum bw_err	     er;

	budget_settings_clear(&t->s);
	er = budget_settings_get_cached(t->c->db, t->in->org_id,
	    cfg->llm_primary_model, cfg->llm_fallback_model, &t->s);
	if (er == BW_ENOTFOUND) {
		out->outcome = CO_NOTFOUND;
		return er;
	}
	if (er != BW_OK) {
		tlog(t, LL_WARN, "chat settings unavailable", "error",
		    bw_strerror(er), NULL);
		return BW_EDB;
	}
	if (set_reply(out,
		t->s.fallback_reply != NULL
		    ? t->s.fallback_reply
		    : cfg->chat_fallback_reply) != BW_OK)
		return BW_ENOMEM;
	*org_cap = t->s.org_cap > 0 ? t->s.org_cap : cfg->llm_org_cap;
	return BW_OK;
}

enum bw_err
chat_run(struct chat_ctx *c, const struct chat_in *in, struct chat_out *out)
{
	const struct config    *cfg = c->cfg;
	struct turn		t;
	struct json_object     *state = NULL;
	char		       *raw = NULL; /* the conversation as read */
	size_t			rawlen = 0;
	struct llm_msg	       *msgs = NULL;
	struct llm_result	lr;
	struct llm_opts		o;
	struct budget_ask	ask;
	struct sem_stats	ss;
	struct sem_brk		sb;
	struct append		ap;
	struct conv_get_call	gc;
	struct sem_acquire_call ac;
	struct rds_call		calls[3]; /* read, limiter, slot */
	enum budget_verdict	v;
	bool			inblock = false;
	enum bw_err		er, ret = BW_OK;
	size_t			nmsgs = 0, ncalls;
	int			acq = 0, isem = -1, iride = -1, rk = 1;
	int64_t			deadline, bytes = 0, wait;
	int			org_cap;
	char			known[sizeof(CHAT_KNOWN_PREFIX) +
	       CONV_NFIELDS * (CONV_MAX_FIELD + 16)];

	memset(out, 0, sizeof(*out));
	memset(&t, 0, sizeof(t));
	memset(&lr, 0, sizeof(lr));
	t.c = c;
	t.in = in;
	deadline =
	    in->start_ms + cfg->chat_deadline_ms - CHAT_DEADLINE_MARGIN_MS;
	out->outcome = CO_DEPENDENCY;
	out->retry_after_s = CHAT_RETRY_AFTER_S;

	er = turn_settings(&t, out, &org_cap);
	if (er != BW_OK) {
		if (er == BW_ENOMEM)
			ret = er;
		goto out;
	}

	/* A slot, queued fairly with a deadline inside the request's. */
	wait = deadline - clock_mono_ms() - LLM_MIN_ATTEMPT_MS;
	if (wait > in->start_ms + cfg->chat_queue_deadline_ms - clock_mono_ms())
		wait = in->start_ms + cfg->chat_queue_deadline_ms -
		    clock_mono_ms();
	if (wait < 0)
		wait = 0;
	memset(&ss, 0, sizeof(ss));
	memset(&sb, 0, sizeof(sb));
	/* The breaker is asked in the acquire's script. */
	if (breaker_key(t.brk_key, sizeof(t.brk_key), CHAT_BREAKER_NAME) !=
	    BW_OK)
		t.brk_key[0] = '\0';
	sb.key = t.brk_key;
	sb.open_ms = cfg->llm_breaker_open_ms;
	sb.probe_ms = cfg->llm_retry_timeout_ms + 1000;

	/*
	 * Conversation first: Redis trouble is found before money moves. Its
	 * read, the caller's rate limiter (in->rider) and the first try for
	 * the slot are one round trip; the slot is only kept once the limiter
	 * admitted the turn and the budget holds (sem_acquire_abandon()).
	 */
	er =
	    conv_get_prep(&gc, in->org_id, in->channel, in->user_id, &calls[0]);
	if (er != BW_OK) {
		tlog(&t, LL_WARN, "conversation state unavailable", "error",
		    bw_strerror(er), NULL);
		goto out;
	}
	ncalls = 1;
	/* The caller's rate limiter, before anything is kept. */
	if (in->rider != NULL) {
		rk = in->rider->prep(in->rider->arg, &calls[ncalls]);
		if (rk < 0) {
			out->outcome = CO_ANSWERED;
			goto out;
		}
		if (rk == 1)
			iride = (int)ncalls++;
	}
	if (!refused_recently(in->org_id)) {
		if (sem_acquire_prep(&ac, in->org_id, cfg->llm_global_cap,
			org_cap, cfg->chat_lease_ttl_ms, (int)wait,
			t.brk_key[0] != '\0' ? &sb : NULL,
			&calls[ncalls]) == BW_OK)
			isem = (int)ncalls++;
		acq = 1; /* a failed prep answers from sem_acquire_wait() */
	}
	(void)rds_pipeline(c->rds, calls, ncalls);
	er = conv_get_done_raw(&calls[0], &state, &raw, &rawlen);
	if (isem >= 0)
		sem_acquire_first(&ac, &calls[isem]);
	rk = 1;
	if (iride >= 0)
		rk = in->rider->done(in->rider->arg, &calls[iride]);
	while (ncalls > 0)
		if (calls[--ncalls].reply != NULL)
			freeReplyObject(calls[ncalls].reply);
	if (rk == 0) {
		out->outcome = CO_ANSWERED; /* the first try is given back */
		goto out;
	}
	if (rk == 2) {
		/* The caches were flushed: the settings again, and the slot
		 * asked with what they say now. */
		if (acq)
			sem_acquire_abandon(c->rds, &ac);
		acq = 0;
		er = turn_settings(&t, out, &org_cap);
		if (er != BW_OK) {
			if (er == BW_ENOMEM)
				ret = er;
			goto out;
		}
	}
	if (er != BW_OK && er != BW_ENOTFOUND) {
		tlog(&t, LL_WARN, "conversation state unavailable", "error",
		    bw_strerror(er), NULL);
		goto out;
	}
	/* What is known: the stored fields, then the caller's on top. */
	conv_state_from_doc(state, &out->state);
	conv_state_merge(&out->state, &in->fields);
	known_line(&out->state, known, sizeof(known));
	er = build_messages(&t.s, known, state, in->message, &msgs, &nmsgs,
	    &bytes);
	if (er != BW_OK) {
		ret = er;
		goto out;
	}

	memset(&ask, 0, sizeof(ask));
	ask.input_bytes = bytes;
	ask.nmessages = (int)nmsgs;
	ask.max_tokens = cfg->chat_max_tokens;
	ask.min_tokens = cfg->chat_min_tokens;
	ask.ttl_s = cfg->chat_hold_ttl_s;
	ask.request_id = in->request_id;
	ask.correlation_id = in->correlation_id;
	/* In the child's budget block when one covers it (no statement),
	 * else a hold of its own. */
	v = BV_OK;
	er = block_hold(c->db, c->blocks, &t.s, &ask, &t.hold, &inblock);
	if (er != BW_OK)
		tlog(&t, LL_WARN, "budget block unavailable: a hold of its own",
		    "error", bw_strerror(er), NULL);
	if (!inblock)
		er = budget_hold(c->db, &t.s, &ask, &t.hold, &v);
	if (er != BW_OK) {
		tlog(&t, LL_WARN, "budget hold failed", "error",
		    bw_strerror(er), NULL);
		goto out;
	}
	snprintf(out->model, sizeof(out->model), "%s", t.hold.model);
	out->downgraded = t.hold.downgraded;
	if (v == BV_EXCEEDED || v == BV_NOPRICE)
		refused_note(in->org_id);
	if (v == BV_EXCEEDED) {
		metrics_inc(m_holds[HM_REFUSED]);
		tlog(&t, LL_INFO, "budget exceeded: no provider call", NULL);
		out->outcome = CO_BUDGET;
		goto out;
	}
	if (v == BV_NOPRICE) {
		tlog(&t, LL_WARN, "model has no price: no provider call", NULL);
		out->outcome = CO_NOPRICE;
		goto out;
	}
	t.held = 1;
	metrics_inc(m_holds[HM_PLACED]);
	if (t.hold.downgraded)
		metrics_inc(m_downgraded);

	/* The slot: granted by the first try, or queued from it; asked now
	 * when the org's turns were refused a moment ago. */
	if (acq) {
		acq = 0;
		er = sem_acquire_wait(c->rds, &ac, &t.lease, &ss);
	} else
		er = sem_acquire_brk(c->rds, in->org_id, cfg->llm_global_cap,
		    org_cap, cfg->chat_lease_ttl_ms, (int)wait,
		    t.brk_key[0] != '\0' ? &sb : NULL, &t.lease, &ss);
	metrics_observe(m_wait, (double)ss.wait_us / 1e6);
	if (ss.reclaimed > 0)
		metrics_add(m_reclaimed, (uint64_t)ss.reclaimed);
	if (er == BW_ETIMEOUT) {
		tlog(&t, LL_WARN, "no llm slot before the queue deadline",
		    NULL);
		out->outcome = CO_CAPACITY;
		goto out;
	}
	if (er == BW_EUPSTREAM) {
		/* The breaker is open: no slot was taken, no call made. */
		lr.why = LF_BREAKER;
		lr.brk = (enum brk_state)sb.state;
		ret = call_failed(&t, &lr, er, out);
		goto out;
	}
	if (er != BW_OK) {
		tlog(&t, LL_WARN, "llm semaphore unavailable", "error",
		    bw_strerror(er), NULL);
		goto out;
	}
	t.leased = 1;
	metrics_gauge_add(m_inuse, 1);
	t.next_renew = clock_mono_ms() + t.lease.lease_ms / 3;
	out->queue_ms = ss.wait_us / 1000;
	if (sb.state == BRK_HALF_OPEN)
		/* This grant took the breaker's probe (breaker_allow()'s). */
		tlog(&t, LL_INFO, "breaker: half-open probe", "breaker",
		    CHAT_BREAKER_NAME, NULL);

	memset(&o, 0, sizeof(o));
	o.base_url = cfg->llm_base_url;
	o.api_key = cfg->llm_api_key;
	o.org_id = in->org_id;
	o.request_id = in->request_id;
	o.model = t.hold.model;
	o.max_tokens = t.hold.max_tokens;
	o.attempt_timeout_ms = cfg->llm_attempt_timeout_ms;
	o.retry_timeout_ms = cfg->llm_retry_timeout_ms;
	o.max_retries = cfg->llm_max_retries;
	o.deadline_ms = deadline;
	o.rds = c->rds;
	o.breaker_name = CHAT_BREAKER_NAME;
	o.breaker.fail_threshold = cfg->llm_breaker_failures;
	o.breaker.open_ms = cfg->llm_breaker_open_ms;
	o.breaker.probe_ms = sb.probe_ms;
	o.breaker_checked = t.brk_key[0] != '\0';
	o.breaker_seen = (enum brk_state)sb.state;
	o.breaker_defer_ok = t.brk_key[0] != '\0';
	o.tick = tick;
	o.on_attempt = on_attempt;
	o.on_retry = on_retry;
	o.arg = &t;
	er = llm_chat(c->llm, &o, msgs, nmsgs, &lr);
	t.record_ok = lr.brk_ok_pending;
	metrics_gauge_set(m_circuit, (int64_t)lr.brk);
	out->attempts = lr.attempts;
	if (er != BW_OK) {
		drop_lease(&t);
		ret = call_failed(&t, &lr, er, out);
		goto out;
	}
	out->llm_ms = t.llm_ms;
	out->input_tokens = lr.input_tokens;
	out->output_tokens = lr.output_tokens;
	if (set_reply(out, lr.reply) != BW_OK) {
		ret = BW_ENOMEM;
		goto out;
	}
	/* The lease release and the append (Redis, one round trip) run
	 * while PostgreSQL settles: independent. */
	memset(&ap, 0, sizeof(ap));
	ap.t = &t;
	ap.lr = &lr;
	ap.out = out;
	ap.cu.input_tokens = lr.input_tokens;
	ap.cu.output_tokens = lr.output_tokens;
	ap.state = state;
	ap.raw = raw;
	ap.rawlen = rawlen;
	settle_hold(&t, &lr, 1, out, append_turn, &ap);
	if (!ap.done)
		append_turn(&ap);
	if (ap.er != BW_OK) {
		tlog(&t, LL_WARN, "conversation append failed", "error",
		    bw_strerror(ap.er), NULL);
		conv_state_from_doc(state, &out->state); /* as stored */
	}
	out->turns = ap.turns;
	out->outcome = CO_OK;
out:
	/* Every way out: no lease kept, no hold left unsettled. */
	if (acq)
		sem_acquire_abandon(c->rds, &ac);
	drop_lease(&t);
	drop_hold(&t);
	metrics_inc(m_req[out->outcome]);
	if (out->outcome != CO_OK && out->outcome != CO_ANSWERED)
		tlog(&t, LL_INFO, "chat turn refused or failed", "outcome",
		    chat_outcome_name(out->outcome), NULL);
	else if (in->log_turn)
		chat_log_turn(&t, out);
	llm_result_clear(&lr);
	free(msgs);
	json_object_put(state);
	free(raw);
	budget_settings_clear(&t.s);
	return ret;
}
