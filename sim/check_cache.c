/*
 * check_cache.c: the budget and the cache of visited configurations.
 *
 * Invariants:
 *  1. budget->used is the sum of what was taken and not given back, and
 *     never exceeds budget->max.
 *  2. slots is open-addressed with linear probing, at most half full; a
 *     slot with number 0 is empty; the key of pair n is stored once, in
 *     keys, and never changes.
 */
#include "check_cache.h"

#include <stdlib.h>
#include <string.h>

#include "../core/assert.h"
#include "../core/err.h"

#define SLOTS_MIN 64u

bool check_budget_take(struct check_budget *b, uint64_t bytes)
{
	if (bytes > b->max || b->used > b->max - bytes)
		return false;
	b->used += bytes;
	if (b->used > b->peak)
		b->peak = b->used;
	return true;
}

void check_budget_give(struct check_budget *b, uint64_t bytes)
{
	KEEL_ASSERT(bytes <= b->used);
	b->used -= bytes;
}

static uint64_t slots_bytes(uint32_t n)
{
	return (uint64_t)n * 16;
}

int check_cache_init(struct check_cache *c, struct check_budget *b, uint32_t key_words,
		     uint32_t slots_hint)
{
	KEEL_ASSERT(key_words >= 1);
	memset(c, 0, sizeof *c);
	c->budget = b;
	c->key_words = key_words;
	uint32_t n = SLOTS_MIN;
	while (n < slots_hint && n < (1u << 20))
		n *= 2;
	if (!check_budget_take(b, slots_bytes(n)))
		return KEEL_ENOMEM;
	c->slots = calloc(n, 16);
	if (c->slots == NULL) {
		check_budget_give(b, slots_bytes(n));
		return KEEL_ENOMEM;
	}
	c->slot_count = n;
	return 0;
}

void check_cache_free(struct check_cache *c)
{
	if (c->budget != NULL) {
		check_budget_give(c->budget, slots_bytes(c->slot_count));
		check_budget_give(c->budget, c->key_cap * c->key_words * 8);
	}
	free(c->slots);
	free(c->keys);
	memset(c, 0, sizeof *c);
}

static int grow_slots(struct check_cache *c)
{
	uint32_t n = c->slot_count * 2;
	if (n == 0 || !check_budget_take(c->budget, slots_bytes(n)))
		return KEEL_ENOMEM;
	uint64_t *s = calloc(n, 16);
	if (s == NULL) {
		check_budget_give(c->budget, slots_bytes(n));
		return KEEL_ENOMEM;
	}
	for (uint32_t i = 0; i < c->slot_count; i++) {
		const uint64_t *old = c->slots + 2 * (uint64_t)i;
		if ((old[1] >> 32) == 0)
			continue;
		uint32_t j = (uint32_t)old[0] & (n - 1);
		while ((s[2 * (uint64_t)j + 1] >> 32) != 0)
			j = (j + 1) & (n - 1);
		s[2 * (uint64_t)j] = old[0];
		s[2 * (uint64_t)j + 1] = old[1];
	}
	free(c->slots);
	check_budget_give(c->budget, slots_bytes(c->slot_count));
	c->slots = s;
	c->slot_count = n;
	return 0;
}

static int grow_keys(struct check_cache *c)
{
	uint64_t cap = c->key_cap ? c->key_cap * 2 : 1024;
	uint64_t extra = (cap - c->key_cap) * c->key_words * 8;
	if (cap >= UINT32_MAX || !check_budget_take(c->budget, extra))
		return KEEL_ENOMEM;
	uint64_t *k = realloc(c->keys, cap * c->key_words * 8);
	if (k == NULL) {
		check_budget_give(c->budget, extra);
		return KEEL_ENOMEM;
	}
	c->keys = k;
	c->key_cap = cap;
	return 0;
}

int check_cache_insert(struct check_cache *c, uint64_t hash, uint32_t state,
		       const uint64_t *key)
{
	if ((uint64_t)(c->count + 1) * 2 > c->slot_count) {
		int rc = grow_slots(c);
		if (rc != 0)
			return rc;
	}
	uint32_t mask = c->slot_count - 1;
	uint32_t words = c->key_words;
	uint32_t i = (uint32_t)hash & mask;
	uint64_t *slot = c->slots + 2 * (uint64_t)i;
	for (; (slot[1] >> 32) != 0; i = (i + 1) & mask, slot = c->slots + 2 * (uint64_t)i) {
		if (slot[0] != hash || (uint32_t)slot[1] != state)
			continue;
		const uint64_t *k = c->keys + ((slot[1] >> 32) - 1) * words;
		uint32_t w = 0;
		while (w < words && k[w] == key[w])
			w++;
		if (w == words)
			return 0;
	}
	if (c->count == c->key_cap) {
		int rc = grow_keys(c);
		if (rc != 0)
			return rc;
	}
	memcpy(c->keys + (uint64_t)c->count * words, key, words * 8u);
	c->count++;
	slot[0] = hash;
	slot[1] = state | (uint64_t)c->count << 32;
	return 1;
}
