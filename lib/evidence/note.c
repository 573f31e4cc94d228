/* SPDX-License-Identifier: MIT */
/*
 * C2SP signed notes (Ed25519 only), tlog checkpoints and tlog proofs. Every
 * parser is strict: canonical padded base64, decimal without leading
 * zeroes, valid UTF-8, bounded sizes (limits.h), and no signature from the
 * configured key may fail.
 */
#include <inttypes.h>
#include <string.h>

#include "evidence/merkle.h"
#include "evidence/note.h"
#include "core/sec.h"

/* "— " : U+2014 EM DASH and a space, the start of every signature line. */
static const char note_sigpfx[] = "\xe2\x80\x94 ";
#define NOTE_SIGPFX_LEN 4
#define NOTE_SKEY_PFX	"PRIVATE+KEY+"
#define NOTE_B64_HASH	44 /* base64 length of a 32-byte hash */
#define NOTE_B64_KEY	44 /* base64 length of 0x01 || 32-byte key */

/* Puts out back to olen bytes after a failed series of appends. */
static void
note_rollback(struct buf *out, size_t olen)
{
	if (out->p != NULL && out->len > olen) {
		out->len = olen;
		out->p[olen] = '\0';
	}
}

/*
 * Decodes one UTF-8 sequence at s[0..n) strictly (no overlong forms, no
 * surrogates, nothing past U+10FFFF). Returns its length and sets *cp, or
 * returns 0 when the bytes are not valid UTF-8.
 */
static size_t
note_utf8(const unsigned char *s, size_t n, uint32_t *cp)
{
	uint32_t c, min;
	size_t	 len, i;

	if (n == 0)
		return 0;
	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if ((s[0] & 0xe0) == 0xc0) {
		len = 2;
		c = s[0] & 0x1f;
		min = 0x80;
	} else if ((s[0] & 0xf0) == 0xe0) {
		len = 3;
		c = s[0] & 0x0f;
		min = 0x800;
	} else if ((s[0] & 0xf8) == 0xf0) {
		len = 4;
		c = s[0] & 0x07;
		min = 0x10000;
	} else
		return 0;
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return len;
}

/* 1 when cp has the Unicode White_Space property. */
static int
note_isspace(uint32_t cp)
{
	return (cp >= 0x09 && cp <= 0x0d) || cp == 0x20 || cp == 0x85 ||
	    cp == 0xa0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) ||
	    cp == 0x2028 || cp == 0x2029 || cp == 0x202f || cp == 0x205f ||
	    cp == 0x3000;
}

/*
 * A key name per signed-note §Format: non-empty, valid UTF-8, no Unicode
 * spaces, no '+'; we also refuse control characters and cap the length.
 * Returns 1 when s[0..n) is one.
 */
static int
note_name_ok(const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	uint32_t	     cp;
	size_t		     i = 0, l;

	if (n == 0 || n > BW_MAX_NOTE_NAME)
		return 0;
	while (i < n) {
		l = note_utf8(u + i, n - i, &cp);
		if (l == 0 || cp < 0x20 || cp == 0x7f || cp == '+' ||
		    note_isspace(cp))
			return 0;
		i += l;
	}
	return 1;
}

/*
 * Note bytes per signed-note §Format: valid UTF-8 and no control
 * characters but newline; each line at most BW_MAX_NOTE_LINE bytes.
 * Returns BW_OK, BW_EINVAL or BW_ETOOBIG.
 */
static enum bw_err
note_text_ok(const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	uint32_t	     cp;
	size_t		     i = 0, l, line = 0;

	if (n > BW_MAX_NOTE)
		return BW_ETOOBIG;
	while (i < n) {
		l = note_utf8(u + i, n - i, &cp);
		if (l == 0 || (cp < 0x20 && cp != '\n'))
			return BW_EINVAL;
		if (cp == '\n')
			line = 0;
		else if ((line += l) > BW_MAX_NOTE_LINE)
			return BW_ETOOBIG;
		i += l;
	}
	return BW_OK;
}

