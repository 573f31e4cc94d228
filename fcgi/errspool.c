/* SPDX-License-Identifier: MIT */
/*
 * See errspool.h. One shared anonymous mapping: the children's notes
 * (keyed by pid; a child writes only its own, the master reads it once the
 * child is dead) and a ring of crash records whose slot states move
 * free -> full (the master, the only producer) -> taken (one child, by
 * compare-and-swap) -> free (that child, after copying).
 */
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "errspool.h"
#include "pool.h"

#define ES_NOTES (2 * POOL_MAX * BW_MAX_FCGI_CHILDREN + 16)
#define ES_RING	 256

enum {
	ES_FREE,
	ES_FULL,
	ES_TAKEN
};

struct es_note {
	pid_t pid; /* 0: free; claimed by CAS */
	char  request_id[BW_MAX_REQUEST_ID + 1];
	char  correlation_id[BW_MAX_REQUEST_ID + 1];
};

struct es_slot {
	int		    state;
	struct errspool_rec rec;
};

struct es_shm {
	struct es_note notes[ES_NOTES];
	struct es_slot ring[ES_RING];
	int	       pending; /* full slots, a hint for takers */
	uint64_t       dropped;
};

static struct es_shm  *es;
static struct es_note *es_mine; /* in a child: its note, or NULL */

int
errspool_init(void)
{
	void *p;

	if (es != NULL)
		return 0;
	p = mmap(NULL, sizeof(*es), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -1;
	es = p;
	return 0;
}

void
errspool_child_start(void)
{
	pid_t  me = getpid(), zero;
	size_t i;

	es_mine = NULL;
	if (es == NULL)
		return;
	for (i = 0; i < ES_NOTES; i++) {
		zero = 0;
		if (__atomic_compare_exchange_n(&es->notes[i].pid, &zero, me, 0,
			__ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
			es_mine = &es->notes[i];
			es_mine->request_id[0] = '\0';
			es_mine->correlation_id[0] = '\0';
			return;
		}
	}
}

static void
es_copy(char *dst, const char *src)
{
	size_t n = src != NULL ? strnlen(src, BW_MAX_REQUEST_ID) : 0;

	memcpy(dst, src != NULL ? src : "", n);
	dst[n] = '\0';
}

void
errspool_note(const char *request_id, const char *correlation_id)
{
	if (es_mine == NULL)
		return;
	es_copy(es_mine->request_id, request_id);
	es_copy(es_mine->correlation_id, correlation_id);
}

void
errspool_died(pid_t pid, int crashed, int pool, int sig, int core,
    int timed_out)
{
	struct es_note *n = NULL;
	struct es_slot *s;
	size_t		i;

	if (es == NULL)
		return;
	for (i = 0; i < ES_NOTES; i++)
		if (__atomic_load_n(&es->notes[i].pid, __ATOMIC_ACQUIRE) ==
		    pid) {
			n = &es->notes[i];
			break;
		}
	if (crashed) {
		for (i = 0; i < ES_RING; i++) {
			s = &es->ring[i];
			if (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) !=
			    ES_FREE)
				continue;
			memset(&s->rec, 0, sizeof(s->rec));
			s->rec.pool = pool;
			s->rec.sig = sig;
			s->rec.core = core;
			s->rec.timed_out = timed_out;
			if (n != NULL) {
				es_copy(s->rec.request_id, n->request_id);
				es_copy(s->rec.correlation_id,
				    n->correlation_id);
			}
			__atomic_store_n(&s->state, ES_FULL, __ATOMIC_RELEASE);
			__atomic_add_fetch(&es->pending, 1, __ATOMIC_RELEASE);
			break;
		}
		if (i == ES_RING)
			__atomic_add_fetch(&es->dropped, 1, __ATOMIC_RELAXED);
	}
	if (n != NULL)
		__atomic_store_n(&n->pid, 0, __ATOMIC_RELEASE);
}

int
errspool_take(struct errspool_rec *out)
{
	struct es_slot *s;
	size_t		i;
	int		full;

	if (es == NULL || __atomic_load_n(&es->pending, __ATOMIC_ACQUIRE) <= 0)
		return 0;
	for (i = 0; i < ES_RING; i++) {
		s = &es->ring[i];
		full = ES_FULL;
		if (!__atomic_compare_exchange_n(&s->state, &full, ES_TAKEN, 0,
			__ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
			continue;
		*out = s->rec;
		__atomic_sub_fetch(&es->pending, 1, __ATOMIC_RELEASE);
		__atomic_store_n(&s->state, ES_FREE, __ATOMIC_RELEASE);
		return 1;
	}
	return 0;
}

uint64_t
errspool_dropped(void)
{
	return es != NULL ? __atomic_load_n(&es->dropped, __ATOMIC_RELAXED) : 0;
}
