/*
 * join.h: a new node joining a running cluster (keel --join), and a joined
 * learner asking for its own promotion.
 *
 * Joining: the node asks the members listed in --join (following
 * NOT_LEADER hints, retrying BUSY and unanswered attempts within
 * JOIN_SECONDS_MAX) to add it as a learner with its peer and client
 * addresses. The answer comes once the config entry committed; its
 * member_id and cluster_id are the node's id and cluster (never guessed),
 * and are stored in DIR before the node serves. An add is idempotent by
 * peer address, so a retry (or a rerun after a crash before the ids were
 * stored) gets the same id.
 *
 * DIR/JOIN_FILE records how the node joined (its addresses and the --join
 * list) so a restart needs no flags: the addresses until the membership
 * arrives, the list for the promoter.
 *
 * Promotion: a thread asks the leader to promote this node while it is a
 * learner (the leader answers BUSY until it has caught up: raft M6), every
 * JOIN_PROMOTE_INTERVAL_MS, and stops once the node is a voter, was
 * removed, or the node stops.
 */
#ifndef KEEL_NODE_JOIN_H
#define KEEL_NODE_JOIN_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client.h"
#include "config.h"

#define JOIN_SECONDS_MAX 60u
#define JOIN_RETRY_MS 300u
#define JOIN_PROMOTE_INTERVAL_MS 300u
#define JOIN_FILE "keel-join"
#define JOIN_FILE_BYTES_MAX 4096u

struct join_record {
	char listen_addr[KEEL_ADDR_BYTES_MAX];
	char client_addr[KEEL_ADDR_BYTES_MAX];
	uint32_t join_count;
	char join[CONFIG_JOIN_MAX][KEEL_ADDR_BYTES_MAX];
};

/* Ask the cluster to add this node. Returns 0 with *id and *cluster_id, or
 * KEEL_ETIMEDOUT (no definite answer within JOIN_SECONDS_MAX) or
 * KEEL_EINVAL (the cluster refused: err says why). */
int join_ask(const struct node_config *cfg, keel_node_id *id,
	     uint64_t *cluster_id, char *err, size_t err_bytes);

/* DIR/JOIN_FILE: write (synced) / read. 0, KEEL_ENOTFOUND (no file: the
 * node did not join), or another error (err says what). */
int join_record_write(const char *dir, const struct join_record *jr,
		      char *err, size_t err_bytes);
int join_record_read(const char *dir, struct join_record *jr, char *err,
		     size_t err_bytes);

struct join_promoter {
	pthread_t thread;
	bool started;
	int stop;                 /* atomic */
	keel_node_id id;
	const uint32_t *self_role; /* atomic, written by the loop thread */
	struct kc_config kc;
};

/* Start the thread. Returns 0 or a -errno. */
int join_promoter_start(struct join_promoter *jp, keel_node_id id,
			const struct join_record *jr, const uint32_t *self_role);
void join_promoter_stop(struct join_promoter *jp);

#endif
