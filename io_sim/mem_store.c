/*
 * mem_store.c: the simulator's in-memory store; see mem_store.h.
 *
 * Invariants:
 *   M1 the maps and the log always hold the current state: durable, then
 *      every volatile batch, then the open batch, applied in order.
 *   M2 journal[0..journal_len) undoes, in reverse, exactly the writes of the
 *      volatile batches and the open batch; vol[i].journal_end is
 *      non-decreasing and <= open_journal_start when a batch is open.
 *   M3 a write either fails before changing anything (KEEL_EINVAL,
 *      KEEL_ENOTFOUND, KEEL_ESTATE, KEEL_ENOMEM) or changes state and
 *      journals its undo; so abort and crash restore state exactly.
 *   M4 log_first == snapshot_index + 1; log records are encoded entries
 *      (core/record.h) whose index matches their position.
 */
#include "mem_store.h"

#include <stdlib.h>
#include <string.h>

#include "../core/assert.h"
#include "../core/err.h"
#include "../core/record.h"

/* An encoded log record (core/record.h). */
struct mem_log_rec {
	uint32_t bytes;
	uint8_t data[];
};

enum jop_kind {
	JOP_MAP = 1,
	JOP_LOG_APPEND = 2,
	JOP_LOG_COMPACT = 3,
	JOP_MAP_CLEAR = 4,
	JOP_MAP_SWAP = 5,    /* map and saved exchanged their contents */
	JOP_STAGE_PUTS = 6,  /* index: stage_puts before */
};

struct mem_jop {
	uint32_t kind;
	/* JOP_MAP: the key's record before (NULL: absent) and after.
	 * JOP_MAP_CLEAR: map was emptied; saved holds what it was. */
	struct mem_map *map;
	struct mem_map *saved;
	struct mem_rec *before;
	struct mem_rec *after;
	/* JOP_LOG_*: records taken out of the log, the count added at the
	 * tail (append) and the log_first before (compact). */
	struct mem_log_rec **removed;
	uint32_t removed_count;
	uint32_t added_count;
	uint64_t index;
};

static const char META_IDS[] = "ids";
static const char META_HARD[] = "hard";
static const char META_SNAP[] = "snap";
static const char META_APPLIED[] = "applied";

/* ---- journal ------------------------------------------------------------- */

static int journal_reserve(struct mem_store *s)
{
	if (s->journal_len < s->journal_cap)
		return 0;
	if (s->journal_cap >= MEM_STORE_JOURNAL_OPS_MAX)
		return KEEL_ENOMEM;
	uint32_t cap = s->journal_cap == 0 ? 64u : s->journal_cap * 2;
	struct mem_jop *j = realloc(s->journal, (size_t)cap * sizeof(*j));
	if (j == NULL)
		return KEEL_ENOMEM;
	s->journal = j;
	s->journal_cap = cap;
	return 0;
}

static struct mem_jop *journal_push(struct mem_store *s, uint32_t kind)
{
	KEEL_ASSERT(s->journal_len < s->journal_cap);
	struct mem_jop *j = &s->journal[s->journal_len++];
	memset(j, 0, sizeof(*j));
	j->kind = kind;
	return j;
}

/* A write inside the open batch: its common checks. */
static int write_check(struct mem_store *s)
{
	if (!s->open)
		return KEEL_ESTATE;
	return s->batch_rc;
}

static int fail(struct mem_store *s, int rc)
{
	if (rc != KEEL_EINVAL && rc != KEEL_ENOTFOUND && rc != KEEL_ESTATE)
		s->batch_rc = rc;
	return rc;
}

/* Journaled map write: key -> val (val_bytes), or delete when del. */
static int map_write(struct mem_store *s, struct mem_map *m,
		     const uint8_t *key, uint32_t key_bytes, const uint8_t *val,
		     uint32_t val_bytes, bool del)
{
	int rc = journal_reserve(s);
	if (rc == 0 && !del)
		rc = mem_map_reserve(m);
	if (rc != 0)
		return fail(s, rc);
	struct mem_rec *r = NULL;
	if (!del) {
		r = mem_rec_new(key, key_bytes, val, val_bytes);
		if (r == NULL)
			return fail(s, KEEL_ENOMEM);
	}
	struct mem_jop *j = journal_push(s, JOP_MAP);
	j->map = m;
	j->after = r;
	j->before = mem_map_swap(m, key, key_bytes, r);
	return 0;
}

