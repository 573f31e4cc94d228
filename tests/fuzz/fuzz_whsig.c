/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness for lib/money/whsig.c: header parsing and signature
 * verification of every provider with fixed secrets (those of
 * shared/vectors/webhook-signatures.json, so seeds reach the MAC paths).
 *
 * Input: byte 0 provider, byte 1 secret choice, byte 2 flags (bit 0/1/2:
 * signature/timestamp/id header absent), bytes 3..10 "now" (int64 LE),
 * bytes 11..14 tolerance (int32 LE), then "<signature>\n<timestamp>\n<id>\n"
 * and the raw body (the rest).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/limits.h"
#include "money/whsig.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define NSEC   5
#define PREFIX 15

static const struct whsig_secret secrets[WS__MAX][NSEC] = {
	[WS_STRIPE] = {
		{ "whsec_test_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6", NULL },
		{ "whsec_test_OLD_Z9y8X7w6V5u4T3s2R1q0P9o8N7m6", NULL },
		{ "", NULL },
		{ "whsec_x", NULL },
		{ "whsec_test_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6", NULL },
	},
	[WS_SQUARE] = {
		{ "Ibxx_5AKakO-3qeNVR61Dw",
		    "https://webhook.site/679a4f3a-dcfa-49ee-bac5-9d0edad886b9" },
		{ "sq-test-signature-key-7Qm2Lx9Vb4",
		    "https://api.example.com/webhooks/square" },
		{ "sq-test-signature-key-7Qm2Lx9Vb4",
		    "http://api.example.com/webhooks/square" },
		{ "sq-test-signature-key-7Qm2Lx9Vb4",
		    "https://api.example.com/webhooks/square/" },
		{ "sq-test-signature-key-7Qm2Lx9Vb4",
		    "https://api.example.com/webhooks/square?tenant=acme" },
	},
	[WS_LINE] = {
		{ "test_secret", NULL },
		{ "8c7e5a1f2b3d4e6f7a8b9c0d1e2f3a4b", NULL },
		{ "", NULL },
		{ "x", NULL },
		{ "test_secret", NULL },
	},
	[WS_STDWEBHOOKS] = {
		{ "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", NULL },
		{ "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", NULL },
		{ "whsec_YpPHYTsUXAJw8P3tRPINqxyO/+VqKCpEOdRZhznpxHA=", NULL },
		{ "whsec_gEGu0IMQYK/2ZAJ9BW2OdKq4Jmg2eFtxBkqzPDUtjDA=", NULL },
		{ "whsec_not*base64", NULL },
	},
	[WS_TWILIO] = {
		{ "12345", "https://mycompany.com/myapp.php?foo=1&bar=2" },
		{ "f00dfeedf00dfeedf00dfeedf00dfeed",
		    "https://api.example.com/webhooks/sms/status?tenant=acme" },
		{ "f00dfeedf00dfeedf00dfeedf00dfeed",
		    "https://api.example.com/webhooks/sms/status" },
		{ "12345", NULL },
		{ "12345", "https://[::1]:x/?a=%zz&b" },
	},
};

/* Copies the next '\n'-terminated field of p[*off..n) into a new string. */
static char *
take_line(const uint8_t *p, size_t n, size_t *off)
{
	const uint8_t *nl;
	size_t	       len;
	char	      *s;

	nl = *off < n ? memchr(p + *off, '\n', n - *off) : NULL;
	len = nl != NULL ? (size_t)(nl - (p + *off)) : n - *off;
	if ((s = malloc(len + 1)) == NULL)
		abort();
	memcpy(s, p + *off, len);
	s[len] = '\0';
	*off += len + (nl != NULL);
	return s;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum whsig_provider  prov;
	enum whsig_verdict   v, v2;
	struct whsig_headers h;
	struct whsig_secret  sec[2], rev[2];
	struct buf	     b;
	const uint8_t	    *body;
	char		    *sig, *ts, *id;
	size_t		     off = PREFIX, blen, ns;
	int64_t		     now, sts = -1, sts2 = -1;
	int32_t		     tol;
	uint8_t		     sel, flags;

	if (size < PREFIX)
		return 0;
	prov = (enum whsig_provider)(data[0] % WS__MAX);
	sel = data[1];
	flags = data[2];
	memcpy(&now, data + 3, sizeof(now));
	memcpy(&tol, data + 11, sizeof(tol));
	sig = take_line(data, size, &off);
	ts = take_line(data, size, &off);
	id = take_line(data, size, &off);
	body = data + (off < size ? off : size);
	blen = off < size ? size - off : 0;

	h.signature = (flags & 1) ? NULL : sig;
	h.timestamp = (flags & 2) ? NULL : ts;
	h.id = (flags & 4) ? NULL : id;
	sec[0] = secrets[prov][(sel & 7) % NSEC];
	sec[1] = secrets[prov][((sel >> 3) & 7) % NSEC];
	ns = (sel & 0x40) ? 2 : 1;
	rev[0] = sec[ns - 1];
	rev[1] = sec[0];

	v = whsig_verify(prov, &h, body, blen, sec, ns, now, tol, &sts);
	if ((int)v < 0 || v >= WV__MAX)
		abort();
	if (v != WV_VALID && v != WV_STALE && sts != -1)
		abort(); /* out-parameter touched on failure */
	/* The order of active secrets never changes the verdict. */
	v2 = whsig_verify(prov, &h, body, blen, rev, ns, now, tol, &sts2);
	if (v2 != v || sts2 != sts)
		abort();
	(void)whsig_secret_check(prov, &sec[0]);

	/* Twilio's form decoder and URL variant, on the raw parts. */
	buf_init(&b, BW_MAX_BODY);
	(void)whsig_form_params(body, blen, &b);
	buf_free(&b);
	buf_init(&b, BW_MAX_BODY);
	(void)whsig_url_alt(sig, &b);
	buf_free(&b);
	(void)whsig_provider_parse(id, &prov);

	free(sig);
	free(ts);
	free(id);
	return 0;
}
