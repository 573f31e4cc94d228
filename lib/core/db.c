/* SPDX-License-Identifier: MIT */
/*
 * PostgreSQL over libpq: one connection per process, reopened when it
 * breaks, lazily prepared statements, a retrying transaction helper and
 * advisory locks. SQLSTATEs become enum bw_err here, and only here.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "core/clock.h"
#include "core/db.h"
#include "core/limits.h"
#include "core/log.h"

struct db {
	char   *conninfo;    /* owned; may hold a password */
	PGconn *conn;	     /* NULL when not connected */
	int	in_tx;	     /* inside db_tx() or db_begin() */
	int	outer;	     /* the transaction is db_begin()'s */
	int	nsave;	     /* savepoints of nested db_tx() open */
	int	broken;	     /* the connection failed; reopen */
	int	last_fail;   /* enum db_fail of the last failed statement */
	char	sqlstate[6]; /* of the last failure, "" if none */
	char   *prepared[BW_DB_MAX_PREPARED]; /* names, owned */
	size_t	nprepared;
	int	stmt_timeout_ms; /* 0: the server's default */
	char	org[37];	 /* the tenant (bulwark.org_id); "" none */
	int	piped;		 /* db_sendp() sent a pipeline */
	int	simple;		 /* db_run() sends sql as a simple query */
	int	unrepl; /* commits PostgreSQL called unreplicated, see below */
	int	need_sync; /* db_need_sync(): a sync point before answering */
	int	generic;   /* plan_cache_mode = force_generic_plan */
	/* db_set_on_connect(): the hook and its argument */
	enum bw_err (*on_connect)(struct db *, void *);
	void *on_connect_arg;
	int   in_hook; /* on_connect runs: no second call from inside */
};

/* The one statement that sets the tenant for a transaction (RLS). */
#define DB_ORG_STMT "db_set_org"
#define DB_ORG_SQL  "SELECT set_config('bulwark.org_id', $1, true)"

/*
 * statement_timeout of handles made by db_new() from now on, set once at
 * start-up (worker_setup() sets the workers' worker_statement_timeout_ms),
 * so that every connection of the process gets it, also those opened deep
 * inside a library call. 0: the server's default.
 */
static int db_default_stmt_timeout_ms;

/* How one failed statement is classified. */
enum db_fail {
	DBF_STATEMENT, /* the server refused it; the connection is fine */
	DBF_UNSENT,    /* the connection failed before the statement ran */
	DBF_LOST       /* the connection failed; the statement may have run */
};

struct db *
db_new(const char *conninfo)
{
	struct db *db;

	db = calloc(1, sizeof(*db));
	if (db == NULL)
		return NULL;
	db->conninfo = strdup(conninfo != NULL ? conninfo : "");
	if (db->conninfo == NULL) {
		free(db);
		return NULL;
	}
	db->stmt_timeout_ms = db_default_stmt_timeout_ms;
	return db;
}

void
db_set_statement_timeout(struct db *db, int ms)
{
	db->stmt_timeout_ms = ms > 0 ? ms : 0;
}

void
db_set_generic_plans(struct db *db)
{
	db->generic = 1;
}

void
db_set_default_statement_timeout(int ms)
{
	db_default_stmt_timeout_ms = ms > 0 ? ms : 0;
}

enum bw_err
db_set_org(struct db *db, const char *org)
{
	size_t i;

	if (org == NULL || strlen(org) != 36)
		return BW_EINVAL;
	for (i = 0; i < 36; i++) {
		int c = (unsigned char)org[i];

		if (i == 8 || i == 13 || i == 18 || i == 23
			? c != '-'
			: !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
			      (c >= 'A' && c <= 'F')))
			return BW_EINVAL;
	}
	memcpy(db->org, org, 37);
	return BW_OK;
}

void
db_clear_org(struct db *db)
{
	if (db != NULL)
		db->org[0] = '\0';
}

const char *
db_org(const struct db *db)
{
	return db->org;
}

/* Forgets every prepared name: they die with the session. */
static void
db_forget_prepared(struct db *db)
{
	size_t i;

	for (i = 0; i < db->nprepared; i++) {
		free(db->prepared[i]);
		db->prepared[i] = NULL;
	}
	db->nprepared = 0;
}

void
db_disconnect(struct db *db)
{
	if (db == NULL)
		return;
	if (db->conn != NULL)
		PQfinish(db->conn);
	db->conn = NULL;
	db->broken = 0;
	db->in_tx = 0;
	db->piped = 0;
	db_forget_prepared(db);
}

void
db_free(struct db *db)
{
	if (db == NULL)
		return;
	db_disconnect(db);
	OPENSSL_cleanse(db->conninfo, strlen(db->conninfo));
	free(db->conninfo);
	free(db);
}

/*
 * 1 when a notice says that a commit of this session is durable on this
 * server only. A COMMIT (or an autocommit statement) waiting for the
 * synchronous standby has committed locally already; when that wait is
 * canceled (pg_cancel_backend(); never our statement_timeout, which
 * PostgreSQL disables before it commits) or cut by a termination
 * (pg_terminate_backend(), a fast shutdown), the server says so only in a
 * WARNING (syncrep.c, SyncRepWaitForLSN(): 01000 "canceling wait for
 * synchronous replication due to user request", 57P01 "canceling the wait
 * for synchronous replication and terminating connection ...", both with
 * the detail "The transaction has already committed locally, but might
 * not have been replicated to the standby.") and the COMMIT succeeds.
 * The texts are the server's lc_messages: English (docs/operations.md).
 */
