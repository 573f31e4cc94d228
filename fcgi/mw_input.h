/* SPDX-License-Identifier: MIT */
/*
 * Body-schema middleware: for a route whose row names a schema (.fields,
 * .nfields, lib/core/jv.h), parses the JSON body and validates it before
 * the handler runs (kcgi's khttp_parse() against its keys[]), so that
 * handlers see a validated object and never repeat parse, validate, reply.
 */
#ifndef BW_MW_INPUT_H
#define BW_MW_INPUT_H

#include "req.h"

/*
 * Parses r->body (at most BW_MAX_JSON_DEPTH deep, a top-level object) and
 * checks it against r->route's fields. Returns 1 to go on, with r->in the
 * validated object (owned by r, released by req_free()), or with r->in
 * NULL when the route has no schema; 0 when the error is already set:
 * 400 INVALID_JSON (not a JSON object), 400 VALIDATION_FAILED with the
 * "fields" list of every problem, 500 INTERNAL when out of memory.
 */
int mw_input(struct req *r);

#endif
