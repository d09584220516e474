/* test_sim_io.c: the simulator's building blocks: PRNG streams, the event
 * queue, the network and disk models, the trace hash. */
#include "harness.h"

#include "../core/err.h"
#include "../io_sim/simdisk.h"
#include "../io_sim/simnet.h"
#include "../io_sim/simq.h"
#include "../io_sim/simrng.h"
#include "../io_sim/simtrace.h"

TEST(simrng_same_seed_same_stream_replays)
{
	struct simrng a, b;
	simrng_init(&a, 42, SIMRNG_NET);
	simrng_init(&b, 42, SIMRNG_NET);
	for (int i = 0; i < 1000; i++)
		ASSERT_U64_EQ(simrng_next(&a), simrng_next(&b));
}

TEST(simrng_streams_and_seeds_are_independent)
{
	struct simrng a, b, c;
	simrng_init(&a, 42, SIMRNG_NET);
	simrng_init(&b, 42, SIMRNG_DISK);
	simrng_init(&c, 43, SIMRNG_NET);
	int same_ab = 0, same_ac = 0;
	for (int i = 0; i < 100; i++) {
		uint64_t x = simrng_next(&a);
		same_ab += x == simrng_next(&b);
		same_ac += x == simrng_next(&c);
	}
	ASSERT_EQ(same_ab, 0);
	ASSERT_EQ(same_ac, 0);
}

TEST(simrng_below_range_and_chance_stay_in_bounds)
{
	struct simrng r;
	simrng_init(&r, 7, SIMRNG_WORKLOAD);
	uint32_t hist[5] = {0};
	for (int i = 0; i < 50000; i++) {
		uint64_t x = simrng_below(&r, 5);
		ASSERT_LT(x, 5);
		hist[x]++;
		uint64_t y = simrng_range(&r, 10, 12);
		ASSERT_TRUE(y >= 10 && y <= 12);
	}
	for (int i = 0; i < 5; i++) /* 10000 expected each; 6 sigma ~ 540 */
		ASSERT_TRUE(hist[i] > 9000 && hist[i] < 11000);
	int yes = 0;
	for (int i = 0; i < 10000; i++)
		yes += simrng_chance(&r, 250000);
	ASSERT_TRUE(yes > 2200 && yes < 2800);
	ASSERT_FALSE(simrng_chance(&r, 0));
	ASSERT_TRUE(simrng_chance(&r, SIMRNG_PPM));
}

TEST(simrng_exp_is_capped_and_has_its_mean)
{
	struct simrng r;
	simrng_init(&r, 9, SIMRNG_DISK);
	uint64_t sum = 0;
	for (int i = 0; i < 20000; i++) {
		uint64_t v = simrng_exp(&r, 1000, 5000);
		ASSERT_LE(v, 5000);
		sum += v;
	}
	/* mean of exp(1000) capped at 5000 is about 993 */
	ASSERT_TRUE(sum / 20000 > 900 && sum / 20000 < 1080);
}

TEST(simq_orders_by_time_then_push_order)
{
	struct simq q;
	ASSERT_EQ(simq_init(&q, 64), 0);
	uint64_t times[] = {50, 10, 30, 10, 20, 50, 10};
	for (uint32_t i = 0; i < 7; i++) {
		struct sim_event ev = {.at_ns = times[i], .who = i};
		ASSERT_EQ(simq_push(&q, &ev), 0);
	}
	uint32_t want[] = {1, 3, 6, 4, 2, 0, 5};
	struct sim_event out;
	for (int i = 0; i < 7; i++) {
		ASSERT_EQ(simq_pop(&q, &out), 0);
		ASSERT_EQ(out.who, want[i]);
	}
	ASSERT_EQ(simq_pop(&q, &out), KEEL_ENOTFOUND);
	ASSERT_U64_EQ(q.now_ns, 50);
	simq_free(&q);
}

TEST(simq_full_returns_busy)
{
	struct simq q;
	ASSERT_EQ(simq_init(&q, 2), 0);
	struct sim_event ev = {.at_ns = 1};
	ASSERT_EQ(simq_push(&q, &ev), 0);
	ASSERT_EQ(simq_push(&q, &ev), 0);
	ASSERT_EQ(simq_push(&q, &ev), KEEL_EBUSY);
	simq_free(&q);
}

TEST(simq_random_pushes_pop_sorted)
{
	struct simq q;
	ASSERT_EQ(simq_init(&q, 4096), 0);
	struct simrng r;
	simrng_init(&r, 1, SIMRNG_FAULTS);
	for (int i = 0; i < 4000; i++) {
		struct sim_event ev = {.at_ns = simrng_below(&r, 100)};
		ASSERT_EQ(simq_push(&q, &ev), 0);
	}
	struct sim_event prev = {0}, out;
	for (int i = 0; i < 4000; i++) {
		ASSERT_EQ(simq_pop(&q, &out), 0);
		if (i > 0) {
			ASSERT_TRUE(out.at_ns > prev.at_ns ||
				    (out.at_ns == prev.at_ns && out.seq > prev.seq));
		}
		prev = out;
	}
	simq_free(&q);
}

