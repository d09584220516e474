/* wcache.c: the write-back cache of the applied state (see wcache.h). */
#include "wcache.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "../core/assert.h"
#include "../core/err.h"
#include "../core/msg.h"

#define WCACHE_SLOTS_MIN 64u

/* Both tables stay at most half full: capacities up to twice the items. */
_Static_assert((WCACHE_ITEMS_MAX & (WCACHE_ITEMS_MAX - 1)) == 0,
	       "WCACHE_ITEMS_MAX is a power of two");
_Static_assert(WCACHE_BYTES_MAX >= 4u * (KEEL_KEY_BYTES_MAX + KEEL_VALUE_BYTES_MAX),
	       "a few of the largest pairs fit before a flush");

struct wcache_kv {
	uint64_t hash;
	uint32_t key_bytes;
	uint32_t val_bytes;
	bool dead; /* a deletion: the key is absent */
	uint8_t bytes[]; /* key, then value */
};

enum { SE_EMPTY = 0, SE_LIVE = 1, SE_DEAD = 2 };

struct wcache_session {
	uint32_t state;
	bool in_store;        /* the store held client_id when it was cached */
	struct kv_session se; /* se.client_id is the key */
};

#define C(v) ((struct wcache *)(v))
#define REAL(c) ((c)->real->ops)
#define REAL_S(c) ((c)->real->impl)

static size_t kv_cost(const struct wcache_kv *it)
{
	return sizeof(*it) + sizeof(void *) * 2 + it->key_bytes + it->val_bytes;
}

static uint64_t id_hash(uint64_t id)
{
	return XXH3_64bits(&id, sizeof id);
}

/* ---- the tables ------------------------------------------------------------- */

/* Slot of key in kv_slots: where it is, or the empty slot it would take. */
static uint32_t kv_slot(const struct wcache *c, const uint8_t *key,
			uint32_t key_bytes, uint64_t h)
{
	KEEL_ASSERT(c->kv_cap > 0);
	uint32_t mask = c->kv_cap - 1;
	for (uint32_t i = (uint32_t)h & mask;; i = (i + 1) & mask) {
		const struct wcache_kv *it = c->kv_slots[i];
		if (it == NULL)
			return i;
		if (it->hash == h && it->key_bytes == key_bytes &&
		    memcmp(it->bytes, key, key_bytes) == 0)
			return i;
	}
}

static const struct wcache_kv *kv_find(const struct wcache *c,
				       const uint8_t *key, uint32_t key_bytes)
{
	if (c->kv_count == 0)
		return NULL;
	return c->kv_slots[kv_slot(c, key, key_bytes, XXH3_64bits(key, key_bytes))];
}

static uint32_t se_slot(const struct wcache *c, uint64_t client_id)
{
	KEEL_ASSERT(c->se_cap > 0);
	uint32_t mask = c->se_cap - 1;
	for (uint32_t i = (uint32_t)id_hash(client_id) & mask;; i = (i + 1) & mask) {
		const struct wcache_session *w = &c->se_slots[i];
		if (w->state == SE_EMPTY || w->se.client_id == client_id)
			return i;
	}
}

static const struct wcache_session *se_find(const struct wcache *c,
					    uint64_t client_id)
{
	if (c->se_count == 0)
		return NULL;
	const struct wcache_session *w = &c->se_slots[se_slot(c, client_id)];
	return w->state == SE_EMPTY ? NULL : w;
}

/* Room for one more pair: 0 or KEEL_ENOMEM (nothing changed). */
static int kv_reserve(struct wcache *c)
{
	if ((c->kv_count + 1) * 2 <= c->kv_cap)
		return 0;
	uint32_t cap = c->kv_cap ? c->kv_cap * 2 : WCACHE_SLOTS_MIN;
	struct wcache_kv **slots = calloc(cap, sizeof(*slots));
	if (slots == NULL)
		return KEEL_ENOMEM;
	struct wcache_kv **old = c->kv_slots;
	uint32_t old_cap = c->kv_cap;
	c->kv_slots = slots;
	c->kv_cap = cap;
	for (uint32_t i = 0; i < old_cap; i++)
		if (old[i] != NULL)
			slots[kv_slot(c, old[i]->bytes, old[i]->key_bytes,
				      old[i]->hash)] = old[i];
	free(old);
	return 0;
}

