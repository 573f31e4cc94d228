/* SPDX-License-Identifier: MIT */
/*
 * One login: the throttle first (a locked account or IP is refused even
 * with the right password), then the user by e-mail and the password
 * (an unknown e-mail costs the same scrypt work as a known one, and gets
 * the same answer), then a new session. Failures are counted; a success
 * clears the account's count and rehashes a password stored with older
 * scrypt parameters.
 */
#ifndef BW_PEOPLE_LOGIN_H
#define BW_PEOPLE_LOGIN_H

#include <stddef.h>

#include "core/config.h"
#include "core/db.h"
#include "core/err.h"
#include "core/rds.h"
#include "people/session.h"

enum login_outcome {
	LOGIN_OK,      /* a new session: id and info filled */
	LOGIN_REFUSED, /* wrong e-mail or password, no password, disabled */
	LOGIN_LOCKED,  /* too many failures: retry_after_s */
};

struct login_result {
	enum login_outcome  outcome;
	int		    retry_after_s;
	char		    id[SESSION_ID_LEN + 1];
	struct session_info s;
};

/*
 * Tries email + pw from ip. BW_OK with *out (every outcome), or BW_EDB /
 * BW_EREDIS when a dependency failed (nothing decided).
 */
enum bw_err login_attempt(struct db *, struct rds *, const struct config *,
    const char *email, const char *pw, size_t pwlen, const char *ip,
    struct login_result *out);

#endif
