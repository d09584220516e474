/*
 * clients.h: the client port. Protobuf frames (core/codec): a hello first
 * (role client; cluster id 0 or ours), then requests, answered in any order
 * by request id.
 *
 * Invariants:
 *   1. a connection is freed only when it is closed and no pending request
 *      refers to it (refs == 0);
 *   2. at most s->client_conns_max connections (SERVER_CLIENT_CONNS_MAX, less when RLIMIT_NOFILE leaves less after SERVER_FDS_RESERVED); at most pending_max
 *      requests waiting in the whole node (CLIENT_BUSY beyond).
 */
#ifndef KEEL_NODE_CLIENTS_H
#define KEEL_NODE_CLIENTS_H

#include "../io_real/fconn.h"
#include "server.h"

#define REDIS_PIPELINE_MAX 1024u
/* Room for one largest request plus one read chunk. */
#define REDIS_INPUT_BYTES_MAX (KEEL_VALUE_BYTES_MAX + 8192u + FCONN_READ_BYTES)

struct redis_slot {
	uint32_t op; /* enum kv_op, 0 for local replies */
	bool ready;
	uint8_t *reply;
	size_t reply_bytes;
};

struct redis_state {
	uint64_t client_id, seq;
	uint64_t next_id, head_id; /* request ids: next to give, next to send */
	uint32_t writes_inflight; /* SET/DEL sent, not yet answered */
	uint32_t reads_inflight;  /* GET sent, not yet answered */
	bool quit;
	bool busy; /* inside process(): no re-entry */
	uint8_t *in;
	size_t in_have;
	struct redis_slot slots[REDIS_PIPELINE_MAX];
};

struct cconn {
	struct fconn f;
	struct server *s;
	struct redis_state *rs; /* non-NULL on the Redis port */
	bool hello_ok;
	bool closed;
	uint32_t refs;
	struct cconn *prev, *next;
};

/* redis.c */
struct redis_state *redis_state_new(void);
void redis_state_free(struct redis_state *rs);
int redis_on_bytes(struct fconn *f, const uint8_t *p, size_t n);
void redis_deliver(struct server *s, struct cconn *c,
		   const struct client_response *r);
void redis_resume(struct cconn *c);

#endif
