/* SPDX-License-Identifier: MIT */
/* Organizations (tenants): the `orgs` table. */
#ifndef BW_ORG_H
#define BW_ORG_H

#include <json-c/json.h>

#include "core/db.h"
#include "core/err.h"

/* tier: starter|pro|business|enterprise; tz: an IANA zone PostgreSQL knows.
 * *out: new object {id,name,tier,timezone,created_at} (caller puts). */
enum bw_err org_create(struct db *, const char *name, const char *tier,
    const char *tz, struct json_object **out);
enum bw_err org_get(struct db *, const char *org_id, struct json_object **out);
/* 1 for a valid tier name. */
int org_tier_valid(const char *);
/*
 * Days a ready export of an org of this tier is kept (its expires_at);
 * an unknown or NULL tier gets the default tier's (starter, 30).
 */
int org_tier_retention_days(const char *);

#endif
