/*
 * raft_step.c: the inputs: raft_step (term rules, then dispatch by type),
 * raft_tick and raft_propose.
 *
 * Invariants:
 *   S1 a message is never asserted on: anything the codec lets through (a
 *      stale term, a response from a non-member, an append beyond our log,
 *      a malformed snapshot chunk) is handled or ignored.
 *   S2 a higher term makes us a follower in that term before the message is
 *      handled, except a pre-vote request, a granted pre-vote answer, and a
 *      (pre)vote request ignored under the leader lease (E4).
 *   S3 a lower-term append or snapshot chunk is answered with our term so a
 *      stale leader steps down; a lower-term pre-vote is refused; other lower-term messages are
 *      dropped.
 */
#include "codec.h"
#include "err.h"
#include "mutant.h"
#include "raft_impl.h"

/* S2; returns false when the message is to be ignored. */
static bool step_higher_term(struct raft *r, const struct msg *m)
{
	bool vote_req = m->type == MSG_PREVOTE || m->type == MSG_VOTE;
	if (vote_req && !m->u.vote.transfer &&
	    (r->opt.check_quorum || m->type == MSG_PREVOTE) && raft_in_lease(r))
		return false; /* E4 */
	if (m->type == MSG_PREVOTE)
		return true;
	if (m->type == MSG_PREVOTE_RESP && m->u.vote_resp.granted)
		return true;
	bool from_leader = m->type == MSG_APPEND || m->type == MSG_SNAPSHOT;
	raft_become_follower(r, m->term, from_leader ? m->from : KEEL_NODE_NONE);
	return true;
}

/* S3 */
static void step_lower_term(struct raft *r, const struct msg *m)
{
	if (m->type == MSG_APPEND) {
		struct msg *out = raft_send(r, MSG_APPEND_RESP, m->from, false);
		out->u.append_resp.success = false;
		out->u.append_resp.reject_index = m->u.append.prev_index;
		out->u.append_resp.ctx = m->u.append.ctx;
	} else if (m->type == MSG_SNAPSHOT && m->u.snapshot.last_index > 0) {
		/* like an append: the stale leader learns our term */
		struct msg *out = raft_send(r, MSG_SNAPSHOT_RESP, m->from, false);
		out->u.snapshot_resp.last_index = m->u.snapshot.last_index;
	} else if (m->type == MSG_PREVOTE) {
		struct msg *out = raft_send(r, MSG_PREVOTE_RESP, m->from, false);
		out->u.vote_resp.granted = false;
	}
}

static void step_append(struct raft *r, const struct msg *m)
{
	if (r->role == RAFT_LEADER || !raft_append_valid(m))
		return; /* A1; two leaders in one term cannot happen: ignore */
	if (r->role != RAFT_FOLLOWER)
		raft_become_follower(r, r->term, m->from);
	r->leader = m->from;
	r->election_elapsed = 0;
	raft_recv_append(r, m);
}

static void dispatch(struct raft *r, const struct msg *m)
{
	switch (m->type) {
	case MSG_PREVOTE:
	case MSG_VOTE:
		raft_recv_vote(r, m);
		break;
	case MSG_PREVOTE_RESP:
	case MSG_VOTE_RESP:
		raft_recv_vote_resp(r, m);
		break;
	case MSG_APPEND:
		step_append(r, m);
		break;
	case MSG_APPEND_RESP:
		if (r->role == RAFT_LEADER)
			raft_recv_append_resp(r, m);
		break;
	case MSG_SNAPSHOT:
		raft_recv_snapshot(r, m);
		break;
	case MSG_SNAPSHOT_RESP:
		if (r->role == RAFT_LEADER)
			raft_recv_snapshot_resp(r, m);
		break;
	case MSG_TIMEOUT_NOW:
		raft_recv_timeout_now(r, m);
		break;
	default:
		break;
	}
}

int raft_step(struct raft *r, const struct msg *m)
{
	KEEL_ASSERT(!r->ready_pending); /* R1 */
	KEEL_ASSERT(m != NULL);
	if (m->to != r->opt.id)
		return KEEL_EINVAL;
	if (m->from == KEEL_NODE_NONE || m->from == r->opt.id || m->term == 0 ||
	    m->type < MSG_PREVOTE || m->type > MSG_TYPE_MAX)
		return 0; /* S1: nothing a correct peer sends */
	uint64_t term_before = r->term;
	if (m->term > r->term) {
		if (!step_higher_term(r, m))
			return 0;
	} else if (m->term < r->term) {
		step_lower_term(r, m);
		return 0;
	}
	dispatch(r, m);
	KEEL_ASSERT(r->term >= term_before); /* I2 */
	return 0;
}

void raft_tick(struct raft *r)
{
	KEEL_ASSERT(!r->ready_pending); /* R1 */
	if (r->role == RAFT_LEADER)
		raft_tick_leader(r);
	else
		raft_tick_election(r);
}

static int propose_check(struct raft *r, uint32_t type, const uint8_t *data,
			 uint32_t data_bytes)
{
	if (r->role != RAFT_LEADER)
		return KEEL_ENOTLEADER;
	if (r->transfer_to != KEEL_NODE_NONE)
		return KEEL_ESTATE;
	if (type != ENTRY_COMMAND && type != ENTRY_CONFIG)
		return KEEL_EINVAL;
	if (data_bytes > KEEL_ENTRY_BYTES_MAX)
		return KEEL_ETOOBIG;
	if (data_bytes > 0 && data == NULL)
		return KEEL_EINVAL;
	/* A single entry is always admitted when nothing is pending. */
	if (r->uncommitted_bytes > 0 &&
	    r->uncommitted_bytes + data_bytes > r->opt.uncommitted_bytes_max)
		return KEEL_EBUSY;
	if (type == ENTRY_CONFIG) {
		struct membership m;
		if (codec_membership_decode(data, data_bytes, &m) != 0)
			return KEEL_EINVAL;
		if (r->config_index > r->commit)
			return KEEL_ESTATE; /* M1: one change at a time */
		if (r->commit < r->term_start_index &&
		    !MUTANT(MUTANT_CONFIG_NO_TERM_COMMIT))
			return KEEL_ESTATE; /* M2 */
	}
	return 0;
}

int raft_propose(struct raft *r, uint32_t type, const uint8_t *data,
		 uint32_t data_bytes, uint64_t *index_out)
{
	KEEL_ASSERT(!r->ready_pending); /* R1 */
	KEEL_ASSERT(index_out != NULL);
	int rc = propose_check(r, type, data, data_bytes);
	if (rc != 0)
		return rc;
	uint64_t index = raft_log_last(&r->log) + 1;
	rc = raft_leader_append(r, type, data, data_bytes);
	if (rc != 0)
		return rc;
	KEEL_ASSERT(raft_log_term(&r->log, index) == r->term);
	*index_out = index;
	return 0;
}
