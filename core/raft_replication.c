/*
 * raft_replication.c: the leader's appends and heartbeats, the follower's
 * consistency check, and the commit rule.
 *
 * Invariants:
 *   P1 a follower appends only after the consistency check on
 *      (prev_index, prev_term) passes, and truncates only at an entry whose
 *      term differs from the leader's: an append whose entries all match
 *      (delayed, duplicated) never removes anything.
 *   P2 nothing at or below commit is ever truncated.
 *   P3 a successful append response leaves after_persist (I12): it claims
 *      its entries are durable here.
 *   P4 the leader counts itself toward commit only up to its stable index,
 *      and commits by counting replicas only an entry of its current term
 *      (§5.4.2, figure 8); earlier entries commit with it.
 *   P5 per follower, at most inflight_appends_max appends in flight in
 *      replicate state, one in probe state; each append carries at most
 *      append_entries_max entries and append_bytes_max bytes (but always at
 *      least one entry when there is one to send).
 *   P6 a heartbeat is an empty append at the follower's match index, with
 *      commit = min(leader commit, match), so it never moves a follower's
 *      commit beyond what is known to match.
 *   P7 with check_quorum, a leader steps down once a quorum of voters has
 *      not answered any heartbeat round started within the last election
 *      timeout (quorum_active).
 */
#include <string.h>

#include "err.h"
#include "mutant.h"
#include "raft_impl.h"

/* ---- Leader: sending ---------------------------------------------------- */

static void inflight_add(struct raft *r, struct raft_progress *p, uint64_t last)
{
	KEEL_ASSERT(p->inflight_count < r->opt.inflight_appends_max); /* P5 */
	uint32_t slot = (p->inflight_head + p->inflight_count) % RAFT_INFLIGHT_MAX;
	p->inflight[slot] = last;
	p->inflight_count++;
}

void raft_progress_probe(struct raft_progress *p, uint64_t next)
{
	KEEL_ASSERT(next > p->match);
	p->state = PROGRESS_PROBE;
	p->next = next;
	p->paused = false;
	p->inflight_count = 0;
	p->inflight_head = 0;
	p->stall_ticks = 0;
	memset(&p->snap, 0, sizeof(p->snap));
}

static bool append_blocked(const struct raft *r, const struct raft_progress *p)
{
	if (p->state == PROGRESS_PROBE)
		return p->paused;
	if (p->state == PROGRESS_SNAPSHOT)
		return true; /* N1: the stream moves through wants */
	return p->inflight_count >= r->opt.inflight_appends_max ||
	       p->next > raft_log_last(&r->log);
}

/* How many entries from p->next fit one append (P5). */
static uint32_t append_count(const struct raft *r, uint64_t next)
{
	uint64_t last = raft_log_last(&r->log);
	uint32_t count = 0;
	uint64_t bytes = 0;
	for (uint64_t i = next; i <= last && count < r->opt.append_entries_max; i++) {
		bytes += raft_log_get(&r->log, i)->data_bytes;
		if (count > 0 && bytes > r->opt.append_bytes_max)
			break;
		count++;
	}
	return count;
}

void raft_send_append(struct raft *r, struct raft_progress *p, bool heartbeat)
{
	KEEL_ASSERT(r->role == RAFT_LEADER);
	if (heartbeat) {
		uint64_t match = p->match;
		if (match > 0 && raft_log_term(&r->log, match) == 0)
			match = 0; /* below what we hold: a bare heartbeat */
		struct msg *m = raft_send(r, MSG_APPEND, p->id, r->term_unsynced);
		m->u.append.prev_index = match;
		m->u.append.prev_term = raft_log_term(&r->log, match);
		m->u.append.commit = match < r->commit ? match : r->commit; /* P6 */
		m->u.append.ctx = r->hb_round;
		return;
	}
	if (append_blocked(r, p) || raft_outbox_room(r) == 0)
		return;
	if (p->next <= r->log.snapshot_index) {
		raft_snapshot_start(r, p); /* its next entry was compacted */
		return;
	}
	struct msg *m = raft_send(r, MSG_APPEND, p->id, r->term_unsynced); /* E6 */
	struct msg_append *a = &m->u.append;
	a->prev_index = p->next - 1;
	a->prev_term = raft_log_term(&r->log, a->prev_index);
	KEEL_ASSERT(a->prev_term > 0 || a->prev_index == 0);
	a->commit = r->commit;
	a->ctx = r->hb_round;
	a->entry_count = append_count(r, p->next);
	/* entries are attached in raft_ready() (R2). */
	uint64_t sent_last = a->prev_index + a->entry_count;
	if (p->state == PROGRESS_PROBE) {
		p->paused = true;
	} else {
		KEEL_ASSERT(a->entry_count > 0);
		inflight_add(r, p, sent_last);
		p->next = sent_last + 1;
	}
}

