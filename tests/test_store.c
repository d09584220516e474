/*
 * test_store.c: the store conformance suite (core/store.h), run against both
 * implementations with the same test bodies: io_sim's mem_store and
 * io_real's LMDB store. Then tests only the memory model has (crash, tear,
 * corruption). LMDB-only tests live in test_lmdb.c.
 */
#include "harness.h"

#include <stdlib.h>
#include <unistd.h>

#include "../core/assert.h"
#include "../core/err.h"
#include "../core/record.h"
#include "../io_real/lmdb_store.h"
#include "../io_sim/mem_store.h"
#include "store_fixture.h"

/* ---- fixtures: one per implementation ------------------------------------ */

static void mem_open(struct fixture *f)
{
	ASSERT_EQ(mem_store_init(&f->mem), 0);
	mem_store_bind(&f->mem, &f->st);
}

static void mem_reopen(struct fixture *f)
{
	mem_store_crash(&f->mem, 0); /* what a restart finds: the durable state */
}

static void mem_close(struct fixture *f)
{
	mem_store_close(&f->mem);
}

static const struct fixture_ops mem_fixture = {"mem", mem_open, mem_reopen,
					       mem_close};

/* The writable-map fixture: a small map and reserve, as tests open many. */
static bool fixture_writemap(const struct fixture *f)
{
	return strcmp(f->ops->name, "lmdb_writemap") == 0;
}

static void lmdb_open_dir(struct fixture *f)
{
	bool wm = fixture_writemap(f);
	struct lmdb_store_config cfg = {
		.dir = f->dir,
		.create = true,
		.writemap = wm,
		.map_bytes = wm ? 256u << 20 : 0,
		.reserve_ahead_bytes = wm ? 1u << 20 : 0,
	};
	int rc = lmdb_store_open(&f->lmdb, &cfg);
	if (rc != 0)
		fprintf(stderr, "lmdb_store_open: %s\n", f->lmdb.error);
	ASSERT_EQ(rc, 0);
	lmdb_store_bind(&f->lmdb, &f->st);
}

static void lmdb_open(struct fixture *f)
{
	fixture_tmpdir(f);
	lmdb_open_dir(f);
}

static void lmdb_reopen(struct fixture *f)
{
	lmdb_store_close(&f->lmdb);
	lmdb_open_dir(f);
}

static void lmdb_close(struct fixture *f)
{
	lmdb_store_close(&f->lmdb);
	fixture_rmdir(f);
}

static const struct fixture_ops lmdb_fixture = {"lmdb", lmdb_open, lmdb_reopen,
						lmdb_close};
static const struct fixture_ops lmdb_wm_fixture = {"lmdb_writemap", lmdb_open,
						   lmdb_reopen, lmdb_close};

/* Each CONFORM(name) body runs once per store: as mem_name, lmdb_name and
 * lmdb_wm_name (LMDB with its writable map, --lmdb-writemap). */
