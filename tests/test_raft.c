/* test_raft.c: core/raft election and voting rules, each in a test named
 * after it (replication in test_raft_replication.c, reads and transfer in
 * test_raft_read.c). */
#include "raft_cluster.h"

TEST(smoke_three_nodes_elect_and_commit)
{
	struct cluster c;
	cl_init(&c, 3, 0, 1);
	int l = cl_run_until_leader(&c, 100);
	ASSERT_GE(l, 0);
	uint64_t idx = cl_propose(&c, l, "hello");
	cl_run(&c, 3);
	for (int i = 0; i < 3; i++) {
		struct raft_status s = cl_status(&c, i);
		ASSERT_GE(s.commit, idx);
		ASSERT_GE(s.applied, idx);
	}
	cl_free(&c);
}

/* The ticks an isolated follower waits before campaigning lie in
 * [E, 2E), vary with the seed, and repeat for the same seed. */
TEST(election_with_seeded_randomized_timeouts)
{
	int seen[2 * RAFT_ELECTION_TICKS_DEFAULT + 1] = { 0 };
	int distinct = 0;
	for (uint64_t seed = 1; seed <= 40; seed++) {
		int waits[2];
		for (int rep = 0; rep < 2; rep++) {
			struct cluster c;
			cl_init(&c, 3, 0, seed);
			waits[rep] = cl_tick_until_role_change(&c, 0, 100);
			cl_free(&c);
		}
		ASSERT_EQ(waits[0], waits[1]); /* same seed, same timeout */
		ASSERT_GE(waits[0], (int)RAFT_ELECTION_TICKS_DEFAULT);
		ASSERT_LT(waits[0], 2 * (int)RAFT_ELECTION_TICKS_DEFAULT);
		if (seen[waits[0]]++ == 0)
			distinct++;
	}
	ASSERT_GE(distinct, 4); /* jitter, not a constant */
}

/* Five nodes, no faults: a leader emerges, and split votes resolve. */
TEST(election_five_nodes_one_leader)
{
	for (uint64_t seed = 1; seed <= 20; seed++) {
		struct cluster c;
		cl_init(&c, 5, 0, seed);
		int l = cl_run_until_leader(&c, 200);
		ASSERT_GE(l, 0);
		cl_run(&c, 30);
		ASSERT_EQ(cl_leader(&c), l); /* stable once elected */
		cl_free(&c);
	}
}

/* §5.4.1: a voter refuses a candidate whose log is behind its own. */
TEST(vote_only_for_up_to_date_log)
{
	const uint64_t a[] = { 1, 2, 2 };      /* node 1: last (3, t2) */
	const uint64_t b[] = { 1, 2, 2, 2 };   /* node 2: last (4, t2) */
	const uint64_t d[] = { 1, 1, 1, 1, 1 }; /* node 3: last (5, t1) */
	const uint64_t *logs[] = { a, b, d };
	size_t lens[] = { 3, 4, 5 };
	struct cluster c;
	cl_init_logs(&c, 3, 0, logs, lens, 2, 1);
	c.n[0].opt.prevote = false;
	cl_crash(&c, 0);
	cl_restart(&c, 0);
	/* node 1 campaigns for term 3 */
	ASSERT_GT(cl_tick_until_role_change(&c, 0, 100), 0);
	ASSERT_EQ(cl_status(&c, 0).role, RAFT_CANDIDATE);
	cl_settle(&c);
	/* node 2 has a longer log of the same last term: refuses; node 3 has
	 * a longer log of an older term: grants. */
	ASSERT_U64_EQ(cl_status(&c, 1).vote, 0);
	ASSERT_U64_EQ(cl_status(&c, 2).vote, 1);
	ASSERT_EQ(cl_status(&c, 0).role, RAFT_LEADER);
	cl_free(&c);

	/* and the other way round: node 3 (last term 1) cannot win */
	cl_init_logs(&c, 3, 0, logs, lens, 2, 1);
	c.n[2].opt.prevote = false;
	cl_crash(&c, 2);
	cl_restart(&c, 2);
	ASSERT_GT(cl_tick_until_role_change(&c, 2, 100), 0);
	cl_settle(&c);
	ASSERT_U64_EQ(cl_status(&c, 0).vote, 0);
	ASSERT_U64_EQ(cl_status(&c, 1).vote, 0);
	ASSERT_NE(cl_status(&c, 2).role, RAFT_LEADER);
	cl_free(&c);
}

