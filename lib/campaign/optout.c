/* SPDX-License-Identifier: MIT */
/*
 * The org's opted-out numbers (sms_opt_outs): POST /api/v1/opt-outs and an
 * inbound "STOP" through the SMS webhook. A number opted out is never sent
 * to again: its pending recipients are marked opted_out at once, and the
 * sender checks the list again right before each send (sender.c).
 */
#include <string.h>

#include "campaign/campaign.h"
#include "core/jv.h"
#include "core/log.h"

/* clang-format off */
static const char opt_sql_ins[] =
    "INSERT INTO sms_opt_outs (org_id, phone, source) "
    "VALUES ($1::uuid, $2, $3) ON CONFLICT DO NOTHING";
static const char opt_sql_mark[] =
    "UPDATE campaign_recipients SET state = 'opted_out', "
    "state_changes = state_changes + 1, updated_at = now() "
    "WHERE org_id = $1::uuid AND phone = $2 AND state = 'pending' AND "
    "provider_message_id IS NULL";
/* clang-format on */

enum bw_err
campaign_optout_add_tx(struct db *db, const char *org_id, const char *phone,
    const char *source, bool *created)
{
	char	    num[CAMPAIGN_E164_MAX + 1];
	const char *p[3];
	PGresult   *res = NULL;
	enum bw_err er;

	*created = false;
	if (org_id == NULL || !jv_is_uuid(org_id, strlen(org_id)) ||
	    source == NULL || e164_normalize(phone, num) != NULL)
		return BW_EINVAL;
	p[0] = org_id;
	p[1] = num;
	p[2] = source;
	er = db_execp(db, "opt_ins", opt_sql_ins, 3, p, &res);
	if (er != BW_OK)
		return er;
	*created = db_rows(res) == 1;
	PQclear(res);
	er = db_execp(db, "opt_mark", opt_sql_mark, 2, p, NULL);
	if (er == BW_OK && *created)
		log_kv(LL_INFO, "sms opt-out added", "source", source, NULL);
	return er;
}

/* Arguments of campaign_optout_add()'s transaction. */
struct opt_arg {
	const char *org_id, *phone, *source;
	bool	    created;
};

static enum bw_err
opt_fn(struct db *db, void *arg)
{
	struct opt_arg *a = arg;

	return campaign_optout_add_tx(db, a->org_id, a->phone, a->source,
	    &a->created);
}

enum bw_err
campaign_optout_add(struct db *db, const char *org_id, const char *phone,
    const char *source, bool *created)
{
	struct opt_arg a = { org_id, phone, source, false };
	char	       num[CAMPAIGN_E164_MAX + 1];
	enum bw_err    er;

	if (e164_normalize(phone, num) != NULL)
		return BW_EINVAL;
	er = db_tx(db, false, opt_fn, &a);
	if (er == BW_OK)
		*created = a.created;
	return er;
}
