/*
 * snapshot.c: the bytes of a snapshot and its two ends; see core/snapshot.h
 * for the chunk format and the contract.
 *
 * Invariants:
 *   P1 a chunk holds whole items only, and at most KEEL_SNAPSHOT_CHUNK_BYTES
 *      of them unless its single item is bigger (then <= SNAP_ITEM_BYTES_MAX):
 *      an item read that would overflow the chunk is carried to the next.
 *   P2 the reader's offsets are byte offsets in the stream of chunks:
 *      next_offset == buf_offset + buf_bytes once a chunk is buffered; it
 *      only answers the buffered chunk (a resend) or the one after it.
 *   P3 the decoder walks a chunk twice: the first walk checks every field
 *      and calls nothing; only a chunk that passes is handed out, so a bad
 *      chunk stages nothing. It never asserts on the bytes.
 *   P4 snap_install switches in one batch (stage_install, log cut, applied
 *      index, hard state) and syncs: a crash leaves the old state or the
 *      new one, never kv of one with the applied index of the other.
 */
#include "snapshot.h"

#include <string.h>

#include "assert.h"
#include "err.h"
#include "mutant.h"
#include "record.h"

#define KV_HEADER_BYTES 9u       /* kind, key_bytes, val_bytes */
#define SESSION_ITEM_BYTES 29u   /* kind, client_id, seq, last_index, status */

_Static_assert(SNAP_ITEM_BYTES_MAX ==
		       KV_HEADER_BYTES + KEEL_KEY_BYTES_MAX + KEEL_VALUE_BYTES_MAX,
	       "the largest item is the largest kv pair");
_Static_assert(SESSION_ITEM_BYTES < SNAP_ITEM_BYTES_MAX, "sessions are small");

/* ---- little-endian fields ------------------------------------------------ */

