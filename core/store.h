/*
 * store.h: the storage interface both worlds implement (DESIGN §4).
 *
 * io_real implements it on LMDB (io_real/lmdb_store.c); io_sim implements it
 * in memory with crash semantics (io_sim/mem_store.c). One conformance suite
 * (tests/test_store.c) runs against both.
 *
 * Model: a store holds meta (ids, hard state, snapshot point, applied index),
 * the log, kv and sessions. All writes happen inside a write batch
 * (write_begin .. write_commit), which is atomic: after a crash either all of
 * a committed batch is there or none of it. A committed batch is durable
 * once sync() returns (LMDB: each commit syncs, sync is then a no-op; the
 * memory model keeps committed batches volatile until sync, and a crash drops
 * them). Reads inside a batch see the batch's own writes.
 *
 * Every log record carries an xxh3 checksum, checked when written and again
 * when read; a mismatch on read returns KEEL_ECORRUPT, never the data.
 *
 * Every call returns 0 or a negative code; KEEL_ESTORAGE once the store has
 * failed in a way whose outcome is unknown (the error is sticky: every later
 * call returns it).
 */
#ifndef KEEL_STORE_H
#define KEEL_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "msg.h"

struct store_meta {
	uint64_t cluster_id; /* 0 on a pristine store */
	keel_node_id node_id;
	struct raft_hard_state hard_state;
	uint64_t snapshot_index; /* log compacted through here; 0 if never */
	uint64_t snapshot_term;
	struct membership snapshot_membership;
	uint64_t applied_index;
};

/* One client session: the last write applied for client_id. */
struct kv_session {
	uint64_t client_id;
	uint64_t seq;        /* last applied seq */
	uint64_t last_index; /* log index that applied it (drives eviction) */
	uint32_t status;     /* enum kv_status of that write */
};

/* One item of a snapshot of the state machine: a kv pair or a session. */
enum store_item_kind { STORE_ITEM_KV = 1, STORE_ITEM_SESSION = 2 };

struct store_item {
	uint32_t kind;      /* enum store_item_kind */
	const uint8_t *key; /* KV: valid until the next call on the store */
	uint32_t key_bytes;
	const uint8_t *val;
	uint32_t val_bytes;
	struct kv_session session; /* SESSION */
};

struct store_ops {
	/* ---- reads (see the open batch's writes, if any) ---- */

	/* Whole meta; a pristine store gives all zeroes. */
	int (*meta_get)(void *s, struct store_meta *out);
	/* Log bounds; empty log: *first == *last + 1 (first = snapshot_index+1). */
	int (*log_bounds)(void *s, uint64_t *first, uint64_t *last);
	/* Entry at index; e->data stays valid until the next call on s.
	 * KEEL_ENOTFOUND outside the bounds, KEEL_ECORRUPT on a bad checksum. */
	int (*log_get)(void *s, uint64_t index, struct entry *e);
	/* Value of key; *val valid until the next call on s. KEEL_ENOTFOUND. */
	int (*kv_get)(void *s, const uint8_t *key, uint32_t key_bytes,
		      const uint8_t **val, uint32_t *val_bytes);
	/* KEEL_ENOTFOUND when there is no session for client_id. */
	int (*session_get)(void *s, uint64_t client_id, struct kv_session *out);
	int (*session_count)(void *s, uint64_t *count);
	/* The session with the smallest last_index (ties: smallest client_id);
	 * KEEL_ENOTFOUND when there are none. */
	int (*session_oldest)(void *s, struct kv_session *out);

	/* ---- writes: only between write_begin and write_commit ---- */

	int (*write_begin)(void *s); /* KEEL_ESTATE if a batch is open */
	int (*set_ids)(void *s, uint64_t cluster_id, keel_node_id node_id);
	int (*set_hard_state)(void *s, const struct raft_hard_state *hs);
	/* Delete every entry with index >= e[0].index, then store e[0..n).
	 * KEEL_EINVAL if e[0].index is not in first..last+1 or indexes are not
	 * consecutive. */
	int (*log_append)(void *s, const struct entry *e, size_t n);
	/* Delete every entry with index >= index (none if index > last).
	 * KEEL_EINVAL if index < first. Recovery uses it to drop a torn tail
	 * record (see io_sim/mem_store.h); snapshot install to drop a
	 * conflicting log. */
	int (*log_truncate)(void *s, uint64_t index);
	/* Remove entries <= index and record the snapshot point (index, term,
	 * m). index may be beyond last (installing a snapshot): the log is
	 * then empty with first = index + 1. KEEL_EINVAL if index is below
	 * the current snapshot index. */
	int (*log_compact)(void *s, uint64_t index, uint64_t term,
			   const struct membership *m);
	int (*kv_put)(void *s, const uint8_t *key, uint32_t key_bytes,
		      const uint8_t *val, uint32_t val_bytes);
	/* KEEL_ENOTFOUND if absent (nothing changes). */
	int (*kv_del)(void *s, const uint8_t *key, uint32_t key_bytes);
	int (*session_put)(void *s, const struct kv_session *se);
	int (*session_del)(void *s, uint64_t client_id);
	int (*set_applied)(void *s, uint64_t index);
	int (*write_commit)(void *s);
	void (*write_abort)(void *s);

	/* Make every committed batch durable. */
	int (*sync)(void *s);

	/* ---- snapshots of the state machine (DESIGN §4) ---- */

	/* Begin reading kv and sessions as committed now; writes may go on
	 * meanwhile without changing what the snapshot reads (LMDB: a read
	 * transaction; memory: a copy). *meta: the meta as of the snapshot
	 * (applied_index...). One snapshot at a time; KEEL_ESTATE if one is
	 * open or a batch is open. */
	int (*snap_begin)(void *s, struct store_meta *meta);
	/* Next item: 1 with *item filled, 0 at the end, or an error
	 * (KEEL_ESTATE without snap_begin, KEEL_ECORRUPT). Order: every kv
	 * pair, then every session; the same state gives the same order. */
	int (*snap_next)(void *s, struct store_item *item);
	void (*snap_end)(void *s);
	/* In a batch: delete every kv pair and session. */
	int (*state_clear)(void *s);

	/* ---- staging an incoming snapshot (DESIGN §4) ----
	 * A follower receives a snapshot in chunks over many batches; the
	 * items go to a staging area that no read above sees. The switch is
	 * one batch: stage_install, the log cut, set_applied, hard state,
	 * write_commit. A crash before that commit leaves the old state; after
	 * it, the new one. Whatever is staged when a node restarts is garbage
	 * (the driver calls stage_clear once at start). */

	/* In a batch: delete everything staged. */
	int (*stage_clear)(void *s);
	/* In a batch: stage one item (kind KV or SESSION). KEEL_EINVAL on a
	 * malformed item (key 1..KEEL_KEY_BYTES_MAX, value <=
	 * KEEL_VALUE_BYTES_MAX, session client_id > 0). A kv key or session
	 * staged twice keeps the later one. */
	int (*stage_put)(void *s, const struct store_item *it);
	/* In a batch: replace every kv pair and session by what is staged,
	 * and leave the staging area empty. */
	int (*stage_install)(void *s);
	/* Items staged (for tests and metrics): stage_put calls since the
	 * staging area was last emptied (a key staged twice counts twice). */
	int (*stage_count)(void *s, uint64_t *count);
};

struct store {
	const struct store_ops *ops;
	void *impl;
};

#endif
