/* SPDX-License-Identifier: MIT */
/*
 * LINE chat turns: the permanent anchor of each LINE event and the stored
 * steps of its turn (see line_turn.h). Every change is one statement, and
 * the counters move in the statement that changes the turn.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/line.h"
#include "chat/line_turn.h"
#include "core/jv.h"

static const char *const state_names[LTS__MAX] = { "queued", "answered",
	"replied", "failed" };
static const char *const outcome_names[LTO__MAX] = { "delivered",
	"reply_token_invalid", "channel_token_refused", "no_channel_token",
	"rejected", "retries_exhausted", "no_answer" };

/* clang-format off */
static const char sql_anchor[] =
    "INSERT INTO line_turns (org_id, event_id) VALUES ($1::uuid, $2)"
    " ON CONFLICT (org_id, event_id) DO NOTHING";
static const char sql_get[] =
    "SELECT state, answer, reply_attempts FROM line_turns"
    " WHERE org_id = $1::uuid AND event_id = $2";
static const char sql_answer[] =
    "UPDATE line_turns SET state = 'answered', answer = $3,"
    " chat_outcome = $4, answered_at = now()"
    " WHERE org_id = $1::uuid AND event_id = $2 AND state = 'queued'";
static const char sql_retry[] =
    "WITH t AS (UPDATE line_turns SET reply_attempts = reply_attempts + 1,"
    "  last_status = NULLIF($3::int, 0)"
    "  WHERE org_id = $1::uuid AND event_id = $2"
    "  AND state IN ('queued', 'answered') RETURNING 1)"
    " UPDATE line_turn_counts SET n = n + (SELECT count(*) FROM t)"
    " WHERE name = 'reply_retry'";
static const char sql_finish[] =
    "WITH t AS (UPDATE line_turns SET state = $3, outcome = $4,"
    "  answer = NULL, finished_at = now(),"
    "  last_status = COALESCE(NULLIF($5::int, 0), last_status),"
    "  reply_attempts = reply_attempts + $6::int"
    "  WHERE org_id = $1::uuid AND event_id = $2"
    "  AND state IN ('queued', 'answered') RETURNING 1),"
    " c AS (UPDATE line_turn_counts SET n = n + 1"
    "  WHERE name = $4 AND EXISTS (SELECT 1 FROM t))"
    " SELECT count(*) FROM t";
static const char sql_counts[] =
    "SELECT name, n FROM line_turn_counts ORDER BY name";
/* clang-format on */

const char *
line_turn_state_name(enum line_turn_state s)
{
	return (unsigned)s < LTS__MAX ? state_names[s] : "?";
}

const char *
line_turn_outcome_name(enum line_turn_outcome o)
{
	return (unsigned)o < LTO__MAX ? outcome_names[o] : "?";
}

enum line_turn_outcome
line_turn_refusal(int status)
{
	if (status == 400)
		return LTO_REPLY_TOKEN_INVALID;
	if (status == 401 || status == 403)
		return LTO_CHANNEL_TOKEN_REFUSED;
	return LTO_REJECTED;
}

/* org_id a UUID and event_id 1..255 bytes. */
static bool
args_ok(const char *org_id, const char *event_id)
{
	size_t n;

	if (org_id == NULL || event_id == NULL)
		return false;
	n = strlen(event_id);
	return jv_is_uuid(org_id, strlen(org_id)) && n >= 1 && n <= 255;
}

enum bw_err
line_turn_anchor(struct db *db, const char *org_id, const char *event_id,
    bool *fresh)
{
	const char *p[2] = { org_id, event_id };
	PGresult   *res = NULL;
	enum bw_err er;

	if (!args_ok(org_id, event_id) || fresh == NULL)
		return BW_EINVAL;
	er = db_execp(db, "line_turn_anchor", sql_anchor, 2, p, &res);
	if (er == BW_OK)
		*fresh = db_rows(res) == 1;
	PQclear(res);
	return er;
}

enum bw_err
line_turn_get(struct db *db, const char *org_id, const char *event_id,
    struct line_turn *out)
{
	const char *p[2] = { org_id, event_id };
	PGresult   *res = NULL;
	const char *st;
	enum bw_err er;
	int	    i;

	if (!args_ok(org_id, event_id) || out == NULL)
		return BW_EINVAL;
	memset(out, 0, sizeof(*out));
	er = db_execp(db, "line_turn_get", sql_get, 2, p, &res);
	if (er != BW_OK)
		goto out;
	if (PQntuples(res) != 1) {
		er = BW_ENOTFOUND;
		goto out;
	}
	st = PQgetvalue(res, 0, 0);
	out->state = LTS__MAX;
	for (i = 0; i < LTS__MAX; i++)
		if (strcmp(st, state_names[i]) == 0)
			out->state = (enum line_turn_state)i;
	out->reply_attempts = (int)db_col_i64_or(res, 0, 2, 0);
	if (!PQgetisnull(res, 0, 1)) {
		out->answer = db_col_dup(res, 0, 1);
		if (out->answer == NULL)
			er = BW_ENOMEM;
	}
	if (out->state == LTS__MAX ||
	    (out->state == LTS_ANSWERED && out->answer == NULL && er == BW_OK))
		er = BW_EDB; /* the table's checks forbid both */
out:
	PQclear(res);
	return er;
}

