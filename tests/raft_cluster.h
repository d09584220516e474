/*
 * raft_cluster.h: an in-memory multi-node harness for core/raft tests
 * (header-only, test code).
 *
 * Each node runs the driver loop of core/raft.h: messages that need not
 * wait go onto the network at once; the ready's writes (hard state,
 * entries) and its after_persist messages become one pending write that
 * syncs at once, or, with node.manual_sync, when the test calls
 * cl_sync(). A crash drops pending writes; a restart rebuilds the node from
 * its durable state only. The network is a FIFO of deep-copied messages;
 * links can be cut per direction, and a test can drop, duplicate or reorder
 * messages by editing the queue.
 *
 * Every event is followed by raft_check_invariants() on every live node and
 * a check that all applied sequences are prefixes of one another.
 */
#ifndef KEEL_TEST_RAFT_CLUSTER_H
#define KEEL_TEST_RAFT_CLUSTER_H

#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "err.h"
#include "harness.h"
#include "raft.h"

#define CL_NODES_MAX 7
#define CL_APPLIED_MAX 4096
#define CL_READS_MAX 256
#define CL_PENDING_MAX 64
#define CL_DELIVER_MAX 100000 /* messages delivered by one cl_settle() */
/* A snapshot here is the state machine (applied index, running hash) plus
 * filler, so that it travels in several chunks of cluster.snap_chunk_bytes. */
#define CL_SNAP_BYTES 40u
#define CL_SNAP_CHUNK_BYTES_DEFAULT 16u

struct cl_write {
	bool has_hs;
	struct raft_hard_state hs;
	struct entry *entries; /* owned copies */
	size_t entry_count;
	struct msg *msgs; /* after_persist, deep copies */
	size_t msg_count;
};

struct cl_applied {
	uint64_t index;
	uint64_t term;
	uint32_t type;
	uint64_t hash;
};

struct cl_node {
	keel_node_id id;
	bool up;
	struct raft *r;
	struct raft_options opt;
	bool manual_sync;
	/* durable */
	struct raft_hard_state hs;
	uint64_t snap_index, snap_term;
	struct membership snap_m;
	struct entry *dlog; /* indexes snap_index+1 .. */
	size_t dcount, dcap;
	uint64_t dapplied;
	uint64_t sm_hash; /* the state machine: a running hash of what it applied */
	bool auto_compact; /* compact whenever raft_compact_index says so */
	/* pending writes, oldest first */
	struct cl_write pending[CL_PENDING_MAX];
	size_t pending_count;
	/* what the state machine saw */
	struct cl_applied applied[CL_APPLIED_MAX];
	size_t applied_count;
	struct raft_read reads[CL_READS_MAX];
	size_t read_count;
	uint64_t readies;
	/* leader: one snapshot stream per follower (index by node), and the
	 * wants of the last ready, answered after raft_advance */
	struct {
		bool open;
		uint64_t last_index;
		uint8_t bytes[CL_SNAP_BYTES];
	} streams[CL_NODES_MAX];
	struct raft_snapshot_want wants[KEEL_MEMBERS_MAX];
	size_t want_count;
	uint64_t streams_started;
	uint64_t chunks_sent;
	/* follower: the staging area and the install */
	uint8_t staged[CL_SNAP_BYTES];
	uint64_t staged_bytes;
	bool hold_install; /* the test finishes installs (cl_install_now) */
	bool hold_wants;   /* the test answers wants (n->wants, want_count) */
	int fail_installs; /* this many installs fail */
	bool install_ready; /* the done chunk is staged */
	struct raft_snapshot_chunk install_chunk; /* its header (chunk unset) */
	uint64_t installs;
};

struct cl_net_msg {
	struct msg m;
	struct entry *entries; /* owned */
	uint8_t *chunk;        /* owned */
};

struct cluster {
	struct cl_node n[CL_NODES_MAX];
	size_t count;
	bool cut[CL_NODES_MAX][CL_NODES_MAX]; /* cut[from][to] drops */
	struct cl_net_msg *q;
	size_t q_count, q_cap;
	uint64_t delivered;
	/* a log of every message handed to the network, for determinism */
	uint64_t trace_hash;
	/* election safety: the leader seen in each term (index = term) */
	keel_node_id *term_leader;
	size_t term_leader_cap;
	/* state machine agreement: sm_at[i] is the hash after applying i */
	uint64_t *sm_at;
	size_t sm_at_cap;
	uint32_t snap_chunk_bytes;
};

