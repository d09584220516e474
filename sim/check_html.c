/*
 * check_html.c: one self-contained HTML page (no scripts, no network) that
 * draws an illegal key's operations: one row per client, a bar per op on a
 * time axis, the longest linearizable prefix found numbered in green, the
 * ops that cannot be placed after it in red, indeterminate ops hatched to
 * the right edge, failed ops grey. Hovering a bar shows its details; a
 * table below lists the prefix with the state after each step.
 *
 * The axis is ordinal (distinct timestamps in order), so short ops stay
 * visible next to long ones; hover shows the real times.
 *
 * Invariants:
 *  1. Every string from the history goes through html_str (escaped,
 *     non-printable bytes as \xNN, length capped), never raw.
 *  2. Writes only to the file it opens; returns -errno on failure.
 */
#include "check_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define LABEL_CHARS_MAX 24    /* a value inside a bar */
#define TOOLTIP_CHARS_MAX 400 /* a value in a tooltip or the table */
#define ROW_PX 30
#define LEFT_PX 90
#define STEP_PX 18            /* per distinct timestamp */
#define WIDTH_PX_MIN 900

enum mark { MARK_OTHER, MARK_PREFIX, MARK_STUCK, MARK_OVER };

static void html_bytes(FILE *f, const uint8_t *p, size_t len, size_t max)
{
	for (size_t i = 0; i < len && i < max; i++) {
		uint8_t c = p[i];
		if (c == '<')
			fputs("&lt;", f);
		else if (c == '>')
			fputs("&gt;", f);
		else if (c == '&')
			fputs("&amp;", f);
		else if (c == '"')
			fputs("&quot;", f);
		else if (c < 0x20 || c >= 0x7f)
			fprintf(f, "\\x%02x", c);
		else
			fputc(c, f);
	}
	if (len > max)
		fputs("&hellip;", f);
}

/* A value: "absent", or the string quoted. */
static void html_val(FILE *f, const struct check_strtab *t, uint32_t id, size_t max)
{
	if (id == CHECK_ABSENT) {
		fputs("absent", f);
		return;
	}
	size_t len;
	const uint8_t *p = check_str_get(t, id, &len);
	fputc('\'', f);
	html_bytes(f, p, len, max);
	fputc('\'', f);
}

