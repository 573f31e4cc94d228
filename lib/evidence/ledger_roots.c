/* SPDX-License-Identifier: MIT */
/*
 * The signed daily roots of the evidence ledger (ledger_roots): one RFC
 * 6962 tree per (org, UTC day) whose leaves are the day's event hashes,
 * signed as a C2SP checkpoint with the ledger key; the proofs an export
 * carries. The key files are ledger_key.c (the seed) and ledger_pub.c
 * (the published verifier key). The encodings are in ledger.c's header
 * comment and docs/verification.md.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "core/jv.h"
#include "evidence/ledger.h"
#include "evidence/ledger_int.h"
#include "core/limits.h"
#include "core/log.h"
#include "evidence/merkle.h"
#include "evidence/note.h"
#include "core/sec.h"

/*
 * The leaf hashes of a day's tree, then every level up to the root as
 * RFC 6962 builds it when an odd last node is carried up unchanged (the
 * same tree as the recursive split at the largest power of two below n).
 * levels[0] = leaves; levels[k] has ceil(n_{k-1} / 2) nodes.
 */
struct ledger_tree {
	uint8_t (*lv[MERKLE_MAX_DEPTH + 1])[32];
	size_t n[MERKLE_MAX_DEPTH + 1];
	int    depth; /* index of the root level */
};

static void
ledger_tree_free(struct ledger_tree *t)
{
	int i;

	for (i = 0; i <= MERKLE_MAX_DEPTH; i++) {
		free(t->lv[i]);
		t->lv[i] = NULL;
	}
}

/* Builds t from n event hashes (n >= 1). BW_OK, BW_ENOMEM, BW_ECRYPTO. */
static enum bw_err
ledger_tree_build(const uint8_t (*hashes)[32], size_t n, struct ledger_tree *t)
{
	size_t	    i, m;
	int	    k;
	enum bw_err er;

	memset(t, 0, sizeof(*t));
	t->lv[0] = malloc(n * 32);
	if (t->lv[0] == NULL)
		return BW_ENOMEM;
	t->n[0] = n;
	for (i = 0; i < n; i++) {
		er = merkle_leaf_hash(hashes[i], 32, t->lv[0][i]);
		if (er != BW_OK)
			return er;
	}
	for (k = 0; t->n[k] > 1; k++) {
		m = (t->n[k] + 1) / 2;
		t->lv[k + 1] = malloc(m * 32);
		if (t->lv[k + 1] == NULL)
			return BW_ENOMEM;
		t->n[k + 1] = m;
		for (i = 0; i + 1 < t->n[k]; i += 2) {
			er = merkle_node_hash(t->lv[k][i], t->lv[k][i + 1],
			    t->lv[k + 1][i / 2]);
			if (er != BW_OK)
				return er;
		}
		if (t->n[k] % 2 == 1)
			memcpy(t->lv[k + 1][m - 1], t->lv[k][t->n[k] - 1], 32);
	}
	t->depth = k;
	return BW_OK;
}

/* The audit path of leaf index in t, leaf level first. */
static size_t
ledger_tree_path(const struct ledger_tree *t, size_t index, uint8_t (*path)[32])
{
	size_t plen = 0, sib;
	int    k;

	for (k = 0; k < t->depth; k++) {
		sib = index ^ 1;
		if (sib < t->n[k])
			memcpy(path[plen++], t->lv[k][sib], 32);
		index >>= 1;
	}
	return plen;
}

