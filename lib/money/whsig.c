/* SPDX-License-Identifier: MIT */
/*
 * Webhook signature verification for Stripe, Square, LINE, Standard
 * Webhooks and Twilio. Each scheme recomputes the provider's MAC over the
 * raw body, encodes it the way the provider sends it and compares the
 * encoded strings in constant time against every signature in the header,
 * for every active secret, without an early exit.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "core/buf.h"
#include "core/limits.h"
#include "core/sec.h"
#include "money/whsig.h"

#define WHSIG_SHA1_LEN	20
#define WHSIG_TS_DIGITS 12 /* seconds: to year 33658 */
#define WHSIG_ENC_MAX	64 /* SHA-256 hex, the longest */
#define WHSIG_WHSEC	"whsec_"

/* Signatures found in one header (pointers into the header value). */
struct whsig_sigs {
	const char *p[BW_MAX_WEBHOOK_SIGS];
	size_t	    n[BW_MAX_WEBHOOK_SIGS];
	size_t	    count;
};

/* One request after header parsing; every pointer is the caller's. */
struct whsig_req {
	struct whsig_sigs sigs;
	const char	 *ts; /* signed timestamp, or NULL */
	size_t		  tslen;
	int64_t		  tsval;
	const char	 *id; /* webhook-id (SW only) */
	size_t		  idlen;
	const uint8_t	 *body;
	size_t		  len;
};

/* One decoded form field (Twilio): pointers into a decode buffer. */
struct whsig_param {
	const char *name;
	size_t	    nlen;
	const char *val;
	size_t	    vlen;
};

STATIC enum bw_err whsig_parse_ts(const char *, size_t, int64_t *);
STATIC enum whsig_verdict
whsig_parse_stripe(const char *, size_t, struct whsig_req *);
STATIC enum whsig_verdict
whsig_parse_stdwebhooks(const char *, size_t, struct whsig_req *);
STATIC enum whsig_verdict
		   whsig_form_params(const uint8_t *, size_t, struct buf *);
STATIC enum bw_err whsig_url_alt(const char *, struct buf *);

static const char *const whsig_pnames[WS__MAX] = {
	[WS_STRIPE] = "stripe",
	[WS_SQUARE] = "square",
	[WS_LINE] = "line",
	[WS_STDWEBHOOKS] = "sms",
	[WS_TWILIO] = "twilio",
};

/* Providers reachable from a route name (the CONTRACT's list). */
static const int whsig_routable[WS__MAX] = {
	[WS_STRIPE] = 1,
	[WS_SQUARE] = 1,
	[WS_LINE] = 1,
	[WS_STDWEBHOOKS] = 1,
	[WS_TWILIO] = 0,
};

static const struct whsig_names whsig_names_tab[WS__MAX] = {
	[WS_STRIPE] = {
		.signature = { "Stripe-Signature", "HTTP_STRIPE_SIGNATURE" },
		.timestamp = { NULL, NULL },
		.id = { NULL, NULL },
	},
	[WS_SQUARE] = {
		.signature = { "x-square-hmacsha256-signature",
		    "HTTP_X_SQUARE_HMACSHA256_SIGNATURE" },
		.timestamp = { NULL, NULL },
		.id = { NULL, NULL },
	},
	[WS_LINE] = {
		.signature = { "x-line-signature", "HTTP_X_LINE_SIGNATURE" },
		.timestamp = { NULL, NULL },
		.id = { NULL, NULL },
	},
	[WS_STDWEBHOOKS] = {
		.signature = { "webhook-signature", "HTTP_WEBHOOK_SIGNATURE" },
		.timestamp = { "webhook-timestamp", "HTTP_WEBHOOK_TIMESTAMP" },
		.id = { "webhook-id", "HTTP_WEBHOOK_ID" },
	},
	[WS_TWILIO] = {
		.signature = { "X-Twilio-Signature",
		    "HTTP_X_TWILIO_SIGNATURE" },
		.timestamp = { NULL, NULL },
		.id = { NULL, NULL },
	},
};

static const char *const whsig_vnames[WV__MAX] = {
	[WV_VALID] = "valid",
	[WV_INVALID_SIGNATURE] = "invalid_signature",
	[WV_STALE] = "stale",
	[WV_MALFORMED] = "malformed",
	[WV_MISSING_HEADER] = "missing_header",
	[WV_NO_SECRET] = "no_secret",
	[WV_ERROR] = "error",
};

