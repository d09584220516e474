/*
 * lmdb_snapshot.c: iterate kv and sessions from one read transaction, a
 * consistent state at one applied index while writes go on (DESIGN §4).
 * Order: kv (short keys in key order, then long keys by hash), sessions by
 * client id: the same state always gives the same sequence.
 */
#include "lmdb_store_int.h"

#include "../core/err.h"
#include "../core/record.h"

int lmdb_snapshot_begin(struct lmdb_store *s, struct lmdb_snapshot *snap)
{
	memset(snap, 0, sizeof(*snap));
	if (s->sticky != 0)
		return s->sticky;
	snap->s = s;
	int mrc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &snap->txn);
	if (mrc != 0)
		return lmdb__err(s, mrc, "snapshot begin");
	int rc = lmdb__meta_read(s, snap->txn, &snap->meta);
	if (rc == 0 && (mrc = mdb_cursor_open(snap->txn, s->dbi_kv,
					      &snap->cur)) != 0)
		rc = lmdb__err(s, mrc, "snapshot cursor");
	if (rc != 0) {
		mdb_txn_abort(snap->txn);
		memset(snap, 0, sizeof(*snap));
	}
	return rc;
}

/* Move to the next phase's database; 0 or an error. */
static int snap_phase(struct lmdb_snapshot *snap)
{
	mdb_cursor_close(snap->cur);
	snap->cur = NULL;
	snap->phase++;
	if (snap->phase >= 3)
		return 0;
	MDB_dbi dbi = snap->phase == 1 ? snap->s->dbi_kvlong
				       : snap->s->dbi_sessions;
	int mrc = mdb_cursor_open(snap->txn, dbi, &snap->cur);
	return mrc == 0 ? 0 : lmdb__err(snap->s, mrc, "snapshot cursor");
}

int lmdb_snapshot_next(struct lmdb_snapshot *snap, struct store_item *item)
{
	memset(item, 0, sizeof(*item));
	for (;;) {
		if (snap->phase >= 3 || snap->txn == NULL)
			return 0;
		if (snap->phase == 1 && snap->chain_bytes > 0) {
			struct lmdb__link l;
			if (!lmdb__link_at(snap->chain, snap->chain_bytes, &l))
				return KEEL_ECORRUPT;
			snap->chain += l.bytes;
			snap->chain_bytes -= l.bytes;
			item->kind = STORE_ITEM_KV;
			item->key = l.key;
			item->key_bytes = l.key_bytes;
			item->val = l.val;
			item->val_bytes = l.val_bytes;
			return 1;
		}
		MDB_val k, v;
		int mrc = mdb_cursor_get(snap->cur, &k, &v, MDB_NEXT);
		if (mrc == MDB_NOTFOUND) {
			int rc = snap_phase(snap);
			if (rc != 0)
				return rc;
			continue;
		}
		if (mrc != 0)
			return lmdb__err(snap->s, mrc, "snapshot next");
		if (snap->phase == 0) {
			item->kind = STORE_ITEM_KV;
			item->key = k.mv_data;
			item->key_bytes = (uint32_t)k.mv_size;
			item->val = v.mv_data;
			item->val_bytes = (uint32_t)v.mv_size;
			return 1;
		}
		if (snap->phase == 1) {
			snap->chain = v.mv_data;
			snap->chain_bytes = v.mv_size;
			continue;
		}
		item->kind = STORE_ITEM_SESSION;
		if (record_session_decode(v.mv_data, v.mv_size,
					  &item->session) != 0)
			return KEEL_ECORRUPT;
		return 1;
	}
}

void lmdb_snapshot_end(struct lmdb_snapshot *snap)
{
	if (snap->cur != NULL)
		mdb_cursor_close(snap->cur);
	if (snap->txn != NULL)
		mdb_txn_abort(snap->txn);
	memset(snap, 0, sizeof(*snap));
}


/* ---- the store_ops snapshot ----------------------------------------------- */

int lmdb__snap_begin(void *impl, struct store_meta *meta)
{
	struct lmdb_store *s = impl;
	if (s->sticky != 0)
		return s->sticky;
	if (s->snap_open || s->wtxn != NULL)
		return KEEL_ESTATE;
	int rc = lmdb_snapshot_begin(s, &s->snap);
	if (rc != 0)
		return rc;
	s->snap_open = true;
	*meta = s->snap.meta;
	return 0;
}

int lmdb__snap_next(void *impl, struct store_item *item)
{
	struct lmdb_store *s = impl;
	if (!s->snap_open)
		return KEEL_ESTATE;
	return lmdb_snapshot_next(&s->snap, item);
}

void lmdb__snap_end(void *impl)
{
	struct lmdb_store *s = impl;
	if (!s->snap_open)
		return;
	lmdb_snapshot_end(&s->snap);
	s->snap_open = false;
}
