/* test_client.c: the C client library against scripted fake nodes: leader
 * hints are followed with the same (client_id, seq); a write that was sent
 * and never answered is reported indeterminate, never as a failure; refusals
 * that applied nothing are reported as such; retries are bounded. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../core/codec.h"
#include "../core/err.h"
#include "../node/client.h"
#include "harness.h"

enum fake_mode { FAKE_SILENT, FAKE_OK, FAKE_NOT_LEADER, FAKE_BUSY, FAKE_UNAVAILABLE };

struct fake {
	int lfd;
	int port;
	enum fake_mode mode;
	char hint[KEEL_ADDR_BYTES_MAX];
	pthread_t t;
	/* what the fake saw */
	uint32_t requests;
	uint64_t client_id, seq;
	uint32_t kind;
	struct member_change change;
	keel_node_id transfer_to;
	bool stop;
};

static void respond(int fd, uint64_t request_id, uint32_t status, const char *hint)
{
	struct client_response r;
	memset(&r, 0, sizeof r);
	r.request_id = request_id;
	r.status = status;
	if (status == CLIENT_OK && hint == NULL) {
		/* Every OK carries a member change's answer; the client must
		 * hand it on (the codec accepts it on any response). */
		r.member_id = 7;
		r.cluster_id = 0xabcdef;
	}
	if (hint != NULL) {
		r.leader_id = 9;
		snprintf(r.leader_addr, sizeof r.leader_addr, "%s", hint);
	}
	uint8_t buf[1024];
	int n = codec_response_encode(&r, buf, sizeof buf);
	if (n > 0 && send(fd, buf, (size_t)n, MSG_NOSIGNAL) != n)
		return;
}

static void serve_conn(struct fake *f, int fd)
{
	struct codec_stream st;
	codec_stream_init(&st, &(struct keel_alloc){ 0 });
	uint8_t buf[4096];
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof buf, 0);
		if (n <= 0)
			break;
		size_t off = 0;
		while (off < (size_t)n) {
			size_t used = 0;
			int rc = codec_stream_feed(&st, buf + off, (size_t)n - off, &used);
			off += used;
			if (rc <= 0)
				break;
			if (st.frame_type != FRAME_CLIENT_REQUEST)
				continue;
			struct client_request req;
			struct codec_decoded d;
			if (codec_request_decode(st.payload, st.payload_bytes,
						 &(struct keel_alloc){ 0 }, &req, &d) != 0)
				continue;
			__atomic_add_fetch(&f->requests, 1, __ATOMIC_SEQ_CST);
			f->client_id = req.cmd.client_id;
			f->seq = req.cmd.seq;
			f->kind = req.kind;
			f->change = req.change;
			f->transfer_to = req.transfer_to;
			codec_decoded_free(&d);
			switch (f->mode) {
			case FAKE_SILENT:
				break;
			case FAKE_OK:
				respond(fd, req.request_id, CLIENT_OK, NULL);
				break;
			case FAKE_NOT_LEADER:
				respond(fd, req.request_id, CLIENT_NOT_LEADER,
					f->hint[0] ? f->hint : NULL);
				break;
			case FAKE_BUSY:
				respond(fd, req.request_id, CLIENT_BUSY, NULL);
				break;
			case FAKE_UNAVAILABLE:
				respond(fd, req.request_id, CLIENT_UNAVAILABLE, NULL);
				break;
			}
		}
	}
	codec_stream_close(&st);
	close(fd);
}

static void *fake_main(void *arg)
{
	struct fake *f = arg;
	for (;;) {
		int fd = accept(f->lfd, NULL, NULL);
		if (fd < 0 || f->stop) {
			if (fd >= 0)
				close(fd);
			return NULL;
		}
		serve_conn(f, fd);
	}
}

static void fake_start(struct fake *f, enum fake_mode mode)
{
	memset(f, 0, sizeof *f);
	f->mode = mode;
	f->lfd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bind(f->lfd, (struct sockaddr *)&sa, sizeof sa);
	socklen_t len = sizeof sa;
	getsockname(f->lfd, (struct sockaddr *)&sa, &len);
	f->port = ntohs(sa.sin_port);
	listen(f->lfd, 8);
	pthread_create(&f->t, NULL, fake_main, f);
}

