/* test_raft_snapshot.c: core/raft snapshot protocol: a follower behind a
 * compacted leader catches up through a snapshot of several chunks (also
 * with chunks lost, duplicated and reordered), the follower's answers and
 * log cut, a failed install, the stall restart, one chunk in flight, and
 * membership carried by snapshots. The harness (raft_cluster.h) models the
 * state machine as (applied index, running hash) and checks that every
 * node's state agrees at every index, installed snapshots included. */
#include "raft_cluster.h"

static uint64_t propose_n(struct cluster *c, int l, int n)
{
	uint64_t index = 0;
	for (int k = 0; k < n; k++)
		index = cl_propose(c, l, "v");
	cl_settle(c);
	cl_run(c, 1);
	return index;
}

/* Three voters compacting with a tail of 2; node 3 misses 20 entries. */
static void behind_setup(struct cluster *c, uint64_t seed)
{
	cl_init(c, 3, 0, seed);
	cl_auto_compact(c, 2);
	cl_elect(c, 0);
	cl_run(c, 2);
	cl_isolate(c, 2, true);
	propose_n(c, 0, 20);
	ASSERT_GT(cl_status(c, 0).snapshot_index, cl_status(c, 2).last_index + 1);
	cl_isolate(c, 2, false);
}

static void assert_caught_up(struct cluster *c, int i)
{
	struct raft_status l = cl_status(c, 0), f = cl_status(c, i);
	ASSERT_U64_EQ(f.last_index, l.last_index);
	ASSERT_U64_EQ(f.applied, l.applied);
	ASSERT_U64_EQ(c->n[i].dapplied, c->n[0].dapplied);
	ASSERT_U64_EQ(c->n[i].sm_hash, c->n[0].sm_hash);
	ASSERT_FALSE(f.installing);
}

TEST(far_behind_follower_catches_up_by_snapshot)
{
	struct cluster c;
	behind_setup(&c, 1);
	for (int t = 0; t < 30; t++) {
		for (size_t i = 0; i < c.count; i++)
			cl_tick(&c, (int)i);
		while (c.q_count > 0) {
			/* at most one chunk in flight per follower */
			ASSERT_LE(cl_count(&c, MSG_SNAPSHOT, 1, 3), 1);
			cl_deliver_at(&c, 0);
		}
	}
	ASSERT_U64_EQ(c.n[2].installs, 1);
	ASSERT_U64_EQ(c.n[0].streams_started, 1);
	ASSERT_GE(c.n[0].chunks_sent, 3); /* several chunks */
	ASSERT_GT(cl_status(&c, 2).snapshot_index, 1);
	uint64_t x = propose_n(&c, 0, 3);
	cl_run(&c, 2);
	ASSERT_U64_EQ(cl_status(&c, 2).applied, x);
	assert_caught_up(&c, 2);
	/* and it survives a restart */
	cl_crash(&c, 2);
	cl_restart(&c, 2);
	cl_run(&c, 3);
	assert_caught_up(&c, 2);
	cl_free(&c);
}

/* Chunks are dropped, duplicated (the copy arrives late, out of order) and
 * held back; the stream still converges. */
TEST(snapshot_with_chunk_loss_duplication_and_reordering)
{
	struct cluster c;
	behind_setup(&c, 2);
	uint64_t seen = 2;
	for (int t = 0; t < 400 && c.n[2].installs == 0; t++) {
		for (size_t i = 0; i < c.count; i++)
			cl_tick(&c, (int)i);
		for (int guard = 0; c.q_count > 0; guard++) {
			ASSERT_LT(guard, CL_DELIVER_MAX);
			if (c.q[0].m.type != MSG_SNAPSHOT || c.q[0].m.to != 3) {
				cl_deliver_at(&c, 0);
				continue;
			}
			seen = seen * 6364136223846793005ull + 1442695040888963407ull;
			switch ((seen >> 33) % 4) {
			case 0: /* lost */
				cl_drop_at(&c, 0);
				break;
			case 1: /* duplicated: the copy comes last */
				cl_duplicate(&c, 0);
				cl_deliver_at(&c, 0);
				break;
			case 2: /* held back behind everything queued */
				cl_duplicate(&c, 0);
				cl_drop_at(&c, 0);
				if (c.q_count == 1)
					cl_deliver_at(&c, 0);
				break;
			default:
				cl_deliver_at(&c, 0);
				break;
			}
		}
	}
	ASSERT_GE(c.n[2].installs, 1);
	cl_run(&c, 5);
	assert_caught_up(&c, 2);
	cl_free(&c);
}

