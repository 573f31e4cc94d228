/* SPDX-License-Identifier: MIT */
/*
 * The signing side of the ledger key: the seed file (ledger_key_file) and
 * the public key file made from it (ledger_public_key_file). Only what
 * signs links this file (bulwark-ledger, bulwarkctl); bulwark-fcgi serves
 * the public key file (ledger_pub.c) and holds no code that reads a seed.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/sec.h"
#include "evidence/ledger.h"
#include "evidence/ledger_int.h"
#include "evidence/note.h"

/*
 * Reads the seed: exactly 32 raw bytes, or base64 of 32 bytes (blanks
 * around it ignored), or a note signer key "PRIVATE+KEY+...". BW_ENOTFOUND
 * when the file is missing, BW_EINVAL when it holds anything else.
 */
enum bw_err
ledger_key_load(const char *path, uint8_t seed[32])
{
	char	    data[LEDGER_KEY_FILE_MAX];
	char	    name[BW_MAX_NOTE_NAME + 1];
	struct buf  dec;
	ssize_t	    r;
	size_t	    n = 0, s, e;
	int	    fd;
	enum bw_err er = BW_EINVAL;

	if (path == NULL || *path == '\0' || seed == NULL)
		return BW_EINVAL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? BW_ENOTFOUND : BW_EIO;
	while (n < sizeof(data)) {
		r = read(fd, data + n, sizeof(data) - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	buf_init(&dec, 64);
	if (n == 32) {
		memcpy(seed, data, 32);
		er = BW_OK;
		goto out;
	}
	if (n >= sizeof(data))
		goto out;
	for (s = 0; s < n && isspace((unsigned char)data[s]); s++)
		;
	for (e = n; e > s && isspace((unsigned char)data[e - 1]); e--)
		;
	if (e - s > 12 && memcmp(data + s, "PRIVATE+KEY+", 12) == 0) {
		er = note_parse_skey(data + s, e - s, name, seed);
		goto out;
	}
	if (sec_unb64(data + s, e - s, &dec) == BW_OK && dec.len == 32) {
		memcpy(seed, dec.p, 32);
		er = BW_OK;
	}
out:
	if (dec.p != NULL)
		sec_wipe(dec.p, dec.len);
	buf_free(&dec);
	sec_wipe(data, sizeof(data));
	return er;
}

/* The verifier key of seed under key_name, parsed. */
static enum bw_err
ledger_vkey_of(const uint8_t seed[32], const char *key_name,
    struct note_vkey *vk)
{
	struct buf  text;
	uint8_t	    pub[32];
	enum bw_err er;

	buf_init(&text, BW_MAX_NOTE_NAME + 128);
	er = sec_ed25519_pub(seed, pub);
	if (er == BW_OK)
		er = note_vkey(key_name, pub, &text);
	if (er == BW_OK)
		er = note_parse_vkey(buf_cstr(&text), text.len, vk);
	buf_free(&text);
	return er;
}

enum bw_err
ledger_signing_key_load(const char *path, const char *pub_path,
    const char *key_name, uint8_t seed[32])
{
	struct note_vkey want, pub;
	enum bw_err	 er;

	er = ledger_key_load(path, seed);
	if (er != BW_OK) {
		log_kv(LL_ERROR, "ledger key unreadable", "path", path, "error",
		    bw_strerror(er), NULL);
		return er;
	}
	er = ledger_vkey_of(seed, key_name, &want);
	if (er != BW_OK) {
		log_kv(LL_ERROR, "ledger key unusable", "error",
		    bw_strerror(er), NULL);
		sec_wipe(seed, 32);
		return er;
	}
	er = ledger_pubkey_load(pub_path, key_name, &pub);
	if (er != BW_OK) {
		log_kv(LL_ERROR,
		    "ledger public key file unusable: nothing signed "
		    "(bulwarkctl ledger pubkey writes it)",
		    "path", pub_path, "error",
		    er == BW_ESTATE ? "names another key than ledger_origin"
				    : bw_strerror(er),
		    NULL);
		sec_wipe(seed, 32);
		return BW_ESTATE;
	}
	if (pub.id != want.id || memcmp(pub.pub, want.pub, 32) != 0) {
		log_kv(LL_ERROR,
		    "ledger public key file is not the signing key's: "
		    "nothing signed (docs/runbooks/ledger.md, key rotation)",
		    "path", pub_path, NULL);
		sec_wipe(seed, 32);
		return BW_ESTATE;
	}
	return BW_OK;
}

enum bw_err
ledger_pubkey_write(const char *pub_path, const uint8_t seed[32],
    const char *key_name)
{
	struct buf  text, tmp;
	uint8_t	    pub[32];
	ssize_t	    w;
	size_t	    off;
	int	    fd;
	enum bw_err er;

	if (pub_path == NULL || *pub_path == '\0' || seed == NULL ||
	    key_name == NULL)
		return BW_EINVAL;
	buf_init(&text, BW_MAX_NOTE_NAME + 128);
	buf_init(&tmp, 4096);
	er = sec_ed25519_pub(seed, pub);
	if (er == BW_OK)
		er = note_vkey(key_name, pub, &text);
	if (er == BW_OK)
		er = buf_addc(&text, '\n');
	if (er == BW_OK)
		er = buf_printf(&tmp, "%s.new.%ld", pub_path, (long)getpid());
	if (er != BW_OK)
		goto out;
	/* Written aside, then renamed: a reader sees the old or the new. */
	fd = open(buf_cstr(&tmp), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0644);
	if (fd < 0) {
		er = BW_EIO;
		goto out;
	}
	for (off = 0; er == BW_OK && off < text.len; off += (size_t)w) {
		w = write(fd, text.p + off, text.len - off);
		if (w < 0 && errno == EINTR)
			w = 0;
		else if (w <= 0)
			er = BW_EIO;
	}
	/* Public: readable by all whatever the umask. */
	if (er == BW_OK && (fchmod(fd, 0644) != 0 || fsync(fd) != 0))
		er = BW_EIO;
	if (close(fd) != 0 && er == BW_OK)
		er = BW_EIO;
	if (er == BW_OK && rename(buf_cstr(&tmp), pub_path) != 0)
		er = BW_EIO;
	if (er != BW_OK)
		(void)unlink(buf_cstr(&tmp));
out:
	buf_free(&text);
	buf_free(&tmp);
	return er;
}

enum bw_err
ledger_keygen(const char *path, const char *pub_path, const char *key_name)
{
	struct buf  b64;
	uint8_t	    seed[32];
	ssize_t	    w;
	size_t	    off;
	int	    fd;
	enum bw_err er;

	if (path == NULL || *path == '\0' || pub_path == NULL ||
	    *pub_path == '\0' || key_name == NULL)
		return BW_EINVAL;
	buf_init(&b64, 64);
	er = sec_random(seed, sizeof(seed));
	if (er == BW_OK)
		er = sec_b64(seed, sizeof(seed), &b64);
	if (er == BW_OK)
		er = buf_addc(&b64, '\n');
	if (er != BW_OK)
		goto out;
	/* Never over an existing key: roots signed with it stay checkable
	 * only while its public key is known. */
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		er = errno == EEXIST ? BW_EEXISTS : BW_EIO;
		goto out;
	}
	for (off = 0; er == BW_OK && off < b64.len; off += (size_t)w) {
		w = write(fd, b64.p + off, b64.len - off);
		if (w < 0 && errno == EINTR)
			w = 0;
		else if (w <= 0)
			er = BW_EIO;
	}
	/* Owner and group (bulwark-ledger, docs/operations.md) read it. */
	if (er == BW_OK && (fchmod(fd, 0640) != 0 || fsync(fd) != 0))
		er = BW_EIO;
	if (close(fd) != 0 && er == BW_OK)
		er = BW_EIO;
	if (er == BW_OK)
		er = ledger_pubkey_write(pub_path, seed, key_name);
	if (er != BW_OK)
		(void)unlink(path);
out:
	if (b64.p != NULL)
		sec_wipe(b64.p, b64.len);
	buf_free(&b64);
	sec_wipe(seed, sizeof(seed));
	return er;
}
