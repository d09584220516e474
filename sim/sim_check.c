/*
 * sim_check.c: the cross-node safety checks, each its own failure reason.
 *
 *   (panic)          raft_check_invariants() on the node an event touched
 *                    (every event while its log is short, see
 *                    SIM_INVARIANT_ENTRIES; every event with --paranoid)
 *   two_leaders      at most one leader per term (every event)
 *   commit_changed   an index a node considers committed holds the term
 *                    first seen committed there (every apply, and in the
 *                    full check every node's newly committed indexes)
 *   log_matching     two logs with the same term at an index agree on every
 *                    earlier index (full check, every SIM_FULL_CHECK_EVENTS
 *                    events and at the end)
 *   applied_diverged the entries applied by all nodes are prefixes of one
 *                    sequence: compared by a hash of each entry and of the
 *                    state machine's results for it (every apply)
 *   ack_lost         an index whose write was acknowledged to a client was
 *                    later applied with other contents, or the healed
 *                    cluster's commit fell below it (end)
 *   state_diverged   nodes at the same applied index hold equal kv and
 *                    session state (mem_store digest, at the end)
 *   old_term_commit  a leader moves its commit index only to an entry of
 *                    its own term (Raft §5.4.2, figure 8; every event on a
 *                    leader)
 *   early_read       a leader releases a read index only once it has
 *                    committed an entry of its term (ReadIndex rule)
 *   read_no_quorum   ... and only once append responses from a quorum
 *                    (itself included) reached it after the read arrived
 *                    (the confirmation round; responses are observed on
 *                    delivery, so this is a necessary condition only)
 *   config_early     a leader appends a membership change only once an
 *                    entry of its term has committed (rule M2; every
 *                    leader write)
 *   removed_leader   a leader that is no voter of its committed
 *                    configuration steps down within an election timeout
 *                    of ticks (rule M5)
 *   state_diverged   (also) the state digest after an apply batch, or
 *                    found at a restart, equals the first one seen at that
 *                    applied index; snapshot_diverged: an install equals it
 *   stale_leader     a leader cut off by partitions from a quorum steps
 *                    down within SIM_CUT_LEADER_TICKS of its ticks
 *                    (check-quorum; clogs and loss are not counted as cut)
 *
 * Invariants of this module:
 *  K1 slots[i].hash, once set, never changes (it is what every node must
 *     apply at i).
 *  K2 leader_of_term[t], once set, never changes.
 */
#include <stdlib.h>
#include <string.h>

#include "../core/assert.h"
#include "../core/err.h"
#include "sim.h"

int sim_checks_init(struct sim_checks *c)
{
	memset(c, 0, sizeof(*c));
	return 0;
}

void sim_checks_free(struct sim_checks *c)
{
	free(c->leader_of_term);
	free(c->slots);
	memset(c, 0, sizeof(*c));
}

static bool grow(void **p, uint64_t *cap, uint64_t need, size_t elem,
		 uint64_t max)
{
	if (need < *cap)
		return true;
	if (need >= max)
		return false;
	uint64_t n = *cap ? *cap : 1024;
	while (n <= need)
		n *= 2;
	if (n > max)
		n = max;
	void *q = realloc(*p, n * elem);
	if (q == NULL)
		return false;
	memset((char *)q + *cap * elem, 0, (n - *cap) * elem);
	*p = q;
	*cap = n;
	return true;
}

static struct sim_slot *slot(struct sim *s, uint64_t index)
{
	struct sim_checks *c = &s->chk;
	if (!grow((void **)&c->slots, &c->slots_cap, index, sizeof(*c->slots),
		  SIM_LOG_MAX)) {
		sim_fail(s, "sim_limit", "log index %llu beyond what the checks track",
			 (unsigned long long)index);
		return NULL;
	}
	return &c->slots[index];
}

static void check_leader(struct sim *s, keel_node_id id, uint64_t term)
{
	struct sim_checks *c = &s->chk;
	if (!grow((void **)&c->leader_of_term, &c->terms_cap, term,
		  sizeof(*c->leader_of_term), SIM_TERMS_MAX)) {
		sim_fail(s, "sim_limit", "term %llu beyond what the checks track",
			 (unsigned long long)term);
		return;
	}
	keel_node_id *l = &c->leader_of_term[term];
	if (*l == KEEL_NODE_NONE)
		*l = id; /* K2 */
	else if (*l != id)
		sim_fail(s, "two_leaders", "term %llu has leaders n%llu and n%llu",
			 (unsigned long long)term, (unsigned long long)*l,
			 (unsigned long long)id);
}

