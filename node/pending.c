/* pending.c: the table of client requests waiting for an answer. */
#include <stdlib.h>
#include <string.h>

#include "../core/assert.h"
#include "../core/err.h"
#include "pending.h"

int pending_init(struct pending_table *t, uint32_t cap)
{
	memset(t, 0, sizeof *t);
	uint32_t nb = 1;
	while (nb < cap * 2)
		nb *= 2;
	t->slots = calloc(cap, sizeof *t->slots);
	t->buckets = malloc(nb * sizeof *t->buckets);
	if (t->slots == NULL || t->buckets == NULL) {
		pending_free(t);
		return KEEL_ENOMEM;
	}
	for (uint32_t i = 0; i < nb; i++)
		t->buckets[i] = -1;
	t->cap = cap;
	t->bucket_mask = nb - 1;
	for (uint32_t i = 0; i < cap; i++)
		t->slots[i].next = i + 1 < cap ? (int32_t)(i + 1) : -1;
	t->free_head = cap > 0 ? 0 : -1;
	return 0;
}

void pending_free(struct pending_table *t)
{
	if (t->slots != NULL)
		for (uint32_t i = 0; i < t->cap; i++)
			free(t->slots[i].key);
	free(t->slots);
	free(t->buckets);
	memset(t, 0, sizeof *t);
}

static uint32_t bucket_of(const struct pending_table *t, uint64_t client_id,
			  uint64_t seq)
{
	uint64_t h = client_id * 0x9e3779b97f4a7c15ull ^ (seq + 0x632be59bd9b4e019ull);
	h ^= h >> 29;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 32;
	return (uint32_t)h & t->bucket_mask;
}

struct pending *pending_alloc(struct pending_table *t, uint32_t kind)
{
	KEEL_ASSERT(kind != PENDING_FREE);
	if (t->free_head < 0)
		return NULL;
	struct pending *p = &t->slots[t->free_head];
	KEEL_ASSERT(p->kind == PENDING_FREE);
	t->free_head = p->next;
	uint32_t gen = p->gen + 1;
	memset(p, 0, sizeof *p);
	p->gen = gen;
	p->kind = kind;
	p->next = -1;
	t->used++;
	KEEL_ASSERT(t->used <= t->cap); /* invariant 1 */
	return p;
}

static void unindex(struct pending_table *t, struct pending *p)
{
	int32_t idx = (int32_t)(p - t->slots);
	int32_t *link = &t->buckets[bucket_of(t, p->client_id, p->seq)];
	while (*link >= 0) {
		if (*link == idx) {
			*link = p->next;
			return;
		}
		link = &t->slots[*link].next;
	}
	KEEL_UNREACHABLE(); /* invariant 2 */
}

void pending_release(struct pending_table *t, struct pending *p)
{
	KEEL_ASSERT(p->kind != PENDING_FREE);
	if (p->kind == PENDING_WRITE)
		unindex(t, p);
	free(p->key);
	p->key = NULL;
	p->kind = PENDING_FREE;
	p->conn = NULL;
	p->next = t->free_head;
	t->free_head = (int32_t)(p - t->slots);
	KEEL_ASSERT(t->used > 0);
	t->used--;
}

uint64_t pending_token(const struct pending_table *t, const struct pending *p)
{
	return ((uint64_t)p->gen << 32) | (uint64_t)(p - t->slots);
}

struct pending *pending_by_token(struct pending_table *t, uint64_t token)
{
	uint32_t idx = (uint32_t)token;
	if (idx >= t->cap)
		return NULL;
	struct pending *p = &t->slots[idx];
	if (p->kind == PENDING_FREE || p->gen != (uint32_t)(token >> 32))
		return NULL;
	return p;
}

void pending_index_write(struct pending_table *t, struct pending *p)
{
	KEEL_ASSERT(p->kind == PENDING_WRITE);
	uint32_t b = bucket_of(t, p->client_id, p->seq);
	p->next = t->buckets[b];
	t->buckets[b] = (int32_t)(p - t->slots);
}

struct pending *pending_find_write(struct pending_table *t, uint64_t client_id,
				   uint64_t seq)
{
	int32_t i = t->buckets[bucket_of(t, client_id, seq)];
	while (i >= 0) {
		struct pending *p = &t->slots[i];
		if (p->client_id == client_id && p->seq == seq)
			return p;
		i = p->next;
	}
	return NULL;
}
