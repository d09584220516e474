/*
 * pending.h: client requests waiting for an answer, in a fixed-size table.
 *
 * A slot holds one request: which connection and request id to answer, and
 * what it waits for (a write's (client_id, seq) to be applied; a read's
 * ReadIndex answer; a read's turn on the storage thread). Writes are found by
 * (client_id, seq) through a chained hash; any slot is found by its token
 * (slot index + generation), so a stale token never matches a reused slot.
 *
 * Invariants:
 *   1. used <= cap; a slot is on the free list iff its kind is PENDING_FREE;
 *   2. a write slot is in the hash chain of its (client_id, seq), once.
 */
#ifndef KEEL_NODE_PENDING_H
#define KEEL_NODE_PENDING_H

#include <stdbool.h>
#include <stdint.h>

enum pending_kind {
	PENDING_FREE = 0,
	PENDING_WRITE = 1,     /* waits for apply of (client_id, seq) */
	PENDING_READ_INDEX = 2, /* waits for raft's read index */
	PENDING_READ_APPLY = 3, /* has an index; waits for applied >= index */
	PENDING_READ_DISK = 4,  /* submitted to the storage thread */
	PENDING_MEMBER = 5,     /* a membership change: waits for its config
				   entry (read_index) to be applied; client_id
				   holds the member's id */
};

struct cconn; /* a client connection (clients.c) */

struct pending {
	uint32_t kind;
	uint32_t gen;
	struct cconn *conn;
	uint64_t request_id;
	uint64_t client_id;
	uint64_t seq;
	uint64_t read_index;
	bool stale;
	bool proposed; /* write: in a proposed entry (else in the batch) */
	uint32_t key_bytes;
	uint8_t *key; /* reads: malloc'd copy */
	int32_t next;  /* hash chain or free list */
};

struct pending_table {
	uint32_t cap;
	uint32_t used;
	struct pending *slots;
	int32_t *buckets; /* cap * 2, power of two */
	uint32_t bucket_mask;
	int32_t free_head;
};

int pending_init(struct pending_table *t, uint32_t cap);
void pending_free(struct pending_table *t);

/* A free slot or NULL when full. */
struct pending *pending_alloc(struct pending_table *t, uint32_t kind);
void pending_release(struct pending_table *t, struct pending *p);

uint64_t pending_token(const struct pending_table *t, const struct pending *p);
struct pending *pending_by_token(struct pending_table *t, uint64_t token);

/* Writes: index the slot by its client_id/seq. */
void pending_index_write(struct pending_table *t, struct pending *p);
struct pending *pending_find_write(struct pending_table *t, uint64_t client_id,
				   uint64_t seq);

#endif
