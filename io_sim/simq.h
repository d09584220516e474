/*
 * simq.h: the simulator's one event queue, ordered by (virtual time in ns,
 * sequence number). The sequence number is assigned at push, so events at
 * the same instant run in the order they were scheduled: the order is a
 * pure function of the pushes, which keeps runs deterministic.
 *
 * A binary min-heap in one array allocated at init, at most SIMQ_EVENTS_MAX
 * events (push returns KEEL_EBUSY when full).
 *
 * Invariants:
 *  1. heap[i] <= heap[2i+1], heap[2i+2] in (at_ns, seq) order.
 *  2. Pop never returns an event earlier than the last popped one (no push
 *     may schedule into the past; asserted).
 */
#ifndef KEEL_SIMQ_H
#define KEEL_SIMQ_H

#include <stddef.h>
#include <stdint.h>

#define SIMQ_EVENTS_MAX (1u << 20)

struct sim_event {
	uint64_t at_ns;
	uint64_t seq;
	uint32_t kind;  /* the simulator's enum */
	uint32_t who;   /* node or client index */
	uint64_t arg;   /* kind-specific (an epoch, an id) */
	void *ptr;      /* kind-specific owned payload (a packet), or NULL */
};

struct simq {
	struct sim_event *heap;
	uint32_t count;
	uint32_t cap;
	uint64_t next_seq;
	uint64_t now_ns; /* time of the last popped event */
};

/* Returns 0 or KEEL_ENOMEM. cap <= SIMQ_EVENTS_MAX. */
int simq_init(struct simq *q, uint32_t cap);
void simq_free(struct simq *q);
/* Schedules ev (its seq is assigned here) at ev->at_ns >= now. Returns 0 or
 * KEEL_EBUSY when the queue is full. */
int simq_push(struct simq *q, const struct sim_event *ev);
/* Pops the earliest event into *out and advances now. Returns 0, or
 * KEEL_ENOTFOUND when empty. */
int simq_pop(struct simq *q, struct sim_event *out);
/* The earliest event without removing it; NULL when empty. */
const struct sim_event *simq_peek(const struct simq *q);

#endif
