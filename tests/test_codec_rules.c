/*
 * test_codec_rules.c: every validation rule of the codec, one violation at a
 * time. Each case breaks exactly one rule of a valid sample and checks both
 * sides of the boundary: the validation function the encoders assert (on
 * the struct) and the decoder (on wire bytes packed here without any
 * checks). Removing a rule makes its case fail.
 */
#include "harness.h"

#include <stdlib.h>

#include "../core/err.h"
#include "codec_samples.h"
#include "keel.pb-c.h"

#define WIRE_BYTES (16u * 1024u * 1024u)
static uint8_t *wire; /* packed payloads */

static uint8_t *wire_buf(void)
{
	if (wire == NULL)
		wire = malloc(WIRE_BYTES);
	ASSERT_TRUE(wire != NULL);
	return wire;
}

/* ---- unchecked struct -> protobuf (the codec's encoders would assert) ---- */

static ProtobufCBinaryData bin(const void *p, size_t n)
{
	return (ProtobufCBinaryData){ .len = n, .data = (uint8_t *)(uintptr_t)p };
}

/* Address fields are copied as their bytes up to NUL or the buffer end, so
 * an unterminated address reaches the wire over-long. */
static ProtobufCBinaryData addr_bin(const char *s, size_t cap)
{
	const char *z = memchr(s, 0, cap);
	return bin(s, z != NULL ? (size_t)(z - s) : cap);
}

struct raw_membership {
	Keel__Membership pb;
	Keel__Member members[KEEL_MEMBERS_MAX + 4];
	Keel__Member *ptrs[KEEL_MEMBERS_MAX + 4];
};

static void raw_membership(const struct membership *m, struct raw_membership *r)
{
	keel__membership__init(&r->pb);
	ASSERT_TRUE(m->member_count <= KEEL_MEMBERS_MAX + 4);
	for (uint32_t i = 0; i < m->member_count; i++) {
		/* members[] has KEEL_MEMBERS_MAX slots; extras repeat the last. */
		const struct member *x = &m->members[i < KEEL_MEMBERS_MAX ? i : KEEL_MEMBERS_MAX - 1];
		keel__member__init(&r->members[i]);
		r->members[i].id = x->id + (i >= KEEL_MEMBERS_MAX ? i : 0);
		r->members[i].role = x->role;
		r->members[i].peer_addr = addr_bin(x->peer_addr, sizeof(x->peer_addr));
		r->members[i].client_addr = addr_bin(x->client_addr, sizeof(x->client_addr));
		r->ptrs[i] = &r->members[i];
	}
	r->pb.n_members = m->member_count;
	r->pb.members = r->ptrs;
	r->pb.next_id = m->next_id;
}

static void raw_command(const struct kv_command *c, Keel__Command *pb)
{
	keel__command__init(pb);
	pb->client_id = c->client_id;
	pb->seq = c->seq;
	pb->op = c->op;
	pb->key = bin(c->key, c->key_bytes);
	pb->value = bin(c->value, c->value_bytes);
	pb->cas_absent = c->cas_absent;
	pb->expected = bin(c->expected, c->expected_bytes);
}

#define RAW_ENTRIES_MAX (KEEL_APPEND_ENTRIES_MAX + 8)

struct raw_msg {
	Keel__PeerMsg pb;
	Keel__Vote vote;
	Keel__VoteResp vote_resp;
	Keel__Append append;
	Keel__AppendResp append_resp;
	Keel__Snapshot snapshot;
	Keel__SnapshotResp snapshot_resp;
	Keel__TimeoutNow timeout_now;
	struct raw_membership membership;
	Keel__Entry entries[RAW_ENTRIES_MAX];
	Keel__Entry *entry_ptrs[RAW_ENTRIES_MAX];
};

static void raw_msg_body(const struct msg *m, struct raw_msg *r)
{
	switch (m->type) {
	case MSG_PREVOTE:
	case MSG_VOTE:
		r->vote.last_log_index = m->u.vote.last_log_index;
		r->vote.last_log_term = m->u.vote.last_log_term;
		r->vote.transfer = m->u.vote.transfer;
		r->pb.body_case = KEEL__PEER_MSG__BODY_VOTE;
		r->pb.vote = &r->vote;
		break;
	case MSG_PREVOTE_RESP:
	case MSG_VOTE_RESP:
		r->vote_resp.granted = m->u.vote_resp.granted;
		r->pb.body_case = KEEL__PEER_MSG__BODY_VOTE_RESP;
		r->pb.vote_resp = &r->vote_resp;
		break;
	case MSG_APPEND:
		r->append.prev_index = m->u.append.prev_index;
		r->append.prev_term = m->u.append.prev_term;
		r->append.commit = m->u.append.commit;
		r->append.ctx = m->u.append.ctx;
		ASSERT_TRUE(m->u.append.entry_count <= RAW_ENTRIES_MAX);
		for (uint32_t i = 0; i < m->u.append.entry_count; i++) {
			const struct entry *e = &m->u.append.entries[i];
			keel__entry__init(&r->entries[i]);
			r->entries[i].term = e->term;
			r->entries[i].index = e->index;
			r->entries[i].type = e->type;
			r->entries[i].data = bin(e->data, e->data_bytes);
			r->entry_ptrs[i] = &r->entries[i];
		}
		r->append.n_entries = m->u.append.entry_count;
		r->append.entries = r->entry_ptrs;
		r->pb.body_case = KEEL__PEER_MSG__BODY_APPEND;
		r->pb.append = &r->append;
		break;
	case MSG_APPEND_RESP:
		r->append_resp.success = m->u.append_resp.success;
		r->append_resp.match_index = m->u.append_resp.match_index;
		r->append_resp.reject_index = m->u.append_resp.reject_index;
		r->append_resp.hint_index = m->u.append_resp.hint_index;
		r->append_resp.hint_term = m->u.append_resp.hint_term;
		r->append_resp.ctx = m->u.append_resp.ctx;
		r->pb.body_case = KEEL__PEER_MSG__BODY_APPEND_RESP;
		r->pb.append_resp = &r->append_resp;
		break;
	case MSG_SNAPSHOT:
		r->snapshot.last_index = m->u.snapshot.last_index;
		r->snapshot.last_term = m->u.snapshot.last_term;
		raw_membership(&m->u.snapshot.membership, &r->membership);
		r->snapshot.membership = &r->membership.pb;
		r->snapshot.offset = m->u.snapshot.offset;
		r->snapshot.chunk = bin(m->u.snapshot.chunk, m->u.snapshot.chunk_bytes);
		r->snapshot.done = m->u.snapshot.done;
		r->pb.body_case = KEEL__PEER_MSG__BODY_SNAPSHOT;
		r->pb.snapshot = &r->snapshot;
		break;
	case MSG_SNAPSHOT_RESP:
		r->snapshot_resp.last_index = m->u.snapshot_resp.last_index;
		r->snapshot_resp.next_offset = m->u.snapshot_resp.next_offset;
		r->snapshot_resp.done = m->u.snapshot_resp.done;
		r->snapshot_resp.rejected = m->u.snapshot_resp.rejected;
		r->pb.body_case = KEEL__PEER_MSG__BODY_SNAPSHOT_RESP;
		r->pb.snapshot_resp = &r->snapshot_resp;
		break;
	default: /* timeout-now, and unknown types carry a timeout-now body */
		r->pb.body_case = KEEL__PEER_MSG__BODY_TIMEOUT_NOW;
		r->pb.timeout_now = &r->timeout_now;
		break;
	}
}

