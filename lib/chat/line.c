/* SPDX-License-Identifier: MIT */
/*
 * The LINE reply API call (Messaging API "Send reply message"): a reply
 * token works once and expires, so a 4xx answer is final; 429, 5xx and
 * transport failures are worth another try while the token lives.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "chat/line.h"
#include "core/limits.h"
#include "core/log.h"

static const char *const outcome_names[LINE__MAX] = { "ok", "terminal",
	"retry" };

const char *
line_outcome_name(enum line_outcome o)
{
	return (unsigned)o < LINE__MAX ? outcome_names[o] : "?";
}

enum line_outcome
line_status_outcome(int status)
{
	if (status >= 200 && status < 300)
		return LINE_OK;
	if (status >= 400 && status < 500 && status != 429)
		return LINE_TERMINAL;
	return LINE_RETRY;
}

size_t
line_text_len(const char *s, size_t max_chars)
{
	size_t i, chars = 0;

	/* A character starts at every byte that is not 10xxxxxx. */
	for (i = 0; s[i] != '\0'; i++) {
		if (((unsigned char)s[i] & 0xc0) != 0x80) {
			if (chars == max_chars)
				return i;
			chars++;
		}
	}
	return i;
}

enum bw_err
line_reply_body(struct buf *out, const char *reply_token, const char *text,
    size_t text_len)
{
	enum bw_err er;

	er = buf_addstr(out, "{\"replyToken\":");
	if (er == BW_OK)
		er = buf_addjsonstr(out, reply_token, strlen(reply_token));
	if (er == BW_OK)
		er = buf_addstr(out,
		    ",\"messages\":[{\"type\":\"text\",\"text\":");
	if (er == BW_OK)
		er = buf_addjsonstr(out, text, text_len);
	if (er == BW_OK)
		er = buf_addstr(out, "}]}");
	return er;
}

enum bw_err
line_reply(struct http_client *c, const char *base_url, const char *token,
    const char *reply_token, const char *text, enum line_outcome *out,
    int *status)
{
	const char	*hdrs[2];
	struct http_req	 rq;
	struct http_resp rs;
	struct buf	 body, auth;
	char		 url[2048], st[16];
	enum bw_err	 er;

	*out = LINE_TERMINAL;
	*status = 0;
	http_resp_init(&rs);
	buf_init(&body, BW_MAX_BODY);
	buf_init(&auth, BW_MAX_WEBHOOK_SECRET + 64);
	if (snprintf(url, sizeof(url), "%s/v2/bot/message/reply", base_url) >=
		(int)sizeof(url) ||
	    buf_printf(&auth, "Authorization: Bearer %s",
		token != NULL ? token : "") != BW_OK) {
		er = BW_EINVAL;
		goto out;
	}
	er = line_reply_body(&body, reply_token, text,
	    line_text_len(text, LINE_MAX_TEXT));
	if (er != BW_OK) {
		if (er == BW_ENOMEM)
			*out = LINE_RETRY;
		else
			er = BW_EINVAL;
		goto out;
	}
	hdrs[0] = "Content-Type: application/json";
	hdrs[1] = buf_cstr(&auth);
	memset(&rq, 0, sizeof(rq));
	rq.method = "POST";
	rq.url = url;
	rq.headers = hdrs;
	rq.nheaders = 2;
	rq.body = body.p;
	rq.body_len = body.len;
	rq.connect_timeout_ms = LINE_CONNECT_TIMEOUT_MS;
	rq.timeout_ms = LINE_TIMEOUT_MS;
	rq.max_body = LINE_MAX_RESP;
	er = http_do(c, &rq, &rs);
	if (er == BW_OK) {
		*status = rs.status;
		*out = line_status_outcome(rs.status);
		er = *out == LINE_OK ? BW_OK : BW_EUPSTREAM;
	} else {
		/* A transport failure or an oversized answer: LINE may not
		 * have taken it, and the token may still work. */
		*out = LINE_RETRY;
		er = er == BW_ENOMEM ? BW_ENOMEM : BW_EUPSTREAM;
	}
	snprintf(st, sizeof(st), "%d", rs.status);
	log_kv(*out == LINE_OK ? LL_INFO : LL_WARN, "line reply sent", "status",
	    st, "outcome", line_outcome_name(*out), "transport",
	    http_xerr_name(rs.xerr), NULL);
out:
	http_resp_free(&rs);
	buf_free(&body);
	if (auth.p != NULL)
		OPENSSL_cleanse(auth.p, auth.len);
	buf_free(&auth);
	return er;
}
