/* probe.c: send bad input to a node and see it close the connection. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../core/codec.h"
#include "probe.h"

static int dial(const char *addr)
{
	char host[64];
	const char *colon = strrchr(addr, ':');
	if (colon == NULL || (size_t)(colon - addr) >= sizeof host)
		return -1;
	memcpy(host, addr, (size_t)(colon - addr));
	host[colon - addr] = '\0';
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons((uint16_t)atoi(colon + 1)) };
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		return -1;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static int hello(uint8_t *buf, size_t cap, uint32_t role, uint64_t cluster)
{
	struct codec_hello h = { .protocol_version = CODEC_VERSION,
				 .cluster_id = cluster,
				 .node_id = role == HELLO_PEER ? 99 : 0,
				 .role = role };
	return codec_hello_encode(&h, buf, cap);
}

/* 1 when the peer closed (EOF or reset) within wait_ms, else 0. */
static int closed_by_peer(int fd, int wait_ms)
{
	char buf[4096];
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int n = poll(&p, 1, wait_ms);
		if (n <= 0)
			return 0;
		ssize_t r = recv(fd, buf, sizeof buf, 0);
		if (r == 0 || (r < 0 && errno == ECONNRESET))
			return 1;
		if (r < 0)
			return 0;
	}
}

/* "get:/PATH": an HTTP GET; prints the response; 0 on "200 OK". */
static int http_get(int fd, const char *path)
{
	char req[256];
	int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\n\r\n", path);
	if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n)
		return 3;
	char buf[65536];
	size_t have = 0;
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, PROBE_WAIT_MS) <= 0)
			break;
		ssize_t r = recv(fd, buf + have, sizeof buf - 1 - have, 0);
		if (r <= 0)
			break;
		have += (size_t)r;
		if (have == sizeof buf - 1)
			break;
	}
	buf[have] = '\0';
	fputs(buf, stdout);
	return strncmp(buf, "HTTP/1.0 200 OK", 15) == 0 ? 0 : 1;
}

/* "redis:CMD;CMD;...": inline Redis commands, pipelined, then QUIT; prints
 * the raw replies with CRLF shown as "|" so a test can compare one line. */
static int redis_cmds(int fd, const char *cmds)
{
	char req[4096];
	size_t n = 0;
	for (const char *p = cmds; *p != '\0' && n + 8 < sizeof req; p++) {
		if (*p == ';') {
			req[n++] = '\r';
			req[n++] = '\n';
		} else {
			req[n++] = *p;
		}
	}
	static const char quit[] = "\r\nQUIT\r\n";
	memcpy(req + n, quit, sizeof quit - 1);
	n += sizeof quit - 1;
	if (send(fd, req, n, MSG_NOSIGNAL) != (ssize_t)n)
		return 3;
	char buf[65536];
	size_t have = 0;
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, PROBE_WAIT_MS) <= 0)
			break;
		ssize_t r = recv(fd, buf + have, sizeof buf - 1 - have, 0);
		if (r <= 0)
			break;
		have += (size_t)r;
		if (have == sizeof buf - 1)
			break;
	}
	for (size_t i = 0; i < have; i++) {
		if (buf[i] == '\r' && i + 1 < have && buf[i + 1] == '\n') {
			putchar('|');
			i++;
		} else {
			putchar(buf[i]);
		}
	}
	putchar('\n');
	return 0;
}

/* "hold:N:MS": N client connections that say hello and then nothing, held
 * for MS milliseconds (a flood of idle clients); prints how many connected. */
