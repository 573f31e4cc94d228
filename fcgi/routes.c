/* SPDX-License-Identifier: MIT */
/* Bulwark's route table: what exists, who may call it, how big a body. */
#include "handlers.h"
#include "route.h"

const struct route routes[] = {
	{ "GET", "/health", "health", RA_NONE, AR_MEMBER, 0, h_health },
	{ "GET", "/health/full", "health_full", RA_NONE, AR_MEMBER, 0,
	    h_health_full },
	{ "GET", "/metrics", "metrics", RA_NONE, AR_MEMBER, 0, h_metrics },
	{ "GET", "/api/v1/whoami", "whoami", RA_KEY, AR_MEMBER, 0, h_whoami },
};

const size_t nroutes = sizeof(routes) / sizeof(routes[0]);
