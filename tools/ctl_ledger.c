/* SPDX-License-Identifier: MIT */
/* bulwarkctl evidence-ledger commands: placeholder until that issue lands. */
#include <stdio.h>

#include "ctl.h"

int
ctl_ledger_verify(struct ctl *c, int argc, char **argv)
{
	fprintf(stderr, "bulwarkctl: ledger verify: not built yet\n");
	return 1;
}

int
ctl_verify_export(struct ctl *c, int argc, char **argv)
{
	fprintf(stderr, "bulwarkctl: verify-export: not built yet\n");
	return 1;
}
