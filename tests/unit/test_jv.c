/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of lib/jv: the strict parse (depth, trailing bytes, UTF-8,
 * duplicates, NaN) and table-driven validation of each problem kind.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/jv.h"
#include "core/limits.h"

struct parse_case {
	const char *in;
	size_t	    len; /* 0: strlen(in) */
	int	    depth;
	enum bw_err want;
};

#define S(x) x, sizeof(x) - 1

static const struct parse_case parse_cases[] = {
	{ S("{}"), 8, BW_OK },
	{ S("  {\"a\":1}  \n\r\t"), 8, BW_OK },
	{ S("{\"a\":{\"b\":[1,{\"c\":[]}]}}"), 8, BW_OK },
	{ S("{\"e\":\"h\\u00e9 \xc3\xa9 \xf0\x9f\x98\x80\"}"), 8, BW_OK },
	{ S("{\"a\":18446744073709551616}"), 8, BW_OK },
	/* depth: "{}" and {"a":1} are 1, {"a":[1]} is 2 */
	{ S("{\"a\":1}"), 1, BW_OK },
	{ S("{}"), 1, BW_OK },
	{ S("{\"a\":[1]}"), 1, BW_ETOOBIG },
	{ S("{\"a\":[1]}"), 2, BW_OK },
	{ S("{\"a\":{\"b\":{}}}"), 2, BW_ETOOBIG },
	{ S("{\"a\":[[[[[[[[[[]]]]]]]]]]}"), 8, BW_ETOOBIG },
	{ S("{\"a\":\"[[[[[[[[[[[[\"}"), 2, BW_OK },
	/* not an object */
	{ S("[]"), 8, BW_EINVAL },
	{ S("1"), 8, BW_EINVAL },
	{ S("\"x\""), 8, BW_EINVAL },
	{ S("null"), 8, BW_EINVAL },
	/* trailing garbage, truncation, syntax */
	{ S("{}x"), 8, BW_EINVAL },
	{ S("{} {}"), 8, BW_EINVAL },
	{ S("{}\f"), 8, BW_EINVAL },
	{ S("{\"a\":1"), 8, BW_EINVAL },
	{ S("{\"a\":1,}"), 8, BW_EINVAL },
	{ S("{\"a\":'x'}"), 8, BW_EINVAL },
	{ S("{/*c*/\"a\":1}"), 8, BW_EINVAL },
	{ S("{\"a\":01}"), 8, BW_EINVAL },
	{ S("{\"a\":+1}"), 8, BW_EINVAL },
	{ S(""), 8, BW_EINVAL },
	{ S("   "), 8, BW_EINVAL },
	/* json-c lets these through; we do not */
	{ S("{\"a\":NaN}"), 8, BW_EINVAL },
	{ S("{\"a\":Infinity}"), 8, BW_EINVAL },
	{ S("{\"a\":-Infinity}"), 8, BW_EINVAL },
	{ S("{\"a\":\"x\ty\"}"), 8, BW_EINVAL },
	{ S("{\"a\":1,\"a\":2}"), 8, BW_EINVAL },
	{ S("{\"o\":{\"a\":1,\"b\":2,\"a\":3}}"), 8, BW_EINVAL },
	{ S("{\"a\":1,\"\\u0061\":2}"), 8, BW_EINVAL },
	/* NUL bytes and invalid UTF-8 */
	{ S("{\"a\":\"x\0y\"}"), 8, BW_EINVAL },
	{ S("{}\0"), 8, BW_EINVAL },
	{ S("{\"a\":\"\xff\"}"), 8, BW_EINVAL },
	{ S("{\"a\":\"\xc0\xaf\"}"), 8, BW_EINVAL },
	{ S("{\"a\":\"\xed\xa0\x80\"}"), 8, BW_EINVAL },
	{ S("{\"a\":\"\xf4\x90\x80\x80\"}"), 8, BW_EINVAL },
	{ S("{\"a\":\"\xe2\x82\"}"), 8, BW_EINVAL },
	{ S("{\"\xc3\":1}"), 8, BW_EINVAL },
};

static void
test_parse_table(void **state)
{
	struct json_object *o;
	enum bw_err	    er;
	size_t		    i;

	(void)state;
	for (i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
		o = NULL;
		er = jv_parse(parse_cases[i].in, parse_cases[i].len,
		    parse_cases[i].depth, &o);
		if (er != parse_cases[i].want)
			fail_msg("case %zu (%s): got %d want %d", i,
			    parse_cases[i].in, er, parse_cases[i].want);
		if (er == BW_OK)
			assert_non_null(o);
		else
			assert_null(o);
		json_object_put(o);
	}
}

