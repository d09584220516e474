/*
 * codec_validate.c: the rules every message, command and membership obeys.
 * Encoders assert them on our own data; decoders check them on input and
 * return the rule's code. Each rule below returns its own code for its
 * class: KEEL_EBADTYPE (unknown message type), KEEL_ETOOBIG (a count or size
 * over its named limit), KEEL_ERANGE (a value out of range or inconsistent
 * with another), KEEL_EBADVERSION (hello from another protocol version).
 *
 * Not checked here, on purpose: an append's commit (a leader sends its own
 * commit index, which may exceed what the message carries; the follower
 * clamps it), and the bytes of a command batch inside an entry (checked by
 * codec_batch_decode when applied; ENTRY_CONFIG data is checked by
 * codec_msg_decode).
 */
#include <string.h>

#include "assert.h"
#include "codec.h"
#include "codec_pb.h"
#include "err.h"
#include "raft.h"

/* ---- Membership ------------------------------------------------------------- */

int codec_membership_validate(const struct membership *m)
{
	/* An empty membership fails the voter rule below. */
	if (m->member_count > KEEL_MEMBERS_MAX)
		return KEEL_ETOOBIG;
	uint32_t voters = 0;
	for (uint32_t i = 0; i < m->member_count; i++) {
		const struct member *x = &m->members[i];
		if (x->id == KEEL_NODE_NONE)
			return KEEL_ERANGE;
		if (x->role != MEMBER_VOTER && x->role != MEMBER_LEARNER)
			return KEEL_ERANGE;
		if (!codec_cstring_ok(x->peer_addr, sizeof(x->peer_addr)) ||
		    !codec_cstring_ok(x->client_addr, sizeof(x->client_addr)))
			return KEEL_ETOOBIG;
		for (uint32_t j = 0; j < i; j++)
			if (m->members[j].id == x->id)
				return KEEL_ERANGE;
		/* Ids are assigned below next_id and never reused. */
		if (m->next_id != 0 && x->id >= m->next_id)
			return KEEL_ERANGE;
		voters += x->role == MEMBER_VOTER;
	}
	if (voters == 0)
		return KEEL_ERANGE;
	return 0;
}

/* ---- Commands ------------------------------------------------------------------ */

static bool op_is_write(uint32_t op)
{
	return op == KV_PUT || op == KV_DEL || op == KV_CAS || op == KV_APPEND;
}

int codec_command_validate(const struct kv_command *c)
{
	if (c->op != KV_GET && !op_is_write(c->op))
		return KEEL_ERANGE;
	if (c->key_bytes == 0 || c->key == NULL)
		return KEEL_ERANGE;
	if (c->key_bytes > KEEL_KEY_BYTES_MAX)
		return KEEL_ETOOBIG;
	if (c->value_bytes > KEEL_VALUE_BYTES_MAX ||
	    c->expected_bytes > KEEL_VALUE_BYTES_MAX)
		return KEEL_ETOOBIG;
	if ((c->value_bytes > 0 && c->value == NULL) ||
	    (c->expected_bytes > 0 && c->expected == NULL))
		return KEEL_ERANGE;
	if ((c->op == KV_GET || c->op == KV_DEL) && c->value_bytes > 0)
		return KEEL_ERANGE;
	if (c->op != KV_CAS && (c->expected_bytes > 0 || c->cas_absent))
		return KEEL_ERANGE;
	if (c->cas_absent && c->expected_bytes > 0)
		return KEEL_ERANGE;
	if (op_is_write(c->op) && (c->client_id == 0 || c->seq == 0))
		return KEEL_ERANGE;
	return 0;
}

