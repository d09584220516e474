/*
 * sim_admin.c: the membership admin of the `member` profile (and of swarm
 * seeds that draw it): under faults it adds learners, promotes them once
 * caught up, and removes voters and learners, the leader and partitioned
 * nodes included, through raft_change() on whichever node leads, as an
 * operator with keelctl would.
 *
 * Joining works like `keel --join`: the admin asks the leader to add a
 * learner whose peer_addr names a spare slot (SIM_ADMIN_ADDR_FMT, slot and
 * incarnation); the new node's id is read from the committed configuration
 * that holds that address, never guessed, and only then does the slot start
 * an empty node with that id. Asking again with the same address is safe
 * (raft_change answers with the existing member), so the admin simply
 * retries until the add is committed.
 *
 * Invariants:
 *  A1 A slot starts a joiner only for a member of the latest committed
 *     configuration (struct sim.cfg, from applied config entries).
 *  A2 A node is stopped only when the latest committed configuration no
 *     longer holds it, and only SIM_ADMIN_STOP_NS after that was seen (so
 *     a removed leader has time to step down, or not: removed_leader).
 *  A3 The admin never asks to remove the last voter or a member whose
 *     node it has not started; at most one join is pending at a time.
 *  A4 No new change is asked for after the heal (pending joins and stops
 *     still complete), so the liveness phase sees a stable configuration.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/assert.h"
#include "../core/err.h"
#include "../io_sim/panic_ctx.h"
#include "sim.h"

/* A removed node keeps running this long before it is stopped. */
#define SIM_ADMIN_STOP_NS (2 * SIM_S)
/* A new leader is asked for a change within this delay (M2's window). */
#define SIM_ADMIN_HOOK_NS (2 * SIM_MS)

struct sim_admin {
	bool joining;               /* a join is pending (A3) */
	uint32_t join_slot;
	char join_addr[KEEL_ADDR_BYTES_MAX];
	uint64_t removed_ns[SIM_NODES_MAX]; /* when seen removed (A2); 0: not */
};

#define ATRACE(s, ...)                                                       \
	do {                                                                 \
		if ((s)->trace.f)                                            \
			simtrace_text(&(s)->trace, sim_now(s), "admin", __VA_ARGS__); \
	} while (0)

static void schedule_next(struct sim *s)
{
	uint64_t mean = s->faults.admin_mean_ns;
	uint64_t d = simrng_exp(&s->rng_faults, mean, 10 * mean) + 1;
	sim_schedule(s, sim_now(s) + d, EV_ADMIN, 0, 0, NULL);
}

int sim_admin_init(struct sim *s)
{
	s->admin = calloc(1, sizeof(*s->admin));
	if (s->admin == NULL)
		return KEEL_ENOMEM;
	schedule_next(s);
	return 0;
}

void sim_admin_free(struct sim *s)
{
	free(s->admin);
	s->admin = NULL;
}

static const struct member *member_by_addr(const struct membership *m,
					   const char *addr)
{
	for (uint32_t i = 0; i < m->member_count; i++)
		if (strcmp(m->members[i].peer_addr, addr) == 0)
			return &m->members[i];
	return NULL;
}

/* A1, A2: start the joiner whose add committed; stop removed nodes. */
static void reconcile(struct sim *s)
{
	struct sim_admin *a = s->admin;
	if (a->joining) {
		const struct member *mb = member_by_addr(&s->cfg, a->join_addr);
		if (mb != NULL) {
			a->joining = false;
			ATRACE(s, "n%llu joined (config %llu): starting slot %u",
			       (unsigned long long)mb->id,
			       (unsigned long long)s->cfg_index, a->join_slot);
			sim_node_join(s, &s->nodes[a->join_slot], mb->id);
		}
	}
	for (uint32_t i = 0; i < s->slots; i++) {
		struct sim_node *n = &s->nodes[i];
		if (n->state == NODE_OFF || sim_is_member(&s->cfg, n->id)) {
			a->removed_ns[i] = 0;
			continue;
		}
		if (a->removed_ns[i] == 0) {
			a->removed_ns[i] = sim_now(s);
			ATRACE(s, "n%llu removed (config %llu); stops in %llums",
			       (unsigned long long)n->id,
			       (unsigned long long)s->cfg_index,
			       (unsigned long long)(SIM_ADMIN_STOP_NS / SIM_MS));
		} else if (sim_now(s) >= a->removed_ns[i] + SIM_ADMIN_STOP_NS) {
			a->removed_ns[i] = 0;
			sim_node_stop(s, n);
		}
	}
}

