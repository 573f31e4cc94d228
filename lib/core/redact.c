/* SPDX-License-Identifier: MIT */
/*
 * PII and secret redactor: a hand-written, single-pass scanner (no regex
 * library) that every logged string passes through.
 *
 * Rules, tried in this order at a word boundary (the byte before is not an
 * ASCII letter, digit or '_'; non-ASCII bytes count as boundaries, so Thai
 * text next to a number still separates it; an e-mail address may also
 * start at any non-ASCII character):
 *
 *  1. "Bearer" (any case), 1-8 blanks, then [A-Za-z0-9._~+/=-]+ keeps the
 *     word and the blanks: "Bearer [REDACTED:token]".
 *  2. "Authorization" (any case; so also "Proxy-Authorization"), an
 *     optional '"', ':' or '=', up to 8 blanks, an optional '"', "Basic"
 *     (any case), 1-8 blanks, then the credential up to '&', ';', ',', a
 *     quote or a blank (base64 or, from a broken client, "user:pass")
 *     keeps all before it: "Authorization: Basic [REDACTED:token]".
 *     "Basic" alone ("basic plan") stays.
 *  3. key=value, key: value or "key":"value" where key is one of
 *     password, passwd, pwd, secret, token, access_token, refresh_token,
 *     id_token, client_secret, api_key, apikey, csrf_token, bw_session
 *     (the session cookie), session_id, invite_token (any case): the value
 *     up to '&', ';', ',', a quote or a blank becomes [REDACTED:secret]
 *     ("api_key=[REDACTED:secret]"); a value in double quotes goes whole
 *     up to its closing quote, blanks too ("password":"correct horse").
 *  4. JWT: "eyJ" + base64url, '.', base64url (at least one), '.', base64url
 *     (may be empty) -> [REDACTED:jwt].
 *  5. Prefixed keys followed by [A-Za-z0-9_-]: bwk_ (>= 9 more: a Bulwark
 *     API key, [REDACTED:token]; the 12-char key_prefix, "bwk_" + 8, that
 *     humans see stays readable); whsec_ (>= 8), sk_live_/sk_test_/
 *     rk_live_/rk_test_ (>= 4), rk_ and sk- (>= 16, OpenAI "sk-proj-...")
 *     -> [REDACTED:secret].
 *  6. E-mail, ASCII or internationalised (RFC 6531): a local part of
 *     [A-Za-z0-9._%+-] and non-ASCII letters, 64 bytes at most, '@', labels
 *     of [A-Za-z0-9-] and non-ASCII letters joined by dots (at least two
 *     labels, 253 bytes at most), the last starting with two letters
 *     (ASCII, punycode "xn--..." or not: "ไทย"); the rest of that label
 *     goes with it, up to a change between Latin and another script
 *     ("a@example.comครับ" keeps "ครับ") -> [REDACTED:email]. When the last
 *     label does not start with two letters ("a@example.com.5") the address
 *     ends at the last label that does. A "non-ASCII letter" is any valid
 *     UTF-8 character from U+00C0 up except the symbol and punctuation
 *     blocks (U+2000-U+2BFF, U+3000-U+303F, ...). Where a letter of
 *     another script meets an ASCII letter in the local part, the address
 *     starts at the ASCII letter ("ติดต่อsomchai@..." keeps "ติดต่อ"); Thai
 *     glued to a Thai address ("อีเมลสมชาย@ตัวอย่าง.ไทย") cannot be told
 *     from it and goes with it.
 *  7. Phones -> [REDACTED:phone]. Never after one of [A-Za-z0-9_./+@#\\-]
 *     (so no digits inside UUIDs, versions, decimals, paths or ids), and
 *     never when a letter, digit or '_' follows:
 *     a. '+' digit, then digits and separators (blank - . ( ), at most two
 *        in a row), 8-15 digits: +66 81 234 5678, +1 (555) 123-4567.
 *     b. (NXX) NXX-XXXX with an optional blank after ')' and - . or blank;
 *        or a Thai area code with its trunk 0 in parentheses, (0X) or
 *        (0XX), an optional blank, then groups as in d (or one run), 9-15
 *        digits in all: (02) 123 4567, (02) 123-4567, (053) 123 456.
 *     c. one unseparated run of 9-15 digits: 0812345678, 66812345678.
 *     d. digit groups joined by one repeated separator (- . or blank),
 *        9-15 digits in all, each group 1-4 digits, and either a leading
 *        '0' (Thai trunk prefix: 02-123-4567, 081-234-5678, 081 234 5678)
 *        or the North American 3-3-4 / 1-3-3-4 shape (555-123-4567).
 *     e. Thailand's country code without '+': "66", then groups as in d
 *        joined by blanks or '-' (never '.': IPv4, versions), at least
 *        three groups, 8-10 digits after the 66: 66 81 234 5678,
 *        66-2-123-4567. Other country codes need their '+' (or no
 *        separators, c): "44 20 7946 0958" stays, like any list of numbers.
 *     What stays: small numbers ("order 42"), dates and ISO timestamps
 *     (2024-01-15T10:30:00.123Z: 8 digits, or followed by a letter), IPv4
 *     addresses (3-3-3-3 without a leading 0), UUIDs (groups of 8/12 or
 *     hex letters, or preceded by '-'), decimals (preceded by '.').
 *     Plain 9-15 digit numbers (epoch seconds, large ids) ARE redacted: we
 *     prefer a lost number to a leaked phone; log them as JSON numbers.
 *  8. Hex API keys: exactly 32 hex digits (either case) with a non-word
 *     character (or the end) on both sides -> [REDACTED:secret]. Many
 *     providers issue keys of this shape; so are md5 digests and UUIDs
 *     written without dashes, which go too. 40 hex digits (sha1, git
 *     commit ids) and 64 (sha256, ledger hashes) stay readable: the logs
 *     rely on both (a 40-hex token, such as GitHub's classic ones, is
 *     thus not caught by its shape; rules 1-3 still catch it in a header
 *     or a key=value). A value
 *     that is nothing but 32 hex digits stays: request and correlation ids
 *     (nginx's $request_id, W3C trace-ids, our fallback ids) have that
 *     shape and reach the redactor one whole value at a time.
 *  9. Opaque secrets: a run of [A-Za-z0-9+/_-] (then '=' padding) of 40 or
 *     more characters holding an upper-case letter, a lower-case letter and
 *     a digit -> [REDACTED:secret]. Hex digests (one case only) and UUIDs
 *     stay, so sha256 and ledger hashes remain in logs.
 *
 * Escaping: CR, LF and TAB become the two characters \r \n \t; other C0
 * controls and DEL become \xNN; C1 controls, U+2028/U+2029 and the bidi
 * overrides U+202A-U+202E, U+2066-U+2069 become \uNNNN. Valid UTF-8 (Thai)
 * is copied byte for byte, an invalid byte becomes U+FFFD. Output thus
 * never holds a raw control character and is always valid UTF-8.
 *
 * Cost: every rule looks at a bounded window or remembers where a failed
 * run ends (the *_skip marks; mail_skip also marks where a local part
 * changes script, so the attempts inside a Thai run before it stop at
 * once), so the scan is linear in the input. Output
 * is appended to a bounded buffer one character or one marker at a time: on
 * BW_ETOOBIG it holds a redacted prefix, never half a UTF-8 character.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/redact.h"

struct rscan {
	const char *s;
	size_t	    n;
	size_t	    jwt_skip;  /* no JWT starts before this */
	size_t	    mail_skip; /* no e-mail starts before this */
	size_t	    gen_skip;  /* no opaque secret starts before */
};

