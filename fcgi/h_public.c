/* SPDX-License-Identifier: MIT */
/*
 * GET /api/v1/public/verify/{token}: public verification of an export
 * without login (CONTRACT.md). lib/export.c looks the export up by the
 * SHA-256 of the token through a unique index, re-checks the artifact on
 * disk, recomputes the chain and returns the signed daily roots with their
 * inclusion proofs. Unknown, malformed and expired tokens all answer the
 * same 404. The 30/min per client IP limit is the route row's (.rate in
 * fcgi/routes.c, enforced by fcgi/mw_rate.c before this runs).
 */
#include "ctx.h"
#include "export.h"
#include "handlers.h"
#include "resp.h"

void
h_public_verify(struct req *r)
{
	struct json_object *o = NULL;
	enum bw_err	    er;

	er = export_verify_public(r->ch->db, r->ch->cfg->storage_dir,
	    r->args[0], &o);
	switch (er) {
	case BW_OK:
		resp_json(r, 200, o);
		break;
	case BW_ENOTFOUND:
		resp_error(r, AE_NOT_FOUND, NULL, NULL);
		break;
	case BW_ENOMEM:
	case BW_ECRYPTO:
		resp_error(r, AE_INTERNAL, NULL, NULL);
		break;
	default:
		resp_error(r, AE_DEPENDENCY_UNAVAILABLE, NULL, NULL);
		break;
	}
}
