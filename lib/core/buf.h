/* SPDX-License-Identifier: MIT */
/*
 * Bounded growable buffer (like curl's dynbuf): every append checks the
 * maximum given at buf_init(), so no caller ever sizes memory twice.
 */
#ifndef BW_BUF_H
#define BW_BUF_H

#include <stdarg.h>
#include <stddef.h>

#include "core/err.h"

struct buf {
	char  *p; /* owned; always NUL-terminated when non-NULL */
	size_t len;
	size_t cap;
	size_t max; /* len may never exceed this */
};

void	    buf_init(struct buf *, size_t max);
void	    buf_free(struct buf *);  /* buf_init() state again */
void	    buf_reset(struct buf *); /* len = 0, keeps memory */
enum bw_err buf_add(struct buf *, const void *, size_t);
enum bw_err buf_addstr(struct buf *, const char *);
enum bw_err buf_addc(struct buf *, char);
enum bw_err buf_printf(struct buf *, const char *, ...)
    __attribute__((format(printf, 2, 3)));
enum bw_err buf_vprintf(struct buf *, const char *, va_list)
    __attribute__((format(printf, 2, 0)));
/* JSON string literal with quotes; escapes controls, quotes, backslash. */
enum bw_err buf_addjsonstr(struct buf *, const char *, size_t);
/* Contents as a C string ("" when empty); owned by the buffer. */
const char *buf_cstr(const struct buf *);
/* Hands the memory to the caller (free()); the buffer is empty after. */
char *buf_take(struct buf *);

#endif
