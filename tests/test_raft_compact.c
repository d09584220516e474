/* test_raft_compact.c: core/raft log compaction: the policy
 * (raft_compact_index), raft_compact's bounds, raft_state_at, and a log
 * that starts above index 1 after compaction and restart. */
#include "raft_cluster.h"

static void set_tail(struct cluster *c, uint32_t entries, uint64_t bytes)
{
	for (size_t i = 0; i < c->count; i++) {
		c->n[i].opt.log_tail_entries = entries;
		c->n[i].opt.log_tail_bytes = bytes;
		cl_crash(c, (int)i);
		cl_restart(c, (int)i);
	}
}

static uint64_t propose_n(struct cluster *c, int l, int n, const char *s)
{
	uint64_t index = 0;
	for (int k = 0; k < n; k++)
		index = cl_propose(c, l, s);
	cl_settle(c);
	cl_run(c, 1); /* a heartbeat carries the commit to the followers */
	return index;
}

TEST(options_default_compaction_tail)
{
	struct raft_options o;
	raft_options_default(&o, 1, 1);
	ASSERT_U64_EQ(o.log_tail_entries, RAFT_LOG_TAIL_ENTRIES_DEFAULT);
	ASSERT_U64_EQ(o.log_tail_bytes, RAFT_LOG_TAIL_BYTES_DEFAULT);
}

/* Entries: nothing until the applied part exceeds two tails, then keep
 * exactly one tail. */
TEST(compact_index_entry_policy)
{
	struct cluster c;
	cl_init(&c, 1, 0, 1);
	set_tail(&c, 4, 1u << 30);
	cl_elect(&c, 0);
	/* entries 1 (config), 2 (no-op) */
	uint64_t last = propose_n(&c, 0, 6, "x"); /* 8 entries applied */
	ASSERT_U64_EQ(last, 8);
	ASSERT_U64_EQ(cl_status(&c, 0).applied, 8);
	ASSERT_U64_EQ(raft_compact_index(c.n[0].r, 8), 0); /* 8 <= 2 * 4 */
	cl_propose(&c, 0, "x"); /* 9 */
	ASSERT_U64_EQ(raft_compact_index(c.n[0].r, 9), 5); /* keep 6..9 */
	/* never above what the state machine durably holds */
	ASSERT_U64_EQ(raft_compact_index(c.n[0].r, 7), 0);
	ASSERT_U64_EQ(raft_compact_index(c.n[0].r, 0), 0);
	cl_free(&c);
}

/* Bytes: a log of few large entries compacts on bytes alone. */
TEST(compact_index_byte_policy)
{
	struct cluster c;
	cl_init(&c, 1, 0, 2);
	set_tail(&c, 1000, 20);
	cl_elect(&c, 0);
	propose_n(&c, 0, 4, "0123456789"); /* 3..6, 10 bytes each */
	uint64_t applied = cl_status(&c, 0).applied;
	ASSERT_U64_EQ(applied, 6);
	/* config (~few bytes) + 40 bytes > 2 * 20: keep 20 bytes (5, 6) */
	ASSERT_U64_EQ(raft_compact_index(c.n[0].r, applied), 4);
	cl_free(&c);
}

/* Only durable entries are compacted: with the disk behind, the stable
 * index bounds the answer. A tail of 0 compacts all that is applied. */
TEST(compact_index_bounded_by_stable_and_applied)
{
	struct cluster c;
	cl_init(&c, 3, 0, 3);
	set_tail(&c, 0, 0);
	cl_elect(&c, 0);
	propose_n(&c, 0, 3, "a");
	struct raft_status s = cl_status(&c, 1);
	ASSERT_U64_EQ(s.applied, 5);
	ASSERT_U64_EQ(raft_compact_index(c.n[1].r, 100), 5);
	ASSERT_U64_EQ(raft_compact_index(c.n[1].r, 3), 3);
	c.n[1].manual_sync = true;
	cl_propose(&c, 0, "b"); /* 6: not durable on node 2 yet */
	cl_settle(&c);
	ASSERT_U64_EQ(cl_status(&c, 1).stable_index, 5);
	ASSERT_U64_EQ(raft_compact_index(c.n[1].r, 100), 5);
	ASSERT_EQ(raft_compact(c.n[1].r, 6), KEEL_EINVAL);
	cl_sync(&c, 1);
	cl_free(&c);
}

