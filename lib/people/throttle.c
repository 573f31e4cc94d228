/* SPDX-License-Identifier: MIT */
/* The login throttle over the sliding-window logs (see throttle.h). */
#include <stdio.h>
#include <string.h>

#include "core/sec.h"
#include "people/throttle.h"
#include "platform/ratelimit.h"

#define THROTTLE_ROUTE "login"

/* The account's item: "rl:{rl}:login:acct:<sha256 hex of the e-mail>". */
static enum bw_err
throttle_acct(struct rl_item *it, const char *email)
{
	uint8_t	    h[SEC_SHA256_LEN];
	char	    hex[2 * SEC_SHA256_LEN + 1];
	enum bw_err er;

	er = sec_sha256(email, strlen(email), h);
	if (er != BW_OK)
		return er;
	sec_hex(h, sizeof(h), hex);
	snprintf(it->key, sizeof(it->key), "rl:{rl}:%s:acct:%s", THROTTLE_ROUTE,
	    hex);
	return BW_OK;
}

/* Both items: the account's and the IP's. */
static enum bw_err
throttle_items(const struct config *cfg, const char *email, const char *ip,
    struct rl_item it[2])
{
	enum bw_err er;

	er = throttle_acct(&it[0], email);
	if (er != BW_OK)
		return er;
	it[0].limit = cfg->login_max_failures;
	it[0].window_s = cfg->login_window_s;
	er = rl_key(&it[1], THROTTLE_ROUTE, RL_IP,
	    ip != NULL && ip[0] != '\0' ? ip : "unknown");
	if (er != BW_OK)
		return er;
	it[1].limit = cfg->login_ip_max_failures;
	it[1].window_s = cfg->login_window_s;
	return BW_OK;
}

enum bw_err
throttle_check(struct rds *rds, const struct config *cfg, const char *email,
    const char *ip, int *retry_after_s)
{
	struct rl_item	 it[2];
	struct rl_result res;
	enum bw_err	 er;

	*retry_after_s = 0;
	er = throttle_items(cfg, email, ip, it);
	if (er == BW_OK)
		er = rl_peek(rds, it, 2, &res);
	if (er != BW_OK)
		return er == BW_EREDIS ? BW_EREDIS : er;
	if (!res.admitted)
		*retry_after_s = res.retry_after_s > 0 ? res.retry_after_s : 1;
	return BW_OK;
}

enum bw_err
throttle_fail(struct rds *rds, const struct config *cfg, const char *email,
    const char *ip)
{
	struct rl_item	 it[2];
	struct rl_result res;
	enum bw_err	 er;

	er = throttle_items(cfg, email, ip, it);
	if (er == BW_OK)
		er = rl_check(rds, it, 2, &res);
	return er;
}

enum bw_err
throttle_clear(struct rds *rds, const char *email)
{
	struct rl_item it;
	const char    *av[2];
	redisReply    *rep = NULL;
	enum bw_err    er;

	er = throttle_acct(&it, email);
	if (er != BW_OK)
		return er;
	av[0] = "DEL";
	av[1] = it.key;
	er = rds_cmd(rds, 2, av, NULL, &rep);
	if (rep != NULL)
		freeReplyObject(rep);
	return er;
}
