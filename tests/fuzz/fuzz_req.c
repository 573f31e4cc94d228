/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness for the pure parsers of fcgi/req.c: request and
 * correlation ids (req_id_valid, req_pick_ids), W3C traceparent
 * (req_traceparent) and the Authorization header (req_bearer).
 *
 * Input: up to six '\n'-separated values (nginx request id, client request
 * id, nginx correlation id, client correlation id, traceparent, fallback);
 * each value is also tried alone in every parser.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/limits.h"
#include "req.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define NV 6

/* Aborts unless s is a valid id per the contract: [A-Za-z0-9._-]{1,128}. */
static void
check_id(const char *s)
{
	size_t n = strlen(s), i;

	if (n == 0 || n > BW_MAX_REQUEST_ID)
		abort();
	for (i = 0; i < n; i++)
		if (strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXY"
			   "Z"
			   "0123456789._-",
			s[i]) == NULL)
			abort();
}

static void
one(const char *s)
{
	const char *tok = NULL;
	char	    trace[33];
	size_t	    len = 0, i;

	if (req_id_valid(s))
		check_id(s);
	memset(trace, 'Z', sizeof(trace));
	if (req_traceparent(s, trace)) {
		if (strlen(trace) != 32 || memcmp(trace, s + 3, 32) != 0)
			abort();
		for (i = 0; i < 32; i++)
			if (strchr("0123456789abcdef", trace[i]) == NULL)
				abort();
		check_id(trace);
	} else if (trace[0] != 'Z')
		abort();
	if (req_bearer(s, &tok, &len)) {
		if (tok < s || len == 0 || tok + len > s + strlen(s) ||
		    tok[0] == ' ' || tok[len - 1] == ' ')
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *v[NV] = { NULL, NULL, NULL, NULL, NULL, NULL };
	char	   *text, *p, rid[BW_MAX_REQUEST_ID + 1];
	char	    cid[BW_MAX_REQUEST_ID + 1];
	size_t	    i;

	if ((text = malloc(size + 1)) == NULL)
		abort();
	memcpy(text, data, size);
	text[size] = '\0';
	for (i = 0, p = text; i < NV && p != NULL; i++) {
		v[i] = p;
		if ((p = strchr(p, '\n')) != NULL)
			*p++ = '\0';
	}
	for (i = 0; i < NV; i++)
		if (v[i] != NULL)
			one(v[i]);
	(void)req_id_valid(NULL);
	(void)req_traceparent(NULL, rid);

	/* The fallback is generated: always a valid id. */
	memset(rid, 'X', sizeof(rid));
	memset(cid, 'X', sizeof(cid));
	req_pick_ids(v[0], v[1], v[2], v[3], v[4],
	    "0123456789abcdef0123456789abcdef", rid, cid);
	check_id(rid);
	check_id(cid);
	if (req_id_valid(v[0]) && strcmp(rid, v[0]) != 0)
		abort(); /* nginx's decision wins */
	if (req_id_valid(v[3]) && strcmp(cid, v[3]) != 0)
		abort(); /* then the client's correlation id */
	free(text);
	return 0;
}
