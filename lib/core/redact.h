/* SPDX-License-Identifier: MIT */
/*
 * PII and secret redactor: every string that reaches a log line passes
 * here. Replaces e-mail addresses (internationalised ones too), phone
 * numbers, bearer tokens and Basic credentials, Bulwark API keys (bwk_...),
 * webhook secrets (whsec_...), provider secret keys (sk_..., rk_..., 32 hex
 * digits), JWTs and long opaque mixed-case secrets (sha1 and sha256 hex
 * digests stay readable) with a [REDACTED:kind] marker; the rules are in
 * redact.c. Also escapes CR/LF so a value can never forge a log line.
 */
#ifndef BW_REDACT_H
#define BW_REDACT_H

#include <stddef.h>

#include "core/buf.h"

/* Appends the redacted form of s[0..n) to out. */
enum bw_err redact_append(struct buf *out, const char *s, size_t n);
/* Redacted copy of a C string; caller frees; NULL when out of memory. */
char *redact_str(const char *s);

#endif
