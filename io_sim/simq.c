/* simq.c: the (time, seq) ordered event heap (see simq.h). */
#include "simq.h"

#include <stdbool.h>
#include <stdlib.h>

#include "../core/assert.h"
#include "../core/err.h"

int simq_init(struct simq *q, uint32_t cap)
{
	KEEL_ASSERT(cap > 0 && cap <= SIMQ_EVENTS_MAX);
	q->heap = calloc(cap, sizeof(*q->heap));
	if (q->heap == NULL)
		return KEEL_ENOMEM;
	q->count = 0;
	q->cap = cap;
	q->next_seq = 0;
	q->now_ns = 0;
	return 0;
}

void simq_free(struct simq *q)
{
	free(q->heap);
	q->heap = NULL;
	q->count = 0;
}

static bool before(const struct sim_event *a, const struct sim_event *b)
{
	if (a->at_ns != b->at_ns)
		return a->at_ns < b->at_ns;
	return a->seq < b->seq;
}

int simq_push(struct simq *q, const struct sim_event *ev)
{
	KEEL_ASSERT(ev->at_ns >= q->now_ns); /* invariant 2 */
	if (q->count == q->cap)
		return KEEL_EBUSY;
	uint32_t i = q->count++;
	struct sim_event e = *ev;
	e.seq = q->next_seq++;
	while (i > 0) {
		uint32_t parent = (i - 1) / 2;
		if (!before(&e, &q->heap[parent]))
			break;
		q->heap[i] = q->heap[parent];
		i = parent;
	}
	q->heap[i] = e;
	return 0;
}

int simq_pop(struct simq *q, struct sim_event *out)
{
	if (q->count == 0)
		return KEEL_ENOTFOUND;
	*out = q->heap[0];
	struct sim_event last = q->heap[--q->count];
	uint32_t i = 0;
	for (;;) { /* sift down: at most log2(cap) steps */
		uint32_t c = 2 * i + 1;
		if (c >= q->count)
			break;
		if (c + 1 < q->count && before(&q->heap[c + 1], &q->heap[c]))
			c++;
		if (!before(&q->heap[c], &last))
			break;
		q->heap[i] = q->heap[c];
		i = c;
	}
	if (q->count > 0)
		q->heap[i] = last;
	KEEL_ASSERT(out->at_ns >= q->now_ns);
	q->now_ns = out->at_ns;
	return 0;
}

const struct sim_event *simq_peek(const struct simq *q)
{
	return q->count ? &q->heap[0] : NULL;
}
