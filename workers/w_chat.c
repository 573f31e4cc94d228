/* SPDX-License-Identifier: MIT */
/*
 * bulwark-chat: the long-running LINE chat worker. It consumes the
 * "chat_line" jobs the LINE webhook queues once per event, runs the same
 * chat path as POST /api/v1/chat (channel "line", user = the LINE userId)
 * and posts the answer, or the org's fallback text, to the LINE reply API.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <json-c/json.h>
#include <openssl/crypto.h>

#include "chat/budget.h"
#include "core/buf.h"
#include "chat/chat.h"
#include "core/clock.h"
#include "core/jv.h"
#include "core/limits.h"
#include "chat/llm.h"
#include "core/log.h"
#include "core/rds.h"
#include "platform/worker.h" /* brings lib/core/config.h, not the build's config.h */

#define W_CHAT_QUEUE	       "chat_line"
#define W_CHAT_LINE_TIMEOUT_MS 5000	   /* one reply API call */
#define W_CHAT_LINE_MAX_TEXT   5000	   /* LINE text message, characters */
#define W_CHAT_LINE_MAX_BODY   (64 * 1024) /* the reply API's answer */

/* This process's connections, made on first use. */
static struct rds *w_chat_rds;
static struct llm *w_chat_llm;

static size_t
w_chat_sink(char *p, size_t sz, size_t nm, void *arg)
{
	struct buf *b = arg;

	if (buf_add(b, p, sz * nm) != BW_OK)
		return 0;
	return sz * nm;
}

/*
 * Cuts s to at most max characters at a UTF-8 boundary (in place).
 */
static void
w_chat_cut(char *s, size_t max)
{
	size_t i, chars = 0;

	for (i = 0; s[i] != '\0'; i++) {
		if (((unsigned char)s[i] & 0xc0) != 0x80) {
			if (chars == max) {
				s[i] = '\0';
				return;
			}
			chars++;
		}
	}
}

/*
 * POSTs text as the reply to reply_token. Returns BW_OK on 2xx; *permanent
 * is set for a 4xx (a used or expired reply token will not work later).
 */
static enum bw_err
w_chat_line_reply(const struct config *cfg, const char *token,
    const char *reply_token, char *text, const char *org_id, bool *permanent,
    long *status)
{
	struct json_object *b, *msgs, *m;
	struct curl_slist  *h = NULL, *t;
	struct buf	    resp, auth;
	CURL		   *e;
	CURLcode	    cc;
	char		    url[2048];
	const char	   *s;
	enum bw_err	    er = BW_EUPSTREAM;

	*status = 0;
	buf_init(&resp, W_CHAT_LINE_MAX_BODY);
	buf_init(&auth, BW_MAX_WEBHOOK_SECRET + 64);
	w_chat_cut(text, W_CHAT_LINE_MAX_TEXT);
	b = json_object_new_object();
	msgs = json_object_new_array();
	m = json_object_new_object();
	json_object_object_add(m, "type", json_object_new_string("text"));
	json_object_object_add(m, "text", json_object_new_string(text));
	json_object_array_add(msgs, m);
	json_object_object_add(b, "replyToken",
	    json_object_new_string(reply_token));
	json_object_object_add(b, "messages", msgs);
	s = json_object_to_json_string_ext(b, JSON_C_TO_STRING_PLAIN);
	e = curl_easy_init();
	if (e == NULL ||
	    snprintf(url, sizeof(url), "%s/v2/bot/message/reply",
		cfg->line_api_base_url) >= (int)sizeof(url) ||
	    buf_printf(&auth, "Authorization: Bearer %s", token) != BW_OK) {
		er = BW_EINVAL;
		*permanent = true;
		goto out;
	}
	t = curl_slist_append(h, "Content-Type: application/json");
	h = t != NULL ? t : h;
	t = curl_slist_append(h, buf_cstr(&auth));
	h = t != NULL ? t : h;
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, s);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)W_CHAT_LINE_TIMEOUT_MS);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, w_chat_sink);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &resp);
	cc = curl_easy_perform(e);
	if (cc == CURLE_OK)
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, status);
	if (cc == CURLE_OK && *status >= 200 && *status < 300)
		er = BW_OK;
	else if (cc == CURLE_OK && *status >= 400 && *status < 500 &&
	    *status != 429)
		*permanent = true;
	log_kv(er == BW_OK ? LL_INFO : LL_WARN, "line reply sent", "org_id",
	    org_id, "curl", curl_easy_strerror(cc), NULL);
