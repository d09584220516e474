/*
 * snapshot.h: the bytes of a snapshot and the two ends that move them, over
 * any struct store (core/store.h). Pure: no I/O beyond the store vtable, so
 * the node (io_real, on its storage thread) and the simulator (io_sim) run
 * the same code, and the fuzzers feed the decoder.
 *
 * A snapshot is the state machine (every kv pair, then every session) as of
 * an applied index, read through store snap_begin/snap_next (LMDB: one read
 * transaction, consistent while writes go on). It travels as a sequence of
 * chunks of at most KEEL_SNAPSHOT_CHUNK_BYTES; an item never spans two
 * chunks, so each chunk decodes on its own. Chunk format, little-endian:
 *
 *   item    := kind:u8 body
 *   KV      := key_bytes:u32 val_bytes:u32 key val   (kind 1)
 *   SESSION := client_id:u64 seq:u64 last_index:u64 status:u32  (kind 2)
 *
 * Every field is validated on decode (kind known, key 1..KEEL_KEY_BYTES_MAX,
 * value <= KEEL_VALUE_BYTES_MAX, lengths inside the chunk, client_id > 0,
 * status known, no trailing bytes); a bad chunk is KEEL_EMALFORMED and
 * stages nothing of itself.
 */
#ifndef KEEL_SNAPSHOT_H
#define KEEL_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alloc.h"
#include "msg.h"
#include "raft.h"
#include "store.h"

/* The largest single encoded item: a kv pair with the largest key and
 * value. Chunks are at least this big, so every item fits one chunk. */
#define SNAP_ITEM_BYTES_MAX (1u + 4u + 4u + KEEL_KEY_BYTES_MAX + KEEL_VALUE_BYTES_MAX)
_Static_assert(SNAP_ITEM_BYTES_MAX <= KEEL_SNAPSHOT_CHUNK_BYTES + KEEL_VALUE_BYTES_MAX,
	       "a chunk may exceed the nominal size by at most one item");
_Static_assert(KEEL_SNAPSHOT_CHUNK_BYTES + SNAP_ITEM_BYTES_MAX <= KEEL_SNAPSHOT_CHUNK_BYTES_MAX,
	       "the largest chunk a sender builds is accepted by the codec");

/* Encode one item at out (cap bytes). Returns bytes written, or
 * KEEL_ETOOBIG if it does not fit (nothing written). */
int snap_item_encode(const struct store_item *it, uint8_t *out, size_t cap);

/* Decode every item of a chunk, calling fn for each (items point into p).
 * Validates the whole chunk first: on KEEL_EMALFORMED fn was never called.
 * A nonzero return of fn stops the walk and is returned. fn NULL: only
 * validate. */
int snap_chunk_decode(const uint8_t *p, uint32_t n,
		      int (*fn)(void *arg, const struct store_item *it),
		      void *arg);

/* ---- Leader side: one outgoing stream ------------------------------------ */

struct snap_reader {
	struct store *st;
	struct keel_alloc alloc;
	bool open;           /* snap_begin done, snap_end not yet */
	uint64_t last_index; /* the store's applied index at snap_begin */
	uint64_t next_offset; /* offset of the chunk after the buffered one */
	/* The last chunk produced, kept for a resend of the same offset. */
	uint8_t *buf; /* KEEL_SNAPSHOT_CHUNK_BYTES_MAX bytes */
	uint32_t buf_bytes;
	uint64_t buf_offset;
	bool buf_valid;
	bool buf_done;
	/* An item read from the store that did not fit the previous chunk. */
	bool carry;
	uint32_t carry_bytes;
	uint8_t *carry_buf; /* SNAP_ITEM_BYTES_MAX bytes */
	bool items_done; /* snap_next returned 0 */
};

/* Open a consistent read of st (store snap_begin); *last_index gets the
 * applied index it reflects. KEEL_ESTATE if the store has a snapshot open
 * (one stream at a time per store: the caller queues), KEEL_ENOMEM, or the
 * store's error. */
int snap_reader_open(struct snap_reader *sr, struct store *st,
		     const struct keel_alloc *a, uint64_t *last_index);

/* The chunk at offset: the buffered one again (a resend) or the next one.
 * *chunk points into sr, valid until the next call; *done on the last.
 * KEEL_ERANGE if offset is neither (the caller starts a new stream). */
int snap_reader_chunk(struct snap_reader *sr, uint64_t offset,
		      const uint8_t **chunk, uint32_t *chunk_bytes,
		      bool *done);

/* Close the read (snap_end) and free the buffers. Safe on a closed reader. */
void snap_reader_close(struct snap_reader *sr);

/* ---- Follower side ------------------------------------------------------- */

/* Stage one chunk in its own write batch (offset 0: clear the staging area
 * first). Returns 0, KEEL_EMALFORMED (bad chunk: nothing of it staged; the
 * caller calls raft_snapshot_failed) or the store's error. The staging area
 * does not know offsets: after a chunk failed or was dropped, the caller
 * stages no chunk Raft handed out before its raft_snapshot_failed, or
 * later ones would stage after a gap and snap_install would switch to part
 * of a snapshot (node/snapjob.c tells them apart by a failure count). */
int snap_stage_chunk(struct store *st, const struct raft_snapshot_chunk *c);

/* Switch to the staged snapshot in one batch, then sync: stage_install; the
 * log cut of raft_snapshot_installed (keep the entries after last_index if
 * the log holds (last_index, last_term), else drop the whole log);
 * log_compact to (last_index, last_term, membership); set_applied; hard
 * state commit raised to last_index. Returns 0 or the store's error (the
 * batch is aborted: the old state stands). */
int snap_install(struct store *st, const struct raft_snapshot_chunk *c);

#endif
