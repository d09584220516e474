/*
 * check.h: keelcheck, the linearizability checker (library).
 *
 * A history is a set of operations on keys, each with an invocation time, a
 * completion time and an outcome. The checker decides whether some total
 * order of the operations, consistent with real time, is legal for a model:
 *
 *   register  one value per key (etcd histories): get, put, cas; starts absent
 *   kv        one string per key (EDN kv histories): get, put, append; starts ""
 *   keel      keel's KV: get, put, del, cas (on a value or on absence),
 *             append (absent counts as ""); starts absent
 *
 * Outcomes: CHECK_OK (completed, result known), CHECK_FAIL (definitely not
 * applied: the operation constrains nothing and is left out of the search),
 * CHECK_INFO (indeterminate: it may take effect at any point after its
 * invocation, or never; its result is unconstrained).
 *
 * Intervals are closed: an operation that completes at time t and one that
 * is invoked at the same t are concurrent (the permissive reading).
 *
 * Use:
 *   struct check_history h;
 *   check_history_init(&h);
 *   check_parse(&h, buf, len, &fmt, &perr)      -- or check_history_add()
 *   check_run(&h, CHECK_MODEL_AUTO, &limits, &res)
 *   ... res.verdict, res.key ...
 *   check_result_free(&res); check_history_free(&h);
 *
 * Callers own the structs; every allocation is released by the matching
 * _free. Nothing here asserts on input: bad bytes give an error code.
 */
#ifndef KEEL_SIM_CHECK_H
#define KEEL_SIM_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- limits (each a named maximum) ---------------------------------------- */

#define CHECK_OPS_MAX (1u << 24)             /* operations in one history */
#define CHECK_LINE_BYTES_MAX (1u << 20)      /* one input line */
#define CHECK_STRING_BYTES_MAX (1u << 20)    /* one key or value, decoded */
#define CHECK_STRINGS_BYTES_MAX (1ull << 31) /* all interned strings */
#define CHECK_MEM_BYTES_DEFAULT (1ull << 30) /* search memory, per check_run */
#define CHECK_TIMEOUT_MS_DEFAULT 60000u      /* search time, per check_run */

/* ---- operations ----------------------------------------------------------- */

enum check_kind { CHECK_GET, CHECK_PUT, CHECK_DEL, CHECK_CAS, CHECK_APPEND };
enum check_outcome { CHECK_OK, CHECK_FAIL, CHECK_INFO };
enum check_model {
	CHECK_MODEL_AUTO,
	CHECK_MODEL_REGISTER,
	CHECK_MODEL_KV,
	CHECK_MODEL_KEEL
};
enum check_format { CHECK_FORMAT_NATIVE, CHECK_FORMAT_JEPSEN, CHECK_FORMAT_EDN };
enum check_verdict { CHECK_VERDICT_OK, CHECK_VERDICT_ILLEGAL, CHECK_VERDICT_UNKNOWN };

/* A string argument: ptr == NULL means "none / absent"; otherwise len bytes
 * (len may be 0: the empty string). */
struct check_str {
	const void *ptr;
	size_t len;
};

/* One operation as a caller describes it (check_history_add copies it).
 * value: put/append argument, cas new value; none for get/del.
 * expected: cas only; none means "expected absent".
 * result (CHECK_OK only): get: the value read (none = absent); cas/del:
 * result_bool (cas: swapped; del: the key existed). complete_ns is ignored
 * for CHECK_INFO. */
struct check_op_in {
	uint64_t client;
	enum check_kind kind;
	enum check_outcome outcome;
	struct check_str key;
	struct check_str value;
	struct check_str expected;
	struct check_str result;
	bool result_bool;
	uint64_t invoke_ns;
	uint64_t complete_ns;
};

/* Interned strings: id 0 is "absent"; ids >= 1 index the table. */
#define CHECK_ABSENT 0u
#define CHECK_ANY UINT32_MAX /* a result that constrains nothing */
#define CHECK_TIME_INF UINT64_MAX

struct check_strtab {
	uint8_t *bytes;      /* all strings, back to back */
	uint64_t bytes_used; /* bytes in use */
	uint64_t bytes_cap;
	uint64_t *offs;      /* offs[id] .. offs[id + 1]: string id's bytes */
	uint32_t count;      /* ids in use, including 0 */
	uint32_t cap;
	uint32_t *slots;     /* hash index: id or 0 when empty */
	uint32_t slot_count; /* a power of two */
};

/* An operation as stored. result: get: string id, CHECK_ABSENT or CHECK_ANY;
 * cas/del: 0 or 1 or CHECK_ANY; put/append: CHECK_ANY. */
struct check_op {
	uint64_t client;
	uint64_t invoke_ns;
	uint64_t complete_ns; /* CHECK_TIME_INF for CHECK_INFO */
	uint32_t key;         /* id in keys */
	uint32_t value;       /* id in vals, CHECK_ABSENT when none */
	uint32_t expected;    /* cas: id in vals or CHECK_ABSENT */
	uint32_t result;
	uint32_t line;        /* input line, 0 when built by check_history_add */
	uint8_t kind;         /* enum check_kind */
	uint8_t outcome;      /* enum check_outcome */
};

