/* SPDX-License-Identifier: MIT */
/*
 * The LLM semaphore (DESIGN.md "Coordination"): leases in Redis sorted sets
 * for the global cap and each org's cap, taken together or not at all, each
 * with an expiry in Redis server time, renewed while the call runs and
 * released by its own lease id. Waiters queue per org; orgs with waiters
 * are served round-robin, so one busy org delays another org's request by
 * at most one slot turn. Every key shares the hash tag {llm}.
 */
#ifndef BW_SEM_H
#define BW_SEM_H

#include <stdint.h>

#include "core/err.h"
#include "core/rds.h"

#define SEM_ID_LEN	       32 /* lease and waiter ids, hex */
#define SEM_MAX_ORG	       64 /* an org id (a UUID is 36) */
#define SEM_DEFAULT_GLOBAL_CAP 15
#define SEM_DEFAULT_ORG_CAP    5
#define SEM_DEFAULT_LEASE_MS   15000 /* renew every lease_ms / 3 */
#define SEM_DEFAULT_WAIT_MS    10000 /* queue deadline */
#define SEM_WAITER_TTL_MS      3000  /* a silent waiter leaves the queue */
#define SEM_POLL_MS	       200   /* longest sleep between tries */

struct sem_lease {
	char	id[SEM_ID_LEN + 1];
	char	org_id[SEM_MAX_ORG + 1];
	int	lease_ms;
	int64_t expires_ms; /* Redis server time, epoch ms */
	/* clock_mono_ms() by which the lease has surely not expired yet:
	 * the send of the grant or of the last renewal + lease_ms. A holder
	 * that could not renew stops its call before this. */
	int64_t valid_mono_ms;
};

/* Counters one acquire reports for the metrics. */
struct sem_stats {
	int64_t wait_us;   /* time spent queued */
	int	reclaimed; /* expired leases this call freed */
	int	tries;	   /* acquire scripts run */
	int	fenced;	   /* tries refused: a new master's fence (sem.c) */
};

/*
 * Takes one lease in the global set (cap global_cap) and in org_id's set
 * (cap org_cap) together, or queues in the org's queue and waits (woken by
 * releases, polling at most every SEM_POLL_MS) until it is this waiter's
 * turn and a slot is free, or until wait_ms passed. lease_ms is the lease
 * expiry (renew with sem_renew). *st (may be NULL) is filled in every case.
 * Returns BW_OK with *out the lease, BW_ETIMEOUT when the deadline passed
 * (the waiter has left the queue: answer 503 CAPACITY_EXHAUSTED), BW_EINVAL,
 * or BW_EREDIS when Redis failed (also a Redis timeout; the waiter's queue
 * entry then expires by itself).
 */
enum bw_err
sem_acquire(struct rds *, const char *org_id, int global_cap, int org_cap,
    int lease_ms, int wait_ms, struct sem_lease *out, struct sem_stats *st);
/*
 * The provider's circuit breaker, checked by the acquire in the same
 * script (its key and timings as lib/chat/breaker.h has them): state gets
 * the breaker's state as the last try saw it.
 */
struct sem_brk {
	const char *key; /* breaker_key() */
	int	    open_ms;
	int	    probe_ms;
	int	    state; /* out: enum brk_state */
};
/*
 * sem_acquire() that also asks the breaker brk (NULL: none) in the same
 * script: a grant is also the breaker's "allowed" (taking the half-open
 * probe when it is due, as breaker_allow() does), and a breaker that
 * would refuse answers BW_EUPSTREAM at once, no slot taken and the waiter
 * out of the queue. One round trip when nobody waits and there is room.
 */
enum bw_err sem_acquire_brk(struct rds *, const char *org_id, int global_cap,
    int org_cap, int lease_ms, int wait_ms, struct sem_brk *brk,
    struct sem_lease *out, struct sem_stats *st);
