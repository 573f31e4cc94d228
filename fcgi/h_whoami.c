/* SPDX-License-Identifier: MIT */
/* GET /api/v1/whoami: the org, role and key prefix of the caller's key. */
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
	resp_json(r, 200, o);
}
