/*
 * sim_run.c: one seed, start to verdict (the phases are in sim.h).
 *
 * Invariants:
 *  R1 The loop is single-threaded and reads no clock: the only time is the
 *     event queue's, the only randomness the seed's streams.
 *  R2 After every event, the node it touched passes raft_check_invariants()
 *     and the per-event cross-node checks (sim_check_node); every
 *     SIM_FULL_CHECK_EVENTS events and at the end, the pairwise checks.
 *  R3 The first failure ends the run; its reason is the run's reason.
 *  R4 Every packet is freed exactly once: on delivery, drop, or teardown.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "../core/assert.h"
#include "../core/err.h"
#include "../io_sim/panic_ctx.h"
#include "sim.h"

#define SIM_SCRATCH_BYTES_MAX (16u * 1024u * 1024u)

void sim_fail(struct sim *s, const char *reason, const char *fmt, ...)
{
	if (s->fail_reason != NULL)
		return; /* R3 */
	s->fail_reason = reason;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->fail_detail, sizeof(s->fail_detail), fmt, ap);
	va_end(ap);
	if (s->trace.f)
		simtrace_text(&s->trace, sim_now(s), "sim", "FAIL %s: %s", reason,
			      s->fail_detail);
}

uint64_t sim_now(const struct sim *s)
{
	return s->q.now_ns;
}

void sim_schedule(struct sim *s, uint64_t at_ns, uint32_t kind, uint32_t who,
		  uint64_t arg, void *ptr)
{
	struct sim_event ev = {.at_ns = at_ns, .kind = kind, .who = who,
			       .arg = arg, .ptr = ptr};
	if (simq_push(&s->q, &ev) != 0) {
		free(ptr);
		sim_fail(s, "sim_limit", "event queue full (%u events)", SIMQ_EVENTS_MAX);
	}
}

uint8_t *sim_scratch(struct sim *s, size_t bytes)
{
	KEEL_ASSERT(bytes <= SIM_SCRATCH_BYTES_MAX);
	if (bytes > s->scratch_cap || s->scratch == NULL) {
		size_t cap = bytes < 65536 ? 65536 : bytes;
		uint8_t *p = realloc(s->scratch, cap);
		KEEL_ASSERT(p != NULL);
		s->scratch = p;
		s->scratch_cap = cap;
	}
	return s->scratch;
}

struct sim_pkt *sim_pkt_new(uint32_t from, uint32_t to, uint32_t kind,
			    const uint8_t *frame, uint32_t bytes)
{
	struct sim_pkt *p = malloc(sizeof(*p) + bytes);
	KEEL_ASSERT(p != NULL);
	p->from = from;
	p->to = to;
	p->kind = kind;
	p->bytes = bytes;
	memcpy(p->data, frame, bytes);
	return p;
}

void sim_pkt_send(struct sim *s, struct sim_pkt *p)
{
	uint64_t at[SIMNET_COPIES_MAX];
	uint32_t copies = simnet_route(&s->net, sim_now(s), p->from, p->to,
				       p->bytes, at);
	if (copies == 0) {
		free(p);
		return;
	}
	if (copies == 2)
		sim_schedule(s, at[1], EV_DELIVER, p->to, 1,
			     sim_pkt_new(p->from, p->to, p->kind, p->data, p->bytes));
	sim_schedule(s, at[0], EV_DELIVER, p->to, 0, p);
}

void sim_send(struct sim *s, uint32_t from, uint32_t to, uint32_t kind,
	      const uint8_t *frame, uint32_t bytes)
{
	sim_pkt_send(s, sim_pkt_new(from, to, kind, frame, bytes));
}

/* ---- setup and teardown ------------------------------------------------- */