static int meta_write(struct mem_store *s, const char *name, const uint8_t *rec,
		      size_t rec_bytes)
{
	return map_write(s, &s->meta, (const uint8_t *)name,
			 (uint32_t)strlen(name), rec, (uint32_t)rec_bytes, false);
}

/* ---- log ----------------------------------------------------------------- */

static uint64_t log_last(const struct mem_store *s)
{
	return s->log_first + s->log_count - 1;
}

static struct mem_log_rec *log_at(const struct mem_store *s, uint64_t index)
{
	KEEL_ASSERT(index >= s->log_first);
	KEEL_ASSERT(index <= log_last(s));
	return s->log[s->log_head + (uint32_t)(index - s->log_first)];
}

/* Room for `more` records at the tail. */
static int log_reserve(struct mem_store *s, uint32_t more)
{
	if ((uint64_t)s->log_count + more > MEM_STORE_LOG_ENTRIES_MAX)
		return KEEL_ENOMEM;
	if (s->log_head + s->log_count + more <= s->log_cap)
		return 0;
	if (s->log_head > 0) {
		memmove(s->log, s->log + s->log_head,
			(size_t)s->log_count * sizeof(*s->log));
		s->log_head = 0;
		if (s->log_count + more <= s->log_cap)
			return 0;
	}
	uint32_t cap = s->log_cap == 0 ? 256u : s->log_cap;
	while (cap < s->log_count + more)
		cap *= 2;
	struct mem_log_rec **l = realloc(s->log, (size_t)cap * sizeof(*l));
	if (l == NULL)
		return KEEL_ENOMEM;
	s->log = l;
	s->log_cap = cap;
	return 0;
}

static void log_recs_free(struct mem_log_rec **recs, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		free(recs[i]);
	free(recs);
}

/* Take the records from index to the tail out of the log into a new array
 * (*out, *n; NULL/0 when none). */
static int log_cut_tail(struct mem_store *s, uint64_t index,
			struct mem_log_rec ***out, uint32_t *n)
{
	*out = NULL;
	*n = 0;
	if (index > log_last(s))
		return 0;
	uint32_t k = (uint32_t)(log_last(s) - index + 1);
	struct mem_log_rec **r = malloc((size_t)k * sizeof(*r));
	if (r == NULL)
		return KEEL_ENOMEM;
	memcpy(r, s->log + s->log_head + (s->log_count - k),
	       (size_t)k * sizeof(*r));
	s->log_count -= k;
	*out = r;
	*n = k;
	return 0;
}

/* ---- undo ---------------------------------------------------------------- */

static void undo_log_compact(struct mem_store *s, struct mem_jop *j)
{
	/* The log now starts at the compaction point; put the removed head
	 * back in front of it. */
	uint32_t k = j->removed_count;
	if (k > 0 && s->log_count > 0)
		KEEL_ASSERT(s->log_first == j->index + k); /* M4 */
	size_t n = (size_t)k + s->log_count;
	struct mem_log_rec **l = malloc((n == 0 ? 1 : n) * sizeof(*l));
	KEEL_ASSERT(l != NULL); /* recovery cannot fail halfway */
	if (k > 0)
		memcpy(l, j->removed, (size_t)k * sizeof(*l));
	if (s->log_count > 0)
		memcpy(l + k, s->log + s->log_head,
		       (size_t)s->log_count * sizeof(*l));
	free(s->log);
	free(j->removed);
	s->log = l;
	s->log_head = 0;
	s->log_cap = (uint32_t)(n == 0 ? 1 : n);
	s->log_count = (uint32_t)n;
	s->log_first = j->index;
}

