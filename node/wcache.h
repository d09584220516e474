/*
 * wcache.h: a write-back cache of the applied state, for the storage thread.
 *
 * The storage thread runs kv_apply on wcache's view instead of on the store.
 * Reads see the cache first and then the store (and the store's open batch);
 * writes to kv, sessions and the applied index stay in the cache until
 * wcache_flush writes them all into the store's open batch at once. Why:
 * every put lands on a random leaf of the kv B-tree, so writing the applied
 * state in every job costs a leaf and its branch pages per put and per
 * replica; writing a cache's worth at once shares branch pages and leaves
 * between many puts, and jobs whose applies stay in the cache write only
 * their log. Losing the cache in a crash loses nothing: every entry in it is
 * committed, the store's applied index (flushed with the kv and sessions it
 * describes, in one batch) stays below it, and the restarted node applies
 * the log again from there. The owner must therefore flush before anything
 * cuts the log above the store's applied index (compaction) and before the
 * state is replaced (snapshot install).
 *
 * The view's write_begin, write_commit, write_abort and sync are bookkeeping
 * (as in a batch the owner already opened): kv_apply's batch is the owner's.
 *
 * Invariants:
 *   W1 the view reads as the store would after wcache_flush and a commit:
 *      a cached kv pair or session (or its deletion) hides the store's; the
 *      applied index in meta_get is the cached one when one is set.
 *   W2 the cache holds fewer than WCACHE_ITEMS_MAX items and
 *      WCACHE_BYTES_MAX bytes once a write returns: a write that reaches
 *      either bound flushes the whole cache into the store's open batch.
 *   W3 session_count is the store's count plus se_live_delta (sessions the
 *      cache adds minus those it deletes); session_oldest (eviction, K4 of
 *      kv.c) is answered by the store after a flush, so eviction sees one
 *      ordered table. A new client therefore costs no flush until the
 *      table is full.
 *   W4 the owner keeps a store batch open whenever the view may write
 *      (kv_apply runs), since W2 and W3 may flush into it.
 *   W5 a failed flush leaves the cache as it was; the owner must abort the
 *      store batch (the store's writes are then poisoned, the cache is not).
 *   W6 a store batch holds whole applies: when a flush wrote part of one
 *      kv_apply into it (W2, W3), the view's write_commit at the end of
 *      that kv_apply flushes the rest, so a committed batch's applied
 *      index always describes exactly its kv and sessions. The owner
 *      clears wrote_real after each write_begin on the store.
 */
#ifndef KEEL_NODE_WCACHE_H
#define KEEL_NODE_WCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/store.h"

#define WCACHE_ITEMS_MAX 65536u         /* kv pairs + sessions cached */
#define WCACHE_BYTES_MAX (16u << 20)    /* cached keys, values and overhead */

struct wcache_kv;      /* a cached pair or deletion (wcache.c) */
struct wcache_session; /* a cached session or deletion (wcache.c) */

struct wcache {
	struct store *real;
	struct store view; /* give this to kv_init */
	bool aborted;      /* the view's write_abort was called */
	bool wrote_real;   /* a flush wrote into the store since the owner
			      cleared this (the batch then has to commit) */
	/* the cache: open addressing, capacities are powers of two */
	struct wcache_kv **kv_slots;
	uint32_t kv_cap, kv_count;
	struct wcache_session *se_slots;
	uint32_t se_cap, se_count;
	int64_t se_live_delta; /* W3 */
	bool has_applied;
	uint64_t applied_index;
	size_t bytes;
	uint64_t flush_count; /* flushes so far (metrics, tests) */
};

void wcache_init(struct wcache *c, struct store *real);
/* Drop the cache and free its tables. */
void wcache_free(struct wcache *c);
/* No cached pair, session or applied index. */
bool wcache_empty(const struct wcache *c);
/* Items (kv pairs, sessions) cached now. */
uint32_t wcache_items(const struct wcache *c);
/* Write everything cached into the store's open batch (kv_put or kv_del per
 * pair, session_put or session_del per session, then set_applied) and empty
 * the cache. 0, or the store's error with the cache unchanged (W5). */
int wcache_flush(struct wcache *c);
/* Forget everything cached (a snapshot install replaces the state). */
void wcache_drop(struct wcache *c);

#endif
