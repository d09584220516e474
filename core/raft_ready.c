/*
 * raft_ready.c: the core's outputs (ready/advance), the outbox, and
 * persistence acknowledgements.
 *
 * Invariants:
 *   R1 between raft_ready() and raft_advance() the log array is not changed
 *      (only raft_persisted() may run, and it only moves stable_index and the
 *      commit), so the pointers handed out stay valid.
 *   R2 an append in the outbox refers to entries by (prev_index, count); its
 *      entries pointer is filled in raft_ready() from the live log. Appends
 *      are purged when a leader steps down, the only time the range could
 *      stop being the leader's own log.
 *   R3 entries are handed out once each, in index order (handed_index), and
 *      again from the truncation point after a conflict.
 *   R4 committed entries are released only up to min(commit, stable_index).
 *   R5 hard_state_changed is set when term or vote changed, or when entries
 *      are written anyway and the commit moved; a commit change alone
 *      causes no write (term_vote_equal).
 */
#include <string.h>

#include "raft_impl.h"

void raft_hard_state(const struct raft *r, struct raft_hard_state *hs)
{
	hs->term = r->term;
	hs->vote = r->vote;
	hs->commit = r->commit;
}

/* R5: term and vote must be written (and synced) before anything that
 * depends on them leaves; the commit index is only a hint (a restart
 * relearns it from the leader, and the state machine keeps its own applied
 * index), so a commit change alone is no reason to write: it rides along
 * with the next write of entries or of term and vote. */
static bool term_vote_equal(const struct raft_hard_state *a,
			    const struct raft_hard_state *b)
{
	return a->term == b->term && a->vote == b->vote;
}

uint32_t raft_outbox_room(const struct raft *r)
{
	KEEL_ASSERT(r->outbox_count <= RAFT_OUTBOX_MAX); /* I13 */
	return RAFT_OUTBOX_MAX - r->outbox_count;
}

/* Make room for one more message; false when out of memory. */
static bool outbox_reserve(struct raft *r)
{
	if (r->outbox_count < r->outbox_cap)
		return true;
	uint32_t cap = r->outbox_cap * 2;
	if (cap > RAFT_OUTBOX_MAX)
		cap = RAFT_OUTBOX_MAX;
	KEEL_ASSERT(cap > r->outbox_count);
	struct raft_out_msg *n =
		keel_realloc(&r->opt.alloc, r->outbox, cap * sizeof(*n));
	if (n == NULL)
		return false;
	r->outbox = n;
	r->outbox_cap = cap;
	return true;
}

/* Queue a message. When the outbox is full the message is dropped and
 * counted (Raft tolerates loss; the protocol retries) and the caller gets a
 * scratch message to fill, so callers need no special case. */
struct msg *raft_send(struct raft *r, uint32_t type, keel_node_id to,
		      bool after_persist)
{
	KEEL_ASSERT(type >= MSG_PREVOTE && type <= MSG_TYPE_MAX);
	KEEL_ASSERT(to != r->opt.id);
	KEEL_ASSERT(!r->ready_pending); /* R1: the outbox may move */
	struct msg *m = &r->scratch;
	if (raft_outbox_room(r) == 0 || !outbox_reserve(r)) {
		r->outbox_dropped++;
	} else {
		struct raft_out_msg *om = &r->outbox[r->outbox_count++];
		om->after_persist = after_persist;
		m = &om->msg;
	}
	memset(m, 0, sizeof(*m));
	m->type = type;
	m->from = r->opt.id;
	m->to = to;
	m->term = r->term;
	return m;
}

void raft_outbox_purge_appends(struct raft *r)
{
	uint32_t kept = 0;
	for (uint32_t i = 0; i < r->outbox_count; i++) {
		if (r->outbox[i].msg.type == MSG_APPEND)
			continue;
		r->outbox[kept++] = r->outbox[i];
	}
	r->outbox_count = kept;
}

bool raft_has_ready(const struct raft *r)
{
	struct raft_hard_state hs;
	raft_hard_state(r, &hs);
	uint64_t releasable = r->commit < r->log.stable_index ? r->commit
							       : r->log.stable_index;
	if (r->install.done)
		releasable = r->applied; /* N5 */
	return !term_vote_equal(&hs, &r->hs_handed) ||
	       r->log.handed_index < raft_log_last(&r->log) ||
	       r->outbox_count > 0 || releasable > r->applied ||
	       r->install.chunk_pending || raft_snapshot_has_wants(r) ||
	       r->reads_done_count > 0 || r->soft_role != r->role ||
	       r->soft_term != r->term || r->soft_leader != r->leader;
}

