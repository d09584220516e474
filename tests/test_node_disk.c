/* test_node_disk.c: the storage thread's ordering rules (node/disk.h):
 * results of the entries committed at submission reach the loop before the
 * job's first commit; the persisted callback comes only after that commit
 * and its sync; entries the loop adds in that callback are applied (into
 * the write-back cache) with their results before any commit of theirs;
 * done comes last; no results from a failed apply; failures are reported
 * and stick. The cache: reads see it, a small one rides in the next job's
 * log batch, an idle one is flushed on its own, a stop flushes and syncs
 * it, a job reports the store's own applied index (compaction's bound), a
 * failed flush fails the job. The
 * store is io_sim's in-memory one behind a gate that holds write_commit
 * until the test lets it through. */
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
	uint32_t commits_allowed; /* write_commit number n > this waits */
	uint32_t commits_entered, commits_returned, syncs_returned;
	int commit_rc;            /* forced write_commit result (0: real) */
	int kv_put_rc;            /* forced kv_put result (0: real) */
	int session_get_rc;       /* forced session_get result (0: real) */
	struct store real;
};

static struct gate G;
static struct store_ops gate_ops;

static int gate_commit(void *s)
{
	pthread_mutex_lock(&G.mu);
	uint32_t n = ++G.commits_entered;
	while (n > G.commits_allowed)
		pthread_cond_wait(&G.cv, &G.mu);
	pthread_mutex_unlock(&G.mu);
	int rc;
	if (G.commit_rc != 0) {
		G.real.ops->write_abort(s);
		rc = G.commit_rc;
	} else {
		rc = G.real.ops->write_commit(s);
	}
	pthread_mutex_lock(&G.mu);
	G.commits_returned++;
	pthread_mutex_unlock(&G.mu);
	return rc;
}

