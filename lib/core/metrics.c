/* SPDX-License-Identifier: MIT */
/*
 * Metrics shared by the fcgi children. The values live in one anonymous
 * MAP_SHARED region of BW_MAX_METRIC_SLOTS 64-bit cells mapped before
 * fork(), updated with atomic adds; the registry (names, help, labels,
 * bounds) is plain process memory that fork() copies into every child.
 * Rendering follows the Prometheus text exposition format 0.0.4.
 */
#include <sys/mman.h>

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/limits.h"
#include "core/metrics.h"

struct metric_series {
	char		 name[BW_MAX_METRIC_NAME + 1];
	char		 help[BW_MAX_METRIC_HELP + 1];
	char		 labels[BW_MAX_METRIC_LABELS + 1];
	enum metric_type type;
	int		 cell; /* first cell in metrics_cells */
	int		 nbounds;
	double		 bounds[BW_MAX_METRIC_BUCKETS];
};

/*
 * A histogram uses nbounds + 1 bucket cells (the last is +Inf, counts are
 * per bucket, not cumulative) and one cell for the sum in micro-units.
 * The count is the total of the buckets, so _count always equals the +Inf
 * bucket even while other children are writing.
 */
#define METRICS_SUM_SCALE 1000000.0

static uint64_t		   *metrics_cells;
static int		    metrics_ncells;
static struct metric_series metrics_tab[BW_MAX_METRIC_SERIES];
static int		    metrics_nseries;

const double metrics_latency_bounds[] = { 0.0005, 0.001, 0.0025, 0.005, 0.01,
	0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30 };
const int    metrics_latency_nbounds =
    (int)(sizeof(metrics_latency_bounds) / sizeof(metrics_latency_bounds[0]));

STATIC int metrics_name_ok(const char *);
STATIC int metrics_labels_ok(const char *, int);

/*
 * Maps a fresh zeroed region and empties the registry (a second call
 * resets everything). Returns BW_OK or BW_ENOMEM.
 */
enum bw_err
metrics_init(void)
{
	void *p;

	if (metrics_cells != NULL) {
		munmap(metrics_cells, BW_MAX_METRIC_SLOTS * sizeof(uint64_t));
		metrics_cells = NULL;
	}
	metrics_ncells = 0;
	metrics_nseries = 0;
	p = mmap(NULL, BW_MAX_METRIC_SLOTS * sizeof(uint64_t),
	    PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return BW_ENOMEM;
	metrics_cells = p;
	return BW_OK;
}

/* 1 if name matches [a-zA-Z_:][a-zA-Z0-9_:]* and fits, else 0. */
STATIC int
metrics_name_ok(const char *name)
{
	size_t i;
	char   c;

	if (name == NULL || name[0] == '\0' ||
	    strlen(name) > BW_MAX_METRIC_NAME)
		return 0;
	for (i = 0; name[i] != '\0'; i++) {
		c = name[i];
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    c == '_' || c == ':')
			continue;
		if (i > 0 && c >= '0' && c <= '9')
			continue;
		return 0;
	}
	return 1;
}

/*
 * 1 if labels is empty or `k="v"` pairs joined by ',': label names match
 * [a-zA-Z_][a-zA-Z0-9_]* without the reserved "__" prefix (and are not
 * "le" on a histogram); values hold no raw '"' or newline and escape only
 * \\, \" and \n, as the text format wants. Else 0.
 */
STATIC int
metrics_labels_ok(const char *l, int histogram)
{
	const char *p = l, *k;
	size_t	    kn;

	if (strlen(l) > BW_MAX_METRIC_LABELS)
		return 0;
	if (*p == '\0')
		return 1;
	for (;;) {
		k = p;
		while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    *p == '_' || (p > k && *p >= '0' && *p <= '9'))
			p++;
		kn = (size_t)(p - k);
		if (kn == 0 || (kn >= 2 && k[0] == '_' && k[1] == '_'))
			return 0;
		if (histogram && kn == 2 && k[0] == 'l' && k[1] == 'e')
			return 0;
		if (*p++ != '=' || *p++ != '"')
			return 0;
		while (*p != '"') {
			if (*p == '\0' || *p == '\n')
				return 0;
			if (*p == '\\') {
				p++;
				if (*p != '\\' && *p != '"' && *p != 'n')
					return 0;
			}
			p++;
		}
		p++;
		if (*p == '\0')
			return 1;
		if (*p++ != ',')
			return 0;
	}
}

/*
 * Registers one series; see metrics_counter(). Returns the id or -1 when
 * metrics_init() was not called, a name, label set, help or bound list is
 * invalid, the family exists with another type or help, the series exists,
 * or the table or the cells are full.
 */
static int
metrics_register(const char *name, const char *help, const char *labels,
    enum metric_type type, const double *bounds, int nbounds)
{
	struct metric_series *s;
	int		      i, need;

