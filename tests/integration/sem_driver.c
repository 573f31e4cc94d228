/* SPDX-License-Identifier: MIT */
/*
 * sem_driver: drives lib/sem, lib/ratelimit, lib/conv and lib/breaker
 * against the Redis of $REDIS_URL for tests/integration/sem.sh and
 * ratelimit.sh. One line of output per event, so scripts count them.
 *
 *   sem_driver sem-hammer --tag T --orgs N --iters N [--org-base B]
 *       [--gcap 15 --ocap 5 --hold-ms 20 --lease-ms 5000 --wait-ms 10000]
 *     acquires, counts in-flight in "semtest:{llm}:T:*" (INCR, recording
 *     the max seen), holds, decrements, releases; prints
 *     "done ok=N timeout=N err=N lost=N reclaimed=N"
 *   sem_driver sem-one --org O [--gcap --ocap --lease-ms --wait-ms
 *       --hold-ms H] prints "acquired <lease> <wait_ms>" or "timeout
 *       <wait_ms>", holds, then "released ok|notfound|error"
 *   sem_driver rate-hammer --key K --limit N --window-s W --secs S
 *     prints "admit <server_us>" / "refuse <retry_after>" per check
 *   sem_driver rate-pair --route R --org O --ip I --org-limit N
 *       --org-window W --ip-limit N --ip-window W
 *     one two-rule check: "admitted|refused limit rem reset retry"
 *   sem_driver conv-append --org O --channel C --user U [--n 1]
 *     prints "turns <n>" after each append
 *   sem_driver brk allow|ok|fail|state --name N [--fails 3 --open-ms 1000
 *       --probe-ms 1000] prints "allowed|refused <state>" or "<state>"
 *   sem_driver brk slot|slot-ok --name N --org O [...]: the breaker asked
 *       by the slot's own script (sem_acquire_brk(), no wait); a granted
 *       lease is released at once, recording a success with slot-ok;
 *       prints "allowed <state>" (slot-ok: "allowed <state> -> <state
 *       after>") or "refused <state> <leases of O> <waiters of O>"
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chat/breaker.h"
#include "core/clock.h"
#include "chat/conv.h"
#include "platform/ratelimit.h"
#include "core/rds.h"
#include "chat/sem.h"

static const char *opt_names[] = {
	"tag",
	"orgs",
	"iters",
	"org-base",
	"gcap",
	"ocap",
	"hold-ms",
	"lease-ms",
	"wait-ms",
	"org",
	"key",
	"limit",
	"window-s",
	"secs",
	"route",
	"ip",
	"org-limit",
	"org-window",
	"ip-limit",
	"ip-window",
	"channel",
	"user",
	"n",
	"name",
	"fails",
	"open-ms",
	"probe-ms",
};
#define NOPT (sizeof(opt_names) / sizeof(opt_names[0]))
static const char *opt[NOPT];

static const char *
o_str(const char *name, const char *dflt)
{
	size_t i;

	for (i = 0; i < NOPT; i++)
		if (strcmp(opt_names[i], name) == 0)
			return opt[i] != NULL ? opt[i] : dflt;
	return dflt;
}

static long
o_num(const char *name, long dflt)
{
	const char *s = o_str(name, NULL);
	char	   *end;
	long	    v;

	if (s == NULL)
		return dflt;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0') {
		fprintf(stderr, "sem_driver: bad --%s\n", name);
		exit(2);
	}
	return v;
}

static void
msleep(long ms)
{
	struct timespec ts;

	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		continue;
}

/* INCRBY key by; when it went up, raises key:max to the new value. */
static struct rds_script track_lua = {
	.src = "local v = redis.call('INCRBY', KEYS[1], ARGV[1])\n"
	       "local m = tonumber(redis.call('GET', KEYS[2]) or '0')\n"
	       "if v > m then redis.call('SET', KEYS[2], v) end\n"
	       "return v\n"
};

