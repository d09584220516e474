/*
 * codec_client.c: hello and the client protocol (request, response) <->
 * frames.
 *
 * Invariants:
 *  1. Encoders assert codec_{hello,request,response}_validate; decoders
 *     check the same rules after unpacking.
 *  2. A request carries a command iff its kind is CLIENT_REQ_KV and a
 *     member change iff it is CLIENT_REQ_MEMBER; a response carries a node
 *     status iff has_node_status.
 *  3. Decoded keys and values point into d->pb; strings are copied and
 *     NUL-terminated.
 */
#include <string.h>

#include "assert.h"
#include "codec.h"
#include "codec_pb.h"
#include "err.h"

/* ---- Hello ------------------------------------------------------------------ */

static void hello_to_pb(const struct codec_hello *h, Keel__Hello *pb)
{
	KEEL_ASSERT(codec_hello_validate(h) == 0);
	keel__hello__init(pb);
	pb->protocol_version = h->protocol_version;
	pb->cluster_id = h->cluster_id;
	pb->node_id = h->node_id;
	pb->role = h->role;
}

size_t codec_hello_encoded_bytes(const struct codec_hello *h)
{
	Keel__Hello pb;
	hello_to_pb(h, &pb);
	return codec_pb_frame_bytes(&pb.base);
}

int codec_hello_encode(const struct codec_hello *h, uint8_t *out, size_t cap)
{
	Keel__Hello pb;
	hello_to_pb(h, &pb);
	return codec_pb_frame(FRAME_HELLO, &pb.base, out, cap);
}

int codec_hello_decode(const uint8_t *payload, uint32_t n,
		       struct codec_hello *h)
{
	ProtobufCMessage *pb;

	memset(h, 0, sizeof(*h));
	int rc = codec_pb_unpack(&keel__hello__descriptor, NULL, payload, n,
				 &pb);
	if (rc != 0)
		return rc;
	const Keel__Hello *p = (const Keel__Hello *)pb;
	h->protocol_version = p->protocol_version;
	h->cluster_id = p->cluster_id;
	h->node_id = p->node_id;
	h->role = p->role;
	codec_pb_free(NULL, pb);
	rc = codec_hello_validate(h);
	if (rc != 0)
		memset(h, 0, sizeof(*h));
	return rc;
}

/* ---- Request ------------------------------------------------------------------ */

struct request_pb {
	Keel__ClientRequest req;
	Keel__Command cmd;
	Keel__MemberChange change;
};

static ProtobufCBinaryData cstring_bytes(const char *s)
{
	return codec_pb_bytes(s, (uint32_t)strlen(s));
}

static void request_to_pb(const struct client_request *r,
			  struct request_pb *p)
{
	KEEL_ASSERT(codec_request_validate(r) == 0);
	keel__client_request__init(&p->req);
	p->req.request_id = r->request_id;
	p->req.kind = r->kind;
	p->req.consistency = r->consistency;
	p->req.transfer_to = r->transfer_to;
	if (r->kind == CLIENT_REQ_KV) {
		codec_command_to_pb(&r->cmd, &p->cmd);
		p->req.command = &p->cmd;
	}
	if (r->kind == CLIENT_REQ_MEMBER) {
		keel__member_change__init(&p->change);
		p->change.kind = r->change.kind;
		p->change.id = r->change.id;
		p->change.peer_addr = cstring_bytes(r->change.peer_addr);
		p->change.client_addr = cstring_bytes(r->change.client_addr);
		p->req.change = &p->change;
	}
}

size_t codec_request_encoded_bytes(const struct client_request *r)
{
	struct request_pb p;
	request_to_pb(r, &p);
	return codec_pb_frame_bytes(&p.req.base);
}

int codec_request_encode(const struct client_request *r, uint8_t *out,
			 size_t cap)
{
	struct request_pb p;
	request_to_pb(r, &p);
	return codec_pb_frame(FRAME_CLIENT_REQUEST, &p.req.base, out, cap);
}

static int member_change_from_pb(const Keel__MemberChange *p,
				 struct member_change *c)
{
	int rc = codec_pb_string_check(&p->peer_addr, sizeof(c->peer_addr));
	if (rc == 0)
		rc = codec_pb_string_check(&p->client_addr,
					   sizeof(c->client_addr));
	if (rc != 0)
		return rc;
	c->kind = p->kind;
	c->id = p->id;
	codec_pb_string_copy(c->peer_addr, sizeof(c->peer_addr), &p->peer_addr);
	codec_pb_string_copy(c->client_addr, sizeof(c->client_addr),
			     &p->client_addr);
	return 0;
}

static int request_from_pb(const Keel__ClientRequest *p,
			   struct client_request *r)
{
	r->request_id = p->request_id;
	r->kind = p->kind;
	r->consistency = p->consistency;
	r->transfer_to = p->transfer_to;
	if (p->kind == CLIENT_REQ_KV) {
		if (p->command == NULL)
			return KEEL_EMALFORMED;
		codec_command_from_pb(p->command, &r->cmd);
	} else if (p->command != NULL) {
		return KEEL_ERANGE;
	}
	if (p->kind == CLIENT_REQ_MEMBER) {
		if (p->change == NULL)
			return KEEL_EMALFORMED;
		int rc = member_change_from_pb(p->change, &r->change);
		if (rc != 0)
			return rc;
	} else if (p->change != NULL) {
		return KEEL_ERANGE;
	}
	return codec_request_validate(r);
}

/* Unpack payload as desc, convert it with from_pb into out (out_bytes, zeroed
 * first) and keep the protobuf in d. On failure frees it, zeroes out and d. */
