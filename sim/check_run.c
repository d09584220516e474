/*
 * check_run.c: check_run() — splits a history by key (P-compositionality:
 * a history of independent keys is linearizable iff each key's is), sets up
 * each key's search (check_wgl.c) smallest key first, and on an illegal key
 * gathers what the HTML picture needs. Before searching a key it tries the
 * search-free proof of check_stale.c.
 *
 * Invariants:
 *  1. Only ops that constrain something are searched: failed ops and reads
 *     with an unknown result are left out (they stay in the picture).
 *  2. A key's local ops are numbered ok ops first, in order of invocation,
 *     then the indeterminate ones; the set of placed ok ops is kept as a
 *     window of win_words words, which covers every placed op after the
 *     lowest unplaced one (see wgl_search and the span computed here).
 *  3. Everything a key's search holds is given back to the budget before
 *     the next key.
 */
#include "check_stale.h"
#include "check_wgl.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/assert.h"
#include "../core/err.h"

#define PART_OP_BYTES 96u /* search arrays per op of a key, for the budget */

struct tev {
	uint64_t time;
	uint32_t is_ret;
	uint32_t op;
};

static int tev_cmp(const void *a, const void *b)
{
	const struct tev *x = a;
	const struct tev *y = b;
	if (x->time != y->time)
		return x->time < y->time ? -1 : 1;
	if (x->is_ret != y->is_ret)
		return x->is_ret < y->is_ret ? -1 : 1;
	return x->op < y->op ? -1 : x->op > y->op;
}

/* ---- one key ------------------------------------------------------------------ */

void wgl_part_free(struct wgl_part *p)
{
	free(p->ops);
	free(p->global);
	free(p->zobrist);
	free(p->next);
	free(p->prev);
	free(p->ent);
	free(p->ret_of);
	free(p->rank);
	free(p->twin);
	free(p->bits);
	free(p->key);
	free(p->stack);
	free(p->best);
	check_cache_free(&p->cache);
	if (p->run != NULL)
		check_budget_give(&p->run->budget, p->budget_taken);
	memset(p, 0, sizeof *p);
}

/* Orders idx: ok ops by invocation, then the others, into p->global. */
static void number_ops(struct wgl_part *p, const uint32_t *idx, struct tev *tv)
{
	const struct check_op *hops = p->run->h->ops;
	for (uint32_t i = 0; i < p->n; i++) {
		const struct check_op *op = &hops[idx[i]];
		/* Indeterminate ops sort after all ok ops (whose invocations
		 * are below CHECK_TIME_INF); is_ret marks them. */
		bool info = op->outcome != CHECK_OK;
		tv[i] = (struct tev){ info ? CHECK_TIME_INF : op->invoke_ns, info, idx[i] };
	}
	qsort(tv, p->n, sizeof *tv, tev_cmp);
	p->ok_count = 0;
	while (p->ok_count < p->n && !tv[p->ok_count].is_ret)
		p->ok_count++;
	/* The indeterminate ones by invocation too (for find_twins). */
	for (uint32_t i = p->ok_count; i < p->n; i++)
		tv[i].time = hops[tv[i].op].invoke_ns;
	qsort(tv + p->ok_count, p->n - p->ok_count, sizeof *tv, tev_cmp);
	for (uint32_t i = 0; i < p->n; i++)
		p->global[i] = tv[i].op;
}

/* twin[i]: the previous indeterminate op (by invocation) with the same
 * kind and arguments as i. Returns 0 or KEEL_ENOMEM. */
static int find_twins(struct wgl_part *p)
{
	const struct check_op *hops = p->run->h->ops;
	struct check_map last = { 0 };
	for (uint32_t i = 0; i < p->n; i++)
		p->twin[i] = NO_TWIN;
	for (uint32_t i = p->ok_count; i < p->n; i++) {
		const struct check_op *op = &hops[p->global[i]];
		/* Ids stay far below 2^32 - 16, so the kind fits in expected's place. */
		uint32_t second = op->kind == CHECK_CAS ? op->expected : 0xfffffff0u + op->kind;
		uint32_t *v = check_map_get(&last, (uint64_t)op->value << 32 | second, true);
		if (v == NULL) {
			check_map_free(&last);
			return KEEL_ENOMEM;
		}
		if (*v != 0)
			p->twin[i] = *v - 1;
		*v = i + 1;
	}
	check_map_free(&last);
	return 0;
}

/* The window: the most ok ops (in invocation order) from an unplaced op u
 * to the last op invoked before u completes. */
