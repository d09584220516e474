/*
 * gen_corpus.c: writes the seed corpora under fuzz/corpus/<target>/: valid
 * encodings of every message type, made by the codec's own encoders from the
 * test samples (tests/codec_samples.h). Deterministic: running it again
 * rewrites the same bytes.
 *
 *   gen_corpus DIR      (make fuzz-corpus runs: gen_corpus fuzz/corpus)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../core/err.h"
#include "../core/record.h"
#include "../core/snapshot.h"
#include "../tests/codec_samples.h"

#define GEN_BYTES_MAX (64u * 1024u)

static const char *root;
static uint8_t out[GEN_BYTES_MAX];
static int failures;

static void put(const char *target, const char *name, const uint8_t *p, size_t n)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/%s", root, target);
	if (mkdir(path, 0777) != 0 && errno != EEXIST) {
		perror(path);
		failures++;
		return;
	}
	snprintf(path, sizeof(path), "%s/%s/seed-%s", root, target, name);
	FILE *f = fopen(path, "wb");
	if (f == NULL || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
		perror(path);
		failures++;
	}
}

/* A frame n bytes long at out: its payload goes to target, the frame to
 * the frame corpus (behind a 2-byte chunking seed). */
static void put_frame(const char *target, const char *name, int n)
{
	if (n <= 0) {
		fprintf(stderr, "gen_corpus: %s/%s: %s\n", target, name,
			keel_err_name(n));
		failures++;
		return;
	}
	put(target, name, out + CODEC_HEADER_BYTES, (size_t)n - CODEC_FRAME_OVERHEAD);
	static uint8_t framed[GEN_BYTES_MAX + 2];
	framed[0] = (uint8_t)n | 0x80; /* fuzz_frame: fix checksums */
	framed[1] = (uint8_t)strlen(name);
	memcpy(framed + 2, out, (size_t)n);
	char fname[256];
	snprintf(fname, sizeof(fname), "%s-%s", target, name);
	put("frame", fname, framed, (size_t)n + 2);
}

static void gen_msgs(void)
{
	static const struct { uint32_t type; const char *name; } simple[] = {
		{ MSG_PREVOTE, "prevote" }, { MSG_PREVOTE_RESP, "prevote-resp" },
		{ MSG_VOTE, "vote" }, { MSG_VOTE_RESP, "vote-resp" },
		{ MSG_APPEND_RESP, "append-resp-reject" },
		{ MSG_SNAPSHOT_RESP, "snapshot-resp" },
		{ MSG_TIMEOUT_NOW, "timeout-now" },
	};
	struct msg m;
	for (size_t i = 0; i < sizeof(simple) / sizeof(simple[0]); i++) {
		sample_simple_msg(&m, simple[i].type);
		put_frame("msg", simple[i].name, codec_msg_encode(&m, out, sizeof(out)));
	}
	sample_simple_msg(&m, MSG_APPEND_RESP);
	m.u.append_resp = (struct msg_append_resp){ .success = true, .match_index = 43, .ctx = 2 };
	put_frame("msg", "append-resp-ok", codec_msg_encode(&m, out, sizeof(out)));

	struct entry entries[3];
	uint8_t cfg[1024];
	sample_append(&m, entries, cfg, sizeof(cfg));
	put_frame("msg", "append-3-entries", codec_msg_encode(&m, out, sizeof(out)));
	m.u.append.entry_count = 0;
	put_frame("msg", "heartbeat", codec_msg_encode(&m, out, sizeof(out)));
	sample_msg_header(&m, MSG_APPEND);
	m.u.append.entry_count = 1;
	m.u.append.entries = entries;
	entries[0] = (struct entry){ .term = 7, .index = 1, .type = ENTRY_NOOP };
	put_frame("msg", "append-first", codec_msg_encode(&m, out, sizeof(out)));
	sample_snapshot(&m);
	put_frame("msg", "snapshot", codec_msg_encode(&m, out, sizeof(out)));
}

