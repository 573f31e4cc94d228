/* SPDX-License-Identifier: MIT */
/*
 * The ustar writer and reader of export artifacts (see tar.h). Header
 * layout, POSIX.1-1988 (IEEE Std 1003.1-1988, "ustar Interchange Format"):
 *
 *   offset  size  field      written as
 *        0   100  name       the member name, NUL-padded
 *      100     8  mode       "0000644\0"
 *      108     8  uid        "0000000\0"
 *      116     8  gid        "0000000\0"
 *      124    12  size       11 octal digits and NUL
 *      136    12  mtime      "00000000000\0"
 *      148     8  chksum     6 octal digits, NUL, space
 *      156     1  typeflag   '0' (regular file)
 *      257     6  magic      "ustar\0"
 *      263     2  version    "00"
 *      329     8  devmajor   "0000000\0"
 *      337     8  devminor   "0000000\0"
 *
 * Everything else (linkname, uname, gname, prefix) stays zero. The
 * checksum is the sum of the header's bytes with the chksum field taken as
 * eight spaces.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "evidence/tar.h"

/* The unsigned sum of h with the chksum field counted as spaces. */
static unsigned
tar_sum(const unsigned char h[TAR_BLOCK])
{
	unsigned sum = 0;
	size_t	 i;

	for (i = 0; i < TAR_BLOCK; i++)
		sum += (i >= 148 && i < 156) ? ' ' : h[i];
	return sum;
}

enum bw_err
tar_header(const char *name, uint64_t size, unsigned char h[TAR_BLOCK])
{
	size_t nlen = strlen(name);

	if (nlen == 0 || nlen > TAR_NAME_MAX || size > TAR_SIZE_MAX)
		return BW_EINVAL;
	memset(h, 0, TAR_BLOCK);
	memcpy(h, name, nlen);
	memcpy(h + 100, "0000644", 7);
	memcpy(h + 108, "0000000", 7);
	memcpy(h + 116, "0000000", 7);
	snprintf((char *)h + 124, 12, "%011" PRIo64, size);
	memcpy(h + 136, "00000000000", 11);
	h[156] = '0';
	memcpy(h + 257, "ustar", 6);
	memcpy(h + 263, "00", 2);
	memcpy(h + 329, "0000000", 7);
	memcpy(h + 337, "0000000", 7);
	snprintf((char *)h + 148, 8, "%06o", tar_sum(h));
	h[155] = ' ';
	return BW_OK;
}

enum bw_err
tar_parse(const unsigned char h[TAR_BLOCK], char name[TAR_NAME_MAX + 1],
    uint64_t *size, bool *end)
{
	unsigned want = 0;
	uint64_t sz = 0;
	size_t	 i;

	for (i = 0; i < TAR_BLOCK && h[i] == 0; i++)
		;
	if (i == TAR_BLOCK) {
		*end = true;
		return BW_OK;
	}
	for (i = 148; i < 156 && h[i] >= '0' && h[i] <= '7'; i++)
		want = want * 8 + (unsigned)(h[i] - '0');
	if (i == 148 || tar_sum(h) != want)
		return BW_EINVAL;
	if (memcmp(h + 257, "ustar", 5) != 0 ||
	    (h[156] != '0' && h[156] != '\0'))
		return BW_EINVAL;
	for (i = 124; i < 135; i++) {
		if (h[i] < '0' || h[i] > '7')
			return BW_EINVAL;
		sz = sz * 8 + (uint64_t)(h[i] - '0');
	}
	if (h[TAR_NAME_MAX] != '\0' || h[0] == '\0')
		return BW_EINVAL;
	memcpy(name, h, TAR_NAME_MAX + 1);
	*size = sz;
	*end = false;
	return BW_OK;
}

uint64_t
tar_padded(uint64_t size)
{
	return (size + TAR_BLOCK - 1) / TAR_BLOCK * TAR_BLOCK;
}

enum bw_err
tar_write(int fd, const void *d, size_t n)
{
	const char *p = d;
	ssize_t	    w;

	while (n > 0) {
		w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return BW_EIO;
		p += w;
		n -= (size_t)w;
	}
	return BW_OK;
}

enum bw_err
tar_read(int fd, void *d, size_t n)
{
	char   *p = d;
	size_t	got = 0;
	ssize_t r;

	while (got < n) {
		r = read(fd, p + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return BW_EIO;
		if (r == 0)
			return got == 0 ? BW_ENOTFOUND : BW_EIO;
		got += (size_t)r;
	}
	return BW_OK;
}

enum bw_err
tar_write_header(int fd, const char *name, uint64_t size)
{
	unsigned char h[TAR_BLOCK];
	enum bw_err   er;

	er = tar_header(name, size, h);
	if (er != BW_OK)
		return er;
	return tar_write(fd, h, sizeof(h));
}

enum bw_err
tar_write_pad(int fd, uint64_t size)
{
	static const unsigned char zero[TAR_BLOCK];
	size_t			   r = (size_t)(size % TAR_BLOCK);

	return r == 0 ? BW_OK : tar_write(fd, zero, TAR_BLOCK - r);
}

enum bw_err
tar_write_end(int fd)
{
	static const unsigned char zero[2 * TAR_BLOCK];

	return tar_write(fd, zero, sizeof(zero));
}
