/* SPDX-License-Identifier: MIT */
/*
 * Evidence files (table `evidence`): streamed uploads written to a
 * temporary file and hashed on the way, made durable (fsync of the file
 * and of both directories) and renamed into place before the row and the
 * ledger event are inserted in one transaction; lookups for exports; and
 * the sweep of files a crash or a failed transaction left without a row.
 *
 * Layout under storage_dir:
 *	evidence/tmp/<org_id>.<id>.part	an upload in progress
 *	evidence/<org_id>/<id>		a stored file (the row's storage_path)
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "evidence/evidence.h"
#include "core/jv.h"
#include "evidence/ledger.h"
#include "core/limits.h"
#include "core/log.h"
#include "core/sec.h"

struct evidence_upload {
	char		       dir[PATH_MAX]; /* storage_dir */
	char		       org[37];
	char		       id[37];
	char		       tmp[PATH_MAX];
	char		       rel[128]; /* evidence/<org>/<id> */
	int		       fd;
	struct sec_sha256_ctx *sha;
	int64_t		       size;
	uint8_t		       digest[32];
	int		       finished;
	int		       renamed;
	int		       committed;
};

/* mkdir that accepts an existing directory. BW_OK or BW_EIO. */
static enum bw_err
evidence_mkdir(const char *path)
{
	if (mkdir(path, 0700) == 0 || errno == EEXIST)
		return BW_OK;
	log_kv(LL_ERROR, "evidence mkdir failed", "path", path, "error",
	    strerror(errno), NULL);
	return BW_EIO;
}

/* fsync()s a directory so that a rename in it is durable. */
static enum bw_err
evidence_fsync_dir(const char *path)
{
	int	    fd;
	enum bw_err er = BW_OK;

	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return BW_EIO;
	if (fsync(fd) != 0)
		er = BW_EIO;
	close(fd);
	return er;
}

