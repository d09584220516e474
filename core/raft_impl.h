/*
 * raft_impl.h: the inside of struct raft, shared by the core/raft*.c files.
 * Not part of the contract: drivers use core/raft.h only.
 */
#ifndef KEEL_RAFT_IMPL_H
#define KEEL_RAFT_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "assert.h"
#include "msg.h"
#include "raft.h"

/* Named limits of the core. */
#define RAFT_OUTBOX_MAX 512u       /* messages queued between two readies */
#define RAFT_OUTBOX_MIN 16u        /* initial outbox; doubles up to the max */
#define RAFT_READY_COMMITTED_MAX 4096u /* entries released for apply per ready */
#define RAFT_INFLIGHT_MAX 64u      /* cap on options.inflight_appends_max */
#define RAFT_ELECTION_TICKS_MAX (1u << 20)
#define RAFT_LOG_SCAN_MAX (1u << 30) /* bound on backwards scans of the log */

_Static_assert(RAFT_INFLIGHT_APPENDS_MAX_DEFAULT <= RAFT_INFLIGHT_MAX,
	       "the default pipelining depth fits the inflight ring");
_Static_assert(KEEL_MEMBERS_MAX * RAFT_INFLIGHT_MAX < RAFT_OUTBOX_MAX * 4u,
	       "a full pipeline to every member is a bounded share of the outbox");

/* ---- The log: entries snapshot_index+1 .. last, data owned by the core --- */

struct raft_log {
	struct keel_alloc alloc;
	uint64_t snapshot_index; /* the entry before the first one we hold */
	uint64_t snapshot_term;
	struct entry *entries; /* entries[i] has index snapshot_index + 1 + i */
	size_t count;
	size_t cap;
	uint64_t stable_index; /* entries through here are durable (raft_persisted) */
	uint64_t handed_index; /* entries through here were given out in a ready */
};

void raft_log_init(struct raft_log *l, const struct keel_alloc *a);
void raft_log_free(struct raft_log *l);
uint64_t raft_log_first(const struct raft_log *l);
uint64_t raft_log_last(const struct raft_log *l);
uint64_t raft_log_last_term(const struct raft_log *l);
/* Term at index; snapshot_term at snapshot_index; 0 when not held. */
uint64_t raft_log_term(const struct raft_log *l, uint64_t index);
/* The entry at index, which must be in first..last. */
const struct entry *raft_log_get(const struct raft_log *l, uint64_t index);
/* Append a copy of e (index must be last+1). Returns 0 or KEEL_ENOMEM. */
int raft_log_append(struct raft_log *l, const struct entry *e);
/* Remove every entry with index >= from (from > snapshot_index). */
void raft_log_truncate(struct raft_log *l, uint64_t from);
/* Drop every entry <= index and make (index, term) the snapshot point; an
 * index beyond the last drops the whole log. stable and handed indexes are
 * raised to index (a snapshot point is durable). */
void raft_log_compact(struct raft_log *l, uint64_t index, uint64_t term);
/* Largest i <= index held (or snapshot_index) with term_at(i) <= term. */
uint64_t raft_log_find_by_term(const struct raft_log *l, uint64_t index,
			       uint64_t term);

/* ---- Leader's view of one member ---------------------------------------- */

enum progress_state {
	PROGRESS_PROBE = 1,     /* one append at a time until a match is found */
	PROGRESS_REPLICATE = 2, /* pipelined appends, up to inflight_appends_max */
	PROGRESS_SNAPSHOT = 3,  /* its next entry was compacted: streaming a
				   snapshot, one chunk in flight */
};

/* Leader: one follower's snapshot stream (raft_snapshot.c). Exactly one of
 * want_pending, awaiting_send, chunk_inflight is set in PROGRESS_SNAPSHOT. */
struct raft_snap_stream {
	uint64_t last_index;  /* of the stream; 0 until the first chunk is sent */
	uint64_t offset;      /* the chunk wanted next, or the one in flight */
	uint64_t chunk_end;   /* in flight: offset + its bytes */
	bool want_pending;    /* a want goes out with the next ready */
	bool awaiting_send;   /* a want went out, raft_snapshot_send not yet */
	bool chunk_inflight;  /* a chunk went out, no answer yet */
	bool chunk_done;      /* in flight: the last chunk */
	uint32_t stall_ticks; /* ticks without progress */
};

