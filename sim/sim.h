/*
 * sim.h: keelsim, the deterministic cluster simulator (DESIGN §6).
 *
 * One run = one seed: a cluster of real raft + kv + mem_store nodes, real
 * codec on every message, simulated network, disks, clocks and clients, a
 * nemesis that injects faults, checks after every event and at the end.
 *
 * Shape of a run (sim_run.c):
 *   1. nodes bootstrap at t=0, clients start issuing operations;
 *   2. fault phase: the nemesis acts until the clients have invoked --ops
 *      operations (or SIM_FAULT_PHASE_NS_MAX passes);
 *   3. heal: every fault removed, crashed nodes restarted; a probe client
 *      must then get a new write acknowledged within SIM_LIVENESS_NS;
 *   4. quiesce SIM_QUIESCE_NS, then the final checks (logs, applied state
 *      digests, committed entries kept) and the history through keelcheck.
 *
 * Everything is single-threaded; the only time is the event queue's virtual
 * time; every random choice comes from a simrng stream of the seed.
 *
 * Module map: sim_node.c (node model and driver loop), sim_client.c (clients
 * and history), sim_nemesis.c (faults), sim_check.c (cross-node checks),
 * sim_conf.c (profiles, swarm draws), sim_run.c (the loop), keelsim.c (CLI).
 */
#ifndef KEEL_SIM_H
#define KEEL_SIM_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "../core/kv.h"
#include "../core/msg.h"
#include "../core/raft.h"
#include "../core/snapshot.h"
#include "../core/store.h"
#include "../io_sim/mem_store.h"
#include "../io_sim/simdisk.h"
#include "../io_sim/simnet.h"
#include "../io_sim/simq.h"
#include "../io_sim/simrng.h"
#include "../io_sim/simtrace.h"

/* ---- named limits ------------------------------------------------------- */

#define SIM_NODES_MAX 7u
#define SIM_CLIENTS_MAX 16u
#define SIM_KEYS_MAX 16u
#define SIM_OPS_MAX 1000000u              /* --ops */
#define SIM_SYNCS_MAX 1u                  /* a node's syncs in flight (group commit) */
#define SIM_JOB_HELD_MAX (1u << 20)       /* messages and answers one storage job holds */
#define SIM_WAITERS_MAX 1024u             /* a node's client requests waiting */
#define SIM_BATCH_MAX 64u                 /* client commands in one proposal */
#define SIM_EVENTS_MAX 200000000ull       /* events in one run */
#define SIM_EVENTS_PER_VSEC_MAX 1000000u    /* in any virtual second: else a message storm */
#define SIM_TERMS_MAX (1u << 24)          /* terms tracked for one-leader-per-term */
#define SIM_LOG_MAX (1u << 24)            /* log indexes tracked by the checks */
#define SIM_VALUE_BYTES_MAX 64u           /* workload values */
#define SIM_SNAP_WANTS_MAX KEEL_MEMBERS_MAX /* a leader's queued snapshot wants */
#define SIM_ADMIN_ADDR_FMT "10.0.%u.%u:7000"  /* a joiner's peer_addr: slot, generation */

/* ---- virtual time ------------------------------------------------------- */

#define SIM_MS 1000000ull
#define SIM_S 1000000000ull
#define SIM_TICK_NS (10 * SIM_MS)           /* nominal tick */
/* As the production node's defaults (node/config.h): 300-600 ms election
 * timeout, heartbeat every 50 ms. */
#define SIM_ELECTION_TICKS 30u
#define SIM_HEARTBEAT_TICKS 5u
#define SIM_CLIENT_TIMEOUT_NS (500 * SIM_MS) /* one attempt (swarm draws it) */
#define SIM_CLIENT_BACKOFF_NS (10 * SIM_MS) /* doubles per retry, up to 16x */
#define SIM_CLIENT_ATTEMPTS_MAX 1000u       /* then the op is indeterminate */
/* The fault phase ends when the clients have invoked --ops operations, or
 * after SIM_FAULT_PHASE_NS_BASE + ops * SIM_FAULT_PHASE_NS_PER_OP. */
#define SIM_FAULT_PHASE_NS_BASE (60 * SIM_S)
#define SIM_FAULT_PHASE_NS_PER_OP (200 * SIM_MS)
#define SIM_LIVENESS_NS (30 * SIM_S)        /* heal -> new write acknowledged */
#define SIM_QUIESCE_NS (3 * SIM_S)
#define SIM_FULL_CHECK_EVENTS 2048u         /* pairwise log checks this often */
/* raft_check_invariants() walks the whole log, so on a node with a long log
 * it runs every (1 + last_index / SIM_INVARIANT_ENTRIES) events touching the
 * node (amortised O(1) per event), and after every event with --paranoid. */
