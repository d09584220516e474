/*
 * test_snapshot.c: core/snapshot.c over both stores: a snapshot streamed
 * from a store through snap_reader, chunks, staging and install into a
 * second store of each kind ends in an equal state; every rule of the chunk
 * decoder; resends; a bad chunk stages nothing; the log cut of an install;
 * and crashes (memory store) at every store call of a stream and install,
 * after which the store holds exactly the old state or the new one; an LMDB
 * map too small for an install fails it, keeps the old state and the store.
 */
#include "harness.h"

#include <stdlib.h>

#include "../core/err.h"
#include "../core/snapshot.h"
#include "store_fixture.h"

/* ---- stores ---------------------------------------------------------------- */

static void open_mem(struct fixture *f)
{
	memset(f, 0, sizeof(*f));
	ASSERT_EQ(mem_store_init(&f->mem), 0);
	mem_store_bind(&f->mem, &f->st);
	f->open = true;
}

static void open_lmdb(struct fixture *f)
{
	memset(f, 0, sizeof(*f));
	fixture_tmpdir(f);
	struct lmdb_store_config cfg = {.dir = f->dir, .create = true};
	ASSERT_EQ(lmdb_store_open(&f->lmdb, &cfg), 0);
	lmdb_store_bind(&f->lmdb, &f->st);
	f->open = true;
}

static void open_kind(struct fixture *f, bool lmdb)
{
	if (lmdb)
		open_lmdb(f);
	else
		open_mem(f);
}

static void close_fx(struct fixture *f)
{
	if (!f->open)
		return;
	if (f->dir[0] != '\0') {
		lmdb_store_close(&f->lmdb);
		fixture_rmdir(f);
	} else {
		mem_store_close(&f->mem);
	}
	f->open = false;
}

/* Two stores at a time; a failed test leaves them for the next to close. */
static struct fixture src, dst;

static void reset(void)
{
	close_fx(&src);
	close_fx(&dst);
}

#define OPS(st) ((st)->ops)
#define IMPL(st) ((st)->impl)

static void begin(struct store *st)
{
	ASSERT_EQ(st->ops->write_begin(st->impl), 0);
}

static void commit_sync(struct store *st)
{
	ASSERT_EQ(st->ops->write_commit(st->impl), 0);
	ASSERT_EQ(st->ops->sync(st->impl), 0);
}

static void put(struct store *st, const void *k, uint32_t kb, const void *v,
		uint32_t vb)
{
	ASSERT_EQ(st->ops->kv_put(st->impl, k, kb, v, vb), 0);
}

static void put_session(struct store *st, uint64_t id, uint64_t seq,
			uint64_t last_index)
{
	struct kv_session se = {id, seq, last_index, (uint32_t)(id % 5)};
	ASSERT_EQ(st->ops->session_put(st->impl, &se), 0);
}

static struct membership members(void)
{
	struct membership m;
	memset(&m, 0, sizeof(m));
	m.member_count = 2;
	m.members[0] = (struct member){.id = 1, .role = MEMBER_VOTER};
	m.members[1] = (struct member){.id = 2, .role = MEMBER_LEARNER};
	strcpy(m.members[0].peer_addr, "127.0.0.1:7001");
	return m;
}

static void append(struct store *st, uint64_t lo, uint64_t hi, uint64_t term)
{
	for (uint64_t i = lo; i <= hi; i++) {
		struct entry e = {.term = term, .index = i, .type = ENTRY_NOOP};
		ASSERT_EQ(st->ops->log_append(st->impl, &e, 1), 0);
	}
}

static uint8_t big_key[KEEL_KEY_BYTES_MAX];
static uint8_t big_val[KEEL_VALUE_BYTES_MAX];

#define SRC_KEYS 300
#define SRC_SESSIONS 40
#define SRC_APPLIED 77

/* The state a snapshot carries: 300 keys with values of 0..1.9 KB, the
 * largest key with the largest value, a long key, an empty value, sessions;
 * applied index 77. About 7 chunks. */
static void fill_source(struct store *st)
{
	for (size_t i = 0; i < sizeof(big_key); i++)
		big_key[i] = (uint8_t)('a' + i % 26);
	for (size_t i = 0; i < sizeof(big_val); i++)
		big_val[i] = (uint8_t)(i * 13 + 7);
	begin(st);
	for (uint32_t i = 0; i < SRC_KEYS; i++) {
		char k[32];
		int kb = snprintf(k, sizeof(k), "key-%04u", i);
		put(st, k, (uint32_t)kb, big_val + i, (i * 37) % 1900);
	}
	put(st, big_key, sizeof(big_key), big_val, sizeof(big_val));
	put(st, big_key, 600, "long", 4);
	put(st, "empty", 5, NULL, 0);
	for (uint64_t id = 1; id <= SRC_SESSIONS; id++)
		put_session(st, id * 1000 + 1, id, id * 2);
	ASSERT_EQ(st->ops->set_applied(st->impl, SRC_APPLIED), 0);
	commit_sync(st);
}

