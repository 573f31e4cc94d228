/* SPDX-License-Identifier: MIT */
/*
 * The per-child cache: per cache a fixed array of entries used as a ring
 * (the next insert takes the slot after the last one, evicting what was
 * there: the oldest insert), a chained hash index over it, and one flush
 * epoch for all caches that an entry must carry to be served.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/metrics.h"
#include "platform/pcache.h"

struct pc_ent {
	uint8_t	 key[PCACHE_KEY_MAX];
	size_t	 klen;
	void	*val;
	size_t	 vlen;
	uint64_t epoch;	     /* pc_epoch when stored */
	int64_t	 expires_us; /* monotonic */
	int	 used;
	int	 next; /* hash chain, -1 ends */
};

struct pc {
	size_t	       cap;
	size_t	       nbuckets;
	struct pc_ent *ents;
	int	      *buckets;
	size_t	       ring; /* the slot the next new key takes */
	int	       m_hit, m_miss;
};

static const char *const pc_names[PC__MAX] = {
	[PC_AUTH] = "auth",
	[PC_AUTH_NEG] = "auth_negative",
	[PC_RATE] = "ratelimit_overrides",
	[PC_CHAT_SETTINGS] = "chat_settings",
};

static struct pc pc_caches[PC__MAX];
static int	 pc_ttl_s;
static char	 pc_genv[PCACHE_GEN_MAX + 1]; /* "" unknown */
static uint64_t	 pc_epoch = 1;
static int	 m_flushes = -1;
static int	 m_ids_set;
static int64_t (*pc_clock)(void) = clock_mono_us;

#ifdef BW_TESTING
void
pcache_set_clock(int64_t (*now_us)(void))
{
	pc_clock = now_us != NULL ? now_us : clock_mono_us;
}
#endif

static uint64_t
pc_hash(const void *key, size_t klen)
{
	const uint8_t *p = key;
	uint64_t       h = 1469598103934665603ULL;
	size_t	       i;

	for (i = 0; i < klen; i++) {
		h ^= p[i];
		h *= 1099511628211ULL;
	}
	return h;
}

/* Counts into series id once pcache_metrics_register() set the ids. */
static void
pc_inc(int id)
{
	if (m_ids_set)
		metrics_inc(id);
}

static void
pc_free_all(struct pc *c)
{
	size_t i;

	if (c->ents != NULL)
		for (i = 0; i < c->cap; i++)
			free(c->ents[i].val);
	free(c->ents);
	free(c->buckets);
	c->ents = NULL;
	c->buckets = NULL;
	c->cap = c->nbuckets = c->ring = 0;
}

/* Empties c, keeping its arrays. */
static void
pc_clear(struct pc *c)
{
	size_t i;

	for (i = 0; i < c->cap; i++) {
		free(c->ents[i].val);
		memset(&c->ents[i], 0, sizeof(c->ents[i]));
		c->ents[i].next = -1;
	}
	for (i = 0; i < c->nbuckets; i++)
		c->buckets[i] = -1;
	c->ring = 0;
}

enum bw_err
pcache_setup(int ttl_s, size_t cap)
{
	size_t i;

	for (i = 0; i < PC__MAX; i++)
		pc_free_all(&pc_caches[i]);
	pc_genv[0] = '\0';
	pc_epoch++;
	pc_ttl_s = ttl_s > 0 ? ttl_s : 0;
	if (pc_ttl_s == 0)
		return BW_OK;
	for (i = 0; i < PC__MAX; i++) {
		struct pc *c = &pc_caches[i];
		size_t	   n = cap;

		if (n == 0)
			n = i == PC_AUTH_NEG || i == PC_CHAT_SETTINGS ? 256
								      : 1024;
		c->cap = n;
		c->nbuckets = n * 2;
		c->ents = calloc(n, sizeof(*c->ents));
		c->buckets = calloc(c->nbuckets, sizeof(*c->buckets));
		if (c->ents == NULL || c->buckets == NULL) {
			pc_ttl_s = 0;
			return BW_ENOMEM;
		}
		pc_clear(c);
	}
	return BW_OK;
}

int
pcache_enabled(void)
{
	return pc_ttl_s > 0;
}

const char *
pcache_gen(void)
{
	return pc_genv;
}

void
pcache_flush(void)
{
	size_t i;

	for (i = 0; i < PC__MAX; i++)
		if (pc_caches[i].ents != NULL)
			pc_clear(&pc_caches[i]);
	pc_epoch++;
	pc_genv[0] = '\0';
	pc_inc(m_flushes);
}

int
pcache_gen_observe(const char *gen)
{
	if (gen == NULL || strlen(gen) > PCACHE_GEN_MAX)
		gen = "";
	if (strcmp(gen, pc_genv) == 0)
		return 0;
	if (pc_genv[0] == '\0') {
		/* From unknown: nothing was stored while unknown. */
		snprintf(pc_genv, sizeof(pc_genv), "%s", gen);
		return 0;
	}
	pcache_flush();
	snprintf(pc_genv, sizeof(pc_genv), "%s", gen);
	return 1;
}

/* The index of key's live or stale entry in c, or -1; *prev its
 * predecessor in the chain (-1 when first). */
