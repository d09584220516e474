/*
 * test_codec.c: round trips of every message type and field, frame errors
 * (each with its own code), and the streaming decoder under every chunking.
 * The per-field validation rules are in test_codec_rules.c.
 */
#include "harness.h"

#include <stdlib.h>

#include "../core/err.h"
#include "codec_samples.h"

#define BUF_BYTES (64u * 1024u)

static uint8_t buf[BUF_BYTES];

/* ---- comparisons ------------------------------------------------------------ */

static void membership_eq(const struct membership *a, const struct membership *b)
{
	ASSERT_EQ(a->member_count, b->member_count);
	ASSERT_U64_EQ(a->next_id, b->next_id);
	for (uint32_t i = 0; i < a->member_count; i++) {
		ASSERT_U64_EQ(a->members[i].id, b->members[i].id);
		ASSERT_EQ(a->members[i].role, b->members[i].role);
		ASSERT_STR_EQ(a->members[i].peer_addr, b->members[i].peer_addr);
		ASSERT_STR_EQ(a->members[i].client_addr, b->members[i].client_addr);
	}
}

static void bytes_eq(const uint8_t *a, uint32_t an, const uint8_t *b, uint32_t bn)
{
	ASSERT_EQ(an, bn);
	if (an > 0)
		ASSERT_MEM_EQ(a, b, an);
}

static void command_eq(const struct kv_command *a, const struct kv_command *b)
{
	ASSERT_U64_EQ(a->client_id, b->client_id);
	ASSERT_U64_EQ(a->seq, b->seq);
	ASSERT_EQ(a->op, b->op);
	bytes_eq(a->key, a->key_bytes, b->key, b->key_bytes);
	bytes_eq(a->value, a->value_bytes, b->value, b->value_bytes);
	ASSERT_EQ(a->cas_absent, b->cas_absent);
	bytes_eq(a->expected, a->expected_bytes, b->expected, b->expected_bytes);
}

static void msg_eq(const struct msg *a, const struct msg *b)
{
	ASSERT_EQ(a->type, b->type);
	ASSERT_U64_EQ(a->from, b->from);
	ASSERT_U64_EQ(a->to, b->to);
	ASSERT_U64_EQ(a->term, b->term);
	switch (a->type) {
	case MSG_PREVOTE:
	case MSG_VOTE:
		ASSERT_U64_EQ(a->u.vote.last_log_index, b->u.vote.last_log_index);
		ASSERT_U64_EQ(a->u.vote.last_log_term, b->u.vote.last_log_term);
		ASSERT_EQ(a->u.vote.transfer, b->u.vote.transfer);
		break;
	case MSG_PREVOTE_RESP:
	case MSG_VOTE_RESP:
		ASSERT_EQ(a->u.vote_resp.granted, b->u.vote_resp.granted);
		break;
	case MSG_APPEND:
		ASSERT_U64_EQ(a->u.append.prev_index, b->u.append.prev_index);
		ASSERT_U64_EQ(a->u.append.prev_term, b->u.append.prev_term);
		ASSERT_U64_EQ(a->u.append.commit, b->u.append.commit);
		ASSERT_U64_EQ(a->u.append.ctx, b->u.append.ctx);
		ASSERT_EQ(a->u.append.entry_count, b->u.append.entry_count);
		for (uint32_t i = 0; i < a->u.append.entry_count; i++) {
			const struct entry *x = &a->u.append.entries[i];
			const struct entry *y = &b->u.append.entries[i];
			ASSERT_U64_EQ(x->term, y->term);
			ASSERT_U64_EQ(x->index, y->index);
			ASSERT_EQ(x->type, y->type);
			bytes_eq(x->data, x->data_bytes, y->data, y->data_bytes);
		}
		break;
	case MSG_APPEND_RESP:
		ASSERT_EQ(a->u.append_resp.success, b->u.append_resp.success);
		ASSERT_U64_EQ(a->u.append_resp.match_index, b->u.append_resp.match_index);
		ASSERT_U64_EQ(a->u.append_resp.reject_index, b->u.append_resp.reject_index);
		ASSERT_U64_EQ(a->u.append_resp.hint_index, b->u.append_resp.hint_index);
		ASSERT_U64_EQ(a->u.append_resp.hint_term, b->u.append_resp.hint_term);
		ASSERT_U64_EQ(a->u.append_resp.ctx, b->u.append_resp.ctx);
		break;
	case MSG_SNAPSHOT:
		ASSERT_U64_EQ(a->u.snapshot.last_index, b->u.snapshot.last_index);
		ASSERT_U64_EQ(a->u.snapshot.last_term, b->u.snapshot.last_term);
		membership_eq(&a->u.snapshot.membership, &b->u.snapshot.membership);
		ASSERT_U64_EQ(a->u.snapshot.offset, b->u.snapshot.offset);
		bytes_eq(a->u.snapshot.chunk, a->u.snapshot.chunk_bytes,
			 b->u.snapshot.chunk, b->u.snapshot.chunk_bytes);
		ASSERT_EQ(a->u.snapshot.done, b->u.snapshot.done);
		break;
	case MSG_SNAPSHOT_RESP:
		ASSERT_U64_EQ(a->u.snapshot_resp.last_index, b->u.snapshot_resp.last_index);
		ASSERT_U64_EQ(a->u.snapshot_resp.next_offset, b->u.snapshot_resp.next_offset);
		ASSERT_EQ(a->u.snapshot_resp.done, b->u.snapshot_resp.done);
		ASSERT_EQ(a->u.snapshot_resp.rejected, b->u.snapshot_resp.rejected);
		break;
	case MSG_TIMEOUT_NOW:
		break;
	default:
		ASSERT_TRUE(!"unknown type");
	}
}

