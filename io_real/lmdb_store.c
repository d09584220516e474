/*
 * lmdb_store.c: core/store.h on LMDB (DESIGN §4).
 *
 * Layout: one environment per node directory (data.mdb, lock.mdb) with the
 * named databases
 *   meta      "format" -> RECORD_FORMAT (keel's magic + store version),
 *             "ids", "hard", "snap", "applied" -> their records
 *   log       8-byte big-endian index -> RECORD_ENTRY (xxh3-checked)
 *   kv        key (<= LMDB_STORE_KEY_INLINE_MAX bytes) -> value
 *   kvlong    xxh3-128 of a longer key (16 bytes) -> a chain of
 *             [key_bytes u32][val_bytes u32][key][value], normally one
 *             element; the full key is compared, so collisions are correct
 *   sessions  8-byte big-endian client id -> RECORD_SESSION
 *   ages      (last_index, client id), 16 bytes big-endian -> "" : the
 *             eviction order, so session_oldest is the first key
 *   staging   an incoming snapshot's items (lmdb_stage.c)
 * All records come from core/record.c and are re-decoded there when
 * written; every read decodes and checks them again.
 *
 * Durability: MDB_NOMETASYNC. Each write_commit is one LMDB transaction
 * whose data pages LMDB flushes (fdatasync) before writing the meta page;
 * the meta page itself is flushed by the next commit or by sync(), which
 * calls mdb_env_sync(env, 1). LMDB documents that this keeps the database
 * consistent across a system crash, which may only undo the last committed
 * transactions not yet synced — exactly core/store.h's contract (durable
 * once sync() returns). We never use MDB_NOSYNC or MDB_WRITEMAP|MAPASYNC,
 * which can corrupt the file on a system crash. With the optional writable
 * map (MDB_WRITEMAP alone) the same holds: LMDB msyncs the data pages
 * (MS_SYNC) where it would otherwise fdatasync them. Compared with syncing every
 * commit (two flushes each), a group of K batches then costs K+1 flushes.
 *
 * Invariants:
 *   L1 at most one write transaction (the open batch); reads outside a
 *      batch use one reusable read transaction, reset when a batch begins.
 *   L2 every log key is > the snapshot index; log_first = snapshot_index+1.
 *   L3 ages holds exactly one key per session, (its last_index, its id).
 *   L4 an LMDB failure whose outcome is unknown (commit, sync, panic) makes
 *      the store sticky-failed: every later call returns KEEL_ESTORAGE.
 *   L5 a write failing with KEEL_EINVAL/ENOTFOUND/ESTATE changed nothing;
 *      any other failure poisons the batch (commit aborts it, returns it).
 *   L6 with the writable map, the data file's blocks are allocated ahead of
 *      whatever the open batch can grow the file to (lmdb_store.h): before
 *      the batch begins and, for a large batch, before each put; a failed
 *      reservation refuses the batch or poisons it (L5) before LMDB writes.
 */
#include "lmdb_store_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <xxhash.h>

#include "../core/assert.h"
#include "../core/err.h"
#include "../core/record.h"

_Static_assert(LMDB_STORE_KEY_INLINE_MAX <= 511, "LMDB's default key limit");

void lmdb__set_error(struct lmdb_store *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->error, sizeof(s->error), fmt, ap);
	va_end(ap);
}

int lmdb__err(struct lmdb_store *s, int mrc, const char *what)
{
	switch (mrc) {
	case MDB_SUCCESS:
		return 0;
	case MDB_NOTFOUND:
		return KEEL_ENOTFOUND;
	case MDB_MAP_FULL:
	case MDB_TXN_FULL:
	case ENOMEM:
		lmdb__set_error(s, "%s: %s", what, mdb_strerror(mrc));
		return KEEL_ENOMEM;
	case MDB_CORRUPTED:
	case MDB_PAGE_NOTFOUND:
		lmdb__set_error(s, "%s: %s", what, mdb_strerror(mrc));
		return KEEL_ECORRUPT;
	default:
		lmdb__set_error(s, "%s: %s", what, mdb_strerror(mrc));
		s->sticky = KEEL_ESTORAGE;
		return KEEL_ESTORAGE;
	}
}

