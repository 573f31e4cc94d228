/* SPDX-License-Identifier: MIT */
/*
 * Redis over hiredis 0.14 (blocking API): one connection per process with
 * timeouts on connect and every command, reopened when it breaks, argv
 * commands only, and EVALSHA with a SCRIPT LOAD fallback. Sentinel mode
 * (finding the master, following a failover) is in rds_sentinel.c.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <openssl/crypto.h>

#include "core/clock.h"
#include "core/config.h"
#include "core/limits.h"
#include "core/log.h"
#include "core/rds.h"
#include "core/rds_int.h"
#include "core/sec.h"

#define RDS_MAX_DB	  1024 /* SELECT index we accept in a URL */
#define RDS_MAX_ARGS	  1024 /* arguments to one EVALSHA */
/* A connection used this recently is not polled for a close first. */
#define RDS_IDLE_CHECK_MS 1000

/* Frees and wipes a possibly secret string. */
static void
rds_wipefree(char *s)
{
	if (s == NULL)
		return;
	OPENSSL_cleanse(s, strlen(s));
	free(s);
}

/* Parses a whole decimal string in [lo, hi]; -1 when it is not one. */
int
rds_num(const char *s, size_t n, int lo, int hi)
{
	long   v = 0;
	size_t i;

	if (n == 0 || n > 9)
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v < lo || v > hi ? -1 : (int)v;
}

/* A new string of s[0..n) with %XX decoded (RFC 3986 §2.1); NULL if bad. */
static char *
rds_unpct(const char *s, size_t n)
{
	char   *out;
	size_t	i, j = 0;
	uint8_t b;

	out = malloc(n + 1);
	if (out == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		if (s[i] != '%') {
			out[j++] = s[i];
			continue;
		}
		if (i + 2 >= n)
			goto bad;
		if (sec_unhex(s + i + 1, 2, &b, 1) != BW_OK || b == 0)
			goto bad;
		out[j++] = (char)b;
		i += 2;
	}
	out[j] = '\0';
	return out;
bad:
	OPENSSL_cleanse(out, n + 1);
	free(out);
	return NULL;
}

/*
 * Parses redis://[[user]:password@]host[:port][/db] (host may be [v6]) or
 * unix:///path[?db=N] into r. Returns 0, or -1 when malformed (ENOMEM
 * included; the caller cannot tell, and both refuse to connect).
 */
static int
rds_parse(struct rds *r, const char *url)
{
	const char *p, *at, *end, *hs, *he, *colon, *q;
	int	    v;

	r->port = 6379;
	r->db = 0;
	if (strncmp(url, "unix://", 7) == 0) {
		p = url + 7;
		if (p[0] != '/')
			return -1;
		q = strchr(p, '?');
		end = q != NULL ? q : p + strlen(p);
		r->path = strndup(p, (size_t)(end - p));
		if (r->path == NULL)
			return -1;
		if (q != NULL) {
			if (strncmp(q, "?db=", 4) != 0)
				return -1;
			v = rds_num(q + 4, strlen(q + 4), 0, RDS_MAX_DB);
			if (v < 0)
				return -1;
			r->db = v;
		}
		return 0;
	}
	if (strncmp(url, "redis://", 8) != 0)
		return -1;
	p = url + 8;
	end = p + strcspn(p, "/?#");
	/* The last '@' before the path ends the userinfo. */
	at = NULL;
	for (q = p; q < end; q++)
		if (*q == '@')
			at = q;
	if (at != NULL) {
		colon = memchr(p, ':', (size_t)(at - p));
		if (colon == NULL) {
			/* redis://password@host is not a form we guess at. */
			return -1;
		}
		if (colon > p) {
			r->user = rds_unpct(p, (size_t)(colon - p));
			if (r->user == NULL)
				return -1;
		}
		if (at - colon - 1 > 0) {
			r->password =
			    rds_unpct(colon + 1, (size_t)(at - colon - 1));
			if (r->password == NULL)
				return -1;
		}
		p = at + 1;
	}
	if (p < end && *p == '[') {
		hs = p + 1;
		he = memchr(hs, ']', (size_t)(end - hs));
		if (he == NULL)
			return -1;
		q = he + 1;
	} else {
		hs = p;
		he = memchr(p, ':', (size_t)(end - p));
		if (he == NULL)
			he = end;
		q = he;
	}
	if (he == hs)
		return -1;
	r->host = strndup(hs, (size_t)(he - hs));
	if (r->host == NULL)
		return -1;
	if (q < end) {
		if (*q != ':')
			return -1;
		v = rds_num(q + 1, (size_t)(end - q - 1), 1, 65535);
		if (v < 0)
			return -1;
		r->port = v;
	}
	if (*end == '/' && end[1] != '\0') {
		v = rds_num(end + 1, strlen(end + 1), 0, RDS_MAX_DB);
		if (v < 0)
			return -1;
		r->db = v;
	} else if (*end != '\0' && !(*end == '/' && end[1] == '\0'))
		return -1;
	return 0;
}