static struct raw_msg *raw_msg(const struct msg *m)
{
	static struct raw_msg r;
	memset(&r, 0, sizeof(r));
	keel__peer_msg__init(&r.pb);
	keel__vote__init(&r.vote);
	keel__vote_resp__init(&r.vote_resp);
	keel__append__init(&r.append);
	keel__append_resp__init(&r.append_resp);
	keel__snapshot__init(&r.snapshot);
	keel__snapshot_resp__init(&r.snapshot_resp);
	keel__timeout_now__init(&r.timeout_now);
	r.pb.type = m->type;
	r.pb.from = m->from;
	r.pb.to = m->to;
	r.pb.term = m->term;
	raw_msg_body(m, &r);
	return &r;
}

/* Pack pb and run the matching decoder; returns its code. */
static int decode_pb(const ProtobufCMessage *pb)
{
	uint8_t *w = wire_buf();
	size_t n = protobuf_c_message_get_packed_size(pb);
	ASSERT_TRUE(n <= WIRE_BYTES);
	protobuf_c_message_pack(pb, w);
	struct codec_decoded d;
	int rc;
	if (pb->descriptor == &keel__peer_msg__descriptor) {
		struct msg out;
		rc = codec_msg_decode(w, (uint32_t)n, NULL, &out, &d);
	} else if (pb->descriptor == &keel__membership__descriptor) {
		struct membership out;
		return codec_membership_decode(w, (uint32_t)n, &out);
	} else if (pb->descriptor == &keel__batch__descriptor) {
		static struct kv_command out[KEEL_BATCH_COMMANDS_MAX];
		uint32_t count;
		rc = codec_batch_decode(w, (uint32_t)n, NULL, out, &count, &d);
	} else if (pb->descriptor == &keel__client_request__descriptor) {
		struct client_request out;
		rc = codec_request_decode(w, (uint32_t)n, NULL, &out, &d);
	} else if (pb->descriptor == &keel__client_response__descriptor) {
		static struct client_response out;
		rc = codec_response_decode(w, (uint32_t)n, NULL, &out, &d);
	} else {
		ASSERT_TRUE(pb->descriptor == &keel__hello__descriptor);
		struct codec_hello out;
		return codec_hello_decode(w, (uint32_t)n, &out);
	}
	if (rc == 0)
		codec_decoded_free(&d);
	return rc;
}

/* Both sides of the boundary reject m with want. */
static void msg_rejected(const struct msg *m, int want)
{
	ASSERT_EQ(codec_msg_validate(m), want);
	ASSERT_EQ(decode_pb(&raw_msg(m)->pb.base), want);
}

static void msg_accepted(const struct msg *m)
{
	ASSERT_EQ(codec_msg_validate(m), 0);
	ASSERT_EQ(decode_pb(&raw_msg(m)->pb.base), 0);
}

/* ---- peer messages: header -------------------------------------------------- */

TEST(rule_msg_type_known)
{
	struct msg m;
	sample_simple_msg(&m, MSG_TIMEOUT_NOW);
	msg_accepted(&m);
	m.type = 0;
	msg_rejected(&m, KEEL_EBADTYPE);
	m.type = MSG_TYPE_MAX + 1;
	msg_rejected(&m, KEEL_EBADTYPE);
}

TEST(rule_msg_from_to_nonzero_and_distinct)
{
	struct msg m;
	sample_simple_msg(&m, MSG_VOTE_RESP);
	msg_accepted(&m);
	m.from = 0;
	msg_rejected(&m, KEEL_ERANGE);
	sample_simple_msg(&m, MSG_VOTE_RESP);
	m.to = 0;
	msg_rejected(&m, KEEL_ERANGE);
	sample_simple_msg(&m, MSG_VOTE_RESP);
	m.to = m.from;
	msg_rejected(&m, KEEL_ERANGE);
}

TEST(rule_msg_body_matches_type)
{
	struct msg m;
	sample_simple_msg(&m, MSG_VOTE);
	struct raw_msg *r = raw_msg(&m);
	r->pb.body_case = KEEL__PEER_MSG__BODY__NOT_SET;
	ASSERT_EQ(decode_pb(&r->pb.base), KEEL_EMALFORMED);
	r = raw_msg(&m);
	r->pb.body_case = KEEL__PEER_MSG__BODY_VOTE_RESP;
	r->pb.vote_resp = &r->vote_resp;
	ASSERT_EQ(decode_pb(&r->pb.base), KEEL_EMALFORMED);
	r = raw_msg(&m);
	r->pb.type = MSG_APPEND; /* vote body, append type */
	ASSERT_EQ(decode_pb(&r->pb.base), KEEL_EMALFORMED);
}

TEST(rule_msg_payload_must_unpack)
{
	static const uint8_t junk[][6] = {
		{ 0xff, 0xff, 0xff, 0xff, 0xff, 0xff }, /* endless varint */
		{ 0x62, 0x05, 0x08, 0x01, 0x00, 0x00 }, /* vote body longer than payload */
		{ 0x0f, 0x00, 0x00, 0x00, 0x00, 0x00 }, /* wire type 7 */
	};
	for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
		struct msg out;
		struct codec_decoded d;
		ASSERT_EQ(codec_msg_decode(junk[i], sizeof(junk[i]), NULL, &out, &d),
			  KEEL_EMALFORMED);
	}
}

/* ---- votes ------------------------------------------------------------------- */

