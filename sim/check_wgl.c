/*
 * check_wgl.c: the search over one key. Wing & Gong's backtracking over the
 * call/return entries, with Lowe's memoisation of (linearized set, state).
 *
 * Entries (a call per op, a return per ok op) are sorted by time, calls
 * before returns at equal times, and linked in a list. An op is callable
 * when its call comes before the list's first return. Placing an op (the
 * model accepts it and the configuration is new to the cache) lifts its
 * entries out of the list and pushes a frame; when no callable op can be
 * placed, the last frame is undone. The key is linearizable once every ok
 * op is placed: indeterminate ops (no return) are legal in every state and
 * can go last.
 *
 * Three things keep the search small:
 *  - pure ops (an ok get, a cas or del that returned false: legal only
 *    where they leave the state unchanged) are forced: if one is callable
 *    and legal in configuration C, C has a completion iff C plus it has one
 *    (move it to the front of any completion: it changes no state, and no
 *    unplaced op had to precede it). So a forced op is tried first, and its
 *    siblings never;
 *  - the other callable ops are tried in order of completion time;
 *  - dead_end() rejects a configuration where an unplaced read can no
 *    longer see its value;
 *  - identical indeterminate ops (same kind and arguments) are placed in
 *    order of invocation: any completion that places the later one first
 *    stays valid with the two swapped (the earlier one was callable
 *    whenever the later one was, and neither has a completion time);
 *  - an indeterminate op is never placed where it leaves the state as it
 *    is (a cas that does not swap, a put of the current value): dropping
 *    it from such a linearization keeps it valid.
 * The cache key holds the set of placed ok ops as a window: every ok op
 * before the window is placed, none after it (an op can only be placed
 * before the lowest unplaced ok op completes, which bounds the window), so
 * memory per configuration does not grow with the history's length.
 *
 * Invariants:
 *  1. The list holds exactly the entries of ops not on the stack, in time
 *     order; lift/unlift are exact inverses, undone in LIFO order.
 *  2. bits has ops[o].bit set iff op o is on the stack; hash is the XOR of
 *     zobrist[o] over those ops.
 *  3. Every (set, state) pair in the cache was reached by a legal prefix
 *     and, unless it is on the stack, has no completion.
 *  4. Search memory stays in the run's budget; reaching its limit ends the
 *     run with unknown, never a crash.
 */
#include "check_wgl.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/assert.h"
#include "../core/err.h"

#define TIME_CHECK_STEPS 4096u /* search steps between clock reads */
#define REACH_SCAN_MAX 64u     /* list entries dead_end() looks at */
#define MAP_ENTRY_BYTES 32u    /* budget for one entry of a check_map */

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- the model step, with the run's caches -------------------------------- */

static int append_step(struct wgl_run *run, uint32_t state, uint32_t arg, uint32_t *out)
{
	uint64_t key = (uint64_t)state << 32 | arg;
	uint32_t *v = check_map_get(&run->append, key, false);
	if (v != NULL) {
		*out = *v;
		return 1;
	}
	size_t a_len, b_len;
	check_str_get(&run->h->vals, state, &a_len);
	check_str_get(&run->h->vals, arg, &b_len);
	if (!check_budget_take(&run->budget, a_len + b_len + 16 + MAP_ENTRY_BYTES)) {
		run->why = "memory limit";
		return KEEL_ENOMEM;
	}
	int rc = check_append_value(run->h, state, arg, out);
	if (rc == 0) {
		v = check_map_get(&run->append, key, true);
		if (v == NULL)
			rc = KEEL_ENOMEM;
		else
			*v = *out;
	}
	if (rc != 0) {
		run->why = "memory limit";
		return rc;
	}
	return 1;
}

int wgl_step(struct wgl_run *run, const struct wop *o, uint32_t state, uint32_t *out)
{
	switch (o->kind) {
	case CHECK_GET:
		*out = state;
		return o->result == CHECK_ANY || o->result == state;
	case CHECK_PUT:
		*out = o->value;
		return 1;
	case CHECK_APPEND:
		if (state == CHECK_ABSENT) {
			*out = o->value;
			return 1;
		}
		return append_step(run, state, o->value, out);
	default:
		return check_step_ids(run->h, o->kind, o->value, o->expected, o->result, state, out);
	}
}

/* ---- the entry list --------------------------------------------------------- */

static void unlink_entry(struct wgl_part *p, uint32_t e)
{
	p->next[p->prev[e]] = p->next[e];
	p->prev[p->next[e]] = p->prev[e];
}

static void relink_entry(struct wgl_part *p, uint32_t e)
{
	p->next[p->prev[e]] = e;
	p->prev[p->next[e]] = e;
}

static void lift(struct wgl_part *p, uint32_t call)
{
	uint32_t ret = p->ret_of[p->ent[call]];
	unlink_entry(p, call);
	if (ret != 0)
		unlink_entry(p, ret);
}

