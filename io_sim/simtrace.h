/*
 * simtrace.h: the simulator's event trace.
 *
 * Every event the simulator handles is hashed (xxh3, streaming, over a fixed
 * binary record) into the run's trace hash, which --check-determinism
 * compares across two runs. When a file is given, a readable timeline is
 * written too: "<virtual seconds> <who> <what>". The text never feeds the
 * hash, so tracing to a file does not change the hash.
 */
#ifndef KEEL_SIMTRACE_H
#define KEEL_SIMTRACE_H

#include <stdint.h>
#include <stdio.h>

struct simtrace {
	void *xxh;    /* XXH3_state_t */
	FILE *f;      /* NULL: no text */
	uint64_t records;
};

/* Returns 0 or KEEL_ENOMEM. f may be NULL; the caller owns it. */
int simtrace_init(struct simtrace *t, FILE *f);
void simtrace_free(struct simtrace *t);
/* Hash one event record. */
void simtrace_event(struct simtrace *t, uint64_t now_ns, uint32_t kind,
		    uint32_t who, uint64_t a, uint64_t b);
/* Write one timeline line (only when t->f). who: e.g. "n2", "c1", "sim". */
void simtrace_text(struct simtrace *t, uint64_t now_ns, const char *who,
		   const char *fmt, ...) __attribute__((format(printf, 4, 5)));
uint64_t simtrace_hash(const struct simtrace *t);

#endif
