/* test_check.c: keelcheck's library: parsers, models, the search (against a
 * brute-force checker and against histories linearizable by construction or
 * with a planted violation), limits. */
#include "harness.h"

#include <stdlib.h>

#include "../core/err.h"
#include "../sim/check.h"
#include "../sim/check_int.h"

/* ---- a seeded PRNG (splitmix64) --------------------------------------------- */

static uint64_t rng_next(uint64_t *s)
{
	*s += 0x9e3779b97f4a7c15ull;
	return check_mix64(*s);
}

static uint32_t rng_below(uint64_t *s, uint32_t n)
{
	return (uint32_t)(rng_next(s) % n);
}

static const struct check_limits no_limits = { 0 };

static struct check_str S(const char *s)
{
	return (struct check_str){ s, strlen(s) };
}

static const struct check_str NONE = { NULL, 0 };

static enum check_verdict verdict_of(struct check_history *h, enum check_model m)
{
	struct check_result res;
	int rc = check_run(h, m, &no_limits, &res);
	ASSERT_EQ(rc, 0);
	enum check_verdict v = res.verdict;
	check_result_free(&res);
	return v;
}

static enum check_verdict verdict_text(const char *text)
{
	struct check_history h;
	struct check_parse_error err;
	check_history_init(&h);
	int rc = check_parse(&h, text, strlen(text), &err);
	if (rc != 0)
		printf("    parse: line %u: %s\n", err.line, err.reason);
	ASSERT_EQ(rc, 0);
	enum check_verdict v = verdict_of(&h, CHECK_MODEL_AUTO);
	check_history_free(&h);
	return v;
}

/* ---- parsers ------------------------------------------------------------------ */

TEST(native_parses_every_field)
{
	const char *text = "# keel history v1\n"
			   "# a comment\n"
			   "7 put 'k%20x 'v1 - 100 200 ok -\n"
			   "8 cas 'k%20x 'v2 'v1 150 250 ok true\n"
			   "9 get 'k%20x - - 300 400 ok 'v2\n"
			   "9 del 'k%20x - - 500 600 ok true\n"
			   "9 cas 'k%20x 'v3 - 700 800 ok true\n"
			   "10 append 'k%20x ' - 900 - info -\n"
			   "11 put 'other 'z - 5 6 fail -\n";
	struct check_history h;
	struct check_parse_error err;
	check_history_init(&h);
	ASSERT_EQ(check_parse(&h, text, strlen(text), &err), 0);
	ASSERT_EQ(h.format, CHECK_FORMAT_NATIVE);
	ASSERT_EQ(h.op_count, 7);
	size_t len;
	const uint8_t *k = check_str_get(&h.keys, h.ops[0].key, &len);
	ASSERT_EQ(len, 3);
	ASSERT_MEM_EQ(k, "k x", 3);
	ASSERT_EQ(h.ops[1].kind, CHECK_CAS);
	ASSERT_EQ(h.ops[1].expected, h.ops[0].value);
	ASSERT_EQ(h.ops[1].result, 1);
	ASSERT_EQ(h.ops[2].result, h.ops[1].value);
	ASSERT_EQ(h.ops[4].expected, CHECK_ABSENT);
	ASSERT_EQ(h.ops[5].outcome, CHECK_INFO);
	ASSERT_U64_EQ(h.ops[5].complete_ns, CHECK_TIME_INF);
	check_str_get(&h.vals, h.ops[5].value, &len);
	ASSERT_EQ(len, 0);
	ASSERT_EQ(h.ops[6].outcome, CHECK_FAIL);
	ASSERT_EQ(h.ops[0].line, 3);
	ASSERT_EQ(verdict_of(&h, CHECK_MODEL_AUTO), CHECK_VERDICT_OK);
	check_history_free(&h);
}

struct bad_case {
	const char *line;
	const char *reason;
};

