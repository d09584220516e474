/*
 * workload.h: `keelctl workload`: concurrent closed-loop clients doing random
 * get/put/del/cas/append on a few keys, recording every operation in keel's
 * native history format (sim/HISTORY.md) for keelcheck. A write whose outcome
 * is unknown is recorded as info; a request that was definitely not applied
 * as fail.
 */
#ifndef KEEL_NODE_WORKLOAD_H
#define KEEL_NODE_WORKLOAD_H

#include "client.h"

#define WORKLOAD_CLIENTS_MAX 64u
#define WORKLOAD_OPS_MAX (1u << 20) /* per client */

int workload_run(const struct kc_config *cfg, int argc, char **argv);

#endif
