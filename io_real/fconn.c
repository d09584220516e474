/* fconn.c: one framed TCP connection on libuv (see fconn.h). */
#include <stdlib.h>
#include <string.h>

#include "../core/assert.h"
#include "../core/err.h"
#include "fconn.h"

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	(void)suggested;
	struct fconn *c = h->data;
	buf->base = (char *)c->rbuf;
	buf->len = sizeof c->rbuf;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void on_closed(uv_handle_t *h)
{
	struct fconn *c = h->data;
	codec_stream_close(&c->stream);
	KEEL_ASSERT(c->queued_bytes == 0); /* invariant 2 */
	c->on_close(c, c->close_reason);
}

void fconn_pause(struct fconn *c, bool paused)
{
	if (c->closing || paused == !c->reading)
		return;
	c->reading = !paused;
	if (paused)
		uv_read_stop((uv_stream_t *)&c->tcp);
	else
		uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

void fconn_close(struct fconn *c, int reason)
{
	if (c->closing)
		return;
	c->closing = true;
	c->close_reason = reason;
	uv_close((uv_handle_t *)&c->tcp, on_closed);
}

static void feed(struct fconn *c, const uint8_t *p, size_t n)
{
	while (n > 0 && !c->closing) {
		size_t used = 0;
		int rc = codec_stream_feed(&c->stream, p, n, &used);
		if (rc < 0) {
			fconn_close(c, rc);
			return;
		}
		KEEL_ASSERT(used <= n);
		if (c->frame_bytes_max != 0 &&
		    c->stream.header_have == CODEC_HEADER_BYTES &&
		    c->stream.payload_bytes > c->frame_bytes_max) {
			fconn_close(c, KEEL_ETOOBIG);
			return;
		}
		p += used;
		n -= used;
		if (rc == 0)
			return;
		rc = c->on_frame(c, c->stream.frame_type, c->stream.payload,
				 c->stream.payload_bytes);
		if (rc < 0) {
			fconn_close(c, rc);
			return;
		}
	}
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct fconn *c = s->data;
	(void)buf;
	if (nread < 0) {
		/* EOF in the middle of a frame is a truncated frame. */
		bool partial = c->on_bytes == NULL && !c->stream.frame_ready &&
			       (c->stream.header_have > 0 || c->stream.buf_have > 0);
		fconn_close(c, nread != UV_EOF ? (int)nread :
			       partial ? KEEL_ETRUNCATED : 0);
		return;
	}
	if (c->closing)
		return;
	c->bytes_in += (uint64_t)nread;
	if (c->on_bytes != NULL) {
		int rc = c->on_bytes(c, c->rbuf, (size_t)nread);
		if (rc < 0)
			fconn_close(c, rc);
		return;
	}
	feed(c, c->rbuf, (size_t)nread);
}

static void remember_peer_addr(struct fconn *c)
{
	struct sockaddr_storage ss;
	int len = sizeof ss;
	c->addr[0] = '\0';
	if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) != 0)
		return;
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;
		char ip[32];
		uv_ip4_name(in, ip, sizeof ip);
		snprintf(c->addr, sizeof c->addr, "%s:%u", ip,
			 (unsigned)ntohs(in->sin_port));
	}
}

