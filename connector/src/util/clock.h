/*
 * clock.h: monotonic and wall-clock milliseconds, and TSO conversions.
 *
 * A TiKV/PD timestamp (TSO) is physical_ms << 18 | logical.
 */
#ifndef TKC_UTIL_CLOCK_H
#define TKC_UTIL_CLOCK_H

#include <stddef.h>
#include <stdint.h>

#define TKC_TSO_LOGICAL_BITS 18

/** Milliseconds from CLOCK_MONOTONIC: for deadlines and intervals. */
int64_t tkc_clock_mono_ms(void);
/** Milliseconds since the Unix epoch (CLOCK_REALTIME). */
int64_t tkc_clock_wall_ms(void);

/** Formats Unix-epoch milliseconds as UTC "YYYY-MM-DDTHH:MM:SS.mmmZ" (needs 25 bytes). */
void tkc_clock_format_utc_ms(int64_t ms, char *buf, size_t size);

static inline uint64_t tkc_tso_compose(int64_t physical_ms, int64_t logical)
{
    return ((uint64_t)physical_ms << TKC_TSO_LOGICAL_BITS) | (uint64_t)logical;
}

static inline int64_t tkc_tso_physical_ms(uint64_t tso)
{
    return (int64_t)(tso >> TKC_TSO_LOGICAL_BITS);
}

static inline int64_t tkc_tso_logical(uint64_t tso)
{
    return (int64_t)(tso & ((1u << TKC_TSO_LOGICAL_BITS) - 1));
}

#endif
