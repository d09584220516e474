/*
 * fuzz_history.c: keelcheck's history parsers (sim/check.h: native, Jepsen
 * log lines, EDN maps) on arbitrary bytes.
 *
 * Properties:
 *  1. check_parse fails only with KEEL_EMALFORMED or KEEL_ETOOBIG (and a
 *     line and reason), never crashes;
 *  2. a parsed history written in the native format parses back to the same
 *     operations (kind, outcome, client, times, key, value, expected,
 *     result);
 *  3. for small histories (FH_CHECK_OPS_MAX operations), checking the
 *     original and its native rewrite under the same model gives the same
 *     verdict.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/err.h"
#include "../sim/check.h"
#include "fuzz.h"

#define FH_CHECK_OPS_MAX 10u /* search stays tiny, so it never times out */

static bool str_eq(const struct check_strtab *ta, uint32_t a,
		   const struct check_strtab *tb, uint32_t b)
{
	if (a == CHECK_ABSENT || b == CHECK_ABSENT || a == CHECK_ANY || b == CHECK_ANY)
		return a == b;
	size_t la, lb;
	const uint8_t *pa = check_str_get(ta, a, &la);
	const uint8_t *pb = check_str_get(tb, b, &lb);
	return la == lb && (la == 0 || memcmp(pa, pb, la) == 0);
}

static bool op_eq(const struct check_history *ha, const struct check_op *a,
		  const struct check_history *hb, const struct check_op *b)
{
	if (a->kind != b->kind || a->outcome != b->outcome ||
	    a->client != b->client || a->invoke_ns != b->invoke_ns ||
	    a->complete_ns != b->complete_ns)
		return false;
	if (!str_eq(&ha->keys, a->key, &hb->keys, b->key) ||
	    !str_eq(&ha->vals, a->value, &hb->vals, b->value) ||
	    !str_eq(&ha->vals, a->expected, &hb->vals, b->expected))
		return false;
	if (a->kind == CHECK_GET)
		return str_eq(&ha->vals, a->result, &hb->vals, b->result);
	return a->result == b->result;
}

/* Property 2: returns the native rewrite, parsed, in *out. */
static void native_roundtrip(const struct check_history *h, struct check_history *out)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	FUZZ_CHECK(f != NULL);
	FUZZ_CHECK(check_write_native(h, f) == 0);
	FUZZ_CHECK(fclose(f) == 0);
	struct check_parse_error err;
	check_history_init(out);
	int rc = check_parse(out, buf, len, &err);
	if (rc != 0)
		fprintf(stderr, "native reparse: line %u: %s\n", err.line, err.reason);
	FUZZ_CHECK(rc == 0);
	FUZZ_CHECK(out->format == CHECK_FORMAT_NATIVE);
	FUZZ_CHECK(out->op_count == h->op_count);
	for (uint32_t i = 0; i < h->op_count; i++)
		FUZZ_CHECK(op_eq(h, &h->ops[i], out, &out->ops[i]));
	free(buf);
}

/* Property 3. */
static void same_verdict(struct check_history *h, struct check_history *native)
{
	struct check_limits lim = { .timeout_ms = 0, .memory_bytes_max = 64u << 20 };
	struct check_result a, b;
	int rc = check_run(h, CHECK_MODEL_AUTO, &lim, &a);
	FUZZ_CHECK(rc == 0 || rc == KEEL_EINVAL);
	if (rc != 0)
		return;
	FUZZ_CHECK(a.verdict != CHECK_VERDICT_UNKNOWN);
	FUZZ_CHECK(check_run(native, a.model, &lim, &b) == 0);
	FUZZ_CHECK(a.verdict == b.verdict);
	check_result_free(&a);
	check_result_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct check_history h, native;
	struct check_parse_error err;
	check_history_init(&h);
	int rc = check_parse(&h, (const char *)data, size, &err);
	if (rc != 0) {
		FUZZ_CHECK(rc == KEEL_EMALFORMED || rc == KEEL_ETOOBIG);
		FUZZ_CHECK(memchr(err.reason, 0, sizeof(err.reason)) != NULL);
		check_history_free(&h);
		return 0;
	}
	native_roundtrip(&h, &native);
	if (h.op_count <= FH_CHECK_OPS_MAX)
		same_verdict(&h, &native);
	check_history_free(&native);
	check_history_free(&h);
	return 0;
}
