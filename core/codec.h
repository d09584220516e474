/*
 * codec.h: keel's wire and record codec (DESIGN §5).
 *
 * Payloads are protobuf (core/proto/keel.proto, compiled by protoc-c at build
 * time). On a stream each payload travels in a frame:
 *
 *   offset  bytes  field
 *   0       4      magic    CODEC_MAGIC, big-endian
 *   4       1      version  CODEC_VERSION
 *   5       1      type     enum frame_type
 *   6       2      reserved must be 0
 *   8       4      length   payload bytes, big-endian, <= KEEL_FRAME_BYTES_MAX
 *   12      length payload  protobuf
 *   12+len  8      checksum XXH3_64bits(header || payload), big-endian
 *
 * Every decode validates every field after unpacking (ranges, counts, sizes,
 * index arithmetic that cannot overflow) and returns a distinct error code;
 * nothing on the input path asserts. Every encode asserts the invariants of
 * what it is given (our own data) and the decoder checks them again.
 */
#ifndef KEEL_CODEC_H
#define KEEL_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alloc.h"
#include "msg.h"

#define CODEC_MAGIC 0x4b45454cu /* "KEEL" */
#define CODEC_VERSION 1u
#define CODEC_HEADER_BYTES 12u
#define CODEC_TRAILER_BYTES 8u
#define CODEC_FRAME_OVERHEAD (CODEC_HEADER_BYTES + CODEC_TRAILER_BYTES)

enum frame_type {
	FRAME_HELLO = 1,           /* struct codec_hello, first on every connection */
	FRAME_PEER = 2,            /* struct msg */
	FRAME_CLIENT_REQUEST = 3,  /* struct client_request */
	FRAME_CLIENT_RESPONSE = 4, /* struct client_response */
};
#define FRAME_TYPE_MAX FRAME_CLIENT_RESPONSE

/* ---- Hello ------------------------------------------------------------- */

enum hello_role { HELLO_PEER = 1, HELLO_CLIENT = 2 };

struct codec_hello {
	uint32_t protocol_version; /* CODEC_VERSION */
	uint64_t cluster_id;       /* 0 from a client that does not know it */
	keel_node_id node_id;      /* sender; 0 from a client */
	uint32_t role;             /* enum hello_role */
};

/* ---- Client protocol --------------------------------------------------- */

enum client_req_kind {
	CLIENT_REQ_KV = 1,     /* cmd */
	CLIENT_REQ_STATUS = 2, /* node status */
	CLIENT_REQ_MEMBER = 3, /* change: a membership change (leader only);
				  answered once its config entry commits, with
				  member_id and cluster_id */
	CLIENT_REQ_TRANSFER = 4, /* transfer_to: hand leadership to that voter
				    (leader only); answered once started */
};
#define CLIENT_REQ_KIND_MAX CLIENT_REQ_TRANSFER

struct client_request {
	uint64_t request_id; /* connection-local, echoed in the response */
	uint32_t kind;       /* enum client_req_kind */
	uint32_t consistency; /* enum kv_consistency, for KV_GET */
	struct kv_command cmd;     /* CLIENT_REQ_KV */
	struct member_change change; /* CLIENT_REQ_MEMBER: kind known; id > 0
					except for an add; addresses
					NUL-terminated, nonempty peer_addr
					for an add */
	keel_node_id transfer_to;  /* CLIENT_REQ_TRANSFER: > 0 */
};

enum client_status {
	CLIENT_OK = 0,
	CLIENT_NOT_FOUND = 1,
	CLIENT_CAS_FAILED = 2,
	CLIENT_TOO_BIG = 3,
	CLIENT_STALE_SEQ = 4,
	CLIENT_NOT_LEADER = 5,    /* leader_id/leader_addr hint, 0/"" if unknown */
	CLIENT_UNAVAILABLE = 6,   /* e.g. leadership lost mid-request: outcome unknown */
	CLIENT_BAD_REQUEST = 7,   /* validation failed; see message */
	CLIENT_SHUTTING_DOWN = 8, /* node is stopping; request not applied */
	CLIENT_BUSY = 9,          /* back-pressure; request not applied */
};
#define CLIENT_STATUS_MAX CLIENT_BUSY

