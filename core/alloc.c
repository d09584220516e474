/* alloc.c: the allocation hook; see alloc.h. */
#include "alloc.h"

#include <stdlib.h>

void *keel_realloc(const struct keel_alloc *a, void *ptr, size_t bytes)
{
	if (a != NULL && a->fn != NULL)
		return a->fn(a->ctx, ptr, bytes);
	if (bytes == 0) {
		free(ptr);
		return NULL;
	}
	return realloc(ptr, bytes);
}

void *keel_malloc(const struct keel_alloc *a, size_t bytes)
{
	if (bytes == 0)
		bytes = 1;
	return keel_realloc(a, NULL, bytes);
}

void keel_free(const struct keel_alloc *a, void *ptr)
{
	if (ptr != NULL)
		(void)keel_realloc(a, ptr, 0);
}