static int
db_notice_unreplicated(const PGresult *res)
{
	const char *sev, *st, *msg, *det;

	sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
	st = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	det = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
	if (sev == NULL || strcmp(sev, "WARNING") != 0 || st == NULL ||
	    (strcmp(st, "01000") != 0 && strcmp(st, "57P01") != 0))
		return 0;
	return (msg != NULL && strstr(msg, "synchronous replication")) ||
	    (det != NULL && strstr(det, "committed locally"));
}

/*
 * Server notices (e.g. "relation already exists, skipping") would otherwise
 * go raw to stderr and break the JSON-line log. One that calls a commit
 * unreplicated is counted on its handle (db_unreplicated()).
 */
static void
db_notice(void *arg, const PGresult *res)
{
	struct db *db = arg;

	if (db_notice_unreplicated(res)) {
		db->unrepl++;
		log_kv(LL_ERROR, "db commit not replicated", "detail",
		    PQresultErrorMessage(res), NULL);
		return;
	}
	log_kv(LL_DEBUG, "db notice", "detail", PQresultErrorMessage(res),
	    NULL);
}

int
db_unreplicated(const struct db *db)
{
	return db != NULL ? db->unrepl : 0;
}

void
db_unreplicated_clear(struct db *db)
{
	if (db != NULL) {
		db->unrepl = 0;
		db->need_sync = 0;
	}
}

void
db_need_sync(struct db *db)
{
	if (db != NULL)
		db->need_sync = 1;
}

/*
 * The sync point's transaction. PostgreSQL makes a COMMIT wait for the
 * synchronous standby only when the transaction has an xid and wrote WAL
 * before its commit record (an xid alone, pg_current_xact_id(), does not
 * wait: measured); a transactional logical message is both, with no table
 * touched (any role may send one, at wal_level replica too).
 */
static enum bw_err
db_sync_fn(struct db *db, void *arg)
{
	enum bw_err er;

	(void)arg;
	er = db_exec(db, "SET LOCAL synchronous_commit TO on", 0, NULL, NULL);
	if (er == BW_OK)
		er = db_exec(db,
		    "SELECT pg_logical_emit_message(true, 'bulwark', 'sync')",
		    0, NULL, NULL);
	return er;
}

enum bw_err
db_sync_point(struct db *db)
{
	enum bw_err er;

	if (db == NULL || !db->need_sync)
		return BW_OK;
	db->need_sync = 0;
	er = db_tx(db, false, db_sync_fn, NULL);
	if (er != BW_OK)
		log_kv(LL_ERROR, "db sync point failed", "error",
		    bw_strerror(er), NULL);
	return er;
}

/*
 * "db connect failed" is logged once per process per DB_CONNECT_LOG_MS
 * while the failures go on: in an outage every idle bulwark-fcgi child
 * retries on its own (fcgi/main.c, 250 ms doubling to 8 s), and forty
 * children logging each retry bury the log. The first failure after a
 * success is always logged; a later line carries in "failures" how many
 * attempts failed since the one before it.
 */
#define DB_CONNECT_LOG_MS 60000
static int64_t	db_connect_logged_ms = -1; /* -1: not since a success */
static unsigned db_connect_unlogged;

static void
db_connect_failed(PGconn *c)
{
	int64_t now = clock_mono_ms();
	char	n[16];

	if (db_connect_logged_ms >= 0 &&
	    now - db_connect_logged_ms < DB_CONNECT_LOG_MS) {
		db_connect_unlogged++;
		return;
	}
	snprintf(n, sizeof(n), "%u", db_connect_unlogged + 1);
	log_kv(LL_ERROR, "db connect failed", "detail", PQerrorMessage(c),
	    "failures", n, NULL);
	db_connect_logged_ms = now;
	db_connect_unlogged = 0;
}

/*
 * Opens a connection when there is none or it broke: one attempt. Our
 * defaults come first in the keyword arrays and the (expanded) conninfo
 * last, so that a URL or keyword string may override any of them (libpq
 * keeps the last value of a repeated keyword). Returns BW_OK, BW_ENOMEM,
 * BW_EDB (logged, see db_connect_failed()) when the server cannot be
 * reached, or the error of an on-connect hook that refused the new session
 * (db_set_on_connect()).
 */