#define SIM_INVARIANT_ENTRIES 8u

enum sim_profile {
	SIM_PROFILE_CALM,
	SIM_PROFILE_NET,
	SIM_PROFILE_CRASH,
	SIM_PROFILE_DISK,
	SIM_PROFILE_ALL,
	SIM_PROFILE_SWARM,
	SIM_PROFILE_MEMBER,
	SIM_PROFILE_COUNT
};

const char *sim_profile_name(uint32_t p);
int sim_profile_parse(const char *s, uint32_t *out);

struct sim_opts {
	uint64_t seed;
	uint32_t nodes;   /* 1..SIM_NODES_MAX */
	uint32_t ops;     /* client operations in the fault phase */
	uint32_t clients; /* concurrent clients, 1..SIM_CLIENTS_MAX-1 */
	uint32_t profile;
	FILE *trace;      /* readable timeline, or NULL */
	FILE *history;    /* native history, or NULL */
	const char *html_dir; /* picture of a non-linearizable key, or NULL */
	uint64_t check_timeout_ms;
	bool quiet;       /* no "fail:" detail lines on stderr */
	bool paranoid;    /* raft_check_invariants() after every event */
};

/* What one seed turned on (sim_conf.c draws it from the profile). */
struct sim_faults {
	struct simnet_conf net;
	struct simdisk_conf disk;
	bool partitions;
	bool clogs;
	bool crashes;
	bool torn;        /* crashes may tear the last write */
	bool pauses;
	bool slow_disk;
	bool corruption;
	/* Targeted crashes: right after a leader is elected or proposes, crash
	 * it within crash_soon_ns_max (before or after its write is durable,
	 * before or after it replicates): the schedules of Raft's figure 8. */
	uint32_t crash_soon_ppm;
	uint64_t crash_soon_ns_max;
	bool aligned_ticks; /* every node starts ticking at the same instant */
	uint32_t drift_ppm_max;  /* per-node clock drift, +- */
	uint64_t nemesis_mean_ns; /* mean time between nemesis actions */
	uint64_t fault_ns_max;    /* how long one fault lasts at most */
	uint64_t storm_ns_max;    /* a window of faults lasts at most this */
	uint64_t quiet_ns_max;    /* then a window without them, at most this */
	uint32_t keys;            /* key space size */
	uint32_t stale_read_ppm;  /* share of gets that ask for stale reads */
	uint64_t think_ns_mean;   /* client pause between operations */
	uint64_t giveup_ns;       /* a client gives up on an op after this */
	uint64_t client_timeout_ns; /* one attempt's timeout */
	uint32_t append_pct;      /* share of appends in the workload */
	/* Compaction policy of every node (raft_options.log_tail_*): small,
	 * so that compaction and snapshot installs happen often. */
	uint32_t log_tail_entries;
	uint64_t log_tail_bytes;
	/* Snapshot chunk reads on a leader cost this much disk time. */
	uint64_t snap_read_ns_mean;
	/* Membership changes (sim_admin.c): an admin adds learners, promotes
	 * them, removes voters and learners; spare node slots for joiners. */
	bool membership;
	uint64_t admin_mean_ns;   /* mean time between admin actions */
	uint32_t install_crash_ppm; /* crash soon after a snapshot stage/install */
	uint32_t change_crash_ppm;  /* crash a leader soon after it takes a change */
};

void sim_faults_draw(struct sim_faults *f, uint32_t profile, uint32_t nodes,
		     uint64_t seed);
/* One line naming what is on, for the trace. */
void sim_faults_describe(const struct sim_faults *f, char *out, size_t cap);

/* ---- events ------------------------------------------------------------- */

