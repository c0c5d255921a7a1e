/*
 * keyrange.h: half-open byte-key ranges [start, end) and their comparisons.
 *
 * Conventions (the same as TiCDC's spanz.StartCompare / EndCompare): keys
 * compare byte-wise, a shorter key first when it is a prefix of the other;
 * an empty start key is -inf (it already is the smallest byte string) and an
 * empty END key is +inf. Only end keys get the +inf reading, so a range with
 * an empty end reaches to the end of the key space.
 *
 * Generic: the bytes may be raw or memcomparable-encoded keys, as long as
 * both sides of a comparison use the same form. Pure inline functions.
 */
#ifndef TKC_UTIL_KEYRANGE_H
#define TKC_UTIL_KEYRANGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/** A key range. The bytes are borrowed unless a function says otherwise. */
typedef struct tkc_keyrange_s {
    const uint8_t *start;
    size_t start_len;
    const uint8_t *end; /* end_len == 0: +inf */
    size_t end_len;
} tkc_keyrange_t;

/** Byte-wise key order: <0, 0, >0. */
static inline int tkc_key_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, n) : 0;
    if (c)
        return c;
    return alen < blen ? -1 : alen > blen ? 1 : 0;
}

/** Compares two END keys, where the empty key is +inf. */
static inline int tkc_key_end_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    if (alen == 0 || blen == 0)
        return (alen == 0) - (blen == 0);
    return tkc_key_cmp(a, alen, b, blen);
}

/** Compares a plain key @p k with an END key @p e (empty @p e is +inf). */
static inline int tkc_key_cmp_end(const uint8_t *k, size_t klen, const uint8_t *e, size_t elen)
{
    if (elen == 0)
        return -1;
    return tkc_key_cmp(k, klen, e, elen);
}

/** @returns true if @p k lies in [r->start, r->end). */
static inline bool tkc_keyrange_contains(const tkc_keyrange_t *r, const uint8_t *k, size_t klen)
{
    return tkc_key_cmp(k, klen, r->start, r->start_len) >= 0 &&
           tkc_key_cmp_end(k, klen, r->end, r->end_len) < 0;
}

/** @returns true if the range holds at least one key (start < end). */
static inline bool tkc_keyrange_valid(const tkc_keyrange_t *r)
{
    return tkc_key_cmp_end(r->start, r->start_len, r->end, r->end_len) < 0;
}

#endif
