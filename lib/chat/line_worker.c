/* SPDX-License-Identifier: MIT */
/*
 * The chat_line job: parse the payload, run the same chat path as
 * POST /api/v1/chat, then post the answer to the LINE reply API with the
 * org's channel token (or the configured default).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/budget.h"
#include "chat/chat.h"
#include "chat/line.h"
#include "chat/line_job.h"
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
		lw->rds = rds_new(cfg->redis_url);
	if (lw->llm == NULL)
		lw->llm = llm_new();
	if (lw->http == NULL)
		lw->http = http_client_new();
	if (lw->rds == NULL || lw->llm == NULL || lw->http == NULL)
		return BW_ENOMEM;
	return BW_OK;
}

enum bw_err
line_worker_run(struct line_worker *lw, struct worker_ctx *w,
    struct jobq_job *job, bool *permanent, char *errmsg, size_t errlen)
{
	const struct config   *cfg = w->cfg;
	struct line_job	       j;
	struct budget_settings s;
	struct chat_ctx	       c;
	struct chat_in	       in;
	struct chat_out	       o;
	enum line_outcome      lo;
	const char	      *org, *user, *rtok, *text, *evid, *token, *why;
	char		       rid[BW_MAX_REQUEST_ID + 1];
	int		       status = 0;
	enum bw_err	       er;

	memset(&o, 0, sizeof(o));
	memset(&s, 0, sizeof(s));
	memset(&j, 0, sizeof(j));
	er = line_job_parse(job->payload, job->id, &j, &why);
	if (er == BW_EINVAL) {
		*permanent = true;
		snprintf(errmsg, errlen, "%s", why);
		goto out;
	}
	if (er != BW_OK)
		goto out;
	org = j.org_id;
	user = j.user_id;
	rtok = j.reply_token;
	text = j.text;
	evid = j.event_id;
	er = line_worker_open(lw, cfg);
	if (er != BW_OK)
		goto out;
	snprintf(rid, sizeof(rid), "line-%.120s", job->id);
	log_ctx_set(LC_REQUEST_ID, rid);
	log_ctx_set(LC_CORRELATION_ID, evid);
	log_ctx_set(LC_ORG_ID, org);
	c.cfg = cfg;
	c.db = w->db;
	c.rds = lw->rds;
	c.llm = lw->llm;
	memset(&in, 0, sizeof(in));
	in.org_id = org;
	in.channel = "line";
	in.user_id = user;
	in.message = text;
	in.request_id = rid;
	in.correlation_id = evid;
	in.start_ms = clock_mono_ms();
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
		snprintf(errmsg, errlen, "chat: %s",
		    chat_outcome_name(o.outcome));
		er = BW_EBUSY;
		goto out;
	default:
		*permanent = true;
		snprintf(errmsg, errlen, "chat: %s",
		    chat_outcome_name(o.outcome));
		er = BW_ESTATE;
		goto out;
	}
	er = budget_settings_get(w->db, org, cfg->llm_primary_model,
	    cfg->llm_fallback_model, &s);
	if (er != BW_OK)
		goto out;
	token = s.line_token != NULL ? s.line_token : cfg->line_channel_token;
	er = line_reply(lw->http, cfg->line_api_base_url, token, rtok, o.reply,
	    &lo, &status);
	if (er != BW_OK) {
		if (lo == LINE_TERMINAL)
			*permanent = true;
		snprintf(errmsg, errlen, "LINE reply API answered %d", status);
	}
out:
	budget_settings_clear(&s);
	chat_out_clear(&o);
	line_job_clear(&j);
	log_ctx_clear();
	return er;
}
