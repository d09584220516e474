/* simtrace.c: trace hash and timeline (see simtrace.h). */
#include "simtrace.h"

#include <stdarg.h>
#include <string.h>
#include <xxhash.h>

#include "../core/err.h"

int simtrace_init(struct simtrace *t, FILE *f)
{
	XXH3_state_t *st = XXH3_createState();
	if (st == NULL)
		return KEEL_ENOMEM;
	XXH3_64bits_reset(st);
	t->xxh = st;
	t->f = f;
	t->records = 0;
	return 0;
}

void simtrace_free(struct simtrace *t)
{
	if (t->xxh)
		XXH3_freeState(t->xxh);
	t->xxh = NULL;
}

void simtrace_event(struct simtrace *t, uint64_t now_ns, uint32_t kind,
		    uint32_t who, uint64_t a, uint64_t b)
{
	uint64_t rec[4] = {now_ns, ((uint64_t)kind << 32) | who, a, b};
	XXH3_64bits_update(t->xxh, rec, sizeof(rec));
	t->records++;
}

void simtrace_text(struct simtrace *t, uint64_t now_ns, const char *who,
		   const char *fmt, ...)
{
	if (t->f == NULL)
		return;
	fprintf(t->f, "%6llu.%09llu %-4s ", (unsigned long long)(now_ns / 1000000000u),
		(unsigned long long)(now_ns % 1000000000u), who);
	va_list ap;
	va_start(ap, fmt);
	vfprintf(t->f, fmt, ap);
	va_end(ap);
	fputc('\n', t->f);
}

uint64_t simtrace_hash(const struct simtrace *t)
{
	return XXH3_64bits_digest(t->xxh);
}