/* Appends the UTC day of time_us as "YYYY-MM-DD" to day (11 bytes). */
static void
ledger_day(int64_t time_us, char day[11])
{
	time_t	  t = (time_t)(time_us / 1000000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(day, 11, "%Y-%m-%d", &tm);
}

/* 1 for "YYYY-MM-DD" with plausible numbers. */
static int
ledger_day_ok(const char *d)
{
	int i;

	if (d == NULL || strlen(d) != 10 || d[4] != '-' || d[7] != '-')
		return 0;
	for (i = 0; i < 10; i++)
		if (i != 4 && i != 7 && !isdigit((unsigned char)d[i]))
			return 0;
	return 1;
}

/*
 * The (org, day) pairs to sign: days before $1 without a root, looking at
 * events from the day after each org's last root, or from 7 days before
 * $1 if that is earlier (a day skipped because its chain was broken is
 * signed once repaired), or from $2 when given.
 */
static const char ledger_sql_todo[] =
    "WITH last AS (SELECT h.org_id, coalesce($2::date, least(coalesce("
    "(SELECT max(r.day) FROM ledger_roots r WHERE r.org_id = h.org_id) + 1, "
    "'-infinity'::date), $1::date - 7)) AS d FROM ledger_heads h), "
    "g AS (SELECT e.org_id, (e.created_at AT TIME ZONE 'UTC')::date AS day, "
    "count(*) AS n, min(e.seq) AS lo, max(e.seq) AS hi "
    "FROM last JOIN ledger_events e ON e.org_id = last.org_id "
    "AND e.created_at >= last.d::timestamp AT TIME ZONE 'UTC' "
    "AND e.created_at < ($1::date)::timestamp AT TIME ZONE 'UTC' "
    "GROUP BY 1, 2) "
    "SELECT g.org_id, to_char(g.day, 'YYYY-MM-DD'), g.n, g.lo, g.hi FROM g "
    "WHERE NOT EXISTS (SELECT 1 FROM ledger_roots r WHERE "
    "r.org_id = g.org_id AND r.day = g.day) ORDER BY 1, 2";
static const char ledger_sql_root_insert[] =
    "INSERT INTO ledger_roots (org_id, day, root, event_count, first_seq, "
    "last_seq, signature, key_id, vkey, checkpoint) VALUES ($1, $2::date, "
    "decode($3, 'hex'), $4, $5, $6, decode($7, 'hex'), $8, $9, $10) "
    "ON CONFLICT (org_id, day) DO NOTHING";

/* What signing one root needs, set up once per run. */
struct ledger_signer {
	const uint8_t *seed;
	const char    *name;
	char	       key_id[9];
	struct buf     vkey;
};

static enum bw_err
ledger_signer_init(struct ledger_signer *s, const uint8_t seed[32],
    const char *name)
{
	uint8_t	    pub[32];
	uint32_t    id;
	enum bw_err er;

	s->seed = seed;
	s->name = name;
	buf_init(&s->vkey, BW_MAX_NOTE_NAME + 128);
	er = sec_ed25519_pub(seed, pub);
	if (er != BW_OK)
		return er;
	er = note_key_id(name, pub, &id);
	if (er != BW_OK)
		return er;
	snprintf(s->key_id, sizeof(s->key_id), "%08x", (unsigned)id);
	return note_vkey(name, pub, &s->vkey);
}

/*
 * Computes, verifies, signs and stores the root of one (org, day) over
 * seqs [first, last]. *made is 1 when this call stored it. A broken chain
 * or a gap is logged and skipped (never signed).
 */
static enum bw_err
ledger_root_one(struct db *db, struct ledger_signer *s, const char *org_id,
    const char *day, int64_t first, int64_t last, int *made)
{
	struct ledger_walk w;
	struct ledger_tree t;
	struct buf	   origin, body, note;
	PGresult	  *res = NULL;
	uint8_t		   sig[64];
	char		   root[65], sighex[129], cnt[24], fs[24], ls[24];
	const char	  *p[10];
	int64_t		   n = last - first + 1;
	enum bw_err	   er;

	*made = 0;
	memset(&w, 0, sizeof(w));
	memset(&t, 0, sizeof(t));
	buf_init(&origin, BW_MAX_NOTE_NAME + 1);
	buf_init(&body, BW_MAX_NOTE);
	buf_init(&note, BW_MAX_NOTE);
	if (n < 1 || n > LEDGER_MAX_DAY) {
		er = BW_ETOOBIG;
		goto out;
	}
	w.maxhashes = (size_t)n;
	w.hashes = malloc((size_t)n * 32);
	if (w.hashes == NULL) {
		er = BW_ENOMEM;
		goto out;
	}
	er = ledger_walk(db, org_id, first, last, &w);
	if (er != BW_OK)
		goto out;
	if (w.broken_at != 0 || w.nhashes != (size_t)n) {
		char at[24];

		snprintf(at, sizeof(at), "%lld", (long long)w.broken_at);
		log_kv(LL_ERROR, "ledger chain broken: day not signed",
		    "org_id", org_id, "day", day, "broken_at", at, "reason",
		    w.reason != NULL ? w.reason : "count", NULL);
		er = BW_OK;
		goto out;
	}
	er = ledger_tree_build((const uint8_t(*)[32])w.hashes, w.nhashes, &t);
	if (er != BW_OK)
		goto out;
	er = note_origin(s->name, org_id, &origin);
	if (er != BW_OK)
		goto out;
	er = note_checkpoint_body(buf_cstr(&origin), (uint64_t)n,
	    t.lv[t.depth][0], &body);
	if (er != BW_OK)
		goto out;
	er = note_sign(buf_cstr(&body), body.len, s->name, s->seed, &note);
	if (er != BW_OK)
		goto out;
	/* The signed-note signature is Ed25519 over the note text. */
	er = sec_ed25519_sign(s->seed, buf_cstr(&body), body.len, sig);
	if (er != BW_OK)
		goto out;
	sec_hex(t.lv[t.depth][0], 32, root);
	sec_hex(sig, 64, sighex);
	snprintf(cnt, sizeof(cnt), "%lld", (long long)n);
	snprintf(fs, sizeof(fs), "%lld", (long long)first);
	snprintf(ls, sizeof(ls), "%lld", (long long)last);
	p[0] = org_id;
	p[1] = day;
	p[2] = root;
	p[3] = cnt;
	p[4] = fs;
	p[5] = ls;
	p[6] = sighex;
	p[7] = s->key_id;
	p[8] = buf_cstr(&s->vkey);
	p[9] = buf_cstr(&note);
	er = db_execp(db, "ledger_root_insert", ledger_sql_root_insert, 10, p,
	    &res);
	if (er != BW_OK)
		goto out;
	if (strcmp(PQcmdTuples(res), "1") == 0) {
		*made = 1;
		log_kv(LL_INFO, "ledger root signed", "org_id", org_id, "day",
		    day, "event_count", cnt, "root", root, NULL);
	}
out:
	PQclear(res);
	free(w.hashes);
	ledger_tree_free(&t);
	buf_free(&origin);
	buf_free(&body);
	buf_free(&note);
	return er;
}

/*
 * Signs every (org, UTC day) before before_day that has events and no root
 * yet. Safe to run twice or concurrently: a root is stored once (primary
 * key, ON CONFLICT DO NOTHING) and signing is deterministic.
 */
enum bw_err
ledger_roots_compute(struct db *db, const uint8_t seed[32],
    const char *key_name, const char *before_day, int *n)
{
	return ledger_roots_compute_since(db, seed, key_name, NULL, before_day,
	    n);
}

/*
 * As ledger_roots_compute(), looking for unsigned days from since_day
 * (YYYY-MM-DD) on instead of the default window (the day after each
 * org's last root, at most 7 days back). For catching up by hand.
 */
enum bw_err
ledger_roots_compute_since(struct db *db, const uint8_t seed[32],
    const char *key_name, const char *since_day, const char *before_day, int *n)
{
	struct ledger_signer s;
	PGresult	    *res = NULL;
	const char	    *p[2];
	char		     today[11];
	int64_t		     first, last, cnt;
	int		     i, made, total = 0;
	enum bw_err	     er;

	if (db == NULL || seed == NULL || key_name == NULL || n == NULL)
		return BW_EINVAL;
	if (before_day == NULL) {
		ledger_day((int64_t)time(NULL) * 1000000, today);
		before_day = today;
	}
	if (!ledger_day_ok(before_day) ||
	    (since_day != NULL && !ledger_day_ok(since_day)))
		return BW_EINVAL;
	er = ledger_signer_init(&s, seed, key_name);
	if (er != BW_OK)
		goto out;
	p[0] = before_day;
	p[1] = since_day;
	er = db_execp(db, "ledger_todo", ledger_sql_todo, 2, p, &res);
	if (er != BW_OK)
		goto out;
	for (i = 0; i < PQntuples(res); i++) {
		if (db_i64(PQgetvalue(res, i, 2), &cnt) != 0 ||
		    db_i64(PQgetvalue(res, i, 3), &first) != 0 ||
		    db_i64(PQgetvalue(res, i, 4), &last) != 0) {
			er = BW_EDB;
			goto out;
		}
		if (cnt != last - first + 1) {
			log_kv(LL_ERROR,
			    "ledger day not contiguous: not "
			    "signed",
			    "org_id", PQgetvalue(res, i, 0), "day",
			    PQgetvalue(res, i, 1), NULL);
			continue;
		}
		er = ledger_root_one(db, &s, PQgetvalue(res, i, 0),
		    PQgetvalue(res, i, 1), first, last, &made);
		if (er != BW_OK)
			goto out;
		total += made;
	}
	*n = total;
out:
	PQclear(res);
	buf_free(&s.vkey);
	return er;
}

static const char ledger_sql_roots_for[] =
    "SELECT to_char(day, 'YYYY-MM-DD'), encode(root, 'hex'), event_count, "
    "first_seq, last_seq, encode(signature, 'base64'), key_id, checkpoint "
    "FROM ledger_roots WHERE org_id = $1 AND last_seq >= $2 "
    "AND first_seq <= $3 ORDER BY first_seq";

/* Adds the inclusion proofs of seqs [lo, hi] of one day to proofs. */
static enum bw_err
ledger_day_proofs(struct db *db, const char *org_id, const char *day,
    int64_t first, int64_t last, int64_t lo, int64_t hi,
    struct json_object *proofs)
{
	struct ledger_walk  w;
	struct ledger_tree  t;
	struct json_object *o, *pa;
	uint8_t		    path[MERKLE_MAX_DEPTH][32];
	char		    hx[65];
	size_t		    plen, j, idx;
	int64_t		    seq, n = last - first + 1;
	enum bw_err	    er;

	memset(&w, 0, sizeof(w));
	memset(&t, 0, sizeof(t));
	if (n < 1 || n > LEDGER_MAX_DAY)
		return BW_ETOOBIG;
	w.maxhashes = (size_t)n;
	w.hashes = malloc((size_t)n * 32);
	if (w.hashes == NULL)
		return BW_ENOMEM;
	er = ledger_walk(db, org_id, first, last, &w);
	if (er != BW_OK)
		goto out;
	if (w.nhashes != (size_t)n) {
		/* Rows are missing: no proof can be given; the verifier
		 * will see the gap in the chain. */
		er = BW_OK;
		goto out;
	}
	er = ledger_tree_build((const uint8_t(*)[32])w.hashes, w.nhashes, &t);
	if (er != BW_OK)
		goto out;
	for (seq = lo; seq <= hi; seq++) {
		idx = (size_t)(seq - first);
		plen = ledger_tree_path(&t, idx, path);
		/* Self-check against the vetted verifier. */
		er = merkle_inclusion_verify(idx, (uint64_t)n, t.lv[0][idx],
		    (const uint8_t(*)[32])path, plen, t.lv[t.depth][0]);
		if (er != BW_OK) {
			log_kv(LL_ERROR, "ledger proof self-check failed",
			    "org_id", org_id, "day", day, NULL);
			er = BW_ECRYPTO;
			goto out;
		}
		o = json_object_new_object();
		json_object_object_add(o, "seq", json_object_new_int64(seq));
		json_object_object_add(o, "day", json_object_new_string(day));
		json_object_object_add(o, "index",
		    json_object_new_int64((int64_t)idx));
		json_object_object_add(o, "tree_size",
		    json_object_new_int64(n));
		sec_hex(w.hashes[idx], 32, hx);
		json_object_object_add(o, "event_hash",
		    json_object_new_string(hx));
		sec_hex(t.lv[0][idx], 32, hx);
		json_object_object_add(o, "leaf_hash",
		    json_object_new_string(hx));
		pa = json_object_new_array();
		for (j = 0; j < plen; j++) {
			sec_hex(path[j], 32, hx);
			json_object_array_add(pa, json_object_new_string(hx));
		}
		json_object_object_add(o, "path", pa);
		json_object_array_add(proofs, o);
	}
out:
	free(w.hashes);
	ledger_tree_free(&t);
	return er;
}

/*
 * The stored daily roots overlapping [first, last] and, with_proofs, the
 * inclusion proof of each seq of that range that a root covers (proofs
 * are built from the stored event hashes: a tampered row gives a proof
 * that does not verify against the signed root, as it should). *out is
 * the array of roots in seq order; with_proofs each root object carries
 * the "proofs" of the seqs it covers: [{"seq","day","index","tree_size",
 * "event_hash","leaf_hash","path":[hex...]}].
 */
enum bw_err
ledger_roots_for(struct db *db, const char *org_id, int64_t first, int64_t last,
    bool with_proofs, struct json_object **out)
{
	PGresult	   *res = NULL;
	struct json_object *arr = NULL, *o, *proofs;
	const char	   *p[3];
	char		    a[24], b[24];
	int64_t		    cnt, fs, ls, lo, hi;
	int		    i;
	enum bw_err	    er;

	if (db == NULL || !jv_is_uuid_lc(org_id) || first < 1 || last < first ||
	    out == NULL)
		return BW_EINVAL;
	snprintf(a, sizeof(a), "%lld", (long long)first);
	snprintf(b, sizeof(b), "%lld", (long long)last);
	p[0] = org_id;
	p[1] = a;
	p[2] = b;
	er = db_execp(db, "ledger_roots_for", ledger_sql_roots_for, 3, p, &res);
	if (er != BW_OK)
		return er;
	arr = json_object_new_array();
	for (i = 0; i < PQntuples(res); i++) {
		if (db_i64(PQgetvalue(res, i, 2), &cnt) != 0 ||
		    db_i64(PQgetvalue(res, i, 3), &fs) != 0 ||
		    db_i64(PQgetvalue(res, i, 4), &ls) != 0) {
			er = BW_EDB;
			goto out;
		}
		o = json_object_new_object();
		json_object_object_add(o, "day",
		    json_object_new_string(PQgetvalue(res, i, 0)));
		json_object_object_add(o, "root",
		    json_object_new_string(PQgetvalue(res, i, 1)));
		json_object_object_add(o, "event_count",
		    json_object_new_int64(cnt));
		json_object_object_add(o, "first_seq",
		    json_object_new_int64(fs));
		json_object_object_add(o, "last_seq",
		    json_object_new_int64(ls));
		{
			/* PostgreSQL's base64 wraps lines at 76 chars. */
			const char *s = PQgetvalue(res, i, 5);
			char	    sig[96];
			size_t	    k = 0;

			for (; *s != '\0' && k + 1 < sizeof(sig); s++)
				if (*s != '\n')
					sig[k++] = *s;
			sig[k] = '\0';
			json_object_object_add(o, "signature",
			    json_object_new_string(sig));
		}
		json_object_object_add(o, "key_id",
		    json_object_new_string(PQgetvalue(res, i, 6)));
		json_object_object_add(o, "checkpoint",
		    json_object_new_string(PQgetvalue(res, i, 7)));
		json_object_array_add(arr, o);
		if (!with_proofs)
			continue;
		proofs = json_object_new_array();
		json_object_object_add(o, "proofs", proofs);
		lo = first > fs ? first : fs;
		hi = last < ls ? last : ls;
		er = ledger_day_proofs(db, org_id, PQgetvalue(res, i, 0), fs,
		    ls, lo, hi, proofs);
		if (er != BW_OK)
			goto out;
	}
	*out = arr;
	arr = NULL;
out:
	PQclear(res);
	json_object_put(arr);
	return er;
}
