/* SPDX-License-Identifier: MIT */
/*
 * A tiny HTTP/1.1 server on 127.0.0.1 (one thread, one connection at a
 * time, keep-alive) for unit tests of the outbound client: each request
 * gets the canned answer set last, after an optional delay. Loopback only;
 * no network is needed.
 */
#ifndef BW_TINY_HTTPD_H
#define BW_TINY_HTTPD_H

#include <stddef.h>

/* Starts the server; returns its port, or -1. */
int  tiny_httpd_start(void);
void tiny_httpd_stop(void);
/* The raw answer to send (copied), after delay_ms; an empty one (len 0)
 * closes the connection after reading the request, without answering. */
void tiny_httpd_answer(const char *raw, size_t len, int delay_ms);
/* Connections accepted so far. */
int tiny_httpd_accepts(void);
/* Requests read so far. */
int tiny_httpd_requests(void);
/* The last request (head and body) as received; owned by the server. */
const char *tiny_httpd_last(void);
/* "http://127.0.0.1:PORT" */
const char *tiny_httpd_url(void);
/* A port nothing listens on (bound, then closed); -1 on failure. */
int tiny_httpd_dead_port(void);

#endif
