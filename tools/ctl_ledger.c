/* SPDX-License-Identifier: MIT */
/*
 * bulwarkctl evidence-ledger commands: `ledger verify` (the hash chain of
 * an org and the signed daily roots covering it), `ledger roots` (sign the
 * roots now, e.g. with --before tomorrow in tests), `ledger keys` (the
 * published verifier keys), `ledger keygen` and `ledger pubkey` (the key
 * files) and `evidence sweep` (orphan files).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"
#include "evidence/evidence.h"
#include "evidence/ledger.h"
#include "evidence/merkle.h"
#include "evidence/note.h"
#include "core/sec.h"

/*
 * The published key (ledger_public_key_file), parsed: the key outsiders
 * verify with, so `ledger verify` checks what they would. 0 or an exit
 * status.
 */
static int
ctl_ev_vkey(struct ctl *c, struct note_vkey *vk, char key_id[9])
{
	enum bw_err er;

	er = ledger_pubkey_load(c->cfg.ledger_public_key_file,
	    c->cfg.ledger_origin, vk);
	if (er == BW_ESTATE) {
		fprintf(stderr,
		    "bulwarkctl: ledger_public_key_file: the key is "
		    "not named ledger_origin (%s)\n",
		    c->cfg.ledger_origin);
		return 1;
	}
	if (er != BW_OK)
		return ctl_fail("ledger_public_key_file", er);
	snprintf(key_id, 9, "%08x", (unsigned)vk->id);
	return 0;
}

/*
 * Checks one stored root: its checkpoint is signed by vk, names the org's
 * origin, and has the row's size and root; every proof of the range
 * verifies against the signed size and root. Returns NULL when valid, else
 * the problem (static).
 */
static const char *
ctl_ev_root(struct json_object *root, const struct note_vkey *vk,
    const char *origin)
{
	struct json_object *v, *proofs, *p, *path;
	struct buf	    text, org;
	uint8_t		    r[32], want[32], leaf[32];
	uint8_t		    pth[MERKLE_MAX_DEPTH][32];
	uint64_t	    size;
	const char	   *cp, *problem = NULL;
	size_t		    i, j, plen;

	buf_init(&text, BW_MAX_NOTE);
	buf_init(&org, BW_MAX_NOTE_NAME + 1);
	json_object_object_get_ex(root, "checkpoint", &v);
	cp = json_object_get_string(v);
	if (cp == NULL || note_verify(cp, strlen(cp), vk, &text) != BW_OK) {
		problem = "signature";
		goto out;
	}
	if (note_checkpoint_parse(buf_cstr(&text), text.len, &org, &size, r) !=
		BW_OK ||
	    strcmp(buf_cstr(&org), origin) != 0) {
		problem = "checkpoint";
		goto out;
	}
	json_object_object_get_ex(root, "root", &v);
	if (sec_unhex(json_object_get_string(v), 64, want, 32) != BW_OK ||
	    memcmp(want, r, 32) != 0) {
		problem = "root_differs";
		goto out;
	}
	json_object_object_get_ex(root, "event_count", &v);
	if ((uint64_t)json_object_get_int64(v) != size) {
		problem = "size_differs";
		goto out;
	}
	json_object_object_get_ex(root, "proofs", &proofs);
	for (i = 0; i < json_object_array_length(proofs); i++) {
		p = json_object_array_get_idx(proofs, i);
		json_object_object_get_ex(p, "event_hash", &v);
		if (sec_unhex(json_object_get_string(v), 64, leaf, 32) !=
			BW_OK ||
		    merkle_leaf_hash(leaf, 32, leaf) != BW_OK) {
			problem = "proof";
			goto out;
		}
		json_object_object_get_ex(p, "path", &path);
		plen = json_object_array_length(path);
		if (plen > MERKLE_MAX_DEPTH) {
			problem = "proof";
			goto out;
		}
		for (j = 0; j < plen; j++)
			if (sec_unhex(json_object_get_string(
					  json_object_array_get_idx(path, j)),
				64, pth[j], 32) != BW_OK) {
				problem = "proof";
				goto out;
			}
		json_object_object_get_ex(p, "index", &v);
		/* The size comes from the signed checkpoint, never the row. */
		if (merkle_inclusion_verify((uint64_t)json_object_get_int64(v),
			size, leaf, (const uint8_t(*)[32])pth, plen,
			r) != BW_OK) {
			problem = "inclusion";
			goto out;
		}
	}
out:
	buf_free(&text);
	buf_free(&org);
	return problem;
}

/*
 * ledger verify --org ID [--from N --to M]: recomputes the chain, then
 * checks the signed roots covering the range. Prints {"org_id","chain":
 * {...},"roots":{"checked","valid","other_key"[,"bad_day","problem"]}};
 * exits 1 when the chain is broken or a root does not verify.
 */
