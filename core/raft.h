/*
 * raft.h: Raft as a deterministic state machine (DESIGN §2, §3).
 *
 * No I/O, no clock, no ambient randomness, no globals. The driver (io_sim's
 * simulator or io_real's node) feeds inputs and drains outputs:
 *
 *   inputs   raft_step(msg)            a decoded, validated peer message
 *            raft_tick()               one logical tick
 *            raft_propose(...)         client work (leader only)
 *            raft_change(...)          a membership change (leader only)
 *            raft_read_index(ctx)      a linearizable read (leader only)
 *            raft_transfer_leader(id)  graceful hand-off
 *            raft_persisted(idx, term) log entries through idx are durable
 *            raft_compact(idx)         the state machine durably holds idx
 *            raft_snapshot_send(...)   leader: one chunk of a snapshot
 *            raft_snapshot_installed() follower: a snapshot is installed
 *   outputs  raft_ready() / raft_advance()
 *
 * Driver loop:
 *
 *   while (raft_has_ready(r)) {
 *       struct raft_ready rd;
 *       raft_ready(r, &rd);
 *       1. send every rd.msgs[i] whose after_persist is false;
 *       2. write rd.hard_state (if rd.hard_state_changed) and rd.entries
 *          (deleting any stored entry with index >= rd.entries[0].index
 *          first) to the store, then sync;  -- may be asynchronous
 *       3. once that sync completes: send the after_persist messages, then
 *          call raft_persisted(r, last entry index, last entry term) if
 *          rd.entry_count > 0;
 *       4. apply rd.committed (they are durable locally and committed);
 *       5. hand each rd.reads[i] to the read path: serve it once the
 *          applied index reaches reads[i].index (or fail it with .err);
 *       6. leader: for each rd.snapshot_wants[i], produce that chunk of a
 *          snapshot (see "Snapshots" below) and, after raft_advance(),
 *          pass it to raft_snapshot_send();
 *       7. follower: stage rd.snapshot_chunk if present (in order with the
 *          writes of step 2); when its .done is set, install it and then
 *          (after raft_advance()) call raft_snapshot_installed();
 *       raft_advance(r, &rd);
 *   }
 *   and, whenever the state machine has durably applied more:
 *       if ((i = raft_compact_index(r, durable_applied)) > 0) {
 *           store log_compact(i, raft_state_at(i)...); sync;
 *           raft_compact(r, i);
 *       }
 *
 * Persistence of successive readies must complete in order. raft_advance()
 * may be called before step 3 completes (the core keeps unstable entries in
 * memory until raft_persisted()). Between raft_ready() and raft_advance()
 * the only input allowed is raft_persisted() (the ready's pointers into the
 * core stay valid until raft_advance()); the others assert. Copy any
 * after_persist message you still hold at raft_advance().
 */
#ifndef KEEL_RAFT_H
#define KEEL_RAFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alloc.h"
#include "msg.h"

enum raft_role {
	RAFT_FOLLOWER = 1,
	RAFT_PRECANDIDATE = 2,
	RAFT_CANDIDATE = 3,
	RAFT_LEADER = 4,
};

const char *raft_role_name(uint32_t role);

/* Defaults the driver may override (raft_options_default fills them). */
#define RAFT_ELECTION_TICKS_DEFAULT 10u
#define RAFT_HEARTBEAT_TICKS_DEFAULT 1u
#define RAFT_INFLIGHT_APPENDS_MAX_DEFAULT 8u
#define RAFT_UNCOMMITTED_BYTES_MAX_DEFAULT (64u * 1024u * 1024u)
#define RAFT_READS_PENDING_MAX 4096u /* read_index calls waiting on a quorum */
/* Compaction keeps at least this tail of applied entries (so a follower a
 * little behind is caught up from the log, not with a snapshot), and
 * compacts once the applied part of the log exceeds twice the tail in
 * entries or in bytes. */
#define RAFT_LOG_TAIL_ENTRIES_DEFAULT 4096u
#define RAFT_LOG_TAIL_BYTES_DEFAULT (8u * 1024u * 1024u)
/* A learner is promoted only when its match is within this many entries of
 * the leader's last index. */
#define RAFT_PROMOTE_LAG_MAX 256u
/* A snapshot stream that makes no progress for this many election timeouts
 * is restarted (the want is emitted again from offset 0). */
#define RAFT_SNAPSHOT_STALL_ELECTIONS 2u

