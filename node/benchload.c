/* benchload.c: keelctl bench's load generator (see benchload.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../core/assert.h"
#include "../core/err.h"
#include "benchload.h"

enum bstate {
	B_DONE = 0,    /* no more ops */
	B_PAUSED,      /* waits for retry_at_ns before its next attempt */
	B_CONNECTING,  /* connect in progress; the request goes out after */
	B_WAITING,     /* request sent (or partly); waits for the answer */
};

struct bclient {
	uint32_t index;
	uint32_t state;
	int fd;
	uint32_t conn_gen; /* bumped per connection: stale events are ignored */
	bool out_armed; /* EPOLLOUT registered */
	char connected_to[KEEL_ADDR_BYTES_MAX];
	char hint[KEEL_ADDR_BYTES_MAX]; /* leader address from NOT_LEADER */
	uint32_t next_endpoint;
	uint64_t client_id, seq, request_id;
	uint64_t n; /* op number (count mode) or generator state */
	uint64_t op_start_ns, deadline_ns, retry_at_ns;
	uint32_t attempts;
	bool maybe_applied; /* a put attempt of this op may have been applied */
	char key[32];
	uint32_t key_bytes;
	struct codec_stream stream;
	uint8_t *wbuf;
	size_t wbuf_cap, wlen, woff;
	uint8_t rbuf[4096];
};

struct bench {
	const struct bench_cfg *cfg;
	struct bench_stats *st;
	int ep;
	uint8_t *value;
	uint64_t issued; /* count mode */
	uint32_t active;
	struct bclient *c;
};

uint64_t bench_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint32_t bench_bucket_of(uint64_t ns)
{
	double us = (double)ns / 1000.0;
	if (us < 1.0)
		return 0;
	int b = (int)(log2(us) * 64.0);
	return b < 0 ? 0 :
	       (b >= (int)BENCH_HIST_BUCKETS ? BENCH_HIST_BUCKETS - 1 : (uint32_t)b);
}

double bench_bucket_us(uint32_t b)
{
	return exp2(((double)b + 0.5) / 64.0);
}

static uint64_t mix(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* ---- connections ----------------------------------------------------------- */

static void close_conn(struct bench *b, struct bclient *c)
{
	if (c->fd < 0)
		return;
	epoll_ctl(b->ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	codec_stream_close(&c->stream);
	c->fd = -1;
	c->out_armed = false;
	c->connected_to[0] = '\0';
}

static uint64_t ev_tag(const struct bclient *c)
{
	return ((uint64_t)c->conn_gen << 32) | c->index;
}

static void arm(struct bench *b, struct bclient *c, bool out)
{
	if (c->out_armed == out)
		return;
	struct epoll_event ev = { .events = EPOLLIN | (out ? EPOLLOUT : 0),
				  .data.u64 = ev_tag(c) };
	epoll_ctl(b->ep, EPOLL_CTL_MOD, c->fd, &ev);
	c->out_armed = out;
}

static int parse_addr(const char *addr, struct sockaddr_in *sa)
{
	char host[KEEL_ADDR_BYTES_MAX];
	const char *colon = strrchr(addr, ':');
	if (colon == NULL || (size_t)(colon - addr) >= sizeof host)
		return KEEL_EINVAL;
	memcpy(host, addr, (size_t)(colon - addr));
	host[colon - addr] = '\0';
	long port = strtol(colon + 1, NULL, 10);
	memset(sa, 0, sizeof *sa);
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)port);
	if (port <= 0 || port > 65535 || inet_pton(AF_INET, host, &sa->sin_addr) != 1)
		return KEEL_EINVAL;
	return 0;
}

/* Start connecting c to addr (non-blocking). Returns 0 or an error. */
static int open_conn(struct bench *b, struct bclient *c, const char *addr)
{
	struct sockaddr_in sa;
	if (parse_addr(addr, &sa) != 0)
		return KEEL_EINVAL;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 &&
	    errno != EINPROGRESS) {
		int rc = -errno;
		close(fd);
		return rc;
	}
	c->conn_gen++;
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT,
				  .data.u64 = ev_tag(c) };
	if (epoll_ctl(b->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
		int rc = -errno;
		close(fd);
		return rc;
	}
	c->fd = fd;
	c->out_armed = true;
	codec_stream_init(&c->stream, &(struct keel_alloc){ 0 });
	snprintf(c->connected_to, sizeof c->connected_to, "%s", addr);
	return 0;
}