/*
 * Provider from a route name. Returns BW_OK, or BW_EINVAL for NULL, an
 * unknown name or one without a route (*out untouched then).
 */
enum bw_err
whsig_provider_parse(const char *name, enum whsig_provider *out)
{
	int i;

	if (name == NULL)
		return BW_EINVAL;
	for (i = 0; i < WS__MAX; i++)
		if (whsig_routable[i] && strcmp(name, whsig_pnames[i]) == 0) {
			*out = (enum whsig_provider)i;
			return BW_OK;
		}
	return BW_EINVAL;
}

/* Static provider name; "?" when out of range. */
const char *
whsig_provider_name(enum whsig_provider pv)
{
	if ((unsigned int)pv >= WS__MAX)
		return "?";
	return whsig_pnames[pv];
}

/* Static header names of pv; NULL when out of range. */
const struct whsig_names *
whsig_header_names(enum whsig_provider pv)
{
	if ((unsigned int)pv >= WS__MAX)
		return NULL;
	return &whsig_names_tab[pv];
}

/* Static verdict text; never NULL. */
const char *
whsig_verdict_str(enum whsig_verdict v)
{
	if ((unsigned int)v >= WV__MAX)
		return "?";
	return whsig_vnames[v];
}

/*
 * Length of a header value into *n. Returns 1 when present, 0 when NULL
 * or empty (the libraries treat an empty value as absent), -1 when longer
 * than BW_MAX_HEADER (never reads past BW_MAX_HEADER + 1 bytes).
 */
static int
whsig_hdrlen(const char *s, size_t *n)
{
	if (s == NULL || s[0] == '\0')
		return 0;
	*n = strnlen(s, BW_MAX_HEADER + 1);
	return *n > BW_MAX_HEADER ? -1 : 1;
}

/*
 * Parses a signed timestamp: 1 to WHSIG_TS_DIGITS decimal digits, no
 * sign, no leading zero, nothing else, so that the text signed is the
 * canonical integer the libraries sign (they parseInt() and re-print).
 * Returns BW_OK or BW_EINVAL (*out untouched).
 */
STATIC enum bw_err
whsig_parse_ts(const char *s, size_t n, int64_t *out)
{
	int64_t v = 0;
	size_t	i;

	if (n == 0 || n > WHSIG_TS_DIGITS || (n > 1 && s[0] == '0'))
		return BW_EINVAL;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return BW_EINVAL;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return BW_OK;
}

/*
 * Stripe-Signature: comma-separated key=value elements; exactly one t
 * (canonical integer), one or more v1 (at most BW_MAX_WEBHOOK_SIGS), other
 * schemes (v0) ignored as stripe-node does. Stricter than the library: an
 * empty element, one without '=' or a second t is malformed. Returns
 * WV_VALID (parsed) or WV_MALFORMED; no v1 at all is malformed too
 * ("No signatures found with expected scheme").
 */
STATIC enum whsig_verdict
whsig_parse_stripe(const char *h, size_t hlen, struct whsig_req *r)
{
	const char *e, *eq, *comma;
	size_t	    i = 0, elen, klen;
	int	    have_t = 0;

	while (i <= hlen) {
		e = h + i;
		comma = memchr(e, ',', hlen - i);
		elen = comma != NULL ? (size_t)(comma - e) : hlen - i;
		if (elen == 0)
			return WV_MALFORMED;
		eq = memchr(e, '=', elen);
		if (eq == NULL || eq == e)
			return WV_MALFORMED;
		klen = (size_t)(eq - e);
		if (klen == 1 && e[0] == 't') {
			if (have_t ||
			    whsig_parse_ts(eq + 1, elen - klen - 1,
				&r->tsval) != BW_OK)
				return WV_MALFORMED;
			have_t = 1;
			r->ts = eq + 1;
			r->tslen = elen - klen - 1;
		} else if (klen == 2 && e[0] == 'v' && e[1] == '1') {
			if (r->sigs.count == BW_MAX_WEBHOOK_SIGS)
				return WV_MALFORMED;
			r->sigs.p[r->sigs.count] = eq + 1;
			r->sigs.n[r->sigs.count] = elen - klen - 1;
			r->sigs.count++;
		}
		i += elen + 1;
	}
	if (!have_t || r->sigs.count == 0)
		return WV_MALFORMED;
	return WV_VALID;
}