struct rmatch {
	size_t	    len;  /* bytes consumed from the start */
	size_t	    keep; /* leading bytes copied before the marker */
	const char *marker;
};

#define M_EMAIL	 "[REDACTED:email]"
#define M_PHONE	 "[REDACTED:phone]"
#define M_TOKEN	 "[REDACTED:token]"
#define M_SECRET "[REDACTED:secret]"
#define M_JWT	 "[REDACTED:jwt]"

#define MAIL_LOCAL_MAX	64
#define MAIL_DOMAIN_MAX 253
#define PHONE_MIN	9
#define PHONE_PLUS_MIN	8
#define PHONE_MAX	15
#define GENERIC_MIN	40
#define HEX_KEY_LEN	32

static int
r_isdigit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static int
r_isupper(unsigned char c)
{
	return c >= 'A' && c <= 'Z';
}

static int
r_islower(unsigned char c)
{
	return c >= 'a' && c <= 'z';
}

static int
r_isalnum(unsigned char c)
{
	return r_isdigit(c) || r_isupper(c) || r_islower(c);
}

static int
r_isword(unsigned char c)
{
	return r_isalnum(c) || c == '_';
}

static int
r_isxdigit(unsigned char c)
{
	return r_isdigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int
r_isb64url(unsigned char c)
{
	return r_isword(c) || c == '-';
}

static int
r_isgeneric(unsigned char c)
{
	return r_isb64url(c) || c == '+' || c == '/';
}

static int
r_ismailloc(unsigned char c)
{
	return r_isalnum(c) || c == '.' || c == '_' || c == '%' || c == '+' ||
	    c == '-';
}

static int
r_isbearer(unsigned char c)
{
	return r_isb64url(c) || c == '.' || c == '~' || c == '+' || c == '/' ||
	    c == '=';
}

/* Byte at i, or NUL past the end, so that look-ahead needs no checks. */
static unsigned char
r_at(const struct rscan *sc, size_t i)
{
	return i < sc->n ? (unsigned char)sc->s[i] : '\0';
}

/* Whether s[i..) starts with the ASCII word w, ignoring case. */
static int
r_prefix(const struct rscan *sc, size_t i, const char *w)
{
	size_t l = strlen(w);

	return sc->n - i >= l && strncasecmp(sc->s + i, w, l) == 0;
}

/* End of the run of bytes from i that satisfy cls. */
static size_t
r_span(const struct rscan *sc, size_t i, int (*cls)(unsigned char))
{
	while (i < sc->n && cls((unsigned char)sc->s[i]))
		i++;
	return i;
}

/* Rule 1: "Bearer <token>". Returns 1 and fills m on a match. */
static int
r_bearer(const struct rscan *sc, size_t i, struct rmatch *m)
{
	size_t j, t;

	if (!r_prefix(sc, i, "bearer"))
		return 0;
	j = i + 6;
	for (t = j;
	     t < sc->n && t - j < 8 && (sc->s[t] == ' ' || sc->s[t] == '\t');
	     t++)
		;
	if (t == j || !r_isbearer(r_at(sc, t)))
		return 0;
	m->keep = t - i;
	m->len = r_span(sc, t, r_isbearer) - i;
	m->marker = M_TOKEN;
	return 1;
}

static int
r_isvalue(unsigned char c)
{
	return c > ' ' && c != '&' && c != ';' && c != ',' && c != '"' &&
	    c != '\'' && c != 0x7f;
}

/*
 * Rule 2: the credential of an Authorization or Proxy-Authorization header
 * with the Basic scheme (RFC 7617 §2), as a header line, a query parameter
 * or a JSON member. The second word of "Proxy-Authorization" starts at a
 * boundary ('-'), so both headers meet here.
 */
static int
r_basic(const struct rscan *sc, size_t i, struct rmatch *m)
{
	size_t j, t;

	if (!r_prefix(sc, i, "authorization"))
		return 0;
	j = i + 13;
	if (r_at(sc, j) == '"')
		j++;
	if (r_at(sc, j) != ':' && r_at(sc, j) != '=')
		return 0;
	j++;
	for (t = j; t - j < 8 && (r_at(sc, t) == ' ' || r_at(sc, t) == '\t');
	     t++)
		;
	if (r_at(sc, t) == '"')
		t++;
	if (!r_prefix(sc, t, "basic"))
		return 0;
	j = t + 5;
	for (t = j; t - j < 8 && (r_at(sc, t) == ' ' || r_at(sc, t) == '\t');
	     t++)
		;
	if (t == j || !r_isvalue(r_at(sc, t)))
		return 0;
	m->keep = t - i;
	m->len = r_span(sc, t, r_isvalue) - i;
	m->marker = M_TOKEN;
	return 1;
}

/*
 * Rule 3: key=value, key: value and "key":"value" for well-known secret
 * keys.
 */
static int
r_keyvalue(const struct rscan *sc, size_t i, struct rmatch *m)
{
	static const char *const keys[] = {
		"password",
		"passwd",
		"pwd",
		"secret",
		"token",
		"access_token",
		"refresh_token",
		"id_token",
		"client_secret",
		"api_key",
		"apikey",
		"csrf_token",
		"bw_session",
		"session_id",
		"invite_token",
	};
	size_t k, e, l, v;

	e = r_span(sc, i, r_isword);
	l = e - i;
	for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
		if (strlen(keys[k]) == l &&
		    strncasecmp(sc->s + i, keys[k], l) == 0)
			break;
	if (k == sizeof(keys) / sizeof(keys[0]))
		return 0;
	v = e;
	if (r_at(sc, v) == '"')
		v++;
	if (r_at(sc, v) != '=' && r_at(sc, v) != ':')
		return 0;
	v++;
	if (r_at(sc, v) == ' ')
		v++;
	if (r_at(sc, v) == '"') {
		/* A quoted value goes whole, blanks too (a passphrase), up
		 * to its closing quote; a backslash escapes one byte. */
		size_t q = ++v;

		while (q < sc->n && r_at(sc, q) != '"' && r_at(sc, q) >= ' ' &&
		    r_at(sc, q) != 0x7f)
			q += r_at(sc, q) == '\\' && q + 1 < sc->n ? 2 : 1;
		if (q == v)
			return 0;
		m->keep = v - i;
		m->len = q - i;
		m->marker = M_SECRET;
		return 1;
	}
	if (!r_isvalue(r_at(sc, v)))
		return 0;
	m->keep = v - i;
	m->len = r_span(sc, v, r_isvalue) - i;
	m->marker = M_SECRET;
	return 1;
}

/* Rule 4: a JWT (RFC 7519 §3, compact JWS serialization). */
static int
r_jwt(struct rscan *sc, size_t i, struct rmatch *m)
{
	size_t h, p, g;

	if (i < sc->jwt_skip || sc->n - i < 3 ||
	    memcmp(sc->s + i, "eyJ", 3) != 0)
		return 0;
	h = r_span(sc, i, r_isb64url);
	if (r_at(sc, h) != '.' || !r_isb64url(r_at(sc, h + 1))) {
		/* Any later start inside this run ends the same way. */
		sc->jwt_skip = h;
		return 0;
	}
	p = r_span(sc, h + 1, r_isb64url);
	if (r_at(sc, p) != '.') {
		sc->jwt_skip = h;
		return 0;
	}
	g = r_span(sc, p + 1, r_isb64url);
	m->keep = 0;
	m->len = g - i;
	m->marker = M_JWT;
	return 1;
}

/* Rule 5: keys recognisable by their prefix. */
static int
r_prefixed(const struct rscan *sc, size_t i, struct rmatch *m)
{
	static const struct {
		const char *pre;
		size_t	    min;
		const char *marker;
	} pres[] = {
		{ "bwk_", 9, M_TOKEN },
		{ "whsec_", 8, M_SECRET },
		{ "sk_live_", 4, M_SECRET },
		{ "sk_test_", 4, M_SECRET },
		{ "rk_live_", 4, M_SECRET },
		{ "rk_test_", 4, M_SECRET },
		{ "rk_", 16, M_SECRET },
		{ "sk-", 16, M_SECRET },
	};
	size_t k, l, e;

	for (k = 0; k < sizeof(pres) / sizeof(pres[0]); k++) {
		l = strlen(pres[k].pre);
		if (sc->n - i < l || memcmp(sc->s + i, pres[k].pre, l) != 0)
			continue;
		e = r_span(sc, i + l, r_isb64url);
		if (e - (i + l) < pres[k].min)
			continue;
		m->keep = 0;
		m->len = e - i;
		m->marker = pres[k].marker;
		return 1;
	}
	return 0;
}

/*
 * Length of the valid UTF-8 sequence at s[0..n) (RFC 3629 §4: no overlong
 * forms, no surrogates, nothing past U+10FFFF) with its code point in *cp,
 * or 0 when the bytes are not valid UTF-8.
 */
static size_t
r_utf8(const unsigned char *s, size_t n, unsigned long *cp)
{
	size_t	      l, k;
	unsigned long v, min;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		l = 2;
		v = s[0] & 0x1f;
		min = 0x80;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		l = 3;
		v = s[0] & 0x0f;
		min = 0x800;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		l = 4;
		v = s[0] & 0x07;
		min = 0x10000;
	} else
		return 0;
	if (n < l)
		return 0;
	for (k = 1; k < l; k++) {
		if ((s[k] & 0xc0) != 0x80)
			return 0;
		v = (v << 6) | (s[k] & 0x3f);
	}
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return 0;
	*cp = v;
	return l;
}

