/* SPDX-License-Identifier: MIT */
/* Organizations (tenants): the `orgs` table. */
#ifndef BW_ORG_H
#define BW_ORG_H

#include <json-c/json.h>

#include "core/buf.h"
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
 * Days a ready export of an org of this tier is kept after it became
 * ready; retention applies the org's tier at the time of each pass, not
 * the one it had when the export was made. An unknown or NULL tier gets
 * the default tier's (starter, 30).
 */
int org_tier_retention_days(const char *);
/*
 * The tier table as PostgreSQL array literals appended to names
 * ("{starter,pro,...}") and days ("{30,90,...}"), in the same order, the
 * default tier first: for SQL that applies an org's current tier (export
 * retention). BW_ETOOBIG when a buffer is full.
 */
enum bw_err org_tier_arrays(struct buf *names, struct buf *days);
/*
 * Sets the org's plan tier and records the change (org_tier_changes: from,
 * to, actor, time) in one transaction; logs it. Setting the tier it has
 * changes nothing. *out: the org {id,name,tier,timezone,created_at} after
 * (caller puts); from (fromlen bytes, may be NULL) gets the tier before.
 * BW_EINVAL for an unknown tier or an actor not 1..200 bytes, BW_ENOTFOUND
 * for no such org.
 */
enum bw_err org_set_tier(struct db *, const char *org_id, const char *tier,
    const char *actor, struct json_object **out, char *from, size_t fromlen);

#endif
