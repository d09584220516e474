/*
 * fuzz_raft.c: a Raft-step fuzzer. The input bytes drive a small in-memory
 * cluster of core/raft.h nodes: each byte pair is one event (deliver, drop,
 * duplicate or reorder a message, tick, propose, read, transfer, sync a
 * node's disk, crash a node, restart it from what it had made durable).
 * Every message crosses the real codec (encode, frame, decode) on its way.
 *
 * After every event:
 *  1. raft_check_invariants() on every live node that got an input (the
 *     others cannot have changed);
 *  2. election safety: at most one leader per term, ever;
 *  3. log matching: if two live logs hold the same term at an index, they
 *     hold the same terms at every index up to it;
 *  4. committed entries never change: every entry any node applies matches
 *     (term, type, data) what any node ever applied at that index, and each
 *     node applies consecutive indexes;
 *  5. leader completeness: a node that becomes leader holds every entry
 *     applied anywhere before its election;
 *  6. our own messages always decode (codec validation agrees with raft).
 *
 * With bit 7 of the first byte set, op 3 instead forges a queued message
 * (one field changed: terms, indexes, commit, success/granted, sender)
 * and, when the codec would accept it, steps it: raft.h promises that
 * raft_step never asserts on content the codec lets through. Once a forged
 * message is in, properties 2-5 are off (a forged vote may elect two
 * leaders); raft_check_invariants still runs after every event.
 *
 * Bounds: FR_EVENTS_MAX events per input, FR_NODES_MAX nodes, FR_NET_MAX queued messages (a full network
 * drops the oldest), FR_PENDING_MAX unsynced writes per node (a full queue
 * syncs the oldest), FR_COMMITTED_MAX tracked entries.
 */
#include <stdlib.h>
#include <string.h>

#include "../core/err.h"
#include "../core/raft.h"
#include "fuzz.h"

#define FR_NODES_MAX 5u
#define FR_NET_MAX 128u
#define FR_PENDING_MAX 16u
#define FR_COMMITTED_MAX 8192u
#define FR_TERMS_MAX 8192u
#define FR_DRAIN_MAX 1000u /* readies drained per event */
#define FR_EVENTS_MAX 512u /* events per input; later bytes are ignored */

struct fr_frame {
	uint8_t *bytes;
	size_t n;
};

struct fr_write {
	bool has_hs;
	struct raft_hard_state hs;
	struct entry *entries; /* owned copies */
	size_t entry_count;
	struct fr_frame *msgs; /* after_persist, encoded */
	size_t msg_count;
};

struct fr_node {
	keel_node_id id;
	struct raft *r; /* NULL when crashed */
	struct raft_options opt;
	/* durable */
	struct raft_hard_state hs;
	struct entry *dlog; /* indexes 1.. */
	size_t dcount, dcap;
	uint64_t dapplied;
	/* unsynced */
	struct fr_write pending[FR_PENDING_MAX];
	size_t pending_count;
	uint64_t applied_last; /* last index applied since start */
	uint32_t role;
	uint64_t term;
	bool dirty;   /* its log may have changed since the last check */
	bool touched; /* it got an input since the last check */
	uint64_t first_index, last_index; /* as of the last check */
};

struct fr_committed {
	uint64_t term;
	uint32_t type;
	uint64_t hash; /* 0: not seen */
};

struct fr_cluster {
	struct fr_node n[FR_NODES_MAX];
	size_t count;
	struct fr_frame net[FR_NET_MAX];
	size_t net_count;
	struct fr_committed committed[FR_COMMITTED_MAX + 1]; /* by index */
	uint64_t committed_max;
	keel_node_id term_leader[FR_TERMS_MAX];
	uint64_t events;
	bool forge_mode; /* input byte 0, bit 7: op 3 forges a message */
	bool forged;     /* a forged message was stepped: safety is off */
};

