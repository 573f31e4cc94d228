/* SPDX-License-Identifier: MIT */
/*
 * The prefork master, php-fpm style: it blocks its signals and waits in
 * sigsuspend(), forks the children of each pool (fcgi/pool.h), each child
 * accepting on its pool's FastCGI socket; it replaces the dead, recycles,
 * kills a child stuck past its pool's request timeout, drains, rolls every
 * pool on SIGHUP and talks to systemd. One table of slots, tagged by pool.
 */
#include <sys/types.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "core/clock.h"
#include "core/config.h"
#include "core/limits.h"
#include "core/log.h"
#include "master.h"
#include "pool.h"

/* Old and new generations overlap during a roll, hence twice the maximum. */
#define MASTER_SLOTS   (2 * POOL_MAX * BW_MAX_FCGI_CHILDREN)
/* How often the master looks for a request past its pool's timeout. */
#define MASTER_TICK_MS 1000
/* Room for any long long in decimal. */
#define MASTER_NUM     24

/*
 * One forked child. The table lives in a shared anonymous mapping: the
 * master owns every field but accepted, which only the child writes, so
 * that the master knows at a death whether the child ever took a request.
 */
struct slot {
	pid_t		       pid; /* 0: the slot is free */
	int		       pool;
	int		       child_no;
	unsigned int	       gen;	   /* config generation */
	int		       stopping;   /* SIGTERM sent */
	int64_t		       kill_at_ms; /* SIGKILL then; 0: none */
	volatile unsigned long accepted;   /* written by the child */
	/* clock_mono_ms() when the request in hand was accepted, 0 when
	 * idle; written by the child, read for the request timeout. */
	volatile int64_t busy_since_ms;
};

/* Respawn state of one pool: backoff and the give-up count. */
struct pstate {
	int	children;      /* wanted, clamped */
	int64_t next_spawn_ms; /* backoff */
	int64_t backoff_ms;
	int64_t window_ms; /* window start */
	int	window_deaths;
	int64_t last_death_ms;
	int	nostart; /* never served */
};

struct master {
	struct config		  *cfg;
	const char		  *config_path;
	const struct master_hooks *hooks;
	int			   fds[POOL_MAX];	 /* listen sockets */
	char			   socks[POOL_MAX][256]; /* their names */
	struct pool		   pools[POOL_MAX];
	int			   npools;
	struct pstate		   ps[POOL_MAX];
	struct slot		  *slots; /* MASTER_SLOTS */
	unsigned int		   gen;
	sigset_t		   oldmask;  /* the caller's */
	sigset_t		   waitmask; /* for sigsuspend() */
	int			   draining;
	int			   exit_code;
	int			   child_fd; /* in a child: its pool's */
};

static struct master m;

static volatile sig_atomic_t sig_chld, sig_term, sig_hup, sig_quit;
static volatile sig_atomic_t child_stop;

/* The master's signals: blocked except inside sigsuspend(). */
static const int master_signals[] = { SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGQUIT,
	SIGALRM };
#define MASTER_NSIGNALS (sizeof(master_signals) / sizeof(master_signals[0]))

static struct sigaction old_actions[MASTER_NSIGNALS];
static struct sigaction old_pipe;

/* Records a master signal; the loop acts on the flags after sigsuspend(). */
static void
master_on_signal(int sig)
{
	switch (sig) {
	case SIGCHLD:
		sig_chld = 1;
		break;
	case SIGTERM:
	case SIGINT:
		sig_term = 1;
		break;
	case SIGHUP:
		sig_hup = 1;
		break;
	case SIGQUIT:
		sig_quit = 1;
		break;
	default:
		/* SIGALRM: a backoff or kill deadline; only wakes the loop. */
		break;
	}
}

/* A child's SIGTERM or SIGINT: finish the request in hand, then exit. */
static void
child_on_signal(int sig)
{
	(void)sig;
	child_stop = 1;
}

/* Writes the decimal of v into b (n bytes) and returns b. */
static const char *
master_itoa(char *b, size_t n, long long v)
{
	(void)snprintf(b, n, "%lld", v);
	return b;
}

