/*
 * mem_snapshot.c: the memory store's snapshot (core/store.h snap_*): a
 * sorted copy of kv and sessions taken at snap_begin, so writes that follow
 * do not change what it reads, and equal states give equal sequences
 * whatever their history (the hash table's order would not).
 */
#include <stdlib.h>
#include <string.h>

#include "../core/assert.h"
#include "../core/err.h"
#include "../core/record.h"
#include "mem_store.h"

static int rec_cmp(const void *a, const void *b)
{
	const struct mem_rec *x = *(const struct mem_rec *const *)a;
	const struct mem_rec *y = *(const struct mem_rec *const *)b;
	uint32_t n = x->key_bytes < y->key_bytes ? x->key_bytes : y->key_bytes;
	int c = memcmp(x->bytes, y->bytes, n);
	if (c != 0)
		return c;
	return (x->key_bytes > y->key_bytes) - (x->key_bytes < y->key_bytes);
}

static int session_cmp(const void *a, const void *b)
{
	const struct mem_snap_item *x = a, *y = b;
	return (x->session.client_id > y->session.client_id) -
	       (x->session.client_id < y->session.client_id);
}

/* The live records of m, in slot order, into out[0..m->count). */
static void live_records(const struct mem_map *m, struct mem_rec **out)
{
	uint32_t n = 0;
	for (uint32_t i = 0; i < m->cap; i++)
		if (m->slots[i] != NULL && m->slots[i] != MEM_MAP_TOMB)
			out[n++] = m->slots[i];
	KEEL_ASSERT(n == m->count);
}

/* Copy kv (sorted) and sessions (sorted) into the snapshot arrays. */
static int snap_copy(struct mem_store *s, struct mem_rec **recs)
{
	live_records(&s->kv, recs);
	qsort(recs, s->kv.count, sizeof(*recs), rec_cmp);
	uint64_t off = 0;
	for (uint32_t i = 0; i < s->kv.count; i++) {
		const struct mem_rec *r = recs[i];
		size_t n = (size_t)r->key_bytes + r->val_bytes;
		memcpy(s->snap_bytes + off, r->bytes, n);
		s->snap_items[i] = (struct mem_snap_item){
			.kind = STORE_ITEM_KV, .key_bytes = r->key_bytes,
			.val_bytes = r->val_bytes, .off = off};
		off += n;
	}
	live_records(&s->sessions, recs);
	struct mem_snap_item *se = s->snap_items + s->kv.count;
	for (uint32_t i = 0; i < s->sessions.count; i++) {
		se[i] = (struct mem_snap_item){.kind = STORE_ITEM_SESSION};
		if (record_session_decode(MEM_REC_VAL(recs[i]), recs[i]->val_bytes,
					  &se[i].session) != 0)
			return KEEL_ECORRUPT;
	}
	qsort(se, s->sessions.count, sizeof(*se), session_cmp);
	return 0;
}

int mem_store_snap_begin(void *impl, struct store_meta *meta)
{
	struct mem_store *s = impl;
	if (s->open || s->snap_open)
		return KEEL_ESTATE;
	struct store st;
	mem_store_bind(s, &st);
	int rc = st.ops->meta_get(s, meta);
	if (rc != 0)
		return rc;
	uint64_t bytes = 0;
	for (uint32_t i = 0; i < s->kv.cap; i++)
		if (s->kv.slots[i] != NULL && s->kv.slots[i] != MEM_MAP_TOMB)
			bytes += s->kv.slots[i]->key_bytes + s->kv.slots[i]->val_bytes;
	uint32_t count = s->kv.count + s->sessions.count;
	uint32_t most = s->kv.count > s->sessions.count ? s->kv.count
							: s->sessions.count;
	struct mem_rec **recs = malloc(((size_t)most + 1) * sizeof(*recs));
	s->snap_items = malloc(((size_t)count + 1) * sizeof(*s->snap_items));
	s->snap_bytes = malloc((size_t)bytes + 1);
	rc = recs == NULL || s->snap_items == NULL || s->snap_bytes == NULL
		     ? KEEL_ENOMEM
		     : snap_copy(s, recs);
	free(recs);
	s->snap_count = count;
	s->snap_pos = 0;
	s->snap_open = true;
	if (rc != 0)
		mem_store_snap_end(s);
	return rc;
}

int mem_store_snap_next(void *impl, struct store_item *item)
{
	struct mem_store *s = impl;
	if (!s->snap_open)
		return KEEL_ESTATE;
	if (s->snap_pos == s->snap_count)
		return 0;
	const struct mem_snap_item *it = &s->snap_items[s->snap_pos++];
	memset(item, 0, sizeof(*item));
	item->kind = it->kind;
	if (it->kind == STORE_ITEM_SESSION) {
		item->session = it->session;
		return 1;
	}
	item->key = s->snap_bytes + it->off;
	item->key_bytes = it->key_bytes;
	item->val = item->key + it->key_bytes;
	item->val_bytes = it->val_bytes;
	return 1;
}

void mem_store_snap_end(void *impl)
{
	struct mem_store *s = impl;
	free(s->snap_items);
	free(s->snap_bytes);
	s->snap_items = NULL;
	s->snap_bytes = NULL;
	s->snap_count = 0;
	s->snap_pos = 0;
	s->snap_open = false;
}
