/* clients.c: the client port and request handling (see clients.h). */
#include <stdlib.h>
#include <string.h>

#include "../core/assert.h"
#include "../core/codec.h"
#include "../core/err.h"
#include "../io_real/log.h"
#include "clients.h"

/* memcpy that accepts (NULL, 0). */
static void copy_in(uint8_t *dst, const uint8_t *src, uint32_t n)
{
	if (n > 0)
		memcpy(dst, src, n);
}

static void conn_unref(struct server *s, struct cconn *c)
{
	KEEL_ASSERT(c->refs > 0);
	c->refs--;
	if (c->closed && c->refs == 0) { /* invariant 1 */
		(void)s;
		redis_state_free(c->rs);
		free(c);
	}
}

static void send_response(struct server *s, struct cconn *c,
			  struct client_response *r)
{
	if (r->status <= CLIENT_STATUS_MAX)
		s->ctr.responses[r->status]++;
	if (c == NULL || c->closed || c->f.closing)
		return;
	if (c->rs != NULL) {
		redis_deliver(s, c, r);
		return;
	}
	size_t bytes = codec_response_encoded_bytes(r);
	struct fconn_wbuf *wb = fconn_wbuf_new(bytes);
	if (wb == NULL) {
		fconn_close(&c->f, KEEL_ENOMEM);
		return;
	}
	int n = codec_response_encode(r, wb->data, bytes);
	KEEL_ASSERT(n == (int)bytes);
	bool own_full = c->f.queued_bytes + bytes > c->f.queue_bytes_max;
	if (fconn_write(&c->f, wb) == KEEL_EBUSY) {
		/* The client does not read its answers (or all clients
		 * together hold SERVER_CLIENTS_QUEUE_BYTES_MAX): drop it. */
		if (own_full)
			LOG_WARN("client %s: %u bytes of answers unread; closing",
				 c->f.addr, SERVER_CLIENT_QUEUE_BYTES_MAX);
		else
			LOG_WARN("client %s: answers unread by all clients reach %u bytes; closing this one",
				 c->f.addr, SERVER_CLIENTS_QUEUE_BYTES_MAX);
		fconn_close(&c->f, 0);
	}
}

static void fill_hint(struct server *s, struct client_response *r)
{
	r->leader_id = s->leader;
	if (s->leader == KEEL_NODE_NONE)
		return;
	const struct member *m = server_member(s, s->leader);
	if (m != NULL)
		snprintf(r->leader_addr, sizeof r->leader_addr, "%s",
			 m->client_addr);
}

void server_respond_direct(struct server *s, struct cconn *c,
			   uint64_t request_id, uint32_t status,
			   const char *message)
{
	struct client_response r;
	memset(&r, 0, sizeof r);
	r.request_id = request_id;
	r.status = status;
	if (status == CLIENT_NOT_LEADER)
		fill_hint(s, &r);
	snprintf(r.message, sizeof r.message, "%s", message);
	send_response(s, c, &r);
}

void server_respond(struct server *s, struct pending *p, uint32_t status,
		    const uint8_t *value, uint32_t value_bytes,
		    const char *message)
{
	struct client_response r;
	memset(&r, 0, sizeof r);
	r.request_id = p->request_id;
	r.status = status;
	/* An absent key read from local state is as stale as a value. */
	r.stale = p->stale && (status == CLIENT_OK || status == CLIENT_NOT_FOUND);
	r.value = value;
	r.value_bytes = value_bytes;
	if (status == CLIENT_NOT_LEADER)
		fill_hint(s, &r);
	if (p->kind == PENDING_MEMBER && status == CLIENT_OK) {
		r.member_id = p->client_id;
		r.cluster_id = s->cluster_id;
	}
	snprintf(r.message, sizeof r.message, "%s", message);
	struct cconn *c = p->conn;
	send_response(s, c, &r);
	pending_release(&s->pending, p);
	if (c != NULL)
		conn_unref(s, c);
}