struct client_node_status {
	keel_node_id id;
	uint32_t role; /* enum raft_role */
	uint64_t term;
	keel_node_id leader;
	uint64_t commit_index;
	uint64_t applied_index;
	uint64_t last_index;
	struct membership membership;
};

struct client_response {
	uint64_t request_id;
	uint32_t status; /* enum client_status */
	bool stale;      /* a get served from local applied state, not linearizable */
	uint32_t value_bytes;
	const uint8_t *value; /* get: the value */
	keel_node_id leader_id;
	char leader_addr[KEEL_ADDR_BYTES_MAX]; /* the leader's client address */
	char message[128];                     /* human-readable detail, "" if none */
	bool has_node_status;
	struct client_node_status node_status; /* CLIENT_REQ_STATUS */
	keel_node_id member_id; /* CLIENT_REQ_MEMBER: the member changed (an
				   add's assigned id); 0 otherwise */
	uint64_t cluster_id;    /* CLIENT_REQ_MEMBER: the cluster's id, so a
				   joiner can record it; 0 otherwise */
};

/* ---- Frames ------------------------------------------------------------ */

/* Encode one frame around a payload. Returns bytes written, or KEEL_ETOOBIG
 * when cap is too small or payload_bytes > KEEL_FRAME_BYTES_MAX. */
int codec_frame_encode(uint32_t type, const uint8_t *payload,
		       uint32_t payload_bytes, uint8_t *out, size_t cap);

/* Size of the frame for a payload of payload_bytes. */
size_t codec_frame_bytes(uint32_t payload_bytes);

/*
 * Streaming frame decoder: accepts bytes in arbitrary chunks. Buffers at
 * most one frame (<= KEEL_FRAME_BYTES_MAX + CODEC_FRAME_OVERHEAD).
 *
 *   codec_stream_init(&s, alloc);
 *   on bytes: codec_stream_feed(&s, p, n, &used) until all consumed:
 *     returns 1 when a complete, checked frame is available (used tells how
 *     many bytes were consumed); read it with s.frame_type/s.payload/
 *     s.payload_bytes, valid until the next feed;
 *     returns 0 when it needs more bytes (all n consumed);
 *     returns < 0 (KEEL_EBADMAGIC, KEEL_EBADVERSION, KEEL_EBADTYPE,
 *     KEEL_ETOOBIG, KEEL_ECHECKSUM, KEEL_EMALFORMED for nonzero reserved,
 *     KEEL_ENOMEM): the stream is poisoned; every later feed returns the
 *     same error. Close the connection.
 */
struct codec_stream {
	struct keel_alloc alloc;
	uint8_t header[CODEC_HEADER_BYTES];
	uint32_t header_have;
	uint8_t *buf; /* payload + trailer of the current frame */
	uint32_t buf_cap;
	uint32_t buf_have;
	uint32_t frame_type;
	uint32_t payload_bytes;
	const uint8_t *payload;
	int error; /* sticky */
	bool frame_ready;
};

void codec_stream_init(struct codec_stream *s, const struct keel_alloc *alloc);
int codec_stream_feed(struct codec_stream *s, const uint8_t *p, size_t n,
		      size_t *used);
void codec_stream_close(struct codec_stream *s);

/* Decode and check one whole frame held in buf[0..n). On success *type,
 * *payload and *payload_bytes point into buf. Returns 0, KEEL_ETRUNCATED,
 * KEEL_EBADMAGIC, KEEL_EBADVERSION, KEEL_EBADTYPE, KEEL_ETOOBIG,
 * KEEL_ECHECKSUM, or KEEL_EMALFORMED (bytes after the frame). */
int codec_frame_decode(const uint8_t *buf, size_t n, uint32_t *type,
		       const uint8_t **payload, uint32_t *payload_bytes);

/* ---- Messages ---------------------------------------------------------- */

