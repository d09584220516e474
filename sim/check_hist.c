/*
 * check_hist.c: the history (operations, interned keys and values) and the
 * small containers the checker uses.
 *
 * Invariants:
 *  1. A strtab's id 0 is the absent string; ids 1..count-1 are distinct byte
 *     strings; offs[id]..offs[id+1] are id's bytes.
 *  2. slots has slot_count (power of two) entries and is at most half full;
 *     a slot holds 0 (empty) or an id >= 1.
 *  3. Every stored op refers to key and value ids that exist, and has
 *     invoke_ns <= complete_ns (complete_ns == CHECK_TIME_INF for CHECK_INFO).
 */
#include "check_int.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "../core/assert.h"
#include "../core/err.h"

uint64_t check_hash_bytes(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint64_t h = 0x9e3779b97f4a7c15ull ^ len;
	size_t i = 0;
	for (; i + 8 <= len; i += 8) {
		uint64_t w;
		memcpy(&w, b + i, 8);
		h = check_mix64(h ^ w) + 0x632be59bd9b4e019ull;
	}
	uint64_t w = 0;
	for (size_t k = 0; i < len; i++, k++)
		w |= (uint64_t)b[i] << (8 * k);
	return check_mix64(h ^ w);
}

int check_perr(struct check_parse_error *err, uint32_t line, const char *fmt, ...)
{
	if (err != NULL) {
		va_list ap;
		err->line = line;
		va_start(ap, fmt);
		vsnprintf(err->reason, sizeof err->reason, fmt, ap);
		va_end(ap);
	}
	return KEEL_EMALFORMED;
}

/* ---- strtab ---------------------------------------------------------------- */

static int strtab_setup(struct check_strtab *t)
{
	if (t->offs != NULL)
		return 0;
	t->cap = 64;
	t->offs = malloc(sizeof(uint64_t) * (t->cap + 1));
	t->slot_count = 128;
	t->slots = calloc(t->slot_count, sizeof(uint32_t));
	if (t->offs == NULL || t->slots == NULL)
		return KEEL_ENOMEM;
	t->offs[0] = 0;
	t->offs[1] = 0;
	t->count = 1;
	return 0;
}

static int strtab_rehash(struct check_strtab *t)
{
	uint32_t n = t->slot_count * 2;
	uint32_t *s = calloc(n, sizeof(uint32_t));
	if (s == NULL)
		return KEEL_ENOMEM;
	for (uint32_t id = 1; id < t->count; id++) {
		size_t len;
		const uint8_t *p = check_str_get(t, id, &len);
		uint64_t h = check_hash_bytes(p, len);
		uint32_t i = (uint32_t)h & (n - 1);
		while (s[i] != 0)
			i = (i + 1) & (n - 1);
		s[i] = id;
	}
	free(t->slots);
	t->slots = s;
	t->slot_count = n;
	return 0;
}

int check_strtab_intern(struct check_strtab *t, const void *p, size_t len, uint32_t *id)
{
	int rc = strtab_setup(t);
	if (rc != 0)
		return rc;
	if (len > CHECK_STRING_BYTES_MAX)
		return KEEL_ETOOBIG;
	if ((uint64_t)(t->count + 1) * 2 > t->slot_count) {
		rc = strtab_rehash(t);
		if (rc != 0)
			return rc;
	}
	uint64_t h = check_hash_bytes(p, len);
	uint32_t mask = t->slot_count - 1;
	uint32_t i = (uint32_t)h & mask;
	for (; t->slots[i] != 0; i = (i + 1) & mask) {
		uint32_t c = t->slots[i];
		uint64_t off = t->offs[c];
		if (t->offs[c + 1] - off == len && (len == 0 || memcmp(t->bytes + off, p, len) == 0)) {
			*id = c;
			return 0;
		}
	}
	if (t->bytes_used + len > CHECK_STRINGS_BYTES_MAX || t->count >= CHECK_OPS_MAX * 4u)
		return KEEL_ETOOBIG;
	if (t->bytes_used + len > t->bytes_cap) {
		uint64_t cap = t->bytes_cap ? t->bytes_cap : 1024;
		while (cap < t->bytes_used + len)
			cap *= 2;
		uint8_t *b = realloc(t->bytes, cap);
		if (b == NULL)
			return KEEL_ENOMEM;
		t->bytes = b;
		t->bytes_cap = cap;
	}
	if (t->count + 1 > t->cap) {
		uint64_t *o = realloc(t->offs, sizeof(uint64_t) * ((size_t)t->cap * 2 + 1));
		if (o == NULL)
			return KEEL_ENOMEM;
		t->offs = o;
		t->cap *= 2;
	}
	if (len > 0)
		memcpy(t->bytes + t->bytes_used, p, len);
	t->bytes_used += len;
	uint32_t nid = t->count++;
	t->offs[nid + 1] = t->bytes_used;
	t->slots[i] = nid;
	*id = nid;
	return 0;
}

