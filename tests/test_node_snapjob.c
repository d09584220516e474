/* test_node_snapjob.c: the storage thread's compaction and snapshot work
 * (node/snapjob.c) on two real LMDB stores: a leader's stream of chunks,
 * staged and installed by a follower, gives the follower the leader's kv
 * and applied index; a resend gives the same bytes and an offset the
 * stream cannot produce starts it over; a malformed chunk stages nothing
 * and skips the chunks handed out before the loop's raft_snapshot_failed,
 * in later works too; compaction cuts the log and is skipped
 * behind the snapshot point. */
#include <stdlib.h>
#include <string.h>

#include "../core/err.h"
#include "../node/snapjob.h"
#include "harness.h"
#include "store_fixture.h"

#define KEYS 400u
#define VALUE_BYTES 1000u /* KEYS * VALUE_BYTES spans several chunks */
#define APPLIED 120u

struct two {
	struct fixture a, b; /* a: leader, b: follower */
};

static void open_lmdb(struct fixture *f)
{
	fixture_tmpdir(f);
	struct lmdb_store_config cfg = { .dir = f->dir, .create = true };
	ASSERT_EQ(lmdb_store_open(&f->lmdb, &cfg), 0);
	lmdb_store_bind(&f->lmdb, &f->st);
	f->open = true;
}

static void close_lmdb(struct fixture *f)
{
	if (!f->open)
		return;
	lmdb_store_close(&f->lmdb);
	fixture_rmdir(f);
	f->open = false;
}

static void key_of(uint32_t i, char *k)
{
	snprintf(k, 16, "key%05u", i);
}

/* KEYS pairs, a log 1..APPLIED of no-ops, applied index APPLIED. */
static void fill(struct store *st)
{
	const struct store_ops *o = st->ops;
	uint8_t val[VALUE_BYTES];
	ASSERT_EQ(o->write_begin(st->impl), 0);
	for (uint32_t i = 0; i < KEYS; i++) {
		char k[16];
		key_of(i, k);
		memset(val, 'a' + (int)(i % 26), sizeof val);
		ASSERT_EQ(o->kv_put(st->impl, (const uint8_t *)k, 8, val, sizeof val), 0);
	}
	for (uint32_t i = 1; i <= APPLIED; i++) {
		struct entry e = { .term = 1, .index = i, .type = ENTRY_NOOP };
		ASSERT_EQ(o->log_append(st->impl, &e, 1), 0);
	}
	ASSERT_EQ(o->set_applied(st->impl, APPLIED), 0);
	ASSERT_EQ(o->write_commit(st->impl), 0);
	ASSERT_EQ(o->sync(st->impl), 0);
}

static struct membership one_voter(void)
{
	struct membership m;
	memset(&m, 0, sizeof m);
	m.member_count = 1;
	m.members[0].id = 1;
	m.members[0].role = MEMBER_VOTER;
	m.next_id = 2;
	return m;
}

/* Ask the leader's snapjob for one chunk; the work is returned. */
static struct snap_work *produce(struct snapjob *sj, struct store *st,
				 bool fresh, uint64_t last_index, uint64_t offset)
{
	struct snap_work *w = snap_work_new();
	ASSERT_TRUE(w != NULL);
	w->has_send = true;
	w->send.to = 2;
	w->send.new_stream = fresh;
	w->send.last_index = last_index;
	w->send.offset = offset;
	ASSERT_EQ(snapjob_run(sj, st, w), 0);
	ASSERT_TRUE(w->send.produced);
	return w;
}

static struct raft_snapshot_chunk chunk_of(const struct snap_send *sd)
{
	struct raft_snapshot_chunk c = {
		.last_index = sd->out_last_index,
		.last_term = 1,
		.membership = one_voter(),
		.offset = sd->out_offset,
		.chunk_bytes = sd->chunk_bytes,
		.chunk = sd->chunk,
		.done = sd->done,
	};
	return c;
}

