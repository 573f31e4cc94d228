/* SPDX-License-Identifier: MIT */
/*
 * The login throttle: failed logins counted in Redis per account (the
 * lower-case e-mail, known or not, by its SHA-256) and per client IP, in
 * sliding windows of login_window_s (lib/platform/ratelimit.c's exact
 * logs). Past login_max_failures for the account or login_ip_max_failures
 * for the IP, every login of that account or from that IP is refused,
 * the right password too, until the window frees a slot. A success clears
 * the account's window (not the IP's).
 */
#ifndef BW_PEOPLE_THROTTLE_H
#define BW_PEOPLE_THROTTLE_H

#include "core/config.h"
#include "core/err.h"
#include "core/rds.h"

/*
 * *retry_after_s: 0 when a login may be tried now, else the seconds until
 * it may (>= 1). BW_EREDIS when Redis cannot answer (refuse the login: a
 * throttle that cannot count must not admit).
 */
enum bw_err throttle_check(struct rds *, const struct config *,
    const char *email, const char *ip, int *retry_after_s);
/* Records one failed login of email from ip. */
enum bw_err throttle_fail(struct rds *, const struct config *,
    const char *email, const char *ip);
/* Clears the account's failures (after a successful login). */
enum bw_err throttle_clear(struct rds *, const char *email);

#endif
