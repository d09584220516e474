/*
 * mem_map.h: a bytes -> bytes hash map for the in-memory store
 * (io_sim/mem_store.c), which journals every change for undo: the map only
 * swaps whole records, and the caller keeps what was swapped out.
 */
#ifndef KEEL_MEM_MAP_H
#define KEEL_MEM_MAP_H

#include <stdint.h>

#define MEM_MAP_KEYS_MAX (1u << 22) /* live records in one map */
#define MEM_MAP_TOMB ((struct mem_rec *)1)

/* A key/value pair: key bytes, then value bytes, in one allocation. */
struct mem_rec {
	uint64_t hash;
	uint64_t digest; /* of key and value, summed into the map's digest */
	uint32_t key_bytes;
	uint32_t val_bytes;
	uint8_t bytes[];
};

struct mem_map {
	struct mem_rec **slots; /* NULL empty, MEM_MAP_TOMB deleted */
	uint32_t cap;           /* power of two, 0 before first insert */
	uint32_t count;         /* live records */
	uint32_t used;          /* live + tombstones */
	uint64_t digest;        /* sum of the live records' digests */
};

#define MEM_REC_VAL(r) ((r)->bytes + (r)->key_bytes)

/* A new record (malloc'd), or NULL when out of memory. */
struct mem_rec *mem_rec_new(const uint8_t *key, uint32_t key_bytes,
			    const uint8_t *val, uint32_t val_bytes);
/* Make room for one more record. 0 or KEEL_ENOMEM (also past
 * MEM_MAP_KEYS_MAX). */
int mem_map_reserve(struct mem_map *m);
/* The record for key, or NULL. */
struct mem_rec *mem_map_get(const struct mem_map *m, const uint8_t *key,
			    uint32_t key_bytes);
/* Put r under key (r NULL: remove key); returns the record it replaced
 * (NULL if none), which the caller now owns. Never fails when inserting
 * after a successful mem_map_reserve. */
struct mem_rec *mem_map_swap(struct mem_map *m, const uint8_t *key,
			     uint32_t key_bytes, struct mem_rec *r);
/* Free every record and the table. */
void mem_map_free(struct mem_map *m);

#endif
