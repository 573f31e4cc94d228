/* SPDX-License-Identifier: MIT */
/*
 * RFC 6962 §2.1 Merkle hash trees over SHA-256: leaf and node hashes, tree
 * heads, inclusion and consistency proofs, and their verification (RFC 9162
 * §2.1.3.2 and §2.1.4.2). Pure computation; no I/O, no recursion.
 */
#ifndef BW_MERKLE_H
#define BW_MERKLE_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define MERKLE_HASH_LEN	 32
/* Tree depth for sizes up to 2^64; inclusion proofs are never longer. */
#define MERKLE_MAX_DEPTH 64
/* Longest consistency proof: one node per level plus the old root. */
#define MERKLE_MAX_PROOF (MERKLE_MAX_DEPTH + 1)

/* SHA-256(0x00 || d[0..n)). BW_OK or BW_ECRYPTO. */
enum bw_err merkle_leaf_hash(const void *d, size_t n, uint8_t out[32]);
/* SHA-256(0x01 || l || r). BW_OK or BW_ECRYPTO. */
enum bw_err
merkle_node_hash(const uint8_t l[32], const uint8_t r[32], uint8_t out[32]);
/*
 * MTH(D[n]) over n leaf hashes (already merkle_leaf_hash()ed); the empty
 * tree's head is SHA-256(""). BW_OK, BW_EINVAL or BW_ECRYPTO.
 */
enum bw_err merkle_root(const uint8_t (*leaves)[32], size_t n, uint8_t out[32]);
/*
 * PATH(index, D[n]) into proof[MERKLE_MAX_DEPTH], leaf level first;
 * *plen gets its length. BW_EINVAL when index >= n.
 */
enum bw_err merkle_inclusion_proof(const uint8_t (*leaves)[32], size_t n,
    size_t index, uint8_t (*proof)[32], size_t *plen);
/*
 * BW_OK when proof shows leaf at index in the tree of size whose head is
 * root; BW_EINVAL when index >= size or plen > MERKLE_MAX_DEPTH;
 * BW_ECRYPTO when the proof does not verify. size must come from a signed
 * checkpoint, never from a request.
 */
enum bw_err
merkle_inclusion_verify(uint64_t index, uint64_t size, const uint8_t leaf[32],
    const uint8_t (*proof)[32], size_t plen, const uint8_t root[32]);
/*
 * PROOF(n_old, D[n_new]) into proof[MERKLE_MAX_PROOF], lowest level first;
 * empty when n_old == n_new. BW_EINVAL when n_old == 0 or n_old > n_new.
 */
enum bw_err merkle_consistency_proof(const uint8_t (*leaves)[32], size_t n_old,
    size_t n_new, uint8_t (*proof)[32], size_t *plen);
/*
 * BW_OK when proof shows the tree of old_size with head old_root is a
 * prefix of the tree of new_size with head new_root (equal sizes: empty
 * proof and equal heads); BW_EINVAL when old_size == 0, old_size >
 * new_size or plen > MERKLE_MAX_PROOF; BW_ECRYPTO when it does not verify.
 */
enum bw_err merkle_consistency_verify(uint64_t old_size, uint64_t new_size,
    const uint8_t old_root[32], const uint8_t new_root[32],
    const uint8_t (*proof)[32], size_t	      plen);

#ifdef BW_TESTING
/* Static functions of merkle.c, visible to tests (STATIC in core/err.h). */
enum bw_err merkle_hash2(const void *l, size_t ln, const void *r, size_t rn,
    uint8_t out[32]);
#endif

#endif
