/* SPDX-License-Identifier: MIT */
/*
 * Idempotency-Key middleware (IETF httpapi Idempotency-Key draft,
 * CONTRACT.md "Idempotency-Key"): turns the store's decision (lib/platform/idem.c)
 * into a run of the handler, a replay, or an error, and stores or releases
 * the key once the handler answered. Keys are client data: logs carry a
 * truncated SHA-256 of the key, never the key.
 */
#include <string.h>
#include <strings.h>

#include "core/apierr.h"
#include "ctx.h"
#include "platform/idem.h"
#include "core/log.h"
#include "mw_idem.h"
#include "resp.h"
#include "route.h"

#define MW_IDEM_DEF_TIMEOUT_S 60 /* when no config is at hand */
#define MW_IDEM_KID_LEN	      16 /* hex chars of the key hash logged */

/* The first MW_IDEM_KID_LEN hex chars of SHA-256(key), for logs. */
static void
mw_idem_kid(const char *key, char kid[MW_IDEM_KID_LEN + 1])
{
	char hex[65];

	if (idem_khash(key, hex) != BW_OK) {
		memcpy(kid, "?", 2);
		return;
	}
	memcpy(kid, hex, MW_IDEM_KID_LEN);
	kid[MW_IDEM_KID_LEN] = '\0';
}

/* One log line per decision on a key. */
static void
mw_idem_log(enum log_level lv, const struct req *r, const char *key,
    const char *decision)
{
	char kid[MW_IDEM_KID_LEN + 1];

	mw_idem_kid(key, kid);
	log_kv(lv, "idempotency key", "decision", decision, "idem_key_sha", kid,
	    "route", r->route != NULL ? r->route->name : NULL, NULL);
}

/*
 * Sets the stored response as this request's answer: status, type,
 * the stored extra headers (each passed through resp_header() again),
 * byte-identical body, and Idempotent-Replayed: true.
 */
static void
mw_idem_replay(struct req *r, const struct idem_resp *st)
{
	const char *p, *nl, *colon;
	char	    name[256], value[BW_MAX_IDEM_HEADERS + 1];
	size_t	    nlen, vlen;

	r->status = st->status;
	snprintf(r->idem_ctype, sizeof(r->idem_ctype), "%s", st->ctype);
	r->ctype = r->idem_ctype;
	r->err_code = NULL;
	buf_reset(&r->out);
	if (buf_add(&r->out, st->body.p != NULL ? st->body.p : "",
		st->body.len) != BW_OK) {
		resp_error(r, AE_INTERNAL, NULL, NULL);
		return;
	}
	for (p = buf_cstr(&st->headers); *p != '\0'; p = nl + 2) {
		nl = strstr(p, "\r\n");
		if (nl == NULL)
			break;
		colon = memchr(p, ':', (size_t)(nl - p));
		if (colon == NULL)
			continue;
		nlen = (size_t)(colon - p);
		for (colon++; colon < nl && *colon == ' '; colon++)
			continue;
		vlen = (size_t)(nl - colon);
		if (nlen == 0 || nlen >= sizeof(name) || vlen >= sizeof(value))
			continue;
		memcpy(name, p, nlen);
		name[nlen] = '\0';
		memcpy(value, colon, vlen);
		value[vlen] = '\0';
		resp_header(r, name, value);
	}
	resp_header(r, "Idempotent-Replayed", "true");
}

/* 400 VALIDATION_FAILED naming the header. */
static void
mw_idem_malformed(struct req *r)
{
	struct json_object *fields, *f;

	fields = json_object_new_array();
	f = json_object_new_object();
	if (fields != NULL && f != NULL) {
		json_object_object_add(f, "field",
		    json_object_new_string("Idempotency-Key"));
		json_object_object_add(f, "problem",
		    json_object_new_string("malformed"));
		json_object_array_add(fields, f);
		f = NULL;
	}
	json_object_put(f);
	resp_error(r, AE_VALIDATION_FAILED,
	    "Idempotency-Key must be a "
	    "quoted string or token of 1 to 255 printable ASCII characters",
	    fields);
}

/* Releases the key outside any transaction; logs why. */
static void
mw_idem_unlock(struct req *r, const char *why)
{
	enum bw_err er;

	r->idem_locked = 0;
	er = idem_release(r->ch->db, r->who.org_id, r->idem_key, r->idem_token);
	mw_idem_log(er == BW_OK ? LL_INFO : LL_ERROR, r, r->idem_key,
	    er == BW_OK		     ? why
		: er == BW_ENOTFOUND ? "release_lost_lock"
				     : "release_failed");
}