enum bw_err
db_connect(struct db *db)
{
	char	    timeout[16], options[96];
	const char *keys[10], *vals[10];
	PGconn	   *c;
	enum bw_err er;
	int	    n = 0;

	if (db->conn != NULL && !db->broken &&
	    PQstatus(db->conn) == CONNECTION_OK)
		return BW_OK;
	db_disconnect(db);
	snprintf(timeout, sizeof(timeout), "%d", BW_DB_CONNECT_TIMEOUT_S);
	keys[n] = "connect_timeout";
	vals[n++] = timeout;
	keys[n] = "application_name";
	vals[n++] = program_invocation_short_name;
	keys[n] = "keepalives";
	vals[n++] = "1";
	keys[n] = "keepalives_idle";
	vals[n++] = "30";
	keys[n] = "keepalives_interval";
	vals[n++] = "10";
	keys[n] = "keepalives_count";
	vals[n++] = "3";
	if (db->stmt_timeout_ms > 0 || db->generic) {
		/* Before dbname, so that options in the URL win. */
		options[0] = '\0';
		if (db->stmt_timeout_ms > 0)
			snprintf(options, sizeof(options),
			    "-c statement_timeout=%d ", db->stmt_timeout_ms);
		if (db->generic)
			snprintf(options + strlen(options),
			    sizeof(options) - strlen(options),
			    "-c plan_cache_mode=force_generic_plan");
		keys[n] = "options";
		vals[n++] = options;
	}
	keys[n] = "dbname";
	vals[n++] = db->conninfo;
	keys[n] = NULL;
	vals[n] = NULL;
	c = PQconnectdbParams(keys, vals, 1);
	if (c == NULL)
		return BW_ENOMEM;
	if (PQstatus(c) != CONNECTION_OK) {
		db_connect_failed(c);
		PQfinish(c);
		snprintf(db->sqlstate, sizeof(db->sqlstate), "08006");
		return BW_EDB;
	}
	PQsetNoticeReceiver(c, db_notice, db);
	db->conn = c;
	db_connect_logged_ms = -1;
	db_connect_unlogged = 0;
	if (db->on_connect != NULL && !db->in_hook) {
		/* A new session (a start, or a reconnect after a restart or
		 * a failover): the owner's warm-up before the statement that
		 * needed it. Never inside a transaction: db_execp() does not
		 * reconnect there. */
		db->in_hook = 1;
		er = db->on_connect(db, db->on_connect_arg);
		db->in_hook = 0;
		if (er == BW_OK &&
		    (db->broken || PQstatus(db->conn) != CONNECTION_OK))
			er = BW_EDB;
		if (er != BW_OK) {
			/* Refused (or broken): the session is not used. */
			db_disconnect(db);
			return er;
		}
	}
	return BW_OK;
}

void
db_set_on_connect(struct db *db, enum bw_err (*fn)(struct db *, void *),
    void		    *arg)
{
	if (db == NULL)
		return;
	db->on_connect = fn;
	db->on_connect_arg = arg;
}

PGconn *
db_conn(struct db *db)
{
	if (db == NULL || db->broken)
		return NULL;
	return db->conn;
}

int
db_in_tx(const struct db *db)
{
	return db->in_tx;
}

const char *
db_sqlstate(const struct db *db)
{
	return db->sqlstate;
}

/*
 * An idle connection whose server went away (restart, pg_terminate_backend)
 * has its FATAL message and EOF waiting on the socket; reading them now lets
 * us reconnect before sending anything. An idle server speaks only for
 * notices, NOTIFY and its own death, so a few rounds of reading while the
 * socket stays readable either drain it or find the EOF. Returns 1 when the
 * connection is dead.
 */
static int
db_idle_dead(struct db *db)
{
	struct pollfd pfd;
	int	      i;

	if (db->conn == NULL || PQstatus(db->conn) != CONNECTION_OK)
		return 1;
	if (PQtransactionStatus(db->conn) != PQTRANS_IDLE)
		return 0;
	for (i = 0; i < 4; i++) {
		pfd.fd = PQsocket(db->conn);
		pfd.events = POLLIN;
		pfd.revents = 0;
		if (pfd.fd < 0)
			return 1;
		if (poll(&pfd, 1, 0) <= 0 || pfd.revents == 0)
			return 0;
		if (PQconsumeInput(db->conn) == 0 ||
		    PQstatus(db->conn) != CONNECTION_OK)
			return 1;
	}
	return 0;
}

int
db_idle_fd(struct db *db)
{
	if (db == NULL || db->conn == NULL || db->broken || db->in_tx ||
	    PQstatus(db->conn) != CONNECTION_OK ||
	    PQtransactionStatus(db->conn) != PQTRANS_IDLE)
		return -1;
	return PQsocket(db->conn);
}

enum bw_err
db_idle_revive(struct db *db, bool *revived)
{
	enum bw_err er;

	*revived = false;
	if (db == NULL || db->in_tx)
		return BW_OK;
	if (db->conn != NULL && !db->broken && !db_idle_dead(db))
		return BW_OK;
	db->broken = 1;
	er = db_connect(db);
	*revived = er == BW_OK;
	return er;
}

/*
 * Maps the SQLSTATE of a refused statement to our error: 40001, 40P01
 * BW_ERETRY; 23505 BW_EEXISTS; other 22xxx, 23xxx BW_EINVAL; 57014
 * BW_ETIMEOUT; anything else (NULL included) BW_EDB.
 */
STATIC enum bw_err
db_map_state(const char *st)
{
	if (st == NULL)
		return BW_EDB;
	if (strcmp(st, "40001") == 0 || strcmp(st, "40P01") == 0)
		return BW_ERETRY;
	if (strcmp(st, "23505") == 0)
		return BW_EEXISTS;
	if (strncmp(st, "22", 2) == 0 || strncmp(st, "23", 2) == 0)
		return BW_EINVAL;
	if (strcmp(st, "57014") == 0)
		return BW_ETIMEOUT;
	return BW_EDB;
}

/*
 * Classifies a failed statement (res may be NULL when it could not even be
 * sent), records its SQLSTATE, marks the connection broken when it is, and
 * logs once. Expected outcomes (retry, unique violation) log at debug.
 * *fail tells whether the statement may have run. Returns the mapped error.
 */
static enum bw_err
db_fail(struct db *db, const PGresult *res, const char *what,
    enum db_fail *fail)
{
	const char    *st, *msg;
	enum bw_err    er;
	enum log_level ll;