/* A different "old" state for a destination: kv, sessions, log 1..5. */
static void fill_old(struct store *st)
{
	struct raft_hard_state hs = {.term = 2, .vote = 1, .commit = 4};
	begin(st);
	ASSERT_EQ(st->ops->set_ids(st->impl, 5, 2), 0);
	ASSERT_EQ(st->ops->set_hard_state(st->impl, &hs), 0);
	append(st, 1, 5, 2);
	put(st, "old", 3, "value", 5);
	put(st, "key-0001", 8, "stale", 5);
	put_session(st, 9, 9, 3);
	ASSERT_EQ(st->ops->set_applied(st->impl, 4), 0);
	commit_sync(st);
}

/* ---- streaming ----------------------------------------------------------- */

#define CHUNKS_MAX 64

/* One recorded stream: chunks as the follower's core hands them out. */
struct stream {
	uint32_t count;
	uint8_t *bytes[CHUNKS_MAX];
	struct raft_snapshot_chunk c[CHUNKS_MAX];
};

static struct stream rec;

static void stream_free(struct stream *s)
{
	for (uint32_t i = 0; i < s->count; i++)
		free(s->bytes[i]);
	memset(s, 0, sizeof(*s));
}

static int count_items(void *arg, const struct store_item *it)
{
	(void)it;
	(*(uint32_t *)arg)++;
	return 0;
}

/* Read the whole snapshot of st into s, checking every chunk (P1). */
static void record_stream(struct store *st, struct stream *s)
{
	stream_free(s);
	struct snap_reader sr;
	uint64_t last_index = 0;
	ASSERT_EQ(snap_reader_open(&sr, st, NULL, &last_index), 0);
	uint64_t offset = 0;
	bool done = false;
	while (!done) {
		const uint8_t *p;
		uint32_t n;
		ASSERT_TRUE(s->count < CHUNKS_MAX);
		ASSERT_EQ(snap_reader_chunk(&sr, offset, &p, &n, &done), 0);
		uint32_t items = 0;
		ASSERT_EQ(snap_chunk_decode(p, n, count_items, &items), 0);
		ASSERT_TRUE(n <= KEEL_SNAPSHOT_CHUNK_BYTES || items == 1);
		if (!done)
			ASSERT_GT(items, 0);
		s->bytes[s->count] = malloc(n + 1);
		memcpy(s->bytes[s->count], p, n);
		s->c[s->count] = (struct raft_snapshot_chunk){
			.last_index = last_index, .last_term = 3,
			.membership = members(), .offset = offset,
			.chunk_bytes = n, .chunk = s->bytes[s->count],
			.done = done};
		s->count++;
		offset += n;
	}
	snap_reader_close(&sr);
}

/* Stage every chunk of s into st and install the last. */
static int apply_stream(struct store *st, const struct stream *s)
{
	for (uint32_t i = 0; i < s->count; i++) {
		int rc = snap_stage_chunk(st, &s->c[i]);
		if (rc != 0)
			return rc;
	}
	return snap_install(st, &s->c[s->count - 1]);
}

/* a and b hold the same kv pairs and sessions. */
static void same_state(struct store *a, struct store *b)
{
	struct store_meta m;
	struct store_item it;
	uint64_t items = 0, other = 0;
	int rc;
	ASSERT_EQ(a->ops->snap_begin(a->impl, &m), 0);
	while ((rc = a->ops->snap_next(a->impl, &it)) == 1) {
		items++;
		if (it.kind == STORE_ITEM_SESSION) {
			struct kv_session se;
			ASSERT_EQ(b->ops->session_get(b->impl, it.session.client_id, &se), 0);
			ASSERT_U64_EQ(se.seq, it.session.seq);
			ASSERT_U64_EQ(se.last_index, it.session.last_index);
			ASSERT_EQ(se.status, it.session.status);
			continue;
		}
		const uint8_t *v;
		uint32_t vb;
		ASSERT_EQ(b->ops->kv_get(b->impl, it.key, it.key_bytes, &v, &vb), 0);
		ASSERT_EQ(vb, it.val_bytes);
		if (vb > 0)
			ASSERT_MEM_EQ(v, it.val, vb);
	}
	ASSERT_EQ(rc, 0);
	a->ops->snap_end(a->impl);
	ASSERT_EQ(b->ops->snap_begin(b->impl, &m), 0);
	while ((rc = b->ops->snap_next(b->impl, &it)) == 1)
		other++;
	ASSERT_EQ(rc, 0);
	b->ops->snap_end(b->impl);
	ASSERT_U64_EQ(items, other);
}

/* dst holds what the stream of a source filled by fill_source carries. */
static void check_installed(struct store *st)
{
	struct store_meta m;
	ASSERT_EQ(st->ops->meta_get(st->impl, &m), 0);
	ASSERT_U64_EQ(m.applied_index, SRC_APPLIED);
	ASSERT_U64_EQ(m.snapshot_index, SRC_APPLIED);
	ASSERT_U64_EQ(m.snapshot_term, 3);
	ASSERT_TRUE(m.hard_state.commit >= SRC_APPLIED);
	uint64_t n = 1;
	ASSERT_EQ(st->ops->stage_count(st->impl, &n), 0);
	ASSERT_U64_EQ(n, 0);
	const uint8_t *v;
	uint32_t vb;
	ASSERT_EQ(st->ops->kv_get(st->impl, (const uint8_t *)"old", 3, &v, &vb),
		  KEEL_ENOTFOUND);
}

