/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the ledger key files (lib/evidence/ledger_key.c, the
 * signing side; ledger_pub.c, the published side): keygen makes a seed
 * (0640, never over an existing file) and its public key (0644); the
 * public keys rendered from the public key file alone are those of the
 * seed; the public key file is parsed strictly and must carry the
 * configured name; signing loads the seed only when the public key file
 * publishes its key.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "core/buf.h"
#include "core/sec.h"
#include "evidence/ledger.h"
#include "evidence/note.h"

static char dir[64], seed_path[128], pub_path[128], other[128];

static int
setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/bw-ledger-key.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(seed_path, sizeof(seed_path), "%s/ledger.key", dir);
	snprintf(pub_path, sizeof(pub_path), "%s/ledger.pub", dir);
	snprintf(other, sizeof(other), "%s/other.pub", dir);
	return 0;
}

static int
teardown(void **state)
{
	char p[160];

	(void)state;
	unlink(seed_path);
	unlink(pub_path);
	unlink(other);
	snprintf(p, sizeof(p), "%s/other.key", dir);
	unlink(p);
	rmdir(dir);
	return 0;
}

static void
write_file(const char *path, const char *s)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(s, f);
	fclose(f);
}

static mode_t
mode_of(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return st.st_mode & 07777;
}

static void
test_keygen_and_publish(void **state)
{
	struct json_object *keys = NULL, *k, *v;
	struct note_vkey    vk;
	struct buf	    want, b64;
	uint8_t		    seed[32], pub[32], again[32];

	(void)state;
	assert_int_equal(ledger_keygen(seed_path, pub_path, "log.example"),
	    BW_OK);
	assert_int_equal(mode_of(seed_path), 0640);
	assert_int_equal(mode_of(pub_path), 0644);
	assert_int_equal(ledger_key_load(seed_path, seed), BW_OK);

	/* What the public file renders is the seed's key. */
	assert_int_equal(ledger_pubkey_load(pub_path, "log.example", &vk),
	    BW_OK);
	assert_int_equal(sec_ed25519_pub(seed, pub), BW_OK);
	assert_memory_equal(vk.pub, pub, 32);
	assert_int_equal(ledger_public_keys(&vk, &keys), BW_OK);
	assert_int_equal(json_object_array_length(keys), 1);
	k = json_object_array_get_idx(keys, 0);
	buf_init(&want, 512);
	buf_init(&b64, 64);
	assert_int_equal(note_vkey("log.example", pub, &want), BW_OK);
	assert_true(json_object_object_get_ex(k, "vkey", &v));
	assert_string_equal(json_object_get_string(v), buf_cstr(&want));
	assert_int_equal(sec_b64(pub, 32, &b64), BW_OK);
	assert_true(json_object_object_get_ex(k, "public_key_b64", &v));
	assert_string_equal(json_object_get_string(v), buf_cstr(&b64));
	assert_true(json_object_object_get_ex(k, "name", &v));
	assert_string_equal(json_object_get_string(v), "log.example");
	assert_true(json_object_object_get_ex(k, "algorithm", &v));
	assert_string_equal(json_object_get_string(v), "Ed25519");
	assert_true(json_object_object_get_ex(k, "key_id", &v));
	assert_int_equal(strlen(json_object_get_string(v)), 8);
	json_object_put(keys);
	buf_free(&b64);

	/* A second keygen never replaces the seed. */
	assert_int_equal(ledger_keygen(seed_path, other, "log.example"),
	    BW_EEXISTS);
	assert_int_equal(access(other, F_OK), -1);
	assert_int_equal(ledger_key_load(seed_path, again), BW_OK);
	assert_memory_equal(again, seed, 32);

	/* pubkey rewrites the same file from the seed. */
	unlink(pub_path);
	assert_int_equal(ledger_pubkey_write(pub_path, seed, "log.example"),
	    BW_OK);
	assert_int_equal(mode_of(pub_path), 0644);
	{
		char  line[600];
		FILE *f = fopen(pub_path, "r");

		assert_non_null(f);
		assert_non_null(fgets(line, sizeof(line), f));
		fclose(f);
		line[strcspn(line, "\n")] = '\0';
		assert_string_equal(line, buf_cstr(&want));
	}
	buf_free(&want);
	sec_wipe(seed, sizeof(seed));
}

static void
test_pubkey_load_strict(void **state)
{
	struct note_vkey vk;
	uint8_t		 seed[32];
	char		 text[600];
	struct buf	 b;

	(void)state;
	assert_int_equal(ledger_pubkey_load(other, "log.example", &vk),
	    BW_ENOTFOUND);
	write_file(other, "not a key\n");
	assert_int_equal(ledger_pubkey_load(other, "log.example", &vk),
	    BW_EINVAL);
	/* A signer key is no public key. */
	memset(seed, 7, sizeof(seed));
	buf_init(&b, 1024);
	assert_int_equal(note_skey("log.example", seed, &b), BW_OK);
	write_file(other, buf_cstr(&b));
	assert_int_equal(ledger_pubkey_load(other, "log.example", &vk),
	    BW_EINVAL);
	buf_free(&b);
	/* Another name than the configured origin. */
	assert_int_equal(ledger_pubkey_write(other, seed, "other.example"),
	    BW_OK);
	assert_int_equal(ledger_pubkey_load(other, "log.example", &vk),
	    BW_ESTATE);
	assert_int_equal(ledger_pubkey_load(other, "other.example", &vk),
	    BW_OK);
	/* Blanks around the line are fine; a wrong key id is not. */
	buf_init(&b, 1024);
	assert_int_equal(note_vkey("log.example", seed, &b), BW_OK);
	snprintf(text, sizeof(text), "  %s \n\n", buf_cstr(&b));
	write_file(other, text);
	assert_int_equal(ledger_pubkey_load(other, "log.example", &vk), BW_OK);
	text[2 + strlen("log.example+")] ^= 1;
	write_file(other, text);
	assert_int_equal(ledger_pubkey_load(other, "log.example", &vk),
	    BW_EINVAL);
	buf_free(&b);
	assert_int_equal(ledger_pubkey_load(NULL, "log.example", &vk),
	    BW_EINVAL);
}

static void
test_signing_needs_the_published_key(void **state)
{
	uint8_t seed[32], zero[32];
	char	okey[160];

	(void)state;
	memset(zero, 0, sizeof(zero));
	/* pub_path publishes seed_path's key (test_keygen_and_publish). */
	assert_int_equal(ledger_signing_key_load(seed_path, pub_path,
			     "log.example", seed),
	    BW_OK);
	/* Another key published: refused, the seed wiped. */
	snprintf(okey, sizeof(okey), "%s/other.key", dir);
	unlink(other);
	assert_int_equal(ledger_keygen(okey, other, "log.example"), BW_OK);
	assert_int_equal(ledger_signing_key_load(seed_path, other,
			     "log.example", seed),
	    BW_ESTATE);
	assert_memory_equal(seed, zero, 32);
	/* No public key file, or one under another name: refused too. */
	unlink(other);
	assert_int_equal(ledger_signing_key_load(seed_path, other,
			     "log.example", seed),
	    BW_ESTATE);
	assert_int_equal(ledger_signing_key_load(seed_path, pub_path,
			     "other.example", seed),
	    BW_ESTATE);
	/* No seed: the seed's error. */
	assert_int_equal(ledger_signing_key_load(other, pub_path, "log.example",
			     seed),
	    BW_ENOTFOUND);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keygen_and_publish),
		cmocka_unit_test(test_pubkey_load_strict),
		cmocka_unit_test(test_signing_needs_the_published_key),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
