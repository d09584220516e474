/*
 * snapshots.c: compaction and snapshot streams, the loop thread's side
 * (the storage thread's side is snapjob.c).
 *
 * Compaction: after a job applied entries, raft_compact_index() says how
 * far the log may be cut; the store cut (log_compact, synced) rides in the
 * next job and raft_compact() follows when that job completed, so the core
 * never drops an entry the store still needs and keeps in memory only the
 * log above its snapshot point.
 *
 * Leader: ready.snapshot_wants are queued, one per follower. The store has
 * one outgoing stream (one read transaction); it serves one follower (the
 * owner) until its last chunk, or until the owner asked for nothing for
 * SERVER_SNAP_IDLE_MS, then the next queued follower (an idle owner's stream
 * is closed even when no one waits). At most one chunk is
 * being produced at a time, and chunks leave at most at
 * cfg.snapshot_rate_bytes per second (a token bucket refilled every tick).
 *
 * Follower: ready.snapshot_chunk is copied into the collecting job (staged
 * on the storage thread in order with the job's log writes); when the job
 * that installed the last chunk completes, raft_snapshot_installed(). A
 * malformed chunk: a log line and raft_snapshot_failed() (the leader starts
 * over).
 */
#include <stdlib.h>
#include <string.h>

#include "../core/assert.h"
#include "../core/err.h"
#include "../io_real/log.h"
#include "server.h"

static struct snap_work *work_of(struct server *s)
{
	struct disk_job *j = s->collecting;
	if (j->snap == NULL)
		j->snap = snap_work_new();
	if (j->snap != NULL)
		j->snap->delay_ms = s->cfg.debug_snapshot_delay_ms;
	return j->snap;
}

static void queue_want(struct server *s, const struct raft_snapshot_want *w)
{
	if (w->to == s->snap_owner)
		s->snap_owner_ms = uv_now(s->loop);
	for (uint32_t i = 0; i < s->snap_want_count; i++) {
		if (s->snap_wants[i].to == w->to) {
			s->snap_wants[i] = *w; /* the newer want replaces it */
			return;
		}
	}
	if (s->snap_want_count < KEEL_MEMBERS_MAX)
		s->snap_wants[s->snap_want_count++] = *w;
}

void snaps_on_ready(struct server *s, const struct raft_ready *rd)
{
	for (size_t i = 0; i < rd->snapshot_want_count; i++)
		queue_want(s, &rd->snapshot_wants[i]);
	if (!rd->has_snapshot_chunk)
		return;
	const struct raft_snapshot_chunk *c = &rd->snapshot_chunk;
	if (s->snap_fail)
		return; /* after a chunk that was dropped: it would stage after a gap */
	if (c->offset == 0)
		LOG_INFO("receiving a snapshot through index %llu (term %llu) from the leader",
			 (unsigned long long)c->last_index,
			 (unsigned long long)c->last_term);
	struct snap_work *w = work_of(s);
	int rc = w == NULL ? KEEL_ENOMEM : snap_work_add_chunk(w, c);
	if (rc == 0) /* snapjob.h: tells chunks after a failure apart */
		w->stage[w->stage_count - 1].failures = s->snap_failures;
	if (rc != 0) {
		LOG_WARN("cannot stage the snapshot chunk at offset %llu: %s; the leader will start over",
			 (unsigned long long)c->offset, log_err_msg(rc));
		s->snap_fail = true;
	}
}

static void drop_stream(struct server *s)
{
	if (s->snap_owner != KEEL_NODE_NONE)
		s->snap_close = true;
	s->snap_owner = KEEL_NODE_NONE;
}

void snaps_leadership_lost(struct server *s)
{
	s->snap_want_count = 0;
	drop_stream(s);
}

/* The queued want to serve next, or -1 (none, or the owner still holds the
 * stream). *fresh: it starts a new stream. */
static int pick_want(struct server *s, bool *fresh)
{
	for (uint32_t i = 0; i < s->snap_want_count; i++) {
		if (s->snap_wants[i].to == s->snap_owner) {
			*fresh = s->snap_wants[i].last_index == 0;
			return (int)i;
		}
	}
	if (s->snap_owner != KEEL_NODE_NONE &&
	    uv_now(s->loop) - s->snap_owner_ms < SERVER_SNAP_IDLE_MS)
		return -1;
	*fresh = true;
	return 0;
}

