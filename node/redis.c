/*
 * redis.c: the optional Redis-protocol port (--redis HOST:PORT), so that
 * redis-cli and redis-benchmark work against keel: PING, ECHO, GET, SET,
 * DEL, SELECT 0, QUIT, and empty answers to COMMAND, CONFIG, CLIENT, INFO.
 * GET is linearizable (ReadIndex); a follower answers
 * "-ERR NOT_LEADER ..." naming the leader's Redis-less client address.
 *
 * Each connection is one keel client session (a random client id, one seq
 * per write). Reads and writes of one connection do not overtake each
 * other: a GET waits until the connection's earlier SET/DEL are answered and
 * a SET/DEL until its earlier GETs are, so a pipeline behaves as if its
 * commands ran one after another (a run of GETs, or of writes, still
 * pipelines). Replies go out in request order: requests get consecutive ids
 * and slots in a ring of REDIS_PIPELINE_MAX; a full ring pauses reading.
 *
 * Invariants: head_id <= next_id <= head_id + REDIS_PIPELINE_MAX; the input
 * buffer never exceeds REDIS_INPUT_BYTES_MAX.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/assert.h"
#include "../core/err.h"
#include "../io_real/log.h"
#include "clients.h"
#include "resp.h"

#define REPLY_SMALL_BYTES 512u

static void process(struct cconn *c);

static uint64_t mix(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static struct redis_slot *slot_of(struct redis_state *rs, uint64_t id)
{
	return &rs->slots[id % REDIS_PIPELINE_MAX];
}

static void flush(struct cconn *c)
{
	struct redis_state *rs = c->rs;
	size_t bytes = 0;
	uint64_t id = rs->head_id;
	while (id < rs->next_id && slot_of(rs, id)->ready)
		bytes += slot_of(rs, id++)->reply_bytes;
	if (id == rs->head_id)
		return;
	struct fconn_wbuf *wb = fconn_wbuf_new(bytes);
	size_t off = 0;
	for (; rs->head_id < id; rs->head_id++) {
		struct redis_slot *sl = slot_of(rs, rs->head_id);
		if (wb != NULL)
			memcpy(wb->data + off, sl->reply, sl->reply_bytes);
		off += sl->reply_bytes;
		free(sl->reply);
		sl->reply = NULL;
		sl->ready = false;
	}
	if (wb == NULL || c->closed || c->f.closing) {
		free(wb);
		return;
	}
	if (fconn_write(&c->f, wb) == KEEL_EBUSY)
		fconn_close(&c->f, 0); /* the client does not read its replies */
	if (rs->quit && rs->head_id == rs->next_id)
		fconn_close(&c->f, 0);
}

static void set_reply(struct redis_slot *sl, const uint8_t *p, size_t n)
{
	sl->reply = malloc(n ? n : 1);
	if (sl->reply != NULL && n > 0)
		memcpy(sl->reply, p, n);
	sl->reply_bytes = sl->reply != NULL ? n : 0;
	sl->ready = true;
}

static void reply_now(struct cconn *c, uint64_t id, const uint8_t *p, size_t n)
{
	set_reply(slot_of(c->rs, id), p, n);
}