/* Formats into a path buffer; BW_ETOOBIG when it does not fit. */
static enum bw_err evidence_path(char *out, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum bw_err
evidence_path(char *out, size_t n, const char *fmt, ...)
{
	va_list ap;
	int	r;

	va_start(ap, fmt);
	r = vsnprintf(out, n, fmt, ap);
	va_end(ap);
	return r < 0 || (size_t)r >= n ? BW_ETOOBIG : BW_OK;
}

/* Opens the temporary file of a new upload (see evidence.h). */
enum bw_err
evidence_begin(const char *storage_dir, const char *org_id,
    struct evidence_upload **out)
{
	struct evidence_upload *u;
	char			p[PATH_MAX];
	enum bw_err		er;

	if (storage_dir == NULL || *storage_dir == '\0' ||
	    !jv_is_uuid_lc(org_id) || out == NULL)
		return BW_EINVAL;
	u = calloc(1, sizeof(*u));
	if (u == NULL)
		return BW_ENOMEM;
	u->fd = -1;
	snprintf(u->org, sizeof(u->org), "%s", org_id);
	er = evidence_path(u->dir, sizeof(u->dir), "%s", storage_dir);
	if (er != BW_OK)
		goto out;
	er = sec_uuid(u->id);
	if (er != BW_OK)
		goto out;
	u->sha = sec_sha256_new();
	if (u->sha == NULL) {
		er = BW_ENOMEM;
		goto out;
	}
	/* The directories, created on first use. */
	if ((er = evidence_mkdir(u->dir)) != BW_OK ||
	    (er = evidence_path(p, sizeof(p), "%s/evidence", u->dir)) !=
		BW_OK ||
	    (er = evidence_mkdir(p)) != BW_OK ||
	    (er = evidence_path(p, sizeof(p), "%s/evidence/tmp", u->dir)) !=
		BW_OK ||
	    (er = evidence_mkdir(p)) != BW_OK ||
	    (er = evidence_path(p, sizeof(p), "%s/evidence/%s", u->dir,
		 u->org)) != BW_OK ||
	    (er = evidence_mkdir(p)) != BW_OK)
		goto out;
	er = evidence_path(u->tmp, sizeof(u->tmp), "%s/evidence/tmp/%s.%s.part",
	    u->dir, u->org, u->id);
	if (er != BW_OK)
		goto out;
	snprintf(u->rel, sizeof(u->rel), "evidence/%s/%s", u->org, u->id);
	u->fd = open(u->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (u->fd < 0) {
		log_kv(LL_ERROR, "evidence temp file", "path", u->tmp, "error",
		    strerror(errno), NULL);
		er = BW_EIO;
		goto out;
	}
	*out = u;
	u = NULL;
out:
	evidence_free(u);
	return er;
}

/* Writes and hashes n bytes (see evidence.h). */
enum bw_err
evidence_write(struct evidence_upload *u, const void *d, size_t n)
{
	const char *p = d;
	ssize_t	    w;
	size_t	    off = 0;
	enum bw_err er;

	if (u == NULL || u->fd < 0 || u->finished)
		return BW_EINVAL;
	if (n > (size_t)BW_MAX_EVIDENCE ||
	    u->size + (int64_t)n > (int64_t)BW_MAX_EVIDENCE)
		return BW_ETOOBIG;
	er = sec_sha256_update(u->sha, d, n);
	if (er != BW_OK)
		return er;
	while (off < n) {
		w = write(u->fd, p + off, n - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			log_kv(LL_ERROR, "evidence write failed", "path",
			    u->tmp, "error", strerror(errno), NULL);
			return BW_EIO;
		}
		off += (size_t)w;
	}
	u->size += (int64_t)n;
	return BW_OK;
}

/* fsync()s the file and gives its digest and size (see evidence.h). */
enum bw_err
evidence_finish(struct evidence_upload *u, uint8_t sha256[32], int64_t *size)
{
	enum bw_err er;

	if (u == NULL || u->fd < 0 || sha256 == NULL || size == NULL)
		return BW_EINVAL;
	if (!u->finished) {
		er = sec_sha256_final(u->sha, u->digest);
		if (er != BW_OK)
			return er;
		if (fsync(u->fd) != 0) {
			log_kv(LL_ERROR, "evidence fsync failed", "path",
			    u->tmp, "error", strerror(errno), NULL);
			return BW_EIO;
		}
		u->finished = 1;
	}
	memcpy(sha256, u->digest, 32);
	*size = u->size;
	return BW_OK;
}

const char *
evidence_id(const struct evidence_upload *u)
{
	return u->id;
}

static const char evidence_sql_insert[] =
    "INSERT INTO evidence (org_id, id, name, content_type, size, sha256, "
    "ledger_seq, storage_path, request_key) VALUES ($1, $2, $3, $4, $5, "
    "decode($6, 'hex'), $7, $8, $9)";

/* The transaction of evidence_commit(). */
struct evidence_tx {
	struct evidence_upload *u;
	const char	       *name;
	const char	       *ctype;
	const char	       *request_key;
	struct ledger_entry	le;
};

static enum bw_err
evidence_commit_tx(struct db *db, void *arg)
{
	struct evidence_tx     *t = arg;
	struct evidence_upload *u = t->u;
	const char	       *p[9];
	char			sz[24], seq[24], hx[65];
	enum bw_err		er;

	er = ledger_append_tx(db, u->org, "evidence.uploaded", u->digest,
	    &t->le);
	if (er != BW_OK)
		return er;
	snprintf(sz, sizeof(sz), "%lld", (long long)u->size);
	snprintf(seq, sizeof(seq), "%lld", (long long)t->le.seq);
	sec_hex(u->digest, 32, hx);
	p[0] = u->org;
	p[1] = u->id;
	p[2] = t->name;
	p[3] = t->ctype;
	p[4] = sz;
	p[5] = hx;
	p[6] = seq;
	p[7] = u->rel;
	p[8] = t->request_key;
	return db_execp(db, "evidence_insert", evidence_sql_insert, 9, p, NULL);
}

/*
 * Renames the finished file into place, makes that durable, then inserts
 * the row and the ledger event in one transaction (see evidence.h). When
 * the transaction fails the stored file is left for the orphan sweep: the
 * outcome of a failed COMMIT is unknown, and removing the file of a row
 * that did commit would break the one invariant that matters.
 */
enum bw_err
evidence_commit(struct db *db, struct evidence_upload *u, const char *name,
    const char *ctype, const char *request_key, struct json_object **out)
{
	struct evidence_tx  t;
	struct json_object *o;
	char		    dst[PATH_MAX], d1[PATH_MAX], d2[PATH_MAX];
	char		    hx[65];
	enum bw_err	    er;

	if (db == NULL || u == NULL || !u->finished || u->renamed ||
	    u->size < 1 || !evidence_name_ok(name) ||
	    !evidence_ctype_ok(ctype) || out == NULL ||
	    (request_key != NULL && strlen(request_key) != 64))
		return BW_EINVAL;
	if ((er = evidence_path(dst, sizeof(dst), "%s/%s", u->dir, u->rel)) !=
		BW_OK ||
	    (er = evidence_path(d1, sizeof(d1), "%s/evidence/%s", u->dir,
		 u->org)) != BW_OK ||
	    (er = evidence_path(d2, sizeof(d2), "%s/evidence/tmp", u->dir)) !=
		BW_OK)
		return er;
	if (rename(u->tmp, dst) != 0) {
		log_kv(LL_ERROR, "evidence rename failed", "path", dst, "error",
		    strerror(errno), NULL);
		return BW_EIO;
	}
	u->renamed = 1;
	if ((er = evidence_fsync_dir(d1)) != BW_OK ||
	    (er = evidence_fsync_dir(d2)) != BW_OK) {
		log_kv(LL_ERROR, "evidence directory fsync failed", "path", d1,
		    NULL);
		return er;
	}
	memset(&t, 0, sizeof(t));
	t.u = u;
	t.name = name;
	t.ctype = ctype;
	t.request_key = request_key;
	er = db_tx(db, false, evidence_commit_tx, &t);
	if (er != BW_OK)
		return er;
	u->committed = 1;
	sec_hex(u->digest, 32, hx);
	o = json_object_new_object();
	json_object_object_add(o, "id", json_object_new_string(u->id));
	json_object_object_add(o, "sha256", json_object_new_string(hx));
	json_object_object_add(o, "size", json_object_new_int64(u->size));
	json_object_object_add(o, "ledger_seq",
	    json_object_new_int64(t.le.seq));
	json_object_object_add(o, "ledger_hash",
	    json_object_new_string(t.le.hash_hex));
	*out = o;
	return BW_OK;
}

/* Frees u; removes its temporary file when it was never renamed. */
void
evidence_free(struct evidence_upload *u)
{
	if (u == NULL)
		return;
	if (u->fd >= 0)
		close(u->fd);
	if (!u->renamed && u->tmp[0] != '\0')
		unlink(u->tmp);
	sec_sha256_free(u->sha);
	free(u);
}

/* Length of the UTF-8 sequence at s (n bytes left), 0 when invalid. */
static size_t
evidence_utf8(const unsigned char *s, size_t n, uint32_t *cp)
{
	size_t	 len, i;
	uint32_t c;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		c = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		c = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		c = s[0] & 0x07;
	} else
		return 0;
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3f);
	}
	/* Overlong forms, surrogates, past U+10FFFF. */
	if ((len == 3 && c < 0x800) || (len == 4 && c < 0x10000) ||
	    (c >= 0xd800 && c <= 0xdfff) || c > 0x10ffff)
		return 0;
	*cp = c;
	return len;
}

