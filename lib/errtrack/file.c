/* SPDX-License-Identifier: MIT */
/*
 * The jobs of the errtrack queue (bulwark-errtrack): file a group's issue
 * (POST {base}/repos/{owner}/{repo}/issues) or add a threshold comment
 * (POST .../issues/{number}/comments), GitHub's REST shapes, Bearer token.
 * One HTTP attempt per job attempt; the job queue's backoff spaces the
 * retries. A POST whose answer was lost may have filed the issue: a retry
 * first looks for it (GET .../issues?labels=bulwark,error, the group id is
 * in a marker comment of the body) so a storm or a flaky tracker never
 * files a group twice.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/backoff.h"
#include "core/http.h"
#include "core/jv.h"
#include "core/log.h"
#include "errtrack/errtrack.h"
#include "errtrack/errtrack_int.h"

#define FILE_MAX_RESP (1024 * 1024) /* a listing of 100 issues fits */
#define FILE_URL_MAX  1024
#define FILE_BASE_MAX 768 /* .../repos/o/r/issues, room left for the rest */

/* clang-format off */
static const char ef_sql_issue[] =
    "UPDATE error_groups SET issue_number = $2::bigint, issue_url = $3"
    " WHERE id = $1::uuid AND issue_number IS NULL";
static const char ef_sql_comment[] =
    "UPDATE error_groups SET last_comment_threshold ="
    " greatest(last_comment_threshold, $2::bigint) WHERE id = $1::uuid";
static const char ef_sql_failed[] =
    "UPDATE error_groups SET filing_failures = filing_failures + 1"
    " WHERE id = $1::uuid";
/* clang-format on */

/* "owner/repo": one slash, [A-Za-z0-9._-] on each side. */
static int
ef_repo_ok(const char *r)
{
	const char *s = strchr(r, '/');
	size_t	    i;

	if (s == NULL || s == r || s[1] == '\0' || strchr(s + 1, '/') != NULL)
		return 0;
	for (i = 0; r[i] != '\0'; i++)
		if (r[i] != '/' && r[i] != '.' && r[i] != '_' && r[i] != '-' &&
		    !((r[i] >= 'a' && r[i] <= 'z') ||
			(r[i] >= 'A' && r[i] <= 'Z') ||
			(r[i] >= '0' && r[i] <= '9')))
			return 0;
	return 1;
}

/* One request to the tracker; the token never reaches a log or errmsg. */
static enum bw_err
ef_http(const struct errtrack_tracker *t, const char *method, const char *url,
    const char *body, struct http_resp *resp)
{
	static const char *const want[] = { "Retry-After" };
	char			 auth[1100];
	const char		*h[5];
	struct http_req		 rq;

	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", t->token);
	h[0] = auth;
	h[1] = "Accept: application/vnd.github+json";
	h[2] = "Content-Type: application/json";
	h[3] = "User-Agent: bulwark-errtrack";
	h[4] = "X-GitHub-Api-Version: 2022-11-28";
	memset(&rq, 0, sizeof(rq));
	rq.method = method;
	rq.url = url;
	rq.headers = h;
	rq.nheaders = 5;
	rq.body = body;
	rq.body_len = body != NULL ? strlen(body) : 0;
	rq.connect_timeout_ms = t->timeout_ms < 2000 ? t->timeout_ms : 2000;
	rq.timeout_ms = t->timeout_ms;
	rq.max_body = FILE_MAX_RESP;
	rq.want = want;
	rq.nwant = 1;
	return http_do(t->http, &rq, resp);
}

/*
 * Judges an answer: BW_OK for 200/201; else an error with *permanent
 * unless the status (or the transport failure) is worth a retry.
 */
static enum bw_err
ef_judge(enum bw_err er, const struct http_resp *resp, const char *what,
    bool *permanent, char *errmsg, size_t errlen)
{
	if (er == BW_OK && (resp->status == 200 || resp->status == 201))
		return BW_OK;
	if (er != BW_OK) {
		snprintf(errmsg, errlen, "tracker %s: %s", what,
		    http_xerr_name(resp->xerr));
		return BW_EUPSTREAM;
	}
	*permanent = !backoff_status_retryable(resp->status);
	snprintf(errmsg, errlen, "tracker %s: HTTP %d%s%s", what, resp->status,
	    resp->has[0] ? ", Retry-After " : "",
	    resp->has[0] ? resp->hdr[0] : "");
	return BW_EUPSTREAM;
}

/* number and html_url of an issue object into *num, url. 0 or -1. */
static int
ef_issue_of(struct json_object *o, int64_t *num, char *url, size_t urllen)
{
	struct json_object *n, *u;

	if (o == NULL || !json_object_object_get_ex(o, "number", &n) ||
	    !json_object_is_type(n, json_type_int) ||
	    (*num = json_object_get_int64(n)) < 1)
		return -1;
	url[0] = '\0';
	if (json_object_object_get_ex(o, "html_url", &u) &&
	    json_object_is_type(u, json_type_string))
		snprintf(url, urllen, "%s", json_object_get_string(u));
	return 0;
}

