/* SPDX-License-Identifier: MIT */
/*
 * RFC 6962 §2.1 Merkle hash trees: the ledger's daily roots and the proofs
 * an export carries. Every walk is iterative with a fixed-size stack of at
 * most MERKLE_MAX_PROOF entries, so no input can exhaust the C stack.
 */
#include <string.h>

#include "evidence/merkle.h"
#include "core/sec.h"

/* Room for one subtree head per set bit of a size_t, plus one in flight. */
#define MERKLE_STACK (MERKLE_MAX_DEPTH + 1)

STATIC enum bw_err
merkle_hash2(const void *, size_t, const void *, size_t, uint8_t[32]);

/*
 * SHA-256(0x00 || d[0..n)) into out (RFC 6962 §2.1 leaf hash).
 * Returns BW_OK, BW_EINVAL (d NULL with n > 0), BW_ENOMEM or BW_ECRYPTO.
 */
enum bw_err
merkle_leaf_hash(const void *d, size_t n, uint8_t out[32])
{
	static const uint8_t   pfx = 0x00;
	struct sec_sha256_ctx *c;
	uint8_t		       h[32];
	enum bw_err	       er;

	if (d == NULL && n > 0)
		return BW_EINVAL;
	c = sec_sha256_new();
	if (c == NULL)
		return BW_ENOMEM;
	er = sec_sha256_update(c, &pfx, 1);
	if (er == BW_OK)
		er = sec_sha256_update(c, d, n);
	if (er == BW_OK)
		er = sec_sha256_final(c, h);
	sec_sha256_free(c);
	if (er == BW_OK)
		memcpy(out, h, sizeof(h));
	return er;
}

/*
 * SHA-256(0x01 || l[0..ln) || r[0..rn)) into out, for ln + rn <= 64; out
 * may alias l or r. Exposed to tests (STATIC) for the RFC 6962 hasher
 * vectors, whose node inputs are not 32 bytes. Returns BW_OK, BW_EINVAL or
 * BW_ECRYPTO.
 */
STATIC enum bw_err
merkle_hash2(const void *l, size_t ln, const void *r, size_t rn,
    uint8_t out[32])
{
	uint8_t b[1 + 2 * MERKLE_HASH_LEN];

	if (ln > 2 * MERKLE_HASH_LEN || rn > 2 * MERKLE_HASH_LEN - ln)
		return BW_EINVAL;
	b[0] = 0x01;
	if (ln > 0)
		memcpy(b + 1, l, ln);
	if (rn > 0)
		memcpy(b + 1 + ln, r, rn);
	return sec_sha256(b, 1 + ln + rn, out);
}

/*
 * SHA-256(0x01 || l || r) into out (RFC 6962 §2.1 interior node); out may
 * alias l or r. Returns BW_OK or BW_ECRYPTO.
 */
enum bw_err
merkle_node_hash(const uint8_t l[32], const uint8_t r[32], uint8_t out[32])
{
	return merkle_hash2(l, MERKLE_HASH_LEN, r, MERKLE_HASH_LEN, out);
}

/* The largest power of two strictly smaller than n (n >= 2); no overflow. */
static size_t
merkle_split(size_t n)
{
	size_t k = 1;

	while (k < n - k)
		k <<= 1;
	return k;
}

/*
 * MTH(D[lo:hi]) for 0 <= lo < hi: leaves are pushed left to right and
 * equal-sized perfect subtrees merged, so the stack holds the perfect
 * subtrees of the binary decomposition of hi - lo; folding it from the
 * right gives RFC 6962's split at the largest power of two.
 * Returns BW_OK or BW_ECRYPTO.
 */
static enum bw_err
merkle_range(const uint8_t (*leaves)[32], size_t lo, size_t hi, uint8_t out[32])
{
	uint8_t	     st[MERKLE_STACK][32];
	unsigned int lvl[MERKLE_STACK];
	size_t	     top = 0, i;
	enum bw_err  er = BW_OK;

	for (i = lo; i < hi; i++) {
		memcpy(st[top], leaves[i], 32);
		lvl[top++] = 0;
		while (top >= 2 && lvl[top - 1] == lvl[top - 2]) {
			er = merkle_node_hash(st[top - 2], st[top - 1],
			    st[top - 2]);
			if (er != BW_OK)
				return er;
			lvl[top - 2]++;
			top--;
		}
	}
	while (top >= 2) {
		er = merkle_node_hash(st[top - 2], st[top - 1], st[top - 2]);
		if (er != BW_OK)
			return er;
		top--;
	}
	memcpy(out, st[0], 32);
	return BW_OK;
}

