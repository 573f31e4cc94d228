/* SPDX-License-Identifier: MIT */
/*
 * The ceiling of FastCGI itself for dev/bench: a bare libfcgi hello world
 * with bulwark-fcgi's prefork model. Usage: hello_fcgi SOCKET CHILDREN.
 */
#include <sys/types.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <fcgiapp.h>

#define HELLO_MAX_CHILDREN 512

static volatile sig_atomic_t stop;

static void
hello_on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* One child: accept and answer until killed. Never returns. */
static void __attribute__((noreturn)) hello_child(int fd)
{
	static const char reply[] = "Status: 200 OK\r\n"
				    "Content-Type: application/json\r\n\r\n"
				    "{\"status\":\"ok\"}";
	FCGX_Request	  fr;

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
	struct sigaction sa;
	sigset_t	 set, old;
	pid_t		 pids[HELLO_MAX_CHILDREN];
	char		*end;
	long		 n;
	int		 fd, i;

	if (argc != 3) {
		fprintf(stderr, "usage: hello_fcgi SOCKET CHILDREN\n");
		return 2;
	}
	errno = 0;
	n = strtol(argv[2], &end, 10);
	if (errno != 0 || *end != '\0' || n < 1 || n > HELLO_MAX_CHILDREN) {
		fprintf(stderr, "hello_fcgi: CHILDREN must be 1..%d\n",
		    HELLO_MAX_CHILDREN);
		return 2;
	}
	(void)unlink(argv[1]);
	fd = FCGX_OpenSocket(argv[1], 1024);
	if (fd < 0 || chmod(argv[1], 0666) != 0) {
		fprintf(stderr, "hello_fcgi: cannot listen on %s\n", argv[1]);
		return 1;
	}

	/* Block until sigsuspend() so no SIGTERM is lost between forks. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	(void)sigprocmask(SIG_BLOCK, &set, &old);
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = hello_on_signal;
	(void)sigaction(SIGTERM, &sa, NULL);
	(void)sigaction(SIGINT, &sa, NULL);

	for (i = 0; i < n; i++) {
		pids[i] = fork();
		if (pids[i] == -1) {
			fprintf(stderr, "hello_fcgi: fork: %s\n",
			    strerror(errno));
			n = i;
			stop = 1;
			break;
		}
		if (pids[i] == 0) {
			sa.sa_handler = SIG_DFL;
			(void)sigaction(SIGTERM, &sa, NULL);
			(void)sigaction(SIGINT, &sa, NULL);
			(void)sigprocmask(SIG_SETMASK, &old, NULL);
			hello_child(fd);
		}
	}
	while (!stop)
		(void)sigsuspend(&old);
	for (i = 0; i < n; i++)
		(void)kill(pids[i], SIGTERM);
	for (i = 0; i < n; i++)
		(void)waitpid(pids[i], NULL, 0);
	(void)unlink(argv[1]);
	return 0;
}
