/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness for lib/evidence/note.c: the parsers of verifier and signer
 * keys, signed notes, checkpoints and tlog-proofs, every one on each input,
 * with the TEST key of shared/vectors/checkpoint_vectors.json so seeds
 * reach the signature and proof checks. Round trips are asserted: a parsed
 * key prints back to the same text, and a note this code signs verifies.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "core/buf.h"
#include "core/limits.h"
#include "evidence/merkle.h"
#include "evidence/note.h"

int LLVMFuzzerInitialize(int *, char ***);
int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define ORIGIN "verify.example.invalid/ledger/org-42"
#define VKEY   ORIGIN "+9fae4a2a+AZA853ri8JvdiqeH3zp5wl9jCQJfG6J0QLGbmu7RLQsA"
#define EXVKEY         \
	"example.com/" \
	"foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"

static const uint8_t seed[32] = {
	0x6d,
	0xed,
	0x81,
	0xb1,
	0x5f,
	0xb3,
	0xea,
	0x8a,
	0x5a,
	0x53,
	0x56,
	0x8d,
	0xdf,
	0x14,
	0x6a,
	0xd0,
	0xe6,
	0x77,
	0x90,
	0x54,
	0xb7,
	0xe5,
	0xea,
	0xd7,
	0x22,
	0x30,
	0x1b,
	0x22,
	0x63,
	0x08,
	0x50,
	0x8a,
};

static struct note_vkey key, exkey;
static uint8_t		leaf[32];

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const uint8_t leafdata[] = { 0x40, 0x41, 0x42, 0x43 };

	(void)argc;
	(void)argv;
	if (note_parse_vkey(VKEY, strlen(VKEY), &key) != BW_OK ||
	    note_parse_vkey(EXVKEY, strlen(EXVKEY), &exkey) != BW_OK ||
	    merkle_leaf_hash(leafdata, sizeof(leafdata), leaf) != BW_OK)
		abort();
	return 0;
}

/*
 * s[0..n) with the 8 hex digits of the key ID after the first '+' from off
 * lower-cased: the parser takes upper-case hex as Go's note package does
 * (strconv.ParseUint), the printers write lower case. Caller frees.
 */
static char *
lower_id(const char *s, size_t n, size_t off)
{
	char  *c, *p;
	size_t i;

	if ((c = malloc(n + 1)) == NULL)
		abort();
	memcpy(c, s, n);
	c[n] = '\0';
	if (off <= n && (p = memchr(c + off, '+', n - off)) != NULL)
		for (i = 1; i <= 8 && p + i < c + n; i++)
			p[i] = (char)tolower((unsigned char)p[i]);
	return c;
}

/* Parsed keys must print back to the input, but for the ID's hex case. */
static void
check_keys(const char *s, size_t n)
{
	struct note_vkey vk;
	struct buf	 b;
	char		 name[BW_MAX_NOTE_NAME + 1], *want;
	uint8_t		 sd[32];
	uint32_t	 id;

	buf_init(&b, BW_MAX_NOTE);
	if (note_parse_vkey(s, n, &vk) == BW_OK) {
		if (note_key_id(vk.name, vk.pub, &id) != BW_OK || id != vk.id)
			abort();
		want = lower_id(s, n, 0);
		if (note_vkey(vk.name, vk.pub, &b) != BW_OK || b.len != n ||
		    memcmp(b.p, want, n) != 0)
			abort();
		free(want);
	}
	buf_reset(&b);
	if (note_parse_skey(s, n, name, sd) == BW_OK) {
		want = lower_id(s, n, strlen("PRIVATE+KEY+"));
		if (note_skey(name, sd, &b) != BW_OK || b.len != n ||
		    memcmp(b.p, want, n) != 0)
			abort();
		free(want);
		OPENSSL_cleanse(sd, sizeof(sd));
	}
	buf_free(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	struct buf  text, origin, extra, note;
	uint64_t    tsize, idx;
	uint8_t	    root[32];
	enum bw_err er;

	check_keys(s, size);

	buf_init(&text, BW_MAX_NOTE);
	buf_init(&origin, BW_MAX_NOTE);
	buf_init(&extra, BW_MAX_NOTE);
	buf_init(&note, 2 * BW_MAX_NOTE);

	/* A signed note, then its text as a checkpoint (the real order). */
	er = note_verify(s, size, &key, &text);
	if (er == BW_OK) {
		if (text.len == 0 || text.p[text.len - 1] != '\n' ||
		    text.len >= size)
			abort();
		(void)note_checkpoint_parse(text.p, text.len, &origin, &tsize,
		    root);
	} else if (text.len != 0)
		abort(); /* nothing appended on failure */
	buf_reset(&text);
	(void)note_verify(s, size, &exkey, NULL);

	/* The checkpoint parser alone, on any text. */
	buf_reset(&origin);
	(void)note_checkpoint_parse(s, size, &origin, &tsize, root);

	/* A tlog-proof for the vectors' leaf 5. */
	(void)note_tlog_proof_verify(s, size, leaf, ORIGIN, &key, &idx, &extra);

	/* Whatever text note_sign() accepts, note_verify() opens again. */
	if (note_sign(s, size, ORIGIN, seed, &note) == BW_OK) {
		if (note_verify(note.p, note.len, &key, &text) != BW_OK ||
		    text.len != size || memcmp(text.p, s, size) != 0)
			abort();
	}

	buf_free(&text);
	buf_free(&origin);
	buf_free(&extra);
	buf_free(&note);
	return 0;
}
