/* test_wcache.c: the write-back cache of the applied state (node/wcache.h).
 *
 * The main test is differential: store A is driven through a wcache view,
 * store B directly, with the same random committed entries applied by
 * kv_apply (puts, deletes, cas, appends over a small key space; retries and
 * stale seqs; more clients than sessions_max, so eviction and W3's flush
 * run often). After every apply the results, every key, every session and
 * the applied index read through the view equal B's (W1), whatever the
 * owner did with A's batch (flush and commit, commit without a flush, or
 * leave the cache alone); after a flush, and after an apply whose batch a
 * flush wrote into (W6), A's digest equals B's. The other tests pin one
 * rule each: a crash loses only the cache and re-applying the log from the
 * store's applied index gives B's state (also when a flush inside an apply
 * wrote an evicted session, W6); the bounds (W2); a failed flush leaves the
 * cache as it was (W5); deletions; W3; wcache_drop. The real store is
 * io_sim's in-memory one. */
#include <stdlib.h>
#include <string.h>

#include "../core/codec.h"
#include "../core/err.h"
#include "../core/kv.h"
#include "../io_sim/mem_store.h"
#include "../node/wcache.h"
#include "harness.h"

#define KEYS 50u              /* key space of the random commands */
#define CLIENTS_MAX 20u       /* client ids 1..CLIENTS_MAX */
#define CLIENTS_HOT 6u        /* most commands come from 1..CLIENTS_HOT */
#define SESSIONS_MAX 8u       /* kv.sessions_max on both sides */
#define CMDS_PER_ENTRY_MAX 5u
#define ENTRIES_PER_APPLY_MAX 3u
#define VALUE_BYTES_GEN_MAX 24u   /* random values */
#define EXPECTED_BYTES_MAX 512u   /* cas expected copied from B */
#define ENTRY_DATA_BYTES 4096u
#define LOG_MAX 512u              /* entries one seed may generate */
#define RESULTS_MAX 4096u         /* results of one kv_apply (a re-apply) */

/* ---- a small PRNG (splitmix64) ------------------------------------------- */

static uint64_t rnd_state;