TEST(stream_staged_and_installed_gives_the_leaders_state)
{
	static struct two t;
	memset(&t, 0, sizeof t);
	open_lmdb(&t.a);
	open_lmdb(&t.b);
	fill(&t.a.st);
	struct snapjob lead, follow;
	memset(&lead, 0, sizeof lead);
	memset(&follow, 0, sizeof follow);
	uint64_t offset = 0, last_index = 0;
	uint32_t chunks = 0;
	bool done = false;
	while (!done) {
		ASSERT_LT(chunks, 1000u);
		struct snap_work *w = produce(&lead, &t.a.st, chunks == 0,
					      last_index, offset);
		ASSERT_U64_EQ(w->send.out_offset, offset);
		last_index = w->send.out_last_index;
		ASSERT_U64_EQ(last_index, APPLIED);
		struct snap_work *f = snap_work_new();
		struct raft_snapshot_chunk c = chunk_of(&w->send);
		ASSERT_EQ(snap_work_add_chunk(f, &c), 0);
		ASSERT_EQ(snapjob_run(&follow, &t.b.st, f), 0);
		ASSERT_EQ(f->stage[0].err, 0);
		done = w->send.done;
		ASSERT_EQ(f->stage[0].installed, done);
		offset += w->send.chunk_bytes;
		chunks++;
		snap_work_free(f);
		snap_work_free(w);
	}
	ASSERT_GT(chunks, 2u);
	ASSERT_FALSE(lead.reader.open); /* released after the last chunk */
	struct store_meta meta;
	ASSERT_EQ(t.b.st.ops->meta_get(t.b.st.impl, &meta), 0);
	ASSERT_U64_EQ(meta.applied_index, APPLIED);
	ASSERT_U64_EQ(meta.snapshot_index, APPLIED);
	ASSERT_EQ(meta.snapshot_membership.member_count, 1);
	for (uint32_t i = 0; i < KEYS; i += 37) {
		char k[16];
		key_of(i, k);
		const uint8_t *v;
		uint32_t vb;
		ASSERT_EQ(t.b.st.ops->kv_get(t.b.st.impl, (const uint8_t *)k, 8, &v, &vb), 0);
		ASSERT_EQ(vb, VALUE_BYTES);
		ASSERT_EQ(v[0], 'a' + (int)(i % 26));
	}
	snapjob_close(&lead);
	snapjob_close(&follow);
	close_lmdb(&t.a);
	close_lmdb(&t.b);
}

/* A follower whose map is too small for the staged copy or the switch:
 * LMDB's MAP_FULL is not sticky, so the install is abandoned (the chunk's
 * err tells the loop to call raft_snapshot_failed), the old state stands
 * and the store goes on working; it is not a failed job. */
