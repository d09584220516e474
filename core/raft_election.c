/*
 * raft_election.c: election timers, pre-vote, campaigns and votes.
 *
 * Invariants:
 *   E1 the election timeout is drawn from [E, 2E) by the node's own PRNG,
 *      seeded by options.seed (no other randomness anywhere).
 *   E2 a vote is granted only to a log at least as up to date as ours
 *      (§5.4.1), at most once per term, by a member (voter or learner: a
 *      learner may be a voter in the candidate's newer membership; E5
 *      decides what counts), or a node whose removal is uncommitted (C4); granted votes and
 *      vote requests leave after_persist (I12), so term and vote are durable
 *      before any vote leaves this node.
 *   E3 pre-vote changes no state: the term is bumped only once a quorum has
 *      granted the pre-vote.
 *   E4 a node that heard from a leader within an election timeout ignores
 *      (pre)vote requests for higher terms unless they come from a
 *      leadership transfer (raft_in_lease).
 *   E5 only votes from voters of the active membership are counted, each
 *      voter once.
 *   E6 a leader that won without asking anyone (a single voter) holds its
 *      appends (after_persist) until its no-op is durable: the hard state
 *      with its term went in the same or an earlier ready, so a crash cannot
 *      make it lead the same term twice with different entries (learners
 *      would otherwise keep the first incarnation's entries).
 */
#include "err.h"
#include "mutant.h"
#include "raft_impl.h"

