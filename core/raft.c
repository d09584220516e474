/*
 * raft.c: Raft as a deterministic state machine: init, restore, bootstrap,
 * status and the whole-state check. The protocol lives in raft_election.c,
 * raft_replication.c, raft_append.c, raft_read.c and raft_transfer.c;
 * outputs in raft_ready.c; the log in raft_log.c; membership in
 * raft_config.c and its changes in raft_member.c; compaction in
 * raft_compact.c; snapshot streams and installs in raft_snapshot.c.
 *
 * Roles and transitions (function that makes each):
 *
 *   FOLLOWER --timeout, prevote on--> PRECANDIDATE   raft_campaign(prevote)
 *   FOLLOWER --timeout / TimeoutNow-> CANDIDATE      raft_campaign()
 *   PRECANDIDATE --quorum of pre-votes--> CANDIDATE  raft_campaign()
 *   CANDIDATE --quorum of votes--> LEADER            raft_become_leader()
 *   any --higher term / leader seen / lost quorum--> FOLLOWER
 *                                                    raft_become_follower()
 *
 * Invariants (the numbers are used in assertions):
 *   I1  role is one of the four; a node that is not a voter in its active
 *       membership never campaigns, unless that membership removed it and
 *       is uncommitted (raft_config.c C4); a leader that appended a config
 *       removing itself keeps leading until it commits (M5).
 *   I2  term never decreases; a vote, when set, was cast in `term`;
 *       candidates and leaders have voted for themselves in their term.
 *   I3  leader == self iff role == LEADER.
 *   I4  commit <= last log index, commit >= snapshot_index; commit never
 *       decreases. "Committed" means stored on a quorum of voters by a
 *       leader that counted replicas of an entry of its own term (§5.4.2).
 *   I5  applied <= commit and applied <= stable_index: entries are released
 *       for apply only once both committed and durable here.
 *   I6  the log is consecutive (L1), its terms never decrease (L2), and the
 *       last entry's term is <= term.
 *   I7  stable_index <= last, handed_index <= last (L3).
 *   I8  leader: one progress per other member; for each, match < next,
 *       match <= last, next <= last + 1, inflight_count <= the pipelining
 *       bound, probe state has nothing in flight.
 *   I9  leader: the entry at term_start_index is of the current term (the
 *       no-op appended on election).
 *   I10 only a leader has pending reads or a transfer target; pending and
 *       finished reads together stay <= RAFT_READS_PENDING_MAX.
 *   I11 the active membership is the latest ENTRY_CONFIG in the log
 *       (config_index), else the snapshot's.
 *   I12 durability before messages: a granted vote, a vote request and a
 *       successful append response leave only after the writes of the ready
 *       that carries them (after_persist) — raft_election.c, raft_replication.c.
 *   I13 outbox_count <= RAFT_OUTBOX_MAX.
 *   I14 snapshot_index <= applied <= commit: only applied entries are
 *       compacted (raft_compact.c K1), and an installed snapshot is applied.
 */
#include <string.h>

#include "codec.h"
#include "err.h"
#include "mutant.h"
#include "raft_impl.h"

_Static_assert(RAFT_READS_PENDING_MAX <= UINT32_MAX / 2, "read counters fit");

const char *raft_role_name(uint32_t role)
{
	switch (role) {
	case RAFT_FOLLOWER:
		return "follower";
	case RAFT_PRECANDIDATE:
		return "precandidate";
	case RAFT_CANDIDATE:
		return "candidate";
	case RAFT_LEADER:
		return "leader";
	default:
		return "unknown";
	}
}

