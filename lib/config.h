/* SPDX-License-Identifier: MIT */
/*
 * Configuration: one "key = value" file, every key overridable by
 * BULWARK_<KEY> in the environment (upper case), secrets readable from files
 * (key_file = /path), validated as a whole at start-up; a failure names the
 * key. The table of keys is in config.c; docs/operations.md lists them.
 */
#ifndef BW_CONFIG_H
#define BW_CONFIG_H

#include <stddef.h>

#include "err.h"

struct config {
	/* fcgi */
	char	*fcgi_socket;		/* unix socket path */
	int	 fcgi_socket_mode;	/* octal, e.g. 0660 */
	int	 fcgi_backlog;
	int	 fcgi_children;
	int	 fcgi_max_requests;	/* recycle a child after this many */
	int	 drain_timeout_s;	/* SIGTERM grace for busy children */
	char	*pid_file;
	/* dependencies */
	char	*database_url;
	char	*redis_url;
	int	 db_statement_timeout_ms;
	/* logging */
	char	*log_level;
	/* providers */
	char	*llm_base_url;
	char	*llm_api_key;		/* secret */
	/* jobs */
	int	 job_lease_s;
	int	 job_max_attempts;
	int	 job_retention_days;
	/* paths */
	char	*sql_dir;
	char	*storage_dir;
};

/*
 * Loads defaults, then the file at path (NULL or "" for none), then the
 * environment, then validates. On failure writes a message naming the key
 * to err (errlen bytes) and returns BW_ECONFIG; cfg is then freed.
 */
enum bw_err	config_load(struct config *cfg, const char *path, char *err,
		    size_t errlen);
void		config_free(struct config *cfg);
/* Writes "key = value" lines (secrets masked) to fd; for `--print-config`. */
void		config_dump(const struct config *cfg, int fd);

#endif