static void
test_parse_deep(void **state)
{
	char		    in[4096];
	struct json_object *o = NULL;
	size_t		    i, n = 0;

	(void)state;
	in[n++] = '{';
	in[n++] = '"';
	in[n++] = 'a';
	in[n++] = '"';
	in[n++] = ':';
	for (i = 0; i < 1000; i++)
		in[n++] = '[';
	for (i = 0; i < 1000; i++)
		in[n++] = ']';
	in[n++] = '}';
	assert_int_equal(jv_parse(in, n, BW_MAX_JSON_DEPTH, &o), BW_ETOOBIG);
	assert_null(o);
}

static const char *const colours[] = { "red", "green", NULL };

static int
no_spaces(const char *s, size_t len)
{
	return memchr(s, ' ', len) != NULL;
}

/* Member rules of "where" (one nested level, names "where.<member>"). */
static const struct jv_field where_fields[] = {
	{ "city", JV_STRING, 1, 1, 3, NULL, no_spaces, 0, NULL, 0 },
	{ "n", JV_INT, 0, 0, 9, NULL, NULL, 0, NULL, 0 },
};

static const struct jv_field fields[] = {
	{ "name", JV_STRING, 1, 2, 5, NULL, no_spaces, 0, NULL, 0 },
	{ "count", JV_INT, 0, -3, 100, NULL, NULL, 0, NULL, 0 },
	{ "any", JV_INT, 0, 0, 0, NULL, NULL, 0, NULL, 0 },
	{ "flag", JV_BOOL, 0, 0, 0, NULL, NULL, 0, NULL, 0 },
	{ "id", JV_UUID, 0, 0, 0, NULL, NULL, 0, NULL, 0 },
	{ "colour", JV_ENUM, 0, 0, 0, colours, NULL, 0, NULL, 0 },
	{ "at", JV_RFC3339, 0, 0, 0, NULL, NULL, 0, NULL, 0 },
	{ "tags", JV_ARRAY, 0, 1, 3, NULL, NULL, JV_STRING, NULL, 0 },
	{ "ids", JV_ARRAY, 0, 0, 0, NULL, NULL, JV_UUID, NULL, 0 },
	{ "nums", JV_ARRAY, 0, 0, 4, NULL, NULL, JV_INT, NULL, 0 },
	{ "meta", JV_OBJECT, 0, 0, 0, NULL, NULL, 0, NULL, 0 },
	{ "where", JV_OBJECT, 0, 0, 0, NULL, NULL, 0, where_fields, 2 },
};
#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

struct val_case {
	const char *in;
	const char *want; /* NULL: passes */
};

#define P(f, p) "{\"field\":\"" f "\",\"problem\":\"" p "\"}"
#define UUID	"0e8f5a8c-3b1d-4c2e-9f00-1a2b3c4d5e6f"

