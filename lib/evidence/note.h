/* SPDX-License-Identifier: MIT */
/*
 * C2SP signed notes with Ed25519 keys (c2sp.org/signed-note), transparency
 * log checkpoints (c2sp.org/tlog-checkpoint) and offline inclusion proofs
 * (c2sp.org/tlog-proof): the formats in which daily ledger roots are
 * published so that existing transparency-log tools can check them.
 */
#ifndef BW_NOTE_H
#define BW_NOTE_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/limits.h"

#define NOTE_ALG_ED25519   0x01 /* signed-note signature type */
#define NOTE_TLOG_PROOF_V1 "c2sp.org/tlog-proof@v1"

/* A parsed verifier key ("<name>+<hex id>+<base64(0x01 || pub)>"). */
struct note_vkey {
	char	 name[BW_MAX_NOTE_NAME + 1];
	uint32_t id;
	uint8_t	 pub[32];
};

/*
 * Key ID = SHA-256(name || 0x0A || 0x01 || pub)[:4], big-endian.
 * BW_OK, BW_EINVAL (invalid key name) or BW_ECRYPTO.
 */
enum bw_err note_key_id(const char *name, const uint8_t pub[32], uint32_t *id);
/* Appends the verifier key text of (name, pub) to out. */
enum bw_err note_vkey(const char *name, const uint8_t pub[32], struct buf *out);
/* Parses s[0..n) strictly; the key ID must match name and key. */
enum bw_err note_parse_vkey(const char *s, size_t n, struct note_vkey *out);
/* Appends "PRIVATE+KEY+<name>+<hex id>+<base64(0x01 || seed)>" to out. */
enum bw_err
note_skey(const char *name, const uint8_t seed[32], struct buf *out);
/*
 * Parses a signer key; name_out gets the key name (BW_MAX_NOTE_NAME + 1
 * bytes), seed the Ed25519 seed. Wipe the seed after use.
 */
enum bw_err note_parse_skey(const char *s, size_t n,
    char name_out[BW_MAX_NOTE_NAME + 1], uint8_t seed[32]);
/*
 * Appends text (which must end in a newline), the blank line and one
 * Ed25519 signature line by key name with seed to out: a whole note.
 */
enum bw_err note_sign(const char *text, size_t n, const char *name,
    const uint8_t seed[32], struct buf *out);
/*
 * Opens the signed note msg[0..n) with key: BW_OK when a signature by key
 * (same name and ID) verifies and no signature by key fails; the note text
 * (with its final newline) is appended to text_out (may be NULL).
 * Signatures by other keys are skipped. BW_EINVAL for malformed notes,
 * BW_ETOOBIG past the limits, BW_ECRYPTO for bad or missing signatures.
 */
enum bw_err note_verify(const char *msg, size_t n, const struct note_vkey *key,
    struct buf *text_out);
/*
 * Appends "<host>/ledger/<org_id>", the origin and key name of an org's
 * ledger log; host may hold a path ("bulwark.example" or "example.com/x").
 */
enum bw_err note_origin(const char *host, const char *org_id, struct buf *out);
/* Appends the checkpoint note text "<origin>\n<size>\n<base64 root>\n". */
enum bw_err note_checkpoint_body(const char *origin, uint64_t size,
    const uint8_t root[32], struct buf *out);
/*
 * Parses checkpoint note text (extension lines allowed): the origin is
 * appended to origin_out (may be NULL), size and root are set. Only use on
 * text returned by note_verify().
 */
enum bw_err note_checkpoint_parse(const char *text, size_t n,
    struct buf *origin_out, uint64_t *size, uint8_t root[32]);
/*
 * Appends a tlog-proof: header, optional extra data (extra NULL or
 * elen 0 for none), index, the inclusion proof lines and the signed
 * checkpoint note verbatim.
 */
enum bw_err note_tlog_proof(uint64_t index, const uint8_t (*proof)[32],
    size_t plen, const char *checkpoint, size_t clen, const void *extra,
    size_t elen, struct buf *out);
/*
 * Verifies the tlog-proof p[0..n) offline: the checkpoint must be signed
 * by key and name origin, and the proof must show leaf (a leaf hash, see
 * merkle_leaf_hash()) at the index in the checkpoint's tree size. index
 * (may be NULL) gets the index; extra (may be NULL) gets the decoded,
 * unauthenticated extra data. BW_OK, BW_EINVAL (malformed), BW_ECRYPTO
 * (signature, origin or proof wrong), BW_ETOOBIG or BW_ENOMEM.
 */
enum bw_err note_tlog_proof_verify(const char *p, size_t n,
    const uint8_t leaf[32], const char *origin, const struct note_vkey *key,
    uint64_t *index, struct buf *extra);

#endif