/* ---- ops ------------------------------------------------------------------- */

static void start_op(struct bench *b, struct bclient *c, uint64_t now);

static void finish_op(struct bench *b, struct bclient *c, int outcome,
		      uint64_t now)
{
	if (outcome == 0) {
		b->st->ops++;
		b->st->hist[bench_bucket_of(now - c->op_start_ns)]++;
	} else if (outcome == KEEL_EINDETERMINATE) {
		b->st->unknown++;
	} else {
		b->st->failures++;
	}
	start_op(b, c, now);
}

/* Queue the hello (new connection) and the request in wbuf. */
static int encode_request(struct bench *b, struct bclient *c, bool hello)
{
	const struct bench_cfg *cfg = b->cfg;
	struct client_request req = { .kind = CLIENT_REQ_KV,
				      .request_id = ++c->request_id };
	req.cmd.key = (const uint8_t *)c->key;
	req.cmd.key_bytes = c->key_bytes;
	if (cfg->op == KV_PUT) {
		req.cmd.op = KV_PUT;
		req.cmd.client_id = c->client_id;
		req.cmd.seq = c->seq;
		req.cmd.value = b->value;
		req.cmd.value_bytes = cfg->value_bytes;
	} else {
		req.cmd.op = KV_GET;
		req.consistency = KV_LINEARIZABLE;
	}
	struct codec_hello h = { .protocol_version = CODEC_VERSION,
				 .cluster_id = cfg->kc.cluster_id,
				 .role = HELLO_CLIENT };
	size_t need = codec_request_encoded_bytes(&req) +
		      (hello ? codec_hello_encoded_bytes(&h) : 0);
	if (need > c->wbuf_cap) {
		uint8_t *p = realloc(c->wbuf, need);
		if (p == NULL)
			return KEEL_ENOMEM;
		c->wbuf = p;
		c->wbuf_cap = need;
	}
	c->wlen = c->woff = 0;
	if (hello) {
		int n = codec_hello_encode(&h, c->wbuf, c->wbuf_cap);
		KEEL_ASSERT(n > 0);
		c->wlen = (size_t)n;
	}
	int n = codec_request_encode(&req, c->wbuf + c->wlen, c->wbuf_cap - c->wlen);
	KEEL_ASSERT(n > 0);
	c->wlen += (size_t)n;
	return 0;
}

/* Write what is pending; false if the connection failed. */
static bool flush(struct bench *b, struct bclient *c)
{
	while (c->woff < c->wlen) {
		ssize_t w = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff,
				 MSG_NOSIGNAL);
		if (w > 0) {
			c->woff += (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			arm(b, c, true);
			return true;
		}
		return false;
	}
	arm(b, c, false);
	return true;
}

static void retry_later(struct bench *b, struct bclient *c, uint64_t now,
			bool forget_hint)
{
	(void)b;
	if (forget_hint)
		c->hint[0] = '\0';
	c->state = B_PAUSED;
	c->retry_at_ns = now + (uint64_t)BENCH_RETRY_MS * 1000000ull;
}

/* The connection failed or timed out while c was connecting or waiting. */
static void conn_failed(struct bench *b, struct bclient *c, uint64_t now)
{
	if (c->state == B_WAITING && c->woff > 0 && b->cfg->op == KV_PUT)
		c->maybe_applied = true;
	bool was_get_sent = c->state == B_WAITING && c->woff > 0 &&
			    b->cfg->op == KV_GET;
	close_conn(b, c);
	if (was_get_sent) { /* a read that got no answer: failed */
		finish_op(b, c, KEEL_ETIMEDOUT, now);
		return;
	}
	retry_later(b, c, now, true);
}

