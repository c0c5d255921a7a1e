/* mem.c: allocation wrappers that abort on out-of-memory. */
#include "util/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void oom(size_t size)
{
    char msg[96];
    int n = snprintf(msg, sizeof(msg), "fatal: out of memory (%zu bytes)\n", size);
    if (n > 0 && write(STDERR_FILENO, msg, (size_t)n) < 0) {
        /* nothing left to do: we abort either way */
    }
    abort();
}

void *tkc_malloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (!p)
        oom(size);
    return p;
}

void *tkc_calloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        oom(n * size);
    return p;
}

void *tkc_realloc(void *ptr, size_t size)
{
    void *p = realloc(ptr, size ? size : 1);
    if (!p)
        oom(size);
    return p;
}

char *tkc_strdup(const char *s)
{
    return tkc_strndup(s, strlen(s));
}

char *tkc_strndup(const char *s, size_t len)
{
    char *p = tkc_malloc(len + 1);
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

void *tkc_memdup(const void *src, size_t len)
{
    void *p = tkc_malloc(len);
    if (len)
        memcpy(p, src, len);
    return p;
}

void tkc_free(void *ptr)
{
    free(ptr);
}
