/*
 * sim_node.c: one simulated keel node: raft + kv + mem_store + disk model,
 * driven the way core/raft.h's driver loop says, plus the client request
 * path of the real node.
 *
 * Invariants:
 *  N1 A node is UP (raft live, ticking), DOWN (crashed, restart pending) or
 *     FAILED (refused a corrupt record; stays down for the run).
 *  N2 Every event carries the node's epoch; a crash bumps it, so syncs and
 *     ticks scheduled before the crash never act after it.
 *  N3 Group commit, as the real node (node/disk.c): at most one storage
 *     job is in flight (one sync, SIM_SYNCS_MAX); the writes of every ready
 *     handled meanwhile collect into the next job, submitted when it
 *     completes. after_persist messages, raft_persisted() and the answers
 *     of applied writes and served reads wait for the job that carries
 *     their ready's writes (or, holding no write, for the pending ones).
 *  N4 Committed entries are applied exactly once per life, consecutively
 *     from the store's applied index; every applied entry goes through the
 *     cross-node checks (sim_check.c).
 *  N5 A client write gets an answer only from the node that accepted it,
 *     when its command is applied there; NOT_LEADER and BUSY only when it
 *     was never proposed.
 */
#include <stdlib.h>
#include <string.h>

#include "../core/assert.h"
#include "../core/codec.h"
#include "../core/err.h"
#include "../io_sim/panic_ctx.h"
#include "sim.h"

#define SIM_READY_LOOPS_MAX 100000u
#define SIM_CLUSTER_ID 0x6b65656cull

static const struct keel_alloc sim_alloc = {0};

static char *node_name(const struct sim_node *n, char buf[24])
{
	snprintf(buf, 24, "n%llu", (unsigned long long)n->id);
	return buf;
}

#define NTRACE(s, n, ...)                                               \
	do {                                                            \
		if ((s)->trace.f) {                                     \
			char nb_[24];                                   \
			simtrace_text(&(s)->trace, sim_now(s),          \
				      node_name((n), nb_), __VA_ARGS__); \
		}                                                       \
	} while (0)

int sim_node_init(struct sim *s, struct sim_node *n, uint32_t idx)
{
	memset(n, 0, sizeof(*n));
	n->idx = idx;
	n->state = NODE_DOWN;
	n->raft = calloc(1, raft_sizeof());
	if (n->raft == NULL)
		return KEEL_ENOMEM;
	int rc = mem_store_init(&n->ms);
	if (rc != 0)
		return rc;
	mem_store_bind(&n->ms, &n->store);
	simdisk_init(&n->disk, &s->faults.disk);
	return 0;
}

static void job_free(struct sim_persist *j)
{
	for (uint32_t i = 0; i < j->msg_count; i++)
		free(j->msgs[i]);
	free(j->msgs);
	memset(j, 0, sizeof(*j));
}

static void persist_clear(struct sim_node *n)
{
	job_free(&n->job);
	job_free(&n->next);
	n->syncs_in_flight = 0;
}

void sim_node_free(struct sim_node *n)
{
	persist_clear(n);
	snap_reader_close(&n->snap.sr); /* an open stream's copy and buffers */
	if (n->raft_live)
		raft_close(n->raft);
	n->raft_live = false;
	free(n->raft);
	n->raft = NULL;
	mem_store_close(&n->ms);
	free(n->res_hash);
	n->res_hash = NULL;
}

keel_node_id sim_node_leader(const struct sim_node *n)
{
	if (n->state != NODE_UP)
		return KEEL_NODE_NONE;
	struct raft_status st;
	raft_status(n->raft, &st);
	return st.leader;
}

bool sim_node_busy(const struct sim_node *n, uint64_t now_ns)
{
	return n->paused && now_ns < n->paused_until_ns;
}

/* ---- sending ------------------------------------------------------------ */

static struct sim_pkt *encode_msg(struct sim *s, struct sim_node *n,
				  const struct msg *m)
{
	/* Most messages fit the scratch buffer: size them only when not. */
	uint8_t *buf = sim_scratch(s, 0);
	int len = codec_msg_encode(m, buf, s->scratch_cap);
	if (len == KEEL_ETOOBIG) {
		size_t need = codec_msg_encoded_bytes(m);
		buf = sim_scratch(s, need);
		len = codec_msg_encode(m, buf, need);
	}
	if (len < 0) {
		sim_fail(s, "codec", "n%u cannot encode msg type %u: %s", (unsigned)n->id,
			 m->type, keel_err_name(len));
		return NULL;
	}
	struct sim_node *to = sim_node_by_id(s, m->to);
	if (to == NULL)
		return NULL; /* a member without a running node (yet): lost */
	return sim_pkt_new(n->idx, to->idx, PKT_PEER, buf, (uint32_t)len);
}

static bool job_hold(struct sim *s, struct sim_node *n, struct sim_pkt *pkt);
static void drain(struct sim *s, struct sim_node *n);

/* An answer; hold: it leaves with the next storage job (N3). */
static void respond_to(struct sim *s, struct sim_node *n, uint32_t client_ep,
		       uint64_t request_id, uint32_t status, const uint8_t *val,
		       uint32_t val_bytes, bool stale, bool hold)
{
	struct client_response r;
	memset(&r, 0, sizeof(r));
	r.request_id = request_id;
	r.status = status;
	r.stale = stale;
	r.value = val;
	r.value_bytes = val_bytes;
	if (status == CLIENT_NOT_LEADER)
		r.leader_id = sim_node_leader(n);
	size_t need = codec_response_encoded_bytes(&r);
	uint8_t *buf = sim_scratch(s, need);
	int len = codec_response_encode(&r, buf, need);
	if (len < 0) {
		sim_fail(s, "codec", "n%u cannot encode a response: %s", (unsigned)n->id,
			 keel_err_name(len));
		return;
	}
	struct sim_pkt *pkt = sim_pkt_new(n->idx, client_ep, PKT_RESPONSE, buf,
					  (uint32_t)len);
	if (hold)
		job_hold(s, n, pkt);
	else
		sim_pkt_send(s, pkt);
}

static void respond(struct sim *s, struct sim_node *n, uint32_t client_ep,
		    uint64_t request_id, uint32_t status, const uint8_t *val,
		    uint32_t val_bytes, bool stale)
{
	respond_to(s, n, client_ep, request_id, status, val, val_bytes, stale,
		   false);
}

/* ---- persistence -------------------------------------------------------- */

/* A job is in flight, or the next one holds something. */
static bool job_pending(const struct sim_node *n)
{
	return n->syncs_in_flight > 0 || n->next.commit_id != 0 ||
	       n->next.msg_count > 0;
}

/* Hold pkt until the next job completes. */
static bool job_hold(struct sim *s, struct sim_node *n, struct sim_pkt *pkt)
{
	struct sim_persist *j = &n->next;
	if (j->msg_count == SIM_JOB_HELD_MAX) {
		free(pkt);
		sim_fail(s, "sim_limit", "n%u: more than %u messages held by a job",
			 (unsigned)n->id, SIM_JOB_HELD_MAX);
		return false;
	}
	if (j->msg_count == j->msg_cap) {
		uint32_t cap = j->msg_cap == 0 ? 16 : 2 * j->msg_cap;
		struct sim_pkt **m = realloc(j->msgs, cap * sizeof(*m));
		if (m == NULL) {
			free(pkt);
			sim_fail(s, "sim_limit", "out of memory holding messages");
			return false;
		}
		j->msgs = m;
		j->msg_cap = cap;
	}
	j->msgs[j->msg_count++] = pkt;
	return true;
}