static void attempt(struct bench *b, struct bclient *c, uint64_t now)
{
	const struct bench_cfg *cfg = b->cfg;
	if (c->attempts == cfg->kc.attempts_max) {
		finish_op(b, c, c->maybe_applied ? KEEL_EINDETERMINATE : KEEL_ENOLEADER,
			  now);
		return;
	}
	c->attempts++;
	const char *target = c->hint[0] != '\0' ? c->hint :
			     cfg->kc.endpoints[c->next_endpoint];
	if (c->hint[0] == '\0')
		c->next_endpoint = (c->next_endpoint + 1) % cfg->kc.endpoint_count;
	if (c->fd >= 0 && strcmp(c->connected_to, target) != 0)
		close_conn(b, c);
	c->deadline_ns = now + (uint64_t)cfg->kc.timeout_ms * 1000000ull;
	bool fresh = c->fd < 0;
	if (fresh && open_conn(b, c, target) != 0) {
		retry_later(b, c, now, true);
		return;
	}
	if (encode_request(b, c, fresh) != 0) {
		finish_op(b, c, KEEL_ENOMEM, now);
		return;
	}
	if (fresh) {
		c->state = B_CONNECTING; /* the bytes leave once connected */
		return;
	}
	c->state = B_WAITING;
	if (!flush(b, c))
		conn_failed(b, c, now);
}

static void start_op(struct bench *b, struct bclient *c, uint64_t now)
{
	const struct bench_cfg *cfg = b->cfg;
	uint64_t k;
	if (cfg->count_max > 0) {
		if (b->issued >= cfg->count_max)
			goto done;
		c->n = b->issued++;
		k = c->n % cfg->keys;
	} else {
		if (now >= cfg->deadline_ns)
			goto done;
		c->n = c->n * 6364136223846793005ull + c->index +
		       1442695040888963407ull;
		k = (c->n >> 17) % cfg->keys;
	}
	c->key_bytes = (uint32_t)snprintf(c->key, sizeof c->key, "k%08" PRIu64, k);
	c->seq++;
	c->attempts = 0;
	c->maybe_applied = false;
	c->op_start_ns = now;
	attempt(b, c, now);
	return;
done:
	close_conn(b, c);
	c->state = B_DONE;
	KEEL_ASSERT(b->active > 0);
	b->active--;
}

/* One decoded response for c's request: decide the op's fate. */
static void on_answer(struct bench *b, struct bclient *c,
		      const struct client_response *r, uint64_t now)
{
	bool put = b->cfg->op == KV_PUT;
	switch (r->status) {
	case CLIENT_OK:
	case CLIENT_NOT_FOUND:
		finish_op(b, c, 0, now);
		return;
	case CLIENT_NOT_LEADER:
		snprintf(c->hint, sizeof c->hint, "%s", r->leader_addr);
		if (c->hint[0] != '\0') {
			attempt(b, c, now); /* nothing applied: same seq */
			return;
		}
		retry_later(b, c, now, true);
		return;
	case CLIENT_UNAVAILABLE:
		c->maybe_applied = c->maybe_applied || put;
		retry_later(b, c, now, true); /* the session answers a retry */
		return;
	case CLIENT_BUSY:
	case CLIENT_SHUTTING_DOWN:
		retry_later(b, c, now, true);
		return;
	default:
		finish_op(b, c, KEEL_EINVAL, now);
		return;
	}
}

/* Readable: feed the stream; false if the connection must go. */
static bool on_readable(struct bench *b, struct bclient *c, uint64_t now)
{
	ssize_t n = recv(c->fd, c->rbuf, sizeof c->rbuf, 0);
	if (n == 0)
		return false;
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
	size_t off = 0;
	uint32_t gen = c->conn_gen;
	while (off < (size_t)n && c->fd >= 0 && c->conn_gen == gen) {
		size_t used = 0;
		int rc = codec_stream_feed(&c->stream, c->rbuf + off,
					   (size_t)n - off, &used);
		off += used;
		if (rc < 0)
			return false;
		if (rc == 0)
			break;
		if (c->stream.frame_type != FRAME_CLIENT_RESPONSE ||
		    c->state != B_WAITING)
			continue;
		struct client_response r;
		struct codec_decoded d;
		if (codec_response_decode(c->stream.payload,
					  c->stream.payload_bytes,
					  &(struct keel_alloc){ 0 }, &r, &d) != 0)
			return false;
		if (r.request_id == c->request_id)
			on_answer(b, c, &r, now);
		codec_decoded_free(&d);
	}
	return true;
}

