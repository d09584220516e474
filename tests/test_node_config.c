/* test_node_config.c: bin/keel's flags and config file, the pending table
 * and the reconnection backoff. */
#include <stdlib.h>

#include "../core/err.h"
#include "../core/raft.h"
#include "../io_real/net.h"
#include "../node/config.h"
#include "../node/pending.h"
#include "harness.h"

static int parse(struct node_config *c, char *err, int argc, char **argv)
{
	config_defaults(c);
	return config_parse(c, argc, argv, err, CONFIG_ERR_BYTES_MAX);
}

TEST(flags_parse_all_forms)
{
	struct node_config c;
	char err[CONFIG_ERR_BYTES_MAX];
	char *argv[] = { "keel", "--id", "2", "--data=d", "--listen",
			 "127.0.0.1:7001", "--client", "127.0.0.1:7101",
			 "--peers", "1=127.0.0.1:7000/127.0.0.1:7100,2=127.0.0.1:7001",
			 "--bootstrap", "--tick-ms", "5", "--log-level", "debug" };
	ASSERT_EQ(parse(&c, err, 15, argv), 0);
	ASSERT_U64_EQ(c.id, 2);
	ASSERT_STR_EQ(c.data_dir, "d");
	ASSERT_STR_EQ(c.listen_addr, "127.0.0.1:7001");
	ASSERT_EQ(c.peer_count, 2);
	ASSERT_STR_EQ(c.peers[0].client_addr, "127.0.0.1:7100");
	ASSERT_STR_EQ(c.peers[1].client_addr, "");
	ASSERT_TRUE(c.bootstrap);
	ASSERT_EQ(c.tick_ms, 5);
	ASSERT_STR_EQ(c.log_level, "debug");
	ASSERT_EQ(config_validate(&c, err, sizeof err), 0);
}

TEST(flag_errors_name_the_flag)
{
	struct node_config c;
	char err[CONFIG_ERR_BYTES_MAX];
	char *a1[] = { "keel", "--tick-ms", "zero" };
	ASSERT_EQ(parse(&c, err, 3, a1), KEEL_ECONFIG);
	ASSERT_TRUE(strstr(err, "--tick-ms") != NULL);
	char *a2[] = { "keel", "--listen", "localhost" };
	ASSERT_EQ(parse(&c, err, 3, a2), KEEL_ECONFIG);
	ASSERT_TRUE(strstr(err, "--listen") != NULL);
	char *a3[] = { "keel", "--frobnicate", "1" };
	ASSERT_EQ(parse(&c, err, 3, a3), KEEL_ECONFIG);
	ASSERT_TRUE(strstr(err, "frobnicate") != NULL);
	char *a4[] = { "keel", "--peers", "1=127.0.0.1:1,1=127.0.0.1:2" };
	ASSERT_EQ(parse(&c, err, 3, a4), KEEL_ECONFIG);
	ASSERT_TRUE(strstr(err, "twice") != NULL);
	char *a5[] = { "keel", "--id" };
	ASSERT_EQ(parse(&c, err, 2, a5), KEEL_ECONFIG);
	ASSERT_TRUE(strstr(err, "needs a value") != NULL);
}

TEST(config_file_lines_and_flag_priority)
{
	struct node_config c;
	char err[CONFIG_ERR_BYTES_MAX];
	config_defaults(&c);
	const char *text = "# comment\n id = 3 \n\ndata = /x # trailing\n"
			   "election-ticks = 20\n";
	ASSERT_EQ(config_parse_text(&c, "k.conf", text, err, sizeof err), 0);
	ASSERT_U64_EQ(c.id, 3);
	ASSERT_STR_EQ(c.data_dir, "/x");
	ASSERT_EQ(c.election_ticks, 20);
	const char *bad = "id = 3\nheartbeat-ticks = -1\n";
	ASSERT_EQ(config_parse_text(&c, "k.conf", bad, err, sizeof err),
		  KEEL_ECONFIG);
	ASSERT_TRUE(strstr(err, "k.conf line 2") != NULL);
	const char *noeq = "id 3\n";
	ASSERT_EQ(config_parse_text(&c, "k.conf", noeq, err, sizeof err),
		  KEEL_ECONFIG);
	ASSERT_TRUE(strstr(err, "line 1") != NULL);
}

