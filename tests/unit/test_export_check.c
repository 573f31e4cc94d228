/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for lib/evidence/export_check.c, the offline check of an
 * export artifact (no database): an artifact built here the way
 * export_build.c builds one (manifest.json first, evidence files, each
 * with its recomputable ledger event) passes; each kind of damage an
 * outsider's archive can carry is reported as the problem it is, or
 * refused as "not an export tar". And export_seal.c's file side, the
 * check kept for public verification.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "core/sec.h"
#include "evidence/export.h"
#include "evidence/ledger.h"
#include "evidence/tar.h"

#define ORG "5b0e8f5c-8a7c-4e3a-9a1e-0c4d2b7f6a10"
#define ID1 "0b7c9f0e-3c1e-4c55-9a57-5f3e2f1d0a11"
#define ID2 "7d2f4c1a-9e8b-4f3c-8a6d-1b2c3d4e5f60"

/* What a case does to the artifact it builds. */
enum damage {
	D_NONE,
	D_FLIP,		/* one byte of a file's data changed */
	D_MISSING,	/* the second file left out */
	D_EXTRA,	/* a member the manifest does not list */
	D_TWICE,	/* the first file written twice */
	D_NO_END,	/* no end blocks */
	D_TRUNCATED,	/* the archive cut inside the second file */
	D_EVENT,	/* a ledger event's hash not its recomputed one */
	D_SIZE,		/* a file's size in the manifest off by one */
	D_FORMAT,	/* manifest.json of another format */
	D_NOT_JSON,	/* manifest.json is not JSON */
	D_NOT_FIRST,	/* an evidence file before manifest.json */
	D_NOT_TAR,	/* a block of text, not a tar */
	D_SHORT,	/* less than one block */
	D_EMPTY,	/* zero bytes */
	D_BAD_HEADER,	/* a corrupt header after manifest.json */
	D_HUGE_MANIFEST /* manifest.json claims more than the cap */
};

static const char *const data[2] = { "first evidence file\n",
	"second, a little longer, evidence file\n" };

/* Lower-case hex SHA-256 of s. */
static void
sha_hex(const char *s, size_t n, char hex[65])
{
	uint8_t d[32];

	assert_int_equal(sec_sha256(s, n, d), BW_OK);
	sec_hex(d, sizeof(d), hex);
}

/* The manifest entry of file i (seq i + 1), its event chained to prev. */
static struct json_object *
entry(int i, const char *id, uint8_t prev[32], enum damage dmg)
{
	struct json_object *e = json_object_new_object();
	struct json_object *le = json_object_new_object();
	uint8_t		    pl[32], h[32];
	char		    hex[65], fn[64];
	size_t		    n = strlen(data[i]);

	assert_int_equal(sec_sha256(data[i], n, pl), BW_OK);
	assert_int_equal(ledger_event_hash(ORG, i + 1, "evidence.uploaded", pl,
			     prev, 1764900000000000 + i, h),
	    BW_OK);
	if (dmg == D_EVENT && i == 1)
		h[0] ^= 1;
	json_object_object_add(e, "id", json_object_new_string(id));
	json_object_object_add(e, "name", json_object_new_string("f.txt"));
	json_object_object_add(e, "content_type",
	    json_object_new_string("text/plain"));
	json_object_object_add(e, "size",
	    json_object_new_int64((int64_t)n + (dmg == D_SIZE && i == 0)));
	sha_hex(data[i], n, hex);
	json_object_object_add(e, "sha256", json_object_new_string(hex));
	json_object_object_add(e, "ledger_seq", json_object_new_int64(i + 1));
	snprintf(fn, sizeof(fn), "evidence/%s", id);
	json_object_object_add(e, "file", json_object_new_string(fn));
	json_object_object_add(le, "type",
	    json_object_new_string("evidence.uploaded"));
	json_object_object_add(le, "payload_hash", json_object_new_string(hex));
	sec_hex(prev, 32, hex);
	json_object_object_add(le, "prev_hash", json_object_new_string(hex));
	json_object_object_add(le, "time_us",
	    json_object_new_int64(1764900000000000 + i));
	sec_hex(h, 32, hex);
	json_object_object_add(le, "hash", json_object_new_string(hex));
	json_object_object_add(e, "ledger_event", le);
	memcpy(prev, h, 32);
	return e;
}

