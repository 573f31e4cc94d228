/* SPDX-License-Identifier: MIT */
/*
 * The stored check of an export artifact (its "seal"): the offline check
 * (export_check.c) run once over the file in storage, the SHA-256 of the
 * whole tar, and the file's stat (inode, size, mtime, ctime) when it was
 * read, kept in the export's row (sql/0010_verify_result.sql).
 *
 * The export worker seals the artifact before it marks the export ready
 * (export_run.c). Public verification (export_verify.c) then answers from
 * the seal while stat() still gives the sealed stat: one stat() per call,
 * never a read of the file. It seals again, lazily and once, an export
 * with no seal (ready before migration 0010) or a file whose stat changed
 * (written, replaced, restored): one request claims the row
 * (check_claimed_at), the others answer BW_EBUSY until it is done. A
 * re-seal of a sealed export only asks whether the file is still the
 * sealed bytes (artifact_sha256); identical bytes pass the same check.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/sec.h"
#include "evidence/export.h"
#include "evidence/export_int.h"

/* A claim older than this is taken over (its request died). */
#define EXPORT_CLAIM_TTL "15 minutes"

/* The stat text of st: "<ino>:<size>:<mtime s.ns>:<ctime s.ns>". */
static void
export_stat_text(const struct stat *st, char out[EXPORT_STAT_LEN])
{
	snprintf(out, EXPORT_STAT_LEN, "%ju:%jd:%jd.%09ld:%jd.%09ld",
	    (uintmax_t)st->st_ino, (intmax_t)st->st_size,
	    (intmax_t)st->st_mtim.tv_sec, (long)st->st_mtim.tv_nsec,
	    (intmax_t)st->st_ctim.tv_sec, (long)st->st_ctim.tv_nsec);
}

enum bw_err
export_artifact_stat(const char *path, char out[EXPORT_STAT_LEN])
{
	struct stat st;

	if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
		return BW_EIO;
	export_stat_text(&st, out);
	return BW_OK;
}

/* The SHA-256 (hex) of everything read from fd. */
static enum bw_err
export_hash_fd(int fd, char hex[65])
{
	struct sec_sha256_ctx *sc = sec_sha256_new();
	uint8_t		       d[32];
	char		      *chunk = malloc(EXPORT_IO_CHUNK);
	ssize_t		       n;
	enum bw_err	       er = BW_OK;

	if (sc == NULL || chunk == NULL) {
		er = BW_ENOMEM;
		goto out;
	}
	for (;;) {
		n = read(fd, chunk, EXPORT_IO_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			er = BW_EIO;
			goto out;
		}
		if (n == 0)
			break;
		er = sec_sha256_update(sc, chunk, (size_t)n);
		if (er != BW_OK)
			goto out;
	}
	er = sec_sha256_final(sc, d);
	if (er == BW_OK)
		sec_hex(d, sizeof(d), hex);
out:
	free(chunk);
	sec_sha256_free(sc);
	return er;
}

enum bw_err
export_seal_file(const char *path, const char *manifest_hash,
    const char *sha256, struct export_seal *out)
{
	struct json_object *rep = NULL;
	struct stat	    st;
	char		    mh[65] = "";
	enum bw_err	    er;
	bool		    valid = false;
	int		    fd;

	memset(out, 0, sizeof(*out));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return BW_EIO;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		er = BW_EIO;
		goto out;
	}
	export_stat_text(&st, out->stat);
	if (sha256 == NULL) {
		er = export_check_fd(fd, NULL, &rep, &valid, mh);
		/*
		 * Not an export tar at all, or too short for its first
		 * header: not valid (a failing read shows in the hash).
		 */
		if (er == BW_EINVAL || er == BW_EIO)
			valid = false;
		else if (er != BW_OK)
			goto out;
		valid = valid && manifest_hash != NULL &&
		    strcmp(mh, manifest_hash) == 0;
		if (lseek(fd, 0, SEEK_SET) != 0) {
			er = BW_EIO;
			goto out;
		}
	}
	er = export_hash_fd(fd, out->sha256);
	if (er != BW_OK)
		goto out;
	if (sha256 != NULL)
		valid = strcmp(out->sha256, sha256) == 0;
	out->valid = valid;
out:
	close(fd);
	json_object_put(rep);
	return er;
}

/*
 * Claims the row for a re-seal: only when its seal still does not describe
 * stat (or there is none) and no live claim exists. *got tells.
 */
static enum bw_err
export_seal_claim(struct db *db, const struct export_seal_row *r,
    const char *st, bool *got)
{
	const char *p[3] = { r->org_id, r->id, st };
	PGresult   *res = NULL;
	enum bw_err er;

	/* clang-format off */
	er = db_execp(db, "export_seal_claim",
	    "UPDATE exports SET check_claimed_at = now()"
	    " WHERE org_id = $1::uuid AND id = $2::uuid AND state = 'ready'"
	    "  AND (artifact_valid IS NULL OR artifact_stat IS DISTINCT FROM $3)"
	    "  AND (check_claimed_at IS NULL"
	    "   OR check_claimed_at < now() - interval '" EXPORT_CLAIM_TTL "')"
	    " RETURNING id",
	    3, p, &res);
	/* clang-format on */
	if (er == BW_OK)
		*got = PQntuples(res) == 1;
	PQclear(res);
	return er;
}

