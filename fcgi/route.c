/* SPDX-License-Identifier: MIT */
/* Route matching over a const table; see route.h. */
#include <string.h>

#include "route.h"

/* 1 if seg[0..n) is an acceptable placeholder value. */
static int
seg_ok(const char *seg, size_t n)
{
	size_t i;

	if (n == 0 || n > REQ_MAX_ARG)
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)seg[i];

		if (c <= 0x20 || c == 0x7f)
			return 0;
	}
	return 1;
}

/*
 * Matches path against pattern. Fills args (when not NULL) and returns the
 * number of placeholders, or -1 when it does not match.
 */
static int
pattern_match(const char *pat, const char *path,
    char args[REQ_MAX_ARGS][REQ_MAX_ARG + 1])
{
	int nargs = 0;

	while (*pat != '\0' && *path != '\0') {
		if (pat[0] == '{' && pat[1] == '}') {
			size_t n = strcspn(path, "/");

			if (!seg_ok(path, n) || nargs >= REQ_MAX_ARGS)
				return -1;
			if (args != NULL) {
				memcpy(args[nargs], path, n);
				args[nargs][n] = '\0';
			}
			nargs++;
			pat += 2;
			path += n;
			continue;
		}
		if (*pat != *path)
			return -1;
		pat++;
		path++;
	}
	return (*pat == '\0' && *path == '\0') ? nargs : -1;
}

enum route_result
route_match(const struct route *tbl, size_t n, const char *method,
    const char *path, struct req *r, const struct route **out, char *allow,
    size_t allowlen)
{
	size_t	    i, used = 0;
	int	    known = 0, k;
	const char *want;

	want = strcmp(method, "HEAD") == 0 ? "GET" : method;
	if (allowlen > 0)
		allow[0] = '\0';
	for (i = 0; i < n; i++) {
		if (pattern_match(tbl[i].pattern, path, NULL) < 0)
			continue;
		if (strcmp(tbl[i].method, want) == 0) {
			k = pattern_match(tbl[i].pattern, path, r->args);
			r->nargs = k;
			*out = &tbl[i];
			return RR_MATCH;
		}
		known = 1;
		if (allowlen > 0 && strstr(allow, tbl[i].method) == NULL) {
			size_t ml = strlen(tbl[i].method);

			if (used + ml + 2 < allowlen) {
				if (used > 0) {
					memcpy(allow + used, ", ", 2);
					used += 2;
				}
				memcpy(allow + used, tbl[i].method, ml);
				used += ml;
				allow[used] = '\0';
			}
		}
	}
	return known ? RR_METHOD : RR_NOT_FOUND;
}
