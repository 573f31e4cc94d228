/* SPDX-License-Identifier: MIT */
/* Response rendering and the error contract. */
#include <string.h>
#include <strings.h>

#include "core/db.h"
#include "resp.h"

const char *
resp_reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 201:
		return "Created";
	case 202:
		return "Accepted";
	case 204:
		return "No Content";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 402:
		return "Payment Required";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 409:
		return "Conflict";
	case 410:
		return "Gone";
	case 413:
		return "Payload Too Large";
	case 415:
		return "Unsupported Media Type";
	case 422:
		return "Unprocessable Content";
	case 429:
		return "Too Many Requests";
	case 500:
		return "Internal Server Error";
	case 502:
		return "Bad Gateway";
	case 503:
		return "Service Unavailable";
	case 504:
		return "Gateway Timeout";
	default:
		return "Unknown";
	}
}

/* 1 if s holds no CR, LF or other control character but tab. */
static int
hdr_clean(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 && *s != '\t')
			return 0;
	return 1;
}

void
resp_header(struct req *r, const char *name, const char *value)
{
	if (!hdr_clean(name) || !hdr_clean(value))
		return;
	(void)buf_printf(&r->hdrs, "%s: %s\r\n", name, value);
}

void
resp_raw(struct req *r, int status, const char *ctype, const char *body,
    size_t n)
{
	r->status = status;
	r->ctype = ctype;
	buf_reset(&r->out);
	if (buf_add(&r->out, body, n) != BW_OK) {
		buf_reset(&r->out);
		resp_error(r, AE_INTERNAL, NULL, NULL);
	}
}

void
resp_json(struct req *r, int status, struct json_object *obj)
{
	const char *s;
	size_t	    n;

	if (obj == NULL) {
		resp_error(r, AE_INTERNAL, NULL, NULL);
		return;
	}
	s = json_object_to_json_string_length(obj,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);
	resp_raw(r, status, "application/json", s, n);
	json_object_put(obj);
}

void
resp_error(struct req *r, enum apierr_code code, const char *message,
    struct json_object *fields)
{
	resp_error_extra(r, code, message, fields, NULL);
}

/*
 * Renders the error body once, extra members included. When the extras
 * cannot be added the plain error body is still sent (it is the contract;
 * the extras are a courtesy).
 */
void
resp_error_extra(struct req *r, enum apierr_code code, const char *message,
    struct json_object *fields, struct json_object *extra)
{
	const struct apierr_def *d = apierr_def(code);
	struct json_object	*body;
	const char		*s;
	size_t			 n;

	if (d->status >= 500)
		message = NULL;
	body = apierr_body(code, message, r->request_id, fields, NULL);
	if (body != NULL && apierr_extend(body, extra) != BW_OK) {
		json_object_put(body);
		body = apierr_body(code, message, r->request_id, NULL, NULL);
	}
	r->status = d->status;
	r->ctype = "application/json";
	r->err_code = d->code;
	buf_reset(&r->out);
	if (body == NULL) {
		(void)buf_addstr(&r->out,
		    "{\"error\":{\"error_code\":"
		    "\"INTERNAL\",\"retryable\":true}}");
		return;
	}
	s = json_object_to_json_string_length(body,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);
	if (buf_add(&r->out, s, n) != BW_OK)
		buf_reset(&r->out);
	json_object_put(body);
}

void
resp_invalid(struct req *r, const char *message, const char *field,
    const char *problem)
{
	resp_field_error(r, AE_VALIDATION_FAILED, message, field, problem);
}

int
resp_action_body(struct req *r)
{
	if (r->body_problem == NULL)
		return 0;
	resp_invalid(r,
	    "This action takes no body: send none, or an empty JSON "
	    "object.",
	    r->body_field, r->body_problem);
	return 1;
}

