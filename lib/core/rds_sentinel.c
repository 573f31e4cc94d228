/* SPDX-License-Identifier: MIT */
/*
 * Redis through Sentinel (redis_sentinels + redis_master_name): the
 * sentinels are asked for the master before a connect, a fresh connection
 * must say ROLE master (nothing is written to a replica), and a broken
 * connection or a READONLY/MASTERDOWN/LOADING reply forgets the master so
 * that the next connect asks again, with a back-off while no sentinel
 * answers. rds.c calls these when r->nsent > 0.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/rds.h"
#include "core/rds_int.h"

enum bw_err
rds_set_sentinels(struct rds *r, const char *list, const char *name)
{
	const char *p, *e, *he, *q, *pe;
	char	   *host;
	int	    port;

	if (r == NULL || list == NULL || list[0] == '\0')
		return BW_OK;
	/* As config.c checks redis_master_name: [A-Za-z0-9._-]{1,64}. */
	if (name == NULL || name[0] == '\0' || strlen(name) > 64 ||
	    strspn(name,
		"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		"0123456789._-") != strlen(name))
		return BW_ECONFIG;
	if ((r->master_name = strdup(name)) == NULL)
		return BW_ENOMEM;
	for (p = list;; p = e + 1) {
		while (*p == ' ' || *p == '\t')
			p++;
		e = p + strcspn(p, ",");
		he = q = NULL; /* host end, the ':' before the port */
		if (*p == '[') {
			he = memchr(p, ']', (size_t)(e - p));
			q = he != NULL && he[1] == ':' ? he + 1 : NULL;
			p++;
		} else {
			for (pe = p; pe < e; pe++)
				if (*pe == ':')
					q = pe;
			he = q;
		}
		if (q == NULL || he == NULL || he == p ||
		    r->nsent >= BW_REDIS_MAX_SENTINELS)
			return BW_ECONFIG;
		for (pe = e; pe > q + 1 && (pe[-1] == ' ' || pe[-1] == '\t');
		     pe--)
			;
		port = rds_num(q + 1, (size_t)(pe - q - 1), 1, 65535);
		if (port < 0)
			return BW_ECONFIG;
		if ((host = strndup(p, (size_t)(he - p))) == NULL)
			return BW_ENOMEM;
		r->shost[r->nsent] = host;
		r->sport[r->nsent++] = port;
		if (*e == '\0')
			break;
	}
	return BW_OK;
}

/*
 * Sentinel mode: the master is forgotten, so the next connect asks the
 * sentinels; not before the back-off, which doubles while discoveries fail.
 */
void
rds_lost_master(struct rds *r)
{
	int64_t now = clock_mono_ms();

	r->stale = 1;
	if (r->ask_wait_ms < RDS_ASK_MIN_MS)
		r->ask_wait_ms = RDS_ASK_MIN_MS;
	if (r->next_ask_ms < now + r->ask_wait_ms)
		r->next_ask_ms = now + r->ask_wait_ms;
	r->ask_wait_ms *= 2;
	if (r->ask_wait_ms > RDS_ASK_MAX_MS)
		r->ask_wait_ms = RDS_ASK_MAX_MS;
}

/*
 * 1 when an error reply says this server takes no writes now: a replica
 * (READONLY, also from a script's write), a replica that lost its master
 * (MASTERDOWN), or one still loading (LOADING). The command was not run.
 */
int
rds_not_master_reply(const redisReply *rep)
{
	return rep != NULL && rep->type == REDIS_REPLY_ERROR &&
	    (strncmp(rep->str, "READONLY", 8) == 0 ||
		strncmp(rep->str, "MASTERDOWN", 10) == 0 ||
		strncmp(rep->str, "LOADING", 7) == 0);
}

/*
 * Asks one sentinel (a fresh connection, RDS_SENTINEL_TIMEOUT_MS) for the
 * master's address. A sentinel that wants a password (NOAUTH) gets
 * redis_url's credentials. Returns BW_OK with *host (caller frees) and
 * *port, BW_ENOTFOUND when it does not know the name, or BW_EREDIS.
 */
static enum bw_err
rds_ask_sentinel(struct rds *r, int i, char **host, int *port)
{
	struct timeval tv;
	redisContext  *c;
	redisReply    *rep = NULL;
	const char    *av[3] = { "SENTINEL", "get-master-addr-by-name",
		   r->master_name };
	const char    *aa[3] = { "AUTH", NULL, NULL };
	enum bw_err    er = BW_EREDIS;
	int	       v, tries, an = 1;

	tv.tv_sec = 0;
	tv.tv_usec = RDS_SENTINEL_TIMEOUT_MS * 1000;
	c = redisConnectWithTimeout(r->shost[i], r->sport[i], tv);
	if (c == NULL)
		return BW_ENOMEM;
	if (c->err || redisSetTimeout(c, tv) != REDIS_OK)
		goto out;
	for (tries = 0; tries < 2; tries++) {
		rep = redisCommandArgv(c, 3, av, NULL);
		if (rep == NULL)
			goto out;
		if (tries == 0 && rep->type == REDIS_REPLY_ERROR &&
		    strncmp(rep->str, "NOAUTH", 6) == 0 &&
		    r->password != NULL) {
			freeReplyObject(rep);
			if (r->user != NULL)
				aa[an++] = r->user;
			aa[an++] = r->password;
			rep = redisCommandArgv(c, an, aa, NULL);
			if (rep == NULL || rep->type == REDIS_REPLY_ERROR)
				goto out;
			freeReplyObject(rep);
			rep = NULL;
			continue;
		}
		break;
	}
	if (rep->type == REDIS_REPLY_NIL) {
		er = BW_ENOTFOUND;
		goto out;
	}
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
	    rep->element[0]->type != REDIS_REPLY_STRING ||
	    rep->element[1]->type != REDIS_REPLY_STRING ||
	    rep->element[0]->len == 0 || rep->element[0]->len > 255)
		goto out;
	v = rds_num(rep->element[1]->str, rep->element[1]->len, 1, 65535);
	if (v < 0)
		goto out;
	*host = strndup(rep->element[0]->str, rep->element[0]->len);
	if (*host == NULL) {
		er = BW_ENOMEM;
		goto out;
	}
	*port = v;
	er = BW_OK;
out:
	if (er == BW_EREDIS)
		log_kv(LL_WARN, "redis sentinel did not answer", "sentinel",
		    r->shost[i], "detail",
		    c->err ? c->errstr
			   : (rep != NULL && rep->type == REDIS_REPLY_ERROR
				     ? rep->str
				     : "unexpected reply"),
		    NULL);
	if (rep != NULL)
		freeReplyObject(rep);
	redisFree(c);
	return er;
}