static const struct val_case val_cases[] = {
	{ "{\"name\":\"ab\"}", NULL },
	{ "{\"name\":\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\"}", NULL },
	{ "{\"name\":\"abcde\",\"count\":-3,\"any\":-9223372036854775808,"
	  "\"flag\":false,\"id\":\"" UUID "\",\"colour\":\"green\","
	  "\"at\":\"2024-02-29T23:59:59.123456+05:30\",\"tags\":[\"x\"],"
	  "\"ids\":[],\"nums\":[1,-2,9223372036854775807],"
	  "\"meta\":{\"x\":[1,\"y\"]}}",
	    NULL },
	{ "{\"name\":\"ab\",\"id\":\"0E8F5A8C-3B1D-4C2E-9F00-1A2B3C4D5E6F\"}",
	    NULL },
	{ "{\"name\":\"ab\",\"any\":9223372036854775807}", NULL },
	/* required, unknown */
	{ "{}", "[" P("name", "required") "]" },
	{ "{\"name\":\"ab\",\"nope\":1,\"x\":2}",
	    "[" P("nope", "unknown_field") "," P("x", "unknown_field") "]" },
	/* strings: length in characters, pattern */
	{ "{\"name\":\"a\"}", "[" P("name", "too_short") "]" },
	{ "{\"name\":\"abcdef\"}", "[" P("name", "too_long") "]" },
	{ "{\"name\":\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\"}",
	    "[" P("name", "too_long") "]" },
	{ "{\"name\":\"a b\"}", "[" P("name", "invalid_format") "]" },
	{ "{\"name\":\"a\\u0000b\"}", "[" P("name", "invalid_format") "]" },
	{ "{\"name\":1}", "[" P("name", "wrong_type") "]" },
	{ "{\"name\":null}", "[" P("name", "wrong_type") "]" },
	/* integers: no fractions, no strings, bounds, int64 range */
	{ "{\"name\":\"ab\",\"count\":1.5}", "[" P("count", "wrong_type") "]" },
	{ "{\"name\":\"ab\",\"count\":1.0}", "[" P("count", "wrong_type") "]" },
	{ "{\"name\":\"ab\",\"count\":1e2}", "[" P("count", "wrong_type") "]" },
	{ "{\"name\":\"ab\",\"count\":\"5\"}",
	    "[" P("count", "wrong_type") "]" },
	{ "{\"name\":\"ab\",\"count\":true}",
	    "[" P("count", "wrong_type") "]" },
	{ "{\"name\":\"ab\",\"count\":-4}", "[" P("count", "too_small") "]" },
	{ "{\"name\":\"ab\",\"count\":101}", "[" P("count", "too_large") "]" },
	{ "{\"name\":\"ab\",\"any\":9223372036854775808}",
	    "[" P("any", "too_large") "]" },
	{ "{\"name\":\"ab\",\"any\":123456789012345678901234567890}",
	    "[" P("any", "too_large") "]" },
	{ "{\"name\":\"ab\",\"count\":99999999999999999999}",
	    "[" P("count", "too_large") "]" },
	/* bool, uuid, enum, rfc3339, object */
	{ "{\"name\":\"ab\",\"flag\":1}", "[" P("flag", "wrong_type") "]" },
	{ "{\"name\":\"ab\",\"id\":\"0e8f5a8c3b1d4c2e9f001a2b3c4d5e6f\"}",
	    "[" P("id", "invalid_format") "]" },
	{ "{\"name\":\"ab\",\"id\":\"{" UUID "}\"}",
	    "[" P("id", "invalid_format") "]" },
	{ "{\"name\":\"ab\",\"colour\":\"blue\"}",
	    "[" P("colour", "not_allowed") "]" },
	{ "{\"name\":\"ab\",\"colour\":\"Red\"}",
	    "[" P("colour", "not_allowed") "]" },
	{ "{\"name\":\"ab\",\"at\":\"2023-02-29T00:00:00Z\"}",
	    "[" P("at", "invalid_format") "]" },
	{ "{\"name\":\"ab\",\"meta\":[]}", "[" P("meta", "wrong_type") "]" },
	/* objects with member rules: problems named "where.<member>" */
	{ "{\"name\":\"ab\",\"where\":{\"city\":\"abc\",\"n\":9}}", NULL },
	{ "{\"name\":\"ab\",\"where\":{}}",
	    "[" P("where.city", "required") "]" },
	{ "{\"name\":\"ab\",\"where\":{\"city\":\"a b\",\"n\":10,\"q\":1}}",
	    "[" P("where.city", "invalid_format") "," P("where.n",
		"too_large") "," P("where.q", "unknown_field") "]" },
	{ "{\"name\":\"ab\",\"where\":{\"city\":null}}",
	    "[" P("where.city", "wrong_type") "]" },
	{ "{\"name\":\"ab\",\"where\":[]}", "[" P("where", "wrong_type") "]" },
	/* arrays: counts, item types reported with their index */
	{ "{\"name\":\"ab\",\"tags\":[]}", "[" P("tags", "too_few") "]" },
	{ "{\"name\":\"ab\",\"tags\":[\"a\",\"b\",\"c\",\"d\"]}",
	    "[" P("tags", "too_many") "]" },
	{ "{\"name\":\"ab\",\"tags\":\"a\"}", "[" P("tags", "wrong_type") "]" },
	{ "{\"name\":\"ab\",\"tags\":[\"a\",1,\"b\\u0000c\"]}",
	    "[" P("tags[1]", "wrong_type") "," P("tags[2]",
		"invalid_format") "]" },
	{ "{\"name\":\"ab\",\"ids\":[\"" UUID "\",\"x\",\"" UUID "\","
	  "\"" UUID "\"]}",
	    "[" P("ids[1]", "invalid_format") "]" },
	{ "{\"name\":\"ab\",\"nums\":[1,2.5,\"3\",9223372036854775808]}",
	    "[" P("nums[1]", "wrong_type") "," P("nums[2]",
		"wrong_type") "," P("nums[3]", "too_large") "]" },
	/* every problem at once, fields in table order, unknown last */
	{ "{\"zz\":0,\"count\":0.5,\"flag\":\"yes\",\"id\":\"x\","
	  "\"colour\":\"blue\",\"at\":\"now\",\"tags\":[],\"meta\":1}",
	    "[" P("name", "required") "," P("count", "wrong_type") "," P("flag",
		"wrong_type") "," P("id", "invalid_format") "," P("colour",
		"not_allowed") "," P("at", "invalid_format") "," P("tags",
		"too_few") "," P("meta", "wrong_type") "," P("zz",
		"unknown_field") "]" },
};

