/* SPDX-License-Identifier: MIT */
/* Route matching over a const table; see route.h. */
#include <string.h>

#include <json-c/json.h>

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

static const char *const route_auth_names[RA__MAX] = { "none", "key",
	"optional", "session" };

static const struct {
	unsigned    bit;
	const char *name;
} route_flag_names[] = {
	{ ROUTE_IDEMPOTENT, "idempotent" },
	{ ROUTE_RAW_BODY, "raw_body" },
	{ ROUTE_ACTION, "action" },
	{ ROUTE_RATE_OPEN, "rate_open" },
};

/* One row as a JSON object (the caller frees it). */
static struct json_object *
route_json(const struct route *rt)
{
	struct json_object   *o = json_object_new_object(), *a;
	const struct rl_rule *ru;
	size_t		      i;

	json_object_object_add(o, "method", json_object_new_string(rt->method));
	json_object_object_add(o, "pattern",
	    json_object_new_string(rt->pattern));
	json_object_object_add(o, "name", json_object_new_string(rt->name));
	json_object_object_add(o, "auth",
	    json_object_new_string((unsigned)rt->auth < RA__MAX
		    ? route_auth_names[rt->auth]
		    : "?"));
	json_object_object_add(o, "min_role",
	    rt->auth == RA_KEY || rt->auth == RA_SESSION
		? json_object_new_string(auth_role_name(rt->min_role))
		: NULL);
	a = json_object_new_array();
	for (i = 0; i < sizeof(route_flag_names) / sizeof(route_flag_names[0]);
	     i++)
		if (rt->flags & route_flag_names[i].bit)
			json_object_array_add(a,
			    json_object_new_string(route_flag_names[i].name));
	json_object_object_add(o, "flags", a);
	json_object_object_add(o, "max_body",
	    json_object_new_int64((int64_t)rt->max_body));
	a = NULL;
	if (rt->rate != NULL) {
		a = json_object_new_array();
		for (ru = rt->rate; ru->limit > 0; ru++) {
			struct json_object *r = json_object_new_object();

			json_object_object_add(r, "scope",
			    json_object_new_string(rl_scope_name(ru->scope)));
			json_object_object_add(r, "limit",
			    json_object_new_int(ru->limit));
			json_object_object_add(r, "window_s",
			    json_object_new_int(ru->window_s));
			json_object_array_add(a, r);
		}
	}
	json_object_object_add(o, "rate", a);
	return o;
}

int
route_dump(const struct route *tbl, size_t n, const char *const *pools,
    FILE *out)
{
	size_t i;
	int    rc = 0;

	for (i = 0; i < n && rc == 0; i++) {
		struct json_object *o = route_json(&tbl[i]);

		if (pools != NULL)
			json_object_object_add(o, "pool",
			    json_object_new_string(pools[i]));

		if (fprintf(out, "%s\n",
			json_object_to_json_string_ext(o,
			    JSON_C_TO_STRING_PLAIN |
				JSON_C_TO_STRING_NOSLASHESCAPE)) < 0)
			rc = -1;
		json_object_put(o);
	}
	if (fflush(out) != 0)
		rc = -1;
	return rc;
}