	if (labels == NULL)
		labels = "";
	if (help == NULL)
		help = "";
	if (metrics_cells == NULL || !metrics_name_ok(name) ||
	    !metrics_labels_ok(labels, type == MT_HISTOGRAM) ||
	    strlen(help) > BW_MAX_METRIC_HELP ||
	    metrics_nseries >= BW_MAX_METRIC_SERIES)
		return -1;
	for (i = 0; i < metrics_nseries; i++) {
		s = &metrics_tab[i];
		if (strcmp(s->name, name) != 0)
			continue;
		if (s->type != type || strcmp(s->help, help) != 0 ||
		    strcmp(s->labels, labels) == 0)
			return -1;
	}
	need = 1;
	if (type == MT_HISTOGRAM) {
		if (bounds == NULL || nbounds < 1 ||
		    nbounds > BW_MAX_METRIC_BUCKETS)
			return -1;
		for (i = 0; i < nbounds; i++)
			if (!isfinite(bounds[i]) ||
			    (i > 0 && bounds[i] <= bounds[i - 1]))
				return -1;
		need = nbounds + 2;
	}
	if (need > BW_MAX_METRIC_SLOTS - metrics_ncells)
		return -1;
	s = &metrics_tab[metrics_nseries];
	memset(s, 0, sizeof(*s));
	memcpy(s->name, name, strlen(name) + 1);
	memcpy(s->help, help, strlen(help) + 1);
	memcpy(s->labels, labels, strlen(labels) + 1);
	s->type = type;
	s->cell = metrics_ncells;
	if (type == MT_HISTOGRAM) {
		s->nbounds = nbounds;
		memcpy(s->bounds, bounds, (size_t)nbounds * sizeof(double));
	}
	memset(&metrics_cells[s->cell], 0, (size_t)need * sizeof(uint64_t));
	metrics_ncells += need;
	return metrics_nseries++;
}

int
metrics_counter(const char *name, const char *help, const char *labels)
{
	return metrics_register(name, help, labels, MT_COUNTER, NULL, 0);
}

int
metrics_gauge(const char *name, const char *help, const char *labels)
{
	return metrics_register(name, help, labels, MT_GAUGE, NULL, 0);
}

int
metrics_histogram(const char *name, const char *help, const char *labels,
    const double *bounds, int nbounds)
{
	return metrics_register(name, help, labels, MT_HISTOGRAM, bounds,
	    nbounds);
}

int
metrics_find(const char *name, const char *labels)
{
	int i;

	if (name == NULL)
		return -1;
	if (labels == NULL)
		labels = "";
	for (i = 0; i < metrics_nseries; i++)
		if (strcmp(metrics_tab[i].name, name) == 0 &&
		    strcmp(metrics_tab[i].labels, labels) == 0)
			return i;
	return -1;
}

/* The series of id if it exists and has type t, else NULL. */
static const struct metric_series *
metrics_get(int id, enum metric_type t)
{
	if (metrics_cells == NULL || id < 0 || id >= metrics_nseries ||
	    metrics_tab[id].type != t)
		return NULL;
	return &metrics_tab[id];
}

/* Adds n to counter id; a bad id or type is ignored. */
void
metrics_add(int id, uint64_t n)
{
	const struct metric_series *s;

	s = metrics_get(id, MT_COUNTER);
	if (s != NULL)
		__atomic_fetch_add(&metrics_cells[s->cell], n,
		    __ATOMIC_RELAXED);
}

void
metrics_inc(int id)
{
	metrics_add(id, 1);
}

void
metrics_gauge_set(int id, int64_t v)
{
	const struct metric_series *s;

	s = metrics_get(id, MT_GAUGE);
	if (s != NULL)
		__atomic_store_n(&metrics_cells[s->cell], (uint64_t)v,
		    __ATOMIC_RELAXED);
}

/* Adds v (may be negative; two's complement wraps back) to gauge id. */
void
metrics_gauge_add(int id, int64_t v)
{
	const struct metric_series *s;

	s = metrics_get(id, MT_GAUGE);
	if (s != NULL)
		__atomic_fetch_add(&metrics_cells[s->cell], (uint64_t)v,
		    __ATOMIC_RELAXED);
}

/*
 * Counts v into the first bucket whose bound is >= v (le semantics), or
 * +Inf, and adds it to the sum in micro-units. NaN is ignored; negative
 * values count but add nothing to the sum, which must not go down.
 */
void
metrics_observe(int id, double v)
{
	const struct metric_series *s;
	double			    m;
	int			    i;

	s = metrics_get(id, MT_HISTOGRAM);
	if (s == NULL || isnan(v))
		return;
	for (i = 0; i < s->nbounds; i++)
		if (v <= s->bounds[i])
			break;
	__atomic_fetch_add(&metrics_cells[s->cell + i], 1, __ATOMIC_RELAXED);
	if (v > 0) {
		m = v * METRICS_SUM_SCALE + 0.5;
		if (m > 9.0e18)
			m = 9.0e18;
		__atomic_fetch_add(&metrics_cells[s->cell + s->nbounds + 1],
		    (uint64_t)m, __ATOMIC_RELAXED);
	}
}

/* Cell i read atomically. */
static uint64_t
metrics_cell(int i)
{
	return __atomic_load_n(&metrics_cells[i], __ATOMIC_RELAXED);
}

