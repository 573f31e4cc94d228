/* SPDX-License-Identifier: MIT */
/*
 * JSON input: a strict, bounded parse on top of json-c and declarative
 * validation of an object against a const field table (kcgi's kvalid).
 * json-c is lenient in places (NaN, raw control characters, overlong UTF-8,
 * duplicate keys), so jv_parse() adds its own checks around it.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/jv.h"
#include "core/limits.h"

STATIC enum bw_err jv_scan(const char *, size_t, int, size_t *);

/*
 * Counts the code points of a strict UTF-8 string (RFC 3629 §4): no
 * overlong forms, no surrogates (U+D800..U+DFFF), nothing above U+10FFFF.
 * NUL bytes count as characters. Returns the count or -1 when invalid.
 */
int64_t
jv_utf8_len(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t		     i = 0, need, k;
	uint32_t	     cp, minv;
	int64_t		     n = 0;

	while (i < len) {
		if (p[i] < 0x80) {
			i++;
			n++;
			continue;
		}
		if (p[i] >= 0xc2 && p[i] <= 0xdf) {
			need = 1;
			cp = p[i] & 0x1f;
			minv = 0x80;
		} else if (p[i] >= 0xe0 && p[i] <= 0xef) {
			need = 2;
			cp = p[i] & 0x0f;
			minv = 0x800;
		} else if (p[i] >= 0xf0 && p[i] <= 0xf4) {
			need = 3;
			cp = p[i] & 0x07;
			minv = 0x10000;
		} else
			return -1;
		if (len - i - 1 < need)
			return -1;
		for (k = 1; k <= need; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return -1;
			cp = (cp << 6) | (p[i + k] & 0x3f);
		}
		if (cp < minv || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return -1;
		i += need + 1;
		n++;
	}
	return n;
}

/*
 * Walks JSON text that json-c has already accepted and checks what json-c
 * lets through: raw control characters inside strings (RFC 8259 §7) and
 * container nesting deeper than max_depth. Counts the object keys (strings
 * followed by ':') into *nkeys so that the caller can spot duplicates.
 * Returns BW_OK, BW_EINVAL or BW_ETOOBIG.
 */
STATIC enum bw_err
jv_scan(const char *s, size_t len, int max_depth, size_t *nkeys)
{
	size_t i, j;
	int    depth = 0;

	*nkeys = 0;
	for (i = 0; i < len; i++) {
		switch (s[i]) {
		case '{':
		case '[':
			if (++depth > max_depth)
				return BW_ETOOBIG;
			break;
		case '}':
		case ']':
			depth--;
			break;
		case '"':
			for (i++; i < len && s[i] != '"'; i++) {
				if ((unsigned char)s[i] < 0x20)
					return BW_EINVAL;
				if (s[i] == '\\')
					i++;
			}
			if (i >= len)
				return BW_EINVAL;
			for (j = i + 1; j < len &&
			     (s[j] == ' ' || s[j] == '\t' || s[j] == '\n' ||
				 s[j] == '\r');
			     j++)
				continue;
			if (j < len && s[j] == ':')
				(*nkeys)++;
			break;
		default:
			break;
		}
	}
	return BW_OK;
}

/*
 * Walks a parsed tree: counts the keys of every object into *nkeys and
 * refuses non-finite numbers (json-c accepts NaN and Infinity even in
 * strict mode). Recursion is bounded by the parse depth. Returns BW_OK or
 * BW_EINVAL.
 */
static enum bw_err
jv_walk(struct json_object *o, size_t *nkeys)
{
	enum bw_err er;
	size_t	    i, n;

	switch (json_object_get_type(o)) {
	case json_type_double:
		if (!isfinite(json_object_get_double(o)))
			return BW_EINVAL;
		return BW_OK;
	case json_type_object: {
		json_object_object_foreach(o, k, v)
		{
			(void)k;
			(*nkeys)++;
			er = jv_walk(v, nkeys);
			if (er != BW_OK)
				return er;
		}
		return BW_OK;
	}
	case json_type_array:
		n = json_object_array_length(o);
		for (i = 0; i < n; i++) {
			er = jv_walk(json_object_array_get_idx(o, i), nkeys);
			if (er != BW_OK)
				return er;
		}
		return BW_OK;
	default:
		return BW_OK;
	}
}

/*
 * Parses len bytes as one JSON object, strictly: valid UTF-8 throughout,
 * no NUL bytes, no trailing bytes but whitespace, no raw control characters
 * in strings, no NaN/Infinity, no duplicate keys (json-c would silently keep
 * the last one; we compare the keys in the text with the keys in the tree),
 * and at most max_depth nested containers ("{}" and {"a":1} are depth 1).
 * Returns BW_OK with *out (the caller puts it), BW_EINVAL for malformed or
 * non-object input, BW_ETOOBIG past max_depth or INT_MAX bytes, BW_ENOMEM.
 */
enum bw_err
jv_parse(const char *s, size_t len, int max_depth, struct json_object **out)
{
	struct json_tokener    *tok = NULL;
	struct json_object     *o = NULL;
	enum json_tokener_error te;
	enum bw_err		er;
	size_t			end, textkeys, treekeys = 0;

	if (s == NULL || len == 0 || max_depth < 1) {
		er = BW_EINVAL;
		goto out;
	}
	/* INT32_MAX: -Ilib makes <limits.h> resolve to ours, not INT_MAX's. */
	if (len > INT32_MAX || max_depth >= INT32_MAX) {
		er = BW_ETOOBIG;
		goto out;
	}
	if (memchr(s, '\0', len) != NULL || jv_utf8_len(s, len) < 0) {
		er = BW_EINVAL;
		goto out;
	}
	/* json-c counts scalars as a level too; jv_scan() is exact. */
	tok = json_tokener_new_ex(max_depth + 1);
	if (tok == NULL) {
		er = BW_ENOMEM;
		goto out;
	}
	json_tokener_set_flags(tok,
	    JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(tok, s, (int)len);
	te = json_tokener_get_error(tok);
	if (o == NULL || te != json_tokener_success) {
		er = te == json_tokener_error_depth ? BW_ETOOBIG : BW_EINVAL;
		goto out;
	}
	for (end = json_tokener_get_parse_end(tok); end < len; end++)
		if (s[end] != ' ' && s[end] != '\t' && s[end] != '\n' &&
		    s[end] != '\r') {
			er = BW_EINVAL;
			goto out;
		}
	if (!json_object_is_type(o, json_type_object)) {
		er = BW_EINVAL;
		goto out;
	}
	er = jv_scan(s, len, max_depth, &textkeys);
	if (er != BW_OK)
		goto out;
	er = jv_walk(o, &treekeys);
	if (er != BW_OK)
		goto out;
	if (textkeys != treekeys) {
		er = BW_EINVAL;
		goto out;
	}
	*out = o;
	o = NULL;
out:
	json_object_put(o);
	if (tok != NULL)
		json_tokener_free(tok);
	return er;
}

/*
 * The one UUID check of the tree: 1 if s[0..len) is 8-4-4-4-12 hex
 * digits, lower-case, or either case when upper is set.
 */
static int
jv_uuid_shape(const char *s, size_t len, int upper)
{
	size_t i;
	char   c;

	if (s == NULL || len != 36)
		return 0;
	for (i = 0; i < len; i++) {
		c = s[i];
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (c != '-')
				return 0;
		} else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
			       (upper && c >= 'A' && c <= 'F')))
			return 0;
	}
	return 1;
}

