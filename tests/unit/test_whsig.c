/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of lib/whsig: every case of the shared webhook-signature
 * vectors (made with the providers' official libraries), rotation and
 * tamper properties derived from them, and hostile headers and bodies.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "core/buf.h"
#include "core/limits.h"
#include "core/sec.h"
#include "money/whsig.h"

#define VECTORS	   VECTORS_DIR "/webhook-signatures.json"
#define T0	   1750000000
#define STRIPE_KEY "whsec_test_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6"
#define SW_KEY	   "whsec_YpPHYTsUXAJw8P3tRPINqxyO/+VqKCpEOdRZhznpxHA="
/* A usable but wrong secret for every provider (SW: 32 bytes of 'x'). */
#define BOGUS_KEY  "whsec_eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHg="

/*
 * Cases tagged library-lenient or library-divergent, and what Bulwark
 * decides for each. The vector test fails when a tagged case has no
 * entry here, so a new such vector forces a decision.
 */
struct decision {
	const char	  *id;
	enum whsig_verdict want;
};

static const struct decision decisions[] = {
	/*
	 * Timestamp 600 s in the future. stripe-node only rejects OLD
	 * timestamps and accepts (expected.valid = true); the issue asks for
	 * a ±300 s window wherever a timestamp is signed, as Standard
	 * Webhooks does, and the note allows the stricter choice: a future
	 * timestamp beyond the tolerance is STALE. Deliberately differs
	 * from expected.valid.
	 */
	{ "stripe-16-future-timestamp-600", WV_STALE },
	/*
	 * v1 in UPPERCASE hex. stripe-node/python compare hex strings and
	 * reject, stripe-go decodes and accepts; the note recommends
	 * invalid (Stripe always sends lowercase). We compare the lowercase
	 * hex string in constant time: invalid, same as expected.valid.
	 */
	{ "stripe-19-uppercase-hex", WV_INVALID_SIGNATURE },
	/*
	 * Correct MAC as unpadded base64. @line/bot-sdk decodes leniently
	 * and accepts; the description says a strict verifier comparing
	 * canonical base64 would reject and both are secure. We take the
	 * stricter behaviour (LINE always sends padded base64) and compare
	 * the canonical string: invalid. Deliberately differs from
	 * expected.valid.
	 */
	{ "line-06-unpadded-base64-lenient", WV_INVALID_SIGNATURE },
	/*
	 * Signed over the URL with an explicit :443, receiver configured
	 * without the port. twilio-node accepts both spellings, and no note
	 * invites the stricter choice: Twilio's servers are known to sign
	 * some callbacks with the port and some without (twilio-python
	 * #392/#402, twilio-node #411), so rejecting would drop genuine
	 * delivery reports while adding no security (same host, same token).
	 * We follow the library: valid, same as expected.valid.
	 */
	{ "twilio-05-port-variant-lenient", WV_VALID },
};

static const struct decision *
decision_find(const char *id)
{
	size_t i;

	for (i = 0; i < sizeof(decisions) / sizeof(decisions[0]); i++)
		if (strcmp(decisions[i].id, id) == 0)
			return &decisions[i];
	return NULL;
}

/* Reason class of the vectors to our verdict; -1 when unknown. */
static int
verdict_class(const char *c)
{
	static const struct {
		const char	  *name;
		enum whsig_verdict v;
	} map[] = {
		{ "valid", WV_VALID },
		{ "rotated_secret_valid", WV_VALID },
		{ "invalid_signature", WV_INVALID_SIGNATURE },
		{ "tampered_body", WV_INVALID_SIGNATURE },
		{ "url_mismatch", WV_INVALID_SIGNATURE },
		{ "expired_timestamp", WV_STALE },
		{ "future_timestamp", WV_STALE },
		{ "missing_header", WV_MISSING_HEADER },
		{ "malformed_header", WV_MALFORMED },
	};
	size_t i;

	for (i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(map[i].name, c) == 0)
			return (int)map[i].v;
	return -1;
}

static int
provider_of(const char *name)
{
	if (strcmp(name, "stripe") == 0)
		return WS_STRIPE;
	if (strcmp(name, "square") == 0)
		return WS_SQUARE;
	if (strcmp(name, "line") == 0)
		return WS_LINE;
	if (strcmp(name, "standard_webhooks") == 0)
		return WS_STDWEBHOOKS;
	if (strcmp(name, "twilio") == 0)
		return WS_TWILIO;
	return -1;
}

static const char *
jstr(struct json_object *o, const char *k)
{
	struct json_object *v;

	if (o == NULL || !json_object_object_get_ex(o, k, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static struct json_object *
jget(struct json_object *o, const char *k)
{
	struct json_object *v;

	if (o == NULL || !json_object_object_get_ex(o, k, &v))
		return NULL;
	return v;
}

static int
has_tag(struct json_object *c, const char *tag)
{
	struct json_object *t = jget(c, "tags");
	size_t		    i;

	if (t == NULL)
		return 0;
	for (i = 0; i < json_object_array_length(t); i++)
		if (strcmp(json_object_get_string(
			       json_object_array_get_idx(t, i)),
			tag) == 0)
			return 1;
	return 0;
}

/* One vector case turned into verify() arguments. */
struct vcase {
	const char	    *id;
	enum whsig_provider  pv;
	struct whsig_headers h;
	struct buf	     body;
	struct whsig_secret  sec;
	int64_t		     now;
	int		     tol;
	const char	    *hdr_ts; /* timestamp header */
};

static void
vcase_load(struct vcase *vc, enum whsig_provider pv, struct json_object *c)
{
	const struct whsig_names *nm = whsig_header_names(pv);
	struct json_object	 *req, *ver, *o;
	const char		 *b64, *s;
	uint8_t			  dg[SEC_SHA256_LEN];
	char			  hex[2 * SEC_SHA256_LEN + 1];

	memset(vc, 0, sizeof(*vc));
	vc->pv = pv;
	vc->id = jstr(c, "id");
	assert_non_null(vc->id);
	req = jget(c, "request");
	ver = jget(c, "verifier");
	assert_non_null(req);
	assert_non_null(ver);
	json_object_object_foreach(jget(req, "headers"), k, v)
	{
		s = json_object_get_string(v);
		if (strcasecmp(k, nm->signature.http) == 0)
			vc->h.signature = s;
		else if (nm->timestamp.http != NULL &&
		    strcasecmp(k, nm->timestamp.http) == 0)
			vc->h.timestamp = s;
		else if (nm->id.http != NULL && strcasecmp(k, nm->id.http) == 0)
			vc->h.id = s;
	}
	vc->hdr_ts = vc->h.timestamp;
	buf_init(&vc->body, BW_MAX_BODY);
	b64 = jstr(req, "body_base64");
	assert_non_null(b64);
	assert_int_equal(sec_unb64(b64, strlen(b64), &vc->body), BW_OK);
	/* The decoded bytes are the ones the vector describes. */
	assert_int_equal(vc->body.len,
	    json_object_get_int(jget(req, "body_length")));
	if ((s = jstr(req, "body_sha256")) != NULL) {
		assert_int_equal(sec_sha256(vc->body.p, vc->body.len, dg),
		    BW_OK);
		sec_hex(dg, sizeof(dg), hex);
		assert_string_equal(hex, s);
	}
	vc->sec.secret = jstr(ver, "secret");
	if (vc->sec.secret == NULL)
		vc->sec.secret = jstr(ver, "signature_key");
	if (vc->sec.secret == NULL)
		vc->sec.secret = jstr(ver, "channel_secret");
	if (vc->sec.secret == NULL)
		vc->sec.secret = jstr(ver, "auth_token");
	assert_non_null(vc->sec.secret);
	vc->sec.url = jstr(ver, "notification_url");
	if (vc->sec.url == NULL)
		vc->sec.url = jstr(ver, "url");
	vc->now =
	    (o = jget(ver, "now")) != NULL ? json_object_get_int64(o) : T0;
	vc->tol = (o = jget(ver, "tolerance_seconds")) != NULL
	    ? json_object_get_int(o)
	    : -1;
}

static enum whsig_verdict
vcase_verify(const struct vcase *vc, const struct whsig_secret *s, size_t n,
    int64_t *ts)
{
	return whsig_verify(vc->pv, &vc->h, vc->body.p, vc->body.len, s, n,
	    vc->now, vc->tol, ts);
}

/*
 * Properties of a case that verifies: the secret may sit at either
 * position of a rotation pair, a wrong secret alone fails, any flipped
 * body byte fails, and the signed timestamp comes back.
 */
static int
vcase_properties(struct vcase *vc)
{
	struct whsig_secret s[2], bogus;
	int64_t		    ts = -1;
	size_t		    i, step;
	int		    bad = 0;

	bogus.secret = BOGUS_KEY;
	bogus.url = vc->sec.url;
	s[0] = bogus;
	s[1] = vc->sec;
	bad |= vcase_verify(vc, s, 2, &ts) != WV_VALID;
	s[0] = vc->sec;
	s[1] = bogus;
	bad |= vcase_verify(vc, s, 2, NULL) != WV_VALID;
	bad |= vcase_verify(vc, &bogus, 1, NULL) != WV_INVALID_SIGNATURE;
	if (vc->pv == WS_STRIPE || vc->pv == WS_STDWEBHOOKS)
		bad |= ts <= 0 ||
		    (vc->hdr_ts != NULL && ts != strtoll(vc->hdr_ts, NULL, 10));
	else
		bad |= ts != -1;
	step = vc->body.len / 7 + 1;
	for (i = 0; i < vc->body.len; i += step) {
		vc->body.p[i] ^= 0x01;
		/* Twilio: a flip may break a %XX escape (malformed). */
		switch (vcase_verify(vc, &vc->sec, 1, NULL)) {
		case WV_INVALID_SIGNATURE:
			break;
		case WV_MALFORMED:
			bad |= vc->pv != WS_TWILIO;
			break;
		default:
			bad = 1;
		}
		vc->body.p[i] ^= 0x01;
	}
	if (bad)
		print_message("properties failed: %s\n", vc->id);
	return bad;
}

static void
test_vectors(void **state)
{
	struct json_object    *root, *provs, *cases, *c, *exp;
	const struct decision *d;
	struct vcase	       vc;
	enum whsig_verdict     got, want;
	size_t		       i, ncases = 0, nfail = 0, ndec = 0;
	size_t		       nprov = 0;
	int		       pv, cls, valid, tagged;

	(void)state;
	root = json_object_from_file(VECTORS);
	assert_non_null(root);
	provs = jget(root, "providers");
	assert_non_null(provs);
	json_object_object_foreach(provs, pname, pobj)
	{
		pv = provider_of(pname);
		if (pv < 0)
			fail_msg("provider %s in the vectors is not handled",
			    pname);
		nprov++;
		cases = jget(pobj, "cases");
		assert_non_null(cases);
		for (i = 0; i < json_object_array_length(cases); i++) {
			c = json_object_array_get_idx(cases, i);
			vcase_load(&vc, (enum whsig_provider)pv, c);
			exp = jget(c, "expected");
			valid = json_object_get_boolean(jget(exp, "valid"));
			cls = verdict_class(jstr(exp, "verdict"));
			if (cls < 0)
				fail_msg("%s: unknown verdict class", vc.id);
			/* The class agrees with expected.valid. */
			assert_int_equal(cls == WV_VALID, valid);
			tagged = has_tag(c, "library-lenient") ||
			    has_tag(c, "library-divergent");
			d = decision_find(vc.id);
			if (tagged && d == NULL)
				fail_msg("%s: tagged case without a decision",
				    vc.id);
			if (d != NULL) {
				assert_true(tagged);
				ndec++;
			}
			want = d != NULL ? d->want : (enum whsig_verdict)cls;
			got = vcase_verify(&vc, &vc.sec, 1, NULL);
			if (got != want) {
				print_message("FAIL %s: got %s, want %s\n",
				    vc.id, whsig_verdict_str(got),
				    whsig_verdict_str(want));
				nfail++;
			} else if (got == WV_VALID)
				nfail += (size_t)vcase_properties(&vc);
			ncases++;
			buf_free(&vc.body);
		}
	}
	print_message("webhook vectors: %zu cases of %zu providers, "
		      "%zu decided deliberately, %zu failed\n",
	    ncases, nprov, ndec, nfail);
	json_object_put(root);
	assert_int_equal(nfail, 0);
	assert_int_equal(ndec, sizeof(decisions) / sizeof(decisions[0]));
	assert_true(ncases >= 60);
}

/* Stripe header for body under key at t, with extra text appended. */
static void
stripe_header(struct buf *h, const char *key, const char *t, const void *body,
    size_t len)
{
	struct buf m;
	uint8_t	   mac[SEC_SHA256_LEN];
	char	   hex[2 * SEC_SHA256_LEN + 1];

	buf_init(&m, BW_MAX_BODY + 64);
	assert_int_equal(buf_printf(&m, "%s.", t), BW_OK);
	assert_int_equal(buf_add(&m, body, len), BW_OK);
	assert_int_equal(sec_hmac_sha256(key, strlen(key), m.p, m.len, mac),
	    BW_OK);
	sec_hex(mac, sizeof(mac), hex);
	assert_int_equal(buf_printf(h, "t=%s,v1=%s", t, hex), BW_OK);
	buf_free(&m);
}

/* Padded base64 of HMAC-SHA256(key, d) appended to out. */
static void
b64mac(struct buf *out, const void *key, size_t klen, const void *d, size_t n)
{
	uint8_t mac[SEC_SHA256_LEN];

	assert_int_equal(sec_hmac_sha256(key, klen, d, n, mac), BW_OK);
	assert_int_equal(sec_b64(mac, sizeof(mac), out), BW_OK);
}

static enum whsig_verdict
verify1(enum whsig_provider pv, const char *sig, const char *ts, const char *id,
    const void *body, size_t len, const char *secret, const char *url,
    int64_t now)
{
	struct whsig_headers h = { sig, ts, id };
	struct whsig_secret  s = { secret, url };

	return whsig_verify(pv, &h, body, len, &s, 1, now, 300, NULL);
}

static void
test_stripe_header_parsing(void **state)
{
	static const char *const malformed[] = {
		"t=",
		"t=abc,v1=00",
		"t=-1750000000,v1=00",
		"t=+1750000000,v1=00",
		"t=01750000000,v1=00",
		"t=1750000000,,v1=00",
		"t=1750000000,v1=00,",
		",t=1750000000,v1=00",
		"t=1750000000,t=1750000000,v1=00",
		"v1=00",
		"t=1750000000",
		"t=1750000000,v0=00",
		"=x,t=1,v1=0",
		"t",
		"t=1750000000,v1",
		"t=1234567890123,v1=00",
		"t=1750000000 ,v1=00",
		"t=17500000\x01"
		"00,v1=00",
	};
	struct buf  h;
	const char *body = "{}";
	size_t	    i;

	(void)state;
	for (i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
		if (verify1(WS_STRIPE, malformed[i], NULL, NULL, body, 2,
			STRIPE_KEY, NULL, T0) != WV_MALFORMED)
			fail_msg("not malformed: \"%s\"", malformed[i]);
	}
	/* Parsed but wrong: an empty or short v1 is simply no match. */
	assert_int_equal(verify1(WS_STRIPE, "t=1750000000,v1=", NULL, NULL,
			     body, 2, STRIPE_KEY, NULL, T0),
	    WV_INVALID_SIGNATURE);
	buf_init(&h, BW_MAX_HEADER);
	stripe_header(&h, STRIPE_KEY, "1750000000", body, 2);
	assert_int_equal(verify1(WS_STRIPE, h.p, NULL, NULL, body, 2,
			     STRIPE_KEY, NULL, T0),
	    WV_VALID);
	/* Unknown schemes and keys are ignored, wherever they sit. */
	assert_int_equal(buf_addstr(&h, ",v0=zz,x=1,v2=abc"), BW_OK);
	assert_int_equal(verify1(WS_STRIPE, h.p, NULL, NULL, body, 2,
			     STRIPE_KEY, NULL, T0),
	    WV_VALID);
	/* The timestamp is signed: a valid MAC for another t does not do. */
	assert_int_equal(verify1(WS_STRIPE, h.p, NULL, NULL, "{} ", 3,
			     STRIPE_KEY, NULL, T0),
	    WV_INVALID_SIGNATURE);
	buf_free(&h);
}

static void
test_signature_count_cap(void **state)
{
	struct buf  h, good, sw;
	const char *body = "{\"id\":1}";
	size_t	    i, n = strlen(body);

	(void)state;
	buf_init(&h, 128 * 1024);
	buf_init(&good, BW_MAX_HEADER);
	stripe_header(&good, STRIPE_KEY, "1750000000", body, n);
	/* 1000 short v1 entries fit BW_MAX_HEADER but exceed the cap. */
	assert_int_equal(buf_addstr(&h, "t=1750000000"), BW_OK);
	for (i = 0; i < 1000; i++)
		assert_int_equal(buf_addstr(&h, ",v1=00"), BW_OK);
	assert_true(h.len <= BW_MAX_HEADER);
	assert_int_equal(verify1(WS_STRIPE, h.p, NULL, NULL, body, n,
			     STRIPE_KEY, NULL, T0),
	    WV_MALFORMED);
	/* 1000 full-length entries: over BW_MAX_HEADER. */
	buf_reset(&h);
	assert_int_equal(buf_addstr(&h, good.p), BW_OK);
	for (i = 0; i < 1000; i++)
		assert_int_equal(buf_addstr(&h, strchr(good.p, ',')), BW_OK);
	assert_true(h.len > BW_MAX_HEADER);
	assert_int_equal(verify1(WS_STRIPE, h.p, NULL, NULL, body, n,
			     STRIPE_KEY, NULL, T0),
	    WV_MALFORMED);
	/* Exactly the cap, the right one last: still found. */
	buf_reset(&h);
	assert_int_equal(buf_addstr(&h, "t=1750000000"), BW_OK);
	for (i = 0; i + 1 < BW_MAX_WEBHOOK_SIGS; i++)
		assert_int_equal(buf_addstr(&h, ",v1=00"), BW_OK);
	assert_int_equal(buf_addstr(&h, strchr(good.p, ',')), BW_OK);
	assert_int_equal(verify1(WS_STRIPE, h.p, NULL, NULL, body, n,
			     STRIPE_KEY, NULL, T0),
	    WV_VALID);
	assert_int_equal(buf_addstr(&h, ",v1=00"), BW_OK);
	assert_int_equal(verify1(WS_STRIPE, h.p, NULL, NULL, body, n,
			     STRIPE_KEY, NULL, T0),
	    WV_MALFORMED);
	/* Standard Webhooks: 1000 v1 entries. */
	buf_init(&sw, 64 * 1024);
	for (i = 0; i < 1000; i++)
		assert_int_equal(buf_addstr(&sw, i ? " v1,AA==" : "v1,AA=="),
		    BW_OK);
	assert_int_equal(verify1(WS_STDWEBHOOKS, sw.p, "1750000000", "m", body,
			     n, SW_KEY, NULL, T0),
	    WV_MALFORMED);
	buf_free(&sw);
	buf_free(&h);
	buf_free(&good);
}

static void
test_huge_headers(void **state)
{
	struct whsig_headers h;
	struct whsig_secret  s = { SW_KEY, "https://example.com/w" };
	char		    *big;
	int		     pv;

	(void)state;
	big = malloc(4 * BW_MAX_HEADER + 1);
	assert_non_null(big);
	memset(big, 'a', 4 * BW_MAX_HEADER);
	big[4 * BW_MAX_HEADER] = '\0';
	for (pv = 0; pv < WS__MAX; pv++) {
		h.signature = big;
		h.timestamp = "1750000000";
		h.id = "msg_1";
		assert_int_equal(whsig_verify((enum whsig_provider)pv, &h, "x",
				     1, &s, 1, T0, 300, NULL),
		    WV_MALFORMED);
		if (pv == WS_STDWEBHOOKS) {
			h.signature = "v1,AA==";
			h.id = big;
			assert_int_equal(whsig_verify(WS_STDWEBHOOKS, &h, "x",
					     1, &s, 1, T0, 300, NULL),
			    WV_MALFORMED);
		}
	}
	/* Exactly BW_MAX_HEADER is read, and just does not match. */
	big[BW_MAX_HEADER] = '\0';
	h.signature = big;
	assert_int_equal(whsig_verify(WS_LINE, &h, "x", 1, &s, 1, T0, 300,
			     NULL),
	    WV_INVALID_SIGNATURE);
	free(big);
}

static void
test_garbage_signatures(void **state)
{
	static const char *const junk[] = {
		"!!!!",
		"====",
		"\x01\x02\xff",
		"AAAA",
		"v1,",
		"v1,%%%%",
		"v1,AA== v1,!!",
		"     x",
		"t=1,v1=zz",
		"\xc3\x28",
	};
	struct whsig_headers h;
	struct whsig_secret  s = { SW_KEY, "https://example.com/w" };
	enum whsig_verdict   v;
	size_t		     i;
	int		     pv;

	(void)state;
	for (pv = 0; pv < WS__MAX; pv++)
		for (i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
			h.signature = junk[i];
			h.timestamp = "1750000000";
			h.id = "msg_1";
			v = whsig_verify((enum whsig_provider)pv, &h, "a=1", 3,
			    &s, 1, T0, 300, NULL);
			if (v != WV_INVALID_SIGNATURE && v != WV_MALFORMED)
				fail_msg("%s \"%s\": %s",
				    whsig_provider_name(pv), junk[i],
				    whsig_verdict_str(v));
		}
}

static void
test_empty_and_binary_body(void **state)
{
	static const char bin[] = { 'a', '\0', 'b', '\xff' };
	static const char bin2[] = { 'a', '\0', 'c', '\xff' };
	struct buf	  sig, h;
	const char	 *key = "line-secret";
	const char	 *url = "https://api.example.com/sq";

	(void)state;
	buf_init(&sig, 256);
	buf_init(&h, BW_MAX_HEADER);
	/* LINE: empty body (NULL and "") and a body with a NUL byte. */
	b64mac(&sig, key, strlen(key), "", 0);
	assert_int_equal(verify1(WS_LINE, sig.p, NULL, NULL, NULL, 0, key, NULL,
			     T0),
	    WV_VALID);
	assert_int_equal(verify1(WS_LINE, sig.p, NULL, NULL, "", 0, key, NULL,
			     T0),
	    WV_VALID);
	assert_int_equal(verify1(WS_LINE, sig.p, NULL, NULL, "x", 1, key, NULL,
			     T0),
	    WV_INVALID_SIGNATURE);
	buf_reset(&sig);
	b64mac(&sig, key, strlen(key), bin, sizeof(bin));
	assert_int_equal(verify1(WS_LINE, sig.p, NULL, NULL, bin, sizeof(bin),
			     key, NULL, T0),
	    WV_VALID);
	assert_int_equal(verify1(WS_LINE, sig.p, NULL, NULL, bin2, sizeof(bin2),
			     key, NULL, T0),
	    WV_INVALID_SIGNATURE);
	/* Square: URL + empty body. */
	buf_reset(&sig);
	b64mac(&sig, key, strlen(key), url, strlen(url));
	assert_int_equal(verify1(WS_SQUARE, sig.p, NULL, NULL, NULL, 0, key,
			     url, T0),
	    WV_VALID);
	/* Stripe: "t." over an empty body. */
	stripe_header(&h, STRIPE_KEY, "1750000000", "", 0);
	assert_int_equal(verify1(WS_STRIPE, h.p, NULL, NULL, NULL, 0,
			     STRIPE_KEY, NULL, T0),
	    WV_VALID);
	/* Body pointer NULL with a length is a programmer error. */
	assert_int_equal(verify1(WS_STRIPE, h.p, NULL, NULL, NULL, 5,
			     STRIPE_KEY, NULL, T0),
	    WV_ERROR);
	/* Over BW_MAX_BODY: refused before any MAC. */
	assert_int_equal(verify1(WS_LINE, sig.p, NULL, NULL, "",
			     (size_t)BW_MAX_BODY + 1, key, NULL, T0),
	    WV_MALFORMED);
	buf_free(&sig);
	buf_free(&h);
}

static void
test_stdwebhooks_headers(void **state)
{
	struct buf  m, sig, key;
	const char *body = "{\"type\":\"dlr\"}";
	const char *b64key = SW_KEY + 6;

	(void)state;
	buf_init(&m, 1024);
	buf_init(&sig, 1024);
	buf_init(&key, 64);
	assert_int_equal(sec_unb64(b64key, strlen(b64key), &key), BW_OK);
	assert_int_equal(buf_printf(&m, "msg_1.1750000000.%s", body), BW_OK);
	assert_int_equal(buf_addstr(&sig, "v1a,xyz v1,"), BW_OK);
	b64mac(&sig, key.p, key.len, m.p, m.len);
	assert_int_equal(verify1(WS_STDWEBHOOKS, sig.p, "1750000000", "msg_1",
			     body, strlen(body), SW_KEY, NULL, T0),
	    WV_VALID);
	/* Optional prefix: the bare base64 secret works too. */
	assert_int_equal(verify1(WS_STDWEBHOOKS, sig.p, "1750000000", "msg_1",
			     body, strlen(body), b64key, NULL, T0),
	    WV_VALID);
	/* Window both ways, boundary included. */
	assert_int_equal(verify1(WS_STDWEBHOOKS, sig.p, "1750000000", "msg_1",
			     body, strlen(body), SW_KEY, NULL, T0 + 300),
	    WV_VALID);
	assert_int_equal(verify1(WS_STDWEBHOOKS, sig.p, "1750000000", "msg_1",
			     body, strlen(body), SW_KEY, NULL, T0 - 300),
	    WV_VALID);
	assert_int_equal(verify1(WS_STDWEBHOOKS, sig.p, "1750000000", "msg_1",
			     body, strlen(body), SW_KEY, NULL, T0 - 301),
	    WV_STALE);
	assert_int_equal(verify1(WS_STDWEBHOOKS, sig.p, "1750000000", "msg_1",
			     body, strlen(body), SW_KEY, NULL, INT64_MAX),
	    WV_STALE);
	assert_int_equal(verify1(WS_STDWEBHOOKS, sig.p, "1750000000", "msg_1",
			     body, strlen(body), SW_KEY, NULL, INT64_MIN),
	    WV_STALE);
	/* Stale is only said of authentic requests. */
	assert_int_equal(verify1(WS_STDWEBHOOKS, "v1,AA==", "1750000000",
			     "msg_1", body, strlen(body), SW_KEY, NULL,
			     T0 + 9999),
	    WV_INVALID_SIGNATURE);
	/* Missing and malformed pieces. */
	assert_int_equal(verify1(WS_STDWEBHOOKS, sig.p, "", "msg_1", body,
			     strlen(body), SW_KEY, NULL, T0),
	    WV_MISSING_HEADER);
	assert_int_equal(verify1(WS_STDWEBHOOKS, sig.p, "1750000000", "", body,
			     strlen(body), SW_KEY, NULL, T0),
	    WV_MISSING_HEADER);
	assert_int_equal(verify1(WS_STDWEBHOOKS, "", "1750000000", "msg_1",
			     body, strlen(body), SW_KEY, NULL, T0),
	    WV_MISSING_HEADER);
	assert_int_equal(verify1(WS_STDWEBHOOKS, sig.p, "1750000000 ", "msg_1",
			     body, strlen(body), SW_KEY, NULL, T0),
	    WV_MALFORMED);
	assert_int_equal(verify1(WS_STDWEBHOOKS, sig.p, "0x10", "msg_1", body,
			     strlen(body), SW_KEY, NULL, T0),
	    WV_MALFORMED);
	assert_int_equal(verify1(WS_STDWEBHOOKS, "v1", "1750000000", "msg_1",
			     body, strlen(body), SW_KEY, NULL, T0),
	    WV_MALFORMED);
	assert_int_equal(verify1(WS_STDWEBHOOKS, " v1,AA==", "1750000000",
			     "msg_1", body, strlen(body), SW_KEY, NULL, T0),
	    WV_MALFORMED);
	assert_int_equal(verify1(WS_STDWEBHOOKS, ",AA==", "1750000000", "msg_1",
			     body, strlen(body), SW_KEY, NULL, T0),
	    WV_MALFORMED);
	/* The Stripe-style key (whsec_ string verbatim) is not the key. */
	buf_reset(&sig);
	assert_int_equal(buf_addstr(&sig, "v1,"), BW_OK);
	b64mac(&sig, SW_KEY, strlen(SW_KEY), m.p, m.len);
	assert_int_equal(verify1(WS_STDWEBHOOKS, sig.p, "1750000000", "msg_1",
			     body, strlen(body), SW_KEY, NULL, T0),
	    WV_INVALID_SIGNATURE);
	buf_free(&m);
	buf_free(&sig);
	sec_wipe(key.p, key.len);
	buf_free(&key);
}

static void
test_clock_and_tolerance(void **state)
{
	struct buf	     h;
	const char	    *body = "{}";
	struct whsig_headers hd;
	struct whsig_secret  s = { STRIPE_KEY, NULL };
	int64_t		     ts = 0;

	(void)state;
	buf_init(&h, BW_MAX_HEADER);
	stripe_header(&h, STRIPE_KEY, "1750000000", body, 2);
	hd.signature = h.p;
	hd.timestamp = NULL;
	hd.id = NULL;
	assert_int_equal(whsig_verify(WS_STRIPE, &hd, body, 2, &s, 1, INT64_MAX,
			     300, &ts),
	    WV_STALE);
	assert_int_equal(ts, T0);
	assert_int_equal(whsig_verify(WS_STRIPE, &hd, body, 2, &s, 1, INT64_MIN,
			     300, NULL),
	    WV_STALE);
	/* Negative tolerance means the default of 300 s. */
	assert_int_equal(whsig_verify(WS_STRIPE, &hd, body, 2, &s, 1,
			     T0 + BW_WEBHOOK_TOLERANCE_S, -1, NULL),
	    WV_VALID);
	assert_int_equal(whsig_verify(WS_STRIPE, &hd, body, 2, &s, 1,
			     T0 + BW_WEBHOOK_TOLERANCE_S + 1, -1, NULL),
	    WV_STALE);
	/* A zero tolerance accepts only the very second. */
	assert_int_equal(whsig_verify(WS_STRIPE, &hd, body, 2, &s, 1, T0, 0,
			     NULL),
	    WV_VALID);
	assert_int_equal(whsig_verify(WS_STRIPE, &hd, body, 2, &s, 1, T0 + 1, 0,
			     NULL),
	    WV_STALE);
	/* Future beyond the window is stale for Stripe too (decision). */
	assert_int_equal(whsig_verify(WS_STRIPE, &hd, body, 2, &s, 1, T0 - 301,
			     300, NULL),
	    WV_STALE);
	/* Square and LINE sign no timestamp: any clock will do. */
	buf_free(&h);
}

static void
test_secrets(void **state)
{
	struct whsig_headers h = { "t=1750000000,v1=00", NULL, NULL };
	struct whsig_secret  five[5], s;
	char		    *longkey;
	size_t		     i;

	(void)state;
	/* No secret at all, or none usable: a configuration problem. */
	assert_int_equal(whsig_verify(WS_STRIPE, &h, "x", 1, NULL, 0, T0, 300,
			     NULL),
	    WV_NO_SECRET);
	s.secret = "";
	s.url = NULL;
	assert_int_equal(whsig_verify(WS_STRIPE, &h, "x", 1, &s, 1, T0, 300,
			     NULL),
	    WV_NO_SECRET);
	s.secret = "whsec_!!!";
	assert_int_equal(verify1(WS_STDWEBHOOKS, "v1,AA==", "1750000000", "m",
			     "x", 1, "whsec_!!!", NULL, T0),
	    WV_NO_SECRET);
	assert_int_equal(verify1(WS_STDWEBHOOKS, "v1,AA==", "1750000000", "m",
			     "x", 1, "whsec_", NULL, T0),
	    WV_NO_SECRET);
	assert_int_equal(verify1(WS_SQUARE, "AA==", NULL, NULL, "x", 1, "k",
			     NULL, T0),
	    WV_NO_SECRET);
	assert_int_equal(verify1(WS_TWILIO, "AA==", NULL, NULL, "a=1", 3, "k",
			     "ftp://x/", T0),
	    WV_NO_SECRET);
	/* Headers are looked at before secrets. */
	assert_int_equal(verify1(WS_LINE, NULL, NULL, NULL, "x", 1, "", NULL,
			     T0),
	    WV_MISSING_HEADER);
	/* More secrets than BW_MAX_WEBHOOK_SECRETS: programmer error. */
	for (i = 0; i < 5; i++) {
		five[i].secret = STRIPE_KEY;
		five[i].url = NULL;
	}
	assert_int_equal(whsig_verify(WS_STRIPE, &h, "x", 1, five, 5, T0, 300,
			     NULL),
	    WV_ERROR);
	assert_int_equal(whsig_verify(WS__MAX, &h, "x", 1, five, 1, T0, 300,
			     NULL),
	    WV_ERROR);
	assert_int_equal(whsig_verify(WS_STRIPE, NULL, "x", 1, five, 1, T0, 300,
			     NULL),
	    WV_ERROR);
	/* whsig_secret_check() */
	s.secret = SW_KEY;
	assert_int_equal(whsig_secret_check(WS_STDWEBHOOKS, &s), BW_OK);
	s.secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
	assert_int_equal(whsig_secret_check(WS_STDWEBHOOKS, &s), BW_OK);
	s.secret = "whsec_";
	assert_int_equal(whsig_secret_check(WS_STDWEBHOOKS, &s), BW_EINVAL);
	s.secret = "whsec_not base64";
	assert_int_equal(whsig_secret_check(WS_STDWEBHOOKS, &s), BW_EINVAL);
	assert_int_equal(whsig_secret_check(WS_STRIPE, &s), BW_OK);
	s.secret = "k";
	assert_int_equal(whsig_secret_check(WS_SQUARE, &s), BW_EINVAL);
	s.url = "https://api.example.com/webhooks/square";
	assert_int_equal(whsig_secret_check(WS_SQUARE, &s), BW_OK);
	assert_int_equal(whsig_secret_check(WS_TWILIO, &s), BW_OK);
	assert_int_equal(whsig_secret_check(WS_TWILIO, NULL), BW_EINVAL);
	assert_int_equal(whsig_secret_check(WS__MAX, &s), BW_EINVAL);
	longkey = malloc(BW_MAX_WEBHOOK_SECRET + 2);
	assert_non_null(longkey);
	memset(longkey, 'k', BW_MAX_WEBHOOK_SECRET + 1);
	longkey[BW_MAX_WEBHOOK_SECRET + 1] = '\0';
	s.secret = longkey;
	assert_int_equal(whsig_secret_check(WS_LINE, &s), BW_EINVAL);
	longkey[BW_MAX_WEBHOOK_SECRET] = '\0';
	assert_int_equal(whsig_secret_check(WS_LINE, &s), BW_OK);
	free(longkey);
}

static void
test_parse_ts(void **state)
{
	static const struct {
		const char *s;
		enum bw_err er;
		int64_t	    v;
	} c[] = {
		{ "0", BW_OK, 0 },
		{ "1750000000", BW_OK, 1750000000 },
		{ "999999999999", BW_OK, 999999999999LL },
		{ "1000000000000", BW_EINVAL, 0 },
		{ "", BW_EINVAL, 0 },
		{ "01", BW_EINVAL, 0 },
		{ "-1", BW_EINVAL, 0 },
		{ "+1", BW_EINVAL, 0 },
		{ "1 ", BW_EINVAL, 0 },
		{ "1e9", BW_EINVAL, 0 },
		{ "99999999999999999999", BW_EINVAL, 0 },
	};
	int64_t v;
	size_t	i;

	(void)state;
	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		v = -7;
		assert_int_equal(whsig_parse_ts(c[i].s, strlen(c[i].s), &v),
		    c[i].er);
		assert_int_equal(v, c[i].er == BW_OK ? c[i].v : -7);
	}
}

static void
test_twilio_form(void **state)
{
	static const struct {
		const char	  *body;
		enum whsig_verdict v;
		const char	  *want;
	} c[] = {
		{ "b=2&a=1", WV_VALID, "a1b2" },
		/* Repeated name: distinct values, sorted (Set + sort). */
		{ "a=1&b=2&a=0&a=1", WV_VALID, "a0a1b2" },
		{ "a&=x&&b=%41+", WV_VALID,
		    "xab"
		    "A " },
		{ "To=%2B81&Msg=a+%26+b", WV_VALID, "Msga & bTo+81" },
		{ "a", WV_VALID, "a" },
		{ "a&b", WV_VALID, "ab" },
		{ "", WV_VALID, "" },
		{ "&&&", WV_VALID, "" },
		{ "a=%G1", WV_MALFORMED, NULL },
		{ "a=%4", WV_MALFORMED, NULL },
		{ "a=%", WV_MALFORMED, NULL },
	};
	struct buf out, many;
	size_t	   i;

	(void)state;
	buf_init(&out, BW_MAX_BODY);
	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		buf_reset(&out);
		assert_int_equal(whsig_form_params((const uint8_t *)c[i].body,
				     strlen(c[i].body), &out),
		    c[i].v);
		if (c[i].want != NULL)
			assert_string_equal(buf_cstr(&out), c[i].want);
	}
	/* Over BW_MAX_FORM_PARAMS fields. */
	buf_init(&many, 64 * 1024);
	for (i = 0; i <= BW_MAX_FORM_PARAMS; i++)
		assert_int_equal(buf_printf(&many, "k%zu=v&", i), BW_OK);
	buf_reset(&out);
	assert_int_equal(whsig_form_params((const uint8_t *)many.p, many.len,
			     &out),
	    WV_MALFORMED);
	assert_int_equal(verify1(WS_TWILIO, "AAAA", NULL, NULL, many.p,
			     many.len, "tok", "https://x.example/", T0),
	    WV_MALFORMED);
	buf_free(&many);
	buf_free(&out);
}

static void
test_twilio_url_alt(void **state)
{
	static const struct {
		const char *url;
		enum bw_err er;
		const char *alt;
	} c[] = {
		{ "https://h.example/x?y=1", BW_OK,
		    "https://h.example:443/x?y=1" },
		{ "https://h.example:443/x", BW_OK, "https://h.example/x" },
		{ "https://h.example:8443?q", BW_OK, "https://h.example?q" },
		{ "http://h.example", BW_OK, "http://h.example:80" },
		{ "http://h.example#f", BW_OK, "http://h.example:80#f" },
		{ "https://u:p@h.example/", BW_ENOTFOUND, NULL },
		{ "https://[::1]:443/", BW_ENOTFOUND, NULL },
		{ "https://h.example:/x", BW_ENOTFOUND, NULL },
		{ "https://h.example:4a/x", BW_ENOTFOUND, NULL },
		{ "https:///x", BW_ENOTFOUND, NULL },
		{ "ftp://h.example/", BW_ENOTFOUND, NULL },
	};
	struct buf alt;
	size_t	   i;

	(void)state;
	buf_init(&alt, BW_MAX_HEADER + 8);
	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		buf_reset(&alt);
		assert_int_equal(whsig_url_alt(c[i].url, &alt), c[i].er);
		if (c[i].alt != NULL)
			assert_string_equal(buf_cstr(&alt), c[i].alt);
	}
	buf_free(&alt);
}

static void
test_names(void **state)
{
	const struct whsig_names *nm;
	const struct whsig_hdr	 *hd[3];
	enum whsig_provider	  pv = WS_LINE;
	char			  want[128];
	size_t			  i, k;
	int			  p;

	(void)state;
	assert_int_equal(whsig_provider_parse("stripe", &pv), BW_OK);
	assert_int_equal(pv, WS_STRIPE);
	assert_int_equal(whsig_provider_parse("square", &pv), BW_OK);
	assert_int_equal(pv, WS_SQUARE);
	assert_int_equal(whsig_provider_parse("line", &pv), BW_OK);
	assert_int_equal(pv, WS_LINE);
	assert_int_equal(whsig_provider_parse("sms", &pv), BW_OK);
	assert_int_equal(pv, WS_STDWEBHOOKS);
	assert_int_equal(whsig_provider_parse("twilio", &pv), BW_EINVAL);
	assert_int_equal(whsig_provider_parse("Stripe", &pv), BW_EINVAL);
	assert_int_equal(whsig_provider_parse("", &pv), BW_EINVAL);
	assert_int_equal(whsig_provider_parse(NULL, &pv), BW_EINVAL);
	assert_int_equal(pv, WS_STDWEBHOOKS);
	assert_string_equal(whsig_provider_name(WS_TWILIO), "twilio");
	assert_string_equal(whsig_provider_name(WS__MAX), "?");
	assert_null(whsig_header_names(WS__MAX));
	assert_string_equal(whsig_verdict_str(WV_STALE), "stale");
	assert_string_equal(whsig_verdict_str(WV__MAX), "?");
	for (p = 0; p < WV__MAX; p++)
		assert_string_not_equal(whsig_verdict_str(p), "?");
	/* Every CGI name is HTTP_ + the header upper-cased, '-' as '_'. */
	for (p = 0; p < WS__MAX; p++) {
		nm = whsig_header_names((enum whsig_provider)p);
		assert_non_null(nm);
		assert_non_null(nm->signature.http);
		hd[0] = &nm->signature;
		hd[1] = &nm->timestamp;
		hd[2] = &nm->id;
		for (k = 0; k < 3; k++) {
			if (hd[k]->http == NULL) {
				assert_null(hd[k]->cgi);
				continue;
			}
			assert_true(strlen(hd[k]->http) + 6 < sizeof(want));
			memcpy(want, "HTTP_", 5);
			for (i = 0; hd[k]->http[i] != '\0'; i++) {
				want[5 + i] = (char)toupper(
				    (unsigned char)hd[k]->http[i]);
				if (want[5 + i] == '-')
					want[5 + i] = '_';
			}
			want[5 + i] = '\0';
			assert_string_equal(hd[k]->cgi, want);
		}
	}
	nm = whsig_header_names(WS_STRIPE);
	assert_string_equal(nm->signature.cgi, "HTTP_STRIPE_SIGNATURE");
	nm = whsig_header_names(WS_STDWEBHOOKS);
	assert_string_equal(nm->id.cgi, "HTTP_WEBHOOK_ID");
}

/*
 * A small deterministic fuzz: random headers from each provider's
 * alphabet never crash (ASan/UBSan watch) and never verify.
 */
static void
test_random_headers(void **state)
{
	static const char    abc[] = "tv01=, 9aA+/=_-\x01\xff";
	struct whsig_secret  s = { SW_KEY, "https://example.com/w" };
	struct whsig_headers h;
	char		     sig[96], ts[16], id[16];
	uint32_t	     x = 12345;
	enum whsig_verdict   v;
	size_t		     i, k, n;
	int		     pv;

	(void)state;
	for (i = 0; i < 20000; i++) {
		x = x * 1103515245u + 12345u;
		n = (x >> 8) % sizeof(sig);
		for (k = 0; k < n; k++) {
			x = x * 1103515245u + 12345u;
			sig[k] = abc[(x >> 16) % (sizeof(abc) - 1)];
		}
		sig[n] = '\0';
		for (k = 0; k < sizeof(ts) - 1; k++) {
			x = x * 1103515245u + 12345u;
			ts[k] = (x >> 16) % 4
			    ? (char)('0' + (x >> 20) % 10)
			    : abc[(x >> 20) % (sizeof(abc) - 1)];
			id[k] = abc[(x >> 12) % (sizeof(abc) - 1)];
		}
		ts[(x >> 4) % sizeof(ts)] = '\0';
		id[sizeof(id) - 1] = '\0';
		ts[sizeof(ts) - 1] = '\0';
		h.signature = sig;
		h.timestamp = ts;
		h.id = id;
		pv = (int)(i % WS__MAX);
		v = whsig_verify((enum whsig_provider)pv, &h, sig, n, &s, 1, T0,
		    300, NULL);
		assert_true(v == WV_INVALID_SIGNATURE || v == WV_MALFORMED ||
		    v == WV_MISSING_HEADER);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors),
		cmocka_unit_test(test_stripe_header_parsing),
		cmocka_unit_test(test_signature_count_cap),
		cmocka_unit_test(test_huge_headers),
		cmocka_unit_test(test_garbage_signatures),
		cmocka_unit_test(test_empty_and_binary_body),
		cmocka_unit_test(test_stdwebhooks_headers),
		cmocka_unit_test(test_clock_and_tolerance),
		cmocka_unit_test(test_secrets),
		cmocka_unit_test(test_parse_ts),
		cmocka_unit_test(test_twilio_form),
		cmocka_unit_test(test_twilio_url_alt),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_random_headers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
