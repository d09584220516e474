/*
 * fuzz_frame.c: the streaming frame decoder on arbitrary bytes cut into
 * arbitrary chunks.
 *
 * Input: 2 bytes that seed the chunk sizes, then the stream. When the
 * first byte's top bit is set, the harness first rewrites each frame's
 * checksum to match (walking the headers), so mutated payloads reach the
 * message decoders through the stream. Properties:
 *  1. the frames (offsets, types, payloads) and the final error are the same
 *     whether the stream is fed whole or in the input's chunks;
 *  2. each frame the stream yields is accepted by codec_frame_decode on its
 *     own bytes, with the same type and payload;
 *  3. a stream error is one of the documented codes and sticks;
 *  4. every frame's payload goes through the decoder its type names (the
 *     path from a socket to the core), with fuzz_roundtrip.c's properties.
 */
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "../core/err.h"
#include "fuzz.h"

#define FRAMES_MAX 4096u /* frames compared per input; later ones only decoded */

struct stream_run {
	size_t frame_end[FRAMES_MAX];
	uint32_t frame_type[FRAMES_MAX];
	uint32_t frame_count;
	int error;
};

static uint32_t next_chunk(uint32_t *state)
{
	*state = *state * 1103515245u + 12345u;
	uint32_t r = *state >> 16;
	/* Mostly small chunks, sometimes large ones. */
	return (r & 7) == 0 ? 1 + (r >> 3) % 4096 : 1 + (r >> 3) % 16;
}

static bool stream_err_ok(int rc)
{
	return rc == KEEL_EBADMAGIC || rc == KEEL_EBADVERSION ||
	       rc == KEEL_EBADTYPE || rc == KEEL_ETOOBIG ||
	       rc == KEEL_ECHECKSUM || rc == KEEL_EMALFORMED;
}

static void on_frame(const struct codec_stream *s, const uint8_t *data,
		     size_t end, struct stream_run *run, bool decode_payload)
{
	size_t frame_bytes = codec_frame_bytes(s->payload_bytes);
	FUZZ_CHECK(end >= frame_bytes);
	const uint8_t *frame = data + end - frame_bytes;
	uint32_t type, pn;
	const uint8_t *p;
	FUZZ_CHECK(codec_frame_decode(frame, frame_bytes, &type, &p, &pn) == 0);
	FUZZ_CHECK(type == s->frame_type);
	FUZZ_CHECK(pn == s->payload_bytes);
	FUZZ_CHECK(pn == 0 || memcmp(p, s->payload, pn) == 0);
	if (run->frame_count < FRAMES_MAX) {
		run->frame_end[run->frame_count] = end;
		run->frame_type[run->frame_count] = type;
	}
	run->frame_count++;
	if (decode_payload)
		(void)fuzz_frame_payload(type, s->payload, s->payload_bytes);
}

/* Feed data[0..n) in chunks (seeded; seed 0: whole) and record the run. */
static void stream_run(const uint8_t *data, size_t n, uint32_t seed,
		       struct stream_run *run, bool decode_payload)
{
	struct codec_stream s;
	codec_stream_init(&s, NULL);
	memset(run, 0, sizeof(*run));
	size_t off = 0;
	while (off < n) {
		size_t len = seed == 0 ? n - off : next_chunk(&seed);
		if (len > n - off)
			len = n - off;
		size_t pos = 0;
		while (pos < len) {
			size_t used;
			int rc = codec_stream_feed(&s, data + off + pos, len - pos, &used);
			FUZZ_CHECK(used <= len - pos);
			pos += used;
			if (rc < 0) {
				FUZZ_CHECK(stream_err_ok(rc));
				FUZZ_CHECK(codec_stream_feed(&s, data, n, &used) == rc);
				FUZZ_CHECK(used == 0);
				run->error = rc;
				codec_stream_close(&s);
				return;
			}
			if (rc == 0) {
				FUZZ_CHECK(pos == len);
				break;
			}
			FUZZ_CHECK(rc == 1);
			on_frame(&s, data, off + pos, run, decode_payload);
		}
		off += len;
	}
	codec_stream_close(&s);
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

/* Rewrite the checksum of every whole frame the headers describe. */
static void fix_checksums(uint8_t *p, size_t n)
{
	size_t off = 0;
	while (n - off >= CODEC_FRAME_OVERHEAD) {
		uint32_t len = be32(p + off + 8);
		if (len > n - off - CODEC_FRAME_OVERHEAD)
			return;
		uint8_t *t = p + off + CODEC_HEADER_BYTES + len;
		uint64_t sum = XXH3_64bits(p + off, CODEC_HEADER_BYTES + (size_t)len);
		for (int i = 7; i >= 0; i--, sum >>= 8)
			t[i] = (uint8_t)sum;
		off += codec_frame_bytes(len);
	}
}

static void run_both(const uint8_t *data, size_t size, uint32_t seed);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	uint32_t seed = (uint32_t)data[0] << 8 | data[1] | 0x10000u;
	bool fix = data[0] & 0x80;
	data += 2;
	size -= 2;
	uint8_t *copy = malloc(size > 0 ? size : 1);
	FUZZ_CHECK(copy != NULL);
	memcpy(copy, data, size);
	if (fix)
		fix_checksums(copy, size);
	run_both(copy, size, seed);
	free(copy);
	return 0;
}

static void run_both(const uint8_t *data, size_t size, uint32_t seed)
{
	static struct stream_run whole, chunked;
	stream_run(data, size, 0, &whole, true);
	stream_run(data, size, seed, &chunked, false);
	FUZZ_CHECK(whole.error == chunked.error);
	FUZZ_CHECK(whole.frame_count == chunked.frame_count);
	uint32_t n = whole.frame_count < FRAMES_MAX ? whole.frame_count : FRAMES_MAX;
	for (uint32_t i = 0; i < n; i++) {
		FUZZ_CHECK(whole.frame_end[i] == chunked.frame_end[i]);
		FUZZ_CHECK(whole.frame_type[i] == chunked.frame_type[i]);
	}
}