	st = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	snprintf(db->sqlstate, sizeof(db->sqlstate), "%s", st ? st : "");
	/*
	 * 57P01..57P03 (shutdown, termination) always end the session; a 08
	 * code from the server itself (08P01 for a bad bind) does not.
	 */
	if (db->conn == NULL || PQstatus(db->conn) != CONNECTION_OK ||
	    strncmp(db->sqlstate, "57P", 3) == 0) {
		db->broken = 1;
		/*
		 * Nothing ran when libpq could not send the statement or when
		 * the server reported its own shutdown or our termination
		 * (57P01..57P03) or refused the connection (class 08): a FATAL
		 * aborts the statement's transaction. A connection that just
		 * vanished may have run and committed it.
		 */
		if (res == NULL || strncmp(db->sqlstate, "57P", 3) == 0 ||
		    strncmp(db->sqlstate, "08", 2) == 0)
			*fail = DBF_UNSENT;
		else
			*fail = DBF_LOST;
		if (db->sqlstate[0] == '\0')
			snprintf(db->sqlstate, sizeof(db->sqlstate), "08006");
		msg = db->conn != NULL ? PQerrorMessage(db->conn) : "";
		log_kv(LL_ERROR, "db error", "sqlstate", db->sqlstate, "detail",
		    msg, "stmt", what, NULL);
		return BW_EDB;
	}
	*fail = DBF_STATEMENT;
	er = db_map_state(db->sqlstate);
	msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	if (msg == NULL)
		msg = PQresultErrorMessage(res);
	if (er == BW_ERETRY || er == BW_EEXISTS)
		ll = LL_DEBUG;
	else if (er == BW_EINVAL)
		ll = LL_WARN;
	else
		ll = LL_ERROR;
	log_kv(ll, "db error", "sqlstate", db->sqlstate, "detail", msg, "stmt",
	    what, NULL);
	return er;
}

/* A short, single-line label for a statement, for logs. */
static void
db_label(const char *sql, char *out, size_t outsz)
{
	size_t i;

	for (i = 0; i + 1 < outsz && sql[i] != '\0'; i++)
		out[i] = (sql[i] == '\n' || sql[i] == '\t') ? ' ' : sql[i];
	out[i] = '\0';
}

/* 1 when name is in the per-connection prepared set. */
static int
db_is_prepared(const struct db *db, const char *name)
{
	size_t i;

	for (i = 0; i < db->nprepared; i++)
		if (strcmp(db->prepared[i], name) == 0)
			return 1;
	return 0;
}

static void
db_unmark_prepared(struct db *db, const char *name)
{
	size_t i;

	for (i = 0; i < db->nprepared; i++) {
		if (strcmp(db->prepared[i], name) == 0) {
			free(db->prepared[i]);
			db->prepared[i] = db->prepared[--db->nprepared];
			db->prepared[db->nprepared] = NULL;
			return;
		}
	}
}

/*
 * Prepares name unless this connection already has it. Returns BW_OK,
 * BW_ETOOBIG past BW_DB_MAX_PREPARED, or a mapped failure.
 */
static enum bw_err
db_prepare(struct db *db, const char *name, const char *sql, int nparams,
    enum db_fail *fail)
{
	PGresult   *res;
	enum bw_err er = BW_OK;
	char	   *copy;

	*fail = DBF_STATEMENT;
	if (db_is_prepared(db, name))
		return BW_OK;
	if (db->nprepared >= BW_DB_MAX_PREPARED) {
		log_kv(LL_ERROR, "db too many prepared statements", "stmt",
		    name, NULL);
		return BW_ETOOBIG;
	}
	copy = strdup(name);
	if (copy == NULL)
		return BW_ENOMEM;
	res = PQprepare(db->conn, name, sql, nparams, NULL);
	if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK) {
		/* 42P05: someone prepared it behind our back; it is there. */
		if (res != NULL && PQstatus(db->conn) == CONNECTION_OK &&
		    strcmp(PQresultErrorField(res, PG_DIAG_SQLSTATE)
			    ? PQresultErrorField(res, PG_DIAG_SQLSTATE)
			    : "",
			"42P05") == 0)
			er = BW_OK;
		else
			er = db_fail(db, res, name, fail);
	}
	PQclear(res);
	if (er != BW_OK) {
		free(copy);
		return er;
	}
	db->prepared[db->nprepared++] = copy;
	return BW_OK;
}

enum bw_err
db_warm(struct db *db, const struct db_stmt *stmts, size_t n)
{
	PGresult    *res = NULL;
	enum db_fail fail;
	enum bw_err  er;
	size_t	     i;
	char	     org[sizeof(db->org)];

	if (db == NULL || db->in_tx)
		return BW_EINVAL;
	er = db_connect(db);
	if (er == BW_OK)
		er = db_prepare(db, DB_ORG_STMT, DB_ORG_SQL, 1, &fail);
	for (i = 0; er == BW_OK && i < n; i++)
		er = db_prepare(db, stmts[i].name, stmts[i].sql,
		    stmts[i].nparams, &fail);
	if (er != BW_OK)
		return er;
	/* No tenant: the app role sees no tenant row (RLS), so the warm
	 * executions touch nothing; the caller's tenant comes back after. */
	snprintf(org, sizeof(org), "%s", db->org);
	db->org[0] = '\0';
	for (i = 0; er == BW_OK && i < n; i++) {
		if (stmts[i].warm == NULL)
			continue;
		er = db_execp(db, stmts[i].name, stmts[i].sql, stmts[i].nparams,
		    stmts[i].warm, &res);
		PQclear(res);
		res = NULL;
	}
	snprintf(db->org, sizeof(db->org), "%s", org);
	return er;
}

