/*
 * kv.c: the KV state machine; see kv.h.
 *
 * Invariants:
 *   K1 one kv_apply is one store write batch: kv writes, session writes and
 *      the applied index commit together or not at all (the only exception
 *      is the planted bug MUTANT_SESSION_NOT_ATOMIC).
 *   K2 results reach on_result only after the batch committed, in log
 *      order, one per command.
 *   K3 a write runs at most once per (client_id, seq) while its session is
 *      in the table: seq == last seq is answered from the session, seq <
 *      last seq is KV_STALE_SEQ; neither changes any state.
 *   K4 the session table never exceeds sessions_max after an apply; the
 *      evicted session is the store's session_oldest (smallest last_index,
 *      then smallest client_id), so every replica evicts the same one.
 *   K5 apply reads nothing but the store and the entries: the same entries
 *      on the same state give the same state and results.
 */
#include "kv.h"

#include <string.h>

#include "assert.h"
#include "codec.h"
#include "err.h"
#include "mutant.h"

#define KV_RESULTS_INITIAL 64u

struct apply {
	struct kv *kv;
	const struct store_ops *ops;
	void *s;
	struct kv_result *results;
	size_t result_count;
	size_t result_cap;
	uint8_t *scratch; /* KEEL_VALUE_BYTES_MAX bytes for append, lazily */
	struct kv_command cmds[KEEL_BATCH_COMMANDS_MAX];
};

void kv_init(struct kv *kv, struct store *store, const struct keel_alloc *alloc)
{
	KEEL_ASSERT(store != NULL);
	KEEL_ASSERT(store->ops != NULL);
	kv->store = store;
	kv->alloc = alloc != NULL ? *alloc : (struct keel_alloc){0};
	kv->sessions_max = KV_SESSIONS_MAX;
}

static int result_push(struct apply *a, const struct kv_result *r)
{
	if (a->result_count == a->result_cap) {
		size_t cap = a->result_cap == 0 ? KV_RESULTS_INITIAL
						: a->result_cap * 2;
		struct kv_result *p = keel_realloc(&a->kv->alloc, a->results,
						   cap * sizeof(*p));
		if (p == NULL)
			return KEEL_ENOMEM;
		a->results = p;
		a->result_cap = cap;
	}
	a->results[a->result_count++] = *r;
	return 0;
}

/* The current value of c's key: 0, KEEL_ENOTFOUND or a store error. */
static int current(struct apply *a, const struct kv_command *c,
		   const uint8_t **val, uint32_t *val_bytes)
{
	return a->ops->kv_get(a->s, c->key, c->key_bytes, val, val_bytes);
}

static int do_cas(struct apply *a, const struct kv_command *c, uint32_t *status)
{
	const uint8_t *cur;
	uint32_t cur_bytes;
	int rc = current(a, c, &cur, &cur_bytes);
	if (rc != 0 && rc != KEEL_ENOTFOUND)
		return rc;
	bool match = c->cas_absent
			     ? rc == KEEL_ENOTFOUND
			     : rc == 0 && cur_bytes == c->expected_bytes &&
				       (cur_bytes == 0 ||
					memcmp(cur, c->expected, cur_bytes) == 0);
	if (!match) {
		*status = KV_CAS_FAILED;
		return 0;
	}
	*status = KV_OK;
	return a->ops->kv_put(a->s, c->key, c->key_bytes, c->value,
			      c->value_bytes);
}

static int do_append(struct apply *a, const struct kv_command *c,
		     uint32_t *status)
{
	const uint8_t *cur = NULL;
	uint32_t cur_bytes = 0;
	int rc = current(a, c, &cur, &cur_bytes);
	if (rc != 0 && rc != KEEL_ENOTFOUND)
		return rc;
	if (rc == KEEL_ENOTFOUND)
		cur_bytes = 0; /* absent is "" */
	if ((uint64_t)cur_bytes + c->value_bytes > KEEL_VALUE_BYTES_MAX) {
		*status = KV_TOO_BIG;
		return 0;
	}
	if (a->scratch == NULL) {
		a->scratch = keel_malloc(&a->kv->alloc, KEEL_VALUE_BYTES_MAX);
		if (a->scratch == NULL)
			return KEEL_ENOMEM;
	}
	/* cur points into the store: copy before writing. */
	if (cur_bytes > 0)
		memcpy(a->scratch, cur, cur_bytes);
	if (c->value_bytes > 0)
		memcpy(a->scratch + cur_bytes, c->value, c->value_bytes);
	*status = KV_OK;
	return a->ops->kv_put(a->s, c->key, c->key_bytes, a->scratch,
			      cur_bytes + c->value_bytes);
}

/* Run c's operation on kv. 0 with *status, or a store error. */
static int do_op(struct apply *a, const struct kv_command *c, uint32_t *status)
{
	int rc;
	switch (c->op) {
	case KV_PUT:
		*status = KV_OK;
		return a->ops->kv_put(a->s, c->key, c->key_bytes, c->value,
				      c->value_bytes);
	case KV_DEL:
		rc = a->ops->kv_del(a->s, c->key, c->key_bytes);
		*status = rc == KEEL_ENOTFOUND ? KV_NOT_FOUND : KV_OK;
		return rc == KEEL_ENOTFOUND ? 0 : rc;
	case KV_CAS:
		return do_cas(a, c, status);
	case KV_APPEND:
		return do_append(a, c, status);
	default:
		return KEEL_ECORRUPT; /* the codec admits writes only */
	}
}

