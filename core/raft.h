/*
 * raft.h: Raft as a deterministic state machine (DESIGN §2, §3).
 *
 * No I/O, no clock, no ambient randomness, no globals. The driver (io_sim's
 * simulator or io_real's node) feeds inputs and drains outputs:
 *
 *   inputs   raft_step(msg)            a decoded, validated peer message
 *            raft_tick()               one logical tick
 *            raft_propose(...)         client work (leader only)
 *            raft_read_index(ctx)      a linearizable read (leader only)
 *            raft_transfer_leader(id)  graceful hand-off
 *            raft_persisted(idx, term) log entries through idx are durable
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
 *       raft_advance(r, &rd);
 *   }
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
	struct membership membership;
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
