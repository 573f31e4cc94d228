/* SPDX-License-Identifier: MIT */
/* Every handler of bulwark-fcgi: one h_<area>_<action> per route. */
#ifndef BW_HANDLERS_H
#define BW_HANDLERS_H

#include "req.h"

void h_health(struct req *);
void h_health_full(struct req *);
void h_metrics(struct req *);
void h_whoami(struct req *);

/* fcgi/h_credits.c */
void h_credits_account(struct req *);
void h_credits_book(struct req *);
void h_credits_reserve(struct req *);
void h_credits_commit(struct req *);
void h_credits_release(struct req *);
/* fcgi/h_webhooks.c */
void h_webhook(struct req *);
/* fcgi/h_evidence.c */
void h_evidence_create(struct req *);
/* fcgi/h_exports.c */
void h_exports_create(struct req *);
void h_exports_get(struct req *);
void h_exports_cancel(struct req *);
void h_exports_download(struct req *);
void h_exports_metrics(struct req *);
/* fcgi/h_public_verify.c */
void h_public_verify(struct req *);
/* Registers the verification counters (before fork). */
int h_public_metrics_register(void);
/* fcgi/h_public_ledger_keys.c */
void h_public_ledger_keys(struct req *);
/* fcgi/h_chat.c */
/* fcgi/h_campaigns.c */
void h_campaigns_create(struct req *);
void h_campaigns_send(struct req *);
void h_campaigns_get(struct req *);
void h_campaigns_list(struct req *);
void h_campaigns_cancel(struct req *);
void h_optouts_create(struct req *);
/* fcgi/h_webhooks.c: its series (bulwark_webhook_events_failed_total,
 * bulwark_sms_delivery_reports_total), before fork(). */
int h_webhooks_metrics_register(void);

/* fcgi/h_admin.c */
void h_admin_overview(struct req *);
/* fcgi/h_auth.c */
void h_auth_login(struct req *);
void h_auth_session(struct req *);
void h_auth_logout(struct req *);
void h_auth_invite_accept(struct req *);

void h_chat(struct req *);
void h_chat_session_get(struct req *);
void h_chat_session_delete(struct req *);

/* fcgi/h_errors.c: the routes, and bulwark-fcgi's own errors recorded
 * after the answer (5xx, crashes the master spooled). */
struct child;
void h_errors_client(struct req *);
void h_errors_list(struct req *);
void h_errors_get(struct req *);
void h_errors_record_5xx(struct req *);
void h_errors_drain_crashes(struct child *);
int  h_errors_metrics_register(void); /* before fork() */

#endif