/* ---- transactions -------------------------------------------------------- */

/* The transaction reads use: the open batch's, else the reusable one. */
static int rd_txn(struct lmdb_store *s, MDB_txn **txn)
{
	if (s->sticky != 0)
		return s->sticky;
	if (s->wtxn != NULL) {
		if (s->batch_rc != 0)
			return s->batch_rc;
		*txn = s->wtxn;
		return 0;
	}
	if (s->rtxn_active) {
		mdb_txn_reset(s->rtxn);
		s->rtxn_active = false;
	}
	int mrc = s->rtxn != NULL
			  ? mdb_txn_renew(s->rtxn)
			  : mdb_txn_begin(s->env, NULL, MDB_RDONLY, &s->rtxn);
	if (mrc != 0)
		return lmdb__err(s, mrc, "begin read");
	s->rtxn_active = true;
	*txn = s->rtxn;
	return 0;
}

static int wr_check(struct lmdb_store *s)
{
	if (s->sticky != 0)
		return s->sticky;
	if (s->wtxn == NULL)
		return KEEL_ESTATE;
	return s->batch_rc;
}

/* A failed write: poison the batch unless nothing changed (L5). */
static int wr_fail(struct lmdb_store *s, int rc)
{
	if (rc != KEEL_EINVAL && rc != KEEL_ENOTFOUND && rc != KEEL_ESTATE)
		s->batch_rc = rc;
	return rc;
}

static int wr_put(struct lmdb_store *s, MDB_dbi dbi, MDB_val k, MDB_val v,
		  unsigned flags)
{
	int rc = lmdb__reserve_put(s, k.mv_size + v.mv_size); /* L6 */
	if (rc != 0)
		return wr_fail(s, rc);
	int mrc = mdb_put(s->wtxn, dbi, &k, &v, flags);
	return mrc == 0 ? 0 : wr_fail(s, lmdb__err(s, mrc, "put"));
}

/* Delete key; KEEL_ENOTFOUND (batch intact) when absent. */
static int wr_del(struct lmdb_store *s, MDB_dbi dbi, MDB_val k)
{
	int mrc = mdb_del(s->wtxn, dbi, &k, NULL);
	if (mrc == MDB_NOTFOUND)
		return KEEL_ENOTFOUND;
	return mrc == 0 ? 0 : wr_fail(s, lmdb__err(s, mrc, "del"));
}

static int buf_reserve(struct lmdb_store *s, size_t bytes)
{
	if (bytes <= s->buf_cap)
		return 0;
	uint8_t *b = realloc(s->buf, bytes);
	if (b == NULL)
		return KEEL_ENOMEM;
	s->buf = b;
	s->buf_cap = bytes;
	return 0;
}

/* ---- meta ----------------------------------------------------------------- */

/* Meta record `name`: 0 with v, KEEL_ENOTFOUND, or an error. */
static int meta_one(struct lmdb_store *s, MDB_txn *txn, const char *name,
		    MDB_val *v)
{
	MDB_val k = lmdb__str(name);
	int mrc = mdb_get(txn, s->dbi_meta, &k, v);
	return mrc == 0 ? 0 : lmdb__err(s, mrc, "meta get");
}

int lmdb__meta_read(struct lmdb_store *s, MDB_txn *txn, struct store_meta *out)
{
	memset(out, 0, sizeof(*out));
	MDB_val v;
	int rc = meta_one(s, txn, LMDB_META_IDS, &v);
	if (rc == 0)
		rc = record_ids_decode(v.mv_data, v.mv_size, &out->cluster_id,
				       &out->node_id);
	if (rc == 0 || rc == KEEL_ENOTFOUND)
		rc = meta_one(s, txn, LMDB_META_HARD, &v);
	if (rc == 0)
		rc = record_hard_decode(v.mv_data, v.mv_size, &out->hard_state);
	if (rc == 0 || rc == KEEL_ENOTFOUND)
		rc = meta_one(s, txn, LMDB_META_SNAP, &v);
	if (rc == 0)
		rc = record_snap_decode(v.mv_data, v.mv_size,
					&out->snapshot_index,
					&out->snapshot_term,
					&out->snapshot_membership);
	if (rc == 0 || rc == KEEL_ENOTFOUND)
		rc = meta_one(s, txn, LMDB_META_APPLIED, &v);
	if (rc == 0)
		rc = record_applied_decode(v.mv_data, v.mv_size,
					   &out->applied_index);
	if (rc == KEEL_ENOTFOUND)
		rc = 0;
	if (rc == KEEL_ECORRUPT)
		lmdb__set_error(s, "meta record fails its checksum or checks");
	return rc;
}