TEST(rule_vote_term_nonzero)
{
	struct msg m;
	sample_simple_msg(&m, MSG_PREVOTE);
	m.term = 0;
	m.u.vote.last_log_index = 0;
	m.u.vote.last_log_term = 0;
	msg_rejected(&m, KEEL_ERANGE);
	m.term = 1;
	msg_accepted(&m);
}

TEST(rule_vote_last_log_term_le_term)
{
	struct msg m;
	sample_simple_msg(&m, MSG_VOTE);
	m.u.vote.last_log_term = m.term;
	msg_accepted(&m);
	m.u.vote.last_log_term = m.term + 1;
	msg_rejected(&m, KEEL_ERANGE);
}

TEST(rule_vote_empty_log_has_term_zero)
{
	struct msg m;
	sample_simple_msg(&m, MSG_VOTE);
	m.u.vote.last_log_index = 0;
	msg_rejected(&m, KEEL_ERANGE);
	sample_simple_msg(&m, MSG_VOTE);
	m.u.vote.last_log_term = 0;
	msg_rejected(&m, KEEL_ERANGE);
}

/* ---- appends ------------------------------------------------------------------- */

static struct entry ents[RAW_ENTRIES_MAX];
static uint8_t cfg_buf[1024];

static void base_append(struct msg *m)
{
	sample_append(m, ents, cfg_buf, sizeof(cfg_buf));
	msg_accepted(m);
}

static void base_heartbeat(struct msg *m)
{
	sample_msg_header(m, MSG_APPEND);
	m->u.append.prev_index = 40;
	m->u.append.prev_term = 5;
	m->u.append.commit = 40;
	msg_accepted(m);
}

TEST(rule_append_term_nonzero)
{
	struct msg m;
	sample_msg_header(&m, MSG_APPEND);
	msg_accepted(&m);
	m.term = 0;
	msg_rejected(&m, KEEL_ERANGE);
}

TEST(rule_append_prev_term_le_term)
{
	struct msg m;
	base_heartbeat(&m);
	m.u.append.prev_term = m.term + 1;
	msg_rejected(&m, KEEL_ERANGE);
}

TEST(rule_append_prev_index_zero_iff_prev_term_zero)
{
	struct msg m;
	base_heartbeat(&m);
	m.u.append.prev_index = 0;
	msg_rejected(&m, KEEL_ERANGE);
	base_heartbeat(&m);
	m.u.append.prev_term = 0;
	msg_rejected(&m, KEEL_ERANGE);
}

TEST(rule_append_entry_count_limit)
{
	struct msg m;
	sample_msg_header(&m, MSG_APPEND);
	m.u.append.entries = ents;
	for (uint32_t i = 0; i < KEEL_APPEND_ENTRIES_MAX + 1; i++)
		ents[i] = (struct entry){ .term = 1, .index = i + 1, .type = ENTRY_NOOP };
	m.u.append.entry_count = KEEL_APPEND_ENTRIES_MAX;
	msg_accepted(&m);
	m.u.append.entry_count = KEEL_APPEND_ENTRIES_MAX + 1;
	msg_rejected(&m, KEEL_ETOOBIG);
}

TEST(rule_append_index_arithmetic_cannot_overflow)
{
	struct msg m;
	sample_msg_header(&m, MSG_APPEND);
	m.u.append.prev_index = UINT64_MAX - 2;
	m.u.append.prev_term = 1;
	m.u.append.entries = ents;
	m.u.append.entry_count = 2;
	ents[0] = (struct entry){ .term = 1, .index = UINT64_MAX - 1, .type = ENTRY_NOOP };
	ents[1] = (struct entry){ .term = 1, .index = UINT64_MAX, .type = ENTRY_NOOP };
	msg_accepted(&m);
	/* One more entry would need index 2^64: its wrapped index 0 matches
	 * prev_index + 1 + i modulo 2^64, so only the overflow rule stops it. */
	m.u.append.entry_count = 3;
	ents[2] = (struct entry){ .term = 1, .index = 0, .type = ENTRY_NOOP };
	msg_rejected(&m, KEEL_ERANGE);
}

TEST(rule_append_entry_indexes_consecutive)
{
	struct msg m;
	base_append(&m);
	ents[0].index = 40; /* must be prev_index + 1 */
	msg_rejected(&m, KEEL_ERANGE);
	base_append(&m);
	ents[2].index = 44; /* gap */
	msg_rejected(&m, KEEL_ERANGE);
	base_append(&m);
	ents[1].index = 41; /* repeat */
	msg_rejected(&m, KEEL_ERANGE);
}

TEST(rule_append_pointers_present)
{
	/* In memory only: counts and sizes need their pointers. */
	struct msg m;
	base_append(&m);
	m.u.append.entries = NULL;
	ASSERT_EQ(codec_msg_validate(&m), KEEL_ERANGE);
	base_append(&m);
	ents[1].data = NULL;
	ASSERT_EQ(codec_msg_validate(&m), KEEL_ERANGE);
	sample_snapshot(&m);
	m.u.snapshot.chunk = NULL;
	ASSERT_EQ(codec_msg_validate(&m), KEEL_ERANGE);
}

TEST(rule_append_entry_term_nonzero)
{
	struct msg m;
	sample_msg_header(&m, MSG_APPEND);
	m.u.append.entries = ents;
	m.u.append.entry_count = 1;
	ents[0] = (struct entry){ .term = 1, .index = 1, .type = ENTRY_NOOP };
	msg_accepted(&m);
	ents[0].term = 0;
	msg_rejected(&m, KEEL_ERANGE);
}

TEST(rule_append_entry_term_le_msg_term)
{
	struct msg m;
	base_append(&m);
	ents[2].term = m.term + 1;
	msg_rejected(&m, KEEL_ERANGE);
}

TEST(rule_append_entry_terms_non_decreasing)
{
	struct msg m;
	base_append(&m);
	ents[2].term = 6; /* after 7 */
	msg_rejected(&m, KEEL_ERANGE);
	base_append(&m);
	ents[0].term = 4; /* below prev_term 5 */
	msg_rejected(&m, KEEL_ERANGE);
}

TEST(rule_append_entry_type_known)
{
	struct msg m;
	base_append(&m);
	ents[1].type = 0;
	msg_rejected(&m, KEEL_ERANGE);
	ents[1].type = ENTRY_CONFIG + 1;
	msg_rejected(&m, KEEL_ERANGE);
}

TEST(rule_append_noop_has_no_data)
{
	struct msg m;
	base_append(&m);
	ents[0].data = sample_value;
	ents[0].data_bytes = 1;
	msg_rejected(&m, KEEL_ERANGE);
}