TEST(native_rejects_malformed_lines_with_line_number)
{
	static const struct bad_case cases[] = {
		{ "1 get 'k - - 1 2 ok", "fields" },
		{ "1 get 'k - - 1 2 ok - extra", "more than" },
		{ "1  get 'k - - 1 2 ok -", "empty field" },
		{ "x get 'k - - 1 2 ok -", "client" },
		{ "1 fetch 'k - - 1 2 ok -", "op:" },
		{ "1 get - - - 1 2 ok -", "key" },
		{ "1 get k - - 1 2 ok -", "key" },
		{ "1 get 'k%2 - - 1 2 ok -", "escape" },
		{ "1 get 'k%zz - - 1 2 ok -", "escape" },
		{ "1 get 'k\x01 - - 1 2 ok -", "must be written" },
		{ "1 put 'k - - 1 2 ok -", "needs a value" },
		{ "1 get 'k 'v - 1 2 ok -", "must be '-'" },
		{ "1 put 'k 'v 'e 1 2 ok -", "expected" },
		{ "1 get 'k - - 1 2 maybe -", "outcome" },
		{ "1 get 'k - - a 2 ok -", "invoke_ns" },
		{ "1 get 'k - - 1 - ok -", "complete_ns" },
		{ "1 get 'k - - 1 2 info -", "complete_ns" },
		{ "1 get 'k - - 5 2 ok -", "before" },
		{ "1 get 'k - - 1 99999999999999999999 ok -", "complete_ns" },
		{ "1 cas 'k 'v - 1 2 ok maybe", "true or false" },
		{ "1 put 'k 'v - 1 2 ok 'x", "must be '-'" },
		{ "1 get 'k - - 1 2 fail 'x", "unless the outcome is ok" },
		{ "1 get 'k - - 1 2 ok x", "result" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char text[256];
		snprintf(text, sizeof text, "# keel history v1\n1 get 'k - - 1 2 ok -\n%s\n",
			 cases[i].line);
		struct check_history h;
		struct check_parse_error err;
		check_history_init(&h);
		int rc = check_parse(&h, text, strlen(text), &err);
		if (rc != KEEL_EMALFORMED || err.line != 3 || strstr(err.reason, cases[i].reason) == NULL)
			printf("    case %zu (%s): rc %d line %u reason '%s'\n", i, cases[i].line, rc,
			       err.line, err.reason);
		ASSERT_EQ(rc, KEEL_EMALFORMED);
		ASSERT_EQ(err.line, 3);
		ASSERT_TRUE(strstr(err.reason, cases[i].reason) != NULL);
		check_history_free(&h);
	}
}

TEST(native_header_and_unknown_formats)
{
	const char *texts[] = { "# keel history v2\n", "hello world\n", "\n\n[1 2]\n" };
	uint32_t lines[] = { 1, 1, 3 };
	for (int i = 0; i < 3; i++) {
		struct check_history h;
		struct check_parse_error err;
		check_history_init(&h);
		ASSERT_EQ(check_parse(&h, texts[i], strlen(texts[i]), &err), KEEL_EMALFORMED);
		ASSERT_EQ(err.line, lines[i]);
		check_history_free(&h);
	}
	struct check_history h;
	check_history_init(&h);
	ASSERT_EQ(check_parse(&h, "", 0, NULL), 0);
	ASSERT_EQ(h.op_count, 0);
	ASSERT_EQ(verdict_of(&h, CHECK_MODEL_AUTO), CHECK_VERDICT_OK);
	check_history_free(&h);
}

TEST(jepsen_semantics)
{
	/* fail read: constrains nothing; fail cas: returned false; info write
	 * and a missing completion: indeterminate. */
	const char *text =
		"INFO  jepsen.util - 0\t:invoke\t:write\t1\n"
		"INFO  jepsen.util - 0\t:ok\t:write\t1\n"
		"INFO  jepsen.util - 1   :invoke   :read   nil\n"
		"INFO  jepsen.util - 1   :fail   :read   :timed-out\n"
		"INFO  jepsen.util - 2\t:invoke\t:cas\t[3 4]\n"
		"INFO  jepsen.util - 2\t:fail\t:cas\t[3 4]\n"
		"INFO  jepsen.util - 3\t:invoke\t:write\t2\n"
		"INFO  jepsen.util - 3\t:info\t:write\t:timed-out\n"
		"INFO  jepsen.util - 4\t:invoke\t:cas\t[2 3]\n"
		"INFO  jepsen.util - 5\t:invoke\t:read\tnil\n"
		"INFO  jepsen.util - 5\t:ok\t:read\t3\n";
	struct check_history h;
	check_history_init(&h);
	ASSERT_EQ(check_parse(&h, text, strlen(text), NULL), 0);
	ASSERT_EQ(h.format, CHECK_FORMAT_JEPSEN);
	ASSERT_EQ(h.op_count, 6);
	ASSERT_EQ(h.ops[1].outcome, CHECK_FAIL);
	ASSERT_EQ(h.ops[2].outcome, CHECK_OK);
	ASSERT_EQ(h.ops[2].result, 0);
	ASSERT_EQ(h.ops[3].outcome, CHECK_INFO);
	/* 3 is only reachable through both indeterminate ops. */
	ASSERT_EQ(verdict_of(&h, CHECK_MODEL_AUTO), CHECK_VERDICT_OK);
	check_history_free(&h);
	ASSERT_EQ(verdict_text("INFO  jepsen.util - 0\t:invoke\t:write\t1\n"
			       "INFO  jepsen.util - 0\t:fail\t:write\t1\n"
			       "INFO  jepsen.util - 5\t:invoke\t:read\tnil\n"
			       "INFO  jepsen.util - 5\t:ok\t:read\t1\n"),
		  CHECK_VERDICT_ILLEGAL);
	ASSERT_EQ(verdict_text("INFO  jepsen.util - 0\t:invoke\t:cas\t[nil 1]\n"
			       "INFO  jepsen.util - 0\t:fail\t:cas\t[nil 1]\n"),
		  CHECK_VERDICT_ILLEGAL);
}

TEST(jepsen_and_edn_errors)
{
	static const struct bad_case cases[] = {
		{ "INFO  jepsen.util - 0\t:invoke\t:write\t1\nINFO  jepsen.util - 0\t:invoke\t:write\t2\n",
		  "pending" },
		{ "INFO  jepsen.util - 0\t:invoke\t:write\t1\nINFO  jepsen.util - 1\t:ok\t:write\t1\n",
		  "never invoked" },
		{ "INFO  jepsen.util - 0\t:invoke\t:write\t1\nINFO  jepsen.util - 0\t:ok\t:read\t1\n",
		  "invoked put" },
		{ "INFO  jepsen.util - 1\t:invoke\t:read\tnil\nINFO  jepsen.util - 0\t:invoke\t:cas\t1\n", "[FROM TO]" },
		{ "INFO  jepsen.util - 1\t:invoke\t:read\tnil\nINFO  jepsen.util - 0\t:invoke\t:cas\t[1 2\n", "unterminated" },
		{ "INFO  jepsen.util - 1\t:invoke\t:read\tnil\nINFO  jepsen.util - 0\t:invoke\t:delete\t1\n", "f:" },
		{ "{:process 0, :type :invoke, :f :get, :key \"a\", :value nil}\n"
		  "{:process 0, :type :ok, :f :get, :key \"a\"}\n", "value read" },
		{ "{:process 0, :type :invoke, :f :get, :key \"a\", :value nil}\n{:process 0}\n",
		  "needs :process" },
		{ "{:process 0, :type :invoke, :f :get, :key \"a\", :value nil}\n{:process 0 :type\n",
		  "value" },
		{ "{:process 0, :type :invoke, :f :get, :key \"a\", :value nil}\n{process 0}\n",
		  "keyword" },
		{ "{:process 0, :type :invoke, :f :get, :key \"a\", :value nil}\n{:process x, :type :ok}\n",
		  ":process" },
		{ "{:process 0, :type :invoke, :f :get, :key \"a\", :value nil}\n{:process 0} trailing\n",
		  "after '}'" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct check_history h;
		struct check_parse_error err;
		check_history_init(&h);
		int rc = check_parse(&h, cases[i].line, strlen(cases[i].line), &err);
		if (rc != KEEL_EMALFORMED || err.line != 2 || strstr(err.reason, cases[i].reason) == NULL)
			printf("    case %zu: rc %d line %u reason '%s'\n", i, rc, err.line, err.reason);
		ASSERT_EQ(rc, KEEL_EMALFORMED);
		ASSERT_EQ(err.line, 2);
		ASSERT_TRUE(strstr(err.reason, cases[i].reason) != NULL);
		check_history_free(&h);
	}
}

TEST(edn_kv_semantics)
{
	ASSERT_EQ(verdict_text("{:process 0, :type :invoke, :f :append, :key \"k\", :value \"a\"}\n"
			       "{:process 1, :type :invoke, :f :get, :key \"k\", :value nil}\n"
			       "{:process 1, :type :ok, :f :get, :key \"k\", :value \"\"}\n"
			       "{:process 0, :type :ok, :f :append, :key \"k\", :value \"a\"}\n"
			       "{:process 1, :type :invoke, :f :get, :key \"k\", :value nil}\n"
			       "{:process 1, :type :ok, :f :get, :key \"k\", :value \"a\"}\n"),
		  CHECK_VERDICT_OK);
	/* Escapes decode; a read that misses a completed append is illegal. */
	ASSERT_EQ(verdict_text("{:process 0, :type :invoke, :f :put, :key \"k\", :value \"a\\\"b\"}\n"
			       "{:process 0, :type :ok, :f :put, :key \"k\", :value \"a\\\"b\"}\n"
			       "{:process 0, :type :invoke, :f :append, :key \"k\", :value \"c\"}\n"
			       "{:process 0, :type :ok, :f :append, :key \"k\", :value \"c\"}\n"
			       "{:process 1, :type :invoke, :f :get, :key \"k\", :value nil}\n"
			       "{:process 1, :type :ok, :f :get, :key \"k\", :value \"a\\\"bc\"}\n"),
		  CHECK_VERDICT_OK);
	ASSERT_EQ(verdict_text("{:process 0, :type :invoke, :f :append, :key \"k\", :value \"a\"}\n"
			       "{:process 0, :type :ok, :f :append, :key \"k\", :value \"a\"}\n"
			       "{:process 1, :type :invoke, :f :get, :key \"k\", :value nil}\n"
			       "{:process 1, :type :ok, :f :get, :key \"k\", :value \"\"}\n"),
		  CHECK_VERDICT_ILLEGAL);
}

/* Arbitrary bytes never crash a parser (the sanitizer build checks it). */
TEST(parsers_survive_mutated_input)
{
	static const char *const seeds[] = {
		"# keel history v1\n1 cas 'k%41 'v '- 1 2 ok true\n2 get 'k - - 3 - info -\n",
		"INFO  jepsen.util - 2\t:invoke\t:cas\t[3 0]\nINFO  jepsen.util - 2\t:ok\t:cas\t[3 0]\n",
		"{:process 0, :type :invoke, :f :append, :key \"0\", :value \"x 0 0 y\"}\n"
		"{:process 0, :type :ok, :f :append, :key \"0\", :value \"x 0 0 y\"}\n",
	};
	uint64_t seed = 42;
	char buf[256];
	int parsed = 0, rejected = 0;
	for (int iter = 0; iter < 3000; iter++) {
		const char *s = seeds[iter % 3];
		size_t len = strlen(s);
		memcpy(buf, s, len);
		int flips = 1 + (int)rng_below(&seed, 4);
		for (int f = 0; f < flips; f++)
			buf[rng_below(&seed, (uint32_t)len)] = (char)rng_next(&seed);
		if (rng_below(&seed, 4) == 0)
			len = rng_below(&seed, (uint32_t)len + 1);
		char *copy = malloc(len + 1); /* exact size: ASan sees overreads */
		memcpy(copy, buf, len);
		struct check_history h;
		struct check_parse_error err;
		check_history_init(&h);
		int rc = check_parse(&h, copy, len, &err);
		if (rc == 0) {
			parsed++;
			struct check_result res;
			ASSERT_TRUE(check_run(&h, CHECK_MODEL_AUTO, &no_limits, &res) == 0 ||
				    h.format != CHECK_FORMAT_NATIVE);
			check_result_free(&res);
		} else {
			rejected++;
			ASSERT_EQ(rc, KEEL_EMALFORMED);
			ASSERT_TRUE(err.line >= 1);
			ASSERT_TRUE(strlen(err.reason) > 0);
		}
		check_history_free(&h);
		free(copy);
	}
	ASSERT_GT(parsed, 0);
	ASSERT_GT(rejected, 0);
}

/* ---- random histories --------------------------------------------------------- */

static const char *const domain[] = { "a", "b", "c" };
#define STATE_BYTES_MAX 64
#define TIME_BASE 1000000ull /* above every spread */

struct gen {
	enum check_model model;
	uint32_t keys;
	uint32_t ops;
	uint32_t spread;      /* max distance of invoke/complete from the point */
	uint32_t info_pct;    /* indeterminate ops */
	uint32_t fail_pct;    /* ops that did not happen */
};

struct sval {
	bool present;
	char s[STATE_BYTES_MAX + 1];
};

static enum check_kind random_kind(uint64_t *seed, enum check_model m)
{
	for (;;) {
		enum check_kind k = (enum check_kind)rng_below(seed, 5);
		if (check_model_allows(m, k))
			return k;
	}
}

/* Applies kind to v; fills the op's arguments and result. */
static void gen_apply(uint64_t *seed, struct sval *v, struct check_op_in *in, bool apply,
		      char *expected_buf)
{
	const char *arg = domain[rng_below(seed, 3)];
	struct sval next = *v;
	in->value = NONE;
	in->expected = NONE;
	in->result = NONE;
	in->result_bool = false;
	switch (in->kind) {
	case CHECK_GET:
		if (v->present)
			in->result = (struct check_str){ v->s, strlen(v->s) };
		break;
	case CHECK_PUT:
		in->value = S(arg);
		next.present = true;
		strcpy(next.s, arg);
		break;
	case CHECK_DEL:
		in->result_bool = v->present;
		next.present = false;
		break;
	case CHECK_CAS: {
		bool hit;
		if (rng_below(seed, 3) == 0) {
			in->expected = NONE;
			hit = !v->present;
		} else {
			/* Usually the current value, to make hits common. */
			const char *e = v->present && rng_below(seed, 2) ? v->s : domain[rng_below(seed, 3)];
			strcpy(expected_buf, e); /* v->s changes below */
			in->expected = S(expected_buf);
			hit = v->present && strcmp(v->s, e) == 0;
		}
		in->value = S(arg);
		in->result_bool = hit;
		if (hit) {
			next.present = true;
			strcpy(next.s, arg);
		}
		break;
	}
	case CHECK_APPEND:
		in->value = S(arg);
		next.present = true;
		if (strlen(v->present ? v->s : "") + 1 <= STATE_BYTES_MAX) {
			if (!v->present)
				next.s[0] = '\0';
			strcat(next.s, arg);
		} else {
			in->kind = CHECK_PUT; /* keep states short */
			strcpy(next.s, arg);
		}
		break;
	}
	if (apply)
		*v = next;
}

/* Strings handed to check_history_add must live until it copies them:
 * results point into per-op buffers. */
struct gen_op {
	struct check_op_in in;
	char result[STATE_BYTES_MAX + 1];
	char expected[STATE_BYTES_MAX + 1];
};

/* Builds a history linearizable by construction: a sequential run with
 * the i-th op at time TIME_BASE + 1000 * i, and an interval around it. */
static void gen_history(uint64_t *seed, const struct gen *g, struct check_history *h)
{
	struct sval state[8];
	char keyname[8][16];
	for (uint32_t k = 0; k < g->keys; k++) {
		state[k].present = g->model == CHECK_MODEL_KV;
		state[k].s[0] = '\0';
		snprintf(keyname[k], sizeof keyname[k], "k%u", k);
	}
	uint64_t client_free[16] = { 0 };
	check_history_init(h);
	for (uint32_t i = 0; i < g->ops; i++) {
		struct gen_op op = { 0 };
		uint32_t k = rng_below(seed, g->keys);
		uint64_t point = TIME_BASE + 1000ull * i;
		uint32_t roll = rng_below(seed, 100);
		enum check_outcome outcome = roll < g->info_pct ? CHECK_INFO
				     : roll < g->info_pct + g->fail_pct ? CHECK_FAIL : CHECK_OK;
		bool apply = outcome == CHECK_OK || (outcome == CHECK_INFO && rng_below(seed, 2));
		op.in.kind = random_kind(seed, g->model);
		op.in.key = S(keyname[k]);
		gen_apply(seed, &state[k], &op.in, apply, op.expected);
		if (op.in.result.ptr != NULL) {
			memcpy(op.result, op.in.result.ptr, op.in.result.len);
			op.in.result.ptr = op.result;
		}
		op.in.outcome = outcome;
		op.in.invoke_ns = point - rng_below(seed, g->spread + 1);
		op.in.complete_ns = point + rng_below(seed, g->spread + 1);
		if (outcome == CHECK_INFO && apply == false && rng_below(seed, 2))
			op.in.invoke_ns = point + rng_below(seed, g->spread + 1); /* after it */
		/* A client runs one op at a time. */
		uint32_t c = 0;
		while (c < 15 && client_free[c] > op.in.invoke_ns)
			c++;
		client_free[c] = outcome == CHECK_INFO ? UINT64_MAX : op.in.complete_ns + 1;
		op.in.client = c;
		int rc = check_history_add(h, &op.in);
		if (rc != 0)
			printf("    add: kind %d outcome %d value %p invoke %llu complete %llu\n",
			       op.in.kind, op.in.outcome, op.in.value.ptr,
			       (unsigned long long)op.in.invoke_ns, (unsigned long long)op.in.complete_ns);
		ASSERT_EQ(rc, 0);
	}
}

TEST(linearizable_by_construction_is_ok)
{
	uint64_t seed = 7;
	int rounds = 0;
	for (enum check_model m = CHECK_MODEL_REGISTER; m <= CHECK_MODEL_KEEL; m++) {
		for (int round = 0; round < 60; round++, rounds++) {
			struct gen g = { .model = m, .keys = 1 + rng_below(&seed, 3),
					 .ops = 20 + rng_below(&seed, 150),
					 .spread = 500 + rng_below(&seed, 4000),
					 .info_pct = rng_below(&seed, 15), .fail_pct = rng_below(&seed, 10) };
			struct check_history h;
			gen_history(&seed, &g, &h);
			struct check_result res;
			ASSERT_EQ(check_run(&h, m, &no_limits, &res), 0);
			if (res.verdict != CHECK_VERDICT_OK)
				printf("    model %s round %d: %s\n", check_model_name(m), round,
				       check_verdict_name(res.verdict));
			ASSERT_EQ(res.verdict, CHECK_VERDICT_OK);
			check_result_free(&res);
			check_history_free(&h);
		}
	}
	ASSERT_EQ(rounds, 180);
}

/* Plants a violation at the end of a valid history: a write of a fresh
 * value, then (strictly after it) another, then a read of the first. */
TEST(planted_stale_read_is_illegal)
{
	uint64_t seed = 11;
	for (enum check_model m = CHECK_MODEL_REGISTER; m <= CHECK_MODEL_KEEL; m++) {
		for (int round = 0; round < 40; round++) {
			struct gen g = { .model = m, .keys = 1 + rng_below(&seed, 3),
					 .ops = 10 + rng_below(&seed, 60), .spread = 2500,
					 .info_pct = 10, .fail_pct = 5 };
			struct check_history h;
			gen_history(&seed, &g, &h);
			uint64_t t = TIME_BASE + 1000ull * (g.ops + 10);
			struct check_op_in p = { .client = 100, .kind = CHECK_PUT, .key = S("k0"),
						 .value = S("fresh1"), .invoke_ns = t, .complete_ns = t + 10 };
			ASSERT_EQ(check_history_add(&h, &p), 0);
			p.value = S("fresh2");
			p.invoke_ns = t + 20;
			p.complete_ns = t + 30;
			ASSERT_EQ(check_history_add(&h, &p), 0);
			struct check_op_in r = { .client = 100, .kind = CHECK_GET, .key = S("k0"),
						 .result = S("fresh1"), .invoke_ns = t + 40,
						 .complete_ns = t + 50 };
			ASSERT_EQ(check_history_add(&h, &r), 0);
			struct check_result res;
			ASSERT_EQ(check_run(&h, m, &no_limits, &res), 0);
			ASSERT_EQ(res.verdict, CHECK_VERDICT_ILLEGAL);
			size_t len;
			const uint8_t *key = check_str_get(&h.keys, res.key, &len);
			ASSERT_EQ(len, 2);
			ASSERT_MEM_EQ(key, "k0", 2);
			ASSERT_TRUE(res.prefix_count < res.key_op_count);
			ASSERT_GT(res.stuck_count, 0);
			/* Proven without search: the read, hidden by the second put. */
			ASSERT_TRUE(res.stale);
			ASSERT_EQ(res.stale_read, h.op_count - 1);
			ASSERT_EQ(res.stale_overwrite, h.op_count - 2);
			check_result_free(&res);
			check_history_free(&h);
		}
	}
}

/* A read of a value nobody wrote, anywhere in a valid history. */
TEST(planted_phantom_read_is_illegal)
{
	uint64_t seed = 13;
	for (enum check_model m = CHECK_MODEL_REGISTER; m <= CHECK_MODEL_KEEL; m++) {
		for (int round = 0; round < 40; round++) {
			struct gen g = { .model = m, .keys = 2, .ops = 10 + rng_below(&seed, 60),
					 .spread = 3000, .info_pct = 10, .fail_pct = 5 };
			struct check_history h;
			gen_history(&seed, &g, &h);
			uint32_t reads = 0;
			for (uint32_t i = 0; i < h.op_count; i++)
				reads += h.ops[i].kind == CHECK_GET && h.ops[i].outcome == CHECK_OK;
			if (reads == 0)
				continue;
			uint32_t pick = rng_below(&seed, reads);
			uint32_t phantom;
			ASSERT_EQ(check_strtab_intern(&h.vals, "zz", 2, &phantom), 0);
			for (uint32_t i = 0; i < h.op_count; i++) {
				if (h.ops[i].kind == CHECK_GET && h.ops[i].outcome == CHECK_OK &&
				    pick-- == 0)
					h.ops[i].result = phantom;
			}
			ASSERT_EQ(verdict_of(&h, m), CHECK_VERDICT_ILLEGAL);
			check_history_free(&h);
		}
	}
}

/* ---- brute force ---------------------------------------------------------------- */

#define BRUTE_OPS_MAX 8

struct brute {
	struct check_history *h;
	enum check_model m;
	uint32_t n;
	uint32_t ok_total;
	struct sval state[4];
};

static bool brute_step(const struct brute *b, const struct check_op *op, struct sval *v)
{
	size_t len = 0;
	const uint8_t *p;
	switch (op->kind) {
	case CHECK_GET:
		if (op->result == CHECK_ANY)
			return true;
		if (op->result == CHECK_ABSENT)
			return !v->present;
		p = check_str_get(&b->h->vals, op->result, &len);
		return v->present && strlen(v->s) == len && memcmp(v->s, p, len) == 0;
	case CHECK_PUT:
		p = check_str_get(&b->h->vals, op->value, &len);
		v->present = true;
		memcpy(v->s, p, len);
		v->s[len] = '\0';
		return true;
	case CHECK_DEL: {
		bool had = v->present;
		v->present = false;
		return op->result == CHECK_ANY || op->result == (uint32_t)had;
	}
	case CHECK_CAS: {
		bool hit;
		if (op->expected == CHECK_ABSENT) {
			hit = !v->present;
		} else {
			p = check_str_get(&b->h->vals, op->expected, &len);
			hit = v->present && strlen(v->s) == len && memcmp(v->s, p, len) == 0;
		}
		if (op->result != CHECK_ANY && op->result != (uint32_t)hit)
			return false;
		if (hit) {
			p = check_str_get(&b->h->vals, op->value, &len);
			v->present = true;
			memcpy(v->s, p, len);
			v->s[len] = '\0';
		}
		return true;
	}
	default: /* append */
		p = check_str_get(&b->h->vals, op->value, &len);
		if (!v->present)
			v->s[0] = '\0';
		v->present = true;
		if (strlen(v->s) + len > STATE_BYTES_MAX)
			return false; /* generator keeps states shorter */
		strncat(v->s, (const char *)p, len);
		return true;
	}
}

/* Does some order of the unplaced ops (all ok ones, any subset of the
 * indeterminate ones), consistent with real time, fit the model? */
static bool brute_search(struct brute *b, uint32_t placed, uint32_t ok_placed)
{
	if (ok_placed == b->ok_total)
		return true;
	for (uint32_t i = 0; i < b->n; i++) {
		if (placed & (1u << i))
			continue;
		const struct check_op *op = &b->h->ops[i];
		if (op->outcome == CHECK_FAIL)
			continue;
		bool blocked = false;
		for (uint32_t j = 0; j < b->n && !blocked; j++) {
			const struct check_op *o = &b->h->ops[j];
			blocked = j != i && !(placed & (1u << j)) && o->outcome == CHECK_OK &&
				  o->complete_ns < op->invoke_ns;
		}
		if (blocked)
			continue;
		struct sval saved = b->state[op->key];
		if (brute_step(b, op, &b->state[op->key]) &&
		    brute_search(b, placed | (1u << i), ok_placed + (op->outcome == CHECK_OK)))
			return true;
		b->state[op->key] = saved;
	}
	return false;
}

static bool brute_linearizable(struct check_history *h, enum check_model m)
{
	struct brute b = { .h = h, .m = m, .n = h->op_count };
	for (int k = 0; k < 4; k++) {
		b.state[k].present = m == CHECK_MODEL_KV;
		b.state[k].s[0] = '\0';
	}
	for (uint32_t i = 0; i < h->op_count; i++)
		b.ok_total += h->ops[i].outcome == CHECK_OK;
	return brute_search(&b, 0, 0);
}

/* Random small histories, half of them with a result changed at random:
 * the checker and the brute force agree on every one. */
TEST(agrees_with_brute_force_on_small_histories)
{
	uint64_t seed = 5;
	int ok = 0, illegal = 0;
	for (enum check_model m = CHECK_MODEL_REGISTER; m <= CHECK_MODEL_KEEL; m++) {
		for (int round = 0; round < 4000; round++) {
			struct gen g = { .model = m, .keys = 1 + rng_below(&seed, 2),
					 .ops = 1 + rng_below(&seed, BRUTE_OPS_MAX),
					 .spread = rng_below(&seed, 3000),
					 .info_pct = rng_below(&seed, 50), .fail_pct = rng_below(&seed, 15) };
			struct check_history h;
			gen_history(&seed, &g, &h);
			/* Keys are interned in order of first use: ids 1, 2. */
			for (uint32_t i = 0; i < h.op_count; i++)
				ASSERT_LT(h.ops[i].key, 4);
			if (rng_below(&seed, 2)) {
				struct check_op *op = &h.ops[rng_below(&seed, h.op_count)];
				uint32_t v;
				if (op->kind == CHECK_GET && op->outcome == CHECK_OK) {
					uint32_t r = rng_below(&seed, 4);
					if (r == 3) {
						op->result = CHECK_ABSENT;
					} else {
						ASSERT_EQ(check_strtab_intern(&h.vals, domain[r], 1, &v), 0);
						op->result = v;
					}
				} else if ((op->kind == CHECK_CAS || op->kind == CHECK_DEL) &&
					   op->outcome == CHECK_OK) {
					op->result ^= 1;
				} else if (op->kind != CHECK_GET && op->kind != CHECK_DEL) {
					ASSERT_EQ(check_strtab_intern(&h.vals, domain[rng_below(&seed, 3)],
								      1, &v), 0);
					op->value = v;
				}
			}
			bool want = brute_linearizable(&h, m);
			enum check_verdict got = verdict_of(&h, m);
			if (got != (want ? CHECK_VERDICT_OK : CHECK_VERDICT_ILLEGAL)) {
				printf("    model %s round %d: brute %d, checker %s\n",
				       check_model_name(m), round, want, check_verdict_name(got));
				check_write_native(&h, stdout);
			}
			ASSERT_EQ(got, want ? CHECK_VERDICT_OK : CHECK_VERDICT_ILLEGAL);
			ok += want;
			illegal += !want;
			check_history_free(&h);
		}
	}
	/* Both verdicts are well represented. */
	ASSERT_GT(ok, 1500);
	ASSERT_GT(illegal, 1000);
}

/* ---- round trip, limits, API ------------------------------------------------------ */

TEST(native_round_trip)
{
	uint64_t seed = 3;
	struct gen g = { .model = CHECK_MODEL_KEEL, .keys = 3, .ops = 300, .spread = 3000,
			 .info_pct = 10, .fail_pct = 10 };
	struct check_history h;
	gen_history(&seed, &g, &h);
	/* A key and a value with bytes that need escaping. */
	struct check_op_in odd = { .client = 1, .kind = CHECK_PUT, .key = { "k \n%'\0", 6 },
				   .value = { "\xff v", 3 }, .invoke_ns = 5, .complete_ns = 6 };
	ASSERT_EQ(check_history_add(&h, &odd), 0);
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	ASSERT_EQ(check_write_native(&h, f), 0);
	fclose(f);
	struct check_history back;
	check_history_init(&back);
	struct check_parse_error err;
	ASSERT_EQ(check_parse(&back, buf, len, &err), 0);
	ASSERT_EQ(back.op_count, h.op_count);
	for (uint32_t i = 0; i < h.op_count; i++) {
		const struct check_op *a = &h.ops[i];
		const struct check_op *b = &back.ops[i];
		ASSERT_EQ(a->kind, b->kind);
		ASSERT_EQ(a->outcome, b->outcome);
		ASSERT_U64_EQ(a->client, b->client);
		ASSERT_U64_EQ(a->invoke_ns, b->invoke_ns);
		ASSERT_U64_EQ(a->complete_ns, b->complete_ns);
		ASSERT_EQ(a->result == CHECK_ANY, b->result == CHECK_ANY);
		size_t la, lb;
		const uint8_t *ka = check_str_get(&h.keys, a->key, &la);
		const uint8_t *kb = check_str_get(&back.keys, b->key, &lb);
		ASSERT_EQ(la, lb);
		ASSERT_MEM_EQ(ka, kb, la);
		ASSERT_EQ(a->value == CHECK_ABSENT, b->value == CHECK_ABSENT);
		if (a->value != CHECK_ABSENT) {
			ka = check_str_get(&h.vals, a->value, &la);
			kb = check_str_get(&back.vals, b->value, &lb);
			ASSERT_EQ(la, lb);
			ASSERT_MEM_EQ(ka, kb, la);
		}
	}
	ASSERT_EQ(verdict_of(&back, CHECK_MODEL_KEEL), CHECK_VERDICT_OK);
	free(buf);
	check_history_free(&back);
	check_history_free(&h);
}

TEST(tiny_memory_limit_gives_unknown)
{
	uint64_t seed = 9;
	struct gen g = { .model = CHECK_MODEL_KEEL, .keys = 1, .ops = 200, .spread = 8000,
			 .info_pct = 5 };
	struct check_history h;
	gen_history(&seed, &g, &h);
	struct check_limits lim = { .memory_bytes_max = 4096 };
	struct check_result res;
	ASSERT_EQ(check_run(&h, CHECK_MODEL_KEEL, &lim, &res), 0);
	ASSERT_EQ(res.verdict, CHECK_VERDICT_UNKNOWN);
	ASSERT_STR_EQ(res.unknown_why, "memory limit");
	check_result_free(&res);
	/* With room, the same history is ok. */
	ASSERT_EQ(verdict_of(&h, CHECK_MODEL_KEEL), CHECK_VERDICT_OK);
	check_history_free(&h);
}

TEST(history_add_validates)
{
	struct check_history h;
	check_history_init(&h);
	struct check_op_in in = { .kind = CHECK_PUT, .key = S("k"), .value = S("v"),
				  .invoke_ns = 10, .complete_ns = 20 };
	ASSERT_EQ(check_history_add(&h, &in), 0);
	struct check_op_in bad = in;
	bad.key = NONE;
	ASSERT_EQ(check_history_add(&h, &bad), KEEL_EINVAL);
	bad = in;
	bad.value = NONE;
	ASSERT_EQ(check_history_add(&h, &bad), KEEL_EINVAL);
	bad = in;
	bad.complete_ns = 5;
	ASSERT_EQ(check_history_add(&h, &bad), KEEL_EINVAL);
	bad = in;
	bad.kind = (enum check_kind)9;
	ASSERT_EQ(check_history_add(&h, &bad), KEEL_EINVAL);
	bad = in;
	bad.kind = CHECK_GET;
	ASSERT_EQ(check_history_add(&h, &bad), KEEL_EINVAL); /* get takes no value */
	bad = in;
	bad.expected = S("e");
	ASSERT_EQ(check_history_add(&h, &bad), KEEL_EINVAL);
	ASSERT_EQ(h.op_count, 1);
	/* A model without del refuses the history. */
	struct check_op_in del = { .kind = CHECK_DEL, .key = S("k"), .invoke_ns = 30,
				   .complete_ns = 40, .result_bool = true };
	ASSERT_EQ(check_history_add(&h, &del), 0);
	struct check_result res;
	ASSERT_EQ(check_run(&h, CHECK_MODEL_REGISTER, &no_limits, &res), KEEL_EINVAL);
	ASSERT_EQ(verdict_of(&h, CHECK_MODEL_KEEL), CHECK_VERDICT_OK);
	check_history_free(&h);
}

TEST(keel_model_rules)
{
	/* append on absent makes the value; cas on absence; del reports. */
	ASSERT_EQ(verdict_text("# keel history v1\n"
			       "1 append 'k 'a - 1 2 ok -\n"
			       "1 get 'k - - 3 4 ok 'a\n"
			       "1 del 'k - - 5 6 ok true\n"
			       "1 del 'k - - 7 8 ok false\n"
			       "1 cas 'k 'b - 9 10 ok true\n"
			       "1 cas 'k 'c - 11 12 ok false\n"
			       "1 get 'k - - 13 14 ok 'b\n"),
		  CHECK_VERDICT_OK);
	ASSERT_EQ(verdict_text("# keel history v1\n"
			       "1 del 'k - - 1 2 ok true\n"),
		  CHECK_VERDICT_ILLEGAL);
	/* Equal times overlap: the read may come first. */
	ASSERT_EQ(verdict_text("# keel history v1\n"
			       "1 put 'k 'a - 1 5 ok -\n"
			       "2 get 'k - - 5 6 ok -\n"),
		  CHECK_VERDICT_OK);
	ASSERT_EQ(verdict_text("# keel history v1\n"
			       "1 put 'k 'a - 1 5 ok -\n"
			       "2 get 'k - - 6 7 ok -\n"),
		  CHECK_VERDICT_ILLEGAL);
	/* An indeterminate put may never happen, or happen late. */
	ASSERT_EQ(verdict_text("# keel history v1\n"
			       "1 put 'k 'a - 1 - info -\n"
			       "2 get 'k - - 6 7 ok -\n"
			       "2 get 'k - - 8 9 ok 'a\n"),
		  CHECK_VERDICT_OK);
	ASSERT_EQ(verdict_text("# keel history v1\n"
			       "1 put 'k 'a - 10 - info -\n"
			       "2 get 'k - - 6 7 ok 'a\n"),
		  CHECK_VERDICT_ILLEGAL);
	/* A failed put never happened. */
	ASSERT_EQ(verdict_text("# keel history v1\n"
			       "1 put 'k 'a - 1 2 fail -\n"
			       "2 get 'k - - 6 7 ok 'a\n"),
		  CHECK_VERDICT_ILLEGAL);
}

/* Long histories: the cache keeps a window of the set (memory per state
 * does not grow with the length); a violation at the very end is found. */
TEST(long_history_windowed)
{
	uint64_t seed = 17;
	for (enum check_model m = CHECK_MODEL_REGISTER; m <= CHECK_MODEL_KEEL; m++) {
		struct gen g = { .model = m, .keys = 2, .ops = 3000, .spread = 2500,
				 .info_pct = 2, .fail_pct = 2 };
		struct check_history h;
		gen_history(&seed, &g, &h);
		struct check_result res;
		ASSERT_EQ(check_run(&h, m, &no_limits, &res), 0);
		ASSERT_EQ(res.verdict, CHECK_VERDICT_OK);
		check_result_free(&res);
		check_history_free(&h);
		/* Proving a violation means exhausting the search, which
		 * indeterminate ops multiply: plant one without them. */
		g.info_pct = 0;
		gen_history(&seed, &g, &h);
		uint64_t t = TIME_BASE + 1000ull * (g.ops + 10);
		struct check_op_in p = { .client = 100, .kind = CHECK_PUT, .key = S("k1"),
					 .value = S("fresh1"), .invoke_ns = t, .complete_ns = t + 10 };
		ASSERT_EQ(check_history_add(&h, &p), 0);
		p.value = S("fresh2");
		p.invoke_ns = t + 20;
		p.complete_ns = t + 30;
		ASSERT_EQ(check_history_add(&h, &p), 0);
		struct check_op_in r = { .client = 100, .kind = CHECK_GET, .key = S("k1"),
					 .result = S("fresh1"), .invoke_ns = t + 40,
					 .complete_ns = t + 50 };
		ASSERT_EQ(check_history_add(&h, &r), 0);
		ASSERT_EQ(check_run(&h, m, &no_limits, &res), 0);
		ASSERT_EQ(res.verdict, CHECK_VERDICT_ILLEGAL);
		size_t len;
		const uint8_t *key = check_str_get(&h.keys, res.key, &len);
		ASSERT_EQ(len, 2);
		ASSERT_MEM_EQ(key, "k1", 2);
		check_result_free(&res);
		check_history_free(&h);
	}
}

/* The search-free proof stays silent when the stale value's writer is
 * indeterminate (it may take effect late), and the search says ok. */
TEST(stale_proof_respects_indeterminate_writers)
{
	ASSERT_EQ(verdict_text("# keel history v1\n"
			       "1 put 'k 'a - 1 - info -\n"
			       "2 put 'k 'b - 5 6 ok -\n"
			       "2 get 'k - - 8 9 ok 'a\n"),
		  CHECK_VERDICT_OK);
	/* An append can rebuild the value: 'ab' after 'x' is reachable. */
	ASSERT_EQ(verdict_text("# keel history v1\n"
			       "1 put 'k 'a - 1 2 ok -\n"
			       "1 put 'k 'x - 3 4 ok -\n"
			       "2 append 'k 'b - 5 - info -\n"
			       "3 put 'k 'a - 5 - info -\n"
			       "2 get 'k - - 8 9 ok 'ab\n"),
		  CHECK_VERDICT_OK);
	ASSERT_EQ(verdict_text("# keel history v1\n"
			       "1 put 'k 'a - 1 2 ok -\n"
			       "1 put 'k 'x - 3 4 ok -\n"
			       "2 append 'k 'b - 5 - info -\n"
			       "2 get 'k - - 8 9 ok 'ab\n"),
		  CHECK_VERDICT_ILLEGAL);
}
