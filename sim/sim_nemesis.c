/*
 * sim_nemesis.c: the fault scheduler.
 *
 * Every so often (exponential, mean faults.nemesis_mean_ns, from the faults
 * stream) it picks one enabled action: a partition (random halves, isolate
 * the leader, one-way, bridge, ring), a clogged link, a crash (maybe torn)
 * with a restart later, a pause, a slow disk, or a corrupted durable log
 * record followed by a crash (the restart must refuse the record). Faults
 * come in storms (windows of at most storm_ns_max) separated by quiet
 * windows (at most quiet_ns_max) that start with a soft heal: partitions
 * and clogs lifted, pauses and slow disks ended, crashed nodes restarted
 * (background loss and duplication stay). Quiet windows let operations
 * finish, which keeps histories checkable and exercises recovery. At heal
 * everything is undone for good.
 *
 * Invariants (the bounds that keep a majority recoverable):
 *  F1 At most (nodes - 1) / 2 nodes ever get a corrupted record (and only
 *     those can be refused), so a majority always keeps intact disks.
 *  F2 Corruption never picks the log's last record, which a torn write may
 *     legitimately cut (mem_store.h), so a refused record is always a
 *     detected corruption.
 *  F3 Every crash schedules its restart; heal restarts the rest.
 */
#include <string.h>

#include "../core/assert.h"
#include "../core/err.h"
#include "sim.h"

enum { SLOT_PARTITION = 0, SLOT_SLOW_DISK = 1 };

enum action {
	ACT_PARTITION,
	ACT_CLOG,
	ACT_CRASH,
	ACT_PAUSE,
	ACT_SLOW_DISK,
	ACT_CORRUPT,
	ACT_COUNT
};

#define STRACE(s, ...)                                                       \
	do {                                                                 \
		if ((s)->trace.f)                                            \
			simtrace_text(&(s)->trace, sim_now(s), "sim", __VA_ARGS__); \
	} while (0)

static uint64_t duration(struct sim *s)
{
	uint64_t max = s->faults.fault_ns_max;
	return simrng_range(&s->rng_faults, max / 10 + 1, max);
}

static int leader_idx(struct sim *s)
{
	int best = -1;
	uint64_t term = 0;
	for (uint32_t i = 0; i < s->slots; i++) {
		struct sim_node *n = &s->nodes[i];
		if (n->state == NODE_UP && n->role == RAFT_LEADER && n->term >= term) {
			best = (int)i;
			term = n->term;
		}
	}
	return best;
}

static void unblock_all(struct sim *s)
{
	for (uint32_t a = 0; a < s->slots; a++)
		for (uint32_t b = 0; b < s->slots; b++)
			if (a != b)
				simnet_block(&s->net, a, b, false);
}

static void cut(struct sim *s, uint32_t a, uint32_t b)
{
	simnet_block(&s->net, a, b, true);
	simnet_block(&s->net, b, a, true);
}

/* shape: 0 random halves, 1 isolate the leader, 2 one-way, 3 bridge,
 * 4 ring; >= 5 draws one. */
static void partition_shape(struct sim *s, uint32_t shape)
{
	uint32_t nn = s->slots;
	struct simrng *r = &s->rng_faults;
	unblock_all(s);
	if (shape >= 5)
		shape = (uint32_t)simrng_below(r, 5);
	const char *name = "halves";
	if (shape == 0 || (shape >= 3 && nn < 3)) { /* random halves */
		uint32_t side = 0;
		while (side == 0 || side == (1u << nn) - 1)
			side = (uint32_t)simrng_below(r, 1u << nn);
		for (uint32_t a = 0; a < nn; a++)
			for (uint32_t b = a + 1; b < nn; b++)
				if (((side >> a) & 1) != ((side >> b) & 1))
					cut(s, a, b);
	} else if (shape == 1) { /* isolate the leader */
		int l = leader_idx(s);
		uint32_t x = l >= 0 ? (uint32_t)l : (uint32_t)simrng_below(r, nn);
		for (uint32_t b = 0; b < nn; b++)
			if (b != x)
				cut(s, x, b);
		name = "isolate-leader";
	} else if (shape == 2) { /* one-way: a node hears nobody, or nobody hears it */
		uint32_t x = (uint32_t)simrng_below(r, nn);
		bool in = simrng_chance(r, 500000);
		for (uint32_t b = 0; b < nn; b++)
			if (b != x)
				simnet_block(&s->net, in ? b : x, in ? x : b, true);
		name = in ? "one-way-in" : "one-way-out";
	} else if (shape == 3) { /* bridge: two halves joined by one node */
		uint32_t bridge = (uint32_t)simrng_below(r, nn);
		for (uint32_t a = 0; a < nn; a++)
			for (uint32_t b = a + 1; b < nn; b++) {
				if (a == bridge || b == bridge)
					continue;
				uint32_t ra = (a + nn - bridge) % nn, rb = (b + nn - bridge) % nn;
				if ((ra <= nn / 2) != (rb <= nn / 2))
					cut(s, a, b);
			}
		name = "bridge";
	} else { /* ring: each node talks only to its two neighbours */
		for (uint32_t a = 0; a < nn; a++)
			for (uint32_t b = a + 1; b < nn; b++)
				if (b - a != 1 && !(a == 0 && b == nn - 1))
					cut(s, a, b);
		name = "ring";
	}
	uint64_t gen = ++s->fault_gen[SLOT_PARTITION];
	uint64_t d = duration(s);
	sim_schedule(s, sim_now(s) + d, EV_FAULT_END, SLOT_PARTITION, gen, NULL);
	s->stats_partitions++;
	STRACE(s, "partition %s (%u links cut) for %llums", name,
	       simnet_blocked_count(&s->net), (unsigned long long)(d / SIM_MS));
}

