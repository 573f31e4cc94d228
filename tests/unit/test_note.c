/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of lib/note: the C2SP signed-note example, the Go sumdb note
 * keys, every checkpoint and tlog-proof case of
 * VECTORS_DIR/checkpoint_vectors.json (signing with the test key gives the
 * same bytes), and the rejection of malformed and tampered notes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "evidence/merkle.h"
#include "evidence/note.h"
#include "core/sec.h"

#define EM "\xe2\x80\x94" /* U+2014 EM DASH */

static struct json_object *cvec, *mvec;

static int
setup(void **state)
{
	(void)state;
	cvec = json_object_from_file(VECTORS_DIR "/checkpoint_vectors.json");
	mvec = json_object_from_file(VECTORS_DIR "/merkle.json");
	return cvec == NULL || mvec == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	(void)state;
	json_object_put(cvec);
	json_object_put(mvec);
	return 0;
}

static struct json_object *
get(struct json_object *o, const char *k)
{
	struct json_object *v = NULL;

	assert_true(json_object_object_get_ex(o, k, &v));
	assert_non_null(v);
	return v;
}

static const char *
get_str(struct json_object *o, const char *k)
{
	return json_object_get_string(get(o, k));
}

static void
unhex_n(const char *s, uint8_t *out, size_t n)
{
	assert_int_equal(strlen(s), 2 * n);
	assert_int_equal(sec_unhex(s, 2 * n, out, n), BW_OK);
}

static void
vkey_of(const char *s, struct note_vkey *k)
{
	assert_int_equal(note_parse_vkey(s, strlen(s), k), BW_OK);
}

/* note_verify() of a C string, without the text. */
static enum bw_err
verify(const char *msg, const struct note_vkey *k)
{
	return note_verify(msg, strlen(msg), k, NULL);
}

/* The C2SP signed-note example: key ID, vkey round trip, verification. */
static void
test_official_example(void **state)
{
	struct json_object *ex;
	struct note_vkey    k;
	struct buf	    b;
	const char	   *vk, *note;
	uint32_t	    id;
	char		   *bad;

	(void)state;
	ex = get(cvec, "official_signed_note_example");
	vk = get_str(ex, "vkey");
	note = get_str(ex, "note");
	assert_true(json_object_get_boolean(get(ex, "expect_valid")));
	vkey_of(vk, &k);
	assert_string_equal(k.name, "example.com/foo");
	assert_int_equal(k.id, 0x530d903a);
	assert_int_equal(note_key_id(k.name, k.pub, &id), BW_OK);
	assert_int_equal(id, 0x530d903a);
	buf_init(&b, 1024);
	assert_int_equal(note_vkey(k.name, k.pub, &b), BW_OK);
	assert_string_equal(buf_cstr(&b), vk);
	buf_reset(&b);
	assert_int_equal(note_verify(note, strlen(note), &k, &b), BW_OK);
	assert_string_equal(buf_cstr(&b), "This is an example message.\n");
	buf_free(&b);
	/* One changed letter of the text breaks it. */
	bad = strdup(note);
	assert_non_null(bad);
	bad[0] = 't';
	assert_int_equal(verify(bad, &k), BW_ECRYPTO);
	free(bad);
}

/*
 * The keys of golang.org/x/mod/sumdb/note's documentation: the signer key
 * parses, signing reproduces the published note byte for byte, and a note
 * with two signatures opens with either key.
 */