static void undo_one(struct mem_store *s, struct mem_jop *j)
{
	switch (j->kind) {
	case JOP_MAP: {
		const struct mem_rec *k = j->after != NULL ? j->after : j->before;
		KEEL_ASSERT(k != NULL);
		if (j->before != NULL)
			KEEL_ASSERT(mem_map_reserve(j->map) == 0);
		struct mem_rec *cur =
			mem_map_swap(j->map, k->bytes, k->key_bytes, j->before);
		KEEL_ASSERT(cur == j->after);
		free(j->after);
		break;
	}
	case JOP_LOG_APPEND:
		KEEL_ASSERT(s->log_count >= j->added_count);
		for (uint32_t i = 0; i < j->added_count; i++)
			free(s->log[s->log_head + s->log_count - 1 - i]);
		s->log_count -= j->added_count;
		KEEL_ASSERT(log_reserve(s, j->removed_count) == 0);
		for (uint32_t i = 0; i < j->removed_count; i++)
			s->log[s->log_head + s->log_count++] = j->removed[i];
		free(j->removed);
		break;
	case JOP_LOG_COMPACT:
		undo_log_compact(s, j);
		break;
	case JOP_MAP_CLEAR:
		KEEL_ASSERT(j->map->count == 0); /* later writes undone first */
		mem_map_free(j->map);
		*j->map = *j->saved;
		free(j->saved);
		break;
	case JOP_MAP_SWAP: {
		struct mem_map t = *j->map;
		*j->map = *j->saved;
		*j->saved = t;
		break;
	}
	case JOP_STAGE_PUTS:
		s->stage_puts = j->index;
		break;
	default:
		KEEL_UNREACHABLE();
	}
}

/* Undo journal entries down to length `to`. */
static void undo_to(struct mem_store *s, uint32_t to)
{
	KEEL_ASSERT(to <= s->journal_len);
	while (s->journal_len > to)
		undo_one(s, &s->journal[--s->journal_len]);
}

/* Forget the undo data of journal[0..upto): those writes are durable. */
static void journal_settle(struct mem_store *s, uint32_t upto)
{
	for (uint32_t i = 0; i < upto; i++) {
		struct mem_jop *j = &s->journal[i];
		if (j->kind == JOP_MAP) {
			free(j->before);
		} else if (j->kind == JOP_MAP_CLEAR) {
			mem_map_free(j->saved);
			free(j->saved);
		} else if (j->kind == JOP_MAP_SWAP || j->kind == JOP_STAGE_PUTS) {
			continue; /* nothing held */
		} else {
			log_recs_free(j->removed, j->removed_count);
		}
	}
	if (upto == 0)
		return;
	memmove(s->journal, s->journal + upto,
		(size_t)(s->journal_len - upto) * sizeof(*s->journal));
	s->journal_len -= upto;
	for (uint32_t i = 0; i < s->vol_count; i++)
		s->vol[i].journal_end -= upto;
	if (s->open)
		s->open_journal_start -= upto;
}

/* ---- store ops: reads ---------------------------------------------------- */

static int meta_rec(struct mem_store *s, const char *name,
		    const struct mem_rec **r)
{
	*r = mem_map_get(&s->meta, (const uint8_t *)name, (uint32_t)strlen(name));
	return *r == NULL ? KEEL_ENOTFOUND : 0;
}

static int op_meta_get(void *impl, struct store_meta *out)
{
	struct mem_store *s = impl;
	const struct mem_rec *r;
	int rc = 0;
	memset(out, 0, sizeof(*out));
	if (meta_rec(s, META_IDS, &r) == 0)
		rc = record_ids_decode(MEM_REC_VAL(r), r->val_bytes,
				       &out->cluster_id, &out->node_id);
	if (rc == 0 && meta_rec(s, META_HARD, &r) == 0)
		rc = record_hard_decode(MEM_REC_VAL(r), r->val_bytes,
					&out->hard_state);
	if (rc == 0 && meta_rec(s, META_SNAP, &r) == 0)
		rc = record_snap_decode(MEM_REC_VAL(r), r->val_bytes,
					&out->snapshot_index,
					&out->snapshot_term,
					&out->snapshot_membership);
	if (rc == 0 && meta_rec(s, META_APPLIED, &r) == 0)
		rc = record_applied_decode(MEM_REC_VAL(r), r->val_bytes,
					   &out->applied_index);
	if (rc != 0)
		s->stats.corrupt_reads++;
	return rc;
}

static int op_log_bounds(void *impl, uint64_t *first, uint64_t *last)
{
	struct mem_store *s = impl;
	*first = s->log_first;
	*last = log_last(s);
	return 0;
}