static uint32_t max_span(const struct wgl_part *p)
{
	const struct check_op *hops = p->run->h->ops;
	uint32_t span = 1;
	for (uint32_t u = 0; u < p->ok_count; u++) {
		uint64_t c = hops[p->global[u]].complete_ns;
		/* The last op invoked by c: invocations are sorted, and u's own
		 * invocation is at most c. */
		uint32_t lo = u, hi = p->ok_count;
		while (hi - lo > 1) {
			uint32_t mid = lo + (hi - lo) / 2;
			if (hops[p->global[mid]].invoke_ns <= c)
				lo = mid;
			else
				hi = mid;
		}
		if (lo - u + 1 > span)
			span = lo - u + 1;
	}
	return span;
}

static void build_entries(struct wgl_part *p, struct tev *tv)
{
	const struct check_op *hops = p->run->h->ops;
	uint32_t t = 0;
	for (uint32_t i = 0; i < p->n; i++) {
		const struct check_op *op = &hops[p->global[i]];
		tv[t++] = (struct tev){ op->invoke_ns, 0, i };
		if (op->outcome == CHECK_OK)
			tv[t++] = (struct tev){ op->complete_ns, 1, i };
	}
	qsort(tv, t, sizeof *tv, tev_cmp);
	p->ent[0] = 0;
	for (uint32_t k = 0; k < t; k++) {
		uint32_t e = k + 1;
		p->ent[e] = tv[k].op | (tv[k].is_ret ? RET_FLAG : 0);
		if (tv[k].is_ret)
			p->ret_of[tv[k].op] = e;
		p->prev[e] = k;
		p->next[k] = e;
	}
	p->next[t] = 0;
	p->prev[0] = t;
	/* Ranks: by completion (indeterminate last), then invocation. */
	for (uint32_t i = 0; i < p->n; i++)
		tv[i] = (struct tev){ hops[p->global[i]].complete_ns, 0, i };
	qsort(tv, p->n, sizeof *tv, tev_cmp);
	for (uint32_t k = 0; k < p->n; k++)
		p->rank[tv[k].op] = k;
}

static void fill_ops(struct wgl_part *p)
{
	const struct check_op *hops = p->run->h->ops;
	for (uint32_t i = 0; i < p->n; i++) {
		const struct check_op *op = &hops[p->global[i]];
		bool ok = i < p->ok_count;
		bool pure = ok && (op->kind == CHECK_GET ||
				   ((op->kind == CHECK_CAS || op->kind == CHECK_DEL) && op->result == 0));
		uint32_t bit = ok ? i : p->ok_words * 64 + (i - p->ok_count);
		p->ops[i] = (struct wop){ op->value, op->expected, op->result, bit, op->kind, ok, pure };
		p->zobrist[i] = check_mix64(0x5851f42d4c957f2dull * (i + 1));
	}
}

int wgl_part_init(struct wgl_part *p, struct wgl_run *run, const uint32_t *idx, uint32_t n)
{
	memset(p, 0, sizeof *p);
	p->run = run;
	p->n = n;
	uint64_t take = (uint64_t)n * PART_OP_BYTES;
	if (!check_budget_take(&run->budget, take))
		goto out_nomem;
	p->budget_taken = take;
	uint32_t entries = 2 * n + 1;
	struct tev *tv = malloc(sizeof *tv * 2 * n);
	p->ops = malloc(sizeof *p->ops * n);
	p->global = malloc(sizeof *p->global * n);
	p->zobrist = malloc(sizeof *p->zobrist * n);
	p->next = malloc(sizeof *p->next * entries);
	p->prev = malloc(sizeof *p->prev * entries);
	p->ent = malloc(sizeof *p->ent * entries);
	p->ret_of = calloc(n, sizeof *p->ret_of);
	p->rank = malloc(sizeof *p->rank * n);
	p->twin = malloc(sizeof *p->twin * n);
	p->stack = malloc(sizeof *p->stack * n);
	p->best = malloc(sizeof *p->best * n);
	if (!tv || !p->ops || !p->global || !p->zobrist || !p->next || !p->prev || !p->ent ||
	    !p->ret_of || !p->rank || !p->twin || !p->stack || !p->best) {
		free(tv);
		goto out_nomem;
	}
	number_ops(p, idx, tv);
	p->ok_words = (p->ok_count + 63) / 64;
	p->info_words = (n - p->ok_count + 63) / 64;
	p->win_words = (max_span(p) + 63) / 64 + 1;
	p->windowed = 1 + p->win_words < p->ok_words;
	uint32_t key_words = p->windowed ? 1 + p->win_words + p->info_words
					 : p->ok_words + p->info_words;
	p->bits = calloc(p->ok_words + p->info_words, 8);
	p->key = calloc(key_words, 8);
	if (p->bits == NULL || p->key == NULL) {
		free(tv);
		goto out_nomem;
	}
	fill_ops(p);
	build_entries(p, tv);
	free(tv);
	if (find_twins(p) != 0)
		goto out_nomem;
	if (check_cache_init(&p->cache, &run->budget, key_words, 4 * n) != 0)
		goto out_nomem;
	return 0;
out_nomem:
	run->why = "memory limit";
	return KEEL_ENOMEM;
}

