/* SPDX-License-Identifier: MIT */
/*
 * Responses: JSON bodies, extra headers, and resp_error(), the one place
 * an error becomes an HTTP status and a body (httpd's server_abort_http()).
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
/* Writes status line, headers and body to the FastCGI stream. */
void resp_send(struct req *);
/* "OK", "Not Found", ... */
const char *resp_reason(int status);

#endif
