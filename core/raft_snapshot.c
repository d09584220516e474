/*
 * raft_snapshot.c: streaming snapshots to followers whose next entry was
 * compacted away (leader), and receiving and installing them (follower).
 * The bytes are the driver's (core/snapshot.h); the core moves chunks and
 * tracks offsets.
 *
 * Invariants:
 *   N1 leader: a follower in PROGRESS_SNAPSHOT has no appends in flight and
 *      exactly one of: a want to hand out, a want handed out awaiting
 *      raft_snapshot_send, one chunk in flight. So at most one chunk per
 *      follower is ever in flight.
 *   N2 leader: a stream with no progress for RAFT_SNAPSHOT_STALL_ELECTIONS
 *      election timeouts starts over (a want from offset 0).
 *   N6 leader: compaction advice (raft_compact_index) stays at or below the
 *      last_index of every open stream, so a stream being sent is not made
 *      useless by the leader's own compaction; a stream the driver made
 *      useless anyway (compacting beyond the advice) is restarted.
 *   N3 leader: a chunk's last_index is at most the applied index and at
 *      least the snapshot index, so once it is installed the follower can
 *      be replicated from last_index + 1 out of the log; last_term and the
 *      membership come from the core (raft_state_at), not the driver.
 *   N4 follower: chunks are accepted in offset order from offset 0 only;
 *      others are answered with the offset wanted. A snapshot at or below
 *      commit is answered done at once (the log already holds it).
 *   N5 follower: once the last chunk is accepted (install.done) the node
 *      appends nothing, releases nothing for apply and never campaigns
 *      until raft_snapshot_installed / raft_snapshot_failed; its last_index
 *      stays above commit, so the install never moves applied backwards.
 */
#include <string.h>

#include "codec.h"
#include "err.h"
#include "raft_impl.h"

/* ---- Leader -------------------------------------------------------------- */

static void stream_restart(struct raft_progress *p)
{
	memset(&p->snap, 0, sizeof(p->snap));
	p->snap.want_pending = true; /* N2: last_index 0, offset 0: a new one */
}

void raft_snapshot_start(struct raft *r, struct raft_progress *p)
{
	KEEL_ASSERT(r->role == RAFT_LEADER);
	KEEL_ASSERT(p->next <= r->log.snapshot_index);
	p->state = PROGRESS_SNAPSHOT;
	p->paused = false;
	p->inflight_count = 0; /* N1 */
	p->inflight_head = 0;
	p->stall_ticks = 0;
	stream_restart(p);
}

static int send_check(const struct raft *r, const struct raft_progress *p,
		      const struct msg_snapshot *m)
{
	if (p == NULL || p->state != PROGRESS_SNAPSHOT || !p->snap.awaiting_send)
		return KEEL_ESTATE;
	if (m->chunk_bytes > KEEL_SNAPSHOT_CHUNK_BYTES_MAX ||
	    (m->chunk_bytes > 0 && m->chunk == NULL) ||
	    m->offset > UINT64_MAX - m->chunk_bytes)
		return KEEL_EINVAL;
	if (m->offset != 0 && m->last_index == p->snap.last_index &&
	    m->last_index < r->log.snapshot_index)
		return KEEL_ECOMPACTED;
	if (m->last_index == 0 || m->last_index > r->applied ||
	    m->last_index < r->log.snapshot_index)
		return KEEL_EINVAL; /* N3 */
	/* Offset 0 starts a new stream whatever was wanted (the driver could
	 * not produce the wanted offset); anything else continues ours. A
	 * stream from below a compaction the driver made since is useless
	 * (the follower would need compacted entries next): the caller
	 * restarts it. */
	if (m->offset != 0 && (m->offset != p->snap.offset ||
			       m->last_index != p->snap.last_index))
		return KEEL_ESTATE;
	return 0;
}

