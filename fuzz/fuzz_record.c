/*
 * fuzz_record.c: the stored-record decoders (core/record.h) on arbitrary
 * bytes, as a store would read them back from a corrupted disk.
 *
 * Input: one mode byte, then the record. With mode bit 0 set the harness
 * rewrites the record's trailing checksum to match, so the fuzzer reaches
 * the payload checks behind it (a disk that corrupts the payload and the
 * checksum consistently); otherwise the bytes are decoded as they are.
 * Every decoder runs on every input. Properties:
 *  1. a decoder fails only with its documented codes (KEEL_ECORRUPT; the
 *     format marker also KEEL_EBADMAGIC / KEEL_EBADVERSION);
 *  2. what a decoder accepts is a value the encoder takes (the encoders
 *     assert validity), and re-encoding it gives back exactly the input
 *     bytes: the formats are canonical, so nothing else may decode.
 */
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "../core/err.h"
#include "../core/record.h"
#include "fuzz.h"

static uint8_t out[RECORD_ENTRY_BYTES_MAX];

static void same_bytes(const uint8_t *data, size_t size, size_t written)
{
	FUZZ_CHECK(written == size);
	FUZZ_CHECK(memcmp(out, data, size) == 0);
}

static void fuzz_entry(const uint8_t *data, size_t size)
{
	struct entry e;
	int rc = record_entry_decode(data, size, &e);
	if (rc != 0) {
		FUZZ_CHECK(rc == KEEL_ECORRUPT);
		return;
	}
	FUZZ_CHECK(record_entry_validate(&e) == 0);
	FUZZ_CHECK(record_entry_bytes(&e) == size);
	FUZZ_CHECK(e.data_bytes == 0 ||
		   (e.data >= data && e.data + e.data_bytes <= data + size));
	same_bytes(data, size, record_entry_encode(&e, out, sizeof(out)));
}

static void fuzz_small(const uint8_t *data, size_t size)
{
	uint64_t a, b;
	struct raft_hard_state hs;
	struct kv_session se;

	int rc = record_ids_decode(data, size, &a, &b);
	FUZZ_CHECK(rc == 0 || rc == KEEL_ECORRUPT);
	if (rc == 0)
		same_bytes(data, size, record_ids_encode(a, b, out, sizeof(out)));
	rc = record_hard_decode(data, size, &hs);
	FUZZ_CHECK(rc == 0 || rc == KEEL_ECORRUPT);
	if (rc == 0)
		same_bytes(data, size, record_hard_encode(&hs, out, sizeof(out)));
	rc = record_applied_decode(data, size, &a);
	FUZZ_CHECK(rc == 0 || rc == KEEL_ECORRUPT);
	if (rc == 0)
		same_bytes(data, size, record_applied_encode(a, out, sizeof(out)));
	rc = record_session_decode(data, size, &se);
	FUZZ_CHECK(rc == 0 || rc == KEEL_ECORRUPT);
	if (rc == 0)
		same_bytes(data, size, record_session_encode(&se, out, sizeof(out)));
	uint32_t version = 0;
	rc = record_format_decode(data, size, &version);
	FUZZ_CHECK(rc == 0 || rc == KEEL_ECORRUPT || rc == KEEL_EBADMAGIC ||
		   rc == KEEL_EBADVERSION);
	if (rc == 0)
		same_bytes(data, size,
			   record_format_encode(version, out, sizeof(out)));
}

static void fuzz_snap(const uint8_t *data, size_t size)
{
	uint64_t index, term;
	struct membership m;
	int rc = record_snap_decode(data, size, &index, &term, &m);
	if (rc != 0) {
		FUZZ_CHECK(rc == KEEL_ECORRUPT);
		return;
	}
	FUZZ_CHECK(record_membership_validate(&m) == 0);
	FUZZ_CHECK(record_snap_bytes(&m) == size);
	same_bytes(data, size, record_snap_encode(index, term, &m, out, sizeof(out)));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size - 1 > RECORD_ENTRY_BYTES_MAX)
		return 0;
	uint8_t mode = data[0];
	size--;
	uint8_t *rec = malloc(size > 0 ? size : 1);
	FUZZ_CHECK(rec != NULL);
	memcpy(rec, data + 1, size);
	if ((mode & 1) && size >= RECORD_TRAILER_BYTES)
		record_put_u64(rec + size - RECORD_TRAILER_BYTES,
			       XXH3_64bits(rec, size - RECORD_TRAILER_BYTES));
	fuzz_entry(rec, size);
	fuzz_small(rec, size);
	fuzz_snap(rec, size);
	free(rec);
	return 0;
}