TEST(round_trip_between_every_pair_of_stores)
{
	for (int from = 0; from < 2; from++) {
		for (int to = 0; to < 2; to++) {
			reset();
			open_kind(&src, from == 1);
			open_kind(&dst, to == 1);
			fill_source(&src.st);
			fill_old(&dst.st);
			record_stream(&src.st, &rec);
			ASSERT_GT(rec.count, 3);
			ASSERT_EQ(apply_stream(&dst.st, &rec), 0);
			same_state(&src.st, &dst.st);
			same_state(&dst.st, &src.st);
			check_installed(&dst.st);
			struct store_meta m;
			ASSERT_EQ(dst.st.ops->meta_get(dst.st.impl, &m), 0);
			ASSERT_U64_EQ(m.hard_state.term, 2); /* only commit moves */
			ASSERT_U64_EQ(m.hard_state.vote, 1);
			ASSERT_U64_EQ(m.hard_state.commit, SRC_APPLIED);
			/* durable: a restart finds it */
			if (to == 1) {
				lmdb_store_close(&dst.lmdb);
				struct lmdb_store_config cfg = {.dir = dst.dir};
				ASSERT_EQ(lmdb_store_open(&dst.lmdb, &cfg), 0);
			} else {
				mem_store_crash(&dst.mem, 0);
			}
			same_state(&src.st, &dst.st);
			check_installed(&dst.st);
		}
	}
	stream_free(&rec);
	reset();
}

TEST(empty_state_is_one_empty_chunk)
{
	reset();
	open_mem(&src);
	struct snap_reader sr;
	uint64_t last = 9;
	ASSERT_EQ(snap_reader_open(&sr, &src.st, NULL, &last), 0);
	ASSERT_U64_EQ(last, 0);
	const uint8_t *p;
	uint32_t n = 1;
	bool done = false;
	ASSERT_EQ(snap_reader_chunk(&sr, 0, &p, &n, &done), 0);
	ASSERT_EQ(n, 0);
	ASSERT_TRUE(done);
	ASSERT_EQ(snap_reader_chunk(&sr, 0, &p, &n, &done), 0); /* resend */
	ASSERT_EQ(snap_reader_chunk(&sr, 1, &p, &n, &done), KEEL_ERANGE);
	snap_reader_close(&sr);
	reset();
}

TEST(reader_resends_the_buffered_chunk_only)
{
	reset();
	open_lmdb(&src);
	fill_source(&src.st);
	struct snap_reader sr;
	uint64_t last;
	ASSERT_EQ(snap_reader_open(&sr, &src.st, NULL, &last), 0);
	ASSERT_U64_EQ(last, SRC_APPLIED);
	/* one stream per store at a time */
	struct snap_reader other;
	ASSERT_EQ(snap_reader_open(&other, &src.st, NULL, &last), KEEL_ESTATE);
	snap_reader_close(&other);
	const uint8_t *p, *q;
	uint32_t n, m;
	bool done;
	ASSERT_EQ(snap_reader_chunk(&sr, 5, &p, &n, &done), KEEL_ERANGE);
	ASSERT_EQ(snap_reader_chunk(&sr, 0, &p, &n, &done), 0);
	ASSERT_FALSE(done);
	uint8_t *copy = malloc(n);
	memcpy(copy, p, n);
	uint32_t first_bytes = n;
	/* writes after the open do not change what the stream reads */
	begin(&src.st);
	ASSERT_EQ(src.st.ops->state_clear(src.st.impl), 0);
	commit_sync(&src.st);
	ASSERT_EQ(snap_reader_chunk(&sr, 0, &q, &m, &done), 0); /* resend */
	ASSERT_EQ(m, first_bytes);
	ASSERT_MEM_EQ(q, copy, m);
	ASSERT_EQ(snap_reader_chunk(&sr, first_bytes + 1, &q, &m, &done),
		  KEEL_ERANGE); /* a future offset */
	ASSERT_EQ(snap_reader_chunk(&sr, first_bytes, &q, &m, &done), 0);
	ASSERT_GT(m, 0);
	ASSERT_EQ(snap_reader_chunk(&sr, 0, &q, &m, &done), KEEL_ERANGE); /* gone */
	uint64_t offset = first_bytes;
	while (!done) {
		ASSERT_EQ(snap_reader_chunk(&sr, offset, &q, &m, &done), 0);
		offset += m;
	}
	ASSERT_EQ(snap_reader_chunk(&sr, offset, &q, &m, &done), KEEL_ERANGE);
	snap_reader_close(&sr);
	snap_reader_close(&sr); /* safe twice */
	ASSERT_EQ(snap_reader_chunk(&sr, 0, &q, &m, &done), KEEL_ESTATE);
	/* the store's snapshot was released */
	ASSERT_EQ(snap_reader_open(&sr, &src.st, NULL, &last), 0);
	snap_reader_close(&sr);
	free(copy);
	reset();
}