int raft_snapshot_send(struct raft *r, keel_node_id to,
		       const struct msg_snapshot *m)
{
	KEEL_ASSERT(!r->ready_pending); /* R1 */
	KEEL_ASSERT(m != NULL);
	if (r->role != RAFT_LEADER)
		return KEEL_ENOTLEADER;
	struct raft_progress *p = raft_progress_find(r, to);
	int rc = send_check(r, p, m);
	if (rc == KEEL_ECOMPACTED) {
		stream_restart(p);
		return KEEL_ESTATE;
	}
	if (rc != 0)
		return rc;
	uint64_t term = 0;
	struct membership mb;
	rc = raft_state_at(r, m->last_index, &term, &mb); /* N3 */
	KEEL_ASSERT(rc == 0);
	KEEL_ASSERT(term > 0);
	struct msg *out = raft_send(r, MSG_SNAPSHOT, to, false);
	struct msg_snapshot *s = &out->u.snapshot;
	s->last_index = m->last_index;
	s->last_term = term;
	s->membership = mb;
	s->offset = m->offset;
	s->chunk_bytes = m->chunk_bytes;
	s->chunk = m->chunk_bytes > 0 ? m->chunk : NULL; /* borrowed (raft.h) */
	s->done = m->done;
	p->snap.last_index = m->last_index;
	p->snap.offset = m->offset;
	p->snap.chunk_end = m->offset + m->chunk_bytes;
	p->snap.chunk_done = m->done;
	p->snap.awaiting_send = false;
	p->snap.chunk_inflight = true; /* N1 */
	return 0;
}

/* The follower holds the log through last_index: replicate from there. */
static void stream_finished(struct raft *r, struct raft_progress *p,
			    uint64_t last_index)
{
	if (last_index > p->match)
		p->match = last_index;
	memset(&p->snap, 0, sizeof(p->snap));
	p->state = PROGRESS_REPLICATE;
	p->next = p->match + 1;
	p->paused = false;
	p->inflight_count = 0;
	p->inflight_head = 0;
	p->stall_ticks = 0;
	KEEL_ASSERT(p->match < p->next); /* I8 */
	raft_maybe_commit(r);
	if (r->role != RAFT_LEADER)
		return; /* M5: the commit removed us */
	raft_transfer_check(r, p);
	raft_send_appends(r, p);
}

static void on_chunk_answer(struct raft_progress *p,
			    const struct msg_snapshot_resp *resp)
{
	struct raft_snap_stream *s = &p->snap;
	if (!s->chunk_inflight || s->chunk_done)
		return; /* stale, or the last chunk (answered by done) */
	if (resp->next_offset == s->chunk_end) { /* accepted: the next one */
		s->chunk_inflight = false;
		s->want_pending = true;
		s->offset = s->chunk_end;
		s->stall_ticks = 0;
	} else if (resp->next_offset != s->offset) {
		stream_restart(p); /* it wants something we cannot continue */
	}
	/* next_offset == offset: it has not seen ours yet (an answer to a
	 * duplicate); ours may still arrive, else N2. */
}

void raft_recv_snapshot_resp(struct raft *r, const struct msg *m)
{
	KEEL_ASSERT(r->role == RAFT_LEADER);
	KEEL_ASSERT(m->term == r->term);
	struct raft_progress *p = raft_progress_find(r, m->from);
	const struct msg_snapshot_resp *resp = &m->u.snapshot_resp;
	if (p == NULL || resp->last_index == 0)
		return; /* not a member */
	if (resp->done) {
		if (resp->last_index > raft_log_last(&r->log))
			return; /* not a log we could have sent */
		if (p->state != PROGRESS_SNAPSHOT && resp->last_index <= p->match)
			return; /* stale */
		stream_finished(r, p, resp->last_index);
		return;
	}
	if (p->state != PROGRESS_SNAPSHOT || resp->last_index != p->snap.last_index)
		return; /* about another stream */
	if (resp->rejected) {
		stream_restart(p);
		return;
	}
	on_chunk_answer(p, resp);
}

/* N2, once per leader tick. */
void raft_snapshot_tick(struct raft *r)
{
	uint32_t limit = RAFT_SNAPSHOT_STALL_ELECTIONS * r->opt.election_ticks;
	for (uint32_t i = 0; i < r->progress_count; i++) {
		struct raft_progress *p = &r->progress[i];
		if (p->state != PROGRESS_SNAPSHOT)
			continue;
		if (++p->snap.stall_ticks >= limit)
			stream_restart(p);
	}
}

/* Hand out the pending wants (raft_ready); they stay valid until
 * raft_advance. */
size_t raft_snapshot_wants(struct raft *r)
{
	size_t n = 0;
	if (r->role != RAFT_LEADER)
		return 0;
	for (uint32_t i = 0; i < r->progress_count; i++) {
		struct raft_progress *p = &r->progress[i];
		if (p->state != PROGRESS_SNAPSHOT || !p->snap.want_pending)
			continue;
		KEEL_ASSERT(n < KEEL_MEMBERS_MAX);
		struct raft_snapshot_want *w = &r->wants[n++];
		w->to = p->id;
		w->offset = p->snap.offset;
		w->last_index = p->snap.offset > 0 ? p->snap.last_index : 0;
		p->snap.want_pending = false;
		p->snap.awaiting_send = true;
	}
	return n;
}