/* See mw_idem.h. */
int
mw_idem_begin(struct req *r, const uint8_t body_sha256[32])
{
	const char	 *hdr;
	char		  fp[IDEM_FP_LEN + 1];
	struct idem_resp  st;
	enum idem_outcome oc = IO_IN_USE;
	enum bw_err	  er;
	int		  tmo = MW_IDEM_DEF_TIMEOUT_S, took = 0, run = 0;

	r->idem_locked = 0;
	r->idem_ksha[0] = '\0';
	hdr = req_param(r, "HTTP_IDEMPOTENCY_KEY");
	if (hdr == NULL)
		return 1;
	if (idem_key_parse(hdr, r->idem_key) != BW_OK) {
		r->idem_key[0] = '\0';
		log_kv(LL_INFO, "idempotency key", "decision", "malformed",
		    NULL);
		mw_idem_malformed(r);
		return 0;
	}
	if (!r->authed || r->who.org_id[0] == '\0') {
		/* Every idempotent route authenticates; scope needs an org. */
		resp_error(r, AE_INTERNAL, NULL, NULL);
		return 0;
	}
	if (idem_khash(r->idem_key, r->idem_ksha) != BW_OK ||
	    idem_fingerprint(r->method, r->path, body_sha256, fp) != BW_OK) {
		resp_error(r, AE_INTERNAL, NULL, NULL);
		return 0;
	}
	if (r->ch != NULL && r->ch->cfg != NULL)
		tmo = r->ch->cfg->idem_lock_timeout_s;

	idem_resp_init(&st);
	er = idem_begin(r->ch->db, r->who.org_id, r->idem_key, fp, tmo, &oc,
	    r->idem_token, &took, &st);
	if (er != BW_OK) {
		mw_idem_log(LL_ERROR, r, r->idem_key, "store_unavailable");
		resp_header(r, "Retry-After", "1");
		resp_error(r, AE_DEPENDENCY_UNAVAILABLE, NULL, NULL);
		goto out;
	}
	switch (oc) {
	case IO_RUN:
		mw_idem_log(took ? LL_WARN : LL_INFO, r, r->idem_key,
		    took ? "lock_taken_over" : "locked");
		r->idem_locked = 1;
		/*
		 * The handler's effect and the stored response commit
		 * together: one transaction, ended in mw_idem_end().
		 */
		if (db_begin(r->ch->db) != BW_OK) {
			mw_idem_unlock(r, "begin_failed");
			resp_header(r, "Retry-After", "1");
			resp_error(r, AE_DEPENDENCY_UNAVAILABLE, NULL, NULL);
			break;
		}
		run = 1;
		break;
	case IO_REPLAY:
		mw_idem_log(LL_INFO, r, r->idem_key, "replay");
		mw_idem_replay(r, &st);
		break;
	case IO_MISMATCH:
		mw_idem_log(LL_INFO, r, r->idem_key, "reused");
		resp_error(r, AE_IDEMPOTENCY_KEY_REUSED, NULL, NULL);
		break;
	case IO_IN_USE:
	default:
		mw_idem_log(LL_INFO, r, r->idem_key, "in_use");
		resp_header(r, "Retry-After", "1");
		resp_error(r, AE_IDEMPOTENCY_KEY_IN_USE, NULL, NULL);
		break;
	}
out:
	idem_resp_free(&st);
	return run;
}

/*
 * 1 when the answer must not be kept: any 5xx (transient by the contract;
 * their bodies carry nothing worth replaying) and a 4xx whose error code
 * tells the client to retry (RATE_LIMITED): the retry must run again.
 */
static int
mw_idem_retryable(const struct req *r)
{
	int code;

	if (r->status < 200 || r->status >= 500)
		return 1;
	if (r->status >= 400 && r->err_code != NULL) {
		code = apierr_by_name(r->err_code);
		if (code >= 0 && apierr_def((enum apierr_code)code)->retryable)
			return 1;
	}
	return 0;
}

/*
 * The headers worth replaying: everything the handler set except the
 * rate-limit headers, which describe this moment's window (mw_rate sets
 * fresh ones on the replay) and would otherwise appear twice.
 */
static void
mw_idem_keep_hdrs(const struct buf *in, struct buf *out)
{
	const char *p = buf_cstr(in), *nl;
	size_t	    n;

	while (*p != '\0') {
		nl = strstr(p, "\r\n");
		n = nl != NULL ? (size_t)(nl - p) + 2 : strlen(p);
		if (strncasecmp(p, "X-RateLimit-", 12) != 0 &&
		    strncasecmp(p, "Retry-After:", 12) != 0)
			(void)buf_add(out, p, n);
		p += n;
	}
}