TEST(rule_append_entry_bytes_limit)
{
	static uint8_t big[KEEL_ENTRY_BYTES_MAX + 1];
	struct msg m;
	base_append(&m);
	ents[1].data = big;
	ents[1].data_bytes = KEEL_ENTRY_BYTES_MAX;
	msg_accepted(&m);
	ents[1].data_bytes = KEEL_ENTRY_BYTES_MAX + 1;
	msg_rejected(&m, KEEL_ETOOBIG);
}

TEST(rule_append_total_bytes_limit)
{
	static uint8_t big[KEEL_ENTRY_BYTES_MAX];
	struct msg m;
	sample_msg_header(&m, MSG_APPEND);
	m.u.append.entries = ents;
	uint32_t n = KEEL_APPEND_BYTES_MAX / KEEL_ENTRY_BYTES_MAX;
	for (uint32_t i = 0; i <= n; i++)
		ents[i] = (struct entry){ .term = 7, .index = i + 1, .type = ENTRY_COMMAND,
					  .data = big, .data_bytes = KEEL_ENTRY_BYTES_MAX };
	m.u.append.entry_count = n;
	msg_accepted(&m); /* exactly the limit */
	ents[n].data_bytes = 1;
	m.u.append.entry_count = n + 1;
	msg_rejected(&m, KEEL_ETOOBIG);
}

TEST(rule_append_config_entry_is_a_membership)
{
	struct msg m;
	base_append(&m);
	struct membership bad;
	sample_membership(&bad);
	for (uint32_t i = 0; i < bad.member_count; i++)
		bad.members[i].role = MEMBER_LEARNER; /* no voter */
	struct raw_membership rm;
	raw_membership(&bad, &rm);
	size_t n = keel__membership__pack(&rm.pb, cfg_buf);
	ents[2].data_bytes = (uint32_t)n;
	/* Checked by the decoder only (the struct holds opaque bytes). */
	ASSERT_EQ(codec_msg_validate(&m), 0);
	ASSERT_EQ(decode_pb(&raw_msg(&m)->pb.base), KEEL_ERANGE);
	ents[2].data = sample_value; /* not protobuf at all */
	ents[2].data_bytes = sizeof(sample_value) - 1;
	ASSERT_EQ(decode_pb(&raw_msg(&m)->pb.base), KEEL_EMALFORMED);
}

/* ---- append responses ---------------------------------------------------------- */

TEST(rule_append_resp_hint_at_or_before_reject)
{
	struct msg m;
	sample_simple_msg(&m, MSG_APPEND_RESP);
	msg_accepted(&m);
	m.u.append_resp.hint_index = m.u.append_resp.reject_index + 1;
	msg_rejected(&m, KEEL_ERANGE);
}

TEST(rule_append_resp_hint_term_le_term)
{
	struct msg m;
	sample_simple_msg(&m, MSG_APPEND_RESP);
	m.u.append_resp.hint_term = m.term + 1;
	msg_rejected(&m, KEEL_ERANGE);
}

TEST(rule_append_resp_no_hint_no_hint_term)
{
	struct msg m;
	sample_simple_msg(&m, MSG_APPEND_RESP);
	m.u.append_resp.hint_index = 0;
	msg_rejected(&m, KEEL_ERANGE);
	m.u.append_resp.hint_term = 0;
	msg_accepted(&m);
}

/* ---- snapshots ------------------------------------------------------------------- */

TEST(rule_snapshot_terms_and_index)
{
	struct msg m;
	sample_snapshot(&m);
	msg_accepted(&m);
	m.term = 0;
	m.u.snapshot.last_term = 0;
	msg_rejected(&m, KEEL_ERANGE); /* term 0 (and last_term 0) */
	sample_snapshot(&m);
	m.u.snapshot.last_index = 0;
	msg_rejected(&m, KEEL_ERANGE);
	sample_snapshot(&m);
	m.u.snapshot.last_term = 0;
	msg_rejected(&m, KEEL_ERANGE);
	sample_snapshot(&m);
	m.u.snapshot.last_term = m.term + 1;
	msg_rejected(&m, KEEL_ERANGE);
}

TEST(rule_snapshot_chunk_limit)
{
	static uint8_t big[KEEL_SNAPSHOT_CHUNK_BYTES_MAX + 1];
	struct msg m;
	sample_snapshot(&m);
	m.u.snapshot.chunk = big;
	m.u.snapshot.chunk_bytes = KEEL_SNAPSHOT_CHUNK_BYTES_MAX;
	msg_accepted(&m);
	m.u.snapshot.chunk_bytes = KEEL_SNAPSHOT_CHUNK_BYTES_MAX + 1;
	msg_rejected(&m, KEEL_ETOOBIG);
}

TEST(rule_snapshot_offset_cannot_overflow)
{
	struct msg m;
	sample_snapshot(&m);
	m.u.snapshot.offset = UINT64_MAX - m.u.snapshot.chunk_bytes;
	msg_accepted(&m);
	m.u.snapshot.offset++;
	msg_rejected(&m, KEEL_ERANGE);
}

TEST(rule_snapshot_membership_valid)
{
	struct msg m;
	sample_snapshot(&m);
	m.u.snapshot.membership.members[1].id = m.u.snapshot.membership.members[0].id;
	msg_rejected(&m, KEEL_ERANGE);
	sample_snapshot(&m);
	struct raw_msg *r = raw_msg(&m);
	r->snapshot.membership = NULL; /* absent on the wire */
	ASSERT_EQ(decode_pb(&r->pb.base), KEEL_EMALFORMED);
}

TEST(rule_snapshot_resp_fields)
{
	struct msg m;
	sample_simple_msg(&m, MSG_SNAPSHOT_RESP);
	msg_accepted(&m);
	m.u.snapshot_resp.last_index = 0;
	msg_rejected(&m, KEEL_ERANGE);
	sample_simple_msg(&m, MSG_SNAPSHOT_RESP);
	m.u.snapshot_resp.done = true; /* and rejected */
	msg_rejected(&m, KEEL_ERANGE);
}

TEST(rule_timeout_now_term_nonzero)
{
	struct msg m;
	sample_simple_msg(&m, MSG_TIMEOUT_NOW);
	msg_accepted(&m);
	m.term = 0;
	msg_rejected(&m, KEEL_ERANGE);
}

/* ---- membership ------------------------------------------------------------------- */

static void membership_rejected(const struct membership *m, int want)
{
	struct raw_membership r;
	ASSERT_EQ(codec_membership_validate(m), want);
	raw_membership(m, &r);
	ASSERT_EQ(decode_pb(&r.pb.base), want);
}

