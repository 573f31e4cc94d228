/* SPDX-License-Identifier: MIT */
/*
 * bulwarkctl verify-export FILE.tar [--keys FILE]: the offline verifier.
 * Checks an export artifact with no database and no network: the manifest
 * hash, each file's SHA-256 and ledger event hash, and, with the keys file
 * (the JSON of GET /api/v1/public/ledger-keys), each daily checkpoint's
 * Ed25519 signature and each event's RFC 6962 inclusion proof against its
 * signed tree size. Prints a JSON report; exit 0 valid, 1 invalid, 2 usage.
 * (The ledger commands are in tools/ctl_ledger.c.)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "ctl.h"
#include "evidence/export.h"

#define CTL_MAX_KEYS_FILE (1024 * 1024)
#define CTL_KEYS_DEPTH	  8

/* Reads and parses the keys JSON file. Returns 0 or an exit status. */
static int
ctl_read_keys(const char *path, struct json_object **out)
{
	struct json_tokener *tok = NULL;
	struct buf	     b;
	char		     chunk[4096];
	ssize_t		     n;
	int		     fd, rc = 1;

	buf_init(&b, CTL_MAX_KEYS_FILE);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "bulwarkctl: %s: %s\n", path, strerror(errno));
		return 1;
	}
	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		if (buf_add(&b, chunk, (size_t)n) != BW_OK) {
			fprintf(stderr, "bulwarkctl: %s: too big\n", path);
			goto out;
		}
	if (n < 0) {
		fprintf(stderr, "bulwarkctl: %s: %s\n", path, strerror(errno));
		goto out;
	}
	tok = json_tokener_new_ex(CTL_KEYS_DEPTH);
	if (tok == NULL)
		goto out;
	*out = json_tokener_parse_ex(tok, buf_cstr(&b), (int)b.len);
	if (*out == NULL ||
	    json_tokener_get_error(tok) != json_tokener_success) {
		json_object_put(*out);
		*out = NULL;
		fprintf(stderr, "bulwarkctl: %s: not JSON\n", path);
		goto out;
	}
	rc = 0;
out:
	if (tok != NULL)
		json_tokener_free(tok);
	close(fd);
	buf_free(&b);
	return rc;
}

int
ctl_verify_export(struct ctl *c, int argc, char **argv)
{
	static const char *const names[] = { "keys" };
	struct json_object	*keys = NULL, *report = NULL;
	const char		*vals[1] = { NULL };
	enum bw_err		 er;
	bool			 valid = false;
	int			 rc;

	(void)c;
	if (argc < 1 || argv[0][0] == '-') {
		fprintf(stderr,
		    "usage: bulwarkctl verify-export FILE.tar "
		    "[--keys FILE]\n");
		return 2;
	}
	rc = ctl_flags(argc - 1, argv + 1, names, vals, 1);
	if (rc != 0)
		return rc;
	if (vals[0] != NULL && ctl_read_keys(vals[0], &keys) != 0)
		return 1;
	ctl_progress("verify-export: checking %s%s...", argv[0],
	    keys != NULL ? " and its signatures" : "");
	er = export_artifact_check(argv[0], keys, &report, &valid, NULL);
	ctl_progress_end();
	json_object_put(keys);
	if (er != BW_OK) {
		fprintf(stderr, "bulwarkctl: verify-export: %s: %s\n", argv[0],
		    er == BW_EINVAL ? "not an export artifact"
				    : bw_strerror(er));
		return 1;
	}
	if (keys == NULL)
		json_object_object_add(report, "ledger_valid", NULL);
	ctl_emit(report);
	return valid ? 0 : 1;
}