out:
	if (e != NULL)
		curl_easy_cleanup(e);
	curl_slist_free_all(h);
	buf_free(&resp);
	if (auth.p != NULL)
		OPENSSL_cleanse(auth.p, auth.len);
	buf_free(&auth);
	json_object_put(b);
	return er;
}

/* Runs one chat_line job. */
static enum bw_err
w_chat_run(struct worker_ctx *w, struct jobq_job *job, bool *permanent,
    char *errmsg, size_t errlen)
{
	const struct config   *cfg = w->cfg;
	struct json_object    *p = NULL;
	struct budget_settings s;
	struct chat_ctx	       c;
	struct chat_in	       in;
	struct chat_out	       o;
	const char	      *org, *user, *rtok, *text, *evid, *token;
	char		       rid[BW_MAX_REQUEST_ID + 1];
	long		       status = 0;
	enum bw_err	       er;

	memset(&o, 0, sizeof(o));
	memset(&s, 0, sizeof(s));
	if (jv_parse(job->payload, strlen(job->payload), 4, &p) != BW_OK) {
		*permanent = true;
		snprintf(errmsg, errlen, "payload is not a JSON object");
		return BW_EINVAL;
	}
	org = jv_str(p, "org_id", NULL);
	user = jv_str(p, "user_id", NULL);
	rtok = jv_str(p, "reply_token", NULL);
	text = jv_str(p, "text", NULL);
	evid = jv_str(p, "event_id", job->id);
	if (org == NULL || user == NULL || rtok == NULL || text == NULL ||
	    user[0] == '\0' || text[0] == '\0' ||
	    jv_utf8_len(user, strlen(user)) > CHAT_MAX_USER) {
		*permanent = true;
		snprintf(errmsg, errlen,
		    "payload lacks org_id, user_id, "
		    "reply_token or text");
		er = BW_EINVAL;
		goto out;
	}
	if (w_chat_rds == NULL)
		w_chat_rds = rds_new(cfg->redis_url);
	if (w_chat_llm == NULL)
		w_chat_llm = llm_new();
	if (w_chat_rds == NULL || w_chat_llm == NULL) {
		er = BW_ENOMEM;
		goto out;
	}
	snprintf(rid, sizeof(rid), "line-%.120s", job->id);
	log_ctx_set(LC_REQUEST_ID, rid);
	log_ctx_set(LC_CORRELATION_ID, evid);
	log_ctx_set(LC_ORG_ID, org);
	c.cfg = cfg;
	c.db = w->db;
	c.rds = w_chat_rds;
	c.llm = w_chat_llm;
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
	er = w_chat_line_reply(cfg, token, rtok, o.reply, org, permanent,
	    &status);
	if (er != BW_OK)
		snprintf(errmsg, errlen, "LINE reply API answered %ld", status);
out:
	budget_settings_clear(&s);
	chat_out_clear(&o);
	json_object_put(p);
	log_ctx_clear();
	return er;
}

int
main(int argc, char **argv)
{
	static const struct worker_def def = {
		.service = "bulwark-chat",
		.queue = W_CHAT_QUEUE,
		.run = w_chat_run,
		.lease_s = 0,
	};
	int rc;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = worker_main(&def, argc, argv);
	llm_free(w_chat_llm);
	rds_free(w_chat_rds);
	curl_global_cleanup();
	return rc;
}
