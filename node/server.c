/* server.c: the keel server's loop: Raft driving, the storage pipeline,
 * leadership changes and shutdown (see server.h for the invariants). */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>
#include <unistd.h>

#include "../core/assert.h"
#include "../core/codec.h"
#include "../core/err.h"
#include "../io_real/log.h"
#include "../io_real/panic_ctx.h"
#include "clients.h"
#include "server.h"

_Static_assert(CONFIG_APPLY_FLUSH_MS_MAX <= DISK_FLUSH_MS_MAX,
	       "--apply-flush-ms fits the storage thread");

struct held {
	keel_node_id to;
	struct fconn_wbuf *wb;
	struct held *next;
};

static void drive(struct server *s);
static void finish(struct server *s);

/* ---- helpers -------------------------------------------------------------- */

const struct member *server_member(struct server *s, keel_node_id id)
{
	static struct raft_status st; /* loop thread only */
	raft_status(s->raft, &st);
	for (uint32_t i = 0; i < st.membership.member_count; i++)
		if (st.membership.members[i].id == id)
			return &st.membership.members[i];
	return NULL;
}

void server_fill_status(struct server *s, struct client_node_status *out)
{
	struct raft_status st;
	raft_status(s->raft, &st);
	memset(out, 0, sizeof *out);
	out->id = st.id;
	out->role = st.role;
	out->term = st.term;
	out->leader = st.leader;
	out->commit_index = st.commit;
	out->applied_index = s->applied_done;
	out->last_index = st.last_index;
	out->membership = st.membership;
}

static void free_held(struct held *h)
{
	while (h != NULL) {
		struct held *next = h->next;
		free(h->wb);
		free(h);
		h = next;
	}
}

/* ---- proposals -------------------------------------------------------------- */

static uint32_t propose_error_status(int rc, const char **why)
{
	switch (rc) {
	case KEEL_ENOTLEADER:
		*why = "not the leader";
		return CLIENT_NOT_LEADER;
	case KEEL_ESTATE:
		*why = "leadership transfer in progress";
		return CLIENT_BUSY;
	case KEEL_EBUSY:
		*why = "too many uncommitted writes";
		return CLIENT_BUSY;
	default:
		*why = keel_err_msg(rc);
		return CLIENT_BUSY;
	}
}

void server_batch_flush(struct server *s)
{
	if (s->batch_count == 0)
		return;
	struct kv_command cmds[KEEL_BATCH_COMMANDS_MAX];
	for (uint32_t i = 0; i < s->batch_count; i++)
		cmds[i] = s->batch[i].cmd;
	int n = codec_batch_encode(cmds, s->batch_count, s->batch_buf,
				   KEEL_ENTRY_BYTES_MAX);
	KEEL_ASSERT(n > 0);
	uint64_t index = 0;
	int rc = raft_propose(s->raft, ENTRY_COMMAND, s->batch_buf, (uint32_t)n,
			      &index);
	for (uint32_t i = 0; i < s->batch_count; i++) {
		struct pending *p = s->batch[i].p;
		if (p != NULL) {
			if (rc == 0) {
				p->proposed = true;
			} else {
				const char *why;
				uint32_t st = propose_error_status(rc, &why);
				server_respond(s, p, st, NULL, 0, why);
			}
		}
		free(s->batch[i].copy);
	}
	if (rc == 0) {
		s->ctr.batches_proposed++;
		s->ctr.commands_proposed += s->batch_count;
	}
	s->batch_count = 0;
	s->batch_bytes = 0;
}

/* ---- soft state --------------------------------------------------------------- */

static void fail_leader_work(struct server *s)
{
	server_members_fail(s);
	snaps_leadership_lost(s);
	for (uint32_t i = 0; i < s->pending.cap; i++) {
		struct pending *p = &s->pending.slots[i];
		if (p->kind == PENDING_WRITE && p->proposed)
			server_respond(s, p, CLIENT_UNAVAILABLE, NULL, 0,
				       "leadership lost: outcome unknown, retry with the same seq");
		else if (p->kind == PENDING_READ_INDEX)
			server_respond(s, p, CLIENT_NOT_LEADER, NULL, 0,
				       "leadership lost before the read");
	}
}

