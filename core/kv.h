/*
 * kv.h: the KV state machine (DESIGN §3, §4).
 *
 * Applies committed log entries to a store (store.h): a batch of entries
 * updates kv, sessions and the applied index in one write batch, so the
 * state machine is durable by construction. Apply is deterministic: the
 * same entries on the same state give the same state and results.
 *
 * Sessions: every write carries (client_id, seq). A write whose seq equals
 * the session's last seq is a retry: it returns the stored status and
 * changes nothing. A seq below it returns KV_STALE_SEQ and changes nothing.
 * The table holds at most KV_SESSIONS_MAX sessions; when a new one would
 * exceed it, the session with the smallest last_index is evicted (ties by
 * client_id), so eviction follows the log, never a clock.
 */
#ifndef KEEL_KV_H
#define KEEL_KV_H

#include <stddef.h>
#include <stdint.h>

#include "alloc.h"
#include "msg.h"
#include "store.h"

#define KV_SESSIONS_MAX 4096u

struct kv_result {
	uint64_t client_id;
	uint64_t seq;
	uint64_t index;  /* log index of the entry */
	uint32_t status; /* enum kv_status */
	bool duplicate;  /* a retry answered from the session table */
};

/* Called once per command applied (in log order). */
typedef void (*kv_result_fn)(void *ctx, const struct kv_result *res);

struct kv {
	struct store *store;
	struct keel_alloc alloc;
	uint32_t sessions_max; /* KV_SESSIONS_MAX unless a test lowers it */
};

void kv_init(struct kv *kv, struct store *store, const struct keel_alloc *alloc);

/*
 * Apply entries[0..n) (consecutive, starting at applied_index + 1) in one
 * write batch and commit it (the caller syncs). NOOP and CONFIG entries only
 * advance the applied index. on_result may be NULL.
 * Returns 0; KEEL_ECORRUPT if a command entry does not decode (nothing is
 * committed); KEEL_ENOMEM; a store error (nothing is committed). Results
 * reach on_result only after the batch committed, in log order.
 */
int kv_apply(struct kv *kv, const struct entry *entries, size_t n,
	     kv_result_fn on_result, void *ctx);

/* Read key from applied state. *val valid until the next store call.
 * Returns 0 or KEEL_ENOTFOUND or a store error. */
int kv_get(struct kv *kv, const uint8_t *key, uint32_t key_bytes,
	   const uint8_t **val, uint32_t *val_bytes);

/* Map a kv_status to the client protocol's status. */
uint32_t kv_status_to_client(uint32_t status);

#endif
