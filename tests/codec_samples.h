/*
 * codec_samples.h: valid sample messages of every type for the codec tests
 * (tests/test_codec*.c). Each builder fills a struct whose pointers refer to
 * static sample bytes.
 */
#ifndef KEEL_TESTS_CODEC_SAMPLES_H
#define KEEL_TESTS_CODEC_SAMPLES_H

#include <string.h>

#include "../core/codec.h"
#include "../core/raft.h"

static const uint8_t sample_key[] = "user:42";
static const uint8_t sample_value[] = "hello, keel";
static const uint8_t sample_expected[] = "old";
static const uint8_t sample_chunk[] = { 0, 1, 2, 3, 0xff, 0xfe, 7 };

static inline void sample_membership(struct membership *m)
{
	memset(m, 0, sizeof(*m));
	m->member_count = 4;
	for (uint32_t i = 0; i < m->member_count; i++) {
		struct member *x = &m->members[i];
		x->id = 10 + i;
		x->role = i == 3 ? MEMBER_LEARNER : MEMBER_VOTER;
		snprintf(x->peer_addr, sizeof(x->peer_addr), "10.0.0.%u:7000", i + 1);
		snprintf(x->client_addr, sizeof(x->client_addr), "10.0.0.%u:7001", i + 1);
	}
	m->next_id = 20;
}

static inline void sample_command(struct kv_command *c, uint32_t op)
{
	memset(c, 0, sizeof(*c));
	c->client_id = 77;
	c->seq = 5;
	c->op = op;
	c->key = sample_key;
	c->key_bytes = sizeof(sample_key) - 1;
	if (op == KV_PUT || op == KV_APPEND || op == KV_CAS) {
		c->value = sample_value;
		c->value_bytes = sizeof(sample_value) - 1;
	}
	if (op == KV_CAS) {
		c->expected = sample_expected;
		c->expected_bytes = sizeof(sample_expected) - 1;
	}
}

static inline void sample_msg_header(struct msg *m, uint32_t type)
{
	memset(m, 0, sizeof(*m));
	m->type = type;
	m->from = 1;
	m->to = 2;
	m->term = 7;
}

/* entries must have room for 3; data for the config entry in cfg_buf. */
static inline void sample_append(struct msg *m, struct entry *entries,
				 uint8_t *cfg_buf, size_t cfg_cap)
{
	struct membership cfg;
	sample_membership(&cfg);
	int cfg_bytes = codec_membership_encode(&cfg, cfg_buf, cfg_cap);

	sample_msg_header(m, MSG_APPEND);
	m->u.append.prev_index = 40;
	m->u.append.prev_term = 5;
	m->u.append.commit = 39;
	m->u.append.ctx = 1234;
	m->u.append.entry_count = 3;
	m->u.append.entries = entries;
	entries[0] = (struct entry){ .term = 6, .index = 41, .type = ENTRY_NOOP };
	entries[1] = (struct entry){ .term = 7, .index = 42, .type = ENTRY_COMMAND,
				     .data = sample_value,
				     .data_bytes = sizeof(sample_value) - 1 };
	entries[2] = (struct entry){ .term = 7, .index = 43, .type = ENTRY_CONFIG,
				     .data = cfg_buf,
				     .data_bytes = (uint32_t)(cfg_bytes > 0 ? cfg_bytes : 0) };
}

static inline void sample_snapshot(struct msg *m)
{
	sample_msg_header(m, MSG_SNAPSHOT);
	m->u.snapshot.last_index = 1000;
	m->u.snapshot.last_term = 6;
	sample_membership(&m->u.snapshot.membership);
	m->u.snapshot.offset = 4096;
	m->u.snapshot.chunk = sample_chunk;
	m->u.snapshot.chunk_bytes = sizeof(sample_chunk);
	m->u.snapshot.done = true;
}

/* Every type but append and snapshot (see above). */
static inline void sample_simple_msg(struct msg *m, uint32_t type)
{
	sample_msg_header(m, type);
	switch (type) {
	case MSG_PREVOTE:
	case MSG_VOTE:
		m->u.vote.last_log_index = 99;
		m->u.vote.last_log_term = 6;
		m->u.vote.transfer = type == MSG_VOTE;
		break;
	case MSG_PREVOTE_RESP:
	case MSG_VOTE_RESP:
		m->u.vote_resp.granted = true;
		break;
	case MSG_APPEND_RESP:
		m->u.append_resp.success = false;
		m->u.append_resp.match_index = 0;
		m->u.append_resp.reject_index = 50;
		m->u.append_resp.hint_index = 45;
		m->u.append_resp.hint_term = 4;
		m->u.append_resp.ctx = 1234;
		break;
	case MSG_SNAPSHOT_RESP:
		m->u.snapshot_resp.last_index = 1000;
		m->u.snapshot_resp.next_offset = 8192;
		m->u.snapshot_resp.done = false;
		m->u.snapshot_resp.rejected = true;
		break;
	default:
		break;
	}
}

static inline void sample_request(struct client_request *r, uint32_t op)
{
	memset(r, 0, sizeof(*r));
	r->request_id = 31;
	r->kind = CLIENT_REQ_KV;
	r->consistency = op == KV_GET ? KV_STALE : KV_LINEARIZABLE;
	sample_command(&r->cmd, op);
}

/* A membership change request of the given kind (enum member_change_kind). */
static inline void sample_member_request(struct client_request *r, uint32_t kind)
{
	memset(r, 0, sizeof(*r));
	r->request_id = 32;
	r->kind = CLIENT_REQ_MEMBER;
	r->change.kind = kind;
	r->change.id = kind == MEMBER_ADD_LEARNER ? 0 : 12;
	if (kind == MEMBER_ADD_LEARNER) {
		snprintf(r->change.peer_addr, sizeof(r->change.peer_addr), "10.0.0.9:7000");
		snprintf(r->change.client_addr, sizeof(r->change.client_addr), "10.0.0.9:7001");
	}
}

static inline void sample_transfer_request(struct client_request *r)
{
	memset(r, 0, sizeof(*r));
	r->request_id = 33;
	r->kind = CLIENT_REQ_TRANSFER;
	r->transfer_to = 11;
}

static inline void sample_response(struct client_response *r, bool status)
{
	memset(r, 0, sizeof(*r));
	r->request_id = 31;
	r->status = status ? CLIENT_OK : CLIENT_NOT_LEADER;
	r->stale = true;
	r->value = sample_value;
	r->value_bytes = sizeof(sample_value) - 1;
	r->leader_id = 3;
	snprintf(r->leader_addr, sizeof(r->leader_addr), "10.0.0.3:7001");
	snprintf(r->message, sizeof(r->message), "try node 3");
	r->member_id = 14;
	r->cluster_id = 0xfedcba9876543210ull;
	if (status) {
		r->has_node_status = true;
		r->node_status.id = 2;
		r->node_status.role = RAFT_FOLLOWER;
		r->node_status.term = 9;
		r->node_status.leader = 3;
		r->node_status.commit_index = 500;
		r->node_status.applied_index = 499;
		r->node_status.last_index = 510;
		sample_membership(&r->node_status.membership);
	}
}

#endif