static void on_soft(struct server *s, const struct raft_ready *rd)
{
	bool was_leader = s->role == RAFT_LEADER;
	if (rd->term != s->term)
		log_set_term(rd->term);
	if (rd->role != s->role || rd->leader != s->leader)
		LOG_INFO("role %s, leader %llu", raft_role_name(rd->role),
			 (unsigned long long)rd->leader);
	s->role = rd->role;
	s->term = rd->term;
	s->leader = rd->leader;
	if (was_leader && s->role != RAFT_LEADER) {
		fail_leader_work(s);
		if (s->phase == PHASE_TRANSFERRING) {
			LOG_INFO("leadership handed over to %llu",
				 (unsigned long long)s->leader);
			server_begin_drain(s);
		}
	}
}

/* ---- the ready loop -------------------------------------------------------------- */

/* Keep the job's log writes one contiguous run: entries that replace a
 * suffix (the core truncating a conflict) cut the run at their first index
 * first; log_append deletes whatever the store holds from there. */
static int job_add_entries(struct disk_job *j, const struct entry *e, size_t n)
{
	if (n == 0)
		return 0;
	if (j->entry_count > 0) {
		uint64_t first = j->entries[0].index;
		uint64_t next = j->entries[j->entry_count - 1].index + 1;
		if (e[0].index < next) {
			j->entry_count = e[0].index > first ?
						 (uint32_t)(e[0].index - first) : 0;
			if (j->entry_count == 0)
				j->segment_count = 0;
			else
				j->segments[0].count = j->entry_count;
		}
	}
	if (j->segment_count == 0)
		return disk_job_add_entries(j, e, n);
	KEEL_ASSERT(j->segment_count == 1);
	KEEL_ASSERT(e[0].index == j->entries[j->entry_count - 1].index + 1);
	uint32_t before = j->entry_count;
	j->segment_count = 0;
	int rc = disk_job_add_entries(j, e, n); /* appends a segment 0 .. */
	j->segment_count = 1;
	j->segments[0].first = 0;
	j->segments[0].count = before + (uint32_t)n;
	return rc;
}

static void read_released(struct server *s, const struct raft_read *r)
{
	struct pending *p = pending_by_token(&s->pending, r->ctx);
	if (p == NULL || p->kind != PENDING_READ_INDEX)
		return;
	if (r->err != 0) {
		server_respond(s, p, r->err == KEEL_ENOTLEADER ? CLIENT_NOT_LEADER :
				     CLIENT_UNAVAILABLE, NULL, 0, keel_err_msg(r->err));
		return;
	}
	p->kind = PENDING_READ_APPLY;
	p->read_index = r->index;
	KEEL_ASSERT(s->read_wait_count < s->pending.cap);
	s->read_wait[s->read_wait_count++] = r->ctx;
}

void server_read_wait(struct server *s, struct pending *p)
{
	KEEL_ASSERT(s->read_wait_count < s->pending.cap);
	s->read_wait[s->read_wait_count++] = pending_token(&s->pending, p);
}

static void hold(struct server *s, struct disk_job *j, const struct msg *m)
{
	struct held *h = malloc(sizeof *h);
	struct fconn_wbuf *wb = net_encode(m);
	if (h == NULL || wb == NULL) {
		free(h);
		free(wb);
		(void)s;
		return; /* dropped: Raft retransmits */
	}
	h->to = m->to;
	h->wb = wb;
	h->next = NULL;
	/* Keep order: append at the tail. */
	struct held **tail = (struct held **)&j->held;
	while (*tail != NULL)
		tail = &(*tail)->next;
	*tail = h;
}

static void storage_failed(struct server *s, int err)
{
	if (s->storage_err != 0)
		return;
	s->storage_err = err;
	LOG_ERROR("storage failed: %s (%s); this node stops serving",
		  log_err_msg(err), keel_err_name(err));
	s->exit_code = 3;
	server_begin_drain(s);
	finish(s);
}

