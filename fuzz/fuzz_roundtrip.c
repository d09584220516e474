/*
 * fuzz_roundtrip.c: the properties every decoder must keep, shared by the
 * per-decoder harnesses and the frame harness:
 *  1. failure returns one of the documented codes, never anything else;
 *  2. success yields a value that passes the validation encoders assert;
 *  3. that value re-encodes (to exactly *_encoded_bytes) and decodes to an
 *     equal value.
 */
#include <stdlib.h>
#include <string.h>

#include "../core/err.h"
#include "fuzz.h"

bool fuzz_decode_err_ok(int rc)
{
	return rc == KEEL_EMALFORMED || rc == KEEL_ERANGE ||
	       rc == KEEL_ETOOBIG || rc == KEEL_EBADTYPE ||
	       rc == KEEL_EBADVERSION;
}

/* Re-encoded frame: check it and return its payload. */
static const uint8_t *reframed(const uint8_t *frame, int n, size_t want,
			       uint32_t want_type, uint32_t *payload_bytes)
{
	uint32_t type;
	const uint8_t *p;
	FUZZ_CHECK(n > 0 && (size_t)n == want);
	FUZZ_CHECK(codec_frame_decode(frame, (size_t)n, &type, &p,
				      payload_bytes) == 0);
	FUZZ_CHECK(type == want_type);
	return p;
}

int fuzz_msg_roundtrip(const uint8_t *p, size_t n)
{
	struct msg m, m2;
	struct codec_decoded d, d2;
	if (n > KEEL_FRAME_BYTES_MAX)
		return KEEL_ETOOBIG;
	int rc = codec_msg_decode(p, (uint32_t)n, NULL, &m, &d);
	if (rc != 0) {
		FUZZ_CHECK(fuzz_decode_err_ok(rc) && rc != KEEL_EBADVERSION);
		return rc;
	}
	FUZZ_CHECK(codec_msg_validate(&m) == 0);
	size_t want = codec_msg_encoded_bytes(&m);
	uint8_t *buf = malloc(want);
	FUZZ_CHECK(buf != NULL);
	uint32_t pn;
	const uint8_t *pp = reframed(buf, codec_msg_encode(&m, buf, want),
				     want, FRAME_PEER, &pn);
	FUZZ_CHECK(codec_msg_decode(pp, pn, NULL, &m2, &d2) == 0);
	FUZZ_CHECK(fuzz_msg_eq(&m, &m2));
	codec_decoded_free(&d2);
	codec_decoded_free(&d);
	free(buf);
	return 0;
}

int fuzz_hello_roundtrip(const uint8_t *p, size_t n)
{
	struct codec_hello h, h2;
	if (n > KEEL_FRAME_BYTES_MAX)
		return KEEL_ETOOBIG;
	int rc = codec_hello_decode(p, (uint32_t)n, &h);
	if (rc != 0) {
		FUZZ_CHECK(fuzz_decode_err_ok(rc) && rc != KEEL_EBADTYPE);
		return rc;
	}
	FUZZ_CHECK(codec_hello_validate(&h) == 0);
	size_t want = codec_hello_encoded_bytes(&h);
	uint8_t buf[64];
	FUZZ_CHECK(want <= sizeof(buf));
	uint32_t pn;
	const uint8_t *pp = reframed(buf, codec_hello_encode(&h, buf, want),
				     want, FRAME_HELLO, &pn);
	FUZZ_CHECK(codec_hello_decode(pp, pn, &h2) == 0);
	FUZZ_CHECK(fuzz_hello_eq(&h, &h2));
	return 0;
}

int fuzz_request_roundtrip(const uint8_t *p, size_t n)
{
	struct client_request r, r2;
	struct codec_decoded d, d2;
	if (n > KEEL_FRAME_BYTES_MAX)
		return KEEL_ETOOBIG;
	int rc = codec_request_decode(p, (uint32_t)n, NULL, &r, &d);
	if (rc != 0) {
		FUZZ_CHECK(rc == KEEL_EMALFORMED || rc == KEEL_ERANGE ||
			   rc == KEEL_ETOOBIG);
		return rc;
	}
	FUZZ_CHECK(codec_request_validate(&r) == 0);
	size_t want = codec_request_encoded_bytes(&r);
	uint8_t *buf = malloc(want);
	FUZZ_CHECK(buf != NULL);
	uint32_t pn;
	const uint8_t *pp = reframed(buf, codec_request_encode(&r, buf, want),
				     want, FRAME_CLIENT_REQUEST, &pn);
	FUZZ_CHECK(codec_request_decode(pp, pn, NULL, &r2, &d2) == 0);
	FUZZ_CHECK(fuzz_request_eq(&r, &r2));
	codec_decoded_free(&d2);
	codec_decoded_free(&d);
	free(buf);
	return 0;
}