static struct msg snap_msg(keel_node_id from, keel_node_id to, uint64_t term,
			   uint64_t last_index, uint64_t last_term,
			   const uint8_t *bytes, uint64_t offset, uint32_t n,
			   bool done)
{
	struct msg m = { .type = MSG_SNAPSHOT, .from = from, .to = to, .term = term };
	m.u.snapshot.last_index = last_index;
	m.u.snapshot.last_term = last_term;
	m.u.snapshot.membership = cl_membership(2, 0);
	m.u.snapshot.offset = offset;
	m.u.snapshot.chunk = bytes + offset;
	m.u.snapshot.chunk_bytes = n;
	m.u.snapshot.done = done;
	return m;
}

/* Step m into node i and return its answer of type (removed from the
 * network); fails if none. */
static struct msg step_answer(struct cluster *c, int i, const struct msg *m,
			      uint32_t type)
{
	ASSERT_EQ(raft_step(c->n[i].r, m), 0);
	cl_drain(c, &c->n[i]);
	int k = cl_find(c, type, c->n[i].id, 0);
	ASSERT_GE(k, 0);
	struct msg out = c->q[k].m;
	cl_drop_at(c, (size_t)k);
	return out;
}

static void step_silent(struct cluster *c, int i, const struct msg *m,
			uint32_t type)
{
	ASSERT_EQ(raft_step(c->n[i].r, m), 0);
	cl_drain(c, &c->n[i]);
	ASSERT_EQ(cl_find(c, type, c->n[i].id, 0), -1);
}

/* The follower's side, message by message, then an install that keeps
 * the log after a matching (last_index, last_term). */