static void
test_validate_table(void **state)
{
	struct json_object *o, *pr;
	enum bw_err	    er;
	char		   *got;
	size_t		    i;

	(void)state;
	for (i = 0; i < sizeof(val_cases) / sizeof(val_cases[0]); i++) {
		o = NULL;
		er = jv_parse(val_cases[i].in, strlen(val_cases[i].in), 8, &o);
		if (er != BW_OK)
			fail_msg("case %zu: parse failed %d", i, er);
		pr = NULL;
		er = jv_validate(o, fields, NFIELDS, &pr);
		if (val_cases[i].want == NULL) {
			if (er != BW_OK)
				fail_msg("case %zu: got %d %s", i, er,
				    json_object_to_json_string(pr));
			assert_null(pr);
		} else {
			if (er != BW_EINVAL)
				fail_msg("case %zu: got %d", i, er);
			got = jv_dump(pr);
			assert_non_null(got);
			if (strcmp(got, val_cases[i].want) != 0)
				fail_msg("case %zu:\n got %s\nwant %s", i, got,
				    val_cases[i].want);
			free(got);
		}
		json_object_put(pr);
		json_object_put(o);
	}
}

static void
test_validate_problem_cap(void **state)
{
	struct json_object *o, *pr = NULL;
	char		    k[32];
	int		    i;

	(void)state;
	o = json_object_new_object();
	assert_non_null(o);
	for (i = 0; i < 1000; i++) {
		snprintf(k, sizeof(k), "k%d", i);
		json_object_object_add(o, k, json_object_new_int(i));
	}
	assert_int_equal(jv_validate(o, fields, NFIELDS, &pr), BW_EINVAL);
	assert_int_equal(json_object_array_length(pr), BW_MAX_FIELD_PROBLEMS);
	json_object_put(pr);
	json_object_put(o);
}

static void
test_validate_not_object(void **state)
{
	struct json_object *a, *pr = NULL;

	(void)state;
	a = json_object_new_array();
	assert_int_equal(jv_validate(a, fields, NFIELDS, &pr), BW_EINVAL);
	assert_int_equal(json_object_array_length(pr), 1);
	json_object_put(pr);
	json_object_put(a);
}

struct utf8_case {
	const char *s;
	size_t	    len;
	int64_t	    want;
};

static const struct utf8_case utf8_cases[] = {
	{ S(""), 0 },
	{ S("abc"), 3 },
	{ S("\xc3\xa9"), 1 },
	{ S("\xe2\x82\xac"), 1 },
	{ S("\xf0\x9f\x98\x80x"), 2 },
	{ S("\xf4\x8f\xbf\xbf"), 1 },
	{ S("a\0b"), 3 },
	{ S("\x80"), -1 },
	{ S("\xc1\xbf"), -1 },	       /* overlong */
	{ S("\xe0\x9f\xbf"), -1 },     /* overlong */
	{ S("\xf0\x8f\xbf\xbf"), -1 }, /* overlong */
	{ S("\xed\xbf\xbf"), -1 },     /* surrogate */
	{ S("\xf4\x90\x80\x80"), -1 }, /* > U+10FFFF */
	{ S("\xf5\x80\x80\x80"), -1 },
	{ S("\xc3"), -1 }, /* truncated */
	{ S("\xe2\x82"), -1 },
	{ S("\xc3\x28"), -1 },
	{ S("\xfe"), -1 },
};

static void
test_utf8_len(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(utf8_cases) / sizeof(utf8_cases[0]); i++)
		if (jv_utf8_len(utf8_cases[i].s, utf8_cases[i].len) !=
		    utf8_cases[i].want)
			fail_msg("utf8 case %zu", i);
}