/*
 * Sends, in pipeline mode, the tenant's set_config (is_local) and the
 * statement, then one Sync: the two form one implicit transaction, so
 * the setting holds for that statement and dies with it, in the one round
 * trip the statement alone would take. Both are prepared beforehand.
 * Returns 1 when all went out; 0 otherwise (the connection is broken).
 */
static int
db_pipe_send(struct db *db, const char *name, const char *sql, int nparams,
    const char *const *params)
{
	const char *org = db->org;
	int	    ok;

	if (PQenterPipelineMode(db->conn) != 1) {
		db->broken = 1;
		return 0;
	}
	ok = PQsendQueryPrepared(db->conn, DB_ORG_STMT, 1, &org, NULL, NULL,
		 0) == 1 &&
	    (name != NULL ? PQsendQueryPrepared(db->conn, name, nparams, params,
				NULL, NULL, 0)
			  : PQsendQueryParams(db->conn, sql, nparams, NULL,
				params, NULL, NULL, 0)) == 1 &&
	    PQpipelineSync(db->conn) == 1;
	if (!ok) {
		db->broken = 1;
		return 0;
	}
	return 1;
}

/*
 * Reads what db_pipe_send() sent: the set_config's result, the statement's
 * and the Sync, and leaves pipeline mode. Returns the statement's result,
 * or the set_config's when that failed, or NULL when the connection was
 * lost (then the connection is marked broken).
 */
static PGresult *
db_pipe_recv(struct db *db)
{
	PGresult      *r, *got[2] = { NULL, NULL };
	ExecStatusType s;
	int	       q = 0, guard;

	for (guard = 0; guard < 16; guard++) {
		r = PQgetResult(db->conn);
		if (r == NULL) {
			if (PQstatus(db->conn) != CONNECTION_OK)
				break;
			q++; /* the end of one query's results */
			continue;
		}
		s = PQresultStatus(r);
		if (s == PGRES_PIPELINE_SYNC) {
			PQclear(r);
			break;
		}
		if (q < 2 && got[q] == NULL)
			got[q] = r;
		else
			PQclear(r);
	}
	if (PQexitPipelineMode(db->conn) != 1)
		db->broken = 1;
	if (got[0] != NULL && PQresultStatus(got[0]) != PGRES_TUPLES_OK) {
		PQclear(got[1]);
		return got[0];
	}
	PQclear(got[0]);
	return got[1];
}

/*
 * One attempt at a statement: through PQexecPrepared when name is not NULL
 * (preparing it first if needed, and once more if the server lost it),
 * otherwise PQexecParams. Outside a transaction with a tenant set, the
 * statement goes in a pipeline after the tenant's set_config
 * (db_pipe_send()). On success *res (if res not NULL) gets the result.
 */
static enum bw_err
db_run(struct db *db, const char *name, const char *sql, int nparams,
    const char *const *params, PGresult **res, enum db_fail *fail)
{
	PGresult      *r = NULL;
	ExecStatusType s;
	enum bw_err    er;
	char	       label[81];
	int	       again = 1, pipe, sent;

	*fail = DBF_STATEMENT;
	if (name == NULL)
		db_label(sql, label, sizeof(label));
	for (;;) {
		pipe = !db->in_tx && !db->simple && db->org[0] != '\0';
		sent = 0;
		if (pipe) {
			er = db_prepare(db, DB_ORG_STMT, DB_ORG_SQL, 1, fail);
			if (er != BW_OK)
				return er;
		}
		if (name != NULL) {
			er = db_prepare(db, name, sql, nparams, fail);
			if (er != BW_OK)
				return er;
		}
		if (pipe) {
			sent = db_pipe_send(db, name, sql, nparams, params);
			r = sent ? db_pipe_recv(db) : NULL;
		} else if (db->simple)
			r = PQexec(db->conn, sql);
		else if (name != NULL)
			r = PQexecPrepared(db->conn, name, nparams, params,
			    NULL, NULL, 0);
		else
			r = PQexecParams(db->conn, sql, nparams, NULL, params,
			    NULL, NULL, 0);
		s = r != NULL ? PQresultStatus(r) : PGRES_FATAL_ERROR;
		if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK) {
			db->sqlstate[0] = '\0';
			if (res != NULL)
				*res = r;
			else
				PQclear(r);
			return BW_OK;
		}
		/*
		 * 26000: the session lost the statement (DEALLOCATE ALL, a
		 * pooler). Outside a transaction prepare it once more; inside,
		 * the transaction is aborted, so let db_tx() run it again.
		 */
		if ((name != NULL || pipe) && r != NULL &&
		    PQstatus(db->conn) == CONNECTION_OK &&
		    PQresultErrorField(r, PG_DIAG_SQLSTATE) != NULL &&
		    strcmp(PQresultErrorField(r, PG_DIAG_SQLSTATE), "26000") ==
			0) {
			if (name != NULL)
				db_unmark_prepared(db, name);
			db_unmark_prepared(db, DB_ORG_STMT);
			if (db->in_tx) {
				PQclear(r);
				snprintf(db->sqlstate, sizeof(db->sqlstate),
				    "26000");
				log_kv(LL_WARN, "db prepared statement lost",
				    "stmt", name, NULL);
				return BW_ERETRY;
			}
			if (again) {
				again = 0;
				PQclear(r);
				continue;
			}
		}
		er = db_fail(db, r, name != NULL ? name : label, fail);
		/* Lost after it went out in a pipeline: it may have run. */
		if (sent && r == NULL && *fail == DBF_UNSENT)
			*fail = DBF_LOST;
		PQclear(r);
		return er;
	}
}

