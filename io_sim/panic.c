/* panic.c: keel_panic for the simulated world: prints the failed expression
 * with the seed and node being stepped, so the failure replays. */
#include <stdio.h>
#include <stdlib.h>

#include "../core/assert.h"
#include "panic_ctx.h"

static struct {
	uint64_t seed;
	uint64_t node;
	int set;
} ctx;

void simpanic_set(uint64_t seed, uint64_t node)
{
	ctx.seed = seed;
	ctx.node = node;
	ctx.set = 1;
}

_Noreturn void keel_panic(const char *expr, const char *file, int line)
{
	if (ctx.set)
		fprintf(stderr, "keel: assertion failed: %s at %s:%d (node %llu, seed %llu)\n",
			expr, file, line, (unsigned long long)ctx.node,
			(unsigned long long)ctx.seed);
	else
		fprintf(stderr, "keel: assertion failed: %s at %s:%d\n", expr,
			file, line);
	fflush(stderr);
	abort();
}
