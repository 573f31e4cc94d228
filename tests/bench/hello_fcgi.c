/* SPDX-License-Identifier: MIT */
/*
 * The ceiling of FastCGI itself for dev/bench: a bare libfcgi hello world
 * with bulwark-fcgi's prefork model. Usage: hello_fcgi SOCKET CHILDREN.
 */
#include <stdio.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "prefork.h"

/* One child: accept and answer until killed. Never returns. */
static void __attribute__((noreturn)) hello_child(int fd, void *arg)
{
	static const char reply[] = "Status: 200 OK\r\n"
				    "Content-Type: application/json\r\n\r\n"
				    "{\"status\":\"ok\"}";
	FCGX_Request	  fr;

	(void)arg;
	if (FCGX_Init() != 0 || FCGX_InitRequest(&fr, fd, 0) != 0)
		_exit(1);
	while (FCGX_Accept_r(&fr) >= 0) {
		FCGX_PutStr(reply, (int)sizeof(reply) - 1, fr.out);
		FCGX_Finish_r(&fr);
	}
	_exit(0);
}

int
main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: hello_fcgi SOCKET CHILDREN\n");
		return 2;
	}
	return bench_prefork("hello_fcgi", argv[1], argv[2], hello_child, NULL);
}
