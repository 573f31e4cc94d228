/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness for lib/core/jv.c: the bounded JSON parse (depth and size)
 * and declarative validation against a field table of every type, as a
 * request body takes them (fcgi/h_*.c).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/jv.h"
#include "core/limits.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static const char *const modes[] = { "fast", "careful", "", NULL };

/* A pattern check as handlers write them: no blanks. */
static int
no_blank(const char *s, size_t len)
{
	return memchr(s, ' ', len) != NULL;
}

/* Member rules of "where" (the nested path of jv_validate()). */
static const struct jv_field where_fields[] = {
	{ "city", JV_STRING, 1, 1, 32, NULL, no_blank, 0, NULL, 0 },
	{ "n", JV_INT, 0, 0, 9, NULL, NULL, 0, NULL, 0 },
};

static const struct jv_field fields[] = {
	{ "message", JV_STRING, 1, 1, 4000, NULL, NULL, 0, NULL, 0 },
	{ "name", JV_STRING, 0, 2, 64, NULL, no_blank, 0, NULL, 0 },
	{ "amount", JV_INT, 0, -1000000000, 1000000000, NULL, NULL, 0, NULL,
	    0 },
	{ "any", JV_INT, 0, 0, 0, NULL, NULL, 0, NULL, 0 },
	{ "stream", JV_BOOL, 0, 0, 0, NULL, NULL, 0, NULL, 0 },
	{ "account_id", JV_UUID, 0, 0, 0, NULL, NULL, 0, NULL, 0 },
	{ "mode", JV_ENUM, 0, 0, 0, modes, NULL, 0, NULL, 0 },
	{ "at", JV_RFC3339, 0, 0, 0, NULL, NULL, 0, NULL, 0 },
	{ "tags", JV_ARRAY, 0, 0, 8, NULL, NULL, JV_STRING, NULL, 0 },
	{ "ids", JV_ARRAY, 0, 1, 4, NULL, NULL, JV_UUID, NULL, 0 },
	{ "nums", JV_ARRAY, 0, 0, 16, NULL, NULL, JV_INT, NULL, 0 },
	{ "modes", JV_ARRAY, 0, 0, 3, modes, NULL, JV_ENUM, NULL, 0 },
	{ "times", JV_ARRAY, 0, 0, 3, NULL, NULL, JV_RFC3339, NULL, 0 },
	{ "meta", JV_OBJECT, 0, 0, 0, NULL, NULL, 0, NULL, 0 },
	{ "where", JV_OBJECT, 0, 0, 0, NULL, NULL, 0, where_fields, 2 },
};
#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct json_object *o = NULL, *problems = NULL;
	const char	   *s = (const char *)data;
	enum bw_err	    er;
	char		   *txt;

	/* The raw helpers take any bytes. */
	(void)jv_utf8_len(s, size);
	(void)jv_is_uuid(s, size);

	er = jv_parse(s, size, BW_MAX_JSON_DEPTH, &o);
	if (er != BW_OK) {
		if (o != NULL)
			abort(); /* out-parameter touched on failure */
		return 0;
	}
	if (o == NULL || !json_object_is_type(o, json_type_object))
		abort();
	er = jv_validate(o, fields, NFIELDS, &problems);
	if (er == BW_OK) {
		if (problems != NULL)
			abort();
		/* Validated: the getters must agree with the table. */
		(void)jv_str(o, "message", NULL);
		(void)jv_str(o, "name", "");
		if (jv_int(o, "amount", 0) < -1000000000 ||
		    jv_int(o, "amount", 0) > 1000000000)
			abort();
		(void)jv_bool(o, "stream", 0);
	} else if (er == BW_EINVAL) {
		if (problems == NULL ||
		    !json_object_is_type(problems, json_type_array) ||
		    json_object_array_length(problems) == 0)
			abort();
		if ((txt = jv_dump(problems)) == NULL)
			abort();
		free(txt);
		json_object_put(problems);
	}
	if ((txt = jv_dump(o)) != NULL)
		free(txt);
	json_object_put(o);
	return 0;
}