void raft_options_default(struct raft_options *o, keel_node_id id, uint64_t seed)
{
	memset(o, 0, sizeof(*o));
	o->id = id;
	o->seed = seed;
	o->election_ticks = RAFT_ELECTION_TICKS_DEFAULT;
	o->heartbeat_ticks = RAFT_HEARTBEAT_TICKS_DEFAULT;
	o->prevote = true;
	o->check_quorum = true;
	o->inflight_appends_max = RAFT_INFLIGHT_APPENDS_MAX_DEFAULT;
	o->append_entries_max = KEEL_APPEND_ENTRIES_MAX;
	o->append_bytes_max = KEEL_APPEND_BYTES_MAX;
	o->uncommitted_bytes_max = RAFT_UNCOMMITTED_BYTES_MAX_DEFAULT;
	o->log_tail_entries = RAFT_LOG_TAIL_ENTRIES_DEFAULT;
	o->log_tail_bytes = RAFT_LOG_TAIL_BYTES_DEFAULT;
}

size_t raft_sizeof(void)
{
	return sizeof(struct raft);
}

bool raft_is_member(const struct membership *m, keel_node_id id)
{
	for (uint32_t i = 0; i < m->member_count && i < KEEL_MEMBERS_MAX; i++)
		if (m->members[i].id == id)
			return true;
	return false;
}

bool raft_is_voter(const struct membership *m, keel_node_id id)
{
	for (uint32_t i = 0; i < m->member_count && i < KEEL_MEMBERS_MAX; i++)
		if (m->members[i].id == id)
			return m->members[i].role == MEMBER_VOTER;
	return false;
}

uint32_t raft_voter_count(const struct membership *m)
{
	uint32_t n = 0;
	for (uint32_t i = 0; i < m->member_count && i < KEEL_MEMBERS_MAX; i++)
		n += m->members[i].role == MEMBER_VOTER;
	return n;
}

static bool options_valid(const struct raft_options *o)
{
	if (o->id == KEEL_NODE_NONE)
		return false;
	if (o->election_ticks < 2 || o->election_ticks > RAFT_ELECTION_TICKS_MAX)
		return false;
	if (o->heartbeat_ticks == 0 || o->heartbeat_ticks >= o->election_ticks)
		return false;
	if (o->inflight_appends_max == 0 ||
	    o->inflight_appends_max > RAFT_INFLIGHT_MAX)
		return false;
	if (o->append_entries_max == 0 ||
	    o->append_entries_max > KEEL_APPEND_ENTRIES_MAX)
		return false;
	if (o->append_bytes_max == 0 || o->append_bytes_max > KEEL_APPEND_BYTES_MAX)
		return false;
	return o->uncommitted_bytes_max > 0;
}

/* The restored log must be consecutive from snapshot_index + 1 with
 * non-decreasing terms no greater than the hard state's term. */
static bool restore_valid(const struct raft_restore *st)
{
	if (st->entry_count > 0 && st->entries == NULL)
		return false;
	if ((st->snapshot_index == 0) != (st->snapshot_term == 0))
		return false;
	if (st->snapshot_term > st->hard_state.term)
		return false;
	if (st->snapshot_index > 0 &&
	    codec_membership_validate(&st->snapshot_membership) != 0)
		return false;
	uint64_t prev_term = st->snapshot_term;
	for (size_t i = 0; i < st->entry_count; i++) {
		const struct entry *e = &st->entries[i];
		if (e->index != st->snapshot_index + 1 + i)
			return false;
		if (e->term < prev_term || e->term > st->hard_state.term)
			return false;
		if (e->type < ENTRY_NOOP || e->type > ENTRY_CONFIG)
			return false;
		if (e->data_bytes > KEEL_ENTRY_BYTES_MAX ||
		    (e->data_bytes > 0 && e->data == NULL))
			return false;
		prev_term = e->term;
	}
	uint64_t last = st->snapshot_index + st->entry_count;
	return st->applied_index <= last;
}

