/* SPDX-License-Identifier: MIT */
/* Every bound Bulwark enforces lives here, so that a reviewer sees them all. */
#ifndef BW_LIMITS_H
#define BW_LIMITS_H

#define BW_MAX_BODY		(1024 * 1024)	   /* JSON request bodies */
#define BW_MAX_EVIDENCE		(25 * 1024 * 1024) /* evidence uploads */
#define BW_MAX_RESPONSE		(4 * 1024 * 1024)  /* a rendered response */
#define BW_MAX_JSON_DEPTH	8		   /* nesting of request JSON */
#define BW_MAX_PATH		2048		   /* request path */
#define BW_MAX_HEADER		8192	    /* one header value we read */
#define BW_MAX_REQUEST_ID	128	    /* X-Request-ID, X-Correlation-ID */
#define BW_MAX_LOG_LINE		(16 * 1024) /* one JSON log line */
#define BW_MAX_LOG_VALUE	2048	    /* one logged string value */
#define BW_MAX_CONFIG_LINE	4096	    /* one line of the config file */
#define BW_MAX_CONFIG_FILE	(256 * 1024)  /* a secret or config file */
#define BW_MAX_SQL_FILE		(1024 * 1024) /* one migration file */
#define BW_MAX_JOB_PAYLOAD	(64 * 1024)   /* jobs.payload */
#define BW_MAX_JOB_ERROR	1024	      /* jobs.last_error */
#define BW_MAX_QUEUE_NAME	64	      /* jobs.queue */
#define BW_MAX_JOB_KEY		200	      /* jobs.job_key, jobs.cap_key */
#define BW_MAX_ORG_NAME		200	      /* orgs.name */
#define BW_MAX_API_KEY		128	      /* a presented API key */
#define BW_MAX_METRIC_SLOTS	4096	      /* shared metric cells */
#define BW_MAX_UPSTREAM_BODY	(1024 * 1024) /* a provider's reply */
#define BW_DB_CONNECT_TIMEOUT_S 3	      /* libpq connect_timeout */
#define BW_REDIS_TIMEOUT_MS	1000	      /* hiredis connect and command */
#define BW_REDIS_MAX_SENTINELS	5	      /* redis_sentinels entries */
#define BW_TX_RETRIES		8     /* serialization/deadlock retries */
#define BW_DB_MAX_PREPARED	256   /* prepared statements per connection */
#define BW_MAX_MIGRATIONS	10000 /* files in sql/ */
#define BW_MAX_FIELD_PROBLEMS	100   /* problems jv_validate() reports */
#define BW_MAX_METRIC_SERIES	512   /* registered metric series */
#define BW_MAX_METRIC_NAME	128   /* a metric family name */
#define BW_MAX_METRIC_LABELS	512   /* one series' label text */
#define BW_MAX_METRIC_HELP	256   /* a family's HELP text */
#define BW_MAX_METRIC_BUCKETS	32    /* bounds of one histogram */
#define BW_MAX_FCGI_CHILDREN	1024  /* fcgi_children (config.c bound) */
#define BW_RESPAWN_WINDOW_MS	5000  /* child deaths counted in this window */
#define BW_RESPAWN_MIN_MS	100   /* first respawn backoff */
#define BW_RESPAWN_MAX_MS	5000  /* longest respawn backoff */
#define BW_CHILD_GIVEUP		10    /* deaths before serving, then exit 1 */
#define BW_MAX_NOTE		(64 * 1024) /* a signed note or tlog-proof */
#define BW_MAX_NOTE_LINE	8192	    /* one line of a signed note */
#define BW_MAX_NOTE_SIGS	100	    /* signature lines of one note */
#define BW_MAX_NOTE_NAME	256	    /* a note key name or log origin */
#define BW_WEBHOOK_TOLERANCE_S	300   /* |now - signed timestamp| allowed */
#define BW_MAX_WEBHOOK_SIGS	8     /* signatures in one webhook header */
#define BW_MAX_WEBHOOK_SECRETS	4     /* active secrets per org and provider */
#define BW_MAX_WEBHOOK_SECRET	512   /* one webhook secret or token */
#define BW_MAX_FORM_PARAMS	256   /* fields of a form-encoded webhook */
#define BW_MAX_IDEM_KEY		255   /* Idempotency-Key value (decoded) */
#define BW_IDEM_TTL_S		86400 /* idempotency keys are kept 24 h */
#define BW_MAX_IDEM_CTYPE	127   /* a stored response's Content-Type */
#define BW_MAX_IDEM_HEADERS	4096  /* a stored response's extra headers */
#define BW_IDEM_BEGIN_TRIES	4     /* lock attempts racing a delete */
#define BW_MAX_CREDITS		1000000000 /* one grant, booking, reservation */
#define BW_MAX_CLASS_ID		128	   /* bookings.class_id, characters */
#define BW_MAX_RESERVATION_KEY	200  /* credit_reservations.reservation_key */
#define BW_MAX_ANCHOR		200  /* a transfer's anchor or id */
#define BW_MAX_LEDGER_PROBLEMS	1000 /* differences one ledger check lists */
#define BW_CREDIT_EXPIRE_BATCH	500  /* reservations one expiry pass reads */

#define BW_MAX_WEBHOOK_JSON_DEPTH 32 /* nesting of a provider's event JSON */
#define BW_WEBHOOK_PURGE_BATCH \
	1000 /* webhook_events rows per purge statement */
#define BW_MAX_WEBHOOK_CREDITS 1000000000 /* credits one payment may grant */
#define BW_MAX_WEBHOOK_MONEY \
	1000000000000000 /* a paid or refunded amount, minor units (10^15) */

#endif
