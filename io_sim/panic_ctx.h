/* panic_ctx.h: what io_sim's keel_panic prints besides the expression. */
#ifndef KEEL_SIM_PANIC_CTX_H
#define KEEL_SIM_PANIC_CTX_H

#include <stdint.h>

/* Record the run's seed and the node now being stepped (0: none). */
void simpanic_set(uint64_t seed, uint64_t node);

#endif