static void check_commit_term(struct sim *s, struct sim_node *n, uint64_t i)
{
	uint64_t t = raft_term_at(n->raft, i);
	if (t == 0)
		return; /* compacted away */
	struct sim_slot *sl = slot(s, i);
	if (sl == NULL)
		return;
	if (sl->term == 0)
		sl->term = t;
	else if (sl->term != t)
		sim_fail(s, "commit_changed",
			 "n%u holds term %llu at committed index %llu; committed term is %llu",
			 (unsigned)n->id, (unsigned long long)t, (unsigned long long)i,
			 (unsigned long long)sl->term);
}

void sim_check_node(struct sim *s, struct sim_node *n)
{
	if (n->state != NODE_UP)
		return;
	if (s->opts.paranoid || n->invariant_countdown <= 1) {
		raft_check_invariants(n->raft);
		n->invariant_countdown = 1 + n->applied / SIM_INVARIANT_ENTRIES;
	} else {
		n->invariant_countdown--;
	}
	/* role and term as of the node's last ready (sim_node.c on_soft) */
	if (n->role != RAFT_LEADER)
		return;
	check_leader(s, n->id, n->term);
	struct raft_status st;
	raft_status(n->raft, &st);
	if (st.role != RAFT_LEADER || st.commit == n->lead_commit)
		return;
	uint64_t t = raft_term_at(n->raft, st.commit);
	if (t != st.term)
		sim_fail(s, "old_term_commit",
			 "n%u, leader of term %llu, advanced commit to %llu, an entry of term %llu",
			 (unsigned)n->id, (unsigned long long)st.term,
			 (unsigned long long)st.commit, (unsigned long long)t);
	n->lead_commit = st.commit;
}

void sim_check_read_released(struct sim *s, struct sim_node *n, uint64_t index,
			     uint64_t asked_ns)
{
	/* The quorum of the leader's configuration (raft.h: effective once
	 * appended); a leader that is no voter of it does not count itself. */
	struct raft_status st;
	raft_status(n->raft, &st);
	const struct membership *m = &st.membership;
	uint32_t voters = sim_voter_count(m);
	uint32_t heard = sim_is_voter(m, n->id) ? 1 : 0;
	for (uint32_t i = 0; i < m->member_count; i++) {
		const struct member *mb = &m->members[i];
		struct sim_node *p = sim_node_by_id(s, mb->id);
		if (mb->role == MEMBER_VOTER && mb->id != n->id && p != NULL &&
		    n->heard_ns[p->idx] >= asked_ns)
			heard++;
	}
	if (heard <= voters / 2)
		sim_fail(s, "read_no_quorum",
			 "n%u released read index %llu having heard from %u of %u voters since the read arrived",
			 (unsigned)n->id, (unsigned long long)index, heard, voters);
	if (st.role != RAFT_LEADER)
		return; /* released as leader, stepped down in the same ready */
	bool term_committed = st.commit > 0 && raft_term_at(n->raft, st.commit) == st.term;
	if (!term_committed || index > st.commit)
		sim_fail(s, "early_read",
			 "n%u released read index %llu in term %llu with commit %llu (term %llu)",
			 (unsigned)n->id, (unsigned long long)index,
			 (unsigned long long)st.term, (unsigned long long)st.commit,
			 (unsigned long long)raft_term_at(n->raft, st.commit));
}

void sim_check_config_append(struct sim *s, struct sim_node *n,
			     const struct entry *e)
{
	struct raft_status st;
	raft_status(n->raft, &st);
	uint64_t t = raft_term_at(n->raft, st.commit);
	if (st.role != RAFT_LEADER || t == 0)
		return; /* stepped down, or commit compacted away: unknown */
	if (t != st.term)
		sim_fail(s, "config_early",
			 "n%llu, leader of term %llu, appended a membership change at %llu with commit %llu (term %llu): no entry of its term committed yet",
			 (unsigned long long)n->id, (unsigned long long)st.term,
			 (unsigned long long)e->index, (unsigned long long)st.commit,
			 (unsigned long long)t);
}

/* M5 from outside: a leader that is no voter of its own configuration
 * steps down once that configuration is committed. */
