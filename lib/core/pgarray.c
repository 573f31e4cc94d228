/* SPDX-License-Identifier: MIT */
/* PostgreSQL array literals (see pgarray.h). */
#include "core/pgarray.h"

enum bw_err
pgarray_text(struct buf *b, const char *const *v, size_t n)
{
	enum bw_err er;
	const char *s;
	size_t	    i;

	er = buf_addc(b, '{');
	for (i = 0; er == BW_OK && i < n; i++) {
		if (i > 0)
			er = buf_addc(b, ',');
		if (er != BW_OK)
			break;
		if (v[i] == NULL) {
			er = buf_addstr(b, "NULL");
			continue;
		}
		er = buf_addc(b, '"');
		for (s = v[i]; er == BW_OK && *s != '\0'; s++) {
			if (*s == '"' || *s == '\\')
				er = buf_addc(b, '\\');
			if (er == BW_OK)
				er = buf_addc(b, *s);
		}
		if (er == BW_OK)
			er = buf_addc(b, '"');
	}
	if (er == BW_OK)
		er = buf_addc(b, '}');
	return er;
}
