/* SPDX-License-Identifier: MIT */
/*
 * Configuration: one const table of keys (type, place in struct config,
 * default, bounds, required, secret). Values are applied in order: the
 * table's defaults, the "key = value" file, then BULWARK_<KEY> from the
 * environment; secrets may instead be read from a file (<key>_file in the
 * file, BULWARK_<KEY>_FILE in the environment). The result is validated as
 * a whole; every error names the key and where its value came from:
 * "config: <key>: <problem> (<source>)".
 *
 * File syntax: one "key = value" per line; blank lines and lines whose
 * first non-blank character is '#' are ignored (a '#' after a value is part
 * of the value, so URLs and passwords may hold one); blanks around key and
 * value are trimmed; a value wrapped in double quotes loses them (no escape
 * sequences). A key given twice takes the later value.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/limits.h"
#include "core/log.h"

enum cfg_type {
	CT_STRING,
	CT_INT,
	CT_OCTAL,
	CT_BOOL,
};

struct cfg_key {
	const char   *name;
	enum cfg_type type;
	size_t	      off;	/* into struct config */
	const char   *def;	/* default, parsed like any value */
	long long     min, max; /* CT_INT, CT_OCTAL */
	int	      required; /* must not be empty */
	int	      secret;	/* masked; may come from <key>_file */
	/* A connection URL or conninfo: only its password is masked. */
	int url;
	/* Extra check of a string; returns the problem or NULL. */
	const char *(*check)(const char *);
};

static const char *cfg_check_level(const char *);
static const char *cfg_check_http(const char *);
static const char *cfg_check_origin(const char *);
static const char *cfg_check_http_opt(const char *);
static const char *cfg_check_repo(const char *);
static const char *cfg_check_nginx_word(const char *);
static const char *cfg_check_nginx_names(const char *);
static const char *cfg_check_sentinels(const char *);
static const char *cfg_check_master_name(const char *);

#define OFF(f) offsetof(struct config, f)