/*
 * After db_end() gave BW_EAMBIG: reads what the lost COMMIT did. Committed:
 * the answer already set is the one stored, so it stands. Not committed:
 * the key is free again and the client retries. Unknown (the store is
 * unreachable too): the key stays locked, so a retry waits for it and then
 * finds the row completed or takes a lock that nothing committed under.
 */
static void
mw_idem_settle(struct req *r)
{
	bool	    committed = false;
	enum bw_err er;
	char	    ra[16];

	er = idem_settle(r->ch->db, r->who.org_id, r->idem_key, r->idem_token,
	    &committed);
	if (er == BW_OK && committed) {
		mw_idem_log(LL_WARN, r, r->idem_key, "ambiguous_committed");
		return;
	}
	if (er == BW_OK) {
		mw_idem_log(LL_WARN, r, r->idem_key, "ambiguous_rolled_back");
		snprintf(ra, sizeof(ra), "1");
	} else {
		mw_idem_log(LL_ERROR, r, r->idem_key, "ambiguous_unsettled");
		snprintf(ra, sizeof(ra), "%d",
		    r->ch->cfg != NULL ? r->ch->cfg->idem_lock_timeout_s
				       : MW_IDEM_DEF_TIMEOUT_S);
	}
	resp_header(r, "Retry-After", ra);
	resp_error(r, AE_DEPENDENCY_UNAVAILABLE, NULL, NULL);
}

/* See mw_idem.h. */
void
mw_idem_end(struct req *r)
{
	struct buf  keep;
	enum bw_err er;

	if (!r->idem_locked)
		return;
	if (mw_idem_retryable(r)) {
		(void)db_end(r->ch->db, false);
		mw_idem_unlock(r, "released");
		return;
	}
	buf_init(&keep, r->hdrs.max);
	mw_idem_keep_hdrs(&r->hdrs, &keep);
	er = idem_complete(r->ch->db, r->who.org_id, r->idem_key, r->idem_token,
	    r->status, r->ctype, buf_cstr(&keep), keep.len, buf_cstr(&r->out),
	    r->out.len);
	buf_free(&keep);
	if (er != BW_OK) {
		/*
		 * Lost the lock (taken over after the lock timeout) or could
		 * not store: the effect must not commit without its answer.
		 */
		(void)db_end(r->ch->db, false);
		if (er == BW_ENOTFOUND) {
			r->idem_locked = 0;
			mw_idem_log(LL_ERROR, r, r->idem_key,
			    "store_lost_lock");
			resp_header(r, "Retry-After", "1");
			resp_error(r, AE_IDEMPOTENCY_KEY_IN_USE, NULL, NULL);
			return;
		}
		mw_idem_unlock(r, "store_failed");
		resp_header(r, "Retry-After", "1");
		resp_error(r, AE_DEPENDENCY_UNAVAILABLE, NULL, NULL);
		return;
	}
	er = db_end(r->ch->db, true);
	if (er == BW_OK) {
		r->idem_locked = 0;
		/* Its wait for the standby covered this request's earlier
		 * commits too (the lock's): all replicated (core/db.h). */
		db_unreplicated_clear(r->ch->db);
		mw_idem_log(LL_INFO, r, r->idem_key, "stored");
		return;
	}
	if (er == BW_EAMBIG && db_unreplicated(r->ch->db)) {
		/*
		 * Committed here, maybe not on the synchronous standby: no
		 * read on this server settles that. The key stays completed;
		 * the retry's lock statement writes, so it passes only once
		 * the standby has everything before it, then replays this
		 * answer, or after a failover that lost it runs again.
		 */
		r->idem_locked = 0;
		mw_idem_log(LL_ERROR, r, r->idem_key, "ambiguous_unreplicated");
		resp_header(r, "Retry-After", "1");
		resp_error(r, AE_DEPENDENCY_UNAVAILABLE, NULL, NULL);
		return;
	}
	if (er == BW_EAMBIG) {
		r->idem_locked = 0;
		mw_idem_settle(r);
		return;
	}
	/* The COMMIT was refused or never sent: nothing committed. */
	mw_idem_unlock(r, "commit_failed");
	resp_header(r, "Retry-After", "1");
	resp_error(r, AE_DEPENDENCY_UNAVAILABLE, NULL, NULL);
}
