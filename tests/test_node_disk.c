/* test_node_disk.c: the storage thread's ordering rules (node/disk.h):
 * write results reach the loop (applied callback) before the job's commit
 * and sync finish; the job comes back (done callback) only after its sync
 * returned; no results from a failed apply; a failed commit is reported
 * and sticks. The store is io_sim's in-memory one behind a gate that can
 * hold write_commit and sync until the test opens it. */
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "../core/codec.h"
#include "../core/err.h"
#include "../io_sim/mem_store.h"
#include "../node/disk.h"
#include "harness.h"

#define WAIT_MS_MAX 5000u

/* ---- the gate store ------------------------------------------------------ */

struct gate {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool open;          /* commit and sync may proceed */
	bool commit_entered;
	bool sync_returned; /* a sync returned since the job began */
	int commit_rc;      /* forced write_commit result (0: the real one) */
	int kv_put_rc;      /* forced kv_put result (0: the real one) */
	struct store real;
};

static struct gate G;
static struct store_ops gate_ops;

static void gate_wait(void)
{
	pthread_mutex_lock(&G.mu);
	while (!G.open)
		pthread_cond_wait(&G.cv, &G.mu);
	pthread_mutex_unlock(&G.mu);
}

static int gate_commit(void *s)
{
	pthread_mutex_lock(&G.mu);
	G.commit_entered = true;
	pthread_mutex_unlock(&G.mu);
	gate_wait();
	if (G.commit_rc != 0) {
		G.real.ops->write_abort(s);
		return G.commit_rc;
	}
	return G.real.ops->write_commit(s);
}

static int gate_sync(void *s)
{
	gate_wait();
	int rc = G.real.ops->sync(s);
	pthread_mutex_lock(&G.mu);
	G.sync_returned = true;
	pthread_mutex_unlock(&G.mu);
	return rc;
}

static int gate_kv_put(void *s, const uint8_t *k, uint32_t kb,
		       const uint8_t *v, uint32_t vb)
{
	if (G.kv_put_rc != 0)
		return G.kv_put_rc;
	return G.real.ops->kv_put(s, k, kb, v, vb);
}

static void gate_set(bool open)
{
	pthread_mutex_lock(&G.mu);
	G.open = open;
	pthread_cond_broadcast(&G.cv);
	pthread_mutex_unlock(&G.mu);
}

static bool gate_flag(const bool *f)
{
	pthread_mutex_lock(&G.mu);
	bool v = *f;
	pthread_mutex_unlock(&G.mu);
	return v;
}

/* ---- the loop side ---------------------------------------------------------- */

struct seen {
	uint32_t applied, done;
	bool sync_returned_at_applied;
	bool sync_returned_at_done;
	uint32_t results_at_applied;
	uint32_t status_at_applied;
	int err_at_done;
	struct disk_job *job;
};

static struct seen S;

static void on_applied(void *ctx, struct disk_job *j)
{
	(void)ctx;
	S.applied++;
	S.sync_returned_at_applied = gate_flag(&G.sync_returned);
	S.results_at_applied = j->result_count;
	S.status_at_applied = j->result_count > 0 ? j->results[0].status : 99;
}

static void on_done(void *ctx, struct disk_job *j)
{
	(void)ctx;
	S.done++;
	S.sync_returned_at_done = gate_flag(&G.sync_returned);
	S.err_at_done = j->err;
	S.job = j;
}

static void on_timeout(uv_timer_t *t)
{
	*(bool *)t->data = true;
}

