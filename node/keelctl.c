/*
 * keelctl.c: keel's command-line client.
 *
 *   keelctl [--endpoints H:P,...] [--timeout-ms N] [--attempts N] COMMAND
 *     put K V | get K [--stale] | del K | cas K OLD NEW | cas --absent K NEW
 *     append K V | status
 *     members list | members add PEER_ADDR CLIENT_ADDR | members remove ID
 *     members promote ID | transfer-leader ID
 *     bench --clients C --seconds S --op put|get --value-bytes B
 *           [--keys N] [--count N]
 *     workload --clients C --seconds S --keys N --history FILE
 *
 * Exit codes: 0 done; 1 the key is absent (get, del) or the cas did not
 * match; 2 usage; 3 failed, nothing applied (no leader, refused, bad
 * request); 4 outcome unknown (a write timed out: it may or may not have
 * taken effect).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/err.h"
#include "../core/raft.h"
#include "benchload.h"
#include "client.h"
#include "config.h"

#define EXIT_ABSENT 1
#define EXIT_USAGE 2
#define EXIT_FAILED 3
#define EXIT_UNKNOWN 4
#define BENCH_CLIENTS_MAX 1024u
#define ENDPOINTS_DEFAULT "127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103"

static const char usage[] =
	"usage: keelctl [--endpoints HOST:PORT,...] [--timeout-ms N] [--attempts N] COMMAND\n"
	"  put K V            write V under K\n"
	"  get K [--stale]    print K's value (linearizable; --stale: any node, labelled)\n"
	"  del K              delete K\n"
	"  cas K OLD NEW      set K to NEW if it holds OLD\n"
	"  cas --absent K NEW set K to NEW if it is absent\n"
	"  append K V         append V to K's value\n"
	"  status             node status (id, role, term, leader, indexes, members)\n"
	"  members list                  members (the leader's view if reachable): ID ROLE PEER CLIENT\n"
	"  members add PEER_ADDR CLIENT_ADDR\n"
	"                                add a learner; prints its assigned id\n"
	"  members promote ID            make learner ID a voter (once it caught up)\n"
	"  members remove ID             remove voter or learner ID\n"
	"  transfer-leader ID            hand leadership to voter ID\n"
	"  bench --clients C --seconds S --op put|get --value-bytes B [--keys N] [--count N]\n"
	"  workload --clients C --seconds S --keys N --history FILE\n"
	"  probe HOST:PORT KIND   (testing: send bad input, expect a close)\n"
	"endpoints default to $KEEL_ENDPOINTS or " ENDPOINTS_DEFAULT "\n"
	"exit: 0 ok, 1 absent/cas mismatch, 2 usage, 3 failed (not applied), 4 outcome unknown\n";

static int fail_code(int rc, const struct kc *c, const char *what)
{
	if (rc == KEEL_EINDETERMINATE) {
		fprintf(stderr, "keelctl: %s: timed out, outcome unknown: %s\n", what,
			kc_last_error(c));
		return EXIT_UNKNOWN;
	}
	fprintf(stderr, "keelctl: %s failed: %s (%s)\n", what,
		c->last_error[0] ? kc_last_error(c) : keel_err_msg(rc),
		rc == KEEL_ENOLEADER ? "not applied" : keel_err_msg(rc));
	return EXIT_FAILED;
}

static int definite(const struct kc_result *r, const char *what)
{
	switch (r->status) {
	case CLIENT_OK:
		return 0;
	case CLIENT_NOT_FOUND:
		fprintf(stderr, "keelctl: %s: key not found\n", what);
		return EXIT_ABSENT;
	case CLIENT_CAS_FAILED:
		fprintf(stderr, "keelctl: %s: current value does not match\n", what);
		return EXIT_ABSENT;
	default:
		fprintf(stderr, "keelctl: %s: %s%s%s\n", what,
			kc_status_name(r->status), r->message[0] ? ": " : "",
			r->message);
		return EXIT_FAILED;
	}
}

static int print_status(const struct kc_result *r)
{
	if (!r->has_node_status) {
		fprintf(stderr, "keelctl: status: no status in the answer\n");
		return EXIT_FAILED;
	}
	const struct client_node_status *s = &r->node_status;
	static const char *const roles[] = { "?", "follower", "precandidate",
					     "candidate", "leader" };
	printf("id %" PRIu64 "\nrole %s\nterm %" PRIu64 "\nleader %" PRIu64
	       "\ncommit %" PRIu64 "\napplied %" PRIu64 "\nlast_index %" PRIu64 "\n",
	       s->id, s->role <= 4 ? roles[s->role] : "?", s->term, s->leader,
	       s->commit_index, s->applied_index, s->last_index);
	for (uint32_t i = 0; i < s->membership.member_count; i++) {
		const struct member *m = &s->membership.members[i];
		printf("member %" PRIu64 " %s peer %s client %s\n", m->id,
		       m->role == MEMBER_VOTER ? "voter" : "learner", m->peer_addr,
		       m->client_addr[0] ? m->client_addr : "-");
	}
	return 0;
}

static int simple(struct kc *c, int argc, char **argv)
{
	const char *cmd = argv[0];
	struct kc_result r;
	int rc;
#define NEED(n)                                                            \
	do {                                                               \
		if (argc != (n)) {                                         \
			fprintf(stderr, "keelctl: %s: wrong arguments\n%s", cmd, usage); \
			return EXIT_USAGE;                                 \
		}                                                          \
	} while (0)
#define LEN(s) ((uint32_t)strlen(s))
	if (strcmp(cmd, "put") == 0) {
		NEED(3);
		rc = kc_put(c, argv[1], LEN(argv[1]), argv[2], LEN(argv[2]), &r);
	} else if (strcmp(cmd, "get") == 0) {
		bool stale = argc == 3 && strcmp(argv[2], "--stale") == 0;
		if (argc != 2 && !stale)
			NEED(2);
		rc = kc_get(c, argv[1], LEN(argv[1]), stale, &r);
		if (rc == 0 && r.status == CLIENT_OK) {
			fwrite(r.value, 1, r.value_bytes, stdout);
			fputc('\n', stdout);
			if (r.stale)
				fprintf(stderr, "keelctl: (stale read)\n");
		} else if (rc == 0 && r.stale) {
			fprintf(stderr, "keelctl: (stale read)\n");
		}
	} else if (strcmp(cmd, "del") == 0) {
		NEED(2);
		rc = kc_del(c, argv[1], LEN(argv[1]), &r);
	} else if (strcmp(cmd, "cas") == 0) {
		if (argc == 4 && strcmp(argv[1], "--absent") == 0)
			rc = kc_cas(c, argv[2], LEN(argv[2]), NULL, 0, true, argv[3],
				    LEN(argv[3]), &r);
		else {
			NEED(4);
			rc = kc_cas(c, argv[1], LEN(argv[1]), argv[2], LEN(argv[2]),
				    false, argv[3], LEN(argv[3]), &r);
		}
	} else if (strcmp(cmd, "append") == 0) {
		NEED(3);
		rc = kc_append(c, argv[1], LEN(argv[1]), argv[2], LEN(argv[2]), &r);
	} else if (strcmp(cmd, "status") == 0) {
		NEED(1);
		rc = kc_status(c, &r);
		if (rc == 0 && r.status == CLIENT_OK)
			return print_status(&r);
	} else {
		fprintf(stderr, "keelctl: unknown command '%s'\n%s", cmd, usage);
		return EXIT_USAGE;
	}
	if (rc != 0)
		return fail_code(rc, c, cmd);
	int code = definite(&r, cmd);
	kc_result_free(&r);
	return code;
}

/* ---- members ------------------------------------------------------------ */

