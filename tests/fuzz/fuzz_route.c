/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness for fcgi/route.c: route_match() over a small table of
 * its own (as tests/unit/test_route.c) and over the real routes[] of
 * fcgi/routes.c (linked with weak handler stubs that dev/fuzz generates).
 *
 * Input: byte 0 picks the method (low 3 bits; 7: the method is the text
 * up to the first '\n') and the table (bit 7); byte 1 the size of the
 * Allow buffer (0..63, allocated exactly so ASan sees an overflow); the
 * rest is the path.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/limits.h"
#include "route.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
h_dummy(struct req *r)
{
	(void)r;
}

static const struct route tbl[] = {
	{ .method = "GET",
	    .pattern = "/health",
	    .name = "health",
	    .fn = h_dummy },
	{ .method = "GET",
	    .pattern = "/api/v1/exports/{}",
	    .name = "export_get",
	    .fn = h_dummy },
	{ .method = "POST",
	    .pattern = "/api/v1/exports/{}/cancel",
	    .name = "export_cancel",
	    .fn = h_dummy },
	{ .method = "GET",
	    .pattern = "/api/v1/chat/sessions/{}/{}",
	    .name = "sess_get",
	    .fn = h_dummy },
	{ .method = "DELETE",
	    .pattern = "/api/v1/chat/sessions/{}/{}",
	    .name = "sess_del",
	    .fn = h_dummy },
	{ .method = "PUT",
	    .pattern = "/{}/{}/{}/{}",
	    .name = "four",
	    .fn = h_dummy },
	{ .method = "POST",
	    .pattern = "/a/{}",
	    .name = "a_post",
	    .fn = h_dummy },
	{ .method = "PATCH",
	    .pattern = "/a/{}",
	    .name = "a_patch",
	    .fn = h_dummy },
	{ .method = "DELETE",
	    .pattern = "/a/{}",
	    .name = "a_delete",
	    .fn = h_dummy },
	{ .method = "OPTIONS",
	    .pattern = "/a/{}",
	    .name = "a_options",
	    .fn = h_dummy },
};

static const char *const methods[] = {
	"GET",
	"HEAD",
	"POST",
	"PUT",
	"DELETE",
	"PATCH",
	"OPTIONS",
};

/* 1 if word is one of the ", "-separated items of list. */
static int
listed(const char *list, const char *word)
{
	size_t wl = strlen(word), n;

	while (*list != '\0') {
		n = strcspn(list, ",");
		if (n == wl && strncmp(list, word, wl) == 0)
			return 1;
		list += n;
		while (*list == ',' || *list == ' ')
			list++;
	}
	return 0;
}

/* Aborts unless the match of path by row rt with r's args is exact. */
static void
check_match(const struct route *rt, const char *path, const struct req *r)
{
	const char *p = rt->pattern;
	char	    re[BW_MAX_PATH + 1];
	size_t	    n = 0, al, i;
	int	    k = 0;

	while (*p != '\0') {
		if (p[0] == '{' && p[1] == '}') {
			if (k >= r->nargs)
				abort();
			al = strlen(r->args[k]);
			if (al == 0 || al > REQ_MAX_ARG || n + al > BW_MAX_PATH)
				abort();
			for (i = 0; i < al; i++)
				if ((unsigned char)r->args[k][i] <= 0x20 ||
				    r->args[k][i] == 0x7f ||
				    r->args[k][i] == '/')
					abort();
			memcpy(re + n, r->args[k], al);
			n += al;
			k++;
			p += 2;
			continue;
		}
		if (n >= BW_MAX_PATH)
			abort();
		re[n++] = *p++;
	}
	re[n] = '\0';
	if (k != r->nargs || strcmp(re, path) != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct route *t, *out = NULL;
	struct req	   *r;
	enum route_result   rr;
	const char	   *method, *want;
	char		   *text, *path, *allow;
	size_t		    n, allowlen;

	if (size < 2)
		return 0;
	t = (data[0] & 0x80) ? routes : tbl;
	n = (data[0] & 0x80) ? nroutes : sizeof(tbl) / sizeof(tbl[0]);
	allowlen = data[1] % 64;
	if ((text = malloc(size - 1)) == NULL ||
	    (allow = malloc(allowlen > 0 ? allowlen : 1)) == NULL ||
	    (r = calloc(1, sizeof(*r))) == NULL)
		abort();
	memcpy(text, data + 2, size - 2);
	text[size - 2] = '\0';
	path = text;
	if ((data[0] & 7) == 7) {
		method = text;
		path = text + strcspn(text, "\n");
		if (*path != '\0')
			*path++ = '\0';
	} else
		method = methods[data[0] & 7];
	if (strlen(path) > BW_MAX_PATH)
		goto out; /* req_init() never passes one longer */

	memset(allow, 'Q', allowlen > 0 ? allowlen : 1);
	rr = route_match(t, n, method, path, r, &out, allow, allowlen);
	want = strcmp(method, "HEAD") == 0 ? "GET" : method;
	switch (rr) {
	case RR_MATCH:
		if (out < t || out >= t + n || strcmp(out->method, want) != 0)
			abort();
		check_match(out, path, r);
		break;
	case RR_METHOD:
		if (allowlen > 0 &&
		    (memchr(allow, '\0', allowlen) == NULL ||
			listed(allow, want)))
			abort();
		break;
	case RR_NOT_FOUND:
		if (allowlen > 0 && allow[0] != '\0')
			abort();
		break;
	default:
		abort();
	}
out:
	free(r);
	free(allow);
	free(text);
	return 0;
}
