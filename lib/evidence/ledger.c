/* SPDX-License-Identifier: MIT */
/*
 * The evidence ledger (tables ledger_heads, ledger_events, ledger_roots):
 * per-org hash chain appends serialized on the org's head row, chain
 * verification and event reads; the signed daily RFC 6962 roots published
 * as C2SP checkpoints are in ledger_roots.c. docs/verification.md restates the encodings below for
 * third parties.
 *
 * Canonical event encoding (version 1), the bytes hashed with SHA-256 to
 * give an event's hash; every field is on its own line, each line ends in
 * a single 0x0A, there is no trailing data:
 *
 *	bulwark-ledger-v1
 *	org <org_id: lower-case UUID, 36 chars>
 *	seq <decimal, no leading zeros>
 *	type <type: [a-z][a-z0-9_.]{0,63}>
 *	payload <payload hash: 64 lower-case hex>
 *	prev <previous event's hash, 64 zeros for seq 1: 64 lower-case hex>
 *	time <microseconds since 1970-01-01T00:00:00Z, decimal>
 *
 * The daily tree of (org, UTC day) has one leaf per event of that day in
 * seq order; leaf i is SHA-256(0x00 || hash_i) (RFC 6962 §2.1 with the
 * 32-byte event hash as the entry). Event times are non-decreasing along
 * the chain, so each day's events are the contiguous seq range
 * [first_seq, last_seq].
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/jv.h"
#include "evidence/ledger.h"
#include "evidence/ledger_int.h"
#include "core/limits.h"
#include "core/log.h"
#include "evidence/merkle.h"
#include "evidence/note.h"
#include "core/sec.h"

#define LEDGER_BATCH 5000 /* rows fetched per round trip */

static const uint8_t ledger_zero[32];

/* One event row as stored. */
struct ledger_row {
	int64_t seq;
	char	type[65];
	uint8_t payload[32];
	uint8_t prev[32];
	uint8_t hash[32];
	int64_t time_us;
};

/* 1 for an event type: [a-z][a-z0-9_.]{0,63}. */
int
ledger_type_ok(const char *t)
{
	size_t i;

	if (t == NULL || !(t[0] >= 'a' && t[0] <= 'z'))
		return 0;
	for (i = 1; t[i] != '\0'; i++) {
		if (i >= 64)
			return 0;
		if (!((t[i] >= 'a' && t[i] <= 'z') ||
			(t[i] >= '0' && t[i] <= '9') || t[i] == '_' ||
			t[i] == '.'))
			return 0;
	}
	return 1;
}

/*
 * The event hash of the canonical encoding above. BW_OK, BW_EINVAL (bad
 * org id, type or seq) or BW_ECRYPTO.
 */
enum bw_err
ledger_event_hash(const char *org_id, int64_t seq, const char *type,
    const uint8_t payload_hash[32], const uint8_t prev_hash[32],
    int64_t time_us, uint8_t out[32])
{
	char pl[65], pv[65];
	char enc[512];
	int  n;

	if (!jv_is_uuid_lc(org_id) || !ledger_type_ok(type) || seq < 1)
		return BW_EINVAL;
	sec_hex(payload_hash, 32, pl);
	sec_hex(prev_hash, 32, pv);
	n = snprintf(enc, sizeof(enc),
	    "bulwark-ledger-v1\norg %s\n"
	    "seq %lld\ntype %s\npayload %s\nprev %s\ntime %lld\n",
	    org_id, (long long)seq, type, pl, pv, (long long)time_us);
	if (n < 0 || (size_t)n >= sizeof(enc))
		return BW_EINVAL;
	return sec_sha256(enc, (size_t)n, out);
}

static const char ledger_sql_lock[] =
    "INSERT INTO ledger_heads (org_id) VALUES ($1) "
    "ON CONFLICT (org_id) DO UPDATE SET seq = ledger_heads.seq "
    "RETURNING seq, encode(hash, 'hex'), greatest(last_us, "
    "(extract(epoch FROM clock_timestamp()) * 1000000)::bigint)";
static const char ledger_sql_insert[] =
    "INSERT INTO ledger_events (org_id, seq, type, payload_hash, "
    "prev_hash, hash, created_at) VALUES ($1, $2, $3, decode($4, 'hex'), "
    "decode($5, 'hex'), decode($6, 'hex'), "
    "to_timestamp(0) + $7::bigint * interval '1 microsecond')";