/* Writes "SIGKILL" style names into b (n bytes) and returns b. */
static const char *
master_signame(char *b, size_t n, int sig)
{
	const char *abbrev;

	abbrev = sigabbrev_np(sig);
	if (abbrev != NULL)
		(void)snprintf(b, n, "SIG%s", abbrev);
	else
		(void)snprintf(b, n, "signal %d", sig);
	return b;
}

/*
 * sd_notify(3) by hand: one datagram of "KEY=value\n..." lines to the
 * AF_UNIX socket named by NOTIFY_SOCKET; a leading '@' names the abstract
 * namespace. Does nothing outside systemd; failures are logged at debug.
 */
static void
master_notify(const char *fmt, ...)
{
	struct sockaddr_un sun;
	const char	  *path;
	char		   msg[512];
	size_t		   plen;
	socklen_t	   alen;
	va_list		   ap;
	int		   fd, n;

	path = getenv("NOTIFY_SOCKET");
	if (path == NULL || path[0] == '\0')
		return;
	plen = strlen(path);
	if ((path[0] != '/' && path[0] != '@') ||
	    plen >= sizeof(sun.sun_path)) {
		log_kv(LL_WARN, "NOTIFY_SOCKET unusable", "path", path, NULL);
		return;
	}
	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(msg))
		return;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, plen);
	if (path[0] == '@')
		sun.sun_path[0] = '\0';
	alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen);

	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		log_kv(LL_WARN, "sd_notify socket", "error", strerror(errno),
		    NULL);
		return;
	}
	if (sendto(fd, msg, (size_t)n, MSG_NOSIGNAL,
		(const struct sockaddr *)&sun, alen) == -1)
		log_kv(LL_WARN, "sd_notify send", "error", strerror(errno),
		    NULL);
	close(fd);
}

/* Writes our pid to cfg->pid_file when one is configured. */
static void
master_pidfile_write(void)
{
	char b[MASTER_NUM];
	int  fd, n;

	if (m.cfg->pid_file == NULL || m.cfg->pid_file[0] == '\0')
		return;
	n = snprintf(b, sizeof(b), "%ld\n", (long)getpid());
	fd = open(m.cfg->pid_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0644);
	if (fd == -1 || write(fd, b, (size_t)n) != n)
		log_kv(LL_WARN, "cannot write pid file", "path",
		    m.cfg->pid_file, "error", strerror(errno), NULL);
	if (fd != -1)
		close(fd);
}

/* The wanted number of children, clamped to 1..BW_MAX_FCGI_CHILDREN. */
static int
master_wanted(const struct pool *p)
{
	char b[MASTER_NUM];

	if (p->children >= 1 && p->children <= BW_MAX_FCGI_CHILDREN)
		return p->children;
	log_kv(LL_WARN, "children out of range, clamped", "pool", p->name,
	    "value", master_itoa(b, sizeof(b), p->children), NULL);
	return p->children < 1 ? 1 : BW_MAX_FCGI_CHILDREN;
}

/*
 * Takes the pools of m.cfg. The sockets are the ones opened at start: a
 * reload that moves one, or adds or removes a pool, is logged and waits
 * for a restart; children, max requests and timeouts apply at once.
 */
static void
master_pools_set(int first)
{
	struct pool np[POOL_MAX];
	int	    n, i;

	n = pool_list(m.cfg, np);
	if (first) {
		m.npools = n;
		for (i = 0; i < n; i++)
			(void)snprintf(m.socks[i], sizeof(m.socks[i]), "%s",
			    np[i].socket);
	}
	if (!first && n != m.npools)
		log_kv(LL_WARN, "adding or removing a pool needs a restart",
		    NULL);
	for (i = 0; i < m.npools; i++) {
		if (!first && i < n &&
		    (strcmp(np[i].socket, m.socks[i]) != 0 ||
			np[i].backlog != m.pools[i].backlog))
			log_kv(LL_WARN,
			    "socket and backlog changes need a restart", "pool",
			    m.pools[i].name, NULL);
		if (i < n) {
			/* The old config's strings are gone after a reload. */
			np[i].socket = m.socks[i];
			m.pools[i] = np[i];
		}
		m.ps[i].children = master_wanted(&m.pools[i]);
	}
}

