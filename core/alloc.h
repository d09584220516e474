/*
 * alloc.h: the one allocation hook of core/. Every allocation the core makes
 * goes through a keel_alloc, so the simulator can count and fail allocations.
 * A zeroed keel_alloc (fn == NULL) means the C library's realloc/free.
 */
#ifndef KEEL_ALLOC_H
#define KEEL_ALLOC_H

#include <stddef.h>

struct keel_alloc {
	/* realloc semantics: (ptr NULL) allocates, (bytes 0) frees and returns
	 * NULL. Returns NULL on failure, leaving ptr untouched. */
	void *(*fn)(void *ctx, void *ptr, size_t bytes);
	void *ctx;
};

void *keel_malloc(const struct keel_alloc *a, size_t bytes);
void *keel_realloc(const struct keel_alloc *a, void *ptr, size_t bytes);
void keel_free(const struct keel_alloc *a, void *ptr);

#endif