static void partition(struct sim *s)
{
	partition_shape(s, 5);
}

static int pick_up_node(struct sim *s, bool prefer_leader)
{
	struct simrng *r = &s->rng_faults;
	if (prefer_leader && simrng_chance(r, 500000)) {
		int l = leader_idx(s);
		if (l >= 0)
			return l;
	}
	uint32_t start = (uint32_t)simrng_below(r, s->slots);
	for (uint32_t k = 0; k < s->slots; k++) {
		uint32_t i = (start + k) % s->slots;
		if (s->nodes[i].state == NODE_UP)
			return (int)i;
	}
	return -1;
}

static void crash_restart_in(struct sim *s, struct sim_node *n, bool torn,
			     uint64_t lo, uint64_t hi)
{
	sim_node_crash(s, n, torn);
	s->stats_crashes++;
	uint64_t d = simrng_range(&s->rng_faults, lo, hi);
	sim_schedule(s, sim_now(s) + d, EV_RESTART, n->idx, n->epoch, NULL); /* F3 */
}

static void crash(struct sim *s, struct sim_node *n, bool torn)
{
	sim_node_crash(s, n, torn);
	s->stats_crashes++;
	uint64_t d = simrng_range(&s->rng_faults, 10 * SIM_MS, s->faults.fault_ns_max);
	sim_schedule(s, sim_now(s) + d, EV_RESTART, n->idx, n->epoch, NULL); /* F3 */
}

static void corrupt(struct sim *s)
{
	if (s->corrupted_nodes >= (s->slots - 1) / 2 || s->admin != NULL) /* F1 */
		return;
	int i = pick_up_node(s, false);
	if (i < 0)
		return;
	struct sim_node *n = &s->nodes[i];
	if (n->corrupted)
		return;
	crash(s, n, false); /* now everything the store holds is durable */
	uint64_t first, last;
	if (n->store.ops->log_bounds(n->store.impl, &first, &last) != 0 ||
	    last < first + 1)
		return;
	uint64_t index = simrng_range(&s->rng_faults, first, last - 1); /* F2 */
	int rc = mem_store_corrupt(&n->ms, index, simrng_next(&s->rng_faults));
	if (rc != 0)
		return;
	n->corrupted = true;
	s->corrupted_nodes++;
	s->stats_corruptions++;
	STRACE(s, "corrupt n%u log record %llu (of %llu..%llu)", (unsigned)n->id,
	       (unsigned long long)index, (unsigned long long)first,
	       (unsigned long long)last);
	simtrace_event(&s->trace, sim_now(s), 210, n->idx, index, 0);
}

static bool enabled(const struct sim_faults *f, uint32_t a)
{
	switch (a) {
	case ACT_PARTITION: return f->partitions;
	case ACT_CLOG: return f->clogs;
	case ACT_CRASH: return f->crashes;
	case ACT_PAUSE: return f->pauses;
	case ACT_SLOW_DISK: return f->slow_disk;
	case ACT_CORRUPT: return f->corruption;
	default: return false;
	}
}

