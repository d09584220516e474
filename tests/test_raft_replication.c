/* test_raft_replication.c: core/raft replication and commit rules, and the
 * Raft paper's figure 7 and figure 8 scenarios. */
#include "raft_cluster.h"

typedef bool (*hold_fn)(const struct msg *m);

/* Deliver everything except messages hold() keeps in the queue. */
static void settle_hold(struct cluster *c, hold_fn hold)
{
	for (int guard = 0; guard < CL_DELIVER_MAX; guard++) {
		size_t k = 0;
		while (k < c->q_count && hold(&c->q[k].m))
			k++;
		if (k == c->q_count)
			return;
		cl_deliver_at(c, k);
	}
	ASSERT_TRUE(false);
}

static void set_options(struct cluster *c, uint32_t entries_max,
			uint32_t bytes_max, uint32_t inflight_max)
{
	for (size_t i = 0; i < c->count; i++) {
		if (entries_max)
			c->n[i].opt.append_entries_max = entries_max;
		if (bytes_max)
			c->n[i].opt.append_bytes_max = bytes_max;
		if (inflight_max)
			c->n[i].opt.inflight_appends_max = inflight_max;
		cl_crash(c, (int)i);
		cl_restart(c, (int)i);
	}
}

static struct msg append_msg(keel_node_id from, keel_node_id to, uint64_t term,
			     uint64_t prev_index, uint64_t prev_term,
			     const struct entry *e, uint32_t n, uint64_t commit)
{
	struct msg m = { .type = MSG_APPEND, .from = from, .to = to, .term = term };
	m.u.append.prev_index = prev_index;
	m.u.append.prev_term = prev_term;
	m.u.append.entries = e;
	m.u.append.entry_count = n;
	m.u.append.commit = commit;
	return m;
}

/* The response node (index i) queued last, removed from the network. */
static struct msg_append_resp take_resp(struct cluster *c, int i)
{
	struct msg_append_resp r = { 0 };
	cl_sync(c, i);
	int k = cl_find(c, MSG_APPEND_RESP, c->n[i].id, 0);
	ASSERT_GE(k, 0);
	r = c->q[k].m.u.append_resp;
	cl_drop_at(c, (size_t)k);
	return r;
}

/* A follower rejects an append whose (prev_index, prev_term) it does not
 * hold, changes nothing, and says where to probe next. */
TEST(consistency_check_rejects_mismatched_prev)
{
	const uint64_t l1[] = { 1, 1, 2 }, l2[] = { 1, 1, 2 };
	const uint64_t *logs[] = { l1, l2 };
	size_t lens[] = { 3, 3 };
	struct cluster c;
	cl_init_logs(&c, 2, 0, logs, lens, 3, 1);
	struct entry e = { .term = 3, .index = 4, .type = ENTRY_NOOP };
	struct msg m = append_msg(1, 2, 3, 3, 3, &e, 1, 4); /* wrong prev term */
	ASSERT_EQ(raft_step(c.n[1].r, &m), 0);
	cl_drain(&c, &c.n[1]);
	struct msg_append_resp r = take_resp(&c, 1);
	ASSERT_FALSE(r.success);
	ASSERT_U64_EQ(r.reject_index, 3);
	ASSERT_U64_EQ(r.hint_index, 3); /* term 2 <= 3: probe from here */
	ASSERT_U64_EQ(r.hint_term, 2);
	ASSERT_U64_EQ(cl_status(&c, 1).last_index, 3);
	ASSERT_U64_EQ(cl_status(&c, 1).commit, 0);
	/* prev beyond our log */
	e.index = 9;
	m = append_msg(1, 2, 3, 8, 3, &e, 1, 9);
	ASSERT_EQ(raft_step(c.n[1].r, &m), 0);
	cl_drain(&c, &c.n[1]);
	r = take_resp(&c, 1);
	ASSERT_FALSE(r.success);
	ASSERT_U64_EQ(r.hint_index, 3);
	ASSERT_U64_EQ(cl_status(&c, 1).last_index, 3);
	/* the right prev: accepted, commit follows min(commit, last new) */
	e.index = 4;
	m = append_msg(1, 2, 3, 3, 2, &e, 1, 9);
	ASSERT_EQ(raft_step(c.n[1].r, &m), 0);
	cl_drain(&c, &c.n[1]);
	r = take_resp(&c, 1);
	ASSERT_TRUE(r.success);
	ASSERT_U64_EQ(r.match_index, 4);
	ASSERT_U64_EQ(cl_status(&c, 1).last_index, 4);
	ASSERT_U64_EQ(cl_status(&c, 1).commit, 4);
	cl_free(&c);
}

