/* SPDX-License-Identifier: MIT */
/* Placeholder: these handlers are being written. */
#include "handlers.h"
#include "resp.h"

void
h_exports_create(struct req *r)
{
	resp_error(r, AE_INTERNAL, NULL, NULL);
}

void
h_exports_get(struct req *r)
{
	resp_error(r, AE_INTERNAL, NULL, NULL);
}

void
h_exports_cancel(struct req *r)
{
	resp_error(r, AE_INTERNAL, NULL, NULL);
}

void
h_exports_download(struct req *r)
{
	resp_error(r, AE_INTERNAL, NULL, NULL);
}

void
h_exports_metrics(struct req *r)
{
	resp_error(r, AE_INTERNAL, NULL, NULL);
}
