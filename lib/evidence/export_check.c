/* SPDX-License-Identifier: MIT */
/*
 * The offline check of an export artifact (bulwarkctl verify-export, and
 * public verification re-checking the stored file): no database, only the
 * archive and, optionally, the ledger's public verifier keys. It reads
 * archives that outsiders hand in, so every field is bounded before use:
 * headers go through tar_parse(), manifest.json is capped at
 * EXPORT_MAX_MANIFEST and parsed with a depth limit, file data is
 * streamed in EXPORT_IO_CHUNK pieces, and every hash and proof is checked
 * against the manifest and the signed checkpoints, never trusted.
 * tests/fuzz/fuzz_artifact.c fuzzes export_check_fd().
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/jv.h"
#include "core/limits.h"
#include "core/sec.h"
#include "evidence/export.h"
#include "evidence/export_int.h"
#include "evidence/ledger.h"
#include "evidence/merkle.h"
#include "evidence/note.h"
#include "evidence/tar.h"

/* Adds a problem string to the report's "problems" array. */
static void export_problem(struct json_object *report, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
export_problem(struct json_object *report, const char *fmt, ...)
{
	struct json_object *arr = json_object_object_get(report, "problems");
	char		    s[512];
	va_list		    ap;

	va_start(ap, fmt);
	vsnprintf(s, sizeof(s), fmt, ap);
	va_end(ap);
	json_object_array_add(arr, json_object_new_string(s));
}

/* Decodes a 64-char hex field of o into out; 0 on success. */
static int
export_hex32(struct json_object *o, const char *key, uint8_t out[32])
{
	const char *s = jv_str(o, key, "");

	return sec_unhex(s, strlen(s), out, 32) == BW_OK ? 0 : -1;
}

/*
 * Parses the verifier keys of keys (an array of {"vkey"} objects, an
 * object with "keys", or a single object) into vk[0..*n).
 */
static void
export_keys(struct json_object *keys, struct note_vkey *vk, size_t max,
    size_t *n)
{
	struct json_object *arr = keys, *k;
	const char	   *s;
	size_t		    i;

	*n = 0;
	if (keys == NULL)
		return;
	if (json_object_is_type(keys, json_type_object)) {
		arr = json_object_object_get(keys, "keys");
		if (arr == NULL) {
			s = jv_str(keys, "vkey", NULL);
			if (s != NULL &&
			    note_parse_vkey(s, strlen(s), &vk[0]) == BW_OK)
				*n = 1;
			return;
		}
	}
	if (!json_object_is_type(arr, json_type_array))
		return;
	for (i = 0; i < json_object_array_length(arr) && *n < max; i++) {
		k = json_object_array_get_idx(arr, i);
		s = json_object_is_type(k, json_type_string)
		    ? json_object_get_string(k)
		    : jv_str(k, "vkey", NULL);
		if (s != NULL &&
		    note_parse_vkey(s, strlen(s), &vk[*n]) == BW_OK)
			(*n)++;
	}
}

#define EXPORT_MAX_KEYS 16

/*
 * Checks the ledger part of a manifest against the verifier keys: each
 * root's checkpoint is signed by one of the keys and states the root and
 * event count; each proof's leaf is the listed event's leaf, sits at
 * seq - first_seq, and verifies against the checkpoint's tree size and
 * root (never a size from the proof). Counts go into report.
 */
static int
export_check_ledger(struct json_object *m, struct json_object *keys,
    struct json_object *report)
{
	struct note_vkey    vk[EXPORT_MAX_KEYS];
	struct json_object *roots, *r, *pr, *p, *path, *ev, *e;
	struct buf	    text;
	uint8_t		    root[32], croot[32], leaf[32], lh[32], eh[32];
	uint8_t(*proof)[32] = NULL;
	uint64_t    csize;
	size_t	    nk, i, j, k, plen;
	int64_t	    first, last, seq, proved = 0, sigs = 0;
	int	    ok = 1, signed_ok;
	const char *cp;

	export_keys(keys, vk, EXPORT_MAX_KEYS, &nk);
	if (nk == 0) {
		export_problem(report, "no usable verifier key in the keys");
		return 0;
	}
	proof = calloc(MERKLE_MAX_DEPTH, sizeof(*proof));
	if (proof == NULL)
		return 0;
	buf_init(&text, BW_MAX_NOTE);
	roots = json_object_object_get(m, "ledger_roots");
	ev = json_object_object_get(m, "evidence");
	for (i = 0; roots != NULL && i < json_object_array_length(roots); i++) {
		r = json_object_array_get_idx(roots, i);
		cp = jv_str(r, "checkpoint", "");
		first = jv_int(r, "first_seq", 0);
		last = jv_int(r, "last_seq", -1);
		signed_ok = 0;
		for (k = 0; k < nk && !signed_ok; k++) {
			buf_reset(&text);
			if (note_verify(cp, strlen(cp), &vk[k], &text) == BW_OK)
				signed_ok = 1;
		}
		if (!signed_ok ||
		    note_checkpoint_parse(text.p, text.len, NULL, &csize,
			croot) != BW_OK) {
			export_problem(report,
			    "root of %s: checkpoint not signed by a given key",
			    jv_str(r, "day", "?"));
			ok = 0;
			continue;
		}
		sigs++;
		if (export_hex32(r, "root", root) != 0 ||
		    memcmp(root, croot, 32) != 0 ||
		    csize != (uint64_t)(last - first + 1)) {
			export_problem(report,
			    "root of %s: does not match its checkpoint",
			    jv_str(r, "day", "?"));
			ok = 0;
			continue;
		}
		pr = json_object_object_get(r, "proofs");
		for (j = 0; pr != NULL && j < json_object_array_length(pr);
		     j++) {
			p = json_object_array_get_idx(pr, j);
			seq = jv_int(p, "seq", 0);
			path = json_object_object_get(p, "path");
			plen =
			    path != NULL ? json_object_array_length(path) : 0;
			if (seq < first || seq > last ||
			    jv_int(p, "index", -1) != seq - first ||
			    plen > MERKLE_MAX_DEPTH ||
			    export_hex32(p, "leaf_hash", leaf) != 0) {
				export_problem(report,
				    "proof of seq %" PRId64 ": malformed", seq);
				ok = 0;
				continue;
			}
			for (k = 0; k < plen; k++) {
				const char *h = json_object_get_string(
				    json_object_array_get_idx(path, k));

				if (h == NULL ||
				    sec_unhex(h, strlen(h), proof[k], 32) !=
					BW_OK)
					break;
			}
			if (k < plen ||
			    merkle_inclusion_verify((uint64_t)(seq - first),
				csize, leaf, (const uint8_t(*)[32])proof, plen,
				croot) != BW_OK) {
				export_problem(report,
				    "proof of seq %" PRId64
				    ": does not verify against the signed "
				    "checkpoint",
				    seq);
				ok = 0;
				continue;
			}
			/* The leaf must be the listed event's hash. */
			e = NULL;
			for (k = 0;
			     ev != NULL && k < json_object_array_length(ev);
			     k++) {
				e = json_object_array_get_idx(ev, k);
				if (jv_int(e, "ledger_seq", 0) == seq)
					break;
				e = NULL;
			}
			if (export_hex32(p, "event_hash", eh) != 0 ||
			    merkle_leaf_hash(eh, 32, lh) != BW_OK ||
			    memcmp(lh, leaf, 32) != 0 || e == NULL ||
			    strcmp(jv_str(json_object_object_get(e,
					      "ledger_event"),
				       "hash", ""),
				jv_str(p, "event_hash", "-")) != 0) {
				export_problem(report,
				    "proof of seq %" PRId64
				    ": leaf is not the listed event's hash",
				    seq);
				ok = 0;
				continue;
			}
			proved++;
		}
	}
	json_object_object_add(report, "checkpoints_verified",
	    json_object_new_int64(sigs));
	json_object_object_add(report, "events_proved",
	    json_object_new_int64(proved));
	/* Events no signed root covers yet (roots are made daily). */
	json_object_object_add(report, "events_unanchored",
	    json_object_new_int64(
		(int64_t)(ev != NULL ? json_object_array_length(ev) : 0) -
		proved));
	buf_free(&text);
	free(proof);
	return ok;
}

/*
 * Reads the first member of the archive in fd, which must be
 * manifest.json of at most EXPORT_MAX_MANIFEST bytes, into man (its
 * padding read and dropped), through chunk (EXPORT_IO_CHUNK bytes). BW_OK;
 * BW_EINVAL when the archive does not start so or ends inside it; BW_EIO
 * when the first header cannot be read whole; BW_ENOMEM.
 */
static enum bw_err
export_read_manifest(int fd, char *chunk, struct buf *man)
{
	unsigned char h[TAR_BLOCK];
	char	      name[TAR_NAME_MAX + 1] = "";
	uint64_t      size = 0, left;
	enum bw_err   er;
	bool	      end = false;

	er = tar_read(fd, h, sizeof(h));
	if (er == BW_OK)
		er = tar_parse(h, name, &size, &end);
	if (er != BW_OK || end || strcmp(name, "manifest.json") != 0 ||
	    size > EXPORT_MAX_MANIFEST)
		return er == BW_EIO ? BW_EIO : BW_EINVAL;
	if (buf_add(man, "", 0) != BW_OK)
		return BW_ENOMEM;
	for (left = tar_padded(size); left > 0;) {
		size_t k =
		    left > EXPORT_IO_CHUNK ? EXPORT_IO_CHUNK : (size_t)left;

		if (tar_read(fd, chunk, k) != BW_OK)
			return BW_EINVAL;
		er = buf_add(man, chunk, k);
		if (er != BW_OK)
			return er;
		left -= k;
	}
	man->len = (size_t)size;
	man->p[man->len] = '\0';
	return BW_OK;
}

/*
 * Checks each listed file's ledger event (ev, nev entries of manifest m):
 * its payload is the file's SHA-256 and it hashes to its recorded hash
 * (ledger_event_hash(), the chain's own encoding). Problems go into rep.
 * 1 when all hold.
 */
static int
export_check_events(struct json_object *m, struct json_object *ev, size_t nev,
    struct json_object *rep)
{
	struct json_object *e, *le;
	uint8_t		    pl[32], pv[32], hh[32], want_h[32];
	const char	   *org = jv_str(m, "org_id", "");
	size_t		    i;
	int		    ok = 1;

	for (i = 0; i < nev; i++) {
		e = json_object_array_get_idx(ev, i);
		le = json_object_object_get(e, "ledger_event");
		if (le == NULL) {
			export_problem(rep, "%s: no ledger event",
			    jv_str(e, "file", "?"));
			ok = 0;
			continue;
		}
		if (strcmp(jv_str(le, "payload_hash", ""),
			jv_str(e, "sha256", "-")) != 0 ||
		    export_hex32(le, "payload_hash", pl) != 0 ||
		    export_hex32(le, "prev_hash", pv) != 0 ||
		    export_hex32(le, "hash", want_h) != 0 ||
		    ledger_event_hash(org, jv_int(e, "ledger_seq", 0),
			jv_str(le, "type", ""), pl, pv,
			jv_int(le, "time_us", 0), hh) != BW_OK ||
		    memcmp(hh, want_h, 32) != 0) {
			export_problem(rep,
			    "%s: ledger event does not hash to its recorded "
			    "hash",
			    jv_str(e, "file", "?"));
			ok = 0;
		}
	}
	return ok;
}

/*
 * export_artifact_check() of the archive read from fd (see export.h): the
 * manifest first, then every member against it, then each listed file's
 * ledger event and, with keys, the ledger part (export_check_ledger()).
 * Problems are collected in the report; only an archive that does not
 * start with manifest.json (BW_EINVAL), a read error on the first header
 * (BW_EIO) or memory (BW_ENOMEM) fail, leaving *report and *valid
 * untouched.
 */
enum bw_err
export_check_fd(int fd, struct json_object *keys, struct json_object **report,
    bool *valid, char *manifest_hash)
{
	struct json_object    *rep, *m = NULL, *ev = NULL, *e = NULL;
	struct sec_sha256_ctx *sc = NULL;
	unsigned char	       h[TAR_BLOCK];
	char		       name[TAR_NAME_MAX + 1] = "", hex[65];
	char		      *chunk = NULL;
	struct buf	       man;
	uint8_t		       d[32];
	uint64_t	       size = 0, left;
	size_t		       i, nev = 0, want;
	unsigned char	      *seen = NULL;
	enum bw_err	       er;
	bool		       end = false;
	int		       ok = 1, files_ok = 1, nfiles = 0;

	buf_init(&man, EXPORT_MAX_MANIFEST);
	rep = json_object_new_object();
	json_object_object_add(rep, "problems", json_object_new_array());
	chunk = malloc(EXPORT_IO_CHUNK);
	if (chunk == NULL) {
		er = BW_ENOMEM;
		goto out;
	}
	er = export_read_manifest(fd, chunk, &man);
	if (er != BW_OK)
		goto out;
	er = sec_sha256(man.p, man.len, d);
	if (er != BW_OK)
		goto out;
	sec_hex(d, sizeof(d), hex);
	if (manifest_hash != NULL)
		snprintf(manifest_hash, 65, "%s", hex);
	json_object_object_add(rep, "manifest_hash",
	    json_object_new_string(hex));
	if (jv_parse(man.p, man.len, EXPORT_MANIFEST_DEPTH, &m) != BW_OK ||
	    strcmp(jv_str(m, "format", ""), EXPORT_FORMAT) != 0) {
		export_problem(rep, "manifest.json is not a %s manifest",
		    EXPORT_FORMAT);
		ok = 0;
		files_ok = 0;
		goto files_done;
	}
	ev = json_object_object_get(m, "evidence");
	nev = ev != NULL && json_object_is_type(ev, json_type_array)
	    ? json_object_array_length(ev)
	    : 0;
	seen = calloc(nev + 1, 1);
	sc = sec_sha256_new();
	if (seen == NULL || sc == NULL) {
		er = BW_ENOMEM;
		goto out;
	}
	for (;;) {
		er = tar_read(fd, h, sizeof(h));
		if (er == BW_ENOTFOUND) {
			export_problem(rep,
			    "archive ends without its end blocks");
			files_ok = 0;
			break;
		}
		if (er == BW_OK)
			er = tar_parse(h, name, &size, &end);
		if (er != BW_OK) {
			export_problem(rep, "corrupt tar header after %d files",
			    nfiles);
			files_ok = 0;
			break;
		}
		if (end)
			break;
		nfiles++;
		for (i = 0; i < nev; i++) {
			e = json_object_array_get_idx(ev, i);
			if (strcmp(jv_str(e, "file", ""), name) == 0)
				break;
		}
		if (i == nev || seen[i]) {
			export_problem(rep,
			    "%.99s: not listed in the manifest (or twice)",
			    name);
			files_ok = 0;
		}
		sec_sha256_free(sc);
		sc = sec_sha256_new();
		if (sc == NULL) {
			er = BW_ENOMEM;
			goto out;
		}
		want = (size_t)tar_padded(size);
		for (left = size; want > 0;) {
			size_t k =
			    want > EXPORT_IO_CHUNK ? EXPORT_IO_CHUNK : want;
			size_t use = left < k ? (size_t)left : k;

			er = tar_read(fd, chunk, k);
			if (er != BW_OK) {
				export_problem(rep, "%.99s: truncated", name);
				files_ok = 0;
				goto files_done;
			}
			(void)sec_sha256_update(sc, chunk, use);
			left -= use;
			want -= k;
		}
		(void)sec_sha256_final(sc, d);
		sec_hex(d, sizeof(d), hex);
		if (i < nev) {
			seen[i] = 1;
			if (strcmp(hex, jv_str(e, "sha256", "")) != 0 ||
			    (int64_t)size != jv_int(e, "size", -1)) {
				export_problem(rep,
				    "%.99s: sha256 or size differs from the "
				    "manifest",
				    name);
				files_ok = 0;
			}
		}
	}
	for (i = 0; i < nev; i++)
		if (!seen[i]) {
			e = json_object_array_get_idx(ev, i);
			export_problem(rep, "%s: listed but missing",
			    jv_str(e, "file", "?"));
			files_ok = 0;
		}
	if (!export_check_events(m, ev, nev, rep))
		files_ok = 0;
files_done:
	er = BW_OK;
	json_object_object_add(rep, "files", json_object_new_int(nfiles));
	json_object_object_add(rep, "files_valid",
	    json_object_new_boolean(files_ok));
	if (!files_ok)
		ok = 0;
	if (keys != NULL && m != NULL) {
		int lok = export_check_ledger(m, keys, rep);

		json_object_object_add(rep, "ledger_valid",
		    json_object_new_boolean(lok));
		if (!lok)
			ok = 0;
	}
	json_object_object_add(rep, "valid", json_object_new_boolean(ok));
	*valid = ok != 0;
	*report = rep;
	rep = NULL;
out:
	free(chunk);
	free(seen);
	sec_sha256_free(sc);
	json_object_put(m);
	json_object_put(rep);
	buf_free(&man);
	return er;
}

enum bw_err
export_artifact_check(const char *path, struct json_object *keys,
    struct json_object **report, bool *valid, char *manifest_hash)
{
	enum bw_err er;
	int	    fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return BW_EIO;
	er = export_check_fd(fd, keys, report, valid, manifest_hash);
	close(fd);
	return er;
}
