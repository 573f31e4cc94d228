/* SPDX-License-Identifier: MIT */
/*
 * Organizations (tenants): create and read rows of `orgs`, change an org's
 * plan tier (recorded in org_tier_changes).
 */
#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "core/jv.h"
#include "core/limits.h"
#include "core/log.h"
#include "platform/org.h"

/*
 * The plan tiers and what each grants; the first is the default. Keep the
 * names in step with the CHECK on orgs.tier (sql/0001_foundation.sql).
 */
static const struct org_tier {
	const char *name;
	int	    retention_days; /* a ready export's artifact is kept */
} org_tiers[] = {
	{ "starter", 30 },
	{ "pro", 90 },
	{ "business", 365 },
	{ "enterprise", 730 },
};
#define ORG_NTIERS (sizeof(org_tiers) / sizeof(org_tiers[0]))

/* The tier named t, or NULL. */
static const struct org_tier *
org_tier_find(const char *t)
{
	size_t i;

	for (i = 0; t != NULL && i < ORG_NTIERS; i++)
		if (strcmp(t, org_tiers[i].name) == 0)
			return &org_tiers[i];
	return NULL;
}

int
org_tier_valid(const char *t)
{
	return org_tier_find(t) != NULL;
}

int
org_tier_retention_days(const char *t)
{
	const struct org_tier *ot = org_tier_find(t);

	return ot != NULL ? ot->retention_days : org_tiers[0].retention_days;
}

enum bw_err
org_tier_arrays(struct buf *names, struct buf *days)
{
	enum bw_err er = BW_OK;
	size_t	    i;

	for (i = 0; i < ORG_NTIERS && er == BW_OK; i++) {
		er = buf_printf(names, "%s%s", i == 0 ? "{" : ",",
		    org_tiers[i].name);
		if (er == BW_OK)
			er = buf_printf(days, "%s%d", i == 0 ? "{" : ",",
			    org_tiers[i].retention_days);
	}
	if (er == BW_OK)
		er = buf_addc(names, '}');
	if (er == BW_OK)
		er = buf_addc(days, '}');
	return er;
}

/* {id,name,tier,timezone,created_at} from row 0 of res (same columns). */
static struct json_object *
org_row(PGresult *res)
{
	static const char *const cols[] = { "id", "name", "tier", "timezone",
		"created_at" };
	struct json_object	*o = json_object_new_object();
	size_t			 i;

	for (i = 0; i < sizeof(cols) / sizeof(cols[0]); i++)
		json_object_object_add(o, cols[i],
		    json_object_new_string(PQgetvalue(res, 0, (int)i)));
	return o;
}

enum bw_err
org_create(struct db *db, const char *name, const char *tier, const char *tz,
    struct json_object **out)
{
	static const char sql[] =
	    "INSERT INTO orgs (name, tier, timezone) "
	    "SELECT $1, $2, $3 WHERE bw_valid_timezone($3) "
	    "RETURNING id, name, tier, timezone, " DB_TS_UTC("created_at");
	const char *params[3];
	PGresult   *res = NULL;
	int64_t	    nchars;
	enum bw_err er;

	if (tier == NULL)
		tier = "starter";
	if (tz == NULL)
		tz = "UTC";
	nchars = name != NULL ? jv_utf8_len(name, strlen(name)) : -1;
	if (nchars < 1 || nchars > BW_MAX_ORG_NAME || !org_tier_valid(tier) ||
	    strlen(tz) > 64)
		return BW_EINVAL;
	params[0] = name;
	params[1] = tier;
	params[2] = tz;
	er = db_exec(db, sql, 3, params, &res);
	if (er != BW_OK)
		goto out;
	if (PQntuples(res) != 1) {
		/* Not a time zone of pg_timezone_names (sql/0039). */
		er = BW_EINVAL;
		goto out;
	}
	*out = org_row(res);
	log_kv(LL_INFO, "org created", "org_id", PQgetvalue(res, 0, 0), "tier",
	    tier, NULL);
out:
	PQclear(res);
	return er;
}

