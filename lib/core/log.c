/* SPDX-License-Identifier: MIT */
/*
 * Structured logging: each call renders one JSON object and hands it to the
 * kernel in a single write(2), so lines from many processes sharing stderr
 * do not interleave. Every string (msg, context, fields, nested leaves)
 * passes redact_append() and JSON escaping; keys that name credentials are
 * never logged with their value.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/limits.h"
#include "core/log.h"
#include "core/redact.h"

#define LOG_SERVICE_MAX 64
#define LOG_CTX_MAX	256 /* one context value */
#define LOG_KEY_MAX	64  /* one field name */
#define LOG_DEPTH_MAX	4   /* nesting rendered of a field */
#define LOG_TRUNC_VALUE "...[truncated]"
#define LOG_TRUNC_LINE	",\"truncated\":true}\n"

static char	      log_service[LOG_SERVICE_MAX] = "bulwark";
static enum log_level log_min = LL_INFO;
static int	      log_fd = 2;
static char	      log_ctx[LC__MAX][LOG_CTX_MAX];

static const char *const log_levels[LL__MAX] = {
	[LL_DEBUG] = "debug",
	[LL_INFO] = "info",
	[LL_WARN] = "warn",
	[LL_ERROR] = "error",
};

static const char *const log_ctxnames[LC__MAX] = {
	[LC_REQUEST_ID] = "request_id",
	[LC_CORRELATION_ID] = "correlation_id",
	[LC_ORG_ID] = "org_id",
	[LC_USER_ID] = "user_id",
	[LC_JOB_ID] = "job_id",
};

/* Keys whose values are credentials (compared after lowering, '-' = '_'). */
static const char *const log_secretkeys[] = {
	"authorization",
	"proxy_authorization",
	"cookie",
	"set_cookie",
	"password",
	"passwd",
	"secret",
	"api_key",
	"apikey",
	"token",
};

STATIC int log_key_secret(const char *);