/* Make room for one new session (K4). */
static int evict_for_new(struct apply *a)
{
	uint64_t count;
	int rc = a->ops->session_count(a->s, &count);
	KEEL_ASSERT(a->kv->sessions_max > 0);
	while (rc == 0 && count >= a->kv->sessions_max) {
		struct kv_session old;
		rc = a->ops->session_oldest(a->s, &old);
		if (rc == 0)
			rc = a->ops->session_del(a->s, old.client_id);
		count--;
	}
	return rc;
}

/* The planted bug: kv writes and the session write in separate batches,
 * the first made durable, so a crash in between keeps the write and loses
 * its session. */
static int split_batch(struct apply *a)
{
	int rc = a->ops->write_commit(a->s);
	if (rc == 0)
		rc = a->ops->sync(a->s);
	if (rc == 0)
		rc = a->ops->write_begin(a->s);
	return rc;
}

static int apply_command(struct apply *a, const struct kv_command *c,
			 uint64_t index)
{
	if (c->client_id == 0 || c->seq == 0)
		return KEEL_ECORRUPT; /* the codec rejects these */
	struct kv_result res = {.client_id = c->client_id, .seq = c->seq,
				.index = index};
	struct kv_session se;
	int rc = a->ops->session_get(a->s, c->client_id, &se);
	if (rc == 0 && c->seq == se.seq && !MUTANT(MUTANT_NO_SESSION_DEDUP)) {
		res.status = se.status; /* K3: a retry */
		res.duplicate = true;
		return result_push(a, &res);
	}
	if (rc == 0 && c->seq < se.seq) {
		res.status = KV_STALE_SEQ; /* K3 */
		return result_push(a, &res);
	}
	if (rc == KEEL_ENOTFOUND)
		rc = evict_for_new(a);
	if (rc == 0)
		rc = do_op(a, c, &res.status);
	if (rc == 0 && MUTANT(MUTANT_SESSION_NOT_ATOMIC))
		rc = split_batch(a);
	if (rc != 0)
		return rc;
	struct kv_session next = {.client_id = c->client_id, .seq = c->seq,
				  .last_index = index, .status = res.status};
	rc = a->ops->session_put(a->s, &next);
	return rc != 0 ? rc : result_push(a, &res);
}

static int apply_entry(struct apply *a, const struct entry *e)
{
	if (e->type == ENTRY_NOOP || e->type == ENTRY_CONFIG)
		return 0;
	if (e->type != ENTRY_COMMAND)
		return KEEL_ECORRUPT;
	uint32_t count = 0;
	struct codec_decoded d;
	int rc = codec_batch_decode(e->data, e->data_bytes, &a->kv->alloc,
				    a->cmds, &count, &d);
	if (rc == KEEL_ENOMEM)
		return rc;
	if (rc != 0)
		return KEEL_ECORRUPT;
	KEEL_ASSERT(count <= KEEL_BATCH_COMMANDS_MAX);
	for (uint32_t i = 0; i < count && rc == 0; i++)
		rc = apply_command(a, &a->cmds[i], e->index);
	codec_decoded_free(&d);
	return rc;
}

static int apply_all(struct apply *a, const struct entry *entries, size_t n)
{
	struct store_meta meta;
	int rc = a->ops->meta_get(a->s, &meta);
	if (rc != 0)
		return rc;
	KEEL_ASSERT(entries[0].index == meta.applied_index + 1);
	for (size_t i = 0; i < n && rc == 0; i++) {
		KEEL_ASSERT(entries[i].index == entries[0].index + i);
		rc = apply_entry(a, &entries[i]);
	}
	if (rc == 0)
		rc = a->ops->set_applied(a->s, entries[n - 1].index);
	return rc;
}

int kv_apply(struct kv *kv, const struct entry *entries, size_t n,
	     kv_result_fn on_result, void *ctx)
{
	if (n == 0)
		return 0;
	KEEL_ASSERT(entries != NULL);
	struct apply *a = keel_malloc(&kv->alloc, sizeof(*a));
	if (a == NULL)
		return KEEL_ENOMEM;
	memset(a, 0, offsetof(struct apply, cmds));
	a->kv = kv;
	a->ops = kv->store->ops;
	a->s = kv->store->impl;
	int rc = a->ops->write_begin(a->s);
	if (rc == 0) {
		rc = apply_all(a, entries, n);
		if (rc == 0)
			rc = a->ops->write_commit(a->s); /* K1 */
		else
			a->ops->write_abort(a->s);
	}
	if (rc == 0 && on_result != NULL) /* K2 */
		for (size_t i = 0; i < a->result_count; i++)
			on_result(ctx, &a->results[i]);
	keel_free(&kv->alloc, a->results);
	keel_free(&kv->alloc, a->scratch);
	keel_free(&kv->alloc, a);
	return rc;
}

int kv_get(struct kv *kv, const uint8_t *key, uint32_t key_bytes,
	   const uint8_t **val, uint32_t *val_bytes)
{
	return kv->store->ops->kv_get(kv->store->impl, key, key_bytes, val,
				      val_bytes);
}

uint32_t kv_status_to_client(uint32_t status)
{
	switch (status) {
	case KV_OK:
		return CLIENT_OK;
	case KV_NOT_FOUND:
		return CLIENT_NOT_FOUND;
	case KV_CAS_FAILED:
		return CLIENT_CAS_FAILED;
	case KV_TOO_BIG:
		return CLIENT_TOO_BIG;
	case KV_STALE_SEQ:
		return CLIENT_STALE_SEQ;
	default:
		KEEL_UNREACHABLE();
	}
}