/*
 * MTH(D[n]) into out; leaves are n leaf hashes owned by the caller. The
 * empty tree's head is SHA-256(""). Returns BW_OK, BW_EINVAL (leaves NULL
 * with n > 0) or BW_ECRYPTO.
 */
enum bw_err
merkle_root(const uint8_t (*leaves)[32], size_t n, uint8_t out[32])
{
	if (n == 0)
		return sec_sha256("", 0, out);
	if (leaves == NULL)
		return BW_EINVAL;
	return merkle_range(leaves, 0, n, out);
}

/*
 * RFC 6962 §2.1.1 PATH(index, D[n]) into proof (MERKLE_MAX_DEPTH entries,
 * caller's), leaf level first; *plen gets the count. The walk descends
 * from the root, so siblings are gathered top-down and reversed.
 * Returns BW_OK, BW_EINVAL (index >= n, NULL arguments) or BW_ECRYPTO;
 * proof and *plen are untouched on failure.
 */
enum bw_err
merkle_inclusion_proof(const uint8_t (*leaves)[32], size_t n, size_t index,
    uint8_t (*proof)[32], size_t *plen)
{
	uint8_t	    tmp[MERKLE_MAX_DEPTH][32];
	size_t	    lo = 0, hi = n, k, cnt = 0, i;
	enum bw_err er;

	if (leaves == NULL || proof == NULL || plen == NULL || index >= n)
		return BW_EINVAL;
	while (hi - lo > 1) {
		if (cnt == MERKLE_MAX_DEPTH)
			return BW_EINVAL;
		k = merkle_split(hi - lo);
		if (index < lo + k) {
			er = merkle_range(leaves, lo + k, hi, tmp[cnt]);
			hi = lo + k;
		} else {
			er = merkle_range(leaves, lo, lo + k, tmp[cnt]);
			lo += k;
		}
		if (er != BW_OK)
			return er;
		cnt++;
	}
	for (i = 0; i < cnt; i++)
		memcpy(proof[i], tmp[cnt - 1 - i], 32);
	*plen = cnt;
	return BW_OK;
}

/*
 * Right-shifts fn and sn together until fn's lowest bit is set or fn is
 * zero (the inner loop of RFC 9162 §2.1.3.2 and §2.1.4.2).
 */
static void
merkle_shift_even(uint64_t *fn, uint64_t *sn)
{
	while ((*fn & 1) == 0 && *fn != 0) {
		*fn >>= 1;
		*sn >>= 1;
	}
}

/*
 * RFC 9162 §2.1.3.2: recomputes the head from leaf and proof and compares
 * it with root. Returns BW_OK when equal, BW_EINVAL for index >= size,
 * plen > MERKLE_MAX_DEPTH or NULL arguments, BW_ECRYPTO otherwise.
 */
enum bw_err
merkle_inclusion_verify(uint64_t index, uint64_t size, const uint8_t leaf[32],
    const uint8_t (*proof)[32], size_t plen, const uint8_t root[32])
{
	uint8_t	    r[32];
	uint64_t    fn, sn;
	size_t	    i;
	enum bw_err er;

	if (leaf == NULL || root == NULL || (proof == NULL && plen > 0))
		return BW_EINVAL;
	if (index >= size || plen > MERKLE_MAX_DEPTH)
		return BW_EINVAL;
	fn = index;
	sn = size - 1;
	memcpy(r, leaf, 32);
	for (i = 0; i < plen; i++) {
		if (sn == 0)
			return BW_ECRYPTO;
		if ((fn & 1) != 0 || fn == sn) {
			er = merkle_node_hash(proof[i], r, r);
			if ((fn & 1) == 0)
				merkle_shift_even(&fn, &sn);
		} else
			er = merkle_node_hash(r, proof[i], r);
		if (er != BW_OK)
			return er;
		fn >>= 1;
		sn >>= 1;
	}
	if (sn != 0 || !sec_eq(r, 32, root, 32))
		return BW_ECRYPTO;
	return BW_OK;
}

