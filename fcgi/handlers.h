/* SPDX-License-Identifier: MIT */
/* Every handler of bulwark-fcgi: one h_<area>_<action> per route. */
#ifndef BW_HANDLERS_H
#define BW_HANDLERS_H

#include "req.h"

void	h_health(struct req *);
void	h_health_full(struct req *);
void	h_metrics(struct req *);
void	h_whoami(struct req *);

#endif
