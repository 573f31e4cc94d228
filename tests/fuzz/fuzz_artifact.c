/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness for lib/evidence/export_check.c, the offline check of
 * an export artifact (bulwarkctl verify-export reads archives outsiders
 * hand in), and the ustar reader of lib/evidence/tar.c under it. Each input
 * is an archive, held in a memfd and checked twice through
 * export_check_fd(): without keys, and with the ledger key of the seed
 * artifacts (so that seeds reach the signature and proof checks).
 *
 * Asserted besides "no crash": only the documented errors; on failure the
 * out-parameters are untouched; on success the report is an object whose
 * "valid" is the verdict, whose "manifest_hash" is the 64-hex hash also
 * returned, which has a "problems" array that is empty when valid, and
 * whose file verdict and hash do not depend on the keys.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <json-c/json.h>

#include "core/err.h"
#include "evidence/export.h"

int LLVMFuzzerInitialize(int *, char ***);
int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/*
 * The verifier key of the stack that made the seed artifacts in
 * tests/fuzz/corpus/fuzz_artifact/ (GET /api/v1/public/ledger-keys).
 */
#define SEED_VKEY \
	"bulwark.local+774a992b+AfBkMxdfO+bPBXt22BqPCESSl1Z7ZXvJwOZEu/XU3ydb"

static struct json_object *keys;
static int		   fd = -1;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct json_object *k;

	(void)argc;
	(void)argv;
	fd = memfd_create("fuzz_artifact", MFD_CLOEXEC);
	if (fd < 0)
		abort();
	keys = json_object_new_array();
	k = json_object_new_object();
	json_object_object_add(k, "vkey", json_object_new_string(SEED_VKEY));
	json_object_array_add(keys, k);
	return 0;
}

/* 1 for 64 lower-case hex digits. */
static int
is_hex64(const char *s)
{
	size_t i;

	for (i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
			(s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return s[64] == '\0';
}

/* One check of the archive in fd; aborts on a broken promise. */
static enum bw_err
check(struct json_object *k, struct json_object **rep, bool *valid, char mh[65])
{
	struct json_object *sentinel = (struct json_object *)&fd;
	struct json_object *v, *p;
	enum bw_err	    er;

	if (lseek(fd, 0, SEEK_SET) != 0)
		abort();
	*rep = sentinel;
	*valid = true;
	memset(mh, 'x', 65);
	er = export_check_fd(fd, k, rep, valid, mh);
	if (er != BW_OK) {
		if (er != BW_EINVAL && er != BW_EIO && er != BW_ENOMEM)
			abort();
		if (*rep != sentinel || *valid != true)
			abort(); /* out-parameters written on failure */
		*rep = NULL;
		return er;
	}
	if (*rep == sentinel || !json_object_is_type(*rep, json_type_object))
		abort();
	v = json_object_object_get(*rep, "valid");
	if (!json_object_is_type(v, json_type_boolean) ||
	    json_object_get_boolean(v) != *valid)
		abort();
	if (!is_hex64(mh) ||
	    strcmp(json_object_get_string(
		       json_object_object_get(*rep, "manifest_hash")),
		mh) != 0)
		abort();
	p = json_object_object_get(*rep, "problems");
	if (!json_object_is_type(p, json_type_array) ||
	    (*valid && json_object_array_length(p) != 0) ||
	    (!*valid && json_object_array_length(p) == 0))
		abort();
	if (k != NULL && json_object_object_get(*rep, "files_valid") != NULL &&
	    json_object_object_get(*rep, "ledger_valid") == NULL &&
	    json_object_get_boolean(
		json_object_object_get(*rep, "files_valid")))
		abort(); /* keys given, a manifest parsed, no ledger verdict */
	return BW_OK;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct json_object *r0 = NULL, *r1 = NULL;
	bool		    v0, v1;
	char		    mh0[65], mh1[65];
	enum bw_err	    e0, e1;

	if (ftruncate(fd, 0) != 0 || lseek(fd, 0, SEEK_SET) != 0)
		abort();
	if (size > 0 && write(fd, data, size) != (ssize_t)size)
		abort();
	e0 = check(NULL, &r0, &v0, mh0);
	e1 = check(keys, &r1, &v1, mh1);
	/* The keys only add the ledger part: same error, hash, file verdict. */
	if (e0 != e1 && e0 != BW_ENOMEM && e1 != BW_ENOMEM)
		abort();
	if (e0 == BW_OK && e1 == BW_OK) {
		if (strcmp(mh0, mh1) != 0 ||
		    json_object_get_boolean(
			json_object_object_get(r0, "files_valid")) !=
			json_object_get_boolean(
			    json_object_object_get(r1, "files_valid")) ||
		    (v1 && !v0))
			abort();
	}
	json_object_put(r0);
	json_object_put(r1);
	return 0;
}