/* An append whose entries all match what we hold (a delayed or duplicated
 * one) never truncates the entries after it; a real conflict does. */
TEST(no_truncation_on_duplicated_or_delayed_append)
{
	const uint64_t l1[] = { 1, 1, 1, 1, 1 }, l2[] = { 1, 1, 1, 1, 1 };
	const uint64_t *logs[] = { l1, l2 };
	size_t lens[] = { 5, 5 };
	struct cluster c;
	cl_init_logs(&c, 2, 0, logs, lens, 1, 1);
	struct entry e[2] = {
		{ .term = 1, .index = 3, .type = ENTRY_COMMAND, .data = (const uint8_t *)"e3", .data_bytes = 2 },
		{ .term = 1, .index = 4, .type = ENTRY_COMMAND, .data = (const uint8_t *)"e4", .data_bytes = 2 },
	};
	struct msg m = append_msg(1, 2, 1, 2, 1, e, 2, 0);
	ASSERT_EQ(raft_step(c.n[1].r, &m), 0);
	cl_drain(&c, &c.n[1]);
	struct msg_append_resp r = take_resp(&c, 1);
	ASSERT_TRUE(r.success);
	ASSERT_U64_EQ(r.match_index, 4);
	ASSERT_U64_EQ(cl_status(&c, 1).last_index, 5); /* entry 5 kept */
	ASSERT_U64_EQ(raft_term_at(c.n[1].r, 5), 1);
	/* a heartbeat-like empty append at an old prev: nothing removed */
	m = append_msg(1, 2, 1, 1, 1, NULL, 0, 0);
	ASSERT_EQ(raft_step(c.n[1].r, &m), 0);
	cl_drain(&c, &c.n[1]);
	ASSERT_U64_EQ(cl_status(&c, 1).last_index, 5);
	/* a real conflict at 4 (a newer leader's term 2) truncates 4.. */
	e[1].term = 2;
	m = append_msg(1, 2, 2, 2, 1, e, 2, 0);
	ASSERT_EQ(raft_step(c.n[1].r, &m), 0);
	cl_drain(&c, &c.n[1]);
	ASSERT_U64_EQ(cl_status(&c, 1).last_index, 4);
	ASSERT_U64_EQ(raft_term_at(c.n[1].r, 4), 2);
	cl_free(&c);
}

static bool is_resp_from_2(const struct msg *m)
{
	return m->type == MSG_APPEND_RESP && m->from == 2;
}

/* Appends delivered out of order and more than once still leave the
 * follower's log equal to the leader's, and nothing committed is lost. */