/*
 * webhook-signature: space-separated "<version>,<base64>" entries; v1
 * entries are kept (at most BW_MAX_WEBHOOK_SIGS), other versions (v1a,
 * v2) ignored as the reference library does. Stricter than the library:
 * an empty entry or one without a version and ',' is malformed. Returns
 * WV_VALID or WV_MALFORMED; zero v1 entries is not malformed (the
 * library answers "No matching signature found").
 */
STATIC enum whsig_verdict
whsig_parse_stdwebhooks(const char *h, size_t hlen, struct whsig_req *r)
{
	const char *e, *sp, *c;
	size_t	    i = 0, elen, vlen;

	while (i <= hlen) {
		e = h + i;
		sp = memchr(e, ' ', hlen - i);
		elen = sp != NULL ? (size_t)(sp - e) : hlen - i;
		if (elen == 0)
			return WV_MALFORMED;
		c = memchr(e, ',', elen);
		if (c == NULL || c == e)
			return WV_MALFORMED;
		vlen = (size_t)(c - e);
		if (vlen == 2 && e[0] == 'v' && e[1] == '1') {
			if (r->sigs.count == BW_MAX_WEBHOOK_SIGS)
				return WV_MALFORMED;
			r->sigs.p[r->sigs.count] = c + 1;
			r->sigs.n[r->sigs.count] = elen - vlen - 1;
			r->sigs.count++;
		}
		i += elen + 1;
	}
	return WV_VALID;
}

/*
 * Reads the headers the provider needs into r. Returns WV_VALID (all
 * present and parsed), WV_MISSING_HEADER or WV_MALFORMED.
 */
static enum whsig_verdict
whsig_parse(enum whsig_provider pv, const struct whsig_headers *h,
    struct whsig_req *r)
{
	size_t slen = 0, tlen = 0;
	int    ps, pt = 1, pi = 1;

	ps = whsig_hdrlen(h->signature, &slen);
	if (pv == WS_STDWEBHOOKS) {
		pt = whsig_hdrlen(h->timestamp, &tlen);
		pi = whsig_hdrlen(h->id, &r->idlen);
	}
	if (ps == 0 || pt == 0 || pi == 0)
		return WV_MISSING_HEADER;
	if (ps < 0 || pt < 0 || pi < 0)
		return WV_MALFORMED;
	switch (pv) {
	case WS_STRIPE:
		return whsig_parse_stripe(h->signature, slen, r);
	case WS_STDWEBHOOKS:
		if (whsig_parse_ts(h->timestamp, tlen, &r->tsval) != BW_OK)
			return WV_MALFORMED;
		r->ts = h->timestamp;
		r->tslen = tlen;
		r->id = h->id;
		return whsig_parse_stdwebhooks(h->signature, slen, r);
	default:
		/* One signature, compared as the exact string sent. */
		r->sigs.p[0] = h->signature;
		r->sigs.n[0] = slen;
		r->sigs.count = 1;
		return WV_VALID;
	}
}

/* 1 when s is a bounded, non-empty string. */
static int
whsig_str_ok(const char *s, size_t max)
{
	return s != NULL && s[0] != '\0' && strnlen(s, max + 1) <= max;
}

/*
 * The HMAC key of secret s for pv, appended to key (the caller wipes and
 * frees it). Standard Webhooks: base64-decode after an optional "whsec_";
 * the others: the bytes of the string as it is (Stripe's "whsec_..." is
 * NOT decoded). Square and Twilio also need s->url. Returns BW_OK,
 * BW_EINVAL (unusable secret), BW_ENOMEM.
 */