uint64_t raft_snapshot_streams_floor(const struct raft *r)
{
	uint64_t floor = UINT64_MAX;
	if (r->role != RAFT_LEADER)
		return floor;
	for (uint32_t i = 0; i < r->progress_count; i++) {
		const struct raft_progress *p = &r->progress[i];
		if (p->state == PROGRESS_SNAPSHOT && p->snap.last_index > 0 &&
		    p->snap.last_index < floor)
			floor = p->snap.last_index;
	}
	return floor;
}

bool raft_snapshot_has_wants(const struct raft *r)
{
	if (r->role != RAFT_LEADER)
		return false;
	for (uint32_t i = 0; i < r->progress_count; i++)
		if (r->progress[i].state == PROGRESS_SNAPSHOT &&
		    r->progress[i].snap.want_pending)
			return true;
	return false;
}

/* ---- Follower ------------------------------------------------------------ */

void raft_install_reset(struct raft *r)
{
	uint8_t *buf = r->install.chunk_buf;
	uint32_t cap = r->install.chunk_buf_cap;
	memset(&r->install, 0, sizeof(r->install));
	r->install.chunk_buf = buf;
	r->install.chunk_buf_cap = cap;
}

/* Anything the codec could have let through is checked (S1). */
static bool snapshot_valid(const struct msg *m)
{
	const struct msg_snapshot *s = &m->u.snapshot;
	if (s->last_index == 0 || s->last_term == 0 || s->last_term > m->term)
		return false;
	if (s->chunk_bytes > KEEL_SNAPSHOT_CHUNK_BYTES_MAX ||
	    (s->chunk_bytes > 0 && s->chunk == NULL))
		return false;
	if (s->offset > UINT64_MAX - s->chunk_bytes)
		return false;
	return codec_membership_validate(&s->membership) == 0;
}

static void reply(struct raft *r, keel_node_id to, uint64_t last_index,
		  uint64_t next_offset, bool done, bool rejected)
{
	struct msg *out = raft_send(r, MSG_SNAPSHOT_RESP, to, false);
	struct msg_snapshot_resp *resp = &out->u.snapshot_resp;
	resp->last_index = last_index;
	resp->next_offset = next_offset;
	resp->done = done;
	resp->rejected = rejected;
}

/* Copy the chunk to core memory for the next ready. false: out of memory
 * (the chunk is dropped; the leader resends or restarts, N2). */
static bool chunk_keep(struct raft *r, const struct msg_snapshot *s)
{
	struct raft_install *in = &r->install;
	if (s->chunk_bytes > in->chunk_buf_cap) {
		uint8_t *b = keel_realloc(&r->opt.alloc, in->chunk_buf, s->chunk_bytes);
		if (b == NULL)
			return false;
		in->chunk_buf = b;
		in->chunk_buf_cap = s->chunk_bytes;
	}
	if (s->chunk_bytes > 0)
		memcpy(in->chunk_buf, s->chunk, s->chunk_bytes);
	struct raft_snapshot_chunk *c = &in->chunk;
	c->last_index = s->last_index;
	c->last_term = s->last_term;
	c->membership = s->membership;
	c->offset = s->offset;
	c->chunk_bytes = s->chunk_bytes;
	c->chunk = s->chunk_bytes > 0 ? in->chunk_buf : NULL;
	c->done = s->done;
	in->chunk_pending = true;
	return true;
}

static void install_begin(struct raft *r, const struct msg *m)
{
	const struct msg_snapshot *s = &m->u.snapshot;
	raft_install_reset(r); /* offset 0: discard anything staged */
	r->install.active = true;
	r->install.from = m->from;
	r->install.last_index = s->last_index;
	r->install.last_term = s->last_term;
	r->install.membership = s->membership;
}