TEST(validate_cross_field)
{
	struct node_config c;
	char err[CONFIG_ERR_BYTES_MAX];
	config_defaults(&c);
	ASSERT_EQ(config_validate(&c, err, sizeof err), KEEL_ECONFIG);
	ASSERT_TRUE(strstr(err, "--data") != NULL);
	snprintf(c.data_dir, sizeof c.data_dir, "d");
	c.bootstrap = true;
	ASSERT_EQ(config_validate(&c, err, sizeof err), KEEL_ECONFIG);
	ASSERT_TRUE(strstr(err, "--id") != NULL);
	c.id = 1;
	snprintf(c.listen_addr, sizeof c.listen_addr, "127.0.0.1:1");
	snprintf(c.client_addr, sizeof c.client_addr, "127.0.0.1:2");
	c.heartbeat_ticks = c.election_ticks;
	ASSERT_EQ(config_validate(&c, err, sizeof err), KEEL_ECONFIG);
	ASSERT_TRUE(strstr(err, "--heartbeat-ticks") != NULL);
	c.heartbeat_ticks = 1;
	ASSERT_EQ(config_validate(&c, err, sizeof err), 0);
}

TEST(join_flags_validate)
{
	struct node_config c;
	char err[CONFIG_ERR_BYTES_MAX];
	char *ok[] = { "keel", "--join", "127.0.0.1:7101,127.0.0.1:7102",
		       "--data", "d", "--listen", "127.0.0.1:7004", "--client",
		       "127.0.0.1:7104" };
	ASSERT_EQ(parse(&c, err, 9, ok), 0);
	ASSERT_EQ(c.join_count, 2);
	ASSERT_STR_EQ(c.join[1], "127.0.0.1:7102");
	ASSERT_EQ(config_validate(&c, err, sizeof err), 0);
	c.bootstrap = true;
	ASSERT_EQ(config_validate(&c, err, sizeof err), KEEL_ECONFIG);
	ASSERT_TRUE(strstr(err, "--bootstrap") != NULL);
	c.bootstrap = false;
	c.id = 4;
	ASSERT_EQ(config_validate(&c, err, sizeof err), KEEL_ECONFIG);
	ASSERT_TRUE(strstr(err, "assigns the id") != NULL);
	c.id = 0;
	c.client_addr[0] = '\0';
	ASSERT_EQ(config_validate(&c, err, sizeof err), KEEL_ECONFIG);
	ASSERT_TRUE(strstr(err, "--client") != NULL);
	char *empty[] = { "keel", "--join", "," };
	ASSERT_EQ(parse(&c, err, 3, empty), KEEL_ECONFIG);
	ASSERT_TRUE(strstr(err, "--join") != NULL);
	char *bad[] = { "keel", "--join", "nohost" };
	ASSERT_EQ(parse(&c, err, 3, bad), KEEL_ECONFIG);
}

TEST(apply_flush_ms_is_bounded)
{
	struct node_config c;
	char err[CONFIG_ERR_BYTES_MAX];
	config_defaults(&c);
	ASSERT_EQ(c.apply_flush_ms, 0);
	ASSERT_EQ(config_parse_text(&c, "t.conf", "apply-flush-ms = 400\n", err,
				    sizeof err), 0);
	ASSERT_EQ(c.apply_flush_ms, 400);
	ASSERT_EQ(config_parse_text(&c, "t.conf", "apply-flush-ms = 10001\n",
				    err, sizeof err), KEEL_ECONFIG);
	ASSERT_TRUE(strstr(err, "t.conf line 1") != NULL);
	ASSERT_EQ(c.apply_flush_ms, 400); /* unchanged by the refused value */
}

TEST(lmdb_writemap_is_a_flag_and_a_setting)
{
	struct node_config c;
	char err[CONFIG_ERR_BYTES_MAX];
	config_defaults(&c);
	ASSERT_FALSE(c.lmdb_writemap);
	char *argv[] = {"keel", "--lmdb-writemap", "--data", "d"};
	ASSERT_EQ(parse(&c, err, 4, argv), 0);
	ASSERT_TRUE(c.lmdb_writemap);
	char *off[] = {"keel", "--lmdb-writemap=false"};
	ASSERT_EQ(config_parse(&c, 2, off, err, sizeof err), 0); /* no reset */
	ASSERT_FALSE(c.lmdb_writemap);
	ASSERT_EQ(config_parse_text(&c, "t.conf", "lmdb-writemap = true\n", err,
				    sizeof err), 0);
	ASSERT_TRUE(c.lmdb_writemap);
	ASSERT_EQ(config_parse_text(&c, "t.conf", "\nlmdb-writemap = yes\n", err,
				    sizeof err), KEEL_ECONFIG);
	ASSERT_TRUE(strstr(err, "t.conf line 2") != NULL);
	ASSERT_TRUE(strstr(err, "true or false") != NULL);
	ASSERT_TRUE(c.lmdb_writemap); /* unchanged by the refused value */
}