static void gen_client(void)
{
	struct codec_hello h = { .protocol_version = CODEC_VERSION,
				 .cluster_id = 0x1234567890abcdefull,
				 .node_id = 2, .role = HELLO_PEER };
	put_frame("hello", "peer", codec_hello_encode(&h, out, sizeof(out)));
	h = (struct codec_hello){ .protocol_version = CODEC_VERSION, .role = HELLO_CLIENT };
	put_frame("hello", "client", codec_hello_encode(&h, out, sizeof(out)));

	static const struct { uint32_t op; const char *name; } ops[] = {
		{ KV_GET, "get" }, { KV_PUT, "put" }, { KV_DEL, "del" },
		{ KV_CAS, "cas" }, { KV_APPEND, "append" },
	};
	struct client_request r;
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		sample_request(&r, ops[i].op);
		put_frame("request", ops[i].name, codec_request_encode(&r, out, sizeof(out)));
	}
	sample_request(&r, KV_CAS);
	r.cmd.cas_absent = true;
	r.cmd.expected_bytes = 0;
	put_frame("request", "cas-absent", codec_request_encode(&r, out, sizeof(out)));
	memset(&r, 0, sizeof(r));
	r.request_id = 9;
	r.kind = CLIENT_REQ_STATUS;
	put_frame("request", "status", codec_request_encode(&r, out, sizeof(out)));
	static const struct { uint32_t kind; const char *name; } changes[] = {
		{ MEMBER_ADD_LEARNER, "member-add" },
		{ MEMBER_PROMOTE, "member-promote" },
		{ MEMBER_REMOVE, "member-remove" },
	};
	for (size_t i = 0; i < sizeof(changes) / sizeof(changes[0]); i++) {
		sample_member_request(&r, changes[i].kind);
		put_frame("request", changes[i].name, codec_request_encode(&r, out, sizeof(out)));
	}
	sample_transfer_request(&r);
	put_frame("request", "transfer", codec_request_encode(&r, out, sizeof(out)));

	static struct client_response rs;
	sample_response(&rs, true);
	put_frame("response", "status", codec_response_encode(&rs, out, sizeof(out)));
	sample_response(&rs, false);
	put_frame("response", "not-leader", codec_response_encode(&rs, out, sizeof(out)));
}

static void gen_entries(void)
{
	struct kv_command cmds[4];
	sample_command(&cmds[0], KV_PUT);
	sample_command(&cmds[1], KV_DEL);
	sample_command(&cmds[2], KV_CAS);
	sample_command(&cmds[3], KV_APPEND);
	int n = codec_batch_encode(cmds, 4, out, sizeof(out));
	if (n > 0)
		put("batch", "four", out, (size_t)n);
	n = codec_batch_encode(cmds, 1, out, sizeof(out));
	if (n > 0)
		put("batch", "put", out, (size_t)n);

	struct membership m;
	sample_membership(&m);
	n = codec_membership_encode(&m, out, sizeof(out));
	if (n > 0)
		put("membership", "four", out, (size_t)n);
	m.member_count = 1;
	m.members[0].peer_addr[0] = 0;
	m.members[0].client_addr[0] = 0;
	n = codec_membership_encode(&m, out, sizeof(out));
	if (n > 0)
		put("membership", "one-sim", out, (size_t)n);
}

/* A record behind fuzz_record.c's mode byte (1: fix the checksum). */
static void put_record(const char *name, const uint8_t *r, size_t n)
{
	static uint8_t m[RECORD_ENTRY_BYTES_MAX + 1];
	m[0] = 1;
	memcpy(m + 1, r, n);
	put("record", name, m, n + 1);
}

/* Stored records, one of each kind (core/record.h). */
static void gen_records(void)
{
	static uint8_t r[RECORD_ENTRY_BYTES_MAX];
	struct entry e = { .term = 3, .index = 17, .type = ENTRY_COMMAND,
			   .data = sample_value, .data_bytes = sizeof(sample_value) - 1 };
	put_record("entry-command", r, record_entry_encode(&e, r, sizeof(r)));
	e = (struct entry){ .term = 1, .index = 1, .type = ENTRY_NOOP };
	put_record("entry-noop", r, record_entry_encode(&e, r, sizeof(r)));
	put_record("ids", r, record_ids_encode(0xabcdef, 3, r, sizeof(r)));
	struct raft_hard_state hs = { .term = 9, .vote = 2, .commit = 40 };
	put_record("hard", r, record_hard_encode(&hs, r, sizeof(r)));
	put_record("applied", r, record_applied_encode(39, r, sizeof(r)));
	struct kv_session se = { .client_id = 77, .seq = 5, .last_index = 30,
				 .status = KV_CAS_FAILED };
	put_record("session", r, record_session_encode(&se, r, sizeof(r)));
	put_record("format", r, record_format_encode(RECORD_STORE_VERSION, r, sizeof(r)));
	struct membership m;
	sample_membership(&m);
	put_record("snap", r, record_snap_encode(1000, 6, &m, r, sizeof(r)));
}

