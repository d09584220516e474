/*
 * config.h: bin/keel's flags and optional config file.
 *
 * Sources, in increasing priority: built-in defaults, the config file
 * (--config FILE: lines "key = value", '#' comments, keys are the long flag
 * names without "--"), then command-line flags ("--name value" or
 * "--name=value"). Every error names what to fix and where: the flag, or the
 * config file and line.
 *
 * Invariants after a successful config_parse + config_validate:
 *   1. every address is "A.B.C.D:PORT" with PORT in 1..65535 and fits
 *      KEEL_ADDR_BYTES_MAX;
 *   2. peer ids are nonzero and distinct, at most KEEL_MEMBERS_MAX;
 *   3. heartbeat_ticks < election_ticks;
 *   4. at most one of --bootstrap and --join; --join needs --listen and
 *      --client and takes no --id, --peers or --cluster-id (the cluster
 *      assigns the id and tells the cluster id).
 */
#ifndef KEEL_NODE_CONFIG_H
#define KEEL_NODE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/msg.h"

#define CONFIG_PATH_BYTES_MAX 512u
#define CONFIG_LINE_BYTES_MAX 1024u
#define CONFIG_FILE_LINES_MAX 1000u
#define CONFIG_ERR_BYTES_MAX 512u
#define CONFIG_JOIN_MAX KEEL_MEMBERS_MAX

#define CONFIG_TICK_MS_DEFAULT 10u
#define CONFIG_ELECTION_TICKS_DEFAULT 30u /* 300-600 ms at 10 ms ticks */
#define CONFIG_HEARTBEAT_TICKS_DEFAULT 5u
#define CONFIG_PENDING_MAX_DEFAULT 8192u
#define CONFIG_SNAPSHOT_RATE_BYTES_DEFAULT (32u * 1024u * 1024u)
#define CONFIG_DEBUG_SNAPSHOT_DELAY_MS_MAX 10000u
#define CONFIG_APPLY_FLUSH_MS_MAX 10000u /* --apply-flush-ms */

struct config_peer {
	keel_node_id id;
	char peer_addr[KEEL_ADDR_BYTES_MAX];
	char client_addr[KEEL_ADDR_BYTES_MAX]; /* "" when not given */
};

struct node_config {
	bool help;
	bool version;
	keel_node_id id; /* 0: not given */
	char data_dir[CONFIG_PATH_BYTES_MAX];
	char listen_addr[KEEL_ADDR_BYTES_MAX];
	char client_addr[KEEL_ADDR_BYTES_MAX];
	char http_addr[KEEL_ADDR_BYTES_MAX]; /* "" : no HTTP */
	char redis_addr[KEEL_ADDR_BYTES_MAX]; /* "" : no Redis port */
	char config_file[CONFIG_PATH_BYTES_MAX];
	uint32_t peer_count;
	struct config_peer peers[KEEL_MEMBERS_MAX];
	bool bootstrap;
	uint32_t join_count; /* --join: client addresses of running members */
	char join[CONFIG_JOIN_MAX][KEEL_ADDR_BYTES_MAX];
	uint64_t cluster_id; /* 0: derive from the bootstrap membership */
	char log_level[16];
	uint32_t tick_ms;
	uint32_t election_ticks;
	uint32_t heartbeat_ticks;
	uint32_t pending_max; /* client requests waiting for an answer */
	uint64_t map_bytes;   /* LMDB map size, 0: the store's default */
	bool lmdb_writemap;   /* LMDB's writable map (io_real/lmdb_store.h) */
	/* Log compaction: the applied tail kept (raft_options log_tail_*). */
	uint32_t log_tail_entries;
	uint64_t log_tail_bytes;
	/* Snapshots sent: bytes per second to all followers together. */
	uint64_t snapshot_rate_bytes;
	/* The applied state is written to LMDB once this old (node/disk.h);
	 * 0: in every storage job. */
	uint32_t apply_flush_ms;
	/* Testing only: the storage thread sleeps this long before staging
	 * each incoming snapshot chunk, so a test can kill a node in the
	 * middle of an install. 0 (the default) in any real deployment. */
	uint32_t debug_snapshot_delay_ms;
	/* Testing only: with --lmdb-writemap, reserving the data file's blocks
	 * past this many bytes fails as on a full disk. 0 (the default): no
	 * limit but the disk's. */
	uint64_t debug_reserve_limit_bytes;
};

void config_defaults(struct node_config *c);

/* Parse argv (argv[0] skipped), reading --config FILE first if present.
 * Returns 0, or KEEL_ECONFIG with a message in err. */
int config_parse(struct node_config *c, int argc, char **argv, char *err,
		 size_t err_bytes);

/* Apply one "name = value" setting (no leading "--"); where names the
 * source for messages ("flag --x" or "FILE:LINE"). */
int config_set(struct node_config *c, const char *name, const char *value,
	       const char *where, char *err, size_t err_bytes);

/* Parse the config file's text (for tests; config_parse reads the file). */
int config_parse_text(struct node_config *c, const char *file_name,
		      const char *text, char *err, size_t err_bytes);

/* Cross-field checks for starting a node. Returns 0 or KEEL_ECONFIG. */
int config_validate(const struct node_config *c, char *err, size_t err_bytes);

/* "A.B.C.D:PORT" check. Returns 0 or KEEL_EINVAL. */
int config_addr_check(const char *addr);

/* Parse "ID=HOST:PORT[/CHOST:CPORT],..." into peers. 0 or KEEL_EINVAL
 * with a message. */
int config_peers_parse(const char *s, struct config_peer *peers,
		       uint32_t *count, char *err, size_t err_bytes);

/* Deterministic cluster id from a bootstrap member list: a hash of the
 * sorted (id, peer address) pairs, never 0. Every node bootstrapped with
 * the same list computes the same id. */
uint64_t config_cluster_id(const struct config_peer *peers, uint32_t count);

#endif