static void
test_go_sumdb_keys(void **state)
{
	static const char skey[] =
	    "PRIVATE+KEY+PeterNeumann+c74f20a3+"
	    "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
	static const char vkey[] =
	    "PeterNeumann+c74f20a3+"
	    "ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
	static const char enoch[] =
	    "EnochRoot+af0cfe78+"
	    "ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
	static const char text[] =
	    "If you think cryptography is the answer to your problem,\n"
	    "then you don't know what your problem is.\n";
	static const char peter_sig[] =
	    EM " PeterNeumann x08go/ZJkuBS9UG/"
	       "SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6"
	       "KE6RyyBwJnAM=\n";
	static const char enoch_sig[] = EM
	    " EnochRoot rwz+eBzmZa0SO3NbfRGzP"
	    "CpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1R"
	    "vMc+QQ=\n";
	struct note_vkey kp, ke;
	struct buf	 b, want;
	char		 name[BW_MAX_NOTE_NAME + 1];
	uint8_t		 seed[32];

	(void)state;
	assert_int_equal(note_parse_skey(skey, strlen(skey), name, seed),
	    BW_OK);
	assert_string_equal(name, "PeterNeumann");
	buf_init(&b, 4096);
	buf_init(&want, 4096);
	assert_int_equal(note_skey(name, seed, &b), BW_OK);
	assert_string_equal(buf_cstr(&b), skey);
	buf_reset(&b);
	assert_int_equal(note_sign(text, strlen(text), name, seed, &b), BW_OK);
	assert_int_equal(buf_printf(&want, "%s\n%s", text, peter_sig), BW_OK);
	assert_string_equal(buf_cstr(&b), buf_cstr(&want));
	vkey_of(vkey, &kp);
	vkey_of(enoch, &ke);
	assert_int_equal(verify(buf_cstr(&b), &kp), BW_OK);
	/* Enoch did not sign this one. */
	assert_int_equal(verify(buf_cstr(&b), &ke), BW_ECRYPTO);
	assert_int_equal(buf_addstr(&b, enoch_sig), BW_OK);
	assert_int_equal(verify(buf_cstr(&b), &kp), BW_OK);
	assert_int_equal(verify(buf_cstr(&b), &ke), BW_OK);
	sec_wipe(seed, sizeof(seed));
	buf_free(&b);
	buf_free(&want);
}

/* The vectors' test key: public key, key ID, vkey and skey. */
static void
test_test_key(void **state)
{
	struct json_object *tk;
	struct note_vkey    k;
	struct buf	    b;
	uint8_t		    seed[32], pub[32], want[32], seed2[32];
	uint8_t		    idb[4];
	char		    name[BW_MAX_NOTE_NAME + 1];
	uint32_t	    id;

	(void)state;
	tk = get(cvec, "test_key");
	unhex_n(get_str(tk, "seed_hex"), seed, 32);
	unhex_n(get_str(tk, "public_key_hex"), want, 32);
	unhex_n(get_str(tk, "key_id_hex"), idb, 4);
	assert_int_equal(sec_ed25519_pub(seed, pub), BW_OK);
	assert_memory_equal(pub, want, 32);
	assert_int_equal(note_key_id(get_str(tk, "key_name"), pub, &id), BW_OK);
	assert_int_equal(id,
	    (uint32_t)idb[0] << 24 | (uint32_t)idb[1] << 16 |
		(uint32_t)idb[2] << 8 | idb[3]);
	buf_init(&b, 1024);
	assert_int_equal(note_vkey(get_str(tk, "key_name"), pub, &b), BW_OK);
	assert_string_equal(buf_cstr(&b), get_str(tk, "vkey"));
	vkey_of(get_str(tk, "vkey"), &k);
	assert_string_equal(k.name, get_str(tk, "key_name"));
	assert_int_equal(k.id, id);
	assert_memory_equal(k.pub, pub, 32);
	/* The signer key round-trips and is refused as a verifier key. */
	buf_reset(&b);
	assert_int_equal(note_skey(k.name, seed, &b), BW_OK);
	assert_int_equal(note_parse_skey(b.p, b.len, name, seed2), BW_OK);
	assert_string_equal(name, k.name);
	assert_memory_equal(seed2, seed, 32);
	assert_int_not_equal(note_parse_vkey(b.p, b.len, &k), BW_OK);
	buf_free(&b);
}

/*
 * Every checkpoint vector: the body and its signature by the test key are
 * byte-identical to the vector; the vector verifies and parses back; the
 * 6 -> 8 consistency proof holds between the two signed checkpoints.
 */
