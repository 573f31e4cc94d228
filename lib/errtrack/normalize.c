/* SPDX-License-Identifier: MIT */
/*
 * The pure part of error tracking: message normalisation (what varies
 * between occurrences of one bug becomes a placeholder), the SHA-256
 * fingerprint, the PII mask applied to samples on top of the redactor,
 * and the title and body (the troubleshooting prompt).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/redact.h"
#include "core/sec.h"
#include "errtrack/errtrack.h"
#include "errtrack/errtrack_int.h"

static const char *const kind_names[EK__MAX] = { "http_5xx", "crash",
	"job_failure", "client" };

const char *
errtrack_kind_name(enum errtrack_kind k)
{
	return k >= 0 && k < EK__MAX ? kind_names[k] : "unknown";
}

int
errtrack_kind_parse(const char *s)
{
	int i;

	for (i = 0; s != NULL && i < EK__MAX; i++)
		if (strcmp(s, kind_names[i]) == 0)
			return i;
	return -1;
}

static int
is_word(unsigned char c)
{
	return isalnum(c) || c == '_' || c >= 0x80;
}

static int
is_local(unsigned char c)
{
	return isalnum(c) || c == '.' || c == '_' || c == '%' || c == '+' ||
	    c == '-';
}

/* Length of an e-mail address at s (local@domain.tld), or 0. */
STATIC size_t
nz_email(const char *s, size_t n)
{
	size_t i = 0, at, dot = 0;

	while (i < n && is_local((unsigned char)s[i]))
		i++;
	if (i == 0 || i >= n || s[i] != '@')
		return 0;
	at = i++;
	while (i < n &&
	    (isalnum((unsigned char)s[i]) || s[i] == '-' || s[i] == '.')) {
		if (s[i] == '.' && i > at + 1)
			dot = i;
		i++;
	}
	while (i > at + 1 && s[i - 1] == '.')
		i--;
	return dot > at + 1 && dot + 1 < i ? i : 0;
}

/* Length of a UUID (8-4-4-4-12 hex) at s, or 0. */
static size_t
nz_uuid(const char *s, size_t n)
{
	static const int groups[5] = { 8, 4, 4, 4, 12 };
	size_t		 i = 0;
	int		 g, k;

	for (g = 0; g < 5; g++) {
		for (k = 0; k < groups[g]; k++, i++)
			if (i >= n || !isxdigit((unsigned char)s[i]))
				return 0;
		if (g < 4 && (i >= n || s[i++] != '-'))
			return 0;
	}
	return i < n && is_word((unsigned char)s[i]) ? 0 : i;
}

/* Length of a hex id at s (0x..., or 8+ hex digits holding a digit and
 * ending a word), or 0. */
static size_t
nz_hex(const char *s, size_t n)
{
	size_t i = 0;
	int    digit = 0;

	if (n > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') &&
	    isxdigit((unsigned char)s[2])) {
		i = 2;
		while (i < n && isxdigit((unsigned char)s[i]))
			i++;
		return i;
	}
	while (i < n && isxdigit((unsigned char)s[i])) {
		if (isdigit((unsigned char)s[i]))
			digit = 1;
		i++;
	}
	if (i < 8 || !digit || (i < n && is_word((unsigned char)s[i])))
		return 0;
	return i;
}

/*
 * Length of a phone number at s, or 0: '+' and 7 to 15 digits, or a
 * national number (a leading 0 and 8 to 11 digits in all, e.g. Thai
 * 0812345678); single blanks, '-', '.' and parentheses may separate the
 * digits.
 */
STATIC size_t
nz_phone(const char *s, size_t n)
{
	size_t i = 0, end = 0;
	int    digits = 0, plus = 0;

	if (n > 0 && s[0] == '+') {
		plus = 1;
		i = 1;
	} else if (n == 0 || s[0] != '0')
		return 0;
	while (i < n) {
		if (isdigit((unsigned char)s[i])) {
			digits++;
			i++;
			end = i;
		} else if ((s[i] == ' ' || s[i] == '-' || s[i] == '.' ||
			       s[i] == '(' || s[i] == ')') &&
		    i + 1 < n &&
		    (isdigit((unsigned char)s[i + 1]) || s[i + 1] == '(') &&
		    digits > 0)
			i++;
		else
			break;
	}
	if (end < n && is_word((unsigned char)s[end]))
		return 0;
	if (plus)
		return digits >= 7 && digits <= 15 ? end : 0;
	return digits >= 9 && digits <= 11 ? end : 0;
}

/* Length of a quoted string at s (a quote, up to the same quote on the
 * line), or 0. */
