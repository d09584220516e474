/*
 * lmdb_stage.c: the LMDB store's staging area for an incoming snapshot
 * (core/store.h stage_*).
 *
 * Layout: the named database "staging" maps an 8-byte big-endian sequence
 * number (1, 2, ... in stage_put order) to one staged item:
 *   KV       [1][key_bytes u32 BE][key][value]
 *   SESSION  [2][RECORD_SESSION]   (checksummed, core/record.h)
 * Appending in sequence order is cheap (MDB_APPEND) and keys of any length
 * stage the same way. stage_install replays the items in order through the
 * store's own kv_put and session_put (so long keys, chains and the session
 * ages index are kept exactly as for applied writes): a key staged twice
 * keeps the later one.
 *
 * Invariants:
 *   S1 staging keys are 1..n, consecutive: stage_count is its entry count.
 *   S2 staged items were validated by stage_put; one that fails to decode
 *      on install is corruption (KEEL_ECORRUPT), never served.
 *   S3 every write happens in the open batch (the caller's write
 *      transaction), so staging follows the batch's atomicity and
 *      durability like any other write.
 */
#include "lmdb_store_int.h"

#include "../core/err.h"
#include "../core/record.h"

#define STAGE_KV_HEADER_BYTES 5u /* kind + key_bytes */

static int stage_check(struct lmdb_store *s)
{
	if (s->sticky != 0)
		return s->sticky;
	if (s->wtxn == NULL || !s->has_stage)
		return KEEL_ESTATE;
	return s->batch_rc;
}

/* A failed write: poison the batch unless nothing changed (lmdb_store.c L5). */
static int stage_fail(struct lmdb_store *s, int rc)
{
	if (rc != KEEL_EINVAL && rc != KEEL_ENOTFOUND && rc != KEEL_ESTATE)
		s->batch_rc = rc;
	return rc;
}

