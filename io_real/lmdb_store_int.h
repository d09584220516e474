/*
 * lmdb_store_int.h: what the LMDB store's files share (lmdb_store.c: reads,
 * writes and batches; lmdb_open.c: open, format check, close;
 * lmdb_snapshot.c: snapshot iteration; lmdb_stage.c: the staging area).
 * Not for other modules.
 */
#ifndef KEEL_LMDB_STORE_INT_H
#define KEEL_LMDB_STORE_INT_H

#include <stdbool.h>
#include <string.h>

#include "lmdb_store.h"

#define CHAIN_HEADER_BYTES 8u
#define CHAIN_BYTES_MAX \
	(16u * (CHAIN_HEADER_BYTES + KEEL_KEY_BYTES_MAX + KEEL_VALUE_BYTES_MAX))

#define LMDB_META_FORMAT "format"
#define LMDB_META_IDS "ids"
#define LMDB_META_HARD "hard"
#define LMDB_META_SNAP "snap"
#define LMDB_META_APPLIED "applied"

static inline MDB_val lmdb__val(const void *p, size_t n)
{
	return (MDB_val){.mv_size = n, .mv_data = (void *)p};
}

static inline MDB_val lmdb__str(const char *name)
{
	return lmdb__val(name, strlen(name));
}

/* Record why the last call failed, in words (s->error). */
void lmdb__set_error(struct lmdb_store *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Map an LMDB result to ours; failures of unknown outcome stick (L4). */
int lmdb__err(struct lmdb_store *s, int mrc, const char *what);
/* Whole meta as of txn; 0, KEEL_ECORRUPT or a store error. */
int lmdb__meta_read(struct lmdb_store *s, MDB_txn *txn, struct store_meta *out);
/*
 * Writable map (L6; lmdb_store.h). lmdb__reserve_begin: when a batch begins,
 * note the file's high-water mark and allocate its blocks up to twice that
 * plus the reserve ahead. lmdb__reserve_put: before a put of `bytes` (key
 * and value) in the batch; once the batch's puts come to a quarter of the
 * reserve ahead, allocate up to twice the high water, plus the reserve
 * ahead, plus twice what the batch has put. lmdb__reserve_to: allocate up to
 * want (capped at the map). Each returns 0, or -errno with s->error set and
 * nothing written. No-ops without the writable map.
 */
#define LMDB_PUT_OVERHEAD_BYTES 16u /* LMDB's node header and slot, rounded */
int lmdb__reserve_to(struct lmdb_store *s, uint64_t want);
int lmdb__reserve_begin(struct lmdb_store *s);

static inline int lmdb__reserve_put(struct lmdb_store *s, size_t bytes)
{
	if (!s->writemap)
		return 0;
	s->batch_bytes += bytes + LMDB_PUT_OVERHEAD_BYTES;
	if (4 * s->batch_bytes <= s->reserve_ahead)
		return 0;
	return lmdb__reserve_to(s, 2 * s->batch_high + s->reserve_ahead +
					   2 * s->batch_bytes);
}

/* Abort the open batch, if any. */
void lmdb__write_abort(void *impl);

/* The store_ops snapshot (lmdb_snapshot.c). */
int lmdb__snap_begin(void *impl, struct store_meta *meta);
int lmdb__snap_next(void *impl, struct store_item *item);
void lmdb__snap_end(void *impl);

/* The staging area (lmdb_stage.c), core/store.h stage_*. */
int lmdb__stage_clear(void *impl);
int lmdb__stage_put(void *impl, const struct store_item *it);
int lmdb__stage_install(void *impl);
int lmdb__stage_count(void *impl, uint64_t *count);

/* One element of a long-key chain (see lmdb_store.c). */
struct lmdb__link {
	const uint8_t *key, *val;
	uint32_t key_bytes, val_bytes;
	size_t bytes; /* whole element */
};

/* Parse the chain element at p[0..n); false when malformed. */
bool lmdb__link_at(const uint8_t *p, size_t n, struct lmdb__link *l);

#endif
