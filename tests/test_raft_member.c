/* test_raft_member.c: core/raft membership changes (raft_change): rules
 * M1..M6 of core/raft.h, id assignment, idempotent re-add, the removed
 * leader's step-down and a removed follower. Each rule's test fails when
 * the rule is taken out. */
#include "raft_cluster.h"

/* Deliver everything except appends and their answers (so a new leader's
 * no-op does not commit). */
static void settle_votes_only(struct cluster *c)
{
	for (int guard = 0; guard < CL_DELIVER_MAX; guard++) {
		size_t k = 0;
		while (k < c->q_count && (c->q[k].m.type == MSG_APPEND ||
					  c->q[k].m.type == MSG_APPEND_RESP))
			k++;
		if (k == c->q_count)
			return;
		cl_deliver_at(c, k);
	}
	ASSERT_TRUE(false);
}

static void elect_settled(struct cluster *c, int i)
{
	cl_elect(c, i);
	cl_run(c, 2);
}

static uint32_t voters(struct membership mm)
{
	const struct membership *m = &mm;
	uint32_t n = 0;
	for (uint32_t i = 0; i < m->member_count; i++)
		n += m->members[i].role == MEMBER_VOTER;
	return n;
}

static int role_of(struct membership mm, keel_node_id id)
{
	const struct membership *m = &mm;
	for (uint32_t i = 0; i < m->member_count; i++)
		if (m->members[i].id == id)
			return (int)m->members[i].role;
	return 0;
}

TEST(bootstrap_sets_next_id_and_helper)
{
	struct cluster c;
	cl_init(&c, 3, 1, 1);
	ASSERT_U64_EQ(cl_status(&c, 0).membership.next_id, 5);
	struct membership m = cl_membership(2, 0);
	ASSERT_U64_EQ(membership_next_id(&m), 3);
	m.next_id = 9;
	ASSERT_U64_EQ(membership_next_id(&m), 9);
	cl_free(&c);
}

TEST(change_errors)
{
	struct cluster c;
	cl_init(&c, 3, 0, 2);
	uint64_t index;
	keel_node_id id;
	ASSERT_EQ(cl_change(&c, 1, MEMBER_ADD_LEARNER, 0, "", &index, &id),
		  KEEL_ENOTLEADER);
	elect_settled(&c, 0);
	ASSERT_EQ(cl_change(&c, 0, MEMBER_REMOVE, 9, NULL, &index, &id), KEEL_ENOTFOUND);
	ASSERT_EQ(cl_change(&c, 0, MEMBER_PROMOTE, 9, NULL, &index, &id), KEEL_ENOTFOUND);
	ASSERT_EQ(cl_change(&c, 0, MEMBER_PROMOTE, 2, NULL, &index, &id), KEEL_EEXIST);
	ASSERT_EQ(cl_change(&c, 0, MEMBER_ADD_LEARNER, 2, NULL, &index, &id), KEEL_EEXIST);
	ASSERT_EQ(cl_change(&c, 0, 77, 2, NULL, &index, &id), KEEL_EINVAL);
	struct member_change bad = { .kind = MEMBER_ADD_LEARNER };
	memset(bad.peer_addr, 'x', sizeof(bad.peer_addr)); /* no NUL */
	ASSERT_EQ(raft_change(c.n[0].r, &bad, &index, &id), KEEL_EINVAL);
	ASSERT_EQ(raft_transfer_leader(c.n[0].r, 2), 0);
	ASSERT_EQ(cl_change(&c, 0, MEMBER_ADD_LEARNER, 0, NULL, &index, &id), KEEL_EBUSY);
	uint64_t last = cl_status(&c, 0).last_index;
	ASSERT_U64_EQ(cl_status(&c, 0).last_index, last); /* nothing appended */
	cl_free(&c);
}

/* The last voter cannot be removed; a cluster full of members refuses
 * another. */
TEST(change_last_voter_and_full)
{
	struct cluster c;
	cl_init(&c, 1, 0, 3);
	elect_settled(&c, 0);
	uint64_t index;
	keel_node_id id;
	ASSERT_EQ(cl_change(&c, 0, MEMBER_REMOVE, 1, NULL, &index, &id), KEEL_EINVAL);
	for (uint32_t k = 1; k < KEEL_MEMBERS_MAX; k++) {
		ASSERT_EQ(cl_change(&c, 0, MEMBER_ADD_LEARNER, 0, NULL, &index, &id), 0);
		ASSERT_U64_EQ(id, k + 1);
		cl_run(&c, 1); /* a single voter commits at once */
		ASSERT_GE(cl_status(&c, 0).commit, index);
	}
	ASSERT_EQ(cl_change(&c, 0, MEMBER_ADD_LEARNER, 0, NULL, &index, &id), KEEL_ETOOBIG);
	cl_free(&c);
}