int fuzz_response_roundtrip(const uint8_t *p, size_t n)
{
	/* Responses are large (node status with a full membership): static
	 * storage keeps the harness's stack small. */
	static struct client_response r, r2;
	struct codec_decoded d, d2;
	if (n > KEEL_FRAME_BYTES_MAX)
		return KEEL_ETOOBIG;
	int rc = codec_response_decode(p, (uint32_t)n, NULL, &r, &d);
	if (rc != 0) {
		FUZZ_CHECK(rc == KEEL_EMALFORMED || rc == KEEL_ERANGE ||
			   rc == KEEL_ETOOBIG);
		return rc;
	}
	FUZZ_CHECK(codec_response_validate(&r) == 0);
	size_t want = codec_response_encoded_bytes(&r);
	uint8_t *buf = malloc(want);
	FUZZ_CHECK(buf != NULL);
	uint32_t pn;
	const uint8_t *pp = reframed(buf, codec_response_encode(&r, buf, want),
				     want, FRAME_CLIENT_RESPONSE, &pn);
	FUZZ_CHECK(codec_response_decode(pp, pn, NULL, &r2, &d2) == 0);
	FUZZ_CHECK(fuzz_response_eq(&r, &r2));
	codec_decoded_free(&d2);
	codec_decoded_free(&d);
	free(buf);
	return 0;
}

int fuzz_batch_roundtrip(const uint8_t *p, size_t n)
{
	static struct kv_command cmds[KEEL_BATCH_COMMANDS_MAX];
	static struct kv_command cmds2[KEEL_BATCH_COMMANDS_MAX];
	struct codec_decoded d, d2;
	uint32_t count, count2;
	if (n > KEEL_FRAME_BYTES_MAX)
		return KEEL_ETOOBIG;
	int rc = codec_batch_decode(p, (uint32_t)n, NULL, cmds, &count, &d);
	if (rc != 0) {
		FUZZ_CHECK(rc == KEEL_EMALFORMED || rc == KEEL_ERANGE ||
			   rc == KEEL_ETOOBIG);
		FUZZ_CHECK(count == 0);
		return rc;
	}
	FUZZ_CHECK(codec_batch_validate(cmds, count) == 0);
	size_t want = codec_batch_encoded_bytes(cmds, count);
	uint8_t *buf = malloc(want);
	FUZZ_CHECK(buf != NULL);
	FUZZ_CHECK(codec_batch_encode(cmds, count, buf, want) == (int)want);
	FUZZ_CHECK(codec_batch_decode(buf, (uint32_t)want, NULL, cmds2, &count2,
				      &d2) == 0);
	FUZZ_CHECK(count2 == count);
	for (uint32_t i = 0; i < count; i++)
		FUZZ_CHECK(fuzz_command_eq(&cmds[i], &cmds2[i]));
	codec_decoded_free(&d2);
	codec_decoded_free(&d);
	free(buf);
	return 0;
}

int fuzz_membership_roundtrip(const uint8_t *p, size_t n)
{
	struct membership m, m2;
	if (n > KEEL_FRAME_BYTES_MAX)
		return KEEL_ETOOBIG;
	int rc = codec_membership_decode(p, (uint32_t)n, &m);
	if (rc != 0) {
		FUZZ_CHECK(rc == KEEL_EMALFORMED || rc == KEEL_ERANGE ||
			   rc == KEEL_ETOOBIG);
		return rc;
	}
	FUZZ_CHECK(codec_membership_validate(&m) == 0);
	size_t want = codec_membership_encoded_bytes(&m);
	uint8_t buf[4096];
	FUZZ_CHECK(want <= sizeof(buf));
	FUZZ_CHECK(codec_membership_encode(&m, buf, want) == (int)want);
	FUZZ_CHECK(codec_membership_decode(buf, (uint32_t)want, &m2) == 0);
	FUZZ_CHECK(fuzz_membership_eq(&m, &m2));
	return 0;
}

int fuzz_frame_payload(uint32_t frame_type, const uint8_t *p, size_t n)
{
	switch (frame_type) {
	case FRAME_HELLO:
		return fuzz_hello_roundtrip(p, n);
	case FRAME_PEER:
		return fuzz_msg_roundtrip(p, n);
	case FRAME_CLIENT_REQUEST:
		return fuzz_request_roundtrip(p, n);
	case FRAME_CLIENT_RESPONSE:
		return fuzz_response_roundtrip(p, n);
	default:
		fuzz_fail("frame type from the decoder is known", __FILE__, __LINE__);
	}
}