static inline uint64_t cl_hash(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

static inline uint8_t *cl_dup(const uint8_t *p, uint32_t n)
{
	if (n == 0)
		return NULL;
	uint8_t *d = malloc(n);
	memcpy(d, p, n);
	return d;
}

static inline struct entry *cl_entries_dup(const struct entry *e, size_t n)
{
	if (n == 0)
		return NULL;
	struct entry *d = malloc(n * sizeof(*d));
	for (size_t i = 0; i < n; i++) {
		d[i] = e[i];
		d[i].data = cl_dup(e[i].data, e[i].data_bytes);
	}
	return d;
}

static inline void cl_entries_free(struct entry *e, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free((void *)e[i].data);
	free(e);
}

static inline int cl_idx(const struct cluster *c, keel_node_id id)
{
	for (size_t i = 0; i < c->count; i++)
		if (c->n[i].id == id)
			return (int)i;
	return -1;
}

/* ---- network ------------------------------------------------------------ */

static inline void cl_net_push(struct cluster *c, const struct msg *m)
{
	int from = cl_idx(c, m->from), to = cl_idx(c, m->to);
	c->trace_hash = cl_hash(c->trace_hash, &m->type, sizeof(m->type));
	c->trace_hash = cl_hash(c->trace_hash, &m->to, sizeof(m->to));
	c->trace_hash = cl_hash(c->trace_hash, &m->term, sizeof(m->term));
	if (to < 0 || (from >= 0 && c->cut[from][to]))
		return;
	if (c->q_count == c->q_cap) {
		c->q_cap = c->q_cap ? c->q_cap * 2 : 256;
		c->q = realloc(c->q, c->q_cap * sizeof(*c->q));
	}
	struct cl_net_msg *nm = &c->q[c->q_count++];
	nm->m = *m;
	nm->entries = NULL;
	nm->chunk = NULL;
	if (m->type == MSG_APPEND) {
		nm->entries = cl_entries_dup(m->u.append.entries, m->u.append.entry_count);
		nm->m.u.append.entries = nm->entries;
	}
	if (m->type == MSG_SNAPSHOT) {
		nm->chunk = cl_dup(m->u.snapshot.chunk, m->u.snapshot.chunk_bytes);
		nm->m.u.snapshot.chunk = nm->chunk;
	}
}

static inline void cl_net_free(struct cl_net_msg *nm)
{
	if (nm->entries != NULL)
		cl_entries_free(nm->entries, nm->m.u.append.entry_count);
	nm->entries = NULL;
	free(nm->chunk);
	nm->chunk = NULL;
}

/* ---- durable state ------------------------------------------------------ */

static inline void cl_dlog_write(struct cl_node *n, const struct entry *e, size_t count)
{
	if (count == 0)
		return;
	uint64_t first = e[0].index;
	ASSERT_TRUE(first > n->snap_index);
	ASSERT_TRUE(first <= n->snap_index + n->dcount + 1);
	while (n->snap_index + n->dcount >= first) {
		n->dcount--;
		free((void *)n->dlog[n->dcount].data);
	}
	for (size_t i = 0; i < count; i++) {
		if (n->dcount == n->dcap) {
			n->dcap = n->dcap ? n->dcap * 2 : 64;
			n->dlog = realloc(n->dlog, n->dcap * sizeof(*n->dlog));
		}
		n->dlog[n->dcount] = e[i];
		n->dlog[n->dcount].data = cl_dup(e[i].data, e[i].data_bytes);
		n->dcount++;
	}
}

static void cl_drain(struct cluster *c, struct cl_node *n);
static void cl_check(struct cluster *c);

/* Complete the oldest pending write of node n (its sync finished). */
static inline void cl_sync_one(struct cluster *c, struct cl_node *n)
{
	ASSERT_TRUE(n->pending_count > 0);
	struct cl_write w = n->pending[0];
	memmove(n->pending, n->pending + 1, (n->pending_count - 1) * sizeof(w));
	n->pending_count--;
	if (w.has_hs)
		n->hs = w.hs;
	cl_dlog_write(n, w.entries, w.entry_count);
	for (size_t i = 0; i < w.msg_count; i++) {
		cl_net_push(c, &w.msgs[i]);
		if (w.msgs[i].type == MSG_APPEND)
			cl_entries_free((struct entry *)w.msgs[i].u.append.entries,
					w.msgs[i].u.append.entry_count);
	}
	if (w.entry_count > 0 && n->up)
		raft_persisted(n->r, w.entries[w.entry_count - 1].index,
			       w.entries[w.entry_count - 1].term);
	cl_entries_free(w.entries, w.entry_count);
	free(w.msgs);
}

static inline void cl_sync(struct cluster *c, int i)
{
	struct cl_node *n = &c->n[i];
	while (n->pending_count > 0)
		cl_sync_one(c, n);
	cl_drain(c, n);
	cl_check(c);
}

static inline uint64_t cl_entry_hash(const struct entry *e)
{
	uint64_t h = cl_hash(0xcbf29ce484222325ull, &e->type, sizeof(e->type));
	return e->data_bytes ? cl_hash(h, e->data, e->data_bytes) : h;
}

/* Every node's state machine after index must be the same. */
static inline void cl_sm_agree(struct cluster *c, uint64_t index, uint64_t hash)
{
	if (index >= c->sm_at_cap) {
		size_t cap = (size_t)index * 2 + 64;
		c->sm_at = realloc(c->sm_at, cap * sizeof(uint64_t));
		memset(c->sm_at + c->sm_at_cap, 0, (cap - c->sm_at_cap) * sizeof(uint64_t));
		c->sm_at_cap = cap;
	}
	if (c->sm_at[index] == 0)
		c->sm_at[index] = hash;
	ASSERT_U64_EQ(c->sm_at[index], hash);
}

static inline void cl_apply(struct cluster *c, struct cl_node *n,
			    const struct raft_ready *rd)
{
	for (size_t i = 0; i < rd->committed_count; i++) {
		const struct entry *e = &rd->committed[i];
		if (n->applied_count > 0)
			ASSERT_U64_EQ(e->index, n->applied[n->applied_count - 1].index + 1);
		/* released for apply only once durable here */
		ASSERT_TRUE(e->index > n->snap_index);
		ASSERT_TRUE(e->index <= n->snap_index + n->dcount);
		ASSERT_U64_EQ(n->dlog[e->index - n->snap_index - 1].term, e->term);
		ASSERT_TRUE(n->applied_count < CL_APPLIED_MAX);
		struct cl_applied *a = &n->applied[n->applied_count++];
		a->index = e->index;
		a->term = e->term;
		a->type = e->type;
		a->hash = cl_entry_hash(e);
		n->dapplied = e->index;
		n->sm_hash = cl_hash(n->sm_hash, &a->hash, sizeof(a->hash));
		cl_sm_agree(c, e->index, n->sm_hash);
	}
	for (size_t i = 0; i < rd->read_count && n->read_count < CL_READS_MAX; i++)
		n->reads[n->read_count++] = rd->reads[i];
}

/* The driver's compaction step: store first (durable log cut with the
 * state at the cut), then the core. Returns the index compacted through, or
 * 0 when the policy says not yet. */
static inline uint64_t cl_compact_node(struct cl_node *n)
{
	uint64_t idx = raft_compact_index(n->r, n->dapplied);
	if (idx == 0)
		return 0;
	ASSERT_TRUE(idx > n->snap_index);
	ASSERT_TRUE(idx <= n->snap_index + n->dcount); /* durable here */
	ASSERT_TRUE(idx <= n->dapplied);
	uint64_t term = 0;
	struct membership m;
	ASSERT_EQ(raft_state_at(n->r, idx, &term, &m), 0);
	ASSERT_U64_EQ(term, n->dlog[idx - n->snap_index - 1].term);
	size_t drop = (size_t)(idx - n->snap_index);
	for (size_t k = 0; k < drop; k++)
		free((void *)n->dlog[k].data);
	memmove(n->dlog, n->dlog + drop, (n->dcount - drop) * sizeof(*n->dlog));
	n->dcount -= drop;
	n->snap_index = idx;
	n->snap_term = term;
	n->snap_m = m;
	ASSERT_EQ(raft_compact(n->r, idx), 0);
	return idx;
}

/* ---- snapshots (the driver's side) -------------------------------------- */

static inline void cl_snap_encode(uint8_t *b, uint64_t index, uint64_t hash)
{
	memcpy(b, &index, 8);
	memcpy(b + 8, &hash, 8);
	for (uint32_t k = 16; k < CL_SNAP_BYTES; k++)
		b[k] = (uint8_t)(hash >> (k % 8 * 8)) ^ (uint8_t)k;
}

/* Leader: answer each want of the last ready with one chunk, opening a new
 * stream (of the current applied state) when the want asks for one or
 * names a stream we do not have. */
static inline void cl_answer_wants(struct cluster *c, struct cl_node *n)
{
	if (n->hold_wants)
		return;
	size_t count = n->want_count;
	n->want_count = 0;
	uint32_t chunk_max = c->snap_chunk_bytes ? c->snap_chunk_bytes
						 : CL_SNAP_CHUNK_BYTES_DEFAULT;
	for (size_t k = 0; k < count && n->up; k++) {
		const struct raft_snapshot_want *w = &n->wants[k];
		int to = cl_idx(c, w->to);
		if (to < 0)
			continue; /* a member with no node behind it */
		uint64_t off = w->offset;
		if (w->last_index == 0 || !n->streams[to].open ||
		    n->streams[to].last_index != w->last_index || off >= CL_SNAP_BYTES) {
			ASSERT_U64_EQ(w->offset, w->last_index == 0 ? 0 : w->offset);
			n->streams[to].open = true;
			n->streams[to].last_index = n->dapplied;
			cl_snap_encode(n->streams[to].bytes, n->dapplied, n->sm_hash);
			n->streams_started++;
			off = 0;
		}
		uint64_t left = CL_SNAP_BYTES - off;
		struct msg_snapshot m = { 0 };
		m.last_index = n->streams[to].last_index;
		m.offset = off;
		m.chunk_bytes = (uint32_t)(left < chunk_max ? left : chunk_max);
		m.chunk = n->streams[to].bytes + off;
		m.done = off + m.chunk_bytes == CL_SNAP_BYTES;
		int rc = raft_snapshot_send(n->r, w->to, &m);
		ASSERT_TRUE(rc == 0 || rc == KEEL_ESTATE || rc == KEEL_ENOTLEADER);
		if (rc != 0)
			n->streams[to].open = false;
		else
			n->chunks_sent++;
	}
}

/* Follower: stage one chunk (they come in offset order, from 0). */
static inline void cl_stage_chunk(struct cluster *c, struct cl_node *n,
				  const struct raft_snapshot_chunk *ch)
{
	(void)c;
	ASSERT_FALSE(n->install_ready);
	if (ch->offset == 0)
		n->staged_bytes = 0;
	ASSERT_U64_EQ(ch->offset, n->staged_bytes);
	ASSERT_TRUE(n->staged_bytes + ch->chunk_bytes <= CL_SNAP_BYTES);
	memcpy(n->staged + n->staged_bytes, ch->chunk, ch->chunk_bytes);
	n->staged_bytes += ch->chunk_bytes;
	if (!ch->done)
		return;
	ASSERT_U64_EQ(n->staged_bytes, CL_SNAP_BYTES);
	n->install_ready = true;
	n->install_chunk = *ch;
	n->install_chunk.chunk = NULL;
}

/* Follower: switch to the staged snapshot atomically (after every earlier
 * write), cutting the durable log as raft_snapshot_installed cuts the
 * core's, then tell the core; or fail it. */
static inline void cl_finish_install(struct cluster *c, struct cl_node *n, bool ok)
{
	ASSERT_TRUE(n->install_ready);
	n->install_ready = false;
	if (!ok) {
		n->fail_installs--;
		raft_snapshot_failed(n->r);
		return;
	}
	while (n->pending_count > 0)
		cl_sync_one(c, n);
	const struct raft_snapshot_chunk *ch = &n->install_chunk;
	uint64_t index, hash;
	memcpy(&index, n->staged, 8);
	memcpy(&hash, n->staged + 8, 8);
	ASSERT_U64_EQ(index, ch->last_index);
	uint64_t li = ch->last_index;
	bool holds = li > n->snap_index && li <= n->snap_index + n->dcount &&
		     n->dlog[li - n->snap_index - 1].term == ch->last_term;
	size_t drop = holds ? (size_t)(li - n->snap_index) : n->dcount;
	for (size_t k = 0; k < drop; k++)
		free((void *)n->dlog[k].data);
	if (n->dcount > drop)
		memmove(n->dlog, n->dlog + drop, (n->dcount - drop) * sizeof(*n->dlog));
	n->dcount -= drop;
	n->snap_index = li;
	n->snap_term = ch->last_term;
	n->snap_m = ch->membership;
	n->dapplied = li;
	n->sm_hash = hash;
	if (n->hs.commit < li)
		n->hs.commit = li;
	cl_sm_agree(c, li, hash);
	n->applied_count = 0; /* the state machine was replaced */
	n->installs++;
	ASSERT_EQ(raft_snapshot_installed(n->r, li), 0);
	struct raft_status s;
	raft_status(n->r, &s);
	ASSERT_U64_EQ(s.snapshot_index, n->snap_index);
	ASSERT_U64_EQ(s.last_index, n->snap_index + n->dcount);
	ASSERT_U64_EQ(s.applied, li);
	ASSERT_TRUE(s.commit >= li);
}

static void cl_drain_once(struct cluster *c, struct cl_node *n);

static void cl_drain(struct cluster *c, struct cl_node *n)
{
	for (int guard = 0; n->up; guard++) {
		ASSERT_TRUE(guard < 1000);
		cl_drain_once(c, n);
		if (!n->auto_compact || cl_compact_node(n) == 0)
			return;
	}
}

static void cl_drain_once(struct cluster *c, struct cl_node *n)
{
	for (int guard = 0; n->up && raft_has_ready(n->r); guard++) {
		ASSERT_TRUE(guard < 1000);
		struct raft_ready rd;
		raft_ready(n->r, &rd);
		n->readies++;
		struct cl_write w = { 0 };
		w.has_hs = rd.hard_state_changed;
		w.hs = rd.hard_state;
		w.entries = cl_entries_dup(rd.entries, rd.entry_count);
		w.entry_count = rd.entry_count;
		w.msgs = calloc(rd.msg_count + 1, sizeof(struct msg));
		for (size_t i = 0; i < rd.msg_count; i++) {
			if (rd.msgs[i].after_persist) {
				struct msg *m = &w.msgs[w.msg_count++];
				*m = rd.msgs[i].msg;
				if (m->type == MSG_APPEND) /* core memory: copy */
					m->u.append.entries = cl_entries_dup(
						m->u.append.entries, m->u.append.entry_count);
			} else {
				cl_net_push(c, &rd.msgs[i].msg);
			}
		}
		if (n->pending_count == CL_PENDING_MAX)
			cl_sync_one(c, n); /* the disk catches up */
		n->pending[n->pending_count++] = w;
		if (!n->manual_sync)
			while (n->pending_count > 0)
				cl_sync_one(c, n);
		cl_apply(c, n, &rd);
		if (rd.has_snapshot_chunk)
			cl_stage_chunk(c, n, &rd.snapshot_chunk);
		ASSERT_TRUE(n->want_count + rd.snapshot_want_count <= KEEL_MEMBERS_MAX);
		if (rd.snapshot_want_count > 0)
			memcpy(n->wants + n->want_count, rd.snapshot_wants,
			       rd.snapshot_want_count * sizeof(n->wants[0]));
		n->want_count += rd.snapshot_want_count;
		raft_advance(n->r, &rd);
		cl_answer_wants(c, n);
		if (n->install_ready && !n->hold_install)
			cl_finish_install(c, n, n->fail_installs <= 0);
	}
}

/* ---- nodes -------------------------------------------------------------- */

static inline void cl_start(struct cluster *c, int i)
{
	struct cl_node *n = &c->n[i];
	struct raft_restore st = { 0 };
	st.hard_state = n->hs;
	st.snapshot_index = n->snap_index;
	st.snapshot_term = n->snap_term;
	st.snapshot_membership = n->snap_m;
	st.applied_index = n->dapplied < n->snap_index ? n->snap_index : n->dapplied;
	st.entries = n->dlog;
	st.entry_count = n->dcount;
	n->r = calloc(1, raft_sizeof());
	ASSERT_EQ(raft_init(n->r, &n->opt, &st), 0);
	n->up = true;
	n->applied_count = 0; /* the state machine restarts from dapplied */
}

static inline void cl_crash(struct cluster *c, int i)
{
	struct cl_node *n = &c->n[i];
	for (size_t k = 0; k < n->pending_count; k++) {
		struct cl_write *w = &n->pending[k];
		cl_entries_free(w->entries, w->entry_count);
		for (size_t j = 0; j < w->msg_count; j++)
			if (w->msgs[j].type == MSG_APPEND)
				cl_entries_free((struct entry *)w->msgs[j].u.append.entries,
						w->msgs[j].u.append.entry_count);
		free(w->msgs);
	}
	n->pending_count = 0;
	/* what only lived in memory: open streams, the install in progress */
	n->want_count = 0;
	n->install_ready = false;
	n->staged_bytes = 0;
	memset(n->streams, 0, sizeof(n->streams));
	raft_close(n->r);
	free(n->r);
	n->r = NULL;
	n->up = false;
}

static inline struct membership cl_membership(size_t voters, size_t learners)
{
	struct membership m = { 0 };
	for (size_t i = 0; i < voters + learners; i++) {
		m.members[i].id = i + 1;
		m.members[i].role = i < voters ? MEMBER_VOTER : MEMBER_LEARNER;
	}
	m.member_count = (uint32_t)(voters + learners);
	return m;
}

/* A cluster of voters + learners (ids 1..), all bootstrapped with the same
 * membership; opt_fn may adjust each node's options. */
static inline void cl_init(struct cluster *c, size_t voters, size_t learners,
			   uint64_t seed)
{
	memset(c, 0, sizeof(*c));
	c->count = voters + learners;
	ASSERT_TRUE(c->count <= CL_NODES_MAX);
	c->trace_hash = 0xcbf29ce484222325ull;
	struct membership m = cl_membership(voters, learners);
	for (size_t i = 0; i < c->count; i++) {
		struct cl_node *n = &c->n[i];
		n->id = i + 1;
		raft_options_default(&n->opt, n->id, seed * 1000 + i);
		cl_start(c, (int)i);
		if (i < voters) /* learners start pristine and get the log */
			ASSERT_EQ(raft_bootstrap(n->r, &m), 0);
		cl_drain(c, n);
	}
}

static inline void cl_free(struct cluster *c)
{
	for (size_t i = 0; i < c->count; i++) {
		struct cl_node *n = &c->n[i];
		if (n->up)
			cl_crash(c, (int)i);
		for (size_t k = 0; k < n->dcount; k++)
			free((void *)n->dlog[k].data);
		free(n->dlog);
	}
	for (size_t k = 0; k < c->q_count; k++)
		cl_net_free(&c->q[k]);
	free(c->q);
	free(c->term_leader);
	free(c->sm_at);
}

static inline void cl_duplicate(struct cluster *c, size_t k)
{
	struct msg m = c->q[k].m;
	cl_net_push(c, &m); /* deep-copies the entries again */
}

static inline void cl_restart(struct cluster *c, int i)
{
	cl_start(c, i);
	cl_drain(c, &c->n[i]);
}

/* ---- checks ------------------------------------------------------------- */

static void cl_check(struct cluster *c)
{
	for (size_t i = 0; i < c->count; i++) {
		if (!c->n[i].up)
			continue;
		raft_check_invariants(c->n[i].r);
		struct raft_status s;
		raft_status(c->n[i].r, &s);
		if (s.role != RAFT_LEADER)
			continue;
		if (s.term >= c->term_leader_cap) {
			size_t cap = (size_t)s.term * 2 + 16;
			c->term_leader = realloc(c->term_leader, cap * sizeof(keel_node_id));
			memset(c->term_leader + c->term_leader_cap, 0,
			       (cap - c->term_leader_cap) * sizeof(keel_node_id));
			c->term_leader_cap = cap;
		}
		if (c->term_leader[s.term] == KEEL_NODE_NONE)
			c->term_leader[s.term] = s.id;
		ASSERT_U64_EQ(c->term_leader[s.term], s.id); /* one leader per term */
	}
	/* applied sequences agree wherever they overlap */
	for (size_t i = 0; i < c->count; i++) {
		for (size_t j = i + 1; j < c->count; j++) {
			const struct cl_node *a = &c->n[i], *b = &c->n[j];
			for (size_t k = 0; k < a->applied_count; k++) {
				const struct cl_applied *x = &a->applied[k];
				if (b->applied_count == 0 || x->index < b->applied[0].index)
					continue;
				size_t o = (size_t)(x->index - b->applied[0].index);
				if (o >= b->applied_count)
					break;
				ASSERT_U64_EQ(x->term, b->applied[o].term);
				ASSERT_U64_EQ(x->hash, b->applied[o].hash);
			}
		}
	}
}

/* ---- driving ------------------------------------------------------------ */

/* Deliver queue entry k (removing it). */
static inline void cl_deliver_at(struct cluster *c, size_t k)
{
	struct cl_net_msg nm = c->q[k];
	memmove(c->q + k, c->q + k + 1, (c->q_count - k - 1) * sizeof(nm));
	c->q_count--;
	int to = cl_idx(c, nm.m.to);
	int from = cl_idx(c, nm.m.from);
	if (to >= 0 && c->n[to].up && !(from >= 0 && c->cut[from][to])) {
		ASSERT_EQ(raft_step(c->n[to].r, &nm.m), 0);
		c->delivered++;
		cl_drain(c, &c->n[to]);
	}
	cl_net_free(&nm);
	cl_check(c);
}

/* Deliver until the network is quiet. */
static inline void cl_settle(struct cluster *c)
{
	for (int guard = 0; c->q_count > 0; guard++) {
		ASSERT_TRUE(guard < CL_DELIVER_MAX);
		cl_deliver_at(c, 0);
	}
}

static inline void cl_drop_all(struct cluster *c)
{
	for (size_t k = 0; k < c->q_count; k++)
		cl_net_free(&c->q[k]);
	c->q_count = 0;
}

static inline void cl_tick(struct cluster *c, int i)
{
	if (!c->n[i].up)
		return;
	raft_tick(c->n[i].r);
	cl_drain(c, &c->n[i]);
	cl_check(c);
}

/* ticks rounds of: tick every node, then deliver everything. */
static inline void cl_run(struct cluster *c, int ticks)
{
	for (int t = 0; t < ticks; t++) {
		for (size_t i = 0; i < c->count; i++)
			cl_tick(c, (int)i);
		cl_settle(c);
	}
}

static inline int cl_leader(const struct cluster *c)
{
	int best = -1;
	uint64_t term = 0;
	struct raft_status s;
	for (size_t i = 0; i < c->count; i++) {
		if (!c->n[i].up)
			continue;
		raft_status(c->n[i].r, &s);
		if (s.role == RAFT_LEADER && s.term >= term) {
			best = (int)i;
			term = s.term;
		}
	}
	return best;
}

static inline int cl_run_until_leader(struct cluster *c, int ticks_max)
{
	for (int t = 0; t < ticks_max; t++) {
		int l = cl_leader(c);
		if (l >= 0)
			return l;
		cl_run(c, 1);
	}
	return cl_leader(c);
}

static inline struct raft_status cl_status(const struct cluster *c, int i)
{
	struct raft_status s;
	raft_status(c->n[i].r, &s);
	return s;
}

static inline void cl_isolate(struct cluster *c, int i, bool cut)
{
	for (size_t j = 0; j < c->count; j++) {
		if ((int)j == i)
			continue;
		c->cut[i][j] = cut;
		c->cut[j][i] = cut;
	}
}

static inline uint64_t cl_propose(struct cluster *c, int i, const char *s)
{
	uint64_t index = 0;
	ASSERT_EQ(raft_propose(c->n[i].r, ENTRY_COMMAND, (const uint8_t *)s,
			       (uint32_t)strlen(s), &index), 0);
	cl_drain(c, &c->n[i]);
	cl_check(c);
	return index;
}

/* ---- custom starts: logs given as term lists --------------------------- */

/* Durable log of node i: entry 1 is the config (voters 1..voters, learners
 * after), entries 2.. are commands "e<index>"; terms[k] is the term of entry
 * k+1. hard state term = term. */
static inline void cl_set_log(struct cluster *c, int i, size_t voters,
			      size_t learners, const uint64_t *terms, size_t n,
			      uint64_t term)
{
	struct cl_node *nd = &c->n[i];
	struct membership m = cl_membership(voters, learners);
	uint8_t cfg[4096];
	int cfg_bytes = codec_membership_encode(&m, cfg, sizeof(cfg));
	ASSERT_GT(cfg_bytes, 0);
	struct entry e[64];
	char data[64][16];
	ASSERT_TRUE(n >= 1 && n <= 64);
	for (size_t k = 0; k < n; k++) {
		e[k].index = k + 1;
		e[k].term = terms[k];
		if (k == 0) {
			e[k].type = ENTRY_CONFIG;
			e[k].data = cfg;
			e[k].data_bytes = (uint32_t)cfg_bytes;
		} else {
			snprintf(data[k], sizeof(data[k]), "e%zu", k + 1);
			e[k].type = ENTRY_COMMAND;
			e[k].data = (const uint8_t *)data[k];
			e[k].data_bytes = (uint32_t)strlen(data[k]);
		}
	}
	cl_dlog_write(nd, e, n);
	nd->hs.term = term;
}

/* A cluster whose nodes start from given logs (no bootstrap). logs[i] has
 * lens[i] terms; commit 0 everywhere. */
static inline void cl_init_logs(struct cluster *c, size_t voters, size_t learners,
				const uint64_t *const *logs, const size_t *lens,
				uint64_t term, uint64_t seed)
{
	memset(c, 0, sizeof(*c));
	c->count = voters + learners;
	c->trace_hash = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < c->count; i++) {
		struct cl_node *n = &c->n[i];
		n->id = i + 1;
		raft_options_default(&n->opt, n->id, seed * 1000 + i);
		cl_set_log(c, (int)i, voters, learners, logs[i], lens[i], term);
		cl_start(c, (int)i);
		cl_drain(c, n);
	}
}

