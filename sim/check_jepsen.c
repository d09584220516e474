/*
 * check_jepsen.c: readers for the two Jepsen-style formats of the public
 * histories (see ../shared/histories/README.md and sim/HISTORY.md):
 *
 *   log lines  "INFO  jepsen.util - 2	:invoke	:cas	[3 0]"  (one register)
 *   EDN maps   {:process 0, :type :ok, :f :get, :key "0", :value "x"}
 *
 * Both are streams of events (invoke, then ok/fail/info) per process. An
 * event's time is its line number. Meaning of completions:
 *   ok            completed with the given result (cas: swapped)
 *   fail read     the read ended, its result is unknown: constrains nothing
 *   fail cas      the cas completed and returned false
 *   fail write    not applied
 *   info          indeterminate: may take effect after its invocation, or never
 *   no completion indeterminate, as info
 *
 * Invariants:
 *  1. A process has at most one pending invocation (pend map); an invocation
 *     while one is pending, or a completion without one, is malformed input.
 *  2. Every pending invocation left at the end becomes an info op.
 */
#include "check_int.h"

#include <stdlib.h>
#include <string.h>

#include "../core/err.h"

#define VEC_ITEMS_MAX 8 /* elements kept from one EDN vector */
#define EVENT_FIELDS_MAX 64 /* keys in one EDN map */

enum ev_type { EV_INVOKE, EV_OK, EV_FAIL, EV_INFO };
enum val_tag { VAL_MISSING, VAL_NIL, VAL_SCALAR, VAL_PAIR, VAL_KEYWORD, VAL_OTHER };

struct span {
	const char *p;
	size_t len;
};

struct value {
	enum val_tag tag;
	struct span s[2]; /* scalar: s[0]; pair: s[0], s[1] (len SIZE_MAX: nil) */
};

struct event {
	uint64_t process;
	enum ev_type type;
	uint8_t kind;
	bool has_key;
	struct span key;
	struct value value;
};

struct pairing {
	struct check_map pend;  /* process -> index in ops + 1 */
	struct check_op *ops;   /* pending invocations */
	uint32_t *free_slots;
	uint32_t op_count;
	uint32_t free_count;
	uint32_t cap;
};

static void pairing_free(struct pairing *pr)
{
	check_map_free(&pr->pend);
	free(pr->ops);
	free(pr->free_slots);
}

static int pairing_slot(struct pairing *pr, uint32_t *slot)
{
	if (pr->free_count > 0) {
		*slot = pr->free_slots[--pr->free_count];
		return 0;
	}
	if (pr->op_count == pr->cap) {
		uint32_t cap = pr->cap ? pr->cap * 2 : 64;
		if (cap > CHECK_OPS_MAX)
			return KEEL_ETOOBIG;
		struct check_op *o = realloc(pr->ops, sizeof *o * cap);
		if (o == NULL)
			return KEEL_ENOMEM;
		pr->ops = o;
		uint32_t *f = realloc(pr->free_slots, sizeof *f * cap);
		if (f == NULL)
			return KEEL_ENOMEM;
		pr->free_slots = f;
		pr->cap = cap;
	}
	*slot = pr->op_count++;
	return 0;
}

static bool span_is(struct span s, const char *lit)
{
	return s.len == strlen(lit) && memcmp(s.p, lit, s.len) == 0;
}

static int intern_span(struct check_strtab *t, struct span s, uint32_t *id,
		       struct check_parse_error *err, uint32_t lno)
{
	if (s.len == SIZE_MAX || span_is(s, "nil")) {
		*id = CHECK_ABSENT;
		return 0;
	}
	int rc = check_strtab_intern(t, s.p, s.len, id);
	if (rc == KEEL_ETOOBIG)
		return check_perr(err, lno, "string too long or too many strings");
	return rc;
}

static int kind_of(struct span f, uint8_t *kind)
{
	if (span_is(f, "read") || span_is(f, "get"))
		*kind = CHECK_GET;
	else if (span_is(f, "write") || span_is(f, "put"))
		*kind = CHECK_PUT;
	else if (span_is(f, "cas"))
		*kind = CHECK_CAS;
	else if (span_is(f, "append"))
		*kind = CHECK_APPEND;
	else
		return -1;
	return 0;
}