static int
pc_find(const struct pc *c, const void *key, size_t klen, size_t *bucket,
    int *prev)
{
	int i;

	*bucket = (size_t)(pc_hash(key, klen) % c->nbuckets);
	*prev = -1;
	for (i = c->buckets[*bucket]; i >= 0; i = c->ents[i].next) {
		if (c->ents[i].klen == klen &&
		    memcmp(c->ents[i].key, key, klen) == 0)
			return i;
		*prev = i;
	}
	return -1;
}

/* Unlinks slot i of c from its chain and frees its value. */
static void
pc_drop(struct pc *c, int i)
{
	size_t b;
	int    prev, j;

	j = pc_find(c, c->ents[i].key, c->ents[i].klen, &b, &prev);
	if (j == i) {
		if (prev < 0)
			c->buckets[b] = c->ents[i].next;
		else
			c->ents[prev].next = c->ents[i].next;
	}
	free(c->ents[i].val);
	memset(&c->ents[i], 0, sizeof(c->ents[i]));
	c->ents[i].next = -1;
}

const void *
pcache_get(enum pcache_id id, const void *key, size_t klen, size_t *vlen)
{
	struct pc *c;
	size_t	   b;
	int	   i, prev;

	if ((unsigned)id >= PC__MAX)
		return NULL;
	c = &pc_caches[id];
	if (pc_ttl_s == 0 || c->ents == NULL || pc_genv[0] == '\0' ||
	    key == NULL || klen == 0 || klen > PCACHE_KEY_MAX)
		goto miss;
	i = pc_find(c, key, klen, &b, &prev);
	if (i < 0)
		goto miss;
	if (c->ents[i].epoch != pc_epoch ||
	    pc_clock() >= c->ents[i].expires_us) {
		pc_drop(c, i);
		goto miss;
	}
	pc_inc(c->m_hit);
	if (vlen != NULL)
		*vlen = c->ents[i].vlen;
	return c->ents[i].val;
miss:
	if ((unsigned)id < PC__MAX)
		pc_inc(pc_caches[id].m_miss);
	return NULL;
}

enum bw_err
pcache_put(enum pcache_id id, const void *key, size_t klen, const void *val,
    size_t vlen, int64_t max_age_ms)
{
	struct pc *c;
	void	  *copy;
	int64_t	   age_us;
	size_t	   b;
	int	   i, prev;

	if ((unsigned)id >= PC__MAX || key == NULL || klen == 0 ||
	    klen > PCACHE_KEY_MAX || (val == NULL && vlen > 0))
		return BW_EINVAL;
	c = &pc_caches[id];
	if (pc_ttl_s == 0 || c->ents == NULL || pc_genv[0] == '\0' ||
	    vlen > PCACHE_VAL_MAX)
		return BW_OK;
	copy = malloc(vlen > 0 ? vlen : 1);
	if (copy == NULL)
		return BW_ENOMEM;
	if (vlen > 0)
		memcpy(copy, val, vlen);
	age_us = (int64_t)pc_ttl_s * 1000000;
	if (max_age_ms > 0 && max_age_ms * 1000 < age_us)
		age_us = max_age_ms * 1000;
	i = pc_find(c, key, klen, &b, &prev);
	if (i >= 0) {
		free(c->ents[i].val);
	} else {
		i = (int)(c->ring % c->cap);
		c->ring = (c->ring + 1) % c->cap;
		if (c->ents[i].used)
			pc_drop(c, i);
		memcpy(c->ents[i].key, key, klen);
		c->ents[i].klen = klen;
		c->ents[i].used = 1;
		c->ents[i].next = c->buckets[b];
		c->buckets[b] = i;
	}
	c->ents[i].val = copy;
	c->ents[i].vlen = vlen;
	c->ents[i].epoch = pc_epoch;
	c->ents[i].expires_us = pc_clock() + age_us;
	return BW_OK;
}

size_t
pcache_count(enum pcache_id id)
{
	const struct pc *c;
	size_t		 i, n = 0;

	if ((unsigned)id >= PC__MAX)
		return 0;
	c = &pc_caches[id];
	for (i = 0; i < c->cap; i++)
		n += c->ents[i].used ? 1 : 0;
	return n;
}

int
pcache_metrics_register(void)
{
	char   labels[64];
	size_t i;

	for (i = 0; i < PC__MAX; i++) {
		snprintf(labels, sizeof(labels), "cache=\"%s\"", pc_names[i]);
		pc_caches[i].m_hit =
		    metrics_counter("bulwark_pcache_hits_total",
			"Per-child cache lookups answered from the cache.",
			labels);
		pc_caches[i].m_miss =
		    metrics_counter("bulwark_pcache_misses_total",
			"Per-child cache lookups that went to the database.",
			labels);
		if (pc_caches[i].m_hit < 0 || pc_caches[i].m_miss < 0)
			return -1;
	}
	m_flushes = metrics_counter("bulwark_pcache_flushes_total",
	    "Per-child cache flushes: the configuration generation changed "
	    "or could not be read.",
	    NULL);
	m_ids_set = 1;
	return m_flushes < 0 ? -1 : 0;
}
