/* panic_ctx.h: what io_real's keel_panic prints besides the expression. */
#ifndef KEEL_REAL_PANIC_CTX_H
#define KEEL_REAL_PANIC_CTX_H

#include <stdint.h>

void realpanic_set_node(uint64_t id);

#endif