static enum bw_err
whsig_key(enum whsig_provider pv, const struct whsig_secret *s, struct buf *key)
{
	const char *p;
	size_t	    n;
	enum bw_err er;

	if (s == NULL || !whsig_str_ok(s->secret, BW_MAX_WEBHOOK_SECRET))
		return BW_EINVAL;
	if ((pv == WS_SQUARE || pv == WS_TWILIO) &&
	    (!whsig_str_ok(s->url, BW_MAX_HEADER) ||
		(strncmp(s->url, "https://", 8) != 0 &&
		    strncmp(s->url, "http://", 7) != 0)))
		return BW_EINVAL;
	p = s->secret;
	n = strlen(p);
	if (pv != WS_STDWEBHOOKS)
		return buf_add(key, p, n);
	if (n >= sizeof(WHSIG_WHSEC) - 1 &&
	    memcmp(p, WHSIG_WHSEC, sizeof(WHSIG_WHSEC) - 1) == 0) {
		p += sizeof(WHSIG_WHSEC) - 1;
		n -= sizeof(WHSIG_WHSEC) - 1;
	}
	er = sec_unb64(p, n, key);
	if (er == BW_ETOOBIG)
		er = BW_EINVAL;
	if (er == BW_OK && key->len == 0)
		er = BW_EINVAL;
	return er;
}

/* Whether s is a usable secret for pv. BW_OK or BW_EINVAL. */
enum bw_err
whsig_secret_check(enum whsig_provider pv, const struct whsig_secret *s)
{
	struct buf  key;
	enum bw_err er;

	if ((unsigned int)pv >= WS__MAX)
		return BW_EINVAL;
	buf_init(&key, BW_MAX_WEBHOOK_SECRET);
	er = whsig_key(pv, s, &key);
	if (key.p != NULL)
		sec_wipe(key.p, key.cap);
	buf_free(&key);
	return er == BW_OK ? BW_OK : BW_EINVAL;
}

/*
 * Computes pv's MAC of msg[0..n) under key, encodes it as pv sends it
 * (lower-case hex for Stripe, padded base64 otherwise) and ORs into
 * *match whether any of r's signatures equals it; every signature is
 * compared, in constant time. Returns BW_OK, BW_ECRYPTO or BW_ENOMEM.
 */
static enum bw_err
whsig_mac_match(enum whsig_provider pv, const struct buf *key, const void *msg,
    size_t n, const struct whsig_sigs *sigs, int *match)
{
	static const unsigned char empty[1];
	uint8_t			   mac[SEC_SHA256_LEN];
	char			   hex[2 * SEC_SHA256_LEN + 1];
	struct buf		   enc;
	const char		  *e;
	size_t			   i, elen, mlen = SEC_SHA256_LEN;
	unsigned int		   olen = 0;
	enum bw_err		   er;

	buf_init(&enc, WHSIG_ENC_MAX);
	if (msg == NULL)
		msg = empty;
	if (pv == WS_TWILIO) {
		/* Twilio signs with HMAC-SHA1; sec.h has SHA-256 only. */
		mlen = WHSIG_SHA1_LEN;
		if (key->len > INT32_MAX ||
		    HMAC(EVP_sha1(), key->p, (int)key->len, msg, n, mac,
			&olen) == NULL ||
		    olen != WHSIG_SHA1_LEN) {
			ERR_clear_error();
			er = BW_ECRYPTO;
			goto out;
		}
	} else {
		er = sec_hmac_sha256(key->p, key->len, msg, n, mac);
		if (er != BW_OK)
			goto out;
	}
	if (pv == WS_STRIPE) {
		sec_hex(mac, mlen, hex);
		e = hex;
		elen = 2 * mlen;
	} else {
		er = sec_b64(mac, mlen, &enc);
		if (er != BW_OK)
			goto out;
		e = enc.p;
		elen = enc.len;
	}
	for (i = 0; i < sigs->count; i++)
		*match |= sec_eq(e, elen, sigs->p[i], sigs->n[i]);
	er = BW_OK;
out:
	sec_wipe(mac, sizeof(mac));
	buf_free(&enc);
	return er;
}

/*
 * Decodes one application/x-www-form-urlencoded component (WHATWG URL
 * §5.1: '+' is a space, %XX a byte) and appends it to dec. Stricter than
 * Node's querystring: a '%' not followed by two hex digits is malformed.
 * Returns BW_OK, BW_EINVAL, BW_ETOOBIG or BW_ENOMEM.
 */
static enum bw_err
whsig_form_decode(const uint8_t *s, size_t n, struct buf *dec)
{
	uint8_t	    b;
	size_t	    i;
	enum bw_err er = BW_OK;

	for (i = 0; i < n && er == BW_OK; i++) {
		if (s[i] == '+')
			er = buf_addc(dec, ' ');
		else if (s[i] == '%') {
			if (n - i < 3 ||
			    sec_unhex((const char *)s + i + 1, 2, &b, 1) !=
				BW_OK)
				return BW_EINVAL;
			er = buf_addc(dec, (char)b);
			i += 2;
		} else
			er = buf_addc(dec, (char)s[i]);
	}
	return er;
}

