/* SPDX-License-Identifier: MIT */
/*
 * Writing an export artifact, the build step of one attempt
 * (export_run.c calls export_build): load the evidence, check the ledger
 * chain over it, fetch the covering signed roots and the events' stored
 * fields, render manifest.json, and write the deterministic ustar
 * (tar.c) to a temporary name, fsync, rename into place. Both names carry
 * the attempt number (exports.attempt, set by the claim):
 * exports/<org>/.<id>.<attempt>.tar.tmp, then exports/<org>/<id>.<attempt>.tar,
 * so two attempts of one export never share a file (export_run.c).
 *
 * The artifact:
 *   manifest.json        first; the hash of this member is manifest_hash
 *   evidence/<id>        one member per evidence file, in ledger_seq order
 *   two zero blocks
 * The manifest is rendered with keys in a fixed order and every tar
 * header is the same but for name and size, so the same inputs always
 * give the same bytes.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/jv.h"
#include "core/log.h"
#include "core/sec.h"
#include "evidence/evidence.h"
#include "evidence/export.h"
#include "evidence/export_int.h"
#include "evidence/ledger.h"
#include "evidence/tar.h"

/* One evidence file of an export, from evidence_get()/evidence_list(). */
struct export_file {
	struct json_object *ev; /* borrowed from the list */
	const char	   *id;
	const char	   *path;
	const char	   *sha256; /* hex */
	int64_t		    size;
	int64_t		    seq;
};

enum export_category
export_db_category(enum bw_err er)
{
	return er == BW_EDB || er == BW_ERETRY || er == BW_EAMBIG ? EC_DATABASE
								  : EC_INTERNAL;
}

enum bw_err
export_failf(struct export_fail *f, enum export_category cat, bool perm,
    enum bw_err er, const char *fmt, ...)
{
	va_list ap;

	if (f->msg[0] != '\0')
		return er;
	f->cat = cat;
	f->permanent = perm;
	va_start(ap, fmt);
	vsnprintf(f->msg, sizeof(f->msg), fmt, ap);
	va_end(ap);
	return er;
}

/*
 * Builds manifest.json text (keys in a fixed order; one trailing newline)
 * into out from the files, the chain check and the covering roots. Only
 * the proofs of the exported events are kept. BW_ENOMEM or BW_OK.
 */
static enum bw_err
export_manifest(const char *org_id, struct export_file *files, size_t n,
    struct json_object *chain, struct json_object *roots,
    struct json_object *events, struct buf *out)
{
	struct json_object *m, *arr, *e, *r, *rarr, *pr, *keep, *p;
	const char	   *s;
	size_t		    i, j, k, np;
	enum bw_err	    er;

	m = json_object_new_object();
	json_object_object_add(m, "format",
	    json_object_new_string(EXPORT_FORMAT));
	json_object_object_add(m, "org_id", json_object_new_string(org_id));
	arr = json_object_new_array();
	for (i = 0; i < n; i++) {
		e = json_object_new_object();
		json_object_object_add(e, "id",
		    json_object_new_string(files[i].id));
		json_object_object_add(e, "name",
		    json_object_get(
			json_object_object_get(files[i].ev, "name")));
		json_object_object_add(e, "content_type",
		    json_object_get(
			json_object_object_get(files[i].ev, "content_type")));
		json_object_object_add(e, "size",
		    json_object_new_int64(files[i].size));
		json_object_object_add(e, "sha256",
		    json_object_new_string(files[i].sha256));
		json_object_object_add(e, "ledger_seq",
		    json_object_new_int64(files[i].seq));
		{
			char fn[64], key[24];

			snprintf(fn, sizeof(fn), "evidence/%s", files[i].id);
			json_object_object_add(e, "file",
			    json_object_new_string(fn));
			snprintf(key, sizeof(key), "%" PRId64, files[i].seq);
			json_object_object_add(e, "ledger_event",
			    json_object_get(
				json_object_object_get(events, key)));
		}
		json_object_array_add(arr, e);
	}
	json_object_object_add(m, "evidence", arr);
	json_object_object_add(m, "chain", json_object_get(chain));
	rarr = json_object_new_array();
	for (i = 0; roots != NULL && i < json_object_array_length(roots); i++) {
		r = json_object_array_get_idx(roots, i);
		e = json_object_new_object();
		json_object_object_foreach(r, key, val)
		{
			if (strcmp(key, "proofs") != 0)
				json_object_object_add(e, key,
				    json_object_get(val));
		}
		keep = json_object_new_array();
		pr = json_object_object_get(r, "proofs");
		np = pr != NULL ? json_object_array_length(pr) : 0;
		for (j = 0; j < np; j++) {
			int64_t seq;

			p = json_object_array_get_idx(pr, j);
			seq = json_object_get_int64(
			    json_object_object_get(p, "seq"));
			for (k = 0; k < n; k++)
				if (files[k].seq == seq)
					break;
			if (k < n)
				json_object_array_add(keep, json_object_get(p));
		}
		json_object_object_add(e, "proofs", keep);
		json_object_array_add(rarr, e);
	}
	json_object_object_add(m, "ledger_roots", rarr);
	s = json_object_to_json_string_ext(m,
	    JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_PRETTY |
		JSON_C_TO_STRING_NOSLASHESCAPE);
	er = s == NULL ? BW_ENOMEM : buf_addstr(out, s);
	if (er == BW_OK)
		er = buf_addc(out, '\n');
	json_object_put(m);
	return er;
}

