/* SPDX-License-Identifier: MIT */
/*
 * Exports (CONTRACT.md, "Evidence, exports and public verification"):
 * create, read, cancel, download through nginx (X-Accel-Redirect) and the
 * queue metrics. The body arrives validated against the route's schema
 * (fcgi/routes.c); lib/evidence/export.c does the rest, and its errors
 * take the default answers of resp_fail().
 * Every id is scoped to the caller's org: another org's export is 404.
 */
#include <stdio.h>
#include <string.h>

#include "ctx.h"
#include "evidence/export.h"
#include "handlers.h"
#include "core/jv.h"
#include "core/limits.h"
#include "resp.h"

#define H_EXPORTS_WINDOW_H 24 /* metrics window */

/*
 * POST /api/v1/exports {"evidence_ids":[...]} | {"from","to"} → 202; r->in
 * holds the body, validated against the route's schema. Ids that are not
 * this org's evidence (another org's, or made up) → 404 naming the field.
 * The export row, its job and the ledger event commit together.
 * Rate limit (10/h per org) and Idempotency-Key come from the route row
 * (fcgi/routes.c, fcgi/mw_rate.c, fcgi/mw_idem.c).
 */
void
h_exports_create(struct req *r)
{
	struct json_object   *obj = r->in, *ids, *o;
	struct export_req     rq;
	struct export_created made;
	const char	     *list[EXPORT_MAX_IDS];
	struct buf	      u;
	enum bw_err	      er;
	size_t		      i, n = 0;

	memset(&rq, 0, sizeof(rq));
	rq.org_id = r->who.org_id;
	rq.request_id = r->request_id;
	ids = json_object_object_get(obj, "evidence_ids");
	rq.from = jv_str(obj, "from", NULL);
	rq.to = jv_str(obj, "to", NULL);
	/* Exactly one of the two forms. */
	if (ids != NULL && (rq.from != NULL || rq.to != NULL)) {
		resp_invalid(r, "Give evidence_ids or from/to, not both.",
		    "from", "not_allowed");
		return;
	}
	if (ids == NULL && (rq.from == NULL || rq.to == NULL)) {
		resp_invalid(r, "Give evidence_ids, or both from and to.",
		    rq.from == NULL ? "from" : "to", "required");
		return;
	}
	if (ids != NULL) {
		n = json_object_array_length(ids);
		for (i = 0; i < n && i < EXPORT_MAX_IDS; i++)
			list[i] = json_object_get_string(
			    json_object_array_get_idx(ids, i));
		rq.evidence_ids = list;
		rq.nids = n;
	}
	rq.request_key = r->idem_locked ? r->idem_ksha : NULL;
	er = export_create(r->ch->db, &rq, &made);
	if (er == BW_EEXISTS) {
		/* The key's own row is gone (expired); its export is not. */
		resp_error(r, AE_IDEMPOTENCY_KEY_REUSED,
		    "this Idempotency-Key already created an export", NULL);
		return;
	}
	if (er == BW_EINVAL && ids == NULL) {
		/* The database refused the range: from is not before to. */
		resp_invalid(r, "from must be before to.", "to", "too_small");
		return;
	}
	if (er == BW_ENOTFOUND && ids != NULL) {
		/* Another org's id and a made-up one answer alike. */
		resp_field_error(r, AE_NOT_FOUND,
		    "One or more evidence_ids name no evidence of this "
		    "organization.",
		    "evidence_ids", "not_found");
		return;
	}
	if (er != BW_OK) {
		resp_fail(r, er);
		return;
	}
	o = json_object_new_object();
	json_object_object_add(o, "id", json_object_new_string(made.id));
	json_object_object_add(o, "state", json_object_new_string("queued"));
	json_object_object_add(o, "verification_token",
	    json_object_new_string(made.token));
	buf_init(&u, 256);
	if (buf_printf(&u, "/api/v1/public/verify/%s", made.token) == BW_OK)
		json_object_object_add(o, "verification_url",
		    json_object_new_string(u.p));
	buf_reset(&u);
	if (buf_printf(&u, "/api/v1/exports/%s", made.id) == BW_OK) {
		json_object_object_add(o, "status_url",
		    json_object_new_string(u.p));
		resp_header(r, "Location", u.p);
	}
	buf_free(&u);
	memset(made.token, 0, sizeof(made.token));
	resp_json(r, 202, o);
}

/* GET /api/v1/exports/{id} */
void
h_exports_get(struct req *r)
{
	struct json_object *o = NULL;
	enum bw_err	    er;

	er = export_get(r->ch->db, r->who.org_id, r->args[0], &o);
	if (er != BW_OK) {
		resp_fail(r, er);
		return;
	}
	resp_json(r, 200, o);
}

/* POST /api/v1/exports/{id}/cancel → 200 (queued or processing), else 409. */
void
h_exports_cancel(struct req *r)
{
	struct json_object *o = NULL;
	enum bw_err	    er;

	if (r->body_problem != NULL) {
		/* Existence first: another org's id is 404 whatever the body. */
		er = export_get(r->ch->db, r->who.org_id, r->args[0], &o);
		json_object_put(o);
		if (er != BW_OK)
			resp_fail(r, er);
		else
			(void)resp_action_body(r);
		return;
	}
	er = export_cancel(r->ch->db, r->who.org_id, r->args[0], &o);
	if (er != BW_OK) {
		resp_fail(r, er);
		return;
	}
	resp_json(r, 200, o);
}

/*
 * GET /api/v1/exports/{id}/download: authorizes, then hands the file to
 * nginx (location /internal/exports/ aliases storage_dir/exports/), which
 * serves it with sendfile and Range support. 409 when not ready, 410 when
 * expired.
 */
void
h_exports_download(struct req *r)
{
	enum export_state st = ES__MAX;
	char		  rel[256], hdr[320], disp[200];
	enum bw_err	  er;

	er = export_download(r->ch->db, r->who.org_id, r->args[0], &st, rel,
	    sizeof(rel));
	if (er != BW_OK) {
		resp_fail(r, er);
		return;
	}
	if (st == ES_EXPIRED) {
		resp_error(r, AE_GONE,
		    "The export expired; its artifact is "
		    "deleted.",
		    NULL);
		return;
	}
	if (st != ES_READY || strncmp(rel, "exports/", 8) != 0) {
		resp_error(r, AE_INVALID_STATE, "The export is not ready.",
		    NULL);
		return;
	}
	/* rel: "exports/<org>/<id>.<attempt>.tar" (export_build.c). */
	snprintf(hdr, sizeof(hdr), "/internal/%s", rel);
	snprintf(disp, sizeof(disp), "attachment; filename=\"export-%s.tar\"",
	    r->args[0]);
	resp_header(r, "X-Accel-Redirect", hdr);
	resp_header(r, "Content-Disposition", disp);
	resp_raw(r, 200, "application/x-tar", "", 0);
}

/* GET /api/v1/metrics/exports (owner/admin): the caller's org only. */
void
h_exports_metrics(struct req *r)
{
	struct json_object *o = NULL;
	enum bw_err	    er;

	er = export_metrics(r->ch->db, r->who.org_id, H_EXPORTS_WINDOW_H, &o);
	if (er != BW_OK) {
		resp_fail(r, er);
		return;
	}
	resp_json(r, 200, o);
}
