/*
 * bench_store.c: throughput of the KV state machine over both stores
 * (`make bench-store`). A benchmark: it prints numbers and asserts nothing.
 *
 *   bench_store [mem|lmdb] [commands per apply] [puts]
 *
 * Each kv_apply carries one entry of N puts (100-byte values, 64 clients
 * with their own sessions) and is followed by sync(), as the node's storage
 * thread does per job. Prints puts/s, applies/s and peak RSS.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "../core/codec.h"
#include "../core/kv.h"
#include "../io_real/lmdb_store.h"
#include "../io_sim/mem_store.h"

#define CLIENTS 64u
#define VALUE_BYTES 100u

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	const char *kind = argc > 1 ? argv[1] : "mem";
	uint32_t per = argc > 2 ? (uint32_t)atoi(argv[2]) : 64;
	uint32_t total = argc > 3 ? (uint32_t)atoi(argv[3]) : 100000;
	if (per == 0 || per > KEEL_BATCH_COMMANDS_MAX || total == 0) {
		fprintf(stderr, "usage: bench_store [mem|lmdb] [1..%u] [puts]\n",
			KEEL_BATCH_COMMANDS_MAX);
		return 2;
	}
	struct store st;
	struct mem_store ms;
	struct lmdb_store ls;
	char dir[256] = "";
	bool lmdb = strcmp(kind, "lmdb") == 0;
	if (lmdb) {
		const char *tmp = getenv("TMPDIR");
		snprintf(dir, sizeof(dir), "%s/keel-bench-XXXXXX",
			 tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
		struct lmdb_store_config cfg = {.dir = dir, .create = true};
		if (mkdtemp(dir) == NULL || lmdb_store_open(&ls, &cfg) != 0) {
			fprintf(stderr, "bench_store: cannot open a store in %s: %s\n",
				dir, ls.error);
			return 1;
		}
		lmdb_store_bind(&ls, &st);
	} else {
		mem_store_init(&ms);
		mem_store_bind(&ms, &st);
	}
	struct kv kv;
	kv_init(&kv, &st, NULL);
	static uint8_t buf[KEEL_ENTRY_BYTES_MAX];
	static char keys[KEEL_BATCH_COMMANDS_MAX][32];
	static struct kv_command cmds[KEEL_BATCH_COMMANDS_MAX];
	uint8_t val[VALUE_BYTES];
	memset(val, 'v', sizeof(val));
	uint64_t seq[CLIENTS + 1] = {0}, index = 1;
	double t0 = now_s();
	for (uint32_t done = 0; done < total; done += per) {
		for (uint32_t i = 0; i < per; i++) {
			uint64_t client = 1 + (done + i) % CLIENTS;
			snprintf(keys[i], sizeof(keys[i]), "key-%010u", done + i);
			cmds[i] = (struct kv_command){
				.client_id = client, .seq = ++seq[client],
				.op = KV_PUT, .key = (const uint8_t *)keys[i],
				.key_bytes = (uint32_t)strlen(keys[i]),
				.value = val, .value_bytes = VALUE_BYTES};
		}
		int n = codec_batch_encode(cmds, per, buf, sizeof(buf));
		struct entry e = {.term = 1, .index = index++,
				  .type = ENTRY_COMMAND,
				  .data_bytes = (uint32_t)n, .data = buf};
		int rc = n < 0 ? n : kv_apply(&kv, &e, 1, NULL, NULL);
		if (rc == 0)
			rc = st.ops->sync(st.impl);
		if (rc != 0) {
			fprintf(stderr, "bench_store: apply failed: %d\n", rc);
			return 1;
		}
	}
	double secs = now_s() - t0;
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	printf("store=%s puts=%u per_apply=%u seconds=%.3f puts_per_s=%.0f "
	       "applies_per_s=%.0f max_rss_kib=%ld\n",
	       kind, total, per, secs, total / secs, total / per / secs,
	       ru.ru_maxrss);
	if (lmdb) {
		lmdb_store_close(&ls);
		char p[300];
		snprintf(p, sizeof(p), "%s/data.mdb", dir);
		unlink(p);
		snprintf(p, sizeof(p), "%s/lock.mdb", dir);
		unlink(p);
		rmdir(dir);
	} else {
		mem_store_close(&ms);
	}
	return 0;
}
