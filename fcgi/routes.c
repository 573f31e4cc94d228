/* SPDX-License-Identifier: MIT */
/*
 * Bulwark's route table: what exists, who may call it, how big a body and
 * of which shape (the schemas fcgi/mw_input.c checks before a handler).
 */
#include "campaign/campaign.h"
#include "chat/chat.h"
#include "core/limits.h"
#include "evidence/export.h"
#include "handlers.h"
#include "money/credit.h"
#include "people/password.h"
#include "people/session.h"
#include "route.h"

#define NFIELDS(f) (sizeof(f) / sizeof((f)[0]))

/* POST /api/v1/bookings (fcgi/h_credits.c). */
static const struct jv_field fields_booking[] = {
	{ .name = "user_id",
	    .type = JV_STRING,
	    .required = 1,
	    .min = 1,
	    .max = CREDIT_USER_ID_MAX },
	{ .name = "class_id",
	    .type = JV_STRING,
	    .required = 1,
	    .min = 1,
	    .max = BW_MAX_CLASS_ID },
	{ .name = "credits",
	    .type = JV_INT,
	    .required = 1,
	    .min = 1,
	    .max = BW_MAX_CREDITS },
};

/* POST /api/v1/credit-reservations (fcgi/h_credits.c). */
static const struct jv_field fields_reservation[] = {
	{ .name = "user_id",
	    .type = JV_STRING,
	    .required = 1,
	    .min = 1,
	    .max = CREDIT_USER_ID_MAX },
	{ .name = "amount",
	    .type = JV_INT,
	    .required = 1,
	    .min = 1,
	    .max = BW_MAX_CREDITS },
	{ .name = "reservation_key",
	    .type = JV_STRING,
	    .required = 1,
	    .min = 1,
	    .max = BW_MAX_RESERVATION_KEY },
};

/*
 * POST /api/v1/exports (fcgi/h_exports.c): evidence_ids, or from and to;
 * the handler checks that exactly one form is given.
 */
static const struct jv_field fields_export[] = {
	{ .name = "evidence_ids",
	    .type = JV_ARRAY,
	    .min = 1,
	    .max = EXPORT_MAX_IDS,
	    .item_type = JV_UUID },
	{ .name = "from", .type = JV_RFC3339 },
	{ .name = "to", .type = JV_RFC3339 },
};

/* POST /api/v1/campaigns (fcgi/h_campaigns.c); numbers checked there. */
static const struct jv_field fields_campaign[] = {
	{ .name = "name",
	    .type = JV_STRING,
	    .required = 1,
	    .min = 1,
	    .max = CAMPAIGN_MAX_NAME },
	{ .name = "message",
	    .type = JV_STRING,
	    .required = 1,
	    .min = 1,
	    .max = CAMPAIGN_MAX_MESSAGE },
	{ .name = "recipients",
	    .type = JV_ARRAY,
	    .required = 1,
	    .min = 1,
	    .max = CAMPAIGN_MAX_RECIPIENTS,
	    .item_type = JV_STRING },
	{ .name = "send_at", .type = JV_RFC3339 },
	{ .name = "user_id",
	    .type = JV_STRING,
	    .min = 1,
	    .max = CREDIT_USER_ID_MAX },
};

/* POST /api/v1/opt-outs (fcgi/h_campaigns.c). */
static const struct jv_field fields_optout[] = {
	{ .name = "phone",
	    .type = JV_STRING,
	    .required = 1,
	    .min = 1,
	    .max = CAMPAIGN_PHONE_IN_MAX },
};