enum sim_ev {
	EV_TICK = 1,      /* who: node; arg: epoch */
	EV_DELIVER,       /* ptr: struct sim_pkt */
	EV_DISK,          /* who: node; arg: epoch */
	EV_CLIENT_NEXT,   /* who: client: start the next operation */
	EV_CLIENT_TIMEOUT, /* who: client; arg: attempt */
	EV_CLIENT_RETRY,  /* who: client; arg: attempt */
	EV_NEMESIS,       /* next fault action */
	EV_FAULT_END,     /* who: fault slot; arg: generation */
	EV_RESTART,       /* who: node; arg: epoch */
	EV_UNPAUSE,       /* who: node; arg: epoch */
	EV_HEAL,          /* end of the fault phase */
	EV_PROBE,         /* liveness probe starts */
	EV_QUIET,         /* a fault window ends: soft heal; arg: generation */
	EV_STORM,         /* a quiet window ends: faults resume */
	EV_CRASH,         /* who: node; arg: epoch: a targeted crash */
	EV_SNAP,          /* who: node; arg: epoch: produce one snapshot chunk */
	EV_ADMIN,         /* the admin's next membership action */
};

enum sim_pkt_kind { PKT_PEER = 1, PKT_REQUEST = 2, PKT_RESPONSE = 3 };

struct sim_pkt {
	uint32_t from, to; /* endpoints: nodes 0..n-1, then clients */
	uint32_t kind;
	uint32_t bytes;
	uint8_t data[];    /* one codec frame */
};

/* ---- node ------------------------------------------------------------- */

/* NODE_OFF: the slot runs no member (a spare slot for a joiner, or a
 * removed node, stopped). */
enum sim_node_state { NODE_UP = 1, NODE_DOWN = 2, NODE_FAILED = 3, NODE_OFF = 4 };

/* One storage job (group commit, as node/disk.c does): the writes of every
 * ready handled while the previous job was in flight, made durable by one
 * sync; when it completes, these messages and client answers leave and the
 * core hears raft_persisted(ack_index, ack_term). */
struct sim_persist {
	uint64_t commit_id; /* mem_store commit id to sync up to; 0: nothing */
	bool has_ack;
	uint64_t ack_index, ack_term;
	uint64_t applied;   /* the apply batches it carries reach this index */
	uint64_t installed; /* it carries a snapshot install to this index */
	struct sim_pkt **msgs;
	uint32_t msg_count, msg_cap;
};

enum sim_wait_kind { WAIT_WRITE = 1, WAIT_READ = 2 };

struct sim_waiter {
	uint32_t kind;
	uint32_t client_ep;
	uint64_t request_id;
	uint64_t client_id, seq;  /* writes */
	uint64_t ctx;             /* reads: read_index ctx */
	uint64_t asked_ns;        /* reads: when read_index was called */
	bool has_index;           /* reads: the read index came back */
	uint64_t read_index;
	uint32_t key_bytes;
	uint8_t key[SIM_VALUE_BYTES_MAX];
};

/* A leader's outgoing snapshot: one open stream per store (core/snapshot.h),
 * the wants of other followers queued behind it. */
struct sim_snap_out {
	struct snap_reader sr;
	keel_node_id to;      /* the stream's follower, when sr.open */
	uint64_t last_term;   /* raft_state_at(sr.last_index) at open */
	struct membership membership;
	uint64_t active_ns;   /* last chunk produced */
	struct raft_snapshot_want q[SIM_SNAP_WANTS_MAX];
	uint32_t q_count;
	bool scheduled;       /* an EV_SNAP is pending */
};

struct sim_node {
	uint32_t idx;       /* slot: network endpoint and event target */
	keel_node_id id;    /* raft id; 0 while the slot never ran a member */
	uint32_t gen;       /* incarnations of this slot (a reused slot is a new node) */
	uint32_t state;     /* enum sim_node_state */
	uint64_t epoch;     /* bumped by every crash: stale events are ignored */
	bool paused;
	uint64_t paused_until_ns;
	bool corrupted;     /* a record was corrupted on this node's disk */
	uint64_t tick_ns;   /* with drift */
	uint64_t raft_seed;

	struct raft *raft;  /* raft_sizeof() bytes */
	bool raft_live;
	struct kv kv;
	struct mem_store ms;
	struct store store;
	struct simdisk disk;

	struct sim_persist job;  /* in flight when syncs_in_flight > 0 */
	struct sim_persist next; /* collects while job is in flight */
	uint32_t syncs_in_flight; /* <= SIM_SYNCS_MAX */

	struct sim_waiter waiters[SIM_WAITERS_MAX];
	uint32_t waiter_count;
	uint64_t next_ctx;

	struct kv_command batch[SIM_BATCH_MAX];
	uint8_t batch_bytes[SIM_BATCH_MAX][3 * SIM_VALUE_BYTES_MAX];
	uint32_t batch_count;