/* A held install (node.hold_install) finishes now, or fails. */
static inline void cl_install_now(struct cluster *c, int i, bool ok)
{
	cl_finish_install(c, &c->n[i], ok);
	cl_drain(c, &c->n[i]);
	cl_check(c);
}

/* Every node compacts whenever the policy says so, keeping a tail of
 * tail_entries (restarts the nodes with the new options). */
static inline void cl_auto_compact(struct cluster *c, uint32_t tail_entries)
{
	for (size_t i = 0; i < c->count; i++) {
		struct cl_node *n = &c->n[i];
		n->opt.log_tail_entries = tail_entries;
		n->auto_compact = true;
		if (n->up) {
			cl_crash(c, (int)i);
			cl_restart(c, (int)i);
		}
	}
}

/* Add a pristine node (id count + 1) that belongs to no membership yet: it
 * waits to be contacted, like a joiner. Returns its index. */
static inline int cl_add_spare(struct cluster *c, uint64_t seed)
{
	ASSERT_TRUE(c->count < CL_NODES_MAX);
	int i = (int)c->count++;
	struct cl_node *n = &c->n[i];
	memset(n, 0, sizeof(*n));
	n->id = (keel_node_id)i + 1;
	raft_options_default(&n->opt, n->id, seed * 1000 + (uint64_t)i);
	cl_start(c, i);
	cl_drain(c, n);
	return i;
}