/* Copies one evidence file into the tar, checking size and hash. */
static enum bw_err
export_copy_file(int out, const struct export_file *f, struct export_fail *fl)
{
	char		       name[64], hex[65];
	struct sec_sha256_ctx *sc = NULL;
	struct stat	       st;
	uint8_t		       d[32];
	char		      *chunk = NULL;
	ssize_t		       r;
	uint64_t	       done = 0;
	enum bw_err	       er;
	int		       fd;

	fd = open(f->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return export_failf(fl, EC_STORAGE, false, BW_EIO,
		    "evidence %s: cannot open its file: %s", f->id,
		    strerror(errno));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    st.st_size != f->size) {
		er = export_failf(fl, EC_STORAGE, false, BW_EIO,
		    "evidence %s: stored file has the wrong size", f->id);
		goto out;
	}
	snprintf(name, sizeof(name), "evidence/%s", f->id);
	er = tar_write_header(out, name, (uint64_t)f->size);
	if (er != BW_OK) {
		er = export_failf(fl, EC_STORAGE, false, BW_EIO,
		    "writing the artifact: %s", strerror(errno));
		goto out;
	}
	sc = sec_sha256_new();
	chunk = malloc(EXPORT_IO_CHUNK);
	if (sc == NULL || chunk == NULL) {
		er = export_failf(fl, EC_INTERNAL, false, BW_ENOMEM,
		    "out of memory");
		goto out;
	}
	for (;;) {
		r = read(fd, chunk, EXPORT_IO_CHUNK);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			er = export_failf(fl, EC_STORAGE, false, BW_EIO,
			    "evidence %s: read: %s", f->id, strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		done += (uint64_t)r;
		if (done > (uint64_t)f->size) {
			er = export_failf(fl, EC_STORAGE, false, BW_EIO,
			    "evidence %s: file grew while read", f->id);
			goto out;
		}
		if (sec_sha256_update(sc, chunk, (size_t)r) != BW_OK) {
			er = export_failf(fl, EC_INTERNAL, false, BW_ECRYPTO,
			    "sha256 failed");
			goto out;
		}
		er = tar_write(out, chunk, (size_t)r);
		if (er != BW_OK) {
			er = export_failf(fl, EC_STORAGE, false, BW_EIO,
			    "writing the artifact: %s", strerror(errno));
			goto out;
		}
	}
	if (done != (uint64_t)f->size || sec_sha256_final(sc, d) != BW_OK) {
		er = export_failf(fl, EC_STORAGE, false, BW_EIO,
		    "evidence %s: short read", f->id);
		goto out;
	}
	sec_hex(d, sizeof(d), hex);
	if (strcmp(hex, f->sha256) != 0) {
		/* The stored bytes are not what the ledger recorded. */
		er = export_failf(fl, EC_VALIDATION, true, BW_EINVAL,
		    "evidence %s: stored file does not match its sha256",
		    f->id);
		goto out;
	}
	er = tar_write_pad(out, (uint64_t)f->size);
	if (er != BW_OK)
		er = export_failf(fl, EC_STORAGE, false, BW_EIO,
		    "writing the artifact: %s", strerror(errno));
out:
	free(chunk);
	sec_sha256_free(sc);
	close(fd);
	return er;
}

/* mkdir -p of storage_dir/exports/<org>, mode 0750. */
static enum bw_err
export_mkdirs(const char *storage_dir, const char *org_id, struct buf *dir)
{
	if (buf_printf(dir, "%s/exports", storage_dir) != BW_OK)
		return BW_ENOMEM;
	if (mkdir(dir->p, 0750) != 0 && errno != EEXIST)
		return BW_EIO;
	if (buf_printf(dir, "/%s", org_id) != BW_OK)
		return BW_ENOMEM;
	if (mkdir(dir->p, 0750) != 0 && errno != EEXIST)
		return BW_EIO;
	return BW_OK;
}

/* fsync() of a directory (the rename's entry). */
static enum bw_err
export_sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc;

	if (fd < 0)
		return BW_EIO;
	rc = fsync(fd);
	close(fd);
	return rc == 0 ? BW_OK : BW_EIO;
}

