/*
 * record.h: the stored record formats (DESIGN §4), pure: no I/O.
 *
 * Every record the stores keep for the log, meta and sessions has one shape,
 * all integers big-endian:
 *
 *   offset  bytes  field
 *   0       1      kind     enum record_kind
 *   1       1      version  RECORD_VERSION
 *   2       2      reserved must be 0
 *   4       4      payload_bytes
 *   8       n      payload  (per kind, below)
 *   8+n     8      checksum XXH3_64bits(header || payload)
 *
 * Payloads:
 *   ENTRY    term u64, index u64, type u32, data (payload_bytes - 20)
 *   IDS      cluster_id u64, node_id u64
 *   HARD     term u64, vote u64, commit u64
 *   SNAP     index u64, term u64, member_count u32, then per member:
 *            id u64, role u32, peer_len u8, peer, client_len u8, client;
 *            then next_id u64 when the membership's next_id is nonzero
 *            (absent in records written before it existed; never 0, so
 *            each value has one encoding)
 *   APPLIED  index u64
 *   SESSION  client_id u64, seq u64, last_index u64, status u32
 *   FORMAT   magic u64 (RECORD_STORE_MAGIC), store version u32
 *
 * Invariants:
 *   R1 encode asserts its input is one of our own valid values, then
 *      re-decodes what it wrote and asserts it reads back (checksum checked
 *      when written).
 *   R2 decode accepts any byte buffer: every length, field and the checksum
 *      is checked and any mismatch returns KEEL_ECORRUPT; decode never
 *      asserts on input and never reads outside p[0..n).
 *   R3 a decoded entry's data points into the caller's buffer.
 */
#ifndef KEEL_RECORD_H
#define KEEL_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "msg.h"
#include "store.h"

#define RECORD_VERSION 1u
#define RECORD_HEADER_BYTES 8u
#define RECORD_TRAILER_BYTES 8u
#define RECORD_OVERHEAD (RECORD_HEADER_BYTES + RECORD_TRAILER_BYTES)

#define RECORD_STORE_MAGIC 0x4b45454c53544f52ull /* "KEELSTOR" */
/* Store format versions: this build writes RECORD_STORE_VERSION and reads
 * back to RECORD_STORE_VERSION_MIN. 2: the snapshot point may end with
 * next_id (membership); a version 1 store has none and is marked version
 * 2 when this build opens it for writing, so that an older build refuses
 * it as another version instead of reporting a corrupt record. */
#define RECORD_STORE_VERSION 2u
#define RECORD_STORE_VERSION_MIN 1u

enum record_kind {
	RECORD_ENTRY = 1,
	RECORD_IDS = 2,
	RECORD_HARD = 3,
	RECORD_SNAP = 4,
	RECORD_APPLIED = 5,
	RECORD_SESSION = 6,
	RECORD_FORMAT = 7,
};

#define RECORD_ENTRY_FIXED_BYTES 20u
#define RECORD_IDS_BYTES (RECORD_OVERHEAD + 16u)
#define RECORD_HARD_BYTES (RECORD_OVERHEAD + 24u)
#define RECORD_APPLIED_BYTES (RECORD_OVERHEAD + 8u)
#define RECORD_SESSION_BYTES (RECORD_OVERHEAD + 28u)
#define RECORD_FORMAT_BYTES (RECORD_OVERHEAD + 12u)
#define RECORD_MEMBER_BYTES_MAX (8u + 4u + 2u * KEEL_ADDR_BYTES_MAX)
#define RECORD_SNAP_BYTES_MAX \
	(RECORD_OVERHEAD + 20u + KEEL_MEMBERS_MAX * RECORD_MEMBER_BYTES_MAX + 8u)
#define RECORD_ENTRY_BYTES_MAX \
	(RECORD_OVERHEAD + RECORD_ENTRY_FIXED_BYTES + KEEL_ENTRY_BYTES_MAX)

/* Size of the record for e. */
size_t record_entry_bytes(const struct entry *e);
/* Encode e (asserted valid: term, index >= 1, known type, data_bytes <=
 * KEEL_ENTRY_BYTES_MAX) into out[0..cap), cap >= record_entry_bytes(e).
 * Returns the bytes written. */
size_t record_entry_encode(const struct entry *e, uint8_t *out, size_t cap);
/* Decode an entry record; e->data points into p. 0 or KEEL_ECORRUPT. */
int record_entry_decode(const uint8_t *p, size_t n, struct entry *e);
/* 0 when e is an entry we may store (the decoder's checks), else
 * KEEL_EINVAL. */
int record_entry_validate(const struct entry *e);

size_t record_ids_encode(uint64_t cluster_id, keel_node_id node_id,
			 uint8_t *out, size_t cap);
int record_ids_decode(const uint8_t *p, size_t n, uint64_t *cluster_id,
		      keel_node_id *node_id);

size_t record_hard_encode(const struct raft_hard_state *hs, uint8_t *out,
			  size_t cap);
int record_hard_decode(const uint8_t *p, size_t n, struct raft_hard_state *hs);

/* Snapshot point: index, term and the membership as of index. The
 * membership's addresses must be NUL-terminated (asserted on encode). */
size_t record_snap_bytes(const struct membership *m);
size_t record_snap_encode(uint64_t index, uint64_t term,
			  const struct membership *m, uint8_t *out, size_t cap);
int record_snap_decode(const uint8_t *p, size_t n, uint64_t *index,
		       uint64_t *term, struct membership *m);
/* 0 when m can be stored (counts, roles, NUL-terminated addresses, every
 * id below a nonzero next_id), else KEEL_EINVAL. */
int record_membership_validate(const struct membership *m);

/* A snapshot item as every store's stage_put and core/snapshot.c's chunk
 * decoder accept it (core/store.h, core/snapshot.h): a kv pair with a key
 * of 1..KEEL_KEY_BYTES_MAX bytes and a value of at most
 * KEEL_VALUE_BYTES_MAX, or a session with a client id and a known
 * status. */
bool store_item_valid(const struct store_item *it);

size_t record_applied_encode(uint64_t index, uint8_t *out, size_t cap);
int record_applied_decode(const uint8_t *p, size_t n, uint64_t *index);

/* Session: client_id != 0, status a known enum kv_status. */
size_t record_session_encode(const struct kv_session *se, uint8_t *out,
			     size_t cap);
int record_session_decode(const uint8_t *p, size_t n, struct kv_session *se);

/* The store format marker, for a version in RECORD_STORE_VERSION_MIN..
 * RECORD_STORE_VERSION. Decode: 0 with *version, KEEL_EBADMAGIC when the
 * record is sound but not keel's, KEEL_EBADVERSION for a version outside
 * that range. */
size_t record_format_encode(uint32_t version, uint8_t *out, size_t cap);
int record_format_decode(const uint8_t *p, size_t n, uint32_t *version);

/* Big-endian helpers shared by the stores (keys). */
void record_put_u64(uint8_t *p, uint64_t v);
uint64_t record_get_u64(const uint8_t *p);

#endif