/* M1: a second change while the first is uncommitted is refused. */
TEST(m1_one_uncommitted_change)
{
	struct cluster c;
	cl_init(&c, 3, 0, 4);
	elect_settled(&c, 0);
	cl_isolate(&c, 0, true);
	uint64_t index, index2;
	keel_node_id id, id2;
	ASSERT_EQ(cl_change(&c, 0, MEMBER_ADD_LEARNER, 0, NULL, &index, &id), 0);
	ASSERT_TRUE(cl_status(&c, 0).config_pending);
	ASSERT_U64_EQ(cl_status(&c, 0).config_index, index);
	ASSERT_EQ(cl_change(&c, 0, MEMBER_ADD_LEARNER, 0, NULL, &index2, &id2), KEEL_EBUSY);
	ASSERT_EQ(cl_change(&c, 0, MEMBER_REMOVE, 3, NULL, &index2, &id2), KEEL_EBUSY);
	ASSERT_U64_EQ(cl_status(&c, 0).last_index, index);
	cl_isolate(&c, 0, false);
	cl_run(&c, 10);
	ASSERT_FALSE(cl_status(&c, 0).config_pending);
	ASSERT_EQ(cl_change(&c, 0, MEMBER_REMOVE, id, NULL, &index2, &id2), 0);
	cl_free(&c);
}

/* M2: a new leader whose term has no committed entry yet (its no-op and an
 * old term's entry are uncommitted) refuses changes; once the no-op
 * commits, it accepts. */
TEST(m2_change_waits_for_term_commit)
{
	struct cluster c;
	cl_init(&c, 3, 0, 5);
	elect_settled(&c, 0);
	cl_isolate(&c, 1, true);
	cl_isolate(&c, 2, true);
	cl_propose(&c, 0, "old"); /* term-2 entry nobody else has */
	cl_isolate(&c, 1, false);
	cl_isolate(&c, 2, false);
	cl_crash(&c, 0);
	cl_drop_all(&c);
	/* node 2 wins without any append being delivered */
	for (int t = 0; t < 200 && cl_status(&c, 1).role != RAFT_LEADER; t++) {
		cl_tick(&c, 1);
		cl_tick(&c, 2);
		settle_votes_only(&c);
	}
	ASSERT_EQ(cl_status(&c, 1).role, RAFT_LEADER);
	struct raft_status s = cl_status(&c, 1);
	ASSERT_LT(s.commit, s.last_index);
	ASSERT_FALSE(s.config_pending); /* M1 alone would let it through */
	uint64_t index;
	keel_node_id id;
	ASSERT_EQ(cl_change(&c, 1, MEMBER_ADD_LEARNER, 0, NULL, &index, &id), KEEL_EBUSY);
	ASSERT_EQ(cl_change(&c, 1, MEMBER_REMOVE, 1, NULL, &index, &id), KEEL_EBUSY);
	ASSERT_U64_EQ(cl_status(&c, 1).last_index, s.last_index);
	cl_settle(&c);
	cl_run(&c, 1);
	ASSERT_U64_EQ(cl_status(&c, 1).commit, s.last_index);
	ASSERT_EQ(cl_change(&c, 1, MEMBER_REMOVE, 1, NULL, &index, &id), 0);
	cl_drop_all(&c);
	cl_free(&c);
}

/* M3: a change moves at most one voter: an add creates a learner, a
 * promote makes one voter. */