TEST(rule_membership_count)
{
	struct membership m;
	sample_membership(&m);
	membership_rejected(&m, 0);
	m.member_count = 0;
	membership_rejected(&m, KEEL_ERANGE);
	sample_membership(&m);
	for (uint32_t i = 0; i < KEEL_MEMBERS_MAX; i++) {
		m.members[i].id = i + 1;
		m.members[i].role = MEMBER_VOTER;
	}
	m.member_count = KEEL_MEMBERS_MAX;
	membership_rejected(&m, 0);
	m.member_count = KEEL_MEMBERS_MAX + 1; /* the wire gets one more */
	struct raw_membership r;
	raw_membership(&m, &r);
	ASSERT_EQ(decode_pb(&r.pb.base), KEEL_ETOOBIG);
	ASSERT_EQ(codec_membership_validate(&m), KEEL_ETOOBIG);
}

TEST(rule_membership_ids_nonzero_distinct)
{
	struct membership m;
	sample_membership(&m);
	m.members[2].id = 0;
	membership_rejected(&m, KEEL_ERANGE);
	sample_membership(&m);
	m.members[3].id = m.members[1].id;
	membership_rejected(&m, KEEL_ERANGE);
}

TEST(rule_membership_roles_known)
{
	struct membership m;
	sample_membership(&m);
	m.members[1].role = 0;
	membership_rejected(&m, KEEL_ERANGE);
	m.members[1].role = MEMBER_LEARNER + 1;
	membership_rejected(&m, KEEL_ERANGE);
}

TEST(rule_membership_has_a_voter)
{
	struct membership m;
	sample_membership(&m);
	for (uint32_t i = 0; i < m.member_count; i++)
		m.members[i].role = MEMBER_LEARNER;
	membership_rejected(&m, KEEL_ERANGE);
	m.members[2].role = MEMBER_VOTER;
	membership_rejected(&m, 0);
}

TEST(rule_membership_ids_below_next_id)
{
	struct membership m;
	sample_membership(&m); /* ids 10..13 */
	m.next_id = 14;
	membership_rejected(&m, 0);
	m.next_id = 13; /* member 13 was not assigned below it */
	membership_rejected(&m, KEEL_ERANGE);
	m.next_id = 1;
	membership_rejected(&m, KEEL_ERANGE);
	m.next_id = 0; /* unset: no bound */
	membership_rejected(&m, 0);
}

TEST(rule_membership_addresses_bounded)
{
	struct membership m;
	sample_membership(&m);
	memset(m.members[0].peer_addr, 'p', KEEL_ADDR_BYTES_MAX); /* no NUL */
	membership_rejected(&m, KEEL_ETOOBIG);
	sample_membership(&m);
	memset(m.members[3].client_addr, 'c', KEEL_ADDR_BYTES_MAX);
	membership_rejected(&m, KEEL_ETOOBIG);
}

TEST(rule_membership_addresses_without_nul)
{
	struct membership m;
	struct raw_membership r;
	sample_membership(&m);
	raw_membership(&m, &r);
	char addr[] = "10.0.0.1\0:7000";
	r.members[1].peer_addr = bin(addr, sizeof(addr) - 1);
	ASSERT_EQ(decode_pb(&r.pb.base), KEEL_EMALFORMED);
	raw_membership(&m, &r);
	r.members[2].client_addr = bin(addr, sizeof(addr) - 1);
	ASSERT_EQ(decode_pb(&r.pb.base), KEEL_EMALFORMED);
}

/* ---- commands and batches --------------------------------------------------------- */

struct raw_batch {
	Keel__Batch pb;
	Keel__Command cmds[KEEL_BATCH_COMMANDS_MAX + 1];
	Keel__Command *ptrs[KEEL_BATCH_COMMANDS_MAX + 1];
};

static int batch_decode_raw(const struct kv_command *cmds, uint32_t count)
{
	static struct raw_batch r;
	keel__batch__init(&r.pb);
	for (uint32_t i = 0; i < count; i++) {
		raw_command(&cmds[i], &r.cmds[i]);
		r.ptrs[i] = &r.cmds[i];
	}
	r.pb.n_commands = count;
	r.pb.commands = r.ptrs;
	return decode_pb(&r.pb.base);
}

struct raw_request {
	Keel__ClientRequest pb;
	Keel__Command cmd;
	Keel__MemberChange change;
};

static struct raw_request *raw_request(const struct client_request *q)
{
	static struct raw_request r;
	keel__client_request__init(&r.pb);
	r.pb.request_id = q->request_id;
	r.pb.kind = q->kind;
	r.pb.consistency = q->consistency;
	r.pb.transfer_to = q->transfer_to;
	if (q->kind == CLIENT_REQ_KV) {
		raw_command(&q->cmd, &r.cmd);
		r.pb.command = &r.cmd;
	}
	if (q->kind == CLIENT_REQ_MEMBER) {
		keel__member_change__init(&r.change);
		r.change.kind = q->change.kind;
		r.change.id = q->change.id;
		r.change.peer_addr = addr_bin(q->change.peer_addr, sizeof(q->change.peer_addr));
		r.change.client_addr = addr_bin(q->change.client_addr, sizeof(q->change.client_addr));
		r.pb.change = &r.change;
	}
	return &r;
}

static int request_decode_raw(const struct client_request *q)
{
	return decode_pb(&raw_request(q)->pb.base);
}

/* Both sides of the boundary give want for request q. */
static void request_rejected(const struct client_request *q, int want)
{
	ASSERT_EQ(codec_request_validate(q), want);
	ASSERT_EQ(request_decode_raw(q), want);
}

/* A write command breaking one rule is rejected by codec_command_validate,
 * by the batch decoder and by the request decoder, with the same code. */
static void command_rejected(const struct kv_command *c, int want)
{
	struct client_request q;
	ASSERT_EQ(codec_command_validate(c), want);
	ASSERT_EQ(batch_decode_raw(c, 1), want);
	sample_request(&q, KV_PUT);
	q.cmd = *c;
	ASSERT_EQ(request_decode_raw(&q), want);
}

TEST(rule_command_op_known)
{
	struct kv_command c;
	sample_command(&c, KV_DEL);
	command_rejected(&c, 0);
	c.op = 0;
	command_rejected(&c, KEEL_ERANGE);
	c.op = KV_APPEND + 1;
	command_rejected(&c, KEEL_ERANGE);
}

