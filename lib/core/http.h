/* SPDX-License-Identifier: MIT */
/*
 * The one outbound HTTP client (libcurl): a per-process easy handle reused
 * across requests so keep-alive connections are reused, connect and total
 * timeouts on every request, a size-capped response body (over the cap is
 * an error, never a silent cut), the status and the response headers the
 * caller names, and a classification of transport failures. A request
 * other than GET or HEAD is sent at most once per http_do(): libcurl's
 * own resend after a reused connection died unanswered is refused
 * (HX_OTHER, maybe seen), so the caller's retries are all there are.
 * Used by the LLM client, the LINE reply and every later provider.
 */
#ifndef BW_HTTP_H
#define BW_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

#define HTTP_MAX_WANT	   4   /* response headers one request may ask for */
#define HTTP_MAX_HDR_VALUE 256 /* a captured header value, bytes */
#define HTTP_POLL_MS	   200 /* longest wait between tick checks */

struct http_client;

/* Why a request got no response; HX_NONE when one arrived (any status). */
enum http_xerr {
	HX_NONE,
	HX_CONNECT, /* could not resolve or connect: the request was not sent */
	HX_TIMEOUT, /* the connect or the total timeout passed */
	HX_TOOBIG,  /* the response body is over max_body */
	HX_ABORTED, /* the tick callback asked to stop */
	HX_OTHER,   /* closed, reset, protocol error: maybe sent */
	HX__MAX
};

struct http_req {
	const char	  *method;  /* "GET", "POST", "PUT", ... */
	const char	  *url;	    /* http:// or https:// only */
	const char *const *headers; /* "Name: value" lines, may be NULL */
	size_t		   nheaders;
	const char	  *body; /* may be NULL; not copied */
	size_t		   body_len;
	long		   connect_timeout_ms;
	long		   timeout_ms; /* the whole request */
	size_t		   max_body;   /* response body cap, bytes */
	/* Response headers to capture (case-insensitive names), at most
	 * HTTP_MAX_WANT; their values land in http_resp.hdr[i]. */
	const char *const *want;
	size_t		   nwant;
	/* Called at least every tick_ms while the transfer runs (NULL: none);
	 * nonzero stops the request (HX_ABORTED). */
	int (*tick)(void *arg);
	void   *tick_arg;
	int64_t tick_ms;
};

struct http_resp {
	int	       status; /* HTTP status; 0 without a response */
	enum http_xerr xerr;
	bool	       sent; /* the server may have seen the request */
	struct buf     body; /* at most req->max_body bytes */
	bool	       has[HTTP_MAX_WANT];
	char	       hdr[HTTP_MAX_WANT][HTTP_MAX_HDR_VALUE + 1];
};

/* Once per process before any client (curl_global_init()). */
enum bw_err http_global_init(void);
void	    http_global_cleanup(void);

/* A client with its own reusable handle; make it after fork(). NULL on
 * ENOMEM. http_client_free(NULL) does nothing. */
struct http_client *http_client_new(void);
void		    http_client_free(struct http_client *);

/* An empty response; http_resp_free() releases the body. */
void http_resp_init(struct http_resp *);
void http_resp_free(struct http_resp *);

/*
 * Runs one request. resp (initialised with http_resp_init(), reusable) is
 * always filled: status, xerr, sent, body and the wanted headers. Returns
 * BW_OK when a response arrived, whatever its status; BW_ETIMEOUT
 * (HX_TIMEOUT); BW_ETOOBIG (HX_TOOBIG); BW_EUPSTREAM (HX_CONNECT, HX_OTHER,
 * HX_ABORTED); BW_EINVAL for a bad request (no URL or method, too many
 * wanted headers); BW_ENOMEM. Nothing is logged: headers may carry
 * secrets; the caller logs with what it knows.
 */
enum bw_err
http_do(struct http_client *, const struct http_req *, struct http_resp *);

/*
 * A Retry-After value in delta-seconds (RFC 9110 §10.2.3): 1 to 5 digits,
 * nothing else. Returns the seconds, or -1 (absent, an HTTP-date, junk).
 */
int http_retry_after_s(const char *value);
/* "none", "connect", "timeout", "too_big", "aborted", "other". */
const char *http_xerr_name(enum http_xerr);

#ifdef BW_TESTING
int http_hdr_match(const char *line, size_t len, const char *name, char *val,
    size_t valsz);
#endif

#endif