/* raft_change on node i, then drain it. */
static inline int cl_change(struct cluster *c, int i, uint32_t kind,
			    keel_node_id id, const char *peer_addr,
			    uint64_t *index, keel_node_id *id_out)
{
	struct member_change ch = { .kind = kind, .id = id };
	if (peer_addr != NULL)
		snprintf(ch.peer_addr, sizeof(ch.peer_addr), "%s", peer_addr);
	*index = 0;
	*id_out = 0;
	int rc = raft_change(c->n[i].r, &ch, index, id_out);
	cl_drain(c, &c->n[i]);
	cl_check(c);
	return rc;
}

/* Index in the network queue of the first message of type from -> to
 * (0: any), or -1. */
static inline int cl_find(const struct cluster *c, uint32_t type,
			  keel_node_id from, keel_node_id to)
{
	for (size_t k = 0; k < c->q_count; k++) {
		const struct msg *m = &c->q[k].m;
		if (m->type == type && (from == 0 || m->from == from) &&
		    (to == 0 || m->to == to))
			return (int)k;
	}
	return -1;
}

static inline size_t cl_count(const struct cluster *c, uint32_t type,
			      keel_node_id from, keel_node_id to)
{
	size_t n = 0;
	for (size_t k = 0; k < c->q_count; k++) {
		const struct msg *m = &c->q[k].m;
		n += m->type == type && (from == 0 || m->from == from) &&
		     (to == 0 || m->to == to);
	}
	return n;
}