static int parse_id(const char *s, keel_node_id *id)
{
	char *end = NULL;
	unsigned long long v = s[0] >= '0' && s[0] <= '9' ? strtoull(s, &end, 10) : 0;
	if (v == 0 || *end != '\0') {
		fprintf(stderr, "keelctl: '%s' is not a node id (a positive integer)\n", s);
		return EXIT_USAGE;
	}
	*id = v;
	return 0;
}

/* The leader's view when it can be had: a follower (or a removed node)
 * may be behind; ask the leader it names, once. */
static int leader_status(struct kc *c, struct kc_result *r)
{
	int rc = kc_status(c, r);
	if (rc != 0 || r->status != CLIENT_OK || !r->has_node_status)
		return rc;
	const struct client_node_status *s = &r->node_status;
	if (s->role == RAFT_LEADER || s->leader == KEEL_NODE_NONE)
		return 0;
	for (uint32_t i = 0; i < s->membership.member_count; i++) {
		const struct member *m = &s->membership.members[i];
		if (m->id != s->leader || m->client_addr[0] == '\0')
			continue;
		struct kc_config cfg = c->cfg;
		cfg.endpoint_count = 1;
		snprintf(cfg.endpoints[0], KEEL_ADDR_BYTES_MAX, "%s", m->client_addr);
		cfg.attempts_max = 2;
		struct kc lc;
		struct kc_result lr;
		if (kc_init(&lc, &cfg) == 0 && kc_status(&lc, &lr) == 0 &&
		    lr.status == CLIENT_OK && lr.has_node_status &&
		    lr.node_status.role == RAFT_LEADER) {
			kc_result_free(r);
			*r = lr;
		}
		kc_close(&lc);
		break;
	}
	return 0;
}

