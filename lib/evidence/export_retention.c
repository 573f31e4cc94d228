/* SPDX-License-Identifier: MIT */
/*
 * Export retention, one pass per bulwark-retention run: a ready export is
 * due when its finished_at plus the retention days of its org's plan tier
 * AT THE TIME OF THE PASS (org_tier_retention_days(), EXPORT_DUE_AT) is
 * past, so a tier change applies to exports made before it; due exports
 * become expired and lose their artifact. Failed and canceled exports go
 * after EXPORT_REMOVE_AFTER_S; artifact files no ready export owns are
 * swept after EXPORT_ORPHAN_AGE_S. Each row changes in its own statement
 * guarded by its state, so two concurrent passes never act twice.
 */
#include <dirent.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/jv.h"
#include "core/log.h"
#include "evidence/export.h"
#include "evidence/export_int.h"
#include "platform/org.h"

#define EXPORT_ORPHAN_AGE_S 3600 /* stray artifact files */
#define EXPORT_BATCH	    500	 /* rows one retention step reads */

struct export_expire_arg {
	const char *org_id;
	const char *id;
	const char *offset;
	const char *tiers; /* org_tier_arrays() */
	const char *days;
	char	    rel[256];
	int	    done;
};

/*
 * ready -> expired if still ready and due under the org's tier now; a
 * second pass finds nothing. The org row is share-locked first, so a
 * concurrent `org set-tier` (which locks it for update) lands either
 * before this decision, which then sees the new tier, or after it.
 */