struct rds *
rds_new(const char *url)
{
	struct rds *r;

	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return NULL;
	r->url = strdup(url != NULL ? url : "");
	if (r->url == NULL) {
		free(r);
		return NULL;
	}
	if (rds_parse(r, r->url) != 0)
		r->bad_url = 1;
	return r;
}

struct rds *
rds_new_cfg(const struct config *cfg)
{
	struct rds *r = rds_new(cfg->redis_url);

	if (r == NULL)
		return NULL;
	if (cfg->redis_sentinels != NULL && cfg->redis_sentinels[0] != '\0' &&
	    rds_set_sentinels(r, cfg->redis_sentinels,
		cfg->redis_master_name) != BW_OK)
		/* Malformed (config.c checks it first): never connects. */
		r->bad_url = 1;
	return r;
}

/* Drops the connection; the next command reconnects. */
static void
rds_drop(struct rds *r)
{
	if (r->c != NULL)
		redisFree(r->c);
	r->c = NULL;
}

void
rds_free(struct rds *r)
{
	int i;

	if (r == NULL)
		return;
	rds_drop(r);
	for (i = 0; i < r->nsent; i++)
		free(r->shost[i]);
	free(r->master_name);
	free(r->mhost);
	rds_wipefree(r->url);
	rds_wipefree(r->password);
	rds_wipefree(r->user);
	free(r->host);
	free(r->path);
	free(r);
}

/* The command timeout as a timeval. */
static struct timeval
rds_tv(void)
{
	struct timeval tv;

	tv.tv_sec = BW_REDIS_TIMEOUT_MS / 1000;
	tv.tv_usec = (BW_REDIS_TIMEOUT_MS % 1000) * 1000;
	return tv;
}

/* 1 when the last I/O error on c was a timeout (errno saved by caller). */
int
rds_timedout(const redisContext *c, int saved)
{
	return c->err == REDIS_ERR_IO &&
	    (saved == EAGAIN || saved == EWOULDBLOCK || saved == ETIMEDOUT ||
		saved == EINPROGRESS);
}

/*
 * Sends one command on a fresh connection during set-up (AUTH, SELECT).
 * Returns BW_OK, BW_ETIMEOUT, or BW_EREDIS (logged without the arguments,
 * which may be a password).
 */
static enum bw_err
rds_setup_cmd(struct rds *r, int argc, const char **argv, const char *what)
{
	redisReply *rep;
	int	    saved;
	enum bw_err er = BW_OK;

	rep = redisCommandArgv(r->c, argc, argv, NULL);
	saved = errno;
	if (rep == NULL) {
		er = rds_timedout(r->c, saved) ? BW_ETIMEOUT : BW_EREDIS;
		log_kv(LL_ERROR, "redis connect failed", "step", what, "detail",
		    r->c->errstr, NULL);
		return er;
	}
	if (rep->type == REDIS_REPLY_ERROR) {
		log_kv(LL_ERROR, "redis connect failed", "step", what, "detail",
		    rep->str, NULL);
		er = BW_EREDIS;
	}
	freeReplyObject(rep);
	return er;
}

/*
 * Connects when not connected: one attempt, with BW_REDIS_TIMEOUT_MS on the
 * connect and on every later command; AUTH and SELECT as the URL says.
 * Returns BW_OK, BW_ECONFIG (malformed URL), BW_ENOMEM, BW_ETIMEOUT or
 * BW_EREDIS (logged).
 */