/* Encode m as a frame, check the frame, decode it and compare. */
static void msg_roundtrip(const struct msg *m)
{
	size_t want = codec_msg_encoded_bytes(m);
	ASSERT_TRUE(want <= BUF_BYTES);
	int n = codec_msg_encode(m, buf, BUF_BYTES);
	ASSERT_EQ(n, (int64_t)want);
	ASSERT_EQ(codec_msg_encode(m, buf, want - 1), KEEL_ETOOBIG);
	ASSERT_EQ(codec_msg_encode(m, buf, BUF_BYTES), n);

	uint32_t type, payload_bytes;
	const uint8_t *payload;
	ASSERT_EQ(codec_frame_decode(buf, (size_t)n, &type, &payload, &payload_bytes), 0);
	ASSERT_EQ(type, FRAME_PEER);
	ASSERT_EQ(payload_bytes + CODEC_FRAME_OVERHEAD, n);

	struct msg out;
	struct codec_decoded d;
	ASSERT_EQ(codec_msg_decode(payload, payload_bytes, NULL, &out, &d), 0);
	msg_eq(m, &out);
	ASSERT_EQ(codec_msg_validate(&out), 0);
	codec_decoded_free(&d);
}

/* ---- round trips ------------------------------------------------------------ */

TEST(roundtrip_simple_messages)
{
	static const uint32_t types[] = { MSG_PREVOTE, MSG_PREVOTE_RESP, MSG_VOTE,
					  MSG_VOTE_RESP, MSG_APPEND_RESP,
					  MSG_SNAPSHOT_RESP, MSG_TIMEOUT_NOW };
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		struct msg m;
		sample_simple_msg(&m, types[i]);
		msg_roundtrip(&m);
	}
}

TEST(roundtrip_vote_field_variants)
{
	struct msg m;
	sample_simple_msg(&m, MSG_PREVOTE);
	m.u.vote.last_log_index = 0; /* empty log */
	m.u.vote.last_log_term = 0;
	m.u.vote.transfer = true;
	msg_roundtrip(&m);
	sample_simple_msg(&m, MSG_VOTE_RESP);
	m.u.vote_resp.granted = false;
	m.term = 0; /* a fresh node answers in term 0 */
	msg_roundtrip(&m);
	sample_simple_msg(&m, MSG_VOTE);
	m.from = UINT64_MAX;
	m.term = UINT64_MAX;
	m.u.vote.last_log_index = UINT64_MAX;
	m.u.vote.last_log_term = UINT64_MAX;
	msg_roundtrip(&m);
}

TEST(roundtrip_append_with_entries)
{
	struct msg m;
	struct entry entries[3];
	uint8_t cfg[1024];
	sample_append(&m, entries, cfg, sizeof(cfg));
	msg_roundtrip(&m);
}

TEST(roundtrip_heartbeat_and_first_append)
{
	struct msg m;
	sample_msg_header(&m, MSG_APPEND);
	m.u.append.commit = 17;
	m.u.append.ctx = 9;
	msg_roundtrip(&m); /* prev 0/0, no entries */

	struct entry e = { .term = 7, .index = 1, .type = ENTRY_NOOP };
	m.u.append.entry_count = 1;
	m.u.append.entries = &e;
	msg_roundtrip(&m);
}

TEST(roundtrip_append_at_limits)
{
	static struct entry entries[KEEL_APPEND_ENTRIES_MAX];
	static uint8_t data[KEEL_VALUE_BYTES_MAX];
	struct msg m;
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 31);
	sample_msg_header(&m, MSG_APPEND);
	m.term = 1000;
	m.u.append.prev_index = UINT64_MAX - KEEL_APPEND_ENTRIES_MAX;
	m.u.append.prev_term = 3;
	m.u.append.entry_count = KEEL_APPEND_ENTRIES_MAX;
	m.u.append.entries = entries;
	for (uint32_t i = 0; i < KEEL_APPEND_ENTRIES_MAX; i++) {
		entries[i].term = 3 + i / 100;
		entries[i].index = m.u.append.prev_index + 1 + i;
		entries[i].type = ENTRY_COMMAND;
		entries[i].data = data;
		entries[i].data_bytes = i % 7 == 0 ? 0 : (uint32_t)(i * 13) % 200;
	}
	entries[5].data_bytes = sizeof(data);
	static uint8_t big[2u * 1024u * 1024u];
	size_t want = codec_msg_encoded_bytes(&m);
	ASSERT_TRUE(want <= sizeof(big));
	int n = codec_msg_encode(&m, big, sizeof(big));
	ASSERT_EQ(n, (int64_t)want);
	uint32_t type, pb;
	const uint8_t *p;
	ASSERT_EQ(codec_frame_decode(big, (size_t)n, &type, &p, &pb), 0);
	struct msg out;
	struct codec_decoded d;
	ASSERT_EQ(codec_msg_decode(p, pb, NULL, &out, &d), 0);
	msg_eq(&m, &out);
	codec_decoded_free(&d);
}

