/*
 * keel.c: the keel server's main: flags, the data directory (new cluster or
 * restart), then the server loop (node/server.c).
 *
 * Exit codes: 0 clean shutdown; 1 runtime failure (cannot listen, cannot
 * open the store); 2 bad flags or configuration (the message says what to
 * fix); 3 storage failed while serving (full, I/O error: sticky; the node
 * stops serving, says why and exits).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../core/codec.h"
#include "../core/err.h"
#include "../io_real/lmdb_store.h"
#include "../io_real/log.h"
#include "../core/assert.h"
#include "config.h"
#include "join.h"
#include "server.h"

#define KEEL_VERSION "0.1.0"

static const char usage[] =
	"usage: keel --id N --data DIR --listen HOST:PORT --client HOST:PORT\n"
	"            --peers ID=HOST:PORT[/CLIENTHOST:CLIENTPORT],... --bootstrap\n"
	"       keel --data DIR                 (restart: the rest comes from DIR)\n"
	"\n"
	"  --id N               this node's id (a positive integer)\n"
	"  --data DIR           data directory (created if absent)\n"
	"  --listen HOST:PORT   peer port (IPv4)\n"
	"  --client HOST:PORT   client port (protobuf frames; keelctl)\n"
	"  --peers LIST         initial voters: ID=PEERADDR[/CLIENTADDR],...\n"
	"  --bootstrap          start a new cluster with --peers (and this node)\n"
	"  --cluster-id N       cluster id (default: derived from the voters)\n"
	"  --join LIST          join a running cluster (not supported yet)\n"
	"  --http HOST:PORT     serve GET /metrics and GET /status\n"
	"  --redis HOST:PORT    Redis protocol: PING ECHO GET SET DEL (redis-cli, redis-benchmark)\n"
	"  --config FILE        settings as 'name = value' lines (flags win)\n"
	"  --log-level LEVEL    error, warn, info (default) or debug\n"
	"  --tick-ms N          tick length (default 10)\n"
	"  --election-ticks N   election timeout in ticks (default 30)\n"
	"  --heartbeat-ticks N  heartbeat interval in ticks (default 5)\n"
	"  --pending-max N      client requests in flight (default 8192)\n"
	"  --map-bytes N        largest size of the data file (LMDB map; default 64 GiB)\n"
	"  --apply-flush-ms N   write the applied state to LMDB once N ms old\n"
	"                       (default 0: with every log write; see node/NODE.md)\n"
	"  --lmdb-writemap      LMDB writes through its map: less memory for large\n"
	"                       flushes; the data file is the map's size (sparse)\n"
	"                       and its blocks are reserved ahead (see node/NODE.md)\n"
	"  --help, --version\n"
	"\n"
	"SIGTERM/SIGINT: hand leadership over, finish in-flight work, exit 0;\n"
	"a second signal exits at once.\n";

static int die(int code, const char *fmt, const char *a, const char *b)
{
	fprintf(stderr, "keel: ");
	fprintf(stderr, fmt, a, b);
	fprintf(stderr, "\n");
	return code;
}

static void bootstrap_members(const struct node_config *c, struct membership *m,
			      struct config_peer *list, uint32_t *count)
{
	uint32_t n = 0;
	bool self_listed = false;
	for (uint32_t i = 0; i < c->peer_count; i++) {
		list[n] = c->peers[i];
		if (list[n].id == c->id) {
			self_listed = true;
			if (list[n].client_addr[0] == '\0')
				snprintf(list[n].client_addr, KEEL_ADDR_BYTES_MAX,
					 "%s", c->client_addr);
		}
		n++;
	}
	if (!self_listed && n < KEEL_MEMBERS_MAX) {
		list[n].id = c->id;
		snprintf(list[n].peer_addr, KEEL_ADDR_BYTES_MAX, "%s", c->listen_addr);
		snprintf(list[n].client_addr, KEEL_ADDR_BYTES_MAX, "%s", c->client_addr);
		n++;
	}
	memset(m, 0, sizeof *m);
	for (uint32_t i = 0; i < n; i++) {
		struct member *mb = &m->members[m->member_count++];
		mb->id = list[i].id;
		mb->role = MEMBER_VOTER;
		snprintf(mb->peer_addr, sizeof mb->peer_addr, "%s", list[i].peer_addr);
		snprintf(mb->client_addr, sizeof mb->client_addr, "%s",
			 list[i].client_addr);
	}
	*count = n;
}

struct loaded_log {
	struct entry *entries;
	uint8_t **datas;
	size_t count;
};

static void loaded_free(struct loaded_log *l)
{
	for (size_t i = 0; i < l->count; i++)
		free(l->datas[i]);
	free(l->datas);
	free(l->entries);
	memset(l, 0, sizeof *l);
}

static int load_log(struct store *st, struct loaded_log *l, uint64_t *first_out,
		    uint64_t *last_out)
{
	uint64_t first, last;
	memset(l, 0, sizeof *l);
	int rc = st->ops->log_bounds(st->impl, &first, &last);
	if (rc != 0)
		return rc;
	*first_out = first;
	*last_out = last;
	if (last < first)
		return 0;
	size_t n = (size_t)(last - first + 1);
	l->entries = calloc(n, sizeof *l->entries);
	l->datas = calloc(n, sizeof *l->datas);
	if (l->entries == NULL || l->datas == NULL)
		return KEEL_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct entry e;
		rc = st->ops->log_get(st->impl, first + i, &e);
		if (rc != 0)
			return rc;
		l->entries[i] = e;
		if (e.data_bytes > 0) {
			l->datas[i] = malloc(e.data_bytes);
			if (l->datas[i] == NULL)
				return KEEL_ENOMEM;
			memcpy(l->datas[i], e.data, e.data_bytes);
			l->entries[i].data = l->datas[i];
		}
		l->count = i + 1;
	}
	return 0;
}

static const struct member *find_member(const struct membership *m,
					keel_node_id id)
{
	for (uint32_t i = 0; i < m->member_count; i++)
		if (m->members[i].id == id)
			return &m->members[i];
	return NULL;
}

/* Flags given on a restart must agree with what DIR says. */
static int check_restart_flags(const struct node_config *c,
			       const struct membership *m, keel_node_id id,
			       char *err, size_t err_bytes)
{
	const struct member *self = find_member(m, id);
	if (self == NULL) {
		snprintf(err, err_bytes,
			 "node %llu is not a member of the cluster stored in %s",
			 (unsigned long long)id, c->data_dir);
		return KEEL_ECONFIG;
	}
	if (c->listen_addr[0] && strcmp(c->listen_addr, self->peer_addr) != 0) {
		snprintf(err, err_bytes,
			 "--listen %s contradicts %s (node %llu listens on %s); drop the flag or use that address",
			 c->listen_addr, c->data_dir, (unsigned long long)id,
			 self->peer_addr);
		return KEEL_ECONFIG;
	}
	if (c->client_addr[0] && self->client_addr[0] &&
	    strcmp(c->client_addr, self->client_addr) != 0) {
		snprintf(err, err_bytes,
			 "--client %s contradicts %s (node %llu serves clients on %s)",
			 c->client_addr, c->data_dir, (unsigned long long)id,
			 self->client_addr);
		return KEEL_ECONFIG;
	}
	for (uint32_t i = 0; i < c->peer_count; i++) {
		const struct member *p = find_member(m, c->peers[i].id);
		if (p == NULL || strcmp(p->peer_addr, c->peers[i].peer_addr) != 0) {
			snprintf(err, err_bytes,
				 "--peers entry %llu=%s contradicts the membership stored in %s",
				 (unsigned long long)c->peers[i].id,
				 c->peers[i].peer_addr, c->data_dir);
			return KEEL_ECONFIG;
		}
	}
	return 0;
}

