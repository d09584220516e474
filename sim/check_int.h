/* check_int.h: helpers shared by the checker's files (not a public API). */
#ifndef KEEL_SIM_CHECK_INT_H
#define KEEL_SIM_CHECK_INT_H

#include "check.h"

/* Interns len bytes; *id gets the id (>= 1). Returns 0, KEEL_ETOOBIG or
 * KEEL_ENOMEM (the table is unchanged on failure). */
int check_strtab_intern(struct check_strtab *t, const void *p, size_t len, uint32_t *id);
void check_strtab_free(struct check_strtab *t);
/* Bytes the table holds. */
uint64_t check_strtab_bytes(const struct check_strtab *t);

static inline uint64_t check_mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

uint64_t check_hash_bytes(const void *p, size_t len);

/* Formats into err (line and reason) and returns KEEL_EMALFORMED. */
int check_perr(struct check_parse_error *err, uint32_t line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Parsers, one per format; buf has been split into lines by the caller. */
int check_parse_native(struct check_history *h, const char *buf, size_t len,
		       struct check_parse_error *err);
int check_parse_jepsen(struct check_history *h, const char *buf, size_t len,
		       struct check_parse_error *err);
int check_parse_edn(struct check_history *h, const char *buf, size_t len,
		    struct check_parse_error *err);

/* Appends a stored op (ids already interned). Returns 0, KEEL_ETOOBIG, KEEL_ENOMEM. */
int check_history_push(struct check_history *h, const struct check_op *op);

/* Line iteration over a buffer: *line/len get the next line without its
 * '\n' (and '\r'); returns false at the end. */
struct check_lines {
	const char *p;
	const char *end;
	uint32_t number;
};
bool check_next_line(struct check_lines *it, const char **line, size_t *len);

/* Small open-addressing map u64 -> u32 (process pairing, append cache). */
struct check_map {
	uint64_t *keys;
	uint32_t *vals;
	uint8_t *used;
	uint32_t cap; /* power of two, 0 when empty */
	uint32_t count;
};
/* Returns a pointer to the value slot for key, inserting (with val 0) when
 * absent and insert is true; NULL when absent and !insert, or on ENOMEM. */
uint32_t *check_map_get(struct check_map *m, uint64_t key, bool insert);
void check_map_del(struct check_map *m, uint64_t key);
void check_map_free(struct check_map *m);
uint64_t check_map_bytes(const struct check_map *m);

/* Models (check_model.c). check_step_ids returns 1 legal, 0 illegal, or a
 * negative code when appending fails (KEEL_ETOOBIG, KEEL_ENOMEM). */
int check_append_value(struct check_history *h, uint32_t state, uint32_t arg, uint32_t *out);
int check_step_ids(struct check_history *h, uint8_t kind, uint32_t value,
		   uint32_t expected, uint32_t result, uint32_t state, uint32_t *out);

#endif