/* "put 'x'", "cas 'a'->'b'", "get -> 'v'" ... */
static void op_text(FILE *f, const struct check_history *h, const struct check_op *op, size_t max)
{
	fputs(check_kind_name((enum check_kind)op->kind), f);
	if (op->kind == CHECK_CAS) {
		fputc(' ', f);
		html_val(f, &h->vals, op->expected, max);
		fputs("&rarr;", f);
	} else if (op->kind != CHECK_GET && op->kind != CHECK_DEL) {
		fputc(' ', f);
	}
	if (op->kind == CHECK_PUT || op->kind == CHECK_CAS || op->kind == CHECK_APPEND)
		html_val(f, &h->vals, op->value, max);
	if (op->outcome != CHECK_OK || op->result == CHECK_ANY)
		return;
	if (op->kind == CHECK_GET) {
		fputs(" = ", f);
		html_val(f, &h->vals, op->result, max);
	} else if (op->kind == CHECK_CAS || op->kind == CHECK_DEL) {
		fputs(op->result ? " = true" : " = false", f);
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a;
	uint64_t y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Position of t among the sorted distinct times. */
static uint32_t ordinal(const uint64_t *times, uint32_t count, uint64_t t)
{
	uint32_t lo = 0, hi = count;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (times[mid] < t)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static const char *const page_head =
	"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>keelcheck: %s</title>\n"
	"<style>\n"
	"body{font:14px system-ui,sans-serif;margin:20px;color:#222}\n"
	"h1{font-size:18px} .k{font-family:monospace;background:#eee;padding:1px 4px}\n"
	".legend span{display:inline-block;padding:2px 8px;margin-right:8px;border-radius:3px}\n"
	"svg text{font:11px monospace;pointer-events:none}\n"
	"rect.op{stroke:#333;stroke-width:1} rect.op:hover{stroke-width:3;stroke:#000}\n"
	".prefix{fill:#9be29b} .stuck{fill:#f28b82} .over{fill:#f9ab4a} .other{fill:#c6d4ee} .fail{fill:#e4e4e4}\n"
	".info{fill:url(#hatch)} table{border-collapse:collapse;margin-top:12px}\n"
	"td,th{border:1px solid #ccc;padding:3px 8px;font-family:monospace;text-align:left}\n"
	".scroll{overflow-x:auto;border:1px solid #ddd}\n"
	"</style></head><body>\n";

/* The proof without search: which op cannot see its value, and why. */
static void write_stale(FILE *f, const struct check_history *h, const struct check_result *res)
{
	const struct check_op *r = &h->ops[res->stale_read];
	fprintf(f, "<p><b>Proven without search:</b> client %llu's <span class=\"k\">",
		(unsigned long long)r->client);
	op_text(f, h, r, TOOLTIP_CHARS_MAX);
	if (res->stale_overwrite == UINT32_MAX) {
		fprintf(f, "</span> (input line %u, red) needs a value that no operation on "
			   "this key could have produced.</p>\n", r->line);
		return;
	}
	fprintf(f, "</span> (input line %u, red) needs a value, but every operation that "
		   "could have produced it (and the initial value, if it is the one) was "
		   "overwritten before this operation began", r->line);
	{
		const struct check_op *x = &h->ops[res->stale_overwrite];
		fprintf(f, ": the latest one by client %llu's <span class=\"k\">",
			(unsigned long long)x->client);
		op_text(f, h, x, TOOLTIP_CHARS_MAX);
		fprintf(f, "</span> (input line %u, orange), which completed before it began", x->line);
	}
	fputs(".</p>\n", f);
}

static void write_summary(FILE *f, const struct check_history *h, const struct check_result *res,
			  const char *title)
{
	size_t klen;
	const uint8_t *key = check_str_get(&h->keys, res->key, &klen);
	fputs("<h1>keelcheck: <span class=\"k\">", f);
	html_bytes(f, (const uint8_t *)title, strlen(title), 200);
	fputs("</span> is not linearizable</h1>\n<p>Failing key <span class=\"k\" data-key=\"", f);
	html_bytes(f, key, klen, TOOLTIP_CHARS_MAX);
	fputs("\">'", f);
	html_bytes(f, key, klen, TOOLTIP_CHARS_MAX);
	fprintf(f, "'</span>, model %s, %u operations on this key.</p>\n",
		check_model_name(res->model), res->key_op_count);
	if (!res->stale) {
		fprintf(f, "<p>The longest linearizable prefix found has %u operations (green, "
			   "numbered in order); after it the value is <span class=\"k\">",
			res->prefix_count);
		html_val(f, &h->vals, res->prefix_state, TOOLTIP_CHARS_MAX);
		fprintf(f, "</span> and %u operation(s) that had to come next cannot be placed "
			   "(red).</p>\n", res->stuck_count);
	}
	if (res->stale)
		write_stale(f, h, res);
	fputs("<p class=\"legend\"><span class=\"prefix\" style=\"background:#9be29b\">in the "
	      "prefix</span><span style=\"background:#f28b82\">cannot be placed</span>"
	      "<span style=\"background:#f9ab4a\">overwrote its value</span>"
	      "<span style=\"background:#c6d4ee\">not reached</span><span style=\"background:"
	      "#e4e4e4\">failed (no effect)</span><span style=\"background:#f7d9a8\">"
	      "indeterminate (bar runs to the end)</span> Hover a bar for details. "
	      "Axis: distinct event times in order.</p>\n", f);
}

static void write_bar(FILE *f, const struct check_history *h, uint32_t i, enum mark m,
		      uint32_t order, int row, uint32_t x0, uint32_t x1)
{
	const struct check_op *op = &h->ops[i];
	const char *cls = m == MARK_PREFIX ? "prefix" : m == MARK_STUCK ? "stuck"
			: m == MARK_OVER ? "over"
			: op->outcome == CHECK_FAIL ? "fail" : op->outcome == CHECK_INFO ? "info" : "other";
	int y = row * ROW_PX + 24;
	fprintf(f, "<rect class=\"op %s\" x=\"%u\" y=\"%d\" width=\"%u\" height=\"%d\" rx=\"3\">"
		   "<title>", cls, x0, y, x1 > x0 ? x1 - x0 : 4, ROW_PX - 8);
	op_text(f, h, op, TOOLTIP_CHARS_MAX);
	fprintf(f, "\nclient %llu, outcome %s, invoke %llu, complete ",
		(unsigned long long)op->client,
		op->outcome == CHECK_OK ? "ok" : op->outcome == CHECK_FAIL ? "fail" : "info",
		(unsigned long long)op->invoke_ns);
	if (op->complete_ns == CHECK_TIME_INF)
		fputs("never (indeterminate)", f);
	else
		fprintf(f, "%llu", (unsigned long long)op->complete_ns);
	if (op->line)
		fprintf(f, ", input line %u", op->line);
	if (m == MARK_PREFIX)
		fprintf(f, "\nstep %u of the linearizable prefix", order);
	else if (m == MARK_STUCK)
		fputs("\ncannot be placed after the prefix", f);
	else if (m == MARK_OVER)
		fputs("\noverwrote the value before the red operation began", f);
	/* The label is clipped to its bar by a nested svg. */
	fprintf(f, "</title></rect>\n<svg x=\"%u\" y=\"%d\" width=\"%u\" height=\"%d\">"
		   "<text x=\"3\" y=\"15\">", x0, y, x1 > x0 + 4 ? x1 - x0 - 2 : 2, ROW_PX - 8);
	if (m == MARK_PREFIX)
		fprintf(f, "#%u ", order);
	op_text(f, h, op, LABEL_CHARS_MAX);
	fputs("</text></svg>\n", f);
}

static int write_picture(FILE *f, const struct check_history *h, const struct check_result *res)
{
	uint32_t n = res->key_op_count;
	uint64_t *times = malloc(sizeof *times * (2 * n + 1));
	uint64_t *clients = malloc(sizeof *clients * (n + 1));
	uint32_t *order = calloc(h->op_count + 1, sizeof *order); /* op -> prefix step */
	uint8_t *stuck = calloc(h->op_count + 1, 1);
	if (!times || !clients || !order || !stuck) {
		free(times);
		free(clients);
		free(order);
		free(stuck);
		return -ENOMEM;
	}
	uint32_t tc = 0, cc = 0;
	for (uint32_t j = 0; j < n; j++) {
		const struct check_op *op = &h->ops[res->key_ops[j]];
		times[tc++] = op->invoke_ns;
		if (op->complete_ns != CHECK_TIME_INF)
			times[tc++] = op->complete_ns;
		clients[cc++] = op->client;
	}
	qsort(times, tc, sizeof *times, cmp_u64);
	qsort(clients, cc, sizeof *clients, cmp_u64);
	uint32_t ut = 0, uc = 0;
	for (uint32_t j = 0; j < tc; j++)
		if (ut == 0 || times[ut - 1] != times[j])
			times[ut++] = times[j];
	for (uint32_t j = 0; j < cc; j++)
		if (uc == 0 || clients[uc - 1] != clients[j])
			clients[uc++] = clients[j];
	for (uint32_t j = 0; j < res->prefix_count; j++)
		order[res->prefix[j]] = j + 1;
	for (uint32_t j = 0; j < res->stuck_count; j++)
		stuck[res->stuck[j]] = 1;
	uint32_t width = LEFT_PX + (ut + 2) * STEP_PX;
	if (width < WIDTH_PX_MIN)
		width = WIDTH_PX_MIN;
	fprintf(f, "<div class=\"scroll\"><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%u\" "
		   "height=\"%u\">\n<defs><pattern id=\"hatch\" width=\"8\" height=\"8\" "
		   "patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(45)\"><rect width=\"8\" "
		   "height=\"8\" fill=\"#f7d9a8\"/><line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"8\" "
		   "stroke=\"#d9a04a\" stroke-width=\"3\"/></pattern></defs>\n"
		   "<text x=\"4\" y=\"14\">client</text><text x=\"%u\" y=\"14\">time &rarr;</text>\n",
		width, uc * ROW_PX + 34, LEFT_PX);
	for (uint32_t c = 0; c < uc; c++)
		fprintf(f, "<text x=\"4\" y=\"%u\">%llu</text><line x1=\"0\" x2=\"%u\" y1=\"%u\" "
			   "y2=\"%u\" stroke=\"#eee\"/>\n", c * ROW_PX + 40,
			(unsigned long long)clients[c], width, c * ROW_PX + 22, c * ROW_PX + 22);
	for (uint32_t j = 0; j < n; j++) {
		uint32_t i = res->key_ops[j];
		const struct check_op *op = &h->ops[i];
		uint32_t x0 = LEFT_PX + ordinal(times, ut, op->invoke_ns) * STEP_PX;
		uint32_t x1 = op->complete_ns == CHECK_TIME_INF
				      ? width - 4
				      : LEFT_PX + ordinal(times, ut, op->complete_ns) * STEP_PX + STEP_PX / 2;
		enum mark m = order[i] ? MARK_PREFIX : stuck[i] ? MARK_STUCK
			    : (res->stale && i == res->stale_overwrite) ? MARK_OVER : MARK_OTHER;
		write_bar(f, h, i, m, order[i], (int)ordinal(clients, uc, op->client), x0, x1);
	}
	fputs("</svg></div>\n", f);
	free(times);
	free(clients);
	free(order);
	free(stuck);
	return 0;
}

/* Why op does not fit after the prefix, whose value is state. */
static void write_why(FILE *f, struct check_history *h, const struct check_op *op, uint32_t state)
{
	uint32_t next;
	if (check_step(h, op, state, &next)) {
		fputs("fits here, but no order of the remaining operations does", f);
		return;
	}
	if (op->kind == CHECK_GET) {
		fputs("reads ", f);
		html_val(f, &h->vals, op->result, TOOLTIP_CHARS_MAX);
	} else if (op->kind == CHECK_CAS && op->result == 1) {
		fputs("swapped from ", f);
		html_val(f, &h->vals, op->expected, TOOLTIP_CHARS_MAX);
	} else if (op->kind == CHECK_CAS) {
		fputs("did not swap, but would have", f);
	} else {
		fputs(op->result ? "found the key" : "found no key", f);
	}
	fputs("; the value is ", f);
	html_val(f, &h->vals, state, TOOLTIP_CHARS_MAX);
}

static void write_table(FILE *f, struct check_history *h, const struct check_result *res)
{
	fputs("<h2>The linearizable prefix, step by step</h2>\n<table><tr><th>step</th>"
	      "<th>client</th><th>operation</th><th>value after</th></tr>\n", f);
	uint32_t state = check_initial_state(h, res->model);
	fputs("<tr><td>0</td><td></td><td>(initial)</td><td>", f);
	html_val(f, &h->vals, state == CHECK_ANY ? CHECK_ABSENT : state, TOOLTIP_CHARS_MAX);
	fputs("</td></tr>\n", f);
	for (uint32_t j = 0; j < res->prefix_count && state != CHECK_ANY; j++) {
		const struct check_op *op = &h->ops[res->prefix[j]];
		uint32_t next;
		check_step(h, op, state, &next);
		state = next;
		fprintf(f, "<tr><td>%u</td><td>%llu</td><td>", j + 1, (unsigned long long)op->client);
		op_text(f, h, op, TOOLTIP_CHARS_MAX);
		fputs("</td><td>", f);
		if (state != CHECK_ANY)
			html_val(f, &h->vals, state, TOOLTIP_CHARS_MAX);
		fputs("</td></tr>\n", f);
	}
	fputs("</table>\n<h2>Cannot be placed next</h2>\n<table><tr><th>client</th>"
	      "<th>operation</th><th>why</th><th>line</th></tr>\n", f);
	for (uint32_t j = 0; j < res->stuck_count; j++) {
		const struct check_op *op = &h->ops[res->stuck[j]];
		fprintf(f, "<tr><td>%llu</td><td>", (unsigned long long)op->client);
		op_text(f, h, op, TOOLTIP_CHARS_MAX);
		fputs("</td><td>", f);
		write_why(f, h, op, res->prefix_state);
		fprintf(f, "</td><td>%u</td></tr>\n", op->line);
	}
	fputs("</table>\n", f);
}

int check_html_write(struct check_history *h, const struct check_result *res,
		     const char *title, const char *path)
{
	if (res->verdict != CHECK_VERDICT_ILLEGAL)
		return -EINVAL;
	FILE *f = fopen(path, "w");
	if (f == NULL)
		return -errno;
	fprintf(f, page_head, "illegal");
	write_summary(f, h, res, title);
	int rc = write_picture(f, h, res);
	if (rc == 0 && !res->stale)
		write_table(f, h, res);
	fputs("</body></html>\n", f);
	if (ferror(f) && rc == 0)
		rc = -EIO;
	if (fclose(f) != 0 && rc == 0)
		rc = -errno;
	return rc;
}