/* ---- results ------------------------------------------------------------------- */

/* The longest prefix, the value after it, and the ops that had to come
 * next (callable before the earliest unplaced return) but cannot. */
static int fill_illegal(struct wgl_part *p, struct check_result *res, uint32_t key, uint32_t init)
{
	struct check_history *h = p->run->h;
	res->key = key;
	uint32_t all = 0;
	for (uint32_t i = 0; i < h->op_count; i++)
		all += h->ops[i].key == key;
	res->key_ops = malloc(sizeof(uint32_t) * (all + 1));
	res->prefix = malloc(sizeof(uint32_t) * (p->best_count + 1));
	res->stuck = malloc(sizeof(uint32_t) * (p->n + 1));
	bool *placed = calloc(p->n + 1, sizeof(bool));
	if (!res->key_ops || !res->prefix || !res->stuck || !placed) {
		free(placed);
		return KEEL_ENOMEM;
	}
	for (uint32_t i = 0; i < h->op_count; i++)
		if (h->ops[i].key == key)
			res->key_ops[res->key_op_count++] = i;
	uint32_t state = init;
	for (uint32_t i = 0; i < p->best_count; i++) {
		uint32_t op = p->ent[p->best[i]];
		placed[op] = true;
		res->prefix[res->prefix_count++] = p->global[op];
		int rc = wgl_step(p->run, &p->ops[op], state, &state);
		KEEL_ASSERT(rc == 1);
	}
	res->prefix_state = state;
	uint64_t deadline = CHECK_TIME_INF;
	uint32_t first = UINT32_MAX;
	for (uint32_t o = 0; o < p->n; o++) {
		uint64_t c = h->ops[p->global[o]].complete_ns;
		if (!placed[o] && p->ops[o].ok && c < deadline) {
			deadline = c;
			first = o;
		}
	}
	for (uint32_t o = 0; o < p->n && first != UINT32_MAX; o++) {
		uint32_t ns;
		if (placed[o] || h->ops[p->global[o]].invoke_ns > deadline)
			continue;
		if (wgl_step(p->run, &p->ops[o], state, &ns) == 0)
			res->stuck[res->stuck_count++] = p->global[o];
	}
	if (res->stuck_count == 0 && first != UINT32_MAX)
		res->stuck[res->stuck_count++] = p->global[first];
	free(placed);
	return 0;
}

void check_result_free(struct check_result *res)
{
	free(res->key_ops);
	free(res->prefix);
	free(res->stuck);
	memset(res, 0, sizeof *res);
}

/* ---- the whole history ------------------------------------------------------------- */

static bool searched(const struct check_op *op)
{
	if (op->outcome == CHECK_FAIL)
		return false;
	return !(op->kind == CHECK_GET && op->result == CHECK_ANY);
}

/* Groups searched ops by key: order[start[k]..start[k+1]) are key k's;
 * by_size lists the keys, fewest ops first. */
static int group_by_key(const struct check_history *h, uint32_t *order, uint32_t *start,
			struct tev *by_size, uint32_t keys)
{
	for (uint32_t i = 0; i < h->op_count; i++)
		if (searched(&h->ops[i]))
			start[h->ops[i].key + 1]++;
	for (uint32_t k = 0; k < keys; k++)
		start[k + 1] += start[k];
	uint32_t *fill = malloc(sizeof *fill * keys);
	if (fill == NULL)
		return KEEL_ENOMEM;
	memcpy(fill, start, sizeof *fill * keys);
	for (uint32_t i = 0; i < h->op_count; i++)
		if (searched(&h->ops[i]))
			order[fill[h->ops[i].key]++] = i;
	free(fill);
	for (uint32_t k = 0; k < keys; k++)
		by_size[k] = (struct tev){ start[k + 1] - start[k], 0, k };
	qsort(by_size, keys, sizeof *by_size, tev_cmp);
	return 0;
}

