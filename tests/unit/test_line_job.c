/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of lib/chat/line_job: the "chat_line" job's key, the exact
 * payload text the webhook queues, and the parser the worker runs on it
 * (round trip, defaults, and every refusal with its reason).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/chat.h"
#include "chat/line_job.h"
#include "core/limits.h"

#define ORG	   "0e8f5a8c-3b1d-4c2e-9f00-1a2b3c4d5e6f"
#define WHY_JSON   "payload is not a JSON object"
#define WHY_FIELDS "payload lacks org_id, user_id, reply_token or text"

static void
test_key(void **state)
{
	/* Larger than the bound, so that the bound itself is tested. */
	char   key[BW_MAX_JOB_KEY + 16], id[BW_MAX_JOB_KEY];
	size_t fit;

	(void)state;
	assert_string_equal(LINE_JOB_QUEUE, "chat_line");
	assert_int_equal(line_job_key(ORG, "01H810YECXQQZ37VAXPF6H9E6T", key,
			     sizeof(key)),
	    BW_OK);
	assert_string_equal(key, "line:" ORG ":01H810YECXQQZ37VAXPF6H9E6T");
	/* BW_MAX_JOB_KEY characters fit, one more does not. */
	fit = BW_MAX_JOB_KEY - strlen("line:" ORG ":");
	memset(id, 'e', fit + 1);
	id[fit] = '\0';
	assert_int_equal(line_job_key(ORG, id, key, sizeof(key)), BW_OK);
	assert_int_equal(strlen(key), BW_MAX_JOB_KEY);
	id[fit] = 'e';
	id[fit + 1] = '\0';
	assert_int_equal(line_job_key(ORG, id, key, sizeof(key)), BW_EINVAL);
	assert_int_equal(line_job_key(ORG, "E1", key, 10), BW_EINVAL);
	assert_int_equal(line_job_key(NULL, "E1", key, sizeof(key)), BW_EINVAL);
	assert_int_equal(line_job_key(ORG, NULL, key, sizeof(key)), BW_EINVAL);
}

static void
test_payload_round_trip(void **state)
{
	struct line_job j, p;
	char	       *txt = NULL;
	const char     *why = NULL;

	(void)state;
	memset(&j, 0, sizeof(j));
	j.org_id = ORG;
	j.user_id = "U4af4980629ed4bd4b5a6e2d8b6b1f1";
	j.reply_token = "38ef843bde154d9b91c21320ffd17a0f";
	j.text = "h\xc3\xa9llo \"you\" / \\ \n";
	j.event_id = "01H810YECXQQZ37VAXPF6H9E6T";
	assert_int_equal(line_job_payload(&j, &txt), BW_OK);
	/* The format w_chat.c reads and docs/api/webhooks.md shows. */
	assert_string_equal(txt,
	    "{\"org_id\":\"" ORG "\",\"user_id\":"
	    "\"U4af4980629ed4bd4b5a6e2d8b6b1f1\",\"reply_token\":"
	    "\"38ef843bde154d9b91c21320ffd17a0f\",\"text\":"
	    "\"h\xc3\xa9llo \\\"you\\\" / \\\\ \\n\",\"event_id\":"
	    "\"01H810YECXQQZ37VAXPF6H9E6T\"}");
	assert_int_equal(line_job_parse(txt, "job-1", &p, &why), BW_OK);
	assert_string_equal(p.org_id, j.org_id);
	assert_string_equal(p.user_id, j.user_id);
	assert_string_equal(p.reply_token, j.reply_token);
	assert_string_equal(p.text, j.text);
	assert_string_equal(p.event_id, j.event_id);
	assert_non_null(p.root);
	line_job_clear(&p);
	assert_null(p.root);
	assert_null(p.text);
	line_job_clear(NULL);
	free(txt);

	txt = NULL;
	j.text = NULL;
	assert_int_equal(line_job_payload(&j, &txt), BW_EINVAL);
	assert_null(txt);
	assert_int_equal(line_job_payload(NULL, &txt), BW_EINVAL);
}

struct parse_case {
	const char *payload;
	const char *why; /* NULL: accepted */
};

