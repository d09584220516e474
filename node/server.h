/*
 * server.h: the keel server: one event loop thread that owns the Raft core,
 * the peer transport, the client and HTTP ports, plus the storage thread.
 *
 * Per loop iteration (the check phase, after all I/O callbacks ran):
 *   1. the write commands received in the iteration become one proposed
 *      entry (codec_batch_encode; several only past KEEL_BATCH_COMMANDS_MAX
 *      or KEEL_ENTRY_BYTES_MAX);
 *   2. every ready of the core is drained: messages not held are sent, the
 *      rest (hard state, entries, committed entries, reads) go into one
 *      storage job (group commit); the job is submitted when the storage
 *      thread is idle, else it keeps collecting;
 *   3. while a job runs (disk.h): clients of writes are answered as soon as
 *      the storage thread has their results; after the job's log sync the
 *      held messages are sent, raft_persisted() is called, the loop
 *      collects (step 1 and 2) and hands the entries that became committed
 *      meanwhile to the running job; when the job completes, clients whose
 *      reads were served are answered.
 *
 * Invariants:
 *   1. nothing is acknowledged to a client before the storage job that
 *      applied it posted its results (its entry is committed: durable on
 *      a majority; see disk.h) or, for a read, before the job that read it
 *      completed;
 *   2. held (after_persist) messages leave only after their job's sync;
 *   3. apply_submitted >= applied_done; a read goes to the storage thread
 *      only once its index <= the applied index of the job it rides in;
 *   4. after a storage error (sticky) the node answers nothing but
 *      UNAVAILABLE and shuts down.
 */
#ifndef KEEL_NODE_SERVER_H
#define KEEL_NODE_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "../core/kv.h"
#include "../core/raft.h"
#include "../core/store.h"
#include "../io_real/net.h"
#include "config.h"
#include "disk.h"
#include "pending.h"

#define SERVER_CLIENT_CONNS_MAX 1024u
/* File descriptors kept out of the client budget: inbound and outbound
 * peers, HTTP, listeners, LMDB, the loop's own, stdio. Client connections
 * get at most what RLIMIT_NOFILE leaves after this (see client_conns_max),
 * so a flood of clients cannot starve the peer transport of sockets. */
#define SERVER_FDS_RESERVED (NET_INBOUND_MAX + KEEL_MEMBERS_MAX + SERVER_HTTP_CONNS_MAX + 32u)
#define SERVER_CLIENT_CONNS_MIN 8u
#define SERVER_CLIENT_QUEUE_BYTES_MAX (4u * 1024u * 1024u)
/* Answers queued to all client connections together (fconn_budget): an
 * answer that does not fit closes its connection like one past its own
 * SERVER_CLIENT_QUEUE_BYTES_MAX; the client retries elsewhere or later. */
#define SERVER_CLIENTS_QUEUE_BYTES_MAX (64u * 1024u * 1024u)
/* The largest client request frame: one command with a key, a value and an
 * expected value, plus room for the encoding. Larger announced frames close
 * the connection before their body is buffered. */
#define SERVER_CLIENT_FRAME_BYTES_MAX \
	(KEEL_KEY_BYTES_MAX + 2u * KEEL_VALUE_BYTES_MAX + 4096u)
#define SERVER_BATCH_BYTES_MAX (KEEL_ENTRY_BYTES_MAX - 4096u)
#define SERVER_TRANSFER_WAIT_MS 3000u  /* shutdown: leadership hand-off */
#define SERVER_DRAIN_WAIT_MS 2000u     /* shutdown: in-flight requests */
#define SERVER_HTTP_CONNS_MAX 16u
#define SERVER_SWEEP_TICKS 100u /* how often silent clients are looked for */
/* Membership changes waiting for their config entry to be applied. One is
 * uncommitted at a time (raft M1); the rest were answered at once. */
#define SERVER_MEMBER_WAITS_MAX 16u
/* An outgoing snapshot stream whose follower asked for nothing this long
 * yields the store's one stream to another follower's want. */
#define SERVER_SNAP_IDLE_MS 3000u