static int
track(struct rds *r, const char *tag, const char *what, int by)
{
	char	    k[160], km[170], b[8];
	const char *av[3] = { k, km, b };
	redisReply *rep = NULL;
	enum bw_err er;

	snprintf(k, sizeof(k), "semtest:{llm}:%s:%s", tag, what);
	snprintf(km, sizeof(km), "%s:max", k);
	snprintf(b, sizeof(b), "%d", by);
	er = rds_eval(r, &track_lua, 2, 3, av, NULL, &rep);
	if (rep != NULL)
		freeReplyObject(rep);
	return er == BW_OK ? 0 : -1;
}

static int
sem_hammer(struct rds *r)
{
	const char	*tag = o_str("tag", "t");
	struct sem_lease l;
	struct sem_stats st;
	enum bw_err	 er;
	char		 org[64], what[80];
	long		 i, iters = o_num("iters", 50);
	long		 orgs = o_num("orgs", 20);
	long		 base = o_num("org-base", 0);
	long		 ok = 0, tmo = 0, err = 0, lost = 0, recl = 0;

	srand((unsigned)getpid() ^ (unsigned)clock_mono_us());
	for (i = 0; i < iters; i++) {
		snprintf(org, sizeof(org), "%s-org%ld", tag,
		    base + rand() % orgs);
		er = sem_acquire(r, org, (int)o_num("gcap", 15),
		    (int)o_num("ocap", 5), (int)o_num("lease-ms", 5000),
		    (int)o_num("wait-ms", 10000), &l, &st);
		recl += st.reclaimed;
		if (er == BW_ETIMEOUT) {
			tmo++;
			continue;
		}
		if (er != BW_OK) {
			err++;
			msleep(50);
			continue;
		}
		ok++;
		snprintf(what, sizeof(what), "o:%s", org);
		track(r, tag, "g", 1);
		track(r, tag, what, 1);
		msleep(o_num("hold-ms", 20));
		track(r, tag, "g", -1);
		track(r, tag, what, -1);
		er = sem_release(r, &l);
		if (er == BW_ENOTFOUND)
			lost++;
		else if (er != BW_OK)
			err++;
	}
	printf("done ok=%ld timeout=%ld err=%ld lost=%ld reclaimed=%ld\n", ok,
	    tmo, err, lost, recl);
	return 0;
}

static int
sem_one(struct rds *r)
{
	struct sem_lease l;
	struct sem_stats st;
	enum bw_err	 er;

	er = sem_acquire(r, o_str("org", "o"), (int)o_num("gcap", 15),
	    (int)o_num("ocap", 5), (int)o_num("lease-ms", 5000),
	    (int)o_num("wait-ms", 10000), &l, &st);
	if (er == BW_ETIMEOUT) {
		printf("timeout %lld\n", (long long)(st.wait_us / 1000));
		return 0;
	}
	if (er != BW_OK) {
		printf("error %s\n", bw_strerror(er));
		return 1;
	}
	printf("acquired %s %lld reclaimed=%d\n", l.id,
	    (long long)(st.wait_us / 1000), st.reclaimed);
	fflush(stdout);
	msleep(o_num("hold-ms", 0));
	er = sem_release(r, &l);
	printf("released %s\n",
	    er == BW_OK		     ? "ok"
		: er == BW_ENOTFOUND ? "notfound"
				     : "error");
	return 0;
}

/*
 * "sem-abandon": an acquire's first try sent as a pipeline's call, then
 * abandoned (the chat path when the budget refuses): what the try got,
 * then the org's leases and waiters after the abandon. With --name, the
 * breaker of that name is asked in the try.
 */
static const char *const first_names[] = { "queued", "granted", "breaker",
	"none" };