int
evidence_name_ok(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t		     n, i = 0, l;
	uint32_t	     cp;

	if (s == NULL)
		return 0;
	n = strlen(s);
	if (n < 1 || n > EVIDENCE_MAX_NAME)
		return 0;
	while (i < n) {
		l = evidence_utf8(p + i, n - i, &cp);
		if (l == 0 || cp < 0x20 || cp == 0x7f ||
		    (cp >= 0x80 && cp <= 0x9f) || cp == 0x2028 || cp == 0x2029)
			return 0;
		i += l;
	}
	return 1;
}

/* RFC 9110 §5.6.2 tchar. */
static int
evidence_tchar(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') ||
	    (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

int
evidence_ctype_ok(const char *s)
{
	size_t i = 0, n, t;

	if (s == NULL)
		return 0;
	n = strlen(s);
	if (n < 3 || n > EVIDENCE_MAX_CTYPE)
		return 0;
	for (t = i; i < n && evidence_tchar(s[i]); i++)
		;
	if (i == t || i >= n || s[i] != '/')
		return 0;
	for (t = ++i; i < n && evidence_tchar(s[i]); i++)
		;
	if (i == t)
		return 0;
	/* Parameters: printable ASCII after a ';'. */
	if (i < n && s[i] != ';' && s[i] != ' ')
		return 0;
	for (; i < n; i++)
		if (s[i] < 0x20 || s[i] > 0x7e)
			return 0;
	return 1;
}

/* clang-format off */
#define EVIDENCE_SQL_COLS \
	"SELECT e.id, e.name, e.content_type, e.size, encode(e.sha256, 'hex')," \
	" e.ledger_seq, e.storage_path, " DB_TS_UTC_US("e.created_at") "," \
	" encode(l.hash, 'hex')" \
	" FROM evidence e LEFT JOIN ledger_events l ON l.org_id = e.org_id" \
	" AND l.seq = e.ledger_seq "
/* clang-format on */
static const char evidence_sql_get[] =
    EVIDENCE_SQL_COLS "WHERE e.org_id = $1 AND e.id = $2";
static const char evidence_sql_list[] =
    EVIDENCE_SQL_COLS "WHERE e.org_id = $1 AND ($2::timestamptz IS NULL OR "
		      "e.created_at >= $2) AND ($3::timestamptz IS NULL OR "
		      "e.created_at < $3) ORDER BY e.ledger_seq LIMIT $4";

/* Row i of an EVIDENCE_SQL_COLS result as JSON (new). */
static struct json_object *
evidence_row(PGresult *res, int i, const char *storage_dir)
{
	struct json_object *o = json_object_new_object();
	char		    path[PATH_MAX];

	json_object_object_add(o, "id",
	    json_object_new_string(PQgetvalue(res, i, 0)));
	json_object_object_add(o, "name",
	    json_object_new_string(PQgetvalue(res, i, 1)));
	json_object_object_add(o, "content_type",
	    json_object_new_string(PQgetvalue(res, i, 2)));
	json_object_object_add(o, "size",
	    json_object_new_int64(db_col_i64_or(res, i, 3, 0)));
	json_object_object_add(o, "sha256",
	    json_object_new_string(PQgetvalue(res, i, 4)));
	json_object_object_add(o, "ledger_seq",
	    json_object_new_int64(db_col_i64_or(res, i, 5, 0)));
	snprintf(path, sizeof(path), "%s/%s", storage_dir,
	    PQgetvalue(res, i, 6));
	json_object_object_add(o, "path", json_object_new_string(path));
	json_object_object_add(o, "created_at",
	    json_object_new_string(PQgetvalue(res, i, 7)));
	json_object_object_add(o, "ledger_hash",
	    json_object_new_string(PQgetvalue(res, i, 8)));
	return o;
}

/* One row of org (see evidence.h). */
enum bw_err
evidence_get(struct db *db, const char *storage_dir, const char *org_id,
    const char *id, struct json_object **out)
{
	PGresult   *res = NULL;
	const char *p[2];
	enum bw_err er;

	if (db == NULL || storage_dir == NULL || !jv_is_uuid_lc(org_id) ||
	    out == NULL)
		return BW_EINVAL;
	if (!jv_is_uuid_lc(id))
		return BW_ENOTFOUND;
	p[0] = org_id;
	p[1] = id;
	er = db_execp(db, "evidence_get", evidence_sql_get, 2, p, &res);
	if (er != BW_OK)
		return er;
	if (PQntuples(res) != 1)
		er = BW_ENOTFOUND;
	else
		*out = evidence_row(res, 0, storage_dir);
	PQclear(res);
	return er;
}

/* Rows of org in a time range (see evidence.h). */
enum bw_err
evidence_list(struct db *db, const char *storage_dir, const char *org_id,
    const char *from, const char *to, int max, struct json_object **out)
{
	PGresult	   *res = NULL;
	struct json_object *arr;
	const char	   *p[4];
	char		    lim[16];
	int		    i;
	enum bw_err	    er;

	if (db == NULL || storage_dir == NULL || !jv_is_uuid_lc(org_id) ||
	    max < 1 || out == NULL)
		return BW_EINVAL;
	snprintf(lim, sizeof(lim), "%d", max + 1);
	p[0] = org_id;
	p[1] = from;
	p[2] = to;
	p[3] = lim;
	er = db_execp(db, "evidence_list", evidence_sql_list, 4, p, &res);
	if (er != BW_OK)
		return er;
	if (PQntuples(res) > max) {
		PQclear(res);
		return BW_ETOOBIG;
	}
	arr = json_object_new_array();
	for (i = 0; i < PQntuples(res); i++)
		json_object_array_add(arr, evidence_row(res, i, storage_dir));
	PQclear(res);
	*out = arr;
	return BW_OK;
}

/* 1 when path is a regular file last modified before cutoff. */
static int
evidence_old(const char *path, time_t cutoff)
{
	struct stat st;

	if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode))
		return 0;
	return st.st_mtime < cutoff;
}