/*
 * Decodes canonical, padded base64 s[0..n) of exactly outlen bytes into
 * out. Returns BW_OK, or BW_EINVAL (out untouched).
 */
static enum bw_err
note_unb64_fixed(const char *s, size_t n, uint8_t *out, size_t outlen)
{
	struct buf  b;
	enum bw_err er;

	if (n != (outlen + 2) / 3 * 4)
		return BW_EINVAL;
	buf_init(&b, outlen + 3);
	er = sec_unb64(s, n, &b);
	if (er == BW_OK && b.len != outlen)
		er = BW_EINVAL;
	if (er == BW_OK)
		memcpy(out, b.p, outlen);
	else
		er = BW_EINVAL;
	if (b.p != NULL)
		sec_wipe(b.p, b.len);
	buf_free(&b);
	return er;
}

/*
 * ASCII decimal s[0..n) without sign or leading zeroes (but "0"), fitting
 * in 64 bits, into *v. Returns BW_OK or BW_EINVAL (*v untouched).
 */
static enum bw_err
note_parse_u64(const char *s, size_t n, uint64_t *v)
{
	uint64_t x = 0, d;
	size_t	 i;

	if (n == 0 || n > 20 || (n > 1 && s[0] == '0'))
		return BW_EINVAL;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return BW_EINVAL;
		d = (uint64_t)(s[i] - '0');
		if (x > (UINT64_MAX - d) / 10)
			return BW_EINVAL;
		x = x * 10 + d;
	}
	*v = x;
	return BW_OK;
}

/*
 * Key ID of an Ed25519 key (signed-note §Ed25519 signatures):
 * SHA-256(name || 0x0A || 0x01 || pub)[:4] as a big-endian uint32.
 * Returns BW_OK, BW_EINVAL (invalid name) or BW_ECRYPTO.
 */
enum bw_err
note_key_id(const char *name, const uint8_t pub[32], uint32_t *id)
{
	uint8_t	    m[BW_MAX_NOTE_NAME + 2 + 32], h[32];
	size_t	    nl;
	enum bw_err er;

	nl = strlen(name);
	if (!note_name_ok(name, nl))
		return BW_EINVAL;
	memcpy(m, name, nl);
	m[nl] = '\n';
	m[nl + 1] = NOTE_ALG_ED25519;
	memcpy(m + nl + 2, pub, 32);
	er = sec_sha256(m, nl + 2 + 32, h);
	if (er != BW_OK)
		return er;
	*id = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 |
	    (uint32_t)h[2] << 8 | h[3];
	return BW_OK;
}

/*
 * Appends "<prefix><name>+<hex id>+<base64(0x01 || key)>" to out, where id
 * is the key ID of pub. Returns BW_OK, BW_EINVAL, BW_ECRYPTO, BW_ETOOBIG
 * or BW_ENOMEM (out as it was).
 */
static enum bw_err
note_key_text(const char *prefix, const char *name, const uint8_t pub[32],
    const uint8_t key[32], struct buf *out)
{
	uint8_t	    tk[33];
	uint32_t    id;
	size_t	    olen = out->len;
	enum bw_err er;

	er = note_key_id(name, pub, &id);
	if (er != BW_OK)
		return er;
	tk[0] = NOTE_ALG_ED25519;
	memcpy(tk + 1, key, 32);
	er = buf_printf(out, "%s%s+%08" PRIx32 "+", prefix, name, id);
	if (er == BW_OK)
		er = sec_b64(tk, sizeof(tk), out);
	sec_wipe(tk, sizeof(tk));
	if (er != BW_OK)
		note_rollback(out, olen);
	return er;
}

/*
 * Appends the verifier key "<name>+<hex id>+<base64(0x01 || pub)>".
 * Returns BW_OK, BW_EINVAL (invalid name), BW_ECRYPTO, BW_ETOOBIG or
 * BW_ENOMEM (out as it was).
 */
