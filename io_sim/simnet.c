/* simnet.c: the network model (see simnet.h). */
#include "simnet.h"

#include <string.h>

#include "../core/assert.h"

void simnet_init(struct simnet *n, const struct simnet_conf *conf,
		 uint32_t node_count, uint32_t endpoint_count, uint64_t seed)
{
	KEEL_ASSERT(node_count >= 1 && node_count <= SIMNET_NODES_MAX);
	KEEL_ASSERT(endpoint_count >= node_count &&
		    endpoint_count <= SIMNET_ENDPOINTS_MAX);
	memset(n, 0, sizeof(*n));
	n->conf = *conf;
	n->node_count = node_count;
	n->endpoint_count = endpoint_count;
	simrng_init(&n->rng, seed, SIMRNG_NET);
}

static bool node_link(const struct simnet *n, uint32_t from, uint32_t to)
{
	return from < n->node_count && to < n->node_count;
}

static uint64_t one_copy(struct simnet *n, struct simnet_link *l,
			 uint64_t now_ns, bool fifo)
{
	const struct simnet_conf *c = &n->conf;
	uint64_t at = now_ns + simrng_latency(&n->rng, c->lat_base_ns,
					      c->lat_mean_ns, c->tail_ppm,
					      c->tail_max_ns);
	if (at < l->clog_until_ns)
		at = l->clog_until_ns;
	if (fifo && at < l->last_at_ns)
		at = l->last_at_ns; /* invariant 1 */
	if (at > l->last_at_ns)
		l->last_at_ns = at;
	return at;
}

uint32_t simnet_route(struct simnet *n, uint64_t now_ns, uint32_t from,
		      uint32_t to, uint32_t bytes,
		      uint64_t at_ns[SIMNET_COPIES_MAX])
{
	KEEL_ASSERT(from < n->endpoint_count && to < n->endpoint_count);
	KEEL_ASSERT(from != to);
	struct simnet_link *l = &n->link[from][to];
	n->stats.sent++;
	n->stats.bytes += bytes;
	if ((node_link(n, from, to) && l->blocked) ||
	    simrng_chance(&n->rng, n->conf.drop_ppm)) {
		n->stats.dropped++;
		return 0;
	}
	uint32_t copies = 1;
	at_ns[0] = one_copy(n, l, now_ns, !n->conf.reorder);
	if (simrng_chance(&n->rng, n->conf.dup_ppm)) {
		/* The duplicate is a retransmission: it may overtake later
		 * messages only when the link reorders. */
		at_ns[1] = one_copy(n, l, now_ns, !n->conf.reorder);
		n->stats.duplicated++;
		copies = 2;
	}
	return copies;
}

bool simnet_deliverable(struct simnet *n, uint32_t from, uint32_t to)
{
	KEEL_ASSERT(from < n->endpoint_count && to < n->endpoint_count);
	if (node_link(n, from, to) && n->link[from][to].blocked) {
		n->stats.cut++;
		return false;
	}
	return true;
}

void simnet_block(struct simnet *n, uint32_t from, uint32_t to, bool blocked)
{
	KEEL_ASSERT(node_link(n, from, to) && from != to);
	n->link[from][to].blocked = blocked;
}

void simnet_clog(struct simnet *n, uint32_t from, uint32_t to, uint64_t until_ns)
{
	KEEL_ASSERT(node_link(n, from, to) && from != to);
	struct simnet_link *l = &n->link[from][to];
	if (until_ns > l->clog_until_ns)
		l->clog_until_ns = until_ns;
}

void simnet_heal(struct simnet *n)
{
	for (uint32_t a = 0; a < n->node_count; a++)
		for (uint32_t b = 0; b < n->node_count; b++) {
			n->link[a][b].blocked = false;
			n->link[a][b].clog_until_ns = 0;
		}
}

uint32_t simnet_blocked_count(const struct simnet *n)
{
	uint32_t c = 0;
	for (uint32_t a = 0; a < n->node_count; a++)
		for (uint32_t b = 0; b < n->node_count; b++)
			c += n->link[a][b].blocked;
	return c;
}