/*
 * The common body of db_exec() and db_execp(): connects if needed, and
 * outside a transaction reopens a dead connection and re-sends the statement
 * once when it cannot have run.
 */
static enum bw_err
db_exec_common(struct db *db, const char *name, const char *sql, int nparams,
    const char *const *params, PGresult **res)
{
	enum db_fail fail;
	enum bw_err  er;
	int	     attempt;

	db->last_fail = DBF_STATEMENT;
	if (nparams < 0 || (nparams > 0 && params == NULL))
		return BW_EINVAL;
	if (db->in_tx && (db->broken || db->conn == NULL)) {
		db->last_fail = DBF_UNSENT;
		snprintf(db->sqlstate, sizeof(db->sqlstate), "08003");
		return BW_EDB;
	}
	for (attempt = 0; attempt < 2; attempt++) {
		if (!db->in_tx && db_idle_dead(db))
			db->broken = 1;
		er = db_connect(db);
		if (er != BW_OK)
			return er;
		er = db_run(db, name, sql, nparams, params, res, &fail);
		db->last_fail = er == BW_OK ? DBF_STATEMENT : (int)fail;
		if (er == BW_OK || db->in_tx || fail != DBF_UNSENT)
			return er;
	}
	return er;
}

enum bw_err
db_exec(struct db *db, const char *sql, int nparams, const char *const *params,
    PGresult **res)
{
	return db_exec_common(db, NULL, sql, nparams, params, res);
}

enum bw_err
db_execp(struct db *db, const char *name, const char *sql, int nparams,
    const char *const *params, PGresult **res)
{
	if (name == NULL || name[0] == '\0')
		return BW_EINVAL;
	return db_exec_common(db, name, sql, nparams, params, res);
}

enum bw_err
db_sendp(struct db *db, const char *name, const char *sql, int nparams,
    const char *const *params)
{
	enum db_fail fail;
	enum bw_err  er;

	db->last_fail = DBF_STATEMENT;
	if (name == NULL || name[0] == '\0' || db->in_tx || nparams < 0 ||
	    (nparams > 0 && params == NULL))
		return BW_EINVAL;
	if (db_idle_dead(db))
		db->broken = 1;
	er = db_connect(db);
	if (er != BW_OK)
		return er;
	if (db->org[0] != '\0') {
		er = db_prepare(db, DB_ORG_STMT, DB_ORG_SQL, 1, &fail);
		if (er != BW_OK) {
			db->last_fail = (int)fail;
			return er;
		}
	}
	er = db_prepare(db, name, sql, nparams, &fail);
	if (er != BW_OK) {
		db->last_fail = (int)fail;
		return er;
	}
	db->piped = db->org[0] != '\0';
	if (db->piped ? !db_pipe_send(db, name, NULL, nparams, params)
		      : PQsendQueryPrepared(db->conn, name, nparams, params,
			    NULL, NULL, 0) != 1) {
		er = db_fail(db, NULL, name, &fail);
		db->last_fail = (int)fail;
		return er;
	}
	return BW_OK;
}

enum bw_err
db_recvp(struct db *db, const char *name, PGresult **res)
{
	PGresult      *r, *first = NULL;
	ExecStatusType s;
	enum db_fail   fail;
	enum bw_err    er;

	if (db->piped) {
		db->piped = 0;
		first = db_pipe_recv(db);
	} else
		/* Every result of the one statement, then NULL. */
		while ((r = PQgetResult(db->conn)) != NULL) {
			if (first == NULL)
				first = r;
			else
				PQclear(r);
		}
	s = first != NULL ? PQresultStatus(first) : PGRES_FATAL_ERROR;
	if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK) {
		db->sqlstate[0] = '\0';
		if (res != NULL)
			*res = first;
		else
			PQclear(first);
		return BW_OK;
	}
	er = db_fail(db, first, name, &fail);
	db->last_fail = (int)fail;
	/* 26000: the session lost the statement; the next use prepares. */
	if (first != NULL && strcmp(db->sqlstate, "26000") == 0) {
		db_unmark_prepared(db, name);
		db_unmark_prepared(db, DB_ORG_STMT);
	}
	PQclear(first);
	return er;
}

/* Sleeps before retry n (0-based): 5 ms * 2^n capped at 200 ms, jittered
 * to a random point in its upper half so that colliding txs spread out. */