static uint64_t rnd(void)
{
	uint64_t z = (rnd_state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint32_t rnd_below(uint32_t n)
{
	return (uint32_t)(rnd() % n);
}

/* ---- a store whose kv_put can be made to fail (W5) ------------------------- */

static struct store_ops fail_ops;
static const struct store_ops *fail_inner;
static int fail_rc;              /* nonzero: kv_put fails ... */
static uint32_t fail_puts_first; /* ... after this many more succeed */

static int fail_kv_put(void *s, const uint8_t *k, uint32_t kb,
		       const uint8_t *v, uint32_t vb)
{
	if (fail_rc != 0) {
		if (fail_puts_first == 0)
			return fail_rc;
		fail_puts_first--;
	}
	return fail_inner->kv_put(s, k, kb, v, vb);
}

static void fail_bind(struct mem_store *m, struct store *out)
{
	mem_store_bind(m, out);
	fail_inner = out->ops;
	fail_ops = *out->ops;
	fail_ops.kv_put = fail_kv_put;
	out->ops = &fail_ops;
	fail_rc = 0;
	fail_puts_first = 0;
}

/* ---- small helpers ---------------------------------------------------------- */

static int get(struct store *s, const char *key, const uint8_t **v,
	       uint32_t *vb)
{
	return s->ops->kv_get(s->impl, (const uint8_t *)key,
			      (uint32_t)strlen(key), v, vb);
}

static int put(struct store *s, const char *key, const char *val)
{
	return s->ops->kv_put(s->impl, (const uint8_t *)key,
			      (uint32_t)strlen(key), (const uint8_t *)val,
			      (uint32_t)strlen(val));
}

static int del(struct store *s, const char *key)
{
	return s->ops->kv_del(s->impl, (const uint8_t *)key,
			      (uint32_t)strlen(key));
}

static void assert_val(struct store *s, const char *key, const char *want)
{
	const uint8_t *v;
	uint32_t vb;
	ASSERT_EQ(get(s, key, &v, &vb), 0);
	ASSERT_EQ(vb, strlen(want));
	ASSERT_MEM_EQ(v, want, vb);
}

static void assert_absent(struct store *s, const char *key)
{
	const uint8_t *v;
	uint32_t vb;
	ASSERT_EQ(get(s, key, &v, &vb), KEEL_ENOTFOUND);
}

static uint64_t applied_of(struct store *s)
{
	struct store_meta m;
	ASSERT_EQ(s->ops->meta_get(s->impl, &m), 0);
	return m.applied_index;
}

/* Commit the pairs kv[0..n) (key, value, key, value...) to s. */
static void commit_puts(struct store *s, const char *const *kv, size_t n)
{
	ASSERT_EQ(s->ops->write_begin(s->impl), 0);
	for (size_t i = 0; i + 1 < n; i += 2)
		ASSERT_EQ(put(s, kv[i], kv[i + 1]), 0);
	ASSERT_EQ(s->ops->write_commit(s->impl), 0);
}

/* ---- the log the random tests apply ------------------------------------------ */

struct log {
	uint8_t data[LOG_MAX][ENTRY_DATA_BYTES];
	struct entry e[LOG_MAX]; /* e[i].index == i + 1 */
	uint64_t last;
};

struct gen {
	uint32_t clients;    /* client ids 1..clients */
	uint32_t hot;        /* most commands from 1..hot */
	uint64_t seq[CLIENTS_MAX + 1];
};

static void key_of(uint32_t k, char out[8])
{
	snprintf(out, 8, "k%02u", k);
}

/* One random write command into cmd, its bytes in key/val/exp; reads the
 * current value of its key from b for a cas that may succeed. */
static void gen_command(struct gen *g, struct store *b, struct kv_command *cmd,
			char key[8], uint8_t val[VALUE_BYTES_GEN_MAX],
			uint8_t exp[EXPECTED_BYTES_MAX])
{
	uint32_t client = rnd_below(5) == 0 ? 1 + rnd_below(g->clients)
					    : 1 + rnd_below(g->hot);
	uint64_t *seq = &g->seq[client];
	uint32_t r = rnd_below(20);
	uint64_t s;
	if (r < 2 && *seq > 0)
		s = *seq; /* a retry */
	else if (r == 2 && *seq > 1)
		s = *seq - 1; /* stale */
	else
		s = ++*seq;
	key_of(rnd_below(KEYS), key);
	uint32_t vb = rnd_below(VALUE_BYTES_GEN_MAX + 1);
	for (uint32_t i = 0; i < vb; i++)
		val[i] = (uint8_t)('a' + rnd_below(26));
	*cmd = (struct kv_command){
		.client_id = client, .seq = s, .key = (const uint8_t *)key,
		.key_bytes = (uint32_t)strlen(key), .value = val,
		.value_bytes = vb,
	};
	uint32_t op = rnd_below(10);
	if (op < 4) {
		cmd->op = KV_PUT;
	} else if (op < 6) {
		cmd->op = KV_DEL;
		cmd->value_bytes = 0;
	} else if (op < 8) {
		cmd->op = KV_CAS;
		const uint8_t *cur;
		uint32_t cur_bytes;
		int rc = get(b, key, &cur, &cur_bytes);
		if (rc == KEEL_ENOTFOUND || rnd_below(5) == 0) {
			cmd->cas_absent = true;
		} else if (rc == 0 && cur_bytes <= EXPECTED_BYTES_MAX &&
			   rnd_below(3) != 0) {
			memcpy(exp, cur, cur_bytes);
			cmd->expected = exp;
			cmd->expected_bytes = cur_bytes;
		} else {
			cmd->expected = val; /* most likely a mismatch */
			cmd->expected_bytes = vb / 2;
		}
	} else {
		cmd->op = KV_APPEND;
		cmd->value_bytes = vb / 4;
	}
}

/* Append one random entry at l->last + 1 (a noop now and then). */
static void gen_entry(struct gen *g, struct store *b, struct log *l)
{
	ASSERT_LT(l->last, LOG_MAX);
	uint64_t index = ++l->last;
	struct entry *e = &l->e[index - 1];
	*e = (struct entry){.term = 1, .index = index, .type = ENTRY_NOOP};
	if (rnd_below(10) == 0)
		return;
	static struct kv_command cmds[CMDS_PER_ENTRY_MAX];
	static char keys[CMDS_PER_ENTRY_MAX][8];
	static uint8_t vals[CMDS_PER_ENTRY_MAX][VALUE_BYTES_GEN_MAX];
	static uint8_t exps[CMDS_PER_ENTRY_MAX][EXPECTED_BYTES_MAX];
	uint32_t n = 1 + rnd_below(CMDS_PER_ENTRY_MAX);
	for (uint32_t i = 0; i < n; i++)
		gen_command(g, b, &cmds[i], keys[i], vals[i], exps[i]);
	ASSERT_LE(codec_batch_encoded_bytes(cmds, n), ENTRY_DATA_BYTES);
	int bytes = codec_batch_encode(cmds, n, l->data[index - 1],
				       ENTRY_DATA_BYTES);
	ASSERT_GT(bytes, 0);
	e->type = ENTRY_COMMAND;
	e->data = l->data[index - 1];
	e->data_bytes = (uint32_t)bytes;
}

struct results {
	struct kv_result r[RESULTS_MAX];
	uint32_t n;
};

static void collect(void *ctx, const struct kv_result *res)
{
	struct results *rs = ctx;
	if (rs->n < RESULTS_MAX)
		rs->r[rs->n] = *res;
	rs->n++;
}

/* ---- the world: A behind a wcache, B alone -------------------------------------- */

struct world {
	struct mem_store ma, mb;
	struct store a, b;
	struct wcache c;
	struct kv kva, kvb;
	struct gen g;
	struct log log;
	uint64_t applied;         /* last index applied to both */
	uint64_t durable_floor;   /* A's applied index flushed and synced */
	uint64_t digest_b[LOG_MAX + 1]; /* B's digest after applying index i */
	bool probe_table; /* steps may ask the view's session table (W3) */
};

static void world_open(struct world *w, uint32_t clients, uint32_t hot)
{
	ASSERT_EQ(mem_store_init(&w->ma), 0);
	ASSERT_EQ(mem_store_init(&w->mb), 0);
	mem_store_bind(&w->ma, &w->a);
	mem_store_bind(&w->mb, &w->b);
	wcache_init(&w->c, &w->a);
	kv_init(&w->kva, &w->c.view, &(struct keel_alloc){0});
	kv_init(&w->kvb, &w->b, &(struct keel_alloc){0});
	w->kva.sessions_max = SESSIONS_MAX;
	w->kvb.sessions_max = SESSIONS_MAX;
	memset(&w->g, 0, sizeof(w->g));
	w->g.clients = clients;
	w->g.hot = hot;
	w->log.last = 0;
	w->applied = 0;
	w->durable_floor = 0;
	w->probe_table = true;
	w->digest_b[0] = mem_store_digest(&w->mb);
}

static void world_close(struct world *w)
{
	wcache_free(&w->c);
	mem_store_close(&w->ma);
	mem_store_close(&w->mb);
}

/* W1: every key, every session and the applied index read through the view
 * equal B's. */
static void compare_views(struct world *w)
{
	struct store *v = &w->c.view;
	for (uint32_t k = 0; k < KEYS; k++) {
		char key[8];
		key_of(k, key);
		const uint8_t *va, *vb;
		uint32_t na = 0, nb = 0;
		static uint8_t copy[KEEL_VALUE_BYTES_MAX];
		int rca = get(v, key, &va, &na);
		if (rca == 0)
			memcpy(copy, va, na);
		int rcb = get(&w->b, key, &vb, &nb);
		ASSERT_EQ(rca, rcb);
		if (rca == 0) {
			ASSERT_EQ(na, nb);
			ASSERT_MEM_EQ(copy, vb, na);
		}
	}
	for (uint64_t id = 1; id <= CLIENTS_MAX; id++) {
		struct kv_session sa = {0}, sb = {0};
		int rca = v->ops->session_get(v->impl, id, &sa);
		int rcb = w->b.ops->session_get(w->b.impl, id, &sb);
		ASSERT_EQ(rca, rcb);
		if (rca == 0) {
			ASSERT_U64_EQ(sa.client_id, sb.client_id);
			ASSERT_U64_EQ(sa.seq, sb.seq);
			ASSERT_U64_EQ(sa.last_index, sb.last_index);
			ASSERT_EQ(sa.status, sb.status);
		}
	}
	ASSERT_U64_EQ(applied_of(v), applied_of(&w->b));
}

/* W3: session_count and session_oldest through the view (an open batch:
 * they flush into it) equal B's. */
static void compare_sessions_table(struct world *w)
{
	struct store *v = &w->c.view;
	uint64_t na, nb;
	ASSERT_EQ(v->ops->session_count(v->impl, &na), 0);
	ASSERT_EQ(w->b.ops->session_count(w->b.impl, &nb), 0);
	ASSERT_U64_EQ(na, nb);
	struct kv_session sa = {0}, sb = {0};
	int rca = v->ops->session_oldest(v->impl, &sa);
	ASSERT_EQ(rca, w->b.ops->session_oldest(w->b.impl, &sb));
	if (rca == 0) {
		ASSERT_U64_EQ(sa.client_id, sb.client_id);
		ASSERT_U64_EQ(sa.last_index, sb.last_index);
	}
}

/* Open a batch on A; the owner clears wrote_real then (W6). */
static void begin_a(struct world *w)
{
	ASSERT_EQ(w->a.ops->write_begin(w->a.impl), 0);
	w->c.wrote_real = false;
}

static void flush_commit(struct world *w)
{
	ASSERT_EQ(wcache_flush(&w->c), 0);
	ASSERT_TRUE(wcache_empty(&w->c));
	ASSERT_EQ(wcache_items(&w->c), 0);
	ASSERT_EQ(w->a.ops->write_commit(w->a.impl), 0);
}

enum owner_move {
	MOVE_FLUSH_COMMIT,      /* flush, commit */
	MOVE_FLUSH_COMMIT_SYNC, /* flush, commit, sync */
	MOVE_COMMIT,            /* commit what the batch holds, no flush */
	MOVE_LEAVE,             /* abort the batch if no flush wrote to it */
	MOVE_COUNT
};

/* What the storage thread may do with A's batch after an apply. */
static void owner_move(struct world *w, enum owner_move m)
{
	struct store *a = &w->a;
	switch (m) {
	case MOVE_FLUSH_COMMIT:
		flush_commit(w);
		break;
	case MOVE_FLUSH_COMMIT_SYNC:
		flush_commit(w);
		ASSERT_EQ(a->ops->sync(a->impl), 0);
		w->durable_floor = w->applied;
		break;
	case MOVE_COMMIT:
		ASSERT_EQ(a->ops->write_commit(a->impl), 0);
		break;
	case MOVE_LEAVE:
		if (w->c.wrote_real)
			ASSERT_EQ(a->ops->write_commit(a->impl), 0);
		else
			a->ops->write_abort(a->impl);
		break;
	default:
		ASSERT_TRUE(false);
	}
	if (m == MOVE_FLUSH_COMMIT || m == MOVE_FLUSH_COMMIT_SYNC)
		ASSERT_U64_EQ(mem_store_digest(&w->ma), mem_store_digest(&w->mb));
}

/* Apply log entries from..to (inclusive) to A through the view, in one
 * kv_apply, inside a batch of A's the caller opened; their results. */
static void apply_a(struct world *w, uint64_t from, uint64_t to,
		    struct results *ra)
{
	ra->n = 0;
	ASSERT_EQ(kv_apply(&w->kva, &w->log.e[from - 1], (size_t)(to - from + 1),
			   collect, ra), 0);
	ASSERT_FALSE(w->c.aborted);
	ASSERT_LE(ra->n, RESULTS_MAX);
}

/* Generate 1..ENTRIES_PER_APPLY_MAX entries, apply them to both, compare. */
static void step(struct world *w, enum owner_move m)
{
	uint64_t from = w->log.last + 1;
	uint32_t n = 1 + rnd_below(ENTRIES_PER_APPLY_MAX);
	for (uint32_t i = 0; i < n; i++)
		gen_entry(&w->g, &w->b, &w->log);
	uint64_t to = w->log.last;

	static struct results ra, rb;
	begin_a(w);
	apply_a(w, from, to, &ra);
	rb.n = 0;
	ASSERT_EQ(kv_apply(&w->kvb, &w->log.e[from - 1], n, collect, &rb), 0);
	w->applied = to;
	w->digest_b[to] = mem_store_digest(&w->mb);
	for (uint64_t i = from; i < to; i++)
		w->digest_b[i] = 0; /* B never stood at i */

	ASSERT_EQ(ra.n, rb.n);
	for (uint32_t i = 0; i < ra.n; i++) {
		ASSERT_U64_EQ(ra.r[i].client_id, rb.r[i].client_id);
		ASSERT_U64_EQ(ra.r[i].seq, rb.r[i].seq);
		ASSERT_U64_EQ(ra.r[i].index, rb.r[i].index);
		ASSERT_EQ(ra.r[i].status, rb.r[i].status);
		ASSERT_EQ(ra.r[i].duplicate, rb.r[i].duplicate);
	}
	/* W6: a batch a flush wrote into holds the whole apply */
	if (w->c.wrote_real) {
		ASSERT_TRUE(wcache_empty(&w->c));
		ASSERT_U64_EQ(applied_of(&w->a), to);
		ASSERT_U64_EQ(mem_store_digest(&w->ma), mem_store_digest(&w->mb));
	}
	compare_views(w);
	if (w->probe_table && rnd_below(8) == 0)
		compare_sessions_table(w);
	owner_move(w, m);
	compare_views(w);
}

static enum owner_move random_move(void)
{
	return (enum owner_move)rnd_below(MOVE_COUNT);
}

/* Flush whatever is cached, commit, and compare A's and B's digests. */
static void world_settle(struct world *w)
{
	begin_a(w);
	flush_commit(w);
	ASSERT_U64_EQ(applied_of(&w->a), w->applied);
	ASSERT_U64_EQ(mem_store_kv_count(&w->ma), mem_store_kv_count(&w->mb));
	ASSERT_U64_EQ(mem_store_digest(&w->ma), mem_store_digest(&w->mb));
	compare_views(w);
}

/* ---- tests ------------------------------------------------------------------------ */

TEST(view_reads_as_the_store_applied_directly_random)
{
	static struct world w;
	uint64_t flushes = 0, steps_cached = 0;
	for (uint64_t seed = 1; seed <= 200; seed++) {
		rnd_state = seed * 0x2545f4914f6cdd1dull;
		world_open(&w, CLIENTS_MAX, CLIENTS_HOT);
		for (uint32_t i = 0; i < 60; i++) {
			step(&w, random_move());
			steps_cached += !wcache_empty(&w.c);
		}
		flushes += w.c.flush_count;
		world_settle(&w);
		world_close(&w);
	}
	/* the cache was used (not flushed after every write) and flushed */
	ASSERT_GT(steps_cached, 1000);
	ASSERT_GT(flushes, 1000);
}

/* Sessions stay under sessions_max without a W3 flush: a stretch of applies
 * from known clients stays in the cache; a crash then loses exactly it. */
TEST(crash_loses_only_the_cache_and_the_log_restores_it)
{
	static struct world w;
	for (uint64_t seed = 1; seed <= 50; seed++) {
		rnd_state = seed * 0x9e3779b97f4a7c15ull + 7;
		world_open(&w, 4, 4);
		/* phase 1: every client gets a session, flushed and synced */
		for (uint32_t i = 0; i < 10; i++)
			step(&w, MOVE_COMMIT);
		begin_a(&w);
		flush_commit(&w);
		ASSERT_EQ(w.a.ops->sync(w.a.impl), 0);
		uint64_t flushed = w.applied;
		ASSERT_U64_EQ(applied_of(&w.a), flushed);
		/* make sure all four sessions exist, so phase 2 adds none */
		uint64_t count;
		ASSERT_EQ(w.b.ops->session_count(w.b.impl, &count), 0);
		if (count < 4) {
			world_close(&w);
			continue;
		}
		/* phase 2: cached only (commit without flush, some synced) */
		w.probe_table = false;
		uint64_t flushes = w.c.flush_count;
		for (uint32_t i = 0; i < 10; i++) {
			step(&w, rnd_below(2) == 0 ? MOVE_COMMIT : MOVE_LEAVE);
			ASSERT_EQ(w.a.ops->sync(w.a.impl), 0);
		}
		ASSERT_U64_EQ(w.c.flush_count, flushes);
		ASSERT_FALSE(wcache_empty(&w.c));
		ASSERT_U64_EQ(applied_of(&w.a), flushed);
		ASSERT_U64_EQ(applied_of(&w.c.view), w.applied);

		/* the crash: the store keeps what was flushed, the cache is gone */
		mem_store_crash(&w.ma, 0);
		wcache_drop(&w.c);
		ASSERT_TRUE(wcache_empty(&w.c));
		ASSERT_U64_EQ(applied_of(&w.a), flushed);
		ASSERT_U64_EQ(applied_of(&w.c.view), flushed);
		ASSERT_U64_EQ(mem_store_digest(&w.ma), w.digest_b[flushed]);

		/* the restarted node applies the log again from there */
		static struct results ra;
		begin_a(&w);
		apply_a(&w, flushed + 1, w.applied, &ra);
		compare_views(&w);
		flush_commit(&w);
		ASSERT_U64_EQ(mem_store_digest(&w.ma), mem_store_digest(&w.mb));
		world_close(&w);
	}
}

/* Random owner moves, random syncs and a crash at a random point (or a
 * fresh wcache over the same store without a crash): the store's applied
 * index is at least the last flushed-and-synced one, and applying the log
 * again from it, then going on, ends in B's state. */
TEST(crash_at_a_random_point_then_reapply_random)
{
	static struct world w;
	for (uint64_t seed = 1; seed <= 100; seed++) {
		rnd_state = seed * 0x2545f4914f6cdd1dull + 99;
		world_open(&w, CLIENTS_MAX, CLIENTS_HOT);
		uint32_t steps = 1 + rnd_below(50);
		for (uint32_t i = 0; i < steps; i++) {
			step(&w, random_move());
			if (rnd_below(4) == 0)
				ASSERT_EQ(w.a.ops->sync(w.a.impl), 0);
		}
		if (rnd_below(2) == 0)
			mem_store_crash(&w.ma, 0);
		wcache_free(&w.c);
		wcache_init(&w.c, &w.a);
		kv_init(&w.kva, &w.c.view, &(struct keel_alloc){0});
		w.kva.sessions_max = SESSIONS_MAX;
		uint64_t at = applied_of(&w.a);
		ASSERT_GE(at, w.durable_floor);
		ASSERT_LE(at, w.applied);
		ASSERT_U64_EQ(applied_of(&w.c.view), at);
		if (at < w.applied) {
			static struct results ra;
			begin_a(&w);
			apply_a(&w, at + 1, w.applied, &ra);
			owner_move(&w, random_move());
		}
		compare_views(&w);
		for (uint32_t i = 0; i < 10; i++)
			step(&w, random_move());
		world_settle(&w);
		world_close(&w);
	}
}

/* A memory store (behind fail_bind when failing) and a cache over it,
 * opened once the test has put in the store what it starts from. */
struct wfx {
	struct mem_store m;
	struct store real;
	struct wcache c;
};

static void wfx_store(struct wfx *f, bool failing)
{
	ASSERT_EQ(mem_store_init(&f->m), 0);
	if (failing)
		fail_bind(&f->m, &f->real);
	else
		mem_store_bind(&f->m, &f->real);
}

static struct store *wfx_cache(struct wfx *f)
{
	wcache_init(&f->c, &f->real);
	return &f->c.view;
}

static void wfx_close(struct wfx *f)
{
	wcache_free(&f->c);
	mem_store_close(&f->m);
}

TEST(items_bound_flushes_into_the_open_batch)
{
	static struct wfx f;
	wfx_store(&f, false);
	struct store *real = &f.real;
	struct wcache *c = &f.c;
	struct store *v = wfx_cache(&f);
	ASSERT_EQ(real->ops->write_begin(real->impl), 0);
	uint32_t n = WCACHE_ITEMS_MAX + 100;
	uint32_t items_seen_max = 0;
	for (uint32_t i = 0; i < n; i++) {
		char key[16];
		snprintf(key, sizeof key, "i%08x", i);
		ASSERT_EQ(put(v, key, "v"), 0);
		uint32_t items = wcache_items(c);
		ASSERT_LT(items, WCACHE_ITEMS_MAX);
		ASSERT_LT(c->bytes, WCACHE_BYTES_MAX);
		if (items > items_seen_max)
			items_seen_max = items;
		if (i < 1000)
			ASSERT_EQ(c->flush_count, 0);
	}
	/* it cached, and it flushed into the open batch */
	ASSERT_GE(items_seen_max, WCACHE_ITEMS_MAX / 2);
	ASSERT_GE(c->flush_count, 1);
	ASSERT_TRUE(c->wrote_real);
	ASSERT_GT(mem_store_kv_count(&f.m), 0);
	/* sessions are items too */
	uint64_t flushes = c->flush_count;
	ASSERT_EQ(wcache_flush(c), 0);
	for (uint32_t i = 1; i <= WCACHE_ITEMS_MAX + 1; i++) {
		struct kv_session se = {.client_id = i, .seq = 1,
					.last_index = i, .status = KV_OK};
		ASSERT_EQ(v->ops->session_put(v->impl, &se), 0);
		ASSERT_LT(wcache_items(c), WCACHE_ITEMS_MAX);
	}
	ASSERT_GT(c->flush_count, flushes + 1);
	ASSERT_EQ(wcache_flush(c), 0);
	ASSERT_EQ(real->ops->write_commit(real->impl), 0);
	ASSERT_U64_EQ(mem_store_kv_count(&f.m), n);
	for (uint32_t i = 0; i < n; i++) {
		char key[16];
		snprintf(key, sizeof key, "i%08x", i);
		assert_val(real, key, "v");
	}
	uint64_t count;
	ASSERT_EQ(real->ops->session_count(real->impl, &count), 0);
	ASSERT_U64_EQ(count, WCACHE_ITEMS_MAX + 1);
	wfx_close(&f);
}

TEST(bytes_bound_flushes_into_the_open_batch)
{
	static struct wfx f;
	static uint8_t val[KEEL_VALUE_BYTES_MAX];
	wfx_store(&f, false);
	struct store *real = &f.real;
	struct wcache *c = &f.c;
	struct store *v = wfx_cache(&f);
	ASSERT_EQ(real->ops->write_begin(real->impl), 0);
	/* rewriting one key holds one value */
	for (uint32_t i = 0; i < 200; i++) {
		memset(val, (int)i, sizeof val);
		ASSERT_EQ(v->ops->kv_put(v->impl, (const uint8_t *)"same", 4,
					 val, sizeof val), 0);
		ASSERT_LT(c->bytes, WCACHE_BYTES_MAX);
	}
	ASSERT_EQ(c->flush_count, 0);
	ASSERT_EQ(wcache_items(c), 1);
	/* distinct keys pass the bound */
	uint32_t n = 2 * WCACHE_BYTES_MAX / KEEL_VALUE_BYTES_MAX;
	for (uint32_t i = 0; i < n; i++) {
		char key[16];
		snprintf(key, sizeof key, "b%u", i);
		memset(val, (int)(i + 1), sizeof val);
		ASSERT_EQ(v->ops->kv_put(v->impl, (const uint8_t *)key,
					 (uint32_t)strlen(key), val,
					 sizeof val), 0);
		ASSERT_LT(c->bytes, WCACHE_BYTES_MAX);
		ASSERT_LT(wcache_items(c), WCACHE_ITEMS_MAX);
		if (i < n / 4)
			ASSERT_EQ(c->flush_count, 0);
	}
	ASSERT_GE(c->flush_count, 1);
	ASSERT_TRUE(c->wrote_real);
	ASSERT_EQ(wcache_flush(c), 0);
	ASSERT_EQ(real->ops->write_commit(real->impl), 0);
	for (uint32_t i = 0; i < n; i++) {
		char key[16];
		snprintf(key, sizeof key, "b%u", i);
		memset(val, (int)(i + 1), sizeof val);
		const uint8_t *got;
		uint32_t got_bytes;
		ASSERT_EQ(get(real, key, &got, &got_bytes), 0);
		ASSERT_EQ(got_bytes, sizeof val);
		ASSERT_MEM_EQ(got, val, sizeof val);
	}
	memset(val, 199, sizeof val);
	const uint8_t *got;
	uint32_t got_bytes;
	ASSERT_EQ(get(real, "same", &got, &got_bytes), 0);
	ASSERT_MEM_EQ(got, val, sizeof val);
	wfx_close(&f);
}

TEST(failed_flush_leaves_the_cache_as_it_was)
{
	static struct wfx f;
	wfx_store(&f, true);
	struct store *real = &f.real;
	struct wcache *c = &f.c;
	static const char *const init[] = {"old", "o", "gone", "g"};
	commit_puts(real, init, 4);
	struct store *v = wfx_cache(&f);

	ASSERT_EQ(real->ops->write_begin(real->impl), 0);
	for (uint32_t i = 0; i < 10; i++) {
		char key[8], val[8];
		snprintf(key, sizeof key, "k%u", i);
		snprintf(val, sizeof val, "v%u", i);
		ASSERT_EQ(put(v, key, val), 0);
	}
	ASSERT_EQ(del(v, "gone"), 0);
	struct kv_session se = {.client_id = 5, .seq = 3, .last_index = 7,
				.status = KV_OK};
	ASSERT_EQ(v->ops->session_put(v->impl, &se), 0);
	ASSERT_EQ(v->ops->set_applied(v->impl, 7), 0);
	uint32_t items = wcache_items(c);
	ASSERT_EQ(items, 12);

	/* the fourth kv_put of the flush fails */
	fail_rc = KEEL_ENOMEM;
	fail_puts_first = 3;
	ASSERT_EQ(wcache_flush(c), KEEL_ENOMEM);
	real->ops->write_abort(real->impl);
	fail_rc = 0;
	ASSERT_EQ(wcache_items(c), items);
	ASSERT_FALSE(wcache_empty(c));
	for (uint32_t i = 0; i < 10; i++) {
		char key[8], val[8];
		snprintf(key, sizeof key, "k%u", i);
		snprintf(val, sizeof val, "v%u", i);
		assert_val(v, key, val);
		assert_absent(real, key);
	}
	assert_absent(v, "gone");
	assert_val(real, "gone", "g");
	assert_val(v, "old", "o");
	struct kv_session got;
	ASSERT_EQ(v->ops->session_get(v->impl, 5, &got), 0);
	ASSERT_U64_EQ(got.seq, 3);
	ASSERT_U64_EQ(applied_of(v), 7);
	ASSERT_U64_EQ(applied_of(real), 0);

	/* a later flush writes all of it */
	ASSERT_EQ(real->ops->write_begin(real->impl), 0);
	ASSERT_EQ(wcache_flush(c), 0);
	ASSERT_EQ(real->ops->write_commit(real->impl), 0);
	ASSERT_TRUE(wcache_empty(c));
	for (uint32_t i = 0; i < 10; i++) {
		char key[8], val[8];
		snprintf(key, sizeof key, "k%u", i);
		snprintf(val, sizeof val, "v%u", i);
		assert_val(real, key, val);
	}
	assert_absent(real, "gone");
	assert_val(real, "old", "o");
	ASSERT_EQ(real->ops->session_get(real->impl, 5, &got), 0);
	ASSERT_U64_EQ(got.last_index, 7);
	ASSERT_U64_EQ(applied_of(real), 7);
	wfx_close(&f);
}

TEST(deletions_hide_the_store_and_reach_it_on_flush)
{
	static struct wfx f;
	wfx_store(&f, false);
	struct store *real = &f.real;
	struct wcache *c = &f.c;
	static const char *const init[] = {"a", "1", "keep", "k"};
	commit_puts(real, init, 4);
	ASSERT_EQ(real->ops->write_begin(real->impl), 0);
	struct kv_session se = {.client_id = 3, .seq = 1, .last_index = 1,
				.status = KV_OK};
	ASSERT_EQ(real->ops->session_put(real->impl, &se), 0);
	ASSERT_EQ(real->ops->write_commit(real->impl), 0);
	struct store *v = wfx_cache(&f);
	struct kv_session got;

	ASSERT_EQ(real->ops->write_begin(real->impl), 0);
	/* deleting what is absent everywhere caches nothing */
	ASSERT_EQ(del(v, "zz"), KEEL_ENOTFOUND);
	ASSERT_EQ(v->ops->session_del(v->impl, 99), KEEL_ENOTFOUND);
	ASSERT_TRUE(wcache_empty(c));
	ASSERT_EQ(wcache_items(c), 0);

	/* a key only in the store */
	ASSERT_EQ(del(v, "a"), 0);
	ASSERT_FALSE(wcache_empty(c));
	assert_absent(v, "a");
	assert_val(real, "a", "1");
	ASSERT_EQ(del(v, "a"), KEEL_ENOTFOUND);
	/* a key only in the cache */
	ASSERT_EQ(put(v, "b", "2"), 0);
	assert_val(v, "b", "2");
	ASSERT_EQ(del(v, "b"), 0);
	assert_absent(v, "b");
	/* deleted, then put again */
	ASSERT_EQ(del(v, "keep"), 0);
	ASSERT_EQ(put(v, "keep", "K"), 0);
	assert_val(v, "keep", "K");
	/* a session only in the store */
	ASSERT_EQ(v->ops->session_del(v->impl, 3), 0);
	ASSERT_EQ(v->ops->session_get(v->impl, 3, &got), KEEL_ENOTFOUND);
	ASSERT_EQ(real->ops->session_get(real->impl, 3, &got), 0);
	ASSERT_EQ(v->ops->session_del(v->impl, 3), KEEL_ENOTFOUND);
	/* a session only in the cache */
	se.client_id = 4;
	ASSERT_EQ(v->ops->session_put(v->impl, &se), 0);
	ASSERT_EQ(v->ops->session_del(v->impl, 4), 0);
	ASSERT_EQ(v->ops->session_get(v->impl, 4, &got), KEEL_ENOTFOUND);

	ASSERT_EQ(wcache_flush(c), 0);
	ASSERT_EQ(real->ops->write_commit(real->impl), 0);
	ASSERT_TRUE(wcache_empty(c));
	assert_absent(real, "a");
	assert_absent(real, "b");
	assert_val(real, "keep", "K");
	ASSERT_EQ(real->ops->session_get(real->impl, 3, &got), KEEL_ENOTFOUND);
	ASSERT_EQ(real->ops->session_get(real->impl, 4, &got), KEEL_ENOTFOUND);
	uint64_t count;
	ASSERT_EQ(real->ops->session_count(real->impl, &count), 0);
	ASSERT_U64_EQ(count, 0);
	ASSERT_U64_EQ(mem_store_kv_count(&f.m), 1);
	wfx_close(&f);
}

TEST(session_count_is_counted_and_session_oldest_flushes)
{
	static struct wfx f;
	wfx_store(&f, false);
	struct store *real = &f.real;
	struct wcache *c = &f.c;
	ASSERT_EQ(real->ops->write_begin(real->impl), 0);
	struct kv_session se = {.client_id = 9, .seq = 1, .last_index = 5,
				.status = KV_OK};
	ASSERT_EQ(real->ops->session_put(real->impl, &se), 0);
	ASSERT_EQ(real->ops->write_commit(real->impl), 0);
	struct store *v = wfx_cache(&f);

	ASSERT_EQ(real->ops->write_begin(real->impl), 0);
	se = (struct kv_session){.client_id = 12, .seq = 1, .last_index = 3,
				 .status = KV_OK};
	ASSERT_EQ(v->ops->session_put(v->impl, &se), 0);
	ASSERT_EQ(v->ops->session_del(v->impl, 9), 0);
	uint64_t flushes = c->flush_count;
	uint64_t count;
	ASSERT_EQ(v->ops->session_count(v->impl, &count), 0);
	ASSERT_U64_EQ(count, 1); /* 9 deleted, 12 added */
	ASSERT_U64_EQ(c->flush_count, flushes); /* counted, not flushed */
	ASSERT_FALSE(wcache_empty(c));
	/* 9 back after its deletion, 12 put again: each counted once */
	se = (struct kv_session){.client_id = 9, .seq = 2, .last_index = 7,
				 .status = KV_OK};
	ASSERT_EQ(v->ops->session_put(v->impl, &se), 0);
	se = (struct kv_session){.client_id = 12, .seq = 2, .last_index = 6,
				 .status = KV_OK};
	ASSERT_EQ(v->ops->session_put(v->impl, &se), 0);
	ASSERT_EQ(v->ops->session_count(v->impl, &count), 0);
	ASSERT_U64_EQ(count, 2);
	ASSERT_EQ(v->ops->session_del(v->impl, 12), 0);
	ASSERT_EQ(v->ops->session_count(v->impl, &count), 0);
	ASSERT_U64_EQ(count, 1);
	ASSERT_EQ(v->ops->session_put(v->impl, &se), 0);
	ASSERT_U64_EQ(c->flush_count, flushes);
	struct kv_session old;
	ASSERT_EQ(v->ops->session_oldest(v->impl, &old), 0);
	ASSERT_U64_EQ(old.client_id, 12); /* last_index 6 < 7 */
	ASSERT_GT(c->flush_count, flushes);
	ASSERT_TRUE(c->wrote_real);
	ASSERT_TRUE(wcache_empty(c));
	ASSERT_EQ(v->ops->session_count(v->impl, &count), 0);
	ASSERT_U64_EQ(count, 2);
	/* a cached session older than every stored one */
	se = (struct kv_session){.client_id = 13, .seq = 1, .last_index = 1,
				 .status = KV_OK};
	ASSERT_EQ(v->ops->session_put(v->impl, &se), 0);
	flushes = c->flush_count;
	ASSERT_EQ(v->ops->session_oldest(v->impl, &old), 0);
	ASSERT_U64_EQ(old.client_id, 13);
	ASSERT_GT(c->flush_count, flushes);
	ASSERT_TRUE(wcache_empty(c));
	ASSERT_EQ(real->ops->write_commit(real->impl), 0);
	ASSERT_EQ(real->ops->session_get(real->impl, 12, &old), 0);
	ASSERT_EQ(real->ops->session_get(real->impl, 13, &old), 0);
	ASSERT_EQ(real->ops->session_get(real->impl, 9, &old), 0);
	ASSERT_U64_EQ(old.seq, 2);
	wfx_close(&f);
}

TEST(drop_forgets_the_cache_and_reads_the_store_again)
{
	static struct wfx f;
	wfx_store(&f, false);
	struct store *real = &f.real;
	struct wcache *c = &f.c;
	ASSERT_EQ(real->ops->write_begin(real->impl), 0);
	ASSERT_EQ(real->ops->set_ids(real->impl, 77, 2), 0);
	ASSERT_EQ(put(real, "a", "1"), 0);
	ASSERT_EQ(real->ops->set_applied(real->impl, 5), 0);
	ASSERT_EQ(real->ops->write_commit(real->impl), 0);
	uint64_t digest = mem_store_digest(&f.m);
	struct store *v = wfx_cache(&f);

	ASSERT_EQ(real->ops->write_begin(real->impl), 0);
	ASSERT_EQ(put(v, "a", "2"), 0);
	ASSERT_EQ(put(v, "n", "x"), 0);
	struct kv_session se = {.client_id = 4, .seq = 1, .last_index = 9,
				.status = KV_OK};
	ASSERT_EQ(v->ops->session_put(v->impl, &se), 0);
	ASSERT_EQ(v->ops->set_applied(v->impl, 9), 0);
	/* W1: the meta is the store's with the cached applied index */
	struct store_meta meta;
	ASSERT_EQ(v->ops->meta_get(v->impl, &meta), 0);
	ASSERT_U64_EQ(meta.cluster_id, 77);
	ASSERT_U64_EQ(meta.node_id, 2);
	ASSERT_U64_EQ(meta.applied_index, 9);
	assert_val(v, "a", "2");
	ASSERT_EQ(wcache_items(c), 3);

	wcache_drop(c);
	ASSERT_TRUE(wcache_empty(c));
	ASSERT_EQ(wcache_items(c), 0);
	assert_val(v, "a", "1");
	assert_absent(v, "n");
	struct kv_session got;
	ASSERT_EQ(v->ops->session_get(v->impl, 4, &got), KEEL_ENOTFOUND);
	ASSERT_EQ(v->ops->meta_get(v->impl, &meta), 0);
	ASSERT_U64_EQ(meta.applied_index, 5);
	ASSERT_U64_EQ(meta.cluster_id, 77);
	/* a flush after the drop writes nothing */
	ASSERT_EQ(wcache_flush(c), 0);
	ASSERT_EQ(real->ops->write_commit(real->impl), 0);
	ASSERT_U64_EQ(mem_store_digest(&f.m), digest);

	/* the view's batch calls are bookkeeping: abort marks, commit says so */
	ASSERT_EQ(v->ops->write_begin(v->impl), 0);
	ASSERT_EQ(v->ops->write_commit(v->impl), 0);
	ASSERT_FALSE(c->aborted);
	ASSERT_EQ(v->ops->write_begin(v->impl), 0);
	v->ops->write_abort(v->impl);
	ASSERT_TRUE(c->aborted);
	ASSERT_EQ(v->ops->write_commit(v->impl), KEEL_ESTATE);
	wfx_close(&f);
}

/* Entry l->last + 1 with the commands cmds[0..n). */
static void push_entry(struct log *l, const struct kv_command *cmds, uint32_t n)
{
	ASSERT_LT(l->last, LOG_MAX);
	uint64_t index = ++l->last;
	int bytes = codec_batch_encode(cmds, n, l->data[index - 1],
				       ENTRY_DATA_BYTES);
	ASSERT_GT(bytes, 0);
	l->e[index - 1] = (struct entry){
		.term = 1, .index = index, .type = ENTRY_COMMAND,
		.data = l->data[index - 1], .data_bytes = (uint32_t)bytes,
	};
}

static struct kv_command cmd(uint64_t client, uint32_t op, const char *key,
			     const char *val)
{
	return (struct kv_command){
		.client_id = client, .seq = 1, .op = op,
		.key = (const uint8_t *)key, .key_bytes = (uint32_t)strlen(key),
		.value = (const uint8_t *)val,
		.value_bytes = (uint32_t)strlen(val),
	};
}

/* W6: W3's flush inside an apply writes part of that apply into the
 * store's batch; the owner commits the batch (wrote_real) without a flush of its
 * own, syncs, and crashes. Applying the log again from the store's applied
 * index must give the state of a store that never crashed ("losing the
 * cache in a crash loses nothing"). With sessions_max 2, entry 3's append
 * by client 3 is flushed together with the eviction of client 3's session
 * (clients 4, 5, 6 are new): were the batch to hold that part of entry 3
 * with the applied index still at 2, the re-apply would find no session
 * for client 3 and append again ("axx"). */
TEST(flush_inside_an_apply_then_crash_reapplies_to_the_same_state)
{
	static struct world w;
	world_open(&w, CLIENTS_MAX, CLIENTS_HOT);
	w.kva.sessions_max = 2;
	w.kvb.sessions_max = 2;
	struct kv_command c1[] = {cmd(1, KV_PUT, "k", "a")};
	struct kv_command c2[] = {cmd(2, KV_PUT, "q", "b")};
	struct kv_command c3[] = {
		cmd(3, KV_APPEND, "k", "x"), cmd(4, KV_PUT, "r", "1"),
		cmd(5, KV_PUT, "s", "1"), cmd(6, KV_PUT, "t", "1"),
	};
	push_entry(&w.log, c1, 1);
	push_entry(&w.log, c2, 1);
	push_entry(&w.log, c3, 4);
	static struct results ra, rb;
	begin_a(&w);
	apply_a(&w, 1, 2, &ra);
	flush_commit(&w);
	ASSERT_EQ(w.a.ops->sync(w.a.impl), 0);
	ASSERT_EQ(kv_apply(&w.kvb, &w.log.e[0], 2, NULL, NULL), 0);

	begin_a(&w);
	apply_a(&w, 3, 3, &ra);
	ASSERT_TRUE(w.c.wrote_real);
	ASSERT_EQ(w.a.ops->write_commit(w.a.impl), 0); /* no flush */
	ASSERT_EQ(w.a.ops->sync(w.a.impl), 0);
	ASSERT_EQ(kv_apply(&w.kvb, &w.log.e[2], 1, collect, &rb), 0);
	w.applied = 3;
	compare_views(&w);
	/* W6: the committed batch held the whole apply */
	ASSERT_U64_EQ(applied_of(&w.a), 3);
	ASSERT_U64_EQ(mem_store_digest(&w.ma), mem_store_digest(&w.mb));

	mem_store_crash(&w.ma, 0);
	wcache_drop(&w.c);
	uint64_t at = applied_of(&w.a);
	ASSERT_GE(at, 2);
	ASSERT_LE(at, 3);
	begin_a(&w);
	if (at < 3)
		apply_a(&w, at + 1, 3, &ra);
	flush_commit(&w);
	assert_val(&w.a, "k", "ax");
	ASSERT_U64_EQ(mem_store_digest(&w.ma), mem_store_digest(&w.mb));
	world_close(&w);
}
