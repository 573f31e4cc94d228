/* SPDX-License-Identifier: MIT */
/*
 * Forward-only migrations: applies sql/NNNN_<what>.sql files in name order,
 * each in its own transaction with its row in schema_migrations, under a
 * session advisory lock so that concurrent runs on several hosts serialize.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/limits.h"
#include "core/log.h"
#include "platform/migrate.h"
#include "core/sec.h"

static const char migrate_sql_table[] =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " name text PRIMARY KEY,"
    " sha256 text NOT NULL,"
    " applied_at timestamptz NOT NULL DEFAULT now())";
static const char migrate_sql_lock[] =
    "SELECT pg_advisory_lock($1::int, $2::int)";
static const char migrate_sql_unlock[] =
    "SELECT pg_advisory_unlock($1::int, $2::int)";
static const char migrate_sql_recorded[] =
    "SELECT sha256 FROM schema_migrations WHERE name = $1";
static const char migrate_sql_record[] =
    "INSERT INTO schema_migrations (name, sha256) VALUES ($1, $2)";

/* One pending file, for the transaction callback. */
struct migrate_file {
	const char *name;
	const char *text;
	const char *sha; /* hex */
};

/* 1 when name matches ^[0-9]{4}_[a-z0-9_]+\.sql$. */
static int
migrate_name_ok(const char *name)
{
	size_t n, i;

	n = strlen(name);
	if (n < 10 || strcmp(name + n - 4, ".sql") != 0)
		return 0;
	for (i = 0; i < 4; i++)
		if (name[i] < '0' || name[i] > '9')
			return 0;
	if (name[4] != '_')
		return 0;
	for (i = 5; i < n - 4; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') ||
			(name[i] >= '0' && name[i] <= '9') || name[i] == '_'))
			return 0;
	return 1;
}

static int
migrate_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
migrate_names_free(char **names, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/*
 * Lists the migration files of dir, sorted. *names (array of owned strings,
 * free with migrate_names_free) and *n on success. Returns BW_OK,
 * BW_ENOMEM, BW_ETOOBIG (more than BW_MAX_MIGRATIONS) or BW_EIO.
 */
static enum bw_err
migrate_list(const char *dir, char ***names, size_t *n)
{
	DIR	      *d;
	struct dirent *de;
	char	     **v = NULL, **nv;
	size_t	       nv_len = 0, cap = 0;
	enum bw_err    er = BW_OK;

	d = opendir(dir);
	if (d == NULL) {
		log_kv(LL_ERROR, "migrate: cannot open directory", "dir", dir,
		    "detail", strerror(errno), NULL);
		return BW_EIO;
	}
	while ((de = readdir(d)) != NULL) {
		if (!migrate_name_ok(de->d_name))
			continue;
		if (nv_len >= BW_MAX_MIGRATIONS) {
			er = BW_ETOOBIG;
			goto out;
		}
		if (nv_len == cap) {
			cap = cap ? cap * 2 : 16;
			nv = reallocarray(v, cap, sizeof(*v));
			if (nv == NULL) {
				er = BW_ENOMEM;
				goto out;
			}
			v = nv;
		}
		v[nv_len] = strdup(de->d_name);
		if (v[nv_len] == NULL) {
			er = BW_ENOMEM;
			goto out;
		}
		nv_len++;
	}
	if (nv_len > 0)
		qsort(v, nv_len, sizeof(*v), migrate_cmp);
out:
	closedir(d);
	if (er != BW_OK) {
		migrate_names_free(v, nv_len);
		return er;
	}
	*names = v;
	*n = nv_len;
	return BW_OK;
}

/*
 * Reads dir/name into b (at most BW_MAX_SQL_FILE bytes). Returns BW_OK,
 * BW_EIO, BW_ETOOBIG, BW_ENOMEM, or BW_ECONFIG for a NUL byte (the simple
 * query protocol would silently cut the text there).
 */
static enum bw_err
migrate_read(const char *dir, const char *name, struct buf *b)
{
	struct buf  path;
	char	    chunk[8192];
	ssize_t	    got;
	enum bw_err er;
	int	    fd = -1;

	buf_init(&path, BW_MAX_PATH);
	er = buf_printf(&path, "%s/%s", dir, name);
	if (er != BW_OK)
		goto out;
	fd = open(buf_cstr(&path), O_RDONLY | O_CLOEXEC);
	if (fd == -1) {
		er = BW_EIO;
		goto out;
	}
	for (;;) {
		got = read(fd, chunk, sizeof(chunk));
		if (got == -1 && errno == EINTR)
			continue;
		if (got == -1) {
			er = BW_EIO;
			goto out;
		}
		if (got == 0)
			break;
		er = buf_add(b, chunk, (size_t)got);
		if (er != BW_OK)
			goto out;
	}
	if (memchr(buf_cstr(b), '\0', b->len) != NULL)
		er = BW_ECONFIG;
out:
	if (er != BW_OK)
		log_kv(LL_ERROR, "migrate: cannot read file", "file", name,
		    "detail", bw_strerror(er), NULL);
	if (fd != -1)
		close(fd);
	buf_free(&path);
	return er;
}

/*
 * Transaction body: the file's statements, then its schema_migrations row.
 * The file runs through PQexec, the one place in Bulwark where SQL is sent
 * without parameters: a migration is several statements (which the
 * extended protocol refuses), and its text is ours, shipped in sql/ and
 * pinned by its SHA-256 — no outside input ever reaches it.
 */
static enum bw_err
migrate_apply(struct db *db, void *arg)
{
	const struct migrate_file *f = arg;
	const char		  *p[2] = { f->name, f->sha };
	const char		  *st;
	PGconn			  *c;
	PGresult		  *res;
	enum bw_err		   er = BW_OK;

	c = db_conn(db);
	if (c == NULL)
		return BW_EDB;
	res = PQexec(c, f->text);
	if (res == NULL ||
	    (PQresultStatus(res) != PGRES_COMMAND_OK &&
		PQresultStatus(res) != PGRES_TUPLES_OK &&
		PQresultStatus(res) != PGRES_EMPTY_QUERY)) {
		st = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE)
				 : NULL;
		if (st != NULL &&
		    (strcmp(st, "40001") == 0 || strcmp(st, "40P01") == 0))
			er = BW_ERETRY;
		else
			er = BW_EDB;
		log_kv(LL_ERROR, "migration failed", "file", f->name,
		    "sqlstate", st != NULL ? st : "", "detail",
		    PQerrorMessage(c), NULL);
	}
	PQclear(res);
	if (er != BW_OK)
		return er;
	return db_exec(db, migrate_sql_record, 2, p, NULL);
}