static int hold_clients(const char *addr, const char *spec)
{
	char *end = NULL;
	long n = strtol(spec, &end, 10);
	if (end == spec || *end != ':' || n < 1 || n > 4096)
		return 2;
	long ms = strtol(end + 1, &end, 10);
	if (*end != '\0' || ms < 0 || ms > 60000)
		return 2;
	int *fds = calloc((size_t)n, sizeof *fds);
	if (fds == NULL)
		return 3;
	uint8_t buf[256];
	int hb = hello(buf, sizeof buf, HELLO_CLIENT, 0);
	long held = 0;
	for (long i = 0; i < n; i++) {
		fds[i] = dial(addr);
		if (fds[i] >= 0 && hb > 0)
			(void)send(fds[i], buf, (size_t)hb, MSG_NOSIGNAL);
		held += fds[i] >= 0;
	}
	printf("held %ld of %ld\n", held, n);
	fflush(stdout);
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
	for (long i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(fds);
	return 0;
}

int probe_run(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: keelctl probe HOST:PORT garbage|oversized|truncated|bad-checksum|wrong-cluster-client|wrong-cluster-peer|get:/PATH\n");
		return 2;
	}
	int fd = dial(argv[0]);
	if (fd < 0) {
		fprintf(stderr, "keelctl: probe: cannot connect to %s\n", argv[0]);
		return 3;
	}
	const char *kind = argv[1];
	if (strncmp(kind, "hold:", 5) == 0) {
		close(fd);
		return hold_clients(argv[0], kind + 5);
	}
	if (strncmp(kind, "redis:", 6) == 0) {
		int rc = redis_cmds(fd, kind + 6);
		close(fd);
		return rc;
	}
	if (strncmp(kind, "get:", 4) == 0) {
		int rc = http_get(fd, kind + 4);
		close(fd);
		return rc;
	}
	uint8_t buf[256];
	size_t n = 0;
	bool half_close = false;
	if (strcmp(kind, "garbage") == 0) {
		memcpy(buf, "\x00\x01garbage that is not a keel frame\r\n", 36);
		n = 36;
	} else if (strcmp(kind, "oversized") == 0) {
		uint32_t len = KEEL_FRAME_BYTES_MAX + 1;
		uint8_t h[CODEC_HEADER_BYTES] = {
			0x4b, 0x45, 0x45, 0x4c, CODEC_VERSION, FRAME_HELLO, 0, 0,
			(uint8_t)(len >> 24), (uint8_t)(len >> 16),
			(uint8_t)(len >> 8), (uint8_t)len,
		};
		memcpy(buf, h, sizeof h);
		n = sizeof h;
	} else if (strcmp(kind, "truncated") == 0) {
		int m = hello(buf, sizeof buf, HELLO_CLIENT, 0);
		n = (size_t)m / 2;
		half_close = true;
	} else if (strcmp(kind, "bad-checksum") == 0) {
		int m = hello(buf, sizeof buf, HELLO_CLIENT, 0);
		n = (size_t)m;
		buf[CODEC_HEADER_BYTES] ^= 0x40;
	} else if (strcmp(kind, "wrong-cluster-client") == 0) {
		n = (size_t)hello(buf, sizeof buf, HELLO_CLIENT, 0x5eed);
	} else if (strcmp(kind, "wrong-cluster-peer") == 0) {
		n = (size_t)hello(buf, sizeof buf, HELLO_PEER, 0x5eed);
	} else if (strcmp(kind, "big-request") == 0 ||
		   strcmp(kind, "big-hello") == 0) {
		/* big-request: a valid hello, then a client request header
		 * announcing 4 MiB (under KEEL_FRAME_BYTES_MAX, far over any
		 * client request) and the first 512 KiB of its body.
		 * big-hello: no hello; a hello header announcing 4 MiB. */
		bool req = strcmp(kind, "big-request") == 0;
		n = req ? (size_t)hello(buf, sizeof buf, HELLO_CLIENT, 0) : 0;
		if (n > 0 && send(fd, buf, n, MSG_NOSIGNAL) != (ssize_t)n) {
			close(fd);
			return 3;
		}
		uint32_t len = 4u * 1024u * 1024u;
		uint8_t h[CODEC_HEADER_BYTES] = {
			0x4b, 0x45, 0x45, 0x4c, CODEC_VERSION,
			req ? FRAME_CLIENT_REQUEST : FRAME_HELLO,
			0, 0, (uint8_t)(len >> 24), (uint8_t)(len >> 16),
			(uint8_t)(len >> 8), (uint8_t)len,
		};
		memcpy(buf, h, sizeof h);
		n = sizeof h;
		if (send(fd, buf, n, MSG_NOSIGNAL) != (ssize_t)n) {
			close(fd);
			return 3;
		}
		static uint8_t body[512 * 1024];
		size_t sent = 0;
		while (sent < sizeof body) {
			ssize_t w = send(fd, body + sent, sizeof body - sent,
					 MSG_NOSIGNAL);
			if (w <= 0)
				break; /* closed by the node: what we expect */
			sent += (size_t)w;
		}
		n = 0;
	} else if (strcmp(kind, "silent") == 0) {
		n = 0; /* say nothing: the node must close after its hello deadline */
	} else {
		fprintf(stderr, "keelctl: probe: unknown kind %s\n", kind);
		close(fd);
		return 2;
	}
	if (n > 0 && send(fd, buf, n, MSG_NOSIGNAL) != (ssize_t)n) {
		close(fd);
		return 3;
	}
	if (half_close)
		shutdown(fd, SHUT_WR);
	int closed = closed_by_peer(fd, strcmp(kind, "silent") == 0 ?
						PROBE_SILENT_WAIT_MS : PROBE_WAIT_MS);
	close(fd);
	printf("probe %s %s: %s\n", argv[0], kind,
	       closed ? "connection closed by the node" : "connection still open");
	return closed ? 0 : 1;
}
