/*
 * check_stale.c: a fast proof of illegality that needs no search — a read
 * that cannot see its value because every op that could produce the value
 * was overwritten, strictly in real time, before the read began.
 *
 * For an op r that needs the value v when it takes effect (an ok get of v,
 * an ok cas from v that swapped, an ok del that found nothing: v absent),
 * the producers of v are the ops that can set the value to v (put v, cas
 * to v, del for absent; ok or indeterminate) and the initial state if it is
 * v. If for every producer w there is an ok op x that certainly sets a
 * value other than v (an ok put, a cas that swapped, a del that found the
 * key) with complete(w) < invoke(x) and complete(x) < invoke(r), then r is
 * never legal: take the last producer placed before r in any order; its x
 * comes after it and before r, and nothing after x produces v again.
 * With appends, an append of a is a producer of every v that ends with a,
 * and an ok append certainly leaves a value other than v when v does not
 * end with a; such keys take a slower scan (quadratic: only keys of up to
 * STALE_APPEND_OPS_MAX ops, and at most STALE_STEPS_MAX steps).
 *
 * Invariants:
 *  1. Only sufficient: returning false proves nothing; the search decides.
 *  2. Work is bounded: a value with more than STALE_PRODUCERS_MAX producers
 *     is not examined, and a key with appends stops after STALE_STEPS_MAX
 *     steps of its scan.
 */
#include "check_int.h"
#include "check_stale.h"

#include <stdlib.h>
#include <string.h>

#define STALE_PRODUCERS_MAX 64u
#define STALE_STEPS_MAX (1u << 22)
#define STALE_APPEND_OPS_MAX 2048u /* larger keys with appends are not examined */
#define TIME_BEFORE_ALL UINT64_MAX /* complete time of the initial state */

struct changer {
	uint64_t invoke;
	uint64_t complete;
	uint32_t value;
	uint32_t op;
};

/* Suffix minima over changers sorted by invocation: the earliest completion
 * at or after i, and the earliest with a different value. */
struct suffix {
	uint64_t c1, c2;
	uint32_t v1;
	uint32_t op1, op2;
};

static int changer_cmp(const void *a, const void *b)
{
	const struct changer *x = a;
	const struct changer *y = b;
	if (x->invoke != y->invoke)
		return x->invoke < y->invoke ? -1 : 1;
	return x->op < y->op ? -1 : x->op > y->op;
}

/* The value an ok op certainly leaves, or false when it may leave none. */
static bool certain_change(const struct check_op *op, uint32_t *value)
{
	if (op->outcome != CHECK_OK)
		return false;
	if (op->kind == CHECK_PUT || (op->kind == CHECK_CAS && op->result == 1)) {
		*value = op->value;
		return true;
	}
	if (op->kind == CHECK_DEL && op->result == 1) {
		*value = CHECK_ABSENT;
		return true;
	}
	return false;
}

/* Whether op can set the value to v. */
static bool produces(const struct check_op *op, uint32_t v)
{
	if (op->kind == CHECK_PUT || op->kind == CHECK_CAS)
		return op->value == v && !(op->kind == CHECK_CAS && op->result == 0);
	if (op->kind == CHECK_DEL)
		return v == CHECK_ABSENT && op->result != 0;
	return false;
}

/* Whether value v ends with the bytes of a (absent ends with nothing). */
static bool ends_with(const struct check_history *h, uint32_t v, uint32_t a)
{
	if (v == CHECK_ABSENT)
		return false;
	size_t lv, la;
	const uint8_t *pv = check_str_get(&h->vals, v, &lv);
	const uint8_t *pa = check_str_get(&h->vals, a, &la);
	return la <= lv && memcmp(pv + lv - la, pa, la) == 0;
}

/* produces() and certain_change() for keys with appends. */
static bool produces_app(const struct check_history *h, const struct check_op *op, uint32_t v)
{
	if (op->kind == CHECK_APPEND)
		return ends_with(h, v, op->value);
	return produces(op, v);
}

static bool changes_away_app(const struct check_history *h, const struct check_op *op, uint32_t v)
{
	uint32_t u;
	if (op->outcome == CHECK_OK && op->kind == CHECK_APPEND)
		return !ends_with(h, v, op->value);
	return certain_change(op, &u) && u != v;
}