/* Writes member name with data d[0..n) and its padding. */
static void
member(int fd, const char *name, const char *d, size_t n)
{
	assert_int_equal(tar_write_header(fd, name, n), BW_OK);
	assert_int_equal(tar_write(fd, d, n), BW_OK);
	assert_int_equal(tar_write_pad(fd, n), BW_OK);
}

/*
 * Writes the artifact with dmg to a new temporary file, its path in path;
 * mhash gets the hex SHA-256 of the manifest written.
 */
static void
build(enum damage dmg, char path[64], char mhash[65])
{
	static const char *const ids[2] = { ID1, ID2 };
	struct json_object	*m, *arr;
	uint8_t			 prev[32];
	unsigned char		 h[TAR_BLOCK];
	const char		*ms;
	char			 fn[64], flipped[64], text[600];
	int			 fd, i;

	snprintf(path, 64, "/tmp/test_export_check.XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	if (dmg == D_NOT_TAR || dmg == D_SHORT) {
		memset(text, 'a', sizeof(text));
		assert_int_equal(tar_write(fd, text,
				     dmg == D_SHORT ? 6 : sizeof(text)),
		    BW_OK);
		close(fd);
		return;
	}
	if (dmg == D_EMPTY) {
		close(fd);
		return;
	}
	memset(prev, 0, sizeof(prev));
	m = json_object_new_object();
	json_object_object_add(m, "format",
	    json_object_new_string(
		dmg == D_FORMAT ? "bulwark-export/2" : "bulwark-export/1"));
	json_object_object_add(m, "org_id", json_object_new_string(ORG));
	arr = json_object_new_array();
	for (i = 0; i < 2; i++)
		json_object_array_add(arr, entry(i, ids[i], prev, dmg));
	json_object_object_add(m, "evidence", arr);
	json_object_object_add(m, "chain", json_object_new_object());
	json_object_object_add(m, "ledger_roots", json_object_new_array());
	ms = dmg == D_NOT_JSON
	    ? "{\"format\": \"bulwark-export/1\",\n"
	    : json_object_to_json_string_ext(m, JSON_C_TO_STRING_PRETTY);
	sha_hex(ms, strlen(ms), mhash);

	if (dmg == D_NOT_FIRST)
		member(fd, "evidence/" ID1, data[0], strlen(data[0]));
	if (dmg == D_HUGE_MANIFEST) {
		assert_int_equal(tar_write_header(fd, "manifest.json",
				     16 * 1024 * 1024 + 1),
		    BW_OK);
		assert_int_equal(tar_write(fd, ms, strlen(ms)), BW_OK);
	} else
		member(fd, "manifest.json", ms, strlen(ms));
	if (dmg == D_BAD_HEADER) {
		assert_int_equal(tar_header("evidence/" ID1, 20, h), BW_OK);
		h[0] ^= 1; /* checksum no longer matches */
		assert_int_equal(tar_write(fd, h, sizeof(h)), BW_OK);
	}
	for (i = 0; i < 2; i++) {
		if (dmg == D_MISSING && i == 1)
			break;
		snprintf(fn, sizeof(fn), "evidence/%s", ids[i]);
		if (dmg == D_TRUNCATED && i == 1) {
			assert_int_equal(tar_write_header(fd, fn,
					     strlen(data[i])),
			    BW_OK);
			assert_int_equal(tar_write(fd, data[i], 5), BW_OK);
			close(fd);
			json_object_put(m);
			return;
		}
		if (dmg == D_FLIP && i == 1) {
			snprintf(flipped, sizeof(flipped), "%s", data[i]);
			flipped[3] ^= 0x20;
			member(fd, fn, flipped, strlen(flipped));
		} else
			member(fd, fn, data[i], strlen(data[i]));
		if (dmg == D_TWICE && i == 0)
			member(fd, fn, data[i], strlen(data[i]));
	}
	if (dmg == D_EXTRA)
		member(fd, "evidence/notes.txt", "x", 1);
	if (dmg != D_NO_END)
		assert_int_equal(tar_write_end(fd), BW_OK);
	close(fd);
	json_object_put(m);
}