/* POST /api/v1/client-errors (fcgi/h_errors.c): a browser's report. */
static const struct jv_field fields_client_error[] = {
	{ .name = "message",
	    .type = JV_STRING,
	    .required = 1,
	    .min = 1,
	    .max = 1024 },
	{ .name = "source", .type = JV_STRING, .max = 2048 },
	{ .name = "line", .type = JV_INT, .min = 0, .max = 100000000 },
	{ .name = "column", .type = JV_INT, .min = 0, .max = 100000000 },
	{ .name = "stack", .type = JV_STRING, .max = 8192 },
	{ .name = "url", .type = JV_STRING, .max = 2048 },
	{ .name = "user_agent", .type = JV_STRING, .max = 512 },
};
static const struct rl_rule rate_client_errors[] = {
	{ .scope = RL_IP, .limit = 60, .window_s = 60 },
	{ .scope = RL_ORG, .limit = 600, .window_s = 60 },
	{ .limit = 0 },
};
/* POST /api/v1/auth/login and invite/accept (fcgi/h_auth.c). */
static const struct jv_field fields_login[] = {
	{ .name = "email",
	    .type = JV_STRING,
	    .required = 1,
	    .min = 1,
	    .max = SESSION_EMAIL_MAX },
	{ .name = "password",
	    .type = JV_STRING,
	    .required = 1,
	    .min = 1,
	    .max = PASSWORD_MAX_LEN },
};
static const struct jv_field fields_invite_accept[] = {
	{ .name = "token",
	    .type = JV_STRING,
	    .required = 1,
	    .min = 1,
	    .max = 64 },
	{ .name = "password",
	    .type = JV_STRING,
	    .required = 1,
	    .min = 1,
	    .max = PASSWORD_MAX_LEN },
};

const char *const route_chat_channels[] = { "web", "line", "api", NULL };

/* POST /api/v1/chat "state": the pipeline fields, "" clears one. */
#define CHAT_STATE_FIELD(n)                                                  \
	{                                                                    \
		.name = (n), .type = JV_STRING, .max = CHAT_MAX_STATE_FIELD, \
		.check = conv_field_check                                    \
	}
static const struct jv_field fields_chat_state[] = {
	CHAT_STATE_FIELD("service"),
	CHAT_STATE_FIELD("area"),
	CHAT_STATE_FIELD("stage"),
	CHAT_STATE_FIELD("preference"),
};

/* POST /api/v1/chat (fcgi/h_chat.c). */
static const struct jv_field fields_chat[] = {
	{ .name = "channel",
	    .type = JV_ENUM,
	    .required = 1,
	    .enum_vals = route_chat_channels },
	{ .name = "user_id",
	    .type = JV_STRING,
	    .required = 1,
	    .min = 1,
	    .max = CHAT_MAX_USER },
	{ .name = "message",
	    .type = JV_STRING,
	    .required = 1,
	    .min = 1,
	    .max = CHAT_MAX_MESSAGE },
	{ .name = "state",
	    .type = JV_OBJECT,
	    .sub = fields_chat_state,
	    .nsub = NFIELDS(fields_chat_state) },
};

/* Default limits (CONTRACT.md "Rate limits"); org_rate_limits overrides. */
static const struct rl_rule rate_chat[] = {
	{ .scope = RL_ORG, .limit = 30, .window_s = 60 },
	{ .scope = RL_IP, .limit = 5, .window_s = 10 },
	{ .limit = 0 },
};
static const struct rl_rule rate_exports[] = {
	{ .scope = RL_ORG, .limit = 10, .window_s = 3600 },
	{ .limit = 0 },
};
static const struct rl_rule rate_campaigns[] = {
	{ .scope = RL_ORG, .limit = 60, .window_s = 60 },
	{ .limit = 0 },
};
static const struct rl_rule rate_campaign_reads[] = {
	{ .scope = RL_ORG, .limit = 600, .window_s = 60 },
	{ .limit = 0 },
};
static const struct rl_rule rate_evidence[] = {
	{ .scope = RL_ORG, .limit = 100, .window_s = 86400 },
	{ .limit = 0 },
};
static const struct rl_rule rate_verify[] = {
	{ .scope = RL_IP, .limit = 30, .window_s = 60 },
	{ .limit = 0 },
};
/* The console refreshes every 10 s; several tabs and owners fit. */
static const struct rl_rule rate_admin[] = {
	{ .scope = RL_ORG, .limit = 120, .window_s = 60 },
	{ .limit = 0 },
};
static const struct rl_rule rate_auth[] = {
	{ .scope = RL_IP, .limit = 60, .window_s = 60 },
	{ .limit = 0 },
};
static const struct rl_rule rate_health_full[] = {
	{ .scope = RL_IP, .limit = 30, .window_s = 60 },
	{ .limit = 0 },
};