/* Send p as many appends as its state allows (P5). */
void raft_send_appends(struct raft *r, struct raft_progress *p)
{
	for (uint32_t n = 0; n < RAFT_INFLIGHT_MAX && !append_blocked(r, p); n++) {
		if (raft_outbox_room(r) == 0)
			return;
		raft_send_append(r, p, false);
	}
}

void raft_bcast_append(struct raft *r)
{
	for (uint32_t i = 0; i < r->progress_count; i++)
		raft_send_appends(r, &r->progress[i]);
}

void raft_bcast_heartbeat(struct raft *r)
{
	KEEL_ASSERT(r->role == RAFT_LEADER);
	r->hb_round++;
	r->hb_round_fresh = true;
	for (uint32_t i = 0; i < r->progress_count; i++)
		raft_send_append(r, &r->progress[i], true);
}

/* ---- Leader: election, proposals, commit -------------------------------- */

int raft_leader_append(struct raft *r, uint32_t type, const uint8_t *data,
		       uint32_t data_bytes)
{
	KEEL_ASSERT(r->role == RAFT_LEADER);
	struct entry e = { .term = r->term, .index = raft_log_last(&r->log) + 1,
			   .type = type, .data_bytes = data_bytes, .data = data };
	int rc = raft_log_append(&r->log, &e);
	if (rc != 0)
		return rc;
	r->uncommitted_bytes += data_bytes;
	if (type == ENTRY_CONFIG)
		raft_config_on_append(r, &e);
	if (r->role == RAFT_LEADER)
		raft_bcast_append(r);
	return 0;
}

static uint64_t uncommitted_bytes(const struct raft *r)
{
	uint64_t bytes = 0;
	for (uint64_t i = r->commit + 1; i <= raft_log_last(&r->log); i++)
		bytes += raft_log_get(&r->log, i)->data_bytes;
	return bytes;
}

void raft_become_leader(struct raft *r)
{
	KEEL_ASSERT(r->role == RAFT_CANDIDATE);
	KEEL_ASSERT(r->vote == r->opt.id); /* I2 */
	r->role = RAFT_LEADER;
	r->leader = r->opt.id;
	r->heartbeat_elapsed = 0;
	r->lead_ticks = 0;
	r->round_mark_prev = r->hb_round;
	r->round_mark_cur = r->hb_round;
	r->transfer_to = KEEL_NODE_NONE;
	uint64_t last = raft_log_last(&r->log);
	for (uint32_t i = 0; i < r->progress_count; i++) {
		struct raft_progress *p = &r->progress[i];
		p->match = 0;
		p->acked_round = 0;
		raft_progress_probe(p, last + 1);
	}
	r->uncommitted_bytes = uncommitted_bytes(r);
	/* The no-op of this term: committing it commits everything before. */
	if (raft_leader_append(r, ENTRY_NOOP, NULL, 0) != 0) {
		raft_become_follower(r, r->term, KEEL_NODE_NONE);
		return;
	}
	r->term_start_index = last + 1;
	KEEL_ASSERT(raft_log_term(&r->log, r->term_start_index) == r->term); /* I9 */
}

static void sort_desc(uint64_t *v, uint32_t n)
{
	for (uint32_t i = 1; i < n; i++)
		for (uint32_t j = i; j > 0 && v[j - 1] < v[j]; j--) {
			uint64_t t = v[j];
			v[j] = v[j - 1];
			v[j - 1] = t;
		}
}

/* The value a quorum of voters has reached: self is given self_value. */
uint64_t raft_quorum_value(const struct raft *r, uint64_t self_value,
			   bool acked_rounds)
{
	uint64_t v[KEEL_MEMBERS_MAX];
	uint32_t n = 0;
	if (raft_self_voter(r))
		v[n++] = self_value;
	for (uint32_t i = 0; i < r->progress_count; i++)
		if (r->progress[i].voter)
			v[n++] = acked_rounds ? r->progress[i].acked_round
					      : r->progress[i].match;
	uint32_t q = raft_quorum(r);
	if (n < q)
		return 0;
	sort_desc(v, n);
	return v[q - 1];
}