TEST(duplicated_and_reordered_appends)
{
	struct cluster c;
	cl_init(&c, 3, 0, 29);
	set_options(&c, 1, 0, 0); /* one entry per append */
	cl_elect(&c, 0);
	cl_run(&c, 2);
	/* hold node 2's answers so the leader keeps pipelining */
	for (int i = 0; i < 5; i++)
		cl_propose(&c, 0, "p");
	size_t appends = cl_count(&c, MSG_APPEND, 1, 2);
	ASSERT_GE(appends, 3u);
	/* deliver node 2's appends newest first, duplicating each */
	for (int round = 0; round < 2; round++) {
		for (size_t k = c.q_count; k-- > 0;) {
			const struct msg *m = &c.q[k].m;
			if (m->type == MSG_APPEND && m->to == 2 && m->u.append.entry_count > 0) {
				if (round == 0)
					cl_duplicate(&c, k);
				cl_deliver_at(&c, k);
			}
		}
	}
	settle_hold(&c, is_resp_from_2);
	cl_settle(&c);
	cl_run(&c, 5);
	cl_assert_logs_equal(&c, 0);
	for (int i = 0; i < 3; i++)
		ASSERT_U64_EQ(cl_status(&c, i).applied, cl_status(&c, 0).last_index);
	cl_free(&c);
}

/* A follower far behind in a conflicting term is found in one round trip
 * per term, not one per entry (figure 7, follower f). */
TEST(fast_backtracking_with_hints)
{
	const uint64_t leader[] = { 1, 1, 1, 4, 4, 5, 5, 6, 6, 6 };
	const uint64_t f[] = { 1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3 };
	const uint64_t *logs[] = { leader, f };
	size_t lens[] = { 10, 11 };
	struct cluster c;
	cl_init_logs(&c, 2, 0, logs, lens, 7, 1);
	size_t rejects = 0;
	ASSERT_GT(cl_tick_until_role_change(&c, 0, 100), 0);
	for (int guard = 0; guard < 1000 && c.q_count > 0; guard++) {
		const struct msg *m = &c.q[0].m;
		if (m->type == MSG_APPEND_RESP && !m->u.append_resp.success)
			rejects++;
		cl_deliver_at(&c, 0);
	}
	ASSERT_EQ(cl_status(&c, 0).role, RAFT_LEADER);
	cl_run(&c, 3);
	cl_assert_logs_equal(&c, 0);
	ASSERT_GE(rejects, 1u);
	ASSERT_LE(rejects, 2u); /* one entry at a time would take 7 */
	cl_free(&c);
}

static size_t count_appends_with_entries(const struct cluster *c, keel_node_id to)
{
	size_t n = 0;
	for (size_t k = 0; k < c->q_count; k++) {
		const struct msg *m = &c->q[k].m;
		n += m->type == MSG_APPEND && m->to == to && m->u.append.entry_count > 0;
	}
	return n;
}

/* At most inflight_appends_max appends are in flight to a follower that
 * does not answer; each append respects the entry and byte bounds. */
TEST(bounded_inflight_pipelining_and_byte_bound)
{
	struct cluster c;
	cl_init(&c, 3, 0, 31);
	set_options(&c, 1, 0, 4);
	cl_elect(&c, 0);
	cl_run(&c, 2);
	for (int i = 0; i < 20; i++)
		cl_propose(&c, 0, "x");
	ASSERT_EQ(count_appends_with_entries(&c, 2), 4u);
	ASSERT_EQ(count_appends_with_entries(&c, 3), 4u);
	cl_settle(&c); /* answers free the window: the rest follows */
	cl_run(&c, 3);
	ASSERT_U64_EQ(cl_status(&c, 2).commit, cl_status(&c, 0).last_index);
	cl_free(&c);

	/* bytes: 1000-byte entries, 2500 bytes per append -> 2 per append;
	 * a 3000-byte entry still goes, alone */
	cl_init(&c, 2, 0, 37);
	set_options(&c, 0, 2500, 0);
	cl_elect(&c, 0);
	cl_run(&c, 2);
	cl_isolate(&c, 0, true);
	static uint8_t big[3000];
	uint64_t idx;
	for (int i = 0; i < 6; i++)
		ASSERT_EQ(raft_propose(c.n[0].r, ENTRY_COMMAND, big, 1000, &idx), 0);
	ASSERT_EQ(raft_propose(c.n[0].r, ENTRY_COMMAND, big, 3000, &idx), 0);
	cl_drain(&c, &c.n[0]);
	cl_isolate(&c, 0, false);
	cl_drop_all(&c);
	size_t seen = 0;
	for (int guard = 0; guard < 100 && cl_status(&c, 1).last_index < idx; guard++) {
		cl_tick(&c, 0);
		while (c.q_count > 0) {
			const struct msg *m = &c.q[0].m;
			if (m->type == MSG_APPEND && m->u.append.entry_count > 0) {
				uint64_t bytes = 0;
				for (uint32_t e = 0; e < m->u.append.entry_count; e++)
					bytes += m->u.append.entries[e].data_bytes;
				ASSERT_TRUE(bytes <= 2500 || m->u.append.entry_count == 1);
				seen++;
			}
			cl_deliver_at(&c, 0);
		}
	}
	ASSERT_U64_EQ(cl_status(&c, 1).last_index, idx);
	ASSERT_GE(seen, 4u);
	cl_free(&c);
}