/* The owner asked for nothing for SERVER_SNAP_IDLE_MS (it was removed, or
 * died, or the core restarted it elsewhere): release the stream even when
 * no one else waits, since an open read transaction stops LMDB from
 * reusing pages and the data file grows under writes. */
static void close_idle_stream(struct server *s)
{
	if (s->snap_owner == KEEL_NODE_NONE || s->snap_send_inflight)
		return;
	for (uint32_t i = 0; i < s->snap_want_count; i++)
		if (s->snap_wants[i].to == s->snap_owner)
			return;
	if (uv_now(s->loop) - s->snap_owner_ms < SERVER_SNAP_IDLE_MS)
		return;
	LOG_INFO("snapshot stream for node %llu idle for %u ms; closed",
		 (unsigned long long)s->snap_owner, (unsigned)SERVER_SNAP_IDLE_MS);
	drop_stream(s);
}

void snaps_schedule(struct server *s)
{
	close_idle_stream(s);
	if (s->snap_fail) {
		s->snap_fail = false;
		s->snap_failures++;
		raft_snapshot_failed(s->raft);
	}
	if (s->snap_close) {
		struct snap_work *w = work_of(s);
		if (w != NULL) {
			w->close_reader = true;
			s->snap_close = false;
		}
	}
	if (s->role != RAFT_LEADER) {
		s->snap_want_count = 0;
		return;
	}
	if (s->snap_send_inflight || s->snap_want_count == 0 ||
	    s->snap_budget_bytes < KEEL_SNAPSHOT_CHUNK_BYTES)
		return;
	bool fresh = false;
	int k = pick_want(s, &fresh);
	if (k < 0)
		return;
	struct snap_work *w = work_of(s);
	if (w == NULL)
		return;
	struct raft_snapshot_want want = s->snap_wants[k];
	s->snap_wants[k] = s->snap_wants[--s->snap_want_count];
	if (want.to != s->snap_owner)
		fresh = true;
	w->has_send = true;
	w->send.to = want.to;
	w->send.new_stream = fresh;
	w->send.last_index = want.last_index;
	w->send.offset = fresh ? 0 : want.offset;
	s->snap_owner = want.to;
	s->snap_owner_ms = uv_now(s->loop);
	s->snap_send_inflight = true;
	s->snap_budget_bytes -= KEEL_SNAPSHOT_CHUNK_BYTES;
}

void snaps_tick(struct server *s)
{
	uint64_t cap = s->cfg.snapshot_rate_bytes;
	if (cap < 2u * KEEL_SNAPSHOT_CHUNK_BYTES)
		cap = 2u * KEEL_SNAPSHOT_CHUNK_BYTES;
	s->snap_budget_bytes += s->cfg.snapshot_rate_bytes * s->cfg.tick_ms / 1000u;
	if (s->snap_budget_bytes > cap)
		s->snap_budget_bytes = cap;
}

