/* test_raft_api.c: core/raft's API contract: init/restore validation,
 * bootstrap, proposals and their errors, persistence acknowledgements,
 * and the active membership following the log (including truncation). */
#include "raft_cluster.h"

static struct raft *new_raft(keel_node_id id, const struct raft_restore *st,
			     int *rc)
{
	struct raft_options o;
	raft_options_default(&o, id, 1);
	struct raft *r = calloc(1, raft_sizeof());
	*rc = raft_init(r, &o, st);
	return r;
}

TEST(init_rejects_bad_options_and_inconsistent_restore)
{
	struct raft_restore st = { 0 };
	struct raft_options o;
	struct raft *r = calloc(1, raft_sizeof());
	raft_options_default(&o, 0, 1); /* id 0 */
	ASSERT_EQ(raft_init(r, &o, &st), KEEL_EINVAL);
	raft_options_default(&o, 1, 1);
	o.heartbeat_ticks = o.election_ticks;
	ASSERT_EQ(raft_init(r, &o, &st), KEEL_EINVAL);
	raft_options_default(&o, 1, 1);
	o.inflight_appends_max = 0;
	ASSERT_EQ(raft_init(r, &o, &st), KEEL_EINVAL);
	free(r);

	int rc;
	struct entry e[2] = { { .term = 2, .index = 1, .type = ENTRY_NOOP },
			      { .term = 1, .index = 2, .type = ENTRY_NOOP } };
	st.hard_state.term = 2;
	st.entries = e;
	st.entry_count = 2; /* terms decrease */
	r = new_raft(1, &st, &rc);
	ASSERT_EQ(rc, KEEL_EINVAL);
	free(r);
	e[1].term = 3; /* beyond the hard state's term */
	r = new_raft(1, &st, &rc);
	ASSERT_EQ(rc, KEEL_EINVAL);
	free(r);
	e[1].term = 2;
	e[1].index = 3; /* gap */
	r = new_raft(1, &st, &rc);
	ASSERT_EQ(rc, KEEL_EINVAL);
	free(r);
	e[1].index = 2;
	st.applied_index = 5; /* applied beyond the log */
	r = new_raft(1, &st, &rc);
	ASSERT_EQ(rc, KEEL_EINVAL);
	free(r);
	st.applied_index = 2;
	st.hard_state.commit = 9; /* a stale commit hint is clamped */
	r = new_raft(1, &st, &rc);
	ASSERT_EQ(rc, 0);
	struct raft_status s;
	raft_status(r, &s);
	ASSERT_U64_EQ(s.commit, 2);
	ASSERT_U64_EQ(s.applied, 2);
	raft_close(r);
	free(r);
}

TEST(bootstrap_only_on_pristine_node_with_self_as_voter)
{
	struct raft_restore st = { 0 };
	int rc;
	struct raft *r = new_raft(5, &st, &rc);
	ASSERT_EQ(rc, 0);
	struct membership m = cl_membership(3, 0); /* ids 1..3 */
	ASSERT_EQ(raft_bootstrap(r, &m), KEEL_EINVAL);
	struct membership bad = { 0 };
	ASSERT_EQ(raft_bootstrap(r, &bad), KEEL_EINVAL);
	m = cl_membership(5, 0);
	ASSERT_EQ(raft_bootstrap(r, &m), 0);
	ASSERT_EQ(raft_bootstrap(r, &m), KEEL_ESTATE);
	struct raft_status s;
	raft_status(r, &s);
	ASSERT_U64_EQ(s.last_index, 1);
	ASSERT_U64_EQ(s.term, 1);
	ASSERT_U64_EQ(s.membership.member_count, 5);
	/* the bootstrap entry is handed out for writing, then applied */
	ASSERT_TRUE(raft_has_ready(r));
	struct raft_ready rd;
	raft_ready(r, &rd);
	ASSERT_EQ(rd.entry_count, 1u);
	ASSERT_EQ(rd.entries[0].type, ENTRY_CONFIG);
	ASSERT_TRUE(rd.hard_state_changed);
	ASSERT_EQ(rd.committed_count, 0u); /* not durable yet */
	raft_persisted(r, 1, 1);
	raft_advance(r, &rd);
	raft_ready(r, &rd);
	ASSERT_EQ(rd.committed_count, 1u);
	raft_advance(r, &rd);
	ASSERT_FALSE(raft_has_ready(r));
	raft_close(r);
	free(r);
}