static int
sem_abandon(struct rds *r)
{
	struct sem_acquire_call ac;
	struct sem_brk		b;
	struct rds_call		call;
	const char *org = o_str("org", "o"), *name = o_str("name", NULL);
	char	    key[BRK_MAX_KEY];
	int	    nl = -1, nw = -1, first;

	memset(&b, 0, sizeof(b));
	if (name != NULL) {
		if (breaker_key(key, sizeof(key), name) != BW_OK)
			return 1;
		b.key = key;
		b.open_ms = (int)o_num("open-ms", 1000);
		b.probe_ms = (int)o_num("probe-ms", 1000);
	}
	if (sem_acquire_prep(&ac, org, (int)o_num("gcap", 15),
		(int)o_num("ocap", 5), (int)o_num("lease-ms", 5000),
		(int)o_num("wait-ms", 10000), name != NULL ? &b : NULL,
		&call) != BW_OK) {
		printf("error prep\n");
		return 1;
	}
	(void)rds_pipeline(r, &call, 1);
	sem_acquire_first(&ac, &call);
	if (call.reply != NULL)
		freeReplyObject(call.reply);
	first = ac.first;
	if (ac.er != BW_OK || first < 0 || first > 3) {
		printf("error %s\n", bw_strerror(ac.er));
		return 1;
	}
	sem_acquire_abandon(r, &ac);
	(void)sem_count(r, org, &nl);
	(void)sem_waiting(r, org, &nw);
	if (name != NULL)
		printf("abandoned %s %s %d %d\n", first_names[first],
		    breaker_state_name((enum brk_state)b.state), nl, nw);
	else
		printf("abandoned %s %d %d\n", first_names[first], nl, nw);
	return 0;
}

static int
rate_hammer(struct rds *r)
{
	struct rl_item	 it;
	struct rl_result res;
	int64_t		 end;

	memset(&it, 0, sizeof(it));
	snprintf(it.key, sizeof(it.key), "%s", o_str("key", "rl:{rl}:t"));
	it.limit = (int)o_num("limit", 30);
	it.window_s = (int)o_num("window-s", 60);
	end = clock_mono_ms() + o_num("secs", 5) * 1000;
	while (clock_mono_ms() < end) {
		if (rl_check(r, &it, 1, &res) != BW_OK) {
			printf("error\n");
			msleep(10);
			continue;
		}
		if (res.admitted)
			printf("admit %lld\n", (long long)res.now_us);
		else {
			printf("refuse %d\n", res.retry_after_s);
			msleep(5 + rand() % 20);
		}
	}
	return 0;
}

static int
rate_pair(struct rds *r)
{
	struct rl_item	 it[2];
	struct rl_result res;
	const char	*route = o_str("route", "chat");

	memset(it, 0, sizeof(it));
	if (rl_key(&it[0], route, RL_ORG, o_str("org", "o")) != BW_OK ||
	    rl_key(&it[1], route, RL_IP, o_str("ip", "127.0.0.1")) != BW_OK)
		return 2;
	it[0].limit = (int)o_num("org-limit", 30);
	it[0].window_s = (int)o_num("org-window", 60);
	it[1].limit = (int)o_num("ip-limit", 5);
	it[1].window_s = (int)o_num("ip-window", 10);
	if (rl_check(r, it, 2, &res) != BW_OK) {
		printf("error\n");
		return 1;
	}
	printf("%s %d %d %d %d\n", res.admitted ? "admitted" : "refused",
	    res.limit, res.remaining, res.reset_s, res.retry_after_s);
	return 0;
}

static int
conv_append(struct rds *r)
{
	struct conv_usage u = { 10, 20, 30 };
	int64_t		  turns = 0;
	long		  i;
	char		  msg[64];

	for (i = 0; i < o_num("n", 1); i++) {
		snprintf(msg, sizeof(msg), "hello %d/%ld", (int)getpid(), i);
		if (conv_append_turn(r, o_str("org", "o"),
			o_str("channel", "web"), o_str("user", "u"), msg,
			"reply", &u, NULL, &turns, NULL) != BW_OK) {
			printf("error\n");
			return 1;
		}
		printf("turns %lld\n", (long long)turns);
	}
	return 0;
}

