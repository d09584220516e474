/*
 * simdisk.h: the disk timing model of one simulated node (DESIGN §6).
 *
 * A sync takes simulated time: base + exponential body + rare tail, times a
 * slowness factor while a "slow disk" fault is on. Syncs complete in the
 * order they were issued (a disk queue): a sync never completes before the
 * previous one. What a sync makes durable is the store's business
 * (io_sim/mem_store); this model only says when.
 *
 * Invariants:
 *  1. Completion times are non-decreasing in issue order.
 *  2. Completion >= issue time.
 */
#ifndef KEEL_SIMDISK_H
#define KEEL_SIMDISK_H

#include <stdint.h>

#include "simrng.h"

#define SIMDISK_SLOW_FACTOR_MAX 1000u

struct simdisk_conf {
	uint64_t sync_base_ns;
	uint64_t sync_mean_ns;
	uint32_t tail_ppm;
	uint64_t tail_max_ns;
};

struct simdisk {
	struct simdisk_conf conf;
	uint32_t slow_factor;   /* 1 normally */
	uint64_t busy_until_ns; /* completion of the last issued sync */
	uint64_t syncs;
};

void simdisk_init(struct simdisk *d, const struct simdisk_conf *conf);
/* Issue a sync at now; returns its completion time. rng: the disk stream. */
uint64_t simdisk_sync(struct simdisk *d, struct simrng *rng, uint64_t now_ns);
/* A crash empties the queue: syncs in flight never complete. */
void simdisk_reset(struct simdisk *d, uint64_t now_ns);
void simdisk_set_slow(struct simdisk *d, uint32_t factor);

#endif