static const char ledger_sql_head[] =
    "UPDATE ledger_heads SET seq = $2, hash = decode($3, 'hex'), "
    "last_us = $4, updated_at = now() WHERE org_id = $1";

/*
 * Appends one event inside the caller's transaction. The head row lock
 * (taken by the upsert) serializes the appends of one org until commit, so
 * seq never forks or skips; a failed transaction leaves no trace.
 */
enum bw_err
ledger_append_tx(struct db *db, const char *org_id, const char *type,
    const uint8_t payload_hash[32], struct ledger_entry *out)
{
	PGresult   *res = NULL;
	const char *p[7];
	uint8_t	    prev[32], hash[32];
	char	    seqs[24], times[24], pl[65], pv[65], hh[65];
	int64_t	    seq, t_us;
	enum bw_err er;

	if (db == NULL || !db_in_tx(db) || !jv_is_uuid_lc(org_id) ||
	    !ledger_type_ok(type) || payload_hash == NULL || out == NULL)
		return BW_EINVAL;
	p[0] = org_id;
	er = db_execp(db, "ledger_lock", ledger_sql_lock, 1, p, &res);
	if (er != BW_OK)
		return er;
	if (PQntuples(res) != 1 || db_i64(PQgetvalue(res, 0, 0), &seq) != 0 ||
	    sec_unhex(PQgetvalue(res, 0, 1), 64, prev, 32) != BW_OK ||
	    db_i64(PQgetvalue(res, 0, 2), &t_us) != 0) {
		log_kv(LL_ERROR, "ledger head unreadable", "org_id", org_id,
		    NULL);
		er = BW_EDB;
		goto out;
	}
	seq++;
	er = ledger_event_hash(org_id, seq, type, payload_hash, prev, t_us,
	    hash);
	if (er != BW_OK)
		goto out;
	snprintf(seqs, sizeof(seqs), "%lld", (long long)seq);
	snprintf(times, sizeof(times), "%lld", (long long)t_us);
	sec_hex(payload_hash, 32, pl);
	sec_hex(prev, 32, pv);
	sec_hex(hash, 32, hh);
	p[1] = seqs;
	p[2] = type;
	p[3] = pl;
	p[4] = pv;
	p[5] = hh;
	p[6] = times;
	er = db_execp(db, "ledger_insert", ledger_sql_insert, 7, p, NULL);
	if (er != BW_OK)
		goto out;
	p[1] = seqs;
	p[2] = hh;
	p[3] = times;
	er = db_execp(db, "ledger_head", ledger_sql_head, 4, p, NULL);
	if (er != BW_OK)
		goto out;
	out->seq = seq;
	memcpy(out->hash_hex, hh, sizeof(out->hash_hex));
out:
	PQclear(res);
	return er;
}

static const char ledger_sql_rows[] =
    "SELECT seq, type, encode(payload_hash, 'hex'), encode(prev_hash, "
    "'hex'), encode(hash, 'hex'), "
    "(extract(epoch FROM created_at) * 1000000)::bigint "
    "FROM ledger_events WHERE org_id = $1 AND seq >= $2 AND seq <= $3 "
    "ORDER BY seq LIMIT 5000"; /* LEDGER_BATCH */

/* Decodes row i of a ledger_sql_rows result. 0 or -1. */
static int
ledger_row_parse(PGresult *res, int i, struct ledger_row *r)
{
	const char *t = PQgetvalue(res, i, 1);

	if (db_i64(PQgetvalue(res, i, 0), &r->seq) != 0 ||
	    strlen(t) >= sizeof(r->type) ||
	    sec_unhex(PQgetvalue(res, i, 2), 64, r->payload, 32) != BW_OK ||
	    sec_unhex(PQgetvalue(res, i, 3), 64, r->prev, 32) != BW_OK ||
	    sec_unhex(PQgetvalue(res, i, 4), 64, r->hash, 32) != BW_OK ||
	    db_i64(PQgetvalue(res, i, 5), &r->time_us) != 0)
		return -1;
	memcpy(r->type, t, strlen(t) + 1);
	return 0;
}

/*
 * Walks the events of org over [from, to] in seq order: recomputes each
 * hash, checks seq continuity and each prev_hash against the hash
 * recomputed for the event before (the anchor for from > 1 is event
 * from - 1, recomputed). Records the first break in w and goes on
 * collecting stored hashes when w->hashes is set. Returns a db error only.
 */