struct raft_options {
	keel_node_id id;
	uint64_t seed; /* election-timeout jitter; nothing else is random */
	/* A follower campaigns after a random timeout in
	 * [election_ticks, 2 * election_ticks). */
	uint32_t election_ticks;
	uint32_t heartbeat_ticks;
	bool prevote;      /* default on */
	bool check_quorum; /* default on: a leader without a quorum of recent
			      contact for election_ticks steps down */
	uint32_t inflight_appends_max; /* per follower, pipelined appends */
	uint32_t append_entries_max;   /* per append message, <= KEEL_APPEND_ENTRIES_MAX */
	uint32_t append_bytes_max;     /* per append message, <= KEEL_APPEND_BYTES_MAX */
	/* Proposals beyond this many uncommitted bytes fail with KEEL_EBUSY. */
	uint64_t uncommitted_bytes_max;
	/* Log compaction policy (raft_compact_index): the applied tail kept. */
	uint32_t log_tail_entries;
	uint64_t log_tail_bytes;
	struct keel_alloc alloc;
};

void raft_options_default(struct raft_options *o, keel_node_id id, uint64_t seed);

/* What a node recovered from its store at start. All of it is borrowed for
 * the duration of raft_init(); the core copies what it keeps. */
struct raft_restore {
	struct raft_hard_state hard_state;
	/* The log starts after the snapshot: first entry index is
	 * snapshot_index + 1. Both 0 on a node that never compacted. */
	uint64_t snapshot_index;
	uint64_t snapshot_term;
	struct membership snapshot_membership; /* valid when snapshot_index > 0 */
	uint64_t applied_index; /* what the state machine has durably applied */
	const struct entry *entries; /* snapshot_index+1 .. last, in order */
	size_t entry_count;
};

struct raft_read {
	uint64_t ctx;   /* as given to raft_read_index */
	uint64_t index; /* serve once applied index >= index */
	int err;        /* 0, or why it failed (KEEL_ENOTLEADER, KEEL_ELEADERSHIP) */
};

struct raft_out_msg {
	struct msg msg;
	bool after_persist; /* hold until this ready's writes are durable */
};

/* Leader: send the chunk at .offset of a snapshot to .to. .last_index 0
 * (with offset 0) means "start a new snapshot": open a consistent read of
 * the state machine (store snap_begin) and send its first chunk. Otherwise
 * continue the open stream whose last_index is .last_index at .offset; if
 * the driver has no such stream or cannot produce that offset (it only
 * keeps the last chunk for a resend), it starts a new snapshot instead. */
struct raft_snapshot_want {
	keel_node_id to;
	uint64_t last_index;
	uint64_t offset;
};

/* Follower: one chunk of a snapshot to stage, in offset order. offset 0
 * starts a new install (discard anything staged before). When done is set,
 * the driver installs atomically (DESIGN §4; core/snapshot.h does it for
 * both worlds) and then calls raft_snapshot_installed(). */
struct raft_snapshot_chunk {
	uint64_t last_index;
	uint64_t last_term;
	struct membership membership; /* as of last_index */
	uint64_t offset;
	uint32_t chunk_bytes;
	const uint8_t *chunk; /* core memory, valid until raft_advance() */
	bool done;
};

struct raft_ready {
	bool hard_state_changed;
	struct raft_hard_state hard_state;

	const struct entry *entries; /* to append durably, in index order */
	size_t entry_count;

	const struct raft_out_msg *msgs;
	size_t msg_count;

	const struct entry *committed; /* to apply, in index order */
	size_t committed_count;

	const struct raft_read *reads;
	size_t read_count;

	const struct raft_snapshot_want *snapshot_wants; /* leader */
	size_t snapshot_want_count;
	bool has_snapshot_chunk; /* follower */
	struct raft_snapshot_chunk snapshot_chunk;

	bool soft_changed; /* role, term or leader changed since the last ready */
	uint32_t role;
	uint64_t term;
	keel_node_id leader; /* KEEL_NODE_NONE when unknown */
};

struct raft_status {
	keel_node_id id;
	uint32_t role;
	uint64_t term;
	keel_node_id leader;
	keel_node_id vote;
	uint64_t commit;
	uint64_t applied; /* last index handed out in ready.committed */
	uint64_t first_index;
	uint64_t last_index;
	uint64_t stable_index; /* last index known durable */
	uint64_t snapshot_index; /* log compacted through here (0: never) */
	bool installing; /* follower: a snapshot install is under way */
	struct membership membership;
	uint64_t config_index;     /* entry that set membership; 0: snapshot/none */
	bool config_pending;       /* config_index > commit */
};

