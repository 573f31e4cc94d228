/* SPDX-License-Identifier: MIT */
/* See prefork.h. */
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

#include "prefork.h"

#define PREFORK_MAX_CHILDREN 512

static volatile sig_atomic_t stop;

static void
prefork_on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

int
bench_prefork(const char *name, const char *socket, const char *children,
    void (*child)(int fd, void *arg), void *arg)
{
	struct sigaction sa;
	sigset_t	 set, old;
	pid_t		 pids[PREFORK_MAX_CHILDREN];
	char		*end;
	long		 n;
	int		 fd, i;

	errno = 0;
	n = strtol(children, &end, 10);
	if (errno != 0 || *end != '\0' || n < 1 || n > PREFORK_MAX_CHILDREN) {
		fprintf(stderr, "%s: CHILDREN must be 1..%d\n", name,
		    PREFORK_MAX_CHILDREN);
		return 2;
	}
	(void)unlink(socket);
	fd = FCGX_OpenSocket(socket, 1024);
	if (fd < 0 || chmod(socket, 0666) != 0) {
		fprintf(stderr, "%s: cannot listen on %s\n", name, socket);
		return 1;
	}

	/* Block until sigsuspend() so no SIGTERM is lost between forks. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	(void)sigprocmask(SIG_BLOCK, &set, &old);
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = prefork_on_signal;
	(void)sigaction(SIGTERM, &sa, NULL);
	(void)sigaction(SIGINT, &sa, NULL);

	for (i = 0; i < n; i++) {
		pids[i] = fork();
		if (pids[i] == -1) {
			fprintf(stderr, "%s: fork: %s\n", name,
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
			child(fd, arg);
			_exit(0);
		}
	}
	while (!stop)
		(void)sigsuspend(&old);
	for (i = 0; i < n; i++)
		(void)kill(pids[i], SIGTERM);
	for (i = 0; i < n; i++)
		(void)waitpid(pids[i], NULL, 0);
	(void)unlink(socket);
	return 0;
}
