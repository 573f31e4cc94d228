/* SPDX-License-Identifier: MIT */
/*
 * PostgreSQL access over libpq: one connection per process (opened after
 * fork), reconnect when it breaks, lazily prepared statements, a
 * transaction helper that retries serialization failures and deadlocks, and
 * advisory-lock helpers. SQL only with parameters.
 */
#ifndef BW_DB_H
#define BW_DB_H

#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "core/err.h"

struct db;

/* A new handle; does not connect. conninfo is copied. NULL on ENOMEM. */
struct db *db_new(const char *conninfo);
void	   db_free(struct db *); /* closes; NULL is fine */
/* Sets statement_timeout for every session opened from now on (0: none). */
void db_set_statement_timeout(struct db *, int ms);
/*
 * From the next connect on, every statement is planned once, generically
 * (plan_cache_mode = force_generic_plan), not re-planned for its first
 * executions: for a process whose statements are all key look-ups (the
 * chat pool), where a custom plan is no better.
 */
void db_set_generic_plans(struct db *);
/*
 * The statement_timeout every handle made by db_new() from now on starts
 * with (0: none, the default): a process-wide setting for start-up, so
 * that no connection of a worker runs without one.
 */
void db_set_default_statement_timeout(int ms);
/*
 * The tenant of what runs from now on (row-level security, docs/
 * operations.md "Database roles and row-level security"): every
 * transaction (db_tx, db_begin) and every statement outside one runs with
 * bulwark.org_id set to org for its own transaction only (set_config's
 * is_local, as SET LOCAL), sent in the same round trip as BEGIN or as the
 * statement (a pipeline). BW_EINVAL unless org is a UUID's 36 characters.
 * db_clear_org() returns to no tenant: the app role then sees no tenant
 * rows. db_org() is "" when none is set.
 */
enum bw_err db_set_org(struct db *, const char *org);
void	    db_clear_org(struct db *); /* NULL is fine */
const char *db_org(const struct db *);
/* Connects if not connected or broken (one attempt). */
enum bw_err db_connect(struct db *);
/* Drops the connection; the next call reconnects. */
void db_disconnect(struct db *);
/*
 * Between requests: the socket of an idle session to watch (it turns
 * readable when the server ends the session: a restart, a failover,
 * pg_terminate_backend()), or -1 (none, or not idle).
 */
int db_idle_fd(struct db *);
/*
 * Between requests: when the server ended the idle session, or there is
 * none, connects now (the on-connect warm-up included) instead of at the
 * next statement. *revived = true when a new session was opened. Returns
 * BW_OK (alive, or connected), or db_connect()'s error (try again later).
 */
enum bw_err db_idle_revive(struct db *, bool *revived);
/* The live connection (NULL when not connected); owned by db. */
PGconn *db_conn(struct db *);
/* 1 inside a db_tx() callback. */
int db_in_tx(const struct db *);
/*
 * Runs sql with text params (NULL entries are SQL NULL). On success *res (if
 * res not NULL) holds the result, which the caller PQclear()s. Errors:
 * BW_ERETRY (40001/40P01), BW_EEXISTS (23505), BW_EINVAL (22xxx/23xxx other),
 * BW_EDB otherwise, logged once here with the SQLSTATE. Outside a
 * transaction a broken connection is reopened and the statement re-sent once.
 */
enum bw_err db_exec(struct db *, const char *sql, int nparams,
    const char *const *params, PGresult **res);
/* As db_exec, through a named prepared statement prepared on first use. */
enum bw_err db_execp(struct db *, const char *name, const char *sql,
    int nparams, const char *const *params, PGresult **res);
/*
 * A prepared statement in two halves, outside a transaction, so that the
 * caller does other I/O (a Redis round trip) while PostgreSQL runs it:
 * db_sendp() sends it (preparing it first if needed; no resend ever, so
 * use it for statements that are safe to lose), db_recvp() waits for its
 * result (as db_execp()). After a BW_OK from db_sendp() call db_recvp()
 * before any other statement on this db.
 */
enum bw_err db_sendp(struct db *, const char *name, const char *sql,
    int nparams, const char *const *params);