/*
 * Loads the evidence of the export into *list (new array) and files
 * (n entries, malloc'd). Failures are recorded in fl.
 */
static enum bw_err
export_load_files(struct db *db, const char *storage_dir,
    struct export_attempt *a, struct json_object **list,
    struct export_file **files, size_t *n, struct export_fail *fl)
{
	struct json_object *arr = NULL, *ev;
	struct export_file *f = NULL;
	enum bw_err	    er = BW_OK;
	size_t		    i, cnt;

	if (a->ids != NULL) {
		/* "{uuid,uuid,...}" as PostgreSQL renders a uuid[]. */
		const char *s = a->ids;
		char	    tok[37];
		size_t	    len;

		arr = json_object_new_array();
		if (*s == '{')
			s++;
		for (; *s != '\0' && *s != '}'; s += len + (s[len] == ',')) {
			len = strcspn(s, ",}");
			if (len != 36) {
				er = export_failf(fl, EC_VALIDATION, true,
				    BW_EINVAL, "malformed evidence id list");
				goto out;
			}
			memcpy(tok, s, 36);
			tok[36] = '\0';
			ev = NULL;
			er = evidence_get(db, storage_dir, a->org_id, tok, &ev);
			if (er == BW_ENOTFOUND) {
				er = export_failf(fl, EC_VALIDATION, true,
				    BW_EINVAL, "evidence %s not found", tok);
				goto out;
			}
			if (er != BW_OK) {
				er = export_failf(fl, export_db_category(er),
				    false, er, "loading evidence: %s",
				    bw_strerror(er));
				goto out;
			}
			json_object_array_add(arr, ev);
		}
	} else {
		er = evidence_list(db, storage_dir, a->org_id, a->from, a->to,
		    EXPORT_MAX_IDS, &arr);
		if (er == BW_ETOOBIG) {
			er = export_failf(fl, EC_VALIDATION, true, BW_EINVAL,
			    "more than %d evidence files in the range",
			    EXPORT_MAX_IDS);
			goto out;
		}
		if (er != BW_OK) {
			er = export_failf(fl, export_db_category(er), false, er,
			    "listing evidence: %s", bw_strerror(er));
			goto out;
		}
	}
	cnt = json_object_array_length(arr);
	if (cnt == 0) {
		er = export_failf(fl, EC_VALIDATION, true, BW_EINVAL,
		    "no evidence to export");
		goto out;
	}
	f = calloc(cnt, sizeof(*f));
	if (f == NULL) {
		er = export_failf(fl, EC_INTERNAL, false, BW_ENOMEM,
		    "out of memory");
		goto out;
	}
	for (i = 0; i < cnt; i++) {
		ev = json_object_array_get_idx(arr, i);
		f[i].ev = ev;
		f[i].id = jv_str(ev, "id", "");
		f[i].path = jv_str(ev, "path", "");
		f[i].sha256 = jv_str(ev, "sha256", "");
		f[i].size = jv_int(ev, "size", -1);
		f[i].seq = jv_int(ev, "ledger_seq", -1);
		if (!jv_is_uuid(f[i].id, strlen(f[i].id)) ||
		    strlen(f[i].sha256) != 64 || f[i].size < 0 ||
		    f[i].seq < 1) {
			er = export_failf(fl, EC_VALIDATION, true, BW_EINVAL,
			    "evidence row %zu is malformed", i);
			goto out;
		}
	}
	/* Ids given by the client come in their order; keep ledger order. */
	for (i = 1; i < cnt; i++) {
		struct export_file t = f[i];
		size_t		   j = i;

		while (j > 0 && f[j - 1].seq > t.seq) {
			f[j] = f[j - 1];
			j--;
		}
		f[j] = t;
	}
	for (i = 1; i < cnt; i++)
		if (f[i].seq == f[i - 1].seq) {
			er = export_failf(fl, EC_VALIDATION, true, BW_EINVAL,
			    "evidence %s listed twice", f[i].id);
			goto out;
		}
	*list = arr;
	*files = f;
	*n = cnt;
	return BW_OK;
out:
	free(f);
	json_object_put(arr);
	return er;
}

