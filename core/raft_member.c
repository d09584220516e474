/*
 * raft_member.c: single-server membership changes (raft_change) and the
 * removed leader's step-down. Rules M1..M6 are listed in core/raft.h.
 *
 * Invariants:
 *   M1 on a leader, at most one ENTRY_CONFIG is above commit, and it is the
 *      active one (config_index).
 *   M4 every member id is below membership_next_id() of its membership; an
 *      added member's id is at least the previous next_id, so an id is
 *      never handed out twice, even after its member was removed.
 *   M5 a leader that is not a voter of its active membership holds an
 *      uncommitted config (the one that removed it), or has its step-down
 *      pending until the ready it committed under is advanced.
 */
#include <string.h>

#include "codec.h"
#include "err.h"
#include "mutant.h"
#include "raft_impl.h"

static int member_find(const struct membership *m, keel_node_id id)
{
	for (uint32_t i = 0; i < m->member_count && i < KEEL_MEMBERS_MAX; i++)
		if (m->members[i].id == id)
			return (int)i;
	return -1;
}

static bool addr_ok(const char *s)
{
	return memchr(s, 0, KEEL_ADDR_BYTES_MAX) != NULL;
}

/* The member already registered at peer_addr (nonempty), or -1. */
static int member_by_addr(const struct membership *m, const char *peer_addr)
{
	if (peer_addr[0] == '\0')
		return -1;
	for (uint32_t i = 0; i < m->member_count && i < KEEL_MEMBERS_MAX; i++)
		if (strcmp(m->members[i].peer_addr, peer_addr) == 0)
			return (int)i;
	return -1;
}

static int change_add(const struct raft *r, const struct member_change *c,
		      struct membership *m, keel_node_id *id)
{
	if (!addr_ok(c->peer_addr) || !addr_ok(c->client_addr))
		return KEEL_EINVAL;
	keel_node_id next = membership_next_id(m);
	keel_node_id add = c->id != KEEL_NODE_NONE ? c->id : next;
	if (member_find(m, add) >= 0)
		return KEEL_EEXIST;
	if (add < next)
		return KEEL_EEXIST; /* M4: an id below next_id was used before */
	if (add == UINT64_MAX)
		return KEEL_EINVAL; /* next_id would overflow */
	if (m->member_count >= KEEL_MEMBERS_MAX)
		return KEEL_ETOOBIG;
	struct member *x = &m->members[m->member_count++];
	memset(x, 0, sizeof(*x));
	x->id = add;
	x->role = MEMBER_LEARNER;
	memcpy(x->peer_addr, c->peer_addr, sizeof(x->peer_addr));
	memcpy(x->client_addr, c->client_addr, sizeof(x->client_addr));
	m->next_id = add + 1; /* M4 */
	(void)r;
	*id = add;
	return 0;
}

/* M6: caught up means replicating with match close to our last index. */
static bool caught_up(struct raft *r, keel_node_id id)
{
	const struct raft_progress *p = raft_progress_find(r, id);
	if (p == NULL || p->state != PROGRESS_REPLICATE)
		return false;
	return p->match + RAFT_PROMOTE_LAG_MAX >= raft_log_last(&r->log);
}

static int change_promote(struct raft *r, const struct member_change *c,
			  struct membership *m)
{
	int i = member_find(m, c->id);
	if (i < 0)
		return KEEL_ENOTFOUND;
	if (m->members[i].role == MEMBER_VOTER)
		return KEEL_EEXIST;
	if (!caught_up(r, c->id))
		return KEEL_ESTATE; /* M6 */
	m->members[i].role = MEMBER_VOTER; /* M3: one voter added */
	return 0;
}

static int change_remove(const struct member_change *c, struct membership *m)
{
	int i = member_find(m, c->id);
	if (i < 0)
		return KEEL_ENOTFOUND;
	if (m->members[i].role == MEMBER_VOTER && raft_voter_count(m) == 1)
		return KEEL_EINVAL; /* the last voter */
	memmove(&m->members[i], &m->members[i + 1],
		(m->member_count - (uint32_t)i - 1) * sizeof(m->members[0]));
	m->member_count--;
	memset(&m->members[m->member_count], 0, sizeof(m->members[0]));
	return 0;
}

/* M1, M2 and a transfer in progress: retry later. */
static int change_busy(const struct raft *r)
{
	if (r->config_index > r->commit)
		return KEEL_EBUSY; /* M1 */
	if (r->commit < r->term_start_index && !MUTANT(MUTANT_CONFIG_NO_TERM_COMMIT))
		return KEEL_EBUSY; /* M2 */
	if (r->transfer_to != KEEL_NODE_NONE)
		return KEEL_EBUSY;
	return 0;
}

int raft_change(struct raft *r, const struct member_change *c,
		uint64_t *index_out, keel_node_id *id_out)
{
	KEEL_ASSERT(!r->ready_pending); /* R1 */
	KEEL_ASSERT(c != NULL);
	KEEL_ASSERT(index_out != NULL);
	KEEL_ASSERT(id_out != NULL);
	if (r->role != RAFT_LEADER)
		return KEEL_ENOTLEADER;
	if (r->config_index > r->commit)
		return KEEL_EBUSY; /* M1 */
	struct membership m = r->membership;
	m.next_id = membership_next_id(&r->membership);
	if (c->kind == MEMBER_ADD_LEARNER && addr_ok(c->peer_addr)) {
		/* A joiner's retry: its add is committed (M1 passed). */
		int i = member_by_addr(&m, c->peer_addr);
		if (i >= 0) {
			*id_out = m.members[i].id;
			*index_out = 0;
			return 0;
		}
	}
	int rc = change_busy(r);
	if (rc != 0)
		return rc;
	keel_node_id id = c->id;
	switch (c->kind) {
	case MEMBER_ADD_LEARNER:
		rc = change_add(r, c, &m, &id);
		break;
	case MEMBER_PROMOTE:
		rc = change_promote(r, c, &m);
		break;
	case MEMBER_REMOVE:
		rc = change_remove(c, &m);
		break;
	default:
		rc = KEEL_EINVAL;
		break;
	}
	if (rc != 0)
		return rc;
	KEEL_ASSERT(codec_membership_validate(&m) == 0); /* M4 */
	uint8_t buf[sizeof(struct membership) * 2];
	int n = codec_membership_encode(&m, buf, sizeof(buf));
	KEEL_ASSERT(n > 0);
	uint64_t index = raft_log_last(&r->log) + 1;
	rc = raft_leader_append(r, ENTRY_CONFIG, buf, (uint32_t)n);
	if (rc != 0)
		return rc;
	KEEL_ASSERT(r->config_index == index); /* effective on append */
	*index_out = index;
	*id_out = id;
	return 0;
}

/* M5: called whenever a leader's commit moves. Stepping down changes the
 * outbox, which is frozen while a ready is out (R1): then it waits for
 * raft_advance. */
void raft_member_check_removed(struct raft *r)
{
	if (r->role != RAFT_LEADER || raft_self_voter(r) ||
	    r->config_index > r->commit)
		return;
	if (MUTANT(MUTANT_REMOVED_LEADER_LEADS))
		return;
	if (r->ready_pending) {
		r->step_down_pending = true;
		return;
	}
	r->step_down_pending = false;
	/* A follower that is not a voter never campaigns (I1). */
	raft_become_follower(r, r->term, KEEL_NODE_NONE);
}