static struct sim_node *find_leader(struct sim *s)
{
	struct sim_node *best = NULL;
	for (uint32_t i = 0; i < s->slots; i++) {
		struct sim_node *n = &s->nodes[i];
		if (n->state == NODE_UP && n->role == RAFT_LEADER &&
		    !sim_node_busy(n, sim_now(s)) &&
		    (best == NULL || n->term > best->term))
			best = n;
	}
	return best;
}

static int free_slot(struct sim *s)
{
	uint32_t start = (uint32_t)simrng_below(&s->rng_faults, s->slots);
	for (uint32_t k = 0; k < s->slots; k++) {
		uint32_t i = (start + k) % s->slots;
		if (s->nodes[i].state == NODE_OFF && s->admin->removed_ns[i] == 0)
			return (int)i;
	}
	return -1;
}

/* A member to remove (A3): a node that is down or cut off from the leader
 * (what an operator removes), the leader itself, or any started member;
 * never the last voter. 0 if none. */
static keel_node_id pick_removal(struct sim *s, struct sim_node *l,
				 const struct membership *m)
{
	struct simrng *r = &s->rng_faults;
	uint32_t voters = sim_voter_count(m);
	keel_node_id cand[KEEL_MEMBERS_MAX], cut[KEEL_MEMBERS_MAX];
	uint32_t nc = 0, ncut = 0;
	for (uint32_t i = 0; i < m->member_count; i++) {
		const struct member *mb = &m->members[i];
		struct sim_node *n = sim_node_by_id(s, mb->id);
		if (n == NULL || (mb->role == MEMBER_VOTER && voters <= 1))
			continue;
		cand[nc++] = mb->id;
		if (n != l && (n->state != NODE_UP ||
			       s->net.link[l->idx][n->idx].blocked ||
			       s->net.link[n->idx][l->idx].blocked))
			cut[ncut++] = mb->id; /* crashed or cut off from l */
	}
	if (nc == 0)
		return KEEL_NODE_NONE;
	uint32_t dice = (uint32_t)simrng_below(r, 10);
	if (dice < 4 && ncut > 0)
		return cut[simrng_below(r, ncut)];
	/* The leader may remove itself, unless it is the last voter (a
	 * removed leader that loses leadership before its removal commits
	 * still campaigns and votes: raft_config.c C4). */
	bool self_ok = !sim_is_voter(m, l->id) || voters >= 2;
	if (dice < 5 && sim_is_member(m, l->id) && self_ok)
		return l->id;
	keel_node_id id = cand[simrng_below(r, nc)];
	return id == l->id && !self_ok ? KEEL_NODE_NONE : id;
}

static keel_node_id pick_learner(struct sim *s, const struct membership *m)
{
	keel_node_id cand[KEEL_MEMBERS_MAX];
	uint32_t nc = 0;
	for (uint32_t i = 0; i < m->member_count; i++)
		if (m->members[i].role == MEMBER_LEARNER &&
		    sim_node_by_id(s, m->members[i].id) != NULL)
			cand[nc++] = m->members[i].id;
	return nc ? cand[simrng_below(&s->rng_faults, nc)] : KEEL_NODE_NONE;
}

/* Choose the next change for leader l, as seen in its configuration.
 * Returns false when there is nothing to do. */