/* A granted vote (and a candidate's own vote request) leaves only after the
 * term and vote are durable; a crash before that sync forgets the vote and
 * nothing was sent. */
TEST(term_and_vote_durable_before_vote_leaves)
{
	struct cluster c;
	cl_init(&c, 3, 0, 7);
	for (int i = 0; i < 3; i++) {
		c.n[i].opt.prevote = false;
		cl_crash(&c, i);
		cl_restart(&c, i);
	}
	c.n[0].manual_sync = true;
	c.n[1].manual_sync = true;
	ASSERT_GT(cl_tick_until_role_change(&c, 0, 100), 0);
	/* the candidate's requests wait for its own term/vote sync */
	ASSERT_EQ(cl_find(&c, MSG_VOTE, 1, 0), -1);
	ASSERT_EQ(c.n[0].pending_count, 1u);
	ASSERT_EQ(c.n[0].pending[0].msg_count, 2u);
	ASSERT_TRUE(c.n[0].pending[0].has_hs);
	ASSERT_U64_EQ(c.n[0].pending[0].hs.vote, 1);
	cl_sync(&c, 0);
	int k = cl_find(&c, MSG_VOTE, 1, 2);
	ASSERT_GE(k, 0);
	cl_deliver_at(&c, (size_t)k);
	/* node 2 granted, but the grant is held until its vote is durable */
	ASSERT_U64_EQ(cl_status(&c, 1).vote, 1);
	ASSERT_EQ(cl_find(&c, MSG_VOTE_RESP, 2, 1), -1);
	ASSERT_EQ(c.n[1].pending_count, 1u);
	ASSERT_U64_EQ(c.n[1].pending[0].hs.vote, 1);
	/* crash before the sync: the vote was never promised to anyone */
	cl_crash(&c, 1);
	cl_restart(&c, 1);
	ASSERT_U64_EQ(cl_status(&c, 1).vote, 0);
	ASSERT_EQ(cl_find(&c, MSG_VOTE_RESP, 2, 1), -1);
	ASSERT_EQ(cl_status(&c, 0).role, RAFT_CANDIDATE);
	cl_free(&c);
}

/* Pre-vote: an isolated node never bumps its term; on rejoining it does
 * not depose the healthy leader. */
TEST(prevote_partitioned_candidate_does_not_disrupt)
{
	struct cluster c;
	cl_init(&c, 3, 0, 3);
	int l = cl_run_until_leader(&c, 100);
	ASSERT_GE(l, 0);
	uint64_t term = cl_status(&c, l).term;
	int x = (l + 1) % 3;
	cl_isolate(&c, x, true);
	cl_run(&c, 100);
	ASSERT_U64_EQ(cl_status(&c, x).term, term); /* E3: term not bumped */
	ASSERT_EQ(cl_status(&c, x).role, RAFT_PRECANDIDATE);
	cl_isolate(&c, x, false);
	cl_run(&c, 50);
	ASSERT_EQ(cl_leader(&c), l);
	ASSERT_U64_EQ(cl_status(&c, l).term, term);
	ASSERT_EQ(cl_status(&c, x).role, RAFT_FOLLOWER);
	ASSERT_U64_EQ(cl_status(&c, x).leader, c.n[l].id);
	cl_free(&c);
}

/* Without pre-vote the same partition does disrupt (the test above can
 * tell the difference). */
TEST(prevote_off_partitioned_candidate_bumps_term)
{
	struct cluster c;
	cl_init(&c, 3, 0, 3);
	for (int i = 0; i < 3; i++) {
		c.n[i].opt.prevote = false;
		c.n[i].opt.check_quorum = false;
		cl_crash(&c, i);
		cl_restart(&c, i);
	}
	int l = cl_run_until_leader(&c, 100);
	uint64_t term = cl_status(&c, l).term;
	int x = (l + 1) % 3;
	cl_isolate(&c, x, true);
	cl_run(&c, 100);
	ASSERT_GT(cl_status(&c, x).term, term);
	cl_isolate(&c, x, false);
	cl_run(&c, 50);
	ASSERT_GT(cl_status(&c, cl_leader(&c)).term, term);
	cl_free(&c);
}