enum bw_err
rds_connect(struct rds *r)
{
	struct timeval tv = rds_tv();
	const char    *av[3];
	char	       dbs[16];
	enum bw_err    er;
	int	       saved;

	if (r->c != NULL)
		return BW_OK;
	if (r->bad_url) {
		log_kv(LL_ERROR, "redis url malformed", NULL);
		return BW_ECONFIG;
	}
	if (r->nsent > 0) {
		er = rds_discover(r);
		if (er != BW_OK)
			return er;
		r->c = redisConnectWithTimeout(r->mhost, r->mport, tv);
	} else if (r->path != NULL)
		r->c = redisConnectUnixWithTimeout(r->path, tv);
	else
		r->c = redisConnectWithTimeout(r->host, r->port, tv);
	saved = errno;
	if (r->c == NULL)
		return BW_ENOMEM;
	if (r->c->err) {
		er = rds_timedout(r->c, saved) ? BW_ETIMEOUT : BW_EREDIS;
		log_kv(LL_ERROR, "redis connect failed", "detail", r->c->errstr,
		    NULL);
		goto out;
	}
	if (redisSetTimeout(r->c, tv) != REDIS_OK) {
		er = BW_EREDIS;
		log_kv(LL_ERROR, "redis connect failed", "step", "timeout",
		    NULL);
		goto out;
	}
	er = BW_OK;
	if (r->password != NULL) {
		av[0] = "AUTH";
		if (r->user != NULL) {
			av[1] = r->user;
			av[2] = r->password;
			er = rds_setup_cmd(r, 3, av, "auth");
		} else {
			av[1] = r->password;
			er = rds_setup_cmd(r, 2, av, "auth");
		}
		if (er != BW_OK)
			goto out;
	}
	if (r->db != 0) {
		snprintf(dbs, sizeof(dbs), "%d", r->db);
		av[0] = "SELECT";
		av[1] = dbs;
		er = rds_setup_cmd(r, 2, av, "select");
		if (er != BW_OK)
			goto out;
	}
	if (r->nsent > 0)
		er = rds_check_master(r);
out:
	if (er != BW_OK) {
		rds_drop(r);
		if (r->nsent > 0)
			rds_lost_master(r);
	}
	return er;
}

/*
 * Outside pub/sub Redis never speaks first, so an idle connection with
 * something to read has been closed (CLIENT KILL, restart, timeout). A
 * connection that answered less than RDS_IDLE_CHECK_MS ago is not polled
 * (one system call per round trip saved): if it was closed since, the
 * send or the read fails and the caller's one retry on a fresh connection
 * covers it, as for any break.
 */
static int
rds_idle_dead(const struct rds *r)
{
	struct pollfd pfd;

	if (clock_mono_ms() - r->last_ms < RDS_IDLE_CHECK_MS)
		return 0;

	pfd.fd = r->c->fd;
	pfd.events = POLLIN;
	pfd.revents = 0;
	if (poll(&pfd, 1, 0) < 0)
		return 0;
	return pfd.revents != 0;
}

/*
 * Drops a connection the server closed while idle; in Sentinel mode the
 * master may have changed, so the sentinels are asked at once.
 */
static void
rds_drop_idle(struct rds *r)
{
	rds_drop(r);
	if (r->nsent > 0) {
		r->stale = 1;
		r->next_ask_ms = 0;
	}
}

/*
 * Sends argv and reads the reply, reopening a dead connection and sending
 * once more after an I/O failure that is not a timeout (after a timeout the
 * server is stuck; waiting again would double the caller's wait). Error
 * replies are returned as a reply with BW_OK: callers decide.
 */