static void
test_checkpoints(void **state)
{
	struct json_object *tk, *cps, *c, *pr;
	struct note_vkey    k;
	struct buf	    body, note, text, origin;
	uint8_t		    seed[32], root[32], r[32], proof[3][32];
	uint8_t		    roots[9][32];
	uint64_t	    size, sizes[9];
	size_t		    i, cnt = 0;
	int64_t		    vs;

	(void)state;
	tk = get(cvec, "test_key");
	unhex_n(get_str(tk, "seed_hex"), seed, 32);
	vkey_of(get_str(tk, "vkey"), &k);
	buf_init(&body, BW_MAX_NOTE);
	buf_init(&note, BW_MAX_NOTE);
	buf_init(&text, BW_MAX_NOTE);
	buf_init(&origin, BW_MAX_NOTE_NAME);
	cps = get(cvec, "checkpoints");
	for (i = 0; i < json_object_array_length(cps); i++) {
		c = json_object_array_get_idx(cps, i);
		vs = json_object_get_int64(get(c, "size"));
		assert_true(vs > 0 && vs <= 8);
		unhex_n(get_str(c, "root_hex"), root, 32);
		buf_reset(&body);
		buf_reset(&note);
		buf_reset(&text);
		buf_reset(&origin);
		assert_int_equal(note_checkpoint_body(k.name, (uint64_t)vs,
				     root, &body),
		    BW_OK);
		assert_int_equal(note_sign(body.p, body.len, k.name, seed,
				     &note),
		    BW_OK);
		assert_string_equal(buf_cstr(&note), get_str(c, "note"));
		/* Verify the vector's bytes, not ours. */
		assert_int_equal(note_verify(get_str(c, "note"),
				     strlen(get_str(c, "note")), &k, &text),
		    BW_OK);
		assert_string_equal(buf_cstr(&text), buf_cstr(&body));
		assert_int_equal(note_checkpoint_parse(text.p, text.len,
				     &origin, &size, r),
		    BW_OK);
		assert_string_equal(buf_cstr(&origin), k.name);
		assert_int_equal(size, (uint64_t)vs);
		assert_memory_equal(r, root, 32);
		sizes[vs] = size;
		memcpy(roots[vs], r, 32);
		if (json_object_object_get_ex(c, "consistency_proof_to_8",
			&pr)) {
			assert_int_equal(json_object_array_length(pr), 3);
			for (size_t j = 0; j < 3; j++)
				unhex_n(json_object_get_string(
					    json_object_array_get_idx(pr, j)),
				    proof[j], 32);
		}
		cnt++;
	}
	assert_int_equal(cnt, 2);
	/* Sizes and roots both come from the signed checkpoints. */
	assert_int_equal(merkle_consistency_verify(sizes[6], sizes[8], roots[6],
			     roots[8], proof, 3),
	    BW_OK);
	assert_int_equal(merkle_consistency_verify(sizes[6], sizes[8], roots[8],
			     roots[6], proof, 3),
	    BW_ECRYPTO);
	print_message("checkpoint vectors: %zu signed identically and "
		      "verified\n",
	    cnt);
	sec_wipe(seed, sizeof(seed));
	buf_free(&body);
	buf_free(&note);
	buf_free(&text);
	buf_free(&origin);
}

/*
 * Every tlog_proof_cases entry, and the valid proof rebuilt from the
 * official tree's leaves and the size-8 checkpoint, byte for byte.
 */
