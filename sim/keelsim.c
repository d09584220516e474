/*
 * keelsim.c: the simulator's command line (see sim.h and sim/SIM.md).
 *
 *   keelsim --seed N  [--nodes N] [--ops N] [--clients N] [--profile P]
 *                     [--trace FILE] [--history FILE] [--html DIR]
 *                     [--check-determinism] [--check-timeout-ms N] [--paranoid]
 *   keelsim --seeds A:B [the same options] [--jobs J]
 *
 * Each seed runs in a forked child (so an assertion in one seed is reported
 * as that seed's failure and the sweep goes on); --jobs runs that many
 * children at once. The simulation loop itself is single-threaded. Wall
 * time is measured around a run, never inside it.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../core/err.h"
#include "sim.h"

#define JOBS_MAX 64u
#define SEEDS_MAX 100000000ull
#define SEED_WALL_S_MAX 900u /* one seed (both runs with --check-determinism) */

struct cli {
	struct sim_opts o;
	uint64_t seed_lo, seed_hi;
	bool have_seed;
	uint32_t jobs;
	bool determinism;
	bool stats; /* KEELSIM_STATS set: one extra line per seed with events/s */
	const char *trace_path, *history_path;
};

/* What a child reports to its parent through a pipe. */
struct report {
	struct sim_result r;
	uint64_t wall_ms;
	int setup_rc;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: keelsim --seed N [--nodes 1-%u] [--ops N] [--clients 1-%u]\n"
		"               [--profile calm|net|crash|disk|all|swarm|member]\n"
		"               [--trace FILE] [--history FILE] [--html DIR]\n"
		"               [--check-determinism] [--check-timeout-ms N] [--paranoid]\n"
		"       keelsim --seeds A:B [the same options] [--jobs 1-%u]\n",
		SIM_NODES_MAX, SIM_CLIENTS_MAX - 1, JOBS_MAX);
}

static int parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	if (s == NULL || *s == 0 || *s == '-' || *s == '+')
		return -1;
	errno = 0;
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno != 0 || *end != 0 || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

static int bad(const char *flag, const char *val, const char *why)
{
	fprintf(stderr, "keelsim: %s %s: %s\n", flag, val ? val : "(missing)", why);
	usage(stderr);
	return 2;
}

static int parse(int argc, char **argv, struct cli *c)
{
	memset(c, 0, sizeof(*c));
	c->o.nodes = 3;
	c->o.ops = 1000;
	c->o.clients = 5;
	c->o.profile = SIM_PROFILE_ALL;
	c->o.check_timeout_ms = 20000;
	c->jobs = 1;
	for (int i = 1; i < argc; i++) {
		const char *f = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		uint64_t x;
		if (strcmp(f, "--help") == 0 || strcmp(f, "-h") == 0) {
			usage(stdout);
			exit(0);
		} else if (strcmp(f, "--check-determinism") == 0) {
			c->determinism = true;
			continue;
		} else if (strcmp(f, "--paranoid") == 0) {
			c->o.paranoid = true;
			continue;
		}
		if (v == NULL)
			return bad(f, NULL, "needs a value");
		i++;
		if (strcmp(f, "--seed") == 0) {
			if (parse_u64(v, 0, UINT64_MAX, &x) != 0)
				return bad(f, v, "not a number");
			c->seed_lo = c->seed_hi = x;
			c->have_seed = true;
		} else if (strcmp(f, "--seeds") == 0) {
			char lo[32];
			const char *colon = strchr(v, ':');
			uint64_t a, b;
			if (colon == NULL || (size_t)(colon - v) >= sizeof(lo))
				return bad(f, v, "expected A:B");
			memcpy(lo, v, (size_t)(colon - v));
			lo[colon - v] = 0;
			if (parse_u64(lo, 0, UINT64_MAX, &a) != 0 ||
			    parse_u64(colon + 1, 0, UINT64_MAX, &b) != 0 || b < a)
				return bad(f, v, "expected A:B with A <= B");
			if (b - a >= SEEDS_MAX)
				return bad(f, v, "too many seeds");
			c->seed_lo = a;
			c->seed_hi = b;
			c->have_seed = true;
		} else if (strcmp(f, "--nodes") == 0) {
			if (parse_u64(v, 1, SIM_NODES_MAX, &x) != 0)
				return bad(f, v, "must be 1..7");
			c->o.nodes = (uint32_t)x;
		} else if (strcmp(f, "--ops") == 0) {
			if (parse_u64(v, 1, SIM_OPS_MAX, &x) != 0)
				return bad(f, v, "must be 1..1000000");
			c->o.ops = (uint32_t)x;
		} else if (strcmp(f, "--clients") == 0) {
			if (parse_u64(v, 1, SIM_CLIENTS_MAX - 1, &x) != 0)
				return bad(f, v, "must be 1..15");
			c->o.clients = (uint32_t)x;
		} else if (strcmp(f, "--jobs") == 0) {
			if (parse_u64(v, 1, JOBS_MAX, &x) != 0)
				return bad(f, v, "must be 1..64");
			c->jobs = (uint32_t)x;
		} else if (strcmp(f, "--check-timeout-ms") == 0) {
			if (parse_u64(v, 1, 3600000, &x) != 0)
				return bad(f, v, "must be 1..3600000");
			c->o.check_timeout_ms = x;
		} else if (strcmp(f, "--profile") == 0) {
			if (sim_profile_parse(v, &c->o.profile) != 0)
				return bad(f, v, "unknown profile");
		} else if (strcmp(f, "--trace") == 0) {
			c->trace_path = v;
		} else if (strcmp(f, "--history") == 0) {
			c->history_path = v;
		} else if (strcmp(f, "--html") == 0) {
			c->o.html_dir = v;
		} else {
			i--;
			return bad(f, "", "unknown flag");
		}
	}
	c->stats = getenv("KEELSIM_STATS") != NULL;
	if (!c->have_seed)
		return bad("--seed", NULL, "give --seed N or --seeds A:B");
	if ((c->trace_path || c->history_path) && c->seed_lo != c->seed_hi)
		return bad("--trace/--history", "", "need a single seed");
	if (c->o.html_dir) {
		/* Created if missing, as keelcheck --html does. */
		struct stat st;
		if (mkdir(c->o.html_dir, 0777) != 0 && errno != EEXIST)
			return bad("--html", c->o.html_dir, "cannot create the directory");
		if (stat(c->o.html_dir, &st) != 0 || !S_ISDIR(st.st_mode))
			return bad("--html", c->o.html_dir, "not a directory");
	}
	return 0;
}

