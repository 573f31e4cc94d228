/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness for lib/evidence/merkle.c: the inclusion and consistency proof
 * verifiers with arbitrary sizes, indexes and proofs (they must never read
 * past plen nor loop on sizes near 2^64), and with real proofs of a tree
 * built from the input, which must verify, and must stop verifying when
 * one byte of them is flipped.
 *
 * Input: byte 0 mode; then 8-byte LE numbers and 32-byte hashes as the
 * mode needs them (missing bytes read as zero).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "evidence/merkle.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define MAX_LEAVES 70

/* A cursor over the input; reads past the end give zeros. */
struct cur {
	const uint8_t *p;
	size_t	       n;
};

static void
take(struct cur *c, void *out, size_t len)
{
	size_t k = c->n < len ? c->n : len;

	memset(out, 0, len);
	memcpy(out, c->p, k);
	c->p += k;
	c->n -= k;
}

static uint64_t
take_u64(struct cur *c)
{
	uint64_t v;

	take(c, &v, sizeof(v));
	return v;
}

/* Arbitrary proofs: only the contract's error classes may come back. */
static void
arbitrary(struct cur *c)
{
	uint8_t	    a[32], b[32], proof[MERKLE_MAX_PROOF + 2][32];
	uint64_t    x, y;
	size_t	    plen, i;
	enum bw_err er;

	x = take_u64(c);
	y = take_u64(c);
	take(c, a, sizeof(a));
	take(c, b, sizeof(b));
	plen = c->n / 32;
	if (plen > MERKLE_MAX_PROOF + 2)
		plen = MERKLE_MAX_PROOF + 2;
	for (i = 0; i < plen; i++)
		take(c, proof[i], 32);

	er = merkle_inclusion_verify(x, y, a, proof, plen, b);
	if (er != BW_OK && er != BW_EINVAL && er != BW_ECRYPTO)
		abort();
	if (x >= y && er != BW_EINVAL)
		abort();
	if (plen > MERKLE_MAX_DEPTH && er != BW_EINVAL)
		abort();
	er = merkle_consistency_verify(x, y, a, b, proof, plen);
	if (er != BW_OK && er != BW_EINVAL && er != BW_ECRYPTO)
		abort();
	if ((x == 0 || x > y || plen > MERKLE_MAX_PROOF) && er != BW_EINVAL)
		abort();
}

/* A real tree of 1..MAX_LEAVES leaves from the input. */
static void
real(struct cur *c)
{
	uint8_t leaves[MAX_LEAVES][32], root[32], oroot[32];
	uint8_t proof[MERKLE_MAX_PROOF][32];
	uint8_t d[4];
	size_t	n, idx, old, plen, i, bit;

	take(c, d, sizeof(d));
	n = 1 + d[0] % MAX_LEAVES;
	idx = d[1] % n;
	old = 1 + d[2] % n;
	for (i = 0; i < n; i++) {
		uint8_t ld[8];

		take(c, ld, sizeof(ld));
		if (merkle_leaf_hash(ld, sizeof(ld), leaves[i]) != BW_OK)
			abort();
	}
	if (merkle_root(leaves, n, root) != BW_OK ||
	    merkle_root(leaves, old, oroot) != BW_OK)
		abort();

	if (merkle_inclusion_proof(leaves, n, idx, proof, &plen) != BW_OK ||
	    plen > MERKLE_MAX_DEPTH)
		abort();
	if (merkle_inclusion_verify(idx, n, leaves[idx], proof, plen, root) !=
	    BW_OK)
		abort();
	if (plen > 0) {
		bit = (size_t)d[3] % (plen * 256);
		proof[bit / 256][(bit / 8) % 32] ^= (uint8_t)(1u << (bit % 8));
		if (merkle_inclusion_verify(idx, n, leaves[idx], proof, plen,
			root) == BW_OK)
			abort();
	}
	/* Another index or size must not verify the same proof. */
	if (n > 1 &&
	    merkle_inclusion_proof(leaves, n, idx, proof, &plen) == BW_OK &&
	    merkle_inclusion_verify((idx + 1) % n, n, leaves[idx], proof, plen,
		root) == BW_OK &&
	    memcmp(leaves[idx], leaves[(idx + 1) % n], 32) != 0)
		abort();

	if (merkle_consistency_proof(leaves, old, n, proof, &plen) != BW_OK ||
	    plen > MERKLE_MAX_PROOF)
		abort();
	if (merkle_consistency_verify(old, n, oroot, root, proof, plen) !=
	    BW_OK)
		abort();
	if (plen > 0) {
		bit = (size_t)d[3] % (plen * 256);
		proof[bit / 256][(bit / 8) % 32] ^= (uint8_t)(1u << (bit % 8));
		if (merkle_consistency_verify(old, n, oroot, root, proof,
			plen) == BW_OK)
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cur c;

	if (size < 1)
		return 0;
	c.p = data + 1;
	c.n = size - 1;
	if (data[0] & 1)
		real(&c);
	else
		arbitrary(&c);
	return 0;
}