const struct route routes[] = {
	{ .method = "GET",
	    .pattern = "/health",
	    .name = "health",
	    .auth = RA_NONE,
	    .fn = h_health },
	{ .method = "GET",
	    .pattern = "/health/full",
	    .name = "health_full",
	    .auth = RA_OPTIONAL,
	    .fn = h_health_full,
	    .flags = ROUTE_RATE_OPEN,
	    .rate = rate_health_full },
	{ .method = "GET",
	    .pattern = "/metrics",
	    .name = "metrics",
	    .auth = RA_NONE,
	    .fn = h_metrics },
	{ .method = "GET",
	    .pattern = "/api/v1/whoami",
	    .name = "whoami",
	    .auth = RA_KEY,
	    .min_role = AR_MEMBER,
	    .fn = h_whoami },

	/* Users' cookie sessions (fcgi/h_auth.c, docs/api/auth.md). */
	{ .method = "POST",
	    .pattern = "/api/v1/auth/login",
	    .name = "auth_login",
	    .auth = RA_NONE,
	    .max_body = 4096,
	    .fn = h_auth_login,
	    .rate = rate_auth,
	    .fields = fields_login,
	    .nfields = NFIELDS(fields_login) },
	{ .method = "GET",
	    .pattern = "/api/v1/auth/session",
	    .name = "auth_session",
	    .auth = RA_SESSION,
	    .min_role = AR_MEMBER,
	    .fn = h_auth_session },
	{ .method = "POST",
	    .pattern = "/api/v1/auth/logout",
	    .name = "auth_logout",
	    .auth = RA_SESSION,
	    .min_role = AR_MEMBER,
	    .max_body = ROUTE_ACTION_MAX_BODY,
	    .fn = h_auth_logout,
	    .flags = ROUTE_ACTION },
	{ .method = "POST",
	    .pattern = "/api/v1/auth/invite/accept",
	    .name = "auth_invite_accept",
	    .auth = RA_NONE,
	    .max_body = 4096,
	    .fn = h_auth_invite_accept,
	    .rate = rate_auth,
	    .fields = fields_invite_accept,
	    .nfields = NFIELDS(fields_invite_accept) },

	/* Money (fcgi/h_credits.c, fcgi/h_webhooks.c). */
	{ .method = "GET",
	    .pattern = "/api/v1/accounts/{}",
	    .name = "account_get",
	    .auth = RA_KEY,
	    .min_role = AR_MEMBER,
	    .fn = h_credits_account },
	{ .method = "POST",
	    .pattern = "/api/v1/bookings",
	    .name = "booking",
	    .auth = RA_KEY,
	    .min_role = AR_MEMBER,
	    .max_body = 16384,
	    .fn = h_credits_book,
	    .flags = ROUTE_IDEMPOTENT,
	    .fields = fields_booking,
	    .nfields = NFIELDS(fields_booking) },
	{ .method = "POST",
	    .pattern = "/api/v1/credit-reservations",
	    .name = "reservation",
	    .auth = RA_KEY,
	    .min_role = AR_MEMBER,
	    .max_body = 16384,
	    .fn = h_credits_reserve,
	    .flags = ROUTE_IDEMPOTENT,
	    .fields = fields_reservation,
	    .nfields = NFIELDS(fields_reservation) },
	{ .method = "POST",
	    .pattern = "/api/v1/credit-reservations/{}/commit",
	    .name = "reservation_commit",
	    .auth = RA_KEY,
	    .min_role = AR_MEMBER,
	    .max_body = ROUTE_ACTION_MAX_BODY,
	    .fn = h_credits_commit,
	    .flags = ROUTE_ACTION },
	{ .method = "POST",
	    .pattern = "/api/v1/credit-reservations/{}/release",
	    .name = "reservation_release",
	    .auth = RA_KEY,
	    .min_role = AR_MEMBER,
	    .max_body = ROUTE_ACTION_MAX_BODY,
	    .fn = h_credits_release,
	    .flags = ROUTE_ACTION },
	{ .method = "POST",
	    .pattern = "/api/v1/webhooks/{}/{}",
	    .name = "webhook",
	    .auth = RA_NONE,
	    .max_body = BW_MAX_BODY,
	    .fn = h_webhook },

	/* Evidence and exports (fcgi/h_evidence.c, fcgi/h_exports.c). */
	{ .method = "POST",
	    .pattern = "/api/v1/evidence",
	    .name = "evidence",
	    .auth = RA_KEY,
	    .min_role = AR_MEMBER,
	    .max_body = BW_MAX_EVIDENCE,
	    .fn = h_evidence_create,
	    .flags = ROUTE_IDEMPOTENT | ROUTE_RAW_BODY,
	    .rate = rate_evidence },
	{ .method = "POST",
	    .pattern = "/api/v1/exports",
	    .name = "export_create",
	    .auth = RA_KEY,
	    .min_role = AR_MEMBER,
	    .max_body = 65536,
	    .fn = h_exports_create,
	    .flags = ROUTE_IDEMPOTENT,
	    .rate = rate_exports,
	    .fields = fields_export,
	    .nfields = NFIELDS(fields_export) },
	{ .method = "GET",
	    .pattern = "/api/v1/exports/{}",
	    .name = "export_get",
	    .auth = RA_KEY,
	    .min_role = AR_MEMBER,
	    .fn = h_exports_get },
	{ .method = "POST",
	    .pattern = "/api/v1/exports/{}/cancel",
	    .name = "export_cancel",
	    .auth = RA_KEY,
	    .min_role = AR_MEMBER,
	    .max_body = ROUTE_ACTION_MAX_BODY,
	    .fn = h_exports_cancel,
	    .flags = ROUTE_ACTION },
	{ .method = "GET",
	    .pattern = "/api/v1/exports/{}/download",
	    .name = "export_download",
	    .auth = RA_KEY,
	    .min_role = AR_MEMBER,
	    .fn = h_exports_download },
	{ .method = "GET",
	    .pattern = "/api/v1/metrics/exports",
	    .name = "export_metrics",
	    .auth = RA_KEY,
	    .min_role = AR_ADMIN,
	    .fn = h_exports_metrics },
	{ .method = "GET",
	    .pattern = "/api/v1/public/verify/{}",
	    .name = "public_verify",
	    .auth = RA_NONE,
	    .fn = h_public_verify,
	    .rate = rate_verify },
	{ .method = "GET",
	    .pattern = "/api/v1/public/ledger-keys",
	    .name = "ledger_keys",
	    .auth = RA_NONE,
	    .fn = h_public_ledger_keys },

	/* SMS campaigns and opt-outs (fcgi/h_campaigns.c). */
	{ .method = "POST",
	    .pattern = "/api/v1/campaigns",
	    .name = "campaign_create",
	    .auth = RA_KEY,
	    .min_role = AR_MEMBER,
	    .max_body = CAMPAIGN_MAX_BODY,
	    .fn = h_campaigns_create,
	    .flags = ROUTE_IDEMPOTENT,
	    .rate = rate_campaigns,
	    .fields = fields_campaign,
	    .nfields = NFIELDS(fields_campaign) },
	{ .method = "GET",
	    .pattern = "/api/v1/campaigns",
	    .name = "campaign_list",
	    .auth = RA_KEY,
	    .min_role = AR_MEMBER,
	    .fn = h_campaigns_list,
	    .rate = rate_campaign_reads },
	{ .method = "GET",
	    .pattern = "/api/v1/campaigns/{}",
	    .name = "campaign_get",
	    .auth = RA_KEY,
	    .min_role = AR_MEMBER,
	    .fn = h_campaigns_get,
	    .rate = rate_campaign_reads },
	{ .method = "POST",
	    .pattern = "/api/v1/campaigns/{}/send",
	    .name = "campaign_send",
	    .auth = RA_KEY,
	    .min_role = AR_MEMBER,
	    .max_body = ROUTE_ACTION_MAX_BODY,
	    .fn = h_campaigns_send,
	    .flags = ROUTE_ACTION,
	    .rate = rate_campaigns },
	{ .method = "POST",
	    .pattern = "/api/v1/campaigns/{}/cancel",
	    .name = "campaign_cancel",
	    .auth = RA_KEY,
	    .min_role = AR_MEMBER,
	    .max_body = ROUTE_ACTION_MAX_BODY,
	    .fn = h_campaigns_cancel,
	    .flags = ROUTE_ACTION,
	    .rate = rate_campaigns },
	{ .method = "POST",
	    .pattern = "/api/v1/opt-outs",
	    .name = "optout_create",
	    .auth = RA_KEY,
	    .min_role = AR_MEMBER,
	    .max_body = 4096,
	    .fn = h_optouts_create,
	    .rate = rate_campaigns,
	    .fields = fields_optout,
	    .nfields = NFIELDS(fields_optout) },

	/* The owner's overview (fcgi/h_admin.c). */
	{ .method = "GET",
	    .pattern = "/api/v1/admin/overview",
	    .name = "admin_overview",
	    .auth = RA_KEY,
	    .min_role = AR_OWNER,
	    .fn = h_admin_overview,
	    .rate = rate_admin },

	/* Errors (fcgi/h_errors.c, docs/api/errors.md). */
	{ .method = "POST",
	    .pattern = "/api/v1/client-errors",
	    .name = "client_error",
	    .auth = RA_OPTIONAL,
	    .max_body = 16384,
	    .fn = h_errors_client,
	    .rate = rate_client_errors,
	    .fields = fields_client_error,
	    .nfields = NFIELDS(fields_client_error) },
	{ .method = "GET",
	    .pattern = "/api/v1/admin/errors",
	    .name = "admin_errors",
	    .auth = RA_KEY,
	    .min_role = AR_OWNER,
	    .fn = h_errors_list },
	{ .method = "GET",
	    .pattern = "/api/v1/admin/errors/{}",
	    .name = "admin_error_get",
	    .auth = RA_KEY,
	    .min_role = AR_OWNER,
	    .fn = h_errors_get },

	/* Chat (fcgi/h_chat.c). */
	{ .method = "POST",
	    .pattern = "/api/v1/chat",
	    .name = "chat",
	    .auth = RA_KEY,
	    .min_role = AR_MEMBER,
	    .max_body = 65536,
	    .flags = ROUTE_RATE_RIDES,
	    .fn = h_chat,
	    .rate = rate_chat,
	    .fields = fields_chat,
	    .nfields = NFIELDS(fields_chat) },
	{ .method = "GET",
	    .pattern = "/api/v1/chat/sessions/{}/{}",
	    .name = "chat_session_get",
	    .auth = RA_KEY,
	    .min_role = AR_MEMBER,
	    .fn = h_chat_session_get },
	{ .method = "DELETE",
	    .pattern = "/api/v1/chat/sessions/{}/{}",
	    .name = "chat_session_delete",
	    .auth = RA_KEY,
	    .min_role = AR_MEMBER,
	    .fn = h_chat_session_delete },
};

const size_t nroutes = sizeof(routes) / sizeof(routes[0]);
