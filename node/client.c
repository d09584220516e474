/* client.c: keel's C client library (see client.h). */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "../core/assert.h"
#include "../core/err.h"
#include "client.h"

static const char *const status_names[] = {
	"OK", "NOT_FOUND", "CAS_FAILED", "TOO_BIG", "STALE_SEQ", "NOT_LEADER",
	"UNAVAILABLE", "BAD_REQUEST", "SHUTTING_DOWN", "BUSY",
};

const char *kc_status_name(uint32_t status)
{
	return status <= CLIENT_STATUS_MAX ? status_names[status] : "UNKNOWN";
}

static void seterr(struct kc *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void seterr(struct kc *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->last_error, sizeof c->last_error, fmt, ap);
	va_end(ap);
}

const char *kc_last_error(const struct kc *c)
{
	return c->last_error;
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void kc_config_default(struct kc_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->timeout_ms = KC_TIMEOUT_MS_DEFAULT;
	cfg->attempts_max = KC_ATTEMPTS_MAX_DEFAULT;
}

static int addr_parse(const char *addr, struct sockaddr_in *sa)
{
	char host[KEEL_ADDR_BYTES_MAX];
	const char *colon = strrchr(addr, ':');
	if (colon == NULL || (size_t)(colon - addr) >= sizeof host)
		return KEEL_EINVAL;
	memcpy(host, addr, (size_t)(colon - addr));
	host[colon - addr] = '\0';
	char *end = NULL;
	long port = strtol(colon + 1, &end, 10);
	if (*end != '\0' || end == colon + 1 || port <= 0 || port > 65535)
		return KEEL_EINVAL;
	memset(sa, 0, sizeof *sa);
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
		return KEEL_EINVAL;
	return 0;
}

int kc_parse_endpoints(struct kc_config *cfg, const char *csv, char *err,
		       size_t err_bytes)
{
	char buf[KC_ENDPOINTS_MAX * KEEL_ADDR_BYTES_MAX];
	if (strlen(csv) >= sizeof buf) {
		snprintf(err, err_bytes, "--endpoints: list too long");
		return KEEL_EINVAL;
	}
	snprintf(buf, sizeof buf, "%s", csv);
	cfg->endpoint_count = 0;
	char *save = NULL;
	for (char *t = strtok_r(buf, ",", &save); t != NULL;
	     t = strtok_r(NULL, ",", &save)) {
		struct sockaddr_in sa;
		if (addr_parse(t, &sa) != 0 || strlen(t) >= KEEL_ADDR_BYTES_MAX) {
			snprintf(err, err_bytes,
				 "--endpoints: '%s' is not IPv4:PORT (e.g. 127.0.0.1:7101)",
				 t);
			return KEEL_EINVAL;
		}
		if (cfg->endpoint_count == KC_ENDPOINTS_MAX) {
			snprintf(err, err_bytes, "--endpoints: more than %u",
				 KC_ENDPOINTS_MAX);
			return KEEL_EINVAL;
		}
		snprintf(cfg->endpoints[cfg->endpoint_count++],
			 KEEL_ADDR_BYTES_MAX, "%s", t);
	}
	if (cfg->endpoint_count == 0) {
		snprintf(err, err_bytes, "--endpoints: empty list");
		return KEEL_EINVAL;
	}
	return 0;
}

int kc_init(struct kc *c, const struct kc_config *cfg)
{
	if (cfg->endpoint_count == 0 || cfg->timeout_ms == 0 ||
	    cfg->attempts_max == 0)
		return KEEL_EINVAL;
	memset(c, 0, sizeof *c);
	c->cfg = *cfg;
	c->fd = -1;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	c->rng = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^
		 ((uint64_t)getpid() << 40) ^ (uint64_t)(uintptr_t)c;
	if (c->cfg.client_id == 0)
		c->cfg.client_id = rng_next(&c->rng) | 1u;
	c->next_endpoint = (uint32_t)(rng_next(&c->rng) % cfg->endpoint_count);
	return 0;
}

static void disconnect(struct kc *c)
{
	if (c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
		codec_stream_close(&c->stream);
	}
	c->connected_to[0] = '\0';
	c->rbuf_have = c->rbuf_used = 0;
}

void kc_close(struct kc *c)
{
	disconnect(c);
}

void kc_result_free(struct kc_result *res)
{
	free(res->value);
	res->value = NULL;
	res->value_bytes = 0;
}

static int wait_fd(int fd, short events, uint64_t deadline)
{
	for (;;) {
		uint64_t now = now_ms();
		if (now >= deadline)
			return KEEL_ETIMEDOUT;
		struct pollfd p = { .fd = fd, .events = events };
		int n = poll(&p, 1, (int)(deadline - now));
		if (n > 0)
			return 0;
		if (n == 0)
			return KEEL_ETIMEDOUT;
		if (errno != EINTR)
			return -errno;
	}
}

static int send_all(struct kc *c, const uint8_t *p, size_t n, uint64_t deadline)
{
	while (n > 0) {
		ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
		if (w > 0) {
			p += w;
			n -= (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			int rc = wait_fd(c->fd, POLLOUT, deadline);
			if (rc != 0)
				return rc;
			continue;
		}
		return w < 0 ? -errno : KEEL_ESHUTDOWN;
	}
	return 0;
}

static int connect_to(struct kc *c, const char *addr, uint64_t deadline)
{
	struct sockaddr_in sa;
	if (addr_parse(addr, &sa) != 0) {
		seterr(c, "bad address %s", addr);
		return KEEL_EINVAL;
	}
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	int rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
	if (rc != 0 && errno != EINPROGRESS) {
		rc = -errno;
		close(fd);
		seterr(c, "cannot connect to %s: %s", addr, strerror(-rc));
		return rc;
	}
	if (rc != 0) {
		rc = wait_fd(fd, POLLOUT, deadline);
		int soerr = 0;
		socklen_t len = sizeof soerr;
		if (rc == 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == 0 &&
		    soerr != 0)
			rc = -soerr;
		if (rc != 0) {
			close(fd);
			seterr(c, "cannot connect to %s: %s", addr,
			       rc == KEEL_ETIMEDOUT ? "timed out" : strerror(-rc));
			return rc;
		}
	}
	c->fd = fd;
	codec_stream_init(&c->stream, &(struct keel_alloc){ 0 });
	snprintf(c->connected_to, sizeof c->connected_to, "%s", addr);
	struct codec_hello h = { .protocol_version = CODEC_VERSION,
				 .cluster_id = c->cfg.cluster_id,
				 .node_id = 0,
				 .role = HELLO_CLIENT };
	uint8_t buf[128];
	int n = codec_hello_encode(&h, buf, sizeof buf);
	KEEL_ASSERT(n > 0);
	rc = send_all(c, buf, (size_t)n, deadline);
	if (rc != 0) {
		disconnect(c);
		seterr(c, "cannot send hello to %s", addr);
	}
	return rc;
}

/* Read one response frame with id; others are skipped. */
static int read_response(struct kc *c, uint64_t request_id, uint64_t deadline,
			 struct kc_result *res)
{
	for (;;) {
		while (c->rbuf_used < c->rbuf_have) {
			size_t used = 0;
			int rc = codec_stream_feed(&c->stream, c->rbuf + c->rbuf_used,
						   c->rbuf_have - c->rbuf_used, &used);
			c->rbuf_used += used;
			if (rc < 0) {
				seterr(c, "bad frame from %s: %s", c->connected_to,
				       keel_err_msg(rc));
				return rc;
			}
			if (rc == 0)
				break;
			if (c->stream.frame_type != FRAME_CLIENT_RESPONSE)
				continue;
			struct client_response r;
			struct codec_decoded d;
			rc = codec_response_decode(c->stream.payload,
						   c->stream.payload_bytes,
						   &(struct keel_alloc){ 0 }, &r, &d);
			if (rc != 0) {
				seterr(c, "bad response from %s: %s",
				       c->connected_to, keel_err_msg(rc));
				return rc;
			}
			if (r.request_id != request_id) {
				codec_decoded_free(&d);
				continue;
			}
			res->status = r.status;
			res->stale = r.stale;
			res->leader_id = r.leader_id;
			snprintf(res->message, sizeof res->message, "%s", r.message);
			res->has_node_status = r.has_node_status;
			res->member_id = r.member_id;
			res->cluster_id = r.cluster_id;
			if (r.has_node_status)
				res->node_status = r.node_status;
			if (r.status == CLIENT_NOT_LEADER)
				snprintf(c->leader_addr, sizeof c->leader_addr,
					 "%s", r.leader_addr);
			free(res->value);
			res->value = NULL;
			res->value_bytes = 0;
			if (r.value_bytes > 0) {
				res->value = malloc(r.value_bytes);
				if (res->value == NULL) {
					codec_decoded_free(&d);
					return KEEL_ENOMEM;
				}
				memcpy(res->value, r.value, r.value_bytes);
				res->value_bytes = r.value_bytes;
			}
			codec_decoded_free(&d);
			return 0;
		}
		c->rbuf_have = c->rbuf_used = 0;
		int rc = wait_fd(c->fd, POLLIN, deadline);
		if (rc != 0) {
			seterr(c, "no answer from %s within %u ms",
			       c->connected_to, c->cfg.timeout_ms);
			return rc;
		}
		ssize_t n = recv(c->fd, c->rbuf, sizeof c->rbuf, 0);
		if (n == 0) {
			seterr(c, "%s closed the connection", c->connected_to);
			return KEEL_ESHUTDOWN;
		}
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			seterr(c, "reading from %s: %s", c->connected_to,
			       strerror(errno));
			return -errno;
		}
		c->rbuf_have = (size_t)n;
	}
}

static const char *pick_target(struct kc *c)
{
	if (c->leader_addr[0] != '\0')
		return c->leader_addr;
	const char *a = c->cfg.endpoints[c->next_endpoint];
	c->next_endpoint = (c->next_endpoint + 1) % c->cfg.endpoint_count;
	return a;
}

static void backoff(struct kc *c, uint32_t attempt)
{
	uint32_t ms = 10u << (attempt < 5 ? attempt : 5);
	if (ms > KC_BACKOFF_MS_MAX)
		ms = KC_BACKOFF_MS_MAX;
	ms = ms / 2 + (uint32_t)(rng_next(&c->rng) % (ms / 2 + 1));
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static bool retryable(uint32_t status)
{
	return status == CLIENT_NOT_LEADER || status == CLIENT_UNAVAILABLE ||
	       status == CLIENT_BUSY || status == CLIENT_SHUTTING_DOWN;
}

/* Send req (its request_id is set per attempt) until a definite answer or
 * attempts_max; write: it changes state, so an unanswered attempt makes the
 * outcome unknown (see client.h). */
static int request(struct kc *c, struct client_request *req, bool write,
		   struct kc_result *res)
{
	memset(res, 0, sizeof *res);
	bool maybe_applied = false; /* a write was sent and not answered */
	c->last_error[0] = '\0';
	for (uint32_t attempt = 0; attempt < c->cfg.attempts_max; attempt++) {
		if (attempt > 0)
			backoff(c, attempt);
		uint64_t deadline = now_ms() + c->cfg.timeout_ms;
		const char *target = pick_target(c);
		if (c->fd >= 0 && strcmp(c->connected_to, target) != 0)
			disconnect(c);
		if (c->fd < 0 && connect_to(c, target, deadline) != 0) {
			c->leader_addr[0] = '\0'; /* try the others */
			continue;
		}
		req->request_id = ++c->request_id;
		size_t bytes = codec_request_encoded_bytes(req);
		uint8_t *buf = malloc(bytes);
		if (buf == NULL)
			return KEEL_ENOMEM;
		int n = codec_request_encode(req, buf, bytes);
		KEEL_ASSERT(n == (int)bytes);
		int rc = send_all(c, buf, bytes, deadline);
		free(buf);
		if (rc == 0)
			rc = read_response(c, req->request_id, deadline, res);
		if (rc != 0) {
			/* Sent (perhaps partly) and unanswered: a write may
			 * have been applied. */
			maybe_applied = maybe_applied || write;
			if (rc == KEEL_ENOMEM)
				return rc;
			disconnect(c);
			c->leader_addr[0] = '\0';
			continue;
		}
		if (!retryable(res->status))
			return 0; /* definite */
		if (res->status == CLIENT_NOT_LEADER) {
			seterr(c, "%s is not the leader%s%s", c->connected_to,
			       c->leader_addr[0] ? "; trying " : " and knows no leader",
			       c->leader_addr);
		} else {
			seterr(c, "%s answered %s: %s", c->connected_to,
			       kc_status_name(res->status), res->message);
			c->leader_addr[0] = '\0';
		}
		/* NOT_LEADER, BUSY and SHUTTING_DOWN: this attempt was not
		 * applied. UNAVAILABLE: it may have been. */
		if (res->status == CLIENT_UNAVAILABLE)
			maybe_applied = maybe_applied || write;
	}
	if (write && maybe_applied) {
		char prev[KC_ERROR_BYTES];
		snprintf(prev, sizeof prev, "%s", c->last_error);
		seterr(c, "outcome unknown after %u attempts (last: %s)",
		       c->cfg.attempts_max, prev);
		return KEEL_EINDETERMINATE;
	}
	if (!write && c->last_error[0] != '\0' &&
	    strstr(c->last_error, "no answer") != NULL)
		return KEEL_ETIMEDOUT;
	return KEEL_ENOLEADER;
}

int kc_request(struct kc *c, uint32_t kind, struct kv_command *cmd,
	       uint32_t consistency, struct kc_result *res)
{
	bool write = kind == CLIENT_REQ_KV && cmd->op != KV_GET;
	if (write) {
		cmd->client_id = c->cfg.client_id;
		cmd->seq = ++c->seq;
	}
	struct client_request req;
	memset(&req, 0, sizeof req);
	req.kind = kind;
	req.consistency = consistency;
	if (cmd != NULL)
		req.cmd = *cmd;
	return request(c, &req, write, res);
}

int kc_member_change(struct kc *c, const struct member_change *change,
		     struct kc_result *res)
{
	struct client_request req;
	memset(&req, 0, sizeof req);
	req.kind = CLIENT_REQ_MEMBER;
	req.change = *change;
	return request(c, &req, true, res);
}

int kc_transfer_leader(struct kc *c, keel_node_id to, struct kc_result *res)
{
	struct client_request req;
	memset(&req, 0, sizeof req);
	req.kind = CLIENT_REQ_TRANSFER;
	req.transfer_to = to;
	return request(c, &req, true, res);
}

static struct kv_command mk(uint32_t op, const void *k, uint32_t kb,
			    const void *v, uint32_t vb)
{
	struct kv_command cmd;
	memset(&cmd, 0, sizeof cmd);
	cmd.op = op;
	cmd.key = k;
	cmd.key_bytes = kb;
	cmd.value = v;
	cmd.value_bytes = vb;
	return cmd;
}

int kc_put(struct kc *c, const void *k, uint32_t kb, const void *v,
	   uint32_t vb, struct kc_result *res)
{
	struct kv_command cmd = mk(KV_PUT, k, kb, v, vb);
	return kc_request(c, CLIENT_REQ_KV, &cmd, KV_LINEARIZABLE, res);
}

int kc_get(struct kc *c, const void *k, uint32_t kb, bool stale,
	   struct kc_result *res)
{
	struct kv_command cmd = mk(KV_GET, k, kb, NULL, 0);
	return kc_request(c, CLIENT_REQ_KV, &cmd,
			  stale ? KV_STALE : KV_LINEARIZABLE, res);
}

int kc_del(struct kc *c, const void *k, uint32_t kb, struct kc_result *res)
{
	struct kv_command cmd = mk(KV_DEL, k, kb, NULL, 0);
	return kc_request(c, CLIENT_REQ_KV, &cmd, KV_LINEARIZABLE, res);
}

int kc_cas(struct kc *c, const void *k, uint32_t kb, const void *old,
	   uint32_t ob, bool old_absent, const void *v, uint32_t vb,
	   struct kc_result *res)
{
	struct kv_command cmd = mk(KV_CAS, k, kb, v, vb);
	cmd.cas_absent = old_absent;
	cmd.expected = old;
	cmd.expected_bytes = ob;
	return kc_request(c, CLIENT_REQ_KV, &cmd, KV_LINEARIZABLE, res);
}

int kc_append(struct kc *c, const void *k, uint32_t kb, const void *v,
	      uint32_t vb, struct kc_result *res)
{
	struct kv_command cmd = mk(KV_APPEND, k, kb, v, vb);
	return kc_request(c, CLIENT_REQ_KV, &cmd, KV_LINEARIZABLE, res);
}

int kc_status(struct kc *c, struct kc_result *res)
{
	return kc_request(c, CLIENT_REQ_STATUS, NULL, KV_LINEARIZABLE, res);
}