/*
 * An acquire whose first try rides in a caller's pipeline with other
 * commands (core/rds.h), so that a turn's first Redis round trip also asks
 * for its slot. sem_acquire_prep() fills *call (pointing into ac, which
 * must outlive it; ac->brk, when not NULL, too); after rds_pipeline(),
 * sem_acquire_first() reads the try's answer (the caller then frees
 * call->reply). Then exactly one of:
 *   - sem_acquire_wait(): sem_acquire_brk()'s outcome and returns, queueing
 *     and waiting on from the first try when it queued (the deadline
 *     counted from the prep; st->wait_us is the first try's round trip
 *     plus the time waited here, not the caller's work between them);
 *   - sem_acquire_abandon(): the caller goes no further. A lease the first
 *     try granted is released, and a half-open breaker's probe it took is
 *     given back; a waiter leaves the queue.
 */
enum {
	SEM_FIRST_QUEUED = 0,
	SEM_FIRST_GRANTED = 1,
	SEM_FIRST_BREAKER = 2,
	SEM_FIRST_NONE = 3 /* no answer read (or an error) */
};
struct sem_acquire_call {
	struct sem_lease l;
	struct sem_brk	*brk;
	struct sem_stats s;
	char		 waiter[SEM_ID_LEN + 1];
	char		 num[6][16];
	const char	*av[7 + 10]; /* the keys (and the breaker's), argv */
	int		 nkeys;
	int64_t		 t0_us;	      /* the prep */
	int64_t		 deadline_ms; /* clock_mono_ms() */
	int64_t		 tsend_ms;    /* the first try's send */
	int64_t		 waited_us;   /* the prep to the first answer */
	int		 first;	      /* its answer: SEM_FIRST_* */
	int		 probe;	      /* the grant took a half-open probe */
	enum bw_err	 er;	      /* BW_OK, or what ended the first try */
};
enum bw_err sem_acquire_prep(struct sem_acquire_call *ac, const char *org_id,
    int global_cap, int org_cap, int lease_ms, int wait_ms, struct sem_brk *brk,
    struct rds_call *call);
void
sem_acquire_first(struct sem_acquire_call *ac, const struct rds_call *call);
enum bw_err sem_acquire_wait(struct rds *, struct sem_acquire_call *ac,
    struct sem_lease *out, struct sem_stats *st);
void	    sem_acquire_abandon(struct rds *, struct sem_acquire_call *ac);
/*
 * Pushes the lease's expiry to now + l->lease_ms. Returns BW_OK,
 * BW_ENOTFOUND when the lease is gone (it expired and was reclaimed: the
 * caller no longer holds a slot), or BW_EREDIS.
 */
enum bw_err sem_renew(struct rds *, struct sem_lease *l);
/*
 * Releases exactly this lease (by its id) and wakes the next waiter.
 * Releasing a lease that expired and was reclaimed frees nothing else.
 * Returns BW_OK, BW_ENOTFOUND (it was no longer held), or BW_EREDIS.
 */
enum bw_err sem_release(struct rds *, const struct sem_lease *l);
/*
 * sem_release() that, with brk_key (may be NULL) and record_ok, also
 * records a provider success on the breaker (breaker_record() with ok 1)
 * in the same script.
 */
enum bw_err sem_release_brk(struct rds *, const struct sem_lease *l,
    const char *brk_key, int record_ok);
/* The argv a prepared release points into; lives until it is done. */
struct sem_release_call {
	const char *av[11];
	int	    nkeys;
	int	    argc;
};
/*
 * sem_release_brk() as one call of a pipeline (core/rds.h), for a caller
 * that sends it with other commands: prep fills *call (pointing into rc
 * and l, which must outlive it), done reads its answer after
 * rds_pipeline() with sem_release()'s returns. The caller frees
 * call->reply.
 */
enum bw_err
sem_release_prep(struct sem_release_call *rc, const struct sem_lease *l,
    const char *brk_key, int record_ok, struct rds_call *call);
enum bw_err sem_release_done(const struct rds_call *call);
/*
 * Leases now held (expired ones not counted): globally when org_id is NULL,
 * else for that org. For the leases-in-use gauge and for tests.
 */
enum bw_err sem_count(struct rds *, const char *org_id, int *n);
/* Waiters queued for org_id (NULL: all orgs). */
enum bw_err sem_waiting(struct rds *, const char *org_id, int *n);

#endif