static int write_ids(struct store *st, uint64_t cluster_id, keel_node_id id)
{
	int rc = st->ops->write_begin(st->impl);
	if (rc != 0)
		return rc;
	rc = st->ops->set_ids(st->impl, cluster_id, id);
	if (rc != 0) {
		st->ops->write_abort(st->impl);
		return rc;
	}
	rc = st->ops->write_commit(st->impl);
	if (rc == 0)
		rc = st->ops->sync(st->impl);
	return rc;
}

/* Whatever a snapshot install left staged before a crash is garbage
 * (core/store.h): clear it once at start. */
static int clear_staging(struct store *st)
{
	int rc = st->ops->write_begin(st->impl);
	if (rc != 0)
		return rc;
	rc = st->ops->stage_clear(st->impl);
	if (rc != 0) {
		st->ops->write_abort(st->impl);
		return rc;
	}
	rc = st->ops->write_commit(st->impl);
	return rc == 0 ? st->ops->sync(st->impl) : rc;
}

/* An empty DIR with --id and --cluster-id (no --bootstrap, no --join): a
 * node added with `keelctl members add`, started with the id it printed. */
static bool manual_add(const struct node_config *cfg)
{
	return !cfg->bootstrap && cfg->join_count == 0 && cfg->id != 0 &&
	       cfg->cluster_id != 0;
}