struct raft; /* opaque; sized by raft_sizeof() */

size_t raft_sizeof(void);

/*
 * Initialise r (raft_sizeof() bytes, caller-owned) from options and restored
 * state. A pristine node passes a zeroed restore and then raft_bootstrap() or
 * waits to be contacted. Returns 0, KEEL_EINVAL (bad options or inconsistent
 * restore, nothing allocated) or KEEL_ENOMEM.
 */
int raft_init(struct raft *r, const struct raft_options *o,
	      const struct raft_restore *st);
void raft_close(struct raft *r);

/* Start a new cluster: on a pristine node, appends entry (index 1, term 1,
 * ENTRY_CONFIG m). Every initial voter bootstraps with the same m. Returns 0,
 * KEEL_ESTATE (not pristine) or KEEL_EINVAL (m does not contain this node as a
 * voter, or is malformed). */
int raft_bootstrap(struct raft *r, const struct membership *m);

/* One peer message. Returns 0, or KEEL_EINVAL when m is not addressed to this
 * node (the message is ignored). Never asserts on message content that the
 * codec could have let through. */
int raft_step(struct raft *r, const struct msg *m);

void raft_tick(struct raft *r);

/* Append one entry (ENTRY_COMMAND or ENTRY_CONFIG) as leader; *index_out gets
 * its index. Returns 0, KEEL_ENOTLEADER, KEEL_ESTATE (leadership transfer in
 * progress), KEEL_EBUSY (uncommitted bytes at limit), KEEL_ETOOBIG (over
 * KEEL_ENTRY_BYTES_MAX) or KEEL_ENOMEM. On failure nothing is appended. */
int raft_propose(struct raft *r, uint32_t type, const uint8_t *data,
		 uint32_t data_bytes, uint64_t *index_out);

/* Ask for a linearizable read point. The answer comes in a later ready's
 * reads (same ctx). Returns 0, KEEL_ENOTLEADER or KEEL_EBUSY
 * (RAFT_READS_PENDING_MAX reached). */
int raft_read_index(struct raft *r, uint64_t ctx);

/* Transfer leadership to a voter: catch it up, then send TimeoutNow. Returns
 * 0, KEEL_ENOTLEADER or KEEL_EINVAL (not a voter / self). */
int raft_transfer_leader(struct raft *r, keel_node_id to);

/* ---- Membership changes ---------------------------------------------------
 *
 * Single-server changes through the log: each change is one ENTRY_CONFIG
 * holding the whole new membership, effective on every node as soon as it
 * is appended (not when committed). Safety rules, all enforced here:
 *   M1 at most one config entry is uncommitted at a time;
 *   M2 the leader proposes a change only after an entry of its own term
 *      has committed (commit >= its term's no-op), or a change decided in
 *      an old term could be overwritten (Ongaro, raft-dev 2015);
 *   M3 only one voter is added or removed per change (promote adds one);
 *   M4 ids are assigned from membership.next_id and never reused;
 *   M5 a leader that is not a voter of its own latest config does not
 *      count itself in quorums, and steps down (to follower, without
 *      campaigning) once that config commits;
 *   M6 a learner is promoted only when caught up (replicating, match
 *      within RAFT_PROMOTE_LAG_MAX of the leader's last index).
 * Learners never campaign and never count in a quorum, but every member
 * answers vote requests on the log rule (a learner may already be a voter
 * in the candidate's newer membership). A node removed by a config that
 * has not committed yet may still campaign (among the new voters): a
 * removed leader that lost its quorum before its removal committed may be
 * the only node able to finish it.
 */
/* Propose a membership change as leader. *index_out: its entry's index
 * (done once committed); *id_out: the member's id (assigned for an add with
 * id 0). A MEMBER_ADD_LEARNER whose peer_addr (nonempty) already belongs to a
 * member is answered with that member's id and index 0 and appends nothing,
 * so a joiner may retry safely. Returns 0, KEEL_ENOTLEADER, KEEL_EBUSY (M1,
 * M2 or transfer in progress: retry later), KEEL_ESTATE (M6: not caught up
 * yet, retry later), KEEL_ENOTFOUND (no such member), KEEL_EEXIST (id in
 * use, or promote of a voter), KEEL_ETOOBIG (KEEL_MEMBERS_MAX members),
 * KEEL_EINVAL (removing the last voter; malformed address) or KEEL_ENOMEM.
 * Nothing is appended on failure. */