int codec_batch_validate(const struct kv_command *cmds, uint32_t count)
{
	if (count == 0)
		return KEEL_ERANGE;
	if (count > KEEL_BATCH_COMMANDS_MAX)
		return KEEL_ETOOBIG;
	for (uint32_t i = 0; i < count; i++) {
		if (!op_is_write(cmds[i].op))
			return KEEL_ERANGE;
		int rc = codec_command_validate(&cmds[i]);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* ---- Peer messages ------------------------------------------------------------- */

static bool entry_type_known(uint32_t type)
{
	return type == ENTRY_NOOP || type == ENTRY_COMMAND ||
	       type == ENTRY_CONFIG;
}

static int vote_validate(const struct msg *m)
{
	const struct msg_vote *v = &m->u.vote;
	if (m->term == 0 || v->last_log_term > m->term)
		return KEEL_ERANGE;
	if ((v->last_log_index == 0) != (v->last_log_term == 0))
		return KEEL_ERANGE;
	return 0;
}

/* Entries are prev_index+1, +2, ...; terms 1..m->term, non-decreasing from
 * prev_term; sizes within their limits. */
static int entries_validate(const struct msg *m)
{
	const struct msg_append *a = &m->u.append;
	uint64_t term_before = a->prev_term;
	uint64_t total_bytes = 0;

	for (uint32_t i = 0; i < a->entry_count; i++) {
		const struct entry *e = &a->entries[i];
		if (e->index != a->prev_index + 1 + i)
			return KEEL_ERANGE;
		if (e->term == 0 || e->term > m->term || e->term < term_before)
			return KEEL_ERANGE;
		if (!entry_type_known(e->type))
			return KEEL_ERANGE;
		if (e->data_bytes > KEEL_ENTRY_BYTES_MAX)
			return KEEL_ETOOBIG;
		if (e->data_bytes > 0 && e->data == NULL)
			return KEEL_ERANGE;
		if (e->type == ENTRY_NOOP && e->data_bytes > 0)
			return KEEL_ERANGE;
		total_bytes += e->data_bytes;
		if (total_bytes > KEEL_APPEND_BYTES_MAX)
			return KEEL_ETOOBIG;
		term_before = e->term;
	}
	return 0;
}

static int append_validate(const struct msg *m)
{
	const struct msg_append *a = &m->u.append;
	if (m->term == 0 || a->prev_term > m->term)
		return KEEL_ERANGE;
	if ((a->prev_index == 0) != (a->prev_term == 0))
		return KEEL_ERANGE;
	if (a->entry_count > KEEL_APPEND_ENTRIES_MAX)
		return KEEL_ETOOBIG;
	if (a->entry_count > 0 && a->entries == NULL)
		return KEEL_ERANGE;
	if (a->prev_index > UINT64_MAX - a->entry_count)
		return KEEL_ERANGE;
	return entries_validate(m);
}

static int append_resp_validate(const struct msg *m)
{
	const struct msg_append_resp *r = &m->u.append_resp;
	if (r->success)
		return 0;
	if (r->hint_index > r->reject_index || r->hint_term > m->term)
		return KEEL_ERANGE;
	if (r->hint_index == 0 && r->hint_term != 0)
		return KEEL_ERANGE;
	return 0;
}

static int snapshot_validate(const struct msg *m)
{
	const struct msg_snapshot *s = &m->u.snapshot;
	if (m->term == 0 || s->last_index == 0 || s->last_term == 0 ||
	    s->last_term > m->term)
		return KEEL_ERANGE;
	if (s->chunk_bytes > KEEL_SNAPSHOT_CHUNK_BYTES_MAX)
		return KEEL_ETOOBIG;
	if (s->chunk_bytes > 0 && s->chunk == NULL)
		return KEEL_ERANGE;
	if (s->offset > UINT64_MAX - s->chunk_bytes)
		return KEEL_ERANGE;
	return codec_membership_validate(&s->membership);
}

static int snapshot_resp_validate(const struct msg *m)
{
	const struct msg_snapshot_resp *r = &m->u.snapshot_resp;
	if (r->last_index == 0)
		return KEEL_ERANGE;
	if (r->done && r->rejected)
		return KEEL_ERANGE;
	return 0;
}

int codec_msg_validate(const struct msg *m)
{
	if (m->type == 0 || m->type > MSG_TYPE_MAX)
		return KEEL_EBADTYPE;
	if (m->from == KEEL_NODE_NONE || m->to == KEEL_NODE_NONE ||
	    m->from == m->to)
		return KEEL_ERANGE;
	switch (m->type) {
	case MSG_PREVOTE:
	case MSG_VOTE:
		return vote_validate(m);
	case MSG_PREVOTE_RESP:
	case MSG_VOTE_RESP:
		return 0;
	case MSG_APPEND:
		return append_validate(m);
	case MSG_APPEND_RESP:
		return append_resp_validate(m);
	case MSG_SNAPSHOT:
		return snapshot_validate(m);
	case MSG_SNAPSHOT_RESP:
		return snapshot_resp_validate(m);
	case MSG_TIMEOUT_NOW:
		return m->term == 0 ? KEEL_ERANGE : 0;
	default:
		KEEL_UNREACHABLE();
	}
}

/* ---- Hello and client protocol ------------------------------------------------- */

int codec_hello_validate(const struct codec_hello *h)
{
	if (h->protocol_version != CODEC_VERSION)
		return KEEL_EBADVERSION;
	if (h->role != HELLO_PEER && h->role != HELLO_CLIENT)
		return KEEL_ERANGE;
	if (h->role == HELLO_PEER && h->node_id == KEEL_NODE_NONE)
		return KEEL_ERANGE;
	return 0;
}

static int member_change_validate(const struct member_change *c)
{
	if (c->kind < MEMBER_ADD_LEARNER || c->kind > MEMBER_REMOVE)
		return KEEL_ERANGE;
	/* Only an add may leave the id to the leader (raft.h M4). */
	if (c->id == KEEL_NODE_NONE && c->kind != MEMBER_ADD_LEARNER)
		return KEEL_ERANGE;
	if (!codec_cstring_ok(c->peer_addr, sizeof(c->peer_addr)) ||
	    !codec_cstring_ok(c->client_addr, sizeof(c->client_addr)))
		return KEEL_ETOOBIG;
	/* A learner nobody can reach would never catch up. */
	if (c->kind == MEMBER_ADD_LEARNER && c->peer_addr[0] == '\0')
		return KEEL_ERANGE;
	return 0;
}

int codec_request_validate(const struct client_request *r)
{
	/* transfer_to belongs to a transfer only (it is on the wire always). */
	if (r->kind != CLIENT_REQ_TRANSFER && r->transfer_to != KEEL_NODE_NONE)
		return KEEL_ERANGE;
	switch (r->kind) {
	case CLIENT_REQ_STATUS:
		return 0;
	case CLIENT_REQ_MEMBER:
		return member_change_validate(&r->change);
	case CLIENT_REQ_TRANSFER:
		return r->transfer_to == KEEL_NODE_NONE ? KEEL_ERANGE : 0;
	case CLIENT_REQ_KV:
		break;
	default:
		return KEEL_ERANGE;
	}
	if (r->consistency != KV_LINEARIZABLE && r->consistency != KV_STALE)
		return KEEL_ERANGE;
	return codec_command_validate(&r->cmd);
}

static int node_status_validate(const struct client_node_status *s)
{
	if (s->role < RAFT_FOLLOWER || s->role > RAFT_LEADER)
		return KEEL_ERANGE;
	/* A node that has not joined yet has no membership. */
	if (s->membership.member_count == 0)
		return 0;
	return codec_membership_validate(&s->membership);
}

int codec_response_validate(const struct client_response *r)
{
	if (r->status > CLIENT_STATUS_MAX)
		return KEEL_ERANGE;
	if (r->value_bytes > KEEL_VALUE_BYTES_MAX)
		return KEEL_ETOOBIG;
	if (r->value_bytes > 0 && r->value == NULL)
		return KEEL_ERANGE;
	if (!codec_cstring_ok(r->leader_addr, sizeof(r->leader_addr)) ||
	    !codec_cstring_ok(r->message, sizeof(r->message)))
		return KEEL_ETOOBIG;
	if (r->has_node_status)
		return node_status_validate(&r->node_status);
	return 0;
}
