/* SPDX-License-Identifier: MIT */
/*
 * PostgreSQL array literals for statement parameters: {"a",NULL,"b\"c"},
 * each element quoted (so any text is safe) or NULL. The literal casts to
 * text[], int[], uuid[]... in the statement ($1::int[]).
 */
#ifndef BW_PGARRAY_H
#define BW_PGARRAY_H

#include <stddef.h>

#include "core/buf.h"
#include "core/err.h"

/* Appends the literal of v[0..n) to b; a NULL element is written NULL.
 * Returns a buffer error (b's maximum reached). */
enum bw_err pgarray_text(struct buf *b, const char *const *v, size_t n);

#endif