TEST(roundtrip_append_resp_variants)
{
	struct msg m;
	sample_simple_msg(&m, MSG_APPEND_RESP);
	msg_roundtrip(&m);
	m.u.append_resp = (struct msg_append_resp){ .success = true,
						    .match_index = 88, .ctx = 3 };
	msg_roundtrip(&m);
}

TEST(roundtrip_snapshot)
{
	struct msg m;
	sample_snapshot(&m);
	msg_roundtrip(&m);
	m.u.snapshot.done = false;
	m.u.snapshot.offset = 0;
	m.u.snapshot.chunk_bytes = 0;
	m.u.snapshot.chunk = NULL;
	msg_roundtrip(&m);
}

TEST(roundtrip_membership)
{
	struct membership m, out;
	sample_membership(&m);
	size_t want = codec_membership_encoded_bytes(&m);
	int n = codec_membership_encode(&m, buf, BUF_BYTES);
	ASSERT_EQ(n, (int64_t)want);
	ASSERT_EQ(codec_membership_encode(&m, buf, want - 1), KEEL_ETOOBIG);
	ASSERT_EQ(codec_membership_decode(buf, (uint32_t)n, &out), 0);
	membership_eq(&m, &out);

	/* next_id unset (a membership from before the field). */
	m.next_id = 0;
	n = codec_membership_encode(&m, buf, BUF_BYTES);
	ASSERT_EQ(codec_membership_decode(buf, (uint32_t)n, &out), 0);
	membership_eq(&m, &out);

	/* Full, with longest addresses and the largest ids. */
	m.member_count = KEEL_MEMBERS_MAX;
	for (uint32_t i = 0; i < KEEL_MEMBERS_MAX; i++) {
		m.members[i].id = UINT64_MAX - i;
		m.members[i].role = i % 2 ? MEMBER_LEARNER : MEMBER_VOTER;
		memset(m.members[i].peer_addr, 'a' + (int)i, KEEL_ADDR_BYTES_MAX - 1);
		m.members[i].peer_addr[KEEL_ADDR_BYTES_MAX - 1] = 0;
		m.members[i].client_addr[0] = 0;
	}
	m.next_id = 0; /* no id above UINT64_MAX */
	n = codec_membership_encode(&m, buf, BUF_BYTES);
	ASSERT_GT(n, 0);
	ASSERT_EQ(codec_membership_decode(buf, (uint32_t)n, &out), 0);
	membership_eq(&m, &out);
}

TEST(roundtrip_batch)
{
	struct kv_command cmds[5], out[KEEL_BATCH_COMMANDS_MAX];
	sample_command(&cmds[0], KV_PUT);
	sample_command(&cmds[1], KV_DEL);
	sample_command(&cmds[2], KV_CAS);
	sample_command(&cmds[3], KV_CAS);
	cmds[3].cas_absent = true;
	cmds[3].expected = NULL;
	cmds[3].expected_bytes = 0;
	sample_command(&cmds[4], KV_APPEND);
	cmds[4].client_id = UINT64_MAX;
	cmds[4].seq = UINT64_MAX;
	size_t want = codec_batch_encoded_bytes(cmds, 5);
	int n = codec_batch_encode(cmds, 5, buf, BUF_BYTES);
	ASSERT_EQ(n, (int64_t)want);
	ASSERT_EQ(codec_batch_encode(cmds, 5, buf, want - 1), KEEL_ETOOBIG);
	uint32_t count;
	struct codec_decoded d;
	ASSERT_EQ(codec_batch_decode(buf, (uint32_t)n, NULL, out, &count, &d), 0);
	ASSERT_EQ(count, 5);
	for (uint32_t i = 0; i < count; i++)
		command_eq(&cmds[i], &out[i]);
	codec_decoded_free(&d);
}

TEST(roundtrip_batch_full)
{
	static struct kv_command cmds[KEEL_BATCH_COMMANDS_MAX];
	static struct kv_command out[KEEL_BATCH_COMMANDS_MAX];
	static uint8_t key[KEEL_KEY_BYTES_MAX];
	memset(key, 'k', sizeof(key));
	for (uint32_t i = 0; i < KEEL_BATCH_COMMANDS_MAX; i++) {
		sample_command(&cmds[i], KV_PUT);
		cmds[i].seq = i + 1;
		cmds[i].key = key;
		cmds[i].key_bytes = 1 + i * 4;
	}
	static uint8_t big[1024u * 1024u];
	int n = codec_batch_encode(cmds, KEEL_BATCH_COMMANDS_MAX, big, sizeof(big));
	ASSERT_GT(n, 0);
	uint32_t count;
	struct codec_decoded d;
	ASSERT_EQ(codec_batch_decode(big, (uint32_t)n, NULL, out, &count, &d), 0);
	ASSERT_EQ(count, KEEL_BATCH_COMMANDS_MAX);
	for (uint32_t i = 0; i < count; i++)
		command_eq(&cmds[i], &out[i]);
	codec_decoded_free(&d);
}