/* A pre-vote is refused to a stale log and while a leader is heard. */
TEST(prevote_granted_only_to_up_to_date_log_without_leader)
{
	const uint64_t a[] = { 1 }, b[] = { 1, 2 };
	const uint64_t *logs[] = { a, b, b };
	size_t lens[] = { 1, 2, 2 };
	struct cluster c;
	cl_init_logs(&c, 3, 0, logs, lens, 2, 1);
	ASSERT_GT(cl_tick_until_role_change(&c, 0, 100), 0);
	ASSERT_EQ(cl_status(&c, 0).role, RAFT_PRECANDIDATE);
	ASSERT_U64_EQ(cl_status(&c, 0).term, 2);
	ASSERT_EQ(cl_count(&c, MSG_PREVOTE, 1, 0), 2u);
	cl_settle(&c);
	/* both refused (their logs are ahead), nobody's term moved */
	ASSERT_EQ(cl_status(&c, 0).role, RAFT_FOLLOWER);
	for (int i = 0; i < 3; i++)
		ASSERT_U64_EQ(cl_status(&c, i).term, 2);
	cl_free(&c);

	/* now an up-to-date log, but node 3 hears from a leader (node 2) */
	cl_init(&c, 3, 0, 5);
	cl_elect(&c, 1);
	cl_run(&c, 2);
	uint64_t term = cl_status(&c, 1).term;
	cl_isolate(&c, 0, true);
	c.cut[0][2] = false; /* node 1 can reach node 3 only */
	c.cut[2][0] = false;
	for (int t = 0; t < 25; t++) {
		cl_tick(&c, 0);
		cl_tick(&c, 1);
		cl_tick(&c, 2);
		cl_settle(&c);
	}
	ASSERT_EQ(cl_leader(&c), 1);
	ASSERT_U64_EQ(cl_status(&c, 1).term, term);
	ASSERT_U64_EQ(cl_status(&c, 2).term, term);
	ASSERT_U64_EQ(cl_status(&c, 0).term, term);
	cl_free(&c);
}

/* Check-quorum: a leader cut off from a majority steps down within about
 * an election timeout, and its reads fail. */
TEST(check_quorum_leader_steps_down)
{
	struct cluster c;
	cl_init(&c, 3, 0, 11);
	int l = cl_run_until_leader(&c, 100);
	cl_run(&c, 3);
	cl_isolate(&c, l, true);
	ASSERT_EQ(raft_read_index(c.n[l].r, 77), 0);
	cl_drain(&c, &c.n[l]);
	/* one election timeout after the last answer, not two */
	for (int t = 0; t < (int)RAFT_ELECTION_TICKS_DEFAULT; t++)
		cl_tick(&c, l);
	ASSERT_EQ(cl_status(&c, l).role, RAFT_FOLLOWER);
	ASSERT_U64_EQ(cl_status(&c, l).leader, 0);
	ASSERT_EQ(c.n[l].read_count, 1u);
	ASSERT_EQ(c.n[l].reads[0].err, KEEL_ELEADERSHIP);
	ASSERT_U64_EQ(c.n[l].reads[0].ctx, 77);
	cl_free(&c);
}

/* Late answers to old heartbeat rounds (a slow disk, delayed or duplicated
 * packets) do not keep a leader that nobody hears any more in place. */
TEST(check_quorum_ignores_answers_to_old_rounds)
{
	struct cluster c;
	cl_init(&c, 3, 0, 127);
	cl_elect(&c, 0);
	cl_run(&c, 3);
	cl_tick(&c, 0);
	/* deliver the round to the followers; keep their answers */
	for (size_t k = c.q_count; k-- > 0;)
		if (c.q[k].m.type == MSG_APPEND)
			cl_deliver_at(&c, k);
	size_t held = c.q_count;
	ASSERT_GE(held, 2u);
	c.cut[0][1] = c.cut[0][2] = true; /* nobody hears the leader now */
	int t = 0;
	for (; t < 3 * (int)RAFT_ELECTION_TICKS_DEFAULT &&
	       cl_status(&c, 0).role == RAFT_LEADER; t++) {
		cl_tick(&c, 0);
		for (size_t k = 0; k < held; k++) { /* a copy of each old answer */
			cl_duplicate(&c, k);
			cl_deliver_at(&c, c.q_count - 1);
		}
	}
	ASSERT_EQ(cl_status(&c, 0).role, RAFT_FOLLOWER);
	ASSERT_LE(t, (int)RAFT_ELECTION_TICKS_DEFAULT + 1);
	cl_free(&c);
}

/* A follower that hears from its leader ignores a vote request for a
 * higher term (no term bump, no vote), unless it comes from a transfer. */