static void fake_stop(struct fake *f)
{
	f->stop = true;
	shutdown(f->lfd, SHUT_RDWR);
	close(f->lfd);
	pthread_join(f->t, NULL);
}

static void client_for(struct kc *c, const struct fake *a, const struct fake *b)
{
	struct kc_config cfg;
	kc_config_default(&cfg);
	cfg.timeout_ms = 100;
	cfg.attempts_max = 4;
	char list[128];
	if (b != NULL)
		snprintf(list, sizeof list, "127.0.0.1:%d,127.0.0.1:%d", a->port, b->port);
	else
		snprintf(list, sizeof list, "127.0.0.1:%d", a->port);
	char err[128];
	ASSERT_EQ(kc_parse_endpoints(&cfg, list, err, sizeof err), 0);
	ASSERT_EQ(kc_init(c, &cfg), 0);
}

TEST(endpoints_are_validated)
{
	struct kc_config cfg;
	char err[128];
	kc_config_default(&cfg);
	ASSERT_EQ(kc_parse_endpoints(&cfg, "127.0.0.1:1,127.0.0.1:2", err, sizeof err), 0);
	ASSERT_EQ(cfg.endpoint_count, 2);
	ASSERT_EQ(kc_parse_endpoints(&cfg, "localhost:1", err, sizeof err), KEEL_EINVAL);
	ASSERT_TRUE(strstr(err, "localhost") != NULL);
	ASSERT_EQ(kc_parse_endpoints(&cfg, "127.0.0.1:0", err, sizeof err), KEEL_EINVAL);
	ASSERT_EQ(kc_parse_endpoints(&cfg, "", err, sizeof err), KEEL_EINVAL);
}

TEST(leader_hint_is_followed_with_the_same_session)
{
	struct fake leader, follower;
	fake_start(&leader, FAKE_OK);
	fake_start(&follower, FAKE_NOT_LEADER);
	snprintf(follower.hint, sizeof follower.hint, "127.0.0.1:%d", leader.port);
	struct kc c;
	client_for(&c, &follower, NULL);
	struct kc_result r;
	ASSERT_EQ(kc_put(&c, "k", 1, "v", 1, &r), 0);
	ASSERT_EQ(r.status, CLIENT_OK);
	ASSERT_EQ(follower.requests, 1);
	ASSERT_EQ(leader.requests, 1);
	ASSERT_U64_EQ(leader.client_id, follower.client_id);
	ASSERT_U64_EQ(leader.seq, follower.seq);
	ASSERT_U64_EQ(leader.seq, 1);
	/* The leader is cached: the next write goes straight there. */
	ASSERT_EQ(kc_put(&c, "k", 1, "v", 1, &r), 0);
	ASSERT_EQ(leader.requests, 2);
	ASSERT_EQ(follower.requests, 1);
	ASSERT_U64_EQ(leader.seq, 2);
	kc_close(&c);
	fake_stop(&leader);
	fake_stop(&follower);
}

TEST(member_change_and_transfer_reach_the_leader)
{
	struct fake leader, follower;
	fake_start(&leader, FAKE_OK);
	fake_start(&follower, FAKE_NOT_LEADER);
	snprintf(follower.hint, sizeof follower.hint, "127.0.0.1:%d", leader.port);
	struct kc c;
	client_for(&c, &follower, NULL);
	struct member_change ch = { .kind = MEMBER_ADD_LEARNER };
	snprintf(ch.peer_addr, sizeof ch.peer_addr, "127.0.0.1:7004");
	snprintf(ch.client_addr, sizeof ch.client_addr, "127.0.0.1:7104");
	struct kc_result r;
	ASSERT_EQ(kc_member_change(&c, &ch, &r), 0);
	ASSERT_EQ(r.status, CLIENT_OK);
	ASSERT_U64_EQ(r.member_id, 7);
	ASSERT_U64_EQ(r.cluster_id, 0xabcdef);
	ASSERT_EQ(leader.kind, CLIENT_REQ_MEMBER);
	ASSERT_EQ(leader.change.kind, MEMBER_ADD_LEARNER);
	ASSERT_STR_EQ(leader.change.peer_addr, "127.0.0.1:7004");
	ASSERT_STR_EQ(leader.change.client_addr, "127.0.0.1:7104");
	ASSERT_EQ(kc_transfer_leader(&c, 3, &r), 0);
	ASSERT_EQ(leader.kind, CLIENT_REQ_TRANSFER);
	ASSERT_U64_EQ(leader.transfer_to, 3);
	kc_close(&c);
	fake_stop(&leader);
	fake_stop(&follower);
}