/* Kinds of character in an e-mail address (r_mailch). */
#define MC_MARK	 0 /* digit, punctuation or combining mark: no script */
#define MC_ASCII 1 /* ASCII letter */
#define MC_LATIN 2 /* other Latin letter: é, ö, ơ */
#define MC_INTL	 3 /* letter of another script: Thai, Cyrillic, Han */

/*
 * Whether the code point cp (>= 0x80) may stand in an internationalised
 * address (RFC 6531 §3.3). Without Unicode tables this is "not one of the
 * symbol and punctuation blocks": taking a symbol along over-redacts, which
 * is safe.
 */
static int
r_isintl(unsigned long cp)
{
	return cp >= 0xc0 && cp != 0xd7 && cp != 0xf7 &&
	    !(cp >= 0x2000 && cp <= 0x2bff) &&
	    !(cp >= 0x3000 && cp <= 0x303f) &&
	    !(cp >= 0xfe30 && cp <= 0xfe6f) &&
	    !(cp >= 0xff00 && cp <= 0xff20) &&
	    !(cp >= 0xfff0 && cp <= 0xffff) && cp < 0x1f000;
}

/*
 * Length of the character at i if it may stand in the local part (local
 * set) or in a domain label, with its kind in *kind; 0 if it may not.
 */
