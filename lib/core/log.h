/* SPDX-License-Identifier: MIT */
/*
 * Structured logging: one JSON object per line on stderr with ts, level,
 * msg, service, pid, and the current context (request_id, correlation_id,
 * org_id, ...). Every string value passes the redactor.
 */
#ifndef BW_LOG_H
#define BW_LOG_H

#include <json-c/json.h>

enum log_level {
	LL_DEBUG,
	LL_INFO,
	LL_WARN,
	LL_ERROR,
	LL__MAX
};

/* Context keys that ride along on every line until cleared. */
enum log_ctxkey {
	LC_REQUEST_ID,
	LC_CORRELATION_ID,
	LC_ORG_ID,
	LC_USER_ID,
	LC_JOB_ID,
	LC__MAX
};

/* Names the process ("bulwark-fcgi") and the minimum level. */
void log_init(const char *service, enum log_level min);
/* Parses "debug|info|warn|error"; returns -1 when unknown. */
int log_level_parse(const char *);
/* Sets (copies) or clears (NULL) one context value. */
void log_ctx_set(enum log_ctxkey, const char *value);
void log_ctx_clear(void);
/* The current value ("" when unset); valid until the next log_ctx_set(). */
const char *log_ctx_get(enum log_ctxkey);
/* One line with string fields: key, value, ..., NULL. Values may be NULL. */
void log_kv(enum log_level, const char *msg, ...) __attribute__((sentinel));
/* One line with the fields of obj (consumed; may be NULL). */
void log_json(enum log_level, const char *msg, struct json_object *obj);
/* Redirects output (tests); NULL restores stderr. */
void log_set_fd(int fd);

#endif
