/* SPDX-License-Identifier: MIT */
/*
 * GET /api/v1/public/ledger-keys (no login): the Ed25519 verifier keys
 * that sign the daily ledger roots, in the C2SP signed-note vkey form and
 * as raw base64, so that third parties can check checkpoints offline.
 *
 * The key comes from the public key file (ledger_public_key_file), never
 * from the signing seed: this internet-facing process neither needs nor
 * reads the seed's file (dev/lint's "signing" check keeps it so).
 */
#include "ctx.h"
#include "handlers.h"
#include "evidence/ledger.h"
#include "evidence/note.h"
#include "core/log.h"
#include "resp.h"

/*
 * The file is read on every request (it is tiny), so a rotated key is
 * published without a restart.
 */
void
h_public_ledger_keys(struct req *r)
{
	struct json_object  *keys = NULL, *o;
	const struct config *cfg = r->ch->cfg;
	struct note_vkey     vk;
	enum bw_err	     er;

	er = ledger_pubkey_load(cfg->ledger_public_key_file, cfg->ledger_origin,
	    &vk);
	if (er != BW_OK) {
		log_kv(LL_ERROR, "ledger public key unreadable", "path",
		    cfg->ledger_public_key_file, "error",
		    er == BW_ESTATE ? "names another key than ledger_origin"
				    : bw_strerror(er),
		    NULL);
		resp_header(r, "Retry-After", "60");
		resp_error(r, AE_DEPENDENCY_UNAVAILABLE, NULL, NULL);
		return;
	}
	er = ledger_public_keys(&vk, &keys);
	if (er != BW_OK) {
		resp_error(r, AE_INTERNAL, NULL, NULL);
		return;
	}
	o = json_object_new_object();
	json_object_object_add(o, "keys", keys);
	resp_json(r, 200, o);
	/* Public and the same for everyone: shared caches may keep it five
	 * minutes. The only Cache-Control sent (resp_send() adds no-store
	 * only when none is set), and never on an error. */
	if (r->status == 200)
		resp_header(r, "Cache-Control", "public, max-age=300");
}