/* Removes path, counting it; a file already gone is fine. */
static void
evidence_remove(const char *path, const char *why, int *n)
{
	if (unlink(path) == 0) {
		(*n)++;
		log_kv(LL_INFO, "evidence orphan removed", "path", path, "why",
		    why, NULL);
	} else if (errno != ENOENT)
		log_kv(LL_WARN, "evidence orphan not removed", "path", path,
		    "error", strerror(errno), NULL);
}

/* Sweeps one org directory: stored files without a row. */
static enum bw_err
evidence_sweep_org(struct db *db, const char *base, const char *org,
    time_t cutoff, int *n)
{
	DIR	      *d;
	struct dirent *de;
	PGresult      *res = NULL;
	char	       dir[PATH_MAX], path[PATH_MAX];
	const char    *p[2];
	enum bw_err    er = BW_OK;

	if (evidence_path(dir, sizeof(dir), "%s/%s", base, org) != BW_OK)
		return BW_OK;
	d = opendir(dir);
	if (d == NULL)
		return BW_OK;
	while ((de = readdir(d)) != NULL) {
		if (!jv_is_uuid_lc(de->d_name))
			continue;
		if (evidence_path(path, sizeof(path), "%s/%s", dir,
			de->d_name) != BW_OK ||
		    !evidence_old(path, cutoff))
			continue;
		p[0] = org;
		p[1] = de->d_name;
		er = db_execp(db, "evidence_exists",
		    "SELECT 1 FROM evidence "
		    "WHERE org_id = $1 AND id = $2",
		    2, p, &res);
		if (er != BW_OK)
			break;
		if (PQntuples(res) == 0)
			evidence_remove(path, "no row", n);
		PQclear(res);
		res = NULL;
	}
	closedir(d);
	return er;
}

