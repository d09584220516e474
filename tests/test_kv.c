/*
 * test_kv.c: the KV state machine (core/kv.h): every operation and status,
 * sessions (retry, stale seq, deterministic eviction), atomicity of apply,
 * determinism across stores.
 */
#include "harness.h"

#include <stdlib.h>

#include "../core/codec.h"
#include "../core/err.h"
#include "../core/kv.h"
#include "store_fixture.h"

#define RESULTS_MAX 8192

struct env {
	struct mem_store mem;
	struct store st;
	struct kv kv;
	uint64_t next_index;
	struct kv_result results[RESULTS_MAX];
	size_t result_count;
	uint8_t bufs[2][KEEL_VALUE_BYTES_MAX + 4096];
};

static struct env *env_new(void)
{
	struct env *e = calloc(1, sizeof(*e));
	ASSERT_TRUE(e != NULL);
	mem_store_init(&e->mem);
	mem_store_bind(&e->mem, &e->st);
	kv_init(&e->kv, &e->st, NULL);
	e->next_index = 1;
	return e;
}

static void env_free(struct env *e)
{
	mem_store_close(&e->mem);
	free(e);
}

static void on_result(void *ctx, const struct kv_result *r)
{
	struct env *e = ctx;
	ASSERT_TRUE(e->result_count < RESULTS_MAX);
	e->results[e->result_count++] = *r;
}

static struct kv_command cmd(uint64_t client, uint64_t seq, uint32_t op,
			     const char *key, const char *value)
{
	return (struct kv_command){
		.client_id = client, .seq = seq, .op = op,
		.key_bytes = (uint32_t)strlen(key), .key = (const uint8_t *)key,
		.value_bytes = value ? (uint32_t)strlen(value) : 0,
		.value = (const uint8_t *)value};
}

static struct kv_command cas(uint64_t client, uint64_t seq, const char *key,
			     const char *expected, const char *value)
{
	struct kv_command c = cmd(client, seq, KV_CAS, key, value);
	if (expected == NULL) {
		c.cas_absent = true;
	} else {
		c.expected = (const uint8_t *)expected;
		c.expected_bytes = (uint32_t)strlen(expected);
	}
	return c;
}

/* An ENTRY_COMMAND entry at the next index holding cmds, in buffer slot. */
static struct entry command_entry(struct env *e, int slot,
				  const struct kv_command *cmds, uint32_t n)
{
	int bytes = codec_batch_encode(cmds, n, e->bufs[slot],
				       sizeof(e->bufs[slot]));
	ASSERT_TRUE(bytes > 0);
	return (struct entry){.term = 1, .index = e->next_index++,
			      .type = ENTRY_COMMAND,
			      .data_bytes = (uint32_t)bytes,
			      .data = e->bufs[slot]};
}

/* Apply cmds as one entry; returns the first result's status. */
static uint32_t run(struct env *e, const struct kv_command *cmds, uint32_t n)
{
	struct entry en = command_entry(e, 0, cmds, n);
	size_t before = e->result_count;
	ASSERT_EQ(kv_apply(&e->kv, &en, 1, on_result, e), 0);
	ASSERT_EQ(e->result_count, before + n);
	return e->results[before].status;
}

static uint32_t run1(struct env *e, struct kv_command c)
{
	return run(e, &c, 1);
}

static const struct kv_result *last_result(struct env *e)
{
	ASSERT_TRUE(e->result_count > 0);
	return &e->results[e->result_count - 1];
}

static void check_val(struct env *e, const char *key, const char *want)
{
	const uint8_t *v;
	uint32_t vb;
	int rc = kv_get(&e->kv, (const uint8_t *)key, (uint32_t)strlen(key), &v,
			&vb);
	if (want == NULL) {
		ASSERT_EQ(rc, KEEL_ENOTFOUND);
		return;
	}
	ASSERT_EQ(rc, 0);
	ASSERT_EQ(vb, strlen(want));
	ASSERT_MEM_EQ(v, want, vb);
}

static uint64_t applied(struct env *e)
{
	struct store_meta m;
	ASSERT_EQ(e->st.ops->meta_get(e->st.impl, &m), 0);
	return m.applied_index;
}

/* ---- operations ----------------------------------------------------------- */

