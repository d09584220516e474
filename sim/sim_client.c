/*
 * sim_client.c: simulated clients and the history they record.
 *
 * Each client runs one operation at a time, like the real client library:
 * it sends to the node it believes leads, follows NOT_LEADER hints, retries
 * the same (client_id, seq) after a timeout or an UNAVAILABLE/BUSY answer
 * (exponential backoff), and gives up after SIM_CLIENT_ATTEMPTS_MAX attempts
 * or faults.giveup_ns, recording the operation as indeterminate (info):
 * it may or may not have taken effect. Stale gets go to any node and are
 * recorded apart (never checked as linearizable).
 *
 * Invariants:
 *  C1 A client has at most one operation in flight; responses to any other
 *     request id are ignored.
 *  C2 A write's seq is fixed for all its attempts; each new write takes
 *     the next seq.
 *  C3 An operation is completed once: ok, fail (definitely not applied) or
 *     info (unknown). Operations still pending when the run ends are info.
 */
#include <stdlib.h>
#include <string.h>

#include "../core/assert.h"
#include "../core/codec.h"
#include "../core/err.h"
#include "../core/mutant.h"
#include "check.h"
#include "sim.h"

static const struct keel_alloc sim_alloc = {0};

#define CTRACE(s, c, ...)                                                  \
	do {                                                               \
		if ((s)->trace.f) {                                        \
			char cb_[12];                                      \
			snprintf(cb_, sizeof(cb_), "c%u", (c)->idx + 1);   \
			simtrace_text(&(s)->trace, sim_now(s), cb_, __VA_ARGS__); \
		}                                                          \
	} while (0)

static const char *op_names[] = {"get", "put", "del", "cas", "append"};

static void key_name(uint32_t key, uint8_t out[8], uint32_t *len)
{
	out[0] = 'k';
	out[1] = (uint8_t)('0' + key / 10);
	out[2] = (uint8_t)('0' + key % 10);
	*len = 3;
}

/* A node slot to send to: from slot, the first that hosts a member (a
 * client's endpoint list follows the cluster, as keelctl's would). */
static uint32_t live_slot(const struct sim *s, uint32_t slot)
{
	for (uint32_t k = 0; k < s->slots; k++) {
		uint32_t i = (slot + k) % s->slots;
		if (s->nodes[i].state != NODE_OFF)
			return i;
	}
	return slot % s->slots;
}

static uint32_t random_target(struct sim *s)
{
	return live_slot(s, (uint32_t)simrng_below(&s->rng_work, s->slots));
}

void sim_clients_init(struct sim *s)
{
	s->client_count = s->opts.clients + 1; /* + the liveness probe */
	KEEL_ASSERT(s->client_count <= SIM_CLIENTS_MAX);
	for (uint32_t i = 0; i < s->client_count; i++) {
		struct sim_client *c = &s->clients[i];
		memset(c, 0, sizeof(*c));
		c->idx = i;
		c->ep = s->slots + i;
		c->client_id = i + 1;
		c->target = random_target(s);
		c->probe = i == s->opts.clients;
		if (!c->probe)
			sim_schedule(s, simrng_range(&s->rng_work, 1, 50 * SIM_MS),
				     EV_CLIENT_NEXT, i, 0, NULL);
	}
}

static struct sim_op *op_new(struct sim *s, struct sim_client *c)
{
	if (s->op_count == s->op_cap) {
		uint32_t cap = s->op_cap ? s->op_cap * 2 : 1024;
		struct sim_op *o = realloc(s->ops, cap * sizeof(*o));
		if (o == NULL)
			return NULL;
		s->ops = o;
		s->op_cap = cap;
	}
	struct sim_op *op = &s->ops[s->op_count];
	memset(op, 0, sizeof(*op));
	op->client = c->idx;
	op->invoke_ns = sim_now(s);
	c->op = s->op_count++;
	return op;
}

