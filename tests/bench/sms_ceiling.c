/* SPDX-License-Identifier: MIT */
/*
 * The ceiling of an SMS sender (dev/bench-sms): per message one
 * "INSERT ... ON CONFLICT DO NOTHING" on PostgreSQL and one HTTP POST to
 * the provider, nothing else, in a tight loop on one connection each.
 *
 *	sms_ceiling CONNINFO BASE_URL API_KEY FIRST COUNT
 *
 * Sends COUNT messages with client references "ceil-<FIRST+i>"; prints
 * "<count> <ms>" and exits 0 when every POST got a 2xx.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <libpq-fe.h>

static size_t
sink(char *p, size_t sz, size_t n, void *u)
{
	(void)p;
	(void)u;
	return sz * n;
}

int
main(int argc, char **argv)
{
	struct curl_slist *h = NULL;
	struct timespec	   t0, t1;
	char		   auth[512], url[1024], ref[64], body[256];
	const char	  *p[1];
	PGconn		  *pg;
	PGresult	  *res;
	CURL		  *c;
	long		   first, count, i, st, bad = 0;

	if (argc != 6) {
		fprintf(stderr,
		    "usage: sms_ceiling CONNINFO BASE_URL KEY FIRST COUNT\n");
		return 2;
	}
	first = atol(argv[4]);
	count = atol(argv[5]);
	pg = PQconnectdb(argv[1]);
	if (PQstatus(pg) != CONNECTION_OK) {
		fprintf(stderr, "sms_ceiling: %s", PQerrorMessage(pg));
		return 1;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	c = curl_easy_init();
	snprintf(url, sizeof(url), "%s/v1/messages", argv[2]);
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", argv[3]);
	h = curl_slist_append(h, auth);
	h = curl_slist_append(h, "Content-Type: application/json");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < count; i++) {
		snprintf(ref, sizeof(ref), "ceil-%ld", first + i);
		p[0] = ref;
		res = PQexecParams(pg,
		    "INSERT INTO bench_sms_ceiling (ref) VALUES ($1) "
		    "ON CONFLICT DO NOTHING",
		    1, NULL, p, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
			bad++;
		PQclear(res);
		snprintf(body, sizeof(body),
		    "{\"to\":\"+6689%07ld\",\"text\":\"ceiling\","
		    "\"client_reference\":\"%s\"}",
		    (first + i) % 10000000, ref);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		st = 0;
		if (curl_easy_perform(c) != CURLE_OK ||
		    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st) !=
			CURLE_OK ||
		    st / 100 != 2)
			bad++;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("%ld %ld\n", count,
	    (long)((t1.tv_sec - t0.tv_sec) * 1000 +
		(t1.tv_nsec - t0.tv_nsec) / 1000000));
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	curl_global_cleanup();
	PQfinish(pg);
	return bad == 0 ? 0 : 1;
}
