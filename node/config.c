/* config.c: flags + config file for bin/keel (see config.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "../core/err.h"
#include "../core/raft.h"
#include "config.h"

static int fail(char *err, size_t err_bytes, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t err_bytes, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, err_bytes, fmt, ap);
	va_end(ap);
	return KEEL_ECONFIG;
}

void config_defaults(struct node_config *c)
{
	memset(c, 0, sizeof *c);
	snprintf(c->log_level, sizeof c->log_level, "info");
	c->tick_ms = CONFIG_TICK_MS_DEFAULT;
	c->election_ticks = CONFIG_ELECTION_TICKS_DEFAULT;
	c->heartbeat_ticks = CONFIG_HEARTBEAT_TICKS_DEFAULT;
	c->pending_max = CONFIG_PENDING_MAX_DEFAULT;
	c->log_tail_entries = RAFT_LOG_TAIL_ENTRIES_DEFAULT;
	c->log_tail_bytes = RAFT_LOG_TAIL_BYTES_DEFAULT;
	c->snapshot_rate_bytes = CONFIG_SNAPSHOT_RATE_BYTES_DEFAULT;
}

static int parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	if (s[0] < '0' || s[0] > '9')
		return KEEL_EINVAL;
	errno = 0;
	char *end = NULL;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno != 0 || *end != '\0' || v < lo || v > hi)
		return KEEL_EINVAL;
	*out = v;
	return 0;
}

int config_addr_check(const char *addr)
{
	size_t n = strlen(addr);
	if (n == 0 || n >= KEEL_ADDR_BYTES_MAX)
		return KEEL_EINVAL;
	const char *colon = strrchr(addr, ':');
	if (colon == NULL || colon == addr)
		return KEEL_EINVAL;
	uint64_t port;
	if (parse_u64(colon + 1, 1, 65535, &port) != 0)
		return KEEL_EINVAL;
	unsigned a[4];
	char tail;
	char host[KEEL_ADDR_BYTES_MAX];
	memcpy(host, addr, (size_t)(colon - addr));
	host[colon - addr] = '\0';
	if (sscanf(host, "%u.%u.%u.%u%c", &a[0], &a[1], &a[2], &a[3], &tail) != 4)
		return KEEL_EINVAL;
	for (int i = 0; i < 4; i++)
		if (a[i] > 255)
			return KEEL_EINVAL;
	return 0;
}

static int copy_addr(char *dst, const char *src, const char *where, char *err,
		     size_t err_bytes)
{
	if (config_addr_check(src) != 0)
		return fail(err, err_bytes,
			    "%s: '%s' is not an address; use IPv4:PORT, e.g. 127.0.0.1:7001",
			    where, src);
	snprintf(dst, KEEL_ADDR_BYTES_MAX, "%s", src);
	return 0;
}

int config_peers_parse(const char *s, struct config_peer *peers,
		       uint32_t *count, char *err, size_t err_bytes)
{
	char buf[CONFIG_LINE_BYTES_MAX];
	if (strlen(s) >= sizeof buf)
		return fail(err, err_bytes, "peer list is too long");
	snprintf(buf, sizeof buf, "%s", s);
	uint32_t n = 0;
	char *save = NULL;
	for (char *tok = strtok_r(buf, ",", &save); tok != NULL;
	     tok = strtok_r(NULL, ",", &save)) {
		if (n == KEEL_MEMBERS_MAX)
			return fail(err, err_bytes, "more than %u peers",
				    KEEL_MEMBERS_MAX);
		char *eq = strchr(tok, '=');
		if (eq == NULL)
			return fail(err, err_bytes,
				    "'%s': expected ID=HOST:PORT[/CLIENTHOST:CLIENTPORT]",
				    tok);
		*eq = '\0';
		uint64_t id;
		if (parse_u64(tok, 1, UINT64_MAX, &id) != 0)
			return fail(err, err_bytes,
				    "'%s' is not a node id (a positive integer)", tok);
		for (uint32_t i = 0; i < n; i++)
			if (peers[i].id == id)
				return fail(err, err_bytes, "node id %llu listed twice",
					    (unsigned long long)id);
		struct config_peer *p = &peers[n];
		memset(p, 0, sizeof *p);
		p->id = id;
		char *slash = strchr(eq + 1, '/');
		if (slash != NULL)
			*slash = '\0';
		if (config_addr_check(eq + 1) != 0)
			return fail(err, err_bytes,
				    "peer %llu: '%s' is not an address; use IPv4:PORT",
				    (unsigned long long)id, eq + 1);
		snprintf(p->peer_addr, sizeof p->peer_addr, "%s", eq + 1);
		if (slash != NULL) {
			if (config_addr_check(slash + 1) != 0)
				return fail(err, err_bytes,
					    "peer %llu: client address '%s' is not IPv4:PORT",
					    (unsigned long long)id, slash + 1);
			snprintf(p->client_addr, sizeof p->client_addr, "%s",
				 slash + 1);
		}
		n++;
	}
	if (n == 0)
		return fail(err, err_bytes, "empty peer list");
	*count = n;
	return 0;
}

static int set_u32(uint32_t *dst, const char *value, uint64_t lo, uint64_t hi,
		   const char *where, char *err, size_t err_bytes)
{
	uint64_t v;
	if (parse_u64(value, lo, hi, &v) != 0)
		return fail(err, err_bytes,
			    "%s: expected an integer in %llu..%llu, got '%s'",
			    where, (unsigned long long)lo, (unsigned long long)hi,
			    value);
	*dst = (uint32_t)v;
	return 0;
}

static int set_bool(bool *dst, const char *value, const char *where, char *err,
		    size_t err_bytes)
{
	if (strcmp(value, "true") == 0 || strcmp(value, "1") == 0)
		*dst = true;
	else if (strcmp(value, "false") == 0 || strcmp(value, "0") == 0)
		*dst = false;
	else
		return fail(err, err_bytes, "%s: expected true or false, got '%s'",
			    where, value);
	return 0;
}

static int set_u64(uint64_t *dst, const char *value, uint64_t lo, uint64_t hi,
		   const char *where, char *err, size_t err_bytes)
{
	if (parse_u64(value, lo, hi, dst) != 0)
		return fail(err, err_bytes,
			    "%s: expected an integer in %llu..%llu, got '%s'",
			    where, (unsigned long long)lo, (unsigned long long)hi,
			    value);
	return 0;
}

int config_set(struct node_config *c, const char *name, const char *value,
	       const char *where, char *err, size_t err_bytes)
{
	if (strcmp(name, "id") == 0) {
		uint64_t v;
		if (parse_u64(value, 1, UINT64_MAX, &v) != 0)
			return fail(err, err_bytes,
				    "%s: node id must be a positive integer, got '%s'",
				    where, value);
		c->id = v;
		return 0;
	}
	if (strcmp(name, "data") == 0 || strcmp(name, "config") == 0) {
		char *dst = name[0] == 'd' ? c->data_dir : c->config_file;
		if (value[0] == '\0' || strlen(value) >= CONFIG_PATH_BYTES_MAX)
			return fail(err, err_bytes, "%s: path empty or too long",
				    where);
		snprintf(dst, CONFIG_PATH_BYTES_MAX, "%s", value);
		return 0;
	}
	if (strcmp(name, "listen") == 0)
		return copy_addr(c->listen_addr, value, where, err, err_bytes);
	if (strcmp(name, "client") == 0)
		return copy_addr(c->client_addr, value, where, err, err_bytes);
	if (strcmp(name, "http") == 0)
		return copy_addr(c->http_addr, value, where, err, err_bytes);
	if (strcmp(name, "redis") == 0)
		return copy_addr(c->redis_addr, value, where, err, err_bytes);
	if (strcmp(name, "peers") == 0) {
		char sub[CONFIG_ERR_BYTES_MAX];
		if (config_peers_parse(value, c->peers, &c->peer_count, sub,
				       sizeof sub) != 0)
			return fail(err, err_bytes, "%s: %s", where, sub);
		return 0;
	}
	if (strcmp(name, "join") == 0) {
		char buf[CONFIG_LINE_BYTES_MAX];
		snprintf(buf, sizeof buf, "%s", value);
		char *save = NULL;
		c->join_count = 0;
		for (char *t = strtok_r(buf, ",", &save); t != NULL;
		     t = strtok_r(NULL, ",", &save)) {
			if (c->join_count == CONFIG_JOIN_MAX)
				return fail(err, err_bytes, "%s: too many addresses",
					    where);
			int rc = copy_addr(c->join[c->join_count], t, where, err,
					   err_bytes);
			if (rc != 0)
				return rc;
			c->join_count++;
		}
		if (c->join_count == 0)
			return fail(err, err_bytes,
				    "%s: expected HOST:PORT,... (client addresses of running members)",
				    where);
		return 0;
	}
	if (strcmp(name, "bootstrap") == 0)
		return set_bool(&c->bootstrap, value, where, err, err_bytes);
	if (strcmp(name, "lmdb-writemap") == 0)
		return set_bool(&c->lmdb_writemap, value, where, err, err_bytes);
	if (strcmp(name, "cluster-id") == 0) {
		uint64_t v;
		if (parse_u64(value, 1, UINT64_MAX, &v) != 0)
			return fail(err, err_bytes,
				    "%s: cluster id must be a positive integer, got '%s'",
				    where, value);
		c->cluster_id = v;
		return 0;
	}
	if (strcmp(name, "log-level") == 0) {
		if (strcmp(value, "error") != 0 && strcmp(value, "warn") != 0 &&
		    strcmp(value, "info") != 0 && strcmp(value, "debug") != 0)
			return fail(err, err_bytes,
				    "%s: log level must be error, warn, info or debug, got '%s'",
				    where, value);
		snprintf(c->log_level, sizeof c->log_level, "%s", value);
		return 0;
	}
	if (strcmp(name, "tick-ms") == 0)
		return set_u32(&c->tick_ms, value, 1, 10000, where, err, err_bytes);
	if (strcmp(name, "election-ticks") == 0)
		return set_u32(&c->election_ticks, value, 2, 100000, where, err,
			       err_bytes);
	if (strcmp(name, "heartbeat-ticks") == 0)
		return set_u32(&c->heartbeat_ticks, value, 1, 100000, where, err,
			       err_bytes);
	if (strcmp(name, "map-bytes") == 0) {
		uint64_t v;
		if (parse_u64(value, 1u << 20, 1ull << 44, &v) != 0)
			return fail(err, err_bytes,
				    "%s: expected a size in bytes from 1 MiB to 16 TiB, got '%s'",
				    where, value);
		c->map_bytes = v;
		return 0;
	}
	if (strcmp(name, "pending-max") == 0)
		return set_u32(&c->pending_max, value, 1, 1000000, where, err,
			       err_bytes);
	if (strcmp(name, "log-tail-entries") == 0)
		return set_u32(&c->log_tail_entries, value, 1, 100000000, where,
			       err, err_bytes);
	if (strcmp(name, "log-tail-bytes") == 0)
		return set_u64(&c->log_tail_bytes, value, 1, 1ull << 40, where,
			       err, err_bytes);
	if (strcmp(name, "snapshot-rate-bytes") == 0)
		return set_u64(&c->snapshot_rate_bytes, value, 64u * 1024u,
			       1ull << 40, where, err, err_bytes);
	if (strcmp(name, "apply-flush-ms") == 0)
		return set_u32(&c->apply_flush_ms, value, 0,
			       CONFIG_APPLY_FLUSH_MS_MAX, where, err, err_bytes);
	if (strcmp(name, "debug-reserve-limit-bytes") == 0)
		return set_u64(&c->debug_reserve_limit_bytes, value, 0, 1ull << 44,
			       where, err, err_bytes);
	if (strcmp(name, "debug-snapshot-delay-ms") == 0)
		return set_u32(&c->debug_snapshot_delay_ms, value, 0,
			       CONFIG_DEBUG_SNAPSHOT_DELAY_MS_MAX, where, err,
			       err_bytes);
	return fail(err, err_bytes, "%s: unknown setting '%s' (see keel --help)",
		    where, name);
}

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' ||
			 s[n - 1] == '\r' || s[n - 1] == '\n'))
		s[--n] = '\0';
	return s;
}

int config_parse_text(struct node_config *c, const char *file_name,
		      const char *text, char *err, size_t err_bytes)
{
	uint32_t line_no = 0;
	const char *p = text;
	while (*p != '\0') {
		if (++line_no > CONFIG_FILE_LINES_MAX)
			return fail(err, err_bytes, "%s: more than %u lines",
				    file_name, CONFIG_FILE_LINES_MAX);
		const char *nl = strchr(p, '\n');
		size_t len = nl != NULL ? (size_t)(nl - p) : strlen(p);
		char where[CONFIG_PATH_BYTES_MAX + 32];
		snprintf(where, sizeof where, "%s line %u", file_name, line_no);
		if (len >= CONFIG_LINE_BYTES_MAX)
			return fail(err, err_bytes, "%s: line too long", where);
		char line[CONFIG_LINE_BYTES_MAX];
		memcpy(line, p, len);
		line[len] = '\0';
		p += len + (nl != NULL ? 1 : 0);
		char *hash = strchr(line, '#');
		if (hash != NULL)
			*hash = '\0';
		char *s = trim(line);
		if (*s == '\0')
			continue;
		char *eq = strchr(s, '=');
		if (eq == NULL)
			return fail(err, err_bytes, "%s: expected 'key = value'",
				    where);
		*eq = '\0';
		char *key = trim(s);
		char *value = trim(eq + 1);
		if (strcmp(key, "config") == 0)
			return fail(err, err_bytes,
				    "%s: 'config' cannot be set inside a config file",
				    where);
		int rc = config_set(c, key, value, where, err, err_bytes);
		if (rc != 0)
			return rc;
	}
	return 0;
}

#define CONFIG_FILE_BYTES_MAX (256u * 1024u)

static int read_file(const struct node_config *c, char **text, char *err,
		     size_t err_bytes)
{
	FILE *f = fopen(c->config_file, "r");
	if (f == NULL)
		return fail(err, err_bytes, "--config %s: cannot open: %s",
			    c->config_file, strerror(errno));
	char *buf = malloc(CONFIG_FILE_BYTES_MAX + 1);
	if (buf == NULL) {
		fclose(f);
		return fail(err, err_bytes, "out of memory");
	}
	size_t n = fread(buf, 1, CONFIG_FILE_BYTES_MAX + 1, f);
	fclose(f);
	if (n > CONFIG_FILE_BYTES_MAX) {
		free(buf);
		return fail(err, err_bytes, "--config %s: larger than %u bytes",
			    c->config_file, CONFIG_FILE_BYTES_MAX);
	}
	buf[n] = '\0';
	*text = buf;
	return 0;
}

static bool is_bool_flag(const char *name)
{
	return strcmp(name, "bootstrap") == 0 ||
	       strcmp(name, "lmdb-writemap") == 0 || strcmp(name, "help") == 0 ||
	       strcmp(name, "version") == 0;
}

int config_parse(struct node_config *c, int argc, char **argv, char *err,
		 size_t err_bytes)
{
	/* Pass 1: find --config so the file is applied before the flags. */
	for (int i = 1; i < argc; i++) {
		if (strncmp(argv[i], "--config=", 9) == 0)
			snprintf(c->config_file, sizeof c->config_file, "%s",
				 argv[i] + 9);
		else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
			snprintf(c->config_file, sizeof c->config_file, "%s",
				 argv[i + 1]);
	}
	if (c->config_file[0] != '\0') {
		char *text = NULL;
		int rc = read_file(c, &text, err, err_bytes);
		if (rc != 0)
			return rc;
		rc = config_parse_text(c, c->config_file, text, err, err_bytes);
		free(text);
		if (rc != 0)
			return rc;
	}
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		if (strncmp(arg, "--", 2) != 0)
			return fail(err, err_bytes,
				    "unexpected argument '%s' (flags start with --; see keel --help)",
				    arg);
		char name[64];
		const char *value = NULL;
		const char *eq = strchr(arg, '=');
		size_t name_len = eq != NULL ? (size_t)(eq - arg - 2) : strlen(arg + 2);
		if (name_len == 0 || name_len >= sizeof name)
			return fail(err, err_bytes, "bad flag '%s'", arg);
		memcpy(name, arg + 2, name_len);
		name[name_len] = '\0';
		char where[96];
		snprintf(where, sizeof where, "flag --%s", name);
		if (strcmp(name, "help") == 0 || strcmp(name, "version") == 0) {
			if (name[0] == 'h')
				c->help = true;
			else
				c->version = true;
			continue;
		}
		if (eq != NULL) {
			value = eq + 1;
		} else if (is_bool_flag(name)) {
			value = "true";
		} else {
			if (i + 1 >= argc)
				return fail(err, err_bytes, "%s needs a value", where);
			value = argv[++i];
		}
		int rc = config_set(c, name, value, where, err, err_bytes);
		if (rc != 0)
			return rc;
	}
	return 0;
}

