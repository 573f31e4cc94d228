/* SPDX-License-Identifier: MIT */
/* Placeholder: these handlers are being written. */
#include "handlers.h"
#include "resp.h"

void
h_public_verify(struct req *r)
{
	resp_error(r, AE_INTERNAL, NULL, NULL);
}

void
h_public_ledger_keys(struct req *r)
{
	resp_error(r, AE_INTERNAL, NULL, NULL);
}