/* A new node on an empty DIR: learn (--join) or take (members add) its id
 * and cluster id, and store them before serving. Returns 0 or an error
 * (printed). */
static int join_or_add(const struct node_config *cfg, struct store *st,
		       uint64_t *cluster_id, keel_node_id *id)
{
	char err[CONFIG_ERR_BYTES_MAX];
	if (cfg->listen_addr[0] == '\0' || cfg->client_addr[0] == '\0') {
		fprintf(stderr, "keel: a new member needs --listen and --client\n");
		return KEEL_ECONFIG;
	}
	if (cfg->join_count == 0) {
		*id = cfg->id;
		*cluster_id = cfg->cluster_id;
		LOG_INFO("starting as node %llu of cluster %llu (added with keelctl members add); waiting for the leader",
			 (unsigned long long)*id, (unsigned long long)*cluster_id);
	} else {
		LOG_INFO("joining through %s as %s (clients %s)", cfg->join[0],
			 cfg->listen_addr, cfg->client_addr);
		int rc = join_ask(cfg, id, cluster_id, err, sizeof err);
		if (rc != 0) {
			fprintf(stderr, "keel: cannot join: %s\n", err);
			return rc;
		}
		LOG_INFO("joined cluster %llu as node %llu (learner)",
			 (unsigned long long)*cluster_id, (unsigned long long)*id);
		struct join_record jr;
		memset(&jr, 0, sizeof jr);
		snprintf(jr.listen_addr, sizeof jr.listen_addr, "%s", cfg->listen_addr);
		snprintf(jr.client_addr, sizeof jr.client_addr, "%s", cfg->client_addr);
		jr.join_count = cfg->join_count;
		memcpy(jr.join, cfg->join, sizeof jr.join);
		rc = join_record_write(cfg->data_dir, &jr, err, sizeof err);
		if (rc != 0) {
			fprintf(stderr, "keel: %s\n", err);
			return rc;
		}
	}
	int rc = write_ids(st, *cluster_id, *id);
	if (rc != 0)
		fprintf(stderr, "keel: cannot write %s: %s\n", cfg->data_dir,
			keel_err_msg(rc));
	return rc;
}