static void
db_backoff(int n)
{
	struct timespec ts;
	uint32_t	ms = 5;

	while (n-- > 0 && ms < 200)
		ms *= 2;
	if (ms > 200)
		ms = 200;
	ms = ms / 2 + arc4random_uniform(ms / 2 + 1);
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/*
 * Sends COMMIT. A connection lost after it went out leaves the outcome
 * unknown (BW_EAMBIG): the server may have committed and lost only the
 * answer. So does a COMMIT that succeeded with the server's word that it
 * was not replicated to the synchronous standby (db_notice()): it is
 * durable on this server only, and a failover may lose it. A COMMIT
 * refused by the server, or never sent, did not commit.
 */
static enum bw_err
db_commit_stmt(struct db *db)
{
	enum bw_err er;
	int	    n0 = db->unrepl;

	er = db_exec(db, "COMMIT", 0, NULL, NULL);
	if (er != BW_OK && db->last_fail == DBF_LOST) {
		log_kv(LL_ERROR, "db commit outcome unknown", "sqlstate",
		    db->sqlstate, NULL);
		er = BW_EAMBIG;
	} else if (er == BW_OK && db->unrepl != n0)
		er = BW_EAMBIG;
	return er;
}

/*
 * BEGIN, and with a tenant set its set_config (is_local: SET LOCAL) in the
 * same round trip, as one simple query: the org is a checked UUID, so it
 * is quoted safely as a literal.
 */
static enum bw_err
db_begin_stmt(struct db *db, bool serializable)
{
	const char *begin = serializable
	    ? "BEGIN ISOLATION LEVEL SERIALIZABLE"
	    : "BEGIN ISOLATION LEVEL READ COMMITTED";
	char	    sql[160];
	enum bw_err er;

	if (db->org[0] == '\0')
		return db_exec(db, begin, 0, NULL, NULL);
	snprintf(sql, sizeof(sql),
	    "%s; SELECT set_config('bulwark.org_id', '%s', true)", begin,
	    db->org);
	db->simple = 1;
	er = db_exec(db, sql, 0, NULL, NULL);
	db->simple = 0;
	return er;
}

/*
 * One attempt at a transaction. Never re-sends anything once BEGIN went out;
 * a connection lost inside is BW_EDB and the caller decides.
 */
static enum bw_err
db_tx_once(struct db *db, bool			  serializable,
    enum bw_err (*fn)(struct db *, void *), void *arg)
{
	enum bw_err		er, er2;
	PGTransactionStatusType ts;

	er = db_begin_stmt(db, serializable);
	if (er != BW_OK)
		return er;
	db->in_tx = 1;
	er = fn(db, arg);
	if (er == BW_OK && !db->broken)
		er = db_commit_stmt(db);
	if (db->broken || db->conn == NULL) {
		db->in_tx = 0;
		return er == BW_OK || er == BW_ERETRY ? BW_EDB : er;
	}
	/* A failed COMMIT has already ended the transaction. */
	ts = PQtransactionStatus(db->conn);
	if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR) {
		er2 = db_exec(db, "ROLLBACK", 0, NULL, NULL);
		if (er2 != BW_OK && er == BW_OK)
			er = er2;
	}
	db->in_tx = 0;
	return er;
}

/* fn inside SAVEPOINT sN ... RELEASE, rolled back to it when fn fails. */
static enum bw_err
db_tx_savepoint(struct db *db, enum bw_err (*fn)(struct db *, void *),
    void		  *arg)
{
	char	    sql[48];
	enum bw_err er, er2;
	int	    n = db->nsave;

	snprintf(sql, sizeof(sql), "SAVEPOINT bw_s%d", n);
	er = db_exec(db, sql, 0, NULL, NULL);
	if (er != BW_OK)
		return er;
	db->nsave++;
	er = fn(db, arg);
	db->nsave--;
	if (db->broken || db->conn == NULL)
		return er == BW_OK ? BW_EDB : er;
	snprintf(sql, sizeof(sql), "%s bw_s%d",
	    er == BW_OK ? "RELEASE SAVEPOINT" : "ROLLBACK TO SAVEPOINT", n);
	er2 = db_exec(db, sql, 0, NULL, NULL);
	return er != BW_OK ? er : er2;
}

enum bw_err
db_begin(struct db *db)
{
	enum bw_err er;

	if (db->in_tx)
		return BW_ESTATE;
	er = db_begin_stmt(db, false);
	if (er != BW_OK)
		return er;
	db->in_tx = 1;
	db->outer = 1;
	db->nsave = 0;
	return BW_OK;
}

enum bw_err
db_end(struct db *db, bool commit)
{
	enum bw_err		er = BW_OK;
	PGTransactionStatusType ts;

	if (!db->in_tx || !db->outer)
		return BW_ESTATE;
	if (commit && !db->broken && db->conn != NULL)
		er = db_commit_stmt(db);
	else if (commit)
		er = BW_EDB;
	if (!db->broken && db->conn != NULL) {
		ts = PQtransactionStatus(db->conn);
		if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR)
			(void)db_exec(db, "ROLLBACK", 0, NULL, NULL);
	}
	db->in_tx = 0;
	db->outer = 0;
	db->nsave = 0;
	return er;
}

enum bw_err
db_tx(struct db *db, bool serializable, enum bw_err (*fn)(struct db *, void *),
    void *arg)
{
	enum bw_err er;
	int	    n;

	/*
	 * Nested: the inner work joins the outer transaction; inside
	 * db_begin()'s, within a savepoint, so that a failing fn undoes
	 * only its own writes, as its own transaction would have.
	 */
	if (db->in_tx && db->outer)
		return db_tx_savepoint(db, fn, arg);
	if (db->in_tx)
		return fn(db, arg);
	for (n = 0;; n++) {
		er = db_tx_once(db, serializable, fn, arg);
		if (er != BW_ERETRY || n >= BW_TX_RETRIES)
			break;
		db_backoff(n);
	}
	if (er == BW_ERETRY)
		log_kv(LL_WARN, "db transaction retries exhausted", "sqlstate",
		    db->sqlstate, NULL);
	return er;
}

