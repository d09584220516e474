/* simdisk.c: in-order sync completion times (see simdisk.h). */
#include "simdisk.h"

#include "../core/assert.h"

void simdisk_init(struct simdisk *d, const struct simdisk_conf *conf)
{
	d->conf = *conf;
	d->slow_factor = 1;
	d->busy_until_ns = 0;
	d->syncs = 0;
}

uint64_t simdisk_sync(struct simdisk *d, struct simrng *rng, uint64_t now_ns)
{
	const struct simdisk_conf *c = &d->conf;
	uint64_t lat = simrng_latency(rng, c->sync_base_ns, c->sync_mean_ns,
				      c->tail_ppm, c->tail_max_ns);
	lat *= d->slow_factor;
	uint64_t start = now_ns > d->busy_until_ns ? now_ns : d->busy_until_ns;
	uint64_t done = start + lat;
	KEEL_ASSERT(done >= d->busy_until_ns); /* invariant 1 */
	KEEL_ASSERT(done >= now_ns);           /* invariant 2 */
	d->busy_until_ns = done;
	d->syncs++;
	return done;
}

void simdisk_reset(struct simdisk *d, uint64_t now_ns)
{
	d->busy_until_ns = now_ns;
}

void simdisk_set_slow(struct simdisk *d, uint32_t factor)
{
	KEEL_ASSERT(factor >= 1 && factor <= SIMDISK_SLOW_FACTOR_MAX);
	d->slow_factor = factor;
}