struct raft_progress {
	keel_node_id id;
	bool voter;
	uint32_t state;
	uint64_t match;
	uint64_t next;
	bool paused;        /* probe: an append is out, wait for an answer */
	uint64_t acked_round; /* highest heartbeat round it answered (ReadIndex,
				 check-quorum) */
	uint32_t stall_ticks; /* ticks without match progress while behind */
	uint32_t inflight_count; /* ring of last indexes of appends in flight */
	uint32_t inflight_head;
	uint64_t inflight[RAFT_INFLIGHT_MAX];
	struct raft_snap_stream snap; /* PROGRESS_SNAPSHOT */
};

/* Follower: the snapshot being received (raft_snapshot.c). */
struct raft_install {
	bool active;       /* chunks from offset 0 up to next_offset accepted */
	bool done;         /* the last chunk accepted: appends are refused until
			      raft_snapshot_installed / raft_snapshot_failed */
	keel_node_id from; /* the leader streaming it */
	uint64_t last_index;
	uint64_t last_term;
	struct membership membership;
	uint64_t next_offset;
	/* The accepted chunk not yet handed out in a ready; its bytes live in
	 * chunk_buf (core memory, valid until the raft_advance after it). */
	bool chunk_pending;
	struct raft_snapshot_chunk chunk;
	uint8_t *chunk_buf;
	uint32_t chunk_buf_cap;
};

/* ---- Reads -------------------------------------------------------------- */

struct raft_pending_read {
	uint64_t ctx;
	uint64_t index; /* leader's commit at arrival */
	uint64_t round; /* needs a quorum acked_round >= round */
};

/* ---- The state machine -------------------------------------------------- */

struct raft {
	struct raft_options opt;
	uint64_t prng; /* splitmix64 state, election jitter only */

	/* Hard state (invariant 2, 3). */
	uint64_t term;
	keel_node_id vote;
	uint64_t commit;
	uint64_t applied; /* last index handed out in ready.committed */

	/* Soft state. */
	uint32_t role;
	keel_node_id leader;
	uint32_t election_elapsed;  /* ticks since heard from a leader / reset */
	uint32_t election_timeout;  /* randomized, [E, 2E) */
	uint32_t heartbeat_elapsed; /* leader */
	uint32_t lead_ticks;        /* leader: ticks since elected */
	uint64_t round_mark_prev;   /* leader: hb_round two half-windows ago */
	uint64_t round_mark_cur;    /* leader: hb_round one half-window ago */

	struct raft_log log;

	/* Membership: the latest config entry in the log, else the snapshot's. */
	struct membership membership;
	struct membership snapshot_membership; /* as of snapshot_index */
	uint64_t config_index; /* entry that set it; 0 if none (or snapshot) */
	bool config_prev_voter; /* self was a voter before config_index's entry */

	/* Elections: who answered this (pre)campaign. */
	keel_node_id granted[KEEL_MEMBERS_MAX];
	uint32_t granted_count;
	keel_node_id rejected[KEEL_MEMBERS_MAX];
	uint32_t rejected_count;

	/* Leader state. */
	struct raft_progress progress[KEEL_MEMBERS_MAX];
	uint32_t progress_count;
	uint64_t term_start_index; /* index of this term's no-op */
	bool term_unsynced; /* E6: appends wait until the no-op is durable */
	uint64_t uncommitted_bytes;
	uint64_t hb_round;      /* heartbeat rounds started (ctx) */
	bool hb_round_fresh;    /* round hb_round not yet handed out */
	keel_node_id transfer_to;
	uint32_t transfer_elapsed;

	bool step_down_pending; /* M5: removal committed while a ready was out */

	/* Snapshots. */
	struct raft_install install; /* follower */
	struct raft_snapshot_want wants[KEEL_MEMBERS_MAX]; /* handed in a ready */

