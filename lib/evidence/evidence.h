/* SPDX-License-Identifier: MIT */
/*
 * Evidence files: an upload is streamed to a temporary file under
 * <storage_dir>/evidence/tmp while it is hashed, fsync()ed, renamed to
 * <storage_dir>/evidence/<org_id>/<id>, and only then the `evidence` row
 * and its "evidence.uploaded" ledger event are inserted in one transaction.
 * A crash therefore never leaves a row without its file; files without a
 * row are swept by evidence_sweep_orphans() (the retention worker).
 */
#ifndef BW_EVIDENCE_H
#define BW_EVIDENCE_H

#include <stdint.h>

#include <json-c/json.h>

#include "core/db.h"
#include "core/err.h"

#define EVIDENCE_MAX_NAME  255 /* X-Evidence-Name, bytes */
#define EVIDENCE_MAX_CTYPE 127 /* a stored media type, bytes */

/* An upload in progress; owned by the caller until evidence_free(). */
struct evidence_upload;

/*
 * Opens a new temporary file for org under storage_dir (creating the
 * directories 0700 as needed). *out is new (evidence_free()).
 * BW_EINVAL (bad org id), BW_EIO, BW_ENOMEM.
 */
enum bw_err evidence_begin(const char *storage_dir, const char *org_id,
    struct evidence_upload **out);
/* Appends n bytes and hashes them. BW_ETOOBIG past BW_MAX_EVIDENCE,
 * BW_EIO on a write error (ENOSPC included). */
enum bw_err evidence_write(struct evidence_upload *, const void *d, size_t n);
/*
 * Ends the stream: fsync()s the file and gives its SHA-256 and size (the
 * upload's id is fixed already, see evidence_id()). BW_OK or BW_EIO.
 */
enum bw_err
evidence_finish(struct evidence_upload *, uint8_t sha256[32], int64_t *size);
/* The id the upload will get (a UUID; owned by the upload). */
const char *evidence_id(const struct evidence_upload *);
/*
 * After evidence_finish(): renames the file into place, fsync()s its
 * directory, then in one transaction inserts the row and appends the ledger
 * event "evidence.uploaded" (payload hash = the file's SHA-256). name and
 * ctype must be valid (evidence_name_ok(), evidence_ctype_ok()). *out:
 * {"id","sha256","size","ledger_seq","ledger_hash"} (new, caller puts).
 * request_key (hex SHA-256 of the Idempotency-Key, or NULL) is unique per
 * org: BW_EEXISTS when it already made an evidence row.
 * When the transaction fails the file is left for the orphan sweep.
 */
enum bw_err
evidence_commit(struct db *, struct evidence_upload *, const char *name,
    const char *ctype, const char *request_key, struct json_object **out);
/* Removes what is left of an uncommitted upload and frees it; NULL is
 * fine. A committed upload's file stays. */
void evidence_free(struct evidence_upload *);

/* 1 for a display name of 1..255 bytes of valid UTF-8 without control
 * characters. */
int evidence_name_ok(const char *);
/* 1 for a sane media type "type/subtype[; params]" of printable ASCII,
 * at most EVIDENCE_MAX_CTYPE bytes. */
int evidence_ctype_ok(const char *);

/*
 * One evidence row of org: {"id","name","content_type","size","sha256",
 * "ledger_seq","path" (absolute, under storage_dir),"created_at"}
 * (new, caller puts). BW_ENOTFOUND when org has no such id.
 */
enum bw_err evidence_get(struct db *, const char *storage_dir,
    const char *org_id, const char *id, struct json_object **out);
/*
 * The evidence rows of org created in [from, to) (RFC 3339 timestamps;
 * NULL = unbounded), ordered by ledger_seq, at most max rows; each as
 * evidence_get() gives it. *out: new array (caller puts). BW_ETOOBIG when
 * more than max rows match.
 */
enum bw_err
evidence_list(struct db *, const char *storage_dir, const char *org_id,
    const char *from, const char *to, int max, struct json_object **out);
/*
 * Removes temporary files older than older_than_s, and stored files older
 * than that which have no row (a crash between rename and commit). *n gets
 * the number of files removed. Safe to run on several hosts at once.
 */
enum bw_err evidence_sweep_orphans(struct db *, const char *storage_dir,
    int64_t older_than_s, int *n);

#endif