static void drain_ready(struct server *s)
{
	struct disk_job *j = s->collecting;
	while (raft_has_ready(s->raft)) {
		struct raft_ready rd;
		raft_ready(s->raft, &rd);
		if (rd.soft_changed)
			on_soft(s, &rd);
		for (size_t i = 0; i < rd.msg_count; i++) {
			/* A follower's snapshot answer leaves once the job
			 * that stages its chunk completed: the leader sends
			 * the next chunk only then (flow control: chunks never
			 * pile up in memory faster than they are staged). */
			if (rd.msgs[i].after_persist ||
			    rd.msgs[i].msg.type == MSG_SNAPSHOT_RESP)
				hold(s, j, &rd.msgs[i].msg);
			else
				net_send(&s->net, &rd.msgs[i].msg);
		}
		int rc = 0;
		if (rd.hard_state_changed) {
			j->hard_state_changed = true;
			j->hard_state = rd.hard_state;
		}
		rc = job_add_entries(j, rd.entries, rd.entry_count);
		if (rc == 0)
			rc = disk_job_add_committed(j, rd.committed,
						    rd.committed_count);
		if (rd.committed_count > 0)
			s->apply_submitted =
				rd.committed[rd.committed_count - 1].index;
		for (size_t i = 0; i < rd.read_count; i++)
			read_released(s, &rd.reads[i]);
		snaps_on_ready(s, &rd);
		raft_advance(s->raft, &rd);
		if (rc != 0) {
			storage_failed(s, rc);
			return;
		}
	}
}

static void queue_reads(struct server *s)
{
	struct disk_job *j = s->collecting;
	uint32_t keep = 0;
	for (uint32_t i = 0; i < s->read_wait_count; i++) {
		uint64_t tok = s->read_wait[i];
		struct pending *p = pending_by_token(&s->pending, tok);
		if (p == NULL || p->kind != PENDING_READ_APPLY)
			continue;
		if (p->read_index <= s->apply_submitted && /* invariant 3 */
		    disk_job_add_read(j, tok, p->key, p->key_bytes) == 0) {
			p->kind = PENDING_READ_DISK;
			continue;
		}
		s->read_wait[keep++] = tok;
	}
	s->read_wait_count = keep;
}

static void maybe_submit(struct server *s)
{
	if (s->inflight != NULL || s->storage_err != 0 ||
	    disk_job_empty(s->collecting))
		return;
	s->inflight = s->collecting;
	s->collecting = s->inflight == &s->jobs[0] ? &s->jobs[1] : &s->jobs[0];
	KEEL_ASSERT(disk_job_empty(s->collecting));
	s->ctr.disk_jobs++;
	disk_submit(&s->disk, s->inflight);
}

static void drive(struct server *s)
{
	if (s->phase == PHASE_CLOSING)
		return;
	server_batch_flush(s);
	drain_ready(s);
	if (s->storage_err != 0)
		return;
	server_members_follow(s);
	snaps_schedule(s);
	queue_reads(s);
	maybe_submit(s);
	if (s->phase == PHASE_DRAINING && s->pending.used == 0 &&
	    s->inflight == NULL)
		finish(s);
}

/* Writes are answered once their results exist, before their batch
 * commits (disk.h explains why that is safe); reads when the job is done. */
static void on_job_results(void *ctx, const struct kv_result *res,
			   uint32_t count)
{
	struct server *s = ctx;
	for (uint32_t i = 0; i < count; i++) {
		const struct kv_result *r = &res[i];
		struct pending *p = pending_find_write(&s->pending, r->client_id,
						       r->seq);
		if (p != NULL && p->proposed)
			server_respond(s, p, kv_status_to_client(r->status),
				       NULL, 0, "");
	}
}

static void job_reads(struct server *s, struct disk_job *j)
{
	for (uint32_t i = 0; i < j->read_count; i++) {
		const struct disk_read *r = &j->reads[i];
		struct pending *p = pending_by_token(&s->pending, r->token);
		if (p == NULL || p->kind != PENDING_READ_DISK)
			continue;
		if (r->status == 0)
			server_respond(s, p, CLIENT_OK, r->value, r->value_bytes, "");
		else if (r->status == KEEL_ENOTFOUND)
			server_respond(s, p, CLIENT_NOT_FOUND, NULL, 0, "");
		else
			server_respond(s, p, CLIENT_UNAVAILABLE, NULL, 0,
				       keel_err_msg(r->status));
	}
}