static void respond_status(struct server *s, struct cconn *c,
			   uint64_t request_id)
{
	struct client_response r;
	memset(&r, 0, sizeof r);
	r.request_id = request_id;
	r.status = CLIENT_OK;
	r.has_node_status = true;
	server_fill_status(s, &r.node_status);
	fill_hint(s, &r);
	send_response(s, c, &r);
}

struct pending *server_new_pending(struct server *s, struct cconn *c,
				   uint32_t kind, uint64_t request_id)
{
	struct pending *p = pending_alloc(&s->pending, kind);
	if (p == NULL) {
		s->ctr.busy++;
		server_respond_direct(s, c, request_id, CLIENT_BUSY,
			       "too many requests in flight; retry later");
		return NULL;
	}
	p->conn = c;
	p->request_id = request_id;
	c->refs++;
	return p;
}

static int copy_key(struct pending *p, const struct kv_command *cmd)
{
	p->key = malloc(cmd->key_bytes ? cmd->key_bytes : 1);
	if (p->key == NULL)
		return KEEL_ENOMEM;
	copy_in(p->key, cmd->key, cmd->key_bytes);
	p->key_bytes = cmd->key_bytes;
	return 0;
}

static void handle_get(struct server *s, struct cconn *c,
		       const struct client_request *req)
{
	bool stale = req->consistency == KV_STALE;
	if (!stale && s->role != RAFT_LEADER) {
		server_respond_direct(s, c, req->request_id, CLIENT_NOT_LEADER,
			       "linearizable reads are served by the leader");
		return;
	}
	struct pending *p = server_new_pending(
		s, c, stale ? PENDING_READ_APPLY : PENDING_READ_INDEX,
		req->request_id);
	if (p == NULL)
		return;
	p->stale = stale;
	if (copy_key(p, &req->cmd) != 0) {
		server_respond(s, p, CLIENT_BUSY, NULL, 0, "out of memory");
		return;
	}
	if (stale) {
		s->ctr.reads_stale++;
		p->read_index = 0;
		server_read_wait(s, p);
		return;
	}
	s->ctr.reads_linearizable++;
	int rc = raft_read_index(s->raft, pending_token(&s->pending, p));
	if (rc != 0)
		server_respond(s, p, rc == KEEL_ENOTLEADER ? CLIENT_NOT_LEADER :
				     CLIENT_BUSY, NULL, 0, keel_err_msg(rc));
}

static uint32_t cmd_bytes(const struct kv_command *cmd)
{
	return cmd->key_bytes + cmd->value_bytes + cmd->expected_bytes + 64u;
}

static void handle_write(struct server *s, struct cconn *c,
			 const struct client_request *req)
{
	const struct kv_command *cmd = &req->cmd;
	if (s->role != RAFT_LEADER) {
		server_respond_direct(s, c, req->request_id, CLIENT_NOT_LEADER,
			       "writes go to the leader");
		return;
	}
	if (cmd->client_id == 0 || cmd->seq == 0) {
		server_respond_direct(s, c, req->request_id, CLIENT_BAD_REQUEST,
			       "a write needs client_id and seq > 0");
		return;
	}
	struct pending *old = pending_find_write(&s->pending, cmd->client_id,
						 cmd->seq);
	if (old != NULL) {
		/* A retry of a write still in flight: answer it where it was
		 * asked last; the entry already proposed answers it once. */
		struct cconn *prev = old->conn;
		old->conn = c;
		old->request_id = req->request_id;
		c->refs++;
		if (prev != NULL)
			conn_unref(s, prev);
		return;
	}
	if (s->batch_count == KEEL_BATCH_COMMANDS_MAX ||
	    s->batch_bytes + cmd_bytes(cmd) > SERVER_BATCH_BYTES_MAX)
		server_batch_flush(s);
	struct pending *p = server_new_pending(s, c, PENDING_WRITE, req->request_id);
	if (p == NULL)
		return;
	p->client_id = cmd->client_id;
	p->seq = cmd->seq;
	pending_index_write(&s->pending, p);
	uint32_t n = cmd->key_bytes + cmd->value_bytes + cmd->expected_bytes;
	uint8_t *copy = malloc(n ? n : 1);
	if (copy == NULL) {
		server_respond(s, p, CLIENT_BUSY, NULL, 0, "out of memory");
		return;
	}
	struct batch_cmd *b = &s->batch[s->batch_count++];
	b->cmd = *cmd;
	b->p = p;
	b->copy = copy;
	copy_in(copy, cmd->key, cmd->key_bytes);
	b->cmd.key = copy;
	copy_in(copy + cmd->key_bytes, cmd->value, cmd->value_bytes);
	b->cmd.value = cmd->value_bytes ? copy + cmd->key_bytes : NULL;
	copy_in(copy + cmd->key_bytes + cmd->value_bytes, cmd->expected,
		cmd->expected_bytes);
	b->cmd.expected = cmd->expected_bytes ?
				  copy + cmd->key_bytes + cmd->value_bytes :
				  NULL;
	s->batch_bytes += cmd_bytes(cmd);
}

