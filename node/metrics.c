/* metrics.c: the text of /metrics (Prometheus exposition) and /status
 * (JSON). Both are rendered on the loop thread from the server's state. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../core/codec.h"
#include "server.h"

struct out {
	char *buf;
	size_t cap, len;
};

static void put(struct out *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void put(struct out *o, const char *fmt, ...)
{
	if (o->len >= o->cap)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->len += (size_t)n < o->cap - o->len ? (size_t)n : o->cap - o->len - 1;
}

static void metric(struct out *o, const char *name, const char *type,
		   const char *help, uint64_t v)
{
	put(o, "# HELP keel_%s %s\n# TYPE keel_%s %s\nkeel_%s %" PRIu64 "\n",
	    name, help, name, type, name, v);
}

static const char *const status_names[] = {
	"ok", "not_found", "cas_failed", "too_big", "stale_seq",
	"not_leader", "unavailable", "bad_request", "shutting_down", "busy",
};
static const char *const op_names[] = { "status", "get", "put", "del", "cas",
					"append" };

int server_render_metrics(struct server *s, char *buf, size_t cap)
{
	struct out o = { buf, cap, 0 };
	struct raft_status st;
	raft_status(s->raft, &st);
	metric(&o, "node_id", "gauge", "This node's id.", s->id);
	metric(&o, "role", "gauge", "1 follower, 2 pre-candidate, 3 candidate, 4 leader.", st.role);
	metric(&o, "term", "gauge", "Current term.", st.term);
	metric(&o, "leader_id", "gauge", "Leader this node believes in (0: none).", st.leader);
	metric(&o, "commit_index", "gauge", "Commit index.", st.commit);
	metric(&o, "applied_index", "gauge", "Applied index (durable).", s->applied_done);
	metric(&o, "last_index", "gauge", "Last log index.", st.last_index);
	metric(&o, "pending_requests", "gauge", "Client requests waiting.", s->pending.used);
	metric(&o, "client_connections", "gauge", "Open client connections.", s->conn_count);
	metric(&o, "client_connections_total", "counter", "Client connections accepted.", s->ctr.client_conns);
	metric(&o, "client_bad_frames_total", "counter", "Client connections closed for bad input.", s->ctr.client_bad_frames);
	metric(&o, "client_cluster_refused_total", "counter", "Clients refused for another cluster id.", s->ctr.client_cluster_refused);
	metric(&o, "client_hello_timeouts_total", "counter", "Clients closed: no hello in time.", s->ctr.client_hello_timeouts);
	metric(&o, "peer_hello_timeouts_total", "counter", "Peer connections closed: no hello in time.", s->net.ctr.hello_timeouts);
	metric(&o, "client_busy_total", "counter", "Requests refused: pending table full.", s->ctr.busy);
	put(&o, "# HELP keel_requests_total Client requests by operation.\n# TYPE keel_requests_total counter\n");
	for (int i = 0; i < 6; i++)
		put(&o, "keel_requests_total{op=\"%s\"} %" PRIu64 "\n", op_names[i], s->ctr.requests[i]);
	put(&o, "# HELP keel_responses_total Client responses by status.\n# TYPE keel_responses_total counter\n");
	for (int i = 0; i <= (int)CLIENT_STATUS_MAX; i++)
		put(&o, "keel_responses_total{status=\"%s\"} %" PRIu64 "\n", status_names[i], s->ctr.responses[i]);
	metric(&o, "reads_linearizable_total", "counter", "ReadIndex gets.", s->ctr.reads_linearizable);
	metric(&o, "reads_stale_total", "counter", "Stale gets.", s->ctr.reads_stale);
	metric(&o, "batches_proposed_total", "counter", "Command entries proposed.", s->ctr.batches_proposed);
	metric(&o, "commands_proposed_total", "counter", "Write commands proposed.", s->ctr.commands_proposed);
	metric(&o, "disk_jobs_total", "counter", "Storage jobs (one transaction + sync each).", s->ctr.disk_jobs);
	metric(&o, "disk_persist_seconds_total_us", "counter", "Microseconds spent persisting the log.", s->ctr.disk_persist_ns / 1000);
	metric(&o, "disk_apply_seconds_total_us", "counter", "Microseconds spent applying.", s->ctr.disk_apply_ns / 1000);
	metric(&o, "apply_flushes_total", "counter", "Write-back cache flushes of the applied state to LMDB.", s->ctr.apply_flushes);
	metric(&o, "apply_flushed_items_total", "counter", "Kv pairs and sessions written by those flushes.", s->ctr.apply_flushed_items);
	metric(&o, "apply_flush_seconds_total_us", "counter", "Microseconds in those flushes (and the commits of batches of their own).", s->ctr.apply_flush_ns / 1000);
	const struct net_counters *n = &s->net.ctr;
	metric(&o, "peer_msgs_sent_total", "counter", "Peer messages sent.", n->msgs_sent);
	metric(&o, "peer_msgs_received_total", "counter", "Peer messages received.", n->msgs_received);
	metric(&o, "peer_bytes_sent_total", "counter", "Peer bytes sent.", n->bytes_sent);
	metric(&o, "peer_dropped_queue_full_total", "counter", "Peer messages dropped: send queue full.", n->dropped_queue_full);
	metric(&o, "peer_dropped_disconnected_total", "counter", "Peer messages dropped: not connected.", n->dropped_disconnected);
	metric(&o, "peer_bad_frames_total", "counter", "Peer connections closed for bad input.", n->bad_frames);
	metric(&o, "peer_cluster_refused_total", "counter", "Peers refused for another cluster id.", n->cluster_refused);
	metric(&o, "peer_connects_total", "counter", "Outbound peer connections made.", n->connects);
	metric(&o, "peer_connect_failures_total", "counter", "Outbound peer connection failures.", n->connect_failures);
	metric(&o, "storage_failed", "gauge", "1 once storage failed (sticky).", s->storage_err != 0);
	metric(&o, "log_first_index", "gauge", "First index in the log (compacted below).", st.first_index);
	metric(&o, "snapshot_index", "gauge", "Log compacted through this index.", st.snapshot_index);
	metric(&o, "compactions_total", "counter", "Log compactions.", s->compactions);
	metric(&o, "snapshot_chunks_sent_total", "counter", "Snapshot chunks sent to followers.", s->snap_chunks_sent);
	metric(&o, "snapshot_installs_total", "counter", "Snapshots installed from the leader.", s->snap_installs);
	metric(&o, "snapshot_failures_total", "counter", "Snapshot installs abandoned (bad chunk).", s->snap_failures);
	metric(&o, "http_requests_total", "counter", "HTTP requests.", s->ctr.http_requests);
	return (int)o.len;
}

int server_render_status(struct server *s, char *buf, size_t cap)
{
	struct out o = { buf, cap, 0 };
	struct client_node_status st;
	server_fill_status(s, &st);
	put(&o, "{\"id\":%" PRIu64 ",\"cluster_id\":%" PRIu64 ",\"role\":\"%s\","
		"\"term\":%" PRIu64 ",\"leader\":%" PRIu64 ",\"commit_index\":%" PRIu64
		",\"applied_index\":%" PRIu64 ",\"last_index\":%" PRIu64
		",\"storage_failed\":%s,\"members\":[",
	    st.id, s->cluster_id, raft_role_name(st.role), st.term, st.leader,
	    st.commit_index, st.applied_index, st.last_index,
	    s->storage_err != 0 ? "true" : "false");
	for (uint32_t i = 0; i < st.membership.member_count; i++) {
		const struct member *m = &st.membership.members[i];
		put(&o, "%s{\"id\":%" PRIu64 ",\"role\":\"%s\",\"peer_addr\":\"%s\",\"client_addr\":\"%s\"}",
		    i ? "," : "", m->id, m->role == MEMBER_VOTER ? "voter" : "learner",
		    m->peer_addr, m->client_addr);
	}
	put(&o, "]}\n");
	return (int)o.len;
}