enum bw_err
note_vkey(const char *name, const uint8_t pub[32], struct buf *out)
{
	return note_key_text("", name, pub, pub, out);
}

/*
 * Splits "<name>+<8 hex>+<base64 of 33 bytes>" and checks the type byte;
 * the name goes to name (NUL-terminated), the ID to *id and the key to
 * key. Returns BW_OK or BW_EINVAL.
 */
static enum bw_err
note_key_split(const char *s, size_t n, char name[BW_MAX_NOTE_NAME + 1],
    uint32_t *id, uint8_t key[32])
{
	const char *p1, *p2;
	uint8_t	    idb[4], tk[33];
	size_t	    nl;
	enum bw_err er;

	p1 = memchr(s, '+', n);
	if (p1 == NULL)
		return BW_EINVAL;
	nl = (size_t)(p1 - s);
	if (!note_name_ok(s, nl) || n - nl - 1 < 9)
		return BW_EINVAL;
	p2 = p1 + 9;
	if (*p2 != '+' || sec_unhex(p1 + 1, 8, idb, 4) != BW_OK)
		return BW_EINVAL;
	p2++;
	er = note_unb64_fixed(p2, n - (size_t)(p2 - s), tk, sizeof(tk));
	if (er != BW_OK || tk[0] != NOTE_ALG_ED25519) {
		sec_wipe(tk, sizeof(tk));
		return BW_EINVAL;
	}
	memcpy(name, s, nl);
	name[nl] = '\0';
	*id = (uint32_t)idb[0] << 24 | (uint32_t)idb[1] << 16 |
	    (uint32_t)idb[2] << 8 | idb[3];
	memcpy(key, tk + 1, 32);
	sec_wipe(tk, sizeof(tk));
	return BW_OK;
}

/*
 * Parses a verifier key; its ID must be the one computed from its name and
 * key. Returns BW_OK, BW_EINVAL (out untouched) or BW_ECRYPTO.
 */
enum bw_err
note_parse_vkey(const char *s, size_t n, struct note_vkey *out)
{
	struct note_vkey k;
	uint32_t	 want;
	enum bw_err	 er;

	er = note_key_split(s, n, k.name, &k.id, k.pub);
	if (er != BW_OK)
		return er;
	er = note_key_id(k.name, k.pub, &want);
	if (er != BW_OK)
		return er;
	if (want != k.id)
		return BW_EINVAL;
	*out = k;
	return BW_OK;
}

/*
 * Appends the signer key "PRIVATE+KEY+<name>+<hex id>+<base64(0x01 ||
 * seed)>" (the golang.org/x/mod/sumdb/note form). The text is a secret:
 * the caller wipes it. Returns BW_OK, BW_EINVAL, BW_ECRYPTO, BW_ETOOBIG or
 * BW_ENOMEM (out as it was).
 */
enum bw_err
note_skey(const char *name, const uint8_t seed[32], struct buf *out)
{
	uint8_t	    pub[32];
	enum bw_err er;

	er = sec_ed25519_pub(seed, pub);
	if (er != BW_OK)
		return er;
	return note_key_text(NOTE_SKEY_PFX, name, pub, seed, out);
}

/*
 * Parses a signer key; the ID must match the name and the public key
 * derived from the seed. Returns BW_OK, BW_EINVAL or BW_ECRYPTO (outputs
 * untouched).
 */