void server_client_request(struct server *s, struct cconn *c,
			   const struct client_request *req)
{
	uint32_t op = req->kind == CLIENT_REQ_KV ? req->cmd.op : 0;
	if (op < 6)
		s->ctr.requests[op]++;
	if (s->storage_err != 0) {
		server_respond_direct(s, c, req->request_id, CLIENT_UNAVAILABLE,
			       "storage failed; this node stopped serving");
		return;
	}
	if (req->kind == CLIENT_REQ_STATUS) {
		respond_status(s, c, req->request_id);
		return;
	}
	if (s->phase >= PHASE_DRAINING) {
		server_respond_direct(s, c, req->request_id, CLIENT_SHUTTING_DOWN,
			       "node is stopping; request not applied");
		return;
	}
	if (req->kind == CLIENT_REQ_MEMBER)
		server_member_request(s, c, req);
	else if (req->kind == CLIENT_REQ_TRANSFER)
		server_transfer_request(s, c, req);
	else if (req->cmd.op == KV_GET)
		handle_get(s, c, req);
	else
		handle_write(s, c, req);
}

/* ---- connections -------------------------------------------------------- */

static int on_hello(struct server *s, struct cconn *c, const uint8_t *p,
		    uint32_t n)
{
	struct codec_hello h;
	int rc = codec_hello_decode(p, n, &h);
	if (rc != 0)
		return rc;
	if (h.role != HELLO_CLIENT)
		return KEEL_ERANGE;
	if (h.cluster_id != 0 && h.cluster_id != s->cluster_id) {
		s->ctr.client_cluster_refused++;
		LOG_WARN("refusing client %s: cluster id %llu, ours is %llu",
			 c->f.addr, (unsigned long long)h.cluster_id,
			 (unsigned long long)s->cluster_id);
		return KEEL_ECLUSTER;
	}
	c->hello_ok = true;
	return 0;
}

static int on_frame(struct fconn *f, uint32_t type, const uint8_t *p,
		    uint32_t n)
{
	struct cconn *c = f->owner;
	struct server *s = c->s;
	if (!c->hello_ok) {
		if (type != FRAME_HELLO)
			return KEEL_EBADTYPE;
		return on_hello(s, c, p, n);
	}
	if (type != FRAME_CLIENT_REQUEST)
		return KEEL_EBADTYPE;
	struct client_request req;
	struct codec_decoded d;
	int rc = codec_request_decode(p, n, &(struct keel_alloc){ 0 }, &req, &d);
	if (rc != 0)
		return rc;
	server_client_request(s, c, &req);
	codec_decoded_free(&d);
	return 0;
}