TEST(m3_one_voter_per_change)
{
	struct cluster c;
	cl_init(&c, 3, 0, 6);
	int j = cl_add_spare(&c, 6);
	elect_settled(&c, 0);
	uint64_t index;
	keel_node_id id;
	ASSERT_EQ(cl_change(&c, 0, MEMBER_ADD_LEARNER, 0, NULL, &index, &id), 0);
	ASSERT_U64_EQ(id, c.n[j].id);
	struct membership m = cl_status(&c, 0).membership;
	ASSERT_EQ(voters(m), 3);
	ASSERT_EQ(role_of(m, id), MEMBER_LEARNER);
	cl_run(&c, 5);
	ASSERT_EQ(cl_change(&c, 0, MEMBER_PROMOTE, id, NULL, &index, &id), 0);
	m = cl_status(&c, 0).membership;
	ASSERT_EQ(voters(m), 4);
	ASSERT_EQ(role_of(m, id), MEMBER_VOTER);
	cl_run(&c, 5);
	/* the promoted node is a voter everywhere and counts in elections */
	ASSERT_EQ(role_of(cl_status(&c, j).membership, id), MEMBER_VOTER);
	cl_free(&c);
}

/* M4: ids come from next_id and are never reused: add, remove, add again
 * gets a fresh id; asking for a used id is refused. */
TEST(m4_ids_never_reused)
{
	struct cluster c;
	cl_init(&c, 3, 0, 7);
	elect_settled(&c, 0);
	uint64_t index;
	keel_node_id id, id2;
	ASSERT_EQ(cl_change(&c, 0, MEMBER_ADD_LEARNER, 0, "n4:1", &index, &id), 0);
	ASSERT_U64_EQ(id, 4);
	cl_run(&c, 3);
	ASSERT_EQ(cl_change(&c, 0, MEMBER_REMOVE, 4, NULL, &index, &id2), 0);
	cl_run(&c, 3);
	ASSERT_FALSE(cl_status(&c, 0).config_pending);
	ASSERT_U64_EQ(cl_status(&c, 0).membership.member_count, 3);
	ASSERT_U64_EQ(cl_status(&c, 0).membership.next_id, 5);
	ASSERT_EQ(cl_change(&c, 0, MEMBER_ADD_LEARNER, 4, NULL, &index, &id2), KEEL_EEXIST);
	ASSERT_EQ(cl_change(&c, 0, MEMBER_ADD_LEARNER, 0, "n4:1", &index, &id2), 0);
	ASSERT_U64_EQ(id2, 5);
	ASSERT_GT(index, 0);
	cl_run(&c, 3);
	/* an explicit id above next_id moves next_id past it */
	ASSERT_EQ(cl_change(&c, 0, MEMBER_ADD_LEARNER, 9, NULL, &index, &id2), 0);
	ASSERT_U64_EQ(id2, 9);
	cl_run(&c, 3);
	ASSERT_U64_EQ(cl_status(&c, 1).membership.next_id, 10);
	ASSERT_EQ(cl_change(&c, 0, MEMBER_ADD_LEARNER, 0, NULL, &index, &id2), 0);
	ASSERT_U64_EQ(id2, 10);
	cl_free(&c);
}

/* A joiner retrying its add by peer_addr gets the same id and index 0, and
 * nothing is appended. */
TEST(readd_by_peer_addr_is_idempotent)
{
	struct cluster c;
	cl_init(&c, 3, 0, 8);
	elect_settled(&c, 0);
	uint64_t index, index2;
	keel_node_id id, id2;
	ASSERT_EQ(cl_change(&c, 0, MEMBER_ADD_LEARNER, 0, "10.0.0.4:7000", &index, &id), 0);
	ASSERT_GT(index, 0);
	/* still uncommitted: retry later */
	ASSERT_EQ(cl_change(&c, 0, MEMBER_ADD_LEARNER, 0, "10.0.0.4:7000", &index2, &id2),
		  KEEL_EBUSY);
	cl_run(&c, 3);
	uint64_t last = cl_status(&c, 0).last_index;
	ASSERT_EQ(cl_change(&c, 0, MEMBER_ADD_LEARNER, 0, "10.0.0.4:7000", &index2, &id2), 0);
	ASSERT_U64_EQ(id2, id);
	ASSERT_U64_EQ(index2, 0);
	ASSERT_U64_EQ(cl_status(&c, 0).last_index, last);
	ASSERT_U64_EQ(cl_status(&c, 0).membership.member_count, 4);
	/* another address is another member */
	ASSERT_EQ(cl_change(&c, 0, MEMBER_ADD_LEARNER, 0, "10.0.0.5:7000", &index2, &id2), 0);
	ASSERT_U64_EQ(id2, id + 1);
	cl_free(&c);
}

/* M5: a leader that removes itself keeps replicating without counting
 * itself, steps down once the removal commits, never campaigns again, and
 * the others elect a leader among themselves. */