static int op_meta_get(void *impl, struct store_meta *out)
{
	struct lmdb_store *s = impl;
	MDB_txn *txn = NULL;
	int rc = rd_txn(s, &txn);
	return rc != 0 ? rc : lmdb__meta_read(s, txn, out);
}

static int snapshot_index(struct lmdb_store *s, MDB_txn *txn, uint64_t *index)
{
	MDB_val k = lmdb__str(LMDB_META_SNAP), v;
	int mrc = mdb_get(txn, s->dbi_meta, &k, &v);
	*index = 0;
	if (mrc == MDB_NOTFOUND)
		return 0;
	if (mrc != 0)
		return lmdb__err(s, mrc, "meta snap");
	uint64_t term;
	struct membership m;
	return record_snap_decode(v.mv_data, v.mv_size, index, &term, &m);
}

/* The first or last (op) record of dbi in txn. Returns 0, KEEL_ENOTFOUND
 * when dbi is empty, or lmdb__err's code for what. */
static int edge_get(struct lmdb_store *s, MDB_txn *txn, MDB_dbi dbi,
		    MDB_cursor_op op, MDB_val *k, MDB_val *v, const char *what)
{
	MDB_cursor *cur;
	int mrc = mdb_cursor_open(txn, dbi, &cur);
	if (mrc != 0)
		return lmdb__err(s, mrc, what);
	mrc = mdb_cursor_get(cur, k, v, op);
	mdb_cursor_close(cur);
	return lmdb__err(s, mrc, what);
}

static int bounds(struct lmdb_store *s, MDB_txn *txn, uint64_t *first,
		  uint64_t *last)
{
	uint64_t snap;
	int rc = snapshot_index(s, txn, &snap);
	if (rc != 0)
		return rc;
	*first = snap + 1;
	*last = snap;
	MDB_val k, v;
	rc = edge_get(s, txn, s->dbi_log, MDB_LAST, &k, &v, "log last");
	if (rc == KEEL_ENOTFOUND)
		return 0;
	if (rc != 0)
		return rc;
	if (k.mv_size != 8)
		return KEEL_ECORRUPT;
	uint64_t l = record_get_u64(k.mv_data);
	if (l <= snap)
		return KEEL_ECORRUPT; /* L2 */
	*last = l;
	return 0;
}

static int op_log_bounds(void *impl, uint64_t *first, uint64_t *last)
{
	struct lmdb_store *s = impl;
	MDB_txn *txn = NULL;
	int rc = rd_txn(s, &txn);
	return rc != 0 ? rc : bounds(s, txn, first, last);
}

static int op_log_get(void *impl, uint64_t index, struct entry *e)
{
	struct lmdb_store *s = impl;
	MDB_txn *txn = NULL;
	int rc = rd_txn(s, &txn);
	if (rc != 0)
		return rc;
	uint8_t key[8];
	record_put_u64(key, index);
	MDB_val k = lmdb__val(key, 8), v;
	int mrc = mdb_get(txn, s->dbi_log, &k, &v);
	if (mrc != 0)
		return lmdb__err(s, mrc, "log get");
	rc = record_entry_decode(v.mv_data, v.mv_size, e);
	if (rc == 0 && e->index != index)
		rc = KEEL_ECORRUPT;
	if (rc != 0) {
		lmdb__set_error(s, "log record %llu fails its checksum or checks",
			  (unsigned long long)index);
		return KEEL_ECORRUPT;
	}
	return 0;
}

/* ---- kv ------------------------------------------------------------------- */

static bool key_ok(const uint8_t *key, uint32_t key_bytes)
{
	return key != NULL && key_bytes >= 1 && key_bytes <= KEEL_KEY_BYTES_MAX;
}