/* stale() for keys with appends: changers are all ops, scanned. */
static bool stale_app(const struct check_history *h, const struct changer *ch, uint32_t count,
		      uint32_t init, uint32_t r, uint32_t v, uint32_t *steps, uint32_t *overwrite)
{
	uint64_t deadline = h->ops[r].invoke_ns;
	uint32_t producers = 0;
	*overwrite = UINT32_MAX;
	uint64_t last_w = 0;
	for (uint32_t i = 0; i <= count; i++) {
		/* i == 0 stands for the initial state, done first. */
		if (++*steps > STALE_STEPS_MAX)
			return false;
		uint32_t wi = i == 0 ? count : i - 1;
		uint64_t after;
		if (wi == count) {
			if (init != v)
				continue;
			after = TIME_BEFORE_ALL;
		} else {
			const struct check_op *w = &h->ops[ch[wi].op];
			if (!produces_app(h, w, v))
				continue;
			if (w->complete_ns == CHECK_TIME_INF)
				return false;
			after = w->complete_ns;
		}
		if (++producers > STALE_PRODUCERS_MAX)
			return false;
		/* Candidates are invoked after `after` and before the deadline:
		 * ch is sorted by invocation. */
		uint32_t j = 0;
		if (after != TIME_BEFORE_ALL) {
			uint32_t hi = count;
			while (j < hi) {
				uint32_t mid = j + (hi - j) / 2;
				if (ch[mid].invoke > after)
					hi = mid;
				else
					j = mid + 1;
			}
		}
		uint32_t x = UINT32_MAX;
		for (; j < count && ch[j].invoke < deadline && x == UINT32_MAX; j++) {
			if (++*steps > STALE_STEPS_MAX)
				return false;
			const struct check_op *o = &h->ops[ch[j].op];
			if (o->complete_ns < deadline && changes_away_app(h, o, v))
				x = ch[j].op;
		}
		if (x == UINT32_MAX)
			return false;
		if (after == TIME_BEFORE_ALL || after >= last_w) {
			last_w = after == TIME_BEFORE_ALL ? 0 : after;
			*overwrite = x;
		}
	}
	return true;
}

/* The value op needs to see, or false. */
static bool needs(const struct check_op *op, uint32_t *v)
{
	if (op->outcome != CHECK_OK)
		return false;
	if (op->kind == CHECK_GET && op->result != CHECK_ANY) {
		*v = op->result;
		return true;
	}
	if (op->kind == CHECK_CAS && op->result == 1) {
		*v = op->expected;
		return true;
	}
	if (op->kind == CHECK_DEL && op->result == 0) {
		*v = CHECK_ABSENT;
		return true;
	}
	return false;
}

/* The earliest-completing certain change to a value other than v invoked
 * strictly after time t: its index in ops, or UINT32_MAX; *complete gets
 * its completion. */
static uint32_t overwrite_after(const struct changer *ch, const struct suffix *suf,
				uint32_t count, uint64_t t, uint32_t v, uint64_t *complete)
{
	uint32_t lo = 0, hi = count; /* first changer invoked after t */
	if (t != TIME_BEFORE_ALL) {
		while (lo < hi) {
			uint32_t mid = lo + (hi - lo) / 2;
			if (ch[mid].invoke > t)
				hi = mid;
			else
				lo = mid + 1;
		}
	}
	if (lo == count)
		return UINT32_MAX;
	const struct suffix *s = &suf[lo];
	*complete = s->v1 != v ? s->c1 : s->c2;
	return s->v1 != v ? s->op1 : s->op2;
}

static void build_suffix(const struct changer *ch, struct suffix *suf, uint32_t count)
{
	struct suffix cur = { CHECK_TIME_INF, CHECK_TIME_INF, CHECK_ANY, UINT32_MAX, UINT32_MAX };
	for (uint32_t i = count; i-- > 0;) {
		const struct changer *c = &ch[i];
		if (c->complete < cur.c1) {
			if (c->value != cur.v1) {
				cur.c2 = cur.c1;
				cur.op2 = cur.op1;
			}
			cur.c1 = c->complete;
			cur.v1 = c->value;
			cur.op1 = c->op;
		} else if (c->value != cur.v1 && c->complete < cur.c2) {
			cur.c2 = c->complete;
			cur.op2 = c->op;
		}
		suf[i] = cur;
	}
}

struct producer {
	uint32_t value;
	uint32_t op;
};

static int producer_cmp(const void *a, const void *b)
{
	const struct producer *x = a;
	const struct producer *y = b;
	if (x->value != y->value)
		return x->value < y->value ? -1 : 1;
	return x->op < y->op ? -1 : x->op > y->op;
}

/* Looks at need (op r, value v): true with *overwrite set when every
 * producer (prod[lo..hi), and the initial state if it is v) is overwritten
 * before r. */
