/*
 * heap.h: gives memory freed after a burst back to the operating system.
 *
 * glibc keeps freed heap mapped (it only shrinks the top of the main heap by
 * itself), so the transient memory of a burst, e.g. tens of thousands of
 * Register requests and their gRPC buffers at the initial scan, stays in the
 * process's RSS long after it was freed. malloc_trim() releases the free
 * pages of every arena. It walks the arenas, so it is called once per burst,
 * not on a timer.
 */
#ifndef TKC_UTIL_HEAP_H
#define TKC_UTIL_HEAP_H

#include <stdint.h>

/**
 * @brief Returns free heap pages to the operating system (malloc_trim where
 *        the C library has it, else nothing).
 * @returns the resident set size released, in bytes (0 when nothing was
 *          released or it cannot be measured).
 * @locality any thread
 */
uint64_t tkc_heap_trim(void);

/**
 * @brief The process's resident set size in bytes (/proc/self/statm), or 0.
 * @locality any thread
 */
uint64_t tkc_heap_rss_bytes(void);

#endif