static void long_key(const uint8_t *key, uint32_t key_bytes, uint8_t out[16])
{
	XXH128_hash_t h = XXH3_128bits(key, key_bytes);
	record_put_u64(out, h.high64);
	record_put_u64(out + 8, h.low64);
}

static uint32_t get_u32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
	       ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static void put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* Parse the element at p[0..n); false when malformed. */
bool lmdb__link_at(const uint8_t *p, size_t n, struct lmdb__link *l)
{
	if (n < CHAIN_HEADER_BYTES)
		return false;
	l->key_bytes = get_u32(p);
	l->val_bytes = get_u32(p + 4);
	if (l->key_bytes == 0 || l->key_bytes > KEEL_KEY_BYTES_MAX ||
	    l->val_bytes > KEEL_VALUE_BYTES_MAX)
		return false;
	l->bytes = CHAIN_HEADER_BYTES + (size_t)l->key_bytes + l->val_bytes;
	if (l->bytes > n)
		return false;
	l->key = p + CHAIN_HEADER_BYTES;
	l->val = l->key + l->key_bytes;
	return true;
}

/* Find key in chain c[0..n): 0 with *at its offset, KEEL_ENOTFOUND, or
 * KEEL_ECORRUPT for a malformed chain. */
static int chain_find(const uint8_t *c, size_t n, const uint8_t *key,
		      uint32_t key_bytes, size_t *at, struct lmdb__link *l)
{
	for (size_t off = 0; off < n; off += l->bytes) {
		if (!lmdb__link_at(c + off, n - off, l))
			return KEEL_ECORRUPT;
		if (l->key_bytes == key_bytes &&
		    memcmp(l->key, key, key_bytes) == 0) {
			*at = off;
			return 0;
		}
	}
	return KEEL_ENOTFOUND;
}

static int op_kv_get(void *impl, const uint8_t *key, uint32_t key_bytes,
		     const uint8_t **val, uint32_t *val_bytes)
{
	struct lmdb_store *s = impl;
	if (!key_ok(key, key_bytes))
		return KEEL_EINVAL;
	MDB_txn *txn = NULL;
	int rc = rd_txn(s, &txn);
	if (rc != 0)
		return rc;
	uint8_t h[16];
	bool is_long = key_bytes > LMDB_STORE_KEY_INLINE_MAX;
	if (is_long)
		long_key(key, key_bytes, h);
	MDB_val k = is_long ? lmdb__val(h, 16) : lmdb__val(key, key_bytes), v;
	int mrc = mdb_get(txn, is_long ? s->dbi_kvlong : s->dbi_kv, &k, &v);
	if (mrc != 0)
		return lmdb__err(s, mrc, "kv get");
	if (!is_long) {
		*val = v.mv_data;
		*val_bytes = (uint32_t)v.mv_size;
		return 0;
	}
	size_t at;
	struct lmdb__link l;
	rc = chain_find(v.mv_data, v.mv_size, key, key_bytes, &at, &l);
	if (rc != 0)
		return rc;
	*val = l.val;
	*val_bytes = l.val_bytes;
	return 0;
}