static void job_release(struct sim *s, struct sim_persist *j)
{
	for (uint32_t i = 0; i < j->msg_count; i++)
		sim_pkt_send(s, j->msgs[i]);
	free(j->msgs);
	memset(j, 0, sizeof(*j));
}

/* When the disk is idle, the collected job leaves: its sync is issued, or,
 * holding no write, its messages leave at once (all before is durable). */
static void job_submit(struct sim *s, struct sim_node *n)
{
	if (n->syncs_in_flight > 0 || !job_pending(n))
		return;
	if (n->next.commit_id == 0) {
		KEEL_ASSERT(!n->next.has_ack);
		job_release(s, &n->next);
		return;
	}
	if (n->syncs_in_flight >= SIM_SYNCS_MAX) { /* by construction: never */
		sim_fail(s, "sim_limit", "n%u: more than %u syncs in flight",
			 (unsigned)n->id, SIM_SYNCS_MAX);
		return;
	}
	n->job = n->next;
	memset(&n->next, 0, sizeof(n->next));
	n->syncs_in_flight++;
	uint64_t at = simdisk_sync(&n->disk, &s->rng_disk, sim_now(s));
	sim_schedule(s, at, EV_DISK, n->idx, n->epoch, NULL);
}

static int store_fail(struct sim *s, struct sim_node *n, const char *what, int rc)
{
	sim_fail(s, "store", "n%u: %s failed: %s", (unsigned)n->id, what,
		 keel_err_name(rc));
	return rc;
}

static int write_ready(struct sim *s, struct sim_node *n,
		       const struct raft_ready *rd)
{
	const struct store_ops *op = n->store.ops;
	void *st = n->store.impl;
	int rc = op->write_begin(st);
	if (rc != 0)
		return store_fail(s, n, "write_begin", rc);
	if (rd->hard_state_changed &&
	    (rc = op->set_hard_state(st, &rd->hard_state)) != 0)
		return store_fail(s, n, "set_hard_state", rc);
	if (rd->entry_count > 0 &&
	    (rc = op->log_append(st, rd->entries, rd->entry_count)) != 0)
		return store_fail(s, n, "log_append", rc);
	if ((rc = op->write_commit(st)) != 0)
		return store_fail(s, n, "write_commit", rc);
	return 0;
}

/* ---- apply -------------------------------------------------------------- */

static struct sim_waiter *find_write(struct sim_node *n, uint64_t client_id,
				     uint64_t seq)
{
	for (uint32_t i = 0; i < n->waiter_count; i++) {
		struct sim_waiter *w = &n->waiters[i];
		if (w->kind == WAIT_WRITE && w->client_id == client_id &&
		    w->seq == seq)
			return w;
	}
	return NULL;
}

static void waiter_remove(struct sim_node *n, struct sim_waiter *w)
{
	uint32_t i = (uint32_t)(w - n->waiters);
	KEEL_ASSERT(i < n->waiter_count);
	n->waiters[i] = n->waiters[--n->waiter_count];
}

struct apply_ctx {
	struct sim *s;
	struct sim_node *n;
};

static void on_result(void *ctx, const struct kv_result *res)
{
	struct apply_ctx *a = ctx;
	struct sim_node *n = a->n;
	KEEL_ASSERT(res->index >= n->res_first);
	uint64_t k = res->index - n->res_first;
	KEEL_ASSERT(k < n->res_hash_cap);
	uint64_t h = n->res_hash[k];
	h = simrng_mix(h ^ res->client_id);
	h = simrng_mix(h ^ res->seq);
	h = simrng_mix(h ^ ((uint64_t)res->status << 1 | res->duplicate));
	n->res_hash[k] = h;
	sim_check_effect(a->s, res->client_id, res->seq, res->status,
			 res->duplicate);
	struct sim_waiter *w;
	while ((w = find_write(n, res->client_id, res->seq)) != NULL) {
		sim_check_acked(a->s, res->index);
		respond_to(a->s, n, w->client_ep, w->request_id,
			   kv_status_to_client(res->status), NULL, 0, false,
			   true); /* kv_apply wrote: the next job holds it */
		waiter_remove(n, w);
	}
}

static uint64_t entry_hash(const struct entry *e)
{
	uint64_t h = simrng_mix(e->term ^ ((uint64_t)e->type << 56));
	h = simrng_mix(h ^ e->index);
	for (uint32_t i = 0; i < e->data_bytes; i++)
		h = (h ^ e->data[i]) * 0x100000001b3ull;
	return simrng_mix(h ^ e->data_bytes);
}

static void node_apply(struct sim *s, struct sim_node *n,
		       const struct entry *es, size_t count)
{
	if (es[0].index != n->applied + 1) {
		sim_fail(s, "apply_gap", "n%u: applying %llu after %llu",
			 (unsigned)n->id, (unsigned long long)es[0].index,
			 (unsigned long long)n->applied);
		return;
	}
	if (count > n->res_hash_cap) {
		uint64_t *h = realloc(n->res_hash, count * sizeof(*h));
		if (h == NULL) {
			sim_fail(s, "sim_limit", "out of memory");
			return;
		}
		n->res_hash = h;
		n->res_hash_cap = count;
	}
	memset(n->res_hash, 0, count * sizeof(uint64_t));
	n->res_first = es[0].index;
	struct apply_ctx a = {s, n};
	int rc = kv_apply(&n->kv, es, count, on_result, &a);
	if (rc != 0) {
		sim_fail(s, "apply", "n%u: kv_apply %llu..%llu: %s", (unsigned)n->id,
			 (unsigned long long)es[0].index,
			 (unsigned long long)es[count - 1].index,
			 keel_err_name(rc));
		return;
	}
	for (size_t i = 0; i < count; i++) {
		sim_check_applied(s, n, &es[i], simrng_mix(entry_hash(&es[i]) ^
							   n->res_hash[i]));
		if (es[i].type == ENTRY_CONFIG)
			sim_cfg_committed(s, &es[i]);
	}
	n->applied = es[count - 1].index;
	sim_check_state_at(s, n, n->applied, mem_store_digest(&n->ms));
	/* The apply batch is durable once the next job's sync covers it. */
	n->next.commit_id = mem_store_commit_id(&n->ms);
	n->next.applied = n->applied;
}

/* ---- reads and writes from clients -------------------------------------- */

static void serve_reads(struct sim *s, struct sim_node *n)
{
	for (uint32_t i = 0; i < n->waiter_count;) {
		struct sim_waiter *w = &n->waiters[i];
		if (w->kind != WAIT_READ || !w->has_index ||
		    w->read_index > n->applied) {
			i++;
			continue;
		}
		const uint8_t *val = NULL;
		uint32_t vb = 0;
		int rc = kv_get(&n->kv, w->key, w->key_bytes, &val, &vb);
		bool hold = job_pending(n); /* served by the pending job */
		if (rc == 0)
			respond_to(s, n, w->client_ep, w->request_id, CLIENT_OK,
				   val, vb, false, hold);
		else if (rc == KEEL_ENOTFOUND)
			respond_to(s, n, w->client_ep, w->request_id,
				   CLIENT_NOT_FOUND, NULL, 0, false, hold);
		else
			store_fail(s, n, "kv_get", rc);
		waiter_remove(n, w);
	}
}