TEST(unanswered_member_change_is_indeterminate)
{
	struct fake silent;
	fake_start(&silent, FAKE_SILENT);
	struct kc c;
	client_for(&c, &silent, NULL);
	struct member_change ch = { .kind = MEMBER_PROMOTE, .id = 4 };
	struct kc_result r;
	ASSERT_EQ(kc_member_change(&c, &ch, &r), KEEL_EINDETERMINATE);
	ASSERT_EQ(silent.requests, 4);
	ASSERT_U64_EQ(silent.change.id, 4);
	kc_close(&c);
	fake_stop(&silent);
}

TEST(unanswered_write_is_indeterminate_and_retried_with_its_seq)
{
	struct fake silent;
	fake_start(&silent, FAKE_SILENT);
	struct kc c;
	client_for(&c, &silent, NULL);
	struct kc_result r;
	ASSERT_EQ(kc_put(&c, "k", 1, "v", 1, &r), KEEL_EINDETERMINATE);
	ASSERT_EQ(silent.requests, 4); /* bounded: attempts_max */
	ASSERT_U64_EQ(silent.seq, 1);  /* every retry reused seq 1 */
	ASSERT_TRUE(strstr(kc_last_error(&c), "outcome unknown") != NULL);
	kc_close(&c);
	fake_stop(&silent);
}

TEST(unanswered_read_times_out_without_indeterminacy)
{
	struct fake silent;
	fake_start(&silent, FAKE_SILENT);
	struct kc c;
	client_for(&c, &silent, NULL);
	struct kc_result r;
	ASSERT_EQ(kc_get(&c, "k", 1, false, &r), KEEL_ETIMEDOUT);
	kc_close(&c);
	fake_stop(&silent);
}

TEST(refusals_that_applied_nothing_are_definite_failures)
{
	struct fake busy, lost;
	fake_start(&busy, FAKE_BUSY);
	fake_start(&lost, FAKE_NOT_LEADER); /* no hint: no leader known */
	struct kc c;
	client_for(&c, &busy, &lost);
	struct kc_result r;
	ASSERT_EQ(kc_put(&c, "k", 1, "v", 1, &r), KEEL_ENOLEADER);
	ASSERT_EQ(busy.requests + lost.requests, 4);
	kc_close(&c);
	fake_stop(&busy);
	fake_stop(&lost);
}

TEST(unavailable_after_send_makes_a_write_indeterminate)
{
	struct fake un, busy;
	fake_start(&un, FAKE_UNAVAILABLE);
	fake_start(&busy, FAKE_BUSY);
	struct kc c;
	client_for(&c, &un, &busy);
	struct kc_result r;
	/* One attempt may have applied it; later refusals do not undo that. */
	ASSERT_EQ(kc_put(&c, "k", 1, "v", 1, &r), KEEL_EINDETERMINATE);
	kc_close(&c);
	fake_stop(&un);
	fake_stop(&busy);
}

TEST(connection_refused_everywhere_applies_nothing)
{
	struct fake f;
	fake_start(&f, FAKE_OK);
	int port = f.port;
	fake_stop(&f); /* nobody listens there now */
	struct kc_config cfg;
	kc_config_default(&cfg);
	cfg.timeout_ms = 100;
	cfg.attempts_max = 3;
	char list[64], err[128];
	snprintf(list, sizeof list, "127.0.0.1:%d", port);
	ASSERT_EQ(kc_parse_endpoints(&cfg, list, err, sizeof err), 0);
	struct kc c;
	ASSERT_EQ(kc_init(&c, &cfg), 0);
	struct kc_result r;
	ASSERT_EQ(kc_put(&c, "k", 1, "v", 1, &r), KEEL_ENOLEADER);
	ASSERT_TRUE(strstr(kc_last_error(&c), "cannot connect") != NULL);
	kc_close(&c);
}