/* Put or delete (val NULL and del) a long key: rewrite its chain. */
static int long_write(struct lmdb_store *s, const uint8_t *key,
		      uint32_t key_bytes, const uint8_t *val,
		      uint32_t val_bytes, bool del)
{
	uint8_t h[16];
	long_key(key, key_bytes, h);
	MDB_val k = lmdb__val(h, 16), v = lmdb__val(NULL, 0);
	int mrc = mdb_get(s->wtxn, s->dbi_kvlong, &k, &v);
	if (mrc != 0 && mrc != MDB_NOTFOUND)
		return wr_fail(s, lmdb__err(s, mrc, "kv get"));
	size_t at = 0;
	struct lmdb__link l = {0};
	int rc = mrc == 0 ? chain_find(v.mv_data, v.mv_size, key, key_bytes,
				       &at, &l)
			  : KEEL_ENOTFOUND;
	if (rc == KEEL_ECORRUPT)
		return wr_fail(s, rc);
	if (del && rc == KEEL_ENOTFOUND)
		return KEEL_ENOTFOUND;
	/* The chain without key, then key's new element. */
	size_t keep = v.mv_size - (rc == 0 ? l.bytes : 0);
	size_t add = del ? 0 : CHAIN_HEADER_BYTES + (size_t)key_bytes + val_bytes;
	if (keep + add > CHAIN_BYTES_MAX)
		return wr_fail(s, KEEL_ETOOBIG);
	if (buf_reserve(s, keep + add + 1) != 0)
		return wr_fail(s, KEEL_ENOMEM);
	uint8_t *b = s->buf;
	const uint8_t *c = v.mv_data;
	if (rc == 0) {
		memcpy(b, c, at);
		memcpy(b + at, c + at + l.bytes, v.mv_size - at - l.bytes);
	} else if (v.mv_size > 0) {
		memcpy(b, c, v.mv_size);
	}
	if (!del) {
		uint8_t *q = b + keep;
		put_u32(q, key_bytes);
		put_u32(q + 4, val_bytes);
		memcpy(q + CHAIN_HEADER_BYTES, key, key_bytes);
		if (val_bytes > 0)
			memcpy(q + CHAIN_HEADER_BYTES + key_bytes, val, val_bytes);
	}
	if (keep + add == 0)
		return wr_del(s, s->dbi_kvlong, k);
	return wr_put(s, s->dbi_kvlong, k, lmdb__val(b, keep + add), 0);
}

static int op_kv_put(void *impl, const uint8_t *key, uint32_t key_bytes,
		     const uint8_t *val, uint32_t val_bytes)
{
	struct lmdb_store *s = impl;
	int rc = wr_check(s);
	if (rc != 0)
		return rc;
	if (!key_ok(key, key_bytes) || val_bytes > KEEL_VALUE_BYTES_MAX ||
	    (val_bytes > 0 && val == NULL))
		return KEEL_EINVAL;
	if (key_bytes > LMDB_STORE_KEY_INLINE_MAX)
		return long_write(s, key, key_bytes, val, val_bytes, false);
	return wr_put(s, s->dbi_kv, lmdb__val(key, key_bytes), lmdb__val(val, val_bytes), 0);
}

static int op_kv_del(void *impl, const uint8_t *key, uint32_t key_bytes)
{
	struct lmdb_store *s = impl;
	int rc = wr_check(s);
	if (rc != 0)
		return rc;
	if (!key_ok(key, key_bytes))
		return KEEL_EINVAL;
	if (key_bytes > LMDB_STORE_KEY_INLINE_MAX)
		return long_write(s, key, key_bytes, NULL, 0, true);
	return wr_del(s, s->dbi_kv, lmdb__val(key, key_bytes));
}

/* ---- sessions ------------------------------------------------------------- */

static int session_read(struct lmdb_store *s, MDB_txn *txn, uint64_t client_id,
			struct kv_session *out)
{
	uint8_t key[8];
	record_put_u64(key, client_id);
	MDB_val k = lmdb__val(key, 8), v;
	int mrc = mdb_get(txn, s->dbi_sessions, &k, &v);
	if (mrc != 0)
		return lmdb__err(s, mrc, "session get");
	int rc = record_session_decode(v.mv_data, v.mv_size, out);
	if (rc == 0 && out->client_id != client_id)
		rc = KEEL_ECORRUPT;
	if (rc != 0)
		lmdb__set_error(s, "session record fails its checksum or checks");
	return rc;
}

static int op_session_get(void *impl, uint64_t client_id, struct kv_session *out)
{
	struct lmdb_store *s = impl;
	MDB_txn *txn = NULL;
	int rc = rd_txn(s, &txn);
	return rc != 0 ? rc : session_read(s, txn, client_id, out);
}

static int op_session_count(void *impl, uint64_t *count)
{
	struct lmdb_store *s = impl;
	MDB_txn *txn = NULL;
	int rc = rd_txn(s, &txn);
	if (rc != 0)
		return rc;
	MDB_stat st;
	int mrc = mdb_stat(txn, s->dbi_sessions, &st);
	if (mrc != 0)
		return lmdb__err(s, mrc, "session count");
	*count = st.ms_entries;
	return 0;
}

