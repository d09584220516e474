/*
 * client.h: keel's C client library (blocking; one request at a time per
 * struct kc; use one per thread).
 *
 * It connects to any listed node, caches the leader, follows NOT_LEADER
 * hints, and retries after timeouts, refused connections and reconnects with
 * the same (client_id, seq), so a retried write is applied at most once
 * (the server's session table answers a retry with the stored result). The
 * number of attempts per request is bounded (attempts_max).
 *
 * Outcomes of kc_request:
 *   0                    a definite answer; res->status says which
 *                        (CLIENT_OK, CLIENT_NOT_FOUND, CLIENT_CAS_FAILED,
 *                        CLIENT_TOO_BIG, CLIENT_STALE_SEQ, CLIENT_BAD_REQUEST);
 *   KEEL_EINDETERMINATE  a write that may or may not have taken effect (it
 *                        was sent, and no definite answer came back);
 *   KEEL_ENOLEADER       nothing applied: no node accepted the request
 *                        (no leader known, refused, busy, shutting down);
 *   KEEL_ETIMEDOUT       a read that got no answer (reads change nothing).
 * kc_last_error() describes what happened last in words.
 */
#ifndef KEEL_NODE_CLIENT_H
#define KEEL_NODE_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/codec.h"

#define KC_ENDPOINTS_MAX 16u
#define KC_TIMEOUT_MS_DEFAULT 1000u
#define KC_ATTEMPTS_MAX_DEFAULT 20u
#define KC_BACKOFF_MS_MAX 200u
#define KC_ERROR_BYTES 256u

struct kc_config {
	char endpoints[KC_ENDPOINTS_MAX][KEEL_ADDR_BYTES_MAX];
	uint32_t endpoint_count;
	uint32_t timeout_ms;   /* one attempt's bound */
	uint32_t attempts_max; /* attempts per request */
	uint64_t client_id;    /* 0: pick a random one */
	uint64_t cluster_id;   /* 0: any */
};

struct kc_result {
	uint32_t status;
	bool stale;
	uint8_t *value; /* malloc'd; kc_result_free */
	uint32_t value_bytes;
	keel_node_id leader_id;
	char message[128];
	bool has_node_status;
	struct client_node_status node_status;
	keel_node_id member_id; /* kc_member_change: the member changed */
	uint64_t cluster_id;    /* kc_member_change: the cluster's id */
};

struct kc {
	struct kc_config cfg;
	int fd;
	char connected_to[KEEL_ADDR_BYTES_MAX];
	char leader_addr[KEEL_ADDR_BYTES_MAX]; /* cached hint, "" if none */
	uint32_t next_endpoint;
	uint64_t seq;
	uint64_t request_id;
	uint64_t rng;
	struct codec_stream stream;
	uint8_t rbuf[16384];
	size_t rbuf_have, rbuf_used;
	char last_error[KC_ERROR_BYTES];
};

void kc_config_default(struct kc_config *cfg);
/* "HOST:PORT,HOST:PORT". Returns 0 or KEEL_EINVAL with err filled. */
int kc_parse_endpoints(struct kc_config *cfg, const char *csv, char *err,
		       size_t err_bytes);

int kc_init(struct kc *c, const struct kc_config *cfg);
void kc_close(struct kc *c);

/* One request; see the outcomes above. cmd->client_id and seq are filled
 * for writes. */
int kc_request(struct kc *c, uint32_t kind, struct kv_command *cmd,
	       uint32_t consistency, struct kc_result *res);
void kc_result_free(struct kc_result *res);

/* Shorthands. */
int kc_put(struct kc *c, const void *k, uint32_t kb, const void *v,
	   uint32_t vb, struct kc_result *res);
int kc_get(struct kc *c, const void *k, uint32_t kb, bool stale,
	   struct kc_result *res);
int kc_del(struct kc *c, const void *k, uint32_t kb, struct kc_result *res);
int kc_cas(struct kc *c, const void *k, uint32_t kb, const void *old,
	   uint32_t ob, bool old_absent, const void *v, uint32_t vb,
	   struct kc_result *res);
int kc_append(struct kc *c, const void *k, uint32_t kb, const void *v,
	      uint32_t vb, struct kc_result *res);
int kc_status(struct kc *c, struct kc_result *res);

/* A membership change, asked of the leader (followed through NOT_LEADER
 * hints; BUSY answers, e.g. another change not yet committed or a learner
 * not caught up, are retried within attempts_max). CLIENT_OK once the
 * change's config entry committed: res->member_id is the member (an add's
 * assigned id) and res->cluster_id the cluster's. A change is a write: an
 * unanswered attempt gives KEEL_EINDETERMINATE. An add of a peer address
 * that is already a member answers that member's id, so retrying an add is
 * safe; a retried promote or remove that already took effect answers
 * CLIENT_BAD_REQUEST (already a voter / no such member). */
int kc_member_change(struct kc *c, const struct member_change *change,
		     struct kc_result *res);
/* Ask the leader to hand leadership to voter `to`; CLIENT_OK once the
 * transfer started (it completes when `to` wins its election). */
int kc_transfer_leader(struct kc *c, keel_node_id to, struct kc_result *res);

const char *kc_last_error(const struct kc *c);
const char *kc_status_name(uint32_t status);

#endif
