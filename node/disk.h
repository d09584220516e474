/*
 * disk.h: the storage thread. All store and kv work runs on one dedicated
 * thread so that fsyncs never stall the event loop (heartbeats, elections).
 *
 * The loop thread builds one job from everything Raft made ready in a loop
 * iteration (group commit) and submits it; at most one job is in flight.
 * The storage thread runs a job in this order:
 *   1. one write batch: first kv_apply of the committed entries (through a
 *      onebatch view); when that produced results, they are posted to the
 *      loop at once (the applied callback); then the hard state and every
 *      log segment; then one commit and, when the job has log entries or a
 *      new term or vote, one sync;
 *   2. the reads of the job, from the state just committed.
 * Then it posts the job back to the loop (the done callback), which sends
 * the held messages, acknowledges persistence to Raft and answers reads.
 *
 * Why results may leave before the sync: a committed entry is durable on a
 * majority already, and its result is a function of the committed log, so
 * a crash or a failed commit after the answer cannot take it back (the
 * restarted node replays the log to the same result). What depends on
 * this node's own durability (held messages, raft_persisted) waits for
 * the done callback.
 *
 * Invariants:
 *   1. jobs run in submission order, one at a time;
 *   2. a job's err is sticky: after a failed job every later job fails with
 *      KEEL_ESTORAGE without touching the store;
 *   3. all memory a job points at belongs to the job (copied at build time);
 *   4. for each job the loop gets at most one applied callback, always
 *      before its done callback, and only after kv_apply succeeded; after
 *      posting it the storage thread no longer touches results[];
 *   5. the done callback comes only after the job's commit and sync
 *      returned (or failed: then err != 0).
 */
#ifndef KEEL_NODE_DISK_H
#define KEEL_NODE_DISK_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "../core/kv.h"
#include "../core/msg.h"
#include "../core/store.h"
#include "onebatch.h"
#include "snapjob.h"

#define DISK_SEGMENTS_MAX 64u /* log segments (readies) in one job */
#define DISK_READS_MAX 8192u  /* reads served by one job */

struct disk_segment {
	uint32_t first; /* into job entries */
	uint32_t count;
};

struct disk_read {
	uint64_t token;
	uint32_t key_bytes;
	uint8_t *key;
	int status; /* out: 0 or KEEL_ENOTFOUND or a store error */
	uint32_t value_bytes;
	uint8_t *value; /* out: malloc'd copy, freed with the job */
};

struct disk_job {
	/* input */
	bool hard_state_changed;
	struct raft_hard_state hard_state;
	struct entry *entries;
	uint32_t entry_count, entry_cap;
	struct disk_segment segments[DISK_SEGMENTS_MAX];
	uint32_t segment_count;
	struct entry *committed;
	uint32_t committed_count, committed_cap;
	struct disk_read *reads;
	uint32_t read_count, read_cap;
	/* output */
	int err;
	struct kv_result *results;
	uint32_t result_count, result_cap;
	uint64_t persist_ns, apply_ns;
	/* held peer frames (after_persist), owned by the loop side */
	void *held;
	/* compaction and snapshot work, run after the write (snapjob.h) */
	struct snap_work *snap;
	/* arena for copied bytes */
	uint8_t **blocks;
	uint32_t block_count, block_cap;
};

void disk_job_init(struct disk_job *j);
bool disk_job_empty(const struct disk_job *j);
/* Copy helpers: return 0 or KEEL_ENOMEM. */
int disk_job_add_entries(struct disk_job *j, const struct entry *e, size_t n);
int disk_job_add_committed(struct disk_job *j, const struct entry *e, size_t n);
int disk_job_add_read(struct disk_job *j, uint64_t token, const uint8_t *key,
		      uint32_t key_bytes);
/* Free everything the job owns and reset it to empty. */
void disk_job_reset(struct disk_job *j);

typedef void (*disk_done_fn)(void *ctx, struct disk_job *j);

struct disk {
	struct store *store;
	struct onebatch ob; /* kv_apply runs inside the job's batch */
	struct kv kv;       /* on ob.view; storage thread only */
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct disk_job *job;  /* submitted, not yet taken back */
	bool job_applied;      /* results[] final and posted (invariant 4) */
	bool applied_taken;    /* loop thread: applied callback delivered */
	bool job_done;
	bool stop;
	bool started;
	int sticky_err;        /* storage thread only */
	uint64_t synced_term;  /* storage thread only: hard state last synced */
	keel_node_id synced_vote;
	uv_async_t async;
	disk_done_fn applied;
	disk_done_fn done;
	void *ctx;
	struct snapjob *snapjob; /* storage thread: runs each job's snap work */
};

/* Start the storage thread. applied(ctx, j) may read j->results only;
 * done(ctx, j) gets the job back. Returns 0 or a -errno. */
int disk_start(struct disk *d, uv_loop_t *loop, struct store *store,
	       disk_done_fn applied, disk_done_fn done, void *ctx);
bool disk_busy(const struct disk *d);
/* Submit j (ownership passes until done(ctx, j) is called on the loop). */
void disk_submit(struct disk *d, struct disk_job *j);
/* Stop the thread (after the job in flight) and close the async handle. */
void disk_stop(struct disk *d);

#endif
