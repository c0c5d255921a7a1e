/*
 * mem.h: allocation wrappers. Out-of-memory aborts here, once, instead of
 * being half-handled at every call site.
 */
#ifndef TKC_UTIL_MEM_H
#define TKC_UTIL_MEM_H

#include <stddef.h>

void *tkc_malloc(size_t size);
void *tkc_calloc(size_t n, size_t size);
void *tkc_realloc(void *ptr, size_t size);
char *tkc_strdup(const char *s);
/** Copies @p len bytes of @p s and NUL-terminates the copy. */
char *tkc_strndup(const char *s, size_t len);
void *tkc_memdup(const void *p, size_t len);
void tkc_free(void *ptr);

#endif