TEST(roundtrip_hello)
{
	struct codec_hello h = { .protocol_version = CODEC_VERSION,
				 .cluster_id = 0xdeadbeefcafef00dull,
				 .node_id = 3, .role = HELLO_PEER }, out;
	int n = codec_hello_encode(&h, buf, BUF_BYTES);
	ASSERT_EQ(n, (int64_t)codec_hello_encoded_bytes(&h));
	uint32_t type, pb;
	const uint8_t *p;
	ASSERT_EQ(codec_frame_decode(buf, (size_t)n, &type, &p, &pb), 0);
	ASSERT_EQ(type, FRAME_HELLO);
	ASSERT_EQ(codec_hello_decode(p, pb, &out), 0);
	ASSERT_EQ(out.protocol_version, CODEC_VERSION);
	ASSERT_U64_EQ(out.cluster_id, h.cluster_id);
	ASSERT_U64_EQ(out.node_id, 3);
	ASSERT_EQ(out.role, HELLO_PEER);

	h = (struct codec_hello){ .protocol_version = CODEC_VERSION, .role = HELLO_CLIENT };
	n = codec_hello_encode(&h, buf, BUF_BYTES);
	ASSERT_EQ(codec_frame_decode(buf, (size_t)n, &type, &p, &pb), 0);
	ASSERT_EQ(codec_hello_decode(p, pb, &out), 0);
	ASSERT_U64_EQ(out.cluster_id, 0);
	ASSERT_U64_EQ(out.node_id, 0);
	ASSERT_EQ(out.role, HELLO_CLIENT);
}

static void request_roundtrip(const struct client_request *r)
{
	int n = codec_request_encode(r, buf, BUF_BYTES);
	ASSERT_EQ(n, (int64_t)codec_request_encoded_bytes(r));
	uint32_t type, pb;
	const uint8_t *p;
	ASSERT_EQ(codec_frame_decode(buf, (size_t)n, &type, &p, &pb), 0);
	ASSERT_EQ(type, FRAME_CLIENT_REQUEST);
	struct client_request out;
	struct codec_decoded d;
	ASSERT_EQ(codec_request_decode(p, pb, NULL, &out, &d), 0);
	ASSERT_U64_EQ(out.request_id, r->request_id);
	ASSERT_EQ(out.kind, r->kind);
	ASSERT_EQ(out.consistency, r->consistency);
	ASSERT_U64_EQ(out.transfer_to, r->transfer_to);
	if (r->kind == CLIENT_REQ_KV)
		command_eq(&r->cmd, &out.cmd);
	else
		ASSERT_EQ(out.cmd.op, 0);
	ASSERT_EQ(out.change.kind, r->kind == CLIENT_REQ_MEMBER ? r->change.kind : 0);
	if (r->kind == CLIENT_REQ_MEMBER) {
		ASSERT_U64_EQ(out.change.id, r->change.id);
		ASSERT_STR_EQ(out.change.peer_addr, r->change.peer_addr);
		ASSERT_STR_EQ(out.change.client_addr, r->change.client_addr);
	}
	codec_decoded_free(&d);
}

TEST(roundtrip_requests)
{
	static const uint32_t ops[] = { KV_GET, KV_PUT, KV_DEL, KV_CAS, KV_APPEND };
	struct client_request r;
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		sample_request(&r, ops[i]);
		request_roundtrip(&r);
	}
	sample_request(&r, KV_GET);
	r.cmd.client_id = 0; /* reads need no session */
	r.cmd.seq = 0;
	r.consistency = KV_LINEARIZABLE;
	request_roundtrip(&r);
	memset(&r, 0, sizeof(r));
	r.request_id = UINT64_MAX;
	r.kind = CLIENT_REQ_STATUS;
	request_roundtrip(&r);
}

TEST(roundtrip_member_and_transfer_requests)
{
	static const uint32_t kinds[] = { MEMBER_ADD_LEARNER, MEMBER_PROMOTE,
					  MEMBER_REMOVE };
	struct client_request r;
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		sample_member_request(&r, kinds[i]);
		request_roundtrip(&r);
	}
	/* An add with its id chosen, longest addresses. */
	sample_member_request(&r, MEMBER_ADD_LEARNER);
	r.change.id = UINT64_MAX;
	memset(r.change.peer_addr, 'p', KEEL_ADDR_BYTES_MAX - 1);
	memset(r.change.client_addr, 'c', KEEL_ADDR_BYTES_MAX - 1);
	request_roundtrip(&r);
	/* A remove may carry no addresses at all. */
	sample_member_request(&r, MEMBER_REMOVE);
	r.change.id = 1;
	request_roundtrip(&r);
	sample_transfer_request(&r);
	request_roundtrip(&r);
	r.transfer_to = UINT64_MAX;
	request_roundtrip(&r);
}

