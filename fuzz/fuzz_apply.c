/*
 * fuzz_apply.c: the client request path up to the state machine. Client
 * request payloads (and raw command-entry bytes) are decoded by the codec,
 * writes are put into log entries as the node does (codec_batch_encode) and
 * applied by core/kv over io_sim's in-memory store, reads go to kv_get; a
 * small reference model of keel's KV semantics (kv.h: put, del, cas, append,
 * sessions with retries and stale sequence numbers) predicts every result.
 *
 * Input: records [flags][length][length bytes]. flags bit 0 clear: the bytes
 * are a client request payload; set: the bytes are an ENTRY_COMMAND's data.
 *
 * Properties:
 *  1. a request the codec accepts applies without error (kv_apply's own
 *     decode agrees with the codec's validation);
 *  2. raw entry data either applies (and then decodes as a valid batch) or
 *     is refused with KEEL_ECORRUPT and changes nothing (applied index);
 *  3. every result (status, duplicate) and every read matches the model.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/err.h"
#include "../core/kv.h"
#include "../io_sim/mem_store.h"
#include "fuzz.h"

#define FA_KEYS_MAX 256u     /* model keys */
#define FA_SESSIONS_MAX 256u /* model sessions (kv's table holds 4096) */
#define FA_RESULTS_MAX 256u  /* results of one apply */

struct fa_key {
	uint8_t *key, *val;
	uint32_t key_bytes, val_bytes;
	bool present;
};

struct fa_session {
	uint64_t client_id, seq;
	uint32_t status;
};

struct fa_model {
	struct fa_key keys[FA_KEYS_MAX];
	uint32_t key_count;
	struct fa_session sessions[FA_SESSIONS_MAX];
	uint32_t session_count;
	bool full; /* out of model room: stop comparing */
};

struct fa_results {
	struct kv_result r[FA_RESULTS_MAX];
	uint32_t count;
};

static void on_result(void *ctx, const struct kv_result *res)
{
	struct fa_results *rs = ctx;
	FUZZ_CHECK(rs->count < FA_RESULTS_MAX);
	rs->r[rs->count++] = *res;
}

static struct fa_key *model_key(struct fa_model *m, const uint8_t *k, uint32_t n)
{
	for (uint32_t i = 0; i < m->key_count; i++)
		if (m->keys[i].key_bytes == n && memcmp(m->keys[i].key, k, n) == 0)
			return &m->keys[i];
	if (m->key_count == FA_KEYS_MAX) {
		m->full = true;
		return NULL;
	}
	struct fa_key *x = &m->keys[m->key_count++];
	memset(x, 0, sizeof(*x));
	x->key = malloc(n);
	FUZZ_CHECK(x->key != NULL);
	memcpy(x->key, k, n);
	x->key_bytes = n;
	return x;
}

static void key_set(struct fa_key *x, const uint8_t *a, uint32_t an,
		    const uint8_t *b, uint32_t bn)
{
	uint8_t *v = malloc(an + bn + 1);
	FUZZ_CHECK(v != NULL);
	if (an > 0)
		memcpy(v, a, an);
	if (bn > 0)
		memcpy(v + an, b, bn);
	free(x->val);
	x->val = v;
	x->val_bytes = an + bn;
	x->present = true;
}

/* The status of a write on the model's key state (kv.h semantics). */
static uint32_t model_op(struct fa_key *x, const struct kv_command *c)
{
	switch (c->op) {
	case KV_PUT:
		key_set(x, c->value, c->value_bytes, NULL, 0);
		return KV_OK;
	case KV_DEL:
		if (!x->present)
			return KV_NOT_FOUND;
		x->present = false;
		return KV_OK;
	case KV_CAS:
		if (c->cas_absent ? x->present
				  : !x->present || x->val_bytes != c->expected_bytes ||
				    (c->expected_bytes > 0 &&
				     memcmp(x->val, c->expected, c->expected_bytes) != 0))
			return KV_CAS_FAILED;
		key_set(x, c->value, c->value_bytes, NULL, 0);
		return KV_OK;
	case KV_APPEND: {
		uint32_t cur = x->present ? x->val_bytes : 0;
		if ((uint64_t)cur + c->value_bytes > KEEL_VALUE_BYTES_MAX)
			return KV_TOO_BIG;
		key_set(x, x->present ? x->val : NULL, cur, c->value, c->value_bytes);
		return KV_OK;
	}
	default:
		fuzz_fail("a batch holds only writes", __FILE__, __LINE__);
	}
}

/* Apply c to the model; false when the model is out of room. */
static bool model_write(struct fa_model *m, const struct kv_command *c,
			uint32_t *status, bool *duplicate)
{
	struct fa_session *s = NULL;
	for (uint32_t i = 0; i < m->session_count; i++)
		if (m->sessions[i].client_id == c->client_id)
			s = &m->sessions[i];
	*duplicate = false;
	if (s != NULL && c->seq == s->seq) {
		*duplicate = true;
		*status = s->status;
		return true;
	}
	if (s != NULL && c->seq < s->seq) {
		*status = KV_STALE_SEQ;
		return true;
	}
	if (s == NULL) {
		if (m->session_count == FA_SESSIONS_MAX)
			return false;
		s = &m->sessions[m->session_count++];
		s->client_id = c->client_id;
	}
	struct fa_key *x = model_key(m, c->key, c->key_bytes);
	if (x == NULL)
		return false;
	*status = model_op(x, c);
	s->seq = c->seq;
	s->status = *status;
	return true;
}