const uint8_t *check_str_get(const struct check_strtab *t, uint32_t id, size_t *len)
{
	KEEL_ASSERT(id != CHECK_ABSENT);
	KEEL_ASSERT(id < t->count);
	*len = (size_t)(t->offs[id + 1] - t->offs[id]);
	if (t->bytes == NULL)
		return (const uint8_t *)""; /* only empty strings so far */
	return t->bytes + t->offs[id];
}

void check_strtab_free(struct check_strtab *t)
{
	free(t->bytes);
	free(t->offs);
	free(t->slots);
	memset(t, 0, sizeof *t);
}

uint64_t check_strtab_bytes(const struct check_strtab *t)
{
	return t->bytes_cap + (uint64_t)t->cap * 8 + (uint64_t)t->slot_count * 4;
}

/* ---- map u64 -> u32 --------------------------------------------------------- */

static int map_grow(struct check_map *m)
{
	uint32_t n = m->cap ? m->cap * 2 : 64;
	struct check_map g = { .cap = n };
	g.keys = malloc(sizeof(uint64_t) * n);
	g.vals = malloc(sizeof(uint32_t) * n);
	g.used = calloc(n, 1);
	if (g.keys == NULL || g.vals == NULL || g.used == NULL) {
		check_map_free(&g);
		return KEEL_ENOMEM;
	}
	for (uint32_t i = 0; i < m->cap; i++) {
		if (!m->used[i])
			continue;
		uint32_t j = (uint32_t)check_mix64(m->keys[i]) & (n - 1);
		while (g.used[j])
			j = (j + 1) & (n - 1);
		g.used[j] = 1;
		g.keys[j] = m->keys[i];
		g.vals[j] = m->vals[i];
	}
	g.count = m->count;
	check_map_free(m);
	*m = g;
	return 0;
}

uint32_t *check_map_get(struct check_map *m, uint64_t key, bool insert)
{
	if (m->cap == 0 || (insert && (m->count + 1) * 2 > m->cap)) {
		if (!insert)
			return NULL;
		if (map_grow(m) != 0)
			return NULL;
	}
	uint32_t mask = m->cap - 1;
	uint32_t i = (uint32_t)check_mix64(key) & mask;
	for (; m->used[i]; i = (i + 1) & mask)
		if (m->keys[i] == key)
			return &m->vals[i];
	if (!insert)
		return NULL;
	m->used[i] = 1;
	m->keys[i] = key;
	m->vals[i] = 0;
	m->count++;
	return &m->vals[i];
}

/* Deletes with backward shifting, so lookups need no tombstones. */
void check_map_del(struct check_map *m, uint64_t key)
{
	if (m->cap == 0)
		return;
	uint32_t mask = m->cap - 1;
	uint32_t i = (uint32_t)check_mix64(key) & mask;
	for (; m->used[i]; i = (i + 1) & mask)
		if (m->keys[i] == key)
			break;
	if (!m->used[i])
		return;
	m->used[i] = 0;
	m->count--;
	for (uint32_t j = (i + 1) & mask; m->used[j]; j = (j + 1) & mask) {
		uint32_t home = (uint32_t)check_mix64(m->keys[j]) & mask;
		/* Move j into the hole at i when home is not in (i, j]. */
		bool stays = (i < j) ? (home > i && home <= j) : (home > i || home <= j);
		if (stays)
			continue;
		m->used[i] = 1;
		m->keys[i] = m->keys[j];
		m->vals[i] = m->vals[j];
		m->used[j] = 0;
		i = j;
	}
}

void check_map_free(struct check_map *m)
{
	free(m->keys);
	free(m->vals);
	free(m->used);
	memset(m, 0, sizeof *m);
}

uint64_t check_map_bytes(const struct check_map *m)
{
	return (uint64_t)m->cap * 13;
}

/* ---- history ---------------------------------------------------------------- */

void check_history_init(struct check_history *h)
{
	memset(h, 0, sizeof *h);
	h->format = CHECK_FORMAT_NATIVE;
}

