/* simrng.c: xoshiro256** streams seeded by splitmix64 (see simrng.h). */
#include "simrng.h"

#include <math.h>

#include "../core/assert.h"

uint64_t simrng_mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

void simrng_init(struct simrng *r, uint64_t seed, uint64_t stream)
{
	uint64_t x = simrng_mix(seed) ^ simrng_mix(stream * 0x632be59bd9b4e019ull + 1);
	for (int i = 0; i < 4; i++) {
		x = simrng_mix(x + (uint64_t)i);
		r->s[i] = x;
	}
	if ((r->s[0] | r->s[1] | r->s[2] | r->s[3]) == 0)
		r->s[0] = 1; /* invariant 2 */
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t simrng_next(struct simrng *r)
{
	uint64_t *s = r->s;
	uint64_t out = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return out;
}

uint64_t simrng_below(struct simrng *r, uint64_t n)
{
	KEEL_ASSERT(n > 0);
	/* Rejection sampling: unbiased, and bounded in practice (p(reject) < 1/2). */
	uint64_t limit = UINT64_MAX - UINT64_MAX % n;
	for (;;) {
		uint64_t x = simrng_next(r);
		if (x < limit)
			return x % n;
	}
}

uint64_t simrng_range(struct simrng *r, uint64_t lo, uint64_t hi)
{
	KEEL_ASSERT(lo <= hi);
	if (hi - lo == UINT64_MAX)
		return simrng_next(r);
	return lo + simrng_below(r, hi - lo + 1);
}

bool simrng_chance(struct simrng *r, uint32_t ppm)
{
	if (ppm == 0)
		return false;
	return simrng_below(r, SIMRNG_PPM) < ppm;
}

uint64_t simrng_exp(struct simrng *r, uint64_t mean, uint64_t cap)
{
	if (mean == 0)
		return 0;
	/* u in (0, 1]: 53 random bits. */
	double u = (double)((simrng_next(r) >> 11) + 1) * (1.0 / 9007199254740992.0);
	double v = -log(u) * (double)mean;
	if (v >= (double)cap)
		return cap;
	return (uint64_t)v;
}

uint64_t simrng_latency(struct simrng *r, uint64_t base, uint64_t mean,
			uint32_t tail_ppm, uint64_t tail_max)
{
	uint64_t v = base + simrng_exp(r, mean, mean * 20 + 1);
	if (tail_max > 0 && simrng_chance(r, tail_ppm))
		v += simrng_range(r, 0, tail_max);
	return v;
}
