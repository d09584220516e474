/*
 * mem_map.c: the memory store's hash map; see mem_map.h.
 *
 * Invariants:
 *   H1 open addressing with linear probing; a slot is NULL (never used),
 *      MEM_MAP_TOMB (deleted) or a record; lookups stop at NULL.
 *   H2 used (records + tombstones) stays <= 3/4 of cap after a reserve, so
 *      a probe always meets a NULL slot.
 *   H3 digest == the sum of the live records' digests.
 */
#include "mem_map.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "../core/assert.h"
#include "../core/err.h"

#define MAP_CAP_MIN 16u

static uint64_t key_hash(const uint8_t *key, uint32_t key_bytes)
{
	return XXH3_64bits(key, key_bytes);
}

static bool rec_is(const struct mem_rec *r, uint64_t h, const uint8_t *key,
		   uint32_t key_bytes)
{
	return r->hash == h && r->key_bytes == key_bytes &&
	       memcmp(r->bytes, key, key_bytes) == 0;
}

/* Slot of key, or UINT32_MAX when absent. */
static uint32_t map_find(const struct mem_map *m, const uint8_t *key,
			 uint32_t key_bytes, uint64_t h)
{
	if (m->cap == 0)
		return UINT32_MAX;
	uint32_t mask = m->cap - 1;
	for (uint32_t i = (uint32_t)h & mask, n = 0; n < m->cap;
	     i = (i + 1) & mask, n++) {
		struct mem_rec *r = m->slots[i];
		if (r == NULL)
			return UINT32_MAX;
		if (r != MEM_MAP_TOMB && rec_is(r, h, key, key_bytes))
			return i;
	}
	return UINT32_MAX;
}

static void map_place(struct mem_map *m, struct mem_rec *r)
{
	uint32_t mask = m->cap - 1;
	uint32_t i = (uint32_t)r->hash & mask;
	while (m->slots[i] != NULL && m->slots[i] != MEM_MAP_TOMB)
		i = (i + 1) & mask;
	if (m->slots[i] == NULL)
		m->used++;
	m->slots[i] = r;
	m->count++;
}

/* Make room for one more entry. 0 or KEEL_ENOMEM. */
int mem_map_reserve(struct mem_map *m)
{
	if (m->count >= MEM_MAP_KEYS_MAX)
		return KEEL_ENOMEM;
	if (m->cap != 0 && (uint64_t)(m->used + 1) * 4 <= (uint64_t)m->cap * 3)
		return 0;
	uint32_t cap = m->cap == 0 ? MAP_CAP_MIN : m->cap;
	while ((uint64_t)(m->count + 1) * 2 > cap)
		cap *= 2;
	struct mem_rec **slots = calloc(cap, sizeof(*slots));
	if (slots == NULL)
		return KEEL_ENOMEM;
	struct mem_map old = *m;
	m->slots = slots;
	m->cap = cap;
	m->count = 0;
	m->used = 0;
	for (uint32_t i = 0; i < old.cap; i++)
		if (old.slots[i] != NULL && old.slots[i] != MEM_MAP_TOMB)
			map_place(m, old.slots[i]);
	KEEL_ASSERT(m->count == old.count);
	free(old.slots);
	return 0;
}

struct mem_rec *mem_map_get(const struct mem_map *m, const uint8_t *key,
			       uint32_t key_bytes)
{
	uint32_t i = map_find(m, key, key_bytes, key_hash(key, key_bytes));
	return i == UINT32_MAX ? NULL : m->slots[i];
}

/* Replace the record of r's key by r (r NULL: remove key k). Never fails:
 * the caller reserved room. Returns the previous record or NULL. */
struct mem_rec *mem_map_swap(struct mem_map *m, const uint8_t *key,
				uint32_t key_bytes, struct mem_rec *r)
{
	uint64_t h = key_hash(key, key_bytes);
	uint32_t i = map_find(m, key, key_bytes, h);
	struct mem_rec *prev = i == UINT32_MAX ? NULL : m->slots[i];
	if (prev != NULL)
		m->digest -= prev->digest;
	if (r != NULL)
		m->digest += r->digest;
	if (prev != NULL && r != NULL) {
		m->slots[i] = r;
	} else if (prev != NULL) {
		m->slots[i] = MEM_MAP_TOMB;
		m->count--;
	} else if (r != NULL) {
		KEEL_ASSERT(m->cap != 0);
		KEEL_ASSERT(m->used < m->cap);
		map_place(m, r);
	}
	return prev;
}

void mem_map_free(struct mem_map *m)
{
	for (uint32_t i = 0; i < m->cap; i++)
		if (m->slots[i] != NULL && m->slots[i] != MEM_MAP_TOMB)
			free(m->slots[i]);
	free(m->slots);
	memset(m, 0, sizeof(*m));
}

struct mem_rec *mem_rec_new(const uint8_t *key, uint32_t key_bytes,
			       const uint8_t *val, uint32_t val_bytes)
{
	struct mem_rec *r = malloc(sizeof(*r) + (size_t)key_bytes + val_bytes);
	if (r == NULL)
		return NULL;
	r->hash = key_hash(key, key_bytes);
	r->key_bytes = key_bytes;
	r->val_bytes = val_bytes;
	memcpy(r->bytes, key, key_bytes);
	if (val_bytes > 0)
		memcpy(r->bytes + key_bytes, val, val_bytes);
	r->digest = XXH3_64bits_withSeed(r->bytes, (size_t)key_bytes + val_bytes,
					 key_bytes);
	return r;
}
