/* SPDX-License-Identifier: MIT */
/*
 * Configuration: one "key = value" file, every key overridable by
 * BULWARK_<KEY> in the environment (upper case), secrets readable from files
 * (key_file = /path), validated as a whole at start-up; a failure names the
 * key. The table of keys is in config.c; docs/operations.md lists them.
 */
#ifndef BW_CONFIG_H
#define BW_CONFIG_H

#include <stddef.h>

#include "core/err.h"

struct config {
	/* fcgi */
	char *fcgi_socket;	/* unix socket path */
	int   fcgi_socket_mode; /* octal, e.g. 0660 */
	int   fcgi_backlog;
	int   fcgi_children;
	int   fcgi_max_requests; /* recycle a child after this many */
	int   drain_timeout_s;	 /* SIGTERM grace for busy children */
	/* 0: off. A child whose request runs longer is killed (php-fpm's
	 * request_terminate_timeout); a request that waited longer than the
	 * queue deadline since nginx took it is answered 503 at once. */
	int fcgi_request_timeout_ms;
	int fcgi_queue_deadline_ms;
	int fcgi_nice; /* added to the children's nice value */
	/* The chat pool (fcgi/pool.c): its own socket and children. The
	 * socket "" is derived from fcgi_socket (x.sock -> x-chat.sock);
	 * "none": no chat pool, the api pool serves every route. */
	char *fcgi_chat_socket;
	int   fcgi_chat_backlog;
	int   fcgi_chat_children;
	int   fcgi_chat_max_requests;
	int   fcgi_chat_request_timeout_ms;
	int   fcgi_chat_queue_deadline_ms;
	int   fcgi_chat_nice;
	char *fcgi_chat_routes; /* route names, comma separated */
	char *pid_file;
	/* dependencies */
	char *database_url;
	/* bulwark-fcgi's /metrics and /health/full (cross-org, read-only
	 * role; docs/operations.md); "": database_url */
	char *monitor_database_url;
	char *redis_url;
	/* "" or "host:port,host:port...": the master is asked of these
	 * Sentinels by name; redis_url then gives only auth and db. */
	char *redis_sentinels;
	char *redis_master_name;	   /* Sentinel's name of the master */
	int   db_statement_timeout_ms;	   /* bulwark-fcgi's connections */
	int   worker_statement_timeout_ms; /* every worker's connections */
	int   auth_cache_ttl_s; /* per-child cache safety net; 0: off */
	/* logging */
	char *log_level;
	/* providers */
	char *llm_base_url;
	char *llm_api_key; /* secret */
	/* jobs */
	int job_lease_s;
	int job_max_attempts;
	int job_retention_days;
	/* /health/full judgements (lib/platform/health.c); 0 turns one off */
	int health_job_age_max_s;    /* oldest runnable job waits longer */
	int health_dead_window_s;    /* a job went dead this recently */
	int health_periodic_grace_s; /* no periodic run for period + this */
	/* periodic jobs (lib/platform/periodic.c) */
	int periodic_slot_s; /* > 0: every job's slot (test clusters) */
	/* credits */
	int reservation_ttl_s; /* pending reservations expire */
	/* Idempotency-Key */
	int idem_lock_timeout_s; /* locks older are taken over */
	/* paths */
	char *sql_dir;
	char *storage_dir;
	/* evidence ledger */
	/* Ed25519 seed (base64 or 32 bytes): bulwark-ledger and bulwarkctl
	 * only; bulwark-fcgi never reads it. */
	char *ledger_key_file;
	char *ledger_public_key_file; /* its verifier key, what fcgi serves */
	char *ledger_origin;	      /* log origin host, "bulwark.local" */
	/* exports (lib/evidence/export.c, bulwark-export, bulwark-retention) */
	int export_file_pause_ms;     /* sleep before each file (I/O pacing) */
	int retention_clock_offset_s; /* tests: retention's clock ahead */
	/* chat and the LLM provider (lib/chat/chat.c, lib/chat/llm.c) */
	int   llm_global_cap;	      /* LLM calls in flight, all hosts */
	int   llm_org_cap;	      /* LLM calls in flight per org */
	int   chat_queue_deadline_ms; /* wait for a slot at most */
	int   chat_deadline_ms;	      /* whole chat request */
	int   chat_max_tokens;	      /* max_tokens asked of the provider */
	int   chat_min_tokens;	      /* below this a lowered call is refused */
	int   chat_lease_ttl_ms;      /* semaphore lease expiry (renewed) */
	int   chat_hold_ttl_s;	      /* budget holds expire after */
	int   chat_block_calls;	      /* budget block: calls' holds; 0 off */
	int   chat_block_pct;	      /* blocks of a budget: at most this % */
	int   chat_block_idle_ms;     /* an idle child returns its blocks */
	int   chat_block_record_batch; /* block calls kept before written */
	int   chat_block_record_ms;    /* a kept call is written within */
	int   llm_attempt_timeout_ms;  /* first attempt */
	int   llm_retry_timeout_ms;    /* each retry */
	int   llm_max_retries;
	int   llm_breaker_failures; /* consecutive failures that open */
	int   llm_breaker_open_ms;  /* open this long, then one probe */
	char *llm_primary_model;
	char *llm_fallback_model;
	char *chat_fallback_reply; /* when the org has none */
	char *line_api_base_url;   /* LINE Messaging API */
	/* SMS campaigns (lib/campaign/, bulwark-sms) */
	char *sms_base_url;	      /* the SMS provider's API */
	char *sms_api_key;	      /* secret */
	char *sms_callback_base_url;  /* "" or Bulwark's public URL */
	int   sms_send_rate;	      /* messages/s per org and sender; 0 off */
	int   sms_attempt_timeout_ms; /* one POST */
	int   sms_max_retries;	      /* per message, then the job retries */
	int   sms_backoff_base_ms;    /* first retry wait (lib/core/backoff) */
	int   sms_window;	      /* recipients checked/recorded at once */
	int   campaign_batch_size;    /* recipients per batch job */
	int   campaign_stuck_after_s; /* sending without progress: stuck */
	/* Error tracking (lib/errtrack/, bulwark-errtrack) */
	char *tracker_base_url;	  /* GitHub-style issues API; "" = off */
	char *tracker_token;	  /* secret: Authorization: Bearer */
	char *tracker_repo;	  /* "owner/repo" */
	int   tracker_timeout_ms; /* one tracker request */
	/* people: users, passwords, cookie sessions (lib/people/) */
	char *public_base_url;	     /* "" or Bulwark's public URL (invites) */
	int   password_scrypt_n;     /* scrypt cost, a power of two */
	int   password_scrypt_r;     /* scrypt block size */
	int   password_scrypt_p;     /* scrypt parallelism */
	int   session_idle_s;	     /* a session unused this long expires */
	int   session_absolute_s;    /* a session expires this after login */
	int   session_cache_ttl_s;   /* Redis cache of a session; 0: off */
	int   login_max_failures;    /* per account (e-mail) per window */
	int   login_ip_max_failures; /* per client IP per window */
	int   login_window_s;	     /* the failures' sliding window */
	int   invite_ttl_s;	     /* an invite link is valid this long */
	/* The nginx site of bulwarkctl nginx-conf (docs/operations.md). */
	char *nginx_server_name;	 /* server_name, names by spaces */
	char *nginx_listen;		 /* listen: [addr:]port */
	char *nginx_tls_certificate;	 /* ssl_certificate */
	char *nginx_tls_certificate_key; /* ssl_certificate_key */
	char *nginx_access_log;		 /* access_log path */
	char *nginx_rate;		 /* limit_req_zone rate, "50r/s" */
	int   nginx_burst;		 /* limit_req burst */
	int   nginx_conn;		 /* limit_conn per client IP */
	char *console_dir;		 /* the console's static files */
};

/*
 * Loads defaults, then the file at path (NULL or "" for none), then the
 * environment, then validates. On failure writes a message naming the key
 * to err (errlen bytes) and returns BW_ECONFIG; cfg is then freed.
 */
enum bw_err
config_load(struct config *cfg, const char *path, char *err, size_t errlen);
void config_free(struct config *cfg);
/* Writes "key = value" lines (secrets masked) to fd; for `--print-config`. */
void config_dump(const struct config *cfg, int fd);

#ifdef BW_TESTING
struct buf;
enum bw_err cfg_dump_url(struct buf *b, const char *s);
#endif

#endif