	uint64_t applied;       /* last index applied (kv_apply or a snapshot) */
	uint64_t durable_applied; /* ... and synced (drives compaction) */
	struct sim_snap_out snap; /* leader: outgoing snapshot stream */
	bool snap_failed;       /* follower: tell raft after the ready */
	struct raft_snapshot_chunk install; /* follower: the done chunk being installed */
	bool installing;        /* its install batch waits for a sync */
	uint64_t installs, compactions;
	uint64_t commit_checked; /* commit index already checked */
	uint32_t role;
	uint64_t term;
	uint64_t *res_hash;     /* per-entry result hash of the current apply */
	size_t res_hash_cap;
	uint64_t res_first;
	uint64_t crashes, restarts;
	uint64_t invariant_countdown; /* events until the next full invariant check */
	uint64_t lead_commit;   /* commit index when it became leader */
	uint32_t cut_ticks;     /* leader ticks spent without a reachable quorum */
	uint64_t heard_ns[SIM_NODES_MAX]; /* last append response from each slot */
	uint32_t removed_ticks; /* leader ticks as a non-voter of its committed config */
	uint64_t removed_ns;    /* when its removal was seen committed (admin) */
};

/* ---- clients and history ----------------------------------------------- */

enum sim_op_kind { OP_GET, OP_PUT, OP_DEL, OP_CAS, OP_APPEND };
enum sim_outcome { OUT_PENDING, OUT_OK, OUT_FAIL, OUT_INFO };

struct sim_op {
	uint32_t client;
	uint8_t kind;    /* enum sim_op_kind */
	uint8_t outcome; /* enum sim_outcome */
	bool stale;      /* a stale get: recorded apart, not checked */
	bool cas_absent;
	bool result_found; /* get: a value came back; del: key existed; cas: swapped */
	uint8_t key;     /* index into the key space */
	uint32_t value_bytes, expected_bytes, result_bytes;
	uint8_t value[SIM_VALUE_BYTES_MAX];
	uint8_t expected[SIM_VALUE_BYTES_MAX];
	uint8_t *result; /* get: heap copy of the value read */
	uint64_t invoke_ns, complete_ns;
	uint64_t seq;    /* writes: the session seq it was sent with */
};

/* Where a client's write first took effect anywhere (sim_check_effect). */
struct sim_effect {
	uint64_t at_ns;  /* 0: never applied (yet) */
	uint32_t status; /* enum kv_status of that first apply */
};

struct sim_client {
	uint32_t idx;
	uint32_t ep;           /* network endpoint */
	uint64_t client_id;    /* session id, > 0 */
	uint64_t seq;          /* session seq of the current write */
	uint64_t request_id;   /* per attempt */
	uint32_t attempt;
	uint32_t target;       /* node it sends to */
	bool busy;             /* an operation is in flight */
	bool probe;            /* the liveness probe client */
	bool done;             /* issues nothing more */
	uint32_t op;           /* index into sim.ops of the current op */
	struct sim_effect *effects; /* [seq]: first apply of each write */
	uint64_t effects_cap;
	uint32_t issued;
	uint8_t last_value[SIM_KEYS_MAX][SIM_VALUE_BYTES_MAX];
	uint32_t last_value_bytes[SIM_KEYS_MAX];
	bool last_value_known[SIM_KEYS_MAX];
};

/* ---- cross-node checks -------------------------------------------------- */

struct sim_slot { /* one log index, as first applied/committed anywhere */
	uint64_t term;      /* committed term (0: not yet known) */
	uint64_t hash;      /* applied entry hash (0: not yet applied) */
	uint64_t res;       /* hash of its apply results */
	bool acked;         /* a client got OK for a write in it */
	uint64_t state;     /* state machine digest right after applying it (0: unknown) */
};

struct sim_checks {
	keel_node_id *leader_of_term; /* [term] */
	uint64_t terms_cap;
	struct sim_slot *slots;      /* [index] */
	uint64_t slots_cap;
	uint64_t applied_max;        /* highest index applied anywhere */
	uint64_t acked_max;
	uint64_t events_since_full;
};

/* ---- the run ------------------------------------------------------------ */

struct sim {
	struct sim_opts opts;
	struct sim_faults faults;
	struct simq q;
	struct simnet net;
	struct simtrace trace;
	struct simrng rng_disk, rng_faults, rng_work;
	struct sim_node nodes[SIM_NODES_MAX];
	uint32_t slots;          /* node slots in use: endpoints 0..slots-1 */
	struct sim_client clients[SIM_CLIENTS_MAX];
	uint32_t client_count;   /* including the probe */
	struct membership membership; /* the bootstrap configuration */
	/* The latest configuration known committed (applied somewhere). */
	struct membership cfg;
	uint64_t cfg_index;
	struct sim_admin *admin;  /* NULL unless faults.membership */

