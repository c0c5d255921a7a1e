/*
 * heap.c: see heap.h.
 */
#include "util/heap.h"

#include <stdio.h>
#include <unistd.h>

#ifdef __GLIBC__
#include <malloc.h>
#endif

uint64_t tkc_heap_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return 0;
    unsigned long long size = 0, resident = 0;
    int n = fscanf(f, "%llu %llu", &size, &resident);
    fclose(f);
    long page = sysconf(_SC_PAGESIZE);
    if (n != 2 || page <= 0)
        return 0;
    return (uint64_t)resident * (uint64_t)page;
}

uint64_t tkc_heap_trim(void)
{
#ifdef __GLIBC__
    uint64_t before = tkc_heap_rss_bytes();
    malloc_trim(0);
    uint64_t after = tkc_heap_rss_bytes();
    return before > after ? before - after : 0;
#else
    return 0;
#endif
}