static size_t
r_mailch(const struct rscan *sc, size_t i, int local, int *kind)
{
	unsigned char c = r_at(sc, i);
	unsigned long cp;
	size_t	      l;

	if (i >= sc->n)
		return 0;
	if (c < 0x80) {
		if (local ? !r_ismailloc(c) : !(r_isalnum(c) || c == '-'))
			return 0;
		*kind = r_isupper(c) || r_islower(c) ? MC_ASCII : MC_MARK;
		return 1;
	}
	l = r_utf8((const unsigned char *)sc->s + i, sc->n - i, &cp);
	if (l == 0 || !r_isintl(cp))
		return 0;
	if (cp >= 0x300 && cp <= 0x36f)
		*kind = MC_MARK;
	else if (cp < 0x300 || (cp >= 0x1e00 && cp <= 0x1eff))
		*kind = MC_LATIN;
	else
		*kind = MC_INTL;
	return l;
}

/*
 * Rule 6: an e-mail address, ASCII or internationalised. The local part is
 * scanned at most 65 bytes and the domain at most 254, so one attempt is
 * bounded; a failure that did not hit the local cap also rules out every
 * later start in the same run (mail_skip).
 */
static int
r_email(struct rscan *sc, size_t i, struct rmatch *m)
{
	size_t j, d, l, lab, cut, good, chars, alpha, dots;
	int    k, prev, script;

	if (i < sc->mail_skip || r_mailch(sc, i, 1, &k) == 0)
		return 0;
	/*
	 * Where a letter of another script meets an ASCII letter, the text
	 * before is a word of the sentence, not the address ("ติดต่อsomchai@"):
	 * every start before that point fails, the next attempt starts there.
	 */
	prev = MC_MARK;
	for (j = i; (l = r_mailch(sc, j, 1, &k)) != 0; j += l) {
		if (prev == MC_INTL && k == MC_ASCII) {
			sc->mail_skip = j;
			return 0;
		}
		if (j + l - i > MAIL_LOCAL_MAX)
			return 0;
		prev = k;
	}
	if (r_at(sc, j) != '@') {
		sc->mail_skip = j;
		return 0;
	}
	d = j + 1;
	good = 0; /* end of the last label that would do as a TLD */
	dots = 0;
	for (;;) {
		lab = d;
		chars = 0;
		alpha = 0; /* leading letters of this label */
		script = MC_MARK;
		cut = 0;
		while ((l = r_mailch(sc, d, 0, &k)) != 0 &&
		    d + l - (j + 1) <= MAIL_DOMAIN_MAX) {
			if (k != MC_MARK) {
				if (alpha == chars)
					alpha++;
				if (k == MC_LATIN)
					k = MC_ASCII;
				if (script == MC_MARK)
					script = k;
				else if (k != script && cut == 0)
					cut = d;
			}
			chars++;
			d += l;
		}
		if (d == lab)
			break;
		if (dots > 0 && alpha >= 2)
			good = cut != 0 ? cut : d;
		if (r_at(sc, d) != '.' || r_mailch(sc, d + 1, 0, &k) == 0 ||
		    d - (j + 1) >= MAIL_DOMAIN_MAX)
			break;
		dots++;
		d++;
	}
	/*
	 * The last label must start with two letters (a TLD, ASCII, punycode
	 * or not). What follows it in the same label ("example.com4567",
	 * found by fuzzing) is redacted with it, up to a change of script
	 * ("example.comครับ": Thai after an ASCII TLD is the sentence). When
	 * the last label fails ("example.com.5"), the address ends at the last
	 * label that would do. Over-redacting is safe, leaking is not.
	 */
	if (good == 0) {
		sc->mail_skip = j;
		return 0;
	}
	m->keep = 0;
	m->len = good - i;
	m->marker = M_EMAIL;
	return 1;
}

