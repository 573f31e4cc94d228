/* SPDX-License-Identifier: MIT */
/*
 * Test driver for tests/integration/campaign_dlr.sh: one SMS delivery
 * report stored and applied exactly as POST /api/v1/webhooks/sms/{org}
 * does (webhook_apply_tx() with the campaign effect of fcgi/h_webhooks.c),
 * whose transaction then stays open for HOLD_MS before it commits: the
 * slow webhook transaction that raced the sender's record of the same
 * message id (sql/0031_sms_record.sql).
 *
 *   dlr_hold -c CONFIG ORG_ID MESSAGE_ID STATUS TS_MS HOLD_MS
 *
 * Prints "applied <changed>" once the report is applied (before the hold)
 * and "committed" after the commit; exits 0 when it committed.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "campaign/campaign.h"
#include "core/config.h"
#include "core/db.h"
#include "core/log.h"
#include "money/webhook.h"

struct hold {
	struct wh_event ev;
	long		hold_ms;
	bool		changed;
};

/* The campaign effect, as fcgi/h_webhooks.c passes it. */
static enum bw_err
hold_sms_effect(struct db *db, const char *org_id, const struct wh_event *ev,
    void *arg)
{
	struct hold *h = arg;

	return campaign_dlr_apply_tx(db, org_id, ev->message_id, &h->changed);
}

static const char *hold_org;

static enum bw_err
hold_fn(struct db *db, void *arg)
{
	struct hold	      *h = arg;
	struct webhook_effects fx = { .sms = hold_sms_effect, .arg = h };
	struct webhook_result  res;
	struct timespec	       ts;
	enum bw_err	       er;

	h->changed = false;
	er = webhook_apply_tx(db, hold_org, WS_STDWEBHOOKS, &h->ev, 1, &fx,
	    &res);
	if (er != BW_OK)
		return er;
	printf("applied %s\n", h->changed ? "1" : "0");
	fflush(stdout);
	ts.tv_sec = h->hold_ms / 1000;
	ts.tv_nsec = (h->hold_ms % 1000) * 1000000L;
	nanosleep(&ts, NULL);
	return BW_OK;
}

int
main(int argc, char **argv)
{
	struct config cfg;
	struct hold   h;
	struct db    *db;
	char	      err[256], id[96];
	enum bw_err   er;

	if (argc != 8 || strcmp(argv[1], "-c") != 0) {
		fprintf(stderr,
		    "usage: dlr_hold -c CONFIG ORG_ID MESSAGE_ID "
		    "STATUS TS_MS HOLD_MS\n");
		return 2;
	}
	if (config_load(&cfg, argv[2], err, sizeof(err)) != BW_OK) {
		fprintf(stderr, "dlr_hold: %s\n", err);
		return 2;
	}
	log_init("dlr_hold", LL_WARN);
	hold_org = argv[3];
	memset(&h, 0, sizeof(h));
	snprintf(id, sizeof(id), "msg_hold_%s_%s", argv[5], argv[4]);
	h.ev.id = id;
	h.ev.type = "message.status";
	h.ev.action = WA_SMS;
	h.ev.message_id = argv[4];
	h.ev.status = argv[5];
	h.ev.ts_ms = strtoll(argv[6], NULL, 10);
	h.hold_ms = strtol(argv[7], NULL, 10);
	db = db_new(cfg.database_url);
	if (db == NULL)
		return 1;
	er = db_tx(db, false, hold_fn, &h);
	db_free(db);
	config_free(&cfg);
	if (er != BW_OK) {
		fprintf(stderr, "dlr_hold: %s\n", bw_strerror(er));
		return 1;
	}
	printf("committed\n");
	return 0;
}
