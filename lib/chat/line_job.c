/* SPDX-License-Identifier: MIT */
/*
 * The "chat_line" job: its key, payload builder and parser, and the
 * enqueue the LINE webhook runs inside its transaction. See line_job.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/chat.h"
#include "chat/line_job.h"
#include "chat/line_turn.h"
#include "core/jv.h"
#include "core/limits.h"
#include "platform/jobq.h"

#define LINE_JOB_WHY_JSON   "payload is not a JSON object"
#define LINE_JOB_WHY_FIELDS "payload lacks org_id, user_id, reply_token or text"

enum bw_err
line_job_key(const char *org_id, const char *event_id, char *key, size_t size)
{
	int n;

	if (org_id == NULL || event_id == NULL || key == NULL || size == 0)
		return BW_EINVAL;
	n = snprintf(key, size, "line:%s:%s", org_id, event_id);
	if (n < 0 || (size_t)n >= size || n > BW_MAX_JOB_KEY)
		return BW_EINVAL;
	return BW_OK;
}

/* Adds obj[key] = the string s. Returns BW_OK or BW_ENOMEM. */
static enum bw_err
line_job_add(struct json_object *obj, const char *key, const char *s)
{
	struct json_object *v;

	v = json_object_new_string(s);
	if (v == NULL)
		return BW_ENOMEM;
	if (json_object_object_add(obj, key, v) != 0) {
		json_object_put(v);
		return BW_ENOMEM;
	}
	return BW_OK;
}

enum bw_err
line_job_payload(const struct line_job *j, char **out)
{
	struct json_object *pl;
	enum bw_err	    er;
	char		   *txt;

	if (j == NULL || j->org_id == NULL || j->user_id == NULL ||
	    j->reply_token == NULL || j->text == NULL || j->event_id == NULL)
		return BW_EINVAL;
	pl = json_object_new_object();
	if (pl == NULL)
		return BW_ENOMEM;
	/* The order the worker's logs and the docs show. */
	er = line_job_add(pl, "org_id", j->org_id);
	if (er == BW_OK)
		er = line_job_add(pl, "user_id", j->user_id);
	if (er == BW_OK)
		er = line_job_add(pl, "reply_token", j->reply_token);
	if (er == BW_OK)
		er = line_job_add(pl, "text", j->text);
	if (er == BW_OK)
		er = line_job_add(pl, "event_id", j->event_id);
	if (er != BW_OK)
		goto out;
	txt = jv_dump(pl);
	if (txt == NULL) {
		er = BW_ENOMEM;
		goto out;
	}
	*out = txt;
out:
	json_object_put(pl);
	return er;
}

enum bw_err
line_job_enqueue(struct db *db, const struct line_job *j, bool *queued)
{
	struct jobq_spec spec;
	char		 key[BW_MAX_JOB_KEY + 1], id[37];
	char		*txt = NULL;
	enum bw_err	 er;
	bool		 created = false, fresh = false;

	if (j == NULL || queued == NULL)
		return BW_EINVAL;
	*queued = false;
	er = line_job_key(j->org_id, j->event_id, key, sizeof(key));
	if (er != BW_OK)
		return er;
	er = line_job_payload(j, &txt);
	if (er != BW_OK)
		return er;
	/* The permanent anchor first: an event seen before, even one whose
	 * webhook_events row and job were purged since, queues nothing. */
	er = line_turn_anchor(db, j->org_id, j->event_id, &fresh);
	if (er != BW_OK || !fresh) {
		free(txt);
		return er;
	}
	memset(&spec, 0, sizeof(spec));
	spec.queue = LINE_JOB_QUEUE;
	spec.job_key = key;
	spec.org_id = j->org_id;
	spec.payload = txt;
	er = jobq_enqueue(db, &spec, id, &created);
	free(txt);
	if (er == BW_OK)
		*queued = true;
	return er;
}

enum bw_err
line_job_parse(const char *payload, const char *job_id, struct line_job *out,
    const char **why)
{
	struct json_object *p = NULL;
	struct line_job	    j;

	if (payload == NULL || out == NULL ||
	    jv_parse(payload, strlen(payload), LINE_JOB_MAX_DEPTH, &p) !=
		BW_OK) {
		if (why != NULL)
			*why = LINE_JOB_WHY_JSON;
		return BW_EINVAL;
	}
	memset(&j, 0, sizeof(j));
	j.org_id = jv_str(p, "org_id", NULL);
	j.user_id = jv_str(p, "user_id", NULL);
	j.reply_token = jv_str(p, "reply_token", NULL);
	j.text = jv_str(p, "text", NULL);
	j.event_id = jv_str(p, "event_id", job_id);
	if (j.org_id == NULL || j.user_id == NULL || j.reply_token == NULL ||
	    j.text == NULL || j.user_id[0] == '\0' || j.text[0] == '\0' ||
	    jv_utf8_len(j.user_id, strlen(j.user_id)) > CHAT_MAX_USER) {
		json_object_put(p);
		if (why != NULL)
			*why = LINE_JOB_WHY_FIELDS;
		return BW_EINVAL;
	}
	j.root = p;
	*out = j;
	return BW_OK;
}

void
line_job_clear(struct line_job *j)
{
	if (j == NULL)
		return;
	json_object_put(j->root);
	memset(j, 0, sizeof(*j));
}
