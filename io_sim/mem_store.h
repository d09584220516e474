/*
 * mem_store.h: the in-memory store for the simulator (DESIGN §4, §6).
 *
 * Same semantics as the LMDB store (core/store.h; the conformance suite in
 * tests/test_store.c runs against both), plus a disk model:
 *
 * - A committed batch is volatile until it is synced: sync() makes every
 *   committed batch durable; mem_store_sync_upto() only those committed up to
 *   a given commit id (a simulated fsync that started before later commits).
 * - mem_store_crash(s, 0) drops every volatile batch (and an open one); what
 *   is left is exactly the durable state, as a restart would find it.
 * - mem_store_crash(s, tear != 0) models a torn write: the disk persisted a
 *   prefix of the volatile batches (at least one, chosen by tear) and the
 *   last of them only partly: its highest log record is cut short, so its
 *   checksum fails and log_get returns KEEL_ECORRUPT. Only an unsynced log
 *   record can be torn and it is always the last record of the log, so
 *   recovery may treat a bad checksum at the log's tail, above the durable
 *   commit index, as a torn write (and overwrite it); anywhere else a bad
 *   record is corruption.
 * - mem_store_corrupt() flips one byte of a durable log record; log_get of
 *   that index then returns KEEL_ECORRUPT (records are stored encoded with
 *   their xxh3 checksum, core/record.h).
 *
 * Errors: a write that fails with KEEL_EINVAL, KEEL_ENOTFOUND or KEEL_ESTATE
 * changes nothing and the batch stays usable; any other failure (a limit
 * below, KEEL_ENOMEM) poisons the batch: its later writes and write_commit
 * return that error, and write_commit aborts it.
 *
 * Implementation: the current state (durable + volatile + open batch) is
 * kept in place — hash maps for meta, kv, sessions and the staging area, an
 * array for the log — and every write appends an undo record to a journal;
 * abort and crash undo, sync frees the journal. Staged writes are writes
 * like any other: volatile until synced, dropped by a crash; stage_install
 * swaps the staged maps with kv and sessions (O(1), journaled). Memory is
 * bounded by the limits below.
 */
#ifndef KEEL_MEM_STORE_H
#define KEEL_MEM_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "../core/store.h"
#include "mem_map.h"

#define MEM_STORE_LOG_ENTRIES_MAX (1u << 22)  /* entries held in the log */
#define MEM_STORE_JOURNAL_OPS_MAX (1u << 22)  /* writes not yet durable */
#define MEM_STORE_VOLATILE_BATCHES_MAX 65536u /* committed, unsynced batches */

struct mem_store_stats {
	uint64_t batches_committed;
	uint64_t batches_aborted;
	uint64_t syncs;
	uint64_t crashes;
	uint64_t tears;            /* crashes that tore a log record */
	uint64_t corruptions;      /* bytes flipped by mem_store_corrupt */
	uint64_t corrupt_reads;    /* reads that returned KEEL_ECORRUPT */
	uint64_t log_records_written;
	uint64_t log_bytes_written;
	uint64_t kv_puts;
	uint64_t kv_dels;
};

struct mem_log_rec;
struct mem_jop;

struct mem_vbatch {
	uint32_t journal_end; /* journal length when it committed */
	uint64_t log_hi;      /* highest log index it appended, 0 if none */
};

/* One item of the store_ops snapshot, copied out (io_sim/mem_snapshot.c). */
struct mem_snap_item {
	uint32_t kind; /* enum store_item_kind */
	uint32_t key_bytes, val_bytes;
	uint64_t off; /* of the key, then the value, in snap_bytes */
	struct kv_session session;
};

struct mem_store {
	struct mem_map meta, kv, sessions;
	/* the staging area (store_ops stage_*): same layout as kv and
	 * sessions, so stage_install swaps whole maps */
	struct mem_map stage_kv, stage_sessions;
	uint64_t stage_puts; /* stage_put calls since the area was emptied */
	/* log: records for indexes log_first .. log_first + log_count - 1 */
	struct mem_log_rec **log;
	uint32_t log_head, log_count, log_cap;
	uint64_t log_first;
	/* undo journal of every write not yet durable */
	struct mem_jop *journal;
	uint32_t journal_len, journal_cap;
	/* committed, unsynced batches, oldest first */
	struct mem_vbatch *vol;
	uint32_t vol_count, vol_cap;
	uint64_t commit_id; /* batches committed since init */
	/* the open batch */
	bool open;
	int batch_rc; /* nonzero: the open batch is poisoned */
	uint32_t open_journal_start;
	uint64_t open_log_hi;
	/* the store_ops snapshot: a sorted copy of kv and sessions */
	struct mem_snap_item *snap_items;
	uint8_t *snap_bytes;
	uint32_t snap_count, snap_pos;
	bool snap_open;
	struct mem_store_stats stats;
};

/* An empty (pristine) store. Returns 0. */
int mem_store_init(struct mem_store *s);
/* Free everything; s is then unusable until mem_store_init. */
void mem_store_close(struct mem_store *s);
/* Fill a struct store that calls s. */
void mem_store_bind(struct mem_store *s, struct store *out);

/* Id of the last committed batch (0 if none); increases by one per commit. */
uint64_t mem_store_commit_id(const struct mem_store *s);
/* Make batches with commit id <= id durable. KEEL_ESTATE if a batch is
 * open. */
int mem_store_sync_upto(struct mem_store *s, uint64_t id);
/* Crash: abort the open batch, drop (tear != 0: tear, see above) volatile
 * batches. Afterwards everything held is durable. */
void mem_store_crash(struct mem_store *s, uint64_t tear);
/* Flip one byte (chosen by where) of the durable log record at index.
 * KEEL_ENOTFOUND if there is no such record or it is not yet durable. */
int mem_store_corrupt(struct mem_store *s, uint64_t index, uint64_t where);
/* Order-independent xxh3-based digest of kv, sessions and the applied
 * index: equal states give equal digests. O(1): kept up to date by every
 * write, so the simulator may compare nodes after every event. */
uint64_t mem_store_digest(struct mem_store *s);
/* store_ops' snapshot calls (see core/store.h): kv pairs sorted by key
 * (bytes, then length), then sessions by client id. */
int mem_store_snap_begin(void *impl, struct store_meta *meta);
int mem_store_snap_next(void *impl, struct store_item *item);
void mem_store_snap_end(void *impl);
/* Number of kv keys. */
uint64_t mem_store_kv_count(const struct mem_store *s);

#endif
