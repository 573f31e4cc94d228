/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for lib/evidence/tar.c, the ustar writer and reader of export
 * artifacts: headers are byte for byte what Python's tarfile writes for the
 * same member (USTAR_FORMAT, mode 0644, uid/gid 0, empty names, mtime 0),
 * so artifacts stay deterministic; the reader takes back what the writer
 * writes and refuses every header it must not trust; the fd helpers pad,
 * end and report short reads as documented.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/sec.h"
#include "evidence/tar.h"

#define UUID_NAME "evidence/0b7c9f0e-3c1e-4c55-9a57-5f3e2f1d0a11"
#define NAME99                                                               \
	"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" \
	"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"

/* SHA-256 (hex) of h. */
static void
hash_hex(const unsigned char *h, size_t n, char hex[65])
{
	uint8_t d[32];

	assert_int_equal(sec_sha256(h, n, d), BW_OK);
	sec_hex(d, sizeof(d), hex);
}

/* Rewrites the checksum of h after a test changed another field. */
static void
fix_sum(unsigned char h[TAR_BLOCK])
{
	unsigned sum = 0;
	size_t	 i;

	memset(h + 148, ' ', 8);
	for (i = 0; i < TAR_BLOCK; i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06o", sum);
	h[155] = ' ';
}

/*
 * The golden hashes are of the headers Python 3's tarfile writes for
 * TarInfo(name) with size, mtime 0, mode 0o644, uid/gid 0, uname/gname ""
 * and REGTYPE, in USTAR_FORMAT (tobuf()), with one difference: devmajor
 * and devminor are "0000000\0" (Python leaves them NUL for regular files;
 * Bulwark's artifacts have always carried the zeros) and the checksum
 * recomputed. A change here changes every artifact's bytes.
 */
static void
test_tar_header_golden(void **state)
{
	static const struct {
		const char *name;
		uint64_t    size;
		const char *sum;
		const char *sha256;
	} t[] = {
		/* clang-format off */
		{ "manifest.json", 1234, "011705",
		    "7acabba0748b7f5e2a5ff8cb9ec6bc7ab9586e7a37522bc5065732dab21c3c29" },
		{ UUID_NAME, 0, "015611",
		    "4a5ed80cf48e3911071a93cfecbe23bb6e290013a4a905a42729d0dd93e6958b" },
		{ NAME99, TAR_SIZE_MAX, "036462",
		    "1467ecd6e6c8e085a13bc3d81a5848d1f7667bf3b69d64ba2e349d6562278c87" },
		/* clang-format on */
	};
	unsigned char h[TAR_BLOCK];
	char	      hex[65], name[TAR_NAME_MAX + 1];
	uint64_t      size;
	bool	      end = true;
	size_t	      i;

	(void)state;
	assert_int_equal(strlen(NAME99), TAR_NAME_MAX);
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		assert_int_equal(tar_header(t[i].name, t[i].size, h), BW_OK);
		assert_memory_equal(h + 148, t[i].sum, 6);
		assert_int_equal(h[154], '\0');
		assert_int_equal(h[155], ' ');
		hash_hex(h, sizeof(h), hex);
		assert_string_equal(hex, t[i].sha256);
		/* The reader takes back what the writer wrote. */
		assert_int_equal(tar_parse(h, name, &size, &end), BW_OK);
		assert_false(end);
		assert_string_equal(name, t[i].name);
		assert_true(size == t[i].size);
	}
}

static void
test_tar_header_refused(void **state)
{
	unsigned char h[TAR_BLOCK];

	(void)state;
	memset(h, 0xa5, sizeof(h));
	assert_int_equal(tar_header("", 1, h), BW_EINVAL);
	assert_int_equal(tar_header(NAME99 "x", 1, h), BW_EINVAL);
	assert_int_equal(tar_header("a", TAR_SIZE_MAX + 1, h), BW_EINVAL);
	/* Untouched on failure. */
	assert_int_equal(h[0], 0xa5);
	assert_int_equal(h[TAR_BLOCK - 1], 0xa5);
}

