/* check_stale.h: a proof of illegality without search (check_stale.c). */
#ifndef KEEL_SIM_CHECK_STALE_H
#define KEEL_SIM_CHECK_STALE_H

#include "check.h"

struct check_stale {
	uint32_t read;      /* index in h->ops of the op that cannot see its value */
	uint32_t overwrite; /* an op that hid the value's last producer, or UINT32_MAX */
};

/* Looks among ops idx[0..n) of one key (the searched ones) for an op that
 * needs a value every producer of which was overwritten before it began.
 * Returns 1 (out filled), 0 (none found: proves nothing) or -1 (no memory). */
int check_stale_read(const struct check_history *h, const uint32_t *idx, uint32_t n,
		     uint32_t init, struct check_stale *out);

#endif