static int setup(struct sim *s, const struct sim_opts *o)
{
	s->opts = *o;
	sim_faults_draw(&s->faults, o->profile, o->nodes, o->seed);
	int rc = simq_init(&s->q, SIMQ_EVENTS_MAX);
	if (rc != 0)
		return rc;
	if ((rc = simtrace_init(&s->trace, o->trace)) != 0)
		return rc;
	if ((rc = sim_checks_init(&s->chk)) != 0)
		return rc;
	/* With membership changes, spare slots host joiners (and reused
	 * slots new nodes): every node count gets some. */
	s->slots = o->nodes;
	if (s->faults.membership)
		s->slots = o->nodes + 2 < SIM_NODES_MAX ? o->nodes + 2 : SIM_NODES_MAX;
	simnet_init(&s->net, &s->faults.net, s->slots, s->slots + o->clients + 1,
		    o->seed);
	simrng_init(&s->rng_disk, o->seed, SIMRNG_DISK);
	simrng_init(&s->rng_faults, o->seed, SIMRNG_FAULTS);
	simrng_init(&s->rng_work, o->seed, SIMRNG_WORKLOAD);
	struct simrng jitter;
	simrng_init(&jitter, o->seed, SIMRNG_JITTER);
	s->membership.member_count = o->nodes;
	for (uint32_t i = 0; i < o->nodes; i++) {
		s->membership.members[i].id = i + 1;
		s->membership.members[i].role = MEMBER_VOTER;
	}
	simpanic_set(o->seed, 0);
	if (s->trace.f) {
		char desc[768];
		sim_faults_describe(&s->faults, desc, sizeof(desc));
		simtrace_text(&s->trace, 0, "sim", "seed %llu nodes %u ops %u profile %s",
			      (unsigned long long)o->seed, o->nodes, o->ops,
			      sim_profile_name(o->profile));
		simtrace_text(&s->trace, 0, "sim", "%s", desc);
	}
	for (uint32_t i = 0; i < s->slots; i++) {
		struct sim_node *n = &s->nodes[i];
		if ((rc = sim_node_init(s, n, i)) != 0)
			return rc;
		n->id = i < o->nodes ? i + 1 : KEEL_NODE_NONE;
		if (i >= o->nodes)
			n->state = NODE_OFF;
		n->raft_seed = simrng_next(&jitter);
		uint32_t dmax = s->faults.drift_ppm_max;
		int64_t drift = dmax ? (int64_t)simrng_range(&jitter, 0, 2 * dmax) - dmax : 0;
		n->tick_ns = (uint64_t)((int64_t)SIM_TICK_NS +
					(int64_t)SIM_TICK_NS * drift / (int64_t)SIMRNG_PPM);
	}
	for (uint32_t i = 0; i < o->nodes && s->fail_reason == NULL; i++)
		sim_node_start(s, &s->nodes[i]);
	s->cfg = s->membership;
	s->cfg_index = 1;
	if (s->faults.membership && (rc = sim_admin_init(s)) != 0)
		return rc;
	sim_clients_init(s);
	sim_schedule(s, simrng_range(&s->rng_faults, 1, s->faults.nemesis_mean_ns),
		     EV_STORM, 0, 0, NULL);
	return 0;
}

static void teardown(struct sim *s)
{
	struct sim_event ev;
	while (simq_pop(&s->q, &ev) == 0)
		free(ev.ptr); /* R4 */
	simq_free(&s->q);
	for (uint32_t i = 0; i < s->slots; i++)
		sim_node_free(&s->nodes[i]);
	sim_admin_free(s);
	sim_checks_free(&s->chk);
	simtrace_free(&s->trace);
	sim_ops_free(s);
	free(s->scratch);
}

/* ---- the loop ----------------------------------------------------------- */

static bool defer_if_paused(struct sim *s, struct sim_node *n,
			    const struct sim_event *ev)
{
	if (!n->paused || sim_now(s) >= n->paused_until_ns)
		return false;
	sim_schedule(s, n->paused_until_ns, ev->kind, ev->who, ev->arg, ev->ptr);
	return true;
}