static enum bw_err
rds_send(struct rds *r, int argc, const char **argv, const size_t *lens,
    redisReply **reply)
{
	redisReply *rep;
	enum bw_err er = BW_EREDIS;
	int	    attempt, saved;

	for (attempt = 0; attempt < 2; attempt++) {
		if (r->c != NULL && rds_idle_dead(r))
			rds_drop_idle(r);
		er = rds_connect(r);
		if (er != BW_OK)
			return er;
		rep = redisCommandArgv(r->c, argc, argv, lens);
		saved = errno;
		if (rep != NULL && r->nsent > 0 && rds_not_master_reply(rep)) {
			/* Not run: sent once more to the master. */
			log_kv(LL_WARN, "redis: no longer the master",
			    "command", argv[0], "detail", rep->str, NULL);
			rds_drop(r);
			rds_lost_master(r);
			r->next_ask_ms = 0;
			if (attempt == 0) {
				freeReplyObject(rep);
				continue;
			}
		}
		if (rep != NULL) {
			r->last_ms = clock_mono_ms();
			*reply = rep;
			return BW_OK;
		}
		if (r->c->err == REDIS_ERR_OOM) {
			rds_drop(r);
			return BW_ENOMEM;
		}
		er = rds_timedout(r->c, saved) ? BW_ETIMEOUT : BW_EREDIS;
		log_kv(attempt == 0 && er != BW_ETIMEOUT ? LL_WARN : LL_ERROR,
		    "redis i/o error", "command", argv[0], "detail",
		    r->c->errstr, NULL);
		/* The stream is out of step now; never reuse it. */
		rds_drop(r);
		if (r->nsent > 0) {
			/* The master may have changed: ask at once. */
			rds_lost_master(r);
			r->next_ask_ms = 0;
		}
		if (er == BW_ETIMEOUT)
			return er;
	}
	return er;
}

enum bw_err
rds_cmd(struct rds *r, int argc, const char **argv, const size_t *lens,
    redisReply **reply)
{
	redisReply *rep = NULL;
	enum bw_err er;

	if (argc < 1 || argv == NULL)
		return BW_EINVAL;
	er = rds_send(r, argc, argv, lens, &rep);
	if (er != BW_OK)
		return er;
	if (rep->type == REDIS_REPLY_ERROR) {
		log_kv(LL_ERROR, "redis error reply", "command", argv[0],
		    "detail", rep->str, NULL);
		er = BW_EREDIS;
	}
	if (reply != NULL)
		*reply = rep;
	else
		freeReplyObject(rep);
	return er;
}

/* SCRIPT LOAD s->src, storing the SHA-1 the server returns. */
static enum bw_err
rds_script_load(struct rds *r, struct rds_script *s)
{
	const char *av[3] = { "SCRIPT", "LOAD", s->src };
	redisReply *rep = NULL;
	enum bw_err er;

	er = rds_cmd(r, 3, av, NULL, &rep);
	if (er == BW_OK &&
	    (rep->type != REDIS_REPLY_STRING || rep->len != 40)) {
		log_kv(LL_ERROR, "redis script load: unexpected reply", NULL);
		er = BW_EREDIS;
	}
	if (er == BW_OK) {
		memcpy(s->sha, rep->str, 40);
		s->sha[40] = '\0';
	}
	if (rep != NULL)
		freeReplyObject(rep);
	return er;
}

/*
 * EVALSHA sha nkeys argv...; loads the script on first use, and again when
 * the server answers NOSCRIPT (restart, SCRIPT FLUSH, failover). Error
 * replies are BW_EREDIS with the reply handed over when reply is not NULL.
 */
enum bw_err
rds_eval(struct rds *r, struct rds_script *s, int nkeys, int argc,
    const char **argv, const size_t *lens, redisReply **reply)
{
	const char **av = NULL;
	size_t	    *al = NULL;
	redisReply  *rep = NULL;
	char	     nk[16];
	enum bw_err  er = BW_EREDIS;
	int	     i, tries;

	if (s == NULL || s->src == NULL || argc < 0 || argc > RDS_MAX_ARGS ||
	    nkeys < 0 || nkeys > argc || (argc > 0 && argv == NULL))
		return BW_EINVAL;
	av = calloc((size_t)argc + 3, sizeof(*av));
	al = calloc((size_t)argc + 3, sizeof(*al));
	if (av == NULL || al == NULL) {
		er = BW_ENOMEM;
		goto out;
	}
	snprintf(nk, sizeof(nk), "%d", nkeys);
	av[0] = "EVALSHA";
	av[1] = s->sha;
	av[2] = nk;
	al[0] = 7;
	al[1] = 40;
	al[2] = strlen(nk);
	for (i = 0; i < argc; i++) {
		av[i + 3] = argv[i];
		al[i + 3] = lens != NULL ? lens[i] : strlen(argv[i]);
	}
	for (tries = 0; tries < 2; tries++) {
		if (s->sha[0] == '\0') {
			er = rds_script_load(r, s);
			if (er != BW_OK)
				goto out;
		}
		er = rds_send(r, argc + 3, av, al, &rep);
		if (er != BW_OK)
			goto out;
		if (rep->type == REDIS_REPLY_ERROR &&
		    strncmp(rep->str, "NOSCRIPT", 8) == 0 && tries == 0) {
			freeReplyObject(rep);
			rep = NULL;
			s->sha[0] = '\0';
			continue;
		}
		break;
	}
	if (rep->type == REDIS_REPLY_ERROR) {
		log_kv(LL_ERROR, "redis script error", "detail", rep->str,
		    NULL);
		er = BW_EREDIS;
	}
	if (reply != NULL) {
		*reply = rep;
		rep = NULL;
	}
out:
	if (rep != NULL)
		freeReplyObject(rep);
	free(av);
	free(al);
	return er;
}

