/* SPDX-License-Identifier: MIT */
/*
 * The floor of a chat turn for dev/bench: a bare libfcgi responder with
 * bulwark-fcgi's prefork model whose every request makes the fewest hops
 * a turn with Bulwark's promises can make, and nothing else (no auth, no
 * JSON, no logs, no metrics):
 *
 *   1. Redis, one round trip: a script that takes a slot (the limiter and
 *      the global LLM slot folded into one call);
 *   2. PostgreSQL, one statement committed with its WAL flush: the durable
 *      hold that must exist before money is spent;
 *   3. the provider, one POST on a kept-alive connection (the same body
 *      dev/bench sends the simulator directly);
 *   4. PostgreSQL, one statement committed without waiting for its flush:
 *      the settlement;
 *   5. Redis, one round trip: the slot given back (and, in a real turn,
 *      the conversation appended in the same pipeline).
 *
 * A real turn makes two more Redis round trips (the limiter and the
 * conversation read are separate), reads its key and settings (cached per
 * child), and writes its logs and metrics; so its CPU per turn can only be
 * above this one's, and the ratio of the two is what Bulwark's own code
 * costs over the hops. docs/chat-cost.md reads the figures.
 *
 *	bare_turn SOCKET CHILDREN CONNINFO REDIS_HOST REDIS_PORT URL [KEY]
 *
 * CONNINFO's role must be able to create the table bench_floor_turns (the
 * first child creates it; dev/bench drops it). CONNINFO "-" leaves the two
 * PostgreSQL hops out: what nginx, FastCGI, Redis and the provider cost
 * without any database. URL is the provider's
 * chat completions address; KEY, when given, its bearer token.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <fcgiapp.h>
#include <hiredis/hiredis.h>
#include <libpq-fe.h>

#include "prefork.h"

#define BARE_MAX_REPLY 65536

static const char sql_table[] =
    "CREATE TABLE IF NOT EXISTS bench_floor_turns (id bigserial PRIMARY KEY,"
    " held bigint NOT NULL, charged bigint, state text NOT NULL"
    " DEFAULT 'held')";
static const char sql_hold[] =
    "INSERT INTO bench_floor_turns (held) VALUES ($1::bigint) RETURNING id";
static const char sql_settle[] =
    "WITH u AS (UPDATE bench_floor_turns SET state = 'settled',"
    " charged = $2::bigint WHERE id = $1::bigint RETURNING id)"
    " SELECT count(*), set_config('synchronous_commit', 'off', true)"
    " FROM u";
static const char lua_take[] = "local n = redis.call('INCR', KEYS[1]) "
			       "redis.call('PEXPIRE', KEYS[1], 60000) return n";
static const char lua_give[] = "return redis.call('DECR', KEYS[1])";
static const char body[] =
    "{\"model\":\"gpt-4o\",\"max_tokens\":512,\"messages\":"
    "[{\"role\":\"user\",\"content\":\"bench message\"}]}";

struct reply {
	char   b[BARE_MAX_REPLY];
	size_t n;
};

struct child {
	PGconn		  *pg;
	redisContext	  *rd;
	CURL		  *curl;
	struct curl_slist *hdrs;
	char		   take[41], give[41];
	struct reply	   r;
};

static size_t
bare_write(char *p, size_t size, size_t n, void *arg)
{
	struct reply *r = arg;
	size_t	      len = size * n;

	if (len > sizeof(r->b) - r->n)
		return 0;
	memcpy(r->b + r->n, p, len);
	r->n += len;
	return len;
}

static int
bare_load(redisContext *rd, const char *lua, char *sha)
{
	redisReply *x = redisCommand(rd, "SCRIPT LOAD %s", lua);
	int ok = x != NULL && x->type == REDIS_REPLY_STRING && x->len == 40;

	if (ok)
		memcpy(sha, x->str, 41);
	freeReplyObject(x);
	return ok ? 0 : -1;
}

/* One script call, one round trip; -1 when Redis did not answer a number. */
static int
bare_eval(redisContext *rd, const char *sha)
{
	redisReply *x = redisCommand(rd, "EVALSHA %s 1 floor:slot", sha);
	int	    ok = x != NULL && x->type == REDIS_REPLY_INTEGER;

	freeReplyObject(x);
	return ok ? 0 : -1;
}

static int
bare_open(struct child *c, char **argv)
{
	PGresult *res;
	char	  auth[256], *end;
	long	  port;

	if (strcmp(argv[3], "-") == 0)
		goto redis;
	c->pg = PQconnectdb(argv[3]);
	if (PQstatus(c->pg) != CONNECTION_OK)
		return -1;
	res = PQexec(c->pg, sql_table);
	PQclear(res);
	res = PQprepare(c->pg, "hold", sql_hold, 1, NULL);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		PQclear(res);
		return -1;
	}
	PQclear(res);
	res = PQprepare(c->pg, "settle", sql_settle, 2, NULL);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		PQclear(res);
		return -1;
	}
	PQclear(res);
