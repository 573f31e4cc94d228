/* SPDX-License-Identifier: MIT */
/* Bounded growable buffer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"

void
buf_init(struct buf *b, size_t max)
{
	b->p = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
}

void
buf_free(struct buf *b)
{
	free(b->p);
	buf_init(b, b->max);
}

void
buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->p != NULL)
		b->p[0] = '\0';
}

/*
 * Makes room for n more bytes plus the NUL. Returns BW_ETOOBIG past the
 * maximum, BW_ENOMEM when realloc fails; the buffer is unchanged then.
 */
static enum bw_err
buf_grow(struct buf *b, size_t n)
{
	size_t want, ncap;
	char  *np;

	if (n > b->max || b->len > b->max - n)
		return BW_ETOOBIG;
	want = b->len + n + 1;
	if (want <= b->cap)
		return BW_OK;
	ncap = b->cap ? b->cap : 64;
	while (ncap < want)
		ncap *= 2;
	if (ncap > b->max + 1)
		ncap = b->max + 1;
	np = realloc(b->p, ncap);
	if (np == NULL)
		return BW_ENOMEM;
	b->p = np;
	b->cap = ncap;
	return BW_OK;
}

enum bw_err
buf_add(struct buf *b, const void *d, size_t n)
{
	enum bw_err er;

	er = buf_grow(b, n);
	if (er != BW_OK)
		return er;
	if (n > 0)
		memcpy(b->p + b->len, d, n);
	b->len += n;
	b->p[b->len] = '\0';
	return BW_OK;
}

enum bw_err
buf_addstr(struct buf *b, const char *s)
{
	return buf_add(b, s, strlen(s));
}

enum bw_err
buf_addc(struct buf *b, char c)
{
	return buf_add(b, &c, 1);
}

enum bw_err
buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
	va_list	    ap2;
	int	    n;
	enum bw_err er;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return BW_EINVAL;
	er = buf_grow(b, (size_t)n);
	if (er != BW_OK)
		return er;
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return BW_OK;
}

enum bw_err
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list	    ap;
	enum bw_err er;

	va_start(ap, fmt);
	er = buf_vprintf(b, fmt, ap);
	va_end(ap);
	return er;
}

enum bw_err
buf_addjsonstr(struct buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	enum bw_err	  er;
	size_t		  i;
	char		  esc[6];

	er = buf_addc(b, '"');
	for (i = 0; er == BW_OK && i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			er = buf_add(b, esc, 2);
		} else if (c == '\n') {
			er = buf_add(b, "\\n", 2);
		} else if (c == '\r') {
			er = buf_add(b, "\\r", 2);
		} else if (c == '\t') {
			er = buf_add(b, "\\t", 2);
		} else if (c < 0x20 || c == 0x7f) {
			esc[0] = '\\';
			esc[1] = 'u';
			esc[2] = '0';
			esc[3] = '0';
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 0xf];
			er = buf_add(b, esc, 6);
		} else
			er = buf_addc(b, (char)c);
	}
	if (er == BW_OK)
		er = buf_addc(b, '"');
	return er;
}

const char *
buf_cstr(const struct buf *b)
{
	return b->p != NULL ? b->p : "";
}

char *
buf_take(struct buf *b)
{
	char *p = b->p;

	if (p == NULL)
		p = strdup("");
	buf_init(b, b->max);
	return p;
}
