/*
 * resp.h: the Redis protocol (RESP2) request parser and reply writers for
 * keel's optional --redis port (DESIGN §8). Pure functions over buffers.
 *
 * A request is an array of bulk strings ("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n")
 * or an inline command ("GET k\r\n"). Limits: RESP_ARGS_MAX arguments,
 * each at most KEEL_VALUE_BYTES_MAX bytes, a request at most
 * RESP_REQUEST_BYTES_MAX bytes; anything over a limit or malformed is an
 * error (the connection answers -ERR and closes).
 */
#ifndef KEEL_NODE_RESP_H
#define KEEL_NODE_RESP_H

#include <stddef.h>
#include <stdint.h>

#include "../core/msg.h"

#define RESP_ARGS_MAX 8u
#define RESP_REQUEST_BYTES_MAX (KEEL_VALUE_BYTES_MAX + 4096u)

struct resp_request {
	uint32_t argc;
	const uint8_t *argv[RESP_ARGS_MAX]; /* point into the input buffer */
	uint32_t argl[RESP_ARGS_MAX];
};

/* Parse one request from buf[0..n). Returns bytes consumed (> 0) with *req
 * filled, 0 when more bytes are needed, or KEEL_EMALFORMED / KEEL_ETOOBIG. */
int resp_parse(const uint8_t *buf, size_t n, struct resp_request *req);

/* Case-insensitive compare of argument i with a command name. */
int resp_arg_is(const struct resp_request *req, uint32_t i, const char *name);

/* Reply writers: return bytes written into out[0..cap), or 0 if it does not
 * fit. */
size_t resp_simple(uint8_t *out, size_t cap, const char *s);   /* +s */
size_t resp_error(uint8_t *out, size_t cap, const char *s);    /* -s */
size_t resp_integer(uint8_t *out, size_t cap, int64_t v);      /* :v */
size_t resp_bulk(uint8_t *out, size_t cap, const uint8_t *p, uint32_t n);
size_t resp_nil(uint8_t *out, size_t cap);                     /* $-1 */
size_t resp_empty_array(uint8_t *out, size_t cap);             /* *0 */

#endif