redis:
	errno = 0;
	port = strtol(argv[5], &end, 10);
	if (errno != 0 || *end != '\0' || port < 1 || port > 65535)
		return -1;
	c->rd = redisConnect(argv[4], (int)port);
	if (c->rd == NULL || c->rd->err != 0 ||
	    bare_load(c->rd, lua_take, c->take) != 0 ||
	    bare_load(c->rd, lua_give, c->give) != 0)
		return -1;
	c->curl = curl_easy_init();
	if (c->curl == NULL)
		return -1;
	c->hdrs = curl_slist_append(NULL, "Content-Type: application/json");
	c->hdrs = curl_slist_append(c->hdrs, "Expect:");
	if (argv[7] != NULL) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s",
		    argv[7]);
		c->hdrs = curl_slist_append(c->hdrs, auth);
	}
	curl_easy_setopt(c->curl, CURLOPT_URL, argv[6]);
	curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, c->hdrs);
	curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, 30000L);
	curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, bare_write);
	curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &c->r);
	return 0;
}

/* The provider call; 1 when it answered 200 (its body in c->r). */
static int
bare_call(struct child *c)
{
	long code = 0;

	c->r.n = 0;
	if (curl_easy_perform(c->curl) != CURLE_OK ||
	    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &code) !=
		CURLE_OK ||
	    code != 200)
		c->r.n = 0;
	return c->r.n > 0;
}

/* One turn; 0 on success, the HTTP status to answer otherwise. */
static int
bare_turn(struct child *c)
{
	const char *p[2];
	PGresult   *res;
	char	    id[32];
	int	    ok;

	if (bare_eval(c->rd, c->take) != 0)
		return 503;
	if (c->pg == NULL)
		return bare_call(c) && bare_eval(c->rd, c->give) == 0 ? 0 : 502;
	p[0] = "1000";
	res = PQexecPrepared(c->pg, "hold", 1, p, NULL, NULL, 0);
	ok = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;
	if (ok)
		snprintf(id, sizeof(id), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	if (!ok) {
		(void)bare_eval(c->rd, c->give);
		return 503;
	}
	(void)bare_call(c);
	p[0] = id;
	p[1] = c->r.n > 0 ? "500" : "0";
	res = PQexecPrepared(c->pg, "settle", 2, p, NULL, NULL, 0);
	ok = PQresultStatus(res) == PGRES_TUPLES_OK;
	PQclear(res);
	if (bare_eval(c->rd, c->give) != 0 || !ok || c->r.n == 0)
		return 502;
	return 0;
}

/* One child: accept and answer until killed. Never returns. */
static void __attribute__((noreturn)) bare_child(int fd, void *arg)
{
	static const char   ok[] = "Status: 200 OK\r\n"
				   "Content-Type: application/json\r\n\r\n";
	static struct child c;
	char		  **argv = arg;
	FCGX_Request	    fr;
	char		    in[4096], status[64];
	int		    st;

	if (FCGX_Init() != 0 || FCGX_InitRequest(&fr, fd, 0) != 0 ||
	    bare_open(&c, argv) != 0) {
		fprintf(stderr, "bare_turn: child %d cannot connect: %s\n",
		    (int)getpid(), PQerrorMessage(c.pg));
		_exit(1);
	}
	while (FCGX_Accept_r(&fr) >= 0) {
		while (FCGX_GetStr(in, (int)sizeof(in), fr.in) > 0)
			;
		st = bare_turn(&c);
		if (st == 0) {
			FCGX_PutStr(ok, (int)sizeof(ok) - 1, fr.out);
			FCGX_PutStr(c.r.b, (int)c.r.n, fr.out);
		} else {
			snprintf(status, sizeof(status),
			    "Status: %d\r\nContent-Length: 0\r\n\r\n", st);
			FCGX_PutS(status, fr.out);
		}
		/* stdin was read to its end: close at once, as bulwark-fcgi
		 * does (fcgi/req.c, req_stdin_end()), not libfcgi's lingering
		 * close, so the floor stays below any turn. */
		(void)FCGX_Detach(&fr);
		FCGX_Finish_r(&fr);
	}
	_exit(0);
}

int
main(int argc, char **argv)
{
	int rc;

	if (argc != 7 && argc != 8) {
		fprintf(stderr,
		    "usage: bare_turn SOCKET CHILDREN CONNINFO "
		    "REDIS_HOST REDIS_PORT URL [KEY]\n");
		return 2;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
		return 1;
	rc = bench_prefork("bare_turn", argv[1], argv[2], bare_child, argv);
	curl_global_cleanup();
	return rc;
}