static uint64_t hash_bytes(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

static uint64_t entry_hash(const struct entry *e)
{
	uint64_t h = hash_bytes(0xcbf29ce484222325ull, &e->type, sizeof(e->type));
	h = hash_bytes(h, e->data, e->data_bytes);
	return h | 1; /* never 0 */
}

static struct entry *entries_dup(const struct entry *e, size_t n)
{
	if (n == 0)
		return NULL;
	struct entry *d = malloc(n * sizeof(*d));
	FUZZ_CHECK(d != NULL);
	for (size_t i = 0; i < n; i++) {
		d[i] = e[i];
		d[i].data = NULL;
		if (e[i].data_bytes > 0) {
			uint8_t *p = malloc(e[i].data_bytes);
			FUZZ_CHECK(p != NULL);
			memcpy(p, e[i].data, e[i].data_bytes);
			d[i].data = p;
		}
	}
	return d;
}

static void entries_free(struct entry *e, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free((void *)e[i].data);
	free(e);
}

static int node_of(const struct fr_cluster *c, keel_node_id id)
{
	for (size_t i = 0; i < c->count; i++)
		if (c->n[i].id == id)
			return (int)i;
	return -1;
}

/* ---- allocation --------------------------------------------------------------- */

/* Every raft_init allocates its outbox and read queues (over a megabyte);
 * under ASan each fresh large block costs an mmap and page faults, which
 * made the fuzzer ten times slower. Large freed blocks are kept in a small
 * cache and handed out again (only they lose ASan's use-after-free checks). */
#define FR_CACHE_BLOCKS 32u
#define FR_CACHE_BYTES_MIN (64u * 1024u)
#define FR_BLOCK_HEADER 16u

struct fr_cache {
	void *blocks[FR_CACHE_BLOCKS];
	size_t count;
};

static size_t block_size(void *p)
{
	size_t n;
	memcpy(&n, (uint8_t *)p - FR_BLOCK_HEADER, sizeof(n));
	return n;
}

static void block_free(struct fr_cache *c, void *p)
{
	if (p == NULL)
		return;
	if (block_size(p) >= FR_CACHE_BYTES_MIN && c->count < FR_CACHE_BLOCKS) {
		c->blocks[c->count++] = p;
		return;
	}
	free((uint8_t *)p - FR_BLOCK_HEADER);
}

static void *block_alloc(struct fr_cache *c, size_t bytes)
{
	for (size_t i = 0; i < c->count; i++) {
		if (block_size(c->blocks[i]) == bytes) {
			void *p = c->blocks[i];
			c->blocks[i] = c->blocks[--c->count];
			return p;
		}
	}
	uint8_t *p = malloc(bytes + FR_BLOCK_HEADER);
	FUZZ_CHECK(p != NULL);
	memcpy(p, &bytes, sizeof(bytes));
	return p + FR_BLOCK_HEADER;
}

static void *cache_fn(void *ctx, void *ptr, size_t bytes)
{
	struct fr_cache *c = ctx;
	if (bytes == 0) {
		block_free(c, ptr);
		return NULL;
	}
	void *p = block_alloc(c, bytes);
	if (ptr != NULL) {
		size_t old = block_size(ptr);
		memcpy(p, ptr, old < bytes ? old : bytes);
		block_free(c, ptr);
	}
	return p;
}

static struct fr_cache cache;

/* ---- network: every message travels as a frame --------------------------- */

static struct fr_frame encode(const struct msg *m)
{
	struct fr_frame f;
	FUZZ_CHECK(codec_msg_validate(m) == 0);
	f.n = codec_msg_encoded_bytes(m);
	f.bytes = malloc(f.n);
	FUZZ_CHECK(f.bytes != NULL);
	FUZZ_CHECK(codec_msg_encode(m, f.bytes, f.n) == (int)f.n);
	return f;
}

static void net_push(struct fr_cluster *c, struct fr_frame f)
{
	if (c->net_count == FR_NET_MAX) { /* a full network loses the oldest */
		free(c->net[0].bytes);
		memmove(c->net, c->net + 1, (FR_NET_MAX - 1) * sizeof(c->net[0]));
		c->net_count--;
	}
	c->net[c->net_count++] = f;
}

static struct fr_frame net_take(struct fr_cluster *c, size_t k)
{
	struct fr_frame f = c->net[k];
	memmove(c->net + k, c->net + k + 1, (c->net_count - k - 1) * sizeof(f));
	c->net_count--;
	return f;
}

/* ---- durable state -------------------------------------------------------- */

static void dlog_write(struct fr_node *n, const struct entry *e, size_t count)
{
	if (count == 0)
		return;
	FUZZ_CHECK(e[0].index >= 1 && e[0].index <= n->dcount + 1);
	while (n->dcount >= e[0].index) {
		n->dcount--;
		free((void *)n->dlog[n->dcount].data);
	}
	if (n->dcount + count > n->dcap) {
		n->dcap = (n->dcount + count) * 2;
		n->dlog = realloc(n->dlog, n->dcap * sizeof(*n->dlog));
		FUZZ_CHECK(n->dlog != NULL);
	}
	struct entry *copy = entries_dup(e, count);
	memcpy(n->dlog + n->dcount, copy, count * sizeof(*copy));
	free(copy);
	n->dcount += count;
}

static void write_free(struct fr_write *w)
{
	entries_free(w->entries, w->entry_count);
	for (size_t i = 0; i < w->msg_count; i++)
		free(w->msgs[i].bytes);
	free(w->msgs);
}

/* The oldest pending write of n reaches the disk. */
static void sync_one(struct fr_cluster *c, struct fr_node *n)
{
	FUZZ_CHECK(n->pending_count > 0);
	struct fr_write w = n->pending[0];
	memmove(n->pending, n->pending + 1, (n->pending_count - 1) * sizeof(w));
	n->pending_count--;
	if (w.has_hs)
		n->hs = w.hs;
	dlog_write(n, w.entries, w.entry_count);
	for (size_t i = 0; i < w.msg_count; i++)
		net_push(c, w.msgs[i]);
	w.msg_count = 0;
	if (w.entry_count > 0 && n->r != NULL) {
		raft_persisted(n->r, w.entries[w.entry_count - 1].index,
			       w.entries[w.entry_count - 1].term);
		n->touched = true;
	}
	write_free(&w);
}

/* ---- the driver loop of core/raft.h ---------------------------------------- */

static void apply(struct fr_cluster *c, struct fr_node *n, const struct raft_ready *rd)
{
	for (size_t i = 0; i < rd->committed_count && !c->forged; i++) {
		const struct entry *e = &rd->committed[i];
		if (n->applied_last > 0)
			FUZZ_CHECK(e->index == n->applied_last + 1); /* property 4 */
		n->applied_last = e->index;
		n->dapplied = e->index;
		if (e->index > FR_COMMITTED_MAX)
			continue;
		struct fr_committed *k = &c->committed[e->index];
		uint64_t h = entry_hash(e);
		if (k->hash == 0) {
			k->term = e->term;
			k->type = e->type;
			k->hash = h;
			if (e->index > c->committed_max)
				c->committed_max = e->index;
		}
		FUZZ_CHECK(k->term == e->term); /* property 4 */
		FUZZ_CHECK(k->type == e->type);
		FUZZ_CHECK(k->hash == h);
	}
}

static void drain(struct fr_cluster *c, struct fr_node *n)
{
	for (uint32_t guard = 0; n->r != NULL && raft_has_ready(n->r); guard++) {
		FUZZ_CHECK(guard < FR_DRAIN_MAX);
		struct raft_ready rd;
		raft_ready(n->r, &rd);
		n->dirty = true;
		n->touched = true;
		struct fr_write w = { 0 };
		w.has_hs = rd.hard_state_changed;
		w.hs = rd.hard_state;
		w.entries = entries_dup(rd.entries, rd.entry_count);
		w.entry_count = rd.entry_count;
		w.msgs = malloc((rd.msg_count + 1) * sizeof(*w.msgs));
		FUZZ_CHECK(w.msgs != NULL);
		for (size_t i = 0; i < rd.msg_count; i++) {
			struct fr_frame f = encode(&rd.msgs[i].msg);
			if (rd.msgs[i].after_persist)
				w.msgs[w.msg_count++] = f;
			else
				net_push(c, f);
		}
		if (n->pending_count == FR_PENDING_MAX)
			sync_one(c, n);
		n->pending[n->pending_count++] = w;
		apply(c, n, &rd);
		raft_advance(n->r, &rd);
	}
}

static void start(struct fr_node *n)
{
	struct raft_restore st = { 0 };
	st.hard_state = n->hs;
	st.applied_index = n->dapplied;
	st.entries = n->dlog;
	st.entry_count = n->dcount;
	n->r = calloc(1, raft_sizeof());
	FUZZ_CHECK(n->r != NULL);
	FUZZ_CHECK(raft_init(n->r, &n->opt, &st) == 0);
	n->applied_last = 0;
	n->role = 0;
	n->term = 0;
	n->dirty = true;
	n->touched = true;
}

static void crash(struct fr_node *n)
{
	for (size_t k = 0; k < n->pending_count; k++)
		write_free(&n->pending[k]);
	n->pending_count = 0;
	raft_close(n->r);
	free(n->r);
	n->r = NULL;
}

/* ---- checks ---------------------------------------------------------------- */

/* Property 5, for node n that just became leader. */
static void check_leader_completeness(const struct fr_cluster *c, const struct fr_node *n)
{
	for (uint64_t i = n->first_index; i <= c->committed_max; i++) {
		if (i == 0 || c->committed[i].hash == 0)
			continue;
		FUZZ_CHECK(raft_term_at(n->r, i) == c->committed[i].term);
	}
}

/* Property 3 for live nodes a and b. */
static void check_log_matching(const struct fr_node *a, const struct fr_node *b)
{
	uint64_t first = a->first_index > b->first_index ? a->first_index : b->first_index;
	uint64_t last = a->last_index < b->last_index ? a->last_index : b->last_index;
	uint64_t match = 0;
	for (uint64_t i = last; i >= first && i > 0; i--) {
		uint64_t t = raft_term_at(a->r, i);
		if (t != 0 && t == raft_term_at(b->r, i)) {
			match = i;
			break;
		}
	}
	for (uint64_t i = first; i < match; i++)
		FUZZ_CHECK(raft_term_at(a->r, i) == raft_term_at(b->r, i));
}

static void check(struct fr_cluster *c)
{
	/* A node's state changes only with its inputs: check the touched. */
	for (size_t i = 0; i < c->count; i++) {
		struct fr_node *n = &c->n[i];
		if (n->r == NULL || !n->touched)
			continue;
		n->touched = false;
		raft_check_invariants(n->r); /* property 1 */
		struct raft_status s;
		raft_status(n->r, &s);
		n->first_index = s.first_index;
		n->last_index = s.last_index;
		if (s.role == RAFT_LEADER && !c->forged) { /* property 2 */
			FUZZ_CHECK(s.term < FR_TERMS_MAX);
			if (c->term_leader[s.term] == KEEL_NODE_NONE)
				c->term_leader[s.term] = s.id;
			FUZZ_CHECK(c->term_leader[s.term] == s.id);
			if (n->role != RAFT_LEADER || n->term != s.term)
				check_leader_completeness(c, n);
		}
		n->role = s.role;
		n->term = s.term;
	}
	/* Logs change only where readies were drained: check those pairs. */
	for (size_t i = 0; i < c->count; i++)
		for (size_t j = i + 1; j < c->count; j++)
			if (c->n[i].r != NULL && c->n[j].r != NULL && !c->forged &&
			    (c->n[i].dirty || c->n[j].dirty))
				check_log_matching(&c->n[i], &c->n[j]);
	for (size_t i = 0; i < c->count; i++)
		c->n[i].dirty = false;
}

/* ---- events ------------------------------------------------------------------ */

static void deliver(struct fr_cluster *c, size_t k)
{
	struct fr_frame f = net_take(c, k);
	uint32_t type, pn;
	const uint8_t *p;
	struct msg m;
	struct codec_decoded d;
	FUZZ_CHECK(codec_frame_decode(f.bytes, f.n, &type, &p, &pn) == 0);
	FUZZ_CHECK(type == FRAME_PEER);
	FUZZ_CHECK(codec_msg_decode(p, pn, NULL, &m, &d) == 0); /* property 6 */
	int to = node_of(c, m.to);
	FUZZ_CHECK(to >= 0);
	struct fr_node *n = &c->n[to];
	if (n->r != NULL) {
		FUZZ_CHECK(raft_step(n->r, &m) == 0);
		n->touched = true;
		drain(c, n);
	}
	codec_decoded_free(&d);
	free(f.bytes);
}

/* Change one field of m (chosen by arg) the way a confused or malicious
 * peer might, within what the codec accepts. */
static void forge_field(const struct fr_cluster *c, struct msg *m, uint8_t arg)
{
	uint64_t mag = 1 + arg / 8;
	switch (arg % 8) {
	case 0: m->term += mag; break;
	case 1: m->term = m->term > mag ? m->term - mag : 1; break;
	case 2:
		if (m->type == MSG_APPEND) m->u.append.commit += mag * 7;
		if (m->type == MSG_APPEND_RESP) m->u.append_resp.match_index += mag;
		if (m->type == MSG_SNAPSHOT_RESP) m->u.snapshot_resp.next_offset += mag;
		break;
	case 3:
		if (m->type == MSG_VOTE || m->type == MSG_PREVOTE)
			m->u.vote.last_log_index += mag;
		if (m->type == MSG_APPEND && m->u.append.entry_count == 0)
			m->u.append.prev_index += mag;
		break;
	case 4:
		if (m->type == MSG_APPEND_RESP) m->u.append_resp.success ^= 1;
		if (m->type == MSG_VOTE_RESP || m->type == MSG_PREVOTE_RESP)
			m->u.vote_resp.granted ^= 1;
		break;
	case 5: m->from = c->n[(m->from + mag) % c->count].id; break;
	case 6:
		if (m->type == MSG_APPEND_RESP) {
			m->u.append_resp.reject_index += mag;
			m->u.append_resp.hint_index = m->u.append_resp.reject_index;
		}
		break;
	default:
		if (m->type == MSG_APPEND) m->u.append.commit = UINT64_MAX - mag;
		if (m->type == MSG_APPEND_RESP) m->u.append_resp.match_index = UINT64_MAX - mag;
		break;
	}
}

/* Step a forged copy of queued message k, if the codec would accept it:
 * raft.h promises raft_step never asserts on such content. */
static void forge(struct fr_cluster *c, size_t k, uint8_t arg)
{
	uint32_t type, pn;
	const uint8_t *p;
	struct msg m;
	struct codec_decoded d;
	FUZZ_CHECK(codec_frame_decode(c->net[k].bytes, c->net[k].n, &type, &p, &pn) == 0);
	FUZZ_CHECK(codec_msg_decode(p, pn, NULL, &m, &d) == 0);
	forge_field(c, &m, arg);
	int to = node_of(c, m.to);
	if (codec_msg_validate(&m) == 0 && to >= 0 && c->n[to].r != NULL) {
		c->forged = true;
		FUZZ_CHECK(raft_step(c->n[to].r, &m) == 0);
		c->n[to].touched = true;
		drain(c, &c->n[to]);
	}
	codec_decoded_free(&d);
}

static void propose(struct fr_cluster *c, struct fr_node *n, uint8_t arg)
{
	uint8_t data[16];
	uint64_t v = c->events;
	memcpy(data, &v, sizeof(v));
	memset(data + 8, arg, sizeof(data) - 8);
	uint64_t index;
	int rc = raft_propose(n->r, ENTRY_COMMAND, data, 1 + arg % sizeof(data), &index);
	n->touched = true;
	FUZZ_CHECK(rc == 0 || rc == KEEL_ENOTLEADER || rc == KEEL_ESTATE ||
		   rc == KEEL_EBUSY);
	drain(c, n);
}

static void event(struct fr_cluster *c, uint8_t op, uint8_t arg)
{
	struct fr_node *n = &c->n[arg % c->count];
	size_t k = c->net_count > 0 ? arg % c->net_count : 0;
	c->events++;
	switch (op % 16) {
	case 0: case 1: case 2: case 3: /* deliver the oldest, or any (reorder) */
		if (c->net_count > 0 && op % 16 == 3 && c->forge_mode)
			forge(c, k, (uint8_t)(op >> 4) ^ arg);
		else if (c->net_count > 0)
			deliver(c, op % 16 == 0 ? k : 0);
		break;
	case 4: /* lose one */
		if (c->net_count > 0)
			free(net_take(c, k).bytes);
		break;
	case 5: /* duplicate one */
		if (c->net_count > 0) {
			struct fr_frame f = { malloc(c->net[k].n), c->net[k].n };
			FUZZ_CHECK(f.bytes != NULL);
			memcpy(f.bytes, c->net[k].bytes, f.n);
			net_push(c, f);
		}
		break;
	case 6: case 7: case 8: /* tick */
		if (n->r != NULL) {
			raft_tick(n->r);
			n->touched = true;
			drain(c, n);
		}
		break;
	case 9: /* propose */
		if (n->r != NULL)
			propose(c, n, (uint8_t)(op >> 4));
		break;
	case 10: /* the disk catches up */
		while (n->pending_count > 0)
			sync_one(c, n);
		drain(c, n);
		break;
	case 11: /* one write reaches the disk */
		if (n->pending_count > 0)
			sync_one(c, n);
		drain(c, n);
		break;
	case 12: /* crash, losing unsynced writes */
		if (n->r != NULL)
			crash(n);
		break;
	case 13: /* restart from durable state */
		if (n->r == NULL) {
			start(n);
			drain(c, n);
		}
		break;
	case 14: /* linearizable read */
		if (n->r != NULL) {
			int rc = raft_read_index(n->r, c->events);
			n->touched = true;
			FUZZ_CHECK(rc == 0 || rc == KEEL_ENOTLEADER || rc == KEEL_EBUSY);
			drain(c, n);
		}
		break;
	default: /* leadership transfer */
		if (n->r != NULL) {
			keel_node_id to = c->n[(arg / c->count) % c->count].id;
			int rc = raft_transfer_leader(n->r, to);
			n->touched = true;
			FUZZ_CHECK(rc == 0 || rc == KEEL_ENOTLEADER || rc == KEEL_EINVAL);
			drain(c, n);
		}
		break;
	}
	check(c);
}

static void cluster_init(struct fr_cluster *c, size_t count, uint64_t seed)
{
	memset(c, 0, sizeof(*c));
	c->count = count;
	struct membership m = { .member_count = (uint32_t)count };
	for (size_t i = 0; i < count; i++) {
		m.members[i].id = i + 1;
		m.members[i].role = MEMBER_VOTER;
	}
	for (size_t i = 0; i < count; i++) {
		struct fr_node *n = &c->n[i];
		n->id = i + 1;
		raft_options_default(&n->opt, n->id, seed * 16 + i);
		n->opt.election_ticks = 3; /* elections within a few events */
		n->opt.alloc.fn = cache_fn;
		n->opt.alloc.ctx = &cache;
		start(n);
		FUZZ_CHECK(raft_bootstrap(n->r, &m) == 0);
		drain(c, n);
	}
	check(c);
}

static void cluster_free(struct fr_cluster *c)
{
	for (size_t i = 0; i < c->count; i++) {
		struct fr_node *n = &c->n[i];
		if (n->r != NULL)
			crash(n);
		entries_free(n->dlog, n->dcount);
	}
	for (size_t k = 0; k < c->net_count; k++)
		free(c->net[k].bytes);
}

/* Input: [nodes+seed byte] then (op, arg) byte pairs. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fr_cluster c;
	if (size < 1)
		return 0;
	cluster_init(&c, 3 + data[0] % 3, (data[0] & 0x7f) / 3);
	c.forge_mode = data[0] & 0x80;
	for (size_t i = 1; i + 1 < size && i / 2 < FR_EVENTS_MAX; i += 2)
		event(&c, data[i], data[i + 1]);
	cluster_free(&c);
	return 0;
}