static bool choose(struct sim *s, struct sim_node *l, struct member_change *c,
		   bool targeted)
{
	struct sim_admin *a = s->admin;
	struct raft_status st;
	raft_status(l->raft, &st);
	const struct membership *m = &st.membership;
	memset(c, 0, sizeof(*c));
	if (a->joining && member_by_addr(m, a->join_addr) == NULL) {
		c->kind = MEMBER_ADD_LEARNER; /* retry: idempotent by address */
		snprintf(c->peer_addr, sizeof(c->peer_addr), "%s", a->join_addr);
		return true;
	}
	uint32_t members = m->member_count;
	int slot = a->joining ? -1 : free_slot(s);
	uint32_t w_add = slot >= 0 && members < KEEL_MEMBERS_MAX
				 ? (members <= s->opts.nodes ? 4 : 2) : 0;
	keel_node_id learner = pick_learner(s, m);
	uint32_t w_promote = learner != KEEL_NODE_NONE ? 4 : 0;
	uint32_t w_remove = members > 1 ? (members >= s->opts.nodes ? 4 : 1) : 0;
	/* Right after an election, a new leader is often asked to remove
	 * itself: with M2 broken, two leaders of different terms can each
	 * append a removal the other never saw. */
	if (targeted && w_remove > 0 && simrng_chance(&s->rng_faults, 500000) &&
	    sim_is_voter(m, l->id) && sim_voter_count(m) >= 3) {
		c->kind = MEMBER_REMOVE;
		c->id = l->id;
		return true;
	}
	uint32_t total = w_add + w_promote + w_remove;
	if (total == 0)
		return false;
	uint32_t dice = (uint32_t)simrng_below(&s->rng_faults, total);
	if (dice < w_add) {
		struct sim_node *n = &s->nodes[slot];
		a->joining = true;
		a->join_slot = (uint32_t)slot;
		snprintf(a->join_addr, sizeof(a->join_addr), SIM_ADMIN_ADDR_FMT,
			 (unsigned)slot, (unsigned)n->gen + 1);
		c->kind = MEMBER_ADD_LEARNER;
		snprintf(c->peer_addr, sizeof(c->peer_addr), "%s", a->join_addr);
		return true;
	}
	if (dice < w_add + w_promote) {
		c->kind = MEMBER_PROMOTE;
		c->id = learner;
		return true;
	}
	c->kind = MEMBER_REMOVE;
	c->id = pick_removal(s, l, m);
	return c->id != KEEL_NODE_NONE;
}

static const char *kind_name(uint32_t k)
{
	return k == MEMBER_ADD_LEARNER ? "add-learner"
	       : k == MEMBER_PROMOTE   ? "promote"
				       : "remove";
}

/* Ask leader l for one change; the answers the real node would give a
 * client are all expected here except a malformed request (our bug). */
static void change(struct sim *s, struct sim_node *l, bool targeted)
{
	struct member_change c;
	if (!choose(s, l, &c, targeted))
		return;
	uint64_t index = 0;
	keel_node_id id = 0;
	simpanic_set(s->opts.seed, l->id);
	int rc = raft_change(l->raft, &c, &index, &id);
	ATRACE(s, "n%llu %s %s id %llu: %s index %llu id %llu", (unsigned long long)l->id,
	       kind_name(c.kind), c.peer_addr, (unsigned long long)c.id,
	       rc == 0 ? "ok" : keel_err_name(rc), (unsigned long long)index,
	       (unsigned long long)id);
	if (rc == 0) {
		if (index != 0)
			s->stats_changes++;
		if (index != 0)
			sim_nemesis_change_hook(s, l); /* maybe crash it mid-change */
		sim_node_poke(s, l);
		return;
	}
	switch (rc) {
	case KEEL_ENOTLEADER: case KEEL_EBUSY: case KEEL_ESTATE:
	case KEEL_ENOTFOUND: case KEEL_EEXIST: case KEEL_ETOOBIG:
		return; /* races and rules: try again later */
	default:
		sim_fail(s, "admin", "n%llu: raft_change(%s %llu): %s",
			 (unsigned long long)l->id, kind_name(c.kind),
			 (unsigned long long)c.id, keel_err_name(rc));
	}
}

int sim_admin_act(struct sim *s, uint32_t who, uint64_t targeted)
{
	if (s->admin == NULL)
		return -1;
	reconcile(s);
	if (!targeted)
		schedule_next(s);
	if (s->healed || s->fail_reason != NULL) /* A4 */
		return -1;
	struct sim_node *l = targeted ? &s->nodes[who] : find_leader(s);
	if (l == NULL || l->state != NODE_UP || l->role != RAFT_LEADER)
		return -1;
	change(s, l, targeted != 0);
	return l->state == NODE_UP ? (int)l->idx : -1;
}

void sim_admin_leader_hook(struct sim *s, struct sim_node *n)
{
	if (s->healed || !simrng_chance(&s->rng_faults, 500000))
		return;
	uint64_t d = simrng_range(&s->rng_faults, 1, SIM_ADMIN_HOOK_NS);
	sim_schedule(s, sim_now(s) + d, EV_ADMIN, n->idx, 1, NULL);
}
