/* test_sim_checks.c: keelsim's own checks fail when they should: applied
 * entries that differ across nodes, an acknowledged write replaced, the
 * healed cluster missing applied entries, a non-linearizable history, and
 * a whole run is deterministic (same seed, same trace hash). */
#include <stdlib.h>

#include "harness.h"

#include "../core/msg.h"
#include "../sim/sim.h"

static struct sim *fresh(void)
{
	struct sim *s = calloc(1, sizeof(*s));
	if (s == NULL)
		abort();
	sim_checks_init(&s->chk);
	s->opts.nodes = 3;
	s->slots = 3;
	return s;
}

static void done(struct sim *s)
{
	sim_checks_free(&s->chk);
	sim_ops_free(s);
	free(s);
}

TEST(sim_applied_same_entry_everywhere_passes)
{
	struct sim *s = fresh();
	struct sim_node a = {.idx = 0}, b = {.idx = 1};
	struct entry e = {.term = 2, .index = 7, .type = ENTRY_NOOP};
	sim_check_applied(s, &a, &e, 1234);
	sim_check_applied(s, &b, &e, 1234);
	ASSERT_TRUE(s->fail_reason == NULL);
	ASSERT_U64_EQ(s->chk.applied_max, 7);
	done(s);
}

TEST(sim_applied_divergence_is_caught)
{
	struct sim *s = fresh();
	struct sim_node a = {.idx = 0}, b = {.idx = 1};
	struct entry e = {.term = 2, .index = 7, .type = ENTRY_NOOP};
	sim_check_applied(s, &a, &e, 1234);
	sim_check_applied(s, &b, &e, 999);
	ASSERT_TRUE(s->fail_reason != NULL);
	ASSERT_STR_EQ(s->fail_reason, "applied_diverged");
	done(s);
}

TEST(sim_acked_write_replaced_is_ack_lost)
{
	struct sim *s = fresh();
	struct sim_node a = {.idx = 0}, b = {.idx = 1};
	struct entry e = {.term = 2, .index = 7, .type = ENTRY_COMMAND};
	sim_check_applied(s, &a, &e, 1234);
	sim_check_acked(s, 7);
	struct entry other = {.term = 3, .index = 7, .type = ENTRY_COMMAND};
	sim_check_applied(s, &b, &other, 555);
	ASSERT_TRUE(s->fail_reason != NULL);
	ASSERT_STR_EQ(s->fail_reason, "ack_lost");
	done(s);
}

TEST(sim_state_after_apply_must_agree)
{
	struct sim *s = fresh();
	struct sim_node a = {.idx = 0, .id = 1}, b = {.idx = 1, .id = 2};
	sim_check_state_at(s, &a, 7, 100);
	sim_check_state_at(s, &b, 7, 100);
	ASSERT_TRUE(s->fail_reason == NULL);
	sim_check_state_at(s, &b, 8, 200); /* another index: no relation */
	ASSERT_TRUE(s->fail_reason == NULL);
	sim_check_state_at(s, &a, 8, 201);
	ASSERT_TRUE(s->fail_reason != NULL);
	ASSERT_STR_EQ(s->fail_reason, "state_diverged");
	done(s);
}

TEST(sim_snapshot_install_matches_applied_state)
{
	struct sim *s = fresh();
	struct sim_node a = {.idx = 0, .id = 1}, b = {.idx = 1, .id = 2};
	sim_check_state_at(s, &a, 9, 55);
	sim_check_installed(s, &b, 9, 55);
	ASSERT_TRUE(s->fail_reason == NULL);
	ASSERT_U64_EQ(s->chk.applied_max, 9);
	sim_check_installed(s, &b, 12, 70); /* nobody applied 12 yet: recorded */
	ASSERT_TRUE(s->fail_reason == NULL);
	sim_check_state_at(s, &a, 12, 70);
	ASSERT_TRUE(s->fail_reason == NULL);
	done(s);
}

TEST(sim_snapshot_install_divergence_is_caught)
{
	struct sim *s = fresh();
	struct sim_node a = {.idx = 0, .id = 1}, b = {.idx = 1, .id = 2};
	sim_check_state_at(s, &a, 9, 55);
	sim_check_installed(s, &b, 9, 56);
	ASSERT_TRUE(s->fail_reason != NULL);
	ASSERT_STR_EQ(s->fail_reason, "snapshot_diverged");
	done(s);
}

TEST(sim_committed_term_change_is_caught)
{
	struct sim *s = fresh();
	struct sim_node a = {.idx = 0}, b = {.idx = 1};
	struct entry e = {.term = 2, .index = 3, .type = ENTRY_NOOP};
	sim_check_applied(s, &a, &e, 77);
	struct entry same_hash_other_term = {.term = 4, .index = 3, .type = ENTRY_NOOP};
	sim_check_applied(s, &b, &same_hash_other_term, 77);
	ASSERT_TRUE(s->fail_reason != NULL);
	ASSERT_STR_EQ(s->fail_reason, "commit_changed");
	done(s);
}

static void add_op(struct sim *s, uint32_t client, uint8_t kind, const char *val,
		   bool found, uint64_t t0, uint64_t t1)
{
	if (s->op_count == s->op_cap) {
		s->op_cap = s->op_cap ? 2 * s->op_cap : 8;
		s->ops = realloc(s->ops, s->op_cap * sizeof(*s->ops));
		if (s->ops == NULL)
			abort();
	}
	struct sim_op *op = &s->ops[s->op_count++];
	memset(op, 0, sizeof(*op));
	op->client = client;
	op->kind = kind;
	op->outcome = OUT_OK;
	op->key = 0;
	op->invoke_ns = t0;
	op->complete_ns = t1;
	op->result_found = found;
	uint32_t n = (uint32_t)strlen(val);
	if (kind == OP_GET) {
		op->result = malloc(n + 1);
		memcpy(op->result, val, n);
		op->result_bytes = n;
	} else {
		memcpy(op->value, val, n);
		op->value_bytes = n;
	}
}