static const struct cfg_key cfg_keys[] = {
	{ .name = "fcgi_socket",
	    .type = CT_STRING,
	    .off = OFF(fcgi_socket),
	    .def = "/run/bulwark/fcgi.sock",
	    .required = 1 },
	{ .name = "fcgi_socket_mode",
	    .type = CT_OCTAL,
	    .off = OFF(fcgi_socket_mode),
	    .def = "0660",
	    .min = 0,
	    .max = 0777 },
	{ .name = "fcgi_backlog",
	    .type = CT_INT,
	    .off = OFF(fcgi_backlog),
	    .def = "1024",
	    .min = 1,
	    .max = 65535 },
	{ .name = "fcgi_children",
	    .type = CT_INT,
	    .off = OFF(fcgi_children),
	    .def = "8",
	    .min = 1,
	    .max = 1024 },
	{ .name = "fcgi_max_requests",
	    .type = CT_INT,
	    .off = OFF(fcgi_max_requests),
	    .def = "100000",
	    .min = 0,
	    .max = 1000000000 },
	{ .name = "fcgi_request_timeout_ms",
	    .type = CT_INT,
	    .off = OFF(fcgi_request_timeout_ms),
	    .def = "0",
	    .min = 0,
	    .max = 3600000 },
	{ .name = "fcgi_queue_deadline_ms",
	    .type = CT_INT,
	    .off = OFF(fcgi_queue_deadline_ms),
	    .def = "0",
	    .min = 0,
	    .max = 3600000 },
	{ .name = "fcgi_nice",
	    .type = CT_INT,
	    .off = OFF(fcgi_nice),
	    .def = "0",
	    .min = 0,
	    .max = 19 },
	{ .name = "fcgi_chat_socket",
	    .type = CT_STRING,
	    .off = OFF(fcgi_chat_socket),
	    .def = "" },
	{ .name = "fcgi_chat_backlog",
	    .type = CT_INT,
	    .off = OFF(fcgi_chat_backlog),
	    .def = "1024",
	    .min = 1,
	    .max = 65535 },
	{ .name = "fcgi_chat_children",
	    .type = CT_INT,
	    .off = OFF(fcgi_chat_children),
	    .def = "32",
	    .min = 1,
	    .max = 1024 },
	{ .name = "fcgi_chat_max_requests",
	    .type = CT_INT,
	    .off = OFF(fcgi_chat_max_requests),
	    .def = "100000",
	    .min = 0,
	    .max = 1000000000 },
	{ .name = "fcgi_chat_request_timeout_ms",
	    .type = CT_INT,
	    .off = OFF(fcgi_chat_request_timeout_ms),
	    .def = "60000",
	    .min = 0,
	    .max = 3600000 },
	{ .name = "fcgi_chat_queue_deadline_ms",
	    .type = CT_INT,
	    .off = OFF(fcgi_chat_queue_deadline_ms),
	    .def = "10000",
	    .min = 0,
	    .max = 3600000 },
	{ .name = "fcgi_chat_nice",
	    .type = CT_INT,
	    .off = OFF(fcgi_chat_nice),
	    .def = "10",
	    .min = 0,
	    .max = 19 },
	{ .name = "fcgi_chat_routes",
	    .type = CT_STRING,
	    .off = OFF(fcgi_chat_routes),
	    .def = "chat,chat_session_get,chat_session_delete" },
	{ .name = "drain_timeout_s",
	    .type = CT_INT,
	    .off = OFF(drain_timeout_s),
	    .def = "30",
	    .min = 1,
	    .max = 3600 },
	{ .name = "pid_file",
	    .type = CT_STRING,
	    .off = OFF(pid_file),
	    .def = "" },
	{ .name = "database_url",
	    .type = CT_STRING,
	    .off = OFF(database_url),
	    .def = "postgresql:///bulwark",
	    .required = 1,
	    .secret = 1,
	    .url = 1 },
	{ .name = "monitor_database_url",
	    .type = CT_STRING,
	    .off = OFF(monitor_database_url),
	    .def = "",
	    .secret = 1,
	    .url = 1 },
	{ .name = "redis_url",
	    .type = CT_STRING,
	    .off = OFF(redis_url),
	    .def = "redis://127.0.0.1:6379/0",
	    .required = 1,
	    .secret = 1,
	    .url = 1 },
	{ .name = "redis_sentinels",
	    .type = CT_STRING,
	    .off = OFF(redis_sentinels),
	    .def = "",
	    .check = cfg_check_sentinels },
	{ .name = "redis_master_name",
	    .type = CT_STRING,
	    .off = OFF(redis_master_name),
	    .def = "bulwark",
	    .required = 1,
	    .check = cfg_check_master_name },
	{ .name = "db_statement_timeout_ms",
	    .type = CT_INT,
	    .off = OFF(db_statement_timeout_ms),
	    .def = "5000",
	    .min = 0,
	    .max = 600000 },
	{ .name = "auth_cache_ttl_s",
	    .type = CT_INT,
	    .off = OFF(auth_cache_ttl_s),
	    .def = "60",
	    .min = 0,
	    .max = 3600 },
	{ .name = "worker_statement_timeout_ms",
	    .type = CT_INT,
	    .off = OFF(worker_statement_timeout_ms),
	    .def = "30000",
	    .min = 0,
	    .max = 3600000 },
	{ .name = "log_level",
	    .type = CT_STRING,
	    .off = OFF(log_level),
	    .def = "info",
	    .required = 1,
	    .check = cfg_check_level },
	{ .name = "llm_base_url",
	    .type = CT_STRING,
	    .off = OFF(llm_base_url),
	    .def = "http://127.0.0.1:18081/v1",
	    .required = 1,
	    .check = cfg_check_http },
	{ .name = "llm_api_key",
	    .type = CT_STRING,
	    .off = OFF(llm_api_key),
	    .def = "",
	    .secret = 1 },
	{ .name = "job_lease_s",
	    .type = CT_INT,
	    .off = OFF(job_lease_s),
	    .def = "60",
	    .min = 5,
	    .max = 3600 },
	{ .name = "job_max_attempts",
	    .type = CT_INT,
	    .off = OFF(job_max_attempts),
	    .def = "5",
	    .min = 1,
	    .max = 100 },
	{ .name = "job_retention_days",
	    .type = CT_INT,
	    .off = OFF(job_retention_days),
	    .def = "7",
	    .min = 1,
	    .max = 3650 },
	{ .name = "health_job_age_max_s",
	    .type = CT_INT,
	    .off = OFF(health_job_age_max_s),
	    .def = "900",
	    .min = 0,
	    .max = 604800 },
	{ .name = "health_dead_window_s",
	    .type = CT_INT,
	    .off = OFF(health_dead_window_s),
	    .def = "86400",
	    .min = 0,
	    .max = 2592000 },
	{ .name = "health_periodic_grace_s",
	    .type = CT_INT,
	    .off = OFF(health_periodic_grace_s),
	    .def = "300",
	    .min = 0,
	    .max = 86400 },
	{ .name = "periodic_slot_s",
	    .type = CT_INT,
	    .off = OFF(periodic_slot_s),
	    .def = "0",
	    .min = 0,
	    .max = 86400 },
	{ .name = "reservation_ttl_s",
	    .type = CT_INT,
	    .off = OFF(reservation_ttl_s),
	    .def = "172800",
	    .min = 1,
	    .max = 31536000 },
	{ .name = "idem_lock_timeout_s",
	    .type = CT_INT,
	    .off = OFF(idem_lock_timeout_s),
	    .def = "60",
	    .min = 1,
	    .max = 86400 },
	{ .name = "sql_dir",
	    .type = CT_STRING,
	    .off = OFF(sql_dir),
	    .def = "/usr/share/bulwark/sql",
	    .required = 1 },
	{ .name = "storage_dir",
	    .type = CT_STRING,
	    .off = OFF(storage_dir),
	    .def = "/var/lib/bulwark",
	    .required = 1 },
	{ .name = "ledger_key_file",
	    .type = CT_STRING,
	    .off = OFF(ledger_key_file),
	    .def = "/etc/bulwark/ledger.key" },
	{ .name = "ledger_public_key_file",
	    .type = CT_STRING,
	    .off = OFF(ledger_public_key_file),
	    .def = "/etc/bulwark/ledger.pub" },
	{ .name = "ledger_origin",
	    .type = CT_STRING,
	    .off = OFF(ledger_origin),
	    .def = "bulwark.local",
	    .required = 1,
	    .check = cfg_check_origin },
	{ .name = "export_file_pause_ms",
	    .type = CT_INT,
	    .off = OFF(export_file_pause_ms),
	    .def = "0",
	    .min = 0,
	    .max = 60000 },
	{ .name = "retention_clock_offset_s",
	    .type = CT_INT,
	    .off = OFF(retention_clock_offset_s),
	    .def = "0",
	    .min = 0,
	    .max = 100000000 },
	{ .name = "llm_global_cap",
	    .type = CT_INT,
	    .off = OFF(llm_global_cap),
	    .def = "15",
	    .min = 1,
	    .max = 10000 },
	{ .name = "llm_org_cap",
	    .type = CT_INT,
	    .off = OFF(llm_org_cap),
	    .def = "5",
	    .min = 1,
	    .max = 10000 },
	{ .name = "chat_queue_deadline_ms",
	    .type = CT_INT,
	    .off = OFF(chat_queue_deadline_ms),
	    .def = "10000",
	    .min = 0,
	    .max = 120000 },
	{ .name = "chat_deadline_ms",
	    .type = CT_INT,
	    .off = OFF(chat_deadline_ms),
	    .def = "30000",
	    .min = 1000,
	    .max = 300000 },
	{ .name = "chat_max_tokens",
	    .type = CT_INT,
	    .off = OFF(chat_max_tokens),
	    .def = "512",
	    .min = 1,
	    .max = 100000 },
	{ .name = "chat_min_tokens",
	    .type = CT_INT,
	    .off = OFF(chat_min_tokens),
	    .def = "16",
	    .min = 1,
	    .max = 100000 },
	{ .name = "chat_lease_ttl_ms",
	    .type = CT_INT,
	    .off = OFF(chat_lease_ttl_ms),
	    .def = "10000",
	    .min = 2000,
	    .max = 600000 },
	{ .name = "chat_hold_ttl_s",
	    .type = CT_INT,
	    .off = OFF(chat_hold_ttl_s),
	    .def = "120",
	    .min = 10,
	    .max = 86400 },
	{ .name = "chat_block_calls",
	    .type = CT_INT,
	    .off = OFF(chat_block_calls),
	    .def = "16",
	    .min = 0,
	    .max = 1000 },
	{ .name = "chat_block_pct",
	    .type = CT_INT,
	    .off = OFF(chat_block_pct),
	    .def = "5",
	    .min = 0,
	    .max = 100 },
	{ .name = "chat_block_idle_ms",
	    .type = CT_INT,
	    .off = OFF(chat_block_idle_ms),
	    .def = "2000",
	    .min = 100,
	    .max = 600000 },
	{ .name = "chat_block_record_batch",
	    .type = CT_INT,
	    .off = OFF(chat_block_record_batch),
	    .def = "32",
	    .min = 0,
	    .max = 64 }, /* BLOCK_REC_MAX */
	{ .name = "chat_block_record_ms",
	    .type = CT_INT,
	    .off = OFF(chat_block_record_ms),
	    .def = "1000",
	    .min = 1,
	    .max = 10000 },
	{ .name = "llm_attempt_timeout_ms",
	    .type = CT_INT,
	    .off = OFF(llm_attempt_timeout_ms),
	    .def = "8000",
	    .min = 100,
	    .max = 600000 },
	{ .name = "llm_retry_timeout_ms",
	    .type = CT_INT,
	    .off = OFF(llm_retry_timeout_ms),
	    .def = "10000",
	    .min = 100,
	    .max = 600000 },
	{ .name = "llm_max_retries",
	    .type = CT_INT,
	    .off = OFF(llm_max_retries),
	    .def = "2",
	    .min = 0,
	    .max = 10 },
	{ .name = "llm_breaker_failures",
	    .type = CT_INT,
	    .off = OFF(llm_breaker_failures),
	    .def = "10",
	    .min = 1,
	    .max = 100000 },
	{ .name = "llm_breaker_open_ms",
	    .type = CT_INT,
	    .off = OFF(llm_breaker_open_ms),
	    .def = "15000",
	    .min = 100,
	    .max = 3600000 },
	{ .name = "llm_primary_model",
	    .type = CT_STRING,
	    .off = OFF(llm_primary_model),
	    .def = "gpt-4o",
	    .required = 1 },
	{ .name = "llm_fallback_model",
	    .type = CT_STRING,
	    .off = OFF(llm_fallback_model),
	    .def = "gpt-4o-mini",
	    .required = 1 },
	{ .name = "chat_fallback_reply",
	    .type = CT_STRING,
	    .off = OFF(chat_fallback_reply),
	    .def = "Sorry, we cannot answer right now. Please try again later.",
	    .required = 1 },
	{ .name = "line_api_base_url",
	    .type = CT_STRING,
	    .off = OFF(line_api_base_url),
	    .def = "http://127.0.0.1:18082",
	    .required = 1,
	    .check = cfg_check_http },
	{ .name = "sms_base_url",
	    .type = CT_STRING,
	    .off = OFF(sms_base_url),
	    .def = "http://127.0.0.1:18083",
	    .required = 1,
	    .check = cfg_check_http },
	{ .name = "sms_api_key",
	    .type = CT_STRING,
	    .off = OFF(sms_api_key),
	    .def = "",
	    .secret = 1 },
	{ .name = "sms_callback_base_url",
	    .type = CT_STRING,
	    .off = OFF(sms_callback_base_url),
	    .def = "" },
	{ .name = "sms_send_rate",
	    .type = CT_INT,
	    .off = OFF(sms_send_rate),
	    .def = "100",
	    .min = 0,
	    .max = 100000 },
	{ .name = "sms_attempt_timeout_ms",
	    .type = CT_INT,
	    .off = OFF(sms_attempt_timeout_ms),
	    .def = "10000",
	    .min = 100,
	    .max = 120000 },
	{ .name = "sms_max_retries",
	    .type = CT_INT,
	    .off = OFF(sms_max_retries),
	    .def = "3",
	    .min = 0,
	    .max = 10 },
	{ .name = "sms_backoff_base_ms",
	    .type = CT_INT,
	    .off = OFF(sms_backoff_base_ms),
	    .def = "1000",
	    .min = 1,
	    .max = 60000 },
	{ .name = "sms_window",
	    .type = CT_INT,
	    .off = OFF(sms_window),
	    .def = "16",
	    .min = 1,
	    .max = 100 },
	{ .name = "campaign_batch_size",
	    .type = CT_INT,
	    .off = OFF(campaign_batch_size),
	    .def = "100",
	    .min = 1,
	    .max = 10000 },
	{ .name = "campaign_stuck_after_s",
	    .type = CT_INT,
	    .off = OFF(campaign_stuck_after_s),
	    .def = "900",
	    .min = 1,
	    .max = 604800 },
	/* Error tracking (docs/runbooks/error-tracking.md). */
	{ .name = "tracker_base_url",
	    .type = CT_STRING,
	    .off = OFF(tracker_base_url),
	    .def = "",
	    .check = cfg_check_http_opt },
	{ .name = "tracker_token",
	    .type = CT_STRING,
	    .off = OFF(tracker_token),
	    .def = "",
	    .secret = 1 },
	{ .name = "tracker_repo",
	    .type = CT_STRING,
	    .off = OFF(tracker_repo),
	    .def = "",
	    .check = cfg_check_repo },
	{ .name = "tracker_timeout_ms",
	    .type = CT_INT,
	    .off = OFF(tracker_timeout_ms),
	    .def = "10000",
	    .min = 100,
	    .max = 120000 },
	/* People (lib/people/, docs/api/auth.md). */
	{ .name = "public_base_url",
	    .type = CT_STRING,
	    .off = OFF(public_base_url),
	    .def = "" },
	{ .name = "password_scrypt_n",
	    .type = CT_INT,
	    .off = OFF(password_scrypt_n),
	    .def = "16384",
	    .min = 1024,
	    .max = 1048576 },
	{ .name = "password_scrypt_r",
	    .type = CT_INT,
	    .off = OFF(password_scrypt_r),
	    .def = "8",
	    .min = 1,
	    .max = 32 },
	{ .name = "password_scrypt_p",
	    .type = CT_INT,
	    .off = OFF(password_scrypt_p),
	    .def = "1",
	    .min = 1,
	    .max = 16 },
	{ .name = "session_idle_s",
	    .type = CT_INT,
	    .off = OFF(session_idle_s),
	    .def = "1800",
	    .min = 1,
	    .max = 604800 },
	{ .name = "session_absolute_s",
	    .type = CT_INT,
	    .off = OFF(session_absolute_s),
	    .def = "43200",
	    .min = 1,
	    .max = 2592000 },
	{ .name = "session_cache_ttl_s",
	    .type = CT_INT,
	    .off = OFF(session_cache_ttl_s),
	    .def = "60",
	    .min = 0,
	    .max = 3600 },
	{ .name = "login_max_failures",
	    .type = CT_INT,
	    .off = OFF(login_max_failures),
	    .def = "10",
	    .min = 1,
	    .max = 100000 },
	{ .name = "login_ip_max_failures",
	    .type = CT_INT,
	    .off = OFF(login_ip_max_failures),
	    .def = "30",
	    .min = 1,
	    .max = 100000 },
	{ .name = "login_window_s",
	    .type = CT_INT,
	    .off = OFF(login_window_s),
	    .def = "900",
	    .min = 1,
	    .max = 86400 },
	{ .name = "invite_ttl_s",
	    .type = CT_INT,
	    .off = OFF(invite_ttl_s),
	    .def = "259200",
	    .min = 60,
	    .max = 2592000 },
	/* The nginx site `bulwarkctl nginx-conf` renders (issue 15). */
	{ .name = "nginx_server_name",
	    .type = CT_STRING,
	    .off = OFF(nginx_server_name),
	    .def = "_",
	    .required = 1,
	    .check = cfg_check_nginx_names },
	{ .name = "nginx_listen",
	    .type = CT_STRING,
	    .off = OFF(nginx_listen),
	    .def = "443",
	    .required = 1,
	    .check = cfg_check_nginx_word },
	{ .name = "nginx_tls_certificate",
	    .type = CT_STRING,
	    .off = OFF(nginx_tls_certificate),
	    .def = "/etc/ssl/certs/ssl-cert-snakeoil.pem",
	    .required = 1,
	    .check = cfg_check_nginx_word },
	{ .name = "nginx_tls_certificate_key",
	    .type = CT_STRING,
	    .off = OFF(nginx_tls_certificate_key),
	    .def = "/etc/ssl/private/ssl-cert-snakeoil.key",
	    .required = 1,
	    .check = cfg_check_nginx_word },
	{ .name = "nginx_access_log",
	    .type = CT_STRING,
	    .off = OFF(nginx_access_log),
	    .def = "/var/log/nginx/bulwark-access.log",
	    .required = 1,
	    .check = cfg_check_nginx_word },
	{ .name = "nginx_rate",
	    .type = CT_STRING,
	    .off = OFF(nginx_rate),
	    .def = "50r/s",
	    .required = 1,
	    .check = cfg_check_nginx_word },
	{ .name = "nginx_burst",
	    .type = CT_INT,
	    .off = OFF(nginx_burst),
	    .def = "100",
	    .min = 0,
	    .max = 1000000 },
	{ .name = "nginx_conn",
	    .type = CT_INT,
	    .off = OFF(nginx_conn),
	    .def = "100",
	    .min = 1,
	    .max = 1000000 },
	{ .name = "console_dir",
	    .type = CT_STRING,
	    .off = OFF(console_dir),
	    .def = "/usr/share/bulwark/console",
	    .required = 1,
	    .check = cfg_check_nginx_word },
};