/*
 * Not claimed: another request sealed it meanwhile (its seal now describes
 * stat: use it) or is sealing it (BW_EBUSY).
 */
static enum bw_err
export_seal_reread(struct db *db, const struct export_seal_row *r,
    const char *st, struct export_seal_now *out)
{
	const char *p[3] = { r->org_id, r->id, st };
	PGresult   *res = NULL;
	enum bw_err er;

	/* clang-format off */
	er = db_execp(db, "export_seal_reread",
	    "SELECT artifact_valid, artifact_sha256, " DB_TS_UTC("checked_at")
	    " FROM exports WHERE org_id = $1::uuid AND id = $2::uuid"
	    "  AND artifact_valid IS NOT NULL AND artifact_stat = $3",
	    3, p, &res);
	/* clang-format on */
	if (er != BW_OK)
		return er;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return BW_EBUSY;
	}
	out->valid = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	snprintf(out->sha256, sizeof(out->sha256), "%s", PQgetvalue(res, 0, 1));
	snprintf(out->checked_at, sizeof(out->checked_at), "%s",
	    PQgetvalue(res, 0, 2));
	PQclear(res);
	return BW_OK;
}

/*
 * Stores seal s (s NULL: only drops the claim). artifact_sha256 is set by
 * the first passing seal and never changed.
 */
static enum bw_err
export_seal_store(struct db *db, const struct export_seal_row *r,
    const struct export_seal *s, struct export_seal_now *out)
{
	const char *p[5] = { r->org_id, r->id, NULL, NULL, NULL };
	PGresult   *res = NULL;
	enum bw_err er;

	if (s == NULL)
		return db_execp(db, "export_seal_release",
		    "UPDATE exports SET check_claimed_at = NULL"
		    " WHERE org_id = $1::uuid AND id = $2::uuid",
		    2, p, NULL);
	p[2] = s->valid ? "t" : "f";
	p[3] = s->stat;
	p[4] = s->valid ? s->sha256 : NULL;
	/* clang-format off */
	er = db_execp(db, "export_seal_store",
	    "UPDATE exports SET artifact_valid = $3::bool, artifact_stat = $4,"
	    " artifact_sha256 = coalesce(artifact_sha256, $5),"
	    " checked_at = now(), check_claimed_at = NULL"
	    " WHERE org_id = $1::uuid AND id = $2::uuid"
	    " RETURNING artifact_sha256, " DB_TS_UTC("checked_at"),
	    5, p, &res);
	/* clang-format on */
	if (er == BW_OK && PQntuples(res) == 1) {
		snprintf(out->sha256, sizeof(out->sha256), "%s",
		    PQgetvalue(res, 0, 0));
		snprintf(out->checked_at, sizeof(out->checked_at), "%s",
		    PQgetvalue(res, 0, 1));
	}
	PQclear(res);
	return er;
}

/* Seals the file again under a claim: the slow path, once per change. */
static enum bw_err
export_reseal(struct db *db, const char *path, const struct export_seal_row *r,
    const char *st, struct export_seal_now *out)
{
	struct export_seal s;
	enum bw_err	   er;
	bool		   got = false;

	er = export_seal_claim(db, r, st, &got);
	if (er != BW_OK)
		return er;
	if (!got)
		return export_seal_reread(db, r, st, out);
	log_kv(LL_WARN, "export artifact check", "export_id", r->id, "reason",
	    r->valid == NULL ? "no stored result"
			     : "file changed since its check",
	    NULL);
	er = export_seal_file(path, r->manifest_hash, r->sha256, &s);
	if (er != BW_OK) {
		(void)export_seal_store(db, r, NULL, out);
		if (er != BW_EIO)
			return er;
		/* Unreadable: not valid, and nothing stored. */
		out->valid = false;
		return BW_OK;
	}
	out->valid = s.valid;
	if (!s.valid)
		log_kv(LL_ERROR, "export artifact fails its check", "export_id",
		    r->id, "sha256", s.sha256, NULL);
	return export_seal_store(db, r, &s, out);
}

enum bw_err
export_seal_current(struct db *db, const char *storage_dir,
    const struct export_seal_row *r, struct export_seal_now *out)
{
	struct buf  path;
	char	    st[EXPORT_STAT_LEN];
	enum bw_err er = BW_OK;

	memset(out, 0, sizeof(*out));
	if (r->sha256 != NULL)
		snprintf(out->sha256, sizeof(out->sha256), "%s", r->sha256);
	if (r->checked_at != NULL)
		snprintf(out->checked_at, sizeof(out->checked_at), "%s",
		    r->checked_at);
	if (r->rel == NULL || r->rel[0] == '\0')
		return BW_OK;
	buf_init(&path, PATH_MAX);
	if (buf_printf(&path, "%s/%s", storage_dir, r->rel) != BW_OK) {
		er = BW_ENOMEM;
		goto out;
	}
	/* Missing or not a file: not valid; the seal is left as it is. */
	if (export_artifact_stat(path.p, st) != BW_OK)
		goto out;
	if (r->valid != NULL && r->stat != NULL && strcmp(r->stat, st) == 0)
		out->valid = strcmp(r->valid, "t") == 0;
	else
		er = export_reseal(db, path.p, r, st, out);
out:
	buf_free(&path);
	return er;
}