static void on_close(struct fconn *f, int reason)
{
	struct cconn *c = f->owner;
	struct server *s = c->s;
	if (reason != 0 && keel_err_is_keel(reason) && reason != KEEL_ECLUSTER) {
		s->ctr.client_bad_frames++;
		LOG_WARN("closing client connection from %s: %s (%s)", f->addr,
			 keel_err_msg(reason), keel_err_name(reason));
	}
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	KEEL_ASSERT(s->conn_count > 0);
	s->conn_count--;
	c->closed = true;
	if (c->refs == 0) {
		redis_state_free(c->rs);
		free(c);
	}
}

static void accept_conn(struct server *s, uv_stream_t *server, bool redis)
{
	struct cconn *c = calloc(1, sizeof *c);
	if (c == NULL)
		return;
	if (redis && (c->rs = redis_state_new()) == NULL) {
		free(c);
		return;
	}
	c->s = s;
	c->f.owner = c;
	c->f.on_frame = on_frame;
	c->f.on_bytes = redis ? redis_on_bytes : NULL;
	c->hello_ok = redis;
	c->f.on_close = on_close;
	c->f.queue_bytes_max = SERVER_CLIENT_QUEUE_BYTES_MAX;
	c->f.budget = &s->client_budget;
	c->f.frame_bytes_max = SERVER_CLIENT_FRAME_BYTES_MAX;
	c->next = s->conns;
	if (s->conns != NULL)
		s->conns->prev = c;
	s->conns = c;
	s->conn_count++;
	s->ctr.client_conns++;
	fconn_accept(server, &c->f);
	if (s->conn_count > s->client_conns_max) { /* invariant 2 */
		LOG_WARN("refusing client %s: %u connections open", c->f.addr,
			 s->client_conns_max);
		fconn_close(&c->f, 0);
	}
}

static void on_connection(uv_stream_t *server, int status)
{
	if (status == 0)
		accept_conn(server->data, server, false);
}

static void on_redis_connection(uv_stream_t *server, int status)
{
	if (status == 0)
		accept_conn(server->data, server, true);
}

int redis_listen(struct server *s)
{
	if (s->cfg.redis_addr[0] == '\0')
		return 0;
	int rc = fconn_listen(s->loop, &s->redis_listener, s->cfg.redis_addr,
			      on_redis_connection);
	s->redis_listener.data = s;
	if (rc != 0) {
		LOG_ERROR("cannot listen for Redis clients on %s: %s",
			  s->cfg.redis_addr,
			  rc == KEEL_EINVAL ? "bad address" : uv_strerror(rc));
		return rc;
	}
	s->redis_listening = true;
	return 0;
}

int clients_listen(struct server *s, const char *addr)
{
	int rc = fconn_listen(s->loop, &s->client_listener, addr, on_connection);
	s->client_listener.data = s;
	if (rc != 0) {
		LOG_ERROR("cannot listen for clients on %s: %s", addr,
			  rc == KEEL_EINVAL ? "bad address" : uv_strerror(rc));
		return rc;
	}
	s->client_listening = true;
	return 0;
}

void clients_stop_accepting(struct server *s)
{
	if (s->redis_listening) {
		s->redis_listening = false;
		uv_close((uv_handle_t *)&s->redis_listener, NULL);
	}
	if (s->client_listening) {
		s->client_listening = false;
		uv_close((uv_handle_t *)&s->client_listener, NULL);
	}
}

void clients_close_all(struct server *s)
{
	for (struct cconn *c = s->conns; c != NULL; c = c->next)
		fconn_close(&c->f, 0);
}

void clients_sweep(struct server *s)
{
	uint64_t now = uv_now(s->loop);
	for (struct cconn *c = s->conns; c != NULL; c = c->next) {
		if (!c->hello_ok && !c->f.closing &&
		    now - c->f.opened_ms > FCONN_HELLO_MS_MAX) {
			s->ctr.client_hello_timeouts++;
			LOG_WARN("closing client connection from %s: no hello in %u ms",
				 c->f.addr, FCONN_HELLO_MS_MAX);
			fconn_close(&c->f, 0);
		}
	}
}
