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

/* See mw_input.h. */
int
mw_input(struct req *r)
{
	struct json_object *obj = NULL, *problems = NULL;
	const char	   *body = r->body.p != NULL ? r->body.p : "";
	enum bw_err	    er;

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
