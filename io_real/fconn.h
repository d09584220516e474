/*
 * fconn.h: one framed TCP connection on libuv (core/codec frames).
 *
 * Reads go through a streaming frame decoder; each complete, checked frame is
 * handed to on_frame. A decoder error (bad magic, checksum, oversized frame,
 * ...) or an on_frame failure closes the connection with a reason the owner
 * sees in on_close. Writes are whole frames in buffers the connection owns
 * once handed over; the bytes queued in the kernel-bound write queue are
 * bounded by queue_bytes_max (a write past it is refused with KEEL_EBUSY, so a
 * dead or slow peer never grows memory), and, for connections that share a
 * struct fconn_budget (a node's client connections), by the budget's
 * queued_bytes_max for all of them together (refused the same way).
 *
 * Invariants:
 *   1. queued_bytes is the sum of the sizes of writes not yet completed;
 *   2. after fconn_close, on_frame is never called again and on_close is
 *      called exactly once, after every write callback; the owner frees the
 *      struct in on_close (or later), never before;
 *   3. a budget's queued_bytes is the sum of queued_bytes of the
 *      connections that point at it.
 */
#ifndef KEEL_FCONN_H
#define KEEL_FCONN_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "../core/codec.h"

#define FCONN_READ_BYTES (64u * 1024u)
#define FCONN_ADDR_BYTES 64u
#define FCONN_HELLO_MS_MAX 5000u /* an accepted peer must say hello by then */

struct fconn;

/* Queued write bytes shared by several connections (invariant 3). */
struct fconn_budget {
	uint64_t queued_bytes;
	uint64_t queued_bytes_max;
};

/* Return 0 to go on, or a negative code to close the connection. */
typedef int (*fconn_frame_fn)(struct fconn *c, uint32_t type,
			      const uint8_t *payload, uint32_t payload_bytes);
/* Raw mode (no framing): the bytes as they come. Return 0 or a negative
 * code to close. */
typedef int (*fconn_bytes_fn)(struct fconn *c, const uint8_t *p, size_t n);
/* The handle is closed; reason is 0 (EOF or local close) or an error. */
typedef void (*fconn_close_fn)(struct fconn *c, int reason);
/* Outbound only: status 0 when connected (reads have started). On failure
 * on_close follows. */
typedef void (*fconn_connect_fn)(struct fconn *c, int status);

struct fconn {
	uv_tcp_t tcp;
	uv_connect_t connect_req;
	struct codec_stream stream;
	void *owner;
	uint64_t tag; /* owner's use (peer id, connection id) */
	fconn_frame_fn on_frame;
	fconn_bytes_fn on_bytes; /* set: raw mode, on_frame unused */
	fconn_close_fn on_close;
	fconn_connect_fn on_connect;
	char addr[FCONN_ADDR_BYTES]; /* remote "ip:port" for logs */
	uint64_t queue_bytes_max;
	uint64_t queued_bytes;
	struct fconn_budget *budget; /* NULL: none; set before the first write */
	/* Largest frame payload this connection takes (0: KEEL_FRAME_BYTES_MAX);
	 * a header announcing more closes it with KEEL_ETOOBIG before the
	 * body is buffered. */
	uint32_t frame_bytes_max;
	uint64_t bytes_in;
	uint64_t opened_ms; /* uv_now() when accepted or connected */
	int close_reason;
	bool closing;
	bool reading;
	struct fconn *prev, *next; /* owner's list */
	uint8_t rbuf[FCONN_READ_BYTES];
};

struct fconn_wbuf {
	uv_write_t req;
	struct fconn *conn;
	size_t bytes;
	uint8_t data[];
};

/* Accept a pending connection from server into c (zeroed by the caller with
 * owner/callbacks set). Returns 0 or a -errno. On failure c is not open. */
int fconn_accept(uv_stream_t *server, struct fconn *c);

/* Connect c to addr. Returns 0 (the result comes in on_connect / on_close)
 * or a -errno (nothing is open). */
int fconn_connect(uv_loop_t *loop, struct fconn *c,
		  const struct sockaddr_in *addr);

/* A write buffer for n bytes, or NULL. */
struct fconn_wbuf *fconn_wbuf_new(size_t n);

/* Whether n more bytes fit c's queue and its budget. */
bool fconn_fits(const struct fconn *c, uint64_t n);

/* Queue wb (n bytes of it) on c; c owns wb from here, even on failure.
 * The budget counts only what is left to queue after an immediate write.
 * Returns 0, KEEL_EBUSY (queue or budget full, dropped; when part of wb
 * already went out, the connection is being closed), KEEL_ESHUTDOWN
 * (closing) or a -errno (the connection is being closed). */
int fconn_write(struct fconn *c, struct fconn_wbuf *wb);

/* Stop (paused) or resume reading: back-pressure for a peer that sends
 * faster than its answers are consumed. */
void fconn_pause(struct fconn *c, bool paused);

/* Start closing (idempotent). reason is passed to on_close. */
void fconn_close(struct fconn *c, int reason);

/* Parse "a.b.c.d:port" into sa. Returns 0 or KEEL_EINVAL. */
int fconn_addr_parse(const char *addr, struct sockaddr_in *sa);

/* Bind and listen on addr. Returns 0 or a -errno / KEEL_EINVAL. */
int fconn_listen(uv_loop_t *loop, uv_tcp_t *server, const char *addr,
		 uv_connection_cb cb);

#endif