TEST(follower_answers_and_install_keeps_matching_suffix)
{
	const uint64_t l1[] = { 1, 1, 1, 1, 1, 1, 1, 1 }, l2[] = { 1, 1, 1, 1, 1, 1, 1, 1 };
	const uint64_t *logs[] = { l1, l2 };
	size_t lens[] = { 8, 8 };
	struct cluster c;
	cl_init_logs(&c, 2, 0, logs, lens, 2, 3);
	c.n[1].hold_install = true;
	/* commit 3 from a heartbeat */
	struct msg hb = { .type = MSG_APPEND, .from = 1, .to = 2, .term = 2 };
	hb.u.append.prev_index = 8;
	hb.u.append.prev_term = 1;
	hb.u.append.commit = 3;
	struct msg a = step_answer(&c, 1, &hb, MSG_APPEND_RESP);
	ASSERT_TRUE(a.u.append_resp.success);
	ASSERT_U64_EQ(cl_status(&c, 1).commit, 3);
	uint8_t snap[CL_SNAP_BYTES];
	cl_snap_encode(snap, 6, 0x1234);
	/* at or below commit: done at once, nothing staged */
	struct msg m = snap_msg(1, 2, 2, 3, 1, snap, 0, 16, false);
	struct msg r = step_answer(&c, 1, &m, MSG_SNAPSHOT_RESP);
	ASSERT_TRUE(r.u.snapshot_resp.done);
	ASSERT_U64_EQ(r.u.snapshot_resp.last_index, 3);
	ASSERT_U64_EQ(c.n[1].staged_bytes, 0);
	/* a chunk past offset 0 with no install under way: wants 0 */
	m = snap_msg(1, 2, 2, 6, 1, snap, 16, 16, false);
	r = step_answer(&c, 1, &m, MSG_SNAPSHOT_RESP);
	ASSERT_FALSE(r.u.snapshot_resp.done);
	ASSERT_U64_EQ(r.u.snapshot_resp.next_offset, 0);
	/* offset 0 starts it */
	m = snap_msg(1, 2, 2, 6, 1, snap, 0, 16, false);
	r = step_answer(&c, 1, &m, MSG_SNAPSHOT_RESP);
	ASSERT_U64_EQ(r.u.snapshot_resp.next_offset, 16);
	ASSERT_U64_EQ(c.n[1].staged_bytes, 16);
	ASSERT_TRUE(cl_status(&c, 1).installing);
	/* ahead of what it wants: answered with the offset wanted */
	m = snap_msg(1, 2, 2, 6, 1, snap, 32, 8, true);
	r = step_answer(&c, 1, &m, MSG_SNAPSHOT_RESP);
	ASSERT_U64_EQ(r.u.snapshot_resp.next_offset, 16);
	m = snap_msg(1, 2, 2, 6, 1, snap, 16, 16, false);
	r = step_answer(&c, 1, &m, MSG_SNAPSHOT_RESP);
	ASSERT_U64_EQ(r.u.snapshot_resp.next_offset, 32);
	/* a duplicate: the offset wanted again, nothing staged twice */
	r = step_answer(&c, 1, &m, MSG_SNAPSHOT_RESP);
	ASSERT_U64_EQ(r.u.snapshot_resp.next_offset, 32);
	ASSERT_U64_EQ(c.n[1].staged_bytes, 32);
	/* the last chunk: no answer until installed */
	m = snap_msg(1, 2, 2, 6, 1, snap, 32, 8, true);
	step_silent(&c, 1, &m, MSG_SNAPSHOT_RESP);
	ASSERT_TRUE(c.n[1].install_ready);
	/* meanwhile appends are refused and nothing changes */
	hb.u.append.commit = 5;
	a = step_answer(&c, 1, &hb, MSG_APPEND_RESP);
	ASSERT_FALSE(a.u.append_resp.success);
	ASSERT_U64_EQ(cl_status(&c, 1).commit, 3);
	ASSERT_TRUE(cl_status(&c, 1).installing);
	/* and it never campaigns */
	ASSERT_EQ(cl_tick_until_role_change(&c, 1, 100), -1);
	cl_drop_all(&c);
	cl_install_now(&c, 1, true);
	struct raft_status s = cl_status(&c, 1);
	ASSERT_U64_EQ(s.snapshot_index, 6);
	ASSERT_U64_EQ(s.first_index, 7);
	ASSERT_U64_EQ(s.last_index, 8); /* the matching suffix stays */
	ASSERT_U64_EQ(s.commit, 6);
	ASSERT_U64_EQ(s.applied, 6);
	ASSERT_FALSE(s.installing);
	ASSERT_U64_EQ(raft_term_at(c.n[1].r, 8), 1);
	int k = cl_find(&c, MSG_SNAPSHOT_RESP, 2, 1);
	ASSERT_GE(k, 0);
	ASSERT_TRUE(c.q[k].m.u.snapshot_resp.done);
	ASSERT_U64_EQ(c.q[k].m.u.snapshot_resp.last_index, 6);
	ASSERT_EQ(raft_snapshot_installed(c.n[1].r, 6), KEEL_ESTATE); /* once */
	cl_drop_all(&c);
	/* appends are accepted again */
	hb.u.append.commit = 8;
	a = step_answer(&c, 1, &hb, MSG_APPEND_RESP);
	ASSERT_TRUE(a.u.append_resp.success);
	ASSERT_U64_EQ(cl_status(&c, 1).commit, 8);
	cl_drop_all(&c);
	cl_free(&c);
}

/* A log that does not hold (last_index, last_term) is dropped whole. */
TEST(install_drops_conflicting_log)
{
	const uint64_t l1[] = { 1, 1, 1 }, l2[] = { 1, 1, 1, 1, 2, 2, 2, 2 };
	const uint64_t *logs[] = { l1, l2 };
	size_t lens[] = { 3, 8 };
	struct cluster c;
	cl_init_logs(&c, 2, 0, logs, lens, 2, 4);
	uint8_t snap[CL_SNAP_BYTES];
	cl_snap_encode(snap, 6, 0x5678);
	struct msg m = snap_msg(1, 2, 3, 6, 3, snap, 0, 16, false);
	struct msg r = step_answer(&c, 1, &m, MSG_SNAPSHOT_RESP);
	ASSERT_U64_EQ(r.u.snapshot_resp.next_offset, 16);
	m = snap_msg(1, 2, 3, 6, 3, snap, 16, 24, true);
	ASSERT_EQ(raft_step(c.n[1].r, &m), 0);
	cl_drain(&c, &c.n[1]); /* the harness installs at once */
	ASSERT_U64_EQ(c.n[1].installs, 1);
	struct raft_status s = cl_status(&c, 1);
	ASSERT_U64_EQ(s.snapshot_index, 6);
	ASSERT_U64_EQ(s.last_index, 6);
	ASSERT_U64_EQ(s.term, 3);
	ASSERT_U64_EQ(raft_term_at(c.n[1].r, 6), 3);
	ASSERT_U64_EQ(s.membership.member_count, 2);
	ASSERT_U64_EQ(c.n[1].dcount, 0);
	cl_drop_all(&c);
	/* restart from the installed snapshot */
	cl_crash(&c, 1);
	cl_restart(&c, 1);
	s = cl_status(&c, 1);
	ASSERT_U64_EQ(s.snapshot_index, 6);
	ASSERT_U64_EQ(s.applied, 6);
	cl_drop_all(&c);
	cl_free(&c);
}

