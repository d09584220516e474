/*
 * raft_append.c: receiving appends (follower) and their responses (leader).
 * The rules are P1..P6 in raft_replication.c.
 *
 * Invariants:
 *   A1 a message's entries are checked before any is used (consecutive
 *      from prev_index + 1, terms non-decreasing, never above the message's
 *      term, known type, bounded size); a bad one is ignored.
 *   A2 a reject carries a hint (hint_index, hint_term): our last index at or
 *      below the rejected prev_index whose term is <= prev_term, so the
 *      leader can skip a whole term of conflicting entries per round trip.
 *   A3 stale responses (an older probe, an ack below match) never move the
 *      leader's view of a follower backwards below match; a rejection the
 *      leader can prove stale (reject_index <= match, or not the probe in
 *      flight) is ignored and sends nothing.
 */
#include "mutant.h"
#include "raft_impl.h"

/* ---- Follower ------------------------------------------------------------ */

bool raft_append_valid(const struct msg *m)
{
	const struct msg_append *a = &m->u.append;
	uint64_t prev_term = a->prev_term;
	if (a->entry_count > KEEL_APPEND_ENTRIES_MAX)
		return false;
	if (a->entry_count > 0 && a->entries == NULL)
		return false;
	if (a->prev_index > UINT64_MAX - KEEL_APPEND_ENTRIES_MAX)
		return false;
	if (a->prev_index > 0 && a->prev_term == 0)
		return false;
	for (uint32_t i = 0; i < a->entry_count; i++) {
		const struct entry *e = &a->entries[i];
		if (e->index != a->prev_index + 1 + i || e->term < prev_term ||
		    e->term > m->term || e->term == 0)
			return false;
		if (e->type < ENTRY_NOOP || e->type > ENTRY_CONFIG)
			return false;
		if (e->data_bytes > KEEL_ENTRY_BYTES_MAX ||
		    (e->data_bytes > 0 && e->data == NULL))
			return false;
		prev_term = e->term;
	}
	return a->prev_term <= m->term;
}

static void reply(struct raft *r, const struct msg *m, bool success,
		  uint64_t match)
{
	/* P3: an ack claims its match is durable here; one whose match is
	 * already stable (a heartbeat's) need not wait. A reject claims
	 * nothing. */
	bool after = success && match > r->log.stable_index;
	if (MUTANT(MUTANT_ACK_BEFORE_DURABLE))
		after = false;
	struct msg *out = raft_send(r, MSG_APPEND_RESP, m->from, after);
	struct msg_append_resp *resp = &out->u.append_resp;
	resp->success = success;
	resp->ctx = m->u.append.ctx;
	if (success) {
		resp->match_index = match;
		return;
	}
	uint64_t prev = m->u.append.prev_index;
	resp->reject_index = prev;
	resp->hint_index = raft_log_find_by_term(&r->log, prev, m->u.append.prev_term);
	resp->hint_term = raft_log_term(&r->log, resp->hint_index); /* A2 */
}

/* Remove our entries from index on (a real conflict, P1). */
static void truncate_from(struct raft *r, uint64_t index)
{
	KEEL_ASSERT(index > r->commit); /* P2 */
	KEEL_ASSERT(index > r->applied);
	bool config_gone = r->config_index >= index;
	raft_log_truncate(&r->log, index);
	if (config_gone)
		raft_config_reload(r); /* C2 */
}

/* Merge the entries after a passed consistency check; returns the last
 * index known to match the leader. */
static uint64_t merge_entries(struct raft *r, const struct msg_append *a)
{
	uint64_t matched = a->prev_index;
	bool conflict = false;
	for (uint32_t i = 0; i < a->entry_count; i++) {
		const struct entry *e = &a->entries[i];
		if (e->index <= raft_log_last(&r->log)) {
			if (raft_log_term(&r->log, e->index) == e->term) {
				matched = e->index; /* P1: a match is kept */
				continue;
			}
			truncate_from(r, e->index);
			conflict = true;
		}
		if (raft_log_append(&r->log, e) != 0)
			break; /* out of memory: ack what we hold */
		if (e->type == ENTRY_CONFIG)
			raft_config_on_append(r, e);
		matched = e->index;
	}
	if (MUTANT(MUTANT_TRUNCATE_NO_CONFLICT) && !conflict && a->entry_count > 0 &&
	    matched > r->commit && matched < raft_log_last(&r->log))
		truncate_from(r, matched + 1);
	return matched;
}

