/* SPDX-License-Identifier: MIT */
/* bulwarkctl chat commands: placeholder until the chat issue lands. */
#include <stdio.h>

#include "ctl.h"

int
ctl_budget_set(struct ctl *c, int argc, char **argv)
{
	fprintf(stderr, "bulwarkctl: budget set: not built yet\n");
	return 1;
}

int
ctl_price_set(struct ctl *c, int argc, char **argv)
{
	fprintf(stderr, "bulwarkctl: price set: not built yet\n");
	return 1;
}

int
ctl_prompt_set(struct ctl *c, int argc, char **argv)
{
	fprintf(stderr, "bulwarkctl: prompt set: not built yet\n");
	return 1;
}
