/* SPDX-License-Identifier: MIT */
/*
 * The issue an error group files: a title and a markdown body written as a
 * troubleshooting prompt from the redacted context only (what, where, how
 * often, the sample, what to look at). Pure: the group comes in as the
 * JSON errtrack_get_json() answers; the body passes the PII mask once more
 * as a whole, so no field can bring an e-mail address or a phone number.
 */
#include <stdlib.h>
#include <string.h>

#include "errtrack/errtrack.h"
#include "errtrack/errtrack_int.h"

#define ISSUE_TITLE_MAX 200
#define ISSUE_BODY_MAX	16384

static const char *
js(struct json_object *o, const char *k, const char *dflt)
{
	struct json_object *v;

	if (o == NULL || !json_object_object_get_ex(o, k, &v) || v == NULL ||
	    !json_object_is_type(v, json_type_string))
		return dflt;
	return json_object_get_string(v);
}

/* s with backticks made quotes and control characters other than newline
 * and tab (all of them when inline) made spaces: it cannot leave its code
 * block or span. */
static void
fenced_x(struct buf *b, const char *s, int inline_)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '`')
			c = '\'';
		else if (c < 0x20 && (inline_ || (c != '\n' && c != '\t')))
			c = ' ';
		(void)buf_addc(b, (char)c);
	}
}

static void
fenced(struct buf *b, const char *s)
{
	fenced_x(b, s, 0);
}

/* s as a code span: `s`. */
static void
span(struct buf *b, const char *s)
{
	(void)buf_addc(b, '`');
	fenced_x(b, s, 1);
	(void)buf_addc(b, '`');
}

/* What to look at first, by kind. */
static const char *
hint(const char *kind)
{
	if (strcmp(kind, "http_5xx") == 0)
		return "bulwark-fcgi answered 5xx on this route. Read the "
		       "request's log lines (below) up to the answer: the "
		       "handler's last warning or error names the failing "
		       "dependency or statement. Check /health/full and the "
		       "route's rate of 5xx in "
		       "bulwark_http_requests_total{code=\"5xx\"}.";
	if (strcmp(kind, "crash") == 0)
		return "A bulwark-fcgi child died on a signal. The master's "
		       "\"child exited\" line has the signal and whether a "
		       "core was dumped (coredumpctl list bulwark-fcgi); the "
		       "sample request id is the request the child held when "
		       "it died, when it held one.";
	if (strcmp(kind, "job_failure") == 0)
		return "A job went dead after its last attempt. Its last_error "
		       "is the sample: SELECT id, attempts, last_error FROM "
		       "jobs WHERE state = 'dead' AND queue = '<the site's "
		       "queue>' ORDER BY finished_at DESC LIMIT 20; the "
		       "worker's log lines carry the job's correlation id.";
	return "A browser reported this error to POST /api/v1/client-errors. "
	       "The site names the script and line; the console's own code "
	       "(nginx /console/) or the calling page is where to look.";
}

enum bw_err
errtrack_issue_text(struct json_object *g, struct buf *title, struct buf *body)
{
	struct json_object *sample = NULL;
	struct buf	    b;
	const char	   *kind, *code, *site, *rid, *cid, *id, *fp, *org;
	char		   *masked;
	size_t		    n;
	enum bw_err	    er;

	if (g == NULL)
		return BW_EINVAL;
	(void)json_object_object_get_ex(g, "sample", &sample);
	kind = js(g, "kind", "unknown");
	code = js(g, "code", "?");
	site = js(g, "site", "?");
	id = js(g, "id", "?");
	fp = js(g, "fingerprint", "?");
	org = js(g, "org_id", NULL);
	rid = js(sample, "request_id", NULL);
	cid = js(sample, "correlation_id", NULL);

	buf_reset(title);
	(void)buf_printf(title, "[bulwark] %s %s at %.120s", kind, code, site);
	if (title->len > ISSUE_TITLE_MAX)
		title->len = ISSUE_TITLE_MAX;

	buf_init(&b, ISSUE_BODY_MAX);
	(void)buf_addstr(&b, "## What\n\nA ");
	span(&b, kind);
	(void)buf_addstr(&b, " error with code ");
	span(&b, code);
	(void)buf_addstr(&b, ", error group ");
	span(&b, id);
	(void)buf_addstr(&b, " (fingerprint ");
	span(&b, fp);
	(void)buf_addstr(&b,
	    ": SHA-256 of the code, the normalised message "
	    "and the site).\n\n## Where\n\n- site: ");
	span(&b, site);
	(void)buf_addstr(&b, "\n- org: ");
	if (org != NULL)
		span(&b, org);
	else
		(void)buf_addstr(&b, "none (no org)");
	(void)buf_addstr(&b, "\n\n");
	(void)buf_printf(&b,
	    "## How often\n\n- occurrences: %lld\n- first seen: %s\n"
	    "- last seen: %s\n\nThis issue gets one comment when the count "
	    "passes 10, 100 and 1,000.\n\n",
	    (long long)json_object_get_int64(
		json_object_object_get(g, "count")),
	    js(g, "first_seen", "?"), js(g, "last_seen", "?"));
	(void)buf_printf(&b,
	    "## Sample (redacted)\n\n- request id: %s%s%s\n"
	    "- correlation id: %s%s%s\n\n```\n",
	    rid != NULL ? "`" : "", rid != NULL ? rid : "none",
	    rid != NULL ? "`" : "", cid != NULL ? "`" : "",
	    cid != NULL ? cid : "none", cid != NULL ? "`" : "");
	fenced(&b, js(sample, "message", ""));
	(void)buf_addstr(&b, "\n```\n\n");
	(void)buf_printf(&b, "## What to look at\n\n1. %s\n", hint(kind));
	if (rid != NULL)
		(void)buf_printf(&b,
		    "2. Every log line of the sample request: `journalctl "
		    "-o cat -u 'bulwark-*' | jq -c 'select(.request_id == "
		    "\"%s\")'`; then by correlation id, for the jobs it "
		    "started: `select(.correlation_id == \"%s\")`.\n",
		    rid, cid != NULL ? cid : rid);
	else
		(void)buf_addstr(&b,
		    "2. The logs around the first and last seen times: "
		    "`journalctl -o cat -u 'bulwark-*' --since ...`.\n");
	(void)buf_printf(&b,
	    "3. The group in the API: `GET /api/v1/admin/errors/%s` (the "
	    "org's owner) or `SELECT * FROM error_groups WHERE id = '%s'`.\n"
	    "4. Runbook: docs/runbooks/error-tracking.md.\n\n",
	    id, id);
	(void)buf_addstr(&b,
	    "## Troubleshooting prompt\n\nYou are investigating a production "
	    "error in Bulwark, a C FastCGI API backend (nginx, PostgreSQL, "
	    "Redis, job workers). Using only the redacted context above, "
	    "state the most likely cause, the log lines or rows that would "
	    "confirm it, and the smallest safe fix; say what is missing if "
	    "the context is not enough. Personal data was removed on purpose: "
	    "do not ask for it.\n\n");
	(void)buf_printf(&b, "<!-- bulwark-error-group: %s -->\n", id);

	n = 2 * b.len + 16;
	masked = malloc(n);
	if (masked == NULL) {
		buf_free(&b);
		return BW_ENOMEM;
	}
	(void)errtrack_nz(buf_cstr(&b), masked, n, 1);
	buf_free(&b);
	buf_reset(body);
	er = buf_addstr(body, masked);
	free(masked);
	return er;
}
