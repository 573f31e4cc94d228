/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness for lib/platform/idem.c's pure parts: the Idempotency-Key
 * header value (an RFC 8941 sf-string or a bare token) and the request
 * fingerprint. A parsed key must be 1..BW_MAX_IDEM_KEY printable ASCII
 * and come back unchanged from its own sf-string serialization.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "platform/idem.h"
#include "core/limits.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	   *hdr, key[BW_MAX_IDEM_KEY + 1], again[BW_MAX_IDEM_KEY + 1];
	char	    q[2 * BW_MAX_IDEM_KEY + 3], fp[IDEM_FP_LEN + 1];
	char	    fp2[IDEM_FP_LEN + 1];
	uint8_t	    sha[32];
	size_t	    i, n, len;
	enum bw_err er;

	if ((hdr = malloc(size + 1)) == NULL)
		abort();
	memcpy(hdr, data, size);
	hdr[size] = '\0';

	memset(key, 'Z', sizeof(key));
	er = idem_key_parse(hdr, key);
	if (er == BW_OK) {
		len = strlen(key);
		if (len == 0 || len > BW_MAX_IDEM_KEY)
			abort();
		for (i = 0; i < len; i++)
			if ((unsigned char)key[i] < 0x20 ||
			    (unsigned char)key[i] > 0x7e)
				abort();
		/* Serialize as an sf-string and parse it again. */
		n = 0;
		q[n++] = '"';
		for (i = 0; i < len; i++) {
			if (key[i] == '"' || key[i] == '\\')
				q[n++] = '\\';
			q[n++] = key[i];
		}
		q[n++] = '"';
		q[n] = '\0';
		if (idem_key_parse(q, again) != BW_OK ||
		    strcmp(again, key) != 0)
			abort();
	} else if (er != BW_EINVAL) {
		abort();
	} else {
		/* Untouched on failure. */
		for (i = 0; i < sizeof(key); i++)
			if (key[i] != 'Z')
				abort();
	}

	/* The fingerprint: method and path split at the first NUL/newline. */
	memset(sha, 0, sizeof(sha));
	n = strcspn(hdr, "\n");
	if (hdr[n] == '\n') {
		hdr[n] = '\0';
		if (idem_fingerprint(hdr, hdr + n + 1, sha, fp) != BW_OK ||
		    idem_fingerprint(hdr, hdr + n + 1, sha, fp2) != BW_OK ||
		    strlen(fp) != IDEM_FP_LEN || strcmp(fp, fp2) != 0)
			abort();
	}
	free(hdr);
	return 0;
}
