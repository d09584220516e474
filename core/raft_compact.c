/*
 * raft_compact.c: log compaction: the policy (raft_compact_index), the
 * state a compaction point records (raft_state_at) and the cut itself
 * (raft_compact).
 *
 * Invariants:
 *   K1 only entries that are applied and durable here are compacted:
 *      snapshot_index <= min(applied, stable_index) <= commit.
 *   K2 the snapshot membership is the membership as of snapshot_index, so
 *      reloading the config after a cut (or at restart) gives the same
 *      active membership as before it.
 *   K3 the policy keeps a tail of applied entries (options.log_tail_*)
 *      so that a follower a little behind is caught up from the log.
 */
#include <string.h>

#include "codec.h"
#include "err.h"
#include "raft_impl.h"

/* Compaction starts once the applied part of the log exceeds this many
 * tails, in entries or in bytes (raft.h). */
#define COMPACT_TAILS_TRIGGER 2u

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

uint64_t raft_compact_index(const struct raft *r, uint64_t durable_applied)
{
	const struct raft_log *l = &r->log;
	uint64_t bound = min_u64(durable_applied,
				 min_u64(l->stable_index, r->applied)); /* K1 */
	bound = min_u64(bound, raft_snapshot_streams_floor(r)); /* N6 */
	if (bound <= l->snapshot_index)
		return 0;
	uint64_t tail_entries = r->opt.log_tail_entries;
	uint64_t tail_bytes = r->opt.log_tail_bytes;
	if (tail_entries == 0 || tail_bytes == 0)
		return bound; /* no tail kept: compact whatever is applied */
	bool trigger = bound - l->snapshot_index > COMPACT_TAILS_TRIGGER * tail_entries;
	/* Walk back from bound: the kept tail ends once it holds tail_entries
	 * entries or tail_bytes bytes (K3). Without the entry trigger the walk
	 * is at most 2 * tail_entries long; with it, at most tail_entries. */
	uint64_t kept_count = 0, kept_bytes = 0, total_bytes = 0;
	uint64_t cut = 0;
	bool found = false;
	for (uint64_t i = bound; i > l->snapshot_index; i--) {
		uint32_t b = raft_log_get(l, i)->data_bytes;
		total_bytes += b;
		if (!found) {
			kept_count++;
			kept_bytes += b;
			found = kept_count >= tail_entries || kept_bytes >= tail_bytes;
			cut = i - 1;
		}
		if (total_bytes > COMPACT_TAILS_TRIGGER * tail_bytes)
			trigger = true;
		if (found && trigger)
			break;
	}
	if (!found || !trigger || cut <= l->snapshot_index)
		return 0;
	KEEL_ASSERT(cut < bound);
	return cut;
}

/* The latest config entry in snapshot_index+1 .. index that decodes, else
 * the snapshot's membership (K2). */
static void membership_at(const struct raft *r, uint64_t index,
			  struct membership *m)
{
	const struct raft_log *l = &r->log;
	if (r->config_index <= index) {
		*m = r->membership; /* nothing newer than index set it */
		return;
	}
	for (uint64_t i = index; i > l->snapshot_index; i--) {
		const struct entry *e = raft_log_get(l, i);
		if (e->type == ENTRY_CONFIG &&
		    codec_membership_decode(e->data, e->data_bytes, m) == 0)
			return;
	}
	if (l->snapshot_index == 0)
		memset(m, 0, sizeof(*m));
	else
		*m = r->snapshot_membership;
}

int raft_state_at(const struct raft *r, uint64_t index, uint64_t *term,
		  struct membership *m)
{
	KEEL_ASSERT(term != NULL);
	KEEL_ASSERT(m != NULL);
	if (index < r->log.snapshot_index)
		return KEEL_ECOMPACTED;
	if (index > raft_log_last(&r->log))
		return KEEL_ENOTFOUND;
	*term = raft_log_term(&r->log, index);
	membership_at(r, index, m);
	return 0;
}

/* Leader: an append queued since the last ready whose entries were just
 * compacted cannot be sent (R2). Drop it and make its follower probe again
 * from its match; one that needs a compacted entry gets a snapshot. */
static void drop_compacted_appends(struct raft *r, uint64_t index)
{
	uint32_t kept = 0;
	for (uint32_t i = 0; i < r->outbox_count; i++) {
		const struct msg *m = &r->outbox[i].msg;
		if (m->type == MSG_APPEND && m->u.append.entry_count > 0 &&
		    m->u.append.prev_index + 1 <= index) {
			struct raft_progress *p = raft_progress_find(r, m->to);
			if (p != NULL && p->state != PROGRESS_SNAPSHOT)
				raft_progress_probe(p, p->match + 1);
			continue;
		}
		r->outbox[kept++] = r->outbox[i];
	}
	r->outbox_count = kept;
}

int raft_compact(struct raft *r, uint64_t index)
{
	KEEL_ASSERT(!r->ready_pending); /* R1: the log array moves */
	struct raft_log *l = &r->log;
	if (index <= l->snapshot_index ||
	    index > min_u64(r->applied, l->stable_index))
		return KEEL_EINVAL; /* K1 */
	uint64_t term = 0;
	struct membership m;
	int rc = raft_state_at(r, index, &term, &m);
	KEEL_ASSERT(rc == 0);
	KEEL_ASSERT(term > 0);
	r->snapshot_membership = m; /* K2 */
	raft_log_compact(l, index, term);
	if (r->config_index <= index) {
		r->config_index = 0; /* now the snapshot's */
		r->config_prev_voter = false;
	}
	if (r->role == RAFT_LEADER) {
		drop_compacted_appends(r, index);
		raft_bcast_append(r);
	}
	KEEL_ASSERT(r->commit >= l->snapshot_index); /* I4 */
	raft_check_invariants(r);
	return 0;
}