void raft_maybe_commit(struct raft *r)
{
	KEEL_ASSERT(r->role == RAFT_LEADER);
	uint64_t n = raft_quorum_value(r, r->log.stable_index, false); /* P4 */
	if (n <= r->commit)
		return;
	bool ours = raft_log_term(&r->log, n) == r->term;
	if (!ours && !MUTANT(MUTANT_COMMIT_OLD_TERM))
		return; /* figure 8: wait for an entry of this term */
	for (uint64_t i = r->commit + 1; i <= n; i++) {
		uint32_t b = raft_log_get(&r->log, i)->data_bytes;
		r->uncommitted_bytes -= b <= r->uncommitted_bytes ? b : r->uncommitted_bytes;
	}
	r->commit = n;
	KEEL_ASSERT(r->commit <= raft_log_last(&r->log)); /* I4 */
	raft_reads_release(r);
	raft_member_check_removed(r); /* M5 */
}

/* ---- Leader: ticks ------------------------------------------------------ */

/*
 * Check-quorum (P7): a voter counts as active while it has answered a
 * heartbeat round (append ctx) that started at most an election timeout ago,
 * so answers it sends late (slow disk, delayed or duplicated packets) to old
 * rounds do not keep a cut-off leader in place. Round marks are taken every
 * half election timeout; a round newer than the mark taken two half-windows
 * ago started less than one election timeout ago. A new leader gets one
 * election timeout of grace.
 */
static bool quorum_active(struct raft *r)
{
	uint32_t half = r->opt.election_ticks / 2 > 0 ? r->opt.election_ticks / 2 : 1;
	if (r->lead_ticks < UINT32_MAX)
		r->lead_ticks++;
	if (r->lead_ticks % half == 0) {
		r->round_mark_prev = r->round_mark_cur;
		r->round_mark_cur = r->hb_round;
	}
	KEEL_ASSERT(r->round_mark_prev <= r->round_mark_cur);
	if (r->lead_ticks < r->opt.election_ticks)
		return true;
	uint32_t active = raft_self_voter(r) ? 1 : 0;
	for (uint32_t i = 0; i < r->progress_count; i++) {
		const struct raft_progress *p = &r->progress[i];
		active += p->voter && p->acked_round > r->round_mark_prev;
	}
	return active >= raft_quorum(r);
}

/* A replicate-state follower that stops making progress while behind lost
 * an append: fall back to probing from its match. */
static void detect_stalls(struct raft *r)
{
	uint32_t limit = r->opt.election_ticks / 2 > 2 ? r->opt.election_ticks / 2 : 2;
	uint64_t last = raft_log_last(&r->log);
	for (uint32_t i = 0; i < r->progress_count; i++) {
		struct raft_progress *p = &r->progress[i];
		if (p->state != PROGRESS_REPLICATE || p->match >= last) {
			p->stall_ticks = 0;
			continue;
		}
		if (++p->stall_ticks >= limit) {
			raft_progress_probe(p, p->match + 1);
			raft_send_append(r, p, false);
		}
	}
}

void raft_tick_leader(struct raft *r)
{
	KEEL_ASSERT(r->role == RAFT_LEADER);
	bool ok = quorum_active(r);
	if (r->opt.check_quorum && !ok && !MUTANT(MUTANT_NO_CHECK_QUORUM)) {
		raft_become_follower(r, r->term, KEEL_NODE_NONE);
		return;
	}
	if (r->transfer_to != KEEL_NODE_NONE &&
	    ++r->transfer_elapsed >= r->opt.election_ticks)
		raft_transfer_abort(r);
	if (++r->heartbeat_elapsed >= r->opt.heartbeat_ticks) {
		r->heartbeat_elapsed = 0;
		raft_bcast_heartbeat(r);
		for (uint32_t i = 0; i < r->progress_count; i++)
			if (r->progress[i].state == PROGRESS_PROBE)
				r->progress[i].paused = false;
		raft_bcast_append(r);
	}
	detect_stalls(r);
	raft_snapshot_tick(r);
}