TEST(check_quorum_follower_in_lease_ignores_votes)
{
	struct cluster c;
	cl_init(&c, 3, 0, 13);
	cl_elect(&c, 0);
	cl_run(&c, 2);
	uint64_t term = cl_status(&c, 1).term;
	struct msg m = { .type = MSG_VOTE, .from = 3, .to = 2, .term = term + 5 };
	m.u.vote.last_log_index = 100;
	m.u.vote.last_log_term = term + 4;
	ASSERT_EQ(raft_step(c.n[1].r, &m), 0);
	cl_drain(&c, &c.n[1]);
	ASSERT_U64_EQ(cl_status(&c, 1).term, term);
	ASSERT_U64_EQ(cl_status(&c, 1).vote, 1); /* its vote for the leader */
	ASSERT_EQ(cl_find(&c, MSG_VOTE_RESP, 2, 3), -1);
	m.u.vote.transfer = true;
	ASSERT_EQ(raft_step(c.n[1].r, &m), 0);
	cl_drain(&c, &c.n[1]);
	ASSERT_U64_EQ(cl_status(&c, 1).term, term + 5);
	ASSERT_U64_EQ(cl_status(&c, 1).vote, 3);
	cl_free(&c);
}

/* A leader partitioned away (check-quorum off, so only terms can depose
 * it) steps down when it meets the new leader's term, and its
 * uncommitted entry is replaced. */
TEST(stale_leader_steps_down)
{
	struct cluster c;
	cl_init(&c, 3, 0, 17);
	for (int i = 0; i < 3; i++) {
		c.n[i].opt.check_quorum = false;
		cl_crash(&c, i);
		cl_restart(&c, i);
	}
	cl_elect(&c, 0);
	cl_run(&c, 2);
	uint64_t old_term = cl_status(&c, 0).term;
	cl_isolate(&c, 0, true);
	uint64_t lost = cl_propose(&c, 0, "lost");
	cl_run(&c, 60);
	ASSERT_EQ(cl_status(&c, 0).role, RAFT_LEADER); /* still thinks so */
	int l = cl_leader(&c);
	ASSERT_NE(l, 0);
	uint64_t kept = cl_propose(&c, l, "kept");
	ASSERT_U64_EQ(kept, lost + 1); /* new no-op took the lost index */
	cl_isolate(&c, 0, false);
	cl_run(&c, 5);
	ASSERT_EQ(cl_status(&c, 0).role, RAFT_FOLLOWER);
	ASSERT_GT(cl_status(&c, 0).term, old_term);
	ASSERT_U64_EQ(cl_status(&c, 0).leader, c.n[l].id);
	ASSERT_NE(raft_term_at(c.n[0].r, lost), old_term);
	cl_assert_logs_equal(&c, l);
	cl_free(&c);
}

/* Every node tracks the leader it believes in (status and ready). */
TEST(leader_tracking)
{
	struct cluster c;
	cl_init(&c, 5, 1, 19);
	int l = cl_run_until_leader(&c, 200);
	cl_run(&c, 3);
	for (int i = 0; i < 6; i++)
		ASSERT_U64_EQ(cl_status(&c, i).leader, c.n[l].id);
	/* a ready reports the change */
	cl_crash(&c, 5);
	cl_restart(&c, 5);
	ASSERT_U64_EQ(cl_status(&c, 5).leader, 0);
	cl_run(&c, 2);
	ASSERT_U64_EQ(cl_status(&c, 5).leader, c.n[l].id);
	cl_free(&c);
}

/* Learners get the log but never campaign, never grant a vote and are
 * not counted in quorums. */