/* Removes old temporary files and stored files without a row. */
enum bw_err
evidence_sweep_orphans(struct db *db, const char *storage_dir,
    int64_t older_than_s, int *n)
{
	DIR	      *d;
	struct dirent *de;
	char	       base[PATH_MAX], path[PATH_MAX];
	time_t	       cutoff;
	int	       count = 0;
	enum bw_err    er = BW_OK;

	if (db == NULL || storage_dir == NULL || older_than_s < 0 || n == NULL)
		return BW_EINVAL;
	cutoff = time(NULL) - (time_t)older_than_s;
	if (evidence_path(base, sizeof(base), "%s/evidence", storage_dir) !=
	    BW_OK)
		return BW_EINVAL;
	/* Interrupted uploads. */
	if (evidence_path(path, sizeof(path), "%s/tmp", base) == BW_OK &&
	    (d = opendir(path)) != NULL) {
		while ((de = readdir(d)) != NULL) {
			char f[PATH_MAX];

			if (de->d_name[0] == '.')
				continue;
			if (evidence_path(f, sizeof(f), "%s/%s", path,
				de->d_name) != BW_OK ||
			    !evidence_old(f, cutoff))
				continue;
			evidence_remove(f, "interrupted upload", &count);
		}
		closedir(d);
	}
	/* Files renamed into place whose transaction never committed. */
	d = opendir(base);
	if (d != NULL) {
		while ((de = readdir(d)) != NULL) {
			if (!jv_is_uuid_lc(de->d_name))
				continue;
			er = evidence_sweep_org(db, base, de->d_name, cutoff,
			    &count);
			if (er != BW_OK)
				break;
		}
		closedir(d);
	}
	*n = count;
	return er;
}
