/* SPDX-License-Identifier: MIT */
/*
 * What the ledger files share (lib/evidence/ledger.c: the chain;
 * ledger_roots.c: the signed daily roots). Not for use outside them.
 */
#ifndef BW_LEDGER_INT_H
#define BW_LEDGER_INT_H

#include <stddef.h>
#include <stdint.h>

#include "core/db.h"
#include "core/err.h"

#define LEDGER_MAX_DAY	    (1 << 22) /* events of one org and day */
#define LEDGER_KEY_FILE_MAX 4096

/* What a walk over a seq range found. */
struct ledger_walk {
	int64_t	    last_seq;	   /* last row seen (0: none) */
	uint8_t	    last_hash[32]; /* its stored hash */
	int64_t	    broken_at;	   /* 0 when intact */
	const char *reason;	   /* static, when broken */
	uint8_t (*hashes)[32];	   /* when collecting, stored hashes */
	size_t nhashes, maxhashes;
};

/*
 * Walks the events of org over [from, to] in seq order: recomputes each
 * hash, checks seq continuity and each prev_hash against the hash
 * recomputed for the event before (the anchor for from > 1 is event
 * from - 1, recomputed). Records the first break in w and goes on
 * collecting stored hashes when w->hashes is set. Returns a db error only.
 */
enum bw_err ledger_walk(struct db *db, const char *org_id, int64_t from,
    int64_t to, struct ledger_walk *w);

#endif
