/*
 * clients.h: the client port. Protobuf frames (core/codec): a hello first
 * (role client; cluster id 0 or ours), then requests, answered in any order
 * by request id.
 *
 * Invariants:
 *   1. a connection is freed only when it is closed and no pending request
 *      refers to it (refs == 0);
 *   2. at most SERVER_CLIENT_CONNS_MAX connections; at most pending_max
 *      requests waiting in the whole node (CLIENT_BUSY beyond).
 */
#ifndef KEEL_NODE_CLIENTS_H
#define KEEL_NODE_CLIENTS_H

#include "../io_real/fconn.h"
#include "server.h"

struct cconn {
	struct fconn f;
	struct server *s;
	bool hello_ok;
	bool closed;
	uint32_t refs;
	struct cconn *prev, *next;
};

#endif