static int
r_isphonesep(unsigned char c)
{
	return c == ' ' || c == '-' || c == '.' || c == '(' || c == ')';
}

/* Rule 7a: "+CC ..." international form; returns the length or 0. */
static size_t
r_phone_plus(const struct rscan *sc, size_t i)
{
	size_t j = i + 1, end, k, digits = 0;

	end = j;
	while (j < sc->n) {
		if (r_isdigit(r_at(sc, j))) {
			if (++digits > PHONE_MAX)
				return 0;
			end = ++j;
			continue;
		}
		for (k = j; k < sc->n && k - j < 2 && r_isphonesep(r_at(sc, k));
		     k++)
			;
		if (k == j || !r_isdigit(r_at(sc, k)))
			break;
		j = k;
	}
	if (digits < PHONE_PLUS_MIN || r_isword(r_at(sc, end)))
		return 0;
	return end - i;
}

/* Digits of a run from i, up to PHONE_MAX + 1. */
static size_t
r_digits(const struct rscan *sc, size_t i)
{
	size_t j;

	for (j = i; j < sc->n && j - i <= PHONE_MAX && r_isdigit(r_at(sc, j));
	     j++)
		;
	return j - i;
}

/*
 * Digit groups from i joined by one separator (- . or blank), the same one
 * each time: the length of each in g[], their number in *ng, the digits in
 * *total and the separator (0 for a single run) in *sep. Returns the end,
 * or 0 when there are more than PHONE_MAX digits.
 */