static const struct parse_case parse_cases[] = {
	{ "{\"org_id\":\"o\",\"user_id\":\"U\",\"reply_token\":\"\","
	  "\"text\":\"t\"}",
	    NULL },
	{ "not json", WHY_JSON },
	{ "", WHY_JSON },
	{ "[]", WHY_JSON },
	{ "{\"org_id\":\"o\"} x", WHY_JSON },
	{ "{\"a\":{\"b\":{\"c\":{\"d\":{}}}}}", WHY_JSON },
	{ "{\"user_id\":\"U\",\"reply_token\":\"r\",\"text\":\"t\"}",
	    WHY_FIELDS },
	{ "{\"org_id\":\"o\",\"reply_token\":\"r\",\"text\":\"t\"}",
	    WHY_FIELDS },
	{ "{\"org_id\":\"o\",\"user_id\":\"U\",\"text\":\"t\"}", WHY_FIELDS },
	{ "{\"org_id\":\"o\",\"user_id\":\"U\",\"reply_token\":\"r\"}",
	    WHY_FIELDS },
	{ "{\"org_id\":\"o\",\"user_id\":\"\",\"reply_token\":\"r\","
	  "\"text\":\"t\"}",
	    WHY_FIELDS },
	{ "{\"org_id\":\"o\",\"user_id\":\"U\",\"reply_token\":\"r\","
	  "\"text\":\"\"}",
	    WHY_FIELDS },
	{ "{\"org_id\":1,\"user_id\":\"U\",\"reply_token\":\"r\","
	  "\"text\":\"t\"}",
	    WHY_FIELDS },
};

static void
test_parse_table(void **state)
{
	struct line_job j, pat;
	const char     *why;
	enum bw_err	er;
	size_t		i;

	(void)state;
	memset(&pat, 0x5a, sizeof(pat));
	for (i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
		memset(&j, 0x5a, sizeof(j));
		why = NULL;
		er = line_job_parse(parse_cases[i].payload, "job-1", &j, &why);
		if (parse_cases[i].why == NULL) {
			if (er != BW_OK)
				fail_msg("case %zu refused: %s", i, why);
			line_job_clear(&j);
			continue;
		}
		if (er != BW_EINVAL || why == NULL ||
		    strcmp(why, parse_cases[i].why) != 0)
			fail_msg("case %zu: %s (%s)", i, bw_strerror(er),
			    why != NULL ? why : "no reason");
		if (memcmp(&j, &pat, sizeof(j)) != 0)
			fail_msg("case %zu: *out touched", i);
	}
	assert_int_equal(line_job_parse(NULL, "job-1", &j, NULL), BW_EINVAL);
}

/* event_id defaults to the job id; user_id is counted in characters. */
static void
test_parse_defaults_and_bounds(void **state)
{
	char		body[CHAT_MAX_USER * 2 + 128];
	char		user[CHAT_MAX_USER * 2 + 3];
	struct line_job j;
	const char     *why = NULL;
	size_t		i;

	(void)state;
	assert_int_equal(line_job_parse("{\"org_id\":\"o\",\"user_id\":\"U\","
					"\"reply_token\":\"r\",\"text\":\"t\"}",
			     "job-7", &j, &why),
	    BW_OK);
	assert_string_equal(j.event_id, "job-7");
	line_job_clear(&j);
	assert_int_equal(line_job_parse("{\"org_id\":\"o\",\"user_id\":\"U\","
					"\"reply_token\":\"r\",\"text\":\"t\"}",
			     NULL, &j, &why),
	    BW_OK);
	assert_null(j.event_id);
	line_job_clear(&j);

	/* CHAT_MAX_USER two-byte characters pass, one more does not. */
	for (i = 0; i < CHAT_MAX_USER; i++)
		memcpy(user + 2 * i, "\xc3\xa9", 2);
	user[2 * CHAT_MAX_USER] = '\0';
	snprintf(body, sizeof(body),
	    "{\"org_id\":\"o\",\"user_id\":\"%s\",\"reply_token\":\"r\","
	    "\"text\":\"t\"}",
	    user);
	assert_int_equal(line_job_parse(body, "j", &j, &why), BW_OK);
	line_job_clear(&j);
	memcpy(user + 2 * CHAT_MAX_USER, "\xc3\xa9", 3);
	snprintf(body, sizeof(body),
	    "{\"org_id\":\"o\",\"user_id\":\"%s\",\"reply_token\":\"r\","
	    "\"text\":\"t\"}",
	    user);
	assert_int_equal(line_job_parse(body, "j", &j, &why), BW_EINVAL);
	assert_string_equal(why, WHY_FIELDS);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key),
		cmocka_unit_test(test_payload_round_trip),
		cmocka_unit_test(test_parse_table),
		cmocka_unit_test(test_parse_defaults_and_bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