static int decode_with(const ProtobufCMessageDescriptor *desc,
		       int (*from_pb)(const ProtobufCMessage *pb, void *out),
		       const uint8_t *payload, uint32_t n,
		       const struct keel_alloc *alloc, void *out,
		       size_t out_bytes, struct codec_decoded *d)
{
	ProtobufCMessage *pb;

	memset(out, 0, out_bytes);
	memset(d, 0, sizeof(*d));
	int rc = codec_pb_unpack(desc, alloc, payload, n, &pb);
	if (rc != 0)
		return rc;
	rc = from_pb(pb, out);
	if (rc != 0) {
		codec_pb_free(alloc, pb);
		memset(out, 0, out_bytes);
		return rc;
	}
	if (alloc != NULL)
		d->alloc = *alloc;
	d->pb = pb;
	return 0;
}

static int request_from_any(const ProtobufCMessage *pb, void *out)
{
	return request_from_pb((const Keel__ClientRequest *)pb, out);
}

int codec_request_decode(const uint8_t *payload, uint32_t n,
			 const struct keel_alloc *alloc,
			 struct client_request *r, struct codec_decoded *d)
{
	return decode_with(&keel__client_request__descriptor, request_from_any,
			   payload, n, alloc, r, sizeof(*r), d);
}

/* ---- Response ----------------------------------------------------------------- */

struct response_pb {
	Keel__ClientResponse resp;
	Keel__NodeStatus status;
	Keel__Membership membership;
	Keel__Member members[KEEL_MEMBERS_MAX];
	Keel__Member *member_ptrs[KEEL_MEMBERS_MAX];
};

static void node_status_to_pb(const struct client_node_status *s,
			      struct response_pb *p)
{
	keel__node_status__init(&p->status);
	p->status.id = s->id;
	p->status.role = s->role;
	p->status.term = s->term;
	p->status.leader = s->leader;
	p->status.commit_index = s->commit_index;
	p->status.applied_index = s->applied_index;
	p->status.last_index = s->last_index;
	codec_membership_to_pb(&s->membership, &p->membership, p->members,
			       p->member_ptrs);
	p->status.membership = &p->membership;
	p->resp.node_status = &p->status;
}

static void response_to_pb(const struct client_response *r,
			   struct response_pb *p)
{
	KEEL_ASSERT(codec_response_validate(r) == 0);
	keel__client_response__init(&p->resp);
	p->resp.request_id = r->request_id;
	p->resp.status = r->status;
	p->resp.stale = r->stale;
	p->resp.value = codec_pb_bytes(r->value, r->value_bytes);
	p->resp.leader_id = r->leader_id;
	p->resp.leader_addr =
		codec_pb_bytes(r->leader_addr, (uint32_t)strlen(r->leader_addr));
	p->resp.message =
		codec_pb_bytes(r->message, (uint32_t)strlen(r->message));
	p->resp.member_id = r->member_id;
	p->resp.cluster_id = r->cluster_id;
	if (r->has_node_status)
		node_status_to_pb(&r->node_status, p);
}

size_t codec_response_encoded_bytes(const struct client_response *r)
{
	struct response_pb p;
	response_to_pb(r, &p);
	return codec_pb_frame_bytes(&p.resp.base);
}

int codec_response_encode(const struct client_response *r, uint8_t *out,
			  size_t cap)
{
	struct response_pb p;
	response_to_pb(r, &p);
	return codec_pb_frame(FRAME_CLIENT_RESPONSE, &p.resp.base, out, cap);
}

static int node_status_from_pb(const Keel__NodeStatus *p,
			       struct client_node_status *s)
{
	s->id = p->id;
	s->role = p->role;
	s->term = p->term;
	s->leader = p->leader;
	s->commit_index = p->commit_index;
	s->applied_index = p->applied_index;
	s->last_index = p->last_index;
	/* No membership, or an empty one, is a node that has not joined. */
	if (p->membership == NULL)
		return 0;
	if (p->membership->n_members == 0) {
		s->membership.next_id = p->membership->next_id;
		return 0;
	}
	return codec_membership_from_pb(p->membership, &s->membership);
}

static int response_from_pb(const Keel__ClientResponse *p,
			    struct client_response *r)
{
	r->request_id = p->request_id;
	r->status = p->status;
	r->stale = p->stale;
	r->value_bytes = codec_len32(p->value.len);
	r->value = p->value.data;
	r->leader_id = p->leader_id;
	r->member_id = p->member_id;
	r->cluster_id = p->cluster_id;
	int rc = codec_pb_string_check(&p->leader_addr, sizeof(r->leader_addr));
	if (rc == 0)
		rc = codec_pb_string_check(&p->message, sizeof(r->message));
	if (rc != 0)
		return rc;
	codec_pb_string_copy(r->leader_addr, sizeof(r->leader_addr),
			     &p->leader_addr);
	codec_pb_string_copy(r->message, sizeof(r->message), &p->message);
	if (p->node_status != NULL) {
		r->has_node_status = true;
		rc = node_status_from_pb(p->node_status, &r->node_status);
		if (rc != 0)
			return rc;
	}
	return codec_response_validate(r);
}

static int response_from_any(const ProtobufCMessage *pb, void *out)
{
	return response_from_pb((const Keel__ClientResponse *)pb, out);
}

int codec_response_decode(const uint8_t *payload, uint32_t n,
			  const struct keel_alloc *alloc,
			  struct client_response *r, struct codec_decoded *d)
{
	return decode_with(&keel__client_response__descriptor, response_from_any,
			   payload, n, alloc, r, sizeof(*r), d);
}
