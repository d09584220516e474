/*
 * check_wgl.c: the search. Wing & Gong's backtracking over the history's
 * call/return entries, with Lowe's memoisation of (linearized set, model
 * state), run separately for each key (P-compositionality: a history of
 * independent keys is linearizable iff each key's sub-history is).
 *
 * Per key: entries (one call per op, one return per ok op) sorted by time,
 * calls before returns at equal times, linked in a list. The search walks
 * the list from its head: a call whose op the model accepts, and whose
 * (set, state) pair is new, is "lifted" (its call and return leave the
 * list) and pushed; reaching a return means some op still in the list had
 * to be linearized before it, so the last choice is undone. The key is
 * linearizable once every ok op is placed: indeterminate ops (no return)
 * are legal in any state and can go last.
 *
 * Invariants:
 *  1. The list holds exactly the entries of ops not on the stack, in time
 *     order; lift/unlift are exact inverses, undone in LIFO order.
 *  2. bits has bit o set iff op o is on the stack; hash is the XOR of
 *     zobrist[o] over those ops.
 *  3. Every (bits, state) pair in the cache was reached by a legal prefix;
 *     a pair is never expanded twice.
 *  4. Search memory (cache, bit sets, appended values) stays under the
 *     limit; reaching it ends the run with unknown, never a crash.
 */
#include "check_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/assert.h"
#include "../core/err.h"

#define CACHE_SLOTS_MIN 1024u
#define TIME_CHECK_STEPS 4096u /* search steps between clock reads */
#define RET_FLAG 0x80000000u

struct wop {
	uint32_t value;
	uint32_t expected;
	uint32_t result;
	uint8_t kind;
	uint8_t ok;
	uint8_t pure; /* ok and never changes the state: see search() */
};

struct slot {
	uint64_t hash;
	uint32_t state;
	uint32_t set; /* index in the bit-set arena + 1; 0: empty */
};

struct frame {
	uint32_t entry; /* | FORCED when no alternative needs trying */
	uint32_t state;
};

#define FORCED 0x80000000u