/*
 * Keys that were removed, refused (not ignored) with what replaces them,
 * in the file (also as "<key>_file") and as BULWARK_<KEY>[_FILE].
 */
static const struct {
	const char *name;
	const char *instead;
} cfg_removed[] = {
	{ "line_channel_token",
	    "only each org's own token answers its LINE users: "
	    "bulwarkctl prompt set --org ID --line-token T" },
};

#define CFG_NKEYS   (sizeof(cfg_keys) / sizeof(cfg_keys[0]))
#define CFG_SRC_MAX 320 /* "path:line" or "env BULWARK_X" */

/* Where each key's current value came from, for error messages. */
struct cfg_load {
	struct config *cfg;
	char	       src[CFG_NKEYS][CFG_SRC_MAX];
	char	      *err;
	size_t	       errlen;
};

static const char *
cfg_check_level(const char *v)
{
	return log_level_parse(v) < 0
	    ? "must be one of debug, info, warn, error"
	    : NULL;
}

static const char *
cfg_check_http(const char *v)
{
	if (strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0)
		return "must start with http:// or https://";
	return NULL;
}

/* "" (off) or an http(s) URL. */
static const char *
cfg_check_http_opt(const char *v)
{
	return v[0] == '\0' ? NULL : cfg_check_http(v);
}