/* Leadership lost: writes in flight have an unknown outcome; reads that
 * were not confirmed are simply not served. */
static void fail_waiters(struct sim *s, struct sim_node *n)
{
	for (uint32_t i = 0; i < n->waiter_count; i++) {
		struct sim_waiter *w = &n->waiters[i];
		if (w->kind == WAIT_READ && w->has_index)
			continue;
		respond(s, n, w->client_ep, w->request_id, CLIENT_UNAVAILABLE,
			NULL, 0, false);
		w->kind = 0;
	}
	uint32_t k = 0;
	for (uint32_t i = 0; i < n->waiter_count; i++)
		if (n->waiters[i].kind != 0)
			n->waiters[k++] = n->waiters[i];
	n->waiter_count = k;
}

static void fail_batch(struct sim *s, struct sim_node *n, uint32_t status)
{
	for (uint32_t i = 0; i < n->batch_count; i++) {
		struct sim_waiter *w;
		while ((w = find_write(n, n->batch[i].client_id,
				       n->batch[i].seq)) != NULL) {
			respond(s, n, w->client_ep, w->request_id, status, NULL,
				0, false);
			waiter_remove(n, w);
		}
	}
	n->batch_count = 0;
}

/* Propose the gathered client writes as one entry. Group commit: only when
 * no sync is in flight, or the batch is full. Returns whether it proposed. */
static bool flush_batch(struct sim *s, struct sim_node *n)
{
	if (n->batch_count == 0)
		return false;
	if (n->syncs_in_flight > 0 && n->batch_count < SIM_BATCH_MAX)
		return false;
	size_t need = codec_batch_encoded_bytes(n->batch, n->batch_count);
	uint8_t *buf = sim_scratch(s, need);
	int len = codec_batch_encode(n->batch, n->batch_count, buf, need);
	if (len < 0) {
		sim_fail(s, "codec", "n%u: batch encode: %s", (unsigned)n->id,
			 keel_err_name(len));
		return false;
	}
	uint64_t index = 0;
	int rc = raft_propose(n->raft, ENTRY_COMMAND, buf, (uint32_t)len, &index);
	if (rc == 0) {
		NTRACE(s, n, "propose %u commands at %llu", n->batch_count,
		       (unsigned long long)index);
		sim_nemesis_leader_hook(s, n);
		n->batch_count = 0;
		return true;
	}
	if (rc == KEEL_ENOTLEADER)
		fail_batch(s, n, CLIENT_NOT_LEADER);
	else if (rc == KEEL_EBUSY || rc == KEEL_ESTATE)
		fail_batch(s, n, CLIENT_BUSY);
	else
		sim_fail(s, "propose", "n%u: raft_propose: %s", (unsigned)n->id,
			 keel_err_name(rc));
	return false;
}

static bool copy_bytes(uint8_t *dst, size_t *used, size_t cap,
		       const uint8_t *src, uint32_t len, const uint8_t **out)
{
	if (*used + len > cap)
		return false;
	if (len > 0)
		memcpy(dst + *used, src, len);
	*out = dst + *used;
	*used += len;
	return true;
}

static void request_write(struct sim *s, struct sim_node *n, uint32_t ep,
			  const struct client_request *r)
{
	if (n->batch_count == SIM_BATCH_MAX || n->waiter_count == SIM_WAITERS_MAX) {
		respond(s, n, ep, r->request_id, CLIENT_BUSY, NULL, 0, false);
		return;
	}
	struct kv_command *c = &n->batch[n->batch_count];
	uint8_t *mem = n->batch_bytes[n->batch_count];
	size_t used = 0, cap = sizeof(n->batch_bytes[0]);
	*c = r->cmd;
	if (!copy_bytes(mem, &used, cap, r->cmd.key, r->cmd.key_bytes, &c->key) ||
	    !copy_bytes(mem, &used, cap, r->cmd.value, r->cmd.value_bytes,
			&c->value) ||
	    !copy_bytes(mem, &used, cap, r->cmd.expected, r->cmd.expected_bytes,
			&c->expected)) {
		respond(s, n, ep, r->request_id, CLIENT_BAD_REQUEST, NULL, 0, false);
		return;
	}
	if (c->value_bytes == 0)
		c->value = NULL;
	if (c->expected_bytes == 0)
		c->expected = NULL;
	n->batch_count++;
	struct sim_waiter *w = &n->waiters[n->waiter_count++];
	memset(w, 0, sizeof(*w));
	w->kind = WAIT_WRITE;
	w->client_ep = ep;
	w->request_id = r->request_id;
	w->client_id = r->cmd.client_id;
	w->seq = r->cmd.seq;
}

static void request_read(struct sim *s, struct sim_node *n, uint32_t ep,
			 const struct client_request *r)
{
	const struct kv_command *c = &r->cmd;
	if (c->key_bytes > SIM_VALUE_BYTES_MAX) {
		respond(s, n, ep, r->request_id, CLIENT_BAD_REQUEST, NULL, 0, false);
		return;
	}
	if (r->consistency == KV_STALE) {
		const uint8_t *val = NULL;
		uint32_t vb = 0;
		int rc = kv_get(&n->kv, c->key, c->key_bytes, &val, &vb);
		if (rc != 0 && rc != KEEL_ENOTFOUND) {
			store_fail(s, n, "kv_get", rc);
			return;
		}
		respond(s, n, ep, r->request_id,
			rc == 0 ? CLIENT_OK : CLIENT_NOT_FOUND, val, vb, true);
		return;
	}
	if (n->waiter_count == SIM_WAITERS_MAX) {
		respond(s, n, ep, r->request_id, CLIENT_BUSY, NULL, 0, false);
		return;
	}
	uint64_t ctx = ++n->next_ctx;
	int rc = raft_read_index(n->raft, ctx);
	if (rc == KEEL_ENOTLEADER) {
		respond(s, n, ep, r->request_id, CLIENT_NOT_LEADER, NULL, 0, false);
		return;
	}
	if (rc == KEEL_EBUSY) {
		respond(s, n, ep, r->request_id, CLIENT_BUSY, NULL, 0, false);
		return;
	}
	if (rc != 0) {
		sim_fail(s, "read_index", "n%u: %s", (unsigned)n->id, keel_err_name(rc));
		return;
	}
	struct sim_waiter *w = &n->waiters[n->waiter_count++];
	memset(w, 0, sizeof(*w));
	w->kind = WAIT_READ;
	w->client_ep = ep;
	w->request_id = r->request_id;
	w->ctx = ctx;
	w->asked_ns = sim_now(s);
	w->key_bytes = c->key_bytes;
	memcpy(w->key, c->key, c->key_bytes);
}