/* A heartbeat carries commit = min(leader commit, follower match). */
TEST(heartbeat_commit_bounded_by_match)
{
	struct cluster c;
	cl_init(&c, 3, 0, 41);
	cl_elect(&c, 0);
	cl_run(&c, 2);
	cl_isolate(&c, 2, true);
	cl_propose(&c, 0, "a");
	cl_run(&c, 2);
	cl_isolate(&c, 2, false);
	uint64_t commit = cl_status(&c, 0).commit;
	cl_tick(&c, 0);
	int k = cl_find(&c, MSG_APPEND, 1, 3);
	ASSERT_GE(k, 0);
	const struct msg *m = &c.q[k].m;
	ASSERT_EQ(m->u.append.entry_count, 0u);
	ASSERT_LT(m->u.append.commit, commit);
	ASSERT_U64_EQ(m->u.append.commit, m->u.append.prev_index);
	cl_free(&c);
}

/* A new leader's first entry is a no-op of its term. */
TEST(noop_at_term_start)
{
	struct cluster c;
	cl_init(&c, 3, 0, 43);
	for (int round = 0; round < 3; round++) {
		int l = cl_run_until_leader(&c, 200);
		ASSERT_GE(l, 0);
		cl_run(&c, 1);
		struct raft_status s = cl_status(&c, l);
		/* find the first entry of this term */
		uint64_t i = s.last_index;
		while (i > s.first_index && raft_term_at(c.n[l].r, i - 1) == s.term)
			i--;
		ASSERT_U64_EQ(raft_term_at(c.n[l].r, i), s.term);
		ASSERT_TRUE(c.n[l].applied_count > 0);
		bool found = false;
		for (size_t k = 0; k < c.n[l].applied_count; k++)
			if (c.n[l].applied[k].index == i) {
				ASSERT_EQ(c.n[l].applied[k].type, ENTRY_NOOP);
				found = true;
			}
		ASSERT_TRUE(found);
		cl_crash(&c, l);
		cl_run(&c, 1);
		cl_restart(&c, l);
	}
	cl_free(&c);
}

/* The leader sends appends before its own write is durable, but counts
 * itself toward commit only once raft_persisted says so. */
TEST(leader_counts_itself_only_once_durable)
{
	struct cluster c;
	cl_init(&c, 1, 0, 47);
	cl_elect(&c, 0);
	cl_run(&c, 1);
	c.n[0].manual_sync = true;
	uint64_t idx = cl_propose(&c, 0, "solo");
	cl_run(&c, 3);
	ASSERT_LT(cl_status(&c, 0).commit, idx);
	cl_sync(&c, 0);
	ASSERT_U64_EQ(cl_status(&c, 0).commit, idx);
	ASSERT_U64_EQ(cl_status(&c, 0).applied, idx);
	cl_free(&c);

	/* three voters, one down: the leader's own unsynced copy is not a vote */
	cl_init(&c, 3, 0, 53);
	cl_elect(&c, 0);
	cl_run(&c, 1);
	cl_crash(&c, 2);
	c.n[0].manual_sync = true;
	idx = cl_propose(&c, 0, "pair");
	ASSERT_GE(cl_find(&c, MSG_APPEND, 1, 2), 0); /* sent before durable */
	cl_settle(&c);
	ASSERT_GE(cl_status(&c, 1).last_index, idx);
	ASSERT_LT(cl_status(&c, 0).commit, idx);
	cl_sync(&c, 0);
	ASSERT_U64_EQ(cl_status(&c, 0).commit, idx);
	cl_free(&c);
}

