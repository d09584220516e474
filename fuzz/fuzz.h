/*
 * fuzz.h: what every keel fuzz harness shares.
 *
 * A harness is one file fuzz/fuzz_<target>.c defining LLVMFuzzerTestOneInput.
 * The same source links three ways: with libFuzzer (clang -fsanitize=fuzzer),
 * with AFL++ (afl-clang-fast -fsanitize=fuzzer, its libFuzzer-compatible
 * driver), and with fuzz/replay.c, a plain main that replays corpus files
 * in `make test`.
 *
 * A harness checks properties, not only "no crash": a decoded value passes
 * the same validation the encoders assert, re-encodes and decodes to itself,
 * and a decoder only ever fails with one of its documented codes. A broken
 * property calls fuzz_fail(), which aborts, so every driver sees a crash.
 */
#ifndef KEEL_FUZZ_H
#define KEEL_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

_Noreturn void fuzz_fail(const char *expr, const char *file, int line);
#define FUZZ_CHECK(x) ((x) ? (void)0 : fuzz_fail(#x, __FILE__, __LINE__))

/* Deep equality of decoded values (pointed-to bytes compared by content). */
bool fuzz_membership_eq(const struct membership *a, const struct membership *b);
bool fuzz_command_eq(const struct kv_command *a, const struct kv_command *b);
bool fuzz_msg_eq(const struct msg *a, const struct msg *b);
bool fuzz_hello_eq(const struct codec_hello *a, const struct codec_hello *b);
bool fuzz_request_eq(const struct client_request *a,
		     const struct client_request *b);
bool fuzz_response_eq(const struct client_response *a,
		      const struct client_response *b);

/* The codes a message decoder may return for bad input. */
bool fuzz_decode_err_ok(int rc);

/* Round-trip properties, one per payload kind: decode; on success check
 * validation, re-encode, decode again and compare. Return the decode code. */
int fuzz_msg_roundtrip(const uint8_t *p, size_t n);
int fuzz_hello_roundtrip(const uint8_t *p, size_t n);
int fuzz_request_roundtrip(const uint8_t *p, size_t n);
int fuzz_response_roundtrip(const uint8_t *p, size_t n);
int fuzz_batch_roundtrip(const uint8_t *p, size_t n);
int fuzz_membership_roundtrip(const uint8_t *p, size_t n);

/* Decode a frame's payload with the decoder its type names. */
int fuzz_frame_payload(uint32_t frame_type, const uint8_t *p, size_t n);

#endif