/* Stores the group's issue; a group filed meanwhile keeps its own. */
static enum bw_err
ef_store_issue(struct db *db, const char *id, int64_t num, const char *url)
{
	char	    n[24];
	const char *p[3] = { id, n, url[0] != '\0' ? url : NULL };

	snprintf(n, sizeof(n), "%lld", (long long)num);
	return db_execp(db, "ef_issue", ef_sql_issue, 3, p, NULL);
}

/*
 * Looks for an issue of group id filed by an earlier attempt whose answer
 * was lost. 1 found (stored), 0 not found, -1 the look-up failed (the
 * caller then files anyway: a duplicate beats no issue).
 */
static int
ef_find(const struct errtrack_tracker *t, const char *base, const char *id)
{
	struct json_object *arr = NULL, *it, *b;
	struct http_resp    resp;
	char		    url[FILE_URL_MAX], marker[96], html[512];
	int64_t		    num;
	size_t		    i;
	int		    rc = -1;

	snprintf(url, sizeof(url),
	    "%s?state=all&labels=bulwark,error&per_page=100", base);
	snprintf(marker, sizeof(marker), "<!-- bulwark-error-group: %s -->",
	    id);
	http_resp_init(&resp);
	if (ef_http(t, "GET", url, NULL, &resp) != BW_OK || resp.status != 200)
		goto out;
	arr = json_tokener_parse(buf_cstr(&resp.body));
	if (arr == NULL || !json_object_is_type(arr, json_type_array))
		goto out;
	rc = 0;
	for (i = 0; i < json_object_array_length(arr); i++) {
		it = json_object_array_get_idx(arr, i);
		if (!json_object_object_get_ex(it, "body", &b) ||
		    !json_object_is_type(b, json_type_string) ||
		    strstr(json_object_get_string(b), marker) == NULL ||
		    ef_issue_of(it, &num, html, sizeof(html)) != 0)
			continue;
		rc = ef_store_issue(t->db, id, num, html) == BW_OK ? 1 : -1;
		break;
	}
out:
	json_object_put(arr);
	http_resp_free(&resp);
	return rc;
}

/* Files the group's issue unless it has one. */
static enum bw_err
ef_file(const struct errtrack_tracker *t, const char *base,
    struct json_object *g, bool *permanent, char *errmsg, size_t errlen)
{
	struct json_object *req, *labels, *ans = NULL;
	struct http_resp    resp;
	struct buf	    title, body;
	const char	   *id =
	    json_object_get_string(json_object_object_get(g, "id"));
	char	    html[512];
	int64_t	    num;
	enum bw_err er;

