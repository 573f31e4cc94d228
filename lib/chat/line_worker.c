/* SPDX-License-Identifier: MIT */
/*
 * The chat_line job, in steps whose results are stored in the event's
 * line_turns row (lib/chat/line_turn.h): the org must have a LINE channel
 * token of its own (else nothing is sent: terminal); the answer comes from
 * the same chat path as POST /api/v1/chat once, and is stored; then the
 * reply is posted to the LINE reply API with the stored answer. A reply
 * that fails with 429, 5xx or a transport error fails the job, and the
 * queue's backoff retries the reply alone; a refused one (a used or
 * expired reply token, a refused channel token) is terminal. Each terminal
 * outcome is logged ("line turn terminal") and counted.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/budget.h"
#include "chat/chat.h"
#include "chat/line.h"
#include "chat/line_job.h"
#include "chat/line_turn.h"
#include "chat/line_worker.h"
#include "chat/llm.h"
#include "core/clock.h"
#include "core/http.h"
#include "core/limits.h"
#include "core/log.h"
#include "core/rds.h"

struct line_worker {
	struct rds	   *rds;
	struct llm	   *llm;
	struct http_client *http;
};

struct line_worker *
line_worker_new(void)
{
	return calloc(1, sizeof(struct line_worker));
}

void
line_worker_free(struct line_worker *lw)
{
	if (lw == NULL)
		return;
	http_client_free(lw->http);
	llm_free(lw->llm);
	rds_free(lw->rds);
	free(lw);
}

/* Opens what is not open yet. Returns BW_OK or BW_ENOMEM. */
static enum bw_err
line_worker_open(struct line_worker *lw, const struct config *cfg)
{
	if (lw->rds == NULL)
		lw->rds = rds_new_cfg(cfg);
	if (lw->llm == NULL)
		lw->llm = llm_new();
	if (lw->http == NULL)
		lw->http = http_client_new();
	if (lw->rds == NULL || lw->llm == NULL || lw->http == NULL)
		return BW_ENOMEM;
	return BW_OK;
}

/* The ids and settings one run works with. */
struct lw_run {
	struct line_worker *lw;
	struct worker_ctx  *w;
	struct jobq_job	   *job;
	struct line_job	    j;
	char		    rid[BW_MAX_REQUEST_ID + 1];
	bool		   *permanent;
	char		   *errmsg;
	size_t		    errlen;
};

/*
 * Makes the turn final with outcome o (status: the reply API's, 0 none),
 * logs it and ends the job: BW_OK when delivered, else a permanent error.
 */
static enum bw_err
lw_finish(struct lw_run *r, enum line_turn_outcome o, int status)
{
	char	    st[16];
	enum bw_err er;
	bool	    done = false;

	er = line_turn_finish(r->w->db, r->j.org_id, r->j.event_id, o, status,
	    &done);
	snprintf(st, sizeof(st), "%d", status);
	if (o == LTO_DELIVERED) {
		if (er != BW_OK)
			/* Delivered: a retry would only find the token used. */
			log_kv(LL_WARN, "line reply delivered, not recorded",
			    "event_id", r->j.event_id, "error", bw_strerror(er),
			    NULL);
		return BW_OK;
	}
	log_kv(LL_WARN, "line turn terminal", "event_id", r->j.event_id,
	    "outcome", line_turn_outcome_name(o), "status", st, "recorded",
	    er != BW_OK ? "error"
		: done	? "yes"
			: "already",
	    NULL);
	if (er != BW_OK) {
		/* Not recorded: the next try decides (and counts) again. */
		snprintf(r->errmsg, r->errlen, "line turn not recorded: %s",
		    line_turn_outcome_name(o));
		return er;
	}
	*r->permanent = true;
	snprintf(r->errmsg, r->errlen, "LINE turn %s (status %d)",
	    line_turn_outcome_name(o), status);
	return BW_ESTATE;
}

/*
 * The answer step: the chat path once, its answer (or the fallback text)
 * stored as the turn's. *answer gets a malloc'd copy. Returns BW_OK, or
 * the job's error (retryable unless lw_finish() made it permanent).
 */
static enum bw_err
lw_answer(struct lw_run *r, char **answer)
{
	const struct config *cfg = r->w->cfg;
	struct chat_ctx	     c;
	struct chat_in	     in;
	struct chat_out	     o;
	enum bw_err	     er;
	bool		     stored = false;

	c.cfg = cfg;
	c.db = r->w->db;
	c.rds = r->lw->rds;
	c.llm = r->lw->llm;
	c.blocks = NULL; /* the worker's calls hold one by one */
	memset(&in, 0, sizeof(in));
	in.org_id = r->j.org_id;
	in.channel = "line";
	in.user_id = r->j.user_id;
	in.message = r->j.text;
	in.request_id = r->rid;
	in.correlation_id = r->j.event_id;
	in.start_ms = clock_mono_ms();
	in.log_turn = 1; /* no access line here: the turn writes its own */
	er = chat_run(&c, &in, &o);
	if (er != BW_OK)
		goto out;
	switch (o.outcome) {
	case CO_OK:
	case CO_BUDGET:
	case CO_UPSTREAM:
		break;
	case CO_CAPACITY:
	case CO_DEPENDENCY:
		/* No provider call was made: the retry runs the chat path
		 * again, until the job's last try. */
		if (r->job->attempts >= r->job->max_attempts) {
			er = lw_finish(r, LTO_NO_ANSWER, 0);
			goto out;
		}
		snprintf(r->errmsg, r->errlen, "chat: %s",
		    chat_outcome_name(o.outcome));
		er = BW_EBUSY;
		goto out;
	default:
		er = lw_finish(r, LTO_NO_ANSWER, 0);
		goto out;
	}
	er = line_turn_answer(r->w->db, r->j.org_id, r->j.event_id, o.reply,
	    chat_outcome_name(o.outcome), &stored);
	if (er != BW_OK) {
		/* The one window left: this answer is lost, the retry asks
		 * the model again. */
		log_kv(LL_WARN, "line answer not stored", "event_id",
		    r->j.event_id, "error", bw_strerror(er), NULL);
		snprintf(r->errmsg, r->errlen, "line answer not stored");
		goto out;
	}
	if (!stored)
		log_kv(LL_WARN, "line answer stored by another run first",
		    "event_id", r->j.event_id, NULL);
	*answer = strdup(o.reply);
	if (*answer == NULL)
		er = BW_ENOMEM;
out:
	chat_out_clear(&o);
	return er;
}