/* "api 4, chat 32": the children of each pool, for logs and systemd. */
static const char *
master_census(char *b, size_t n)
{
	size_t len = 0;
	int    i, w;

	b[0] = '\0';
	for (i = 0; i < m.npools && len < n; i++) {
		w = snprintf(b + len, n - len, "%s%s %d", i > 0 ? ", " : "",
		    m.pools[i].name, m.ps[i].children);
		if (w < 0)
			break;
		len += (size_t)w;
	}
	return b;
}

/*
 * Waits until the listen socket or the kept connection is readable, with
 * SIGTERM and SIGINT unblocked only for the wait, at most timeout_ms (-1:
 * no limit). Returns 0 when readable, -1 when a signal, an error or the
 * timeout ended the wait.
 *
 * libfcgi keeps a connection open after FCGX_Finish_r() when nginx asked for
 * it (fastcgi_keep_conn on) and the next FCGX_Accept_r() then blocks reading
 * it; waiting here instead lets a SIGTERM end an idle child promptly.
 */
static int
child_wait(const FCGX_Request *fr, int ep, int timeout_ms, int watch)
{
	static int	   watched = -1;
	struct epoll_event ev[2];
	struct pollfd	   pfd[2];
	struct timespec	   ts;
	int		   rc, i;

	if (fr->ipcFd >= 0) {
		pfd[0].fd = fr->ipcFd;
		pfd[0].events = POLLIN;
		pfd[0].revents = 0;
		pfd[1].fd = watch;
		pfd[1].events = POLLIN;
		pfd[1].revents = 0;
		ts.tv_sec = timeout_ms / 1000;
		ts.tv_nsec = (long)(timeout_ms % 1000) * 1000000L;
		rc = ppoll(pfd, watch >= 0 ? 2 : 1,
		    timeout_ms >= 0 ? &ts : NULL, &m.waitmask);
		return rc > 0 && pfd[0].revents != 0 ? 0 : -1;
	}
	/* The watched descriptor joins the epoll set (a closed one left
	 * it by itself; EEXIST: still there). */
	if (watch != watched && watched >= 0)
		(void)epoll_ctl(ep, EPOLL_CTL_DEL, watched, NULL);
	watched = -1;
	if (watch >= 0) {
		memset(&ev[0], 0, sizeof(ev[0]));
		ev[0].events = EPOLLIN;
		ev[0].data.fd = watch;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, watch, &ev[0]) == 0 ||
		    errno == EEXIST)
			watched = watch;
	}
	rc = epoll_pwait(ep, ev, 2, timeout_ms, &m.waitmask);
	for (i = 0; i < rc; i++)
		if (ev[i].data.fd == m.child_fd)
			return 0;
	return -1;
}

/*
 * The child: signals as a worker wants them, child_init, then the accept
 * loop until SIGTERM, max requests, or a fatal accept error. SIGTERM stays
 * blocked while a request runs (a request is never cut by EINTR) and is
 * taken in child_wait(). Never returns.
 */