static void
test_tlog_proofs(void **state)
{
	struct json_object *a, *c, *t, *lhx;
	struct note_vkey    k;
	struct buf	    ex, out;
	uint8_t		    leaf[32], data[64], lh[8][32];
	uint8_t		    proof[MERKLE_MAX_DEPTH][32];
	const char	   *s;
	uint64_t	    idx;
	size_t		    i, dl, plen, nok = 0, nbad = 0;
	enum bw_err	    er;
	int		    valid;

	(void)state;
	buf_init(&ex, 1024);
	buf_init(&out, BW_MAX_NOTE);
	a = get(cvec, "tlog_proof_cases");
	for (i = 0; i < json_object_array_length(a); i++) {
		c = json_object_array_get_idx(a, i);
		valid = json_object_get_boolean(get(c, "expect_valid"));
		s = get_str(c, "leaf_hex");
		dl = strlen(s) / 2;
		assert_true(dl <= sizeof(data));
		unhex_n(s, data, dl);
		assert_int_equal(merkle_leaf_hash(data, dl, leaf), BW_OK);
		vkey_of(get_str(c, "vkey"), &k);
		buf_reset(&ex);
		idx = 999;
		s = get_str(c, "tlog_proof");
		er = note_tlog_proof_verify(s, strlen(s), leaf,
		    get_str(c, "expected_origin"), &k, &idx, &ex);
		if (valid != (er == BW_OK))
			fail_msg("tlog proof case \"%s\": got %s",
			    get_str(c, "desc"), bw_strerror(er));
		if (valid) {
			assert_int_equal(idx, 5);
			if (strstr(s, "\nextra ") != NULL)
				assert_string_equal(buf_cstr(&ex),
				    "export:manifest-v1");
			else
				assert_int_equal(ex.len, 0);
			nok++;
		} else {
			assert_int_equal(idx, 999);
			nbad++;
		}
	}
	assert_int_equal(nok + nbad, 7);
	/* Rebuild case 0 from the leaves and the signed checkpoint. */
	t = json_object_array_get_idx(get(mvec, "trees"), 0);
	lhx = get(t, "leaf_hashes");
	assert_int_equal(json_object_array_length(lhx), 8);
	for (i = 0; i < 8; i++)
		unhex_n(json_object_get_string(
			    json_object_array_get_idx(lhx, i)),
		    lh[i], 32);
	assert_int_equal(merkle_inclusion_proof(lh, 8, 5, proof, &plen), BW_OK);
	c = json_object_array_get_idx(get(cvec, "checkpoints"), 0);
	s = get_str(c, "note");
	assert_int_equal(note_tlog_proof(5, proof, plen, s, strlen(s), NULL, 0,
			     &out),
	    BW_OK);
	assert_string_equal(buf_cstr(&out),
	    get_str(json_object_array_get_idx(a, 0), "tlog_proof"));
	buf_reset(&out);
	assert_int_equal(note_tlog_proof(5, proof, plen, s, strlen(s),
			     "export:manifest-v1", 18, &out),
	    BW_OK);
	assert_string_equal(buf_cstr(&out),
	    get_str(json_object_array_get_idx(a, 6), "tlog_proof"));
	print_message("tlog-proof cases: %zu accepted, %zu rejected as "
		      "expected; proof rebuilt identically\n",
	    nok, nbad);
	buf_free(&ex);
	buf_free(&out);
}

/* A malformed or tampered note and the error it must give. */
struct bad_note {
	const char *desc;
	const char *body; /* before the signature lines */
	const char *sigs; /* "%s" is the valid signature line */
	enum bw_err want;
};

#define CP_BODY                                     \
	"verify.example.invalid/ledger/org-42\n8\n" \
	"XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n"
#define CP_SIG                                              \
	EM " verify.example.invalid/ledger/org-42 "         \
	   "n65KKhSwCi0wR8hoBniXB/"                         \
	   "jeFSyknRsP3On5x9Lj+CFUnoQeXPFta8Hq+ggJsTT7b8ds" \
	   "8QtmEZvTb/oAqZei1CK76go=\n"
/* A well-formed signature by another key (the C2SP example's). */
#define OTHER_SIG                                                 \
	EM " example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6Tf" \
	   "Xppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n"

