/* SPDX-License-Identifier: MIT */
/*
 * Evidence exports (tables `exports`, `export_events`): creation with a
 * one-time public verification token, the state machine queued ->
 * processing -> ready | failed | canceled -> expired, the deterministic
 * tar artifact (manifest.json first, then the evidence files) with the
 * ledger proofs that let a third party verify it offline, public
 * verification, retention, and the queue metrics.
 *
 * One header, several files: export.c (the table, state machine and
 * metrics), export_run.c and export_build.c (the worker's attempt and the
 * artifact), export_check.c (the offline check), export_seal.c (the
 * artifact's check, made once and stored), export_verify.c (public
 * verification), export_retention.c; export_int.h is what they share.
 */
#ifndef BW_EXPORT_H
#define BW_EXPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "core/buf.h"
#include "core/db.h"
#include "core/err.h"
#include "platform/jobq.h"

#define EXPORT_QUEUE	      "export"	   /* job queue name */
#define EXPORT_ORG_CAP	      3		   /* processing exports per org */
#define EXPORT_MAX_ATTEMPTS   3		   /* the third failure is final */
#define EXPORT_TOKEN_TTL_S    (30 * 86400) /* verification token */
#define EXPORT_REMOVE_AFTER_S (7 * 86400)  /* failed, canceled: rows go */
#define EXPORT_MAX_IDS	      1000	   /* evidence_ids of one export */
#define EXPORT_TOKEN_LEN      43	   /* base64url of 32 bytes */

enum export_state {
	ES_QUEUED,
	ES_PROCESSING,
	ES_READY,
	ES_FAILED,
	ES_CANCELED,
	ES_EXPIRED,
	ES__MAX
};

enum export_category {
	EC_STORAGE,    /* a file missing, unreadable or unwritable */
	EC_DATABASE,   /* PostgreSQL failed */
	EC_VALIDATION, /* the request or the stored data is inconsistent */
	EC_INTERNAL,   /* anything else (memory, crypto) */
	EC__MAX
};

/* What POST /api/v1/exports asked for (validated by the handler). */
struct export_req {
	const char	  *org_id;
	const char *const *evidence_ids; /* nids UUIDs, or NULL */
	size_t		   nids;
	const char	  *from; /* RFC 3339, with to, or NULL */
	const char	  *to;
	const char	  *request_id;	/* may be NULL */
	const char	  *request_key; /* hex SHA-256 of the Idempotency-Key,
					   unique per org; may be NULL */
};

struct export_created {
	char id[37];
	char token[EXPORT_TOKEN_LEN + 1]; /* shown once, never stored */
};

/* What one retention pass did. */
struct export_retention_stats {
	int expired; /* ready -> expired, artifact deleted */
	int removed; /* failed/canceled rows removed */
	int orphans; /* artifact files without a ready export */
};

const char *export_state_name(enum export_state);
/*
 * Appends Prometheus text for /metrics, read from PostgreSQL at scrape
 * time (the workers run in other processes than the fcgi children):
 * bulwark_exports{state} and the bulwark_export_duration_seconds histogram
 * (claim to ready, over every export that became ready).
 */
enum bw_err export_prom(struct db *, struct buf *out);
const char *export_category_name(enum export_category);
/* The state by name, or -1. */
int export_state_parse(const char *);

/*
 * Creates the export (state queued, token valid EXPORT_TOKEN_TTL_S), its
 * first export_events row, its job (queue "export", cap_key org, cap 3,
 * EXPORT_MAX_ATTEMPTS attempts) and the ledger event "export.created", all
 * in one transaction. BW_OK with *out, BW_EINVAL on a bad request,
 * BW_EEXISTS when request_key already made an export, or a db error.
 */
enum bw_err export_create(struct db *, const struct export_req *,
    struct export_created *out);
/*
 * The documented fields of one export of org: {"id","state",
 * "failure_count","error","error_category","manifest_hash","size",
 * "created_at","started_at","finished_at","expires_at","canceled_at",
 * "verification_count","last_verified_at","download_url",
 * "verification_url"} (new, caller puts). BW_ENOTFOUND for another org's
 * or an unknown id.
 */
enum bw_err export_get(struct db *, const char *org_id, const char *id,
    struct json_object **out);
/*
 * Cancels a queued or processing export (the worker notices between
 * files). BW_OK with *out as export_get(); BW_ESTATE in another state;
 * BW_ENOTFOUND.
 */
enum bw_err export_cancel(struct db *, const char *org_id, const char *id,
    struct json_object **out);
/*
 * For a download: *state, and when ready the artifact path relative to the
 * storage dir ("exports/<org>/<id>.<attempt>.tar") in rel (relsz bytes).
 * BW_ENOTFOUND.
 */