static void __attribute__((noreturn))
child_run(struct slot *me, int pool, int child_no, pid_t master_pid)
{
	const struct pool *p = &m.pools[pool];
	struct epoll_event ev;
	struct sigaction   sa;
	FCGX_Request	   fr;
	sigset_t	   block;
	unsigned long	   served = 0;
	size_t		   i;
	char		   b1[MASTER_NUM], b2[MASTER_NUM];
	int		   ep, rc, code = 0;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = SIG_DFL;
	for (i = 0; i < MASTER_NSIGNALS; i++)
		(void)sigaction(master_signals[i], &sa, NULL);
	sa.sa_handler = SIG_IGN;
	(void)sigaction(SIGHUP, &sa, NULL);
	(void)sigaction(SIGPIPE, &sa, NULL); /* writes get EPIPE */
	sa.sa_handler = child_on_signal;     /* no SA_RESTART */
	(void)sigaction(SIGTERM, &sa, NULL);
	(void)sigaction(SIGINT, &sa, NULL);

	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	m.waitmask = m.oldmask;
	sigdelset(&m.waitmask, SIGTERM);
	sigdelset(&m.waitmask, SIGINT);
	(void)sigprocmask(SIG_SETMASK, &m.oldmask, NULL);
	(void)sigprocmask(SIG_BLOCK, &block, NULL);

	/* Orphans drain too: a SIGKILLed master must not leave us serving. */
	(void)prctl(PR_SET_PDEATHSIG, SIGTERM);
	/* ps and top tell the pools apart: "bw-fcgi-chat"; the api pool's
	 * children keep the program's name. */
	if (pool != POOL_API) {
		char name[16];

		(void)snprintf(name, sizeof(name), "bw-fcgi-%s", p->name);
		(void)prctl(PR_SET_NAME, name);
	}
	/* php-fpm's process.priority: a pool that mostly waits (chat) yields
	 * the CPU to the one that must stay fast (payments). */
	errno = 0;
	if (p->nice > 0 && nice(p->nice) == -1 && errno != 0)
		log_kv(LL_WARN, "nice failed", "pool", p->name, "error",
		    strerror(errno), NULL);
	if (getppid() != master_pid)
		child_stop = 1;

	if (m.hooks->child_init != NULL &&
	    m.hooks->child_init(m.cfg, pool, child_no) != 0)
		_exit(1);

	ep = -1;
	if (FCGX_Init() != 0 ||
	    FCGX_InitRequest(&fr, m.child_fd, FCGI_FAIL_ACCEPT_ON_INTR) != 0) {
		log_kv(LL_ERROR, "FastCGI init failed", NULL);
		code = 1;
		goto out;
	}
	ep = epoll_create1(EPOLL_CLOEXEC);
	memset(&ev, 0, sizeof(ev));
	/* EPOLLEXCLUSIVE: one idle child wakes per connection, not all. */
	ev.events = EPOLLIN | EPOLLEXCLUSIVE;
	ev.data.fd = m.child_fd;
	if (ep == -1 || epoll_ctl(ep, EPOLL_CTL_ADD, m.child_fd, &ev) == -1) {
		log_kv(LL_ERROR, "epoll on the listen socket", "error",
		    strerror(errno), NULL);
		code = 1;
		goto out;
	}

	while (!child_stop) {
		if (p->max_requests > 0 &&
		    served >= (unsigned long)p->max_requests)
			break;
		/* A signal taken in the wait may come with a ready fd. */
		if (child_wait(&fr, ep,
			m.hooks->child_idle != NULL ? m.hooks->child_idle()
						    : -1,
			m.hooks->child_watch != NULL ? m.hooks->child_watch()
						     : -1) != 0 ||
		    child_stop)
			continue;
		rc = FCGX_Accept_r(&fr);
		if (rc < 0) {
			/* Another child won the connection, or it went away. */
			if (rc == -EAGAIN || rc == -EWOULDBLOCK ||
			    rc == -EINTR || rc == -ECONNABORTED ||
			    rc == -EPIPE || rc == -ECONNRESET)
				continue;
			log_kv(LL_ERROR, "FCGX_Accept_r failed", "child",
			    master_itoa(b1, sizeof(b1), child_no), "rc",
			    master_itoa(b2, sizeof(b2), rc), NULL);
			code = 1;
			break;
		}
		/* Counted before serving: a crash on a request is not a
		 * child that cannot start. */
		me->accepted = ++served;
		me->busy_since_ms = clock_mono_ms();
		m.hooks->child_serve(&fr);
		FCGX_Finish_r(&fr);
		me->busy_since_ms = 0;
	}
	FCGX_Free(&fr, 1);
out:
	if (ep != -1)
		close(ep);
	if (m.hooks->child_fini != NULL)
		m.hooks->child_fini();
	_exit(code);
}

/* Forks one child of a pool into a free slot. Returns 0, or -1 (logged). */
static int
master_spawn(int pool, int child_no)
{
	struct slot *s = NULL;
	pid_t	     pid, self;
	size_t	     i;
	char	     b1[MASTER_NUM], b2[MASTER_NUM];

	for (i = 0; i < MASTER_SLOTS; i++)
		if (m.slots[i].pid == 0) {
			s = &m.slots[i];
			break;
		}
	if (s == NULL) {
		log_kv(LL_WARN, "no free child slot", NULL);
		return -1;
	}
	memset(s, 0, sizeof(*s));
	self = getpid();
	pid = fork();
	if (pid == -1) {
		log_kv(LL_ERROR, "fork failed", "error", strerror(errno), NULL);
		return -1;
	}
	if (pid == 0) {
		m.child_fd = m.fds[pool];
		child_run(s, pool, child_no, self);
	}
	s->pid = pid;
	s->pool = pool;
	s->child_no = child_no;
	s->gen = m.gen;
	log_kv(LL_DEBUG, "child started", "pool", m.pools[pool].name, "child",
	    master_itoa(b1, sizeof(b1), child_no), "child_pid",
	    master_itoa(b2, sizeof(b2), pid), NULL);
	return 0;
}