static int type_of(struct span t, enum ev_type *type)
{
	if (span_is(t, "invoke"))
		*type = EV_INVOKE;
	else if (span_is(t, "ok"))
		*type = EV_OK;
	else if (span_is(t, "fail"))
		*type = EV_FAIL;
	else if (span_is(t, "info"))
		*type = EV_INFO;
	else
		return -1;
	return 0;
}

static int on_invoke(struct pairing *pr, struct check_history *h, const struct event *ev,
		     uint32_t lno, struct check_parse_error *err)
{
	uint32_t *pend = check_map_get(&pr->pend, ev->process, false);
	if (pend != NULL)
		return check_perr(err, lno,
				  "process %llu invokes while its operation of line %u is pending",
				  (unsigned long long)ev->process, pr->ops[*pend - 1].line);
	struct check_op op = { .client = ev->process, .invoke_ns = lno, .line = lno,
			       .kind = ev->kind, .result = CHECK_ANY };
	static const struct span no_key = { "", 0 };
	int rc = intern_span(&h->keys, ev->has_key ? ev->key : no_key, &op.key, err, lno);
	if (rc != 0)
		return rc;
	if (op.key == CHECK_ABSENT)
		return check_perr(err, lno, "key must not be nil");
	if (op.kind == CHECK_PUT || op.kind == CHECK_APPEND) {
		if (ev->value.tag != VAL_SCALAR)
			return check_perr(err, lno, "%s needs a value", check_kind_name(op.kind));
		rc = intern_span(&h->vals, ev->value.s[0], &op.value, err, lno);
	} else if (op.kind == CHECK_CAS) {
		if (ev->value.tag != VAL_PAIR)
			return check_perr(err, lno, "cas needs a value [FROM TO]");
		rc = intern_span(&h->vals, ev->value.s[0], &op.expected, err, lno);
		if (rc == 0)
			rc = intern_span(&h->vals, ev->value.s[1], &op.value, err, lno);
		if (rc == 0 && op.value == CHECK_ABSENT)
			return check_perr(err, lno, "cas cannot write nil");
	}
	if (rc != 0)
		return rc;
	uint32_t slot;
	rc = pairing_slot(pr, &slot);
	if (rc != 0)
		return rc;
	pend = check_map_get(&pr->pend, ev->process, true);
	if (pend == NULL)
		return KEEL_ENOMEM;
	*pend = slot + 1;
	pr->ops[slot] = op;
	return 0;
}

static int on_complete(struct pairing *pr, struct check_history *h, const struct event *ev,
		       uint32_t lno, struct check_parse_error *err)
{
	uint32_t *pend = check_map_get(&pr->pend, ev->process, false);
	if (pend == NULL)
		return check_perr(err, lno, "process %llu completes an operation it never invoked",
				  (unsigned long long)ev->process);
	uint32_t slot = *pend - 1;
	struct check_op op = pr->ops[slot];
	if (op.kind != ev->kind)
		return check_perr(err, lno, "completion is %s but line %u invoked %s",
				  check_kind_name(ev->kind), op.line,
				  check_kind_name((enum check_kind)op.kind));
	op.complete_ns = lno;
	int rc = 0;
	if (ev->type == EV_INFO) {
		op.outcome = CHECK_INFO;
		op.complete_ns = CHECK_TIME_INF;
	} else if (ev->type == EV_FAIL) {
		/* A failed cas returned false; anything else did not happen. */
		op.outcome = op.kind == CHECK_CAS ? CHECK_OK : CHECK_FAIL;
		if (op.kind == CHECK_CAS)
			op.result = 0;
	} else {
		op.outcome = CHECK_OK;
		if (op.kind == CHECK_CAS) {
			op.result = 1;
		} else if (op.kind == CHECK_GET) {
			if (ev->value.tag != VAL_SCALAR && ev->value.tag != VAL_NIL)
				return check_perr(err, lno, "an ok read needs the value read");
			rc = intern_span(&h->vals, ev->value.s[0], &op.result, err, lno);
		}
	}
	if (rc == 0)
		rc = check_history_push(h, &op);
	if (rc != 0)
		return rc;
	check_map_del(&pr->pend, ev->process);
	pr->free_slots[pr->free_count++] = slot;
	return 0;
}