/*
 * A value bulwarkctl nginx-conf writes into the nginx site as one word:
 * nothing nginx would read as the end of a directive, a block, a quote, a
 * comment or a variable.
 */
static const char *
cfg_check_nginx_word(const char *v)
{
	for (; *v != '\0'; v++)
		if ((unsigned char)*v <= ' ' ||
		    strchr(";{}\"'\\#$", *v) != NULL)
			return "must be one word without ; { } quotes \\ # $";
	return NULL;
}

/* server_name: names separated by single spaces, each one such word. */
static const char *
cfg_check_nginx_names(const char *v)
{
	for (; *v != '\0'; v++)
		if ((*v == ' ' && (v[1] == ' ' || v[1] == '\0')) ||
		    (*v != ' ' &&
			((unsigned char)*v <= ' ' ||
			    strchr(";{}\"'\\#$", *v) != NULL)))
			return "must be names separated by one space, without "
			       "; { } quotes \\ # $";
	return NULL;
}

/* "" or "owner/repo", each side [A-Za-z0-9._-]{1,100}. */
static const char *
cfg_check_repo(const char *v)
{
	const char *s = strchr(v, '/');
	size_t	    n = strspn(v,
		 "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._"
		      "-");

	if (v[0] == '\0')
		return NULL;
	if (s == NULL || n == 0 || n > 100 || v + n != s ||
	    strspn(s + 1,
		"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		"0123456789._-") != strlen(s + 1) ||
	    strlen(s + 1) == 0 || strlen(s + 1) > 100)
		return "must be owner/repo";
	return NULL;
}

/*
 * "" (no Sentinel) or 1..BW_REDIS_MAX_SENTINELS "host:port" separated by
 * commas (blanks around each allowed); an IPv6 host in brackets.
 */
static const char *
cfg_check_sentinels(const char *v)
{
	const char *p = v, *e, *c, *q;
	size_t	    n = 0, hl;
	long	    port;
	char	   *end;

	if (v[0] == '\0')
		return NULL;
	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		e = p + strcspn(p, ",");
		if (++n > BW_REDIS_MAX_SENTINELS)
			return "at most 5 sentinels";
		c = NULL;
		if (*p == '[') {
			c = memchr(p, ']', (size_t)(e - p));
			if (c == NULL || c[1] != ':')
				return "must be host:port[,host:port...]";
			hl = (size_t)(c - p - 1);
			c++;
		} else {
			for (q = p; q < e; q++)
				if (*q == ':')
					c = q;
			hl = c != NULL ? (size_t)(c - p) : 0;
		}
		if (c == NULL || hl == 0 || hl > 253)
			return "must be host:port[,host:port...]";
		errno = 0;
		port = strtol(c + 1, &end, 10);
		while (*end == ' ' || *end == '\t')
			end++;
		if (end != e || c + 1 == end || !isdigit((unsigned char)c[1]) ||
		    port < 1 || port > 65535 || errno != 0)
			return "must be host:port[,host:port...] (port "
			       "1..65535)";
		if (*e == '\0')
			return NULL;
		p = e + 1;
	}
}