struct server_counters {
	uint64_t client_conns;
	uint64_t client_bad_frames;
	uint64_t client_cluster_refused;
	uint64_t client_hello_timeouts;
	uint64_t requests[6];  /* by kv_op (0: status) */
	uint64_t responses[CLIENT_STATUS_MAX + 1];
	uint64_t busy;
	uint64_t batches_proposed;
	uint64_t commands_proposed;
	uint64_t disk_jobs;
	uint64_t disk_persist_ns;
	uint64_t disk_apply_ns;
	uint64_t apply_flushes, apply_flushed_items, apply_flush_ns;
	uint64_t reads_linearizable;
	uint64_t reads_stale;
	uint64_t http_requests;
};

struct batch_cmd {
	struct kv_command cmd;
	struct pending *p;
	uint8_t *copy; /* key, value and expected bytes */
};

enum server_phase {
	PHASE_RUNNING = 0,
	PHASE_TRANSFERRING = 1, /* shutdown: handing leadership over */
	PHASE_DRAINING = 2,     /* shutdown: finishing in-flight requests */
	PHASE_CLOSING = 3,      /* handles closing; loop ends */
};

struct server {
	struct node_config cfg;
	uv_loop_t *loop;
	struct raft *raft;
	struct store *store;
	struct net net;
	struct disk disk;
	uint64_t cluster_id;
	keel_node_id id;

	uv_timer_t tick_timer;
	uv_timer_t phase_timer;
	uv_check_t check;
	uv_signal_t sig_term, sig_int;
	uint32_t signals;
	uint64_t ticks;

	uv_tcp_t client_listener;
	bool client_listening;
	struct cconn *conns;
	uint32_t conn_count;
	struct fconn_budget client_budget; /* SERVER_CLIENTS_QUEUE_BYTES_MAX */
	uint32_t client_conns_max; /* <= SERVER_CLIENT_CONNS_MAX, by the fd limit */

	uv_tcp_t redis_listener;
	bool redis_listening;

	uv_tcp_t http_listener;
	bool http_listening;
	uint32_t http_conns;
	struct hconn *http_list; /* open HTTP connections (http.c) */

	struct pending_table pending;
	/* The write commands of this iteration, proposed in the check phase. */
	struct batch_cmd *batch;
	uint32_t batch_count;
	uint32_t batch_bytes;
	uint8_t *batch_buf; /* SERVER_BATCH_BYTES_MAX + slack */

	/* Storage pipeline. */
	struct disk_job jobs[2];
	struct disk_job *collecting; /* being filled */
	struct disk_job *inflight;   /* at the storage thread, or NULL */
	uint64_t apply_submitted;    /* last index handed to a job */
	uint64_t applied_done;       /* last index whose job completed */
	uint64_t store_applied;      /* the store's own applied index, as the
					last job reported it (disk.h 7) */
	int storage_err;             /* sticky */

	/* Reads waiting for apply: pending tokens. */
	uint64_t *read_wait;
	uint32_t read_wait_count;

	/* Membership changes waiting for apply: pending tokens. */
	uint64_t member_wait[SERVER_MEMBER_WAITS_MAX];
	uint32_t member_wait_count;
	/* The membership the peer transport was last set to, to notice
	 * changes. */
	struct membership peers_membership;
	bool peers_known;
	bool peers_dirty; /* net_update_peers asked to be called again */
	bool self_member; /* this node is in the active membership */
	/* This node's role in the active membership (enum member_role, 0 if
	 * not a member), read by the join thread (join.c): atomic. */
	uint32_t self_role;

	/* Snapshots and compaction (snapshots.c). */
	struct snapjob snapjob; /* storage thread only */
	struct raft_snapshot_want snap_wants[KEEL_MEMBERS_MAX]; /* queued */
	uint32_t snap_want_count;
	keel_node_id snap_owner;    /* follower the open stream serves */
	uint64_t snap_owner_ms;     /* its last want */
	uint64_t snap_last_index;   /* the open stream's snapshot point */
	uint64_t snap_last_term;
	struct membership snap_membership;
	bool snap_close;            /* close the storage thread's stream */
	bool snap_send_inflight;    /* a job is producing a chunk */
	uint64_t snap_budget_bytes; /* rate bound: refilled every tick */
	uint8_t *snap_out;          /* the chunk last sent (raft borrows it) */
	bool snap_fail;             /* call raft_snapshot_failed after advance */
	uint64_t compact_inflight;  /* compaction index in a job, 0: none */
	uint64_t snap_chunks_sent, snap_installs, snap_failures, compactions;

