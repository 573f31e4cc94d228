/* SPDX-License-Identifier: MIT */
/*
 * bulwarkctl --human: the JSON a command prints, for people. A list of
 * objects becomes a table (one column per key of its rows, in the order of
 * the first row); a scalar becomes "key: value", a nested object
 * "key.sub: value"; null is "-". JSON stays the default for scripts.
 */
#include <stdio.h>
#include <string.h>

#include "ctl.h"

#define CTL_HUMAN_COLS	32
#define CTL_HUMAN_WIDTH 60 /* a longer cell is cut with "..." */

/* The text of a cell: a string as is, null as "-", the rest as JSON. */
static const char *
ctl_human_cell(struct json_object *v)
{
	if (v == NULL)
		return "-";
	if (json_object_is_type(v, json_type_string))
		return json_object_get_string(v);
	return json_object_to_json_string_ext(v,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
}

static int
ctl_human_len(const char *s)
{
	size_t n = strlen(s);

	return n > CTL_HUMAN_WIDTH ? CTL_HUMAN_WIDTH : (int)n;
}

static void
ctl_human_put(FILE *f, const char *s, int width, int last)
{
	size_t n = strlen(s);

	if (n > CTL_HUMAN_WIDTH)
		fprintf(f, "%.*s...", CTL_HUMAN_WIDTH - 3, s);
	else
		fputs(s, f);
	if (!last)
		fprintf(f, "%*s", width - ctl_human_len(s) + 2, "");
}

/* A table of the objects of arr, indented by ind spaces. */
static void
ctl_human_table(FILE *f, struct json_object *arr, int ind)
{
	const char	   *cols[CTL_HUMAN_COLS];
	int		    w[CTL_HUMAN_COLS];
	struct json_object *row, *v;
	size_t		    i, n = json_object_array_length(arr);
	int		    nc = 0, k;

	row = json_object_array_get_idx(arr, 0);
	json_object_object_foreach(row, key, val)
	{
		(void)val;
		if (nc < CTL_HUMAN_COLS) {
			cols[nc] = key;
			w[nc] = (int)strlen(key);
			nc++;
		}
	}
	for (i = 0; i < n; i++) {
		row = json_object_array_get_idx(arr, i);
		for (k = 0; k < nc; k++) {
			v = NULL;
			json_object_object_get_ex(row, cols[k], &v);
			if (ctl_human_len(ctl_human_cell(v)) > w[k])
				w[k] = ctl_human_len(ctl_human_cell(v));
		}
	}
	fprintf(f, "%*s", ind, "");
	for (k = 0; k < nc; k++)
		ctl_human_put(f, cols[k], w[k], k == nc - 1);
	fputc('\n', f);
	for (i = 0; i < n; i++) {
		row = json_object_array_get_idx(arr, i);
		fprintf(f, "%*s", ind, "");
		for (k = 0; k < nc; k++) {
			v = NULL;
			json_object_object_get_ex(row, cols[k], &v);
			ctl_human_put(f, ctl_human_cell(v), w[k], k == nc - 1);
		}
		fputc('\n', f);
	}
}

/* Whether arr is a non-empty list of objects only. */
static int
ctl_human_rows(struct json_object *arr)
{
	size_t i, n = json_object_array_length(arr);

	for (i = 0; i < n; i++)
		if (!json_object_is_type(json_object_array_get_idx(arr, i),
			json_type_object))
			return 0;
	return n > 0;
}

static void
ctl_human_obj(FILE *f, struct json_object *o, const char *prefix)
{
	char path[256];

	json_object_object_foreach(o, key, v)
	{
		snprintf(path, sizeof(path), "%s%s%s", prefix,
		    prefix[0] != '\0' ? "." : "", key);
		if (json_object_is_type(v, json_type_object) &&
		    json_object_object_length(v) > 0)
			ctl_human_obj(f, v, path);
		else if (json_object_is_type(v, json_type_array) &&
		    ctl_human_rows(v)) {
			fprintf(f, "%s: %zu\n", path,
			    json_object_array_length(v));
			ctl_human_table(f, v, 2);
		} else if (json_object_is_type(v, json_type_array) &&
		    json_object_array_length(v) == 0)
			fprintf(f, "%s: (none)\n", path);
		else
			fprintf(f, "%s: %s\n", path, ctl_human_cell(v));
	}
}

void
ctl_human_print(FILE *f, struct json_object *obj)
{
	if (json_object_is_type(obj, json_type_array) && ctl_human_rows(obj))
		ctl_human_table(f, obj, 0);
	else if (json_object_is_type(obj, json_type_object))
		ctl_human_obj(f, obj, "");
	else
		fprintf(f, "%s\n", ctl_human_cell(obj));
}