/* Run the loop until *counter >= want or WAIT_MS_MAX. */
static bool run_until(uv_loop_t *loop, const uint32_t *counter, uint32_t want)
{
	bool expired = false;
	uv_timer_t t;
	uv_timer_init(loop, &t);
	t.data = &expired;
	uv_timer_start(&t, on_timeout, WAIT_MS_MAX, 0);
	while (!expired && *counter < want)
		uv_run(loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(loop, UV_RUN_NOWAIT);
	return *counter >= want;
}

/* Spin until the storage thread reached write_commit (it is then held). */
static bool wait_commit_entered(void)
{
	for (uint32_t i = 0; i < WAIT_MS_MAX; i++) {
		if (gate_flag(&G.commit_entered))
			return true;
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
	return false;
}

struct env {
	uv_loop_t loop;
	struct mem_store mem;
	struct store st;
	struct disk disk;
	struct disk_job job;
	uint8_t data[256];
};

static void env_open(struct env *e)
{
	memset(&G, 0, sizeof G);
	memset(&S, 0, sizeof S);
	pthread_mutex_init(&G.mu, NULL);
	pthread_cond_init(&G.cv, NULL);
	ASSERT_EQ(uv_loop_init(&e->loop), 0);
	ASSERT_EQ(mem_store_init(&e->mem), 0);
	mem_store_bind(&e->mem, &G.real);
	gate_ops = *G.real.ops;
	gate_ops.write_commit = gate_commit;
	gate_ops.sync = gate_sync;
	gate_ops.kv_put = gate_kv_put;
	e->st.ops = &gate_ops;
	e->st.impl = G.real.impl;
	disk_job_init(&e->job);
	ASSERT_EQ(disk_start(&e->disk, &e->loop, &e->st, on_applied, on_done,
			     NULL), 0);
}

static void env_close(struct env *e)
{
	gate_set(true);
	disk_stop(&e->disk);
	uv_run(&e->loop, UV_RUN_DEFAULT);
	ASSERT_EQ(uv_loop_close(&e->loop), 0);
	disk_job_reset(&e->job);
	mem_store_close(&e->mem);
}

/* A job that appends entry `index` (one put) and applies it. */
static void job_put(struct env *e, uint64_t index, bool append, bool apply)
{
	struct kv_command c = {
		.client_id = 7, .seq = index, .op = KV_PUT,
		.key_bytes = 1, .key = (const uint8_t *)"k",
		.value_bytes = 1, .value = (const uint8_t *)"v",
	};
	int n = codec_batch_encode(&c, 1, e->data, sizeof e->data);
	ASSERT_GT(n, 0);
	struct entry en = { .term = 1, .index = index, .type = ENTRY_COMMAND,
			    .data_bytes = (uint32_t)n, .data = e->data };
	if (append)
		ASSERT_EQ(disk_job_add_entries(&e->job, &en, 1), 0);
	if (apply)
		ASSERT_EQ(disk_job_add_committed(&e->job, &en, 1), 0);
}

/* ---- tests -------------------------------------------------------------------- */

TEST(results_reach_the_loop_before_the_sync_and_done_after_it)
{
	static struct env e;
	env_open(&e);
	job_put(&e, 1, true, true);
	disk_submit(&e.disk, &e.job);
	ASSERT_TRUE(run_until(&e.loop, &S.applied, 1));
	ASSERT_EQ(S.done, 0u);
	ASSERT_FALSE(S.sync_returned_at_applied);
	ASSERT_EQ(S.results_at_applied, 1u);
	ASSERT_EQ(S.status_at_applied, KV_OK);
	ASSERT_TRUE(wait_commit_entered()); /* held there, not done */
	uv_run(&e.loop, UV_RUN_NOWAIT);
	ASSERT_EQ(S.done, 0u);
	gate_set(true);
	ASSERT_TRUE(run_until(&e.loop, &S.done, 1));
	ASSERT_TRUE(S.sync_returned_at_done);
	ASSERT_EQ(S.err_at_done, 0);
	ASSERT_EQ(S.applied, 1u);
	ASSERT_TRUE(S.job == &e.job);
	env_close(&e);
}

TEST(a_job_without_committed_entries_has_no_applied_callback)
{
	static struct env e;
	env_open(&e);
	job_put(&e, 1, true, false);
	gate_set(true);
	disk_submit(&e.disk, &e.job);
	ASSERT_TRUE(run_until(&e.loop, &S.done, 1));
	ASSERT_EQ(S.applied, 0u);
	ASSERT_TRUE(S.sync_returned_at_done);
	ASSERT_EQ(S.err_at_done, 0);
	env_close(&e);
}

TEST(a_failed_apply_posts_no_results_and_sticks)
{
	static struct env e;
	env_open(&e);
	G.kv_put_rc = KEEL_ENOMEM;
	gate_set(true);
	job_put(&e, 1, true, true);
	disk_submit(&e.disk, &e.job);
	ASSERT_TRUE(run_until(&e.loop, &S.done, 1));
	ASSERT_EQ(S.applied, 0u);
	ASSERT_NE(S.err_at_done, 0);
	/* invariant 2: the next job fails without touching the store */
	G.kv_put_rc = 0;
	disk_job_reset(&e.job);
	job_put(&e, 1, true, true);
	disk_submit(&e.disk, &e.job);
	ASSERT_TRUE(run_until(&e.loop, &S.done, 2));
	ASSERT_EQ(S.applied, 0u);
	ASSERT_EQ(S.err_at_done, KEEL_ESTORAGE);
	env_close(&e);
}

TEST(a_failed_commit_is_reported_after_the_results)
{
	static struct env e;
	env_open(&e);
	G.commit_rc = KEEL_ESTORAGE;
	job_put(&e, 1, true, true);
	disk_submit(&e.disk, &e.job);
	ASSERT_TRUE(run_until(&e.loop, &S.applied, 1));
	ASSERT_EQ(S.done, 0u);
	gate_set(true);
	ASSERT_TRUE(run_until(&e.loop, &S.done, 1));
	ASSERT_EQ(S.err_at_done, KEEL_ESTORAGE);
	ASSERT_FALSE(S.sync_returned_at_done); /* no sync after a failed commit */
	env_close(&e);
}