int raft_change(struct raft *r, const struct member_change *c,
		uint64_t *index_out, keel_node_id *id_out);

/* The effective next id of m (m->next_id, or max member id + 1 if 0). */
keel_node_id membership_next_id(const struct membership *m);

/* ---- Compaction ------------------------------------------------------------ */

/* The index the driver should compact through, given that the state
 * machine durably holds everything through durable_applied; 0 when the
 * policy (options.log_tail_*) says not yet. Never above durable_applied,
 * the stable index or the applied index, nor (leader) above the last_index
 * of a snapshot being streamed to a follower. */
uint64_t raft_compact_index(const struct raft *r, uint64_t durable_applied);

/* Term and membership as of index (snapshot_index <= index <= last): what
 * a snapshot or compaction point at index records. KEEL_ECOMPACTED below
 * the snapshot index, KEEL_ENOTFOUND above the last index. */
int raft_state_at(const struct raft *r, uint64_t index, uint64_t *term,
		  struct membership *m);

/* Drop entries <= index from the core's log (the store has compacted them,
 * or is about to: the driver's store write comes first). index must be in
 * snapshot_index+1 .. min(applied, stable); otherwise KEEL_EINVAL and
 * nothing changes. A leader whose follower now needs a compacted entry
 * streams it a snapshot. */
int raft_compact(struct raft *r, uint64_t index);

/* ---- Snapshots --------------------------------------------------------------
 *
 * Leader: a follower whose next entry was compacted away is sent a
 * snapshot: the core asks for chunks through ready.snapshot_wants, at most
 * one chunk in flight per follower, and the driver answers each want with
 * raft_snapshot_send(). The snapshot's bytes are the driver's business
 * (core/snapshot.h); the core only moves them and tracks offsets. When the
 * follower reports the install done, it is replicated from last_index + 1.
 *
 * Follower: chunks arrive through ready.snapshot_chunk in offset order
 * (out-of-order and duplicate chunks are answered with the offset wanted).
 * After the done chunk the core accepts no appends until the driver calls
 * raft_snapshot_installed() (or raft_snapshot_failed()).
 */

/* Leader: send one chunk for a want. m->offset must be the want's offset
 * (or 0: a new stream, when the driver cannot continue the wanted one);
 * last_term and membership are filled in by the core (raft_state_at);
 * chunk bytes are borrowed until the raft_advance() of the ready that
 * carries the message. Returns 0, KEEL_ENOTLEADER, KEEL_ESTATE (to is not
 * waiting for this chunk any more, or the stream's last_index was
 * compacted past and a new want follows: drop the stream) or KEEL_EINVAL
 * (malformed: chunk over KEEL_SNAPSHOT_CHUNK_BYTES_MAX, last_index above
 * the applied index or below the snapshot index). A stream that makes no
 * progress (no chunk accepted) for RAFT_SNAPSHOT_STALL_ELECTIONS election
 * timeouts is wanted again from offset 0; the driver closes streams the
 * core no longer asks for. */
int raft_snapshot_send(struct raft *r, keel_node_id to,
		       const struct msg_snapshot *m);

/* Follower: the snapshot of the last chunk handed out with done is
 * installed durably: the store holds its kv and sessions, applied index =
 * last_index, and its log was cut exactly as the core now cuts its own: if
 * the log held (last_index, last_term), entries <= last_index are dropped
 * and the rest kept; otherwise the whole log is dropped. Sets the
 * snapshot point, commit >= last_index, applied = last_index, reloads the
 * membership and answers the leader. KEEL_ESTATE if no install is under
 * way or last_index does not match it. */
int raft_snapshot_installed(struct raft *r, uint64_t last_index);

/* Follower: the install failed (the driver could not stage or switch; the
 * old state is intact). The leader is told to start over. */
void raft_snapshot_failed(struct raft *r);

/* The log through (index, term) is durable. Stale acks (the entry was since
 * replaced) are ignored. */
void raft_persisted(struct raft *r, uint64_t index, uint64_t term);

bool raft_has_ready(const struct raft *r);
void raft_ready(struct raft *r, struct raft_ready *rd);
void raft_advance(struct raft *r, const struct raft_ready *rd);

void raft_status(const struct raft *r, struct raft_status *out);

/* Term of the entry at index from the core's log; 0 if not present. */
uint64_t raft_term_at(const struct raft *r, uint64_t index);

/* Whole-state consistency check: asserts every invariant listed at the top
 * of raft.c. Called by the simulator after every event. */
void raft_check_invariants(const struct raft *r);

#endif
