/* resp.c: RESP2 parsing and replies (see resp.h). */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "../core/err.h"
#include "resp.h"

static const uint8_t *find_crlf(const uint8_t *p, const uint8_t *end)
{
	for (; p + 1 < end; p++)
		if (p[0] == '\r' && p[1] == '\n')
			return p;
	return NULL;
}

/* Parse a decimal after a type byte up to CRLF. 1 ok, 0 need more, <0 bad. */
static int parse_len(const uint8_t **pp, const uint8_t *end, int64_t *out)
{
	const uint8_t *p = *pp;
	const uint8_t *crlf = find_crlf(p, end);
	if (crlf == NULL)
		return end - p > 32 ? KEEL_EMALFORMED : 0;
	int64_t v = 0;
	bool neg = false;
	if (p < crlf && *p == '-') {
		neg = true;
		p++;
	}
	if (p == crlf || crlf - p > 18)
		return KEEL_EMALFORMED;
	for (; p < crlf; p++) {
		if (*p < '0' || *p > '9')
			return KEEL_EMALFORMED;
		v = v * 10 + (*p - '0');
	}
	*out = neg ? -v : v;
	*pp = crlf + 2;
	return 1;
}

static int parse_inline(const uint8_t *buf, size_t n, struct resp_request *req)
{
	const uint8_t *end = buf + n;
	const uint8_t *nl = memchr(buf, '\n', n);
	if (nl == NULL)
		return n > RESP_REQUEST_BYTES_MAX ? KEEL_ETOOBIG : 0;
	const uint8_t *line_end = nl > buf && nl[-1] == '\r' ? nl - 1 : nl;
	const uint8_t *p = buf;
	req->argc = 0;
	while (p < line_end) {
		while (p < line_end && (*p == ' ' || *p == '\t'))
			p++;
		if (p == line_end)
			break;
		const uint8_t *s = p;
		while (p < line_end && *p != ' ' && *p != '\t')
			p++;
		if (req->argc == RESP_ARGS_MAX)
			return KEEL_ETOOBIG;
		req->argv[req->argc] = s;
		req->argl[req->argc] = (uint32_t)(p - s);
		req->argc++;
	}
	(void)end;
	return (int)(nl + 1 - buf);
}

int resp_parse(const uint8_t *buf, size_t n, struct resp_request *req)
{
	if (n == 0)
		return 0;
	if (buf[0] != '*')
		return parse_inline(buf, n, req);
	const uint8_t *p = buf + 1;
	const uint8_t *end = buf + n;
	int64_t count;
	int rc = parse_len(&p, end, &count);
	if (rc <= 0)
		return rc;
	if (count < 1 || count > (int64_t)RESP_ARGS_MAX)
		return count < 1 ? KEEL_EMALFORMED : KEEL_ETOOBIG;
	req->argc = 0;
	for (int64_t i = 0; i < count; i++) {
		if (p >= end)
			return n > RESP_REQUEST_BYTES_MAX ? KEEL_ETOOBIG : 0;
		if (*p != '$')
			return KEEL_EMALFORMED;
		p++;
		int64_t len;
		rc = parse_len(&p, end, &len);
		if (rc < 0)
			return rc;
		if (rc == 0)
			return n >= RESP_REQUEST_BYTES_MAX ? KEEL_ETOOBIG : 0;
		if (len < 0)
			return KEEL_EMALFORMED;
		if (len > (int64_t)KEEL_VALUE_BYTES_MAX)
			return KEEL_ETOOBIG;
		if (end - p < len + 2)
			return n >= RESP_REQUEST_BYTES_MAX ? KEEL_ETOOBIG : 0;
		if (p[len] != '\r' || p[len + 1] != '\n')
			return KEEL_EMALFORMED;
		req->argv[req->argc] = p;
		req->argl[req->argc] = (uint32_t)len;
		req->argc++;
		p += len + 2;
	}
	return (int)(p - buf);
}

int resp_arg_is(const struct resp_request *req, uint32_t i, const char *name)
{
	size_t n = strlen(name);
	return i < req->argc && req->argl[i] == n &&
	       strncasecmp((const char *)req->argv[i], name, n) == 0;
}

static size_t put(uint8_t *out, size_t cap, const char *fmt_prefix,
		  const char *s)
{
	int n = snprintf((char *)out, cap, "%s%s\r\n", fmt_prefix, s);
	return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

size_t resp_simple(uint8_t *out, size_t cap, const char *s)
{
	return put(out, cap, "+", s);
}

size_t resp_error(uint8_t *out, size_t cap, const char *s)
{
	return put(out, cap, "-", s);
}

size_t resp_integer(uint8_t *out, size_t cap, int64_t v)
{
	int n = snprintf((char *)out, cap, ":%lld\r\n", (long long)v);
	return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

size_t resp_bulk(uint8_t *out, size_t cap, const uint8_t *p, uint32_t len)
{
	int n = snprintf((char *)out, cap, "$%u\r\n", len);
	if (n < 0 || (size_t)n + len + 2 > cap)
		return 0;
	if (len > 0)
		memcpy(out + n, p, len);
	out[(size_t)n + len] = '\r';
	out[(size_t)n + len + 1] = '\n';
	return (size_t)n + len + 2;
}

size_t resp_nil(uint8_t *out, size_t cap)
{
	return put(out, cap, "$-1", "");
}

size_t resp_empty_array(uint8_t *out, size_t cap)
{
	return put(out, cap, "*0", "");
}