enum bw_err db_recvp(struct db *, const char *name, PGresult **res);
/*
 * A statement a module runs through db_execp()/db_sendp(): its name, text
 * and parameter count, in one place so that the call and db_warm() agree.
 * warm (NULL: none) are parameters for one warm-up execution that can
 * match no row: db_warm() runs it with no tenant set, where row-level
 * security shows the app role no tenant row at all.
 */
struct db_stmt {
	const char	  *name;
	const char	  *sql;
	int		   nparams;
	const char *const *warm;
};
/*
 * Prepares, on this connection (connecting first if needed), the tenant
 * statement and each of stmts[0..n) not yet prepared, and runs those with
 * warm parameters once. A fresh server process pays its catalog look-ups
 * at a statement's first parse and plan (about 20 ms of CPU for the chat's
 * hold, against 1 ms later): a FastCGI child does it at its start, not in
 * its first requests (docs/chat-cost.md). Outside a transaction only.
 */
enum bw_err db_warm(struct db *, const struct db_stmt *stmts, size_t n);
/*
 * fn(db, arg) runs after every new session db_connect() opens (the first,
 * and each reconnect after a restart or a failover), before the statement
 * that needed it; typically db_warm() calls. NULL: none. The session is
 * used as fn leaves it. fn may refuse the session: when it returns an
 * error (or broke the connection), db_connect() closes the new session
 * and fails with that error (BW_EDB for a broken one), so the statement
 * that needed it fails unsent; the next statement connects and asks fn
 * again. A hook that only prepares (a warm-up) returns BW_OK whatever
 * happened. periodic_run() uses it as a fence: a new session of a job's
 * work connection is refused once the job's lock session is gone.
 */
void db_set_on_connect(struct db *, enum bw_err (*fn)(struct db *, void *),
    void *arg);
/* db_execp() of one struct db_stmt. */
static inline enum bw_err
db_execs(struct db *db, const struct db_stmt *st, const char *const *params,
    PGresult **res)
{
	return db_execp(db, st->name, st->sql, st->nparams, params, res);
}
/* SQLSTATE of the last failed statement ("" when none). */
const char *db_sqlstate(const struct db *);
/*
 * Runs fn(db, arg) between BEGIN [ISOLATION LEVEL ...] and COMMIT; rolls back
 * when fn fails; retries the whole transaction on BW_ERETRY up to
 * BW_TX_RETRIES times with jittered backoff. Returns fn's error or the
 * commit's (BW_EAMBIG: see db_end()). serializable selects SERIALIZABLE,
 * else READ COMMITTED.
 */
enum bw_err db_tx(struct db *, bool		  serializable,
    enum bw_err (*fn)(struct db *, void *), void *arg);
/*
 * A transaction the caller owns (READ COMMITTED), for work that must commit
 * together with what it calls: every db_tx() inside it joins it, each in a
 * savepoint (rolled back alone when its fn fails; no retries inside).
 * db_end() commits (commit true) or rolls back, and returns BW_OK,
 * BW_EAMBIG when COMMIT went out and the connection was lost before its
 * answer (it may have committed: settle it by reading), or when it
 * committed on this server but PostgreSQL said it may not have reached the
 * synchronous standby (then db_unreplicated() is not 0: a read on this
 * server proves nothing), or another error (nothing committed).
 * BW_ESTATE when begun twice or ended unbegun.
 */
enum bw_err db_begin(struct db *);
enum bw_err db_end(struct db *, bool commit);
/*
 * How many commits PostgreSQL called unreplicated on this handle since
 * db_unreplicated_clear() (a WARNING after the wait for the synchronous
 * standby was canceled or cut; docs/operations.md "Synchronous mode"):
 * committed here, maybe not on the standby. An autocommit statement so
 * committed still returns BW_OK (it ran); a COMMIT gives BW_EAMBIG. Work
 * that acknowledges writes to a client checks this first; a later COMMIT
 * of a transaction that wrote, answered without the warning, proves every
 * earlier commit replicated (the standby confirms WAL in order).
 */