TEST(put_and_get)
{
	struct env *e = env_new();
	ASSERT_EQ(run1(e, cmd(1, 1, KV_PUT, "k", "v1")), KV_OK);
	check_val(e, "k", "v1");
	ASSERT_EQ(run1(e, cmd(1, 2, KV_PUT, "k", "v2")), KV_OK);
	check_val(e, "k", "v2");
	ASSERT_EQ(run1(e, cmd(1, 3, KV_PUT, "e", "")), KV_OK);
	check_val(e, "e", "");
	check_val(e, "absent", NULL);
	ASSERT_U64_EQ(applied(e), 3);
	env_free(e);
}

TEST(delete_present_and_absent)
{
	struct env *e = env_new();
	run1(e, cmd(1, 1, KV_PUT, "k", "v"));
	ASSERT_EQ(run1(e, cmd(1, 2, KV_DEL, "k", NULL)), KV_OK);
	check_val(e, "k", NULL);
	ASSERT_EQ(run1(e, cmd(1, 3, KV_DEL, "k", NULL)), KV_NOT_FOUND);
	env_free(e);
}

TEST(cas_on_value_and_absence)
{
	struct env *e = env_new();
	ASSERT_EQ(run1(e, cas(1, 1, "k", "x", "y")), KV_CAS_FAILED); /* absent */
	check_val(e, "k", NULL);
	ASSERT_EQ(run1(e, cas(1, 2, "k", NULL, "a")), KV_OK); /* absent: ok */
	check_val(e, "k", "a");
	ASSERT_EQ(run1(e, cas(1, 3, "k", NULL, "b")), KV_CAS_FAILED);
	check_val(e, "k", "a");
	ASSERT_EQ(run1(e, cas(1, 4, "k", "z", "b")), KV_CAS_FAILED);
	check_val(e, "k", "a");
	ASSERT_EQ(run1(e, cas(1, 5, "k", "a", "b")), KV_OK);
	check_val(e, "k", "b");
	ASSERT_EQ(run1(e, cas(1, 6, "k", "", "c")), KV_CAS_FAILED);
	/* an empty value is present, not absent */
	run1(e, cmd(1, 7, KV_PUT, "e", ""));
	ASSERT_EQ(run1(e, cas(1, 8, "e", NULL, "x")), KV_CAS_FAILED);
	ASSERT_EQ(run1(e, cas(1, 9, "e", "", "x")), KV_OK);
	check_val(e, "e", "x");
	ASSERT_EQ(run1(e, cas(1, 10, "none", "", "x")), KV_CAS_FAILED);
	check_val(e, "none", NULL);
	env_free(e);
}

TEST(append_concatenates_and_bounds)
{
	struct env *e = env_new();
	ASSERT_EQ(run1(e, cmd(1, 1, KV_APPEND, "k", "ab")), KV_OK); /* "" + ab */
	check_val(e, "k", "ab");
	ASSERT_EQ(run1(e, cmd(1, 2, KV_APPEND, "k", "cd")), KV_OK);
	check_val(e, "k", "abcd");
	/* fill to exactly the limit, then one byte more is too big */
	static char big[KEEL_VALUE_BYTES_MAX + 1];
	memset(big, 'x', KEEL_VALUE_BYTES_MAX - 4);
	big[KEEL_VALUE_BYTES_MAX - 4] = 0;
	struct kv_command c = cmd(1, 3, KV_APPEND, "k", big);
	struct entry en = command_entry(e, 0, &c, 1);
	ASSERT_EQ(kv_apply(&e->kv, &en, 1, on_result, e), 0);
	ASSERT_EQ(last_result(e)->status, KV_OK);
	const uint8_t *v;
	uint32_t vb;
	ASSERT_EQ(kv_get(&e->kv, (const uint8_t *)"k", 1, &v, &vb), 0);
	ASSERT_EQ(vb, KEEL_VALUE_BYTES_MAX);
	ASSERT_MEM_EQ(v, "abcdxx", 6);
	ASSERT_EQ(run1(e, cmd(1, 4, KV_APPEND, "k", "y")), KV_TOO_BIG);
	ASSERT_EQ(kv_get(&e->kv, (const uint8_t *)"k", 1, &v, &vb), 0);
	ASSERT_EQ(vb, KEEL_VALUE_BYTES_MAX); /* unchanged */
	ASSERT_EQ(v[vb - 1], 'x');
	env_free(e);
}