TEST(rule_command_key_nonempty)
{
	struct kv_command c;
	sample_command(&c, KV_PUT);
	c.key_bytes = 0;
	command_rejected(&c, KEEL_ERANGE);
	/* In memory: bytes without a pointer. */
	sample_command(&c, KV_PUT);
	c.key = NULL;
	ASSERT_EQ(codec_command_validate(&c), KEEL_ERANGE);
}

TEST(rule_command_key_limit)
{
	static uint8_t key[KEEL_KEY_BYTES_MAX + 1];
	struct kv_command c;
	sample_command(&c, KV_PUT);
	c.key = key;
	c.key_bytes = KEEL_KEY_BYTES_MAX;
	command_rejected(&c, 0);
	c.key_bytes = KEEL_KEY_BYTES_MAX + 1;
	command_rejected(&c, KEEL_ETOOBIG);
}

TEST(rule_command_value_and_expected_limits)
{
	static uint8_t v[KEEL_VALUE_BYTES_MAX + 1];
	struct kv_command c;
	sample_command(&c, KV_CAS);
	c.value = v;
	c.value_bytes = KEEL_VALUE_BYTES_MAX;
	c.expected = v;
	c.expected_bytes = KEEL_VALUE_BYTES_MAX;
	command_rejected(&c, 0);
	c.value_bytes = KEEL_VALUE_BYTES_MAX + 1;
	command_rejected(&c, KEEL_ETOOBIG);
	c.value_bytes = 1;
	c.expected_bytes = KEEL_VALUE_BYTES_MAX + 1;
	command_rejected(&c, KEEL_ETOOBIG);
	/* In memory: bytes without a pointer. */
	sample_command(&c, KV_CAS);
	c.value = NULL;
	ASSERT_EQ(codec_command_validate(&c), KEEL_ERANGE);
	sample_command(&c, KV_CAS);
	c.expected = NULL;
	ASSERT_EQ(codec_command_validate(&c), KEEL_ERANGE);
}

TEST(rule_command_get_and_del_carry_no_value)
{
	struct kv_command c;
	sample_command(&c, KV_DEL);
	c.value = sample_value;
	c.value_bytes = 1;
	command_rejected(&c, KEEL_ERANGE);
	sample_command(&c, KV_GET);
	ASSERT_EQ(codec_command_validate(&c), 0);
	c.value = sample_value;
	c.value_bytes = 1;
	ASSERT_EQ(codec_command_validate(&c), KEEL_ERANGE);
	struct client_request q;
	sample_request(&q, KV_GET);
	q.cmd = c;
	ASSERT_EQ(request_decode_raw(&q), KEEL_ERANGE);
}

TEST(rule_command_expected_only_for_cas)
{
	struct kv_command c;
	sample_command(&c, KV_PUT);
	c.expected = sample_expected;
	c.expected_bytes = 1;
	command_rejected(&c, KEEL_ERANGE);
	sample_command(&c, KV_APPEND);
	c.cas_absent = true;
	command_rejected(&c, KEEL_ERANGE);
}

TEST(rule_command_cas_absent_has_no_expected)
{
	struct kv_command c;
	sample_command(&c, KV_CAS);
	c.cas_absent = true;
	command_rejected(&c, KEEL_ERANGE);
	c.expected_bytes = 0;
	command_rejected(&c, 0);
}

TEST(rule_command_write_has_session)
{
	struct kv_command c;
	sample_command(&c, KV_PUT);
	c.client_id = 0;
	command_rejected(&c, KEEL_ERANGE);
	sample_command(&c, KV_APPEND);
	c.seq = 0;
	command_rejected(&c, KEEL_ERANGE);
	sample_command(&c, KV_GET); /* reads need none */
	c.client_id = 0;
	c.seq = 0;
	ASSERT_EQ(codec_command_validate(&c), 0);
}

TEST(rule_batch_count)
{
	static struct kv_command cmds[KEEL_BATCH_COMMANDS_MAX + 1];
	for (uint32_t i = 0; i <= KEEL_BATCH_COMMANDS_MAX; i++)
		sample_command(&cmds[i], KV_DEL);
	ASSERT_EQ(codec_batch_validate(cmds, 0), KEEL_ERANGE);
	ASSERT_EQ(batch_decode_raw(cmds, 0), KEEL_ERANGE);
	ASSERT_EQ(codec_batch_validate(cmds, KEEL_BATCH_COMMANDS_MAX), 0);
	ASSERT_EQ(batch_decode_raw(cmds, KEEL_BATCH_COMMANDS_MAX), 0);
	ASSERT_EQ(codec_batch_validate(cmds, KEEL_BATCH_COMMANDS_MAX + 1), KEEL_ETOOBIG);
	ASSERT_EQ(batch_decode_raw(cmds, KEEL_BATCH_COMMANDS_MAX + 1), KEEL_ETOOBIG);
}

TEST(rule_batch_only_writes)
{
	struct kv_command cmds[2];
	sample_command(&cmds[0], KV_PUT);
	sample_command(&cmds[1], KV_GET);
	ASSERT_EQ(codec_command_validate(&cmds[1]), 0);
	ASSERT_EQ(codec_batch_validate(cmds, 2), KEEL_ERANGE);
	ASSERT_EQ(batch_decode_raw(cmds, 2), KEEL_ERANGE);
}

TEST(rule_batch_bytes_limit)
{
	uint8_t *w = wire_buf();
	memset(w, 0, KEEL_ENTRY_BYTES_MAX + 1);
	static struct kv_command out[KEEL_BATCH_COMMANDS_MAX];
	uint32_t count;
	struct codec_decoded d;
	/* Zero bytes are not protobuf, but the size is refused first. */
	ASSERT_EQ(codec_batch_decode(w, KEEL_ENTRY_BYTES_MAX + 1, NULL, out, &count, &d),
		  KEEL_ETOOBIG);
	ASSERT_EQ(codec_batch_decode(w, KEEL_ENTRY_BYTES_MAX, NULL, out, &count, &d),
		  KEEL_EMALFORMED);
}

/* ---- requests --------------------------------------------------------------------- */

TEST(rule_request_kind_known)
{
	struct client_request q;
	sample_request(&q, KV_PUT);
	q.kind = 0;
	ASSERT_EQ(codec_request_validate(&q), KEEL_ERANGE);
	ASSERT_EQ(request_decode_raw(&q), KEEL_ERANGE);
	q.kind = CLIENT_REQ_KIND_MAX + 1;
	ASSERT_EQ(codec_request_validate(&q), KEEL_ERANGE);
	ASSERT_EQ(request_decode_raw(&q), KEEL_ERANGE);
}