/* An append ack leaves only after the follower's write is durable. */
TEST(append_ack_after_durable)
{
	struct cluster c;
	cl_init(&c, 3, 0, 59);
	cl_elect(&c, 0);
	cl_run(&c, 1);
	c.n[1].manual_sync = true;
	cl_propose(&c, 0, "d");
	int k = cl_find(&c, MSG_APPEND, 1, 2);
	ASSERT_GE(k, 0);
	cl_deliver_at(&c, (size_t)k);
	ASSERT_EQ(cl_find(&c, MSG_APPEND_RESP, 2, 1), -1);
	ASSERT_GT(c.n[1].pending_count, 0u);
	cl_crash(&c, 1); /* the unsynced entry is gone, never acknowledged */
	cl_restart(&c, 1);
	ASSERT_EQ(cl_find(&c, MSG_APPEND_RESP, 2, 1), -1);
	cl_free(&c);
}

/* Let every node but i forget its leader (they time out; what they send
 * is dropped). */
static void expire_leases(struct cluster *c, int i)
{
	for (int t = 0; t < 2 * (int)RAFT_ELECTION_TICKS_DEFAULT; t++)
		for (size_t j = 0; j < c->count; j++)
			if ((int)j != i)
				cl_tick(c, (int)j);
	cl_drop_all(c);
}

static const struct cluster *fig8_cluster; /* for the hold predicate */

/* Hold what would give S3 index 3, once S3 holds index 2 (before that, let
 * the probes through so S3 gets index 2). */
static bool hold_index3_to_3(const struct msg *m)
{
	return m->type == MSG_APPEND && m->to == 3 && m->u.append.entry_count > 0 &&
	       m->u.append.prev_index + m->u.append.entry_count >= 3 &&
	       raft_term_at(fig8_cluster->n[2].r, 2) != 0;
}

/*
 * Figure 8: S1 (term 4) replicates the term-2 entry at index 2 to a
 * majority; it must not count that as committed (§5.4.2). S1 then crashes
 * and S5 (whose index 2 is term 3) is elected and overwrites it.
 */
TEST(figure8_commit_only_current_term_by_counting)
{
	const uint64_t s12[] = { 1, 2 }, s34[] = { 1 }, s5[] = { 1, 3 };
	const uint64_t *logs[] = { s12, s12, s34, s34, s5 };
	size_t lens[] = { 2, 2, 1, 1, 2 };
	struct cluster c;
	cl_init_logs(&c, 5, 0, logs, lens, 3, 1);
	set_options(&c, 1, 0, 0);
	fig8_cluster = &c;
	c.cut[0][3] = c.cut[3][0] = c.cut[0][4] = c.cut[4][0] = true;
	ASSERT_GT(cl_tick_until_role_change(&c, 0, 100), 0);
	settle_hold(&c, hold_index3_to_3);
	ASSERT_EQ(cl_status(&c, 0).role, RAFT_LEADER);
	ASSERT_U64_EQ(cl_status(&c, 0).term, 4);
	/* index 2 (term 2) is now on S1, S2, S3: a majority, not committed */
	ASSERT_U64_EQ(raft_term_at(c.n[2].r, 2), 2);
	ASSERT_LT(cl_status(&c, 0).commit, 2);
	/* S1 crashes before its term-4 entry spreads; S5 wins term 5 */
	cl_crash(&c, 0);
	cl_drop_all(&c);
	memset(c.cut, 0, sizeof(c.cut));
	expire_leases(&c, 4);
	cl_elect(&c, 4);
	cl_run(&c, 3);
	ASSERT_U64_EQ(raft_term_at(c.n[2].r, 2), 3); /* overwritten: was never committed */
	cl_restart(&c, 0);
	cl_run(&c, 3);
	cl_assert_logs_equal(&c, 4);
	cl_free(&c);
}