struct check_history {
	struct check_op *ops;
	uint32_t op_count;
	uint32_t op_cap;
	struct check_strtab keys;
	struct check_strtab vals; /* check_run adds appended values here */
	enum check_format format; /* what was parsed; NATIVE when built */
};

void check_history_init(struct check_history *h);
void check_history_free(struct check_history *h);

/* Copies op into h. Returns 0, or KEEL_EINVAL (bad kind/outcome, no key,
 * complete before invoke, cas without a value...), KEEL_ETOOBIG (a limit),
 * KEEL_ENOMEM; on failure h is unchanged. */
int check_history_add(struct check_history *h, const struct check_op_in *op);

/* The bytes of string id (not NUL-terminated); *len gets the length. */
const uint8_t *check_str_get(const struct check_strtab *t, uint32_t id, size_t *len);

/* ---- parsing -------------------------------------------------------------- */

struct check_parse_error {
	uint32_t line; /* 1-based; 0 when not tied to a line */
	char reason[160];
};

/* Parses buf (any bytes) into h, which must be freshly initialised; detects
 * the format (stored in h->format). Returns 0, or KEEL_EMALFORMED (with
 * err->line and err->reason), KEEL_ETOOBIG, KEEL_ENOMEM. Never asserts on
 * input. On failure h holds a partial history: free it. */
int check_parse(struct check_history *h, const char *buf, size_t len,
		struct check_parse_error *err);

/* Writes h in keel's native format ("# keel history v1" first). Returns 0
 * or -errno. */
int check_write_native(const struct check_history *h, FILE *f);

/* Encodes a string token (see sim/HISTORY.md): "-" for none, else "'"
 * and the bytes escaped. Writes at most cap bytes including the NUL and
 * returns the full length (like snprintf). */
size_t check_token_encode(char *out, size_t cap, struct check_str s);

/* ---- checking ------------------------------------------------------------- */

struct check_limits {
	uint64_t timeout_ms;       /* 0: CHECK_TIMEOUT_MS_DEFAULT */
	uint64_t memory_bytes_max; /* 0: CHECK_MEM_BYTES_DEFAULT */
};

/* On CHECK_VERDICT_ILLEGAL, what the HTML picture needs, for one key. */
struct check_result {
	enum check_verdict verdict;
	enum check_model model;  /* the model used (AUTO resolved) */
	uint32_t key;            /* illegal: the failing key (id in h->keys) */
	uint32_t *key_ops;       /* illegal: indices in h->ops of that key's ops */
	uint32_t key_op_count;
	uint32_t *prefix;        /* the longest linearizable prefix found, in order */
	uint32_t prefix_count;
	uint32_t *stuck;         /* ops that cannot be placed after the prefix */
	uint32_t stuck_count;
	uint32_t prefix_state;   /* value id after the prefix */
	bool stale;              /* illegal proven without search (sim/check_stale.c): */
	uint32_t stale_read;     /*   this op needs a value that ... */
	uint32_t stale_overwrite; /*  ... this op (or UINT32_MAX) overwrote before it began */
	uint64_t states_explored;
	uint64_t memory_bytes;   /* peak search memory */
	const char *unknown_why; /* unknown: "timeout" or "memory limit" */
};

/* Decides h. Returns 0 with res filled (including unknown when a limit is
 * reached), or KEEL_EINVAL when h has an operation the model does not have
 * (e.g. del under register), or KEEL_ENOMEM when even the bookkeeping fails.
 * May add appended values to h->vals. Free res with check_result_free. */
int check_run(struct check_history *h, enum check_model model,
	      const struct check_limits *limits, struct check_result *res);
void check_result_free(struct check_result *res);

/* Whether model has operation kind. */
bool check_model_allows(enum check_model model, enum check_kind kind);

/* The model AUTO means for this history's format. */
enum check_model check_model_for(const struct check_history *h);

/* Applies op to state under model (the model's step function, shared with
 * the HTML writer and tests). Returns whether the op is legal there; *out
 * gets the next state. May intern a value (append): false with *out ==
 * CHECK_ANY when that fails for lack of memory. */
bool check_step(struct check_history *h, const struct check_op *op,
		uint32_t state, uint32_t *out);
uint32_t check_initial_state(struct check_history *h, enum check_model model);

const char *check_kind_name(enum check_kind k);
const char *check_model_name(enum check_model m);
const char *check_verdict_name(enum check_verdict v);
const char *check_format_name(enum check_format f);

/* ---- HTML ----------------------------------------------------------------- */

/* Writes one self-contained HTML page for an illegal result to path.
 * title names the input. Returns 0 or -errno. */
int check_html_write(struct check_history *h, const struct check_result *res,
		     const char *title, const char *path);

#endif
