/*
 * lmdb_store.h: the production store on LMDB (DESIGN §4), implementing
 * core/store.h. One LMDB environment per node directory. See the top of
 * lmdb_store.c for the layout and the durability choice.
 *
 * Not thread-safe: one thread drives the store at a time. LMDB allows one
 * open of an environment per process: do not open the same directory twice
 * (a read-only tool is a separate process). A snapshot
 * (lmdb_snapshot_*) holds its own read transaction and may be iterated by
 * another thread while writes go on.
 */
#ifndef KEEL_LMDB_STORE_H
#define KEEL_LMDB_STORE_H

#include <lmdb.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/store.h"

/* Address space reserved for the map (the file grows only as used). Large,
 * because until log compaction lands the log only grows: at 25,000 puts/s
 * of 100 bytes a 4 GiB map would fill within the hour. */
#define LMDB_STORE_MAP_BYTES_DEFAULT (64ull << 30)
#define LMDB_STORE_DBS_MAX 8u
#define LMDB_STORE_ERROR_BYTES 192u
/* Keys longer than this are stored under their xxh3-128 hash (LMDB's key
 * limit is 511 bytes); the full key is kept and compared on every read. */
#define LMDB_STORE_KEY_INLINE_MAX 480u
/*
 * With a writable map (writemap below) LMDB writes pages through the map, and
 * a write to a part of the file the file system cannot allocate (a full disk)
 * is a SIGBUS, not an error code. So the store allocates the file's blocks
 * (fallocate) before LMDB can need them (L6). A batch takes free pages
 * first; beyond them it can only grow the file by the pages it copies (each
 * page once at most: at most the high-water mark H when it began) and the
 * pages it adds (at most twice what it puts, B: pages split half full, and
 * an overflow value takes whole pages). So when a batch begins the file is
 * allocated up to 2H + LMDB_STORE_RESERVE_AHEAD_BYTES, and once B reaches a
 * quarter of the reserve ahead, before each put, up to 2H + the reserve
 * ahead + 2B; each reservation goes a quarter further, for fewer calls. A
 * failed reservation refuses the put or the batch with -ENOSPC before LMDB
 * writes it.
 */
#define LMDB_STORE_RESERVE_AHEAD_BYTES (128ull << 20)

struct lmdb_store_config {
	const char *dir;    /* the node's data directory */
	uint64_t map_bytes; /* 0: LMDB_STORE_MAP_BYTES_DEFAULT */
	bool create;        /* create the directory / a new store if absent */
	bool read_only;     /* for tools: no writes, no lock on writers */
	/* LMDB's MDB_WRITEMAP: the batch's pages are written in the map
	 * instead of in malloc'd copies (less memory for large batches). The
	 * data file then has the map's size (sparse: only reserved blocks are
	 * allocated). Ignored when read_only. */
	bool writemap;
	uint64_t reserve_ahead_bytes; /* 0: LMDB_STORE_RESERVE_AHEAD_BYTES */
	/* Testing only: the reservation fails with ENOSPC past this many
	 * bytes, as on a full disk. 0 (no limit) in real use. */
	uint64_t reserve_limit_bytes;
};

/* ---- consistent snapshot iteration (kv + sessions at one applied index) --- */

struct lmdb_store;

struct lmdb_snapshot {
	struct lmdb_store *s;
	MDB_txn *txn;
	MDB_cursor *cur;
	uint32_t phase;         /* 0 kv, 1 long keys, 2 sessions, 3 done */
	const uint8_t *chain;   /* long keys: the rest of the current value */
	size_t chain_bytes;
	struct store_meta meta; /* as of the snapshot (applied_index...) */
};

struct lmdb_store {
	MDB_env *env;
	MDB_dbi dbi_meta, dbi_log, dbi_kv, dbi_kvlong, dbi_sessions, dbi_ages;
	MDB_dbi dbi_stage; /* staging (lmdb_stage.c) */
	bool has_stage;    /* false only read-only on a store from before it */
	MDB_txn *wtxn;    /* the open write batch */
	MDB_txn *rtxn;    /* reused read transaction for reads outside a batch */
	bool rtxn_active;
	bool read_only;
	bool writemap;          /* opened with MDB_WRITEMAP */
	int fd;                 /* data.mdb (writemap: for the reservation) */
	uint32_t psize;
	uint64_t map_bytes;
	uint64_t reserve_ahead; /* bytes reserved beyond twice the high water */
	uint64_t reserved_end;  /* the file's blocks below this are allocated */
	uint64_t batch_high;    /* the high-water mark when the batch began */
	uint64_t batch_bytes;   /* what the open batch has put, with overhead */
	uint64_t reserve_limit;  /* testing: ENOSPC past this; 0 none */
	uint64_t reservations;   /* fallocate calls that succeeded */
	int sticky;   /* KEEL_ESTORAGE once an outcome is unknown */
	int batch_rc; /* nonzero: the open batch is poisoned */
	uint8_t *buf; /* scratch for records and long-key values */
	size_t buf_cap;
	char error[LMDB_STORE_ERROR_BYTES]; /* why the last open or call failed */
	struct lmdb_snapshot snap; /* the one store_ops snapshot (snap_begin) */
	bool snap_open;
};

/*
 * Open (or with cfg->create, create) the store in cfg->dir. Returns 0;
 * KEEL_EBADMAGIC when the directory holds something that is not a keel store
 * (non-empty without a store, another LMDB file, a foreign database);
 * KEEL_EBADVERSION for a keel store of another format version;
 * KEEL_ENOTFOUND when there is no store and create is false; -errno or
 * KEEL_ESTORAGE for system failures. On failure s->error says why in words
 * and nothing needs closing.
 */
int lmdb_store_open(struct lmdb_store *s, const struct lmdb_store_config *cfg);
/* Abort any open batch and close the environment. */
void lmdb_store_close(struct lmdb_store *s);
void lmdb_store_bind(struct lmdb_store *s, struct store *out);

/* ---- snapshots beyond store_ops' one: any number, any thread ------------ */

/* Begin a snapshot: a read transaction of its own. 0 or an error. */
int lmdb_snapshot_begin(struct lmdb_store *s, struct lmdb_snapshot *snap);
/* Next item: 1 with *item filled (pointers valid until the next call),
 * 0 at the end, or a negative error (KEEL_ECORRUPT...). Order: kv entries,
 * then sessions; the same state always gives the same order. */
int lmdb_snapshot_next(struct lmdb_snapshot *snap, struct store_item *item);
void lmdb_snapshot_end(struct lmdb_snapshot *snap);

#endif