static int op_session_oldest(void *impl, struct kv_session *out)
{
	struct lmdb_store *s = impl;
	MDB_txn *txn = NULL;
	int rc = rd_txn(s, &txn);
	if (rc != 0)
		return rc;
	MDB_val k, v;
	rc = edge_get(s, txn, s->dbi_ages, MDB_FIRST, &k, &v, "ages first");
	if (rc != 0)
		return rc;
	if (k.mv_size != 16)
		return KEEL_ECORRUPT;
	uint64_t last_index = record_get_u64(k.mv_data);
	uint64_t id = record_get_u64((const uint8_t *)k.mv_data + 8);
	rc = session_read(s, txn, id, out);
	if (rc == KEEL_ENOTFOUND || (rc == 0 && out->last_index != last_index))
		rc = KEEL_ECORRUPT; /* L3 */
	return rc;
}

static MDB_val age_key(uint8_t buf[16], uint64_t last_index, uint64_t id)
{
	record_put_u64(buf, last_index);
	record_put_u64(buf + 8, id);
	return lmdb__val(buf, 16);
}

/* Remove client_id's session and age key; KEEL_ENOTFOUND if none. */
static int session_remove(struct lmdb_store *s, uint64_t client_id)
{
	struct kv_session old;
	int rc = session_read(s, s->wtxn, client_id, &old);
	if (rc == KEEL_ENOTFOUND)
		return rc;
	if (rc != 0)
		return wr_fail(s, rc);
	uint8_t ak[16], key[8];
	record_put_u64(key, client_id);
	rc = wr_del(s, s->dbi_ages, age_key(ak, old.last_index, client_id));
	if (rc == 0)
		rc = wr_del(s, s->dbi_sessions, lmdb__val(key, 8));
	return rc == 0 ? 0 : wr_fail(s, rc == KEEL_ENOTFOUND ? KEEL_ECORRUPT : rc);
}

static int op_session_put(void *impl, const struct kv_session *se)
{
	struct lmdb_store *s = impl;
	int rc = wr_check(s);
	if (rc != 0)
		return rc;
	if (se->client_id == 0 || se->status > KV_STALE_SEQ)
		return KEEL_EINVAL;
	rc = session_remove(s, se->client_id);
	if (rc != 0 && rc != KEEL_ENOTFOUND)
		return rc;
	uint8_t key[8], ak[16], rec[RECORD_SESSION_BYTES];
	record_put_u64(key, se->client_id);
	size_t n = record_session_encode(se, rec, sizeof(rec));
	rc = wr_put(s, s->dbi_sessions, lmdb__val(key, 8), lmdb__val(rec, n), 0);
	if (rc == 0)
		rc = wr_put(s, s->dbi_ages,
			    age_key(ak, se->last_index, se->client_id),
			    lmdb__val(NULL, 0), 0);
	return rc;
}

static int op_session_del(void *impl, uint64_t client_id)
{
	struct lmdb_store *s = impl;
	int rc = wr_check(s);
	return rc != 0 ? rc : session_remove(s, client_id);
}

/* ---- log and meta writes -------------------------------------------------- */

static int meta_put(struct lmdb_store *s, const char *name, const uint8_t *rec,
		    size_t n)
{
	return wr_put(s, s->dbi_meta, lmdb__str(name), lmdb__val(rec, n), 0);
}

static int op_set_ids(void *impl, uint64_t cluster_id, keel_node_id node_id)
{
	struct lmdb_store *s = impl;
	int rc = wr_check(s);
	if (rc != 0)
		return rc;
	uint8_t rec[RECORD_IDS_BYTES];
	size_t n = record_ids_encode(cluster_id, node_id, rec, sizeof(rec));
	return meta_put(s, LMDB_META_IDS, rec, n);
}

static int op_set_hard_state(void *impl, const struct raft_hard_state *hs)
{
	struct lmdb_store *s = impl;
	int rc = wr_check(s);
	if (rc != 0)
		return rc;
	uint8_t rec[RECORD_HARD_BYTES];
	size_t n = record_hard_encode(hs, rec, sizeof(rec));
	return meta_put(s, LMDB_META_HARD, rec, n);
}