enum bw_err
note_parse_skey(const char *s, size_t n, char name_out[BW_MAX_NOTE_NAME + 1],
    uint8_t seed[32])
{
	char	    name[BW_MAX_NOTE_NAME + 1];
	uint8_t	    sd[32], pub[32];
	uint32_t    id, want;
	size_t	    pl = sizeof(NOTE_SKEY_PFX) - 1;
	enum bw_err er;

	if (n < pl || memcmp(s, NOTE_SKEY_PFX, pl) != 0)
		return BW_EINVAL;
	er = note_key_split(s + pl, n - pl, name, &id, sd);
	if (er != BW_OK)
		return er;
	er = sec_ed25519_pub(sd, pub);
	if (er == BW_OK)
		er = note_key_id(name, pub, &want);
	if (er == BW_OK && want != id)
		er = BW_EINVAL;
	if (er == BW_OK) {
		memcpy(name_out, name, strlen(name) + 1);
		memcpy(seed, sd, 32);
	}
	sec_wipe(sd, sizeof(sd));
	return er;
}

/*
 * Signs text[0..n) (non-empty, ending in a newline, valid note text) with
 * the Ed25519 key seed under name, and appends the whole signed note: the
 * text, a blank line and "— <name> <base64(id || signature)>\n". Ed25519
 * is deterministic, so the same inputs give the same bytes. Returns BW_OK,
 * BW_EINVAL, BW_ECRYPTO, BW_ETOOBIG or BW_ENOMEM (out as it was).
 */
enum bw_err
note_sign(const char *text, size_t n, const char *name, const uint8_t seed[32],
    struct buf *out)
{
	uint8_t	    pub[32], sig[4 + 64];
	uint32_t    id;
	size_t	    olen = out->len;
	enum bw_err er;

	if (text == NULL || n == 0 || text[n - 1] != '\n')
		return BW_EINVAL;
	er = note_text_ok(text, n);
	if (er != BW_OK)
		return er;
	er = sec_ed25519_pub(seed, pub);
	if (er == BW_OK)
		er = note_key_id(name, pub, &id);
	if (er == BW_OK)
		er = sec_ed25519_sign(seed, text, n, sig + 4);
	if (er != BW_OK)
		return er;
	sig[0] = (uint8_t)(id >> 24);
	sig[1] = (uint8_t)(id >> 16);
	sig[2] = (uint8_t)(id >> 8);
	sig[3] = (uint8_t)id;
	er = buf_add(out, text, n);
	if (er == BW_OK)
		er = buf_addc(out, '\n');
	if (er == BW_OK)
		er = buf_add(out, note_sigpfx, NOTE_SIGPFX_LEN);
	if (er == BW_OK)
		er = buf_printf(out, "%s ", name);
	if (er == BW_OK)
		er = sec_b64(sig, sizeof(sig), out);
	if (er == BW_OK)
		er = buf_addc(out, '\n');
	if (er != BW_OK)
		note_rollback(out, olen);
	return er;
}

/*
 * Checks one signature line l[0..n) (without its newline) against key.
 * *match is set to 1 when the line is by key and verifies. Returns BW_OK
 * (also for other keys' lines), BW_EINVAL for a malformed line, or
 * BW_ECRYPTO when a signature by key fails.
 */
static enum bw_err
note_sig_line(const char *l, size_t n, const char *text, size_t tlen,
    const struct note_vkey *key, int *match)
{
	const char *sp, *b64;
	struct buf  b;
	uint32_t    id;
	size_t	    nl, bl;
	enum bw_err er = BW_OK;

	if (n < NOTE_SIGPFX_LEN || memcmp(l, note_sigpfx, NOTE_SIGPFX_LEN) != 0)
		return BW_EINVAL;
	l += NOTE_SIGPFX_LEN;
	n -= NOTE_SIGPFX_LEN;
	sp = memchr(l, ' ', n);
	if (sp == NULL)
		return BW_EINVAL;
	nl = (size_t)(sp - l);
	b64 = sp + 1;
	bl = n - nl - 1;
	if (!note_name_ok(l, nl) || bl == 0 || bl % 4 != 0)
		return BW_EINVAL;
	buf_init(&b, BW_MAX_NOTE_LINE);
	if (sec_unb64(b64, bl, &b) != BW_OK || b.len < 5) {
		er = BW_EINVAL;
		goto out;
	}
	id = (uint32_t)(uint8_t)b.p[0] << 24 | (uint32_t)(uint8_t)b.p[1] << 16 |
	    (uint32_t)(uint8_t)b.p[2] << 8 | (uint8_t)b.p[3];
	if (id != key->id || strlen(key->name) != nl ||
	    memcmp(key->name, l, nl) != 0)
		goto out;
	if (b.len != 4 + SEC_ED25519_SIG_LEN ||
	    sec_ed25519_verify(key->pub, text, tlen,
		(const uint8_t *)b.p + 4) != BW_OK) {
		er = BW_ECRYPTO;
		goto out;
	}
	*match = 1;
out:
	buf_free(&b);
	return er;
}