static size_t
r_phone_groups(const struct rscan *sc, size_t i, size_t g[PHONE_MAX],
    size_t *ng, size_t *total, unsigned char *sep)
{
	size_t j = i, l;

	*ng = 0;
	*total = 0;
	*sep = 0;
	for (;;) {
		l = r_digits(sc, j);
		*total += l;
		if (*total > PHONE_MAX || *ng == PHONE_MAX)
			return 0;
		g[(*ng)++] = l;
		j += l;
		if (*sep == 0 &&
		    (r_at(sc, j) == '-' || r_at(sc, j) == '.' ||
			r_at(sc, j) == ' ') &&
		    r_isdigit(r_at(sc, j + 1)))
			*sep = r_at(sc, j);
		if (*sep == 0 || r_at(sc, j) != *sep ||
		    !r_isdigit(r_at(sc, j + 1)))
			break;
		j++;
	}
	return j;
}

/* Whether none of the groups g[0..ng) is longer than 4 digits. */
static int
r_phone_short(const size_t *g, size_t ng)
{
	size_t k;

	for (k = 0; k < ng; k++)
		if (g[k] > 4)
			return 0;
	return 1;
}

/* Rule 7b: "(555) 123-4567" and Thai "(02) 123 4567", "(053) 123 456". */
static size_t
r_phone_paren(const struct rscan *sc, size_t i)
{
	size_t	      g[PHONE_MAX], ng, total, a, j = i + 1, e;
	unsigned char sep;

	a = r_digits(sc, j);
	if (r_at(sc, j + a) != ')')
		return 0;
	if (a == 3 && r_at(sc, j) != '0') {
		j += 4;
		if (r_at(sc, j) == ' ')
			j++;
		if (r_digits(sc, j) != 3)
			return 0;
		j += 3;
		if (r_at(sc, j) != '-' && r_at(sc, j) != '.' &&
		    r_at(sc, j) != ' ')
			return 0;
		j++;
		if (r_digits(sc, j) != 4 || r_isword(r_at(sc, j + 4)))
			return 0;
		return j + 4 - i;
	}
	/* A Thai area code keeps its trunk prefix inside the parentheses. */
	if (a < 2 || a > 3 || r_at(sc, j) != '0')
		return 0;
	j += a + 1;
	if (r_at(sc, j) == ' ')
		j++;
	if (!r_isdigit(r_at(sc, j)))
		return 0;
	e = r_phone_groups(sc, j, g, &ng, &total, &sep);
	if (e == 0 || total + a < PHONE_MIN || total + a > PHONE_MAX ||
	    r_isword(r_at(sc, e)) || (ng > 1 && !r_phone_short(g, ng)))
		return 0;
	return e - i;
}