enum bw_err
org_get(struct db *db, const char *org_id, struct json_object **out)
{
	/* clang-format off */
	static const char sql[] =
	    "SELECT id, name, tier, timezone, " DB_TS_UTC("created_at")
	    " FROM orgs WHERE id = $1";
	/* clang-format on */
	PGresult   *res = NULL;
	enum bw_err er;

	if (org_id == NULL || !jv_is_uuid(org_id, strlen(org_id)))
		return BW_ENOTFOUND;
	er = db_execp(db, "org_get", sql, 1, &org_id, &res);
	if (er != BW_OK)
		goto out;
	if (PQntuples(res) != 1) {
		er = BW_ENOTFOUND;
		goto out;
	}
	*out = org_row(res);
out:
	PQclear(res);
	return er;
}

struct org_tier_arg {
	const char	   *org_id;
	const char	   *tier;
	const char	   *actor;
	char		    from[32];
	struct json_object *org;
};

/*
 * Sets the tier under the row's lock and records the change; a tier equal
 * to the current one changes and records nothing.
 */
static enum bw_err
org_set_tier_tx(struct db *db, void *arg)
{
	/* clang-format off */
	static const char sel[] =
	    "SELECT id, name, tier, timezone, " DB_TS_UTC("created_at")
	    " FROM orgs WHERE id = $1::uuid FOR UPDATE";
	static const char upd[] =
	    "UPDATE orgs SET tier = $2 WHERE id = $1::uuid"
	    " RETURNING id, name, tier, timezone, " DB_TS_UTC("created_at");
	static const char rec[] =
	    "INSERT INTO org_tier_changes (org_id, from_tier, to_tier, actor)"
	    " VALUES ($1::uuid, $2, $3, $4)";
	/* clang-format on */
	struct org_tier_arg *a = arg;
	const char	    *p[4];
	PGresult	    *res = NULL;
	enum bw_err	     er;

	if (a->org != NULL) { /* a retried transaction */
		json_object_put(a->org);
		a->org = NULL;
	}
	p[0] = a->org_id;
	er = db_execp(db, "org_tier_lock", sel, 1, p, &res);
	if (er != BW_OK)
		goto out;
	if (PQntuples(res) != 1) {
		er = BW_ENOTFOUND;
		goto out;
	}
	snprintf(a->from, sizeof(a->from), "%s", PQgetvalue(res, 0, 2));
	if (strcmp(a->from, a->tier) == 0) {
		a->org = org_row(res);
		goto out;
	}
	PQclear(res);
	res = NULL;
	p[1] = a->tier;
	er = db_execp(db, "org_tier_set", upd, 2, p, &res);
	if (er != BW_OK)
		goto out;
	if (PQntuples(res) != 1) {
		er = BW_ENOTFOUND;
		goto out;
	}
	a->org = org_row(res);
	PQclear(res);
	res = NULL;
	p[1] = a->from;
	p[2] = a->tier;
	p[3] = a->actor;
	er = db_execp(db, "org_tier_record", rec, 4, p, NULL);
out:
	PQclear(res);
	return er;
}

enum bw_err
org_set_tier(struct db *db, const char *org_id, const char *tier,
    const char *actor, struct json_object **out, char *from, size_t fromlen)
{
	struct org_tier_arg a;
	char		    fd[16], td[16];
	enum bw_err	    er;

	if (!org_tier_valid(tier) || actor == NULL || actor[0] == '\0' ||
	    strlen(actor) > 200)
		return BW_EINVAL;
	if (org_id == NULL || !jv_is_uuid(org_id, strlen(org_id)))
		return BW_ENOTFOUND;
	memset(&a, 0, sizeof(a));
	a.org_id = org_id;
	a.tier = tier;
	a.actor = actor;
	er = db_tx(db, false, org_set_tier_tx, &a);
	if (er != BW_OK) {
		json_object_put(a.org);
		return er;
	}
	*out = a.org;
	if (from != NULL && fromlen > 0)
		snprintf(from, fromlen, "%s", a.from);
	snprintf(fd, sizeof(fd), "%d", org_tier_retention_days(a.from));
	snprintf(td, sizeof(td), "%d", org_tier_retention_days(tier));
	log_kv(LL_INFO,
	    strcmp(a.from, tier) == 0 ? "org tier unchanged"
				      : "org tier changed",
	    "org_id", org_id, "from_tier", a.from, "to_tier", tier,
	    "from_retention_days", fd, "to_retention_days", td, "actor", actor,
	    NULL);
	return BW_OK;
}