static void response_roundtrip(const struct client_response *r)
{
	int n = codec_response_encode(r, buf, BUF_BYTES);
	ASSERT_EQ(n, (int64_t)codec_response_encoded_bytes(r));
	uint32_t type, pb;
	const uint8_t *p;
	ASSERT_EQ(codec_frame_decode(buf, (size_t)n, &type, &p, &pb), 0);
	ASSERT_EQ(type, FRAME_CLIENT_RESPONSE);
	struct client_response out;
	struct codec_decoded d;
	ASSERT_EQ(codec_response_decode(p, pb, NULL, &out, &d), 0);
	ASSERT_U64_EQ(out.request_id, r->request_id);
	ASSERT_EQ(out.status, r->status);
	ASSERT_EQ(out.stale, r->stale);
	bytes_eq(out.value, out.value_bytes, r->value, r->value_bytes);
	ASSERT_U64_EQ(out.leader_id, r->leader_id);
	ASSERT_U64_EQ(out.member_id, r->member_id);
	ASSERT_U64_EQ(out.cluster_id, r->cluster_id);
	ASSERT_STR_EQ(out.leader_addr, r->leader_addr);
	ASSERT_STR_EQ(out.message, r->message);
	ASSERT_EQ(out.has_node_status, r->has_node_status);
	if (r->has_node_status) {
		const struct client_node_status *a = &r->node_status, *b = &out.node_status;
		ASSERT_U64_EQ(a->id, b->id);
		ASSERT_EQ(a->role, b->role);
		ASSERT_U64_EQ(a->term, b->term);
		ASSERT_U64_EQ(a->leader, b->leader);
		ASSERT_U64_EQ(a->commit_index, b->commit_index);
		ASSERT_U64_EQ(a->applied_index, b->applied_index);
		ASSERT_U64_EQ(a->last_index, b->last_index);
		membership_eq(&a->membership, &b->membership);
	}
	codec_decoded_free(&d);
}

TEST(roundtrip_responses)
{
	struct client_response r;
	sample_response(&r, true);
	response_roundtrip(&r);
	sample_response(&r, false);
	response_roundtrip(&r);
	/* Every status, an empty value, longest strings. */
	for (uint32_t s = 0; s <= CLIENT_STATUS_MAX; s++) {
		sample_response(&r, s % 2 == 0);
		r.status = s;
		r.value = NULL;
		r.value_bytes = 0;
		memset(r.leader_addr, 'x', sizeof(r.leader_addr) - 1);
		memset(r.message, 'y', sizeof(r.message) - 1);
		r.node_status.membership.member_count = 0; /* not joined yet */
		r.member_id = s;
		r.cluster_id = UINT64_MAX - s;
		response_roundtrip(&r);
	}
}

/* ---- frames ------------------------------------------------------------------- */

static int hello_frame(void)
{
	struct codec_hello h = { .protocol_version = CODEC_VERSION,
				 .cluster_id = 1, .node_id = 1, .role = HELLO_PEER };
	return codec_hello_encode(&h, buf, BUF_BYTES);
}

static int decode_buf(size_t n)
{
	uint32_t type, pb;
	const uint8_t *p;
	return codec_frame_decode(buf, n, &type, &p, &pb);
}

TEST(frame_layout_matches_codec_h)
{
	static const uint8_t payload[] = { 0xaa, 0xbb, 0xcc };
	int n = codec_frame_encode(FRAME_CLIENT_REQUEST, payload, 3, buf, BUF_BYTES);
	ASSERT_EQ(n, 3 + CODEC_FRAME_OVERHEAD);
	ASSERT_EQ((size_t)n, codec_frame_bytes(3));
	static const uint8_t header[] = { 'K', 'E', 'E', 'L', CODEC_VERSION,
					  FRAME_CLIENT_REQUEST, 0, 0, 0, 0, 0, 3 };
	ASSERT_MEM_EQ(buf, header, sizeof(header));
	ASSERT_MEM_EQ(buf + 12, payload, 3);
	uint32_t type, pb;
	const uint8_t *p;
	ASSERT_EQ(codec_frame_decode(buf, (size_t)n, &type, &p, &pb), 0);
	ASSERT_EQ(type, FRAME_CLIENT_REQUEST);
	ASSERT_EQ(pb, 3);
	ASSERT_TRUE(p == buf + 12);
	/* An empty payload is a valid frame. */
	n = codec_frame_encode(FRAME_PEER, NULL, 0, buf, BUF_BYTES);
	ASSERT_EQ(n, CODEC_FRAME_OVERHEAD);
	ASSERT_EQ(decode_buf((size_t)n), 0);
}

TEST(frame_truncated)
{
	int n = hello_frame();
	ASSERT_GT(n, 0);
	for (int i = 0; i < n; i++)
		ASSERT_EQ(decode_buf((size_t)i), KEEL_ETRUNCATED);
	ASSERT_EQ(decode_buf((size_t)n), 0);
}

TEST(frame_truncated_header_reads_nothing_beyond)
{
	/* The bytes past n are garbage the header checks would reject: a
	 * decoder that looked at them would answer something else. */
	int n = hello_frame();
	ASSERT_GT(n, 0);
	for (size_t i = 0; i < CODEC_HEADER_BYTES; i++) {
		hello_frame();
		memset(buf + i, 0xff, CODEC_HEADER_BYTES - i);
		ASSERT_EQ(decode_buf(i), KEEL_ETRUNCATED);
	}
}

TEST(decode_refuses_payload_over_frame_limit)
{
	uint8_t *big = calloc(1, KEEL_FRAME_BYTES_MAX + 1);
	ASSERT_TRUE(big != NULL);
	struct msg m;
	struct client_request rq;
	static struct client_response rs;
	struct codec_hello h;
	struct codec_decoded d;
	ASSERT_EQ(codec_msg_decode(big, KEEL_FRAME_BYTES_MAX + 1, NULL, &m, &d), KEEL_ETOOBIG);
	ASSERT_EQ(codec_request_decode(big, KEEL_FRAME_BYTES_MAX + 1, NULL, &rq, &d), KEEL_ETOOBIG);
	ASSERT_EQ(codec_response_decode(big, KEEL_FRAME_BYTES_MAX + 1, NULL, &rs, &d), KEEL_ETOOBIG);
	ASSERT_EQ(codec_hello_decode(big, KEEL_FRAME_BYTES_MAX + 1, &h), KEEL_ETOOBIG);
	/* Zero bytes are not a message: at the limit the payload is malformed. */
	ASSERT_EQ(codec_hello_decode(big, KEEL_FRAME_BYTES_MAX, &h), KEEL_EMALFORMED);
	free(big);
}