/*
 * Opens a signed note (signed-note §Format, §Signatures): the text ends at
 * the last blank line; every following line is a signature line; lines by
 * other keys are skipped, a failing one by key rejects the note, and at
 * least one by key must verify. On BW_OK the text is appended to text_out
 * when not NULL. Returns BW_OK, BW_EINVAL, BW_ETOOBIG, BW_ECRYPTO or
 * BW_ENOMEM.
 */
enum bw_err
note_verify(const char *msg, size_t n, const struct note_vkey *key,
    struct buf *text_out)
{
	const char *nl;
	size_t	    split, i, tlen, nsig = 0;
	int	    ok = 0;
	enum bw_err er;

	if (msg == NULL || key == NULL)
		return BW_EINVAL;
	er = note_text_ok(msg, n);
	if (er != BW_OK)
		return er;
	if (n < 3 || msg[n - 1] != '\n')
		return BW_EINVAL;
	/* The last "\n\n": the signature block cannot hold an empty line. */
	for (split = n - 2; split > 0; split--)
		if (msg[split - 1] == '\n' && msg[split] == '\n')
			break;
	if (split == 0)
		return BW_EINVAL;
	tlen = split;
	for (i = split + 1; i < n; i = (size_t)(nl - msg) + 1) {
		nl = memchr(msg + i, '\n', n - i);
		if (++nsig > BW_MAX_NOTE_SIGS)
			return BW_ETOOBIG;
		er = note_sig_line(msg + i, (size_t)(nl - msg) - i, msg, tlen,
		    key, &ok);
		if (er != BW_OK)
			return er;
	}
	if (nsig == 0 || !ok)
		return BW_ECRYPTO;
	if (text_out != NULL)
		return buf_add(text_out, msg, tlen);
	return BW_OK;
}

/*
 * Appends "<host>/ledger/<org_id>", the origin line and key name of an
 * org's ledger log. host is a key-name fragment (may hold '/'); org_id must
 * not hold '/'. Returns BW_OK, BW_EINVAL, BW_ETOOBIG or BW_ENOMEM (out as
 * it was).
 */
enum bw_err
note_origin(const char *host, const char *org_id, struct buf *out)
{
	size_t	    hl, ol, olen = out->len;
	enum bw_err er;

	hl = strlen(host);
	ol = strlen(org_id);
	if (!note_name_ok(host, hl) || !note_name_ok(org_id, ol) ||
	    memchr(org_id, '/', ol) != NULL ||
	    hl + ol + sizeof("/ledger/") - 1 > BW_MAX_NOTE_NAME)
		return BW_EINVAL;
	er = buf_printf(out, "%s/ledger/%s", host, org_id);
	if (er != BW_OK)
		note_rollback(out, olen);
	return er;
}

/*
 * Appends the tlog-checkpoint note text (§Note text): origin, tree size in
 * decimal and base64 root, each ending in a newline. The origin must be a
 * valid key name, since it is also the log's key name. Returns BW_OK,
 * BW_EINVAL, BW_ETOOBIG or BW_ENOMEM (out as it was).
 */