void check_history_free(struct check_history *h)
{
	free(h->ops);
	check_strtab_free(&h->keys);
	check_strtab_free(&h->vals);
	memset(h, 0, sizeof *h);
}

int check_history_push(struct check_history *h, const struct check_op *op)
{
	KEEL_ASSERT(op->invoke_ns <= op->complete_ns);
	if (h->op_count >= CHECK_OPS_MAX)
		return KEEL_ETOOBIG;
	if (h->op_count == h->op_cap) {
		uint32_t cap = h->op_cap ? h->op_cap * 2 : 256;
		struct check_op *o = realloc(h->ops, sizeof *o * cap);
		if (o == NULL)
			return KEEL_ENOMEM;
		h->ops = o;
		h->op_cap = cap;
	}
	h->ops[h->op_count++] = *op;
	return 0;
}

static int intern_opt(struct check_strtab *t, struct check_str s, uint32_t *id)
{
	if (s.ptr == NULL) {
		*id = CHECK_ABSENT;
		return 0;
	}
	return check_strtab_intern(t, s.ptr, s.len, id);
}

int check_history_add(struct check_history *h, const struct check_op_in *in)
{
	if ((unsigned)in->kind > CHECK_APPEND || (unsigned)in->outcome > CHECK_INFO)
		return KEEL_EINVAL;
	if (in->key.ptr == NULL)
		return KEEL_EINVAL;
	bool takes_value = in->kind == CHECK_PUT || in->kind == CHECK_CAS ||
			   in->kind == CHECK_APPEND;
	if (takes_value != (in->value.ptr != NULL))
		return KEEL_EINVAL;
	if (in->kind != CHECK_CAS && in->expected.ptr != NULL)
		return KEEL_EINVAL;
	if (in->outcome != CHECK_INFO && in->complete_ns < in->invoke_ns)
		return KEEL_EINVAL;
	if (in->outcome != CHECK_INFO && in->complete_ns == CHECK_TIME_INF)
		return KEEL_EINVAL;
	struct check_op op = {
		.client = in->client,
		.invoke_ns = in->invoke_ns,
		.complete_ns = in->outcome == CHECK_INFO ? CHECK_TIME_INF : in->complete_ns,
		.kind = (uint8_t)in->kind,
		.outcome = (uint8_t)in->outcome,
		.result = CHECK_ANY,
	};
	int rc = check_strtab_intern(&h->keys, in->key.ptr, in->key.len, &op.key);
	if (rc == 0)
		rc = intern_opt(&h->vals, in->value, &op.value);
	if (rc == 0)
		rc = intern_opt(&h->vals, in->expected, &op.expected);
	if (rc == 0 && in->outcome == CHECK_OK) {
		if (in->kind == CHECK_GET)
			rc = intern_opt(&h->vals, in->result, &op.result);
		else if (in->kind == CHECK_CAS || in->kind == CHECK_DEL)
			op.result = in->result_bool ? 1 : 0;
	}
	if (rc == 0)
		rc = check_history_push(h, &op);
	return rc;
}

/* ---- lines -------------------------------------------------------------------- */

bool check_next_line(struct check_lines *it, const char **line, size_t *len)
{
	if (it->p >= it->end)
		return false;
	const char *nl = memchr(it->p, '\n', (size_t)(it->end - it->p));
	const char *stop = nl ? nl : it->end;
	*line = it->p;
	*len = (size_t)(stop - it->p);
	if (*len > 0 && (*line)[*len - 1] == '\r')
		(*len)--;
	it->p = nl ? nl + 1 : it->end;
	it->number++;
	return true;
}

/* ---- names ---------------------------------------------------------------------- */

const char *check_kind_name(enum check_kind k)
{
	static const char *const names[] = { "get", "put", "del", "cas", "append" };
	return (unsigned)k <= CHECK_APPEND ? names[k] : "?";
}

const char *check_model_name(enum check_model m)
{
	static const char *const names[] = { "auto", "register", "kv", "keel" };
	return (unsigned)m <= CHECK_MODEL_KEEL ? names[m] : "?";
}

const char *check_verdict_name(enum check_verdict v)
{
	static const char *const names[] = { "ok", "illegal", "unknown" };
	return (unsigned)v <= CHECK_VERDICT_UNKNOWN ? names[v] : "?";
}

const char *check_format_name(enum check_format f)
{
	static const char *const names[] = { "native", "jepsen", "edn" };
	return (unsigned)f <= CHECK_FORMAT_EDN ? names[f] : "?";
}
