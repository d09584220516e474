/*
 * codec_pb.c: protobuf-c glue for the codec: the budgeted allocator that
 * routes protobuf-c through struct keel_alloc, packing into frames, and wire
 * strings. See codec_pb.h for the invariants.
 */
#include "codec_pb.h"

#include <string.h>

#include "assert.h"
#include "err.h"

/* Each block carries its size in front so the budget can be given back. */
#define BLOCK_HEADER_BYTES 16u
_Static_assert(BLOCK_HEADER_BYTES >= sizeof(size_t), "size fits the header");
_Static_assert(BLOCK_HEADER_BYTES % _Alignof(max_align_t) == 0,
	       "header keeps blocks aligned");

static void *budget_alloc(void *ctx, size_t bytes)
{
	struct codec_pb_budget *b = ctx;

	if (bytes > b->max_bytes - b->used_bytes ||
	    BLOCK_HEADER_BYTES > b->max_bytes - b->used_bytes - bytes) {
		b->over = true;
		return NULL;
	}
	uint8_t *p = keel_malloc(&b->alloc, bytes + BLOCK_HEADER_BYTES);
	if (p == NULL) {
		b->failed = true;
		return NULL;
	}
	size_t total = bytes + BLOCK_HEADER_BYTES;
	memcpy(p, &total, sizeof(total));
	b->used_bytes += total;
	KEEL_ASSERT(b->used_bytes <= b->max_bytes);
	return p + BLOCK_HEADER_BYTES;
}

static void budget_free(void *ctx, void *ptr)
{
	struct codec_pb_budget *b = ctx;

	if (ptr == NULL)
		return;
	uint8_t *p = (uint8_t *)ptr - BLOCK_HEADER_BYTES;
	size_t total;
	memcpy(&total, p, sizeof(total));
	KEEL_ASSERT(total >= BLOCK_HEADER_BYTES);
	KEEL_ASSERT(total <= b->used_bytes);
	b->used_bytes -= total;
	keel_free(&b->alloc, p);
}

static void budget_init(struct codec_pb_budget *b,
			const struct keel_alloc *alloc, size_t max_bytes)
{
	memset(b, 0, sizeof(*b));
	if (alloc != NULL)
		b->alloc = *alloc;
	b->max_bytes = max_bytes;
}

int codec_pb_unpack(const ProtobufCMessageDescriptor *desc,
		    const struct keel_alloc *alloc, const uint8_t *payload,
		    uint32_t n, ProtobufCMessage **out)
{
	struct codec_pb_budget b;
	budget_init(&b, alloc, CODEC_UNPACK_BYTES(n));
	ProtobufCAllocator pa = {
		.alloc = budget_alloc,
		.free = budget_free,
		.allocator_data = &b,
	};

	*out = NULL;
	if (n > KEEL_FRAME_BYTES_MAX)
		return KEEL_ETOOBIG;
	ProtobufCMessage *pb = protobuf_c_message_unpack(desc, &pa, n, payload);
	if (pb == NULL) {
		KEEL_ASSERT(b.used_bytes == 0);
		if (b.over)
			return KEEL_ETOOBIG;
		if (b.failed)
			return KEEL_ENOMEM;
		return KEEL_EMALFORMED;
	}
	*out = pb;
	return 0;
}

void codec_pb_free(const struct keel_alloc *alloc, ProtobufCMessage *pb)
{
	struct codec_pb_budget b;
	budget_init(&b, alloc, SIZE_MAX);
	/* The sizes freed were counted against another budget; this one only
	 * needs room to subtract. */
	b.used_bytes = SIZE_MAX;
	ProtobufCAllocator pa = {
		.alloc = budget_alloc,
		.free = budget_free,
		.allocator_data = &b,
	};
	if (pb != NULL)
		protobuf_c_message_free_unpacked(pb, &pa);
}

size_t codec_pb_frame_bytes(const ProtobufCMessage *pb)
{
	size_t n = protobuf_c_message_get_packed_size(pb);
	return codec_frame_bytes(n > UINT32_MAX ? UINT32_MAX : (uint32_t)n);
}

int codec_pb_frame(uint32_t type, const ProtobufCMessage *pb, uint8_t *out,
		   size_t cap)
{
	size_t n = protobuf_c_message_get_packed_size(pb);

	if (n > KEEL_FRAME_BYTES_MAX || cap < CODEC_FRAME_OVERHEAD ||
	    n > cap - CODEC_FRAME_OVERHEAD)
		return KEEL_ETOOBIG;
	size_t packed = protobuf_c_message_pack(pb, out + CODEC_HEADER_BYTES);
	KEEL_ASSERT(packed == n);
	return codec_frame_seal(type, (uint32_t)n, out, cap);
}

ProtobufCBinaryData codec_pb_bytes(const void *p, uint32_t n)
{
	ProtobufCBinaryData b = { .len = n, .data = (uint8_t *)(uintptr_t)p };
	return b;
}

uint32_t codec_len32(size_t n)
{
	return n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
}

int codec_pb_string_check(const ProtobufCBinaryData *b, size_t cap)
{
	KEEL_ASSERT(cap > 0);
	if (b->len >= cap)
		return KEEL_ETOOBIG;
	if (b->len > 0 && memchr(b->data, 0, b->len) != NULL)
		return KEEL_EMALFORMED;
	return 0;
}

void codec_pb_string_copy(char *dst, size_t cap, const ProtobufCBinaryData *b)
{
	KEEL_ASSERT(b->len < cap);
	if (b->len > 0)
		memcpy(dst, b->data, b->len);
	memset(dst + b->len, 0, cap - b->len);
}

bool codec_cstring_ok(const char *s, size_t cap)
{
	return memchr(s, 0, cap) != NULL;
}