TEST(m5_removed_leader_steps_down)
{
	struct cluster c;
	cl_init(&c, 3, 0, 9);
	elect_settled(&c, 0);
	cl_isolate(&c, 2, true);
	uint64_t index;
	keel_node_id id;
	ASSERT_EQ(cl_change(&c, 0, MEMBER_REMOVE, 1, NULL, &index, &id), 0);
	cl_run(&c, 3);
	/* voters {2, 3}, only 2 answers: counting itself would commit */
	struct raft_status s = cl_status(&c, 0);
	ASSERT_EQ(s.role, RAFT_LEADER);
	ASSERT_LT(s.commit, index);
	ASSERT_GE(raft_term_at(c.n[1].r, index), 1); /* still replicating */
	/* reads need a quorum of {2, 3} too */
	ASSERT_EQ(raft_read_index(c.n[0].r, 42), 0);
	cl_drain(&c, &c.n[0]);
	cl_run(&c, 2);
	ASSERT_EQ((int)c.n[0].read_count, 0);
	cl_isolate(&c, 2, false);
	cl_run(&c, 3);
	s = cl_status(&c, 0);
	ASSERT_GE(s.commit, index);
	ASSERT_EQ(s.role, RAFT_FOLLOWER);
	/* never campaigns, however long it waits */
	cl_isolate(&c, 0, true);
	ASSERT_EQ(cl_tick_until_role_change(&c, 0, 300), -1);
	cl_isolate(&c, 0, false);
	int l = cl_run_until_leader(&c, 300);
	ASSERT_TRUE(l == 1 || l == 2);
	uint64_t last = cl_status(&c, 0).last_index;
	uint64_t x = cl_propose(&c, l, "after");
	cl_run(&c, 3);
	ASSERT_GE(cl_status(&c, l).commit, x);
	ASSERT_U64_EQ(cl_status(&c, 0).last_index, last); /* removed: gets nothing */
	cl_free(&c);
}

/* A removed follower gets no appends once the change is appended. */
TEST(removed_follower_stops_receiving_appends)
{
	struct cluster c;
	cl_init(&c, 3, 0, 10);
	elect_settled(&c, 0);
	uint64_t index;
	keel_node_id id;
	ASSERT_EQ(cl_change(&c, 0, MEMBER_REMOVE, 3, NULL, &index, &id), 0);
	ASSERT_EQ(cl_count(&c, MSG_APPEND, 1, 3), 0);
	cl_run(&c, 3);
	ASSERT_GE(cl_status(&c, 0).commit, index);
	uint64_t last3 = cl_status(&c, 2).last_index;
	for (int k = 0; k < 5; k++)
		cl_propose(&c, 0, "x");
	cl_run(&c, 3);
	ASSERT_U64_EQ(cl_status(&c, 2).last_index, last3);
	ASSERT_EQ(cl_status(&c, 0).role, RAFT_LEADER);
	/* two voters left: both must answer */
	ASSERT_EQ(voters(cl_status(&c, 0).membership), 2);
	cl_free(&c);
}

/* M6: a learner is promoted only once caught up. */
TEST(m6_promote_only_when_caught_up)
{
	struct cluster c;
	cl_init(&c, 3, 0, 11);
	int j = cl_add_spare(&c, 11);
	elect_settled(&c, 0);
	for (int k = 0; k < (int)RAFT_PROMOTE_LAG_MAX + 10; k++)
		cl_propose(&c, 0, "fill");
	cl_settle(&c);
	cl_isolate(&c, j, true);
	uint64_t index;
	keel_node_id id, id2;
	ASSERT_EQ(cl_change(&c, 0, MEMBER_ADD_LEARNER, 0, NULL, &index, &id), 0);
	cl_run(&c, 3);
	ASSERT_FALSE(cl_status(&c, 0).config_pending);
	ASSERT_EQ(cl_change(&c, 0, MEMBER_PROMOTE, id, NULL, &index, &id2), KEEL_ESTATE);
	ASSERT_EQ(role_of(cl_status(&c, 0).membership, id), MEMBER_LEARNER);
	cl_isolate(&c, j, false);
	cl_run(&c, 5);
	ASSERT_U64_EQ(cl_status(&c, j).last_index, cl_status(&c, 0).last_index);
	ASSERT_EQ(cl_change(&c, 0, MEMBER_PROMOTE, id, NULL, &index, &id2), 0);
	cl_free(&c);
}