static int members_list(struct kc *c)
{
	struct kc_result r;
	int rc = leader_status(c, &r);
	if (rc != 0)
		return fail_code(rc, c, "members list");
	if (r.status != CLIENT_OK || !r.has_node_status)
		return definite(&r, "members list");
	const struct client_node_status *s = &r.node_status;
	static const char *const roles[] = { "?", "follower", "precandidate",
					     "candidate", "leader" };
	fprintf(stderr, "keelctl: as seen by node %" PRIu64 " (%s; leader %" PRIu64 ")\n",
		s->id, s->role <= 4 ? roles[s->role] : "?", s->leader);
	for (uint32_t i = 0; i < s->membership.member_count; i++) {
		const struct member *m = &s->membership.members[i];
		printf("%" PRIu64 " %s %s %s\n", m->id,
		       m->role == MEMBER_VOTER ? "voter" : "learner", m->peer_addr,
		       m->client_addr[0] ? m->client_addr : "-");
	}
	kc_result_free(&r);
	return 0;
}

static int member_change(struct kc *c, struct member_change *ch,
			 const char *what)
{
	struct kc_result r;
	int rc = kc_member_change(c, ch, &r);
	if (rc != 0)
		return fail_code(rc, c, what);
	int code = definite(&r, what);
	if (code == 0 && ch->kind == MEMBER_ADD_LEARNER) {
		printf("%" PRIu64 "\n", r.member_id);
		fprintf(stderr,
			"keelctl: node %" PRIu64 " is a learner of cluster %" PRIu64
			"; start it with: keel --id %" PRIu64 " --cluster-id %" PRIu64
			" --data DIR --listen %s --client %s\n",
			r.member_id, r.cluster_id, r.member_id, r.cluster_id,
			ch->peer_addr, ch->client_addr);
	}
	kc_result_free(&r);
	return code;
}