TEST(status_to_client)
{
	ASSERT_EQ(kv_status_to_client(KV_OK), CLIENT_OK);
	ASSERT_EQ(kv_status_to_client(KV_NOT_FOUND), CLIENT_NOT_FOUND);
	ASSERT_EQ(kv_status_to_client(KV_CAS_FAILED), CLIENT_CAS_FAILED);
	ASSERT_EQ(kv_status_to_client(KV_TOO_BIG), CLIENT_TOO_BIG);
	ASSERT_EQ(kv_status_to_client(KV_STALE_SEQ), CLIENT_STALE_SEQ);
}

/* ---- sessions ------------------------------------------------------------- */

TEST(retry_returns_stored_status_and_changes_nothing)
{
	struct env *e = env_new();
	ASSERT_EQ(run1(e, cmd(7, 1, KV_APPEND, "k", "a")), KV_OK);
	ASSERT_FALSE(last_result(e)->duplicate);
	/* the same (client, seq) again, even in a later entry: not applied */
	ASSERT_EQ(run1(e, cmd(7, 1, KV_APPEND, "k", "a")), KV_OK);
	ASSERT_TRUE(last_result(e)->duplicate);
	check_val(e, "k", "a");
	struct kv_session se;
	ASSERT_EQ(e->st.ops->session_get(e->st.impl, 7, &se), 0);
	ASSERT_U64_EQ(se.last_index, 1); /* the retry did not touch it */
	/* the stored status comes back even if the write would now succeed */
	ASSERT_EQ(run1(e, cas(7, 2, "k", "zz", "b")), KV_CAS_FAILED);
	run1(e, cmd(8, 1, KV_PUT, "k", "zz"));
	ASSERT_EQ(run1(e, cas(7, 2, "k", "zz", "b")), KV_CAS_FAILED);
	ASSERT_TRUE(last_result(e)->duplicate);
	check_val(e, "k", "zz");
	/* a retry inside the same entry is answered from the session too */
	struct kv_command twice[2] = {cmd(9, 1, KV_APPEND, "j", "x"),
				      cmd(9, 1, KV_APPEND, "j", "x")};
	run(e, twice, 2);
	ASSERT_TRUE(last_result(e)->duplicate);
	check_val(e, "j", "x");
	env_free(e);
}

TEST(stale_seq_changes_nothing)
{
	struct env *e = env_new();
	run1(e, cmd(3, 5, KV_PUT, "k", "five"));
	uint64_t before = mem_store_digest(&e->mem);
	ASSERT_EQ(run1(e, cmd(3, 4, KV_PUT, "k", "four")), KV_STALE_SEQ);
	ASSERT_FALSE(last_result(e)->duplicate);
	check_val(e, "k", "five");
	struct kv_session se;
	ASSERT_EQ(e->st.ops->session_get(e->st.impl, 3, &se), 0);
	ASSERT_U64_EQ(se.seq, 5);
	ASSERT_U64_EQ(se.last_index, 1);
	ASSERT_EQ(se.status, KV_OK);
	/* only the applied index moved */
	struct env *o = env_new();
	run1(o, cmd(3, 5, KV_PUT, "k", "five"));
	struct entry noop = {.term = 1, .index = 2, .type = ENTRY_NOOP};
	ASSERT_EQ(kv_apply(&o->kv, &noop, 1, NULL, NULL), 0);
	ASSERT_U64_EQ(mem_store_digest(&e->mem), mem_store_digest(&o->mem));
	ASSERT_NE(before, mem_store_digest(&e->mem));
	env_free(o);
	env_free(e);
}

TEST(eviction_follows_the_log)
{
	struct env *e = env_new();
	e->kv.sessions_max = 3;
	const struct store_ops *ops = e->st.ops;
	void *s = e->st.impl;
	struct kv_session se;
	uint64_t count;
	run1(e, cmd(10, 1, KV_PUT, "a", "1"));        /* index 1 */
	struct kv_command two[2] = {cmd(7, 1, KV_PUT, "b", "2"),
				    cmd(5, 1, KV_PUT, "c", "3")};
	run(e, two, 2);                               /* index 2: 7 and 5 */
	ASSERT_EQ(ops->session_count(s, &count), 0);
	ASSERT_U64_EQ(count, 3);
	run1(e, cmd(8, 1, KV_PUT, "d", "4"));         /* index 3: evicts 10 */
	ASSERT_EQ(ops->session_get(s, 10, &se), KEEL_ENOTFOUND);
	ASSERT_EQ(ops->session_count(s, &count), 0);
	ASSERT_U64_EQ(count, 3);
	run1(e, cmd(9, 1, KV_PUT, "e", "5"));         /* index 4: tie -> 5 */
	ASSERT_EQ(ops->session_get(s, 5, &se), KEEL_ENOTFOUND);
	ASSERT_EQ(ops->session_get(s, 7, &se), 0);
	run1(e, cmd(7, 2, KV_PUT, "b", "6"));         /* index 5: 7 refreshed */
	run1(e, cmd(11, 1, KV_PUT, "f", "7"));        /* index 6: evicts 8 */
	ASSERT_EQ(ops->session_get(s, 8, &se), KEEL_ENOTFOUND);
	ASSERT_EQ(ops->session_get(s, 7, &se), 0);
	ASSERT_EQ(ops->session_get(s, 9, &se), 0);
	ASSERT_EQ(ops->session_get(s, 11, &se), 0);
	ASSERT_EQ(ops->session_count(s, &count), 0);
	ASSERT_U64_EQ(count, 3);
	/* known clients never evict anyone */
	run1(e, cmd(9, 2, KV_PUT, "e", "8"));
	ASSERT_EQ(ops->session_get(s, 7, &se), 0);
	ASSERT_EQ(ops->session_get(s, 11, &se), 0);
	env_free(e);
}