static void draw_op(struct sim *s, struct sim_client *c, struct sim_op *op)
{
	struct simrng *r = &s->rng_work;
	uint64_t k = simrng_below(r, 100);
	uint64_t a = s->faults.append_pct;
	uint64_t rest = 100 - a; /* get 35%, put 30%, del 10%, cas 25% of it */
	op->kind = k < a ? OP_APPEND : k < a + rest * 35 / 100 ? OP_GET
		 : k < a + rest * 65 / 100 ? OP_PUT : k < a + rest * 75 / 100 ? OP_DEL
		 : OP_CAS;
	op->key = (uint8_t)simrng_below(r, s->faults.keys);
	if (op->kind == OP_GET)
		op->stale = simrng_chance(r, s->faults.stale_read_ppm);
	if (op->kind == OP_PUT || op->kind == OP_CAS || op->kind == OP_APPEND) {
		int len = snprintf((char *)op->value, sizeof(op->value), "%s%u.%u",
				   op->kind == OP_APPEND ? "+" : "v", c->idx + 1,
				   c->issued);
		op->value_bytes = (uint32_t)len;
	}
	if (op->kind == OP_CAS) {
		if (c->last_value_known[op->key] && simrng_chance(r, 800000)) {
			op->expected_bytes = c->last_value_bytes[op->key];
			memcpy(op->expected, c->last_value[op->key], op->expected_bytes);
		} else {
			op->cas_absent = true;
		}
	}
}

static void send_attempt(struct sim *s, struct sim_client *c)
{
	struct sim_op *op = &s->ops[c->op];
	c->request_id = (c->client_id << 40) + (++c->attempt) + ((uint64_t)c->op << 16);
	uint8_t key[8];
	uint32_t key_bytes;
	key_name(op->key, key, &key_bytes);
	struct client_request r;
	memset(&r, 0, sizeof(r));
	r.request_id = c->request_id;
	r.kind = CLIENT_REQ_KV;
	r.consistency = op->stale ? KV_STALE : KV_LINEARIZABLE;
	static const uint32_t kv_ops[] = {KV_GET, KV_PUT, KV_DEL, KV_CAS, KV_APPEND};
	r.cmd.op = kv_ops[op->kind];
	r.cmd.key = key;
	r.cmd.key_bytes = key_bytes;
	if (op->kind != OP_GET) {
		r.cmd.client_id = c->client_id;
		r.cmd.seq = c->seq;
	}
	if (op->value_bytes) {
		r.cmd.value = op->value;
		r.cmd.value_bytes = op->value_bytes;
	}
	r.cmd.cas_absent = op->cas_absent;
	if (op->expected_bytes) {
		r.cmd.expected = op->expected;
		r.cmd.expected_bytes = op->expected_bytes;
	}
	size_t need = codec_request_encoded_bytes(&r);
	uint8_t *buf = sim_scratch(s, need);
	int len = codec_request_encode(&r, buf, need);
	if (len < 0) {
		sim_fail(s, "codec", "c%u: request encode: %s", c->idx + 1,
			 keel_err_name(len));
		return;
	}
	sim_send(s, c->ep, c->target, PKT_REQUEST, buf, (uint32_t)len);
	sim_schedule(s, sim_now(s) + s->faults.client_timeout_ns, EV_CLIENT_TIMEOUT,
		     c->idx, c->attempt, NULL);
}

static void complete(struct sim *s, struct sim_client *c, uint32_t outcome)
{
	struct sim_op *op = &s->ops[c->op];
	KEEL_ASSERT(op->outcome == OUT_PENDING); /* C3 */
	op->outcome = (uint8_t)outcome;
	op->complete_ns = sim_now(s);
	c->busy = false;
	CTRACE(s, c, "%s k%02u %s after %u attempts", op_names[op->kind], op->key,
	       outcome == OUT_OK ? "ok" : outcome == OUT_FAIL ? "fail" : "info",
	       c->attempt);
	simtrace_event(&s->trace, sim_now(s), 300 + outcome, c->idx, c->op,
		       op->result_found);
	if (c->probe) {
		if (outcome == OUT_OK) {
			s->probe_done = true;
			s->probe_done_ns = sim_now(s);
		} else {
			sim_schedule(s, sim_now(s) + SIM_CLIENT_BACKOFF_NS, EV_PROBE,
				     c->idx, 0, NULL);
		}
		return;
	}
	uint64_t think = simrng_exp(&s->rng_work, s->faults.think_ns_mean,
				    20 * s->faults.think_ns_mean + 1);
	sim_schedule(s, sim_now(s) + think, EV_CLIENT_NEXT, c->idx, 0, NULL);
}