/* splitmix64: small, fast, and good enough for timeout jitter. */
static uint64_t prng_next(struct raft *r)
{
	r->prng += 0x9e3779b97f4a7c15ull;
	uint64_t z = r->prng;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void raft_reset_election_timer(struct raft *r)
{
	uint32_t e = r->opt.election_ticks;
	KEEL_ASSERT(e >= 2);
	r->election_elapsed = 0;
	r->election_timeout = e + (uint32_t)(prng_next(r) % e); /* E1 */
	if (MUTANT(MUTANT_FIXED_ELECTION_TIMEOUT))
		r->election_timeout = e;
	KEEL_ASSERT(r->election_timeout >= e && r->election_timeout < 2 * e);
}

bool raft_in_lease(const struct raft *r)
{
	if (r->role == RAFT_LEADER)
		return true;
	return r->leader != KEEL_NODE_NONE &&
	       r->election_elapsed < r->opt.election_ticks;
}

void raft_become_follower(struct raft *r, uint64_t term, keel_node_id leader)
{
	KEEL_ASSERT(term >= r->term); /* I2 */
	KEEL_ASSERT(leader != r->opt.id);
	bool was_leader = r->role == RAFT_LEADER;
	if (term > r->term) {
		r->term = term;
		r->vote = KEEL_NODE_NONE;
		if (!r->install.done)
			raft_install_reset(r); /* a partial stream of an old leader */
	}
	r->role = RAFT_FOLLOWER;
	r->leader = leader;
	r->term_unsynced = false;
	r->step_down_pending = false;
	raft_reset_election_timer(r);
	if (was_leader) {
		raft_outbox_purge_appends(r); /* R2 */
		raft_reads_fail_all(r, KEEL_ELEADERSHIP);
		raft_transfer_abort(r);
	}
}

static void votes_reset(struct raft *r)
{
	r->granted_count = 0;
	r->rejected_count = 0;
}

static bool id_in(const keel_node_id *ids, uint32_t n, keel_node_id id)
{
	for (uint32_t i = 0; i < n; i++)
		if (ids[i] == id)
			return true;
	return false;
}

/* Record one answer (E5). Returns +1 won, -1 lost, 0 undecided. */
static int votes_record(struct raft *r, keel_node_id from, bool granted)
{
	if (raft_is_voter(&r->membership, from) &&
	    !id_in(r->granted, r->granted_count, from) &&
	    !id_in(r->rejected, r->rejected_count, from)) {
		KEEL_ASSERT(r->granted_count + r->rejected_count < KEEL_MEMBERS_MAX);
		if (granted)
			r->granted[r->granted_count++] = from;
		else
			r->rejected[r->rejected_count++] = from;
	}
	uint32_t q = raft_quorum(r);
	if (r->granted_count >= q)
		return 1;
	if (r->rejected_count >= q)
		return -1;
	return 0;
}

static void send_vote_requests(struct raft *r, bool prevote, bool transfer)
{
	const struct membership *mb = &r->membership;
	for (uint32_t i = 0; i < mb->member_count && i < KEEL_MEMBERS_MAX; i++) {
		const struct member *p = &mb->members[i];
		if (p->id == r->opt.id || p->role != MEMBER_VOTER)
			continue;
		/* E2: a candidate's own term and vote are durable first. */
		struct msg *m = raft_send(r, prevote ? MSG_PREVOTE : MSG_VOTE,
					  p->id, !prevote);
		m->term = prevote ? r->term + 1 : r->term;
		m->u.vote.last_log_index = raft_log_last(&r->log);
		m->u.vote.last_log_term = raft_log_last_term(&r->log);
		m->u.vote.transfer = transfer;
	}
}

void raft_campaign(struct raft *r, bool prevote, bool transfer)
{
	KEEL_ASSERT(raft_may_campaign(r)); /* I1 */
	KEEL_ASSERT(r->role != RAFT_LEADER);
	if (prevote) {
		r->role = RAFT_PRECANDIDATE; /* E3: term and vote untouched */
	} else {
		r->term++;
		r->vote = r->opt.id;
		r->role = RAFT_CANDIDATE;
	}
	r->leader = KEEL_NODE_NONE;
	raft_reset_election_timer(r);
	votes_reset(r);
	int outcome = votes_record(r, r->opt.id, true);
	if (outcome > 0) { /* a single voter wins at once */
		if (prevote) {
			raft_campaign(r, false, transfer);
		} else {
			/* E6: nobody saw our term yet; it may not be durable */
			r->term_unsynced = true;
			raft_become_leader(r);
		}
		return;
	}
	send_vote_requests(r, prevote, transfer);
}

void raft_tick_election(struct raft *r)
{
	KEEL_ASSERT(r->role != RAFT_LEADER);
	if (r->election_elapsed < UINT32_MAX)
		r->election_elapsed++;
	if (!raft_may_campaign(r)) /* learners and pristine nodes never do */
		return;
	if (r->install.done)
		return; /* N5: an install is under way */
	if (r->election_elapsed >= r->election_timeout)
		raft_campaign(r, r->opt.prevote, false);
}

static bool log_up_to_date(const struct raft *r, uint64_t index, uint64_t term)
{
	uint64_t last_term = raft_log_last_term(&r->log);
	return term > last_term ||
	       (term == last_term && index >= raft_log_last(&r->log));
}

/* MSG_VOTE at our term, or MSG_PREVOTE at or above it (raft_step sorted
 * out the terms and the lease). */
void raft_recv_vote(struct raft *r, const struct msg *m)
{
	bool prevote = m->type == MSG_PREVOTE;
	KEEL_ASSERT(prevote ? m->term >= r->term : m->term == r->term);
	bool can_vote = r->vote == m->from ||
			(r->vote == KEEL_NODE_NONE && r->leader == KEEL_NODE_NONE) ||
			(prevote && m->term > r->term);
	bool fresh = log_up_to_date(r, m->u.vote.last_log_index,
				    m->u.vote.last_log_term);
	if (MUTANT(MUTANT_VOTE_NO_LOG_CHECK))
		fresh = true;
	/* E2: a candidate counts only the voters of its membership, which
	 * may be newer than ours: a learner promoted by an entry it has not
	 * received must vote, or the new voters could never elect anyone. A
	 * node that knows no membership with itself in it (pristine, or a
	 * wiped disk) does not vote: its empty log would grant anyone. */
	bool member = raft_is_member(&r->membership, r->opt.id) ||
		      raft_may_campaign(r);
	bool grant = can_vote && fresh && member;
	if (grant && !prevote) {
		r->vote = m->from;
		raft_reset_election_timer(r);
	}
	bool after = grant && !prevote; /* E2, I12 */
	if (MUTANT(MUTANT_VOTE_BEFORE_DURABLE))
		after = false;
	struct msg *out = raft_send(r, prevote ? MSG_PREVOTE_RESP : MSG_VOTE_RESP,
				    m->from, after);
	out->term = grant && prevote ? m->term : r->term;
	out->u.vote_resp.granted = grant;
	if (grant && !prevote)
		KEEL_ASSERT(r->vote == m->from);
}

void raft_recv_vote_resp(struct raft *r, const struct msg *m)
{
	bool prevote = m->type == MSG_PREVOTE_RESP;
	if (r->role != (prevote ? RAFT_PRECANDIDATE : RAFT_CANDIDATE))
		return;
	bool granted = m->u.vote_resp.granted;
	uint64_t want = prevote && granted ? r->term + 1 : r->term;
	if (m->term != want)
		return; /* an answer to another campaign */
	int outcome = votes_record(r, m->from, granted);
	if (outcome < 0) {
		raft_become_follower(r, r->term, KEEL_NODE_NONE);
	} else if (outcome > 0) {
		if (prevote)
			raft_campaign(r, false, false);
		else
			raft_become_leader(r);
	}
}
