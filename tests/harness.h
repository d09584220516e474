/*
 * harness.h: keel's tiny test harness.
 *
 *   TEST(name) { ASSERT_EQ(a, b); ASSERT_TRUE(x); ... }
 *
 * Tests register themselves at load time and run in file order. A failed
 * ASSERT_* prints both sides with file and line and ends that test (the
 * others still run). The runner's last line is exactly "N passed, M failed";
 * it exits 1 if any test failed. `bin/test_x NAME...` runs only tests whose
 * name contains one of the arguments.
 */
#ifndef KEEL_HARNESS_H
#define KEEL_HARNESS_H

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef void (*harness_fn)(void);
void harness_register(const char *name, harness_fn fn);
_Noreturn void harness_fail(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define TEST(name)                                                        \
	static void test_##name(void);                                    \
	__attribute__((constructor)) static void register_##name(void)    \
	{                                                                 \
		harness_register(#name, test_##name);                     \
	}                                                                 \
	static void test_##name(void)

#define ASSERT_TRUE(x)                                                       \
	do {                                                                 \
		if (!(x))                                                    \
			harness_fail(__FILE__, __LINE__, "expected true: %s", #x); \
	} while (0)

#define ASSERT_FALSE(x)                                                       \
	do {                                                                  \
		if (x)                                                        \
			harness_fail(__FILE__, __LINE__, "expected false: %s", #x); \
	} while (0)

#define ASSERT_CMP_(a, b, op)                                                  \
	do {                                                                   \
		int64_t a_ = (int64_t)(a);                                     \
		int64_t b_ = (int64_t)(b);                                     \
		if (!(a_ op b_))                                               \
			harness_fail(__FILE__, __LINE__,                       \
				     "%s %s %s: %" PRId64 " vs %" PRId64, #a, #op, \
				     #b, a_, b_);                              \
	} while (0)

#define ASSERT_EQ(a, b) ASSERT_CMP_(a, b, ==)
#define ASSERT_NE(a, b) ASSERT_CMP_(a, b, !=)
#define ASSERT_LT(a, b) ASSERT_CMP_(a, b, <)
#define ASSERT_LE(a, b) ASSERT_CMP_(a, b, <=)
#define ASSERT_GT(a, b) ASSERT_CMP_(a, b, >)
#define ASSERT_GE(a, b) ASSERT_CMP_(a, b, >=)

#define ASSERT_U64_EQ(a, b)                                                    \
	do {                                                                   \
		uint64_t a_ = (uint64_t)(a);                                   \
		uint64_t b_ = (uint64_t)(b);                                   \
		if (a_ != b_)                                                  \
			harness_fail(__FILE__, __LINE__,                       \
				     "%s == %s: %" PRIu64 " vs %" PRIu64, #a, #b, \
				     a_, b_);                                  \
	} while (0)

#define ASSERT_STR_EQ(a, b)                                                    \
	do {                                                                   \
		const char *a_ = (a);                                          \
		const char *b_ = (b);                                          \
		if (strcmp(a_, b_) != 0)                                       \
			harness_fail(__FILE__, __LINE__, "%s == %s: \"%s\" vs \"%s\"", \
				     #a, #b, a_, b_);                          \
	} while (0)

#define ASSERT_MEM_EQ(a, b, n)                                                 \
	do {                                                                   \
		if (memcmp((a), (b), (n)) != 0)                                \
			harness_fail(__FILE__, __LINE__, "memory differs: %s vs %s (%zu bytes)", \
				     #a, #b, (size_t)(n));                     \
	} while (0)

#endif
