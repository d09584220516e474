/* test_raft.c: core/raft rules, each in a test named after it. */
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