enum bw_err
ledger_walk(struct db *db, const char *org_id, int64_t from, int64_t to,
    struct ledger_walk *w)
{
	PGresult	 *res = NULL;
	const char	 *p[3];
	char		  a[24], b[24];
	struct ledger_row row;
	uint8_t		  expect_prev[32], calc[32];
	int64_t		  next, start;
	int		  i, nt;
	enum bw_err	  er = BW_OK;

	memcpy(expect_prev, ledger_zero, 32);
	start = from;
	if (from > 1)
		start = from - 1; /* the anchor */
	next = start;
	p[0] = org_id;
	p[1] = a;
	p[2] = b;
	snprintf(b, sizeof(b), "%lld", (long long)to);
	for (;;) {
		snprintf(a, sizeof(a), "%lld", (long long)next);
		er = db_execp(db, "ledger_rows", ledger_sql_rows, 3, p, &res);
		if (er != BW_OK)
			return er;
		nt = PQntuples(res);
		for (i = 0; i < nt; i++) {
			if (ledger_row_parse(res, i, &row) != 0) {
				log_kv(LL_ERROR, "ledger row unreadable",
				    "org_id", org_id, NULL);
				PQclear(res);
				return BW_EDB;
			}
			if (row.seq != next) {
				/* A gap: the expected event is missing. */
				if (w->broken_at == 0 && next >= from) {
					w->broken_at = next;
					w->reason = "missing";
				}
			}
			next = row.seq + 1;
			if (ledger_event_hash(org_id, row.seq, row.type,
				row.payload, row.prev, row.time_us,
				calc) != BW_OK) {
				memset(calc, 0xff, 32);
			}
			if (row.seq >= from && w->broken_at == 0) {
				if (memcmp(calc, row.hash, 32) != 0) {
					w->broken_at = row.seq;
					w->reason = "hash_mismatch";
				} else if (memcmp(row.prev, expect_prev, 32) !=
					0 &&
				    (row.seq == 1 || start < row.seq)) {
					w->broken_at = row.seq;
					w->reason = "prev_mismatch";
				}
			}
			memcpy(expect_prev, calc, 32);
			if (row.seq >= from) {
				w->last_seq = row.seq;
				memcpy(w->last_hash, row.hash, 32);
				if (w->hashes != NULL) {
					if (w->nhashes >= w->maxhashes) {
						PQclear(res);
						return BW_ETOOBIG;
					}
					memcpy(w->hashes[w->nhashes++],
					    row.hash, 32);
				}
			}
		}
		PQclear(res);
		res = NULL;
		if (nt < LEDGER_BATCH || next > to)
			break;
	}
	/* Events missing at the end of the asked range. */
	if (w->broken_at == 0 && next <= to) {
		w->broken_at = next < from ? from : next;
		w->reason = "missing";
	}
	return BW_OK;
}

/* The head seq of org (0 when it has no events). */
static enum bw_err
ledger_head_seq(struct db *db, const char *org_id, int64_t *seq)
{
	PGresult   *res = NULL;
	const char *p[1] = { org_id };
	enum bw_err er;

	er = db_execp(db, "ledger_head_seq",
	    "SELECT seq FROM ledger_heads WHERE org_id = $1", 1, p, &res);
	if (er != BW_OK)
		return er;
	*seq = 0;
	if (PQntuples(res) == 1 && db_i64(PQgetvalue(res, 0, 0), seq) != 0)
		er = BW_EDB;
	PQclear(res);
	return er;
}

/*
 * Recomputes the chain of org over [from, to] (0 = first / head).
 * *out: {"status","first_seq","last_seq","head_hash"[,"broken_at",
 * "reason"]}; head_hash is the stored hash of the last event checked (null
 * when the range is empty). BW_EINVAL for a bad org id or range.
 */
enum bw_err
ledger_verify(struct db *db, const char *org_id, int64_t from, int64_t to,
    struct json_object **out)
{
	struct ledger_walk  w;
	struct json_object *o;
	int64_t		    head;
	char		    hx[65];
	enum bw_err	    er;