void
line_turn_clear(struct line_turn *t)
{
	if (t == NULL)
		return;
	free(t->answer);
	memset(t, 0, sizeof(*t));
}

enum bw_err
line_turn_answer(struct db *db, const char *org_id, const char *event_id,
    const char *answer, const char *chat_outcome, bool *stored)
{
	const char *p[4];
	PGresult   *res = NULL;
	char	   *cut = NULL;
	size_t	    n;
	enum bw_err er;

	if (!args_ok(org_id, event_id) || answer == NULL ||
	    chat_outcome == NULL || stored == NULL)
		return BW_EINVAL;
	/* What the reply sends: its first LINE_MAX_TEXT characters. */
	n = line_text_len(answer, LINE_MAX_TEXT);
	if (answer[n] != '\0') {
		cut = strndup(answer, n);
		if (cut == NULL)
			return BW_ENOMEM;
	}
	p[0] = org_id;
	p[1] = event_id;
	p[2] = cut != NULL ? cut : answer;
	p[3] = chat_outcome;
	er = db_execp(db, "line_turn_answer", sql_answer, 4, p, &res);
	if (er == BW_OK)
		*stored = db_rows(res) == 1;
	PQclear(res);
	free(cut);
	return er;
}

enum bw_err
line_turn_retry(struct db *db, const char *org_id, const char *event_id,
    int status)
{
	const char *p[3];
	char	    st[16];

	if (!args_ok(org_id, event_id))
		return BW_EINVAL;
	snprintf(st, sizeof(st), "%d", status);
	p[0] = org_id;
	p[1] = event_id;
	p[2] = st;
	return db_execp(db, "line_turn_retry", sql_retry, 3, p, NULL);
}

enum bw_err
line_turn_finish(struct db *db, const char *org_id, const char *event_id,
    enum line_turn_outcome outcome, int status, bool *done)
{
	const char *p[6];
	PGresult   *res = NULL;
	char	    st[16];
	enum bw_err er;

	if (!args_ok(org_id, event_id) || (unsigned)outcome >= LTO__MAX ||
	    done == NULL)
		return BW_EINVAL;
	snprintf(st, sizeof(st), "%d", status);
	p[0] = org_id;
	p[1] = event_id;
	p[2] = state_names[outcome == LTO_DELIVERED ? LTS_REPLIED : LTS_FAILED];
	p[3] = outcome_names[outcome];
	p[4] = st;
	/* The outcomes before any reply attempt add none. */
	p[5] = outcome == LTO_NO_CHANNEL_TOKEN || outcome == LTO_NO_ANSWER
	    ? "0"
	    : "1";
	er = db_execp(db, "line_turn_finish", sql_finish, 6, p, &res);
	if (er == BW_OK)
		*done = db_col_i64_or(res, 0, 0, 0) == 1;
	PQclear(res);
	return er;
}

enum bw_err
line_turn_prom(struct db *db, struct buf *out)
{
	PGresult   *res = NULL;
	const char *name;
	enum bw_err er;
	int	    i;

	er = db_execp(db, "line_turn_counts", sql_counts, 0, NULL, &res);
	if (er != BW_OK)
		goto out;
	(void)buf_addstr(out,
	    "# HELP bulwark_line_turns_total LINE chat turns by final "
	    "outcome (cluster-wide).\n"
	    "# TYPE bulwark_line_turns_total counter\n");
	for (i = 0; i < PQntuples(res); i++) {
		name = PQgetvalue(res, i, 0);
		if (strcmp(name, "reply_retry") != 0)
			(void)buf_printf(out,
			    "bulwark_line_turns_total{outcome=\"%s\"} %s\n",
			    name, PQgetvalue(res, i, 1));
	}
	for (i = 0; i < PQntuples(res); i++)
		if (strcmp(PQgetvalue(res, i, 0), "reply_retry") == 0)
			(void)buf_printf(out,
			    "# HELP bulwark_line_reply_retries_total Failed "
			    "LINE reply attempts retried with the stored "
			    "answer (cluster-wide).\n"
			    "# TYPE bulwark_line_reply_retries_total "
			    "counter\nbulwark_line_reply_retries_total %s\n",
			    PQgetvalue(res, i, 1));
out:
	PQclear(res);
	return er;
}