static void unlift(struct wgl_part *p, uint32_t call)
{
	uint32_t ret = p->ret_of[p->ent[call]];
	if (ret != 0)
		relink_entry(p, ret);
	relink_entry(p, call);
}

/* ---- cache keys ---------------------------------------------------------------- */

/* The key of the current set: the bits, or [base, window, indeterminate]. */
static const uint64_t *make_key(struct wgl_part *p)
{
	if (!p->windowed)
		return p->bits;
	while (p->base < p->ok_words && p->bits[p->base] == ~0ull)
		p->base++;
	uint64_t *k = p->key;
	k[0] = p->base;
	for (uint32_t w = 0; w < p->win_words; w++)
		k[1 + w] = p->base + w < p->ok_words ? p->bits[p->base + w] : 0;
	if (p->base + p->win_words < p->ok_words)
		KEEL_ASSERT(p->bits[p->base + p->win_words] == 0); /* the window bound */
	memcpy(k + 1 + p->win_words, p->bits + p->ok_words, p->info_words * 8u);
	return k;
}

static void set_bit(struct wgl_part *p, uint32_t b)
{
	p->bits[b >> 6] |= 1ull << (b & 63);
}

static void clear_bit(struct wgl_part *p, uint32_t b)
{
	p->bits[b >> 6] &= ~(1ull << (b & 63));
	if ((b >> 6) < p->base)
		p->base = b >> 6;
}

/* ---- pruning ---------------------------------------------------------------------- */

/* Whether value a is a proper prefix of b (absent counts as ""). */
static bool is_prefix(struct wgl_run *run, uint32_t a, uint32_t b)
{
	if (a == CHECK_ABSENT)
		return true;
	if (b == CHECK_ABSENT)
		return false;
	uint64_t key = (uint64_t)a << 32 | b;
	uint32_t *c = check_map_get(&run->prefix, key, false);
	if (c != NULL)
		return *c == 2;
	size_t la, lb;
	const uint8_t *pa = check_str_get(&run->h->vals, a, &la);
	const uint8_t *pb = check_str_get(&run->h->vals, b, &lb);
	bool yes = la < lb && memcmp(pa, pb, la) == 0;
	if (check_budget_take(&run->budget, MAP_ENTRY_BYTES)) {
		c = check_map_get(&run->prefix, key, true);
		if (c != NULL)
			*c = yes ? 2 : 1;
	}
	return yes;
}

/*
 * A necessary condition for a configuration to have a completion: every
 * unplaced ok read of a value v other than the current one (and every
 * unplaced cas that swapped, for its expected value v) needs an unplaced op
 * that can produce v and may come before it (invoked no later than it
 * completes: its call is before the read's return in the list). Puts and
 * cas produce their value, del produces absent; with appends about, v is
 * also reachable if a put/cas/del may intervene or the current value is a
 * prefix of v. Looks at REACH_SCAN_MAX entries at most (fewer only weakens
 * the check). Returns true when the configuration has no completion.
 */
static bool dead_end(struct wgl_part *p, uint32_t state)
{
	struct wgl_run *run = p->run;
	if (++run->stamp == 0) {
		memset(run->seen, 0, sizeof *run->seen * run->seen_count);
		run->stamp = 1;
	}
	uint32_t stamp = run->stamp;
	bool reset = false, append = false;
	uint32_t scanned = 0;
	for (uint32_t cur = p->next[0]; cur != 0 && scanned < REACH_SCAN_MAX;
	     cur = p->next[cur], scanned++) {
		uint32_t e = p->ent[cur];
		const struct wop *o = &p->ops[e & ~RET_FLAG];
		if (!(e & RET_FLAG)) {
			if (o->kind == CHECK_PUT || o->kind == CHECK_CAS) {
				run->seen[o->value] = stamp;
				reset = true;
			} else if (o->kind == CHECK_DEL) {
				run->seen[CHECK_ABSENT] = stamp;
				reset = true;
			} else if (o->kind == CHECK_APPEND) {
				append = true;
			}
			continue;
		}
		uint32_t need;
		if (o->kind == CHECK_GET && o->result != CHECK_ANY)
			need = o->result;
		else if (o->kind == CHECK_CAS && o->result == 1)
			need = o->expected;
		else
			continue;
		if (need == state || run->seen[need] == stamp)
			continue;
		if (append && (reset || is_prefix(run, state, need)))
			continue;
		return true;
	}
	return false;
}

