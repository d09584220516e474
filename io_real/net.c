/* net.c: the peer transport (see net.h). */
#include <stdlib.h>
#include <string.h>

#include "../core/assert.h"
#include "../core/codec.h"
#include "../core/err.h"
#include "log.h"
#include "net.h"

static uint64_t rng_next(uint64_t *s)
{
	/* splitmix64 */
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

uint32_t net_backoff_ms(uint32_t attempts, uint64_t random)
{
	uint64_t d = NET_BACKOFF_MS_MIN;
	for (uint32_t i = 0; i < attempts && d < NET_BACKOFF_MS_MAX; i++)
		d *= 2;
	if (d > NET_BACKOFF_MS_MAX)
		d = NET_BACKOFF_MS_MAX;
	/* Jitter: uniformly within [d/2, d]. */
	uint64_t half = d / 2;
	uint32_t ms = (uint32_t)(half + random % (d - half + 1));
	KEEL_ASSERT(ms >= NET_BACKOFF_MS_MIN / 2 && ms <= NET_BACKOFF_MS_MAX);
	return ms;
}

void net_init(struct net *n, uv_loop_t *loop, uint64_t cluster_id,
	      keel_node_id self, uint64_t seed, net_msg_fn on_msg, void *ctx)
{
	memset(n, 0, sizeof *n);
	n->loop = loop;
	n->cluster_id = cluster_id;
	n->self = self;
	n->rng = seed;
	n->on_msg = on_msg;
	n->ctx = ctx;
}

static void handle_closed(uv_handle_t *h)
{
	struct net *n = h->data;
	KEEL_ASSERT(n->open_handles > 0);
	n->open_handles--;
}

/* ---- inbound ------------------------------------------------------------ */

static int in_hello(struct net *n, struct fconn *c, const uint8_t *p,
		    uint32_t len)
{
	struct codec_hello h;
	int rc = codec_hello_decode(p, len, &h);
	if (rc != 0)
		return rc;
	if (h.role != HELLO_PEER || h.node_id == KEEL_NODE_NONE ||
	    h.node_id == n->self)
		return KEEL_ERANGE;
	if (h.cluster_id != n->cluster_id) {
		n->ctr.cluster_refused++;
		LOG_WARN("refusing peer %llu at %s: cluster id %llu, ours is %llu",
			 (unsigned long long)h.node_id, c->addr,
			 (unsigned long long)h.cluster_id,
			 (unsigned long long)n->cluster_id);
		return KEEL_ECLUSTER;
	}
	c->tag = h.node_id;
	c->frame_bytes_max = 0; /* a peer: up to KEEL_FRAME_BYTES_MAX */
	LOG_DEBUG("peer %llu connected from %s", (unsigned long long)h.node_id,
		  c->addr);
	return 0;
}

/* Decode one peer frame from `from` and hand it to the node; a message that
 * claims another sender or another addressee is KEEL_ERANGE. */
static int deliver(struct net *n, keel_node_id from, const uint8_t *p,
		   uint32_t len)
{
	struct msg m;
	struct codec_decoded d;
	int rc = codec_msg_decode(p, len, &(struct keel_alloc){ 0 }, &m, &d);
	if (rc != 0)
		return rc;
	if (m.from != from || m.to != n->self) {
		codec_decoded_free(&d);
		return KEEL_ERANGE;
	}
	n->ctr.msgs_received++;
	n->on_msg(n->ctx, &m);
	codec_decoded_free(&d);
	return 0;
}

static int in_frame(struct fconn *c, uint32_t type, const uint8_t *p,
		    uint32_t len)
{
	struct net *n = c->owner;
	if (c->tag == 0) {
		if (type != FRAME_HELLO)
			return KEEL_EBADTYPE;
		return in_hello(n, c, p, len);
	}
	if (type != FRAME_PEER)
		return KEEL_EBADTYPE;
	return deliver(n, c->tag, p, len);
}

static void in_close(struct fconn *c, int reason)
{
	struct net *n = c->owner;
	if (reason != 0 && keel_err_is_keel(reason) && reason != KEEL_ECLUSTER) {
		n->ctr.bad_frames++;
		LOG_WARN("closing peer connection from %s: %s (%s)", c->addr,
			 keel_err_msg(reason), keel_err_name(reason));
	}
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		n->inbound = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	KEEL_ASSERT(n->inbound_count > 0);
	n->inbound_count--;
	n->open_handles--;
	free(c);
}

static void on_connection(uv_stream_t *server, int status)
{
	struct net *n = server->data;
	if (status != 0 || n->stopping)
		return;
	struct fconn *c = calloc(1, sizeof *c);
	if (c == NULL)
		return;
	c->owner = n;
	c->on_frame = in_frame;
	c->on_close = in_close;
	c->queue_bytes_max = NET_PEER_QUEUE_BYTES_MAX;
	c->frame_bytes_max = NET_HELLO_FRAME_BYTES_MAX; /* until its hello */
	c->next = n->inbound;
	if (n->inbound != NULL)
		n->inbound->prev = c;
	n->inbound = c;
	n->inbound_count++;
	n->open_handles++;
	if (fconn_accept(server, c) != 0) {
		in_close(c, 0);
		return;
	}
	if (n->inbound_count > NET_INBOUND_MAX) { /* invariant 1 */
		n->ctr.inbound_refused++;
		LOG_WARN("refusing peer connection from %s: %u connections open",
			 c->addr, NET_INBOUND_MAX);
		fconn_close(c, 0);
	}
}

static void on_sweep(uv_timer_t *t)
{
	struct net *n = t->data;
	uint64_t now = uv_now(n->loop);
	for (struct fconn *c = n->inbound; c != NULL; c = c->next) {
		if (c->tag == 0 && !c->closing &&
		    now - c->opened_ms > FCONN_HELLO_MS_MAX) { /* invariant 4 */
			n->ctr.hello_timeouts++;
			LOG_WARN("closing peer connection from %s: no hello in %u ms",
				 c->addr, FCONN_HELLO_MS_MAX);
			fconn_close(c, 0);
		}
	}
}

int net_listen(struct net *n, const char *addr)
{
	n->listener.data = n;
	if (!n->sweep_open) {
		uv_timer_init(n->loop, &n->sweep);
		n->sweep.data = n;
		uv_timer_start(&n->sweep, on_sweep, 1000, 1000);
		n->sweep_open = true;
		n->open_handles++;
	}
	int rc = fconn_listen(n->loop, &n->listener, addr, on_connection);
	if (rc == KEEL_EINVAL)
		return rc;
	n->listener.data = n;
	n->open_handles++;
	n->listening = true;
	if (rc != 0)
		uv_close((uv_handle_t *)&n->listener, handle_closed);
	return rc;
}

/* ---- outbound ----------------------------------------------------------- */

static void peer_connect(struct net_peer *p);
static struct net_peer *peer_find(const struct net *n, keel_node_id id);

static void on_retry_timer(uv_timer_t *t)
{
	struct net_peer *p = t->data;
	peer_connect(p);
}

/* The acceptor answers on our connection only while it does not know our
 * address yet (a node that just joined: see net_send_frame). */
static int out_frame(struct fconn *c, uint32_t type, const uint8_t *p,
		     uint32_t len)
{
	struct net_peer *peer = c->owner;
	struct net *n = peer->net;
	if (type != FRAME_PEER)
		return KEEL_EBADTYPE;
	return deliver(n, peer->id, p, len);
}

static void out_close(struct fconn *c, int reason)
{
	struct net_peer *p = c->owner;
	struct net *n = p->net;
	bool was_connected = p->connected;
	p->conn = NULL;
	p->connected = false;
	n->open_handles--;
	free(c);
	if (n->stopping || !p->active)
		return;
	if (was_connected)
		LOG_INFO("lost connection to peer %llu at %s (%s)",
			 (unsigned long long)p->id, p->addr,
			 reason == 0 ? "closed by peer" : uv_strerror(reason));
	else
		n->ctr.connect_failures++;
	if (p->attempts == 0 && !was_connected)
		LOG_DEBUG("cannot connect to peer %llu at %s: %s",
			  (unsigned long long)p->id, p->addr,
			  reason == 0 ? "closed" : uv_strerror(reason));
	if (!was_connected)
		p->attempts++;
	else
		p->attempts = 0;
	uint32_t ms = net_backoff_ms(p->attempts, rng_next(&n->rng));
	uv_timer_start(&p->timer, on_retry_timer, ms, 0);
}

static void out_connected(struct fconn *c, int status)
{
	struct net_peer *p = c->owner;
	struct net *n = p->net;
	KEEL_ASSERT(status == 0);
	struct codec_hello h = {
		.protocol_version = CODEC_VERSION,
		.cluster_id = n->cluster_id,
		.node_id = n->self,
		.role = HELLO_PEER,
	};
	size_t bytes = codec_hello_encoded_bytes(&h);
	struct fconn_wbuf *wb = fconn_wbuf_new(bytes);
	if (wb == NULL) {
		fconn_close(c, KEEL_ENOMEM);
		return;
	}
	int rc = codec_hello_encode(&h, wb->data, bytes);
	KEEL_ASSERT(rc == (int)bytes);
	if (fconn_write(c, wb) != 0)
		return;
	p->connected = true;
	p->attempts = 0;
	n->ctr.connects++;
	LOG_INFO("connected to peer %llu at %s", (unsigned long long)p->id,
		 p->addr);
}

static void peer_connect(struct net_peer *p)
{
	struct net *n = p->net;
	KEEL_ASSERT(p->conn == NULL);
	if (n->stopping)
		return;
	struct fconn *c = calloc(1, sizeof *c);
	if (c == NULL) {
		uv_timer_start(&p->timer, on_retry_timer, NET_BACKOFF_MS_MAX, 0);
		return;
	}
	c->owner = p;
	c->tag = p->id;
	c->on_frame = out_frame;
	c->on_close = out_close;
	c->on_connect = out_connected;
	c->queue_bytes_max = NET_PEER_QUEUE_BYTES_MAX;
	snprintf(c->addr, sizeof c->addr, "%s", p->addr);
	p->conn = c;
	n->open_handles++;
	int rc = fconn_connect(n->loop, c, &p->sa);
	if (rc != 0) { /* nothing opened */
		p->conn = NULL;
		n->open_handles--;
		free(c);
		p->attempts++;
		uv_timer_start(&p->timer, on_retry_timer,
			       net_backoff_ms(p->attempts, rng_next(&n->rng)), 0);
	}
}

/* A retired peer's timer has closed: its slot may be reused once its
 * connection has closed too. */
static void retired_timer_closed(uv_handle_t *h)
{
	struct net_peer *p = h->data;
	p->timer_closing = false;
	KEEL_ASSERT(p->net->open_handles > 0);
	p->net->open_handles--;
}

/* Stop talking to p: close its timer and connection; out_close does not
 * reconnect an inactive peer. */
static void peer_retire(struct net_peer *p)
{
	KEEL_ASSERT(p->active);
	p->active = false;
	LOG_INFO("peer %llu at %s left the membership; disconnecting",
		 (unsigned long long)p->id, p->addr);
	if (p->timer_open) {
		uv_timer_stop(&p->timer);
		p->timer_open = false;
		p->timer_closing = true;
		uv_close((uv_handle_t *)&p->timer, retired_timer_closed);
	}
	if (p->conn != NULL)
		fconn_close(p->conn, 0);
}

static bool slot_free(const struct net_peer *p)
{
	return !p->active && !p->timer_open && !p->timer_closing &&
	       p->conn == NULL;
}

static int peer_add(struct net *n, const struct member *mb)
{
	struct net_peer *p = NULL;
	for (uint32_t i = 0; i < n->peer_count && p == NULL; i++)
		if (slot_free(&n->peers[i]))
			p = &n->peers[i];
	if (p == NULL) {
		if (n->peer_count == KEEL_MEMBERS_MAX)
			return KEEL_EBUSY; /* retired slots still closing */
		p = &n->peers[n->peer_count++];
	}
	memset(p, 0, sizeof *p);
	p->net = n;
	p->id = mb->id;
	snprintf(p->addr, sizeof p->addr, "%s", mb->peer_addr);
	if (fconn_addr_parse(p->addr, &p->sa) != 0) {
		LOG_ERROR("peer %llu: bad address '%s'",
			  (unsigned long long)p->id, p->addr);
		return KEEL_EINVAL;
	}
	uv_timer_init(n->loop, &p->timer);
	p->timer.data = p;
	p->timer_open = true;
	p->active = true;
	n->open_handles++;
	peer_connect(p);
	return 0;
}

static const struct member *member_of(const struct membership *m,
				      keel_node_id id)
{
	for (uint32_t i = 0; i < m->member_count; i++)
		if (m->members[i].id == id)
			return &m->members[i];
	return NULL;
}

int net_update_peers(struct net *n, const struct membership *m)
{
	if (n->stopping)
		return 0;
	for (uint32_t i = 0; i < n->peer_count; i++) {
		struct net_peer *p = &n->peers[i];
		if (!p->active)
			continue;
		const struct member *mb = member_of(m, p->id);
		if (mb == NULL || strcmp(mb->peer_addr, p->addr) != 0)
			peer_retire(p);
	}
	int result = 0;
	for (uint32_t i = 0; i < m->member_count; i++) {
		const struct member *mb = &m->members[i];
		if (mb->id == n->self || mb->peer_addr[0] == '\0')
			continue;
		const struct net_peer *p = peer_find(n, mb->id);
		if (p != NULL)
			continue;
		int rc = peer_add(n, mb);
		if (rc != 0 && result == 0)
			result = rc;
	}
	return result;
}

int net_set_peers(struct net *n, const struct membership *m)
{
	KEEL_ASSERT(n->peer_count == 0);
	return net_update_peers(n, m);
}

static struct net_peer *peer_find(const struct net *n, keel_node_id id)
{
	for (uint32_t i = 0; i < n->peer_count; i++)
		if (n->peers[i].active && n->peers[i].id == id)
			return (struct net_peer *)&n->peers[i];
	return NULL;
}

bool net_peer_connected(const struct net *n, keel_node_id id)
{
	const struct net_peer *p = peer_find(n, id);
	return p != NULL && p->connected;
}

struct fconn_wbuf *net_encode(const struct msg *m)
{
	size_t bytes = codec_msg_encoded_bytes(m);
	struct fconn_wbuf *wb = fconn_wbuf_new(bytes);
	if (wb == NULL)
		return NULL;
	int rc = codec_msg_encode(m, wb->data, bytes);
	KEEL_ASSERT(rc == (int)bytes);
	return wb;
}

/* An inbound connection from node id that finished its hello, or NULL. */
static struct fconn *inbound_from(const struct net *n, keel_node_id id)
{
	for (struct fconn *c = n->inbound; c != NULL; c = c->next)
		if (c->tag == id && !c->closing)
			return c;
	return NULL;
}

int net_send_frame(struct net *n, keel_node_id to, struct fconn_wbuf *wb)
{
	struct net_peer *p = peer_find(n, to);
	if (p == NULL) {
		/* Not in our membership (we joined and have not received it
		 * yet): answer on the connection the sender opened to us. */
		struct fconn *c = inbound_from(n, to);
		if (c == NULL) {
			free(wb);
			return KEEL_ENOTFOUND;
		}
		size_t bytes = wb->bytes;
		int rc = fconn_write(c, wb); /* bounded like a peer's queue */
		if (rc != 0) {
			n->ctr.dropped_queue_full++;
			return rc;
		}
		n->ctr.msgs_sent++;
		n->ctr.bytes_sent += bytes;
		return 0;
	}
	if (!p->connected) {
		n->ctr.dropped_disconnected++;
		free(wb);
		return KEEL_ENOLEADER;
	}
	size_t bytes = wb->bytes;
	int rc = fconn_write(p->conn, wb); /* invariant 2: refuses past the bound */
	if (rc != 0) {
		n->ctr.dropped_queue_full++;
		return rc;
	}
	n->ctr.msgs_sent++;
	n->ctr.bytes_sent += bytes;
	return 0;
}

int net_send(struct net *n, const struct msg *m)
{
	struct net_peer *p = peer_find(n, m->to);
	if (p == NULL && inbound_from(n, m->to) == NULL)
		return KEEL_ENOTFOUND;
	if (p != NULL && !p->connected) {
		n->ctr.dropped_disconnected++;
		return KEEL_ENOLEADER;
	}
	struct fconn_wbuf *wb = net_encode(m);
	if (wb == NULL)
		return KEEL_ENOMEM;
	return net_send_frame(n, m->to, wb);
}

void net_stop(struct net *n)
{
	if (n->stopping)
		return;
	n->stopping = true;
	if (n->listening && !uv_is_closing((uv_handle_t *)&n->listener))
		uv_close((uv_handle_t *)&n->listener, handle_closed);
	if (n->sweep_open) {
		uv_close((uv_handle_t *)&n->sweep, handle_closed);
		n->sweep_open = false;
	}
	for (uint32_t i = 0; i < n->peer_count; i++) {
		struct net_peer *p = &n->peers[i];
		if (p->timer_open) {
			p->timer.data = n;
			uv_close((uv_handle_t *)&p->timer, handle_closed);
			p->timer_open = false;
		}
		if (p->conn != NULL)
			fconn_close(p->conn, 0);
	}
	for (struct fconn *c = n->inbound; c != NULL; c = c->next)
		fconn_close(c, 0);
}