static const struct bad_note bad_notes[] = {
	{ "valid", CP_BODY "\n", CP_SIG, BW_OK },
	{ "unknown signature first", CP_BODY "\n", OTHER_SIG CP_SIG, BW_OK },
	{ "unknown signature after", CP_BODY "\n", CP_SIG OTHER_SIG, BW_OK },
	{ "only an unknown key", CP_BODY "\n", OTHER_SIG, BW_ECRYPTO },
	{ "same name, other key ID", CP_BODY "\n",
	    EM " verify.example.invalid/ledger/org-42 AAAAAAAAAAA=\n",
	    BW_ECRYPTO },
	{ "known key, bad signature after a good one", CP_BODY "\n",
	    CP_SIG EM
	    " verify.example.invalid/ledger/org-42 n65KKhSwCi0wR8ho"
	    "BniXB/jeFSyknRsP3On5x9Lj+CFUnoQeXPFta8Hq+ggJsTT7b8ds8QtmEZvTb/oAqZ"
	    "ei1CK76gA=\n",
	    BW_ECRYPTO },
	{ "known key, truncated signature", CP_BODY "\n",
	    EM " verify.example.invalid/ledger/org-42 n65KKhSwCi0w\n",
	    BW_ECRYPTO },
	{ "size line edited",
	    "verify.example.invalid/ledger/org-42\n9\n"
	    "XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n\n",
	    CP_SIG, BW_ECRYPTO },
	{ "extra text line", CP_BODY "x\n\n", CP_SIG, BW_ECRYPTO },
	{ "no blank line", CP_BODY, CP_SIG, BW_EINVAL },
	{ "no signature lines", CP_BODY "\n", "", BW_EINVAL },
	{ "missing final newline", CP_BODY "\n",
	    EM
	    " verify.example.invalid/"
	    "ledger/org-42 n65KKhSwCi0wR8hoBniXB/jeFSyknRsP3On5x9Lj+CFUnoQeXPFt"
	    "a8Hq+ggJsTT7b8ds8QtmEZvTb/oAqZei1CK76go=",
	    BW_EINVAL },
	{ "blank line after signatures", CP_BODY "\n", CP_SIG "\n", BW_EINVAL },
	{ "hyphen instead of em dash", CP_BODY "\n",
	    "- verify.example.invalid/ledger/org-42 n65KKhSwCi0wR8hoBniXB/jeFS"
	    "yknRsP3On5x9Lj+CFUnoQeXPFta8Hq+ggJsTT7b8ds8QtmEZvTb/oAqZei1CK76go"
	    "=\n",
	    BW_EINVAL },
	{ "bad base64 character", CP_BODY "\n",
	    EM
	    " verify.example.invalid/ledger/org-42 n65KKhSwCi0wR8hoBniXB/jeFS"
	    "yknRsP3On5x9Lj+CFUnoQeXPFta8Hq+ggJsTT7b8ds8QtmEZvTb/oAqZei1CK76g!"
	    "=\n",
	    BW_EINVAL },
	{ "unpadded base64", CP_BODY "\n",
	    EM
	    " verify.example.invalid/ledger/org-42 n65KKhSwCi0wR8hoBniXB/jeFS"
	    "yknRsP3On5x9Lj+CFUnoQeXPFta8Hq+ggJsTT7b8ds8QtmEZvTb/oAqZei1CK76go"
	    "\n",
	    BW_EINVAL },
	{ "base64url alphabet", CP_BODY "\n",
	    OTHER_SIG EM
	    " verify.example.invalid/ledger/org-42 n65KKhSwCi0wR8hoBniXB_jeFS"
	    "yknRsP3On5x9Lj-CFUnoQeXPFta8Hq-ggJsTT7b8ds8QtmEZvTb_oAqZei1CK76go"
	    "=\n",
	    BW_EINVAL },
	{ "signature shorter than 5 bytes", CP_BODY "\n",
	    CP_SIG EM " other.example AAAA\n", BW_EINVAL },
	{ "empty signature", CP_BODY "\n",
	    EM " verify.example.invalid/ledger/org-42 \n", BW_EINVAL },
	{ "no space after name", CP_BODY "\n",
	    EM " verify.example.invalid/ledger/org-42\n", BW_EINVAL },
	{ "name with plus", CP_BODY "\n", CP_SIG EM " a+b AAAAAAAA\n",
	    BW_EINVAL },
	{ "two spaces", CP_BODY "\n",
	    EM "  verify.example.invalid/ledger/"
	       "org-42 AAAAAAAA\n",
	    BW_EINVAL },
	{ "carriage return",
	    "verify.example.invalid/ledger/org-42\r\n8\n"
	    "XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n\n",
	    CP_SIG, BW_EINVAL },
	{ "tab in text", "a\tb\n\n", CP_SIG, BW_EINVAL },
	{ "invalid UTF-8", "caf\xc3\n\n", CP_SIG, BW_EINVAL },
	{ "overlong UTF-8", "\xc0\xaf\n\n", CP_SIG, BW_EINVAL },
	{ "UTF-16 surrogate", "\xed\xa0\x80\n\n", CP_SIG, BW_EINVAL },
};

/* Each table entry assembled and checked against the test key. */
static void
test_bad_notes(void **state)
{
	struct note_vkey k;
	struct buf	 b;
	size_t		 i;
	enum bw_err	 er;

	(void)state;
	vkey_of(json_object_get_string(get(get(cvec, "test_key"), "vkey")), &k);
	buf_init(&b, BW_MAX_NOTE);
	for (i = 0; i < sizeof(bad_notes) / sizeof(bad_notes[0]); i++) {
		buf_reset(&b);
		assert_int_equal(buf_printf(&b, "%s%s", bad_notes[i].body,
				     bad_notes[i].sigs),
		    BW_OK);
		er = note_verify(b.p, b.len, &k, NULL);
		if (er != bad_notes[i].want)
			fail_msg("note \"%s\": got %s, want %s",
			    bad_notes[i].desc, bw_strerror(er),
			    bw_strerror(bad_notes[i].want));
	}
	/* An embedded NUL is a control character. */
	assert_int_equal(note_verify("a\0b\n\n" CP_SIG, 5 + strlen(CP_SIG), &k,
			     NULL),
	    BW_EINVAL);
	print_message("malformed/tampered notes: %zu rejected or accepted "
		      "as expected\n",
	    i + 1);
	buf_free(&b);
}

