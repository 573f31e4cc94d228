/* SPDX-License-Identifier: MIT */
/*
 * The published side of the ledger key: the public key file
 * (ledger_public_key_file, one C2SP verifier key line
 * "<name>+<hex id>+<base64(0x01 || pub)>") and the JSON that
 * GET /api/v1/public/ledger-keys and `bulwarkctl ledger keys` render from
 * it. Nothing here reads the signing seed: that is ledger_key.c, which
 * bulwark-fcgi does not link.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/sec.h"
#include "evidence/ledger.h"
#include "evidence/note.h"

/* A verifier key line is ~100 bytes; this leaves room for a long name. */
#define LEDGER_PUB_FILE_MAX (BW_MAX_NOTE_NAME + 128)

enum bw_err
ledger_pubkey_load(const char *path, const char *key_name,
    struct note_vkey *out)
{
	char		 data[LEDGER_PUB_FILE_MAX + 1];
	struct note_vkey vk;
	ssize_t		 r;
	size_t		 n = 0, s, e;
	int		 fd;
	enum bw_err	 er;

	if (path == NULL || *path == '\0' || key_name == NULL || out == NULL)
		return BW_EINVAL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? BW_ENOTFOUND : BW_EIO;
	while (n < sizeof(data)) {
		r = read(fd, data + n, sizeof(data) - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			close(fd);
			return BW_EIO;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	if (n > LEDGER_PUB_FILE_MAX)
		return BW_EINVAL;
	for (s = 0; s < n && isspace((unsigned char)data[s]); s++)
		;
	for (e = n; e > s && isspace((unsigned char)data[e - 1]); e--)
		;
	er = note_parse_vkey(data + s, e - s, &vk);
	if (er != BW_OK)
		return BW_EINVAL;
	/* Checkpoints are signed under ledger_origin: another name would
	 * publish a key no signature is made with. */
	if (strcmp(vk.name, key_name) != 0)
		return BW_ESTATE;
	*out = vk;
	return BW_OK;
}

enum bw_err
ledger_public_keys(const struct note_vkey *vk, struct json_object **out)
{
	struct json_object *arr, *o;
	struct buf	    text, b64;
	char		    id[9];
	enum bw_err	    er;

	if (vk == NULL || out == NULL)
		return BW_EINVAL;
	buf_init(&text, BW_MAX_NOTE_NAME + 128);
	buf_init(&b64, 64);
	er = note_vkey(vk->name, vk->pub, &text);
	if (er == BW_OK)
		er = sec_b64(vk->pub, 32, &b64);
	if (er != BW_OK)
		goto out;
	snprintf(id, sizeof(id), "%08x", (unsigned)vk->id);
	o = json_object_new_object();
	json_object_object_add(o, "key_id", json_object_new_string(id));
	json_object_object_add(o, "name", json_object_new_string(vk->name));
	json_object_object_add(o, "vkey",
	    json_object_new_string(buf_cstr(&text)));
	json_object_object_add(o, "public_key_b64",
	    json_object_new_string(buf_cstr(&b64)));
	json_object_object_add(o, "algorithm",
	    json_object_new_string("Ed25519"));
	arr = json_object_new_array();
	json_object_array_add(arr, o);
	*out = arr;
out:
	buf_free(&text);
	buf_free(&b64);
	return er;
}