/* Starts the children of the current generation that are missing. */
static void
master_spawn_missing(int64_t now)
{
	unsigned char have[BW_MAX_FCGI_CHILDREN];
	size_t	      i;
	int	      k, pl;

	if (m.draining)
		return;
	for (pl = 0; pl < m.npools; pl++) {
		struct pstate *ps = &m.ps[pl];

		if (now < ps->next_spawn_ms)
			continue;
		memset(have, 0, sizeof(have));
		for (i = 0; i < MASTER_SLOTS; i++) {
			const struct slot *s = &m.slots[i];

			if (s->pid != 0 && s->pool == pl && s->gen == m.gen &&
			    !s->stopping && s->child_no >= 0 &&
			    s->child_no < ps->children)
				have[s->child_no] = 1;
		}
		for (k = 0; k < ps->children; k++) {
			if (have[k])
				continue;
			if (master_spawn(pl, k) != 0) {
				ps->next_spawn_ms = now + 1000;
				break;
			}
		}
	}
}

/* Sends SIGTERM to a child and arms its SIGKILL deadline. */
static void
master_stop_child(struct slot *s, int64_t kill_at)
{
	if (!s->stopping) {
		(void)kill(s->pid, SIGTERM);
		s->stopping = 1;
	}
	if (s->kill_at_ms == 0 || kill_at < s->kill_at_ms)
		s->kill_at_ms = kill_at;
}

/* SIGTERM/SIGINT (graceful, exit_code) and SIGQUIT (now): stop all. */
static void
master_drain(int64_t now, int64_t deadline)
{
	size_t i;
	char   b[MASTER_NUM];

	if (!m.draining) {
		m.draining = 1;
		master_notify("STOPPING=1\nSTATUS=draining");
		log_kv(LL_INFO, "draining", "timeout_s",
		    master_itoa(b, sizeof(b), (deadline - now) / 1000), NULL);
	}
	for (i = 0; i < MASTER_SLOTS; i++)
		if (m.slots[i].pid != 0)
			master_stop_child(&m.slots[i], deadline);
}

/*
 * Counts a death of the current generation towards the start-up crash-loop
 * guard. Only children that never accepted a request count: N of their
 * abnormal deaths within BW_RESPAWN_WINDOW_MS double the respawn delay (up
 * to BW_RESPAWN_MAX_MS), and max(BW_CHILD_GIVEUP, 2 N) of them in a row
 * make the master give up (exit 1: a config or a host that cannot run a
 * child; systemd restarts it). A child that served and then died is the
 * work's (a request that crashes every child serving it, the OOM killer):
 * it is replaced at once, never delayed, since backing off would starve
 * the pool of children for every other request; its crash goes to error
 * tracking (fcgi/errspool.h). docs/operations.md, "Pools".
 */
