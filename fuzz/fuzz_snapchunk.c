/*
 * fuzz_snapchunk.c: the snapshot chunk decoder (core/snapshot.c) on
 * arbitrary bytes, as a follower receives them from a peer, and the
 * follower's staging of them into an in-memory store.
 *
 * Input: the chunk. Properties:
 *  1. snap_chunk_decode fails only with KEEL_EMALFORMED, and then called
 *     its function for no item;
 *  2. every item it hands out passes the rules, and re-encoding the items
 *     in order gives back exactly the input: the format is canonical, so
 *     nothing else may decode;
 *  3. snap_stage_chunk into a store that already staged one item stages
 *     exactly the decoded items, or nothing at all for a bad chunk; a good
 *     one then installs (snap_install) with the staging area left empty.
 */
#include <stdlib.h>
#include <string.h>

#include "../core/err.h"
#include "../core/snapshot.h"
#include "../io_sim/mem_store.h"
#include "fuzz.h"

struct walk {
	const uint8_t *data;
	size_t size;
	size_t at;    /* bytes matched so far */
	uint32_t items;
};

static uint8_t out[SNAP_ITEM_BYTES_MAX];

static int check_item(void *arg, const struct store_item *it)
{
	struct walk *w = arg;
	FUZZ_CHECK(it->kind == STORE_ITEM_KV || it->kind == STORE_ITEM_SESSION);
	if (it->kind == STORE_ITEM_KV) {
		FUZZ_CHECK(it->key_bytes >= 1 && it->key_bytes <= KEEL_KEY_BYTES_MAX);
		FUZZ_CHECK(it->val_bytes <= KEEL_VALUE_BYTES_MAX);
		FUZZ_CHECK(it->key >= w->data && it->key < w->data + w->size);
	} else {
		FUZZ_CHECK(it->session.client_id != 0);
		FUZZ_CHECK(it->session.status <= KV_STALE_SEQ);
	}
	int n = snap_item_encode(it, out, sizeof(out));
	FUZZ_CHECK(n > 0);
	FUZZ_CHECK((size_t)n <= w->size - w->at);
	FUZZ_CHECK(memcmp(out, w->data + w->at, (size_t)n) == 0);
	w->at += (size_t)n;
	w->items++;
	return 0;
}

static void check_staging(const uint8_t *data, size_t size, int rc,
			  uint32_t items)
{
	static const uint8_t first[] = {STORE_ITEM_KV, 1, 0, 0, 0, 0, 0, 0, 0, 'k'};
	struct mem_store ms;
	struct store st;
	mem_store_init(&ms);
	mem_store_bind(&ms, &st);
	struct raft_snapshot_chunk c = {.last_index = 5, .last_term = 1,
					.chunk = first,
					.chunk_bytes = sizeof(first)};
	FUZZ_CHECK(snap_stage_chunk(&st, &c) == 0);
	c.offset = sizeof(first);
	c.chunk = data;
	c.chunk_bytes = (uint32_t)size;
	FUZZ_CHECK(snap_stage_chunk(&st, &c) == rc);
	uint64_t count = 0;
	FUZZ_CHECK(st.ops->stage_count(st.impl, &count) == 0);
	FUZZ_CHECK(count == 1 + (rc == 0 ? items : 0));
	if (rc == 0) { /* and the switch to it */
		c.done = true;
		FUZZ_CHECK(snap_install(&st, &c) == 0);
		struct store_meta m;
		FUZZ_CHECK(st.ops->meta_get(st.impl, &m) == 0);
		FUZZ_CHECK(m.applied_index == 5 && m.snapshot_index == 5);
		FUZZ_CHECK(st.ops->stage_count(st.impl, &count) == 0);
		FUZZ_CHECK(count == 0);
		FUZZ_CHECK(mem_store_kv_count(&ms) <= 1 + items);
	}
	mem_store_close(&ms);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > KEEL_SNAPSHOT_CHUNK_BYTES_MAX)
		return 0; /* the peer codec refuses these before */
	struct walk w = {.data = data, .size = size};
	int rc = snap_chunk_decode(data, (uint32_t)size, check_item, &w);
	if (rc != 0) {
		FUZZ_CHECK(rc == KEEL_EMALFORMED);
		FUZZ_CHECK(w.items == 0);
	} else {
		FUZZ_CHECK(w.at == size);
	}
	check_staging(data, size, rc, w.items);
	return 0;
}