/* Snapshot chunks for fuzz_snapchunk.c (core/snapshot.h). */
static void gen_snapchunks(void)
{
	static uint8_t c[SNAP_ITEM_BYTES_MAX + 64];
	static uint8_t key[700];
	memset(key, 'k', sizeof(key));
	struct store_item kv = {.kind = STORE_ITEM_KV, .key = sample_key,
				.key_bytes = sizeof(sample_key) - 1,
				.val = sample_value,
				.val_bytes = sizeof(sample_value) - 1};
	struct store_item se = {.kind = STORE_ITEM_SESSION,
				.session = {77, 5, 30, KV_CAS_FAILED}};
	int n = snap_item_encode(&kv, c, sizeof(c));
	n += snap_item_encode(&se, c + n, sizeof(c) - (size_t)n);
	put("snapchunk", "kv-session", c, (size_t)n);
	kv.key = key;
	kv.key_bytes = sizeof(key);
	kv.val_bytes = 0;
	n = snap_item_encode(&kv, c, sizeof(c));
	put("snapchunk", "long-key-empty-value", c, (size_t)n);
	put("snapchunk", "empty", c, 0);
	/* The largest item: without an input this long the fuzzer never
	 * reaches the value limit (libFuzzer sizes inputs by the corpus). */
	static uint8_t big_key[KEEL_KEY_BYTES_MAX], big_val[KEEL_VALUE_BYTES_MAX];
	memset(big_key, 'K', sizeof(big_key));
	memset(big_val, 'v', sizeof(big_val));
	kv = (struct store_item){.kind = STORE_ITEM_KV, .key = big_key,
				 .key_bytes = sizeof(big_key), .val = big_val,
				 .val_bytes = sizeof(big_val)};
	n = snap_item_encode(&kv, c, sizeof(c));
	n += snap_item_encode(&se, c + n, sizeof(c) - (size_t)n);
	put("snapchunk", "largest-item-session", c, (size_t)n);
}

/* Event scripts for fuzz_raft.c: [cluster byte] then (op, arg) pairs. */
#define RAFT_SCRIPT_MAX 2048u

struct script {
	uint8_t b[RAFT_SCRIPT_MAX];
	size_t n;
};

static void ev(struct script *s, uint8_t op, uint8_t arg, unsigned times)
{
	for (unsigned i = 0; i < times && s->n + 2 <= sizeof(s->b); i++) {
		s->b[s->n++] = op;
		s->b[s->n++] = arg;
	}
}

/* Elect node arg's way: tick it past its timeout, deliver and sync all. */
static void ev_round(struct script *s, uint8_t node, unsigned ticks)
{
	ev(s, 6, node, ticks);   /* tick */
	for (uint8_t i = 0; i < 5; i++) {
		ev(s, 1, 0, 12);  /* deliver the oldest */
		ev(s, 10, i, 1);  /* sync node i */
	}
	ev(s, 1, 0, 20);
}

static void gen_raft(void)
{
	struct script s = { .n = 0 };
	s.b[s.n++] = 0; /* 3 nodes, seed 0 */
	ev_round(&s, 0, 8);
	ev(&s, 9 | 0x30, 0, 3); /* proposals on node 0 */
	ev(&s, 9 | 0x50, 1, 3);
	ev_round(&s, 0, 2);
	ev_round(&s, 1, 2);
	put("raft", "elect-propose", s.b, s.n);

	ev(&s, 12, 0, 1); /* crash node 0, elect another */
	ev_round(&s, 1, 10);
	ev_round(&s, 2, 10);
	ev(&s, 9, 1, 2);
	ev(&s, 9, 2, 2);
	ev(&s, 13, 0, 1); /* restart node 0 */
	ev_round(&s, 1, 3);
	ev(&s, 14, 1, 1); /* read */
	ev(&s, 15, 1, 1); /* transfer */
	ev_round(&s, 1, 3);
	put("raft", "crash-restart", s.b, s.n);

	s.n = 0;
	s.b[s.n++] = 2; /* 5 nodes */
	ev_round(&s, 3, 8);
	ev(&s, 5, 0, 4);  /* duplicates */
	ev(&s, 0, 7, 10); /* reordered deliveries */
	ev(&s, 4, 1, 3);  /* losses */
	ev(&s, 9, 3, 4);
	ev(&s, 11, 3, 2); /* partial syncs */
	ev_round(&s, 3, 4);
	put("raft", "five-nodes", s.b, s.n);

	/* Forgery mode: op 3 steps forged copies of queued messages. */
	s.n = 0;
	s.b[s.n++] = 0x80; /* 3 nodes, forge mode */
	ev(&s, 6, 0, 8);
	for (uint8_t i = 0; i < 40; i++) {
		ev(&s, 3 | (uint8_t)(i << 4), i, 1); /* forge */
		ev(&s, 1, 0, 2);
		ev(&s, 10, i % 3, 1);
		if (i % 8 == 0)
			ev(&s, 9, 0, 1);
	}
	ev_round(&s, 1, 4);
	put("raft", "forge", s.b, s.n);
}

