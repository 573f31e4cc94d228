/* SPDX-License-Identifier: MIT */
/*
 * The pools of bulwark-fcgi, php-fpm style: each has its own FastCGI
 * socket, children, listen backlog, max requests, request timeout and
 * queue deadline, and serves the routes config names for it. Two ship:
 * "api" (the fcgi_* keys, every route not named elsewhere) and "chat"
 * (the fcgi_chat_* keys, the routes of fcgi_chat_routes), which is off when
 * fcgi_chat_socket = none. docs/operations.md, "Pools".
 */
#ifndef BW_POOL_H
#define BW_POOL_H

#include <stddef.h>

#include "core/config.h"

enum {
	POOL_API,
	POOL_CHAT,
	POOL_MAX
};

/* Retry-After of a 503 CAPACITY_EXHAUSTED for a request past its queue
 * deadline (nginx says the same when a listen queue is full). */
#define POOL_RETRY_AFTER "2"

struct pool {
	const char *name;   /* "api", "chat" */
	const char *socket; /* points into the config */
	int	    backlog;
	int	    children;
	int	    max_requests;	/* 0: never recycled */
	int	    request_timeout_ms; /* 0: none */
	int	    queue_deadline_ms;	/* 0: none */
	int	    nice;		/* added to the master's, 0..19 */
};

/* Fills p[0..POOL_MAX) from cfg; returns how many pools cfg runs (1, 2). */
int pool_list(const struct config *cfg, struct pool *p);

/* The pool that serves the route named name under cfg. */
int pool_of_route(const struct config *cfg, const char *name);

/*
 * Checks that every name in fcgi_chat_routes is one of names[0..n).
 * Returns 0, or -1 with the unknown name in bad (badlen bytes).
 */
int pool_check_routes(const struct config *cfg, const char *const *names,
    size_t n, char *bad, size_t badlen);

#endif