enum bw_err
note_checkpoint_body(const char *origin, uint64_t size, const uint8_t root[32],
    struct buf *out)
{
	size_t	    olen = out->len;
	enum bw_err er;

	if (!note_name_ok(origin, strlen(origin)))
		return BW_EINVAL;
	er = buf_printf(out, "%s\n%" PRIu64 "\n", origin, size);
	if (er == BW_OK)
		er = sec_b64(root, 32, out);
	if (er == BW_OK)
		er = buf_addc(out, '\n');
	if (er != BW_OK)
		note_rollback(out, olen);
	return er;
}

/*
 * Parses checkpoint note text: at least three non-empty lines (origin,
 * size, base64 root of 32 bytes), then optional non-empty extension lines,
 * all ending in newlines. Returns BW_OK, BW_EINVAL (outputs untouched),
 * BW_ETOOBIG or BW_ENOMEM.
 */
enum bw_err
note_checkpoint_parse(const char *text, size_t n, struct buf *origin_out,
    uint64_t *size, uint8_t root[32])
{
	const char *l[3], *nl;
	size_t	    ll[3], i, k = 0;
	uint64_t    sz;
	uint8_t	    r[32];
	enum bw_err er;

	if (text == NULL || n == 0 || text[n - 1] != '\n')
		return BW_EINVAL;
	er = note_text_ok(text, n);
	if (er != BW_OK)
		return er;
	for (i = 0; i < n; i = (size_t)(nl - text) + 1) {
		nl = memchr(text + i, '\n', n - i);
		if (nl == text + i)
			return BW_EINVAL;
		if (k < 3) {
			l[k] = text + i;
			ll[k++] = (size_t)(nl - text) - i;
		}
	}
	if (k < 3 || ll[0] > BW_MAX_NOTE_NAME)
		return BW_EINVAL;
	if (note_parse_u64(l[1], ll[1], &sz) != BW_OK ||
	    note_unb64_fixed(l[2], ll[2], r, sizeof(r)) != BW_OK)
		return BW_EINVAL;
	if (origin_out != NULL) {
		er = buf_add(origin_out, l[0], ll[0]);
		if (er != BW_OK)
			return er;
	}
	*size = sz;
	memcpy(root, r, sizeof(r));
	return BW_OK;
}

/*
 * Appends a c2sp.org/tlog-proof@v1: the header, "extra <base64>" when
 * elen > 0, "index <n>", one base64 line per proof node, a blank line and
 * the signed checkpoint verbatim. Returns BW_OK, BW_EINVAL, BW_ETOOBIG or
 * BW_ENOMEM (out as it was).
 */
enum bw_err
note_tlog_proof(uint64_t index, const uint8_t (*proof)[32], size_t plen,
    const char *checkpoint, size_t clen, const void *extra, size_t elen,
    struct buf *out)
{
	size_t	    olen = out->len, i;
	enum bw_err er;

	if (plen > MERKLE_MAX_DEPTH || (proof == NULL && plen > 0) ||
	    checkpoint == NULL || clen == 0 || checkpoint[clen - 1] != '\n' ||
	    (extra == NULL && elen > 0))
		return BW_EINVAL;
	er = buf_addstr(out, NOTE_TLOG_PROOF_V1 "\n");
	if (er == BW_OK && elen > 0) {
		er = buf_addstr(out, "extra ");
		if (er == BW_OK)
			er = sec_b64(extra, elen, out);
		if (er == BW_OK)
			er = buf_addc(out, '\n');
	}
	if (er == BW_OK)
		er = buf_printf(out, "index %" PRIu64 "\n", index);
	for (i = 0; er == BW_OK && i < plen; i++) {
		er = sec_b64(proof[i], 32, out);
		if (er == BW_OK)
			er = buf_addc(out, '\n');
	}
	if (er == BW_OK)
		er = buf_addc(out, '\n');
	if (er == BW_OK)
		er = buf_add(out, checkpoint, clen);
	if (er != BW_OK)
		note_rollback(out, olen);
	return er;
}