int
jv_is_uuid(const char *s, size_t len)
{
	return jv_uuid_shape(s, len, 1);
}

int
jv_is_uuid_lc(const char *s)
{
	return s != NULL && jv_uuid_shape(s, strlen(s), 0);
}

/*
 * Reads n decimal digits at *p into *v and advances *p. Returns 0 on
 * success, -1 when a non-digit or the end comes first.
 */
static int
jv_digits(const char **p, const char *end, int n, int *v)
{
	int i;

	*v = 0;
	for (i = 0; i < n; i++) {
		if (*p >= end || **p < '0' || **p > '9')
			return -1;
		*v = *v * 10 + (**p - '0');
		(*p)++;
	}
	return 0;
}

/*
 * Days from 1970-01-01 to the proleptic Gregorian date y-m-d (Howard
 * Hinnant's days_from_civil; exact for every year 1..9999).
 */
static int64_t
jv_days(int y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/*
 * The one RFC 3339 parser of the tree. s[0..len) must be an RFC 3339 §5.6
 * date-time: YYYY-MM-DDTHH:MM:SS[.frac] then Z or ±HH:MM, with real
 * calendar days (leap years). Stricter than the RFC: upper-case T and Z
 * only, seconds 00..59 (no leap second), 1..9 fraction digits, year
 * 0001..9999. Returns BW_OK with *ms the unix time in milliseconds (the
 * fraction truncated to ms; negative before 1970), or BW_EINVAL (*ms
 * untouched).
 */
enum bw_err
jv_rfc3339_ms(const char *s, size_t len, int64_t *ms)
{
	static const int mdays[12] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31,
		30, 31 };
	const char	*p, *end;
	int64_t		 frac = 0, off = 0, t;
	int		 y, mo, d, h, mi, se, oh, om, nf, sign;

	if (s == NULL)
		return BW_EINVAL;
	p = s;
	end = s + len;
	if (jv_digits(&p, end, 4, &y) || p >= end || *p++ != '-' ||
	    jv_digits(&p, end, 2, &mo) || p >= end || *p++ != '-' ||
	    jv_digits(&p, end, 2, &d) || p >= end || *p++ != 'T' ||
	    jv_digits(&p, end, 2, &h) || p >= end || *p++ != ':' ||
	    jv_digits(&p, end, 2, &mi) || p >= end || *p++ != ':' ||
	    jv_digits(&p, end, 2, &se))
		return BW_EINVAL;
	if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] ||
	    h > 23 || mi > 59 || se > 59)
		return BW_EINVAL;
	if (mo == 2 && d == 29 &&
	    !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return BW_EINVAL;
	if (p < end && *p == '.') {
		p++;
		for (nf = 0; p < end && *p >= '0' && *p <= '9'; p++) {
			if (nf < 3)
				frac = frac * 10 + (*p - '0');
			nf++;
		}
		if (nf < 1 || nf > 9)
			return BW_EINVAL;
		for (; nf < 3; nf++)
			frac *= 10;
	}
	if (p >= end)
		return BW_EINVAL;
	if (*p == 'Z') {
		if (p + 1 != end)
			return BW_EINVAL;
	} else if (*p == '+' || *p == '-') {
		sign = *p++ == '+' ? 1 : -1;
		if (jv_digits(&p, end, 2, &oh) || p >= end || *p++ != ':' ||
		    jv_digits(&p, end, 2, &om) || oh > 23 || om > 59 ||
		    p != end)
			return BW_EINVAL;
		off = sign * ((int64_t)oh * 3600 + (int64_t)om * 60);
	} else
		return BW_EINVAL;
	t = jv_days(y, mo, d) * 86400 + (int64_t)h * 3600 + (int64_t)mi * 60 +
	    se - off;
	*ms = t * 1000 + frac;
	return BW_OK;
}