/* Byte order of two byte strings, shorter first on a common prefix. */
static int
whsig_bytecmp(const char *a, size_t an, const char *b, size_t bn)
{
	int c;

	c = memcmp(a, b, an < bn ? an : bn);
	if (c != 0)
		return c;
	return an < bn ? -1 : an > bn;
}

/* qsort order of form fields: by name, then by value. */
static int
whsig_param_cmp(const void *va, const void *vb)
{
	const struct whsig_param *a = va, *b = vb;
	int			  c;

	c = whsig_bytecmp(a->name, a->nlen, b->name, b->nlen);
	if (c != 0)
		return c;
	return whsig_bytecmp(a->val, a->vlen, b->val, b->vlen);
}

/*
 * Twilio's signed parameter text from a form-encoded body, appended to
 * out: the decoded fields sorted by name, each as <name><value>; a
 * repeated name contributes its distinct values in sorted order, as
 * twilio-node's getExpectedTwilioSignature() does. Empty '&' segments are
 * skipped and a field without '=' has an empty value (Node querystring).
 * Names are compared as UTF-8 bytes, which equals JavaScript's UTF-16
 * order except between U+E000..U+FFFF and astral characters, which no
 * Twilio field name holds. Returns WV_VALID, WV_MALFORMED (bad escape,
 * over BW_MAX_FORM_PARAMS fields) or WV_ERROR.
 */
STATIC enum whsig_verdict
whsig_form_params(const uint8_t *body, size_t len, struct buf *out)
{
	struct whsig_param *pr = NULL;
	struct buf	    dec;
	size_t		   *off = NULL, i = 0, np = 0, k, slen, nl;
	const uint8_t	   *seg, *amp, *eq;
	enum whsig_verdict  v = WV_ERROR;
	enum bw_err	    er;

	/* Decoding never grows; each field adds two NULs. */
	buf_init(&dec, len + 2 * BW_MAX_FORM_PARAMS + 1);
	pr = calloc(BW_MAX_FORM_PARAMS, sizeof(*pr));
	off = calloc(2 * BW_MAX_FORM_PARAMS, sizeof(*off));
	if (pr == NULL || off == NULL)
		goto out;
	/* Pass 1: decode into dec, remembering offsets (dec may move). */
	while (i < len) {
		seg = body + i;
		amp = memchr(seg, '&', len - i);
		slen = amp != NULL ? (size_t)(amp - seg) : len - i;
		i += slen + 1;
		if (slen == 0)
			continue;
		if (np == BW_MAX_FORM_PARAMS) {
			v = WV_MALFORMED;
			goto out;
		}
		eq = memchr(seg, '=', slen);
		nl = eq != NULL ? (size_t)(eq - seg) : slen;
		off[2 * np] = dec.len;
		er = whsig_form_decode(seg, nl, &dec);
		if (er == BW_OK)
			er = buf_addc(&dec, '\0');
		off[2 * np + 1] = dec.len;
		if (er == BW_OK && eq != NULL)
			er = whsig_form_decode(eq + 1, slen - nl - 1, &dec);
		if (er == BW_OK)
			er = buf_addc(&dec, '\0');
		if (er != BW_OK) {
			v = er == BW_ENOMEM ? WV_ERROR : WV_MALFORMED;
			goto out;
		}
		np++;
	}
	/* Pass 2: pointers, now that dec no longer grows. */
	for (k = 0; k < np; k++) {
		pr[k].name = dec.p + off[2 * k];
		pr[k].nlen = off[2 * k + 1] - off[2 * k] - 1;
		pr[k].val = dec.p + off[2 * k + 1];
		pr[k].vlen = (k + 1 < np ? off[2 * k + 2] : dec.len) -
		    off[2 * k + 1] - 1;
	}
	if (np > 1)
		qsort(pr, np, sizeof(*pr), whsig_param_cmp);
	for (k = 0; k < np; k++) {
		if (k > 0 && whsig_param_cmp(&pr[k - 1], &pr[k]) == 0)
			continue;
		er = buf_add(out, pr[k].name, pr[k].nlen);
		if (er == BW_OK)
			er = buf_add(out, pr[k].val, pr[k].vlen);
		if (er != BW_OK) {
			v = er == BW_ENOMEM ? WV_ERROR : WV_MALFORMED;
			goto out;
		}
	}
	if (out->p == NULL && buf_add(out, "", 0) != BW_OK)
		goto out;
	v = WV_VALID;
out:
	free(pr);
	free(off);
	buf_free(&dec);
	return v;
}