	if (db == NULL || !jv_is_uuid_lc(org_id) || from < 0 || to < 0 ||
	    out == NULL)
		return BW_EINVAL;
	if (from == 0)
		from = 1;
	er = ledger_head_seq(db, org_id, &head);
	if (er != BW_OK)
		return er;
	if (to == 0)
		to = head;
	if (to != 0 && to < from)
		return BW_EINVAL;
	memset(&w, 0, sizeof(w));
	if (to >= from) {
		er = ledger_walk(db, org_id, from, to, &w);
		if (er != BW_OK)
			return er;
	}
	o = json_object_new_object();
	json_object_object_add(o, "status",
	    json_object_new_string(w.broken_at == 0 ? "intact" : "broken"));
	json_object_object_add(o, "first_seq",
	    json_object_new_int64(to >= from ? from : 0));
	json_object_object_add(o, "last_seq", json_object_new_int64(to));
	if (w.last_seq > 0) {
		sec_hex(w.last_hash, 32, hx);
		json_object_object_add(o, "head_hash",
		    json_object_new_string(hx));
	} else
		json_object_object_add(o, "head_hash", NULL);
	if (w.broken_at != 0) {
		json_object_object_add(o, "broken_at",
		    json_object_new_int64(w.broken_at));
		json_object_object_add(o, "reason",
		    json_object_new_string(w.reason));
	}
	*out = o;
	return BW_OK;
}

/* The stored fields of some events of org (see ledger.h). */
enum bw_err
ledger_events_get(struct db *db, const char *org_id, const int64_t *seqs,
    size_t n, struct json_object **out)
{
	struct json_object *o, *e;
	struct ledger_row   row;
	struct buf	    arr;
	PGresult	   *res = NULL;
	const char	   *p[2];
	char		    hx[65], key[24];
	size_t		    i;
	int		    r;
	enum bw_err	    er = BW_OK;

	if (db == NULL || !jv_is_uuid_lc(org_id) || (n > 0 && seqs == NULL) ||
	    out == NULL)
		return BW_EINVAL;
	buf_init(&arr, n * 24 + 8);
	er = buf_addc(&arr, '{');
	for (i = 0; er == BW_OK && i < n; i++)
		er = buf_printf(&arr, "%s%lld", i > 0 ? "," : "",
		    (long long)seqs[i]);
	if (er == BW_OK)
		er = buf_addc(&arr, '}');
	if (er != BW_OK)
		goto out;
	p[0] = org_id;
	p[1] = buf_cstr(&arr);
	er = db_execp(db, "ledger_events_get",
	    "SELECT seq, type, encode(payload_hash, 'hex'), "
	    "encode(prev_hash, 'hex'), encode(hash, 'hex'), "
	    "(extract(epoch FROM created_at) * 1000000)::bigint "
	    "FROM ledger_events WHERE org_id = $1 AND seq = ANY ($2::bigint[]) "
	    "ORDER BY seq",
	    2, p, &res);
	if (er != BW_OK)
		goto out;
	o = json_object_new_object();
	for (r = 0; r < PQntuples(res); r++) {
		if (ledger_row_parse(res, r, &row) != 0) {
			json_object_put(o);
			er = BW_EDB;
			goto out;
		}
		e = json_object_new_object();
		json_object_object_add(e, "type",
		    json_object_new_string(row.type));
		sec_hex(row.payload, 32, hx);
		json_object_object_add(e, "payload_hash",
		    json_object_new_string(hx));
		sec_hex(row.prev, 32, hx);
		json_object_object_add(e, "prev_hash",
		    json_object_new_string(hx));
		json_object_object_add(e, "time_us",
		    json_object_new_int64(row.time_us));
		sec_hex(row.hash, 32, hx);
		json_object_object_add(e, "hash", json_object_new_string(hx));
		snprintf(key, sizeof(key), "%lld", (long long)row.seq);
		json_object_object_add(o, key, e);
	}
	*out = o;
out:
	PQclear(res);
	buf_free(&arr);
	return er;
}

enum bw_err
ledger_prom(struct db *db, struct buf *out)
{
	/* Appends so far from the heads (a row per org: its last seq, seqs
	 * start at 1 without gaps), never a count of the events. */
	static const char sql[] =
	    "SELECT (SELECT COALESCE(sum(seq), 0) FROM ledger_heads), "
	    "(SELECT count(*) FROM ledger_roots)";
	PGresult   *res = NULL;
	enum bw_err er;

	er = db_execp(db, "ledger_prom", sql, 0, NULL, &res);
	if (er != BW_OK)
		goto out;
	(void)buf_printf(out,
	    "# HELP bulwark_ledger_events Ledger events appended, all orgs.\n"
	    "# TYPE bulwark_ledger_events gauge\n"
	    "bulwark_ledger_events %s\n"
	    "# HELP bulwark_ledger_roots Daily Merkle roots computed and "
	    "signed, all orgs.\n"
	    "# TYPE bulwark_ledger_roots gauge\n"
	    "bulwark_ledger_roots %s\n",
	    PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1));
out:
	PQclear(res);
	return er;
}