/* Copies at most dstlen - 1 bytes of src, cutting at a UTF-8 boundary. */
static void
log_copy(char *dst, size_t dstlen, const char *src)
{
	size_t n = strlen(src);

	if (n >= dstlen) {
		n = dstlen - 1;
		while (n > 0 && ((unsigned char)src[n] & 0xc0) == 0x80)
			n--;
	}
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* Names the process and sets the lowest level written. */
void
log_init(const char *service, enum log_level min)
{
	if (service != NULL)
		log_copy(log_service, sizeof(log_service), service);
	if ((unsigned)min < LL__MAX)
		log_min = min;
}

/* Returns the level named s (debug|info|warn|error), or -1. */
int
log_level_parse(const char *s)
{
	int i;

	if (s == NULL)
		return -1;
	for (i = 0; i < LL__MAX; i++)
		if (strcmp(s, log_levels[i]) == 0)
			return i;
	return -1;
}

/* Copies value into context slot k (truncated to 255 bytes); NULL clears. */
void
log_ctx_set(enum log_ctxkey k, const char *value)
{
	if ((unsigned)k >= LC__MAX)
		return;
	if (value == NULL)
		log_ctx[k][0] = '\0';
	else
		log_copy(log_ctx[k], sizeof(log_ctx[k]), value);
}

const char *
log_ctx_get(enum log_ctxkey k)
{
	if ((unsigned)k >= LC__MAX)
		return "";
	return log_ctx[k];
}

void
log_ctx_clear(void)
{
	memset(log_ctx, 0, sizeof(log_ctx));
}

/* A negative fd restores stderr as well as NULL would. */
void
log_set_fd(int fd)
{
	log_fd = fd >= 0 ? fd : 2;
}

/*
 * Whether key names a credential: equal to an entry of log_secretkeys or
 * ending in "_" + entry ("x_api_key", "access_token", "webhook_secret"),
 * ignoring case and treating '-' as '_'. "input_tokens" is not one.
 */
STATIC int
log_key_secret(const char *key)
{
	char   k[LOG_KEY_MAX + 1];
	size_t i, n, l;

	n = strlen(key);
	if (n > LOG_KEY_MAX)
		n = LOG_KEY_MAX;
	for (i = 0; i < n; i++)
		k[i] =
		    key[i] == '-' ? '_' : (char)tolower((unsigned char)key[i]);
	k[n] = '\0';
	for (i = 0; i < sizeof(log_secretkeys) / sizeof(log_secretkeys[0]);
	     i++) {
		l = strlen(log_secretkeys[i]);
		if (n == l && strcmp(k, log_secretkeys[i]) == 0)
			return 1;
		if (n > l && k[n - l - 1] == '_' &&
		    strcmp(k + n - l, log_secretkeys[i]) == 0)
			return 1;
	}
	return 0;
}

/* Whether key is one the line itself writes (fields may not shadow it). */
static int
log_key_reserved(const char *key)
{
	static const char *const own[] = {
		"ts",
		"level",
		"msg",
		"service",
		"pid",
		"truncated",
	};
	size_t i;

	for (i = 0; i < sizeof(own) / sizeof(own[0]); i++)
		if (strcmp(key, own[i]) == 0)
			return 1;
	for (i = 0; i < LC__MAX; i++)
		if (strcmp(key, log_ctxnames[i]) == 0)
			return 1;
	return 0;
}

/*
 * Appends s[0..n) to out as a JSON string after redaction, cut at
 * BW_MAX_LOG_VALUE bytes with a marker. Returns BW_OK or buf's error.
 */
static enum bw_err
log_addvalue(struct buf *out, const char *s, size_t n)
{
	struct buf  v;
	enum bw_err er;

	buf_init(&v, BW_MAX_LOG_VALUE - (sizeof(LOG_TRUNC_VALUE) - 1));
	er = redact_append(&v, s, n);
	if (er == BW_ETOOBIG) {
		v.max = BW_MAX_LOG_VALUE;
		er = buf_addstr(&v, LOG_TRUNC_VALUE);
	}
	if (er == BW_OK)
		er = buf_addjsonstr(out, buf_cstr(&v), v.len);
	buf_free(&v);
	return er;
}

/* Appends a field name: redacted, escaped, at most LOG_KEY_MAX bytes in. */
static enum bw_err
log_addkey(struct buf *out, const char *key, int rename)
{
	struct buf  k;
	enum bw_err er;
	size_t	    n = strlen(key);

	if (n > LOG_KEY_MAX)
		n = LOG_KEY_MAX;
	buf_init(&k, 4 * LOG_KEY_MAX + 64);
	er = rename ? buf_addc(&k, '_') : BW_OK;
	if (er == BW_OK)
		er = redact_append(&k, key, n);
	if (er == BW_OK)
		er = buf_addjsonstr(out, buf_cstr(&k), k.len);
	if (er == BW_OK)
		er = buf_addc(out, ':');
	buf_free(&k);
	return er;
}

/*
 * Appends the JSON rendering of o: strings redacted, numbers and booleans
 * as such (NaN and infinities as null), objects and arrays recursively up
 * to LOG_DEPTH_MAX, deeper ones as the string "[nested]". Members whose key
 * names a credential become "[REDACTED]".
 */
static enum bw_err
log_addjson(struct buf *out, struct json_object *o, int depth)
{
	enum bw_err er = BW_OK;
	double	    d;
	size_t	    i, n;
	int	    first = 1;

	switch (json_object_get_type(o)) {
	case json_type_null:
		return buf_addstr(out, "null");
	case json_type_boolean:
		return buf_addstr(out,
		    json_object_get_boolean(o) ? "true" : "false");
	case json_type_int:
		return buf_printf(out, "%lld",
		    (long long)json_object_get_int64(o));
	case json_type_double:
		d = json_object_get_double(o);
		if (!isfinite(d))
			return buf_addstr(out, "null");
		return buf_printf(out, "%.15g", d);
	case json_type_string:
		return log_addvalue(out, json_object_get_string(o),
		    (size_t)json_object_get_string_len(o));
	default:
		break;
	}
	if (depth >= LOG_DEPTH_MAX)
		return buf_addstr(out, "\"[nested]\"");
	if (json_object_is_type(o, json_type_array)) {
		er = buf_addc(out, '[');
		n = json_object_array_length(o);
		for (i = 0; er == BW_OK && i < n; i++) {
			if (i > 0)
				er = buf_addc(out, ',');
			if (er == BW_OK)
				er = log_addjson(out,
				    json_object_array_get_idx(o, i), depth + 1);
		}
		return er == BW_OK ? buf_addc(out, ']') : er;
	}
	er = buf_addc(out, '{');
	json_object_object_foreach(o, key, val)
	{
		if (er != BW_OK)
			break;
		if (!first)
			er = buf_addc(out, ',');
		first = 0;
		if (er == BW_OK)
			er = log_addkey(out, key, 0);
		if (er != BW_OK)
			break;
		if (log_key_secret(key))
			er = buf_addstr(out, "\"[REDACTED]\"");
		else
			er = log_addjson(out, val, depth + 1);
	}
	return er == BW_OK ? buf_addc(out, '}') : er;
}

/*
 * Appends ",key:value" to line if it fits, where value is a string s (NULL
 * renders null) or, when s is NULL and o is not, a JSON value. Returns
 * BW_OK, BW_ETOOBIG when the field did not fit (line unchanged), or
 * BW_ENOMEM.
 */
static enum bw_err
log_field(struct buf *line, const char *key, const char *s,
    struct json_object *o)
{
	struct buf  f;
	enum bw_err er;

	buf_init(&f, line->max);
	er = buf_addc(&f, ',');
	if (er == BW_OK)
		er = log_addkey(&f, key, log_key_reserved(key));
	if (er != BW_OK)
		goto out;
	if (log_key_secret(key))
		er = buf_addstr(&f, "\"[REDACTED]\"");
	else if (s != NULL)
		er = log_addvalue(&f, s, strlen(s));
	else if (o != NULL)
		er = log_addjson(&f, o, 0);
	else
		er = buf_addstr(&f, "null");
	if (er == BW_OK)
		er = buf_add(line, f.p, f.len);
out:
	buf_free(&f);
	return er;
}

/* Writes all of p[0..n) with as few write(2) calls as the kernel allows. */
static void
log_write(const char *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		w = write(log_fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

/* Appends the RFC 3339 UTC time with milliseconds, quoted. */
static enum bw_err
log_addts(struct buf *b)
{
	struct timespec ts;
	struct tm	tm;
	char		t[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	if (strftime(t, sizeof(t), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
		return BW_EINVAL;
	return buf_printf(b, "\"%s.%03ldZ\"", t, ts.tv_nsec / 1000000);
}

/*
 * Starts a line: {"ts","level","msg","service","pid", context keys. The
 * line's max is BW_MAX_LOG_LINE less room for the truncation tail.
 */
static enum bw_err
log_begin(struct buf *line, enum log_level lvl, const char *msg)
{
	enum bw_err er;
	int	    i;

	buf_init(line, BW_MAX_LOG_LINE - (sizeof(LOG_TRUNC_LINE) - 1));
	er = buf_addstr(line, "{\"ts\":");
	if (er == BW_OK)
		er = log_addts(line);
	if (er == BW_OK)
		er = buf_printf(line,
		    ",\"level\":\"%s\",\"msg\":", log_levels[lvl]);
	if (er == BW_OK)
		er = log_addvalue(line, msg != NULL ? msg : "",
		    msg != NULL ? strlen(msg) : 0);
	if (er == BW_OK)
		er = buf_addstr(line, ",\"service\":");
	if (er == BW_OK)
		er = log_addvalue(line, log_service, strlen(log_service));
	if (er == BW_OK)
		er = buf_printf(line, ",\"pid\":%ld", (long)getpid());
	for (i = 0; er == BW_OK && i < LC__MAX; i++) {
		if (log_ctx[i][0] == '\0')
			continue;
		er = buf_printf(line, ",\"%s\":", log_ctxnames[i]);
		if (er == BW_OK)
			er = log_addvalue(line, log_ctx[i], strlen(log_ctx[i]));
	}
	return er;
}

/*
 * Closes the line (with "truncated":true when a field was dropped) and
 * writes it. After an error (no memory) writes a fixed line instead.
 */
static void
log_end(struct buf *line, enum bw_err er, int truncated)
{
	static const char oom[] =
	    "{\"level\":\"error\",\"msg\":\"log: line not rendered\"}\n";

	if (er == BW_OK) {
		line->max = BW_MAX_LOG_LINE;
		er = buf_addstr(line, truncated ? LOG_TRUNC_LINE : "}\n");
	}
	if (er == BW_OK)
		log_write(line->p, line->len);
	else
		log_write(oom, sizeof(oom) - 1);
	buf_free(line);
}

/* Maps a field error: ETOOBIG drops the field and marks the line. */
static enum bw_err
log_fielderr(enum bw_err er, int *truncated)
{
	if (er == BW_ETOOBIG) {
		*truncated = 1;
		return BW_OK;
	}
	return er;
}

/* One line with string fields given as key, value, ..., NULL. */
void
log_kv(enum log_level lvl, const char *msg, ...)
{
	struct buf  line;
	va_list	    ap;
	const char *k, *v;
	enum bw_err er;
	int	    truncated = 0, saved = errno;

	if ((unsigned)lvl >= LL__MAX || lvl < log_min)
		return;
	er = log_begin(&line, lvl, msg);
	va_start(ap, msg);
	while (er == BW_OK && !truncated &&
	    (k = va_arg(ap, const char *)) != NULL) {
		v = va_arg(ap, const char *);
		er = log_fielderr(log_field(&line, k, v, NULL), &truncated);
	}
	va_end(ap);
	log_end(&line, er, truncated);
	errno = saved;
}

/* One line with the members of obj as fields; obj is consumed. */
void
log_json(enum log_level lvl, const char *msg, struct json_object *obj)
{
	struct buf  line;
	enum bw_err er;
	int	    truncated = 0, saved = errno;

	if ((unsigned)lvl >= LL__MAX || lvl < log_min)
		goto out;
	er = log_begin(&line, lvl, msg);
	if (er == BW_OK && obj != NULL &&
	    json_object_is_type(obj, json_type_object)) {
		json_object_object_foreach(obj, key, val)
		{
			if (er != BW_OK || truncated)
				break;
			if (val == NULL)
				er = log_field(&line, key, NULL, NULL);
			else if (json_object_is_type(val, json_type_string))
				er = log_field(&line, key,
				    json_object_get_string(val), NULL);
			else
				er = log_field(&line, key, NULL, val);
			er = log_fielderr(er, &truncated);
		}
	} else if (er == BW_OK && obj != NULL)
		er = log_fielderr(log_field(&line, "value", NULL, obj),
		    &truncated);
	log_end(&line, er, truncated);
out:
	json_object_put(obj);
	errno = saved;
}
