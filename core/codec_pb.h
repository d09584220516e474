/*
 * codec_pb.h: helpers shared by the codec's files (not a public contract).
 *
 * Invariants:
 *  1. Every protobuf-c unpack runs under a byte budget (codec_pb_budget):
 *     however a payload is crafted, unpacking allocates at most
 *     CODEC_UNPACK_BYTES(payload bytes); over budget the unpack fails and
 *     the decoder returns KEEL_ETOOBIG (KEEL_ENOMEM only when the allocator
 *     itself fails).
 *  2. Every allocation protobuf-c makes goes through struct keel_alloc.
 *  3. Wire strings are `bytes`: valid when shorter than their C buffer and
 *     free of NUL; copying one always NUL-terminates.
 */
#ifndef KEEL_CODEC_PB_H
#define KEEL_CODEC_PB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alloc.h"
#include "codec.h"
#include "keel.pb-c.h"

/* Unpacking a payload of n bytes may allocate at most this much: every
 * legitimate message needs less than one copy of its bytes plus its fixed
 * structs (at most KEEL_APPEND_ENTRIES_MAX entries or KEEL_BATCH_COMMANDS_MAX
 * commands, well under 1 MiB). */
#define CODEC_UNPACK_BYTES(n) (2u * (size_t)(n) + 1024u * 1024u)

struct codec_pb_budget {
	struct keel_alloc alloc;
	size_t used_bytes;
	size_t max_bytes;
	bool over;   /* an allocation was refused for the budget */
	bool failed; /* the allocator itself failed */
};

/* Unpack payload[0..n) as desc's message under a budget. On success returns
 * 0 and *out; otherwise KEEL_EMALFORMED, KEEL_ETOOBIG or KEEL_ENOMEM. */
int codec_pb_unpack(const ProtobufCMessageDescriptor *desc,
		    const struct keel_alloc *alloc, const uint8_t *payload,
		    uint32_t n, ProtobufCMessage **out);
void codec_pb_free(const struct keel_alloc *alloc, ProtobufCMessage *pb);

/* Pack pb into a frame of the given type at out[0..cap). Returns the frame's
 * bytes or KEEL_ETOOBIG. */
int codec_pb_frame(uint32_t type, const ProtobufCMessage *pb, uint8_t *out,
		   size_t cap);
size_t codec_pb_frame_bytes(const ProtobufCMessage *pb);

/* Write the header and checksum of a frame whose payload_bytes are already
 * at out + CODEC_HEADER_BYTES. The caller has checked payload_bytes <=
 * KEEL_FRAME_BYTES_MAX and cap (asserted). Returns the frame's bytes. */
int codec_frame_seal(uint32_t type, uint32_t payload_bytes, uint8_t *out,
		     size_t cap);

/* Wire string checks and copies (invariant 3). */
int codec_pb_string_check(const ProtobufCBinaryData *b, size_t cap);
void codec_pb_string_copy(char *dst, size_t cap, const ProtobufCBinaryData *b);
/* A C string from our own memory: NUL within cap. */
bool codec_cstring_ok(const char *s, size_t cap);

/* Membership <-> protobuf. to_pb fills caller-provided arrays of
 * KEEL_MEMBERS_MAX; from_pb validates (codec_membership_validate). */
void codec_membership_to_pb(const struct membership *m, Keel__Membership *pb,
			    Keel__Member *members, Keel__Member **ptrs);
int codec_membership_from_pb(const Keel__Membership *pb, struct membership *m);

/* codec_membership_decode with an allocator for the unpack. */
int codec_membership_decode_with(const uint8_t *p, uint32_t n,
				 const struct keel_alloc *alloc,
				 struct membership *m);

/* Sizes over UINT32_MAX cannot come from a bounded frame; clamped so the
 * validation that follows rejects them as too big. */
uint32_t codec_len32(size_t n);
ProtobufCBinaryData codec_pb_bytes(const void *p, uint32_t n);

/* Command <-> protobuf. from_pb only copies (pointers into pb). */
void codec_command_to_pb(const struct kv_command *c, Keel__Command *pb);
void codec_command_from_pb(const Keel__Command *pb, struct kv_command *c);

#endif