/* 1 when one of the report's problems contains s. */
static int
has_problem(struct json_object *rep, const char *s)
{
	struct json_object *p = json_object_object_get(rep, "problems");
	size_t		    i;

	for (i = 0; i < json_object_array_length(p); i++)
		if (strstr(json_object_get_string(
			       json_object_array_get_idx(p, i)),
			s) != NULL)
			return 1;
	return 0;
}

static void
test_export_check_cases(void **state)
{
	static const struct {
		enum damage d;
		enum bw_err er;
		int	    valid;
		int	    files;   /* members after manifest.json */
		const char *problem; /* part of one problem, or NULL */
	} t[] = {
		{ D_NONE, BW_OK, 1, 2, NULL },
		{ D_FLIP, BW_OK, 0, 2, ID2 ": sha256 or size differs" },
		{ D_MISSING, BW_OK, 0, 1, ID2 ": listed but missing" },
		{ D_EXTRA, BW_OK, 0, 3, "notes.txt: not listed" },
		{ D_TWICE, BW_OK, 0, 3,
		    ID1 ": not listed in the manifest (or twice)" },
		{ D_NO_END, BW_OK, 0, 2, "without its end blocks" },
		{ D_TRUNCATED, BW_OK, 0, 2, ID2 ": truncated" },
		{ D_EVENT, BW_OK, 0, 2, ID2 ": ledger event does not hash" },
		{ D_SIZE, BW_OK, 0, 2, ID1 ": sha256 or size differs" },
		{ D_FORMAT, BW_OK, 0, 0, "is not a bulwark-export/1 manifest" },
		{ D_NOT_JSON, BW_OK, 0, 0,
		    "is not a bulwark-export/1 manifest" },
		{ D_BAD_HEADER, BW_OK, 0, 0,
		    "corrupt tar header after 0 files" },
		{ D_NOT_FIRST, BW_EINVAL, 0, 0, NULL },
		{ D_NOT_TAR, BW_EINVAL, 0, 0, NULL },
		/* As it has always been: a short file is a read error. */
		{ D_SHORT, BW_EIO, 0, 0, NULL },
		{ D_EMPTY, BW_EINVAL, 0, 0, NULL },
		{ D_HUGE_MANIFEST, BW_EINVAL, 0, 0, NULL },
	};
	struct json_object *rep;
	char		    path[64], mh[65], got[65];
	bool		    valid;
	size_t		    i;
	enum bw_err	    er;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		build(t[i].d, path, mh);
		rep = NULL;
		valid = !t[i].valid;
		er = export_artifact_check(path, NULL, &rep, &valid, got);
		unlink(path);
		if (er != t[i].er)
			fail_msg("case %zu: %s, want %s", i, bw_strerror(er),
			    bw_strerror(t[i].er));
		if (er != BW_OK) {
			assert_null(rep); /* untouched */
			continue;
		}
		if (valid != (t[i].valid != 0))
			fail_msg("case %zu: verdict %d: %s", i, valid,
			    json_object_to_json_string(rep));
		assert_int_equal(json_object_get_boolean(
				     json_object_object_get(rep, "valid")),
		    t[i].valid);
		assert_string_equal(got, mh);
		assert_string_equal(json_object_get_string(
					json_object_object_get(rep,
					    "manifest_hash")),
		    mh);
		assert_int_equal(json_object_get_int(
				     json_object_object_get(rep, "files")),
		    t[i].files);
		if (t[i].problem != NULL && !has_problem(rep, t[i].problem))
			fail_msg("case %zu: no problem \"%s\" in %s", i,
			    t[i].problem, json_object_to_json_string(rep));
		if (t[i].valid)
			assert_int_equal(json_object_array_length(
					     json_object_object_get(rep,
						 "problems")),
			    0);
		/* No keys given: no ledger verdict. */
		assert_null(json_object_object_get(rep, "ledger_valid"));
		json_object_put(rep);
	}
}

