/*
 * check_parse.c: format detection, keel's native history format (reader and
 * writer). The format is specified in sim/HISTORY.md.
 *
 * Invariants:
 *  1. Every byte of input is read through bounds-checked cursors; nothing
 *     here asserts on input. A bad line gives KEEL_EMALFORMED with its line.
 *  2. A stored op satisfies check_hist.c's invariant 3 and the per-kind
 *     rules of the format (value only where the kind takes one, results
 *     only on ok).
 */
#include "check_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../core/err.h"

#define NATIVE_HEADER "# keel history v1"
#define NATIVE_FIELDS 9

static bool starts_with(const char *p, size_t len, const char *lit)
{
	size_t n = strlen(lit);
	return len >= n && memcmp(p, lit, n) == 0;
}

static bool is_blank(const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != ' ' && p[i] != '\t')
			return false;
	return true;
}

int check_parse(struct check_history *h, const char *buf, size_t len,
		struct check_parse_error *err)
{
	if (err != NULL) {
		err->line = 0;
		err->reason[0] = '\0';
	}
	if (h->op_count != 0)
		return KEEL_EINVAL;
	struct check_lines it = { .p = buf, .end = buf + len };
	const char *line;
	size_t n;
	while (check_next_line(&it, &line, &n)) {
		if (is_blank(line, n))
			continue;
		if (starts_with(line, n, "# keel history")) {
			h->format = CHECK_FORMAT_NATIVE;
			return check_parse_native(h, buf, len, err);
		}
		size_t i = 0;
		while (i < n && (line[i] == ' ' || line[i] == '\t'))
			i++;
		if (line[i] == '{') {
			h->format = CHECK_FORMAT_EDN;
			return check_parse_edn(h, buf, len, err);
		}
		if (memmem(line, n, " - ", 3) != NULL) {
			h->format = CHECK_FORMAT_JEPSEN;
			return check_parse_jepsen(h, buf, len, err);
		}
		return check_perr(err, it.number,
				  "unrecognized format (expected '" NATIVE_HEADER
				  "', an EDN map or a Jepsen log line)");
	}
	return 0; /* empty input: an empty history */
}

/* ---- native reader ---------------------------------------------------------- */

struct field {
	const char *p;
	size_t len;
};