/*
 * The other spelling of an http(s) URL that twilio-node's validateRequest
 * also accepts: without the port when it has one, with the scheme's
 * default port (443, 80) when it has none. Appended to alt. Returns
 * BW_OK, BW_ENOTFOUND when there is no such spelling (not http(s),
 * userinfo or an IPv6 literal, a non-numeric port), BW_ETOOBIG, BW_ENOMEM.
 */
STATIC enum bw_err
whsig_url_alt(const char *url, struct buf *alt)
{
	const char *host, *end, *colon, *q;
	const char *dport;
	enum bw_err er;

	if (strncmp(url, "https://", 8) == 0) {
		host = url + 8;
		dport = ":443";
	} else if (strncmp(url, "http://", 7) == 0) {
		host = url + 7;
		dport = ":80";
	} else
		return BW_ENOTFOUND;
	end = host + strcspn(host, "/?#");
	if (end == host || memchr(host, '@', (size_t)(end - host)) != NULL ||
	    memchr(host, '[', (size_t)(end - host)) != NULL)
		return BW_ENOTFOUND;
	colon = memchr(host, ':', (size_t)(end - host));
	if (colon != NULL) {
		if (colon + 1 == end || colon == host)
			return BW_ENOTFOUND;
		for (q = colon + 1; q < end; q++)
			if (*q < '0' || *q > '9')
				return BW_ENOTFOUND;
		er = buf_add(alt, url, (size_t)(colon - url));
		if (er == BW_OK)
			er = buf_addstr(alt, end);
		return er;
	}
	er = buf_add(alt, url, (size_t)(end - url));
	if (er == BW_OK)
		er = buf_addstr(alt, dport);
	if (er == BW_OK)
		er = buf_addstr(alt, end);
	return er;
}

/*
 * Checks one usable secret (key derived already) against r, ORing the
 * result into *match. msg, alt and params are scratch buffers; params
 * holds Twilio's sorted parameter text, built by the caller. Returns
 * BW_OK, BW_ECRYPTO, BW_ENOMEM or BW_ETOOBIG.
 */
static enum bw_err
whsig_check_secret(enum whsig_provider pv, const struct whsig_req *r,
    const struct whsig_secret *s, const struct buf *key, struct buf *msg,
    struct buf *alt, const struct buf *params, int *match)
{
	enum bw_err er;

	switch (pv) {
	case WS_STRIPE:
	case WS_STDWEBHOOKS:
		/* msg holds the signed content, independent of the secret. */
		return whsig_mac_match(pv, key, msg->p, msg->len, &r->sigs,
		    match);
	case WS_LINE:
		return whsig_mac_match(pv, key, r->body, r->len, &r->sigs,
		    match);
	case WS_SQUARE:
		buf_reset(msg);
		er = buf_addstr(msg, s->url);
		if (er == BW_OK)
			er = buf_add(msg, r->body, r->len);
		if (er == BW_OK)
			er = whsig_mac_match(pv, key, msg->p, msg->len,
			    &r->sigs, match);
		return er;
	case WS_TWILIO:
		buf_reset(msg);
		er = buf_addstr(msg, s->url);
		if (er == BW_OK)
			er = buf_add(msg, params->p, params->len);
		if (er == BW_OK)
			er = whsig_mac_match(pv, key, msg->p, msg->len,
			    &r->sigs, match);
		if (er != BW_OK)
			return er;
		buf_reset(alt);
		er = whsig_url_alt(s->url, alt);
		if (er == BW_ENOTFOUND)
			return BW_OK;
		buf_reset(msg);
		if (er == BW_OK)
			er = buf_add(msg, alt->p, alt->len);
		if (er == BW_OK)
			er = buf_add(msg, params->p, params->len);
		if (er == BW_OK)
			er = whsig_mac_match(pv, key, msg->p, msg->len,
			    &r->sigs, match);
		return er;
	default:
		return BW_EINVAL;
	}
}

