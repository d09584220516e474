/* workload.c: history-recording random workload (see workload.h). */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/err.h"
#include "workload.h"

struct wl_op {
	uint32_t kind; /* enum kv_op */
	uint32_t key;
	char value[48];     /* put/append/cas new */
	char expected[48];  /* cas; "" with expected_absent */
	bool expected_absent;
	uint64_t invoke_ns, complete_ns;
	int outcome; /* 0 ok, 1 fail, 2 info */
	bool result_bool;
	bool result_absent;
	uint8_t *result; /* get */
	uint32_t result_bytes;
};

struct wl_shared {
	struct kc_config cfg;
	uint32_t keys;
	uint64_t start_ns, deadline_ns;
};

struct wl_thread {
	pthread_t t;
	struct wl_shared *sh;
	uint32_t index;
	uint64_t rng;
	struct wl_op *ops;
	uint32_t count;
	char last_value[48]; /* a value this client saw, for cas */
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t rnd(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void do_op(struct wl_thread *t, struct kc *c, struct wl_op *op)
{
	char key[16];
	int kb = snprintf(key, sizeof key, "key%u", op->key);
	struct kc_result r;
	uint32_t vb = (uint32_t)strlen(op->value);
	int rc;
	op->invoke_ns = now_ns() - t->sh->start_ns;
	switch (op->kind) {
	case KV_GET:
		rc = kc_get(c, key, (uint32_t)kb, false, &r);
		break;
	case KV_PUT:
		rc = kc_put(c, key, (uint32_t)kb, op->value, vb, &r);
		break;
	case KV_DEL:
		rc = kc_del(c, key, (uint32_t)kb, &r);
		break;
	case KV_CAS:
		rc = kc_cas(c, key, (uint32_t)kb, op->expected,
			    (uint32_t)strlen(op->expected), op->expected_absent,
			    op->value, vb, &r);
		break;
	default:
		rc = kc_append(c, key, (uint32_t)kb, op->value, vb, &r);
		break;
	}
	op->complete_ns = now_ns() - t->sh->start_ns;
	if (rc == KEEL_EINDETERMINATE) {
		op->outcome = 2;
		return;
	}
	if (rc != 0) {
		op->outcome = 1; /* not applied (or a read that got no answer) */
		return;
	}
	switch (r.status) {
	case CLIENT_OK:
		op->outcome = 0;
		op->result_bool = true;
		if (op->kind == KV_GET) {
			op->result = r.value;
			op->result_bytes = r.value_bytes;
			r.value = NULL;
			if (op->result_bytes > 0 &&
			    op->result_bytes < sizeof t->last_value) {
				memcpy(t->last_value, op->result, op->result_bytes);
				t->last_value[op->result_bytes] = '\0';
			}
		}
		break;
	case CLIENT_NOT_FOUND:
		op->outcome = 0;
		op->result_bool = false;
		op->result_absent = true;
		break;
	case CLIENT_CAS_FAILED:
		op->outcome = 0;
		op->result_bool = false;
		break;
	default:
		op->outcome = 1; /* BAD_REQUEST, TOO_BIG, STALE_SEQ: not applied */
		break;
	}
	kc_result_free(&r);
}

static void *wl_main(void *arg)
{
	struct wl_thread *t = arg;
	struct kc c;
	if (kc_init(&c, &t->sh->cfg) != 0)
		return NULL;
	for (uint32_t n = 0; n < WORKLOAD_OPS_MAX && now_ns() < t->sh->deadline_ns;
	     n++) {
		struct wl_op *op = &t->ops[t->count++];
		memset(op, 0, sizeof *op);
		uint64_t x = rnd(&t->rng);
		op->key = (uint32_t)(x % t->sh->keys);
		uint32_t dice = (uint32_t)((x >> 20) % 100);
		snprintf(op->value, sizeof op->value, "c%u-%u", t->index, n);
		if (dice < 35)
			op->kind = KV_GET;
		else if (dice < 65)
			op->kind = KV_PUT;
		else if (dice < 75)
			op->kind = KV_DEL;
		else if (dice < 92) {
			op->kind = KV_CAS;
			op->expected_absent = t->last_value[0] == '\0' || (x >> 40) % 4 == 0;
			if (!op->expected_absent)
				snprintf(op->expected, sizeof op->expected, "%s",
					 t->last_value);
		} else {
			op->kind = KV_APPEND;
			snprintf(op->value, sizeof op->value, "+%u", n % 10);
		}
		do_op(t, &c, op);
	}
	kc_close(&c);
	return NULL;
}

static void token(FILE *f, const uint8_t *p, size_t n)
{
	fputc('\'', f);
	for (size_t i = 0; i < n; i++) {
		uint8_t b = p[i];
		if ((b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') ||
		    (b >= '0' && b <= '9'))
			fputc(b, f);
		else
			fprintf(f, "%%%02X", b);
	}
}

static void write_op(FILE *f, uint32_t client, const struct wl_op *op)
{
	static const char *const names[] = { "", "get", "put", "del", "cas", "append" };
	char key[16];
	int kb = snprintf(key, sizeof key, "key%u", op->key);
	fprintf(f, "%u %s ", client, names[op->kind]);
	token(f, (const uint8_t *)key, (size_t)kb);
	fputc(' ', f);
	if (op->kind == KV_GET || op->kind == KV_DEL)
		fputc('-', f);
	else
		token(f, (const uint8_t *)op->value, strlen(op->value));
	fputc(' ', f);
	if (op->kind == KV_CAS && !op->expected_absent)
		token(f, (const uint8_t *)op->expected, strlen(op->expected));
	else
		fputc('-', f);
	fprintf(f, " %" PRIu64 " ", op->invoke_ns);
	if (op->outcome == 2)
		fputc('-', f);
	else
		fprintf(f, "%" PRIu64, op->complete_ns);
	static const char *const outcomes[] = { "ok", "fail", "info" };
	fprintf(f, " %s ", outcomes[op->outcome]);
	if (op->outcome != 0)
		fputc('-', f);
	else if (op->kind == KV_GET) {
		if (op->result_absent)
			fputc('-', f);
		else
			token(f, op->result, op->result_bytes);
	} else if (op->kind == KV_CAS || op->kind == KV_DEL)
		fputs(op->result_bool ? "true" : "false", f);
	else
		fputc('-', f);
	fputc('\n', f);
}

int workload_run(const struct kc_config *cfg, int argc, char **argv)
{
	uint32_t clients = 4, seconds = 5, keys = 4;
	const char *history = NULL;
	for (int i = 0; i + 1 < argc; i += 2) {
		uint32_t v = (uint32_t)strtoul(argv[i + 1], NULL, 10);
		if (strcmp(argv[i], "--clients") == 0)
			clients = v;
		else if (strcmp(argv[i], "--seconds") == 0)
			seconds = v;
		else if (strcmp(argv[i], "--keys") == 0)
			keys = v;
		else if (strcmp(argv[i], "--history") == 0)
			history = argv[i + 1];
		else {
			fprintf(stderr, "keelctl: workload: unknown flag %s\n", argv[i]);
			return 2;
		}
	}
	if (history == NULL || clients == 0 || clients > WORKLOAD_CLIENTS_MAX ||
	    keys == 0 || seconds == 0) {
		fprintf(stderr, "keelctl: workload needs --history FILE, --clients 1..%u, --keys > 0, --seconds > 0\n",
			WORKLOAD_CLIENTS_MAX);
		return 2;
	}
	FILE *f = fopen(history, "w");
	if (f == NULL) {
		perror(history);
		return 3;
	}
	struct wl_shared sh = { .cfg = *cfg, .keys = keys };
	sh.start_ns = now_ns();
	sh.deadline_ns = sh.start_ns + (uint64_t)seconds * 1000000000ull;
	struct wl_thread *th = calloc(clients, sizeof *th);
	for (uint32_t i = 0; i < clients; i++) {
		th[i].sh = &sh;
		th[i].index = i;
		th[i].rng = now_ns() ^ ((uint64_t)i << 48);
		th[i].ops = malloc(WORKLOAD_OPS_MAX * sizeof *th[i].ops);
		pthread_create(&th[i].t, NULL, wl_main, &th[i]);
	}
	uint64_t counts[3] = { 0, 0, 0 };
	fputs("# keel history v1\n", f);
	for (uint32_t i = 0; i < clients; i++) {
		pthread_join(th[i].t, NULL);
		for (uint32_t j = 0; j < th[i].count; j++) {
			write_op(f, i, &th[i].ops[j]);
			counts[th[i].ops[j].outcome]++;
			free(th[i].ops[j].result);
		}
		free(th[i].ops);
	}
	fclose(f);
	free(th);
	printf("workload: %" PRIu64 " ok, %" PRIu64 " fail, %" PRIu64 " info\n",
	       counts[0], counts[1], counts[2]);
	return 0;
}