/*
 * Appends {"field":name,"problem":problem} to probs unless the cap
 * BW_MAX_FIELD_PROBLEMS is reached (a body of many unknown keys must not
 * make an unbounded reply). Returns BW_OK or BW_ENOMEM.
 */
static enum bw_err
jv_problem(struct json_object *probs, const char *name, const char *problem)
{
	struct json_object *p, *s;

	if (json_object_array_length(probs) >= BW_MAX_FIELD_PROBLEMS)
		return BW_OK;
	p = json_object_new_object();
	if (p == NULL)
		return BW_ENOMEM;
	s = json_object_new_string(name);
	if (s == NULL || json_object_object_add(p, "field", s) != 0) {
		json_object_put(s);
		goto fail;
	}
	s = json_object_new_string(problem);
	if (s == NULL || json_object_object_add(p, "problem", s) != 0) {
		json_object_put(s);
		goto fail;
	}
	if (json_object_array_add(probs, p) != 0)
		goto fail;
	return BW_OK;
fail:
	json_object_put(p);
	return BW_ENOMEM;
}

/*
 * Checks an integer value against [min,max] (no bounds when both are 0).
 * Returns NULL when fine, else the problem name.
 */
static const char *
jv_check_int(struct json_object *v, const struct jv_field *f, int bounded)
{
	int64_t i;

	if (!json_object_is_type(v, json_type_int))
		return "wrong_type";
	i = json_object_get_int64(v);
	/* json-c keeps values >= 2^63 as uint64 and clamps beyond 2^64. */
	if (i == INT64_MAX && json_object_get_uint64(v) != (uint64_t)INT64_MAX)
		return "too_large";
	if (!bounded || (f->min == 0 && f->max == 0))
		return NULL;
	if (i < f->min)
		return "too_small";
	if (i > f->max)
		return "too_large";
	return NULL;
}