/* Sentinel's master name: [A-Za-z0-9._-]{1,64}. */
static const char *
cfg_check_master_name(const char *v)
{
	size_t n = strspn(v,
	    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._"
	    "-");

	if (n == 0 || n > 64 || v[n] != '\0')
		return "must be 1..64 of [A-Za-z0-9._-]";
	return NULL;
}

/*
 * A ledger origin is a host with an optional path: it becomes the first
 * line of signed checkpoints and the key name, so no blanks, no '+'.
 */
static const char *
cfg_check_origin(const char *v)
{
	size_t i;

	if (strlen(v) > 200)
		return "must be at most 200 characters";
	for (i = 0; v[i] != '\0'; i++)
		if ((unsigned char)v[i] <= 0x20 || v[i] == 0x7f || v[i] == '+')
			return "must not hold blanks, control characters "
			       "or '+'";
	return NULL;
}

/* Writes "config: <fmt...>" to the caller's error buffer; BW_ECONFIG. */
static enum bw_err cfg_err(struct cfg_load *ld, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static enum bw_err
cfg_err(struct cfg_load *ld, const char *fmt, ...)
{
	va_list ap;
	int	n;

	if (ld->err == NULL || ld->errlen == 0)
		return BW_ECONFIG;
	n = snprintf(ld->err, ld->errlen, "config: ");
	if (n < 0 || (size_t)n >= ld->errlen)
		return BW_ECONFIG;
	va_start(ap, fmt);
	vsnprintf(ld->err + n, ld->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return BW_ECONFIG;
}

static const struct cfg_key *
cfg_find(const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < CFG_NKEYS; i++)
		if (strlen(cfg_keys[i].name) == len &&
		    strncmp(cfg_keys[i].name, name, len) == 0)
			return &cfg_keys[i];
	return NULL;
}

/*
 * Parses v whole as a base-10 (or base-8) integer within [min, max].
 * Returns NULL with *out set, or the problem.
 */
static const char *
cfg_parse_int(const char *v, int base, long long min, long long max,
    long long *out)
{
	char	 *end;
	long long x;

	if (*v == '\0')
		return "must be an integer, got an empty value";
	if (!isdigit((unsigned char)*v) && *v != '-' && *v != '+')
		return "must be an integer";
	errno = 0;
	x = strtoll(v, &end, base);
	if (*end != '\0' || end == v)
		return base == 8 ? "must be an octal number"
				 : "must be an integer";
	if (errno == ERANGE || x < min || x > max)
		return "out of range";
	*out = x;
	return NULL;
}

static const char *
cfg_parse_bool(const char *v, long long *out)
{
	static const char *const t[] = { "1", "true", "yes", "on" };
	static const char *const f[] = { "0", "false", "no", "off" };
	size_t			 i;

	for (i = 0; i < 4; i++) {
		if (strcasecmp(v, t[i]) == 0) {
			*out = 1;
			return NULL;
		}
		if (strcasecmp(v, f[i]) == 0) {
			*out = 0;
			return NULL;
		}
	}
	return "must be true or false";
}

/*
 * Sets key k to the text v (from src). Returns BW_OK, BW_ECONFIG with the
 * message written, or BW_ENOMEM.
 */
static enum bw_err
cfg_set(struct cfg_load *ld, const struct cfg_key *k, const char *v,
    const char *src)
{
	char	   *base = (char *)ld->cfg + k->off;
	char	  **sp, *dup;
	const char *why = NULL;
	long long   x = 0;
	size_t	    idx = (size_t)(k - cfg_keys);

	switch (k->type) {
	case CT_STRING:
		if ((dup = strdup(v)) == NULL) {
			cfg_err(ld, "%s: out of memory", k->name);
			return BW_ENOMEM;
		}
		sp = (char **)(void *)base;
		if (*sp != NULL) {
			if (k->secret)
				OPENSSL_cleanse(*sp, strlen(*sp));
			free(*sp);
		}
		*sp = dup;
		break;
	case CT_INT:
		why = cfg_parse_int(v, 10, k->min, k->max, &x);
		break;
	case CT_OCTAL:
		why = cfg_parse_int(v, 8, k->min, k->max, &x);
		break;
	case CT_BOOL:
		why = cfg_parse_bool(v, &x);
		break;
	}
	if (why != NULL) {
		if (k->type == CT_OCTAL)
			return cfg_err(ld, "%s: %s (%#llo..%#llo) (%s)",
			    k->name, why, k->min, k->max, src);
		if (k->type == CT_INT)
			return cfg_err(ld, "%s: %s (%lld..%lld) (%s)", k->name,
			    why, k->min, k->max, src);
		return cfg_err(ld, "%s: %s (%s)", k->name, why, src);
	}
	if (k->type != CT_STRING) {
		int iv = (int)x;

		memcpy(base, &iv, sizeof(iv));
	}
	snprintf(ld->src[idx], sizeof(ld->src[idx]), "%s", src);
	return BW_OK;
}

/*
 * Reads the file at path (at most BW_MAX_CONFIG_FILE bytes) into a new
 * NUL-terminated buffer in *out (caller frees) with its length in *lenp.
 * Returns BW_OK, BW_ETOOBIG, BW_EIO (errno kept) or BW_ENOMEM.
 */
static enum bw_err
cfg_readfile(const char *path, char **out, size_t *lenp)
{
	struct buf  b;
	char	    chunk[4096];
	ssize_t	    r;
	enum bw_err er = BW_OK;
	int	    fd, saved;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return BW_EIO;
	buf_init(&b, BW_MAX_CONFIG_FILE);
	for (;;) {
		r = read(fd, chunk, sizeof(chunk));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			er = BW_EIO;
			break;
		}
		if (r == 0)
			break;
		er = buf_add(&b, chunk, (size_t)r);
		if (er != BW_OK)
			break;
	}
	saved = errno;
	close(fd);
	OPENSSL_cleanse(chunk, sizeof(chunk));
	if (er != BW_OK) {
		if (b.p != NULL)
			OPENSSL_cleanse(b.p, b.len);
		buf_free(&b);
		errno = saved;
		return er;
	}
	*lenp = b.len;
	*out = buf_take(&b);
	return *out != NULL ? BW_OK : BW_ENOMEM;
}