static int se_reserve(struct wcache *c)
{
	if ((c->se_count + 1) * 2 <= c->se_cap)
		return 0;
	uint32_t cap = c->se_cap ? c->se_cap * 2 : WCACHE_SLOTS_MIN;
	struct wcache_session *slots = calloc(cap, sizeof(*slots));
	if (slots == NULL)
		return KEEL_ENOMEM;
	struct wcache_session *old = c->se_slots;
	uint32_t old_cap = c->se_cap;
	c->se_slots = slots;
	c->se_cap = cap;
	for (uint32_t i = 0; i < old_cap; i++)
		if (old[i].state != SE_EMPTY)
			slots[se_slot(c, old[i].se.client_id)] = old[i];
	free(old);
	return 0;
}

/* W2: past a bound, everything goes to the store's open batch. */
static int after_write(struct wcache *c)
{
	if (wcache_items(c) >= WCACHE_ITEMS_MAX || c->bytes >= WCACHE_BYTES_MAX)
		return wcache_flush(c);
	return 0;
}

/* Cache key -> value (dead: a deletion). 0 or KEEL_ENOMEM (unchanged). */
static int kv_set(struct wcache *c, const uint8_t *key, uint32_t key_bytes,
		  const uint8_t *val, uint32_t val_bytes, bool dead)
{
	KEEL_ASSERT(!dead || val_bytes == 0);
	struct wcache_kv *it = malloc(sizeof(*it) + key_bytes + val_bytes);
	if (it == NULL)
		return KEEL_ENOMEM;
	if (kv_reserve(c) != 0) {
		free(it);
		return KEEL_ENOMEM;
	}
	it->hash = XXH3_64bits(key, key_bytes);
	it->key_bytes = key_bytes;
	it->val_bytes = val_bytes;
	it->dead = dead;
	if (key_bytes > 0)
		memcpy(it->bytes, key, key_bytes);
	if (val_bytes > 0)
		memcpy(it->bytes + key_bytes, val, val_bytes);
	uint32_t i = kv_slot(c, key, key_bytes, it->hash);
	struct wcache_kv *old = c->kv_slots[i];
	if (old != NULL) {
		c->bytes -= kv_cost(old);
		free(old);
	} else {
		c->kv_count++;
	}
	c->kv_slots[i] = it;
	c->bytes += kv_cost(it);
	return after_write(c);
}

/* Cache a session (SE_LIVE) or its deletion (SE_DEAD). in_store: whether
 * the store holds client_id; read only when it is not cached yet. */
static int se_set(struct wcache *c, const struct kv_session *se, uint32_t state,
		  bool in_store)
{
	if (se_reserve(c) != 0)
		return KEEL_ENOMEM;
	struct wcache_session *w = &c->se_slots[se_slot(c, se->client_id)];
	bool live_before = w->state == SE_LIVE;
	if (w->state == SE_EMPTY) {
		c->se_count++;
		c->bytes += sizeof(*w) * 2;
		w->in_store = in_store;
		live_before = in_store;
	}
	c->se_live_delta += (int64_t)(state == SE_LIVE) - (int64_t)live_before;
	w->state = state;
	w->se = *se;
	return after_write(c);
}

/* ---- the view: reads ---------------------------------------------------------- */

static int wc_meta_get(void *v, struct store_meta *out)
{
	struct wcache *c = C(v);
	int rc = REAL(c)->meta_get(REAL_S(c), out);
	if (rc == 0 && c->has_applied)
		out->applied_index = c->applied_index;
	return rc;
}

static int wc_kv_get(void *v, const uint8_t *key, uint32_t key_bytes,
		     const uint8_t **val, uint32_t *val_bytes)
{
	struct wcache *c = C(v);
	const struct wcache_kv *it = kv_find(c, key, key_bytes);
	if (it == NULL)
		return REAL(c)->kv_get(REAL_S(c), key, key_bytes, val, val_bytes);
	if (it->dead)
		return KEEL_ENOTFOUND;
	*val = it->bytes + it->key_bytes;
	*val_bytes = it->val_bytes;
	return 0;
}

static int wc_session_get(void *v, uint64_t client_id, struct kv_session *out)
{
	struct wcache *c = C(v);
	const struct wcache_session *w = se_find(c, client_id);
	if (w == NULL)
		return REAL(c)->session_get(REAL_S(c), client_id, out);
	if (w->state == SE_DEAD)
		return KEEL_ENOTFOUND;
	*out = w->se;
	return 0;
}

