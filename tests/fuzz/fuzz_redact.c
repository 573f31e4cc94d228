/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness for lib/core/redact.c: any bytes, with a known e-mail
 * address placed in the middle. Asserts what redact.h promises every log
 * line: no raw control character (C0, DEL, C1, U+2028/9, bidi overrides),
 * valid UTF-8, and the e-mail address never copied through (searched for
 * in the unescaped output, with its copies in the data defused first, so
 * the check is exact).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/redact.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define LOCAL "alice.smith@"
#define EMAIL LOCAL "example.com"

/*
 * Returns the length of the UTF-8 sequence at p[0..n) and its code point
 * in *cp, or 0 when it is not valid (overlong, surrogate, > U+10FFFF).
 */
static size_t
utf8_next(const unsigned char *p, size_t n, uint32_t *cp)
{
	size_t	 len, i;
	uint32_t c;

	if (p[0] < 0x80) {
		*cp = p[0];
		return 1;
	}
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		len = 2;
		c = p[0] & 0x1f;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		len = 3;
		c = p[0] & 0x0f;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		len = 4;
		c = p[0] & 0x07;
	} else
		return 0;
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (p[i] & 0x3f);
	}
	if ((len == 3 && c < 0x800) || (len == 4 && c < 0x10000) ||
	    (c >= 0xd800 && c <= 0xdfff) || c > 0x10ffff)
		return 0;
	*cp = c;
	return len;
}

/* Aborts unless out[0..n) is clean UTF-8 without dangerous characters. */
static void
check_clean(const char *out, size_t n)
{
	const unsigned char *p = (const unsigned char *)out;
	size_t		     i = 0, l;
	uint32_t	     c;

	while (i < n) {
		if ((l = utf8_next(p + i, n - i, &c)) == 0)
			abort(); /* invalid UTF-8 */
		if (c < 0x20 || c == 0x7f || (c >= 0x80 && c <= 0x9f))
			abort(); /* raw C0/DEL/C1 control */
		if (c == 0x2028 || c == 0x2029 ||
		    (c >= 0x202a && c <= 0x202e) ||
		    (c >= 0x2066 && c <= 0x2069))
			abort(); /* line separator or bidi override */
		i += l;
	}
}

/* Occurrences of the C string w in s[0..n). */
static size_t
count(const char *s, size_t n, const char *w)
{
	const char *p, *e = s + n;
	size_t	    k = 0, wl = strlen(w);

	while ((p = memmem(s, (size_t)(e - s), w, wl)) != NULL) {
		k++;
		s = p + 1;
	}
	return k;
}

/*
 * Turns every copy of LOCAL in s[0..n) into "alice.smith#". The fuzzer
 * learns the address and puts copies of it into the data, glued to
 * anything; with them in the line, a count over the whole output cannot
 * tell ours from theirs (one of theirs redacted hid ours leaking).
 */
static void
defuse(char *s, size_t n)
{
	char  *p, *e = s + n;
	size_t wl = strlen(LOCAL);

	if (n == 0)
		return;
	while ((p = memmem(s, (size_t)(e - s), LOCAL, wl)) != NULL) {
		p[wl - 1] = '#';
		s = p + wl;
	}
}

/* Value of the n lower-case hex digits at p, or -1. */
static long
hexval(const char *p, size_t n)
{
	long   v = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		if (p[i] >= '0' && p[i] <= '9')
			v = v * 16 + (p[i] - '0');
		else if (p[i] >= 'a' && p[i] <= 'f')
			v = v * 16 + (p[i] - 'a' + 10);
		else
			return -1;
	}
	return v;
}

/*
 * Undoes, into u, the escapes redact.c writes: \n \r \t, \xNN for C0 and
 * DEL, \uNNNN for C1, U+2028/9 and the bidi overrides. Only those: a
 * backslash the input held ("\x61") is not an escape and stays. Escapes
 * end in hex digits, so "\x1a" + "lice.smith@" read "alice.smith@" in
 * the escaped text although the input never held it; in u it is gone.
 */