void redis_deliver(struct server *s, struct cconn *c,
		   const struct client_response *r)
{
	(void)s;
	struct redis_state *rs = c->rs;
	if (r->request_id < rs->head_id || r->request_id >= rs->next_id)
		return;
	struct redis_slot *sl = slot_of(rs, r->request_id);
	if (sl->op == KV_PUT || sl->op == KV_DEL) {
		KEEL_ASSERT(rs->writes_inflight > 0);
		rs->writes_inflight--;
	} else if (sl->op == KV_GET) {
		KEEL_ASSERT(rs->reads_inflight > 0);
		rs->reads_inflight--;
	}
	uint8_t small[REPLY_SMALL_BYTES];
	size_t n = 0;
	if (r->status == CLIENT_OK && sl->op == KV_GET) {
		size_t cap = (size_t)r->value_bytes + 32;
		uint8_t *big = malloc(cap);
		n = big != NULL ? resp_bulk(big, cap, r->value, r->value_bytes) : 0;
		if (n > 0) {
			sl->reply = big;
			sl->reply_bytes = n;
			sl->ready = true;
			flush(c);
			redis_resume(c);
			return;
		}
		free(big);
		n = resp_error(small, sizeof small, "ERR out of memory");
	} else if (r->status == CLIENT_OK && sl->op == KV_DEL) {
		n = resp_integer(small, sizeof small, 1);
	} else if (r->status == CLIENT_NOT_FOUND && sl->op == KV_DEL) {
		n = resp_integer(small, sizeof small, 0);
	} else if (r->status == CLIENT_NOT_FOUND) {
		n = resp_nil(small, sizeof small);
	} else if (r->status == CLIENT_OK) {
		n = resp_simple(small, sizeof small, "OK");
	} else {
		char msg[300];
		static const char *const names[] = {
			"OK", "NOT_FOUND", "CAS_FAILED", "TOO_BIG", "STALE_SEQ",
			"NOT_LEADER", "UNAVAILABLE", "BAD_REQUEST", "SHUTTING_DOWN",
			"BUSY",
		};
		const char *name = r->status <= CLIENT_STATUS_MAX ? names[r->status] : "ERR";
		if (r->status == CLIENT_NOT_LEADER)
			snprintf(msg, sizeof msg, "%s leader %llu at %s (keel client port)",
				 name, (unsigned long long)r->leader_id,
				 r->leader_addr[0] ? r->leader_addr : "unknown");
		else
			snprintf(msg, sizeof msg, "%s %s", name, r->message);
		n = resp_error(small, sizeof small, msg);
	}
	set_reply(sl, small, n);
	flush(c);
	redis_resume(c);
}

static void kv_request(struct server *s, struct cconn *c, uint64_t id,
		       uint32_t op, const struct resp_request *req)
{
	struct redis_state *rs = c->rs;
	struct client_request r;
	memset(&r, 0, sizeof r);
	r.request_id = id;
	r.kind = CLIENT_REQ_KV;
	r.consistency = KV_LINEARIZABLE;
	r.cmd.op = op;
	r.cmd.key = req->argv[1];
	r.cmd.key_bytes = req->argl[1];
	if (op == KV_PUT) {
		r.cmd.value = req->argv[2];
		r.cmd.value_bytes = req->argl[2];
	}
	if (op != KV_GET) {
		r.cmd.client_id = rs->client_id;
		r.cmd.seq = ++rs->seq;
		rs->writes_inflight++;
	} else {
		rs->reads_inflight++;
	}
	slot_of(rs, id)->op = op;
	int rc = codec_command_validate(&r.cmd);
	if (rc != 0) {
		/* Answered here, never by redis_deliver: undo the count, or
		 * the connection's later commands wait for it forever. */
		if (op != KV_GET)
			rs->writes_inflight--;
		else
			rs->reads_inflight--;
		slot_of(rs, id)->op = 0;
		uint8_t b[128];
		size_t n = resp_error(b, sizeof b, "ERR key or value out of range");
		reply_now(c, id, b, n);
		return;
	}
	server_client_request(s, c, &r);
}

static void command(struct server *s, struct cconn *c,
		    const struct resp_request *req)
{
	struct redis_state *rs = c->rs;
	uint64_t id = rs->next_id++;
	struct redis_slot *sl = slot_of(rs, id);
	sl->ready = false;
	sl->op = 0;
	uint8_t b[REPLY_SMALL_BYTES];
	size_t n;
	if (req->argc == 0) {
		n = resp_error(b, sizeof b, "ERR empty command");
	} else if (resp_arg_is(req, 0, "PING") && req->argc == 1) {
		n = resp_simple(b, sizeof b, "PONG");
	} else if (resp_arg_is(req, 0, "ECHO") && req->argc == 2 &&
		   req->argl[1] < sizeof b - 32) {
		n = resp_bulk(b, sizeof b, req->argv[1], req->argl[1]);
	} else if (resp_arg_is(req, 0, "GET") && req->argc == 2) {
		kv_request(s, c, id, KV_GET, req);
		return;
	} else if (resp_arg_is(req, 0, "SET") && req->argc == 3) {
		kv_request(s, c, id, KV_PUT, req);
		return;
	} else if (resp_arg_is(req, 0, "DEL") && req->argc == 2) {
		kv_request(s, c, id, KV_DEL, req);
		return;
	} else if (resp_arg_is(req, 0, "SELECT") && req->argc == 2 &&
		   req->argl[1] == 1 && req->argv[1][0] == '0') {
		n = resp_simple(b, sizeof b, "OK");
	} else if (resp_arg_is(req, 0, "QUIT")) {
		rs->quit = true;
		n = resp_simple(b, sizeof b, "OK");
	} else if (resp_arg_is(req, 0, "COMMAND") || resp_arg_is(req, 0, "CONFIG") ||
		   resp_arg_is(req, 0, "CLIENT") || resp_arg_is(req, 0, "INFO")) {
		n = resp_empty_array(b, sizeof b);
	} else {
		char msg[96];
		snprintf(msg, sizeof msg,
			 "ERR unknown command or arguments '%.*s' (keel: PING ECHO GET SET DEL)",
			 (int)(req->argl[0] < 32 ? req->argl[0] : 32),
			 (const char *)req->argv[0]);
		n = resp_error(b, sizeof b, msg);
	}
	reply_now(c, id, b, n);
}