	struct sim_op *ops;
	uint32_t op_count, op_cap;
	uint32_t ops_invoked;    /* by the workload clients */

	struct sim_checks chk;
	uint64_t events;
	uint64_t window_start_ns;  /* event-rate window (SIM_EVENTS_PER_VSEC_MAX) */
	uint64_t window_events;
	bool healed;
	uint64_t heal_ns;
	bool probe_done;
	uint64_t probe_done_ns;
	bool finished;
	const char *fail_reason; /* first failure, NULL while passing */
	char fail_detail[256];

	/* nemesis state */
	uint32_t failed_nodes;
	uint32_t corrupted_nodes;
	uint64_t fault_gen[4];   /* per fault slot: partition, clog, slow disk, spare */
	uint32_t slow_node;
	bool quiet;              /* between fault windows */
	uint64_t storm_gen;      /* EV_NEMESIS of an older storm is ignored */

	uint8_t *scratch;        /* encode buffer */
	size_t scratch_cap;
	uint64_t stats_crashes, stats_pauses, stats_partitions, stats_corruptions;
	uint64_t stats_refused;
	uint64_t stats_installs, stats_compactions, stats_changes;
};

/* Result of one seed. */
struct sim_result {
	bool pass;
	const char *reason; /* "none" when passed */
	char detail[256];
	uint32_t ops;
	uint64_t virtual_ns;
	uint64_t events;
	uint64_t trace_hash;
	uint64_t compactions, installs, changes; /* what the run exercised */
};

/* Run one seed to completion. Returns 0 with *res filled, or a negative
 * code when the run could not be set up (memory). */
int sim_run(const struct sim_opts *o, struct sim_result *res);

/* ---- internal API between the sim_*.c files ----------------------------- */