	if (json_object_object_get(g, "issue_number") != NULL)
		return BW_OK;
	if (t->attempt > 1 && ef_find(t, base, id) == 1)
		return BW_OK;
	buf_init(&title, 1024);
	buf_init(&body, 65536);
	er = errtrack_issue_text(g, &title, &body);
	if (er != BW_OK) {
		buf_free(&title);
		buf_free(&body);
		return er;
	}
	req = json_object_new_object();
	json_object_object_add(req, "title",
	    json_object_new_string(buf_cstr(&title)));
	json_object_object_add(req, "body",
	    json_object_new_string(buf_cstr(&body)));
	labels = json_object_new_array();
	json_object_array_add(labels, json_object_new_string("bulwark"));
	json_object_array_add(labels, json_object_new_string("error"));
	json_object_object_add(req, "labels", labels);
	buf_free(&title);
	buf_free(&body);
	http_resp_init(&resp);
	er = ef_http(t, "POST", base,
	    json_object_to_json_string_ext(req,
		JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
	    &resp);
	json_object_put(req);
	er = ef_judge(er, &resp, "issue", permanent, errmsg, errlen);
	if (er == BW_OK) {
		ans = json_tokener_parse(buf_cstr(&resp.body));
		if (ef_issue_of(ans, &num, html, sizeof(html)) != 0) {
			snprintf(errmsg, errlen,
			    "tracker issue: no number in the answer");
			er = BW_EUPSTREAM;
		} else {
			er = ef_store_issue(t->db, id, num, html);
			log_kv(LL_INFO, "error group issue filed", "group_id",
			    id, "issue_url", html, NULL);
		}
	}
	json_object_put(ans);
	http_resp_free(&resp);
	return er;
}

/* Posts the comment of threshold once the group has its issue. */
static enum bw_err
ef_comment(const struct errtrack_tracker *t, const char *base,
    struct json_object *g, int64_t threshold, bool *permanent, char *errmsg,
    size_t errlen)
{
	struct json_object *req, *s = NULL, *rid = NULL;
	struct http_resp    resp;
	char		    url[FILE_URL_MAX], text[1024], *masked, th[24];
	const char	   *id, *p[2];
	int64_t		    num;
	enum bw_err	    er;

	id = json_object_get_string(json_object_object_get(g, "id"));
	num = json_object_get_int64(json_object_object_get(g, "issue_number"));
	if (json_object_object_get(g, "issue_number") == NULL) {
		snprintf(errmsg, errlen, "the group has no issue yet");
		return BW_ESTATE; /* retried: the filing job runs first */
	}
	if (json_object_get_int64(json_object_object_get(g,
		"last_comment_threshold")) >= threshold)
		return BW_OK;
	(void)json_object_object_get_ex(g, "sample", &s);
	(void)json_object_object_get_ex(s, "request_id", &rid);
	snprintf(text, sizeof(text),
	    "The error group passed %lld occurrences: %lld so far, last seen "
	    "%s. Latest sample request id: %s.\n\n"
	    "<!-- bulwark-error-group: %s threshold: %lld -->\n",
	    (long long)threshold,
	    (long long)json_object_get_int64(
		json_object_object_get(g, "count")),
	    json_object_get_string(json_object_object_get(g, "last_seen")),
	    rid != NULL ? json_object_get_string(rid) : "none", id,
	    (long long)threshold);
	masked = errtrack_redact(text, sizeof(text));
	if (masked == NULL)
		return BW_ENOMEM;
	snprintf(url, sizeof(url), "%s/%lld/comments", base, (long long)num);
	req = json_object_new_object();
	json_object_object_add(req, "body", json_object_new_string(masked));
	free(masked);
	http_resp_init(&resp);
	er = ef_http(t, "POST", url,
	    json_object_to_json_string_ext(req,
		JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
	    &resp);
	json_object_put(req);
	er = ef_judge(er, &resp, "comment", permanent, errmsg, errlen);
	http_resp_free(&resp);
	if (er != BW_OK)
		return er;
	snprintf(th, sizeof(th), "%lld", (long long)threshold);
	p[0] = id;
	p[1] = th;
	return db_execp(t->db, "ef_comment", ef_sql_comment, 2, p, NULL);
}

enum bw_err
errtrack_job_run(const struct errtrack_tracker *t, const char *payload,
    bool *permanent, char *errmsg, size_t errlen)
{
	struct json_object *pl, *g = NULL, *v;
	char		    base[FILE_BASE_MAX], id[37];
	const char	   *p[1] = { id };
	int64_t		    threshold = 0;
	size_t		    n;
	enum bw_err	    er;

	*permanent = false;
	pl = json_tokener_parse(payload != NULL ? payload : "");
	if (pl == NULL || !json_object_object_get_ex(pl, "group_id", &v) ||
	    !json_object_is_type(v, json_type_string) ||
	    !jv_is_uuid(json_object_get_string(v),
		strlen(json_object_get_string(v)))) {
		json_object_put(pl);
		*permanent = true;
		snprintf(errmsg, errlen, "bad errtrack job payload");
		return BW_EINVAL;
	}
	snprintf(id, sizeof(id), "%s", json_object_get_string(v));
	if (json_object_object_get_ex(pl, "threshold", &v))
		threshold = json_object_get_int64(v);
	json_object_put(pl);
	if (t->base_url == NULL || t->base_url[0] == '\0') {
		log_kv(LL_INFO, "error tracker off (tracker_base_url empty)",
		    "group_id", id, NULL);
		return BW_OK;
	}
	if (t->repo == NULL || !ef_repo_ok(t->repo)) {
		*permanent = true;
		snprintf(errmsg, errlen, "tracker_repo is not owner/repo");
		return BW_ECONFIG;
	}
	n = strlen(t->base_url);
	while (n > 0 && t->base_url[n - 1] == '/')
		n--;
	if ((size_t)snprintf(base, sizeof(base), "%.*s/repos/%s/issues", (int)n,
		t->base_url, t->repo) >= sizeof(base)) {
		*permanent = true;
		snprintf(errmsg, errlen, "tracker_base_url is too long");
		return BW_ECONFIG;
	}
	er = errtrack_get_json(t->db, NULL, id, &g);
	if (er == BW_ENOTFOUND) {
		*permanent = true;
		snprintf(errmsg, errlen, "no error group %s", id);
		return er;
	}
	if (er != BW_OK) {
		snprintf(errmsg, errlen, "reading the group: %s",
		    bw_strerror(er));
		return er;
	}
	if (threshold > 0)
		er = ef_comment(t, base, g, threshold, permanent, errmsg,
		    errlen);
	else
		er = ef_file(t, base, g, permanent, errmsg, errlen);
	json_object_put(g);
	if (er != BW_OK)
		(void)db_execp(t->db, "ef_failed", ef_sql_failed, 1, p, NULL);
	return er;
}
