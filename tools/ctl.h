/* SPDX-License-Identifier: MIT */
/*
 * What bulwarkctl's subcommand files share: the context, output helpers
 * and the command rows each area contributes to the table in bulwarkctl.c.
 * An area adds its commands in tools/ctl_<area>.c and lists them in its
 * CTL_<AREA>_CMDS macro below.
 */
#ifndef BW_CTL_H
#define BW_CTL_H

#include <stddef.h>
#include <stdio.h>

#include <json-c/json.h>

#include "core/config.h"
#include "core/db.h"
#include "core/err.h"

struct rds;

struct ctl {
	struct config cfg;
	struct db    *db;
	struct rds   *rds; /* opened by ctl_bump() */
};

struct cmd {
	const char *name; /* "key create" */
	const char *usage;
	int (*fn)(struct ctl *, int argc, char **argv);
};

/* Prints obj (consumed) as one JSON line on stdout (--human: for people). */
void ctl_emit(struct json_object *obj);
/* tools/ctl_human.c: obj as lines and tables (--human). */
void ctl_human_print(FILE *f, struct json_object *obj);
/*
 * A progress line of a long command on stderr, only when stderr is a
 * terminal (each call replaces the last; ctl_emit() and ctl_fail() clear
 * it). Scripts and logs see nothing.
 */
void ctl_progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void ctl_progress_end(void);
/* "bulwarkctl: what: error" on stderr; returns exit status 1. */
int ctl_fail(const char *what, enum bw_err er);
/* Opens c->db from the config. Returns 0 or an exit status. */
int ctl_connect(struct ctl *c);
/*
 * Parses "--name value" pairs of argv; vals[i] gets the value of names[i].
 * Returns 0, or 2 (after a message) on an unknown or valueless flag.
 */
int ctl_flags(int argc, char **argv, const char *const *names,
    const char **vals, size_t n);
/*
 * Parses s whole as a base-10 integer in [min, max] (an optional '-', then
 * digits only: no space, no '+'). Returns 0 with *out set, or -1.
 */
int ctl_num(const char *s, long long min, long long max, long long *out);

/* tools/ctl_webhook.c: webhook secrets; tools/ctl_credits.c: credit ledger. */
int ctl_webhook_secret_set(struct ctl *, int, char **);
/* tools/ctl_credits.c: the credit ledger (check, operator grants). */
int ctl_ledger_check(struct ctl *, int, char **);
int ctl_credits_grant(struct ctl *, int, char **);
int ctl_credits_capture(struct ctl *, int, char **);
/* tools/ctl_campaign.c: SMS campaigns. */
int ctl_campaign_show(struct ctl *, int, char **);
int ctl_campaign_list(struct ctl *, int, char **);
int ctl_campaign_reconcile(struct ctl *, int, char **);
#define CTL_CAMPAIGN_CMDS                                                   \
	{ "campaign show", "campaign show --org ID --id ID",                \
		ctl_campaign_show },                                        \
	    { "campaign list",                                              \
		    "campaign list --org ID [--limit N] [--cursor ID]",     \
		    ctl_campaign_list },                                    \
	    { "campaign reconcile", "campaign reconcile [--stuck-after S]", \
		    ctl_campaign_reconcile },

#define CTL_MONEY_CMDS                                                       \
	{ "webhook-secret set",                                              \
		"webhook-secret set --org ID --provider "                    \
		"stripe|square|line|sms --secret S [--url U]",               \
		ctl_webhook_secret_set },                                    \
	    { "ledger check", "ledger check [--org ID]", ctl_ledger_check }, \
	    { "credits grant",                                               \
		    "credits grant --org ID --user U --amount N "            \
		    "--anchor A",                                            \
		    ctl_credits_grant },                                     \
	    { "credits capture",                                             \
		    "credits capture --org ID --reservation ID --key K "     \
		    "[--capture N] [--return M]",                            \
		    ctl_credits_capture },

/* tools/ctl_ledger.c: the evidence ledger; tools/ctl_verify_export.c. */
int ctl_ledger_verify(struct ctl *, int, char **);
int ctl_ledger_roots(struct ctl *, int, char **);
int ctl_ledger_keys(struct ctl *, int, char **);
int ctl_ledger_keygen(struct ctl *, int, char **);
int ctl_ledger_pubkey(struct ctl *, int, char **);
int ctl_evidence_sweep(struct ctl *, int, char **);
int ctl_verify_export(struct ctl *, int, char **);
#define CTL_LEDGER_CMDS                                                  \
	{ "ledger verify", "ledger verify --org ID [--from N --to M]",   \
		ctl_ledger_verify },                                     \
	    { "ledger roots",                                            \
		    "ledger roots [--before YYYY-MM-DD] "                \
		    "[--since YYYY-MM-DD]",                              \
		    ctl_ledger_roots },                                  \
	    { "ledger keys", "ledger keys", ctl_ledger_keys },           \
	    { "ledger keygen", "ledger keygen", ctl_ledger_keygen },     \
	    { "ledger pubkey", "ledger pubkey", ctl_ledger_pubkey },     \
	    { "evidence sweep", "evidence sweep [--older-than SECONDS]", \
		    ctl_evidence_sweep },                                \
	    { "verify-export", "verify-export FILE.tar [--keys FILE]",   \
		    ctl_verify_export },