/* Fills res for a key proven illegal by check_stale_read(). */
static int fill_stale(const struct check_history *h, struct check_result *res, uint32_t key,
		      uint32_t init, const struct check_stale *st)
{
	res->key = key;
	uint32_t all = 0;
	for (uint32_t i = 0; i < h->op_count; i++)
		all += h->ops[i].key == key;
	res->key_ops = malloc(sizeof(uint32_t) * (all + 1));
	res->prefix = malloc(sizeof(uint32_t));
	res->stuck = malloc(sizeof(uint32_t));
	if (!res->key_ops || !res->prefix || !res->stuck)
		return KEEL_ENOMEM;
	for (uint32_t i = 0; i < h->op_count; i++)
		if (h->ops[i].key == key)
			res->key_ops[res->key_op_count++] = i;
	res->stuck[res->stuck_count++] = st->read;
	res->prefix_state = init;
	res->stale = true;
	res->stale_read = st->read;
	res->stale_overwrite = st->overwrite;
	return 0;
}

static enum check_verdict check_key(struct wgl_run *run, struct check_result *res,
				    const uint32_t *idx, uint32_t n, uint32_t key,
				    uint32_t init, int *rc)
{
	struct check_stale st;
	int found = check_stale_read(run->h, idx, n, init, &st);
	if (found < 0) {
		run->why = "memory limit";
		return CHECK_VERDICT_UNKNOWN;
	}
	if (found) {
		*rc = fill_stale(run->h, res, key, init, &st);
		return CHECK_VERDICT_ILLEGAL;
	}
	struct wgl_part p;
	enum check_verdict v = CHECK_VERDICT_UNKNOWN;
	if (wgl_part_init(&p, run, idx, n) == 0)
		v = wgl_search(&p, init);
	if (v == CHECK_VERDICT_ILLEGAL)
		*rc = fill_illegal(&p, res, key, init);
	wgl_part_free(&p);
	return v;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int check_run(struct check_history *h, enum check_model model,
	      const struct check_limits *limits, struct check_result *res)
{
	memset(res, 0, sizeof *res);
	if (model == CHECK_MODEL_AUTO)
		model = check_model_for(h);
	res->model = model;
	for (uint32_t i = 0; i < h->op_count; i++)
		if (!check_model_allows(model, (enum check_kind)h->ops[i].kind))
			return KEEL_EINVAL;
	uint32_t init = check_initial_state(h, model);
	if (init == CHECK_ANY)
		return KEEL_ENOMEM;
	uint64_t timeout_ms = limits && limits->timeout_ms ? limits->timeout_ms
							  : CHECK_TIMEOUT_MS_DEFAULT;
	struct wgl_run run = {
		.h = h,
		.deadline_ns = now_ns() + timeout_ms * 1000000ull,
		.budget.max = limits && limits->memory_bytes_max ? limits->memory_bytes_max
								 : CHECK_MEM_BYTES_DEFAULT,
		.seen_count = h->vals.count ? h->vals.count : 1, /* id 0 (absent) at least */
	};
	uint32_t keys = h->keys.count ? h->keys.count : 1;
	uint32_t *order = malloc(sizeof *order * (h->op_count + 1));
	uint32_t *start = calloc((size_t)keys + 1, sizeof *start);
	struct tev *by_size = malloc(sizeof *by_size * keys);
	run.seen = calloc(run.seen_count, sizeof *run.seen);
	int rc = KEEL_ENOMEM;
	if (order && start && by_size && run.seen)
		rc = group_by_key(h, order, start, by_size, keys);
	enum check_verdict verdict = CHECK_VERDICT_OK;
	for (uint32_t ki = 0; rc == 0 && ki < keys && verdict != CHECK_VERDICT_ILLEGAL; ki++) {
		uint32_t k = by_size[ki].op;
		uint32_t n = start[k + 1] - start[k];
		if (n == 0)
			continue;
		enum check_verdict v = check_key(&run, res, order + start[k], n, k, init, &rc);
		if (v != CHECK_VERDICT_OK)
			verdict = v;
	}
	check_map_free(&run.append);
	check_map_free(&run.prefix);
	free(run.seen);
	free(by_size);
	free(order);
	free(start);
	res->verdict = verdict;
	res->states_explored = run.states;
	res->memory_bytes = run.budget.peak;
	res->unknown_why = verdict == CHECK_VERDICT_UNKNOWN ? (run.why ? run.why : "memory limit")
							    : NULL;
	if (rc != 0)
		check_result_free(res);
	return rc;
}
