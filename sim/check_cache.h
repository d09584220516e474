/* check_cache.h: the search's memory budget and its cache of visited
 * configurations (a key of words + a model state), used by check_wgl.c. */
#ifndef KEEL_SIM_CHECK_CACHE_H
#define KEEL_SIM_CHECK_CACHE_H

#include <stdbool.h>
#include <stdint.h>

/* Bytes the search holds, against its limit. */
struct check_budget {
	uint64_t used;
	uint64_t peak;
	uint64_t max;
};

/* Takes bytes from the budget: false (nothing taken) when over the limit. */
bool check_budget_take(struct check_budget *b, uint64_t bytes);
void check_budget_give(struct check_budget *b, uint64_t bytes);

/* A set of (key, state) pairs, keys of key_words 64-bit words. */
struct check_cache {
	struct check_budget *budget;
	uint64_t *slots;      /* slot_count x [hash, state | number << 32] */
	uint32_t slot_count;  /* power of two; at most half used */
	uint32_t count;       /* pairs stored; a pair's number is 1-based */
	uint64_t *keys;       /* pair number n's key at (n - 1) * key_words */
	uint64_t key_cap;     /* keys room, in pairs */
	uint32_t key_words;
};

/* Returns 0 or KEEL_ENOMEM (budget or malloc). slots_hint: expected pairs. */
int check_cache_init(struct check_cache *c, struct check_budget *b, uint32_t key_words,
		     uint32_t slots_hint);
/* Adds (key, state) whose hash the caller computed (it must depend only on
 * key and state). Returns 1 when new, 0 when already there, KEEL_ENOMEM. */
int check_cache_insert(struct check_cache *c, uint64_t hash, uint32_t state,
		       const uint64_t *key);
void check_cache_free(struct check_cache *c);

#endif
