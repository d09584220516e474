/*
 * test_raft_chaos.c: random schedules over the in-memory cluster: message
 * loss, duplication and reordering, partitions, crashes with lost unsynced
 * writes, delayed syncs, and client proposals; with compaction on,
 * snapshots and failed installs; with spare nodes, membership changes. After every event the
 * harness checks every node's invariants, one leader per term and that all
 * applied sequences agree; at the end the network heals and the cluster
 * must elect a leader and commit a new entry (liveness).
 */
#include "raft_cluster.h"

struct rng {
	uint64_t s;
};

static uint64_t rng_next(struct rng *g)
{
	g->s += 0x9e3779b97f4a7c15ull;
	uint64_t z = g->s;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint32_t pick(struct rng *g, uint32_t n)
{
	return (uint32_t)(rng_next(g) % n);
}

static size_t down_count(const struct cluster *c)
{
	size_t n = 0;
	for (size_t i = 0; i < c->count; i++)
		n += !c->n[i].up;
	return n;
}

/* A random membership change asked of node i (ids 1 .. count + 1). */
static void chaos_change(struct cluster *c, struct rng *g, int i)
{
	static const uint32_t kinds[] = { MEMBER_ADD_LEARNER, MEMBER_PROMOTE,
					  MEMBER_REMOVE };
	struct member_change ch = { .kind = kinds[pick(g, 3)] };
	ch.id = ch.kind == MEMBER_ADD_LEARNER ? 0 : pick(g, (uint32_t)c->count + 1) + 1;
	uint64_t index;
	keel_node_id id;
	int rc = raft_change(c->n[i].r, &ch, &index, &id);
	ASSERT_TRUE(rc == 0 || rc == KEEL_ENOTLEADER || rc == KEEL_EBUSY ||
		    rc == KEEL_ESTATE || rc == KEEL_ENOTFOUND || rc == KEEL_EEXIST ||
		    rc == KEEL_EINVAL || rc == KEEL_ETOOBIG);
	cl_drain(c, &c->n[i]);
	cl_check(c);
}

static void chaos_event(struct cluster *c, struct rng *g, size_t voters,
			bool changes)
{
	uint32_t e = pick(g, 100);
	int i = (int)pick(g, (uint32_t)c->count);
	struct cl_node *n = &c->n[i];
	if (e < 30) {
		cl_tick(c, i);
	} else if (e < 60) {
		if (c->q_count > 0)
			cl_deliver_at(c, pick(g, (uint32_t)c->q_count)); /* reorder */
	} else if (e < 64) {
		if (c->q_count > 0) { /* lose one */
			size_t k = pick(g, (uint32_t)c->q_count);
			cl_net_free(&c->q[k]);
			memmove(c->q + k, c->q + k + 1, (c->q_count - k - 1) * sizeof(c->q[0]));
			c->q_count--;
		}
	} else if (e < 68) {
		if (c->q_count > 0)
			cl_duplicate(c, pick(g, (uint32_t)c->q_count));
	} else if (e < 70) {
		if (n->up && down_count(c) < (voters - 1) / 2)
			cl_crash(c, i);
	} else if (e < 74) {
		if (!n->up)
			cl_restart(c, i);
	} else if (e < 76) {
		int j = (int)pick(g, (uint32_t)c->count);
		c->cut[i][j] = !c->cut[i][j];
	} else if (e < 78) {
		memset(c->cut, 0, sizeof(c->cut));
	} else if (e < 82) {
		if (n->up)
			n->manual_sync = !n->manual_sync;
	} else if (e < 90) {
		if (n->up && n->pending_count > 0) {
			cl_sync_one(c, n);
			cl_drain(c, n);
			cl_check(c);
		}
	} else if (e < 91) {
		n->fail_installs = 1; /* its next snapshot install fails */
	} else if (e < 91) {
		n->fail_installs = 1; /* its next snapshot install fails */
	} else if (e < 93 && changes) {
		if (n->up)
			chaos_change(c, g, i);
	} else if (n->up) {
		char buf[32];
		snprintf(buf, sizeof(buf), "v%llu", (unsigned long long)rng_next(g));
		uint64_t idx;
		int rc = raft_propose(n->r, ENTRY_COMMAND, (const uint8_t *)buf,
				      (uint32_t)strlen(buf), &idx);
		ASSERT_TRUE(rc == 0 || rc == KEEL_ENOTLEADER || rc == KEEL_ESTATE);
		if (e >= 97 && rc == 0)
			(void)raft_read_index(n->r, idx);
		cl_drain(c, n);
		cl_check(c);
	}
}

static void heal_and_check_live(struct cluster *c)
{
	memset(c->cut, 0, sizeof(c->cut));
	for (size_t i = 0; i < c->count; i++) {
		if (!c->n[i].up)
			cl_restart(c, (int)i);
		c->n[i].manual_sync = false;
		cl_sync(c, (int)i);
	}
	/* A leader found at once may be one that heard from nobody for a
	 * while (the backlog is still in flight) and steps down on its next
	 * tick: liveness means some leader commits a new entry everywhere. */
	for (int attempt = 0; attempt < 5; attempt++) {
		int l = cl_run_until_leader(c, 200);
		if (l < 0 && getenv("CHAOS_VERBOSE")) {
			for (size_t i = 0; i < c->count; i++) {
				struct raft_status s = cl_status(c, (int)i);
				printf("node %llu role %u term %llu commit %llu last %llu lastterm %llu snap %llu inst %d cfg %llu members:",
				       (unsigned long long)s.id, s.role, (unsigned long long)s.term,
				       (unsigned long long)s.commit, (unsigned long long)s.last_index,
				       (unsigned long long)raft_term_at(c->n[i].r, s.last_index),
				       (unsigned long long)s.snapshot_index, s.installing,
				       (unsigned long long)s.config_index);
				for (uint32_t k = 0; k < s.membership.member_count; k++)
					printf(" %llu/%u", (unsigned long long)s.membership.members[k].id,
					       s.membership.members[k].role);
				printf("\n");
			}
		}
		ASSERT_GE(l, 0);
		cl_run(c, 5);
		l = cl_leader(c);
		if (l < 0)
			continue;
		uint64_t idx = cl_propose(c, l, "final");
		cl_run(c, 10);
		/* every member of the leader's membership has it */
		struct raft_status ls = cl_status(c, l);
		bool all = true;
		for (size_t i = 0; i < c->count; i++) {
			bool member = false;
			for (uint32_t k = 0; k < ls.membership.member_count; k++)
				member = member || ls.membership.members[k].id == c->n[i].id;
			struct raft_status s = cl_status(c, (int)i);
			all = all && (!member || (s.commit >= idx && s.applied >= idx));
		}
		if (all)
			return;
	}
	ASSERT_TRUE(false); /* no progress after healing */
}

/* tail_entries > 0: every node compacts with that tail, so followers that
 * fall behind are caught up by snapshots. */
static void chaos(uint64_t seed, size_t voters, size_t learners, int events,
		  uint32_t tail_entries, size_t spares)
{
	struct cluster c;
	cl_init(&c, voters, learners, seed);
	for (size_t k = 0; k < spares; k++)
		cl_add_spare(&c, seed);
	if (tail_entries > 0)
		cl_auto_compact(&c, tail_entries);
	struct rng g = { seed };
	for (int k = 0; k < events; k++)
		chaos_event(&c, &g, voters, spares > 0);
	heal_and_check_live(&c);
	if (getenv("CHAOS_VERBOSE")) {
		struct raft_status s = cl_status(&c, 0);
		uint64_t installs = 0, streams = 0;
		for (size_t i = 0; i < c.count; i++) {
			installs += c.n[i].installs;
			streams += c.n[i].streams_started;
		}
		printf("seed %llu term %llu commit %llu delivered %llu streams %llu installs %llu\n",
		       (unsigned long long)seed, (unsigned long long)s.term,
		       (unsigned long long)s.commit, (unsigned long long)c.delivered,
		       (unsigned long long)streams, (unsigned long long)installs);
	}
	cl_free(&c);
}

TEST(chaos_three_voters)
{
	for (uint64_t seed = 1; seed <= 40; seed++)
		chaos(seed, 3, 0, 3000, 0, 0);
}

TEST(chaos_five_voters_one_learner)
{
	for (uint64_t seed = 100; seed <= 120; seed++)
		chaos(seed, 5, 1, 3000, 0, 0);
}

/* Compaction with a short tail: snapshots under loss, duplication,
 * reordering, crashes (mid-stream and mid-install) and failed installs. */
TEST(chaos_compacting_three_voters)
{
	for (uint64_t seed = 200; seed <= 240; seed++)
		chaos(seed, 3, 0, 3000, 3, 0);
}

TEST(chaos_compacting_five_voters_one_learner)
{
	for (uint64_t seed = 300; seed <= 320; seed++)
		chaos(seed, 5, 1, 3000, 2, 0);
}

/* Membership changes (adds of two spare nodes, promotions, removals, of
 * leaders too) on top of everything above. */
TEST(chaos_membership_changes)
{
	for (uint64_t seed = 400; seed <= 440; seed++)
		chaos(seed, 3, 0, 4000, 3, 2);
}
