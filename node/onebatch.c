/*
 * onebatch.c: a store view for the storage thread's group commit. It forwards
 * every read and write to the real store but turns write_begin, write_commit,
 * write_abort and sync into bookkeeping, so that kv_apply runs inside the
 * batch the storage thread already opened: the log segments, the hard state
 * and the applied state of one job share one transaction and one sync.
 *
 * Invariant: the real store has a batch open whenever kv_apply runs on the
 * view; an abort through the view is remembered (aborted) and the storage
 * thread then aborts the real batch instead of committing it.
 */
#include "onebatch.h"

#define REAL(v) (((struct onebatch *)(v))->real)
#define FWD(name, ...) REAL(v)->ops->name(REAL(v)->impl, __VA_ARGS__)

static int ob_meta_get(void *v, struct store_meta *out) { return FWD(meta_get, out); }
static int ob_log_bounds(void *v, uint64_t *f, uint64_t *l) { return FWD(log_bounds, f, l); }
static int ob_log_get(void *v, uint64_t i, struct entry *e) { return FWD(log_get, i, e); }
static int ob_kv_get(void *v, const uint8_t *k, uint32_t kb, const uint8_t **val,
		     uint32_t *vb) { return FWD(kv_get, k, kb, val, vb); }
static int ob_session_get(void *v, uint64_t id, struct kv_session *out) { return FWD(session_get, id, out); }
static int ob_session_count(void *v, uint64_t *c) { return FWD(session_count, c); }
static int ob_session_oldest(void *v, struct kv_session *out) { return FWD(session_oldest, out); }
static int ob_set_ids(void *v, uint64_t c, keel_node_id n) { return FWD(set_ids, c, n); }
static int ob_set_hard_state(void *v, const struct raft_hard_state *hs) { return FWD(set_hard_state, hs); }
static int ob_log_append(void *v, const struct entry *e, size_t n) { return FWD(log_append, e, n); }
static int ob_log_truncate(void *v, uint64_t i) { return FWD(log_truncate, i); }
static int ob_log_compact(void *v, uint64_t i, uint64_t t, const struct membership *m) { return FWD(log_compact, i, t, m); }
static int ob_kv_put(void *v, const uint8_t *k, uint32_t kb, const uint8_t *val,
		     uint32_t vb) { return FWD(kv_put, k, kb, val, vb); }
static int ob_kv_del(void *v, const uint8_t *k, uint32_t kb) { return FWD(kv_del, k, kb); }
static int ob_session_put(void *v, const struct kv_session *se) { return FWD(session_put, se); }
static int ob_session_del(void *v, uint64_t id) { return FWD(session_del, id); }
static int ob_set_applied(void *v, uint64_t i) { return FWD(set_applied, i); }

static int ob_snap_begin(void *v, struct store_meta *m) { return FWD(snap_begin, m); }
static int ob_snap_next(void *v, struct store_item *it) { return FWD(snap_next, it); }
static void ob_snap_end(void *v) { REAL(v)->ops->snap_end(REAL(v)->impl); }
static int ob_state_clear(void *v) { return REAL(v)->ops->state_clear(REAL(v)->impl); }

static int ob_write_begin(void *v)
{
	(void)v;
	return 0; /* the real batch is already open */
}

static int ob_write_commit(void *v)
{
	struct onebatch *b = v;
	return b->aborted ? KEEL_ESTATE : 0; /* committed with the job */
}

static void ob_write_abort(void *v)
{
	((struct onebatch *)v)->aborted = true;
}

static int ob_sync(void *v)
{
	(void)v;
	return 0; /* the job syncs once */
}

static const struct store_ops onebatch_ops = {
	.meta_get = ob_meta_get,
	.log_bounds = ob_log_bounds,
	.log_get = ob_log_get,
	.kv_get = ob_kv_get,
	.session_get = ob_session_get,
	.session_count = ob_session_count,
	.session_oldest = ob_session_oldest,
	.write_begin = ob_write_begin,
	.set_ids = ob_set_ids,
	.set_hard_state = ob_set_hard_state,
	.log_append = ob_log_append,
	.log_truncate = ob_log_truncate,
	.log_compact = ob_log_compact,
	.kv_put = ob_kv_put,
	.kv_del = ob_kv_del,
	.session_put = ob_session_put,
	.session_del = ob_session_del,
	.set_applied = ob_set_applied,
	.write_commit = ob_write_commit,
	.write_abort = ob_write_abort,
	.sync = ob_sync,
	.snap_begin = ob_snap_begin,
	.snap_next = ob_snap_next,
	.snap_end = ob_snap_end,
	.state_clear = ob_state_clear,
};

void onebatch_init(struct onebatch *b, struct store *real)
{
	b->real = real;
	b->aborted = false;
	b->view.ops = &onebatch_ops;
	b->view.impl = b;
}