static int on_event(struct pairing *pr, struct check_history *h, const struct event *ev,
		    uint32_t lno, struct check_parse_error *err)
{
	if (ev->type == EV_INVOKE)
		return on_invoke(pr, h, ev, lno, err);
	return on_complete(pr, h, ev, lno, err);
}

/* Pending invocations at the end are indeterminate. */
static int finish(struct pairing *pr, struct check_history *h)
{
	for (uint32_t i = 0; i < pr->pend.cap; i++) {
		if (!pr->pend.used[i])
			continue;
		struct check_op op = pr->ops[pr->pend.vals[i] - 1];
		op.outcome = CHECK_INFO;
		op.complete_ns = CHECK_TIME_INF;
		int rc = check_history_push(h, &op);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* ---- Jepsen log lines --------------------------------------------------------- */

static bool is_ws(char c)
{
	return c == ' ' || c == '\t';
}

static struct span next_word(const char **p, const char *end)
{
	while (*p < end && is_ws(**p))
		(*p)++;
	const char *s = *p;
	while (*p < end && !is_ws(**p))
		(*p)++;
	return (struct span){ s, (size_t)(*p - s) };
}

static bool parse_dec(struct span s, uint64_t *out)
{
	if (s.len == 0 || s.len > 19)
		return false;
	uint64_t v = 0;
	for (size_t i = 0; i < s.len; i++) {
		if (s.p[i] < '0' || s.p[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s.p[i] - '0');
	}
	*out = v;
	return true;
}

/* "nil", ":kw", "[a b]" or a scalar word; the rest of the line. */
static int jepsen_value(const char *p, const char *end, struct value *v, uint32_t lno,
			struct check_parse_error *err)
{
	while (p < end && is_ws(*p))
		p++;
	while (end > p && is_ws(end[-1]))
		end--;
	struct span all = { p, (size_t)(end - p) };
	if (all.len == 0) {
		v->tag = VAL_MISSING;
	} else if (span_is(all, "nil")) {
		v->tag = VAL_NIL;
		v->s[0].len = SIZE_MAX;
	} else if (*p == ':') {
		v->tag = VAL_KEYWORD;
		v->s[0] = all;
	} else if (*p == '[') {
		if (end[-1] != ']')
			return check_perr(err, lno, "unterminated [ in value");
		const char *q = p + 1;
		const char *qe = end - 1;
		v->s[0] = next_word(&q, qe);
		v->s[1] = next_word(&q, qe);
		struct span extra = next_word(&q, qe);
		if (v->s[0].len == 0 || v->s[1].len == 0 || extra.len != 0)
			return check_perr(err, lno, "expected a pair [FROM TO]");
		v->tag = VAL_PAIR;
	} else {
		const char *q = p;
		v->s[0] = next_word(&q, end);
		if (q != end)
			return check_perr(err, lno, "unexpected text after the value");
		v->tag = VAL_SCALAR;
	}
	return 0;
}

static int jepsen_line(const char *line, size_t n, uint32_t lno, struct event *ev,
		       struct check_parse_error *err)
{
	const char *dash = memmem(line, n, " - ", 3);
	if (dash == NULL)
		return check_perr(err, lno, "expected 'LEVEL logger - PROCESS :type :f VALUE'");
	const char *p = dash + 3;
	const char *end = line + n;
	struct span pid = next_word(&p, end);
	struct span type = next_word(&p, end);
	struct span f = next_word(&p, end);
	memset(ev, 0, sizeof *ev);
	if (!parse_dec(pid, &ev->process))
		return check_perr(err, lno, "process: expected a decimal integer");
	if (type.len < 2 || type.p[0] != ':' ||
	    type_of((struct span){ type.p + 1, type.len - 1 }, &ev->type) != 0)
		return check_perr(err, lno, "type: expected :invoke, :ok, :fail or :info");
	if (f.len < 2 || f.p[0] != ':' || kind_of((struct span){ f.p + 1, f.len - 1 }, &ev->kind) != 0)
		return check_perr(err, lno, "f: expected :read, :write or :cas");
	return jepsen_value(p, end, &ev->value, lno, err);
}

int check_parse_jepsen(struct check_history *h, const char *buf, size_t len,
		       struct check_parse_error *err)
{
	struct pairing pr = { 0 };
	struct check_lines it = { .p = buf, .end = buf + len };
	const char *line;
	size_t n;
	int rc = 0;
	while (rc == 0 && check_next_line(&it, &line, &n)) {
		bool blank = true;
		for (size_t i = 0; i < n && blank; i++)
			blank = is_ws(line[i]);
		if (blank)
			continue;
		struct event ev;
		rc = jepsen_line(line, n, it.number, &ev, err);
		if (rc == 0)
			rc = on_event(&pr, h, &ev, it.number, err);
	}
	if (rc == 0)
		rc = finish(&pr, h);
	pairing_free(&pr);
	return rc;
}

/* ---- EDN maps ------------------------------------------------------------------ */

struct edn {
	const char *p;
	const char *end;
	char *scratch; /* decoded strings; as long as the line */
	size_t used;
	uint32_t lno;
	struct check_parse_error *err;
};

static void edn_ws(struct edn *e)
{
	while (e->p < e->end && (is_ws(*e->p) || *e->p == ','))
		e->p++;
}

static bool edn_delim(char c)
{
	return is_ws(c) || c == ',' || c == '}' || c == ']' || c == '{' || c == '[' || c == '"';
}

static struct span edn_symbol(struct edn *e)
{
	const char *s = e->p;
	while (e->p < e->end && !edn_delim(*e->p))
		e->p++;
	return (struct span){ s, (size_t)(e->p - s) };
}

static int edn_string(struct edn *e, struct span *out)
{
	e->p++; /* the opening quote */
	char *dst = e->scratch + e->used;
	size_t n = 0;
	while (e->p < e->end && *e->p != '"') {
		char c = *e->p++;
		if (c == '\\') {
			if (e->p == e->end)
				break;
			c = *e->p++;
			c = c == 'n' ? '\n' : c == 't' ? '\t' : c == 'r' ? '\r' : c;
		}
		dst[n++] = c;
	}
	if (e->p == e->end)
		return check_perr(e->err, e->lno, "unterminated string");
	e->p++;
	e->used += n;
	*out = (struct span){ dst, n };
	return 0;
}

/* A scalar: string, keyword or symbol (nil, numbers, true...). */
static int edn_scalar(struct edn *e, struct span *out, bool *is_nil, bool *is_kw)
{
	*is_nil = false;
	*is_kw = false;
	if (e->p < e->end && *e->p == '"')
		return edn_string(e, out);
	*is_kw = e->p < e->end && *e->p == ':';
	*out = edn_symbol(e);
	if (out->len == 0)
		return check_perr(e->err, e->lno, "expected a value");
	*is_nil = span_is(*out, "nil");
	return 0;
}

static int edn_value(struct edn *e, struct value *v)
{
	bool nil, kw;
	edn_ws(e);
	if (e->p < e->end && *e->p == '[') {
		e->p++;
		size_t items = 0;
		for (;;) {
			edn_ws(e);
			if (e->p < e->end && *e->p == ']')
				break;
			if (e->p == e->end || items == VEC_ITEMS_MAX)
				return check_perr(e->err, e->lno, "unterminated or long vector");
			struct span s;
			int rc = edn_scalar(e, &s, &nil, &kw);
			if (rc != 0)
				return rc;
			if (items < 2)
				v->s[items] = nil ? (struct span){ "", SIZE_MAX } : s;
			items++;
		}
		e->p++;
		v->tag = items == 2 ? VAL_PAIR : VAL_OTHER;
		return 0;
	}
	int rc = edn_scalar(e, &v->s[0], &nil, &kw);
	if (rc != 0)
		return rc;
	v->tag = nil ? VAL_NIL : kw ? VAL_KEYWORD : VAL_SCALAR;
	if (nil)
		v->s[0].len = SIZE_MAX;
	return 0;
}

static int edn_keyword(struct edn *e, struct span *name)
{
	edn_ws(e);
	if (e->p == e->end || *e->p != ':')
		return check_perr(e->err, e->lno, "expected a :keyword key");
	e->p++;
	*name = edn_symbol(e);
	if (name->len == 0)
		return check_perr(e->err, e->lno, "empty keyword");
	return 0;
}

static int edn_field(struct edn *e, struct span name, struct event *ev, unsigned *seen)
{
	struct value v = { 0 };
	int rc = edn_value(e, &v);
	if (rc != 0)
		return rc;
	struct span kw = { "", 0 };
	if (v.tag == VAL_KEYWORD)
		kw = (struct span){ v.s[0].p + 1, v.s[0].len - 1 };
	if (span_is(name, "process")) {
		if (v.tag != VAL_SCALAR || !parse_dec(v.s[0], &ev->process))
			return check_perr(e->err, e->lno, ":process: expected a decimal integer");
		*seen |= 1;
	} else if (span_is(name, "type")) {
		if (v.tag != VAL_KEYWORD || type_of(kw, &ev->type) != 0)
			return check_perr(e->err, e->lno, ":type: expected :invoke, :ok, :fail or :info");
		*seen |= 2;
	} else if (span_is(name, "f")) {
		if (v.tag != VAL_KEYWORD || kind_of(kw, &ev->kind) != 0)
			return check_perr(e->err, e->lno,
					  ":f: expected :get, :put, :append, :read, :write or :cas");
		*seen |= 4;
	} else if (span_is(name, "key")) {
		if (v.tag != VAL_SCALAR)
			return check_perr(e->err, e->lno, ":key: expected a string or a number");
		ev->has_key = true;
		ev->key = v.s[0];
	} else if (span_is(name, "value")) {
		ev->value = v;
	}
	return 0;
}

static int edn_line(struct edn *e, struct event *ev)
{
	memset(ev, 0, sizeof *ev);
	edn_ws(e);
	if (e->p == e->end || *e->p != '{')
		return check_perr(e->err, e->lno, "expected '{'");
	e->p++;
	unsigned seen = 0;
	for (int fields = 0;; fields++) {
		edn_ws(e);
		if (e->p < e->end && *e->p == '}')
			break;
		if (e->p == e->end)
			return check_perr(e->err, e->lno, "expected '}'");
		if (fields == EVENT_FIELDS_MAX)
			return check_perr(e->err, e->lno, "more than %d keys", EVENT_FIELDS_MAX);
		struct span name;
		int rc = edn_keyword(e, &name);
		if (rc == 0)
			rc = edn_field(e, name, ev, &seen);
		if (rc != 0)
			return rc;
	}
	e->p++;
	edn_ws(e);
	if (e->p != e->end)
		return check_perr(e->err, e->lno, "unexpected text after '}'");
	if (seen != 7)
		return check_perr(e->err, e->lno, "a map needs :process, :type and :f");
	return 0;
}

int check_parse_edn(struct check_history *h, const char *buf, size_t len,
		    struct check_parse_error *err)
{
	struct pairing pr = { 0 };
	struct check_lines it = { .p = buf, .end = buf + len };
	const char *line;
	size_t n;
	char *scratch = NULL;
	size_t scratch_len = 0;
	int rc = 0;
	while (rc == 0 && check_next_line(&it, &line, &n)) {
		bool blank = true;
		for (size_t i = 0; i < n && blank; i++)
			blank = is_ws(line[i]);
		if (blank)
			continue;
		if (n > CHECK_LINE_BYTES_MAX) {
			rc = check_perr(err, it.number, "line longer than %u bytes",
					CHECK_LINE_BYTES_MAX);
			break;
		}
		if (n > scratch_len) {
			char *s = realloc(scratch, n);
			if (s == NULL) {
				rc = KEEL_ENOMEM;
				break;
			}
			scratch = s;
			scratch_len = n;
		}
		struct edn e = { .p = line, .end = line + n, .scratch = scratch,
				 .lno = it.number, .err = err };
		struct event ev;
		rc = edn_line(&e, &ev);
		if (rc == 0)
			rc = on_event(&pr, h, &ev, it.number, err);
	}
	if (rc == 0)
		rc = finish(&pr, h);
	free(scratch);
	pairing_free(&pr);
	return rc;
}