	/* Soft state seen in the last ready. */
	uint32_t role;
	uint64_t term;
	keel_node_id leader;

	enum server_phase phase;
	int exit_code;
	struct server_counters ctr;
};

/* With cfg, raft (initialised), store, cluster_id and id set by the caller:
 * open the ports and the storage thread and start serving on loop. Returns
 * 0 or an error (logged). Then run the loop; when it returns, close the store
 * and the core and call server_free. */
int server_start(struct server *s, uv_loop_t *loop, const char *listen_addr,
		 const char *client_addr);
void server_free(struct server *s);
/* After a failed server_start: close whatever was opened (run the loop to
 * let the handles close). */
void server_abort(struct server *s);

/* ---- shared between server.c, clients.c and http.c ---- */
void server_respond(struct server *s, struct pending *p, uint32_t status,
		    const uint8_t *value, uint32_t value_bytes,
		    const char *message);
void server_fill_status(struct server *s, struct client_node_status *st);
const struct member *server_member(struct server *s, keel_node_id id);
int clients_listen(struct server *s, const char *addr);
void server_batch_flush(struct server *s);
void server_begin_drain(struct server *s);
void server_read_wait(struct server *s, struct pending *p);
void clients_stop_accepting(struct server *s);
void clients_close_all(struct server *s);
/* Close client connections that sent no hello within FCONN_HELLO_MS_MAX. */
void clients_sweep(struct server *s);
int http_listen(struct server *s);
int redis_listen(struct server *s);
/* Stop accepting HTTP connections and close the open ones. */
void http_stop(struct server *s);
/* Close HTTP connections whose request head has not arrived within
 * FCONN_HELLO_MS_MAX. */
void http_sweep(struct server *s);
/* Render metrics (Prometheus text) / status (JSON) into buf. */
int server_render_metrics(struct server *s, char *buf, size_t cap);
int server_render_status(struct server *s, char *buf, size_t cap);
/* Queue a write command or read from a client. */
void server_client_request(struct server *s, struct cconn *c,
			   const struct client_request *req);
void server_conn_closed(struct server *s, struct cconn *c);
struct pending *server_new_pending(struct server *s, struct cconn *c,
				   uint32_t kind, uint64_t request_id);
void server_respond_direct(struct server *s, struct cconn *c,
			   uint64_t request_id, uint32_t status,
			   const char *message);

/* ---- snapshots.c: compaction and snapshot streams (loop side) ---- */
/* In drain_ready, before raft_advance: queue wants, collect a chunk. */
void snaps_on_ready(struct server *s, const struct raft_ready *rd);
/* After the readies: move one want into the collecting job (one stream
 * per store, rate-bounded); call raft_snapshot_failed if due. */
void snaps_schedule(struct server *s);
/* A job completed: feed its chunk to Raft, finish installs and
 * compactions, and plan the next compaction. */
void snaps_job_done(struct server *s, struct disk_job *j);
void snaps_tick(struct server *s);
void snaps_leadership_lost(struct server *s);

/* ---- members.c: membership changes, transfer, peers follow the config ---- */
void server_member_request(struct server *s, struct cconn *c,
			   const struct client_request *req);
void server_transfer_request(struct server *s, struct cconn *c,
			     const struct client_request *req);
/* After readies were drained: follow a changed membership (peer
 * transport, this node's own role). */
void server_members_follow(struct server *s);
/* After a job applied entries: answer changes whose entry is applied. */
void server_members_applied(struct server *s);
/* Leadership lost: changes not yet applied have an unknown outcome. */
void server_members_fail(struct server *s);

#endif
