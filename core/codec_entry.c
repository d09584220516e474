/*
 * codec_entry.c: the payloads that live inside log entries and snapshots:
 * command batches (ENTRY_COMMAND) and memberships (ENTRY_CONFIG), plus their
 * protobuf conversions shared with the peer and client messages.
 *
 * Invariants:
 *  1. Encoders assert codec_batch_validate / codec_membership_validate on
 *     what they are given; decoders check the same rules after unpacking.
 *  2. Decoded commands point into the unpacked protobuf held by
 *     codec_decoded; a decoded membership is copied whole (fixed size).
 */
#include <string.h>

#include "assert.h"
#include "codec.h"
#include "codec_pb.h"
#include "err.h"

static ProtobufCBinaryData cstring_of(const char *s)
{
	return codec_pb_bytes(s, (uint32_t)strlen(s));
}

/* ---- Membership ------------------------------------------------------------- */

void codec_membership_to_pb(const struct membership *m, Keel__Membership *pb,
			    Keel__Member *members, Keel__Member **ptrs)
{
	KEEL_ASSERT(m->member_count <= KEEL_MEMBERS_MAX);
	keel__membership__init(pb);
	for (uint32_t i = 0; i < m->member_count; i++) {
		const struct member *x = &m->members[i];
		keel__member__init(&members[i]);
		members[i].id = x->id;
		members[i].role = x->role;
		members[i].peer_addr = cstring_of(x->peer_addr);
		members[i].client_addr = cstring_of(x->client_addr);
		ptrs[i] = &members[i];
	}
	pb->n_members = m->member_count;
	pb->members = ptrs;
	pb->next_id = m->next_id;
}

int codec_membership_from_pb(const Keel__Membership *pb, struct membership *m)
{
	memset(m, 0, sizeof(*m));
	if (pb->n_members > KEEL_MEMBERS_MAX)
		return KEEL_ETOOBIG;
	for (size_t i = 0; i < pb->n_members; i++) {
		const Keel__Member *x = pb->members[i];
		int rc = codec_pb_string_check(&x->peer_addr, KEEL_ADDR_BYTES_MAX);
		if (rc == 0)
			rc = codec_pb_string_check(&x->client_addr,
						   KEEL_ADDR_BYTES_MAX);
		if (rc != 0)
			return rc;
		m->members[i].id = x->id;
		m->members[i].role = x->role;
		codec_pb_string_copy(m->members[i].peer_addr,
				     KEEL_ADDR_BYTES_MAX, &x->peer_addr);
		codec_pb_string_copy(m->members[i].client_addr,
				     KEEL_ADDR_BYTES_MAX, &x->client_addr);
	}
	m->member_count = (uint32_t)pb->n_members;
	m->next_id = pb->next_id;
	return codec_membership_validate(m);
}

size_t codec_membership_encoded_bytes(const struct membership *m)
{
	Keel__Membership pb;
	Keel__Member members[KEEL_MEMBERS_MAX];
	Keel__Member *ptrs[KEEL_MEMBERS_MAX];

	KEEL_ASSERT(codec_membership_validate(m) == 0);
	codec_membership_to_pb(m, &pb, members, ptrs);
	return keel__membership__get_packed_size(&pb);
}

int codec_membership_encode(const struct membership *m, uint8_t *out,
			    size_t cap)
{
	Keel__Membership pb;
	Keel__Member members[KEEL_MEMBERS_MAX];
	Keel__Member *ptrs[KEEL_MEMBERS_MAX];

	KEEL_ASSERT(codec_membership_validate(m) == 0);
	codec_membership_to_pb(m, &pb, members, ptrs);
	size_t n = keel__membership__get_packed_size(&pb);
	if (n > cap)
		return KEEL_ETOOBIG;
	size_t packed = keel__membership__pack(&pb, out);
	KEEL_ASSERT(packed == n);
	return (int)n;
}

int codec_membership_decode_with(const uint8_t *p, uint32_t n,
				 const struct keel_alloc *alloc,
				 struct membership *m)
{
	ProtobufCMessage *pb;
	int rc = codec_pb_unpack(&keel__membership__descriptor, alloc, p, n,
				 &pb);
	if (rc != 0)
		return rc;
	rc = codec_membership_from_pb((const Keel__Membership *)pb, m);
	codec_pb_free(alloc, pb);
	return rc;
}