/* ... and once the leader's own-term entry reaches a majority, everything
 * before it commits with it. */
TEST(figure8_current_term_entry_commits_earlier_ones)
{
	const uint64_t s12[] = { 1, 2 }, s3[] = { 1 };
	const uint64_t *logs[] = { s12, s3, s3 };
	size_t lens[] = { 2, 1, 1 };
	struct cluster c;
	cl_init_logs(&c, 3, 0, logs, lens, 3, 1);
	set_options(&c, 1, 0, 0);
	c.cut[0][2] = c.cut[2][0] = true;
	ASSERT_GT(cl_tick_until_role_change(&c, 0, 100), 0);
	cl_settle(&c);
	ASSERT_EQ(cl_status(&c, 0).role, RAFT_LEADER);
	ASSERT_U64_EQ(cl_status(&c, 0).commit, 3); /* 2 commits with 3 */
	cl_free(&c);
}

/* Figure 7: a term-8 leader brings followers (a)-(f) with missing, extra
 * and conflicting entries to its own log. */
TEST(figure7_followers_converge_to_leader)
{
	const uint64_t ld[] = { 1, 1, 1, 4, 4, 5, 5, 6, 6, 6 };
	const uint64_t a[] = { 1, 1, 1, 4, 4, 5, 5, 6, 6 };
	const uint64_t b[] = { 1, 1, 1, 4 };
	const uint64_t cc[] = { 1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6 };
	const uint64_t d[] = { 1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7 };
	const uint64_t e[] = { 1, 1, 1, 4, 4, 4, 4 };
	const uint64_t f[] = { 1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3 };
	const uint64_t *logs[] = { ld, a, b, cc, d, e, f };
	size_t lens[] = { 10, 9, 4, 11, 12, 7, 11 };
	struct cluster c;
	cl_init_logs(&c, 7, 0, logs, lens, 7, 1);
	cl_elect(&c, 0); /* a, b, e, f grant; c and d refuse */
	ASSERT_U64_EQ(cl_status(&c, 0).term, 8);
	cl_run(&c, 5);
	cl_assert_logs_equal(&c, 0);
	ASSERT_U64_EQ(raft_term_at(c.n[4].r, 11), 8); /* d's term-7 entries gone */
	ASSERT_U64_EQ(cl_status(&c, 4).commit, 11);
	cl_free(&c);
}

/* The log may start above index 1 (after compaction): restore with a
 * snapshot point on every node, elect, replicate, restart. */
