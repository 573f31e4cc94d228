/* SPDX-License-Identifier: MIT */
/*
 * JSON input: a bounded parse (depth and size) and declarative validation
 * of an object against a const field table (kcgi's kvalid). Unknown fields
 * are refused. Problems come back as the contract's "fields" array:
 * [{"field":"message","problem":"required"}, ...].
 */
#ifndef BW_JV_H
#define BW_JV_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "core/err.h"

enum jv_type {
	JV_STRING, /* UTF-8 string, length in characters */
	JV_INT,	   /* integer in [min,max], no fraction, no exponent */
	JV_BOOL,
	JV_UUID,    /* canonical lower/upper-case 8-4-4-4-12 */
	JV_ENUM,    /* string, one of enum_vals */
	JV_RFC3339, /* timestamp string */
	JV_ARRAY,   /* array of strings of items' rules, up to max items */
	JV_OBJECT,  /* an object; its members checked against sub if set */
	JV__MAX
};

struct jv_field {
	const char  *name;
	enum jv_type type;
	int	     required;
	int64_t min; /* string: min chars; int: min value; array: min items */
	int64_t max; /* string: max chars; int: max value; array: max items */
	const char *const *enum_vals; /* NULL-terminated, JV_ENUM */
	/* Extra check for strings (pattern); returns 0 when acceptable. */
	int (*check)(const char *s, size_t len);
	enum jv_type item_type; /* JV_ARRAY items */
	/*
	 * JV_OBJECT: the member rules (unknown members refused), problems
	 * named "name.member"; NULL accepts any object.
	 */
	const struct jv_field *sub;
	size_t		       nsub;
};

/*
 * Parses len bytes of JSON with at most max_depth nesting. The top level
 * must be an object. Returns BW_OK with *out (caller puts), BW_EINVAL on a
 * syntax error, trailing bytes or a non-object, BW_ETOOBIG past depth.
 */
enum bw_err
jv_parse(const char *s, size_t len, int max_depth, struct json_object **out);
/*
 * Checks obj against n fields. Returns BW_OK when it passes; BW_EINVAL with
 * *problems (a new json array, caller puts) listing every problem
 * ("required", "unknown_field", "wrong_type", "too_short", "too_long",
 * "too_small", "too_large", "not_allowed", "invalid_format", "too_many",
 * "too_few").
 */
enum bw_err jv_validate(struct json_object *obj, const struct jv_field *f,
    size_t n, struct json_object **problems);
/* Typed getters for validated objects; absent fields give the default. */
const char *jv_str(struct json_object *obj, const char *key, const char *dflt);
int64_t	    jv_int(struct json_object *obj, const char *key, int64_t dflt);
int	    jv_bool(struct json_object *obj, const char *key, int dflt);
/*
 * The UUID check of the whole tree (one implementation, two spellings):
 * jv_is_uuid() is 1 if s[0..len) is a canonical 8-4-4-4-12 UUID in either
 * case; jv_is_uuid_lc() is 1 if the string s is one in lower case, as
 * PostgreSQL prints them (ids that name files and directories).
 */
int jv_is_uuid(const char *s, size_t len);
int jv_is_uuid_lc(const char *s);
/*
 * The RFC 3339 parser of the whole tree (JV_RFC3339 fields, provider
 * timestamps): s[0..len) as an RFC 3339 §5.6 date-time, strictly
 * ("2024-05-01T10:00:00.123Z", "...+02:00"; upper-case T and Z, no leap
 * second, 1..9 fraction digits, year 0001..9999) into unix milliseconds
 * (fraction truncated). BW_OK with *ms, else BW_EINVAL (*ms untouched).
 */
enum bw_err jv_rfc3339_ms(const char *s, size_t len, int64_t *ms);
/* Characters (UTF-8 code points) in s, or -1 for invalid UTF-8. */
int64_t jv_utf8_len(const char *s, size_t len);
/* Compact JSON text of obj into a malloc'd string; NULL on ENOMEM. */
char *jv_dump(struct json_object *obj);

#ifdef BW_TESTING
/* Static functions of jv.c, visible to tests (STATIC in core/err.h). */
int jv_is_rfc3339(const char *s, size_t len);
#endif

#endif