static void sent(struct server *s, struct snap_send *sd)
{
	s->snap_send_inflight = false;
	if (!sd->produced || s->role != RAFT_LEADER || sd->to != s->snap_owner)
		return;
	if (sd->out_offset == 0) {
		int rc = raft_state_at(s->raft, sd->out_last_index,
				       &s->snap_last_term, &s->snap_membership);
		if (rc != 0) {
			LOG_WARN("snapshot through index %llu for node %llu: no term for it (%s); dropped",
				 (unsigned long long)sd->out_last_index,
				 (unsigned long long)sd->to, keel_err_name(rc));
			drop_stream(s);
			return;
		}
		s->snap_last_index = sd->out_last_index;
		LOG_INFO("sending node %llu a snapshot through index %llu",
			 (unsigned long long)sd->to,
			 (unsigned long long)sd->out_last_index);
	}
	KEEL_ASSERT(s->snap_last_index == sd->out_last_index);
	struct msg_snapshot m;
	memset(&m, 0, sizeof m);
	m.last_index = s->snap_last_index;
	m.last_term = s->snap_last_term;
	m.membership = s->snap_membership;
	m.offset = sd->out_offset;
	m.chunk_bytes = sd->chunk_bytes;
	m.chunk = sd->chunk;
	m.done = sd->done;
	/* Raft borrows the bytes until the ready carrying the message is
	 * advanced (the next drive): keep them until the next chunk. */
	free(s->snap_out);
	s->snap_out = sd->chunk;
	sd->chunk = NULL;
	int rc = raft_snapshot_send(s->raft, sd->to, &m);
	if (rc != 0) {
		LOG_DEBUG("snapshot chunk for node %llu at offset %llu not sent: %s",
			  (unsigned long long)sd->to,
			  (unsigned long long)m.offset, keel_err_name(rc));
		drop_stream(s);
		return;
	}
	s->snap_chunks_sent++;
	if (m.done)
		s->snap_owner = KEEL_NODE_NONE; /* the storage thread closed it */
}

static void staged(struct server *s, struct snap_work *w)
{
	for (uint32_t i = 0; i < w->stage_count; i++) {
		const struct snap_stage *sg = &w->stage[i];
		if (sg->err != 0 && sg->err != KEEL_ESTATE) {
			LOG_WARN("snapshot chunk at offset %llu (through index %llu): %s; install abandoned, the old state stands, the leader will start over",
				 (unsigned long long)sg->c.offset,
				 (unsigned long long)sg->c.last_index,
				 sg->err == KEEL_EMALFORMED ? "malformed"
							     : log_err_msg(sg->err));
			/* Once per failure: chunks handed out after an earlier
			 * raft_snapshot_failed belong to a new stream. */
			if (sg->failures == s->snap_failures) {
				s->snap_failures++;
				raft_snapshot_failed(s->raft);
			}
			continue;
		}
		if (!sg->installed)
			continue;
		int rc = raft_snapshot_installed(s->raft, sg->c.last_index);
		if (rc != 0) {
			LOG_WARN("snapshot through index %llu installed but Raft refused it: %s",
				 (unsigned long long)sg->c.last_index,
				 keel_err_name(rc));
			continue;
		}
		s->snap_installs++;
		if (s->applied_done < sg->c.last_index)
			s->applied_done = sg->c.last_index;
		if (s->apply_submitted < sg->c.last_index)
			s->apply_submitted = sg->c.last_index;
		LOG_INFO("snapshot through index %llu installed",
			 (unsigned long long)sg->c.last_index);
	}
}

static void plan_compaction(struct server *s)
{
	if (s->compact_inflight != 0 || s->phase == PHASE_CLOSING)
		return;
	struct raft_status st;
	raft_status(s->raft, &st);
	if (st.installing)
		return;
	/* Not above the store's own applied index (disk.h invariant 7): the
	 * rest of the applied state may still be only in the write cache. */
	uint64_t durable = s->store_applied < s->applied_done ? s->store_applied
							       : s->applied_done;
	uint64_t i = raft_compact_index(s->raft, durable);
	if (i == 0)
		return;
	uint64_t term = 0;
	struct membership m;
	if (raft_state_at(s->raft, i, &term, &m) != 0)
		return;
	struct snap_work *w = work_of(s);
	if (w == NULL)
		return;
	w->compact_index = i;
	w->compact_term = term;
	w->compact_membership = m;
	s->compact_inflight = i;
}

void snaps_job_done(struct server *s, struct disk_job *j)
{
	struct snap_work *w = j->snap;
	if (w != NULL) {
		if (w->compact_index > 0) {
			s->compact_inflight = 0;
			if (w->compacted) {
				int rc = raft_compact(s->raft, w->compact_index);
				if (rc == 0)
					s->compactions++;
				else
					LOG_DEBUG("compaction to %llu: %s",
						  (unsigned long long)w->compact_index,
						  keel_err_name(rc));
			}
		}
		if (w->has_send)
			sent(s, &w->send);
		staged(s, w);
	}
	plan_compaction(s);
}