/* tools/ctl_chat.c: budgets, prices, system prompts. */
int ctl_budget_set(struct ctl *, int, char **);
int ctl_price_set(struct ctl *, int, char **);
int ctl_prompt_set(struct ctl *, int, char **);
#define CTL_CHAT_CMDS                                                         \
	{ "budget set",                                                       \
		"budget set --org ID --daily-micros N [--soft-pct 80] "       \
		"[--fallback-model M] [--primary-model M] [--no-hard-stop] "  \
		"[--no-downgrade] [--timezone TZ]",                           \
		ctl_budget_set },                                             \
	    { "price set",                                                    \
		    "price set --model M --input-micros-per-mtok N "          \
		    "--output-micros-per-mtok N "                             \
		    "[--prompt-bytes-per-token K] "                           \
		    "[--prompt-tokens-per-message M]",                        \
		    ctl_price_set },                                          \
	    { "prompt set",                                                   \
		    "prompt set --org ID [--system-prompt TEXT] "             \
		    "[--fallback-reply TEXT] [--org-cap N] [--line-token T]", \
		    ctl_prompt_set },

/* tools/ctl_rate.c: per-org rate-limit overrides. */
int ctl_ratelimit_set(struct ctl *, int, char **);
#define CTL_RATE_CMDS                                                        \
	{ "ratelimit set",                                                   \
		"ratelimit set --org ID --route chat|export_create|"         \
		"evidence --scope org|ip --limit N --window-s W (--limit 0 " \
		"removes)",                                                  \
		ctl_ratelimit_set },

/* tools/ctl_org.c: org show, org set-tier (create is in bulwarkctl.c). */
int ctl_org_show(struct ctl *, int, char **);
int ctl_org_set_tier(struct ctl *, int, char **);
#define CTL_ORG_CMDS                                            \
	{ "org show", "org show --org ID", ctl_org_show },      \
	    { "org set-tier",                                   \
		    "org set-tier --org ID --tier starter|pro|" \
		    "business|enterprise",                      \
		    ctl_org_set_tier },

/* tools/ctl_user.c: users of an org (lib/people/). */
int ctl_user_add(struct ctl *, int, char **);
int ctl_user_list(struct ctl *, int, char **);
int ctl_user_disable(struct ctl *, int, char **);
int ctl_user_set_role(struct ctl *, int, char **);
int ctl_user_set_password(struct ctl *, int, char **);
int ctl_user_invite(struct ctl *, int, char **);
#define CTL_USER_CMDS                                                       \
	{ "user add",                                                       \
		"user add --org ID --email E --role owner|admin|member "    \
		"[--password-stdin]",                                       \
		ctl_user_add },                                             \
	    { "user list", "user list --org ID", ctl_user_list },           \
	    { "user disable", "user disable ID", ctl_user_disable },        \
	    { "user set-role", "user set-role ID owner|admin|member",       \
		    ctl_user_set_role },                                    \
	    { "user set-password", "user set-password ID --password-stdin", \
		    ctl_user_set_password },                                \
	    { "user invite", "user invite ID", ctl_user_invite },

/* tools/ctl_nginx.c: the nginx site from the config. */
int ctl_nginx_conf(struct ctl *, int, char **);
#define CTL_NGINX_CMDS                                                     \
	{ "nginx-conf", "nginx-conf [--output FILE] [--template-dir DIR]", \
		ctl_nginx_conf },

/*
 * tools/ctl_cache.c: after a committed change to data bulwark-fcgi caches
 * (keys, overrides, chat settings, prices, tiers), bumps the configuration
 * generation. Returns 0, or CTL_EXIT_NOT_BUMPED after a warning (the change
 * stands; the caches refresh within auth_cache_ttl_s).
 */
#define CTL_EXIT_NOT_BUMPED 3
/* Database connection attempts of one command (see ctl_connect()). */
#define CTL_CONNECT_TRIES   3
int ctl_bump(struct ctl *c);
int ctl_cache_bump(struct ctl *, int, char **);
#define CTL_CACHE_CMDS { "cache bump", "cache bump", ctl_cache_bump },

#endif
