/* SPDX-License-Identifier: MIT */
/*
 * Cached chat settings: the value is struct budget_settings with its
 * pointers cleared, then the lengths and bytes of its three owned strings
 * and of the defaults it was filled with (an entry filled with other
 * defaults is a miss).
 */
#include <stdlib.h>
#include <string.h>

#include "chat/settings_cache.h"
#include "core/clock.h"
#include "core/jv.h"
#include "platform/pcache.h"

#define SC_NSTR 5

struct sc_head {
	struct budget_settings s;
	size_t		       len[SC_NSTR];
	int		       has[SC_NSTR];
};

int64_t
settings_cache_max_age_ms(int64_t day_left_ms, int64_t t0_ms, int64_t t1_ms)
{
	int64_t age;

	if (t1_ms < t0_ms)
		return 0;
	age = day_left_ms < SETTINGS_CACHE_MAX_AGE_MS
	    ? day_left_ms
	    : SETTINGS_CACHE_MAX_AGE_MS;
	age -= (t1_ms - t0_ms) + SETTINGS_CACHE_MARGIN_MS;
	return age > 0 ? age : 0;
}

/* Copies the strings of a cached value into out. BW_ENOMEM, BW_EINVAL. */
static enum bw_err
sc_load(const uint8_t *v, size_t vlen, const char *dp, const char *df,
    struct budget_settings *out)
{
	const struct sc_head *h = (const void *)v;
	const char	     *str[SC_NSTR];
	const char	     *p;
	size_t		      i, off = sizeof(*h);
	char		    **dst[3];

	if (vlen < sizeof(*h))
		return BW_EINVAL;
	for (i = 0; i < SC_NSTR; i++) {
		if (h->len[i] > vlen - off)
			return BW_EINVAL;
		str[i] = h->has[i] ? (const char *)v + off : NULL;
		off += h->len[i] + (h->has[i] ? 1 : 0);
		if (off > vlen)
			return BW_EINVAL;
	}
	if (strcmp(str[3] != NULL ? str[3] : "", dp != NULL ? dp : "") != 0 ||
	    strcmp(str[4] != NULL ? str[4] : "", df != NULL ? df : "") != 0)
		return BW_EINVAL;
	*out = h->s;
	out->system_prompt = out->fallback_reply = out->line_token = NULL;
	dst[0] = &out->system_prompt;
	dst[1] = &out->fallback_reply;
	dst[2] = &out->line_token;
	for (i = 0; i < 3; i++) {
		p = str[i];
		if (p == NULL)
			continue;
		*dst[i] = strdup(p);
		if (*dst[i] == NULL) {
			budget_settings_clear(out);
			return BW_ENOMEM;
		}
	}
	if (out->system_prompt == NULL) {
		budget_settings_clear(out);
		return BW_EINVAL;
	}
	return BW_OK;
}

/* Stores s (filled with defaults dp, df) under org_id. */
static void
sc_store(const char *org_id, const char *dp, const char *df,
    const struct budget_settings *s, int64_t max_age_ms)
{
	const char    *str[SC_NSTR] = { s->system_prompt, s->fallback_reply,
		   s->line_token, dp, df };
	struct sc_head h;
	uint8_t	      *v;
	size_t	       i, n = sizeof(h), off;

	memset(&h, 0, sizeof(h));
	h.s = *s;
	h.s.system_prompt = h.s.fallback_reply = h.s.line_token = NULL;
	for (i = 0; i < SC_NSTR; i++) {
		h.has[i] = str[i] != NULL;
		h.len[i] = str[i] != NULL ? strlen(str[i]) : 0;
		n += h.len[i] + (h.has[i] ? 1 : 0);
	}
	if (n > PCACHE_VAL_MAX)
		return;
	v = malloc(n);
	if (v == NULL)
		return;
	memcpy(v, &h, sizeof(h));
	off = sizeof(h);
	for (i = 0; i < SC_NSTR; i++) {
		if (!h.has[i])
			continue;
		memcpy(v + off, str[i], h.len[i] + 1);
		off += h.len[i] + 1;
	}
	(void)pcache_put(PC_CHAT_SETTINGS, org_id, strlen(org_id), v, n,
	    max_age_ms);
	free(v);
}

enum bw_err
budget_settings_get_cached(struct db *db, const char *org_id,
    const char *dflt_primary, const char *dflt_fallback,
    struct budget_settings *out)
{
	const void *v;
	size_t	    vlen = 0;
	int64_t	    t0, age;
	enum bw_err er;

	if (org_id == NULL || !jv_is_uuid(org_id, strlen(org_id)))
		return BW_ENOTFOUND;
	v = pcache_get(PC_CHAT_SETTINGS, org_id, strlen(org_id), &vlen);
	if (v != NULL) {
		er = sc_load(v, vlen, dflt_primary, dflt_fallback, out);
		if (er != BW_EINVAL)
			return er;
	}
	t0 = clock_mono_ms();
	er = budget_settings_get(db, org_id, dflt_primary, dflt_fallback, out);
	if (er != BW_OK)
		return er;
	age = settings_cache_max_age_ms(out->day_left_ms, t0, clock_mono_ms());
	if (age > 0)
		sc_store(org_id, dflt_primary, dflt_fallback, out, age);
	return BW_OK;
}