/* Committed entries collected since j was submitted ride in j's apply step
 * (disk.h step 2) instead of waiting for the next job. On failure to copy
 * they stay where they are and the next job applies them. */
static void pull_committed(struct server *s, struct disk_job *j)
{
	struct disk_job *c = s->collecting;
	if (c->committed_count == 0 ||
	    disk_job_add_committed(j, c->committed, c->committed_count) != 0)
		return;
	c->committed_count = 0;
}

/* j's log part is durable (disk.h step 2). */
static void on_job_persisted(void *ctx, struct disk_job *j)
{
	struct server *s = ctx;
	KEEL_ASSERT(j == s->inflight);
	struct held *h = j->held;
	j->held = NULL;
	/* invariant 2: held messages leave only now, after the sync. */
	while (h != NULL) {
		struct held *next = h->next;
		net_send_frame(&s->net, h->to, h->wb);
		free(h);
		h = next;
	}
	if (j->entry_count > 0) {
		const struct entry *last = &j->entries[j->entry_count - 1];
		raft_persisted(s->raft, last->index, last->term);
	}
	if (s->phase == PHASE_CLOSING || s->storage_err != 0)
		return;
	drive(s); /* j is in flight: this collects, it does not submit */
	pull_committed(s, j);
}

static void on_job_done(void *ctx, struct disk_job *j)
{
	struct server *s = ctx;
	KEEL_ASSERT(j == s->inflight);
	s->ctr.disk_persist_ns += j->persist_ns;
	s->ctr.disk_apply_ns += j->apply_ns;
	if (j->err != 0) {
		int err = j->err; /* the reset clears it */
		/* A failure found while this job ran (drain_ready) left finish()
		 * waiting for it: storage_failed() will not call it again. */
		bool waiting = s->storage_err != 0;
		free_held(j->held); /* the log part failed: never sent */
		j->held = NULL;
		disk_job_reset(j);
		s->inflight = NULL;
		storage_failed(s, err);
		if (waiting)
			finish(s);
		return;
	}
	KEEL_ASSERT(j->held == NULL); /* sent by on_job_persisted */
	s->store_applied = j->store_applied;
	s->ctr.apply_flushes = j->flush_count; /* cumulative (disk.h) */
	s->ctr.apply_flushed_items = j->flush_items;
	s->ctr.apply_flush_ns = j->flush_ns;
	if (j->committed_count > 0)
		s->applied_done = j->committed[j->committed_count - 1].index;
	job_reads(s, j);
	server_members_applied(s);
	snaps_job_done(s, j);
	disk_job_reset(j);
	s->inflight = NULL;
	if (s->phase == PHASE_CLOSING) {
		finish(s);
		return;
	}
	drive(s);
}

/* ---- timers and phases ------------------------------------------------------------ */

static void on_tick(uv_timer_t *t)
{
	struct server *s = t->data;
	raft_tick(s->raft);
	snaps_tick(s);
	if (++s->ticks % SERVER_SWEEP_TICKS == 0) {
		clients_sweep(s);
		http_sweep(s);
	}
}

static void on_check(uv_check_t *c)
{
	drive(c->data);
}

static void on_phase_timer(uv_timer_t *t)
{
	struct server *s = t->data;
	if (s->phase == PHASE_TRANSFERRING) {
		LOG_WARN("leadership transfer did not complete in %u ms; stopping anyway",
			 SERVER_TRANSFER_WAIT_MS);
		server_begin_drain(s);
	} else if (s->phase == PHASE_DRAINING) {
		finish(s);
	}
}

void server_begin_drain(struct server *s)
{
	if (s->phase >= PHASE_DRAINING)
		return;
	s->phase = PHASE_DRAINING;
	LOG_INFO("no longer accepting requests; finishing %u in flight",
		 s->pending.used);
	clients_stop_accepting(s);
	http_stop(s);
	uv_timer_start(&s->phase_timer, on_phase_timer, SERVER_DRAIN_WAIT_MS, 0);
}