void sim_fail(struct sim *s, const char *reason, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
uint64_t sim_now(const struct sim *s);
void sim_schedule(struct sim *s, uint64_t at_ns, uint32_t kind, uint32_t who,
		  uint64_t arg, void *ptr);
/* Send a frame from endpoint to endpoint through the network model. */
void sim_send(struct sim *s, uint32_t from, uint32_t to, uint32_t kind,
	      const uint8_t *frame, uint32_t bytes);
struct sim_pkt *sim_pkt_new(uint32_t from, uint32_t to, uint32_t kind,
			    const uint8_t *frame, uint32_t bytes);
void sim_pkt_send(struct sim *s, struct sim_pkt *p);
/* Make sure the scratch buffer holds bytes; aborts on OOM (our bound). */
uint8_t *sim_scratch(struct sim *s, size_t bytes);

/* sim_node.c */
int sim_node_init(struct sim *s, struct sim_node *n, uint32_t idx);
void sim_node_free(struct sim_node *n);
void sim_node_start(struct sim *s, struct sim_node *n); /* boot or restart */
void sim_node_crash(struct sim *s, struct sim_node *n, bool torn);
void sim_node_tick(struct sim *s, struct sim_node *n, uint64_t epoch);
void sim_node_disk_done(struct sim *s, struct sim_node *n, uint64_t epoch);
void sim_node_receive(struct sim *s, struct sim_node *n, struct sim_pkt *p);
bool sim_node_busy(const struct sim_node *n, uint64_t now_ns);
keel_node_id sim_node_leader(const struct sim_node *n);
void sim_node_snap(struct sim *s, struct sim_node *n, uint64_t epoch);
/* Run n's driver loop (after an input such as raft_change). */
void sim_node_poke(struct sim *s, struct sim_node *n);
/* Stop a removed member for good (its slot may later host a new node). */
void sim_node_stop(struct sim *s, struct sim_node *n);
/* Wipe an OFF slot for a joiner with raft id id (starts empty). */
void sim_node_join(struct sim *s, struct sim_node *n, keel_node_id id);
/* The latest configuration n holds (its core's when up; when down, what a
 * restart loads from its store). false if unknown. */
bool sim_node_config(struct sim_node *n, struct membership *out);
/* The slot running raft id id, or NULL. */
struct sim_node *sim_node_by_id(struct sim *s, keel_node_id id);
/* A config entry was applied (committed): track the latest. */
void sim_cfg_committed(struct sim *s, const struct entry *e);
/* Voters of m; whether id is one. */
uint32_t sim_voter_count(const struct membership *m);
bool sim_is_voter(const struct membership *m, keel_node_id id);
bool sim_is_member(const struct membership *m, keel_node_id id);

/* sim_admin.c: the membership admin (faults.membership) */
int sim_admin_init(struct sim *s);
void sim_admin_free(struct sim *s);
/* EV_ADMIN: reconcile slots with the committed configuration, then maybe
 * ask a leader (node slot who when targeted) for a change. Returns the
 * slot it touched or -1. */
int sim_admin_act(struct sim *s, uint32_t who, uint64_t targeted);
/* A node became leader: maybe act on it at once (M2's window). */
void sim_admin_leader_hook(struct sim *s, struct sim_node *n);

/* sim_client.c */
void sim_clients_init(struct sim *s);
void sim_client_next(struct sim *s, struct sim_client *c);
void sim_client_timeout(struct sim *s, struct sim_client *c, uint64_t attempt);
void sim_client_retry(struct sim *s, struct sim_client *c, uint64_t attempt);
void sim_client_receive(struct sim *s, struct sim_client *c, struct sim_pkt *p);
void sim_probe_start(struct sim *s);
bool sim_clients_done(const struct sim *s);
void sim_ops_free(struct sim *s);
/* Check the history with keelcheck and write it; sets a failure. */
void sim_history_check(struct sim *s);
int sim_history_write(const struct sim *s, FILE *f);

/* sim_nemesis.c */
void sim_nemesis_act(struct sim *s, uint64_t storm_gen);
void sim_nemesis_fault_end(struct sim *s, uint32_t slot, uint64_t gen);
void sim_nemesis_heal(struct sim *s);
void sim_nemesis_storm(struct sim *s);
void sim_nemesis_quiet(struct sim *s);
/* A leader was elected or proposed, or a node wrote its vote or appended
 * entries: maybe crash it soon (targeted). rate_div divides the rate; 0
 * marks a vote (ten times the rate, at most 1/4). */
void sim_nemesis_leader_hook(struct sim *s, struct sim_node *n);
void sim_nemesis_write_hook(struct sim *s, struct sim_node *n, uint32_t rate_div);
/* A follower staged a snapshot chunk or its install batch: maybe crash it
 * around that write (faults.install_crash_ppm). */
void sim_nemesis_install_hook(struct sim *s, struct sim_node *n, bool install);
/* A leader appended a membership change: maybe crash it before the change
 * replicates (faults.change_crash_ppm): the schedule behind M2. */
void sim_nemesis_change_hook(struct sim *s, struct sim_node *n);
void sim_nemesis_crash_soon(struct sim *s, struct sim_node *n, uint64_t epoch);

/* sim_check.c */
int sim_checks_init(struct sim_checks *c);
void sim_checks_free(struct sim_checks *c);
void sim_check_node(struct sim *s, struct sim_node *n);      /* after an event */
void sim_check_applied(struct sim *s, struct sim_node *n, const struct entry *e,
		       uint64_t res_hash);
void sim_check_acked(struct sim *s, uint64_t index);
/* A node applied (client_id, seq) with status: remember the first time. */
void sim_check_effect(struct sim *s, uint64_t client_id, uint64_t seq,
		      uint32_t status, bool duplicate);
void sim_check_full(struct sim *s);                           /* pairwise */
void sim_check_read_released(struct sim *s, struct sim_node *n, uint64_t index,
			     uint64_t asked_ns);
void sim_check_leader_tick(struct sim *s, struct sim_node *n);
/* Leader n appends config entry e of its term (rule M2). */
void sim_check_config_append(struct sim *s, struct sim_node *n,
			     const struct entry *e);
/* A follower installed a snapshot through index with state digest. */
void sim_check_installed(struct sim *s, struct sim_node *n, uint64_t index,
			 uint64_t digest);
/* A node's state machine holds digest right after applying through index. */
void sim_check_state_at(struct sim *s, struct sim_node *n, uint64_t index,
			uint64_t digest);
/* Ticks a leader cut off from a quorum may keep leading: check-quorum
 * steps it down after an election timeout of ticks; 5x is the margin. */
#define SIM_CUT_LEADER_TICKS (5u * SIM_ELECTION_TICKS)
void sim_check_final(struct sim *s);

#endif