static uint64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static FILE *open_out(const char *path)
{
	if (path == NULL)
		return NULL;
	FILE *f = fopen(path, "w");
	if (f == NULL)
		fprintf(stderr, "keelsim: cannot write %s: %s\n", path, strerror(errno));
	return f;
}

/* The child's work: one seed (twice with --check-determinism). */
static void run_seed(const struct cli *c, uint64_t seed, struct report *rep)
{
	struct sim_opts o = c->o;
	o.seed = seed;
	o.trace = open_out(c->trace_path);
	o.history = open_out(c->history_path);
	memset(rep, 0, sizeof(*rep));
	if ((c->trace_path && !o.trace) || (c->history_path && !o.history)) {
		rep->setup_rc = KEEL_EINVAL;
		return;
	}
	uint64_t t0 = wall_ms();
	rep->setup_rc = sim_run(&o, &rep->r);
	if (rep->setup_rc == 0 && c->determinism) {
		struct sim_opts again = c->o;
		again.seed = seed;
		struct sim_result r2;
		rep->setup_rc = sim_run(&again, &r2);
		if (rep->setup_rc == 0 && r2.trace_hash != rep->r.trace_hash) {
			rep->r.pass = false;
			rep->r.reason = "determinism";
			snprintf(rep->r.detail, sizeof(rep->r.detail),
				 "trace hash %016llx then %016llx",
				 (unsigned long long)rep->r.trace_hash,
				 (unsigned long long)r2.trace_hash);
		}
	}
	rep->wall_ms = wall_ms() - t0;
	if (o.trace)
		fclose(o.trace);
	if (o.history)
		fclose(o.history);
}

struct job {
	pid_t pid;
	int fd;
	uint64_t seed;
};

static void print_replay(const char *argv0, const struct cli *c, uint64_t seed)
{
	printf("replay: %s --seed %llu --nodes %u --ops %u --clients %u --profile %s%s%s"
	       " --trace trace-%llu.txt --history history-%llu.txt\n",
	       argv0, (unsigned long long)seed, c->o.nodes, c->o.ops, c->o.clients,
	       sim_profile_name(c->o.profile),
	       c->determinism ? " --check-determinism" : "",
	       c->o.paranoid ? " --paranoid" : "",
	       (unsigned long long)seed, (unsigned long long)seed);
}

