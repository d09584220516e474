/*
 * codec_msg.c: peer messages (struct msg) <-> PeerMsg frames.
 *
 * Invariants:
 *  1. The encoder asserts codec_msg_validate(m) == 0; the decoder checks it
 *     after unpacking, so a message that leaves valid arrives valid.
 *  2. A PeerMsg's body is the one its type names (vote for PREVOTE/VOTE,
 *     ...); a missing or different body is KEEL_EMALFORMED.
 *  3. Decoded entries live in d->extra (at most KEEL_APPEND_ENTRIES_MAX,
 *     checked before allocating); their data and snapshot chunks point into
 *     d->pb.
 *  4. The data of every ENTRY_CONFIG entry decodes as a valid membership.
 */
#include <string.h>

#include "assert.h"
#include "codec.h"
#include "codec_pb.h"
#include "err.h"

/* The body case each message type carries. */
static Keel__PeerMsg__BodyCase body_case_of(uint32_t type)
{
	switch (type) {
	case MSG_PREVOTE:
	case MSG_VOTE:
		return KEEL__PEER_MSG__BODY_VOTE;
	case MSG_PREVOTE_RESP:
	case MSG_VOTE_RESP:
		return KEEL__PEER_MSG__BODY_VOTE_RESP;
	case MSG_APPEND:
		return KEEL__PEER_MSG__BODY_APPEND;
	case MSG_APPEND_RESP:
		return KEEL__PEER_MSG__BODY_APPEND_RESP;
	case MSG_SNAPSHOT:
		return KEEL__PEER_MSG__BODY_SNAPSHOT;
	case MSG_SNAPSHOT_RESP:
		return KEEL__PEER_MSG__BODY_SNAPSHOT_RESP;
	case MSG_TIMEOUT_NOW:
		return KEEL__PEER_MSG__BODY_TIMEOUT_NOW;
	default:
		return KEEL__PEER_MSG__BODY__NOT_SET;
	}
}

/* ---- Encode ---------------------------------------------------------------- */

/* A message as protobuf, built on the encoder's stack; bounded by
 * KEEL_APPEND_ENTRIES_MAX entries (about 40 KiB). */
struct msg_pb {
	Keel__PeerMsg msg;
	Keel__Vote vote;
	Keel__VoteResp vote_resp;
	Keel__Append append;
	Keel__AppendResp append_resp;
	Keel__Snapshot snapshot;
	Keel__SnapshotResp snapshot_resp;
	Keel__TimeoutNow timeout_now;
	Keel__Membership membership;
	Keel__Member members[KEEL_MEMBERS_MAX];
	Keel__Member *member_ptrs[KEEL_MEMBERS_MAX];
	Keel__Entry entries[KEEL_APPEND_ENTRIES_MAX];
	Keel__Entry *entry_ptrs[KEEL_APPEND_ENTRIES_MAX];
};

static void append_to_pb(const struct msg_append *a, struct msg_pb *p)
{
	keel__append__init(&p->append);
	p->append.prev_index = a->prev_index;
	p->append.prev_term = a->prev_term;
	p->append.commit = a->commit;
	p->append.ctx = a->ctx;
	for (uint32_t i = 0; i < a->entry_count; i++) {
		const struct entry *e = &a->entries[i];
		Keel__Entry *pe = &p->entries[i];
		keel__entry__init(pe);
		pe->term = e->term;
		pe->index = e->index;
		pe->type = e->type;
		pe->data = codec_pb_bytes(e->data, e->data_bytes);
		p->entry_ptrs[i] = pe;
	}
	p->append.n_entries = a->entry_count;
	p->append.entries = p->entry_ptrs;
	p->msg.append = &p->append;
}

static void snapshot_to_pb(const struct msg_snapshot *s, struct msg_pb *p)
{
	keel__snapshot__init(&p->snapshot);
	p->snapshot.last_index = s->last_index;
	p->snapshot.last_term = s->last_term;
	codec_membership_to_pb(&s->membership, &p->membership, p->members,
			       p->member_ptrs);
	p->snapshot.membership = &p->membership;
	p->snapshot.offset = s->offset;
	p->snapshot.chunk = codec_pb_bytes(s->chunk, s->chunk_bytes);
	p->snapshot.done = s->done;
	p->msg.snapshot = &p->snapshot;
}

