/*
 * net.h: the peer transport. Raft messages over framed TCP (core/codec).
 *
 * Each node keeps one outbound connection per peer for what it sends, and
 * accepts inbound connections for what it receives. Every connection starts
 * with a hello (cluster id, node id); an inbound peer of another cluster, a
 * bad frame or a message that is not from the hello's node is logged with
 * the peer's address, counted, and its connection closed. Outbound
 * connections reconnect with capped exponential backoff and jitter. Each
 * peer's send queue is bounded in bytes; a message that does not fit, or
 * whose peer is not connected, is dropped and counted (Raft retransmits).
 * A message to a node that is not (yet) a peer, e.g. from a node that just
 * joined and has not received the membership, goes back on the inbound
 * connection that node opened, if any; the outbound side accepts such
 * answers (checked like inbound messages).
 *
 * Invariants:
 *   1. at most one outbound connection per peer, at most NET_INBOUND_MAX
 *      inbound ones;
 *   2. a peer's queued bytes never exceed NET_PEER_QUEUE_BYTES_MAX;
 *   3. the backoff delay is within [NET_BACKOFF_MS_MIN/2, NET_BACKOFF_MS_MAX];
 *   4. an inbound connection without a hello is closed within about
 *      FCONN_HELLO_MS_MAX + one sweep, so silent sockets cannot hold slots.
 */
#ifndef KEEL_NET_H
#define KEEL_NET_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "../core/msg.h"
#include "fconn.h"

#define NET_PEER_QUEUE_BYTES_MAX (16u * 1024u * 1024u)
#define NET_INBOUND_MAX 64u
/* An inbound connection's first frame must be a hello: a larger announced
 * frame closes it before anything is buffered. */
#define NET_HELLO_FRAME_BYTES_MAX 4096u
#define NET_BACKOFF_MS_MIN 20u
#define NET_BACKOFF_MS_MAX 1000u

struct net_counters {
	uint64_t msgs_sent;
	uint64_t msgs_received;
	uint64_t bytes_sent;
	uint64_t dropped_queue_full;
	uint64_t dropped_disconnected;
	uint64_t bad_frames;       /* decode errors and protocol violations */
	uint64_t cluster_refused;  /* hello from another cluster */
	uint64_t connects;         /* outbound connections established */
	uint64_t connect_failures;
	uint64_t inbound_refused;  /* over NET_INBOUND_MAX */
	uint64_t hello_timeouts;   /* inbound closed: no hello in time */
};

typedef void (*net_msg_fn)(void *ctx, const struct msg *m);

struct net_peer {
	struct net *net;
	keel_node_id id;
	char addr[KEEL_ADDR_BYTES_MAX];
	struct sockaddr_in sa;
	struct fconn *conn; /* NULL when not connected or connecting */
	bool connected;
	uint32_t attempts; /* consecutive failures, drives the backoff */
	uv_timer_t timer;
	bool timer_open;
	bool active;        /* a member now; false: retired or never used */
	bool timer_closing; /* retired: the timer's close has not completed */
};

struct net {
	uv_loop_t *loop;
	uint64_t cluster_id;
	keel_node_id self;
	net_msg_fn on_msg;
	void *ctx;
	uint64_t rng;
	uv_tcp_t listener;
	bool listening;
	uv_timer_t sweep; /* closes inbound connections silent past the hello deadline */
	bool sweep_open;
	bool stopping;
	uint32_t peer_count; /* slots ever used; some may be retired */
	struct net_peer peers[KEEL_MEMBERS_MAX];
	struct fconn *inbound; /* list */
	uint32_t inbound_count;
	uint32_t open_handles; /* conns + timers + listener not yet closed */
	struct net_counters ctr;
};

/* Backoff delay in ms for the given failure count and random word. */
uint32_t net_backoff_ms(uint32_t attempts, uint64_t random);

void net_init(struct net *n, uv_loop_t *loop, uint64_t cluster_id,
	      keel_node_id self, uint64_t seed, net_msg_fn on_msg, void *ctx);

/* Listen for peers on addr. Returns 0, KEEL_EINVAL or a -errno. */
int net_listen(struct net *n, const char *addr);

/* Set the peers to connect to (members other than self with an address).
 * Called once at start. Returns 0 or KEEL_EINVAL (bad address). */
int net_set_peers(struct net *n, const struct membership *m);

/* Follow a membership change: connect to members that are new, disconnect
 * (and stop reconnecting to) peers that left or whose address changed.
 * Returns 0, KEEL_EINVAL (a bad address: that member is skipped) or
 * KEEL_EBUSY (no free slot while retired peers' handles are still closing:
 * call again later). Inbound connections from a removed peer stay until it
 * closes them (their messages are still addressed to us; Raft ignores a
 * non-member). */
int net_update_peers(struct net *n, const struct membership *m);

/* Encode and queue m for m->to. Returns 0 or the reason it was dropped
 * (KEEL_ENOTFOUND unknown peer, KEEL_ENOLEADER not connected, KEEL_EBUSY
 * queue full, KEEL_ETOOBIG, KEEL_ENOMEM). */
int net_send(struct net *n, const struct msg *m);

/* Encode m into a new frame buffer (for messages held until a sync), or
 * NULL (KEEL_ENOMEM). net_send_frame queues it like net_send; it owns wb. */
struct fconn_wbuf *net_encode(const struct msg *m);
int net_send_frame(struct net *n, keel_node_id to, struct fconn_wbuf *wb);

bool net_peer_connected(const struct net *n, keel_node_id id);

/* Close everything; the loop drains the handles. */
void net_stop(struct net *n);

#endif
