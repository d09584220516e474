/* test_raft_read.c: ReadIndex and leadership transfer rules. */
#include "raft_cluster.h"

static bool hold_entries(const struct msg *m)
{
	return m->type == MSG_APPEND && m->u.append.entry_count > 0;
}

static void settle_except(struct cluster *c, bool (*hold)(const struct msg *))
{
	for (int guard = 0; guard < CL_DELIVER_MAX; guard++) {
		size_t k = 0;
		while (k < c->q_count && hold(&c->q[k].m))
			k++;
		if (k == c->q_count)
			return;
		cl_deliver_at(c, k);
	}
}

/* A new leader answers no read before an entry of its own term is
 * committed, even with a quorum of heartbeat answers in hand. */
TEST(read_index_waits_for_term_commit)
{
	struct cluster c;
	cl_init(&c, 3, 0, 71);
	ASSERT_GT(cl_tick_until_role_change(&c, 0, 100), 0);
	settle_except(&c, hold_entries);
	ASSERT_EQ(cl_status(&c, 0).role, RAFT_LEADER);
	ASSERT_EQ(raft_read_index(c.n[0].r, 1), 0);
	cl_drain(&c, &c.n[0]);
	settle_except(&c, hold_entries);
	for (int t = 0; t < 3; t++) { /* more rounds, all answered */
		cl_tick(&c, 0);
		settle_except(&c, hold_entries);
	}
	ASSERT_EQ(c.n[0].read_count, 0u);
	cl_settle(&c); /* the no-op commits */
	cl_tick(&c, 0);
	cl_settle(&c);
	ASSERT_EQ(c.n[0].read_count, 1u);
	ASSERT_EQ(c.n[0].reads[0].err, 0);
	ASSERT_U64_EQ(c.n[0].reads[0].ctx, 1);
	/* read index covers the no-op, so every earlier write is visible */
	ASSERT_U64_EQ(c.n[0].reads[0].index, 2);
	cl_free(&c);
}

static bool is_heartbeat_resp(const struct msg *m)
{
	return m->type == MSG_APPEND_RESP;
}

/* A read needs a quorum to answer a heartbeat round started after it
 * arrived; answers to an earlier round do not count. */
TEST(read_index_waits_for_quorum_round_after_arrival)
{
	struct cluster c;
	cl_init(&c, 3, 0, 73);
	cl_elect(&c, 0);
	cl_run(&c, 2);
	uint64_t commit = cl_status(&c, 0).commit;
	/* round R goes out and is answered; the answers are held */
	cl_tick(&c, 0);
	settle_except(&c, is_heartbeat_resp);
	ASSERT_GE(cl_count(&c, MSG_APPEND_RESP, 0, 1), 2u);
	/* the read arrives; its own round is lost */
	ASSERT_EQ(raft_read_index(c.n[0].r, 9), 0);
	cl_drain(&c, &c.n[0]);
	for (size_t k = c.q_count; k-- > 0;)
		if (c.q[k].m.type == MSG_APPEND)
			cl_drop_at(&c, k);
	cl_settle(&c); /* round R's answers arrive: too old */
	ASSERT_EQ(c.n[0].read_count, 0u);
	/* a write after the read arrived does not move its index */
	uint64_t later = cl_propose(&c, 0, "after");
	cl_settle(&c);
	ASSERT_GE(cl_status(&c, 0).commit, later);
	ASSERT_EQ(c.n[0].read_count, 1u); /* acks carried the newer round */
	ASSERT_U64_EQ(c.n[0].reads[0].ctx, 9);
	ASSERT_U64_EQ(c.n[0].reads[0].index, commit);
	cl_free(&c);
}

/* Cut off from the followers, a leader never answers the read. */
TEST(read_index_needs_quorum)
{
	struct cluster c;
	cl_init(&c, 3, 0, 79);
	for (int i = 0; i < 3; i++) {
		c.n[i].opt.check_quorum = false; /* keep it leader */
		cl_crash(&c, i);
		cl_restart(&c, i);
	}
	cl_elect(&c, 0);
	cl_run(&c, 2);
	cl_isolate(&c, 0, true);
	ASSERT_EQ(raft_read_index(c.n[0].r, 5), 0);
	cl_drain(&c, &c.n[0]);
	for (int t = 0; t < 5; t++) {
		cl_tick(&c, 0);
		cl_settle(&c);
	}
	ASSERT_EQ(c.n[0].read_count, 0u);
	cl_isolate(&c, 0, false);
	cl_tick(&c, 0);
	cl_settle(&c);
	ASSERT_EQ(c.n[0].read_count, 1u);
	ASSERT_EQ(c.n[0].reads[0].err, 0);
	cl_free(&c);
}

/* A single voter answers at once once its term has a committed entry. */
TEST(read_index_single_voter_immediate)
{
	struct cluster c;
	cl_init(&c, 1, 0, 83);
	cl_elect(&c, 0);
	cl_run(&c, 1);
	uint64_t commit = cl_status(&c, 0).commit;
	ASSERT_EQ(raft_read_index(c.n[0].r, 3), 0);
	cl_drain(&c, &c.n[0]);
	ASSERT_EQ(c.n[0].read_count, 1u);
	ASSERT_U64_EQ(c.n[0].reads[0].index, commit);
	cl_free(&c);
}

