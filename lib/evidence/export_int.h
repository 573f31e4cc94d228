/* SPDX-License-Identifier: MIT */
/*
 * What the files of the export module share and nobody else sees:
 * export.c (the table and its state machine), export_run.c (one attempt
 * of the worker), export_build.c (writing the artifact), export_check.c
 * (the offline check), export_seal.c (the artifact's stored check),
 * export_verify.c (public verification) and export_retention.c.
 */
#ifndef BW_EXPORT_INT_H
#define BW_EXPORT_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "core/db.h"
#include "core/err.h"
#include "evidence/export.h"

/*
 * When a ready export is due for retention: fin (its finished_at) plus the
 * retention days of tier, the org's tier at the time the statement runs
 * (never a value frozen at ready), from the tier table org_tier_arrays()
 * renders, passed as parameters $names (text[]) and $days (int[]); a tier
 * not in the table gets the first (default) tier's days.
 */
#define EXPORT_DUE_AT(fin, tier, names, days)                            \
	"(" fin " + make_interval(days => coalesce((SELECT t.days FROM"  \
	" unnest($" names "::text[], $" days "::int[]) AS t(tier, days)" \
	" WHERE t.tier = " tier "), ($" days "::int[])[1])))"

#define EXPORT_IO_CHUNK	      65536
#define EXPORT_MAX_MANIFEST   (16 * 1024 * 1024) /* manifest.json */
#define EXPORT_MANIFEST_DEPTH 16
#define EXPORT_FORMAT	      "bulwark-export/1"

/* --- export.c: the table ------------------------------------------------- */

/* SHA-256 of "a:b:c" (the payload hash of a ledger event about an export). */
void export_payload_hash(const char *a, const char *b, const char *c,
    uint8_t out[32]);
/*
 * Records a state change inside the caller's transaction: the
 * export_events row (with category for a failed attempt, worker may be
 * NULL) and the ledger event "export.state". Returns a db or ledger error.
 */
enum bw_err export_event_tx(struct db *, const char *org_id, const char *id,
    const char *state, const char *category, const char *worker);
/* 1 when the export was canceled meanwhile or is gone; 0 when not known. */
int export_canceled(struct db *, const char *org_id, const char *id);
/* A text column as a JSON string, or NULL (JSON null) for SQL NULL. */
struct json_object *export_jstr(const PGresult *, int row, int col);
/* Removes the artifact at storage_dir/rel (rel may be NULL or empty). */
void export_unlink_rel(const char *storage_dir, const char *rel);

/* --- export_build.c: one attempt's artifact ------------------------------- */

/* A failure of an attempt: category and message. */
struct export_fail {
	enum export_category cat;
	bool		     permanent;
	char		     msg[256];
};

/* State of one attempt, shared by its transactions and the build. */
struct export_attempt {
	const char *org_id;
	const char *id;
	const char *token; /* the job's lease token */
	const char *worker;
	/* claim */
	int   state;   /* found in the row */
	int   attempt; /* exports.attempt this claim set: names the files */
	char *ids;     /* evidence_ids text or NULL */
	char *from, *to;
	/* finish */
	char	manifest_hash[65];
	char	rel[256];
	int64_t size, first, last, nfiles;
	int	retention_days;
	int	done; /* the update matched */
	/* the artifact's check (export_seal.c), stored with ready */
	struct export_seal seal;
	/* failure */
	const struct export_fail *fail;
	int			  final; /* failed for good */
};

/* The category of a failed library call: database for PostgreSQL trouble. */
enum export_category export_db_category(enum bw_err);
/* Records the first failure of an attempt in f; returns er. */
enum bw_err
export_failf(struct export_fail *f, enum export_category cat, bool perm,
    enum bw_err er, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/*
 * The body of one attempt after the claim: load the evidence, verify the
 * chain, get the roots, write the tar to a temporary name, fsync, rename.
 * Both names carry a->attempt (".<id>.<attempt>.tar.tmp", then
 * "<id>.<attempt>.tar"), so no two attempts ever write or rename onto the
 * same file; the ready row names the winner's (export_run.c's fence).
 * On success a->manifest_hash, size, rel, first, last, nfiles are set;
 * *canceled when the export was canceled meanwhile (BW_OK, nothing left
 * on disk). On failure fl tells why.
 */
enum bw_err export_build(struct db *, const char *storage_dir,
    struct export_attempt *a, int (*stopping)(void), int pause_ms,
    bool *canceled, struct export_fail *fl);

/* --- export_check.c ------------------------------------------------------- */

/* export_artifact_check() of the archive read from fd (not closed). */
enum bw_err export_check_fd(int fd, struct json_object *keys,
    struct json_object **report, bool *valid, char *manifest_hash);

/* --- export_seal.c: the artifact's stored check --------------------------- */

/* An export row's seal columns (text as libpq gives them; NULL for NULL). */
struct export_seal_row {
	const char *org_id;
	const char *id;
	const char *rel; /* artifact_path */
	const char *manifest_hash;
	const char *valid;	/* artifact_valid: "t", "f" or NULL */
	const char *sha256;	/* artifact_sha256 */
	const char *stat;	/* artifact_stat */
	const char *checked_at; /* RFC 3339 */
};

/* What a public verification says about the artifact now. */
struct export_seal_now {
	bool valid;
	char sha256[65];     /* "" when never sealed valid */
	char checked_at[40]; /* "" when never checked */
};

/*
 * The verdict on a ready export's artifact now: the stored seal while
 * stat() gives its stat; not valid when the file is missing; otherwise the
 * file is sealed again here, once, under a claim on the row (BW_EBUSY
 * while another request holds it). Db errors, BW_ENOMEM.
 */
enum bw_err export_seal_current(struct db *, const char	   *storage_dir,
    const struct export_seal_row *, struct export_seal_now *out);

#endif