static void start_op(struct sim *s, struct sim_client *c, struct sim_op *op)
{
	if (op->kind != OP_GET)
		op->seq = ++c->seq; /* C2 */
	c->issued++;
	c->busy = true;
	c->attempt = 0;
	if (op->stale)
		c->target = random_target(s);
	CTRACE(s, c, "invoke %s%s k%02u %.*s", op_names[op->kind],
	       op->stale ? " (stale)" : "", op->key, (int)op->value_bytes,
	       (const char *)op->value);
	send_attempt(s, c);
}

void sim_client_next(struct sim *s, struct sim_client *c)
{
	if (c->busy || c->done)
		return;
	if (!c->probe && (s->ops_invoked >= s->opts.ops || s->healed)) {
		c->done = true;
		return;
	}
	struct sim_op *op = op_new(s, c);
	if (op == NULL) {
		sim_fail(s, "sim_limit", "out of memory for the history");
		return;
	}
	if (c->probe) {
		op->kind = OP_PUT;
		op->key = 0;
		op->value_bytes = (uint32_t)snprintf((char *)op->value,
						     sizeof(op->value), "probe.%u",
						     c->issued);
	} else {
		draw_op(s, c, op);
		s->ops_invoked++;
	}
	start_op(s, c, op);
}

void sim_probe_start(struct sim *s)
{
	struct sim_client *c = &s->clients[s->opts.clients];
	KEEL_ASSERT(c->probe);
	if (!c->busy && !s->probe_done)
		sim_client_next(s, c);
}

static void give_up(struct sim *s, struct sim_client *c)
{
	struct sim_op *op = &s->ops[c->op];
	uint32_t outcome = OUT_INFO;
	if (MUTANT(MUTANT_INDETERMINATE_AS_FAIL) && op->kind != OP_GET)
		outcome = OUT_FAIL; /* planted bug: an unknown outcome called a failure */
	complete(s, c, outcome);
}

void sim_client_retry(struct sim *s, struct sim_client *c, uint64_t attempt)
{
	if (!c->busy || attempt != c->attempt)
		return;
	struct sim_op *op = &s->ops[c->op];
	bool too_old = sim_now(s) - op->invoke_ns >= s->faults.giveup_ns;
	if (!c->probe && (c->attempt >= SIM_CLIENT_ATTEMPTS_MAX || too_old)) {
		give_up(s, c);
		return;
	}
	if (c->probe && too_old) { /* the probe keeps trying, as a new op */
		complete(s, c, OUT_INFO);
		return;
	}
	send_attempt(s, c);
}

static uint64_t backoff(const struct sim_client *c)
{
	uint32_t k = c->attempt < 4 ? c->attempt : 4;
	return SIM_CLIENT_BACKOFF_NS << k;
}

static void next_target(struct sim *s, struct sim_client *c)
{
	c->target = live_slot(s, (c->target + 1) % s->slots);
}

void sim_client_timeout(struct sim *s, struct sim_client *c, uint64_t attempt)
{
	if (!c->busy || attempt != c->attempt)
		return;
	next_target(s, c);
	sim_client_retry(s, c, attempt);
}

static void finish_ok(struct sim *s, struct sim_client *c,
		      const struct client_response *r)
{
	struct sim_op *op = &s->ops[c->op];
	switch (op->kind) {
	case OP_GET:
		op->result_found = r->status == CLIENT_OK;
		if (op->result_found) {
			op->result_bytes = r->value_bytes;
			op->result = malloc(r->value_bytes ? r->value_bytes : 1);
			if (op->result == NULL) {
				sim_fail(s, "sim_limit", "out of memory");
				return;
			}
			if (r->value_bytes)
				memcpy(op->result, r->value, r->value_bytes);
			if (r->value_bytes <= SIM_VALUE_BYTES_MAX && !op->stale) {
				memcpy(c->last_value[op->key], r->value, r->value_bytes);
				c->last_value_bytes[op->key] = r->value_bytes;
				c->last_value_known[op->key] = true;
			}
		} else if (!op->stale) {
			c->last_value_known[op->key] = false;
		}
		break;
	case OP_PUT:
		memcpy(c->last_value[op->key], op->value, op->value_bytes);
		c->last_value_bytes[op->key] = op->value_bytes;
		c->last_value_known[op->key] = true;
		break;
	case OP_DEL:
		op->result_found = r->status == CLIENT_OK;
		break;
	case OP_CAS:
		op->result_found = r->status == CLIENT_OK;
		break;
	default:
		break;
	}
	complete(s, c, OUT_OK);
}