static void on_event(struct bench *b, uint64_t tag, uint32_t events,
		     uint64_t now)
{
	struct bclient *c = &b->c[(uint32_t)tag];
	if (c->fd < 0 || c->conn_gen != (uint32_t)(tag >> 32))
		return; /* an event of a connection closed meanwhile */
	if (c->state == B_CONNECTING && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
		int err = 0;
		socklen_t len = sizeof err;
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 ||
		    err != 0) {
			conn_failed(b, c, now);
			return;
		}
		c->state = B_WAITING;
		if (!flush(b, c))
			conn_failed(b, c, now);
		return;
	}
	if ((events & EPOLLOUT) && c->state == B_WAITING && !flush(b, c)) {
		conn_failed(b, c, now);
		return;
	}
	if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP)) && !on_readable(b, c, now))
		conn_failed(b, c, now);
}

/* Retries that are due, attempts past their deadline; the next wake-up. */
static int sweep(struct bench *b, uint64_t now)
{
	uint64_t next = now + 100000000ull; /* at most 100 ms asleep */
	for (uint32_t i = 0; i < b->cfg->clients; i++) {
		struct bclient *c = &b->c[i];
		if (c->state == B_PAUSED && now >= c->retry_at_ns)
			attempt(b, c, now);
		else if ((c->state == B_WAITING || c->state == B_CONNECTING) &&
			 now >= c->deadline_ns)
			conn_failed(b, c, now);
		uint64_t at = c->state == B_PAUSED ? c->retry_at_ns :
			      c->state == B_DONE ? next : c->deadline_ns;
		if (at < next)
			next = at;
	}
	if (b->cfg->count_max == 0 && b->cfg->deadline_ns > now &&
	    b->cfg->deadline_ns < next)
		next = b->cfg->deadline_ns;
	return next <= now ? 0 : (int)((next - now + 999999) / 1000000);
}

int bench_run(const struct bench_cfg *cfg, struct bench_stats *out)
{
	memset(out, 0, sizeof *out);
	struct bench b = { .cfg = cfg, .st = out, .active = cfg->clients };
	b.ep = epoll_create1(EPOLL_CLOEXEC);
	if (b.ep < 0)
		return -errno;
	b.c = calloc(cfg->clients, sizeof *b.c);
	b.value = malloc(cfg->value_bytes + 1u);
	int rc = 0;
	if (b.c == NULL || b.value == NULL) {
		rc = KEEL_ENOMEM;
		goto out;
	}
	memset(b.value, 'v', cfg->value_bytes);
	uint64_t now = bench_now_ns();
	uint64_t seed = now ^ ((uint64_t)getpid() << 32);
	for (uint32_t i = 0; i < cfg->clients; i++) {
		struct bclient *c = &b.c[i];
		c->index = i;
		c->fd = -1;
		c->client_id = mix(seed + i) | 1u;
		c->next_endpoint = (uint32_t)(mix(seed ^ i) % cfg->kc.endpoint_count);
	}
	for (uint32_t i = 0; i < cfg->clients; i++)
		start_op(&b, &b.c[i], now);
	struct epoll_event ev[BENCH_EVENTS_MAX];
	while (b.active > 0) {
		int timeout = sweep(&b, bench_now_ns());
		if (b.active == 0)
			break;
		int n = epoll_wait(b.ep, ev, BENCH_EVENTS_MAX, timeout);
		if (n < 0 && errno != EINTR) {
			rc = -errno;
			break;
		}
		now = bench_now_ns();
		for (int i = 0; i < n; i++)
			on_event(&b, ev[i].data.u64, ev[i].events, now);
	}
out:
	if (b.c != NULL)
		for (uint32_t i = 0; i < cfg->clients; i++) {
			close_conn(&b, &b.c[i]);
			free(b.c[i].wbuf);
		}
	free(b.c);
	free(b.value);
	close(b.ep);
	return rc;
}
