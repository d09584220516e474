/*
 * msg.h: the in-memory message, entry and membership types shared by the
 * core, both worlds, the codec, the node and the simulator, and the named
 * limits that bound them.
 *
 * Memory: a struct here never owns the bytes it points at. Whoever passes one
 * into a function lends it for the duration of the call; a function that
 * needs the bytes later copies them. Outputs of the core (struct raft_ready)
 * point into the core's memory and stay valid until raft_advance().
 */
#ifndef KEEL_MSG_H
#define KEEL_MSG_H

#include <stdbool.h>
#include <stdint.h>

typedef uint64_t keel_node_id;
#define KEEL_NODE_NONE ((keel_node_id)0)

/* ---- Named limits ------------------------------------------------------ */

#define KEEL_KEY_BYTES_MAX 1024u               /* one key */
#define KEEL_VALUE_BYTES_MAX (64u * 1024u)     /* one value (also after append) */
#define KEEL_ADDR_BYTES_MAX 64u                /* "host:port", NUL included */
#define KEEL_MEMBERS_MAX 16u                   /* voters + learners */
#define KEEL_BATCH_COMMANDS_MAX 256u           /* client commands in one entry */
#define KEEL_ENTRY_BYTES_MAX (1024u * 1024u)   /* one entry's data */
#define KEEL_APPEND_ENTRIES_MAX 512u           /* entries in one append message */
#define KEEL_APPEND_BYTES_MAX (4u * 1024u * 1024u) /* entry bytes in one append */
#define KEEL_SNAPSHOT_CHUNK_BYTES_MAX (1024u * 1024u) /* one snapshot chunk */
#define KEEL_SNAPSHOT_CHUNK_BYTES 65536u /* chunk size the senders use */
#define KEEL_FRAME_BYTES_MAX (8u * 1024u * 1024u)     /* one frame's payload */

_Static_assert(KEEL_VALUE_BYTES_MAX + KEEL_KEY_BYTES_MAX < KEEL_ENTRY_BYTES_MAX,
	       "one command with the largest key and value fits an entry");
_Static_assert(KEEL_APPEND_BYTES_MAX + 64u * 1024u < KEEL_FRAME_BYTES_MAX,
	       "a full append plus its framing fits a frame");
_Static_assert(KEEL_ENTRY_BYTES_MAX <= KEEL_APPEND_BYTES_MAX,
	       "a single largest entry always fits one append");

/* ---- Log entries ------------------------------------------------------- */

enum entry_type {
	ENTRY_NOOP = 1,    /* a leader's first entry of its term; no data */
	ENTRY_COMMAND = 2, /* data: a batch of client commands (codec_batch_*) */
	ENTRY_CONFIG = 3,  /* data: a membership (codec_membership_*) */
};

struct entry {
	uint64_t term;
	uint64_t index;
	uint32_t type; /* enum entry_type */
	uint32_t data_bytes;
	const uint8_t *data;
};

/* ---- Membership -------------------------------------------------------- */

enum member_role {
	MEMBER_VOTER = 1,
	MEMBER_LEARNER = 2, /* receives the log; never campaigns, and a vote
			     it grants counts for no candidate (raft.h E2) */
};

struct member {
	keel_node_id id;
	uint32_t role; /* enum member_role */
	char peer_addr[KEEL_ADDR_BYTES_MAX];   /* "" in the simulator */
	char client_addr[KEEL_ADDR_BYTES_MAX]; /* "" in the simulator */
};

struct membership {
	uint32_t member_count;
	struct member members[KEEL_MEMBERS_MAX];
	/* The id the next added member gets; ids are never reused, so a removed
	 * node's stale messages can never pass for a new member's. 0 on a
	 * membership written before this field existed: then the effective
	 * value is max(member id) + 1 (membership_next_id() in core/raft.h).
	 * When nonzero it is greater than every member's id (codec-validated). */
	keel_node_id next_id;
};

/* A membership change asked of the leader (core/raft.h raft_change; the
 * client protocol's CLIENT_REQ_MEMBER carries one). */
enum member_change_kind {
	MEMBER_ADD_LEARNER = 1, /* add a learner; id 0 = let the leader assign */
	MEMBER_PROMOTE = 2,     /* learner -> voter, once caught up */
	MEMBER_REMOVE = 3,      /* remove a voter or learner */
};

struct member_change {
	uint32_t kind; /* enum member_change_kind */
	keel_node_id id;
	char peer_addr[KEEL_ADDR_BYTES_MAX];   /* ADD_LEARNER */
	char client_addr[KEEL_ADDR_BYTES_MAX]; /* ADD_LEARNER */
};