/*
 * Each *_encode writes a whole frame (header, protobuf payload, checksum)
 * into out[0..cap) and returns its byte count, or KEEL_ETOOBIG.
 * *_encoded_bytes gives the exact size first.
 *
 * Each *_decode takes a frame's payload (from the stream decoder), unpacks
 * and validates it. Decoded pointers (entries, keys, values, chunks) point
 * into memory held by the codec_decoded 'd', valid until codec_decoded_free.
 * Returns 0, KEEL_EMALFORMED (protobuf would not unpack or a required field
 * is missing), KEEL_ERANGE (a field out of range or inconsistent),
 * KEEL_ETOOBIG (a count or size over its limit) or KEEL_ENOMEM; also
 * KEEL_EBADTYPE (msg: unknown type) and KEEL_EBADVERSION (hello: another
 * protocol version). On failure nothing needs freeing.
 */
struct codec_decoded {
	struct keel_alloc alloc;
	void *pb;      /* the unpacked protobuf message */
	void *extra;   /* arrays built from it (e.g. entries) */
};
void codec_decoded_free(struct codec_decoded *d);

size_t codec_msg_encoded_bytes(const struct msg *m);
int codec_msg_encode(const struct msg *m, uint8_t *out, size_t cap);
int codec_msg_decode(const uint8_t *payload, uint32_t n,
		     const struct keel_alloc *alloc, struct msg *m,
		     struct codec_decoded *d);

size_t codec_hello_encoded_bytes(const struct codec_hello *h);
int codec_hello_encode(const struct codec_hello *h, uint8_t *out, size_t cap);
int codec_hello_decode(const uint8_t *payload, uint32_t n,
		       struct codec_hello *h); /* no allocation kept */

size_t codec_request_encoded_bytes(const struct client_request *r);
int codec_request_encode(const struct client_request *r, uint8_t *out,
			 size_t cap);
int codec_request_decode(const uint8_t *payload, uint32_t n,
			 const struct keel_alloc *alloc,
			 struct client_request *r, struct codec_decoded *d);

size_t codec_response_encoded_bytes(const struct client_response *r);
int codec_response_encode(const struct client_response *r, uint8_t *out,
			  size_t cap);
int codec_response_decode(const uint8_t *payload, uint32_t n,
			  const struct keel_alloc *alloc,
			  struct client_response *r, struct codec_decoded *d);

/* ---- Entry payloads (not framed: they live inside log entries) --------- */

/* A batch of client write commands, the data of an ENTRY_COMMAND.
 * Encode returns bytes written or KEEL_ETOOBIG; decode fills cmds[0..*count)
 * (at most KEEL_BATCH_COMMANDS_MAX) pointing into d, and validates every
 * command (op is a write, key 1..KEEL_KEY_BYTES_MAX bytes, value and expected
 * <= KEEL_VALUE_BYTES_MAX, client_id and seq > 0). */
size_t codec_batch_encoded_bytes(const struct kv_command *cmds, uint32_t count);
int codec_batch_encode(const struct kv_command *cmds, uint32_t count,
		       uint8_t *out, size_t cap);
int codec_batch_decode(const uint8_t *p, uint32_t n,
		       const struct keel_alloc *alloc, struct kv_command *cmds,
		       uint32_t *count, struct codec_decoded *d);

/* A membership, the data of an ENTRY_CONFIG and part of a snapshot. Decode
 * validates: 1..KEEL_MEMBERS_MAX members, ids nonzero and distinct, roles
 * known, at least one voter, addresses NUL-terminated within
 * KEEL_ADDR_BYTES_MAX. */
size_t codec_membership_encoded_bytes(const struct membership *m);
int codec_membership_encode(const struct membership *m, uint8_t *out,
			    size_t cap);
int codec_membership_decode(const uint8_t *p, uint32_t n,
			    struct membership *m);

/* Validation shared by encoders (asserted) and decoders (checked). Each
 * returns 0 or the failed rule's code: KEEL_EBADTYPE (unknown msg type),
 * KEEL_EBADVERSION (hello version), KEEL_ETOOBIG (count or size over its
 * limit), KEEL_ERANGE (value out of range or inconsistent). */
int codec_msg_validate(const struct msg *m);
int codec_command_validate(const struct kv_command *c);
int codec_membership_validate(const struct membership *m);
int codec_batch_validate(const struct kv_command *cmds, uint32_t count);
int codec_hello_validate(const struct codec_hello *h);
int codec_request_validate(const struct client_request *r);
int codec_response_validate(const struct client_response *r);

#endif