	/* ReadIndex. */
	struct raft_pending_read *reads_pending;
	uint32_t reads_pending_count;
	struct raft_read *reads_done; /* results for the next ready */
	uint32_t reads_done_count;

	/* Outputs. */
	struct raft_out_msg *outbox;
	uint32_t outbox_count;
	uint32_t outbox_cap; /* grows by doubling, never while a ready is out */
	uint64_t outbox_dropped;
	struct msg scratch; /* filled instead when the outbox is full */ /* messages dropped because the outbox was full */
	struct raft_hard_state hs_handed; /* hard state last given out */
	uint32_t soft_role;
	uint64_t soft_term;
	keel_node_id soft_leader;
	bool ready_pending; /* raft_ready called, raft_advance not yet */
};

/* raft.c */
bool raft_is_voter(const struct membership *m, keel_node_id id);
bool raft_is_member(const struct membership *m, keel_node_id id);
uint32_t raft_voter_count(const struct membership *m);

/* raft_config.c */
void raft_config_reload(struct raft *r);
void raft_config_on_append(struct raft *r, const struct entry *e);
void raft_progress_rebuild(struct raft *r);
struct raft_progress *raft_progress_find(struct raft *r, keel_node_id id);
bool raft_self_voter(const struct raft *r);
bool raft_may_campaign(const struct raft *r);
uint32_t raft_quorum(const struct raft *r);

/* raft_ready.c */
struct msg *raft_send(struct raft *r, uint32_t type, keel_node_id to,
		      bool after_persist);
uint32_t raft_outbox_room(const struct raft *r);
void raft_outbox_purge_appends(struct raft *r);
void raft_hard_state(const struct raft *r, struct raft_hard_state *hs);

/* raft_election.c */
void raft_become_follower(struct raft *r, uint64_t term, keel_node_id leader);
void raft_campaign(struct raft *r, bool prevote, bool transfer);
void raft_reset_election_timer(struct raft *r);
void raft_tick_election(struct raft *r);
void raft_recv_vote(struct raft *r, const struct msg *m);
void raft_recv_vote_resp(struct raft *r, const struct msg *m);
bool raft_in_lease(const struct raft *r);

/* raft_replication.c */
void raft_become_leader(struct raft *r);
void raft_progress_probe(struct raft_progress *p, uint64_t next);
void raft_send_append(struct raft *r, struct raft_progress *p, bool heartbeat);
void raft_send_appends(struct raft *r, struct raft_progress *p);
void raft_bcast_append(struct raft *r);
void raft_bcast_heartbeat(struct raft *r);
void raft_maybe_commit(struct raft *r);
uint64_t raft_quorum_value(const struct raft *r, uint64_t self_value,
			   bool acked_rounds);
void raft_tick_leader(struct raft *r);
bool raft_append_valid(const struct msg *m);
void raft_recv_append(struct raft *r, const struct msg *m);
void raft_recv_append_resp(struct raft *r, const struct msg *m);
int raft_leader_append(struct raft *r, uint32_t type, const uint8_t *data,
		       uint32_t data_bytes);

/* raft_member.c */
void raft_member_check_removed(struct raft *r);

/* raft_snapshot.c */
void raft_snapshot_start(struct raft *r, struct raft_progress *p);
void raft_recv_snapshot_resp(struct raft *r, const struct msg *m);
void raft_snapshot_tick(struct raft *r);
size_t raft_snapshot_wants(struct raft *r);
bool raft_snapshot_has_wants(const struct raft *r);
uint64_t raft_snapshot_streams_floor(const struct raft *r);
void raft_install_reset(struct raft *r);
void raft_recv_snapshot(struct raft *r, const struct msg *m);
void raft_snapshot_refuse_append(struct raft *r, const struct msg *m);
void raft_snapshot_check(const struct raft *r);

/* raft_read.c */
void raft_reads_release(struct raft *r);
void raft_reads_fail_all(struct raft *r, int err);

/* raft_transfer.c */
void raft_transfer_check(struct raft *r, struct raft_progress *p);
void raft_transfer_abort(struct raft *r);
void raft_recv_timeout_now(struct raft *r, const struct msg *m);

#endif
