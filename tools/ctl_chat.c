/* SPDX-License-Identifier: MIT */
/*
 * bulwarkctl chat commands: an org's daily LLM budget and models, the price
 * table per model, and an org's system prompt, fallback reply, per-org
 * concurrency cap and LINE channel token (lib/chat/budget.h).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/budget.h"
#include "ctl.h"

/*
 * Removes the value-less switch name from argv (shifting), returning 1 when
 * it was there.
 */
static int
ctl_chat_switch(int *argc, char **argv, const char *name)
{
	int i, j, found = 0;

	for (i = 0; i < *argc; i++) {
		if (strcmp(argv[i], name) != 0)
			continue;
		for (j = i; j + 1 < *argc; j++)
			argv[j] = argv[j + 1];
		(*argc)--;
		i--;
		found = 1;
	}
	return found;
}

int
ctl_budget_set(struct ctl *c, int argc, char **argv)
{
	static const char *const names[] = { "org", "daily-micros", "soft-pct",
		"fallback-model", "primary-model", "timezone" };
	const char		*v[6] = { NULL, NULL, NULL, NULL, NULL, NULL };
	struct budget_config	 bc;
	struct json_object	*o;
	long long		 n;
	enum bw_err		 er;
	int			 rc, known, i;
	const char		*models[2];

	memset(&bc, 0, sizeof(bc));
	bc.hard_stop = !ctl_chat_switch(&argc, argv, "--no-hard-stop");
	bc.downgrade = !ctl_chat_switch(&argc, argv, "--no-downgrade");
	if ((rc = ctl_flags(argc, argv, names, v, 6)) != 0)
		return rc;
	if (v[0] == NULL || v[1] == NULL) {
		fprintf(stderr,
		    "bulwarkctl: budget set needs --org ID "
		    "--daily-micros N|none\n");
		return 2;
	}
	if (strcmp(v[1], "none") == 0)
		bc.daily_micros = -1;
	else if (ctl_num(v[1], 0, INT64_MAX / 2, &n) == 0)
		bc.daily_micros = n;
	else {
		fprintf(stderr,
		    "bulwarkctl: --daily-micros: a whole number "
		    ">= 0 or none\n");
		return 2;
	}
	bc.soft_pct = 80;
	if (v[2] != NULL) {
		if (ctl_num(v[2], 1, 100, &n) != 0) {
			fprintf(stderr, "bulwarkctl: --soft-pct: 1..100\n");
			return 2;
		}
		bc.soft_pct = (int)n;
	}
	bc.fallback = v[3];
	bc.primary = v[4];
	bc.timezone = v[5];
	for (i = 3; i <= 4; i++)
		if (v[i] != NULL &&
		    (strlen(v[i]) < 1 || strlen(v[i]) > BUDGET_MODEL_MAX)) {
			fprintf(stderr,
			    "bulwarkctl: model ids are 1..%d "
			    "bytes\n",
			    BUDGET_MODEL_MAX);
			return 2;
		}
	if ((rc = ctl_connect(c)) != 0)
		return rc;
	/* A model without a price cannot serve an org with a budget. */
	models[0] = v[4] != NULL ? v[4] : c->cfg.llm_primary_model;
	models[1] = v[3] != NULL ? v[3] : c->cfg.llm_fallback_model;
	for (i = 0; i < 2 && bc.daily_micros >= 0; i++) {
		er = budget_price_known(c->db, models[i], &known);
		if (er != BW_OK)
			return ctl_fail("budget set", er);
		if (!known) {
			fprintf(stderr,
			    "bulwarkctl: budget set: model %s has "
			    "no price; run `bulwarkctl price set` first\n",
			    models[i]);
			return 1;
		}
	}
	er = budget_config_set(c->db, v[0], &bc);
	if (er == BW_ENOTFOUND) {
		fprintf(stderr, "bulwarkctl: budget set: no such org\n");
		return 1;
	}
	if (er == BW_EINVAL) {
		fprintf(stderr,
		    "bulwarkctl: budget set: unknown time zone or "
		    "bad value\n");
		return 1;
	}
	if (er != BW_OK)
		return ctl_fail("budget set", er);
	o = json_object_new_object();
	json_object_object_add(o, "org_id", json_object_new_string(v[0]));
	if (bc.daily_micros >= 0)
		json_object_object_add(o, "daily_micros",
		    json_object_new_int64(bc.daily_micros));
	else
		json_object_object_add(o, "daily_micros", NULL);
	json_object_object_add(o, "soft_pct", json_object_new_int(bc.soft_pct));
	json_object_object_add(o, "hard_stop",
	    json_object_new_boolean(bc.hard_stop));
	json_object_object_add(o, "downgrade",
	    json_object_new_boolean(bc.downgrade));
	ctl_emit(o);
	return ctl_bump(c);
}