/* The reply step with the stored answer and the org's own token. */
static enum bw_err
lw_reply(struct lw_run *r, const char *token, const char *answer)
{
	enum line_outcome lo;
	enum bw_err	  er;
	int		  status = 0;

	er = line_reply(r->lw->http, r->w->cfg->line_api_base_url, token,
	    r->j.reply_token, answer, &lo, &status);
	if (er == BW_OK)
		return lw_finish(r, LTO_DELIVERED, status);
	if (lo == LINE_TERMINAL)
		return lw_finish(r,
		    status >= 400 && status < 500 ? line_turn_refusal(status)
						  : LTO_REJECTED,
		    status);
	if (r->job->attempts >= r->job->max_attempts)
		return lw_finish(r, LTO_RETRIES_EXHAUSTED, status);
	/* The queue's backoff retries the reply alone, with this answer. */
	if (line_turn_retry(r->w->db, r->j.org_id, r->j.event_id, status) !=
	    BW_OK)
		log_kv(LL_WARN, "line reply retry not counted", "event_id",
		    r->j.event_id, NULL);
	snprintf(r->errmsg, r->errlen,
	    "LINE reply API answered %d; the reply is retried", status);
	return er == BW_ENOMEM ? BW_ENOMEM : BW_EUPSTREAM;
}

enum bw_err
line_worker_run(struct line_worker *lw, struct worker_ctx *w,
    struct jobq_job *job, bool *permanent, char *errmsg, size_t errlen)
{
	const struct config   *cfg = w->cfg;
	struct lw_run	       r;
	struct line_turn       t;
	struct budget_settings s;
	const char	      *why;
	char		      *answer = NULL;
	enum bw_err	       er;
	bool		       fresh = false;

	memset(&r, 0, sizeof(r));
	memset(&s, 0, sizeof(s));
	memset(&t, 0, sizeof(t));
	r.lw = lw;
	r.w = w;
	r.job = job;
	r.permanent = permanent;
	r.errmsg = errmsg;
	r.errlen = errlen;
	er = line_job_parse(job->payload, job->id, &r.j, &why);
	if (er == BW_EINVAL) {
		*permanent = true;
		snprintf(errmsg, errlen, "%s", why);
		goto out;
	}
	if (er != BW_OK)
		goto out;
	er = line_worker_open(lw, cfg);
	if (er != BW_OK)
		goto out;
	snprintf(r.rid, sizeof(r.rid), "line-%.120s", job->id);
	log_ctx_set(LC_REQUEST_ID, r.rid);
	/* The webhook request's correlation id, carried by the job; jobs
	 * queued before it was carried fall back to the event id. */
	log_ctx_set(LC_CORRELATION_ID,
	    job->correlation_id != NULL ? job->correlation_id : r.j.event_id);
	log_ctx_set(LC_ORG_ID, r.j.org_id);
	er = line_turn_get(w->db, r.j.org_id, r.j.event_id, &t);
	if (er == BW_ENOTFOUND) {
		/* A job queued before the anchors existed. */
		er = line_turn_anchor(w->db, r.j.org_id, r.j.event_id, &fresh);
		if (er == BW_OK)
			er = line_turn_get(w->db, r.j.org_id, r.j.event_id, &t);
	}
	if (er == BW_EINVAL) {
		*permanent = true;
		snprintf(errmsg, errlen, "payload has no usable event id");
		goto out;
	}
	if (er != BW_OK)
		goto out;
	if (t.state == LTS_REPLIED || t.state == LTS_FAILED) {
		log_kv(LL_INFO, "line turn already final", "event_id",
		    r.j.event_id, "state", line_turn_state_name(t.state), NULL);
		goto out;
	}
	/* Only the org's own channel token may answer its users. */
	er = budget_settings_get(w->db, r.j.org_id, cfg->llm_primary_model,
	    cfg->llm_fallback_model, &s);
	if (er == BW_ENOTFOUND) {
		er = lw_finish(&r, LTO_NO_ANSWER, 0);
		goto out;
	}
	if (er != BW_OK)
		goto out;
	if (s.line_token == NULL || s.line_token[0] == '\0') {
		er = lw_finish(&r, LTO_NO_CHANNEL_TOKEN, 0);
		goto out;
	}
	if (t.state == LTS_QUEUED) {
		er = lw_answer(&r, &answer);
		if (er != BW_OK)
			goto out;
	}
	er = lw_reply(&r, s.line_token, answer != NULL ? answer : t.answer);
out:
	free(answer);
	line_turn_clear(&t);
	budget_settings_clear(&s);
	line_job_clear(&r.j);
	log_ctx_clear();
	return er;
}
