/* SPDX-License-Identifier: MIT */
/*
 * The pools of bulwark-fcgi (pool.h): what each one is under a config, and
 * which pool a route belongs to.
 */
#include <stdio.h>
#include <string.h>

#include "pool.h"

/* 1 when cfg runs a chat pool. */
static int
pool_chat_on(const struct config *cfg)
{
	return cfg->fcgi_chat_socket != NULL &&
	    cfg->fcgi_chat_socket[0] != '\0' &&
	    strcmp(cfg->fcgi_chat_socket, "none") != 0;
}

int
pool_list(const struct config *cfg, struct pool *p)
{
	memset(p, 0, POOL_MAX * sizeof(*p));
	p[POOL_API].name = "api";
	p[POOL_API].socket = cfg->fcgi_socket;
	p[POOL_API].backlog = cfg->fcgi_backlog;
	p[POOL_API].children = cfg->fcgi_children;
	p[POOL_API].max_requests = cfg->fcgi_max_requests;
	p[POOL_API].request_timeout_ms = cfg->fcgi_request_timeout_ms;
	p[POOL_API].queue_deadline_ms = cfg->fcgi_queue_deadline_ms;
	p[POOL_API].nice = cfg->fcgi_nice;
	if (!pool_chat_on(cfg))
		return 1;
	p[POOL_CHAT].name = "chat";
	p[POOL_CHAT].socket = cfg->fcgi_chat_socket;
	p[POOL_CHAT].backlog = cfg->fcgi_chat_backlog;
	p[POOL_CHAT].children = cfg->fcgi_chat_children;
	p[POOL_CHAT].max_requests = cfg->fcgi_chat_max_requests;
	p[POOL_CHAT].request_timeout_ms = cfg->fcgi_chat_request_timeout_ms;
	p[POOL_CHAT].queue_deadline_ms = cfg->fcgi_chat_queue_deadline_ms;
	p[POOL_CHAT].nice = cfg->fcgi_chat_nice;
	return 2;
}

/* 1 when name (len bytes) is one of the comma separated names of list. */
static int
pool_listed(const char *list, const char *name, size_t len)
{
	const char *p = list, *e;

	while (p != NULL && *p != '\0') {
		while (*p == ' ' || *p == ',')
			p++;
		e = p + strcspn(p, ", ");
		if ((size_t)(e - p) == len && len > 0 &&
		    memcmp(p, name, len) == 0)
			return 1;
		p = e;
	}
	return 0;
}

int
pool_of_route(const struct config *cfg, const char *name)
{
	if (pool_chat_on(cfg) && name != NULL &&
	    pool_listed(cfg->fcgi_chat_routes, name, strlen(name)))
		return POOL_CHAT;
	return POOL_API;
}

int
pool_check_routes(const struct config *cfg, const char *const *names, size_t n,
    char *bad, size_t badlen)
{
	const char *p = cfg->fcgi_chat_routes, *e;
	size_t	    i;
	int	    found;

	while (p != NULL && *p != '\0') {
		while (*p == ' ' || *p == ',')
			p++;
		e = p + strcspn(p, ", ");
		if (e == p)
			break;
		found = 0;
		for (i = 0; i < n && !found; i++)
			found = strlen(names[i]) == (size_t)(e - p) &&
			    memcmp(names[i], p, (size_t)(e - p)) == 0;
		if (!found) {
			snprintf(bad, badlen, "%.*s", (int)(e - p), p);
			return -1;
		}
		p = e;
	}
	return 0;
}