/*
 * 1 when ts is more than tol seconds before or after now. Computed in
 * unsigned arithmetic so that no clock value can overflow.
 */
static int
whsig_stale(int64_t ts, int64_t now, int tol)
{
	uint64_t d;

	if (now >= ts)
		d = (uint64_t)now - (uint64_t)ts;
	else
		d = (uint64_t)ts - (uint64_t)now;
	return d > (uint64_t)tol;
}

/*
 * See whsig.h. Order: headers (WV_MISSING_HEADER, WV_MALFORMED), secrets
 * (WV_NO_SECRET), MAC (WV_INVALID_SIGNATURE), timestamp window (WV_STALE).
 * Returns the verdict; WV_ERROR for a bad argument or an internal failure.
 */
enum whsig_verdict
whsig_verify(enum whsig_provider pv, const struct whsig_headers *h,
    const void *body, size_t len, const struct whsig_secret *secrets,
    size_t nsecrets, int64_t now, int tolerance_s, int64_t *signed_ts)
{
	struct whsig_req   r;
	struct buf	   msg, alt, params, key;
	size_t		   i, nusable = 0;
	int		   match = 0;
	enum whsig_verdict v;
	enum bw_err	   er;

	buf_init(&msg, BW_MAX_BODY + 2 * BW_MAX_HEADER + 2);
	buf_init(&alt, BW_MAX_HEADER + 8);
	buf_init(&params, BW_MAX_BODY + 1);
	buf_init(&key, BW_MAX_WEBHOOK_SECRET);
	if ((unsigned int)pv >= WS__MAX || h == NULL ||
	    (body == NULL && len > 0) || (secrets == NULL && nsecrets > 0) ||
	    nsecrets > BW_MAX_WEBHOOK_SECRETS) {
		v = WV_ERROR;
		goto out;
	}
	if (tolerance_s < 0)
		tolerance_s = BW_WEBHOOK_TOLERANCE_S;
	memset(&r, 0, sizeof(r));
	r.body = body;
	r.len = len;
	v = whsig_parse(pv, h, &r);
	if (v != WV_VALID)
		goto out;
	if (len > BW_MAX_BODY) {
		v = WV_MALFORMED;
		goto out;
	}
	/* The signed content that does not depend on the secret. */
	er = BW_OK;
	if (pv == WS_STDWEBHOOKS) {
		er = buf_add(&msg, r.id, r.idlen);
		if (er == BW_OK)
			er = buf_addc(&msg, '.');
	}
	if (pv == WS_STDWEBHOOKS || pv == WS_STRIPE) {
		if (er == BW_OK)
			er = buf_add(&msg, r.ts, r.tslen);
		if (er == BW_OK)
			er = buf_addc(&msg, '.');
		if (er == BW_OK)
			er = buf_add(&msg, r.body, r.len);
	}
	if (er != BW_OK) {
		v = WV_ERROR;
		goto out;
	}
	if (pv == WS_TWILIO) {
		v = whsig_form_params(r.body, r.len, &params);
		if (v != WV_VALID)
			goto out;
	}
	for (i = 0; i < nsecrets; i++) {
		buf_reset(&key);
		er = whsig_key(pv, &secrets[i], &key);
		if (er == BW_OK) {
			nusable++;
			er = whsig_check_secret(pv, &r, &secrets[i], &key, &msg,
			    &alt, &params, &match);
		} else if (er == BW_EINVAL)
			er = BW_OK;
		if (key.p != NULL)
			sec_wipe(key.p, key.cap);
		if (er != BW_OK) {
			v = WV_ERROR;
			goto out;
		}
	}
	if (nusable == 0)
		v = WV_NO_SECRET;
	else if (!match)
		v = WV_INVALID_SIGNATURE;
	else if (r.ts != NULL && whsig_stale(r.tsval, now, tolerance_s))
		v = WV_STALE;
	else
		v = WV_VALID;
	if ((v == WV_VALID || v == WV_STALE) && r.ts != NULL &&
	    signed_ts != NULL)
		*signed_ts = r.tsval;
out:
	if (key.p != NULL)
		sec_wipe(key.p, key.cap);
	buf_free(&key);
	buf_free(&msg);
	buf_free(&alt);
	buf_free(&params);
	return v;
}