static int op_log_get(void *impl, uint64_t index, struct entry *e)
{
	struct mem_store *s = impl;
	if (index < s->log_first || index > log_last(s))
		return KEEL_ENOTFOUND;
	const struct mem_log_rec *r = log_at(s, index);
	int rc = record_entry_decode(r->data, r->bytes, e);
	if (rc == 0 && e->index != index)
		rc = KEEL_ECORRUPT;
	if (rc != 0) {
		s->stats.corrupt_reads++;
		return KEEL_ECORRUPT;
	}
	return 0;
}

static bool key_ok(const uint8_t *key, uint32_t key_bytes)
{
	return key != NULL && key_bytes >= 1 && key_bytes <= KEEL_KEY_BYTES_MAX;
}

static int op_kv_get(void *impl, const uint8_t *key, uint32_t key_bytes,
		     const uint8_t **val, uint32_t *val_bytes)
{
	struct mem_store *s = impl;
	if (!key_ok(key, key_bytes))
		return KEEL_EINVAL;
	const struct mem_rec *r = mem_map_get(&s->kv, key, key_bytes);
	if (r == NULL)
		return KEEL_ENOTFOUND;
	*val = MEM_REC_VAL(r);
	*val_bytes = r->val_bytes;
	return 0;
}

static void session_key(uint64_t client_id, uint8_t key[8])
{
	record_put_u64(key, client_id);
}

static int op_session_get(void *impl, uint64_t client_id,
			  struct kv_session *out)
{
	struct mem_store *s = impl;
	uint8_t key[8];
	session_key(client_id, key);
	const struct mem_rec *r = mem_map_get(&s->sessions, key, 8);
	if (r == NULL)
		return KEEL_ENOTFOUND;
	int rc = record_session_decode(MEM_REC_VAL(r), r->val_bytes, out);
	if (rc == 0 && out->client_id != client_id)
		rc = KEEL_ECORRUPT;
	if (rc != 0)
		s->stats.corrupt_reads++;
	return rc;
}

static int op_session_count(void *impl, uint64_t *count)
{
	struct mem_store *s = impl;
	*count = s->sessions.count;
	return 0;
}

static int op_session_oldest(void *impl, struct kv_session *out)
{
	struct mem_store *s = impl;
	bool found = false;
	for (uint32_t i = 0; i < s->sessions.cap; i++) {
		const struct mem_rec *r = s->sessions.slots[i];
		if (r == NULL || r == MEM_MAP_TOMB)
			continue;
		struct kv_session se;
		if (record_session_decode(MEM_REC_VAL(r), r->val_bytes, &se) != 0) {
			s->stats.corrupt_reads++;
			return KEEL_ECORRUPT;
		}
		if (!found || se.last_index < out->last_index ||
		    (se.last_index == out->last_index &&
		     se.client_id < out->client_id))
			*out = se;
		found = true;
	}
	return found ? 0 : KEEL_ENOTFOUND;
}

/* ---- store ops: writes --------------------------------------------------- */

static int op_write_begin(void *impl)
{
	struct mem_store *s = impl;
	if (s->open)
		return KEEL_ESTATE;
	if (s->vol_count >= MEM_STORE_VOLATILE_BATCHES_MAX)
		return KEEL_EBUSY;
	s->open = true;
	s->batch_rc = 0;
	s->open_journal_start = s->journal_len;
	s->open_log_hi = 0;
	return 0;
}

static int op_set_ids(void *impl, uint64_t cluster_id, keel_node_id node_id)
{
	struct mem_store *s = impl;
	int rc = write_check(s);
	if (rc != 0)
		return rc;
	uint8_t rec[RECORD_IDS_BYTES];
	size_t n = record_ids_encode(cluster_id, node_id, rec, sizeof(rec));
	return meta_write(s, META_IDS, rec, n);
}

static int op_set_hard_state(void *impl, const struct raft_hard_state *hs)
{
	struct mem_store *s = impl;
	int rc = write_check(s);
	if (rc != 0)
		return rc;
	uint8_t rec[RECORD_HARD_BYTES];
	size_t n = record_hard_encode(hs, rec, sizeof(rec));
	return meta_write(s, META_HARD, rec, n);
}

