/*
 * codec_frame.c: frames (header + payload + xxh3 checksum) and the streaming
 * frame decoder. Layout in codec.h.
 *
 * Invariants:
 *  1. A frame is accepted only if its magic, version, type, reserved bytes,
 *     length (<= KEEL_FRAME_BYTES_MAX) and checksum all check; the header is
 *     checked as soon as its 12 bytes are in, before any payload is buffered.
 *  2. The stream buffers at most one frame: buf_cap <= KEEL_FRAME_BYTES_MAX
 *     + CODEC_FRAME_OVERHEAD; it grows only with bytes received (at most
 *     twice them, or STREAM_BUF_BYTES_MIN), so a header that claims a large
 *     frame costs nothing until the bytes come; between frames at most
 *     STREAM_BUF_BYTES_KEEP stays allocated.
 *  3. A stream error is sticky: once error != 0, every feed returns it and
 *     consumes nothing.
 *  4. Nothing here asserts on input bytes.
 */
#include <string.h>

#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

#include "assert.h"
#include "codec.h"
#include "codec_pb.h"
#include "err.h"

#define STREAM_BUF_BYTES_MAX (KEEL_FRAME_BYTES_MAX + CODEC_FRAME_OVERHEAD)
#define STREAM_BUF_BYTES_MIN 4096u   /* first allocation for a frame body */
#define STREAM_BUF_BYTES_KEEP 65536u /* kept between frames; more is freed */

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static void put_be64(uint8_t *p, uint64_t v)
{
	put_be32(p, (uint32_t)(v >> 32));
	put_be32(p + 4, (uint32_t)v);
}

static uint64_t get_be64(const uint8_t *p)
{
	return (uint64_t)get_be32(p) << 32 | get_be32(p + 4);
}

static bool frame_type_known(uint32_t type)
{
	return type >= FRAME_HELLO && type <= FRAME_TYPE_MAX;
}

/* Check a complete header; on success *payload_bytes is its length. */
static int header_check(const uint8_t *h, uint32_t *type,
			uint32_t *payload_bytes)
{
	if (get_be32(h) != CODEC_MAGIC)
		return KEEL_EBADMAGIC;
	if (h[4] != CODEC_VERSION)
		return KEEL_EBADVERSION;
	if (!frame_type_known(h[5]))
		return KEEL_EBADTYPE;
	if (h[6] != 0 || h[7] != 0)
		return KEEL_EMALFORMED;
	uint32_t len = get_be32(h + 8);
	if (len > KEEL_FRAME_BYTES_MAX)
		return KEEL_ETOOBIG;
	*type = h[5];
	*payload_bytes = len;
	return 0;
}

static uint64_t frame_checksum(const uint8_t *header, const uint8_t *payload,
			       uint32_t payload_bytes)
{
	XXH3_state_t st;
	XXH3_64bits_reset(&st);
	XXH3_64bits_update(&st, header, CODEC_HEADER_BYTES);
	XXH3_64bits_update(&st, payload, payload_bytes);
	return XXH3_64bits_digest(&st);
}

size_t codec_frame_bytes(uint32_t payload_bytes)
{
	return (size_t)payload_bytes + CODEC_FRAME_OVERHEAD;
}

int codec_frame_seal(uint32_t type, uint32_t payload_bytes, uint8_t *out,
		     size_t cap)
{
	KEEL_ASSERT(frame_type_known(type));
	KEEL_ASSERT(payload_bytes <= KEEL_FRAME_BYTES_MAX); /* callers check */
	KEEL_ASSERT(cap >= codec_frame_bytes(payload_bytes));
	put_be32(out, CODEC_MAGIC);
	out[4] = (uint8_t)CODEC_VERSION;
	out[5] = (uint8_t)type;
	out[6] = 0;
	out[7] = 0;
	put_be32(out + 8, payload_bytes);
	uint8_t *payload = out + CODEC_HEADER_BYTES;
	put_be64(payload + payload_bytes,
		 frame_checksum(out, payload, payload_bytes));
	return (int)codec_frame_bytes(payload_bytes);
}

int codec_frame_encode(uint32_t type, const uint8_t *payload,
		       uint32_t payload_bytes, uint8_t *out, size_t cap)
{
	if (payload_bytes > KEEL_FRAME_BYTES_MAX ||
	    cap < codec_frame_bytes(payload_bytes))
		return KEEL_ETOOBIG;
	if (payload_bytes > 0)
		memmove(out + CODEC_HEADER_BYTES, payload, payload_bytes);
	return codec_frame_seal(type, payload_bytes, out, cap);
}

