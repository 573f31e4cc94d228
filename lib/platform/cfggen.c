/* SPDX-License-Identifier: MIT */
/* The configuration generation in Redis (see cfggen.h). */
#include <string.h>

#include "core/log.h"
#include "core/sec.h"
#include "platform/cfggen.h"

/* KEYS[1] the generation; ARGV[1] the value to set when it is missing. */
static struct rds_script cfggen_lua = {
	.src = "local g = redis.call('GET', KEYS[1])\n"
	       "if not g then\n"
	       "  g = ARGV[1]\n"
	       "  redis.call('SET', KEYS[1], g)\n"
	       "end\n"
	       "return g\n"
};

enum bw_err
cfggen_new(char out[CFGGEN_LEN + 1])
{
	uint8_t	    rnd[16];
	enum bw_err er;

	er = sec_random(rnd, sizeof(rnd));
	if (er != BW_OK)
		return er;
	out[0] = 'g';
	sec_hex(rnd, sizeof(rnd), out + 1);
	out[CFGGEN_LEN] = '\0';
	return BW_OK;
}

enum bw_err
cfggen_read(struct rds *rds, char *out, size_t n)
{
	const char *av[2];
	char	    fresh[CFGGEN_LEN + 1];
	redisReply *rep = NULL;
	enum bw_err er;

	if (rds == NULL || out == NULL || n < CFGGEN_LEN + 1)
		return BW_EINVAL;
	out[0] = '\0';
	er = cfggen_new(fresh);
	if (er != BW_OK)
		return er;
	av[0] = CFGGEN_KEY;
	av[1] = fresh;
	er = rds_eval(rds, &cfggen_lua, 1, 2, av, NULL, &rep);
	if (er == BW_OK &&
	    (rep->type != REDIS_REPLY_STRING || rep->len == 0 || rep->len >= n))
		er = BW_EREDIS;
	if (er == BW_OK)
		memcpy(out, rep->str, rep->len + 1);
	if (rep != NULL)
		freeReplyObject(rep);
	return er == BW_OK || er == BW_EINVAL ? er : BW_EREDIS;
}

enum bw_err
cfggen_bump(struct rds *rds)
{
	const char *av[3];
	char	    v[CFGGEN_LEN + 1];
	redisReply *rep = NULL;
	enum bw_err er;

	if (rds == NULL)
		return BW_EINVAL;
	er = cfggen_new(v);
	if (er != BW_OK)
		return er;
	av[0] = "SET";
	av[1] = CFGGEN_KEY;
	av[2] = v;
	er = rds_cmd(rds, 3, av, NULL, &rep);
	if (rep != NULL)
		freeReplyObject(rep);
	if (er != BW_OK)
		return BW_EREDIS;
	log_kv(LL_INFO, "configuration generation bumped", "generation", v,
	    NULL);
	return BW_OK;
}