/* W3: the store's count and the cache's difference to it. */
static int wc_session_count(void *v, uint64_t *count)
{
	struct wcache *c = C(v);
	uint64_t n = 0;
	int rc = REAL(c)->session_count(REAL_S(c), &n);
	if (rc != 0)
		return rc;
	KEEL_ASSERT(c->se_live_delta >= 0 || (uint64_t)-c->se_live_delta <= n);
	*count = n + (uint64_t)c->se_live_delta; /* modulo 2^64: a negative delta */
	return 0;
}

static int wc_session_oldest(void *v, struct kv_session *out)
{
	struct wcache *c = C(v);
	int rc = c->se_count > 0 ? wcache_flush(c) : 0;
	return rc != 0 ? rc : REAL(c)->session_oldest(REAL_S(c), out);
}

static int wc_log_bounds(void *v, uint64_t *first, uint64_t *last)
{
	return REAL(C(v))->log_bounds(REAL_S(C(v)), first, last);
}

static int wc_log_get(void *v, uint64_t index, struct entry *e)
{
	return REAL(C(v))->log_get(REAL_S(C(v)), index, e);
}

/* ---- the view: writes --------------------------------------------------------- */

static int wc_kv_put(void *v, const uint8_t *key, uint32_t key_bytes,
		     const uint8_t *val, uint32_t val_bytes)
{
	return kv_set(C(v), key, key_bytes, val, val_bytes, false);
}

static int wc_kv_del(void *v, const uint8_t *key, uint32_t key_bytes)
{
	struct wcache *c = C(v);
	const struct wcache_kv *it = kv_find(c, key, key_bytes);
	if (it != NULL && it->dead)
		return KEEL_ENOTFOUND;
	if (it == NULL) {
		const uint8_t *val;
		uint32_t val_bytes;
		int rc = REAL(c)->kv_get(REAL_S(c), key, key_bytes, &val,
					 &val_bytes);
		if (rc != 0)
			return rc; /* KEEL_ENOTFOUND: absent, nothing cached */
	}
	return kv_set(c, key, key_bytes, NULL, 0, true);
}

static int wc_session_put(void *v, const struct kv_session *se)
{
	struct wcache *c = C(v);
	bool in_store = false;
	if (se_find(c, se->client_id) == NULL) {
		struct kv_session old;
		int rc = REAL(c)->session_get(REAL_S(c), se->client_id, &old);
		if (rc != 0 && rc != KEEL_ENOTFOUND)
			return rc;
		in_store = rc == 0;
	}
	return se_set(c, se, SE_LIVE, in_store);
}

static int wc_session_del(void *v, uint64_t client_id)
{
	struct wcache *c = C(v);
	const struct wcache_session *w = se_find(c, client_id);
	if (w != NULL && w->state == SE_DEAD)
		return KEEL_ENOTFOUND;
	struct kv_session se = {.client_id = client_id};
	if (w == NULL) {
		int rc = REAL(c)->session_get(REAL_S(c), client_id, &se);
		if (rc != 0)
			return rc; /* KEEL_ENOTFOUND: absent, nothing cached */
	}
	return se_set(c, &se, SE_DEAD, true); /* cached live, or in the store */
}

static int wc_set_applied(void *v, uint64_t index)
{
	struct wcache *c = C(v);
	c->has_applied = true;
	c->applied_index = index;
	return 0;
}

/* Bookkeeping: kv_apply's batch is the owner's (W4). */
static int wc_write_begin(void *v)
{
	(void)v;
	return 0;
}

/* The end of one kv_apply. When a flush wrote part of it into the store's
 * batch (W2, W3), the rest follows now, so that whatever the owner commits
 * holds whole applies: the applied index with the kv and sessions it
 * describes, never part of an entry's effects. */
static int wc_write_commit(void *v)
{
	struct wcache *c = C(v);
	if (c->aborted)
		return KEEL_ESTATE;
	return c->wrote_real ? wcache_flush(c) : 0;
}

static void wc_write_abort(void *v)
{
	C(v)->aborted = true;
}

static int wc_sync(void *v)
{
	(void)v;
	return 0; /* the owner syncs */
}

static const struct store_ops wcache_ops = {
	.meta_get = wc_meta_get,
	.log_bounds = wc_log_bounds,
	.log_get = wc_log_get,
	.kv_get = wc_kv_get,
	.session_get = wc_session_get,
	.session_count = wc_session_count,
	.session_oldest = wc_session_oldest,
	.write_begin = wc_write_begin,
	.kv_put = wc_kv_put,
	.kv_del = wc_kv_del,
	.session_put = wc_session_put,
	.session_del = wc_session_del,
	.set_applied = wc_set_applied,
	.write_commit = wc_write_commit,
	.write_abort = wc_write_abort,
	.sync = wc_sync,
};