static void process(struct cconn *c)
{
	struct redis_state *rs = c->rs;
	if (rs->busy)
		return; /* an answer delivered while parsing: the loop goes on */
	rs->busy = true;
	bool blocked = false;
	size_t off = 0;
	while (off < rs->in_have && !c->f.closing && !rs->quit) {
		if (rs->next_id - rs->head_id == REDIS_PIPELINE_MAX) {
			blocked = true; /* resumes when replies drain */
			break;
		}
		struct resp_request req;
		int rc = resp_parse(rs->in + off, rs->in_have - off, &req);
		if (rc == 0)
			break;
		bool is_get = rc > 0 && resp_arg_is(&req, 0, "GET");
		bool is_write = rc > 0 && (resp_arg_is(&req, 0, "SET") ||
					   resp_arg_is(&req, 0, "DEL"));
		if ((is_get && rs->writes_inflight > 0) ||
		    (is_write && rs->reads_inflight > 0)) {
			/* Per-connection order: reads and writes do not overtake
			 * each other (runs of either kind still pipeline). */
			blocked = true;
			break;
		}
		if (rc < 0) {
			uint8_t b[128];
			uint64_t id = rs->next_id++;
			reply_now(c, id, b, resp_error(b, sizeof b,
						      "ERR protocol error; closing"));
			rs->quit = true;
			LOG_WARN("closing redis connection from %s: %s", c->f.addr,
				 keel_err_msg(rc));
			c->s->ctr.client_bad_frames++;
			break;
		}
		command(c->s, c, &req);
		off += (size_t)rc;
	}
	memmove(rs->in, rs->in + off, rs->in_have - off);
	rs->in_have -= off;
	rs->busy = false;
	flush(c);
	/* Back-pressure: read on only while there is room for another read. */
	fconn_pause(&c->f, blocked ||
			   rs->in_have + FCONN_READ_BYTES > REDIS_INPUT_BYTES_MAX);
}

int redis_on_bytes(struct fconn *f, const uint8_t *p, size_t n)
{
	struct cconn *c = f->owner;
	struct redis_state *rs = c->rs;
	KEEL_ASSERT(rs->in_have + n <= REDIS_INPUT_BYTES_MAX); /* paused before */
	memcpy(rs->in + rs->in_have, p, n);
	rs->in_have += n;
	process(c);
	return 0;
}

struct redis_state *redis_state_new(void)
{
	struct redis_state *rs = calloc(1, sizeof *rs);
	if (rs == NULL)
		return NULL;
	rs->in = malloc(REDIS_INPUT_BYTES_MAX);
	if (rs->in == NULL) {
		free(rs);
		return NULL;
	}
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	rs->client_id = mix((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^
			    (uint64_t)(uintptr_t)rs) | 1u;
	return rs;
}

void redis_state_free(struct redis_state *rs)
{
	if (rs == NULL)
		return;
	for (uint32_t i = 0; i < REDIS_PIPELINE_MAX; i++)
		free(rs->slots[i].reply);
	free(rs->in);
	free(rs);
}

/* Called when replies drained: parse what waited for room. */
void redis_resume(struct cconn *c)
{
	if (c->rs != NULL && c->rs->in_have > 0 && !c->f.closing)
		process(c);
}