void
resp_field_error(struct req *r, enum apierr_code code, const char *message,
    const char *field, const char *problem)
{
	struct json_object *fields, *f;

	fields = json_object_new_array();
	f = json_object_new_object();
	if (fields == NULL || f == NULL ||
	    json_object_object_add(f, "field", json_object_new_string(field)) !=
		0 ||
	    json_object_object_add(f, "problem",
		json_object_new_string(problem)) != 0 ||
	    json_object_array_add(fields, f) != 0) {
		json_object_put(f);
		json_object_put(fields);
		resp_error(r, AE_INTERNAL, NULL, NULL);
		return;
	}
	resp_error(r, code, message, fields);
}

/* 1 if the response already has a header name (case-insensitive). */
static int
resp_has_header(const struct req *r, const char *name)
{
	const char *p = buf_cstr(&r->hdrs);
	size_t	    n = strlen(name);

	while (*p != '\0') {
		if (strncasecmp(p, name, n) == 0 && p[n] == ':')
			return 1;
		p = strstr(p, "\r\n");
		if (p == NULL)
			break;
		p += 2;
	}
	return 0;
}

void
resp_fail(struct req *r, enum bw_err er)
{
	enum apierr_code code = apierr_from_err(er);

	if (apierr_def(code)->strategy == AS_AFTER_RETRY_AFTER &&
	    !resp_has_header(r, "Retry-After"))
		resp_header(r, "Retry-After", "1");
	resp_error(r, code, NULL, NULL);
}

void
resp_send(struct req *r)
{
	struct buf h;

	if (r->sent)
		return;
	r->sent = 1;
	buf_init(&h, BW_MAX_HEADER * 8);
	(void)buf_printf(&h,
	    "Status: %d %s\r\nContent-Type: %s\r\n"
	    "Content-Length: %zu\r\nX-Request-ID: %s\r\n"
	    "X-Correlation-ID: %s\r\n",
	    r->status, resp_reason(r->status), r->ctype, r->out.len,
	    r->request_id, r->correlation_id);
	/* no-store unless the handler chose a policy: one header, never two
	 * that contradict each other. */
	if (!resp_has_header(r, "Cache-Control"))
		(void)buf_addstr(&h, "Cache-Control: no-store\r\n");
	(void)buf_add(&h, buf_cstr(&r->hdrs), r->hdrs.len);
	(void)buf_add(&h, "\r\n", 2);
	FCGX_PutStr(buf_cstr(&h), (int)h.len, r->fr->out);
	if (strcmp(r->method, "HEAD") != 0 && r->out.len > 0)
		FCGX_PutStr(buf_cstr(&r->out), (int)r->out.len, r->fr->out);
	buf_free(&h);
}

/* The value of name in the query string q into out; 1 present, 0 not,
 * -1 too long. */
static int
resp_query_arg(const char *q, const char *name, char *out, size_t outlen)
{
	size_t n = strlen(name), len;

	while (q != NULL && *q != '\0') {
		len = strcspn(q, "&");
		if (len > n && strncmp(q, name, n) == 0 && q[n] == '=') {
			if (len - n - 1 >= outlen)
				return -1;
			memcpy(out, q + n + 1, len - n - 1);
			out[len - n - 1] = '\0';
			return 1;
		}
		q += len;
		if (*q == '&')
			q++;
	}
	return 0;
}

int
resp_page_args(struct req *r, int max, int *limit, char *cursor, size_t curlen)
{
	char	lim[16];
	int64_t v = 20;
	int	hl;

	cursor[0] = '\0';
	hl = resp_query_arg(r->query, "limit", lim, sizeof(lim));
	if (hl != 0 &&
	    (hl < 0 || db_i64(lim, &v) != BW_OK || v < 1 || v > max)) {
		resp_invalid(r, "limit must be 1 to 100.", "limit",
		    "too_large");
		return -1;
	}
	if (resp_query_arg(r->query, "cursor", cursor, curlen) < 0) {
		resp_invalid(r, NULL, "cursor", "invalid_format");
		return -1;
	}
	*limit = (int)v;
	return 0;
}
