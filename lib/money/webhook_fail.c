/* SPDX-License-Identifier: MIT */
/*
 * Failed webhook deliveries per org and UTC day, for the owner's overview
 * (GET /api/v1/admin/overview): a hash in Redis per org and day,
 * "wh:fail:<org>:<YYYY-MM-DD>", field "<provider>.<reason>", expiring
 * after WEBHOOK_FAIL_TTL_S. Redis, not PostgreSQL: a flood of refused
 * deliveries must not turn into database writes. Counts are best effort
 * (a Redis outage loses them) and per day, not an audit trail: the access
 * log and bulwark_webhook_events_failed_total are that. See webhook.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/db.h"
#include "core/jv.h"
#include "money/webhook.h"

static const char *const wf_names[WF__MAX] = { "signature", "stale", "body",
	"error" };

const char *
webhook_fail_name(enum webhook_fail w)
{
	return (unsigned)w < WF__MAX ? wf_names[w] : "?";
}

/* The hash of org_id for today (UTC) in key, the day in day. */
static int
wf_key(const char *org_id, char *key, size_t n, char day[11])
{
	time_t	  t = (time_t)(clock_wall_ms() / 1000);
	struct tm tm;

	if (org_id == NULL || !jv_is_uuid(org_id, strlen(org_id)) ||
	    gmtime_r(&t, &tm) == NULL)
		return 0;
	strftime(day, 11, "%Y-%m-%d", &tm);
	snprintf(key, n, "wh:fail:%s:%s", org_id, day);
	return 1;
}

static struct rds_script wf_note_lua = {
	.src = "redis.call('HINCRBY', KEYS[1], ARGV[1], 1)\n"
	       "redis.call('EXPIRE', KEYS[1], ARGV[2])\n"
	       "return 1\n"
};

enum bw_err
webhook_fail_note(struct rds *rds, const char *org_id, enum whsig_provider p,
    enum webhook_fail why)
{
	char	    key[96], day[11], field[48], ttl[16];
	const char *av[3] = { key, field, ttl };
	const char *pn = webhook_provider_name(p);
	redisReply *rep = NULL;
	enum bw_err er;

	if (!wf_key(org_id, key, sizeof(key), day) || pn == NULL ||
	    (unsigned)why >= WF__MAX)
		return BW_EINVAL;
	snprintf(field, sizeof(field), "%s.%s", pn, wf_names[why]);
	snprintf(ttl, sizeof(ttl), "%d", WEBHOOK_FAIL_TTL_S);
	er = rds_eval(rds, &wf_note_lua, 1, 3, av, NULL, &rep);
	if (rep != NULL)
		freeReplyObject(rep);
	return er;
}

/* A field ("provider.reason") and its count. */
struct wf_entry {
	const char *field;
	int64_t	    n;
};

/* qsort order of the "by" entries: by field. */
static int
wf_cmp(const void *a, const void *b)
{
	return strcmp(((const struct wf_entry *)a)->field,
	    ((const struct wf_entry *)b)->field);
}

enum bw_err
webhook_fail_today(struct rds *rds, const char *org_id,
    struct json_object **out)
{
	char		    key[96], day[11], prov[48];
	const char	   *av[2] = { "HGETALL", key };
	redisReply	   *rep = NULL, *k, *v;
	struct wf_entry	    f[WS__MAX * WF__MAX];
	struct json_object *o, *by, *e;
	enum bw_err	    er;
	const char	   *dot;
	int64_t		    n, total = 0;
	size_t		    i, nf = 0;

	if (!wf_key(org_id, key, sizeof(key), day))
		return BW_EINVAL;
	er = rds_cmd(rds, 2, av, NULL, &rep);
	if (er != BW_OK || rep == NULL || rep->type != REDIS_REPLY_ARRAY) {
		if (rep != NULL)
			freeReplyObject(rep);
		return er != BW_OK ? er : BW_EREDIS;
	}
	/* Field, value pairs; fields we did not write are skipped. */
	for (i = 0; i + 1 < rep->elements && nf < sizeof(f) / sizeof(f[0]);
	     i += 2) {
		k = rep->element[i];
		v = rep->element[i + 1];
		if (k->type != REDIS_REPLY_STRING ||
		    v->type != REDIS_REPLY_STRING ||
		    strchr(k->str, '.') == NULL || db_i64(v->str, &n) != BW_OK)
			continue;
		f[nf].field = k->str;
		f[nf++].n = n;
	}
	qsort(f, nf, sizeof(f[0]), wf_cmp);
	o = json_object_new_object();
	by = json_object_new_array();
	for (i = 0; i < nf; i++) {
		dot = strchr(f[i].field, '.');
		snprintf(prov, sizeof(prov), "%.*s", (int)(dot - f[i].field),
		    f[i].field);
		e = json_object_new_object();
		json_object_object_add(e, "provider",
		    json_object_new_string(prov));
		json_object_object_add(e, "reason",
		    json_object_new_string(dot + 1));
		json_object_object_add(e, "count",
		    json_object_new_int64(f[i].n));
		json_object_array_add(by, e);
		total += f[i].n;
	}
	json_object_object_add(o, "day", json_object_new_string(day));
	json_object_object_add(o, "total", json_object_new_int64(total));
	json_object_object_add(o, "by", by);
	freeReplyObject(rep);
	*out = o;
	return BW_OK;
}