static const struct simnet_conf calm = {
	.lat_base_ns = 100000, .lat_mean_ns = 200000, .tail_ppm = 100000,
	.tail_max_ns = 50000000,
};

TEST(simnet_fifo_link_delivers_in_order)
{
	static struct simnet n;
	simnet_init(&n, &calm, 3, 5, 11);
	uint64_t last = 0, at[SIMNET_COPIES_MAX];
	for (uint64_t t = 0; t < 1000; t++) {
		uint32_t c = simnet_route(&n, t * 1000, 0, 1, 10, at);
		ASSERT_EQ(c, 1);
		ASSERT_GE(at[0], t * 1000 + calm.lat_base_ns);
		ASSERT_GE(at[0], last);
		last = at[0];
	}
}

TEST(simnet_reorder_link_can_reorder)
{
	static struct simnet n;
	struct simnet_conf c = calm;
	c.reorder = true;
	simnet_init(&n, &c, 3, 3, 11);
	uint64_t last = 0, at[SIMNET_COPIES_MAX];
	int inversions = 0;
	for (uint64_t t = 0; t < 1000; t++) {
		simnet_route(&n, t * 1000, 0, 1, 10, at);
		inversions += at[0] < last;
		last = at[0];
	}
	ASSERT_GT(inversions, 0);
}

TEST(simnet_partition_blocks_nodes_not_clients)
{
	static struct simnet n;
	simnet_init(&n, &calm, 3, 5, 5);
	uint64_t at[SIMNET_COPIES_MAX];
	simnet_block(&n, 0, 1, true);
	ASSERT_EQ(simnet_route(&n, 0, 0, 1, 1, at), 0);
	ASSERT_EQ(simnet_route(&n, 0, 1, 0, 1, at), 1); /* one-way */
	ASSERT_EQ(simnet_route(&n, 0, 3, 1, 1, at), 1); /* client */
	ASSERT_FALSE(simnet_deliverable(&n, 0, 1));
	ASSERT_TRUE(simnet_deliverable(&n, 4, 0));
	ASSERT_EQ(simnet_blocked_count(&n), 1);
	simnet_heal(&n);
	ASSERT_EQ(simnet_route(&n, 0, 0, 1, 1, at), 1);
	ASSERT_EQ(simnet_blocked_count(&n), 0);
}

TEST(simnet_clog_holds_then_delivers)
{
	static struct simnet n;
	simnet_init(&n, &calm, 3, 3, 5);
	uint64_t at[SIMNET_COPIES_MAX];
	simnet_clog(&n, 2, 0, 900000000);
	ASSERT_EQ(simnet_route(&n, 0, 2, 0, 1, at), 1);
	ASSERT_GE(at[0], 900000000);
	ASSERT_EQ(simnet_route(&n, 0, 0, 2, 1, at), 1);
	ASSERT_LT(at[0], 900000000);
}

TEST(simnet_drop_and_dup_rates)
{
	static struct simnet n;
	struct simnet_conf c = calm;
	c.drop_ppm = 100000;
	c.dup_ppm = 100000;
	simnet_init(&n, &c, 3, 3, 5);
	uint64_t at[SIMNET_COPIES_MAX];
	uint32_t copies = 0;
	for (int i = 0; i < 10000; i++)
		copies += simnet_route(&n, 0, 0, 1, 1, at);
	ASSERT_TRUE(n.stats.dropped > 800 && n.stats.dropped < 1200);
	ASSERT_TRUE(n.stats.duplicated > 700 && n.stats.duplicated < 1100);
	ASSERT_EQ(copies, 10000 - n.stats.dropped + n.stats.duplicated);
}

TEST(simdisk_syncs_complete_in_order_and_take_time)
{
	struct simdisk d;
	struct simdisk_conf c = {.sync_base_ns = 50000, .sync_mean_ns = 500000,
				 .tail_ppm = 200000, .tail_max_ns = 10000000};
	simdisk_init(&d, &c);
	struct simrng r;
	simrng_init(&r, 3, SIMRNG_DISK);
	uint64_t last = 0;
	for (uint64_t t = 0; t < 500; t++) {
		uint64_t done = simdisk_sync(&d, &r, t * 10000);
		ASSERT_GE(done, t * 10000 + 50000);
		ASSERT_GE(done, last);
		last = done;
	}
	simdisk_reset(&d, 0);
	simdisk_set_slow(&d, 10);
	ASSERT_GE(simdisk_sync(&d, &r, 0), 500000);
}

TEST(simtrace_hash_depends_on_every_field_not_on_text)
{
	struct simtrace a, b;
	ASSERT_EQ(simtrace_init(&a, NULL), 0);
	ASSERT_EQ(simtrace_init(&b, stdout), 0);
	simtrace_event(&a, 1, 2, 3, 4, 5);
	simtrace_event(&b, 1, 2, 3, 4, 5);
	simtrace_text(&b, 1, "sim", "%s", "a line");
	ASSERT_U64_EQ(simtrace_hash(&a), simtrace_hash(&b));
	simtrace_event(&a, 1, 2, 3, 4, 6);
	simtrace_event(&b, 1, 2, 3, 4, 5);
	ASSERT_NE(simtrace_hash(&a), simtrace_hash(&b));
	simtrace_free(&a);
	simtrace_free(&b);
}
