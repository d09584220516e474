/* test_node_disk_random.c: a seeded randomized test of the storage thread
 * (node/disk.h) and its write-back cache (node/wcache.h).
 *
 * Per seed, a disk runs over io_sim's in-memory store with random
 * disk_options, driven like the server drives it: jobs carry new log
 * entries (term 1; ENTRY_COMMAND with put, del, cas and append by six
 * clients over eight keys, or NOOP; sometimes overwriting the uncommitted
 * tail), entries committed at submission, entries committed in the
 * persisted callback, reads, and now and then a compaction (at most to
 * the store's applied index the last job reported). In half the
 * seeds both kvs hold only 3 to 5 sessions, so evictions flush the cache
 * in the middle of an apply (wcache W3, W6). A reference store applies the
 * same committed entries with kv_apply directly (no cache); every result
 * and every read must equal the reference's.
 *
 * At random points the disk stops: cleanly (flush and sync), or as a crash
 * (every later write_commit and sync fails, so nothing more reaches the
 * store; then mem_store_crash drops the unsynced batches, or keeps only a
 * prefix of them). Then the stored state is checked: the snapshot point is where
 * the test compacted, at or below the store's applied index (invariant 7);
 * the applied index is at most the committed one; the log still holds every
 * committed entry above it. The node's replay (the entries from the applied
 * index to the commit index, committed at submission) must then bring the
 * store to the reference's exact kv, sessions and applied index (digest),
 * with the same results as the first time. */
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "../core/codec.h"
#include "../core/err.h"
#include "../io_sim/mem_store.h"
#include "../node/disk.h"
#include "harness.h"

#define SEEDS 300u
#define JOBS_MIN 20u
#define JOBS_SPREAD 40u  /* jobs per seed: JOBS_MIN + rnd(JOBS_SPREAD) */
#define KEYS 8u
#define CLIENTS 6u
#define INDEX_MAX 512u   /* log indexes per seed (4 per job at most) */
#define ENTRY_BYTES_MAX 4096u
#define CMDS_MAX 3u
#define HIST_MAX (INDEX_MAX * CMDS_MAX)
#define CAS_EXPECTED_MAX 1024u
#define WAIT_MS_MAX 5000u

/* ---- the gate: a crash from now on (nothing more reaches the store) ---- */

static struct store real_st; /* the disk's mem_store, ungated */
static struct store_ops gate_ops;
static atomic_bool gate_failing;

static int gate_commit(void *s)
{
	if (atomic_load(&gate_failing)) {
		real_st.ops->write_abort(s);
		return KEEL_ESTORAGE;
	}
	return real_st.ops->write_commit(s);
}

static int gate_sync(void *s)
{
	if (atomic_load(&gate_failing))
		return KEEL_ESTORAGE;
	return real_st.ops->sync(s);
}

/* ---- the run ------------------------------------------------------------ */

struct run {
	uint64_t rng;
	uv_loop_t loop;
	struct mem_store mem; /* the disk's store */
	struct store st;      /* mem behind the gate */
	struct mem_store ref_mem;
	struct store ref;
	struct kv ref_kv;
	struct disk disk;
	struct snapjob sj;
	struct disk_job job;
	/* the log as the test's Raft sees it: ent[1..logged] */
	struct entry ent[INDEX_MAX + 1];
	uint8_t data[INDEX_MAX + 1][ENTRY_BYTES_MAX];
	uint64_t logged, committed, compacted;
	uint64_t store_applied; /* the last job's report: compaction's bound */
	uint32_t sessions_max; /* both kvs; below CLIENTS: evictions */
	uint64_t seq[CLIENTS + 1];
	/* the reference's results in apply order; the disk's must match */
	struct kv_result hist[HIST_MAX];
	uint32_t hist_count, hist_seen;
	bool pull;     /* the persisted callback commits more */
	uint32_t done;
	/* totals, printed once */
	uint64_t status[KV_STALE_SEQ + 1], duplicates;
	uint64_t jobs, results, reads, pulls, compactions, crashes, tears,
		replays, replayed;
};

static struct run R;