void raft_recv_append(struct raft *r, const struct msg *m)
{
	KEEL_ASSERT(m->term == r->term);
	KEEL_ASSERT(r->role == RAFT_FOLLOWER);
	const struct msg_append *a = &m->u.append;
	KEEL_ASSERT(raft_append_valid(m)); /* A1: raft_step checked */
	if (r->install.done) {
		raft_snapshot_refuse_append(r, m); /* N5 */
		return;
	}
	if (a->prev_index < r->commit) {
		/* Everything through commit matches every leader's log. */
		reply(r, m, true, r->commit);
		return;
	}
	if (a->prev_index > raft_log_last(&r->log) ||
	    raft_log_term(&r->log, a->prev_index) != a->prev_term) {
		reply(r, m, false, 0);
		return;
	}
	uint64_t matched = merge_entries(r, a);
	KEEL_ASSERT(matched >= a->prev_index);
	uint64_t commit = a->commit < matched ? a->commit : matched;
	if (commit > r->commit)
		r->commit = commit;
	KEEL_ASSERT(r->commit <= raft_log_last(&r->log)); /* I4 */
	reply(r, m, true, matched);
}

/* ---- Leader -------------------------------------------------------------- */

static void on_reject(struct raft *r, struct raft_progress *p,
		      const struct msg_append_resp *resp)
{
	if (resp->reject_index <= p->match)
		return; /* A3: stale in any state (a matched prev is never
			 * rejected again); answering would resend the probe */
	if (p->state == PROGRESS_PROBE && resp->reject_index + 1 != p->next)
		return; /* A3: answer to an older probe */
	uint64_t hint = resp->hint_index;
	if (resp->hint_term > 0)
		hint = raft_log_find_by_term(&r->log, resp->hint_index, resp->hint_term);
	uint64_t next = resp->reject_index;
	if (hint < UINT64_MAX && hint + 1 < next)
		next = hint + 1;
	if (next > raft_log_last(&r->log) + 1)
		next = raft_log_last(&r->log) + 1;
	if (next <= p->match)
		next = p->match + 1;
	p->state = PROGRESS_PROBE;
	p->next = next;
	p->paused = false;
	p->inflight_count = 0;
	p->inflight_head = 0;
	raft_send_appends(r, p);
}

static void on_success(struct raft *r, struct raft_progress *p,
		       const struct msg_append_resp *resp)
{
	if (resp->match_index > raft_log_last(&r->log))
		return; /* not something we sent */
	if (resp->match_index < p->match)
		return; /* A3: an old ack */
	if (resp->match_index == p->match && p->state == PROGRESS_REPLICATE)
		return; /* nothing new (a heartbeat ack) */
	p->match = resp->match_index;
	p->stall_ticks = 0;
	if (p->next <= p->match)
		p->next = p->match + 1;
	if (p->state == PROGRESS_PROBE) { /* found the match: pipeline */
		p->state = PROGRESS_REPLICATE;
		p->next = p->match + 1;
		p->inflight_count = 0;
		p->inflight_head = 0;
	}
	/* inflight ring: free what this ack covers */
	while (p->inflight_count > 0 && p->inflight[p->inflight_head] <= p->match) {
		p->inflight_head = (p->inflight_head + 1) % RAFT_INFLIGHT_MAX;
		p->inflight_count--;
	}
	KEEL_ASSERT(p->match < p->next); /* I8 */
	raft_maybe_commit(r);
	if (r->role != RAFT_LEADER)
		return; /* M5: the commit removed us */
	raft_transfer_check(r, p);
	raft_send_appends(r, p);
}

void raft_recv_append_resp(struct raft *r, const struct msg *m)
{
	KEEL_ASSERT(m->term == r->term);
	KEEL_ASSERT(r->role == RAFT_LEADER);
	struct raft_progress *p = raft_progress_find(r, m->from);
	if (p == NULL)
		return; /* not a member: ignore */
	const struct msg_append_resp *resp = &m->u.append_resp;
	if (resp->ctx > p->acked_round && resp->ctx <= r->hb_round)
		p->acked_round = resp->ctx;
	if (p->state == PROGRESS_SNAPSHOT)
		return; /* N1: the stream decides (heartbeat answers count above) */
	if (resp->success)
		on_success(r, p, resp);
	else
		on_reject(r, p, resp);
	raft_reads_release(r); /* a no-op unless still leader */
}