/* ---- Raft's durable hard state ----------------------------------------- */

struct raft_hard_state {
	uint64_t term;
	keel_node_id vote; /* KEEL_NODE_NONE when no vote in term */
	uint64_t commit;
};

/* ---- Peer messages ----------------------------------------------------- */

enum msg_type {
	MSG_PREVOTE = 1,
	MSG_PREVOTE_RESP = 2,
	MSG_VOTE = 3,
	MSG_VOTE_RESP = 4,
	MSG_APPEND = 5,
	MSG_APPEND_RESP = 6,
	MSG_SNAPSHOT = 7,
	MSG_SNAPSHOT_RESP = 8,
	MSG_TIMEOUT_NOW = 9,
};
#define MSG_TYPE_MAX MSG_TIMEOUT_NOW

struct msg_vote { /* MSG_PREVOTE, MSG_VOTE */
	uint64_t last_log_index;
	uint64_t last_log_term;
	bool transfer; /* campaign started by TimeoutNow: ignore leader leases */
};

struct msg_vote_resp { /* MSG_PREVOTE_RESP, MSG_VOTE_RESP */
	bool granted;
};

struct msg_append { /* MSG_APPEND; a heartbeat is an append with no entries */
	uint64_t prev_index;
	uint64_t prev_term;
	uint64_t commit;
	uint64_t ctx; /* leader's heartbeat round, echoed back (ReadIndex) */
	uint32_t entry_count;
	const struct entry *entries; /* indexes prev_index+1, +2, ... */
};

struct msg_append_resp { /* MSG_APPEND_RESP */
	bool success;
	uint64_t match_index; /* success: last index known to match the leader */
	uint64_t reject_index; /* failure: the prev_index that was rejected */
	uint64_t hint_index;   /* failure: where the leader should probe next */
	uint64_t hint_term;    /* failure: term at hint_index, 0 if none */
	uint64_t ctx;          /* echo of msg_append.ctx */
};

struct msg_snapshot { /* MSG_SNAPSHOT: one chunk of a streamed snapshot */
	uint64_t last_index; /* the snapshot covers the log up to here */
	uint64_t last_term;
	struct membership membership; /* as of last_index */
	uint64_t offset;               /* byte offset of this chunk */
	uint32_t chunk_bytes;
	const uint8_t *chunk;
	bool done; /* last chunk */
};

struct msg_snapshot_resp { /* MSG_SNAPSHOT_RESP */
	uint64_t last_index; /* of the snapshot being installed */
	uint64_t next_offset; /* the follower wants this byte next */
	bool done;            /* installed */
	bool rejected;        /* follower aborted this install */
};

struct msg {
	uint32_t type; /* enum msg_type */
	keel_node_id from;
	keel_node_id to;
	uint64_t term; /* for MSG_PREVOTE: the term the sender would campaign in */
	union {
		struct msg_vote vote;
		struct msg_vote_resp vote_resp;
		struct msg_append append;
		struct msg_append_resp append_resp;
		struct msg_snapshot snapshot;
		struct msg_snapshot_resp snapshot_resp;
	} u;
};

/* ---- Client commands and replies --------------------------------------- */

enum kv_op {
	KV_GET = 1,
	KV_PUT = 2,
	KV_DEL = 3,
	KV_CAS = 4,    /* set value if current == expected (or absent, if cas_absent) */
	KV_APPEND = 5, /* value = current (or "" if absent) + value */
};

/* Outcome of one applied command, stored in the session for dedup. */
enum kv_status {
	KV_OK = 0,
	KV_NOT_FOUND = 1,  /* get or del of an absent key */
	KV_CAS_FAILED = 2, /* cas: current value did not match */
	KV_TOO_BIG = 3,    /* append: result would exceed KEEL_VALUE_BYTES_MAX */
	KV_STALE_SEQ = 4,  /* seq older than the session's last: reply is gone */
};

enum kv_consistency {
	KV_LINEARIZABLE = 0, /* ReadIndex on the leader */
	KV_STALE = 1,        /* any node's applied state, labelled stale */
};

struct kv_command {
	uint64_t client_id; /* 0: no session (reads only) */
	uint64_t seq;       /* > 0 for writes: one per client request, reused on retry */
	uint32_t op;        /* enum kv_op */
	uint32_t key_bytes;
	const uint8_t *key;
	uint32_t value_bytes; /* put, append: the value; cas: the new value */
	const uint8_t *value;
	bool cas_absent; /* cas: succeed only if the key is absent */
	uint32_t expected_bytes;
	const uint8_t *expected; /* cas: expected current value */
};

#endif