/* Request sequences for fuzz_apply.c: records [flags][length][payload]. */
static void apply_add(uint8_t *s, size_t *n, uint8_t flags, const uint8_t *p, size_t len)
{
	if (len > 255 || *n + 2 + len > GEN_BYTES_MAX)
		return;
	s[(*n)++] = flags;
	s[(*n)++] = (uint8_t)len;
	memcpy(s + *n, p, len);
	*n += len;
}

static void apply_request(uint8_t *s, size_t *n, const struct client_request *r)
{
	int k = codec_request_encode(r, out, sizeof(out));
	if (k > 0)
		apply_add(s, n, 0, out + CODEC_HEADER_BYTES, (size_t)k - CODEC_FRAME_OVERHEAD);
}

static void gen_apply(void)
{
	static uint8_t s[GEN_BYTES_MAX];
	size_t n = 0;
	struct client_request r;
	static const uint32_t ops[] = { KV_PUT, KV_GET, KV_APPEND, KV_GET, KV_CAS,
					KV_GET, KV_DEL, KV_GET, KV_CAS };
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		sample_request(&r, ops[i]);
		r.cmd.seq = i + 1;
		if (i == 8) { /* cas on absence after the delete */
			r.cmd.cas_absent = true;
			r.cmd.expected_bytes = 0;
		}
		apply_request(s, &n, &r);
	}
	sample_request(&r, KV_PUT); /* a retry, then a stale one */
	r.cmd.seq = 9;
	apply_request(s, &n, &r);
	r.cmd.seq = 2;
	apply_request(s, &n, &r);
	struct kv_command cmds[2];
	sample_command(&cmds[0], KV_APPEND);
	sample_command(&cmds[1], KV_DEL);
	cmds[0].client_id = cmds[1].client_id = 78;
	cmds[1].seq = 6;
	int k = codec_batch_encode(cmds, 2, out, sizeof(out));
	if (k > 0)
		apply_add(s, &n, 1, out, (size_t)k);
	put("apply", "session", s, n);
}

/* A stream of several frames back to back. */
static void gen_stream(void)
{
	static uint8_t s[GEN_BYTES_MAX];
	size_t n = 2;
	s[0] = 0x5a;
	s[1] = 0xa5;
	struct codec_hello h = { .protocol_version = CODEC_VERSION, .cluster_id = 1,
				 .node_id = 1, .role = HELLO_PEER };
	int k = codec_hello_encode(&h, s + n, sizeof(s) - n);
	n += k > 0 ? (size_t)k : 0;
	struct msg m;
	sample_simple_msg(&m, MSG_VOTE);
	k = codec_msg_encode(&m, s + n, sizeof(s) - n);
	n += k > 0 ? (size_t)k : 0;
	k = codec_frame_encode(FRAME_PEER, NULL, 0, s + n, sizeof(s) - n);
	n += k > 0 ? (size_t)k : 0;
	sample_simple_msg(&m, MSG_VOTE_RESP);
	k = codec_msg_encode(&m, s + n, sizeof(s) - n);
	n += k > 0 ? (size_t)k : 0;
	put("frame", "stream-4", s, n);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: gen_corpus DIR\n");
		return 2;
	}
	root = argv[1];
	if (mkdir(root, 0777) != 0 && errno != EEXIST) {
		perror(root);
		return 1;
	}
	gen_msgs();
	gen_client();
	gen_entries();
	gen_stream();
	gen_records();
	gen_snapchunks();
	gen_raft();
	gen_apply();
	return failures ? 1 : 0;
}
