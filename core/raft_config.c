/*
 * raft_config.c: the active membership and the leader's progress table.
 *
 * Invariants:
 *   C1 the active membership is decoded from the latest ENTRY_CONFIG entry
 *      in the log (appended, not necessarily committed) whose data decodes;
 *      with none, the snapshot's membership (or empty on a pristine node).
 *   C2 truncating a config entry reverts to the previous one (reload scans
 *      back from the end of the log).
 *   C3 on a leader, progress holds exactly the members other than self.
 *   C4 a node campaigns when it is a voter of its active membership, or
 *      when that membership removed it and is not committed yet (it was a
 *      voter of the one before): the removed leader of an uncommitted
 *      change may be the only node able to finish it (its log is the
 *      longest), so it must be able to win an election among the new
 *      voters and commit the change; it is safe because single-server
 *      changes make every majority of the old and the new voters overlap.
 */
#include <string.h>

#include "codec.h"
#include "raft_impl.h"

/* Snapshot membership is kept here so that reverting below every config
 * entry of the log restores it. */
static bool entry_membership(const struct entry *e, struct membership *m)
{
	if (e->type != ENTRY_CONFIG)
		return false;
	/* Entry data came from a peer: a malformed config is skipped, never
	 * asserted on. */
	return codec_membership_decode(e->data, e->data_bytes, m) == 0;
}

/* C4: whether self was a voter in the membership before entry index. */
static bool prev_voter(const struct raft *r, uint64_t index)
{
	const struct raft_log *l = &r->log;
	struct membership m;
	for (uint64_t i = index - 1; i > l->snapshot_index; i--)
		if (entry_membership(raft_log_get(l, i), &m))
			return raft_is_voter(&m, r->opt.id);
	return l->snapshot_index > 0 &&
	       raft_is_voter(&r->snapshot_membership, r->opt.id);
}

void raft_config_reload(struct raft *r)
{
	const struct raft_log *l = &r->log;
	uint64_t last = raft_log_last(l);
	struct membership m;
	for (uint64_t i = last; i > l->snapshot_index; i--) {
		if (entry_membership(raft_log_get(l, i), &m)) {
			r->membership = m;
			r->config_index = i;
			r->config_prev_voter = prev_voter(r, i);
			raft_progress_rebuild(r);
			return;
		}
	}
	r->config_prev_voter = false;
	/* None in the log: fall back to what the snapshot carried. Without a
	 * snapshot a pristine node knows no members. */
	r->config_index = 0;
	if (l->snapshot_index == 0)
		memset(&r->membership, 0, sizeof(r->membership));
	else
		r->membership = r->snapshot_membership;
	raft_progress_rebuild(r);
}

void raft_config_on_append(struct raft *r, const struct entry *e)
{
	KEEL_ASSERT(e->index == raft_log_last(&r->log));
	struct membership m;
	if (!entry_membership(e, &m))
		return;
	r->config_prev_voter = raft_self_voter(r); /* C4 */
	r->membership = m;
	r->config_index = e->index;
	raft_progress_rebuild(r);
	/* A node that may not campaign cannot stay a candidate (I1); a
	 * leader removed from the voters keeps leading until the change
	 * commits (M5). */
	if (!raft_may_campaign(r) &&
	    (r->role == RAFT_PRECANDIDATE || r->role == RAFT_CANDIDATE))
		raft_become_follower(r, r->term, KEEL_NODE_NONE);
}

struct raft_progress *raft_progress_find(struct raft *r, keel_node_id id)
{
	for (uint32_t i = 0; i < r->progress_count; i++)
		if (r->progress[i].id == id)
			return &r->progress[i];
	return NULL;
}

static void progress_init(struct raft *r, struct raft_progress *p,
			  const struct member *mb)
{
	memset(p, 0, sizeof(*p));
	p->id = mb->id;
	p->state = PROGRESS_PROBE;
	p->next = raft_log_last(&r->log) + 1;
}

/* Keep the progress of members that stay, add new ones, drop the rest. */
void raft_progress_rebuild(struct raft *r)
{
	struct raft_progress old[KEEL_MEMBERS_MAX];
	uint32_t old_count = r->progress_count;
	memcpy(old, r->progress, sizeof(old));
	r->progress_count = 0;
	const struct membership *m = &r->membership;
	for (uint32_t i = 0; i < m->member_count && i < KEEL_MEMBERS_MAX; i++) {
		const struct member *mb = &m->members[i];
		if (mb->id == r->opt.id)
			continue;
		struct raft_progress *p = &r->progress[r->progress_count++];
		bool found = false;
		for (uint32_t j = 0; j < old_count && !found; j++) {
			if (old[j].id == mb->id) {
				*p = old[j];
				found = true;
			}
		}
		if (!found)
			progress_init(r, p, mb);
		p->voter = mb->role == MEMBER_VOTER;
	}
	KEEL_ASSERT(r->progress_count <= KEEL_MEMBERS_MAX); /* C3 */
}

keel_node_id membership_next_id(const struct membership *m)
{
	if (m->next_id != 0)
		return m->next_id;
	keel_node_id max = 0;
	for (uint32_t i = 0; i < m->member_count && i < KEEL_MEMBERS_MAX; i++)
		if (m->members[i].id > max)
			max = m->members[i].id;
	return max + 1;
}

bool raft_self_voter(const struct raft *r)
{
	return raft_is_voter(&r->membership, r->opt.id);
}

bool raft_may_campaign(const struct raft *r)
{
	if (raft_self_voter(r))
		return true;
	return r->config_index > r->commit && r->config_prev_voter; /* C4 */
}

uint32_t raft_quorum(const struct raft *r)
{
	return raft_voter_count(&r->membership) / 2 + 1;
}