static void check_removed_leader(struct sim *s, struct sim_node *n,
				 const struct raft_status *st)
{
	if (st->role != RAFT_LEADER || st->config_pending ||
	    sim_is_voter(&st->membership, n->id)) {
		n->removed_ticks = 0;
		return;
	}
	if (++n->removed_ticks > SIM_ELECTION_TICKS)
		sim_fail(s, "removed_leader",
			 "n%llu still leads term %llu %u ticks after a committed configuration without it as a voter",
			 (unsigned long long)n->id, (unsigned long long)st->term,
			 n->removed_ticks);
}

void sim_check_leader_tick(struct sim *s, struct sim_node *n)
{
	if (n->role != RAFT_LEADER) {
		n->cut_ticks = 0;
		n->removed_ticks = 0;
		return;
	}
	struct raft_status st;
	raft_status(n->raft, &st);
	const struct membership *cfg = &st.membership;
	check_removed_leader(s, n, &st);
	uint32_t voters = sim_voter_count(cfg);
	uint32_t reach = sim_is_voter(cfg, n->id) ? 1 : 0;
	for (uint32_t i = 0; i < cfg->member_count; i++) {
		const struct member *mb = &cfg->members[i];
		const struct sim_node *m = sim_node_by_id(s, mb->id);
		if (mb->role != MEMBER_VOTER || m == NULL || m == n ||
		    m->state != NODE_UP || m->paused)
			continue;
		uint32_t j = m->idx;
		if (!s->net.link[n->idx][j].blocked && !s->net.link[j][n->idx].blocked)
			reach++;
	}
	if (reach > voters / 2) {
		n->cut_ticks = 0;
		return;
	}
	if (++n->cut_ticks > SIM_CUT_LEADER_TICKS)
		sim_fail(s, "stale_leader",
			 "n%u still leads term %llu after %u ticks cut off from a quorum",
			 (unsigned)n->id, (unsigned long long)n->term, n->cut_ticks);
}

void sim_check_applied(struct sim *s, struct sim_node *n, const struct entry *e,
		       uint64_t hash)
{
	struct sim_slot *sl = slot(s, e->index);
	if (sl == NULL)
		return;
	if (hash == 0)
		hash = 1;
	if (sl->hash == 0) {
		sl->hash = hash; /* K1 */
		if (e->index > s->chk.applied_max)
			s->chk.applied_max = e->index;
		if (sl->term == 0)
			sl->term = e->term;
	} else if (sl->hash != hash) {
		sim_fail(s, sl->acked ? "ack_lost" : "applied_diverged",
			 "n%u applied index %llu (term %llu) differently from an earlier apply%s",
			 (unsigned)n->id, (unsigned long long)e->index,
			 (unsigned long long)e->term,
			 sl->acked ? "; a client was told it succeeded" : "");
	}
	if (sl->term != 0 && sl->term != e->term)
		sim_fail(s, "commit_changed", "n%u applied term %llu at index %llu; committed term %llu",
			 (unsigned)n->id, (unsigned long long)e->term,
			 (unsigned long long)e->index, (unsigned long long)sl->term);
}

void sim_check_acked(struct sim *s, uint64_t index)
{
	struct sim_slot *sl = slot(s, index);
	if (sl == NULL)
		return;
	sl->acked = true;
	if (index > s->chk.acked_max)
		s->chk.acked_max = index;
}

void sim_check_effect(struct sim *s, uint64_t client_id, uint64_t seq,
		      uint32_t status, bool duplicate)
{
	if (duplicate || status == KV_STALE_SEQ || client_id == 0 ||
	    client_id > s->client_count)
		return;
	struct sim_client *c = &s->clients[client_id - 1];
	if (!grow((void **)&c->effects, &c->effects_cap, seq, sizeof(*c->effects),
		  SIM_OPS_MAX + 1)) {
		sim_fail(s, "sim_limit", "session seq %llu beyond what the checks track",
			 (unsigned long long)seq);
		return;
	}
	struct sim_effect *e = &c->effects[seq];
	if (e->at_ns == 0) {
		e->at_ns = sim_now(s) > 0 ? sim_now(s) : 1;
		e->status = status;
	}
}

static void check_pair(struct sim *s, struct sim_node *a, struct sim_node *b)
{
	struct raft_status sa, sb;
	raft_status(a->raft, &sa);
	raft_status(b->raft, &sb);
	uint64_t hi = sa.last_index < sb.last_index ? sa.last_index : sb.last_index;
	uint64_t lo = sa.first_index > sb.first_index ? sa.first_index : sb.first_index;
	bool matched = false;
	for (uint64_t i = hi; i >= lo && i > 0; i--) {
		uint64_t ta = raft_term_at(a->raft, i), tb = raft_term_at(b->raft, i);
		if (ta == tb) {
			matched = true;
		} else if (matched) {
			sim_fail(s, "log_matching",
				 "n%u and n%u agree above index %llu but differ there (terms %llu, %llu)",
				 (unsigned)a->id, (unsigned)b->id, (unsigned long long)i,
				 (unsigned long long)ta, (unsigned long long)tb);
			return;
		}
	}
}

