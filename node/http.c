/*
 * http.c: the optional HTTP port: GET /metrics (Prometheus text) and
 * GET /status (JSON). One request per connection; the request head is read up
 * to HTTP_REQUEST_BYTES_MAX, then answered and the connection closed.
 *
 * Invariants: at most SERVER_HTTP_CONNS_MAX connections; a connection's
 * buffer never exceeds HTTP_REQUEST_BYTES_MAX; every open connection is on
 * s->http_list, so http_stop closes them all (an idle one must not keep the
 * loop, and so the node, from stopping) and http_sweep closes those whose
 * request head did not arrive within FCONN_HELLO_MS_MAX.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/assert.h"
#include "../core/err.h"
#include "../io_real/log.h"
#include "server.h"

#define HTTP_REQUEST_BYTES_MAX 4096u
#define HTTP_RESPONSE_BYTES_MAX (64u * 1024u)

struct hconn {
	uv_tcp_t tcp;
	uv_write_t wreq;
	struct server *s;
	uint32_t have;
	bool answered;
	uint64_t opened_ms;
	struct hconn *prev, *next; /* s->http_list */
	char req[HTTP_REQUEST_BYTES_MAX];
	char *resp;
};

static void on_closed(uv_handle_t *h)
{
	struct hconn *c = h->data;
	KEEL_ASSERT(c->s->http_conns > 0);
	c->s->http_conns--;
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		c->s->http_list = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	free(c->resp);
	free(c);
}

static void hclose(struct hconn *c)
{
	if (!uv_is_closing((uv_handle_t *)&c->tcp))
		uv_close((uv_handle_t *)&c->tcp, on_closed);
}

static void on_written(uv_write_t *w, int status)
{
	(void)status;
	hclose(w->data);
}

static void answer(struct hconn *c)
{
	struct server *s = c->s;
	c->answered = true;
	uv_read_stop((uv_stream_t *)&c->tcp);
	s->ctr.http_requests++;
	char *body = malloc(HTTP_RESPONSE_BYTES_MAX);
	c->resp = malloc(HTTP_RESPONSE_BYTES_MAX + 256);
	if (body == NULL || c->resp == NULL) {
		free(body);
		hclose(c);
		return;
	}
	const char *code = "200 OK";
	const char *type = "text/plain; version=0.0.4";
	int n;
	if (strncmp(c->req, "GET /metrics ", 13) == 0) {
		n = server_render_metrics(s, body, HTTP_RESPONSE_BYTES_MAX);
	} else if (strncmp(c->req, "GET /status ", 12) == 0) {
		type = "application/json";
		n = server_render_status(s, body, HTTP_RESPONSE_BYTES_MAX);
	} else {
		code = "404 Not Found";
		n = snprintf(body, HTTP_RESPONSE_BYTES_MAX,
			     "try GET /metrics or GET /status\n");
	}
	if (n < 0)
		n = 0;
	int m = snprintf(c->resp, HTTP_RESPONSE_BYTES_MAX + 256,
			 "HTTP/1.0 %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n"
			 "Connection: close\r\n\r\n%.*s",
			 code, type, n, n, body);
	free(body);
	c->wreq.data = c;
	uv_buf_t b = uv_buf_init(c->resp, (unsigned)m);
	if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_written) != 0)
		hclose(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	(void)suggested;
	struct hconn *c = h->data;
	buf->base = c->req + c->have;
	buf->len = HTTP_REQUEST_BYTES_MAX - 1 - c->have;
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
	(void)buf;
	struct hconn *c = st->data;
	if (n < 0) {
		hclose(c);
		return;
	}
	if (c->answered)
		return;
	c->have += (uint32_t)n;
	c->req[c->have] = '\0';
	if (strstr(c->req, "\r\n\r\n") != NULL || strstr(c->req, "\n\n") != NULL) {
		answer(c);
		return;
	}
	if (c->have >= HTTP_REQUEST_BYTES_MAX - 1) {
		LOG_WARN("http: request head over %u bytes; closing",
			 HTTP_REQUEST_BYTES_MAX);
		hclose(c);
	}
}

static void on_connection(uv_stream_t *server, int status)
{
	struct server *s = server->data;
	if (status != 0)
		return;
	struct hconn *c = calloc(1, sizeof *c);
	if (c == NULL)
		return;
	c->s = s;
	uv_tcp_init(s->loop, &c->tcp);
	c->tcp.data = c;
	c->opened_ms = uv_now(s->loop);
	c->next = s->http_list;
	if (s->http_list != NULL)
		s->http_list->prev = c;
	s->http_list = c;
	s->http_conns++;
	if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 ||
	    s->http_conns > SERVER_HTTP_CONNS_MAX) {
		hclose(c);
		return;
	}
	uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

int http_listen(struct server *s)
{
	if (s->cfg.http_addr[0] == '\0')
		return 0;
	int rc = fconn_listen(s->loop, &s->http_listener, s->cfg.http_addr,
			      on_connection);
	s->http_listener.data = s;
	if (rc != 0) {
		LOG_ERROR("cannot listen for HTTP on %s: %s", s->cfg.http_addr,
			  rc == KEEL_EINVAL ? "bad address" : uv_strerror(rc));
		return rc;
	}
	s->http_listening = true;
	return 0;
}

void http_stop(struct server *s)
{
	if (s->http_listening) {
		s->http_listening = false;
		uv_close((uv_handle_t *)&s->http_listener, NULL);
	}
	for (struct hconn *c = s->http_list; c != NULL; c = c->next)
		hclose(c);
}

void http_sweep(struct server *s)
{
	uint64_t now = uv_now(s->loop);
	for (struct hconn *c = s->http_list; c != NULL; c = c->next)
		if (!c->answered && now - c->opened_ms > FCONN_HELLO_MS_MAX)
			hclose(c);
}