static void deliver(struct sim *s, const struct sim_event *ev)
{
	struct sim_pkt *p = ev->ptr;
	if (p->to >= s->slots) {
		sim_client_receive(s, &s->clients[p->to - s->slots], p);
		free(p);
		return;
	}
	struct sim_node *n = &s->nodes[p->to];
	if (n->state != NODE_UP || !simnet_deliverable(&s->net, p->from, p->to)) {
		free(p);
		return;
	}
	if (defer_if_paused(s, n, ev))
		return;
	sim_node_receive(s, n, p);
	free(p);
}

/* Handle one event; returns the node it touched, or -1. */
static int dispatch(struct sim *s, const struct sim_event *ev)
{
	struct sim_node *n = ev->who < s->slots ? &s->nodes[ev->who] : NULL;
	switch (ev->kind) {
	case EV_TICK:
		if (defer_if_paused(s, n, ev))
			return -1;
		sim_node_tick(s, n, ev->arg);
		return (int)ev->who;
	case EV_DISK:
		if (ev->arg == n->epoch && defer_if_paused(s, n, ev))
			return -1;
		sim_node_disk_done(s, n, ev->arg);
		return (int)ev->who;
	case EV_DELIVER: {
		const struct sim_pkt *p = ev->ptr;
		int to = p->to < s->slots ? (int)p->to : -1;
		deliver(s, ev);
		return to;
	}
	case EV_CLIENT_NEXT:
		sim_client_next(s, &s->clients[ev->who]);
		return -1;
	case EV_CLIENT_TIMEOUT:
		sim_client_timeout(s, &s->clients[ev->who], ev->arg);
		return -1;
	case EV_CLIENT_RETRY:
		sim_client_retry(s, &s->clients[ev->who], ev->arg);
		return -1;
	case EV_NEMESIS:
		sim_nemesis_act(s, ev->arg);
		return -1;
	case EV_FAULT_END:
		sim_nemesis_fault_end(s, ev->who, ev->arg);
		return -1;
	case EV_RESTART:
		if (ev->arg == n->epoch && n->state == NODE_DOWN) {
			sim_node_start(s, n);
			return (int)ev->who;
		}
		return -1;
	case EV_UNPAUSE:
		if (ev->arg == n->epoch && n->paused)
			n->paused = false;
		return -1;
	case EV_PROBE:
		sim_probe_start(s);
		return -1;
	case EV_QUIET:
		sim_nemesis_quiet(s);
		return -1;
	case EV_STORM:
		sim_nemesis_storm(s);
		return -1;
	case EV_CRASH:
		sim_nemesis_crash_soon(s, n, ev->arg);
		return -1;
	case EV_SNAP:
		if (ev->arg == n->epoch && defer_if_paused(s, n, ev))
			return -1;
		sim_node_snap(s, n, ev->arg);
		return n->state == NODE_UP ? (int)ev->who : -1;
	case EV_ADMIN:
		return sim_admin_act(s, ev->who, ev->arg);
	default:
		KEEL_UNREACHABLE();
	}
}

static void phase(struct sim *s, uint64_t *quiesce_until)
{
	uint64_t now = sim_now(s);
	if (!s->healed) {
		if (s->ops_invoked >= s->opts.ops ||
		    now >= SIM_FAULT_PHASE_NS_BASE +
				   (uint64_t)s->opts.ops * SIM_FAULT_PHASE_NS_PER_OP)
			sim_nemesis_heal(s);
		return;
	}
	if (!s->probe_done) {
		if (now > s->heal_ns + SIM_LIVENESS_NS)
			sim_fail(s, "liveness",
				 "no new write acknowledged within %llus of healing",
				 (unsigned long long)(SIM_LIVENESS_NS / SIM_S));
		return;
	}
	if (*quiesce_until == 0) {
		if (sim_clients_done(s))
			*quiesce_until = now + SIM_QUIESCE_NS;
		else if (now > s->heal_ns + SIM_LIVENESS_NS)
			sim_fail(s, "liveness", "client operations still running %llus after healing",
				 (unsigned long long)(SIM_LIVENESS_NS / SIM_S));
		return;
	}
	if (now >= *quiesce_until)
		s->finished = true;
}