/* Rules 7c, 7d and 7e: forms that start with a digit. */
static size_t
r_phone_digits(const struct rscan *sc, size_t i)
{
	size_t	      g[PHONE_MAX], ng, j, total;
	unsigned char sep;

	j = r_phone_groups(sc, i, g, &ng, &total, &sep);
	if (j == 0 || total < PHONE_MIN || r_isword(r_at(sc, j)))
		return 0;
	if (ng == 1)
		return j - i;
	if (r_phone_short(g, ng) && sc->s[i] == '0')
		return j - i;
	if (ng == 3 && g[0] == 3 && g[1] == 3 && g[2] == 4)
		return j - i;
	if (ng == 4 && g[0] == 1 && g[1] == 3 && g[2] == 3 && g[3] == 4)
		return j - i;
	/*
	 * Thailand's country code without its '+': "66", then the national
	 * number without (or with) its trunk 0, 8-10 digits. Not dotted, so
	 * that no IPv4 address or version number looks like one.
	 */
	if (ng >= 3 && g[0] == 2 && sc->s[i] == '6' && sc->s[i + 1] == '6' &&
	    sep != '.' && r_phone_short(g, ng) && total - 2 >= 8 &&
	    total - 2 <= 10)
		return j - i;
	return 0;
}

/* Rule 7: phone numbers. */
static int
r_phone(const struct rscan *sc, size_t i, struct rmatch *m)
{
	unsigned char c = r_at(sc, i), p;
	size_t	      l = 0;

	if (i > 0) {
		p = (unsigned char)sc->s[i - 1];
		if (r_isword(p) || p == '-' || p == '.' || p == '/' ||
		    p == '+' || p == '@' || p == '#' || p == '\\')
			return 0;
	}
	if (c == '+' && r_isdigit(r_at(sc, i + 1)))
		l = r_phone_plus(sc, i);
	else if (c == '(')
		l = r_phone_paren(sc, i);
	else if (r_isdigit(c))
		l = r_phone_digits(sc, i);
	if (l == 0)
		return 0;
	m->keep = 0;
	m->len = l;
	m->marker = M_PHONE;
	return 1;
}

/*
 * Rule 8: an API key of exactly 32 hex digits (either case) between
 * non-word characters. A value that is nothing else stays: request and
 * trace ids (nginx's $request_id, W3C trace-ids) reach the redactor so.
 */
static int
r_hexkey(const struct rscan *sc, size_t i, struct rmatch *m)
{
	size_t e;

	for (e = i;
	     e < sc->n && e - i <= HEX_KEY_LEN && r_isxdigit(r_at(sc, e)); e++)
		;
	if (e - i != HEX_KEY_LEN || r_isword(r_at(sc, e)) ||
	    (i == 0 && e == sc->n))
		return 0;
	m->keep = 0;
	m->len = HEX_KEY_LEN;
	m->marker = M_SECRET;
	return 1;
}

/*
 * Rule 9: a long opaque token. A run that fails cannot succeed from a later
 * start inside it (shorter, fewer character classes), hence gen_skip.
 */
static int
r_generic(struct rscan *sc, size_t i, struct rmatch *m)
{
	size_t e, j;
	int    up = 0, lo = 0, di = 0;

	if (i < sc->gen_skip || !r_isgeneric(r_at(sc, i)))
		return 0;
	if (i > 0 && r_isgeneric((unsigned char)sc->s[i - 1]))
		return 0;
	e = r_span(sc, i, r_isgeneric);
	for (j = i; j < e; j++) {
		unsigned char c = (unsigned char)sc->s[j];

		up |= r_isupper(c);
		lo |= r_islower(c);
		di |= r_isdigit(c);
	}
	if (e - i < GENERIC_MIN || !up || !lo || !di) {
		sc->gen_skip = e;
		return 0;
	}
	while (r_at(sc, e) == '=')
		e++;
	m->keep = 0;
	m->len = e - i;
	m->marker = M_SECRET;
	return 1;
}

