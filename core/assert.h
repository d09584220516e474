/*
 * assert.h: keel's assertions. Always on, in every build: there is no NDEBUG
 * switch. An assertion is only ever our own bug; input is validated and
 * rejected with an error code, never asserted.
 *
 * keel_panic() is declared here and defined by the world the binary links
 * (io_sim prints the seed and the node being stepped; io_real prints the node
 * id), so core/ has no I/O and no globals of its own.
 */
#ifndef KEEL_ASSERT_H
#define KEEL_ASSERT_H

_Noreturn void keel_panic(const char *expr, const char *file, int line);

#define KEEL_ASSERT(expr) \
	((expr) ? (void)0 : keel_panic(#expr, __FILE__, __LINE__))

#define KEEL_UNREACHABLE() keel_panic("unreachable", __FILE__, __LINE__)

#endif