/*
 * Checks one scalar value v of type t under field f's rules. bounded is 0
 * for array items, whose min/max belong to the array. Returns NULL when
 * fine, else the problem name.
 */
static const char *
jv_check_value(struct json_object *v, enum jv_type t, const struct jv_field *f,
    int bounded)
{
	const char	  *s;
	const char *const *e;
	size_t		   len;
	int64_t		   n, ts;

	switch (t) {
	case JV_INT:
		return jv_check_int(v, f, bounded);
	case JV_BOOL:
		return json_object_is_type(v, json_type_boolean) ? NULL
								 : "wrong_type";
	case JV_OBJECT:
		return json_object_is_type(v, json_type_object) ? NULL
								: "wrong_type";
	case JV_STRING:
	case JV_UUID:
	case JV_ENUM:
	case JV_RFC3339:
		break;
	default:
		return "wrong_type";
	}
	if (!json_object_is_type(v, json_type_string))
		return "wrong_type";
	s = json_object_get_string(v);
	len = (size_t)json_object_get_string_len(v);
	/* A NUL inside would cut the value short in every C consumer. */
	n = jv_utf8_len(s, len);
	if (n < 0 || memchr(s, '\0', len) != NULL)
		return "invalid_format";
	switch (t) {
	case JV_UUID:
		return jv_is_uuid(s, len) ? NULL : "invalid_format";
	case JV_RFC3339:
		return jv_rfc3339_ms(s, len, &ts) == BW_OK ? NULL
							   : "invalid_format";
	case JV_ENUM:
		for (e = f->enum_vals; e != NULL && *e != NULL; e++)
			if (strlen(*e) == len && memcmp(*e, s, len) == 0)
				return NULL;
		return "not_allowed";
	default:
		break;
	}
	if (bounded && n < f->min)
		return "too_short";
	if (bounded && f->max > 0 && n > f->max)
		return "too_long";
	if (f->check != NULL && f->check(s, len) != 0)
		return "invalid_format";
	return NULL;
}

/*
 * Checks the array v of field f: item count in [min,max] (no upper bound
 * when max is 0), then each item as f->item_type, reported as "name[i]".
 * Returns BW_OK or BW_ENOMEM; problems go to probs.
 */
static enum bw_err
jv_check_array(struct json_object *v, const struct jv_field *f,
    struct json_object *probs)
{
	enum bw_err er;
	const char *pr;
	char	    name[256];
	size_t	    i, n;

	if (!json_object_is_type(v, json_type_array))
		return jv_problem(probs, f->name, "wrong_type");
	n = json_object_array_length(v);
	if ((int64_t)n < f->min)
		return jv_problem(probs, f->name, "too_few");
	if (f->max > 0 && (int64_t)n > f->max)
		return jv_problem(probs, f->name, "too_many");
	for (i = 0; i < n; i++) {
		pr = jv_check_value(json_object_array_get_idx(v, i),
		    f->item_type, f, 0);
		if (pr == NULL)
			continue;
		snprintf(name, sizeof(name), "%.200s[%zu]", f->name, i);
		er = jv_problem(probs, name, pr);
		if (er != BW_OK)
			return er;
	}
	return BW_OK;
}

/*
 * The checks of jv_validate() into probs, field names prefixed with
 * "prefix." when prefix is not NULL (members of a JV_OBJECT with rules).
 * Returns BW_OK or BW_ENOMEM.
 */