struct str_case {
	const char *s;
	int	    want;
};

static const struct str_case uuid_cases[] = {
	{ UUID, 1 },
	{ "00000000-0000-0000-0000-000000000000", 1 },
	{ "ABCDEF01-2345-6789-abcd-ef0123456789", 1 },
	{ "0e8f5a8c-3b1d-4c2e-9f00-1a2b3c4d5e6", 0 },
	{ "0e8f5a8c-3b1d-4c2e-9f00-1a2b3c4d5e6f0", 0 },
	{ "0e8f5a8c-3b1d-4c2e-9f00_1a2b3c4d5e6f", 0 },
	{ "0e8f5a8g-3b1d-4c2e-9f00-1a2b3c4d5e6f", 0 },
	{ "0e8f5a8c3-b1d-4c2e-9f00-1a2b3c4d5e6f", 0 },
	{ "", 0 },
};

static void
test_is_uuid(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(uuid_cases) / sizeof(uuid_cases[0]); i++)
		if (jv_is_uuid(uuid_cases[i].s, strlen(uuid_cases[i].s)) !=
		    uuid_cases[i].want)
			fail_msg("uuid case %zu: %s", i, uuid_cases[i].s);
}

static const struct str_case ts_cases[] = {
	{ "2024-01-31T12:34:56Z", 1 },
	{ "2024-01-31T12:34:56.1Z", 1 },
	{ "2024-01-31T12:34:56.123456789Z", 1 },
	{ "2024-01-31T12:34:56+00:00", 1 },
	{ "2024-01-31T12:34:56-23:59", 1 },
	{ "2000-02-29T00:00:00Z", 1 },
	{ "0001-01-01T00:00:00Z", 1 },
	{ "9999-12-31T23:59:59Z", 1 },
	{ "1900-02-29T00:00:00Z", 0 },
	{ "2023-02-29T00:00:00Z", 0 },
	{ "2024-04-31T00:00:00Z", 0 },
	{ "2024-13-01T00:00:00Z", 0 },
	{ "2024-00-01T00:00:00Z", 0 },
	{ "2024-01-00T00:00:00Z", 0 },
	{ "0000-01-01T00:00:00Z", 0 },
	{ "2024-01-31T24:00:00Z", 0 },
	{ "2024-01-31T23:60:00Z", 0 },
	{ "2024-01-31T23:59:60Z", 0 },
	{ "2024-01-31T12:34:56", 0 },
	{ "2024-01-31 12:34:56Z", 0 },
	{ "2024-01-31t12:34:56z", 0 },
	{ "2024-01-31T12:34:56.Z", 0 },
	{ "2024-01-31T12:34:56.1234567890Z", 0 },
	{ "2024-01-31T12:34:56+24:00", 0 },
	{ "2024-01-31T12:34:56+05:60", 0 },
	{ "2024-01-31T12:34:56+0530", 0 },
	{ "2024-01-31T12:34:56Z ", 0 },
	{ "2024-1-31T12:34:56Z", 0 },
	{ "", 0 },
	{ "2024", 0 },
};

static void
test_rfc3339(void **state)
{
	size_t	i;
	int64_t ms;
	int	ok;

	(void)state;
	for (i = 0; i < sizeof(ts_cases) / sizeof(ts_cases[0]); i++) {
		ms = 42;
		ok = jv_rfc3339_ms(ts_cases[i].s, strlen(ts_cases[i].s), &ms) ==
		    BW_OK;
		if (ok != ts_cases[i].want)
			fail_msg("rfc3339 case %zu: %s", i, ts_cases[i].s);
		if (!ok && ms != 42)
			fail_msg("rfc3339 case %zu: *ms touched", i);
	}
	/* A length short of the NUL is honoured. */
	assert_int_equal(jv_rfc3339_ms("2024-01-31T12:34:56Z", 19, &ms),
	    BW_EINVAL);
	assert_int_equal(jv_rfc3339_ms(NULL, 0, &ms), BW_EINVAL);
}

