/* SPDX-License-Identifier: MIT */
/*
 * Error tracking (docs/runbooks/error-tracking.md): every 5xx of
 * bulwark-fcgi, every child crash, every job that went dead and every
 * browser error report is fingerprinted (SHA-256 over the error code, the
 * normalised message and the code site), counted into its group
 * (error_groups, one upsert) with one redacted sample, and a new group
 * files one issue through a GitHub-style issues API (bulwark-errtrack);
 * crossing 10, 100 and 1,000 occurrences adds one comment each.
 */
#ifndef BW_ERRTRACK_H
#define BW_ERRTRACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "core/buf.h"
#include "core/db.h"
#include "core/err.h"
#include "platform/worker.h"

struct http_client;

#define ERRTRACK_QUEUE	      "errtrack"
#define ERRTRACK_MSG_MAX      2048 /* a normalised or sample message, bytes */
#define ERRTRACK_CODE_MAX     64
#define ERRTRACK_SITE_MAX     200
#define ERRTRACK_LIST_MAX     100 /* GET /admin/errors?limit= */
#define ERRTRACK_MAX_ATTEMPTS 10  /* a filing job's attempts */

enum errtrack_kind {
	EK_HTTP_5XX,
	EK_CRASH,
	EK_JOB_FAILURE,
	EK_CLIENT,
	EK__MAX
};

/* "http_5xx", "crash", "job_failure", "client". */
const char *errtrack_kind_name(enum errtrack_kind);

/*
 * One occurrence. Every string may hold PII: the message is normalised for
 * the fingerprint and redacted (lib/core/redact.c) for the sample; code
 * and site are redacted too. org_id NULL: no org.
 */
struct errtrack_event {
	enum errtrack_kind kind;
	const char	  *org_id;
	const char	  *code;    /* "INTERNAL", "SIGSEGV", ... */
	const char	  *site;    /* "route:chat", "job:sms", ... */
	const char	  *message; /* free text, fingerprinted */
	const char	  *detail; /* sample only (stack, agent); may be NULL */
	const char	  *request_id;	   /* may be NULL */
	const char	  *correlation_id; /* may be NULL */
};

struct errtrack_result {
	char	group_id[37];
	bool	created; /* this occurrence made the group */
	int64_t count;	 /* occurrence_count after it */
	int	jobs;	 /* filing/comment jobs enqueued by it */
};

/*
 * Replaces what varies between occurrences of one bug with placeholders:
 * e-mail addresses <email>, UUIDs <uuid>, hex ids (0x..., or 8+ hex digits
 * with a digit) <hex>, phone numbers <phone>, quoted strings <str>, other
 * digit runs <n>; blanks collapse to one space. Writes at most outlen - 1
 * bytes and a NUL (outlen >= 1); returns the length written.
 */
size_t errtrack_normalize(const char *msg, char *out, size_t outlen);
/* Lower-case hex SHA-256 over code, '\n', normalised message, '\n', site. */
enum bw_err errtrack_fingerprint(const char *code, const char *norm_msg,
    const char *site, char hex[65]);

/*
 * Records one occurrence: one upsert statement, then (only when the group
 * is new or its count just reached 10, 100 or 1,000, and filing is on) one
 * job enqueued with a unique key (errtrack:file:{id},
 * errtrack:comment:{id}:{n}). Errors are returned, never logged here; the
 * callers log and count them and go on.
 */
enum bw_err errtrack_record(struct db *, const struct errtrack_event *,
    bool filing, struct errtrack_result *res);

/*
 * For the console: {"groups":[{id,kind,code,site,count,first_seen,
 * last_seen,issue_url}] (newest last_seen first, at most limit),
 * "per_hour":[{"hour":"RFC3339","count":n} x 24]} of org_id (the last 24
 * hours, oldest first, zero-filled).
 */
enum bw_err errtrack_recent_json(struct db *, const char *org_id, int limit,
    struct json_object **out);
/* GET /admin/errors: {"groups":[...],"next_cursor"} of org_id, newest
 * last_seen first; cursor is a group id from next_cursor. BW_EINVAL for a
 * cursor of no group of the org. */
enum bw_err errtrack_list_json(struct db *, const char *org_id, int limit,
    const char *cursor, struct json_object **out);
/* One group of org_id with its sample; BW_ENOTFOUND for another org's.
 * org_id NULL reads any group (the filing job; never from a request). */
enum bw_err errtrack_get_json(struct db *, const char *org_id, const char *id,
    struct json_object **out);
/* The /metrics series read at scrape time. */
enum bw_err errtrack_prom(struct db *, struct buf *out);

/* What a filing job needs (bulwark-errtrack's config). */
struct errtrack_tracker {
	struct db	   *db;
	struct http_client *http;
	const char	   *base_url; /* "" = filing off */
	const char	   *token;
	const char	   *repo; /* "owner/repo" */
	int		    timeout_ms;
	int		    attempt; /* the job's attempt, 1-based */
};
/*
 * Runs one job of ERRTRACK_QUEUE (payload {"group_id"[,"threshold"]}):
 * files the group's issue, or posts a threshold comment. BW_OK when done;
 * another error with *permanent set when a retry cannot help. errmsg
 * (errlen bytes) says why, without secrets.
 */
enum bw_err errtrack_job_run(const struct errtrack_tracker *,
    const char *payload, bool *permanent, char *errmsg, size_t errlen);

/* A worker_dead_fn (worker_on_dead()): records the dead job as kind
 * job_failure, site "job:{queue}"; errors are logged, not raised. */
void errtrack_worker_dead(struct worker_ctx *, const struct jobq_job *,
    const char *error);
/* A worker_run_failed_fn (worker_on_run_failed()): records a oneshot's
 * failed periodic run as kind job_failure, site "periodic:{job}", code
 * RUN_FAILED, on a session of its own; errors are logged, not raised. */
void
errtrack_run_failed(const struct config *, const char *job, enum bw_err er);

/* The issue's title and body (markdown) for a group row as JSON (the
 * shape errtrack_get_json() answers, plus "fingerprint"). Pure. */
enum bw_err errtrack_issue_text(struct json_object *group, struct buf *title,
    struct buf *body);

#endif