static int op_set_applied(void *impl, uint64_t index)
{
	struct mem_store *s = impl;
	int rc = write_check(s);
	if (rc != 0)
		return rc;
	uint8_t rec[RECORD_APPLIED_BYTES];
	size_t n = record_applied_encode(index, rec, sizeof(rec));
	return meta_write(s, META_APPLIED, rec, n);
}

static int append_check(const struct mem_store *s, const struct entry *e,
			size_t n)
{
	if (e[0].index < s->log_first || e[0].index > log_last(s) + 1)
		return KEEL_EINVAL;
	if (n > MEM_STORE_LOG_ENTRIES_MAX)
		return KEEL_EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (record_entry_validate(&e[i]) != 0)
			return KEEL_EINVAL;
		if (e[i].index != e[0].index + i)
			return KEEL_EINVAL;
	}
	return 0;
}

static int op_log_append(void *impl, const struct entry *e, size_t n)
{
	struct mem_store *s = impl;
	int rc = write_check(s);
	if (rc != 0 || n == 0)
		return rc;
	rc = append_check(s, e, n);
	if (rc != 0)
		return rc;
	/* Allocate everything first (M3). */
	struct mem_log_rec **recs = calloc(n, sizeof(*recs));
	if (recs == NULL)
		return fail(s, KEEL_ENOMEM);
	for (size_t i = 0; i < n && rc == 0; i++) {
		size_t bytes = record_entry_bytes(&e[i]);
		recs[i] = malloc(sizeof(**recs) + bytes);
		if (recs[i] == NULL) {
			rc = KEEL_ENOMEM;
			break;
		}
		recs[i]->bytes =
			(uint32_t)record_entry_encode(&e[i], recs[i]->data, bytes);
	}
	if (rc == 0)
		rc = journal_reserve(s);
	if (rc == 0)
		rc = log_reserve(s, (uint32_t)n);
	struct mem_jop *j = NULL;
	if (rc == 0) {
		j = journal_push(s, JOP_LOG_APPEND);
		rc = log_cut_tail(s, e[0].index, &j->removed, &j->removed_count);
		if (rc != 0)
			s->journal_len--;
	}
	if (rc != 0) {
		log_recs_free(recs, (uint32_t)n);
		return fail(s, rc);
	}
	j->index = e[0].index;
	j->added_count = (uint32_t)n;
	for (size_t i = 0; i < n; i++) {
		s->log[s->log_head + s->log_count++] = recs[i];
		s->stats.log_records_written++;
		s->stats.log_bytes_written += recs[i]->bytes;
	}
	free(recs);
	s->open_log_hi = e[n - 1].index;
	return 0;
}

static int op_log_truncate(void *impl, uint64_t index)
{
	struct mem_store *s = impl;
	int rc = write_check(s);
	if (rc != 0)
		return rc;
	if (index < s->log_first)
		return KEEL_EINVAL;
	if (index > log_last(s))
		return 0;
	rc = journal_reserve(s);
	if (rc != 0)
		return fail(s, rc);
	struct mem_jop *j = journal_push(s, JOP_LOG_APPEND); /* adds nothing */
	rc = log_cut_tail(s, index, &j->removed, &j->removed_count);
	if (rc != 0) {
		s->journal_len--;
		return fail(s, rc);
	}
	j->index = index;
	return 0;
}

static int op_log_compact(void *impl, uint64_t index, uint64_t term,
			  const struct membership *m)
{
	struct mem_store *s = impl;
	int rc = write_check(s);
	if (rc != 0)
		return rc;
	if (index < s->log_first - 1 || record_membership_validate(m) != 0)
		return KEEL_EINVAL;
	uint8_t rec[RECORD_SNAP_BYTES_MAX];
	size_t bytes = record_snap_encode(index, term, m, rec, sizeof(rec));
	uint32_t k = index > log_last(s) ? s->log_count
					 : (uint32_t)(index + 1 - s->log_first);
	struct mem_log_rec **removed = NULL;
	if (k > 0) {
		removed = malloc((size_t)k * sizeof(*removed));
		if (removed == NULL)
			return fail(s, KEEL_ENOMEM);
	}
	rc = meta_write(s, META_SNAP, rec, bytes);
	if (rc == 0)
		rc = journal_reserve(s);
	if (rc != 0) {
		free(removed);
		return fail(s, rc); /* meta_write's undo stays journaled */
	}
	struct mem_jop *j = journal_push(s, JOP_LOG_COMPACT);
	j->index = s->log_first;
	j->removed = removed;
	j->removed_count = k;
	if (k > 0)
		memcpy(removed, s->log + s->log_head, (size_t)k * sizeof(*removed));
	s->log_head += k;
	s->log_count -= k;
	if (s->log_count == 0)
		s->log_head = 0;
	s->log_first = index + 1;
	return 0;
}

