/* SPDX-License-Identifier: MIT */
/*
 * Metrics in memory shared by the fcgi children: the master registers every
 * series and maps one shared anonymous region before fork(); children update
 * cells with atomic adds; any child renders the Prometheus text format 0.0.4.
 * Gauges read from PostgreSQL are appended by the /metrics handler.
 */
#ifndef BW_METRICS_H
#define BW_METRICS_H

#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

enum metric_type {
	MT_COUNTER,
	MT_GAUGE,
	MT_HISTOGRAM,
	MT__MAX
};

/*
 * Maps the shared region. Call once, before registering and before fork().
 * Calling again resets everything (tests).
 */
enum bw_err metrics_init(void);
/*
 * Registers one series of family name with a label set such as
 * `route="health",code="2xx"` (NULL or "" for none). Series of one family
 * must share help and type. Returns the id (>= 0) or -1 when the table is
 * full or the name is invalid. Only before fork().
 */
int metrics_counter(const char *name, const char *help, const char *labels);
int metrics_gauge(const char *name, const char *help, const char *labels);
/* bounds: ascending upper bounds in the metric's unit (seconds). */
int metrics_histogram(const char *name, const char *help, const char *labels,
    const double *bounds, int nbounds);
/* Id of a registered series, or -1. */
int  metrics_find(const char *name, const char *labels);
void metrics_add(int id, uint64_t n); /* counters */
void metrics_inc(int id);
void metrics_gauge_set(int id, int64_t v);
void metrics_gauge_add(int id, int64_t v);
void metrics_observe(int id, double v); /* histograms */
/* Reads a counter or gauge (tests, health). */
int64_t metrics_value(int id);
/* Renders every family, HELP and TYPE once each, to out. */
enum bw_err metrics_render(struct buf *out);

/* Latency buckets in seconds used by the HTTP and job histograms. */
extern const double metrics_latency_bounds[];
extern const int    metrics_latency_nbounds;

#ifdef BW_TESTING
/* Static functions of metrics.c, visible to tests (STATIC in core/err.h). */
int metrics_name_ok(const char *name);
int metrics_labels_ok(const char *labels, int histogram);
#endif

#endif
