/* SPDX-License-Identifier: MIT */
/*
 * Phone numbers: E.164 normalisation and validation, and the recipient
 * list of a new campaign (validated, normalised, sorted, deduplicated).
 * Pure code. See lib/campaign/campaign.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "campaign/campaign.h"
#include "core/limits.h"

const char *
e164_normalize(const char *in, char out[CAMPAIGN_E164_MAX + 1])
{
	const char *s = in;
	size_t	    nd = 0;

	out[0] = '\0';
	if (s == NULL)
		return "invalid_format";
	while (*s == ' ')
		s++;
	if (*s == '(')
		s++;
	if (s[0] == '+')
		s++;
	else if (s[0] == '0' && s[1] == '0')
		s += 2;
	else
		return "invalid_format";
	out[0] = '+';
	for (; *s != '\0'; s++) {
		if (*s == ' ' || *s == '-' || *s == '.' || *s == '(' ||
		    *s == ')')
			continue;
		if (*s < '0' || *s > '9')
			return "invalid_format";
		if (nd == 0 && *s == '0')
			return "invalid_format";
		if (nd >= 15)
			return "too_long";
		out[1 + nd++] = *s;
	}
	out[1 + nd] = '\0';
	if (nd < 7)
		return "too_short";
	return NULL;
}

static int
e164_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

void
campaign_numbers_free(struct campaign_numbers *l)
{
	if (l == NULL)
		return;
	free(l->num);
	memset(l, 0, sizeof(*l));
}

/* Appends {"field":"recipients[i]","problem":p} to arr (bounded). */
static void
e164_problem(struct json_object *arr, size_t i, const char *p)
{
	struct json_object *o;
	char		    f[48];

	if (json_object_array_length(arr) >= BW_MAX_FIELD_PROBLEMS)
		return;
	snprintf(f, sizeof(f), "recipients[%zu]", i);
	o = json_object_new_object();
	json_object_object_add(o, "field", json_object_new_string(f));
	json_object_object_add(o, "problem", json_object_new_string(p));
	json_object_array_add(arr, o);
}

enum bw_err
campaign_numbers_from_json(struct json_object *arr,
    struct campaign_numbers *out, struct json_object **problems)
{
	struct json_object *bad, *v;
	const char	   *p;
	size_t		    i, n, w;

	memset(out, 0, sizeof(*out));
	*problems = NULL;
	if (arr == NULL || !json_object_is_type(arr, json_type_array))
		return BW_EINVAL;
	n = json_object_array_length(arr);
	if (n == 0 || n > CAMPAIGN_MAX_RECIPIENTS)
		return BW_EINVAL;
	out->num = calloc(n, sizeof(*out->num));
	if (out->num == NULL)
		return BW_ENOMEM;
	bad = json_object_new_array();
	for (i = 0; i < n; i++) {
		v = json_object_array_get_idx(arr, i);
		if (!json_object_is_type(v, json_type_string)) {
			e164_problem(bad, i, "wrong_type");
			continue;
		}
		if (json_object_get_string_len(v) > CAMPAIGN_PHONE_IN_MAX) {
			e164_problem(bad, i, "too_long");
			continue;
		}
		p = e164_normalize(json_object_get_string(v), out->num[i]);
		if (p != NULL)
			e164_problem(bad, i, p);
	}
	if (json_object_array_length(bad) > 0) {
		*problems = bad;
		campaign_numbers_free(out);
		return BW_EINVAL;
	}
	json_object_put(bad);
	qsort(out->num, n, sizeof(*out->num), e164_cmp);
	for (i = 1, w = 1; i < n; i++)
		if (strcmp(out->num[i], out->num[w - 1]) != 0)
			memcpy(out->num[w++], out->num[i], sizeof(*out->num));
	out->n = w;
	out->duplicates = n - w;
	return BW_OK;
}