TEST(compaction_and_snapshot_settings)
{
	struct node_config c;
	char err[CONFIG_ERR_BYTES_MAX];
	config_defaults(&c);
	ASSERT_EQ(c.log_tail_entries, RAFT_LOG_TAIL_ENTRIES_DEFAULT);
	ASSERT_U64_EQ(c.log_tail_bytes, RAFT_LOG_TAIL_BYTES_DEFAULT);
	ASSERT_EQ(c.debug_snapshot_delay_ms, 0);
	const char *text = "log-tail-entries = 50\nlog-tail-bytes = 4096\n"
			   "debug-snapshot-delay-ms = 20\n"
			   "snapshot-rate-bytes = 1048576\n";
	ASSERT_EQ(config_parse_text(&c, "t.conf", text, err, sizeof err), 0);
	ASSERT_EQ(c.log_tail_entries, 50);
	ASSERT_U64_EQ(c.log_tail_bytes, 4096);
	ASSERT_EQ(c.debug_snapshot_delay_ms, 20);
	ASSERT_U64_EQ(c.snapshot_rate_bytes, 1048576);
	ASSERT_EQ(config_parse_text(&c, "t.conf", "log-tail-entries = 0\n", err,
				    sizeof err), KEEL_ECONFIG);
	ASSERT_TRUE(strstr(err, "t.conf line 1") != NULL);
	ASSERT_EQ(config_parse_text(&c, "t.conf",
				    "debug-snapshot-delay-ms = 999999\n", err,
				    sizeof err), KEEL_ECONFIG);
}

TEST(cluster_id_is_order_independent)
{
	struct config_peer a[2] = { { .id = 1 }, { .id = 2 } };
	snprintf(a[0].peer_addr, sizeof a[0].peer_addr, "127.0.0.1:1");
	snprintf(a[1].peer_addr, sizeof a[1].peer_addr, "127.0.0.1:2");
	struct config_peer b[2] = { a[1], a[0] };
	ASSERT_U64_EQ(config_cluster_id(a, 2), config_cluster_id(b, 2));
	ASSERT_NE(config_cluster_id(a, 2), 0);
	snprintf(b[0].peer_addr, sizeof b[0].peer_addr, "127.0.0.1:3");
	ASSERT_TRUE(config_cluster_id(a, 2) != config_cluster_id(b, 2));
}

TEST(backoff_grows_caps_and_jitters)
{
	uint32_t prev_max = 0;
	for (uint32_t a = 0; a < 30; a++) {
		uint32_t lo = UINT32_MAX, hi = 0;
		for (uint64_t r = 0; r < 200; r++) {
			uint32_t ms = net_backoff_ms(a, r * 7919u);
			lo = ms < lo ? ms : lo;
			hi = ms > hi ? ms : hi;
			ASSERT_LE(ms, NET_BACKOFF_MS_MAX);
			ASSERT_GE(ms, NET_BACKOFF_MS_MIN / 2);
		}
		ASSERT_GE(hi, prev_max); /* never shrinks as attempts grow */
		ASSERT_LT(lo, hi);       /* jitter */
		prev_max = hi;
	}
	ASSERT_EQ(prev_max, NET_BACKOFF_MS_MAX);
}

TEST(pending_table_bounds_and_tokens)
{
	struct pending_table t;
	ASSERT_EQ(pending_init(&t, 4), 0);
	struct pending *p[4];
	for (int i = 0; i < 4; i++) {
		p[i] = pending_alloc(&t, PENDING_WRITE);
		ASSERT_TRUE(p[i] != NULL);
		p[i]->client_id = 7;
		p[i]->seq = (uint64_t)i + 1;
		pending_index_write(&t, p[i]);
	}
	ASSERT_TRUE(pending_alloc(&t, PENDING_READ_INDEX) == NULL);
	ASSERT_TRUE(pending_find_write(&t, 7, 3) == p[2]);
	ASSERT_TRUE(pending_find_write(&t, 7, 9) == NULL);
	uint64_t tok = pending_token(&t, p[2]);
	ASSERT_TRUE(pending_by_token(&t, tok) == p[2]);
	pending_release(&t, p[2]);
	ASSERT_TRUE(pending_find_write(&t, 7, 3) == NULL);
	ASSERT_TRUE(pending_by_token(&t, tok) == NULL);
	struct pending *q = pending_alloc(&t, PENDING_READ_INDEX);
	ASSERT_TRUE(q == p[2]);
	ASSERT_TRUE(pending_by_token(&t, tok) == NULL); /* new generation */
	ASSERT_TRUE(pending_find_write(&t, 7, 4) == p[3]);
	ASSERT_EQ(t.used, 4);
	pending_free(&t);
}