static void
master_count_death(int pool, int64_t now, int abnormal, unsigned long accepted)
{
	struct pstate *ps = &m.ps[pool];
	char	       b1[MASTER_NUM], b2[MASTER_NUM];

	if (accepted > 0) {
		ps->nostart = 0;
		return;
	}
	if (!abnormal)
		return;
	ps->nostart++;
	if (now - ps->last_death_ms > BW_RESPAWN_WINDOW_MS)
		ps->backoff_ms = 0;
	ps->last_death_ms = now;
	if (now - ps->window_ms > BW_RESPAWN_WINDOW_MS) {
		ps->window_ms = now;
		ps->window_deaths = 0;
	}
	if (++ps->window_deaths >= ps->children) {
		ps->backoff_ms = ps->backoff_ms == 0 ? BW_RESPAWN_MIN_MS
						     : ps->backoff_ms * 2;
		if (ps->backoff_ms > BW_RESPAWN_MAX_MS)
			ps->backoff_ms = BW_RESPAWN_MAX_MS;
		ps->next_spawn_ms = now + ps->backoff_ms;
		ps->window_ms = now;
		ps->window_deaths = 0;
		log_kv(LL_WARN, "children die before serving, backing off",
		    "pool", m.pools[pool].name, "backoff_ms",
		    master_itoa(b1, sizeof(b1), ps->backoff_ms), NULL);
	}
	if (ps->nostart >= BW_CHILD_GIVEUP && ps->nostart >= 2 * ps->children) {
		log_kv(LL_ERROR, "children die before serving; giving up",
		    "pool", m.pools[pool].name, "deaths",
		    master_itoa(b2, sizeof(b2), ps->nostart), NULL);
		m.exit_code = 1;
		master_drain(now, now + (int64_t)m.cfg->drain_timeout_s * 1000);
	}
}

/* Reaps every dead child, logs it, and counts it. */
static void
master_reap(int64_t now)
{
	struct slot *s;
	pid_t	     pid;
	size_t	     i;
	char	     b1[MASTER_NUM], b2[MASTER_NUM], b3[MASTER_NUM];
	char	     b4[MASTER_NUM];
	int	     st, abnormal, current;

	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		s = NULL;
		for (i = 0; i < MASTER_SLOTS; i++)
			if (m.slots[i].pid == pid) {
				s = &m.slots[i];
				break;
			}
		if (s == NULL)
			continue;
		current = s->gen == m.gen && !s->stopping && !m.draining;
		master_itoa(b1, sizeof(b1), s->child_no);
		master_itoa(b2, sizeof(b2), pid);
		master_itoa(b3, sizeof(b3), (long long)s->accepted);
		if (WIFSIGNALED(st)) {
			abnormal = 1;
			master_signame(b4, sizeof(b4), WTERMSIG(st));
			log_kv(LL_WARN, "child exited", "pool",
			    m.pools[s->pool].name, "child", b1, "child_pid", b2,
			    "signal", b4, "requests", b3, "core",
			    WCOREDUMP(st) ? "yes" : "no", NULL);
		} else {
			abnormal = WEXITSTATUS(st) != 0;
			log_kv(abnormal ? LL_WARN : LL_INFO, "child exited",
			    "pool", m.pools[s->pool].name, "child", b1,
			    "child_pid", b2, "status",
			    master_itoa(b4, sizeof(b4), WEXITSTATUS(st)),
			    "requests", b3, "reason",
			    !current	   ? "stopped"
				: abnormal ? "failed"
					   : "recycled",
			    NULL);
		}
		if (current)
			master_count_death(s->pool, now, abnormal, s->accepted);
		if (m.hooks->child_died != NULL) {
			int crash =
			    WIFSIGNALED(st) && !s->stopping && !m.draining;

			m.hooks->child_died(pid, s->pool, crash,
			    WIFSIGNALED(st) ? WTERMSIG(st) : 0,
			    WIFSIGNALED(st) && WCOREDUMP(st),
			    crash && s->kill_at_ms == INT64_MAX);
		}
		memset(s, 0, sizeof(*s));
	}
}

/*
 * SIGHUP: re-reads the config; a bad one is logged and the old kept. A good
 * one replaces *cfg, goes to hooks->reloaded, and rolls the children: a new
 * generation starts at once while the old one drains (SIGTERM, SIGKILL
 * after drain_timeout_s).
 */