int
ctl_price_set(struct ctl *c, int argc, char **argv)
{
	static const char *const names[] = { "model", "input-micros-per-mtok",
		"output-micros-per-mtok", "prompt-bytes-per-token",
		"prompt-tokens-per-message" };
	const char		*v[5] = { NULL, NULL, NULL, NULL, NULL };
	struct json_object	*o;
	long long		 in, out, bpt = 1, tpm = BUDGET_MSG_OVERHEAD;
	enum bw_err		 er;
	int			 rc;

	if ((rc = ctl_flags(argc, argv, names, v, 5)) != 0)
		return rc;
	if (v[0] == NULL || strlen(v[0]) < 1 ||
	    strlen(v[0]) > BUDGET_MODEL_MAX ||
	    ctl_num(v[1], 0, 1000000000000LL, &in) != 0 ||
	    ctl_num(v[2], 0, 1000000000000LL, &out) != 0 ||
	    (v[3] != NULL && ctl_num(v[3], 1, 64, &bpt) != 0) ||
	    (v[4] != NULL && ctl_num(v[4], 0, 1000, &tpm) != 0)) {
		fprintf(stderr,
		    "bulwarkctl: price set needs --model M "
		    "--input-micros-per-mtok N --output-micros-per-mtok N "
		    "(0..10^12) [--prompt-bytes-per-token 1..64] "
		    "[--prompt-tokens-per-message 0..1000]\n");
		return 2;
	}
	if ((rc = ctl_connect(c)) != 0)
		return rc;
	er = budget_price_set(c->db, v[0], in, out);
	/* The rule only when named (an absent one takes its default). */
	if (er == BW_OK && (v[3] != NULL || v[4] != NULL))
		er = budget_prompt_rule_set(c->db, v[0], (int)bpt, (int)tpm);
	if (er != BW_OK)
		return ctl_fail("price set", er);
	o = json_object_new_object();
	json_object_object_add(o, "model", json_object_new_string(v[0]));
	json_object_object_add(o, "input_micros_per_mtok",
	    json_object_new_int64(in));
	json_object_object_add(o, "output_micros_per_mtok",
	    json_object_new_int64(out));
	if (v[3] != NULL || v[4] != NULL) {
		json_object_object_add(o, "prompt_bytes_per_token",
		    json_object_new_int64(bpt));
		json_object_object_add(o, "prompt_tokens_per_message",
		    json_object_new_int64(tpm));
	}
	ctl_emit(o);
	return ctl_bump(c);
}

int
ctl_prompt_set(struct ctl *c, int argc, char **argv)
{
	static const char *const names[] = { "org", "system-prompt",
		"fallback-reply", "org-cap", "line-token" };
	const char		*v[5] = { NULL, NULL, NULL, NULL, NULL };
	struct json_object	*o;
	long long		 cap = -1;
	enum bw_err		 er;
	int			 rc;

	if ((rc = ctl_flags(argc, argv, names, v, 5)) != 0)
		return rc;
	if (v[0] == NULL ||
	    (v[1] == NULL && v[2] == NULL && v[3] == NULL && v[4] == NULL) ||
	    (v[1] != NULL && strlen(v[1]) > 8000) ||
	    (v[2] != NULL && (strlen(v[2]) < 1 || strlen(v[2]) > 2000)) ||
	    (v[4] != NULL && strlen(v[4]) > 512) ||
	    (v[3] != NULL && ctl_num(v[3], 1, 10000, &cap) != 0)) {
		fprintf(stderr,
		    "bulwarkctl: prompt set needs --org ID and "
		    "one of --system-prompt TEXT (<= 8000), --fallback-reply "
		    "TEXT (1..2000), --org-cap N (1..10000), --line-token T\n");
		return 2;
	}
	if ((rc = ctl_connect(c)) != 0)
		return rc;
	er = budget_texts_set(c->db, v[0], v[1], v[2], v[4], (int)cap);
	if (er == BW_ENOTFOUND) {
		fprintf(stderr, "bulwarkctl: prompt set: no such org\n");
		return 1;
	}
	if (er != BW_OK)
		return ctl_fail("prompt set", er);
	o = json_object_new_object();
	json_object_object_add(o, "org_id", json_object_new_string(v[0]));
	json_object_object_add(o, "updated", json_object_new_boolean(1));
	ctl_emit(o);
	return ctl_bump(c);
}