/* "brk slot|slot-ok": the breaker as the slot's script asks it. */
static int
brk_slot(struct rds *r, const char *name, const struct brk_cfg *c, int ok)
{
	struct sem_brk	 b;
	struct sem_lease l;
	struct sem_stats ss;
	enum brk_state	 st = BRK_CLOSED;
	enum bw_err	 er;
	const char	*org = o_str("org", "brk-org");
	char		 key[BRK_MAX_KEY];
	int		 nl = -1, nw = -1;

	if (breaker_key(key, sizeof(key), name) != BW_OK)
		return 1;
	memset(&b, 0, sizeof(b));
	b.key = key;
	b.open_ms = c->open_ms;
	b.probe_ms = c->probe_ms;
	er = sem_acquire_brk(r, org, 15, 5, 5000, 0, &b, &l, &ss);
	if (er == BW_EUPSTREAM) {
		(void)sem_count(r, org, &nl);
		(void)sem_waiting(r, org, &nw);
		printf("refused %s %d %d\n",
		    breaker_state_name((enum brk_state)b.state), nl, nw);
		return 0;
	}
	if (er != BW_OK) {
		printf("error %s\n", bw_strerror(er));
		return 1;
	}
	er = sem_release_brk(r, &l, key, ok);
	if (er == BW_OK && ok)
		er = breaker_state(r, name, &st);
	if (er != BW_OK) {
		printf("error %s\n", bw_strerror(er));
		return 1;
	}
	if (ok)
		printf("allowed %s -> %s\n",
		    breaker_state_name((enum brk_state)b.state),
		    breaker_state_name(st));
	else
		printf("allowed %s\n",
		    breaker_state_name((enum brk_state)b.state));
	return 0;
}

static int
brk_cmd(struct rds *r, const char *what)
{
	struct brk_cfg c;
	enum brk_state st = BRK_CLOSED;
	enum bw_err    er;
	const char    *name = o_str("name", "test");
	int	       allowed = 0;

	c.fail_threshold = (int)o_num("fails", 3);
	c.open_ms = (int)o_num("open-ms", 1000);
	c.probe_ms = (int)o_num("probe-ms", 1000);
	if (strcmp(what, "slot") == 0 || strcmp(what, "slot-ok") == 0)
		return brk_slot(r, name, &c, what[4] == '-');
	if (strcmp(what, "allow") == 0) {
		er = breaker_allow(r, name, &c, &allowed, &st);
		if (er == BW_OK)
			printf("%s %s\n", allowed ? "allowed" : "refused",
			    breaker_state_name(st));
	} else if (strcmp(what, "ok") == 0 || strcmp(what, "fail") == 0) {
		er = breaker_record(r, name, &c, what[0] == 'o', &st);
		if (er == BW_OK)
			printf("%s\n", breaker_state_name(st));
	} else {
		er = breaker_state(r, name, &st);
		if (er == BW_OK)
			printf("%s\n", breaker_state_name(st));
	}
	if (er != BW_OK)
		printf("error %s\n", bw_strerror(er));
	return er == BW_OK ? 0 : 1;
}

int
main(int argc, char **argv)
{
	struct rds *r;
	const char *url = getenv("REDIS_URL");
	const char *mode;
	int	    i, argi = 2, rc = 2;
	size_t	    k;

	if (argc < 2) {
		fprintf(stderr, "usage: sem_driver MODE [--opt value]...\n");
		return 2;
	}
	mode = argv[1];
	if (strcmp(mode, "brk") == 0)
		argi = 3;
	for (i = argi; i + 1 < argc; i += 2) {
		if (strncmp(argv[i], "--", 2) != 0)
			return 2;
		for (k = 0; k < NOPT; k++)
			if (strcmp(argv[i] + 2, opt_names[k]) == 0)
				opt[k] = argv[i + 1];
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	r = rds_new(url != NULL ? url : "redis://127.0.0.1:6379");
	if (r == NULL)
		return 1;
	if (strcmp(mode, "sem-hammer") == 0)
		rc = sem_hammer(r);
	else if (strcmp(mode, "sem-one") == 0)
		rc = sem_one(r);
	else if (strcmp(mode, "sem-abandon") == 0)
		rc = sem_abandon(r);
	else if (strcmp(mode, "rate-hammer") == 0)
		rc = rate_hammer(r);
	else if (strcmp(mode, "rate-pair") == 0)
		rc = rate_pair(r);
	else if (strcmp(mode, "conv-append") == 0)
		rc = conv_append(r);
	else if (strcmp(mode, "brk") == 0 && argc > 2)
		rc = brk_cmd(r, argv[2]);
	rds_free(r);
	return rc;
}