static void
unescape(struct buf *u, const char *s, size_t n)
{
	size_t i = 0;
	long   v;
	char   c[3];

	while (i < n) {
		if (s[i] == '\\' && i + 1 < n &&
		    (s[i + 1] == 'n' || s[i + 1] == 'r' || s[i + 1] == 't')) {
			c[0] = s[i + 1] == 'n' ? '\n'
			    : s[i + 1] == 'r'  ? '\r'
					       : '\t';
			if (buf_add(u, c, 1) != BW_OK)
				abort();
			i += 2;
			continue;
		}
		if (s[i] == '\\' && i + 3 < n && s[i + 1] == 'x' &&
		    (v = hexval(s + i + 2, 2)) >= 0 &&
		    (v < 0x20 || v == 0x7f)) {
			c[0] = (char)v;
			if (buf_add(u, c, 1) != BW_OK)
				abort();
			i += 4;
			continue;
		}
		if (s[i] == '\\' && i + 5 < n && s[i + 1] == 'u' &&
		    (v = hexval(s + i + 2, 4)) >= 0 &&
		    ((v >= 0x80 && v <= 0x9f) || (v >= 0x2028 && v <= 0x202e) ||
			(v >= 0x2066 && v <= 0x2069))) {
			if (v < 0x800) {
				c[0] = (char)(0xc0 | (v >> 6));
				c[1] = (char)(0x80 | (v & 0x3f));
				if (buf_add(u, c, 2) != BW_OK)
					abort();
			} else {
				c[0] = (char)(0xe0 | (v >> 12));
				c[1] = (char)(0x80 | ((v >> 6) & 0x3f));
				c[2] = (char)(0x80 | (v & 0x3f));
				if (buf_add(u, c, 3) != BW_OK)
					abort();
			}
			i += 6;
			continue;
		}
		if (buf_add(u, s + i, 1) != BW_OK)
			abort();
		i++;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf  in, out, u;
	size_t	    half = size / 2, tail;
	enum bw_err er;

	/* Alone: whatever it redacts, the result is clean. */
	buf_init(&out, size * 8 + 64);
	er = redact_append(&out, (const char *)data, size);
	if (er != BW_OK && er != BW_ETOOBIG)
		abort();
	if (er == BW_OK && out.len > size * 8 + 64)
		abort();
	check_clean(buf_cstr(&out), out.len);
	buf_free(&out);

	/*
	 * With a known address set off by blanks: never copied through. The
	 * copies the data may hold are defused first (no copy can straddle
	 * the blanks), so the line holds LOCAL exactly once, ours, and the
	 * unescaped output must hold it nowhere. Unescaping removes no copy
	 * of ours (a blank stands before it) and makes no LOCAL (it yields
	 * control characters only); the escaped text could show one that the
	 * input never held (see unescape()).
	 */
	buf_init(&in, size + 64);
	if (buf_add(&in, data, half) != BW_OK)
		abort();
	defuse(in.p, in.len);
	if (buf_addstr(&in, " " EMAIL " ") != BW_OK ||
	    buf_add(&in, data + half, size - half) != BW_OK)
		abort();
	tail = half + strlen(" " EMAIL " ");
	defuse(in.p + tail, in.len - tail);
	if (count(in.p, in.len, LOCAL) != 1)
		abort(); /* the harness itself is wrong */
	buf_init(&out, in.len * 8 + 64);
	er = redact_append(&out, in.p, in.len);
	if (er != BW_OK)
		abort(); /* room for the worst-case expansion */
	check_clean(buf_cstr(&out), out.len);
	buf_init(&u, out.len + 1);
	unescape(&u, buf_cstr(&out), out.len);
	if (count(buf_cstr(&u), u.len, LOCAL) != 0)
		abort(); /* our address came through */
	buf_free(&u);
	buf_free(&out);
	buf_free(&in);
	return 0;
}
