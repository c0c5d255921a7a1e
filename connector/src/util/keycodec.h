/*
 * keycodec.h: TiKV/TiDB key encodings.
 *
 * Two encodings meet in the change feed:
 *   - RAW keys, what TiDB writes and what Event.Row.key carries, e.g. the
 *     record key t{table}_r{handle};
 *   - ENCODED keys, the memcomparable "encoded bytes" form (TiDB EncodeBytes,
 *     TiKV Key::from_raw) that PD region boundaries and ChangeDataRequest
 *     start/end keys use.
 * The encoding cuts the raw key into 8-byte groups; each group is written
 * as 8 bytes plus a marker byte: 0xFF for a full group followed by more, and
 * 0xFF - pad for the final group, zero-padded to 8 bytes. There is always a
 * final padded group, so "" encodes to 00x8 F7. Encoding preserves order:
 * cmp(enc(a), enc(b)) has the sign of cmp(a, b).
 *
 * Pure functions: no allocation, no global state, any thread.
 */
#ifndef TKC_UTIL_KEYCODEC_H
#define TKC_UTIL_KEYCODEC_H

#include <stddef.h>
#include <stdint.h>

/** Raw record key length: 't' + table id (8) + "_r" + handle (8). */
#define TKC_KEYCODEC_RECORD_KEY_LEN 19
/** Raw record prefix length: 't' + table id (8) + "_r". */
#define TKC_KEYCODEC_RECORD_PREFIX_LEN 11

/** @returns the length of the encoding of a @p raw_len byte key. */
size_t tkc_keycodec_encoded_len(size_t raw_len);

/**
 * @brief Encodes @p raw into @p out (memcomparable encoded bytes).
 * @param out must hold tkc_keycodec_encoded_len(len) bytes; must not overlap
 *            @p raw.
 */
void tkc_keycodec_encode(const uint8_t *raw, size_t len, uint8_t *out);

/**
 * @brief Decodes a whole encoded key, strictly.
 *
 * Rejects: a length that is not a positive multiple of 9, a group that is
 * not the last but has a marker other than 0xFF, a final marker below 0xF7
 * (more than 8 pad bytes), non-zero pad bytes, and bytes after the final
 * group.
 *
 * @param out receives the raw key; must hold len / 9 * 8 bytes. May be NULL
 *            to validate only.
 * @param out_len receives the raw length (may be NULL).
 * @returns 0, or -1 if @p enc is not a valid encoding.
 */
int tkc_keycodec_decode(const uint8_t *enc, size_t len, uint8_t *out, size_t *out_len);

/**
 * Byte-wise comparison, the shorter key first when one is a prefix of the
 * other (the order of both raw and encoded keys).
 * @returns <0, 0 or >0.
 */
int tkc_keycodec_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);

/** Lowercase hex of  n bytes into  out (NUL-terminated, truncated to fit  size). */
void tkc_keycodec_hex(const uint8_t *b, size_t n, char *out, size_t size);

/** Writes @p v as a comparable int64: big-endian with the sign bit flipped. */
void tkc_keycodec_put_int64(uint8_t out[8], int64_t v);
/** Reads a comparable int64 written by tkc_keycodec_put_int64(). */
int64_t tkc_keycodec_get_int64(const uint8_t in[8]);

/** Writes the raw record key t{table_id}_r{handle} (int handle) to @p out. */
void tkc_keycodec_record_key(int64_t table_id, int64_t handle,
                             uint8_t out[TKC_KEYCODEC_RECORD_KEY_LEN]);

/**
 * @brief Parses a raw int-handle record key.
 * @returns 0 and fills @p table_id / @p handle (either may be NULL), or -1 if
 *          @p raw is not 't' + 8 bytes + "_r" + 8 bytes.
 */
int tkc_keycodec_parse_record_key(const uint8_t *raw, size_t len, int64_t *table_id,
                                  int64_t *handle);

/**
 * @brief The raw record span of a table, [t{id}_r, t{id}_s): every row key of
 *        the table and nothing else (TiCDC subscribes exactly this span).
 *
 * Encode both ends with tkc_keycodec_encode() before comparing them with
 * region boundaries.
 */
void tkc_keycodec_table_record_span(int64_t table_id,
                                    uint8_t start[TKC_KEYCODEC_RECORD_PREFIX_LEN],
                                    uint8_t end[TKC_KEYCODEC_RECORD_PREFIX_LEN]);

#endif