/* The argv of one pipelined call: EVALSHA sha nkeys args..., or args. */
struct rds_pargs {
	const char **av;
	size_t	    *al;
	int	     ac;
	char	     nk[16];
};

static enum bw_err
rds_pargs_make(struct rds_pargs *p, const struct rds_call *c)
{
	int i, o = c->script != NULL ? 3 : 0;

	p->ac = c->argc + o;
	p->av = calloc((size_t)p->ac + 1, sizeof(*p->av));
	p->al = calloc((size_t)p->ac + 1, sizeof(*p->al));
	if (p->av == NULL || p->al == NULL)
		return BW_ENOMEM;
	if (c->script != NULL) {
		snprintf(p->nk, sizeof(p->nk), "%d", c->nkeys);
		p->av[0] = "EVALSHA";
		p->av[1] = c->script->sha;
		p->av[2] = p->nk;
		p->al[0] = 7;
		p->al[1] = 40;
		p->al[2] = strlen(p->nk);
	}
	for (i = 0; i < c->argc; i++) {
		p->av[o + i] = c->argv[i];
		p->al[o + i] =
		    c->lens != NULL ? c->lens[i] : strlen(c->argv[i]);
	}
	return BW_OK;
}

/*
 * Sends the pipeline once and reads what it can: *nread replies were read
 * (calls[0..*nread) have theirs). Returns BW_OK, or the I/O error that
 * stopped it (the connection is dropped then).
 */
static enum bw_err
rds_pipe_once(struct rds *r, struct rds_call *calls, struct rds_pargs *pa,
    size_t n, size_t *nread)
{
	redisReply *rep;
	enum bw_err er;
	size_t	    i;
	int	    saved;

	*nread = 0;
	if (r->c != NULL && rds_idle_dead(r))
		rds_drop_idle(r);
	er = rds_connect(r);
	if (er != BW_OK)
		return er;
	for (i = 0; i < n; i++)
		if (redisAppendCommandArgv(r->c, pa[i].ac, pa[i].av,
			pa[i].al) != REDIS_OK) {
			rds_drop(r);
			return BW_ENOMEM;
		}
	for (i = 0; i < n; i++) {
		rep = NULL;
		if (redisGetReply(r->c, (void **)&rep) != REDIS_OK ||
		    rep == NULL) {
			saved = errno;
			er = r->c->err == REDIS_ERR_OOM ? BW_ENOMEM
			    : rds_timedout(r->c, saved) ? BW_ETIMEOUT
							: BW_EREDIS;
			log_kv(LL_WARN, "redis i/o error", "command",
			    "pipeline", "detail", r->c->errstr, NULL);
			rds_drop(r);
			if (r->nsent > 0) {
				rds_lost_master(r);
				r->next_ask_ms = 0;
			}
			return er;
		}
		calls[i].reply = rep;
		(*nread)++;
	}
	r->last_ms = clock_mono_ms();
	for (i = 0; r->nsent > 0 && i < n; i++)
		if (rds_not_master_reply(calls[i].reply)) {
			/* Answered as errors; the next call finds the master. */
			rds_drop(r);
			rds_lost_master(r);
			r->next_ask_ms = 0;
			break;
		}
	return BW_OK;
}

