/* check_wgl.h: the search over one key's operations (check_wgl.c), driven
 * by check_run() (check_run.c). Not a public API. */
#ifndef KEEL_SIM_CHECK_WGL_H
#define KEEL_SIM_CHECK_WGL_H

#include "check_cache.h"
#include "check_int.h"

/* An op as the search sees it. */
struct wop {
	uint32_t value;
	uint32_t expected;
	uint32_t result;
	uint32_t bit;  /* its bit in the linearized set */
	uint8_t kind;
	uint8_t ok;
	uint8_t pure;  /* ok and never changes the state: see search() */
};

struct frame {
	uint32_t entry; /* | FRAME_FORCED when no alternative needs trying */
	uint32_t state;
};

/* One check_run(): what outlives the keys. */
struct wgl_run {
	struct check_history *h;
	uint64_t deadline_ns;
	struct check_budget budget;
	struct check_map append; /* (state << 32 | arg) -> appended value id */
	struct check_map prefix; /* (state << 32 | value) -> 1 + is a proper prefix */
	uint32_t *seen;          /* value id -> stamp of the scan that saw a producer */
	uint32_t seen_count;
	uint32_t stamp;
	uint64_t states;         /* configurations visited, all keys */
	const char *why;         /* set when a limit was reached */
};

/* One key's search. Local op numbers: ok ops 0..ok_count-1 in order of
 * invocation, then the indeterminate ones. */
struct wgl_part {
	struct wgl_run *run;
	uint32_t n;
	uint32_t ok_count;
	struct wop *ops;
	uint32_t *global;      /* local op -> index in h->ops */
	uint64_t *zobrist;     /* local op -> random word for the set's hash */
	uint32_t *next, *prev; /* the entry list; entry 0 is the head */
	uint32_t *ent;         /* entry -> op, | RET_FLAG for a return */
	uint32_t *ret_of;      /* op -> its return entry, 0 for indeterminate */
	uint32_t *rank;        /* op -> position in order of completion */
	uint32_t *twin;        /* indeterminate op -> the previous identical one, or NO_TWIN */
	uint64_t *bits;        /* the linearized set: ok ops, then (word-aligned) the others */
	uint32_t ok_words;
	uint32_t info_words;
	bool windowed;         /* cache keys hold a window of the ok bits */
	uint32_t win_words;
	uint32_t base;         /* window start: first ok word not all ones */
	uint64_t *key;         /* the key being built (windowed) */
	struct check_cache cache;
	struct frame *stack;
	uint32_t *best;        /* entries of the longest prefix found */
	uint32_t best_count;
	uint32_t best_lwm;     /* stack[0..best_lwm) == best[0..best_lwm) */
	uint64_t budget_taken;
};

#define RET_FLAG 0x80000000u
#define NO_TWIN UINT32_MAX
#define FRAME_FORCED 0x80000000u

/* Sets up the search for ops idx[0..n) (indices in h->ops) of one key.
 * Returns 0 or KEEL_ENOMEM (run->why set). */
int wgl_part_init(struct wgl_part *p, struct wgl_run *run, const uint32_t *idx, uint32_t n);
void wgl_part_free(struct wgl_part *p);

/* Searches from state init. UNKNOWN when a limit is reached (run->why). */
enum check_verdict wgl_search(struct wgl_part *p, uint32_t init);

/* The model step with the run's caches: 1 legal, 0 not, <0 out of memory. */
int wgl_step(struct wgl_run *run, const struct wop *o, uint32_t state, uint32_t *out);

#endif