/* A callable pure op legal in state: its call entry, or 0. */
static uint32_t find_pure(struct wgl_part *p, uint32_t state)
{
	for (uint32_t cur = p->next[0]; cur != 0; cur = p->next[cur]) {
		uint32_t e = p->ent[cur];
		if (e & RET_FLAG)
			return 0;
		const struct wop *o = &p->ops[e];
		uint32_t ns;
		if (o->pure && check_step_ids(p->run->h, o->kind, o->value, o->expected,
					      o->result, state, &ns) == 1)
			return cur;
	}
	return 0;
}

/* Whether op e's identical predecessor (if any) is placed already. */
static bool twin_placed(const struct wgl_part *p, uint32_t e)
{
	uint32_t t = p->twin[e];
	if (t == NO_TWIN)
		return true;
	uint32_t b = p->ops[t].bit;
	return (p->bits[b >> 6] >> (b & 63)) & 1;
}

/* The callable non-pure op with the smallest rank above after (UINT32_MAX:
 * none tried yet): its call entry, or 0. */
static uint32_t next_candidate(const struct wgl_part *p, uint32_t after)
{
	uint32_t best = 0;
	uint32_t best_rank = UINT32_MAX;
	for (uint32_t cur = p->next[0]; cur != 0; cur = p->next[cur]) {
		uint32_t e = p->ent[cur];
		if (e & RET_FLAG)
			break;
		uint32_t k = p->rank[e];
		if (k + 1 > after + 1 && k < best_rank && !p->ops[e].pure && twin_placed(p, e)) {
			best_rank = k;
			best = cur;
		}
	}
	return best;
}

/* Copies the stack into best, from the low-water mark up. */
static void save_best(struct wgl_part *p, uint32_t sp)
{
	for (uint32_t i = p->best_lwm; i < sp; i++)
		p->best[i] = p->stack[i].entry & ~FRAME_FORCED;
	p->best_count = sp;
	p->best_lwm = sp;
}

/* ---- the search -------------------------------------------------------------------- */

enum check_verdict wgl_search(struct wgl_part *p, uint32_t state)
{
	struct wgl_run *run = p->run;
	uint64_t hash = 0;
	uint32_t sp = 0;
	uint32_t ok_done = 0;
	uint32_t steps = 0;
	bool best_dirty = false;
	uint32_t after = UINT32_MAX; /* rank of the last candidate tried here */
	bool fresh_node = true;
	for (;;) {
		if (ok_done == p->ok_count)
			return CHECK_VERDICT_OK;
		if (++steps == TIME_CHECK_STEPS) {
			steps = 0;
			if (now_ns() > run->deadline_ns) {
				run->why = "timeout";
				return CHECK_VERDICT_UNKNOWN;
			}
		}
		uint32_t cur = 0;
		if (fresh_node) {
			fresh_node = false;
			if (dead_end(p, state))
				goto backtrack;
			cur = find_pure(p, state);
		}
		if (cur == 0) {
			cur = next_candidate(p, after);
			if (cur == 0)
				goto backtrack;
			after = p->rank[p->ent[cur]];
		}
		uint32_t e = p->ent[cur];
		const struct wop *o = &p->ops[e];
		uint32_t ns;
		int legal = wgl_step(run, o, state, &ns);
		if (legal < 0)
			return CHECK_VERDICT_UNKNOWN;
		if (!legal)
			continue;
		if (!o->ok && ns == state)
			continue; /* an indeterminate no-op: see above */
		set_bit(p, o->bit);
		uint64_t nh = hash ^ p->zobrist[e];
		int fresh = check_cache_insert(&p->cache, nh ^ check_mix64(ns + 1ull), ns, make_key(p));
		if (fresh < 0) {
			run->why = "memory limit";
			return CHECK_VERDICT_UNKNOWN;
		}
		if (fresh) {
			run->states++;
			p->stack[sp++] = (struct frame){ cur | (o->pure ? FRAME_FORCED : 0), state };
			if (sp > p->best_count) {
				p->best_count = sp;
				best_dirty = true;
			}
			state = ns;
			hash = nh;
			ok_done += o->ok;
			lift(p, cur);
			fresh_node = true;
			after = UINT32_MAX;
			continue;
		}
		clear_bit(p, o->bit);
		if (!o->pure)
			continue;
		/* A forced op leads to a failed configuration: so does this one. */
backtrack:
		if (best_dirty) {
			save_best(p, sp);
			best_dirty = false;
		}
		struct frame f;
		do {
			if (sp == 0)
				return CHECK_VERDICT_ILLEGAL;
			f = p->stack[--sp];
			uint32_t entry = f.entry & ~FRAME_FORCED;
			uint32_t op = p->ent[entry];
			state = f.state;
			hash ^= p->zobrist[op];
			clear_bit(p, p->ops[op].bit);
			ok_done -= p->ops[op].ok;
			unlift(p, entry);
			after = p->rank[op];
		} while (f.entry & FRAME_FORCED);
		if (sp < p->best_lwm)
			p->best_lwm = sp;
	}
}
