/* SPDX-License-Identifier: MIT */
/* Placeholder: these handlers are being written. */
#include "handlers.h"
#include "resp.h"

void
h_credits_account(struct req *r)
{
	resp_error(r, AE_INTERNAL, NULL, NULL);
}

void
h_credits_book(struct req *r)
{
	resp_error(r, AE_INTERNAL, NULL, NULL);
}

void
h_credits_reserve(struct req *r)
{
	resp_error(r, AE_INTERNAL, NULL, NULL);
}

void
h_credits_commit(struct req *r)
{
	resp_error(r, AE_INTERNAL, NULL, NULL);
}

void
h_credits_release(struct req *r)
{
	resp_error(r, AE_INTERNAL, NULL, NULL);
}