/* The bounds: signature count, line length, note size. */
static void
test_note_limits(void **state)
{
	struct note_vkey k;
	struct buf	 b;
	uint8_t		 seed[32];
	size_t		 i;

	(void)state;
	vkey_of(json_object_get_string(get(get(cvec, "test_key"), "vkey")), &k);
	unhex_n(json_object_get_string(get(get(cvec, "test_key"), "seed_hex")),
	    seed, 32);
	buf_init(&b, 2 * BW_MAX_NOTE);
	/* 99 unknown signatures and ours: 100, the limit, accepted. */
	assert_int_equal(buf_addstr(&b, CP_BODY "\n"), BW_OK);
	for (i = 0; i < BW_MAX_NOTE_SIGS - 1; i++)
		assert_int_equal(buf_addstr(&b, OTHER_SIG), BW_OK);
	assert_int_equal(buf_addstr(&b, CP_SIG), BW_OK);
	assert_int_equal(note_verify(b.p, b.len, &k, NULL), BW_OK);
	/* One more is refused. */
	assert_int_equal(buf_addstr(&b, OTHER_SIG), BW_OK);
	assert_int_equal(note_verify(b.p, b.len, &k, NULL), BW_ETOOBIG);
	/* A text line over the limit, signed properly, is refused. */
	buf_reset(&b);
	for (i = 0; i < BW_MAX_NOTE_LINE + 1; i++)
		assert_int_equal(buf_addc(&b, 'a'), BW_OK);
	assert_int_equal(buf_addc(&b, '\n'), BW_OK);
	{
		struct buf n;

		buf_init(&n, 2 * BW_MAX_NOTE);
		assert_int_equal(note_sign(b.p, b.len, k.name, seed, &n),
		    BW_ETOOBIG);
		b.p[0] = '\n'; /* now the long line is one shorter */
		assert_int_equal(note_sign(b.p, b.len, k.name, seed, &n),
		    BW_OK);
		assert_int_equal(note_verify(n.p, n.len, &k, NULL), BW_OK);
		n.p[1] = 'b'; /* grow the line back to the limit + 1 */
		n.p[0] = 'a';
		assert_int_equal(note_verify(n.p, n.len, &k, NULL), BW_ETOOBIG);
		buf_free(&n);
	}
	/* A note over BW_MAX_NOTE bytes is refused before parsing. */
	buf_reset(&b);
	for (i = 0; i < BW_MAX_NOTE / 2; i++)
		assert_int_equal(buf_addstr(&b, "a\n"), BW_OK);
	assert_int_equal(buf_addstr(&b, "\n" CP_SIG), BW_OK);
	assert_int_equal(note_verify(b.p, b.len, &k, NULL), BW_ETOOBIG);
	sec_wipe(seed, sizeof(seed));
	buf_free(&b);
}

/* Signing refuses what could not be verified. */
static void
test_sign_refuses(void **state)
{
	struct buf b;
	uint8_t	   seed[32];

	(void)state;
	memset(seed, 7, sizeof(seed));
	buf_init(&b, 4096);
	assert_int_equal(note_sign("no newline", 10, "k.example", seed, &b),
	    BW_EINVAL);
	assert_int_equal(note_sign("", 0, "k.example", seed, &b), BW_EINVAL);
	assert_int_equal(note_sign("a\rb\n", 4, "k.example", seed, &b),
	    BW_EINVAL);
	assert_int_equal(note_sign("a\n", 2, "k+example", seed, &b), BW_EINVAL);
	assert_int_equal(note_sign("a\n", 2, "k example", seed, &b), BW_EINVAL);
	assert_int_equal(note_sign("a\n", 2, "k\xc2\xa0x", seed, &b),
	    BW_EINVAL);
	assert_int_equal(note_sign("a\n", 2, "", seed, &b), BW_EINVAL);
	assert_int_equal(b.len, 0);
	/* Empty lines inside the text survive a round trip. */
	{
		struct note_vkey k;
		struct buf	 v, t;
		uint8_t		 pub[32];

		buf_init(&v, 1024);
		buf_init(&t, 1024);
		assert_int_equal(sec_ed25519_pub(seed, pub), BW_OK);
		assert_int_equal(note_vkey("k.example", pub, &v), BW_OK);
		vkey_of(v.p, &k);
		assert_int_equal(note_sign("a\n\nb\n\n", 6, "k.example", seed,
				     &b),
		    BW_OK);
		assert_int_equal(note_verify(b.p, b.len, &k, &t), BW_OK);
		assert_string_equal(buf_cstr(&t), "a\n\nb\n\n");
		buf_free(&v);
		buf_free(&t);
	}
	buf_free(&b);
}