enum bw_err
rds_pipeline(struct rds *r, struct rds_call *calls, size_t n)
{
	struct rds_pargs pa[8];
	enum bw_err	 er = BW_OK, first = BW_OK;
	size_t		 i, nread = 0;
	int		 attempt;

	if (n == 0 || n > sizeof(pa) / sizeof(pa[0]) || calls == NULL)
		return BW_EINVAL;
	memset(pa, 0, sizeof(pa));
	for (i = 0; i < n; i++) {
		calls[i].reply = NULL;
		calls[i].er = BW_EREDIS;
		if (calls[i].argc < 0 || calls[i].argc > RDS_MAX_ARGS ||
		    (calls[i].script == NULL && calls[i].argc < 1) ||
		    (calls[i].script != NULL &&
			(calls[i].script->src == NULL || calls[i].nkeys < 0 ||
			    calls[i].nkeys > calls[i].argc))) {
			er = BW_EINVAL;
			goto out;
		}
		/* A script not yet loaded: loaded first (once per process). */
		if (calls[i].script != NULL &&
		    calls[i].script->sha[0] == '\0') {
			er = rds_script_load(r, calls[i].script);
			if (er != BW_OK)
				goto out;
		}
		er = rds_pargs_make(&pa[i], &calls[i]);
		if (er != BW_OK)
			goto out;
	}
	for (attempt = 0; attempt < 2; attempt++) {
		er = rds_pipe_once(r, calls, pa, n, &nread);
		/* Resent only when nothing ran for sure: no reply read. */
		if (er == BW_OK || nread > 0 || er == BW_ETIMEOUT ||
		    er == BW_ENOMEM)
			break;
	}
out:
	for (i = 0; i < n; i++) {
		if (i >= nread) {
			calls[i].er = er != BW_OK ? er : BW_EREDIS;
		} else if (calls[i].reply->type != REDIS_REPLY_ERROR) {
			calls[i].er = BW_OK;
		} else if (calls[i].script != NULL &&
		    strncmp(calls[i].reply->str, "NOSCRIPT", 8) == 0) {
			/* The server lost it: load and run this one alone. */
			freeReplyObject(calls[i].reply);
			calls[i].reply = NULL;
			calls[i].script->sha[0] = '\0';
			calls[i].er = rds_eval(r, calls[i].script,
			    calls[i].nkeys, calls[i].argc, calls[i].argv,
			    calls[i].lens, &calls[i].reply);
		} else {
			log_kv(LL_ERROR, "redis error reply", "command",
			    calls[i].script != NULL ? "EVALSHA"
						    : calls[i].argv[0],
			    "detail", calls[i].reply->str, NULL);
			calls[i].er = BW_EREDIS;
		}
		if (first == BW_OK && calls[i].er != BW_OK)
			first = calls[i].er;
		free(pa[i].av);
		free(pa[i].al);
	}
	return first;
}

enum bw_err
rds_ping(struct rds *r, int64_t *latency_us)
{
	const char *av[1] = { "PING" };
	redisReply *rep = NULL;
	enum bw_err er;
	int64_t	    t0;

	t0 = clock_mono_us();
	er = rds_cmd(r, 1, av, NULL, &rep);
	if (er == BW_OK &&
	    (rep->type != REDIS_REPLY_STATUS || strcmp(rep->str, "PONG") != 0))
		er = BW_EREDIS;
	if (rep != NULL)
		freeReplyObject(rep);
	if (er == BW_OK && latency_us != NULL)
		*latency_us = clock_mono_us() - t0;
	return er;
}

int
rds_word_ok(const char *s, size_t max)
{
	size_t i;

	if (s == NULL || s[0] == '\0')
		return 0;
	for (i = 0; s[i] != '\0'; i++) {
		if (i >= max)
			return 0;
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
			(s[i] >= 'A' && s[i] <= 'Z') ||
			(s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
			s[i] == '-'))
			return 0;
	}
	return 1;
}

long long
rds_int(const redisReply *rep, int i)
{
	if (rep == NULL)
		return -1;
	if (i < 0)
		return rep->type == REDIS_REPLY_INTEGER ? rep->integer : -1;
	if (rep->type != REDIS_REPLY_ARRAY || (size_t)i >= rep->elements ||
	    rep->element[i] == NULL ||
	    rep->element[i]->type != REDIS_REPLY_INTEGER)
		return -1;
	return rep->element[i]->integer;
}
