/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for fcgi/pool.c: the pools of a config and the pool of each
 * route.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "pool.h"

static void
test_pools(void **state)
{
	struct config c;
	struct pool   p[POOL_MAX];
	char	      sock[] = "/s/api.sock", chat[] = "/s/api-chat.sock";
	char	      routes[] = "chat, chat_session_get";
	char	      none[] = "none";

	(void)state;
	memset(&c, 0, sizeof(c));
	c.fcgi_socket = sock;
	c.fcgi_children = 4;
	c.fcgi_chat_socket = chat;
	c.fcgi_chat_children = 32;
	c.fcgi_chat_queue_deadline_ms = 10000;
	c.fcgi_chat_routes = routes;
	assert_int_equal(pool_list(&c, p), 2);
	assert_string_equal(p[POOL_API].name, "api");
	assert_string_equal(p[POOL_API].socket, sock);
	assert_int_equal(p[POOL_API].children, 4);
	assert_string_equal(p[POOL_CHAT].name, "chat");
	assert_string_equal(p[POOL_CHAT].socket, chat);
	assert_int_equal(p[POOL_CHAT].children, 32);
	assert_int_equal(p[POOL_CHAT].queue_deadline_ms, 10000);

	assert_int_equal(pool_of_route(&c, "chat"), POOL_CHAT);
	assert_int_equal(pool_of_route(&c, "chat_session_get"), POOL_CHAT);
	/* A prefix of a listed name is another name. */
	assert_int_equal(pool_of_route(&c, "cha"), POOL_API);
	assert_int_equal(pool_of_route(&c, "chat_session"), POOL_API);
	assert_int_equal(pool_of_route(&c, "webhook"), POOL_API);
	assert_int_equal(pool_of_route(&c, NULL), POOL_API);

	/* No chat pool: the api pool serves every route. */
	c.fcgi_chat_socket = none;
	assert_int_equal(pool_list(&c, p), 1);
	assert_int_equal(pool_of_route(&c, "chat"), POOL_API);
}

static void
test_check_routes(void **state)
{
	static const char *const names[] = { "chat", "webhook",
		"chat_session_get" };
	struct config		 c;
	char good[] = "chat,chat_session_get", bad[] = "chat, nope";
	char empty[] = "", out[64];

	(void)state;
	memset(&c, 0, sizeof(c));
	c.fcgi_chat_routes = good;
	assert_int_equal(pool_check_routes(&c, names, 3, out, sizeof(out)), 0);
	c.fcgi_chat_routes = empty;
	assert_int_equal(pool_check_routes(&c, names, 3, out, sizeof(out)), 0);
	c.fcgi_chat_routes = bad;
	assert_int_equal(pool_check_routes(&c, names, 3, out, sizeof(out)), -1);
	assert_string_equal(out, "nope");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pools),
		cmocka_unit_test(test_check_routes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