static void on_request(struct sim *s, struct sim_node *n, struct sim_pkt *p,
		       const uint8_t *payload, uint32_t plen)
{
	struct client_request r;
	struct codec_decoded d;
	int rc = codec_request_decode(payload, plen, &sim_alloc, &r, &d);
	if (rc != 0) {
		sim_fail(s, "codec", "n%u: request decode: %s", (unsigned)n->id,
			 keel_err_name(rc));
		return;
	}
	bool read = r.cmd.op == KV_GET;
	if (read && r.consistency == KV_STALE)
		request_read(s, n, p->from, &r);
	else if (n->role != RAFT_LEADER)
		respond(s, n, p->from, r.request_id, CLIENT_NOT_LEADER, NULL, 0,
			false);
	else if (read)
		request_read(s, n, p->from, &r);
	else
		request_write(s, n, p->from, &r);
	codec_decoded_free(&d);
}

/* ---- compaction --------------------------------------------------------- */

/* The driver's half of compaction (core/raft.h): once the state machine
 * durably holds more than the policy's tail, cut the store's log (its batch
 * goes into the next job), then the core's. Returns whether it compacted. */
static bool compact(struct sim *s, struct sim_node *n)
{
	if (n->installing) /* the store's snapshot point is already ahead */
		return false;
	uint64_t i = raft_compact_index(n->raft, n->durable_applied);
	if (i == 0)
		return false;
	uint64_t term = 0;
	struct membership m;
	int rc = raft_state_at(n->raft, i, &term, &m);
	if (rc != 0) {
		sim_fail(s, "compact", "n%llu: raft_state_at(%llu): %s",
			 (unsigned long long)n->id, (unsigned long long)i,
			 keel_err_name(rc));
		return false;
	}
	const struct store_ops *op = n->store.ops;
	void *st = n->store.impl;
	if ((rc = op->write_begin(st)) != 0)
		return store_fail(s, n, "write_begin", rc), false;
	if ((rc = op->log_compact(st, i, term, &m)) != 0) {
		op->write_abort(st);
		return store_fail(s, n, "log_compact", rc), false;
	}
	if ((rc = op->write_commit(st)) != 0)
		return store_fail(s, n, "write_commit", rc), false;
	n->next.commit_id = mem_store_commit_id(&n->ms);
	if ((rc = raft_compact(n->raft, i)) != 0) {
		sim_fail(s, "compact", "n%llu: raft_compact(%llu): %s",
			 (unsigned long long)n->id, (unsigned long long)i,
			 keel_err_name(rc));
		return false;
	}
	n->compactions++;
	s->stats_compactions++;
	NTRACE(s, n, "compact through %llu (term %llu)", (unsigned long long)i,
	       (unsigned long long)term);
	return true;
}

/* ---- snapshots: leader side --------------------------------------------- */

/* A stream idle this long yields the store to another follower's want. */
#define SIM_SNAP_IDLE_NS (500 * SIM_MS)

static void snap_close(struct sim_node *n)
{
	snap_reader_close(&n->snap.sr);
	n->snap.to = KEEL_NODE_NONE;
}

static void snap_out_reset(struct sim_node *n)
{
	snap_close(n);
	n->snap.q_count = 0;
	n->snap.scheduled = false;
}

/* Queue a want; a newer want of the same follower replaces its older one. */
static void snap_want(struct sim *s, struct sim_node *n,
		      const struct raft_snapshot_want *w)
{
	struct sim_snap_out *o = &n->snap;
	for (uint32_t i = 0; i < o->q_count; i++)
		if (o->q[i].to == w->to) {
			o->q[i] = *w;
			return;
		}
	if (o->q_count == SIM_SNAP_WANTS_MAX) {
		sim_fail(s, "sim_limit", "n%llu: more than %u snapshot wants queued",
			 (unsigned long long)n->id, SIM_SNAP_WANTS_MAX);
		return;
	}
	o->q[o->q_count++] = *w;
}

/* Produce the next chunk later: reading the snapshot costs disk time. */
static void snap_kick(struct sim *s, struct sim_node *n)
{
	struct sim_snap_out *o = &n->snap;
	if (o->q_count == 0 || o->scheduled || n->state != NODE_UP)
		return;
	uint64_t mean = s->faults.snap_read_ns_mean;
	uint64_t d = mean ? simrng_exp(&s->rng_disk, mean, 20 * mean) : 0;
	o->scheduled = true;
	sim_schedule(s, sim_now(s) + d + 1, EV_SNAP, n->idx, n->epoch, NULL);
}

/* The index of a queued want that can be served now, or -1: the open
 * stream's follower, anyone when no stream is open or it went idle. */
static int snap_pick(struct sim *s, struct sim_node *n)
{
	struct sim_snap_out *o = &n->snap;
	bool idle = sim_now(s) >= o->active_ns + SIM_SNAP_IDLE_NS;
	for (uint32_t i = 0; i < o->q_count; i++)
		if (!o->sr.open || o->to == o->q[i].to || idle)
			return (int)i;
	return -1;
}

/* Open a new stream for to at the store's applied index. */
static int snap_open(struct sim *s, struct sim_node *n, keel_node_id to)
{
	struct sim_snap_out *o = &n->snap;
	snap_close(n);
	uint64_t last = 0;
	int rc = snap_reader_open(&o->sr, &n->store, &sim_alloc, &last);
	if (rc != 0)
		return store_fail(s, n, "snap_reader_open", rc);
	rc = raft_state_at(n->raft, last, &o->last_term, &o->membership);
	if (rc != 0) {
		snap_close(n);
		sim_fail(s, "snapshot", "n%llu: raft_state_at(%llu) for a snapshot: %s",
			 (unsigned long long)n->id, (unsigned long long)last,
			 keel_err_name(rc));
		return rc;
	}
	o->to = to;
	NTRACE(s, n, "snapshot for n%llu through %llu (term %llu)",
	       (unsigned long long)to, (unsigned long long)last,
	       (unsigned long long)o->last_term);
	return 0;
}

static void snap_serve(struct sim *s, struct sim_node *n,
		       const struct raft_snapshot_want *w)
{
	struct sim_snap_out *o = &n->snap;
	struct msg_snapshot m;
	memset(&m, 0, sizeof(m));
	int rc = KEEL_ERANGE;
	struct raft_status st;
	raft_status(n->raft, &st);
	/* A stream from below the core's compaction point is useless (the
	 * follower would need compacted entries next): start a new one. */
	if (w->last_index != 0 && o->sr.open && o->to == w->to &&
	    w->last_index == o->sr.last_index &&
	    o->sr.last_index >= st.snapshot_index) {
		m.offset = w->offset;
		rc = snap_reader_chunk(&o->sr, w->offset, &m.chunk, &m.chunk_bytes,
				       &m.done);
	}
	if (rc == KEEL_ERANGE) { /* a new stream, from its start */
		if (snap_open(s, n, w->to) != 0)
			return;
		m.offset = 0;
		rc = snap_reader_chunk(&o->sr, 0, &m.chunk, &m.chunk_bytes, &m.done);
	}
	if (rc != 0) {
		snap_close(n);
		store_fail(s, n, "snap_reader_chunk", rc);
		return;
	}
	m.last_index = o->sr.last_index;
	m.last_term = o->last_term;
	m.membership = o->membership;
	rc = raft_snapshot_send(n->raft, w->to, &m);
	if (rc == KEEL_ESTATE) { /* the follower moved on */
		snap_close(n);
		return;
	}
	if (rc == KEEL_ENOTLEADER) {
		snap_out_reset(n);
		return;
	}
	if (rc != 0) {
		sim_fail(s, "snapshot", "n%llu: raft_snapshot_send to n%llu (%llu@%llu): %s",
			 (unsigned long long)n->id, (unsigned long long)w->to,
			 (unsigned long long)m.last_index,
			 (unsigned long long)m.offset, keel_err_name(rc));
		return;
	}
	o->active_ns = sim_now(s);
	if (m.done)
		NTRACE(s, n, "snapshot for n%llu: last chunk at %llu",
		       (unsigned long long)w->to, (unsigned long long)m.offset);
}

