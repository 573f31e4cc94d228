/* SPDX-License-Identifier: MIT */
/* bulwarkctl money commands: placeholder until the money issue lands. */
#include <stdio.h>

#include "ctl.h"

int
ctl_webhook_secret_set(struct ctl *c, int argc, char **argv)
{
	fprintf(stderr, "bulwarkctl: webhook-secret set: not built yet\n");
	return 1;
}

int
ctl_ledger_check(struct ctl *c, int argc, char **argv)
{
	fprintf(stderr, "bulwarkctl: ledger check: not built yet\n");
	return 1;
}