/*
 * The stored fields of the ledger events of the exported files, so that a
 * verifier can recompute each event hash from the file's SHA-256 (the
 * payload of "evidence.uploaded"): *out = {"<seq>":{"type","payload_hash",
 * "prev_hash","time_us","hash"}} (new, caller puts).
 */
static enum bw_err
export_ledger_events(struct db *db, const char *org_id,
    const struct export_file *files, size_t n, struct json_object **out)
{
	int64_t	   *seqs;
	enum bw_err er;
	size_t	    i;

	seqs = calloc(n, sizeof(*seqs));
	if (seqs == NULL)
		return BW_ENOMEM;
	for (i = 0; i < n; i++)
		seqs[i] = files[i].seq;
	er = ledger_events_get(db, org_id, seqs, n, out);
	free(seqs);
	return er;
}

/*
 * The body of one attempt after the claim: load, verify the chain, get
 * the roots, write the tar to a temporary name, fsync, rename. On success
 * a->manifest_hash, size, rel, first, last, nfiles are set. *canceled when
 * the export was canceled meanwhile.
 */
enum bw_err
export_build(struct db *db, const char *storage_dir, struct export_attempt *a,
    int (*stopping)(void), int pause_ms, bool *canceled, struct export_fail *fl)
{
	struct json_object *list = NULL, *chain = NULL, *roots = NULL;
	struct json_object *events = NULL;
	struct export_file *files = NULL;
	struct buf	    dir, tmp, fin, man;
	uint8_t		    mh[32];
	struct stat	    st;
	size_t		    n = 0, i;
	enum bw_err	    er;
	int		    fd = -1;
	const char	   *cs;

	*canceled = false;
	buf_init(&dir, PATH_MAX);
	buf_init(&tmp, PATH_MAX);
	buf_init(&fin, PATH_MAX);
	buf_init(&man, EXPORT_MAX_MANIFEST);
	er = export_load_files(db, storage_dir, a, &list, &files, &n, fl);
	if (er != BW_OK)
		goto out;
	a->first = files[0].seq;
	a->last = files[n - 1].seq;
	a->nfiles = (int64_t)n;

	er = ledger_verify(db, a->org_id, a->first, a->last, &chain);
	if (er != BW_OK) {
		er = export_failf(fl, export_db_category(er), false, er,
		    "ledger verify: %s", bw_strerror(er));
		goto out;
	}
	cs = jv_str(chain, "status", "");
	if (strcmp(cs, "intact") != 0) {
		er = export_failf(fl, EC_VALIDATION, true, BW_EINVAL,
		    "ledger chain broken at seq %" PRId64,
		    jv_int(chain, "broken_at", 0));
		goto out;
	}
	er = ledger_roots_for(db, a->org_id, a->first, a->last, true, &roots);
	if (er != BW_OK) {
		er = export_failf(fl, export_db_category(er), false, er,
		    "ledger roots: %s", bw_strerror(er));
		goto out;
	}
	er = export_ledger_events(db, a->org_id, files, n, &events);
	if (er != BW_OK) {
		er = export_failf(fl, export_db_category(er), false, er,
		    "ledger events: %s", bw_strerror(er));
		goto out;
	}
	er = export_manifest(a->org_id, files, n, chain, roots, events, &man);
	if (er != BW_OK) {
		er = export_failf(fl, EC_INTERNAL, false, er, "manifest: %s",
		    bw_strerror(er));
		goto out;
	}
	er = sec_sha256(man.p, man.len, mh);
	if (er != BW_OK) {
		er = export_failf(fl, EC_INTERNAL, false, er, "sha256 failed");
		goto out;
	}
	sec_hex(mh, sizeof(mh), a->manifest_hash);

	er = export_mkdirs(storage_dir, a->org_id, &dir);
	if (er == BW_OK)
		er = buf_printf(&tmp, "%s/.%s.%d.tar.tmp", dir.p, a->id,
		    a->attempt);
	if (er == BW_OK)
		er = buf_printf(&fin, "%s/%s.%d.tar", dir.p, a->id, a->attempt);
	if (er != BW_OK) {
		er = export_failf(fl, EC_STORAGE, false, er,
		    "cannot make %s: %s", dir.p != NULL ? dir.p : "?",
		    strerror(errno));
		goto out;
	}
	fd = open(tmp.p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0) {
		er = export_failf(fl, EC_STORAGE, false, BW_EIO,
		    "cannot create the artifact: %s", strerror(errno));
		goto out;
	}
	er = tar_write_header(fd, "manifest.json", man.len);
	if (er == BW_OK)
		er = tar_write(fd, man.p, man.len);
	if (er == BW_OK)
		er = tar_write_pad(fd, man.len);
	if (er != BW_OK) {
		er = export_failf(fl, EC_STORAGE, false, BW_EIO,
		    "writing the artifact: %s", strerror(errno));
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (pause_ms > 0)
			(void)poll(NULL, 0, pause_ms);
		if (stopping != NULL && stopping()) {
			er = export_failf(fl, EC_INTERNAL, false, BW_ETIMEOUT,
			    "worker stopping");
			goto out;
		}
		if (export_canceled(db, a->org_id, a->id)) {
			*canceled = true;
			er = BW_OK;
			goto out;
		}
		er = export_copy_file(fd, &files[i], fl);
		if (er != BW_OK)
			goto out;
	}
	er = tar_write_end(fd);
	if (er == BW_OK && fsync(fd) != 0)
		er = BW_EIO;
	if (er == BW_OK && fstat(fd, &st) != 0)
		er = BW_EIO;
	if (er != BW_OK) {
		er = export_failf(fl, EC_STORAGE, false, BW_EIO,
		    "writing the artifact: %s", strerror(errno));
		goto out;
	}
	close(fd);
	fd = -1;
	if (rename(tmp.p, fin.p) != 0 || export_sync_dir(dir.p) != BW_OK) {
		er = export_failf(fl, EC_STORAGE, false, BW_EIO,
		    "renaming the artifact: %s", strerror(errno));
		goto out;
	}
	a->size = (int64_t)st.st_size;
	snprintf(a->rel, sizeof(a->rel), "exports/%s/%s.%d.tar", a->org_id,
	    a->id, a->attempt);
out:
	if (fd >= 0)
		close(fd);
	if (tmp.p != NULL && (er != BW_OK || *canceled))
		(void)unlink(tmp.p);
	free(files);
	json_object_put(list);
	json_object_put(chain);
	json_object_put(roots);
	json_object_put(events);
	buf_free(&dir);
	buf_free(&tmp);
	buf_free(&fin);
	buf_free(&man);
	return er;
}

/* Removes the artifact at storage_dir/rel (a lost race or a cancel). */
