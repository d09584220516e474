/*
 * disk.h: the storage thread. All store and kv work runs on one dedicated
 * thread so that fsyncs never stall the event loop (heartbeats, elections).
 *
 * The loop thread builds one job from everything Raft made ready in a loop
 * iteration (group commit) and submits it; at most one job is in flight.
 * The storage thread runs a job in this order:
 *   1. one write batch: kv_apply of the entries committed when the job was
 *      built (into the write-back cache, wcache.h; their results are posted
 *      to the loop at once), the hard state and every log segment, and the
 *      cache itself when a flush is due and it is small (below); one commit
 *      and, when the job has log entries or a new term or vote, one sync;
 *      then the job's compaction and snapshot work, if any (snapjob.h),
 *      incoming snapshot chunks after a flush of the cache in a batch of
 *      its own;
 *   2. the persisted callback on the loop: it sends what waited for that
 *      sync, tells Raft, and may add the entries that became committed
 *      meanwhile to the job; the storage thread waits until it returned;
 *   3. when step 2 added entries: kv_apply of those into the cache, their
 *      results posted at once; a due flush of a large cache; the store
 *      batch opened for this (wcache W4) commits, without a sync, only
 *      when the cache flushed into it;
 *   4. the reads of the job, through the cache.
 * Then it posts the job back to the loop (the done callback).
 *
 * The cache is flushed once it is flush_ms old (0, the default: in every
 * job): up to DISK_FLUSH_RIDE_ITEMS_MAX items inside step 1's batch, which
 * then holds the previous job's step 3 applies at no extra commit; a
 * larger cache in step 3, after the log's sync, so that its writes do not
 * hold the log back. Also when it is half full or full (wcache W2);
 * between jobs, once the longer of flush_ms and DISK_IDLE_FLUSH_MS has
 * passed since the last flush; before an incoming snapshot is staged; and
 * when the thread stops (then with a sync, always). Why a larger flush_ms
 * helps: every put lands on a random kv leaf, so writing the applied state
 * in every job costs a leaf and its branch pages per put on every replica,
 * most of the disk's work; a flush of many puts shares them. Its price: the
 * flush's pages stay in LMDB's dirty-page memory and grow the data file
 * (resident memory), and each flush holds the next job back.
 *
 * Why step 3: under load the entries of a job's log become committed just
 * after its sync (the followers sync at the same time); applying them in
 * the same job answers their clients one whole job earlier. Why results
 * may leave before their state reaches the store (and without a sync): a
 * committed entry is durable on a majority already, and its result is a
 * function of the committed log, so a crash or a failed commit after the
 * answer cannot take it back (the restarted node replays the log from the
 * store's applied index to the same result); compaction never cuts the log
 * above that index, because the cache is flushed first.
 *
 * Invariants:
 *   1. jobs run in submission order, one at a time;
 *   2. a job's err is sticky: after a failed job every later job fails with
 *      KEEL_ESTORAGE without touching the store;
 *   3. all memory a job points at belongs to the job (copied at build time);
 *   4. the persisted callback comes once per job, only after step 1's
 *      commit and sync returned without error; while it runs the storage
 *      thread is paused;
 *   5. results reach the results callback in log order, each once, only
 *      after kv_apply produced them without error; results posted before
 *      the persisted callback are delivered before it;
 *   6. the done callback comes last; after a failure err != 0;
 *   7. the log is never cut above the store's applied index: the loop
 *      compacts at most to the store_applied a job reported (the cache is
 *      not flushed for compaction; it trails the flushes), and snapshot
 *      staging and install start with an empty cache; after a failure the
 *      cache is dropped, never flushed.
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
#include "wcache.h"
#include "snapjob.h"

#define DISK_SEGMENTS_MAX 64u /* log segments (readies) in one job */
#define DISK_READS_MAX 8192u  /* reads served by one job */
#define DISK_FLUSH_MS_MAX 10000u /* the largest flush_ms (--apply-flush-ms) */
#define DISK_FLUSH_RIDE_ITEMS_MAX 512u /* a cache up to this many items is
				      flushed inside a job's log batch */
#define DISK_IDLE_FLUSH_MS 20u /* between jobs, a cache this much older
				  than the last flush is flushed */

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
	/* the cache's flushes so far (all jobs and idle ones: cumulative) */
	uint64_t flush_count, flush_items, flush_ns;
	uint64_t store_applied; /* the store's applied index after the job
				   (invariant 7: the most compaction may cut) */
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

typedef void (*disk_results_fn)(void *ctx, const struct kv_result *res,
				uint32_t count);

/* Loop-thread callbacks (invariants 4 to 6): persisted(ctx, j) may read
 * the job and add committed entries (disk_job_add_committed); results get
 * new results only (valid during the call); done gets the job back. */
struct disk_callbacks {
	disk_done_fn persisted;
	disk_results_fn results;
	disk_done_fn done;
};

struct disk_options {
	uint32_t flush_ms;      /* the cache is flushed once this old (at most
				   DISK_FLUSH_MS_MAX; 0: in every job) */
	uint32_t idle_flush_ms; /* between jobs, once the longer of this and
				   flush_ms passed since the last flush
				   (DISK_IDLE_FLUSH_MS; tests change it) */
};

struct disk {
	struct store *store;
	struct wcache wc;   /* storage thread only: the applied state not yet
			       in the store (kv_apply writes here) */
	struct kv kv;       /* on wc.view; storage thread only */
	struct disk_options opt;
	uint64_t flushed_ns; /* storage thread: the cache's last flush */
	uint64_t flush_count, flush_items, flush_ns; /* storage thread */
	uint64_t store_applied; /* storage thread: the store's applied index */
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct disk_job *job;  /* submitted, not yet taken back */
	bool job_persisted;    /* step 1 done, callback due (invariant 4) */
	bool job_continue;     /* the persisted callback returned */
	uint32_t results_posted; /* results[0..this) are final (invariant 5) */
	uint32_t results_taken;  /* loop thread: delivered so far */
	bool job_done;
	bool stop;
	bool started;
	int sticky_err;        /* storage thread only */
	uint64_t synced_term;  /* storage thread only: hard state last synced */
	keel_node_id synced_vote;
	uv_async_t async;
	disk_done_fn persisted;
	disk_results_fn results;
	disk_done_fn done;
	void *ctx;
	struct snapjob *snapjob; /* storage thread: runs each job's snap work */
};

/* Start the storage thread. Returns 0, a -errno, or the store's error
 * reading its meta (nothing started). */
int disk_start(struct disk *d, uv_loop_t *loop, struct store *store,
	       const struct disk_options *opt, const struct disk_callbacks *cb,
	       void *ctx);
bool disk_busy(const struct disk *d);
/* Submit j (ownership passes until done(ctx, j) is called on the loop). */
void disk_submit(struct disk *d, struct disk_job *j);
/* Stop the thread (after the job in flight) and close the async handle. */
void disk_stop(struct disk *d);

#endif