/* ---- the chunk decoder's rules -------------------------------------------- */

static uint8_t chunk[2 * SNAP_ITEM_BYTES_MAX];

/* A kv item (key_bytes, val_bytes) at chunk[0..), then a session. Returns
 * the chunk's bytes; *kv_end is where the session starts. */
static uint32_t sample_chunk(uint32_t key_bytes, uint32_t val_bytes,
			     uint32_t *kv_end)
{
	struct store_item kv = {.kind = STORE_ITEM_KV, .key = big_key,
				.key_bytes = key_bytes, .val = big_val,
				.val_bytes = val_bytes};
	struct store_item se = {.kind = STORE_ITEM_SESSION,
				.session = {7, 3, 99, KV_CAS_FAILED}};
	int a = snap_item_encode(&kv, chunk, sizeof(chunk));
	ASSERT_GT(a, 0);
	int b = snap_item_encode(&se, chunk + a, sizeof(chunk) - (size_t)a);
	ASSERT_EQ(b, 29);
	*kv_end = (uint32_t)a;
	return (uint32_t)(a + b);
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t calls;

static int count_calls(void *arg, const struct store_item *it)
{
	(void)arg;
	(void)it;
	calls++;
	return 0;
}

/* Decoding gives want; a bad chunk calls fn for none of its items. */
static void decodes_to(uint32_t n, int want)
{
	calls = 0;
	ASSERT_EQ(snap_chunk_decode(chunk, n, count_calls, NULL), want);
	if (want != 0 || n == 0)
		ASSERT_EQ(calls, 0);
	else
		ASSERT_GT(calls, 0);
}

TEST(rule_chunk_sample_is_valid)
{
	uint32_t kv_end;
	uint32_t n = sample_chunk(KEEL_KEY_BYTES_MAX, KEEL_VALUE_BYTES_MAX, &kv_end);
	ASSERT_EQ(n, SNAP_ITEM_BYTES_MAX + 29);
	decodes_to(n, 0);
	ASSERT_EQ(calls, 2);
	decodes_to(0, 0); /* an empty chunk is an empty snapshot */
	struct store_item it = {.kind = STORE_ITEM_KV, .key = big_key, .key_bytes = 1};
	ASSERT_EQ(snap_item_encode(&it, chunk, 9), KEEL_ETOOBIG);
	ASSERT_EQ(snap_item_encode(&it, chunk, 10), 10);
}

TEST(rule_chunk_kind_known)
{
	uint32_t kv_end;
	uint32_t n = sample_chunk(3, 4, &kv_end);
	chunk[kv_end] = 0;
	decodes_to(n, KEEL_EMALFORMED);
	chunk[kv_end] = STORE_ITEM_SESSION + 1;
	decodes_to(n, KEEL_EMALFORMED);
}

TEST(rule_chunk_key_nonempty)
{
	uint32_t kv_end;
	uint32_t n = sample_chunk(3, 4, &kv_end);
	/* key_bytes 0, value 7 bytes: the same length on the wire */
	put32(chunk + 1, 0);
	put32(chunk + 5, 7);
	decodes_to(n, KEEL_EMALFORMED);
}

TEST(rule_chunk_key_limit)
{
	uint32_t kv_end;
	uint32_t n = sample_chunk(KEEL_KEY_BYTES_MAX, 5, &kv_end);
	decodes_to(n, 0);
	put32(chunk + 1, KEEL_KEY_BYTES_MAX + 1); /* one value byte joins the key */
	put32(chunk + 5, 4);
	decodes_to(n, KEEL_EMALFORMED);
}

TEST(rule_chunk_value_limit)
{
	uint32_t kv_end;
	uint32_t n = sample_chunk(2, KEEL_VALUE_BYTES_MAX, &kv_end);
	decodes_to(n, 0);
	put32(chunk + 1, 1); /* one key byte joins the value */
	put32(chunk + 5, KEEL_VALUE_BYTES_MAX + 1);
	decodes_to(n, KEEL_EMALFORMED);
}

TEST(rule_chunk_lengths_inside_the_chunk)
{
	uint32_t kv_end;
	uint32_t n = sample_chunk(3, 4, &kv_end);
	decodes_to(kv_end, 0);
	for (uint32_t cut = 1; cut < kv_end; cut++)
		decodes_to(cut, KEEL_EMALFORMED); /* kv header or body cut */
	for (uint32_t cut = kv_end + 1; cut < n; cut++)
		decodes_to(cut, KEEL_EMALFORMED); /* session cut */
	put32(chunk + 5, 0xffffffffu); /* a value past the end */
	decodes_to(n, KEEL_EMALFORMED);
	put32(chunk + 1, 0xffffffffu);
	decodes_to(n, KEEL_EMALFORMED);
	ASSERT_EQ(snap_chunk_decode(NULL, 3, count_calls, NULL), KEEL_EMALFORMED);
}

TEST(rule_chunk_session_client_id_nonzero)
{
	uint32_t kv_end;
	uint32_t n = sample_chunk(3, 4, &kv_end);
	memset(chunk + kv_end + 1, 0, 8);
	decodes_to(n, KEEL_EMALFORMED);
}

TEST(rule_chunk_session_status_known)
{
	uint32_t kv_end;
	uint32_t n = sample_chunk(3, 4, &kv_end);
	put32(chunk + kv_end + 25, KV_STALE_SEQ);
	decodes_to(n, 0);
	put32(chunk + kv_end + 25, KV_STALE_SEQ + 1);
	decodes_to(n, KEEL_EMALFORMED);
}

TEST(rule_chunk_no_trailing_bytes)
{
	uint32_t kv_end;
	uint32_t n = sample_chunk(3, 4, &kv_end);
	chunk[n] = STORE_ITEM_SESSION;
	decodes_to(n + 1, KEEL_EMALFORMED);
	chunk[n] = STORE_ITEM_KV;
	decodes_to(n + 1, KEEL_EMALFORMED);
}

static int stop_at_second(void *arg, const struct store_item *it)
{
	(void)arg;
	(void)it;
	return ++calls == 2 ? KEEL_ENOMEM : 0;
}

TEST(chunk_walk_stops_at_an_error_of_fn)
{
	uint32_t kv_end;
	uint32_t n = sample_chunk(3, 4, &kv_end);
	calls = 0;
	ASSERT_EQ(snap_chunk_decode(chunk, n, stop_at_second, NULL), KEEL_ENOMEM);
	ASSERT_EQ(calls, 2);
	ASSERT_EQ(snap_chunk_decode(chunk, n, NULL, NULL), 0); /* validate only */
}

/* ---- the follower side ---------------------------------------------------- */

static uint64_t staged(struct store *st)
{
	uint64_t n = ~0ull;
	ASSERT_EQ(st->ops->stage_count(st->impl, &n), 0);
	return n;
}

TEST(bad_chunk_stages_nothing)
{
	reset();
	open_mem(&src);
	open_lmdb(&dst);
	fill_source(&src.st);
	record_stream(&src.st, &rec);
	struct store *stores[2] = {&src.st, &dst.st};
	for (int i = 0; i < 2; i++) {
		struct store *st = stores[i];
		ASSERT_EQ(snap_stage_chunk(st, &rec.c[0]), 0);
		uint64_t n = staged(st);
		ASSERT_GT(n, 0);
		uint32_t kv_end;
		struct raft_snapshot_chunk bad = rec.c[1];
		bad.chunk = chunk;
		bad.chunk_bytes = sample_chunk(3, 4, &kv_end);
		memset(chunk + kv_end + 1, 0, 8); /* session of client 0 */
		ASSERT_EQ(snap_stage_chunk(st, &bad), KEEL_EMALFORMED);
		ASSERT_U64_EQ(staged(st), n);
		bad.offset = 0; /* would clear the staging area, if it were good */
		ASSERT_EQ(snap_stage_chunk(st, &bad), KEEL_EMALFORMED);
		ASSERT_U64_EQ(staged(st), n);
		/* a good offset 0 starts over */
		ASSERT_EQ(snap_stage_chunk(st, &rec.c[0]), 0);
		ASSERT_U64_EQ(staged(st), n);
		ASSERT_EQ(snap_stage_chunk(st, &rec.c[1]), 0);
		ASSERT_GT(staged(st), n);
	}
	stream_free(&rec);
	reset();
}

/* Install into a store whose log is 1..20 of term 1, the snapshot at
 * (10, term) or (30, term): the log after a match stays. */
static void install_with_log(uint64_t last_index, uint64_t last_term,
			     uint64_t want_first, uint64_t want_last)
{
	for (int kind = 0; kind < 2; kind++) {
		reset();
		open_kind(&dst, kind == 1);
		begin(&dst.st);
		append(&dst.st, 1, 20, 1);
		commit_sync(&dst.st);
		struct raft_snapshot_chunk c = {.last_index = last_index,
						.last_term = last_term,
						.membership = members(),
						.offset = 0, .done = true};
		ASSERT_EQ(snap_stage_chunk(&dst.st, &c), 0);
		ASSERT_EQ(snap_install(&dst.st, &c), 0);
		uint64_t first, last;
		ASSERT_EQ(dst.st.ops->log_bounds(dst.st.impl, &first, &last), 0);
		ASSERT_U64_EQ(first, want_first);
		ASSERT_U64_EQ(last, want_last);
		struct store_meta m;
		ASSERT_EQ(dst.st.ops->meta_get(dst.st.impl, &m), 0);
		ASSERT_U64_EQ(m.snapshot_index, last_index);
		ASSERT_U64_EQ(m.snapshot_term, last_term);
		ASSERT_U64_EQ(m.applied_index, last_index);
		ASSERT_U64_EQ(m.hard_state.commit, last_index);
		struct membership mb = members();
		ASSERT_MEM_EQ(&m.snapshot_membership, &mb, sizeof(mb));
	}
	reset();
}

TEST(install_keeps_a_matching_log_suffix)
{
	install_with_log(10, 1, 11, 20);
	install_with_log(20, 1, 21, 20); /* matches the last entry */
}

TEST(install_drops_a_conflicting_log)
{
	install_with_log(10, 2, 11, 10);
	install_with_log(30, 2, 31, 30); /* beyond the log */
}

TEST(install_never_lowers_the_commit)
{
	reset();
	open_mem(&dst);
	struct raft_hard_state hs = {.term = 5, .vote = 2, .commit = 40};
	begin(&dst.st);
	ASSERT_EQ(dst.st.ops->set_hard_state(dst.st.impl, &hs), 0);
	commit_sync(&dst.st);
	struct raft_snapshot_chunk c = {.last_index = 30, .last_term = 4,
					.membership = members(), .done = true};
	ASSERT_EQ(snap_stage_chunk(&dst.st, &c), 0);
	ASSERT_EQ(snap_install(&dst.st, &c), 0);
	struct store_meta m;
	ASSERT_EQ(dst.st.ops->meta_get(dst.st.impl, &m), 0);
	ASSERT_U64_EQ(m.hard_state.commit, 40);
	ASSERT_U64_EQ(m.hard_state.term, 5);
	reset();
}

/* ---- crashes: a store that dies at its k-th write call ---------------------- */

struct crashy {
	struct store st;     /* the proxy */
	struct mem_store *mem;
	uint64_t tear;
	int64_t left;        /* write calls until the crash */
	bool crashed;
};

static struct crashy cr;

/* Count a write call; crash the memory store at the chosen one. */
static bool dies(void)
{
	if (cr.crashed)
		return true;
	if (--cr.left > 0)
		return false;
	mem_store_crash(cr.mem, cr.tear);
	cr.crashed = true;
	return true;
}

static const struct store_ops *inner_ops(void)
{
	static struct store s;
	mem_store_bind(cr.mem, &s);
	return s.ops;
}

#define WRITE(call) (dies() ? KEEL_ESTORAGE : inner_ops()->call)
static int c_begin(void *i) { (void)i; return WRITE(write_begin(cr.mem)); }
static int c_commit(void *i) { (void)i; return WRITE(write_commit(cr.mem)); }
static int c_sync(void *i) { (void)i; return WRITE(sync(cr.mem)); }
static void c_abort(void *i) { (void)i; if (!cr.crashed) inner_ops()->write_abort(cr.mem); }
static int c_stage_clear(void *i) { (void)i; return WRITE(stage_clear(cr.mem)); }
static int c_stage_put(void *i, const struct store_item *it) { (void)i; return WRITE(stage_put(cr.mem, it)); }
static int c_stage_install(void *i) { (void)i; return WRITE(stage_install(cr.mem)); }
static int c_truncate(void *i, uint64_t x) { (void)i; return WRITE(log_truncate(cr.mem, x)); }
static int c_compact(void *i, uint64_t x, uint64_t t, const struct membership *m) { (void)i; return WRITE(log_compact(cr.mem, x, t, m)); }
static int c_applied(void *i, uint64_t x) { (void)i; return WRITE(set_applied(cr.mem, x)); }
static int c_hard(void *i, const struct raft_hard_state *hs) { (void)i; return WRITE(set_hard_state(cr.mem, hs)); }
#define READ(call) (cr.crashed ? KEEL_ESTORAGE : inner_ops()->call)
static int c_meta(void *i, struct store_meta *m) { (void)i; return READ(meta_get(cr.mem, m)); }
static int c_bounds(void *i, uint64_t *a, uint64_t *b) { (void)i; return READ(log_bounds(cr.mem, a, b)); }
static int c_get(void *i, uint64_t x, struct entry *e) { (void)i; return READ(log_get(cr.mem, x, e)); }

static const struct store_ops crashy_ops = {
	.meta_get = c_meta, .log_bounds = c_bounds, .log_get = c_get,
	.write_begin = c_begin, .set_hard_state = c_hard,
	.log_truncate = c_truncate, .log_compact = c_compact,
	.set_applied = c_applied, .write_commit = c_commit,
	.write_abort = c_abort, .sync = c_sync,
	.stage_clear = c_stage_clear, .stage_put = c_stage_put,
	.stage_install = c_stage_install,
};

/* The store holds exactly the old state or the new one; true if new. */
static bool old_or_new(struct store *st, uint64_t old_digest,
		       uint64_t new_digest)
{
	struct store_meta m;
	ASSERT_EQ(st->ops->meta_get(st->impl, &m), 0);
	uint64_t d = mem_store_digest(&dst.mem);
	uint64_t first, last;
	ASSERT_EQ(st->ops->log_bounds(st->impl, &first, &last), 0);
	if (d == new_digest) {
		check_installed(st);
		ASSERT_U64_EQ(first, SRC_APPLIED + 1);
		return true;
	}
	ASSERT_U64_EQ(d, old_digest);
	ASSERT_U64_EQ(m.applied_index, 4);
	ASSERT_U64_EQ(m.snapshot_index, 0);
	ASSERT_U64_EQ(first, 1);
	ASSERT_U64_EQ(last, 5);
	return false;
}

TEST(crash_anywhere_in_a_stream_or_install_leaves_old_or_new)
{
	reset();
	open_mem(&src);
	fill_source(&src.st);
	record_stream(&src.st, &rec);
	ASSERT_GT(rec.count, 3);
	open_mem(&dst);
	fill_old(&dst.st);
	uint64_t old_digest = mem_store_digest(&dst.mem);
	ASSERT_EQ(apply_stream(&dst.st, &rec), 0);
	uint64_t new_digest = mem_store_digest(&dst.mem);
	ASSERT_NE(old_digest, new_digest);
	uint32_t news = 0, olds = 0;
	for (int64_t k = 1;; k++) {
		bool crashed = false;
		/* tear 0 drops every unsynced batch, 1 keeps the oldest two,
		 * 720719 (lcm(1..16) - 1) keeps them all */
		static const uint64_t tears[] = {0, 1, 720719};
		for (size_t t = 0; t < 3; t++) {
			uint64_t tear = tears[t];
			close_fx(&dst);
			open_mem(&dst);
			fill_old(&dst.st);
			cr = (struct crashy){.mem = &dst.mem, .tear = tear, .left = k};
			cr.st = (struct store){.ops = &crashy_ops, .impl = &cr};
			int rc = apply_stream(&cr.st, &rec);
			crashed = cr.crashed;
			if (!crashed) {
				ASSERT_EQ(rc, 0);
				ASSERT_TRUE(old_or_new(&dst.st, old_digest, new_digest));
				break;
			}
			ASSERT_EQ(rc, KEEL_ESTORAGE);
			bool is_new = old_or_new(&dst.st, old_digest, new_digest);
			news += is_new;
			olds += !is_new;
			/* the restarted driver clears what was staged */
			begin(&dst.st);
			ASSERT_EQ(dst.st.ops->stage_clear(dst.st.impl), 0);
			commit_sync(&dst.st);
			ASSERT_EQ(old_or_new(&dst.st, old_digest, new_digest), is_new);
		}
		if (!crashed)
			break;
		ASSERT_TRUE(k < 100000);
	}
	ASSERT_GT(olds, 0);
	ASSERT_GT(news, 0); /* a tear can keep the committed switch */
	stream_free(&rec);
	reset();
}

/* ---- the reader's failures ---------------------------------------------------- */

static void *no_memory(void *ctx, void *ptr, size_t bytes)
{
	(void)ctx;
	(void)ptr;
	(void)bytes;
	return NULL;
}

/* A store whose snapshot yields `good` items, then `bad` (an item that
 * breaks the rules, or an error code). */
struct bad_store {
	int good;
	int at;
	bool bad_item; /* else KEEL_ECORRUPT */
	bool open;
};

static struct bad_store bs;

static int b_begin(void *i, struct store_meta *m)
{
	(void)i;
	memset(m, 0, sizeof(*m));
	m->applied_index = 12;
	bs.open = true;
	bs.at = 0;
	return 0;
}

static int b_next(void *i, struct store_item *it)
{
	(void)i;
	memset(it, 0, sizeof(*it));
	it->kind = STORE_ITEM_KV;
	it->key = big_val;
	it->key_bytes = 600;
	it->val = big_val;
	it->val_bytes = 60000; /* about one per chunk */
	if (bs.at++ < bs.good)
		return 1;
	if (!bs.bad_item)
		return KEEL_ECORRUPT;
	it->val_bytes = KEEL_VALUE_BYTES_MAX + 1; /* off a corrupted disk */
	return 1;
}

static void b_end(void *i)
{
	(void)i;
	bs.open = false;
}

static const struct store_ops bad_ops = {
	.snap_begin = b_begin, .snap_next = b_next, .snap_end = b_end,
};

TEST(reader_failures_close_the_stream)
{
	struct store st = {.ops = &bad_ops};
	struct snap_reader sr;
	uint64_t last;
	struct keel_alloc none = {.fn = no_memory};
	ASSERT_EQ(snap_reader_open(&sr, &st, &none, &last), KEEL_ENOMEM);
	ASSERT_FALSE(bs.open);
	for (int bad_item = 0; bad_item < 2; bad_item++) {
		bs = (struct bad_store){.good = 3, .bad_item = bad_item == 1};
		ASSERT_EQ(snap_reader_open(&sr, &st, NULL, &last), 0);
		ASSERT_U64_EQ(last, 12);
		const uint8_t *p;
		uint32_t n;
		bool done;
		uint64_t offset = 0;
		int rc;
		while ((rc = snap_reader_chunk(&sr, offset, &p, &n, &done)) == 0) {
			ASSERT_FALSE(done);
			offset += n;
		}
		ASSERT_EQ(rc, KEEL_ECORRUPT);
		ASSERT_GT(offset, 0);
		ASSERT_FALSE(bs.open); /* the store's snapshot was ended */
		ASSERT_EQ(snap_reader_chunk(&sr, offset, &p, &n, &done), KEEL_ESTATE);
		snap_reader_close(&sr);
	}
}

/* ---- LMDB: a map too small for an install ------------------------------------ */

#define FULL_MAP_BYTES (1u << 20)
#define FULL_VAL_BYTES 4000u
#define FULL_OLD_ITEMS 50u
#define FULL_ITEMS_PER_CHUNK 30u

/* The kv item "<prefix><i>" -> FULL_VAL_BYTES of big_val. */
static struct store_item full_item(char *k, const char *prefix, uint32_t i)
{
	int kb = snprintf(k, 16, "%s%05u", prefix, i);
	return (struct store_item){.kind = STORE_ITEM_KV, .key = (uint8_t *)k,
				   .key_bytes = (uint32_t)kb, .val = big_val,
				   .val_bytes = FULL_VAL_BYTES};
}

/* A fresh LMDB store of FULL_MAP_BYTES holding FULL_OLD_ITEMS keys "old",
 * applied index 3; then a snapshot of `items` keys "new" streamed into it.
 * Returns the first failure (0: installed); *where says which step. */
static int full_map_install(uint32_t items, const char **where)
{
	close_fx(&dst);
	memset(&dst, 0, sizeof(dst));
	fixture_tmpdir(&dst);
	struct lmdb_store_config cfg = {.dir = dst.dir, .create = true,
					.map_bytes = FULL_MAP_BYTES};
	ASSERT_EQ(lmdb_store_open(&dst.lmdb, &cfg), 0);
	lmdb_store_bind(&dst.lmdb, &dst.st);
	dst.open = true;
	char k[16];
	begin(&dst.st);
	for (uint32_t i = 0; i < FULL_OLD_ITEMS; i++) {
		struct store_item it = full_item(k, "old", i);
		put(&dst.st, it.key, it.key_bytes, it.val, it.val_bytes);
	}
	ASSERT_EQ(dst.st.ops->set_applied(dst.st.impl, 3), 0);
	commit_sync(&dst.st);
	struct raft_snapshot_chunk c = {.last_index = 10, .last_term = 1,
					.membership = members()};
	uint32_t i = 0;
	for (;;) {
		uint32_t n = 0;
		for (uint32_t j = 0; j < FULL_ITEMS_PER_CHUNK && i < items; j++, i++) {
			struct store_item it = full_item(k, "new", i);
			int b = snap_item_encode(&it, chunk + n, sizeof(chunk) - n);
			ASSERT_GT(b, 0);
			n += (uint32_t)b;
		}
		c.chunk = chunk;
		c.chunk_bytes = n;
		c.done = i == items;
		*where = "stage";
		int rc = snap_stage_chunk(&dst.st, &c);
		if (rc != 0)
			return rc;
		if (c.done)
			break;
		c.offset += n;
	}
	*where = "install";
	return snap_install(&dst.st, &c);
}

/* After a failed install the old state stands and the store goes on. */
static void full_map_old_state_stands(void)
{
	struct store_meta m;
	ASSERT_EQ(dst.st.ops->meta_get(dst.st.impl, &m), 0);
	ASSERT_U64_EQ(m.applied_index, 3);
	ASSERT_U64_EQ(m.snapshot_index, 0);
	const uint8_t *v;
	uint32_t vb;
	ASSERT_EQ(dst.st.ops->kv_get(dst.st.impl, (const uint8_t *)"old00000", 8,
				     &v, &vb), 0);
	ASSERT_EQ(vb, FULL_VAL_BYTES);
	ASSERT_EQ(dst.st.ops->kv_get(dst.st.impl, (const uint8_t *)"new00000", 8,
				     &v, &vb), KEEL_ENOTFOUND);
	begin(&dst.st); /* not sticky-failed */
	ASSERT_EQ(dst.st.ops->stage_clear(dst.st.impl), 0);
	commit_sync(&dst.st);
	ASSERT_U64_EQ(staged(&dst.st), 0);
}

/* Sizes grow by 8 items until an install fails, then from 8 back one at a
 * time: right where the puts still fit, the commit does not (LMDB's root
 * and freelist updates need pages too). Such a commit failure is known not
 * to have written anything, so it must not fail the store for good. */
TEST(lmdb_full_map_fails_an_install_and_keeps_the_old_state)
{
	reset();
	uint32_t items = 40, step = 8, fine_failures = 0, commit_failures = 0;
	bool installed_once = false;
	while (fine_failures < 3) {
		ASSERT_TRUE(items < 2000);
		const char *where = "";
		int rc = full_map_install(items, &where);
		if (rc == 0) {
			installed_once = true;
			items += step;
			continue;
		}
		ASSERT_EQ(rc, KEEL_ENOMEM);
		full_map_old_state_stands();
		if (step > 1) {
			items = items - step + 1;
			step = 1;
			continue;
		}
		if (strcmp(where, "install") == 0 &&
		    strncmp(dst.lmdb.error, "commit", 6) == 0)
			commit_failures++;
		fine_failures++;
		items++;
	}
	ASSERT_TRUE(installed_once);
	ASSERT_GT(commit_failures, 0);
	reset();
}