void sim_node_snap(struct sim *s, struct sim_node *n, uint64_t epoch)
{
	if (epoch != n->epoch || n->state != NODE_UP || !n->snap.scheduled)
		return;
	struct sim_snap_out *o = &n->snap;
	o->scheduled = false;
	int i = snap_pick(s, n);
	if (i < 0) { /* come back when the open stream may be preempted */
		o->scheduled = true;
		sim_schedule(s, o->active_ns + SIM_SNAP_IDLE_NS, EV_SNAP, n->idx,
			     n->epoch, NULL);
		return;
	}
	struct raft_snapshot_want w = o->q[i];
	o->q[i] = o->q[--o->q_count];
	simpanic_set(s->opts.seed, n->id);
	snap_serve(s, n, &w);
	drain(s, n);
}

/* ---- snapshots: follower side ------------------------------------------- */

/* Staging and install writes are synced by the node's storage jobs (the
 * simulated disk), not inside core/snapshot.c: the same store with a sync
 * that leaves the batches to the job, so crashes can hit the window
 * between the install batch and its sync. */
static int deferred_sync(void *impl)
{
	(void)impl;
	return 0;
}

static void deferred_store(struct sim_node *n, struct store *out,
			   struct store_ops *ops)
{
	*ops = *n->store.ops;
	ops->sync = deferred_sync;
	out->ops = ops;
	out->impl = n->store.impl;
}

static int stage_chunk(struct sim *s, struct sim_node *n,
		       const struct raft_snapshot_chunk *c)
{
	struct store st;
	struct store_ops ops;
	deferred_store(n, &st, &ops);
	int rc = snap_stage_chunk(&st, c);
	if (rc == KEEL_EMALFORMED) {
		NTRACE(s, n, "snapshot chunk %llu@%llu malformed: install failed",
		       (unsigned long long)c->last_index, (unsigned long long)c->offset);
		n->snap_failed = true;
		return 0;
	}
	if (rc != 0)
		return store_fail(s, n, "snap_stage_chunk", rc);
	n->next.commit_id = mem_store_commit_id(&n->ms);
	sim_nemesis_install_hook(s, n, false);
	if (!c->done)
		return 0;
	if ((rc = snap_install(&st, c)) != 0)
		return store_fail(s, n, "snap_install", rc);
	n->next.commit_id = mem_store_commit_id(&n->ms);
	n->next.installed = c->last_index;
	n->install = *c;
	n->install.chunk = NULL;
	n->install.chunk_bytes = 0;
	n->installing = true;
	NTRACE(s, n, "install snapshot through %llu (term %llu): waits for its sync",
	       (unsigned long long)c->last_index, (unsigned long long)c->last_term);
	sim_nemesis_install_hook(s, n, true);
	return 0;
}

/* The install batch is durable: the state machine jumped to index. */
static void install_done(struct sim *s, struct sim_node *n, uint64_t index)
{
	KEEL_ASSERT(n->installing);
	KEEL_ASSERT(n->install.last_index == index);
	n->installing = false;
	int rc = raft_snapshot_installed(n->raft, index);
	if (rc != 0) {
		sim_fail(s, "snapshot", "n%llu: raft_snapshot_installed(%llu): %s",
			 (unsigned long long)n->id, (unsigned long long)index,
			 keel_err_name(rc));
		return;
	}
	n->applied = index;
	if (index > n->durable_applied)
		n->durable_applied = index;
	n->installs++;
	s->stats_installs++;
	NTRACE(s, n, "installed snapshot through %llu", (unsigned long long)index);
	sim_check_installed(s, n, index, mem_store_digest(&n->ms));
}

/* ---- membership --------------------------------------------------------- */

struct sim_node *sim_node_by_id(struct sim *s, keel_node_id id)
{
	if (id == KEEL_NODE_NONE)
		return NULL;
	for (uint32_t i = 0; i < s->slots; i++)
		if (s->nodes[i].id == id)
			return &s->nodes[i];
	return NULL;
}

uint32_t sim_voter_count(const struct membership *m)
{
	uint32_t v = 0;
	for (uint32_t i = 0; i < m->member_count; i++)
		v += m->members[i].role == MEMBER_VOTER;
	return v;
}

bool sim_is_voter(const struct membership *m, keel_node_id id)
{
	for (uint32_t i = 0; i < m->member_count; i++)
		if (m->members[i].id == id)
			return m->members[i].role == MEMBER_VOTER;
	return false;
}

bool sim_is_member(const struct membership *m, keel_node_id id)
{
	for (uint32_t i = 0; i < m->member_count; i++)
		if (m->members[i].id == id)
			return true;
	return false;
}

void sim_cfg_committed(struct sim *s, const struct entry *e)
{
	if (e->index <= s->cfg_index)
		return;
	struct membership m;
	int rc = codec_membership_decode(e->data, e->data_bytes, &m);
	if (rc != 0) {
		sim_fail(s, "codec", "committed config entry %llu: %s",
			 (unsigned long long)e->index, keel_err_name(rc));
		return;
	}
	s->cfg = m;
	s->cfg_index = e->index;
	if (s->trace.f)
		simtrace_text(&s->trace, sim_now(s), "sim",
			      "config %llu committed: %u members, %u voters",
			      (unsigned long long)e->index, m.member_count,
			      sim_voter_count(&m));
}

/* ---- the driver loop ---------------------------------------------------- */

static void on_soft(struct sim *s, struct sim_node *n,
		    const struct raft_ready *rd)
{
	if (rd->role != n->role || rd->term != n->term)
		NTRACE(s, n, "%s term %llu leader %llu", raft_role_name(rd->role),
		       (unsigned long long)rd->term,
		       (unsigned long long)rd->leader);
	simtrace_event(&s->trace, sim_now(s), 100 + rd->role, n->idx, rd->term,
		       rd->leader);
	bool was_leader = n->role == RAFT_LEADER;
	n->role = rd->role;
	n->term = rd->term;
	if (!was_leader && rd->role == RAFT_LEADER) {
		struct raft_status st;
		raft_status(n->raft, &st);
		n->lead_commit = st.commit;
		n->cut_ticks = 0;
		n->removed_ticks = 0;
		sim_nemesis_leader_hook(s, n);
		if (s->admin != NULL)
			sim_admin_leader_hook(s, n);
	}
	if (was_leader && rd->role != RAFT_LEADER) {
		fail_batch(s, n, CLIENT_NOT_LEADER);
		fail_waiters(s, n);
		snap_out_reset(n);
	}
}

