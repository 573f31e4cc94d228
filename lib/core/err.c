/* SPDX-License-Identifier: MIT */
/* Text for enum bw_err. */
#include "core/err.h"

static const char *const bw_errs[BW_ERR__MAX] = {
	[BW_OK] = "ok",
	[BW_ENOMEM] = "out of memory",
	[BW_EINVAL] = "invalid argument",
	[BW_ETOOBIG] = "limit exceeded",
	[BW_ENOTFOUND] = "not found",
	[BW_EEXISTS] = "already exists",
	[BW_EDB] = "database error",
	[BW_ERETRY] = "transaction must be retried",
	[BW_EREDIS] = "redis error",
	[BW_EIO] = "i/o error",
	[BW_ETIMEOUT] = "timed out",
	[BW_EUPSTREAM] = "upstream error",
	[BW_EBUSY] = "busy",
	[BW_EAUTH] = "authentication failed",
	[BW_ECONFIG] = "configuration error",
	[BW_ECRYPTO] = "cryptographic failure",
	[BW_ESTATE] = "invalid state",
	[BW_EAMBIG] = "commit outcome unknown",
};

const char *
bw_strerror(enum bw_err e)
{
	if ((unsigned)e >= BW_ERR__MAX || bw_errs[e] == 0)
		return "unknown error";
	return bw_errs[e];
}