TEST(rule_request_consistency_known)
{
	struct client_request q;
	sample_request(&q, KV_GET);
	q.consistency = KV_STALE + 1;
	ASSERT_EQ(codec_request_validate(&q), KEEL_ERANGE);
	ASSERT_EQ(request_decode_raw(&q), KEEL_ERANGE);
}

TEST(rule_request_command_iff_kv)
{
	Keel__ClientRequest pb;
	Keel__Command cmd;
	struct client_request q;
	sample_request(&q, KV_PUT);
	keel__client_request__init(&pb);
	pb.kind = CLIENT_REQ_KV;
	ASSERT_EQ(decode_pb(&pb.base), KEEL_EMALFORMED); /* KV without a command */
	raw_command(&q.cmd, &cmd);
	pb.command = &cmd;
	ASSERT_EQ(decode_pb(&pb.base), 0);
	pb.kind = CLIENT_REQ_STATUS;
	ASSERT_EQ(decode_pb(&pb.base), KEEL_ERANGE); /* status with a command */
	pb.command = NULL;
	ASSERT_EQ(decode_pb(&pb.base), 0);
}

TEST(rule_request_change_iff_member)
{
	struct client_request q;
	sample_member_request(&q, MEMBER_PROMOTE);
	struct raw_request *x = raw_request(&q);
	ASSERT_EQ(decode_pb(&x->pb.base), 0);
	x->pb.change = NULL; /* member request without a change */
	ASSERT_EQ(decode_pb(&x->pb.base), KEEL_EMALFORMED);
	x->pb.change = &x->change;
	x->pb.kind = CLIENT_REQ_STATUS; /* status with a change */
	ASSERT_EQ(decode_pb(&x->pb.base), KEEL_ERANGE);
	x->pb.change = NULL;
	ASSERT_EQ(decode_pb(&x->pb.base), 0);
}

TEST(rule_member_change_kind_known)
{
	struct client_request q;
	sample_member_request(&q, MEMBER_REMOVE);
	request_rejected(&q, 0);
	q.change.kind = 0;
	request_rejected(&q, KEEL_ERANGE);
	q.change.kind = MEMBER_REMOVE + 1;
	request_rejected(&q, KEEL_ERANGE);
}

TEST(rule_member_change_id_nonzero_except_add)
{
	struct client_request q;
	sample_member_request(&q, MEMBER_PROMOTE);
	q.change.id = 0;
	request_rejected(&q, KEEL_ERANGE);
	sample_member_request(&q, MEMBER_REMOVE);
	q.change.id = 0;
	request_rejected(&q, KEEL_ERANGE);
	sample_member_request(&q, MEMBER_ADD_LEARNER);
	q.change.id = 0; /* the leader assigns one */
	request_rejected(&q, 0);
}

TEST(rule_member_change_addresses_bounded)
{
	struct client_request q;
	sample_member_request(&q, MEMBER_ADD_LEARNER);
	memset(q.change.peer_addr, 'p', KEEL_ADDR_BYTES_MAX - 1);
	request_rejected(&q, 0);
	memset(q.change.peer_addr, 'p', KEEL_ADDR_BYTES_MAX); /* no NUL */
	request_rejected(&q, KEEL_ETOOBIG);
	sample_member_request(&q, MEMBER_ADD_LEARNER);
	memset(q.change.client_addr, 'c', KEEL_ADDR_BYTES_MAX);
	request_rejected(&q, KEEL_ETOOBIG);
	sample_member_request(&q, MEMBER_REMOVE); /* any kind */
	memset(q.change.client_addr, 'c', KEEL_ADDR_BYTES_MAX);
	request_rejected(&q, KEEL_ETOOBIG);
}

TEST(rule_member_change_addresses_without_nul)
{
	struct client_request q;
	sample_member_request(&q, MEMBER_ADD_LEARNER);
	char addr[] = "10.0.0.1\0:7000";
	struct raw_request *x = raw_request(&q);
	ASSERT_EQ(decode_pb(&x->pb.base), 0);
	x->change.peer_addr = bin(addr, sizeof(addr) - 1);
	ASSERT_EQ(decode_pb(&x->pb.base), KEEL_EMALFORMED);
	x = raw_request(&q);
	x->change.client_addr = bin(addr, sizeof(addr) - 1);
	ASSERT_EQ(decode_pb(&x->pb.base), KEEL_EMALFORMED);
}

TEST(rule_member_change_add_needs_peer_addr)
{
	struct client_request q;
	sample_member_request(&q, MEMBER_ADD_LEARNER);
	q.change.peer_addr[0] = '\0';
	request_rejected(&q, KEEL_ERANGE);
	q.change.peer_addr[0] = 'h';
	q.change.client_addr[0] = '\0'; /* the client address is optional */
	request_rejected(&q, 0);
}

TEST(rule_request_transfer_to)
{
	struct client_request q;
	sample_transfer_request(&q);
	request_rejected(&q, 0);
	q.transfer_to = 0;
	request_rejected(&q, KEEL_ERANGE);
	/* Only a transfer carries one. */
	sample_request(&q, KV_PUT);
	q.transfer_to = 3;
	request_rejected(&q, KEEL_ERANGE);
	sample_member_request(&q, MEMBER_PROMOTE);
	q.transfer_to = 3;
	request_rejected(&q, KEEL_ERANGE);
}

/* ---- responses -------------------------------------------------------------------- */

struct raw_response {
	Keel__ClientResponse pb;
	Keel__NodeStatus status;
	struct raw_membership membership;
};

static struct raw_response *raw_response(const struct client_response *r)
{
	static struct raw_response x;
	keel__client_response__init(&x.pb);
	x.pb.request_id = r->request_id;
	x.pb.status = r->status;
	x.pb.stale = r->stale;
	x.pb.value = bin(r->value, r->value_bytes);
	x.pb.leader_id = r->leader_id;
	x.pb.leader_addr = addr_bin(r->leader_addr, sizeof(r->leader_addr));
	x.pb.message = addr_bin(r->message, sizeof(r->message));
	if (r->has_node_status) {
		const struct client_node_status *s = &r->node_status;
		keel__node_status__init(&x.status);
		x.status.id = s->id;
		x.status.role = s->role;
		x.status.term = s->term;
		x.status.leader = s->leader;
		x.status.commit_index = s->commit_index;
		x.status.applied_index = s->applied_index;
		x.status.last_index = s->last_index;
		raw_membership(&s->membership, &x.membership);
		x.status.membership = &x.membership.pb;
		x.pb.node_status = &x.status;
	}
	return &x;
}