TEST(a_full_map_abandons_the_install_and_keeps_the_old_state)
{
	static struct two t;
	memset(&t, 0, sizeof t);
	open_lmdb(&t.a);
	fill(&t.a.st);
	fixture_tmpdir(&t.b);
	struct lmdb_store_config cfg = { .dir = t.b.dir, .create = true,
					 .map_bytes = 1024u * 1024u };
	ASSERT_EQ(lmdb_store_open(&t.b.lmdb, &cfg), 0);
	lmdb_store_bind(&t.b.lmdb, &t.b.st);
	t.b.open = true;
	const struct store_ops *o = t.b.st.ops;
	uint8_t val[VALUE_BYTES];
	memset(val, 'z', sizeof val);
	ASSERT_EQ(o->write_begin(t.b.st.impl), 0);
	for (uint32_t i = 0; i < 300; i++) {
		char k[16];
		snprintf(k, sizeof k, "old%05u", i);
		ASSERT_EQ(o->kv_put(t.b.st.impl, (const uint8_t *)k, 8, val, sizeof val), 0);
	}
	ASSERT_EQ(o->set_applied(t.b.st.impl, 5), 0);
	ASSERT_EQ(o->write_commit(t.b.st.impl), 0);
	ASSERT_EQ(o->sync(t.b.st.impl), 0);

	struct snapjob lead, follow;
	memset(&lead, 0, sizeof lead);
	memset(&follow, 0, sizeof follow);
	uint64_t offset = 0, last_index = 0;
	uint32_t chunks = 0, abandoned = 0;
	bool done = false;
	while (!done) {
		ASSERT_LT(chunks, 1000u);
		struct snap_work *w = produce(&lead, &t.a.st, chunks == 0,
					      last_index, offset);
		last_index = w->send.out_last_index;
		struct snap_work *f = snap_work_new();
		struct raft_snapshot_chunk c = chunk_of(&w->send);
		ASSERT_EQ(snap_work_add_chunk(f, &c), 0);
		f->stage[0].failures = 0;
		ASSERT_EQ(snapjob_run(&follow, &t.b.st, f), 0); /* not a store error */
		ASSERT_FALSE(f->stage[0].installed);
		if (f->stage[0].err == KEEL_ENOMEM)
			abandoned++;
		done = w->send.done;
		offset += w->send.chunk_bytes;
		chunks++;
		snap_work_free(f);
		snap_work_free(w);
	}
	ASSERT_EQ(abandoned, 1u); /* the rest are skipped (KEEL_ESTATE) */
	struct store_meta meta;
	ASSERT_EQ(o->meta_get(t.b.st.impl, &meta), 0);
	ASSERT_U64_EQ(meta.applied_index, 5);
	const uint8_t *v;
	uint32_t vb;
	ASSERT_EQ(o->kv_get(t.b.st.impl, (const uint8_t *)"old00299", 8, &v, &vb), 0);
	ASSERT_EQ(v[0], 'z');
	ASSERT_EQ(o->kv_get(t.b.st.impl, (const uint8_t *)"key00000", 8, &v, &vb),
		  KEEL_ENOTFOUND);
	/* The store still takes writes. */
	ASSERT_EQ(o->write_begin(t.b.st.impl), 0);
	ASSERT_EQ(o->stage_clear(t.b.st.impl), 0);
	ASSERT_EQ(o->set_applied(t.b.st.impl, 6), 0);
	ASSERT_EQ(o->write_commit(t.b.st.impl), 0);
	ASSERT_EQ(o->sync(t.b.st.impl), 0);
	snapjob_close(&lead);
	snapjob_close(&follow);
	close_lmdb(&t.a);
	close_lmdb(&t.b);
}

TEST(a_resend_repeats_and_an_unknown_offset_starts_over)
{
	static struct fixture f;
	memset(&f, 0, sizeof f);
	open_lmdb(&f);
	fill(&f.st);
	struct snapjob sj;
	memset(&sj, 0, sizeof sj);
	struct snap_work *w0 = produce(&sj, &f.st, true, 0, 0);
	struct snap_work *w1 = produce(&sj, &f.st, false, APPLIED, 0); /* resend */
	ASSERT_U64_EQ(w1->send.out_offset, 0);
	ASSERT_EQ(w1->send.chunk_bytes, w0->send.chunk_bytes);
	ASSERT_MEM_EQ(w1->send.chunk, w0->send.chunk, w0->send.chunk_bytes);
	/* An offset the stream cannot produce: a new stream from 0. */
	struct snap_work *w2 = produce(&sj, &f.st, false, APPLIED, 999999);
	ASSERT_U64_EQ(w2->send.out_offset, 0);
	ASSERT_MEM_EQ(w2->send.chunk, w0->send.chunk, w0->send.chunk_bytes);
	snap_work_free(w0);
	snap_work_free(w1);
	snap_work_free(w2);
	snapjob_close(&sj);
	close_lmdb(&f);
}