/*
 * RFC 6962 §2.1.2 PROOF(n_old, D[n_new]) = SUBPROOF(n_old, D[n_new], true)
 * into proof (MERKLE_MAX_PROOF entries, caller's), lowest level first.
 * Each step of the descent appends one sibling head after the deeper
 * part, so they are gathered and then emitted in reverse, preceded by
 * the head of the final subtree when it is not the whole old tree.
 * Returns BW_OK, BW_EINVAL (n_old == 0, n_old > n_new, NULL arguments)
 * or BW_ECRYPTO; proof and *plen are untouched on failure.
 */
enum bw_err
merkle_consistency_proof(const uint8_t (*leaves)[32], size_t n_old,
    size_t n_new, uint8_t (*proof)[32], size_t *plen)
{
	uint8_t	    tmp[MERKLE_MAX_PROOF][32], base[32];
	size_t	    lo = 0, hi = n_new, m = n_old, k, cnt = 0, i, o = 0;
	int	    whole = 1;
	enum bw_err er;

	if (leaves == NULL || proof == NULL || plen == NULL || n_old == 0 ||
	    n_old > n_new)
		return BW_EINVAL;
	while (m != hi - lo) {
		if (cnt == MERKLE_MAX_DEPTH)
			return BW_EINVAL;
		k = merkle_split(hi - lo);
		if (m <= k) {
			er = merkle_range(leaves, lo + k, hi, tmp[cnt]);
			hi = lo + k;
		} else {
			er = merkle_range(leaves, lo, lo + k, tmp[cnt]);
			lo += k;
			m -= k;
			whole = 0;
		}
		if (er != BW_OK)
			return er;
		cnt++;
	}
	if (!whole) {
		er = merkle_range(leaves, lo, hi, base);
		if (er != BW_OK)
			return er;
		memcpy(proof[o++], base, 32);
	}
	for (i = 0; i < cnt; i++)
		memcpy(proof[o++], tmp[cnt - 1 - i], 32);
	*plen = o;
	return BW_OK;
}

/*
 * RFC 9162 §2.1.4.2: recomputes both heads from the proof. When old_size
 * is a power of two the old head itself is the proof's implicit first
 * node. Returns BW_OK, BW_EINVAL (old_size == 0, old_size > new_size,
 * plen > MERKLE_MAX_PROOF, NULL arguments) or BW_ECRYPTO.
 */
enum bw_err
merkle_consistency_verify(uint64_t old_size, uint64_t new_size,
    const uint8_t old_root[32], const uint8_t new_root[32],
    const uint8_t (*proof)[32], size_t	      plen)
{
	uint8_t	       fr[32], sr[32];
	const uint8_t *c;
	uint64_t       fn, sn;
	size_t	       i, n;
	int	       pow2;
	enum bw_err    er = BW_OK;

	if (old_root == NULL || new_root == NULL || (proof == NULL && plen > 0))
		return BW_EINVAL;
	if (old_size == 0 || old_size > new_size || plen > MERKLE_MAX_PROOF)
		return BW_EINVAL;
	if (old_size == new_size) {
		if (plen != 0 || !sec_eq(old_root, 32, new_root, 32))
			return BW_ECRYPTO;
		return BW_OK;
	}
	if (plen == 0)
		return BW_ECRYPTO;
	pow2 = (old_size & (old_size - 1)) == 0;
	n = plen + (pow2 ? 1 : 0);
	fn = old_size - 1;
	sn = new_size - 1;
	while ((fn & 1) != 0) {
		fn >>= 1;
		sn >>= 1;
	}
	c = pow2 ? old_root : proof[0];
	memcpy(fr, c, 32);
	memcpy(sr, c, 32);
	for (i = 1; i < n; i++) {
		c = proof[pow2 ? i - 1 : i];
		if (sn == 0)
			return BW_ECRYPTO;
		if ((fn & 1) != 0 || fn == sn) {
			er = merkle_node_hash(c, fr, fr);
			if (er == BW_OK)
				er = merkle_node_hash(c, sr, sr);
			if ((fn & 1) == 0)
				merkle_shift_even(&fn, &sn);
		} else
			er = merkle_node_hash(sr, c, sr);
		if (er != BW_OK)
			return er;
		fn >>= 1;
		sn >>= 1;
	}
	if (sn != 0 || !sec_eq(fr, 32, old_root, 32) ||
	    !sec_eq(sr, 32, new_root, 32))
		return BW_ECRYPTO;
	return BW_OK;
}
