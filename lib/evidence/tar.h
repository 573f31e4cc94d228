/* SPDX-License-Identifier: MIT */
/*
 * The small POSIX.1-1988 ustar writer and reader of export artifacts:
 * regular files only, names up to 99 bytes, mode 0644, uid/gid 0, empty
 * user and group names, mtime 0, so that the same members always give the
 * same bytes. The reader accepts exactly that subset (plus any mtime,
 * owner or names the writer leaves empty) and refuses everything else.
 */
#ifndef BW_TAR_H
#define BW_TAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define TAR_BLOCK    512
#define TAR_NAME_MAX 99		     /* bytes of a member name */
#define TAR_SIZE_MAX 077777777777ULL /* 11 octal digits */

/*
 * Fills h with the ustar header of a regular file name of size bytes
 * (POSIX.1-1988 "ustar\0" "00", mode 0644, uid/gid 0, mtime 0). BW_EINVAL
 * for an empty name, a name over TAR_NAME_MAX bytes or a size over
 * TAR_SIZE_MAX (h untouched).
 */
enum bw_err
tar_header(const char *name, uint64_t size, unsigned char h[TAR_BLOCK]);
/*
 * Parses one header block. BW_OK with *end set for an all-zero block (the
 * end of the archive), else with *end clear, name (NUL-terminated) and
 * *size. BW_EINVAL (nothing written) for a bad checksum, magic, type (only
 * regular files, '0' or NUL), size field or name.
 */
enum bw_err tar_parse(const unsigned char h[TAR_BLOCK],
    char name[TAR_NAME_MAX + 1], uint64_t *size, bool *end);
/* size rounded up to whole blocks: the bytes a member's data takes. */
uint64_t tar_padded(uint64_t size);

/* Writes all n bytes to fd, retrying EINTR; BW_EIO (errno kept). */
enum bw_err tar_write(int fd, const void *, size_t n);
/*
 * Reads exactly n bytes from fd, retrying EINTR: BW_OK, BW_ENOTFOUND at
 * end of file before the first byte, BW_EIO on an error or a short read.
 */
enum bw_err tar_read(int fd, void *, size_t n);
/* tar_header() of name and size, written to fd. BW_EINVAL, BW_EIO. */
enum bw_err tar_write_header(int fd, const char *name, uint64_t size);
/* The zero bytes after size bytes of data up to the next block. */
enum bw_err tar_write_pad(int fd, uint64_t size);
/* The two zero blocks that end an archive. */
enum bw_err tar_write_end(int fd);

#endif
