/* fuzz_eq.c: deep equality of decoded values for the fuzz harnesses. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

_Noreturn void fuzz_fail(const char *expr, const char *file, int line)
{
	fprintf(stderr, "fuzz: property failed: %s at %s:%d\n", expr, file, line);
	fflush(stderr);
	abort();
}

static bool bytes_eq(const uint8_t *a, uint32_t an, const uint8_t *b, uint32_t bn)
{
	return an == bn && (an == 0 || memcmp(a, b, an) == 0);
}

bool fuzz_membership_eq(const struct membership *a, const struct membership *b)
{
	if (a->member_count != b->member_count || a->next_id != b->next_id)
		return false;
	for (uint32_t i = 0; i < a->member_count; i++) {
		const struct member *x = &a->members[i], *y = &b->members[i];
		if (x->id != y->id || x->role != y->role ||
		    strcmp(x->peer_addr, y->peer_addr) != 0 ||
		    strcmp(x->client_addr, y->client_addr) != 0)
			return false;
	}
	return true;
}

bool fuzz_command_eq(const struct kv_command *a, const struct kv_command *b)
{
	return a->client_id == b->client_id && a->seq == b->seq &&
	       a->op == b->op && a->cas_absent == b->cas_absent &&
	       bytes_eq(a->key, a->key_bytes, b->key, b->key_bytes) &&
	       bytes_eq(a->value, a->value_bytes, b->value, b->value_bytes) &&
	       bytes_eq(a->expected, a->expected_bytes, b->expected,
			b->expected_bytes);
}

static bool append_eq(const struct msg_append *a, const struct msg_append *b)
{
	if (a->prev_index != b->prev_index || a->prev_term != b->prev_term ||
	    a->commit != b->commit || a->ctx != b->ctx ||
	    a->entry_count != b->entry_count)
		return false;
	for (uint32_t i = 0; i < a->entry_count; i++) {
		const struct entry *x = &a->entries[i], *y = &b->entries[i];
		if (x->term != y->term || x->index != y->index ||
		    x->type != y->type ||
		    !bytes_eq(x->data, x->data_bytes, y->data, y->data_bytes))
			return false;
	}
	return true;
}

static bool snapshot_eq(const struct msg_snapshot *a, const struct msg_snapshot *b)
{
	return a->last_index == b->last_index && a->last_term == b->last_term &&
	       fuzz_membership_eq(&a->membership, &b->membership) &&
	       a->offset == b->offset && a->done == b->done &&
	       bytes_eq(a->chunk, a->chunk_bytes, b->chunk, b->chunk_bytes);
}

static bool body_eq(const struct msg *a, const struct msg *b)
{
	switch (a->type) {
	case MSG_PREVOTE:
	case MSG_VOTE:
		return a->u.vote.last_log_index == b->u.vote.last_log_index &&
		       a->u.vote.last_log_term == b->u.vote.last_log_term &&
		       a->u.vote.transfer == b->u.vote.transfer;
	case MSG_PREVOTE_RESP:
	case MSG_VOTE_RESP:
		return a->u.vote_resp.granted == b->u.vote_resp.granted;
	case MSG_APPEND:
		return append_eq(&a->u.append, &b->u.append);
	case MSG_APPEND_RESP:
		return a->u.append_resp.success == b->u.append_resp.success &&
		       a->u.append_resp.match_index == b->u.append_resp.match_index &&
		       a->u.append_resp.reject_index == b->u.append_resp.reject_index &&
		       a->u.append_resp.hint_index == b->u.append_resp.hint_index &&
		       a->u.append_resp.hint_term == b->u.append_resp.hint_term &&
		       a->u.append_resp.ctx == b->u.append_resp.ctx;
	case MSG_SNAPSHOT:
		return snapshot_eq(&a->u.snapshot, &b->u.snapshot);
	case MSG_SNAPSHOT_RESP:
		return a->u.snapshot_resp.last_index == b->u.snapshot_resp.last_index &&
		       a->u.snapshot_resp.next_offset == b->u.snapshot_resp.next_offset &&
		       a->u.snapshot_resp.done == b->u.snapshot_resp.done &&
		       a->u.snapshot_resp.rejected == b->u.snapshot_resp.rejected;
	case MSG_TIMEOUT_NOW:
		return true;
	default:
		return false;
	}
}

bool fuzz_msg_eq(const struct msg *a, const struct msg *b)
{
	return a->type == b->type && a->from == b->from && a->to == b->to &&
	       a->term == b->term && body_eq(a, b);
}

bool fuzz_hello_eq(const struct codec_hello *a, const struct codec_hello *b)
{
	return a->protocol_version == b->protocol_version &&
	       a->cluster_id == b->cluster_id && a->node_id == b->node_id &&
	       a->role == b->role;
}

static bool change_eq(const struct member_change *a,
		      const struct member_change *b)
{
	return a->kind == b->kind && a->id == b->id &&
	       strcmp(a->peer_addr, b->peer_addr) == 0 &&
	       strcmp(a->client_addr, b->client_addr) == 0;
}

bool fuzz_request_eq(const struct client_request *a,
		     const struct client_request *b)
{
	return a->request_id == b->request_id && a->kind == b->kind &&
	       a->consistency == b->consistency &&
	       a->transfer_to == b->transfer_to &&
	       fuzz_command_eq(&a->cmd, &b->cmd) &&
	       change_eq(&a->change, &b->change);
}

static bool node_status_eq(const struct client_node_status *a,
			   const struct client_node_status *b)
{
	return a->id == b->id && a->role == b->role && a->term == b->term &&
	       a->leader == b->leader && a->commit_index == b->commit_index &&
	       a->applied_index == b->applied_index &&
	       a->last_index == b->last_index &&
	       fuzz_membership_eq(&a->membership, &b->membership);
}

bool fuzz_response_eq(const struct client_response *a,
		      const struct client_response *b)
{
	return a->request_id == b->request_id && a->status == b->status &&
	       a->stale == b->stale && a->leader_id == b->leader_id &&
	       a->member_id == b->member_id && a->cluster_id == b->cluster_id &&
	       bytes_eq(a->value, a->value_bytes, b->value, b->value_bytes) &&
	       strcmp(a->leader_addr, b->leader_addr) == 0 &&
	       strcmp(a->message, b->message) == 0 &&
	       a->has_node_status == b->has_node_status &&
	       (!a->has_node_status ||
		node_status_eq(&a->node_status, &b->node_status));
}
