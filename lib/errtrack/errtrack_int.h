/* SPDX-License-Identifier: MIT */
/* What the files of lib/errtrack/ share; not for callers. */
#ifndef BW_ERRTRACK_INT_H
#define BW_ERRTRACK_INT_H

#include <stddef.h>

#include "core/err.h"

/* The thresholds whose crossing adds one comment to the group's issue. */
#define ERRTRACK_THRESHOLDS   \
	{                     \
		10, 100, 1000 \
	}

/* errtrack_normalize(); pii_only: e-mail addresses and phone numbers
 * only, blanks kept (the mask of samples). */
size_t errtrack_nz(const char *msg, char *out, size_t outlen, int pii_only);
/* The redactor, then the PII mask, cut to max bytes; caller frees. NULL
 * when out of memory. */
char *errtrack_redact(const char *s, size_t max);
/* The kind named s, or -1. */
int errtrack_kind_parse(const char *s);

#ifdef BW_TESTING
size_t nz_email(const char *s, size_t n);
size_t nz_phone(const char *s, size_t n);
#endif

#endif