/* ---- the owner's calls ---------------------------------------------------------- */

void wcache_init(struct wcache *c, struct store *real)
{
	KEEL_ASSERT(real != NULL);
	memset(c, 0, sizeof(*c));
	c->real = real;
	c->view.ops = &wcache_ops;
	c->view.impl = c;
}

bool wcache_empty(const struct wcache *c)
{
	return c->kv_count == 0 && c->se_count == 0 && !c->has_applied;
}

uint32_t wcache_items(const struct wcache *c)
{
	return c->kv_count + c->se_count;
}

void wcache_drop(struct wcache *c)
{
	for (uint32_t i = 0; i < c->kv_cap; i++) {
		free(c->kv_slots[i]);
		c->kv_slots[i] = NULL;
	}
	if (c->se_cap > 0)
		memset(c->se_slots, 0, (size_t)c->se_cap * sizeof(*c->se_slots));
	c->kv_count = 0;
	c->se_count = 0;
	c->se_live_delta = 0;
	c->has_applied = false;
	c->bytes = 0;
}

void wcache_free(struct wcache *c)
{
	wcache_drop(c);
	free(c->kv_slots);
	free(c->se_slots);
	c->kv_slots = NULL;
	c->se_slots = NULL;
	c->kv_cap = 0;
	c->se_cap = 0;
}

/* Key order, as the store's B-tree keeps them (bytes, then length). */
static int by_key(const void *a, const void *b)
{
	const struct wcache_kv *x = *(const struct wcache_kv *const *)a;
	const struct wcache_kv *y = *(const struct wcache_kv *const *)b;
	uint32_t n = x->key_bytes < y->key_bytes ? x->key_bytes : y->key_bytes;
	int r = n > 0 ? memcmp(x->bytes, y->bytes, n) : 0;
	if (r != 0)
		return r;
	return (x->key_bytes > y->key_bytes) - (x->key_bytes < y->key_bytes);
}

/* The pairs in key order: each leaf of the store's tree is then visited
 * once, in order, while it and its branch pages are in the CPU's cache. */
static int flush_kv(struct wcache *c)
{
	const struct store_ops *ops = REAL(c);
	if (c->kv_count == 0)
		return 0;
	struct wcache_kv **order = malloc((size_t)c->kv_count * sizeof(*order));
	if (order == NULL)
		return KEEL_ENOMEM;
	uint32_t n = 0;
	for (uint32_t i = 0; i < c->kv_cap; i++)
		if (c->kv_slots[i] != NULL)
			order[n++] = c->kv_slots[i];
	KEEL_ASSERT(n == c->kv_count);
	qsort(order, n, sizeof(*order), by_key);
	int rc = 0;
	for (uint32_t i = 0; i < n && rc == 0; i++) {
		const struct wcache_kv *it = order[i];
		if (it->dead) {
			rc = ops->kv_del(REAL_S(c), it->bytes, it->key_bytes);
			if (rc == KEEL_ENOTFOUND)
				rc = 0; /* put and deleted since the last flush */
		} else {
			rc = ops->kv_put(REAL_S(c), it->bytes, it->key_bytes,
					 it->bytes + it->key_bytes, it->val_bytes);
		}
	}
	free(order);
	return rc;
}

static int flush_sessions(struct wcache *c)
{
	const struct store_ops *ops = REAL(c);
	for (uint32_t i = 0; i < c->se_cap; i++) {
		const struct wcache_session *w = &c->se_slots[i];
		int rc = 0;
		if (w->state == SE_LIVE) {
			rc = ops->session_put(REAL_S(c), &w->se);
		} else if (w->state == SE_DEAD) {
			rc = ops->session_del(REAL_S(c), w->se.client_id);
			if (rc == KEEL_ENOTFOUND)
				rc = 0;
		}
		if (rc != 0)
			return rc;
	}
	return 0;
}

int wcache_flush(struct wcache *c)
{
	if (wcache_empty(c))
		return 0;
	int rc = flush_kv(c);
	if (rc == 0)
		rc = flush_sessions(c);
	if (rc == 0 && c->has_applied)
		rc = REAL(c)->set_applied(REAL_S(c), c->applied_index);
	if (rc != 0)
		return rc; /* W5: the cache stands; the batch must be aborted */
	c->wrote_real = true;
	c->flush_count++;
	wcache_drop(c);
	return 0;
}