/*
 * Appends the character at s[i], escaped as the file header says. Returns
 * BW_OK (with *adv set to the bytes consumed) or buf's error.
 */
static enum bw_err
r_emit(struct buf *out, const struct rscan *sc, size_t i, size_t *adv)
{
	static const char    hex[] = "0123456789abcdef";
	const unsigned char *u = (const unsigned char *)sc->s + i;
	unsigned long	     cp;
	size_t		     l;
	char		     e[6];

	*adv = 1;
	if (u[0] >= 0x20 && u[0] < 0x7f)
		return buf_addc(out, (char)u[0]);
	if (u[0] == '\n')
		return buf_add(out, "\\n", 2);
	if (u[0] == '\r')
		return buf_add(out, "\\r", 2);
	if (u[0] == '\t')
		return buf_add(out, "\\t", 2);
	if (u[0] < 0x80) {
		e[0] = '\\';
		e[1] = 'x';
		e[2] = hex[u[0] >> 4];
		e[3] = hex[u[0] & 0xf];
		return buf_add(out, e, 4);
	}
	l = r_utf8(u, sc->n - i, &cp);
	if (l == 0)
		return buf_add(out, "\xef\xbf\xbd", 3);
	*adv = l;
	if ((cp >= 0x80 && cp <= 0x9f) || cp == 0x2028 || cp == 0x2029 ||
	    (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069))
		return buf_printf(out, "\\u%04lx", cp);
	return buf_add(out, u, l);
}

/* Tries the rules at i (a word boundary) in order. */
static int
r_match(struct rscan *sc, size_t i, struct rmatch *m)
{
	unsigned char c = r_at(sc, i);

	if ((c == 'b' || c == 'B') && r_bearer(sc, i, m))
		return 1;
	if ((c == 'a' || c == 'A') && r_basic(sc, i, m))
		return 1;
	if (r_isalnum(c) && r_keyvalue(sc, i, m))
		return 1;
	if (c == 'e' && r_jwt(sc, i, m))
		return 1;
	if ((c == 'b' || c == 'w' || c == 's' || c == 'r') &&
	    r_prefixed(sc, i, m))
		return 1;
	if (r_email(sc, i, m))
		return 1;
	if ((c == '+' || c == '(' || r_isdigit(c)) && r_phone(sc, i, m))
		return 1;
	if (r_isxdigit(c) && r_hexkey(sc, i, m))
		return 1;
	return r_generic(sc, i, m);
}

/*
 * Appends the redacted, escaped form of s[0..n) to out. Returns BW_OK, or
 * buf's error (BW_ETOOBIG, BW_ENOMEM); out then holds a redacted prefix.
 */
enum bw_err
redact_append(struct buf *out, const char *s, size_t n)
{
	struct rscan  sc;
	struct rmatch m;
	enum bw_err   er = BW_OK;
	size_t	      i = 0, k, adv;

	memset(&sc, 0, sizeof(sc));
	sc.s = s;
	sc.n = n;
	while (er == BW_OK && i < n) {
		if ((i == 0 || !r_isword((unsigned char)s[i - 1]) ||
			(unsigned char)s[i] >= 0x80) &&
		    r_match(&sc, i, &m)) {
			for (k = i; er == BW_OK && k < i + m.keep; k += adv)
				er = r_emit(out, &sc, k, &adv);
			if (er == BW_OK)
				er = buf_addstr(out, m.marker);
			i += m.len;
			continue;
		}
		er = r_emit(out, &sc, i, &adv);
		i += adv;
	}
	return er;
}

/*
 * Redacted copy of the C string s. Output is at most 4 bytes per input byte
 * (a marker is never 4 times longer than what it replaces) plus slack.
 * Returns a string the caller frees, or NULL when out of memory.
 */
char *
redact_str(const char *s)
{
	struct buf b;
	size_t	   n;

	if (s == NULL)
		return NULL;
	n = strlen(s);
	if (n > (((size_t)-1) - 64) / 4)
		return NULL;
	buf_init(&b, n * 4 + 64);
	if (redact_append(&b, s, n) != BW_OK) {
		buf_free(&b);
		return NULL;
	}
	return buf_take(&b);
}