/* Remove queue entry k without delivering it. */
static inline void cl_drop_at(struct cluster *c, size_t k)
{
	cl_net_free(&c->q[k]);
	memmove(c->q + k, c->q + k + 1, (c->q_count - k - 1) * sizeof(c->q[0]));
	c->q_count--;
}

/* Tick node i alone until its role changes (or max ticks); returns ticks. */
static inline int cl_tick_until_role_change(struct cluster *c, int i, int max)
{
	uint32_t role = cl_status(c, i).role;
	for (int t = 1; t <= max; t++) {
		cl_tick(c, i);
		if (cl_status(c, i).role != role)
			return t;
	}
	return -1;
}

/* Make node i leader: tick it until it campaigns, then deliver everything. */
static inline void cl_elect(struct cluster *c, int i)
{
	for (int t = 0; t < 100 && cl_status(c, i).role != RAFT_LEADER; t++) {
		cl_tick(c, i);
		cl_settle(c);
	}
	ASSERT_EQ(cl_status(c, i).role, RAFT_LEADER);
}

/* Every live node holds the same log as node i through its last index. */
static inline void cl_assert_logs_equal(const struct cluster *c, int i)
{
	struct raft_status s = cl_status(c, i);
	for (size_t j = 0; j < c->count; j++) {
		if (!c->n[j].up)
			continue;
		struct raft_status o = cl_status(c, (int)j);
		ASSERT_U64_EQ(o.last_index, s.last_index);
		for (uint64_t k = s.first_index; k <= s.last_index; k++)
			ASSERT_U64_EQ(raft_term_at(c->n[j].r, k), raft_term_at(c->n[i].r, k));
	}
}

#endif