static void close_handle(uv_handle_t *h)
{
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

static void finish(struct server *s)
{
	if (s->phase != PHASE_CLOSING) {
		s->phase = PHASE_CLOSING;
		server_batch_flush(s); /* answers the batch: not proposed */
		for (uint32_t i = 0; i < s->pending.cap; i++) {
			struct pending *p = &s->pending.slots[i];
			if (p->kind == PENDING_FREE)
				continue;
			if (p->kind == PENDING_WRITE && p->proposed)
				server_respond(s, p, CLIENT_UNAVAILABLE, NULL, 0,
					       "node stopping: outcome unknown");
			else
				server_respond(s, p, CLIENT_SHUTTING_DOWN, NULL, 0,
					       "node stopping");
		}
	}
	if (s->inflight != NULL)
		return; /* on_job_done calls back */
	free_held(s->collecting->held);
	s->collecting->held = NULL;
	disk_job_reset(s->collecting);
	uv_timer_stop(&s->tick_timer);
	close_handle((uv_handle_t *)&s->tick_timer);
	close_handle((uv_handle_t *)&s->phase_timer);
	close_handle((uv_handle_t *)&s->check);
	close_handle((uv_handle_t *)&s->sig_term);
	close_handle((uv_handle_t *)&s->sig_int);
	clients_stop_accepting(s);
	clients_close_all(s);
	http_stop(s);
	net_stop(&s->net);
	disk_stop(&s->disk);
}

static keel_node_id transfer_target(struct server *s)
{
	struct raft_status st;
	raft_status(s->raft, &st);
	for (uint32_t i = 0; i < st.membership.member_count; i++) {
		const struct member *m = &st.membership.members[i];
		if (m->id != s->id && m->role == MEMBER_VOTER &&
		    net_peer_connected(&s->net, m->id))
			return m->id;
	}
	return KEEL_NODE_NONE;
}

static void on_signal(uv_signal_t *h, int signum)
{
	struct server *s = h->data;
	if (++s->signals > 1) {
		LOG_WARN("second signal %d: exiting at once", signum);
		_exit(1);
	}
	LOG_INFO("signal %d: shutting down", signum);
	keel_node_id to = s->role == RAFT_LEADER ? transfer_target(s) : 0;
	if (to != KEEL_NODE_NONE && raft_transfer_leader(s->raft, to) == 0) {
		LOG_INFO("transferring leadership to %llu", (unsigned long long)to);
		s->phase = PHASE_TRANSFERRING;
		uv_timer_start(&s->phase_timer, on_phase_timer,
			       SERVER_TRANSFER_WAIT_MS, 0);
		drive(s);
		return;
	}
	server_begin_drain(s);
	drive(s);
}

/* ---- run ------------------------------------------------------------------------- */

/* Client connections share the process's file descriptors with the peers:
 * raise the soft RLIMIT_NOFILE as far as needed (up to the hard limit) and
 * give clients only what remains after SERVER_FDS_RESERVED. */
static uint32_t client_conns_budget(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return SERVER_CLIENT_CONNS_MAX;
	rlim_t want = SERVER_CLIENT_CONNS_MAX + SERVER_FDS_RESERVED;
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
		rlim_t cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ?
				     want : rl.rlim_max;
		if (cur > rl.rlim_cur) {
			rl.rlim_cur = cur;
			(void)setrlimit(RLIMIT_NOFILE, &rl);
			(void)getrlimit(RLIMIT_NOFILE, &rl);
		}
	}
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= want)
		return SERVER_CLIENT_CONNS_MAX;
	uint32_t n = rl.rlim_cur > SERVER_FDS_RESERVED ?
			     (uint32_t)(rl.rlim_cur - SERVER_FDS_RESERVED) : 0;
	if (n < SERVER_CLIENT_CONNS_MIN)
		n = SERVER_CLIENT_CONNS_MIN;
	LOG_WARN("file descriptor limit %llu: at most %u client connections",
		 (unsigned long long)rl.rlim_cur, n);
	return n;
}

static void on_peer_msg(void *ctx, const struct msg *m)
{
	struct server *s = ctx;
	raft_step(s->raft, m);
}