TEST(read_index_errors_not_leader_and_busy)
{
	struct cluster c;
	cl_init(&c, 3, 0, 89);
	cl_elect(&c, 0);
	cl_run(&c, 2);
	ASSERT_EQ(raft_read_index(c.n[1].r, 1), KEEL_ENOTLEADER);
	cl_isolate(&c, 0, true);
	int rc = 0;
	uint32_t n = 0;
	for (; n < RAFT_READS_PENDING_MAX + 1 && rc == 0; n++)
		rc = raft_read_index(c.n[0].r, n);
	ASSERT_EQ(rc, KEEL_EBUSY);
	ASSERT_EQ(n, RAFT_READS_PENDING_MAX + 1);
	cl_drain(&c, &c.n[0]);
	/* a higher term deposes it: every pending read fails */
	struct msg m = { .type = MSG_APPEND, .from = 2, .to = 1,
			 .term = cl_status(&c, 0).term + 1 };
	ASSERT_EQ(raft_step(c.n[0].r, &m), 0);
	cl_drain(&c, &c.n[0]);
	ASSERT_EQ(cl_status(&c, 0).role, RAFT_FOLLOWER);
	ASSERT_EQ(c.n[0].read_count, CL_READS_MAX);
	for (size_t i = 0; i < c.n[0].read_count; i++)
		ASSERT_EQ(c.n[0].reads[i].err, KEEL_ELEADERSHIP);
	cl_free(&c);
}

/* Transfer to a caught-up follower: it campaigns at once (through the
 * other follower's lease) and wins; proposals meanwhile get KEEL_ESTATE. */
TEST(leadership_transfer_to_caught_up_follower)
{
	struct cluster c;
	cl_init(&c, 3, 0, 97);
	cl_elect(&c, 0);
	cl_run(&c, 2);
	uint64_t term = cl_status(&c, 0).term;
	ASSERT_EQ(raft_transfer_leader(c.n[0].r, 3), 0);
	uint64_t idx;
	ASSERT_EQ(raft_propose(c.n[0].r, ENTRY_COMMAND, (const uint8_t *)"x", 1, &idx),
		  KEEL_ESTATE);
	cl_drain(&c, &c.n[0]);
	ASSERT_GE(cl_find(&c, MSG_TIMEOUT_NOW, 1, 3), 0);
	cl_settle(&c);
	ASSERT_EQ(cl_leader(&c), 2);
	ASSERT_U64_EQ(cl_status(&c, 2).term, term + 1);
	ASSERT_U64_EQ(cl_status(&c, 0).leader, 3);
	ASSERT_U64_EQ(cl_status(&c, 1).leader, 3);
	cl_free(&c);
}

/* A lagging target is caught up first: TimeoutNow waits for its match. */
TEST(leadership_transfer_catches_up_target_first)
{
	struct cluster c;
	cl_init(&c, 3, 0, 101);
	cl_elect(&c, 0);
	cl_run(&c, 2);
	c.cut[2][0] = true; /* the leader never hears that node 3 caught up */
	for (int i = 0; i < 5; i++)
		cl_propose(&c, 0, "lag");
	cl_run(&c, 2);
	uint64_t last = cl_status(&c, 0).last_index;
	ASSERT_EQ(raft_transfer_leader(c.n[0].r, 3), 0);
	cl_drain(&c, &c.n[0]);
	ASSERT_EQ(cl_find(&c, MSG_TIMEOUT_NOW, 1, 3), -1);
	c.cut[2][0] = false;
	for (int t = 0; t < 5 && cl_leader(&c) != 2; t++)
		cl_run(&c, 1);
	ASSERT_EQ(cl_leader(&c), 2);
	ASSERT_GE(cl_status(&c, 2).commit, last);
	cl_free(&c);
}

/* A transfer to an unreachable target aborts after an election timeout,
 * and proposals work again. Bad targets are refused. */
TEST(leadership_transfer_aborts_after_election_timeout)
{
	struct cluster c;
	cl_init(&c, 3, 1, 103);
	cl_elect(&c, 0);
	cl_run(&c, 2);
	ASSERT_EQ(raft_transfer_leader(c.n[0].r, 1), KEEL_EINVAL);  /* self */
	ASSERT_EQ(raft_transfer_leader(c.n[0].r, 4), KEEL_EINVAL);  /* learner */
	ASSERT_EQ(raft_transfer_leader(c.n[0].r, 9), KEEL_EINVAL);  /* stranger */
	ASSERT_EQ(raft_transfer_leader(c.n[1].r, 3), KEEL_ENOTLEADER);
	cl_crash(&c, 2);
	ASSERT_EQ(raft_transfer_leader(c.n[0].r, 3), 0);
	uint64_t idx;
	ASSERT_EQ(raft_propose(c.n[0].r, ENTRY_COMMAND, (const uint8_t *)"x", 1, &idx),
		  KEEL_ESTATE);
	cl_run(&c, (int)RAFT_ELECTION_TICKS_DEFAULT + 1);
	ASSERT_EQ(cl_leader(&c), 0);
	ASSERT_EQ(raft_propose(c.n[0].r, ENTRY_COMMAND, (const uint8_t *)"x", 1, &idx), 0);
	cl_free(&c);
}