static int op_set_applied(void *impl, uint64_t index)
{
	struct lmdb_store *s = impl;
	int rc = wr_check(s);
	if (rc != 0)
		return rc;
	uint8_t rec[RECORD_APPLIED_BYTES];
	size_t n = record_applied_encode(index, rec, sizeof(rec));
	return meta_put(s, LMDB_META_APPLIED, rec, n);
}

/* Delete log entries lo..hi (all present). */
static int log_del_range(struct lmdb_store *s, uint64_t lo, uint64_t hi)
{
	for (uint64_t i = lo; i <= hi && i != 0; i++) {
		uint8_t key[8];
		record_put_u64(key, i);
		int rc = wr_del(s, s->dbi_log, lmdb__val(key, 8));
		if (rc != 0)
			return wr_fail(s, rc == KEEL_ENOTFOUND ? KEEL_ECORRUPT : rc);
	}
	return 0;
}

static int op_log_append(void *impl, const struct entry *e, size_t n)
{
	struct lmdb_store *s = impl;
	int rc = wr_check(s);
	if (rc != 0 || n == 0)
		return rc;
	uint64_t first, last;
	rc = bounds(s, s->wtxn, &first, &last);
	if (rc != 0)
		return wr_fail(s, rc);
	if (e[0].index < first || e[0].index > last + 1)
		return KEEL_EINVAL;
	for (size_t i = 0; i < n; i++)
		if (record_entry_validate(&e[i]) != 0 || e[i].index != e[0].index + i)
			return KEEL_EINVAL;
	rc = log_del_range(s, e[0].index, last);
	for (size_t i = 0; i < n && rc == 0; i++) {
		uint8_t key[8];
		record_put_u64(key, e[i].index);
		MDB_val k = lmdb__val(key, 8);
		MDB_val v = lmdb__val(NULL, record_entry_bytes(&e[i]));
		rc = lmdb__reserve_put(s, k.mv_size + v.mv_size); /* L6 */
		if (rc != 0)
			return wr_fail(s, rc);
		int mrc = mdb_put(s->wtxn, s->dbi_log, &k, &v,
				  MDB_RESERVE | MDB_APPEND);
		if (mrc != 0)
			return wr_fail(s, lmdb__err(s, mrc, "log put"));
		record_entry_encode(&e[i], v.mv_data, v.mv_size);
	}
	return rc;
}

static int op_log_truncate(void *impl, uint64_t index)
{
	struct lmdb_store *s = impl;
	int rc = wr_check(s);
	if (rc != 0)
		return rc;
	uint64_t first, last;
	rc = bounds(s, s->wtxn, &first, &last);
	if (rc != 0)
		return wr_fail(s, rc);
	if (index < first)
		return KEEL_EINVAL;
	return log_del_range(s, index, last);
}

static int op_log_compact(void *impl, uint64_t index, uint64_t term,
			  const struct membership *m)
{
	struct lmdb_store *s = impl;
	int rc = wr_check(s);
	if (rc != 0)
		return rc;
	uint64_t first, last;
	rc = bounds(s, s->wtxn, &first, &last);
	if (rc != 0)
		return wr_fail(s, rc);
	if (index < first - 1 || record_membership_validate(m) != 0)
		return KEEL_EINVAL;
	uint8_t rec[RECORD_SNAP_BYTES_MAX];
	size_t n = record_snap_encode(index, term, m, rec, sizeof(rec));
	rc = log_del_range(s, first, index < last ? index : last);
	return rc != 0 ? rc : meta_put(s, LMDB_META_SNAP, rec, n);
}

static int op_state_clear(void *impl)
{
	struct lmdb_store *s = impl;
	int rc = wr_check(s);
	if (rc != 0)
		return rc;
	MDB_dbi dbis[] = {s->dbi_kv, s->dbi_kvlong, s->dbi_sessions, s->dbi_ages};
	for (size_t i = 0; i < sizeof(dbis) / sizeof(dbis[0]); i++) {
		int mrc = mdb_drop(s->wtxn, dbis[i], 0); /* empty, keep the db */
		if (mrc != 0)
			return wr_fail(s, lmdb__err(s, mrc, "clear"));
	}
	return 0;
}