static void response_rejected(const struct client_response *r, int want)
{
	ASSERT_EQ(codec_response_validate(r), want);
	ASSERT_EQ(decode_pb(&raw_response(r)->pb.base), want);
}

TEST(rule_response_status_known)
{
	struct client_response r;
	sample_response(&r, true);
	response_rejected(&r, 0);
	r.status = CLIENT_STATUS_MAX + 1;
	response_rejected(&r, KEEL_ERANGE);
}

TEST(rule_response_value_limit)
{
	static uint8_t v[KEEL_VALUE_BYTES_MAX + 1];
	struct client_response r;
	sample_response(&r, false);
	r.value = v;
	r.value_bytes = KEEL_VALUE_BYTES_MAX;
	response_rejected(&r, 0);
	r.value_bytes = KEEL_VALUE_BYTES_MAX + 1;
	response_rejected(&r, KEEL_ETOOBIG);
	r.value = NULL; /* in memory: bytes without a pointer */
	r.value_bytes = 1;
	ASSERT_EQ(codec_response_validate(&r), KEEL_ERANGE);
}

TEST(rule_response_strings_bounded)
{
	struct client_response r;
	sample_response(&r, false);
	memset(r.leader_addr, 'a', sizeof(r.leader_addr));
	response_rejected(&r, KEEL_ETOOBIG);
	sample_response(&r, false);
	memset(r.message, 'm', sizeof(r.message));
	response_rejected(&r, KEEL_ETOOBIG);
}

TEST(rule_response_strings_without_nul)
{
	struct client_response r;
	sample_response(&r, false);
	struct raw_response *x = raw_response(&r);
	x->pb.leader_addr = bin("a\0b", 3);
	ASSERT_EQ(decode_pb(&x->pb.base), KEEL_EMALFORMED);
	x = raw_response(&r);
	x->pb.message = bin("a\0b", 3);
	ASSERT_EQ(decode_pb(&x->pb.base), KEEL_EMALFORMED);
}

TEST(rule_response_node_status)
{
	struct client_response r;
	sample_response(&r, true);
	r.node_status.role = 0;
	response_rejected(&r, KEEL_ERANGE);
	r.node_status.role = RAFT_LEADER + 1;
	response_rejected(&r, KEEL_ERANGE);
	sample_response(&r, true);
	r.node_status.membership.members[0].id = 0;
	response_rejected(&r, KEEL_ERANGE);
	sample_response(&r, true);
	r.node_status.membership.member_count = 0; /* not joined: fine */
	response_rejected(&r, 0);
}

/* ---- hello ------------------------------------------------------------------------- */

static void hello_rejected(const struct codec_hello *h, int want)
{
	Keel__Hello pb;
	keel__hello__init(&pb);
	pb.protocol_version = h->protocol_version;
	pb.cluster_id = h->cluster_id;
	pb.node_id = h->node_id;
	pb.role = h->role;
	ASSERT_EQ(codec_hello_validate(h), want);
	ASSERT_EQ(decode_pb(&pb.base), want);
}

TEST(rule_hello_version)
{
	struct codec_hello h = { .protocol_version = CODEC_VERSION, .cluster_id = 9,
				 .node_id = 1, .role = HELLO_PEER };
	hello_rejected(&h, 0);
	h.protocol_version = 0;
	hello_rejected(&h, KEEL_EBADVERSION);
	h.protocol_version = CODEC_VERSION + 1;
	hello_rejected(&h, KEEL_EBADVERSION);
}

TEST(rule_hello_role_known)
{
	struct codec_hello h = { .protocol_version = CODEC_VERSION, .role = 0 };
	hello_rejected(&h, KEEL_ERANGE);
	h.role = HELLO_CLIENT + 1;
	hello_rejected(&h, KEEL_ERANGE);
}

TEST(rule_hello_peer_has_node_id)
{
	struct codec_hello h = { .protocol_version = CODEC_VERSION, .cluster_id = 9,
				 .node_id = 0, .role = HELLO_PEER };
	hello_rejected(&h, KEEL_ERANGE);
	h.role = HELLO_CLIENT;
	hello_rejected(&h, 0);
}

/* ---- unpacking is bounded ------------------------------------------------------------ */

struct peak_alloc {
	size_t live_bytes;
	size_t peak_bytes;
};

static void *peak_fn(void *ctx, void *ptr, size_t bytes)
{
	struct peak_alloc *a = ctx;
	/* Blocks carry their size in front, like the codec's budget does. */
	size_t *h = ptr != NULL ? (size_t *)ptr - 2 : NULL;
	if (h != NULL)
		a->live_bytes -= h[0];
	if (bytes == 0) {
		free(h);
		return NULL;
	}
	size_t *p = realloc(h, bytes + 2 * sizeof(size_t));
	ASSERT_TRUE(p != NULL);
	p[0] = bytes;
	a->live_bytes += bytes;
	if (a->live_bytes > a->peak_bytes)
		a->peak_bytes = a->live_bytes;
	return p + 2;
}

TEST(rule_unpack_memory_is_bounded)
{
	/* An append holding 400,000 empty entries: 2 bytes each on the wire,
	 * about 100 bytes each once unpacked. The budget stops it early. */
	uint8_t *w = wire_buf();
	const uint32_t entries = 400000;
	uint32_t body = entries * 2;
	size_t n = 0;
	w[n++] = 0x08; /* type */
	w[n++] = MSG_APPEND;
	w[n++] = 0x62; /* field 12 (append), length-delimited */
	for (uint32_t v = body; ; v >>= 7) { /* varint length */
		w[n++] = (uint8_t)((v & 0x7f) | (v >= 0x80 ? 0x80 : 0));
		if (v < 0x80)
			break;
	}
	for (uint32_t i = 0; i < entries; i++) {
		w[n++] = 0x2a; /* field 5 (entries), length-delimited */
		w[n++] = 0x00;
	}
	struct peak_alloc pa = { 0 };
	struct keel_alloc a = { .fn = peak_fn, .ctx = &pa };
	struct msg out;
	struct codec_decoded d;
	ASSERT_EQ(codec_msg_decode(w, (uint32_t)n, &a, &out, &d), KEEL_ETOOBIG);
	ASSERT_EQ(pa.live_bytes, 0);
	ASSERT_TRUE(pa.peak_bytes <= 2 * n + 1024 * 1024 + 4096);
}
