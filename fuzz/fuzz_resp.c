/*
 * fuzz_resp.c: the Redis-protocol request parser (node/resp.h) on arbitrary
 * bytes, consumed request after request as the --redis port does.
 *
 * Properties:
 *  1. resp_parse returns bytes consumed (1..n), 0 (need more), or
 *     KEEL_EMALFORMED / KEEL_ETOOBIG; never reads outside the buffer;
 *  2. a parsed request has at most RESP_ARGS_MAX arguments, each inside the
 *     consumed bytes and at most KEEL_VALUE_BYTES_MAX long;
 *  3. a request is recognised only once whole: every shorter prefix of it
 *     (checked at a few lengths) needs more bytes.
 */
#include <stdlib.h>
#include <string.h>

#include "../core/err.h"
#include "../node/resp.h"
#include "fuzz.h"

#define FRESP_REQUESTS_MAX 4096u /* requests parsed per input */

static int parse_exact(const uint8_t *p, size_t n, struct resp_request *req)
{
	/* An exact-size copy, so ASan sees any read past n. */
	uint8_t *copy = malloc(n > 0 ? n : 1);
	FUZZ_CHECK(copy != NULL);
	memcpy(copy, p, n);
	int rc = resp_parse(copy, n, req);
	if (rc > 0)
		for (uint32_t i = 0; i < req->argc; i++)
			req->argv[i] = p + (req->argv[i] - copy);
	free(copy);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t off = 0;
	for (uint32_t k = 0; k < FRESP_REQUESTS_MAX && off < size; k++) {
		struct resp_request req;
		const uint8_t *p = data + off;
		size_t n = size - off;
		int rc = parse_exact(p, n, &req);
		FUZZ_CHECK(rc >= 0 || rc == KEEL_EMALFORMED || rc == KEEL_ETOOBIG);
		if (rc <= 0)
			return 0;
		FUZZ_CHECK((size_t)rc <= n);
		FUZZ_CHECK(req.argc <= RESP_ARGS_MAX);
		for (uint32_t i = 0; i < req.argc; i++) {
			FUZZ_CHECK(req.argl[i] <= KEEL_VALUE_BYTES_MAX);
			FUZZ_CHECK(req.argv[i] >= p);
			FUZZ_CHECK(req.argv[i] + req.argl[i] <= p + rc);
		}
		size_t cuts[3] = { (size_t)rc - 1, (size_t)rc / 2, 1 };
		for (size_t c = 0; c < 3; c++) {
			struct resp_request part;
			if (cuts[c] > 0 && cuts[c] < (size_t)rc)
				FUZZ_CHECK(parse_exact(p, cuts[c], &part) == 0);
		}
		off += (size_t)rc;
	}
	return 0;
}