/* Sets secret key k from the file at path, trailing CR/LF removed. */
static enum bw_err
cfg_set_from_file(struct cfg_load *ld, const struct cfg_key *k,
    const char *path, const char *src)
{
	char	   *data = NULL;
	size_t	    len = 0;
	enum bw_err er;

	er = cfg_readfile(path, &data, &len);
	if (er == BW_ETOOBIG)
		return cfg_err(ld, "%s: file %s is larger than %d bytes (%s)",
		    k->name, path, BW_MAX_CONFIG_FILE, src);
	if (er == BW_ENOMEM) {
		cfg_err(ld, "%s: out of memory", k->name);
		return er;
	}
	if (er != BW_OK)
		return cfg_err(ld, "%s: cannot read %s: %s (%s)", k->name, path,
		    strerror(errno), src);
	if (memchr(data, '\0', len) != NULL)
		er = cfg_err(ld, "%s: file %s holds a NUL byte (%s)", k->name,
		    path, src);
	else {
		while (
		    len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r'))
			data[--len] = '\0';
		er = cfg_set(ld, k, data, src);
	}
	OPENSSL_cleanse(data, len);
	free(data);
	return er;
}

/*
 * Finds the key a name refers to: the key itself (*isfile = 0) or, for a
 * secret, "<key>_file" (*isfile = 1). NULL when unknown.
 */
static const struct cfg_key *
cfg_lookup(const char *name, size_t len, int *isfile)
{
	const struct cfg_key *k;

	*isfile = 0;
	if ((k = cfg_find(name, len)) != NULL)
		return k;
	if (len > 5 && strncmp(name + len - 5, "_file", 5) == 0) {
		k = cfg_find(name, len - 5);
		if (k != NULL && k->secret) {
			*isfile = 1;
			return k;
		}
	}
	return NULL;
}

/*
 * BW_ECONFIG naming a removed key and what replaces it when name[0..len)
 * is one (or its "_file" form); BW_OK otherwise.
 */
static enum bw_err
cfg_check_removed(struct cfg_load *ld, const char *name, size_t len,
    const char *src)
{
	size_t i, n;

	for (i = 0; i < sizeof(cfg_removed) / sizeof(cfg_removed[0]); i++) {
		n = strlen(cfg_removed[i].name);
		if (strncmp(name, cfg_removed[i].name, n) == 0 &&
		    (len == n ||
			(len == n + 5 && strncmp(name + n, "_file", 5) == 0)))
			return cfg_err(ld, "%s: removed; %s (%s)",
			    cfg_removed[i].name, cfg_removed[i].instead, src);
	}
	return BW_OK;
}

/* The removed keys set in the environment (BULWARK_<KEY>[_FILE]). */
static enum bw_err
cfg_env_removed(struct cfg_load *ld)
{
	char   var[128], src[160];
	size_t i, j;
	int    f;

	for (i = 0; i < sizeof(cfg_removed) / sizeof(cfg_removed[0]); i++)
		for (f = 0; f < 2; f++) {
			snprintf(var, sizeof(var), "BULWARK_%s%s",
			    cfg_removed[i].name, f ? "_file" : "");
			for (j = 0; var[j] != '\0'; j++)
				var[j] = (char)toupper((unsigned char)var[j]);
			if (getenv(var) == NULL)
				continue;
			snprintf(src, sizeof(src), "env %s", var);
			return cfg_check_removed(ld, cfg_removed[i].name,
			    strlen(cfg_removed[i].name), src);
		}
	return BW_OK;
}

static int
cfg_isblank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

/* Applies one line (NUL-terminated, no newline) of the file. */
static enum bw_err
cfg_line(struct cfg_load *ld, const char *path, size_t lineno, char *l)
{
	const struct cfg_key *k;
	char		     *key, *eq, *v, *e, src[CFG_SRC_MAX];
	size_t		      klen, vlen;
	int		      isfile;
	enum bw_err	      er;

	snprintf(src, sizeof(src), "%s:%zu", path, lineno);
	while (cfg_isblank(*l))
		l++;
	if (*l == '\0' || *l == '#')
		return BW_OK;
	key = l;
	if ((eq = strchr(l, '=')) == NULL)
		return cfg_err(ld, "expected \"key = value\" (%s)", src);
	for (e = eq; e > key && cfg_isblank(e[-1]); e--)
		;
	klen = (size_t)(e - key);
	if (klen == 0)
		return cfg_err(ld, "missing key before '=' (%s)", src);
	if ((k = cfg_lookup(key, klen, &isfile)) == NULL) {
		if ((er = cfg_check_removed(ld, key, klen, src)) != BW_OK)
			return er;
		/* Names the key, but no more than 64 bytes of it. */
		return cfg_err(ld, "%.*s: unknown key (%s)",
		    (int)(klen > 64 ? 64 : klen), key, src);
	}
	v = eq + 1;
	while (cfg_isblank(*v))
		v++;
	vlen = strlen(v);
	while (vlen > 0 && cfg_isblank(v[vlen - 1]))
		vlen--;
	if (vlen >= 2 && v[0] == '"' && v[vlen - 1] == '"') {
		v++;
		vlen -= 2;
	}
	v[vlen] = '\0';
	if (isfile)
		return cfg_set_from_file(ld, k, v, src);
	return cfg_set(ld, k, v, src);
}

/* Reads and applies the config file at path. */
static enum bw_err
cfg_file(struct cfg_load *ld, const char *path)
{
	char	   *data = NULL, *l, *nl;
	size_t	    len = 0, lineno = 0;
	enum bw_err er;

	er = cfg_readfile(path, &data, &len);
	if (er == BW_ETOOBIG)
		return cfg_err(ld, "%s: larger than %d bytes", path,
		    BW_MAX_CONFIG_FILE);
	if (er == BW_ENOMEM) {
		cfg_err(ld, "out of memory");
		return er;
	}
	if (er != BW_OK)
		return cfg_err(ld, "cannot read %s: %s", path, strerror(errno));
	if (memchr(data, '\0', len) != NULL) {
		er = cfg_err(ld, "%s: holds a NUL byte", path);
		goto out;
	}
	for (l = data; er == BW_OK && l < data + len; l = nl + 1) {
		lineno++;
		if ((nl = strchr(l, '\n')) == NULL)
			nl = data + len;
		if ((size_t)(nl - l) > BW_MAX_CONFIG_LINE) {
			er = cfg_err(ld, "line longer than %d bytes (%s:%zu)",
			    BW_MAX_CONFIG_LINE, path, lineno);
			break;
		}
		*nl = '\0';
		er = cfg_line(ld, path, lineno, l);
	}
out:
	OPENSSL_cleanse(data, len);
	free(data);
	return er;
}

/* Applies BULWARK_<KEY> and, for secrets, BULWARK_<KEY>_FILE. */
static enum bw_err
cfg_env(struct cfg_load *ld)
{
	char	    var[128], fvar[134], src[160];
	const char *v, *fv;
	size_t	    i, j, n;
	enum bw_err er;

	for (i = 0; i < CFG_NKEYS; i++) {
		n = (size_t)snprintf(var, sizeof(var), "BULWARK_");
		for (j = 0; cfg_keys[i].name[j] != '\0' && n + 1 < sizeof(var);
		     j++)
			var[n++] =
			    (char)toupper((unsigned char)cfg_keys[i].name[j]);
		var[n] = '\0';
		snprintf(fvar, sizeof(fvar), "%s_FILE", var);
		v = getenv(var);
		fv = cfg_keys[i].secret ? getenv(fvar) : NULL;
		if (v != NULL && fv != NULL)
			return cfg_err(ld, "%s: both %s and %s are set",
			    cfg_keys[i].name, var, fvar);
		if (v != NULL) {
			snprintf(src, sizeof(src), "env %s", var);
			er = cfg_set(ld, &cfg_keys[i], v, src);
		} else if (fv != NULL) {
			snprintf(src, sizeof(src), "env %s", fvar);
			er = cfg_set_from_file(ld, &cfg_keys[i], fv, src);
		} else
			continue;
		if (er != BW_OK)
			return er;
	}
	return BW_OK;
}

/*
 * fcgi_chat_socket "" is fcgi_socket's path with "-chat" before ".sock"
 * (or at its end), so that a copy of a config with another fcgi_socket
 * (a second master on the host) never takes the first one's chat socket.
 */
static enum bw_err
cfg_chat_socket(struct cfg_load *ld)
{
	struct config *c = ld->cfg;
	size_t	       n;
	char	      *s;

	if (c->fcgi_chat_socket != NULL && c->fcgi_chat_socket[0] != '\0')
		return BW_OK;
	if (strchr(c->fcgi_socket, ':') != NULL)
		return cfg_err(ld,
		    "fcgi_chat_socket: must be set when fcgi_socket is "
		    "not a unix socket path (default)");
	n = strlen(c->fcgi_socket);
	if (n > 5 && strcmp(c->fcgi_socket + n - 5, ".sock") == 0)
		n -= 5;
	if ((s = malloc(n + sizeof("-chat.sock"))) == NULL)
		return cfg_err(ld, "config: out of memory");
	memcpy(s, c->fcgi_socket, n);
	memcpy(s + n, "-chat.sock", sizeof("-chat.sock"));
	free(c->fcgi_chat_socket);
	c->fcgi_chat_socket = s;
	return BW_OK;
}

/* Checks what single values cannot: required keys and string formats. */
static enum bw_err
cfg_validate(struct cfg_load *ld)
{
	const struct cfg_key *k;
	const char	     *s, *why;
	char		     *base;
	size_t		      i;

	for (i = 0; i < CFG_NKEYS; i++) {
		k = &cfg_keys[i];
		if (k->type != CT_STRING)
			continue;
		base = (char *)ld->cfg + k->off;
		memcpy(&s, base, sizeof(s));
		if (s == NULL)
			s = "";
		if (k->required && *s == '\0')
			return cfg_err(ld,
			    "%s: required, must not be empty "
			    "(%s)",
			    k->name, ld->src[i]);
		if (k->check != NULL && (why = k->check(s)) != NULL)
			return cfg_err(ld, "%s: %s (%s)", k->name, why,
			    ld->src[i]);
	}
	/* scrypt's cost parameter (lib/people/password.c). */
	if ((ld->cfg->password_scrypt_n & (ld->cfg->password_scrypt_n - 1)) !=
	    0)
		return cfg_err(ld, "password_scrypt_n: must be a power of two");
	return cfg_chat_socket(ld);
}

/*
 * Loads cfg (see config.h). Returns BW_OK; BW_ECONFIG or BW_ENOMEM with a
 * message in err, cfg then freed.
 */
enum bw_err
config_load(struct config *cfg, const char *path, char *err, size_t errlen)
{
	struct cfg_load *ld;
	enum bw_err	 er = BW_OK;
	size_t		 i;

	memset(cfg, 0, sizeof(*cfg));
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if ((ld = calloc(1, sizeof(*ld))) == NULL) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "config: out of memory");
		return BW_ENOMEM;
	}
	ld->cfg = cfg;
	ld->err = err;
	ld->errlen = errlen;
	for (i = 0; er == BW_OK && i < CFG_NKEYS; i++)
		er = cfg_set(ld, &cfg_keys[i], cfg_keys[i].def, "default");
	if (er == BW_OK && path != NULL && *path != '\0')
		er = cfg_file(ld, path);
	if (er == BW_OK)
		er = cfg_env(ld);
	if (er == BW_OK)
		er = cfg_env_removed(ld);
	if (er == BW_OK)
		er = cfg_validate(ld);
	free(ld);
	if (er != BW_OK)
		config_free(cfg);
	return er;
}

