/*
 * members.c: membership changes and leadership transfer over the client
 * protocol, and the node following its active membership.
 *
 * A CLIENT_REQ_MEMBER on the leader becomes raft_change(); the client is
 * answered once the change's config entry is applied locally (it is then
 * committed), with the member's id and the cluster id, so a joining node
 * learns both from a committed entry. Refusals map to statuses a client can
 * act on: NOT_LEADER (with a hint), BUSY (KEEL_EBUSY: another change is in
 * flight or the leader's first entry has not committed; KEEL_ESTATE: the
 * learner has not caught up; retry), BAD_REQUEST with the reason otherwise.
 *
 * Invariants:
 *   1. a waiting change is answered OK only once applied_done reaches its
 *      entry's index while this node stayed leader, or, when leadership is
 *      lost, if its own entry (index and term) is committed; otherwise
 *      UNAVAILABLE (the entry may have been overwritten);
 *   2. the peer transport is reset to each new active membership (its
 *      members compared with the last one set) before the next loop
 *      iteration.
 */
#include <string.h>

#include "../core/assert.h"
#include "../core/err.h"
#include "../io_real/log.h"
#include "clients.h"
#include "server.h"


static const char *change_name(uint32_t kind)
{
	switch (kind) {
	case MEMBER_ADD_LEARNER:
		return "add learner";
	case MEMBER_PROMOTE:
		return "promote";
	case MEMBER_REMOVE:
		return "remove";
	default:
		return "change";
	}
}

/* Status and message for a refused raft_change. */
static uint32_t change_error_status(int rc, char *why, size_t why_bytes)
{
	const char *w;
	uint32_t st = CLIENT_BAD_REQUEST;
	switch (rc) {
	case KEEL_ENOTLEADER:
		st = CLIENT_NOT_LEADER;
		w = "membership changes go to the leader";
		break;
	case KEEL_EBUSY:
		st = CLIENT_BUSY;
		w = "another membership change or a leadership transfer is in progress, or this leader's first entry has not committed; retry";
		break;
	case KEEL_ESTATE:
		st = CLIENT_BUSY;
		w = "the learner has not caught up with the log yet; retry";
		break;
	case KEEL_ENOTFOUND:
		w = "no such member";
		break;
	case KEEL_EEXIST:
		w = "id in use, or that member is already a voter";
		break;
	case KEEL_ETOOBIG:
		w = "the membership is full (16 members at most)";
		break;
	case KEEL_EINVAL:
		w = "refused: that would remove the last voter, or an address is malformed";
		break;
	case KEEL_ENOMEM:
		st = CLIENT_BUSY;
		w = "out of memory";
		break;
	default:
		w = keel_err_msg(rc);
		break;
	}
	snprintf(why, why_bytes, "%s", w);
	return st;
}

void server_member_request(struct server *s, struct cconn *c,
			   const struct client_request *req)
{
	if (s->role != RAFT_LEADER) {
		server_respond_direct(s, c, req->request_id, CLIENT_NOT_LEADER,
				      "membership changes go to the leader");
		return;
	}
	if (s->member_wait_count == SERVER_MEMBER_WAITS_MAX) {
		server_respond_direct(s, c, req->request_id, CLIENT_BUSY,
				      "too many membership changes waiting; retry");
		return;
	}
	struct pending *p = server_new_pending(s, c, PENDING_MEMBER,
					       req->request_id);
	if (p == NULL)
		return;
	uint64_t index = 0;
	keel_node_id id = KEEL_NODE_NONE;
	int rc = raft_change(s->raft, &req->change, &index, &id);
	if (rc != 0) {
		char why[128];
		uint32_t st = change_error_status(rc, why, sizeof why);
		LOG_DEBUG("membership change (%s %llu) refused: %s",
			  change_name(req->change.kind),
			  (unsigned long long)req->change.id, keel_err_name(rc));
		server_respond(s, p, st, NULL, 0, why);
		return;
	}
	p->client_id = id;
	if (index == 0) { /* an add of a known peer address: nothing appended */
		server_respond(s, p, CLIENT_OK, NULL, 0, "already a member");
		return;
	}
	LOG_INFO("membership change proposed at index %llu: %s node %llu%s%s",
		 (unsigned long long)index, change_name(req->change.kind),
		 (unsigned long long)id,
		 req->change.kind == MEMBER_ADD_LEARNER ? " at " : "",
		 req->change.kind == MEMBER_ADD_LEARNER ? req->change.peer_addr : "");
	p->read_index = index;
	p->seq = raft_term_at(s->raft, index); /* to recognise it later */
	s->member_wait[s->member_wait_count++] = pending_token(&s->pending, p);
}