static int alloc_buffers(struct raft *r)
{
	const struct keel_alloc *a = &r->opt.alloc;
	r->outbox_cap = RAFT_OUTBOX_MIN;
	r->outbox = keel_malloc(a, r->outbox_cap * sizeof(*r->outbox));
	r->reads_pending =
		keel_malloc(a, RAFT_READS_PENDING_MAX * sizeof(*r->reads_pending));
	r->reads_done = keel_malloc(a, RAFT_READS_PENDING_MAX * sizeof(*r->reads_done));
	if (r->outbox == NULL || r->reads_pending == NULL || r->reads_done == NULL)
		return KEEL_ENOMEM;
	return 0;
}

static int restore_log(struct raft *r, const struct raft_restore *st)
{
	r->log.snapshot_index = st->snapshot_index;
	r->log.snapshot_term = st->snapshot_term;
	for (size_t i = 0; i < st->entry_count; i++) {
		int rc = raft_log_append(&r->log, &st->entries[i]);
		if (rc != 0)
			return rc;
	}
	r->log.stable_index = raft_log_last(&r->log);
	r->log.handed_index = raft_log_last(&r->log);
	if (st->snapshot_index > 0)
		r->snapshot_membership = st->snapshot_membership;
	raft_config_reload(r);
	return 0;
}

static void restore_hard_state(struct raft *r, const struct raft_restore *st)
{
	uint64_t last = raft_log_last(&r->log);
	r->term = st->hard_state.term;
	r->vote = st->hard_state.vote;
	/* A commit beyond what the store holds is only a stale hint: clamp. */
	r->commit = st->hard_state.commit < last ? st->hard_state.commit : last;
	if (r->commit < st->applied_index)
		r->commit = st->applied_index;
	if (r->commit < st->snapshot_index)
		r->commit = st->snapshot_index;
	r->applied = st->applied_index > st->snapshot_index ? st->applied_index
							     : st->snapshot_index;
	raft_hard_state(r, &r->hs_handed);
	r->hs_handed.commit = st->hard_state.commit;
}

int raft_init(struct raft *r, const struct raft_options *o,
	      const struct raft_restore *st)
{
	KEEL_ASSERT(r != NULL);
	KEEL_ASSERT(o != NULL);
	KEEL_ASSERT(st != NULL);
	memset(r, 0, sizeof(*r));
	if (!options_valid(o) || !restore_valid(st))
		return KEEL_EINVAL;
	r->opt = *o;
	r->prng = o->seed ^ (o->id * 0x9e3779b97f4a7c15ull);
	raft_log_init(&r->log, &r->opt.alloc);
	int rc = alloc_buffers(r);
	if (rc == 0)
		rc = restore_log(r, st);
	if (rc != 0) {
		raft_close(r);
		return rc;
	}
	restore_hard_state(r, st);
	r->role = RAFT_FOLLOWER;
	r->leader = KEEL_NODE_NONE;
	r->soft_role = r->role;
	r->soft_term = r->term;
	r->soft_leader = r->leader;
	raft_reset_election_timer(r);
	raft_check_invariants(r);
	return 0;
}

void raft_close(struct raft *r)
{
	raft_log_free(&r->log);
	keel_free(&r->opt.alloc, r->outbox);
	keel_free(&r->opt.alloc, r->reads_pending);
	keel_free(&r->opt.alloc, r->reads_done);
	keel_free(&r->opt.alloc, r->install.chunk_buf);
	r->install.chunk_buf = NULL;
	r->outbox = NULL;
	r->reads_pending = NULL;
	r->reads_done = NULL;
}

int raft_bootstrap(struct raft *r, const struct membership *m)
{
	KEEL_ASSERT(!r->ready_pending);
	if (r->term != 0 || raft_log_last(&r->log) != 0 || r->vote != KEEL_NODE_NONE)
		return KEEL_ESTATE;
	if (codec_membership_validate(m) != 0 || !raft_is_voter(m, r->opt.id))
		return KEEL_EINVAL;
	/* M4: ids of later members start above every initial one. */
	struct membership first = *m;
	first.next_id = membership_next_id(m);
	uint8_t buf[sizeof(struct membership) * 2];
	int n = codec_membership_encode(&first, buf, sizeof(buf));
	KEEL_ASSERT(n > 0);
	struct entry e = { .term = 1, .index = 1, .type = ENTRY_CONFIG,
			   .data_bytes = (uint32_t)n, .data = buf };
	int rc = raft_log_append(&r->log, &e);
	if (rc != 0)
		return rc;
	r->term = 1;
	/* Every initial voter bootstraps the same entry 1: it is committed. */
	r->commit = 1;
	raft_config_on_append(r, &e);
	KEEL_ASSERT(r->config_index == 1);
	raft_check_invariants(r);
	return 0;
}

