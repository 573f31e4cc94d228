/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness for lib/core/config.c: the "key = value" file parser and
 * validation (config.c has no in-memory entry point, so each input is
 * written to a temporary file). BULWARK_* variables are cleared first so
 * that only the file counts.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"

extern char **environ;

int LLVMFuzzerInitialize(int *, char ***);
int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static char path[64];

static void
rm_tmp(void)
{
	unlink(path);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char   name[256];
	size_t n;
	int    fd, again = 1;

	(void)argc;
	(void)argv;
	/* Clear BULWARK_*, restarting the scan after each unsetenv(). */
	while (again) {
		char **e;

		again = 0;
		for (e = environ; e != NULL && *e != NULL; e++) {
			if (strncmp(*e, "BULWARK_", 8) != 0)
				continue;
			n = strcspn(*e, "=");
			if (n >= sizeof(name))
				continue;
			memcpy(name, *e, n);
			name[n] = '\0';
			unsetenv(name);
			again = 1;
			break;
		}
	}
	snprintf(path, sizeof(path), "/tmp/fuzz_config.XXXXXX");
	if ((fd = mkstemp(path)) < 0)
		abort();
	close(fd);
	atexit(rm_tmp);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config cfg;
	char	      err[512];
	FILE	     *f;
	enum bw_err   er;
	int	      fd;

	if ((f = fopen(path, "w")) == NULL)
		abort();
	if (size > 0 && fwrite(data, 1, size, f) != size)
		abort();
	if (fclose(f) != 0)
		abort();

	memset(err, 'x', sizeof(err));
	er = config_load(&cfg, path, err, sizeof(err));
	if (memchr(err, '\0', sizeof(err)) == NULL)
		abort(); /* message not terminated */
	if (er == BW_OK) {
		if (err[0] != '\0' || cfg.fcgi_socket == NULL ||
		    cfg.log_level == NULL || cfg.fcgi_children < 1)
			abort();
		if ((fd = open("/dev/null", O_WRONLY)) >= 0) {
			config_dump(&cfg, fd);
			close(fd);
		}
		config_free(&cfg);
	} else if (er == BW_ECONFIG || er == BW_ENOMEM) {
		if (strncmp(err, "config: ", 8) != 0)
			abort(); /* a failure always names itself */
		if (cfg.fcgi_socket != NULL)
			abort(); /* freed on failure */
	} else
		abort();
	return 0;
}
