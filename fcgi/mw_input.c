/* SPDX-License-Identifier: MIT */
/*
 * Body-schema middleware: one parse and one validation of a JSON body per
 * request, answered in the contract's shapes; see mw_input.h.
 */
#include "core/jv.h"
#include "core/limits.h"
#include "mw_input.h"
#include "resp.h"
#include "route.h"

/*
 * ROUTE_ACTION: no body, blanks, or an empty JSON object pass; anything
 * else is noted in r->body_problem for the handler. Always 1.
 */
static int
mw_input_action(struct req *r, const char *body)
{
	struct json_object_iterator it;
	struct json_object	   *obj = NULL;
	size_t			    i;

	r->body_problem = NULL;
	for (i = 0; i < r->body.len; i++)
		if (body[i] != ' ' && body[i] != '\t' && body[i] != '\r' &&
		    body[i] != '\n')
			break;
	if (i == r->body.len)
		return 1;
	snprintf(r->body_field, sizeof(r->body_field), "body");
	if (jv_parse(body, r->body.len, BW_MAX_JSON_DEPTH, &obj) != BW_OK ||
	    !json_object_is_type(obj, json_type_object)) {
		r->body_problem = "must_be_empty_object";
	} else if (json_object_object_length(obj) > 0) {
		it = json_object_iter_begin(obj);
		snprintf(r->body_field, sizeof(r->body_field), "%s",
		    json_object_iter_peek_name(&it));
		r->body_problem = "not_allowed";
	}
	json_object_put(obj);
	return 1;
}

/* See mw_input.h. */
int
mw_input(struct req *r)
{
	struct json_object *obj = NULL, *problems = NULL;
	const char	   *body = r->body.p != NULL ? r->body.p : "";
	enum bw_err	    er;

	if (r->route != NULL && (r->route->flags & ROUTE_ACTION))
		return mw_input_action(r, body);
	if (r->route == NULL || r->route->fields == NULL)
		return 1;
	if (jv_parse(body, r->body.len, BW_MAX_JSON_DEPTH, &obj) != BW_OK) {
		resp_error(r, AE_INVALID_JSON, NULL, NULL);
		return 0;
	}
	er = jv_validate(obj, r->route->fields, r->route->nfields, &problems);
	if (er == BW_EINVAL) {
		json_object_put(obj);
		resp_error(r, AE_VALIDATION_FAILED, NULL, problems);
		return 0;
	}
	if (er != BW_OK) {
		json_object_put(obj);
		resp_fail(r, er);
		return 0;
	}
	r->in = obj;
	return 1;
}
