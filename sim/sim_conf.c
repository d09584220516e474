/*
 * sim_conf.c: fault profiles and the swarm draw.
 *
 * A profile names a fault mix; `swarm` lets each seed draw which faults are
 * on and at what rates (from the swarm stream), so a sweep covers many
 * mixes, including rare ones (aligned clocks, heavy loss, slow disks).
 */
#include <stdio.h>
#include <string.h>

#include "../core/err.h"
#include "sim.h"

static const char *profile_names[SIM_PROFILE_COUNT] = {
	"calm", "net", "crash", "disk", "all", "swarm", "member",
};

const char *sim_profile_name(uint32_t p)
{
	return p < SIM_PROFILE_COUNT ? profile_names[p] : "?";
}

int sim_profile_parse(const char *str, uint32_t *out)
{
	for (uint32_t i = 0; i < SIM_PROFILE_COUNT; i++)
		if (strcmp(str, profile_names[i]) == 0) {
			*out = i;
			return 0;
		}
	return KEEL_EINVAL;
}

static void base(struct sim_faults *f)
{
	memset(f, 0, sizeof(*f));
	f->net = (struct simnet_conf){
		.lat_base_ns = 100000, .lat_mean_ns = 300000,
		.tail_ppm = 2000, .tail_max_ns = 5 * SIM_MS,
	};
	f->disk = (struct simdisk_conf){
		.sync_base_ns = 50000, .sync_mean_ns = 250000,
		.tail_ppm = 2000, .tail_max_ns = 5 * SIM_MS,
	};
	f->nemesis_mean_ns = 400 * SIM_MS;
	f->fault_ns_max = 2 * SIM_S;
	f->storm_ns_max = 8 * SIM_S;
	f->quiet_ns_max = 3 * SIM_S;
	f->keys = 5;
	f->stale_read_ppm = 50000;
	f->think_ns_mean = 5 * SIM_MS;
	f->giveup_ns = 10 * SIM_S;
	f->client_timeout_ns = SIM_CLIENT_TIMEOUT_NS;
	f->append_pct = 15;
}

/* A perfectly symmetric cluster: ticks aligned, constant latencies, no
 * drift. The worst case for split votes: only election jitter breaks it. */
static void symmetric(struct sim_faults *f)
{
	f->aligned_ticks = true;
	f->drift_ppm_max = 0;
	f->net.lat_mean_ns = 0;
	f->net.tail_ppm = 0;
	f->disk.sync_mean_ns = 0;
	f->disk.tail_ppm = 0;
}

static void net_faults(struct sim_faults *f, struct simrng *r, bool heavy)
{
	f->client_timeout_ns = simrng_range(r, 100, 500) * SIM_MS;
	f->partitions = true;
	f->clogs = true;
	f->net.reorder = true;
	f->net.drop_ppm = (uint32_t)simrng_range(r, 1000, heavy ? 80000 : 20000);
	f->net.dup_ppm = (uint32_t)simrng_range(r, 1000, heavy ? 50000 : 20000);
	f->net.tail_ppm = (uint32_t)simrng_range(r, 5000, 50000);
	f->net.tail_max_ns = simrng_range(r, 10, 300) * SIM_MS;
}

static void crash_faults(struct sim_faults *f, struct simrng *r)
{
	f->crashes = true;
	f->torn = true;
	f->pauses = true;
	f->crash_soon_ppm = (uint32_t)simrng_range(r, 5000, 50000);
	f->crash_soon_ns_max = simrng_range(r, 200, 20000) * 1000;
	f->drift_ppm_max = (uint32_t)simrng_range(r, 0, 50000);
}

static void disk_faults(struct sim_faults *f, struct simrng *r, uint32_t nodes)
{
	f->crashes = true;
	f->torn = true;
	f->slow_disk = true;
	f->corruption = nodes >= 3;
	f->disk.tail_ppm = (uint32_t)simrng_range(r, 5000, 50000);
	f->disk.tail_max_ns = simrng_range(r, 5, 100) * SIM_MS;
	f->disk.sync_mean_ns = simrng_range(r, 100, 3000) * 1000;
}

static void swarm(struct sim_faults *f, struct simrng *r, uint32_t nodes)
{
	f->partitions = simrng_chance(r, 500000);
	f->clogs = simrng_chance(r, 500000);
	f->net.reorder = simrng_chance(r, 500000);
	if (simrng_chance(r, 500000))
		f->net.drop_ppm = (uint32_t)simrng_range(r, 0, 100000);
	if (simrng_chance(r, 500000))
		f->net.dup_ppm = (uint32_t)simrng_range(r, 0, 100000);
	if (simrng_chance(r, 500000)) {
		f->net.tail_ppm = (uint32_t)simrng_range(r, 0, 50000);
		f->net.tail_max_ns = simrng_range(r, 1, 300) * SIM_MS;
	}
	f->net.lat_mean_ns = simrng_range(r, 50, 3000) * 1000;
	f->crashes = simrng_chance(r, 500000);
	f->torn = f->crashes && simrng_chance(r, 500000);
	if (f->crashes && simrng_chance(r, 500000)) {
		f->crash_soon_ppm = (uint32_t)simrng_range(r, 5000, 100000);
		f->crash_soon_ns_max = simrng_range(r, 100, 60000) * 1000;
	}
	f->pauses = simrng_chance(r, 500000);
	f->slow_disk = simrng_chance(r, 500000);
	f->corruption = nodes >= 3 && simrng_chance(r, 300000);
	if (f->corruption)
		f->crashes = true;
	if (simrng_chance(r, 500000)) {
		f->disk.sync_mean_ns = simrng_range(r, 50, 5000) * 1000;
		f->disk.tail_ppm = (uint32_t)simrng_range(r, 0, 100000);
		f->disk.tail_max_ns = simrng_range(r, 1, 100) * SIM_MS;
	}
	f->aligned_ticks = simrng_chance(r, 300000);
	if (!f->aligned_ticks && simrng_chance(r, 500000))
		f->drift_ppm_max = (uint32_t)simrng_range(r, 0, 100000);
	if (simrng_chance(r, 150000))
		symmetric(f);
	f->nemesis_mean_ns = simrng_range(r, 50, 1500) * SIM_MS;
	f->fault_ns_max = simrng_range(r, 100, 5000) * SIM_MS;
	f->storm_ns_max = simrng_range(r, 1, 20) * SIM_S;
	f->quiet_ns_max = simrng_range(r, 1, 5) * SIM_S;
	f->keys = (uint32_t)simrng_range(r, 2, 10);
	f->giveup_ns = simrng_range(r, 3, 15) * SIM_S;
	f->client_timeout_ns = simrng_range(r, 100, 1000) * SIM_MS;
	f->append_pct = (uint32_t)simrng_range(r, 0, 25);
	f->stale_read_ppm = (uint32_t)simrng_range(r, 0, 200000);
	f->think_ns_mean = simrng_range(r, 0, 50) * SIM_MS;
}