TEST(frame_trailing_bytes)
{
	int n = hello_frame();
	ASSERT_EQ(decode_buf((size_t)n + 1), KEEL_EMALFORMED);
}

TEST(frame_oversized)
{
	int n = hello_frame();
	/* A length over the limit is refused from the header alone. */
	uint32_t len = KEEL_FRAME_BYTES_MAX + 1;
	buf[8] = (uint8_t)(len >> 24);
	buf[9] = (uint8_t)(len >> 16);
	buf[10] = (uint8_t)(len >> 8);
	buf[11] = (uint8_t)len;
	ASSERT_EQ(decode_buf((size_t)n), KEEL_ETOOBIG);
	ASSERT_EQ(decode_buf(CODEC_HEADER_BYTES), KEEL_ETOOBIG);
	buf[8] = buf[9] = buf[10] = buf[11] = 0xff;
	ASSERT_EQ(decode_buf((size_t)n), KEEL_ETOOBIG);
	/* Encoding refuses an oversized payload or a small buffer. */
	ASSERT_EQ(codec_frame_encode(FRAME_PEER, buf, KEEL_FRAME_BYTES_MAX + 1,
				     buf, SIZE_MAX), KEEL_ETOOBIG);
	ASSERT_EQ(codec_frame_encode(FRAME_PEER, buf + 100, 10, buf, 29), KEEL_ETOOBIG);
	ASSERT_EQ(codec_frame_encode(FRAME_PEER, buf + 100, 10, buf, 30), 30);
	struct codec_hello h = { .protocol_version = CODEC_VERSION, .role = HELLO_CLIENT };
	ASSERT_EQ(codec_hello_encode(&h, buf, CODEC_FRAME_OVERHEAD - 1), KEEL_ETOOBIG);
}

TEST(frame_bad_checksum)
{
	int n = hello_frame();
	/* Any single flipped bit in payload or trailer is caught. */
	for (int i = CODEC_HEADER_BYTES; i < n; i++) {
		for (int bit = 0; bit < 8; bit++) {
			buf[i] ^= (uint8_t)(1u << bit);
			ASSERT_EQ(decode_buf((size_t)n), KEEL_ECHECKSUM);
			buf[i] ^= (uint8_t)(1u << bit);
		}
	}
	ASSERT_EQ(decode_buf((size_t)n), 0);
}

TEST(frame_bad_magic)
{
	int n = hello_frame();
	for (int i = 0; i < 4; i++) {
		buf[i] ^= 0x20;
		ASSERT_EQ(decode_buf((size_t)n), KEEL_EBADMAGIC);
		ASSERT_EQ(decode_buf(CODEC_HEADER_BYTES), KEEL_EBADMAGIC);
		buf[i] ^= 0x20;
	}
}

TEST(frame_bad_version)
{
	int n = hello_frame();
	buf[4] = 0;
	ASSERT_EQ(decode_buf((size_t)n), KEEL_EBADVERSION);
	buf[4] = CODEC_VERSION + 1;
	ASSERT_EQ(decode_buf((size_t)n), KEEL_EBADVERSION);
}

TEST(frame_unknown_type)
{
	int n = hello_frame();
	buf[5] = 0;
	ASSERT_EQ(decode_buf((size_t)n), KEEL_EBADTYPE);
	buf[5] = FRAME_TYPE_MAX + 1;
	ASSERT_EQ(decode_buf((size_t)n), KEEL_EBADTYPE);
	buf[5] = 0xff;
	ASSERT_EQ(decode_buf((size_t)n), KEEL_EBADTYPE);
}

TEST(frame_nonzero_reserved)
{
	int n = hello_frame();
	buf[6] = 1;
	ASSERT_EQ(decode_buf((size_t)n), KEEL_EMALFORMED);
	buf[6] = 0;
	buf[7] = 0x80;
	ASSERT_EQ(decode_buf((size_t)n), KEEL_EMALFORMED);
}

/* ---- streaming decoder ------------------------------------------------------- */

#define STREAM_FRAMES 12

struct stream_case {
	uint8_t bytes[8192];
	size_t n;
	size_t frame_end[STREAM_FRAMES];
	uint32_t frame_type[STREAM_FRAMES];
	uint32_t count;
};