static void
test_vkey_refuses(void **state)
{
	static const char *const bad[] = {
		"",
		"example.com/foo",
		"example.com/foo+530d903a",
		"example.com/foo+530d903a+",
		/* wrong key ID */
		"example.com/foo+530d903b+"
		"AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
		/* other name, same ID */
		"example.com/bar+530d903a+"
		"AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
		/* short ID */
		"example.com/foo+530d903+"
		"AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
		/* algorithm 0x02 */
		"example.com/foo+530d903a+"
		"AkkyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
		/* unpadded, truncated, trailing data */
		"example.com/foo+530d903a+"
		"AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2",
		"example.com/foo+530d903a+"
		"AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k ",
		"example.com/foo+530d903a+"
		"AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2kAAAA",
		/* space in name, empty name */
		"example com+530d903a+"
		"AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
		"+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
		"PRIVATE+KEY+PeterNeumann+c74f20a3+"
		"AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
	};
	struct note_vkey k;
	size_t		 i;

	(void)state;
	memset(&k, 0x5a, sizeof(k));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (note_parse_vkey(bad[i], strlen(bad[i]), &k) == BW_OK)
			fail_msg("vkey accepted: \"%s\"", bad[i]);
	assert_int_equal((uint8_t)k.name[0], 0x5a);
}

static void
test_checkpoint_parse(void **state)
{
	static const char *const bad[] = {
		"",
		"o\n8\n",
		"o\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=",
		"\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n",
		"o\n08\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n",
		"o\n-1\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n",
		"o\n+8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n",
		"o\n 8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n",
		"o\n18446744073709551616\n"
		"XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n",
		"o\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQy=\n",
		"o\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg\n",
		"o\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyh=\n",
		"o\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n\next\n",
	};
	struct buf  o;
	uint8_t	    root[32], want[32];
	uint64_t    size = 77;
	size_t	    i;
	const char *ok;

	(void)state;
	buf_init(&o, BW_MAX_NOTE_NAME);
	memset(root, 0, sizeof(root));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (note_checkpoint_parse(bad[i], strlen(bad[i]), &o, &size,
			root) == BW_OK)
			fail_msg("checkpoint accepted: \"%s\"", bad[i]);
	assert_int_equal(size, 77);
	assert_int_equal(o.len, 0);
	/* Extension lines are allowed; the largest size and size 0 too. */
	unhex_n("5dc9da79a70659a9ad559cb701ded9a2"
		"ab9d823aad2f4960cfe370eff4604328",
	    want, 32);
	ok = "o.example/x\n18446744073709551615\n"
	     "XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\next one\nmore\n";
	assert_int_equal(note_checkpoint_parse(ok, strlen(ok), &o, &size, root),
	    BW_OK);
	assert_string_equal(buf_cstr(&o), "o.example/x");
	assert_true(size == UINT64_MAX);
	assert_memory_equal(root, want, 32);
	ok = "o\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n";
	assert_int_equal(note_checkpoint_parse(ok, strlen(ok), NULL, &size,
			     root),
	    BW_OK);
	assert_true(size == 0);
	/* The body we write parses back. */
	buf_reset(&o);
	assert_int_equal(note_checkpoint_body("a.example/log", 123456789, want,
			     &o),
	    BW_OK);
	assert_string_equal(buf_cstr(&o),
	    "a.example/log\n123456789\n"
	    "XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n");
	assert_int_equal(note_checkpoint_body("bad origin", 1, want, &o),
	    BW_EINVAL);
	buf_free(&o);
}