static void act(struct sim *s, uint32_t a)
{
	struct simrng *r = &s->rng_faults;
	uint32_t nn = s->slots;
	switch (a) {
	case ACT_PARTITION:
		partition(s);
		break;
	case ACT_CLOG: {
		uint32_t x = (uint32_t)simrng_below(r, nn);
		uint32_t y = (x + 1 + (uint32_t)simrng_below(r, nn - 1)) % nn;
		uint64_t until = sim_now(s) + duration(s);
		simnet_clog(&s->net, x, y, until);
		if (simrng_chance(r, 500000))
			simnet_clog(&s->net, y, x, until);
		STRACE(s, "clog n%u->n%u until %llums", x + 1, y + 1,
		       (unsigned long long)(until / SIM_MS));
		break;
	}
	case ACT_CRASH: {
		int i = pick_up_node(s, true);
		if (i >= 0)
			crash(s, &s->nodes[i], s->faults.torn && simrng_chance(r, 500000));
		break;
	}
	case ACT_PAUSE: {
		int i = pick_up_node(s, true);
		if (i < 0 || s->nodes[i].paused)
			break;
		struct sim_node *n = &s->nodes[i];
		n->paused = true;
		n->paused_until_ns = sim_now(s) + duration(s);
		sim_schedule(s, n->paused_until_ns, EV_UNPAUSE, n->idx, n->epoch, NULL);
		s->stats_pauses++;
		STRACE(s, "pause n%u until %llums", (unsigned)n->id,
		       (unsigned long long)(n->paused_until_ns / SIM_MS));
		break;
	}
	case ACT_SLOW_DISK: {
		struct sim_node *n = &s->nodes[simrng_below(r, nn)];
		simdisk_set_slow(&s->nodes[s->slow_node].disk, 1);
		s->slow_node = n->idx;
		uint32_t factor = (uint32_t)simrng_range(r, 5, 200);
		simdisk_set_slow(&n->disk, factor);
		uint64_t gen = ++s->fault_gen[SLOT_SLOW_DISK];
		sim_schedule(s, sim_now(s) + duration(s), EV_FAULT_END,
			     SLOT_SLOW_DISK, gen, NULL);
		STRACE(s, "slow disk n%u x%u", (unsigned)n->id, factor);
		break;
	}
	case ACT_CORRUPT:
		corrupt(s);
		break;
	default:
		KEEL_UNREACHABLE();
	}
}

void sim_nemesis_act(struct sim *s, uint64_t storm_gen)
{
	if (s->healed || s->quiet || storm_gen != s->storm_gen)
		return;
	uint32_t on[ACT_COUNT], count = 0;
	for (uint32_t a = 0; a < ACT_COUNT; a++)
		if (enabled(&s->faults, a))
			on[count++] = a;
	if (count == 0)
		return;
	uint32_t a = on[simrng_below(&s->rng_faults, count)];
	simtrace_event(&s->trace, sim_now(s), 220, a, 0, 0);
	act(s, a);
	uint64_t next = simrng_exp(&s->rng_faults, s->faults.nemesis_mean_ns,
				   10 * s->faults.nemesis_mean_ns) + 1;
	sim_schedule(s, sim_now(s) + next, EV_NEMESIS, 0, s->storm_gen, NULL);
}

void sim_nemesis_leader_hook(struct sim *s, struct sim_node *n)
{
	sim_nemesis_write_hook(s, n, 1);
}


void sim_nemesis_write_hook(struct sim *s, struct sim_node *n, uint32_t rate_div)
{
	if (s->healed || s->quiet || s->faults.crash_soon_ppm == 0)
		return;
	uint64_t ppm = s->faults.crash_soon_ppm;
	if (rate_div == 0) /* a vote: rare, and the crash that matters most */
		ppm = ppm * 10 < SIMRNG_PPM / 4 ? ppm * 10 : SIMRNG_PPM / 4;
	else
		ppm /= rate_div;
	if (!simrng_chance(&s->rng_faults, (uint32_t)ppm))
		return;
	/* Around a vote or an append the interesting window is the sync:
	 * crash within about two mean sync times. */
	uint64_t max = s->faults.crash_soon_ns_max;
	uint64_t sync = 2 * (s->faults.disk.sync_base_ns + s->faults.disk.sync_mean_ns);
	if (rate_div != 1 || n->role != RAFT_LEADER)
		max = max < sync ? max : sync;
	uint64_t d = simrng_range(&s->rng_faults, 0, max);
	sim_schedule(s, sim_now(s) + d, EV_CRASH, n->idx, n->epoch, NULL);
}

void sim_nemesis_install_hook(struct sim *s, struct sim_node *n, bool install)
{
	uint32_t ppm = s->faults.install_crash_ppm;
	if (s->healed || s->quiet || ppm == 0)
		return;
	if (!install)
		ppm /= 4; /* a chunk staged: between stages */
	if (!simrng_chance(&s->rng_faults, ppm))
		return;
	/* Before the batch's sync, during it, or just after it. */
	uint64_t sync = 2 * (s->faults.disk.sync_base_ns + s->faults.disk.sync_mean_ns);
	uint64_t d = simrng_range(&s->rng_faults, 0, sync);
	sim_schedule(s, sim_now(s) + d, EV_CRASH, n->idx, n->epoch, NULL);
}

