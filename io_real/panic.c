/* panic.c: keel_panic for the real world: prints the failed expression with
 * this process's node id, then aborts (a core dump is the report). */
#include <stdio.h>
#include <stdlib.h>

#include "../core/assert.h"
#include "panic_ctx.h"

static uint64_t panic_node_id;

void realpanic_set_node(uint64_t id)
{
	panic_node_id = id;
}

_Noreturn void keel_panic(const char *expr, const char *file, int line)
{
	fprintf(stderr, "keel: node %llu: assertion failed: %s at %s:%d\n",
		(unsigned long long)panic_node_id, expr, file, line);
	fflush(stderr);
	abort();
}