static int start_reading(struct fconn *c)
{
	uv_tcp_nodelay(&c->tcp, 1);
	c->reading = true;
	return uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

int fconn_accept(uv_stream_t *server, struct fconn *c)
{
	KEEL_ASSERT(c->on_frame != NULL || c->on_bytes != NULL);
	KEEL_ASSERT(c->on_close != NULL);
	codec_stream_init(&c->stream, &(struct keel_alloc){ 0 });
	int rc = uv_tcp_init(server->loop, &c->tcp);
	if (rc != 0)
		return rc;
	c->tcp.data = c;
	c->opened_ms = uv_now(server->loop);
	rc = uv_accept(server, (uv_stream_t *)&c->tcp);
	if (rc == 0) {
		remember_peer_addr(c);
		rc = start_reading(c);
	}
	if (rc != 0)
		fconn_close(c, rc); /* on_close will follow */
	return 0;
}

static void on_connected(uv_connect_t *req, int status)
{
	struct fconn *c = req->data;
	if (c->closing)
		return; /* closed while connecting; on_close follows */
	if (status == 0)
		status = start_reading(c);
	if (status != 0) {
		fconn_close(c, status);
		return;
	}
	c->on_connect(c, 0);
}

int fconn_connect(uv_loop_t *loop, struct fconn *c,
		  const struct sockaddr_in *addr)
{
	KEEL_ASSERT(c->on_frame != NULL && c->on_close != NULL);
	KEEL_ASSERT(c->on_connect != NULL);
	codec_stream_init(&c->stream, &(struct keel_alloc){ 0 });
	int rc = uv_tcp_init(loop, &c->tcp);
	if (rc != 0)
		return rc;
	c->tcp.data = c;
	c->connect_req.data = c;
	rc = uv_tcp_connect(&c->connect_req, &c->tcp,
			    (const struct sockaddr *)addr, on_connected);
	if (rc != 0) {
		fconn_close(c, rc);
		return 0;
	}
	return 0;
}

struct fconn_wbuf *fconn_wbuf_new(size_t n)
{
	struct fconn_wbuf *wb = malloc(sizeof *wb + n);
	if (wb != NULL)
		wb->bytes = n;
	return wb;
}

/* Invariant 1 (and 3: the shared budget follows every change). */
static void queued_add(struct fconn *c, uint64_t n)
{
	c->queued_bytes += n;
	if (c->budget != NULL)
		c->budget->queued_bytes += n;
}

static void queued_sub(struct fconn *c, uint64_t n)
{
	KEEL_ASSERT(c->queued_bytes >= n);
	c->queued_bytes -= n;
	if (c->budget != NULL) {
		KEEL_ASSERT(c->budget->queued_bytes >= n);
		c->budget->queued_bytes -= n;
	}
}

bool fconn_fits(const struct fconn *c, uint64_t n)
{
	if (c->queued_bytes + n > c->queue_bytes_max)
		return false;
	return c->budget == NULL ||
	       c->budget->queued_bytes + n <= c->budget->queued_bytes_max;
}

static void on_written(uv_write_t *req, int status)
{
	struct fconn_wbuf *wb = req->data;
	struct fconn *c = wb->conn;
	queued_sub(c, wb->bytes);
	free(wb);
	if (status != 0 && status != UV_ECANCELED)
		fconn_close(c, status);
}

int fconn_write(struct fconn *c, struct fconn_wbuf *wb)
{
	if (c->closing) {
		free(wb);
		return KEEL_ESHUTDOWN;
	}
	/* The connection's own bound here; the shared budget below, on what
	 * is left to queue (a write the kernel takes at once costs nothing). */
	if (c->queued_bytes + wb->bytes > c->queue_bytes_max) {
		free(wb);
		return KEEL_EBUSY;
	}
	wb->conn = c;
	wb->req.data = wb;
	size_t done = 0;
	if (c->queued_bytes == 0) {
		/* Nothing queued: write now, sparing libuv's write queue (and its
		 * poll-for-writable round trip) when the kernel takes it all. */
		uv_buf_t b0 = uv_buf_init((char *)wb->data, (unsigned)wb->bytes);
		int n = uv_try_write((uv_stream_t *)&c->tcp, &b0, 1);
		if (n == (int)wb->bytes) {
			free(wb);
			return 0;
		}
		if (n > 0)
			done = (size_t)n;
		else if (n != UV_EAGAIN && n != UV_ENOSYS) {
			free(wb);
			fconn_close(c, n);
			return n;
		}
	}
	/* The rest goes through the queue; wb->bytes counts what is queued. */
	wb->bytes -= done;
	if (!fconn_fits(c, wb->bytes)) {
		free(wb);
		if (done > 0) /* part of the frame went out: the stream is cut */
			fconn_close(c, 0);
		return KEEL_EBUSY;
	}
	uv_buf_t b = uv_buf_init((char *)wb->data + done, (unsigned)wb->bytes);
	queued_add(c, wb->bytes);
	int rc = uv_write(&wb->req, (uv_stream_t *)&c->tcp, &b, 1, on_written);
	if (rc != 0) {
		queued_sub(c, wb->bytes);
		free(wb);
		fconn_close(c, rc);
		return rc;
	}
	return 0;
}

int fconn_addr_parse(const char *addr, struct sockaddr_in *sa)
{
	char host[FCONN_ADDR_BYTES];
	const char *colon = strrchr(addr, ':');
	if (colon == NULL || (size_t)(colon - addr) >= sizeof host)
		return KEEL_EINVAL;
	memcpy(host, addr, (size_t)(colon - addr));
	host[colon - addr] = '\0';
	char *end = NULL;
	long port = strtol(colon + 1, &end, 10);
	if (*end != '\0' || end == colon + 1 || port < 0 || port > 65535)
		return KEEL_EINVAL;
	if (uv_ip4_addr(host, (int)port, sa) != 0)
		return KEEL_EINVAL;
	return 0;
}

int fconn_listen(uv_loop_t *loop, uv_tcp_t *server, const char *addr,
		 uv_connection_cb cb)
{
	struct sockaddr_in sa;
	if (fconn_addr_parse(addr, &sa) != 0)
		return KEEL_EINVAL;
	int rc = uv_tcp_init(loop, server);
	if (rc != 0)
		return rc;
	rc = uv_tcp_bind(server, (const struct sockaddr *)&sa, 0);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)server, 128, cb);
	return rc;
}