/* Compaction and snapshot costs, for every profile: a small log tail, so
 * that compaction runs all the time and a lagging or new node needs a
 * snapshot. Drawn after the profile's draws, which stay as they were. */
static void log_draws(struct sim_faults *f, struct simrng *r)
{
	bool short_tail = simrng_chance(r, 750000);
	f->log_tail_entries = (uint32_t)(short_tail ? simrng_range(r, 8, 64)
						    : simrng_range(r, 64, 512));
	f->log_tail_bytes = simrng_range(r, 1, 64) * 1024;
	f->snap_read_ns_mean = simrng_range(r, 20, 2000) * 1000;
	if (f->crashes)
		f->install_crash_ppm = (uint32_t)simrng_range(r, 0, 300000);
}

/* Membership changes under faults: no corruption (a refused node would
 * count against a quorum the admin cannot see), installs often crashed. */
static void member_draws(struct sim_faults *f, struct simrng *r)
{
	f->membership = true;
	f->corruption = false;
	f->admin_mean_ns = simrng_range(r, 50, 1000) * SIM_MS;
	if (f->crashes) {
		f->install_crash_ppm = (uint32_t)simrng_range(r, 200000, 700000);
		f->change_crash_ppm = (uint32_t)simrng_range(r, 50000, 400000);
	}
}

void sim_faults_draw(struct sim_faults *f, uint32_t profile, uint32_t nodes,
		     uint64_t seed)
{
	struct simrng r;
	simrng_init(&r, seed, SIMRNG_SWARM);
	base(f);
	switch (profile) {
	case SIM_PROFILE_CALM:
		symmetric(f);
		break;
	case SIM_PROFILE_NET:
		net_faults(f, &r, true);
		break;
	case SIM_PROFILE_CRASH:
		crash_faults(f, &r);
		f->net.drop_ppm = 2000;
		break;
	case SIM_PROFILE_DISK:
		disk_faults(f, &r, nodes);
		break;
	case SIM_PROFILE_ALL:
		net_faults(f, &r, false);
		crash_faults(f, &r);
		disk_faults(f, &r, nodes);
		f->slow_disk = true;
		break;
	case SIM_PROFILE_MEMBER:
		net_faults(f, &r, false);
		crash_faults(f, &r);
		break;
	default:
		swarm(f, &r, nodes);
		break;
	}
	log_draws(f, &r);
	if (profile == SIM_PROFILE_MEMBER ||
	    (profile == SIM_PROFILE_SWARM && !f->corruption &&
	     simrng_chance(&r, 250000)))
		member_draws(f, &r);
	if (nodes < 2) {
		f->partitions = false;
		f->clogs = false;
	}
}

void sim_faults_describe(const struct sim_faults *f, char *out, size_t cap)
{
	snprintf(out, cap,
		 "faults: partitions=%d clogs=%d drop=%u dup=%u reorder=%d tail=%u/%llums "
		 "crashes=%d crash_soon=%u/%lluus torn=%d pauses=%d slow_disk=%d corruption=%d "
		 "aligned_ticks=%d drift=%u nemesis=%llums keys=%u stale=%u giveup=%llums appends=%u%% "
		 "log_tail=%u/%lluKiB snap_read=%lluus install_crash=%u membership=%d admin=%llums",
		 f->partitions, f->clogs, f->net.drop_ppm, f->net.dup_ppm,
		 f->net.reorder, f->net.tail_ppm,
		 (unsigned long long)(f->net.tail_max_ns / SIM_MS), f->crashes,
		 f->crash_soon_ppm, (unsigned long long)(f->crash_soon_ns_max / 1000),
		 f->torn, f->pauses, f->slow_disk, f->corruption, f->aligned_ticks,
		 f->drift_ppm_max, (unsigned long long)(f->nemesis_mean_ns / SIM_MS),
		 f->keys, f->stale_read_ppm,
		 (unsigned long long)(f->giveup_ns / SIM_MS), f->append_pct,
		 f->log_tail_entries, (unsigned long long)(f->log_tail_bytes / 1024),
		 (unsigned long long)(f->snap_read_ns_mean / 1000),
		 f->install_crash_ppm, f->membership,
		 (unsigned long long)(f->admin_mean_ns / SIM_MS));
}