static int op_kv_put(void *impl, const uint8_t *key, uint32_t key_bytes,
		     const uint8_t *val, uint32_t val_bytes)
{
	struct mem_store *s = impl;
	int rc = write_check(s);
	if (rc != 0)
		return rc;
	if (!key_ok(key, key_bytes) || val_bytes > KEEL_VALUE_BYTES_MAX ||
	    (val_bytes > 0 && val == NULL))
		return KEEL_EINVAL;
	rc = map_write(s, &s->kv, key, key_bytes, val, val_bytes, false);
	if (rc == 0)
		s->stats.kv_puts++;
	return rc;
}

static int op_kv_del(void *impl, const uint8_t *key, uint32_t key_bytes)
{
	struct mem_store *s = impl;
	int rc = write_check(s);
	if (rc != 0)
		return rc;
	if (!key_ok(key, key_bytes))
		return KEEL_EINVAL;
	if (mem_map_get(&s->kv, key, key_bytes) == NULL)
		return KEEL_ENOTFOUND;
	rc = map_write(s, &s->kv, key, key_bytes, NULL, 0, true);
	if (rc == 0)
		s->stats.kv_dels++;
	return rc;
}

static int op_session_put(void *impl, const struct kv_session *se)
{
	struct mem_store *s = impl;
	int rc = write_check(s);
	if (rc != 0)
		return rc;
	if (se->client_id == 0 || se->status > KV_STALE_SEQ)
		return KEEL_EINVAL;
	uint8_t key[8], rec[RECORD_SESSION_BYTES];
	session_key(se->client_id, key);
	size_t n = record_session_encode(se, rec, sizeof(rec));
	return map_write(s, &s->sessions, key, 8, rec, (uint32_t)n, false);
}

static int op_session_del(void *impl, uint64_t client_id)
{
	struct mem_store *s = impl;
	int rc = write_check(s);
	if (rc != 0)
		return rc;
	uint8_t key[8];
	session_key(client_id, key);
	if (mem_map_get(&s->sessions, key, 8) == NULL)
		return KEEL_ENOTFOUND;
	return map_write(s, &s->sessions, key, 8, NULL, 0, true);
}

static int map_clear(struct mem_store *s, struct mem_map *m)
{
	struct mem_map *saved = malloc(sizeof(*saved));
	int rc = saved == NULL ? KEEL_ENOMEM : journal_reserve(s);
	if (rc != 0) {
		free(saved);
		return fail(s, rc);
	}
	*saved = *m;
	memset(m, 0, sizeof(*m));
	struct mem_jop *j = journal_push(s, JOP_MAP_CLEAR);
	j->map = m;
	j->saved = saved;
	return 0;
}

static int op_state_clear(void *impl)
{
	struct mem_store *s = impl;
	int rc = write_check(s);
	if (rc == 0)
		rc = map_clear(s, &s->kv);
	if (rc == 0)
		rc = map_clear(s, &s->sessions);
	return rc;
}

/* ---- staging (core/store.h stage_*) --------------------------------------- */

/* Journaled stage_puts = n. */
static int stage_puts_set(struct mem_store *s, uint64_t n)
{
	int rc = journal_reserve(s);
	if (rc != 0)
		return fail(s, rc);
	struct mem_jop *j = journal_push(s, JOP_STAGE_PUTS);
	j->index = s->stage_puts;
	s->stage_puts = n;
	return 0;
}

/* Journaled exchange of two maps' contents. */
static int map_exchange(struct mem_store *s, struct mem_map *a,
			struct mem_map *b)
{
	int rc = journal_reserve(s);
	if (rc != 0)
		return fail(s, rc);
	struct mem_jop *j = journal_push(s, JOP_MAP_SWAP);
	j->map = a;
	j->saved = b;
	struct mem_map t = *a;
	*a = *b;
	*b = t;
	return 0;
}