int  db_unreplicated(const struct db *);
void db_unreplicated_clear(struct db *);
/*
 * An answer that rests on rows another session committed (a redelivery
 * found its event already recorded) writes nothing, so no commit of ours
 * waited for the synchronous standby, and those rows may still be on the
 * primary only. db_need_sync() notes it; db_sync_point() then commits a
 * transaction of ours that must wait for the standby (a transactional
 * logical message: an xid and WAL of its own, synchronous_commit on),
 * which covers every commit before it: BW_OK once
 * the standby has all of it, BW_EAMBIG when PostgreSQL cut the wait
 * (db_unreplicated()), another error when it could not run. Nothing noted:
 * BW_OK at once. db_unreplicated_clear() forgets the note too.
 */
void	    db_need_sync(struct db *);
enum bw_err db_sync_point(struct db *);
/* Session-level try lock; *got tells. */
enum bw_err db_try_lock(struct db *, int32_t ns, int32_t key, bool *got);
enum bw_err db_unlock(struct db *, int32_t ns, int32_t key);
/* Transaction-level lock (waits); only inside db_tx(). */
enum bw_err db_xact_lock(struct db *, int32_t ns, int32_t key);
/*
 * The advisory lock key of a pair of strings (an org and a name in it):
 * 32-bit FNV-1a over a, "/" and b. SQL that takes the same lock gets the
 * key as a parameter.
 */
int32_t db_lock_key(const char *a, const char *b);
/*
 * Parses a whole decimal int64 such as a bigint column's text: BW_OK with
 * *out set, or BW_EINVAL (empty, trailing bytes, out of range).
 */
enum bw_err db_i64(const char *s, int64_t *out);
/*
 * Result columns. A SQL NULL reads as NULL from db_col_str and db_col_dup
 * (malloc'd copy, NULL also on ENOMEM), and as BW_ENOTFOUND from
 * db_col_i64; a value that is not a whole int64 is BW_EINVAL.
 */
const char *db_col_str(const PGresult *, int row, int col);
char	   *db_col_dup(const PGresult *, int row, int col);
enum bw_err db_col_i64(const PGresult *, int row, int col, int64_t *out);
/* The column as an int64, or dflt when it is NULL or not a whole int64. */
int64_t db_col_i64_or(const PGresult *, int row, int col, int64_t dflt);
/* The column as a double, or dflt when it is NULL or not a whole number. */
double db_col_f64_or(const PGresult *, int row, int col, double dflt);
/* Rows an INSERT/UPDATE/DELETE touched (PQcmdTuples); -1 when none said. */
int64_t db_rows(PGresult *);
/*
 * A batch job's pass: runs sql (prepared as name) with one parameter, the
 * batch size, and reads the first column of its one row as how many rows
 * the pass handled. BW_OK with *n set.
 */
enum bw_err db_exec_batch(struct db *, const char *name, const char *sql,
    int batch, int *n);
/* As db_i64 for a double ("1.5", "1e3"; no NaN or infinity). */
enum bw_err db_f64(const char *s, double *out);
/*
 * The one SQL fragment rendering a timestamptz as RFC 3339 UTC:
 * DB_TS_UTC("created_at") gives milliseconds, "2026-12-05T07:29:49.123Z";
 * DB_TS_UTC_US microseconds (".123456Z"), DB_TS_UTC_S whole seconds.
 */
#define DB_TS_UTC_FRAC(col, frac)              \
	"to_char(" col " AT TIME ZONE 'UTC', " \
	"'YYYY-MM-DD\"T\"HH24:MI:SS" frac "\"Z\"')"
#define DB_TS_UTC(col)	  DB_TS_UTC_FRAC(col, ".MS")
#define DB_TS_UTC_US(col) DB_TS_UTC_FRAC(col, ".US")
#define DB_TS_UTC_S(col)  DB_TS_UTC_FRAC(col, "")
/* Round trip "SELECT 1" with its latency in microseconds. */
enum bw_err db_ping(struct db *, int64_t *latency_us);

/* Advisory lock namespaces (first int of the two-int form). */
#define DB_LOCK_MIGRATE	 0x42570001
#define DB_LOCK_PERIODIC 0x42570002
#define DB_LOCK_JOBCAP	 0x42570003

#ifdef BW_TESTING
/* Static functions of db.c, visible to tests (STATIC in core/err.h). */
enum bw_err db_map_state(const char *sqlstate);
#endif

#endif