void raft_status(const struct raft *r, struct raft_status *out)
{
	memset(out, 0, sizeof(*out));
	out->id = r->opt.id;
	out->role = r->role;
	out->term = r->term;
	out->leader = r->leader;
	out->vote = r->vote;
	out->commit = r->commit;
	out->applied = r->applied;
	out->first_index = raft_log_first(&r->log);
	out->last_index = raft_log_last(&r->log);
	out->stable_index = r->log.stable_index;
	out->snapshot_index = r->log.snapshot_index;
	out->installing = r->install.active;
	out->membership = r->membership;
	out->config_index = r->config_index;
	out->config_pending = r->config_index > r->commit;
}

uint64_t raft_term_at(const struct raft *r, uint64_t index)
{
	return raft_log_term(&r->log, index);
}

/* The whole-log shape (L1, L2) is kept by raft_log_append's asserts on
 * every append; here, per event, the first entry and a bounded tail (where
 * appends and truncations happen) are re-checked, so the check costs
 * O(RAFT_CHECK_TAIL) rather than O(log). */
#define RAFT_CHECK_TAIL 64u

static void check_log(const struct raft *r)
{
	const struct raft_log *l = &r->log;
	KEEL_ASSERT(l->count <= l->cap);
	if (l->count > 0) {
		KEEL_ASSERT(l->entries[0].index == l->snapshot_index + 1); /* L1 */
		KEEL_ASSERT(l->entries[0].term >= l->snapshot_term);       /* L2 */
	}
	size_t from = l->count > RAFT_CHECK_TAIL ? l->count - RAFT_CHECK_TAIL : 0;
	uint64_t prev_term = from > 0 ? l->entries[from - 1].term : l->snapshot_term;
	for (size_t i = from; i < l->count; i++) {
		const struct entry *e = &l->entries[i];
		KEEL_ASSERT(e->index == l->snapshot_index + 1 + i); /* I6, L1 */
		KEEL_ASSERT(e->term >= prev_term);                  /* I6, L2 */
		KEEL_ASSERT((e->data_bytes > 0) == (e->data != NULL)); /* L4 */
		prev_term = e->term;
	}
	KEEL_ASSERT(prev_term <= r->term);                        /* I6 */
	KEEL_ASSERT(l->stable_index <= raft_log_last(l));         /* I7 */
	KEEL_ASSERT(l->handed_index <= raft_log_last(l));         /* I7 */
}

static void check_progress(const struct raft *r)
{
	uint64_t last = raft_log_last(&r->log);
	for (uint32_t i = 0; i < r->progress_count; i++) {
		const struct raft_progress *p = &r->progress[i];
		KEEL_ASSERT(p->id != r->opt.id);                   /* I8 */
		KEEL_ASSERT(raft_is_member(&r->membership, p->id)); /* I8 */
		KEEL_ASSERT(p->match < p->next);                   /* I8 */
		KEEL_ASSERT(p->match <= last);                     /* I8 */
		KEEL_ASSERT(p->next <= last + 1);                  /* I8 */
		KEEL_ASSERT(p->inflight_count <= r->opt.inflight_appends_max);
		if (p->state == PROGRESS_PROBE)
			KEEL_ASSERT(p->inflight_count == 0);       /* I8 */
	}
	KEEL_ASSERT(r->progress_count + 1 >= r->membership.member_count);
}