static int gate_sync(void *s)
{
	int rc = G.real.ops->sync(s);
	pthread_mutex_lock(&G.mu);
	G.syncs_returned++;
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

static int gate_session_get(void *s, uint64_t id, struct kv_session *out)
{
	if (G.session_get_rc != 0)
		return G.session_get_rc;
	return G.real.ops->session_get(s, id, out);
}

static void gate_allow(uint32_t commits)
{
	pthread_mutex_lock(&G.mu);
	G.commits_allowed = commits;
	pthread_cond_broadcast(&G.cv);
	pthread_mutex_unlock(&G.mu);
}

static uint32_t gate_get(const uint32_t *f)
{
	pthread_mutex_lock(&G.mu);
	uint32_t v = *f;
	pthread_mutex_unlock(&G.mu);
	return v;
}

/* ---- the loop side ---------------------------------------------------------- */

#define SEEN_RESULTS_MAX 8u

struct seen {
	uint32_t persisted, results, done;
	uint32_t commits_at_persisted, syncs_at_persisted;
	uint32_t commits_at_result[SEEN_RESULTS_MAX];
	uint64_t seq[SEEN_RESULTS_MAX];
	uint32_t status[SEEN_RESULTS_MAX];
	uint32_t results_at_persisted;
	int err_at_done;
	struct disk_job *job;
	struct entry pull; /* added in the persisted callback when set */
};

static struct seen S;

static void on_persisted(void *ctx, struct disk_job *j)
{
	(void)ctx;
	S.persisted++;
	S.commits_at_persisted = gate_get(&G.commits_returned);
	S.syncs_at_persisted = gate_get(&G.syncs_returned);
	S.results_at_persisted = S.results;
	if (S.pull.index != 0)
		ASSERT_EQ(disk_job_add_committed(j, &S.pull, 1), 0);
}

static void on_results(void *ctx, const struct kv_result *res, uint32_t n)
{
	(void)ctx;
	for (uint32_t i = 0; i < n && S.results < SEEN_RESULTS_MAX; i++) {
		S.commits_at_result[S.results] = gate_get(&G.commits_returned);
		S.seq[S.results] = res[i].seq;
		S.status[S.results] = res[i].status;
		S.results++;
	}
}

static void on_done(void *ctx, struct disk_job *j)
{
	(void)ctx;
	S.done++;
	S.err_at_done = j->err;
	S.job = j;
}

static const struct disk_callbacks callbacks = {
	.persisted = on_persisted,
	.results = on_results,
	.done = on_done,
};

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

/* Spin until the gate counter *f (commits entered or returned) reaches n. */
static bool wait_gate(const uint32_t *f, uint32_t n)
{
	for (uint32_t i = 0; i < WAIT_MS_MAX; i++) {
		if (gate_get(f) >= n)
			return true;
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
	return false;
}

/* The store itself (not through the cache). Call only while the storage
 * thread cannot be writing: no job in flight and an empty cache, or the
 * thread stopped. */
static uint64_t store_applied(void)
{
	struct store_meta m;
	ASSERT_EQ(G.real.ops->meta_get(G.real.impl, &m), 0);
	return m.applied_index;
}

static int store_get(const char *key, const uint8_t **v, uint32_t *vb)
{
	return G.real.ops->kv_get(G.real.impl, (const uint8_t *)key,
				  (uint32_t)strlen(key), v, vb);
}

struct env {
	uv_loop_t loop;
	struct mem_store mem;
	struct store st;
	struct disk disk;
	struct disk_job job;
	struct disk_options opt; /* disk_start's (zero: flush_ms 0, idle
				    DISK_IDLE_FLUSH_MS) */
	uint8_t data[3][256];
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
	gate_ops.session_get = gate_session_get;
	e->st.ops = &gate_ops;
	e->st.impl = G.real.impl;
	disk_job_init(&e->job);
	if (e->opt.idle_flush_ms == 0)
		e->opt.idle_flush_ms = DISK_IDLE_FLUSH_MS;
	ASSERT_EQ(disk_start(&e->disk, &e->loop, &e->st, &e->opt, &callbacks,
			     NULL),
		  0);
}

static void env_close(struct env *e)
{
	gate_allow(UINT32_MAX);
	disk_stop(&e->disk);
	uv_run(&e->loop, UV_RUN_DEFAULT);
	ASSERT_EQ(uv_loop_close(&e->loop), 0);
	disk_job_reset(&e->job);
	mem_store_close(&e->mem);
}

/* Entry `index` (1..3): one put by client 7 with seq = index. */
static struct entry put_entry(struct env *e, uint64_t index)
{
	struct kv_command c = {
		.client_id = 7, .seq = index, .op = KV_PUT,
		.key_bytes = 1, .key = (const uint8_t *)"k",
		.value_bytes = 1, .value = (const uint8_t *)"v",
	};
	int n = codec_batch_encode(&c, 1, e->data[index - 1],
				   sizeof e->data[index - 1]);
	ASSERT_GT(n, 0);
	return (struct entry){ .term = 1, .index = index, .type = ENTRY_COMMAND,
			       .data_bytes = (uint32_t)n,
			       .data = e->data[index - 1] };
}

/* ---- tests -------------------------------------------------------------------- */

TEST(results_before_commit_persisted_after_sync_pulled_entries_applied)
{
	static struct env e;
	env_open(&e);
	struct entry en[2] = { put_entry(&e, 1), put_entry(&e, 2) };
	ASSERT_EQ(disk_job_add_entries(&e.job, en, 2), 0);
	ASSERT_EQ(disk_job_add_committed(&e.job, &en[0], 1), 0);
	S.pull = en[1]; /* becomes committed while the job runs */
	disk_submit(&e.disk, &e.job);
	/* step 1: entry 1's result leaves before the batch commits */
	ASSERT_TRUE(run_until(&e.loop, &S.results, 1));
	ASSERT_EQ(S.commits_at_result[0], 0u);
	ASSERT_EQ(S.seq[0], 1u);
	ASSERT_EQ(S.status[0], KV_OK);
	ASSERT_TRUE(wait_gate(&G.commits_entered, 1));
	uv_run(&e.loop, UV_RUN_NOWAIT);
	ASSERT_EQ(S.persisted, 0u); /* the commit is held: not persisted */
	/* step 2: persisted only after the commit and the sync */
	gate_allow(1);
	ASSERT_TRUE(run_until(&e.loop, &S.persisted, 1));
	ASSERT_EQ(S.commits_at_persisted, 1u);
	ASSERT_EQ(S.syncs_at_persisted, 1u);
	ASSERT_EQ(S.results_at_persisted, 1u);
	/* step 3: the pulled entry's result, into the cache: no commit */
	ASSERT_TRUE(run_until(&e.loop, &S.results, 2));
	ASSERT_EQ(S.seq[1], 2u);
	ASSERT_EQ(S.commits_at_result[1], 1u);
	ASSERT_TRUE(run_until(&e.loop, &S.done, 1));
	ASSERT_EQ(S.err_at_done, 0);
	ASSERT_EQ(gate_get(&G.commits_returned), 1u);
	ASSERT_EQ(S.results, 2u);
	ASSERT_TRUE(S.job == &e.job);
	/* idle: the cache goes to the store in a batch of its own, unsynced */
	gate_allow(2);
	ASSERT_TRUE(wait_gate(&G.commits_returned, 2));
	ASSERT_U64_EQ(store_applied(), 2);
	ASSERT_EQ(gate_get(&G.syncs_returned), 1u);
	env_close(&e);
}

TEST(nothing_pulled_means_one_batch_and_one_sync)
{
	static struct env e;
	env_open(&e);
	gate_allow(UINT32_MAX);
	struct entry en = put_entry(&e, 1);
	ASSERT_EQ(disk_job_add_entries(&e.job, &en, 1), 0);
	disk_submit(&e.disk, &e.job);
	ASSERT_TRUE(run_until(&e.loop, &S.done, 1));
	ASSERT_EQ(S.persisted, 1u);
	ASSERT_EQ(S.results, 0u);
	ASSERT_EQ(S.err_at_done, 0);
	ASSERT_EQ(gate_get(&G.commits_returned), 1u);
	ASSERT_EQ(gate_get(&G.syncs_returned), 1u);
	env_close(&e);
}

TEST(a_failed_apply_posts_no_results_and_sticks)
{
	static struct env e;
	env_open(&e);
	G.session_get_rc = KEEL_ENOMEM; /* kv_apply reads the session */
	gate_allow(UINT32_MAX);
	struct entry en = put_entry(&e, 1);
	ASSERT_EQ(disk_job_add_entries(&e.job, &en, 1), 0);
	ASSERT_EQ(disk_job_add_committed(&e.job, &en, 1), 0);
	disk_submit(&e.disk, &e.job);
	ASSERT_TRUE(run_until(&e.loop, &S.done, 1));
	ASSERT_EQ(S.results, 0u);
	ASSERT_EQ(S.persisted, 0u);
	ASSERT_NE(S.err_at_done, 0);
	/* invariant 2: the next job fails without touching the store */
	G.session_get_rc = 0;
	disk_job_reset(&e.job);
	ASSERT_EQ(disk_job_add_entries(&e.job, &en, 1), 0);
	ASSERT_EQ(disk_job_add_committed(&e.job, &en, 1), 0);
	disk_submit(&e.disk, &e.job);
	ASSERT_TRUE(run_until(&e.loop, &S.done, 2));
	ASSERT_EQ(S.results, 0u);
	ASSERT_EQ(S.persisted, 0u);
	ASSERT_EQ(S.err_at_done, KEEL_ESTORAGE);
	ASSERT_EQ(gate_get(&G.commits_entered), 0u);
	env_close(&e);
}

TEST(a_failed_log_commit_is_never_reported_persisted)
{
	static struct env e;
	env_open(&e);
	G.commit_rc = KEEL_ESTORAGE;
	struct entry en = put_entry(&e, 1);
	ASSERT_EQ(disk_job_add_entries(&e.job, &en, 1), 0);
	ASSERT_EQ(disk_job_add_committed(&e.job, &en, 1), 0);
	disk_submit(&e.disk, &e.job);
	ASSERT_TRUE(run_until(&e.loop, &S.results, 1)); /* committed: may leave */
	gate_allow(UINT32_MAX);
	ASSERT_TRUE(run_until(&e.loop, &S.done, 1));
	ASSERT_EQ(S.err_at_done, KEEL_ESTORAGE);
	ASSERT_EQ(S.persisted, 0u);
	ASSERT_EQ(gate_get(&G.syncs_returned), 0u);
	env_close(&e);
}

/* Submit e's job (after a reset) with log entries en[0..n) of which the
 * first `committed` are committed at submission, and wait for it. */
static void run_job(struct env *e, const struct entry *en, uint32_t n,
		    uint32_t committed, uint32_t done_want)
{
	disk_job_reset(&e->job);
	if (n > 0)
		ASSERT_EQ(disk_job_add_entries(&e->job, en, n), 0);
	if (committed > 0)
		ASSERT_EQ(disk_job_add_committed(&e->job, en, committed), 0);
	disk_submit(&e->disk, &e->job);
	ASSERT_TRUE(run_until(&e->loop, &S.done, done_want));
	ASSERT_EQ(S.err_at_done, 0);
}

TEST(a_small_cache_rides_in_the_next_jobs_log_batch)
{
	static struct env e;
	e.opt.idle_flush_ms = DISK_FLUSH_MS_MAX; /* no idle flush here */
	env_open(&e);
	gate_allow(UINT32_MAX);
	struct entry en[3] = { put_entry(&e, 1), put_entry(&e, 2),
			       put_entry(&e, 3) };
	S.pull = en[1];
	run_job(&e, en, 2, 1, 1); /* entry 1 rides in batch 1; 2 is cached */
	ASSERT_EQ(gate_get(&G.commits_returned), 1u);
	S.pull = (struct entry){ 0 };
	run_job(&e, &en[2], 1, 0, 2); /* its log batch carries entry 2 */
	ASSERT_EQ(gate_get(&G.commits_returned), 2u);
	ASSERT_U64_EQ(e.job.flush_count, 2);  /* one per job, riding */
	ASSERT_U64_EQ(e.job.flush_items, 4);  /* key k and client 7's session */
	ASSERT_EQ(gate_get(&G.syncs_returned), 2u);
	ASSERT_U64_EQ(store_applied(), 2);
	disk_stop(&e.disk); /* nothing cached: a stop still syncs */
	ASSERT_EQ(gate_get(&G.syncs_returned), 3u);
	env_close(&e);
}

TEST(reads_see_the_cache_and_a_stop_flushes_it_with_a_sync)
{
	static struct env e;
	e.opt.flush_ms = DISK_FLUSH_MS_MAX; /* nothing is due during the test */
	e.opt.idle_flush_ms = DISK_FLUSH_MS_MAX;
	env_open(&e);
	gate_allow(UINT32_MAX);
	struct entry en = put_entry(&e, 1);
	run_job(&e, &en, 1, 1, 1);
	ASSERT_EQ(S.results, 1u);
	const uint8_t *v;
	uint32_t vb;
	ASSERT_EQ(store_get("k", &v, &vb), KEEL_ENOTFOUND); /* cached only */
	ASSERT_U64_EQ(store_applied(), 0);
	disk_job_reset(&e.job);
	ASSERT_EQ(disk_job_add_read(&e.job, 9, (const uint8_t *)"k", 1), 0);
	disk_submit(&e.disk, &e.job);
	ASSERT_TRUE(run_until(&e.loop, &S.done, 2));
	ASSERT_EQ(e.job.reads[0].status, 0);
	ASSERT_EQ(e.job.reads[0].value_bytes, 1u);
	ASSERT_EQ(e.job.reads[0].value[0], 'v');
	uint32_t syncs = gate_get(&G.syncs_returned);
	disk_stop(&e.disk);
	ASSERT_EQ(store_get("k", &v, &vb), 0);
	ASSERT_EQ(vb, 1u);
	ASSERT_U64_EQ(store_applied(), 1);
	ASSERT_EQ(gate_get(&G.syncs_returned), syncs + 1);
	env_close(&e);
}

/* Invariant 7: a job reports the store's own applied index (not the
 * cache's), and compaction up to it needs no flush. */
TEST(a_job_reports_the_stores_applied_index_which_bounds_compaction)
{
	static struct env e;
	static struct snapjob sj;
	e.opt.idle_flush_ms = DISK_FLUSH_MS_MAX; /* no idle flush here */
	env_open(&e);
	e.disk.snapjob = &sj;
	gate_allow(UINT32_MAX);
	struct entry en[2] = { put_entry(&e, 1), put_entry(&e, 2) };
	S.pull = en[1];
	run_job(&e, en, 2, 1, 1); /* 1 rides in the log batch; 2 is cached */
	ASSERT_U64_EQ(e.job.store_applied, 1);
	S.pull = (struct entry){ 0 };
	disk_job_reset(&e.job);
	e.job.snap = snap_work_new();
	ASSERT_TRUE(e.job.snap != NULL);
	e.job.snap->compact_index = 1; /* what the loop may ask: <= 1 */
	e.job.snap->compact_term = 1;
	e.job.snap->compact_membership.member_count = 1;
	e.job.snap->compact_membership.members[0] =
		(struct member){ .id = 1, .role = MEMBER_VOTER };
	uint64_t flushes = 0;
	disk_submit(&e.disk, &e.job);
	ASSERT_TRUE(run_until(&e.loop, &S.done, 2));
	ASSERT_EQ(S.err_at_done, 0);
	ASSERT_TRUE(e.job.snap->compacted);
	flushes = e.job.flush_count;
	ASSERT_U64_EQ(flushes, 2); /* entry 2 rode in this job's batch */
	ASSERT_U64_EQ(e.job.store_applied, 2);
	uint64_t first, last;
	ASSERT_EQ(G.real.ops->log_bounds(G.real.impl, &first, &last), 0);
	ASSERT_U64_EQ(first, 2);
	ASSERT_U64_EQ(store_applied(), 2);
	env_close(&e);
	snapjob_close(&sj);
}

TEST(a_failed_flush_fails_the_job_and_sticks)
{
	static struct env e;
	e.opt.idle_flush_ms = DISK_FLUSH_MS_MAX;
	env_open(&e);
	gate_allow(UINT32_MAX);
	struct entry en[2] = { put_entry(&e, 1), put_entry(&e, 2) };
	S.pull = en[0];
	run_job(&e, en, 1, 0, 1); /* entry 1 cached (pulled) */
	ASSERT_EQ(S.results, 1u);
	S.pull = (struct entry){ 0 };
	G.kv_put_rc = KEEL_ENOMEM; /* the store refuses the flush */
	disk_job_reset(&e.job);
	ASSERT_EQ(disk_job_add_entries(&e.job, &en[1], 1), 0);
	disk_submit(&e.disk, &e.job);
	ASSERT_TRUE(run_until(&e.loop, &S.done, 2));
	ASSERT_NE(S.err_at_done, 0);
	ASSERT_EQ(S.persisted, 1u); /* only the first job's */
	ASSERT_U64_EQ(store_applied(), 0);
	uint64_t first, last;
	ASSERT_EQ(G.real.ops->log_bounds(G.real.impl, &first, &last), 0);
	ASSERT_U64_EQ(last, 1); /* the failed batch was aborted */
	G.kv_put_rc = 0;
	disk_stop(&e.disk); /* invariant 7: a failed cache is never flushed */
	ASSERT_U64_EQ(store_applied(), 0);
	env_close(&e);
}
