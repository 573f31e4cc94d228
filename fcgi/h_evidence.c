/* SPDX-License-Identifier: MIT */
/*
 * POST /api/v1/evidence: a raw-body, idempotent route. The body is streamed
 * from the FastCGI stream into lib/evidence (temporary file, hashed while
 * written, fsync, rename), the Idempotency-Key is checked against the hash
 * of what was streamed, and only then the row and its ledger event are
 * inserted in one transaction.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctx.h"
#include "evidence/evidence.h"
#include "handlers.h"
#include "core/log.h"
#include "mw_idem.h"
#include "resp.h"
#include "core/sec.h"

#define H_EVIDENCE_CHUNK (64 * 1024)
#define H_EVIDENCE_CTYPE "application/octet-stream"

/*
 * A storage or database failure: 503 with Retry-After, retryable, whatever
 * the error (an allocation failure here is also worth a retry).
 */
static void
h_evidence_unavailable(struct req *r)
{
	resp_header(r, "Retry-After", "1");
	resp_error(r, AE_DEPENDENCY_UNAVAILABLE, NULL, NULL);
}

/*
 * Streams exactly len bytes of the request body into u. Returns BW_OK,
 * BW_EIO when the client's stream ends early (or a write fails),
 * BW_ETOOBIG past the limit.
 */
static enum bw_err
h_evidence_stream(struct req *r, struct evidence_upload *u, long long len,
    int *short_body)
{
	char	   *chunk;
	long long   left = len;
	int	    want, got;
	enum bw_err er = BW_OK;

	*short_body = 0;
	chunk = malloc(H_EVIDENCE_CHUNK);
	if (chunk == NULL)
		return BW_ENOMEM;
	while (left > 0) {
		want = left > H_EVIDENCE_CHUNK ? H_EVIDENCE_CHUNK : (int)left;
		got = FCGX_GetStr(chunk, want, r->fr->in);
		if (got <= 0) {
			*short_body = 1;
			er = BW_EIO;
			break;
		}
		er = evidence_write(u, chunk, (size_t)got);
		if (er != BW_OK)
			break;
		left -= got;
	}
	free(chunk);
	return er;
}

void
h_evidence_create(struct req *r)
{
	struct evidence_upload *u = NULL;
	struct json_object     *o = NULL;
	const char	       *ctype, *name;
	uint8_t			sha[SEC_SHA256_LEN];
	int64_t			size;
	long long		len;
	uint64_t		clen;
	int			short_body;
	enum bw_err		er;

	/*
	 * The rate limit (CONTRACT.md: 100 uploads per org per 86400 s) is
	 * applied before this handler by fcgi/mw_rate.c from the route's
	 * .rate row, so a refused upload's body is never read.
	 */
	ctype = req_param(r, "CONTENT_TYPE");
	if (ctype == NULL || *ctype == '\0')
		ctype = H_EVIDENCE_CTYPE;
	if (!evidence_ctype_ok(ctype)) {
		resp_invalid(r,
		    "Content-Type must be a media type like "
		    "application/pdf",
		    "Content-Type", "invalid");
		return;
	}
	name = req_param(r, "HTTP_X_EVIDENCE_NAME");
	if (name == NULL)
		name = "evidence";
	if (!evidence_name_ok(name)) {
		resp_invalid(r,
		    "X-Evidence-Name must be 1 to 255 bytes of UTF-8 without "
		    "control characters",
		    "X-Evidence-Name", "invalid");
		return;
	}
	if (req_content_length(r, &clen) != BW_OK) {
		resp_error(r, AE_VALIDATION_FAILED, "bad Content-Length", NULL);
		return;
	}
	len = (long long)clen; /* main.c has refused more than the route's */
	if (len == 0) {
		resp_invalid(r, "the evidence body is empty", "body",
		    "required");
		return;
	}
	if (len > BW_MAX_EVIDENCE) {
		resp_error(r, AE_PAYLOAD_TOO_LARGE,
		    "evidence is limited to "
		    "25 MiB",
		    NULL);
		return;
	}
	er = evidence_begin(r->ch->cfg->storage_dir, r->who.org_id, &u);
	if (er != BW_OK) {
		h_evidence_unavailable(r);
		goto out;
	}
	er = h_evidence_stream(r, u, len, &short_body);
	if (er == BW_ETOOBIG) {
		resp_error(r, AE_PAYLOAD_TOO_LARGE,
		    "evidence is limited to "
		    "25 MiB",
		    NULL);
		goto out;
	}
	if (er != BW_OK && short_body) {
		resp_error(r, AE_VALIDATION_FAILED,
		    "the request body ended "
		    "before Content-Length",
		    NULL);
		goto out;
	}
	if (er != BW_OK) {
		h_evidence_unavailable(r);
		goto out;
	}
	er = evidence_finish(u, sha, &size);
	if (er != BW_OK) {
		h_evidence_unavailable(r);
		goto out;
	}
	/* Replays, key reuse and keys in use are answered here; the
	 * temporary file goes with evidence_free(). */
	if (!mw_idem_begin(r, sha))
		goto out;
	er = evidence_commit(r->ch->db, u, name, ctype,
	    r->idem_locked ? r->idem_ksha : NULL, &o);
	if (er == BW_EEXISTS) {
		/* The key's own row is gone (expired); its evidence is not. */
		resp_error(r, AE_IDEMPOTENCY_KEY_REUSED,
		    "this Idempotency-Key already stored evidence", NULL);
		goto out;
	}
	if (er != BW_OK) {
		h_evidence_unavailable(r);
		goto out;
	}
	resp_json(r, 201, o);
out:
	evidence_free(u);
}