/*
 * Verifies a tlog-proof (c2sp.org/tlog-proof §Format) against a leaf hash,
 * the expected origin and the log's key. The tree size is the signed
 * checkpoint's, never one given by the caller. Returns BW_OK, BW_EINVAL,
 * BW_ECRYPTO, BW_ETOOBIG or BW_ENOMEM; index and extra are set only on
 * BW_OK.
 */
enum bw_err
note_tlog_proof_verify(const char *p, size_t n, const uint8_t leaf[32],
    const char *origin, const struct note_vkey *key, uint64_t *index,
    struct buf *extra)
{
	uint8_t	    proof[MERKLE_MAX_DEPTH][32], root[32];
	struct buf  ex, text, org;
	const char *nl;
	size_t	    i = 0, len, plen = 0;
	size_t	    hl = sizeof(NOTE_TLOG_PROOF_V1) - 1;
	uint64_t    idx, size;
	int	    has_extra = 0;
	enum bw_err er = BW_EINVAL;

	buf_init(&ex, BW_MAX_NOTE);
	buf_init(&text, BW_MAX_NOTE);
	buf_init(&org, BW_MAX_NOTE_NAME);
	if (p == NULL || leaf == NULL || origin == NULL || key == NULL)
		goto out;
	if (n > BW_MAX_NOTE) {
		er = BW_ETOOBIG;
		goto out;
	}
	/* Header line. */
	nl = memchr(p, '\n', n);
	if (nl == NULL || (size_t)(nl - p) != hl ||
	    memcmp(p, NOTE_TLOG_PROOF_V1, hl) != 0)
		goto out;
	i = hl + 1;
	/* Optional extra line, then the index line. */
	nl = memchr(p + i, '\n', n - i);
	if (nl == NULL)
		goto out;
	len = (size_t)(nl - p) - i;
	if (len >= 6 && memcmp(p + i, "extra ", 6) == 0) {
		if (sec_unb64(p + i + 6, len - 6, &ex) != BW_OK ||
		    (len - 6) % 4 != 0)
			goto out;
		has_extra = 1;
		i += len + 1;
		nl = memchr(p + i, '\n', n - i);
		if (nl == NULL)
			goto out;
		len = (size_t)(nl - p) - i;
	}
	if (len < 7 || memcmp(p + i, "index ", 6) != 0 ||
	    note_parse_u64(p + i + 6, len - 6, &idx) != BW_OK)
		goto out;
	i += len + 1;
	/* Proof lines up to the blank line. */
	for (;;) {
		nl = memchr(p + i, '\n', n - i);
		if (nl == NULL)
			goto out;
		len = (size_t)(nl - p) - i;
		if (len == 0)
			break;
		if (plen == MERKLE_MAX_DEPTH ||
		    note_unb64_fixed(p + i, len, proof[plen], 32) != BW_OK)
			goto out;
		plen++;
		i += len + 1;
	}
	i++;
	/* The checkpoint, verbatim, signed by key. */
	er = note_verify(p + i, n - i, key, &text);
	if (er != BW_OK)
		goto out;
	er = note_checkpoint_parse(text.p, text.len, &org, &size, root);
	if (er != BW_OK)
		goto out;
	if (strlen(origin) != org.len || memcmp(origin, org.p, org.len) != 0) {
		er = BW_ECRYPTO;
		goto out;
	}
	er = merkle_inclusion_verify(idx, size, leaf, proof, plen, root);
	if (er == BW_EINVAL)
		er = BW_ECRYPTO;
	if (er != BW_OK)
		goto out;
	if (extra != NULL && has_extra)
		er = buf_add(extra, ex.p, ex.len);
	if (er == BW_OK && index != NULL)
		*index = idx;
out:
	buf_free(&ex);
	buf_free(&text);
	buf_free(&org);
	return er;
}