int codec_membership_decode(const uint8_t *p, uint32_t n,
			    struct membership *m)
{
	return codec_membership_decode_with(p, n, NULL, m);
}

/* ---- Commands and batches ---------------------------------------------------- */

void codec_command_to_pb(const struct kv_command *c, Keel__Command *pb)
{
	keel__command__init(pb);
	pb->client_id = c->client_id;
	pb->seq = c->seq;
	pb->op = c->op;
	pb->key = codec_pb_bytes(c->key, c->key_bytes);
	pb->value = codec_pb_bytes(c->value, c->value_bytes);
	pb->cas_absent = c->cas_absent;
	pb->expected = codec_pb_bytes(c->expected, c->expected_bytes);
}

void codec_command_from_pb(const Keel__Command *pb, struct kv_command *c)
{
	memset(c, 0, sizeof(*c));
	c->client_id = pb->client_id;
	c->seq = pb->seq;
	c->op = pb->op;
	c->key_bytes = codec_len32(pb->key.len);
	c->key = pb->key.data;
	c->value_bytes = codec_len32(pb->value.len);
	c->value = pb->value.data;
	c->cas_absent = pb->cas_absent;
	c->expected_bytes = codec_len32(pb->expected.len);
	c->expected = pb->expected.data;
}

/* A batch as protobuf, built on the encoder's stack (bounded by
 * KEEL_BATCH_COMMANDS_MAX). */
struct batch_pb {
	Keel__Batch batch;
	Keel__Command cmds[KEEL_BATCH_COMMANDS_MAX];
	Keel__Command *ptrs[KEEL_BATCH_COMMANDS_MAX];
};

static void batch_to_pb(const struct kv_command *cmds, uint32_t count,
			struct batch_pb *b)
{
	KEEL_ASSERT(codec_batch_validate(cmds, count) == 0);
	keel__batch__init(&b->batch);
	for (uint32_t i = 0; i < count; i++) {
		codec_command_to_pb(&cmds[i], &b->cmds[i]);
		b->ptrs[i] = &b->cmds[i];
	}
	b->batch.n_commands = count;
	b->batch.commands = b->ptrs;
}

size_t codec_batch_encoded_bytes(const struct kv_command *cmds, uint32_t count)
{
	struct batch_pb b;
	batch_to_pb(cmds, count, &b);
	return keel__batch__get_packed_size(&b.batch);
}

int codec_batch_encode(const struct kv_command *cmds, uint32_t count,
		       uint8_t *out, size_t cap)
{
	struct batch_pb b;
	batch_to_pb(cmds, count, &b);
	size_t n = keel__batch__get_packed_size(&b.batch);
	if (n > cap || n > KEEL_ENTRY_BYTES_MAX)
		return KEEL_ETOOBIG;
	size_t packed = keel__batch__pack(&b.batch, out);
	KEEL_ASSERT(packed == n);
	return (int)n;
}

int codec_batch_decode(const uint8_t *p, uint32_t n,
		       const struct keel_alloc *alloc, struct kv_command *cmds,
		       uint32_t *count, struct codec_decoded *d)
{
	ProtobufCMessage *pb;

	memset(d, 0, sizeof(*d));
	*count = 0;
	if (n > KEEL_ENTRY_BYTES_MAX)
		return KEEL_ETOOBIG;
	int rc = codec_pb_unpack(&keel__batch__descriptor, alloc, p, n, &pb);
	if (rc != 0)
		return rc;
	const Keel__Batch *b = (const Keel__Batch *)pb;
	if (b->n_commands > KEEL_BATCH_COMMANDS_MAX) {
		rc = KEEL_ETOOBIG;
		goto out_free;
	}
	for (size_t i = 0; i < b->n_commands; i++)
		codec_command_from_pb(b->commands[i], &cmds[i]);
	rc = codec_batch_validate(cmds, (uint32_t)b->n_commands);
	if (rc != 0)
		goto out_free;
	*count = (uint32_t)b->n_commands;
	if (alloc != NULL)
		d->alloc = *alloc;
	d->pb = pb;
	return 0;
out_free:
	codec_pb_free(alloc, pb);
	return rc;
}

void codec_decoded_free(struct codec_decoded *d)
{
	codec_pb_free(&d->alloc, d->pb);
	keel_free(&d->alloc, d->extra);
	d->pb = NULL;
	d->extra = NULL;
}