TEST(a_malformed_chunk_stages_nothing_and_skips_the_rest)
{
	static struct two t;
	memset(&t, 0, sizeof t);
	open_lmdb(&t.a);
	open_lmdb(&t.b);
	fill(&t.a.st);
	struct snapjob lead, follow;
	memset(&lead, 0, sizeof lead);
	memset(&follow, 0, sizeof follow);
	struct snap_work *w = produce(&lead, &t.a.st, true, 0, 0);
	struct snap_work *f = snap_work_new();
	uint8_t junk[64];
	memset(junk, 0xee, sizeof junk); /* item kind 0xee: unknown */
	struct raft_snapshot_chunk bad = chunk_of(&w->send);
	bad.chunk = junk;
	bad.chunk_bytes = sizeof junk;
	bad.done = false;
	ASSERT_EQ(snap_work_add_chunk(f, &bad), 0);
	struct raft_snapshot_chunk good = chunk_of(&w->send);
	good.done = true;
	ASSERT_EQ(snap_work_add_chunk(f, &good), 0);
	ASSERT_EQ(snapjob_run(&follow, &t.b.st, f), 0); /* not a store error */
	ASSERT_EQ(f->stage[0].err, KEEL_EMALFORMED);
	ASSERT_EQ(f->stage[1].err, KEEL_ESTATE);
	ASSERT_FALSE(f->stage[1].installed);
	uint64_t staged = 99;
	ASSERT_EQ(t.b.st.ops->stage_count(t.b.st.impl, &staged), 0);
	ASSERT_U64_EQ(staged, 0);
	struct store_meta meta;
	ASSERT_EQ(t.b.st.ops->meta_get(t.b.st.impl, &meta), 0);
	ASSERT_U64_EQ(meta.applied_index, 0);
	snap_work_free(f);
	snap_work_free(w);
	snapjob_close(&lead);
	close_lmdb(&t.a);
	close_lmdb(&t.b);
}

/* A malformed chunk in one work, the chunks after it (handed out before
 * the loop called raft_snapshot_failed) in the next: they would stage
 * after a gap and install part of a snapshot. Every chunk handed out
 * before that call is skipped; the ones after it stage. */
TEST(chunks_after_a_malformed_one_are_skipped_across_works)
{
	static struct two t;
	memset(&t, 0, sizeof t);
	open_lmdb(&t.a);
	open_lmdb(&t.b);
	fill(&t.a.st);
	struct snapjob lead, follow;
	memset(&lead, 0, sizeof lead);
	memset(&follow, 0, sizeof follow);
	/* the leader's whole stream, one chunk per work */
	struct snap_work *sent[SNAPJOB_STAGE_MAX];
	uint32_t n = 0;
	uint64_t offset = 0;
	do {
		ASSERT_LT(n, SNAPJOB_STAGE_MAX);
		sent[n] = produce(&lead, &t.a.st, n == 0, APPLIED, offset);
		offset += sent[n]->send.chunk_bytes;
	} while (!sent[n++]->send.done);
	ASSERT_GT(n, 2u);
	uint8_t junk[64];
	memset(junk, 0xee, sizeof junk); /* item kind 0xee: unknown */
	struct raft_snapshot_chunk bad = chunk_of(&sent[0]->send);
	bad.chunk = junk;
	bad.chunk_bytes = sizeof junk;
	struct snap_work *f1 = snap_work_new(), *f2 = snap_work_new();
	ASSERT_EQ(snap_work_add_chunk(f1, &bad), 0);
	ASSERT_EQ(snapjob_run(&follow, &t.b.st, f1), 0);
	ASSERT_EQ(f1->stage[0].err, KEEL_EMALFORMED);
	for (uint32_t i = 1; i < n; i++) {
		struct raft_snapshot_chunk c = chunk_of(&sent[i]->send);
		ASSERT_EQ(snap_work_add_chunk(f2, &c), 0);
	}
	ASSERT_EQ(snapjob_run(&follow, &t.b.st, f2), 0);
	for (uint32_t i = 0; i + 1 < n; i++)
		ASSERT_EQ(f2->stage[i].err, KEEL_ESTATE);
	ASSERT_FALSE(f2->stage[n - 2].installed);
	uint64_t staged = 99;
	ASSERT_EQ(t.b.st.ops->stage_count(t.b.st.impl, &staged), 0);
	ASSERT_U64_EQ(staged, 0);
	struct store_meta meta;
	ASSERT_EQ(t.b.st.ops->meta_get(t.b.st.impl, &meta), 0);
	ASSERT_U64_EQ(meta.applied_index, 0);
	/* a whole stream handed out before the loop's raft_snapshot_failed:
	 * Raft no longer waits for it, so it is not installed either */
	struct snap_work *f3 = snap_work_new(), *f4 = snap_work_new();
	for (uint32_t i = 0; i < n; i++) {
		struct raft_snapshot_chunk c = chunk_of(&sent[i]->send);
		ASSERT_EQ(snap_work_add_chunk(f3, &c), 0);
		ASSERT_EQ(snap_work_add_chunk(f4, &c), 0);
		f4->stage[i].failures = 1; /* after it */
	}
	ASSERT_EQ(snapjob_run(&follow, &t.b.st, f3), 0);
	ASSERT_FALSE(f3->stage[n - 1].installed);
	ASSERT_EQ(t.b.st.ops->meta_get(t.b.st.impl, &meta), 0);
	ASSERT_U64_EQ(meta.applied_index, 0);
	/* one handed out after it installs */
	ASSERT_EQ(snapjob_run(&follow, &t.b.st, f4), 0);
	ASSERT_TRUE(f4->stage[n - 1].installed);
	ASSERT_EQ(t.b.st.ops->meta_get(t.b.st.impl, &meta), 0);
	ASSERT_U64_EQ(meta.applied_index, APPLIED);
	for (uint32_t i = 0; i < n; i++)
		snap_work_free(sent[i]);
	snap_work_free(f1);
	snap_work_free(f2);
	snap_work_free(f3);
	snap_work_free(f4);
	snapjob_close(&lead);
	snapjob_close(&follow);
	close_lmdb(&t.a);
	close_lmdb(&t.b);
}