static void put_u32_be(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t get_u32_be(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
	       ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

int lmdb__stage_clear(void *impl)
{
	struct lmdb_store *s = impl;
	int rc = stage_check(s);
	if (rc != 0)
		return rc;
	int mrc = mdb_drop(s->wtxn, s->dbi_stage, 0); /* empty, keep the db */
	return mrc == 0 ? 0 : stage_fail(s, lmdb__err(s, mrc, "stage clear"));
}

/* The sequence number the next staged item gets (S1). */
static int stage_next_seq(struct lmdb_store *s, uint64_t *seq)
{
	MDB_cursor *cur;
	int mrc = mdb_cursor_open(s->wtxn, s->dbi_stage, &cur);
	if (mrc != 0)
		return lmdb__err(s, mrc, "stage cursor");
	MDB_val k, v;
	mrc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
	mdb_cursor_close(cur);
	if (mrc == MDB_NOTFOUND) {
		*seq = 1;
		return 0;
	}
	if (mrc != 0)
		return lmdb__err(s, mrc, "stage last");
	if (k.mv_size != 8)
		return KEEL_ECORRUPT;
	*seq = record_get_u64(k.mv_data) + 1;
	return 0;
}

/* Encode it into v (reserved in the database by the caller). */
static void item_encode(const struct store_item *it, uint8_t *p, size_t n)
{
	p[0] = (uint8_t)it->kind;
	if (it->kind == STORE_ITEM_SESSION) {
		record_session_encode(&it->session, p + 1, n - 1);
		return;
	}
	put_u32_be(p + 1, it->key_bytes);
	memcpy(p + STAGE_KV_HEADER_BYTES, it->key, it->key_bytes);
	if (it->val_bytes > 0)
		memcpy(p + STAGE_KV_HEADER_BYTES + it->key_bytes, it->val,
		       it->val_bytes);
}

int lmdb__stage_put(void *impl, const struct store_item *it)
{
	struct lmdb_store *s = impl;
	int rc = stage_check(s);
	if (rc != 0)
		return rc;
	if (!store_item_valid(it))
		return KEEL_EINVAL;
	uint64_t seq = 0;
	rc = stage_next_seq(s, &seq);
	if (rc != 0)
		return stage_fail(s, rc);
	size_t n = it->kind == STORE_ITEM_SESSION
			   ? 1u + RECORD_SESSION_BYTES
			   : STAGE_KV_HEADER_BYTES + (size_t)it->key_bytes +
				     it->val_bytes;
	uint8_t key[8];
	record_put_u64(key, seq);
	MDB_val k = lmdb__val(key, 8), v = lmdb__val(NULL, n);
	rc = lmdb__reserve_put(s, k.mv_size + v.mv_size); /* L6 */
	if (rc != 0)
		return stage_fail(s, rc);
	int mrc = mdb_put(s->wtxn, s->dbi_stage, &k, &v,
			  MDB_RESERVE | MDB_APPEND);
	if (mrc != 0)
		return stage_fail(s, lmdb__err(s, mrc, "stage put"));
	item_encode(it, v.mv_data, n);
	return 0;
}

/* Decode one staged value (S2): 0 or KEEL_ECORRUPT. */
static int item_decode(const MDB_val *v, struct store_item *it)
{
	const uint8_t *p = v->mv_data;
	memset(it, 0, sizeof(*it));
	if (v->mv_size < 1)
		return KEEL_ECORRUPT;
	it->kind = p[0];
	if (it->kind == STORE_ITEM_SESSION)
		return record_session_decode(p + 1, v->mv_size - 1,
					     &it->session) == 0
			       ? 0
			       : KEEL_ECORRUPT;
	if (it->kind != STORE_ITEM_KV || v->mv_size < STAGE_KV_HEADER_BYTES)
		return KEEL_ECORRUPT;
	it->key_bytes = get_u32_be(p + 1);
	size_t rest = v->mv_size - STAGE_KV_HEADER_BYTES;
	if (it->key_bytes == 0 || it->key_bytes > KEEL_KEY_BYTES_MAX ||
	    it->key_bytes > rest ||
	    rest - it->key_bytes > KEEL_VALUE_BYTES_MAX)
		return KEEL_ECORRUPT;
	it->key = p + STAGE_KV_HEADER_BYTES;
	it->val = it->key + it->key_bytes;
	it->val_bytes = (uint32_t)(rest - it->key_bytes);
	return 0;
}

/* Replay every staged item, in order, through the store's writes. */
static int stage_replay(struct lmdb_store *s, const struct store_ops *ops)
{
	MDB_cursor *cur;
	int mrc = mdb_cursor_open(s->wtxn, s->dbi_stage, &cur);
	if (mrc != 0)
		return lmdb__err(s, mrc, "stage cursor");
	int rc = 0;
	MDB_val k, v;
	/* The values stay valid: only other databases change meanwhile. */
	while (rc == 0 && (mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
		struct store_item it;
		rc = item_decode(&v, &it);
		if (rc == KEEL_ECORRUPT)
			lmdb__set_error(s, "staged item fails its checks");
		if (rc == 0 && it.kind == STORE_ITEM_KV)
			rc = ops->kv_put(s, it.key, it.key_bytes, it.val,
					 it.val_bytes);
		else if (rc == 0)
			rc = ops->session_put(s, &it.session);
	}
	mdb_cursor_close(cur);
	if (rc == 0 && mrc != MDB_NOTFOUND)
		rc = lmdb__err(s, mrc, "stage next");
	return rc;
}

int lmdb__stage_install(void *impl)
{
	struct lmdb_store *s = impl;
	int rc = stage_check(s);
	if (rc != 0)
		return rc;
	struct store st;
	lmdb_store_bind(s, &st);
	rc = st.ops->state_clear(s);
	if (rc == 0)
		rc = stage_replay(s, st.ops);
	if (rc == 0)
		rc = lmdb__stage_clear(s);
	/* Half a switch must never commit: any failure poisons the batch. */
	if (rc != 0)
		s->batch_rc = rc;
	return rc;
}

int lmdb__stage_count(void *impl, uint64_t *count)
{
	struct lmdb_store *s = impl;
	*count = 0;
	if (s->sticky != 0)
		return s->sticky;
	if (!s->has_stage)
		return 0; /* read-only open of a store from before staging */
	MDB_txn *txn = s->wtxn;
	if (txn == NULL) {
		int mrc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
		if (mrc != 0)
			return lmdb__err(s, mrc, "begin read");
	} else if (s->batch_rc != 0) {
		return s->batch_rc;
	}
	MDB_stat st;
	int mrc = mdb_stat(txn, s->dbi_stage, &st);
	if (txn != s->wtxn)
		mdb_txn_abort(txn);
	if (mrc != 0)
		return lmdb__err(s, mrc, "stage count");
	*count = st.ms_entries;
	return 0;
}