struct run {
	struct check_history *h;
	uint64_t deadline_ns;
	uint64_t mem_max;
	uint64_t mem_base;     /* bytes of h->vals at the start */
	uint64_t mem_peak;
	uint64_t states;
	struct check_map append; /* (state << 32 | arg) -> appended value id */
	const char *why;       /* set when a limit was reached */
	/* the partition being searched */
	uint32_t n;            /* ops */
	uint32_t words;        /* 64-bit words per bit set */
	struct wop *ops;
	uint32_t *global;      /* local op -> index in h->ops */
	uint64_t *zobrist;
	uint32_t *next, *prev; /* the entry list; entry 0 is the head */
	uint32_t *ent;         /* entry -> op, | RET_FLAG for a return */
	uint32_t *ret_of;      /* op -> its return entry, 0 for indeterminate */
	uint32_t *rank;        /* op -> position in order of completion time */
	uint64_t *bits;
	struct frame *stack;
	uint32_t *best;        /* longest prefix found (entries) */
	uint32_t best_count;
	struct slot *slots;
	uint32_t slot_count;   /* power of two */
	uint32_t set_count;    /* sets stored in the arena */
	uint64_t *arena;
	uint64_t arena_sets;   /* capacity in sets */
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t mem_used(const struct run *r)
{
	uint64_t vals = check_strtab_bytes(&r->h->vals);
	return (uint64_t)r->slot_count * sizeof(struct slot) +
	       r->arena_sets * r->words * 8 + check_map_bytes(&r->append) +
	       (vals > r->mem_base ? vals - r->mem_base : 0) +
	       (uint64_t)r->n * (sizeof(struct wop) + 40 + 8 * 2);
}

/* Returns whether the next allocation of extra bytes stays in the limit. */
static bool mem_allow(struct run *r, uint64_t extra)
{
	uint64_t used = mem_used(r) + extra;
	if (used > r->mem_peak)
		r->mem_peak = used;
	if (used <= r->mem_max)
		return true;
	r->why = "memory limit";
	return false;
}

/* ---- cache of (bit set, state) -------------------------------------------- */

static int cache_grow(struct run *r)
{
	uint32_t n = r->slot_count * 2;
	if (n == 0 || !mem_allow(r, (uint64_t)n * sizeof(struct slot)))
		return KEEL_ENOMEM;
	struct slot *s = calloc(n, sizeof *s);
	if (s == NULL) {
		r->why = "memory limit";
		return KEEL_ENOMEM;
	}
	for (uint32_t i = 0; i < r->slot_count; i++) {
		if (r->slots[i].set == 0)
			continue;
		uint32_t j = (uint32_t)r->slots[i].hash & (n - 1);
		while (s[j].set != 0)
			j = (j + 1) & (n - 1);
		s[j] = r->slots[i];
	}
	free(r->slots);
	r->slots = s;
	r->slot_count = n;
	return 0;
}

static int arena_grow(struct run *r)
{
	uint64_t sets = r->arena_sets ? r->arena_sets * 2 : 1024;
	uint64_t bytes = sets * r->words * 8;
	if (!mem_allow(r, bytes - r->arena_sets * r->words * 8) || sets >= UINT32_MAX)
		return KEEL_ENOMEM;
	uint64_t *a = realloc(r->arena, bytes);
	if (a == NULL) {
		r->why = "memory limit";
		return KEEL_ENOMEM;
	}
	r->arena = a;
	r->arena_sets = sets;
	return 0;
}

/* Inserts (bits, state) under hash: 1 when new, 0 when seen, or an error. */
static int cache_insert(struct run *r, uint64_t hash, uint32_t state)
{
	if ((uint64_t)(r->set_count + 1) * 2 > r->slot_count) {
		int rc = cache_grow(r);
		if (rc != 0)
			return rc;
	}
	uint32_t mask = r->slot_count - 1;
	uint32_t words = r->words;
	uint32_t i = (uint32_t)hash & mask;
	for (; r->slots[i].set != 0; i = (i + 1) & mask) {
		const struct slot *s = &r->slots[i];
		if (s->hash == hash && s->state == state &&
		    memcmp(r->arena + (uint64_t)(s->set - 1) * words, r->bits, words * 8u) == 0)
			return 0;
	}
	if (r->set_count == r->arena_sets) {
		int rc = arena_grow(r);
		if (rc != 0)
			return rc;
	}
	memcpy(r->arena + (uint64_t)r->set_count * words, r->bits, words * 8u);
	r->slots[i] = (struct slot){ .hash = hash, .state = state, .set = ++r->set_count };
	r->states++;
	return 1;
}

/* ---- the entry list ---------------------------------------------------------- */

static void unlink_entry(struct run *r, uint32_t e)
{
	r->next[r->prev[e]] = r->next[e];
	r->prev[r->next[e]] = r->prev[e];
}

static void relink_entry(struct run *r, uint32_t e)
{
	r->next[r->prev[e]] = e;
	r->prev[r->next[e]] = e;
}

static void lift(struct run *r, uint32_t call)
{
	uint32_t ret = r->ret_of[r->ent[call]];
	unlink_entry(r, call);
	if (ret != 0)
		unlink_entry(r, ret);
}

static void unlift(struct run *r, uint32_t call)
{
	uint32_t ret = r->ret_of[r->ent[call]];
	if (ret != 0)
		relink_entry(r, ret);
	relink_entry(r, call);
}

/* ---- the search ------------------------------------------------------------------ */

static inline int step(struct run *r, const struct wop *o, uint32_t state, uint32_t *out)
{
	switch (o->kind) {
	case CHECK_GET:
		*out = state;
		return o->result == CHECK_ANY || o->result == state;
	case CHECK_PUT:
		*out = o->value;
		return 1;
	case CHECK_APPEND: {
		if (state == CHECK_ABSENT) {
			*out = o->value;
			return 1;
		}
		uint64_t key = (uint64_t)state << 32 | o->value;
		uint32_t *v = check_map_get(&r->append, key, false);
		if (v != NULL) {
			*out = *v;
			return 1;
		}
		if (!mem_allow(r, 1024))
			return KEEL_ENOMEM;
		int rc = check_append_value(r->h, state, o->value, out);
		if (rc != 0) {
			r->why = "memory limit";
			return rc;
		}
		v = check_map_get(&r->append, key, true);
		if (v == NULL) {
			r->why = "memory limit";
			return KEEL_ENOMEM;
		}
		*v = *out;
		return 1;
	}
	default:
		return check_step_ids(r->h, o->kind, o->value, o->expected, o->result, state, out);
	}
}

static void save_best(struct run *r, uint32_t depth)
{
	for (uint32_t i = 0; i < depth; i++)
		r->best[i] = r->stack[i].entry & ~FORCED;
	r->best_count = depth;
}

/*
 * Returns the verdict for the partition (limits: UNKNOWN with r->why).
 *
 * Pure ops (a read, a cas that failed, a del of an absent key: legal only
 * where they leave the state unchanged) are forced: if one is callable and
 * legal in configuration C, then C has a completion iff C plus that op has
 * one (move the op to the front of any completion: it changes no state, and
 * nothing unplaced had to precede it). So once a forced op is placed, its
 * siblings need no trying, and a forced op whose configuration is already
 * in the cache (explored, failed) fails C at once.
 */
/* Looks for a callable pure op legal in state (see search()): its entry, or
 * 0 when there is none. */
static uint32_t find_pure(struct run *r, uint32_t state)
{
	for (uint32_t cur = r->next[0]; cur != 0; cur = r->next[cur]) {
		uint32_t e = r->ent[cur];
		if (e & RET_FLAG)
			return 0;
		const struct wop *o = &r->ops[e];
		if (!o->pure)
			continue;
		uint32_t ns;
		if (check_step_ids(r->h, o->kind, o->value, o->expected, o->result, state, &ns) == 1)
			return cur;
	}
	return 0;
}

/* The callable op (its call entry) with the smallest rank above after, or 0.
 * Callable: its call comes before the list's first return. Pure ops are
 * skipped (the caller tried the legal ones already). */
static uint32_t next_candidate(const struct run *r, uint32_t after)
{
	uint32_t best = 0;
	uint32_t best_rank = UINT32_MAX;
	for (uint32_t cur = r->next[0]; cur != 0; cur = r->next[cur]) {
		uint32_t e = r->ent[cur];
		if (e & RET_FLAG)
			break;
		uint32_t k = r->rank[e];
		if (k + 1 > after + 1 && k < best_rank && !r->ops[e].pure) {
			best_rank = k;
			best = cur;
		}
	}
	return best;
}

static enum check_verdict search(struct run *r, uint32_t state, uint32_t ok_total)
{
	uint64_t hash = 0;
	uint32_t sp = 0;
	uint32_t ok_done = 0;
	uint32_t steps = 0;
	bool best_dirty = false;
	uint32_t after = UINT32_MAX; /* rank of the last candidate tried here */
	bool fresh_node = true;
	for (;;) {
		if (ok_done == ok_total)
			return CHECK_VERDICT_OK;
		if (++steps == TIME_CHECK_STEPS) {
			steps = 0;
			if (now_ns() > r->deadline_ns) {
				r->why = "timeout";
				return CHECK_VERDICT_UNKNOWN;
			}
		}
		uint32_t cur = 0;
		if (fresh_node) {
			/* A forced op goes first: then no sibling needs trying. */
			fresh_node = false;
			cur = find_pure(r, state);
		}
		if (cur == 0) {
			cur = next_candidate(r, after);
			if (cur != 0)
				after = r->rank[r->ent[cur]];
		}
		if (cur != 0) {
			uint32_t e = r->ent[cur];
			const struct wop *o = &r->ops[e];
			uint32_t ns;
			int legal = step(r, o, state, &ns);
			if (legal < 0)
				return CHECK_VERDICT_UNKNOWN;
			if (!legal)
				continue;
			uint64_t bit = 1ull << (e & 63);
			uint64_t nh = hash ^ r->zobrist[e];
			r->bits[e >> 6] |= bit;
			int fresh = cache_insert(r, nh ^ check_mix64(ns + 1), ns);
			if (fresh < 0)
				return CHECK_VERDICT_UNKNOWN;
			if (fresh) {
				r->stack[sp++] = (struct frame){ cur | (o->pure ? FORCED : 0), state };
				if (sp > r->best_count) {
					r->best_count = sp;
					best_dirty = true;
				}
				state = ns;
				hash = nh;
				ok_done += o->ok;
				lift(r, cur);
				fresh_node = true;
				after = UINT32_MAX;
				continue;
			}
			r->bits[e >> 6] &= ~bit;
			if (!o->pure)
				continue;
			/* A forced op leads to a failed configuration: this one fails. */
		}
		if (best_dirty) {
			save_best(r, sp);
			best_dirty = false;
		}
		struct frame f;
		do {
			if (sp == 0)
				return CHECK_VERDICT_ILLEGAL;
			f = r->stack[--sp];
			uint32_t entry = f.entry & ~FORCED;
			uint32_t op = r->ent[entry];
			state = f.state;
			hash ^= r->zobrist[op];
			r->bits[op >> 6] &= ~(1ull << (op & 63));
			ok_done -= r->ops[op].ok;
			unlift(r, entry);
			after = r->rank[op];
		} while (f.entry & FORCED);
	}
}

/* ---- partitions ---------------------------------------------------------------------- */

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

static void part_free(struct run *r)
{
	free(r->ops);
	free(r->global);
	free(r->zobrist);
	free(r->next);
	free(r->prev);
	free(r->ent);
	free(r->ret_of);
	free(r->rank);
	free(r->bits);
	free(r->stack);
	free(r->best);
	free(r->slots);
	free(r->arena);
	r->ops = NULL;
	r->global = NULL;
	r->zobrist = NULL;
	r->next = r->prev = r->ent = r->ret_of = r->rank = NULL;
	r->bits = NULL;
	r->stack = NULL;
	r->best = NULL;
	r->slots = NULL;
	r->arena = NULL;
	r->slot_count = r->set_count = 0;
	r->arena_sets = 0;
	r->best_count = 0;
	r->n = 0;
}

/* Sets up the search for ops idx[0..n) of one key. */
static int part_init(struct run *r, const uint32_t *idx, uint32_t n, uint32_t *ok_total)
{
	const struct check_op *hops = r->h->ops;
	r->n = n;
	r->words = (n + 63) / 64;
	uint32_t entries = 2 * n + 1;
	r->ops = malloc(sizeof *r->ops * n);
	r->global = malloc(sizeof *r->global * n);
	r->zobrist = malloc(sizeof *r->zobrist * n);
	r->next = malloc(sizeof *r->next * entries);
	r->prev = malloc(sizeof *r->prev * entries);
	r->ent = malloc(sizeof *r->ent * entries);
	r->ret_of = calloc(n, sizeof *r->ret_of);
	r->rank = malloc(sizeof *r->rank * n);
	r->bits = calloc(r->words, 8);
	r->stack = malloc(sizeof *r->stack * n);
	r->best = malloc(sizeof *r->best * n);
	r->slot_count = CACHE_SLOTS_MIN;
	r->slots = calloc(r->slot_count, sizeof *r->slots);
	struct tev *tv = malloc(sizeof *tv * 2 * n);
	if (!r->ops || !r->global || !r->zobrist || !r->next || !r->prev || !r->ent ||
	    !r->ret_of || !r->rank || !r->bits || !r->stack || !r->best || !r->slots || !tv) {
		free(tv);
		r->why = "memory limit";
		return KEEL_ENOMEM;
	}
	uint32_t t = 0;
	*ok_total = 0;
	for (uint32_t i = 0; i < n; i++) {
		const struct check_op *op = &hops[idx[i]];
		bool ok = op->outcome == CHECK_OK;
		bool pure = ok && (op->kind == CHECK_GET ||
				   ((op->kind == CHECK_CAS || op->kind == CHECK_DEL) && op->result == 0));
		r->ops[i] = (struct wop){ op->value, op->expected, op->result, op->kind, ok, pure };
		r->global[i] = idx[i];
		r->zobrist[i] = check_mix64(0x5851f42d4c957f2dull * (i + 1));
		*ok_total += ok;
		tv[t++] = (struct tev){ op->invoke_ns, 0, i };
		if (ok)
			tv[t++] = (struct tev){ op->complete_ns, 1, i };
	}
	qsort(tv, t, sizeof *tv, tev_cmp);
	r->ent[0] = 0;
	for (uint32_t k = 0; k < t; k++) {
		uint32_t e = k + 1;
		r->ent[e] = tv[k].op | (tv[k].is_ret ? RET_FLAG : 0);
		if (tv[k].is_ret)
			r->ret_of[tv[k].op] = e;
		r->prev[e] = k;
		r->next[k] = e;
	}
	r->next[t] = 0;
	r->prev[0] = t;
	/* Ranks: by completion (indeterminate last), then invocation. */
	for (uint32_t i = 0; i < n; i++) {
		const struct check_op *op = &hops[idx[i]];
		tv[i] = (struct tev){ op->complete_ns, 0, i };
	}
	qsort(tv, n, sizeof *tv, tev_cmp);
	for (uint32_t k = 0; k < n; k++)
		r->rank[tv[k].op] = k;
	free(tv);
	return 0;
}

/* ---- results ------------------------------------------------------------------------ */

static int fill_illegal(struct run *r, struct check_result *res, uint32_t key,
			uint32_t init, enum check_model model)
{
	struct check_history *h = r->h;
	res->key = key;
	uint32_t all = 0;
	for (uint32_t i = 0; i < h->op_count; i++)
		all += h->ops[i].key == key;
	res->key_ops = malloc(sizeof(uint32_t) * (all + 1));
	res->prefix = malloc(sizeof(uint32_t) * (r->best_count + 1));
	res->stuck = malloc(sizeof(uint32_t) * (r->n + 1));
	bool *placed = calloc(r->n + 1, sizeof(bool));
	if (!res->key_ops || !res->prefix || !res->stuck || !placed) {
		free(placed);
		return KEEL_ENOMEM;
	}
	for (uint32_t i = 0; i < h->op_count; i++)
		if (h->ops[i].key == key)
			res->key_ops[res->key_op_count++] = i;
	uint32_t state = init;
	for (uint32_t i = 0; i < r->best_count; i++) {
		uint32_t op = r->ent[r->best[i]];
		placed[op] = true;
		res->prefix[res->prefix_count++] = r->global[op];
		int rc = step(r, &r->ops[op], state, &state);
		KEEL_ASSERT(rc == 1);
	}
	res->prefix_state = state;
	/* The earliest return left decides which ops had to come next. */
	uint64_t deadline = CHECK_TIME_INF;
	uint32_t first = UINT32_MAX;
	for (uint32_t o = 0; o < r->n; o++) {
		uint64_t c = h->ops[r->global[o]].complete_ns;
		if (!placed[o] && r->ops[o].ok && c < deadline) {
			deadline = c;
			first = o;
		}
	}
	for (uint32_t o = 0; o < r->n && first != UINT32_MAX; o++) {
		uint32_t ns;
		if (placed[o] || h->ops[r->global[o]].invoke_ns > deadline)
			continue;
		if (step(r, &r->ops[o], state, &ns) == 0)
			res->stuck[res->stuck_count++] = r->global[o];
	}
	if (res->stuck_count == 0 && first != UINT32_MAX)
		res->stuck[res->stuck_count++] = r->global[first];
	(void)model;
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

/* The ops the search needs: failed ops and reads whose result is unknown
 * constrain nothing. */
static bool searched(const struct check_op *op)
{
	if (op->outcome == CHECK_FAIL)
		return false;
	return !(op->kind == CHECK_GET && op->result == CHECK_ANY);
}

/* Groups searched ops by key: order[start[k]..start[k+1]) are key k's. */
static int group_by_key(const struct check_history *h, uint32_t **order_out,
			uint32_t **start_out)
{
	uint32_t keys = h->keys.count ? h->keys.count : 1;
	uint32_t *start = calloc((size_t)keys + 1, sizeof *start);
	uint32_t *order = malloc(sizeof *order * (h->op_count + 1));
	if (start == NULL || order == NULL) {
		free(start);
		free(order);
		return KEEL_ENOMEM;
	}
	for (uint32_t i = 0; i < h->op_count; i++)
		if (searched(&h->ops[i]))
			start[h->ops[i].key + 1]++;
	for (uint32_t k = 0; k < keys; k++)
		start[k + 1] += start[k];
	uint32_t *fill = malloc(sizeof *fill * keys);
	if (fill == NULL) {
		free(start);
		free(order);
		return KEEL_ENOMEM;
	}
	memcpy(fill, start, sizeof *fill * keys);
	for (uint32_t i = 0; i < h->op_count; i++)
		if (searched(&h->ops[i]))
			order[fill[h->ops[i].key]++] = i;
	free(fill);
	*order_out = order;
	*start_out = start;
	return 0;
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
	uint64_t timeout_ms = limits && limits->timeout_ms ? limits->timeout_ms
							  : CHECK_TIMEOUT_MS_DEFAULT;
	struct run r = {
		.h = h,
		.deadline_ns = now_ns() + timeout_ms * 1000000ull,
		.mem_max = limits && limits->memory_bytes_max ? limits->memory_bytes_max
							      : CHECK_MEM_BYTES_DEFAULT,
	};
	uint32_t init = check_initial_state(h, model);
	if (init == CHECK_ANY)
		return KEEL_ENOMEM;
	r.mem_base = check_strtab_bytes(&h->vals);
	uint32_t *order, *start;
	int rc = group_by_key(h, &order, &start);
	if (rc != 0)
		return rc;
	enum check_verdict verdict = CHECK_VERDICT_OK;
	uint32_t keys = h->keys.count ? h->keys.count : 1;
	/* Small keys first: an illegal one ends the run before a hard one. */
	struct tev *by_size = malloc(sizeof *by_size * keys);
	if (by_size == NULL) {
		free(order);
		free(start);
		return KEEL_ENOMEM;
	}
	for (uint32_t k = 0; k < keys; k++)
		by_size[k] = (struct tev){ start[k + 1] - start[k], 0, k };
	qsort(by_size, keys, sizeof *by_size, tev_cmp);
	for (uint32_t ki = 0; ki < keys && verdict != CHECK_VERDICT_ILLEGAL; ki++) {
		uint32_t k = by_size[ki].op;
		uint32_t n = start[k + 1] - start[k];
		if (n == 0)
			continue;
		uint32_t ok_total = 0;
		enum check_verdict v = CHECK_VERDICT_UNKNOWN;
		if (mem_allow(&r, (uint64_t)n * 64) && part_init(&r, order + start[k], n, &ok_total) == 0)
			v = search(&r, init, ok_total);
#ifdef CHECK_TRACE
		fprintf(stderr, "key %u n=%u ok=%u verdict=%d states=%llu best=%u\n", k, n, ok_total, v, (unsigned long long)r.states, r.best_count);
#endif
		if (v == CHECK_VERDICT_ILLEGAL) {
			verdict = v;
			rc = fill_illegal(&r, res, k, init, model);
		} else if (v == CHECK_VERDICT_UNKNOWN) {
			verdict = v;
			if (r.why == NULL)
				r.why = "memory limit";
		}
		part_free(&r);
	}
	check_map_free(&r.append);
	free(by_size);
	free(order);
	free(start);
	res->verdict = verdict;
	res->states_explored = r.states;
	res->memory_bytes = r.mem_peak;
	res->unknown_why = verdict == CHECK_VERDICT_UNKNOWN ? r.why : NULL;
	if (rc != 0)
		check_result_free(res);
	return rc;
}