static int stage_empty(struct mem_store *s)
{
	int rc = map_clear(s, &s->stage_kv);
	if (rc == 0)
		rc = map_clear(s, &s->stage_sessions);
	if (rc == 0)
		rc = stage_puts_set(s, 0);
	return rc;
}

static int op_stage_clear(void *impl)
{
	struct mem_store *s = impl;
	int rc = write_check(s);
	return rc != 0 ? rc : stage_empty(s);
}

static int op_stage_put(void *impl, const struct store_item *it)
{
	struct mem_store *s = impl;
	int rc = write_check(s);
	if (rc != 0)
		return rc;
	if (!store_item_valid(it))
		return KEEL_EINVAL;
	if (it->kind == STORE_ITEM_KV) {
		rc = map_write(s, &s->stage_kv, it->key, it->key_bytes, it->val,
			       it->val_bytes, false);
	} else {
		uint8_t key[8], rec[RECORD_SESSION_BYTES];
		session_key(it->session.client_id, key);
		size_t n = record_session_encode(&it->session, rec, sizeof(rec));
		rc = map_write(s, &s->stage_sessions, key, 8, rec, (uint32_t)n,
			       false);
	}
	return rc != 0 ? rc : stage_puts_set(s, s->stage_puts + 1);
}

static int op_stage_install(void *impl)
{
	struct mem_store *s = impl;
	int rc = write_check(s);
	if (rc == 0)
		rc = map_exchange(s, &s->kv, &s->stage_kv);
	if (rc == 0)
		rc = map_exchange(s, &s->sessions, &s->stage_sessions);
	/* The staging maps now hold the old state: drop it. */
	return rc != 0 ? rc : stage_empty(s);
}

static int op_stage_count(void *impl, uint64_t *count)
{
	struct mem_store *s = impl;
	*count = s->stage_puts;
	return 0;
}

static void op_write_abort(void *impl)
{
	struct mem_store *s = impl;
	if (!s->open)
		return;
	undo_to(s, s->open_journal_start);
	s->open = false;
	s->batch_rc = 0;
	s->stats.batches_aborted++;
}

static int vol_reserve(struct mem_store *s)
{
	if (s->vol_count < s->vol_cap)
		return 0;
	uint32_t cap = s->vol_cap == 0 ? 64u : s->vol_cap * 2;
	struct mem_vbatch *v = realloc(s->vol, (size_t)cap * sizeof(*v));
	if (v == NULL)
		return KEEL_ENOMEM;
	s->vol = v;
	s->vol_cap = cap;
	return 0;
}

static int op_write_commit(void *impl)
{
	struct mem_store *s = impl;
	if (!s->open)
		return KEEL_ESTATE;
	int rc = s->batch_rc;
	if (rc == 0)
		rc = vol_reserve(s);
	if (rc != 0) {
		op_write_abort(s);
		return rc;
	}
	KEEL_ASSERT(s->vol_count < MEM_STORE_VOLATILE_BATCHES_MAX); /* begin */
	s->vol[s->vol_count++] = (struct mem_vbatch){
		.journal_end = s->journal_len,
		.log_hi = s->open_log_hi,
	};
	s->open = false;
	s->commit_id++;
	s->stats.batches_committed++;
	return 0;
}

int mem_store_sync_upto(struct mem_store *s, uint64_t id)
{
	if (s->open)
		return KEEL_ESTATE;
	uint64_t durable = s->commit_id - s->vol_count;
	if (id <= durable)
		return 0;
	if (id > s->commit_id)
		id = s->commit_id;
	uint32_t k = (uint32_t)(id - durable);
	journal_settle(s, s->vol[k - 1].journal_end);
	memmove(s->vol, s->vol + k, (size_t)(s->vol_count - k) * sizeof(*s->vol));
	s->vol_count -= k;
	return 0;
}

static int op_sync(void *impl)
{
	struct mem_store *s = impl;
	int rc = mem_store_sync_upto(s, s->commit_id);
	if (rc == 0)
		s->stats.syncs++;
	return rc;
}

