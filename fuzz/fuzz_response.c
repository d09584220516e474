/* fuzz_response.c: the response decoder on arbitrary bytes; see fuzz_roundtrip.c for
 * the properties checked. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	(void)fuzz_response_roundtrip(data, size);
	return 0;
}
