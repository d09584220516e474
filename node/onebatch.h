/* onebatch.h: a store view that runs kv_apply inside an open batch (see
 * onebatch.c). */
#ifndef KEEL_NODE_ONEBATCH_H
#define KEEL_NODE_ONEBATCH_H

#include <stdbool.h>

#include "../core/err.h"
#include "../core/store.h"

struct onebatch {
	struct store *real;
	struct store view; /* give this to kv_init */
	bool aborted;
};

void onebatch_init(struct onebatch *b, struct store *real);

#endif