static void body_to_pb(const struct msg *m, struct msg_pb *p)
{
	switch (m->type) {
	case MSG_PREVOTE:
	case MSG_VOTE:
		keel__vote__init(&p->vote);
		p->vote.last_log_index = m->u.vote.last_log_index;
		p->vote.last_log_term = m->u.vote.last_log_term;
		p->vote.transfer = m->u.vote.transfer;
		p->msg.vote = &p->vote;
		break;
	case MSG_PREVOTE_RESP:
	case MSG_VOTE_RESP:
		keel__vote_resp__init(&p->vote_resp);
		p->vote_resp.granted = m->u.vote_resp.granted;
		p->msg.vote_resp = &p->vote_resp;
		break;
	case MSG_APPEND:
		append_to_pb(&m->u.append, p);
		break;
	case MSG_APPEND_RESP:
		keel__append_resp__init(&p->append_resp);
		p->append_resp.success = m->u.append_resp.success;
		p->append_resp.match_index = m->u.append_resp.match_index;
		p->append_resp.reject_index = m->u.append_resp.reject_index;
		p->append_resp.hint_index = m->u.append_resp.hint_index;
		p->append_resp.hint_term = m->u.append_resp.hint_term;
		p->append_resp.ctx = m->u.append_resp.ctx;
		p->msg.append_resp = &p->append_resp;
		break;
	case MSG_SNAPSHOT:
		snapshot_to_pb(&m->u.snapshot, p);
		break;
	case MSG_SNAPSHOT_RESP:
		keel__snapshot_resp__init(&p->snapshot_resp);
		p->snapshot_resp.last_index = m->u.snapshot_resp.last_index;
		p->snapshot_resp.next_offset = m->u.snapshot_resp.next_offset;
		p->snapshot_resp.done = m->u.snapshot_resp.done;
		p->snapshot_resp.rejected = m->u.snapshot_resp.rejected;
		p->msg.snapshot_resp = &p->snapshot_resp;
		break;
	case MSG_TIMEOUT_NOW:
		keel__timeout_now__init(&p->timeout_now);
		p->msg.timeout_now = &p->timeout_now;
		break;
	default:
		KEEL_UNREACHABLE();
	}
}

static void msg_to_pb(const struct msg *m, struct msg_pb *p)
{
	KEEL_ASSERT(codec_msg_validate(m) == 0);
	keel__peer_msg__init(&p->msg);
	p->msg.type = m->type;
	p->msg.from = m->from;
	p->msg.to = m->to;
	p->msg.term = m->term;
	p->msg.body_case = body_case_of(m->type);
	body_to_pb(m, p);
}

size_t codec_msg_encoded_bytes(const struct msg *m)
{
	struct msg_pb p;
	msg_to_pb(m, &p);
	return codec_pb_frame_bytes(&p.msg.base);
}

int codec_msg_encode(const struct msg *m, uint8_t *out, size_t cap)
{
	struct msg_pb p;
	msg_to_pb(m, &p);
	return codec_pb_frame(FRAME_PEER, &p.msg.base, out, cap);
}

/* ---- Decode ---------------------------------------------------------------- */

static int append_from_pb(const Keel__Append *pa,
			  const struct keel_alloc *alloc, struct msg_append *a,
			  struct entry **entries)
{
	a->prev_index = pa->prev_index;
	a->prev_term = pa->prev_term;
	a->commit = pa->commit;
	a->ctx = pa->ctx;
	if (pa->n_entries > KEEL_APPEND_ENTRIES_MAX)
		return KEEL_ETOOBIG;
	if (pa->n_entries == 0)
		return 0;
	struct entry *es = keel_malloc(alloc, pa->n_entries * sizeof(*es));
	if (es == NULL)
		return KEEL_ENOMEM;
	for (size_t i = 0; i < pa->n_entries; i++) {
		const Keel__Entry *pe = pa->entries[i];
		es[i].term = pe->term;
		es[i].index = pe->index;
		es[i].type = pe->type;
		es[i].data_bytes = codec_len32(pe->data.len);
		es[i].data = pe->data.data;
	}
	a->entry_count = (uint32_t)pa->n_entries;
	a->entries = es;
	*entries = es;
	return 0;
}