TEST(compact_bounds_and_state_at)
{
	struct cluster c;
	cl_init(&c, 3, 0, 4);
	cl_elect(&c, 0);
	propose_n(&c, 0, 5, "a"); /* 3..7 */
	struct raft *r = c.n[0].r;
	struct raft_status s = cl_status(&c, 0);
	ASSERT_U64_EQ(s.applied, 7);
	uint64_t term = 0;
	struct membership m;
	ASSERT_EQ(raft_state_at(r, 8, &term, &m), KEEL_ENOTFOUND);
	ASSERT_EQ(raft_state_at(r, 4, &term, &m), 0);
	ASSERT_U64_EQ(term, s.term);
	ASSERT_U64_EQ(m.member_count, 3);
	ASSERT_EQ(raft_compact(r, 0), KEEL_EINVAL);
	ASSERT_EQ(raft_compact(r, 8), KEEL_EINVAL); /* beyond the log */
	ASSERT_EQ(raft_compact(r, 4), 0);
	s = cl_status(&c, 0);
	ASSERT_U64_EQ(s.snapshot_index, 4);
	ASSERT_U64_EQ(s.first_index, 5);
	ASSERT_U64_EQ(s.config_index, 0); /* the config is now the snapshot's */
	ASSERT_U64_EQ(s.membership.member_count, 3);
	ASSERT_U64_EQ(raft_term_at(r, 4), term);
	ASSERT_EQ(raft_compact(r, 4), KEEL_EINVAL); /* not above the snapshot */
	ASSERT_EQ(raft_compact(r, 3), KEEL_EINVAL);
	ASSERT_EQ(raft_state_at(r, 3, &term, &m), KEEL_ECOMPACTED);
	ASSERT_EQ(raft_state_at(r, 4, &term, &m), 0);
	ASSERT_U64_EQ(m.member_count, 3);
	/* the cluster goes on */
	propose_n(&c, 0, 2, "b");
	ASSERT_U64_EQ(cl_status(&c, 2).commit, 9);
	cl_assert_logs_equal(&c, 0);
	cl_free(&c);
}

/* A compacted follower restarts from (snapshot_index > 0, its log above
 * it) and keeps replicating; a compacted leader restarts and leads again. */
TEST(restart_with_log_above_index_1)
{
	struct cluster c;
	cl_init(&c, 3, 0, 5);
	set_tail(&c, 2, 1u << 30);
	for (size_t i = 0; i < c.count; i++)
		c.n[i].auto_compact = true;
	cl_elect(&c, 0);
	propose_n(&c, 0, 10, "a");
	for (size_t i = 0; i < c.count; i++) {
		ASSERT_GT(c.n[i].snap_index, 1);
		ASSERT_U64_EQ(cl_status(&c, (int)i).snapshot_index, c.n[i].snap_index);
	}
	uint64_t snap = c.n[1].snap_index;
	cl_crash(&c, 1);
	cl_restart(&c, 1);
	struct raft_status s = cl_status(&c, 1);
	ASSERT_U64_EQ(s.snapshot_index, snap);
	ASSERT_U64_EQ(s.first_index, snap + 1);
	ASSERT_U64_EQ(s.membership.member_count, 3);
	ASSERT_U64_EQ(s.applied, c.n[1].dapplied);
	uint64_t last = propose_n(&c, 0, 3, "b");
	cl_run(&c, 2);
	ASSERT_U64_EQ(cl_status(&c, 1).commit, last);
	ASSERT_U64_EQ(cl_status(&c, 1).applied, last);
	/* the leader too */
	cl_crash(&c, 0);
	cl_restart(&c, 0);
	int l = cl_run_until_leader(&c, 200);
	ASSERT_GE(l, 0);
	last = propose_n(&c, l, 3, "c");
	cl_run(&c, 2);
	for (size_t i = 0; i < c.count; i++)
		ASSERT_U64_EQ(cl_status(&c, (int)i).applied, last);
	cl_free(&c);
}
