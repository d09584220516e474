/* test_client_resp.c: the Redis protocol parser of the --redis port (RESP2
 * arrays and inline commands, partial input, limits, malformed input) and
 * its reply writers. */
#include "../core/err.h"
#include "../node/resp.h"
#include "harness.h"

#define S(x) (const uint8_t *)(x), sizeof(x) - 1

TEST(array_request_parses_and_needs_whole_input)
{
	const char in[] = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n";
	struct resp_request r;
	ASSERT_EQ(resp_parse(S(in), &r), (int)sizeof in - 1);
	ASSERT_EQ(r.argc, 3);
	ASSERT_TRUE(resp_arg_is(&r, 0, "set"));
	ASSERT_EQ(r.argl[2], 5);
	ASSERT_MEM_EQ(r.argv[2], "hello", 5);
	for (size_t cut = 0; cut < sizeof in - 1; cut++)
		ASSERT_EQ(resp_parse((const uint8_t *)in, cut, &r), 0);
}

TEST(inline_request_parses)
{
	struct resp_request r;
	ASSERT_EQ(resp_parse(S("GET  key\r\nPING\r\n"), &r), 10);
	ASSERT_EQ(r.argc, 2);
	ASSERT_TRUE(resp_arg_is(&r, 0, "GET"));
	ASSERT_EQ(r.argl[1], 3);
	ASSERT_EQ(resp_parse(S("PING"), &r), 0); /* no newline yet */
}

TEST(malformed_and_oversized_are_errors)
{
	struct resp_request r;
	ASSERT_EQ(resp_parse(S("*1\r\n+OK\r\n"), &r), KEEL_EMALFORMED);
	ASSERT_EQ(resp_parse(S("*x\r\n"), &r), KEEL_EMALFORMED);
	ASSERT_EQ(resp_parse(S("*0\r\n"), &r), KEEL_EMALFORMED);
	ASSERT_EQ(resp_parse(S("*1\r\n$-1\r\n"), &r), KEEL_EMALFORMED);
	ASSERT_EQ(resp_parse(S("*1\r\n$3\r\nabcX\r\n"), &r), KEEL_EMALFORMED);
	ASSERT_EQ(resp_parse(S("*99\r\n"), &r), KEEL_ETOOBIG);
	ASSERT_EQ(resp_parse(S("*1\r\n$99999999\r\n"), &r), KEEL_ETOOBIG);
	ASSERT_EQ(resp_parse(S("*1\r\n$123456789012345678901\r\n"), &r),
		  KEEL_EMALFORMED);
	ASSERT_EQ(resp_parse(S("a b c d e f g h i\r\n"), &r), KEEL_ETOOBIG);
}

TEST(a_request_that_never_ends_is_refused_at_the_limit)
{
	static uint8_t big[RESP_REQUEST_BYTES_MAX + 16];
	memset(big, 'a', sizeof big);
	struct resp_request r;
	ASSERT_EQ(resp_parse(big, sizeof big, &r), KEEL_ETOOBIG); /* inline */
	/* An array of large bulk strings whose total passes the limit while
	 * still incomplete. */
	static uint8_t arr[3 * KEEL_VALUE_BYTES_MAX];
	size_t n = (size_t)snprintf((char *)arr, sizeof arr, "*8\r\n");
	for (int i = 0; i < 2; i++) {
		n += (size_t)snprintf((char *)arr + n, sizeof arr - n, "$%u\r\n",
				      KEEL_VALUE_BYTES_MAX);
		memset(arr + n, 'v', KEEL_VALUE_BYTES_MAX);
		n += KEEL_VALUE_BYTES_MAX;
		memcpy(arr + n, "\r\n", 2);
		n += 2;
	}
	ASSERT_GT(n, RESP_REQUEST_BYTES_MAX);
	ASSERT_EQ(resp_parse(arr, n, &r), KEEL_ETOOBIG);
}

TEST(replies_are_resp)
{
	uint8_t b[64];
	ASSERT_EQ(resp_simple(b, sizeof b, "OK"), 5);
	ASSERT_MEM_EQ(b, "+OK\r\n", 5);
	ASSERT_EQ(resp_integer(b, sizeof b, -3), 5);
	ASSERT_MEM_EQ(b, ":-3\r\n", 5);
	ASSERT_EQ(resp_bulk(b, sizeof b, (const uint8_t *)"hi", 2), 8);
	ASSERT_MEM_EQ(b, "$2\r\nhi\r\n", 8);
	ASSERT_EQ(resp_nil(b, sizeof b), 5);
	ASSERT_MEM_EQ(b, "$-1\r\n", 5);
	ASSERT_EQ(resp_bulk(b, 4, (const uint8_t *)"hi", 2), 0); /* no room */
}