/* Runs a lock function "SELECT fn($1::int,$2::int)"; *val its boolean. */
static enum bw_err
db_lockcall(struct db *db, const char *name, const char *sql, int32_t ns,
    int32_t key, int *val)
{
	char	    a[16], b[16];
	const char *p[2] = { a, b };
	PGresult   *res = NULL;
	enum bw_err er;

	snprintf(a, sizeof(a), "%" PRId32, ns);
	snprintf(b, sizeof(b), "%" PRId32, key);
	er = db_execp(db, name, sql, 2, p, &res);
	if (er != BW_OK)
		return er;
	if (val != NULL)
		*val = PQntuples(res) == 1 && !PQgetisnull(res, 0, 0) &&
		    PQgetvalue(res, 0, 0)[0] == 't';
	PQclear(res);
	return BW_OK;
}

enum bw_err
db_try_lock(struct db *db, int32_t ns, int32_t key, bool *got)
{
	enum bw_err er;
	int	    v = 0;

	er = db_lockcall(db, "db_try_lock",
	    "SELECT pg_try_advisory_lock($1::int, $2::int)", ns, key, &v);
	if (er == BW_OK)
		*got = v != 0;
	return er;
}

/* Returns BW_ESTATE when this session did not hold the lock. */
enum bw_err
db_unlock(struct db *db, int32_t ns, int32_t key)
{
	enum bw_err er;
	int	    v = 0;

	er = db_lockcall(db, "db_unlock",
	    "SELECT pg_advisory_unlock($1::int, $2::int)", ns, key, &v);
	if (er == BW_OK && !v) {
		log_kv(LL_WARN, "db unlock of a lock not held", NULL);
		er = BW_ESTATE;
	}
	return er;
}

/* Returns BW_ESTATE outside db_tx(). */
enum bw_err
db_xact_lock(struct db *db, int32_t ns, int32_t key)
{
	if (!db->in_tx)
		return BW_ESTATE;
	return db_lockcall(db, "db_xact_lock",
	    "SELECT pg_advisory_xact_lock($1::int, $2::int)", ns, key, NULL);
}

int32_t
db_lock_key(const char *a, const char *b)
{
	const unsigned char *s;
	uint32_t	     h = 2166136261u;

	for (s = (const unsigned char *)a; *s != '\0'; s++)
		h = (h ^ *s) * 16777619u;
	h = (h ^ '/') * 16777619u;
	for (s = (const unsigned char *)b; *s != '\0'; s++)
		h = (h ^ *s) * 16777619u;
	return (int32_t)h;
}

enum bw_err
db_ping(struct db *db, int64_t *latency_us)
{
	PGresult   *res = NULL;
	enum bw_err er;
	int64_t	    t0;

	t0 = clock_mono_us();
	er = db_execp(db, "db_ping", "SELECT 1", 0, NULL, &res);
	if (er != BW_OK)
		return er;
	PQclear(res);
	if (latency_us != NULL)
		*latency_us = clock_mono_us() - t0;
	return BW_OK;
}

enum bw_err
db_i64(const char *s, int64_t *out)
{
	char	 *end;
	long long v;

	if (s == NULL || *s == '\0')
		return BW_EINVAL;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return BW_EINVAL;
	*out = v;
	return BW_OK;
}

const char *
db_col_str(const PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		return NULL;
	return PQgetvalue(res, row, col);
}

char *
db_col_dup(const PGresult *res, int row, int col)
{
	const char *v = db_col_str(res, row, col);

	return v != NULL ? strdup(v) : NULL;
}

enum bw_err
db_col_i64(const PGresult *res, int row, int col, int64_t *out)
{
	const char *v = db_col_str(res, row, col);

	if (v == NULL)
		return BW_ENOTFOUND;
	return db_i64(v, out);
}

int64_t
db_col_i64_or(const PGresult *res, int row, int col, int64_t dflt)
{
	int64_t v;

	return db_col_i64(res, row, col, &v) == BW_OK ? v : dflt;
}

enum bw_err
db_f64(const char *s, double *out)
{
	char  *end;
	double v;

	if (s == NULL || *s == '\0')
		return BW_EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || *end != '\0' || !isfinite(v))
		return BW_EINVAL;
	*out = v;
	return BW_OK;
}

double
db_col_f64_or(const PGresult *res, int row, int col, double dflt)
{
	const char *s = db_col_str(res, row, col);
	double	    v;

	return s != NULL && db_f64(s, &v) == BW_OK ? v : dflt;
}

int64_t
db_rows(PGresult *res)
{
	int64_t v;

	return db_i64(PQcmdTuples(res), &v) == BW_OK ? v : -1;
}

enum bw_err
db_exec_batch(struct db *db, const char *name, const char *sql, int batch,
    int *n)
{
	const char *p[1];
	char	    b[16];
	PGresult   *res = NULL;
	enum bw_err er;

	snprintf(b, sizeof(b), "%d", batch);
	p[0] = b;
	er = db_execp(db, name, sql, 1, p, &res);
	if (er == BW_OK)
		*n = (int)db_col_i64_or(res, 0, 0, 0);
	PQclear(res);
	return er;
}