static void
master_reload(int64_t now)
{
	struct config nc;
	char	      err[512], b[128];
	size_t	      i;
	int	      pl;

	master_notify("RELOADING=1\nMONOTONIC_USEC=%lld\nSTATUS=reloading",
	    (long long)clock_mono_us());
	memset(&nc, 0, sizeof(nc));
	err[0] = '\0';
	if (config_load(&nc, m.config_path, err, sizeof(err)) != BW_OK) {
		log_kv(LL_ERROR, "reload failed, keeping the running config",
		    "error", err, NULL);
		master_notify("READY=1\nSTATUS=serving (reload failed)");
		return;
	}
	config_free(m.cfg);
	*m.cfg = nc;
	master_pools_set(0);
	if (m.hooks->reloaded != NULL)
		m.hooks->reloaded(m.cfg);

	m.gen++;
	for (i = 0; i < MASTER_SLOTS; i++)
		if (m.slots[i].pid != 0 && m.slots[i].gen != m.gen)
			master_stop_child(&m.slots[i],
			    now + (int64_t)m.cfg->drain_timeout_s * 1000);
	for (pl = 0; pl < m.npools; pl++) {
		m.ps[pl].backoff_ms = 0;
		m.ps[pl].next_spawn_ms = 0;
		m.ps[pl].nostart = 0;
		m.ps[pl].window_deaths = 0;
	}
	master_spawn_missing(now);
	master_census(b, sizeof(b));
	log_kv(LL_INFO, "reloaded, children rolled", "children", b, NULL);
	master_notify("READY=1\nSTATUS=serving with %s children", b);
}

/*
 * SIGKILLs the children whose deadline passed, then arms SIGALRM for the
 * next deadline (a kill or a backed-off spawn). Returns the live count.
 */
static int
master_deadlines(int64_t now)
{
	struct itimerval it;
	int64_t		 next = 0, busy, tmo;
	size_t		 i;
	char		 b1[MASTER_NUM], b2[MASTER_NUM], b3[MASTER_NUM];
	int		 live = 0, pl, ticking = 0;

	for (i = 0; i < MASTER_SLOTS; i++) {
		struct slot *s = &m.slots[i];

		if (s->pid == 0)
			continue;
		live++;
		tmo = m.pools[s->pool].request_timeout_ms;
		busy = s->busy_since_ms;
		if (tmo > 0 && busy > 0 && now - busy > tmo &&
		    s->kill_at_ms != INT64_MAX) {
			log_kv(LL_WARN, "request timed out, child killed",
			    "pool", m.pools[s->pool].name, "child",
			    master_itoa(b1, sizeof(b1), s->child_no),
			    "child_pid", master_itoa(b2, sizeof(b2), s->pid),
			    "busy_ms", master_itoa(b3, sizeof(b3), now - busy),
			    NULL);
			(void)kill(s->pid, SIGKILL);
			s->kill_at_ms = INT64_MAX; /* once */
			continue;
		}
		if (s->kill_at_ms == 0)
			continue;
		if (s->kill_at_ms <= now) {
			log_kv(LL_WARN, "child still busy, killed", "child",
			    master_itoa(b1, sizeof(b1), s->child_no),
			    "child_pid", master_itoa(b2, sizeof(b2), s->pid),
			    NULL);
			(void)kill(s->pid, SIGKILL);
			s->kill_at_ms = INT64_MAX; /* once */
		} else if (s->kill_at_ms != INT64_MAX &&
		    (next == 0 || s->kill_at_ms < next))
			next = s->kill_at_ms;
	}
	for (pl = 0; pl < m.npools; pl++) {
		if (!m.draining && m.ps[pl].next_spawn_ms > now &&
		    (next == 0 || m.ps[pl].next_spawn_ms < next))
			next = m.ps[pl].next_spawn_ms;
		if (m.pools[pl].request_timeout_ms > 0)
			ticking = 1;
	}
	/* A request timeout needs a look now and then: the master is not
	 * told when a child takes a request. */
	if (ticking && live > 0 && (next == 0 || now + MASTER_TICK_MS < next))
		next = now + MASTER_TICK_MS;

	memset(&it, 0, sizeof(it));
	if (next != 0) {
		it.it_value.tv_sec = (next - now) / 1000;
		it.it_value.tv_usec = (suseconds_t)((next - now) % 1000) * 1000;
		if (it.it_value.tv_sec == 0 && it.it_value.tv_usec == 0)
			it.it_value.tv_usec = 1000;
	}
	(void)setitimer(ITIMER_REAL, &it, NULL);
	return live;
}