void sim_client_receive(struct sim *s, struct sim_client *c, struct sim_pkt *p)
{
	uint32_t type = 0, plen = 0;
	const uint8_t *payload = NULL;
	int rc = codec_frame_decode(p->data, p->bytes, &type, &payload, &plen);
	if (rc != 0 || type != FRAME_CLIENT_RESPONSE) {
		sim_fail(s, "codec", "c%u: frame decode: %s (type %u)", c->idx + 1,
			 keel_err_name(rc), type);
		return;
	}
	struct client_response r;
	struct codec_decoded d;
	rc = codec_response_decode(payload, plen, &sim_alloc, &r, &d);
	if (rc != 0) {
		sim_fail(s, "codec", "c%u: response decode: %s", c->idx + 1,
			 keel_err_name(rc));
		return;
	}
	if (!c->busy || r.request_id != c->request_id) { /* C1 */
		codec_decoded_free(&d);
		return;
	}
	struct sim_op *op = &s->ops[c->op];
	switch (r.status) {
	case CLIENT_OK:
	case CLIENT_NOT_FOUND:
	case CLIENT_CAS_FAILED:
		if (op->stale != r.stale)
			sim_fail(s, "stale_label", "c%u: %s read answered with stale=%d",
				 c->idx + 1, op->stale ? "stale" : "linearizable", r.stale);
		else
			finish_ok(s, c, &r);
		break;
	case CLIENT_TOO_BIG:
		complete(s, c, OUT_FAIL);
		break;
	case CLIENT_NOT_LEADER: {
		struct sim_node *hint = sim_node_by_id(s, r.leader_id);
		if (hint != NULL && hint->idx != c->target) {
			c->target = hint->idx;
			sim_client_retry(s, c, c->attempt);
		} else {
			next_target(s, c);
			sim_schedule(s, sim_now(s) + backoff(c), EV_CLIENT_RETRY,
				     c->idx, c->attempt, NULL);
		}
		break;
	}
	case CLIENT_UNAVAILABLE:
	case CLIENT_BUSY:
	case CLIENT_SHUTTING_DOWN:
		sim_schedule(s, sim_now(s) + backoff(c), EV_CLIENT_RETRY, c->idx,
			     c->attempt, NULL);
		break;
	default:
		sim_fail(s, "client", "c%u: unexpected status %u for %s",
			 c->idx + 1, r.status, op_names[op->kind]);
	}
	codec_decoded_free(&d);
}

bool sim_clients_done(const struct sim *s)
{
	for (uint32_t i = 0; i < s->opts.clients; i++)
		if (s->clients[i].busy)
			return false;
	return true;
}

void sim_ops_free(struct sim *s)
{
	for (uint32_t i = 0; i < SIM_CLIENTS_MAX; i++) {
		free(s->clients[i].effects);
		s->clients[i].effects = NULL;
		s->clients[i].effects_cap = 0;
	}
	for (uint32_t i = 0; i < s->op_count; i++)
		free(s->ops[i].result);
	free(s->ops);
	s->ops = NULL;
	s->op_count = s->op_cap = 0;
}

/* ---- the history -------------------------------------------------------- */

/*
 * An indeterminate write is resolved from what the cluster did, which the
 * simulator sees: if (client_id, seq) was applied anywhere, it took effect
 * by its first apply (a committed entry is applied after its commit point),
 * with the result that apply gave; if it never was, after the heal and the
 * quiet period it never will be (any future leader holds the healed
 * leader's committed log), so it did not take effect. Every answer a client
 * saw is checked as it was; only unknown outcomes are filled in.
 */
static void resolve(const struct sim *s, const struct sim_op *op,
		    struct check_op_in *in)
{
	const struct sim_client *c = &s->clients[op->client];
	if (op->seq == 0 || op->seq >= c->effects_cap ||
	    c->effects[op->seq].at_ns == 0 ||
	    c->effects[op->seq].status == KV_TOO_BIG) {
		in->outcome = CHECK_FAIL;
		in->complete_ns = op->invoke_ns;
		return;
	}
	const struct sim_effect *e = &c->effects[op->seq];
	in->outcome = CHECK_OK;
	in->complete_ns = e->at_ns > op->invoke_ns ? e->at_ns : op->invoke_ns;
	in->result_bool = e->status == KV_OK;
}

