/* SPDX-License-Identifier: MIT */
/* Placeholder: these handlers are being written. */
#include "handlers.h"
#include "resp.h"

void
h_chat(struct req *r)
{
	resp_error(r, AE_INTERNAL, NULL, NULL);
}

void
h_chat_session_get(struct req *r)
{
	resp_error(r, AE_INTERNAL, NULL, NULL);
}

void
h_chat_session_delete(struct req *r)
{
	resp_error(r, AE_INTERNAL, NULL, NULL);
}