static void on_reads(struct sim *s, struct sim_node *n,
		     const struct raft_ready *rd)
{
	for (size_t i = 0; i < rd->read_count; i++) {
		const struct raft_read *rr = &rd->reads[i];
		for (uint32_t k = 0; k < n->waiter_count; k++) {
			struct sim_waiter *w = &n->waiters[k];
			if (w->kind != WAIT_READ || w->ctx != rr->ctx)
				continue;
			if (rr->err != 0) {
				respond(s, n, w->client_ep, w->request_id,
					CLIENT_UNAVAILABLE, NULL, 0, false);
				waiter_remove(n, w);
			} else {
				sim_check_read_released(s, n, rr->index, w->asked_ns);
				w->has_index = true;
				w->read_index = rr->index;
			}
			break;
		}
	}
}

static void handle_ready(struct sim *s, struct sim_node *n,
			 const struct raft_ready *rd)
{
	if (rd->soft_changed)
		on_soft(s, n, rd);
	for (size_t i = 0; i < rd->msg_count; i++) {
		if (rd->msgs[i].after_persist)
			continue;
		struct sim_pkt *p = encode_msg(s, n, &rd->msgs[i].msg);
		if (p != NULL)
			sim_pkt_send(s, p);
	}
	struct sim_persist *p = &n->next;
	if (rd->hard_state_changed || rd->entry_count > 0) {
		if (write_ready(s, n, rd) != 0)
			return;
		p->commit_id = mem_store_commit_id(&n->ms);
		if (n->role != RAFT_LEADER && rd->hard_state_changed &&
		    rd->hard_state.vote != KEEL_NODE_NONE)
			sim_nemesis_write_hook(s, n, 0); /* crash around a vote */
		else if (n->role != RAFT_LEADER && rd->entry_count > 0)
			sim_nemesis_write_hook(s, n, 8); /* around an append ack */
		if (n->role == RAFT_LEADER)
			for (size_t i = 0; i < rd->entry_count; i++)
				if (rd->entries[i].type == ENTRY_CONFIG &&
				    rd->entries[i].term == n->term)
					sim_check_config_append(s, n, &rd->entries[i]);
		if (rd->entry_count > 0) {
			p->has_ack = true;
			p->ack_index = rd->entries[rd->entry_count - 1].index;
			p->ack_term = rd->entries[rd->entry_count - 1].term;
		}
	}
	if (rd->has_snapshot_chunk && stage_chunk(s, n, &rd->snapshot_chunk) != 0)
		return;
	for (size_t i = 0; i < rd->msg_count; i++) {
		if (!rd->msgs[i].after_persist)
			continue;
		struct sim_pkt *pkt = encode_msg(s, n, &rd->msgs[i].msg);
		if (pkt == NULL) {
			if (s->fail_reason != NULL)
				return;
			continue; /* to a member with no running node */
		}
		if (!job_pending(n)) {
			sim_pkt_send(s, pkt); /* nothing of its ready to persist */
			continue;
		}
		if (!job_hold(s, n, pkt))
			return;
	}
	if (rd->committed_count > 0)
		node_apply(s, n, rd->committed, rd->committed_count);
	on_reads(s, n, rd);
	for (size_t i = 0; i < rd->snapshot_want_count; i++)
		snap_want(s, n, &rd->snapshot_wants[i]);
}

static void drain(struct sim *s, struct sim_node *n)
{
	simpanic_set(s->opts.seed, n->id);
	for (uint32_t loops = 0;; loops++) {
		KEEL_ASSERT(loops < SIM_READY_LOOPS_MAX);
		if (n->state != NODE_UP || s->fail_reason != NULL)
			return;
		if (raft_has_ready(n->raft)) {
			struct raft_ready rd;
			raft_ready(n->raft, &rd);
			handle_ready(s, n, &rd);
			raft_advance(n->raft, &rd);
			continue;
		}
		if (n->snap_failed) { /* inputs wait for raft_advance() */
			n->snap_failed = false;
			raft_snapshot_failed(n->raft);
			continue;
		}
		if (compact(s, n))
			continue;
		if (!flush_batch(s, n))
			break;
	}
	serve_reads(s, n);
	job_submit(s, n);
	snap_kick(s, n);
}

void sim_node_poke(struct sim *s, struct sim_node *n)
{
	if (n->state == NODE_UP)
		drain(s, n);
}

void sim_node_disk_done(struct sim *s, struct sim_node *n, uint64_t epoch)
{
	if (epoch != n->epoch || n->state != NODE_UP)
		return;
	KEEL_ASSERT(n->syncs_in_flight == 1);
	struct sim_persist done = n->job;
	memset(&n->job, 0, sizeof(n->job));
	n->syncs_in_flight = 0;
	int rc = mem_store_sync_upto(&n->ms, done.commit_id);
	if (rc != 0) {
		job_free(&done);
		store_fail(s, n, "sync", rc);
		return;
	}
	bool has_ack = done.has_ack;
	uint64_t ack_index = done.ack_index, ack_term = done.ack_term;
	uint64_t installed = done.installed;
	if (done.applied > n->durable_applied)
		n->durable_applied = done.applied;
	job_release(s, &done);
	if (has_ack)
		raft_persisted(n->raft, ack_index, ack_term);
	if (installed != 0)
		install_done(s, n, installed);
	drain(s, n);
}

void sim_node_tick(struct sim *s, struct sim_node *n, uint64_t epoch)
{
	if (epoch != n->epoch || n->state != NODE_UP)
		return;
	raft_tick(n->raft);
	drain(s, n);
	sim_check_leader_tick(s, n);
	sim_schedule(s, sim_now(s) + n->tick_ns, EV_TICK, n->idx, n->epoch, NULL);
}

static void trace_msg(struct sim *s, struct sim_node *n, const struct msg *m)
{
	static const char *names[] = {"?", "prevote", "prevote-resp", "vote",
				      "vote-resp", "append", "append-resp",
				      "snapshot", "snapshot-resp", "timeout-now"};
	const char *name = m->type <= MSG_TYPE_MAX ? names[m->type] : "?";
	switch (m->type) {
	case MSG_APPEND:
		NTRACE(s, n, "<- n%llu %s term %llu prev %llu/%llu entries %u commit %llu",
		       (unsigned long long)m->from, name, (unsigned long long)m->term,
		       (unsigned long long)m->u.append.prev_index,
		       (unsigned long long)m->u.append.prev_term,
		       m->u.append.entry_count,
		       (unsigned long long)m->u.append.commit);
		break;
	case MSG_APPEND_RESP:
		NTRACE(s, n, "<- n%llu %s term %llu %s match %llu reject %llu hint %llu",
		       (unsigned long long)m->from, name, (unsigned long long)m->term,
		       m->u.append_resp.success ? "ok" : "reject",
		       (unsigned long long)m->u.append_resp.match_index,
		       (unsigned long long)m->u.append_resp.reject_index,
		       (unsigned long long)m->u.append_resp.hint_index);
		break;
	case MSG_PREVOTE_RESP:
	case MSG_VOTE_RESP:
		NTRACE(s, n, "<- n%llu %s term %llu %s", (unsigned long long)m->from,
		       name, (unsigned long long)m->term,
		       m->u.vote_resp.granted ? "granted" : "refused");
		break;
	default:
		NTRACE(s, n, "<- n%llu %s term %llu", (unsigned long long)m->from, name,
		       (unsigned long long)m->term);
	}
}

