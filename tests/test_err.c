/* test_err.c: the error table. */
#include "harness.h"

#include "../core/err.h"

TEST(err_names_and_messages)
{
	ASSERT_STR_EQ(keel_err_name(KEEL_ENOTLEADER), "KEEL_ENOTLEADER");
	ASSERT_STR_EQ(keel_err_msg(KEEL_ENOTLEADER), "not the leader");
	ASSERT_STR_EQ(keel_err_name(0), "OK");
	ASSERT_STR_EQ(keel_err_name(-2), "ERRNO");
	ASSERT_TRUE(keel_err_is_keel(KEEL_ECORRUPT));
	ASSERT_FALSE(keel_err_is_keel(-5));
}

TEST(err_codes_clear_of_errno)
{
#define CHECK_RANGE(name, value, msg) ASSERT_LE(value, -1000);
	KEEL_ERR_TABLE(CHECK_RANGE)
#undef CHECK_RANGE
}