enum bw_err export_download(struct db *, const char *org_id, const char *id,
    enum export_state *state, char *rel, size_t relsz);
/*
 * {"queue_depth":{state:n},"avg_seconds_in_state":{state:s},
 * "failure_rate_by_category":{category:r},"window_hours":h} of org over the
 * last window_h hours (new, caller puts).
 */
enum bw_err export_metrics(struct db *, const char *org_id, int window_h,
    struct json_object **out);
/*
 * Public verification by token (the base64url text from the URL): looks
 * the export up by SHA-256 of the decoded token through a unique index,
 * answers manifest_valid from the artifact's stored check (export_seal.c:
 * a stat() of the file, no read, unless the file changed or was never
 * checked), recomputes the chain over the export's range, adds the
 * covering signed daily roots with inclusion proofs, and counts the
 * verification on the export row (verification_count; no ledger event).
 * *out is the CONTRACT.md body (new, caller puts). Unknown, malformed and
 * expired tokens all give BW_ENOTFOUND after the same work. BW_EBUSY while
 * another request checks the artifact (answer 503, retry).
 */
enum bw_err export_verify_public(struct db *, const char *storage_dir,
    const char *token, struct json_object **out);

/*
 * Runs one attempt of export job (the worker's handler): claims the export
 * (state processing), builds the artifact, renames it into place and marks
 * it ready. On failure *category classifies it, failure_count is counted,
 * the export goes back to queued (retried by the job queue) or, at the
 * EXPORT_MAX_ATTEMPTS-th failure, to failed with *permanent set. A canceled
 * export stops between files and returns BW_OK. stopping (may be NULL) is
 * polled between files; when it returns non-zero the attempt gives up with
 * BW_ETIMEOUT and is retried later. pause_ms (config export_file_pause_ms,
 * 0 = none) sleeps before each file to spread the disk load.
 */
enum bw_err export_run(struct db *, const char *storage_dir,
    const struct jobq_job *, const char	       *worker, int (*stopping)(void),
    int pause_ms, enum export_category *category, bool *permanent, char *errmsg,
    size_t errlen);
/*
 * One retention pass at now + clock_offset_s: ready exports past
 * expires_at become expired (artifact deleted, logged); failed and
 * canceled exports finished more than 7 days ago are removed; artifact
 * files under storage_dir/exports with no ready export and older than an
 * hour are deleted. Each row changes in its own statement guarded by its
 * state, so two concurrent passes never act twice. *st gets the counts.
 */
enum bw_err export_retention(struct db *, const char *storage_dir,
    int64_t clock_offset_s, struct export_retention_stats *st);

/*
 * Checks an artifact with no database: manifest.json first, every file's
 * SHA-256 against the manifest, and, when keys is not NULL (the JSON of
 * /api/v1/public/ledger-keys: an array, or an object with "keys"), every
 * daily root's signed checkpoint against those keys and every listed
 * event's inclusion proof against its day's checkpoint. *report (new,
 * caller puts) tells each check; *valid is the verdict. manifest_hash (65
 * bytes, may be NULL) gets the hex SHA-256 of manifest.json. BW_EIO when
 * the file cannot be read, BW_EINVAL when it is not an export tar.
 */
enum bw_err export_artifact_check(const char *path, struct json_object *keys,
    struct json_object **report, bool *valid, char *manifest_hash);

/*
 * The check of a stored artifact, made once and kept in its export row
 * (export_seal.c): the verdict, the SHA-256 of the whole file and its stat
 * when it was read.
 */
#define EXPORT_STAT_LEN 128
struct export_seal {
	bool valid;
	char sha256[65];	    /* the whole file's SHA-256, hex */
	char stat[EXPORT_STAT_LEN]; /* "<ino>:<size>:<mtime>:<ctime>" */
};
/* The stat text of the regular file path; BW_EIO when there is none. */
enum bw_err export_artifact_stat(const char *path, char out[EXPORT_STAT_LEN]);
/*
 * Seals the artifact at path. With sha256 NULL: valid when
 * export_artifact_check() (no keys) passes and manifest.json hashes to
 * manifest_hash. With sha256 (an earlier seal's): valid when the file is
 * still exactly those bytes. Either way out->sha256 is the file's hash and
 * out->stat its stat when opened. BW_EIO when it cannot be read; BW_ENOMEM.
 */
enum bw_err export_seal_file(const char *path, const char *manifest_hash,
    const char *sha256, struct export_seal *out);

#ifdef BW_TESTING
/* export_artifact_check() of the archive read from fd (not closed). */
enum bw_err export_check_fd(int fd, struct json_object *keys,
    struct json_object **report, bool *valid, char *manifest_hash);
#endif

#endif