TEST(learners_dont_vote)
{
	struct cluster c;
	cl_init(&c, 2, 1, 23);
	/* the learner alone, ticked forever, never campaigns */
	ASSERT_EQ(cl_tick_until_role_change(&c, 2, 200), -1);
	cl_elect(&c, 0);
	uint64_t idx = cl_propose(&c, 0, "x");
	cl_run(&c, 2);
	ASSERT_GE(cl_status(&c, 2).applied, idx); /* learner got the log */
	cl_isolate(&c, 2, true); /* knowing it is a learner, still never */
	ASSERT_EQ(cl_tick_until_role_change(&c, 2, 200), -1);
	cl_isolate(&c, 2, false);
	/* voter 2 down: leader + learner are not a quorum of {1, 2} */
	cl_run(&c, 3);
	cl_crash(&c, 1);
	int l = cl_leader(&c);
	ASSERT_EQ(l, 0);
	uint64_t idx2 = cl_propose(&c, 0, "y");
	cl_run(&c, 2);
	ASSERT_GE(raft_term_at(c.n[2].r, idx2), 1); /* learner has it */
	ASSERT_LT(cl_status(&c, 0).commit, idx2);    /* still not committed */
	/* the learner answers a vote request on the log rule alone (E2: a
	 * candidate's newer membership may list it as a voter) */
	uint64_t term = cl_status(&c, 2).term;
	struct msg m = { .type = MSG_VOTE, .from = 2, .to = 3, .term = term + 1 };
	m.u.vote.last_log_index = 100;
	m.u.vote.last_log_term = term + 1;
	m.u.vote.transfer = true;
	ASSERT_EQ(raft_step(c.n[2].r, &m), 0);
	cl_drain(&c, &c.n[2]);
	int k = cl_find(&c, MSG_VOTE_RESP, 3, 2);
	ASSERT_GE(k, 0);
	ASSERT_TRUE(c.q[k].m.u.vote_resp.granted);
	ASSERT_U64_EQ(cl_status(&c, 2).role, RAFT_FOLLOWER);
	cl_drop_all(&c);
	/* but a learner's grant never counts (E5): voter 1 alone with the
	 * learner's vote does not win */
	cl_isolate(&c, 0, true);
	for (int t = 0; t < 100 && cl_status(&c, 0).role != RAFT_CANDIDATE; t++) {
		cl_tick(&c, 0);
		if (cl_status(&c, 0).role == RAFT_PRECANDIDATE) {
			struct msg g = { .type = MSG_PREVOTE_RESP, .from = 3, .to = 1,
					 .term = cl_status(&c, 0).term + 1 };
			g.u.vote_resp.granted = true;
			ASSERT_EQ(raft_step(c.n[0].r, &g), 0);
			cl_drain(&c, &c.n[0]);
		}
	}
	ASSERT_TRUE(cl_status(&c, 0).role == RAFT_PRECANDIDATE ||
		    cl_status(&c, 0).role == RAFT_FOLLOWER);
	cl_drop_all(&c);
	cl_free(&c);
}

/* The same seed gives the same run, message for message. */
TEST(determinism_same_seed_same_outputs)
{
	uint64_t h[3];
	uint64_t seeds[3] = { 5, 5, 6 };
	for (int k = 0; k < 3; k++) {
		struct cluster c;
		cl_init(&c, 5, 0, seeds[k]);
		cl_run_until_leader(&c, 200);
		int l = cl_leader(&c);
		for (int i = 0; i < 20; i++)
			cl_propose(&c, l, "w");
		cl_isolate(&c, l, true);
		cl_run(&c, 60);
		cl_isolate(&c, l, false);
		cl_run(&c, 30);
		h[k] = c.trace_hash;
		struct raft_status s = cl_status(&c, 0);
		h[k] = cl_hash(h[k], &s.term, sizeof(s.term));
		h[k] = cl_hash(h[k], &s.commit, sizeof(s.commit));
		cl_free(&c);
	}
	ASSERT_U64_EQ(h[0], h[1]);
	ASSERT_NE(h[0], h[2]);
}

/* A single voter elects itself without asking anyone, so its new term may
 * not be durable yet: its appends (to learners) wait for its no-op's sync.
 * Otherwise a crash lets it lead the same term twice with different
 * entries, and a learner keeps the first incarnation's. */
TEST(single_voter_appends_wait_for_durable_term)
{
	struct cluster c;
	cl_init(&c, 1, 1, 113);
	c.n[0].manual_sync = true;
	ASSERT_GT(cl_tick_until_role_change(&c, 0, 100), 0);
	ASSERT_EQ(cl_status(&c, 0).role, RAFT_LEADER);
	uint64_t idx = cl_propose(&c, 0, "first");
	ASSERT_EQ(cl_find(&c, MSG_APPEND, 1, 2), -1); /* held */
	cl_crash(&c, 0);                              /* term never synced */
	c.n[0].manual_sync = false;
	cl_restart(&c, 0);
	cl_elect(&c, 0);
	ASSERT_U64_EQ(cl_propose(&c, 0, "second"), idx);
	cl_run(&c, 3);
	cl_assert_logs_equal(&c, 0);
	ASSERT_U64_EQ(cl_status(&c, 1).applied, idx);
	cl_free(&c);
}