/* ---- crash, corruption, digest ------------------------------------------- */

void mem_store_crash(struct mem_store *s, uint64_t tear)
{
	op_write_abort(s);
	s->stats.crashes++;
	uint32_t keep = 0;
	if (tear != 0 && s->vol_count > 0)
		keep = 1 + (uint32_t)(tear % s->vol_count);
	undo_to(s, keep == 0 ? 0 : s->vol[keep - 1].journal_end);
	if (keep > 0) {
		uint64_t hi = s->vol[keep - 1].log_hi;
		if (hi != 0 && hi >= s->log_first && hi <= log_last(s)) {
			struct mem_log_rec *r = log_at(s, hi);
			r->bytes = (uint32_t)((tear >> 16) % r->bytes);
			s->stats.tears++;
		}
	}
	journal_settle(s, s->journal_len);
	s->vol_count = 0; /* commit ids keep increasing across crashes */
}

int mem_store_corrupt(struct mem_store *s, uint64_t index, uint64_t where)
{
	if (index < s->log_first || index > log_last(s))
		return KEEL_ENOTFOUND;
	for (uint32_t i = 0; i < s->journal_len; i++)
		if (s->journal[i].kind == JOP_LOG_APPEND &&
		    s->journal[i].index <= index)
			return KEEL_ENOTFOUND; /* written since the last sync */
	struct mem_log_rec *r = log_at(s, index);
	if (r->bytes == 0)
		return KEEL_ENOTFOUND;
	r->data[where % r->bytes] ^= (uint8_t)(1u << ((where >> 32) % 8));
	s->stats.corruptions++;
	return 0;
}

uint64_t mem_store_digest(struct mem_store *s)
{
	struct store_meta m;
	uint64_t applied = op_meta_get(s, &m) == 0 ? m.applied_index : ~0ull;
	return s->kv.digest * 3 + s->sessions.digest * 5 + applied * 7 +
	       s->kv.count * 11 + s->sessions.count * 13;
}

uint64_t mem_store_kv_count(const struct mem_store *s)
{
	return s->kv.count;
}

uint64_t mem_store_commit_id(const struct mem_store *s)
{
	return s->commit_id;
}

/* ---- lifecycle ----------------------------------------------------------- */

int mem_store_init(struct mem_store *s)
{
	memset(s, 0, sizeof(*s));
	s->log_first = 1;
	return 0;
}

void mem_store_close(struct mem_store *s)
{
	op_write_abort(s);
	mem_store_snap_end(s);
	journal_settle(s, s->journal_len);
	mem_map_free(&s->meta);
	mem_map_free(&s->kv);
	mem_map_free(&s->sessions);
	mem_map_free(&s->stage_kv);
	mem_map_free(&s->stage_sessions);
	for (uint32_t i = 0; i < s->log_count; i++)
		free(s->log[s->log_head + i]);
	free(s->log);
	free(s->journal);
	free(s->vol);
	memset(s, 0, sizeof(*s));
}

static const struct store_ops mem_store_ops = {
	.meta_get = op_meta_get,
	.log_bounds = op_log_bounds,
	.log_get = op_log_get,
	.kv_get = op_kv_get,
	.session_get = op_session_get,
	.session_count = op_session_count,
	.session_oldest = op_session_oldest,
	.write_begin = op_write_begin,
	.set_ids = op_set_ids,
	.set_hard_state = op_set_hard_state,
	.log_append = op_log_append,
	.log_truncate = op_log_truncate,
	.log_compact = op_log_compact,
	.kv_put = op_kv_put,
	.kv_del = op_kv_del,
	.session_put = op_session_put,
	.session_del = op_session_del,
	.set_applied = op_set_applied,
	.write_commit = op_write_commit,
	.write_abort = op_write_abort,
	.sync = op_sync,
	.snap_begin = mem_store_snap_begin,
	.snap_next = mem_store_snap_next,
	.snap_end = mem_store_snap_end,
	.state_clear = op_state_clear,
	.stage_clear = op_stage_clear,
	.stage_put = op_stage_put,
	.stage_install = op_stage_install,
	.stage_count = op_stage_count,
};

void mem_store_bind(struct mem_store *s, struct store *out)
{
	out->ops = &mem_store_ops;
	out->impl = s;
}
