/*
 * simrng.h: seeded PRNG streams for the simulator (DESIGN §6).
 *
 * One 64-bit run seed is split into independent streams (network, disk,
 * faults, workload, per-node jitter, ...): stream k of seed s is seeded by
 * splitmix64 over (s, k), so drawing more numbers from one stream never
 * shifts another. The generator is xoshiro256**. No global state.
 *
 * Invariants:
 *  1. The same (seed, stream) gives the same sequence on every machine.
 *  2. A state is never all zero (xoshiro's one bad state).
 */
#ifndef KEEL_SIMRNG_H
#define KEEL_SIMRNG_H

#include <stdbool.h>
#include <stdint.h>

enum simrng_stream {
	SIMRNG_NET = 1,
	SIMRNG_DISK = 2,
	SIMRNG_FAULTS = 3,
	SIMRNG_WORKLOAD = 4,
	SIMRNG_JITTER = 5, /* per-node raft seeds and clock drift */
	SIMRNG_SWARM = 6,  /* which faults a swarm seed turns on */
};

#define SIMRNG_PPM 1000000u /* probabilities are in parts per million */

struct simrng {
	uint64_t s[4];
};

void simrng_init(struct simrng *r, uint64_t seed, uint64_t stream);
uint64_t simrng_next(struct simrng *r);
/* Uniform in [0, n); n > 0. */
uint64_t simrng_below(struct simrng *r, uint64_t n);
/* Uniform in [lo, hi]; lo <= hi. */
uint64_t simrng_range(struct simrng *r, uint64_t lo, uint64_t hi);
/* True with probability ppm / SIMRNG_PPM. */
bool simrng_chance(struct simrng *r, uint32_t ppm);
/* Exponentially distributed with the given mean, capped at cap. */
uint64_t simrng_exp(struct simrng *r, uint64_t mean, uint64_t cap);
/* A latency: base + exp(mean), and with probability tail_ppm an extra
 * uniform [0, tail_max]; all in the caller's unit. */
uint64_t simrng_latency(struct simrng *r, uint64_t base, uint64_t mean,
			uint32_t tail_ppm, uint64_t tail_max);

/* splitmix64 step: also used to derive seeds (e.g. raft_options.seed). */
uint64_t simrng_mix(uint64_t x);

#endif