static uint64_t applied_index(struct store *st)
{
	struct store_meta meta;
	FUZZ_CHECK(st->ops->meta_get(st->impl, &meta) == 0);
	return meta.applied_index;
}

/* Apply one command entry; compare results with the model (property 3). */
static void apply_entry(struct kv *kv, struct store *st, struct fa_model *m,
			const uint8_t *data, uint32_t n, bool from_request)
{
	static struct fa_results rs;
	struct entry e = { .term = 1, .index = applied_index(st) + 1,
			   .type = ENTRY_COMMAND, .data = data, .data_bytes = n };
	rs.count = 0;
	int rc = kv_apply(kv, &e, 1, on_result, &rs);
	static struct kv_command cmds[KEEL_BATCH_COMMANDS_MAX];
	uint32_t count;
	struct codec_decoded d;
	int drc = codec_batch_decode(data, n, NULL, cmds, &count, &d);
	if (rc != 0) {
		if (from_request)
			fprintf(stderr, "kv_apply: %s\n", keel_err_name(rc));
		FUZZ_CHECK(!from_request); /* property 1 */
		FUZZ_CHECK(rc == KEEL_ECORRUPT && drc != 0); /* property 2 */
		FUZZ_CHECK(applied_index(st) == e.index - 1);
		return;
	}
	FUZZ_CHECK(drc == 0);
	FUZZ_CHECK(applied_index(st) == e.index);
	FUZZ_CHECK(rs.count == count);
	for (uint32_t i = 0; i < count && !m->full; i++) {
		uint32_t status;
		bool dup;
		if (!model_write(m, &cmds[i], &status, &dup)) {
			m->full = true;
			break;
		}
		FUZZ_CHECK(rs.r[i].client_id == cmds[i].client_id);
		FUZZ_CHECK(rs.r[i].seq == cmds[i].seq);
		FUZZ_CHECK(rs.r[i].index == e.index);
		FUZZ_CHECK(rs.r[i].status == status);
		FUZZ_CHECK(rs.r[i].duplicate == dup);
	}
	codec_decoded_free(&d);
}

static void get(struct kv *kv, struct fa_model *m, const struct kv_command *c)
{
	const uint8_t *val;
	uint32_t val_bytes;
	int rc = kv_get(kv, c->key, c->key_bytes, &val, &val_bytes);
	FUZZ_CHECK(rc == 0 || rc == KEEL_ENOTFOUND);
	struct fa_key *x = model_key(m, c->key, c->key_bytes);
	if (x == NULL || m->full)
		return;
	FUZZ_CHECK((rc == 0) == x->present);
	if (rc == 0)
		FUZZ_CHECK(val_bytes == x->val_bytes &&
			   (val_bytes == 0 || memcmp(val, x->val, val_bytes) == 0));
}

static void request(struct kv *kv, struct store *st, struct fa_model *m,
		    const uint8_t *p, uint32_t n)
{
	struct client_request r;
	struct codec_decoded d;
	if (codec_request_decode(p, n, NULL, &r, &d) != 0)
		return;
	if (r.kind == CLIENT_REQ_KV && r.cmd.op == KV_GET) {
		get(kv, m, &r.cmd);
	} else if (r.kind == CLIENT_REQ_KV) {
		/* The node's path: one command becomes one entry's batch. */
		static uint8_t buf[KEEL_ENTRY_BYTES_MAX];
		int bytes = codec_batch_encode(&r.cmd, 1, buf, sizeof(buf));
		FUZZ_CHECK(bytes > 0);
		apply_entry(kv, st, m, buf, (uint32_t)bytes, true);
	}
	codec_decoded_free(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fa_model m;
	struct mem_store ms;
	struct store st;
	struct kv kv;
	memset(&m, 0, sizeof(m));
	FUZZ_CHECK(mem_store_init(&ms) == 0);
	mem_store_bind(&ms, &st);
	kv_init(&kv, &st, NULL);
	size_t off = 0;
	while (size - off >= 2 && !m.full) {
		uint8_t flags = data[off];
		uint32_t n = data[off + 1];
		off += 2;
		if (n > size - off)
			n = (uint32_t)(size - off);
		if (flags & 1)
			apply_entry(&kv, &st, &m, data + off, n, false);
		else
			request(&kv, &st, &m, data + off, n);
		off += n;
	}
	mem_store_close(&ms);
	for (uint32_t i = 0; i < m.key_count; i++) {
		free(m.keys[i].key);
		free(m.keys[i].val);
	}
	return 0;
}