/* A failed install is reported; the leader starts a new stream and the
 * follower catches up with the second. */
TEST(install_failure_makes_leader_start_over)
{
	struct cluster c;
	behind_setup(&c, 5);
	c.n[2].fail_installs = 1;
	cl_run(&c, 40);
	ASSERT_EQ(c.n[2].fail_installs, 0);
	ASSERT_U64_EQ(c.n[2].installs, 1);
	ASSERT_U64_EQ(c.n[0].streams_started, 2);
	assert_caught_up(&c, 2);
	cl_free(&c);
}

/* A stream whose chunks all vanish restarts after
 * RAFT_SNAPSHOT_STALL_ELECTIONS election timeouts, not before. */
TEST(stalled_stream_restarts)
{
	struct cluster c;
	behind_setup(&c, 6);
	int first = -1, second = -1;
	for (int t = 0; t < 200 && second < 0; t++) {
		for (size_t i = 0; i < c.count; i++)
			cl_tick(&c, (int)i);
		for (int guard = 0; c.q_count > 0; guard++) {
			ASSERT_LT(guard, CL_DELIVER_MAX);
			if (c.q[0].m.type == MSG_SNAPSHOT)
				cl_drop_at(&c, 0);
			else
				cl_deliver_at(&c, 0);
		}
		if (first < 0 && c.n[0].streams_started == 1)
			first = t;
		if (c.n[0].streams_started == 2)
			second = t;
	}
	ASSERT_GE(first, 0);
	ASSERT_GE(second, 0);
	uint32_t limit = RAFT_SNAPSHOT_STALL_ELECTIONS * c.n[0].opt.election_ticks;
	ASSERT_GE(second - first, (int)limit - 1);
	ASSERT_LE(second - first, (int)limit + 1);
	ASSERT_U64_EQ(c.n[2].installs, 0);
	cl_run(&c, 30);
	ASSERT_U64_EQ(c.n[2].installs, 1);
	assert_caught_up(&c, 2);
	cl_free(&c);
}

/* raft_snapshot_send refuses what does not fit the stream. */
TEST(snapshot_send_errors)
{
	struct cluster c;
	behind_setup(&c, 7);
	c.n[0].hold_wants = true;
	for (int t = 0; t < 10 && c.n[0].want_count == 0; t++)
		cl_run(&c, 1);
	ASSERT_EQ((int)c.n[0].want_count, 1);
	struct raft_snapshot_want w = c.n[0].wants[0];
	ASSERT_U64_EQ(w.to, 3);
	ASSERT_U64_EQ(w.last_index, 0);
	ASSERT_U64_EQ(w.offset, 0);
	struct raft *r = c.n[0].r;
	uint8_t b[16] = { 0 };
	struct msg_snapshot m = { .last_index = cl_status(&c, 0).applied,
				  .chunk = b, .chunk_bytes = 16 };
	ASSERT_EQ(raft_snapshot_send(c.n[1].r, 3, &m), KEEL_ENOTLEADER);
	ASSERT_EQ(raft_snapshot_send(r, 2, &m), KEEL_ESTATE); /* not streaming */
	m.last_index = cl_status(&c, 0).applied + 1;
	ASSERT_EQ(raft_snapshot_send(r, 3, &m), KEEL_EINVAL); /* above applied */
	m.last_index = cl_status(&c, 0).snapshot_index - 1;
	ASSERT_EQ(raft_snapshot_send(r, 3, &m), KEEL_EINVAL); /* below the log */
	m.last_index = cl_status(&c, 0).applied;
	m.chunk_bytes = KEEL_SNAPSHOT_CHUNK_BYTES_MAX + 1;
	ASSERT_EQ(raft_snapshot_send(r, 3, &m), KEEL_EINVAL);
	m.chunk_bytes = 16;
	m.offset = 16; /* not the offset wanted */
	ASSERT_EQ(raft_snapshot_send(r, 3, &m), KEEL_ESTATE);
	m.offset = 0;
	ASSERT_EQ(raft_snapshot_send(r, 3, &m), 0);
	ASSERT_EQ(raft_snapshot_send(r, 3, &m), KEEL_ESTATE); /* one in flight */
	cl_drain(&c, &c.n[0]);
	int k = cl_find(&c, MSG_SNAPSHOT, 1, 3);
	ASSERT_GE(k, 0);
	/* last_term and membership come from the core */
	ASSERT_U64_EQ(c.q[k].m.u.snapshot.last_term, raft_term_at(r, m.last_index));
	ASSERT_U64_EQ(c.q[k].m.u.snapshot.membership.member_count, 3);
	cl_drop_all(&c);
	cl_free(&c);
}