/* Collect one finished child; prints its line. Returns 1 if it failed. */
static int reap(const char *argv0, const struct cli *c, struct job *j)
{
	struct report rep;
	memset(&rep, 0, sizeof(rep));
	size_t got = 0;
	while (got < sizeof(rep)) {
		ssize_t k = read(j->fd, (char *)&rep + got, sizeof(rep) - got);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		got += (size_t)k;
	}
	close(j->fd);
	int status = 0;
	while (waitpid(j->pid, &status, 0) < 0 && errno == EINTR)
		;
	const char *reason;
	char detail[300];
	bool pass;
	if (got != sizeof(rep) || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		pass = false;
		reason = "panic";
		if (WIFSIGNALED(status))
			snprintf(detail, sizeof(detail), "the run died of signal %d (see the assertion above)",
				 WTERMSIG(status));
		else
			snprintf(detail, sizeof(detail), "the run exited with status %d",
				 WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	} else if (rep.setup_rc != 0) {
		pass = false;
		reason = "setup";
		snprintf(detail, sizeof(detail), "%s", keel_err_msg(rep.setup_rc));
	} else {
		pass = rep.r.pass;
		reason = rep.r.reason; /* a string literal: same address in the child */
		snprintf(detail, sizeof(detail), "%s", rep.r.detail);
	}
	double vs = (double)rep.r.virtual_ns / 1e9;
	printf("seed=%llu result=%s reason=%s ops=%u virtual_s=%.3f wall_ms=%llu trace_hash=%016llx\n",
	       (unsigned long long)j->seed, pass ? "pass" : "fail", reason,
	       rep.r.ops, vs, (unsigned long long)rep.wall_ms,
	       (unsigned long long)rep.r.trace_hash);
	if (c->stats)
		printf("stats seed=%llu events=%llu events_per_s=%.0f compactions=%llu installs=%llu changes=%llu\n",
		       (unsigned long long)j->seed, (unsigned long long)rep.r.events,
		       rep.wall_ms ? (double)rep.r.events * 1000.0 / (double)rep.wall_ms : 0.0,
		       (unsigned long long)rep.r.compactions,
		       (unsigned long long)rep.r.installs,
		       (unsigned long long)rep.r.changes);
	if (!pass) {
		printf("  why: %s\n", detail);
		print_replay(argv0, c, j->seed);
	}
	fflush(stdout);
	return pass ? 0 : 1;
}

static int start(const struct cli *c, uint64_t seed, struct job *j)
{
	int fds[2];
	if (pipe(fds) != 0)
		return -errno;
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return -errno;
	}
	if (pid == 0) {
		close(fds[0]);
		alarm(SEED_WALL_S_MAX); /* a safety net: the run itself never reads a clock */
		struct report rep;
		run_seed(c, seed, &rep);
		const char *p = (const char *)&rep;
		size_t left = sizeof(rep);
		while (left > 0) {
			ssize_t k = write(fds[1], p, left);
			if (k < 0 && errno == EINTR)
				continue;
			if (k <= 0)
				_exit(3);
			p += k;
			left -= (size_t)k;
		}
		_exit(0);
	}
	close(fds[1]);
	j->pid = pid;
	j->fd = fds[0];
	j->seed = seed;
	return 0;
}

int main(int argc, char **argv)
{
	struct cli c;
	int rc = parse(argc, argv, &c);
	if (rc != 0)
		return rc;
	struct job jobs[JOBS_MAX];
	uint32_t running = 0;
	uint64_t next = c.seed_lo, failed = 0, total = 0;
	bool more = true;
	while (more || running > 0) {
		while (more && running < c.jobs) {
			rc = start(&c, next, &jobs[running]);
			if (rc != 0) {
				fprintf(stderr, "keelsim: cannot start a run: %s\n",
					strerror(-rc));
				return 2;
			}
			running++;
			total++;
			if (next == c.seed_hi)
				more = false;
			else
				next++;
		}
		/* Reap the oldest: output stays in seed order for jobs == 1
		 * and close to it otherwise. */
		failed += (uint64_t)reap(argv[0], &c, &jobs[0]);
		memmove(&jobs[0], &jobs[1], (running - 1) * sizeof(jobs[0]));
		running--;
	}
	if (total > 1)
		printf("keelsim: %llu seeds, %llu passed, %llu failed\n",
		       (unsigned long long)total, (unsigned long long)(total - failed),
		       (unsigned long long)failed);
	return failed ? 1 : 0;
}