int server_start(struct server *s, uv_loop_t *loop, const char *listen_addr,
		 const char *client_addr)
{
	s->loop = loop;
	s->exit_code = 0;
	realpanic_set_node(s->id);
	log_set_node(s->id);
	s->client_conns_max = client_conns_budget();
	s->collecting = &s->jobs[0];
	disk_job_init(&s->jobs[0]);
	disk_job_init(&s->jobs[1]);
	s->client_budget.queued_bytes_max = SERVER_CLIENTS_QUEUE_BYTES_MAX;
	int rc = pending_init(&s->pending, s->cfg.pending_max);
	if (rc != 0)
		return rc;
	s->read_wait = calloc(s->cfg.pending_max, sizeof *s->read_wait);
	s->batch = calloc(KEEL_BATCH_COMMANDS_MAX, sizeof *s->batch);
	s->batch_buf = malloc(KEEL_ENTRY_BYTES_MAX);
	if (s->read_wait == NULL || s->batch == NULL || s->batch_buf == NULL)
		return KEEL_ENOMEM;
	struct raft_status st;
	raft_status(s->raft, &st);
	s->applied_done = st.applied;
	s->store_applied = st.applied;
	s->apply_submitted = st.applied;
	net_init(&s->net, loop, s->cluster_id, s->id,
		 (uint64_t)getpid() * 0x9e3779b97f4a7c15ull ^ (uint64_t)time(NULL),
		 on_peer_msg, s);
	rc = net_listen(&s->net, listen_addr);
	if (rc != 0) {
		LOG_ERROR("cannot listen for peers on %s: %s", listen_addr,
			  rc == KEEL_EINVAL ? "bad address" : uv_strerror(rc));
		return rc;
	}
	server_members_follow(s); /* sets the peers */
	rc = clients_listen(s, client_addr);
	if (rc != 0)
		return rc;
	rc = http_listen(s);
	if (rc != 0)
		return rc;
	rc = redis_listen(s);
	if (rc != 0)
		return rc;
	static const struct disk_callbacks disk_cb = {
		.persisted = on_job_persisted,
		.results = on_job_results,
		.done = on_job_done,
	};
	const struct disk_options disk_opt = {
		.flush_ms = s->cfg.apply_flush_ms,
		.idle_flush_ms = DISK_IDLE_FLUSH_MS,
	};
	rc = disk_start(&s->disk, loop, s->store, &disk_opt, &disk_cb, s);
	if (rc != 0)
		return rc;
	s->disk.snapjob = &s->snapjob;
	uv_timer_init(loop, &s->tick_timer);
	s->tick_timer.data = s;
	uv_timer_start(&s->tick_timer, on_tick, s->cfg.tick_ms, s->cfg.tick_ms);
	uv_timer_init(loop, &s->phase_timer);
	s->phase_timer.data = s;
	uv_check_init(loop, &s->check);
	s->check.data = s;
	uv_check_start(&s->check, on_check);
	uv_signal_init(loop, &s->sig_term);
	uv_signal_init(loop, &s->sig_int);
	s->sig_term.data = s;
	s->sig_int.data = s;
	uv_signal_start(&s->sig_term, on_signal, SIGTERM);
	uv_signal_start(&s->sig_int, on_signal, SIGINT);
	LOG_INFO("serving: peers on %s, clients on %s%s%s, cluster %llu",
		 listen_addr, client_addr, s->cfg.http_addr[0] ? ", http on " : "",
		 s->cfg.http_addr, (unsigned long long)s->cluster_id);
	drive(s);
	return 0;
}

void server_free(struct server *s)
{
	snapjob_close(&s->snapjob); /* the storage thread has stopped */
	free(s->snap_out);
	s->snap_out = NULL;
	pending_free(&s->pending);
	free(s->read_wait);
	free(s->batch);
	free(s->batch_buf);
	s->read_wait = NULL;
	s->batch = NULL;
	s->batch_buf = NULL;
}

static void close_any(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

void server_abort(struct server *s)
{
	s->phase = PHASE_CLOSING;
	net_stop(&s->net);
	clients_close_all(s);
	disk_stop(&s->disk);
	uv_run(s->loop, UV_RUN_NOWAIT);
	uv_walk(s->loop, close_any, NULL);
}
