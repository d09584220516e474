/*
 * simnet.h: the simulated network (DESIGN §6).
 *
 * Endpoints are small integers: nodes first (0 .. node_count-1), then
 * clients. For each directed link the model decides, at send time, whether a
 * message is dropped, duplicated, and when each copy arrives: latency is a
 * base plus an exponential body plus a rare uniform tail. Without reordering
 * a link is FIFO (a copy never arrives before an earlier one on that link).
 * Partitions block directed links between nodes (one-way partitions are one
 * blocked direction); a message on a link that is blocked at send time or at
 * delivery time is lost. Clogging holds a link's messages until a time, then
 * delivers them. Clients reach every node: partitions and clogs apply only
 * between nodes, the way a client outside the cluster's network would.
 *
 * The model only computes fates and times; the caller owns the packets and
 * the event queue. All randomness comes from the network stream.
 *
 * Invariants:
 *  1. A link without reordering delivers in send order.
 *  2. No copy arrives before now + base latency.
 */
#ifndef KEEL_SIMNET_H
#define KEEL_SIMNET_H

#include <stdbool.h>
#include <stdint.h>

#include "simrng.h"

#define SIMNET_NODES_MAX 9u
#define SIMNET_ENDPOINTS_MAX 32u /* nodes + clients */
#define SIMNET_COPIES_MAX 2u      /* a message plus one duplicate */

struct simnet_conf {
	uint64_t lat_base_ns;
	uint64_t lat_mean_ns;   /* exponential body on top of the base */
	uint32_t tail_ppm;      /* chance of an extra tail delay */
	uint64_t tail_max_ns;   /* tail delay is uniform in [0, tail_max_ns] */
	uint32_t drop_ppm;
	uint32_t dup_ppm;
	bool reorder;           /* false: every link is FIFO */
};

struct simnet_link {
	bool blocked;
	uint64_t clog_until_ns;
	uint64_t last_at_ns; /* latest delivery time scheduled (FIFO) */
};

struct simnet_stats {
	uint64_t sent;
	uint64_t dropped;    /* by loss, or a partition at send */
	uint64_t duplicated;
	uint64_t cut;        /* lost to a partition at delivery */
	uint64_t bytes;
};

struct simnet {
	struct simnet_conf conf;
	uint32_t node_count;
	uint32_t endpoint_count;
	struct simrng rng;
	struct simnet_stats stats;
	struct simnet_link link[SIMNET_ENDPOINTS_MAX][SIMNET_ENDPOINTS_MAX];
};

void simnet_init(struct simnet *n, const struct simnet_conf *conf,
		 uint32_t node_count, uint32_t endpoint_count, uint64_t seed);

/* One send from -> to at now (bytes for the statistics). Fills at_ns[] with
 * the delivery time of each copy and returns the copy count (0: lost). */
uint32_t simnet_route(struct simnet *n, uint64_t now_ns, uint32_t from,
		      uint32_t to, uint32_t bytes,
		      uint64_t at_ns[SIMNET_COPIES_MAX]);

/* Whether a copy on from -> to may be delivered now (not cut since). Counts
 * a cut message. */
bool simnet_deliverable(struct simnet *n, uint32_t from, uint32_t to);

/* Partitions and clogs (nodes only). */
void simnet_block(struct simnet *n, uint32_t from, uint32_t to, bool blocked);
void simnet_clog(struct simnet *n, uint32_t from, uint32_t to, uint64_t until_ns);
/* Remove every partition and clog. */
void simnet_heal(struct simnet *n);
/* Count of blocked directed node links (for traces). */
uint32_t simnet_blocked_count(const struct simnet *n);

#endif