static int members(struct kc *c, int argc, char **argv)
{
	struct member_change ch;
	memset(&ch, 0, sizeof ch);
	const char *sub = argc > 1 ? argv[1] : "";
	if (strcmp(sub, "list") == 0 && argc == 2)
		return members_list(c);
	if (strcmp(sub, "add") == 0 && argc == 4) {
		for (int i = 2; i < 4; i++) {
			if (config_addr_check(argv[i]) != 0) {
				fprintf(stderr, "keelctl: members add: '%s' is not IPv4:PORT\n",
					argv[i]);
				return EXIT_USAGE;
			}
		}
		ch.kind = MEMBER_ADD_LEARNER;
		snprintf(ch.peer_addr, sizeof ch.peer_addr, "%s", argv[2]);
		snprintf(ch.client_addr, sizeof ch.client_addr, "%s", argv[3]);
		return member_change(c, &ch, "members add");
	}
	if ((strcmp(sub, "remove") == 0 || strcmp(sub, "promote") == 0) &&
	    argc == 3) {
		if (parse_id(argv[2], &ch.id) != 0)
			return EXIT_USAGE;
		ch.kind = sub[0] == 'r' ? MEMBER_REMOVE : MEMBER_PROMOTE;
		return member_change(c, &ch, sub[0] == 'r' ? "members remove" :
							     "members promote");
	}
	fprintf(stderr, "keelctl: members: expected list | add PEER_ADDR CLIENT_ADDR | remove ID | promote ID\n%s",
		usage);
	return EXIT_USAGE;
}

static int transfer_leader(struct kc *c, int argc, char **argv)
{
	keel_node_id to;
	if (argc != 2) {
		fprintf(stderr, "keelctl: transfer-leader: expected one node id\n%s", usage);
		return EXIT_USAGE;
	}
	if (parse_id(argv[1], &to) != 0)
		return EXIT_USAGE;
	struct kc_result r;
	int rc = kc_transfer_leader(c, to, &r);
	if (rc != 0)
		return fail_code(rc, c, "transfer-leader");
	int code = definite(&r, "transfer-leader");
	kc_result_free(&r);
	return code;
}

/* ---- bench ---------------------------------------------------------------- */

static double percentile(const uint64_t *hist, uint64_t total, double p)
{
	uint64_t want = (uint64_t)((double)total * p);
	uint64_t seen = 0;
	for (uint32_t b = 0; b < BENCH_HIST_BUCKETS; b++) {
		seen += hist[b];
		if (seen > want)
			return bench_bucket_us(b);
	}
	return 0;
}

static int opt_u64(int argc, char **argv, const char *name, uint64_t dflt,
		   uint64_t *out)
{
	*out = dflt;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], name) != 0)
			continue;
		char *end = NULL;
		if (i + 1 >= argc || (*out = strtoull(argv[i + 1], &end, 10), *end != '\0')) {
			fprintf(stderr, "keelctl: %s needs a number\n", name);
			return EXIT_USAGE;
		}
	}
	return 0;
}

static const char *opt_str(int argc, char **argv, const char *name,
			   const char *dflt)
{
	for (int i = 0; i + 1 < argc; i++)
		if (strcmp(argv[i], name) == 0)
			return argv[i + 1];
	return dflt;
}