/* ---- batches -------------------------------------------------------------- */

static int op_write_begin(void *impl)
{
	struct lmdb_store *s = impl;
	if (s->sticky != 0)
		return s->sticky;
	if (s->wtxn != NULL || s->read_only)
		return KEEL_ESTATE;
	if (s->rtxn_active) { /* L1 */
		mdb_txn_reset(s->rtxn);
		s->rtxn_active = false;
	}
	int rc = lmdb__reserve_begin(s); /* L6 */
	if (rc != 0)
		return rc;
	int mrc = mdb_txn_begin(s->env, NULL, 0, &s->wtxn);
	if (mrc != 0) {
		s->wtxn = NULL;
		return lmdb__err(s, mrc, "begin write");
	}
	s->batch_rc = 0;
	return 0;
}

void lmdb__write_abort(void *impl)
{
	struct lmdb_store *s = impl;
	if (s->wtxn == NULL)
		return;
	mdb_txn_abort(s->wtxn);
	s->wtxn = NULL;
	s->batch_rc = 0;
}

static int op_write_commit(void *impl)
{
	struct lmdb_store *s = impl;
	if (s->wtxn == NULL)
		return s->sticky != 0 ? s->sticky : KEEL_ESTATE;
	int rc = s->sticky != 0 ? s->sticky : s->batch_rc;
	if (rc != 0) {
		lmdb__write_abort(s);
		return rc;
	}
	int mrc = mdb_txn_commit(s->wtxn); /* frees the txn either way */
	s->wtxn = NULL;
	if (mrc == MDB_MAP_FULL || mrc == MDB_TXN_FULL) {
		/* Out of pages for the root and freelist updates, which LMDB
		 * makes before it writes anything: the batch is known not to
		 * have committed (a big snapshot install meets this). */
		lmdb__set_error(s, "commit: %s", mdb_strerror(mrc));
		return KEEL_ENOMEM;
	}
	if (mrc != 0) { /* unknown outcome: L4 */
		lmdb__set_error(s, "commit: %s", mdb_strerror(mrc));
		s->sticky = KEEL_ESTORAGE;
		return KEEL_ESTORAGE;
	}
	return 0;
}

static int op_sync(void *impl)
{
	struct lmdb_store *s = impl;
	if (s->sticky != 0)
		return s->sticky;
	if (s->wtxn != NULL)
		return KEEL_ESTATE;
	if (s->read_only)
		return 0;
	int mrc = mdb_env_sync(s->env, 1);
	if (mrc != 0) {
		lmdb__set_error(s, "sync: %s", mdb_strerror(mrc));
		s->sticky = KEEL_ESTORAGE;
		return KEEL_ESTORAGE;
	}
	return 0;
}

static const struct store_ops lmdb_store_ops = {
	.meta_get = op_meta_get,
	.log_bounds = op_log_bounds,
	.log_get = op_log_get,
	.kv_get = op_kv_get,
	.session_get = op_session_get,
	.session_count = op_session_count,
	.session_oldest = op_session_oldest,
	.write_begin = op_write_begin,
	.set_ids = op_set_ids,
	.set_hard_state = op_set_hard_state,
	.log_append = op_log_append,
	.log_truncate = op_log_truncate,
	.log_compact = op_log_compact,
	.kv_put = op_kv_put,
	.kv_del = op_kv_del,
	.session_put = op_session_put,
	.session_del = op_session_del,
	.set_applied = op_set_applied,
	.write_commit = op_write_commit,
	.write_abort = lmdb__write_abort,
	.sync = op_sync,
	.snap_begin = lmdb__snap_begin,
	.snap_next = lmdb__snap_next,
	.snap_end = lmdb__snap_end,
	.state_clear = op_state_clear,
	.stage_clear = lmdb__stage_clear,
	.stage_put = lmdb__stage_put,
	.stage_install = lmdb__stage_install,
	.stage_count = lmdb__stage_count,
};

void lmdb_store_bind(struct lmdb_store *s, struct store *out)
{
	out->ops = &lmdb_store_ops;
	out->impl = s;
}