/*
 * Sentinel mode, before a connect: when the master is not known or was
 * lost, asks the sentinels in turn (the one that answered last first) and
 * keeps the first answer. Within the back-off after a failed discovery
 * it fails at once (BW_EREDIS), so a dead cluster costs no storm of
 * connects. Returns BW_OK with r->mhost set, BW_ENOMEM or BW_EREDIS.
 */
enum bw_err
rds_discover(struct rds *r)
{
	char	   *host = NULL, ports[16];
	enum bw_err er = BW_EREDIS;
	int	    k, i, port = 0, changed;

	if (r->mhost != NULL && !r->stale)
		return BW_OK;
	if (clock_mono_ms() < r->next_ask_ms)
		return BW_EREDIS;
	for (k = 0; k < r->nsent; k++) {
		i = (r->slast + k) % r->nsent;
		er = rds_ask_sentinel(r, i, &host, &port);
		if (er == BW_ENOMEM)
			return er;
		if (er == BW_OK) {
			r->slast = i;
			break;
		}
	}
	if (er != BW_OK) {
		log_kv(LL_ERROR, "redis master unknown: no sentinel named it",
		    "master_name", r->master_name, NULL);
		rds_lost_master(r);
		return BW_EREDIS;
	}
	changed =
	    r->mhost == NULL || strcmp(r->mhost, host) != 0 || r->mport != port;
	free(r->mhost);
	r->mhost = host;
	r->mport = port;
	r->stale = 0;
	if (changed) {
		snprintf(ports, sizeof(ports), "%d", port);
		log_kv(LL_INFO, "redis master from sentinel", "master_name",
		    r->master_name, "host", host, "port", ports, NULL);
	}
	return BW_OK;
}

/*
 * Sentinel mode, on a fresh connection: ROLE must say "master". A
 * sentinel's answer lags a failover by a moment, and a demoted master
 * comes back as a replica: nothing is written to a replica.
 */
enum bw_err
rds_check_master(struct rds *r)
{
	const char *av[1] = { "ROLE" };
	redisReply *rep;
	enum bw_err er = BW_EREDIS;
	int	    saved;

	rep = redisCommandArgv(r->c, 1, av, NULL);
	saved = errno;
	if (rep == NULL) {
		log_kv(LL_ERROR, "redis connect failed", "step", "role",
		    "detail", r->c->errstr, NULL);
		return rds_timedout(r->c, saved) ? BW_ETIMEOUT : BW_EREDIS;
	}
	if (rep->type == REDIS_REPLY_ARRAY && rep->elements >= 1 &&
	    rep->element[0]->type == REDIS_REPLY_STRING &&
	    strcmp(rep->element[0]->str, "master") == 0) {
		er = BW_OK;
		r->ask_wait_ms = 0;
		r->next_ask_ms = 0;
	} else
		log_kv(LL_WARN, "redis: the sentinels' master is no master",
		    "host", r->mhost, NULL);
	freeReplyObject(rep);
	return er;
}