static int bench(const struct kc_config *cfg, int argc, char **argv)
{
	struct bench_cfg bc = { .kc = *cfg };
	uint64_t clients, seconds, vb, keys, count;
	if (opt_u64(argc, argv, "--clients", 1, &clients) ||
	    opt_u64(argc, argv, "--seconds", 10, &seconds) ||
	    opt_u64(argc, argv, "--value-bytes", 100, &vb) ||
	    opt_u64(argc, argv, "--keys", 100000, &keys) ||
	    opt_u64(argc, argv, "--count", 0, &count))
		return EXIT_USAGE;
	const char *op = opt_str(argc, argv, "--op", "put");
	if (clients == 0 || clients > BENCH_CLIENTS_MAX || keys == 0 ||
	    vb > KEEL_VALUE_BYTES_MAX ||
	    (strcmp(op, "put") != 0 && strcmp(op, "get") != 0)) {
		fprintf(stderr, "keelctl: bench: --clients 1..%u, --keys > 0, --value-bytes <= %u, --op put|get\n",
			BENCH_CLIENTS_MAX, KEEL_VALUE_BYTES_MAX);
		return EXIT_USAGE;
	}
	bc.op = strcmp(op, "put") == 0 ? KV_PUT : KV_GET;
	bc.value_bytes = (uint32_t)vb;
	bc.keys = keys;
	bc.count_max = count;
	bc.clients = (uint32_t)clients;
	uint64_t start = bench_now_ns();
	bc.deadline_ns = start + seconds * 1000000000ull;
	static struct bench_stats st;
	int rc = bench_run(&bc, &st);
	if (rc != 0) {
		fprintf(stderr, "keelctl: bench: %s\n", keel_err_msg(rc));
		return EXIT_FAILED;
	}
	double secs = (double)(bench_now_ns() - start) / 1e9;
	printf("bench op=%s clients=%" PRIu64 " value_bytes=%" PRIu64 " seconds=%.1f\n",
	       op, clients, vb, secs);
	printf("ops %" PRIu64 " failed %" PRIu64 " unknown %" PRIu64 "\n", st.ops,
	       st.failures, st.unknown);
	printf("throughput %.0f ops/s\n", (double)st.ops / secs);
	printf("latency_us p50 %.0f p90 %.0f p99 %.0f p99.9 %.0f\n",
	       percentile(st.hist, st.ops, 0.50), percentile(st.hist, st.ops, 0.90),
	       percentile(st.hist, st.ops, 0.99), percentile(st.hist, st.ops, 0.999));
	return st.failures + st.unknown > 0 && st.ops == 0 ? EXIT_FAILED : 0;
}

#include "probe.h"
#include "workload.h"

int main(int argc, char **argv)
{
	struct kc_config cfg;
	kc_config_default(&cfg);
	const char *endpoints = getenv("KEEL_ENDPOINTS");
	if (endpoints == NULL || endpoints[0] == '\0')
		endpoints = ENDPOINTS_DEFAULT;
	int i = 1;
	for (; i < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
		if (strcmp(argv[i], "--help") == 0) {
			fputs(usage, stdout);
			return 0;
		}
		if (i + 1 >= argc) {
			fprintf(stderr, "keelctl: %s needs a value\n%s", argv[i], usage);
			return EXIT_USAGE;
		}
		if (strcmp(argv[i], "--endpoints") == 0)
			endpoints = argv[i + 1];
		else if (strcmp(argv[i], "--timeout-ms") == 0)
			cfg.timeout_ms = (uint32_t)strtoul(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--attempts") == 0)
			cfg.attempts_max = (uint32_t)strtoul(argv[i + 1], NULL, 10);
		else {
			fprintf(stderr, "keelctl: unknown flag %s\n%s", argv[i], usage);
			return EXIT_USAGE;
		}
	}
	if (i >= argc) {
		fputs(usage, stderr);
		return EXIT_USAGE;
	}
	char err[256];
	if (kc_parse_endpoints(&cfg, endpoints, err, sizeof err) != 0) {
		fprintf(stderr, "keelctl: %s\n", err);
		return EXIT_USAGE;
	}
	if (cfg.timeout_ms == 0 || cfg.attempts_max == 0) {
		fprintf(stderr, "keelctl: --timeout-ms and --attempts must be > 0\n");
		return EXIT_USAGE;
	}
	if (strcmp(argv[i], "bench") == 0)
		return bench(&cfg, argc - i - 1, argv + i + 1);
	if (strcmp(argv[i], "probe") == 0)
		return probe_run(argc - i - 1, argv + i + 1);
	if (strcmp(argv[i], "workload") == 0)
		return workload_run(&cfg, argc - i - 1, argv + i + 1);
	struct kc c;
	kc_init(&c, &cfg);
	int code;
	if (strcmp(argv[i], "members") == 0)
		code = members(&c, argc - i, argv + i);
	else if (strcmp(argv[i], "transfer-leader") == 0)
		code = transfer_leader(&c, argc - i, argv + i);
	else
		code = simple(&c, argc - i, argv + i);
	kc_close(&c);
	return code;
}
