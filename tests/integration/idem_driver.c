/* SPDX-License-Identifier: MIT */
/*
 * idem_driver: drives lib/platform/idem.c against the real database for
 * tests/integration/idempotency.sh, one store call per invocation, so the
 * script can run many at once and count outcomes. Connects to
 * $DATABASE_URL. Prints one line per call:
 *
 *   idem_driver parse HEADER            -> "key <key>" | "invalid"
 *   idem_driver begin ORG KEY FP [TMO]  -> "run <token> <fresh|takeover>" |
 *                                          "replay <status> <body>" |
 *                                          "in_use" | "mismatch"
 *   idem_driver complete ORG KEY TOKEN STATUS BODY -> "ok" | "lost"
 *   idem_driver release ORG KEY TOKEN   -> "ok" | "lost"
 *   idem_driver purge BATCH             -> "purged <n>"
 *   idem_driver fp METHOD PATH BODY     -> the fingerprint
 *
 * FP may be a word: anything not 64 hex chars is hashed into one. Exit 0
 * on success, 1 on a store error, 2 on usage errors.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/db.h"
#include "platform/idem.h"
#include "core/log.h"
#include "core/sec.h"

static const char *const outcomes[IO__MAX] = { "run", "replay", "in_use",
	"mismatch" };

/* Whole-string integer in [lo, hi], or -1. */
static long
idd_num(const char *s, long lo, long hi)
{
	char *end;
	long  v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
		return -1;
	return v;
}

/* The fingerprint of a word: fp("POST", "/t/<word>", sha256("")). */
static int
idd_fp(const char *w, char fp[IDEM_FP_LEN + 1])
{
	uint8_t sha[32];
	char	path[300];
	size_t	i;

	if (strlen(w) == IDEM_FP_LEN) {
		for (i = 0; i < IDEM_FP_LEN; i++)
			if (strchr("0123456789abcdef", w[i]) == NULL)
				break;
		if (i == IDEM_FP_LEN) {
			memcpy(fp, w, IDEM_FP_LEN + 1);
			return 0;
		}
	}
	snprintf(path, sizeof(path), "/t/%s", w);
	if (sec_sha256("", 0, sha) != BW_OK ||
	    idem_fingerprint("POST", path, sha, fp) != BW_OK)
		return -1;
	return 0;
}

static int
usage(void)
{
	fprintf(stderr,
	    "usage: idem_driver parse|begin|complete|release|"
	    "purge|fp ARGS (see the source)\n");
	return 2;
}

int
main(int argc, char *argv[])
{
	struct db	 *db = NULL;
	struct idem_resp  st;
	enum idem_outcome oc;
	enum bw_err	  er = BW_OK;
	char		  key[BW_MAX_IDEM_KEY + 1], fp[IDEM_FP_LEN + 1];
	char		  tok[IDEM_TOKEN_LEN + 1];
	uint8_t		  sha[32];
	const char	 *url = getenv("DATABASE_URL");
	long		  v;
	int		  took = 0, n = 0, rc = 0;

	log_init("idem_driver", LL_WARN);
	idem_resp_init(&st);
	if (argc < 2)
		return usage();
	if (strcmp(argv[1], "parse") == 0 && argc == 3) {
		if (idem_key_parse(argv[2], key) == BW_OK)
			printf("key %s\n", key);
		else
			printf("invalid\n");
		return 0;
	}
	if (strcmp(argv[1], "fp") == 0 && argc == 5) {
		if (sec_sha256(argv[4], strlen(argv[4]), sha) != BW_OK ||
		    idem_fingerprint(argv[2], argv[3], sha, fp) != BW_OK)
			return 1;
		printf("%s\n", fp);
		return 0;
	}
	if (url == NULL || (db = db_new(url)) == NULL) {
		fprintf(stderr, "idem_driver: DATABASE_URL not set\n");
		return 2;
	}
	if (strcmp(argv[1], "begin") == 0 && (argc == 5 || argc == 6)) {
		v = argc == 6 ? idd_num(argv[5], 1, 86400) : 60;
		if (v < 0 || idd_fp(argv[4], fp) != 0) {
			rc = usage();
			goto out;
		}
		er = idem_begin(db, argv[2], argv[3], fp, (int)v, &oc, tok,
		    &took, &st);
		if (er != BW_OK)
			goto out;
		if (oc == IO_RUN)
			printf("run %s %s\n", tok, took ? "takeover" : "fresh");
		else if (oc == IO_REPLAY)
			printf("replay %d %.*s\n", st.status, (int)st.body.len,
			    buf_cstr(&st.body));
		else
			printf("%s\n", outcomes[oc]);
	} else if (strcmp(argv[1], "complete") == 0 && argc == 7) {
		v = idd_num(argv[5], 100, 599);
		if (v < 0) {
			rc = usage();
			goto out;
		}
		er = idem_complete(db, argv[2], argv[3], argv[4], (int)v,
		    "application/json", "Location: /x\r\n", 15, argv[6],
		    strlen(argv[6]));
	} else if (strcmp(argv[1], "release") == 0 && argc == 5) {
		er = idem_release(db, argv[2], argv[3], argv[4]);
	} else if (strcmp(argv[1], "purge") == 0 && argc == 3) {
		v = idd_num(argv[2], 1, 1000000);
		if (v < 0) {
			rc = usage();
			goto out;
		}
		er = idem_purge(db, (int)v, &n);
		if (er == BW_OK)
			printf("purged %d\n", n);
	} else {
		rc = usage();
		goto out;
	}
	if (strcmp(argv[1], "complete") == 0 ||
	    strcmp(argv[1], "release") == 0) {
		if (er == BW_OK)
			printf("ok\n");
		else if (er == BW_ENOTFOUND) {
			printf("lost\n");
			er = BW_OK;
		}
	}
out:
	if (er != BW_OK) {
		fprintf(stderr, "idem_driver: %s\n", bw_strerror(er));
		rc = 1;
	}
	idem_resp_free(&st);
	db_free(db);
	return rc;
}
