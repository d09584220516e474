/*
 * snapjob.h: log compaction and snapshots on the storage thread.
 *
 * The loop thread attaches a struct snap_work to a storage job (disk.h);
 * the storage thread runs it after the job's write batch (snapjob_run), in
 * this order:
 *   1. close the outgoing snapshot stream if asked (leadership lost, or the
 *      follower it served went quiet);
 *   2. compaction: log_compact to (index, term, membership) in its own
 *      batch, then sync; skipped when the store's snapshot point is already
 *      there (an install overtook it);
 *   3. leader: produce at most one chunk of the outgoing stream
 *      (snap_reader on one LMDB read transaction; one stream per store:
 *      the loop queues the other followers); the reader is closed after its
 *      last chunk;
 *   4. follower: stage incoming chunks in order (snap_stage_chunk, one batch
 *      each) and install the last one (snap_install: one batch and a sync);
 *      a malformed chunk, or a map too full for the staging or the
 *      switch, abandons the install (the old state stands) and skips every
 *      chunk handed out before the loop then calls raft_snapshot_failed,
 *      in this work or a later one (struct snap_stage.failures tells them
 *      apart).
 * Other store errors are returned (the job fails: sticky); an abandoned
 * install is not a store error.
 *
 * Invariants:
 *   1. the snap_reader is touched only on the storage thread;
 *   2. a work's chunk buffers belong to the work (freed by snap_work_free);
 *   3. staging and install run after the job's log writes, so a chunk
 *      staged after entries in the same job sees them (raft.h step 7).
 */
#ifndef KEEL_NODE_SNAPJOB_H
#define KEEL_NODE_SNAPJOB_H

#include <stdbool.h>
#include <stdint.h>

#include "../core/raft.h"
#include "../core/snapshot.h"
#include "../core/store.h"

#define SNAPJOB_STAGE_MAX 8u /* incoming chunks staged by one job */

struct snap_send { /* leader: one chunk of the outgoing stream */
	keel_node_id to;
	bool new_stream;     /* close any open stream and start over */
	uint64_t last_index; /* of the stream to continue (if !new_stream) */
	uint64_t offset;
	/* out */
	bool produced;
	uint64_t out_last_index;
	uint64_t out_offset;
	uint8_t *chunk; /* malloc'd */
	uint32_t chunk_bytes;
	bool done;
};

struct snap_stage { /* follower: one incoming chunk */
	struct raft_snapshot_chunk c; /* c.chunk: owned copy */
	uint64_t failures; /* raft_snapshot_failed calls before it was handed out */
	int err;        /* out: 0, KEEL_ESTATE (skipped), or why the install was
			   abandoned: KEEL_EMALFORMED, KEEL_ENOMEM (map full),
			   KEEL_EINVAL (older than the compaction point) */
	bool installed; /* out: c.done and snap_install succeeded */
};

struct snap_work {
	bool close_reader;
	uint64_t compact_index; /* 0: none */
	uint64_t compact_term;
	struct membership compact_membership;
	bool compacted; /* out */
	bool has_send;
	struct snap_send send;
	uint32_t stage_count;
	struct snap_stage stage[SNAPJOB_STAGE_MAX];
	uint32_t delay_ms; /* testing: sleep before staging each chunk */
};

/* Storage-thread state: the open outgoing stream. */
struct snapjob {
	struct snap_reader reader;
	keel_node_id owner; /* follower the open stream is for */
	/* A chunk failed: every chunk handed out with the same failures
	 * count (before the loop's raft_snapshot_failed) is skipped, in later
	 * works too, or it would stage after a gap (an install of part of a
	 * snapshot) or install a stream Raft no longer waits for. */
	bool stage_broken;
	uint64_t stage_broken_failures;
};

struct snap_work *snap_work_new(void);
void snap_work_free(struct snap_work *w);
/* Copy a chunk into w. 0, KEEL_EBUSY (SNAPJOB_STAGE_MAX reached) or
 * KEEL_ENOMEM. */
int snap_work_add_chunk(struct snap_work *w, const struct raft_snapshot_chunk *c);

/* Run w on the storage thread (see above). Returns 0 or a store error. */
int snapjob_run(struct snapjob *sj, struct store *st, struct snap_work *w);
/* Close the outgoing stream (storage thread, or after it stopped). */
void snapjob_close(struct snapjob *sj);

#endif