/* Frames of every kind, back to back. */
static void stream_case_build(struct stream_case *c)
{
	struct msg m;
	struct entry entries[3];
	uint8_t cfg[1024];
	struct client_request rq;
	struct client_response rs;
	struct codec_hello h = { .protocol_version = CODEC_VERSION,
				 .cluster_id = 5, .node_id = 1, .role = HELLO_PEER };
	int n;

	memset(c, 0, sizeof(*c));
#define ADD(expr, ftype)                                                      \
	do {                                                                  \
		n = (expr);                                                   \
		ASSERT_GT(n, 0);                                              \
		c->n += (size_t)n;                                            \
		c->frame_end[c->count] = c->n;                                \
		c->frame_type[c->count++] = (ftype);                          \
	} while (0)
	ADD(codec_hello_encode(&h, c->bytes + c->n, sizeof(c->bytes) - c->n), FRAME_HELLO);
	sample_append(&m, entries, cfg, sizeof(cfg));
	ADD(codec_msg_encode(&m, c->bytes + c->n, sizeof(c->bytes) - c->n), FRAME_PEER);
	ADD(codec_frame_encode(FRAME_PEER, NULL, 0, c->bytes + c->n,
			       sizeof(c->bytes) - c->n), FRAME_PEER);
	sample_snapshot(&m);
	ADD(codec_msg_encode(&m, c->bytes + c->n, sizeof(c->bytes) - c->n), FRAME_PEER);
	sample_simple_msg(&m, MSG_VOTE);
	ADD(codec_msg_encode(&m, c->bytes + c->n, sizeof(c->bytes) - c->n), FRAME_PEER);
	sample_request(&rq, KV_CAS);
	ADD(codec_request_encode(&rq, c->bytes + c->n, sizeof(c->bytes) - c->n),
	    FRAME_CLIENT_REQUEST);
	sample_response(&rs, true);
	ADD(codec_response_encode(&rs, c->bytes + c->n, sizeof(c->bytes) - c->n),
	    FRAME_CLIENT_RESPONSE);
	sample_simple_msg(&m, MSG_TIMEOUT_NOW);
	ADD(codec_msg_encode(&m, c->bytes + c->n, sizeof(c->bytes) - c->n), FRAME_PEER);
#undef ADD
}

/* A small deterministic PRNG (xorshift64*) for chunk sizes. */
static uint64_t prng_next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dull;
}

/* Feed c in chunks (chunk 0: random sizes from seed) and check every frame
 * comes out whole, in order, at the right byte. */
static void stream_feed_case(const struct stream_case *c, size_t chunk, uint64_t seed)
{
	struct codec_stream s;
	codec_stream_init(&s, NULL);
	size_t off = 0;
	uint32_t got = 0;
	uint64_t st = seed | 1;
	while (off < c->n) {
		size_t len = chunk ? chunk : 1 + prng_next(&st) % 300;
		if (len > c->n - off)
			len = c->n - off;
		size_t pos = 0;
		while (pos < len) {
			size_t used;
			int rc = codec_stream_feed(&s, c->bytes + off + pos, len - pos, &used);
			ASSERT_TRUE(rc == 0 || rc == 1);
			pos += used;
			if (rc == 0) {
				ASSERT_EQ(pos, len);
				break;
			}
			ASSERT_TRUE(got < c->count);
			ASSERT_EQ(off + pos, c->frame_end[got]);
			ASSERT_EQ(s.frame_type, c->frame_type[got]);
			size_t start = got == 0 ? 0 : c->frame_end[got - 1];
			ASSERT_EQ(s.payload_bytes + CODEC_FRAME_OVERHEAD,
				  c->frame_end[got] - start);
			if (s.payload_bytes > 0)
				ASSERT_MEM_EQ(s.payload, c->bytes + start + CODEC_HEADER_BYTES,
					      s.payload_bytes);
			got++;
		}
		off += len;
	}
	ASSERT_EQ(got, c->count);
	codec_stream_close(&s);
}

TEST(stream_one_byte_at_a_time)
{
	static struct stream_case c;
	stream_case_build(&c);
	stream_feed_case(&c, 1, 0);
}

TEST(stream_whole_and_fixed_chunks)
{
	static struct stream_case c;
	stream_case_build(&c);
	stream_feed_case(&c, c.n, 0);
	for (size_t chunk = 2; chunk < 64; chunk++)
		stream_feed_case(&c, chunk, 0);
}

TEST(stream_random_chunkings)
{
	static struct stream_case c;
	stream_case_build(&c);
	for (uint64_t seed = 1; seed <= 200; seed++)
		stream_feed_case(&c, 0, seed);
}

/* Feed bytes whole; return the first error, or 0. */
static int stream_first_error(const uint8_t *p, size_t n, size_t chunk)
{
	struct codec_stream s;
	codec_stream_init(&s, NULL);
	size_t off = 0;
	int rc = 0;
	while (off < n) {
		size_t len = n - off < chunk ? n - off : chunk;
		size_t used;
		rc = codec_stream_feed(&s, p + off, len, &used);
		if (rc < 0)
			break;
		off += used;
	}
	if (rc < 0) {
		/* Sticky: later feeds fail the same way and consume nothing. */
		size_t used = 99;
		ASSERT_EQ(codec_stream_feed(&s, p, n, &used), rc);
		ASSERT_EQ(used, 0);
		ASSERT_EQ(s.error, rc);
	}
	codec_stream_close(&s);
	return rc < 0 ? rc : 0;
}

