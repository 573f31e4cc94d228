/* SPDX-License-Identifier: MIT */
/*
 * Responses: JSON bodies, extra headers, and resp_error(), the one place
 * an error becomes an HTTP status and a body (httpd's server_abort_http()),
 * with resp_fail() for the default answer to a library error.
 * Nothing is written until resp_send() at the end of the request.
 */
#ifndef BW_RESP_H
#define BW_RESP_H

#include <stddef.h>

#include <json-c/json.h>

#include "core/apierr.h"
#include "req.h"

/* Adds a header; a name or value holding CR, LF or NUL is dropped. */
void resp_header(struct req *, const char *name, const char *value);
/* Sets status and a JSON body from obj (consumed). */
void resp_json(struct req *, int status, struct json_object *obj);
/* Sets status and a raw body. */
void resp_raw(struct req *, int status, const char *ctype, const char *body,
    size_t n);
/*
 * The error contract: status and body from the apierr table. message NULL
 * takes the default; 5xx never carry internal text. fields (consumed, may
 * be NULL) is the validation list.
 */
void resp_error(struct req *, enum apierr_code, const char *message,
    struct json_object *fields);
/*
 * As resp_error(), with the members of extra (an object, not consumed, may
 * be NULL) added beside "error" in the one rendering of the body: the chat's
 * fallback "reply" on 402 and 502.
 */
void resp_error_extra(struct req *, enum apierr_code, const char *message,
    struct json_object *fields, struct json_object *extra);
/*
 * 400 VALIDATION_FAILED whose "fields" names one problem:
 * [{"field":field,"problem":problem}]. message NULL takes the default.
 */
void resp_invalid(struct req *, const char *message, const char *field,
    const char *problem);
/*
 * ROUTE_ACTION handlers, once the resource was found: 400
 * VALIDATION_FAILED naming r->body_field when r->body_problem is set (and
 * returns 1: answered), else 0.
 */
int resp_action_body(struct req *);
/*
 * The page arguments of a list route, ?limit=N&cursor=ID: *limit (default
 * 20, 1..max) and cursor (curlen bytes; "" when absent), taken as is (ids
 * and numbers need no decoding). 0, or -1 after answering 400 (limit out
 * of range or not a number, cursor too long).
 */
int
resp_page_args(struct req *, int max, int *limit, char *cursor, size_t curlen);
/* As resp_invalid() with another code (404 NOT_FOUND naming a field). */
void resp_field_error(struct req *, enum apierr_code, const char *message,
    const char *field, const char *problem);
/*
 * Answers a library error with its default contract code
 * (apierr_from_err(): BW_ENOTFOUND 404, BW_ESTATE 409, the database 503,
 * ...). A code that asks the client to wait (CAPACITY_EXHAUSTED) gets
 * "Retry-After: 1" unless the handler set one. Handlers that mean another
 * code for a case answer that case themselves first.
 */
void resp_fail(struct req *, enum bw_err);
/* Writes status line, headers and body to the FastCGI stream. */
void resp_send(struct req *);
/* "OK", "Not Found", ... */
const char *resp_reason(int status);

#endif