int codec_frame_decode(const uint8_t *buf, size_t n, uint32_t *type,
		       const uint8_t **payload, uint32_t *payload_bytes)
{
	uint32_t t, len;

	if (n < CODEC_HEADER_BYTES)
		return KEEL_ETRUNCATED;
	int rc = header_check(buf, &t, &len);
	if (rc != 0)
		return rc;
	if (n < codec_frame_bytes(len))
		return KEEL_ETRUNCATED;
	if (n > codec_frame_bytes(len))
		return KEEL_EMALFORMED;
	const uint8_t *p = buf + CODEC_HEADER_BYTES;
	if (get_be64(p + len) != frame_checksum(buf, p, len))
		return KEEL_ECHECKSUM;
	*type = t;
	*payload = p;
	*payload_bytes = len;
	return 0;
}

/* ---- Streaming decoder ---------------------------------------------------- */

void codec_stream_init(struct codec_stream *s, const struct keel_alloc *alloc)
{
	memset(s, 0, sizeof(*s));
	if (alloc != NULL)
		s->alloc = *alloc;
}

void codec_stream_close(struct codec_stream *s)
{
	keel_free(&s->alloc, s->buf);
	s->buf = NULL;
	s->buf_cap = 0;
	s->payload = NULL;
}

/* Make room for need bytes of the current frame's body. The buffer grows
 * with the bytes that actually arrived (doubling, from STREAM_BUF_BYTES_MIN),
 * never ahead of them to the length a header merely claims (invariant 2). */
static int stream_reserve(struct codec_stream *s, uint32_t need,
			  uint32_t body_bytes)
{
	KEEL_ASSERT(need <= body_bytes);
	KEEL_ASSERT(body_bytes <= STREAM_BUF_BYTES_MAX);
	if (need <= s->buf_cap)
		return 0;
	uint32_t cap = s->buf_cap < STREAM_BUF_BYTES_MIN / 2 ? STREAM_BUF_BYTES_MIN
							     : 2 * s->buf_cap;
	if (cap < need)
		cap = need;
	if (cap > body_bytes)
		cap = body_bytes;
	uint8_t *p = keel_realloc(&s->alloc, s->buf, cap);
	if (p == NULL)
		return KEEL_ENOMEM;
	s->buf = p;
	s->buf_cap = cap;
	return 0;
}

static int stream_fail(struct codec_stream *s, int err)
{
	KEEL_ASSERT(err < 0);
	s->error = err;
	s->payload = NULL;
	return err;
}

/* Consume header bytes; once complete, check it and size the buffer. */
static int stream_header(struct codec_stream *s, const uint8_t *p, size_t n,
			 size_t *used)
{
	size_t take = CODEC_HEADER_BYTES - s->header_have;
	if (take > n)
		take = n;
	if (take > 0)
		memcpy(s->header + s->header_have, p, take);
	s->header_have += (uint32_t)take;
	*used = take;
	if (s->header_have < CODEC_HEADER_BYTES)
		return 0;
	int rc = header_check(s->header, &s->frame_type, &s->payload_bytes);
	if (rc != 0)
		return rc;
	if (s->buf_cap > STREAM_BUF_BYTES_KEEP) { /* after a large frame */
		keel_free(&s->alloc, s->buf);
		s->buf = NULL;
		s->buf_cap = 0;
	}
	return 0;
}

int codec_stream_feed(struct codec_stream *s, const uint8_t *p, size_t n,
		      size_t *used)
{
	*used = 0;
	if (s->error != 0)
		return s->error;
	if (s->frame_ready) { /* the previous frame has been read */
		s->frame_ready = false;
		s->payload = NULL;
		s->header_have = 0;
		s->buf_have = 0;
	}
	if (s->header_have < CODEC_HEADER_BYTES) {
		int rc = stream_header(s, p, n, used);
		if (rc != 0)
			return stream_fail(s, rc);
		if (s->header_have < CODEC_HEADER_BYTES)
			return 0;
	}
	uint32_t body_bytes = s->payload_bytes + CODEC_TRAILER_BYTES;
	KEEL_ASSERT(s->buf_have < body_bytes);
	size_t take = body_bytes - s->buf_have;
	if (take > n - *used)
		take = n - *used;
	int rc = stream_reserve(s, s->buf_have + (uint32_t)take, body_bytes);
	if (rc != 0)
		return stream_fail(s, rc);
	if (take > 0)
		memcpy(s->buf + s->buf_have, p + *used, take);
	s->buf_have += (uint32_t)take;
	*used += take;
	if (s->buf_have < body_bytes)
		return 0;
	uint64_t want = frame_checksum(s->header, s->buf, s->payload_bytes);
	if (get_be64(s->buf + s->payload_bytes) != want)
		return stream_fail(s, KEEL_ECHECKSUM);
	s->payload = s->buf;
	s->frame_ready = true;
	return 1;
}
