/* SPDX-License-Identifier: MIT */
/* Placeholder: these handlers are being written. */
#include "handlers.h"
#include "resp.h"

void
h_evidence_create(struct req *r)
{
	resp_error(r, AE_INTERNAL, NULL, NULL);
}