int
ctl_ledger_verify(struct ctl *c, int argc, char **argv)
{
	static const char *const names[] = { "org", "from", "to" };
	const char		*v[3] = { NULL, NULL, NULL };
	struct json_object	*chain = NULL, *roots = NULL, *o, *rs, *x;
	struct note_vkey	 vk;
	struct buf		 origin;
	const char		*problem = NULL, *bad_day = NULL;
	char			 key_id[9];
	long long		 from = 0, to = 0, first, last;
	size_t			 i;
	int			 rc, broken, checked = 0, other = 0;
	enum bw_err		 er;

	buf_init(&origin, BW_MAX_NOTE_NAME + 1);
	if ((rc = ctl_flags(argc, argv, names, v, 3)) != 0)
		return rc;
	if (v[0] == NULL ||
	    (v[1] != NULL && ctl_num(v[1], 1, INT64_MAX, &from) != 0) ||
	    (v[2] != NULL && ctl_num(v[2], 1, INT64_MAX, &to) != 0)) {
		fprintf(stderr,
		    "bulwarkctl: ledger verify --org ID "
		    "[--from N --to M] (N, M >= 1)\n");
		return 2;
	}
	if ((rc = ctl_connect(c)) != 0)
		return rc;
	ctl_progress("ledger verify: recomputing the hash chain of %s...",
	    v[0]);
	er = ledger_verify(c->db, v[0], from, to, &chain);
	if (er == BW_EINVAL) {
		fprintf(stderr,
		    "bulwarkctl: ledger verify: bad org id or "
		    "range\n");
		return 2;
	}
	if (er != BW_OK)
		return ctl_fail("ledger verify", er);
	json_object_object_get_ex(chain, "status", &x);
	broken = strcmp(json_object_get_string(x), "intact") != 0;
	json_object_object_get_ex(chain, "first_seq", &x);
	first = json_object_get_int64(x);
	json_object_object_get_ex(chain, "last_seq", &x);
	last = json_object_get_int64(x);

	rs = json_object_new_object();
	if (first >= 1 && last >= first) {
		if ((rc = ctl_ev_vkey(c, &vk, key_id)) != 0) {
			json_object_put(chain);
			json_object_put(rs);
			return rc;
		}
		er = note_origin(c->cfg.ledger_origin, v[0], &origin);
		if (er == BW_OK)
			er = ledger_roots_for(c->db, v[0], first, last, true,
			    &roots);
		if (er != BW_OK) {
			json_object_put(chain);
			json_object_put(rs);
			buf_free(&origin);
			return ctl_fail("ledger roots", er);
		}
		for (i = 0; i < json_object_array_length(roots); i++) {
			ctl_progress("ledger verify: signed root %zu of %zu",
			    i + 1, json_object_array_length(roots));
			o = json_object_array_get_idx(roots, i);
			json_object_object_get_ex(o, "key_id", &x);
			if (strcmp(json_object_get_string(x), key_id) != 0) {
				/* Signed by an earlier key: see
				 * docs/runbooks/ledger.md, key rotation. */
				other++;
				continue;
			}
			checked++;
			problem = ctl_ev_root(o, &vk, buf_cstr(&origin));
			if (problem != NULL) {
				json_object_object_get_ex(o, "day", &x);
				bad_day = json_object_get_string(x);
				break;
			}
		}
	}
	json_object_object_add(rs, "checked", json_object_new_int(checked));
	json_object_object_add(rs, "other_key", json_object_new_int(other));
	json_object_object_add(rs, "valid",
	    json_object_new_boolean(problem == NULL));
	if (problem != NULL) {
		json_object_object_add(rs, "bad_day",
		    json_object_new_string(bad_day));
		json_object_object_add(rs, "problem",
		    json_object_new_string(problem));
	}
	o = json_object_new_object();
	json_object_object_add(o, "org_id", json_object_new_string(v[0]));
	json_object_object_add(o, "chain", chain);
	json_object_object_add(o, "roots", rs);
	ctl_emit(o);
	json_object_put(roots);
	buf_free(&origin);
	return broken || problem != NULL ? 1 : 0;
}

/*
 * ledger roots [--before YYYY-MM-DD] [--since YYYY-MM-DD]: signs the roots
 * of every day before the given one (default today, UTC) now, looking back
 * to --since (default: each org's last root, at most 7 days). With a later day (tests) the
 * current day is signed while it may still grow: its later events are
 * then never rooted, so never do that in production.
 */
int
ctl_ledger_roots(struct ctl *c, int argc, char **argv)
{
	static const char *const names[] = { "before", "since" };
	const char		*v[2] = { NULL, NULL };
	struct json_object	*o;
	uint8_t			 seed[32];
	int			 rc, n = 0;
	enum bw_err		 er;

	if ((rc = ctl_flags(argc, argv, names, v, 2)) != 0)
		return rc;
	er = ledger_signing_key_load(c->cfg.ledger_key_file,
	    c->cfg.ledger_public_key_file, c->cfg.ledger_origin, seed);
	if (er == BW_ESTATE) {
		fprintf(stderr,
		    "bulwarkctl: ledger roots: ledger_public_key_file does "
		    "not publish the key of ledger_key_file; nothing "
		    "signed (bulwarkctl ledger pubkey)\n");
		return 1;
	}
	if (er != BW_OK)
		return ctl_fail("ledger_key_file", er);
	if ((rc = ctl_connect(c)) != 0) {
		sec_wipe(seed, sizeof(seed));
		return rc;
	}
	er = ledger_roots_compute_since(c->db, seed, c->cfg.ledger_origin, v[1],
	    v[0], &n);
	sec_wipe(seed, sizeof(seed));
	if (er == BW_EINVAL) {
		fprintf(stderr,
		    "bulwarkctl: ledger roots: --before and "
		    "--since take YYYY-MM-DD\n");
		return 2;
	}
	if (er != BW_OK)
		return ctl_fail("ledger roots", er);
	o = json_object_new_object();
	json_object_object_add(o, "roots_signed", json_object_new_int(n));
	ctl_emit(o);
	return 0;
}

