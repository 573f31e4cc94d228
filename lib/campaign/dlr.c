/* SPDX-License-Identifier: MIT */
/*
 * Delivery reports applied to recipients. The webhook store keeps the
 * newest status of each (org, message id) in sms_deliveries
 * (lib/money/webhook.c: newest provider time wins, replays change
 * nothing); this moves the recipient that has that message id forward
 * along pending 0 < sent 1 < delivered | undelivered | failed 2, never
 * back, within the same org only. A report that came before the send
 * recorded its message id waits in sms_deliveries and is applied by the
 * sender when it records the id (sender.c). The record and the apply of
 * one (org, message id) serialize on an advisory lock
 * (sql/0031_sms_record.sql says why): the apply takes it before it reads,
 * inside the webhook's transaction, so it is held until that commits.
 */
#include <string.h>

#include "campaign/campaign.h"
#include "core/jv.h"

/* clang-format off */
static const char dlr_sql_apply[] =
    "WITH d AS (SELECT CASE status WHEN 'delivered' THEN 'delivered' "
    " WHEN 'undelivered' THEN 'undelivered' WHEN 'failed' THEN 'failed' "
    " WHEN 'rejected' THEN 'failed' WHEN 'expired' THEN 'undelivered' "
    " ELSE 'sent' END AS st FROM sms_deliveries "
    " WHERE org_id = $1::uuid AND message_id = $2) "
    "UPDATE campaign_recipients r SET state = d.st, "
    "state_changes = r.state_changes + 1, updated_at = now() FROM d "
    "WHERE r.org_id = $1::uuid AND r.provider_message_id = $2 AND "
    "(CASE d.st WHEN 'sent' THEN 1 ELSE 2 END) > "
    "(CASE r.state WHEN 'sent' THEN 1 WHEN 'delivered' THEN 2 "
    " WHEN 'undelivered' THEN 2 WHEN 'failed' THEN 2 ELSE 0 END) "
    "RETURNING r.state";
/* clang-format on */

enum bw_err
campaign_dlr_apply_tx(struct db *db, const char *org_id, const char *message_id,
    bool *changed)
{
	const char *p[2] = { org_id, message_id };
	PGresult   *res = NULL;
	enum bw_err er;

	*changed = false;
	if (org_id == NULL || !jv_is_uuid(org_id, strlen(org_id)) ||
	    message_id == NULL || message_id[0] == '\0' || !db_in_tx(db))
		return BW_EINVAL;
	er = db_xact_lock(db, CAMPAIGN_LOCK_MSG,
	    db_lock_key(org_id, message_id));
	if (er != BW_OK)
		return er;
	er = db_execp(db, "dlr_apply", dlr_sql_apply, 2, p, &res);
	if (er == BW_OK)
		*changed = PQntuples(res) > 0;
	PQclear(res);
	return er;
}