static int run(struct node_config *cfg)
{
	char err[4 * CONFIG_PATH_BYTES_MAX];
	mkdir(cfg->data_dir, 0755);
	struct lmdb_store ls;
	struct lmdb_store_config lc = { .dir = cfg->data_dir, .create = true,
					.map_bytes = cfg->map_bytes,
					.writemap = cfg->lmdb_writemap,
					.reserve_limit_bytes =
						cfg->debug_reserve_limit_bytes };
	int rc = lmdb_store_open(&ls, &lc);
	if (rc != 0)
		return die(1, "cannot open the data directory %s: %s", cfg->data_dir,
			   ls.error);
	struct store st;
	lmdb_store_bind(&ls, &st);
	struct store_meta meta;
	rc = st.ops->meta_get(st.impl, &meta);
	if (rc != 0) {
		lmdb_store_close(&ls);
		return die(1, "cannot read %s: %s", cfg->data_dir, keel_err_msg(rc));
	}
	int code = 2;
	struct membership boot;
	uint64_t cluster_id = meta.cluster_id;
	keel_node_id id = meta.node_id;
	bool pristine_member = false; /* joined or added: waits to be contacted */
	if (meta.cluster_id == 0 && (cfg->join_count > 0 || manual_add(cfg))) {
		rc = join_or_add(cfg, &st, &cluster_id, &id);
		if (rc != 0) {
			code = rc == KEEL_ECONFIG ? 2 : 1;
			goto out_close_store;
		}
		pristine_member = true;
	} else if (meta.cluster_id == 0) {
		if (!cfg->bootstrap) {
			fprintf(stderr,
				"keel: %s holds no keel data; start a new cluster with --bootstrap --id N --listen ... --client ... --peers ...\n",
				cfg->data_dir);
			goto out_close_store;
		}
		struct config_peer list[KEEL_MEMBERS_MAX];
		uint32_t n;
		bootstrap_members(cfg, &boot, list, &n);
		id = cfg->id;
		cluster_id = cfg->cluster_id ? cfg->cluster_id :
					       config_cluster_id(list, n);
		rc = codec_membership_validate(&boot);
		if (rc != 0) {
			fprintf(stderr, "keel: the bootstrap membership is invalid: %s\n",
				keel_err_msg(rc));
			goto out_close_store;
		}
		rc = write_ids(&st, cluster_id, id);
		if (rc != 0) {
			code = 1;
			fprintf(stderr, "keel: cannot write %s: %s\n", cfg->data_dir,
				keel_err_msg(rc));
			goto out_close_store;
		}
	} else {
		if (cfg->join_count > 0)
			LOG_INFO("%s already holds node %llu of cluster %llu; --join ignored",
				 cfg->data_dir, (unsigned long long)meta.node_id,
				 (unsigned long long)meta.cluster_id);
		if (cfg->id != 0 && cfg->id != meta.node_id) {
			fprintf(stderr,
				"keel: --id %llu contradicts %s, which belongs to node %llu\n",
				(unsigned long long)cfg->id, cfg->data_dir,
				(unsigned long long)meta.node_id);
			goto out_close_store;
		}
		if (cfg->cluster_id != 0 && cfg->cluster_id != meta.cluster_id) {
			fprintf(stderr,
				"keel: --cluster-id %llu contradicts %s (cluster %llu)\n",
				(unsigned long long)cfg->cluster_id, cfg->data_dir,
				(unsigned long long)meta.cluster_id);
			goto out_close_store;
		}
		bootstrap_members(cfg, &boot, (struct config_peer[KEEL_MEMBERS_MAX]){ 0 },
				  &(uint32_t){ 0 });
	}
	log_set_node(id);

	struct loaded_log lg;
	uint64_t first = 0, last = 0;
	rc = load_log(&st, &lg, &first, &last);
	if (rc != 0) {
		loaded_free(&lg);
		code = 1;
		fprintf(stderr, "keel: cannot read the log in %s: %s\n",
			cfg->data_dir, keel_err_msg(rc));
		goto out_close_store;
	}
	struct raft_options o;
	raft_options_default(&o, id,
			     (uint64_t)time(NULL) * 6364136223846793005ull ^
				     (uint64_t)getpid() ^ id);
	o.election_ticks = cfg->election_ticks;
	o.heartbeat_ticks = cfg->heartbeat_ticks;
	o.log_tail_entries = cfg->log_tail_entries;
	o.log_tail_bytes = cfg->log_tail_bytes;
	struct raft_restore restore = {
		.hard_state = meta.hard_state,
		.snapshot_index = meta.snapshot_index,
		.snapshot_term = meta.snapshot_term,
		.snapshot_membership = meta.snapshot_membership,
		.applied_index = meta.applied_index,
		.entries = lg.entries,
		.entry_count = lg.count,
	};
	struct raft *r = malloc(raft_sizeof());
	rc = r == NULL ? KEEL_ENOMEM : raft_init(r, &o, &restore);
	loaded_free(&lg);
	if (rc != 0) {
		free(r);
		code = 1;
		fprintf(stderr, "keel: cannot restore Raft state from %s: %s\n",
			cfg->data_dir, keel_err_msg(rc));
		goto out_close_store;
	}
	struct join_record jr;
	memset(&jr, 0, sizeof jr);
	int jrc = join_record_read(cfg->data_dir, &jr, err, sizeof err);
	if (jrc != 0 && jrc != KEEL_ENOTFOUND) {
		fprintf(stderr, "keel: %s\n", err);
		goto out_close_raft;
	}
	bool joined = jrc == 0;
	if (last < first && meta.snapshot_index == 0 &&
	    (pristine_member || joined || (cfg->id != 0 && !cfg->bootstrap))) {
		/* Joined or added, and nothing received yet: the leader will
		 * send the log or a snapshot. */
		pristine_member = true;
	} else if (last < first && meta.snapshot_index == 0) {
		/* A new cluster (or a bootstrap interrupted before its first
		 * entry was stored). */
		if (!cfg->bootstrap) {
			fprintf(stderr,
				"keel: %s has no membership yet; rerun with --bootstrap and the same --peers\n",
				cfg->data_dir);
			goto out_close_raft;
		}
		rc = raft_bootstrap(r, &boot);
		if (rc != 0) {
			fprintf(stderr, "keel: bootstrap failed: %s\n", keel_err_msg(rc));
			goto out_close_raft;
		}
	} else if (cfg->bootstrap) {
		LOG_INFO("%s is already bootstrapped; restarting from it", cfg->data_dir);
	}
	struct raft_status rs;
	raft_status(r, &rs);
	char listen_addr[KEEL_ADDR_BYTES_MAX], client_addr[KEEL_ADDR_BYTES_MAX];
	if (rs.membership.member_count == 0) {
		/* Nothing received yet: the addresses this node joined with. */
		if (!pristine_member) {
			fprintf(stderr, "keel: %s holds no membership\n", cfg->data_dir);
			goto out_close_raft;
		}
		snprintf(listen_addr, sizeof listen_addr, "%s",
			 joined ? jr.listen_addr : cfg->listen_addr);
		snprintf(client_addr, sizeof client_addr, "%s",
			 joined ? jr.client_addr : cfg->client_addr);
		if (listen_addr[0] == '\0' || client_addr[0] == '\0') {
			fprintf(stderr,
				"keel: node %llu has not received the membership yet: pass --listen and --client\n",
				(unsigned long long)id);
			goto out_close_raft;
		}
	} else {
		if (check_restart_flags(cfg, &rs.membership, id, err, sizeof err) != 0) {
			fprintf(stderr, "keel: %s\n", err);
			goto out_close_raft;
		}
		const struct member *self = find_member(&rs.membership, id);
		KEEL_ASSERT(self != NULL); /* check_restart_flags */
		snprintf(listen_addr, sizeof listen_addr, "%s", self->peer_addr);
		snprintf(client_addr, sizeof client_addr, "%s",
			 self->client_addr[0] ? self->client_addr : cfg->client_addr);
	}
	rc = clear_staging(&st);
	if (rc != 0) {
		code = 1;
		fprintf(stderr, "keel: cannot clear the snapshot staging area in %s: %s\n",
			cfg->data_dir, keel_err_msg(rc));
		goto out_close_raft;
	}
	if (client_addr[0] == '\0') {
		fprintf(stderr, "keel: no client address: pass --client HOST:PORT\n");
		goto out_close_raft;
	}

	uv_loop_t loop;
	uv_loop_init(&loop);
	struct server *s = calloc(1, sizeof *s);
	if (s == NULL) {
		code = 1;
		goto out_close_raft;
	}
	s->cfg = *cfg;
	s->raft = r;
	s->store = &st;
	s->cluster_id = cluster_id;
	s->id = id;
	log_set_term(rs.term);
	rc = server_start(s, &loop, listen_addr, client_addr);
	if (rc != 0) {
		code = 1;
		server_abort(s);
	}
	struct join_promoter jp;
	memset(&jp, 0, sizeof jp);
	if (rc == 0 && joined &&
	    join_promoter_start(&jp, id, &jr, &s->self_role) != 0)
		LOG_WARN("cannot start the promotion thread; promote this node with keelctl members promote %llu",
			 (unsigned long long)id);
	uv_run(&loop, UV_RUN_DEFAULT);
	join_promoter_stop(&jp);
	code = rc != 0 ? 1 : s->exit_code;
	server_free(s);
	free(s);
	int lrc = uv_loop_close(&loop);
	if (lrc != 0)
		LOG_WARN("event loop closed with handles open: %s", uv_strerror(lrc));
	if (code == 0)
		LOG_INFO("stopped cleanly");
	if (code == 3)
		LOG_ERROR("the store said: %s", ls.error[0] ? ls.error : "(nothing)");
out_close_raft:
	raft_close(r);
	free(r);
out_close_store:
	lmdb_store_close(&ls);
	return code;
}

int main(int argc, char **argv)
{
	struct node_config cfg;
	char err[CONFIG_ERR_BYTES_MAX];
	config_defaults(&cfg);
	if (config_parse(&cfg, argc, argv, err, sizeof err) != 0) {
		fprintf(stderr, "keel: %s\n", err);
		return 2;
	}
	if (cfg.help) {
		fputs(usage, stdout);
		return 0;
	}
	if (cfg.version) {
		printf("keel %s (protocol %u)\n", KEEL_VERSION, CODEC_VERSION);
		return 0;
	}
	if (argc == 1) {
		fputs(usage, stderr);
		return 2;
	}
	if (config_validate(&cfg, err, sizeof err) != 0) {
		fprintf(stderr, "keel: %s\n", err);
		return 2;
	}
	/* A write to a connection its peer closed must fail with EPIPE (libuv
	 * reports it and the connection is closed), not kill the node:
	 * libuv leaves SIGPIPE to the application. */
	signal(SIGPIPE, SIG_IGN);
	enum log_level lvl = LOG_INFO;
	log_level_parse(cfg.log_level, &lvl);
	log_set_level(lvl);
	return run(&cfg);
}