TEST(propose_errors)
{
	struct cluster c;
	cl_init(&c, 3, 0, 107);
	cl_elect(&c, 0);
	cl_run(&c, 2);
	uint64_t idx = 0;
	static uint8_t big[KEEL_ENTRY_BYTES_MAX + 1];
	ASSERT_EQ(raft_propose(c.n[1].r, ENTRY_COMMAND, big, 1, &idx), KEEL_ENOTLEADER);
	ASSERT_EQ(raft_propose(c.n[0].r, ENTRY_COMMAND, big, KEEL_ENTRY_BYTES_MAX + 1, &idx),
		  KEEL_ETOOBIG);
	ASSERT_EQ(raft_propose(c.n[0].r, ENTRY_NOOP, NULL, 0, &idx), KEEL_EINVAL);
	ASSERT_EQ(raft_propose(c.n[0].r, ENTRY_CONFIG, big, 10, &idx), KEEL_EINVAL);
	/* uncommitted bytes: followers away, proposals pile up to the limit */
	cl_isolate(&c, 0, true);
	int rc = 0;
	int n = 0;
	for (; rc == 0 && n < 1000; n++)
		rc = raft_propose(c.n[0].r, ENTRY_COMMAND, big, KEEL_ENTRY_BYTES_MAX, &idx);
	ASSERT_EQ(rc, KEEL_EBUSY);
	ASSERT_EQ(n - 1, (int)(RAFT_UNCOMMITTED_BYTES_MAX_DEFAULT / KEEL_ENTRY_BYTES_MAX));
	cl_drain(&c, &c.n[0]);
	cl_isolate(&c, 0, false);
	cl_run(&c, 10);
	ASSERT_EQ(raft_propose(c.n[0].r, ENTRY_COMMAND, big, 100, &idx), 0);
	cl_free(&c);
}

/* Stale persistence acks (for entries since replaced) are ignored. */
TEST(persisted_stale_ack_ignored)
{
	const uint64_t l1[] = { 1, 1, 1 }, l2[] = { 1, 1, 1 };
	const uint64_t *logs[] = { l1, l2 };
	size_t lens[] = { 3, 3 };
	struct cluster c;
	cl_init_logs(&c, 2, 0, logs, lens, 2, 1);
	c.n[1].manual_sync = true;
	struct entry e[2] = { { .term = 2, .index = 4, .type = ENTRY_NOOP },
			      { .term = 2, .index = 5, .type = ENTRY_NOOP } };
	struct msg m = { .type = MSG_APPEND, .from = 1, .to = 2, .term = 2 };
	m.u.append.prev_index = 3;
	m.u.append.prev_term = 1;
	m.u.append.entries = e;
	m.u.append.entry_count = 2;
	ASSERT_EQ(raft_step(c.n[1].r, &m), 0);
	cl_drain(&c, &c.n[1]);
	ASSERT_U64_EQ(cl_status(&c, 1).stable_index, 3);
	raft_persisted(c.n[1].r, 5, 1); /* wrong term */
	ASSERT_U64_EQ(cl_status(&c, 1).stable_index, 3);
	raft_persisted(c.n[1].r, 9, 2); /* never handed out */
	ASSERT_U64_EQ(cl_status(&c, 1).stable_index, 3);
	raft_persisted(c.n[1].r, 4, 2);
	ASSERT_U64_EQ(cl_status(&c, 1).stable_index, 4);
	/* a newer leader replaces 5: the old ack for 5 must not count */
	struct entry e3 = { .term = 3, .index = 5, .type = ENTRY_NOOP };
	m.term = 3;
	m.u.append.prev_index = 4;
	m.u.append.prev_term = 2;
	m.u.append.entries = &e3;
	m.u.append.entry_count = 1;
	ASSERT_EQ(raft_step(c.n[1].r, &m), 0);
	raft_persisted(c.n[1].r, 5, 2);
	ASSERT_U64_EQ(cl_status(&c, 1).stable_index, 4);
	cl_drain(&c, &c.n[1]);
	cl_sync(&c, 1);
	ASSERT_U64_EQ(cl_status(&c, 1).stable_index, 5);
	cl_free(&c);
}

static uint32_t encode_membership(size_t voters, size_t learners, uint8_t *buf,
				  size_t cap)
{
	struct membership m = cl_membership(voters, learners);
	int n = codec_membership_encode(&m, buf, cap);
	ASSERT_GT(n, 0);
	return (uint32_t)n;
}

/* The latest config entry in the log is active as soon as it is
 * appended; truncating it reverts to the one before. */