void raft_recv_snapshot(struct raft *r, const struct msg *m)
{
	KEEL_ASSERT(m->term == r->term);
	if (r->role == RAFT_LEADER || !snapshot_valid(m))
		return;
	if (r->role != RAFT_FOLLOWER)
		raft_become_follower(r, r->term, m->from);
	r->leader = m->from;
	r->election_elapsed = 0;
	struct raft_install *in = &r->install;
	const struct msg_snapshot *s = &m->u.snapshot;
	if (in->done)
		return; /* N5: the answer comes with the install */
	if (s->last_index <= r->commit) { /* N4 */
		if (in->active && in->last_index <= r->commit)
			raft_install_reset(r);
		reply(r, m->from, s->last_index, 0, true, false);
		return;
	}
	if (s->offset == 0)
		install_begin(r, m);
	bool ours = in->active && in->last_index == s->last_index;
	if (!ours || s->offset != in->next_offset) { /* N4 */
		reply(r, m->from, s->last_index, ours ? in->next_offset : 0,
		      false, false);
		return;
	}
	if (!chunk_keep(r, s))
		return;
	in->next_offset += s->chunk_bytes;
	if (s->done)
		in->done = true; /* N5; answered by raft_snapshot_installed */
	else
		reply(r, m->from, s->last_index, in->next_offset, false, false);
}

/* Where to answer: the leader we know now (the install's data is committed
 * state, good for any leader), else the one that streamed it. */
static keel_node_id answer_to(const struct raft *r)
{
	return r->leader != KEEL_NODE_NONE ? r->leader : r->install.from;
}

int raft_snapshot_installed(struct raft *r, uint64_t last_index)
{
	KEEL_ASSERT(!r->ready_pending); /* R1: the log array moves */
	struct raft_install *in = &r->install;
	if (!in->done || in->chunk_pending || last_index != in->last_index)
		return KEEL_ESTATE;
	KEEL_ASSERT(last_index > r->commit); /* N5 */
	struct raft_log *l = &r->log;
	/* The cut raft.h documents: keep what follows a matching entry. */
	bool holds = last_index <= raft_log_last(l) &&
		     raft_log_term(l, last_index) == in->last_term;
	if (!holds && l->count > 0)
		raft_log_truncate(l, l->snapshot_index + 1);
	raft_log_compact(l, last_index, in->last_term);
	r->snapshot_membership = in->membership;
	raft_config_reload(r);
	r->commit = last_index;
	r->applied = last_index;
	keel_node_id to = answer_to(r);
	raft_install_reset(r);
	if (to != KEEL_NODE_NONE && to != r->opt.id)
		reply(r, to, last_index, 0, true, false);
	raft_check_invariants(r);
	return 0;
}

void raft_snapshot_failed(struct raft *r)
{
	KEEL_ASSERT(!r->ready_pending); /* R1 */
	struct raft_install *in = &r->install;
	if (!in->active)
		return;
	uint64_t last_index = in->last_index;
	keel_node_id to = answer_to(r);
	raft_install_reset(r);
	if (to != KEEL_NODE_NONE && to != r->opt.id)
		reply(r, to, last_index, 0, false, true);
}

/* N5: an append while an install is pending is refused without a hint; a
 * leader streaming to us ignores it, another one probes and ends up
 * streaming (or learns the install is done). */
void raft_snapshot_refuse_append(struct raft *r, const struct msg *m)
{
	KEEL_ASSERT(r->install.done);
	struct msg *out = raft_send(r, MSG_APPEND_RESP, m->from, false);
	out->u.append_resp.success = false;
	out->u.append_resp.reject_index = m->u.append.prev_index;
	out->u.append_resp.ctx = m->u.append.ctx;
}

/* Whole-state check of the snapshot state (raft_check_invariants). */
void raft_snapshot_check(const struct raft *r)
{
	const struct raft_install *in = &r->install;
	if (in->done) {
		KEEL_ASSERT(in->active);
		KEEL_ASSERT(r->role == RAFT_FOLLOWER);      /* N5 */
		KEEL_ASSERT(in->last_index > r->commit);    /* N5 */
	}
	if (in->chunk_pending)
		KEEL_ASSERT(in->active);
	if (r->role != RAFT_LEADER)
		return;
	for (uint32_t i = 0; i < r->progress_count; i++) {
		const struct raft_progress *p = &r->progress[i];
		if (p->state != PROGRESS_SNAPSHOT)
			continue;
		KEEL_ASSERT(p->inflight_count == 0); /* N1 */
		int n = p->snap.want_pending + p->snap.awaiting_send +
			p->snap.chunk_inflight;
		KEEL_ASSERT(n == 1); /* N1 */
	}
}
