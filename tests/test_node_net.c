/* test_node_net.c: the peer transport on loopback: delivery after a hello,
 * refusal of another cluster, a bad frame closes only its connection, and a
 * peer that does not read never grows the send queue past its bound. */
#include <stdlib.h>

#include "../core/codec.h"
#include "../core/err.h"
#include "../io_real/fconn.h"
#include "../io_real/net.h"
#include "harness.h"

#define WAIT_MS_MAX 5000u

struct sink {
	uint64_t count;
	struct msg last;
};

static void on_msg(void *ctx, const struct msg *m)
{
	struct sink *s = ctx;
	s->count++;
	s->last = *m;
	s->last.u.append.entries = NULL;
}

static int port_of(uv_tcp_t *t)
{
	struct sockaddr_storage ss;
	int len = sizeof ss;
	uv_tcp_getsockname(t, (struct sockaddr *)&ss, &len);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static void on_timeout(uv_timer_t *t)
{
	*(bool *)t->data = true;
}

/* Run the loop until *cond or WAIT_MS_MAX. */
static bool run_until(uv_loop_t *loop, const uint64_t *counter, uint64_t want)
{
	bool expired = false;
	uv_timer_t t;
	uv_timer_init(loop, &t);
	t.data = &expired;
	uv_timer_start(&t, on_timeout, WAIT_MS_MAX, 0);
	while (!expired && *counter < want)
		uv_run(loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(loop, UV_RUN_NOWAIT);
	return *counter >= want;
}

static void membership_of(struct membership *m, int port_a, int port_b)
{
	memset(m, 0, sizeof *m);
	m->member_count = 2;
	m->members[0].id = 1;
	m->members[0].role = MEMBER_VOTER;
	snprintf(m->members[0].peer_addr, KEEL_ADDR_BYTES_MAX, "127.0.0.1:%d", port_a);
	m->members[1].id = 2;
	m->members[1].role = MEMBER_VOTER;
	snprintf(m->members[1].peer_addr, KEEL_ADDR_BYTES_MAX, "127.0.0.1:%d", port_b);
}

static struct msg heartbeat(keel_node_id from, keel_node_id to, uint64_t term)
{
	struct msg m;
	memset(&m, 0, sizeof m);
	m.type = MSG_APPEND;
	m.from = from;
	m.to = to;
	m.term = term;
	m.u.append.commit = 0;
	return m;
}

static void stop_all(uv_loop_t *loop, struct net *a, struct net *b)
{
	net_stop(a);
	if (b != NULL)
		net_stop(b);
	uv_run(loop, UV_RUN_DEFAULT);
}

TEST(hello_then_delivery_both_ways)
{
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct net a, b;
	struct sink sa = { 0 }, sb = { 0 };
	net_init(&a, &loop, 42, 1, 1, on_msg, &sa);
	net_init(&b, &loop, 42, 2, 2, on_msg, &sb);
	ASSERT_EQ(net_listen(&a, "127.0.0.1:0"), 0);
	ASSERT_EQ(net_listen(&b, "127.0.0.1:0"), 0);
	struct membership m;
	membership_of(&m, port_of(&a.listener), port_of(&b.listener));
	ASSERT_EQ(net_set_peers(&a, &m), 0);
	ASSERT_EQ(net_set_peers(&b, &m), 0);
	while (!net_peer_connected(&a, 2) || !net_peer_connected(&b, 1))
		uv_run(&loop, UV_RUN_ONCE);
	struct msg h = heartbeat(1, 2, 7);
	ASSERT_EQ(net_send(&a, &h), 0);
	ASSERT_TRUE(run_until(&loop, &sb.count, 1));
	ASSERT_EQ(sb.last.type, MSG_APPEND);
	ASSERT_U64_EQ(sb.last.term, 7);
	ASSERT_U64_EQ(sb.last.from, 1);
	h = heartbeat(2, 1, 8);
	ASSERT_EQ(net_send(&b, &h), 0);
	ASSERT_TRUE(run_until(&loop, &sa.count, 1));
	ASSERT_U64_EQ(sa.last.term, 8);
	h = heartbeat(1, 9, 1);
	ASSERT_EQ(net_send(&a, &h), KEEL_ENOTFOUND);
	stop_all(&loop, &a, &b);
	ASSERT_EQ(a.open_handles, 0);
	ASSERT_EQ(b.open_handles, 0);
	ASSERT_EQ(uv_loop_close(&loop), 0);
}

/* Membership changes: a node starts knowing nobody (a joiner), learns a
 * peer, connects and delivers; the peer is removed (no more sends, no
 * reconnection) and a new member in its place gets a fresh slot. */
TEST(peers_follow_membership_changes)
{
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct net a, b;
	struct sink sa = { 0 }, sb = { 0 };
	net_init(&a, &loop, 42, 1, 1, on_msg, &sa);
	net_init(&b, &loop, 42, 2, 2, on_msg, &sb);
	ASSERT_EQ(net_listen(&a, "127.0.0.1:0"), 0);
	ASSERT_EQ(net_listen(&b, "127.0.0.1:0"), 0);
	struct membership empty;
	memset(&empty, 0, sizeof empty);
	ASSERT_EQ(net_set_peers(&a, &empty), 0);
	struct msg h = heartbeat(1, 2, 3);
	ASSERT_EQ(net_send(&a, &h), KEEL_ENOTFOUND);
	struct membership m;
	membership_of(&m, port_of(&a.listener), port_of(&b.listener));
	ASSERT_EQ(net_update_peers(&a, &m), 0);
	ASSERT_EQ(net_update_peers(&a, &m), 0); /* idempotent */
	ASSERT_EQ(a.peer_count, 1);
	while (!net_peer_connected(&a, 2))
		uv_run(&loop, UV_RUN_ONCE);
	ASSERT_EQ(net_send(&a, &h), 0);
	ASSERT_TRUE(run_until(&loop, &sb.count, 1));
	/* Node 2 leaves: a drops it and stops sending. */
	struct membership one = m;
	one.member_count = 1;
	ASSERT_EQ(net_update_peers(&a, &one), 0);
	ASSERT_FALSE(net_peer_connected(&a, 2));
	ASSERT_EQ(net_send(&a, &h), KEEL_ENOTFOUND);
	for (int i = 0; i < 20; i++)
		uv_run(&loop, UV_RUN_NOWAIT);
	ASSERT_TRUE(a.peers[0].conn == NULL);
	ASSERT_FALSE(a.peers[0].timer_closing);
	/* Node 3 joins at 2's old address: the retired slot is reused. */
	struct membership three = m;
	three.members[1].id = 3;
	ASSERT_EQ(net_update_peers(&a, &three), 0);
	ASSERT_EQ(a.peer_count, 1);
	ASSERT_U64_EQ(a.peers[0].id, 3);
	ASSERT_TRUE(a.peers[0].active);
	stop_all(&loop, &a, &b);
	ASSERT_EQ(a.open_handles, 0);
	ASSERT_EQ(b.open_handles, 0);
	ASSERT_EQ(uv_loop_close(&loop), 0);
}

TEST(peer_of_another_cluster_is_refused)
{
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct net a, b;
	struct sink sa = { 0 }, sb = { 0 };
	net_init(&a, &loop, 41, 1, 1, on_msg, &sa); /* wrong cluster */
	net_init(&b, &loop, 42, 2, 2, on_msg, &sb);
	ASSERT_EQ(net_listen(&a, "127.0.0.1:0"), 0);
	ASSERT_EQ(net_listen(&b, "127.0.0.1:0"), 0);
	struct membership m;
	membership_of(&m, port_of(&a.listener), port_of(&b.listener));
	ASSERT_EQ(net_set_peers(&a, &m), 0);
	while (!net_peer_connected(&a, 2))
		uv_run(&loop, UV_RUN_ONCE);
	struct msg h = heartbeat(1, 2, 7);
	net_send(&a, &h);
	uint32_t one = 0;
	(void)one;
	const uint64_t *refused = &b.ctr.cluster_refused;
	ASSERT_TRUE(run_until(&loop, refused, 1));
	ASSERT_EQ(sb.count, 0);
	stop_all(&loop, &a, &b);
	ASSERT_EQ(uv_loop_close(&loop), 0);
}

struct raw {
	uv_tcp_t tcp;
	uv_connect_t req;
	uv_write_t w;
	const char *bytes;
	size_t n;
	bool closed;
};

static void raw_closed(uv_handle_t *h)
{
	((struct raw *)h->data)->closed = true;
}

static void raw_read_alloc(uv_handle_t *h, size_t s, uv_buf_t *b)
{
	static char buf[256];
	(void)h;
	(void)s;
	*b = uv_buf_init(buf, sizeof buf);
}

static void raw_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
	(void)b;
	if (n < 0)
		uv_close((uv_handle_t *)st, raw_closed);
}

static void raw_connected(uv_connect_t *req, int status)
{
	struct raw *r = req->data;
	if (status != 0) {
		uv_close((uv_handle_t *)&r->tcp, raw_closed);
		return;
	}
	uv_buf_t b = uv_buf_init((char *)r->bytes, (unsigned)r->n);
	uv_write(&r->w, (uv_stream_t *)&r->tcp, &b, 1, NULL);
	uv_read_start((uv_stream_t *)&r->tcp, raw_read_alloc, raw_read);
}

TEST(garbage_closes_only_that_connection)
{
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct net a, b;
	struct sink sa = { 0 }, sb = { 0 };
	net_init(&a, &loop, 42, 1, 1, on_msg, &sa);
	net_init(&b, &loop, 42, 2, 2, on_msg, &sb);
	ASSERT_EQ(net_listen(&a, "127.0.0.1:0"), 0);
	ASSERT_EQ(net_listen(&b, "127.0.0.1:0"), 0);
	struct membership m;
	membership_of(&m, port_of(&a.listener), port_of(&b.listener));
	ASSERT_EQ(net_set_peers(&a, &m), 0);
	struct raw r = { .bytes = "GET / HTTP/1.0\r\n\r\nnot a frame at all", .n = 34 };
	uv_tcp_init(&loop, &r.tcp);
	r.tcp.data = &r;
	r.req.data = &r;
	struct sockaddr_in sa_b;
	uv_ip4_addr("127.0.0.1", port_of(&b.listener), &sa_b);
	uv_tcp_connect(&r.req, &r.tcp, (const struct sockaddr *)&sa_b, raw_connected);
	const uint64_t *bad = &b.ctr.bad_frames;
	ASSERT_TRUE(run_until(&loop, bad, 1));
	while (!r.closed)
		uv_run(&loop, UV_RUN_ONCE); /* the node closed the raw socket */
	while (!net_peer_connected(&a, 2))
		uv_run(&loop, UV_RUN_ONCE);
	struct msg h = heartbeat(1, 2, 3);
	ASSERT_EQ(net_send(&a, &h), 0);
	ASSERT_TRUE(run_until(&loop, &sb.count, 1)); /* still serving */
	stop_all(&loop, &a, &b);
	ASSERT_EQ(uv_loop_close(&loop), 0);
}

static void accept_never_read(uv_stream_t *server, int status)
{
	(void)status;
	uv_tcp_t *c = server->data;
	uv_tcp_init(server->loop, c);
	uv_accept(server, (uv_stream_t *)c);
}

TEST(send_queue_is_bounded_for_a_peer_that_does_not_read)
{
	uv_loop_t loop;
	uv_loop_init(&loop);
	uv_tcp_t server, accepted;
	uv_tcp_init(&loop, &server);
	server.data = &accepted;
	struct sockaddr_in sa;
	uv_ip4_addr("127.0.0.1", 0, &sa);
	ASSERT_EQ(uv_tcp_bind(&server, (const struct sockaddr *)&sa, 0), 0);
	ASSERT_EQ(uv_listen((uv_stream_t *)&server, 4, accept_never_read), 0);
	struct net a;
	struct sink sa_ = { 0 };
	net_init(&a, &loop, 42, 1, 1, on_msg, &sa_);
	struct membership m;
	membership_of(&m, 1, port_of(&server));
	ASSERT_EQ(net_set_peers(&a, &m), 0);
	while (!net_peer_connected(&a, 2))
		uv_run(&loop, UV_RUN_ONCE);
	static uint8_t data[512 * 1024];
	struct entry e = { .term = 1, .index = 1, .type = ENTRY_COMMAND,
			   .data_bytes = sizeof data, .data = data };
	struct msg h = heartbeat(1, 2, 1);
	h.u.append.entry_count = 1;
	h.u.append.entries = &e;
	uint32_t sent = 0;
	for (int i = 0; i < 256 && a.ctr.dropped_queue_full == 0; i++) {
		if (net_send(&a, &h) == 0)
			sent++;
		uv_run(&loop, UV_RUN_NOWAIT);
		ASSERT_LE(a.peers[0].conn->queued_bytes, NET_PEER_QUEUE_BYTES_MAX);
	}
	ASSERT_GT(a.ctr.dropped_queue_full, 0);
	ASSERT_GT(sent, 0);
	net_stop(&a);
	uv_close((uv_handle_t *)&server, NULL);
	uv_close((uv_handle_t *)&accepted, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	ASSERT_EQ(uv_loop_close(&loop), 0);
}

/* ---- a budget shared by several connections (fconn.h invariant 3) -------- */

struct never_read {
	uv_tcp_t conns[2];
	uint32_t count;
};

static void accept_two_never_read(uv_stream_t *server, int status)
{
	(void)status;
	struct never_read *nr = server->data;
	if (nr->count == 2)
		return;
	uv_tcp_t *c = &nr->conns[nr->count++];
	uv_tcp_init(server->loop, c);
	uv_accept(server, (uv_stream_t *)c);
}

static uint64_t connected, closed;

static void on_fconn_connect(struct fconn *c, int status)
{
	(void)c;
	if (status == 0)
		connected++;
}

static int on_fconn_frame(struct fconn *c, uint32_t type, const uint8_t *p,
			  uint32_t n)
{
	(void)c;
	(void)type;
	(void)p;
	(void)n;
	return 0;
}

static void on_fconn_close(struct fconn *c, int reason)
{
	(void)c;
	(void)reason;
	closed++;
}

/* Two client-side connections sharing one budget (1 MiB, each with its own
 * 4 MiB bound) to a server that accepts both and never reads. */
struct budget_pair {
	uv_loop_t loop;
	uv_tcp_t server;
	struct never_read nr;
	struct fconn_budget budget;
	struct fconn f[2];
};

static void budget_pair_open(struct budget_pair *p)
{
	memset(p, 0, sizeof *p);
	connected = 0;
	closed = 0;
	uv_loop_init(&p->loop);
	uv_tcp_init(&p->loop, &p->server);
	p->server.data = &p->nr;
	struct sockaddr_in sa;
	uv_ip4_addr("127.0.0.1", 0, &sa);
	ASSERT_EQ(uv_tcp_bind(&p->server, (const struct sockaddr *)&sa, 0), 0);
	ASSERT_EQ(uv_listen((uv_stream_t *)&p->server, 4, accept_two_never_read), 0);
	uv_ip4_addr("127.0.0.1", port_of(&p->server), &sa);
	p->budget.queued_bytes_max = 1024u * 1024u;
	for (int i = 0; i < 2; i++) {
		struct fconn *f = &p->f[i];
		f->on_frame = on_fconn_frame;
		f->on_connect = on_fconn_connect;
		f->on_close = on_fconn_close;
		f->queue_bytes_max = 4u * 1024u * 1024u; /* more than the budget */
		f->budget = &p->budget;
		ASSERT_EQ(fconn_connect(&p->loop, f, &sa), 0);
	}
	ASSERT_TRUE(run_until(&p->loop, &connected, 2));
	while (p->nr.count < 2)
		uv_run(&p->loop, UV_RUN_ONCE);
}

/* Close both; every queued write must have given its bytes back. */
static void budget_pair_close(struct budget_pair *p)
{
	fconn_close(&p->f[0], 0);
	fconn_close(&p->f[1], 0);
	ASSERT_TRUE(run_until(&p->loop, &closed, 2));
	ASSERT_U64_EQ(p->budget.queued_bytes, 0);
	uv_close((uv_handle_t *)&p->server, NULL);
	for (uint32_t i = 0; i < p->nr.count; i++)
		uv_close((uv_handle_t *)&p->nr.conns[i], NULL);
	uv_run(&p->loop, UV_RUN_DEFAULT);
	ASSERT_EQ(uv_loop_close(&p->loop), 0);
}

TEST(a_shared_budget_bounds_the_queues_of_all_its_connections)
{
	static struct budget_pair p;
	budget_pair_open(&p);
	struct fconn *f = p.f;
	uint32_t refused = 0;
	for (int i = 0; i < 400 && refused == 0; i++) {
		struct fconn *c = &f[i % 2];
		struct fconn_wbuf *wb = fconn_wbuf_new(64u * 1024u);
		ASSERT_TRUE(wb != NULL);
		memset(wb->data, 'x', wb->bytes);
		int rc = fconn_write(c, wb);
		ASSERT_TRUE(rc == 0 || rc == KEEL_EBUSY);
		if (rc == KEEL_EBUSY) {
			refused++;
			ASSERT_LT(c->queued_bytes + 64u * 1024u, c->queue_bytes_max);
		}
		uv_run(&p.loop, UV_RUN_NOWAIT);
		ASSERT_LE(p.budget.queued_bytes, p.budget.queued_bytes_max);
		ASSERT_U64_EQ(p.budget.queued_bytes,
			      f[0].queued_bytes + f[1].queued_bytes);
	}
	ASSERT_EQ(refused, 1u); /* the budget, not a connection's own bound */
	ASSERT_GT(f[0].queued_bytes, 0);
	ASSERT_GT(f[1].queued_bytes, 0);
	ASSERT_FALSE(fconn_fits(&f[0], 64u * 1024u));
	budget_pair_close(&p);
}

/* The budget bounds queued bytes: a write the kernel takes at once queues
 * nothing, so it goes out even when other connections hold the whole
 * budget (refusing it would close a client that reads its answers because
 * another one does not). */
TEST(a_full_budget_still_lets_a_write_that_queues_nothing_through)
{
	static struct budget_pair p;
	budget_pair_open(&p);
	struct fconn *f = p.f;
	struct fconn_budget *budget = &p.budget;
	/* f[0]'s peer never reads: its queue takes the whole budget */
	for (int i = 0; i < 400 && budget->queued_bytes < budget->queued_bytes_max;
	     i++) {
		uint64_t room = budget->queued_bytes_max - budget->queued_bytes;
		size_t n = f[0].queued_bytes == 0 || room > 64u * 1024u
				   ? 64u * 1024u
				   : (size_t)room;
		struct fconn_wbuf *wb = fconn_wbuf_new(n);
		ASSERT_TRUE(wb != NULL);
		memset(wb->data, 'x', wb->bytes);
		ASSERT_EQ(fconn_write(&f[0], wb), 0);
		uv_run(&p.loop, UV_RUN_NOWAIT);
	}
	ASSERT_U64_EQ(budget->queued_bytes, budget->queued_bytes_max);
	/* f[1] has nothing queued and an empty socket buffer */
	struct fconn_wbuf *wb = fconn_wbuf_new(100);
	ASSERT_TRUE(wb != NULL);
	memset(wb->data, 'y', wb->bytes);
	ASSERT_EQ(fconn_write(&f[1], wb), 0);
	ASSERT_U64_EQ(f[1].queued_bytes, 0);
	ASSERT_FALSE(f[1].closing);
	ASSERT_U64_EQ(budget->queued_bytes, f[0].queued_bytes);
	ASSERT_LE(budget->queued_bytes, budget->queued_bytes_max);
	budget_pair_close(&p);
}