/* C4: a leader that removed itself and lost its quorum before the change
 * committed is the only node with the change (its log is the longest), so
 * it may still campaign among the new voters, finishes the change, and
 * only then steps down for good. */
TEST(removed_leader_finishes_uncommitted_removal)
{
	struct cluster c;
	cl_init(&c, 2, 0, 12);
	elect_settled(&c, 0);
	cl_isolate(&c, 1, true);
	uint64_t index;
	keel_node_id id;
	ASSERT_EQ(cl_change(&c, 0, MEMBER_REMOVE, 1, NULL, &index, &id), 0);
	/* check-quorum: voter 2 is silent, so it steps down, uncommitted */
	ASSERT_GT(cl_tick_until_role_change(&c, 0, 100), 0);
	ASSERT_EQ(cl_status(&c, 0).role, RAFT_FOLLOWER);
	ASSERT_TRUE(cl_status(&c, 0).config_pending);
	cl_isolate(&c, 1, false);
	int l = -1;
	for (int t = 0; t < 300; t++) {
		cl_run(&c, 1);
		l = cl_leader(&c);
		if (l == 1 && !cl_status(&c, 1).config_pending)
			break;
	}
	ASSERT_EQ(l, 1);
	struct raft_status s = cl_status(&c, 1);
	ASSERT_GE(s.commit, index);
	ASSERT_EQ(s.membership.member_count, 1);
	ASSERT_U64_EQ(s.membership.members[0].id, 2);
	ASSERT_EQ(cl_status(&c, 0).role, RAFT_FOLLOWER);
	uint64_t x = cl_propose(&c, 1, "alone");
	cl_run(&c, 1);
	ASSERT_GE(cl_status(&c, 1).commit, x);
	cl_free(&c);
}

/* E2: a node that knows no membership with itself in it (pristine, or a
 * wiped disk) refuses votes, however up to date the candidate. */
TEST(pristine_node_does_not_vote)
{
	struct cluster c;
	cl_init(&c, 3, 0, 13);
	int j = cl_add_spare(&c, 13);
	struct msg m = { .type = MSG_VOTE, .from = 1, .to = c.n[j].id, .term = 7 };
	m.u.vote.last_log_index = 10;
	m.u.vote.last_log_term = 6;
	m.u.vote.transfer = true;
	ASSERT_EQ(raft_step(c.n[j].r, &m), 0);
	cl_drain(&c, &c.n[j]);
	int k = cl_find(&c, MSG_VOTE_RESP, c.n[j].id, 1);
	ASSERT_GE(k, 0);
	ASSERT_FALSE(c.q[k].m.u.vote_resp.granted);
	ASSERT_U64_EQ(cl_status(&c, j).vote, 0);
	cl_drop_all(&c);
	cl_free(&c);
}

/* E2: a learner promoted by an entry it has not received yet votes, or the
 * new voters could elect nobody: here only node 2 holds the promotion, and
 * it needs 3 of {1, 2, 3, 4} with node 1 down. */
TEST(learner_votes_for_candidate_that_promoted_it)
{
	struct cluster c;
	cl_init(&c, 3, 0, 14);
	int j = cl_add_spare(&c, 14);
	elect_settled(&c, 0);
	uint64_t index;
	keel_node_id id;
	ASSERT_EQ(cl_change(&c, 0, MEMBER_ADD_LEARNER, 0, NULL, &index, &id), 0);
	cl_run(&c, 5);
	c.cut[0][2] = true;
	c.cut[0][j] = true;
	ASSERT_EQ(cl_change(&c, 0, MEMBER_PROMOTE, id, NULL, &index, &id), 0);
	cl_run(&c, 2);
	ASSERT_EQ(role_of(cl_status(&c, 1).membership, 4), MEMBER_VOTER);
	ASSERT_EQ(role_of(cl_status(&c, 2).membership, 4), MEMBER_LEARNER);
	ASSERT_EQ(role_of(cl_status(&c, j).membership, 4), MEMBER_LEARNER);
	cl_crash(&c, 0);
	memset(c.cut, 0, sizeof(c.cut));
	int l = cl_run_until_leader(&c, 300);
	ASSERT_EQ(l, 1);
	cl_run(&c, 3);
	ASSERT_EQ(role_of(cl_status(&c, j).membership, 4), MEMBER_VOTER);
	cl_free(&c);
}