TEST(stream_rejects_each_bad_frame)
{
	static const struct { int at; uint8_t xor; int want; } cases[] = {
		{ 0, 0x01, KEEL_EBADMAGIC },   { 3, 0x80, KEEL_EBADMAGIC },
		{ 4, 0x03, KEEL_EBADVERSION }, { 5, 0x07, KEEL_EBADTYPE },
		{ 6, 0x01, KEEL_EMALFORMED },  { 7, 0x10, KEEL_EMALFORMED },
		{ 8, 0x01, KEEL_ETOOBIG },     { 14, 0x01, KEEL_ECHECKSUM },
		{ -1, 0x01, KEEL_ECHECKSUM }, /* last trailer byte */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (size_t chunk = 1; chunk <= 64; chunk *= 4) {
			int n = hello_frame();
			int at = cases[i].at < 0 ? n - 1 : cases[i].at;
			buf[at] ^= cases[i].xor;
			ASSERT_EQ(stream_first_error(buf, (size_t)n, chunk), cases[i].want);
		}
	}
	int n = hello_frame();
	ASSERT_EQ(stream_first_error(buf, (size_t)n, 1), 0);
}

TEST(stream_memory_follows_bytes_received)
{
	/* A header claiming the largest frame, then a trickle of bytes: the
	 * buffer grows with what arrived, not with what was claimed. */
	uint8_t h[CODEC_HEADER_BYTES + 10] = { 'K', 'E', 'E', 'L', CODEC_VERSION, FRAME_PEER };
	uint32_t len = KEEL_FRAME_BYTES_MAX;
	h[8] = (uint8_t)(len >> 24);
	h[9] = (uint8_t)(len >> 16);
	h[10] = (uint8_t)(len >> 8);
	h[11] = (uint8_t)len;
	struct codec_stream s;
	codec_stream_init(&s, NULL);
	size_t used;
	ASSERT_EQ(codec_stream_feed(&s, h, sizeof(h), &used), 0);
	ASSERT_EQ(used, sizeof(h));
	ASSERT_LE(s.buf_cap, 4096);
	codec_stream_close(&s);

	/* After a large frame, a small one does not keep the large buffer. */
	static uint8_t big[300u * 1024u];
	static uint8_t frames[300u * 1024u + 64u];
	int n1 = codec_frame_encode(FRAME_PEER, big, 200u * 1024u, frames, sizeof(frames));
	ASSERT_GT(n1, 0);
	int n2 = codec_frame_encode(FRAME_HELLO, big, 3, frames + n1, sizeof(frames) - (size_t)n1);
	ASSERT_GT(n2, 0);
	codec_stream_init(&s, NULL);
	ASSERT_EQ(codec_stream_feed(&s, frames, (size_t)n1 + (size_t)n2, &used), 1);
	ASSERT_EQ(used, n1);
	ASSERT_GE(s.buf_cap, 200u * 1024u);
	ASSERT_EQ(codec_stream_feed(&s, frames + n1, (size_t)n2, &used), 1);
	ASSERT_EQ(s.payload_bytes, 3);
	ASSERT_LE(s.buf_cap, 4096);
	codec_stream_close(&s);
}

TEST(stream_error_after_good_frames)
{
	int n = hello_frame();
	memcpy(buf + n, buf, (size_t)n);
	buf[n + 1] = 'X'; /* the second frame's magic */
	ASSERT_EQ(stream_first_error(buf, 2 * (size_t)n, 5), KEEL_EBADMAGIC);
}

/* An allocator that fails on demand, to check KEEL_ENOMEM is returned and
 * nothing leaks (the sanitizer build checks the latter). */
struct failing_alloc {
	int left; /* allocations still allowed */
	int live;
};

static void *failing_fn(void *ctx, void *ptr, size_t bytes)
{
	struct failing_alloc *f = ctx;
	if (bytes == 0) {
		f->live--;
		free(ptr);
		return NULL;
	}
	if (f->left == 0)
		return NULL;
	f->left--;
	void *p = realloc(ptr, bytes);
	if (p != NULL && ptr == NULL)
		f->live++;
	return p;
}

TEST(stream_enomem)
{
	struct failing_alloc f = { .left = 0 };
	struct keel_alloc a = { .fn = failing_fn, .ctx = &f };
	struct codec_stream s;
	codec_stream_init(&s, &a);
	int n = hello_frame();
	size_t used;
	ASSERT_EQ(codec_stream_feed(&s, buf, (size_t)n, &used), KEEL_ENOMEM);
	codec_stream_close(&s);
	ASSERT_EQ(f.live, 0);
}

TEST(decode_enomem_at_every_allocation)
{
	struct msg m;
	struct entry entries[3];
	uint8_t cfg[1024];
	sample_append(&m, entries, cfg, sizeof(cfg));
	int n = codec_msg_encode(&m, buf, BUF_BYTES);
	ASSERT_GT(n, 0);
	const uint8_t *p = buf + CODEC_HEADER_BYTES;
	uint32_t pb = (uint32_t)n - CODEC_FRAME_OVERHEAD;
	int ok_at = -1;
	for (int left = 0; left < 200 && ok_at < 0; left++) {
		struct failing_alloc f = { .left = left };
		struct keel_alloc a = { .fn = failing_fn, .ctx = &f };
		struct msg out;
		struct codec_decoded d;
		int rc = codec_msg_decode(p, pb, &a, &out, &d);
		if (rc == 0) {
			ok_at = left;
			msg_eq(&m, &out);
			codec_decoded_free(&d);
		} else {
			ASSERT_EQ(rc, KEEL_ENOMEM);
		}
		ASSERT_EQ(f.live, 0);
	}
	ASSERT_GT(ok_at, 0);
}