/*
 * ledger keys: the published verifier keys, as GET .../ledger-keys serves
 * them (from ledger_public_key_file; no access to the seed needed).
 */
int
ctl_ledger_keys(struct ctl *c, int argc, char **argv)
{
	struct json_object *keys = NULL, *o;
	struct note_vkey    vk;
	char		    key_id[9];
	int		    rc;
	enum bw_err	    er;

	(void)argv;
	if (argc != 0) {
		fprintf(stderr,
		    "bulwarkctl: ledger keys takes no "
		    "arguments\n");
		return 2;
	}
	if ((rc = ctl_ev_vkey(c, &vk, key_id)) != 0)
		return rc;
	er = ledger_public_keys(&vk, &keys);
	if (er != BW_OK)
		return ctl_fail("ledger keys", er);
	o = json_object_new_object();
	json_object_object_add(o, "keys", keys);
	ctl_emit(o);
	return 0;
}

/*
 * ledger keygen: a new signing key at ledger_key_file (mode 0640, never
 * over an existing one) and its public key at ledger_public_key_file.
 * Prints the published keys. For a rotation, point both at new paths
 * (BULWARK_LEDGER_KEY_FILE=... BULWARK_LEDGER_PUBLIC_KEY_FILE=...), then
 * move them in place (docs/runbooks/ledger.md).
 */
int
ctl_ledger_keygen(struct ctl *c, int argc, char **argv)
{
	enum bw_err er;

	(void)argv;
	if (argc != 0) {
		fprintf(stderr,
		    "bulwarkctl: ledger keygen takes no arguments\n");
		return 2;
	}
	er = ledger_keygen(c->cfg.ledger_key_file,
	    c->cfg.ledger_public_key_file, c->cfg.ledger_origin);
	if (er == BW_EEXISTS) {
		fprintf(stderr,
		    "bulwarkctl: ledger keygen: %s exists; a key is "
		    "never overwritten\n",
		    c->cfg.ledger_key_file);
		return 1;
	}
	if (er != BW_OK)
		return ctl_fail("ledger keygen", er);
	return ctl_ledger_keys(c, 0, argv);
}

/*
 * ledger pubkey: (re)writes ledger_public_key_file from the seed in
 * ledger_key_file, e.g. once after upgrading from a release that served
 * the key from the seed. Prints the published keys.
 */
int
ctl_ledger_pubkey(struct ctl *c, int argc, char **argv)
{
	uint8_t	    seed[32];
	enum bw_err er;

	(void)argv;
	if (argc != 0) {
		fprintf(stderr,
		    "bulwarkctl: ledger pubkey takes no arguments\n");
		return 2;
	}
	er = ledger_key_load(c->cfg.ledger_key_file, seed);
	if (er != BW_OK)
		return ctl_fail("ledger_key_file", er);
	er = ledger_pubkey_write(c->cfg.ledger_public_key_file, seed,
	    c->cfg.ledger_origin);
	sec_wipe(seed, sizeof(seed));
	if (er != BW_OK)
		return ctl_fail("ledger_public_key_file", er);
	return ctl_ledger_keys(c, 0, argv);
}

/*
 * evidence sweep [--older-than SECONDS]: removes interrupted uploads and
 * stored files without a row older than that (default 3600 s), as the
 * retention worker does. Prints {"removed":n}.
 */
int
ctl_evidence_sweep(struct ctl *c, int argc, char **argv)
{
	static const char *const names[] = { "older-than" };
	const char		*v[1] = { NULL };
	struct json_object	*o;
	long long		 older = 3600;
	int			 rc, n = 0;
	enum bw_err		 er;

	if ((rc = ctl_flags(argc, argv, names, v, 1)) != 0)
		return rc;
	if (v[0] != NULL && ctl_num(v[0], 0, INT64_MAX, &older) != 0) {
		fprintf(stderr, "bulwarkctl: --older-than takes seconds\n");
		return 2;
	}
	if ((rc = ctl_connect(c)) != 0)
		return rc;
	er = evidence_sweep_orphans(c->db, c->cfg.storage_dir, older, &n);
	if (er != BW_OK)
		return ctl_fail("evidence sweep", er);
	o = json_object_new_object();
	json_object_object_add(o, "removed", json_object_new_int(n));
	ctl_emit(o);
	return 0;
}
