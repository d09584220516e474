/*
 * raft_transfer.c: leadership transfer (TimeoutNow).
 *
 * Invariants:
 *   T1 only a leader has a transfer target, and only a voter other than
 *      itself; proposals fail with KEEL_ESTATE while it is set.
 *   T2 TimeoutNow is sent only once the target's match reaches the leader's
 *      last index (it is caught up, so it can win the election).
 *   T3 a transfer that has not finished within an election timeout is
 *      aborted (raft_tick_leader), and stepping down aborts it.
 */
#include "err.h"
#include "raft_impl.h"

int raft_transfer_leader(struct raft *r, keel_node_id to)
{
	KEEL_ASSERT(!r->ready_pending); /* R1 */
	if (r->role != RAFT_LEADER)
		return KEEL_ENOTLEADER;
	if (to == r->opt.id || !raft_is_voter(&r->membership, to))
		return KEEL_EINVAL; /* T1 */
	struct raft_progress *p = raft_progress_find(r, to);
	KEEL_ASSERT(p != NULL); /* C3: every other member has a progress */
	r->transfer_to = to;
	r->transfer_elapsed = 0;
	raft_transfer_check(r, p);
	if (r->transfer_to != KEEL_NODE_NONE)
		raft_send_appends(r, p);
	return 0;
}

void raft_transfer_check(struct raft *r, struct raft_progress *p)
{
	KEEL_ASSERT(r->role == RAFT_LEADER);
	if (r->transfer_to != p->id || p->match != raft_log_last(&r->log))
		return; /* T2 */
	(void)raft_send(r, MSG_TIMEOUT_NOW, p->id, false);
}

void raft_transfer_abort(struct raft *r)
{
	r->transfer_to = KEEL_NODE_NONE;
	r->transfer_elapsed = 0;
}

void raft_recv_timeout_now(struct raft *r, const struct msg *m)
{
	KEEL_ASSERT(m->term == r->term);
	if (r->role == RAFT_LEADER || !raft_may_campaign(r) || r->install.done)
		return;
	raft_campaign(r, false, true); /* skips pre-vote, ignores leases */
}
