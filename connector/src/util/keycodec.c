/*
 * keycodec.c: memcomparable key encoding and TiDB record keys.
 *
 * The format is fixed by TiDB (pkg/util/codec/bytes.go, EncodeBytes) and
 * TiKV (Key::from_raw); see tikv-cdc-protocol.md §8.15-§8.16. Decoding is
 * strict on purpose: TiKV silently widens a subscription to the whole region
 * when it cannot decode a request key, so a bad key must be caught here,
 * before it is sent, not noticed later as extra rows.
 */
#include "util/keycodec.h"
#include "util/keyrange.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define GROUP 8
#define MARKER 0xFF

size_t tkc_keycodec_encoded_len(size_t raw_len)
{
    /* every full group plus the always-present final padded group */
    return (raw_len / GROUP + 1) * (GROUP + 1);
}

void tkc_keycodec_encode(const uint8_t *raw, size_t len, uint8_t *out)
{
    size_t full = len / GROUP;
    for (size_t g = 0; g < full; g++) {
        memcpy(out, raw + g * GROUP, GROUP);
        out[GROUP] = MARKER;
        out += GROUP + 1;
    }
    size_t rest = len - full * GROUP;
    if (rest)
        memcpy(out, raw + full * GROUP, rest);
    memset(out + rest, 0, GROUP - rest);
    out[GROUP] = (uint8_t)(MARKER - (GROUP - rest));
}

int tkc_keycodec_decode(const uint8_t *enc, size_t len, uint8_t *out, size_t *out_len)
{
    if (len == 0 || len % (GROUP + 1) != 0)
        return -1;
    size_t groups = len / (GROUP + 1);
    size_t n = 0;
    for (size_t g = 0; g < groups; g++) {
        const uint8_t *grp = enc + g * (GROUP + 1);
        uint8_t marker = grp[GROUP];
        bool last = g + 1 == groups;
        if (marker == MARKER) {
            /* a full group must be followed by another group */
            if (last)
                return -1;
            if (out)
                memcpy(out + n, grp, GROUP);
            n += GROUP;
            continue;
        }
        /* any other marker ends the key: it must be the last group */
        if (!last)
            return -1;
        unsigned pad = (unsigned)(MARKER - marker);
        if (pad > GROUP)
            return -1;
        for (unsigned i = GROUP - pad; i < GROUP; i++)
            if (grp[i] != 0)
                return -1;
        if (out)
            memcpy(out + n, grp, GROUP - pad);
        n += GROUP - pad;
    }
    if (out_len)
        *out_len = n;
    return 0;
}

int tkc_keycodec_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    /* Encoded keys order byte-wise, exactly like plain keys. */
    return tkc_key_cmp(a, alen, b, blen);
}

void tkc_keycodec_put_int64(uint8_t out[8], int64_t v)
{
    /* flipping the sign bit makes negative numbers sort before positive ones */
    uint64_t u = (uint64_t)v ^ UINT64_C(0x8000000000000000);
    for (int i = 7; i >= 0; i--) {
        out[i] = (uint8_t)u;
        u >>= 8;
    }
}

int64_t tkc_keycodec_get_int64(const uint8_t in[8])
{
    uint64_t u = 0;
    for (int i = 0; i < 8; i++)
        u = u << 8 | in[i];
    return (int64_t)(u ^ UINT64_C(0x8000000000000000));
}

void tkc_keycodec_record_key(int64_t table_id, int64_t handle,
                             uint8_t out[TKC_KEYCODEC_RECORD_KEY_LEN])
{
    out[0] = 't';
    tkc_keycodec_put_int64(out + 1, table_id);
    out[9] = '_';
    out[10] = 'r';
    tkc_keycodec_put_int64(out + 11, handle);
}

int tkc_keycodec_parse_record_key(const uint8_t *raw, size_t len, int64_t *table_id,
                                  int64_t *handle)
{
    if (len != TKC_KEYCODEC_RECORD_KEY_LEN || raw[0] != 't' || raw[9] != '_' ||
        raw[10] != 'r')
        return -1;
    if (table_id)
        *table_id = tkc_keycodec_get_int64(raw + 1);
    if (handle)
        *handle = tkc_keycodec_get_int64(raw + 11);
    return 0;
}

void tkc_keycodec_table_record_span(int64_t table_id,
                                    uint8_t start[TKC_KEYCODEC_RECORD_PREFIX_LEN],
                                    uint8_t end[TKC_KEYCODEC_RECORD_PREFIX_LEN])
{
    start[0] = 't';
    tkc_keycodec_put_int64(start + 1, table_id);
    start[9] = '_';
    start[10] = 'r';
    memcpy(end, start, TKC_KEYCODEC_RECORD_PREFIX_LEN);
    /* 's' = 'r' + 1: the smallest key above every t{id}_r... row key */
    end[10] = 's';
}

void tkc_keycodec_hex(const uint8_t *b, size_t n, char *out, size_t size)
{
    size_t j = 0;
    for (size_t i = 0; i < n && j + 2 < size; i++, j += 2)
        snprintf(out + j, 3, "%02x", b[i]);
    out[j] = '\0';
}