void sim_node_receive(struct sim *s, struct sim_node *n, struct sim_pkt *p)
{
	uint32_t type = 0, plen = 0;
	const uint8_t *payload = NULL;
	int rc = codec_frame_decode(p->data, p->bytes, &type, &payload, &plen);
	if (rc != 0) {
		sim_fail(s, "codec", "n%u: frame decode: %s", (unsigned)n->id,
			 keel_err_name(rc));
		return;
	}
	if (type == FRAME_CLIENT_REQUEST) {
		on_request(s, n, p, payload, plen);
	} else if (type == FRAME_PEER) {
		struct msg m;
		struct codec_decoded d;
		rc = codec_msg_decode(payload, plen, &sim_alloc, &m, &d);
		if (rc != 0) {
			sim_fail(s, "codec", "n%u: msg decode: %s", (unsigned)n->id,
				 keel_err_name(rc));
			return;
		}
		simpanic_set(s->opts.seed, n->id);
		if (m.to != n->id) { /* for this slot's previous node */
			codec_decoded_free(&d);
			return;
		}
		if (s->trace.f)
			trace_msg(s, n, &m);
		struct sim_node *from = sim_node_by_id(s, m.from);
		if (m.type == MSG_APPEND_RESP && from != NULL)
			n->heard_ns[from->idx] = sim_now(s);
		rc = raft_step(n->raft, &m);
		codec_decoded_free(&d);
		if (rc != 0) {
			sim_fail(s, "step", "n%u: raft_step: %s", (unsigned)n->id,
				 keel_err_name(rc));
			return;
		}
	} else {
		sim_fail(s, "codec", "n%u: unexpected frame type %u", (unsigned)n->id,
			 type);
		return;
	}
	drain(s, n);
}

/* ---- crash and restart -------------------------------------------------- */

void sim_node_crash(struct sim *s, struct sim_node *n, bool torn)
{
	KEEL_ASSERT(n->state == NODE_UP);
	/* A bootstrap entry is never torn: keel refuses to start on a torn
	 * bootstrap (term set, no entry), a node lost for good that the
	 * corruption bound (sim_nemesis.c F1) does not count. */
	struct raft_status st;
	raft_status(n->raft, &st);
	if (n->gen == 0 && st.stable_index == 0)
		torn = false;
	uint64_t tear = torn ? (simrng_next(&s->rng_disk) | 1) : 0;
	NTRACE(s, n, "crash%s (%u syncs in flight lost)", torn ? " with a torn write" : "",
	       n->syncs_in_flight);
	simtrace_event(&s->trace, sim_now(s), 200, n->idx, tear, n->syncs_in_flight);
	n->epoch++;
	n->state = NODE_DOWN;
	n->paused = false;
	persist_clear(n);
	n->waiter_count = 0; /* their clients time out */
	n->batch_count = 0;
	snap_out_reset(n);
	n->snap_failed = false;
	n->installing = false;
	raft_close(n->raft);
	n->raft_live = false;
	mem_store_crash(&n->ms, tear);
	simdisk_reset(&n->disk, sim_now(s));
	n->crashes++;
}

static void refuse(struct sim *s, struct sim_node *n, uint64_t index, int rc)
{
	NTRACE(s, n, "log record %llu unreadable (%s: %s): refusing it; node stops",
	       (unsigned long long)index, keel_err_name(rc), keel_err_msg(rc));
	simtrace_event(&s->trace, sim_now(s), 201, n->idx, index, 0);
	n->state = NODE_FAILED;
	s->failed_nodes++;
	s->stats_refused++;
}

struct loaded_log {
	struct entry *e;
	size_t count;
	uint64_t torn_index; /* 0, or the torn tail record to drop */
};

static void loaded_free(struct loaded_log *l)
{
	for (size_t i = 0; i < l->count; i++)
		free((void *)l->e[i].data);
	free(l->e);
}

/* Read the log from the store. Returns 0, 1 when the node must stop (a
 * corrupt record), or < 0 for our own failures. */
static int load_log(struct sim *s, struct sim_node *n,
		    struct loaded_log *out)
{
	const struct store_ops *op = n->store.ops;
	void *st = n->store.impl;
	uint64_t first, last;
	out->count = 0;
	out->e = NULL;
	out->torn_index = 0;
	int rc = op->log_bounds(st, &first, &last);
	if (rc != 0)
		return store_fail(s, n, "log_bounds", rc);
	if (last >= first) {
		out->e = calloc(last - first + 1, sizeof(struct entry));
		if (out->e == NULL)
			return KEEL_ENOMEM;
	}
	for (uint64_t i = first; i <= last; i++) {
		struct entry e;
		rc = op->log_get(st, i, &e);
		if (rc == KEEL_ECORRUPT && i == last) {
			/* A torn write can only cut the log's last record
			 * (mem_store.h); corruption faults never pick it. */
			NTRACE(s, n, "log record %llu torn by the crash: dropped",
			       (unsigned long long)i);
			out->torn_index = i;
			break;
		}
		if (rc != 0) {
			refuse(s, n, i, rc);
			return 1;
		}
		uint8_t *copy = NULL;
		if (e.data_bytes > 0) {
			copy = malloc(e.data_bytes);
			if (copy == NULL)
				return KEEL_ENOMEM;
			memcpy(copy, e.data, e.data_bytes);
		}
		e.data = copy;
		out->e[out->count++] = e;
	}
	return 0;
}

/* Recovery: remove the torn record, and a commit index that pointed at it
 * (commit is relearned from the leader; the entry was never acknowledged,
 * as acks wait for syncs). Durable before the node serves. */
static int drop_torn(struct sim *s, struct sim_node *n, struct store_meta *meta,
		     uint64_t index)
{
	const struct store_ops *op = n->store.ops;
	void *st = n->store.impl;
	int rc = op->write_begin(st);
	if (rc == 0)
		rc = op->log_truncate(st, index);
	if (rc == 0 && meta->hard_state.commit >= index) {
		meta->hard_state.commit = index - 1;
		rc = op->set_hard_state(st, &meta->hard_state);
	}
	if (rc == 0)
		rc = op->write_commit(st);
	else
		op->write_abort(st);
	if (rc == 0)
		rc = mem_store_sync_upto(&n->ms, mem_store_commit_id(&n->ms));
	if (rc != 0)
		return store_fail(s, n, "dropping the torn record", rc);
	return 0;
}

/* Whatever an install staged before the crash is garbage (core/store.h);
 * the clear is synced by the node's first storage job. */
static int clear_staged(struct sim *s, struct sim_node *n)
{
	const struct store_ops *op = n->store.ops;
	void *st = n->store.impl;
	int rc = op->write_begin(st);
	if (rc == 0 && (rc = op->stage_clear(st)) != 0)
		op->write_abort(st);
	else if (rc == 0)
		rc = op->write_commit(st);
	if (rc != 0)
		return store_fail(s, n, "stage_clear", rc);
	n->next.commit_id = mem_store_commit_id(&n->ms);
	return 0;
}