/* Frees the strings of cfg (secrets wiped first); cfg is zeroed. */
void
config_free(struct config *cfg)
{
	char  *base, *s;
	size_t i;

	if (cfg == NULL)
		return;
	for (i = 0; i < CFG_NKEYS; i++) {
		if (cfg_keys[i].type != CT_STRING)
			continue;
		base = (char *)cfg + cfg_keys[i].off;
		memcpy(&s, base, sizeof(s));
		if (s != NULL && cfg_keys[i].secret)
			OPENSSL_cleanse(s, strlen(s));
		free(s);
	}
	memset(cfg, 0, sizeof(*cfg));
}

/* Appends s[0..n) to b with control characters as '?'. */
static enum bw_err
cfg_dump_text(struct buf *b, const char *s, size_t n)
{
	enum bw_err er = BW_OK;
	size_t	    j;

	for (j = 0; er == BW_OK && j < n; j++)
		er = buf_addc(b,
		    (unsigned char)s[j] < 0x20 || s[j] == 0x7f ? '?' : s[j]);
	return er;
}

/*
 * Appends a connection string with its password as ***: the password of a
 * URL's userinfo ("postgresql://app:***@db/x", "redis://:***@r:6379/0"),
 * and the value of every "password=" (URL query or libpq conninfo
 * "host=db password=***"). Everything else is shown, so an operator sees
 * which server a process talks to.
 */