static void
test_origin(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 1024);
	assert_int_equal(note_origin("bulwark.example", "org-42", &b), BW_OK);
	assert_string_equal(buf_cstr(&b), "bulwark.example/ledger/org-42");
	buf_reset(&b);
	assert_int_equal(note_origin("verify.example.invalid", "org-42", &b),
	    BW_OK);
	assert_string_equal(buf_cstr(&b),
	    json_object_get_string(get(get(cvec, "test_key"), "key_name")));
	buf_reset(&b);
	assert_int_equal(note_origin("h.example", "a/b", &b), BW_EINVAL);
	assert_int_equal(note_origin("h example", "a", &b), BW_EINVAL);
	assert_int_equal(note_origin("h.example", "", &b), BW_EINVAL);
	assert_int_equal(note_origin("", "a", &b), BW_EINVAL);
	assert_int_equal(note_origin("h.example", "a+b", &b), BW_EINVAL);
	assert_int_equal(b.len, 0);
	buf_free(&b);
}

/* Hand-made tlog-proofs that must be refused as malformed. */
static void
test_tlog_proof_malformed(void **state)
{
	static const char *const bad_head[] = {
		"c2sp.org/tlog-proof@v2\nindex 5\n",
		"c2sp.org/tlog-proof@v1\nindex 05\n",
		"c2sp.org/tlog-proof@v1\nindex\n",
		"c2sp.org/tlog-proof@v1\nindex -5\n",
		"c2sp.org/tlog-proof@v1\nextra !!\nindex 5\n",
		"c2sp.org/tlog-proof@v1\nIndex 5\n",
		"c2sp.org/tlog-proof@v1\nindex 5\nextra AAAA\n",
	};
	struct json_object *c;
	struct note_vkey    k;
	struct buf	    b;
	uint8_t		    leaf[32];
	const char	   *valid, *body;
	size_t		    i;

	(void)state;
	c = json_object_array_get_idx(get(cvec, "tlog_proof_cases"), 0);
	valid = get_str(c, "tlog_proof");
	vkey_of(get_str(c, "vkey"), &k);
	assert_int_equal(merkle_leaf_hash("@ABC", 4, leaf), BW_OK);
	/* The part after the index line: proof lines and checkpoint. */
	body = strstr(valid, "index 5\n");
	assert_non_null(body);
	body += strlen("index 5\n");
	buf_init(&b, BW_MAX_NOTE);
	for (i = 0; i < sizeof(bad_head) / sizeof(bad_head[0]); i++) {
		buf_reset(&b);
		assert_int_equal(buf_printf(&b, "%s%s", bad_head[i], body),
		    BW_OK);
		if (note_tlog_proof_verify(b.p, b.len, leaf, k.name, &k, NULL,
			NULL) == BW_OK)
			fail_msg("tlog-proof accepted: \"%s\"", bad_head[i]);
	}
	/* The valid one, for contrast, and without its final newline. */
	assert_int_equal(note_tlog_proof_verify(valid, strlen(valid), leaf,
			     k.name, &k, NULL, NULL),
	    BW_OK);
	assert_int_not_equal(note_tlog_proof_verify(valid, strlen(valid) - 1,
				 leaf, k.name, &k, NULL, NULL),
	    BW_OK);
	/* A proof line that is not a 32-byte hash. */
	buf_reset(&b);
	assert_int_equal(buf_printf(&b,
			     "c2sp.org/tlog-proof@v1\nindex 5\n"
			     "AAAA\n%s",
			     body),
	    BW_OK);
	assert_int_equal(note_tlog_proof_verify(b.p, b.len, leaf, k.name, &k,
			     NULL, NULL),
	    BW_EINVAL);
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest t[] = {
		cmocka_unit_test(test_official_example),
		cmocka_unit_test(test_go_sumdb_keys),
		cmocka_unit_test(test_test_key),
		cmocka_unit_test(test_checkpoints),
		cmocka_unit_test(test_tlog_proofs),
		cmocka_unit_test(test_bad_notes),
		cmocka_unit_test(test_note_limits),
		cmocka_unit_test(test_sign_refuses),
		cmocka_unit_test(test_vkey_refuses),
		cmocka_unit_test(test_checkpoint_parse),
		cmocka_unit_test(test_origin),
		cmocka_unit_test(test_tlog_proof_malformed),
	};

	return cmocka_run_group_tests(t, setup, teardown);
}