static void check_roles(const struct raft *r)
{
	KEEL_ASSERT(r->role >= RAFT_FOLLOWER && r->role <= RAFT_LEADER); /* I1 */
	if (!raft_may_campaign(r))
		KEEL_ASSERT(r->role == RAFT_FOLLOWER ||
			    r->role == RAFT_LEADER);                     /* I1 */
	KEEL_ASSERT((r->leader == r->opt.id) == (r->role == RAFT_LEADER)); /* I3 */
	if (r->role == RAFT_CANDIDATE || r->role == RAFT_LEADER)
		KEEL_ASSERT(r->vote == r->opt.id);                       /* I2 */
	if (r->vote != KEEL_NODE_NONE)
		KEEL_ASSERT(r->term > 0);                                /* I2 */
	if (r->role != RAFT_LEADER) {
		KEEL_ASSERT(!r->term_unsynced);                          /* E6 */
		KEEL_ASSERT(r->reads_pending_count == 0);                /* I10 */
		KEEL_ASSERT(r->transfer_to == KEEL_NODE_NONE);           /* I10 */
	}
	KEEL_ASSERT(r->reads_pending_count + r->reads_done_count <=
		    RAFT_READS_PENDING_MAX);                              /* I10 */
	if (r->role == RAFT_LEADER && !raft_self_voter(r) &&
	    !MUTANT(MUTANT_REMOVED_LEADER_LEADS))
		KEEL_ASSERT(r->config_index > r->commit ||
			    r->step_down_pending);                        /* M5 */
	if (r->step_down_pending)
		KEEL_ASSERT(r->role == RAFT_LEADER && r->ready_pending);  /* M5 */
}

/* M1: a leader appends at most one config entry above commit, the active
 * one. (Configs of earlier terms may sit above a new leader's commit until
 * its no-op commits them; M2 keeps it from adding one before.) Checked
 * over a bounded tail like check_log. */
static void check_one_uncommitted_config(const struct raft *r)
{
	uint64_t last = raft_log_last(&r->log);
	uint64_t n = 0;
	for (uint64_t i = last; i > r->commit && n < RAFT_CHECK_TAIL; i--, n++) {
		const struct entry *e = raft_log_get(&r->log, i);
		if (e->term != r->term)
			break; /* terms never decrease along the log */
		if (e->type == ENTRY_CONFIG)
			KEEL_ASSERT(i == r->config_index); /* M1 */
	}
}

void raft_check_invariants(const struct raft *r)
{
	KEEL_ASSERT(r != NULL);
	check_roles(r);
	check_log(r);
	uint64_t last = raft_log_last(&r->log);
	KEEL_ASSERT(r->commit <= last);                     /* I4 */
	KEEL_ASSERT(r->commit >= r->log.snapshot_index);    /* I4 */
	KEEL_ASSERT(r->applied <= r->commit);               /* I5 */
	KEEL_ASSERT(r->applied <= r->log.stable_index ||
		    r->applied <= r->log.snapshot_index);   /* I5 */
	KEEL_ASSERT(r->applied >= r->log.snapshot_index);   /* I14 */
	KEEL_ASSERT(r->outbox_count <= r->outbox_cap);      /* I13 */
	KEEL_ASSERT(r->outbox_cap <= RAFT_OUTBOX_MAX);      /* I13 */
	if (r->config_index > 0) {                          /* I11 */
		KEEL_ASSERT(r->config_index <= last);
		KEEL_ASSERT(raft_log_get(&r->log, r->config_index)->type ==
			    ENTRY_CONFIG);
	}
	raft_snapshot_check(r);
	if (r->role == RAFT_LEADER) {
		check_progress(r);
		check_one_uncommitted_config(r);
		KEEL_ASSERT(raft_log_term(&r->log, r->term_start_index) == r->term ||
			    r->term_start_index <= r->log.snapshot_index); /* I9 */
	}
}
