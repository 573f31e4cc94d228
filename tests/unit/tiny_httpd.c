/* SPDX-License-Identifier: MIT */
/*
 * The tiny test HTTP server (tiny_httpd.h). Requests are read up to the
 * end of their head plus Content-Length bytes; chunked requests are not
 * supported (the client under test sends Content-Length).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "tiny_httpd.h"

#define TH_MAX_REQ (64 * 1024)

static pthread_mutex_t th_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_t       th_thread;
static int	       th_lfd = -1;
static int	       th_stop;
static int	       th_accepts;
static int	       th_requests;
static char	      *th_answer;
static size_t	       th_answer_len;
static int	       th_delay_ms;
static char	       th_last[TH_MAX_REQ + 1];
static char	       th_url[64];

static void
th_sleep_ms(int ms)
{
	struct timespec ts;

	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static int
th_stopping(void)
{
	int s;

	pthread_mutex_lock(&th_mu);
	s = th_stop;
	pthread_mutex_unlock(&th_mu);
	return s;
}

/* Waits up to 100 ms for fd to be readable: 1, 0 (not yet), -1. */
static int
th_wait(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int	      n;

	n = poll(&p, 1, 100);
	if (n < 0)
		return errno == EINTR ? 0 : -1;
	return n;
}

/* Reads one request into req. Returns its length, or -1 at the end. */
static long
th_read_req(int fd, char *req)
{
	size_t	    len = 0, need = 0;
	const char *e, *cl;
	ssize_t	    n;
	int	    w;

	for (;;) {
		if (need > 0 && len >= need)
			return (long)len;
		if (len == TH_MAX_REQ)
			return -1;
		w = th_wait(fd);
		if (w < 0 || th_stopping())
			return -1;
		if (w == 0)
			continue;
		n = recv(fd, req + len, TH_MAX_REQ - len, 0);
		if (n <= 0)
			return -1;
		len += (size_t)n;
		req[len] = '\0';
		if (need == 0 && (e = strstr(req, "\r\n\r\n")) != NULL) {
			need = (size_t)(e - req) + 4;
			cl = strcasestr(req, "\r\nContent-Length:");
			if (cl != NULL && cl < e)
				need += strtoul(cl + 17, NULL, 10);
		}
	}
}

static void
th_serve(int fd)
{
	static char req[TH_MAX_REQ + 1];
	char	   *ans;
	size_t	    alen, off;
	ssize_t	    n;
	long	    rl;
	int	    delay;

	while ((rl = th_read_req(fd, req)) >= 0) {
		pthread_mutex_lock(&th_mu);
		memcpy(th_last, req, (size_t)rl + 1);
		th_requests++;
		alen = th_answer_len;
		ans = malloc(alen + 1);
		if (ans != NULL && alen > 0)
			memcpy(ans, th_answer, alen);
		delay = th_delay_ms;
		pthread_mutex_unlock(&th_mu);
		if (ans == NULL)
			return;
		if (alen == 0) {
			/* No answer set: read the request, then hang up. */
			free(ans);
			return;
		}
		if (delay > 0)
			th_sleep_ms(delay);
		for (off = 0; off < alen; off += (size_t)n) {
			n = send(fd, ans + off, alen - off, MSG_NOSIGNAL);
			if (n <= 0)
				break;
		}
		free(ans);
		if (off < alen)
			return;
	}
}

static void *
th_main(void *arg)
{
	int fd, w;

	(void)arg;
	while (!th_stopping()) {
		w = th_wait(th_lfd);
		if (w <= 0)
			continue;
		fd = accept(th_lfd, NULL, NULL);
		if (fd < 0)
			continue;
		pthread_mutex_lock(&th_mu);
		th_accepts++;
		pthread_mutex_unlock(&th_mu);
		th_serve(fd);
		close(fd);
	}
	return NULL;
}

int
tiny_httpd_start(void)
{
	struct sockaddr_in sa;
	socklen_t	   sl = sizeof(sa);

	th_lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (th_lfd < 0)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(th_lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    listen(th_lfd, 8) != 0 ||
	    getsockname(th_lfd, (struct sockaddr *)&sa, &sl) != 0) {
		close(th_lfd);
		th_lfd = -1;
		return -1;
	}
	snprintf(th_url, sizeof(th_url), "http://127.0.0.1:%d",
	    ntohs(sa.sin_port));
	th_stop = 0;
	if (pthread_create(&th_thread, NULL, th_main, NULL) != 0) {
		close(th_lfd);
		th_lfd = -1;
		return -1;
	}
	return ntohs(sa.sin_port);
}

void
tiny_httpd_stop(void)
{
	if (th_lfd < 0)
		return;
	pthread_mutex_lock(&th_mu);
	th_stop = 1;
	pthread_mutex_unlock(&th_mu);
	pthread_join(th_thread, NULL);
	close(th_lfd);
	th_lfd = -1;
	free(th_answer);
	th_answer = NULL;
}

void
tiny_httpd_answer(const char *raw, size_t len, int delay_ms)
{
	char *p;

	p = malloc(len + 1);
	if (p == NULL)
		abort();
	memcpy(p, raw, len);
	pthread_mutex_lock(&th_mu);
	free(th_answer);
	th_answer = p;
	th_answer_len = len;
	th_delay_ms = delay_ms;
	pthread_mutex_unlock(&th_mu);
}

int
tiny_httpd_accepts(void)
{
	int n;

	pthread_mutex_lock(&th_mu);
	n = th_accepts;
	pthread_mutex_unlock(&th_mu);
	return n;
}

int
tiny_httpd_requests(void)
{
	int n;

	pthread_mutex_lock(&th_mu);
	n = th_requests;
	pthread_mutex_unlock(&th_mu);
	return n;
}

const char *
tiny_httpd_last(void)
{
	return th_last;
}

const char *
tiny_httpd_url(void)
{
	return th_url;
}

int
tiny_httpd_dead_port(void)
{
	struct sockaddr_in sa;
	socklen_t	   sl = sizeof(sa);
	int		   fd, port;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &sl) != 0) {
		close(fd);
		return -1;
	}
	port = ntohs(sa.sin_port);
	close(fd);
	return port;
}