TEST(compaction_cuts_the_log_and_is_skipped_behind_the_snapshot_point)
{
	static struct fixture f;
	memset(&f, 0, sizeof f);
	open_lmdb(&f);
	fill(&f.st);
	struct snapjob sj;
	memset(&sj, 0, sizeof sj);
	struct snap_work *w = snap_work_new();
	w->compact_index = 80;
	w->compact_term = 1;
	w->compact_membership = one_voter();
	ASSERT_EQ(snapjob_run(&sj, &f.st, w), 0);
	ASSERT_TRUE(w->compacted);
	uint64_t first, last;
	ASSERT_EQ(f.st.ops->log_bounds(f.st.impl, &first, &last), 0);
	ASSERT_U64_EQ(first, 81);
	ASSERT_U64_EQ(last, APPLIED);
	snap_work_free(w);
	w = snap_work_new();
	w->compact_index = 50; /* behind: an install overtook it */
	w->compact_term = 1;
	w->compact_membership = one_voter();
	ASSERT_EQ(snapjob_run(&sj, &f.st, w), 0);
	ASSERT_FALSE(w->compacted);
	ASSERT_EQ(f.st.ops->log_bounds(f.st.impl, &first, &last), 0);
	ASSERT_U64_EQ(first, 81);
	snap_work_free(w);
	close_lmdb(&f);
}

TEST(work_holds_a_bounded_number_of_chunks)
{
	struct snap_work *w = snap_work_new();
	uint8_t b[4] = { 0 };
	struct raft_snapshot_chunk c = { .last_index = 1, .last_term = 1,
					 .chunk = b, .chunk_bytes = sizeof b };
	for (uint32_t i = 0; i < SNAPJOB_STAGE_MAX; i++) {
		c.offset = i * sizeof b;
		ASSERT_EQ(snap_work_add_chunk(w, &c), 0);
	}
	ASSERT_EQ(snap_work_add_chunk(w, &c), KEEL_EBUSY);
	ASSERT_EQ(w->stage_count, SNAPJOB_STAGE_MAX);
	b[0] = 7; /* the work owns copies */
	ASSERT_EQ(w->stage[0].c.chunk[0], 0);
	snap_work_free(w);
}
