/* SPDX-License-Identifier: MIT */
/* Bulwark's route table: what exists, who may call it, how big a body. */
#include "handlers.h"
#include "route.h"

const struct route routes[] = {
	{ .method = "GET", .pattern = "/health", .name = "health",
	  .auth = RA_NONE, .fn = h_health },
	{ .method = "GET", .pattern = "/health/full", .name = "health_full",
	  .auth = RA_NONE, .fn = h_health_full },
	{ .method = "GET", .pattern = "/metrics", .name = "metrics",
	  .auth = RA_NONE, .fn = h_metrics },
	{ .method = "GET", .pattern = "/api/v1/whoami", .name = "whoami",
	  .auth = RA_KEY, .min_role = AR_MEMBER, .fn = h_whoami },
};

const size_t nroutes = sizeof(routes) / sizeof(routes[0]);
