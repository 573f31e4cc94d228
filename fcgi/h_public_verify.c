/* SPDX-License-Identifier: MIT */
/*
 * GET /api/v1/public/verify/{token}: public verification of an export
 * without login (CONTRACT.md). lib/evidence/export_verify.c looks the
 * export up by the SHA-256 of the token through a unique index, answers
 * manifest_valid from the artifact's check stored when the export became
 * ready (no read of the artifact), recomputes the chain and returns the
 * signed daily roots with their inclusion proofs. Unknown, malformed and
 * expired tokens all answer the same 404; 503 CAPACITY_EXHAUSTED with
 * Retry-After while another request checks an artifact that changed or
 * was never checked. The 30/min per client IP limit is the route row's
 * (.rate in fcgi/routes.c, enforced by fcgi/mw_rate.c before this runs).
 */
#include <stdio.h>
#include <string.h>

#include "ctx.h"
#include "evidence/export.h"
#include "handlers.h"
#include "core/metrics.h"
#include "resp.h"

/* Verifications by outcome, counted in the children's shared memory. */
enum verify_outcome {
	VO_VALID,
	VO_INVALID,
	VO_NOT_FOUND,
	VO_ERROR,
	VO_BUSY,
	VO__MAX
};
static const char *const verify_outcomes[VO__MAX] = { "valid", "invalid",
	"not_found", "error", "busy" };
static int		 m_verify[VO__MAX];

int
h_public_metrics_register(void)
{
	char l[64];
	int  i;

	for (i = 0; i < VO__MAX; i++) {
		snprintf(l, sizeof(l), "outcome=\"%s\"", verify_outcomes[i]);
		m_verify[i] =
		    metrics_counter("bulwark_export_verifications_total",
			"Public export verifications by outcome (invalid: "
			"manifest tampered or chain broken; busy: the "
			"artifact was being checked).",
			l);
		if (m_verify[i] < 0)
			return -1;
	}
	return 0;
}

/* valid when the manifest re-hashes and the chain is intact. */
static enum verify_outcome
verify_outcome(struct json_object *o)
{
	struct json_object *mv, *chain, *st;

	if (!json_object_object_get_ex(o, "manifest_valid", &mv) ||
	    !json_object_get_boolean(mv))
		return VO_INVALID;
	if (!json_object_object_get_ex(o, "chain", &chain) ||
	    !json_object_object_get_ex(chain, "status", &st) ||
	    strcmp(json_object_get_string(st), "intact") != 0)
		return VO_INVALID;
	return VO_VALID;
}

void
h_public_verify(struct req *r)
{
	struct json_object *o = NULL;
	enum bw_err	    er;

	er = export_verify_public(r->ch->db, r->ch->cfg->storage_dir,
	    r->args[0], &o);
	switch (er) {
	case BW_OK:
		metrics_inc(m_verify[verify_outcome(o)]);
		resp_json(r, 200, o);
		break;
	case BW_ENOTFOUND:
		metrics_inc(m_verify[VO_NOT_FOUND]);
		resp_error(r, AE_NOT_FOUND, NULL, NULL);
		break;
	case BW_EBUSY:
		/* Another request checks the artifact now: seconds. */
		metrics_inc(m_verify[VO_BUSY]);
		resp_header(r, "Retry-After", "5");
		resp_error(r, AE_CAPACITY_EXHAUSTED, NULL, NULL);
		break;
	case BW_ENOMEM:
	case BW_ECRYPTO:
		resp_error(r, AE_INTERNAL, NULL, NULL);
		break;
	default:
		metrics_inc(m_verify[VO_ERROR]);
		resp_error(r, AE_DEPENDENCY_UNAVAILABLE, NULL, NULL);
		break;
	}
}