/* ---- apply ---------------------------------------------------------------- */

TEST(noop_and_config_advance_applied_only)
{
	struct env *e = env_new();
	uint64_t before = mem_store_digest(&e->mem);
	struct entry en[2] = {{.term = 1, .index = 1, .type = ENTRY_NOOP},
			      {.term = 1, .index = 2, .type = ENTRY_CONFIG,
			       .data_bytes = 3, .data = (const uint8_t *)"cfg"}};
	ASSERT_EQ(kv_apply(&e->kv, en, 2, on_result, e), 0);
	ASSERT_EQ(e->result_count, 0);
	ASSERT_U64_EQ(applied(e), 2);
	ASSERT_EQ(mem_store_kv_count(&e->mem), 0);
	ASSERT_NE(before, mem_store_digest(&e->mem));
	env_free(e);
}

TEST(one_batch_per_apply_with_results_in_log_order)
{
	struct env *e = env_new();
	struct kv_command c1[2] = {cmd(1, 1, KV_PUT, "a", "1"),
				   cmd(2, 1, KV_DEL, "zz", NULL)};
	struct kv_command c2[1] = {cmd(1, 2, KV_APPEND, "a", "2")};
	struct entry en[3];
	en[0] = command_entry(e, 0, c1, 2);
	en[1] = (struct entry){.term = 1, .index = e->next_index++,
			       .type = ENTRY_NOOP};
	en[2] = command_entry(e, 1, c2, 1);
	uint64_t batches = e->mem.stats.batches_committed;
	ASSERT_EQ(kv_apply(&e->kv, en, 3, on_result, e), 0);
	ASSERT_U64_EQ(e->mem.stats.batches_committed, batches + 1);
	ASSERT_EQ(e->result_count, 3);
	ASSERT_U64_EQ(e->results[0].index, 1);
	ASSERT_EQ(e->results[0].status, KV_OK);
	ASSERT_U64_EQ(e->results[1].client_id, 2);
	ASSERT_EQ(e->results[1].status, KV_NOT_FOUND);
	ASSERT_U64_EQ(e->results[2].index, 3);
	ASSERT_U64_EQ(e->results[2].seq, 2);
	check_val(e, "a", "12");
	ASSERT_U64_EQ(applied(e), 3);
	env_free(e);
}

TEST(bad_entry_commits_nothing)
{
	struct env *e = env_new();
	run1(e, cmd(1, 1, KV_PUT, "a", "1"));
	uint64_t before = mem_store_digest(&e->mem);
	struct kv_command c1 = cmd(1, 2, KV_PUT, "a", "2");
	struct kv_command c2 = cmd(2, 1, KV_PUT, "b", "2");
	struct entry en[3];
	en[0] = command_entry(e, 0, &c1, 1);
	en[1] = (struct entry){.term = 1, .index = e->next_index++,
			       .type = ENTRY_COMMAND, .data_bytes = 5,
			       .data = (const uint8_t *)"\xff\xff\xff\xff\xff"};
	en[2] = command_entry(e, 1, &c2, 1);
	size_t results = e->result_count;
	ASSERT_EQ(kv_apply(&e->kv, en, 3, on_result, e), KEEL_ECORRUPT);
	ASSERT_EQ(e->result_count, results); /* no result escaped */
	ASSERT_U64_EQ(mem_store_digest(&e->mem), before);
	check_val(e, "a", "1");
	check_val(e, "b", NULL);
	ASSERT_U64_EQ(applied(e), 1);
	struct kv_session se;
	ASSERT_EQ(e->st.ops->session_get(e->st.impl, 1, &se), 0);
	ASSERT_U64_EQ(se.seq, 1);
	/* a batch that decodes but breaks a rule (no commands) is refused */
	struct entry empty = {.term = 1, .index = 2, .type = ENTRY_COMMAND};
	ASSERT_EQ(kv_apply(&e->kv, &empty, 1, on_result, e), KEEL_ECORRUPT);
	ASSERT_U64_EQ(applied(e), 1);
	env_free(e);
}