static int snapshot_from_pb(const Keel__Snapshot *ps, struct msg_snapshot *s)
{
	if (ps->membership == NULL)
		return KEEL_EMALFORMED;
	s->last_index = ps->last_index;
	s->last_term = ps->last_term;
	s->offset = ps->offset;
	s->chunk_bytes = codec_len32(ps->chunk.len);
	s->chunk = ps->chunk.data;
	s->done = ps->done;
	return codec_membership_from_pb(ps->membership, &s->membership);
}

static int body_from_pb(const Keel__PeerMsg *p, const struct keel_alloc *alloc,
			struct msg *m, struct entry **entries)
{
	switch (p->body_case) {
	case KEEL__PEER_MSG__BODY_VOTE:
		m->u.vote.last_log_index = p->vote->last_log_index;
		m->u.vote.last_log_term = p->vote->last_log_term;
		m->u.vote.transfer = p->vote->transfer;
		return 0;
	case KEEL__PEER_MSG__BODY_VOTE_RESP:
		m->u.vote_resp.granted = p->vote_resp->granted;
		return 0;
	case KEEL__PEER_MSG__BODY_APPEND:
		return append_from_pb(p->append, alloc, &m->u.append, entries);
	case KEEL__PEER_MSG__BODY_APPEND_RESP:
		m->u.append_resp.success = p->append_resp->success;
		m->u.append_resp.match_index = p->append_resp->match_index;
		m->u.append_resp.reject_index = p->append_resp->reject_index;
		m->u.append_resp.hint_index = p->append_resp->hint_index;
		m->u.append_resp.hint_term = p->append_resp->hint_term;
		m->u.append_resp.ctx = p->append_resp->ctx;
		return 0;
	case KEEL__PEER_MSG__BODY_SNAPSHOT:
		return snapshot_from_pb(p->snapshot, &m->u.snapshot);
	case KEEL__PEER_MSG__BODY_SNAPSHOT_RESP:
		m->u.snapshot_resp.last_index = p->snapshot_resp->last_index;
		m->u.snapshot_resp.next_offset = p->snapshot_resp->next_offset;
		m->u.snapshot_resp.done = p->snapshot_resp->done;
		m->u.snapshot_resp.rejected = p->snapshot_resp->rejected;
		return 0;
	case KEEL__PEER_MSG__BODY_TIMEOUT_NOW:
		return 0;
	default:
		return KEEL_EMALFORMED;
	}
}

/* Invariant 4: configuration entries carry valid memberships. */
static int config_entries_check(const struct msg *m,
				const struct keel_alloc *alloc)
{
	if (m->type != MSG_APPEND)
		return 0;
	for (uint32_t i = 0; i < m->u.append.entry_count; i++) {
		const struct entry *e = &m->u.append.entries[i];
		if (e->type != ENTRY_CONFIG)
			continue;
		struct membership cfg;
		int rc = codec_membership_decode_with(e->data, e->data_bytes,
						      alloc, &cfg);
		if (rc != 0)
			return rc;
	}
	return 0;
}

static int msg_from_pb(const Keel__PeerMsg *p, const struct keel_alloc *alloc,
		       struct msg *m, struct entry **entries)
{
	if (p->type == 0 || p->type > MSG_TYPE_MAX)
		return KEEL_EBADTYPE;
	if (p->body_case != body_case_of(p->type))
		return KEEL_EMALFORMED;
	m->type = p->type;
	m->from = p->from;
	m->to = p->to;
	m->term = p->term;
	int rc = body_from_pb(p, alloc, m, entries);
	if (rc != 0)
		return rc;
	rc = codec_msg_validate(m);
	if (rc != 0)
		return rc;
	return config_entries_check(m, alloc);
}

int codec_msg_decode(const uint8_t *payload, uint32_t n,
		     const struct keel_alloc *alloc, struct msg *m,
		     struct codec_decoded *d)
{
	ProtobufCMessage *pb;
	struct entry *entries = NULL;

	memset(m, 0, sizeof(*m));
	memset(d, 0, sizeof(*d));
	int rc = codec_pb_unpack(&keel__peer_msg__descriptor, alloc, payload, n,
				 &pb);
	if (rc != 0)
		return rc;
	rc = msg_from_pb((const Keel__PeerMsg *)pb, alloc, m, &entries);
	if (rc != 0) {
		keel_free(alloc, entries);
		codec_pb_free(alloc, pb);
		memset(m, 0, sizeof(*m));
		return rc;
	}
	if (alloc != NULL)
		d->alloc = *alloc;
	d->pb = pb;
	d->extra = entries;
	return 0;
}