static bool safe_byte(uint8_t c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       c == '.' || c == '_' || c == ':' || c == '/' || c == '+' || c == '=' || c == '-';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes a token into t (id, CHECK_ABSENT for '-'). scratch holds at least
 * f.len bytes. */
static int token_decode(struct check_strtab *t, struct field f, uint8_t *scratch,
			uint32_t *id, struct check_parse_error *err, uint32_t line,
			const char *what)
{
	if (f.len == 1 && f.p[0] == '-') {
		*id = CHECK_ABSENT;
		return 0;
	}
	if (f.len == 0 || f.p[0] != '\'')
		return check_perr(err, line, "%s: expected '-' or a token starting with \"'\"", what);
	size_t n = 0;
	for (size_t i = 1; i < f.len; i++) {
		uint8_t c = (uint8_t)f.p[i];
		if (c == '%') {
			int hi = i + 2 < f.len ? hexval(f.p[i + 1]) : -1;
			int lo = i + 2 < f.len ? hexval(f.p[i + 2]) : -1;
			if (hi < 0 || lo < 0)
				return check_perr(err, line, "%s: bad %%XX escape", what);
			scratch[n++] = (uint8_t)(hi * 16 + lo);
			i += 2;
		} else if (safe_byte(c)) {
			scratch[n++] = c;
		} else {
			return check_perr(err, line, "%s: byte 0x%02x must be written %%XX", what, c);
		}
	}
	int rc = check_strtab_intern(t, scratch, n, id);
	if (rc == KEEL_ETOOBIG)
		return check_perr(err, line, "%s: string too long or too many strings", what);
	return rc;
}

static bool parse_u64(struct field f, uint64_t *out)
{
	if (f.len == 0 || f.len > 20)
		return false;
	uint64_t v = 0;
	for (size_t i = 0; i < f.len; i++) {
		if (f.p[i] < '0' || f.p[i] > '9')
			return false;
		uint64_t d = (uint64_t)(f.p[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

static bool field_is(struct field f, const char *lit)
{
	return f.len == strlen(lit) && memcmp(f.p, lit, f.len) == 0;
}

static int split_fields(const char *line, size_t n, struct field *fs, uint32_t lno,
			struct check_parse_error *err)
{
	size_t count = 0;
	size_t start = 0;
	for (size_t i = 0; i <= n; i++) {
		if (i < n && line[i] != ' ')
			continue;
		if (count == NATIVE_FIELDS)
			return check_perr(err, lno, "more than %d fields", NATIVE_FIELDS);
		if (i == start)
			return check_perr(err, lno, "empty field %zu (fields are separated by one space)",
					  count + 1);
		fs[count].p = line + start;
		fs[count].len = i - start;
		count++;
		start = i + 1;
	}
	if (count != NATIVE_FIELDS)
		return check_perr(err, lno, "%zu fields, expected %d", count, NATIVE_FIELDS);
	return 0;
}

static int parse_kind(struct field f, uint8_t *kind)
{
	for (int k = CHECK_GET; k <= CHECK_APPEND; k++) {
		if (field_is(f, check_kind_name((enum check_kind)k))) {
			*kind = (uint8_t)k;
			return 0;
		}
	}
	return -1;
}

static int parse_result(struct check_history *h, struct check_op *op, struct field f,
			uint8_t *scratch, uint32_t lno, struct check_parse_error *err)
{
	op->result = CHECK_ANY;
	if (op->outcome != CHECK_OK) {
		if (!field_is(f, "-"))
			return check_perr(err, lno, "result must be '-' unless the outcome is ok");
		return 0;
	}
	switch (op->kind) {
	case CHECK_GET:
		return token_decode(&h->vals, f, scratch, &op->result, err, lno, "result");
	case CHECK_CAS:
	case CHECK_DEL:
		if (field_is(f, "true"))
			op->result = 1;
		else if (field_is(f, "false"))
			op->result = 0;
		else
			return check_perr(err, lno, "result of %s must be true or false",
					  check_kind_name(op->kind));
		return 0;
	default:
		if (!field_is(f, "-"))
			return check_perr(err, lno, "result of %s must be '-'",
					  check_kind_name(op->kind));
		return 0;
	}
}

static int parse_native_line(struct check_history *h, const char *line, size_t n,
			     uint32_t lno, uint8_t *scratch, struct check_parse_error *err)
{
	struct field f[NATIVE_FIELDS];
	int rc = split_fields(line, n, f, lno, err);
	if (rc != 0)
		return rc;
	struct check_op op = { .line = lno, .result = CHECK_ANY };
	if (!parse_u64(f[0], &op.client))
		return check_perr(err, lno, "client: expected a decimal integer");
	if (parse_kind(f[1], &op.kind) != 0)
		return check_perr(err, lno, "op: expected get, put, del, cas or append");
	if (field_is(f[2], "-"))
		return check_perr(err, lno, "key: must not be '-'");
	rc = token_decode(&h->keys, f[2], scratch, &op.key, err, lno, "key");
	if (rc == 0)
		rc = token_decode(&h->vals, f[3], scratch, &op.value, err, lno, "value");
	if (rc == 0)
		rc = token_decode(&h->vals, f[4], scratch, &op.expected, err, lno, "expected");
	if (rc != 0)
		return rc;
	bool takes_value = op.kind == CHECK_PUT || op.kind == CHECK_CAS || op.kind == CHECK_APPEND;
	if (takes_value && field_is(f[3], "-"))
		return check_perr(err, lno, "value: %s needs a value", check_kind_name(op.kind));
	if (!takes_value && !field_is(f[3], "-"))
		return check_perr(err, lno, "value: must be '-' for %s", check_kind_name(op.kind));
	if (op.kind != CHECK_CAS && !field_is(f[4], "-"))
		return check_perr(err, lno, "expected: must be '-' except for cas");
	if (field_is(f[7], "ok"))
		op.outcome = CHECK_OK;
	else if (field_is(f[7], "fail"))
		op.outcome = CHECK_FAIL;
	else if (field_is(f[7], "info"))
		op.outcome = CHECK_INFO;
	else
		return check_perr(err, lno, "outcome: expected ok, fail or info");
	if (!parse_u64(f[5], &op.invoke_ns))
		return check_perr(err, lno, "invoke_ns: expected a decimal integer");
	if (op.outcome == CHECK_INFO) {
		if (!field_is(f[6], "-"))
			return check_perr(err, lno, "complete_ns: must be '-' when the outcome is info");
		op.complete_ns = CHECK_TIME_INF;
	} else {
		if (!parse_u64(f[6], &op.complete_ns) || op.complete_ns == CHECK_TIME_INF)
			return check_perr(err, lno, "complete_ns: expected a decimal integer");
		if (op.complete_ns < op.invoke_ns)
			return check_perr(err, lno, "complete_ns is before invoke_ns");
	}
	rc = parse_result(h, &op, f[8], scratch, lno, err);
	if (rc != 0)
		return rc;
	rc = check_history_push(h, &op);
	if (rc == KEEL_ETOOBIG)
		return check_perr(err, lno, "more than %u operations", CHECK_OPS_MAX);
	return rc;
}

int check_parse_native(struct check_history *h, const char *buf, size_t len,
		       struct check_parse_error *err)
{
	struct check_lines it = { .p = buf, .end = buf + len };
	const char *line;
	size_t n;
	bool header = false;
	uint8_t *scratch = NULL;
	size_t scratch_len = 0;
	int rc = 0;
	while (rc == 0 && check_next_line(&it, &line, &n)) {
		if (n > CHECK_LINE_BYTES_MAX) {
			rc = check_perr(err, it.number, "line longer than %u bytes",
					CHECK_LINE_BYTES_MAX);
			break;
		}
		if (!header) {
			if (is_blank(line, n))
				continue;
			if (n != strlen(NATIVE_HEADER) || memcmp(line, NATIVE_HEADER, n) != 0)
				rc = check_perr(err, it.number, "expected '" NATIVE_HEADER
						"' (unsupported version?)");
			header = true;
			continue;
		}
		if (n == 0 || line[0] == '#')
			continue;
		if (n > scratch_len) {
			uint8_t *s = realloc(scratch, n);
			if (s == NULL) {
				rc = KEEL_ENOMEM;
				break;
			}
			scratch = s;
			scratch_len = n;
		}
		rc = parse_native_line(h, line, n, it.number, scratch, err);
	}
	free(scratch);
	return rc;
}

/* ---- native writer ---------------------------------------------------------- */

size_t check_token_encode(char *out, size_t cap, struct check_str s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = 0;
#define PUT(c)                          \
	do {                            \
		if (n + 1 < cap)        \
			out[n] = (c);   \
		n++;                    \
	} while (0)
	if (s.ptr == NULL) {
		PUT('-');
	} else {
		const uint8_t *b = s.ptr;
		PUT('\'');
		for (size_t i = 0; i < s.len; i++) {
			if (safe_byte(b[i])) {
				PUT((char)b[i]);
			} else {
				PUT('%');
				PUT(hex[b[i] >> 4]);
				PUT(hex[b[i] & 15]);
			}
		}
	}
#undef PUT
	if (cap > 0)
		out[n < cap ? n : cap - 1] = '\0';
	return n;
}

static int write_token(FILE *f, const struct check_strtab *t, uint32_t id)
{
	struct check_str s = { 0 };
	if (id != CHECK_ABSENT)
		s.ptr = check_str_get(t, id, &s.len);
	char small[256];
	size_t n = check_token_encode(small, sizeof small, s);
	if (n < sizeof small)
		return fputs(small, f) < 0 ? -1 : 0;
	char *big = malloc(n + 1);
	if (big == NULL)
		return -1;
	check_token_encode(big, n + 1, s);
	int rc = fputs(big, f) < 0 ? -1 : 0;
	free(big);
	return rc;
}

static int write_op(FILE *f, const struct check_history *h, const struct check_op *op)
{
	static const char *const outcomes[] = { "ok", "fail", "info" };
	bool takes_value = op->kind == CHECK_PUT || op->kind == CHECK_CAS ||
			   op->kind == CHECK_APPEND;
	int rc = 0;
	fprintf(f, "%llu %s ", (unsigned long long)op->client,
		check_kind_name((enum check_kind)op->kind));
	rc |= write_token(f, &h->keys, op->key);
	fputc(' ', f);
	if (takes_value)
		rc |= write_token(f, &h->vals, op->value);
	else
		fputc('-', f);
	fputc(' ', f);
	if (op->kind == CHECK_CAS)
		rc |= write_token(f, &h->vals, op->expected);
	else
		fputc('-', f);
	fprintf(f, " %llu ", (unsigned long long)op->invoke_ns);
	if (op->outcome == CHECK_INFO)
		fputc('-', f);
	else
		fprintf(f, "%llu", (unsigned long long)op->complete_ns);
	fprintf(f, " %s ", outcomes[op->outcome]);
	if (op->outcome != CHECK_OK || op->result == CHECK_ANY) {
		/* A get whose result is unknown cannot be written as ok. */
		fputc('-', f);
	} else if (op->kind == CHECK_GET) {
		rc |= write_token(f, &h->vals, op->result);
	} else if (op->kind == CHECK_CAS || op->kind == CHECK_DEL) {
		fputs(op->result ? "true" : "false", f);
	} else {
		fputc('-', f);
	}
	return fputc('\n', f) == EOF ? -1 : rc;
}

int check_write_native(const struct check_history *h, FILE *f)
{
	if (fputs(NATIVE_HEADER "\n", f) < 0)
		return -errno;
	for (uint32_t i = 0; i < h->op_count; i++) {
		const struct check_op *op = &h->ops[i];
		/* An ok get with an unknown result says nothing: write it as fail. */
		struct check_op o = *op;
		if (o.outcome == CHECK_OK && o.kind == CHECK_GET && o.result == CHECK_ANY)
			o.outcome = CHECK_FAIL;
		if (write_op(f, h, &o) != 0)
			return errno ? -errno : -EIO;
	}
	return fflush(f) == 0 ? 0 : -errno;
}