STATIC enum bw_err
cfg_dump_url(struct buf *b, const char *s)
{
	const char *auth, *at, *colon, *p, *end;
	enum bw_err er = BW_OK;
	size_t	    n = strlen(s), k;

	auth = strstr(s, "://");
	p = s;
	if (auth != NULL) {
		auth += 3;
		end = auth + strcspn(auth, "/?#");
		at = memchr(auth, '@', (size_t)(end - auth));
		/* The last '@' of the authority ends the userinfo. */
		while (
		    at != NULL && memchr(at + 1, '@', (size_t)(end - at - 1)))
			at = memchr(at + 1, '@', (size_t)(end - at - 1));
		colon =
		    at != NULL ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
		if (colon != NULL) {
			er = cfg_dump_text(b, s, (size_t)(colon - s) + 1);
			if (er == BW_OK)
				er = buf_addstr(b, "***");
			p = at;
		}
	}
	/* Then "password=" values, up to '&', a blank or the end. */
	while (er == BW_OK && *p != '\0') {
		const char *q = strstr(p, "password=");

		if (q == NULL ||
		    (q > s && q[-1] != '&' && q[-1] != '?' && q[-1] != ' ' &&
			q[-1] != '\t')) {
			k = q == NULL ? (size_t)(s + n - p)
				      : (size_t)(q - p) + 9;
			er = cfg_dump_text(b, p, k);
			p += k;
			continue;
		}
		er = cfg_dump_text(b, p, (size_t)(q - p) + 9);
		p = q + 9;
		k = strcspn(p, "& \t");
		if (er == BW_OK && k > 0)
			er = buf_addstr(b, "***");
		p += k;
	}
	return er;
}

/*
 * Writes every key as "key = value" to fd in one write(2); non-empty
 * secrets print as ***, connection strings with the password as ***,
 * control characters as '?'.
 */
void
config_dump(const struct config *cfg, int fd)
{
	struct buf  b;
	const char *base, *s;
	size_t	    i, off;
	enum bw_err er = BW_OK;
	ssize_t	    w;
	int	    iv;

	buf_init(&b, BW_MAX_CONFIG_FILE);
	for (i = 0; er == BW_OK && i < CFG_NKEYS; i++) {
		base = (const char *)cfg + cfg_keys[i].off;
		er = buf_printf(&b, "%s = ", cfg_keys[i].name);
		if (er != BW_OK)
			break;
		switch (cfg_keys[i].type) {
		case CT_STRING:
			memcpy(&s, base, sizeof(s));
			if (s == NULL)
				s = "";
			if (cfg_keys[i].url)
				er = cfg_dump_url(&b, s);
			else
				er = cfg_dump_text(&b,
				    cfg_keys[i].secret && *s != '\0' ? "***"
								     : s,
				    cfg_keys[i].secret && *s != '\0'
					? 3
					: strlen(s));
			break;
		case CT_OCTAL:
			memcpy(&iv, base, sizeof(iv));
			er = buf_printf(&b, "%04o", (unsigned)iv);
			break;
		case CT_INT:
			memcpy(&iv, base, sizeof(iv));
			er = buf_printf(&b, "%d", iv);
			break;
		case CT_BOOL:
			memcpy(&iv, base, sizeof(iv));
			er = buf_addstr(&b, iv ? "true" : "false");
			break;
		}
		if (er == BW_OK)
			er = buf_addc(&b, '\n');
	}
	for (off = 0; er == BW_OK && off < b.len; off += (size_t)w) {
		w = write(fd, b.p + off, b.len - off);
		if (w < 0 && errno == EINTR)
			w = 0;
		else if (w <= 0)
			break;
	}
	buf_free(&b);
}