/* What a test does to a good header before tar_parse() must refuse it. */
enum mutation {
	M_NONE,
	M_FLIP,	    /* one byte changed, checksum left stale */
	M_SET,	    /* bytes set, checksum fixed */
	M_NOSUM,    /* checksum field without a digit */
	M_SUMSPACE, /* checksum field of spaces */
};

static void
test_tar_parse_refused(void **state)
{
	static const struct {
		const char   *what;
		enum mutation m;
		size_t	      off;
		const char   *bytes;
		size_t	      n;
	} t[] = {
		{ "stale checksum", M_FLIP, 10, NULL, 0 },
		{ "checksum of the data", M_FLIP, 400, NULL, 0 },
		{ "no checksum digits", M_NOSUM, 0, NULL, 0 },
		{ "checksum of spaces", M_SUMSPACE, 0, NULL, 0 },
		{ "magic", M_SET, 257, "ustaR", 5 },
		{ "no magic", M_SET, 257, "\0\0\0\0\0", 5 },
		{ "directory", M_SET, 156, "5", 1 },
		{ "hard link", M_SET, 156, "1", 1 },
		{ "symlink", M_SET, 156, "2", 1 },
		{ "GNU long name", M_SET, 156, "L", 1 },
		{ "pax header", M_SET, 156, "x", 1 },
		{ "pax global header", M_SET, 156, "g", 1 },
		{ "size digit 8", M_SET, 130, "8", 1 },
		{ "size blank", M_SET, 124, " ", 1 },
		{ "size base-256", M_SET, 124, "\x80", 1 },
		{ "size NUL early", M_SET, 134, "\0", 1 },
		{ "name fills 100", M_SET, 99, "x", 1 },
		{ "empty name", M_SET, 0, "\0", 1 },
	};
	unsigned char h[TAR_BLOCK];
	char	      name[TAR_NAME_MAX + 1];
	uint64_t      size = 7;
	bool	      end = false;
	size_t	      i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		assert_int_equal(tar_header("manifest.json", 1234, h), BW_OK);
		switch (t[i].m) {
		case M_FLIP:
			h[t[i].off] ^= 0x01;
			break;
		case M_SET:
			memcpy(h + t[i].off, t[i].bytes, t[i].n);
			fix_sum(h);
			break;
		case M_NOSUM:
			memcpy(h + 148, "\0\0\0\0\0\0\0\0", 8);
			break;
		case M_SUMSPACE:
			memset(h + 148, ' ', 8);
			break;
		default:
			break;
		}
		memset(name, 'q', sizeof(name));
		if (tar_parse(h, name, &size, &end) != BW_EINVAL)
			fail_msg("accepted a header with a bad %s", t[i].what);
		/* Nothing written on failure. */
		assert_int_equal(name[0], 'q');
		assert_true(size == 7);
		assert_false(end);
	}
}

static void
test_tar_parse_accepted(void **state)
{
	unsigned char h[TAR_BLOCK];
	char	      name[TAR_NAME_MAX + 1];
	uint64_t      size = 0;
	bool	      end = true;

	(void)state;
	/* A NUL type (pre-POSIX regular file), an mtime, an owner. */
	assert_int_equal(tar_header("a", 513, h), BW_OK);
	h[156] = '\0';
	memcpy(h + 136, "14723652000", 11);
	memcpy(h + 265, "root", 4);
	fix_sum(h);
	assert_int_equal(tar_parse(h, name, &size, &end), BW_OK);
	assert_false(end);
	assert_string_equal(name, "a");
	assert_true(size == 513);

	/* An all-zero block ends the archive. */
	memset(h, 0, sizeof(h));
	assert_int_equal(tar_parse(h, name, &size, &end), BW_OK);
	assert_true(end);
	/* One non-zero byte anywhere makes it a (bad) header instead. */
	h[511] = 1;
	end = false;
	assert_int_equal(tar_parse(h, name, &size, &end), BW_EINVAL);
	assert_false(end);
}