static void loop(struct sim *s)
{
	uint64_t quiesce_until = 0;
	struct sim_event ev;
	while (!s->finished && s->fail_reason == NULL) {
		if (simq_pop(&s->q, &ev) != 0) {
			sim_fail(s, "stuck", "no events left");
			break;
		}
		if (++s->events > SIM_EVENTS_MAX) {
			free(ev.ptr);
			sim_fail(s, "sim_limit", "more than %llu events",
				 (unsigned long long)SIM_EVENTS_MAX);
			break;
		}
		if (ev.at_ns >= s->window_start_ns + SIM_S) {
			s->window_start_ns = ev.at_ns;
			s->window_events = 0;
		}
		if (++s->window_events > SIM_EVENTS_PER_VSEC_MAX) {
			free(ev.ptr);
			sim_fail(s, "event_storm",
				 "more than %u events within one virtual second from %.3fs",
				 SIM_EVENTS_PER_VSEC_MAX, (double)s->window_start_ns / 1e9);
			break;
		}
		simtrace_event(&s->trace, ev.at_ns, ev.kind, ev.who, ev.arg,
			       ev.kind == EV_DELIVER ? ((struct sim_pkt *)ev.ptr)->bytes : 0);
		int touched = dispatch(s, &ev);
		if (touched >= 0 && s->fail_reason == NULL) {
			simpanic_set(s->opts.seed, s->nodes[touched].id);
			sim_check_node(s, &s->nodes[touched]); /* R2 */
		}
		if (++s->chk.events_since_full >= SIM_FULL_CHECK_EVENTS &&
		    s->fail_reason == NULL)
			sim_check_full(s);
		if (s->fail_reason == NULL)
			phase(s, &quiesce_until);
	}
}

int sim_run(const struct sim_opts *o, struct sim_result *res)
{
	KEEL_ASSERT(o->nodes >= 1 && o->nodes <= SIM_NODES_MAX);
	KEEL_ASSERT(o->clients >= 1 && o->clients < SIM_CLIENTS_MAX);
	struct sim *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return KEEL_ENOMEM;
	int rc = setup(s, o);
	if (rc == 0) {
		loop(s);
		if (s->fail_reason == NULL)
			sim_check_final(s);
		if (s->fail_reason == NULL || s->opts.history != NULL)
			sim_history_check(s);
	}
	memset(res, 0, sizeof(*res));
	res->pass = rc == 0 && s->fail_reason == NULL;
	res->reason = s->fail_reason ? s->fail_reason : "none";
	snprintf(res->detail, sizeof(res->detail), "%s", s->fail_detail);
	for (uint32_t i = 0; i < s->op_count; i++)
		res->ops += !s->ops[i].stale;
	res->virtual_ns = sim_now(s);
	res->events = s->events;
	res->trace_hash = simtrace_hash(&s->trace);
	res->compactions = s->stats_compactions;
	res->installs = s->stats_installs;
	res->changes = s->stats_changes;
	if (s->trace.f)
		simtrace_text(&s->trace, sim_now(s), "sim",
			      "end: %s%s%s; %llu events, %llu crashes, %llu partitions, "
			      "%llu pauses, %llu corruptions, %llu records refused, "
			      "%llu compactions, %llu snapshot installs, %llu membership changes",
			      res->pass ? "pass" : "FAIL ", res->pass ? "" : res->reason,
			      "", (unsigned long long)s->events,
			      (unsigned long long)s->stats_crashes,
			      (unsigned long long)s->stats_partitions,
			      (unsigned long long)s->stats_pauses,
			      (unsigned long long)s->stats_corruptions,
			      (unsigned long long)s->stats_refused,
			      (unsigned long long)s->stats_compactions,
			      (unsigned long long)s->stats_installs,
			      (unsigned long long)s->stats_changes);
	teardown(s);
	free(s);
	return rc;
}
