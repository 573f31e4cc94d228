/* SPDX-License-Identifier: MIT */
/*
 * GET /api/v1/public/ledger-keys (no login): the Ed25519 verifier keys
 * that sign the daily ledger roots, in the C2SP signed-note vkey form and
 * as raw base64, so that third parties can check checkpoints offline.
 */
#include "ctx.h"
#include "handlers.h"
#include "evidence/ledger.h"
#include "core/log.h"
#include "resp.h"
#include "core/sec.h"

/*
 * The key file is read on every request (it is tiny), so a rotated key is
 * published without a restart; the seed never outlives the request.
 */
void
h_public_ledger_keys(struct req *r)
{
	struct json_object  *keys = NULL, *o;
	const struct config *cfg = r->ch->cfg;
	uint8_t		     seed[SEC_ED25519_SEED_LEN];
	enum bw_err	     er;

	er = ledger_key_load(cfg->ledger_key_file, seed);
	if (er != BW_OK) {
		log_kv(LL_ERROR, "ledger key unreadable", "path",
		    cfg->ledger_key_file, "error", bw_strerror(er), NULL);
		resp_header(r, "Retry-After", "60");
		resp_error(r, AE_DEPENDENCY_UNAVAILABLE, NULL, NULL);
		return;
	}
	er = ledger_public_keys(seed, cfg->ledger_origin, &keys);
	sec_wipe(seed, sizeof(seed));
	if (er != BW_OK) {
		resp_error(r, AE_INTERNAL, NULL, NULL);
		return;
	}
	o = json_object_new_object();
	json_object_object_add(o, "keys", keys);
	resp_header(r, "Cache-Control", "public, max-age=300");
	resp_json(r, 200, o);
}
