/*
 * raft_log.c: the core's in-memory log, entries snapshot_index+1 .. last,
 * each entry's data copied into memory owned by the core.
 *
 * Invariants (referred to as L1.. in asserts):
 *   L1 entries[i].index == snapshot_index + 1 + i (consecutive, no gaps).
 *   L2 terms never decrease along the log, and the first entry's term is
 *      >= snapshot_term.
 *   L3 stable_index <= last and handed_index <= last.
 *   L4 an entry owns its data (data_bytes > 0 iff data != NULL).
 */
#include <string.h>

#include "err.h"
#include "raft_impl.h"

#define LOG_CAP_MIN 64u

void raft_log_init(struct raft_log *l, const struct keel_alloc *a)
{
	memset(l, 0, sizeof(*l));
	l->alloc = *a;
}

static void entry_free_data(struct raft_log *l, struct entry *e)
{
	KEEL_ASSERT((e->data_bytes > 0) == (e->data != NULL)); /* L4 */
	keel_free(&l->alloc, (void *)e->data);
	e->data = NULL;
	e->data_bytes = 0;
}

void raft_log_free(struct raft_log *l)
{
	for (size_t i = 0; i < l->count; i++)
		entry_free_data(l, &l->entries[i]);
	keel_free(&l->alloc, l->entries);
	l->entries = NULL;
	l->count = 0;
	l->cap = 0;
}

uint64_t raft_log_first(const struct raft_log *l)
{
	return l->snapshot_index + 1;
}

uint64_t raft_log_last(const struct raft_log *l)
{
	return l->snapshot_index + l->count;
}

uint64_t raft_log_last_term(const struct raft_log *l)
{
	if (l->count == 0)
		return l->snapshot_term;
	return l->entries[l->count - 1].term;
}

uint64_t raft_log_term(const struct raft_log *l, uint64_t index)
{
	if (index == l->snapshot_index)
		return l->snapshot_term;
	if (index < l->snapshot_index || index > raft_log_last(l))
		return 0;
	const struct entry *e = &l->entries[index - l->snapshot_index - 1];
	KEEL_ASSERT(e->index == index); /* L1 */
	return e->term;
}

const struct entry *raft_log_get(const struct raft_log *l, uint64_t index)
{
	KEEL_ASSERT(index > l->snapshot_index);
	KEEL_ASSERT(index <= raft_log_last(l));
	const struct entry *e = &l->entries[index - l->snapshot_index - 1];
	KEEL_ASSERT(e->index == index); /* L1 */
	return e;
}

static int log_grow(struct raft_log *l)
{
	size_t cap = l->cap < LOG_CAP_MIN ? LOG_CAP_MIN : l->cap * 2;
	struct entry *n = keel_realloc(&l->alloc, l->entries, cap * sizeof(*n));
	if (n == NULL)
		return KEEL_ENOMEM;
	l->entries = n;
	l->cap = cap;
	return 0;
}

int raft_log_append(struct raft_log *l, const struct entry *e)
{
	KEEL_ASSERT(e->index == raft_log_last(l) + 1);     /* L1 */
	KEEL_ASSERT(e->term >= raft_log_last_term(l));     /* L2 */
	KEEL_ASSERT(e->data_bytes <= KEEL_ENTRY_BYTES_MAX);
	if (l->count == l->cap && log_grow(l) != 0)
		return KEEL_ENOMEM;
	uint8_t *data = NULL;
	if (e->data_bytes > 0) {
		data = keel_malloc(&l->alloc, e->data_bytes);
		if (data == NULL)
			return KEEL_ENOMEM;
		memcpy(data, e->data, e->data_bytes);
	}
	struct entry *dst = &l->entries[l->count++];
	*dst = *e;
	dst->data = data;
	return 0;
}

void raft_log_truncate(struct raft_log *l, uint64_t from)
{
	KEEL_ASSERT(from > l->snapshot_index);
	KEEL_ASSERT(from <= raft_log_last(l) + 1);
	while (raft_log_last(l) >= from) {
		entry_free_data(l, &l->entries[l->count - 1]);
		l->count--;
	}
	if (l->stable_index >= from)
		l->stable_index = from - 1;
	if (l->handed_index >= from)
		l->handed_index = from - 1;
	KEEL_ASSERT(l->stable_index <= raft_log_last(l)); /* L3 */
}

void raft_log_compact(struct raft_log *l, uint64_t index, uint64_t term)
{
	KEEL_ASSERT(index > l->snapshot_index);
	KEEL_ASSERT(term > 0);
	size_t drop = (size_t)(index - l->snapshot_index);
	if (drop > l->count)
		drop = l->count; /* a snapshot beyond our log: drop all of it */
	for (size_t i = 0; i < drop; i++)
		entry_free_data(l, &l->entries[i]);
	if (l->count > drop)
		memmove(l->entries, l->entries + drop,
			(l->count - drop) * sizeof(*l->entries));
	l->count -= drop;
	l->snapshot_index = index;
	l->snapshot_term = term;
	if (l->stable_index < index)
		l->stable_index = index;
	if (l->handed_index < index)
		l->handed_index = index;
	if (l->count > 0) {
		KEEL_ASSERT(l->entries[0].index == index + 1); /* L1 */
		KEEL_ASSERT(l->entries[0].term >= term);        /* L2 */
	}
}

uint64_t raft_log_find_by_term(const struct raft_log *l, uint64_t index,
			       uint64_t term)
{
	if (index <= l->snapshot_index)
		return index; /* not held here: the caller falls back to index */
	uint64_t i = index < raft_log_last(l) ? index : raft_log_last(l);
	while (i > l->snapshot_index && raft_log_term(l, i) > term)
		i--;
	KEEL_ASSERT(i >= l->snapshot_index);
	return i;
}