void sim_nemesis_change_hook(struct sim *s, struct sim_node *n)
{
	uint32_t ppm = s->faults.change_crash_ppm;
	if (s->healed || s->quiet || ppm == 0 || !simrng_chance(&s->rng_faults, ppm))
		return;
	if (s->faults.partitions && simrng_chance(&s->rng_faults, 500000)) {
		/* Split the nodes that got the change from those that did not:
		 * the other side may elect a leader that never saw it (M2). */
		STRACE(s, "partition right after n%llu took a change",
		       (unsigned long long)n->id);
		partition_shape(s, simrng_chance(&s->rng_faults, 500000) ? 0 : 1);
		return;
	}
	/* Mostly before the entry reaches a quorum: within a network hop. */
	uint64_t hop = s->faults.net.lat_base_ns + s->faults.net.lat_mean_ns;
	uint64_t d = simrng_range(&s->rng_faults, 0, 2 * hop);
	sim_schedule(s, sim_now(s) + d, EV_CRASH, n->idx, n->epoch, NULL);
}

void sim_nemesis_crash_soon(struct sim *s, struct sim_node *n, uint64_t epoch)
{
	if (s->healed || epoch != n->epoch || n->state != NODE_UP)
		return;
	STRACE(s, "targeted crash of n%u (%s, term %llu)", (unsigned)n->id,
	       raft_role_name(n->role), (unsigned long long)n->term);
	bool torn = s->faults.torn && simrng_chance(&s->rng_faults, 500000);
	/* Half the targeted crashes restart at once (a process supervisor),
	 * while the messages of the moment are still in flight. */
	if (simrng_chance(&s->rng_faults, 500000))
		crash_restart_in(s, n, torn, 50000, 3 * SIM_MS);
	else
		crash(s, n, torn);
}

void sim_nemesis_fault_end(struct sim *s, uint32_t slot, uint64_t gen)
{
	if (gen != s->fault_gen[slot] || s->healed)
		return;
	if (slot == SLOT_PARTITION) {
		unblock_all(s);
		STRACE(s, "partition healed");
	} else {
		simdisk_set_slow(&s->nodes[s->slow_node].disk, 1);
		STRACE(s, "disk of n%u back to speed", s->slow_node + 1);
	}
}

static void soft_heal(struct sim *s)
{
	simnet_heal(&s->net);
	s->fault_gen[SLOT_PARTITION]++;
	s->fault_gen[SLOT_SLOW_DISK]++;
	for (uint32_t i = 0; i < s->slots; i++) {
		struct sim_node *n = &s->nodes[i];
		simdisk_set_slow(&n->disk, 1);
		n->paused = false;
		if (n->state == NODE_DOWN)
			sim_node_start(s, n);
	}
}

void sim_nemesis_storm(struct sim *s)
{
	if (s->healed)
		return;
	s->quiet = false;
	uint64_t d = simrng_range(&s->rng_faults, s->faults.storm_ns_max / 4 + 1,
				  s->faults.storm_ns_max);
	sim_schedule(s, sim_now(s) + d, EV_QUIET, 0, 0, NULL);
	sim_schedule(s, sim_now(s) + 1, EV_NEMESIS, 0, ++s->storm_gen, NULL);
	STRACE(s, "storm for %llums", (unsigned long long)(d / SIM_MS));
}

void sim_nemesis_quiet(struct sim *s)
{
	if (s->healed)
		return;
	s->quiet = true;
	soft_heal(s);
	uint64_t d = simrng_range(&s->rng_faults, s->faults.quiet_ns_max / 4 + 1,
				  s->faults.quiet_ns_max);
	sim_schedule(s, sim_now(s) + d, EV_STORM, 0, 0, NULL);
	STRACE(s, "quiet for %llums: faults lifted, crashed nodes restarted",
	       (unsigned long long)(d / SIM_MS));
}

void sim_nemesis_heal(struct sim *s)
{
	s->healed = true;
	s->heal_ns = sim_now(s);
	simnet_heal(&s->net);
	s->net.conf.drop_ppm = 0;
	s->net.conf.dup_ppm = 0;
	s->net.conf.tail_ppm = 0;
	STRACE(s, "heal: all faults off; liveness bound %llus",
	       (unsigned long long)(SIM_LIVENESS_NS / SIM_S));
	simtrace_event(&s->trace, sim_now(s), 230, 0, 0, 0);
	for (uint32_t i = 0; i < s->slots; i++) {
		struct sim_node *n = &s->nodes[i];
		simdisk_set_slow(&n->disk, 1);
		n->paused = false;
		if (n->state == NODE_DOWN)
			sim_node_start(s, n);
	}
	sim_schedule(s, sim_now(s), EV_PROBE, 0, 0, NULL);
}