static void put_le(uint8_t *p, uint64_t v, unsigned bytes)
{
	for (unsigned i = 0; i < bytes; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, unsigned bytes)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < bytes; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* ---- items ---------------------------------------------------------------- */

static size_t item_bytes(const struct store_item *it)
{
	if (it->kind == STORE_ITEM_SESSION)
		return SESSION_ITEM_BYTES;
	return KV_HEADER_BYTES + (size_t)it->key_bytes + it->val_bytes;
}

int snap_item_encode(const struct store_item *it, uint8_t *out, size_t cap)
{
	KEEL_ASSERT(store_item_valid(it)); /* the reader checks what the store gave */
	size_t n = item_bytes(it);
	KEEL_ASSERT(n <= SNAP_ITEM_BYTES_MAX);
	if (n > cap)
		return KEEL_ETOOBIG;
	out[0] = (uint8_t)it->kind;
	if (it->kind == STORE_ITEM_SESSION) {
		put_le(out + 1, it->session.client_id, 8);
		put_le(out + 9, it->session.seq, 8);
		put_le(out + 17, it->session.last_index, 8);
		put_le(out + 25, it->session.status, 4);
		return (int)n;
	}
	put_le(out + 1, it->key_bytes, 4);
	put_le(out + 5, it->val_bytes, 4);
	memcpy(out + KV_HEADER_BYTES, it->key, it->key_bytes);
	if (it->val_bytes > 0)
		memcpy(out + KV_HEADER_BYTES + it->key_bytes, it->val,
		       it->val_bytes);
	return (int)n;
}

/* Parse the item at p[0..n) into *it (pointing into p) and *used. Returns
 * 0 or KEEL_EMALFORMED; checks every field (P3). */
static int item_parse(const uint8_t *p, size_t n, struct store_item *it,
		      size_t *used)
{
	memset(it, 0, sizeof(*it));
	if (n < 1)
		return KEEL_EMALFORMED;
	it->kind = p[0];
	if (it->kind == STORE_ITEM_SESSION) {
		if (n < SESSION_ITEM_BYTES)
			return KEEL_EMALFORMED;
		it->session.client_id = get_le(p + 1, 8);
		it->session.seq = get_le(p + 9, 8);
		it->session.last_index = get_le(p + 17, 8);
		it->session.status = (uint32_t)get_le(p + 25, 4);
		*used = SESSION_ITEM_BYTES;
	} else if (it->kind == STORE_ITEM_KV) {
		if (n < KV_HEADER_BYTES)
			return KEEL_EMALFORMED;
		it->key_bytes = (uint32_t)get_le(p + 1, 4);
		it->val_bytes = (uint32_t)get_le(p + 5, 4);
		/* Two u32 lengths cannot wrap a u64; the limits are
		 * item_valid's. */
		uint64_t body = (uint64_t)it->key_bytes + it->val_bytes;
		if (body > n - KV_HEADER_BYTES)
			return KEEL_EMALFORMED;
		it->key = p + KV_HEADER_BYTES;
		it->val = it->key + it->key_bytes;
		*used = KV_HEADER_BYTES + (size_t)body;
	} else {
		return KEEL_EMALFORMED;
	}
	return store_item_valid(it) ? 0 : KEEL_EMALFORMED;
}

int snap_chunk_decode(const uint8_t *p, uint32_t n,
		      int (*fn)(void *arg, const struct store_item *it),
		      void *arg)
{
	if (n > 0 && p == NULL)
		return KEEL_EMALFORMED;
	if (n > KEEL_SNAPSHOT_CHUNK_BYTES_MAX)
		return KEEL_EMALFORMED;
	struct store_item it;
	size_t used = 0;
	for (size_t off = 0; off < n; off += used)
		if (item_parse(p + off, n - off, &it, &used) != 0)
			return KEEL_EMALFORMED;
	if (fn == NULL)
		return 0;
	for (size_t off = 0; off < n; off += used) {
		int rc = item_parse(p + off, n - off, &it, &used);
		KEEL_ASSERT(rc == 0); /* the first walk passed (P3) */
		rc = fn(arg, &it);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* ---- leader side ------------------------------------------------------------ */

int snap_reader_open(struct snap_reader *sr, struct store *st,
		     const struct keel_alloc *a, uint64_t *last_index)
{
	memset(sr, 0, sizeof(*sr));
	sr->st = st;
	if (a != NULL)
		sr->alloc = *a;
	sr->buf = keel_malloc(&sr->alloc, KEEL_SNAPSHOT_CHUNK_BYTES_MAX);
	sr->carry_buf = keel_malloc(&sr->alloc, SNAP_ITEM_BYTES_MAX);
	if (sr->buf == NULL || sr->carry_buf == NULL) {
		snap_reader_close(sr);
		return KEEL_ENOMEM;
	}
	struct store_meta meta;
	int rc = st->ops->snap_begin(st->impl, &meta);
	if (rc != 0) {
		snap_reader_close(sr);
		return rc;
	}
	sr->open = true;
	sr->last_index = meta.applied_index;
	*last_index = sr->last_index;
	return 0;
}

/* Read the next item into carry_buf. 1 when there is one, 0 at the end,
 * or an error (KEEL_ECORRUPT for an item that breaks the rules: stored
 * bytes are input too). */
static int read_item(struct snap_reader *sr)
{
	struct store_item it;
	int rc = sr->st->ops->snap_next(sr->st->impl, &it);
	if (rc <= 0)
		return rc;
	if (!store_item_valid(&it))
		return KEEL_ECORRUPT;
	rc = snap_item_encode(&it, sr->carry_buf, SNAP_ITEM_BYTES_MAX);
	KEEL_ASSERT(rc > 0);
	sr->carry_bytes = (uint32_t)rc;
	sr->carry = true;
	return 1;
}

/* Fill buf with the chunk after the buffered one (P1). */
static int fill_chunk(struct snap_reader *sr)
{
	sr->buf_offset = sr->next_offset;
	sr->buf_bytes = 0;
	sr->buf_valid = false;
	for (;;) {
		if (!sr->carry && !sr->items_done) {
			int rc = read_item(sr);
			if (rc < 0)
				return rc;
			sr->items_done = rc == 0;
		}
		if (!sr->carry)
			break;
		if (sr->buf_bytes > 0 &&
		    sr->buf_bytes + sr->carry_bytes > KEEL_SNAPSHOT_CHUNK_BYTES)
			break; /* it starts the next chunk */
		KEEL_ASSERT(sr->buf_bytes + sr->carry_bytes <=
			    KEEL_SNAPSHOT_CHUNK_BYTES_MAX);
		memcpy(sr->buf + sr->buf_bytes, sr->carry_buf, sr->carry_bytes);
		sr->buf_bytes += sr->carry_bytes;
		sr->carry = false;
	}
	sr->buf_done = sr->items_done && !sr->carry;
	sr->buf_valid = true;
	sr->next_offset = sr->buf_offset + sr->buf_bytes;
	return 0;
}

int snap_reader_chunk(struct snap_reader *sr, uint64_t offset,
		      const uint8_t **chunk, uint32_t *chunk_bytes,
		      bool *done)
{
	if (!sr->open)
		return KEEL_ESTATE;
	bool resend = sr->buf_valid && offset == sr->buf_offset;
	if (!resend) {
		bool next = offset == sr->next_offset &&
			    !(sr->buf_valid && sr->buf_done);
		if (!next)
			return KEEL_ERANGE;
		int rc = fill_chunk(sr);
		if (rc != 0) {
			/* The store's iteration moved on: this stream cannot
			 * produce any chunk again. */
			snap_reader_close(sr);
			return rc;
		}
	}
	KEEL_ASSERT(sr->next_offset == sr->buf_offset + sr->buf_bytes); /* P2 */
	*chunk = sr->buf;
	*chunk_bytes = sr->buf_bytes;
	*done = sr->buf_done;
	return 0;
}

void snap_reader_close(struct snap_reader *sr)
{
	if (sr->open)
		sr->st->ops->snap_end(sr->st->impl);
	keel_free(&sr->alloc, sr->buf);
	keel_free(&sr->alloc, sr->carry_buf);
	struct keel_alloc a = sr->alloc;
	struct store *st = sr->st;
	memset(sr, 0, sizeof(*sr));
	sr->alloc = a;
	sr->st = st;
}

/* ---- follower side ------------------------------------------------------------ */

static int stage_one(void *arg, const struct store_item *it)
{
	struct store *st = arg;
	return st->ops->stage_put(st->impl, it);
}

int snap_stage_chunk(struct store *st, const struct raft_snapshot_chunk *c)
{
	/* Check the bytes before touching the store. */
	int rc = snap_chunk_decode(c->chunk, c->chunk_bytes, NULL, NULL);
	if (rc != 0)
		return rc;
	rc = st->ops->write_begin(st->impl);
	if (rc != 0)
		return rc;
	if (c->offset == 0)
		rc = st->ops->stage_clear(st->impl);
	if (rc == 0)
		rc = snap_chunk_decode(c->chunk, c->chunk_bytes, stage_one, st);
	if (rc != 0) {
		st->ops->write_abort(st->impl);
		return rc;
	}
	return st->ops->write_commit(st->impl);
}

/* Does the log hold (index, term)? Index may be the snapshot point. */
static int log_matches(struct store *st, uint64_t index, uint64_t term,
		       bool *match)
{
	uint64_t first, last;
	*match = false;
	int rc = st->ops->log_bounds(st->impl, &first, &last);
	if (rc != 0 || index < first || index > last)
		return rc;
	struct entry e;
	rc = st->ops->log_get(st->impl, index, &e);
	if (rc != 0)
		return rc;
	*match = e.term == term;
	return 0;
}

/* The log cut of raft_snapshot_installed: keep what follows a matching
 * (last_index, last_term), else drop the whole log; then the snapshot
 * point. */
static int cut_log(struct store *st, const struct raft_snapshot_chunk *c)
{
	bool match;
	int rc = log_matches(st, c->last_index, c->last_term, &match);
	if (rc == 0 && !match) {
		uint64_t first, last;
		rc = st->ops->log_bounds(st->impl, &first, &last);
		if (rc == 0)
			rc = st->ops->log_truncate(st->impl, first);
	}
	if (rc == 0)
		rc = st->ops->log_compact(st->impl, c->last_index, c->last_term,
					  &c->membership);
	return rc;
}

/* The applied index and the hard state's commit (raised, never lowered). */
static int set_point(struct store *st, uint64_t last_index)
{
	struct store_meta meta;
	int rc = st->ops->meta_get(st->impl, &meta);
	if (rc == 0)
		rc = st->ops->set_applied(st->impl, last_index);
	if (rc == 0 && meta.hard_state.commit < last_index) {
		meta.hard_state.commit = last_index;
		rc = st->ops->set_hard_state(st->impl, &meta.hard_state);
	}
	return rc;
}

/* Commit the open batch, or abort it when rc is already an error. */
static int finish(struct store *st, int rc)
{
	if (rc != 0) {
		st->ops->write_abort(st->impl);
		return rc;
	}
	return st->ops->write_commit(st->impl);
}

int snap_install(struct store *st, const struct raft_snapshot_chunk *c)
{
	KEEL_ASSERT(c->done);
	KEEL_ASSERT(c->last_index > 0);
	int rc = st->ops->write_begin(st->impl);
	if (rc != 0)
		return rc;
	rc = st->ops->stage_install(st->impl);
	if (MUTANT(MUTANT_SNAPSHOT_NOT_ATOMIC)) {
		/* Planted bug: kv switched and made durable on its own. */
		rc = finish(st, rc);
		if (rc == 0)
			rc = st->ops->sync(st->impl);
		if (rc == 0)
			rc = st->ops->write_begin(st->impl);
		if (rc != 0)
			return rc;
	}
	if (rc == 0)
		rc = cut_log(st, c);
	if (rc == 0)
		rc = set_point(st, c->last_index);
	rc = finish(st, rc);
	if (rc == 0)
		rc = st->ops->sync(st->impl);
	return rc;
}