/* Installs the master's signal handling; saves the caller's to restore. */
static void
master_signals_setup(void)
{
	struct sigaction sa;
	sigset_t	 set;
	size_t		 i;

	sigemptyset(&set);
	for (i = 0; i < MASTER_NSIGNALS; i++)
		sigaddset(&set, master_signals[i]);
	(void)sigprocmask(SIG_BLOCK, &set, &m.oldmask);
	m.waitmask = m.oldmask;
	for (i = 0; i < MASTER_NSIGNALS; i++)
		sigdelset(&m.waitmask, master_signals[i]);

	memset(&sa, 0, sizeof(sa));
	sigfillset(&sa.sa_mask);
	sa.sa_handler = master_on_signal;
	for (i = 0; i < MASTER_NSIGNALS; i++)
		(void)sigaction(master_signals[i], &sa, &old_actions[i]);
	sa.sa_handler = SIG_IGN;
	(void)sigaction(SIGPIPE, &sa, &old_pipe);
}

/* Puts the caller's signal handling back. */
static void
master_signals_restore(void)
{
	struct itimerval it;
	size_t		 i;

	memset(&it, 0, sizeof(it));
	(void)setitimer(ITIMER_REAL, &it, NULL);
	for (i = 0; i < MASTER_NSIGNALS; i++)
		(void)sigaction(master_signals[i], &old_actions[i], NULL);
	(void)sigaction(SIGPIPE, &old_pipe, NULL);
	(void)sigprocmask(SIG_SETMASK, &m.oldmask, NULL);
}

/*
 * See master.h. The listen socket becomes non-blocking (shared by all
 * children: an idle child that loses the race for a connection goes back to
 * waiting instead of blocking in accept(2) where SIGTERM cannot reach it).
 */
int
master_run(const int *fds, struct config *cfg, const char *config_path,
    const struct master_hooks *hooks)
{
	int64_t now;
	int	fl, live, pl;
	char	b[128];

	memset(&m, 0, sizeof(m));
	m.cfg = cfg;
	m.config_path = config_path;
	m.hooks = hooks;
	master_pools_set(1);
	for (pl = 0; pl < m.npools; pl++)
		m.fds[pl] = fds[pl];
	m.child_fd = -1;
	sig_chld = sig_term = sig_hup = sig_quit = 0;

	m.slots = mmap(NULL, MASTER_SLOTS * sizeof(struct slot),
	    PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (m.slots == MAP_FAILED) {
		log_kv(LL_ERROR, "mmap of the child table", "error",
		    strerror(errno), NULL);
		return 1;
	}
	for (pl = 0; pl < m.npools; pl++) {
		fl = fcntl(m.fds[pl], F_GETFL);
		if (fl == -1 ||
		    fcntl(m.fds[pl], F_SETFL, fl | O_NONBLOCK) == -1) {
			log_kv(LL_ERROR, "listen socket", "pool",
			    m.pools[pl].name, "error", strerror(errno), NULL);
			(void)munmap(m.slots,
			    MASTER_SLOTS * sizeof(struct slot));
			return 1;
		}
	}

	master_signals_setup();
	master_pidfile_write();
	master_spawn_missing(clock_mono_ms());
	master_census(b, sizeof(b));
	log_kv(LL_INFO, "master ready", "children", b, NULL);
	master_notify("READY=1\nMAINPID=%ld\nSTATUS=serving with %s children",
	    (long)getpid(), b);

	for (;;) {
		now = clock_mono_ms();
		if (sig_chld) {
			sig_chld = 0;
			master_reap(now);
		}
		if (sig_quit) {
			sig_quit = 0;
			master_drain(now, now);
		}
		if (sig_term) {
			sig_term = 0;
			if (!m.draining)
				master_drain(now,
				    now +
					(int64_t)m.cfg->drain_timeout_s * 1000);
		}
		if (sig_hup) {
			sig_hup = 0;
			if (!m.draining)
				master_reload(now);
		}
		master_spawn_missing(now);
		live = master_deadlines(now);
		if (m.draining && live == 0)
			break;
		(void)sigsuspend(&m.waitmask);
	}

	log_kv(LL_INFO, "master exiting", "status",
	    master_itoa(b, MASTER_NUM, m.exit_code), NULL);
	master_signals_restore();
	if (m.cfg->pid_file != NULL && m.cfg->pid_file[0] != '\0')
		(void)unlink(m.cfg->pid_file);
	(void)munmap(m.slots, MASTER_SLOTS * sizeof(struct slot));
	m.slots = NULL;
	return m.exit_code;
}