static bool stale(const struct check_history *h, const struct producer *prod, uint32_t lo,
		  uint32_t hi, uint32_t init, const struct changer *ch, const struct suffix *suf,
		  uint32_t count, uint32_t r, uint32_t v, uint32_t *overwrite)
{
	uint64_t deadline = h->ops[r].invoke_ns;
	uint32_t last_x = UINT32_MAX;
	uint64_t last_w = 0;
	if (hi - lo > STALE_PRODUCERS_MAX)
		return false;
	if (init == v) {
		uint64_t c;
		uint32_t x = overwrite_after(ch, suf, count, TIME_BEFORE_ALL, v, &c);
		if (x == UINT32_MAX || c >= deadline)
			return false;
		last_x = x;
	}
	for (uint32_t i = lo; i < hi; i++) {
		const struct check_op *w = &h->ops[prod[i].op];
		if (w->complete_ns == CHECK_TIME_INF)
			return false;
		uint64_t c;
		uint32_t x = overwrite_after(ch, suf, count, w->complete_ns, v, &c);
		if (x == UINT32_MAX || c >= deadline)
			return false;
		if (w->complete_ns >= last_w) {
			last_w = w->complete_ns;
			last_x = x;
		}
	}
	*overwrite = last_x;
	return true;
}

/* The range of prod (sorted by value) whose value is v. */
static void producer_range(const struct producer *prod, uint32_t count, uint32_t v,
			   uint32_t *lo, uint32_t *hi)
{
	uint32_t a = 0, b = count;
	while (a < b) {
		uint32_t mid = a + (b - a) / 2;
		if (prod[mid].value < v)
			a = mid + 1;
		else
			b = mid;
	}
	*lo = a;
	b = count;
	while (a < b) {
		uint32_t mid = a + (b - a) / 2;
		if (prod[mid].value <= v)
			a = mid + 1;
		else
			b = mid;
	}
	*hi = a;
}

/* Keys with appends: every op is a possible producer or changer. */
static int stale_read_app(const struct check_history *h, const uint32_t *idx, uint32_t n,
			  uint32_t init, struct check_stale *out)
{
	struct changer *ch = malloc(sizeof *ch * (n + 1));
	if (ch == NULL)
		return -1;
	for (uint32_t i = 0; i < n; i++) {
		const struct check_op *op = &h->ops[idx[i]];
		ch[i] = (struct changer){ op->invoke_ns, op->complete_ns, 0, idx[i] };
	}
	qsort(ch, n, sizeof *ch, changer_cmp);
	uint32_t steps = 0;
	int found = 0;
	for (uint32_t i = 0; i < n && !found && steps <= STALE_STEPS_MAX; i++) {
		uint32_t v, x;
		if (!needs(&h->ops[idx[i]], &v))
			continue;
		if (stale_app(h, ch, n, init, idx[i], v, &steps, &x)) {
			out->read = idx[i];
			out->overwrite = x;
			found = 1;
		}
	}
	free(ch);
	return found;
}

int check_stale_read(const struct check_history *h, const uint32_t *idx, uint32_t n,
		     uint32_t init, struct check_stale *out)
{
	for (uint32_t i = 0; i < n; i++)
		if (h->ops[idx[i]].kind == CHECK_APPEND)
			return n <= STALE_APPEND_OPS_MAX ? stale_read_app(h, idx, n, init, out) : 0;
	struct changer *ch = malloc(sizeof *ch * (n + 1));
	struct suffix *suf = malloc(sizeof *suf * (n + 1));
	struct producer *prod = malloc(sizeof *prod * (n + 1));
	if (ch == NULL || suf == NULL || prod == NULL) {
		free(ch);
		free(suf);
		free(prod);
		return -1;
	}
	uint32_t count = 0, prod_count = 0;
	for (uint32_t i = 0; i < n; i++) {
		const struct check_op *op = &h->ops[idx[i]];
		uint32_t v;
		if (certain_change(op, &v))
			ch[count++] = (struct changer){ op->invoke_ns, op->complete_ns, v, idx[i] };
		if (op->kind == CHECK_PUT || (op->kind == CHECK_CAS && op->result != 0))
			prod[prod_count++] = (struct producer){ op->value, idx[i] };
		else if (op->kind == CHECK_DEL && op->result != 0)
			prod[prod_count++] = (struct producer){ CHECK_ABSENT, idx[i] };
	}
	qsort(ch, count, sizeof *ch, changer_cmp);
	qsort(prod, prod_count, sizeof *prod, producer_cmp);
	build_suffix(ch, suf, count);
	int found = 0;
	for (uint32_t i = 0; i < n && !found; i++) {
		uint32_t v, x, lo, hi;
		if (!needs(&h->ops[idx[i]], &v))
			continue;
		producer_range(prod, prod_count, v, &lo, &hi);
		if (stale(h, prod, lo, hi, init, ch, suf, count, idx[i], v, &x)) {
			out->read = idx[i];
			out->overwrite = x;
			found = 1;
		}
	}
	free(ch);
	free(suf);
	free(prod);
	return found;
}