/* Runs a two-int advisory lock function on (DB_LOCK_MIGRATE, 0). */
static enum bw_err
migrate_lockcall(struct db *db, const char *sql)
{
	char	    ns[16];
	const char *p[2] = { ns, "0" };

	snprintf(ns, sizeof(ns), "%d", (int)DB_LOCK_MIGRATE);
	return db_exec(db, sql, 2, p, NULL);
}

/*
 * Looks name up in schema_migrations: *found, and the recorded hex SHA-256
 * copied to sha (65 bytes) when found.
 */
static enum bw_err
migrate_recorded(struct db *db, const char *name, int *found, char sha[65])
{
	const char *p[1] = { name };
	PGresult   *res = NULL;
	enum bw_err er;

	er = db_exec(db, migrate_sql_recorded, 1, p, &res);
	if (er != BW_OK)
		return er;
	*found = PQntuples(res) == 1;
	if (*found) {
		snprintf(sha, 65, "%s", PQgetvalue(res, 0, 0));
	}
	PQclear(res);
	return BW_OK;
}

/*
 * Applies the pending files of dir in order. *applied gets a new JSON array
 * of the names applied by this call (the caller json_object_put()s it).
 * Returns BW_OK; BW_ECONFIG when a recorded file changed (logged with its
 * name) or is malformed; BW_EDB when a migration or the bookkeeping failed,
 * or when the connection (and with it the lock) was lost; BW_EIO,
 * BW_ETOOBIG, BW_ENOMEM. Files applied before a failure stay applied.
 */
enum bw_err
migrate_run(struct db *db, const char *dir, struct json_object **applied)
{
	struct json_object *list = NULL, *js;
	struct migrate_file f;
	struct buf	    text;
	char		  **names = NULL;
	char		    hex[2 * SEC_SHA256_LEN + 1], rec[65];
	uint8_t		    md[SEC_SHA256_LEN];
	size_t		    n = 0, i;
	enum bw_err	    er;
	int		    locked = 0, pid = 0, found;

	buf_init(&text, BW_MAX_SQL_FILE);
	er = migrate_list(dir, &names, &n);
	if (er != BW_OK)
		goto out;
	list = json_object_new_array();
	if (list == NULL) {
		er = BW_ENOMEM;
		goto out;
	}
	/* Session-level and waiting: a second host queues here. */
	er = migrate_lockcall(db, migrate_sql_lock);
	if (er != BW_OK)
		goto out;
	locked = 1;
	pid = PQbackendPID(db_conn(db));
	/* After the lock: concurrent CREATE ... IF NOT EXISTS can collide. */
	er = db_exec(db, migrate_sql_table, 0, NULL, NULL);
	if (er != BW_OK)
		goto out;
	for (i = 0; i < n; i++) {
		/*
		 * db_exec() silently reopens a dead connection, and the lock
		 * died with the old session: stop rather than run unlocked.
		 */
		if (db_conn(db) == NULL || PQbackendPID(db_conn(db)) != pid) {
			log_kv(LL_ERROR, "migrate: connection lost, lock gone",
			    NULL);
			locked = 0;
			er = BW_EDB;
			goto out;
		}
		buf_reset(&text);
		er = migrate_read(dir, names[i], &text);
		if (er != BW_OK)
			goto out;
		er = sec_sha256(buf_cstr(&text), text.len, md);
		if (er != BW_OK)
			goto out;
		sec_hex(md, sizeof(md), hex);
		er = migrate_recorded(db, names[i], &found, rec);
		if (er != BW_OK)
			goto out;
		if (found) {
			if (strcmp(rec, hex) != 0) {
				log_kv(LL_ERROR,
				    "migrate: applied file has changed", "file",
				    names[i], "recorded", rec, "current", hex,
				    NULL);
				er = BW_ECONFIG;
				goto out;
			}
			continue;
		}
		f.name = names[i];
		f.text = buf_cstr(&text);
		f.sha = hex;
		er = db_tx(db, false, migrate_apply, &f);
		if (er != BW_OK)
			goto out;
		log_kv(LL_INFO, "migration applied", "file", names[i], NULL);
		js = json_object_new_string(names[i]);
		if (js == NULL || json_object_array_add(list, js) != 0) {
			json_object_put(js);
			er = BW_ENOMEM;
			goto out;
		}
	}
out:
	if (locked && db_conn(db) != NULL && PQbackendPID(db_conn(db)) == pid)
		(void)migrate_lockcall(db, migrate_sql_unlock);
	if (er == BW_OK) {
		*applied = list;
		list = NULL;
	}
	json_object_put(list);
	migrate_names_free(names, n);
	buf_free(&text);
	return er;
}