TEST(crash_keeps_kv_and_sessions_together)
{
	struct env *e = env_new();
	run1(e, cmd(1, 1, KV_APPEND, "k", "a"));
	ASSERT_EQ(e->st.ops->sync(e->st.impl), 0);
	run1(e, cmd(1, 2, KV_APPEND, "k", "b")); /* not synced */
	mem_store_crash(&e->mem, 0);
	check_val(e, "k", "a");
	ASSERT_U64_EQ(applied(e), 1);
	struct kv_session se;
	ASSERT_EQ(e->st.ops->session_get(e->st.impl, 1, &se), 0);
	ASSERT_U64_EQ(se.seq, 1);
	/* replaying the lost entry applies it exactly once */
	e->next_index = 2;
	ASSERT_EQ(run1(e, cmd(1, 2, KV_APPEND, "k", "b")), KV_OK);
	check_val(e, "k", "ab");
	env_free(e);
}

/* ---- determinism ---------------------------------------------------------- */

#define WL_ROUNDS 200
#define WL_ENTRIES_MAX (WL_ROUNDS * 4)

struct workload {
	struct entry en[WL_ENTRIES_MAX];
	uint32_t group[WL_ROUNDS]; /* entries per kv_apply */
	uint8_t data[WL_ENTRIES_MAX][1024];
};