TEST(membership_follows_log_and_reverts_on_truncation)
{
	const uint64_t l1[] = { 1, 1 }, l2[] = { 1, 1 };
	const uint64_t *logs[] = { l1, l2 };
	size_t lens[] = { 2, 2 };
	struct cluster c;
	cl_init_logs(&c, 2, 0, logs, lens, 2, 1);
	ASSERT_U64_EQ(cl_status(&c, 1).membership.member_count, 2);
	uint8_t buf[4096];
	struct entry e = { .term = 2, .index = 3, .type = ENTRY_CONFIG };
	e.data_bytes = encode_membership(2, 2, buf, sizeof(buf));
	e.data = buf;
	struct msg m = { .type = MSG_APPEND, .from = 1, .to = 2, .term = 2 };
	m.u.append.prev_index = 2;
	m.u.append.prev_term = 1;
	m.u.append.entries = &e;
	m.u.append.entry_count = 1;
	ASSERT_EQ(raft_step(c.n[1].r, &m), 0);
	cl_drain(&c, &c.n[1]);
	ASSERT_U64_EQ(cl_status(&c, 1).membership.member_count, 4); /* uncommitted, active */
	ASSERT_U64_EQ(cl_status(&c, 1).commit, 0);
	/* a term-3 leader never had it: entry 3 conflicts and goes */
	struct entry e3 = { .term = 3, .index = 3, .type = ENTRY_NOOP };
	m.term = 3;
	m.u.append.entries = &e3;
	ASSERT_EQ(raft_step(c.n[1].r, &m), 0);
	cl_drain(&c, &c.n[1]);
	ASSERT_U64_EQ(raft_term_at(c.n[1].r, 3), 3);
	ASSERT_U64_EQ(cl_status(&c, 1).membership.member_count, 2); /* reverted */
	/* a config that will not decode is ignored, never asserted on */
	struct entry junk = { .term = 3, .index = 4, .type = ENTRY_CONFIG,
			      .data = (const uint8_t *)"junk", .data_bytes = 4 };
	m.u.append.prev_index = 3;
	m.u.append.prev_term = 3;
	m.u.append.entries = &junk;
	ASSERT_EQ(raft_step(c.n[1].r, &m), 0);
	cl_drain(&c, &c.n[1]);
	ASSERT_U64_EQ(cl_status(&c, 1).last_index, 4);
	ASSERT_U64_EQ(cl_status(&c, 1).membership.member_count, 2);
	cl_free(&c);
}

/* A leader proposes a config adding a learner: the leader starts
 * replicating to it at once; a second change waits for the first. */
TEST(leader_config_change_takes_effect_on_append)
{
	struct cluster c;
	cl_init(&c, 3, 1, 109); /* node 4 is a learner nobody knows yet */
	struct membership m3 = cl_membership(3, 0);
	uint8_t buf[4096];
	int n = codec_membership_encode(&m3, buf, sizeof(buf));
	(void)n;
	cl_elect(&c, 0);
	cl_run(&c, 2);
	/* all nodes bootstrapped with 3 voters + 1 learner; propose 3 voters */
	uint64_t idx;
	ASSERT_EQ(raft_propose(c.n[0].r, ENTRY_CONFIG, buf, (uint32_t)n, &idx), 0);
	ASSERT_U64_EQ(cl_status(&c, 0).membership.member_count, 3);
	ASSERT_EQ(raft_propose(c.n[0].r, ENTRY_CONFIG, buf, (uint32_t)n, &idx),
		  KEEL_ESTATE);
	cl_drain(&c, &c.n[0]);
	cl_run(&c, 3);
	ASSERT_GE(cl_status(&c, 0).commit, idx);
	ASSERT_EQ(raft_propose(c.n[0].r, ENTRY_CONFIG, buf, (uint32_t)n, &idx), 0);
	cl_drain(&c, &c.n[0]);
	cl_free(&c);
}

/* A restart with a long committed tail releases it in bounded slices. */
TEST(committed_released_in_bounded_slices)
{
	enum { N = 5000 };
	struct entry *e = calloc(N, sizeof(*e));
	for (size_t i = 0; i < N; i++) {
		e[i].index = i + 1;
		e[i].term = 1;
		e[i].type = ENTRY_NOOP;
	}
	struct raft_restore st = { 0 };
	st.hard_state.term = 1;
	st.hard_state.commit = N;
	st.entries = e;
	st.entry_count = N;
	int rc;
	struct raft *r = new_raft(1, &st, &rc);
	ASSERT_EQ(rc, 0);
	size_t total = 0, readies = 0;
	while (raft_has_ready(r)) {
		struct raft_ready rd;
		raft_ready(r, &rd);
		ASSERT_LE(rd.committed_count, 4096u);
		ASSERT_EQ(rd.entry_count, 0u); /* already durable */
		if (rd.committed_count > 0)
			ASSERT_U64_EQ(rd.committed[0].index, total + 1);
		total += rd.committed_count;
		readies++;
		raft_advance(r, &rd);
	}
	ASSERT_EQ(total, (size_t)N);
	ASSERT_GE(readies, 2u);
	raft_close(r);
	free(r);
	free(e);
}
