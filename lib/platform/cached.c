/* SPDX-License-Identifier: MIT */
/* Cached reads of keys and rate-limit overrides (see cached.h). */
#include <stdio.h>
#include <string.h>

#include "platform/cached.h"
#include "platform/pcache.h"

/* The value of a PC_RATE entry. */
struct cached_ov {
	size_t	       n;
	struct rl_rule r[RL__MAX * 2];
};

enum bw_err
cached_auth(struct db *db, const uint8_t h[32], struct auth_principal *p,
    int *hit)
{
	const void *v;
	size_t	    vlen = 0;
	enum bw_err er;

	*hit = 0;
	v = pcache_get(PC_AUTH, h, 32, &vlen);
	if (v != NULL && vlen == sizeof(*p)) {
		memcpy(p, v, sizeof(*p));
		*hit = 1;
		return BW_OK;
	}
	if (pcache_get(PC_AUTH_NEG, h, 32, &vlen) != NULL) {
		*hit = 1;
		return BW_EAUTH;
	}
	er = auth_key_verify_hash(db, h, p);
	if (er == BW_OK)
		(void)pcache_put(PC_AUTH, h, 32, p, sizeof(*p), 0);
	else if (er == BW_EAUTH)
		(void)pcache_put(PC_AUTH_NEG, h, 32, "", 0, 0);
	return er;
}

enum bw_err
cached_rl_overrides(struct db *db, const char *org_id, const char *route,
    struct rl_rule *out, size_t max, size_t *n, int *hit)
{
	struct cached_ov ov;
	const void	*v;
	char		 key[PCACHE_KEY_MAX];
	size_t		 vlen = 0;
	enum bw_err	 er;
	int		 kl;

	*hit = 0;
	kl = snprintf(key, sizeof(key), "%s:%s", org_id != NULL ? org_id : "",
	    route != NULL ? route : "");
	if (kl <= 0 || (size_t)kl >= sizeof(key))
		return rl_overrides(db, org_id, route, out, max, n);
	v = pcache_get(PC_RATE, key, (size_t)kl, &vlen);
	if (v != NULL && vlen == sizeof(ov)) {
		memcpy(&ov, v, sizeof(ov));
		*n = ov.n < max ? ov.n : max;
		memcpy(out, ov.r, *n * sizeof(*out));
		*hit = 1;
		return BW_OK;
	}
	memset(&ov, 0, sizeof(ov));
	er = rl_overrides(db, org_id, route, ov.r,
	    sizeof(ov.r) / sizeof(ov.r[0]), &ov.n);
	if (er != BW_OK)
		return er;
	(void)pcache_put(PC_RATE, key, (size_t)kl, &ov, sizeof(ov), 0);
	*n = ov.n < max ? ov.n : max;
	memcpy(out, ov.r, *n * sizeof(*out));
	return BW_OK;
}