static size_t
nz_quoted(const char *s, size_t n)
{
	size_t i;

	for (i = 1; i < n && i < 512; i++) {
		if (s[i] == '\n')
			return 0;
		if (s[i] == s[0])
			return i + 1;
	}
	return 0;
}

/* Appends str to out within outlen (one byte kept for the NUL). */
static void
nz_put(char *out, size_t outlen, size_t *o, const char *str, size_t len)
{
	if (*o + 1 >= outlen)
		return;
	if (len > outlen - 1 - *o)
		len = outlen - 1 - *o;
	memcpy(out + *o, str, len);
	*o += len;
}

#define NZ_PUT(lit) nz_put(out, outlen, &o, (lit), sizeof(lit) - 1)

size_t
errtrack_nz(const char *msg, char *out, size_t outlen, int pii_only)
{
	size_t	      n, i = 0, o = 0, k;
	unsigned char c, prev = ' ';
	int	      blank = 0;

	if (outlen == 0)
		return 0;
	n = msg != NULL ? strlen(msg) : 0;
	while (i < n) {
		c = (unsigned char)msg[i];
		if (!pii_only && isspace(c)) {
			blank = 1;
			prev = ' ';
			i++;
			continue;
		}
		if (blank && o > 0)
			nz_put(out, outlen, &o, " ", 1);
		blank = 0;
		k = 0;
		if (!is_local(prev) && (k = nz_email(msg + i, n - i)) > 0)
			NZ_PUT("<email>");
		else if (!is_word(prev) && !pii_only &&
		    (k = nz_uuid(msg + i, n - i)) > 0)
			NZ_PUT("<uuid>");
		else if (!is_word(prev) && prev != '+' &&
		    (k = nz_phone(msg + i, n - i)) > 0)
			NZ_PUT("<phone>");
		else if (!is_word(prev) && !pii_only &&
		    (k = nz_hex(msg + i, n - i)) > 0)
			NZ_PUT("<hex>");
		else if (!pii_only &&
		    (c == '"' || c == '`' || (c == '\'' && !is_word(prev))) &&
		    (k = nz_quoted(msg + i, n - i)) > 0)
			NZ_PUT("<str>");
		else if (!pii_only && isdigit(c)) {
			for (k = 0;
			     i + k < n && isdigit((unsigned char)msg[i + k]);
			     k++)
				;
			NZ_PUT("<n>");
		}
		if (k > 0) {
			prev = (unsigned char)msg[i + k - 1];
			i += k;
			continue;
		}
		nz_put(out, outlen, &o, msg + i, 1);
		prev = c;
		i++;
	}
	/* Never end inside a UTF-8 sequence cut by the bound. */
	while (o > 0 && ((unsigned char)out[o - 1] & 0xc0) == 0x80)
		o--;
	if (o > 0 && ((unsigned char)out[o - 1] & 0xc0) == 0xc0)
		o--;
	out[o] = '\0';
	return o;
}

size_t
errtrack_normalize(const char *msg, char *out, size_t outlen)
{
	return errtrack_nz(msg, out, outlen, 0);
}

enum bw_err
errtrack_fingerprint(const char *code, const char *norm_msg, const char *site,
    char hex[65])
{
	struct sec_sha256_ctx *c;
	uint8_t		       d[32];
	enum bw_err	       er;

	c = sec_sha256_new();
	if (c == NULL)
		return BW_ENOMEM;
	er = sec_sha256_update(c, code, strlen(code));
	if (er == BW_OK)
		er = sec_sha256_update(c, "\n", 1);
	if (er == BW_OK)
		er = sec_sha256_update(c, norm_msg, strlen(norm_msg));
	if (er == BW_OK)
		er = sec_sha256_update(c, "\n", 1);
	if (er == BW_OK)
		er = sec_sha256_update(c, site, strlen(site));
	if (er == BW_OK)
		er = sec_sha256_final(c, d);
	sec_sha256_free(c);
	if (er == BW_OK)
		sec_hex(d, sizeof(d), hex);
	return er;
}

char *
errtrack_redact(const char *s, size_t max)
{
	char  *r, *m;
	size_t cap;

	r = redact_str(s != NULL ? s : "");
	if (r == NULL)
		return NULL;
	/* The redactor keeps national phone numbers such as 0812345678
	 * readable; the mask does not. */
	cap = 2 * strlen(r) + 16;
	if (cap > max + 1)
		cap = max + 1;
	m = malloc(cap);
	if (m != NULL)
		(void)errtrack_nz(r, m, cap, 1);
	free(r);
	return m;
}