static void
test_export_check_keys(void **state)
{
	struct json_object *rep = NULL, *keys;
	char		    path[64], mh[65];
	bool		    valid = true;

	(void)state;
	assert_int_equal(export_artifact_check("/nonexistent/a.tar", NULL, &rep,
			     &valid, NULL),
	    BW_EIO);
	assert_null(rep);
	/* Keys that hold no usable verifier key: the ledger part fails. */
	build(D_NONE, path, mh);
	keys = json_tokener_parse("[{\"vkey\":\"not a key\"}]");
	assert_non_null(keys);
	assert_int_equal(export_artifact_check(path, keys, &rep, &valid, NULL),
	    BW_OK);
	unlink(path);
	assert_false(valid);
	assert_true(json_object_get_boolean(
	    json_object_object_get(rep, "files_valid")));
	assert_false(json_object_get_boolean(
	    json_object_object_get(rep, "ledger_valid")));
	assert_true(has_problem(rep, "no usable verifier key"));
	json_object_put(rep);
	json_object_put(keys);
}

/* The hex SHA-256 of the file at path. */
static void
file_sha(const char *path, char hex[65])
{
	struct sec_sha256_ctx *c = sec_sha256_new();
	FILE		      *f = fopen(path, "rb");
	char		       b[8192];
	uint8_t		       d[32];
	size_t		       n;

	assert_non_null(c);
	assert_non_null(f);
	while ((n = fread(b, 1, sizeof(b), f)) > 0)
		assert_int_equal(sec_sha256_update(c, b, n), BW_OK);
	fclose(f);
	assert_int_equal(sec_sha256_final(c, d), BW_OK);
	sec_sha256_free(c);
	sec_hex(d, sizeof(d), hex);
}

/*
 * export_seal_file(): the check made once and stored. The full check
 * wants the manifest's hash; the identity check wants the whole file's
 * bytes, so that bytes after the end blocks (which the member check never
 * reads) or any other change make it fail; what is not an export tar is
 * not valid, not an error.
 */
static void
test_export_seal(void **state)
{
	static const enum damage bad[] = { D_FLIP, D_NOT_TAR, D_SHORT, D_EMPTY,
		D_NOT_FIRST };
	struct export_seal	 s;
	char			 path[64], mh[65], sha[65], st[EXPORT_STAT_LEN];
	FILE			*f;
	size_t			 i;

	(void)state;
	build(D_NONE, path, mh);
	file_sha(path, sha);
	assert_int_equal(export_seal_file(path, mh, NULL, &s), BW_OK);
	assert_true(s.valid);
	assert_string_equal(s.sha256, sha);
	assert_int_equal(export_artifact_stat(path, st), BW_OK);
	assert_string_equal(s.stat, st);
	/* The manifest must be the one the export row names. */
	assert_int_equal(export_seal_file(path, ID1, NULL, &s), BW_OK);
	assert_false(s.valid);
	assert_int_equal(export_seal_file(path, NULL, NULL, &s), BW_OK);
	assert_false(s.valid);
	/* Identity: the same bytes pass, other expected bytes do not. */
	assert_int_equal(export_seal_file(path, NULL, sha, &s), BW_OK);
	assert_true(s.valid);
	assert_int_equal(export_seal_file(path, mh, mh, &s), BW_OK);
	assert_false(s.valid);
	/* One byte appended: the members still check, the file is not it. */
	f = fopen(path, "ab");
	assert_non_null(f);
	fputc('x', f);
	fclose(f);
	assert_int_equal(export_artifact_stat(path, st), BW_OK);
	assert_string_not_equal(s.stat, st);
	assert_int_equal(export_seal_file(path, mh, NULL, &s), BW_OK);
	assert_true(s.valid);
	assert_int_equal(export_seal_file(path, mh, sha, &s), BW_OK);
	assert_false(s.valid);
	unlink(path);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		build(bad[i], path, mh);
		if (export_seal_file(path, mh, NULL, &s) != BW_OK || s.valid)
			fail_msg("damage %d: not sealed as not valid", bad[i]);
		file_sha(path, sha);
		assert_string_equal(s.sha256, sha);
		unlink(path);
	}
	assert_int_equal(export_seal_file("/nonexistent/a.tar", mh, NULL, &s),
	    BW_EIO);
	assert_int_equal(export_artifact_stat("/nonexistent/a.tar", st),
	    BW_EIO);
	assert_int_equal(export_artifact_stat("/tmp", st), BW_EIO);
	assert_int_equal(export_seal_file("/tmp", mh, NULL, &s), BW_EIO);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_export_check_cases),
		cmocka_unit_test(test_export_check_keys),
		cmocka_unit_test(test_export_seal),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
