/* SPDX-License-Identifier: MIT */
/*
 * The LINE Messaging API reply call: one text message POSTed to
 * {base}/v2/bot/message/reply with the channel access token, through
 * lib/core/http.c, and what its answer means for the job that sent it.
 */
#ifndef BW_LINE_H
#define BW_LINE_H

#include <stddef.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/http.h"

#define LINE_MAX_TEXT		5000	    /* a text message, characters */
#define LINE_TIMEOUT_MS		5000	    /* one reply API call */
#define LINE_CONNECT_TIMEOUT_MS 2000	    /* its connect */
#define LINE_MAX_RESP		(64 * 1024) /* the reply API's answer */

/* What a reply attempt means for the job. */
enum line_outcome {
	LINE_OK,       /* 2xx: delivered */
	LINE_TERMINAL, /* never works later: a used or expired reply token,
			  a refused channel token (4xx but 429), a bad call */
	LINE_RETRY,    /* 429, 5xx, another status, a transport failure */
	LINE__MAX
};

/*
 * Sends text (cut to LINE_MAX_TEXT characters; the caller's string is not
 * changed) as the reply to reply_token, authorised by the channel token.
 * *out says what happened and *status holds the HTTP status (0 without
 * one). Returns BW_OK when LINE accepted the reply; BW_EUPSTREAM when it
 * did not (see *out); BW_EINVAL when the URL, token or body does not fit
 * (LINE_TERMINAL); BW_ENOMEM (LINE_RETRY). Logs the outcome once, never
 * the token.
 */
enum bw_err line_reply(struct http_client *, const char *base_url,
    const char *token, const char *reply_token, const char *text,
    enum line_outcome *out, int *status);
/* The outcome of a completed call with this HTTP status. */
enum line_outcome line_status_outcome(int status);
/* "ok", "terminal", "retry". */
const char *line_outcome_name(enum line_outcome);
/* Bytes of s that hold its first max_chars UTF-8 characters. */
size_t line_text_len(const char *s, size_t max_chars);
/*
 * Appends the reply API's request body for reply_token and the first
 * text_len bytes of text to out. Returns BW_OK, BW_ETOOBIG or BW_ENOMEM
 * (out then holds a partial body).
 */
enum bw_err line_reply_body(struct buf *out, const char *reply_token,
    const char *text, size_t text_len);

#endif