static uint64_t rng_next(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static const char *const WL_KEYS[] = {"a", "b", "c", "d", "e"};
static const char *const WL_VALS[] = {"", "x", "yy", "zzz"};
#define WL_CLIENTS 8

/* Pseudo-random entries: puts, deletes, cas, appends over a few keys by a
 * few clients, with retries and stale seqs. */
static void workload_gen(struct workload *w, uint64_t seed)
{
	uint64_t x = seed, seqs[WL_CLIENTS + 1] = {0}, index = 1;
	for (int round = 0; round < WL_ROUNDS; round++) {
		w->group[round] = 1 + (uint32_t)(rng_next(&x) % 4);
		for (uint32_t i = 0; i < w->group[round]; i++) {
			struct kv_command c[8];
			uint32_t nc = 1 + (uint32_t)(rng_next(&x) % 8);
			for (uint32_t j = 0; j < nc; j++) {
				uint64_t client = 1 + rng_next(&x) % WL_CLIENTS;
				uint64_t r = rng_next(&x) % 10;
				if (r < 7 || seqs[client] == 0)
					seqs[client]++;
				uint64_t seq = r == 9 && seqs[client] > 1
						       ? seqs[client] - 1
						       : seqs[client];
				const char *k = WL_KEYS[rng_next(&x) % 5];
				const char *v = WL_VALS[rng_next(&x) % 4];
				uint32_t op = KV_PUT + (uint32_t)(rng_next(&x) % 4);
				if (op == KV_CAS)
					c[j] = cas(client, seq, k,
						   rng_next(&x) % 3 ? v : NULL,
						   WL_VALS[rng_next(&x) % 4]);
				else
					c[j] = cmd(client, seq, op, k,
						   op == KV_DEL ? NULL : v);
			}
			uint8_t *d = w->data[index - 1];
			int n = codec_batch_encode(c, nc, d, sizeof(w->data[0]));
			ASSERT_TRUE(n > 0);
			w->en[index - 1] = (struct entry){
				.term = 1, .index = index, .type = ENTRY_COMMAND,
				.data_bytes = (uint32_t)n, .data = d};
			index++;
		}
	}
}

static void workload_feed(struct env *e, const struct workload *w)
{
	const struct entry *en = w->en;
	for (int round = 0; round < WL_ROUNDS; round++) {
		ASSERT_EQ(kv_apply(&e->kv, en, w->group[round], on_result, e), 0);
		en += w->group[round];
	}
}

static void same_results(const struct env *a, const struct env *b)
{
	ASSERT_EQ(a->result_count, b->result_count);
	for (size_t i = 0; i < a->result_count; i++) {
		const struct kv_result *x = &a->results[i], *y = &b->results[i];
		ASSERT_U64_EQ(x->client_id, y->client_id);
		ASSERT_U64_EQ(x->seq, y->seq);
		ASSERT_U64_EQ(x->index, y->index);
		ASSERT_EQ(x->status, y->status);
		ASSERT_EQ(x->duplicate, y->duplicate);
	}
}

/* Same kv, sessions and applied index, read through the store interface. */
static void same_state(struct env *a, struct env *b)
{
	ASSERT_U64_EQ(applied(a), applied(b));
	for (size_t i = 0; i < 5; i++) {
		const uint8_t *va, *vb;
		uint32_t na, nb;
		const uint8_t *k = (const uint8_t *)WL_KEYS[i];
		int ra = kv_get(&a->kv, k, 1, &va, &na);
		uint8_t copy[64];
		ASSERT_TRUE(ra != 0 || na <= sizeof(copy));
		if (ra == 0)
			memcpy(copy, va, na);
		int rb = kv_get(&b->kv, k, 1, &vb, &nb);
		ASSERT_EQ(ra, rb);
		if (ra == 0) {
			ASSERT_EQ(na, nb);
			ASSERT_MEM_EQ(copy, vb, na);
		}
	}
	for (uint64_t c = 1; c <= WL_CLIENTS; c++) {
		struct kv_session sa, sb;
		int ra = a->st.ops->session_get(a->st.impl, c, &sa);
		int rb = b->st.ops->session_get(b->st.impl, c, &sb);
		ASSERT_EQ(ra, rb);
		if (ra == 0) {
			ASSERT_U64_EQ(sa.seq, sb.seq);
			ASSERT_U64_EQ(sa.last_index, sb.last_index);
			ASSERT_EQ(sa.status, sb.status);
		}
	}
}

TEST(same_entries_same_state)
{
	struct workload *w = calloc(1, sizeof(*w));
	ASSERT_TRUE(w != NULL);
	workload_gen(w, 0x9e3779b97f4a7c15ull);
	struct env *a = env_new(), *b = env_new();
	a->kv.sessions_max = 5; /* evictions too */
	b->kv.sessions_max = 5;
	workload_feed(a, w);
	workload_feed(b, w);
	ASSERT_U64_EQ(mem_store_digest(&a->mem), mem_store_digest(&b->mem));
	same_results(a, b);
	same_state(a, b);
	/* the workload did exercise every status and path */
	int seen[KV_STALE_SEQ + 1] = {0}, dups = 0;
	for (size_t i = 0; i < a->result_count; i++) {
		seen[a->results[i].status]++;
		dups += a->results[i].duplicate;
	}
	ASSERT_GT(seen[KV_OK], 0);
	ASSERT_GT(seen[KV_NOT_FOUND], 0);
	ASSERT_GT(seen[KV_CAS_FAILED], 0);
	ASSERT_GT(seen[KV_STALE_SEQ], 0);
	ASSERT_GT(dups, 0);
	env_free(a);
	env_free(b);
	free(w);
}

/* The same entries through the LMDB store give the same results and state
 * as through the memory store. */
TEST(lmdb_and_mem_agree)
{
	struct workload *w = calloc(1, sizeof(*w));
	ASSERT_TRUE(w != NULL);
	workload_gen(w, 12345);
	struct env *a = env_new(), *b = env_new();
	char dir[256];
	const char *tmp = getenv("TMPDIR");
	snprintf(dir, sizeof(dir), "%s/keel-kv-XXXXXX",
		 tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
	ASSERT_TRUE(mkdtemp(dir) != NULL);
	struct lmdb_store *ls = calloc(1, sizeof(*ls));
	struct lmdb_store_config cfg = {.dir = dir, .create = true};
	ASSERT_EQ(lmdb_store_open(ls, &cfg), 0);
	lmdb_store_bind(ls, &b->st);
	a->kv.sessions_max = 4;
	b->kv.sessions_max = 4;
	workload_feed(a, w);
	workload_feed(b, w);
	same_results(a, b);
	same_state(a, b);
	lmdb_store_close(ls);
	free(ls);
	char p[300];
	snprintf(p, sizeof(p), "%s/data.mdb", dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/lock.mdb", dir);
	unlink(p);
	rmdir(dir);
	env_free(a);
	env_free(b);
	free(w);
}