void server_transfer_request(struct server *s, struct cconn *c,
			     const struct client_request *req)
{
	if (s->role != RAFT_LEADER) {
		server_respond_direct(s, c, req->request_id, CLIENT_NOT_LEADER,
				      "leadership transfers go to the leader");
		return;
	}
	if (req->transfer_to == s->id) {
		server_respond_direct(s, c, req->request_id, CLIENT_OK,
				      "already the leader");
		return;
	}
	int rc = raft_transfer_leader(s->raft, req->transfer_to);
	if (rc == 0) {
		LOG_INFO("transferring leadership to %llu (asked by a client)",
			 (unsigned long long)req->transfer_to);
		server_respond_direct(s, c, req->request_id, CLIENT_OK,
				      "transfer started");
	} else if (rc == KEEL_ENOTLEADER) {
		server_respond_direct(s, c, req->request_id, CLIENT_NOT_LEADER,
				      "leadership transfers go to the leader");
	} else {
		server_respond_direct(s, c, req->request_id, CLIENT_BAD_REQUEST,
				      rc == KEEL_EINVAL ? "that node is not a voter" :
							  keel_err_msg(rc));
	}
}

void server_members_applied(struct server *s)
{
	uint32_t keep = 0;
	for (uint32_t i = 0; i < s->member_wait_count; i++) {
		uint64_t tok = s->member_wait[i];
		struct pending *p = pending_by_token(&s->pending, tok);
		if (p == NULL || p->kind != PENDING_MEMBER)
			continue; /* answered meanwhile (connection gone...) */
		if (p->read_index <= s->applied_done) { /* invariant 1 */
			server_respond(s, p, CLIENT_OK, NULL, 0, "");
			continue;
		}
		s->member_wait[keep++] = tok;
	}
	s->member_wait_count = keep;
}

/* Leadership lost. A change whose own entry (same index and term) is
 * committed is done: a leader that removed itself steps down exactly when
 * its removal commits (raft M5), before this node applied it. Any other
 * change may have been overwritten: outcome unknown. */
void server_members_fail(struct server *s)
{
	struct raft_status st;
	raft_status(s->raft, &st);
	for (uint32_t i = 0; i < s->member_wait_count; i++) {
		struct pending *p = pending_by_token(&s->pending, s->member_wait[i]);
		if (p == NULL || p->kind != PENDING_MEMBER)
			continue;
		if (p->read_index <= st.commit && p->seq != 0 &&
		    raft_term_at(s->raft, p->read_index) == p->seq)
			server_respond(s, p, CLIENT_OK, NULL, 0, "");
		else
			server_respond(s, p, CLIENT_UNAVAILABLE, NULL, 0,
				       "leadership lost before the change committed: outcome unknown");
	}
	s->member_wait_count = 0;
}

static uint32_t role_in(const struct membership *m, keel_node_id id)
{
	for (uint32_t i = 0; i < m->member_count; i++)
		if (m->members[i].id == id)
			return m->members[i].role;
	return 0;
}

static bool same_members(const struct membership *a, const struct membership *b)
{
	if (a->member_count != b->member_count)
		return false;
	for (uint32_t i = 0; i < a->member_count; i++) {
		const struct member *x = &a->members[i], *y = &b->members[i];
		if (x->id != y->id || x->role != y->role ||
		    strcmp(x->peer_addr, y->peer_addr) != 0)
			return false;
	}
	return true;
}

void server_members_follow(struct server *s)
{
	struct raft_status st;
	raft_status(s->raft, &st);
	/* Compare the members themselves: a snapshot install changes them
	 * without a config entry (config_index 0). */
	if (s->peers_known && !s->peers_dirty &&
	    same_members(&st.membership, &s->peers_membership))
		return;
	s->peers_membership = st.membership;
	s->peers_known = true;
	int rc = net_update_peers(&s->net, &st.membership);
	s->peers_dirty = rc == KEEL_EBUSY;
	uint32_t role = role_in(&st.membership, s->id);
	uint32_t before = __atomic_load_n(&s->self_role, __ATOMIC_RELAXED);
	if (role != before) {
		if (role == 0 && st.membership.member_count > 0)
			LOG_WARN("this node was removed from the membership; it keeps running as a non-member (it takes no part in elections or commits); stop it and remove its data directory");
		else if (role == MEMBER_VOTER && before == MEMBER_LEARNER)
			LOG_INFO("this node was promoted to voter");
		else if (role == MEMBER_LEARNER)
			LOG_INFO("this node is a learner");
		__atomic_store_n(&s->self_role, role, __ATOMIC_RELAXED);
	}
	s->self_member = role != 0;
}