static void
test_tar_padded(void **state)
{
	static const uint64_t t[][2] = { { 0, 0 }, { 1, 512 }, { 511, 512 },
		{ 512, 512 }, { 513, 1024 }, { 1234, 1536 },
		{ TAR_SIZE_MAX, TAR_SIZE_MAX + 1 } };
	size_t		      i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		assert_true(tar_padded(t[i][0]) == t[i][1]);
}

/* A temporary file, already unlinked; the caller closes it. */
static int
tmpfd(void)
{
	char path[] = "/tmp/test_tar.XXXXXX";
	int  fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(unlink(path), 0);
	return fd;
}

/*
 * An archive of two members written with the fd helpers has the sizes
 * ustar prescribes and reads back member by member to the end blocks.
 */
static void
test_tar_roundtrip(void **state)
{
	static const char a[] = "{\"format\":\"x\"}\n";
	unsigned char	  h[TAR_BLOCK], data[1024];
	char		  name[TAR_NAME_MAX + 1];
	uint64_t	  size;
	bool		  end;
	off_t		  len;
	int		  fd = tmpfd();

	(void)state;
	memset(data, 'z', sizeof(data));
	assert_int_equal(tar_write_header(fd, "manifest.json", strlen(a)),
	    BW_OK);
	assert_int_equal(tar_write(fd, a, strlen(a)), BW_OK);
	assert_int_equal(tar_write_pad(fd, strlen(a)), BW_OK);
	assert_int_equal(tar_write_header(fd, UUID_NAME, 512), BW_OK);
	assert_int_equal(tar_write(fd, data, 512), BW_OK);
	assert_int_equal(tar_write_pad(fd, 512), BW_OK); /* nothing */
	assert_int_equal(tar_write_end(fd), BW_OK);
	assert_int_equal(tar_write_header(fd, "", 0), BW_EINVAL);
	len = lseek(fd, 0, SEEK_CUR);
	assert_int_equal(len, 512 + 512 + 512 + 512 + 1024);

	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	assert_int_equal(tar_read(fd, h, sizeof(h)), BW_OK);
	assert_int_equal(tar_parse(h, name, &size, &end), BW_OK);
	assert_string_equal(name, "manifest.json");
	assert_true(size == strlen(a));
	assert_int_equal(tar_read(fd, data, (size_t)tar_padded(size)), BW_OK);
	assert_memory_equal(data, a, strlen(a));
	assert_int_equal(data[strlen(a)], 0); /* padding is zeros */
	assert_int_equal(data[511], 0);
	assert_int_equal(tar_read(fd, h, sizeof(h)), BW_OK);
	assert_int_equal(tar_parse(h, name, &size, &end), BW_OK);
	assert_string_equal(name, UUID_NAME);
	assert_true(size == 512);
	assert_int_equal(tar_read(fd, data, 512), BW_OK);
	assert_int_equal(data[0], 'z');
	assert_int_equal(tar_read(fd, h, sizeof(h)), BW_OK);
	assert_int_equal(tar_parse(h, name, &size, &end), BW_OK);
	assert_true(end);
	assert_int_equal(tar_read(fd, h, sizeof(h)), BW_OK);
	assert_int_equal(tar_parse(h, name, &size, &end), BW_OK);
	assert_true(end);
	/* Clean end of file, then a short read. */
	assert_int_equal(tar_read(fd, h, 1), BW_ENOTFOUND);
	assert_int_equal(lseek(fd, -3, SEEK_END), len - 3);
	assert_int_equal(tar_read(fd, h, 4), BW_EIO);
	close(fd);

	/* Writing to a closed descriptor fails. */
	assert_int_equal(tar_write(fd, a, 1), BW_EIO);
	assert_int_equal(tar_read(fd, h, 1), BW_EIO);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tar_header_golden),
		cmocka_unit_test(test_tar_header_refused),
		cmocka_unit_test(test_tar_parse_refused),
		cmocka_unit_test(test_tar_parse_accepted),
		cmocka_unit_test(test_tar_padded),
		cmocka_unit_test(test_tar_roundtrip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