/*
 * A counter's or gauge's value, a histogram's count, or 0 for an unknown
 * id.
 */
int64_t
metrics_value(int id)
{
	const struct metric_series *s;
	uint64_t		    n = 0;
	int			    i;

	if (metrics_cells == NULL || id < 0 || id >= metrics_nseries)
		return 0;
	s = &metrics_tab[id];
	if (s->type != MT_HISTOGRAM)
		return (int64_t)metrics_cell(s->cell);
	for (i = 0; i <= s->nbounds; i++)
		n += metrics_cell(s->cell + i);
	return (int64_t)n;
}

/* `name{labels}` or `name{labels,le="b"}` or `name`; suffix may be "". */
static enum bw_err
metrics_put_name(struct buf *out, const struct metric_series *s,
    const char *suffix, const char *le)
{
	if (le != NULL)
		return buf_printf(out, "%s%s{%s%sle=\"%s\"}", s->name, suffix,
		    s->labels, s->labels[0] != '\0' ? "," : "", le);
	if (s->labels[0] == '\0')
		return buf_printf(out, "%s%s", s->name, suffix);
	return buf_printf(out, "%s%s{%s}", s->name, suffix, s->labels);
}

/* Appends the sample lines of one series. */
static enum bw_err
metrics_put_series(struct buf *out, const struct metric_series *s)
{
	enum bw_err er;
	uint64_t    cum = 0, sum;
	char	    le[32];
	int	    i;

	if (s->type == MT_COUNTER) {
		er = metrics_put_name(out, s, "", NULL);
		if (er == BW_OK)
			er = buf_printf(out, " %" PRIu64 "\n",
			    metrics_cell(s->cell));
		return er;
	}
	if (s->type == MT_GAUGE) {
		er = metrics_put_name(out, s, "", NULL);
		if (er == BW_OK)
			er = buf_printf(out, " %" PRId64 "\n",
			    (int64_t)metrics_cell(s->cell));
		return er;
	}
	for (i = 0; i <= s->nbounds; i++) {
		cum += metrics_cell(s->cell + i);
		if (i < s->nbounds)
			snprintf(le, sizeof(le), "%g", s->bounds[i]);
		else
			snprintf(le, sizeof(le), "+Inf");
		er = metrics_put_name(out, s, "_bucket", le);
		if (er == BW_OK)
			er = buf_printf(out, " %" PRIu64 "\n", cum);
		if (er != BW_OK)
			return er;
	}
	sum = metrics_cell(s->cell + s->nbounds + 1);
	er = metrics_put_name(out, s, "_sum", NULL);
	if (er == BW_OK)
		er = buf_printf(out, " %" PRIu64 ".%06" PRIu64 "\n",
		    sum / 1000000, sum % 1000000);
	if (er == BW_OK)
		er = metrics_put_name(out, s, "_count", NULL);
	if (er == BW_OK)
		er = buf_printf(out, " %" PRIu64 "\n", cum);
	return er;
}

/* `# HELP` with '\' and newline escaped as the text format wants. */
static enum bw_err
metrics_put_help(struct buf *out, const struct metric_series *s)
{
	enum bw_err er;
	const char *p;

	er = buf_printf(out, "# HELP %s ", s->name);
	for (p = s->help; er == BW_OK && *p != '\0'; p++) {
		if (*p == '\\')
			er = buf_addstr(out, "\\\\");
		else if (*p == '\n')
			er = buf_addstr(out, "\\n");
		else
			er = buf_addc(out, *p);
	}
	if (er == BW_OK)
		er = buf_addc(out, '\n');
	return er;
}

/*
 * Renders every family in registration order: `# HELP` and `# TYPE` once,
 * then each series of the family. Returns BW_OK, or BW_ETOOBIG/BW_ENOMEM
 * with out as it was.
 */
enum bw_err
metrics_render(struct buf *out)
{
	static const char *const tnames[MT__MAX] = {
		[MT_COUNTER] = "counter",
		[MT_GAUGE] = "gauge",
		[MT_HISTOGRAM] = "histogram",
	};
	const struct metric_series *s;
	enum bw_err		    er = BW_OK;
	size_t			    olen = out->len;
	int			    i, j, seen;

	if (metrics_cells == NULL)
		return BW_OK;
	for (i = 0; i < metrics_nseries && er == BW_OK; i++) {
		s = &metrics_tab[i];
		for (seen = 0, j = 0; j < i && !seen; j++)
			seen = strcmp(metrics_tab[j].name, s->name) == 0;
		if (seen)
			continue;
		er = metrics_put_help(out, s);
		if (er == BW_OK)
			er = buf_printf(out, "# TYPE %s %s\n", s->name,
			    tnames[s->type]);
		for (j = i; j < metrics_nseries && er == BW_OK; j++)
			if (strcmp(metrics_tab[j].name, s->name) == 0)
				er = metrics_put_series(out, &metrics_tab[j]);
	}
	if (er != BW_OK && out->p != NULL) {
		out->len = olen;
		out->p[olen] = '\0';
	}
	return er;
}