int config_validate(const struct node_config *c, char *err, size_t err_bytes)
{
	if (c->data_dir[0] == '\0')
		return fail(err, err_bytes, "--data DIR is required");
	if (c->heartbeat_ticks >= c->election_ticks)
		return fail(err, err_bytes,
			    "--heartbeat-ticks (%u) must be below --election-ticks (%u)",
			    c->heartbeat_ticks, c->election_ticks);
	if (c->join_count > 0) {
		if (c->bootstrap)
			return fail(err, err_bytes,
				    "--join and --bootstrap exclude each other: join a running cluster or start a new one");
		if (c->id != 0 || c->peer_count > 0 || c->cluster_id != 0)
			return fail(err, err_bytes,
				    "--join takes no --id, --peers or --cluster-id: the cluster assigns the id");
		if (c->listen_addr[0] == '\0' || c->client_addr[0] == '\0')
			return fail(err, err_bytes,
				    "--join needs --listen HOST:PORT and --client HOST:PORT (what the cluster will know this node by)");
	}
	if (c->bootstrap) {
		if (c->id == 0)
			return fail(err, err_bytes, "--bootstrap needs --id N");
		if (c->listen_addr[0] == '\0' || c->client_addr[0] == '\0')
			return fail(err, err_bytes,
				    "--bootstrap needs --listen HOST:PORT and --client HOST:PORT");
		for (uint32_t i = 0; i < c->peer_count; i++) {
			const struct config_peer *p = &c->peers[i];
			if (p->id == c->id &&
			    strcmp(p->peer_addr, c->listen_addr) != 0)
				return fail(err, err_bytes,
					    "--peers lists this node (%llu) at %s but --listen is %s",
					    (unsigned long long)c->id, p->peer_addr,
					    c->listen_addr);
		}
	}
	return 0;
}

static int peer_cmp(const void *a, const void *b)
{
	const struct config_peer *x = a, *y = b;
	return x->id < y->id ? -1 : x->id > y->id;
}

uint64_t config_cluster_id(const struct config_peer *peers, uint32_t count)
{
	struct config_peer sorted[KEEL_MEMBERS_MAX];
	if (count > KEEL_MEMBERS_MAX)
		count = KEEL_MEMBERS_MAX;
	memcpy(sorted, peers, count * sizeof *peers);
	qsort(sorted, count, sizeof *sorted, peer_cmp);
	char text[KEEL_MEMBERS_MAX * (KEEL_ADDR_BYTES_MAX + 32)];
	size_t len = 0;
	for (uint32_t i = 0; i < count; i++) {
		int n = snprintf(text + len, sizeof text - len, "%llu=%s;",
				 (unsigned long long)sorted[i].id,
				 sorted[i].peer_addr);
		len += (size_t)n;
	}
	uint64_t h = XXH3_64bits(text, len);
	return h == 0 ? 1 : h;
}
