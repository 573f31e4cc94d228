/* SPDX-License-Identifier: MIT */
/*
 * bulwarkctl money commands: webhook secrets (lib/money/webhook.h). The credit
 * ledger's check lives with the ledger commands.
 */
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "core/limits.h"
#include "core/sec.h"
#include "money/webhook.h"
#include "money/whsig.h"

/*
 * Reads the secret from stdin (one line, "--secret -"), so that it stays
 * out of the process list and shell history. Returns 0, or 1 on failure.
 */
static int
ctl_secret_stdin(char *dst, size_t n)
{
	size_t len;

	if (fgets(dst, (int)n, stdin) == NULL)
		return 1;
	len = strcspn(dst, "\r\n");
	if (dst[len] == '\0' && len + 1 == n)
		return 1; /* longer than the bound */
	dst[len] = '\0';
	return 0;
}

/*
 * webhook-secret set --org ID --provider stripe|square|line|sms
 * --secret S|- [--url U]: adds the org's newest secret; the previous one
 * stays active (rotation), older ones are retired. Prints
 * {"org_id","provider","active"}. Exit 0, 1 on failure, 2 on usage.
 */
int
ctl_webhook_secret_set(struct ctl *c, int argc, char **argv)
{
	static const char *const names[] = { "org", "provider", "secret",
		"url" };
	const char		*v[4] = { NULL, NULL, NULL, NULL };
	char			 sbuf[BW_MAX_WEBHOOK_SECRET + 2];
	struct json_object	*o;
	enum whsig_provider	 p;
	enum bw_err		 er;
	int			 rc, active = 0;

	if ((rc = ctl_flags(argc, argv, names, v, 4)) != 0)
		return rc;
	if (v[0] == NULL || v[1] == NULL || v[2] == NULL ||
	    whsig_provider_parse(v[1], &p) != BW_OK || p == WS_TWILIO) {
		fprintf(stderr,
		    "bulwarkctl: webhook-secret set needs --org ID "
		    "--provider stripe|square|line|sms --secret S|- "
		    "[--url U]\n");
		return 2;
	}
	if (strcmp(v[2], "-") == 0) {
		if (ctl_secret_stdin(sbuf, sizeof(sbuf)) != 0) {
			fprintf(stderr,
			    "bulwarkctl: webhook-secret set: "
			    "cannot read the secret from stdin\n");
			return 1;
		}
		v[2] = sbuf;
	}
	if ((rc = ctl_connect(c)) != 0)
		goto out;
	er = webhook_secret_set(c->db, v[0], p, v[2], v[3], &active);
	if (er == BW_EINVAL) {
		fprintf(stderr,
		    "bulwarkctl: webhook-secret set: the org id "
		    "must be a UUID and the secret usable for %s (Standard "
		    "Webhooks: whsec_<base64>; Square: --url https://... the "
		    "notification URL)\n",
		    v[1]);
		rc = 1;
		goto out;
	}
	if (er == BW_ENOTFOUND) {
		fprintf(stderr,
		    "bulwarkctl: webhook-secret set: no such org\n");
		rc = 1;
		goto out;
	}
	if (er != BW_OK) {
		rc = ctl_fail("webhook-secret set", er);
		goto out;
	}
	o = json_object_new_object();
	json_object_object_add(o, "org_id", json_object_new_string(v[0]));
	json_object_object_add(o, "provider", json_object_new_string(v[1]));
	json_object_object_add(o, "active", json_object_new_int(active));
	ctl_emit(o);
	rc = 0;
out:
	sec_wipe(sbuf, sizeof(sbuf));
	return rc;
}