TEST(log_starting_above_index_1)
{
	struct cluster c;
	memset(&c, 0, sizeof(c));
	c.count = 3;
	c.trace_hash = 1;
	struct membership m = cl_membership(3, 0);
	for (int i = 0; i < 3; i++) {
		struct cl_node *n = &c.n[i];
		n->id = (keel_node_id)i + 1;
		raft_options_default(&n->opt, n->id, 61 + (uint64_t)i);
		n->snap_index = 100;
		n->snap_term = 5;
		n->snap_m = m;
		n->dapplied = 100;
		n->hs.term = 5;
		n->hs.commit = 100;
		if (i < 2) { /* two nodes hold entries 101..102 */
			struct entry e[2] = {
				{ .term = 5, .index = 101, .type = ENTRY_NOOP },
				{ .term = 5, .index = 102, .type = ENTRY_COMMAND, .data = (const uint8_t *)"z", .data_bytes = 1 },
			};
			cl_dlog_write(n, e, 2);
		}
		cl_start(&c, i);
		struct raft_status s = cl_status(&c, i);
		ASSERT_U64_EQ(s.first_index, 101);
		ASSERT_U64_EQ(s.commit, 100);
		ASSERT_U64_EQ(s.membership.member_count, 3);
		ASSERT_U64_EQ(raft_term_at(c.n[i].r, 100), 5);
		ASSERT_U64_EQ(raft_term_at(c.n[i].r, 99), 0);
	}
	int l = cl_run_until_leader(&c, 200);
	ASSERT_GE(l, 0);
	ASSERT_NE(l, 2); /* node 3's log is behind */
	uint64_t idx = cl_propose(&c, l, "above");
	cl_run(&c, 3);
	cl_assert_logs_equal(&c, l);
	for (int i = 0; i < 3; i++)
		ASSERT_U64_EQ(cl_status(&c, i).applied, idx);
	cl_crash(&c, 2);
	cl_restart(&c, 2);
	ASSERT_U64_EQ(cl_status(&c, 2).first_index, 101);
	ASSERT_U64_EQ(cl_status(&c, 2).applied, idx);
	cl_run(&c, 3);
	cl_free(&c);
}

/* Messages from nowhere (stale terms, non-members, garbage ranges,
 * snapshots) are ignored without tripping an assertion. */
TEST(arbitrary_messages_are_ignored_safely)
{
	struct cluster c;
	cl_init(&c, 3, 0, 67);
	cl_elect(&c, 0);
	cl_run(&c, 2);
	uint64_t term = cl_status(&c, 0).term;
	struct entry bad[2] = { { .term = term, .index = 50, .type = ENTRY_NOOP },
				{ .term = term + 9, .index = 51, .type = ENTRY_NOOP } };
	struct msg ms[] = {
		append_msg(9, 2, term, 49, term, bad, 2, 1000),    /* beyond log, future term entry */
		append_msg(1, 2, term, 1, 1, bad, 2, 5),           /* non-consecutive */
		append_msg(2, 1, term, 0, 0, NULL, 0, 0),          /* append to leader, same term */
		{ .type = MSG_APPEND_RESP, .from = 9, .to = 1, .term = term },
		{ .type = MSG_APPEND_RESP, .from = 2, .to = 1, .term = term,
		  .u.append_resp = { .success = true, .match_index = 1000 } },
		{ .type = MSG_APPEND_RESP, .from = 2, .to = 1, .term = term,
		  .u.append_resp = { .success = false, .reject_index = 1000, .hint_index = 5000, .hint_term = 99 } },
		{ .type = MSG_VOTE_RESP, .from = 9, .to = 1, .term = term, .u.vote_resp = { .granted = true } },
		{ .type = MSG_SNAPSHOT, .from = 1, .to = 2, .term = term },
		{ .type = MSG_SNAPSHOT_RESP, .from = 2, .to = 1, .term = term },
		{ .type = MSG_TIMEOUT_NOW, .from = 3, .to = 2, .term = term - 1 },
		{ .type = MSG_PREVOTE, .from = 3, .to = 2, .term = 1 },
		{ .type = MSG_VOTE, .from = 3, .to = 2, .term = 0 },
	};
	for (size_t i = 0; i < sizeof(ms) / sizeof(ms[0]); i++) {
		int to = cl_idx(&c, ms[i].to);
		ASSERT_EQ(raft_step(c.n[to].r, &ms[i]), 0);
		cl_drain(&c, &c.n[to]);
		cl_check(&c);
	}
	struct msg wrong = { .type = MSG_APPEND, .from = 1, .to = 7, .term = term };
	ASSERT_EQ(raft_step(c.n[1].r, &wrong), KEEL_EINVAL);
	cl_run(&c, 5);
	ASSERT_EQ(cl_leader(&c), 0);
	uint64_t idx = cl_propose(&c, 0, "still fine");
	cl_run(&c, 2);
	ASSERT_U64_EQ(cl_status(&c, 2).applied, idx);
	cl_free(&c);
}

