/* SPDX-License-Identifier: MIT */
/*
 * Test driver for tests/integration/credits.sh: hammers credit_transfer()
 * with opposite transfers between two accounts from many processes at
 * once (each with its own PostgreSQL connection, as fcgi children have)
 * and counts every outcome.
 *
 *   credit_hammer -c CONFIG ORG_ID A B COUNT PROCS PREFIX
 *
 * Transfer i (0 <= i < COUNT) moves 1 credit A -> B when i is even, B -> A
 * when odd, with transfer id PREFIX-i; process p does every i with
 * i % PROCS == p. Prints {"ok":n,"duplicate":n,"insufficient":n,
 * "errors":n} and exits 0 when every transfer got an answer (not when they
 * all succeeded: the test decides).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/config.h"
#include "money/credit.h"
#include "core/db.h"
#include "core/log.h"

#define HAMMER_MAX_COUNT 100000
#define HAMMER_MAX_PROCS 200

enum hammer_outcome {
	HO_OK,
	HO_DUPLICATE,
	HO_INSUFFICIENT,
	HO_ERROR,
	HO__MAX
};

/* Parses a whole decimal in [min,max]; -1 when not. */
static long
hammer_num(const char *s, long min, long max)
{
	char *end;
	long  v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || end == s || v < min || v > max)
		return -1;
	return v;
}

/* One process's share; writes its counts to fd. Returns an exit status. */
static int
hammer_child(const struct config *cfg, const char *org, const char *a,
    const char *b, long count, long procs, long me, const char *prefix, int fd)
{
	long		    cnt[HO__MAX] = { 0 };
	struct db	   *db;
	char		    id[200], line[128];
	enum bw_err	    er;
	bool		    applied;
	enum credit_outcome oc;
	long		    i;
	int		    n;

	db = db_new(cfg->database_url);
	if (db == NULL)
		return 1;
	for (i = me; i < count; i += procs) {
		snprintf(id, sizeof(id), "%s-%ld", prefix, i);
		applied = false;
		er = credit_transfer(db, org, i % 2 == 0 ? a : b,
		    i % 2 == 0 ? b : a, 1, id, &applied, &oc);
		if (er == BW_OK && oc == CREDIT_INSUFFICIENT)
			cnt[HO_INSUFFICIENT]++;
		else if (er == BW_OK)
			cnt[applied ? HO_OK : HO_DUPLICATE]++;
		else {
			cnt[HO_ERROR]++;
			fprintf(stderr, "credit_hammer: %s: %s (sqlstate %s)\n",
			    id, bw_strerror(er), db_sqlstate(db));
		}
	}
	db_free(db);
	n = snprintf(line, sizeof(line), "%ld %ld %ld %ld\n", cnt[HO_OK],
	    cnt[HO_DUPLICATE], cnt[HO_INSUFFICIENT], cnt[HO_ERROR]);
	/* One short line: a pipe write below PIPE_BUF is atomic. */
	if (write(fd, line, (size_t)n) != n)
		return 1;
	return 0;
}

int
main(int argc, char **argv)
{
	struct config cfg;
	long	      count, procs, p, tot[HO__MAX] = { 0 }, v[HO__MAX];
	char	      err[256], buf[16384];
	size_t	      len = 0;
	ssize_t	      r;
	pid_t	      pid;
	int	      fds[2], status, rc = 0, j;
	char	     *line, *save = NULL;

	if (argc != 9 || strcmp(argv[1], "-c") != 0) {
		fprintf(stderr,
		    "usage: credit_hammer -c CONFIG ORG_ID A B "
		    "COUNT PROCS PREFIX\n");
		return 2;
	}
	count = hammer_num(argv[6], 1, HAMMER_MAX_COUNT);
	procs = hammer_num(argv[7], 1, HAMMER_MAX_PROCS);
	if (count < 0 || procs < 0) {
		fprintf(stderr, "credit_hammer: COUNT 1..%d, PROCS 1..%d\n",
		    HAMMER_MAX_COUNT, HAMMER_MAX_PROCS);
		return 2;
	}
	if (config_load(&cfg, argv[2], err, sizeof(err)) != BW_OK) {
		fprintf(stderr, "credit_hammer: %s\n", err);
		return 2;
	}
	log_init("credit_hammer", LL_WARN);
	if (pipe(fds) == -1)
		return 1;
	for (p = 0; p < procs; p++) {
		pid = fork();
		if (pid == -1)
			return 1;
		if (pid == 0) {
			close(fds[0]);
			_exit(hammer_child(&cfg, argv[3], argv[4], argv[5],
			    count, procs, p, argv[8], fds[1]));
		}
	}
	close(fds[1]);
	while (len < sizeof(buf) - 1 &&
	    (r = read(fds[0], buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)r;
	buf[len] = '\0';
	close(fds[0]);
	while (wait(&status) > 0)
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			rc = 1;
	p = 0;
	for (line = strtok_r(buf, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		if (sscanf(line, "%ld %ld %ld %ld", &v[0], &v[1], &v[2],
			&v[3]) != 4)
			continue;
		for (j = 0; j < HO__MAX; j++)
			tot[j] += v[j];
		p++;
	}
	if (p != procs)
		rc = 1;
	printf("{\"ok\":%ld,\"duplicate\":%ld,\"insufficient\":%ld,"
	       "\"errors\":%ld,\"procs_reported\":%ld}\n",
	    tot[HO_OK], tot[HO_DUPLICATE], tot[HO_INSUFFICIENT], tot[HO_ERROR],
	    p);
	config_free(&cfg);
	return rc;
}
