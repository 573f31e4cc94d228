/* SPDX-License-Identifier: MIT */
/* Placeholder: the Idempotency-Key middleware is being written. */
#include "mw_idem.h"

int
mw_idem_begin(struct req *r, const uint8_t body_sha256[32])
{
	return 1;
}

void
mw_idem_end(struct req *r)
{
}
