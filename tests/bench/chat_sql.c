/* SPDX-License-Identifier: MIT */
/*
 * The PostgreSQL part of a chat turn alone (dev/bench): per turn the
 * budget hold and its settlement as the chat path runs them (tenant set,
 * prepared): in the process's budget block (lib/chat/block.c: the call's
 * record, kept and written in batches between turns as a chat child does,
 * the block's take, renewals and return) with the stack's default block
 * settings, or, when no block covers the call, a hold of its own and
 * its settlement through lib/chat/budget.c; nothing else, at a given rate. dev/bench runs it at the rate the
 * stack's chat run reached, so that PostgreSQL's CPU per turn compares
 * with the same statements at the same pace: what is left is not SQL.
 *
 *	chat_sql CONNINFO ORG_ID RATE SECONDS
 *
 * RATE turns per second (0: as fast as it goes). Prints "<turns> <ms>";
 * exits 1 when a hold or a settlement failed.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "chat/block.h"
#include "chat/budget.h"
#include "core/clock.h"
#include "core/db.h"

int
main(int argc, char **argv)
{
	struct budget_settings	s;
	struct budget_ask	ask = { 13, 1, 512, 16, 120, NULL, NULL };
	struct budget_usage	u = { 1, 2, 0, 1 };
	struct budget_hold	h;
	struct timespec		ts;
	enum budget_verdict	v;
	struct db	       *db;
	static struct block_set blocks;
	bool			inblock;
	int64_t			t0, due, wait, n = 0, bad = 0, charged, spent;
	int64_t			calls;
	double			rate, secs;
	bool			settled;

	if (argc != 5) {
		fprintf(stderr,
		    "usage: chat_sql CONNINFO ORG_ID RATE SECONDS\n");
		return 2;
	}
	rate = atof(argv[3]);
	secs = atof(argv[4]);
	db = db_new(argv[1]);
	if (db == NULL || db_set_org(db, argv[2]) != BW_OK ||
	    budget_settings_get(db, argv[2], "gpt-4o", "gpt-4o-mini", &s) !=
		BW_OK) {
		fprintf(stderr, "chat_sql: cannot read the org's settings\n");
		return 1;
	}
	/* config.c's defaults (chat_block_*, chat_hold_ttl_s, ...); the
	 * calls per block as the bench's bulwark-fcgi has them. */
	blocks.cfg.calls = 16;
	if (getenv("BULWARK_CHAT_BLOCK_CALLS") != NULL &&
	    db_i64(getenv("BULWARK_CHAT_BLOCK_CALLS"), &calls) == BW_OK)
		blocks.cfg.calls = (int)calls;
	blocks.cfg.pct = 5;
	blocks.cfg.idle_ms = 2000;
	blocks.cfg.ttl_s = 120;
	blocks.cfg.rec_batch = 32;
	if (getenv("BULWARK_CHAT_BLOCK_RECORD_BATCH") != NULL &&
	    db_i64(getenv("BULWARK_CHAT_BLOCK_RECORD_BATCH"), &calls) == BW_OK)
		blocks.cfg.rec_batch = (int)calls;
	blocks.cfg.rec_ms = 200;
	blocks.cfg.owner = "chat_sql";
	t0 = clock_mono_ms();
	while (clock_mono_ms() - t0 < (int64_t)(secs * 1000)) {
		if (rate > 0) {
			/* One sleep to the turn's due time (a paced client). */
			due = t0 * 1000 + (int64_t)((double)n * 1e6 / rate);
			wait = due - clock_mono_us();
			if (wait > 0) {
				ts.tv_sec = (time_t)(wait / 1000000);
				ts.tv_nsec = (long)(wait % 1000000) * 1000;
				nanosleep(&ts, NULL);
			}
		}
		if (block_hold(db, &blocks, &s, &ask, &h, &inblock) != BW_OK)
			inblock = false;
		if (inblock) {
			if (block_settle(db, &blocks, argv[2], &h, &u, NULL,
				NULL, NULL, NULL, &charged) != BW_OK)
				bad++;
		} else if (budget_hold(db, &s, &ask, &h, &v) != BW_OK ||
		    v != BV_OK ||
		    budget_settle(db, argv[2], h.id, &h, &u, &settled, &charged,
			&spent) != BW_OK ||
		    !settled)
			bad++;
		n++;
		/* Between requests, as a chat child: kept records written. */
		(void)block_return_idle(db, &blocks, false);
	}
	(void)block_return_idle(db, &blocks, true);
	printf("%" PRId64 " %" PRId64 "\n", n, clock_mono_ms() - t0);
	budget_settings_clear(&s);
	db_free(db);
	return bad == 0 ? 0 : 1;
}
