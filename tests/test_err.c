/* test_err.c: the error table. */
#include "harness.h"

#include <errno.h>
#include <string.h>

#include "../core/err.h"
#include "../io_real/log.h"

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

TEST(logged_messages_name_errnos)
{
	ASSERT_STR_EQ(log_err_msg(-ENOSPC), strerror(ENOSPC));
	ASSERT_STR_EQ(log_err_msg(KEEL_ECORRUPT), keel_err_msg(KEEL_ECORRUPT));
	ASSERT_STR_EQ(log_err_msg(0), "success");
}