static uint64_t rng_next(void)
{
	uint64_t z = (R.rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint32_t rnd(uint32_t n)
{
	return (uint32_t)(rng_next() % n);
}

/* ---- the reference ---------------------------------------------------- */

static void on_ref_result(void *ctx, const struct kv_result *res)
{
	(void)ctx;
	ASSERT_LT(R.hist_count, HIST_MAX);
	R.hist[R.hist_count++] = *res;
}

/* Commit R.committed+1..upto: the reference applies them, j carries them. */
static void commit_upto(struct disk_job *j, uint64_t upto)
{
	ASSERT_LE(upto, R.logged);
	if (upto <= R.committed)
		return;
	size_t n = (size_t)(upto - R.committed);
	ASSERT_EQ(kv_apply(&R.ref_kv, &R.ent[R.committed + 1], n,
			   on_ref_result, NULL),
		  0);
	ASSERT_EQ(R.ref.ops->sync(R.ref.impl), 0);
	ASSERT_EQ(disk_job_add_committed(j, &R.ent[R.committed + 1], n), 0);
	R.committed = upto;
}

/* ---- entries ---------------------------------------------------------- */

static void key_of(uint32_t k, uint8_t key[2])
{
	key[0] = 'k';
	key[1] = (uint8_t)('0' + k);
}

static uint32_t random_value(uint8_t *out)
{
	uint32_t n = 1 + rnd(8);
	for (uint32_t i = 0; i < n; i++)
		out[i] = (uint8_t)('a' + rnd(26));
	return n;
}

static uint64_t next_seq(uint64_t client)
{
	uint64_t *s = &R.seq[client];
	uint32_t r = rnd(10);
	if (r == 8 && *s > 0)
		return *s; /* a retry */
	if (r == 9 && *s > 1)
		return *s - 1; /* stale */
	return ++*s;
}

static void make_entry(uint64_t index)
{
	ASSERT_LE(index, INDEX_MAX);
	struct entry *e = &R.ent[index];
	if (rnd(10) == 0) {
		*e = (struct entry){ .term = 1, .index = index,
				     .type = ENTRY_NOOP };
		return;
	}
	static uint8_t keys[CMDS_MAX][2], vals[CMDS_MAX][8];
	static uint8_t expected[CMDS_MAX][CAS_EXPECTED_MAX];
	struct kv_command c[CMDS_MAX];
	uint32_t n = 1 + rnd(CMDS_MAX);
	for (uint32_t i = 0; i < n; i++) {
		uint64_t client = 1 + rnd(CLIENTS);
		key_of(rnd(KEYS), keys[i]);
		c[i] = (struct kv_command){
			.client_id = client, .seq = next_seq(client),
			.key_bytes = 2, .key = keys[i],
		};
		uint32_t op = rnd(4);
		if (op == 0) {
			c[i].op = KV_PUT;
		} else if (op == 1) {
			c[i].op = KV_DEL;
			continue;
		} else if (op == 2) {
			c[i].op = KV_APPEND;
		} else {
			c[i].op = KV_CAS;
			const uint8_t *v;
			uint32_t vb;
			int rc = kv_get(&R.ref_kv, keys[i], 2, &v, &vb);
			ASSERT_TRUE(rc == 0 || rc == KEEL_ENOTFOUND);
			uint32_t how = rnd(4);
			if (how == 0) {
				c[i].cas_absent = true;
			} else if (how <= 2 && rc == 0 &&
				   vb <= CAS_EXPECTED_MAX) {
				memcpy(expected[i], v, vb); /* likely to hold */
				c[i].expected_bytes = vb;
			} else {
				c[i].expected_bytes = random_value(expected[i]);
			}
			c[i].expected = expected[i];
		}
		c[i].value_bytes = random_value(vals[i]);
		c[i].value = vals[i];
	}
	int bytes = codec_batch_encode(c, n, R.data[index], ENTRY_BYTES_MAX);
	ASSERT_GT(bytes, 0);
	*e = (struct entry){ .term = 1, .index = index, .type = ENTRY_COMMAND,
			     .data_bytes = (uint32_t)bytes,
			     .data = R.data[index] };
}

/* ---- the loop side ------------------------------------------------------ */

static void on_persisted(void *ctx, struct disk_job *j)
{
	(void)ctx;
	if (!R.pull || R.logged == R.committed)
		return;
	R.pulls++;
	commit_upto(j, R.committed + 1 + rnd((uint32_t)(R.logged - R.committed)));
}

static void on_results(void *ctx, const struct kv_result *res, uint32_t n)
{
	(void)ctx;
	for (uint32_t i = 0; i < n; i++) {
		ASSERT_LT(R.hist_seen, R.hist_count);
		const struct kv_result *want = &R.hist[R.hist_seen++];
		ASSERT_U64_EQ(res[i].index, want->index);
		ASSERT_U64_EQ(res[i].client_id, want->client_id);
		ASSERT_U64_EQ(res[i].seq, want->seq);
		ASSERT_EQ(res[i].status, want->status);
		ASSERT_EQ(res[i].duplicate, want->duplicate);
		R.results++;
		R.duplicates += res[i].duplicate;
		if (res[i].status <= KV_STALE_SEQ)
			R.status[res[i].status]++;
	}
}

static void on_done(void *ctx, struct disk_job *j)
{
	(void)ctx;
	(void)j;
	R.done++;
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
static bool run_until(const uint32_t *counter, uint32_t want)
{
	bool expired = false;
	uv_timer_t t;
	uv_timer_init(&R.loop, &t);
	t.data = &expired;
	uv_timer_start(&t, on_timeout, WAIT_MS_MAX, 0);
	while (!expired && *counter < want)
		uv_run(&R.loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(&R.loop, UV_RUN_NOWAIT);
	return *counter >= want;
}

static struct disk_options random_options(void)
{
	static const uint32_t flush_ms[] = { 0, 1, 5, 50 };
	static const uint32_t idle_ms[] = { 1, 20 };
	return (struct disk_options){
		.flush_ms = flush_ms[rnd(4)],
		.idle_flush_ms = idle_ms[rnd(2)],
	};
}

static void start_disk(const struct disk_options *opt)
{
	memset(&R.sj, 0, sizeof R.sj);
	ASSERT_EQ(disk_start(&R.disk, &R.loop, &R.st, opt, &callbacks, NULL),
		  0);
	struct store_meta m; /* the thread has no job: the store is idle */
	ASSERT_EQ(real_st.ops->meta_get(real_st.impl, &m), 0);
	R.store_applied = m.applied_index;
	R.disk.snapjob = &R.sj;
	/* before the first submit (which hands kv to the storage thread) */
	R.disk.kv.sessions_max = R.sessions_max;
}

static void stop_disk(void)
{
	disk_stop(&R.disk);
	uv_run(&R.loop, UV_RUN_DEFAULT); /* the async handle's close */
	snapjob_close(&R.sj);
}

/* Submit R.job and wait for it; it must succeed with every result. */
static void submit_and_wait(void)
{
	disk_submit(&R.disk, &R.job);
	ASSERT_TRUE(run_until(&R.done, R.done + 1));
	ASSERT_EQ(R.job.err, 0);
	ASSERT_EQ(R.hist_seen, R.hist_count);
	/* the store's own index: it never falls while the disk runs */
	ASSERT_LE(R.job.store_applied, R.committed);
	ASSERT_GE(R.job.store_applied, R.store_applied);
	R.store_applied = R.job.store_applied;
	R.jobs++;
}

/* One job like the server's: new entries, committed ones, reads, maybe a
 * compaction; the persisted callback may commit more. */
static void random_job(void)
{
	struct disk_job *j = &R.job;
	disk_job_reset(j);
	uint32_t n = rnd(5);
	uint64_t start = R.logged + 1;
	if (n > 0 && R.logged > R.committed && rnd(6) == 0) /* a new leader's */
		start = R.committed + 1 +
			rnd((uint32_t)(R.logged - R.committed));
	/* committed at submission: logged before, and not overwritten now */
	uint64_t can = n > 0 ? start - 1 : R.logged;
	if (can > R.committed && rnd(2) == 0)
		commit_upto(j, R.committed + 1 +
				       rnd((uint32_t)(can - R.committed)));
	for (uint32_t i = 0; i < n; i++)
		make_entry(start + i);
	if (n > 0) {
		ASSERT_EQ(disk_job_add_entries(j, &R.ent[start], n), 0);
		R.logged = start + n - 1;
	}
	uint32_t reads = rnd(3) == 0 ? 1 + rnd(3) : 0;
	for (uint32_t i = 0; i < reads; i++) {
		uint8_t key[2];
		key_of(rnd(KEYS), key);
		ASSERT_EQ(disk_job_add_read(j, i, key, 2), 0);
	}
	/* drawn whether used or not: store_applied depends on timing (idle
	 * flushes), the seed's other choices must not */
	bool compact = rnd(10) == 0;
	uint64_t pick = rng_next();
	if (compact && R.store_applied > R.compacted) {
		j->snap = snap_work_new();
		ASSERT_TRUE(j->snap != NULL);
		uint64_t at = R.compacted + 1 +
			      pick % (R.store_applied - R.compacted);
		j->snap->compact_index = at;
		j->snap->compact_term = 1;
		j->snap->compact_membership.member_count = 1;
		j->snap->compact_membership.members[0] =
			(struct member){ .id = 1, .role = MEMBER_VOTER };
		R.compacted = at;
		R.compactions++;
	}
	R.pull = rnd(2) == 0;
	if (disk_job_empty(j))
		return;
	submit_and_wait();
	R.pull = false;
	for (uint32_t i = 0; i < j->read_count; i++) {
		const struct disk_read *r = &j->reads[i];
		const uint8_t *v;
		uint32_t vb;
		int rc = kv_get(&R.ref_kv, r->key, r->key_bytes, &v, &vb);
		ASSERT_EQ(r->status, rc);
		if (rc == 0) {
			ASSERT_EQ(r->value_bytes, vb);
			ASSERT_MEM_EQ(r->value, v, vb);
		}
		R.reads++;
	}
	if (j->snap != NULL)
		ASSERT_TRUE(j->snap->compacted);
}

/* The stopped disk's store: the snapshot point, the applied index
 * (returned) and the committed log above it. */
static uint64_t check_stored(void)
{
	struct store_meta m;
	ASSERT_EQ(real_st.ops->meta_get(real_st.impl, &m), 0);
	ASSERT_U64_EQ(m.snapshot_index, R.compacted); /* synced when cut */
	ASSERT_LE(m.snapshot_index, m.applied_index); /* invariant 7 */
	ASSERT_LE(m.applied_index, R.committed);
	uint64_t first, last;
	ASSERT_EQ(real_st.ops->log_bounds(real_st.impl, &first, &last), 0);
	ASSERT_U64_EQ(first, m.snapshot_index + 1);
	ASSERT_U64_EQ(last, R.logged); /* every log batch was synced */
	for (uint64_t i = m.applied_index + 1; i <= R.committed; i++) {
		struct entry e;
		ASSERT_EQ(real_st.ops->log_get(real_st.impl, i, &e), 0);
		ASSERT_U64_EQ(e.index, i);
		ASSERT_U64_EQ(e.term, R.ent[i].term);
		ASSERT_EQ(e.type, R.ent[i].type);
		ASSERT_EQ(e.data_bytes, R.ent[i].data_bytes);
		if (e.data_bytes > 0)
			ASSERT_MEM_EQ(e.data, R.ent[i].data, e.data_bytes);
	}
	return m.applied_index;
}

/* The node's restart: entries applied+1..committed, committed at
 * submission; their results must be those of the first time. */
static void replay(uint64_t applied)
{
	R.hist_seen = 0;
	while (R.hist_seen < R.hist_count &&
	       R.hist[R.hist_seen].index <= applied)
		R.hist_seen++;
	disk_job_reset(&R.job);
	ASSERT_EQ(disk_job_add_committed(&R.job, &R.ent[applied + 1],
					 (size_t)(R.committed - applied)),
		  0);
	submit_and_wait();
	R.replays++;
	R.replayed += R.committed - applied;
}

/* Stop the disk cleanly or as a crash; leave it stopped with its store
 * equal to the reference (replaying after a crash). */
static void stop_and_check(bool crash)
{
	if (crash) {
		/* the stop's flush fails and logs it: expected, so quiet */
		fflush(stderr);
		int saved = dup(2), null = open("/dev/null", O_WRONLY);
		ASSERT_GE(saved, 0);
		ASSERT_GE(null, 0);
		ASSERT_GE(dup2(null, 2), 0);
		atomic_store(&gate_failing, true);
		stop_disk();
		atomic_store(&gate_failing, false);
		ASSERT_GE(dup2(saved, 2), 0);
		close(saved);
		close(null);
	} else {
		stop_disk();
	}
	if (crash) {
		uint64_t tear = rnd(2) == 0 ? 0 : 1 + (rng_next() >> 1);
		mem_store_crash(&R.mem, tear);
		R.crashes++;
		R.tears += tear != 0;
	}
	/* drawn whether used or not: what the crash kept depends on timing
	 * (idle flushes), the seed's random choices must not */
	struct disk_options opt = random_options();
	uint64_t applied = check_stored();
	if (!crash)
		ASSERT_U64_EQ(applied, R.committed); /* a clean stop flushes */
	if (applied < R.committed) {
		start_disk(&opt);
		replay(applied);
		stop_disk();
		ASSERT_U64_EQ(check_stored(), R.committed);
	}
	ASSERT_U64_EQ(mem_store_digest(&R.mem), mem_store_digest(&R.ref_mem));
}

/* A failed ASSERT leaves run_seed by longjmp: say which seed it was. */
static uint64_t seed_running;
static bool seed_unfinished;

static void report_seed(void)
{
	if (seed_unfinished)
		fprintf(stderr, "test_node_disk_random: failed in seed %" PRIu64
			" (rerun with KEEL_SEED=%" PRIu64 ")\n",
			seed_running, seed_running);
}

static void run_seed(uint64_t seed)
{
	seed_running = seed;
	seed_unfinished = true;
	memset(&R, 0, sizeof R);
	R.rng = seed;
	ASSERT_EQ(uv_loop_init(&R.loop), 0);
	ASSERT_EQ(mem_store_init(&R.mem), 0);
	mem_store_bind(&R.mem, &real_st);
	gate_ops = *real_st.ops;
	gate_ops.write_commit = gate_commit;
	gate_ops.sync = gate_sync;
	R.st = (struct store){ .ops = &gate_ops, .impl = real_st.impl };
	ASSERT_EQ(mem_store_init(&R.ref_mem), 0);
	mem_store_bind(&R.ref_mem, &R.ref);
	kv_init(&R.ref_kv, &R.ref, &(struct keel_alloc){ 0 });
	R.sessions_max = rnd(2) == 0 ? 3 + rnd(3) : KV_SESSIONS_MAX;
	R.ref_kv.sessions_max = R.sessions_max;
	disk_job_init(&R.job);
	struct disk_options opt = random_options();
	start_disk(&opt);
	uint32_t jobs = JOBS_MIN + rnd(JOBS_SPREAD);
	for (uint32_t i = 0; i < jobs; i++) {
		random_job();
		if (rnd(10) == 0) {
			stop_and_check(rnd(2) == 0);
			opt = random_options();
			start_disk(&opt);
		}
	}
	stop_and_check(rnd(2) == 0);
	disk_job_reset(&R.job);
	ASSERT_EQ(uv_loop_close(&R.loop), 0);
	mem_store_close(&R.mem);
	mem_store_close(&R.ref_mem);
	seed_unfinished = false;
}

TEST(random_jobs_crashes_and_replays_match_a_cacheless_reference)
{
	uint64_t base = 0x6b65656cull; /* "keel" */
	const char *env = getenv("KEEL_SEED");
	if (env != NULL)
		base = strtoull(env, NULL, 0);
	atexit(report_seed);
	uint64_t totals[9] = { 0 }, status[KV_STALE_SEQ + 1] = { 0 }, dups = 0;
	for (uint64_t s = 0; s < SEEDS; s++) {
		run_seed(base + s);
		uint64_t t[9] = { R.jobs, R.results, R.reads, R.pulls,
				  R.compactions, R.crashes, R.tears,
				  R.replays, R.replayed };
		for (int i = 0; i < 9; i++)
			totals[i] += t[i];
		for (int i = 0; i <= KV_STALE_SEQ; i++)
			status[i] += R.status[i];
		dups += R.duplicates;
	}
	/* jobs and replays vary a little from run to run: a crash keeps
	 * what the idle flushes had written by then */
	printf("  %u seeds from %" PRIu64 ": %" PRIu64 " jobs, %" PRIu64
	       " results, %" PRIu64 " reads, %" PRIu64 " pulls, %" PRIu64
	       " compactions, %" PRIu64 " crashes (%" PRIu64 " torn), %" PRIu64
	       " replays of %" PRIu64 " entries\n",
	       SEEDS, base, totals[0], totals[1], totals[2], totals[3],
	       totals[4], totals[5], totals[6], totals[7], totals[8]);
	printf("  results: %" PRIu64 " ok, %" PRIu64 " not found, %" PRIu64
	       " cas failed, %" PRIu64 " stale, %" PRIu64 " duplicates\n",
	       status[KV_OK], status[KV_NOT_FOUND], status[KV_CAS_FAILED],
	       status[KV_STALE_SEQ], dups);
	/* the run must exercise what it claims to */
	ASSERT_GT(totals[3], 0);
	ASSERT_GT(totals[4], 0);
	ASSERT_GT(totals[7], 0);
}