static int build_history(const struct sim *s, struct check_history *h,
			 bool resolved)
{
	static const enum check_kind kinds[] = {CHECK_GET, CHECK_PUT, CHECK_DEL,
						CHECK_CAS, CHECK_APPEND};
	for (uint32_t i = 0; i < s->op_count; i++) {
		const struct sim_op *op = &s->ops[i];
		if (op->stale)
			continue;
		if (op->kind == OP_GET && op->outcome != OUT_OK)
			continue; /* a read with no answer constrains nothing */
		uint8_t key[8];
		uint32_t key_bytes;
		key_name(op->key, key, &key_bytes);
		struct check_op_in in;
		memset(&in, 0, sizeof(in));
		in.client = op->client + 1;
		in.kind = kinds[op->kind];
		in.outcome = op->outcome == OUT_OK ? CHECK_OK
			   : op->outcome == OUT_FAIL ? CHECK_FAIL : CHECK_INFO;
		in.key = (struct check_str){key, key_bytes};
		if (op->kind == OP_PUT || op->kind == OP_APPEND || op->kind == OP_CAS)
			in.value = (struct check_str){op->value, op->value_bytes};
		if (op->kind == OP_CAS && !op->cas_absent)
			in.expected = (struct check_str){op->expected, op->expected_bytes};
		if (op->kind == OP_GET && op->result_found)
			in.result = (struct check_str){op->result ? op->result : key,
						       op->result_bytes};
		in.result_bool = op->result_found;
		in.invoke_ns = op->invoke_ns;
		in.complete_ns = in.outcome == CHECK_INFO ? op->invoke_ns : op->complete_ns;
		if (resolved && in.outcome == CHECK_INFO)
			resolve(s, op, &in);
		int rc = check_history_add(h, &in);
		if (rc != 0)
			return rc;
	}
	return 0;
}

int sim_history_write(const struct sim *s, FILE *f)
{
	struct check_history h;
	check_history_init(&h);
	int rc = build_history(s, &h, false);
	if (rc == 0)
		rc = check_write_native(&h, f);
	check_history_free(&h);
	return rc;
}

void sim_history_check(struct sim *s)
{
	struct check_history h;
	check_history_init(&h);
	if (s->opts.history != NULL && sim_history_write(s, s->opts.history) != 0)
		sim_fail(s, "history", "cannot write the history file");
	int rc = build_history(s, &h, true);
	if (rc != 0) {
		sim_fail(s, "history", "building the history: %s", keel_err_name(rc));
		check_history_free(&h);
		return;
	}
	struct check_limits lim = {.timeout_ms = s->opts.check_timeout_ms};
	struct check_result res;
	memset(&res, 0, sizeof(res));
	rc = check_run(&h, CHECK_MODEL_KEEL, &lim, &res);
	if (rc != 0) {
		sim_fail(s, "history", "keelcheck: %s", keel_err_name(rc));
	} else if (res.verdict == CHECK_VERDICT_ILLEGAL) {
		size_t kl = 0;
		const uint8_t *k = check_str_get(&h.keys, res.key, &kl);
		sim_fail(s, "linearizability", "key %.*s is not linearizable",
			 (int)kl, (const char *)k);
		if (s->opts.html_dir != NULL) {
			char path[4096];
			snprintf(path, sizeof(path), "%s/seed-%llu.html",
				 s->opts.html_dir, (unsigned long long)s->opts.seed);
			char title[64];
			snprintf(title, sizeof(title), "keelsim seed %llu",
				 (unsigned long long)s->opts.seed);
			if (check_html_write(&h, &res, title, path) == 0)
				fprintf(stderr, "keelsim: picture of key %.*s in %s\n",
					(int)kl, (const char *)k, path);
			else
				fprintf(stderr, "keelsim: cannot write %s\n", path);
		}
	} else if (res.verdict == CHECK_VERDICT_UNKNOWN) {
		sim_fail(s, "check_unknown", "keelcheck gave up: %s",
			 res.unknown_why ? res.unknown_why : "limit");
	}
	check_result_free(&res);
	check_history_free(&h);
}
