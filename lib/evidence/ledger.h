/* SPDX-License-Identifier: MIT */
/*
 * The evidence ledger: a hash chain per org (ledger_seq 1, 2, 3... with no
 * gaps), daily RFC 6962 Merkle roots over each UTC day's event hashes,
 * signed with Ed25519 and published as C2SP tlog checkpoints in signed
 * notes (lib/evidence/merkle.h, lib/evidence/note.h).
 *
 *   hash = SHA-256(canonical(org_id, seq, type, payload_hash, prev_hash,
 *                            time))
 * The canonical encoding is documented in ledger.c and docs/verification.md
 * so that a third party can recompute it. Appends are serialized per org.
 */
#ifndef BW_LEDGER_H
#define BW_LEDGER_H

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "core/buf.h"
#include "core/db.h"
#include "core/err.h"

struct note_vkey;

struct ledger_entry {
	int64_t seq;
	char	hash_hex[65]; /* this event's hash */
};

/*
 * Appends an event of type (e.g. "evidence.uploaded", "export.created",
 * "export.state", "export.verified") with payload_hash (32 bytes, the
 * SHA-256 of whatever the event is about) inside the caller's transaction.
 * *out gets the new seq and hash.
 */
enum bw_err ledger_append_tx(struct db *, const char *org_id, const char *type,
    const uint8_t payload_hash[32], struct ledger_entry *out);
/*
 * Recomputes the chain of org over [from, to] (0 = from the start / to the
 * end). *out: {"status":"intact"|"broken","first_seq","last_seq",
 * "head_hash"[,"broken_at"]} (new, caller puts).
 */
enum bw_err ledger_verify(struct db *, const char *org_id, int64_t from,
    int64_t to, struct json_object **out);
/*
 * Computes, signs and stores the root of every (org, UTC day) that has
 * events and no root yet, for days before `before_day` (YYYY-MM-DD; NULL =
 * today UTC). Idempotent: a stored root is never recomputed. *n = roots made.
 * key_name is the config's ledger_origin: it names the signing key and
 * prefixes each org's log origin "<key_name>/ledger/<org_id>".
 */
enum bw_err ledger_roots_compute(struct db *, const uint8_t seed[32],
    const char *key_name, const char *before_day, int *n);
/*
 * As ledger_roots_compute(), but looks for unsigned days from since_day
 * (YYYY-MM-DD; NULL = the default: the day after each org's last root, at
 * most 7 days back). For catching up old days by hand.
 */
enum bw_err ledger_roots_compute_since(struct db *, const uint8_t seed[32],
    const char *key_name, const char *since_day, const char *before_day,
    int *n);
/*
 * The daily roots covering seqs [first, last] of org, each {"day","root",
 * "event_count","first_seq","last_seq","signature","key_id",
 * "checkpoint"} and, when with_proofs, for each seq in [first,last] an
 * RFC 6962 inclusion proof in its day's tree, carried by that day's root
 * object: "proofs":[{"seq","day","index","tree_size","event_hash",
 * "leaf_hash","path":[hex...]}]. (new array, caller puts)
 */
enum bw_err ledger_roots_for(struct db *, const char *org_id, int64_t first,
    int64_t last, bool with_proofs, struct json_object **out);
/*
 * The public verifier keys rendered from the published key vk:
 * [{"key_id","name","vkey","public_key_b64","algorithm":"Ed25519"}] (new,
 * caller puts). lib/evidence/ledger_pub.c.
 */
enum bw_err
ledger_public_keys(const struct note_vkey *vk, struct json_object **out);
/*
 * Reads the public key file (ledger_public_key_file: one C2SP verifier key
 * line) into *out; its name must be key_name (ledger_origin). BW_OK,
 * BW_ENOTFOUND (no file), BW_EIO, BW_EINVAL (not one verifier key),
 * BW_ESTATE (a key of another name). Reads no secret: what bulwark-fcgi
 * serves. lib/evidence/ledger_pub.c.
 */
enum bw_err ledger_pubkey_load(const char *path, const char *key_name,
    struct note_vkey *out);
/* Appends Prometheus text for /metrics read at scrape time:
 * bulwark_ledger_events (appends so far: the sum of the heads' seqs, a row
 * per org) and bulwark_ledger_roots (daily roots computed and signed). */
enum bw_err ledger_prom(struct db *, struct buf *out);
/*
 * The signing side, lib/evidence/ledger_key.c: only the signers
 * (bulwark-ledger, bulwarkctl) link it, never bulwark-fcgi.
 *
 * Loads a 32-byte Ed25519 seed from a key file (base64 or raw 32 bytes).
 */
enum bw_err ledger_key_load(const char *path, uint8_t seed[32]);
/*
 * The seed that may sign: loads it from path and checks that the public
 * key file pub_path publishes its verifier key under key_name, so that
 * nothing is signed that the published key does not verify. BW_OK; a
 * ledger_key_load() error; BW_ESTATE when the public key file is missing,
 * unreadable or holds another key. Failures are logged; seed is wiped.
 */
enum bw_err ledger_signing_key_load(const char *path, const char *pub_path,
    const char *key_name, uint8_t seed[32]);
/*
 * Writes the verifier key of seed under key_name to pub_path (one line,
 * mode 0644; a temporary file renamed over it). BW_OK, BW_EINVAL, BW_EIO.
 */
enum bw_err ledger_pubkey_write(const char *pub_path, const uint8_t seed[32],
    const char *key_name);
/*
 * A new key: 32 random bytes, base64, at path (mode 0640, never over an
 * existing file: BW_EEXISTS), then its public key file at pub_path. On
 * failure neither is left behind. BW_OK, BW_EEXISTS, BW_EINVAL, BW_EIO.
 */
enum bw_err
ledger_keygen(const char *path, const char *pub_path, const char *key_name);
/*
 * The hash of one event: SHA-256 of its canonical encoding (ledger.c,
 * docs/verification.md); time_us = microseconds since the epoch (UTC).
 * Needs no database: offline verifiers recompute the chain with it.
 */
enum bw_err ledger_event_hash(const char *org_id, int64_t seq, const char *type,
    const uint8_t payload_hash[32], const uint8_t prev_hash[32],
    int64_t time_us, uint8_t out[32]);
/* 1 for an event type: [a-z][a-z0-9_.]{0,63}. */
int ledger_type_ok(const char *type);
/*
 * The stored fields of org's events with the n given seqs, so that a
 * verifier can recompute each hash: *out = {"<seq>":{"type",
 * "payload_hash","prev_hash","time_us","hash"}} (new, caller puts); seqs
 * without an event are absent. BW_EINVAL for a bad org id.
 */
enum bw_err ledger_events_get(struct db *, const char *org_id,
    const int64_t *seqs, size_t n, struct json_object **out);

#endif