/* A commit index that moves without new entries is not a reason to write
 * (and sync): the hard state is reported only with term/vote changes or
 * alongside entries. */
TEST(commit_alone_does_not_write_hard_state)
{
	struct cluster c;
	cl_init(&c, 3, 0, 137);
	cl_elect(&c, 0);
	cl_run(&c, 2);
	c.n[1].manual_sync = true;
	cl_propose(&c, 0, "y");
	cl_settle(&c); /* node 2 got the entry (one write), commit comes later */
	cl_sync(&c, 1);
	cl_settle(&c);
	uint64_t before = c.n[1].pending_count;
	cl_tick(&c, 0); /* heartbeat carries the new commit */
	cl_settle(&c);
	ASSERT_EQ(c.n[1].pending_count, before + 1); /* a ready, but ... */
	ASSERT_FALSE(c.n[1].pending[c.n[1].pending_count - 1].has_hs);
	ASSERT_EQ(c.n[1].pending[c.n[1].pending_count - 1].entry_count, 0u);
	ASSERT_U64_EQ(cl_status(&c, 1).commit, cl_status(&c, 0).commit);
	cl_free(&c);
}

static struct msg reject_msg(uint64_t term, uint64_t reject, uint64_t hint,
			     uint64_t hint_term)
{
	struct msg m = { .type = MSG_APPEND_RESP, .from = 2, .to = 1, .term = term };
	m.u.append_resp.success = false;
	m.u.append_resp.reject_index = reject;
	m.u.append_resp.hint_index = hint;
	m.u.append_resp.hint_term = hint_term;
	return m;
}

/* A rejection the leader can prove stale (its prev index is at or below
 * what the follower is known to match) is ignored, in probe state too:
 * answering it would resend the same probe, and a network that duplicates
 * the stale rejection would turn that into a message storm. */
TEST(stale_reject_below_match_is_ignored_while_probing)
{
	struct cluster c;
	cl_init(&c, 2, 0, 41);
	cl_elect(&c, 0);
	for (int i = 0; i < 3; i++)
		cl_propose(&c, 0, "s");
	cl_settle(&c);
	uint64_t term = cl_status(&c, 0).term;
	uint64_t match = cl_status(&c, 1).last_index;
	ASSERT_U64_EQ(match, cl_status(&c, 0).last_index);
	ASSERT_GE(match, 3u);
	/* Node 2 rejects a prev beyond its match: node 1 probes at match + 1. */
	struct msg m = reject_msg(term, match + 1, match, term);
	ASSERT_EQ(raft_step(c.n[0].r, &m), 0);
	cl_drain(&c, &c.n[0]);
	ASSERT_EQ(cl_count(&c, MSG_APPEND, 1, 2), 1u);
	ASSERT_U64_EQ(c.q[cl_find(&c, MSG_APPEND, 1, 2)].m.u.append.prev_index, match);
	cl_drop_all(&c);
	/* An old rejection of prev == match (hint below it), duplicated: the
	 * follower has since matched it, so it is stale and sends nothing. */
	for (int dup = 0; dup < 3; dup++) {
		m = reject_msg(term, match, match - 1, term);
		ASSERT_EQ(raft_step(c.n[0].r, &m), 0);
		cl_drain(&c, &c.n[0]);
		ASSERT_EQ(cl_count(&c, MSG_APPEND, 1, 2), 0u);
	}
	/* The follower still catches up through the real probe's answer. */
	cl_run(&c, 3);
	cl_propose(&c, 0, "t");
	cl_settle(&c);
	cl_run(&c, 3);
	cl_assert_logs_equal(&c, 0);
	ASSERT_U64_EQ(cl_status(&c, 1).commit, cl_status(&c, 0).last_index);
	cl_free(&c);
}