/* R2: point each queued append at its entries in the live log. */
static void attach_entries(struct raft *r)
{
	for (uint32_t i = 0; i < r->outbox_count; i++) {
		struct msg *m = &r->outbox[i].msg;
		if (m->type != MSG_APPEND || m->u.append.entry_count == 0)
			continue;
		uint64_t first = m->u.append.prev_index + 1;
		KEEL_ASSERT(first > r->log.snapshot_index); /* R2 */
		KEEL_ASSERT(m->u.append.prev_index + m->u.append.entry_count <=
			    raft_log_last(&r->log));
		m->u.append.entries = raft_log_get(&r->log, first);
	}
}

static void ready_entries(struct raft *r, struct raft_ready *rd)
{
	uint64_t last = raft_log_last(&r->log);
	if (r->log.handed_index < last) {
		rd->entries = raft_log_get(&r->log, r->log.handed_index + 1);
		rd->entry_count = (size_t)(last - r->log.handed_index);
		r->log.handed_index = last; /* R3 */
	}
	uint64_t to = r->commit < r->log.stable_index ? r->commit
						      : r->log.stable_index;
	if (r->install.done)
		to = r->applied; /* N5: the install replaces the state machine */
	if (to > r->applied && to - r->applied > RAFT_READY_COMMITTED_MAX)
		to = r->applied + RAFT_READY_COMMITTED_MAX; /* the rest next time */
	if (to > r->applied) { /* R4 */
		KEEL_ASSERT(r->applied >= r->log.snapshot_index);
		rd->committed = raft_log_get(&r->log, r->applied + 1);
		rd->committed_count = (size_t)(to - r->applied);
	}
}

void raft_ready(struct raft *r, struct raft_ready *rd)
{
	KEEL_ASSERT(!r->ready_pending); /* R1: one ready at a time */
	memset(rd, 0, sizeof(*rd));
	raft_hard_state(r, &rd->hard_state);
	ready_entries(r, rd);
	rd->hard_state_changed =
		!term_vote_equal(&rd->hard_state, &r->hs_handed) ||
		(rd->entry_count > 0 && rd->hard_state.commit != r->hs_handed.commit);
	if (rd->hard_state_changed)
		r->hs_handed = rd->hard_state;
	attach_entries(r);
	rd->msgs = r->outbox;
	rd->msg_count = r->outbox_count;
	rd->reads = r->reads_done;
	rd->read_count = r->reads_done_count;
	rd->snapshot_want_count = raft_snapshot_wants(r);
	rd->snapshot_wants = rd->snapshot_want_count > 0 ? r->wants : NULL;
	if (r->install.chunk_pending) {
		rd->has_snapshot_chunk = true;
		rd->snapshot_chunk = r->install.chunk; /* valid until advance */
		r->install.chunk_pending = false;
	}
	rd->role = r->role;
	rd->term = r->term;
	rd->leader = r->leader;
	rd->soft_changed = r->soft_role != r->role || r->soft_term != r->term ||
			   r->soft_leader != r->leader;
	r->soft_role = r->role;
	r->soft_term = r->term;
	r->soft_leader = r->leader;
	r->hb_round_fresh = false; /* this round's heartbeats are now out */
	r->ready_pending = true;
}

void raft_advance(struct raft *r, const struct raft_ready *rd)
{
	KEEL_ASSERT(r->ready_pending);
	KEEL_ASSERT(rd->msg_count <= r->outbox_count);
	KEEL_ASSERT(rd->read_count <= r->reads_done_count);
	if (rd->committed_count > 0) {
		uint64_t last = rd->committed[rd->committed_count - 1].index;
		KEEL_ASSERT(last == r->applied + rd->committed_count);
		KEEL_ASSERT(last <= r->commit); /* I5 */
		r->applied = last;
	}
	/* raft_persisted() between ready and advance may have queued more. */
	r->outbox_count -= (uint32_t)rd->msg_count;
	memmove(r->outbox, r->outbox + rd->msg_count,
		r->outbox_count * sizeof(*r->outbox));
	r->reads_done_count -= (uint32_t)rd->read_count;
	memmove(r->reads_done, r->reads_done + rd->read_count,
		r->reads_done_count * sizeof(*r->reads_done));
	r->ready_pending = false;
	if (r->step_down_pending)
		raft_member_check_removed(r); /* M5, deferred by R1 */
	raft_check_invariants(r);
}

void raft_persisted(struct raft *r, uint64_t index, uint64_t term)
{
	/* Stale acks (the entry was replaced since, or never handed out) are
	 * ignored. */
	if (index > r->log.handed_index || index <= r->log.stable_index)
		return;
	if (raft_log_term(&r->log, index) != term)
		return;
	r->log.stable_index = index;
	KEEL_ASSERT(r->log.stable_index <= raft_log_last(&r->log)); /* I7 */
	if (r->role == RAFT_LEADER && index >= r->term_start_index)
		r->term_unsynced = false; /* E6 */
	if (r->role == RAFT_LEADER)
		raft_maybe_commit(r);
}
