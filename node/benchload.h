/*
 * benchload.h: the load generator of `keelctl bench`: closed-loop clients,
 * each with its own connection and session (client id), all driven by one
 * thread through epoll, so that the benchmark spends little of the
 * machine's CPU on itself (the nodes run on the same cores).
 *
 * Per client: one request in flight. A put or get that is answered OK or
 * NOT_FOUND counts as an op with its latency (first send to answer,
 * retries included). NOT_LEADER, BUSY and SHUTTING_DOWN (nothing applied)
 * are retried with the same (client id, seq), toward the leader hint when
 * there is one, after BENCH_RETRY_MS; a connection that fails before the
 * request left is retried the same way. A put that was sent and then lost
 * its connection, timed out or was answered UNAVAILABLE counts as unknown
 * (a get: as failed); other answers count as failed. At most
 * attempts_max attempts per op; then it counts as failed (or unknown when
 * an attempt may have been applied).
 */
#ifndef KEEL_NODE_BENCHLOAD_H
#define KEEL_NODE_BENCHLOAD_H

#include <stdint.h>

#include "client.h"

#define BENCH_HIST_BUCKETS 4096u /* latency histogram: 1/64 octave, from 1 us */
#define BENCH_RETRY_MS 20u       /* pause before retrying a refused op */
#define BENCH_EVENTS_MAX 256u    /* epoll events taken per wait */

struct bench_cfg {
	struct kc_config kc; /* endpoints, timeout_ms, attempts_max, cluster */
	uint32_t clients;
	uint32_t op; /* KV_PUT or KV_GET */
	uint32_t value_bytes;
	uint64_t keys;
	uint64_t count_max;   /* total ops; 0: until deadline_ns */
	uint64_t deadline_ns; /* CLOCK_MONOTONIC */
};

struct bench_stats {
	uint64_t ops, failures, unknown;
	uint64_t hist[BENCH_HIST_BUCKETS];
};

/* Run the load; *out is filled (zeroed first). Returns 0, or KEEL_ENOMEM
 * or a -errno when it could not start (epoll, memory). */
int bench_run(const struct bench_cfg *cfg, struct bench_stats *out);

uint32_t bench_bucket_of(uint64_t ns);
double bench_bucket_us(uint32_t bucket);
uint64_t bench_now_ns(void);

#endif