static enum bw_err
export_expire_tx(struct db *db, void *arg)
{
	struct export_expire_arg *a = arg;
	const char *p[5] = { a->org_id, a->id, a->offset, a->tiers, a->days };
	PGresult   *res = NULL;
	enum bw_err er;

	a->done = 0;
	a->rel[0] = '\0';
	er = db_execp(db, "export_expire_org",
	    "SELECT 1 FROM orgs WHERE id = $1::uuid FOR SHARE", 1, p, NULL);
	if (er != BW_OK)
		return er;
	/* clang-format off */
	er = db_execp(db, "export_expire",
	    "UPDATE exports e SET state = 'expired', expired_at = now(),"
	    " expires_at = " EXPORT_DUE_AT("e.finished_at", "o.tier", "4", "5")
	    " FROM orgs o WHERE o.id = e.org_id"
	    "  AND e.org_id = $1::uuid AND e.id = $2::uuid AND e.state = 'ready'"
	    "  AND " EXPORT_DUE_AT("e.finished_at", "o.tier", "4", "5")
	    "   < now() + make_interval(secs => $3::float8)"
	    " RETURNING coalesce(e.artifact_path, '')",
	    5, p, &res);
	/* clang-format on */
	if (er != BW_OK)
		return er;
	a->done = PQntuples(res) == 1;
	if (a->done)
		snprintf(a->rel, sizeof(a->rel), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	if (!a->done)
		return BW_OK;
	return export_event_tx(db, a->org_id, a->id, "expired", NULL, NULL);
}

/*
 * Whether the file name of storage_dir/exports/<org>/ is the artifact of a
 * ready export ("<id>.<attempt>.tar", or "<id>.tar" from before attempts
 * named the files, that the row's artifact_path names): *keep set. A stale
 * attempt's file of a ready export is not kept. BW_EDB when the row cannot
 * be read.
 */
static enum bw_err
export_keep_file(struct db *db, const char *org, const char *name, int *keep)
{
	const char *p[3];
	PGresult   *res = NULL;
	char	    id[37], rel[128];

	*keep = 0;
	if (strlen(name) < 40 || strlen(name) > 64 || name[36] != '.' ||
	    strcmp(name + strlen(name) - 4, ".tar") != 0)
		return BW_OK;
	memcpy(id, name, 36);
	id[36] = '\0';
	if (!jv_is_uuid(id, 36))
		return BW_OK;
	snprintf(rel, sizeof(rel), "exports/%s/%s", org, name);
	p[0] = org;
	p[1] = id;
	p[2] = rel;
	/* clang-format off */
	if (db_execp(db, "export_keep_file",
	    "SELECT 1 FROM exports WHERE org_id = $1::uuid AND id = $2::uuid AND state = 'ready' AND artifact_path = $3",
	    3, p, &res) != BW_OK)
		return BW_EDB;
	/* clang-format on */
	*keep = PQntuples(res) == 1;
	PQclear(res);
	return BW_OK;
}

/*
 * Deletes the regular files of storage_dir/exports/<org>/ older than
 * EXPORT_ORPHAN_AGE_S at now_s that no ready export owns (stray
 * temporaries, artifacts of rows gone); *n counts them.
 */
static enum bw_err
export_sweep_files(struct db *db, const char *storage_dir, int64_t now_s,
    int *n)
{
	struct buf     top, sub, f;
	DIR	      *d = NULL, *od;
	struct dirent *de, *fe;
	struct stat    st;
	enum bw_err    er = BW_OK;
	int	       keep;

	buf_init(&top, PATH_MAX);
	buf_init(&sub, PATH_MAX);
	buf_init(&f, PATH_MAX);
	if (buf_printf(&top, "%s/exports", storage_dir) != BW_OK) {
		er = BW_ENOMEM;
		goto out;
	}
	d = opendir(top.p);
	if (d == NULL)
		goto out; /* nothing exported yet */
	while ((de = readdir(d)) != NULL) {
		if (!jv_is_uuid(de->d_name, strlen(de->d_name)))
			continue;
		buf_reset(&sub);
		if (buf_printf(&sub, "%s/%s", top.p, de->d_name) != BW_OK)
			continue;
		od = opendir(sub.p);
		if (od == NULL)
			continue;
		while ((fe = readdir(od)) != NULL) {
			if (strcmp(fe->d_name, ".") == 0 ||
			    strcmp(fe->d_name, "..") == 0)
				continue;
			buf_reset(&f);
			if (buf_printf(&f, "%s/%s", sub.p, fe->d_name) !=
				BW_OK ||
			    lstat(f.p, &st) != 0 || !S_ISREG(st.st_mode) ||
			    now_s - (int64_t)st.st_mtime < EXPORT_ORPHAN_AGE_S)
				continue;
			er =
			    export_keep_file(db, de->d_name, fe->d_name, &keep);
			if (er != BW_OK) {
				closedir(od);
				goto out;
			}
			if (keep)
				continue;
			if (unlink(f.p) == 0) {
				(*n)++;
				log_kv(LL_INFO, "export orphan file removed",
				    "path", f.p, NULL);
			}
		}
		closedir(od);
	}
out:
	if (d != NULL)
		closedir(d);
	buf_free(&top);
	buf_free(&sub);
	buf_free(&f);
	return er;
}

enum bw_err
export_retention(struct db *db, const char *storage_dir, int64_t clock_offset_s,
    struct export_retention_stats *st)
{
	struct export_expire_arg a;
	struct buf		 tiers, days;
	char			 off[24], rm[24], batch[16];
	const char		*p[2] = { off, rm };
	const char		*pd[4] = { off, batch, NULL, NULL };
	PGresult		*res = NULL;
	enum bw_err		 er;
	int			 i, n;

	memset(st, 0, sizeof(*st));
	snprintf(off, sizeof(off), "%" PRId64, clock_offset_s);
	snprintf(rm, sizeof(rm), "%d", EXPORT_REMOVE_AFTER_S);
	snprintf(batch, sizeof(batch), "%d", EXPORT_BATCH);
	buf_init(&tiers, 1024);
	buf_init(&days, 1024);
	er = org_tier_arrays(&tiers, &days);
	if (er != BW_OK)
		goto out;
	pd[2] = buf_cstr(&tiers);
	pd[3] = buf_cstr(&days);
	/* Ready exports past the retention of their org's tier now (only
	 * those older than the shortest retention are looked at: the index
	 * exports_retention (state, finished_at) finds them). */
	do {
		/* clang-format off */
		er = db_execp(db, "export_due",
		    "SELECT e.org_id, e.id FROM exports e"
		    " JOIN orgs o ON o.id = e.org_id WHERE e.state = 'ready'"
		    " AND e.finished_at < now() + make_interval(secs => $1::float8)"
		    "  - make_interval(days => (SELECT min(d) FROM unnest($4::int[]) d))"
		    " AND " EXPORT_DUE_AT("e.finished_at", "o.tier", "3", "4")
		    "  < now() + make_interval(secs => $1::float8)"
		    " ORDER BY e.finished_at LIMIT $2::int",
		    4, pd, &res);
		/* clang-format on */
		if (er != BW_OK)
			goto out;
		n = PQntuples(res);
		for (i = 0; i < n; i++) {
			memset(&a, 0, sizeof(a));
			a.org_id = PQgetvalue(res, i, 0);
			a.id = PQgetvalue(res, i, 1);
			a.offset = off;
			a.tiers = pd[2];
			a.days = pd[3];
			er = db_tx(db, false, export_expire_tx, &a);
			if (er != BW_OK) {
				PQclear(res);
				goto out;
			}
			if (!a.done)
				continue; /* another pass took it */
			export_unlink_rel(storage_dir, a.rel);
			st->expired++;
			log_kv(LL_INFO, "export expired", "org_id", a.org_id,
			    "export_id", a.id, "artifact", a.rel, NULL);
		}
		PQclear(res);
		res = NULL;
	} while (n == EXPORT_BATCH && st->expired > 0);

	/* Failed and canceled exports after 7 days: the rows go. */
	er = db_execp(db, "export_remove",
	    "DELETE FROM exports WHERE state IN ('failed', 'canceled')"
	    " AND finished_at < now() + make_interval(secs => $1::float8)"
	    "  - make_interval(secs => $2::float8)"
	    " RETURNING org_id, id, state",
	    2, p, &res);
	if (er != BW_OK)
		goto out;
	st->removed = PQntuples(res);
	for (i = 0; i < st->removed; i++)
		log_kv(LL_INFO, "export removed", "org_id",
		    PQgetvalue(res, i, 0), "export_id", PQgetvalue(res, i, 1),
		    "state", PQgetvalue(res, i, 2), NULL);
	PQclear(res);
	er = export_sweep_files(db, storage_dir,
	    (int64_t)time(NULL) + clock_offset_s, &st->orphans);
out:
	buf_free(&tiers);
	buf_free(&days);
	return er;
}