/* Values of jv_rfc3339_ms(), checked against Python's datetime. */
static const struct {
	const char *s;
	int64_t	    ms;
} ms_cases[] = {
	{ "1970-01-01T00:00:00Z", INT64_C(0) },
	{ "2024-05-01T10:00:05.250Z", INT64_C(1714557605250) },
	{ "2024-05-01T10:00:01Z", INT64_C(1714557601000) },
	{ "2024-05-01T12:00:00+01:00", INT64_C(1714561200000) },
	{ "2024-01-31T12:34:56.123456789Z", INT64_C(1706704496123) },
	{ "2024-01-31T12:34:56.1Z", INT64_C(1706704496100) },
	{ "2024-01-31T12:34:56.12Z", INT64_C(1706704496120) },
	{ "2024-01-31T12:34:56-23:59", INT64_C(1706790836000) },
	{ "2000-02-29T23:59:59.999+00:00", INT64_C(951868799999) },
	{ "1969-12-31T23:59:59Z", INT64_C(-1000) },
	{ "0001-01-01T00:00:00Z", INT64_C(-62135596800000) },
	{ "9999-12-31T23:59:59.999Z", INT64_C(253402300799999) },
	{ "2100-03-01T00:00:00Z", INT64_C(4107542400000) },
};

static void
test_rfc3339_ms(void **state)
{
	size_t	i;
	int64_t ms;

	(void)state;
	for (i = 0; i < sizeof(ms_cases) / sizeof(ms_cases[0]); i++) {
		ms = 42;
		if (jv_rfc3339_ms(ms_cases[i].s, strlen(ms_cases[i].s), &ms) !=
			BW_OK ||
		    ms != ms_cases[i].ms)
			fail_msg("rfc3339 ms case %zu: %s gave %lld", i,
			    ms_cases[i].s, (long long)ms);
	}
}

static const struct str_case uuid_lc_cases[] = {
	{ UUID, 1 },
	{ "00000000-0000-0000-0000-000000000000", 1 },
	{ "ABCDEF01-2345-6789-abcd-ef0123456789", 0 },
	{ "0e8f5a8c-3b1d-4c2e-9f00-1a2b3c4d5e6F", 0 },
	{ "0e8f5a8c-3b1d-4c2e-9f00-1a2b3c4d5e6", 0 },
	{ "0e8f5a8c-3b1d-4c2e-9f00-1a2b3c4d5e6f0", 0 },
	{ "", 0 },
};

static void
test_is_uuid_lc(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(uuid_lc_cases) / sizeof(uuid_lc_cases[0]); i++)
		if (jv_is_uuid_lc(uuid_lc_cases[i].s) != uuid_lc_cases[i].want)
			fail_msg("uuid_lc case %zu: %s", i, uuid_lc_cases[i].s);
	assert_int_equal(jv_is_uuid_lc(NULL), 0);
}

static void
test_getters_and_dump(void **state)
{
	static const char   in[] = "{\"s\":\"a/b\",\"i\":-42,\"b\":true,"
				   "\"big\":9007199254740993}";
	struct json_object *o = NULL;
	char		   *d;

	(void)state;
	assert_int_equal(jv_parse(in, sizeof(in) - 1, 8, &o), BW_OK);
	assert_string_equal(jv_str(o, "s", "x"), "a/b");
	assert_string_equal(jv_str(o, "i", "dflt"), "dflt");
	assert_null(jv_str(o, "missing", NULL));
	assert_int_equal(jv_int(o, "i", 7), -42);
	assert_int_equal(jv_int(o, "big", 7), 9007199254740993LL);
	assert_int_equal(jv_int(o, "s", 7), 7);
	assert_int_equal(jv_int(o, "missing", 7), 7);
	assert_int_equal(jv_bool(o, "b", 0), 1);
	assert_int_equal(jv_bool(o, "i", 0), 0);
	assert_int_equal(jv_bool(o, "missing", 1), 1);
	d = jv_dump(o);
	assert_non_null(d);
	assert_string_equal(d,
	    "{\"s\":\"a/b\",\"i\":-42,\"b\":true,"
	    "\"big\":9007199254740993}");
	free(d);
	json_object_put(o);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_table),
		cmocka_unit_test(test_parse_deep),
		cmocka_unit_test(test_validate_table),
		cmocka_unit_test(test_validate_problem_cap),
		cmocka_unit_test(test_validate_not_object),
		cmocka_unit_test(test_utf8_len),
		cmocka_unit_test(test_is_uuid),
		cmocka_unit_test(test_is_uuid_lc),
		cmocka_unit_test(test_rfc3339_ms),
		cmocka_unit_test(test_rfc3339),
		cmocka_unit_test(test_getters_and_dump),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
