/* SPDX-License-Identifier: MIT */
/*
 * GET /api/v1/whoami: the org, role and key prefix of the caller's key, or
 * for a cookie session (via "session") its user id.
 */
#include "handlers.h"
#include "resp.h"

void
h_whoami(struct req *r)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "org_id",
	    json_object_new_string(r->who.org_id));
	json_object_object_add(o, "role",
	    json_object_new_string(auth_role_name(r->who.role)));
	json_object_object_add(o, "key_prefix",
	    json_object_new_string(r->who.key_prefix));
	json_object_object_add(o, "via",
	    json_object_new_string(
		r->who.via == AUTH_VIA_SESSION ? "session" : "key"));
	if (r->who.via == AUTH_VIA_SESSION)
		json_object_object_add(o, "user_id",
		    json_object_new_string(r->who.user_id));
	resp_json(r, 200, o);
}