#define CONFORM(name)                                                      \
	static void body_##name(struct fixture *f);                        \
	TEST(mem_##name) { fixture_run(&mem_fixture, body_##name); }       \
	TEST(lmdb_##name) { fixture_run(&lmdb_fixture, body_##name); }     \
	TEST(lmdb_wm_##name) { fixture_run(&lmdb_wm_fixture, body_##name); } \
	static void body_##name(struct fixture *f)

/* ---- helpers ------------------------------------------------------------- */

#define OPS(f) ((f)->st.ops)
#define S(f) ((f)->st.impl)

static void begin(struct fixture *f)
{
	ASSERT_EQ(OPS(f)->write_begin(S(f)), 0);
}

static void commit(struct fixture *f)
{
	ASSERT_EQ(OPS(f)->write_commit(S(f)), 0);
}

static void commit_sync(struct fixture *f)
{
	commit(f);
	ASSERT_EQ(OPS(f)->sync(S(f)), 0);
}

/* Entry i of term t with data "e<i>t<t>" repeated to len bytes. */
static struct entry mk_entry(uint64_t index, uint64_t term, uint8_t *buf,
			     uint32_t len)
{
	for (uint32_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(index * 31 + term * 7 + i);
	return (struct entry){.term = term, .index = index,
			      .type = ENTRY_COMMAND, .data_bytes = len,
			      .data = len ? buf : NULL};
}

/* Append entries lo..hi of term t in the open batch. */
static void append_range(struct fixture *f, uint64_t lo, uint64_t hi,
			 uint64_t term)
{
	static uint8_t bufs[64][64];
	struct entry e[64];
	ASSERT_TRUE(hi - lo + 1 <= 64);
	for (uint64_t i = lo; i <= hi; i++)
		e[i - lo] = mk_entry(i, term, bufs[i - lo], (uint32_t)(i % 50));
	ASSERT_EQ(OPS(f)->log_append(S(f), e, hi - lo + 1), 0);
}

static void check_entry(struct fixture *f, uint64_t index, uint64_t term)
{
	uint8_t want[64];
	struct entry w = mk_entry(index, term, want, (uint32_t)(index % 50));
	struct entry e;
	ASSERT_EQ(OPS(f)->log_get(S(f), index, &e), 0);
	ASSERT_U64_EQ(e.index, index);
	ASSERT_U64_EQ(e.term, term);
	ASSERT_EQ(e.type, ENTRY_COMMAND);
	ASSERT_EQ(e.data_bytes, w.data_bytes);
	if (w.data_bytes > 0)
		ASSERT_MEM_EQ(e.data, w.data, w.data_bytes);
}

static void check_bounds(struct fixture *f, uint64_t first, uint64_t last)
{
	uint64_t a, b;
	ASSERT_EQ(OPS(f)->log_bounds(S(f), &a, &b), 0);
	ASSERT_U64_EQ(a, first);
	ASSERT_U64_EQ(b, last);
}

static int put_s(struct fixture *f, const char *k, const char *v)
{
	return OPS(f)->kv_put(S(f), (const uint8_t *)k, (uint32_t)strlen(k),
			      (const uint8_t *)v, (uint32_t)strlen(v));
}

static int del_s(struct fixture *f, const char *k)
{
	return OPS(f)->kv_del(S(f), (const uint8_t *)k, (uint32_t)strlen(k));
}

static void check_val(struct fixture *f, const char *k, const char *v)
{
	const uint8_t *val;
	uint32_t vb;
	int rc = OPS(f)->kv_get(S(f), (const uint8_t *)k, (uint32_t)strlen(k),
				&val, &vb);
	if (v == NULL) {
		ASSERT_EQ(rc, KEEL_ENOTFOUND);
		return;
	}
	ASSERT_EQ(rc, 0);
	ASSERT_EQ(vb, strlen(v));
	ASSERT_MEM_EQ(val, v, vb);
}

static struct membership one_member(keel_node_id id)
{
	struct membership m;
	memset(&m, 0, sizeof(m));
	m.member_count = 2;
	m.members[0].id = id;
	m.members[0].role = MEMBER_VOTER;
	strcpy(m.members[0].peer_addr, "127.0.0.1:7001");
	strcpy(m.members[0].client_addr, "127.0.0.1:7101");
	m.members[1].id = id + 1;
	m.members[1].role = MEMBER_LEARNER;
	return m;
}

static void put_session(struct fixture *f, uint64_t id, uint64_t seq,
			uint64_t last_index, uint32_t status)
{
	struct kv_session se = {id, seq, last_index, status};
	ASSERT_EQ(OPS(f)->session_put(S(f), &se), 0);
}

/* ---- conformance --------------------------------------------------------- */

CONFORM(meta_round_trip)
{
	struct store_meta m, zero;
	memset(&zero, 0, sizeof(zero));
	ASSERT_EQ(OPS(f)->meta_get(S(f), &m), 0);
	ASSERT_MEM_EQ(&m, &zero, sizeof(m));
	check_bounds(f, 1, 0);

	struct membership mb = one_member(7);
	mb.next_id = 12; /* kept with the snapshot point (ids never reused) */
	struct raft_hard_state hs = {.term = 9, .vote = 3, .commit = 4};
	begin(f);
	ASSERT_EQ(OPS(f)->set_ids(S(f), 0xabcdef, 7), 0);
	ASSERT_EQ(OPS(f)->set_hard_state(S(f), &hs), 0);
	ASSERT_EQ(OPS(f)->log_compact(S(f), 12, 5, &mb), 0);
	ASSERT_EQ(OPS(f)->set_applied(S(f), 12), 0);
	commit_sync(f);
	for (int round = 0; round < 2; round++) {
		ASSERT_EQ(OPS(f)->meta_get(S(f), &m), 0);
		ASSERT_U64_EQ(m.cluster_id, 0xabcdef);
		ASSERT_U64_EQ(m.node_id, 7);
		ASSERT_U64_EQ(m.hard_state.term, 9);
		ASSERT_U64_EQ(m.hard_state.vote, 3);
		ASSERT_U64_EQ(m.hard_state.commit, 4);
		ASSERT_U64_EQ(m.snapshot_index, 12);
		ASSERT_U64_EQ(m.snapshot_term, 5);
		ASSERT_U64_EQ(m.applied_index, 12);
		ASSERT_MEM_EQ(&m.snapshot_membership, &mb, sizeof(mb));
		check_bounds(f, 13, 12);
		f->ops->reopen(f);
	}
}

CONFORM(log_append_and_get)
{
	begin(f);
	append_range(f, 1, 20, 1);
	commit(f);
	check_bounds(f, 1, 20);
	for (uint64_t i = 1; i <= 20; i++)
		check_entry(f, i, 1);
	struct entry e;
	ASSERT_EQ(OPS(f)->log_get(S(f), 0, &e), KEEL_ENOTFOUND);
	ASSERT_EQ(OPS(f)->log_get(S(f), 21, &e), KEEL_ENOTFOUND);
	/* every entry type, empty data and the largest data */
	uint8_t *big = malloc(KEEL_ENTRY_BYTES_MAX);
	memset(big, 0x5a, KEEL_ENTRY_BYTES_MAX);
	struct entry more[3] = {
		{.term = 2, .index = 21, .type = ENTRY_NOOP},
		{.term = 2, .index = 22, .type = ENTRY_CONFIG, .data_bytes = 3,
		 .data = (const uint8_t *)"cfg"},
		{.term = 2, .index = 23, .type = ENTRY_COMMAND,
		 .data_bytes = KEEL_ENTRY_BYTES_MAX, .data = big},
	};
	begin(f);
	ASSERT_EQ(OPS(f)->log_append(S(f), more, 3), 0);
	commit(f);
	ASSERT_EQ(OPS(f)->log_get(S(f), 21, &e), 0);
	ASSERT_EQ(e.type, ENTRY_NOOP);
	ASSERT_EQ(e.data_bytes, 0);
	ASSERT_EQ(OPS(f)->log_get(S(f), 22, &e), 0);
	ASSERT_EQ(e.type, ENTRY_CONFIG);
	ASSERT_MEM_EQ(e.data, "cfg", 3);
	ASSERT_EQ(OPS(f)->log_get(S(f), 23, &e), 0);
	ASSERT_EQ(e.data_bytes, KEEL_ENTRY_BYTES_MAX);
	ASSERT_MEM_EQ(e.data, big, KEEL_ENTRY_BYTES_MAX);
	free(big);
}

CONFORM(log_overwrite_truncates)
{
	begin(f);
	append_range(f, 1, 10, 1);
	commit(f);
	begin(f);
	append_range(f, 4, 6, 2); /* replaces 4..10 by 4..6 */
	commit_sync(f);
	for (int round = 0; round < 2; round++) {
		check_bounds(f, 1, 6);
		check_entry(f, 3, 1);
		check_entry(f, 4, 2);
		check_entry(f, 6, 2);
		struct entry e;
		ASSERT_EQ(OPS(f)->log_get(S(f), 7, &e), KEEL_ENOTFOUND);
		f->ops->reopen(f);
	}
	/* appending at last + 1 truncates nothing */
	begin(f);
	append_range(f, 7, 8, 3);
	commit(f);
	check_bounds(f, 1, 8);
	check_entry(f, 6, 2);
	check_entry(f, 8, 3);
	/* overwriting from the first index empties the old log */
	begin(f);
	append_range(f, 1, 2, 4);
	commit(f);
	check_bounds(f, 1, 2);
	check_entry(f, 1, 4);
}

CONFORM(log_append_bounds)
{
	begin(f);
	append_range(f, 1, 5, 1);
	uint8_t b[8];
	struct entry gap = mk_entry(7, 1, b, 8);
	ASSERT_EQ(OPS(f)->log_append(S(f), &gap, 1), KEEL_EINVAL);
	struct entry two[2] = {mk_entry(6, 1, b, 8), mk_entry(8, 1, b, 8)};
	ASSERT_EQ(OPS(f)->log_append(S(f), two, 2), KEEL_EINVAL);
	struct entry bad = mk_entry(6, 1, b, 8);
	bad.type = 99;
	ASSERT_EQ(OPS(f)->log_append(S(f), &bad, 1), KEEL_EINVAL);
	bad = mk_entry(6, 0, b, 8);
	ASSERT_EQ(OPS(f)->log_append(S(f), &bad, 1), KEEL_EINVAL);
	bad = mk_entry(6, 1, b, 8);
	bad.data_bytes = KEEL_ENTRY_BYTES_MAX + 1;
	ASSERT_EQ(OPS(f)->log_append(S(f), &bad, 1), KEEL_EINVAL);
	struct membership mb = one_member(1);
	ASSERT_EQ(OPS(f)->log_compact(S(f), 2, 1, &mb), 0);
	struct entry low = mk_entry(2, 1, b, 8);
	ASSERT_EQ(OPS(f)->log_append(S(f), &low, 1), KEEL_EINVAL);
	/* the rejected calls changed nothing and the batch still commits */
	commit(f);
	check_bounds(f, 3, 5);
	check_entry(f, 5, 1);
}

CONFORM(log_truncate)
{
	struct membership mb = one_member(1);
	begin(f);
	append_range(f, 1, 10, 1);
	ASSERT_EQ(OPS(f)->log_truncate(S(f), 7), 0);
	check_bounds(f, 1, 6);
	ASSERT_EQ(OPS(f)->log_truncate(S(f), 20), 0); /* past the end: none */
	ASSERT_EQ(OPS(f)->log_compact(S(f), 2, 1, &mb), 0);
	ASSERT_EQ(OPS(f)->log_truncate(S(f), 2), KEEL_EINVAL);
	commit_sync(f);
	f->ops->reopen(f);
	check_bounds(f, 3, 6);
	struct entry e;
	ASSERT_EQ(OPS(f)->log_get(S(f), 7, &e), KEEL_ENOTFOUND);
	check_entry(f, 6, 1);
	begin(f);
	ASSERT_EQ(OPS(f)->log_truncate(S(f), 3), 0); /* everything */
	commit(f);
	check_bounds(f, 3, 2);
	begin(f);
	append_range(f, 3, 4, 2);
	commit(f);
	check_entry(f, 4, 2);
}

CONFORM(log_compact)
{
	struct membership mb = one_member(1);
	begin(f);
	append_range(f, 1, 10, 1);
	ASSERT_EQ(OPS(f)->log_compact(S(f), 4, 1, &mb), 0);
	commit_sync(f);
	struct entry e;
	for (int round = 0; round < 2; round++) {
		check_bounds(f, 5, 10);
		ASSERT_EQ(OPS(f)->log_get(S(f), 4, &e), KEEL_ENOTFOUND);
		check_entry(f, 5, 1);
		check_entry(f, 10, 1);
		f->ops->reopen(f);
	}
	begin(f);
	ASSERT_EQ(OPS(f)->log_compact(S(f), 3, 1, &mb), KEEL_EINVAL);
	ASSERT_EQ(OPS(f)->log_compact(S(f), 4, 1, &mb), 0); /* same point */
	ASSERT_EQ(OPS(f)->log_compact(S(f), 30, 6, &mb), 0); /* past the end */
	commit_sync(f);
	check_bounds(f, 31, 30);
	ASSERT_EQ(OPS(f)->log_get(S(f), 10, &e), KEEL_ENOTFOUND);
	begin(f);
	append_range(f, 31, 33, 6);
	commit_sync(f);
	f->ops->reopen(f);
	check_bounds(f, 31, 33);
	check_entry(f, 31, 6);
	struct store_meta m;
	ASSERT_EQ(OPS(f)->meta_get(S(f), &m), 0);
	ASSERT_U64_EQ(m.snapshot_index, 30);
	ASSERT_U64_EQ(m.snapshot_term, 6);
	/* a next_id at or below a member's id would hand that id out again
	 * after a restart (raft.h M4): refused, nothing changes */
	mb.next_id = 2; /* members 1 and 2 */
	begin(f);
	ASSERT_EQ(OPS(f)->log_compact(S(f), 31, 6, &mb), KEEL_EINVAL);
	mb.next_id = 3;
	ASSERT_EQ(OPS(f)->log_compact(S(f), 31, 6, &mb), 0);
	commit_sync(f);
	f->ops->reopen(f);
	ASSERT_EQ(OPS(f)->meta_get(S(f), &m), 0);
	ASSERT_U64_EQ(m.snapshot_index, 31);
	ASSERT_U64_EQ(m.snapshot_membership.next_id, 3);
}

CONFORM(log_first_index_above_one)
{
	struct membership mb = one_member(4);
	begin(f);
	ASSERT_EQ(OPS(f)->log_compact(S(f), 1000, 7, &mb), 0);
	append_range(f, 1001, 1010, 7);
	commit_sync(f);
	f->ops->reopen(f);
	check_bounds(f, 1001, 1010);
	check_entry(f, 1001, 7);
	check_entry(f, 1010, 7);
	uint8_t b[4];
	struct entry e = mk_entry(1, 1, b, 4);
	begin(f);
	ASSERT_EQ(OPS(f)->log_append(S(f), &e, 1), KEEL_EINVAL);
	append_range(f, 1005, 1006, 8);
	commit(f);
	check_bounds(f, 1001, 1006);
	check_entry(f, 1006, 8);
}

CONFORM(kv_put_get_del)
{
	begin(f);
	ASSERT_EQ(put_s(f, "a", "1"), 0);
	ASSERT_EQ(put_s(f, "b", "2"), 0);
	ASSERT_EQ(put_s(f, "a", "one"), 0);
	ASSERT_EQ(put_s(f, "empty", ""), 0);
	commit_sync(f);
	for (int round = 0; round < 2; round++) {
		check_val(f, "a", "one");
		check_val(f, "b", "2");
		check_val(f, "empty", "");
		check_val(f, "zzz", NULL);
		f->ops->reopen(f);
	}
	begin(f);
	ASSERT_EQ(del_s(f, "b"), 0);
	ASSERT_EQ(del_s(f, "b"), KEEL_ENOTFOUND);
	ASSERT_EQ(del_s(f, "nope"), KEEL_ENOTFOUND);
	commit(f);
	check_val(f, "b", NULL);
	check_val(f, "a", "one");
	/* limits */
	uint8_t *key = malloc(KEEL_KEY_BYTES_MAX + 1);
	uint8_t *val = malloc(KEEL_VALUE_BYTES_MAX + 1);
	memset(key, 'k', KEEL_KEY_BYTES_MAX + 1);
	memset(val, 'v', KEEL_VALUE_BYTES_MAX + 1);
	begin(f);
	ASSERT_EQ(OPS(f)->kv_put(S(f), key, 0, val, 1), KEEL_EINVAL);
	ASSERT_EQ(OPS(f)->kv_put(S(f), key, KEEL_KEY_BYTES_MAX + 1, val, 1),
		  KEEL_EINVAL);
	ASSERT_EQ(OPS(f)->kv_put(S(f), key, 1, val, KEEL_VALUE_BYTES_MAX + 1),
		  KEEL_EINVAL);
	ASSERT_EQ(OPS(f)->kv_put(S(f), key, KEEL_KEY_BYTES_MAX, val,
				 KEEL_VALUE_BYTES_MAX),
		  0);
	commit(f);
	const uint8_t *v;
	uint32_t vb;
	ASSERT_EQ(OPS(f)->kv_get(S(f), key, KEEL_KEY_BYTES_MAX, &v, &vb), 0);
	ASSERT_EQ(vb, KEEL_VALUE_BYTES_MAX);
	ASSERT_MEM_EQ(v, val, vb);
	ASSERT_EQ(OPS(f)->kv_get(S(f), key, KEEL_KEY_BYTES_MAX + 1, &v, &vb),
		  KEEL_EINVAL);
	free(key);
	free(val);
}

/* Long keys (over LMDB's inline key limit) that share a long prefix are
 * distinct keys. */
CONFORM(kv_long_keys)
{
	enum { N = 6 };
	uint8_t keys[N][KEEL_KEY_BYTES_MAX];
	uint32_t lens[N] = {600, 600, 601, 1024, 1024, 512};
	for (int i = 0; i < N; i++) {
		memset(keys[i], 'p', KEEL_KEY_BYTES_MAX);
		keys[i][lens[i] - 1] = (uint8_t)('0' + i);
	}
	begin(f);
	for (int i = 0; i < N; i++) {
		uint8_t v = (uint8_t)i;
		ASSERT_EQ(OPS(f)->kv_put(S(f), keys[i], lens[i], &v, 1), 0);
	}
	commit_sync(f);
	f->ops->reopen(f);
	begin(f);
	ASSERT_EQ(OPS(f)->kv_del(S(f), keys[1], lens[1]), 0);
	ASSERT_EQ(OPS(f)->kv_del(S(f), keys[1], lens[1]), KEEL_ENOTFOUND);
	uint8_t v9 = 9;
	ASSERT_EQ(OPS(f)->kv_put(S(f), keys[3], lens[3], &v9, 1), 0);
	commit(f);
	for (int i = 0; i < N; i++) {
		const uint8_t *v;
		uint32_t vb;
		int rc = OPS(f)->kv_get(S(f), keys[i], lens[i], &v, &vb);
		if (i == 1) {
			ASSERT_EQ(rc, KEEL_ENOTFOUND);
			continue;
		}
		ASSERT_EQ(rc, 0);
		ASSERT_EQ(vb, 1);
		ASSERT_EQ(v[0], i == 3 ? 9 : i);
	}
	const uint8_t *v;
	uint32_t vb;
	ASSERT_EQ(OPS(f)->kv_get(S(f), keys[0], 599, &v, &vb), KEEL_ENOTFOUND);
}

CONFORM(sessions)
{
	struct kv_session se;
	uint64_t count;
	ASSERT_EQ(OPS(f)->session_get(S(f), 5, &se), KEEL_ENOTFOUND);
	ASSERT_EQ(OPS(f)->session_oldest(S(f), &se), KEEL_ENOTFOUND);
	ASSERT_EQ(OPS(f)->session_count(S(f), &count), 0);
	ASSERT_U64_EQ(count, 0);
	begin(f);
	put_session(f, 5, 1, 40, KV_OK);
	put_session(f, 9, 3, 20, KV_CAS_FAILED);
	put_session(f, 2, 7, 20, KV_NOT_FOUND);
	put_session(f, 1, 1, 30, KV_TOO_BIG);
	struct kv_session bad = {0, 1, 1, KV_OK};
	ASSERT_EQ(OPS(f)->session_put(S(f), &bad), KEEL_EINVAL);
	commit_sync(f);
	for (int round = 0; round < 2; round++) {
		ASSERT_EQ(OPS(f)->session_count(S(f), &count), 0);
		ASSERT_U64_EQ(count, 4);
		ASSERT_EQ(OPS(f)->session_get(S(f), 9, &se), 0);
		ASSERT_U64_EQ(se.client_id, 9);
		ASSERT_U64_EQ(se.seq, 3);
		ASSERT_U64_EQ(se.last_index, 20);
		ASSERT_EQ(se.status, KV_CAS_FAILED);
		ASSERT_EQ(OPS(f)->session_oldest(S(f), &se), 0);
		ASSERT_U64_EQ(se.client_id, 2); /* last_index 20, smaller id */
		f->ops->reopen(f);
	}
	begin(f);
	put_session(f, 2, 8, 50, KV_OK); /* moves 2 to the back */
	ASSERT_EQ(OPS(f)->session_oldest(S(f), &se), 0);
	ASSERT_U64_EQ(se.client_id, 9);
	ASSERT_EQ(OPS(f)->session_del(S(f), 9), 0);
	ASSERT_EQ(OPS(f)->session_del(S(f), 9), KEEL_ENOTFOUND);
	ASSERT_EQ(OPS(f)->session_oldest(S(f), &se), 0);
	ASSERT_U64_EQ(se.client_id, 1);
	commit(f);
	ASSERT_EQ(OPS(f)->session_count(S(f), &count), 0);
	ASSERT_U64_EQ(count, 3);
	ASSERT_EQ(OPS(f)->session_get(S(f), 9, &se), KEEL_ENOTFOUND);
	ASSERT_EQ(OPS(f)->session_get(S(f), 2, &se), 0);
	ASSERT_U64_EQ(se.seq, 8);
	ASSERT_U64_EQ(se.last_index, 50);
	ASSERT_EQ(OPS(f)->session_oldest(S(f), &se), 0);
	ASSERT_U64_EQ(se.client_id, 1);
}

/* Fill a store with some of everything, durable. */
static void fill_base(struct fixture *f)
{
	struct membership mb = one_member(1);
	struct raft_hard_state hs = {.term = 2, .vote = 1, .commit = 3};
	begin(f);
	ASSERT_EQ(OPS(f)->set_ids(S(f), 77, 1), 0);
	ASSERT_EQ(OPS(f)->set_hard_state(S(f), &hs), 0);
	append_range(f, 1, 8, 2);
	ASSERT_EQ(OPS(f)->log_compact(S(f), 2, 2, &mb), 0);
	ASSERT_EQ(put_s(f, "x", "10"), 0);
	ASSERT_EQ(put_s(f, "y", "20"), 0);
	put_session(f, 3, 4, 5, KV_OK);
	put_session(f, 4, 1, 6, KV_OK);
	ASSERT_EQ(OPS(f)->set_applied(S(f), 3), 0);
	commit_sync(f);
}

static void check_base(struct fixture *f)
{
	struct store_meta m;
	ASSERT_EQ(OPS(f)->meta_get(S(f), &m), 0);
	ASSERT_U64_EQ(m.cluster_id, 77);
	ASSERT_U64_EQ(m.hard_state.term, 2);
	ASSERT_U64_EQ(m.hard_state.commit, 3);
	ASSERT_U64_EQ(m.snapshot_index, 2);
	ASSERT_U64_EQ(m.applied_index, 3);
	check_bounds(f, 3, 8);
	for (uint64_t i = 3; i <= 8; i++)
		check_entry(f, i, 2);
	check_val(f, "x", "10");
	check_val(f, "y", "20");
	check_val(f, "z", NULL);
	struct kv_session se;
	uint64_t count;
	ASSERT_EQ(OPS(f)->session_count(S(f), &count), 0);
	ASSERT_U64_EQ(count, 2);
	ASSERT_EQ(OPS(f)->session_get(S(f), 3, &se), 0);
	ASSERT_U64_EQ(se.seq, 4);
	ASSERT_EQ(OPS(f)->session_oldest(S(f), &se), 0);
	ASSERT_U64_EQ(se.client_id, 3);
}

/* Change everything in the open batch; reads see the batch's own writes. */
static void change_all(struct fixture *f)
{
	struct membership mb = one_member(2);
	struct raft_hard_state hs = {.term = 3, .vote = 2, .commit = 5};
	ASSERT_EQ(OPS(f)->set_ids(S(f), 88, 2), 0);
	ASSERT_EQ(OPS(f)->set_hard_state(S(f), &hs), 0);
	append_range(f, 6, 10, 3);
	ASSERT_EQ(OPS(f)->log_truncate(S(f), 10), 0);
	ASSERT_EQ(OPS(f)->log_compact(S(f), 4, 2, &mb), 0);
	ASSERT_EQ(put_s(f, "x", "11"), 0);
	ASSERT_EQ(del_s(f, "y"), 0);
	ASSERT_EQ(put_s(f, "z", "30"), 0);
	ASSERT_EQ(OPS(f)->session_del(S(f), 3), 0);
	put_session(f, 4, 2, 9, KV_OK);
	put_session(f, 6, 1, 1, KV_OK);
	ASSERT_EQ(OPS(f)->set_applied(S(f), 5), 0);

	struct store_meta m;
	ASSERT_EQ(OPS(f)->meta_get(S(f), &m), 0);
	ASSERT_U64_EQ(m.cluster_id, 88);
	ASSERT_U64_EQ(m.hard_state.term, 3);
	ASSERT_U64_EQ(m.snapshot_index, 4);
	ASSERT_U64_EQ(m.applied_index, 5);
	check_bounds(f, 5, 9);
	check_entry(f, 5, 2);
	check_entry(f, 6, 3);
	check_val(f, "x", "11");
	check_val(f, "y", NULL);
	check_val(f, "z", "30");
	struct kv_session se;
	uint64_t count;
	ASSERT_EQ(OPS(f)->session_count(S(f), &count), 0);
	ASSERT_U64_EQ(count, 2);
	ASSERT_EQ(OPS(f)->session_get(S(f), 3, &se), KEEL_ENOTFOUND);
	ASSERT_EQ(OPS(f)->session_oldest(S(f), &se), 0);
	ASSERT_U64_EQ(se.client_id, 6);
}

CONFORM(batch_abort_leaves_nothing)
{
	fill_base(f);
	begin(f);
	change_all(f);
	OPS(f)->write_abort(S(f));
	check_base(f);
	f->ops->reopen(f);
	check_base(f);
}

CONFORM(batch_commit_and_reopen)
{
	fill_base(f);
	check_base(f);
	f->ops->reopen(f);
	check_base(f);
	begin(f);
	change_all(f);
	commit_sync(f);
	f->ops->reopen(f);
	struct store_meta m;
	ASSERT_EQ(OPS(f)->meta_get(S(f), &m), 0);
	ASSERT_U64_EQ(m.cluster_id, 88);
	ASSERT_U64_EQ(m.applied_index, 5);
	check_bounds(f, 5, 9);
	check_entry(f, 9, 3);
	check_val(f, "x", "11");
	check_val(f, "y", NULL);
	struct kv_session se;
	ASSERT_EQ(OPS(f)->session_oldest(S(f), &se), 0);
	ASSERT_U64_EQ(se.client_id, 6);
}

CONFORM(misuse_is_an_error)
{
	uint8_t b[4];
	struct entry e = mk_entry(1, 1, b, 4);
	struct raft_hard_state hs = {1, 0, 0};
	struct membership mb = one_member(1);
	struct kv_session se = {1, 1, 1, KV_OK};
	/* writes outside a batch */
	ASSERT_EQ(OPS(f)->set_ids(S(f), 1, 1), KEEL_ESTATE);
	ASSERT_EQ(OPS(f)->set_hard_state(S(f), &hs), KEEL_ESTATE);
	ASSERT_EQ(OPS(f)->log_append(S(f), &e, 1), KEEL_ESTATE);
	ASSERT_EQ(OPS(f)->log_truncate(S(f), 1), KEEL_ESTATE);
	ASSERT_EQ(OPS(f)->log_compact(S(f), 0, 0, &mb), KEEL_ESTATE);
	ASSERT_EQ(put_s(f, "a", "b"), KEEL_ESTATE);
	ASSERT_EQ(del_s(f, "a"), KEEL_ESTATE);
	ASSERT_EQ(OPS(f)->session_put(S(f), &se), KEEL_ESTATE);
	ASSERT_EQ(OPS(f)->session_del(S(f), 1), KEEL_ESTATE);
	ASSERT_EQ(OPS(f)->set_applied(S(f), 1), KEEL_ESTATE);
	ASSERT_EQ(OPS(f)->write_commit(S(f)), KEEL_ESTATE);
	OPS(f)->write_abort(S(f)); /* no batch: nothing happens */
	/* nested begin, sync inside a batch */
	begin(f);
	ASSERT_EQ(OPS(f)->write_begin(S(f)), KEEL_ESTATE);
	ASSERT_EQ(OPS(f)->sync(S(f)), KEEL_ESTATE);
	ASSERT_EQ(put_s(f, "a", "b"), 0);
	commit(f);
	ASSERT_EQ(OPS(f)->write_commit(S(f)), KEEL_ESTATE);
	ASSERT_EQ(OPS(f)->sync(S(f)), 0);
	check_val(f, "a", "b");
	/* bad membership */
	mb.members[0].role = 42;
	begin(f);
	ASSERT_EQ(OPS(f)->log_compact(S(f), 0, 0, &mb), KEEL_EINVAL);
	commit(f);
}

CONFORM(many_keys)
{
	char k[32], v[32];
	for (int b = 0; b < 10; b++) {
		begin(f);
		for (int i = b * 1000; i < (b + 1) * 1000; i++) {
			snprintf(k, sizeof(k), "key-%06d", i);
			snprintf(v, sizeof(v), "value-%d", i * 3);
			ASSERT_EQ(put_s(f, k, v), 0);
		}
		commit(f);
	}
	begin(f);
	for (int i = 0; i < 10000; i += 2) {
		snprintf(k, sizeof(k), "key-%06d", i);
		ASSERT_EQ(del_s(f, k), 0);
	}
	commit_sync(f);
	f->ops->reopen(f);
	for (int i = 0; i < 10000; i++) {
		snprintf(k, sizeof(k), "key-%06d", i);
		snprintf(v, sizeof(v), "value-%d", i * 3);
		check_val(f, k, i % 2 ? v : NULL);
	}
}

/* Read a whole snapshot: kv pairs as "key=value" lines in the order given,
 * then sessions as "#id:seq". Checks kv precede sessions. */
static int snap_dump(struct fixture *f, char *out, size_t cap)
{
	struct store_item it;
	int rc, n = 0;
	size_t used = 0;
	bool sessions = false;
	out[0] = 0;
	while ((rc = OPS(f)->snap_next(S(f), &it)) == 1) {
		if (it.kind == STORE_ITEM_SESSION) {
			sessions = true;
			used += (size_t)snprintf(out + used, cap - used, "#%llu:%llu\n",
						 (unsigned long long)it.session.client_id,
						 (unsigned long long)it.session.seq);
		} else {
			ASSERT_EQ(it.kind, STORE_ITEM_KV);
			ASSERT_FALSE(sessions);
			used += (size_t)snprintf(out + used, cap - used, "%.*s=%.*s\n",
						 (int)(it.key_bytes > 20 ? 20 : it.key_bytes),
						 (const char *)it.key, (int)it.val_bytes,
						 (const char *)it.val);
		}
		ASSERT_TRUE(used < cap);
		n++;
	}
	ASSERT_EQ(rc, 0);
	ASSERT_EQ(OPS(f)->snap_next(S(f), &it), 0); /* stays at the end */
	return n;
}

CONFORM(snapshot_reads_one_state_while_writes_go_on)
{
	fill_base(f);
	begin(f);
	ASSERT_EQ(put_s(f, "a", "1"), 0);
	struct store_meta m;
	ASSERT_EQ(OPS(f)->snap_begin(S(f), &m), KEEL_ESTATE); /* batch open */
	commit(f);
	ASSERT_EQ(OPS(f)->snap_begin(S(f), &m), 0);
	ASSERT_U64_EQ(m.applied_index, 3);
	ASSERT_EQ(OPS(f)->snap_begin(S(f), &m), KEEL_ESTATE); /* one at a time */
	/* writes after the snapshot began do not show in it */
	begin(f);
	change_all(f);
	ASSERT_EQ(OPS(f)->state_clear(S(f)), 0);
	commit_sync(f);
	char dump[4096];
	ASSERT_EQ(snap_dump(f, dump, sizeof(dump)), 5);
	ASSERT_STR_EQ(dump, "a=1\nx=10\ny=20\n#3:4\n#4:1\n");
	OPS(f)->snap_end(S(f));
	struct store_item it;
	ASSERT_EQ(OPS(f)->snap_next(S(f), &it), KEEL_ESTATE);
	/* a new one sees the new state */
	ASSERT_EQ(OPS(f)->snap_begin(S(f), &m), 0);
	ASSERT_U64_EQ(m.applied_index, 5);
	ASSERT_EQ(snap_dump(f, dump, sizeof(dump)), 0);
	OPS(f)->snap_end(S(f));
	OPS(f)->snap_end(S(f)); /* harmless */
}

CONFORM(snapshot_order_is_by_key_then_client)
{
	uint8_t longkey[600];
	memset(longkey, 'm', sizeof(longkey));
	begin(f);
	ASSERT_EQ(put_s(f, "b", "2"), 0);
	ASSERT_EQ(put_s(f, "ab", "3"), 0);
	ASSERT_EQ(put_s(f, "a", "1"), 0);
	ASSERT_EQ(OPS(f)->kv_put(S(f), longkey, sizeof(longkey),
				 (const uint8_t *)"L", 1), 0);
	put_session(f, 9, 1, 1, KV_OK);
	put_session(f, 2, 5, 1, KV_OK);
	commit(f);
	struct store_meta m;
	ASSERT_EQ(OPS(f)->snap_begin(S(f), &m), 0);
	char dump[4096];
	ASSERT_EQ(snap_dump(f, dump, sizeof(dump)), 6);
	/* short keys in byte order; where a long key goes is the store's
	 * business, but it is there exactly once */
	char *l = strstr(dump, "mmmmmmmmmmmmmmmmmmmm=L\n");
	ASSERT_TRUE(l != NULL);
	memmove(l, l + 23, strlen(l + 23) + 1);
	ASSERT_STR_EQ(dump, "a=1\nab=3\nb=2\n#2:5\n#9:1\n");
	OPS(f)->snap_end(S(f));
}

CONFORM(state_clear_in_a_batch)
{
	fill_base(f);
	begin(f);
	ASSERT_EQ(OPS(f)->state_clear(S(f)), 0);
	check_val(f, "x", NULL);
	uint64_t count;
	struct kv_session se;
	ASSERT_EQ(OPS(f)->session_count(S(f), &count), 0);
	ASSERT_U64_EQ(count, 0);
	ASSERT_EQ(OPS(f)->session_oldest(S(f), &se), KEEL_ENOTFOUND);
	ASSERT_EQ(put_s(f, "n", "new"), 0);
	put_session(f, 8, 1, 9, KV_OK);
	OPS(f)->write_abort(S(f));
	check_base(f); /* abort brings everything back */
	begin(f);
	ASSERT_EQ(OPS(f)->state_clear(S(f)), 0);
	ASSERT_EQ(put_s(f, "n", "new"), 0);
	put_session(f, 8, 1, 9, KV_OK);
	ASSERT_EQ(OPS(f)->set_applied(S(f), 9), 0);
	commit_sync(f);
	f->ops->reopen(f);
	check_val(f, "x", NULL);
	check_val(f, "n", "new");
	ASSERT_EQ(OPS(f)->session_oldest(S(f), &se), 0);
	ASSERT_U64_EQ(se.client_id, 8);
	ASSERT_EQ(OPS(f)->session_count(S(f), &count), 0);
	ASSERT_U64_EQ(count, 1);
	check_bounds(f, 3, 8); /* the log and meta are untouched */
	ASSERT_EQ(OPS(f)->state_clear(S(f)), KEEL_ESTATE);
}

/* ---- staging an incoming snapshot (stage_*) ------------------------------ */

static int stage_kv(struct fixture *f, const uint8_t *k, uint32_t kb,
		    const uint8_t *v, uint32_t vb)
{
	struct store_item it = {.kind = STORE_ITEM_KV, .key = k, .key_bytes = kb,
				.val = v, .val_bytes = vb};
	return OPS(f)->stage_put(S(f), &it);
}

static int stage_s(struct fixture *f, const char *k, const char *v)
{
	return stage_kv(f, (const uint8_t *)k, (uint32_t)strlen(k),
			(const uint8_t *)v, (uint32_t)strlen(v));
}

static int stage_session(struct fixture *f, uint64_t id, uint64_t seq,
			 uint64_t last_index)
{
	struct store_item it = {.kind = STORE_ITEM_SESSION,
				.session = {id, seq, last_index, KV_OK}};
	return OPS(f)->stage_put(S(f), &it);
}

static uint64_t stage_count(struct fixture *f)
{
	uint64_t n = ~0ull;
	ASSERT_EQ(OPS(f)->stage_count(S(f), &n), 0);
	return n;
}

static uint8_t big_key[KEEL_KEY_BYTES_MAX];
static uint8_t big_val[KEEL_VALUE_BYTES_MAX];

/* Stage the "new" state: n, a long key, the largest key and value, an empty
 * value, a key and a session staged twice (the later wins). 8 puts. */
static void stage_new(struct fixture *f)
{
	for (size_t i = 0; i < sizeof(big_key); i++)
		big_key[i] = (uint8_t)('k' + i % 7);
	for (size_t i = 0; i < sizeof(big_val); i++)
		big_val[i] = (uint8_t)(i * 7 + 1);
	ASSERT_EQ(stage_s(f, "n", "first"), 0);
	ASSERT_EQ(stage_kv(f, big_key, 600, (const uint8_t *)"L", 1), 0);
	ASSERT_EQ(stage_kv(f, big_key, sizeof(big_key), big_val,
			   sizeof(big_val)), 0);
	ASSERT_EQ(stage_kv(f, (const uint8_t *)"e", 1, NULL, 0), 0);
	ASSERT_EQ(stage_session(f, 9, 1, 40), 0);
	ASSERT_EQ(stage_session(f, 8, 3, 41), 0);
	ASSERT_EQ(stage_s(f, "n", "new"), 0);
	ASSERT_EQ(stage_session(f, 9, 2, 42), 0);
}

/* The state stage_new leads to, once installed. */
static void check_new(struct fixture *f)
{
	check_val(f, "x", NULL);
	check_val(f, "y", NULL);
	check_val(f, "n", "new");
	check_val(f, "e", "");
	const uint8_t *v;
	uint32_t vb;
	ASSERT_EQ(OPS(f)->kv_get(S(f), big_key, 600, &v, &vb), 0);
	ASSERT_EQ(vb, 1);
	ASSERT_EQ(OPS(f)->kv_get(S(f), big_key, sizeof(big_key), &v, &vb), 0);
	ASSERT_EQ(vb, sizeof(big_val));
	ASSERT_MEM_EQ(v, big_val, sizeof(big_val));
	struct kv_session se;
	uint64_t count;
	ASSERT_EQ(OPS(f)->session_count(S(f), &count), 0);
	ASSERT_U64_EQ(count, 2);
	ASSERT_EQ(OPS(f)->session_get(S(f), 3, &se), KEEL_ENOTFOUND);
	ASSERT_EQ(OPS(f)->session_get(S(f), 9, &se), 0);
	ASSERT_U64_EQ(se.seq, 2);
	ASSERT_U64_EQ(se.last_index, 42);
	ASSERT_EQ(OPS(f)->session_oldest(S(f), &se), 0);
	ASSERT_U64_EQ(se.client_id, 8);
}

/* Outside a batch: a snapshot reads exactly the installed items. */
static void check_new_snapshot(struct fixture *f)
{
	struct store_meta m;
	char dump[4096];
	ASSERT_EQ(OPS(f)->snap_begin(S(f), &m), 0);
	ASSERT_EQ(snap_dump(f, dump, sizeof(dump)), 6);
	OPS(f)->snap_end(S(f));
	ASSERT_TRUE(strncmp(dump, "e=\n", 3) == 0);
	ASSERT_TRUE(strstr(dump, "\nn=new\n") != NULL);
	ASSERT_TRUE(strstr(dump, "#8:3\n#9:2\n") != NULL);
}

CONFORM(stage_is_invisible_until_installed)
{
	fill_base(f);
	ASSERT_U64_EQ(stage_count(f), 0);
	begin(f);
	ASSERT_EQ(OPS(f)->stage_clear(S(f)), 0);
	stage_new(f);
	ASSERT_U64_EQ(stage_count(f), 8);
	check_base(f); /* staged items show nowhere, even in the batch */
	commit_sync(f);
	check_base(f);
	f->ops->reopen(f); /* staged items are durable like any write */
	check_base(f);
	ASSERT_U64_EQ(stage_count(f), 8);
	struct store_meta m;
	ASSERT_EQ(OPS(f)->snap_begin(S(f), &m), 0);
	char dump[4096];
	ASSERT_EQ(snap_dump(f, dump, sizeof(dump)), 4); /* x, y, #3, #4 */
	OPS(f)->snap_end(S(f));
}

CONFORM(stage_install_switches_in_one_batch)
{
	fill_base(f);
	begin(f);
	ASSERT_EQ(OPS(f)->stage_clear(S(f)), 0);
	ASSERT_EQ(stage_s(f, "n", "first"), 0);
	commit_sync(f);
	f->ops->reopen(f);
	begin(f); /* a second chunk, a later batch */
	ASSERT_EQ(OPS(f)->stage_clear(S(f)), 0); /* offset 0 again */
	ASSERT_U64_EQ(stage_count(f), 0);
	stage_new(f);
	commit_sync(f);
	/* the switch, aborted: nothing changes */
	begin(f);
	ASSERT_EQ(OPS(f)->stage_install(S(f)), 0);
	check_new(f);
	ASSERT_U64_EQ(stage_count(f), 0);
	OPS(f)->write_abort(S(f));
	check_base(f);
	ASSERT_U64_EQ(stage_count(f), 8);
	/* the switch with its log cut and meta */
	struct membership mb = one_member(5);
	struct raft_hard_state hs = {.term = 4, .vote = 1, .commit = 50};
	begin(f);
	ASSERT_EQ(OPS(f)->stage_install(S(f)), 0);
	ASSERT_EQ(OPS(f)->log_compact(S(f), 50, 4, &mb), 0); /* beyond last */
	ASSERT_EQ(OPS(f)->set_applied(S(f), 50), 0);
	ASSERT_EQ(OPS(f)->set_hard_state(S(f), &hs), 0);
	commit_sync(f);
	for (int round = 0; round < 2; round++) {
		check_new(f);
		check_new_snapshot(f);
		ASSERT_U64_EQ(stage_count(f), 0);
		check_bounds(f, 51, 50);
		struct store_meta m;
		ASSERT_EQ(OPS(f)->meta_get(S(f), &m), 0);
		ASSERT_U64_EQ(m.applied_index, 50);
		ASSERT_U64_EQ(m.snapshot_index, 50);
		ASSERT_U64_EQ(m.snapshot_term, 4);
		ASSERT_U64_EQ(m.hard_state.commit, 50);
		ASSERT_MEM_EQ(&m.snapshot_membership, &mb, sizeof(mb));
		f->ops->reopen(f);
	}
	/* the log goes on from there, across a reopen */
	begin(f);
	append_range(f, 51, 53, 4);
	commit_sync(f);
	f->ops->reopen(f);
	check_bounds(f, 51, 53);
	check_entry(f, 51, 4);
	/* installing nothing empties kv and sessions */
	begin(f);
	ASSERT_EQ(OPS(f)->stage_install(S(f)), 0);
	commit_sync(f);
	f->ops->reopen(f);
	check_val(f, "n", NULL);
	uint64_t count;
	ASSERT_EQ(OPS(f)->session_count(S(f), &count), 0);
	ASSERT_U64_EQ(count, 0);
}

CONFORM(stage_put_checks_items)
{
	struct store_item it = {.kind = STORE_ITEM_KV, .key = (const uint8_t *)"a",
				.key_bytes = 1};
	ASSERT_EQ(OPS(f)->stage_put(S(f), &it), KEEL_ESTATE); /* no batch */
	ASSERT_EQ(OPS(f)->stage_clear(S(f)), KEEL_ESTATE);
	ASSERT_EQ(OPS(f)->stage_install(S(f)), KEEL_ESTATE);
	begin(f);
	ASSERT_EQ(OPS(f)->stage_put(S(f), &it), 0);
	struct store_item bad = it;
	bad.kind = 0;
	ASSERT_EQ(OPS(f)->stage_put(S(f), &bad), KEEL_EINVAL);
	bad.kind = STORE_ITEM_SESSION + 1;
	ASSERT_EQ(OPS(f)->stage_put(S(f), &bad), KEEL_EINVAL);
	bad = it;
	bad.key_bytes = 0;
	ASSERT_EQ(OPS(f)->stage_put(S(f), &bad), KEEL_EINVAL);
	bad.key_bytes = KEEL_KEY_BYTES_MAX + 1;
	bad.key = big_key;
	ASSERT_EQ(OPS(f)->stage_put(S(f), &bad), KEEL_EINVAL);
	bad = it;
	bad.val_bytes = KEEL_VALUE_BYTES_MAX + 1;
	bad.val = big_val;
	ASSERT_EQ(OPS(f)->stage_put(S(f), &bad), KEEL_EINVAL);
	bad.val = NULL;
	bad.val_bytes = 1;
	ASSERT_EQ(OPS(f)->stage_put(S(f), &bad), KEEL_EINVAL);
	bad = (struct store_item){.kind = STORE_ITEM_SESSION,
				  .session = {0, 1, 1, KV_OK}};
	ASSERT_EQ(OPS(f)->stage_put(S(f), &bad), KEEL_EINVAL);
	bad.session.client_id = 1;
	bad.session.status = KV_STALE_SEQ + 1;
	ASSERT_EQ(OPS(f)->stage_put(S(f), &bad), KEEL_EINVAL);
	/* refused items changed nothing and the batch is still good */
	ASSERT_U64_EQ(stage_count(f), 1);
	commit_sync(f);
	ASSERT_U64_EQ(stage_count(f), 1);
	/* an aborted batch stages nothing */
	begin(f);
	ASSERT_EQ(stage_s(f, "b", "2"), 0);
	ASSERT_EQ(stage_session(f, 5, 1, 1), 0);
	ASSERT_U64_EQ(stage_count(f), 3);
	OPS(f)->write_abort(S(f));
	ASSERT_U64_EQ(stage_count(f), 1);
	/* clear empties it */
	begin(f);
	ASSERT_EQ(OPS(f)->stage_clear(S(f)), 0);
	ASSERT_U64_EQ(stage_count(f), 0);
	commit_sync(f);
	f->ops->reopen(f);
	ASSERT_U64_EQ(stage_count(f), 0);
}

/* ---- the memory model's crash behaviour ---------------------------------- */

#define MEM_TEST(name)                                                   \
	static void body_##name(struct fixture *f);                      \
	TEST(mem_##name) { fixture_run(&mem_fixture, body_##name); }     \
	static void body_##name(struct fixture *f)

MEM_TEST(crash_drops_unsynced)
{
	fill_base(f);
	begin(f);
	change_all(f);
	commit(f); /* volatile */
	begin(f);
	ASSERT_EQ(put_s(f, "w", "1"), 0);
	/* left open: a crash aborts it */
	mem_store_crash(&f->mem, 0);
	check_base(f);
	check_val(f, "w", NULL);
	ASSERT_EQ(f->mem.stats.crashes, 1);
}

/* An install as a driver does it: two chunks in their own batches, then
 * the switch. Runs the first `upto` steps; returns the step count. */
static int install_steps(struct fixture *f, int upto)
{
	struct membership mb = one_member(5);
	struct raft_hard_state hs = {.term = 4, .vote = 1, .commit = 50};
	int step = 0;
#define STEP(x) do { if (step++ < upto) { x; } } while (0)
	STEP(begin(f));
	STEP(ASSERT_EQ(OPS(f)->stage_clear(S(f)), 0));
	STEP(ASSERT_EQ(stage_s(f, "n", "first"), 0));
	STEP(ASSERT_EQ(stage_session(f, 9, 1, 40), 0));
	STEP(commit(f));
	STEP(ASSERT_EQ(OPS(f)->sync(S(f)), 0));
	STEP(begin(f));
	STEP(stage_new(f));
	STEP(commit(f));
	STEP(begin(f));
	STEP(ASSERT_EQ(OPS(f)->stage_install(S(f)), 0));
	STEP(ASSERT_EQ(OPS(f)->log_compact(S(f), 50, 4, &mb), 0));
	STEP(ASSERT_EQ(OPS(f)->set_applied(S(f), 50), 0));
	STEP(ASSERT_EQ(OPS(f)->set_hard_state(S(f), &hs), 0));
	STEP(commit(f));
	STEP(ASSERT_EQ(OPS(f)->sync(S(f)), 0));
#undef STEP
	return step;
}

/* After a crash the store holds exactly the old state or the new one. */
static bool crashed_state_is_new(struct fixture *f, uint64_t old_digest,
				 uint64_t new_digest)
{
	struct store_meta m;
	ASSERT_EQ(OPS(f)->meta_get(S(f), &m), 0);
	uint64_t d = mem_store_digest(&f->mem);
	if (m.applied_index == 50) {
		ASSERT_U64_EQ(d, new_digest);
		check_new(f);
		check_bounds(f, 51, 50);
		ASSERT_U64_EQ(m.hard_state.commit, 50);
		return true;
	}
	ASSERT_U64_EQ(d, old_digest);
	check_base(f);
	return false;
}

MEM_TEST(crash_at_every_point_of_an_install)
{
	fill_base(f);
	uint64_t old_digest = mem_store_digest(&f->mem);
	int steps = install_steps(f, 1 << 30);
	uint64_t new_digest = mem_store_digest(&f->mem);
	ASSERT_NE(old_digest, new_digest);
	for (int upto = 0; upto <= steps; upto++) {
		/* tear 0 drops every unsynced batch; the others keep a prefix */
		for (uint64_t tear = 0; tear < 4; tear++) {
			mem_store_close(&f->mem);
			mem_open(f);
			fill_base(f);
			install_steps(f, upto);
			mem_store_crash(&f->mem, tear);
			bool is_new = crashed_state_is_new(f, old_digest, new_digest);
			if (tear == 0)
				ASSERT_EQ(is_new, upto == steps);
			/* the restarted driver clears the staging area */
			begin(f);
			ASSERT_EQ(OPS(f)->stage_clear(S(f)), 0);
			commit_sync(f);
			ASSERT_U64_EQ(stage_count(f), 0);
			ASSERT_EQ(crashed_state_is_new(f, old_digest, new_digest), is_new);
		}
	}
}

MEM_TEST(sync_upto_makes_a_prefix_durable)
{
	uint64_t ids[3];
	for (int i = 0; i < 3; i++) {
		char k[2] = {(char)('a' + i), 0};
		begin(f);
		ASSERT_EQ(put_s(f, k, "v"), 0);
		commit(f);
		ids[i] = mem_store_commit_id(&f->mem);
	}
	ASSERT_EQ(mem_store_sync_upto(&f->mem, ids[1]), 0);
	mem_store_crash(&f->mem, 0);
	check_val(f, "a", "v");
	check_val(f, "b", "v");
	check_val(f, "c", NULL);
}

MEM_TEST(tear_is_caught_by_the_checksum)
{
	begin(f);
	append_range(f, 1, 3, 1);
	commit_sync(f);
	begin(f);
	append_range(f, 4, 6, 1);
	ASSERT_EQ(put_s(f, "k", "v"), 0);
	commit(f);
	mem_store_crash(&f->mem, 12345u << 16 | 1);
	ASSERT_EQ(f->mem.stats.tears, 1);
	check_bounds(f, 1, 6);
	check_entry(f, 5, 1);
	struct entry e;
	ASSERT_EQ(OPS(f)->log_get(S(f), 6, &e), KEEL_ECORRUPT);
	ASSERT_EQ(f->mem.stats.corrupt_reads, 1);
	/* recovery drops the torn tail (or overwrites it) */
	begin(f);
	ASSERT_EQ(OPS(f)->log_truncate(S(f), 6), 0);
	commit_sync(f);
	check_bounds(f, 1, 5);
	begin(f);
	append_range(f, 6, 6, 2);
	commit_sync(f);
	check_entry(f, 6, 2);
}

MEM_TEST(tear_keeps_a_prefix_of_volatile_batches)
{
	begin(f);
	append_range(f, 1, 2, 1);
	commit_sync(f);
	for (uint64_t i = 3; i <= 6; i++) {
		begin(f);
		append_range(f, i, i, 1);
		commit(f);
	}
	/* 4 volatile batches; tear % 4 == 1 keeps two, tears the second */
	mem_store_crash(&f->mem, 5);
	check_bounds(f, 1, 4);
	check_entry(f, 3, 1);
	struct entry e;
	ASSERT_EQ(OPS(f)->log_get(S(f), 4, &e), KEEL_ECORRUPT);
	/* everything left is durable: another crash changes nothing */
	mem_store_crash(&f->mem, 0);
	check_bounds(f, 1, 4);
}

MEM_TEST(corruption_is_caught)
{
	begin(f);
	append_range(f, 1, 5, 1);
	commit_sync(f);
	begin(f);
	append_range(f, 6, 6, 1);
	commit(f);
	ASSERT_EQ(mem_store_corrupt(&f->mem, 6, 3), KEEL_ENOTFOUND); /* volatile */
	ASSERT_EQ(mem_store_corrupt(&f->mem, 9, 3), KEEL_ENOTFOUND);
	for (uint64_t where = 0; where < 200; where += 7) {
		ASSERT_EQ(mem_store_corrupt(&f->mem, 3, where << 32 | where), 0);
		struct entry e;
		ASSERT_EQ(OPS(f)->log_get(S(f), 3, &e), KEEL_ECORRUPT);
		ASSERT_EQ(mem_store_corrupt(&f->mem, 3, where << 32 | where), 0);
		check_entry(f, 3, 1); /* flipped back */
	}
	check_entry(f, 2, 1);
	check_entry(f, 4, 1);
}

MEM_TEST(digest_follows_state)
{
	struct mem_store other;
	struct store os;
	mem_store_init(&other);
	mem_store_bind(&other, &os);
	ASSERT_U64_EQ(mem_store_digest(&f->mem), mem_store_digest(&other));
	begin(f);
	ASSERT_EQ(put_s(f, "a", "1"), 0);
	ASSERT_EQ(put_s(f, "b", "2"), 0);
	commit(f);
	ASSERT_NE(mem_store_digest(&f->mem), mem_store_digest(&other));
	ASSERT_EQ(os.ops->write_begin(os.impl), 0);
	ASSERT_EQ(os.ops->kv_put(os.impl, (const uint8_t *)"b", 1,
				 (const uint8_t *)"2", 1), 0);
	ASSERT_EQ(os.ops->kv_put(os.impl, (const uint8_t *)"a", 1,
				 (const uint8_t *)"1", 1), 0);
	ASSERT_EQ(os.ops->write_commit(os.impl), 0);
	ASSERT_U64_EQ(mem_store_digest(&f->mem), mem_store_digest(&other));
	ASSERT_EQ(os.ops->write_begin(os.impl), 0);
	ASSERT_EQ(os.ops->kv_put(os.impl, (const uint8_t *)"a", 1,
				 (const uint8_t *)"2", 1), 0);
	ASSERT_EQ(os.ops->write_commit(os.impl), 0);
	ASSERT_NE(mem_store_digest(&f->mem), mem_store_digest(&other));
	mem_store_close(&other);
}

/* ---- randomized: both stores and a durable-only reference agree ----------- */

enum rop_kind {
	ROP_PUT, ROP_DEL, ROP_SESSION_PUT, ROP_SESSION_DEL, ROP_APPEND,
	ROP_TRUNCATE, ROP_COMPACT, ROP_HARD, ROP_APPLIED, ROP_STAGE_PUT,
	ROP_KINDS, ROP_CLEAR, ROP_STAGE_CLEAR, ROP_STAGE_INSTALL
};

/* One write, replayable on any store. */
struct rop {
	uint32_t kind;
	uint32_t key, val, count;
	uint64_t a, b;
};

#define RKEYS 8
#define RSESSIONS 6
#define RBATCH_OPS_MAX 8

static uint8_t rkey[RKEYS][700];
static uint32_t rkey_bytes[RKEYS];
static uint8_t rval[512];

static void rkeys_init(void)
{
	for (uint32_t i = 0; i < RKEYS; i++) {
		/* six short keys, two long ones sharing a 599-byte prefix */
		rkey_bytes[i] = i < 6 ? 1 + i : 600;
		memset(rkey[i], 'q', sizeof(rkey[i]));
		rkey[i][rkey_bytes[i] - 1] = (uint8_t)('0' + i);
	}
	for (size_t i = 0; i < sizeof(rval); i++)
		rval[i] = (uint8_t)(i * 13 + 5);
}

static uint64_t rnd(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static int rop_apply(struct store *st, const struct rop *o)
{
	void *s = st->impl;
	switch (o->kind) {
	case ROP_PUT:
		return st->ops->kv_put(s, rkey[o->key], rkey_bytes[o->key],
				       rval + o->val, o->val * 3 % 200);
	case ROP_DEL:
		return st->ops->kv_del(s, rkey[o->key], rkey_bytes[o->key]);
	case ROP_SESSION_PUT: {
		struct kv_session se = {o->a, o->b, o->b * 7 % 23, o->val % 5};
		return st->ops->session_put(s, &se);
	}
	case ROP_SESSION_DEL:
		return st->ops->session_del(s, o->a);
	case ROP_APPEND: {
		struct entry e[4];
		for (uint32_t i = 0; i < o->count; i++)
			e[i] = (struct entry){.term = o->b, .index = o->a + i,
					      .type = ENTRY_COMMAND,
					      .data_bytes = (o->val + i) % 300,
					      .data = rval};
		return st->ops->log_append(s, e, o->count);
	}
	case ROP_TRUNCATE:
		return st->ops->log_truncate(s, o->a);
	case ROP_COMPACT: {
		struct membership mb = one_member(o->b);
		return st->ops->log_compact(s, o->a, o->b, &mb);
	}
	case ROP_HARD: {
		struct raft_hard_state hs = {o->a, o->b, o->a / 2};
		return st->ops->set_hard_state(s, &hs);
	}
	case ROP_APPLIED:
		return st->ops->set_applied(s, o->a);
	case ROP_CLEAR:
		return st->ops->state_clear(s);
	case ROP_STAGE_PUT: {
		struct store_item it = {.kind = STORE_ITEM_KV, .key = rkey[o->key],
					.key_bytes = rkey_bytes[o->key],
					.val = rval + o->val,
					.val_bytes = o->val * 5 % 200};
		if (o->b % 3 == 0)
			it = (struct store_item){.kind = STORE_ITEM_SESSION,
						 .session = {o->a, o->b, o->val, o->b % 5}};
		return st->ops->stage_put(s, &it);
	}
	case ROP_STAGE_CLEAR:
		return st->ops->stage_clear(s);
	case ROP_STAGE_INSTALL:
		return st->ops->stage_install(s);
	default:
		KEEL_UNREACHABLE();
	}
}

/* A random write that is mostly valid for a store with these bounds. */
static struct rop rop_gen(uint64_t *x, uint64_t first, uint64_t last)
{
	struct rop o = {.kind = (uint32_t)(rnd(x) % ROP_KINDS),
			.key = (uint32_t)(rnd(x) % RKEYS),
			.val = (uint32_t)(rnd(x) % 200),
			.count = 1 + (uint32_t)(rnd(x) % 4),
			.a = 1 + rnd(x) % RSESSIONS, .b = 1 + rnd(x) % 9};
	uint64_t span = last + 2 - first;
	switch (o.kind) {
	case ROP_APPEND:
	case ROP_TRUNCATE:
		o.a = first + rnd(x) % span; /* first .. last+1 */
		if (rnd(x) % 20 == 0)
			o.a = last + 3; /* invalid */
		break;
	case ROP_COMPACT:
		o.a = first - 1 + rnd(x) % (span / 2 + 1);
		if (rnd(x) % 10 == 0)
			o.kind = ROP_APPLIED; /* compaction stays rare */
		if (rnd(x) % 8 == 0)
			o.kind = ROP_CLEAR; /* so does clearing */
		if (rnd(x) % 6 == 0)
			o.kind = rnd(x) % 2 ? ROP_STAGE_CLEAR : ROP_STAGE_INSTALL;
		break;
	default:
		break;
	}
	return o;
}

static void same_session(const struct kv_session *a, const struct kv_session *b)
{
	ASSERT_U64_EQ(a->client_id, b->client_id);
	ASSERT_U64_EQ(a->seq, b->seq);
	ASSERT_U64_EQ(a->last_index, b->last_index);
	ASSERT_EQ(a->status, b->status);
}

/* Everything observable through the interface is the same. */
static void same_store(struct store *a, struct store *b)
{
	struct store_meta ma, mb;
	ASSERT_EQ(a->ops->meta_get(a->impl, &ma), 0);
	ASSERT_EQ(b->ops->meta_get(b->impl, &mb), 0);
	ASSERT_MEM_EQ(&ma, &mb, sizeof(ma));
	uint64_t fa, la, fb, lb;
	ASSERT_EQ(a->ops->log_bounds(a->impl, &fa, &la), 0);
	ASSERT_EQ(b->ops->log_bounds(b->impl, &fb, &lb), 0);
	ASSERT_U64_EQ(fa, fb);
	ASSERT_U64_EQ(la, lb);
	for (uint64_t i = fa; i <= la; i++) {
		struct entry ea, eb;
		ASSERT_EQ(a->ops->log_get(a->impl, i, &ea), 0);
		ASSERT_EQ(b->ops->log_get(b->impl, i, &eb), 0);
		ASSERT_U64_EQ(ea.term, eb.term);
		ASSERT_EQ(ea.data_bytes, eb.data_bytes);
		if (ea.data_bytes > 0)
			ASSERT_MEM_EQ(ea.data, eb.data, ea.data_bytes);
	}
	for (uint32_t k = 0; k < RKEYS; k++) {
		const uint8_t *va, *vb;
		uint32_t na, nb;
		int ra = a->ops->kv_get(a->impl, rkey[k], rkey_bytes[k], &va, &na);
		int rb = b->ops->kv_get(b->impl, rkey[k], rkey_bytes[k], &vb, &nb);
		ASSERT_EQ(ra, rb);
		if (ra == 0) {
			ASSERT_EQ(na, nb);
			ASSERT_TRUE(na == 0 || memcmp(va, vb, na) == 0);
		}
	}
	uint64_t ca, cb;
	ASSERT_EQ(a->ops->session_count(a->impl, &ca), 0);
	ASSERT_EQ(b->ops->session_count(b->impl, &cb), 0);
	ASSERT_U64_EQ(ca, cb);
	ASSERT_EQ(a->ops->stage_count(a->impl, &ca), 0);
	ASSERT_EQ(b->ops->stage_count(b->impl, &cb), 0);
	ASSERT_U64_EQ(ca, cb);
	struct kv_session sa, sb;
	int ra = a->ops->session_oldest(a->impl, &sa);
	ASSERT_EQ(ra, b->ops->session_oldest(b->impl, &sb));
	if (ra == 0)
		same_session(&sa, &sb);
	for (uint64_t id = 1; id <= RSESSIONS; id++) {
		ra = a->ops->session_get(a->impl, id, &sa);
		ASSERT_EQ(ra, b->ops->session_get(b->impl, id, &sb));
		if (ra == 0)
			same_session(&sa, &sb);
	}
}

/*
 * Random batches (committed, aborted, synced) go to the memory store and to
 * the LMDB store, which must answer every call alike; a third store gets
 * only the batches that were synced, and the memory store after a crash
 * must equal it.
 */
static void random_batches(const struct fixture_ops *lmdb_ops)
{
	rkeys_init();
	struct fixture mem = {.ops = &mem_fixture}, lm = {.ops = lmdb_ops};
	struct fixture ref = {.ops = &mem_fixture};
	mem_open(&mem);
	lmdb_open(&lm);
	mem_open(&ref);
	enum { BATCHES = 600, PENDING_MAX = 64 };
	static struct rop pending[PENDING_MAX][RBATCH_OPS_MAX];
	uint32_t pending_ops[PENDING_MAX], npending = 0;
	uint64_t x = 0x2545f4914f6cdd1dull;
	for (int b = 0; b < BATCHES; b++) {
		struct rop ops[RBATCH_OPS_MAX];
		uint32_t n = 1 + (uint32_t)(rnd(&x) % RBATCH_OPS_MAX);
		ASSERT_EQ(OPS(&mem)->write_begin(S(&mem)), 0);
		ASSERT_EQ(OPS(&lm)->write_begin(S(&lm)), 0);
		for (uint32_t i = 0; i < n; i++) {
			uint64_t first, last;
			ASSERT_EQ(OPS(&mem)->log_bounds(S(&mem), &first, &last), 0);
			ops[i] = rop_gen(&x, first, last);
			int rm = rop_apply(&mem.st, &ops[i]);
			int rl = rop_apply(&lm.st, &ops[i]);
			ASSERT_EQ(rm, rl);
			ASSERT_TRUE(rm == 0 || rm == KEEL_EINVAL ||
				    rm == KEEL_ENOTFOUND);
		}
		same_store(&mem.st, &lm.st); /* reads see the batch */
		if (rnd(&x) % 5 == 0) {
			OPS(&mem)->write_abort(S(&mem));
			OPS(&lm)->write_abort(S(&lm));
		} else {
			ASSERT_EQ(OPS(&mem)->write_commit(S(&mem)), 0);
			ASSERT_EQ(OPS(&lm)->write_commit(S(&lm)), 0);
			ASSERT_TRUE(npending < PENDING_MAX);
			memcpy(pending[npending], ops, sizeof(ops));
			pending_ops[npending++] = n;
		}
		same_store(&mem.st, &lm.st);
		uint64_t r = rnd(&x) % 30;
		if (r < 3 || npending == PENDING_MAX) { /* sync */
			ASSERT_EQ(OPS(&mem)->sync(S(&mem)), 0);
			ASSERT_EQ(OPS(&lm)->sync(S(&lm)), 0);
			for (uint32_t p = 0; p < npending; p++) {
				ASSERT_EQ(OPS(&ref)->write_begin(S(&ref)), 0);
				for (uint32_t i = 0; i < pending_ops[p]; i++)
					(void)rop_apply(&ref.st, &pending[p][i]);
				ASSERT_EQ(OPS(&ref)->write_commit(S(&ref)), 0);
			}
			npending = 0;
		} else if (r == 3) { /* crash: back to what was synced */
			mem_store_crash(&mem.mem, 0);
			same_store(&mem.st, &ref.st);
			/* LMDB keeps committed batches; bring it back in line */
			lmdb_close(&lm);
			lmdb_open(&lm);
			mem_close(&ref);
			mem_open(&ref);
			mem_store_close(&mem.mem);
			mem_open(&mem);
			npending = 0;
		} else if (r == 4) {
			lmdb_reopen(&lm);
			same_store(&mem.st, &lm.st);
		}
	}
	mem_close(&mem);
	mem_close(&ref);
	lmdb_close(&lm);
}

TEST(random_batches_agree_across_stores_and_crashes)
{
	random_batches(&lmdb_fixture);
}

TEST(random_batches_agree_across_stores_and_crashes_writemap)
{
	random_batches(&lmdb_wm_fixture);
}