static void boot_pristine(struct sim *s, struct sim_node *n,
			  const struct raft_options *o)
{
	struct raft_restore rs;
	memset(&rs, 0, sizeof(rs));
	int rc = raft_init(n->raft, o, &rs);
	if (rc != 0) {
		sim_fail(s, "restore", "n%u: raft_init: %s", (unsigned)n->id,
			 keel_err_name(rc));
		return;
	}
	n->raft_live = true;
	const struct store_ops *op = n->store.ops;
	if ((rc = op->write_begin(n->store.impl)) != 0 ||
	    (rc = op->set_ids(n->store.impl, SIM_CLUSTER_ID, n->id)) != 0 ||
	    (rc = op->write_commit(n->store.impl)) != 0) {
		store_fail(s, n, "set_ids", rc);
		return;
	}
	if (n->gen > 0)
		return; /* a joiner: waits for the leader (like keel --join) */
	rc = raft_bootstrap(n->raft, &s->membership);
	if (rc != 0)
		sim_fail(s, "restore", "n%u: raft_bootstrap: %s", (unsigned)n->id,
			 keel_err_name(rc));
}

static void boot_restore(struct sim *s, struct sim_node *n,
			 const struct raft_options *o, struct store_meta *meta)
{
	struct loaded_log log;
	int rc = load_log(s, n, &log);
	if (rc != 0) {
		if (rc < 0)
			sim_fail(s, "store", "n%u: loading the log: %s", (unsigned)n->id,
				 keel_err_name(rc));
		loaded_free(&log);
		return;
	}
	if (log.torn_index != 0 && drop_torn(s, n, meta, log.torn_index) != 0) {
		loaded_free(&log);
		return;
	}
	if (clear_staged(s, n) != 0) {
		loaded_free(&log);
		return;
	}
	struct raft_restore rs;
	memset(&rs, 0, sizeof(rs));
	rs.hard_state = meta->hard_state;
	rs.snapshot_index = meta->snapshot_index;
	rs.snapshot_term = meta->snapshot_term;
	rs.snapshot_membership = meta->snapshot_membership;
	rs.applied_index = meta->applied_index;
	rs.entries = log.e;
	rs.entry_count = log.count;
	rc = raft_init(n->raft, o, &rs);
	loaded_free(&log);
	if (rc != 0) {
		sim_fail(s, "restore", "n%u: raft_init from the store: %s",
			 (unsigned)n->id, keel_err_name(rc));
		return;
	}
	n->raft_live = true;
	n->applied = meta->applied_index;
	n->durable_applied = meta->applied_index; /* after a crash all is durable */
}

void sim_node_start(struct sim *s, struct sim_node *n)
{
	KEEL_ASSERT(n->state == NODE_DOWN);
	struct store_meta meta;
	int rc = n->store.ops->meta_get(n->store.impl, &meta);
	if (rc != 0) {
		store_fail(s, n, "meta_get", rc);
		return;
	}
	struct raft_options o;
	raft_options_default(&o, n->id, simrng_mix(n->raft_seed + n->restarts));
	o.election_ticks = SIM_ELECTION_TICKS;
	o.heartbeat_ticks = SIM_HEARTBEAT_TICKS;
	o.log_tail_entries = s->faults.log_tail_entries;
	o.log_tail_bytes = s->faults.log_tail_bytes;
	simpanic_set(s->opts.seed, n->id);
	n->applied = 0;
	n->durable_applied = 0;
	n->installing = false;
	n->snap_failed = false;
	n->removed_ticks = 0;
	n->role = RAFT_FOLLOWER;
	n->term = 0;
	n->commit_checked = 0;
	if (meta.cluster_id == 0)
		boot_pristine(s, n, &o);
	else
		boot_restore(s, n, &o, &meta);
	if (!n->raft_live)
		return; /* FAILED, or the run failed */
	kv_init(&n->kv, &n->store, &sim_alloc);
	/* What survived the crash is exactly the state some node had after
	 * applying through the durable applied index (atomic apply batches
	 * and snapshot switches). */
	if (n->applied > 0)
		sim_check_state_at(s, n, n->applied, mem_store_digest(&n->ms));
	n->state = NODE_UP;
	n->restarts++;
	n->invariant_countdown = 0; /* check right after the restart */
	NTRACE(s, n, "start: term %llu commit %llu applied %llu",
	       (unsigned long long)meta.hard_state.term,
	       (unsigned long long)meta.hard_state.commit,
	       (unsigned long long)meta.applied_index);
	simtrace_event(&s->trace, sim_now(s), 202, n->idx, meta.hard_state.term,
		       meta.applied_index);
	uint64_t phase = s->faults.aligned_ticks && sim_now(s) == 0
				 ? n->tick_ns
				 : simrng_range(&s->rng_faults, 1, n->tick_ns);
	sim_schedule(s, sim_now(s) + phase, EV_TICK, n->idx, n->epoch, NULL);
	drain(s, n);
}

/* The latest configuration node n holds: its core's when up; when down,
 * what its restart will load from the store (the last config entry of its
 * log, else the snapshot point's). false if unknown. */
bool sim_node_config(struct sim_node *n, struct membership *out)
{
	if (n->state == NODE_UP) {
		struct raft_status st;
		raft_status(n->raft, &st);
		*out = st.membership;
		return true;
	}
	if (n->state != NODE_DOWN)
		return false;
	const struct store_ops *op = n->store.ops;
	void *st = n->store.impl;
	uint64_t first, last;
	if (op->log_bounds(st, &first, &last) != 0)
		return false;
	for (uint64_t i = last; i >= first && i > 0; i--) {
		struct entry e;
		if (op->log_get(st, i, &e) != 0)
			return false; /* torn or corrupt: recovery decides */
		if (e.type == ENTRY_CONFIG)
			return codec_membership_decode(e.data, e.data_bytes, out) == 0;
	}
	struct store_meta meta;
	if (op->meta_get(st, &meta) != 0)
		return false;
	*out = meta.snapshot_membership; /* empty on a pristine log */
	return true;
}

void sim_node_stop(struct sim *s, struct sim_node *n)
{
	NTRACE(s, n, "stopped: removed from the cluster");
	simtrace_event(&s->trace, sim_now(s), 203, n->idx, n->id, 0);
	if (n->state == NODE_UP)
		sim_node_crash(s, n, false);
	if (n->state == NODE_FAILED && s->failed_nodes > 0)
		s->failed_nodes--;
	n->epoch++; /* a pending restart never comes */
	n->state = NODE_OFF;
}

void sim_node_join(struct sim *s, struct sim_node *n, keel_node_id id)
{
	KEEL_ASSERT(n->state == NODE_OFF);
	KEEL_ASSERT(sim_node_by_id(s, id) == NULL);
	mem_store_close(&n->ms);
	int rc = mem_store_init(&n->ms);
	if (rc != 0) {
		sim_fail(s, "sim_limit", "slot %u: mem_store_init: %s", n->idx,
			 keel_err_name(rc));
		return;
	}
	mem_store_bind(&n->ms, &n->store);
	n->id = id;
	n->gen++;
	n->corrupted = false;
	n->paused = false;
	memset(n->heard_ns, 0, sizeof(n->heard_ns));
	for (uint32_t i = 0; i < s->slots; i++)
		s->nodes[i].heard_ns[n->idx] = 0;
	n->state = NODE_DOWN;
	NTRACE(s, n, "joins in slot %u (a new, empty node)", n->idx);
	sim_node_start(s, n);
}