TEST(sim_history_linearizable_passes)
{
	struct sim *s = fresh();
	s->opts.check_timeout_ms = 5000;
	add_op(s, 0, OP_PUT, "a", false, 0, 10);
	add_op(s, 1, OP_GET, "a", true, 20, 30);
	sim_history_check(s);
	ASSERT_TRUE(s->fail_reason == NULL);
	done(s);
}

TEST(sim_history_stale_read_is_not_linearizable)
{
	struct sim *s = fresh();
	s->opts.check_timeout_ms = 5000;
	add_op(s, 0, OP_PUT, "a", false, 0, 10);
	add_op(s, 0, OP_PUT, "b", false, 20, 30);
	add_op(s, 1, OP_GET, "a", true, 40, 50);
	sim_history_check(s);
	ASSERT_TRUE(s->fail_reason != NULL);
	ASSERT_STR_EQ(s->fail_reason, "linearizability");
	done(s);
}

TEST(sim_history_leaves_out_stale_gets)
{
	struct sim *s = fresh();
	s->opts.check_timeout_ms = 5000;
	add_op(s, 0, OP_PUT, "a", false, 0, 10);
	add_op(s, 0, OP_PUT, "b", false, 20, 30);
	add_op(s, 1, OP_GET, "a", true, 40, 50);
	s->ops[2].stale = true; /* labelled stale: allowed to lag */
	sim_history_check(s);
	ASSERT_TRUE(s->fail_reason == NULL);
	done(s);
}

TEST(sim_run_same_seed_same_trace_hash)
{
	struct sim_opts o = {.seed = 77, .nodes = 3, .ops = 120, .clients = 3,
			     .profile = SIM_PROFILE_ALL, .check_timeout_ms = 10000};
	struct sim_result a, b, c;
	ASSERT_EQ(sim_run(&o, &a), 0);
	ASSERT_EQ(sim_run(&o, &b), 0);
	o.seed = 78;
	ASSERT_EQ(sim_run(&o, &c), 0);
	ASSERT_TRUE(a.pass);
	ASSERT_U64_EQ(a.trace_hash, b.trace_hash);
	ASSERT_U64_EQ(a.events, b.events);
	ASSERT_NE(a.trace_hash, c.trace_hash);
	ASSERT_GE(a.ops, 100);
}

TEST(sim_profiles_parse_and_name)
{
	uint32_t p = 99;
	ASSERT_EQ(sim_profile_parse("swarm", &p), 0);
	ASSERT_EQ(p, SIM_PROFILE_SWARM);
	ASSERT_STR_EQ(sim_profile_name(SIM_PROFILE_DISK), "disk");
	ASSERT_NE(sim_profile_parse("Swarm", &p), 0);
}

TEST(sim_member_profile_draws)
{
	struct sim_faults f;
	uint32_t p = 0, swarm_members = 0;
	ASSERT_EQ(sim_profile_parse("member", &p), 0);
	ASSERT_EQ(p, SIM_PROFILE_MEMBER);
	for (uint64_t seed = 0; seed < 64; seed++) {
		sim_faults_draw(&f, SIM_PROFILE_MEMBER, 3, seed);
		ASSERT_TRUE(f.membership);
		ASSERT_FALSE(f.corruption);
		ASSERT_TRUE(f.crashes && f.partitions);
		ASSERT_GE(f.install_crash_ppm, 100000);
		ASSERT_GE(f.log_tail_entries, 8);
		ASSERT_LE(f.log_tail_entries, 512);
		sim_faults_draw(&f, SIM_PROFILE_SWARM, 5, seed);
		swarm_members += f.membership;
		if (f.membership)
			ASSERT_FALSE(f.corruption);
	}
	ASSERT_TRUE(swarm_members > 2 && swarm_members < 40);
}

/* A member run changes the membership, compacts and installs snapshots
 * (new learners start empty after the log was compacted), and passes. */
TEST(sim_member_run_changes_membership)
{
	struct sim_opts o = {.seed = 5, .nodes = 3, .ops = 300, .clients = 3,
			     .profile = SIM_PROFILE_MEMBER, .check_timeout_ms = 10000};
	struct sim_result r;
	ASSERT_EQ(sim_run(&o, &r), 0);
	ASSERT_TRUE(r.pass);
	ASSERT_GE(r.changes, 2);
	ASSERT_GE(r.compactions, 1);
	ASSERT_GE(r.installs, 1);
}

TEST(sim_swarm_draws_differ_across_seeds)
{
	struct sim_faults f;
	uint32_t partitions = 0, crashes = 0;
	for (uint64_t seed = 0; seed < 64; seed++) {
		sim_faults_draw(&f, SIM_PROFILE_SWARM, 5, seed);
		partitions += f.partitions;
		crashes += f.crashes;
		ASSERT_GE(f.keys, 2);
		ASSERT_LE(f.keys, SIM_KEYS_MAX);
	}
	ASSERT_TRUE(partitions > 8 && partitions < 56);
	ASSERT_TRUE(crashes > 8 && crashes < 60);
	sim_faults_draw(&f, SIM_PROFILE_CALM, 3, 1);
	ASSERT_FALSE(f.partitions || f.crashes || f.pauses || f.corruption);
}