/* A learner added after the log was compacted gets everything, its own
 * membership included, through a snapshot; it survives a restart, and
 * raft_state_at tells the memberships apart. */
TEST(membership_survives_compaction_and_snapshot)
{
	struct cluster c;
	cl_init(&c, 3, 0, 8);
	int j = cl_add_spare(&c, 8);
	cl_auto_compact(&c, 2);
	cl_elect(&c, 0);
	cl_run(&c, 2);
	propose_n(&c, 0, 10);
	uint64_t index;
	keel_node_id id;
	ASSERT_EQ(cl_change(&c, 0, MEMBER_ADD_LEARNER, 0, "l4", &index, &id), 0);
	ASSERT_U64_EQ(id, 4);
	propose_n(&c, 0, 10); /* the add is compacted away too */
	cl_run(&c, 20);
	ASSERT_GT(cl_status(&c, 0).snapshot_index, index);
	ASSERT_U64_EQ(c.n[j].installs, 1);
	struct raft_status s = cl_status(&c, j);
	ASSERT_U64_EQ(s.membership.member_count, 4);
	ASSERT_U64_EQ(s.membership.next_id, 5);
	ASSERT_U64_EQ(s.config_index, 0); /* from the snapshot */
	assert_caught_up(&c, j);
	cl_crash(&c, j);
	cl_restart(&c, j);
	ASSERT_U64_EQ(cl_status(&c, j).membership.member_count, 4);
	/* a learner never campaigns, even after a snapshot */
	ASSERT_EQ(cl_tick_until_role_change(&c, j, 100), -1);
	cl_run(&c, 5);
	ASSERT_EQ(cl_change(&c, 0, MEMBER_PROMOTE, 4, NULL, &index, &id), 0);
	cl_run(&c, 5);
	ASSERT_EQ(cl_status(&c, j).membership.members[3].role, MEMBER_VOTER);
	uint64_t term;
	struct membership m;
	ASSERT_EQ(raft_state_at(c.n[0].r, index - 1, &term, &m), 0);
	ASSERT_EQ((int)m.members[3].role, MEMBER_LEARNER);
	ASSERT_EQ(raft_state_at(c.n[0].r, index, &term, &m), 0);
	ASSERT_EQ((int)m.members[3].role, MEMBER_VOTER);
	cl_free(&c);
}

/* A chunk from a stale leader is answered with our term, like an append,
 * and changes nothing. */
TEST(lower_term_chunk_answered_with_our_term)
{
	const uint64_t l1[] = { 1, 1 }, l2[] = { 1, 1 };
	const uint64_t *logs[] = { l1, l2 };
	size_t lens[] = { 2, 2 };
	struct cluster c;
	cl_init_logs(&c, 2, 0, logs, lens, 5, 9);
	uint8_t snap[CL_SNAP_BYTES];
	cl_snap_encode(snap, 6, 1);
	struct msg m = snap_msg(1, 2, 4, 6, 1, snap, 0, 16, false);
	struct msg r = step_answer(&c, 1, &m, MSG_SNAPSHOT_RESP);
	ASSERT_U64_EQ(r.term, 5);
	ASSERT_FALSE(r.u.snapshot_resp.done);
	ASSERT_FALSE(cl_status(&c, 1).installing);
	ASSERT_U64_EQ(c.n[1].staged_bytes, 0);
	cl_drop_all(&c);
	cl_free(&c);
}