/* Committed indexes keep their term: incrementally from what this node
 * had checked (reset at restart), so each index is checked once per life. */
static void check_committed_prefix(struct sim *s, struct sim_node *n)
{
	struct raft_status st;
	raft_status(n->raft, &st);
	uint64_t from = n->commit_checked + 1;
	if (from < st.first_index)
		from = st.first_index;
	for (uint64_t i = from; i <= st.commit && s->fail_reason == NULL; i++)
		check_commit_term(s, n, i);
	if (st.commit > n->commit_checked)
		n->commit_checked = st.commit;
}

void sim_check_full(struct sim *s)
{
	uint32_t nn = s->slots;
	for (uint32_t a = 0; a < nn; a++) {
		if (s->nodes[a].state != NODE_UP)
			continue;
		check_committed_prefix(s, &s->nodes[a]);
		for (uint32_t b = a + 1; b < nn && s->fail_reason == NULL; b++)
			if (s->nodes[b].state == NODE_UP)
				check_pair(s, &s->nodes[a], &s->nodes[b]);
	}
	s->chk.events_since_full = 0;
}

void sim_check_final(struct sim *s)
{
	sim_check_full(s);
	if (s->fail_reason != NULL)
		return;
	uint64_t commit_max = 0, applied_max = 0;
	for (uint32_t i = 0; i < s->slots; i++) {
		struct sim_node *n = &s->nodes[i];
		if (n->state != NODE_UP)
			continue;
		struct raft_status st;
		raft_status(n->raft, &st);
		if (st.commit > commit_max)
			commit_max = st.commit;
		if (n->applied > applied_max)
			applied_max = n->applied;
	}
	if (commit_max < s->chk.applied_max)
		sim_fail(s, s->chk.acked_max > commit_max ? "ack_lost" : "committed_lost",
			 "the healed cluster commits through %llu, but index %llu was applied%s",
			 (unsigned long long)commit_max,
			 (unsigned long long)s->chk.applied_max,
			 s->chk.acked_max > commit_max ? " and acknowledged" : "");
	if (s->fail_reason != NULL)
		return;
	uint64_t digest = 0;
	int holder = -1;
	for (uint32_t i = 0; i < s->slots; i++) {
		struct sim_node *n = &s->nodes[i];
		if (n->state != NODE_UP || n->applied != applied_max)
			continue;
		uint64_t d = mem_store_digest(&n->ms);
		if (holder < 0) {
			digest = d;
			holder = (int)i;
		} else if (d != digest) {
			sim_fail(s, "state_diverged",
				 "n%llu and n%llu applied through %llu but hold different kv/session state",
				 (unsigned long long)s->nodes[holder].id,
				 (unsigned long long)n->id, (unsigned long long)applied_max);
			return;
		}
	}
}

/* The first digest recorded at index is the reference (0 is stored as 1:
 * 0 means none yet); false when digest differs from it. */
static bool state_matches(struct sim *s, uint64_t index, uint64_t digest)
{
	struct sim_slot *sl = slot(s, index);
	if (sl == NULL)
		return true;
	if (digest == 0)
		digest = 1;
	if (sl->state == 0)
		sl->state = digest;
	return sl->state == digest;
}

void sim_check_state_at(struct sim *s, struct sim_node *n, uint64_t index,
			uint64_t digest)
{
	if (!state_matches(s, index, digest))
		sim_fail(s, "state_diverged",
			 "n%llu holds a different kv/session state after applying through %llu than an earlier node did",
			 (unsigned long long)n->id, (unsigned long long)index);
}

void sim_check_installed(struct sim *s, struct sim_node *n, uint64_t index,
			 uint64_t digest)
{
	if (!state_matches(s, index, digest))
		sim_fail(s, "snapshot_diverged",
			 "n%llu installed a snapshot through %llu whose kv/session state differs from what was applied there",
			 (unsigned long long)n->id, (unsigned long long)index);
	if (index > s->chk.applied_max)
		s->chk.applied_max = index;
}