static enum bw_err
jv_validate_into(struct json_object *obj, const struct jv_field *f, size_t n,
    struct json_object *probs, const char *prefix)
{
	struct json_object *v;
	enum bw_err	    er = BW_OK;
	const char	   *pr;
	char		    name[256];
	size_t		    i;

#define JV_NAME(k)                                                             \
	(prefix == NULL                                                        \
		? (k)                                                          \
		: (snprintf(name, sizeof(name), "%.100s.%.100s", prefix, (k)), \
		      name))
	if (!json_object_is_type(obj, json_type_object))
		return jv_problem(probs, prefix != NULL ? prefix : "",
		    "wrong_type");
	for (i = 0; i < n && er == BW_OK; i++) {
		if (!json_object_object_get_ex(obj, f[i].name, &v)) {
			if (f[i].required)
				er = jv_problem(probs, JV_NAME(f[i].name),
				    "required");
			continue;
		}
		if (f[i].type == JV_ARRAY) {
			er = jv_check_array(v, &f[i], probs);
			continue;
		}
		if (f[i].type == JV_OBJECT && f[i].sub != NULL &&
		    prefix == NULL) {
			er = jv_validate_into(v, f[i].sub, f[i].nsub, probs,
			    f[i].name);
			continue;
		}
		pr = jv_check_value(v, f[i].type, &f[i], 1);
		if (pr != NULL)
			er = jv_problem(probs, JV_NAME(f[i].name), pr);
	}
	{
		json_object_object_foreach(obj, k, val)
		{
			(void)val;
			if (er != BW_OK)
				break;
			for (i = 0; i < n; i++)
				if (strcmp(f[i].name, k) == 0)
					break;
			if (i == n)
				er = jv_problem(probs, JV_NAME(k),
				    "unknown_field");
		}
	}
#undef JV_NAME
	return er;
}

/*
 * Validates obj against the n fields of f. Field problems come first in
 * table order, then unknown fields in the object's order. JSON null is a
 * "wrong_type", not an absent field. Limits: for strings and arrays max 0
 * means no upper bound; for integers min == max == 0 means any int64.
 * One level of JV_OBJECT member rules is applied (deeper ones are not).
 * At most BW_MAX_FIELD_PROBLEMS problems are listed.
 * Returns BW_OK (*problems untouched), BW_EINVAL with *problems (the
 * caller puts it), or BW_ENOMEM.
 */
enum bw_err
jv_validate(struct json_object *obj, const struct jv_field *f, size_t n,
    struct json_object **problems)
{
	struct json_object *probs;
	enum bw_err	    er;

	probs = json_object_new_array();
	if (probs == NULL)
		return BW_ENOMEM;
	er = jv_validate_into(obj, f, n, probs, NULL);
	if (er != BW_OK) {
		json_object_put(probs);
		return er;
	}
	if (json_object_array_length(probs) == 0) {
		json_object_put(probs);
		return BW_OK;
	}
	*problems = probs;
	return BW_EINVAL;
}

/* The string at key (owned by obj), or dflt when absent or not a string. */
const char *
jv_str(struct json_object *obj, const char *key, const char *dflt)
{
	struct json_object *v;

	if (!json_object_object_get_ex(obj, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return dflt;
	return json_object_get_string(v);
}

/* The integer at key, or dflt when absent or not an integer. */
int64_t
jv_int(struct json_object *obj, const char *key, int64_t dflt)
{
	struct json_object *v;

	if (!json_object_object_get_ex(obj, key, &v) ||
	    !json_object_is_type(v, json_type_int))
		return dflt;
	return json_object_get_int64(v);
}

/* The boolean at key as 0/1, or dflt when absent or not a boolean. */
int
jv_bool(struct json_object *obj, const char *key, int dflt)
{
	struct json_object *v;

	if (!json_object_object_get_ex(obj, key, &v) ||
	    !json_object_is_type(v, json_type_boolean))
		return dflt;
	return json_object_get_boolean(v) ? 1 : 0;
}

/*
 * Compact JSON text of obj ("/" not escaped) in a malloc'd string the
 * caller frees; NULL on ENOMEM.
 */
char *
jv_dump(struct json_object *obj)
{
	const char *s;

	s = json_object_to_json_string_ext(obj,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	if (s == NULL)
		return NULL;
	return strdup(s);
}
